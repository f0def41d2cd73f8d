//! The SIP bridge's driver: one UDP socket, the sans-IO [`Bridge`], and its links to the
//! rest of nasd (port states in, call records to the journal, callers' numbers to PPP
//! sessions, hang-ups both ways).

use super::Shared;
use super::{acct, lock};
use crate::accounting::Body;
use crate::driver::port::PortState;
use crate::driver::session::SessionCommand;
use crate::sip::bridge::{Bridge, BridgeEvent, LineState, Now};
use crate::sip::config::SipConfig;
use crate::sip::handle::{Query, SipHandle};
use anyhow::{Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A bound, not yet running bridge.
pub(crate) struct Prepared {
    socket: UdpSocket,
    bridge: Bridge,
    queries: mpsc::Receiver<Query>,
    ended: mpsc::UnboundedReceiver<String>,
    /// The handle for `Shared`.
    pub(crate) handle: SipHandle,
}

/// Binds the socket and builds the bridge (so a bad `[sip]` fails nasd's start).
pub(crate) async fn prepare(config: &SipConfig) -> Result<Prepared> {
    let socket = UdpSocket::bind(config.listen)
        .await
        .with_context(|| format!("[sip] listen: cannot bind {}", config.listen))?;
    let bound = socket.local_addr().context("[sip] local address")?;
    let local = config.public.unwrap_or_else(|| advertised(bound));
    let seed = crate::driver::random_seed().context("random seed for the SIP bridge")?;
    let bridge =
        Bridge::new(config.clone(), local, seed).map_err(|e| anyhow::anyhow!("[sip]: {e}"))?;
    let (qtx, queries) = mpsc::channel(16);
    let (etx, ended) = mpsc::unbounded_channel();
    tracing::info!(listen = %bound, advertised = %local, accounts = config.accounts.len(), "SIP bridge listening");
    Ok(Prepared {
        socket,
        bridge,
        queries,
        ended,
        handle: SipHandle::new(qtx).with_session_ends(etx),
    })
}

/// The address to put in Via and Contact for a socket bound to `bound`: itself, or for a
/// wildcard the host's address towards the outside (loopback when there is none).
fn advertised(bound: SocketAddr) -> SocketAddr {
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let probe = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).map(|()| s))
        .and_then(|s| s.local_addr());
    let ip = probe.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
    SocketAddr::new(ip, bound.port())
}

fn now() -> Now {
    Now {
        at: Instant::now(),
        unix: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

fn line_state(state: Option<&PortState>) -> LineState {
    match state {
        Some(PortState::Idle) => LineState::Free,
        Some(PortState::Ringing | PortState::Answering | PortState::Connected) => LineState::Busy,
        _ => LineState::Down,
    }
}

/// Runs the bridge until `cancel`; then ends every call (records written).
pub(crate) async fn run(shared: Arc<Shared>, p: Prepared, cancel: CancellationToken) {
    let Prepared {
        socket,
        mut bridge,
        mut queries,
        mut ended,
        ..
    } = p;
    // Records go to the journal in order, off the packet path.
    let (rec_tx, mut rec_rx) = mpsc::unbounded_channel();
    let writer = {
        let journal = shared.clone();
        shared.tasks.spawn(async move {
            while let Some(r) = rec_rx.recv().await {
                acct::write(&journal, Body::Call(r)).await;
            }
        })
    };
    let mut buf = vec![0u8; 65536];
    let mut seen = u64::MAX;
    loop {
        let v = shared.monitor.version();
        if v != seen {
            seen = v;
            for (name, entry) in shared.monitor.ports() {
                bridge.set_port_state(&name, line_state(entry.status.as_ref().map(|s| &s.state)));
            }
        }
        flush(&socket, &mut bridge, &shared, &rec_tx).await;
        let deadline = bridge.poll_timeout(Instant::now());
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    bridge.handle_datagram(now(), from, &buf[..n]);
                    // Take what else is already queued before sending.
                    for _ in 0..64 {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => bridge.handle_datagram(now(), from, &buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "SIP socket"),
            },
            Some(q) = queries.recv() => match q {
                Query::Registrations(tx) => { let _ = tx.send(bridge.registrations(Instant::now())); }
                Query::Calls(tx) => { let _ = tx.send(bridge.calls()); }
            },
            Some(port) = ended.recv() => {
                lock(&shared.sip_callers).remove(&port);
                bridge.hangup_port(now(), &port);
            }
            () = sleep => bridge.handle_timeout(now()),
        }
    }
    bridge.shutdown(now());
    flush(&socket, &mut bridge, &shared, &rec_tx).await;
    drop(rec_tx);
    let _ = writer.await;
}

/// Sends what the bridge queued and acts on its events.
async fn flush(
    socket: &UdpSocket,
    bridge: &mut Bridge,
    shared: &Shared,
    records: &mpsc::UnboundedSender<crate::accounting::CallRecord>,
) {
    while let Some((to, bytes)) = bridge.poll_transmit() {
        if let Err(e) = socket.send_to(&bytes, to).await {
            tracing::debug!(to = %to, error = %e, "SIP send");
        }
    }
    while let Some(ev) = bridge.poll_event() {
        match ev {
            BridgeEvent::Record(r) => {
                let _ = records.send(r);
            }
            BridgeEvent::Answered { port, caller, .. } => {
                for e in shared.registry.all().into_iter().filter(|e| e.port == port) {
                    shared
                        .registry
                        .update(e.id, |e| e.caller = Some(caller.clone()));
                }
                lock(&shared.sip_callers).insert(port, caller);
            }
            BridgeEvent::Ended { port, .. } => {
                lock(&shared.sip_callers).remove(&port);
                for e in shared.registry.all().into_iter().filter(|e| e.port == port) {
                    tracing::info!(port = %port, session = e.id, "SIP call ended: ending the PPP session on its line");
                    // As the modem would see it: the carrier goes (cause lost-carrier).
                    if e.control.try_send(SessionCommand::CarrierLost).is_err() {
                        e.kill.cancel();
                    }
                }
            }
        }
    }
}
