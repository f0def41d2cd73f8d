use super::*;
use proptest::prelude::*;

const REGISTER: &str = "REGISTER sip:nas.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Line 1\" <sip:line1@nas.example>;tag=abc\r\n\
To: <sip:line1@nas.example>\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:line1@10.0.0.5:5060>;expires=3600\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\r\n";

fn parse(s: &str) -> Result<Message, ParseError> {
    Message::parse(s.as_bytes())
}

#[test]
fn register_accessors() {
    let m = parse(REGISTER).unwrap();
    let Message::Request { method, uri, .. } = &m else {
        panic!("not a request")
    };
    assert_eq!(*method, Method::Register);
    assert_eq!(uri, "sip:nas.example");
    let via = m.via().unwrap();
    assert_eq!(via.len(), 1);
    assert_eq!(via[0].host, "10.0.0.5");
    assert_eq!(via[0].port, Some(5060));
    assert_eq!(via[0].branch(), Some("z9hG4bK776"));
    assert_eq!(via[0].rport(), Some(None));
    let from = m.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("Line 1"));
    assert_eq!(from.tag(), Some("abc"));
    let to = m.to().unwrap();
    assert_eq!(to.tag(), None);
    let aor = to.sip_uri().unwrap();
    assert_eq!(
        (aor.user.as_deref(), aor.host.as_str()),
        (Some("line1"), "nas.example")
    );
    assert_eq!(m.call_id(), Some("843817637684230@998sdasdh09"));
    assert_eq!(
        m.cseq().unwrap(),
        CSeq {
            seq: 1826,
            method: Method::Register
        }
    );
    let Some(Contacts::List(c)) = m.contact() else {
        panic!("no contact")
    };
    assert_eq!(c[0].expires(), Some(3600));
    assert_eq!(c[0].sip_uri().unwrap().port, Some(5060));
    assert_eq!(m.expires(), Some(7200));
    assert_eq!(m.max_forwards(), Some(70));
    assert_eq!(m.content_length(), Some(0));
}

#[test]
fn compact_forms_case_and_whitespace() {
    // RFC 4475 3.1.1.1-style: compact names, odd case, LWS before colons, folding.
    let s = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n\
TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
MaX-fOrWaRdS: 0068\r\n\
Call-ID: wsinv.ndaksdj@192.0.2.1\r\n\
Content-Length   : 5\r\n\
cseq: 0009\r\n  INVITE\r\n\
Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
s :\r\n\
NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33\r\n\
v:  SIP/2.0/TCP spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n\
l: 5\r\n\r\nhello";
    let m = parse(s).unwrap();
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(m.from().unwrap().tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.cseq().unwrap().seq, 9);
    let via = m.via().unwrap();
    assert_eq!(via.len(), 3);
    assert_eq!(via[0].host, "192.0.2.2");
    assert_eq!(via[1].transport, "TCP");
    assert_eq!(via[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(via[2].host, "192.168.255.111");
    assert_eq!(via[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(m.headers().get("Subject"), Some(""));
    assert_eq!(
        m.headers().get("newfangledheader"),
        Some("newfangled value continued newfangled value")
    );
    let Some(Contacts::List(c)) = m.contact() else {
        panic!()
    };
    assert_eq!(c[0].params.get("q"), Some(Some("0.33")));
    assert_eq!(m.body(), b"hello");
    // Compact and long names are one header.
    assert_eq!(m.headers().get_all("Content-Length").count(), 2);
    assert_eq!(m.headers().get("i"), Some("wsinv.ndaksdj@192.0.2.1"));
}

#[test]
fn via_in_one_header_equals_several_headers() {
    let one = REGISTER.replace(
        "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776;rport\r\n",
        "Via: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP b.example:5070;branch=z9hG4bK2\r\n",
    );
    let two = REGISTER.replace(
        "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776;rport\r\n",
        "v: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\nVIA: SIP/2.0/UDP b.example:5070;branch=z9hG4bK2\r\n",
    );
    let (a, b) = (
        parse(&one).unwrap().via().unwrap(),
        parse(&two).unwrap().via().unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a[1].port, Some(5070));
}

#[test]
fn response_parse() {
    let s = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
To: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
    let m = parse(s).unwrap();
    assert!(matches!(&m, Message::Response { status: 180, reason, .. } if reason == "Ringing"));
    // Responses need no Max-Forwards; a CSeq method may differ from nothing.
    assert_eq!(m.cseq().unwrap().method, Method::Invite);
}

#[test]
fn errors() {
    let m = |a: &str, b: &str| parse(&REGISTER.replace(a, b));
    assert_eq!(
        m("Max-Forwards: 70\r\n", ""),
        Err(ParseError::Malformed("missing or bad Max-Forwards"))
    );
    for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let line = REGISTER
            .lines()
            .find(|l| l.starts_with(&format!("{h}:")))
            .unwrap();
        let e = m(&format!("{line}\r\n"), "").unwrap_err();
        assert_eq!(e.status(), 400, "{h}");
    }
    assert!(m("CSeq: 1826 REGISTER", "CSeq: 1826 INVITE").is_err());
    assert!(m("CSeq: 1826 REGISTER", "CSeq: -1 REGISTER").is_err());
    assert!(m("Content-Length: 0", "Content-Length: 10").is_err());
    assert!(m("Content-Length: 0", "Content-Length: x").is_err());
    assert!(m("SIP/2.0\r\n", "SIP/7.0\r\n").is_err());
    assert!(m("REGISTER sip", "REGISTER  sip").is_err());
    assert!(m("Contact: <sip", "Contact: *, <sip").is_err());
    assert!(
        m(
            "Via: SIP/2.0/UDP 10.0.0.5:5060",
            "Via: SIP/2.0/UDP 10.0.0.5:99999"
        )
        .is_err()
    );
    assert!(m("\r\n\r\n", "\r\n").is_err());
    assert!(parse("").is_err());
    assert!(parse("\r\n\r\n").is_err());
    let big = REGISTER.replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: 9000\r\n\r\n{}", "x".repeat(9000)),
    );
    assert_eq!(parse(&big), Err(ParseError::TooLarge));
    assert_eq!(ParseError::TooLarge.status(), 513);
    assert!(Message::parse_with_limit(big.as_bytes(), 20_000).is_ok());
    // Body longer than Content-Length: the extra bytes are dropped (RFC 3261 §18.3).
    let long = REGISTER.replace("Content-Length: 0\r\n\r\n", "Content-Length: 2\r\n\r\nabcd");
    assert_eq!(parse(&long).unwrap().body(), b"ab");
    // Leading CRLFs and bare LF line ends are tolerated.
    assert!(parse(&format!("\r\n{}", REGISTER.replace("\r\n", "\n"))).is_ok());
    let star = m(
        "Contact: <sip:line1@10.0.0.5:5060>;expires=3600",
        "Contact: *",
    )
    .unwrap();
    assert_eq!(star.contact(), Some(Contacts::Wildcard));
}

#[test]
fn uris() {
    let u =
        SipUri::parse("sips:alice;day=tuesday:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=x")
            .unwrap();
    assert_eq!(u.scheme, "sips");
    assert_eq!(u.user.as_deref(), Some("alice;day=tuesday"));
    assert_eq!(u.password.as_deref(), Some("pw"));
    assert_eq!(u.host, "[2001:db8::1]");
    assert_eq!(u.port, Some(5061));
    assert_eq!(u.params.get("lr"), Some(None));
    assert_eq!(u.headers.as_deref(), Some("subject=x"));
    assert_eq!(SipUri::parse(&u.to_string()), Some(u));
    assert!(SipUri::parse("tel:+1234").is_none());
    assert!(SipUri::parse("sip:@host").is_none());
    assert!(SipUri::parse("sip:user@").is_none());
    let n = NameAddr::parse("tel:+1234;tag=x").unwrap();
    assert_eq!((n.uri.as_str(), n.tag()), ("tel:+1234", Some("x")));
}

#[test]
fn response_to_copies_and_tags() {
    let req = parse(&REGISTER.replace(
        "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776;rport\r\n",
        "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776;rport\r\nVia: SIP/2.0/UDP p.example;branch=z9hG4bK9\r\n",
    ))
    .unwrap();
    let r = Message::response_to(&req, 200, "OK", Some("srv1"));
    let bytes = r.to_bytes();
    let back = Message::parse(&bytes).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.via().unwrap(), req.via().unwrap());
    assert_eq!(back.to().unwrap().tag(), Some("srv1"));
    assert_eq!(back.from(), req.from());
    assert_eq!(back.call_id(), req.call_id());
    assert_eq!(back.cseq(), req.cseq());
    assert!(back.headers().get("Contact").is_none());
    assert!(String::from_utf8_lossy(&bytes).starts_with("SIP/2.0 200 OK\r\n"));
    // An existing To tag is kept.
    let again = Message::response_to(&back, 200, "OK", Some("other"));
    assert_eq!(again.to().unwrap().tag(), Some("srv1"));
}

#[test]
fn stamp_via_rport_and_received() {
    let mut m = parse(REGISTER).unwrap();
    m.stamp_via("192.0.2.9:40000".parse().unwrap());
    let v = &m.via().unwrap()[0];
    assert_eq!(v.rport(), Some(Some(40000)));
    assert_eq!(v.received(), Some("192.0.2.9"));
    // No rport and same host: nothing added.
    let mut m = parse(&REGISTER.replace(";rport", "")).unwrap();
    m.stamp_via("10.0.0.5:5060".parse().unwrap());
    assert_eq!(m.via().unwrap()[0].received(), None);
    // No rport, other host: received only; later Vias untouched.
    let mut m = parse(&REGISTER.replace(";rport", ", SIP/2.0/UDP z.example")).unwrap();
    m.stamp_via("192.0.2.9:5060".parse().unwrap());
    let v = m.via().unwrap();
    assert_eq!((v[0].received(), v[0].rport()), (Some("192.0.2.9"), None));
    assert_eq!(v[1].host, "z.example");
    assert_eq!(v[1].received(), None);
}

#[test]
fn round_trip_register() {
    let m = parse(REGISTER).unwrap();
    assert_eq!(Message::parse(&m.to_bytes()).unwrap(), m);
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+~-]{0,8}"
}

prop_compose! {
    fn arb_message()(
        is_req in any::<bool>(),
        method in prop::sample::select(vec!["INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO"]),
        user in "[a-z0-9]{1,8}",
        host in "[a-z][a-z0-9.-]{0,10}",
        port in prop::option::of(1u16..),
        branches in prop::collection::vec(token(), 1..4),
        tag in prop::option::of(token()),
        call_id in token(),
        seq in 0u32..(1 << 31),
        status in 100u16..700,
        mf in 0u32..100,
        extra in prop::collection::vec((token(), "[ -~]{0,20}"), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) -> Message {
        let mut h = Headers::default();
        for b in &branches {
            let p = port.map(|p| format!(":{p}")).unwrap_or_default();
            h.push("Via", format!("SIP/2.0/UDP {host}{p};branch=z9hG4bK{b}"));
        }
        let tag = tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        h.push("From", format!("<sip:{user}@{host}>;tag=f1"));
        h.push("To", format!("\"{user}\" <sip:{user}@{host}>{tag}"));
        h.push("Call-ID", call_id);
        h.push("CSeq", format!("{seq} {method}"));
        h.push("Max-Forwards", mf.to_string());
        for (n, v) in extra {
            let n = canonical_name(&n);
            if CANONICAL.iter().all(|(c, _)| *c != n) {
                h.push(&n, v.trim());
            }
        }
        h.push("Content-Length", body.len().to_string());
        if is_req {
            Message::Request {
                method: Method::parse(method).unwrap(),
                uri: format!("sip:{user}@{host}"),
                headers: h,
                body,
            }
        } else {
            Message::Response { status, reason: "Some Reason".into(), headers: h, body }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::parse(&buf);
    }

    #[test]
    fn mutated_messages_never_panic(
        cut in 0usize..400, pos in 0usize..400, byte in any::<u8>(),
        src in any::<std::net::SocketAddr>(),
    ) {
        let mut b = REGISTER.as_bytes().to_vec();
        let p = pos % b.len();
        b[p] = byte;
        b.truncate(cut.max(1).min(b.len()));
        if let Ok(mut m) = Message::parse(&b) {
            m.stamp_via(src);
            let r = Message::response_to(&m, 400, "Bad", Some("t"));
            let _ = Message::parse(&r.to_bytes());
            let _ = Message::parse(&m.to_bytes());
        }
    }

    #[test]
    fn round_trip(m in arb_message()) {
        let bytes = m.to_bytes();
        prop_assert_eq!(Message::parse_with_limit(&bytes, MAX_DATAGRAM), Ok(m));
    }
}
