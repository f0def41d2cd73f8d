//! The demo: Debian's pppd, in a User-Mode Linux guest, dials in to nasd over a
//! pseudo-terminal line, authenticates with CHAP, gets its address and DNS server, and
//! pings the server through nasd and a TUN device in a network namespace.
//!
//! Run it with `sudo netns-tests/demo.sh` (it installs what it needs and builds first).

#[path = "../netns-tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::process::Stdio;
use std::time::Duration;
use support::netns::{NetNs, Proc, nasd_line};
use support::uml::{GuestOptions, PppdGuest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("nasd-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let secrets = dir.join("chap-secrets");
    std::fs::write(
        &secrets,
        "# client  server  secret  addresses\ndemo  *  demo-secret\n",
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))?;
    }
    let ns = NetNs::new()?;
    println!(
        "== nasd demo: network namespace {} holds the NAS side",
        ns.name()
    );
    let (mut guest, line) = PppdGuest::spawn(GuestOptions {
        user: "demo".into(),
        password: "demo-secret".into(),
        pppd_extra: vec!["usepeerdns".into()],
        test_cmd: "ip -4 addr show dev ppp0; cat /etc/ppp/resolv.conf; ping -c 3 -W 3 10.0.0.1"
            .into(),
        extra_modules: vec!["ppp_deflate".into(), "bsd_comp".into()],
        timeout: Duration::from_secs(90),
        ..GuestOptions::auto()
    })?;
    let mut cmd = ns.command(nasd_line());
    cmd.args(["--device", "-", "--auth", "chap,pap", "--tun", "ppp-demo0"])
        .args([
            "--local-ip",
            "10.0.0.1",
            "--peer-ip",
            "10.0.0.100",
            "--dns",
            "10.0.0.53",
        ])
        .arg("--secrets")
        .arg(&secrets)
        .stdin(Stdio::from(line));
    let mut nas = Proc::spawn(cmd)?;
    let rc = guest.wait_result(Duration::from_secs(60))?;
    println!(
        "== the client (pppd inside User-Mode Linux):\n{}",
        guest.console()
    );
    drop(guest);
    let _ = nas.wait(Duration::from_secs(20));
    println!("== nasd-line:\n{}{}", nas.stderr.text(), nas.stdout.text());
    let _ = std::fs::remove_dir_all(&dir);
    if rc == 0 {
        println!(
            "== demo passed: pppd dialled in, authenticated with CHAP, got 10.0.0.100 and pinged 10.0.0.1"
        );
        Ok(())
    } else {
        Err(format!("the client failed (rc={rc})").into())
    }
}
