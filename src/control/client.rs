//! The client side of the control protocol, for `nasctl`.

use super::{Command, PERMISSION_DENIED, Request, Response};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// The longest answer line accepted.
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket, or nobody listening on it.
    #[error("nasd is not running (no socket at {})", .0.display())]
    NotRunning(PathBuf),
    /// The socket refused us (file permissions, or the daemon's check).
    #[error(
        "permission denied: {} (nasctl must run as root or as a member of the socket's group)",
        .0.display()
    )]
    PermissionDenied(PathBuf),
    /// nasd answered with an error.
    #[error("{0}")]
    Daemon(String),
    /// The connection failed or nasd's answer made no sense.
    #[error("{0}")]
    Protocol(String),
}

/// A connection to nasd's control socket.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl Client {
    /// Connects to the socket at `path`.
    pub async fn connect(path: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound | ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning(path.to_path_buf())
                }
                ErrorKind::PermissionDenied => ClientError::PermissionDenied(path.to_path_buf()),
                _ => ClientError::Protocol(format!("{}: {e}", path.display())),
            })?;
        let (rd, wr) = stream.into_split();
        Ok(Self {
            path: path.to_path_buf(),
            rd: BufReader::new(rd),
            wr,
        })
    }

    /// Sends `cmd` and returns the answer's data.
    pub async fn request(&mut self, cmd: Command) -> Result<serde_json::Value, ClientError> {
        let mut line = serde_json::to_vec(&Request::new(cmd))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let lost = |e: std::io::Error| {
            ClientError::Protocol(format!("{}: connection lost: {e}", self.path.display()))
        };
        // A refused peer may find the socket closed before its request is written: its
        // answer is still there to read.
        let sent = self.wr.write_all(&line).await;
        let mut answer = Vec::new();
        let n = (&mut self.rd)
            .take(MAX_ANSWER)
            .read_until(b'\n', &mut answer)
            .await
            .map_err(lost)?;
        if n == 0 {
            return Err(match sent {
                Err(e) => lost(e),
                Ok(()) => ClientError::Protocol(format!(
                    "{}: nasd closed the connection",
                    self.path.display()
                )),
            });
        }
        let r: Response = serde_json::from_slice(&answer)
            .map_err(|e| ClientError::Protocol(format!("nasd's answer is not understood: {e}")))?;
        match (r.ok, r.data, r.error) {
            (true, data, _) => Ok(data.unwrap_or(serde_json::Value::Null)),
            (false, _, Some(e)) if e == PERMISSION_DENIED => {
                Err(ClientError::PermissionDenied(self.path.clone()))
            }
            (false, _, e) => Err(ClientError::Daemon(
                e.unwrap_or_else(|| "request failed".into()),
            )),
        }
    }

    /// The connection's two halves, for the stream that follows a `capture` answer.
    pub fn into_parts(self) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
        (self.rd, self.wr)
    }
}
