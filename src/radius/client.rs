//! The tokio RADIUS client: [`RadiusClient`].
//!
//! Each server has two connected UDP sockets (authentication and accounting), each with its
//! own receive task and identifier space: at most 256 requests are outstanding per socket
//! (a semaphore makes the 257th wait for a free identifier). A request registers its
//! identifier, sends, and waits for a response on its own channel; responses that fail
//! verification (wrong authenticator, missing or wrong Message-Authenticator) are dropped and
//! counted, and the request keeps waiting. Locks are only held for map updates, never across
//! an `await`, so requests from many tasks never block each other.
//!
//! On timeout the identical packet (same identifier and authenticator) is sent again,
//! `retries` times; then the server is marked dead for `dead_time` and the next server is
//! tried. Live servers are tried first, in configured order, then dead ones as a last resort.
//!
//! Accounting: retransmissions to one server repeat the same packet with the same
//! Acct-Delay-Time (as RFC 5080 section 2.2.1 recommends). When failing over to another server,
//! the record is rebuilt with Acct-Delay-Time increased by the time spent so far, which
//! (RFC 2866) gives it a new identifier and a new Request Authenticator.

use super::message::{self, AccessReply, AccessRequest, AccountingRequest, NasInfo, ReplyError};
use super::packet::BuildError;
use crate::proto::auth::Secret;
use crate::proto::rng::Rng;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One RADIUS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server's address.
    pub addr: IpAddr,
    /// Authentication port (1812).
    pub auth_port: u16,
    /// Accounting port (1813).
    pub acct_port: u16,
    /// The shared secret.
    pub secret: Secret,
}

impl ServerConfig {
    /// A server on the standard ports.
    pub fn new(addr: IpAddr, secret: Secret) -> Self {
        Self {
            addr,
            auth_port: 1812,
            acct_port: 1813,
            secret,
        }
    }
}

/// The client's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusClientConfig {
    /// Servers, most preferred first.
    pub servers: Vec<ServerConfig>,
    /// How long to wait for each response (3 s).
    pub timeout: Duration,
    /// Retransmissions to one server after the first send (3), before failing over.
    pub retries: u32,
    /// How long a server that did not answer is tried only after the live ones (30 s).
    pub dead_time: Duration,
    /// NAS-Identifier.
    pub nas_identifier: String,
    /// NAS-IP-Address, when set.
    pub nas_ip: Option<Ipv4Addr>,
}

impl RadiusClientConfig {
    /// Settings with the default timers for these servers.
    pub fn new(servers: Vec<ServerConfig>, nas_identifier: impl Into<String>) -> Self {
        Self {
            servers,
            timeout: Duration::from_secs(3),
            retries: 3,
            dead_time: Duration::from_secs(30),
            nas_identifier: nas_identifier.into(),
            nas_ip: None,
        }
    }
}

/// Why a request got no verdict.
#[derive(Debug, thiserror::Error)]
pub enum RadiusError {
    /// No server is configured.
    #[error("no RADIUS server configured")]
    NoServers,
    /// No server sent a valid response in time.
    #[error("no RADIUS server answered")]
    NoResponse,
    /// The request does not fit in a RADIUS packet.
    #[error("cannot encode request: {0}")]
    Encode(#[from] BuildError),
}

/// Counters, for logs and tests.
#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    retransmits: AtomicU64,
    failovers: AtomicU64,
}

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// Responses dropped: unknown identifier, failed verification, unexpected code.
    pub dropped_responses: u64,
    /// Packets sent again after a timeout.
    pub retransmits: u64,
    /// Times a server gave no answer and the next one was tried.
    pub failovers: u64,
}

type Slots = Arc<Mutex<HashMap<u8, mpsc::Sender<Vec<u8>>>>>;

/// One connected socket with its identifier space and receive task.
#[derive(Debug)]
struct Endpoint {
    socket: Arc<UdpSocket>,
    slots: Slots,
    permits: Arc<Semaphore>,
    next_id: Mutex<u8>,
    task: JoinHandle<()>,
}

impl Endpoint {
    async fn connect(to: SocketAddr, counters: Arc<Counters>, first_id: u8) -> io::Result<Self> {
        let any: SocketAddr = match to {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (core::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(any).await?;
        socket.connect(to).await?;
        let socket = Arc::new(socket);
        let slots: Slots = Arc::default();
        let task = tokio::spawn(receive(socket.clone(), slots.clone(), counters));
        Ok(Self {
            socket,
            slots,
            permits: Arc::new(Semaphore::new(256)),
            next_id: Mutex::new(first_id),
            task,
        })
    }

    /// Reserves a free identifier (waiting while all 256 are in use).
    async fn allocate(&self) -> IdSlot {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (tx, rx) = mpsc::channel(4);
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = self.next_id.lock().unwrap_or_else(PoisonError::into_inner);
        // A permit guarantees a free identifier among the 256.
        let mut id = *next;
        while slots.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        *next = id.wrapping_add(1);
        slots.insert(id, tx);
        IdSlot {
            id,
            rx,
            slots: self.slots.clone(),
            _permit: permit,
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(socket: Arc<UdpSocket>, slots: Slots, counters: Arc<Counters>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            // ICMP errors (port unreachable) surface here on a connected socket: the
            // waiting request times out and fails over.
            Err(e) => {
                tracing::debug!("radius: receive error: {e}");
                continue;
            }
        };
        let Some(&id) = buf.get(1).filter(|_| n >= super::packet::HEADER_LEN) else {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let tx = slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        match tx {
            Some(tx) if tx.try_send(buf[..n].to_vec()).is_ok() => {}
            _ => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A reserved identifier; freed on drop.
struct IdSlot {
    id: u8,
    rx: mpsc::Receiver<Vec<u8>>,
    slots: Slots,
    _permit: OwnedSemaphorePermit,
}

impl Drop for IdSlot {
    fn drop(&mut self) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

#[derive(Debug)]
struct Server {
    secret: Secret,
    addr: IpAddr,
    auth: Endpoint,
    acct: Endpoint,
    dead_until: Mutex<Option<Instant>>,
}

impl Server {
    fn is_dead(&self, now: Instant) -> bool {
        self.dead_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|t| t > now)
    }
    fn set_dead_until(&self, t: Option<Instant>) {
        *self
            .dead_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = t;
    }
}

/// A RADIUS client for authentication and accounting. Cheap to share (`Arc` it); every
/// method takes `&self` and may be called from many tasks at once.
#[derive(Debug)]
pub struct RadiusClient {
    servers: Vec<Server>,
    timeout: Duration,
    retries: u32,
    dead_time: Duration,
    nas: NasInfo,
    rng: Mutex<Rng>,
    counters: Arc<Counters>,
}

impl RadiusClient {
    /// Opens the sockets (inside a tokio runtime).
    pub async fn new(config: RadiusClientConfig) -> io::Result<Self> {
        let mut rng = Rng::new(crate::driver::random_seed()?);
        let counters = Arc::new(Counters::default());
        let mut servers = Vec::with_capacity(config.servers.len());
        for s in config.servers {
            let auth = Endpoint::connect(
                (s.addr, s.auth_port).into(),
                counters.clone(),
                rng.next_u32() as u8,
            )
            .await?;
            let acct = Endpoint::connect(
                (s.addr, s.acct_port).into(),
                counters.clone(),
                rng.next_u32() as u8,
            )
            .await?;
            servers.push(Server {
                secret: s.secret,
                addr: s.addr,
                auth,
                acct,
                dead_until: Mutex::new(None),
            });
        }
        Ok(Self {
            servers,
            timeout: config.timeout,
            retries: config.retries,
            dead_time: config.dead_time,
            nas: NasInfo {
                nas_identifier: config.nas_identifier,
                nas_ip: config.nas_ip,
            },
            rng: Mutex::new(rng),
            counters,
        })
    }

    /// The client's counters.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            dropped_responses: self.counters.dropped.load(Ordering::Relaxed),
            retransmits: self.counters.retransmits.load(Ordering::Relaxed),
            failovers: self.counters.failovers.load(Ordering::Relaxed),
        }
    }

    /// Servers to try: live ones in configured order, then dead ones.
    fn order(&self) -> Vec<&Server> {
        let now = Instant::now();
        let (mut live, dead): (Vec<&Server>, Vec<&Server>) =
            self.servers.iter().partition(|s| !s.is_dead(now));
        live.extend(dead);
        live
    }

    fn random_authenticator(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        self.rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill(&mut a);
        a
    }

    /// Sends `packet` and retransmits it until `check` accepts a response or the retries
    /// are spent.
    async fn exchange<T>(
        &self,
        ep: &Endpoint,
        slot: &mut IdSlot,
        packet: &[u8],
        check: impl Fn(&[u8]) -> Result<T, ReplyError>,
    ) -> Option<T> {
        for attempt in 0..=self.retries {
            if attempt > 0 {
                self.counters.retransmits.fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = ep.socket.send(packet).await {
                tracing::debug!("radius: send: {e}");
            }
            let deadline = Instant::now() + self.timeout;
            loop {
                match tokio::time::timeout_at(deadline, slot.rx.recv()).await {
                    Err(_) => break,
                    Ok(None) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    Ok(Some(raw)) => match check(&raw) {
                        Ok(t) => return Some(t),
                        Err(e) => {
                            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!("radius: dropped response: {e}");
                        }
                    },
                }
            }
        }
        None
    }

    fn answered(&self, server: &Server, ok: bool) {
        if ok {
            server.set_dead_until(None);
        } else {
            self.counters.failovers.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("radius: server {} did not answer", server.addr);
            server.set_dead_until(Some(Instant::now() + self.dead_time));
        }
    }

    /// Asks the servers for a verdict on `req`.
    pub async fn authenticate(&self, req: &AccessRequest) -> Result<AccessReply, RadiusError> {
        if self.servers.is_empty() {
            return Err(RadiusError::NoServers);
        }
        for server in self.order() {
            let mut slot = server.auth.allocate().await;
            let auth = self.random_authenticator();
            let secret = server.secret.expose();
            let packet = message::encode_access_request(req, &self.nas, slot.id, auth, secret)?;
            let reply = self
                .exchange(&server.auth, &mut slot, &packet, |raw| {
                    message::decode_access_reply(raw, &packet, secret)
                })
                .await;
            self.answered(server, reply.is_some());
            if let Some(r) = reply {
                return Ok(r);
            }
        }
        Err(RadiusError::NoResponse)
    }

    /// Sends an accounting record and waits for its Accounting-Response.
    pub async fn account(&self, req: &AccountingRequest) -> Result<(), RadiusError> {
        if self.servers.is_empty() {
            return Err(RadiusError::NoServers);
        }
        let start = Instant::now();
        for server in self.order() {
            let mut slot = server.acct.allocate().await;
            let mut rec = req.clone();
            let waited = u32::try_from(start.elapsed().as_secs()).unwrap_or(u32::MAX);
            rec.delay_time = rec.delay_time.saturating_add(waited);
            let secret = server.secret.expose();
            let packet = message::encode_accounting_request(&rec, &self.nas, slot.id, secret)?;
            let reply = self
                .exchange(&server.acct, &mut slot, &packet, |raw| {
                    message::check_accounting_response(raw, &packet, secret)
                })
                .await;
            self.answered(server, reply.is_some());
            if reply.is_some() {
                return Ok(());
            }
        }
        Err(RadiusError::NoResponse)
    }
}
