//! A live server link fed arbitrary PPP frames (protocol and information chosen by the
//! fuzzer, framed correctly so they pass the FCS), with verdicts granted whenever asked and
//! time moving forward. This reaches the LCP, PAP, CHAP and IPCP parsers and policies in
//! every phase. Nothing may panic and the outputs must stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nasd::proto::auth::{AuthResult, Grant};
use nasd::proto::hdlc::Encoder;
use nasd::proto::link::{Link, LinkConfig, LinkEvent};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let mut config = LinkConfig::default();
    if data.first().is_some_and(|b| b & 1 == 1) {
        config.lcp.auth.reverse();
    }
    let mut link = Link::new(config, [7; 32]);
    let mut now = Instant::now();
    link.start(now);
    let enc = Encoder::new();
    let mut wire = Vec::new();
    let mut rest = data.get(1..).unwrap_or(&[]);
    while rest.len() >= 4 {
        let proto = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(rest[2]).min(rest.len() - 4);
        let step = rest[3];
        let info = &rest[4..4 + len];
        rest = &rest[4 + len..];
        wire.clear();
        enc.encode(proto, info, &mut wire);
        link.handle_serial_input(now, &wire);
        if step & 0x80 != 0 {
            now += Duration::from_millis(u64::from(step & 0x7f) * 100);
            link.handle_timeout(now);
        }
        while let Some(ev) = link.poll_event() {
            if let LinkEvent::Authenticate(_) = ev {
                let grant = Grant::new(Ipv4Addr::new(10, 0, 0, 2));
                link.handle_auth_result(now, AuthResult::Accept(grant));
            }
        }
        while link.poll_ip_output().is_some() {}
        let n = link.serial_output().len();
        assert!(n < 1 << 20, "line output grows without bound");
        link.consume_serial_output(n);
        let _ = link.handle_ip_packet(now, info);
    }
});
