//! The SIP benchmark: REGISTER and INVITE transactions per second on one core, nasd's
//! `[sip]` bridge against Kamailio configured as the same registrar, driven by sipp in the
//! same run. Not a CI test: a harness, run as root.
//!
//! ```text
//! cargo build --release --bin nasd --example sip_bench
//! target/release/examples/sip_bench                        # both servers, about 1 minute
//! target/release/examples/sip_bench --only kamailio --kamailio-children 1
//! ```
//!
//! Everything runs in one network namespace of its own: Kamailio (`benches/sip/kamailio.cfg`)
//! on 10.98.0.2:5060, nasd on 10.98.0.1:5060, the sipp caller/registering client on
//! 10.98.0.10 and the sipp callee line on 10.98.0.11:5062 (addresses on the namespace's
//! loopback). Each server is pinned to core 0 (`taskset -c 0`), sipp to core 1; all of them
//! run at `nice -n -10` so that other work on the machine disturbs the figures less. For each
//! server, one after the other:
//!
//! 1. **REGISTER**: `benches/sip/register.xml` (REGISTER, 401, REGISTER with digest, 200),
//!    account `bench`, a fresh Call-ID per call, at most `--limit` registrations in flight and
//!    no rate limit: a short probe, then a run sized to last about `--secs`. Registrations per
//!    second = successful calls / elapsed.
//! 2. **INVITE**: the callee line registers (`callee`, digest), then a sipp UAS
//!    (`benches/sip/uas.xml`: 180, 200, ACK, BYE, 200) answers every call; the sipp UAC
//!    (`benches/sip/uac.xml`: INVITE, 100/180/200, ACK, BYE, 200) dials `100` (a number: the
//!    dialplan rule / the config's `$rU` rewrite send it to `callee`). Same sizing. Calls per
//!    second = completed calls / elapsed.
//!
//! The server's CPU (utime + stime of the process and its children, from `/proc`) is read
//! around each measured run and reported per 1000 registrations or calls. The exit status is
//! non-zero if a server does not answer at all or a sipp run cannot be started.

#[path = "bench_support/mod.rs"]
mod bench_support;

use anyhow::{Context, Result, bail, ensure};
use bench_support::{Netns, TempDir, ip};
use clap::Parser;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const NASD_ADDR: &str = "10.98.0.1";
const KAMAILIO_ADDR: &str = "10.98.0.2";
const UAC_ADDR: &str = "10.98.0.10";
const UAS_ADDR: &str = "10.98.0.11";
const SIP_PORT: u16 = 5060;
const UAC_PORT: u16 = 5070;
const UAS_PORT: u16 = 5062;
/// The servers' core and the load generator's.
const SERVER_CPU: &str = "0";
const LOAD_CPU: &str = "1";
/// sipp's socket buffers (its default, 64 KiB, drops datagrams at a few thousand calls/s).
const SIPP_BUFFER: &str = "4194304";
/// Linux reports utime and stime in USER_HZ ticks, 100 per second.
const TICKS_PER_SEC: f64 = 100.0;
/// The accounts, the same in both servers.
const REG_USER: (&str, &str) = ("bench", "benchpw");
const CALLEE: (&str, &str) = ("callee", "calleepw");
const DIALLED: &str = "100";

#[derive(Parser, Debug)]
#[command(about = "SIP REGISTER and INVITE rates on one core: nasd against Kamailio")]
struct Args {
    /// Seconds each measured sipp run should last (sized from a short probe).
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Calls (registrations, INVITE dialogs) in flight at most: sipp's `-l`.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Kamailio's UDP worker processes (`-n`). 1 keeps every message in order; with 2-8
    /// workers on one core the rates are 10-25 % higher on this rig (the CPU per transaction
    /// is the same) but the workers reorder 180/200 and ACK/BYE now and then, which sipp's
    /// strict scenarios count as failed calls (about 0.1 %).
    #[arg(long, default_value_t = 1)]
    kamailio_children: u32,
    /// Measure only this server ("kamailio" or "nasd").
    #[arg(long)]
    only: Option<String>,
    /// Niceness of the servers and sipp (0 = unchanged): -20 keeps other work on the machine
    /// (builds) from taking much of the two cores.
    #[arg(long, default_value_t = -20, allow_hyphen_values = true)]
    nice: i32,
    /// nasd's log filter (RUST_LOG); "warn" matches Kamailio's `debug=0`.
    #[arg(long, default_value = "warn")]
    nasd_log: String,
    /// Copy the logs (servers, sipp errors) here at the end.
    #[arg(long)]
    keep_logs: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sip_bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One server's figures.
struct Row {
    server: String,
    register: Option<Measured>,
    invite: Option<Measured>,
    error: Option<String>,
}

/// One measured sipp run.
#[derive(Debug, Clone, Copy)]
struct Measured {
    successful: u64,
    failed: u64,
    retrans: u64,
    elapsed: Duration,
    /// The server's CPU ticks during the run.
    cpu_ticks: u64,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.successful as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU milliseconds per 1000 successful calls.
    fn cpu_ms_per_1000(&self) -> f64 {
        if self.successful == 0 {
            return f64::NAN;
        }
        self.cpu_ticks as f64 * 1000.0 / TICKS_PER_SEC / self.successful as f64 * 1000.0
    }

    /// The rate one whole core would sustain at this CPU cost (a projection).
    fn per_core(&self) -> f64 {
        1e6 / self.cpu_ms_per_1000()
    }

    /// The server's CPU as % of one core.
    fn cpu_percent(&self) -> f64 {
        self.cpu_ticks as f64 / TICKS_PER_SEC / self.elapsed.as_secs_f64() * 100.0
    }
}

fn run(args: &Args) -> Result<bool> {
    ensure!(
        args.secs > 0.0 && args.limit > 0,
        "--secs and --limit must be positive"
    );
    if let Some(o) = &args.only {
        ensure!(
            o == "kamailio" || o == "nasd",
            "--only: \"kamailio\" or \"nasd\""
        );
    }
    println!(
        "command: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sip");
    let dir = TempDir::new("nasd-sip-bench")?;
    let ns = Netns::new("sipbench")?;
    for a in [NASD_ADDR, KAMAILIO_ADDR, UAC_ADDR, UAS_ADDR] {
        ip(&["-n", &ns.0, "addr", "add", &format!("{a}/32"), "dev", "lo"])?;
    }
    let bench = Bench {
        ns: ns.0.clone(),
        dir: dir.0.clone(),
        scenarios,
        args,
    };
    let mut rows = Vec::new();
    for server in ["kamailio", "nasd"] {
        if args.only.as_deref().is_some_and(|o| o != server) {
            continue;
        }
        println!("\n== {server} ==");
        let row = bench.measure(server);
        if let Some(e) = &row.error {
            println!("{server}: {e}");
        }
        rows.push(row);
    }
    print_table(&rows, args);
    if let Some(keep) = &args.keep_logs {
        std::fs::create_dir_all(keep)?;
        for e in std::fs::read_dir(&dir.0)?.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().ends_with(".log") {
                std::fs::copy(e.path(), keep.join(&name))?;
            }
        }
        println!("logs copied to {}", keep.display());
    }
    Ok(rows
        .iter()
        .all(|r| r.error.is_none() && r.register.is_some_and(|m| m.successful > 0)))
}

fn print_table(rows: &[Row], args: &Args) {
    println!(
        "\nSIP on one core (server on core {SERVER_CPU}, sipp on core {LOAD_CPU}), \
         {} in flight, ~{} s per measurement",
        args.limit, args.secs
    );
    println!(
        "{:<9} {:>10} {:>14} {:>12} {:>10} {:>17} {:>18} {:>15}",
        "server",
        "REGISTER/s",
        "INVITE calls/s",
        "failed (R/I)",
        "retr (R/I)",
        "CPU ms/1000 REG",
        "CPU ms/1000 calls",
        "per core (R/I)"
    );
    let f = |m: &Option<Measured>, g: &dyn Fn(&Measured) -> String| {
        m.as_ref().map_or("-".to_string(), g)
    };
    for r in rows {
        println!(
            "{:<9} {:>10} {:>14} {:>12} {:>10} {:>17} {:>18} {:>15}",
            r.server,
            f(&r.register, &|m| format!("{:.0}", m.rate())),
            f(&r.invite, &|m| format!("{:.0}", m.rate())),
            format!(
                "{}/{}",
                f(&r.register, &|m| m.failed.to_string()),
                f(&r.invite, &|m| m.failed.to_string())
            ),
            format!(
                "{}/{}",
                f(&r.register, &|m| m.retrans.to_string()),
                f(&r.invite, &|m| m.retrans.to_string())
            ),
            f(&r.register, &|m| format!(
                "{:.1} ({:.0}%)",
                m.cpu_ms_per_1000(),
                m.cpu_percent()
            )),
            f(&r.invite, &|m| format!(
                "{:.1} ({:.0}%)",
                m.cpu_ms_per_1000(),
                m.cpu_percent()
            )),
            format!(
                "{}/{}",
                f(&r.register, &|m| format!("{:.0}", m.per_core())),
                f(&r.invite, &|m| format!("{:.0}", m.per_core()))
            ),
        );
    }
    println!(
        "(CPU: the server's utime + stime during the run, all its processes; in brackets as % \
         of one core. per core: 1000 / CPU per 1000, the rate a whole core would sustain. \
         failed/retr: sipp's failed calls and retransmissions.)"
    );
}

struct Bench<'a> {
    ns: String,
    dir: PathBuf,
    scenarios: PathBuf,
    args: &'a Args,
}

impl Bench<'_> {
    fn measure(&self, server: &str) -> Row {
        let mut row = Row {
            server: server.to_string(),
            register: None,
            invite: None,
            error: None,
        };
        if let Err(e) = self.measure_into(server, &mut row) {
            row.error = Some(format!("{e:#}"));
        }
        row
    }

    fn measure_into(&self, server: &str, row: &mut Row) -> Result<()> {
        let (addr, mut proc) = match server {
            "kamailio" => (KAMAILIO_ADDR, self.start_kamailio()?),
            _ => (NASD_ADDR, self.start_nasd()?),
        };
        let target = format!("{addr}:{SIP_PORT}");
        // Readiness: the callee line's registration, retried until the server answers.
        let t0 = Instant::now();
        self.register_callee(&target, &mut proc)
            .context("the server never accepted a registration")?;
        println!(
            "{server} pid {}: answering, callee line(s) registered, after {:.1?}",
            proc.pid,
            t0.elapsed()
        );

        let reg = |m: u64, tag: &str| {
            let mut a = self.sipp_common(&target, UAC_ADDR, UAC_PORT, "register.xml", tag);
            a.extend(["-s", REG_USER.0, "-au", REG_USER.0, "-ap", REG_USER.1].map(String::from));
            self.limited(&mut a, m);
            a
        };
        let m = self.measure_sized(&proc, "REGISTER", |m, tag| reg(m, tag))?;
        row.register = Some(m);
        ensure!(proc.alive(), "{server} exited: {}", proc.log_tail(30));

        let mut uas = self.start_uas(server)?;
        let inv = |m: u64, tag: &str| {
            let mut a = self.sipp_common(&target, UAC_ADDR, UAC_PORT, "uac.xml", tag);
            a.extend(["-s", DIALLED].map(String::from));
            self.limited(&mut a, m);
            a
        };
        let m = self.measure_sized(&proc, "INVITE", |m, tag| inv(m, tag));
        let uas_errors = uas.stop();
        row.invite = Some(m?);
        if uas_errors > 0 {
            println!(
                "the callee's sipp logged {uas_errors} error lines (see sipp-uas-{server}.log)"
            );
        }
        ensure!(proc.alive(), "{server} exited: {}", proc.log_tail(30));
        Ok(())
    }

    /// A probe of 1,000 calls, then a run sized to last `--secs`.
    fn measure_sized(
        &self,
        proc: &Server,
        what: &str,
        sipp_args: impl Fn(u64, &str) -> Vec<String>,
    ) -> Result<Measured> {
        let tag = format!("{}-{}", proc.name, what.to_lowercase());
        let probe = self.sipp(&sipp_args(1000, &format!("{tag}-probe")), proc, 60.0)?;
        ensure!(
            probe.successful > 0,
            "{what}: no call succeeded in the probe ({} failed)",
            probe.failed
        );
        let calls = ((probe.rate() * self.args.secs) as u64).max(1000);
        let m = self.sipp(&sipp_args(calls, &tag), proc, self.args.secs * 4.0 + 60.0)?;
        println!(
            "{what}: {} ok, {} failed, {} retransmissions in {:.2?}: {:.0}/s; \
             server CPU {} ticks ({:.0}% of a core, {:.1} ms per 1000)",
            m.successful,
            m.failed,
            m.retrans,
            m.elapsed,
            m.rate(),
            m.cpu_ticks,
            m.cpu_percent(),
            m.cpu_ms_per_1000()
        );
        Ok(m)
    }

    fn limited(&self, a: &mut Vec<String>, calls: u64) {
        a.extend([
            "-m".to_string(),
            calls.to_string(),
            "-r".to_string(),
            "1000000".to_string(),
            "-l".to_string(),
            self.args.limit.to_string(),
        ]);
    }

    /// sipp's arguments shared by every run: client mode towards `target`.
    fn sipp_common(
        &self,
        target: &str,
        local: &str,
        port: u16,
        scenario: &str,
        tag: &str,
    ) -> Vec<String> {
        let d = self.dir.display();
        [
            target,
            "-i",
            local,
            "-p",
            &port.to_string(),
            "-sf",
            &self.scenarios.join(scenario).display().to_string(),
            "-trace_stat",
            "-stf",
            &format!("{d}/{tag}.csv"),
            "-fd",
            "1",
            "-trace_err",
            "-error_file",
            &format!("{d}/sipp-{tag}.log"),
        ]
        .map(String::from)
        .to_vec()
    }

    /// `ip netns exec NS nice -n N taskset -c CPU PROGRAM` (every step execs the next).
    fn command(&self, cpu: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]);
        if self.args.nice != 0 {
            c.args(["nice", "-n", &self.args.nice.to_string()]);
        }
        c.args(["taskset", "-c", cpu, program]);
        c
    }

    /// Runs sipp (client) to completion on the load core; its counters, and the server's CPU.
    fn sipp(&self, args: &[String], server: &Server, timeout_secs: f64) -> Result<Measured> {
        let stat = PathBuf::from(&args[args.iter().position(|a| a == "-stf").context("-stf")? + 1]);
        let _ = std::fs::remove_file(&stat);
        let mut cmd = self.command(LOAD_CPU, "sipp");
        cmd.args(args)
            .args(["-nostdin", "-buff_size", SIPP_BUFFER, "-timeout"])
            .arg(format!("{}s", timeout_secs as u64))
            .arg("-timeout_error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let cpu0 = server.cpu_ticks();
        let t0 = Instant::now();
        let mut child = cmd.spawn().context("running sipp")?;
        let deadline = t0 + Duration::from_secs_f64(timeout_secs + 10.0);
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("sipp did not finish within {timeout_secs} s");
            }
            thread::sleep(Duration::from_millis(5));
        };
        let elapsed = t0.elapsed();
        let cpu_ticks = server.cpu_ticks().saturating_sub(cpu0);
        let counters = read_sipp_stats(&stat)
            .with_context(|| format!("sipp ({status}) left no statistics"))?;
        let get = |k: &str| counters.get(k).copied().unwrap_or(0);
        Ok(Measured {
            successful: get("SuccessfulCall(C)"),
            failed: get("FailedCall(C)"),
            retrans: get("Retransmissions(C)"),
            elapsed,
            cpu_ticks,
        })
    }

    /// The accounts the callee's sipp UAS registers: one AOR, in both servers (a SIP phone
    /// account takes any number of calls at once; only modem lines are one call each).
    fn callee_lines(&self, _server: &str) -> Vec<String> {
        vec![CALLEE.0.to_string()]
    }

    /// Registers the callee line(s) from the UAS's address, the first retried for up to 15 s
    /// (until the server answers).
    fn register_callee(&self, target: &str, server: &mut Server) -> Result<()> {
        let lines = self.callee_lines(&server.name);
        self.register_line(target, server, &lines[0], Duration::from_secs(15))?;
        for l in &lines[1..] {
            self.register_line(target, server, l, Duration::ZERO)?;
        }
        Ok(())
    }

    fn register_line(
        &self,
        target: &str,
        server: &mut Server,
        user: &str,
        retry: Duration,
    ) -> Result<()> {
        let end = Instant::now() + retry;
        let tag = format!("{}-callee-register", server.name);
        loop {
            let mut a = self.sipp_common(target, UAS_ADDR, UAS_PORT, "register.xml", &tag);
            a.extend(["-s", user, "-au", user, "-ap", CALLEE.1, "-m", "1"].map(String::from));
            let m = self.sipp(&a, server, 3.0);
            if m.as_ref().is_ok_and(|m| m.successful == 1) {
                return Ok(());
            }
            ensure!(
                server.alive(),
                "{} exited: {}",
                server.name,
                server.log_tail(30)
            );
            if Instant::now() > end {
                bail!(
                    "{user}: no registration within {retry:?} ({:?})\n{}",
                    m.map(|m| (m.successful, m.failed)),
                    server.log_tail(30)
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The callee line: a sipp UAS on the load core answering every INVITE.
    fn start_uas(&self, server: &str) -> Result<Uas> {
        let log = self.dir.join(format!("sipp-uas-{server}.log"));
        let mut cmd = self.command(LOAD_CPU, "sipp");
        cmd.args(["-i", UAS_ADDR, "-p", &UAS_PORT.to_string(), "-sf"])
            .arg(self.scenarios.join("uas.xml"))
            .args(["-m", "100000000", "-nostdin", "-buff_size", SIPP_BUFFER])
            .args(["-trace_err", "-error_file"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().context("running the sipp UAS")?;
        // sipp binds its port at once; give it that moment by waiting for the socket.
        let end = Instant::now() + Duration::from_secs(5);
        let port_hex = format!(":{UAS_PORT:04X}");
        while Instant::now() < end {
            let udp = Command::new("ip")
                .args(["netns", "exec", &self.ns, "cat", "/proc/net/udp"])
                .output()?;
            if String::from_utf8_lossy(&udp.stdout).contains(&port_hex) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Uas { child, log })
    }

    fn start_kamailio(&self) -> Result<Server> {
        let run = self.dir.join("kamailio-run");
        std::fs::create_dir_all(&run)?;
        let mut cmd = self.command(SERVER_CPU, "kamailio");
        cmd.args(["-DD", "-E", "-f"])
            .arg(self.scenarios.join("kamailio.cfg"))
            .args(["-l", &format!("udp:{KAMAILIO_ADDR}:{SIP_PORT}")])
            .args(["-n", &self.args.kamailio_children.to_string()])
            // Shared memory for tm: ~50,000 transactions in their wait state at 5,000 calls/s.
            .args(["-m", "1024", "-Y"])
            .arg(&run);
        Server::start("kamailio", cmd, &self.dir)
    }

    fn start_nasd(&self) -> Result<Server> {
        let nasd = std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("no target directory")?
            .join("nasd");
        ensure!(
            nasd.exists(),
            "{} not found: run `cargo build --release --bin nasd` first",
            nasd.display()
        );
        let config = write_nasd_config(&self.dir, &self.callee_lines("nasd"))?;
        let mut cmd = self.command(SERVER_CPU, &nasd.display().to_string());
        cmd.arg("--config")
            .arg(config)
            .env("RUST_LOG", &self.args.nasd_log);
        Server::start("nasd", cmd, &self.dir)
    }
}

/// nasd's configuration: the accounts and the dialplan rule of the Kamailio config, and the
/// PPP side nasd needs to start (one direct port on a device that does not exist: it retries
/// in the background, idle). The callee is a phone account (no `port`), which takes any number
/// of calls at once, as Kamailio's AOR does; nasd's defaults otherwise (`max_calls`).
fn write_nasd_config(dir: &Path, lines: &[String]) -> Result<PathBuf> {
    let d = dir.display();
    let secrets = dir.join("secrets");
    std::fs::write(&secrets, "nobody * unused\n")?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))?;
    }
    let c = format!(
        "[network]\nlocal_ip = \"10.99.0.1\"\npool = \"10.99.0.100-10.99.0.101\"\n\
         tun = \"sipb0\"\n\n[ppp]\nauth = [\"pap\"]\n\n[auth]\nsecrets = \"{d}/secrets\"\n\n\
         [control]\nsocket = \"{d}/nasd.sock\"\n\n[accounting]\njournal = \"{d}/accounting.jsonl\"\n\n\
         [[port]]\nname = \"idle\"\ndevice = \"{d}/no-such-tty\"\nmode = \"direct\"\n\
         lock_dir = \"none\"\n\n\
         [sip]\nlisten = \"{NASD_ADDR}:{SIP_PORT}\"\nrealm = \"nasd\"\nallow = [\"10.98.0.0/24\"]\n\
         \n\
         [[sip.account]]\nname = \"{}\"\nsecret = \"{}\"\n\n\
         [[sip.rule]]\npriority = 0\nmatch_op = \"regex\"\nmatch_exp = \"^[0-9]+$\"\n\
         account = \"{}\"\n",
        REG_USER.0, REG_USER.1, CALLEE.0
    );
    let mut c = c;
    for l in lines {
        c.push_str(&format!(
            "\n[[sip.account]]\nname = \"{l}\"\nsecret = \"{}\"\n",
            CALLEE.1
        ));
    }
    let path = dir.join("nasd.toml");
    std::fs::write(&path, c)?;
    Ok(path)
}

/// The last line of sipp's `-trace_stat` file, by column name.
fn read_sipp_stats(path: &Path) -> Result<HashMap<String, u64>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().context("empty")?.split(';').collect();
    let last: Vec<&str> = lines
        .next_back()
        .context("no data line")?
        .split(';')
        .collect();
    Ok(header
        .iter()
        .zip(last)
        .filter_map(|(h, v)| Some((h.to_string(), v.trim().parse().ok()?)))
        .collect())
}

/// A server under test: its process (and, for Kamailio, the workers it forks).
struct Server {
    name: String,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Server {
    fn start(name: &str, mut cmd: Command, dir: &Path) -> Result<Server> {
        let log = dir.join(format!("{name}.log"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(&log)?);
        println!("{name}: {cmd:?}");
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id();
        let mut s = Server {
            name: name.to_string(),
            child,
            pid,
            log,
        };
        // `ip netns exec`, `nice` and `taskset` exec in place: wait until the pid is the server.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == name) {
                return Ok(s);
            }
            ensure!(s.alive(), "{name} exited: {}", s.log_tail(30));
            ensure!(Instant::now() < end, "process {pid} did not become {name}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// utime + stime of the process and all its descendants, in ticks.
    fn cpu_ticks(&self) -> u64 {
        let mut parent: HashMap<u32, u32> = HashMap::new();
        let mut ticks: HashMap<u32, u64> = HashMap::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(pp), Some(u), Some(s)) = (f.get(1), f.get(11), f.get(12)) {
                parent.insert(pid, pp.parse().unwrap_or(0));
                ticks.insert(
                    pid,
                    u.parse::<u64>().unwrap_or(0) + s.parse::<u64>().unwrap_or(0),
                );
            }
        }
        let in_tree = |mut p: u32| {
            for _ in 0..64 {
                if p == self.pid {
                    return true;
                }
                match parent.get(&p) {
                    Some(&pp) if pp != 0 => p = pp,
                    _ => return false,
                }
            }
            false
        };
        ticks
            .iter()
            .filter(|(p, _)| in_tree(**p))
            .map(|(_, t)| t)
            .sum()
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        format!(
            "{}'s log (tail):\n{}",
            self.name,
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first (Kamailio stops its workers), then SIGKILL.
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if !self.alive() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sipp UAS answering calls; killed on drop.
struct Uas {
    child: Child,
    log: PathBuf,
}

impl Uas {
    /// Stops it; the number of lines in its error log.
    fn stop(&mut self) -> usize {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log)
            .map(|s| {
                s.lines()
                    .filter(|l| l.contains("Aborting") || l.contains("Dead call"))
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for Uas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
