//! Building blocks for network topologies: veth links between namespaces, and listeners
//! that report what they receive (with the sender's address) as JSON lines.

use super::netns::{NetNs, Proc};
use std::process::{Command, Stdio};

/// Joins two namespaces with a veth pair and gives each end an address (`a.b.c.d/n`).
pub fn veth(a: &NetNs, a_if: &str, a_addr: &str, b: &NetNs, b_if: &str, b_addr: &str) {
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "link",
        "add",
        a_if,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    run(&["-n", a.name(), "addr", "add", a_addr, "dev", a_if]);
    run(&["-n", b.name(), "addr", "add", b_addr, "dev", b_if]);
    run(&["-n", a.name(), "link", "set", a_if, "up"]);
    run(&["-n", b.name(), "link", "set", b_if, "up"]);
}

/// Runs `ip` in a namespace, asserting success.
pub fn ip(ns: &NetNs, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", ns.name()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const TCP_SINK: &str = r#"
import hashlib, socket, sys, json
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1)
print(json.dumps({"listening": True}), flush=True)
c, peer = s.accept(); h = hashlib.md5(); n = 0
while True:
    d = c.recv(65536)
    if not d: break
    h.update(d); n += len(d)
print(json.dumps({"peer": peer[0], "bytes": n, "md5": h.hexdigest()}), flush=True)
"#;

const ICMP_SINK: &str = r#"
import socket, json
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
print(json.dumps({"listening": True}), flush=True)
while True:
    d, peer = s.recvfrom(65536)
    if len(d) > 20 and d[20] == 8:
        print(json.dumps({"echo_from": socket.inet_ntoa(d[12:16])}), flush=True)
"#;

/// A raw ICMP listener in `ns` that reports the source of every echo request it sees.
pub fn icmp_sink(ns: &NetNs) -> Proc {
    sink(ns, ICMP_SINK, 0)
}

/// A TCP listener in `ns` that reports the peer address, byte count and MD5 of one
/// connection, then exits.
pub fn tcp_sink(ns: &NetNs, port: u16) -> Proc {
    sink(ns, TCP_SINK, port)
}

fn sink(ns: &NetNs, code: &str, port: u16) -> Proc {
    let mut c = ns.command("python3");
    c.args(["-c", code, &port.to_string()]).stdin(Stdio::null());
    let p = Proc::spawn(c).unwrap();
    assert!(
        p.stdout
            .wait_for("listening", std::time::Duration::from_secs(10)),
        "listener did not start: {}",
        p.stderr.text()
    );
    p
}
