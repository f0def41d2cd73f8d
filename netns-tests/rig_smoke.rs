//! Smoke tests of the pppd-in-UML rig itself (no NAS involved).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::support::uml::{
    GuestOptions, LineKind, PppdGuest, process_group_alive, process_group_members,
};

/// The first LCP Configure-Request must arrive well within this (typically ~1-2 s).
const FIRST_LCP_DEADLINE: Duration = Duration::from_secs(30);

fn spawn(opts: GuestOptions) -> (PppdGuest, OwnedFd) {
    PppdGuest::spawn(opts).unwrap_or_else(|e| panic!("cannot start the UML pppd guest: {e}"))
}

/// RFC 1662 FCS-16 over an unescaped frame including its FCS: good frames give 0xf0b8.
fn fcs16(data: &[u8]) -> u16 {
    let mut fcs: u16 = 0xffff;
    for &b in data {
        fcs ^= u16::from(b);
        for _ in 0..8 {
            fcs = if fcs & 1 != 0 {
                (fcs >> 1) ^ 0x8408
            } else {
                fcs >> 1
            };
        }
    }
    fcs
}

/// Splits raw line bytes at 0x7e flags and undoes 0x7d escaping; returns complete frames
/// (without flags, FCS included) and keeps the unfinished tail in `pending`.
fn deframe(pending: &mut Vec<u8>, frames: &mut Vec<Vec<u8>>) {
    while let Some(end) = pending.iter().position(|&b| b == 0x7e) {
        let raw: Vec<u8> = pending.drain(..=end).collect();
        let mut frame = Vec::with_capacity(raw.len());
        let mut escaped = false;
        for &b in &raw[..raw.len() - 1] {
            match (escaped, b) {
                (false, 0x7d) => escaped = true,
                (true, _) => {
                    frame.push(b ^ 0x20);
                    escaped = false;
                }
                (false, _) => frame.push(b),
            }
        }
        if !frame.is_empty() {
            frames.push(frame);
        }
    }
}

/// Reads the line until a frame satisfying `want` arrives; returns it and all raw bytes read.
fn read_frame_until(
    line: &OwnedFd,
    deadline: Instant,
    want: impl Fn(&[u8]) -> bool,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut raw_all = Vec::new();
    let mut pending = Vec::new();
    let mut frames = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        deframe(&mut pending, &mut frames);
        if let Some(f) = frames.iter().find(|f| want(f)) {
            return Ok((f.clone(), raw_all));
        }
        frames.clear();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no matching frame; line bytes so far: {raw_all:02x?}"),
            ));
        }
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(line.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match nix::unistd::read(line, &mut buf) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                raw_all.extend_from_slice(&buf[..n]);
                pending.extend_from_slice(&buf[..n]);
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_lcp_conf_req(frame: &[u8]) -> bool {
    frame.starts_with(&[0xff, 0x03, 0xc0, 0x21, 0x01])
        && frame.len() >= 10
        && fcs16(frame) == 0xf0b8
}

/// Boots the guest, waits for pppd's first LCP Configure-Request on the line, checks the
/// console, then drops the guest and checks that nothing of it is left.
fn lcp_configure_request_arrives(line_kind: LineKind) {
    let opts = GuestOptions {
        line: line_kind,
        timeout: Duration::from_secs(90),
        ..GuestOptions::auto()
    };
    let (guest, line) = spawn(opts);
    let pgid = guest.pgid();
    let started = guest.started();

    let (frame, raw) = read_frame_until(&line, started + FIRST_LCP_DEADLINE, is_lcp_conf_req)
        .unwrap_or_else(|e| {
            panic!(
                "no LCP Configure-Request from pppd: {e}\nconsole:\n{}",
                guest.console()
            )
        });
    let first_lcp = started.elapsed();
    // Under the default ACCM every control character is escaped: the Configure-Request
    // starts as 7e ff 7d 23 c0 21 7d 21 on the wire.
    const WIRE_START: &[u8] = &[0x7e, 0xff, 0x7d, 0x23, 0xc0, 0x21, 0x7d, 0x21];
    assert!(
        raw.windows(WIRE_START.len()).any(|w| w == WIRE_START),
        "escaped LCP Configure-Request start not on the wire: {raw:02x?}"
    );
    eprintln!(
        "[{line_kind:?}] first LCP Configure-Request {first_lcp:.3?} after launch: {frame:02x?}"
    );

    guest
        .wait_console("sent [LCP ConfReq", Duration::from_secs(10))
        .expect("pppd start message on the guest console");
    let console = guest.console();
    assert!(
        console.contains("GUEST["),
        "guest init did not log:\n{console}"
    );
    assert!(
        console.contains("starting pppd") && console.contains("Connect: ppp0 <--> "),
        "pppd did not start:\n{console}"
    );

    drop(guest);
    drop(line);
    let left = process_group_members(pgid);
    assert!(
        left.is_empty() && !process_group_alive(pgid),
        "processes of the guest's group {pgid} left after drop: {left:?}"
    );
}

#[test]
fn uml_pppd_sends_lcp_configure_request() {
    lcp_configure_request_arrives(LineKind::Pty);
}

#[test]
fn uml_pppd_sends_lcp_configure_request_on_socketpair() {
    lcp_configure_request_arrives(LineKind::SocketPair);
}

#[test]
fn uml_ctl_mode_runs_commands() {
    let (mut guest, line) = spawn(GuestOptions {
        timeout: Duration::from_secs(90),
        ..GuestOptions::ctl()
    });
    let pgid = guest.pgid();
    let t = Duration::from_secs(30);
    let ctl = |guest: &mut PppdGuest, cmd: &str| {
        guest
            .ctl_output(cmd, t)
            .unwrap_or_else(|e| panic!("ctl {cmd:?}: {e}"))
    };
    assert_eq!(ctl(&mut guest, "true").0, 0);
    assert_eq!(ctl(&mut guest, "false").0, 1);
    assert_eq!(ctl(&mut guest, "(exit 7)").0, 7);
    assert_eq!(
        ctl(&mut guest, "echo hello; echo world >&2"),
        (0, "hello\nworld\n".into())
    );
    let (rc, modules) = ctl(&mut guest, "cut -d' ' -f1 /proc/modules");
    assert_eq!(rc, 0);
    for m in ["ppp_async", "ppp_generic", "slhc", "crc_ccitt"] {
        assert!(
            modules.lines().any(|l| l == m),
            "module {m} not loaded: {modules:?}"
        );
    }
    let (rc, secrets) = ctl(&mut guest, "cat /etc/ppp/pap-secrets");
    assert_eq!((rc, secrets.as_str()), (0, "\"dial\" * \"dial\" *\n"));
    assert_eq!(
        ctl(&mut guest, "test -x \"$PPPD\" && test -c /dev/ppp").0,
        0
    );
    // No NAS answers: pppd gives up after 2 Configure-Requests 1 s apart and ppp_up fails.
    let (rc, out) = ctl(&mut guest, "ppp_up lcp-restart 1 lcp-max-configure 2");
    assert_ne!(rc, 0, "ppp_up without a NAS succeeded: {out}");
    let (frame, _) = read_frame_until(
        &line,
        Instant::now() + Duration::from_secs(5),
        is_lcp_conf_req,
    )
    .unwrap_or_else(|e| panic!("no LCP Configure-Request from ppp_up: {e}"));
    assert!(frame.len() > 10, "{frame:02x?}");
    assert_eq!(ctl(&mut guest, "ppp_down").0, 0);
    let rc = guest.finish(3, t).unwrap_or_else(|e| panic!("finish: {e}"));
    assert_eq!(rc, 3);
    drop(guest);
    assert!(!process_group_alive(pgid), "guest group {pgid} still alive");
}

#[test]
fn uml_auto_mode_reports_pppd_failure() {
    // No NAS: pppd gives up after one unanswered Configure-Request; the guest reports pppd's
    // exit status and powers off, and linux.uml exits with that status.
    let (mut guest, _line) = spawn(GuestOptions {
        pppd_extra: vec![
            "lcp-restart".into(),
            "1".into(),
            "lcp-max-configure".into(),
            "1".into(),
        ],
        timeout: Duration::from_secs(90),
        ..GuestOptions::auto()
    });
    let rc = guest
        .wait_result(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(
        rc,
        0,
        "pppd without a NAS reported success:\n{}",
        guest.console()
    );
    let console = guest.console();
    assert!(console.contains("pppd updetach rc="), "{console}");
    // UML very rarely aborts after a clean power-down; the console line is what counts.
    if let Some(status) = guest.exit_status() {
        eprintln!("guest result rc={rc}, linux.uml {status}");
        assert!(
            status.code() == Some(rc) || status.code().is_none(),
            "exit status {status} does not carry rc={rc}"
        );
    }
}

#[test]
fn uml_watchdog_kills_a_guest_that_outlives_its_timeout() {
    let (mut guest, _line) = spawn(GuestOptions {
        timeout: Duration::from_millis(500),
        ..GuestOptions::ctl()
    });
    let pgid = guest.pgid();
    let err = guest
        .wait_result(Duration::from_secs(30))
        .expect_err("a guest killed by the watchdog has no result");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert!(guest.console().contains("watchdog"), "{}", guest.console());
    drop(guest);
    assert!(process_group_members(pgid).is_empty());
}
