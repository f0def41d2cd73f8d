//! The control socket's listener: created at start (parent directory, stale socket, mode
//! 0660, group), one task per connection, removed at exit.

use super::access::{self, Access, Peer};
use super::{Command, MAX_REQUEST, PERMISSION_DENIED, Request, Response, VERSION};
use crate::config::ControlConfig;
use crate::daemon::{ReloadRequest, Reloader, Shared};
use anyhow::{Context, Result, anyhow, bail};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Connections served at once; more are refused with an error answer.
const MAX_CONNECTIONS: usize = 64;

/// The bound control socket, not yet serving.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    guard: SocketGuard,
    access: Access,
}

/// Removes the socket file when dropped.
#[derive(Debug)]
pub struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What every connection needs.
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) reloader: Option<Reloader>,
    pub(crate) reload_tx: mpsc::Sender<ReloadRequest>,
    access: Access,
}

impl ControlServer {
    /// Creates the socket: the parent directory if missing, a stale socket file replaced
    /// (an error if another nasd listens on it), mode 0660, owned by `[control] group`
    /// (an error if that group does not exist).
    pub fn bind(cfg: &ControlConfig) -> Result<Self> {
        let path = &cfg.socket;
        let gid = match &cfg.group {
            Some(g) => Some(access::group_id(g).ok_or_else(|| {
                anyhow!("[control] group {g:?} does not exist (the control socket's group)")
            })?),
            None => None,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("creating the control socket's directory {}", dir.display())
            })?;
        }
        remove_stale(path)?;
        let listener = UnixListener::bind(path)
            .with_context(|| format!("control socket {}", path.display()))?;
        let guard = SocketGuard(path.clone());
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .with_context(|| format!("control socket {}: chmod 0660", path.display()))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(path, None, Some(gid)).with_context(|| {
                format!("control socket {}: chown to group {gid}", path.display())
            })?;
        }
        let gid = std::fs::metadata(path)
            .with_context(|| format!("control socket {}", path.display()))?
            .gid();
        tracing::info!(socket = %path.display(), gid, "control socket listening");
        Ok(Self {
            listener,
            guard,
            access: Access::new(gid),
        })
    }

    /// Serves connections until `cancel`; the guard removes the socket file when dropped.
    pub(crate) fn serve(
        self,
        shared: Arc<Shared>,
        reloader: Option<Reloader>,
        reload_tx: mpsc::Sender<ReloadRequest>,
        cancel: CancellationToken,
    ) -> SocketGuard {
        let ctx = Arc::new(Ctx {
            shared,
            reloader,
            reload_tx,
            access: self.access,
        });
        let listener = self.listener;
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            loop {
                let stream = tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = listener.accept() => match r {
                        Ok((s, _)) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, "control socket: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    let mut s = stream;
                    let msg = Response::error("too many control connections").to_line();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(1),
                            s.write_all(&msg),
                        )
                        .await;
                    });
                    continue;
                };
                let (ctx, cancel) = (ctx.clone(), cancel.clone());
                tokio::spawn(async move {
                    connection(&ctx, stream, cancel).await;
                    drop(slot);
                });
            }
        });
        self.guard
    }
}

/// Replaces a socket file nobody listens on; refuses to touch anything else.
fn remove_stale(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!(
            "control socket {}: the path exists and is not a socket",
            path.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "control socket {}: another nasd is already listening on it",
            path.display()
        );
    }
    std::fs::remove_file(path)
        .with_context(|| format!("removing the stale control socket {}", path.display()))
}

async fn connection(ctx: &Ctx, stream: UnixStream, cancel: CancellationToken) {
    let peer = stream.peer_cred().ok().map(|c| Peer {
        uid: c.uid(),
        gid: c.gid(),
        pid: c.pid(),
    });
    let (rd, mut wr) = stream.into_split();
    if !peer.is_some_and(|p| ctx.access.allows(&p)) {
        tracing::warn!(uid = ?peer.map(|p| p.uid), "control socket: permission denied");
        let _ = send(&mut wr, &Response::error(PERMISSION_DENIED)).await;
        return;
    }
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        let got = tokio::select! {
            _ = cancel.cancelled() => return,
            r = read_request(&mut rd, &mut line) => r,
        };
        match got {
            Ok(Line::Request) => {}
            Ok(Line::End) | Err(_) => return,
            Ok(Line::TooLong) => {
                let msg = format!("request too long (at most {MAX_REQUEST} bytes)");
                let _ = send(&mut wr, &Response::error(msg)).await;
                return;
            }
        }
        let req = match serde_json::from_slice::<Request>(&line) {
            Ok(r) if r.v == VERSION => r,
            Ok(r) => {
                let msg = format!(
                    "unsupported protocol version {} (this nasd speaks {VERSION})",
                    r.v
                );
                if send(&mut wr, &Response::error(msg)).await.is_err() {
                    return;
                }
                continue;
            }
            Err(e) => {
                let msg = format!("bad request: {e}");
                if send(&mut wr, &Response::error(msg)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if let Command::Capture { port, direction } = req.cmd {
            super::stream::capture(ctx, &port, direction, rd, wr, cancel).await;
            return;
        }
        let answer = super::commands::handle(ctx, req.cmd).await;
        if send(&mut wr, &answer).await.is_err() {
            return;
        }
    }
}

enum Line {
    Request,
    End,
    TooLong,
}

/// Reads one request line (at most [`MAX_REQUEST`] bytes) into `line`, newline removed.
async fn read_request(
    rd: &mut BufReader<OwnedReadHalf>,
    line: &mut Vec<u8>,
) -> std::io::Result<Line> {
    line.clear();
    let n = (&mut *rd)
        .take(MAX_REQUEST as u64)
        .read_until(b'\n', line)
        .await?;
    if n == 0 {
        return Ok(Line::End);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if n >= MAX_REQUEST {
        return Ok(Line::TooLong);
    }
    // A last request without its newline (the client closed its side) still counts.
    Ok(Line::Request)
}

pub(super) async fn send(wr: &mut OwnedWriteHalf, r: &Response) -> std::io::Result<()> {
    wr.write_all(&r.to_line()).await
}
