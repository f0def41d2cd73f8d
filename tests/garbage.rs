//! Property tests: whatever arrives on the line, a live [`Link`] never panics, and its
//! memory stays bounded.
//!
//! A counting global allocator keeps the live heap bytes of each thread, so a test can
//! check that feeding thousands of frames to a link does not grow it.

// The counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

mod harness;

use harness::*;
use nasd::proto::auth::{AuthResult, Grant};
use nasd::proto::client::{Client, ClientEvent};
use nasd::proto::hdlc::{ACCM_ALL, Encoder};
use nasd::proto::lcp::AuthProto;
use nasd::proto::link::{DownReason, Link, LinkEvent, Phase};
use nasd::proto::wire::cp;
use nasd::proto::wire::protocol::{CCP, CHAP, IPCP, IPV4, IPV6CP, LCP, PAP};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

// ---- a per-thread heap counter ------------------------------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn count(n: i64) {
    let _ = LIVE.try_with(|c| c.set(c.get() + n));
}

/// Live heap bytes allocated by this thread (minus those it freed).
fn live() -> i64 {
    LIVE.with(|c| c.get())
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            count(l.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            count(l.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        count(-(l.size() as i64));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            count(new as i64 - l.size() as i64);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

// ---- links in every phase -----------------------------------------------------------------

/// Where a link is when the garbage starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Created, not started.
    Fresh,
    /// LCP negotiating with nobody.
    Establish,
    /// PAP request received, verdict pending.
    Authenticate,
    /// CHAP challenge sent, no response yet.
    Challenge,
    /// Up, IPCP open.
    Network,
    /// Closing: Terminate-Request sent, no answer.
    Terminate,
    /// Finished.
    Dead,
}

const PHASES: [At; 7] = [
    At::Fresh,
    At::Establish,
    At::Authenticate,
    At::Challenge,
    At::Network,
    At::Terminate,
    At::Dead,
];

/// A link driven to `at` by a real client (then cut off); returns it with the current time.
fn link_at(at: At) -> (Link, Instant) {
    let auth = if at == At::Challenge {
        AuthProto::ChapMd5
    } else {
        AuthProto::Pap
    };
    let mut p = Pair::new(server_config(&[auth]), Peer::client(client_config(), 1));
    match at {
        At::Fresh => {}
        At::Establish => {
            p.peer = Peer::Silent;
            p.start();
            p.run_for(Duration::from_secs(1));
        }
        At::Authenticate => {
            p.auth = AuthPolicy::Manual;
            p.start();
            assert!(p.run_until(Duration::from_secs(10), |p| !p.pending_auth.is_empty()));
        }
        At::Challenge => {
            // The client never sees the challenge.
            p = p.with_rule(|f| {
                if f.proto == CHAP {
                    Fate::Drop
                } else {
                    Fate::Deliver
                }
            });
            p.start();
            assert!(p.run_until(Duration::from_secs(10), |p| p.server.phase()
                == Phase::Authenticate));
        }
        At::Network | At::Terminate | At::Dead => {
            p.start();
            assert!(p.run_until_up(Duration::from_secs(10)));
            if at == At::Terminate {
                p.peer = Peer::Silent;
                let now = p.now;
                p.server.close(now, DownReason::Admin);
                p.settle();
                assert_eq!(p.server.phase(), Phase::Terminate);
            }
            if at == At::Dead {
                let now = p.now;
                p.server.lower_down(now);
            }
        }
    }
    let now = p.now;
    let mut link = p.into_server();
    drain(&mut link);
    (link, now)
}

/// What a drain found.
#[derive(Debug, Default)]
struct Drained {
    bytes: usize,
    packets: usize,
    events: Vec<LinkEvent>,
}

/// Takes everything the link has for the driver.
fn drain(link: &mut Link) -> Drained {
    let mut d = Drained {
        bytes: link.serial_output().len(),
        ..Drained::default()
    };
    link.consume_serial_output(d.bytes);
    while link.poll_ip_output().is_some() {
        d.packets += 1;
    }
    while let Some(e) = link.poll_event() {
        d.events.push(e);
    }
    d
}

/// The largest output one input may cause: a few replies per frame, each at most the MRU
/// (1500), escaped (x2), with header, FCS and flags.
fn output_bound(frames: usize) -> usize {
    (frames + 2) * 4 * (2 * 1508 + 8)
}

/// Checks the invariants after one input: output bounded and drained, events sane.
struct Watch {
    down: bool,
    limit: usize,
}

impl Watch {
    fn new() -> Self {
        Self {
            down: false,
            limit: 64,
        }
    }

    fn check(&mut self, link: &mut Link, frames_in: usize) -> Result<(), TestCaseError> {
        let d = drain(link);
        prop_assert!(
            d.bytes <= output_bound(frames_in),
            "{} bytes for {} frames",
            d.bytes,
            frames_in
        );
        prop_assert!(d.packets <= self.limit);
        for e in &d.events {
            prop_assert!(!self.down, "event after Down: {:?}", e);
            if matches!(e, LinkEvent::Down(_)) {
                self.down = true;
            }
        }
        if link.is_done() {
            prop_assert!(self.down || d.events.is_empty());
            prop_assert_eq!(link.poll_timeout(), None);
            prop_assert_eq!(link.phase(), Phase::Dead);
        }
        // An authentication request gets an answer, as a driver would give it.
        if d.events
            .iter()
            .any(|e| matches!(e, LinkEvent::Authenticate(_)))
        {
            link.handle_auth_result(Instant::now(), AuthResult::Accept(Grant::new(PEER_IP)));
        }
        prop_assert!(
            link.serial_output().is_empty()
                || d.events
                    .iter()
                    .any(|e| matches!(e, LinkEvent::Authenticate(_)))
        );
        Ok(())
    }
}

/// Runs the timers due by `now`.
fn tick(link: &mut Link, now: Instant) {
    if link.poll_timeout().is_some_and(|t| t <= now) {
        link.handle_timeout(now);
    }
}

// ---- frames that look valid -----------------------------------------------------------------

/// A PPP frame: protocol and information field.
fn frame_strategy() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let proto = prop_oneof![
        4 => Just(LCP),
        2 => Just(PAP),
        2 => Just(CHAP),
        3 => Just(IPCP),
        3 => Just(IPV4),
        1 => Just(IPV6CP),
        1 => Just(CCP),
        1 => any::<u16>().prop_map(|p| (p | 1) & !0x0100),
    ];
    let option = (any::<u8>(), prop::collection::vec(any::<u8>(), 0..8));
    let control = (
        prop_oneof![8 => 1u8..=13, 1 => any::<u8>()],
        any::<u8>(),
        prop::collection::vec(option, 0..6),
        prop_oneof![6 => Just(None), 1 => any::<u16>().prop_map(Some)],
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(|(code, id, opts, bad_len, pad)| {
            let mut data = Vec::new();
            for (k, d) in opts {
                cp::push_option(&mut data, k, &d);
            }
            let mut p = Vec::new();
            cp::emit(code, id, &data, &mut p);
            if let Some(l) = bad_len {
                p[2..4].copy_from_slice(&l.to_be_bytes());
            }
            p.extend_from_slice(&pad);
            p
        });
    let info = prop_oneof![
        3 => control,
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..1600),
    ];
    (proto, info)
}

fn encoder_strategy() -> impl Strategy<Value = Encoder> {
    (
        prop_oneof![Just(0u32), Just(ACCM_ALL), any::<u32>()],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(accm, acfc, pfc)| {
            let mut e = Encoder::new();
            e.set_accm(accm);
            e.set_acfc(acfc);
            e.set_pfc(pfc);
            e
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_in_every_phase(
        phase in 0usize..PHASES.len(),
        chunks in prop::collection::vec(
            prop::collection::vec(prop_oneof![6 => any::<u8>(), 1 => Just(0x7eu8), 1 => Just(0x7du8)], 0..600),
            1..20),
        steps in prop::collection::vec(0u64..4000, 20),
    ) {
        let (mut link, mut now) = link_at(PHASES[phase]);
        let mut w = Watch::new();
        for (chunk, ms) in chunks.iter().zip(steps) {
            link.handle_serial_input(now, chunk);
            let flags = chunk.iter().filter(|&&b| b == 0x7e).count();
            w.check(&mut link, flags + 1)?;
            now += Duration::from_millis(ms);
            tick(&mut link, now);
            w.check(&mut link, 1)?;
        }
    }

    #[test]
    fn valid_looking_frames_in_every_phase(
        phase in 0usize..PHASES.len(),
        frames in prop::collection::vec((frame_strategy(), 0u64..3000), 1..60),
        enc in encoder_strategy(),
        split in 1usize..64,
    ) {
        let (mut link, mut now) = link_at(PHASES[phase]);
        let before = link.stats();
        let mut w = Watch::new();
        let mut wire = Vec::new();
        for ((proto, info), ms) in &frames {
            wire.clear();
            enc.encode(*proto, info, &mut wire);
            // Delivered in pieces, as a serial port does.
            for piece in wire.chunks(split) {
                link.handle_serial_input(now, piece);
            }
            w.check(&mut link, 1)?;
            now += Duration::from_millis(*ms);
            tick(&mut link, now);
            w.check(&mut link, 1)?;
        }
        // Every frame decoded is accounted for, none invented.
        let st = link.stats();
        let decoded = st.decoder.frames - before.decoder.frames;
        prop_assert!(decoded <= frames.len() as u64);
        prop_assert!(st.rx_frames - before.rx_frames <= decoded);
        prop_assert!(st.malformed - before.malformed <= decoded);
    }
}

/// A client driven to `at` against a real server (then cut off).
fn client_at(at: At) -> (Client, Instant) {
    let mut p = Pair::new(
        server_config(&[AuthProto::Pap]),
        Peer::client(client_config(), 2),
    );
    match at {
        At::Fresh => {}
        At::Establish => {
            p.start_peer();
            p.settle();
        }
        At::Authenticate | At::Challenge => {
            p.auth = AuthPolicy::Manual;
            p.start();
            assert!(p.run_until(Duration::from_secs(10), |p| !p.pending_auth.is_empty()));
        }
        At::Network | At::Terminate | At::Dead => {
            p.start();
            assert!(p.run_until_up(Duration::from_secs(10)));
            let now = p.now;
            match at {
                At::Terminate => p.client().close(now),
                At::Dead => p.client().lower_down(now),
                _ => {}
            }
        }
    }
    let now = p.now;
    let Peer::Client(mut c) = std::mem::replace(&mut p.peer, Peer::Silent) else {
        unreachable!()
    };
    let n = c.serial_output().len();
    c.consume_serial_output(n);
    while c.poll_event().is_some() {}
    (*c, now)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn client_survives_frames_in_every_phase(
        phase in 0usize..PHASES.len(),
        frames in prop::collection::vec((frame_strategy(), 0u64..3000), 1..60),
        enc in encoder_strategy(),
        noise in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let (mut c, mut now) = client_at(PHASES[phase]);
        let mut down = false;
        let mut wire = noise;
        for ((proto, info), ms) in &frames {
            enc.encode(*proto, info, &mut wire);
            c.handle_serial_input(now, &wire);
            wire.clear();
            now += Duration::from_millis(*ms);
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
            let n = c.serial_output().len();
            prop_assert!(n <= output_bound(1), "{} bytes", n);
            c.consume_serial_output(n);
            let mut k = 0;
            while c.poll_ip_output().is_some() {
                k += 1;
            }
            prop_assert!(k <= 1);
            while let Some(e) = c.poll_event() {
                prop_assert!(!down, "event after Down: {:?}", e);
                down |= matches!(e, ClientEvent::Down(_));
            }
            if c.is_done() {
                prop_assert_eq!(c.poll_timeout(), None);
                prop_assert!(!c.is_up());
            }
        }
    }
}

// ---- ten thousand frames, memory bounded --------------------------------------------------

/// A frame from a mix that keeps a live link alive: IP packets of every size, unknown
/// protocols, echoes, unknown LCP codes, stray PAP/CHAP/IPCP packets.
fn survivable_frame(rng: &mut XorShift, magic: u32) -> (u16, Vec<u8>) {
    let mut bytes = |n: usize| (0..n).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>();
    let pick = bytes(2);
    let (p, info) = match pick[0] % 8 {
        0..=2 => {
            let n = 20 + usize::from(pick[1]) * 6;
            let mut ip = bytes(n.min(1500));
            ip[0] = 0x45;
            (IPV4, ip)
        }
        3 => (IPV6CP, bytes(usize::from(pick[1]))),
        4 => {
            let mut d = magic.wrapping_add(1).to_be_bytes().to_vec();
            d.extend_from_slice(&bytes(usize::from(pick[1])));
            let mut p = Vec::new();
            cp::emit(9, pick[1], &d, &mut p);
            (LCP, p)
        }
        5 => {
            let mut p = Vec::new();
            cp::emit(
                14 + pick[1] % 200,
                pick[1],
                &bytes(usize::from(pick[1] % 40)),
                &mut p,
            );
            (LCP, p)
        }
        6 => (
            if pick[1] % 2 == 0 { PAP } else { CHAP },
            bytes(usize::from(pick[1] % 50)),
        ),
        _ => {
            // IPCP Code-Reject of an unknown code: ignored (RXJ+).
            let mut p = Vec::new();
            cp::emit(7, pick[1], &[42, 1, 0, 4], &mut p);
            (IPCP, p)
        }
    };
    (p, info)
}

#[test]
fn ten_thousand_frames_live_link_memory_bounded() {
    let (mut link, mut now) = link_at(At::Network);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut enc = Encoder::new();
    enc.set_accm(0);
    let mut wire = Vec::with_capacity(4096);
    let mut baseline = None;
    let mut packets = 0;
    let mut high_water = 0;
    for i in 0..11_000u32 {
        let (proto, info) = survivable_frame(&mut rng, 0x5eed);
        wire.clear();
        enc.encode(proto, &info, &mut wire);
        drop(info);
        link.handle_serial_input(now, &wire);
        // The driver writes out the line output at once, but takes IP packets only every
        // 500 frames: the queue must stop at its limit meanwhile.
        let n = link.serial_output().len();
        assert!(n <= output_bound(1), "{n}");
        link.consume_serial_output(n);
        if let Some(e) = link.poll_event() {
            panic!("unexpected event {e:?}");
        }
        if let Some(b) = baseline {
            high_water = high_water.max(live() - b);
        }
        if i % 500 == 499 {
            let mut k = 0;
            while link.poll_ip_output().is_some() {
                k += 1;
            }
            assert!(k <= 64, "{k} packets queued");
            packets += k;
        }
        now += Duration::from_millis(rng.below(50));
        tick(&mut link, now);
        let n = link.serial_output().len();
        link.consume_serial_output(n);
        if i == 1_000 {
            baseline = Some(live());
        }
    }
    assert!(!link.is_done());
    assert_eq!(link.lcp_state(), nasd::proto::fsm::State::Opened);
    let st = link.stats();
    assert!(st.rx_dropped > 0, "the queue limit was reached");
    assert!(packets > 0);
    assert!(st.protocol_rejects > 0);
    // 10,000 frames after warm-up: the heap of this thread did not grow by more than the
    // IP queue's worth (64 packets of at most 1500 octets) plus slack.
    assert!(
        high_water < 64 * 1600 + 16 * 1024,
        "heap grew by {high_water} bytes"
    );
    let end = live() - baseline.unwrap_or(0);
    assert!(end < 16 * 1024, "heap grew by {end} bytes after draining");
}

#[test]
fn ten_thousand_random_frames_every_phase_no_growth() {
    for at in PHASES {
        let (mut link, mut now) = link_at(at);
        let mut rng = XorShift(0x2545_f491 ^ at as u64);
        let mut encs = [Encoder::new(), Encoder::new()];
        encs[1].set_accm(0);
        encs[1].set_acfc(true);
        encs[1].set_pfc(true);
        let mut wire = Vec::with_capacity(4096);
        let mut baseline = 0;
        for i in 0..10_000u32 {
            let mut info: Vec<u8> = (0..rng.below(80)).map(|_| rng.next_u64() as u8).collect();
            let proto = match rng.below(6) {
                0 => LCP,
                1 => PAP,
                2 => CHAP,
                3 => IPCP,
                4 => IPV4,
                _ => ((rng.next_u64() as u16) | 1) & !0x0100,
            };
            if proto != IPV4 && !info.is_empty() {
                // Mostly well-formed control packets: a correct length field.
                info[0] = (rng.below(14) + 1) as u8;
                let len = info.len() as u16;
                if info.len() >= 4 && rng.below(4) != 0 {
                    info[2..4].copy_from_slice(&len.to_be_bytes());
                }
            }
            wire.clear();
            encs[i as usize % 2].encode(proto, &info, &mut wire);
            drop(info);
            link.handle_serial_input(now, &wire);
            now += Duration::from_millis(rng.below(200));
            tick(&mut link, now);
            let d = drain(&mut link);
            assert!(d.bytes <= output_bound(1));
            if d.events
                .iter()
                .any(|e| matches!(e, LinkEvent::Authenticate(_)))
            {
                link.handle_auth_result(now, AuthResult::Accept(Grant::new(PEER_IP)));
                drain(&mut link);
            }
            if i == 500 {
                baseline = live();
            }
        }
        drain(&mut link);
        let growth = live() - baseline;
        assert!(growth < 16 * 1024, "{at:?}: heap grew by {growth} bytes");
    }
}

#[test]
fn a_client_is_small() {
    // The load generator drives 1,000 lines from one process.
    let mut p = Pair::new(
        server_config(&[AuthProto::ChapMd5]),
        Peer::client(client_config(), 3),
    );
    p.start();
    assert!(p.run_until_up(Duration::from_secs(10)));
    let req = icmp_echo(PEER_IP, SERVER_IP, false, 1, &[0x55; 1400]);
    assert!(p.client_send_ip(&req));
    assert!(p.server_send_ip(&req));
    p.settle();
    let Peer::Client(c) = std::mem::replace(&mut p.peer, Peer::Silent) else {
        unreachable!()
    };
    let before = live();
    let inline = std::mem::size_of_val(&*c);
    drop(c);
    let heap = before - live();
    // About 1.9 KB inline and 5.3 KB of heap in all (the frame buffer dominates).
    assert!(inline < 2048, "{inline} bytes inline");
    assert!(heap < 8 * 1024, "{heap} bytes of heap");
}
