//! LCP, the Link Control Protocol (RFC 1661 sections 5 and 6): the server's option policy,
//! the LCP-only codes (Protocol-Reject, Echo, Discard, RFC 1570 Identification), the
//! Echo-Request keepalive and looped-back line detection.
//!
//! Our Configure-Request asks for: MRU (when not the default 1500), ACCM, the
//! Authentication-Protocol in the configured order of preference, a Magic-Number, PFC and
//! ACFC. Of the peer's options we accept MRU, ACCM, Magic-Number, PFC and ACFC, and reject
//! everything else (Authentication-Protocol: the server does not authenticate itself to a
//! dial-in client; Quality-Protocol; callback, multilink MRRU, endpoint discriminator, ...).

use super::fsm::{Fsm, FsmConfig, Negotiator, Reply, Signal, Sink};
use super::rng::Rng;
use super::wire::cp::{Options, Packet, code};
use super::wire::protocol;
use core::time::Duration;
use std::time::Instant;

/// LCP option types (RFC 1661 section 6, RFC 1570, RFC 1990).
pub mod opt {
    /// Maximum-Receive-Unit.
    pub const MRU: u8 = 1;
    /// Async-Control-Character-Map (RFC 1662).
    pub const ACCM: u8 = 2;
    /// Authentication-Protocol.
    pub const AUTH: u8 = 3;
    /// Quality-Protocol.
    pub const QUALITY: u8 = 4;
    /// Magic-Number.
    pub const MAGIC: u8 = 5;
    /// Protocol-Field-Compression.
    pub const PFC: u8 = 7;
    /// Address-and-Control-Field-Compression.
    pub const ACFC: u8 = 8;
}

/// The default MRU (RFC 1661 section 6.1).
pub const DEFAULT_MRU: u16 = 1500;
/// The smallest MRU we accept from a peer (pppd's MINMRU).
pub const MIN_MRU: u16 = 128;

/// An authentication protocol the server can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProto {
    /// PAP (RFC 1334).
    Pap,
    /// CHAP with MD5 (RFC 1994).
    ChapMd5,
}

impl AuthProto {
    fn option_data(self) -> &'static [u8] {
        match self {
            Self::Pap => &[0xc0, 0x23],
            Self::ChapMd5 => &[0xc2, 0x23, 0x05],
        }
    }

    fn from_option(data: &[u8]) -> Option<Self> {
        match data {
            [0xc0, 0x23, ..] => Some(Self::Pap),
            [0xc2, 0x23, 0x05] => Some(Self::ChapMd5),
            _ => None,
        }
    }

    /// The PPP protocol number.
    pub fn protocol(self) -> u16 {
        match self {
            Self::Pap => protocol::PAP,
            Self::ChapMd5 => protocol::CHAP,
        }
    }

    /// A short name ("pap", "chap").
    pub fn name(self) -> &'static str {
        match self {
            Self::Pap => "pap",
            Self::ChapMd5 => "chap",
        }
    }
}

/// LCP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcpConfig {
    /// Timers and counters.
    pub fsm: FsmConfig,
    /// The MRU we ask for (what we can receive).
    pub mru: u16,
    /// The ACCM we ask the peer to use toward us.
    pub accm: u32,
    /// Authentication protocols we require, most preferred first; empty for none.
    pub auth: Vec<AuthProto>,
    /// Ask for and accept Protocol-Field-Compression.
    pub pfc: bool,
    /// Ask for and accept Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// Interval of Echo-Requests while the link is quiet; `None` turns keepalives off.
    pub echo_interval: Option<Duration>,
    /// Unanswered Echo-Requests after which the link is declared dead.
    pub echo_failure: u32,
    /// Times our own Magic-Number may come back before the line counts as looped back.
    pub loopback_fail: u32,
}

impl Default for LcpConfig {
    fn default() -> Self {
        Self {
            fsm: FsmConfig::default(),
            mru: DEFAULT_MRU,
            accm: 0,
            auth: vec![AuthProto::ChapMd5, AuthProto::Pap],
            pfc: true,
            acfc: true,
            echo_interval: Some(Duration::from_secs(30)),
            echo_failure: 4,
            loopback_fail: 5,
        }
    }
}

/// Why LCP cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcpFailure {
    /// Our Magic-Number kept coming back: the line is looped back.
    Loopback,
    /// The peer rejected authentication, or Naked it toward protocols we do not allow.
    AuthRefused,
    /// No answer to Echo-Requests.
    EchoTimeout,
}

/// What the peer asked for in its acknowledged Configure-Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerOptions {
    /// The peer's MRU: the largest frame we may send.
    pub mru: u16,
    /// The ACCM we must apply on transmit.
    pub accm: u32,
    /// The peer can receive compressed protocol fields.
    pub pfc: bool,
    /// The peer can receive compressed address and control fields.
    pub acfc: bool,
    /// The peer's Magic-Number (0 if none).
    pub magic: u32,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            mru: DEFAULT_MRU,
            accm: super::hdlc::ACCM_ALL,
            pfc: false,
            acfc: false,
            magic: 0,
        }
    }
}

/// The LCP option policy of the server.
#[derive(Debug)]
pub struct LcpPolicy {
    config: LcpConfig,
    rng: Rng,
    // What we ask for now.
    mru: Option<u16>,
    accm: Option<u32>,
    auth_index: usize,
    magic: Option<u32>,
    pfc: bool,
    acfc: bool,
    // What the peer acknowledged of ours.
    acked_accm: Option<u32>,
    acked_auth: Option<AuthProto>,
    // What we acknowledged of the peer's.
    peer: PeerOptions,
    loops: u32,
    failure: Option<LcpFailure>,
}

impl LcpPolicy {
    fn new(config: LcpConfig, rng: Rng) -> Self {
        let mut p = Self {
            config,
            rng,
            mru: None,
            accm: None,
            auth_index: 0,
            magic: None,
            pfc: false,
            acfc: false,
            acked_accm: None,
            acked_auth: None,
            peer: PeerOptions::default(),
            loops: 0,
            failure: None,
        };
        p.reset();
        p
    }

    fn new_magic(&mut self, avoid: u32) -> u32 {
        loop {
            let m = self.rng.nonzero_u32();
            if m != avoid && Some(m) != self.magic {
                return m;
            }
        }
    }

    fn count_loop(&mut self) {
        self.loops += 1;
        if self.loops >= self.config.loopback_fail {
            self.failure = Some(LcpFailure::Loopback);
        }
    }
}

impl Negotiator for LcpPolicy {
    fn reset(&mut self) {
        let c = &self.config;
        self.mru = (c.mru != DEFAULT_MRU).then_some(c.mru);
        self.accm = Some(c.accm);
        self.auth_index = 0;
        self.pfc = c.pfc;
        self.acfc = c.acfc;
        self.acked_accm = None;
        self.acked_auth = None;
        self.peer = PeerOptions::default();
        let m = self.new_magic(0);
        self.magic = Some(m);
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        use super::wire::cp::push_option;
        if let Some(m) = self.mru {
            push_option(out, opt::MRU, &m.to_be_bytes());
        }
        if let Some(a) = self.accm {
            push_option(out, opt::ACCM, &a.to_be_bytes());
        }
        if let Some(a) = self.config.auth.get(self.auth_index) {
            push_option(out, opt::AUTH, a.option_data());
        }
        if let Some(m) = self.magic {
            push_option(out, opt::MAGIC, &m.to_be_bytes());
        }
        if self.pfc {
            push_option(out, opt::PFC, &[]);
        }
        if self.acfc {
            push_option(out, opt::ACFC, &[]);
        }
    }

    fn judge_request(&mut self, options: Options<'_>, reply: &mut Reply) {
        let mut peer = PeerOptions::default();
        for o in options.flatten() {
            match (o.kind, o.data.len()) {
                (opt::MRU, 2) => {
                    let v = o.u16().unwrap_or(DEFAULT_MRU);
                    if v < MIN_MRU {
                        reply.nak(&o, &MIN_MRU.to_be_bytes());
                    } else {
                        peer.mru = v;
                    }
                }
                (opt::ACCM, 4) => peer.accm = o.u32().unwrap_or(u32::MAX),
                (opt::MAGIC, 4) => {
                    let v = o.u32().unwrap_or(0);
                    if v == 0 {
                        let m = self.new_magic(0);
                        reply.nak(&o, &m.to_be_bytes());
                    } else if self.magic == Some(v) {
                        // Our own number came back: probably a looped-back line. Suggest
                        // another number and pick a new one ourselves (RFC 1661 6.4).
                        self.count_loop();
                        let theirs = self.new_magic(v);
                        let ours = self.new_magic(theirs);
                        self.magic = Some(ours);
                        reply.nak(&o, &theirs.to_be_bytes());
                    } else {
                        peer.magic = v;
                    }
                }
                (opt::PFC, 0) if self.config.pfc => peer.pfc = true,
                (opt::ACFC, 0) if self.config.acfc => peer.acfc = true,
                _ => reply.reject(&o),
            }
        }
        if reply.verdict() == super::fsm::Verdict::Ack {
            self.peer = peer;
        }
    }

    fn handle_ack(&mut self, _options: Options<'_>) {
        // The FSM checked that the Ack equals our request.
        self.acked_accm = self.accm;
        self.acked_auth = self.config.auth.get(self.auth_index).copied();
    }

    fn handle_nak(&mut self, options: Options<'_>) {
        for o in options.flatten() {
            match o.kind {
                opt::MRU if self.mru.is_some() || o.u16().is_some() => {
                    if let Some(v) = o.u16() {
                        let limit = self.config.mru.max(DEFAULT_MRU);
                        self.mru = (v >= MIN_MRU && v <= limit && v != DEFAULT_MRU).then_some(v);
                    }
                }
                opt::ACCM if self.accm.is_some() => {
                    if let Some(v) = o.u32() {
                        self.accm = Some(self.accm.unwrap_or(0) | v);
                    }
                }
                opt::AUTH if self.auth_index < self.config.auth.len() => {
                    // The peer prefers another protocol: take it if we allow it, else go on
                    // to our next choice.
                    let wanted = AuthProto::from_option(o.data);
                    match wanted.and_then(|w| self.config.auth.iter().position(|&a| a == w)) {
                        Some(i) if i != self.auth_index => self.auth_index = i,
                        _ => {
                            self.auth_index += 1;
                            if self.auth_index >= self.config.auth.len() {
                                self.failure = Some(LcpFailure::AuthRefused);
                            }
                        }
                    }
                }
                opt::MAGIC if self.magic.is_some() => {
                    let suggested = o.u32().unwrap_or(0);
                    let m = self.new_magic(suggested);
                    self.magic = Some(m);
                }
                _ => {}
            }
        }
    }

    fn handle_reject(&mut self, options: Options<'_>) {
        for o in options.flatten() {
            match o.kind {
                opt::MRU => self.mru = None,
                opt::ACCM => self.accm = None,
                // After our own Magic-Number came back the "peer" may be ourselves,
                // rejecting our own request: let loopback detection decide.
                opt::AUTH if !self.config.auth.is_empty() && self.loops == 0 => {
                    self.failure = Some(LcpFailure::AuthRefused);
                }
                opt::MAGIC => self.magic = None,
                opt::PFC => self.pfc = false,
                opt::ACFC => self.acfc = false,
                _ => {}
            }
        }
    }
}

/// What LCP reports to the link about a received packet beyond the automaton's signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcpInput {
    /// A signal from the automaton.
    Signal(Signal),
    /// The peer rejected this protocol (RFC 1661 5.7).
    ProtocolRejected(u16),
    /// Nothing for the link to do.
    None,
}

/// Counters of the LCP extension codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LcpStats {
    /// Echo-Requests sent.
    pub echo_requests_sent: u64,
    /// Echo-Replies received.
    pub echo_replies: u64,
    /// Discard-Requests, Identification and Time-Remaining packets received.
    pub discards: u64,
}

/// LCP: automaton, policy and keepalive.
#[derive(Debug)]
pub struct Lcp {
    /// The automaton.
    pub fsm: Fsm,
    /// The option policy.
    pub policy: LcpPolicy,
    echo_at: Option<Instant>,
    echo_outstanding: u32,
    last_rx: Option<Instant>,
    stats: LcpStats,
}

impl Lcp {
    /// LCP with the given settings; `rng` chooses Magic-Numbers.
    pub fn new(config: LcpConfig, rng: Rng) -> Self {
        Self {
            fsm: Fsm::new(protocol::LCP, config.fsm),
            policy: LcpPolicy::new(config, rng),
            echo_at: None,
            echo_outstanding: 0,
            last_rx: None,
            stats: LcpStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &LcpConfig {
        &self.policy.config
    }

    /// The counters.
    pub fn stats(&self) -> &LcpStats {
        &self.stats
    }

    /// The options the peer asked for, as acknowledged.
    pub fn peer(&self) -> &PeerOptions {
        &self.policy.peer
    }

    /// The ACCM the peer acknowledged for sending to us, if any.
    pub fn acked_accm(&self) -> Option<u32> {
        self.policy.acked_accm
    }

    /// The authentication protocol the peer agreed to, if any.
    pub fn auth(&self) -> Option<AuthProto> {
        self.policy.acked_auth
    }

    /// Our Magic-Number, if we negotiate one.
    pub fn magic(&self) -> u32 {
        self.policy.magic.unwrap_or(0)
    }

    /// A reason LCP cannot go on, if one arose.
    pub fn failure(&self) -> Option<LcpFailure> {
        self.policy.failure
    }

    /// Starts the keepalive: called when LCP reaches Opened.
    pub fn start_echo(&mut self, now: Instant) {
        self.echo_outstanding = 0;
        self.last_rx = Some(now);
        self.echo_at = self.config().echo_interval.map(|i| now + i);
    }

    /// Stops the keepalive.
    pub fn stop_echo(&mut self) {
        self.echo_at = None;
    }

    /// Any good frame from the peer proves the link alive.
    pub fn saw_frame(&mut self, now: Instant) {
        self.last_rx = Some(now);
        self.echo_outstanding = 0;
    }

    /// The earliest of LCP's deadlines.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.fsm.deadline(), self.echo_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs expired timers: the restart timer and the keepalive.
    pub fn handle_timeout(&mut self, now: Instant, tx: &mut impl Sink) -> Option<Signal> {
        if let (Some(at), Some(interval)) = (self.echo_at, self.config().echo_interval)
            && at <= now
        {
            let quiet_since = self.last_rx.unwrap_or(now);
            if now.saturating_duration_since(quiet_since) < interval {
                self.echo_outstanding = 0;
                self.echo_at = Some(quiet_since + interval);
            } else if self.echo_outstanding >= self.config().echo_failure {
                self.policy.failure = Some(LcpFailure::EchoTimeout);
                self.echo_at = None;
            } else {
                let id = self.fsm.take_id();
                let magic = self.magic().to_be_bytes();
                tx.send_cp(protocol::LCP, code::ECHO_REQ, id, &magic);
                self.stats.echo_requests_sent += 1;
                self.echo_outstanding += 1;
                self.echo_at = Some(now + interval);
            }
        }
        self.fsm.handle_timeout(now, &mut self.policy, tx)
    }

    /// Handles a received LCP packet. `peer_mru` bounds Echo-Replies and Code-Rejects.
    pub fn receive(&mut self, now: Instant, pkt: &Packet<'_>, tx: &mut impl Sink) -> LcpInput {
        let opened = self.fsm.state() == super::fsm::State::Opened;
        let peer_mru = usize::from(self.policy.peer.mru);
        match pkt.code {
            code::PROTO_REJ => {
                // Only meaningful in Opened (RFC 1661 5.7).
                match pkt.data {
                    [a, b, ..] if opened => {
                        LcpInput::ProtocolRejected(u16::from_be_bytes([*a, *b]))
                    }
                    _ => LcpInput::None,
                }
            }
            code::ECHO_REQ => {
                if opened {
                    let magic = pkt
                        .data
                        .get(..4)
                        .map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]));
                    if magic.is_some_and(|m| m != 0 && m == self.magic()) {
                        self.count_echo_loop();
                    } else {
                        let mut data = Vec::with_capacity(pkt.data.len().max(4));
                        data.extend_from_slice(&self.magic().to_be_bytes());
                        data.extend_from_slice(pkt.data.get(4..).unwrap_or(&[]));
                        data.truncate(peer_mru.saturating_sub(4).max(4));
                        tx.send_cp(protocol::LCP, code::ECHO_REPLY, pkt.id, &data);
                    }
                }
                LcpInput::None
            }
            code::ECHO_REPLY => {
                if opened {
                    let magic = pkt
                        .data
                        .get(..4)
                        .map(|m| u32::from_be_bytes([m[0], m[1], m[2], m[3]]));
                    if magic.is_some_and(|m| m != 0 && m == self.magic()) {
                        self.count_echo_loop();
                    } else {
                        self.stats.echo_replies += 1;
                        self.echo_outstanding = 0;
                    }
                }
                LcpInput::None
            }
            code::DISCARD_REQ | code::IDENTIFICATION | code::TIME_REMAINING => {
                self.stats.discards += 1;
                LcpInput::None
            }
            code::CONF_REQ..=code::CODE_REJ => {
                if pkt.code == code::CODE_REJ && pkt.data.first() == Some(&code::ECHO_REQ) {
                    // The peer does not do echoes: stop asking.
                    self.stop_echo();
                }
                match self.fsm.receive(now, pkt, &mut self.policy, tx) {
                    Some(s) => LcpInput::Signal(s),
                    None => LcpInput::None,
                }
            }
            _ => {
                self.fsm.send_code_reject(pkt, peer_mru, tx);
                LcpInput::None
            }
        }
    }

    fn count_echo_loop(&mut self) {
        // After negotiation an echo of our own number means the line looped back.
        self.policy.loops = self.policy.loops.max(self.policy.config.loopback_fail);
        self.policy.failure = Some(LcpFailure::Loopback);
    }

    /// Lower layer up.
    pub fn up(&mut self, now: Instant, tx: &mut impl Sink) {
        self.fsm.up(now, &mut self.policy, tx);
    }

    /// Administrative open.
    pub fn open(&mut self, now: Instant, tx: &mut impl Sink) -> Option<Signal> {
        self.fsm.open(now, &mut self.policy, tx)
    }

    /// Sends a Protocol-Reject for a packet of an unknown or disabled protocol (LCP must be
    /// Opened); the rejected information is cut to fit the peer's MRU.
    pub fn send_protocol_reject(&mut self, proto: u16, info: &[u8], tx: &mut impl Sink) {
        if self.fsm.state() != super::fsm::State::Opened {
            return;
        }
        let room = usize::from(self.policy.peer.mru).saturating_sub(6);
        let mut data = Vec::with_capacity(2 + info.len().min(room));
        data.extend_from_slice(&proto.to_be_bytes());
        data.extend_from_slice(&info[..info.len().min(room)]);
        let id = self.fsm.take_id();
        tx.send_cp(protocol::LCP, code::PROTO_REJ, id, &data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::fsm::{Reply, Verdict};
    use crate::proto::wire::cp::{self, Options, Packet};

    fn policy(auth: Vec<AuthProto>) -> LcpPolicy {
        LcpPolicy::new(
            LcpConfig {
                auth,
                ..LcpConfig::default()
            },
            Rng::from_u64(3),
        )
    }

    fn judge(p: &mut LcpPolicy, opts: &[u8]) -> Reply {
        let mut r = Reply::new(true);
        p.judge_request(Options::new(opts), &mut r);
        r
    }

    // Debian pppd 2.4.9: asyncmap 0, magic 0x24bbe143, PFC, ACFC.
    const PPPD_OPTS: [u8; 16] = [2, 6, 0, 0, 0, 0, 5, 6, 0x24, 0xbb, 0xe1, 0x43, 7, 2, 8, 2];

    #[test]
    fn acks_pppd_defaults_and_records_them() {
        let mut p = policy(vec![AuthProto::Pap]);
        let r = judge(&mut p, &PPPD_OPTS);
        assert_eq!(r.verdict(), Verdict::Ack);
        assert_eq!(
            p.peer,
            PeerOptions {
                mru: 1500,
                accm: 0,
                pfc: true,
                acfc: true,
                magic: 0x24bb_e143
            }
        );
    }

    #[test]
    fn rejects_what_a_nas_does_not_do() {
        let mut p = policy(vec![AuthProto::Pap]);
        // Auth-Protocol PAP (the peer wants us to authenticate), Quality LQR, Callback,
        // MRRU, Endpoint-Discriminator, FCS-Alternatives, plus an acceptable MRU.
        let opts = [
            3, 4, 0xc0, 0x23, 4, 8, 0xc0, 0x25, 0, 0, 0, 1, 13, 3, 6, 1, 4, 0x05, 0xdc, 17, 4,
            0x05, 0xdc, 19, 3, 0, 9, 3, 2,
        ];
        let r = judge(&mut p, &opts);
        assert_eq!(r.verdict(), Verdict::Reject);
        let kinds: Vec<u8> = Options::new(r.reject_options())
            .map(|o| o.unwrap().kind)
            .collect();
        assert_eq!(kinds, [3, 4, 13, 17, 19, 9]);
        // Options with a wrong length are rejected too.
        let r = judge(&mut p, &[1, 3, 5]);
        assert_eq!(r.reject_options(), [1, 3, 5]);
    }

    #[test]
    fn naks_a_tiny_mru_and_a_zero_magic() {
        let mut p = policy(vec![]);
        let r = judge(&mut p, &[1, 4, 0, 64, 5, 6, 0, 0, 0, 0]);
        assert_eq!(r.verdict(), Verdict::Nak);
        let naks: Vec<_> = Options::new(r.nak_options()).map(|o| o.unwrap()).collect();
        assert_eq!(naks[0].u16(), Some(MIN_MRU));
        assert_ne!(naks[1].u32(), Some(0));
    }

    #[test]
    fn our_request_carries_what_we_want() {
        let mut p = policy(vec![AuthProto::ChapMd5, AuthProto::Pap]);
        let mut out = Vec::new();
        p.build_request(&mut out);
        let opts: Vec<_> = Options::new(&out).map(|o| o.unwrap()).collect();
        let kinds: Vec<u8> = opts.iter().map(|o| o.kind).collect();
        assert_eq!(
            kinds,
            [opt::ACCM, opt::AUTH, opt::MAGIC, opt::PFC, opt::ACFC]
        );
        assert_eq!(opts[1].data, [0xc2, 0x23, 0x05]);
        assert_ne!(opts[2].u32(), Some(0));
        // A non-default MRU is asked for.
        let mut p = LcpPolicy::new(
            LcpConfig {
                mru: 1000,
                ..LcpConfig::default()
            },
            Rng::from_u64(1),
        );
        let mut out = Vec::new();
        p.build_request(&mut out);
        assert_eq!(&out[..4], &[opt::MRU, 4, 0x03, 0xe8]);
    }

    #[test]
    fn auth_nak_moves_toward_our_preferences() {
        let mut p = policy(vec![AuthProto::ChapMd5, AuthProto::Pap]);
        // The peer Naks CHAP, suggesting PAP: allowed, so we switch.
        p.handle_nak(Options::new(&[3, 4, 0xc0, 0x23]));
        let mut out = Vec::new();
        p.build_request(&mut out);
        assert!(out.windows(4).any(|w| w == [3, 4, 0xc0, 0x23]));
        assert_eq!(p.failure, None);
        // It suggests EAP (c227), which we do not allow: nothing left after PAP.
        p.handle_nak(Options::new(&[3, 4, 0xc2, 0x27]));
        assert_eq!(p.failure, Some(LcpFailure::AuthRefused));

        let mut p = policy(vec![AuthProto::Pap]);
        p.handle_reject(Options::new(&[3, 4, 0xc0, 0x23]));
        assert_eq!(p.failure, Some(LcpFailure::AuthRefused));
    }

    #[test]
    fn our_own_magic_coming_back_is_a_loop() {
        let mut p = policy(vec![]);
        for i in 1..=5u32 {
            let ours = p.magic.unwrap();
            let mut opts = vec![5, 6];
            opts.extend_from_slice(&ours.to_be_bytes());
            let r = judge(&mut p, &opts);
            assert_eq!(r.verdict(), Verdict::Nak);
            let suggested = Options::new(r.nak_options()).next().unwrap().unwrap().u32();
            assert_ne!(suggested, Some(ours));
            assert_ne!(p.magic, Some(ours), "we pick a new number too");
            assert_eq!(p.failure.is_some(), i == 5);
        }
        assert_eq!(p.failure, Some(LcpFailure::Loopback));
    }

    fn opened_lcp() -> (Lcp, Vec<(u16, Vec<u8>)>, Instant) {
        let now = Instant::now();
        let mut lcp = Lcp::new(
            LcpConfig {
                auth: vec![],
                ..LcpConfig::default()
            },
            Rng::from_u64(5),
        );
        let mut tx = Vec::new();
        lcp.open(now, &mut tx);
        lcp.up(now, &mut tx);
        let req = tx[0].1.clone();
        let ack = {
            let mut b = req.clone();
            b[0] = cp::code::CONF_ACK;
            b
        };
        // The peer asks for an MRU of 200 so echo replies must be cut to fit.
        let mut peer_req = Vec::new();
        cp::emit(1, 1, &[1, 4, 0, 200], &mut peer_req);
        for b in [ack, peer_req] {
            lcp.receive(now, &Packet::parse(&b).unwrap(), &mut tx);
        }
        assert_eq!(lcp.fsm.state(), crate::proto::fsm::State::Opened);
        tx.clear();
        (lcp, tx, now)
    }

    #[test]
    fn echo_replies_carry_our_magic_and_fit_the_peer_mru() {
        let (mut lcp, mut tx, now) = opened_lcp();
        let mut req = Vec::new();
        let mut data = vec![0x11, 0x22, 0x33, 0x44];
        data.extend(std::iter::repeat_n(0xab, 500));
        cp::emit(cp::code::ECHO_REQ, 7, &data, &mut req);
        lcp.receive(now, &Packet::parse(&req).unwrap(), &mut tx);
        let reply = Packet::parse(&tx[0].1).unwrap();
        assert_eq!((reply.code, reply.id), (cp::code::ECHO_REPLY, 7));
        assert_eq!(reply.data[..4], lcp.magic().to_be_bytes());
        assert!(
            tx[0].1.len() <= 200,
            "reply of {} octets exceeds the MRU",
            tx[0].1.len()
        );
    }

    #[test]
    fn keepalive_declares_a_silent_peer_dead() {
        let (mut lcp, mut tx, now) = opened_lcp();
        lcp.start_echo(now);
        let mut t = now;
        let mut requests = 0;
        while lcp.failure().is_none() {
            t = lcp.deadline().expect("echo timer runs");
            lcp.handle_timeout(t, &mut tx);
            requests = tx
                .iter()
                .filter(|(_, p)| p[0] == cp::code::ECHO_REQ)
                .count();
            assert!(t - now <= Duration::from_secs(300), "never gave up");
        }
        assert_eq!(lcp.failure(), Some(LcpFailure::EchoTimeout));
        assert_eq!(requests, 4);
        assert_eq!(t - now, Duration::from_secs(150));
    }

    #[test]
    fn any_frame_counts_as_liveness() {
        let (mut lcp, mut tx, now) = opened_lcp();
        lcp.start_echo(now);
        for i in 1..20u64 {
            let t = now + Duration::from_secs(29 * i);
            lcp.saw_frame(t);
            lcp.handle_timeout(t, &mut tx);
        }
        assert!(tx.is_empty(), "no echo needed on a busy link");
        assert_eq!(lcp.failure(), None);
    }

    #[test]
    fn protocol_reject_fits_the_peer_mru() {
        let (mut lcp, mut tx, _) = opened_lcp();
        lcp.send_protocol_reject(0x8057, &[0x55; 1000], &mut tx);
        let p = Packet::parse(&tx[0].1).unwrap();
        assert_eq!(p.code, cp::code::PROTO_REJ);
        assert_eq!(p.data[..2], [0x80, 0x57]);
        assert!(tx[0].1.len() <= 200);
    }
}
