//! The DTE side of one modem, driven by tokio: a pty master or a Unix socket connection.
//!
//! Each open DTE runs one task ([`spawn`]) that reads what the DTE sends and writes what the
//! pool gives it, and reports to the pool with [`FromPort`] messages:
//!
//! * a pty starts hung up (nobody has its slave open). The task re-checks it every
//!   `recheck` interval with a zero-timeout `poll` (never spinning) and reports
//!   [`FromPort::Attached`] once somebody opens it; reading `EIO` from the master (the last
//!   opener closed the slave) reports [`FromPort::Detached`], and the timer takes over again.
//!   Output for a hung-up pty is discarded, as a serial line drops what nobody listens to.
//! * a socket connection is attached from the start and detached (the task ends) at EOF.
//!
//! The pool can pause reading ([`ToPort::Pause`]) while a call's send queue is full, which
//! is the flow control a real modem does with CTS. [`ToPort::Close`] flushes pending output
//! (for at most [`CLOSE_FLUSH`]) and closes the descriptor.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::pty::hung_up;
use super::switch::Port;

/// Output kept for a DTE that does not read; more is discarded.
pub const MAX_PENDING: usize = 256 * 1024;

/// How long [`ToPort::Close`] waits for pending output to drain.
pub const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// What kind of DTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DteKind {
    /// A pseudo-terminal master.
    Pty,
    /// A Unix socket connection (client lines only).
    Socket,
}

/// Names one DTE task: the port, the kind, and a generation that changes whenever the DTE
/// is replaced (so the pool can ignore late messages from an old one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DteKey {
    /// The modem.
    pub port: Port,
    /// Pty or socket.
    pub kind: DteKind,
    /// Unique per DTE.
    pub generation: u64,
}

/// A report from a DTE task to the pool.
#[derive(Debug)]
pub enum FromPort {
    /// The DTE sent bytes.
    Input(DteKey, Vec<u8>),
    /// Somebody opened the pty's slave, or a socket connected.
    Attached(DteKey),
    /// The pty's slave was closed by its last opener, or the socket reached EOF.
    Detached(DteKey),
}

/// An order from the pool to a DTE task.
#[derive(Debug)]
pub enum ToPort {
    /// Bytes for the DTE.
    Write(Vec<u8>),
    /// Stop (`true`) or resume (`false`) reading from the DTE.
    Pause(bool),
    /// Flush and close.
    Close,
}

/// The descriptor of a DTE.
#[derive(Debug)]
pub enum DteIo {
    /// A pty master (vmodem's end of the pty).
    Pty(OwnedFd),
    /// A connected Unix socket.
    Socket(UnixStream),
}

/// The pool's handle on a DTE task.
#[derive(Debug)]
pub struct DteHandle {
    /// Which DTE.
    pub key: DteKey,
    tx: mpsc::UnboundedSender<ToPort>,
    /// Whether the DTE is attached (as last reported).
    pub attached: bool,
    /// Whether reading is paused (as last ordered).
    pub paused: bool,
}

impl DteHandle {
    /// Sends an order (ignored if the task has ended).
    pub fn send(&self, msg: ToPort) {
        let _ = self.tx.send(msg);
    }

    /// Pauses or resumes reading, if that changes anything.
    pub fn set_paused(&mut self, paused: bool) {
        if self.paused != paused {
            self.paused = paused;
            self.send(ToPort::Pause(paused));
        }
    }
}

/// Starts the task of a DTE.
pub fn spawn(
    key: DteKey,
    io: DteIo,
    to_pool: mpsc::Sender<FromPort>,
    recheck: Duration,
) -> io::Result<DteHandle> {
    let io = match io {
        DteIo::Pty(fd) => {
            set_nonblocking(&fd)?;
            Io::Pty(AsyncFd::new(fd)?)
        }
        DteIo::Socket(s) => Io::Socket(s),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let attached = matches!(io, Io::Socket(_));
    tokio::spawn(run(key, io, rx, to_pool, recheck));
    Ok(DteHandle {
        key,
        tx,
        attached,
        paused: false,
    })
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

enum Io {
    Pty(AsyncFd<OwnedFd>),
    Socket(UnixStream),
}

impl Io {
    /// Reads some bytes; `Ok(0)` is a hang-up (EOF, or `EIO` from a pty master).
    /// Cancel-safe: bytes are only taken in the synchronous `try_io` step.
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Pty(fd) => loop {
                let mut guard = fd.readable().await?;
                match guard.try_io(|f| nix::unistd::read(f.get_ref(), buf).map_err(io::Error::from))
                {
                    Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => return Ok(0),
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            },
            Io::Socket(s) => loop {
                s.readable().await?;
                match s.try_read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            },
        }
    }

    async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Pty(fd) => loop {
                let mut guard = fd.writable().await?;
                match guard.try_io(|f| nix::unistd::write(f.get_ref(), buf).map_err(io::Error::from))
                {
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            },
            Io::Socket(s) => loop {
                s.writable().await?;
                match s.try_write(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            },
        }
    }

    fn hung_up(&self) -> bool {
        match self {
            Io::Pty(fd) => hung_up(fd.get_ref()),
            Io::Socket(_) => false,
        }
    }
}

async fn run(
    key: DteKey,
    io: Io,
    mut rx: mpsc::UnboundedReceiver<ToPort>,
    to_pool: mpsc::Sender<FromPort>,
    recheck: Duration,
) {
    let is_pty = matches!(io, Io::Pty(_));
    let mut attached = !is_pty;
    let mut paused = false;
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let report = tokio::select! {
            biased;
            msg = rx.recv() => match msg {
                Some(ToPort::Write(bytes)) => {
                    if attached {
                        let room = MAX_PENDING.saturating_sub(out.len());
                        if bytes.len() > room {
                            tracing::warn!(?key, dropped = bytes.len() - room, "DTE not reading");
                        }
                        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    }
                    None
                }
                Some(ToPort::Pause(p)) => {
                    paused = p;
                    None
                }
                Some(ToPort::Close) | None => {
                    if attached && !out.is_empty() {
                        let _ = tokio::time::timeout(CLOSE_FLUSH, write_all(&io, &out)).await;
                    }
                    return;
                }
            },
            // A pty with nobody on it (or one we are not reading) is looked at now and then.
            _ = tokio::time::sleep(recheck), if is_pty && (!attached || paused) => {
                match (attached, io.hung_up()) {
                    (false, false) => {
                        attached = true;
                        Some(FromPort::Attached(key))
                    }
                    (true, true) => {
                        attached = false;
                        out.clear();
                        Some(FromPort::Detached(key))
                    }
                    _ => None,
                }
            },
            r = io.read(&mut buf), if attached && !paused => match r {
                Ok(n) if n > 0 => Some(FromPort::Input(key, buf[..n].to_vec())),
                _ => {
                    attached = false;
                    out.clear();
                    Some(FromPort::Detached(key))
                }
            },
            r = io.write(&out), if attached && !out.is_empty() => match r {
                Ok(n) => {
                    out.drain(..n);
                    None
                }
                Err(_) => {
                    attached = false;
                    out.clear();
                    Some(FromPort::Detached(key))
                }
            },
        };
        if let Some(report) = report {
            let gone = matches!(report, FromPort::Detached(_)) && !is_pty;
            if to_pool.send(report).await.is_err() || gone {
                return;
            }
        }
    }
}

async fn write_all(io: &Io, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = io.write(buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    Ok(())
}
