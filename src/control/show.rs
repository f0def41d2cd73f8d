//! How `nasctl` shows answers to people: tables and plain text.

use super::{PortView, SessionView, StatsView};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use std::fmt::Write;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    t
}

/// The sessions table.
pub fn sessions(sessions: &[SessionView]) -> String {
    if sessions.is_empty() {
        return "no sessions".into();
    }
    let mut t = table(&[
        "ID",
        "PORT",
        "USER",
        "ADDRESS",
        "CALLER ID",
        "SPEED",
        "STATE",
        "UPTIME",
        "IN",
        "OUT",
    ]);
    for s in sessions {
        t.add_row(vec![
            s.id.to_string(),
            s.port.clone(),
            or_dash(Some(&s.user).filter(|u| !u.is_empty())),
            or_dash(s.ip.as_ref()),
            or_dash(s.caller_id.as_ref()),
            or_dash(s.speed.as_ref()),
            s.state.clone(),
            duration(s.uptime_s),
            bytes(s.rx_bytes),
            bytes(s.tx_bytes),
        ]);
    }
    t.to_string()
}

/// The ports table.
pub fn ports(ports: &[PortView]) -> String {
    if ports.is_empty() {
        return "no ports".into();
    }
    let now = super::unix_secs(std::time::SystemTime::now());
    let mut t = table(&["PORT", "STATE", "CALLS", "LAST CALL", "LAST ERROR"]);
    for p in ports {
        let state = match p.retry_at {
            Some(at) => format!("{} (retry in {} s)", p.state, at.saturating_sub(now)),
            None => p.state.clone(),
        };
        t.add_row(vec![
            p.name.clone(),
            state,
            p.calls.to_string(),
            p.last_call.map_or_else(|| "-".into(), utc),
            or_dash(p.last_error.as_ref()),
        ]);
    }
    t.to_string()
}

/// The counters, one per line.
pub fn stats(s: &StatsView) -> String {
    let t = &s.traffic;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "nasd {}, up {} (since {} UTC)",
        s.version,
        duration(s.uptime_s),
        utc(s.started_at)
    );
    let _ = writeln!(
        out,
        "sessions:        {} now, {} in total",
        s.sessions_now, s.sessions_total
    );
    let _ = writeln!(out, "auth failures:   {}", s.auth_failures);
    let _ = writeln!(
        out,
        "from callers:    {} in {} packets",
        bytes(t.rx_bytes),
        t.rx_packets
    );
    let _ = writeln!(
        out,
        "to callers:      {} in {} packets",
        bytes(t.tx_bytes),
        t.tx_packets
    );
    let _ = writeln!(out, "dropped:");
    for (what, n) in [
        ("bad FCS", t.bad_fcs),
        ("oversize", t.oversize),
        ("runts", t.runts),
        ("malformed", t.malformed),
        ("spoofed source", s.spoofed),
        ("isolated", s.isolated),
        ("no session", s.no_session),
        ("too big for the caller or line busy", t.tx_dropped),
        ("capture (slow reader)", s.capture_dropped),
    ] {
        let _ = writeln!(out, "  {what:<36} {n}");
    }
    out
}

fn or_dash<T: ToString>(v: Option<&T>) -> String {
    v.map_or_else(|| "-".into(), ToString::to_string)
}

/// `45s`, `2m05s`, `1h02m03s`, `3d04h05m`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m{s:02}s"),
        _ => format!("{d}d{h:02}h{m:02}m"),
    }
}

/// `512 B`, `1.5 KiB`, `3.2 MiB`, ...
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_bytes_and_dates() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(125), "2m05s");
        assert_eq!(duration(3723), "1h02m03s");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5 * 60), "3d04h05m");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_795_464_434), "2026-11-23 20:07:14");
    }

    #[test]
    fn a_sessions_table_shows_every_column() {
        let s = SessionView {
            id: 7,
            acct_session_id: "X".into(),
            port: "m0".into(),
            user: "alice".into(),
            ip: Some("10.0.0.100".into()),
            caller_id: None,
            speed: Some(33600),
            state: "up".into(),
            auth: Some("chap".into()),
            started_at: 0,
            uptime_s: 61,
            rx_bytes: 2048,
            tx_bytes: 10,
            rx_packets: 2,
            tx_packets: 1,
        };
        let text = sessions(&[s]);
        for needle in [
            "ID",
            "alice",
            "10.0.0.100",
            "33600",
            "1m01s",
            "2.0 KiB",
            "10 B",
            "m0",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
        assert_eq!(sessions(&[]), "no sessions");
    }
}
