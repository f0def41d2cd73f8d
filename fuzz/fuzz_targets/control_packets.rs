//! Every stand-alone parser: control packets and their options, the IPv4 header view, the
//! secrets file. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nasd::auth::secrets::Secrets;
use nasd::proto::wire::{cp, ipv4};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = cp::Packet::parse(data) {
        let mut out = Vec::new();
        for o in p.options().flatten() {
            let _ = (o.u16(), o.u32());
            o.emit(&mut out);
        }
        let _ = cp::Options::validate(p.data);
    }
    let _ = ipv4::Header::parse(data);
    if let Ok(s) = Secrets::parse(&String::from_utf8_lossy(data)) {
        for e in s.entries() {
            let _ = (e.fixed_address(), e.allows_session());
        }
        let _ = s.lookup("dial", "*");
    }
});
