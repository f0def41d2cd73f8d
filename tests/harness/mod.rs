//! A two-endpoint harness: a server [`Link`] and a peer over an in-memory wire, on a virtual
//! clock.
//!
//! The clock is a base [`Instant`] plus an offset; it only moves when both endpoints and the
//! wire are quiet, and then straight to the earliest deadline (`poll_timeout` of either
//! side, or a delayed frame). Nothing sleeps.
//!
//! The wire splits each side's output into frames. When a [`Rule`] is installed, or logging
//! or latency is on, every frame is decoded, logged ([`Sent`]) and given a [`Fate`]: it may
//! be dropped, duplicated, corrupted or delayed. Without them, bytes pass straight through
//! (the benchmark's fast path).
//!
//! The peer is a [`Client`], a [`Script`] (raw frames in, raw frames out, for hostile
//! cases), a [`Peer::Mirror`] (a looped-back line) or [`Peer::Silent`].
//!
//! Shared by `tests/pair.rs`, `tests/garbage.rs` and `benches/negotiation.rs`.

#![allow(dead_code)]

use nasd::proto::auth::{AuthRequest, AuthResult, Grant};
use nasd::proto::client::{Client, ClientConfig, ClientEvent};
use nasd::proto::hdlc::{self, Decoder, Encoder, FLAG};
use nasd::proto::ipcp::IpcpConfig;
use nasd::proto::lcp::{AuthProto, LcpConfig};
use nasd::proto::link::{DownReason, Link, LinkConfig, LinkEvent, SessionInfo};
use nasd::proto::wire::cp;
use nasd::proto::wire::protocol;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The server's address in the default configuration.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The address granted to the peer by the default authentication policy.
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The DNS servers of the default configuration.
pub const DNS: [Option<Ipv4Addr>; 2] = [
    Some(Ipv4Addr::new(10, 0, 0, 53)),
    Some(Ipv4Addr::new(10, 0, 0, 54)),
];
/// The user the default authentication policy knows, and its secret.
pub const USER: &str = "alice";
/// See [`USER`].
pub const SECRET: &[u8] = b"secret";

/// The server configuration used by most tests: authentication as given, local address,
/// DNS servers.
pub fn server_config(auth: &[AuthProto]) -> LinkConfig {
    LinkConfig {
        lcp: LcpConfig {
            auth: auth.to_vec(),
            ..LcpConfig::default()
        },
        ipcp: IpcpConfig {
            local_ip: SERVER_IP,
            dns: DNS,
            ..IpcpConfig::default()
        },
        ..LinkConfig::default()
    }
}

/// A client with the known user's credentials.
pub fn client_config() -> ClientConfig {
    ClientConfig::with_credentials(USER, SECRET)
}

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Server to peer.
    ToPeer,
    /// Peer to server.
    ToServer,
}

/// What the wire does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered after the wire latency.
    Deliver,
    /// Lost.
    Drop,
    /// Delivered twice, back to back.
    Duplicate,
    /// Delivered with one octet changed (the FCS catches it).
    Corrupt,
    /// Delivered this much later than usual (frames may overtake it).
    Delay(Duration),
}

/// A frame offered to a [`Rule`].
#[derive(Debug, Clone, Copy)]
pub struct FrameView<'a> {
    /// Time since the start.
    pub at: Duration,
    /// Direction.
    pub dir: Dir,
    /// Number of earlier frames in this direction.
    pub index: usize,
    /// Protocol (0 if the frame did not decode).
    pub proto: u16,
    /// Information field.
    pub info: &'a [u8],
}

impl FrameView<'_> {
    /// The control-packet code, for control protocols.
    pub fn code(&self) -> Option<u8> {
        cp_code(self.proto, self.info)
    }
}

fn cp_code(proto: u16, info: &[u8]) -> Option<u8> {
    (proto >= 0x8000).then(|| info.first().copied()).flatten()
}

/// Decides the fate of each frame.
pub type Rule = Box<dyn FnMut(&FrameView<'_>) -> Fate>;

/// A frame as it went onto the wire (logged when a rule is installed or logging is on).
#[derive(Debug, Clone)]
pub struct Sent {
    /// Time since the start.
    pub at: Duration,
    /// Direction.
    pub dir: Dir,
    /// Number of earlier frames in this direction.
    pub index: usize,
    /// Protocol (0 if the frame did not decode).
    pub proto: u16,
    /// Information field.
    pub info: Vec<u8>,
    /// The frame as encoded, flags included.
    pub raw: Vec<u8>,
    /// What the wire did with it.
    pub fate: Fate,
}

impl Sent {
    /// The control-packet code, for control protocols.
    pub fn code(&self) -> Option<u8> {
        cp_code(self.proto, &self.info)
    }
    /// The control-packet identifier.
    pub fn id(&self) -> u8 {
        self.info.get(1).copied().unwrap_or(0)
    }
    /// The control-packet data (after code, identifier and length).
    pub fn data(&self) -> &[u8] {
        cp::Packet::parse(&self.info).map(|p| p.data).unwrap_or(&[])
    }
    /// True for a control packet of `proto` with `code`.
    pub fn is(&self, proto: u16, code: u8) -> bool {
        self.proto == proto && self.code() == Some(code)
    }
}

/// A place for a scripted peer to write frames.
pub struct Ctx<'a> {
    /// Time since the start.
    pub at: Duration,
    /// The encoder the script sends with (ACCM all, no compression, unless changed).
    pub enc: &'a mut Encoder,
    out: &'a mut Vec<u8>,
}

impl Ctx<'_> {
    /// Sends a frame.
    pub fn send(&mut self, proto: u16, info: &[u8]) {
        self.enc.encode(proto, info, self.out);
    }
    /// Sends a control packet.
    pub fn send_cp(&mut self, proto: u16, code: u8, id: u8, data: &[u8]) {
        let mut p = Vec::with_capacity(data.len() + 4);
        cp::emit(code, id, data, &mut p);
        self.send(proto, &p);
    }
}

/// The behaviour of a scripted peer.
pub trait Behaviour {
    /// The line came up.
    fn start(&mut self, _ctx: &mut Ctx<'_>) {}
    /// A frame arrived.
    fn frame(&mut self, ctx: &mut Ctx<'_>, proto: u16, info: &[u8]);
}

/// A scripted peer: decodes frames, hands them to its behaviour, sends what it writes.
pub struct Script {
    dec: Decoder,
    enc: Encoder,
    out: Vec<u8>,
    behaviour: Box<dyn Behaviour>,
    /// Frames received: time, protocol, information.
    pub received: Vec<(Duration, u16, Vec<u8>)>,
}

impl Script {
    /// A script with the given behaviour.
    pub fn new(b: impl Behaviour + 'static) -> Self {
        let mut dec = Decoder::new(70_000);
        dec.set_accm(0);
        Self {
            dec,
            enc: Encoder::new(),
            out: Vec::new(),
            behaviour: Box::new(b),
            received: Vec::new(),
        }
    }

    fn start(&mut self, at: Duration) {
        let mut ctx = Ctx {
            at,
            enc: &mut self.enc,
            out: &mut self.out,
        };
        self.behaviour.start(&mut ctx);
    }

    fn input(&mut self, at: Duration, mut data: &[u8]) {
        while !data.is_empty() {
            let (n, f) = self.dec.decode(data);
            if let Some(f) = f
                && let Ok((proto, info)) = hdlc::parse_header(f)
            {
                self.received.push((at, proto, info.to_vec()));
                let mut ctx = Ctx {
                    at,
                    enc: &mut self.enc,
                    out: &mut self.out,
                };
                self.behaviour.frame(&mut ctx, proto, info);
            }
            if n == 0 {
                break;
            }
            data = &data[n..];
        }
    }

    /// Sends a frame now (the harness delivers it at the next step).
    pub fn send(&mut self, proto: u16, info: &[u8]) {
        self.enc.encode(proto, info, &mut self.out);
    }

    /// Sends a control packet now.
    pub fn send_cp(&mut self, proto: u16, code: u8, id: u8, data: &[u8]) {
        let mut ctx = Ctx {
            at: Duration::ZERO,
            enc: &mut self.enc,
            out: &mut self.out,
        };
        ctx.send_cp(proto, code, id, data);
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
}

/// A minimal well-behaved peer to build scripts on: acknowledges every LCP and IPCP
/// request of the server, asks for a Magic-Number (and an MRU if set) itself, asks for
/// IPCP address 0.0.0.0 and adopts Naks, answers Echo-Requests and Terminate-Requests. It
/// does not authenticate: use it with a server that requires none.
#[derive(Debug, Clone)]
pub struct Basic {
    /// Our Magic-Number.
    pub magic: u32,
    /// The MRU we ask for.
    pub mru: Option<u16>,
    /// Send our LCP request when the line comes up.
    pub speak_first: bool,
    /// Ask for an IPCP address when the server starts IPCP.
    pub ipcp: bool,
    /// The server's Magic-Number, from its acked request.
    pub server_magic: Option<u32>,
    /// The server acked our LCP request.
    pub lcp_acked: bool,
    /// Our IPCP address as last asked for.
    pub ip: Ipv4Addr,
    /// The server acked our IPCP request.
    pub ipcp_acked: bool,
    /// Identifier of our last LCP request.
    pub lcp_id: u8,
    /// Identifier of our last IPCP request.
    pub ipcp_id: u8,
    /// Our IPCP request went out.
    pub ipcp_sent: bool,
}

impl Default for Basic {
    fn default() -> Self {
        Self {
            magic: 0x5eed_1234,
            mru: None,
            speak_first: true,
            ipcp: true,
            server_magic: None,
            lcp_acked: false,
            ip: Ipv4Addr::UNSPECIFIED,
            ipcp_acked: false,
            lcp_id: 0,
            ipcp_id: 0,
            ipcp_sent: false,
        }
    }
}

impl Basic {
    /// Our LCP request's options.
    pub fn lcp_request(&self) -> Vec<u8> {
        let mut v = Vec::new();
        if let Some(m) = self.mru {
            cp::push_option(&mut v, 1, &m.to_be_bytes());
        }
        cp::push_option(&mut v, 5, &self.magic.to_be_bytes());
        v
    }

    /// Sends our LCP Configure-Request.
    pub fn send_lcp_request(&mut self, ctx: &mut Ctx<'_>) {
        self.lcp_id = self.lcp_id.wrapping_add(1);
        ctx.send_cp(protocol::LCP, 1, self.lcp_id, &self.lcp_request());
    }

    fn send_ipcp_request(&mut self, ctx: &mut Ctx<'_>) {
        self.ipcp_id = self.ipcp_id.wrapping_add(1);
        let mut v = Vec::new();
        cp::push_option(&mut v, 3, &self.ip.octets());
        ctx.send_cp(protocol::IPCP, 1, self.ipcp_id, &v);
        self.ipcp_sent = true;
    }

    /// Handles a frame the default way.
    pub fn handle(&mut self, ctx: &mut Ctx<'_>, proto: u16, info: &[u8]) {
        let Ok(p) = cp::Packet::parse(info) else {
            return;
        };
        match (proto, p.code) {
            (protocol::LCP, 1) => {
                for o in p.options().flatten() {
                    if o.kind == 5 {
                        self.server_magic = o.u32();
                    }
                }
                ctx.send_cp(protocol::LCP, 2, p.id, p.data);
            }
            (protocol::LCP, 2) if p.id == self.lcp_id => self.lcp_acked = true,
            (protocol::LCP, 5) => ctx.send_cp(protocol::LCP, 6, p.id, &[]),
            (protocol::LCP, 9) => {
                let mut d = self.magic.to_be_bytes().to_vec();
                d.extend_from_slice(p.data.get(4..).unwrap_or(&[]));
                ctx.send_cp(protocol::LCP, 10, p.id, &d);
            }
            (protocol::IPCP, 1) => {
                ctx.send_cp(protocol::IPCP, 2, p.id, p.data);
                if self.ipcp && !self.ipcp_sent {
                    self.send_ipcp_request(ctx);
                }
            }
            (protocol::IPCP, 2) if p.id == self.ipcp_id => self.ipcp_acked = true,
            (protocol::IPCP, 3) if p.id == self.ipcp_id => {
                for o in p.options().flatten() {
                    if let (3, Some(v)) = (o.kind, o.u32()) {
                        self.ip = Ipv4Addr::from(v);
                    }
                }
                self.send_ipcp_request(ctx);
            }
            (protocol::IPCP, 5) => ctx.send_cp(protocol::IPCP, 6, p.id, &[]),
            _ => {}
        }
    }
}

/// A behaviour from a closure that sees each frame first, with a [`Basic`] to fall back on:
/// it returns true when it handled the frame itself.
pub struct Scripted<F> {
    /// The fallback.
    pub basic: Basic,
    f: F,
}

impl<F> Behaviour for Scripted<F>
where
    F: FnMut(&mut Basic, &mut Ctx<'_>, u16, &[u8]) -> bool,
{
    fn start(&mut self, ctx: &mut Ctx<'_>) {
        if self.basic.speak_first {
            self.basic.send_lcp_request(ctx);
        }
    }

    fn frame(&mut self, ctx: &mut Ctx<'_>, proto: u16, info: &[u8]) {
        if !(self.f)(&mut self.basic, ctx, proto, info) {
            self.basic.handle(ctx, proto, info);
        }
    }
}

/// A scripted peer on top of [`Basic`] (see [`Scripted`]).
pub fn scripted(
    basic: Basic,
    f: impl FnMut(&mut Basic, &mut Ctx<'_>, u16, &[u8]) -> bool + 'static,
) -> Peer {
    Peer::Script(Box::new(Script::new(Scripted { basic, f })))
}

/// The plain [`Basic`] peer.
pub fn basic_peer() -> Peer {
    scripted(Basic::default(), |_, _, _, _| false)
}

/// The other end of the line.
pub enum Peer {
    /// Our own PPP client.
    Client(Box<Client>),
    /// A scripted peer.
    Script(Box<Script>),
    /// A looped-back line: whatever the server sends comes back to it.
    Mirror(Vec<u8>),
    /// Nobody there: input vanishes, nothing is said.
    Silent,
}

impl Peer {
    /// A client with the given configuration.
    pub fn client(config: ClientConfig, seed: u8) -> Self {
        Self::Client(Box::new(Client::new(config, [seed; 32])))
    }

    fn output(&self) -> &[u8] {
        match self {
            Self::Client(c) => c.serial_output(),
            Self::Script(s) => &s.out,
            Self::Mirror(b) => b,
            Self::Silent => &[],
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            Self::Client(c) => c.consume_serial_output(n),
            Self::Script(s) => {
                s.out.drain(..n);
            }
            Self::Mirror(b) => {
                b.drain(..n);
            }
            Self::Silent => {}
        }
    }

    fn input(&mut self, now: Instant, at: Duration, data: &[u8]) {
        match self {
            Self::Client(c) => c.handle_serial_input(now, data),
            Self::Script(s) => s.input(at, data),
            Self::Mirror(b) => b.extend_from_slice(data),
            Self::Silent => {}
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Client(c) => c.poll_timeout(),
            _ => None,
        }
    }

    fn timeout(&mut self, now: Instant) {
        if let Self::Client(c) = self {
            c.handle_timeout(now);
        }
    }
}

/// How the harness answers [`LinkEvent::Authenticate`].
pub enum AuthPolicy {
    /// Keep the requests in [`Pair::pending_auth`]; the test answers.
    Manual,
    /// Answer at once.
    Auto(Box<dyn FnMut(&AuthRequest) -> AuthResult>),
}

impl AuthPolicy {
    /// Knows [`USER`] with [`SECRET`] (checked with `verify_secret`), grants [`PEER_IP`];
    /// accepts a peer without authentication too.
    pub fn default_users() -> Self {
        Self::granting(Grant::new(PEER_IP))
    }

    /// Like [`AuthPolicy::default_users`], with the given grant.
    pub fn granting(grant: Grant) -> Self {
        Self::Auto(Box::new(move |r: &AuthRequest| {
            let known = r.proto().is_none() || (r.user == USER && r.verify_secret(SECRET));
            if known {
                AuthResult::Accept(grant.clone())
            } else {
                AuthResult::Reject {
                    message: "Access denied".into(),
                }
            }
        }))
    }
}

/// The two endpoints, the wire and the clock.
pub struct Pair {
    /// Time zero.
    pub base: Instant,
    /// The virtual now.
    pub now: Instant,
    /// The server.
    pub server: Link,
    /// The peer.
    pub peer: Peer,
    /// The wire's rule, if any.
    pub rule: Option<Rule>,
    /// How long each frame travels.
    pub latency: Duration,
    /// Log every frame in [`Pair::log`] (on by default; off in the benchmark).
    pub logging: bool,
    /// Frames sent, in order.
    pub log: Vec<Sent>,
    /// The server's events.
    pub server_events: Vec<(Duration, LinkEvent)>,
    /// The client's events.
    pub peer_events: Vec<(Duration, ClientEvent)>,
    /// How authentication is answered.
    pub auth: AuthPolicy,
    /// Requests kept under [`AuthPolicy::Manual`].
    pub pending_auth: Vec<AuthRequest>,
    /// IP packets the server handed to its host.
    pub server_ip: Vec<(Duration, Vec<u8>)>,
    /// IP packets the client handed to its host.
    pub peer_ip: Vec<(Duration, Vec<u8>)>,
    in_flight: VecDeque<(Instant, Dir, Vec<u8>)>,
    /// Decoders for the log, made on first use (the fast path never needs them).
    log_dec: Option<Box<[Decoder; 2]>>,
    counts: [usize; 2],
    scratch: Vec<u8>,
    /// Steps taken, to catch livelocks.
    pub steps: u64,
}

/// Steps allowed without the clock moving before the harness calls it a livelock.
const LIVELOCK: u32 = 100_000;

impl Pair {
    /// A pair with the default authentication policy, logging on. Nothing is started.
    pub fn new(server: LinkConfig, peer: Peer) -> Self {
        Self::with_base(Instant::now(), server, peer)
    }

    /// Like [`Pair::new`], with time zero given.
    pub fn with_base(base: Instant, server: LinkConfig, peer: Peer) -> Self {
        Self {
            base,
            now: base,
            server: Link::new(server, [0x5a; 32]),
            peer,
            rule: None,
            latency: Duration::ZERO,
            logging: true,
            log: Vec::new(),
            server_events: Vec::new(),
            peer_events: Vec::new(),
            auth: AuthPolicy::default_users(),
            pending_auth: Vec::new(),
            server_ip: Vec::new(),
            peer_ip: Vec::new(),
            in_flight: VecDeque::new(),
            log_dec: None,
            counts: [0, 0],
            scratch: Vec::new(),
            steps: 0,
        }
    }

    /// Installs a rule for the wire.
    pub fn with_rule(mut self, rule: impl FnMut(&FrameView<'_>) -> Fate + 'static) -> Self {
        self.rule = Some(Box::new(rule));
        self
    }

    /// Takes the server out of the harness (to feed it directly).
    pub fn into_server(self) -> Link {
        self.server
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Starts the server, then the peer.
    pub fn start(&mut self) {
        self.server.start(self.now);
        self.start_peer();
    }

    /// Starts only the peer.
    pub fn start_peer(&mut self) {
        let at = self.elapsed();
        match &mut self.peer {
            Peer::Client(c) => c.start(self.now),
            Peer::Script(s) => s.start(at),
            _ => {}
        }
    }

    /// The client peer.
    pub fn client(&mut self) -> &mut Client {
        match &mut self.peer {
            Peer::Client(c) => c,
            _ => panic!("the peer is not a client"),
        }
    }

    /// The scripted peer.
    pub fn script(&mut self) -> &mut Script {
        match &mut self.peer {
            Peer::Script(s) => s,
            _ => panic!("the peer is not a script"),
        }
    }

    fn fast(&self) -> bool {
        self.rule.is_none() && !self.logging && self.latency.is_zero()
    }

    /// Moves output onto the wire, delivers what is due, handles events. Returns whether
    /// anything happened.
    pub fn step(&mut self) -> bool {
        self.steps += 1;
        let mut busy = false;
        if self.fast() && self.in_flight.is_empty() {
            let n = self.server.serial_output().len();
            if n > 0 {
                self.peer
                    .input(self.now, self.now - self.base, self.server.serial_output());
                self.server.consume_serial_output(n);
                busy = true;
            }
            let n = self.peer.output().len();
            if n > 0 {
                self.scratch.clear();
                self.scratch.extend_from_slice(self.peer.output());
                self.peer.consume(n);
                self.server.handle_serial_input(self.now, &self.scratch);
                busy = true;
            }
        } else {
            busy |= self.pump(Dir::ToPeer);
            busy |= self.pump(Dir::ToServer);
            busy |= self.deliver_due();
        }
        busy |= self.drain_events();
        busy
    }

    fn pump(&mut self, dir: Dir) -> bool {
        let out = match dir {
            Dir::ToPeer => self.server.serial_output(),
            Dir::ToServer => self.peer.output(),
        };
        if out.is_empty() {
            return false;
        }
        let bytes = out.to_vec();
        match dir {
            Dir::ToPeer => self.server.consume_serial_output(bytes.len()),
            Dir::ToServer => self.peer.consume(bytes.len()),
        }
        let at = self.elapsed();
        for seg in bytes.split(|&b| b == FLAG).filter(|s| !s.is_empty()) {
            let mut raw = Vec::with_capacity(seg.len() + 2);
            raw.push(FLAG);
            raw.extend_from_slice(seg);
            raw.push(FLAG);
            let d = dir as usize;
            let decs = self.log_dec.get_or_insert_with(|| {
                let dec = || {
                    let mut d = Decoder::new(70_000);
                    d.set_accm(0);
                    d
                };
                Box::new([dec(), dec()])
            });
            let (proto, info) = match decs[d].decode(&raw) {
                (_, Some(f)) => match hdlc::parse_header(f) {
                    Ok((p, i)) => (p, i.to_vec()),
                    Err(_) => (0, f.to_vec()),
                },
                _ => (0, Vec::new()),
            };
            let index = self.counts[d];
            self.counts[d] += 1;
            let view = FrameView {
                at,
                dir,
                index,
                proto,
                info: &info,
            };
            let fate = self.rule.as_mut().map_or(Fate::Deliver, |r| r(&view));
            let when = self.now + self.latency;
            match fate {
                Fate::Deliver => self.enqueue(when, dir, raw.clone()),
                Fate::Drop => {}
                Fate::Duplicate => {
                    self.enqueue(when, dir, raw.clone());
                    self.enqueue(when, dir, raw.clone());
                }
                Fate::Corrupt => {
                    let mut bad = raw.clone();
                    let i = bad.len() / 2;
                    bad[i] = if bad[i] == 0x55 { 0x56 } else { 0x55 };
                    self.enqueue(when, dir, bad);
                }
                Fate::Delay(d) => self.enqueue(when + d, dir, raw.clone()),
            }
            if self.logging {
                self.log.push(Sent {
                    at,
                    dir,
                    index,
                    proto,
                    info,
                    raw,
                    fate,
                });
            }
        }
        true
    }

    fn enqueue(&mut self, at: Instant, dir: Dir, bytes: Vec<u8>) {
        let i = self.in_flight.partition_point(|(t, _, _)| *t <= at);
        self.in_flight.insert(i, (at, dir, bytes));
    }

    fn deliver_due(&mut self) -> bool {
        let mut busy = false;
        while self
            .in_flight
            .front()
            .is_some_and(|(t, _, _)| *t <= self.now)
        {
            let Some((_, dir, bytes)) = self.in_flight.pop_front() else {
                break;
            };
            match dir {
                Dir::ToPeer => self.peer.input(self.now, self.now - self.base, &bytes),
                Dir::ToServer => self.server.handle_serial_input(self.now, &bytes),
            }
            busy = true;
        }
        busy
    }

    fn drain_events(&mut self) -> bool {
        let mut busy = false;
        let at = self.elapsed();
        while let Some(p) = self.server.poll_ip_output() {
            self.server_ip.push((at, p));
            busy = true;
        }
        while let Some(e) = self.server.poll_event() {
            busy = true;
            if let LinkEvent::Authenticate(r) = &e {
                match &mut self.auth {
                    AuthPolicy::Manual => self.pending_auth.push(r.clone()),
                    AuthPolicy::Auto(f) => {
                        let res = f(r);
                        self.server.handle_auth_result(self.now, res);
                    }
                }
            }
            if self.logging {
                self.server_events.push((at, e));
            } else if !matches!(e, LinkEvent::Authenticate(_)) {
                // Keep the essentials even in fast mode.
                self.server_events.push((at, e));
            }
        }
        if let Peer::Client(c) = &mut self.peer {
            while let Some(p) = c.poll_ip_output() {
                self.peer_ip.push((at, p));
                busy = true;
            }
            while let Some(e) = c.poll_event() {
                self.peer_events.push((at, e));
                busy = true;
            }
        }
        busy
    }

    /// Steps until nothing happens without the clock moving.
    pub fn settle(&mut self) {
        let mut n = 0;
        while self.step() {
            n += 1;
            assert!(n < LIVELOCK, "livelock at {:?}", self.elapsed());
        }
    }

    /// The earliest deadline of either side or the wire.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.server.poll_timeout(),
            self.peer.deadline(),
            self.in_flight.front().map(|f| f.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn fire_timers(&mut self) {
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        if self.peer.deadline().is_some_and(|t| t <= self.now) {
            self.peer.timeout(self.now);
        }
    }

    /// Runs until `cond` holds (checked whenever the pair is quiet) or the clock would pass
    /// `limit` since the start, or nothing is left to happen. Returns whether `cond` held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Pair) -> bool) -> bool {
        let mut still = 0;
        loop {
            self.settle();
            if cond(self) {
                return true;
            }
            let Some(t) = self.next_deadline() else {
                return false;
            };
            if t > self.base + limit {
                return false;
            }
            if t <= self.now {
                still += 1;
                assert!(
                    still < LIVELOCK,
                    "a deadline that never clears at {:?}",
                    self.elapsed()
                );
            } else {
                still = 0;
                self.now = t;
            }
            self.fire_timers();
        }
    }

    /// Runs until `d` from now has passed (or nothing is left to happen before).
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let limit = end - self.base;
        self.run_until(limit, |_| false);
        self.now = self.now.max(end);
        self.settle();
    }

    /// Runs until both ends are up (server Up event and client Up event, or the server Up
    /// event and a script that has IPCP acked).
    pub fn run_until_up(&mut self, limit: Duration) -> bool {
        self.run_until(limit, |p| p.both_up())
    }

    /// True when the server has reported Up and the peer is up.
    pub fn both_up(&self) -> bool {
        let server = self.server_up().is_some();
        let peer = match &self.peer {
            Peer::Client(c) => c.is_up(),
            _ => true,
        };
        server && peer
    }

    /// True when the server is done and the peer (if a client) is too.
    pub fn both_done(&self) -> bool {
        let peer = match &self.peer {
            Peer::Client(c) => c.is_done(),
            _ => true,
        };
        self.server.is_done() && peer
    }

    /// Runs until the server's link is done.
    pub fn run_until_server_down(&mut self, limit: Duration) -> bool {
        self.run_until(limit, |p| p.server.is_done())
    }

    /// The server's Up session and when it came.
    pub fn server_up(&self) -> Option<&SessionInfo> {
        self.server_events.iter().find_map(|(_, e)| match e {
            LinkEvent::Up(s) => Some(s),
            _ => None,
        })
    }

    /// When the server came up.
    pub fn server_up_at(&self) -> Option<Duration> {
        self.server_events
            .iter()
            .find(|(_, e)| matches!(e, LinkEvent::Up(_)))
            .map(|(t, _)| *t)
    }

    /// The server's Down reason and when it came.
    pub fn server_down(&self) -> Option<(Duration, DownReason)> {
        self.server_events.iter().find_map(|(t, e)| match e {
            LinkEvent::Down(r) => Some((*t, *r)),
            _ => None,
        })
    }

    /// The client's Down reason and when it came.
    pub fn peer_down(&self) -> Option<(Duration, DownReason)> {
        self.peer_events.iter().find_map(|(t, e)| match e {
            ClientEvent::Down(r) => Some((*t, *r)),
            _ => None,
        })
    }

    /// Frames logged in `dir` of `proto` with `code` (any code if `None`).
    pub fn frames(&self, dir: Dir, proto: u16, code: Option<u8>) -> Vec<&Sent> {
        self.log
            .iter()
            .filter(|s| s.dir == dir && s.proto == proto && (code.is_none() || s.code() == code))
            .collect()
    }

    /// Sends an IPv4 packet from the client side's host.
    pub fn client_send_ip(&mut self, packet: &[u8]) -> bool {
        let now = self.now;
        self.client().send_ip_packet(now, packet)
    }

    /// Sends an IPv4 packet from the server side's host.
    pub fn server_send_ip(&mut self, packet: &[u8]) -> bool {
        self.server.handle_ip_packet(self.now, packet)
    }
}

/// An ICMP echo request or reply (type 8 / 0) from `src` to `dst`, as an IPv4 packet.
pub fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, reply: bool, seq: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let ck = checksum(&p[..20]);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    p[20] = if reply { 0 } else { 8 };
    p[24..26].copy_from_slice(&0x4e41u16.to_be_bytes());
    p[26..28].copy_from_slice(&seq.to_be_bytes());
    p[28..].copy_from_slice(payload);
    let ck = checksum(&p[20..]);
    p[22..24].copy_from_slice(&ck.to_be_bytes());
    p
}

/// The Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A small deterministic generator for tests (xorshift64*).
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
