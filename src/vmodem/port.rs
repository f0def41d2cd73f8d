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
//! (for at most [`CLOSE_FLUSH`]; a pty then stays open for [`CLOSE_GRACE`] so its opener can
//! read it) and closes the descriptor.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::pty::hung_up;
use super::switch::Port;
use crate::driver::fdline::FdLine;

/// Output kept for a DTE that does not read; more is discarded.
pub const MAX_PENDING: usize = 256 * 1024;

/// How long [`ToPort::Close`] waits for pending output to drain.
pub const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// How long a closing pty stays open after its output was written: a pty's hang-up throws
/// away what its slave has not read yet, so the opener gets this long to read the last
/// `NO CARRIER`.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

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
        DteIo::Pty(fd) => Io {
            reader: None,
            writer: None,
            pty: Some(fd),
        },
        DteIo::Socket(s) => {
            let (reader, writer) = s.into_split();
            Io {
                reader: Some(Box::new(reader)),
                writer: Some(Box::new(writer)),
                pty: None,
            }
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let attached = io.pty.is_none();
    tokio::spawn(run(key, io, rx, to_pool, recheck));
    Ok(DteHandle {
        key,
        tx,
        attached,
        paused: false,
    })
}

/// Both directions of a DTE, and for a pty its master.
///
/// A pty master is registered with the runtime only while somebody has the slave open: once
/// epoll has reported `POLLHUP` for a registration, tokio keeps it readable for good, so a
/// registration made or kept while the pty is hung up would make every read spin. Each
/// attach registers a fresh duplicate of the master, each detach drops it.
struct Io {
    reader: Option<Box<dyn AsyncRead + Send + Unpin>>,
    writer: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pty: Option<OwnedFd>,
}

impl Io {
    fn hung_up(&self) -> bool {
        self.pty.as_ref().is_some_and(hung_up)
    }

    fn attach(&mut self) -> io::Result<()> {
        if let Some(master) = &self.pty {
            let (reader, writer) = tokio::io::split(FdLine::new(master.try_clone()?)?);
            self.reader = Some(Box::new(reader));
            self.writer = Some(Box::new(writer));
        }
        Ok(())
    }

    fn detach(&mut self) {
        if self.pty.is_some() {
            self.reader = None;
            self.writer = None;
        }
    }
}

async fn read(
    io: Option<&mut Box<dyn AsyncRead + Send + Unpin>>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match io {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn write(
    io: Option<&mut Box<dyn AsyncWrite + Send + Unpin>>,
    buf: &[u8],
) -> io::Result<usize> {
    match io {
        Some(w) => w.write(buf).await,
        None => std::future::pending().await,
    }
}

async fn run(
    key: DteKey,
    mut io: Io,
    mut rx: mpsc::UnboundedReceiver<ToPort>,
    to_pool: mpsc::Sender<FromPort>,
    recheck: Duration,
) {
    let is_pty = io.pty.is_some();
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
                    if let (true, Some(w)) = (!out.is_empty(), io.writer.as_mut()) {
                        let _ = tokio::time::timeout(CLOSE_FLUSH, w.write_all(&out)).await;
                        if is_pty {
                            tokio::time::sleep(CLOSE_GRACE).await;
                        }
                    }
                    return;
                }
            },
            // A pty with nobody on it (or one we are not reading) is looked at now and then.
            _ = tokio::time::sleep(recheck), if is_pty && (!attached || paused) => {
                match (attached, io.hung_up()) {
                    (false, false) => match io.attach() {
                        Ok(()) => {
                            attached = true;
                            Some(FromPort::Attached(key))
                        }
                        Err(e) => {
                            tracing::warn!(?key, "cannot register the pty: {e}");
                            None
                        }
                    },
                    (true, true) => {
                        attached = false;
                        io.detach();
                        out.clear();
                        Some(FromPort::Detached(key))
                    }
                    _ => None,
                }
            },
            // A pty master reads EIO when the slave's last opener closes it: FdLine makes
            // that an end of file.
            r = read(io.reader.as_mut(), &mut buf), if attached && !paused => match r {
                Ok(n) if n > 0 => Some(FromPort::Input(key, buf[..n].to_vec())),
                _ => {
                    attached = false;
                    io.detach();
                    out.clear();
                    Some(FromPort::Detached(key))
                }
            },
            r = write(io.writer.as_mut(), &out), if attached && !out.is_empty() => match r {
                Ok(n) => {
                    out.drain(..n);
                    None
                }
                Err(_) => {
                    attached = false;
                    io.detach();
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
