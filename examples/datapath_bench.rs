//! What nasd's datapath costs: the latency nasd adds per packet between the line and the TUN
//! device (p50, p99), and its CPU time per Mbit/s forwarded.
//!
//! Run as root (network namespace, TUN):
//!
//! ```text
//! cargo build --release --bin nasd --bin nasd-line --example datapath_bench
//! target/release/examples/datapath_bench                # the pool daemon
//! target/release/examples/datapath_bench --single-line  # nasd-line, for comparison
//! ```
//!
//! The real `nasd` daemon (found next to this example: `<target>/release/nasd`) runs in a
//! network namespace of its own with one direct port on the slave side of a pseudo-terminal
//! and its shared TUN device; `--single-line` runs `nasd-line` instead. This process plays
//! the caller on the master side with nasd's own sans-IO PPP [`Client`]: it negotiates
//! (PAP), then
//!
//! 1. **latency**: sends ICMP echo requests to 10.0.0.1, one at a time, and times each round
//!    trip until the kernel's reply has come back through nasd and been decoded; the same is
//!    timed without nasd for a pty pair with a trivial echo thread and for the kernel's ICMP
//!    answer through a bare TUN device, so that what nasd itself adds can be quoted;
//! 2. **CPU per Mbit/s**: streams 1400-byte UDP datagrams through nasd for a few seconds in
//!    each direction, and divides nasd's CPU time (utime + stime from /proc) by the
//!    megabits it carried.
//!
//! The namespace, nasd and the temporary directory are removed on exit, also on errors and
//! panics (Drop guards).

#[path = "bench_support/mod.rs"]
mod bench_support;

use anyhow::{Context, Result, bail, ensure};
use bench_support::*;
use clap::Parser;
use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};
use nasd::proto::client::{Client, ClientConfig, ClientEvent};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const CALLER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const TUN: &str = "bench0";
/// The bare TUN device of the kernel-only baseline, and its addresses.
const KTUN: &str = "benchk0";
const KSERVER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const KCALLER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const USER: &str = "bench";
const SECRET: &str = "bench-secret";
/// UDP payload of the bulk phases.
const BULK_PAYLOAD: usize = 1400;
/// Datagrams in flight in the TUN → line direction.
const WINDOW: u32 = 32;
/// Linux reports utime and stime in USER_HZ ticks, 100 per second.
const TICKS_PER_SEC: f64 = 100.0;
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
const WARM_UP: usize = 200;

#[derive(Parser, Debug)]
#[command(about = "Latency and CPU cost of nasd's datapath between line and TUN (run as root)")]
struct Args {
    /// Timed echo round trips per payload size and per path.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Seconds of each bulk phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Measure `nasd-line` (one line, its own TUN) instead of the `nasd` pool daemon.
    #[arg(long)]
    single_line: bool,
    /// The binary to measure (default: `nasd` or `nasd-line` next to this example).
    #[arg(long)]
    binary: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("datapath_bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let name = if args.single_line {
        "nasd-line"
    } else {
        "nasd"
    };
    let binary = match args.binary {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("no target directory")?
            .join(name),
    };
    ensure!(
        binary.exists(),
        "{} not found: run `cargo build --release --bin {name}` first",
        binary.display()
    );
    println!(
        "command: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );

    let dir = TempDir::new("nasd-bench")?;
    let secrets = dir.0.join("pap-secrets");
    std::fs::write(&secrets, format!("{USER} * {SECRET}\n"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))?;
    }
    let ns = Netns::new("nasd-bench")?;
    // No IPv6 chatter (router solicitations) on the TUN devices.
    let _ = in_netns(&ns.0, || {
        std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")
    })
    .join();

    // The line: we keep the master, nasd opens the slave by its path.
    let pty = nix::pty::openpty(None, None)?;
    make_raw(&pty.slave)?;
    let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))?;
    let log = dir.0.join(format!("{name}.log"));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.0]).arg(&binary);
    if args.single_line {
        cmd.arg("--device")
            .arg(&slave_path)
            .args(["--mode", "direct", "--calls", "1", "--auth", "pap"])
            .arg("--secrets")
            .arg(&secrets)
            .args(["--tun", TUN, "--lock-dir"])
            .arg(&dir.0)
            .args(["--first-request-delay-ms", "0", "--echo-interval", "0"]);
    } else {
        // The pool daemon with one direct port on the pty and a one-address pool.
        let config = dir.0.join("nasd.toml");
        std::fs::write(
            &config,
            format!(
                "[network]\nlocal_ip = \"{SERVER}\"\npool = \"{CALLER}-{CALLER}\"\n\
                 tun = \"{TUN}\"\n\n[ppp]\nauth = [\"pap\"]\necho_interval = 0\n\
                 first_request_delay_ms = 0\nidle_timeout = 0\n\n[auth]\nsecrets = \"{secrets}\"\n\n\
                 [control]\nsocket = \"{dir}/nasd.sock\"\n\n\
                 [accounting]\njournal = \"{dir}/accounting.jsonl\"\n\n\
                 [[port]]\nname = \"bench\"\ndevice = \"{slave}\"\nmode = \"direct\"\n\
                 lock_dir = \"none\"\n",
                secrets = secrets.display(),
                dir = dir.0.display(),
                slave = slave_path.display()
            ),
        )?;
        cmd.arg("--config").arg(&config);
    }
    println!("{name}: {cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(File::create(&log)?)
        .stderr(File::create(&log)?);
    let mut nasd = Nasd {
        child: cmd.spawn().context("cannot run `ip netns exec`")?,
        log,
        name,
    };
    let pid = nasd.pid()?;

    let mut config = ClientConfig::with_credentials(USER, SECRET);
    config.chap = false;
    config.request_dns = false;
    let mut line = Line::new(pty.master, Client::new(config, [7; 32]))?;
    line.connect(&mut nasd).with_context(|| nasd.log_text())?;
    println!(
        "session up: caller {CALLER}, server {SERVER}, TUN {TUN} in netns {}",
        ns.0
    );

    // ---- latency ----
    let mut lat = Vec::new();
    for size in [64, 1400] {
        let cpu0 = cpu_ticks(pid)?;
        let (rtts, frame_len) = line
            .echo_rtts(size, args.count, &mut nasd)
            .with_context(|| nasd.log_text())?;
        let cpu_us = (cpu_ticks(pid)? - cpu0) as f64 / TICKS_PER_SEC * 1e6 / rtts.len() as f64;
        let pty = pty_echo_rtts(frame_len, args.count)?;
        let tun = tun_rtts(&ns.0, size, args.count)?;
        lat.push((size, frame_len, rtts, pty, tun, cpu_us));
    }

    // ---- CPU per Mbit/s ----
    let up = line
        .bulk_to_tun(&ns.0, pid, args.seconds, &mut nasd)
        .with_context(|| nasd.log_text())?;
    let down = line
        .bulk_from_tun(&ns.0, pid, args.seconds, &mut nasd)
        .with_context(|| nasd.log_text())?;
    ensure!(nasd.alive(), "nasd exited: {}", nasd.log_text());

    // ---- report ----
    println!(
        "\n== Latency: one ICMP echo at a time, {} timed round trips per row (µs)",
        args.count
    );
    println!("{:<44}{:>9}{:>9}{:>9}{:>9}", "", "p50", "p90", "p99", "max");
    for (size, frame_len, rtts, pty, tun, cpu_us) in &lat {
        let [a, b, c] = [rtts, pty, tun].map(|v| quantiles(v, 1e6));
        let row = |name: String, q: [f64; 4]| {
            println!(
                "{name:<44}{:>9.1}{:>9.1}{:>9.1}{:>9.1}",
                q[0], q[1], q[2], q[3]
            );
        };
        let ip_len = 28 + size;
        row(format!("{size} B payload ({ip_len} B IP): through nasd"), a);
        row(format!("  pty echo, {frame_len} B each way (no nasd)"), b);
        row("  kernel ICMP via a bare TUN (no nasd)".into(), c);
        row(
            "  nasd adds: RTT − pty".into(),
            std::array::from_fn(|i| a[i] - b[i]),
        );
        row(
            "  nasd adds: RTT − pty − TUN".into(),
            std::array::from_fn(|i| a[i] - b[i] - c[i]),
        );
        println!("  nasd CPU per round trip: {cpu_us:.1} µs (10 ms tick resolution)");
    }
    println!(
        "\n== CPU per Mbit/s: {BULK_PAYLOAD}-byte UDP datagrams for {} s each way \
         (Mbit/s of UDP payload)",
        args.seconds
    );
    println!(
        "{:<16}{:>10}{:>12}{:>16}{:>16}{:>14}",
        "direction", "Mbit/s", "nasd CPU", "CPU ms/Mbit", "Mbit/s per core", "caller CPU"
    );
    for (name, b) in [("line → TUN", &up), ("TUN → line", &down)] {
        let mbit = b.payload_bytes as f64 * 8.0 / 1e6;
        let cpu = b.nasd_cpu_s / b.secs;
        println!(
            "{name:<16}{:>10.1}{:>11.1}%{:>16.3}{:>16.1}{:>13.1}%",
            mbit / b.secs,
            cpu * 100.0,
            b.nasd_cpu_s * 1e3 / mbit,
            mbit / b.nasd_cpu_s,
            b.caller_cpu_s / b.secs * 100.0
        );
        println!("  {}", b.note);
    }
    println!(
        "\nWhat the figures include:
* through nasd: Client encodes the request (HDLC) → write to the pty master → kernel pty \
         → nasd reads, decodes, checks the source, writes the TUN → the kernel answers the \
         echo → nasd reads the TUN, encodes → pty → this process reads and decodes the reply.
* pty echo: the same number of bytes through another pty pair, echoed by a thread that \
         reads the slave and writes back (two pty crossings and two wake-ups, nothing else).
* kernel ICMP via a bare TUN: a thread writes the request to a TUN device and reads the \
         reply (the kernel's share of the nasd path).
* nasd adds: differences of the quantiles (an estimate; the paths' jitter is not additive).
* CPU: utime + stime of the nasd process from /proc/PID/stat over the phase (this \
         includes its system calls; the pty's line-discipline work runs in kernel workers and \
         is not counted). CPU ms/Mbit = CPU seconds per megabit carried = cores per Mbit/s \
         (×1000); Mbit/s per core = throughput / CPU fraction. caller CPU: this process.
* The machine is shared: run several times and quote ranges."
    );
    Ok(())
}

// ---- the caller's side of the line ------------------------------------------------------

/// The pty master driven by a sans-IO [`Client`].
struct Line {
    master: File,
    client: Client,
    buf: Vec<u8>,
}

impl Line {
    fn new(master: OwnedFd, client: Client) -> Result<Self> {
        set_nonblocking(&master)?;
        Ok(Self {
            master: File::from(master),
            client,
            buf: vec![0; 65536],
        })
    }

    /// Writes what the client has for the line, until done or the pty is full.
    fn write_out(&mut self) -> Result<()> {
        while !self.client.serial_output().is_empty() {
            match self.master.write(self.client.serial_output()) {
                Ok(n) => self.client.consume_serial_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("writing the pty"),
            }
        }
        Ok(())
    }

    /// Waits until the pty is readable (or writable, with `write`); true if readable.
    fn wait(&self, timeout: Duration, write: bool) -> Result<bool> {
        wait_fd(&self.master, timeout, write)
    }

    /// One read from the pty, fed to the client; then its timers.
    fn read_in(&mut self) -> Result<usize> {
        let n = match self.master.read(&mut self.buf) {
            Ok(0) => bail!("the line closed (nasd exited?)"),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e).context("reading the pty (nasd exited?)"),
        };
        let now = Instant::now();
        self.client.handle_serial_input(now, &self.buf[..n]);
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        if let Some(ClientEvent::Down(r)) = self.client.poll_event() {
            bail!("the PPP session went down: {r}");
        }
        Ok(n)
    }

    /// Negotiates until IPCP is open and nasd has put the address on its TUN device.
    fn connect(&mut self, nasd: &mut Nasd) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        // nasd speaks first (its Configure-Request) once it has opened the line.
        while !self.wait(Duration::from_millis(100), false)? {
            ensure!(nasd.alive(), "nasd exited");
            ensure!(Instant::now() < deadline, "nasd said nothing on the line");
        }
        self.client.start(Instant::now());
        loop {
            self.write_out()?;
            if self.wait(Duration::from_millis(50), false)? {
                self.read_in()?;
            } else {
                self.client.handle_timeout(Instant::now());
            }
            if self.client.is_up() {
                break;
            }
            ensure!(Instant::now() < deadline, "no PPP session within 30 s");
        }
        ensure!(
            self.client.local_ip() == Some(CALLER) && self.client.peer_ip() == Some(SERVER),
            "unexpected addresses {:?} ↔ {:?}",
            self.client.local_ip(),
            self.client.peer_ip()
        );
        // The address goes on the TUN when the session is up; wait until the kernel answers.
        let mut seq = 0;
        while self
            .echo(1, seq, &[0; 8], Duration::from_millis(100))?
            .is_none()
        {
            ensure!(
                Instant::now() < deadline,
                "no echo reply through nasd within 30 s"
            );
            seq += 1;
        }
        Ok(())
    }

    /// One echo request to the server; the round trip, or None on timeout.
    fn echo(
        &mut self,
        id: u16,
        seq: u16,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Option<Duration>> {
        let req = echo_request(CALLER, SERVER, id, seq, payload);
        let t0 = Instant::now();
        ensure!(
            self.client.send_ip_packet(t0, &req),
            "the client dropped a packet"
        );
        self.write_out()?;
        loop {
            while let Some(p) = self.client.poll_ip_output() {
                if is_echo_reply(&p, id, seq) {
                    return Ok(Some(t0.elapsed()));
                }
            }
            let left = timeout.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            if self.wait(left, !self.client.serial_output().is_empty())? {
                self.read_in()?;
            }
            self.write_out()?;
        }
    }

    /// `count` timed round trips (after a warm-up) and the length of the request frame.
    fn echo_rtts(
        &mut self,
        size: usize,
        count: usize,
        nasd: &mut Nasd,
    ) -> Result<(Vec<Duration>, usize)> {
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let id = 0x4e00 + size as u16;
        let frame_len = {
            let req = echo_request(CALLER, SERVER, id, 0, &payload);
            self.client.send_ip_packet(Instant::now(), &req);
            let n = self.client.serial_output().len();
            self.write_out()?;
            n
        };
        let mut rtts = Vec::with_capacity(count);
        let mut lost = 0;
        for i in 0..WARM_UP + count {
            match self.echo(id, (i + 1) as u16, &payload, REPLY_TIMEOUT)? {
                Some(rtt) if i >= WARM_UP => rtts.push(rtt),
                Some(_) => {}
                None => {
                    lost += 1;
                    ensure!(nasd.alive(), "nasd exited");
                    ensure!(lost <= 1 + count / 1000, "{lost} echo replies lost");
                }
            }
        }
        Ok((rtts, frame_len))
    }

    /// Streams UDP datagrams to the server's discard port as fast as the line takes them.
    fn bulk_to_tun(&mut self, ns: &str, pid: u32, secs: f64, nasd: &mut Nasd) -> Result<Bulk> {
        let sink = UdpSink::start(ns)?;
        let pkt = udp_packet(CALLER, SERVER, 40000, 9, &[0xa5; BULK_PAYLOAD]);
        let start = Snapshot::take(ns, pid)?;
        let sunk0 = sink.bytes();
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end {
            while self.client.serial_output().len() < 8192 {
                ensure!(
                    self.client.send_ip_packet(Instant::now(), &pkt),
                    "client dropped"
                );
            }
            self.write_out()?;
            if self.wait(Duration::from_millis(100), true)? {
                self.read_in()?;
            }
        }
        let stop_snap = Snapshot::take(ns, pid)?;
        thread::sleep(Duration::from_millis(200));
        let sunk = sink.bytes() - sunk0;
        sink.stop()?;
        // Let the line drain before the next phase.
        while self.wait(Duration::from_millis(200), false)? {
            self.read_in()?;
        }
        ensure!(nasd.alive(), "nasd exited");
        let packets = stop_snap.tun_rx - start.tun_rx;
        Ok(Bulk {
            secs: (stop_snap.at - start.at).as_secs_f64(),
            payload_bytes: packets * BULK_PAYLOAD as u64,
            nasd_cpu_s: (stop_snap.nasd - start.nasd) as f64 / TICKS_PER_SEC,
            caller_cpu_s: (stop_snap.caller - start.caller) as f64 / TICKS_PER_SEC,
            note: format!(
                "{packets} datagrams written to the TUN by nasd (its RX counter); \
                 the UDP sink read {} of them",
                sunk / BULK_PAYLOAD as u64
            ),
        })
    }

    /// A sender in the namespace streams UDP datagrams to the caller through the TUN, with
    /// at most [`WINDOW`] in flight; the client decodes and counts them.
    fn bulk_from_tun(&mut self, ns: &str, pid: u32, secs: f64, nasd: &mut Nasd) -> Result<Bulk> {
        let stop = Arc::new(AtomicBool::new(false));
        let (credit_tx, credits_rx) = mpsc::channel::<u32>();
        let sender = in_netns(ns, {
            let stop = stop.clone();
            move || {
                let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
                s.connect((CALLER, 9))?;
                let payload = [0x5a; BULK_PAYLOAD];
                let mut credits = WINDOW;
                while !stop.load(Ordering::Relaxed) {
                    if credits == 0 {
                        match credits_rx.recv_timeout(Duration::from_millis(100)) {
                            Ok(k) => credits += k,
                            Err(mpsc::RecvTimeoutError::Timeout) => continue,
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    if s.send(&payload).is_ok() {
                        credits -= 1;
                    }
                }
                Ok(())
            }
        });
        let start = Snapshot::take(ns, pid)?;
        let end = start.at + Duration::from_secs_f64(secs);
        let (mut bytes, mut stalls) = (0u64, 0u32);
        while Instant::now() < end {
            if !self.wait(Duration::from_millis(100), false)? {
                // Something was lost: give the window back.
                stalls += 1;
                let _ = credit_tx.send(WINDOW);
                continue;
            }
            self.read_in()?;
            let mut k = 0;
            while let Some(p) = self.client.poll_ip_output() {
                if let Some(n) = udp_payload_len(&p, 9) {
                    bytes += n as u64;
                    k += 1;
                }
            }
            if k > 0 {
                let _ = credit_tx.send(k);
            }
        }
        let stop_snap = Snapshot::take(ns, pid)?;
        stop.store(true, Ordering::Relaxed);
        drop(credit_tx);
        sender.join().expect("sender thread")?;
        while self.wait(Duration::from_millis(200), false)? {
            self.read_in()?;
            while self.client.poll_ip_output().is_some() {}
        }
        ensure!(nasd.alive(), "nasd exited");
        ensure!(bytes > 0, "nothing came back through nasd");
        Ok(Bulk {
            secs: (stop_snap.at - start.at).as_secs_f64(),
            payload_bytes: bytes,
            nasd_cpu_s: (stop_snap.nasd - start.nasd) as f64 / TICKS_PER_SEC,
            caller_cpu_s: (stop_snap.caller - start.caller) as f64 / TICKS_PER_SEC,
            note: format!(
                "{} datagrams decoded by the caller ({WINDOW} in flight at most, {stalls} \
                 window resets); the kernel queued {} on the TUN",
                bytes / BULK_PAYLOAD as u64,
                stop_snap.tun_tx - start.tun_tx
            ),
        })
    }
}

/// The outcome of a bulk phase.
struct Bulk {
    secs: f64,
    payload_bytes: u64,
    nasd_cpu_s: f64,
    caller_cpu_s: f64,
    note: String,
}

/// CPU ticks of nasd and of this process, and nasd's TUN counters, at one moment.
struct Snapshot {
    at: Instant,
    nasd: u64,
    caller: u64,
    tun_rx: u64,
    tun_tx: u64,
}

impl Snapshot {
    fn take(ns: &str, pid: u32) -> Result<Self> {
        let (tun_rx, tun_tx) = tun_packets(ns, TUN)?;
        Ok(Self {
            at: Instant::now(),
            nasd: cpu_ticks(pid)?,
            caller: cpu_ticks(std::process::id())?,
            tun_rx,
            tun_tx,
        })
    }
}

// ---- baselines without nasd -------------------------------------------------------------

/// Round trips of `len` bytes through a pty pair echoed by a thread.
fn pty_echo_rtts(len: usize, count: usize) -> Result<Vec<Duration>> {
    let pty = nix::pty::openpty(None, None)?;
    make_raw(&pty.slave)?;
    let mut slave = File::from(pty.slave);
    let echo = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n @ 1..) = slave.read(&mut buf) {
            if slave.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    // The master blocks on writes (a frame always fits) and polls before reads.
    let mut master = File::from(pty.master);
    let (frame, mut buf) = (vec![0x55u8; len], vec![0u8; 65536]);
    let mut rtts = Vec::with_capacity(count);
    for i in 0..WARM_UP + count {
        let t0 = Instant::now();
        master.write_all(&frame)?;
        let mut got = 0;
        while got < len {
            ensure!(
                wait_fd(&master, REPLY_TIMEOUT, false)?,
                "the pty echo stalled"
            );
            got += master.read(&mut buf)?;
        }
        if i >= WARM_UP {
            rtts.push(t0.elapsed());
        }
    }
    drop(master);
    echo.join().expect("echo thread");
    Ok(rtts)
}

/// Round trips of the kernel's ICMP echo through a bare TUN device in the namespace.
fn tun_rtts(ns: &str, size: usize, count: usize) -> Result<Vec<Duration>> {
    let (tx, rx) = mpsc::channel();
    let ns2 = ns.to_string();
    let _worker = in_netns(ns, move || {
        let run = || -> Result<Vec<Duration>> {
            let tun = tun_tap::Iface::without_packet_info(KTUN, tun_tap::Mode::Tun)?;
            ip(&[
                "-n",
                &ns2,
                "addr",
                "add",
                &KSERVER.to_string(),
                "peer",
                &KCALLER.to_string(),
                "dev",
                KTUN,
            ])?;
            ip(&["-n", &ns2, "link", "set", KTUN, "up"])?;
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut buf = vec![0u8; 65536];
            let mut rtts = Vec::with_capacity(count);
            for i in 0..WARM_UP + count {
                let req = echo_request(KCALLER, KSERVER, 0x7700, i as u16, &payload);
                let t0 = Instant::now();
                tun.send(&req)?;
                loop {
                    let n = tun.recv(&mut buf)?;
                    if is_echo_reply(&buf[..n], 0x7700, i as u16) {
                        break;
                    }
                }
                if i >= WARM_UP {
                    rtts.push(t0.elapsed());
                }
            }
            Ok(rtts)
        };
        let _ = tx.send(run());
        Ok(())
    });
    // A blocking read that never returns would hang the worker: give up on it instead.
    rx.recv_timeout(Duration::from_secs(60))
        .context("the bare TUN baseline did not finish")?
}

// ---- processes, namespaces, files -------------------------------------------------------

/// The nasd (or nasd-line) process, stopped on drop.
struct Nasd {
    child: Child,
    log: PathBuf,
    name: &'static str,
}

impl Nasd {
    /// nasd's own PID (`ip netns exec` execs it in place; checked).
    fn pid(&mut self) -> Result<u32> {
        let pid = self.child.id();
        for _ in 0..100 {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == self.name) {
                return Ok(pid);
            }
            ensure!(self.alive(), "nasd exited: {}", self.log_text());
            thread::sleep(Duration::from_millis(20));
        }
        bail!("process {pid} did not become {}", self.name)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_text(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("{}'s log:\n{log}", self.name)
    }
}

impl Drop for Nasd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if self.alive() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            for _ in 0..100 {
                if !self.alive() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until `fd` is readable (or writable, with `write`); true if readable.
fn wait_fd(fd: impl AsFd, timeout: Duration, write: bool) -> Result<bool> {
    let mut flags = PollFlags::POLLIN;
    if write {
        flags |= PollFlags::POLLOUT;
    }
    let mut fds = [PollFd::new(fd.as_fd(), flags)];
    let ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    poll(&mut fds, PollTimeout::try_from(ms)?)?;
    let ev = fds[0].revents().unwrap_or(PollFlags::empty());
    Ok(ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
}

fn make_raw(fd: &OwnedFd) -> Result<()> {
    let mut t = termios::tcgetattr(fd)?;
    termios::cfmakeraw(&mut t);
    termios::tcsetattr(fd, termios::SetArg::TCSANOW, &t)?;
    Ok(())
}

fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

// ---- packets ----------------------------------------------------------------------------

/// An IPv4 ICMP echo request (etherparse computes both checksums).
fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).icmpv4_echo_request(id, seq);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).expect("writing to a Vec");
    v
}

fn is_echo_reply(p: &[u8], id: u16, seq: u16) -> bool {
    match SlicedPacket::from_ip(p).map(|s| s.transport) {
        Ok(Some(TransportSlice::Icmpv4(i))) => {
            matches!(i.icmp_type(), Icmpv4Type::EchoReply(h) if h.id == id && h.seq == seq)
        }
        _ => false,
    }
}

fn udp_payload_len(p: &[u8], dport: u16) -> Option<usize> {
    match SlicedPacket::from_ip(p).ok()?.transport? {
        TransportSlice::Udp(u) if u.destination_port() == dport => Some(u.payload().len()),
        _ => None,
    }
}
