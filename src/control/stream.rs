//! `capture`: a port's PPP frames as a live pcap stream on the control connection.
//!
//! The session loop offers frames to the port's [`CaptureTap`](crate::capture::CaptureTap)
//! without ever waiting; this task drains its own bounded queue into the socket. A reader
//! too slow for the line loses capture frames (counted), never line frames.

use super::server::{Ctx, send};
use super::{CaptureView, Response};
use crate::capture::DEFAULT_QUEUE;
use crate::capture::pcap::{self, DEFAULT_SNAPLEN, LinkType};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

/// Streams `port`'s frames until the client closes, the port goes away or nasd stops: as
/// linktype_PPP_HDLC (50), or with `direction` as PPP with direction (204).
pub(super) async fn capture(
    ctx: &Ctx,
    port: &str,
    direction: bool,
    mut rd: BufReader<OwnedReadHalf>,
    mut wr: OwnedWriteHalf,
    cancel: CancellationToken,
) {
    let Some(tap) = ctx.shared.monitor.tap(port) else {
        let _ = send(&mut wr, &Response::error(format!("no port named {port:?}"))).await;
        return;
    };
    let linktype = if direction {
        LinkType::PppWithDir
    } else {
        LinkType::PppHdlc
    };
    let mut rx = tap.subscribe_with(DEFAULT_QUEUE, DEFAULT_SNAPLEN as usize);
    // Only the port and its sessions keep the tap: when they are gone, the stream ends.
    drop(tap);
    let header = CaptureView {
        port: port.to_string(),
        linktype: linktype.code(),
    };
    let answer = match serde_json::to_value(&header) {
        Ok(v) => Response::ok(v),
        Err(e) => Response::error(format!("internal error: {e}")),
    };
    if send(&mut wr, &answer).await.is_err()
        || wr
            .write_all(&pcap::global_header(linktype, DEFAULT_SNAPLEN))
            .await
            .is_err()
    {
        return;
    }
    tracing::info!(port, "control: capture started");
    let mut frames = 0u64;
    let mut ignored = [0u8; 256];
    loop {
        tokio::select! {
            f = rx.recv() => {
                let Some(f) = f else { break };
                let Some(data) = pcap::encapsulate(linktype, f.direction, &f.frame) else {
                    continue;
                };
                let ts = f
                    .timestamp
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                if wr.write_all(&pcap::record(ts, &data, DEFAULT_SNAPLEN)).await.is_err() {
                    break;
                }
                frames += 1;
            }
            // The client sends nothing more: anything it does send is ignored, EOF ends.
            r = rd.read(&mut ignored) => {
                if matches!(r, Ok(0) | Err(_)) {
                    break;
                }
            }
            _ = cancel.cancelled() => break,
        }
    }
    tracing::info!(
        port,
        frames,
        dropped = rx.dropped(),
        "control: capture ended"
    );
}
