//! Serial ports: opening with tokio-serial, UUCP lock files, and the modem control lines.
//!
//! A port is opened exclusively (TIOCEXCL and flock, done by serialport) and protected by a
//! UUCP lock file (`/var/lock/LCK..ttyUSB0` holding our PID in the ten-character ASCII
//! form), so that minicom, cu and friends never fight nasd for a port; a lock left by a
//! process that no longer exists is taken over. Whether the port has modem control lines
//! (DTR, DCD) is found out at open: pseudo-terminals and some USB adapters have none, and
//! then hang-up and carrier loss work without them.
#![allow(unsafe_code)]

use nix::libc;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_serial::{FlowControl, SerialPortBuilderExt, SerialStream};

nix::ioctl_read_bad!(tiocmget, libc::TIOCMGET, libc::c_int);
nix::ioctl_write_ptr_bad!(tiocmbis, libc::TIOCMBIS, libc::c_int);
nix::ioctl_write_ptr_bad!(tiocmbic, libc::TIOCMBIC, libc::c_int);

/// How a port is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSettings {
    /// The device, e.g. `/dev/ttyUSB0` (a symbolic link is fine).
    pub device: PathBuf,
    /// Bits per second.
    pub speed: u32,
    /// RTS/CTS hardware flow control.
    pub rtscts: bool,
    /// Where UUCP lock files live (`/var/lock`); `None` takes no lock.
    pub lock_dir: Option<PathBuf>,
}

/// Why a port could not be opened.
#[derive(Debug)]
pub enum PortError {
    /// Another live process holds the UUCP lock.
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Its owner.
        pid: i32,
    },
    /// The lock file could not be written.
    Lock(PathBuf, io::Error),
    /// The device could not be opened.
    Open(PathBuf, String),
}

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Locked { path, pid } => {
                write!(
                    f,
                    "port is in use: {} is held by process {pid}",
                    path.display()
                )
            }
            Self::Lock(p, e) => write!(f, "cannot create lock file {}: {e}", p.display()),
            Self::Open(p, e) => write!(f, "cannot open {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for PortError {}

/// A UUCP lock file, removed on drop.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
}

impl LockFile {
    /// The lock file name for `device`: `LCK..` and the device's name under /dev, with any
    /// further slashes turned into underscores (`/dev/pts/3` → `LCK..pts_3`).
    pub fn path_for(dir: &Path, device: &Path) -> PathBuf {
        let real = fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
        let name = real
            .strip_prefix("/dev")
            .unwrap_or(&real)
            .to_string_lossy()
            .trim_start_matches('/')
            .replace('/', "_");
        dir.join(format!("LCK..{name}"))
    }

    /// Takes the lock, or takes over a stale one.
    pub fn acquire(dir: &Path, device: &Path) -> Result<Self, PortError> {
        let path = Self::path_for(dir, device);
        let me = std::process::id() as i32;
        for _ in 0..3 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    // HDB UUCP format: the PID right-aligned in ten characters and a newline.
                    f.write_all(format!("{me:>10}\n").as_bytes())
                        .map_err(|e| PortError::Lock(path.clone(), e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok());
                    match owner {
                        Some(pid) if pid == me => return Ok(Self { path }),
                        Some(pid) if pid > 0 && process_alive(pid) => {
                            return Err(PortError::Locked { path, pid });
                        }
                        // Stale (dead owner or garbage): take it over.
                        _ => {
                            tracing::warn!(lock = %path.display(), ?owner, "removing stale lock file");
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(PortError::Lock(path, e)),
            }
        }
        Err(PortError::Lock(
            path,
            io::Error::other("lock file keeps reappearing"),
        ))
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn process_alive(pid: i32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// An open serial port.
#[derive(Debug)]
pub struct Port {
    /// The byte stream.
    pub stream: SerialStream,
    modem_lines: bool,
    _lock: Option<LockFile>,
}

impl Port {
    /// Opens the port: lock file, exclusive open, 8N1, the speed and flow control asked for.
    pub fn open(s: &PortSettings) -> Result<Self, PortError> {
        let lock = match &s.lock_dir {
            Some(d) => Some(LockFile::acquire(d, &s.device)?),
            None => None,
        };
        let stream = tokio_serial::new(s.device.to_string_lossy(), s.speed)
            .data_bits(tokio_serial::DataBits::Eight)
            .parity(tokio_serial::Parity::None)
            .stop_bits(tokio_serial::StopBits::One)
            .flow_control(if s.rtscts {
                FlowControl::Hardware
            } else {
                FlowControl::None
            })
            .timeout(Duration::from_millis(100))
            .open_native_async()
            .map_err(|e| PortError::Open(s.device.clone(), e.to_string()))?;
        let mut port = Self {
            stream,
            modem_lines: false,
            _lock: lock,
        };
        port.modem_lines = port.status().is_ok();
        Ok(port)
    }

    /// Whether the port has modem control lines (a pty has none).
    pub fn modem_lines(&self) -> bool {
        self.modem_lines
    }

    fn status(&self) -> io::Result<libc::c_int> {
        let mut bits: libc::c_int = 0;
        // SAFETY: TIOCMGET writes one c_int through the pointer, which is valid.
        unsafe { tiocmget(self.stream.as_raw_fd(), &mut bits) }?;
        Ok(bits)
    }

    /// Raises or drops DTR. Does nothing on a port without modem control lines.
    pub fn set_dtr(&self, on: bool) -> io::Result<()> {
        if !self.modem_lines {
            return Ok(());
        }
        let bits: libc::c_int = libc::TIOCM_DTR;
        // SAFETY: TIOCMBIS/TIOCMBIC read one c_int through the pointer, which is valid.
        unsafe {
            if on {
                tiocmbis(self.stream.as_raw_fd(), &bits)
            } else {
                tiocmbic(self.stream.as_raw_fd(), &bits)
            }
        }?;
        Ok(())
    }

    /// The carrier-detect line, where the port has one.
    pub fn carrier(&self) -> Option<bool> {
        if !self.modem_lines {
            return None;
        }
        self.status().ok().map(|b| b & libc::TIOCM_CAR != 0)
    }

    /// A function that reads the carrier-detect line while the stream is in use elsewhere.
    /// It must not outlive the port (it keeps only the descriptor number).
    pub fn carrier_probe(&self) -> impl FnMut() -> Option<bool> + Send + use<> {
        let fd = self.stream.as_raw_fd();
        let lines = self.modem_lines;
        move || {
            if !lines {
                return None;
            }
            let mut bits: libc::c_int = 0;
            // SAFETY: TIOCMGET writes one c_int; a stale descriptor only yields an error.
            unsafe { tiocmget(fd, &mut bits) }
                .ok()
                .map(|_| bits & libc::TIOCM_CAR != 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nasd-lock-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn lock_names() {
        let d = Path::new("/var/lock");
        assert_eq!(
            LockFile::path_for(d, Path::new("/dev/ttyUSB0-does-not-exist")),
            Path::new("/var/lock/LCK..ttyUSB0-does-not-exist")
        );
        assert_eq!(
            LockFile::path_for(d, Path::new("/dev/pts/999999")),
            Path::new("/var/lock/LCK..pts_999999")
        );
    }

    #[test]
    fn lock_is_exclusive_and_stale_locks_are_taken_over() {
        let d = tmpdir("excl");
        let dev = Path::new("/dev/ttyNASDTEST");
        let path = LockFile::path_for(&d, dev);
        // A live foreign owner: PID 1 always exists.
        fs::write(&path, format!("{:>10}\n", 1)).unwrap();
        assert!(matches!(
            LockFile::acquire(&d, dev),
            Err(PortError::Locked { pid: 1, .. })
        ));
        // A dead owner: a PID beyond pid_max.
        fs::write(&path, format!("{:>10}\n", 99_999_999)).unwrap();
        let lock = LockFile::acquire(&d, dev).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{:>10}\n", std::process::id())
        );
        drop(lock);
        assert!(!path.exists(), "the lock is removed on drop");
        // Garbage in a lock file counts as stale.
        fs::write(&path, "garbage").unwrap();
        assert!(LockFile::acquire(&d, dev).is_ok());
        let _ = fs::remove_dir_all(&d);
    }
}
