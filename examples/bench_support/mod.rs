//! What the benchmark harnesses (`datapath_bench`, `scale_bench`) share: a network namespace
//! and a temporary directory removed on drop, running code inside a namespace, and reading
//! the kernel's and a process's counters.

#![allow(dead_code)]

use anyhow::{Context, Result, bail, ensure};
use etherparse::PacketBuilder;
use nix::sched::{CloneFlags, setns};
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

/// A network namespace `<prefix>-<pid>`, deleted (with everything in it) on drop.
pub struct Netns(pub String);

impl Netns {
    /// Creates it, with its loopback up.
    pub fn new(prefix: &str) -> Result<Self> {
        let name = format!("{prefix}-{}", std::process::id());
        ip(&["netns", "add", &name]).context("creating a network namespace (run as root)")?;
        let ns = Self(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(o) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = ip(&["netns", "del", &self.0]);
    }
}

/// A temporary directory `<tmp>/<prefix>-<pid>`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates it (empty).
    pub fn new(prefix: &str) -> Result<Self> {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` on a new thread inside the namespace `ns` (sockets and TUN devices it creates
/// belong to that namespace).
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> thread::JoinHandle<io::Result<T>> {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        setns(File::open(path)?, CloneFlags::CLONE_NEWNET)?;
        f()
    })
}

/// A UDP discard sink on port 9 in a namespace, counting what it reads, until stopped.
pub struct UdpSink {
    stop: Arc<AtomicBool>,
    datagrams: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    thread: thread::JoinHandle<io::Result<()>>,
}

impl UdpSink {
    /// Binds the sink in `ns` and returns once it listens.
    pub fn start(ns: &str) -> Result<UdpSink> {
        let stop = Arc::new(AtomicBool::new(false));
        let datagrams = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready) = mpsc::channel();
        let thread = in_netns(ns, {
            let (stop, datagrams, bytes) = (stop.clone(), datagrams.clone(), bytes.clone());
            move || {
                let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 9))?;
                s.set_read_timeout(Some(Duration::from_millis(100)))?;
                let _ = ready_tx.send(());
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = s.recv(&mut buf) {
                        datagrams.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                Ok(())
            }
        });
        ready
            .recv_timeout(Duration::from_secs(5))
            .context("the UDP sink did not start")?;
        Ok(UdpSink {
            stop,
            datagrams,
            bytes,
            thread,
        })
    }

    /// Datagrams read so far.
    pub fn datagrams(&self) -> u64 {
        self.datagrams.load(Ordering::Relaxed)
    }

    /// Payload bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Stops the sink and waits for its thread.
    pub fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the UDP sink thread panicked"))??;
        Ok(())
    }
}

/// Runs `ip ARGS`; its output.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip").args(args).output()?;
    ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Packets the kernel received from (rx) and queued to (tx) the TUN device `tun` in `ns`.
pub fn tun_packets(ns: &str, tun: &str) -> Result<(u64, u64)> {
    let json: serde_json::Value =
        serde_json::from_str(&ip(&["-n", ns, "-s", "-j", "link", "show", "dev", tun])?)?;
    let s = &json[0]["stats64"];
    match (s["rx"]["packets"].as_u64(), s["tx"]["packets"].as_u64()) {
        (Some(rx), Some(tx)) => Ok((rx, tx)),
        _ => bail!("no counters for {tun}: {json}"),
    }
}

/// utime + stime of a process, in ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').context("bad stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

/// A `kB` field of `/proc/PID/status` (VmRSS, VmHWM, ...).
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// An IPv4/UDP packet.
pub fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).udp(sport, dport);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).expect("writing to a Vec");
    v
}

/// p50, p90, p99 and max of `v`, in units of `unit` (e.g. 1e6 for µs, 1e3 for ms).
pub fn quantiles(v: &[Duration], unit: f64) -> [f64; 4] {
    let mut s: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * unit).collect();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return [0.0; 4];
    }
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    [q(0.50), q(0.90), q(0.99), q(1.0)]
}
