//! The systemd notification protocol (`sd_notify(3)`), without libsystemd.
//!
//! Under `Type=notify` systemd passes the path of a datagram socket in `$NOTIFY_SOCKET`; the
//! service sends it newline-separated `KEY=VALUE` assignments: `READY=1` when start-up is done
//! (only then does `systemctl start` return), `RELOADING=1` and again `READY=1` around a
//! configuration reload, `STOPPING=1` when shutting down, `STATUS=...` for `systemctl status`,
//! and `WATCHDOG=1` keep-alives when the unit has `WatchdogSec=` (see [`watchdog_interval`]).
//!
//! The socket is a file-system path (`/run/systemd/notify`) or, when it starts with `@`, a
//! name in the abstract namespace. Without `$NOTIFY_SOCKET` (not started by systemd, or a
//! unit of another type) every function here does nothing and returns `Ok(false)`.
//!
//! ```no_run
//! use nasd::sys::notify;
//! notify::ready().ok();
//! if let Some(every) = notify::watchdog_interval() {
//!     // send notify::watchdog() at least every `every`, e.g. twice as often
//!     let _ = every / 2;
//! }
//! ```

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The environment variable naming the notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The environment variable holding the watchdog timeout in microseconds.
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The environment variable naming the process the watchdog timeout is meant for.
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// Sends `state` (one or more `KEY=VALUE` lines) to the service manager.
///
/// Returns `Ok(false)` when `$NOTIFY_SOCKET` is unset or empty (nothing to notify),
/// `Ok(true)` once the datagram was sent, and an error when the socket cannot be reached.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(socket) if !socket.is_empty() => notify_to(&socket, state).map(|()| true),
        _ => Ok(false),
    }
}

/// Sends `state` to the notification socket `socket`, given as `$NOTIFY_SOCKET` would give
/// it: an absolute path, or `@name` for the abstract namespace.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let addr = socket_addr(socket)?;
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!(
                "{}: sent {sent} of {} bytes",
                socket.to_string_lossy(),
                state.len()
            ),
        ));
    }
    Ok(())
}

/// Parses a `$NOTIFY_SOCKET` value into a socket address.
fn socket_addr(socket: &OsStr) -> io::Result<SocketAddr> {
    let bytes = socket.as_bytes();
    match bytes.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]),
        Some(b'/') => SocketAddr::from_pathname(socket),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{NOTIFY_SOCKET}={:?}: neither an absolute path nor an @abstract name",
                socket.to_string_lossy()
            ),
        )),
    }
}

/// `READY=1`: start-up (or a reload) is complete.
pub fn ready() -> io::Result<bool> {
    notify("READY=1")
}

/// `STOPPING=1`: the service is shutting down.
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// `RELOADING=1` with `MONOTONIC_USEC=`: a configuration reload began. Send [`ready`] when it
/// is done. systemd 253 and later want the timestamp to tell this reload from an older one.
pub fn reloading() -> io::Result<bool> {
    notify(&reloading_message(monotonic_usec()))
}

/// `STATUS=text`: the one-line status `systemctl status` shows. Line breaks in `text` are
/// replaced by spaces (a newline would start another assignment).
pub fn status(text: &str) -> io::Result<bool> {
    notify(&status_message(text))
}

/// `WATCHDOG=1`: the keep-alive of a unit with `WatchdogSec=`.
pub fn watchdog() -> io::Result<bool> {
    notify("WATCHDOG=1")
}

/// The watchdog timeout systemd expects keep-alives within (from `$WATCHDOG_USEC`), or `None`
/// when there is no watchdog or `$WATCHDOG_PID` names another process. Send [`watchdog`]
/// at least twice per interval.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var(WATCHDOG_USEC).ok();
    let pid = std::env::var(WATCHDOG_PID).ok();
    watchdog_interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// [`watchdog_interval`] for given values of `$WATCHDOG_USEC` and `$WATCHDOG_PID` and our
/// own process id.
fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid.filter(|p| !p.is_empty())
        && pid.trim().parse::<u32>().ok()? != own_pid
    {
        return None;
    }
    Some(Duration::from_micros(usec))
}

/// The `RELOADING=1` message for a monotonic time in microseconds.
fn reloading_message(monotonic_usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")
}

/// The `STATUS=` message, on one line.
fn status_message(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("STATUS={line}")
}

/// A value not below `CLOCK_MONOTONIC` in microseconds, which is what systemd needs for
/// `MONOTONIC_USEC=` (it checks that the notification is not older than the reload it asked
/// for).
///
/// nasd's nix build has no clock functions, so this reads `/proc/uptime`: that is
/// `CLOCK_BOOTTIME`, which equals `CLOCK_MONOTONIC` plus the time spent suspended, with
/// centisecond resolution; it is rounded up, so it is never below `CLOCK_MONOTONIC`. 0 when
/// `/proc` cannot be read (systemd then treats the reload as it did before version 253).
fn monotonic_usec() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| parse_uptime_usec(&s))
        .unwrap_or(0)
}

/// Parses the first field of `/proc/uptime` ("12345.67 ...") into microseconds, plus 10 ms
/// to cover the truncated digits.
fn parse_uptime_usec(text: &str) -> Option<u64> {
    let field = text.split_whitespace().next()?;
    let (secs, frac) = field.split_once('.').unwrap_or((field, ""));
    let secs: u64 = secs.parse().ok()?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..6 {
        micros *= 10;
    }
    secs.checked_mul(1_000_000)?
        .checked_add(micros)?
        .checked_add(10_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::time::Duration;

    fn receiver() -> (tempfile::TempDir, OsString, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (dir, path.into_os_string(), sock)
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let (_dir, path, sock) = receiver();
        notify_to(&path, "READY=1").unwrap();
        assert_eq!(recv(&sock), "READY=1");
        notify_to(&path, "STATUS=2 sessions\nWATCHDOG=1").unwrap();
        assert_eq!(recv(&sock), "STATUS=2 sessions\nWATCHDOG=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("nasd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        assert_eq!(recv(&sock), "STOPPING=1");
    }

    #[test]
    fn a_missing_socket_or_a_bad_address_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone.sock");
        let e = notify_to(gone.as_os_str(), "READY=1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let e = notify_to(OsStr::new("relative/path"), "READY=1").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("relative/path"), "{e}");
        assert!(notify_to(OsStr::new(""), "READY=1").is_err());
    }

    #[test]
    fn messages_are_well_formed() {
        assert_eq!(
            reloading_message(123_456_789),
            "RELOADING=1\nMONOTONIC_USEC=123456789"
        );
        assert_eq!(
            status_message("2 sessions\non 3 ports"),
            "STATUS=2 sessions on 3 ports"
        );
    }

    #[test]
    fn uptime_is_parsed_and_rounded_up() {
        assert_eq!(
            parse_uptime_usec("12345.67 9999.00\n"),
            Some(12_345_680_000)
        );
        assert_eq!(parse_uptime_usec("7 1"), Some(7_010_000));
        assert_eq!(parse_uptime_usec("0.5"), Some(510_000));
        assert_eq!(parse_uptime_usec(""), None);
        assert_eq!(parse_uptime_usec("x.5"), None);
        assert_eq!(parse_uptime_usec("1.-5"), None);
        assert_eq!(parse_uptime_usec("99999999999999999999.0"), None);
    }

    #[test]
    fn monotonic_usec_is_nonzero_and_advances() {
        // Instant is CLOCK_MONOTONIC on Linux: the value must grow with it and be nonzero.
        let a = monotonic_usec();
        assert!(a > 0, "/proc/uptime unreadable");
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            std::hint::spin_loop();
        }
        let b = monotonic_usec();
        assert!(b >= a + 20_000, "{a} then {b} after 30 ms");
    }

    #[test]
    fn watchdog_interval_honours_usec_and_pid() {
        let w = |u, p| watchdog_interval_from(u, p, 42);
        assert_eq!(w(Some("30000000"), None), Some(Duration::from_secs(30)));
        assert_eq!(
            w(Some("30000000"), Some("42")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(w(Some("30000000"), Some("")), Some(Duration::from_secs(30)));
        assert_eq!(w(Some("30000000"), Some("43")), None);
        assert_eq!(w(Some("30000000"), Some("x")), None);
        assert_eq!(w(Some("0"), None), None);
        assert_eq!(w(Some("-5"), None), None);
        assert_eq!(w(Some("soon"), None), None);
        assert_eq!(w(None, Some("42")), None);
    }

    /// Runs [`child_notifies_from_the_environment`] in a child process (this test binary
    /// again) with `env` set and `$NOTIFY_SOCKET` set to `socket` or removed.
    fn run_child(mode: &str, socket: Option<&OsStr>, env: &[(&str, String)]) {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "sys::notify::tests::child_notifies_from_the_environment",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env_remove(NOTIFY_SOCKET)
        .env_remove(WATCHDOG_USEC)
        .env_remove(WATCHDOG_PID)
        .stdout(std::process::Stdio::null());
        if let Some(socket) = socket {
            cmd.env(NOTIFY_SOCKET, socket);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let status = cmd.status().unwrap();
        assert!(
            status.success(),
            "child test in mode {mode} failed: {status}"
        );
    }

    const CHILD_MODE: &str = "NASD_NOTIFY_TEST_CHILD";

    /// The environment is process-global and setting it needs `unsafe`, so the functions that
    /// read it are checked in child processes.
    #[test]
    fn the_environment_is_read() {
        let (_dir, path, sock) = receiver();
        // WATCHDOG_PID names this process, not the child: the watchdog is not the child's.
        let parent = std::process::id().to_string();
        run_child(
            "socket",
            Some(&path),
            &[(WATCHDOG_USEC, "20000000".into()), (WATCHDOG_PID, parent)],
        );
        assert_eq!(recv(&sock), "READY=1");
        let reload = recv(&sock);
        let usec = reload
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("{reload:?}"));
        assert!(usec.parse::<u64>().unwrap() > 0, "{reload:?}");
        assert_eq!(recv(&sock), "STATUS=serving");
        assert_eq!(recv(&sock), "WATCHDOG=1");
        assert_eq!(recv(&sock), "STOPPING=1");

        run_child("unset", None, &[(WATCHDOG_USEC, "20000000".into())]);
        run_child(
            "unset",
            Some(OsStr::new("")),
            &[(WATCHDOG_USEC, "20000000".into())],
        );
        sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let e = sock.recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "nothing more was sent");
    }

    /// Run by [`the_environment_is_read`] in a child process.
    #[test]
    #[ignore = "run by the_environment_is_read in a child process"]
    fn child_notifies_from_the_environment() {
        let mode = std::env::var(CHILD_MODE).unwrap_or_default();
        match mode.as_str() {
            "socket" => {
                assert!(ready().unwrap());
                assert!(reloading().unwrap());
                assert!(status("serving").unwrap());
                assert!(watchdog().unwrap());
                assert!(stopping().unwrap());
                assert_eq!(watchdog_interval(), None);
            }
            "unset" => {
                assert!(!ready().unwrap());
                assert!(!reloading().unwrap());
                assert!(!watchdog().unwrap());
                assert_eq!(watchdog_interval(), Some(Duration::from_secs(20)));
            }
            other => panic!("only meaningful as a child of the_environment_is_read ({other:?})"),
        }
    }
}
