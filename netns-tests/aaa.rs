//! Authentication and accounting end to end: real pppd clients dial through vmodem into
//! `nasd`, which asks a real FreeRADIUS (started by the test inside the NAS namespace) or the
//! real libpam (through pam_wrapper and pam_matrix), writes its journal and forwards it.

use crate::daemon::{Cfg, Nas, dial, guest_as, journal, vmodem};
use crate::sip_rig::eventually;
use crate::support::freeradius::{FreeRadius, SECRET, radclient_in};
use crate::support::netns::NetNs;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// FreeRADIUS's detail file as records of `name → value` (quotes removed).
fn detail(rad: &FreeRadius) -> Vec<HashMap<String, String>> {
    let mut out = Vec::new();
    let mut cur = HashMap::new();
    for line in rad.detail().lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if let Some((k, v)) = line.trim().split_once(" = ") {
            cur.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The detail records of one status type for one user.
fn records(rad: &FreeRadius, status: &str, user: &str) -> Vec<HashMap<String, String>> {
    detail(rad)
        .into_iter()
        .filter(|r| {
            r.get("Acct-Status-Type").map(String::as_str) == Some(status)
                && r.get("User-Name").map(String::as_str) == Some(user)
        })
        .collect()
}

/// Waits (30 s at most) until FreeRADIUS holds `n` records of `status` for `user`; the n-th.
fn nth_record(
    rad: &FreeRadius,
    status: &str,
    user: &str,
    n: usize,
    nas: &Nas,
) -> HashMap<String, String> {
    assert!(
        eventually(Duration::from_secs(30), || records(rad, status, user).len()
            >= n),
        "no {status} #{n} for {user}: {}\n{}",
        rad.detail(),
        nas.log()
    );
    records(rad, status, user).swap_remove(n - 1)
}

/// The journal's records of one kind for one user.
fn journal_of(dir: &Path, kind: &str, user: &str) -> Vec<Value> {
    journal(dir)
        .into_iter()
        .filter(|r| r["kind"] == kind && r["user"] == user)
        .collect()
}

/// Waits until the guest's pppd (and its disconnect script) has exited.
fn wait_pppd_gone(g: &mut crate::support::uml::PppdGuest) {
    let rc = g
        .ctl(
            "n=0; while pidof pppd chat >/dev/null && [ $n -lt 150 ]; do usleep 100000; \
             n=$((n+1)); done; ! pidof pppd chat",
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(rc, 0, "pppd still running:\n{}", g.console());
}

fn radius_section(rad: &FreeRadius, dae_port: Option<u16>) -> String {
    let mut s = format!(
        "[radius]\ntimeout = 1\nretries = 1\n\
         [[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\n\
         auth_port = {}\nacct_port = {}\n",
        rad.auth_port, rad.acct_port
    );
    if let Some(p) = dae_port {
        s = s.replace(
            "[[radius.server]]",
            &format!("dae_listen = \"127.0.0.1:{p}\"\n[[radius.server]]"),
        );
        s.push_str(&format!(
            "[[radius.dae_client]]\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    s
}

fn octets(r: &HashMap<String, String>, name: &str) -> u64 {
    r.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[test]
fn radius_pap_chap_framed_ip_accounting_and_disconnect() {
    let vm = vmodem("2");
    let nas_ns = NetNs::new().unwrap();
    let rad = FreeRadius::start_in(Some(&nas_ns));
    let tail = radius_section(&rad, Some(3799));
    let cfg = Cfg {
        lines: 2,
        accounting: "interim_interval = 2",
        tail: &tail,
        port: "number = \"5551234\"",
        ..Cfg::default()
    }
    .write(vm.dir());
    let nas = Nas::start(&nas_ns, &cfg);

    // carol, by PAP: the Framed-IP-Address from RADIUS is the address she gets.
    let mut g = guest_as(&vm, 0, "carol", "carolpw", true);
    dial(&mut g, &nas);
    let (_, addr) = g
        .ctl_output("ip -4 addr show ppp0", Duration::from_secs(10))
        .unwrap();
    assert!(addr.contains("10.0.0.177"), "{addr}\n{}", nas.log());
    // What the Access-Request told FreeRADIUS about the call.
    let radlog = rad.log();
    for attr in [
        "Called-Station-Id = \"5551234\"",
        "Calling-Station-Id = \"5550000\"",
        "NAS-Port-Type = Async",
        "Service-Type = Framed-User",
        "Framed-Protocol = PPP",
        "NAS-Port-Id = \"m0\"",
    ] {
        assert!(radlog.contains(attr), "{attr} missing:\n{radlog}");
    }
    assert!(radlog.contains("Connect-Info = \""), "{radlog}");
    assert_eq!(
        g.ctl("ping -c 5 -s 1000 -W 3 10.0.0.1", Duration::from_secs(30))
            .unwrap(),
        0
    );
    // Start and an interim update reach FreeRADIUS while she is online.
    assert!(
        eventually(Duration::from_secs(30), || !records(
            &rad,
            "Interim-Update",
            "carol"
        )
        .is_empty()),
        "no interim update: {}\n{}",
        rad.detail(),
        nas.log()
    );
    // She hangs up: the Stop record follows, with the octets she sent.
    g.ctl("ppp_down", Duration::from_secs(30)).unwrap();
    assert!(
        eventually(Duration::from_secs(30), || !records(&rad, "Stop", "carol")
            .is_empty()),
        "no stop: {}\n{}",
        rad.detail(),
        nas.log()
    );
    let start = records(&rad, "Start", "carol");
    let stop = records(&rad, "Stop", "carol");
    assert_eq!((start.len(), stop.len()), (1, 1), "{}", rad.detail());
    let (start, stop) = (&start[0], &stop[0]);
    assert_eq!(start["Acct-Session-Id"], stop["Acct-Session-Id"]);
    assert_eq!(stop["Framed-IP-Address"], "10.0.0.177");
    assert_eq!(stop["Acct-Terminate-Cause"], "User-Request");
    assert_eq!(stop["NAS-Port-Type"], "Async");
    assert_eq!(stop["Class"], "0x73696c766572", "Class echoed");
    let journal_stop = journal_of(vm.dir(), "stop", "carol");
    assert_eq!(journal_stop.len(), 1);
    let rx = octets(stop, "Acct-Input-Octets");
    assert_eq!(Some(rx), journal_stop[0]["rx_bytes"].as_u64());
    assert_eq!(
        Some(octets(stop, "Acct-Output-Octets")),
        journal_stop[0]["tx_bytes"].as_u64()
    );
    // Five 1028-byte echo requests, and little else.
    assert!((5 * 1028..5 * 1028 + 2000).contains(&rx), "rx {rx}");
    drop(g);

    // bob, by CHAP, gets a pool address; a Disconnect-Request from radclient ends him.
    let mut g = guest_as(&vm, 1, "bob", "bobpw", false);
    dial(&mut g, &nas);
    assert!(eventually(Duration::from_secs(10), || !records(
        &rad, "Start", "bob"
    )
    .is_empty()));
    let (ok, out) = radclient_in(
        Some(&nas_ns),
        "127.0.0.1:3799",
        "disconnect",
        SECRET,
        "User-Name = \"bob\"\n",
    );
    assert!(ok && out.contains("Disconnect-ACK"), "{out}\n{}", nas.log());
    assert!(
        eventually(Duration::from_secs(30), || !records(&rad, "Stop", "bob")
            .is_empty()),
        "{}",
        nas.log()
    );
    assert_eq!(
        records(&rad, "Stop", "bob")[0]["Acct-Terminate-Cause"],
        "Admin-Reset"
    );
    assert_eq!(journal_of(vm.dir(), "stop", "bob")[0]["auth"], "radius");
    // No session left to disconnect: NAK.
    let (_, out) = radclient_in(
        Some(&nas_ns),
        "127.0.0.1:3799",
        "disconnect",
        SECRET,
        "User-Name = \"bob\"\n",
    );
    assert!(out.contains("Disconnect-NAK"), "{out}");
    // bob again: a CoA-Request cuts his session time to 1 s (counted from his login, so
    // already over): the session ends with Session-Timeout.
    wait_pppd_gone(&mut g);
    dial(&mut g, &nas);
    assert!(eventually(Duration::from_secs(10), || records(
        &rad, "Start", "bob"
    )
    .len()
        == 2));
    let (ok, out) = radclient_in(
        Some(&nas_ns),
        "127.0.0.1:3799",
        "coa",
        SECRET,
        "User-Name = \"bob\"\nSession-Timeout = 1\nIdle-Timeout = 600\n",
    );
    assert!(ok && out.contains("CoA-ACK"), "{out}\n{}", nas.log());
    assert!(
        nas.log().lines().any(|l| l.contains("new idle timeout")
            && l.contains("limit_s=600")
            && l.contains("applied=true")),
        "{}",
        nas.log()
    );
    assert_eq!(
        nth_record(&rad, "Stop", "bob", 2, &nas)["Acct-Terminate-Cause"],
        "Session-Timeout"
    );
    drop(g);

    // Wrong passwords, PAP and CHAP: refused by RADIUS, no session.
    for (line, user, pap) in [(0, "carol", true), (1, "bob", false)] {
        let mut g = guest_as(&vm, line, user, "wrong", pap);
        let rc = g
            .ctl("ppp_up file /etc/ppp/dial.opts", Duration::from_secs(60))
            .unwrap();
        assert_ne!(rc, 0, "{user} got in with a wrong password");
    }
    let log = nas.log();
    assert_eq!(
        log.matches("RADIUS Access-Reject").count(),
        2,
        "both refusals logged: {log}"
    );
    assert!(!log.contains("wrong\""), "no password in the log");
}

#[test]
fn accounting_survives_a_radius_outage_and_a_crash_once_each() {
    let vm = vmodem("1");
    let nas_ns = NetNs::new().unwrap();
    let mut rad = FreeRadius::start_in(Some(&nas_ns));
    let tail = radius_section(&rad, None);
    let cfg = Cfg {
        tail: &tail,
        ..Cfg::default()
    }
    .write(vm.dir());
    let mut nas = Nas::start(&nas_ns, &cfg);
    let mut g = guest_as(&vm, 0, "bob", "bobpw", false);
    dial(&mut g, &nas);
    assert!(eventually(Duration::from_secs(10), || !records(
        &rad, "Start", "bob"
    )
    .is_empty()));
    // FreeRADIUS goes away; the session ends meanwhile: its Stop waits in the journal.
    rad.stop();
    g.ctl("ppp_down", Duration::from_secs(30)).unwrap();
    assert!(eventually(Duration::from_secs(10), || !journal_of(
        vm.dir(),
        "stop",
        "bob"
    )
    .is_empty()));
    assert!(records(&rad, "Stop", "bob").is_empty());
    // One whole delivery attempt fails before the server returns (so the record that finally
    // arrives is a new request with its delay, not a retransmission of the first).
    assert!(
        nas.proc
            .stderr
            .wait_for("kind=\"stop\"", Duration::from_secs(30))
            && nas
                .proc
                .stderr
                .wait_for("accounting: delivery failed", Duration::from_secs(30)),
        "{}",
        nas.log()
    );
    rad.restart();
    assert!(
        eventually(Duration::from_secs(90), || !records(&rad, "Stop", "bob")
            .is_empty()),
        "the Stop never arrived: {}\n{}",
        rad.detail(),
        nas.log()
    );
    let stop = records(&rad, "Stop", "bob");
    assert_eq!(stop.len(), 1, "delivered once: {}", rad.detail());
    assert_eq!(records(&rad, "Start", "bob").len(), 1);
    assert!(
        octets(&stop[0], "Acct-Delay-Time") >= 1,
        "Acct-Delay-Time set: {:?}",
        stop[0]
    );

    // nasd killed mid-session: the next start closes the session (nas-reboot) and sends it.
    dial(&mut g, &nas);
    assert!(
        nas.proc
            .stderr
            .wait_for_count("session up", 2, Duration::from_secs(10))
    );
    assert!(eventually(Duration::from_secs(10), || records(
        &rad, "Start", "bob"
    )
    .len()
        == 2));
    let open_id = records(&rad, "Start", "bob")[1]["Acct-Session-Id"].clone();
    nas.proc.signal("KILL");
    let _ = nas.proc.wait(Duration::from_secs(10));
    let nas = Nas::start(&nas_ns, &cfg);
    let stops = journal_of(vm.dir(), "stop", "bob");
    assert_eq!(stops.len(), 2, "{stops:?}");
    assert_eq!(stops[1]["session_id"], open_id.as_str());
    assert_eq!(stops[1]["terminate_cause"], "nas-reboot");
    assert_eq!(
        nth_record(&rad, "Stop", "bob", 2, &nas)["Acct-Terminate-Cause"],
        "NAS-Reboot"
    );
    // Accounting-On at each start, each delivered once.
    let ons = detail(&rad)
        .into_iter()
        .filter(|r| r.get("Acct-Status-Type").map(String::as_str) == Some("Accounting-On"))
        .count();
    assert_eq!(ons, 2, "{}", rad.detail());
}

/// The directory holding libpam_wrapper.so and pam_wrapper/pam_matrix.so.
fn pam_libdir() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|d| d.join("libpam_wrapper.so").exists())
    .expect("pam_wrapper not found: install the Debian package libpam-wrapper")
}

#[test]
fn pam_accepts_and_refuses_pap_through_pam_wrapper() {
    let vm = vmodem("1");
    let dir = vm.dir();
    let lib = pam_libdir();
    let matrix = lib.join("pam_wrapper/pam_matrix.so");
    std::fs::create_dir_all(dir.join("services")).unwrap();
    let pdb = format!("passdb={}/passdb", dir.display());
    std::fs::write(
        dir.join("services/nasd"),
        format!(
            "auth required {m} {pdb}\naccount required {m} {pdb}\n",
            m = matrix.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("passdb"), "dave:davepw:nasd\n").unwrap();
    let cfg = Cfg {
        ppp_auth: r#"["pap"]"#,
        auth: "pam_service = \"nasd\"",
        ..Cfg::default()
    }
    .write(dir);
    let nas_ns = NetNs::new().unwrap();
    let env = [
        (
            "LD_PRELOAD",
            lib.join("libpam_wrapper.so").display().to_string(),
        ),
        ("PAM_WRAPPER", "1".to_string()),
        (
            "PAM_WRAPPER_SERVICE_DIR",
            dir.join("services").display().to_string(),
        ),
    ];
    let nas = Nas::start_with(&nas_ns, &cfg, &env);
    let mut g = guest_as(&vm, 0, "dave", "davepw", true);
    dial(&mut g, &nas);
    assert!(eventually(Duration::from_secs(10), || !journal_of(
        dir, "start", "dave"
    )
    .is_empty()));
    assert_eq!(journal_of(dir, "start", "dave")[0]["auth"], "pam");
    g.ctl("ppp_down", Duration::from_secs(30)).unwrap();
    drop(g);
    let mut g = guest_as(&vm, 0, "dave", "not-davepw", true);
    let rc = g
        .ctl("ppp_up file /etc/ppp/dial.opts", Duration::from_secs(60))
        .unwrap();
    assert_ne!(rc, 0, "a wrong password got in");
    let log = nas.log();
    assert!(log.contains("PAM:"), "{log}");
    assert!(!log.contains("not-davepw"), "no password in the log");
}
