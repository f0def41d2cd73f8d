//! Modem mode end to end: real pppd in User-Mode Linux dials `ATDT5551234` through vmodem
//! with a chat script, nasd-line answers the ringing line with ATA, PPP comes up and traffic
//! crosses; calls end from either side and the line answers again.

use crate::support::netns::{NetNs, Proc, nasd_line};
use crate::support::uml::{GuestOptions, LineKind, PppdGuest};
use crate::support::vmodem::Vmodem;
use md5::{Digest, Md5};
use std::process::Stdio;
use std::time::Duration;

/// The guest's chat scripts and pppd options file, written into its own /etc/ppp.
const GUEST_FILES: &str = r#"
rig_setup() {
cat > /etc/ppp/dial.chat <<'EOF'
ABORT BUSY
ABORT "NO DIALTONE"
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
cat > /etc/ppp/login.chat <<'EOF'
ABORT BUSY
TIMEOUT 30
"" "\rATZ"
OK ATDT5551234
CONNECT ""
ogin: dial
ssword: dial
PPP ""
EOF
cat > /etc/ppp/login.opts <<'EOF'
connect "/usr/sbin/chat -v -s -f /etc/ppp/login.chat"
disconnect "/usr/sbin/chat -v -s -f /etc/ppp/hangup.chat"
EOF
}
"#;

const SECRETS: &str = "dial * dial\n";

struct Pool {
    nas: Proc,
    guest: PppdGuest,
    ns: NetNs,
    vm: Vmodem,
}

/// vmodem with one line, nasd-line answering its server side in a namespace, and a guest
/// whose serial line is the client side.
fn pool(vm_args: &[&str], nas_args: &[&str]) -> Pool {
    let vm = Vmodem::start(vm_args);
    let secrets = vm.dir().join("secrets");
    std::fs::write(&secrets, SECRETS).unwrap();
    let ns = NetNs::new().unwrap();
    let mut cmd = ns.command(nasd_line());
    cmd.arg("--device")
        .arg(vm.server(0))
        .args([
            "--mode",
            "modem",
            "--calls",
            "0",
            "--auth",
            "chap",
            "--tun",
            "ppp-nasd0",
        ])
        .arg("--lock-dir")
        .arg(vm.dir())
        .arg("--secrets")
        .arg(&secrets)
        .args(nas_args)
        .stdin(Stdio::null());
    let nas = Proc::spawn(cmd).unwrap();
    assert!(
        nas.stderr.wait_for("state=Idle", Duration::from_secs(30)),
        "the modem never became ready:\n{}\nvmodem:\n{}",
        nas.stderr.text(),
        vm.log()
    );
    let (guest, _) = PppdGuest::spawn(GuestOptions {
        ctl: true,
        line: LineKind::Path,
        line_path: Some(vm.client(0)),
        conf_extra: GUEST_FILES.into(),
        timeout: Duration::from_secs(240),
        ..GuestOptions::ctl()
    })
    .unwrap();
    Pool { nas, guest, ns, vm }
}

impl Pool {
    fn explain(&self) -> String {
        format!(
            "guest:\n{}\nctl:\n{}\nnasd:\n{}{}\nvmodem:\n{}",
            self.guest.console(),
            self.guest.ctl_log(),
            self.nas.stderr.text(),
            self.nas.stdout.text(),
            self.vm.log()
        )
    }

    /// Dials and brings PPP up; checks a ping.
    fn call(&mut self) {
        let rc = self
            .guest
            .ctl("ppp_up file /etc/ppp/dial.opts", Duration::from_secs(60))
            .unwrap();
        assert_eq!(rc, 0, "dial-in failed:\n{}", self.explain());
        let rc = self
            .guest
            .ctl("ping -c 2 -W 3 10.0.0.1", Duration::from_secs(20))
            .unwrap();
        assert_eq!(rc, 0, "no ping:\n{}", self.explain());
    }

    /// Waits until nasd has ended `n` sessions and its modem is idle again.
    fn wait_ended(&self, n: usize, reason: &str) {
        let ok = self
            .nas
            .stdout
            .wait_for_count("session ended:", n, Duration::from_secs(30))
            && self
                .nas
                .stderr
                .wait_for_count("state=Idle", n + 1, Duration::from_secs(30));
        assert!(ok, "call {n} did not end and re-arm:\n{}", self.explain());
        let out = self.nas.stdout.text();
        let last = out
            .lines()
            .filter(|l| l.starts_with("session ended:"))
            .nth(n - 1)
            .unwrap_or("");
        assert!(
            last.contains(reason),
            "call {n}: `{last}`, expected {reason}"
        );
    }

    /// Waits until neither pppd nor a chat script runs in the guest.
    fn wait_pppd_gone(&mut self) {
        let rc = self
            .guest
            .ctl(
                "n=0; while pidof pppd chat >/dev/null && [ $n -lt 150 ]; do usleep 100000; \
                 n=$((n+1)); done; ! pidof pppd chat",
                Duration::from_secs(30),
            )
            .unwrap();
        assert_eq!(rc, 0, "pppd still running:\n{}", self.explain());
    }

    /// The client hangs up: pppd terminates and its disconnect script hangs up the modem.
    fn hang_up(&mut self) {
        self.guest.ctl("ppp_down", Duration::from_secs(30)).unwrap();
        self.wait_pppd_gone();
    }
}

#[test]
fn pppd_dials_through_vmodem_four_calls_on_one_line() {
    let mut p = pool(
        &[
            "--lines",
            "1",
            "--number",
            "5551234",
            "--rate",
            "115200",
            "--ring-interval-ms",
            "300",
        ],
        &["--echo-interval", "5"],
    );

    // 1: the client hangs up (pppd terminates, its disconnect script hangs up the modem).
    p.call();
    let log = p.nas.stderr.text();
    assert!(log.contains("RING") && log.contains("CONNECT"), "{log}");
    assert!(
        log.contains("caller=Some(\"5550000\")"),
        "caller id missing:\n{log}"
    );
    p.hang_up();
    p.wait_ended(1, "peer-terminated");

    // 2: the server hangs up (SIGUSR1 = administrative close; nasd drops the call).
    p.call();
    p.nas.signal("USR1");
    p.wait_ended(2, "admin");
    p.wait_pppd_gone();

    // 3: the line is cut: the modems say NO CARRIER, nasd ends the session within a second.
    p.call();
    let cut = p.vm.ctl(r#"{"cmd":"cut","line":0}"#);
    assert_eq!(cut["ok"], true, "{cut}");
    let t0 = std::time::Instant::now();
    assert!(
        p.nas
            .stdout
            .wait_for_count("session ended:", 3, Duration::from_secs(5)),
        "{}",
        p.explain()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "carrier loss took {:?}",
        t0.elapsed()
    );
    p.wait_ended(3, "lost-carrier");
    p.hang_up();

    // 4: and the line still answers.
    p.call();
    p.hang_up();
    p.wait_ended(4, "peer-terminated");
    let _ = &p.ns;
}

#[test]
fn noisy_line_still_carries_ping_and_100kb() {
    // Bit error rate 1e-5: about one damaged frame in seven; FCS drops them, TCP resends.
    let mut p = pool(
        &[
            "--lines",
            "1",
            "--number",
            "5551234",
            "--rate",
            "115200",
            "--ring-interval-ms",
            "300",
        ],
        &[],
    );
    let noise = p.vm.ctl(r#"{"cmd":"noise","line":0,"ber":0.00001}"#);
    assert_eq!(noise["ok"], true, "{noise}");
    p.call();
    // A receiver in the NAS namespace; the guest sends 100 KB of random data.
    let mut rx = p.ns.command("busybox");
    // A stdin that stays open: busybox nc ends the connection when its stdin ends.
    rx.args(["nc", "-l", "-p", "5001"]).stdin(Stdio::piped());
    let mut rx = Proc::spawn(rx).unwrap();
    let (rc, out) = p
        .guest
        .ctl_output(
            "dd if=/dev/urandom of=/tmp/x bs=1024 count=100 2>/dev/null && md5sum /tmp/x && \
             n=0; until nc 10.0.0.1 5001 < /tmp/x; do n=$((n+1)); [ $n -gt 20 ] && break; usleep 200000; done",
            Duration::from_secs(120),
        )
        .unwrap();
    assert_eq!(rc, 0, "{out}\n{}", p.explain());
    rx.wait(Duration::from_secs(60)).unwrap();
    let got = rx.stdout.bytes();
    assert_eq!(
        got.len(),
        100 * 1024,
        "received {} bytes; guest: {out}\n{}",
        got.len(),
        rx.stderr.text()
    );
    let sum: String = Md5::digest(&got)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(out.contains(&sum), "checksum differs: {sum} vs {out}");
    // The noise really hit the upload (about 1.2 Mbit at 1e-5: some 12 flipped bits), and
    // nasd's decoder dropped the damaged frames.
    let list = p.vm.ctl(r#"{"cmd":"list"}"#);
    let flips = list["lines"][0]["call"]["to_server"]["bits_flipped"]
        .as_u64()
        .unwrap_or(0);
    assert!(flips > 0, "no noise: {list}");
    p.hang_up();
    p.wait_ended(1, "peer-terminated");
    let stats = p.nas.stdout.text();
    let bad: u32 = stats
        .split("bad fcs ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or(0);
    assert!(bad > 0, "no damaged frame was seen: {stats}");
}

#[test]
fn a_scripted_terminal_login_then_ppp() {
    // Old clients log in at `login:` / `Password:` and then start PPP without PPP
    // authentication; pppd's chat script plays that part here.
    let mut p = pool(
        &[
            "--lines",
            "1",
            "--number",
            "5551234",
            "--rate",
            "115200",
            "--ring-interval-ms",
            "300",
        ],
        &["--login"],
    );
    let rc = p
        .guest
        .ctl("ppp_up file /etc/ppp/login.opts", Duration::from_secs(60))
        .unwrap();
    assert_eq!(rc, 0, "login and PPP failed:\n{}", p.explain());
    let console = p.guest.console();
    assert!(console.contains("ssword:"), "{console}");
    assert!(
        !console.contains("CHAP") && !console.contains("PAP"),
        "PPP asked for auth again"
    );
    assert!(
        p.nas
            .stderr
            .wait_for("session up user=dial", Duration::from_secs(10)),
        "{}",
        p.explain()
    );
    let rc = p
        .guest
        .ctl("ping -c 2 -W 3 10.0.0.1", Duration::from_secs(20))
        .unwrap();
    assert_eq!(rc, 0, "{}", p.explain());
    p.hang_up();
    p.wait_ended(1, "peer-terminated");
}
