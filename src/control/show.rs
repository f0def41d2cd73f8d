//! How `nasctl` shows answers to people: tables and plain text.

use super::{PortView, SessionView, StatsView};
use crate::sip::view::{CallView, RegistrationView};
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

/// The SIP bridge's registrations table (`nasctl sip registrations`).
pub fn sip_registrations(regs: &[RegistrationView]) -> String {
    if regs.is_empty() {
        return "no registrations".into();
    }
    let mut t = table(&[
        "ACCOUNT",
        "PORT",
        "CONTACT",
        "SOURCE",
        "EXPIRES",
        "STATUS",
        "LATENCY",
        "USER-AGENT",
    ]);
    for r in regs {
        t.add_row(vec![
            printable(&r.account),
            or_dash(r.port.as_ref()),
            printable(&r.contact),
            printable(&r.source),
            format!("in {}", duration(r.expires_in.into())),
            r.status.clone(),
            r.latency_ms
                .filter(|ms| ms.is_finite() && *ms >= 0.0)
                .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms")),
            r.user_agent
                .as_deref()
                .filter(|ua| !ua.is_empty())
                .map_or_else(|| "-".into(), printable),
        ]);
    }
    t.to_string()
}

/// The SIP bridge's calls table (`nasctl sip calls`).
pub fn sip_calls(calls: &[CallView]) -> String {
    sip_calls_at(calls, super::unix_secs(std::time::SystemTime::now()))
}

/// The calls table as seen at `now` (unix seconds): DURATION is the time since the answer;
/// a call not answered yet shows how long it has waited in STATE instead.
fn sip_calls_at(calls: &[CallView], now: u64) -> String {
    if calls.is_empty() {
        return "no calls".into();
    }
    let mut t = table(&[
        "ID", "CALLER", "CALLEE", "LINE", "PORT", "STATE", "DURATION", "ATTEMPTS",
    ]);
    for c in calls {
        let state = match c.answered {
            Some(_) => c.state.clone(),
            None => format!("{} ({})", c.state, duration(now.saturating_sub(c.started))),
        };
        t.add_row(vec![
            c.id.to_string(),
            Some(&c.caller)
                .filter(|n| !n.is_empty())
                .map_or_else(|| "-".into(), |n| printable(n)),
            Some(&c.callee)
                .filter(|n| !n.is_empty())
                .map_or_else(|| "-".into(), |n| printable(n)),
            or_dash(c.line.as_ref()),
            or_dash(c.port.as_ref()),
            state,
            c.answered
                .map_or_else(|| "-".into(), |at| duration(now.saturating_sub(at))),
            c.attempts.to_string(),
        ]);
    }
    t.to_string()
}

/// Text from the network (SIP headers) made safe for a terminal and a table cell: control
/// characters (escape sequences, line breaks) are shown escaped, never sent as they are.
fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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
pub(crate) mod tests {
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

    /// A registration, for this module's and `control::sip`'s tests.
    pub(crate) fn registration() -> RegistrationView {
        RegistrationView {
            account: "line1".into(),
            contact: "sip:line1@192.0.2.10:5060".into(),
            source: "192.0.2.10:5060".into(),
            expires_in: 3599,
            port: Some("modem0".into()),
            status: "reachable".into(),
            latency_ms: Some(12.46),
            user_agent: Some("Grandstream HT801".into()),
        }
    }

    /// A call, for this module's and `control::sip`'s tests.
    pub(crate) fn call() -> CallView {
        CallView {
            id: 3,
            call_id: "a84b4c76e66710@pc33".into(),
            caller: "5550100".into(),
            callee: "5551234".into(),
            line: Some("line1".into()),
            port: Some("modem0".into()),
            state: "answered".into(),
            started: 1_000,
            answered: Some(1_004),
            attempts: 2,
        }
    }

    /// The table's data rows (between the header rule and the bottom), cells trimmed.
    fn rows(text: &str) -> Vec<Vec<String>> {
        let lines: Vec<_> = text.lines().collect();
        let header = lines.iter().position(|l| l.starts_with('╞')).unwrap();
        lines[header + 1..]
            .iter()
            .filter(|l| l.starts_with('│'))
            .map(|l| {
                l.trim_matches('│')
                    .split('┆')
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_registrations_table_shows_every_column_in_order() {
        let mut anonymous = registration();
        anonymous.account = "alice".into();
        anonymous.port = None;
        anonymous.status = "unknown".into();
        anonymous.latency_ms = None;
        anonymous.user_agent = None;
        anonymous.expires_in = 45;
        let text = sip_registrations(&[registration(), anonymous]);
        let header = text.lines().nth(1).unwrap();
        let names: Vec<_> = header.trim_matches('│').split('┆').map(str::trim).collect();
        assert_eq!(
            names,
            [
                "ACCOUNT",
                "PORT",
                "CONTACT",
                "SOURCE",
                "EXPIRES",
                "STATUS",
                "LATENCY",
                "USER-AGENT"
            ]
        );
        assert_eq!(
            rows(&text),
            [
                [
                    "line1",
                    "modem0",
                    "sip:line1@192.0.2.10:5060",
                    "192.0.2.10:5060",
                    "in 59m59s",
                    "reachable",
                    "12.5 ms",
                    "Grandstream HT801"
                ],
                [
                    "alice",
                    "-",
                    "sip:line1@192.0.2.10:5060",
                    "192.0.2.10:5060",
                    "in 45s",
                    "unknown",
                    "-",
                    "-"
                ]
            ],
            "\n{text}"
        );
        assert_eq!(sip_registrations(&[]), "no registrations");
    }

    #[test]
    fn a_calls_table_shows_talk_time_or_how_long_a_call_waits() {
        let mut ringing = call();
        ringing.id = 4;
        ringing.state = "ringing".into();
        ringing.answered = None;
        ringing.line = None;
        ringing.port = None;
        ringing.caller = String::new();
        ringing.started = 1_060;
        ringing.attempts = 1;
        let text = sip_calls_at(&[call(), ringing], 1_072);
        let header = text.lines().nth(1).unwrap();
        for (i, name) in [
            "ID", "CALLER", "CALLEE", "LINE", "PORT", "STATE", "DURATION", "ATTEMPTS",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(
                header.trim_matches('│').split('┆').nth(i).unwrap().trim(),
                *name
            );
        }
        assert_eq!(
            rows(&text),
            [
                [
                    "3", "5550100", "5551234", "line1", "modem0", "answered", "1m08s", "2"
                ],
                ["4", "-", "5551234", "-", "-", "ringing (12s)", "-", "1"]
            ],
            "\n{text}"
        );
        // A clock that went backwards shows zero, never a panic or a huge number.
        let text = sip_calls_at(&[call()], 0);
        assert_eq!(rows(&text)[0][6], "0s", "\n{text}");
        assert_eq!(sip_calls(&[]), "no calls");
    }

    #[test]
    fn text_from_the_network_cannot_break_the_table_or_the_terminal() {
        let mut r = registration();
        r.user_agent = Some("evil\u{1b}[2J\nphone".into());
        r.latency_ms = Some(f64::NAN);
        let text = sip_registrations(&[r]);
        assert!(!text.contains('\u{1b}'), "{text}");
        assert_eq!(rows(&text).len(), 1, "one row\n{text}");
        assert_eq!(rows(&text)[0][7], "evil\\u{1b}[2J\\nphone");
        assert_eq!(rows(&text)[0][6], "-");
        assert_eq!(printable("plain"), "plain");
    }
}
