//! Network namespaces and processes owned by a test, removed when the test ends, pass or fail.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `nasdt-<pid>-<seq>` with its loopback up. Needs root.
    pub fn new() -> io::Result<Self> {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(sweep_stale);
        let name = format!(
            "nasdt-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]).map_err(|e| {
            io::Error::other(format!("{e} (the netns tests need root: run them as root)"))
        })?;
        let ns = Self { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `ip` inside the namespace and returns its output.
    pub fn ip_output(&self, args: &[&str]) -> io::Result<String> {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Removes namespaces left by test processes that are gone (a test run killed before its
/// guards ran): no leftovers on the next run. Namespaces of live processes are not touched.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("nasdt-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(o) = Command::new("ip").args(["netns", "pids", name]).output() {
            for p in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", p]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Kill anything still running in it, then remove it.
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            });
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Output collected from a child process by a reader thread.
#[derive(Debug, Default)]
pub struct Collected {
    text: Mutex<(Vec<u8>, bool)>,
    changed: Condvar,
}

impl Collected {
    /// Collects what `from` yields, on a thread of its own.
    pub fn start(mut from: impl Read + Send + 'static) -> Arc<Self> {
        let c = Arc::new(Self::default());
        let c2 = c.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = from.read(&mut buf).unwrap_or(0);
                let mut g = c2.text.lock().unwrap();
                if n == 0 {
                    g.1 = true;
                    c2.changed.notify_all();
                    return;
                }
                g.0.extend_from_slice(&buf[..n]);
                c2.changed.notify_all();
            }
        });
        c
    }

    /// Everything so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap().0).into_owned()
    }

    /// Everything so far, as bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.text.lock().unwrap().0.clone()
    }

    /// Waits until `needle` appears (true) or the stream ends or time runs out (false).
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_for_count(needle, 1, timeout)
    }

    /// Waits until `needle` has appeared `n` times.
    pub fn wait_for_count(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut g = self.text.lock().unwrap();
        loop {
            if String::from_utf8_lossy(&g.0).matches(needle).count() >= n {
                return true;
            }
            let now = Instant::now();
            if g.1 || now >= end {
                return false;
            }
            g = self.changed.wait_timeout(g, end - now).unwrap().0;
        }
    }

    /// Waits until the stream ends.
    pub fn wait_end(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut g = self.text.lock().unwrap();
        while !g.1 {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            g = self.changed.wait_timeout(g, end - now).unwrap().0;
        }
        true
    }
}

/// A child process killed (with its output kept) on drop.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Standard output.
    pub stdout: Arc<Collected>,
    /// Standard error.
    pub stderr: Arc<Collected>,
}

impl Proc {
    /// Starts `cmd` with its stdout and stderr collected.
    pub fn spawn(mut cmd: Command) -> io::Result<Self> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stdout = Collected::start(child.stdout.take().expect("piped"));
        let stderr = Collected::start(child.stderr.take().expect("piped"));
        Ok(Self {
            child,
            stdout,
            stderr,
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`USR1`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit; its output has then been read to the end.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<std::process::ExitStatus> {
        if !self.stdout.wait_end(timeout) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "process still running after {timeout:?}; stderr:\n{}",
                    self.stderr.text()
                ),
            ));
        }
        self.stderr.wait_end(Duration::from_secs(5));
        self.child.wait()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            if !self.stdout.wait_end(Duration::from_secs(3)) {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

/// The path of the nasd-line binary (see [`bin`]).
pub fn nasd_line() -> std::path::PathBuf {
    bin("nasd-line", option_env!("CARGO_BIN_EXE_nasd-line"))
}

/// The path of the nasd binary (see [`bin`]).
pub fn nasd() -> std::path::PathBuf {
    bin("nasd", option_env!("CARGO_BIN_EXE_nasd"))
}

/// The path of the nasctl binary (see [`bin`]).
pub fn nasctl() -> std::path::PathBuf {
    bin("nasctl", option_env!("CARGO_BIN_EXE_nasctl"))
}

/// The path of the vmodem binary (see [`bin`]).
pub fn vmodem() -> std::path::PathBuf {
    bin("vmodem", option_env!("CARGO_BIN_EXE_vmodem"))
}

/// A binary of this package: the one cargo built for the tests, else the one next to the
/// running example (`target/<profile>/examples/..` → `target/<profile>/<name>`).
fn bin(name: &str, built: Option<&str>) -> std::path::PathBuf {
    if let Some(p) = built {
        return Path::new(p).to_path_buf();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(name)
}
