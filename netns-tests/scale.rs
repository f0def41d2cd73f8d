//! Scale: 32 concurrent sessions of real pppd into one nasd, all passing traffic.
//!
//! vmodem runs 32 lines; nasd (in a namespace of its own) answers all 32; four User-Mode Linux
//! guests each run eight pppd at once, one per line (`ppp_up_lines` in the guest: units
//! ppp0..ppp7 on the guest's ttyS0 and ttyS2..ttyS8, each a vmodem client pty, each dialling
//! `ATDT5551234` with chat). Every pppd interface then pings the NAS through its own link
//! (`ping -I pppK`). The test checks 32 sessions up in nasd's log with 32 distinct addresses
//! (seen by nasd and by the guests), every ping answered, traffic counted for every session,
//! then hangs everyone up and checks that every address and host route is released.
//! The benchmark for 1,000 sessions is `examples/scale_bench.rs`.

use crate::daemon::{Cfg, Nas, journal};
use crate::support::netns::NetNs;
use crate::support::uml::{DEFAULT_PPPD_OPTS, GuestOptions, LineKind, PppdGuest};
use crate::support::vmodem::Vmodem;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// UML guests, and pppd lines per guest.
const GUESTS: usize = 4;
const PER_GUEST: usize = 8;
const SESSIONS: usize = GUESTS * PER_GUEST;

/// The guest's dial and hang-up scripts: the daemon tests' chat, without its verbose log
/// (32 chats would flood the consoles).
fn guest_files() -> String {
    crate::daemon::GUEST_FILES.replace("chat -v ", "chat ")
}

fn scale_guest(vm: &Vmodem, first_line: usize) -> PppdGuest {
    // Eight links share one peer address (10.0.0.1): no default route, each ping is bound to
    // its interface.
    let pppd_opts = DEFAULT_PPPD_OPTS
        .iter()
        .filter(|o| **o != "defaultroute")
        .map(|o| o.to_string())
        .collect();
    let (g, _) = PppdGuest::spawn(GuestOptions {
        ctl: true,
        line: LineKind::Path,
        line_path: Some(vm.client(first_line)),
        extra_lines: (1..PER_GUEST).map(|k| vm.client(first_line + k)).collect(),
        conf_extra: guest_files(),
        pppd_opts,
        pppd_extra: vec!["refuse-chap".into()],
        timeout: Duration::from_secs(300),
        mem: "96M".into(),
        ..GuestOptions::ctl()
    })
    .unwrap();
    g
}

/// The `ip=` value of each log line containing `what`.
fn logged_ips(log: &str, what: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("ip="))
                .map(|ip| ip.trim_matches('"').to_string())
        })
        .collect()
}

/// Runs `cmd` in every guest at once (ctl mode); each guest's exit status and output.
fn ctl_all(guests: &mut [PppdGuest], cmd: &str, timeout: Duration) -> Vec<(i32, String)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = guests
            .iter_mut()
            .map(|g| s.spawn(move || g.ctl_output(cmd, timeout)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .expect("ctl thread")
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    })
}

#[test]
fn thirty_two_real_pppd_sessions_at_once_all_pass_traffic() {
    let t0 = Instant::now();
    let lines = SESSIONS.to_string();
    let vm = Vmodem::start(&[
        "--lines",
        &lines,
        "--number",
        "5551234",
        "--rate",
        "2000000",
        "--ring-interval-ms",
        "300",
    ]);
    let nas_ns = NetNs::new().unwrap();
    let cfg = Cfg {
        lines: SESSIONS,
        ppp_auth: r#"["pap"]"#,
        ..Cfg::default()
    }
    .write(vm.dir());
    let nas = Nas::start(&nas_ns, &cfg);
    assert!(
        nas.proc
            .stderr
            .wait_for_count("state=Idle", SESSIONS, Duration::from_secs(60)),
        "not every port became ready:\n{}",
        nas.log()
    );

    // Boot the guests in parallel (each waits for its CTL-READY on the first ctl command).
    let mut guests: Vec<PppdGuest> = (0..GUESTS)
        .map(|g| scale_guest(&vm, g * PER_GUEST))
        .collect();
    let booted = ctl_all(&mut guests, "true", Duration::from_secs(90));
    assert!(booted.iter().all(|(rc, _)| *rc == 0));
    let t_boot = t0.elapsed();

    // 32 dial-ins at once.
    let dialled = ctl_all(
        &mut guests,
        "ppp_up_lines file /etc/ppp/dial.opts",
        Duration::from_secs(120),
    );
    let t_up = t0.elapsed();
    for (i, (rc, out)) in dialled.iter().enumerate() {
        let up = out.lines().filter(|l| l.ends_with(" rc=0")).count();
        assert!(
            *rc == 0 && up == PER_GUEST,
            "guest {i}: {up}/{PER_GUEST} pppd up (rc={rc}):\n{out}\n--- console ---\n{}\n--- nasd ---\n{}",
            guests[i].console(),
            nas.log()
        );
    }
    assert!(
        nas.proc
            .stderr
            .wait_for_count("session up", SESSIONS, Duration::from_secs(20)),
        "{}",
        nas.log()
    );
    let up_ips: BTreeSet<String> = logged_ips(&nas.log(), "session up").into_iter().collect();
    assert_eq!(up_ips.len(), SESSIONS, "distinct addresses:\n{}", nas.log());

    // The guests' own view: 32 ppp interfaces with 32 distinct addresses from the pool.
    let addrs = ctl_all(
        &mut guests,
        "/usr/bin/ip -o -4 addr show | grep ' ppp'",
        Duration::from_secs(20),
    );
    let mut guest_ips = BTreeSet::new();
    for (_, out) in &addrs {
        assert_eq!(out.lines().count(), PER_GUEST, "{out}");
        for l in out.lines() {
            let ip = l
                .split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .expect("inet address")
                .to_string();
            guest_ips.insert(ip);
        }
    }
    assert_eq!(guest_ips, up_ips, "guests' addresses = nasd's");

    // Every link passes traffic: each ppp interface pings the NAS through its own session.
    let ping = (0..PER_GUEST)
        .map(|k| {
            format!(
                "(ping -I ppp{k} -c 3 -W 3 $NAS_IP >/dev/null 2>&1 && echo PING-OK ppp{k} || \
                 echo PING-FAIL ppp{k}) &"
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
        + " wait";
    let pinged = ctl_all(&mut guests, &ping, Duration::from_secs(60));
    for (i, (_, out)) in pinged.iter().enumerate() {
        assert_eq!(
            out.matches("PING-OK").count(),
            PER_GUEST,
            "guest {i}: {out}\n{}",
            nas.log()
        );
    }
    let t_traffic = t0.elapsed();

    // Everybody hangs up: every session ends, every address and host route is released.
    let down = ctl_all(&mut guests, "ppp_down", Duration::from_secs(30));
    assert!(down.iter().all(|(rc, _)| *rc == 0));
    assert!(
        nas.proc
            .stderr
            .wait_for_count("address released", SESSIONS, Duration::from_secs(30)),
        "{}",
        nas.log()
    );
    let released: BTreeSet<String> = logged_ips(&nas.log(), "address released")
        .into_iter()
        .collect();
    assert_eq!(released, up_ips, "released = assigned");
    assert!(
        nas.proc
            .stderr
            .wait_for_count("session ended", SESSIONS, Duration::from_secs(10)),
        "{}",
        nas.log()
    );
    let routes = nas_ns
        .ip_output(&["-4", "route", "show", "dev", "nasd0"])
        .unwrap();
    assert!(
        !up_ips.iter().any(|ip| routes.contains(&format!("{ip} "))),
        "host routes left: {routes}"
    );
    // Accounting: one start and one stop per session, each stop with traffic.
    let recs = journal(vm.dir());
    let stops: Vec<_> = recs.iter().filter(|r| r["kind"] == "stop").collect();
    assert_eq!(stops.len(), SESSIONS, "{recs:?}");
    assert!(
        stops
            .iter()
            .all(|r| r["rx_bytes"].as_u64().unwrap_or(0) > 0
                && r["tx_bytes"].as_u64().unwrap_or(0) > 0),
        "{stops:?}"
    );
    eprintln!(
        "scale: {SESSIONS} sessions ({GUESTS} guests × {PER_GUEST} pppd): guests booted at \
         {t_boot:.1?}, all up at {t_up:.1?}, all pinged at {t_traffic:.1?}, all released at {:.1?}",
        t0.elapsed()
    );
    for mut g in guests {
        let _ = g.finish(0, Duration::from_secs(20));
    }
}
