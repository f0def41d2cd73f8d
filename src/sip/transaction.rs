//! RFC 3261 §17 transactions over UDP, sans-IO in the quinn-proto style: messages and clock
//! ticks go in through `handle_*`/[`TransactionLayer::send_request`]/[`TransactionLayer::respond`],
//! datagrams, events and the next deadline come out through `poll_*`.
//!
//! * Server INVITE (§17.2.1): Proceeding → Completed → Confirmed → Terminated. A 100 Trying is
//!   sent at once (configurable); a 2xx ends the transaction at once (RFC 3261, not RFC 6026:
//!   2xx retransmission is the TU's job); a 300-699 is retransmitted on Timer G until the ACK
//!   or Timer H; Timer I absorbs ACK retransmissions.
//! * Server non-INVITE (§17.2.2): Trying → Proceeding → Completed → Terminated (Timer J).
//! * Client INVITE (§17.1.1): Calling (Timer A, Timer B) → Proceeding → Completed (ACK for
//!   300-699 with the same branch, Timer D) → Terminated; a 2xx is passed up and terminates.
//! * Client non-INVITE (§17.1.2): Trying/Proceeding (Timer E capped at T2, Timer F) →
//!   Completed (Timer K) → Terminated.
//!
//! Request retransmissions are absorbed (the last response is sent again). Matching (§17.2.3,
//! §17.1.3) uses the top Via branch (plus sent-by and method for servers, ACK matching its
//! INVITE); a branch without the `z9hG4bK` cookie falls back to a key built from Call-ID,
//! From tag, CSeq number and the top Via (simplified RFC 2543 matching). The layer is bounded:
//! beyond [`Config::max_transactions`] new requests are answered 503 (or dropped) and counted.
//! Pure: no I/O, no clock, never panics.

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::message::{Headers, Message, Method, Via};

/// The RFC 3261 magic cookie that starts every compliant branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Timer values and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// T1, the RTT estimate (500 ms).
    pub t1: Duration,
    /// T2, the cap on non-INVITE request and INVITE response retransmit intervals (4 s).
    pub t2: Duration,
    /// T4, the longest a message stays in the network (5 s): Timers I and K.
    pub t4: Duration,
    /// Timer D, how long a client INVITE stays Completed (at least 32 s over UDP).
    pub timer_d: Duration,
    /// How long an INVITE transaction (client or server) may stay in Proceeding without a
    /// final response before [`Event::Timeout`]: a bound like a proxy's Timer C (180 s), so
    /// that no transaction lives forever.
    pub invite_limit: Duration,
    /// Live transactions at most; beyond it new requests are refused.
    pub max_transactions: usize,
    /// When full: answer new requests (not ACK) with 503 (true) or drop them silently.
    pub reject_when_full: bool,
    /// Send 100 Trying as soon as an INVITE server transaction is created (§17.2.1).
    pub auto_trying: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            invite_limit: Duration::from_secs(180),
            max_transactions: 10_000,
            reject_when_full: true,
            auto_trying: true,
        }
    }
}

/// Identifies a transaction within one [`TransactionLayer`]; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub u64);

/// Which of the four state machines a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// INVITE client transaction.
    ClientInvite,
    /// Non-INVITE client transaction.
    ClientNonInvite,
    /// INVITE server transaction.
    ServerInvite,
    /// Non-INVITE server transaction.
    ServerNonInvite,
}

/// Transaction states (§17). Terminated transactions are removed, so never seen here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Client INVITE, request sent, no response yet.
    Calling,
    /// Non-INVITE, no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final response was received (client) or sent (server); absorbing retransmissions.
    Completed,
    /// Server INVITE: ACK received, absorbing ACK retransmissions (Timer I).
    Confirmed,
}

/// What an incoming message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A new request: a server transaction was created for it; answer with
    /// [`TransactionLayer::respond`].
    NewRequest(TransactionId, Message),
    /// A response for a client transaction, to pass up to the TU.
    Response(TransactionId, Message),
    /// A retransmission or ACK handled inside a transaction, or a request refused because the
    /// layer is full.
    Absorbed,
    /// Matches no transaction: an ACK for a 2xx, a stray or late response (e.g. a 2xx
    /// retransmission), or a request without a usable top Via.
    Stray(Message),
}

/// Something the TU must know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Timer B or F fired (client: no final response), Timer H fired (server: no ACK), a
    /// client INVITE stayed in Proceeding past [`Config::invite_limit`], or a server
    /// transaction got no final response from the TU in time.
    Timeout(TransactionId),
    /// The transaction ended and was removed.
    Terminated(TransactionId),
}

/// Why a call into the layer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No live transaction with this id (perhaps already terminated).
    UnknownTransaction,
    /// A request was expected.
    NotARequest,
    /// A response was expected.
    NotAResponse,
    /// ACK is not sent through a client transaction (the TU sends ACK for 2xx itself).
    AckNotTransactional,
    /// The request has no usable top Via or CSeq.
    Malformed,
    /// A client transaction with this branch and method already exists.
    Duplicate,
    /// The transaction is not a server transaction, or its state allows no response.
    WrongState,
    /// [`Config::max_transactions`] transactions are live.
    Full,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownTransaction => "unknown transaction",
            Self::NotARequest => "not a request",
            Self::NotAResponse => "not a response",
            Self::AckNotTransactional => "ACK is not sent in a client transaction",
            Self::Malformed => "missing or malformed top Via or CSeq",
            Self::Duplicate => "duplicate client transaction",
            Self::WrongState => "not allowed in this transaction state",
            Self::Full => "too many transactions",
        })
    }
}

impl std::error::Error for Error {}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// New requests refused because the layer was full (503 or dropped).
    pub overloaded: u64,
    /// Timeout events raised.
    pub timeouts: u64,
    /// Retransmissions sent on timers or in answer to retransmitted requests.
    pub retransmissions: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Server {
        branch: String,
        host: String,
        port: u16,
        method: Method,
    },
    Client {
        branch: String,
        method: Method,
    },
}

#[derive(Debug)]
struct Tx {
    kind: Kind,
    state: State,
    key: Key,
    peer: SocketAddr,
    request: Message,
    /// Client: the request; server: the last response; resent on retransmission.
    last: Option<Vec<u8>>,
    /// Client INVITE in Completed: the ACK, resent for each retransmitted final response.
    ack: Option<Vec<u8>>,
    /// Next retransmission and the interval after it.
    retx: Option<(Instant, Duration)>,
    /// When the state's main timer fires, and whether that is a timeout for the TU.
    deadline: Option<(Instant, bool)>,
    /// The entry in the timer index.
    scheduled: Option<Instant>,
}

impl Tx {
    fn next_wake(&self) -> Option<Instant> {
        match (self.retx.map(|r| r.0), self.deadline.map(|d| d.0)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `now + d`, saturating at `now` plus a large bound instead of panicking on overflow.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// The top Via of a message, parsed.
fn top_via(msg: &Message) -> Option<Via> {
    Via::parse(msg.headers().list("Via").next()?)
}

/// The branch used for matching: the Via branch when RFC 3261 compliant, else a key made of
/// Call-ID, From tag, CSeq number and the top Via (sent-by) for RFC 2543 peers.
fn match_branch(msg: &Message, via: &Via) -> Option<String> {
    match via.branch() {
        Some(b) if b.starts_with(MAGIC_COOKIE) => Some(b.to_string()),
        _ => {
            let cseq = msg.cseq()?;
            let from_tag = msg.from().and_then(|f| f.tag().map(str::to_string));
            Some(format!(
                "2543|{}|{}|{}|{}:{}",
                msg.call_id().unwrap_or(""),
                from_tag.as_deref().unwrap_or(""),
                cseq.seq,
                via.host.to_ascii_lowercase(),
                via.port.unwrap_or(5060)
            ))
        }
    }
}

/// The server key of a request; ACK maps to its INVITE (§17.2.3).
fn server_key(msg: &Message) -> Option<Key> {
    let Message::Request { method, .. } = msg else {
        return None;
    };
    let via = top_via(msg)?;
    let branch = match_branch(msg, &via)?;
    let method = if *method == Method::Ack {
        Method::Invite
    } else {
        method.clone()
    };
    Some(Key::Server {
        branch,
        host: via.host.to_ascii_lowercase(),
        port: via.port.unwrap_or(5060),
        method,
    })
}

/// The client key of a request sent or a response received: top Via branch + CSeq method.
fn client_key(msg: &Message) -> Option<Key> {
    let via = top_via(msg)?;
    let branch = match_branch(msg, &via)?;
    Some(Key::Client {
        branch,
        method: msg.cseq()?.method,
    })
}

/// Where responses to a request go (§18.2.2 with RFC 3581): the source address and, unless
/// rport was asked for, the sent-by port.
fn response_target(from: SocketAddr, via: &Via) -> SocketAddr {
    if via.rport().is_some() {
        from
    } else {
        SocketAddr::new(from.ip(), via.port.unwrap_or(5060))
    }
}

/// The ACK for a non-2xx final response to `invite` (§17.1.1.3).
fn build_ack(invite: &Message, response: &Message) -> Option<Message> {
    let Message::Request { uri, .. } = invite else {
        return None;
    };
    let src = invite.headers();
    let mut headers = Headers::default();
    headers.push("Via", src.list("Via").next()?);
    headers.push("Max-Forwards", "70");
    if let Some(v) = src.get("From") {
        headers.push("From", v);
    }
    if let Some(v) = response.headers().get("To") {
        headers.push("To", v);
    }
    if let Some(v) = src.get("Call-ID") {
        headers.push("Call-ID", v);
    }
    headers.push("CSeq", format!("{} ACK", invite.cseq()?.seq));
    for r in src.get_all("Route") {
        headers.push("Route", r);
    }
    headers.push("Content-Length", "0");
    Some(Message::Request {
        method: Method::Ack,
        uri: uri.clone(),
        headers,
        body: Vec::new(),
    })
}

/// Many transactions keyed by id, with their timers; see the module documentation.
#[derive(Debug)]
pub struct TransactionLayer {
    config: Config,
    next_id: u64,
    txs: HashMap<TransactionId, Tx>,
    by_key: HashMap<Key, TransactionId>,
    timers: BTreeSet<(Instant, TransactionId)>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Default for TransactionLayer {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl TransactionLayer {
    /// A layer with these timers; zero durations are raised to 1 ms.
    pub fn new(mut config: Config) -> Self {
        let min = Duration::from_millis(1);
        for d in [
            &mut config.t1,
            &mut config.t2,
            &mut config.t4,
            &mut config.timer_d,
            &mut config.invite_limit,
        ] {
            *d = (*d).max(min);
        }
        Self {
            config,
            next_id: 0,
            txs: HashMap::new(),
            by_key: HashMap::new(),
            timers: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The kind and state of a live transaction.
    pub fn state(&self, id: TransactionId) -> Option<(Kind, State)> {
        self.txs.get(&id).map(|t| (t.kind, t.state))
    }

    /// The request that created a live transaction.
    pub fn request(&self, id: TransactionId) -> Option<&Message> {
        self.txs.get(&id).map(|t| &t.request)
    }

    /// The live INVITE server transaction a CANCEL targets (§9.2: same top Via branch and
    /// sent-by, method INVITE).
    pub fn cancel_target(&self, cancel: &Message) -> Option<TransactionId> {
        let Some(Key::Server {
            branch, host, port, ..
        }) = server_key(cancel)
        else {
            return None;
        };
        let key = Key::Server {
            branch,
            host,
            port,
            method: Method::Invite,
        };
        self.by_key.get(&key).copied()
    }

    /// 64·T1: Timers B, F, H and J.
    fn t1x64(&self) -> Duration {
        self.config.t1.saturating_mul(64)
    }

    fn alloc_id(&mut self) -> TransactionId {
        self.next_id = self.next_id.wrapping_add(1);
        TransactionId(self.next_id)
    }

    fn reschedule(&mut self, id: TransactionId) {
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let next = tx.next_wake();
        if tx.scheduled == next {
            return;
        }
        if let Some(old) = tx.scheduled.take() {
            self.timers.remove(&(old, id));
        }
        if let Some(at) = next {
            self.timers.insert((at, id));
        }
        tx.scheduled = next;
    }

    fn terminate(&mut self, id: TransactionId) {
        if let Some(tx) = self.txs.remove(&id) {
            if let Some(at) = tx.scheduled {
                self.timers.remove(&(at, id));
            }
            if self.by_key.get(&tx.key) == Some(&id) {
                self.by_key.remove(&tx.key);
            }
            self.events.push_back(Event::Terminated(id));
        }
    }

    fn retransmit(&mut self, to: SocketAddr, bytes: Option<Vec<u8>>) {
        if let Some(b) = bytes {
            self.stats.retransmissions += 1;
            self.transmits.push_back((to, b));
        }
    }

    /// Queues a datagram outside any transaction (ACK or 2xx retransmissions by the TU,
    /// stateless responses).
    pub fn transmit(&mut self, to: SocketAddr, msg: &Message) {
        self.transmits.push_back((to, msg.to_bytes()));
    }

    /// Queues raw bytes outside any transaction (answers to datagrams that did not parse).
    pub fn transmit_raw(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.transmits.push_back((to, bytes));
    }

    /// Feeds a parsed datagram received from `from`.
    pub fn handle_incoming(&mut self, now: Instant, msg: Message, from: SocketAddr) -> Incoming {
        match msg {
            Message::Request { .. } => self.incoming_request(now, msg, from),
            Message::Response { .. } => self.incoming_response(now, msg),
        }
    }

    fn incoming_request(&mut self, now: Instant, msg: Message, from: SocketAddr) -> Incoming {
        let (Some(key), Some(via)) = (server_key(&msg), top_via(&msg)) else {
            return Incoming::Stray(msg);
        };
        let is_ack = matches!(
            &msg,
            Message::Request {
                method: Method::Ack,
                ..
            }
        );
        if let Some(&id) = self.by_key.get(&key) {
            let Some(tx) = self.txs.get_mut(&id) else {
                return Incoming::Stray(msg);
            };
            if is_ack {
                if tx.kind == Kind::ServerInvite && tx.state == State::Completed {
                    tx.state = State::Confirmed;
                    tx.retx = None;
                    tx.deadline = Some((after(now, self.config.t4), false));
                    self.reschedule(id);
                }
                return Incoming::Absorbed;
            }
            // A retransmitted request: send the last response again, if any.
            let (peer, last) = (tx.peer, tx.last.clone());
            self.retransmit(peer, last);
            return Incoming::Absorbed;
        }
        if is_ack {
            return Incoming::Stray(msg);
        }
        let peer = response_target(from, &via);
        if self.txs.len() >= self.config.max_transactions {
            self.stats.overloaded += 1;
            if self.config.reject_when_full {
                let resp = Message::response_to(&msg, 503, "Service Unavailable", None);
                let mut resp = resp;
                resp.headers_mut().push("Retry-After", "5");
                self.transmit(peer, &resp);
            }
            return Incoming::Absorbed;
        }
        let id = self.alloc_id();
        let invite = matches!(
            &msg,
            Message::Request {
                method: Method::Invite,
                ..
            }
        );
        let mut tx = Tx {
            kind: if invite {
                Kind::ServerInvite
            } else {
                Kind::ServerNonInvite
            },
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            key: key.clone(),
            peer,
            request: msg.clone(),
            last: None,
            ack: None,
            retx: None,
            deadline: Some(if invite {
                (after(now, self.config.invite_limit), true)
            } else {
                (after(now, self.t1x64()), true)
            }),
            scheduled: None,
        };
        if invite && self.config.auto_trying {
            let trying = Message::response_to(&msg, 100, "Trying", None).to_bytes();
            self.transmits.push_back((peer, trying.clone()));
            tx.last = Some(trying);
        }
        self.txs.insert(id, tx);
        self.by_key.insert(key, id);
        self.reschedule(id);
        Incoming::NewRequest(id, msg)
    }

    fn incoming_response(&mut self, now: Instant, msg: Message) -> Incoming {
        let Message::Response { status, .. } = msg else {
            return Incoming::Stray(msg);
        };
        let Some(&id) = client_key(&msg).and_then(|k| self.by_key.get(&k)) else {
            return Incoming::Stray(msg);
        };
        let Some(tx) = self.txs.get_mut(&id) else {
            return Incoming::Stray(msg);
        };
        let t2 = self.config.t2;
        let provisional = status < 200;
        match (tx.kind, tx.state) {
            (Kind::ClientInvite, State::Calling | State::Proceeding) => {
                if provisional {
                    tx.state = State::Proceeding;
                    tx.retx = None;
                    // Timer B no longer applies once a provisional arrived (§17.1.1.2); the
                    // Timer C-like bound does, restarted by each provisional.
                    tx.deadline = Some((after(now, self.config.invite_limit), true));
                    self.reschedule(id);
                } else if status < 300 {
                    self.terminate(id);
                } else {
                    let ack = build_ack(&tx.request, &msg).map(|a| a.to_bytes());
                    if let Some(a) = &ack {
                        self.transmits.push_back((tx.peer, a.clone()));
                    }
                    tx.ack = ack;
                    tx.state = State::Completed;
                    tx.retx = None;
                    tx.deadline = Some((after(now, self.config.timer_d), false));
                    self.reschedule(id);
                }
                Incoming::Response(id, msg)
            }
            (Kind::ClientInvite, State::Completed) => {
                if status >= 300 {
                    let (peer, ack) = (tx.peer, tx.ack.clone());
                    self.retransmit(peer, ack);
                }
                Incoming::Absorbed
            }
            (Kind::ClientNonInvite, State::Trying | State::Proceeding) => {
                if provisional {
                    if tx.state == State::Trying {
                        tx.state = State::Proceeding;
                    }
                    if let Some((at, _)) = tx.retx {
                        tx.retx = Some((at, t2));
                    }
                } else {
                    tx.state = State::Completed;
                    tx.retx = None;
                    tx.deadline = Some((after(now, self.config.t4), false));
                }
                self.reschedule(id);
                Incoming::Response(id, msg)
            }
            _ => Incoming::Absorbed,
        }
    }

    /// Starts a client transaction for `msg` (not ACK) sent to `to`. The request must carry a
    /// top Via with a unique branch (starting with [`MAGIC_COOKIE`]) and a CSeq.
    pub fn send_request(
        &mut self,
        now: Instant,
        msg: Message,
        to: SocketAddr,
    ) -> Result<TransactionId, Error> {
        let Message::Request { method, .. } = &msg else {
            return Err(Error::NotARequest);
        };
        if *method == Method::Ack {
            return Err(Error::AckNotTransactional);
        }
        let invite = *method == Method::Invite;
        let key = client_key(&msg).ok_or(Error::Malformed)?;
        if self.by_key.contains_key(&key) {
            return Err(Error::Duplicate);
        }
        if self.txs.len() >= self.config.max_transactions {
            return Err(Error::Full);
        }
        let id = self.alloc_id();
        let bytes = msg.to_bytes();
        self.transmits.push_back((to, bytes.clone()));
        let t1 = self.config.t1;
        let next = if invite {
            t1.saturating_mul(2)
        } else {
            t1.saturating_mul(2).min(self.config.t2)
        };
        let tx = Tx {
            kind: if invite {
                Kind::ClientInvite
            } else {
                Kind::ClientNonInvite
            },
            state: if invite {
                State::Calling
            } else {
                State::Trying
            },
            key: key.clone(),
            peer: to,
            request: msg,
            last: Some(bytes),
            ack: None,
            retx: Some((after(now, t1), next)),
            deadline: Some((after(now, self.t1x64()), true)),
            scheduled: None,
        };
        self.txs.insert(id, tx);
        self.by_key.insert(key, id);
        self.reschedule(id);
        Ok(id)
    }

    /// Sends a response in server transaction `id`, moving its state machine.
    pub fn respond(&mut self, now: Instant, id: TransactionId, msg: Message) -> Result<(), Error> {
        let Message::Response { status, .. } = &msg else {
            return Err(Error::NotAResponse);
        };
        let status = *status;
        let t1 = self.config.t1;
        let t1x64 = self.t1x64();
        let tx = self.txs.get_mut(&id).ok_or(Error::UnknownTransaction)?;
        let bytes = msg.to_bytes();
        let peer = tx.peer;
        match (tx.kind, tx.state) {
            (Kind::ServerInvite, State::Proceeding) => {
                self.transmits.push_back((peer, bytes.clone()));
                if status < 200 {
                    tx.last = Some(bytes);
                } else if status < 300 {
                    self.terminate(id);
                } else {
                    tx.last = Some(bytes);
                    tx.state = State::Completed;
                    tx.retx = Some((after(now, t1), t1.saturating_mul(2).min(self.config.t2)));
                    tx.deadline = Some((after(now, t1x64), true));
                    self.reschedule(id);
                }
                Ok(())
            }
            (Kind::ServerNonInvite, State::Trying | State::Proceeding) => {
                self.transmits.push_back((peer, bytes.clone()));
                tx.last = Some(bytes);
                if status < 200 {
                    tx.state = State::Proceeding;
                } else {
                    tx.state = State::Completed;
                    tx.deadline = Some((after(now, t1x64), false));
                    // Only the response is needed to absorb retransmissions for Timer J's
                    // 32 s: the request's memory goes now.
                    tx.request = Message::Request {
                        method: Method::Other(String::new()),
                        uri: String::new(),
                        headers: Headers::default(),
                        body: Vec::new(),
                    };
                    self.reschedule(id);
                }
                Ok(())
            }
            _ => Err(Error::WrongState),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, id));
            if let Some(tx) = self.txs.get_mut(&id) {
                tx.scheduled = None;
            }
            self.fire(now, id);
            self.reschedule(id);
        }
    }

    fn fire(&mut self, now: Instant, id: TransactionId) {
        let t2 = self.config.t2;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        if let Some((at, timeout)) = tx.deadline
            && at <= now
        {
            if timeout {
                self.stats.timeouts += 1;
                self.events.push_back(Event::Timeout(id));
            }
            self.terminate(id);
            return;
        }
        let Some((at, interval)) = tx.retx else {
            return;
        };
        if at > now {
            return;
        }
        // Timer A doubles without cap; E (T2 once Proceeding) and G are capped at T2.
        let next = match (tx.kind, tx.state) {
            (Kind::ClientInvite, _) => interval.saturating_mul(2),
            (Kind::ClientNonInvite, State::Proceeding) => t2,
            _ => interval.saturating_mul(2).min(t2),
        };
        // Late handling (a long gap) sends once and schedules from `now`.
        let due = if after(at, interval) <= now {
            after(now, interval)
        } else {
            after(at, interval)
        };
        tx.retx = Some((due, next));
        let (peer, last) = (tx.peer, tx.last.clone());
        self.retransmit(peer, last);
    }

    /// The next datagram to send: destination and bytes.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }
}
