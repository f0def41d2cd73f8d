use super::*;
use proptest::prelude::*;

const PEER: &str = "10.0.0.5:5060";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn request(method: &str, branch: &str) -> Message {
    let s = format!(
        "{method} sip:100@nas.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch={branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:line1@nas.example>;tag=abc\r\n\
To: <sip:100@nas.example>\r\n\
Call-ID: call-1@10.0.0.5\r\n\
CSeq: 1 {method}\r\n\
Route: <sip:proxy.example;lr>\r\n\
Content-Length: 0\r\n\r\n"
    );
    Message::parse(s.as_bytes()).unwrap()
}

fn response(req: &Message, status: u16) -> Message {
    Message::response_to(req, status, "Reason", Some("totag"))
}

fn drain(l: &mut TransactionLayer) -> Vec<(SocketAddr, Message)> {
    std::iter::from_fn(|| l.poll_transmit())
        .map(|(a, b)| (a, Message::parse(&b).unwrap()))
        .collect()
}

fn events(l: &mut TransactionLayer) -> Vec<Event> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

fn status(m: &Message) -> u16 {
    match m {
        Message::Response { status, .. } => *status,
        Message::Request { .. } => 0,
    }
}

/// Runs the clock to `end` by following poll_timeout; returns the offsets (ms) at which
/// datagrams were sent.
fn run_until(l: &mut TransactionLayer, t0: Instant, end: Duration) -> Vec<u128> {
    let mut sent = Vec::new();
    while let Some(at) = l.poll_timeout() {
        if at > t0 + end {
            break;
        }
        l.handle_timeout(at);
        for _ in drain(l) {
            sent.push((at - t0).as_millis());
        }
    }
    sent
}

/// Retransmissions doubling from T1 and capped at T2 (ms after t0), over 32 s.
const T2_CAPPED: &[u128] = &[
    500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
];

/// Over 40 s: retransmissions at exactly `expected` ms, then a timeout that ends the
/// transaction and leaves the layer empty.
fn retransmits_then_times_out(
    l: &mut TransactionLayer,
    t0: Instant,
    id: TransactionId,
    expected: &[u128],
) {
    let sent = run_until(l, t0, Duration::from_secs(40));
    assert_eq!(sent, expected);
    assert_eq!(events(l), vec![Event::Timeout(id), Event::Terminated(id)]);
    assert!(l.is_empty());
}

#[test]
fn timer_a_doubles_and_timer_b_times_out() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let id = l
        .send_request(t0, request("INVITE", "z9hG4bKa"), peer())
        .unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    retransmits_then_times_out(&mut l, t0, id, &[500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn timer_e_capped_at_t2_and_timer_f_times_out() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let id = l
        .send_request(t0, request("OPTIONS", "z9hG4bKe"), peer())
        .unwrap();
    drain(&mut l);
    retransmits_then_times_out(&mut l, t0, id, T2_CAPPED);
}

#[test]
fn timer_e_goes_to_t2_after_provisional_then_completes_with_timer_k() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bKr");
    let id = l.send_request(t0, req.clone(), peer()).unwrap();
    drain(&mut l);
    l.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(drain(&mut l).len(), 1);
    let r = l.handle_incoming(t0 + Duration::from_millis(600), response(&req, 100), peer());
    assert!(matches!(r, Incoming::Response(i, _) if i == id));
    assert_eq!(
        l.state(id),
        Some((Kind::ClientNonInvite, State::Proceeding))
    );
    // Next retransmission at 1.5 s as scheduled, then every T2.
    let sent = run_until(&mut l, t0, Duration::from_millis(10_000));
    assert_eq!(sent, vec![1500, 5500, 9500]);
    let t = t0 + Duration::from_secs(10);
    let r = l.handle_incoming(t, response(&req, 200), peer());
    assert!(matches!(r, Incoming::Response(i, _) if i == id));
    // A retransmitted 200 is absorbed in Completed.
    assert_eq!(
        l.handle_incoming(t, response(&req, 200), peer()),
        Incoming::Absorbed
    );
    assert_eq!(l.poll_timeout(), Some(t + Duration::from_secs(5)));
    l.handle_timeout(t + Duration::from_secs(5));
    assert_eq!(events(&mut l), vec![Event::Terminated(id)]);
    assert!(l.is_empty());
    assert!(drain(&mut l).is_empty());
}

#[test]
fn client_invite_non_2xx_gets_ack_with_same_branch() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKinv");
    let id = l.send_request(t0, inv.clone(), peer()).unwrap();
    drain(&mut l);
    let r = l.handle_incoming(t0, response(&inv, 180), peer());
    assert!(matches!(r, Incoming::Response(..)));
    assert_eq!(l.state(id), Some((Kind::ClientInvite, State::Proceeding)));
    // Timer A and B stop in Proceeding; only the Timer C-like bound is left.
    assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(180)));
    let busy = response(&inv, 486);
    let r = l.handle_incoming(t0, busy.clone(), peer());
    assert!(matches!(r, Incoming::Response(i, _) if i == id));
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    let (to, ack) = &out[0];
    assert_eq!(*to, peer());
    let Message::Request { method, uri, .. } = ack else {
        panic!("not a request")
    };
    assert_eq!(*method, Method::Ack);
    assert_eq!(uri, "sip:100@nas.example");
    assert_eq!(ack.via().unwrap()[0].branch(), Some("z9hG4bKinv"));
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    assert_eq!(ack.to().unwrap().tag(), Some("totag"));
    assert_eq!(ack.headers().get("Route"), Some("<sip:proxy.example;lr>"));
    // A retransmitted 486 gets the ACK again, absorbed.
    assert_eq!(l.handle_incoming(t0, busy, peer()), Incoming::Absorbed);
    assert_eq!(drain(&mut l).len(), 1);
    // Timer D.
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(events(&mut l), vec![Event::Terminated(id)]);
    assert!(l.is_empty());
}

#[test]
fn client_invite_2xx_terminates_and_retransmission_is_stray() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKok");
    let id = l.send_request(t0, inv.clone(), peer()).unwrap();
    drain(&mut l);
    let r = l.handle_incoming(t0, response(&inv, 200), peer());
    assert!(matches!(r, Incoming::Response(i, _) if i == id));
    assert!(
        drain(&mut l).is_empty(),
        "no ACK for 2xx from the transaction"
    );
    assert_eq!(events(&mut l), vec![Event::Terminated(id)]);
    assert!(matches!(
        l.handle_incoming(t0, response(&inv, 200), peer()),
        Incoming::Stray(_)
    ));
    assert!(l.is_empty());
}

#[test]
fn server_invite_retransmission_resends_last_response() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKs1");
    let Incoming::NewRequest(id, _) = l.handle_incoming(t0, inv.clone(), peer()) else {
        panic!("not new")
    };
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0].1), 100);
    assert_eq!(
        l.handle_incoming(t0, inv.clone(), peer()),
        Incoming::Absorbed
    );
    assert_eq!(status(&drain(&mut l)[0].1), 100);
    l.respond(t0, id, response(&inv, 180)).unwrap();
    assert_eq!(status(&drain(&mut l)[0].1), 180);
    assert_eq!(
        l.handle_incoming(t0, inv.clone(), peer()),
        Incoming::Absorbed
    );
    assert_eq!(status(&drain(&mut l)[0].1), 180);
    l.respond(t0, id, response(&inv, 486)).unwrap();
    assert_eq!(status(&drain(&mut l)[0].1), 486);
    assert_eq!(l.handle_incoming(t0, inv, peer()), Incoming::Absorbed);
    assert_eq!(status(&drain(&mut l)[0].1), 486);
}

#[test]
fn server_invite_timer_g_until_ack_then_timer_i() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKg");
    let Incoming::NewRequest(id, _) = l.handle_incoming(t0, inv.clone(), peer()) else {
        panic!("not new")
    };
    l.respond(t0, id, response(&inv, 404)).unwrap();
    drain(&mut l);
    let sent = run_until(&mut l, t0, Duration::from_millis(8000));
    assert_eq!(sent, vec![500, 1500, 3500, 7500]);
    let t = t0 + Duration::from_millis(8000);
    let mut ack = request("ACK", "z9hG4bKg");
    ack.headers_mut()
        .set("To", response(&inv, 404).headers().get("To").unwrap());
    assert_eq!(
        l.handle_incoming(t, ack.clone(), peer()),
        Incoming::Absorbed
    );
    assert_eq!(l.state(id), Some((Kind::ServerInvite, State::Confirmed)));
    // No more retransmissions; ACK retransmissions absorbed; Timer I = T4.
    assert_eq!(l.poll_timeout(), Some(t + Duration::from_secs(5)));
    assert_eq!(l.handle_incoming(t, ack, peer()), Incoming::Absorbed);
    let sent = run_until(&mut l, t0, Duration::from_secs(60));
    assert!(sent.is_empty());
    assert_eq!(events(&mut l), vec![Event::Terminated(id)]);
    assert!(l.is_empty());
}

#[test]
fn server_invite_timer_h_without_ack() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKh");
    let Incoming::NewRequest(id, _) = l.handle_incoming(t0, inv.clone(), peer()) else {
        panic!("not new")
    };
    l.respond(t0, id, response(&inv, 503)).unwrap();
    drain(&mut l);
    // G: 0.5, 1.5, 3.5, then every T2 until H at 32 s.
    retransmits_then_times_out(&mut l, t0, id, T2_CAPPED);
}

#[test]
fn server_invite_2xx_terminates_at_once_and_ack_is_stray() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bK2xx");
    let Incoming::NewRequest(id, _) = l.handle_incoming(t0, inv.clone(), peer()) else {
        panic!("not new")
    };
    l.respond(t0, id, response(&inv, 200)).unwrap();
    assert_eq!(status(&drain(&mut l)[1].1), 200);
    assert_eq!(events(&mut l), vec![Event::Terminated(id)]);
    assert!(l.is_empty());
    assert!(matches!(
        l.handle_incoming(t0, request("ACK", "z9hG4bKother"), peer()),
        Incoming::Stray(_)
    ));
    assert_eq!(
        l.respond(t0, id, response(&inv, 200)),
        Err(Error::UnknownTransaction)
    );
}

#[test]
fn server_non_invite_timer_j_and_absorption() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let reg = request("REGISTER", "z9hG4bKnr");
    let Incoming::NewRequest(id, _) = l.handle_incoming(t0, reg.clone(), peer()) else {
        panic!("not new")
    };
    assert!(drain(&mut l).is_empty(), "no 100 for non-INVITE");
    // Trying: retransmission absorbed silently.
    assert_eq!(
        l.handle_incoming(t0, reg.clone(), peer()),
        Incoming::Absorbed
    );
    assert!(drain(&mut l).is_empty());
    l.respond(t0, id, response(&reg, 401)).unwrap();
    drain(&mut l);
    assert_eq!(
        l.handle_incoming(t0, reg.clone(), peer()),
        Incoming::Absorbed
    );
    assert_eq!(status(&drain(&mut l)[0].1), 401);
    assert_eq!(
        l.respond(t0, id, response(&reg, 200)),
        Err(Error::WrongState)
    );
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(events(&mut l), vec![Event::Terminated(id)]);
    assert!(l.is_empty());
}

#[test]
fn cancel_is_own_transaction_and_finds_its_invite() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKc");
    let Incoming::NewRequest(inv_id, _) = l.handle_incoming(t0, inv, peer()) else {
        panic!("not new")
    };
    let cancel = request("CANCEL", "z9hG4bKc");
    let Incoming::NewRequest(c_id, c) = l.handle_incoming(t0, cancel, peer()) else {
        panic!("not new")
    };
    assert_ne!(inv_id, c_id);
    assert_eq!(l.cancel_target(&c), Some(inv_id));
    assert_eq!(l.cancel_target(&request("CANCEL", "z9hG4bKx")), None);
}

#[test]
fn response_goes_to_sent_by_port_without_rport() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let mut inv = request("OPTIONS", "z9hG4bKnp");
    inv.headers_mut()
        .set("Via", "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKnp");
    let from: SocketAddr = "10.0.0.5:40000".parse().unwrap();
    let Incoming::NewRequest(id, _) = l.handle_incoming(t0, inv.clone(), from) else {
        panic!("not new")
    };
    l.respond(t0, id, response(&inv, 200)).unwrap();
    assert_eq!(drain(&mut l)[0].0, "10.0.0.5:5070".parse().unwrap());
}

#[test]
fn full_layer_answers_503_and_counts() {
    let mut l = TransactionLayer::new(Config {
        max_transactions: 2,
        ..Config::default()
    });
    let t0 = Instant::now();
    for b in ["z9hG4bK1", "z9hG4bK2"] {
        assert!(matches!(
            l.handle_incoming(t0, request("OPTIONS", b), peer()),
            Incoming::NewRequest(..)
        ));
    }
    assert_eq!(
        l.handle_incoming(t0, request("OPTIONS", "z9hG4bK3"), peer()),
        Incoming::Absorbed
    );
    assert_eq!(status(&drain(&mut l)[0].1), 503);
    assert_eq!(l.stats().overloaded, 1);
    assert_eq!(l.len(), 2);
    assert_eq!(
        l.send_request(t0, request("OPTIONS", "z9hG4bK4"), peer()),
        Err(Error::Full)
    );
    // Unanswered server transactions time out (64·T1) and are removed.
    l.handle_timeout(t0 + Duration::from_secs(32));
    assert!(l.is_empty());
}

#[test]
fn many_transactions_do_not_accumulate() {
    let mut l = TransactionLayer::default();
    let mut now = Instant::now();
    for i in 0..2000 {
        let req = request("REGISTER", &format!("z9hG4bK{i}"));
        let Incoming::NewRequest(id, _) = l.handle_incoming(now, req.clone(), peer()) else {
            panic!("not new")
        };
        l.respond(now, id, response(&req, 200)).unwrap();
        now += Duration::from_millis(100);
        l.handle_timeout(now);
        drain(&mut l);
        events(&mut l);
    }
    // Timer J keeps at most 32 s worth (320 transactions at 10/s).
    assert!(l.len() <= 321, "{}", l.len());
    l.handle_timeout(now + Duration::from_secs(33));
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn send_request_errors() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKd");
    l.send_request(t0, req.clone(), peer()).unwrap();
    assert_eq!(
        l.send_request(t0, req.clone(), peer()),
        Err(Error::Duplicate)
    );
    assert_eq!(
        l.send_request(t0, request("ACK", "z9hG4bKa"), peer()),
        Err(Error::AckNotTransactional)
    );
    assert_eq!(
        l.send_request(t0, response(&req, 200), peer()),
        Err(Error::NotARequest)
    );
}

proptest! {
    #[test]
    fn never_panics(ops in proptest::collection::vec((0u8..6, 0u8..4, 100u16..700, 0u64..40_000), 0..60)) {
        let mut l = TransactionLayer::new(Config { max_transactions: 5, ..Config::default() });
        let t0 = Instant::now();
        let methods = ["INVITE", "ACK", "OPTIONS", "CANCEL"];
        for (op, b, st, ms) in ops {
            let now = t0 + Duration::from_millis(ms);
            let req = request(methods[(b % 4) as usize], &format!("z9hG4bK{}", b % 3));
            match op {
                0 => { l.handle_incoming(now, req, peer()); }
                1 => { let _ = l.send_request(now, req, peer()); }
                2 => { l.handle_incoming(now, response(&req, st), peer()); }
                3 => { let _ = l.respond(now, TransactionId(u64::from(b)), response(&req, st)); }
                _ => l.handle_timeout(now),
            }
            while l.poll_transmit().is_some() {}
            while l.poll_event().is_some() {}
        }
        l.handle_timeout(t0 + Duration::from_secs(400));
        prop_assert!(l.is_empty());
    }
}

#[test]
fn client_invite_proceeding_is_bounded_and_cancel_is_separate() {
    let mut l = TransactionLayer::default();
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKp");
    let id = l.send_request(t0, inv.clone(), peer()).unwrap();
    let cancel = request("CANCEL", "z9hG4bKp");
    let cid = l.send_request(t0, cancel.clone(), peer()).unwrap();
    assert_ne!(id, cid);
    l.handle_incoming(t0, response(&inv, 180), peer());
    let r = l.handle_incoming(t0, response(&cancel, 200), peer());
    assert!(matches!(r, Incoming::Response(i, _) if i == cid));
    assert_eq!(l.state(id), Some((Kind::ClientInvite, State::Proceeding)));
    l.handle_timeout(t0 + Duration::from_secs(180));
    let ev = events(&mut l);
    assert!(ev.contains(&Event::Timeout(id)));
    assert!(ev.contains(&Event::Terminated(id)));
    assert!(ev.contains(&Event::Terminated(cid)));
    assert!(l.is_empty());
}
