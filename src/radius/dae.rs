//! Dynamic Authorization (RFC 5176): Disconnect-Request and CoA-Request from configured
//! clients, answered with ACK or NAK.
//!
//! [`parse_request`] and [`encode_reply`] are pure; [`DaeServer`] is the UDP listener. A
//! packet from an unknown address, malformed, of another code, or with a wrong Request
//! Authenticator or Message-Authenticator is dropped silently and counted. A well-formed
//! request is parsed into a [`DaeRequest`] and handed to the daemon's [`DaeHandler`], which
//! says how many sessions it matched: ACK when some did, NAK with Error-Cause 503 when none.
//! Requests the NAS cannot act on get a NAK at once: 401 (unsupported attribute), 402 (no
//! session identification), 403 (NAS-Identifier of another NAS), 404 (malformed value).
//! A retransmitted request (same source, identifier and authenticator within
//! [`DUPLICATE_WINDOW`]) gets the same reply again and is not handed over twice.

use super::attr::{self, ErrorCause};
use super::crypto::{self, MessageAuth};
use super::packet::{Builder, Code, Packet, as_u32};
use crate::proto::auth::Secret;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::net::UdpSocket;

/// How long a reply is kept to answer retransmissions of its request.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(5);

/// A client allowed to send Disconnect/CoA requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaeClient {
    /// Its source address.
    pub addr: IpAddr,
    /// The shared secret.
    pub secret: Secret,
}

/// The listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaeConfig {
    /// Where to listen (port 3799 by default).
    pub listen: SocketAddr,
    /// Who may send requests.
    pub clients: Vec<DaeClient>,
    /// Our NAS-Identifier: a request naming another one is refused (403). `None`: not checked.
    pub nas_identifier: Option<String>,
}

impl DaeConfig {
    /// Listening on all IPv4 addresses, port 3799.
    pub fn new(clients: Vec<DaeClient>) -> Self {
        Self {
            listen: (Ipv4Addr::UNSPECIFIED, 3799).into(),
            clients,
            nas_identifier: None,
        }
    }
}

/// What the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaeKind {
    /// End the matching sessions.
    Disconnect,
    /// Change the matching sessions' limits.
    Coa {
        /// New Session-Timeout, counted from the session's start.
        session_timeout: Option<Duration>,
        /// New Idle-Timeout.
        idle_timeout: Option<Duration>,
    },
}

/// A verified Disconnect- or CoA-Request. Every identification field that is set must match
/// a session for it to be affected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaeRequest {
    /// Disconnect or CoA.
    pub kind: DaeKind,
    /// Acct-Session-Id.
    pub acct_session_id: Option<String>,
    /// User-Name.
    pub user: Option<String>,
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// NAS-Port.
    pub nas_port: Option<u32>,
    /// NAS-Port-Id.
    pub port_name: Option<String>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<String>,
}

/// Why a packet gets no ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Dropped silently (malformed, not a DAE request, failed verification).
    Drop,
    /// Answered with a NAK carrying this Error-Cause.
    Nak(ErrorCause),
}

fn text(v: &[u8]) -> Result<String, Refusal> {
    String::from_utf8(v.to_vec()).map_err(|_| Refusal::Nak(ErrorCause::InvalidRequest))
}

fn seconds(v: &[u8]) -> Result<Duration, Refusal> {
    as_u32(v)
        .map(|s| Duration::from_secs(s.into()))
        .ok_or(Refusal::Nak(ErrorCause::InvalidRequest))
}

/// Verifies and parses a Disconnect- or CoA-Request sent with `secret`.
pub fn parse_request(
    raw: &[u8],
    secret: &[u8],
    nas_identifier: Option<&str>,
) -> Result<DaeRequest, Refusal> {
    let p = Packet::new_checked(raw).map_err(|_| Refusal::Drop)?;
    let disconnect = match p.code() {
        Code::DisconnectRequest => true,
        Code::CoaRequest => false,
        _ => return Err(Refusal::Drop),
    };
    if !crypto::verify_request_md5(p.as_bytes(), secret)
        || crypto::request_md5_message_auth(p.as_bytes(), secret) == MessageAuth::Invalid
    {
        return Err(Refusal::Drop);
    }
    let mut r = DaeRequest {
        kind: DaeKind::Disconnect,
        acct_session_id: None,
        user: None,
        framed_ip: None,
        nas_port: None,
        port_name: None,
        calling_station_id: None,
    };
    let (mut session_timeout, mut idle_timeout) = (None, None);
    for a in p.attributes() {
        match a.ty {
            attr::ACCT_SESSION_ID => r.acct_session_id = Some(text(a.value)?),
            attr::USER_NAME => r.user = Some(text(a.value)?),
            attr::NAS_PORT_ID => r.port_name = Some(text(a.value)?),
            attr::CALLING_STATION_ID => r.calling_station_id = Some(text(a.value)?),
            attr::FRAMED_IP_ADDRESS => {
                let ip = <[u8; 4]>::try_from(a.value)
                    .map_err(|_| Refusal::Nak(ErrorCause::InvalidRequest))?;
                r.framed_ip = Some(ip.into());
            }
            attr::NAS_PORT => {
                r.nas_port = Some(a.as_u32().ok_or(Refusal::Nak(ErrorCause::InvalidRequest))?)
            }
            attr::NAS_IDENTIFIER => {
                if nas_identifier.is_some_and(|ours| ours.as_bytes() != a.value) {
                    return Err(Refusal::Nak(ErrorCause::NasIdentificationMismatch));
                }
            }
            attr::SESSION_TIMEOUT if !disconnect => session_timeout = Some(seconds(a.value)?),
            attr::IDLE_TIMEOUT if !disconnect => idle_timeout = Some(seconds(a.value)?),
            // Accepted and not needed to find or change a session.
            attr::NAS_IP_ADDRESS
            | attr::CALLED_STATION_ID
            | attr::EVENT_TIMESTAMP
            | attr::MESSAGE_AUTHENTICATOR
            | attr::PROXY_STATE
            | attr::REPLY_MESSAGE
            | attr::STATE
            | attr::CLASS => {}
            attr::ACCT_TERMINATE_CAUSE if disconnect => {}
            _ => return Err(Refusal::Nak(ErrorCause::UnsupportedAttribute)),
        }
    }
    if r.acct_session_id.is_none()
        && r.user.is_none()
        && r.framed_ip.is_none()
        && r.nas_port.is_none()
        && r.port_name.is_none()
        && r.calling_station_id.is_none()
    {
        return Err(Refusal::Nak(ErrorCause::MissingAttribute));
    }
    if !disconnect {
        r.kind = DaeKind::Coa {
            session_timeout,
            idle_timeout,
        };
    }
    Ok(r)
}

/// The signed reply to `request` (a checked Disconnect- or CoA-Request): ACK when `nak` is
/// `None`, else NAK with that Error-Cause. Proxy-State is copied; a Message-Authenticator is
/// always included. `None` when `request` is not a DAE request.
pub fn encode_reply(request: &[u8], nak: Option<ErrorCause>, secret: &[u8]) -> Option<Vec<u8>> {
    let p = Packet::new_checked(request).ok()?;
    let code = match (p.code(), nak) {
        (Code::DisconnectRequest, None) => Code::DisconnectAck,
        (Code::DisconnectRequest, Some(_)) => Code::DisconnectNak,
        (Code::CoaRequest, None) => Code::CoaAck,
        (Code::CoaRequest, Some(_)) => Code::CoaNak,
        _ => return None,
    };
    let mut b = Builder::new(code, p.identifier(), [0; 16]);
    b.message_authenticator().ok()?;
    if let Some(c) = nak {
        b.u32(attr::ERROR_CAUSE, c.value()).ok()?;
    }
    for a in p.attributes().filter(|a| a.ty == attr::PROXY_STATE) {
        b.attr(attr::PROXY_STATE, a.value).ok()?;
    }
    let mut out = b.finish();
    crypto::sign_response(&mut out, &p.authenticator(), secret);
    Some(out)
}

/// The daemon's side: acts on a request and says how many sessions it matched.
pub trait DaeHandler: Send + Sync + 'static {
    /// Disconnects or changes the matching sessions; returns how many matched.
    fn handle(&self, req: DaeRequest) -> impl Future<Output = usize> + Send;
}

impl<F, Fut> DaeHandler for F
where
    F: Fn(DaeRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = usize> + Send,
{
    fn handle(&self, req: DaeRequest) -> impl Future<Output = usize> + Send {
        self(req)
    }
}

/// A snapshot of the listener's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaeStats {
    /// Packets from addresses that are not configured clients.
    pub unknown_client: u64,
    /// Packets dropped as malformed, of another code, or failing verification.
    pub dropped: u64,
    /// Retransmissions answered from the reply cache (or ignored while in progress).
    pub duplicates: u64,
    /// ACKs sent.
    pub acks: u64,
    /// NAKs sent.
    pub naks: u64,
}

#[derive(Debug, Default)]
struct Counters {
    unknown_client: AtomicU64,
    dropped: AtomicU64,
    duplicates: AtomicU64,
    acks: AtomicU64,
    naks: AtomicU64,
}

type Key = (SocketAddr, u8, [u8; 16]);
type Cache = Arc<Mutex<HashMap<Key, (Instant, Option<Vec<u8>>)>>>;

/// The Dynamic Authorization listener.
#[derive(Debug)]
pub struct DaeServer {
    socket: Arc<UdpSocket>,
    clients: Vec<DaeClient>,
    nas_identifier: Option<String>,
    counters: Arc<Counters>,
    cache: Cache,
}

impl DaeServer {
    /// Binds the listening socket.
    pub async fn bind(config: DaeConfig) -> io::Result<Self> {
        Ok(Self {
            socket: Arc::new(UdpSocket::bind(config.listen).await?),
            clients: config.clients,
            nas_identifier: config.nas_identifier,
            counters: Arc::default(),
            cache: Arc::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The counters so far.
    pub fn stats(&self) -> DaeStats {
        let c = &self.counters;
        DaeStats {
            unknown_client: c.unknown_client.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            acks: c.acks.load(Ordering::Relaxed),
            naks: c.naks.load(Ordering::Relaxed),
        }
    }

    /// Serves requests until the socket fails; each request is handled on a task of its
    /// own, so a slow handler does not hold up others.
    pub async fn run<H: DaeHandler>(&self, handler: Arc<H>) -> io::Result<()> {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, from) = self.socket.recv_from(&mut buf).await?;
            let raw = buf[..n].to_vec();
            let Some(client) = self
                .clients
                .iter()
                .find(|c| c.addr.to_canonical() == from.ip().to_canonical())
            else {
                self.counters.unknown_client.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("dae: request from unknown client {from}");
                continue;
            };
            let secret = client.secret.clone();
            let parsed = parse_request(&raw, secret.expose(), self.nas_identifier.as_deref());
            if parsed == Err(Refusal::Drop) {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("dae: dropped an invalid request from {from}");
                continue;
            }
            // Checked above: the packet parses.
            let Ok(p) = Packet::new_checked(&raw) else {
                continue;
            };
            let key = (from, p.identifier(), p.authenticator());
            if self.duplicate(&key, from).await {
                continue;
            }
            let (socket, cache, counters) = (
                self.socket.clone(),
                self.cache.clone(),
                self.counters.clone(),
            );
            let handler = handler.clone();
            tokio::spawn(async move {
                let nak = match parsed {
                    Ok(req) => {
                        tracing::info!("dae: {req:?} from {from}");
                        (handler.handle(req).await == 0)
                            .then_some(ErrorCause::SessionContextNotFound)
                    }
                    Err(Refusal::Nak(c)) => Some(c),
                    Err(Refusal::Drop) => return,
                };
                let Some(reply) = encode_reply(&raw, nak, secret.expose()) else {
                    return;
                };
                let counter = if nak.is_some() {
                    &counters.naks
                } else {
                    &counters.acks
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = socket.send_to(&reply, from).await {
                    tracing::debug!("dae: reply to {from}: {e}");
                }
                if let Some(entry) = cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_mut(&key)
                {
                    entry.1 = Some(reply);
                }
            });
        }
    }

    /// Whether `key` was seen recently; resends its reply if there is one yet. Otherwise
    /// remembers it (and forgets expired entries).
    async fn duplicate(&self, key: &Key, from: SocketAddr) -> bool {
        let now = Instant::now();
        let cached = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.retain(|_, (t, _)| now.duration_since(*t) < DUPLICATE_WINDOW);
            match cache.get(key) {
                Some((_, reply)) => Some(reply.clone()),
                None => {
                    cache.insert(*key, (now, None));
                    None
                }
            }
        };
        let Some(reply) = cached else { return false };
        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
        if let Some(reply) = reply {
            let _ = self.socket.send_to(&reply, from).await;
        }
        true
    }
}
