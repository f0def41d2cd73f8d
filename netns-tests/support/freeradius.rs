//! FreeRADIUS 3.x started from a config directory written from scratch in a temp dir,
//! listening on 127.0.0.1 on free ports, killed (and the dir removed) on drop.
//!
//! Needs the Debian packages `freeradius` (the server) and `freeradius-utils` (`radclient`).
//! The server runs in the foreground with debug output (`-X`) on stdout; readiness is its
//! "Ready to process requests" line. It runs as whoever starts it (no user/group is set).
//!
//! Users (secret [`SECRET`] for client 127.0.0.1):
//! * `alice` / `alicepw`: Framed-IP-Address 10.9.0.7, Session-Timeout 600, Idle-Timeout 120,
//!   Class "gold", Reply-Message "Hello alice".
//! * `bob` / `bobpw`: no reply attributes.
//! * `carol` / `carolpw`: Framed-IP-Address 10.0.0.177 (inside the daemon tests' pool),
//!   Class "silver".
//!
//! Every Access-Accept and Access-Reject carries a Message-Authenticator (set in post-auth, as
//! FreeRADIUS before 3.2.5 adds one only on request), and the client entry requires one in
//! Access-Requests, so FreeRADIUS also checks ours. Accounting goes to the `detail` file.

use std::io;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::netns::{NetNs, Proc};

/// The shared secret of the 127.0.0.1 client.
pub const SECRET: &str = "testing123";

/// The server binary, or a panic that says what to install.
pub fn require(program: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "`{program}` not found: these tests need FreeRADIUS 3.x \
         (apt-get install freeradius freeradius-utils)"
    );
}

/// A running FreeRADIUS.
#[derive(Debug)]
pub struct FreeRadius {
    proc: Proc,
    dir: tempfile::TempDir,
    /// Authentication port on 127.0.0.1.
    pub auth_port: u16,
    /// Accounting port on 127.0.0.1.
    pub acct_port: u16,
    /// The network namespace it runs in, if any.
    ns: Option<String>,
}

/// Runs the server from `dir` and waits until it is ready; its log if it does not come up.
fn run(bin: &Path, dir: &Path, ns: Option<&str>) -> Result<Proc, String> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(["-X", "-f", "-d"]).arg(dir).stdin(Stdio::null());
    let proc = Proc::spawn(cmd).map_err(|e| format!("spawn freeradius: {e}"))?;
    if proc
        .stdout
        .wait_for("Ready to process requests", Duration::from_secs(30))
    {
        Ok(proc)
    } else {
        Err(format!("{}{}", proc.stdout.text(), proc.stderr.text()))
    }
}

fn free_port() -> io::Result<(UdpSocket, u16)> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    let p = s.local_addr()?.port();
    Ok((s, p))
}

impl FreeRadius {
    /// Writes the config and starts the server; panics with its log if it does not come up.
    pub fn start() -> Self {
        Self::start_in(None)
    }

    /// The same, inside a network namespace (its own 127.0.0.1).
    pub fn start_in(ns: Option<&NetNs>) -> Self {
        let bin = require("freeradius");
        let mut last = String::new();
        // Free ports are found by binding and releasing them; another test may take one in
        // between, so try again with new ports when the server cannot bind.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let (a, auth_port) = free_port().expect("free port");
            let (b, acct_port) = free_port().expect("free port");
            write_config(dir.path(), auth_port, acct_port).expect("write FreeRADIUS config");
            drop((a, b));
            match run(&bin, dir.path(), ns.map(NetNs::name)) {
                Ok(proc) => {
                    return Self {
                        proc,
                        dir,
                        auth_port,
                        acct_port,
                        ns: ns.map(|n| n.name().to_string()),
                    };
                }
                Err(log) => last = log,
            }
        }
        panic!("FreeRADIUS did not start:\n{last}");
    }

    /// Stops the server (as a crash or an outage would); [`FreeRadius::restart`] brings it
    /// back with the same configuration, ports and detail file.
    pub fn stop(&mut self) {
        self.proc.signal("KILL");
        let _ = self.proc.wait(Duration::from_secs(10));
    }

    /// Starts the server again after [`FreeRadius::stop`].
    pub fn restart(&mut self) {
        let bin = require("freeradius");
        match run(&bin, self.dir.path(), self.ns.as_deref()) {
            Ok(proc) => self.proc = proc,
            Err(log) => panic!("FreeRADIUS did not start again:\n{log}"),
        }
    }

    /// The server's debug output so far.
    pub fn log(&self) -> String {
        self.proc.stdout.text()
    }

    /// The accounting detail file (empty when nothing was written yet).
    pub fn detail(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("detail")).unwrap_or_default()
    }
}

fn write_config(dir: &Path, auth_port: u16, acct_port: u16) -> io::Result<()> {
    let d = dir.display();
    let radiusd = format!(
        r#"# Written by the nasd tests.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
raddbdir = {d}
confdir = {d}
logdir = {d}
run_dir = {d}
db_dir = {d}
radacctdir = {d}
libdir = /usr/lib/freeradius
name = freeradius
pidfile = {d}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
    destination = stdout
    colourise = no
    auth = yes
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
    # BlastRADIUS settings of 3.2.5 and later (older versions ignore them).
    require_message_authenticator = yes
    limit_proxy_state = yes
}}
client localhost {{
    ipaddr = 127.0.0.1
    secret = {SECRET}
    require_message_authenticator = yes
    limit_proxy_state = yes
}}
modules {{
    pap {{
    }}
    chap {{
    }}
    files {{
        filename = {d}/users
    }}
    detail {{
        filename = {d}/detail
        escape_filenames = no
        permissions = 0600
        header = "%t"
    }}
}}
server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {auth_port}
    }}
    listen {{
        type = acct
        ipaddr = 127.0.0.1
        port = {acct_port}
    }}
    authorize {{
        chap
        files
        pap
    }}
    authenticate {{
        Auth-Type PAP {{
            pap
        }}
        Auth-Type CHAP {{
            chap
        }}
    }}
    preacct {{
    }}
    accounting {{
        detail
    }}
    post-auth {{
        update reply {{
            &Message-Authenticator := 0x00
        }}
        Post-Auth-Type REJECT {{
            update reply {{
                &Message-Authenticator := 0x00
            }}
        }}
    }}
}}
"#
    );
    std::fs::write(dir.join("radiusd.conf"), radiusd)?;
    std::fs::write(
        dir.join("users"),
        r#"alice Cleartext-Password := "alicepw"
      Framed-IP-Address = 10.9.0.7,
      Session-Timeout = 600,
      Idle-Timeout = 120,
      Class = "gold",
      Reply-Message = "Hello alice"

bob Cleartext-Password := "bobpw"

carol Cleartext-Password := "carolpw"
      Framed-IP-Address = 10.0.0.177,
      Class = "silver"
"#,
    )
}

/// Runs `radclient` (freeradius-utils) once: sends `attrs` (one `Name = value` per line) as
/// `kind` (`disconnect`, `coa`, `auth`, ...) to `to` with one try and a 2 s timeout. Returns
/// its exit success and everything it printed.
pub fn radclient(to: &str, kind: &str, secret: &str, attrs: &str) -> (bool, String) {
    radclient_in(None, to, kind, secret, attrs)
}

/// [`radclient`] inside a network namespace.
pub fn radclient_in(
    ns: Option<&NetNs>,
    to: &str,
    kind: &str,
    secret: &str,
    attrs: &str,
) -> (bool, String) {
    use std::io::Write;
    let bin = require("radclient");
    let mut cmd = match ns {
        Some(ns) => ns.command(bin),
        None => Command::new(bin),
    };
    let mut child = cmd
        .args(["-x", "-r", "1", "-t", "2", to, kind, secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn radclient");
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(attrs.as_bytes())
        .expect("write radclient stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("radclient output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
