//! The virtual pool demo: `vmodem` plays a rack of modems and the telephone network, `nasd`
//! answers them, and two real pppd clients (Debian's, inside User-Mode Linux) dial
//! `ATDT5551234` with a chat script, authenticate (CHAP and PAP), get their addresses and
//! DNS server, and reach a host in an "internet" namespace through nasd's masquerade.
//!
//! Run it with `sudo netns-tests/demo.sh` (it installs what it needs and builds first). It
//! runs once and exits (`--once`, the default, as CI runs it); `--stay` keeps the pool up
//! after the tour until Enter is pressed, for trying `nasctl` by hand.

#[path = "../netns-tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::process::Stdio;
use std::time::Duration;
use support::netns::{NetNs, Proc, nasctl, nasd};
use support::topology::{tcp_sink, veth};
use support::uml::{GuestOptions, LineKind, PppdGuest};
use support::vmodem::Vmodem;

const GUEST_FILES: &str = r#"
rig_setup() {
cat > /etc/ppp/dial.chat <<'EOF'
ABORT BUSY
TIMEOUT 30
"" "\rATZ"
OK ATDT5551234
CONNECT ""
EOF
cat > /etc/ppp/dial.opts <<'EOF'
connect "/usr/sbin/chat -v -s -f /etc/ppp/dial.chat"
usepeerdns
EOF
}
"#;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn caller(vm: &Vmodem, line: usize, user: &str, extra: &str) -> Result<PppdGuest> {
    let (g, _) = PppdGuest::spawn(GuestOptions {
        ctl: true,
        line: LineKind::Path,
        line_path: Some(vm.client(line)),
        conf_extra: GUEST_FILES.into(),
        user: user.into(),
        password: format!("{user}-secret"),
        pppd_extra: extra.split_whitespace().map(String::from).collect(),
        timeout: Duration::from_secs(180),
        ..GuestOptions::ctl()
    })?;
    Ok(g)
}

fn step(g: &mut PppdGuest, who: &str, cmd: &str) -> Result<String> {
    println!("[{who}] $ {cmd}");
    let (rc, out) = g.ctl_output(cmd, Duration::from_secs(90))?;
    for line in out.lines() {
        println!("[{who}]   {line}");
    }
    if rc != 0 {
        return Err(format!("[{who}] `{cmd}` failed (rc={rc})\n{}", g.console()).into());
    }
    Ok(out)
}

/// Runs `nasctl ARGS` against the demo's nasd and prints what it says.
fn show_nasctl(socket: &std::path::Path, args: &[&str]) -> Result<()> {
    println!("$ nasctl {}", args.join(" "));
    let out = std::process::Command::new(nasctl())
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        return Err(format!(
            "nasctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut stay = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--once" => stay = false,
            "--stay" => stay = true,
            "-h" | "--help" => {
                println!("usage: demo [--once | --stay]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    println!("== vmodem: 2 lines, number 5551234, 115200 bit/s");
    let vm = Vmodem::start(&["--lines", "2", "--number", "5551234", "--rate", "115200"]);
    let nas_ns = NetNs::new()?;
    let inet = NetNs::new()?;
    veth(
        &nas_ns,
        "inet0",
        "198.51.100.1/24",
        &inet,
        "eth0",
        "198.51.100.2/24",
    );
    println!(
        "== namespaces: {} (nasd), {} (the internet, 198.51.100.2)",
        nas_ns.name(),
        inet.name()
    );
    let d = vm.dir().display();
    let config = format!(
        r#"[network]
local_ip = "10.0.0.1"
pool = "10.0.0.100-10.0.0.199"
dns = ["10.0.0.53"]
tun = "nasd0"
masquerade = "inet0"

[ppp]
auth = ["chap", "pap"]

[auth]
secrets = "{d}/secrets"

[control]
socket = "{d}/nasd.sock"

[accounting]
journal = "{d}/accounting.jsonl"

[[port]]
name = "modem0"
device = "{d}/server0"
flow_control = "none"
lock_dir = "{d}"

[[port]]
name = "modem1"
device = "{d}/server1"
flow_control = "none"
lock_dir = "{d}"
"#
    );
    let cfg = vm.dir().join("nasd.toml");
    std::fs::write(&cfg, &config)?;
    let secrets = vm.dir().join("secrets");
    std::fs::write(
        &secrets,
        "# client server secret addresses\nalice * alice-secret\nbob * bob-secret 10.0.0.150\n",
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))?;
    }
    println!("== nasd.toml:\n{config}");
    let mut cmd = nas_ns.command(nasd());
    cmd.arg("--config").arg(&cfg).stdin(Stdio::null());
    let mut nas = Proc::spawn(cmd)?;
    if !nas
        .stderr
        .wait_for_count("state=Idle", 2, Duration::from_secs(30))
    {
        return Err(format!("nasd did not start:\n{}", nas.stderr.text()).into());
    }
    println!("== nasd is answering both lines");

    let mut alice = caller(&vm, 0, "alice", "")?;
    let mut bob = caller(&vm, 1, "bob", "refuse-chap")?;
    step(&mut alice, "alice", "ppp_up file /etc/ppp/dial.opts")?;
    step(&mut bob, "bob", "ppp_up file /etc/ppp/dial.opts")?;
    step(
        &mut alice,
        "alice",
        "ip -4 addr show dev ppp0 | grep inet; cat /etc/ppp/resolv.conf",
    )?;
    step(&mut bob, "bob", "ip -4 addr show dev ppp0 | grep inet")?;
    step(&mut alice, "alice", "ping -c 3 -W 3 198.51.100.2")?;
    let sink = tcp_sink(&inet, 5001);
    step(
        &mut bob,
        "bob",
        "dd if=/dev/urandom of=/tmp/x bs=1024 count=64 2>/dev/null; md5sum /tmp/x; nc 198.51.100.2 5001 < /tmp/x",
    )?;
    if sink.stdout.wait_for("md5", Duration::from_secs(60)) {
        println!(
            "[internet] received: {}",
            sink.stdout.text().lines().last().unwrap_or("")
        );
    }
    let socket = vm.dir().join("nasd.sock");
    println!("== who is online");
    show_nasctl(&socket, &["sessions"])?;
    show_nasctl(&socket, &["ports"])?;
    if stay {
        println!(
            "== the pool stays up: try `nasctl --socket {} sessions` (or stats, ports, kill); \
             press Enter to end the demo",
            socket.display()
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
    }
    step(&mut alice, "alice", "ppp_down")?;
    step(&mut bob, "bob", "ppp_down")?;
    nas.signal("TERM");
    let _ = nas.wait(Duration::from_secs(15));
    println!("== nasd's log:\n{}", nas.stderr.text());
    println!(
        "== demo passed: two callers dialled through the virtual modems, authenticated (CHAP and PAP), \
         got 10.0.0.100 and 10.0.0.150, and reached the internet through nasd's masquerade"
    );
    Ok(())
}
