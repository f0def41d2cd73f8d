//! The SIP bridge's test rig: nasd with a `[sip]` section in a "nas" namespace, joined by a
//! veth link to a "peers" namespace where sipp and baresip play the callers and the ATA lines.
//!
//! ```text
//!  nas namespace                           peers namespace
//!  nasd  [sip] 10.99.0.1:5060  ── veth ──  10.99.0.2  sipp callers, sipp/baresip lines
//!        (also 10.98.0.1)                  10.98.0.2  a caller outside `allow`
//! ```
//!
//! nasd needs one `[[port]]`, so a one-line vmodem pool stands behind it (port `m0`); its
//! directory also holds the configuration and the accounting journal. Every sipp run writes
//! its message trace (`-trace_msg`) and error trace into that directory under a name of its
//! own, and the run's result carries both, so a failing assertion can show the exchange.
//! Everything (processes, namespaces, files) goes when the rig is dropped.

use crate::daemon::{Cfg, Nas, journal};
use crate::support::freeradius::require;
use crate::support::netns::{NetNs, Proc};
use crate::support::topology::{ip, veth};
use crate::support::vmodem::Vmodem;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The bridge's address.
pub const NAS_IP: &str = "10.99.0.1";
/// The bridge's SIP port.
pub const SIP_PORT: u16 = 5060;
/// The peers' address (inside `allow`).
pub const PEER_IP: &str = "10.99.0.2";
/// A second address of the peers, outside `allow`.
pub const OUTSIDE_IP: &str = "10.98.0.2";

/// Three ATA lines (`line1`..`line3`, passwords `pw1`..`pw3`, extensions 201..203), the hunt
/// group `modems` of all three, and the rule sending `555…` to it.
pub const LINES: &str = r#"
[[sip.account]]
name = "line1"
secret = "pw1"
extension = "201"

[[sip.account]]
name = "line2"
secret = "pw2"
extension = "202"

[[sip.account]]
name = "line3"
secret = "pw3"
extension = "203"

[[sip.group]]
name = "modems"
lines = ["line1", "line2", "line3"]

[[sip.rule]]
priority = 0
match_op = "regex"
match_exp = "^555"
group = "modems"
"#;

/// The directory of the sipp scenarios.
pub fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("netns-tests/sip")
}

/// One SIP message a sipp sent or received.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Whether sipp sent it (else it received it).
    pub sent: bool,
    /// The message as text.
    pub text: String,
}

impl Msg {
    /// The first line (`INVITE sip:... SIP/2.0`, `SIP/2.0 486 Busy Here`).
    pub fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        self.first_line()
            .strip_prefix("SIP/2.0 ")?
            .get(..3)?
            .parse()
            .ok()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        let l = self.first_line();
        if l.starts_with("SIP/2.0") {
            return None;
        }
        l.split_whitespace().next()
    }

    /// The value of the first header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.text
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
    }

    /// The body (after the blank line).
    pub fn body(&self) -> &str {
        self.text
            .split_once("\n\n")
            .map_or("", |(_, b)| b)
            .trim_end()
    }
}

/// Splits sipp's message trace into messages.
fn parse_trace(trace: &str) -> Vec<Msg> {
    let mut out = Vec::new();
    for chunk in trace.split("----------------------------------------------- ") {
        let mut lines = chunk.splitn(3, '\n');
        let (_stamp, head) = (lines.next(), lines.next().unwrap_or(""));
        let sent = head.contains("message sent");
        if !sent && !head.contains("message received") {
            continue;
        }
        let text = lines
            .next()
            .unwrap_or("")
            .trim_start_matches('\n')
            .replace("\r\n", "\n");
        out.push(Msg {
            sent,
            text: text.trim_end().to_string() + "\n",
        });
    }
    out
}

/// What to run: a scenario and its options.
#[derive(Debug, Clone)]
pub struct Sipp<'a> {
    /// The scenario file in [`scenarios`].
    pub scenario: &'a str,
    /// `-s`: the dialled number, or the account of a line.
    pub service: &'a str,
    /// `-i`: the local address.
    pub local_ip: &'a str,
    /// `-p`: the local port.
    pub port: u16,
    /// `-au`/`-ap`.
    pub auth: Option<(&'a str, &'a str)>,
    /// `-key` pairs.
    pub keys: Vec<(&'a str, String)>,
    /// `-m`: calls before exiting.
    pub calls: u32,
    /// `-timeout`, after which sipp gives up (with an error).
    pub timeout: Duration,
    /// The remote end; none for a line (UAS) that waits for calls.
    pub remote: Option<String>,
}

impl<'a> Sipp<'a> {
    /// A caller at [`PEER_IP`]:`port` dialling `number` at the bridge.
    pub fn caller(scenario: &'a str, number: &'a str, port: u16) -> Self {
        Sipp {
            scenario,
            service: number,
            local_ip: PEER_IP,
            port,
            auth: None,
            keys: Vec::new(),
            calls: 1,
            timeout: Duration::from_secs(30),
            remote: Some(format!("{NAS_IP}:{SIP_PORT}")),
        }
    }

    /// A line (UAS) at [`PEER_IP`]:`port` answering `calls` calls as `account`.
    pub fn line(scenario: &'a str, account: &'a str, port: u16, calls: u32) -> Self {
        Sipp {
            remote: None,
            calls,
            timeout: Duration::from_secs(60),
            ..Sipp::caller(scenario, account, port)
        }
    }
}

/// A running sipp.
pub struct SippProc {
    proc: Proc,
    trace: PathBuf,
    errors: PathBuf,
    /// What it is (for messages).
    pub name: String,
}

/// A finished sipp run.
#[derive(Debug)]
pub struct SippRun {
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The messages it sent and received, in order.
    pub msgs: Vec<Msg>,
    /// Its error trace (failed regexp checks, unexpected messages, timeouts).
    pub errors: String,
    /// What it is.
    pub name: String,
}

impl SippRun {
    /// The messages received.
    pub fn received(&self) -> impl Iterator<Item = &Msg> {
        self.msgs.iter().filter(|m| !m.sent)
    }

    /// The last final (>= 200) response received.
    pub fn final_status(&self) -> Option<u16> {
        self.received()
            .filter_map(Msg::status)
            .filter(|s| *s >= 200)
            .last()
    }

    /// The requests received with this method.
    pub fn requests(&self, method: &str) -> Vec<&Msg> {
        self.received()
            .filter(|m| m.method() == Some(method))
            .collect()
    }

    /// The first response received with this status.
    pub fn response(&self, status: u16) -> Option<&Msg> {
        self.received().find(|m| m.status() == Some(status))
    }

    /// The whole exchange and the errors, for assertion messages.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "sipp {} exited with {:?}\nerrors:\n{}\nmessages:\n",
            self.name, self.code, self.errors
        );
        for m in &self.msgs {
            s.push_str(if m.sent {
                ">>> sent\n"
            } else {
                "<<< received\n"
            });
            s.push_str(&m.text);
        }
        s
    }

    /// Asserts exit code 0 (every call went as the scenario says).
    #[track_caller]
    pub fn assert_ok(&self, context: &str) {
        assert_eq!(self.code, Some(0), "{context}\n{}", self.describe());
    }
}

impl SippProc {
    /// Waits for the end (or gives up after `timeout` and kills it).
    pub fn finish(mut self, timeout: Duration) -> SippRun {
        let code = match self.proc.wait(timeout) {
            Ok(st) => st.code(),
            Err(_) => {
                self.proc.signal("KILL");
                let _ = self.proc.wait(Duration::from_secs(5));
                None
            }
        };
        self.result(code)
    }

    /// Asks it to stop (SIGUSR1: sipp's graceful quit, which flushes its traces) and waits.
    pub fn stop(self) -> SippRun {
        self.proc.signal("USR1");
        self.finish(Duration::from_secs(10))
    }

    fn result(&self, code: Option<i32>) -> SippRun {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        SippRun {
            code,
            msgs: parse_trace(&read(&self.trace)),
            errors: read(&self.errors),
            name: self.name.clone(),
        }
    }
}

/// The running rig. Fields drop in order: nasd, then the namespaces, then the pool.
pub struct SipRig {
    /// nasd.
    pub nas: Nas,
    /// The namespace of the callers and lines.
    pub peers: NetNs,
    /// nasd's namespace (kept until the rig goes).
    _nas_ns: NetNs,
    vm: Vmodem,
    seq: AtomicU32,
}

/// Waits until `f` holds, checking every 100 ms (state in other processes and files).
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends one datagram from `src_ip` in `ns` to the bridge and returns the first answer that
/// is not provisional (1xx), or an empty string after two seconds. `{port}` in the payload becomes the local port.
const PROBE: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
port = s.getsockname()[1]
data = sys.stdin.buffer.read().replace(b"{port}", str(port).encode())
s.settimeout(2.0)
s.sendto(data, (sys.argv[2], int(sys.argv[3])))
try:
    while True:
        d = s.recvfrom(65535)[0]
        if not d.startswith(b"SIP/2.0 1"):
            sys.stdout.buffer.write(d)
            break
except socket.timeout:
    pass
"#;

impl SipRig {
    /// Starts the topology and nasd with `[sip]` = the rig's listen/realm/allow, then `sip`
    /// (more keys of `[sip]`, then its tables), and waits until the bridge answers.
    pub fn start(sip: &str) -> SipRig {
        Self::start_with(1, sip)
    }

    /// [`SipRig::start`] with `lines` modem ports (`m0`..) on as many vmodem lines.
    pub fn start_with(lines: usize, sip: &str) -> SipRig {
        require("sipp");
        let vm = crate::daemon::vmodem(&lines.to_string());
        let nas_ns = NetNs::new().unwrap();
        let peers = NetNs::new().unwrap();
        veth(
            &nas_ns,
            "sip0",
            "10.99.0.1/24",
            &peers,
            "eth0",
            "10.99.0.2/24",
        );
        ip(&nas_ns, &["addr", "add", "10.98.0.1/24", "dev", "sip0"]);
        ip(&peers, &["addr", "add", "10.98.0.2/24", "dev", "eth0"]);
        let tail = format!(
            "[sip]\nlisten = \"{NAS_IP}:{SIP_PORT}\"\nrealm = \"nasd\"\n\
             allow = [\"10.99.0.0/24\"]\n{sip}\n"
        );
        let cfg = Cfg {
            lines,
            tail: &tail,
            ..Cfg::default()
        }
        .write(vm.dir());
        let nas = Nas::start(&nas_ns, &cfg);
        let rig = SipRig {
            nas,
            peers,
            _nas_ns: nas_ns,
            vm,
            seq: AtomicU32::new(0),
        };
        let ready = eventually(Duration::from_secs(20), || {
            let r = rig.probe(
                PEER_IP,
                "OPTIONS sip:nasd@10.99.0.1 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 10.99.0.2:{port};rport;branch=z9hG4bK-ready\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@10.99.0.2>;tag=r1\r\n\
                 To: <sip:nasd@10.99.0.1>\r\nCall-ID: ready-probe\r\nCSeq: 1 OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n",
            );
            r.starts_with("SIP/2.0 ")
        });
        assert!(ready, "the SIP bridge does not answer:\n{}", rig.log());
        rig
    }

    /// The directory of the configuration, journal and traces.
    pub fn dir(&self) -> &Path {
        self.vm.dir()
    }

    /// The virtual modem pool behind the ports.
    pub fn vm(&self) -> &Vmodem {
        &self.vm
    }

    /// nasd's log.
    pub fn log(&self) -> String {
        self.nas.log()
    }

    /// Sends `payload` (`{port}` replaced by the local port) from `src_ip` to the bridge; the
    /// first non-provisional answer's text ("" when none came in two seconds).
    pub fn probe(&self, src_ip: &str, payload: &str) -> String {
        self.probe_bytes(src_ip, payload.as_bytes())
    }

    /// [`SipRig::probe`] with raw bytes.
    pub fn probe_bytes(&self, src_ip: &str, payload: &[u8]) -> String {
        use std::io::Write;
        let mut c = self.peers.command("python3");
        c.args(["-c", PROBE, src_ip, NAS_IP, &SIP_PORT.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(payload).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
    }

    /// Starts a sipp in the peers' namespace.
    pub fn spawn(&self, s: &Sipp) -> SippProc {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let stem = format!("sipp-{n}-{}", s.scenario.trim_end_matches(".xml"));
        let trace = self.dir().join(format!("{stem}.msg"));
        let errors = self.dir().join(format!("{stem}.err"));
        let mut c = self.peers.command("sipp");
        if let Some(r) = &s.remote {
            c.arg(r);
        }
        c.arg("-sf")
            .arg(scenarios().join(s.scenario))
            .args(["-i", s.local_ip, "-p", &s.port.to_string(), "-s", s.service])
            .args(["-m", &s.calls.to_string()])
            .args(["-timeout", &format!("{}s", s.timeout.as_secs())])
            .args(["-timeout_error", "-nostdin", "-trace_msg", "-trace_err"])
            .arg("-message_file")
            .arg(&trace)
            .arg("-error_file")
            .arg(&errors)
            .stdin(Stdio::null());
        if let Some((user, pass)) = s.auth {
            c.args(["-au", user, "-ap", pass]);
        }
        for (k, v) in &s.keys {
            c.args(["-key", k, v]);
        }
        let proc = Proc::spawn(c).unwrap();
        let name = format!("{stem} (-s {} at {}:{})", s.service, s.local_ip, s.port);
        // A line is ready when its socket is bound (it must be before anyone calls it).
        if s.remote.is_none() {
            let bound = eventually(Duration::from_secs(10), || {
                ss_udp(&self.peers).contains(&format!("{}:{}", s.local_ip, s.port))
            });
            assert!(bound, "sipp {name} did not bind: {}", proc.stderr.text());
        }
        SippProc {
            proc,
            trace,
            errors,
            name,
        }
    }

    /// Runs a sipp to its end (its own `-timeout` bounds it).
    pub fn run(&self, s: &Sipp) -> SippRun {
        self.spawn(s).finish(s.timeout + Duration::from_secs(10))
    }

    /// Registers `account` from [`PEER_IP`]:`port` for `expires` seconds (asserting the 200).
    pub fn register(&self, account: &str, secret: &str, port: u16, expires: u32) -> SippRun {
        let r = self.run(&Sipp {
            auth: Some((account, secret)),
            keys: vec![("expires", expires.to_string())],
            timeout: Duration::from_secs(15),
            ..Sipp::caller("register.xml", account, port)
        });
        r.assert_ok(&format!("{account} registers\nnasd:\n{}", self.log()));
        r
    }

    /// Registers `account` on `port`, then starts a sipp line there with `scenario`.
    pub fn line(&self, account: &str, secret: &str, port: u16, scenario: &str) -> SippProc {
        self.register(account, secret, port, 600);
        self.spawn(&Sipp::line(scenario, account, port, 1))
    }

    /// The journal's call records.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        journal(self.dir())
            .into_iter()
            .filter(|r| r["kind"] == "call")
            .collect()
    }

    /// Waits (10 s at most) for `n` call records; all of them.
    pub fn wait_calls(&self, n: usize) -> Vec<serde_json::Value> {
        let ok = eventually(Duration::from_secs(10), || self.calls().len() >= n);
        assert!(
            ok,
            "expected {n} call records, journal: {:?}\nnasd:\n{}",
            journal(self.dir()),
            self.log()
        );
        self.calls()
    }

    /// `nasctl args... --json` against this nasd, parsed (the command must succeed).
    pub fn nasctl_json(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(crate::support::netns::nasctl())
            .arg("--socket")
            .arg(self.dir().join("nasd.sock"))
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nasctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "nasctl {args:?} --json: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `nasctl args... --json`, which must be a list: its items.
    pub fn nasctl_list(&self, args: &[&str]) -> Vec<serde_json::Value> {
        match self.nasctl_json(args) {
            serde_json::Value::Array(a) => a,
            other => panic!("nasctl {args:?} --json: not a list: {other}"),
        }
    }

    /// `nasctl sip registrations --json`: the bindings.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        self.nasctl_list(&["sip", "registrations"])
    }
}

/// `ss -uln` in a namespace.
fn ss_udp(ns: &NetNs) -> String {
    ns.command("ss")
        .args(["-uln"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A baresip (ATA line) in the peers' namespace, its config in a directory of its own.
pub struct Baresip {
    /// The process (its output is the log).
    pub proc: Proc,
    _dir: tempfile::TempDir,
}

impl Baresip {
    /// Starts baresip on [`PEER_IP`]:`port` registering `account`/`secret` at the bridge with
    /// `answermode=auto`, headless (audio through the `aubridge` null device, G.711 only), and
    /// waits for its registration's 200.
    pub fn start(rig: &SipRig, account: &str, secret: &str, port: u16) -> Baresip {
        require("baresip");
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t{PEER_IP}:{port}\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tg711.so\n\
             module\t\t\taubridge.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             audio_player\t\taubridge,nasd\n\
             audio_source\t\taubridge,nasd\n\
             audio_alert\t\taubridge,nasd\n\
             audio_level\t\tno\n\
             rtp_ports\t\t10000-10020\n\
             net_interface\t\teth0\n"
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(
            dir.path().join("accounts"),
            format!(
                "<sip:{account}@{NAS_IP}:{SIP_PORT};transport=udp>;auth_pass={secret};\
                 answermode=auto;regint=600\n"
            ),
        )
        .unwrap();
        let mut c = rig.peers.command("baresip");
        c.arg("-f").arg(dir.path()).stdin(Stdio::null());
        let proc = Proc::spawn(c).unwrap();
        let registered = eventually(Duration::from_secs(15), || {
            proc.stdout.text().contains("200 OK") || proc.stderr.text().contains("200 OK")
        });
        assert!(
            registered,
            "baresip did not register:\n{}\n{}\nnasd:\n{}",
            proc.stdout.text(),
            proc.stderr.text(),
            rig.log()
        );
        Baresip { proc, _dir: dir }
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        format!("{}{}", self.proc.stdout.text(), self.proc.stderr.text())
    }
}
