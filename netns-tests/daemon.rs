//! The pool daemon end to end: real pppd clients dial through vmodem into `nasd`, which
//! routes them through its TUN device, masquerades them to an "internet" namespace, stops
//! spoofed packets, answers proxy ARP on a LAN, and cleans up after itself.

use crate::support::netns::{NetNs, Proc, nasd};
use crate::support::topology::{icmp_sink, ip, tcp_sink, veth};
use crate::support::uml::{GuestOptions, LineKind, PppdGuest};
use crate::support::vmodem::Vmodem;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The guest's dial script (chat through vmodem) and hang-up script.
pub(crate) const GUEST_FILES: &str = r#"
rig_setup() {
cat > /etc/ppp/dial.chat <<'EOF'
ABORT BUSY
TIMEOUT 30
"" "\rATZ"
OK ATDT5551234
CONNECT ""
EOF
cat > /etc/ppp/hangup.chat <<'EOF'
TIMEOUT 3
"" "\d+++\d\c"
"" "\rATH0"
OK ""
EOF
cat > /etc/ppp/dial.opts <<'EOF'
connect "/usr/sbin/chat -v -s -f /etc/ppp/dial.chat"
disconnect "/usr/sbin/chat -v -s -f /etc/ppp/hangup.chat"
EOF
}
"#;

pub(crate) struct Nas {
    pub(crate) proc: Proc,
}

impl Nas {
    pub(crate) fn start(ns: &NetNs, config: &Path) -> Nas {
        Self::start_with(ns, config, &[])
    }
    /// Starts nasd with these extra environment variables.
    pub(crate) fn start_with(ns: &NetNs, config: &Path, env: &[(&str, String)]) -> Nas {
        let mut cmd = ns.command(nasd());
        cmd.arg("--config").arg(config).stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Proc::spawn(cmd).unwrap();
        assert!(
            proc.stderr.wait_for("state=Idle", Duration::from_secs(30)),
            "nasd did not become ready:\n{}",
            proc.stderr.text()
        );
        Nas { proc }
    }
    pub(crate) fn log(&self) -> String {
        self.proc.stderr.text()
    }
}

/// A generated nasd configuration: `lines` modem ports on vmodem's `DIR/server<i>`, the
/// journal and control socket in `DIR`, the secrets file `DIR/secrets` (users `dial` and
/// `fixed`, each with its name as password; `fixed` gets 10.0.0.150).
pub(crate) struct Cfg<'a> {
    pub lines: usize,
    /// Extra lines of `[network]`.
    pub network: &'a str,
    /// `[ppp] auth`.
    pub ppp_auth: &'a str,
    /// Other lines of `[ppp]`.
    pub ppp: &'a str,
    /// The body of `[auth]` (`secrets = "DIR/secrets"` when empty).
    pub auth: &'a str,
    /// Extra lines of `[accounting]`.
    pub accounting: &'a str,
    /// More sections at the end (`[radius]`, ...).
    pub tail: &'a str,
    /// Extra lines of every `[[port]]`.
    pub port: &'a str,
}

impl Default for Cfg<'_> {
    fn default() -> Self {
        Cfg {
            lines: 1,
            network: "",
            ppp_auth: r#"["chap", "pap"]"#,
            ppp: "echo_interval = 10",
            auth: "",
            accounting: "",
            tail: "",
            port: "",
        }
    }
}

impl Cfg<'_> {
    /// Writes `DIR/nasd.toml` and `DIR/secrets`; the configuration's path.
    pub(crate) fn write(&self, dir: &Path) -> std::path::PathBuf {
        let d = dir.display();
        let auth = if self.auth.is_empty() {
            format!("secrets = \"{d}/secrets\"")
        } else {
            self.auth.to_string()
        };
        let (network, ppp_auth, ppp, accounting, tail) = (
            self.network,
            self.ppp_auth,
            self.ppp,
            self.accounting,
            self.tail,
        );
        let mut c = format!(
            r#"[network]
local_ip = "10.0.0.1"
pool = "10.0.0.100-10.0.0.199"
dns = ["10.0.0.1"]
tun = "nasd0"
{network}

[ppp]
auth = {ppp_auth}
{ppp}

[auth]
{auth}

[control]
socket = "{d}/nasd.sock"

[accounting]
journal = "{d}/accounting.jsonl"
{accounting}

{tail}
"#
        );
        for i in 0..self.lines {
            c.push_str(&format!(
                "\n[[port]]\nname = \"m{i}\"\ndevice = \"{d}/server{i}\"\nmode = \"modem\"\n\
                 flow_control = \"none\"\nlock_dir = \"{d}\"\n{}\n",
                self.port
            ));
        }
        let path = dir.join("nasd.toml");
        std::fs::write(&path, c).unwrap();
        std::fs::write(
            dir.join("secrets"),
            "dial * dial\nfixed * fixed 10.0.0.150\n",
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(dir.join("secrets"), mode).unwrap();
        }
        path
    }
}

fn config(dir: &Path, lines: usize, network_extra: &str) -> std::path::PathBuf {
    Cfg {
        lines,
        network: network_extra,
        ..Cfg::default()
    }
    .write(dir)
}

/// The accounting journal's records.
pub(crate) fn journal(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("accounting.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn guest(vm: &Vmodem, line: usize, user: &str) -> PppdGuest {
    guest_as(vm, line, user, user, false)
}

/// A pppd guest on vmodem's client line `line` with these credentials; `pap_only` makes it
/// refuse CHAP.
pub(crate) fn guest_as(
    vm: &Vmodem,
    line: usize,
    user: &str,
    password: &str,
    pap_only: bool,
) -> PppdGuest {
    let (g, _) = PppdGuest::spawn(GuestOptions {
        ctl: true,
        line: LineKind::Path,
        line_path: Some(vm.client(line)),
        conf_extra: GUEST_FILES.into(),
        user: user.into(),
        password: password.into(),
        pppd_extra: if pap_only {
            vec!["refuse-chap".into()]
        } else {
            Vec::new()
        },
        timeout: Duration::from_secs(240),
        ..GuestOptions::ctl()
    })
    .unwrap();
    g
}

pub(crate) fn dial(g: &mut PppdGuest, nas: &Nas) {
    let rc = g
        .ctl("ppp_up file /etc/ppp/dial.opts", Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        rc,
        0,
        "dial-in failed:\n{}\nnasd:\n{}",
        g.console(),
        nas.log()
    );
}

pub(crate) fn vmodem(lines: &str) -> Vmodem {
    Vmodem::start(&[
        "--lines",
        lines,
        "--number",
        "5551234",
        "--rate",
        "2000000",
        "--ring-interval-ms",
        "300",
    ])
}

fn table_exists(ns: &NetNs) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "nft",
            "list",
            "table",
            "inet",
            "nasd",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn masquerade_to_the_internet_with_a_1mb_transfer_and_no_spoofing() {
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    let inet = NetNs::new().unwrap();
    veth(
        &nas_ns,
        "inet0",
        "198.51.100.1/24",
        &inet,
        "eth0",
        "198.51.100.2/24",
    );
    let cfg = config(
        vm.dir(),
        1,
        "masquerade = \"inet0\"\nisolate_clients = true",
    );
    let mut nas = Nas::start(&nas_ns, &cfg);
    assert!(table_exists(&nas_ns), "table inet nasd is installed");
    let mut g = guest(&vm, 0, "dial");
    dial(&mut g, &nas);
    assert!(
        nas.proc
            .stderr
            .wait_for("session up", Duration::from_secs(10))
    );
    let route = ip(&nas_ns, &["-4", "route", "show", "10.0.0.100"]);
    assert!(route.contains("dev nasd0"), "host route: {route}");

    // Ping and 1 MB through the masquerade; the internet host has no route back to the pool.
    let icmp = icmp_sink(&inet);
    let rc = g
        .ctl("ping -c 2 -W 3 198.51.100.2", Duration::from_secs(20))
        .unwrap();
    assert_eq!(rc, 0, "{}", nas.log());
    let sink = tcp_sink(&inet, 5001);
    let (rc, out) = g
        .ctl_output(
            "dd if=/dev/urandom of=/tmp/x bs=1024 count=1024 2>/dev/null && md5sum /tmp/x && \
             nc 198.51.100.2 5001 < /tmp/x",
            Duration::from_secs(120),
        )
        .unwrap();
    assert_eq!(rc, 0, "{out}");
    assert!(
        sink.stdout.wait_for("\"md5\"", Duration::from_secs(60)),
        "{}",
        sink.stderr.text()
    );
    let last = sink.stdout.text().lines().last().unwrap_or("").to_string();
    let got: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(got["bytes"], 1024 * 1024);
    assert!(
        out.contains(got["md5"].as_str().unwrap()),
        "byte for byte: {out} vs {got}"
    );
    assert_eq!(got["peer"], "198.51.100.1", "masqueraded source");

    // Spoofed sources (an outside address, and another user's pool address) never leave.
    for spoof in ["203.0.113.9", "10.0.0.150"] {
        g.ctl(
            &format!("ip addr add {spoof}/32 dev lo"),
            Duration::from_secs(5),
        )
        .unwrap();
        let cmd = format!("ping -I {spoof} -c 3 -W 1 198.51.100.2");
        g.ctl(&cmd, Duration::from_secs(20)).unwrap();
    }
    // A last legitimate ping proves the capture was running all along.
    assert_eq!(
        g.ctl("ping -c 1 -W 3 198.51.100.2", Duration::from_secs(20))
            .unwrap(),
        0
    );
    assert!(
        icmp.stdout
            .wait_for_count("echo_from", 3, Duration::from_secs(10))
    );
    let seen = icmp.stdout.text();
    assert!(
        !seen.contains("203.0.113.9") && !seen.contains("10.0.0.150"),
        "spoofed packets left: {seen}"
    );

    // SIGTERM: the call ends cleanly, the table goes.
    nas.proc.signal("TERM");
    let t0 = std::time::Instant::now();
    nas.proc.wait(Duration::from_secs(10)).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "shutdown took {:?}",
        t0.elapsed()
    );
    assert!(nas.log().contains("reason=admin"), "{}", nas.log());
    assert!(!table_exists(&nas_ns), "table inet nasd removed at exit");
    // The accounting stop is on disk, with the megabyte, before Accounting-Off.
    let recs = journal(vm.dir());
    let kinds: Vec<_> = recs
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["accounting-on", "start", "stop", "accounting-off"],
        "{recs:?}"
    );
    assert_eq!(recs[2]["terminate_cause"], "admin-reboot");
    assert_eq!(recs[2]["user"], "dial");
    assert!(
        recs[2]["rx_bytes"].as_u64().unwrap() > 1024 * 1024,
        "{:?}",
        recs[2]
    );
}

#[test]
fn proxy_arp_makes_a_caller_reachable_from_the_lan() {
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    let lan = NetNs::new().unwrap();
    veth(&nas_ns, "lan0", "10.0.0.2/24", &lan, "eth0", "10.0.0.50/24");
    let cfg = config(vm.dir(), 1, "proxy_arp = true");
    let nas = Nas::start(&nas_ns, &cfg);
    let mut g = guest(&vm, 0, "dial");
    dial(&mut g, &nas);
    assert!(
        nas.proc
            .stderr
            .wait_for("session up", Duration::from_secs(10))
    );
    // The LAN host reaches the caller directly, no NAT, through proxy ARP.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            lan.name(),
            "ping",
            "-c",
            "2",
            "-W",
            "3",
            "10.0.0.100",
        ])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}\n{}", nas.log());
    let neigh = ip(&lan, &["neigh", "show", "10.0.0.100"]);
    let link = ip(&nas_ns, &["link", "show", "lan0"]);
    let nas_mac = link
        .split("link/ether ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next());
    assert!(
        neigh.contains(nas_mac.unwrap()),
        "answered by the NAS: {neigh} / {link}"
    );
    // The caller hangs up: the proxy entry goes.
    g.ctl("ppp_down", Duration::from_secs(30)).unwrap();
    assert!(
        nas.proc
            .stderr
            .wait_for("session ended", Duration::from_secs(20)),
        "{}",
        nas.log()
    );
    assert!(
        nas.proc
            .stderr
            .wait_for("released", Duration::from_secs(10)),
        "{}",
        nas.log()
    );
    let proxies = ip(&nas_ns, &["neigh", "show", "proxy"]);
    assert!(!proxies.contains("10.0.0.100"), "{proxies}");
}

#[test]
fn proxy_arp_without_a_lan_fails_at_start_with_a_clear_message() {
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    let cfg = config(vm.dir(), 1, "proxy_arp = true");
    let mut cmd = nas_ns.command(nasd());
    cmd.arg("--config").arg(&cfg).stdin(Stdio::null());
    let mut p = Proc::spawn(cmd).unwrap();
    let st = p.wait(Duration::from_secs(20)).unwrap();
    assert!(!st.success());
    let err = p.stderr.text();
    assert!(
        err.contains("10.0.0.100-10.0.0.199"),
        "names the pool: {err}"
    );
    assert!(
        err.to_lowercase().contains("interface"),
        "names the problem: {err}"
    );
}

#[test]
fn a_missing_masquerade_interface_is_reported_and_forwarding_turned_on() {
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    // A new namespace starts with forwarding off.
    let fwd = || {
        let out = nas_ns
            .command("cat")
            .arg("/proc/sys/net/ipv4/ip_forward")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(fwd(), "0");
    let cfg = config(vm.dir(), 1, "masquerade = \"wan9\"");
    let mut nas = Nas::start(&nas_ns, &cfg);
    let log = nas.log();
    assert!(
        log.contains("masquerade interface \"wan9\" does not exist"),
        "warns about the missing uplink: {log}"
    );
    assert!(log.contains("IPv4 forwarding was off: enabled"), "{log}");
    assert_eq!(fwd(), "1");
    nas.proc.signal("TERM");
    nas.proc.wait(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_killed_nasd_leaves_nothing_after_a_restart() {
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    let inet = NetNs::new().unwrap();
    veth(
        &nas_ns,
        "inet0",
        "198.51.100.1/24",
        &inet,
        "eth0",
        "198.51.100.2/24",
    );
    let cfg = config(vm.dir(), 1, "masquerade = \"inet0\"");
    let mut nas = Nas::start(&nas_ns, &cfg);
    let mut g = guest(&vm, 0, "fixed");
    dial(&mut g, &nas);
    assert!(
        nas.proc
            .stderr
            .wait_for("session up", Duration::from_secs(10))
    );
    assert!(
        ip(&nas_ns, &["-4", "route"]).contains("10.0.0.150"),
        "the fixed address"
    );
    // SIGKILL: nothing is cleaned up ...
    nas.proc.signal("KILL");
    let _ = nas.proc.wait(Duration::from_secs(10));
    g.ctl("ppp_down", Duration::from_secs(30)).unwrap();
    assert!(table_exists(&nas_ns));
    // ... until nasd starts again: the stale table is replaced, stale routes removed.
    let mut nas = Nas::start(&nas_ns, &cfg);
    assert!(table_exists(&nas_ns));
    let routes = ip(&nas_ns, &["-4", "route"]);
    assert!(
        !routes.contains("10.0.0.150"),
        "stale route removed: {routes}"
    );
    nas.proc.signal("TERM");
    nas.proc.wait(Duration::from_secs(10)).unwrap();
    assert!(!table_exists(&nas_ns));
    let routes = ip(&nas_ns, &["-4", "route"]);
    assert!(
        !routes.contains("10.0.0.1"),
        "no routes into the pool: {routes}"
    );
}

#[test]
fn sighup_adds_a_port_and_reloads_users_during_a_call() {
    let vm = vmodem("2");
    let nas_ns = NetNs::new().unwrap();
    let cfg = config(vm.dir(), 1, "");
    let nas = Nas::start(&nas_ns, &cfg);
    let mut g = guest(&vm, 0, "dial");
    dial(&mut g, &nas);
    // Add the second port and a new user; reload.
    config(vm.dir(), 2, "");
    std::fs::write(vm.dir().join("secrets"), "dial * dial\nnewbie * newbie\n").unwrap();
    nas.proc.signal("HUP");
    let ready = nas
        .proc
        .stderr
        .wait_for_count("state=Idle", 2, Duration::from_secs(20));
    assert!(ready, "{}", nas.log());
    // The live call was not dropped.
    let rc = g
        .ctl("ping -c 1 -W 3 10.0.0.1", Duration::from_secs(20))
        .unwrap();
    assert_eq!(rc, 0, "{}", nas.log());
    assert!(!nas.log().contains("session ended"), "{}", nas.log());
    // The new user dials in on the new line.
    let mut g2 = guest(&vm, 1, "newbie");
    dial(&mut g2, &nas);
    assert_eq!(
        g2.ctl("ping -c 1 -W 3 10.0.0.1", Duration::from_secs(20))
            .unwrap(),
        0
    );
    assert!(nas.log().contains("user=newbie"), "{}", nas.log());
}

#[test]
fn check_rejects_broken_configurations_with_line_numbers() {
    let dir = std::env::temp_dir().join(format!("nasd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = config(&dir, 1, "");
    let ok = Command::new(nasd())
        .arg("--config")
        .arg(&good)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = std::fs::read_to_string(&good).unwrap();
    let no_device: Vec<&str> = text.lines().filter(|l| !l.starts_with("device")).collect();
    for (broken, needle) in [
        (
            text.replace("10.0.0.100-10.0.0.199", "10.0.0.300-10.0.0.399"),
            "nasd.toml:3:",
        ),
        (
            text.replace("pool = \"10.0.0.100-10.0.0.199\"", "pool = \"10.0.0.0/24\""),
            "nasd.toml:",
        ),
        (
            text.replace("tun = \"nasd0\"", "tun = \"nasd0\"\ncolour = \"blue\""),
            "colour",
        ),
        (no_device.join("\n"), "device"),
    ] {
        std::fs::write(&good, &broken).unwrap();
        let out = Command::new(nasd())
            .arg("--config")
            .arg(&good)
            .arg("--check")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{broken}");
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn isolated_clients_cannot_reach_each_other_and_sessions_time_out() {
    let vm = vmodem("2");
    let nas_ns = NetNs::new().unwrap();
    let cfg = config(vm.dir(), 2, "isolate_clients = true");
    // A session limit of 8 seconds for everybody.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "echo_interval = 10",
            "echo_interval = 10\nsession_timeout = 8",
        ),
    )
    .unwrap();
    // With forwarding on, the kernel would carry A's packets back out to B: only the
    // isolation can stop them.
    let fwd = Command::new("ip")
        .args([
            "netns",
            "exec",
            nas_ns.name(),
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .unwrap();
    assert!(fwd.success());
    let nas = Nas::start(&nas_ns, &cfg);
    let mut a = guest(&vm, 0, "dial");
    let mut b = guest(&vm, 1, "fixed");
    dial(&mut a, &nas);
    dial(&mut b, &nas);
    // Both reach the NAS, neither reaches the other.
    assert_eq!(
        a.ctl("ping -c 1 -W 3 10.0.0.1", Duration::from_secs(20))
            .unwrap(),
        0
    );
    assert_eq!(
        b.ctl("ping -c 1 -W 3 10.0.0.1", Duration::from_secs(20))
            .unwrap(),
        0
    );
    assert_ne!(
        a.ctl("ping -c 2 -W 1 10.0.0.150", Duration::from_secs(20))
            .unwrap(),
        0
    );
    // The session limit ends both calls with the right reason.
    assert!(
        nas.proc
            .stderr
            .wait_for_count("reason=session-timeout", 2, Duration::from_secs(30)),
        "{}",
        nas.log()
    );
}

#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    let cfg = config(vm.dir(), 1, "");
    let sock_path = vm.dir().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let env = [
        ("NOTIFY_SOCKET", sock_path.display().to_string()),
        ("WATCHDOG_USEC", "400000".to_string()),
    ];
    let mut nas = Nas::start_with(&nas_ns, &cfg, &env);
    let mut buf = [0u8; 4096];
    let mut next = || {
        let n = sock.recv(&mut buf).expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut wait_for = |what: &str| {
        let mut seen = Vec::new();
        loop {
            let m = next();
            if m.contains(what) {
                return seen;
            }
            seen.push(m);
            assert!(seen.len() < 100, "no {what}: {seen:?}");
        }
    };
    assert!(wait_for("READY=1").is_empty(), "READY=1 comes first");
    // Keep-alives at half the watchdog period.
    wait_for("WATCHDOG=1");
    wait_for("WATCHDOG=1");
    nas.proc.signal("HUP");
    wait_for("RELOADING=1");
    wait_for("READY=1");
    nas.proc.signal("TERM");
    wait_for("STOPPING=1");
    nas.proc.wait(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_client_that_dies_silently_is_ended_by_the_echo_timeout() {
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    let cfg = Cfg {
        ppp: "echo_interval = 1\necho_failure = 3",
        ..Cfg::default()
    }
    .write(vm.dir());
    let nas = Nas::start(&nas_ns, &cfg);
    let mut g = guest(&vm, 0, "dial");
    dial(&mut g, &nas);
    // pppd freezes: the call stays up, but nothing answers nasd's LCP echoes any more.
    assert_eq!(
        g.ctl("kill -STOP $(pidof pppd)", Duration::from_secs(10))
            .unwrap(),
        0
    );
    assert!(
        nas.proc
            .stderr
            .wait_for("reason=echo-timeout", Duration::from_secs(20)),
        "{}",
        nas.log()
    );
    // The address is free again, the accounting stop says why.
    assert!(
        nas.proc
            .stderr
            .wait_for("address released", Duration::from_secs(10))
    );
    let stop: Vec<_> = journal(vm.dir())
        .into_iter()
        .filter(|r| r["kind"] == "stop")
        .collect();
    assert_eq!(stop.len(), 1, "{stop:?}");
    assert_eq!(stop[0]["terminate_cause"], "lost-service");
    let _ = g.ctl("kill -CONT $(pidof pppd)", Duration::from_secs(10));
}

#[test]
fn under_systemd_the_log_goes_to_the_journal_with_structured_fields() {
    use std::os::unix::net::UnixDatagram;
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    let cfg = config(vm.dir(), 1, "");
    // A stand-in for journald's socket, seen by nasd (in a mount namespace of its own) at
    // /run/systemd/journal/socket; the host's /run is not touched beyond an empty directory.
    let jdir = tempfile::tempdir().unwrap();
    let journal = UnixDatagram::bind(jdir.path().join("socket")).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let script = format!(
        "mkdir -p /run/systemd/journal && mount --bind {} /run/systemd/journal && \
         exec {} --config {}",
        jdir.path().display(),
        nasd().display(),
        cfg.display()
    );
    let mut cmd = nas_ns.command("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("JOURNAL_STREAM", "8:12345")
        .stdin(Stdio::null());
    let mut nas = Proc::spawn(cmd).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    let found = loop {
        let Ok(n) = journal.recv(&mut buf) else {
            break None;
        };
        let fields = journal_fields(&buf[..n]);
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
        if get("PORT") == Some("m0") && get("STATE") == Some("Idle") {
            break Some(fields);
        }
        seen.push(fields);
    };
    let Some(fields) = found else {
        panic!("no structured port event: {seen:?}\n{}", nas.stderr.text());
    };
    assert!(
        fields
            .iter()
            .any(|(k, v)| k == "SYSLOG_IDENTIFIER" && v == "nasd"),
        "{fields:?}"
    );
    assert!(
        !nas.stderr.text().contains("nasd running"),
        "not also on stderr: {}",
        nas.stderr.text()
    );
    nas.signal("TERM");
    nas.wait(Duration::from_secs(10)).unwrap();
}

/// The fields of one message in journald's native protocol: `NAME=value` lines, or
/// `NAME`, newline, a 64-bit little-endian length and the value, newline.
fn journal_fields(mut b: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let Some(end) = b.iter().position(|&c| c == b'\n' || c == b'=') else {
            break;
        };
        let name = String::from_utf8_lossy(&b[..end]).into_owned();
        if b[end] == b'=' {
            let rest = &b[end + 1..];
            let stop = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            out.push((name, String::from_utf8_lossy(&rest[..stop]).into_owned()));
            b = rest.get(stop + 1..).unwrap_or(&[]);
        } else {
            let Some(len) = b.get(end + 1..end + 9) else {
                break;
            };
            let len = u64::from_le_bytes(len.try_into().unwrap()) as usize;
            let Some(value) = b.get(end + 9..end + 9 + len) else {
                break;
            };
            out.push((name, String::from_utf8_lossy(value).into_owned()));
            b = b.get(end + 10 + len..).unwrap_or(&[]);
        }
    }
    out
}
