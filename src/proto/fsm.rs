//! The RFC 1661 option-negotiation automaton (section 4), generic over a [`Negotiator`].
//!
//! All ten states and all sixteen events of the RFC's state transition table are implemented
//! here, with the restart timer and the three counters (Max-Terminate, Max-Configure,
//! Max-Failure). Which options are acceptable is not this module's business: a
//! [`Negotiator`] (LCP's or IPCP's policy) builds our Configure-Request and judges the peer's.
//!
//! ```text
//!       | State
//!       |    0         1         2         3         4         5         6         7         8           9
//! Events| Initial   Starting  Closed    Stopped   Closing   Stopping  Req-Sent  Ack-Rcvd  Ack-Sent    Opened
//! ------+-----------------------------------------------------------------------------------------------------
//!  Up   |    2     irc,scr/6     -         -         -         -         -         -         -           -
//!  Down |    -         -         0       tls/1       0         1         1         1         1         tld/1
//!  Open |  tls/1       1     irc,scr/6     3r        5r        5r        6         7         8           9r
//!  Close|    0       tlf/0       2         2         4         4     irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
//!       |
//!   TO+ |    -         -         -         -       str/4     str/5     scr/6     scr/6     scr/8         -
//!   TO- |    -         -         -         -       tlf/2     tlf/3     tlf/3p    tlf/3p    tlf/3p        -
//!       |
//!  RCR+ |    -         -       sta/2 irc,scr,sca/8   4         5       sca/8   sca,tlu/9   sca/8   tld,scr,sca/8
//!  RCR- |    -         -       sta/2 irc,scr,scn/6   4         5       scn/6     scn/7     scn/6   tld,scr,scn/6
//!  RCA  |    -         -       sta/2     sta/3       4         5       irc/7     scr/6x  irc,tlu/9   tld,scr/6x
//!  RCN  |    -         -       sta/2     sta/3       4         5     irc,scr/6   scr/6x  irc,scr/8   tld,scr/6x
//!       |
//!  RTR  |    -         -       sta/2     sta/3     sta/4     sta/5     sta/6     sta/6     sta/6   tld,zrc,sta/5
//!  RTA  |    -         -         2         3       tlf/2     tlf/3       6         6         8       tld,scr/6
//!       |
//!  RUC  |    -         -       scj/2     scj/3     scj/4     scj/5     scj/6     scj/7     scj/8       scj/9
//!  RXJ+ |    -         -         2         3         4         5         6         6         8           9
//!  RXJ- |    -         -       tlf/2     tlf/3     tlf/2     tlf/3     tlf/3     tlf/3     tlf/3   tld,irc,str/5
//!       |
//!  RXR  |    -         -         2         3         4         5         6         7         8         ser/9
//! ```
//! The restart option (`r`) is not taken: Open in Stopped, Stopping or Opened changes nothing.
//! The passive option (`p`) is not taken either. Packets received in Initial or Starting
//! cannot happen (the lower layer is down) and are dropped.
//!
//! Beyond the RFC: the number of Configure-Naks and -Rejects received in a row is bounded
//! (Max-Configure), so a peer that keeps Naking cannot hold the link in negotiation forever;
//! reaching the bound counts as negotiation failure (as TO-). Likewise for the
//! Configure-Rejects we send in a row: a peer that keeps asking for what we refuse gives up
//! after Max-Configure of them. As in pppd, only the first Ack, Nak or Reject for a request
//! counts (`seen_ack`): a duplicate cannot restart a negotiation that already moved on.

use super::wire::cp::{self, Opt, Options, Packet, code};
use core::time::Duration;
use std::time::Instant;

/// The ten states of the automaton.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Lower layer down, no Open.
    Initial,
    /// Open, waiting for the lower layer.
    Starting,
    /// Lower layer up, no Open.
    Closed,
    /// Open, but negotiation gave up or the peer terminated.
    Stopped,
    /// Terminate-Request sent after a Close.
    Closing,
    /// Terminate-Request sent, or received, while Open.
    Stopping,
    /// Configure-Request sent.
    ReqSent,
    /// Configure-Request sent and Configure-Ack received.
    AckRcvd,
    /// Configure-Request sent and Configure-Ack sent.
    AckSent,
    /// Both directions acknowledged.
    Opened,
}

/// Timer and counter settings (RFC 1661 section 4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsmConfig {
    /// The restart timer (default 3 s).
    pub restart: Duration,
    /// Configure-Requests sent without an answer before giving up (default 10).
    pub max_configure: u32,
    /// Terminate-Requests sent without an answer before giving up (default 2).
    pub max_terminate: u32,
    /// Configure-Naks sent before Naks become Rejects (default 5).
    pub max_failure: u32,
}

impl Default for FsmConfig {
    fn default() -> Self {
        Self {
            restart: Duration::from_secs(3),
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
        }
    }
}

/// What the automaton tells its owner about the layer (the RFC's tlu, tld, tls, tlf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// This-Layer-Up: the protocol reached Opened.
    Up,
    /// This-Layer-Down: the protocol left Opened.
    Down,
    /// This-Layer-Started: the lower layer is needed.
    Started,
    /// This-Layer-Finished: the lower layer is no longer needed.
    Finished,
}

/// The verdict on one option or a whole Configure-Request; the worst one decides the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Acceptable.
    Ack,
    /// Recognised, but the value is not acceptable: counter-proposal.
    Nak,
    /// Not recognised or not negotiable.
    Reject,
}

/// Accumulates the reply to a peer's Configure-Request.
#[derive(Debug, Default)]
pub struct Reply {
    verdict: Option<Verdict>,
    may_nak: bool,
    nak: Vec<u8>,
    rej: Vec<u8>,
}

impl Reply {
    /// An empty reply; `may_nak` is false once Max-Failure Naks were sent.
    pub fn new(may_nak: bool) -> Self {
        let mut r = Self::default();
        r.reset(may_nak);
        r
    }

    /// The options of the Configure-Nak.
    pub fn nak_options(&self) -> &[u8] {
        &self.nak
    }

    /// The options of the Configure-Reject.
    pub fn reject_options(&self) -> &[u8] {
        &self.rej
    }

    fn reset(&mut self, may_nak: bool) {
        self.verdict = Some(Verdict::Ack);
        self.may_nak = may_nak;
        self.nak.clear();
        self.rej.clear();
    }

    /// The option is acceptable as it is.
    pub fn ack(&mut self) {}

    /// The option is not acceptable; suggest `data` instead. Once Max-Failure Naks have been
    /// sent this turns into a Reject of `opt`.
    pub fn nak(&mut self, opt: &Opt<'_>, data: &[u8]) {
        if self.may_nak {
            cp::push_option(&mut self.nak, opt.kind, data);
            self.worsen(Verdict::Nak);
        } else {
            self.reject(opt);
        }
    }

    /// Suggests an option the peer did not include (a Nak may carry such hints).
    pub fn nak_missing(&mut self, kind: u8, data: &[u8]) {
        if self.may_nak {
            cp::push_option(&mut self.nak, kind, data);
            self.worsen(Verdict::Nak);
        }
    }

    /// The option is not recognised or not acceptable at all.
    pub fn reject(&mut self, opt: &Opt<'_>) {
        opt.emit(&mut self.rej);
        self.worsen(Verdict::Reject);
    }

    fn worsen(&mut self, v: Verdict) {
        self.verdict = Some(self.verdict.map_or(v, |w| w.max(v)));
    }

    /// The verdict so far.
    pub fn verdict(&self) -> Verdict {
        self.verdict.unwrap_or(Verdict::Ack)
    }
}

/// A control protocol's option policy.
pub trait Negotiator {
    /// A new negotiation starts: forget what was agreed and go back to the initial wishes.
    fn reset(&mut self);
    /// Appends the options of our next Configure-Request.
    fn build_request(&mut self, out: &mut Vec<u8>);
    /// Judges the options of the peer's Configure-Request (already checked to be well
    /// formed) into `reply`.
    fn judge_request(&mut self, options: Options<'_>, reply: &mut Reply);
    /// The peer acknowledged our request as it was sent.
    fn handle_ack(&mut self, options: Options<'_>);
    /// The peer suggested other values. Adjust the next request.
    fn handle_nak(&mut self, options: Options<'_>);
    /// The peer rejected options. Drop them from the next request.
    fn handle_reject(&mut self, options: Options<'_>);
}

/// Something the lower layer carries for the automaton: control packets of one protocol.
pub trait Sink {
    /// Sends a control packet of `protocol`.
    fn send_cp(&mut self, protocol: u16, code: u8, id: u8, data: &[u8]);
}

/// A plain list of the packets sent, for tests and simple drivers.
impl Sink for Vec<(u16, Vec<u8>)> {
    fn send_cp(&mut self, protocol: u16, code: u8, id: u8, data: &[u8]) {
        let mut p = Vec::new();
        cp::emit(code, id, data, &mut p);
        self.push((protocol, p));
    }
}

/// Counters of what the automaton dropped or refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsmStats {
    /// Packets with bad lengths or malformed options.
    pub malformed: u64,
    /// Replies whose identifier did not match our last request, or Acks that differed from it.
    pub unexpected: u64,
    /// Packets in a state where they cannot happen.
    pub ignored: u64,
    /// Code-Rejects sent.
    pub code_rejects: u64,
}

/// The automaton for one control protocol.
#[derive(Debug)]
pub struct Fsm {
    protocol: u16,
    state: State,
    config: FsmConfig,
    restart_count: u32,
    restart_at: Option<Instant>,
    /// Identifier for the next packet we originate.
    next_id: u8,
    /// Identifier and options of our last Configure-Request.
    req_id: u8,
    req: Vec<u8>,
    /// Configure-Naks we sent in this negotiation (Max-Failure).
    naks_sent: u32,
    /// Configure-Naks and -Rejects received in a row.
    naks_received: u32,
    /// Configure-Rejects sent in a row (no Configure-Ack sent since).
    rejects_sent: u32,
    /// An Ack, Nak or Reject for our current request was handled: later ones are copies.
    seen_ack: bool,
    /// Identifier and options of the peer's request we last acknowledged.
    acked_id: Option<u8>,
    acked_req: Vec<u8>,
    /// Data of our Terminate-Request (the reason text).
    term_reason: Vec<u8>,
    reply: Reply,
    failed: bool,
    stats: FsmStats,
}

impl Fsm {
    /// A new automaton in the Initial state.
    pub fn new(protocol: u16, config: FsmConfig) -> Self {
        Self {
            protocol,
            state: State::Initial,
            config,
            restart_count: 0,
            restart_at: None,
            next_id: 1,
            req_id: 0,
            req: Vec::new(),
            naks_sent: 0,
            naks_received: 0,
            rejects_sent: 0,
            seen_ack: false,
            acked_id: None,
            acked_req: Vec::new(),
            term_reason: Vec::new(),
            reply: Reply::default(),
            failed: false,
            stats: FsmStats::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The protocol number.
    pub fn protocol(&self) -> u16 {
        self.protocol
    }

    /// The settings.
    pub fn config(&self) -> &FsmConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &FsmStats {
        &self.stats
    }

    /// True when the automaton gave up negotiating (Max-Configure or Max-Failure reached, or
    /// a catastrophic Code- or Protocol-Reject).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// When the restart timer expires, if it runs.
    pub fn deadline(&self) -> Option<Instant> {
        self.restart_at
    }

    /// A fresh identifier for a packet we originate (Echo-Request, Protocol-Reject, ...).
    pub fn take_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn set_state(&mut self, s: State) {
        if s != self.state {
            tracing::debug!(
                protocol = super::wire::protocol::name(self.protocol),
                "{:?} -> {:?}",
                self.state,
                s
            );
        }
        self.state = s;
        if !matches!(
            s,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        ) {
            self.restart_at = None;
        }
    }

    // ---- actions -------------------------------------------------------------------------

    fn irc_configure(&mut self) {
        self.restart_count = self.config.max_configure;
    }

    fn irc_terminate(&mut self) {
        self.restart_count = self.config.max_terminate;
    }

    fn zrc(&mut self, now: Instant) {
        self.restart_count = 0;
        self.restart_at = Some(now + self.config.restart);
    }

    fn scr(&mut self, now: Instant, neg: &mut impl Negotiator, tx: &mut impl Sink) {
        if !matches!(self.state, State::ReqSent | State::AckRcvd | State::AckSent) {
            // Not negotiating yet: a fresh start (pppd's resetci).
            neg.reset();
            self.naks_sent = 0;
            self.naks_received = 0;
            self.rejects_sent = 0;
        }
        self.req.clear();
        neg.build_request(&mut self.req);
        self.req_id = self.take_id();
        self.seen_ack = false;
        tx.send_cp(self.protocol, code::CONF_REQ, self.req_id, &self.req);
        self.restart_count = self.restart_count.saturating_sub(1);
        self.restart_at = Some(now + self.config.restart);
    }

    fn str(&mut self, now: Instant, tx: &mut impl Sink) {
        let id = self.take_id();
        tx.send_cp(self.protocol, code::TERM_REQ, id, &self.term_reason);
        self.restart_count = self.restart_count.saturating_sub(1);
        self.restart_at = Some(now + self.config.restart);
    }

    fn sta(&self, id: u8, tx: &mut impl Sink) {
        tx.send_cp(self.protocol, code::TERM_ACK, id, &[]);
    }

    // ---- administrative and lower-layer events -------------------------------------------

    /// The lower layer is up.
    pub fn up(&mut self, now: Instant, neg: &mut impl Negotiator, tx: &mut impl Sink) {
        match self.state {
            State::Initial => self.set_state(State::Closed),
            State::Starting => {
                self.irc_configure();
                self.scr(now, neg, tx);
                self.set_state(State::ReqSent);
            }
            _ => self.stats.ignored += 1,
        }
    }

    /// The lower layer is down.
    pub fn down(&mut self) -> Option<Signal> {
        match self.state {
            State::Closed | State::Closing => self.set_state(State::Initial),
            State::Stopped => {
                self.set_state(State::Starting);
                return Some(Signal::Started);
            }
            State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.set_state(State::Starting)
            }
            State::Opened => {
                self.set_state(State::Starting);
                return Some(Signal::Down);
            }
            State::Initial | State::Starting => self.stats.ignored += 1,
        }
        None
    }

    /// The administrator (or the layer above) wants the protocol open.
    pub fn open(
        &mut self,
        now: Instant,
        neg: &mut impl Negotiator,
        tx: &mut impl Sink,
    ) -> Option<Signal> {
        match self.state {
            State::Initial => {
                self.set_state(State::Starting);
                return Some(Signal::Started);
            }
            State::Closed => {
                self.irc_configure();
                self.scr(now, neg, tx);
                self.set_state(State::ReqSent);
            }
            State::Closing => self.set_state(State::Stopping),
            _ => {}
        }
        None
    }

    /// The administrator (or the layer above) wants the protocol closed; `reason` goes into
    /// the Terminate-Request.
    pub fn close(&mut self, now: Instant, reason: &[u8], tx: &mut impl Sink) -> Option<Signal> {
        self.term_reason.clear();
        self.term_reason.extend_from_slice(reason);
        match self.state {
            State::Starting => {
                self.set_state(State::Initial);
                return Some(Signal::Finished);
            }
            State::Stopped => self.set_state(State::Closed),
            State::Stopping => self.set_state(State::Closing),
            State::ReqSent | State::AckRcvd | State::AckSent | State::Opened => {
                let was_open = self.state == State::Opened;
                self.irc_terminate();
                self.str(now, tx);
                self.set_state(State::Closing);
                if was_open {
                    return Some(Signal::Down);
                }
            }
            State::Initial | State::Closed | State::Closing => {}
        }
        None
    }

    /// The restart timer may have expired. Safe to call early.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        neg: &mut impl Negotiator,
        tx: &mut impl Sink,
    ) -> Option<Signal> {
        match self.restart_at {
            Some(t) if t <= now => {}
            _ => return None,
        }
        self.restart_at = None;
        if self.restart_count > 0 {
            // TO+
            match self.state {
                State::Closing | State::Stopping => self.str(now, tx),
                State::ReqSent | State::AckRcvd => {
                    self.scr(now, neg, tx);
                    self.set_state(State::ReqSent);
                }
                State::AckSent => self.scr(now, neg, tx),
                _ => {}
            }
            None
        } else {
            // TO-
            match self.state {
                State::Closing => {
                    self.set_state(State::Closed);
                    Some(Signal::Finished)
                }
                State::Stopping => {
                    self.set_state(State::Stopped);
                    Some(Signal::Finished)
                }
                State::ReqSent | State::AckRcvd | State::AckSent => {
                    self.failed = true;
                    self.set_state(State::Stopped);
                    Some(Signal::Finished)
                }
                _ => None,
            }
        }
    }

    // ---- received packets ----------------------------------------------------------------

    /// Handles a received packet with one of the codes 1 to 7; any other code is an unknown
    /// code (RUC) and is answered with a Code-Reject. Protocols with extra codes (LCP)
    /// handle those before calling this.
    pub fn receive(
        &mut self,
        now: Instant,
        pkt: &Packet<'_>,
        neg: &mut impl Negotiator,
        tx: &mut impl Sink,
    ) -> Option<Signal> {
        if matches!(self.state, State::Initial | State::Starting) {
            self.stats.ignored += 1;
            return None;
        }
        match pkt.code {
            code::CONF_REQ => self.rcr(now, pkt, neg, tx),
            code::CONF_ACK => self.rca(now, pkt, neg, tx),
            code::CONF_NAK | code::CONF_REJ => self.rcn(now, pkt, neg, tx),
            code::TERM_REQ => self.rtr(now, pkt.id, tx),
            code::TERM_ACK => self.rta(now, neg, tx),
            code::CODE_REJ => {
                // RFC 1661 5.6: the data is the rejected packet. Codes 1..=7 are the core of
                // the protocol: their rejection is catastrophic (RXJ-).
                match pkt.data.first() {
                    Some(c) if (1..=7).contains(c) => self.rxj_minus(now, tx),
                    Some(_) => self.rxj_plus(),
                    None => {
                        self.stats.malformed += 1;
                        None
                    }
                }
            }
            _ => {
                self.send_code_reject(pkt, 1500, tx);
                None
            }
        }
    }

    /// RUC: answers an unknown code with a Code-Reject carrying the packet, cut to `mru`.
    pub fn send_code_reject(&mut self, pkt: &Packet<'_>, mru: usize, tx: &mut impl Sink) {
        if matches!(self.state, State::Initial | State::Starting) {
            self.stats.ignored += 1;
            return;
        }
        let mut data = Vec::with_capacity(pkt.data.len() + 4);
        cp::emit(pkt.code, pkt.id, pkt.data, &mut data);
        data.truncate(mru.saturating_sub(4).max(4));
        let id = self.take_id();
        self.stats.code_rejects += 1;
        tx.send_cp(self.protocol, code::CODE_REJ, id, &data);
    }

    fn rcr(
        &mut self,
        now: Instant,
        pkt: &Packet<'_>,
        neg: &mut impl Negotiator,
        tx: &mut impl Sink,
    ) -> Option<Signal> {
        if Options::validate(pkt.data).is_err() {
            self.stats.malformed += 1;
            return None;
        }
        let mut signal = None;
        match self.state {
            State::Closed => {
                self.sta(pkt.id, tx);
                return None;
            }
            State::Closing | State::Stopping => return None,
            State::Stopped => {
                self.irc_configure();
                self.scr(now, neg, tx);
            }
            State::Opened => {
                if self.acked_id == Some(pkt.id) && self.acked_req == pkt.data {
                    // The request we acknowledged, identifier unchanged: a retransmission
                    // or a copy (RFC 1661 5.1: a new request gets a new identifier once a
                    // reply was received). Acknowledge it again instead of starting over.
                    tx.send_cp(self.protocol, code::CONF_ACK, pkt.id, pkt.data);
                    return None;
                }
                signal = Some(Signal::Down);
                self.scr_fresh(now, neg, tx);
            }
            _ => {}
        }
        // Judge the request and answer it.
        let mut reply = core::mem::take(&mut self.reply);
        reply.reset(self.naks_sent < self.config.max_failure);
        neg.judge_request(pkt.options(), &mut reply);
        let good = match reply.verdict() {
            Verdict::Ack => {
                self.rejects_sent = 0;
                self.acked_id = Some(pkt.id);
                self.acked_req.clear();
                self.acked_req.extend_from_slice(pkt.data);
                tx.send_cp(self.protocol, code::CONF_ACK, pkt.id, pkt.data);
                true
            }
            Verdict::Nak => {
                self.naks_sent += 1;
                tx.send_cp(self.protocol, code::CONF_NAK, pkt.id, &reply.nak);
                false
            }
            Verdict::Reject => {
                self.rejects_sent += 1;
                tx.send_cp(self.protocol, code::CONF_REJ, pkt.id, &reply.rej);
                false
            }
        };
        self.reply = reply;
        if self.rejects_sent > self.config.max_configure && signal.is_none() {
            // The peer keeps asking for what we refuse: give up as TO- does.
            self.failed = true;
            self.set_state(State::Stopped);
            return Some(Signal::Finished);
        }
        match (self.state, good) {
            (State::Stopped | State::ReqSent | State::AckSent | State::Opened, true) => {
                self.set_state(State::AckSent)
            }
            (State::Stopped | State::ReqSent | State::AckSent | State::Opened, false) => {
                self.set_state(State::ReqSent)
            }
            (State::AckRcvd, true) => {
                self.set_state(State::Opened);
                signal = Some(Signal::Up);
            }
            (State::AckRcvd, false) => {}
            _ => {}
        }
        signal
    }

    /// scr after leaving Opened: a new negotiation, with the negotiator reset.
    fn scr_fresh(&mut self, now: Instant, neg: &mut impl Negotiator, tx: &mut impl Sink) {
        self.set_state(State::Stopped); // not a negotiating state: scr resets
        self.irc_configure();
        self.scr(now, neg, tx);
    }

    fn rca(
        &mut self,
        now: Instant,
        pkt: &Packet<'_>,
        neg: &mut impl Negotiator,
        tx: &mut impl Sink,
    ) -> Option<Signal> {
        match self.state {
            State::Closed | State::Stopped => {
                self.sta(pkt.id, tx);
                return None;
            }
            State::Closing | State::Stopping => return None,
            _ => {}
        }
        if pkt.id != self.req_id || pkt.data != self.req.as_slice() || self.seen_ack {
            // RFC 1661 5.2: an Ack that does not match the request is invalid: discard. So
            // is a second answer to the same request (a duplicate).
            self.stats.unexpected += 1;
            return None;
        }
        self.seen_ack = true;
        match self.state {
            State::ReqSent => {
                neg.handle_ack(pkt.options());
                self.naks_received = 0;
                self.irc_configure();
                self.set_state(State::AckRcvd);
                None
            }
            State::AckRcvd => {
                // Crossed connection (x): start over.
                self.scr(now, neg, tx);
                self.set_state(State::ReqSent);
                None
            }
            State::AckSent => {
                neg.handle_ack(pkt.options());
                self.naks_received = 0;
                self.irc_configure();
                self.set_state(State::Opened);
                Some(Signal::Up)
            }
            State::Opened => {
                self.scr_fresh(now, neg, tx);
                self.set_state(State::ReqSent);
                Some(Signal::Down)
            }
            _ => None,
        }
    }

    fn rcn(
        &mut self,
        now: Instant,
        pkt: &Packet<'_>,
        neg: &mut impl Negotiator,
        tx: &mut impl Sink,
    ) -> Option<Signal> {
        match self.state {
            State::Closed | State::Stopped => {
                self.sta(pkt.id, tx);
                return None;
            }
            State::Closing | State::Stopping => return None,
            _ => {}
        }
        if pkt.id != self.req_id || self.seen_ack {
            self.stats.unexpected += 1;
            return None;
        }
        if Options::validate(pkt.data).is_err() {
            self.stats.malformed += 1;
            return None;
        }
        self.seen_ack = true;
        if self.state == State::Opened {
            self.scr_fresh(now, neg, tx);
            self.set_state(State::ReqSent);
            return Some(Signal::Down);
        }
        self.naks_received += 1;
        if self.naks_received > self.config.max_configure {
            // The peer will not agree: give up as TO- does.
            self.failed = true;
            self.set_state(State::Stopped);
            return Some(Signal::Finished);
        }
        if pkt.code == code::CONF_NAK {
            neg.handle_nak(pkt.options());
        } else {
            neg.handle_reject(pkt.options());
        }
        match self.state {
            State::ReqSent => {
                self.irc_configure();
                self.scr(now, neg, tx);
            }
            State::AckRcvd => {
                self.scr(now, neg, tx);
                self.set_state(State::ReqSent);
            }
            State::AckSent => {
                self.irc_configure();
                self.scr(now, neg, tx);
            }
            _ => {}
        }
        None
    }

    fn rtr(&mut self, now: Instant, id: u8, tx: &mut impl Sink) -> Option<Signal> {
        self.sta(id, tx);
        match self.state {
            State::AckRcvd | State::AckSent => self.set_state(State::ReqSent),
            State::Opened => {
                self.zrc(now);
                self.set_state(State::Stopping);
                return Some(Signal::Down);
            }
            _ => {}
        }
        None
    }

    fn rta(
        &mut self,
        now: Instant,
        neg: &mut impl Negotiator,
        tx: &mut impl Sink,
    ) -> Option<Signal> {
        match self.state {
            State::Closing => {
                self.set_state(State::Closed);
                Some(Signal::Finished)
            }
            State::Stopping => {
                self.set_state(State::Stopped);
                Some(Signal::Finished)
            }
            State::AckRcvd => {
                self.set_state(State::ReqSent);
                None
            }
            State::Opened => {
                self.scr_fresh(now, neg, tx);
                self.set_state(State::ReqSent);
                Some(Signal::Down)
            }
            _ => None,
        }
    }

    /// RXJ+: a Code- or Protocol-Reject the protocol can live with.
    pub fn rxj_plus(&mut self) -> Option<Signal> {
        if self.state == State::AckRcvd {
            self.set_state(State::ReqSent);
        }
        None
    }

    /// RXJ-: a catastrophic Code- or Protocol-Reject (for NCPs: the peer rejected the
    /// whole protocol).
    pub fn rxj_minus(&mut self, now: Instant, tx: &mut impl Sink) -> Option<Signal> {
        self.failed = true;
        match self.state {
            State::Closed | State::Closing => {
                self.set_state(State::Closed);
                Some(Signal::Finished)
            }
            State::Stopped | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent => {
                self.set_state(State::Stopped);
                Some(Signal::Finished)
            }
            State::Opened => {
                self.irc_terminate();
                self.str(now, tx);
                self.set_state(State::Stopping);
                Some(Signal::Down)
            }
            State::Initial | State::Starting => None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every cell of the RFC 1661 state transition table, checked: the next state, the
    //! packets sent and the layer signal.
    use super::*;

    /// Acks an empty option list, Naks option 99, rejects nothing.
    struct TestNeg;
    impl Negotiator for TestNeg {
        fn reset(&mut self) {}
        fn build_request(&mut self, out: &mut Vec<u8>) {
            cp::push_option(out, 1, &[0x05, 0xdc]);
        }
        fn judge_request(&mut self, options: Options<'_>, reply: &mut Reply) {
            for o in options.flatten() {
                if o.kind == 99 {
                    reply.nak(&o, &[1]);
                }
            }
        }
        fn handle_ack(&mut self, _: Options<'_>) {}
        fn handle_nak(&mut self, _: Options<'_>) {}
        fn handle_reject(&mut self, _: Options<'_>) {}
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ev {
        Up,
        Down,
        Open,
        Close,
        ToPlus,
        ToMinus,
        RcrPlus,
        RcrMinus,
        Rca,
        Rcn,
        Rtr,
        Rta,
        Ruc,
        RxjPlus,
        RxjMinus,
    }

    const P: u16 = 0x8021;

    fn t0() -> Instant {
        Instant::now()
    }

    /// Drives a fresh automaton into `s`.
    fn fsm_in(s: State, now: Instant) -> Fsm {
        let mut f = Fsm::new(P, FsmConfig::default());
        let mut tx: Vec<(u16, Vec<u8>)> = Vec::new();
        let n = &mut TestNeg;
        match s {
            State::Initial => {}
            State::Starting => {
                f.open(now, n, &mut tx);
            }
            State::Closed => f.up(now, n, &mut tx),
            State::ReqSent => {
                f.up(now, n, &mut tx);
                f.open(now, n, &mut tx);
            }
            State::Stopped => {
                let mut f = fsm_in(State::ReqSent, now);
                f.restart_count = 0;
                f.handle_timeout(now + Duration::from_secs(10), n, &mut tx);
                assert_eq!(f.state(), State::Stopped);
                return f;
            }
            State::Closing => {
                let mut f = fsm_in(State::ReqSent, now);
                f.close(now, b"bye", &mut tx);
                return f;
            }
            State::AckRcvd => {
                let mut f = fsm_in(State::ReqSent, now);
                apply(&mut f, Ev::Rca, now, &mut tx);
                return f;
            }
            State::AckSent => {
                let mut f = fsm_in(State::ReqSent, now);
                apply(&mut f, Ev::RcrPlus, now, &mut tx);
                return f;
            }
            State::Opened => {
                let mut f = fsm_in(State::AckRcvd, now);
                apply(&mut f, Ev::RcrPlus, now, &mut tx);
                return f;
            }
            State::Stopping => {
                let mut f = fsm_in(State::Opened, now);
                apply(&mut f, Ev::Rtr, now, &mut tx);
                return f;
            }
        }
        assert_eq!(f.state(), s);
        f
    }

    fn apply(f: &mut Fsm, ev: Ev, now: Instant, tx: &mut Vec<(u16, Vec<u8>)>) -> Option<Signal> {
        let n = &mut TestNeg;
        let later = now + Duration::from_secs(3);
        let req = f.req.clone();
        let rid = f.req_id;
        let pkt = |code: u8, id: u8, data: &[u8]| {
            let mut b = Vec::new();
            cp::emit(code, id, data, &mut b);
            b
        };
        let recv = |f: &mut Fsm, b: Vec<u8>, tx: &mut Vec<(u16, Vec<u8>)>| {
            let p = Packet::parse(&b).unwrap();
            f.receive(now, &p, &mut TestNeg, tx)
        };
        match ev {
            Ev::Up => {
                f.up(now, n, tx);
                None
            }
            Ev::Down => f.down(),
            Ev::Open => f.open(now, n, tx),
            Ev::Close => f.close(now, b"bye", tx),
            Ev::ToPlus => {
                f.restart_count = f.restart_count.max(1);
                f.restart_at = f.restart_at.or(Some(now));
                f.handle_timeout(later, n, tx)
            }
            Ev::ToMinus => {
                f.restart_count = 0;
                f.restart_at = f.restart_at.or(Some(now));
                f.handle_timeout(later, n, tx)
            }
            // The table's RCR is a new request, not a copy of the one acknowledged last.
            Ev::RcrPlus => {
                f.acked_id = None;
                recv(f, pkt(code::CONF_REQ, 77, &[]), tx)
            }
            Ev::RcrMinus => {
                f.acked_id = None;
                recv(f, pkt(code::CONF_REQ, 78, &[99, 2]), tx)
            }
            // The table's RCA and RCN are first answers to our request; a second copy of an
            // answer already handled is discarded (see `duplicate_answers_are_discarded`).
            Ev::Rca => {
                f.seen_ack = false;
                recv(f, pkt(code::CONF_ACK, rid, &req), tx)
            }
            Ev::Rcn => {
                f.seen_ack = false;
                recv(f, pkt(code::CONF_NAK, rid, &[1, 4, 1, 0]), tx)
            }
            Ev::Rtr => recv(f, pkt(code::TERM_REQ, 9, b""), tx),
            Ev::Rta => recv(f, pkt(code::TERM_ACK, 9, b""), tx),
            Ev::Ruc => recv(f, pkt(42, 9, b"x"), tx),
            Ev::RxjPlus => recv(f, pkt(code::CODE_REJ, 9, &[42, 1, 0, 4]), tx),
            Ev::RxjMinus => recv(f, pkt(code::CODE_REJ, 9, &[code::CONF_REQ, 1, 0, 4]), tx),
        }
    }

    /// The RFC's cell: next state, packets sent (by code), signal. `None` = cannot happen.
    fn cell(s: State, e: Ev) -> Option<(State, &'static [u8], Option<Signal>)> {
        use Ev::*;
        use Signal::{Down as D, Finished as F, Started as S, Up as U};
        use State::*;
        const SCR: u8 = code::CONF_REQ;
        const SCA: u8 = code::CONF_ACK;
        const SCN: u8 = code::CONF_NAK;
        const STR: u8 = code::TERM_REQ;
        const STA: u8 = code::TERM_ACK;
        const SCJ: u8 = code::CODE_REJ;
        let r: (State, &'static [u8], Option<Signal>) = match (s, e) {
            (Initial, Up) => (Closed, &[], None),
            (Starting, Up) => (ReqSent, &[SCR], None),
            (_, Up) => return None,
            (Initial | Starting, Down) => return None,
            (Closed, Down) => (Initial, &[], None),
            (Stopped, Down) => (Starting, &[], Some(S)),
            (Closing, Down) => (Initial, &[], None),
            (Stopping | ReqSent | AckRcvd | AckSent, Down) => (Starting, &[], None),
            (Opened, Down) => (Starting, &[], Some(D)),
            (Initial, Open) => (Starting, &[], Some(S)),
            (Starting, Open) => (Starting, &[], None),
            (Closed, Open) => (ReqSent, &[SCR], None),
            (Stopped, Open) => (Stopped, &[], None),
            (Closing | Stopping, Open) => (Stopping, &[], None),
            (x, Open) => (x, &[], None),
            (Initial, Close) => (Initial, &[], None),
            (Starting, Close) => (Initial, &[], Some(F)),
            (Closed | Stopped, Close) => (Closed, &[], None),
            (Closing | Stopping, Close) => (Closing, &[], None),
            (ReqSent | AckRcvd | AckSent, Close) => (Closing, &[STR], None),
            (Opened, Close) => (Closing, &[STR], Some(D)),
            (Closing, ToPlus) => (Closing, &[STR], None),
            (Stopping, ToPlus) => (Stopping, &[STR], None),
            (ReqSent | AckRcvd, ToPlus) => (ReqSent, &[SCR], None),
            (AckSent, ToPlus) => (AckSent, &[SCR], None),
            (_, ToPlus) => return None,
            (Closing, ToMinus) => (Closed, &[], Some(F)),
            (Stopping | ReqSent | AckRcvd | AckSent, ToMinus) => (Stopped, &[], Some(F)),
            (_, ToMinus) => return None,
            (Initial | Starting, _) => return None,
            (Closed, RcrPlus | RcrMinus | Rca | Rcn | Rtr) => (Closed, &[STA], None),
            (Stopped, RcrPlus) => (AckSent, &[SCR, SCA], None),
            (Stopped, RcrMinus) => (ReqSent, &[SCR, SCN], None),
            (Stopped, Rca | Rcn | Rtr) => (Stopped, &[STA], None),
            (Closing | Stopping, RcrPlus | RcrMinus | Rca | Rcn) => (s, &[], None),
            (ReqSent, RcrPlus) => (AckSent, &[SCA], None),
            (AckRcvd, RcrPlus) => (Opened, &[SCA], Some(U)),
            (AckSent, RcrPlus) => (AckSent, &[SCA], None),
            (Opened, RcrPlus) => (AckSent, &[SCR, SCA], Some(D)),
            (ReqSent | AckSent, RcrMinus) => (ReqSent, &[SCN], None),
            (AckRcvd, RcrMinus) => (AckRcvd, &[SCN], None),
            (Opened, RcrMinus) => (ReqSent, &[SCR, SCN], Some(D)),
            (ReqSent, Rca) => (AckRcvd, &[], None),
            (AckRcvd, Rca) => (ReqSent, &[SCR], None),
            (AckSent, Rca) => (Opened, &[], Some(U)),
            (Opened, Rca) => (ReqSent, &[SCR], Some(D)),
            (ReqSent, Rcn) => (ReqSent, &[SCR], None),
            (AckRcvd, Rcn) => (ReqSent, &[SCR], None),
            (AckSent, Rcn) => (AckSent, &[SCR], None),
            (Opened, Rcn) => (ReqSent, &[SCR], Some(D)),
            (Closing | Stopping | ReqSent, Rtr) => (s, &[STA], None),
            (AckRcvd | AckSent, Rtr) => (ReqSent, &[STA], None),
            (Opened, Rtr) => (Stopping, &[STA], Some(D)),
            (Closed | Stopped | ReqSent | AckSent, Rta) => (s, &[], None),
            (Closing, Rta) => (Closed, &[], Some(F)),
            (Stopping, Rta) => (Stopped, &[], Some(F)),
            (AckRcvd, Rta) => (ReqSent, &[], None),
            (Opened, Rta) => (ReqSent, &[SCR], Some(D)),
            (x, Ruc) => (x, &[SCJ], None),
            (AckRcvd, RxjPlus) => (ReqSent, &[], None),
            (x, RxjPlus) => (x, &[], None),
            (Closed | Closing, RxjMinus) => (Closed, &[], Some(F)),
            (Stopped | Stopping | ReqSent | AckRcvd | AckSent, RxjMinus) => (Stopped, &[], Some(F)),
            (Opened, RxjMinus) => (Stopping, &[STR], Some(D)),
        };
        Some(r)
    }

    #[test]
    fn duplicate_answers_are_discarded() {
        // A line that duplicates frames must not restart a finished negotiation (pppd's
        // seen_ack): the second copy of an Ack, Nak or Reject is dropped.
        let now = t0();
        let mut tx: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut f = fsm_in(State::Opened, now);
        let ack = {
            let mut b = Vec::new();
            cp::emit(code::CONF_ACK, f.req_id, &f.req, &mut b);
            b
        };
        let nak = {
            let mut b = Vec::new();
            cp::emit(code::CONF_NAK, f.req_id, &[1, 4, 1, 0], &mut b);
            b
        };
        for b in [&ack, &nak, &ack] {
            let p = Packet::parse(b).unwrap();
            assert_eq!(f.receive(now, &p, &mut TestNeg, &mut tx), None);
            assert_eq!(f.state(), State::Opened);
        }
        assert!(tx.is_empty());
        assert_eq!(f.stats().unexpected, 3);
        // In Req-Sent, the first Nak counts and its copy does not.
        let mut f = fsm_in(State::ReqSent, now);
        let nak = {
            let mut b = Vec::new();
            cp::emit(code::CONF_NAK, f.req_id, &[1, 4, 1, 0], &mut b);
            b
        };
        let p = Packet::parse(&nak).unwrap();
        f.receive(now, &p, &mut TestNeg, &mut tx);
        assert_eq!(tx.len(), 1);
        f.receive(now, &p, &mut TestNeg, &mut tx);
        assert_eq!(tx.len(), 1);
    }

    #[test]
    fn copy_of_acked_request_in_opened_is_acked_again() {
        let now = t0();
        let mut tx: Vec<(u16, Vec<u8>)> = Vec::new();
        // Opened by AckRcvd + RCR+ (request id 77, no options).
        let mut f = fsm_in(State::Opened, now);
        let mut b = Vec::new();
        cp::emit(code::CONF_REQ, 77, &[], &mut b);
        assert_eq!(
            f.receive(now, &Packet::parse(&b).unwrap(), &mut TestNeg, &mut tx),
            None
        );
        assert_eq!(f.state(), State::Opened);
        assert_eq!(tx.len(), 1);
        assert_eq!(Packet::parse(&tx[0].1).unwrap().code, code::CONF_ACK);
        // A new identifier is a new request: renegotiate.
        let mut b = Vec::new();
        cp::emit(code::CONF_REQ, 78, &[], &mut b);
        let s = f.receive(now, &Packet::parse(&b).unwrap(), &mut TestNeg, &mut tx);
        assert_eq!((s, f.state()), (Some(Signal::Down), State::AckSent));
    }

    #[test]
    fn peer_that_keeps_asking_for_refused_options_is_bounded() {
        // Every request carries an option the negotiator Naks; after Max-Failure Naks they
        // become Rejects, and after Max-Configure Rejects in a row the automaton gives up.
        let now = t0();
        let mut tx: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut f = fsm_in(State::ReqSent, now);
        let mut sig = None;
        let mut n = 0;
        while sig.is_none() && n < 100 {
            n += 1;
            let mut b = Vec::new();
            cp::emit(code::CONF_REQ, n as u8, &[99, 2], &mut b);
            sig = f.receive(now, &Packet::parse(&b).unwrap(), &mut TestNeg, &mut tx);
        }
        assert_eq!(sig, Some(Signal::Finished));
        assert_eq!(n, 5 + 11);
        assert!(f.failed());
        assert_eq!(f.state(), State::Stopped);
    }

    #[test]
    fn every_cell_of_the_rfc1661_table() {
        use State::*;
        let states = [
            Initial, Starting, Closed, Stopped, Closing, Stopping, ReqSent, AckRcvd, AckSent,
            Opened,
        ];
        let events = [
            Ev::Up,
            Ev::Down,
            Ev::Open,
            Ev::Close,
            Ev::ToPlus,
            Ev::ToMinus,
            Ev::RcrPlus,
            Ev::RcrMinus,
            Ev::Rca,
            Ev::Rcn,
            Ev::Rtr,
            Ev::Rta,
            Ev::Ruc,
            Ev::RxjPlus,
            Ev::RxjMinus,
        ];
        let mut checked = 0;
        for s in states {
            for e in events {
                let Some((next, sent, sig)) = cell(s, e) else {
                    continue;
                };
                let now = t0();
                let mut f = fsm_in(s, now);
                assert_eq!(f.state(), s, "setup for {s:?}");
                let mut tx = Vec::new();
                let got = apply(&mut f, e, now, &mut tx);
                let codes: Vec<u8> = tx.iter().map(|(_, p)| p[0]).collect();
                assert!(tx.iter().all(|(p, _)| *p == P));
                assert_eq!(
                    (f.state(), codes.as_slice(), got),
                    (next, sent, sig),
                    "cell {s:?} x {e:?}"
                );
                // The restart timer runs exactly in the states that need it.
                let timed = matches!(next, Closing | Stopping | ReqSent | AckRcvd | AckSent);
                assert_eq!(f.deadline().is_some(), timed, "timer after {s:?} x {e:?}");
                checked += 1;
            }
        }
        // 2 Up + 8 Down + 10 Open + 10 Close + 5 TO+ + 5 TO- + 9 receive events x 8 states.
        assert_eq!(checked, 112);
    }

    #[test]
    fn silent_peer_gives_up_after_max_configure() {
        let now = t0();
        let mut f = Fsm::new(P, FsmConfig::default());
        let mut tx = Vec::new();
        f.open(now, &mut TestNeg, &mut tx);
        f.up(now, &mut TestNeg, &mut tx);
        let mut t = now;
        let mut sig = None;
        while let Some(d) = f.deadline() {
            t = d;
            sig = f.handle_timeout(t, &mut TestNeg, &mut tx);
        }
        assert_eq!(tx.len(), 10, "Max-Configure requests");
        assert_eq!(t - now, Duration::from_secs(30));
        assert_eq!(
            (f.state(), sig, f.failed()),
            (State::Stopped, Some(Signal::Finished), true)
        );
    }

    #[test]
    fn endless_naks_are_bounded() {
        let now = t0();
        let mut f = fsm_in(State::ReqSent, now);
        let mut tx = Vec::new();
        let mut sig = None;
        for _ in 0..50 {
            if f.state() != State::ReqSent {
                break;
            }
            let mut b = Vec::new();
            cp::emit(code::CONF_NAK, f.req_id, &[1, 4, 1, 0], &mut b);
            sig = f.receive(now, &Packet::parse(&b).unwrap(), &mut TestNeg, &mut tx);
        }
        assert_eq!(
            (f.state(), sig, f.failed()),
            (State::Stopped, Some(Signal::Finished), true)
        );
    }

    #[test]
    fn naks_turn_into_rejects_after_max_failure() {
        let now = t0();
        let mut f = fsm_in(State::ReqSent, now);
        let mut codes = Vec::new();
        for i in 0..8u8 {
            let mut tx = Vec::new();
            let mut b = Vec::new();
            cp::emit(code::CONF_REQ, i, &[99, 2], &mut b);
            f.receive(now, &Packet::parse(&b).unwrap(), &mut TestNeg, &mut tx);
            codes.push(tx.last().unwrap().1[0]);
        }
        assert_eq!(&codes[..5], &[code::CONF_NAK; 5]);
        assert_eq!(&codes[5..], &[code::CONF_REJ; 3]);
    }

    #[test]
    fn mismatched_replies_are_discarded() {
        let now = t0();
        let mut f = fsm_in(State::ReqSent, now);
        let mut tx = Vec::new();
        // Wrong identifier.
        let mut b = Vec::new();
        cp::emit(
            code::CONF_ACK,
            f.req_id.wrapping_add(1),
            &f.req.clone(),
            &mut b,
        );
        f.receive(now, &Packet::parse(&b).unwrap(), &mut TestNeg, &mut tx);
        // Right identifier, different options.
        let mut b = Vec::new();
        cp::emit(code::CONF_ACK, f.req_id, &[1, 4, 0, 1], &mut b);
        f.receive(now, &Packet::parse(&b).unwrap(), &mut TestNeg, &mut tx);
        // Malformed options in a request.
        let mut b = Vec::new();
        cp::emit(code::CONF_REQ, 5, &[1, 9, 0], &mut b);
        f.receive(now, &Packet::parse(&b).unwrap(), &mut TestNeg, &mut tx);
        assert_eq!(f.state(), State::ReqSent);
        assert!(tx.is_empty());
        assert_eq!((f.stats().unexpected, f.stats().malformed), (2, 1));
    }
}
