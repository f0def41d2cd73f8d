//! The [`Link`]: one PPP session on one line, from the first byte to the hang-up.
//!
//! Phases (RFC 1661 section 3.2): Dead → Establish (LCP) → Authenticate (PAP/CHAP) →
//! Network (IPCP, IP packets) → Terminate → Dead.
//!
//! Inputs: [`Link::start`], [`Link::handle_serial_input`], [`Link::handle_ip_packet`],
//! [`Link::handle_timeout`], [`Link::handle_auth_result`], [`Link::close`] and
//! [`Link::lower_down`] (carrier loss). Outputs: bytes for the line
//! ([`Link::serial_output`] / [`Link::consume_serial_output`]), IP packets for the host
//! ([`Link::poll_ip_output`]), [`LinkEvent`]s ([`Link::poll_event`]) and the next deadline
//! ([`Link::poll_timeout`]).

use super::auth::{
    AuthConfig, AuthOutput, AuthRequest, AuthResult, Authenticator, Credentials, Grant,
};
use super::fsm::{Signal, State};
use super::hdlc::{self, ACCM_ALL, Decoder, DecoderStats, Encoder};
use super::ipcp::{Ipcp, IpcpConfig};
use super::lcp::{AuthProto, Lcp, LcpConfig, LcpFailure, LcpInput};
use super::rng::Rng;
use super::tx::Tx;
use super::wire::cp::Packet;
use super::wire::protocol;
use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;

/// Settings of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// LCP settings.
    pub lcp: LcpConfig,
    /// IPCP settings.
    pub ipcp: IpcpConfig,
    /// Authenticator settings.
    pub auth: AuthConfig,
    /// Wait this long after [`Link::start`] before sending the first Configure-Request,
    /// unless the peer speaks first (clients that wait for the server still connect).
    pub first_request_delay: Duration,
    /// End the session after this long without IP traffic (a grant may override it).
    pub idle_timeout: Option<Duration>,
    /// End the session after this long (a grant may override it).
    pub session_timeout: Option<Duration>,
    /// Line output allowed to wait for the driver before IP packets are dropped.
    pub tx_limit: usize,
    /// Received IP packets allowed to wait for the driver before more are dropped.
    pub ip_queue_limit: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            lcp: LcpConfig::default(),
            ipcp: IpcpConfig::default(),
            auth: AuthConfig::default(),
            first_request_delay: Duration::ZERO,
            idle_timeout: None,
            session_timeout: None,
            tx_limit: 16 * 1024,
            ip_queue_limit: 64,
        }
    }
}

/// The phase of the link (RFC 1661 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started, or finished.
    Dead,
    /// LCP negotiating.
    Establish,
    /// PAP or CHAP under way.
    Authenticate,
    /// IPCP and IP.
    Network,
    /// Terminating.
    Terminate,
}

/// Why a session ended; accounting maps it to RADIUS Acct-Terminate-Cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Closed by the administrator (or nasd shutting down).
    Admin,
    /// The peer sent a Terminate-Request.
    PeerTerminated,
    /// The credentials were refused.
    AuthFailed,
    /// The peer did not authenticate in time.
    AuthTimeout,
    /// The peer refused every authentication protocol we allow.
    AuthRefused,
    /// Echo-Requests went unanswered.
    EchoTimeout,
    /// No IP traffic for the idle timeout.
    IdleTimeout,
    /// The session time limit was reached.
    SessionTimeout,
    /// The line is looped back (our Magic-Number came back).
    Loopback,
    /// The carrier dropped or the line closed.
    LostCarrier,
    /// The named control protocol could not agree, or the peer never answered.
    NegotiationFailed(u16),
}

impl DownReason {
    /// A short machine-friendly name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::PeerTerminated => "peer-terminated",
            Self::AuthFailed => "auth-failed",
            Self::AuthTimeout => "auth-timeout",
            Self::AuthRefused => "auth-refused",
            Self::EchoTimeout => "echo-timeout",
            Self::IdleTimeout => "idle-timeout",
            Self::SessionTimeout => "session-timeout",
            Self::Loopback => "loopback",
            Self::LostCarrier => "lost-carrier",
            Self::NegotiationFailed(_) => "negotiation-failed",
        }
    }

    /// The text sent in our Terminate-Request.
    fn message(&self) -> &'static [u8] {
        match self {
            Self::Admin => b"Administratively closed",
            Self::PeerTerminated => b"Peer terminated",
            Self::AuthFailed => b"Authentication failed",
            Self::AuthTimeout => b"Authentication timed out",
            Self::AuthRefused => b"Peer refused to authenticate",
            Self::EchoTimeout => b"No answer to echo requests",
            Self::IdleTimeout => b"Idle timeout",
            Self::SessionTimeout => b"Session time limit reached",
            Self::Loopback => b"Line is looped back",
            Self::LostCarrier => b"Lost carrier",
            Self::NegotiationFailed(_) => b"Negotiation failed",
        }
    }
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NegotiationFailed(p) => {
                write!(f, "{} ({})", self.as_str(), protocol::name(*p))
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// What the session looks like once IPCP is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The authenticated user ("" without authentication).
    pub user: String,
    /// How the user authenticated.
    pub auth: Option<AuthProto>,
    /// Our address.
    pub local_ip: Ipv4Addr,
    /// The peer's address.
    pub peer_ip: Ipv4Addr,
    /// DNS servers offered.
    pub dns: [Option<Ipv4Addr>; 2],
    /// The largest IP packet the peer accepts.
    pub peer_mru: u16,
}

/// Something the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// Decide on these credentials and answer with [`Link::handle_auth_result`]. Without an
    /// authentication protocol this still comes, with [`Credentials::None`], so the driver
    /// can assign the address.
    Authenticate(AuthRequest),
    /// IPCP is open: route the peer's address to this link.
    Up(SessionInfo),
    /// The link is finished: remove routes, hang up. No more events follow.
    Down(DownReason),
}

/// Counters of a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Good frames received.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// IPv4 packets received from the peer.
    pub rx_packets: u64,
    /// Octets of those packets.
    pub rx_bytes: u64,
    /// IPv4 packets sent to the peer.
    pub tx_packets: u64,
    /// Octets of those packets.
    pub tx_bytes: u64,
    /// Frames with a malformed PPP header or control packet.
    pub malformed: u64,
    /// Frames discarded because they do not belong in the current phase.
    pub discarded: u64,
    /// Protocol-Rejects sent for unknown or disabled protocols.
    pub protocol_rejects: u64,
    /// IP packets toward the peer dropped: larger than its MRU, or the line is backed up.
    pub tx_dropped: u64,
    /// IP packets from the peer dropped because the driver did not take them.
    pub rx_dropped: u64,
    /// LCP Echo-Requests sent (keepalive).
    pub echo_requests: u64,
    /// LCP Echo-Replies received.
    pub echo_replies: u64,
    /// The framing decoder's counters.
    pub decoder: DecoderStats,
}

/// One PPP session, server side.
#[derive(Debug)]
pub struct Link {
    decoder: Decoder,
    core: Core,
}

#[derive(Debug)]
struct Core {
    config: LinkConfig,
    phase: Phase,
    done: bool,
    rng: Rng,
    tx: Tx,
    rx_accm: u32,
    lcp: Lcp,
    ipcp: Ipcp,
    auth: Option<Authenticator>,
    /// Waiting for a verdict without an authentication protocol.
    awaiting_plain_verdict: bool,
    user: String,
    grant: Option<Grant>,
    ip_out: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
    reason: Option<DownReason>,
    start_at: Option<Instant>,
    session_at: Option<Instant>,
    /// When the session was authorised (the origin of the session time limit).
    granted_at: Option<Instant>,
    idle_for: Option<Duration>,
    idle_at: Option<Instant>,
    last_data: Option<Instant>,
    stats: LinkStats,
}

impl Link {
    /// A link in the Dead phase. `seed` keys the random numbers (Magic-Numbers, CHAP
    /// challenges): give each link 32 bytes from the OS.
    pub fn new(config: LinkConfig, seed: [u8; 32]) -> Self {
        let mut rng = Rng::new(seed);
        let lcp_rng = Rng::new({
            let mut s = [0u8; 32];
            rng.fill(&mut s);
            s
        });
        let max_frame = usize::from(config.lcp.mru.max(super::lcp::DEFAULT_MRU)) + 8;
        Self {
            decoder: Decoder::new(max_frame),
            core: Core {
                lcp: Lcp::new(config.lcp.clone(), lcp_rng),
                ipcp: Ipcp::new(config.ipcp.clone()),
                config,
                phase: Phase::Dead,
                done: false,
                rng,
                tx: Tx::default(),
                rx_accm: ACCM_ALL,
                auth: None,
                awaiting_plain_verdict: false,
                user: String::new(),
                grant: None,
                ip_out: VecDeque::new(),
                events: VecDeque::new(),
                reason: None,
                start_at: None,
                session_at: None,
                granted_at: None,
                idle_for: None,
                idle_at: None,
                last_data: None,
                stats: LinkStats::default(),
            },
        }
    }

    /// The line is up (CONNECT, or a direct line opened): start LCP. The first
    /// Configure-Request goes out after `first_request_delay`, or at once when the peer
    /// speaks first.
    pub fn start(&mut self, now: Instant) {
        let c = &mut self.core;
        if c.done || c.phase != Phase::Dead {
            return;
        }
        c.phase = Phase::Establish;
        c.lcp.open(now, &mut c.tx);
        if c.config.first_request_delay.is_zero() {
            c.lcp.up(now, &mut c.tx);
        } else {
            c.start_at = Some(now + c.config.first_request_delay);
        }
    }

    /// Bytes received from the line.
    pub fn handle_serial_input(&mut self, now: Instant, mut data: &[u8]) {
        while !data.is_empty() {
            let (n, frame) = self.decoder.decode(data);
            if let Some(f) = frame {
                self.core.handle_frame(now, f);
                // Later bytes are decoded with the receive ACCM as it is now.
                self.decoder.set_accm(self.core.rx_accm);
            }
            if n == 0 {
                break;
            }
            data = &data[n.min(data.len())..];
        }
    }

    /// An IP packet from the host for the peer. Returns false when it was dropped (IPCP not
    /// open, larger than the peer's MRU, or the line is backed up).
    pub fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) -> bool {
        self.core.handle_ip_packet(now, packet)
    }

    /// Runs expired timers. Safe to call early or often.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        self.decoder.set_accm(self.core.rx_accm);
    }

    /// The verdict on the last [`LinkEvent::Authenticate`].
    pub fn handle_auth_result(&mut self, now: Instant, result: AuthResult) {
        self.core.handle_auth_result(now, result);
    }

    /// Ends the session: Terminate-Request with the reason, then Down.
    pub fn close(&mut self, now: Instant, reason: DownReason) {
        self.core.close(now, reason);
        self.decoder.set_accm(self.core.rx_accm);
    }

    /// Changes the session time limit while the session runs (a RADIUS CoA-Request with
    /// Session-Timeout): counted from when the session was authorised, as the original limit
    /// was; `None` removes the limit. A limit already passed ends the session at the next
    /// [`handle_timeout`](Self::handle_timeout), which [`poll_timeout`](Self::poll_timeout)
    /// then asks for at once. Before authorisation it does nothing and returns false.
    pub fn set_session_timeout(&mut self, now: Instant, limit: Option<Duration>) -> bool {
        self.core.set_session_timeout(now, limit)
    }

    /// Changes the idle limit while the session runs (a RADIUS CoA-Request with
    /// Idle-Timeout): counted from the last IP packet either way; `None` removes it. Before
    /// authorisation it does nothing and returns false.
    pub fn set_idle_timeout(&mut self, now: Instant, limit: Option<Duration>) -> bool {
        self.core.set_idle_timeout(now, limit)
    }

    /// The line went away (carrier lost, EOF): the session ends at once.
    pub fn lower_down(&mut self, now: Instant) {
        self.core.lower_down(now);
    }

    /// Encoded bytes waiting to be written to the line.
    pub fn serial_output(&self) -> &[u8] {
        self.core.tx.output()
    }

    /// Marks `n` bytes of [`Link::serial_output`] as written.
    pub fn consume_serial_output(&mut self, n: usize) {
        self.core.tx.consume(n);
    }

    /// The next IP packet received from the peer, for the host.
    pub fn poll_ip_output(&mut self) -> Option<Vec<u8>> {
        self.core.ip_out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.core.events.pop_front()
    }

    /// When [`Link::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.deadline()
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.core.phase
    }

    /// True once the link has finished (after [`LinkEvent::Down`]).
    pub fn is_done(&self) -> bool {
        self.core.done
    }

    /// LCP's state.
    pub fn lcp_state(&self) -> State {
        self.core.lcp.fsm.state()
    }

    /// IPCP's state.
    pub fn ipcp_state(&self) -> State {
        self.core.ipcp.fsm.state()
    }

    /// Names the user when authentication happened before PPP (a text login); use with no
    /// authentication protocol configured.
    pub fn set_user(&mut self, user: &str) {
        self.core.user = user.to_string();
    }

    /// The authenticated user name, once known.
    pub fn user(&self) -> &str {
        &self.core.user
    }

    /// The counters.
    pub fn stats(&self) -> LinkStats {
        let mut s = self.core.stats;
        s.tx_frames = self.core.tx.frames;
        s.decoder = *self.decoder.stats();
        s.echo_requests = self.core.lcp.stats().echo_requests_sent;
        s.echo_replies = self.core.lcp.stats().echo_replies;
        s
    }
}

impl Core {
    fn deadline(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        [
            self.start_at,
            self.lcp.deadline(),
            self.ipcp.fsm.deadline(),
            self.auth.as_ref().and_then(|a| a.deadline()),
            self.session_at,
            self.idle_at,
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
        self.lcp.saw_frame(now);
        let lcp_open = self.lcp.fsm.state() == State::Opened;
        match proto {
            protocol::LCP => {
                if self.lcp.fsm.state() == State::Starting {
                    // The peer spoke first (mgetty's AutoPPP): no more waiting.
                    self.start_at = None;
                    self.lcp.up(now, &mut self.tx);
                }
                let Ok(pkt) = Packet::parse(info) else {
                    self.stats.malformed += 1;
                    return;
                };
                match self.lcp.receive(now, &pkt, &mut self.tx) {
                    LcpInput::Signal(s) => self.lcp_signal(now, s),
                    LcpInput::ProtocolRejected(p) => self.protocol_rejected(now, p),
                    LcpInput::None => {}
                }
                self.check_lcp_failure(now);
            }
            // RFC 1661 3.4: before LCP is open, everything else is silently discarded.
            _ if !lcp_open => self.stats.discarded += 1,
            protocol::PAP | protocol::CHAP => {
                let Ok(pkt) = Packet::parse(info) else {
                    self.stats.malformed += 1;
                    return;
                };
                let out = match self.auth.as_mut() {
                    Some(a) if a.proto().protocol() == proto => {
                        a.receive(proto, &pkt, &mut self.tx)
                    }
                    _ => {
                        self.stats.discarded += 1;
                        None
                    }
                };
                if let Some(o) = out {
                    self.auth_output(now, o);
                }
            }
            protocol::IPCP => {
                if self.phase != Phase::Network {
                    self.stats.discarded += 1;
                    return;
                }
                let Ok(pkt) = Packet::parse(info) else {
                    self.stats.malformed += 1;
                    return;
                };
                let sig = self
                    .ipcp
                    .fsm
                    .receive(now, &pkt, &mut self.ipcp.policy, &mut self.tx);
                self.ipcp_signal(now, sig);
            }
            protocol::IPV4 => {
                if self.ipcp.fsm.state() != State::Opened {
                    self.stats.discarded += 1;
                } else if self.ip_out.len() >= self.config.ip_queue_limit {
                    self.stats.rx_dropped += 1;
                } else {
                    self.stats.rx_packets += 1;
                    self.stats.rx_bytes += info.len() as u64;
                    self.last_data = Some(now);
                    self.ip_out.push_back(info.to_vec());
                }
            }
            _ => {
                // IPV6CP, CCP, IPXCP, VJ, ...: not spoken here.
                self.stats.protocol_rejects += 1;
                self.lcp.send_protocol_reject(proto, info, &mut self.tx);
            }
        }
    }

    fn lcp_signal(&mut self, now: Instant, s: Signal) {
        match s {
            Signal::Up => {
                let peer = *self.lcp.peer();
                self.tx.encoder.set_accm(peer.accm);
                self.tx.encoder.set_pfc(peer.pfc);
                self.tx.encoder.set_acfc(peer.acfc);
                self.rx_accm = self.lcp.acked_accm().unwrap_or(ACCM_ALL);
                tracing::debug!(
                    peer_mru = peer.mru,
                    tx_accm = format_args!("{:#010x}", peer.accm),
                    rx_accm = format_args!("{:#010x}", self.rx_accm),
                    pfc = peer.pfc,
                    acfc = peer.acfc,
                    auth = ?self.lcp.auth(),
                    "LCP opened"
                );
                self.lcp.start_echo(now);
                self.begin_auth(now);
            }
            Signal::Down => {
                self.lcp.stop_echo();
                self.tx.encoder = Encoder::new();
                self.rx_accm = ACCM_ALL;
                if let Some(a) = self.auth.as_mut() {
                    a.stop();
                }
                self.awaiting_plain_verdict = false;
                self.ipcp.fsm.down();
                self.session_at = None;
                self.idle_at = None;
                match self.lcp.fsm.state() {
                    State::Stopping | State::Closing => {
                        self.reason.get_or_insert(DownReason::PeerTerminated);
                        self.phase = Phase::Terminate;
                    }
                    _ => self.phase = Phase::Establish,
                }
            }
            Signal::Started => {}
            Signal::Finished => {
                let fallback = if self.lcp.fsm.failed() {
                    DownReason::NegotiationFailed(protocol::LCP)
                } else {
                    DownReason::PeerTerminated
                };
                let reason = self.reason.unwrap_or(fallback);
                self.finish(reason);
            }
        }
    }

    fn check_lcp_failure(&mut self, now: Instant) {
        if let Some(f) = self.lcp.failure()
            && self.reason.is_none()
        {
            let reason = match f {
                LcpFailure::Loopback => DownReason::Loopback,
                LcpFailure::AuthRefused => DownReason::AuthRefused,
                LcpFailure::EchoTimeout => DownReason::EchoTimeout,
            };
            self.close(now, reason);
        }
    }

    fn protocol_rejected(&mut self, now: Instant, p: u16) {
        match p {
            protocol::IPCP => {
                let sig = self.ipcp.fsm.rxj_minus(now, &mut self.tx);
                self.ipcp_signal(now, sig);
            }
            protocol::PAP | protocol::CHAP => self.close(now, DownReason::AuthRefused),
            _ => {}
        }
    }

    fn begin_auth(&mut self, now: Instant) {
        self.phase = Phase::Authenticate;
        match self.lcp.auth() {
            Some(p) => {
                let mut a = Authenticator::new(p, self.config.auth.clone());
                a.start(now, &mut self.rng, &mut self.tx);
                self.auth = Some(a);
            }
            None => {
                self.awaiting_plain_verdict = true;
                self.events.push_back(LinkEvent::Authenticate(AuthRequest {
                    user: String::new(),
                    credentials: Credentials::None,
                }));
            }
        }
    }

    fn auth_output(&mut self, now: Instant, out: AuthOutput) {
        match out {
            AuthOutput::Request(r) => {
                self.user.clone_from(&r.user);
                self.events.push_back(LinkEvent::Authenticate(r));
            }
            AuthOutput::Success(grant) => {
                if self.phase == Phase::Authenticate {
                    self.start_network(now, grant);
                }
            }
            AuthOutput::Failure => self.close(now, DownReason::AuthFailed),
            AuthOutput::Timeout => self.close(now, DownReason::AuthTimeout),
        }
    }

    fn handle_auth_result(&mut self, now: Instant, result: AuthResult) {
        if self.done {
            return;
        }
        if self.awaiting_plain_verdict {
            self.awaiting_plain_verdict = false;
            match result {
                AuthResult::Accept(g) => self.start_network(now, g),
                AuthResult::Reject { .. } => self.close(now, DownReason::AuthFailed),
            }
            return;
        }
        let out = match self.auth.as_mut() {
            Some(a) => a.verdict(now, result, &mut self.tx),
            None => None,
        };
        if let Some(o) = out {
            self.auth_output(now, o);
        }
    }

    fn start_network(&mut self, now: Instant, grant: Grant) {
        self.phase = Phase::Network;
        self.ipcp.set_peer_ip(grant.peer_ip);
        self.idle_for = grant.idle_timeout.or(self.config.idle_timeout);
        let session = grant.session_timeout.or(self.config.session_timeout);
        self.session_at = session.map(|d| now + d);
        self.granted_at = Some(now);
        self.grant = Some(grant);
        let s1 = self.ipcp.fsm.open(now, &mut self.ipcp.policy, &mut self.tx);
        self.ipcp_signal(now, s1);
        self.ipcp.fsm.up(now, &mut self.ipcp.policy, &mut self.tx);
    }

    fn ipcp_signal(&mut self, now: Instant, s: Option<Signal>) {
        match s {
            Some(Signal::Up) => {
                tracing::debug!(peer = %self.ipcp.peer_ip(), dns = ?self.ipcp.config().dns, "IPCP opened");
                self.last_data = Some(now);
                self.idle_at = self.idle_for.map(|d| now + d);
                let cfg = self.ipcp.config();
                self.events.push_back(LinkEvent::Up(SessionInfo {
                    user: self.user.clone(),
                    auth: self.auth.as_ref().map(|a| a.proto()),
                    local_ip: cfg.local_ip,
                    peer_ip: self.ipcp.peer_ip(),
                    dns: cfg.dns,
                    peer_mru: self.lcp.peer().mru,
                }));
            }
            Some(Signal::Finished) => {
                // No network protocol left: close the link.
                let reason = if self.ipcp.fsm.failed() {
                    DownReason::NegotiationFailed(protocol::IPCP)
                } else {
                    DownReason::PeerTerminated
                };
                self.close(now, reason);
            }
            Some(Signal::Down) | Some(Signal::Started) | None => {}
        }
    }

    fn handle_ip_packet(&mut self, now: Instant, packet: &[u8]) -> bool {
        if self.done || self.ipcp.fsm.state() != State::Opened {
            return false;
        }
        if packet.len() > usize::from(self.lcp.peer().mru)
            || self.tx.pending() > self.config.tx_limit
        {
            self.stats.tx_dropped += 1;
            return false;
        }
        self.tx.send(protocol::IPV4, packet);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += packet.len() as u64;
        self.last_data = Some(now);
        true
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.done {
            return;
        }
        if self.start_at.is_some_and(|t| t <= now) {
            self.start_at = None;
            self.lcp.up(now, &mut self.tx);
        }
        let s = self.lcp.handle_timeout(now, &mut self.tx);
        if let Some(s) = s {
            self.lcp_signal(now, s);
        }
        self.check_lcp_failure(now);
        if self.done {
            return;
        }
        let out = match self.auth.as_mut() {
            Some(a) => a.handle_timeout(now, &mut self.rng, &mut self.tx),
            None => None,
        };
        if let Some(o) = out {
            self.auth_output(now, o);
        }
        let s = self
            .ipcp
            .fsm
            .handle_timeout(now, &mut self.ipcp.policy, &mut self.tx);
        self.ipcp_signal(now, s);
        if self.session_at.is_some_and(|t| t <= now) {
            self.session_at = None;
            self.close(now, DownReason::SessionTimeout);
        }
        if let (Some(at), Some(idle)) = (self.idle_at, self.idle_for)
            && at <= now
        {
            let last = self.last_data.unwrap_or(now);
            if now.saturating_duration_since(last) >= idle {
                self.idle_at = None;
                self.close(now, DownReason::IdleTimeout);
            } else {
                self.idle_at = Some(last + idle);
            }
        }
    }

    fn set_session_timeout(&mut self, now: Instant, limit: Option<Duration>) -> bool {
        let Some(granted) = self.granted_at else {
            return false;
        };
        if self.done {
            return false;
        }
        self.session_at = limit.map(|d| (granted + d).max(now));
        true
    }

    fn set_idle_timeout(&mut self, now: Instant, limit: Option<Duration>) -> bool {
        if self.granted_at.is_none() || self.done {
            return false;
        }
        self.idle_for = limit;
        // Before IPCP is up the timer starts when it comes up.
        if let Some(last) = self.last_data {
            self.idle_at = limit.map(|d| (last + d).max(now));
        }
        true
    }

    fn close(&mut self, now: Instant, reason: DownReason) {
        if self.done {
            return;
        }
        self.reason.get_or_insert(reason);
        let text = self.reason.unwrap_or(reason).message();
        let s = self.lcp.fsm.close(now, text, &mut self.tx);
        if let Some(s) = s {
            self.lcp_signal(now, s);
        }
        if !self.done {
            self.phase = Phase::Terminate;
            if matches!(self.lcp.fsm.state(), State::Closed | State::Initial) {
                self.finish(self.reason.unwrap_or(reason));
            }
        }
    }

    fn lower_down(&mut self, now: Instant) {
        if self.done {
            return;
        }
        let _ = now;
        self.reason.get_or_insert(DownReason::LostCarrier);
        if let Some(s) = self.lcp.fsm.down() {
            self.lcp_signal(now, s);
        }
        self.finish(self.reason.unwrap_or(DownReason::LostCarrier));
    }

    fn finish(&mut self, reason: DownReason) {
        if self.done {
            return;
        }
        self.done = true;
        self.phase = Phase::Dead;
        self.lcp.stop_echo();
        if let Some(a) = self.auth.as_mut() {
            a.stop();
        }
        self.start_at = None;
        self.session_at = None;
        self.idle_at = None;
        self.ip_out.clear();
        tracing::debug!(reason = %reason, "link down");
        self.events.push_back(LinkEvent::Down(reason));
    }
}
