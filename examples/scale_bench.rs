//! nasd at scale: 1,000 concurrent dial-up sessions through vmodem into one nasd, driven by a
//! load client built on nasd's own sans-IO PPP [`Client`]. Not a CI test: a harness, run as
//! root.
//!
//! ```text
//! cargo build --release --bin nasd --bin vmodem --example scale_bench
//! target/release/examples/scale_bench                       # 1,000 sessions
//! target/release/examples/scale_bench --sessions 200 --idle-secs 20
//! target/release/examples/scale_bench --pppd-footprint      # real pppd in UML, for comparison
//! ```
//!
//! `vmodem` runs N lines; `nasd` (in a network namespace of its own) has N modem ports on
//! them, PAP, a pool of N addresses and `echo_interval = 30`. This process plays all N callers
//! from one thread: `poll` over the N `DIR/client<i>.sock` sockets, each line dialling
//! `ATDT5551234`, waiting for `CONNECT` and then negotiating PPP with its own [`Client`]
//! (which also answers nasd's LCP echoes). It measures
//!
//! 1. **memory per session**: nasd's VmRSS with N idle ports and no call, and with N
//!    sessions up; the difference divided by N;
//! 2. **set-up rate**: all N lines dial at once; sessions per second from the first dial to
//!    the last session up, and each line's dial-to-up latency (p50/p90/p99/max);
//! 3. **idle CPU**: nasd's utime + stime over `--idle-secs` with N sessions up and nothing but
//!    keepalives (LCP echoes every 30 s per session), as % of one core;
//! 4. **aggregate throughput**: every line's rate raised through vmodem's control socket, then
//!    every caller sends 1400-byte UDP datagrams to nasd's address at once for
//!    `--bulk-secs`; counted by the kernel on nasd's TUN device (packets nasd delivered);
//! 5. **tear-down**: every caller hangs up at once; time until every address is released.
//!
//! Children get `ulimit -n 65536` (vmodem holds two pty masters and a listening socket per
//! line, nasd a tty per port). The namespace, the processes and the temporary directory are
//! removed on exit, also on errors and panics (Drop guards).

#[path = "../netns-tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[path = "bench_support/mod.rs"]
mod bench_support;

use anyhow::{Context, Result, bail, ensure};
use bench_support::*;
use clap::Parser;
use nasd::proto::client::{Client, ClientConfig, ClientEvent};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const TUN: &str = "scale0";
const USER: &str = "bench";
const SECRET: &str = "bench-secret";
const BULK_PAYLOAD: usize = 1400;
/// Linux reports utime and stime in USER_HZ ticks, 100 per second.
const TICKS_PER_SEC: f64 = 100.0;
const NOFILE: &str = "65536";

#[derive(Parser, Debug)]
#[command(about = "nasd with 1,000 concurrent sessions: memory, set-up rate, idle CPU, throughput")]
struct Args {
    /// Concurrent sessions (vmodem lines, nasd ports, callers).
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// vmodem's line rate (bits/s) while sessions are set up and idle.
    #[arg(long, default_value_t = 33_600)]
    rate: u32,
    /// Line rate (bits/s) for the throughput phase.
    #[arg(long, default_value_t = 10_000_000)]
    bulk_rate: u32,
    /// nasd's `[ppp] echo_interval`.
    #[arg(long, default_value_t = 30)]
    echo_interval: u64,
    /// Seconds of the idle-CPU phase.
    #[arg(long, default_value_t = 60.0)]
    idle_secs: f64,
    /// Seconds of the throughput phase (0 = skip).
    #[arg(long, default_value_t = 10.0)]
    bulk_secs: f64,
    /// nasd's `[ppp] first_request_delay_ms` (default: nasd's own, 1000 ms).
    #[arg(long)]
    first_request_delay_ms: Option<u64>,
    /// Copy nasd's log here at the end (the temporary directory is removed).
    #[arg(long)]
    keep_log: Option<PathBuf>,
    /// Instead: measure one real pppd's footprint (pppd inside User-Mode Linux, dialled
    /// through vmodem into nasd) for comparison.
    #[arg(long)]
    pppd_footprint: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = if args.pppd_footprint {
        pppd_footprint()
    } else {
        run(args)
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale_bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bin(name: &str) -> Result<PathBuf> {
    let p = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .context("no target directory")?
        .join(name);
    ensure!(
        p.exists(),
        "{} not found: run `cargo build --release --bin {name}` first",
        p.display()
    );
    Ok(p)
}

/// `sh -c 'ulimit -n 65536; exec "$0" "$@"' PROGRAM` (the pid stays the program's).
fn with_nofile(program: &Path) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "ulimit -n {NOFILE} 2>/dev/null; exec \"$0\" \"$@\""
        ))
        .arg(program);
    c
}

fn run(args: Args) -> Result<()> {
    let n = args.sessions;
    ensure!((1..=2048).contains(&n), "--sessions must be 1..=2048");
    println!(
        "command: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    let dir = TempDir::new("nasd-scale")?;
    let vm = Vmodem::start(&dir.0, n, args.rate)?;
    let ns = Netns::new("nasd-scale")?;
    let _ = in_netns(&ns.0, || {
        std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")
    })
    .join();
    let config = write_config(&dir.0, n, args.echo_interval, args.first_request_delay_ms)?;
    let t_start = Instant::now();
    let mut nasd = Nasd::start(&ns.0, &config, &dir.0)?;
    nasd.wait_count("state=Idle", n, Duration::from_secs(120))
        .context("waiting for every port to be ready")?;
    println!(
        "nasd pid {}: {n} ports ready in {:.1?}",
        nasd.pid,
        t_start.elapsed()
    );
    // Let start-up allocations settle, then the baseline.
    wait_quiet(&nasd, Duration::from_secs(2));
    let rss0 = status_kib(nasd.pid, "VmRSS")?;
    let fds0 = std::fs::read_dir(format!("/proc/{}/fd", nasd.pid))?.count();
    println!("nasd with {n} idle ports, no call: VmRSS {rss0} KiB, {fds0} fds");

    // ---- set-up ----
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        lines.push(Line::connect(&vm.dir, i)?);
    }
    let setup_cpu0 = (
        cpu_ticks(nasd.pid)?,
        cpu_ticks(vm.pid())?,
        cpu_ticks(std::process::id())?,
    );
    let t_dial = Instant::now();
    for l in &mut lines {
        l.dial(t_dial)?;
    }
    let mut pump = Pump::default();
    pump.run(
        &mut lines,
        Instant::now() + Duration::from_secs(180),
        |ls| ls.iter().all(|l| l.up.is_some() || l.failed.is_some()),
    )?;
    let failed: Vec<_> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.failed.as_ref().map(|f| format!("line {i}: {f}")))
        .collect();
    ensure!(
        failed.is_empty(),
        "{} of {n} lines failed: {}\n{}",
        failed.len(),
        failed
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
        nasd.log_tail(40)
    );
    let setup_cpu = [
        cpu_ticks(nasd.pid)? - setup_cpu0.0,
        cpu_ticks(vm.pid())? - setup_cpu0.1,
        cpu_ticks(std::process::id())? - setup_cpu0.2,
    ]
    .map(|t| t as f64 / TICKS_PER_SEC);
    let last_up = lines.iter().filter_map(|l| l.up).max().expect("n > 0");
    let setup_secs = (last_up - t_dial).as_secs_f64();
    nasd.wait_count("session up", n, Duration::from_secs(30))?;
    let mut ips: Vec<_> = lines.iter().filter_map(|l| l.client.local_ip()).collect();
    ips.sort();
    ips.dedup();
    ensure!(
        ips.len() == n,
        "{} distinct addresses for {n} sessions",
        ips.len()
    );
    let lat =
        |f: &dyn Fn(&Line) -> Duration| quantiles(&lines.iter().map(f).collect::<Vec<_>>(), 1e3);
    let total = lat(&|l| l.up.unwrap() - l.dialled);
    let modem = lat(&|l| l.connected.unwrap() - l.dialled);
    let ppp = lat(&|l| l.up.unwrap() - l.connected.unwrap());
    println!(
        "{n} sessions up in {setup_secs:.2} s: {:.0} set-ups per second",
        n as f64 / setup_secs
    );

    // ---- memory ----
    pump.run(&mut lines, Instant::now() + Duration::from_secs(3), |_| {
        false
    })?;
    let rss1 = status_kib(nasd.pid, "VmRSS")?;
    let hwm1 = status_kib(nasd.pid, "VmHWM")?;
    let threads = status_kib(nasd.pid, "Threads")?;
    let per_session = (rss1 as f64 - rss0 as f64) / n as f64;
    println!(
        "nasd with {n} sessions up: VmRSS {rss1} KiB (peak {hwm1} KiB, {threads} threads): \
         {per_session:.1} KiB per session"
    );

    // ---- idle CPU ----
    let echoes0: u64 = lines
        .iter()
        .map(|l| l.client.stats().echo_replies_sent)
        .sum();
    let cpu0 = (
        cpu_ticks(nasd.pid)?,
        cpu_ticks(vm.pid())?,
        cpu_ticks(std::process::id())?,
    );
    let t0 = Instant::now();
    pump.run(
        &mut lines,
        t0 + Duration::from_secs_f64(args.idle_secs),
        |_| false,
    )?;
    let idle = t0.elapsed().as_secs_f64();
    let cpu1 = (
        cpu_ticks(nasd.pid)?,
        cpu_ticks(vm.pid())?,
        cpu_ticks(std::process::id())?,
    );
    let echoes: u64 = lines
        .iter()
        .map(|l| l.client.stats().echo_replies_sent)
        .sum::<u64>()
        - echoes0;
    let pct = |a: u64, b: u64| (b - a) as f64 / TICKS_PER_SEC / idle * 100.0;
    let idle_cpu = pct(cpu0.0, cpu1.0);
    println!(
        "idle {idle:.0} s with {n} sessions: nasd {idle_cpu:.2} % of a core ({} ticks), \
         vmodem {:.2} %, callers {:.2} %; {echoes} LCP echoes answered",
        cpu1.0 - cpu0.0,
        pct(cpu0.1, cpu1.1),
        pct(cpu0.2, cpu1.2)
    );
    ensure!(
        lines.iter().all(|l| l.failed.is_none()),
        "sessions went down while idle"
    );

    // ---- throughput ----
    let bulk = if args.bulk_secs > 0.0 {
        for i in 0..n {
            vm.ctl(&format!(
                r#"{{"cmd":"rate","line":{i},"bps":{}}}"#,
                args.bulk_rate
            ))?;
        }
        Some(bulk(
            &ns.0,
            &nasd,
            &vm,
            &mut lines,
            &mut pump,
            args.bulk_secs,
        )?)
    } else {
        None
    };

    // ---- tear-down ----
    let released0 = nasd.count("address released");
    let t_hang = Instant::now();
    drop(lines);
    nasd.wait_count("address released", released0 + n, Duration::from_secs(120))?;
    let teardown = t_hang.elapsed().as_secs_f64();
    wait_quiet(&nasd, Duration::from_secs(2));
    let rss2 = status_kib(nasd.pid, "VmRSS")?;
    ensure!(nasd.alive(), "nasd exited");
    if let Some(p) = &args.keep_log {
        std::fs::copy(&nasd.log, p)
            .with_context(|| format!("copying the log to {}", p.display()))?;
    }

    // ---- report ----
    println!(
        "\n== nasd with {n} concurrent sessions (vmodem {} bit/s lines, PAP, \
         first_request_delay_ms {})",
        args.rate,
        args.first_request_delay_ms
            .map_or("= nasd's default (1000)".to_string(), |ms| format!(
                "= {ms}"
            ))
    );
    println!(
        "memory: VmRSS {rss0} KiB with {n} idle ports → {rss1} KiB with {n} sessions up \
         = {per_session:.1} KiB per session (target ≤ 64 KiB); {rss2} KiB after all hung up"
    );
    println!(
        "set-up: {n} dialled at once, all up in {setup_secs:.2} s = {:.0} sessions/s \
         (target ≥ 200/s)",
        n as f64 / setup_secs
    );
    println!(
        "  CPU during set-up: nasd {:.2} s ({:.2} ms per session), vmodem {:.2} s, callers {:.2} s",
        setup_cpu[0],
        setup_cpu[0] * 1e3 / n as f64,
        setup_cpu[1],
        setup_cpu[2]
    );
    println!(
        "{:<34}{:>9}{:>9}{:>9}{:>9}",
        "latency (ms)", "p50", "p90", "p99", "max"
    );
    for (name, q) in [
        ("dial → session up", total),
        ("  dial → CONNECT (modem)", modem),
        ("  CONNECT → IPCP up (PPP)", ppp),
    ] {
        println!(
            "{name:<34}{:>9.0}{:>9.0}{:>9.0}{:>9.0}",
            q[0], q[1], q[2], q[3]
        );
    }
    println!(
        "idle CPU: {idle_cpu:.2} % of one core over {idle:.0} s with {n} sessions and \
         echo_interval = {} (target < 1 %); {echoes} echoes answered",
        args.echo_interval
    );
    if let Some(b) = bulk {
        println!(
            "throughput: {n} callers sending at once for {:.1} s: {} datagrams of {BULK_PAYLOAD} \
             B delivered to the TUN = {:.1} Mbit/s of UDP payload; nasd CPU {:.0} %; \
             callers {:.0} %, vmodem {:.0} %",
            b.secs,
            b.packets,
            b.packets as f64 * BULK_PAYLOAD as f64 * 8.0 / 1e6 / b.secs,
            b.nasd_cpu,
            b.caller_cpu,
            b.vmodem_cpu
        );
    }
    println!("tear-down: {n} callers hung up at once, every address released in {teardown:.2} s");
    Ok(())
}

/// Waits until nasd's log has not grown for `quiet` (or 30 s passed).
fn wait_quiet(nasd: &Nasd, quiet: Duration) {
    let end = Instant::now() + Duration::from_secs(30);
    let mut last = (nasd.log_len(), Instant::now());
    while Instant::now() < end && last.1.elapsed() < quiet {
        thread::sleep(Duration::from_millis(100));
        let len = nasd.log_len();
        if len != last.0 {
            last = (len, Instant::now());
        }
    }
}

fn write_config(
    dir: &Path,
    n: usize,
    echo_interval: u64,
    first_request_delay_ms: Option<u64>,
) -> Result<PathBuf> {
    let delay = first_request_delay_ms
        .map(|ms| format!("first_request_delay_ms = {ms}\n"))
        .unwrap_or_default();
    let d = dir.display();
    std::fs::write(dir.join("secrets"), format!("{USER} * {SECRET}\n"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("secrets"), std::fs::Permissions::from_mode(0o600))?;
    }
    // A pool of 4094 addresses: 10.1.0.1 - 10.1.15.254.
    let mut c = format!(
        "[network]\nlocal_ip = \"{SERVER}\"\npool = \"10.1.0.0/20\"\ntun = \"{TUN}\"\n\n\
         [ppp]\nauth = [\"pap\"]\necho_interval = {echo_interval}\n{delay}\n\
         [auth]\nsecrets = \"{d}/secrets\"\n\n[control]\nsocket = \"{d}/nasd-control.sock\"\n\n\
         [accounting]\njournal = \"{d}/accounting.jsonl\"\n"
    );
    for i in 0..n {
        c.push_str(&format!(
            "\n[[port]]\nname = \"m{i}\"\ndevice = \"{d}/server{i}\"\nmode = \"modem\"\n\
             flow_control = \"none\"\nlock_dir = \"none\"\n"
        ));
    }
    let path = dir.join("nasd.toml");
    std::fs::write(&path, c)?;
    Ok(path)
}

// ---- the callers ------------------------------------------------------------------------

/// One caller: a vmodem client line (its socket) and a PPP client.
struct Line {
    sock: UnixStream,
    client: Client,
    at: Vec<u8>,
    dialled: Instant,
    connected: Option<Instant>,
    up: Option<Instant>,
    failed: Option<String>,
}

impl Line {
    fn connect(dir: &Path, i: usize) -> Result<Line> {
        let sock = UnixStream::connect(dir.join(format!("client{i}.sock")))
            .with_context(|| format!("client{i}.sock"))?;
        sock.set_nonblocking(true)?;
        let mut config = ClientConfig::with_credentials(USER, SECRET);
        config.chap = false;
        config.request_dns = false;
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        Ok(Line {
            sock,
            client: Client::new(config, seed),
            at: Vec::new(),
            dialled: Instant::now(),
            connected: None,
            up: None,
            failed: None,
        })
    }

    fn dial(&mut self, now: Instant) -> Result<()> {
        self.dialled = now;
        self.sock.write_all(b"ATDT5551234\r")?;
        Ok(())
    }

    fn live(&self) -> bool {
        self.failed.is_none()
    }

    fn fail(&mut self, why: String) {
        if self.failed.is_none() {
            self.failed = Some(why);
        }
    }

    /// Reads what is there and feeds it to the modem parser or the client.
    fn read_in(&mut self, buf: &mut [u8], now: Instant) {
        loop {
            let n = match self.sock.read(buf) {
                Ok(0) => {
                    self.fail("the line closed".into());
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail(format!("read: {e}"));
                    return;
                }
            };
            if self.connected.is_some() {
                self.client.handle_serial_input(now, &buf[..n]);
                continue;
            }
            self.at.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&self.at).into_owned();
            if let Some(i) = text.find("CONNECT") {
                // The result line ends with CR LF; what follows is PPP.
                if let Some(j) = text[i..].find("\r\n") {
                    let rest = self.at.split_off(i + j + 2);
                    self.connected = Some(now);
                    self.client.start(now);
                    self.client.handle_serial_input(now, &rest);
                }
            } else if let Some(w) = ["BUSY", "NO CARRIER", "NO DIALTONE", "ERROR"]
                .iter()
                .find(|w| text.contains(*w))
            {
                self.fail(format!("modem said {w}"));
                return;
            }
        }
    }

    fn write_out(&mut self) {
        while !self.client.serial_output().is_empty() {
            match self.sock.write(self.client.serial_output()) {
                Ok(n) => self.client.consume_serial_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(format!("write: {e}"));
                    return;
                }
            }
        }
    }
}

/// The one-thread event loop over every caller.
#[derive(Default)]
struct Pump {
    /// Bulk mode: a datagram each `Up` caller keeps sending (its source is patched per line).
    bulk: bool,
    sent: u64,
    received: u64,
}

impl Pump {
    fn run(
        &mut self,
        lines: &mut [Line],
        deadline: Instant,
        mut done: impl FnMut(&[Line]) -> bool,
    ) -> Result<()> {
        let mut buf = vec![0u8; 65536];
        let mut packets: Vec<Option<Vec<u8>>> = vec![None; lines.len()];
        loop {
            if done(lines) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                if done(lines) {
                    return Ok(());
                }
                // Callers of `run` with `|_| false` just want the time to pass.
                return Ok(());
            }
            // Feed the bulk senders and flush every caller's output.
            for (i, l) in lines.iter_mut().enumerate() {
                if !l.live() {
                    continue;
                }
                if self.bulk && l.client.is_up() {
                    let pkt = packets[i].get_or_insert_with(|| {
                        let src = l.client.local_ip().unwrap_or(Ipv4Addr::UNSPECIFIED);
                        udp_packet(src, SERVER, 40000, 9, &[0xa5; BULK_PAYLOAD])
                    });
                    // Fill the socket until it pushes back (at most 64 KiB per turn).
                    let mut budget = 64 * 1024;
                    loop {
                        while l.client.serial_output().len() < 4096 {
                            if !l.client.send_ip_packet(now, pkt) {
                                break;
                            }
                            self.sent += 1;
                        }
                        let before = l.client.serial_output().len();
                        l.write_out();
                        let wrote = before - l.client.serial_output().len();
                        if !l.client.serial_output().is_empty() || !l.live() || wrote >= budget {
                            break;
                        }
                        budget -= wrote;
                    }
                }
                l.write_out();
            }
            let mut next = deadline.min(now + Duration::from_millis(250));
            for l in lines.iter() {
                if l.live()
                    && l.connected.is_some()
                    && let Some(t) = l.client.poll_timeout()
                {
                    next = next.min(t);
                }
            }
            let ms = next
                .saturating_duration_since(now)
                .as_millis()
                .clamp(0, 1000) as u16;
            let ready: Vec<(usize, PollFlags)> = {
                let mut idx = Vec::with_capacity(lines.len());
                let mut fds = Vec::with_capacity(lines.len());
                for (i, l) in lines.iter().enumerate() {
                    if !l.live() {
                        continue;
                    }
                    let mut f = PollFlags::POLLIN;
                    if !l.client.serial_output().is_empty() || (self.bulk && l.client.is_up()) {
                        f |= PollFlags::POLLOUT;
                    }
                    idx.push(i);
                    fds.push(PollFd::new(std::os::fd::AsFd::as_fd(&l.sock), f));
                }
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => bail!("poll: {e}"),
                }
                fds.iter()
                    .zip(idx)
                    .filter_map(|(fd, i)| {
                        let r = fd.revents().unwrap_or(PollFlags::empty());
                        (!r.is_empty()).then_some((i, r))
                    })
                    .collect()
            };
            let now = Instant::now();
            for (i, r) in ready {
                let l = &mut lines[i];
                if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    l.read_in(&mut buf, now);
                }
            }
            for l in lines.iter_mut() {
                if !l.live() || l.connected.is_none() {
                    continue;
                }
                if l.client.poll_timeout().is_some_and(|t| t <= now) {
                    l.client.handle_timeout(now);
                }
                while let Some(ev) = l.client.poll_event() {
                    match ev {
                        ClientEvent::Up { .. } => l.up = Some(now),
                        ClientEvent::AuthFailed => l.fail("authentication failed".into()),
                        ClientEvent::Down(r) => l.fail(format!("PPP down: {r}")),
                    }
                }
                while l.client.poll_ip_output().is_some() {
                    self.received += 1;
                }
            }
        }
    }
}

struct Bulk {
    secs: f64,
    packets: u64,
    nasd_cpu: f64,
    caller_cpu: f64,
    vmodem_cpu: f64,
}

/// Every caller sends UDP datagrams to nasd's address as fast as its line takes them.
fn bulk(
    ns: &str,
    nasd: &Nasd,
    vm: &Vmodem,
    lines: &mut [Line],
    pump: &mut Pump,
    secs: f64,
) -> Result<Bulk> {
    let sink = UdpSink::start(ns)?;
    pump.bulk = true;
    // One second of ramp-up, then the measured window.
    pump.run(lines, Instant::now() + Duration::from_secs(1), |_| false)?;
    let snap = |pid: u32| cpu_ticks(pid);
    let (rx0, _) = tun_packets(ns, TUN)?;
    let c0 = (snap(nasd.pid)?, snap(std::process::id())?, snap(vm.pid())?);
    let t0 = Instant::now();
    pump.run(lines, t0 + Duration::from_secs_f64(secs), |_| false)?;
    let t = t0.elapsed().as_secs_f64();
    let (rx1, _) = tun_packets(ns, TUN)?;
    let c1 = (snap(nasd.pid)?, snap(std::process::id())?, snap(vm.pid())?);
    pump.bulk = false;
    // Let the lines drain before anything else: until nasd has delivered nothing more to
    // the TUN for a second (the sockets and vmodem's queues hold a backlog).
    let t_drain = Instant::now();
    let mut last = (rx1, Instant::now());
    while last.1.elapsed() < Duration::from_secs(1) && t_drain.elapsed() < Duration::from_secs(120)
    {
        pump.run(lines, Instant::now() + Duration::from_millis(200), |_| {
            false
        })?;
        let (rx, _) = tun_packets(ns, TUN)?;
        if rx != last.0 {
            last = (rx, Instant::now());
        }
    }
    println!(
        "bulk: backlog drained in {:.1?} ({} more datagrams delivered)",
        t_drain.elapsed(),
        last.0 - rx1
    );
    let sunk = sink.datagrams();
    sink.stop()?;
    let up = lines.iter().filter(|l| l.live()).count();
    ensure!(
        up == lines.len(),
        "{} sessions went down during the bulk phase",
        lines.len() - up
    );
    let pct = |a: u64, b: u64| (b - a) as f64 / TICKS_PER_SEC / t * 100.0;
    println!(
        "bulk: {} datagrams queued by the callers, the UDP sink read {}",
        pump.sent, sunk
    );
    Ok(Bulk {
        secs: t,
        packets: rx1 - rx0,
        nasd_cpu: pct(c0.0, c1.0),
        caller_cpu: pct(c0.1, c1.1),
        vmodem_cpu: pct(c0.2, c1.2),
    })
}

// ---- processes, namespaces, files -------------------------------------------------------

/// vmodem with N lines, stopped on drop.
struct Vmodem {
    child: Child,
    dir: PathBuf,
}

impl Vmodem {
    fn start(dir: &Path, n: usize, rate: u32) -> Result<Vmodem> {
        let mut cmd = with_nofile(&bin("vmodem")?);
        cmd.arg("--dir")
            .arg(dir)
            .args(["--lines", &n.to_string(), "--number", "5551234"])
            .args(["--rate", &rate.to_string(), "--ring-interval-ms", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(dir.join("vmodem.log"))?);
        let mut child = cmd.spawn().context("starting vmodem")?;
        let stdout = child.stdout.take().expect("piped");
        let mut vm = Vmodem {
            child,
            dir: dir.to_path_buf(),
        };
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if line.contains("\"ready\":true") {
                    let _ = tx.send(());
                }
                line.clear();
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let log = std::fs::read_to_string(dir.join("vmodem.log")).unwrap_or_default();
            let _ = vm.child.kill();
            bail!("vmodem did not become ready: {log}");
        }
        Ok(vm)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ctl(&self, request: &str) -> Result<()> {
        let mut s = UnixStream::connect(self.dir.join("control.sock"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(format!("{request}\n").as_bytes())?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        ensure!(line.contains("\"ok\":true"), "vmodem: {request} → {line}");
        Ok(())
    }
}

impl Drop for Vmodem {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}

fn stop_child(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(None)) {
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// nasd in the namespace, its log in a file; stopped on drop.
struct Nasd {
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Nasd {
    fn start(ns: &str, config: &Path, dir: &Path) -> Result<Nasd> {
        let log = dir.join("nasd.log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "sh", "-c"])
            .arg(format!(
                "ulimit -n {NOFILE} 2>/dev/null; exec \"$0\" \"$@\""
            ))
            .arg(bin("nasd")?)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(&log)?);
        let child = cmd.spawn().context("cannot run `ip netns exec`")?;
        let pid = child.id();
        let mut nasd = Nasd { child, pid, log };
        // `ip netns exec` and `sh` exec nasd in place: wait until the pid is nasd.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "nasd") {
                break;
            }
            ensure!(nasd.alive(), "nasd exited: {}", nasd.log_tail(40));
            ensure!(Instant::now() < end, "process {pid} did not become nasd");
            thread::sleep(Duration::from_millis(20));
        }
        Ok(nasd)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    fn count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches(needle)
            .count()
    }

    /// Waits until the log holds `needle` `n` times.
    fn wait_count(&self, needle: &str, n: usize, timeout: Duration) -> Result<()> {
        let end = Instant::now() + timeout;
        loop {
            let c = self.count(needle);
            if c >= n {
                return Ok(());
            }
            if Instant::now() >= end {
                bail!(
                    "nasd logged {needle:?} {c} times, not {n}, within {timeout:?}\n{}",
                    self.log_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        format!(
            "nasd's log (tail):\n{}",
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }
}

impl Drop for Nasd {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(15));
    }
}

// ---- for comparison: one real pppd ------------------------------------------------------

/// One Debian pppd inside User-Mode Linux dials through vmodem into nasd; its footprint is
/// read inside the guest (the host kernel has no PPP driver, so pppd cannot run on the host).
fn pppd_footprint() -> Result<()> {
    use support::uml::{GuestOptions, LineKind, PppdGuest};
    const FILES: &str = r#"
rig_setup() {
cat > /etc/ppp/dial.chat <<'EOF'
ABORT BUSY
TIMEOUT 30
"" "\rATZ"
OK ATDT5551234
CONNECT ""
EOF
cat > /etc/ppp/dial.opts <<'EOF'
connect "/usr/sbin/chat -s -f /etc/ppp/dial.chat"
EOF
}
"#;
    let dir = TempDir::new("nasd-scale")?;
    let _vm = Vmodem::start(&dir.0, 1, 115_200)?;
    let ns = Netns::new("nasd-scale")?;
    let config = write_config(&dir.0, 1, 30, None)?;
    let nasd = Nasd::start(&ns.0, &config, &dir.0)?;
    nasd.wait_count("state=Idle", 1, Duration::from_secs(30))?;
    wait_quiet(&nasd, Duration::from_secs(1));
    let nasd_idle = status_kib(nasd.pid, "VmRSS")?;
    let (mut g, _) = PppdGuest::spawn(GuestOptions {
        ctl: true,
        line: LineKind::Path,
        line_path: Some(dir.0.join("client0")),
        conf_extra: FILES.into(),
        user: USER.into(),
        password: SECRET.into(),
        pppd_extra: vec!["refuse-chap".into()],
        timeout: Duration::from_secs(120),
        ..GuestOptions::ctl()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rc = g
        .ctl("ppp_up file /etc/ppp/dial.opts", Duration::from_secs(60))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(rc == 0, "pppd did not come up:\n{}", g.console());
    nasd.wait_count("session up", 1, Duration::from_secs(10))?;
    let (_, out) = g
        .ctl_output(
            "ping -c 2 -W 3 $NAS_IP >/dev/null; p=$(pidof pppd); echo pid=$p; \
             grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem|VmData)' /proc/$p/status",
            Duration::from_secs(20),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("== one idle pppd session (Debian pppd in UML, dialled through vmodem):");
    print!("{out}");
    let rss = nasd_rss_line(&out);
    println!("pppd VmRSS: {rss} (one pppd process per line)");
    println!(
        "for comparison, nasd with this one port: VmRSS {nasd_idle} KiB idle, {} KiB with the \
         session up (the whole daemon)",
        status_kib(nasd.pid, "VmRSS")?
    );
    let _ = g.finish(0, Duration::from_secs(20));
    Ok(())
}

fn nasd_rss_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("VmRSS"))
        .map(|l| l.trim_start_matches("VmRSS:").trim().to_string())
        .unwrap_or_else(|| "?".into())
}
