//! The operating pieces: `systemd/nasd.service` passes `systemd-analyze verify`,
//! `install.sh` stages a correct tree (and leaves an operator's configuration alone when run
//! again), and `examples/nasd.toml` is a valid configuration.
//!
//! Needs `systemd-analyze` (Debian package `systemd`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const NASD: &str = env!("CARGO_BIN_EXE_nasd");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put the binaries of this package (nasd, nasd-line, vmodem, ...).
fn bin_dir() -> PathBuf {
    Path::new(NASD).parent().unwrap().to_path_buf()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Runs `systemd-analyze verify` on `unit` (a file named `nasd.service`) and returns the
/// lines of its output that concern that unit, or a failure exit status.
fn verify(unit: &Path) -> Vec<String> {
    let out = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            panic!("cannot run systemd-analyze ({e}): install it (Debian package \"systemd\")")
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Other units on this machine may draw warnings of their own: only ours count.
    let mut ours: Vec<String> = text
        .lines()
        .filter(|l| l.contains("nasd.service"))
        .map(str::to_owned)
        .collect();
    if !out.status.success() {
        ours.push(format!(
            "systemd-analyze verify failed: {}\n{text}",
            out.status
        ));
    }
    ours
}

/// The shipped unit with its binary paths pointing at the binary under test (verify checks
/// that ExecStart's program exists).
fn unit_for_test(dir: &Path, extra: &str) -> PathBuf {
    let text = fs::read_to_string(repo().join("systemd/nasd.service")).unwrap();
    assert!(text.contains("ExecStart=/usr/local/sbin/nasd "), "{text}");
    let text = text
        .replace("/usr/local/sbin/nasd", NASD)
        .replace("[Install]", &format!("{extra}\n[Install]"));
    let path = dir.join("nasd.service");
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let problems = verify(&unit_for_test(dir.path(), ""));
    assert!(
        problems.is_empty(),
        "systemd-analyze verify complains:\n{}",
        problems.join("\n")
    );

    // The check itself can fail: a key systemd does not know is reported.
    let bad = tempfile::tempdir().unwrap();
    let problems = verify(&unit_for_test(bad.path(), "NoSuchSetting=yes"));
    assert!(
        problems.iter().any(|l| l.contains("NoSuchSetting")),
        "an unknown key went unnoticed: {problems:?}"
    );
}

#[test]
fn the_unit_says_what_nasd_needs() {
    let text = fs::read_to_string(repo().join("systemd/nasd.service")).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for want in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "ExecStart=/usr/local/sbin/nasd --config /etc/nasd/nasd.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RuntimeDirectory=nasd",
        "RuntimeDirectoryMode=0750",
        "StateDirectory=nasd",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/net/tun rw",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyS rw",
        "DeviceAllow=char-ttyACM rw",
        "DeviceAllow=char-pts rw",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "ReadWritePaths=-/run/lock -/var/lock",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(lines.contains(&want), "nasd.service lacks {want:?}");
    }
    let caps = lines
        .iter()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("CapabilityBoundingSet");
    for cap in [
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_DAC_OVERRIDE",
        "CAP_CHOWN",
    ] {
        assert!(
            caps.split_whitespace().any(|c| c == cap),
            "{cap} missing: {caps}"
        );
    }
}

fn run_install(destdir: &Path, extra: &[&str]) -> String {
    let out = Command::new("sh")
        .arg(repo().join("install.sh"))
        .arg("--destdir")
        .arg(destdir)
        .arg("--no-build")
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "install.sh failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value of `key=` in the installed unit (the first occurrence).
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"))
        .to_owned()
}

#[test]
fn install_sh_stages_the_tree_and_keeps_the_operators_config() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let log = run_install(d, &[]);

    for (path, want) in [
        ("usr/local/sbin/nasd", 0o755),
        ("usr/local/sbin/nasd-line", 0o755),
        ("usr/local/bin/vmodem", 0o755),
        ("etc/systemd/system/nasd.service", 0o644),
        ("etc/pam.d/nasd", 0o644),
        ("usr/local/share/nasd/nasd.nft", 0o644),
        ("etc/nasd", 0o750),
        ("etc/nasd/nasd.toml", 0o640),
        ("var/lib/nasd", 0o750),
    ] {
        assert_eq!(mode(&d.join(path)), want, "{path}: mode\n{log}");
        assert!(
            log.contains(&d.join(path).display().to_string()),
            "{path} not reported:\n{log}"
        );
    }
    assert!(fs::metadata(d.join("var/lib/nasd")).unwrap().is_dir());
    let same = |installed: &str, shipped: &Path| {
        assert_eq!(
            fs::read(d.join(installed)).unwrap(),
            fs::read(shipped).unwrap(),
            "{installed} differs from {}",
            shipped.display()
        );
    };
    same("usr/local/sbin/nasd", Path::new(NASD));
    same("usr/local/sbin/nasd-line", &bin_dir().join("nasd-line"));
    same("etc/nasd/nasd.toml", &repo().join("examples/nasd.toml"));
    same("etc/pam.d/nasd", &repo().join("pam.d/nasd"));
    same(
        "usr/local/share/nasd/nasd.nft",
        &repo().join("rules/nasd.nft"),
    );
    assert_eq!(
        d.join("usr/local/bin/nasctl").exists(),
        bin_dir().join("nasctl").exists(),
        "nasctl is installed exactly when it was built"
    );

    // The unit starts the installed binary, with the installed configuration.
    let unit = fs::read_to_string(d.join("etc/systemd/system/nasd.service")).unwrap();
    let exec = unit_value(&unit, "ExecStart");
    assert_eq!(exec, "/usr/local/sbin/nasd --config /etc/nasd/nasd.toml");
    let program = exec.split_whitespace().next().unwrap();
    assert!(mode(&d.join(program.trim_start_matches('/'))) & 0o111 != 0);

    // The operator edits the configuration and the PAM file; a second run keeps both,
    // replaces the rest, and reports what it kept.
    let config = d.join("etc/nasd/nasd.toml");
    let mine = "# mine\n[network]\nlocal_ip = \"10.1.1.1\"\n";
    fs::write(&config, mine).unwrap();
    fs::write(d.join("etc/pam.d/nasd"), "auth required pam_deny.so\n").unwrap();
    fs::write(d.join("usr/local/share/nasd/nasd.nft"), "stale").unwrap();
    let log2 = run_install(d, &[]);
    assert_eq!(fs::read_to_string(&config).unwrap(), mine, "{log2}");
    assert_eq!(mode(&config), 0o640);
    assert_eq!(
        fs::read_to_string(d.join("etc/pam.d/nasd")).unwrap(),
        "auth required pam_deny.so\n"
    );
    same(
        "usr/local/share/nasd/nasd.nft",
        &repo().join("rules/nasd.nft"),
    );
    assert!(
        log2.contains("kept") && log2.contains("nasd.toml"),
        "{log2}"
    );
    assert_eq!(mode(&d.join("var/lib/nasd")), 0o750);
}

#[test]
fn install_sh_rewrites_the_unit_for_its_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    run_install(d, &["--prefix", "/opt/nasd"]);
    assert!(d.join("opt/nasd/sbin/nasd").is_file());
    assert!(d.join("opt/nasd/share/nasd/nasd.nft").is_file());
    let unit = fs::read_to_string(d.join("etc/systemd/system/nasd.service")).unwrap();
    assert_eq!(
        unit_value(&unit, "ExecStart"),
        "/opt/nasd/sbin/nasd --config /etc/nasd/nasd.toml"
    );
    assert!(
        !unit.contains("/usr/local/"),
        "a /usr/local path is left:\n{unit}"
    );
    // Everything but the configuration itself lives under the prefix or in /etc, /var.
    assert!(!d.join("usr").exists());
}

#[test]
fn install_sh_rejects_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["--prefix", "relative"][..],
        &["--prefix", "/a b"][..],
        &["--frobnicate"][..],
        &["--destdir"][..],
    ] {
        let out = Command::new("sh")
            .arg(repo().join("install.sh"))
            .args(["--no-build", "--destdir"])
            .arg(tmp.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing was installed"
    );
}

#[test]
fn the_example_configuration_is_valid() {
    let example = repo().join("examples/nasd.toml");
    let out = Command::new(NASD)
        .arg("--config")
        .arg(&example)
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "nasd --check failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("configuration is valid (1 ports)"),
        "{stdout}"
    );
    // Only missing devices or files may be warned about.
    for line in stderr.lines() {
        assert!(
            line.contains("does not exist"),
            "unexpected output from --check: {line}"
        );
    }
}

#[test]
fn the_example_quotes_the_classic_setup() {
    // Every translated line keeps the classic line it replaces right above it.
    let text = fs::read_to_string(repo().join("examples/nasd.toml")).unwrap();
    for (classic, key) in [
        ("# pppd: ms-dns 8.8.8.8", "dns = [\"8.8.8.8\"]"),
        ("# pppd: proxyarp", "proxy_arp = true"),
        ("# pppd: lcp-echo-interval 30", "echo_interval = 30"),
        ("# pppd: crtscts", "flow_control = \"rtscts\""),
        ("# mgetty: rings 2", "rings = 2"),
        ("# mgetty: speed 9600", "speed = 9600"),
        ("# mgetty: init-chat", "init = ["),
        ("# mgetty: toggle-dtr-waittime 500", "toggle_dtr_ms = 500"),
        (
            "# shell: iptables -t nat -A POSTROUTING -s 192.168.32.0/24 -o eth0 -j MASQUERADE",
            "masquerade = \"eth0\"",
        ),
    ] {
        let at = text
            .find(classic)
            .unwrap_or_else(|| panic!("{classic:?} not quoted"));
        let next_key = text[at..]
            .lines()
            .find(|l| !l.starts_with('#') && !l.trim().is_empty())
            .unwrap();
        assert!(
            next_key.starts_with(key),
            "{classic:?} is followed by {next_key:?}"
        );
    }
}
