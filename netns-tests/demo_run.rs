//! The README's first command runs the demo; CI runs it too, non-interactively (`--once`).

use crate::support::netns::Proc;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `target/<profile>/examples/<name>`, built by `cargo test --all-targets` (as the test
/// command builds everything).
pub(crate) fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release --example {name}` \
         (`cargo test --all-targets` does)",
        path.display()
    );
    path
}

#[test]
fn the_demo_runs_once_to_the_end() {
    let mut cmd = Command::new(example("demo"));
    cmd.arg("--once").stdin(Stdio::null());
    let mut p = Proc::spawn(cmd).unwrap();
    let status = p.wait(Duration::from_secs(300)).unwrap();
    let out = p.stdout.text();
    assert!(
        status.success(),
        "the demo failed:\n{out}\n{}",
        p.stderr.text()
    );
    assert!(out.contains("== demo passed"), "{out}");
    // `nasctl sessions` showed both callers with their addresses.
    let table = out
        .split("$ nasctl sessions")
        .nth(1)
        .and_then(|t| t.split("$ nasctl ports").next())
        .unwrap_or("");
    for needle in ["alice", "bob", "10.0.0.150", "modem0", "modem1"] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }
    assert!(out.contains("[internet] received"), "{out}");
}
