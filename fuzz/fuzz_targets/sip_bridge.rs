//! The SIP bridge fed datagrams: the input is split at `0xff` bytes into datagrams from two
//! peers (a caller and a registered line), with timer ticks between them. Nothing may panic,
//! and everything the bridge sends must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nasd::sip::bridge::{Bridge, LineState, Now};
use nasd::sip::config::{Account, SipConfig};
use nasd::sip::message::Message;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let mut config = SipConfig::default();
    config.accounts.push(Account {
        name: "line1".into(),
        secret: "line1-secret".into(),
        extension: Some("201".into()),
        aliases: vec![],
        port: Some("m0".into()),
    });
    config.qualify_interval = Some(Duration::from_secs(1));
    let Ok(mut b) = Bridge::new(config, "10.0.0.1:5060".parse().unwrap(), [1; 32]) else {
        return;
    };
    b.set_port_state("m0", LineState::Free);
    let t0 = Instant::now();
    let mut now = Now { at: t0, unix: 1_800_000_000 };
    for (i, chunk) in data.split(|&x| x == 0xff).enumerate() {
        let from = if i % 2 == 0 { "10.0.0.50:5070" } else { "10.0.0.101:5060" };
        b.handle_datagram(now, from.parse().unwrap(), chunk);
        now.at += Duration::from_millis(700);
        now.unix += 1;
        b.handle_timeout(now);
        while let Some((_, bytes)) = b.poll_transmit() {
            if !bytes.starts_with(b"SIP/2.0 ") {
                assert!(Message::parse_with_limit(&bytes, 65507).is_ok());
            }
        }
        while b.poll_event().is_some() {}
    }
});
