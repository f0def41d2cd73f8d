//! A port's life: a device that is missing, appears, vanishes and comes back (USB hotplug),
//! with exponential back-off in between; and a direct (null-modem) line where PPP starts as
//! soon as the line is open and starts again after every session.

use crate::support::netns::{Collected, NetNs, Proc, nasd_line};
use crate::support::uml::{GuestOptions, LineKind, PppdGuest};
use crate::support::vmodem::Vmodem;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// CPU time (user + system) a process has used.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Opens a vmodem client line as a dialling terminal would.
fn terminal(path: &std::path::Path) -> (std::fs::File, Arc<Collected>) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut t = nix::sys::termios::tcgetattr(&f).unwrap();
    nix::sys::termios::cfmakeraw(&mut t);
    nix::sys::termios::tcsetattr(&f, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
    let out = Collected::start(f.try_clone().unwrap());
    (f, out)
}

#[test]
fn a_vanishing_modem_is_reopened_with_backoff() {
    let dir = std::env::temp_dir().join(format!("nasd-hotplug-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(nasd_line());
    cmd.arg("--device")
        .arg(dir.join("server0"))
        .args(["--mode", "modem", "--calls", "0", "--auth", "none"])
        .arg("--lock-dir")
        .arg(&dir)
        .stdin(Stdio::null());
    let nas = Proc::spawn(cmd).unwrap();

    // The device does not exist: 1 s, 2 s, 4 s between attempts, and no spinning.
    let t0 = Instant::now();
    let cpu0 = cpu_time(nas.id());
    assert!(
        nas.stderr
            .wait_for("backoff_ms=4000", Duration::from_secs(15)),
        "{}",
        nas.stderr.text()
    );
    let log = nas.stderr.text();
    let order: Vec<usize> = ["backoff_ms=1000", "backoff_ms=2000", "backoff_ms=4000"]
        .iter()
        .map(|n| log.find(n).unwrap_or(usize::MAX))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "back-off does not double:\n{log}"
    );
    assert!(log.contains("cannot open"), "the error is reported:\n{log}");
    assert!(
        t0.elapsed() >= Duration::from_secs(3),
        "attempts came too fast"
    );
    let cpu = cpu_time(nas.id()) - cpu0;
    assert!(
        cpu < Duration::from_millis(300),
        "used {cpu:?} of CPU while backing off"
    );

    // The modem appears: the port opens and the modem is initialised.
    let vm = Vmodem::start_in(
        &dir,
        &[
            "--lines",
            "1",
            "--number",
            "5551234",
            "--ring-interval-ms",
            "300",
        ],
    );
    assert!(
        nas.stderr.wait_for("state=Idle", Duration::from_secs(20)),
        "{}",
        nas.stderr.text()
    );
    // It vanishes (vmodem exits: the pty is gone) ...
    drop(vm);
    assert!(
        nas.stderr
            .wait_for_count("port failed", 4, Duration::from_secs(10)),
        "{}",
        nas.stderr.text()
    );
    // ... and comes back: reopened without restarting nasd, and it answers a call.
    let vm = Vmodem::start_in(
        &dir,
        &[
            "--lines",
            "1",
            "--number",
            "5551234",
            "--ring-interval-ms",
            "300",
        ],
    );
    assert!(
        nas.stderr
            .wait_for_count("state=Idle", 2, Duration::from_secs(20)),
        "{}",
        nas.stderr.text()
    );
    let (mut term, out) = terminal(&vm.client(0));
    term.write_all(b"ATDT5551234\r").unwrap();
    assert!(
        out.wait_for("CONNECT", Duration::from_secs(20)),
        "{}\n{}",
        out.text(),
        nas.stderr.text()
    );
    assert!(nas.stderr.wait_for("CONNECT", Duration::from_secs(5)));
    drop(term);
    drop(vm);
    drop(nas);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn direct_line_starts_ppp_at_once_and_again_after_each_session() {
    // Our own pty: the guest's serial line is the master, nasd opens the slave by path.
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut t = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    nix::sys::termios::cfmakeraw(&mut t);
    nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
    let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        pty.slave.as_raw_fd()
    }))
    .unwrap();

    let dir = std::env::temp_dir().join(format!("nasd-direct-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secrets"), "dial * dial\n").unwrap();
    let ns = NetNs::new().unwrap();
    let mut cmd = ns.command(nasd_line());
    cmd.arg("--device")
        .arg(&slave_path)
        .args([
            "--mode",
            "direct",
            "--calls",
            "2",
            "--auth",
            "pap",
            "--tun",
            "ppp-direct0",
        ])
        .arg("--lock-dir")
        .arg(&dir)
        .arg("--secrets")
        .arg(dir.join("secrets"))
        .stdin(Stdio::null());
    let mut nas = Proc::spawn(cmd).unwrap();
    let (mut guest, _) = PppdGuest::spawn(GuestOptions {
        line: LineKind::Given,
        given_line: Some(Arc::new(pty.master)),
        timeout: Duration::from_secs(120),
        ..GuestOptions::ctl()
    })
    .unwrap();
    drop(pty.slave);
    let explain = |g: &PppdGuest, n: &Proc| {
        format!("{}\n{}\n{}", g.console(), n.stderr.text(), n.stdout.text())
    };
    for call in 1..=2 {
        assert_eq!(
            guest.ctl("ppp_up", Duration::from_secs(40)).unwrap(),
            0,
            "{}",
            explain(&guest, &nas)
        );
        assert_eq!(
            guest
                .ctl("ping -c 2 -W 3 10.0.0.1", Duration::from_secs(20))
                .unwrap(),
            0,
            "call {call}: {}",
            explain(&guest, &nas)
        );
        guest.ctl("ppp_down", Duration::from_secs(20)).unwrap();
        assert!(
            nas.stdout.wait_for_count(
                "session ended: peer-terminated",
                call,
                Duration::from_secs(20)
            ),
            "{}",
            explain(&guest, &nas)
        );
    }
    // Two sessions were asked for: nasd-line is done.
    nas.wait(Duration::from_secs(20)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
