//! Real Linux pppd (Debian's, inside User-Mode Linux) against nasd's PPP engine on a
//! pseudo-terminal line, with nasd-line in its own network namespace routing through TUN.

use crate::support::netns::{NetNs, Proc, nasd_line};
use crate::support::uml::{GuestOptions, PppdGuest};
use std::process::Stdio;
use std::time::Duration;

const SECRETS: &str = "# client server secret addresses\ndial * dial\n";

struct Call {
    guest: PppdGuest,
    nas: Proc,
    ns: NetNs,
    _dir: tempdir::Dir,
}

mod tempdir {
    use std::path::{Path, PathBuf};
    /// A directory removed on drop.
    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new() -> std::io::Result<Self> {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("nasd-interop-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p)?;
            Ok(Self(p))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Boots pppd with `opts` and runs nasd-line with `auth` on the other end of its line.
fn dial(auth: &str, opts: GuestOptions) -> Call {
    dial_with(auth, &[], opts)
}

fn dial_with(auth: &str, extra: &[&str], opts: GuestOptions) -> Call {
    let dir = tempdir::Dir::new().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(&secrets, SECRETS).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let ns = NetNs::new().unwrap();
    let (guest, line) = PppdGuest::spawn(opts).unwrap();
    let mut cmd = ns.command(nasd_line());
    cmd.args(["--device", "-", "--auth", auth, "--tun", "ppp-nasd0"])
        .args([
            "--local-ip",
            "10.0.0.1",
            "--peer-ip",
            "10.0.0.2",
            "--dns",
            "10.0.0.53",
        ])
        .arg("--secrets")
        .arg(&secrets)
        .args(extra)
        .stdin(Stdio::from(line));
    let nas = Proc::spawn(cmd).unwrap();
    Call {
        guest,
        nas,
        ns,
        _dir: dir,
    }
}

fn guest(user: &str, password: &str) -> GuestOptions {
    GuestOptions {
        user: user.into(),
        password: password.into(),
        // Let pppd offer compression: it then sends CCP, as on a stock system.
        extra_modules: vec!["ppp_deflate".into(), "bsd_comp".into()],
        test_cmd: "ping -c 3 -W 3 10.0.0.1".into(),
        timeout: Duration::from_secs(90),
        ..GuestOptions::auto()
    }
}

/// pppd with its defaults reaches IPCP Opened and pings the server through nasd and TUN.
fn defaults_and_ping(auth: &str, shown: &str) {
    let mut c = dial(auth, guest("dial", "dial"));
    // While the call is up, nasd has put the link's addresses on its TUN device.
    assert!(
        c.nas.stderr.wait_for("session up", Duration::from_secs(60)),
        "no session:\n{}\n{}",
        c.guest.console(),
        c.nas.stderr.text()
    );
    let addr =
        c.ns.ip_output(&["-4", "addr", "show", "dev", "ppp-nasd0"])
            .unwrap();
    assert!(
        addr.contains("inet 10.0.0.1 peer 10.0.0.2/32"),
        "in {}: {addr}",
        c.ns.name()
    );
    let rc = c.guest.wait_result(Duration::from_secs(60)).unwrap();
    let console = c.guest.console();
    let (nas_out, nas_err) = (c.nas.stdout.clone(), c.nas.stderr.clone());
    let nas_log = || format!("{}\n{}", nas_err.text(), nas_out.text());
    assert_eq!(
        rc,
        0,
        "pppd/ping failed.\nguest:\n{console}\nnasd:\n{}",
        nas_log()
    );
    for needle in [
        // pppd asks for PFC and ACFC by default, and nasd acks them.
        "<pcomp> <accomp>]",
        shown,
        "local  IP address 10.0.0.2",
        "remote IP address 10.0.0.1",
        // pppd's defaults bring IPV6CP and CCP, which nasd does not speak.
        "Protocol-Reject for 'IPv6 Control Protocol' (0x8057) received",
        "Protocol-Reject for 'Compression Control Protocol' (0x80fd) received",
        "3 packets transmitted, 3 packets received",
    ] {
        assert!(
            console.contains(needle),
            "`{needle}` missing from the guest log:\n{console}"
        );
    }
    assert!(
        console.contains("rcvd [LCP ConfAck id=0x1 <asyncmap 0x0>"),
        "{console}"
    );
    // The guest powers off: pppd terminates the link and nasd ends the session.
    c.nas.wait(Duration::from_secs(20)).unwrap();
    let out = c.nas.stdout.text();
    assert!(
        out.contains("session ended: peer-terminated"),
        "{}",
        nas_log()
    );
    let packets_in: u32 = out
        .split("packets in ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(packets_in >= 3, "nasd saw {packets_in} packets: {out}");
}

#[test]
fn pppd_pap_with_defaults_reaches_ipcp_and_pings() {
    defaults_and_ping("pap", "PAP authentication succeeded");
}

#[test]
fn pppd_chap_with_defaults_reaches_ipcp_and_pings() {
    defaults_and_ping("chap", "CHAP authentication succeeded");
}

#[test]
fn pppd_offered_chap_then_pap_takes_chap() {
    defaults_and_ping("chap,pap", "CHAP authentication succeeded");
}

#[test]
fn pppd_refusing_chap_falls_back_to_pap() {
    let mut opts = guest("dial", "dial");
    opts.pppd_extra.push("refuse-chap".into());
    let mut c = dial("chap,pap", opts);
    let rc = c.guest.wait_result(Duration::from_secs(60)).unwrap();
    let console = c.guest.console();
    assert_eq!(rc, 0, "{console}\n{}", c.nas.stderr.text());
    // pppd Naks CHAP-MD5 (toward MS-CHAPv2, which nasd does not allow); nasd moves on to
    // its next choice.
    assert!(
        console.contains("sent [LCP ConfNak id=0x1 <auth chap"),
        "{console}"
    );
    assert!(console.contains("<auth pap> <magic"), "{console}");
    assert!(
        console.contains("PAP authentication succeeded"),
        "{console}"
    );
}

fn wrong_password(auth: &str, failed: &str) {
    let mut c = dial(auth, guest("dial", "wrong"));
    let rc = c.guest.wait_result(Duration::from_secs(60)).unwrap();
    let console = c.guest.console();
    assert_ne!(
        rc, 0,
        "pppd must not come up with a wrong password:\n{console}"
    );
    assert!(console.contains(failed), "{console}");
    assert!(
        console.contains("rcvd [LCP TermReq"),
        "nasd terminates the link:\n{console}"
    );
    c.nas.wait(Duration::from_secs(20)).unwrap();
    let out = c.nas.stdout.text();
    assert!(
        out.contains("session ended: auth-failed"),
        "{out}\n{}",
        c.nas.stderr.text()
    );
    assert!(
        !c.nas.stderr.text().contains("wrong"),
        "the password reached the log"
    );
}

#[test]
fn pppd_with_a_wrong_pap_password_is_refused() {
    wrong_password("pap", "PAP authentication failed");
}

#[test]
fn pppd_with_a_wrong_chap_password_is_refused() {
    wrong_password("chap", "CHAP authentication failed");
}

#[test]
fn pppd_answers_keepalives_and_rechallenges() {
    // A quiet link for three seconds: nasd sends Echo-Requests every second, and
    // re-challenges with CHAP every two seconds; pppd answers both and the link stays up.
    let mut opts = guest("dial", "dial");
    opts.test_cmd = "sleep 3; ping -c 1 -W 3 10.0.0.1".into();
    let mut c = dial_with(
        "chap",
        &["--echo-interval", "1", "--chap-interval", "2"],
        opts,
    );
    let rc = c.guest.wait_result(Duration::from_secs(60)).unwrap();
    let console = c.guest.console();
    assert_eq!(rc, 0, "{console}\n{}", c.nas.stderr.text());
    let count = |needle: &str| console.matches(needle).count();
    assert!(count("rcvd [CHAP Challenge") >= 2, "{console}");
    assert!(count("rcvd [CHAP Success") >= 2, "{console}");
    c.nas.wait(Duration::from_secs(20)).unwrap();
    // pppd does not log Echo packets once the link runs: count them on nasd's side.
    let out = c.nas.stdout.text();
    assert!(out.contains("session ended: peer-terminated"), "{out}");
    let field = |name: &str| -> u32 {
        out.split(name)
            .nth(1)
            .and_then(|s| s.split_whitespace().next()?.trim_matches(',').parse().ok())
            .unwrap_or(0)
    };
    assert!(field("echo requests ") >= 2, "{out}");
    assert_eq!(
        field("echo requests "),
        field("replies "),
        "pppd answers every echo: {out}"
    );
}

#[test]
fn pppd_that_waits_for_the_server_still_connects() {
    // `silent`: pppd sends nothing until it hears from the server, which speaks first after
    // its one-second delay.
    let mut opts = guest("dial", "dial");
    opts.pppd_extra.push("silent".into());
    let mut c = dial("pap", opts);
    let rc = c.guest.wait_result(Duration::from_secs(60)).unwrap();
    let console = c.guest.console();
    assert_eq!(rc, 0, "{console}\n{}", c.nas.stderr.text());
    let first_rcvd = console.find("rcvd [LCP ConfReq").expect("server request");
    let first_sent = console.find("sent [LCP ConfReq").expect("client request");
    assert!(
        first_rcvd < first_sent,
        "the server spoke first:\n{console}"
    );
}
