//! The [`Client`]: PPP in the peer role, dialling in to a server. Sans-IO like
//! [`super::link::Link`], and built from the same parts: the RFC 1661 automaton
//! ([`super::fsm`]), the framing ([`super::hdlc`]) and the control-packet views
//! ([`super::wire::cp`]).
//!
//! Policy, modelled on what Linux pppd does as a dial-up client:
//!
//! * LCP: asks for ACCM 0, a Magic-Number, PFC and ACFC (and an MRU when not 1500). Of the
//!   server's options it accepts MRU, ACCM, Magic-Number, PFC, ACFC and an
//!   Authentication-Protocol it has credentials for (PAP, CHAP-MD5); it Naks another
//!   authentication protocol toward one it can do, and rejects everything else.
//! * PAP as the peer: sends Authenticate-Request, retransmits it on the restart timer, takes
//!   the Ack or Nak.
//! * CHAP-MD5 as the peer: answers every Challenge with [`super::auth::chap_md5`] and
//!   retransmits the Response until Success or Failure arrives.
//! * IPCP: asks for 0.0.0.0 (or the configured address) and the primary and secondary DNS
//!   servers (RFC 1877), adopts the server's Naks, acknowledges the server's IP-Address.
//! * IPv4 packets flow once IPCP is open.
//!
//! The state is a few kilobytes (the frame buffer dominates), so one process can drive a
//! thousand lines.

use super::auth::{Secret, chap_md5};
use super::fsm::{Fsm, FsmConfig, Negotiator, Reply, Signal, Sink, State, Verdict};
use super::hdlc::{self, ACCM_ALL, Decoder, DecoderStats, Encoder};
use super::ipcp::opt as ipcp_opt;
use super::lcp::{AuthProto, DEFAULT_MRU, MIN_MRU, PeerOptions, opt as lcp_opt};
use super::link::{DownReason, Phase};
use super::rng::Rng;
use super::tx::Tx;
use super::wire::cp::{Options, Packet, code, push_option};
use super::wire::protocol;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;

/// The Authentication-Protocol option data for PAP.
const PAP_OPTION: [u8; 2] = [0xc0, 0x23];
/// The Authentication-Protocol option data for CHAP with MD5.
const CHAP_MD5_OPTION: [u8; 3] = [0xc2, 0x23, 0x05];

use super::auth::code as auth_code;

/// Settings of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// LCP timers and counters.
    pub lcp: FsmConfig,
    /// IPCP timers and counters.
    pub ipcp: FsmConfig,
    /// The MRU we ask for (what we can receive).
    pub mru: u16,
    /// The ACCM we ask the server to use toward us.
    pub accm: u32,
    /// Ask for and accept Protocol-Field-Compression.
    pub pfc: bool,
    /// Ask for and accept Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// Our name: PAP Peer-ID and CHAP Name.
    pub user: String,
    /// The PAP password or CHAP secret.
    pub secret: Secret,
    /// Authenticate with PAP when the server asks.
    pub pap: bool,
    /// Authenticate with CHAP-MD5 when the server asks (preferred over PAP when Naking).
    pub chap: bool,
    /// Retransmit PAP requests and CHAP responses after this long.
    pub auth_restart: Duration,
    /// PAP requests (CHAP responses per challenge) sent before giving up.
    pub auth_max_requests: u32,
    /// The authentication phase must end within this time.
    pub auth_timeout: Duration,
    /// The address we ask for; 0.0.0.0 lets the server choose.
    pub ip: Ipv4Addr,
    /// Ask for primary and secondary DNS servers.
    pub request_dns: bool,
    /// Times the server's request may carry our own Magic-Number before the line counts as
    /// looped back.
    pub loopback_fail: u32,
    /// Line output allowed to wait for the driver before IP packets are dropped.
    pub tx_limit: usize,
    /// Received IP packets allowed to wait for the driver before more are dropped.
    pub ip_queue_limit: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            lcp: FsmConfig::default(),
            ipcp: FsmConfig::default(),
            mru: DEFAULT_MRU,
            accm: 0,
            pfc: true,
            acfc: true,
            user: String::new(),
            secret: Secret::default(),
            pap: false,
            chap: false,
            auth_restart: Duration::from_secs(3),
            auth_max_requests: 10,
            auth_timeout: Duration::from_secs(30),
            ip: Ipv4Addr::UNSPECIFIED,
            request_dns: true,
            loopback_fail: 5,
            tx_limit: 16 * 1024,
            ip_queue_limit: 64,
        }
    }
}

impl ClientConfig {
    /// The defaults, with credentials usable by both PAP and CHAP-MD5.
    pub fn with_credentials(user: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            user: user.into(),
            secret: Secret::new(secret),
            pap: true,
            chap: true,
            ..Self::default()
        }
    }
}

/// Something the driver of a client must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// IPCP is open: IPv4 packets may flow.
    Up {
        /// Our address, as the server agreed to it.
        local_ip: Ipv4Addr,
        /// The server's address (0.0.0.0 if it did not say).
        peer_ip: Ipv4Addr,
        /// Primary and secondary DNS servers, as the server gave them.
        dns: [Option<Ipv4Addr>; 2],
    },
    /// The server refused our credentials (PAP Authenticate-Nak, CHAP Failure). A
    /// [`ClientEvent::Down`] with [`DownReason::AuthFailed`] follows.
    AuthFailed,
    /// The link is finished. No more events follow.
    Down(DownReason),
}

/// Counters of a client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Good frames received.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// IPv4 packets received from the server.
    pub rx_packets: u64,
    /// Octets of those packets.
    pub rx_bytes: u64,
    /// IPv4 packets sent to the server.
    pub tx_packets: u64,
    /// Octets of those packets.
    pub tx_bytes: u64,
    /// Frames with a malformed PPP header or control packet.
    pub malformed: u64,
    /// Frames discarded because they do not belong in the current phase.
    pub discarded: u64,
    /// Protocol-Rejects sent.
    pub protocol_rejects: u64,
    /// IP packets toward the server dropped: too large, or the line is backed up.
    pub tx_dropped: u64,
    /// IP packets from the server dropped because the driver did not take them.
    pub rx_dropped: u64,
    /// Echo-Requests answered.
    pub echo_replies_sent: u64,
    /// The framing decoder's counters.
    pub decoder: DecoderStats,
}

// ---- LCP policy ---------------------------------------------------------------------------

/// The client's LCP option policy.
#[derive(Debug)]
struct LcpPeer {
    want_mru: u16,
    want_accm: u32,
    want_pfc: bool,
    want_acfc: bool,
    pap: bool,
    chap: bool,
    loopback_fail: u32,
    rng: Rng,
    // What we ask for now.
    mru: Option<u16>,
    accm: Option<u32>,
    magic: Option<u32>,
    pfc: bool,
    acfc: bool,
    // What the server acknowledged of ours.
    acked_accm: Option<u32>,
    // What we acknowledged of the server's.
    peer: PeerOptions,
    auth: Option<AuthProto>,
    loops: u32,
    looped: bool,
}

impl LcpPeer {
    fn new(c: &ClientConfig, rng: Rng) -> Self {
        let mut p = Self {
            want_mru: c.mru,
            want_accm: c.accm,
            want_pfc: c.pfc,
            want_acfc: c.acfc,
            pap: c.pap,
            chap: c.chap,
            loopback_fail: c.loopback_fail,
            rng,
            mru: None,
            accm: None,
            magic: None,
            pfc: false,
            acfc: false,
            acked_accm: None,
            peer: PeerOptions::default(),
            auth: None,
            loops: 0,
            looped: false,
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

    /// The authentication protocol we would rather do, as option data.
    fn preferred_auth(&self) -> Option<&'static [u8]> {
        if self.chap {
            Some(&CHAP_MD5_OPTION)
        } else if self.pap {
            Some(&PAP_OPTION)
        } else {
            None
        }
    }
}

impl Negotiator for LcpPeer {
    fn reset(&mut self) {
        self.mru = (self.want_mru != DEFAULT_MRU).then_some(self.want_mru);
        self.accm = Some(self.want_accm);
        self.pfc = self.want_pfc;
        self.acfc = self.want_acfc;
        self.acked_accm = None;
        self.peer = PeerOptions::default();
        self.auth = None;
        let m = self.new_magic(0);
        self.magic = Some(m);
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(m) = self.mru {
            push_option(out, lcp_opt::MRU, &m.to_be_bytes());
        }
        if let Some(a) = self.accm {
            push_option(out, lcp_opt::ACCM, &a.to_be_bytes());
        }
        if let Some(m) = self.magic {
            push_option(out, lcp_opt::MAGIC, &m.to_be_bytes());
        }
        if self.pfc {
            push_option(out, lcp_opt::PFC, &[]);
        }
        if self.acfc {
            push_option(out, lcp_opt::ACFC, &[]);
        }
    }

    fn judge_request(&mut self, options: Options<'_>, reply: &mut Reply) {
        let mut peer = PeerOptions::default();
        let mut auth = None;
        for o in options.flatten() {
            match (o.kind, o.data.len()) {
                (lcp_opt::MRU, 2) => {
                    let v = o.u16().unwrap_or(DEFAULT_MRU);
                    if v < MIN_MRU {
                        reply.nak(&o, &MIN_MRU.to_be_bytes());
                    } else {
                        peer.mru = v;
                    }
                }
                (lcp_opt::ACCM, 4) => peer.accm = o.u32().unwrap_or(ACCM_ALL),
                (lcp_opt::AUTH, _) => {
                    let wanted = match o.data {
                        [0xc0, 0x23] => Some(AuthProto::Pap),
                        [0xc2, 0x23, 0x05] => Some(AuthProto::ChapMd5),
                        _ => None,
                    };
                    match wanted {
                        Some(AuthProto::Pap) if self.pap => auth = Some(AuthProto::Pap),
                        Some(AuthProto::ChapMd5) if self.chap => auth = Some(AuthProto::ChapMd5),
                        _ => match self.preferred_auth() {
                            Some(p) => reply.nak(&o, p),
                            None => reply.reject(&o),
                        },
                    }
                }
                (lcp_opt::MAGIC, 4) => {
                    let v = o.u32().unwrap_or(0);
                    if v == 0 {
                        let m = self.new_magic(0);
                        reply.nak(&o, &m.to_be_bytes());
                    } else if self.magic == Some(v) {
                        // Our own number: probably a looped-back line (RFC 1661 6.4).
                        self.loops += 1;
                        if self.loops >= self.loopback_fail {
                            self.looped = true;
                        }
                        let theirs = self.new_magic(v);
                        let ours = self.new_magic(theirs);
                        self.magic = Some(ours);
                        reply.nak(&o, &theirs.to_be_bytes());
                    } else {
                        peer.magic = v;
                    }
                }
                (lcp_opt::PFC, 0) if self.want_pfc => peer.pfc = true,
                (lcp_opt::ACFC, 0) if self.want_acfc => peer.acfc = true,
                _ => reply.reject(&o),
            }
        }
        if reply.verdict() == Verdict::Ack {
            self.peer = peer;
            self.auth = auth;
        }
    }

    fn handle_ack(&mut self, _options: Options<'_>) {
        // The automaton checked that the Ack equals our request.
        self.acked_accm = self.accm;
    }

    fn handle_nak(&mut self, options: Options<'_>) {
        for o in options.flatten() {
            match o.kind {
                lcp_opt::MRU => {
                    if let Some(v) = o.u16() {
                        let limit = self.want_mru.max(DEFAULT_MRU);
                        self.mru = (v >= MIN_MRU && v <= limit && v != DEFAULT_MRU).then_some(v);
                    }
                }
                lcp_opt::ACCM if self.accm.is_some() => {
                    if let Some(v) = o.u32() {
                        self.accm = Some(self.accm.unwrap_or(0) | v);
                    }
                }
                lcp_opt::MAGIC if self.magic.is_some() => {
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
                lcp_opt::MRU => self.mru = None,
                lcp_opt::ACCM => self.accm = None,
                lcp_opt::MAGIC => self.magic = None,
                lcp_opt::PFC => self.pfc = false,
                lcp_opt::ACFC => self.acfc = false,
                _ => {}
            }
        }
    }
}

// ---- IPCP policy --------------------------------------------------------------------------

/// The client's IPCP option policy.
#[derive(Debug)]
struct IpcpPeer {
    want_ip: Ipv4Addr,
    want_dns: bool,
    /// The address we ask for; `None` once the server rejected the option.
    addr: Option<Ipv4Addr>,
    /// The DNS servers we ask for; `None` when not asked (or rejected).
    dns: [Option<Ipv4Addr>; 2],
    /// What the server acknowledged.
    acked_addr: Ipv4Addr,
    acked_dns: [Option<Ipv4Addr>; 2],
    /// The server's address, as we acknowledged it.
    peer_ip: Option<Ipv4Addr>,
}

impl IpcpPeer {
    fn new(c: &ClientConfig) -> Self {
        let mut p = Self {
            want_ip: c.ip,
            want_dns: c.request_dns,
            addr: None,
            dns: [None, None],
            acked_addr: Ipv4Addr::UNSPECIFIED,
            acked_dns: [None, None],
            peer_ip: None,
        };
        p.reset();
        p
    }

    fn dns_index(kind: u8) -> Option<usize> {
        match kind {
            ipcp_opt::PRIMARY_DNS => Some(0),
            ipcp_opt::SECONDARY_DNS => Some(1),
            _ => None,
        }
    }
}

impl Negotiator for IpcpPeer {
    fn reset(&mut self) {
        self.addr = Some(self.want_ip);
        let d = self.want_dns.then_some(Ipv4Addr::UNSPECIFIED);
        self.dns = [d, d];
        self.acked_addr = Ipv4Addr::UNSPECIFIED;
        self.acked_dns = [None, None];
        self.peer_ip = None;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(a) = self.addr {
            push_option(out, ipcp_opt::IP_ADDRESS, &a.octets());
        }
        if let Some(d) = self.dns[0] {
            push_option(out, ipcp_opt::PRIMARY_DNS, &d.octets());
        }
        if let Some(d) = self.dns[1] {
            push_option(out, ipcp_opt::SECONDARY_DNS, &d.octets());
        }
    }

    fn judge_request(&mut self, options: Options<'_>, reply: &mut Reply) {
        let mut peer = None;
        for o in options.flatten() {
            match (o.kind, o.u32()) {
                // The server's own address: whatever it says, unless it says nothing useful
                // (we have no address of our own to suggest instead).
                (ipcp_opt::IP_ADDRESS, Some(v)) if v != 0 => peer = Some(Ipv4Addr::from(v)),
                _ => reply.reject(&o),
            }
        }
        if reply.verdict() == Verdict::Ack {
            self.peer_ip = peer;
        }
    }

    fn handle_ack(&mut self, _options: Options<'_>) {
        self.acked_addr = self.addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
        self.acked_dns = self.dns;
    }

    fn handle_nak(&mut self, options: Options<'_>) {
        for o in options.flatten() {
            let Some(v) = o.u32().map(Ipv4Addr::from) else {
                continue;
            };
            match o.kind {
                ipcp_opt::IP_ADDRESS if self.addr.is_some() => self.addr = Some(v),
                k => {
                    if let Some(i) = Self::dns_index(k)
                        && self.dns[i].is_some()
                    {
                        self.dns[i] = Some(v);
                    }
                }
            }
        }
    }

    fn handle_reject(&mut self, options: Options<'_>) {
        for o in options.flatten() {
            if o.kind == ipcp_opt::IP_ADDRESS {
                self.addr = None;
            } else if let Some(i) = Self::dns_index(o.kind) {
                self.dns[i] = None;
            }
        }
    }
}

// ---- authentication as the peer -----------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthState {
    /// No authentication under way.
    Idle,
    /// PAP request sent, waiting for Ack or Nak.
    Pap,
    /// CHAP: waiting for a challenge.
    ChapWait,
    /// CHAP: response sent, waiting for Success or Failure.
    ChapResponded,
    /// Authenticated.
    Done,
    /// Refused or timed out.
    Failed,
}

/// How authentication went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthOutcome {
    Success,
    Failure,
    Timeout,
}

/// PAP and CHAP-MD5 in the peer role.
#[derive(Debug)]
struct AuthPeer {
    proto: Option<AuthProto>,
    state: AuthState,
    id: u8,
    left: u32,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    response: [u8; 16],
}

impl AuthPeer {
    fn new() -> Self {
        Self {
            proto: None,
            state: AuthState::Idle,
            id: 0,
            left: 0,
            retransmit_at: None,
            timeout_at: None,
            response: [0; 16],
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.retransmit_at, self.timeout_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn stop(&mut self) {
        if self.state != AuthState::Failed {
            self.state = AuthState::Idle;
        }
        self.retransmit_at = None;
        self.timeout_at = None;
    }

    fn start(&mut self, now: Instant, proto: AuthProto, c: &ClientConfig, tx: &mut Tx) {
        self.proto = Some(proto);
        self.timeout_at = Some(now + c.auth_timeout);
        self.left = c.auth_max_requests;
        match proto {
            AuthProto::Pap => {
                self.state = AuthState::Pap;
                self.send_pap(now, c, tx);
            }
            AuthProto::ChapMd5 => self.state = AuthState::ChapWait,
        }
    }

    fn send_pap(&mut self, now: Instant, c: &ClientConfig, tx: &mut Tx) {
        // Peer-ID Length, Peer-ID, Passwd-Length, Password.
        let user = &c.user.as_bytes()[..c.user.len().min(255)];
        let pass = c.secret.expose();
        let pass = &pass[..pass.len().min(255)];
        let mut data = Vec::with_capacity(2 + user.len() + pass.len());
        data.push(user.len() as u8);
        data.extend_from_slice(user);
        data.push(pass.len() as u8);
        data.extend_from_slice(pass);
        // RFC 1334 2.2.1: a new identifier for every request.
        self.id = self.id.wrapping_add(1);
        tx.send_cp(protocol::PAP, auth_code::PAP_REQ, self.id, &data);
        self.left = self.left.saturating_sub(1);
        self.retransmit_at = Some(now + c.auth_restart);
    }

    fn send_chap(&mut self, now: Instant, c: &ClientConfig, tx: &mut Tx) {
        // Value-Size, Value, Name.
        let user = c.user.as_bytes();
        let mut data = Vec::with_capacity(17 + user.len());
        data.push(16);
        data.extend_from_slice(&self.response);
        data.extend_from_slice(user);
        tx.send_cp(protocol::CHAP, auth_code::CHAP_RESPONSE, self.id, &data);
        self.left = self.left.saturating_sub(1);
        self.retransmit_at = Some(now + c.auth_restart);
    }

    fn handle_timeout(
        &mut self,
        now: Instant,
        c: &ClientConfig,
        tx: &mut Tx,
    ) -> Option<AuthOutcome> {
        if self.timeout_at.is_some_and(|t| t <= now) {
            self.stop();
            self.state = AuthState::Failed;
            return Some(AuthOutcome::Timeout);
        }
        if self.retransmit_at.is_some_and(|t| t <= now) {
            self.retransmit_at = None;
            match self.state {
                AuthState::Pap if self.left == 0 => {
                    self.stop();
                    self.state = AuthState::Failed;
                    return Some(AuthOutcome::Timeout);
                }
                AuthState::Pap => self.send_pap(now, c, tx),
                // The authenticator answers repeated responses (RFC 1994 4.2); after the
                // last one, wait for a new challenge or the phase timeout.
                AuthState::ChapResponded if self.left > 0 => self.send_chap(now, c, tx),
                _ => {}
            }
        }
        None
    }

    fn receive(
        &mut self,
        now: Instant,
        proto: u16,
        pkt: &Packet<'_>,
        c: &ClientConfig,
        tx: &mut Tx,
    ) -> Option<AuthOutcome> {
        use AuthState as S;
        match (self.proto, proto, pkt.code, self.state) {
            // Any identifier: an answer to an earlier copy of the request is as good.
            (Some(AuthProto::Pap), protocol::PAP, auth_code::PAP_ACK, S::Pap) => {
                self.stop();
                self.state = S::Done;
                Some(AuthOutcome::Success)
            }
            (Some(AuthProto::Pap), protocol::PAP, auth_code::PAP_NAK, S::Pap) => {
                self.stop();
                self.state = S::Failed;
                Some(AuthOutcome::Failure)
            }
            (
                Some(AuthProto::ChapMd5),
                protocol::CHAP,
                auth_code::CHAP_CHALLENGE,
                S::ChapWait | S::ChapResponded | S::Done,
            ) => {
                // Value-Size, Value, Name.
                let value = pkt
                    .data
                    .split_first()
                    .and_then(|(&n, rest)| rest.get(..usize::from(n)))?;
                if value.is_empty() {
                    return None;
                }
                self.id = pkt.id;
                self.response = chap_md5(pkt.id, c.secret.expose(), value);
                self.state = S::ChapResponded;
                self.left = c.auth_max_requests;
                self.send_chap(now, c, tx);
                None
            }
            (
                Some(AuthProto::ChapMd5),
                protocol::CHAP,
                auth_code::CHAP_SUCCESS,
                S::ChapResponded,
            ) if pkt.id == self.id => {
                self.retransmit_at = None;
                self.timeout_at = None;
                self.state = S::Done;
                Some(AuthOutcome::Success)
            }
            (
                Some(AuthProto::ChapMd5),
                protocol::CHAP,
                auth_code::CHAP_FAILURE,
                S::ChapResponded,
            ) if pkt.id == self.id => {
                self.stop();
                self.state = S::Failed;
                Some(AuthOutcome::Failure)
            }
            _ => None,
        }
    }
}

// ---- the client ---------------------------------------------------------------------------

/// One PPP session, client side.
#[derive(Debug)]
pub struct Client {
    decoder: Decoder,
    core: Core,
}

#[derive(Debug)]
struct Core {
    config: ClientConfig,
    phase: Phase,
    done: bool,
    tx: Tx,
    rx_accm: u32,
    lcp: Fsm,
    lcp_policy: LcpPeer,
    ipcp: Fsm,
    ipcp_policy: IpcpPeer,
    auth: AuthPeer,
    up: bool,
    events: VecDeque<ClientEvent>,
    ip_out: VecDeque<Vec<u8>>,
    reason: Option<DownReason>,
    stats: ClientStats,
}

impl Client {
    /// A client in the Dead phase. `seed` keys the Magic-Numbers.
    pub fn new(config: ClientConfig, seed: [u8; 32]) -> Self {
        let max_frame = usize::from(config.mru.max(DEFAULT_MRU)) + 8;
        Self {
            decoder: Decoder::new(max_frame),
            core: Core {
                lcp: Fsm::new(protocol::LCP, config.lcp),
                lcp_policy: LcpPeer::new(&config, Rng::new(seed)),
                ipcp: Fsm::new(protocol::IPCP, config.ipcp),
                ipcp_policy: IpcpPeer::new(&config),
                config,
                phase: Phase::Dead,
                done: false,
                tx: Tx::default(),
                rx_accm: ACCM_ALL,
                auth: AuthPeer::new(),
                up: false,
                events: VecDeque::new(),
                ip_out: VecDeque::new(),
                reason: None,
                stats: ClientStats::default(),
            },
        }
    }

    /// The line is up (CONNECT): send the first LCP Configure-Request.
    pub fn start(&mut self, now: Instant) {
        let c = &mut self.core;
        if c.done || c.phase != Phase::Dead {
            return;
        }
        c.phase = Phase::Establish;
        c.lcp.open(now, &mut c.lcp_policy, &mut c.tx);
        c.lcp.up(now, &mut c.lcp_policy, &mut c.tx);
    }

    /// Bytes received from the line.
    pub fn handle_serial_input(&mut self, now: Instant, mut data: &[u8]) {
        while !data.is_empty() {
            let (n, frame) = self.decoder.decode(data);
            if let Some(f) = frame {
                self.core.handle_frame(now, f);
                self.decoder.set_accm(self.core.rx_accm);
            }
            if n == 0 {
                break;
            }
            data = &data[n.min(data.len())..];
        }
    }

    /// An IPv4 packet for the server. Returns false when it was dropped (IPCP not open,
    /// larger than the server's MRU, or the line is backed up).
    pub fn send_ip_packet(&mut self, now: Instant, packet: &[u8]) -> bool {
        self.core.send_ip_packet(now, packet)
    }

    /// Runs expired timers. Safe to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        self.decoder.set_accm(self.core.rx_accm);
    }

    /// Hang up politely: LCP Terminate-Request, then [`ClientEvent::Down`] with
    /// [`DownReason::Admin`].
    pub fn close(&mut self, now: Instant) {
        self.core.close(now, DownReason::Admin);
    }

    /// The line went away: the session ends at once.
    pub fn lower_down(&mut self, now: Instant) {
        self.core.lower_down(now);
    }

    /// Encoded bytes waiting to be written to the line.
    pub fn serial_output(&self) -> &[u8] {
        self.core.tx.output()
    }

    /// Marks `n` bytes of [`Client::serial_output`] as written.
    pub fn consume_serial_output(&mut self, n: usize) {
        self.core.tx.consume(n);
    }

    /// The next IPv4 packet received from the server.
    pub fn poll_ip_output(&mut self) -> Option<Vec<u8>> {
        self.core.ip_out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.core.events.pop_front()
    }

    /// When [`Client::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.deadline()
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.core.phase
    }

    /// True once the link has finished (after [`ClientEvent::Down`]).
    pub fn is_done(&self) -> bool {
        self.core.done
    }

    /// True while IPCP is open.
    pub fn is_up(&self) -> bool {
        self.core.up
    }

    /// LCP's state.
    pub fn lcp_state(&self) -> State {
        self.core.lcp.state()
    }

    /// IPCP's state.
    pub fn ipcp_state(&self) -> State {
        self.core.ipcp.state()
    }

    /// The authentication protocol the server asked for and we agreed to.
    pub fn auth_proto(&self) -> Option<AuthProto> {
        self.core.lcp_policy.auth
    }

    /// Our address, once IPCP is open.
    pub fn local_ip(&self) -> Option<Ipv4Addr> {
        self.core.up.then_some(self.core.ipcp_policy.acked_addr)
    }

    /// The server's address, once IPCP is open.
    pub fn peer_ip(&self) -> Option<Ipv4Addr> {
        self.core.up.then(|| {
            self.core
                .ipcp_policy
                .peer_ip
                .unwrap_or(Ipv4Addr::UNSPECIFIED)
        })
    }

    /// The DNS servers the server gave, once IPCP is open.
    pub fn dns(&self) -> [Option<Ipv4Addr>; 2] {
        if self.core.up {
            self.core.ipcp_policy.acked_dns
        } else {
            [None, None]
        }
    }

    /// Our Magic-Number (0 if none is negotiated).
    pub fn magic(&self) -> u32 {
        self.core.lcp_policy.magic.unwrap_or(0)
    }

    /// The options of the server's acknowledged LCP Configure-Request.
    pub fn peer_options(&self) -> &PeerOptions {
        &self.core.lcp_policy.peer
    }

    /// Why the link went down, once it did (or is going down).
    pub fn down_reason(&self) -> Option<DownReason> {
        self.core.reason
    }

    /// The counters.
    pub fn stats(&self) -> ClientStats {
        let mut s = self.core.stats;
        s.tx_frames = self.core.tx.frames;
        s.decoder = *self.decoder.stats();
        s
    }
}

/// The text of our Terminate-Request.
fn terminate_text(reason: DownReason) -> &'static [u8] {
    match reason {
        DownReason::Admin => b"User request",
        DownReason::AuthFailed => b"Failed to authenticate ourselves to peer",
        DownReason::AuthTimeout => b"Authentication timed out",
        DownReason::Loopback => b"Line is looped back",
        DownReason::NegotiationFailed(_) => b"Negotiation failed",
        _ => b"Closing",
    }
}

impl Core {
    fn deadline(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        [
            self.lcp.deadline(),
            self.ipcp.deadline(),
            self.auth.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        if self.done || self.phase == Phase::Dead {
            self.stats.discarded += 1;
            return;
        }
        let Ok((proto, info)) = hdlc::parse_header(frame) else {
            self.stats.malformed += 1;
            return;
        };
        self.stats.rx_frames += 1;
        let lcp_open = self.lcp.state() == State::Opened;
        if proto == protocol::IPV4 {
            // The data path first: it is the common case.
            if !self.up {
                self.stats.discarded += 1;
            } else if self.ip_out.len() >= self.config.ip_queue_limit {
                self.stats.rx_dropped += 1;
            } else {
                self.stats.rx_packets += 1;
                self.stats.rx_bytes += info.len() as u64;
                self.ip_out.push_back(info.to_vec());
            }
            return;
        }
        let is_cp = matches!(
            proto,
            protocol::LCP | protocol::PAP | protocol::CHAP | protocol::IPCP
        );
        if proto != protocol::LCP && !lcp_open {
            // RFC 1661 3.4: before LCP is open, everything else is silently discarded.
            self.stats.discarded += 1;
            return;
        }
        if !is_cp {
            self.stats.protocol_rejects += 1;
            self.send_protocol_reject(proto, info);
            return;
        }
        let Ok(pkt) = Packet::parse(info) else {
            self.stats.malformed += 1;
            return;
        };
        match proto {
            protocol::LCP => self.lcp_packet(now, &pkt),
            protocol::IPCP => {
                if self.phase != Phase::Network {
                    // Until authentication is done, NCP packets are tossed (as pppd does);
                    // the server retransmits.
                    self.stats.discarded += 1;
                    return;
                }
                let s = self
                    .ipcp
                    .receive(now, &pkt, &mut self.ipcp_policy, &mut self.tx);
                self.ipcp_signal(now, s);
            }
            _ => {
                if let Some(o) = self
                    .auth
                    .receive(now, proto, &pkt, &self.config, &mut self.tx)
                {
                    self.auth_outcome(now, o);
                }
            }
        }
    }

    fn lcp_packet(&mut self, now: Instant, pkt: &Packet<'_>) {
        let opened = self.lcp.state() == State::Opened;
        let peer_mru = usize::from(self.lcp_policy.peer.mru);
        match pkt.code {
            code::PROTO_REJ => {
                if let ([a, b, ..], true) = (pkt.data, opened) {
                    self.protocol_rejected(now, u16::from_be_bytes([*a, *b]));
                }
            }
            code::ECHO_REQ => {
                if opened {
                    let mut data = Vec::with_capacity(pkt.data.len().max(4));
                    data.extend_from_slice(&self.lcp_policy.magic.unwrap_or(0).to_be_bytes());
                    data.extend_from_slice(pkt.data.get(4..).unwrap_or(&[]));
                    data.truncate(peer_mru.saturating_sub(4).max(4));
                    self.stats.echo_replies_sent += 1;
                    self.tx
                        .send_cp(protocol::LCP, code::ECHO_REPLY, pkt.id, &data);
                }
            }
            code::ECHO_REPLY | code::DISCARD_REQ | code::IDENTIFICATION | code::TIME_REMAINING => {}
            code::CONF_REQ..=code::CODE_REJ => {
                if let Some(s) = self
                    .lcp
                    .receive(now, pkt, &mut self.lcp_policy, &mut self.tx)
                {
                    self.lcp_signal(now, s);
                }
            }
            _ => self.lcp.send_code_reject(pkt, peer_mru, &mut self.tx),
        }
        if self.lcp_policy.looped && self.reason.is_none() {
            self.close(now, DownReason::Loopback);
        }
    }

    fn send_protocol_reject(&mut self, proto: u16, info: &[u8]) {
        if self.lcp.state() != State::Opened {
            return;
        }
        let room = usize::from(self.lcp_policy.peer.mru).saturating_sub(6);
        let mut data = Vec::with_capacity(2 + info.len().min(room));
        data.extend_from_slice(&proto.to_be_bytes());
        data.extend_from_slice(&info[..info.len().min(room)]);
        let id = self.lcp.take_id();
        self.tx.send_cp(protocol::LCP, code::PROTO_REJ, id, &data);
    }

    fn protocol_rejected(&mut self, now: Instant, p: u16) {
        match p {
            protocol::IPCP => {
                let s = self.ipcp.rxj_minus(now, &mut self.tx);
                self.ipcp_signal(now, s);
            }
            protocol::PAP | protocol::CHAP => self.close(now, DownReason::AuthRefused),
            _ => {}
        }
    }

    fn lcp_signal(&mut self, now: Instant, s: Signal) {
        match s {
            Signal::Up => {
                let peer = self.lcp_policy.peer;
                self.tx.encoder.set_accm(peer.accm);
                self.tx.encoder.set_pfc(peer.pfc);
                self.tx.encoder.set_acfc(peer.acfc);
                self.rx_accm = self.lcp_policy.acked_accm.unwrap_or(ACCM_ALL);
                match self.lcp_policy.auth {
                    Some(p) => {
                        self.phase = Phase::Authenticate;
                        self.auth.start(now, p, &self.config, &mut self.tx);
                    }
                    None => self.start_network(now),
                }
            }
            Signal::Down => {
                self.tx.encoder = Encoder::new();
                self.rx_accm = ACCM_ALL;
                self.auth.stop();
                self.ipcp.down();
                self.up = false;
                match self.lcp.state() {
                    State::Stopping | State::Closing => {
                        self.reason.get_or_insert(DownReason::PeerTerminated);
                        self.phase = Phase::Terminate;
                    }
                    _ => self.phase = Phase::Establish,
                }
            }
            Signal::Started => {}
            Signal::Finished => {
                let fallback = if self.lcp.failed() {
                    DownReason::NegotiationFailed(protocol::LCP)
                } else {
                    DownReason::PeerTerminated
                };
                self.finish(self.reason.unwrap_or(fallback));
            }
        }
    }

    fn auth_outcome(&mut self, now: Instant, o: AuthOutcome) {
        match o {
            AuthOutcome::Success => {
                if self.phase == Phase::Authenticate {
                    self.start_network(now);
                }
            }
            AuthOutcome::Failure => {
                self.events.push_back(ClientEvent::AuthFailed);
                self.close(now, DownReason::AuthFailed);
            }
            AuthOutcome::Timeout => self.close(now, DownReason::AuthTimeout),
        }
    }

    fn start_network(&mut self, now: Instant) {
        self.phase = Phase::Network;
        let s = self.ipcp.open(now, &mut self.ipcp_policy, &mut self.tx);
        self.ipcp_signal(now, s);
        self.ipcp.up(now, &mut self.ipcp_policy, &mut self.tx);
    }

    fn ipcp_signal(&mut self, now: Instant, s: Option<Signal>) {
        match s {
            Some(Signal::Up) => {
                self.up = true;
                let p = &self.ipcp_policy;
                self.events.push_back(ClientEvent::Up {
                    local_ip: p.acked_addr,
                    peer_ip: p.peer_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    dns: p.acked_dns,
                });
            }
            Some(Signal::Down) => self.up = false,
            Some(Signal::Finished) => {
                self.up = false;
                let reason = if self.ipcp.failed() {
                    DownReason::NegotiationFailed(protocol::IPCP)
                } else {
                    DownReason::PeerTerminated
                };
                self.close(now, reason);
            }
            Some(Signal::Started) | None => {}
        }
    }

    fn send_ip_packet(&mut self, _now: Instant, packet: &[u8]) -> bool {
        if self.done || !self.up {
            return false;
        }
        let mru = usize::from(self.lcp_policy.peer.mru);
        if packet.len() > mru || self.tx.pending() > self.config.tx_limit {
            self.stats.tx_dropped += 1;
            return false;
        }
        self.tx.send(protocol::IPV4, packet);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += packet.len() as u64;
        true
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.done {
            return;
        }
        if let Some(s) = self
            .lcp
            .handle_timeout(now, &mut self.lcp_policy, &mut self.tx)
        {
            self.lcp_signal(now, s);
        }
        if self.done {
            return;
        }
        if let Some(o) = self.auth.handle_timeout(now, &self.config, &mut self.tx) {
            self.auth_outcome(now, o);
        }
        if self.done {
            return;
        }
        let s = self
            .ipcp
            .handle_timeout(now, &mut self.ipcp_policy, &mut self.tx);
        self.ipcp_signal(now, s);
    }

    fn close(&mut self, now: Instant, reason: DownReason) {
        if self.done {
            return;
        }
        let reason = *self.reason.get_or_insert(reason);
        if let Some(s) = self.lcp.close(now, terminate_text(reason), &mut self.tx) {
            self.lcp_signal(now, s);
        }
        if !self.done {
            self.phase = Phase::Terminate;
            if matches!(self.lcp.state(), State::Closed | State::Initial) {
                self.finish(reason);
            }
        }
    }

    fn lower_down(&mut self, now: Instant) {
        if self.done {
            return;
        }
        let reason = *self.reason.get_or_insert(DownReason::LostCarrier);
        if let Some(s) = self.lcp.down() {
            self.lcp_signal(now, s);
        }
        self.finish(reason);
    }

    fn finish(&mut self, reason: DownReason) {
        if self.done {
            return;
        }
        self.done = true;
        self.up = false;
        self.phase = Phase::Dead;
        self.auth.stop();
        self.ip_out.clear();
        self.events.push_back(ClientEvent::Down(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::auth::{AuthResult, Grant};
    use crate::proto::lcp::LcpConfig;
    use crate::proto::link::{Link, LinkConfig, LinkEvent};
    use crate::proto::wire::cp;

    fn t0() -> Instant {
        Instant::now()
    }

    /// Frames a client wrote, decoded: (protocol, information).
    fn frames(c: &mut Client) -> Vec<(u16, Vec<u8>)> {
        let mut dec = Decoder::new(70_000);
        dec.set_accm(0);
        let mut out = Vec::new();
        let mut data = c.serial_output();
        while !data.is_empty() {
            let (n, f) = dec.decode(data);
            if let Some(f) = f {
                let (p, i) = hdlc::parse_header(f).unwrap();
                out.push((p, i.to_vec()));
            }
            data = &data[n..];
        }
        let n = c.serial_output().len();
        c.consume_serial_output(n);
        out
    }

    fn send(c: &mut Client, now: Instant, proto: u16, code: u8, id: u8, data: &[u8]) {
        let mut pkt = Vec::new();
        cp::emit(code, id, data, &mut pkt);
        let mut wire = Vec::new();
        Encoder::new().encode(proto, &pkt, &mut wire);
        c.handle_serial_input(now, &wire);
    }

    fn opts(list: &[(u8, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (k, d) in list {
            push_option(&mut v, *k, d);
        }
        v
    }

    /// Runs a client against a link until neither has anything to say; returns the link's
    /// events, answering authentication with `secret`.
    fn converse(c: &mut Client, l: &mut Link, now: Instant, secret: &[u8]) -> Vec<LinkEvent> {
        let mut events = Vec::new();
        for _ in 0..100 {
            let a = c.serial_output().to_vec();
            c.consume_serial_output(a.len());
            l.handle_serial_input(now, &a);
            let b = l.serial_output().to_vec();
            l.consume_serial_output(b.len());
            c.handle_serial_input(now, &b);
            let mut quiet = a.is_empty() && b.is_empty();
            while let Some(e) = l.poll_event() {
                quiet = false;
                if let LinkEvent::Authenticate(r) = &e {
                    let res = if r.verify_secret(secret) {
                        AuthResult::Accept(Grant::new(Ipv4Addr::new(10, 0, 0, 100)))
                    } else {
                        AuthResult::Reject {
                            message: "no".into(),
                        }
                    };
                    l.handle_auth_result(now, res);
                }
                events.push(e);
            }
            if quiet {
                break;
            }
        }
        events
    }

    #[test]
    fn first_request_is_like_pppd() {
        let mut c = Client::new(ClientConfig::default(), [1; 32]);
        c.start(t0());
        let f = frames(&mut c);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, protocol::LCP);
        let p = Packet::parse(&f[0].1).unwrap();
        assert_eq!(p.code, code::CONF_REQ);
        let kinds: Vec<u8> = p.options().map(|o| o.unwrap().kind).collect();
        assert_eq!(
            kinds,
            [lcp_opt::ACCM, lcp_opt::MAGIC, lcp_opt::PFC, lcp_opt::ACFC]
        );
        assert_eq!(p.options().next().unwrap().unwrap().u32(), Some(0));
        assert_eq!(c.phase(), Phase::Establish);
        assert_eq!(c.lcp_state(), State::ReqSent);
        assert!(c.poll_timeout().is_some());
    }

    #[test]
    fn judges_auth_options_by_credentials() {
        let now = t0();
        let server_req =
            |auth: &[u8]| opts(&[(lcp_opt::AUTH, auth), (lcp_opt::MAGIC, &[1, 2, 3, 4])]);
        // Credentials for both: PAP and CHAP-MD5 acked, MS-CHAPv2 Naked toward CHAP-MD5.
        let mut c = Client::new(ClientConfig::with_credentials("u", "p"), [2; 32]);
        c.start(now);
        frames(&mut c);
        for (auth, reply, data) in [
            (&PAP_OPTION[..], code::CONF_ACK, server_req(&PAP_OPTION)),
            (
                &CHAP_MD5_OPTION[..],
                code::CONF_ACK,
                server_req(&CHAP_MD5_OPTION),
            ),
            (
                &[0xc2, 0x23, 0x81][..],
                code::CONF_NAK,
                opts(&[(lcp_opt::AUTH, &CHAP_MD5_OPTION)]),
            ),
        ] {
            send(
                &mut c,
                now,
                protocol::LCP,
                code::CONF_REQ,
                7,
                &server_req(auth),
            );
            let f = frames(&mut c);
            let p = Packet::parse(&f.last().unwrap().1).unwrap();
            assert_eq!((p.code, p.id), (reply, 7), "{auth:?}");
            assert_eq!(p.data, &data[..]);
        }
        // PAP only: CHAP is Naked toward PAP.
        let mut c = Client::new(
            ClientConfig {
                chap: false,
                ..ClientConfig::with_credentials("u", "p")
            },
            [3; 32],
        );
        c.start(now);
        frames(&mut c);
        send(
            &mut c,
            now,
            protocol::LCP,
            code::CONF_REQ,
            1,
            &server_req(&CHAP_MD5_OPTION),
        );
        let f = frames(&mut c);
        let p = Packet::parse(&f[0].1).unwrap();
        assert_eq!(p.code, code::CONF_NAK);
        assert_eq!(p.data, &opts(&[(lcp_opt::AUTH, &PAP_OPTION)])[..]);
        // No credentials: rejected.
        let mut c = Client::new(ClientConfig::default(), [4; 32]);
        c.start(now);
        frames(&mut c);
        send(
            &mut c,
            now,
            protocol::LCP,
            code::CONF_REQ,
            1,
            &server_req(&PAP_OPTION),
        );
        let f = frames(&mut c);
        let p = Packet::parse(&f[0].1).unwrap();
        assert_eq!(p.code, code::CONF_REJ);
        assert_eq!(p.data, &opts(&[(lcp_opt::AUTH, &PAP_OPTION)])[..]);
    }

    #[test]
    fn pap_against_link() {
        let now = t0();
        let lc = LinkConfig {
            lcp: LcpConfig {
                auth: vec![AuthProto::Pap],
                ..LcpConfig::default()
            },
            ..LinkConfig::default()
        };
        let mut l = Link::new(lc, [5; 32]);
        let mut c = Client::new(ClientConfig::with_credentials("alice", "secret"), [6; 32]);
        l.start(now);
        c.start(now);
        let ev = converse(&mut c, &mut l, now, b"secret");
        assert!(
            matches!(ev.last(), Some(LinkEvent::Up(s)) if s.peer_ip == Ipv4Addr::new(10, 0, 0, 100))
        );
        assert_eq!(c.auth_proto(), Some(AuthProto::Pap));
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Up {
                local_ip: Ipv4Addr::new(10, 0, 0, 100),
                peer_ip: Ipv4Addr::new(10, 0, 0, 1),
                dns: [None, None],
            })
        );
        assert!(c.is_up());
        assert_eq!(c.local_ip(), Some(Ipv4Addr::new(10, 0, 0, 100)));
        // Data both ways.
        assert!(c.send_ip_packet(now, &[0x45; 20]));
        let b = c.serial_output().to_vec();
        c.consume_serial_output(b.len());
        l.handle_serial_input(now, &b);
        assert_eq!(l.poll_ip_output(), Some(vec![0x45; 20]));
        assert!(l.handle_ip_packet(now, &[0x46; 30]));
        let b = l.serial_output().to_vec();
        l.consume_serial_output(b.len());
        c.handle_serial_input(now, &b);
        assert_eq!(c.poll_ip_output(), Some(vec![0x46; 30]));
    }

    #[test]
    fn chap_against_link_and_wrong_secret() {
        let now = t0();
        for (secret, good) in [(&b"s3cret"[..], true), (b"wrong", false)] {
            let mut l = Link::new(LinkConfig::default(), [7; 32]);
            let mut c = Client::new(ClientConfig::with_credentials("bob", secret), [8; 32]);
            l.start(now);
            c.start(now);
            let ev = converse(&mut c, &mut l, now, b"s3cret");
            assert_eq!(c.auth_proto(), Some(AuthProto::ChapMd5));
            if good {
                assert!(matches!(ev.last(), Some(LinkEvent::Up(_))));
                assert!(c.is_up());
            } else {
                assert_eq!(ev.last(), Some(&LinkEvent::Down(DownReason::AuthFailed)));
                assert_eq!(c.poll_event(), Some(ClientEvent::AuthFailed));
                assert_eq!(
                    c.poll_event(),
                    Some(ClientEvent::Down(DownReason::AuthFailed))
                );
                assert!(c.is_done());
            }
        }
    }

    #[test]
    fn pap_retransmits_then_gives_up() {
        let mut now = t0();
        let mut c = Client::new(ClientConfig::with_credentials("u", "p"), [9; 32]);
        c.start(now);
        let req = Packet::parse(&frames(&mut c)[0].1).unwrap().data.to_vec();
        // The server acks ours and asks for PAP.
        send(&mut c, now, protocol::LCP, code::CONF_ACK, 1, &req);
        let sreq = opts(&[
            (lcp_opt::AUTH, &PAP_OPTION),
            (lcp_opt::MAGIC, &[9, 9, 9, 9]),
        ]);
        send(&mut c, now, protocol::LCP, code::CONF_REQ, 1, &sreq);
        assert_eq!(c.phase(), Phase::Authenticate);
        let f = frames(&mut c);
        let paps: Vec<_> = f.iter().filter(|(p, _)| *p == protocol::PAP).collect();
        assert_eq!(paps.len(), 1);
        assert_eq!(Packet::parse(&paps[0].1).unwrap().data, &[1, b'u', 1, b'p']);
        let mut sent = 1;
        while let Some(t) = c.poll_timeout() {
            now = t;
            c.handle_timeout(now);
            sent += frames(&mut c)
                .iter()
                .filter(|(p, _)| *p == protocol::PAP)
                .count();
            if c.is_done() {
                break;
            }
        }
        // 10 requests 3 s apart, then the phase times out at 30 s.
        assert_eq!(sent, 10);
        assert_eq!(c.down_reason(), Some(DownReason::AuthTimeout));
    }

    #[test]
    fn ipcp_adopts_naks() {
        let now = t0();
        let mut c = Client::new(ClientConfig::default(), [10; 32]);
        c.start(now);
        let req = Packet::parse(&frames(&mut c)[0].1).unwrap().data.to_vec();
        send(&mut c, now, protocol::LCP, code::CONF_ACK, 1, &req);
        send(
            &mut c,
            now,
            protocol::LCP,
            code::CONF_REQ,
            1,
            &opts(&[(lcp_opt::MAGIC, &[9, 9, 9, 9])]),
        );
        assert_eq!(c.phase(), Phase::Network);
        let f = frames(&mut c);
        let ipcp = Packet::parse(&f.iter().find(|(p, _)| *p == protocol::IPCP).unwrap().1).unwrap();
        let want = opts(&[(3, &[0; 4]), (129, &[0; 4]), (131, &[0; 4])]);
        assert_eq!(ipcp.data, &want[..]);
        // Nak the address and primary DNS, reject secondary DNS.
        send(
            &mut c,
            now,
            protocol::IPCP,
            code::CONF_NAK,
            ipcp.id,
            &opts(&[(3, &[10, 1, 1, 5]), (129, &[8, 8, 8, 8])]),
        );
        let f = frames(&mut c);
        let p = Packet::parse(&f[0].1).unwrap();
        send(
            &mut c,
            now,
            protocol::IPCP,
            code::CONF_REJ,
            p.id,
            &opts(&[(131, &[0; 4])]),
        );
        let f = frames(&mut c);
        let p = Packet::parse(&f[0].1).unwrap();
        let want = opts(&[(3, &[10, 1, 1, 5]), (129, &[8, 8, 8, 8])]);
        assert_eq!(p.data, &want[..]);
        send(&mut c, now, protocol::IPCP, code::CONF_ACK, p.id, &want);
        // The server's request: its address acked, VJ rejected.
        send(
            &mut c,
            now,
            protocol::IPCP,
            code::CONF_REQ,
            1,
            &opts(&[(3, &[10, 1, 1, 1]), (2, &[0, 0x2d, 15, 1])]),
        );
        let p = frames(&mut c);
        assert_eq!(Packet::parse(&p[0].1).unwrap().code, code::CONF_REJ);
        send(
            &mut c,
            now,
            protocol::IPCP,
            code::CONF_REQ,
            2,
            &opts(&[(3, &[10, 1, 1, 1])]),
        );
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Up {
                local_ip: Ipv4Addr::new(10, 1, 1, 5),
                peer_ip: Ipv4Addr::new(10, 1, 1, 1),
                dns: [Some(Ipv4Addr::new(8, 8, 8, 8)), None],
            })
        );
    }

    #[test]
    fn looped_line_goes_down() {
        let mut now = t0();
        let mut c = Client::new(ClientConfig::default(), [11; 32]);
        c.start(now);
        for _ in 0..100 {
            let b = c.serial_output().to_vec();
            c.consume_serial_output(b.len());
            if b.is_empty() {
                match c.poll_timeout() {
                    Some(t) => {
                        now = t;
                        c.handle_timeout(now);
                    }
                    None => break,
                }
            }
            c.handle_serial_input(now, &b);
        }
        assert!(c.is_done());
        assert_eq!(c.down_reason(), Some(DownReason::Loopback));
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
                                frames in proptest::collection::vec(
                                    (0usize..5, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)), 0..40)) {
            let now = t0();
            let mut c = Client::new(ClientConfig::with_credentials("u", "p"), [12; 32]);
            c.start(now);
            c.handle_serial_input(now, &input);
            let mut enc = Encoder::new();
            for (i, (p, payload)) in frames.iter().enumerate() {
                let proto = [protocol::LCP, protocol::PAP, protocol::CHAP, protocol::IPCP, protocol::IPV4][*p];
                let mut w = Vec::new();
                enc.encode(proto, payload, &mut w);
                c.handle_serial_input(now + Duration::from_millis(i as u64), &w);
                enc.set_accm(0);
                c.handle_timeout(now + Duration::from_secs(i as u64));
                let n = c.serial_output().len();
                c.consume_serial_output(n);
                while c.poll_event().is_some() {}
            }
        }
    }
}
