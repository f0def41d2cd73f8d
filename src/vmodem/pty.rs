//! Pseudo-terminals for the modems' DTE side, and the stable symlinks that name them.
//!
//! vmodem holds the master of each pty; nasd (or a client program) opens the slave as if it
//! were a serial device. A new pty is put in raw mode through its master (the slave keeps
//! that mode across opens) and its slave is opened and closed once, so that the master reads
//! `EIO` and polls `POLLHUP` until somebody opens the slave: a fresh pty would otherwise
//! look open and buffer what is written to it for the next opener.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

/// A pseudo-terminal: the master vmodem keeps, and the path of its slave.
#[derive(Debug)]
pub struct Pty {
    /// The master side.
    pub master: OwnedFd,
    /// The slave's path (`/dev/pts/N`).
    pub slave: PathBuf,
}

impl Pty {
    /// Opens a new pty in raw mode whose slave nobody has open.
    pub fn open() -> io::Result<Self> {
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let slave = PathBuf::from(ptsname_r(&master)?);
        let master = OwnedFd::from(master);
        let mut t = tcgetattr(&master)?;
        cfmakeraw(&mut t);
        tcsetattr(&master, SetArg::TCSANOW, &t)?;
        // Open and close the slave once: from now on the master reports hang-up until the
        // slave is opened again.
        drop(open(
            &slave,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?);
        Ok(Self { master, slave })
    }
}

/// Whether nobody has the slave of the pty with this master open (the master polls
/// `POLLHUP`).
pub fn hung_up(master: &impl AsFd) -> bool {
    let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        Err(_) => true,
    }
}

/// Points `link` at `target`, replacing an existing link atomically (a new link under a
/// temporary name, renamed over the old one).
pub fn replace_symlink(target: &Path, link: &Path) -> io::Result<()> {
    let name = link
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "link has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = link.with_file_name(tmp_name);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_new_pty_is_hung_up_until_opened() {
        let pty = Pty::open().unwrap();
        assert!(hung_up(&pty.master));
        let mut slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pty.slave)
            .unwrap();
        assert!(!hung_up(&pty.master));
        // Raw mode: bytes pass unchanged and are not echoed.
        slave.write_all(b"AT\r").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&pty.master, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"AT\r");
        nix::unistd::write(&pty.master, b"\r\nOK\r\n").unwrap();
        let n = slave.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"\r\nOK\r\n");
        drop(slave);
        assert!(hung_up(&pty.master));
    }

    #[test]
    fn symlinks_are_replaced() {
        let dir = std::env::temp_dir().join(format!("vmodem-pty-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("server0");
        replace_symlink(Path::new("/dev/null"), &link).unwrap();
        replace_symlink(Path::new("/dev/zero"), &link).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/dev/zero"));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
