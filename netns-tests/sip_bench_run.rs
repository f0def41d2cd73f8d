//! The SIP benchmark against Kamailio runs in CI too (`examples/sip_bench.rs`, shortened to
//! 3 s per measurement): both servers must answer every call, and nasd must spend no more CPU
//! per REGISTER and per call than Kamailio, so that one core does at least Kamailio's rate.
//! The figures are written to `target/<profile>/sip-bench.txt`.

use crate::demo_run::example;
use crate::support::netns::Proc;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One row of the result table.
#[derive(Debug)]
struct Row {
    register_s: f64,
    calls_s: f64,
    failed: String,
    cpu_register: f64,
    cpu_call: f64,
}

fn row(out: &str, server: &str) -> Row {
    let table = out
        .split("server    REGISTER/s")
        .nth(1)
        .unwrap_or_else(|| panic!("no result table in:\n{out}"));
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(server))
        .unwrap_or_else(|| panic!("no {server} row in:\n{out}"));
    let w: Vec<&str> = line.split_whitespace().collect();
    // server REG/s INVITE/s failed retr cpu_reg (pct) cpu_inv (pct) per-core
    let num = |i: usize| -> f64 {
        w.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("column {i} of {line:?}"))
    };
    Row {
        register_s: num(1),
        calls_s: num(2),
        failed: w.get(3).copied().unwrap_or_default().to_string(),
        cpu_register: num(5),
        cpu_call: num(7),
    }
}

#[test]
fn nasd_answers_sip_at_least_as_cheaply_as_kamailio() {
    crate::support::freeradius::require("kamailio");
    crate::support::freeradius::require("sipp");
    let mut cmd = Command::new(example("sip_bench"));
    cmd.args(["--secs", "3"]).stdin(Stdio::null());
    let mut p = Proc::spawn(cmd).unwrap();
    let status = p.wait(Duration::from_secs(300)).unwrap();
    let out = p.stdout.text();
    let report = format!("{out}\n{}", p.stderr.text());
    let exe = std::env::current_exe().unwrap();
    if let Some(dir) = exe.parent().and_then(|d| d.parent()) {
        let _ = std::fs::write(dir.join("sip-bench.txt"), &report);
    }
    assert!(status.success(), "sip_bench failed:\n{report}");
    let (k, n) = (row(&out, "kamailio"), row(&out, "nasd"));
    assert_eq!(k.failed, "0/0", "Kamailio failed calls:\n{report}");
    assert_eq!(n.failed, "0/0", "nasd failed calls:\n{report}");
    assert!(n.register_s > 0.0 && n.calls_s > 0.0, "{report}");
    assert!(
        n.cpu_register <= k.cpu_register,
        "nasd spends more CPU per REGISTER than Kamailio:\n{report}"
    );
    assert!(
        n.cpu_call <= k.cpu_call,
        "nasd spends more CPU per call than Kamailio:\n{report}"
    );
}
