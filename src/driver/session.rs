//! Runs one [`Link`] on one line: the per-session driver loop.
//!
//! It is a translator only: bytes read from the line go to `handle_serial_input`, IP
//! packets from the host to `handle_ip_packet`, the deadline to `handle_timeout`, verdicts
//! to `handle_auth_result`; after every input the outputs are drained in the order the core
//! documents (line bytes, IP packets, events, deadline).

use crate::proto::auth::{AuthRequest, AuthResult};
use crate::proto::link::{DownReason, Link, LinkEvent, SessionInfo};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A verdict being worked out (PAM, RADIUS and files can all take time).
pub type AuthFuture = Pin<Box<dyn Future<Output = AuthResult> + Send>>;

/// What the session loop asks of the daemon around it.
pub trait Hooks {
    /// Decide on the credentials.
    fn authorize(&mut self, req: AuthRequest) -> AuthFuture;
    /// IPCP is open: route the peer's address here.
    fn up(&mut self, info: &SessionInfo);
}

/// The session's connection to the host side of the datapath.
#[derive(Debug)]
pub struct HostPackets {
    /// Packets from the peer, for the host (TUN).
    pub to_host: mpsc::Sender<Vec<u8>>,
    /// Packets from the host (TUN) for the peer.
    pub from_host: mpsc::Receiver<Vec<u8>>,
}

/// How long the last frames (Terminate-Ack, ...) may take to leave after the link is down.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `link` on `line` until the link is down, and returns why. `link` must not have
/// been started; the loop starts it.
pub async fn run<L>(
    line: L,
    link: &mut Link,
    hooks: &mut impl Hooks,
    mut host: HostPackets,
    cancel: CancellationToken,
) -> DownReason
where
    L: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(line);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(8);
    let writer_task = tokio::spawn(async move {
        while let Some(chunk) = out_rx.recv().await {
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = writer.flush().await;
    });

    let mut rbuf = vec![0u8; 4096];
    let mut verdict: Option<AuthFuture> = None;
    let mut line_open = true;
    let mut cancelled = false;
    link.start(Instant::now());
    let reason = loop {
        // Drain the outputs.
        let pending = link.serial_output();
        if !pending.is_empty()
            && let Ok(permit) = out_tx.try_reserve()
        {
            permit.send(pending.to_vec());
            let n = pending.len();
            link.consume_serial_output(n);
        }
        while let Some(p) = link.poll_ip_output() {
            if host.to_host.try_send(p).is_err() {
                tracing::debug!("host side backed up: packet dropped");
            }
        }
        let mut down = None;
        while let Some(ev) = link.poll_event() {
            match ev {
                LinkEvent::Authenticate(req) => {
                    tracing::info!(user = %req.user, proto = ?req.proto(), "authenticating");
                    verdict = Some(hooks.authorize(req));
                }
                LinkEvent::Up(info) => {
                    tracing::info!(user = %info.user, peer = %info.peer_ip, "session up");
                    hooks.up(&info);
                }
                LinkEvent::Down(r) => down = Some(r),
            }
        }
        if let Some(r) = down {
            break r;
        }
        let deadline = link.poll_timeout();
        let out_backlog = !link.serial_output().is_empty();

        tokio::select! {
            r = reader.read(&mut rbuf), if line_open => {
                let now = Instant::now();
                match r {
                    Ok(0) | Err(_) => {
                        line_open = false;
                        link.lower_down(now);
                    }
                    Ok(n) => link.handle_serial_input(now, &rbuf[..n]),
                }
            }
            p = host.from_host.recv() => {
                if let Some(p) = p {
                    link.handle_ip_packet(Instant::now(), &p);
                }
            }
            v = async { verdict.as_mut().expect("guarded").await }, if verdict.is_some() => {
                verdict = None;
                link.handle_auth_result(Instant::now(), v);
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                link.handle_timeout(Instant::now());
            }
            // Output is waiting for room in the writer's queue: try again shortly.
            _ = out_tx.reserve(), if out_backlog => {}
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                link.close(Instant::now(), DownReason::Admin);
            }
        }
    };

    // Let the last frames (Terminate-Request/Ack) reach the peer.
    let rest = link.serial_output().to_vec();
    if !rest.is_empty() {
        let _ = out_tx.send(rest).await;
    }
    drop(out_tx);
    let _ = tokio::time::timeout(FLUSH_TIMEOUT, writer_task).await;
    tracing::info!(reason = %reason, "session down");
    reason
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await;
    }
}
