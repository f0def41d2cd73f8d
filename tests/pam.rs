//! PAM for PAP through the real libpam, without touching `/etc/pam.d` or creating users.
//!
//! pam_wrapper (Debian package `libpam-wrapper`) must be preloaded before the process starts,
//! so each test re-executes this test binary for itself alone with `LD_PRELOAD`,
//! `PAM_WRAPPER=1` and `PAM_WRAPPER_SERVICE_DIR` pointing at service files in a temporary
//! directory; the child does the real checks and the parent asserts that it ran them and
//! exited successfully. The stacks use pam_matrix (a user:password:service file), pam_permit
//! and pam_exec (scripts that record `PAM_TTY`/`PAM_RHOST` or hold the transaction open).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nasd::auth::pam::{Pam, PamError};
use nasd::proto::auth::Secret;

/// Set in the re-executed child.
const CHILD_ENV: &str = "NASD_PAM_TEST_CHILD";
/// The fixture directory, passed to the child.
const DIR_ENV: &str = "NASD_PAM_TEST_DIR";
/// Printed by a child that ran its checks to the end.
const DONE: &str = "nasd-pam-child-done:";

/// The directory holding libpam_wrapper.so, with pam_wrapper/pam_matrix.so and
/// security/pam_exec.so beside it.
fn libdir() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|d| {
            d.join("libpam_wrapper.so").exists() && d.join("pam_wrapper/pam_matrix.so").exists()
        })
        .unwrap_or_else(|| {
            panic!(
                "pam_wrapper not found in {candidates:?}: install the Debian package libpam-wrapper"
            )
        })
}

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// Writes the service files, the password database and the scripts.
fn fixture(dir: &Path) {
    let lib = libdir();
    let matrix = lib.join("pam_wrapper/pam_matrix.so");
    let exec = lib.join("security/pam_exec.so");
    let permit = lib.join("security/pam_permit.so");
    assert!(
        exec.exists() && permit.exists(),
        "pam_exec.so / pam_permit.so missing under {lib:?}"
    );
    let (matrix, exec, permit) = (matrix.display(), exec.display(), permit.display());
    let d = dir.display();

    fs::write(
        dir.join("passdb"),
        "alice:s3cret:nasd-matrix\nbob:b0b:some-other-service\n",
    )
    .expect("write passdb");
    // Records the location items pam_exec exports.
    write_executable(
        &dir.join("record.sh"),
        &format!(
            "#!/bin/sh\nprintf '%s|%s|%s\\n' \"$PAM_TTY\" \"$PAM_RHOST\" \"$PAM_USER\" >> {d}/items\n"
        ),
    );
    // Holds the transaction until the test closes the fifo (bounded, should the test die).
    write_executable(
        &dir.join("slow.sh"),
        &format!("#!/bin/sh\nexec timeout 60 cat {d}/gate > /dev/null\n"),
    );
    nix::unistd::mkfifo(
        &dir.join("gate"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");

    let services = dir.join("services");
    fs::create_dir(&services).expect("mkdir services");
    let pdb = format!("passdb={d}/passdb");
    let service =
        |name: &str, text: String| fs::write(services.join(name), text).expect("write service");
    service(
        "nasd-matrix",
        format!("auth required {matrix} {pdb}\naccount required {matrix} {pdb}\n"),
    );
    // Same users, any service name accepted at the account stage.
    let matrix_auth_only = format!("auth required {matrix} {pdb}\naccount required {permit}\n");
    service(
        "nasd-exec",
        format!("auth required {exec} quiet {d}/record.sh\n{matrix_auth_only}"),
    );
    service(
        "nasd-slow",
        format!("auth required {exec} quiet {d}/slow.sh\n{matrix_auth_only}"),
    );
    service(
        "nasd-broken",
        format!("auth required {exec} quiet /bin/false\n{matrix_auth_only}"),
    );
}

/// In the parent: sets up a fixture, runs test `name` again in a child under pam_wrapper and
/// asserts its success. In the child: runs `body`.
fn in_pam_wrapper_child(name: &str, body: fn(&Path)) {
    if std::env::var_os(CHILD_ENV).is_some() {
        let dir = PathBuf::from(std::env::var_os(DIR_ENV).expect("fixture dir in the child"));
        body(&dir);
        println!("\n{DONE}{name}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    fixture(tmp.path());
    // One pam_wrapper child at a time: pam_wrapper creates its config directory /tmp/pam.X
    // with a check-then-create race, and two children starting together fail with
    // "Failed to create pam_wrapper config dir: ... File exists" (seen in CI).
    static ONE_CHILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_CHILD.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("LD_PRELOAD", libdir().join("libpam_wrapper.so"))
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", tmp.path().join("services"))
        .env(CHILD_ENV, "1")
        .env(DIR_ENV, tmp.path())
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.lines().any(|l| l == format!("{DONE}{name}")),
        "child did not run its checks\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn pw(s: &str) -> Secret {
    Secret::new(s.as_bytes().to_vec())
}

fn check(
    service: &str,
    user: &str,
    password: &str,
    tty: &str,
    rhost: Option<&str>,
) -> Result<(), PamError> {
    let pam = Pam::new(service, 4);
    runtime().block_on(pam.check(user, &pw(password), tty, rhost))
}

#[test]
fn accepts_the_right_password() {
    in_pam_wrapper_child("accepts_the_right_password", |_| {
        assert_eq!(
            check("nasd-matrix", "alice", "s3cret", "ttyUSB0", Some("5551234")),
            Ok(())
        );
    });
}

#[test]
fn refuses_a_wrong_password() {
    in_pam_wrapper_child("refuses_a_wrong_password", |_| {
        let r = check("nasd-matrix", "alice", "wrong-guess", "ttyUSB0", None);
        let e = r.expect_err("wrong password accepted");
        assert!(e.is_refusal(), "{e}");
        assert!(e.to_string().contains("pam_authenticate"), "{e}");
        assert!(
            !format!("{e} {e:?}").contains("wrong-guess"),
            "password leaked: {e:?}"
        );
    });
}

#[test]
fn refuses_an_unknown_user() {
    in_pam_wrapper_child("refuses_an_unknown_user", |_| {
        let e = check("nasd-matrix", "mallory", "s3cret", "ttyUSB0", None)
            .expect_err("unknown user accepted");
        assert!(e.is_refusal(), "{e}");
    });
}

#[test]
fn refuses_an_empty_password() {
    in_pam_wrapper_child("refuses_an_empty_password", |_| {
        let e = check("nasd-matrix", "alice", "", "ttyUSB0", None)
            .expect_err("empty password accepted");
        assert!(e.is_refusal(), "{e}");
    });
}

#[test]
fn account_stage_refuses_a_user_not_allowed_here() {
    // pam_matrix's account stage admits a user only for the service named in the passdb.
    in_pam_wrapper_child("account_stage_refuses_a_user_not_allowed_here", |_| {
        let e =
            check("nasd-matrix", "bob", "b0b", "ttyUSB0", None).expect_err("account check skipped");
        assert!(e.is_refusal(), "{e}");
        assert!(e.to_string().contains("pam_acct_mgmt"), "{e}");
        // The same password passes where the account stage admits everybody.
        assert_eq!(check("nasd-exec", "bob", "b0b", "ttyUSB0", None), Ok(()));
    });
}

#[test]
fn a_failing_module_is_a_system_error() {
    in_pam_wrapper_child("a_failing_module_is_a_system_error", |_| {
        let e = check("nasd-broken", "alice", "s3cret", "ttyUSB0", None)
            .expect_err("broken stack accepted");
        assert!(!e.is_refusal(), "{e}");
    });
}

#[test]
fn tty_and_rhost_reach_the_modules() {
    in_pam_wrapper_child("tty_and_rhost_reach_the_modules", |dir| {
        assert_eq!(
            check("nasd-exec", "alice", "s3cret", "ttyUSB0", Some("5551234")),
            Ok(())
        );
        assert_eq!(check("nasd-exec", "alice", "s3cret", "ttyS1", None), Ok(()));
        let items = fs::read_to_string(dir.join("items")).expect("items recorded");
        assert_eq!(items, "ttyUSB0|5551234|alice\nttyS1||alice\n");
    });
}

#[test]
fn a_slow_pam_stack_does_not_stall_other_lines() {
    in_pam_wrapper_child("a_slow_pam_stack_does_not_stall_other_lines", |dir| {
        // One thread runs every task: a PAM call on it would stall everything.
        let rt = runtime();
        let gate = dir.join("gate");
        let result: Result<(), String> = rt.block_on(async move {
            let slow = Pam::new("nasd-slow", 4);
            let quick = Pam::new("nasd-matrix", 4);
            let mut slow_check =
                tokio::spawn(async move { slow.check("alice", &pw("s3cret"), "ttyS0", None).await });
            // Opening the fifo for writing completes once slow.sh has opened it for reading:
            // the slow transaction is then inside PAM, held there until the fifo closes.
            let open = tokio::task::spawn_blocking(move || fs::OpenOptions::new().write(true).open(gate));
            let writer = tokio::select! {
                w = open => w.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?,
                r = &mut slow_check => return Err(format!("slow check ended before its script ran: {r:?}")),
                _ = tokio::time::sleep(Duration::from_secs(30)) => return Err("slow.sh did not open the gate within 30 s (did a PAM call block the runtime thread?)".into()),
            };
            // Another line's check completes meanwhile, on the same runtime thread.
            quick
                .check("alice", &pw("s3cret"), "ttyS1", None)
                .await
                .map_err(|e| format!("quick check: {e}"))?;
            if slow_check.is_finished() {
                return Err("the slow check was not held open".into());
            }
            // Release the slow stack: it completes too.
            let mut writer = writer;
            writer.write_all(b"go\n").map_err(|e| e.to_string())?;
            drop(writer);
            match slow_check.await {
                Ok(Ok(())) => Ok(()),
                other => Err(format!("slow check: {other:?}")),
            }
        });
        // Never wait for a blocking thread stuck on the fifo after a failure.
        rt.shutdown_timeout(Duration::from_secs(1));
        assert_eq!(result, Ok(()));
    });
}
