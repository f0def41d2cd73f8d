//! The SIP bridge against real SIP peers: sipp (Debian `sip-tester`) plays the callers and the
//! ATA lines, baresip plays an ATA line that answers by itself. Each test starts its own nasd
//! with a `[sip]` section (see `sip_rig` for the topology) and asserts on the peers' exit
//! codes, on the messages they exchanged, and on the call records in the accounting journal.

use crate::sip_rig::{Baresip, LINES, Msg, OUTSIDE_IP, PEER_IP, SipRig, Sipp, SippRun, eventually};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long a test waits for a line's sipp to finish its one call.
const LINE_END: Duration = Duration::from_secs(30);

/// Calls `number` expecting a failure; its final status (the scenario ACKs it).
fn refused(rig: &SipRig, number: &str, from_ip: &str) -> (Option<u16>, SippRun) {
    let r = rig.run(&Sipp {
        local_ip: from_ip,
        timeout: Duration::from_secs(40),
        ..Sipp::caller("call_refused.xml", number, 5080)
    });
    r.assert_ok(&format!(
        "call to {number} ends with a failure\nnasd:\n{}",
        rig.log()
    ));
    (r.final_status(), r)
}

/// The only call record, once it is written.
fn one_call(rig: &SipRig) -> Value {
    let calls = rig.wait_calls(1);
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls.into_iter().next().unwrap()
}

/// The INVITE a caller sent.
fn sent_invite(run: &SippRun) -> &Msg {
    run.msgs
        .iter()
        .find(|m| m.sent && m.method() == Some("INVITE"))
        .expect("the caller sent an INVITE")
}

/// The bridge is a B2BUA: the line's INVITE is a new dialog (its own Call-ID) from the
/// caller's number, carrying the caller's SDP byte for byte; the caller's 200 carries the
/// line's SDP byte for byte.
fn assert_b2bua_leg(caller: &SippRun, line: &SippRun) {
    let out = sent_invite(caller);
    let inv = line.requests("INVITE");
    assert_eq!(inv.len(), 1, "{}", line.describe());
    let inv = inv[0];
    assert_ne!(
        out.header("Call-ID"),
        inv.header("Call-ID"),
        "the line's leg has a Call-ID of its own"
    );
    assert!(
        inv.header("From")
            .unwrap_or_default()
            .contains("sip:5550100@"),
        "the caller's number is the From user: {}",
        inv.text
    );
    assert_eq!(
        out.body(),
        inv.body(),
        "the caller's SDP reaches the line unchanged"
    );
    let line_ok = line
        .msgs
        .iter()
        .find(|m| m.sent && m.status() == Some(200) && m.body().contains("v=0"))
        .expect("the line's 200 with SDP");
    let caller_ok = caller.response(200).expect("the caller's 200");
    assert_eq!(
        line_ok.body(),
        caller_ok.body(),
        "the line's SDP reaches the caller unchanged"
    );
}

/// A record's field as text.
fn field<'a>(rec: &'a Value, key: &str) -> &'a str {
    rec[key].as_str().unwrap_or_default()
}

/// The timestamps of an answered call are in order and its duration is there.
fn assert_answered(rec: &Value, line: &str, callee: &str) {
    assert_eq!(field(rec, "disposition"), "answered", "{rec}");
    assert_eq!(field(rec, "line"), line, "{rec}");
    assert_eq!(field(rec, "callee"), callee, "{rec}");
    assert!(field(rec, "caller").contains("5550100"), "{rec}");
    assert!(!field(rec, "call_id").is_empty(), "{rec}");
    let (start, answer, end) = (&rec["start"], &rec["answer"], &rec["end"]);
    assert!(
        !start.is_null() && !answer.is_null() && !end.is_null(),
        "{rec}"
    );
    assert!(rec["duration_s"].as_f64().is_some(), "{rec}");
}

#[test]
fn register_with_digest_bad_password_unregister_and_expiry() {
    let rig = SipRig::start(&format!("min_expires = 1\n{LINES}"));

    // Accepted: 401 with an MD5/qop=auth challenge (checked by the scenario), then 200 with
    // the binding and its expiry.
    let reg = rig.register("line1", "pw1", 5071, 600);
    let ok = reg.response(200).unwrap();
    let contact = ok.header("Contact").unwrap_or_default();
    assert!(
        contact.contains("10.99.0.2:5071") && contact.contains("expires="),
        "{}",
        reg.describe()
    );

    // nasctl shows the binding.
    let regs = rig.registrations();
    let mine: Vec<_> = regs.iter().filter(|r| r["account"] == "line1").collect();
    assert_eq!(mine.len(), 1, "{regs:?}");
    assert!(
        field(mine[0], "contact").contains("10.99.0.2:5071"),
        "{regs:?}"
    );
    assert_eq!(field(mine[0], "user_agent"), "sipp-line", "{regs:?}");

    // A wrong password and an unknown account: 403 after the challenge.
    for (user, pass) in [("line2", "wrong"), ("nobody", "pw2")] {
        let r = rig.run(&Sipp {
            auth: Some((user, pass)),
            keys: vec![("expires", "600".into())],
            ..Sipp::caller("register_refused.xml", user, 5072)
        });
        r.assert_ok(&format!(
            "{user}/{pass} is refused with 403\nnasd:\n{}",
            rig.log()
        ));
    }
    // The refused REGISTERs bound nothing: a call to line2 finds it unavailable.
    assert_eq!(refused(&rig, "line2", PEER_IP).0, Some(480));

    // The binding routes: the line gets the call and answers busy.
    let line = rig.spawn(&Sipp::line("line_busy.xml", "line1", 5071, 1));
    let (status, call) = refused(&rig, "line1", PEER_IP);
    assert_eq!(status, Some(486), "{}", call.describe());
    line.finish(LINE_END).assert_ok("line1 got the call");

    // Expires: 0 removes it: the next call finds the account unavailable.
    let un = rig.run(&Sipp {
        auth: Some(("line1", "pw1")),
        ..Sipp::caller("unregister.xml", "line1", 5071)
    });
    un.assert_ok(&format!("unregister\nnasd:\n{}", rig.log()));
    let regs = rig.registrations();
    assert!(regs.iter().all(|r| r["account"] != "line1"), "{regs:?}");
    let (status, call) = refused(&rig, "line1", PEER_IP);
    assert_eq!(status, Some(480), "{}", call.describe());

    // Expiry: a 2 s binding routes at first, then expires by itself.
    let reg = rig.register("line2", "pw2", 5072, 2);
    let contact = reg
        .response(200)
        .unwrap()
        .header("Contact")
        .unwrap_or_default();
    assert!(contact.contains("expires=2"), "{}", reg.describe());
    let registered = Instant::now();
    let line = rig.spawn(&Sipp::line("line_busy.xml", "line2", 5072, 1000));
    let (first, call) = refused(&rig, "line2", PEER_IP);
    assert_eq!(first, Some(486), "{}", call.describe());
    let mut last = None;
    let expired = eventually(Duration::from_secs(15), || {
        last = refused(&rig, "line2", PEER_IP).0;
        last == Some(480)
    });
    assert!(
        expired,
        "still routed after 15 s: last status {last:?}\n{}",
        rig.log()
    );
    assert!(
        registered.elapsed() >= Duration::from_millis(1500),
        "expired after {:?}, granted 2 s",
        registered.elapsed()
    );
    let line = line.stop();
    assert!(!line.requests("INVITE").is_empty(), "{}", line.describe());
}

#[test]
fn a_call_routed_by_a_rule_reaches_only_the_right_line() {
    let rules = "\n[[sip.rule]]\npriority = 1\nmatch_op = \"regex\"\nmatch_exp = \"^777\"\n\
                 account = \"line2\"\n";
    let rig = SipRig::start(&format!("{LINES}{rules}"));
    let other = rig.line("line1", "pw1", 5071, "line_busy.xml");
    let right = rig.line("line2", "pw2", 5072, "line_answer.xml");

    let call = rig.run(&Sipp::caller("call.xml", "7771234", 5080));
    call.assert_ok(&format!("call to 7771234\nnasd:\n{}", rig.log()));
    let right = right.finish(LINE_END);
    right.assert_ok("line2 answers, then gets the caller's BYE");
    assert_b2bua_leg(&call, &right);
    let other = other.stop();
    assert!(
        other.requests("INVITE").is_empty(),
        "line1 was rung:\n{}",
        other.describe()
    );

    let rec = one_call(&rig);
    assert_answered(&rec, "line2", "7771234");

    // The account's extension reaches it too, without a rule.
    let right = rig.spawn(&Sipp::line("line_answer.xml", "line2", 5072, 1));
    let call = rig.run(&Sipp::caller("call.xml", "202", 5080));
    call.assert_ok(&format!("call to extension 202\nnasd:\n{}", rig.log()));
    right
        .finish(LINE_END)
        .assert_ok("line2 answers its extension");
    let calls = rig.wait_calls(2);
    assert_answered(&calls[1], "line2", "202");
}

#[test]
fn hunting_passes_a_busy_line_and_the_next_one_answers() {
    let rig = SipRig::start(LINES);
    let l1 = rig.line("line1", "pw1", 5071, "line_busy.xml");
    let l2 = rig.line("line2", "pw2", 5072, "line_answer.xml");
    let l3 = rig.line("line3", "pw3", 5073, "line_busy.xml");

    let call = rig.run(&Sipp::caller("call.xml", "5551234", 5080));
    call.assert_ok(&format!("call to the modem group\nnasd:\n{}", rig.log()));
    l1.finish(LINE_END)
        .assert_ok("line1 was rung first and said busy");
    let l2 = l2.finish(LINE_END);
    l2.assert_ok("line2 answered and got the BYE");
    assert_b2bua_leg(&call, &l2);
    let l3 = l3.stop();
    assert!(
        l3.requests("INVITE").is_empty(),
        "line3 was rung:\n{}",
        l3.describe()
    );

    let rec = one_call(&rig);
    assert_answered(&rec, "line2", "5551234");
    assert_eq!(rec["attempts"], 2, "{rec}");
}

#[test]
fn hunting_skips_an_unregistered_line_and_one_that_rings_too_long() {
    let rig = SipRig::start(&format!("ring_timeout = 2\n{LINES}"));
    // line1 never registers; line2 rings until the bridge gives up on it; line3 answers.
    let l2 = rig.line("line2", "pw2", 5072, "line_ring.xml");
    let l3 = rig.line("line3", "pw3", 5073, "line_answer.xml");

    let t0 = Instant::now();
    let call = rig.run(&Sipp::caller("call.xml", "5551234", 5080));
    call.assert_ok(&format!("call to the modem group\nnasd:\n{}", rig.log()));
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "ring timeout honoured: {:?}",
        t0.elapsed()
    );
    let l2 = l2.finish(LINE_END);
    l2.assert_ok("line2 rang, then was cancelled");
    assert_eq!(l2.requests("CANCEL").len(), 1, "{}", l2.describe());
    let l3 = l3.finish(LINE_END);
    l3.assert_ok("line3 answered");
    assert_b2bua_leg(&call, &l3);

    let rec = one_call(&rig);
    assert_answered(&rec, "line3", "5551234");
}

#[test]
fn all_lines_busy_gives_486_and_an_unknown_number_404() {
    let rig = SipRig::start(LINES);
    let lines: Vec<_> = [
        ("line1", "pw1", 5071),
        ("line2", "pw2", 5072),
        ("line3", "pw3", 5073),
    ]
    .into_iter()
    .map(|(a, p, port)| rig.line(a, p, port, "line_busy.xml"))
    .collect();
    let (status, call) = refused(&rig, "5551234", PEER_IP);
    assert_eq!(status, Some(486), "{}", call.describe());
    for l in lines {
        let name = l.name.clone();
        l.finish(LINE_END).assert_ok(&format!("{name} was tried"));
    }
    let rec = one_call(&rig);
    assert_eq!(field(&rec, "disposition"), "busy", "{rec}");
    assert_eq!(field(&rec, "line"), "line3", "the line tried last: {rec}");
    assert_eq!(rec["attempts"], 3, "{rec}");

    let (status, call) = refused(&rig, "999", PEER_IP);
    assert_eq!(status, Some(404), "{}", call.describe());
    let calls = rig.wait_calls(2);
    assert_eq!(field(&calls[1], "disposition"), "not-found", "{calls:?}");
    assert_eq!(field(&calls[1], "callee"), "999", "{calls:?}");
}

#[test]
fn cancel_while_the_line_rings() {
    let rig = SipRig::start(LINES);
    let line = rig.line("line1", "pw1", 5071, "line_ring.xml");
    // 180 relayed; CANCEL → 200, 487 to the INVITE (checked by the scenario).
    let call = rig.run(&Sipp::caller("call_cancel.xml", "line1", 5080));
    call.assert_ok(&format!("caller cancels\nnasd:\n{}", rig.log()));
    let line = line.finish(LINE_END);
    line.assert_ok("the line got the CANCEL");
    assert_eq!(line.requests("CANCEL").len(), 1, "{}", line.describe());
    let rec = one_call(&rig);
    assert_eq!(field(&rec, "disposition"), "cancelled", "{rec}");
    assert_eq!(field(&rec, "line"), "line1", "{rec}");
}

#[test]
fn bye_from_the_line_reaches_the_caller() {
    let rig = SipRig::start(LINES);
    let line = rig.line("line2", "pw2", 5072, "line_hangup.xml");
    let call = rig.run(&Sipp::caller("call_bye_from_line.xml", "202", 5080));
    call.assert_ok(&format!(
        "the caller gets the line's BYE\nnasd:\n{}",
        rig.log()
    ));
    line.finish(LINE_END)
        .assert_ok("the line's BYE is answered 200 through the bridge");
    assert_eq!(call.requests("BYE").len(), 1, "{}", call.describe());
    let rec = one_call(&rig);
    assert_answered(&rec, "line2", "202");
}

/// A request from the peers' address, `{port}` being the local port.
fn request(method: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:line1@10.99.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.99.0.2:{{port}};rport;branch=z9hG4bK-{method}-1\r\n\
         From: <sip:5550100@10.99.0.2>;tag=p1\r\nTo: <sip:line1@10.99.0.1>\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn malformed_max_forwards_unsupported_oversized_and_outside_the_acl() {
    let rig = SipRig::start(LINES);
    let status = |answer: &str| answer.lines().next().unwrap_or("").to_string();
    let cases = [
        (
            "no Call-ID",
            request("INVITE", "Max-Forwards: 70\r\nCSeq: 1 INVITE\r\n", ""),
            "SIP/2.0 400",
        ),
        (
            "a CSeq without a number",
            request(
                "INVITE",
                "Max-Forwards: 70\r\nCall-ID: bad-cseq\r\nCSeq: x INVITE\r\n",
                "",
            ),
            "SIP/2.0 400",
        ),
        (
            "Max-Forwards: 0",
            request(
                "INVITE",
                "Max-Forwards: 0\r\nCall-ID: mf0\r\nCSeq: 1 INVITE\r\n",
                "",
            ),
            "SIP/2.0 483",
        ),
        (
            "MESSAGE",
            request(
                "MESSAGE",
                "Max-Forwards: 70\r\nCall-ID: msg\r\nCSeq: 1 MESSAGE\r\n",
                "hi",
            ),
            "SIP/2.0 405",
        ),
        (
            "SUBSCRIBE",
            request(
                "SUBSCRIBE",
                "Max-Forwards: 70\r\nCall-ID: sub\r\nCSeq: 1 SUBSCRIBE\r\nEvent: presence\r\n",
                "",
            ),
            "SIP/2.0 405",
        ),
        (
            "a 9000-byte request",
            request(
                "INVITE",
                "Max-Forwards: 70\r\nCall-ID: big\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n",
                &format!("v=0\r\n{}", "a=x\r\n".repeat(1800)),
            ),
            "SIP/2.0 513",
        ),
    ];
    for (what, req, want) in &cases {
        let answer = rig.probe(PEER_IP, req);
        assert!(
            status(&answer).starts_with(want),
            "{what}: want {want}, got:\n{answer}\nnasd:\n{}",
            rig.log()
        );
        if want.ends_with("405") {
            let allow = answer
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("allow:"))
                .unwrap_or_default()
                .to_ascii_uppercase();
            assert!(
                ["INVITE", "ACK", "BYE", "CANCEL", "REGISTER"]
                    .iter()
                    .all(|m| allow.contains(m)),
                "{what}: 405 lists the methods in Allow:\n{answer}"
            );
        }
    }

    // An INVITE from outside `allow` (a real UA, sipp, from 10.98.0.2): 403.
    let (status, call) = refused(&rig, "5551234", OUTSIDE_IP);
    assert_eq!(status, Some(403), "{}", call.describe());

    // A REGISTER from outside `allow`: 403 too, without a challenge.
    let reg = format!(
        "REGISTER sip:10.99.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {OUTSIDE_IP}:{{port}};rport;branch=z9hG4bK-reg-out\r\n\
         Max-Forwards: 70\r\nFrom: <sip:line1@10.99.0.1>;tag=o1\r\n\
         To: <sip:line1@10.99.0.1>\r\nCall-ID: reg-outside\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:line1@{OUTSIDE_IP}:5071>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    let answer = rig.probe(OUTSIDE_IP, &reg);
    assert!(
        answer.starts_with("SIP/2.0 403"),
        "REGISTER from outside:\n{answer}"
    );

    // The bridge is still there.
    let answer = rig.probe(
        PEER_IP,
        &request(
            "OPTIONS",
            "Max-Forwards: 70\r\nCall-ID: alive\r\nCSeq: 1 OPTIONS\r\n",
            "",
        ),
    );
    assert!(
        answer.starts_with("SIP/2.0 "),
        "{answer}\nnasd:\n{}",
        rig.log()
    );
}

#[test]
fn baresip_as_an_ata_line_auto_answers_a_routed_call() {
    // qualify = 1: OPTIONS every second, as Asterisk's qualify does every 60 s.
    let rig = SipRig::start(&format!("qualify = 1\nqualify_max_ms = 200\n{LINES}"));
    let ata = Baresip::start(&rig, "line3", "pw3", 5090);
    // The line answers the bridge's OPTIONS probes: reachable, with a latency.
    let mut regs = Vec::new();
    let qualified = eventually(Duration::from_secs(10), || {
        regs = rig.registrations();
        regs.iter().any(|r| {
            r["account"] == "line3" && r["status"] == "reachable" && r["latency_ms"].is_number()
        })
    });
    assert!(qualified, "qualify: {regs:?}\nnasd:\n{}", rig.log());
    let call = rig.run(&Sipp::caller("call_any.xml", "203", 5080));
    call.assert_ok(&format!(
        "call to baresip (line3, extension 203)\nbaresip:\n{}\nnasd:\n{}",
        ata.log(),
        rig.log()
    ));
    let ended = eventually(Duration::from_secs(10), || ata.log().contains("terminated"));
    assert!(ended, "baresip saw the call end:\n{}", ata.log());
    assert!(ata.log().contains("Call established"), "{}", ata.log());
    let rec = one_call(&rig);
    assert_answered(&rec, "line3", "203");
}
