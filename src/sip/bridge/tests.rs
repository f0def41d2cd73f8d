//! The bridge on a virtual clock, with scripted phones: registration, routing, hunting,
//! CANCEL, BYE, re-INVITE, refusals, qualify, and the PPP-session links.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Bridge, BridgeEvent, LineState, Now};
use crate::sip::config::{Account, Cidr, HuntGroup, SipConfig};
use crate::sip::dialplan::{MatchOp, Rule, Target};
use crate::sip::digest;
use crate::sip::message::Message;

const NAS: &str = "10.0.0.1:5060";
const CALLER: &str = "10.0.0.50:5070";
const SDP: &str = "v=0\r\no=caller 1 1 IN IP4 10.0.0.50\r\ns=-\r\nc=IN IP4 10.0.0.50\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn line_addr(i: usize) -> SocketAddr {
    addr(&format!("10.0.0.{}:5060", 100 + i))
}

fn account(name: &str, ext: &str, port: Option<&str>) -> Account {
    Account {
        name: name.into(),
        secret: format!("{name}-pw"),
        extension: Some(ext.into()),
        aliases: vec![],
        port: port.map(str::to_string),
    }
}

fn config() -> SipConfig {
    SipConfig {
        listen: addr(NAS),
        accounts: vec![
            account("line1", "201", Some("m0")),
            account("line2", "202", Some("m1")),
            account("line3", "203", Some("m2")),
            account("phone", "300", None),
        ],
        groups: vec![HuntGroup {
            name: "modems".into(),
            lines: vec!["line1".into(), "line2".into(), "line3".into()],
        }],
        rules: vec![
            Rule::new(
                0,
                MatchOp::Regex,
                "^555",
                Target::HuntGroup("modems".into()),
            )
            .with_attrs("pool=dialup"),
            Rule::new(
                1,
                MatchOp::Regex,
                "^9(20[0-9])$",
                Target::Account("line1".into()),
            )
            .with_subst(Some("^9(20[0-9])$"), Some("\\1")),
        ],
        allow: vec![Cidr::parse("10.0.0.0/24").unwrap()],
        ..SipConfig::default()
    }
}

struct Rig {
    b: Bridge,
    t0: Instant,
    now: Instant,
    /// Datagrams sent, by destination.
    out: HashMap<SocketAddr, Vec<Message>>,
    events: Vec<BridgeEvent>,
    cseq: u32,
}

impl Rig {
    fn new() -> Rig {
        let mut b = Bridge::new(config(), addr(NAS), [7; 32]).unwrap();
        for p in ["m0", "m1", "m2"] {
            b.set_port_state(p, LineState::Free);
        }
        let t0 = Instant::now();
        Rig {
            b,
            t0,
            now: t0,
            out: HashMap::new(),
            events: vec![],
            cseq: 0,
        }
    }

    fn at(&self) -> Now {
        Now {
            at: self.now,
            unix: 1_800_000_000 + (self.now - self.t0).as_secs(),
        }
    }

    fn pump(&mut self) {
        while let Some((to, bytes)) = self.b.poll_transmit() {
            let m = Message::parse_with_limit(&bytes, 65507).unwrap_or_else(|_| {
                // A 400 to a request without Call-ID cannot have one either: keep the status.
                let text = String::from_utf8_lossy(&bytes);
                let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok());
                Message::Response {
                    status: code.unwrap_or_else(|| panic!("the bridge sent junk: {text:?}")),
                    reason: String::new(),
                    headers: Default::default(),
                    body: vec![],
                }
            });
            self.out.entry(to).or_default().push(m);
        }
        while let Some(e) = self.b.poll_event() {
            self.events.push(e);
        }
    }

    fn send(&mut self, from: SocketAddr, text: &str) {
        let now = self.at();
        self.b.handle_datagram(now, from, text.as_bytes());
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.b.poll_timeout(self.now).filter(|t| *t <= end) {
            self.now = t.max(self.now);
            let now = self.at();
            self.b.handle_timeout(now);
            self.pump();
        }
        self.now = end;
    }

    /// Messages sent to `to` since the last call.
    fn take(&mut self, to: SocketAddr) -> Vec<Message> {
        self.out.remove(&to).unwrap_or_default()
    }

    fn statuses(&mut self, to: SocketAddr) -> Vec<u16> {
        self.take(to).iter().filter_map(status).collect()
    }

    fn register(&mut self, name: &str, pw: &str, from: SocketAddr, expires: u32) -> u16 {
        let base = |auth: &str, cseq: u32| {
            format!(
                "REGISTER sip:10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKr{cseq}{name}{expires};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{name}@10.0.0.1>;tag=r{name}\r\nTo: <sip:{name}@10.0.0.1>\r\nCall-ID: reg-{name}@{from}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{name}@{from}>\r\nExpires: {expires}\r\nUser-Agent: test-ata\r\n{auth}Content-Length: 0\r\n\r\n"
            )
        };
        self.cseq += 2;
        let seq = self.cseq;
        self.send(from, &base("", seq));
        let r = self.take(from).pop().unwrap();
        assert_eq!(status(&r), Some(401));
        let ch = r.headers().get("WWW-Authenticate").unwrap().to_string();
        let p = digest::parse_authorization(&ch).unwrap();
        let nonce = &p.iter().find(|(n, _)| n == "nonce").unwrap().1;
        let ha1 = digest::ha1(name, "nasd", pw);
        let resp =
            digest::response_auth(&ha1, nonce, "00000001", "abc", "REGISTER", "sip:10.0.0.1");
        let auth = format!(
            "Authorization: Digest username=\"{name}\", realm=\"nasd\", nonce=\"{nonce}\", uri=\"sip:10.0.0.1\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abc\"\r\n"
        );
        self.send(from, &base(&auth, seq + 1));
        status(&self.take(from).pop().unwrap()).unwrap()
    }

    fn register_lines(&mut self) {
        for i in 1..=3 {
            let name = format!("line{i}");
            assert_eq!(
                self.register(&name, &format!("{name}-pw"), line_addr(i), 3600),
                200
            );
        }
    }

    fn invite(&mut self, number: &str, call_id: &str, branch: &str) {
        let text = format!(
            "INVITE sip:{number}@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:5550001@10.0.0.50>;tag=a1\r\nTo: <sip:{number}@10.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        );
        self.send(addr(CALLER), &text);
    }

    /// The line answers the INVITE it got with `code` (and SDP for 2xx).
    fn answer(&mut self, line: SocketAddr, inv: &Message, code: u16) {
        let mut r = Message::response_to(inv, code, "X", Some("lt"));
        r.headers_mut().push("Contact", format!("<sip:l@{line}>"));
        if code == 200 {
            r.headers_mut().push("Content-Type", "application/sdp");
            if let Message::Response { body, .. } = &mut r {
                *body = b"v=0\r\no=line 2 2 IN IP4 10.0.0.101\r\n".to_vec();
            }
        }
        let bytes = r.to_bytes();
        let now = self.at();
        self.b.handle_datagram(now, line, &bytes);
        self.pump();
    }

    /// A request inside the dialog of `resp` (a response we got), from `from`.
    fn in_dialog(
        &mut self,
        from: SocketAddr,
        method: &str,
        call_id: &str,
        from_hdr: &str,
        to_hdr: &str,
        cseq: u32,
    ) {
        let text = format!(
            "{method} sip:nasd@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{method}{cseq}x;rport\r\nMax-Forwards: 70\r\nFrom: {from_hdr}\r\nTo: {to_hdr}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        );
        self.send(from, &text);
    }

    fn records(&self) -> Vec<crate::accounting::CallRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                BridgeEvent::Record(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }
}

fn status(m: &Message) -> Option<u16> {
    match m {
        Message::Response { status, .. } => Some(*status),
        _ => None,
    }
}

fn method(m: &Message) -> Option<String> {
    match m {
        Message::Request { method, .. } => Some(method.to_string()),
        _ => None,
    }
}

fn invites(msgs: &[Message]) -> Vec<Message> {
    msgs.iter()
        .filter(|m| method(m).as_deref() == Some("INVITE"))
        .cloned()
        .collect()
}

#[test]
fn register_challenge_accept_refuse_and_unregister() {
    let mut r = Rig::new();
    assert_eq!(r.register("line1", "line1-pw", line_addr(1), 600), 200);
    assert_eq!(r.register("line2", "wrong", line_addr(2), 600), 403);
    assert_eq!(r.register("nobody", "x", line_addr(2), 600), 403);
    let regs = r.b.registrations(r.now);
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].account, "line1");
    assert_eq!(regs[0].port.as_deref(), Some("m0"));
    assert_eq!(regs[0].user_agent.as_deref(), Some("test-ata"));
    assert!(regs[0].expires_in > 590);
    assert_eq!(r.register("line1", "line1-pw", line_addr(1), 0), 200);
    assert!(r.b.registrations(r.now).is_empty());
    assert_eq!(r.b.stats().auth_failures, 2);
}

#[test]
fn expired_registration_stops_routing() {
    let mut r = Rig::new();
    assert_eq!(r.register("phone", "phone-pw", line_addr(9), 60), 200);
    r.advance(Duration::from_secs(61));
    assert!(r.b.registrations(r.now).is_empty());
    r.invite("300", "c-exp", "e1");
    assert_eq!(r.statuses(addr(CALLER)), vec![100, 480]);
    assert_eq!(r.records()[0].disposition.as_deref(), Some("unavailable"));
}

#[test]
fn answered_call_is_bridged_and_bye_relayed() {
    let mut r = Rig::new();
    r.register_lines();
    r.invite("5551234", "call-1", "i1");
    assert_eq!(r.statuses(addr(CALLER)), vec![100]);
    let to_line = invites(&r.take(line_addr(1)));
    assert_eq!(to_line.len(), 1);
    let inv = &to_line[0];
    // A new dialog, the caller's SDP unchanged (direct media), the caller's number.
    assert_ne!(inv.call_id(), Some("call-1"));
    assert_eq!(inv.body(), SDP.as_bytes());
    assert_eq!(
        inv.from().unwrap().sip_uri().unwrap().user.as_deref(),
        Some("5550001")
    );
    assert_eq!(inv.max_forwards(), Some(69));
    r.answer(line_addr(1), inv, 180);
    assert_eq!(r.statuses(addr(CALLER)), vec![180]);
    r.answer(line_addr(1), inv, 200);
    let acks: Vec<_> = r.take(line_addr(1));
    assert_eq!(
        acks.iter().filter_map(method).collect::<Vec<_>>(),
        vec!["ACK"]
    );
    let ok = r.take(addr(CALLER)).pop().unwrap();
    assert_eq!(status(&ok), Some(200));
    assert!(ok.body().starts_with(b"v=0\r\no=line"));
    assert!(r.events.iter().any(|e| matches!(e, BridgeEvent::Answered { port, caller, .. } if port == "m0" && caller == "5550001")));
    assert_eq!(r.b.caller_on_port("m0").as_deref(), Some("5550001"));
    assert_eq!(r.b.calls()[0].state, "answered");
    // No ACK yet: the 200 is repeated.
    r.advance(Duration::from_millis(600));
    assert_eq!(r.statuses(addr(CALLER)), vec![200]);
    let to_hdr = ok.headers().get("To").unwrap().to_string();
    let from_hdr = "\"Alice\" <sip:5550001@10.0.0.50>;tag=a1";
    r.in_dialog(addr(CALLER), "ACK", "call-1", from_hdr, &to_hdr, 1);
    r.advance(Duration::from_secs(5));
    assert!(
        r.statuses(addr(CALLER)).is_empty(),
        "the ACK stops the repeats"
    );
    r.in_dialog(addr(CALLER), "BYE", "call-1", from_hdr, &to_hdr, 2);
    assert_eq!(r.statuses(addr(CALLER)), vec![200]);
    let bye = r.take(line_addr(1));
    assert_eq!(
        bye.iter().filter_map(method).collect::<Vec<_>>(),
        vec!["BYE"]
    );
    assert_eq!(bye[0].call_id(), inv.call_id());
    let rec = r.records();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].disposition.as_deref(), Some("answered"));
    assert_eq!(rec[0].line.as_deref(), Some("line1"));
    assert_eq!(rec[0].port.as_deref(), Some("m0"));
    assert_eq!(rec[0].duration_s, Some(5));
    // The caller hung up: nasd ends the PPP session on the line.
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, BridgeEvent::Ended { port, .. } if port == "m0"))
    );
    assert!(r.b.calls().is_empty());
}

#[test]
fn hunting_skips_busy_and_unregistered_lines_and_moves_on_486() {
    let mut r = Rig::new();
    r.register_lines();
    r.b.set_port_state("m0", LineState::Busy);
    r.invite("5551234", "call-h", "h1");
    assert!(
        invites(&r.take(line_addr(1))).is_empty(),
        "line1's modem is in a PPP session"
    );
    let inv2 = invites(&r.take(line_addr(2))).pop().unwrap();
    r.answer(line_addr(2), &inv2, 486);
    let inv3 = invites(&r.take(line_addr(3))).pop().unwrap();
    r.answer(line_addr(3), &inv3, 200);
    assert_eq!(r.statuses(addr(CALLER)), vec![100, 200]);
    assert_eq!(r.b.calls()[0].line.as_deref(), Some("line3"));
    assert_eq!(r.b.calls()[0].attempts, 2);
}

#[test]
fn all_lines_busy_is_486_and_unknown_number_404() {
    let mut r = Rig::new();
    r.register_lines();
    for p in ["m0", "m1"] {
        r.b.set_port_state(p, LineState::Busy);
    }
    r.b.set_port_state("m2", LineState::Down);
    r.invite("5551234", "call-b", "b1");
    assert_eq!(r.statuses(addr(CALLER)), vec![100, 486]);
    r.invite("999", "call-n", "n1");
    assert_eq!(r.statuses(addr(CALLER)), vec![100, 404]);
    let rec = r.records();
    assert_eq!(rec[0].disposition.as_deref(), Some("busy"));
    assert_eq!(rec[0].attrs.as_deref(), Some("pool=dialup"));
    assert_eq!(rec[1].disposition.as_deref(), Some("not-found"));
}

#[test]
fn ring_timeout_cancels_and_tries_next_line() {
    let mut r = Rig::new();
    r.register_lines();
    r.invite("5551234", "call-t", "t1");
    let inv1 = invites(&r.take(line_addr(1))).pop().unwrap();
    r.answer(line_addr(1), &inv1, 180);
    r.advance(Duration::from_secs(20));
    let l1 = r.take(line_addr(1));
    assert!(l1.iter().any(|m| method(m).as_deref() == Some("CANCEL")));
    assert_eq!(invites(&r.take(line_addr(2))).len(), 1);
    // The first line's late 200 is ACKed and hung up.
    r.answer(line_addr(1), &inv1, 200);
    let l1 = r.take(line_addr(1));
    let ms: Vec<_> = l1.iter().filter_map(method).collect();
    assert!(
        ms.contains(&"ACK".to_string()) && ms.contains(&"BYE".to_string()),
        "{ms:?}"
    );
}

#[test]
fn cancel_from_caller() {
    let mut r = Rig::new();
    r.register_lines();
    r.invite("201", "call-c", "c1");
    let inv = invites(&r.take(line_addr(1))).pop().unwrap();
    r.answer(line_addr(1), &inv, 180);
    r.take(addr(CALLER));
    let cancel = format!(
        "CANCEL sip:201@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKc1;rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:5550001@10.0.0.50>;tag=a1\r\nTo: <sip:201@10.0.0.1>\r\nCall-ID: call-c\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
    );
    r.send(addr(CALLER), &cancel);
    let st = r.statuses(addr(CALLER));
    assert!(st.contains(&200) && st.contains(&487), "{st:?}");
    let l = r.take(line_addr(1));
    assert!(l.iter().any(|m| method(m).as_deref() == Some("CANCEL")));
    assert_eq!(r.records()[0].disposition.as_deref(), Some("cancelled"));
    assert!(r.b.calls().is_empty());
}

#[test]
fn refusals() {
    let mut r = Rig::new();
    // Max-Forwards: 0.
    let inv = format!(
        "INVITE sip:201@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKmf\r\nMax-Forwards: 0\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:201@10.0.0.1>\r\nCall-ID: mf\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    r.send(addr(CALLER), &inv);
    assert_eq!(r.statuses(addr(CALLER)), vec![100, 483]);
    // Unsupported method.
    let msg = inv
        .replace("INVITE", "MESSAGE")
        .replace("Max-Forwards: 0", "Max-Forwards: 70")
        .replace("bKmf", "bKms");
    r.send(addr(CALLER), &msg);
    let m = r.take(addr(CALLER)).pop().unwrap();
    assert_eq!(status(&m), Some(405));
    assert!(m.headers().get("Allow").unwrap().contains("INVITE"));
    // Malformed: no Call-ID.
    let bad = inv.replace("Call-ID: mf\r\n", "");
    r.send(addr(CALLER), &bad);
    assert_eq!(r.statuses(addr(CALLER)), vec![400]);
    // Oversized.
    let big = inv.replace(
        "Max-Forwards: 0",
        &format!("Max-Forwards: 70\r\nX-Pad: {}", "a".repeat(9000)),
    );
    r.send(addr(CALLER), &big);
    assert_eq!(r.statuses(addr(CALLER)), vec![513]);
    // Outside the ACL.
    let stranger = addr("192.0.2.9:5060");
    r.send(
        stranger,
        &inv.replace("Max-Forwards: 0", "Max-Forwards: 70"),
    );
    assert_eq!(r.statuses(stranger), vec![403]);
    // Junk gets nothing and panics nothing.
    r.send(addr(CALLER), "\u{0}\u{1}garbage");
    assert!(r.take(addr(CALLER)).is_empty());
    assert_eq!(r.b.stats().malformed, 3);
}

#[test]
fn ppp_session_end_hangs_up_and_line_bye_ends_the_session() {
    let mut r = Rig::new();
    r.register_lines();
    r.invite("201", "call-p", "p1");
    let inv = invites(&r.take(line_addr(1))).pop().unwrap();
    r.answer(line_addr(1), &inv, 200);
    r.take(line_addr(1));
    r.take(addr(CALLER));
    let now = r.at();
    assert!(r.b.hangup_port(now, "m0"));
    r.pump();
    assert!(
        r.take(addr(CALLER))
            .iter()
            .any(|m| method(m).as_deref() == Some("BYE"))
    );
    assert!(
        r.take(line_addr(1))
            .iter()
            .any(|m| method(m).as_deref() == Some("BYE"))
    );
    assert!(
        !r.events
            .iter()
            .any(|e| matches!(e, BridgeEvent::Ended { .. }))
    );
    // Second call; this time the line (the ATA) hangs up.
    r.invite("201", "call-q", "q1");
    let inv = invites(&r.take(line_addr(1))).pop().unwrap();
    r.answer(line_addr(1), &inv, 200);
    let from = inv.headers().get("From").unwrap().to_string();
    let to = format!("{};tag=lt", inv.headers().get("To").unwrap());
    // The line's BYE has its own From/To (the line is the UAC of this request).
    r.in_dialog(line_addr(1), "BYE", inv.call_id().unwrap(), &to, &from, 2);
    assert_eq!(r.statuses(line_addr(1)), vec![200]);
    assert!(
        r.take(addr(CALLER))
            .iter()
            .any(|m| method(m).as_deref() == Some("BYE"))
    );
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, BridgeEvent::Ended { port, .. } if port == "m0"))
    );
}

#[test]
fn qualify_probes_measure_latency() {
    let mut r = Rig::new();
    r.b.config.qualify_interval = Some(Duration::from_secs(60));
    assert_eq!(r.register("phone", "phone-pw", line_addr(9), 3600), 200);
    r.advance(Duration::from_millis(1));
    let probe = r.take(line_addr(9)).pop().unwrap();
    assert_eq!(method(&probe).as_deref(), Some("OPTIONS"));
    r.now += Duration::from_millis(30);
    r.answer(line_addr(9), &probe, 200);
    let v = r.b.registrations(r.now);
    assert_eq!(v[0].status, "reachable");
    assert!((v[0].latency_ms.unwrap() - 30.0).abs() < 2.0);
    // Unanswered probes make it unreachable.
    r.advance(Duration::from_secs(120));
    r.take(line_addr(9));
    assert_eq!(r.b.registrations(r.now)[0].status, "unreachable");
}

#[test]
fn shutdown_ends_every_call_with_a_record() {
    let mut r = Rig::new();
    r.register_lines();
    r.invite("201", "call-s1", "s1");
    let inv = invites(&r.take(line_addr(1))).pop().unwrap();
    r.answer(line_addr(1), &inv, 200);
    r.invite("202", "call-s2", "s2");
    let now = r.at();
    r.b.shutdown(now);
    r.pump();
    let rec = r.records();
    assert_eq!(rec.len(), 2);
    assert!(r.b.calls().is_empty());
}

#[test]
fn records_name_the_last_line_tried_and_phones_take_several_calls() {
    let mut r = Rig::new();
    r.register_lines();
    r.invite("201", "call-r", "r1");
    let inv = invites(&r.take(line_addr(1))).pop().unwrap();
    r.answer(line_addr(1), &inv, 603);
    let rec = r.records();
    assert_eq!(rec[0].line.as_deref(), Some("line1"));
    assert_eq!(rec[0].port.as_deref(), Some("m0"));
    assert_eq!(rec[0].disposition.as_deref(), Some("declined"));
    // A rule's replacement with groups: 9201 reaches line1 as 201.
    r.invite("9201", "call-g", "g1");
    let inv = invites(&r.take(line_addr(1))).pop().unwrap();
    assert_eq!(
        inv.to().unwrap().sip_uri().unwrap().user.as_deref(),
        Some("201")
    );
    // A phone (no modem port) is rung for each of two calls at once.
    assert_eq!(r.register("phone", "phone-pw", line_addr(9), 3600), 200);
    r.invite("300", "call-x", "x1");
    r.invite("300", "call-y", "y1");
    assert_eq!(invites(&r.take(line_addr(9))).len(), 2);
}

#[test]
fn reinvite_crosses_over_and_is_acknowledged_on_each_leg() {
    let mut r = Rig::new();
    r.register_lines();
    r.invite("201", "call-re", "re1");
    let inv = invites(&r.take(line_addr(1))).pop().unwrap();
    r.answer(line_addr(1), &inv, 200);
    r.take(line_addr(1));
    let ok = r.take(addr(CALLER)).pop().unwrap();
    let to_hdr = ok.headers().get("To").unwrap().to_string();
    let from_hdr = "\"Alice\" <sip:5550001@10.0.0.50>;tag=a1";
    r.in_dialog(addr(CALLER), "ACK", "call-re", from_hdr, &to_hdr, 1);
    // The caller puts the call on hold: a re-INVITE goes to the line, in the line's dialog.
    r.in_dialog(addr(CALLER), "INVITE", "call-re", from_hdr, &to_hdr, 2);
    let re = invites(&r.take(line_addr(1)))
        .pop()
        .expect("re-INVITE relayed");
    assert_eq!(re.call_id(), inv.call_id());
    assert_eq!(re.cseq().unwrap().seq, 2);
    r.answer(line_addr(1), &re, 200);
    // The bridge ACKs the line's 2xx itself and answers the caller 200, repeated until ACK.
    let l = r.take(line_addr(1));
    assert_eq!(l.iter().filter_map(method).collect::<Vec<_>>(), vec!["ACK"]);
    assert_eq!(r.statuses(addr(CALLER)), vec![100, 200]);
    r.advance(Duration::from_millis(600));
    assert_eq!(r.statuses(addr(CALLER)), vec![200]);
    r.in_dialog(addr(CALLER), "ACK", "call-re", from_hdr, &to_hdr, 2);
    r.advance(Duration::from_secs(5));
    assert!(r.statuses(addr(CALLER)).is_empty());
    assert_eq!(r.b.calls()[0].state, "answered");
}

#[test]
fn an_expired_nonce_is_challenged_again_with_stale() {
    let mut r = Rig::new();
    let from = line_addr(1);
    let req = |auth: &str| {
        format!(
            "REGISTER sip:10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKst{};rport\r\nMax-Forwards: 70\r\nFrom: <sip:line1@10.0.0.1>;tag=s\r\nTo: <sip:line1@10.0.0.1>\r\nCall-ID: stale@x\r\nCSeq: 1 REGISTER\r\nContact: <sip:line1@{from}>\r\n{auth}Content-Length: 0\r\n\r\n",
            auth.len()
        )
    };
    r.send(from, &req(""));
    let ch = r.take(from).pop().unwrap();
    let ch = ch.headers().get("WWW-Authenticate").unwrap().to_string();
    assert!(!ch.contains("stale"));
    let p = digest::parse_authorization(&ch).unwrap();
    let nonce = p.iter().find(|(n, _)| n == "nonce").unwrap().1.clone();
    r.advance(Duration::from_secs(400));
    let ha1 = digest::ha1("line1", "nasd", "line1-pw");
    let resp = digest::response_auth(&ha1, &nonce, "00000001", "c", "REGISTER", "sip:10.0.0.1");
    let auth = format!(
        "Authorization: Digest username=\"line1\", realm=\"nasd\", nonce=\"{nonce}\", uri=\"sip:10.0.0.1\", response=\"{resp}\", qop=auth, nc=00000001, cnonce=\"c\"\r\n"
    );
    r.send(from, &req(&auth));
    let again = r.take(from).pop().unwrap();
    assert_eq!(status(&again), Some(401));
    assert!(
        again
            .headers()
            .get("WWW-Authenticate")
            .unwrap()
            .contains("stale=true")
    );
    assert!(r.b.registrations(r.now).is_empty());
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    /// Valid messages of every kind the bridge handles, to mutate.
    fn seeds() -> Vec<String> {
        let inv = format!(
            "INVITE sip:5551234@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKg;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1@x>;tag=1\r\nTo: <sip:5551234@10.0.0.1>\r\nCall-ID: g\r\nCSeq: 1 INVITE\r\nContact: <sip:1@{CALLER}>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\r\n"
        );
        vec![
            inv.clone(),
            inv.replace("INVITE sip", "CANCEL sip").replace("1 INVITE", "1 CANCEL"),
            inv.replace("INVITE sip", "BYE sip").replace("To: <sip:5551234@10.0.0.1>", "To: <sip:5551234@10.0.0.1>;tag=x"),
            inv.replace("INVITE sip", "REGISTER sip").replace("1 INVITE", "1 REGISTER"),
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: q\r\nCSeq: 1 INVITE\r\nContact: <sip:c@10.0.0.101>\r\nContent-Length: 0\r\n\r\n".to_string(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes and mutated messages, interleaved with timer ticks, never panic
        /// and leave no call behind once every timer has run out.
        #[test]
        fn the_bridge_survives_anything(
            inputs in proptest::collection::vec(
                (0usize..5, proptest::collection::vec((0usize..400, any::<u8>()), 0..6),
                 proptest::collection::vec(any::<u8>(), 0..64), any::<bool>()),
                1..12),
        ) {
            let mut r = Rig::new();
            r.register_lines();
            let seeds = seeds();
            for (seed, edits, junk, tick) in inputs {
                let mut bytes = seeds[seed].clone().into_bytes();
                for (at, b) in edits {
                    if !bytes.is_empty() {
                        let i = at % bytes.len();
                        bytes[i] = b;
                    }
                }
                bytes.extend_from_slice(&junk);
                let now = r.at();
                r.b.handle_datagram(now, addr(CALLER), &bytes);
                r.b.handle_datagram(now, line_addr(1), &bytes);
                while r.b.poll_transmit().is_some() {}
                while r.b.poll_event().is_some() {}
                if tick {
                    r.advance(Duration::from_secs(3));
                }
            }
            r.advance(Duration::from_secs(600));
            prop_assert!(r.b.calls().is_empty(), "{:?}", r.b.calls());
        }
    }
}
