//! `nasctl` against a running nasd with real pppd clients: sessions (table, JSON, filters),
//! kill (the caller sees LCP Terminate, the port goes back to idle), ports, stats, reload,
//! a live capture decoded by tshark, who may use the control socket, and `nasctl sip` without
//! a `[sip]` section.

use crate::daemon::{Cfg, Nas, dial, guest_as, vmodem};
use crate::support::netns::{NetNs, Proc, nasd};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn nasctl_bin() -> PathBuf {
    crate::support::netns::nasctl()
}

/// nasd's control socket in a `Cfg` directory.
fn socket(dir: &Path) -> PathBuf {
    dir.join("nasd.sock")
}

/// Runs `nasctl --socket SOCKET args...` (optionally under `setpriv`).
fn run(prefix: &[&str], sock: &Path, args: &[&str]) -> Output {
    let mut cmd = match prefix.split_first() {
        Some((p, rest)) => {
            let mut c = Command::new(p);
            c.args(rest).arg(nasctl_bin());
            c
        }
        None => Command::new(nasctl_bin()),
    };
    cmd.arg("--socket").arg(sock).args(args);
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// `nasctl args...` as root; its standard output, which must be a success.
fn ok(sock: &Path, args: &[&str]) -> String {
    let out = run(&[], sock, args);
    assert!(
        out.status.success(),
        "nasctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nasctl args... --json`, parsed.
fn json(sock: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let text = ok(sock, &a);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `nasctl args...` that must fail; its standard error.
fn fails(prefix: &[&str], sock: &Path, args: &[&str]) -> String {
    let out = run(prefix, sock, args);
    assert!(
        !out.status.success(),
        "nasctl {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `nasctl args --json` until `cond` holds; the last answer.
fn wait_json(sock: &Path, args: &[&str], what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = json(sock, args);
        if cond(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "never {what}: {v:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn port_state(ports: &Value, name: &str) -> String {
    ports
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .map(|p| p["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn sessions_kill_ports_stats_and_reload_with_real_pppd() {
    let vm = vmodem("2");
    let ns = NetNs::new().unwrap();
    let cfg = Cfg {
        lines: 2,
        ..Cfg::default()
    }
    .write(vm.dir());
    let nas = Nas::start(&ns, &cfg);
    let sock = socket(vm.dir());
    wait_json(&sock, &["ports"], "both ports idle", |p| {
        port_state(p, "m0") == "idle" && port_state(p, "m1") == "idle"
    });
    assert_eq!(json(&sock, &["sessions"]), Value::Array(vec![]));

    let mut a = guest_as(&vm, 0, "dial", "dial", false);
    let mut b = guest_as(&vm, 1, "fixed", "fixed", true);
    dial(&mut a, &nas);
    dial(&mut b, &nas);
    let all = wait_json(&sock, &["sessions"], "two sessions up", |v| {
        v.as_array()
            .is_some_and(|s| s.len() == 2 && s.iter().all(|e| e["state"] == "up"))
    });
    let by_user = |user: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|e| e["user"] == user)
            .cloned()
            .unwrap_or_else(|| panic!("no {user}: {all:#}"))
    };
    let (d, f) = (by_user("dial"), by_user("fixed"));
    assert_eq!(d["port"], "m0");
    assert_eq!(f["port"], "m1");
    assert_eq!(f["ip"], "10.0.0.150");
    assert_eq!(
        (d["auth"].as_str(), f["auth"].as_str()),
        (Some("chap"), Some("pap"))
    );
    for key in [
        "id",
        "acct_session_id",
        "caller_id",
        "speed",
        "started_at",
        "uptime_s",
        "rx_bytes",
        "tx_bytes",
        "rx_packets",
        "tx_packets",
    ] {
        assert!(d.get(key).is_some(), "{key} missing: {d:#}");
    }

    // The table, and the filters.
    let table = ok(&sock, &["sessions"]);
    for needle in [
        "CALLER ID",
        "ADDRESS",
        "UPTIME",
        "dial",
        "fixed",
        "10.0.0.150",
        "m1",
    ] {
        assert!(table.contains(needle), "{needle} not in\n{table}");
    }
    let only = json(&sock, &["sessions", "--user", "fixed"]);
    assert_eq!(only.as_array().map(Vec::len), Some(1), "{only:#}");
    assert_eq!(only[0]["ip"], "10.0.0.150");
    let only = json(&sock, &["sessions", "--port", "m0"]);
    assert_eq!(only.as_array().map(Vec::len), Some(1), "{only:#}");
    assert_eq!(only[0]["user"], "dial");
    let none = ok(&sock, &["sessions", "--user", "nobody"]);
    assert!(none.contains("no sessions"), "{none}");
    let ports = json(&sock, &["ports"]);
    assert_eq!(port_state(&ports, "m0"), "connected", "{ports:#}");

    // Traffic shows in the session's and the daemon's counters.
    let before = json(&sock, &["stats"]);
    assert_eq!(before["sessions_now"], 2, "{before:#}");
    assert_eq!(before["sessions_total"], 2, "{before:#}");
    let rc = a
        .ctl("ping -c 3 -W 3 10.0.0.1", Duration::from_secs(20))
        .unwrap();
    assert_eq!(rc, 0, "{}", nas.log());
    let after = json(&sock, &["stats"]);
    let rx = |v: &Value| v["traffic"]["rx_bytes"].as_u64().unwrap();
    assert!(
        rx(&after) >= rx(&before) + 3 * 84,
        "{before:#} then {after:#}"
    );
    let d = json(&sock, &["sessions", "--user", "dial"]);
    assert!(d[0]["rx_packets"].as_u64().unwrap() >= 3, "{d:#}");
    assert!(d[0]["tx_packets"].as_u64().unwrap() >= 3, "{d:#}");
    let text = ok(&sock, &["stats"]);
    assert!(
        text.contains("2 now, 2 in total") && text.contains("bad FCS"),
        "{text}"
    );

    // kill by user: the caller hears LCP Terminate, the port answers again.
    let out = ok(&sock, &["kill", "fixed"]);
    assert!(out.starts_with("1 session killed"), "{out}");
    b.wait_console("LCP terminated by peer", Duration::from_secs(20))
        .unwrap();
    let left = json(&sock, &["sessions"]);
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left:#}");
    assert_eq!(left[0]["user"], "dial");
    let ports = wait_json(&sock, &["ports"], "m1 idle again", |p| {
        port_state(p, "m1") == "idle"
    });
    let m1 = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "m1")
        .unwrap();
    assert_eq!(m1["calls"], 1, "{ports:#}");
    assert!(m1["last_call"].as_u64().is_some(), "{ports:#}");
    assert!(nas.log().contains("reason=admin"), "{}", nas.log());
    let err = fails(&[], &sock, &["kill", "fixed"]);
    assert!(err.contains("no session matches \"fixed\""), "{err}");
    // kill by address.
    let out = ok(&sock, &["kill", "10.0.0.100"]);
    assert!(out.starts_with("1 session killed"), "{out}");
    a.wait_console("LCP terminated by peer", Duration::from_secs(20))
        .unwrap();
    let end = json(&sock, &["stats"]);
    assert_eq!(end["sessions_now"], 0, "{end:#}");
    assert_eq!(end["sessions_total"], 2, "{end:#}");
    assert!(
        rx(&end) >= rx(&after),
        "ended sessions still count: {end:#}"
    );

    // version, and reload (the second port goes).
    let v = ok(&sock, &["version"]);
    let want = format!("nasd {} (control protocol 1)", env!("CARGO_PKG_VERSION"));
    assert!(v.contains(&want) && v.contains("nasctl "), "{v}");
    Cfg::default().write(vm.dir());
    let out = ok(&sock, &["reload"]);
    assert!(out.contains("reloaded (1 ports)"), "{out}");
    let ports = json(&sock, &["ports"]);
    assert_eq!(ports.as_array().map(Vec::len), Some(1), "{ports:#}");
    assert_eq!(ports[0]["name"], "m0");
    // A broken configuration is refused and the old one kept.
    std::fs::write(&cfg, "[network]\npool = 3\n").unwrap();
    let err = fails(&[], &sock, &["reload"]);
    assert!(err.contains("invalid, keeping the old one"), "{err}");
    assert_eq!(json(&sock, &["ports"]).as_array().map(Vec::len), Some(1));
}

#[test]
fn capture_while_a_client_dials_is_decoded_by_tshark() {
    let vm = vmodem("1");
    let ns = NetNs::new().unwrap();
    let cfg = Cfg::default().write(vm.dir());
    let nas = Nas::start(&ns, &cfg);
    let sock = socket(vm.dir());
    let pcap = vm.dir().join("m0.pcap");
    let err = fails(&[], &sock, &["capture", "m9", "-w", "-"]);
    assert!(err.contains("no port named \"m9\""), "{err}");
    let mut cmd = Command::new(nasctl_bin());
    cmd.arg("--socket")
        .arg(&sock)
        .args(["capture", "m0", "--direction", "-w"])
        .arg(&pcap)
        .stdin(Stdio::null());
    let mut cap = Proc::spawn(cmd).unwrap();
    assert!(
        cap.stderr
            .wait_for("capturing on m0", Duration::from_secs(10)),
        "{}",
        cap.stderr.text()
    );
    // PAP, so that tshark shows the user name (the password never reaches a log).
    let mut g = guest_as(&vm, 0, "dial", "dial", true);
    dial(&mut g, &nas);
    let rc = g
        .ctl("ping -c 2 -W 3 10.0.0.1", Duration::from_secs(20))
        .unwrap();
    assert_eq!(rc, 0, "{}", nas.log());
    cap.signal("TERM");
    cap.wait(Duration::from_secs(10)).unwrap();
    assert!(
        cap.stderr.text().contains("frames captured"),
        "{}",
        cap.stderr.text()
    );
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .arg("-V")
        .env("HOME", home.path())
        .output()
        .expect("tshark (Debian package tshark) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Link Control Protocol",
        "Password Authentication Protocol",
        "Peer-ID: dial",
        "Internet Protocol Control Protocol",
        "Direction: Sent",
        "Direction: Received",
        "Internet Control Message Protocol",
    ] {
        assert!(
            text.contains(want),
            "{want:?} missing from tshark -V:\n{text}"
        );
    }
    // To standard output, stopping by itself after --count frames.
    let mut cmd = Command::new(nasctl_bin());
    cmd.arg("--socket")
        .arg(&sock)
        .args(["capture", "m0", "-w", "-", "--count", "3"])
        .stdin(Stdio::null());
    let mut cap = Proc::spawn(cmd).unwrap();
    assert!(
        cap.stderr
            .wait_for("capturing on m0", Duration::from_secs(10)),
        "{}",
        cap.stderr.text()
    );
    // The line did not notice: the session is still up and answering.
    let rc = g
        .ctl("ping -c 2 -W 3 10.0.0.1", Duration::from_secs(20))
        .unwrap();
    assert_eq!(rc, 0, "{}", nas.log());
    assert!(cap.wait(Duration::from_secs(10)).unwrap().success());
    assert!(
        cap.stderr
            .text()
            .contains("3 frames captured (count reached)"),
        "{}",
        cap.stderr.text()
    );
    let piped = vm.dir().join("piped.pcap");
    let bytes = cap.stdout.bytes();
    // Without --direction: LINKTYPE_PPP_HDLC.
    assert_eq!(bytes.get(20..24), Some(&50u32.to_le_bytes()[..]));
    std::fs::write(&piped, bytes).unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&piped)
        .env("HOME", home.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("ICMP"), "{text}");
}

/// Writes a configuration whose `[control]` section says `extra`.
fn with_control(dir: &Path, extra: &str) -> PathBuf {
    let cfg = Cfg::default().write(dir);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line = format!("socket = \"{}\"", socket(dir).display());
    assert!(text.contains(&line));
    std::fs::write(&cfg, text.replace(&line, &format!("{line}\n{extra}"))).unwrap();
    cfg
}

#[test]
fn only_root_and_the_sockets_group_may_control_nasd() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let vm = vmodem("1");
    let ns = NetNs::new().unwrap();
    let sock = socket(vm.dir());
    let err = fails(&[], &sock, &["sessions"]);
    assert!(
        err.contains(&format!(
            "nasd is not running (no socket at {})",
            sock.display()
        )),
        "{err}"
    );
    // A group that does not exist stops nasd at start, with a clear message.
    let cfg = with_control(vm.dir(), "group = \"no-such-nasd-group\"");
    let mut p = Proc::spawn({
        let mut c = ns.command(nasd());
        c.arg("--config").arg(&cfg).stdin(Stdio::null());
        c
    })
    .unwrap();
    assert!(!p.wait(Duration::from_secs(20)).unwrap().success());
    assert!(
        p.stderr
            .text()
            .contains("[control] group \"no-such-nasd-group\" does not exist"),
        "{}",
        p.stderr.text()
    );

    let cfg = with_control(vm.dir(), "group = \"dialout\"");
    let mut nas = Nas::start(&ns, &cfg);
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), 20, "owned by dialout");
    // The socket is reached through `--config` too.
    let out = Command::new(nasctl_bin())
        .arg("--config")
        .arg(&cfg)
        .arg("version")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let outsider = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let member = ["setpriv", "--reuid=65534", "--regid=65534", "--groups=20"];
    let err = fails(&outsider, &sock, &["sessions"]);
    assert!(err.contains("permission denied"), "{err}");
    let out = run(&member, &sock, &["sessions"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no sessions"));
    // Without [sip], the SIP commands fail with a clear message (tables and JSON alike).
    for args in [
        &["sip", "calls"][..],
        &["sip", "calls", "--json"],
        &["sip", "registrations"],
        &["sip", "registrations", "--json"],
    ] {
        let out = run(&[], &sock, args);
        assert_eq!(out.status.code(), Some(1), "nasctl {args:?}");
        assert!(out.stdout.is_empty(), "nasctl {args:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "nasctl: the SIP bridge is not configured (no [sip] section in nasd.toml)\n",
            "nasctl {args:?}"
        );
    }
    // With the file open to all, nasd's own check (SO_PEERCRED) still refuses outsiders.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = fails(&outsider, &sock, &["ports"]);
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        nas.log().contains("control socket: permission denied"),
        "{}",
        nas.log()
    );

    // Bad requests get error answers; the daemon carries on.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut ask = |line: &[u8]| {
        s.write_all(line).unwrap();
        let mut answer = String::new();
        r.read_line(&mut answer).unwrap();
        serde_json::from_str::<Value>(&answer).unwrap()
    };
    let a = ask(b"not json\n");
    assert_eq!(
        (a["ok"].as_bool(), a["v"].as_u64()),
        (Some(false), Some(1)),
        "{a}"
    );
    assert!(a["error"].as_str().unwrap().contains("bad request"), "{a}");
    let a = ask(b"{\"v\":2,\"cmd\":\"version\"}\n");
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("unsupported protocol version 2"),
        "{a}"
    );
    let a = ask(b"{\"v\":1,\"cmd\":\"version\"}\n");
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(a["data"]["version"], env!("CARGO_PKG_VERSION"));
    let a = ask(&vec![b'x'; 100 * 1024]);
    assert!(
        a["error"].as_str().unwrap().contains("request too long"),
        "{a}"
    );
    let mut rest = String::new();
    assert_eq!(
        r.read_line(&mut rest).unwrap_or(0),
        0,
        "closed after: {rest}"
    );
    ok(&sock, &["sessions"]);

    // A second nasd leaves the first one's socket alone.
    let mut second = Proc::spawn({
        let mut c = ns.command(nasd());
        c.arg("--config").arg(&cfg).stdin(Stdio::null());
        c
    })
    .unwrap();
    assert!(!second.wait(Duration::from_secs(20)).unwrap().success());
    let err = second.stderr.text();
    assert!(err.contains("another nasd is already listening"), "{err}");
    ok(&sock, &["sessions"]);

    // The socket goes with nasd.
    nas.proc.signal("TERM");
    nas.proc.wait(Duration::from_secs(10)).unwrap();
    assert!(!sock.exists(), "the socket is removed at exit");
    let err = fails(&[], &sock, &["stats"]);
    assert!(err.contains("nasd is not running"), "{err}");
    // A stale socket (nasd was killed) is replaced at the next start.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let mut nas = Nas::start(&ns, &cfg);
    ok(&sock, &["sessions"]);
    nas.proc.signal("TERM");
    nas.proc.wait(Duration::from_secs(10)).unwrap();
}
