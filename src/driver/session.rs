//! Runs one [`Link`] on one line: the per-session driver loop.
//!
//! It is a translator only: bytes read from the line go to `handle_serial_input`, IP
//! packets from the host to `handle_ip_packet`, the deadline to `handle_timeout`, verdicts
//! to `handle_auth_result`; after every input the outputs are drained in the order the core
//! documents (line bytes, IP packets, events, deadline).

use crate::capture::{CaptureTap, Direction};
use crate::proto::auth::{AuthRequest, AuthResult};
use crate::proto::hdlc::Decoder;
use crate::proto::link::{DownReason, Link, LinkEvent, LinkStats, SessionInfo};
use crate::proto::modem::NoCarrierWatch;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// A verdict being worked out (PAM, RADIUS and files can all take time).
pub type AuthFuture = Pin<Box<dyn Future<Output = AuthResult> + Send>>;

/// What the session loop asks of the daemon around it.
pub trait Hooks {
    /// Decide on the credentials.
    fn authorize(&mut self, req: AuthRequest) -> AuthFuture;
    /// IPCP is open: route the peer's address here.
    fn up(&mut self, info: &SessionInfo);
    /// The session is over (called once, whether or not it came up).
    fn down(&mut self, reason: DownReason) {
        let _ = reason;
    }
}

/// The session's connection to the host side of the datapath.
#[derive(Debug)]
pub struct HostPackets {
    /// Packets from the peer, for the host (TUN).
    pub to_host: mpsc::Sender<Vec<u8>>,
    /// Packets from the host (TUN) for the peer.
    pub from_host: mpsc::Receiver<Vec<u8>>,
    /// Requests from the daemon while the session runs (counters, limits), if any.
    pub control: Option<mpsc::Receiver<SessionCommand>>,
    /// The port's capture tap (`nasctl capture`), if any.
    pub capture: Option<CaptureTap>,
}

impl HostPackets {
    /// The two packet directions, without a control channel.
    pub fn new(to_host: mpsc::Sender<Vec<u8>>, from_host: mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            to_host,
            from_host,
            control: None,
            capture: None,
        }
    }
}

/// What the daemon may ask of a running session.
#[derive(Debug)]
pub enum SessionCommand {
    /// Send the link's counters now (accounting, `nasctl sessions`).
    Stats(oneshot::Sender<LinkStats>),
    /// Change the session time limit, counted from authorisation (RADIUS CoA
    /// Session-Timeout); `None` removes it. The answer is false when the session was not
    /// yet authorised.
    SessionTimeout(Option<Duration>, oneshot::Sender<bool>),
    /// Change the idle limit (RADIUS CoA Idle-Timeout); `None` removes it. The answer is
    /// false when the session was not yet authorised.
    IdleTimeout(Option<Duration>, oneshot::Sender<bool>),
    /// The telephone call carrying the session ended (the SIP bridge saw its BYE): the
    /// session ends as on a carrier loss (Acct-Terminate-Cause Lost-Carrier).
    CarrierLost,
}

/// How long the last frames (Terminate-Ack, ...) may take to leave after the link is down.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the carrier-detect line is looked at.
const DCD_POLL: Duration = Duration::from_millis(200);

/// How the loop notices that the call dropped, besides EOF on the line.
#[derive(Default)]
pub struct CarrierWatch {
    /// Reads the carrier-detect line (ports with modem control lines).
    pub dcd: Option<Box<dyn FnMut() -> Option<bool> + Send>>,
    /// Watch the data for the modem's `NO CARRIER` line (ports without modem control lines).
    pub no_carrier_text: bool,
}

impl std::fmt::Debug for CarrierWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierWatch")
            .field("dcd", &self.dcd.is_some())
            .field("no_carrier_text", &self.no_carrier_text)
            .finish()
    }
}

/// Runs `link` on `line` until the link is down, and returns why. `initial` holds bytes
/// already read from the line (what followed CONNECT). `link` must not have been started;
/// the loop starts it.
pub async fn run<L>(
    line: &mut L,
    initial: &[u8],
    link: &mut Link,
    hooks: &mut impl Hooks,
    host: &mut HostPackets,
    cancel: CancellationToken,
    mut watch: CarrierWatch,
) -> DownReason
where
    L: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(line);
    let mut no_carrier = watch.no_carrier_text.then(NoCarrierWatch::default);
    let mut rbuf = vec![0u8; 4096];
    let mut wbuf: Vec<u8> = Vec::new();
    let mut verdict: Option<AuthFuture> = None;
    let mut line_open = true;
    let mut cancelled = false;
    let mut dcd_tick = tokio::time::interval(DCD_POLL);
    dcd_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut capture = Capture::new(host.capture.clone());
    link.start(Instant::now());
    if !initial.is_empty() {
        capture.feed(Direction::Rx, initial);
        link.handle_serial_input(Instant::now(), initial);
    }
    let reason = loop {
        // Drain the outputs.
        if wbuf.is_empty() {
            let pending = link.serial_output();
            let n = pending.len();
            wbuf.extend_from_slice(pending);
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
                    hooks.up(&info);
                    tracing::info!(user = %info.user, peer = %info.peer_ip, "session up");
                }
                LinkEvent::Down(r) => down = Some(r),
            }
        }
        if let Some(r) = down {
            break r;
        }
        let deadline = link.poll_timeout();

        tokio::select! {
            r = reader.read(&mut rbuf), if line_open => {
                let now = Instant::now();
                match r {
                    Ok(0) | Err(_) => {
                        line_open = false;
                        link.lower_down(now);
                    }
                    Ok(n) => {
                        capture.feed(Direction::Rx, &rbuf[..n]);
                        link.handle_serial_input(now, &rbuf[..n]);
                        if no_carrier.as_mut().is_some_and(|w| w.feed(&rbuf[..n])) {
                            tracing::info!("modem reported NO CARRIER");
                            link.lower_down(now);
                        }
                    }
                }
            }
            w = writer.write(&wbuf), if !wbuf.is_empty() && line_open => {
                match w {
                    Ok(n) => {
                        capture.feed(Direction::Tx, &wbuf[..n]);
                        wbuf.drain(..n);
                    }
                    Err(_) => {
                        line_open = false;
                        link.lower_down(Instant::now());
                    }
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
            _ = dcd_tick.tick(), if watch.dcd.is_some() => {
                if watch.dcd.as_mut().and_then(|f| f()) == Some(false) {
                    tracing::info!("carrier lost (DCD dropped)");
                    link.lower_down(Instant::now());
                }
            }
            c = next_command(&mut host.control), if host.control.is_some() => {
                match c {
                    Some(SessionCommand::Stats(reply)) => {
                        let _ = reply.send(link.stats());
                    }
                    Some(SessionCommand::SessionTimeout(limit, reply)) => {
                        let _ = reply.send(link.set_session_timeout(Instant::now(), limit));
                    }
                    Some(SessionCommand::IdleTimeout(limit, reply)) => {
                        let _ = reply.send(link.set_idle_timeout(Instant::now(), limit));
                    }
                    Some(SessionCommand::CarrierLost) => {
                        tracing::info!("the call carrying the session ended");
                        link.lower_down(Instant::now());
                    }
                    // The daemon let go of the channel: no more commands.
                    None => host.control = None,
                }
            }
            _ = cancel.cancelled(), if !cancelled => {
                cancelled = true;
                link.close(Instant::now(), DownReason::Admin);
            }
        }
    };

    // Let the last frames (Terminate-Request/Ack) reach the peer.
    if line_open {
        wbuf.extend_from_slice(link.serial_output());
        capture.feed(Direction::Tx, &wbuf);
        let _ = tokio::time::timeout(FLUSH_TIMEOUT, async {
            let _ = writer.write_all(&wbuf).await;
            let _ = writer.flush().await;
        })
        .await;
    }
    tracing::info!(reason = %reason, "session down");
    hooks.down(reason);
    reason
}

/// The session's side of `nasctl capture`: while someone listens on the port's tap, the
/// bytes read from and written to the line go through decoders of their own (the link's
/// decoder is untouched) and each frame is offered to the tap, which never blocks. With no
/// listener this is one atomic load per read or write.
struct Capture {
    tap: Option<CaptureTap>,
    /// Decoders for received and sent bytes, made when a capture starts.
    decoders: Option<Box<(Decoder, Decoder)>>,
}

impl Capture {
    /// The longest frame captured whole (an MRU is at most 65535, plus header).
    const MAX_FRAME: usize = 65_535 + 8;

    fn new(tap: Option<CaptureTap>) -> Self {
        Self {
            tap,
            decoders: None,
        }
    }

    fn feed(&mut self, direction: Direction, bytes: &[u8]) {
        let Some(tap) = &self.tap else { return };
        if !tap.is_active() {
            // The next capture starts in sync at a flag.
            self.decoders = None;
            return;
        }
        let decoders = self.decoders.get_or_insert_with(|| {
            let make = || {
                let mut d = Decoder::new(Self::MAX_FRAME);
                // Keep control characters whatever ACCM the link negotiated.
                d.set_accm(0);
                d
            };
            Box::new((make(), make()))
        });
        let decoder = match direction {
            Direction::Rx => &mut decoders.0,
            Direction::Tx => &mut decoders.1,
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            let (used, frame) = decoder.decode(rest);
            if let Some(f) = frame {
                tap.offer(direction, f);
            }
            if used == 0 {
                break;
            }
            rest = &rest[used.min(rest.len())..];
        }
    }
}

async fn next_command(
    control: &mut Option<mpsc::Receiver<SessionCommand>>,
) -> Option<SessionCommand> {
    match control {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::hdlc::Encoder;

    fn line_bytes(protocol: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new().encode(protocol, payload, &mut out);
        out
    }

    #[test]
    fn capture_sees_whole_frames_in_both_directions_only_while_subscribed() {
        let tap = CaptureTap::new();
        let mut capture = Capture::new(Some(tap.clone()));
        let lcp = line_bytes(0xc021, &[1, 1, 0, 4]);
        // Nobody listens: nothing is decoded.
        capture.feed(Direction::Rx, &lcp);
        assert!(capture.decoders.is_none());
        let mut rx = tap.subscribe();
        // A frame split over two reads, then one written.
        let (a, b) = lcp.split_at(3);
        capture.feed(Direction::Rx, a);
        assert!(rx.try_recv().is_err());
        capture.feed(Direction::Rx, b);
        let ipcp = line_bytes(0x8021, &[1, 2, 0, 4]);
        let two = [ipcp.clone(), ipcp].concat();
        capture.feed(Direction::Tx, &two);
        let f = rx.try_recv().unwrap();
        assert_eq!(f.direction, Direction::Rx);
        assert_eq!(f.frame, [0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]);
        for _ in 0..2 {
            let f = rx.try_recv().unwrap();
            assert_eq!(f.direction, Direction::Tx);
            assert_eq!(f.frame, [0xff, 0x03, 0x80, 0x21, 1, 2, 0, 4]);
        }
        assert!(rx.try_recv().is_err());
        // The capture ends: the decoders go.
        drop(rx);
        tap.offer(Direction::Rx, &[0]);
        capture.feed(Direction::Rx, &lcp);
        assert!(capture.decoders.is_none());
    }
}
