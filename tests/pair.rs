//! Scenario tests: a server [`Link`] and a peer (our [`Client`] or a scripted one) over an
//! in-memory wire, on a virtual clock. See `tests/harness/mod.rs`.
//!
//! Every test states concrete behaviour: states, events, frames seen on the wire, counters
//! and times on the virtual clock.

mod harness;

use harness::*;
use nasd::proto::auth::{AuthResult, Credentials, Grant};
use nasd::proto::client::{ClientConfig, ClientEvent};
use nasd::proto::fsm::State;
use nasd::proto::lcp::AuthProto;
use nasd::proto::link::{DownReason, LinkEvent, Phase};
use nasd::proto::wire::cp::{self, Options};
use nasd::proto::wire::protocol::{self, CCP, CHAP, IPCP, IPV4, IPV6CP, IPXCP, LCP, PAP};
use std::cell::Cell;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::Duration;

use Dir::{ToPeer, ToServer};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const CONF_REQ: u8 = 1;
const CONF_NAK: u8 = 3;
const CONF_REJ: u8 = 4;
const TERM_REQ: u8 = 5;
const TERM_ACK: u8 = 6;
const CODE_REJ: u8 = 7;
const PROTO_REJ: u8 = 8;
const ECHO_REQ: u8 = 9;
const ECHO_REPLY: u8 = 10;

/// The value of option `kind` in a Configure-* packet's data.
fn option(data: &[u8], kind: u8) -> Option<Vec<u8>> {
    Options::new(data)
        .flatten()
        .find(|o| o.kind == kind)
        .map(|o| o.data.to_vec())
}

fn client_pair(auth: &[AuthProto], client: ClientConfig) -> Pair {
    let mut p = Pair::new(server_config(auth), Peer::client(client, 7));
    p.start();
    p
}

/// Pings from the client side and answers from the server side; checks both arrive whole.
fn ping_both_ways(p: &mut Pair) {
    let req = icmp_echo(PEER_IP, SERVER_IP, false, 1, b"abcdefgh");
    assert!(p.client_send_ip(&req));
    p.settle();
    assert_eq!(p.server_ip.last().map(|x| &x.1), Some(&req));
    let rep = icmp_echo(SERVER_IP, PEER_IP, true, 1, b"abcdefgh");
    assert!(p.server_send_ip(&rep));
    p.settle();
    assert_eq!(p.peer_ip.last().map(|x| &x.1), Some(&rep));
    // With ACFC and PFC negotiated, IPv4 frames start right after the flag with 0x21.
    for dir in [ToServer, ToPeer] {
        let f = p.frames(dir, IPV4, None);
        assert!(!f.is_empty());
        assert_eq!(&f[0].raw[..2], &[0x7e, 0x21], "{dir:?}: compressed header");
    }
}

// ---- bring-up ---------------------------------------------------------------------------

#[test]
fn pap_bring_up_and_ping() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    assert!(p.run_until_up(secs(10)));
    // A clean wire needs no timer at all.
    assert_eq!(p.elapsed(), Duration::ZERO);
    let s = p.server_up().unwrap().clone();
    assert_eq!(s.user, USER);
    assert_eq!(s.auth, Some(AuthProto::Pap));
    assert_eq!(
        (s.local_ip, s.peer_ip, s.dns, s.peer_mru),
        (SERVER_IP, PEER_IP, DNS, 1500)
    );
    let req = p
        .server_events
        .iter()
        .find_map(|(_, e)| match e {
            LinkEvent::Authenticate(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(req.user, USER);
    assert_eq!(req.proto(), Some(AuthProto::Pap));
    assert!(req.verify_secret(SECRET));
    assert_eq!(
        p.peer_events,
        vec![(
            Duration::ZERO,
            ClientEvent::Up {
                local_ip: PEER_IP,
                peer_ip: SERVER_IP,
                dns: DNS
            }
        )]
    );
    // On the wire: one Authenticate-Request, one Ack with the grant's message.
    let reqs = p.frames(ToServer, PAP, Some(1));
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].data(), b"\x05alice\x06secret");
    let acks = p.frames(ToPeer, PAP, Some(2));
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].data(), b"\x07Welcome");
    // The client asked for 0.0.0.0 and both DNS servers, and was Naked the grant.
    let ipcp_reqs = p.frames(ToServer, IPCP, Some(CONF_REQ));
    assert_eq!(option(ipcp_reqs[0].data(), 3), Some(vec![0; 4]));
    assert_eq!(option(ipcp_reqs[0].data(), 129), Some(vec![0; 4]));
    let nak = &p.frames(ToPeer, IPCP, Some(CONF_NAK))[0];
    assert_eq!(option(nak.data(), 3), Some(PEER_IP.octets().to_vec()));
    assert_eq!(option(nak.data(), 131), Some(vec![10, 0, 0, 54]));
    let c = p.client();
    assert_eq!(
        (c.phase(), c.lcp_state(), c.ipcp_state()),
        (Phase::Network, State::Opened, State::Opened)
    );
    assert_eq!(
        (c.local_ip(), c.peer_ip(), c.dns()),
        (Some(PEER_IP), Some(SERVER_IP), DNS)
    );
    assert_eq!(
        (p.server.phase(), p.server.ipcp_state()),
        (Phase::Network, State::Opened)
    );
    assert_eq!(p.server.user(), USER);
    ping_both_ways(&mut p);
    let st = p.server.stats();
    assert_eq!((st.rx_packets, st.tx_packets), (1, 1));
    assert_eq!((st.malformed, st.discarded, st.protocol_rejects), (0, 0, 0));
    assert_eq!(st.decoder.bad_fcs, 0);
    let cs = p.client().stats();
    assert_eq!((cs.rx_packets, cs.tx_packets), (1, 1));
}

#[test]
fn chap_bring_up_and_ping() {
    let mut p = client_pair(&[AuthProto::ChapMd5, AuthProto::Pap], client_config());
    assert!(p.run_until_up(secs(10)));
    assert_eq!(p.elapsed(), Duration::ZERO);
    let s = p.server_up().unwrap().clone();
    assert_eq!((s.user.as_str(), s.auth), (USER, Some(AuthProto::ChapMd5)));
    assert_eq!((s.peer_ip, s.dns), (PEER_IP, DNS));
    // The challenge on the wire is the one the verifier is given, and the response checks.
    let ch = &p.frames(ToPeer, CHAP, Some(1))[0];
    let req = p
        .server_events
        .iter()
        .find_map(|(_, e)| match e {
            LinkEvent::Authenticate(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    match &req.credentials {
        Credentials::ChapMd5 { id, challenge, .. } => {
            assert_eq!(*id, ch.id());
            assert_eq!(ch.data()[0] as usize, challenge.len());
            assert_eq!(&ch.data()[1..1 + challenge.len()], &challenge[..]);
            assert_eq!(&ch.data()[1 + challenge.len()..], b"nasd");
        }
        other => panic!("{other:?}"),
    }
    assert!(req.verify_secret(SECRET));
    assert!(!req.verify_secret(b"Secret"));
    let resp = &p.frames(ToServer, CHAP, Some(2))[0];
    assert_eq!((resp.id(), resp.data()[0]), (ch.id(), 16));
    assert_eq!(&resp.data()[17..], USER.as_bytes());
    assert_eq!(p.frames(ToPeer, CHAP, Some(3)).len(), 1);
    assert_eq!(p.client().auth_proto(), Some(AuthProto::ChapMd5));
    assert_eq!(
        p.peer_events,
        vec![(
            Duration::ZERO,
            ClientEvent::Up {
                local_ip: PEER_IP,
                peer_ip: SERVER_IP,
                dns: DNS
            }
        )]
    );
    ping_both_ways(&mut p);
}

#[test]
fn no_authentication_still_asks_the_driver() {
    let mut p = client_pair(&[], ClientConfig::default());
    assert!(p.run_until_up(secs(10)));
    let first = &p.server_events[0].1;
    assert!(matches!(first, LinkEvent::Authenticate(r) if r.credentials == Credentials::None));
    assert_eq!(p.server_up().unwrap().auth, None);
    assert!(p.frames(ToPeer, PAP, None).is_empty() && p.frames(ToPeer, CHAP, None).is_empty());
}

// ---- refused credentials ----------------------------------------------------------------

#[test]
fn pap_wrong_password_is_refused() {
    let mut p = client_pair(
        &[AuthProto::Pap],
        ClientConfig::with_credentials(USER, "wrong"),
    );
    assert!(p.run_until(secs(60), |p| p.both_done()));
    assert_eq!(
        p.server_down(),
        Some((Duration::ZERO, DownReason::AuthFailed))
    );
    let naks = p.frames(ToPeer, PAP, Some(3));
    assert_eq!(naks.len(), 1);
    assert_eq!(naks[0].data(), b"\x0dAccess denied");
    assert_eq!(
        p.peer_events,
        vec![
            (Duration::ZERO, ClientEvent::AuthFailed),
            (Duration::ZERO, ClientEvent::Down(DownReason::AuthFailed)),
        ]
    );
    // The server said why in its Terminate-Request; IPCP never started.
    let tr = p.frames(ToPeer, LCP, Some(TERM_REQ));
    assert_eq!(tr[0].data(), b"Authentication failed");
    assert!(p.frames(ToPeer, IPCP, None).is_empty());
    assert!(p.server_up().is_none());
    assert_eq!(p.server.phase(), Phase::Dead);
}

#[test]
fn chap_wrong_secret_is_refused() {
    let mut p = client_pair(
        &[AuthProto::ChapMd5],
        ClientConfig::with_credentials(USER, "s3cret"),
    );
    assert!(p.run_until(secs(60), |p| p.both_done()));
    assert_eq!(
        p.server_down(),
        Some((Duration::ZERO, DownReason::AuthFailed))
    );
    let fails = p.frames(ToPeer, CHAP, Some(4));
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].data(), b"Access denied");
    assert_eq!(fails[0].id(), p.frames(ToPeer, CHAP, Some(1))[0].id());
    assert_eq!(
        p.peer_down(),
        Some((Duration::ZERO, DownReason::AuthFailed))
    );
    assert!(
        p.peer_events
            .iter()
            .any(|(_, e)| *e == ClientEvent::AuthFailed)
    );
    assert!(p.frames(ToPeer, IPCP, None).is_empty());
}

#[test]
fn verdict_may_take_time() {
    // RADIUS takes 2 s: the PAP peer retransmits meanwhile; one verdict answers it.
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    p.auth = AuthPolicy::Manual;
    assert!(p.run_until(secs(10), |p| !p.pending_auth.is_empty()));
    p.run_for(secs(2) + Duration::from_millis(500));
    assert_eq!(p.pending_auth.len(), 1);
    let now = p.now;
    p.server
        .handle_auth_result(now, AuthResult::Accept(Grant::new(PEER_IP)));
    assert!(p.run_until_up(secs(10)));
    assert_eq!(p.server_up_at(), Some(Duration::from_millis(2500)));
    // The Ack came before the 3 s retransmission.
    assert_eq!(p.frames(ToServer, PAP, Some(1)).len(), 1);
}

// ---- a bad wire -------------------------------------------------------------------------

#[test]
fn first_two_server_frames_lost() {
    let mut p = Pair::new(
        server_config(&[AuthProto::Pap]),
        Peer::client(client_config(), 3),
    )
    .with_rule(|f| {
        if f.dir == ToPeer && f.index < 2 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.start();
    assert!(p.run_until_up(secs(30)));
    // The restart timer (3 s) recovers both losses in one round.
    assert_eq!(p.server_up_at(), Some(secs(3)));
    let lost: Vec<_> = p.log.iter().filter(|s| s.fate == Fate::Drop).collect();
    assert_eq!(lost.len(), 2);
    assert!(lost.iter().all(|s| s.proto == LCP));
    assert_eq!(p.frames(ToPeer, LCP, Some(CONF_REQ)).len(), 2);
    ping_both_ways(&mut p);
}

#[test]
fn every_frame_duplicated() {
    for auth in [AuthProto::Pap, AuthProto::ChapMd5] {
        let mut p = Pair::new(server_config(&[auth]), Peer::client(client_config(), 4))
            .with_rule(|_| Fate::Duplicate);
        p.start();
        assert!(p.run_until_up(secs(30)), "{auth:?}");
        assert_eq!(p.server_up_at(), Some(Duration::ZERO));
        // Duplicates of Configure-Acks must not restart the negotiation.
        assert_eq!(p.frames(ToPeer, LCP, Some(CONF_REQ)).len(), 1, "{auth:?}");
        assert_eq!(p.frames(ToServer, LCP, Some(CONF_REQ)).len(), 1, "{auth:?}");
        p.run_for(secs(5));
        let ups = p
            .server_events
            .iter()
            .filter(|(_, e)| matches!(e, LinkEvent::Up(_)))
            .count();
        assert_eq!(ups, 1);
        assert!(p.server_down().is_none());
        assert!(p.client().is_up());
        // IP packets arrive twice: the wire duplicates them, PPP does not care.
        let req = icmp_echo(PEER_IP, SERVER_IP, false, 1, b"dup");
        assert!(p.client_send_ip(&req));
        p.settle();
        assert_eq!(p.server_ip.len(), 2);
    }
}

#[test]
fn random_loss_converges() {
    for seed in 1..=20u64 {
        let mut rng = XorShift(seed * 7919);
        let mut p = Pair::new(
            server_config(&[AuthProto::ChapMd5, AuthProto::Pap]),
            Peer::client(client_config(), seed as u8),
        )
        .with_rule(move |_| {
            if rng.below(10) == 0 {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        p.start();
        assert!(
            p.run_until_up(secs(60)),
            "seed {seed}: {:?} {:?}",
            p.server_events,
            p.peer_events
        );
        assert!(p.server_down().is_none());
    }
}

#[test]
fn chaos_converges() {
    // Loss, copies, corruption and reordering at once, for both authentication protocols.
    for seed in 1..=40u64 {
        let mut rng = XorShift(seed * 104_729);
        let auth = if seed % 2 == 0 {
            AuthProto::Pap
        } else {
            AuthProto::ChapMd5
        };
        let mut p = Pair::new(
            server_config(&[auth]),
            Peer::client(client_config(), seed as u8),
        )
        .with_rule(move |_| match rng.below(100) {
            0..=9 => Fate::Drop,
            10..=19 => Fate::Duplicate,
            20..=24 => Fate::Corrupt,
            25..=29 => Fate::Delay(Duration::from_millis(rng.below(2000))),
            _ => Fate::Deliver,
        });
        p.start();
        assert!(
            p.run_until_up(secs(120)),
            "seed {seed}: {:?}",
            p.server_events
        );
        ping_both_ways_lossy(&mut p);
    }
}

#[test]
fn harsh_chaos_never_gets_stuck() {
    // Half the frames lost or mangled: the link may not come up, but it always ends, with a
    // reason, within the bounds of the timers (LCP 30 s, authentication 30 s, ...).
    let mut up = 0;
    for seed in 1..=40u64 {
        let mut rng = XorShift(seed * 15_485_863);
        let mut p = Pair::new(
            server_config(&[AuthProto::ChapMd5, AuthProto::Pap]),
            Peer::client(client_config(), seed as u8),
        )
        .with_rule(move |_| match rng.below(100) {
            0..=34 => Fate::Drop,
            35..=44 => Fate::Duplicate,
            45..=49 => Fate::Corrupt,
            50..=59 => Fate::Delay(Duration::from_millis(rng.below(5000))),
            _ => Fate::Deliver,
        });
        p.start();
        if p.run_until_up(secs(300)) {
            up += 1;
            continue;
        }
        assert!(
            p.run_until_server_down(secs(300)),
            "seed {seed} stuck: {:?}",
            p.server_events
        );
        let (at, reason) = p.server_down().unwrap();
        assert!(at <= secs(120), "seed {seed}: {reason} at {at:?}");
    }
    assert!(up >= 30, "{up} of 40 came up");
}

/// Like [`ping_both_ways`] on a wire that may lose the packets: only checks that whatever
/// arrives is whole.
fn ping_both_ways_lossy(p: &mut Pair) {
    let req = icmp_echo(PEER_IP, SERVER_IP, false, 1, b"abcdefgh");
    p.client_send_ip(&req);
    p.run_for(secs(3));
    assert!(p.server_ip.iter().all(|(_, x)| *x == req));
}

#[test]
fn corrupted_frames_are_dropped_by_fcs_and_retried() {
    let mut p = Pair::new(
        server_config(&[AuthProto::ChapMd5]),
        Peer::client(client_config(), 5),
    )
    .with_rule(|f| {
        if f.index % 3 == 1 {
            Fate::Corrupt
        } else {
            Fate::Deliver
        }
    });
    p.start();
    assert!(p.run_until_up(secs(60)));
    assert!(p.server.stats().decoder.bad_fcs >= 1);
    assert!(p.client().stats().decoder.bad_fcs >= 1);
    assert!(p.elapsed() >= secs(3), "recovery needs the restart timer");
}

#[test]
fn delayed_frame_overtaken() {
    // The client's first Configure-Request arrives a second late.
    let mut p = Pair::new(
        server_config(&[AuthProto::Pap]),
        Peer::client(client_config(), 6),
    )
    .with_rule(|f| {
        if f.dir == ToServer && f.index == 0 {
            Fate::Delay(secs(1))
        } else {
            Fate::Deliver
        }
    });
    p.start();
    assert!(p.run_until_up(secs(10)));
    assert_eq!(p.server_up_at(), Some(secs(1)));
    assert_eq!(p.frames(ToPeer, LCP, Some(CONF_REQ)).len(), 1);
}

#[test]
fn latency_is_respected() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    p.latency = Duration::from_millis(100);
    assert!(p.run_until_up(secs(10)));
    // LCP: both requests cross (0.1 s), the Acks return (0.2 s: both Opened). The PAP
    // request reaches the server at 0.3 s; its Ack and the server's IPCP request reach the
    // client at 0.4 s. The client's IPCP request is Naked at 0.5 s, the Nak arrives at 0.6 s,
    // the new request at 0.7 s (server Up: it had our Ack since 0.5 s), its Ack at 0.8 s.
    assert_eq!(p.server_up_at(), Some(Duration::from_millis(700)));
    assert_eq!(p.peer_events[0].0, Duration::from_millis(800));
}

// ---- giving up --------------------------------------------------------------------------

#[test]
fn silent_peer_lcp_gives_up_after_max_configure() {
    let mut p = Pair::new(server_config(&[AuthProto::Pap]), Peer::Silent);
    p.start();
    assert!(p.run_until_server_down(secs(120)));
    assert_eq!(
        p.server_down(),
        Some((secs(30), DownReason::NegotiationFailed(LCP)))
    );
    let times: Vec<Duration> = p
        .frames(ToPeer, LCP, Some(CONF_REQ))
        .iter()
        .map(|s| s.at)
        .collect();
    assert_eq!(times, (0..10).map(|i| secs(3 * i)).collect::<Vec<_>>());
    assert_eq!(
        p.frames(ToPeer, LCP, None).len(),
        10,
        "no Terminate-Request to nobody"
    );
    assert!(p.server.is_done());
    assert_eq!(p.server.poll_timeout(), None);
}

#[test]
fn looped_back_line_is_detected() {
    for auth in [vec![], vec![AuthProto::ChapMd5, AuthProto::Pap]] {
        let mut p = Pair::new(server_config(&auth), Peer::Mirror(Vec::new()));
        p.start();
        assert!(p.run_until_server_down(secs(120)), "{auth:?}");
        let (at, reason) = p.server_down().unwrap();
        assert_eq!(reason, DownReason::Loopback, "{auth:?}");
        assert!(at <= secs(10), "{at:?}");
        let reqs = p.frames(ToPeer, LCP, Some(CONF_REQ));
        assert!(reqs.len() <= 10, "{} requests", reqs.len());
        // Each request carried a fresh Magic-Number.
        let mut magics: Vec<_> = reqs.iter().map(|s| option(s.data(), 5).unwrap()).collect();
        let n = magics.len();
        magics.dedup();
        assert_eq!(magics.len(), n);
    }
}

// ---- Nak loops --------------------------------------------------------------------------

#[test]
fn peer_naks_every_lcp_request_forever() {
    // Without authentication: the Nak bound (Max-Configure) ends it.
    let peer = scripted(Basic::default(), |_, ctx, proto, info| {
        let Ok(p) = cp::Packet::parse(info) else {
            return false;
        };
        if proto == LCP && p.code == CONF_REQ {
            ctx.send_cp(LCP, CONF_NAK, p.id, p.data);
            return true;
        }
        false
    });
    let mut p = Pair::new(server_config(&[]), peer);
    p.start();
    assert!(p.run_until_server_down(secs(60)));
    assert_eq!(
        p.server_down(),
        Some((Duration::ZERO, DownReason::NegotiationFailed(LCP)))
    );
    assert_eq!(p.frames(ToPeer, LCP, Some(CONF_REQ)).len(), 11);

    // With authentication: Naking the Authentication-Protocol through every allowed choice
    // is a refusal to authenticate.
    let peer = scripted(Basic::default(), |_, ctx, proto, info| {
        let Ok(p) = cp::Packet::parse(info) else {
            return false;
        };
        if proto == LCP && p.code == CONF_REQ {
            ctx.send_cp(LCP, CONF_NAK, p.id, p.data);
            return true;
        }
        false
    });
    let mut p = Pair::new(server_config(&[AuthProto::ChapMd5, AuthProto::Pap]), peer);
    p.start();
    assert!(p.run_until_server_down(secs(60)));
    assert_eq!(
        p.server_down(),
        Some((Duration::ZERO, DownReason::AuthRefused))
    );
    let reqs = p.frames(ToPeer, LCP, Some(CONF_REQ));
    assert_eq!(option(reqs[0].data(), 3), Some(vec![0xc2, 0x23, 0x05]));
    assert_eq!(option(reqs[1].data(), 3), Some(vec![0xc0, 0x23]));
    assert_eq!(
        p.frames(ToPeer, LCP, Some(TERM_REQ))[0].data(),
        b"Peer refused to authenticate"
    );
}

#[test]
fn peer_rejects_every_ipcp_option() {
    let basic = Basic {
        ipcp: false,
        ..Basic::default()
    };
    let peer = scripted(basic, |_, ctx, proto, info| {
        let Ok(p) = cp::Packet::parse(info) else {
            return false;
        };
        if proto == IPCP && p.code == CONF_REQ {
            ctx.send_cp(IPCP, CONF_REJ, p.id, p.data);
            return true;
        }
        false
    });
    let mut p = Pair::new(server_config(&[]), peer);
    p.start();
    assert!(p.run_until_server_down(secs(60)));
    assert_eq!(
        p.server_down(),
        Some((Duration::ZERO, DownReason::NegotiationFailed(IPCP)))
    );
    let reqs = p.frames(ToPeer, IPCP, Some(CONF_REQ));
    assert_eq!(reqs.len(), 11);
    // After the address was rejected the server stopped asking for it.
    assert!(option(reqs[0].data(), 3).is_some());
    assert!(reqs[1..].iter().all(|r| r.data().is_empty()));
    assert_eq!(p.frames(ToPeer, LCP, Some(TERM_REQ)).len(), 1);
}

#[test]
fn peer_naks_the_server_address_forever() {
    let peer = scripted(Basic::default(), |_, ctx, proto, info| {
        let Ok(p) = cp::Packet::parse(info) else {
            return false;
        };
        if proto == IPCP && p.code == CONF_REQ {
            let mut nak = Vec::new();
            cp::push_option(&mut nak, 3, &[10, 9, 9, 9]);
            ctx.send_cp(IPCP, CONF_NAK, p.id, &nak);
            return true;
        }
        false
    });
    let mut p = Pair::new(server_config(&[]), peer);
    p.start();
    assert!(p.run_until_server_down(secs(60)));
    assert_eq!(
        p.server_down(),
        Some((Duration::ZERO, DownReason::NegotiationFailed(IPCP)))
    );
    let reqs = p.frames(ToPeer, IPCP, Some(CONF_REQ));
    assert_eq!(reqs.len(), 11);
    assert!(
        reqs.iter()
            .all(|r| option(r.data(), 3) == Some(SERVER_IP.octets().to_vec()))
    );
}

#[test]
fn peer_insists_on_its_own_address() {
    // The peer asks for 10.9.9.9 whatever it is told: Naked Max-Failure (5) times, then
    // rejected, and the link ends instead of ping-ponging forever.
    let basic = Basic {
        ip: Ipv4Addr::new(10, 9, 9, 9),
        ..Basic::default()
    };
    let peer = scripted(basic, |b, ctx, proto, info| {
        let Ok(p) = cp::Packet::parse(info) else {
            return false;
        };
        if proto == IPCP && (p.code == CONF_NAK || p.code == CONF_REJ) {
            let mut req = Vec::new();
            cp::push_option(&mut req, 3, &b.ip.octets());
            ctx.send_cp(IPCP, CONF_REQ, p.id.wrapping_add(1), &req);
            return true;
        }
        false
    });
    let mut p = Pair::new(server_config(&[]), peer);
    p.start();
    assert!(p.run_until_server_down(secs(120)));
    let (_, reason) = p.server_down().unwrap();
    assert_eq!(reason, DownReason::NegotiationFailed(IPCP));
    assert_eq!(p.frames(ToPeer, IPCP, Some(CONF_NAK)).len(), 5);
    assert!(p.server_up().is_none());
}

// ---- authentication protocol negotiation ------------------------------------------------

#[test]
fn peer_naks_chap_for_pap() {
    let client = ClientConfig {
        chap: false,
        ..client_config()
    };
    let mut p = client_pair(&[AuthProto::ChapMd5, AuthProto::Pap], client);
    assert!(p.run_until_up(secs(10)));
    assert_eq!(p.server_up().unwrap().auth, Some(AuthProto::Pap));
    let nak = &p.frames(ToServer, LCP, Some(CONF_NAK))[0];
    assert_eq!(option(nak.data(), 3), Some(vec![0xc0, 0x23]));
    let reqs = p.frames(ToPeer, LCP, Some(CONF_REQ));
    assert_eq!(reqs.len(), 2);
    assert_eq!(option(reqs[0].data(), 3), Some(vec![0xc2, 0x23, 0x05]));
    assert_eq!(option(reqs[1].data(), 3), Some(vec![0xc0, 0x23]));
    assert_eq!(p.frames(ToServer, PAP, Some(1)).len(), 1);
}

#[test]
fn peer_naks_chap_for_pap_when_only_chap_allowed() {
    let client = ClientConfig {
        chap: false,
        ..client_config()
    };
    let mut p = client_pair(&[AuthProto::ChapMd5], client);
    assert!(p.run_until_server_down(secs(60)));
    assert_eq!(p.server_down().unwrap().1, DownReason::AuthRefused);
}

#[test]
fn peer_rejects_authentication() {
    let mut p = client_pair(
        &[AuthProto::ChapMd5, AuthProto::Pap],
        ClientConfig::default(),
    );
    assert!(p.run_until_server_down(secs(60)));
    assert_eq!(
        p.server_down(),
        Some((Duration::ZERO, DownReason::AuthRefused))
    );
    let rej = &p.frames(ToServer, LCP, Some(CONF_REJ))[0];
    assert_eq!(rej.data(), &[3, 5, 0xc2, 0x23, 0x05]);
    assert!(p.server_up().is_none());
    // The client, never opened, gives up on its own after Max-Configure.
    assert!(p.run_until(secs(120), |p| p.peer_down().is_some()));
    assert_eq!(p.peer_down().unwrap().1, DownReason::NegotiationFailed(LCP));
}

// ---- protocols and codes the server does not speak --------------------------------------

fn scripted_up() -> Pair {
    let mut p = Pair::new(server_config(&[]), basic_peer());
    p.start();
    assert!(p.run_until(secs(10), |p| p.server_up().is_some()));
    p
}

#[test]
fn unknown_protocols_get_protocol_reject() {
    let mut p = scripted_up();
    let info = [1u8, 1, 0, 4];
    for proto in [IPV6CP, CCP, IPXCP, 0x1235, 0x0057] {
        p.script().send(proto, &info);
    }
    p.settle();
    let rejs = p.frames(ToPeer, LCP, Some(PROTO_REJ));
    assert_eq!(rejs.len(), 5);
    for (r, proto) in rejs.iter().zip([IPV6CP, CCP, IPXCP, 0x1235, 0x0057]) {
        assert_eq!(&r.data()[..2], &proto.to_be_bytes());
        assert_eq!(&r.data()[2..], &info);
    }
    // Identifiers differ.
    assert_ne!(rejs[0].id(), rejs[1].id());
    assert_eq!(p.server.stats().protocol_rejects, 5);
    // 0x1234 is not a valid protocol number (RFC 1661 section 2: it must be odd): the frame
    // is malformed and dropped without a reply.
    let before = p.log.len();
    p.script().send(0x1234, &info);
    p.settle();
    assert_eq!(p.frames(ToPeer, LCP, Some(PROTO_REJ)).len(), 5);
    assert_eq!(p.log.len(), before + 1);
    assert_eq!(p.server.stats().malformed, 1);
    assert_eq!(p.server.lcp_state(), State::Opened);
    assert!(p.server_down().is_none());
}

#[test]
fn protocol_reject_is_cut_to_the_peer_mru() {
    let basic = Basic {
        mru: Some(300),
        ..Basic::default()
    };
    let mut p = Pair::new(server_config(&[]), scripted(basic, |_, _, _, _| false));
    p.start();
    assert!(p.run_until(secs(10), |p| p.server_up().is_some()));
    p.script().send(IPV6CP, &[0xaa; 1000]);
    p.settle();
    let r = &p.frames(ToPeer, LCP, Some(PROTO_REJ))[0];
    assert_eq!(r.info.len(), 300);
}

#[test]
fn unknown_lcp_code_gets_code_reject() {
    let mut p = scripted_up();
    p.script().send_cp(LCP, 42, 7, b"hello");
    p.settle();
    let rejs = p.frames(ToPeer, LCP, Some(CODE_REJ));
    assert_eq!(rejs.len(), 1);
    assert_eq!(rejs[0].data(), &[42, 7, 0, 9, b'h', b'e', b'l', b'l', b'o']);
    assert_eq!(p.server.lcp_state(), State::Opened);
}

#[test]
fn identification_is_ignored() {
    // Windows sends LCP Identification (code 12) and Time-Remaining (13).
    let mut p = scripted_up();
    let before = p.log.iter().filter(|s| s.dir == ToPeer).count();
    let mut data = 0x5eed_1234u32.to_be_bytes().to_vec();
    data.extend_from_slice(b"MSRASV5.20");
    p.script().send_cp(LCP, 12, 3, &data);
    p.script().send_cp(LCP, 13, 4, &[0, 0, 0, 0, 0, 0, 0, 60]);
    p.settle();
    assert_eq!(p.log.iter().filter(|s| s.dir == ToPeer).count(), before);
    assert_eq!(p.server.lcp_state(), State::Opened);
    let st = p.server.stats();
    assert_eq!((st.malformed, st.protocol_rejects), (0, 0));
}

#[test]
fn identification_before_lcp_opens_is_ignored_too() {
    let peer = scripted(
        Basic {
            speak_first: false,
            ..Basic::default()
        },
        |_, _, _, _| false,
    );
    let mut p = Pair::new(server_config(&[]), peer);
    p.start();
    p.script().send_cp(LCP, 12, 1, b"\0\0\0\0MSRASV5.20");
    p.settle();
    // Only the server's own Configure-Request (at once) and its Ack to nobody: no reply.
    assert!(p.frames(ToPeer, LCP, Some(CODE_REJ)).is_empty());
}

// ---- echo -------------------------------------------------------------------------------

#[test]
fn echo_reply_carries_server_magic_and_fits_peer_mru() {
    let basic = Basic {
        mru: Some(200),
        ..Basic::default()
    };
    let mut p = Pair::new(server_config(&[]), scripted(basic, |_, _, _, _| false));
    p.start();
    assert!(p.run_until(secs(10), |p| p.server_up().is_some()));
    assert_eq!(p.server_up().unwrap().peer_mru, 200);
    let server_magic = option(p.frames(ToPeer, LCP, Some(CONF_REQ))[0].data(), 5).unwrap();

    let mut small = 0x5eed_1234u32.to_be_bytes().to_vec();
    small.extend_from_slice(b"ping");
    p.script().send_cp(LCP, ECHO_REQ, 0x41, &small);
    let mut big = 0x5eed_1234u32.to_be_bytes().to_vec();
    big.extend_from_slice(&[0xab; 1000]);
    p.script().send_cp(LCP, ECHO_REQ, 0x42, &big);
    p.settle();
    let replies = p.frames(ToPeer, LCP, Some(ECHO_REPLY));
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0].id(), 0x41);
    assert_eq!(&replies[0].data()[..4], &server_magic[..]);
    assert_eq!(&replies[0].data()[4..], b"ping");
    assert_eq!(replies[1].id(), 0x42);
    assert_eq!(&replies[1].data()[..4], &server_magic[..]);
    assert!(
        replies[1].info.len() <= 200,
        "{} octets",
        replies[1].info.len()
    );
    assert!(replies[1].data()[4..].iter().all(|&b| b == 0xab));
}

#[test]
fn echo_request_with_our_own_magic_means_loopback() {
    let mut p = scripted_up();
    let server_magic = option(p.frames(ToPeer, LCP, Some(CONF_REQ))[0].data(), 5).unwrap();
    p.script().send_cp(LCP, ECHO_REQ, 1, &server_magic);
    assert!(p.run_until_server_down(secs(30)));
    assert_eq!(p.server_down().unwrap().1, DownReason::Loopback);
}

#[test]
fn keepalive_answered_keeps_link_up() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    assert!(p.run_until_up(secs(10)));
    p.run_for(secs(300));
    assert!(p.server_down().is_none());
    let echoes: Vec<Duration> = p
        .frames(ToPeer, LCP, Some(ECHO_REQ))
        .iter()
        .map(|s| s.at)
        .collect();
    // Every 30 s of quiet.
    assert_eq!(echoes, (1..=10).map(|i| secs(30 * i)).collect::<Vec<_>>());
    assert_eq!(p.frames(ToServer, LCP, Some(ECHO_REPLY)).len(), 10);
    assert_eq!(p.client().stats().echo_replies_sent, 10);
}

#[test]
fn silent_after_up_is_echo_timeout() {
    let cut = Rc::new(Cell::new(false));
    let c2 = cut.clone();
    let mut p = Pair::new(
        server_config(&[AuthProto::ChapMd5]),
        Peer::client(client_config(), 9),
    )
    .with_rule(move |f| {
        if c2.get() && f.dir == ToServer {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.start();
    assert!(p.run_until_up(secs(10)));
    let up = p.elapsed();
    cut.set(true);
    assert!(p.run_until_server_down(secs(600)));
    let (at, reason) = p.server_down().unwrap();
    assert_eq!(reason, DownReason::EchoTimeout);
    // Default: echo every 30 s, 4 failures. The failure is noticed at interval * (failures
    // + 1) = 150 s; the Terminate-Requests (2, 3 s apart) take at most 2 restart times.
    let d = at - up;
    assert!(d >= secs(150) && d <= secs(156), "{d:?}");
    assert_eq!(p.frames(ToPeer, LCP, Some(ECHO_REQ)).len(), 4);
    assert_eq!(
        p.frames(ToPeer, LCP, Some(TERM_REQ))[0].data(),
        b"No answer to echo requests"
    );
}

// ---- terminate --------------------------------------------------------------------------

#[test]
fn admin_close() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    assert!(p.run_until_up(secs(10)));
    let t = p.elapsed();
    let now = p.now;
    p.server.close(now, DownReason::Admin);
    assert_eq!(p.server.phase(), Phase::Terminate);
    assert!(p.run_until(secs(60), |p| p.both_done()));
    let tr = p.frames(ToPeer, LCP, Some(TERM_REQ));
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0].data(), b"Administratively closed");
    assert_eq!(p.frames(ToServer, LCP, Some(TERM_ACK)).len(), 1);
    assert_eq!(p.server_down(), Some((t, DownReason::Admin)));
    // The client waits one restart time before it calls the link finished (RFC 1661 3.7).
    assert_eq!(
        p.peer_down(),
        Some((t + secs(3), DownReason::PeerTerminated))
    );
    assert_eq!(p.server.phase(), Phase::Dead);
    assert!(!p.server_send_ip(&icmp_echo(SERVER_IP, PEER_IP, false, 1, b"")));
}

#[test]
fn peer_terminates() {
    let mut p = client_pair(&[AuthProto::ChapMd5], client_config());
    assert!(p.run_until_up(secs(10)));
    let t = p.elapsed();
    let now = p.now;
    p.client().close(now);
    assert!(p.run_until(secs(60), |p| p.both_done()));
    assert_eq!(
        p.frames(ToServer, LCP, Some(TERM_REQ))[0].data(),
        b"User request"
    );
    assert_eq!(p.frames(ToPeer, LCP, Some(TERM_ACK)).len(), 1);
    assert_eq!(
        p.server_down(),
        Some((t + secs(3), DownReason::PeerTerminated))
    );
    assert_eq!(p.peer_down(), Some((t, DownReason::Admin)));
}

#[test]
fn carrier_loss() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    assert!(p.run_until_up(secs(10)));
    p.run_for(secs(7));
    let frames_before = p.log.len();
    let now = p.now;
    p.server.lower_down(now);
    p.settle();
    assert_eq!(p.server_down(), Some((secs(7), DownReason::LostCarrier)));
    assert!(p.server.is_done());
    assert_eq!(p.server.poll_timeout(), None);
    assert_eq!(p.log.len(), frames_before, "nothing is sent on a dead line");
    // Carrier loss while negotiating, too.
    let mut p = Pair::new(server_config(&[AuthProto::Pap]), Peer::Silent);
    p.start();
    p.run_for(secs(4));
    let now = p.now;
    p.server.lower_down(now);
    p.settle();
    assert_eq!(p.server_down(), Some((secs(4), DownReason::LostCarrier)));
}

// ---- first-request delay ----------------------------------------------------------------

#[test]
fn first_request_delay_waits_for_a_quiet_peer() {
    let mut cfg = server_config(&[AuthProto::Pap]);
    cfg.first_request_delay = secs(1);
    let mut p = Pair::new(cfg, Peer::Silent);
    p.start();
    assert!(p.run_until(secs(5), |p| !p.log.is_empty()));
    assert_eq!(p.log[0].at, secs(1));
    assert!(p.log[0].is(LCP, CONF_REQ));
}

#[test]
fn first_request_delay_skipped_when_peer_speaks_first() {
    let mut cfg = server_config(&[AuthProto::Pap]);
    cfg.first_request_delay = secs(1);
    let mut p = Pair::new(cfg, Peer::client(client_config(), 2));
    p.start();
    assert!(p.run_until_up(secs(10)));
    assert_eq!(p.server_up_at(), Some(Duration::ZERO));
    let first = &p.frames(ToPeer, LCP, Some(CONF_REQ))[0];
    assert_eq!(first.at, Duration::ZERO);
    // The client spoke first.
    assert_eq!(p.log[0].dir, ToServer);
}

// ---- session limits ---------------------------------------------------------------------

#[test]
fn session_timeout_from_grant() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    p.auth = AuthPolicy::granting(Grant {
        session_timeout: Some(secs(60)),
        ..Grant::new(PEER_IP)
    });
    assert!(p.run_until_up(secs(10)));
    assert!(p.run_until_server_down(secs(600)));
    assert_eq!(
        p.server_down(),
        Some((secs(60), DownReason::SessionTimeout))
    );
    assert_eq!(
        p.frames(ToPeer, LCP, Some(TERM_REQ))[0].data(),
        b"Session time limit reached"
    );
    assert!(p.run_until(secs(600), |p| p.peer_down().is_some()));
    assert_eq!(p.peer_down(), Some((secs(63), DownReason::PeerTerminated)));
}

#[test]
fn session_timeout_changed_while_up_counts_from_the_grant() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    p.auth = AuthPolicy::granting(Grant {
        session_timeout: Some(secs(600)),
        ..Grant::new(PEER_IP)
    });
    assert!(p.run_until_up(secs(10)));
    let granted = p.server_up_at().expect("up");
    p.run_for(secs(20));
    // A CoA: 90 s from the grant, not from now.
    let now = p.now;
    assert!(p.server.set_session_timeout(now, Some(secs(90))));
    assert!(p.run_until_server_down(secs(600)));
    let (at, reason) = p.server_down().expect("down");
    assert_eq!(reason, DownReason::SessionTimeout);
    assert!(
        at >= granted + secs(89) && at <= granted + secs(91),
        "ended at {at:?}, granted at {granted:?}"
    );
}

#[test]
fn session_timeout_already_passed_ends_the_session_at_once() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    assert!(p.run_until_up(secs(10)));
    p.run_for(secs(30));
    let now = p.now;
    let t = now - p.base;
    assert!(p.server.set_session_timeout(now, Some(secs(5))));
    assert!(p.server.poll_timeout().is_some_and(|t| t <= now));
    assert!(p.run_until_server_down(secs(600)));
    assert_eq!(p.server_down(), Some((t, DownReason::SessionTimeout)));
}

#[test]
fn idle_timeout_set_while_up_counts_from_the_last_packet() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    assert!(p.run_until_up(secs(10)));
    p.run_for(secs(5));
    assert!(p.client_send_ip(&icmp_echo(PEER_IP, SERVER_IP, false, 1, b"x")));
    p.run_for(secs(1));
    let now = p.now;
    let last = now - p.base - secs(1);
    assert!(p.server.set_idle_timeout(now, Some(secs(20))));
    assert!(p.run_until_server_down(secs(600)));
    let (at, reason) = p.server_down().expect("down");
    assert_eq!(reason, DownReason::IdleTimeout);
    assert!(
        at >= last + secs(19) && at <= last + secs(21),
        "ended at {at:?}, last packet at {last:?}"
    );
    // Removing the limit before authorisation is refused.
    let mut q = client_pair(&[AuthProto::Pap], client_config());
    let now = q.now;
    assert!(!q.server.set_idle_timeout(now, Some(secs(5))));
}

#[test]
fn session_timeout_cannot_be_set_before_authorisation() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    let now = p.now;
    assert!(!p.server.set_session_timeout(now, Some(secs(5))));
}

#[test]
fn idle_timeout_from_grant() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    p.auth = AuthPolicy::granting(Grant {
        idle_timeout: Some(secs(20)),
        ..Grant::new(PEER_IP)
    });
    assert!(p.run_until_up(secs(10)));
    p.run_for(secs(5));
    assert!(p.client_send_ip(&icmp_echo(PEER_IP, SERVER_IP, false, 1, b"x")));
    p.run_for(secs(7));
    assert!(p.server_send_ip(&icmp_echo(SERVER_IP, PEER_IP, false, 2, b"y")));
    assert!(p.run_until_server_down(secs(600)));
    // Traffic both ways counts; echoes do not.
    assert_eq!(p.server_down(), Some((secs(32), DownReason::IdleTimeout)));
    assert_eq!(
        p.frames(ToPeer, LCP, Some(TERM_REQ))[0].data(),
        b"Idle timeout"
    );
}

#[test]
fn config_timeouts_apply_without_grant_limits() {
    let mut cfg = server_config(&[AuthProto::Pap]);
    cfg.session_timeout = Some(secs(45));
    let mut p = Pair::new(cfg, Peer::client(client_config(), 8));
    p.start();
    assert!(p.run_until_up(secs(10)));
    assert!(p.run_until_server_down(secs(600)));
    assert_eq!(
        p.server_down(),
        Some((secs(45), DownReason::SessionTimeout))
    );
}

// ---- misc -------------------------------------------------------------------------------

#[test]
fn ip_before_ipcp_is_discarded_and_oversize_dropped() {
    let mut p = client_pair(&[AuthProto::Pap], client_config());
    assert!(!p.server_send_ip(&[0x45; 20]), "not up yet");
    assert!(p.run_until_up(secs(10)));
    assert!(!p.server_send_ip(&[0x45; 1501]), "over the peer's MRU");
    assert_eq!(p.server.stats().tx_dropped, 1);
    assert!(p.server_send_ip(&[0x45; 1500]));
    p.settle();
    assert_eq!(p.peer_ip.len(), 1);
}

#[test]
fn names_of_protocols() {
    assert_eq!(protocol::name(IPV6CP), "IPV6CP");
    assert_eq!(
        DownReason::NegotiationFailed(IPCP).to_string(),
        "negotiation-failed (IPCP)"
    );
}
