//! The SIP bridge, sans-IO: registrar and call router (a B2BUA) for ATA lines, SIP phones and
//! the modem pool, in the quinn-proto style. Datagrams and clock ticks go in through
//! [`Bridge::handle_datagram`] and [`Bridge::handle_timeout`]; port states and PPP session
//! ends through [`Bridge::set_port_state`] and [`Bridge::hangup_port`]; datagrams, events and
//! the next deadline come out of [`Bridge::poll_transmit`], [`Bridge::poll_event`] and
//! [`Bridge::poll_timeout`]. No clock, no sockets, no panics on any input.
//!
//! * REGISTER: MD5 digest (401 challenge, `stale=true` for an expired nonce, 403 for wrong
//!   credentials), bindings with expiry in the [`Registrar`]; qualify (OPTIONS keepalive) with
//!   reachability and latency.
//! * INVITE: routed by the [`Dialplan`] (else by an account's name, extension or alias) to an
//!   account or a hunt group of modem lines. Lines that are unregistered, already in a call, or
//!   whose nasd port is busy or down are skipped; a line answering 486/408/480/503, or not
//!   answering within `ring_timeout`, is cancelled and the next one rung (serial hunting);
//!   all lines unusable → 486, no route → 404, an account not registered → 480.
//! * The bridge is a B2BUA: the called line gets a new INVITE (new Call-ID and tags) with the
//!   caller's SDP unchanged, so media flows directly between the devices (`directmedia`).
//!   CANCEL, ACK, BYE and re-INVITE are carried across; 2xx retransmissions are the bridge's
//!   job on each leg.
//! * Requests are checked: source ACL (403), Max-Forwards (483), parse errors (400, 513),
//!   methods (405), load (503).
//! * Every call attempt ends in one [`CallRecord`] event for the accounting journal.

mod build;
mod call;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::config::SipConfig;
use super::dialplan::Dialplan;
use super::digest::{Challenger, Credential, Verdict};
use super::message::{Contacts, Message, Method, ParseError};
use super::registrar::{Contact, ContactReq, RegisterRequest, Registrar, RegistrarConfig};
use super::transaction::{self, Event, Incoming, TransactionId, TransactionLayer};
use super::view::{CallView, RegistrationView};
use crate::accounting::CallRecord;
use crate::proto::rng::Rng;
use call::Call;

/// The time, as the bridge needs it: monotonic for timers, Unix seconds for nonces and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time.
    pub at: Instant,
    /// Seconds since the Unix epoch.
    pub unix: u64,
}

/// What nasd says about a modem line's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    /// Waiting for a call: the line may be rung.
    Free,
    /// Ringing, answering or in a PPP session.
    Busy,
    /// Not working (opening, initialising, backing off after a failure).
    Down,
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeEvent {
    /// A call attempt ended: write this record to the accounting journal.
    Record(CallRecord),
    /// A call to a modem line was answered: a PPP session on `port` now belongs to it.
    Answered {
        /// The bridge's call number.
        call: u64,
        /// The modem line's nasd port.
        port: String,
        /// The calling number.
        caller: String,
    },
    /// An answered call to a modem line ended: end the PPP session on `port`.
    Ended {
        /// The bridge's call number.
        call: u64,
        /// The modem line's nasd port.
        port: String,
    },
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Datagrams that did not parse (answered 400/513 when possible).
    pub malformed: u64,
    /// Requests refused by the source ACL.
    pub forbidden: u64,
    /// Successful registrations (and refreshes and removals).
    pub registrations: u64,
    /// REGISTERs refused for wrong credentials.
    pub auth_failures: u64,
    /// Calls accepted for routing.
    pub calls: u64,
    /// Calls answered.
    pub answered: u64,
}

/// Where a client transaction's response goes.
#[derive(Debug, Clone)]
pub(crate) enum ClientRole {
    /// A call's INVITE to a line (the attempt number says which).
    LineInvite { call: u64, attempt: u32 },
    /// A qualify probe.
    Qualify {
        aor: String,
        contact: String,
        sent: Instant,
    },
    /// A re-INVITE relayed for a call: the originator's server transaction.
    ReInvite {
        call: u64,
        server: TransactionId,
        from_a: bool,
    },
    /// Anything whose answer does not matter (BYE, CANCEL).
    Fire,
}

/// The registrar and call router.
#[derive(Debug)]
pub struct Bridge {
    pub(crate) config: SipConfig,
    pub(crate) local: SocketAddr,
    pub(crate) tl: TransactionLayer,
    registrar: Registrar,
    challenger: Challenger,
    pub(crate) dialplan: Dialplan,
    pub(crate) rng: Rng,
    /// nasd's view of each port.
    ports: HashMap<String, LineState>,
    pub(crate) calls: HashMap<u64, Call>,
    /// Call-ID (either leg's) → call.
    pub(crate) by_call_id: HashMap<String, u64>,
    /// Server INVITE transaction from the caller → call.
    pub(crate) by_server_tx: HashMap<TransactionId, u64>,
    pub(crate) clients: HashMap<TransactionId, ClientRole>,
    /// Account → the call using it.
    pub(crate) line_calls: HashMap<String, u64>,
    /// (AOR, contact) → User-Agent.
    agents: HashMap<(String, String), String>,
    pub(crate) next_call: u64,
    pub(crate) events: VecDeque<BridgeEvent>,
    pub(crate) stats: BridgeStats,
}

impl Bridge {
    /// A bridge for `config`, sending from `local` (the address in Via and Contact), with
    /// `seed` (32 random bytes) for nonces, tags, branches and Call-IDs.
    pub fn new(config: SipConfig, local: SocketAddr, seed: [u8; 32]) -> Result<Bridge, String> {
        let dialplan = Dialplan::new(config.rules.clone()).map_err(|e| e.to_string())?;
        let mut rng = Rng::new(seed);
        let mut key = [0u8; 32];
        rng.fill(&mut key);
        let challenger = Challenger::new(&config.realm, &key, config.nonce_lifetime.as_secs());
        let registrar = Registrar::new(RegistrarConfig {
            min_expires: config.min_expires,
            max_expires: config.max_expires,
            default_expires: config.default_expires,
            max_bindings_per_aor: 10,
            max_aors: config.accounts.len().max(1),
        });
        let tl = TransactionLayer::new(transaction::Config {
            // Finished REGISTER/OPTIONS transactions stay 32 s (Timer J) at about half a KiB
            // each: room for some 6,000 registrations a second, sustained.
            max_transactions: config.max_calls.saturating_mul(8).max(200_000),
            ..Default::default()
        });
        Ok(Bridge {
            config,
            local,
            tl,
            registrar,
            challenger,
            dialplan,
            rng,
            ports: HashMap::new(),
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            by_server_tx: HashMap::new(),
            clients: HashMap::new(),
            line_calls: HashMap::new(),
            agents: HashMap::new(),
            next_call: 1,
            events: VecDeque::new(),
            stats: BridgeStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> BridgeStats {
        self.stats
    }

    /// A random token of 16 hex digits (tags, branches, Call-IDs).
    pub(crate) fn token(&mut self) -> String {
        format!("{:08x}{:08x}", self.rng.next_u32(), self.rng.next_u32())
    }

    /// nasd reports a port's state.
    pub fn set_port_state(&mut self, port: &str, state: LineState) {
        self.ports.insert(port.to_string(), state);
    }

    /// A port's state as last reported (`Down` if never).
    pub(crate) fn port_state(&self, port: &str) -> LineState {
        self.ports.get(port).copied().unwrap_or(LineState::Down)
    }

    /// Whether `account` has a live binding.
    pub(crate) fn lookup(&self, now: Instant, account: &str) -> Vec<super::registrar::Binding> {
        self.registrar.lookup(now, account)
    }

    /// Feeds one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Now, from: SocketAddr, buf: &[u8]) {
        let mut msg = match Message::parse_with_limit(buf, self.config.max_message_size) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                let reason = match e {
                    ParseError::TooLarge => "Message Too Large",
                    ParseError::Malformed(_) => "Bad Request",
                };
                if let Some(bytes) = build::raw_error_response(buf, e.status(), reason) {
                    self.tl.transmit_raw(from, bytes);
                }
                return;
            }
        };
        if let Message::Request { method, .. } = &msg {
            let method = method.clone();
            if !self.config.allowed(from.ip()) {
                self.stats.forbidden += 1;
                if method != Method::Ack {
                    let r = build::response(&msg, 403, "Forbidden", None, None, None);
                    self.tl.transmit(from, &r);
                }
                return;
            }
            msg.stamp_via(from);
            // REGISTER and out-of-dialog OPTIONS are answered statelessly, as Kamailio's `sl`
            // does: a retransmission is simply answered again (the registrar takes an equal
            // CSeq as a retransmission), and no transaction lingers for Timer J's 32 s.
            let in_dialog = msg.to().is_some_and(|t| t.tag().is_some());
            match method {
                Method::Register => {
                    let r = self.on_register(now, &msg, from);
                    self.tl.transmit(from, &r);
                    return;
                }
                Method::Options if !in_dialog => {
                    let r = self.options_response(&msg);
                    self.tl.transmit(from, &r);
                    return;
                }
                _ => {}
            }
        }
        match self.tl.handle_incoming(now.at, msg, from) {
            Incoming::NewRequest(id, req) => self.on_request(now, id, req, from),
            Incoming::Response(id, resp) => self.on_response(now, id, resp),
            Incoming::Absorbed => {}
            Incoming::Stray(m) => self.on_stray(m),
        }
        self.drain_tl_events(now);
    }

    /// A request in a new server transaction. REGISTER and out-of-dialog OPTIONS never get
    /// here: [`Bridge::handle_datagram`] answers them statelessly.
    fn on_request(&mut self, now: Now, id: TransactionId, req: Message, from: SocketAddr) {
        let Message::Request { method, .. } = &req else {
            return;
        };
        let in_dialog = req.to().is_some_and(|t| t.tag().is_some());
        match method {
            Method::Invite if !in_dialog => self.on_invite(now, id, req, from),
            Method::Cancel => self.on_cancel(now, id, &req),
            Method::Invite | Method::Bye | Method::Options => {
                self.on_in_dialog(now, id, req);
            }
            _ => {
                let mut r = build::response(&req, 405, "Method Not Allowed", None, None, None);
                r.headers_mut().push("Allow", build::ALLOW);
                self.respond(now, id, r);
            }
        }
    }

    /// 200 to an OPTIONS outside a dialog (a keepalive or capability query).
    fn options_response(&mut self, req: &Message) -> Message {
        let mut r = build::response(req, 200, "OK", Some(&self.token()), None, None);
        r.headers_mut().push("Allow", build::ALLOW);
        r.headers_mut().push("Accept", "application/sdp");
        r
    }

    /// Answers in a server transaction (a refused call into a finished transaction is
    /// harmless: it was already answered).
    pub(crate) fn respond(&mut self, now: Now, id: TransactionId, r: Message) {
        let _ = self.tl.respond(now.at, id, r);
    }

    /// The answer to a REGISTER. Unknown accounts are challenged like known ones (no
    /// account probing), then refused.
    fn on_register(&mut self, now: Now, req: &Message, from: SocketAddr) -> Message {
        let aor = req
            .to()
            .and_then(|t| t.sip_uri())
            .and_then(|u| u.user)
            .filter(|u| self.config.account(u).is_some());
        let Some(auth) = req.headers().get("Authorization") else {
            let mut r = build::response(req, 401, "Unauthorized", Some(&self.token()), None, None);
            let ch = self.challenger.challenge(now.unix, false);
            r.headers_mut().push("WWW-Authenticate", ch);
            return r;
        };
        let accounts = &self.config.accounts;
        let verdict = self.challenger.verify(now.unix, "REGISTER", auth, |user| {
            accounts
                .iter()
                .find(|a| a.name == user)
                .map(|a| Credential::Password(a.secret.clone()))
        });
        let status = match (&verdict, &aor) {
            (Verdict::Ok(user), Some(aor)) if user == aor => None,
            (Verdict::Stale, Some(_)) => {
                let mut r =
                    build::response(req, 401, "Unauthorized", Some(&self.token()), None, None);
                let ch = self.challenger.challenge(now.unix, true);
                r.headers_mut().push("WWW-Authenticate", ch);
                return r;
            }
            (Verdict::Malformed, _) => Some((400, "Bad Request")),
            _ => Some((403, "Forbidden")),
        };
        if let Some((code, reason)) = status {
            if code == 403 {
                self.stats.auth_failures += 1;
                tracing::warn!(source = %from, account = ?aor, "SIP REGISTER refused: wrong credentials");
            }
            let r = build::response(req, code, reason, Some(&self.token()), None, None);
            return r;
        }
        let Some(aor) = aor else {
            return build::response(req, 403, "Forbidden", None, None, None);
        };
        let contacts = match req.contact() {
            Some(Contacts::Wildcard) => Contact::Wildcard,
            Some(Contacts::List(list)) => Contact::List(
                list.iter()
                    .filter(|n| build::usable_uri(&n.uri))
                    .map(|n| ContactReq {
                        uri: n.uri.clone(),
                        expires: n.expires(),
                        q: n.params.get("q").flatten().and_then(|q| q.parse().ok()),
                    })
                    .collect(),
            ),
            None => Contact::List(Vec::new()),
        };
        let register = RegisterRequest {
            aor: aor.clone(),
            call_id: req.call_id().unwrap_or_default().to_string(),
            cseq: req.cseq().map_or(0, |c| c.seq),
            contacts,
            expires: req.expires(),
            source: from,
        };
        let agent = req.headers().get("User-Agent").map(str::to_string);
        match self.registrar.register(now.at, register) {
            Ok(bindings) => {
                self.stats.registrations += 1;
                let mut r = build::response(req, 200, "OK", Some(&self.token()), None, None);
                self.agents
                    .retain(|(a, c), _| a != &aor || bindings.iter().any(|b| &b.contact == c));
                for b in &bindings {
                    r.headers_mut().push(
                        "Contact",
                        format!("<{}>;expires={}", b.contact, b.remaining(now.at)),
                    );
                    if let Some(ua) = &agent {
                        self.agents
                            .insert((aor.clone(), b.contact.clone()), ua.clone());
                    }
                }
                tracing::debug!(account = %aor, source = %from, bindings = bindings.len(), "SIP registration");
                r
            }
            Err(e) => {
                let mut r = build::response(
                    req,
                    e.status(),
                    &e.to_string(),
                    Some(&self.token()),
                    None,
                    None,
                );
                if let super::registrar::RegError::IntervalTooBrief { min } = e {
                    r.headers_mut().push("Min-Expires", min.to_string());
                }
                r
            }
        }
    }

    fn on_response(&mut self, now: Now, id: TransactionId, resp: Message) {
        let Message::Response { status, .. } = &resp else {
            return;
        };
        let status = *status;
        let role = if status >= 200 {
            self.clients.remove(&id)
        } else {
            self.clients.get(&id).cloned()
        };
        match role {
            Some(ClientRole::LineInvite { call, attempt }) => {
                self.on_line_response(now, call, attempt, resp)
            }
            Some(ClientRole::Qualify { aor, contact, sent }) if status >= 200 => {
                let rtt = now.at.saturating_duration_since(sent);
                self.registrar.qualified(&aor, &contact, now.at, Some(rtt));
            }
            Some(ClientRole::ReInvite {
                call,
                server,
                from_a,
            }) => self.on_reinvite_response(now, call, server, from_a, resp),
            Some(_) => {}
            None => {
                if (200..300).contains(&status) {
                    self.reject_late_2xx(now, &resp);
                }
            }
        }
    }

    fn drain_tl_events(&mut self, now: Now) {
        while let Some(ev) = self.tl.poll_event() {
            match ev {
                Event::Timeout(id) => {
                    if let Some(role) = self.clients.remove(&id) {
                        match role {
                            ClientRole::LineInvite { call, attempt } => {
                                self.on_line_failure(now, call, attempt, 408)
                            }
                            ClientRole::Qualify { aor, contact, .. } => {
                                self.registrar.qualified(&aor, &contact, now.at, None);
                            }
                            ClientRole::ReInvite { call, server, .. } => {
                                self.on_reinvite_timeout(now, call, server)
                            }
                            ClientRole::Fire => {}
                        }
                    } else if let Some(call) = self.by_server_tx.remove(&id) {
                        self.on_caller_timeout(now, call);
                    }
                }
                Event::Terminated(id) => {
                    self.clients.remove(&id);
                    self.by_server_tx.remove(&id);
                }
            }
        }
    }

    /// Fires every timer due at `now`: transactions, ringing lines, 2xx retransmissions,
    /// registration expiry and qualify probes.
    pub fn handle_timeout(&mut self, now: Now) {
        self.tl.handle_timeout(now.at);
        self.drain_tl_events(now);
        self.call_timers(now);
        for aor in self.registrar.expire(now.at) {
            tracing::info!(account = %aor, "SIP registration expired");
            self.agents.retain(|(a, _), _| a != &aor);
        }
        if let Some(interval) = self.config.qualify_interval {
            for (aor, contact, source) in self.registrar.due_for_qualify(now.at, interval) {
                self.send_qualify(now, aor, contact, source);
            }
        }
        self.drain_tl_events(now);
    }

    fn send_qualify(&mut self, now: Now, aor: String, contact: String, source: SocketAddr) {
        let branch = build::branch(&self.token());
        let from = format!(
            "<sip:nasd@{}>;tag={}",
            build::hostport(self.local),
            self.token()
        );
        let call_id = format!("{}@nasd", self.token());
        let msg = build::request(
            Method::Options,
            &contact,
            self.local,
            &branch,
            70,
            &from,
            &format!("<sip:{aor}@{}>", build::host(self.local)),
            &call_id,
            1,
            &[("User-Agent", build::AGENT)],
            Vec::new(),
        );
        if let Ok(id) = self.tl.send_request(now.at, msg, source) {
            self.clients.insert(
                id,
                ClientRole::Qualify {
                    aor,
                    contact,
                    sent: now.at,
                },
            );
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.tl.poll_transmit()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<BridgeEvent> {
        self.events.pop_front()
    }

    /// When [`Bridge::handle_timeout`] should next be called.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let mut next = self.tl.poll_timeout();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        consider(self.call_deadline());
        consider(self.registrar.next_expiry());
        if let Some(i) = self.config.qualify_interval {
            consider(self.registrar.next_qualify(now, i));
        }
        next
    }

    /// The registered contacts, for `nasctl sip registrations`.
    pub fn registrations(&self, now: Instant) -> Vec<RegistrationView> {
        let mut out = Vec::new();
        for (aor, bindings) in self.registrar.iter() {
            let port = self.config.account(aor).and_then(|a| a.port.clone());
            for b in bindings.iter().filter(|b| b.expires_at > now) {
                let status = match (b.reachable, b.latency) {
                    (Some(true), Some(l)) if l > self.config.qualify_max => "lagged",
                    (Some(true), _) => "reachable",
                    (Some(false), _) => "unreachable",
                    (None, _) => "unknown",
                };
                out.push(RegistrationView {
                    account: aor.to_string(),
                    contact: b.contact.clone(),
                    source: b.source.to_string(),
                    expires_in: b.remaining(now),
                    port: port.clone(),
                    status: status.to_string(),
                    latency_ms: b.latency.map(|l| l.as_secs_f64() * 1000.0),
                    user_agent: self
                        .agents
                        .get(&(aor.to_string(), b.contact.clone()))
                        .cloned(),
                });
            }
        }
        out
    }

    /// The calls in progress, for `nasctl sip calls`.
    pub fn calls(&self) -> Vec<CallView> {
        let mut v: Vec<CallView> = self.calls.values().map(Call::view).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// The caller's number of the answered call on this modem port, if any.
    pub fn caller_on_port(&self, port: &str) -> Option<String> {
        self.calls
            .values()
            .find(|c| c.answered_port() == Some(port))
            .map(|c| c.caller.clone())
    }
}

/// How long a 2xx is retransmitted without an ACK (64·T1).
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(32);
