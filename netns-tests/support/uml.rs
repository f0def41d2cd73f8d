//! A real Linux `pppd` as the PPP client, running inside User-Mode Linux (UML).
//!
//! The host kernel of the test machines has no PPP support, so the client side runs in a UML
//! guest: `linux.uml` is an ordinary process (no KVM, no image). Its root file system is the
//! host's `/` mounted read-only through hostfs, so the guest runs the host's own
//! `/usr/sbin/pppd` and `/bin/busybox`. PID 1 is `netns-tests/rig/guest-init.sh`.
//!
//! * The guest's `/dev/ttyS0` is the PPP line. By default it is bound to the slave side of a
//!   pty; [`PppdGuest::spawn`] hands the master side to the test, which runs the NAS on it.
//!   [`LineKind::SocketPair`] uses an `AF_UNIX` stream pair instead (closing it is seen by the
//!   guest as a modem hangup; a pty hangup is not passed on by UML).
//! * The guest console (pppd's `debug` log, `GUEST[...]` lines, `GUEST-RESULT rc=N`) is
//!   collected from the stdout/stderr of `linux.uml` by a reader thread: [`PppdGuest::console`].
//! * In ctl mode ([`GuestOptions::ctl`]) the guest's `/dev/ttyS1` is a second pty and the test
//!   drives the guest with shell commands: [`PppdGuest::ctl`].
//!
//! Every guest has its own temporary directory (UML's `uml_dir`, its RAM backing file, the
//! config file, a 0755 copy of pppd) and its own process group. [`Drop`] kills the group,
//! reaps every process of it and removes the directory, also when a test panics. To be able
//! to reap UML's helper processes, the test process makes itself a child subreaper.
//!
//! Requirements (Debian): `user-mode-linux ppp busybox-static`, see `netns-tests/install-deps.sh`.
//! Environment overrides: `NASD_LINUX_UML` (the UML kernel), `NASD_PPPD` (the pppd binary),
//! `NASD_UML_TMPDIR` (parent of the per-guest directories; must allow executable mappings),
//! `NASD_UML_ECHO=1` (copy the guest console to stderr as it arrives).

#![allow(dead_code)] // not every test binary uses every helper

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{Signal, killpg};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// pppd options used unless [`GuestOptions::pppd_opts`] is changed. Like a Debian pppd on a
/// plain serial line without the distribution's `/etc/ppp/options`: it asks for PFC/ACFC,
/// and sends CCP and IPV6CP. `updetach`, `user` and the line are added by the guest.
pub const DEFAULT_PPPD_OPTS: &[&str] = &[
    "115200",
    "local",
    "nocrtscts",
    "noauth",
    "noipdefault",
    "ipcp-accept-local",
    "ipcp-accept-remote",
    "defaultroute",
    "maxfail",
    "1",
    "lcp-max-configure",
    "30",
    "debug",
    "logfile",
    "/dev/console",
];

/// The guest's default test command (auto mode): 3 pings to the NAS address.
pub const DEFAULT_TEST_CMD: &str = "ping -c 3 -W 3 $NAS_IP";

/// What the guest's PPP line (`/dev/ttyS0`) is connected to on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineKind {
    /// A pty; the test gets the master. The host keeps the slave open for the guest's whole
    /// life, so reads on the master never fail with `EIO` (and a hangup is never seen).
    #[default]
    Pty,
    /// An `AF_UNIX` stream socket pair (the guest end is its stdin). Closing the test's end
    /// is a carrier loss for the guest ("Modem hangup").
    SocketPair,
    /// The tty at [`GuestOptions::line_path`] (a vmodem client pty), opened by the guest.
    /// The fd returned by `spawn` is then `/dev/null`.
    Path,
    /// The descriptor in [`GuestOptions::given_line`] (a connected socket, such as a vmodem
    /// client line), as the guest's stdin. The fd returned by `spawn` is then `/dev/null`.
    Given,
}

/// How to boot a [`PppdGuest`].
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// pppd's base options (`PPPD_OPTS`), default [`DEFAULT_PPPD_OPTS`]. One word each, no
    /// whitespace (the guest word-splits them; globbing is off).
    pub pppd_opts: Vec<String>,
    /// Appended after `user <name>` (`PPPD_EXTRA`), e.g. `["noipv6"]`, `["refuse-pap"]`.
    pub pppd_extra: Vec<String>,
    /// PAP/CHAP name (`PPP_USER`); the guest writes `"user" * "password" *` to both secrets files.
    pub user: String,
    /// PAP/CHAP secret (`PPP_PASS`).
    pub password: String,
    /// The NAS address, `$NAS_IP` in commands (`NAS_IP`).
    pub nas_ip: String,
    /// Auto mode: shell command run once pppd reports IPCP up; its status is the result.
    pub test_cmd: String,
    /// Ctl mode: no automatic pppd; the test drives the guest through [`PppdGuest::ctl`].
    pub ctl: bool,
    /// Hard limit on the guest's life: a watchdog kills it afterwards, so that a hung test
    /// can never hang CI. Waits on the guest should use shorter deadlines.
    pub timeout: Duration,
    /// What the PPP line is.
    pub line: LineKind,
    /// Put the returned line fd into non-blocking mode.
    pub nonblocking: bool,
    /// Guest RAM (`mem=`); 32M is too small for this kernel.
    pub mem: String,
    /// More kernel modules to load after the PPP ones, e.g. `ppp_deflate`, `bsd_comp`.
    pub extra_modules: Vec<String>,
    /// Shell text appended to the guest's config file (sourced by PID 1 before anything runs).
    pub conf_extra: String,
    /// More kernel arguments (`key=value` words reach the guest init as environment).
    pub kernel_args: Vec<String>,
    /// The line for [`LineKind::Given`].
    pub given_line: Option<std::sync::Arc<OwnedFd>>,
    /// The tty for [`LineKind::Path`].
    pub line_path: Option<PathBuf>,
    /// More PPP lines: host ttys (vmodem client ptys) that become the guest's `/dev/ttyS2`,
    /// `/dev/ttyS3`, ... (`$EXTRA_TTYS`); `ppp_up_lines` runs one pppd on each of them and
    /// on `/dev/ttyS0`. UML has 64 serial lines.
    pub extra_lines: Vec<PathBuf>,
}

impl Default for GuestOptions {
    fn default() -> Self {
        GuestOptions {
            pppd_opts: DEFAULT_PPPD_OPTS.iter().map(|s| s.to_string()).collect(),
            pppd_extra: Vec::new(),
            user: "dial".into(),
            password: "dial".into(),
            nas_ip: "10.0.0.1".into(),
            test_cmd: DEFAULT_TEST_CMD.into(),
            ctl: false,
            timeout: Duration::from_secs(120),
            line: LineKind::Pty,
            nonblocking: false,
            mem: "64M".into(),
            extra_modules: Vec::new(),
            conf_extra: String::new(),
            kernel_args: Vec::new(),
            given_line: None,
            line_path: None,
            extra_lines: Vec::new(),
        }
    }
}

impl GuestOptions {
    /// Auto mode: pppd starts at boot, then `test_cmd` runs; see [`PppdGuest::wait_result`].
    pub fn auto() -> Self {
        Self::default()
    }

    /// Ctl mode: the test starts and stops pppd itself through [`PppdGuest::ctl`].
    pub fn ctl() -> Self {
        GuestOptions {
            ctl: true,
            ..Self::default()
        }
    }
}

/// Host programs and files the rig needs.
#[derive(Debug, Clone)]
pub struct RigTools {
    pub linux_uml: PathBuf,
    pub pppd: PathBuf,
    pub busybox: PathBuf,
    pub modules: PathBuf,
    pub guest_init: PathBuf,
}

const INSTALL_HINT: &str = "the pppd-in-UML test rig is not installed: run `sudo netns-tests/install-deps.sh` \
     (Debian packages user-mode-linux, ppp, busybox-static)";

/// Finds everything the rig needs, or explains what is missing.
pub fn rig_tools() -> io::Result<RigTools> {
    let mut missing = Vec::new();
    let linux_uml = match std::env::var_os("NASD_LINUX_UML") {
        Some(p) => PathBuf::from(p),
        None => find_in_path("linux.uml").unwrap_or_else(|| "/usr/bin/linux.uml".into()),
    };
    let pppd = std::env::var_os("NASD_PPPD")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/sbin/pppd".into());
    let busybox = PathBuf::from("/bin/busybox");
    let modules = PathBuf::from("/usr/lib/uml/modules");
    let guest_init = Path::new(env!("CARGO_MANIFEST_DIR")).join("netns-tests/rig/guest-init.sh");
    for (what, path) in [
        ("UML kernel (package user-mode-linux)", &linux_uml),
        ("pppd (package ppp)", &pppd),
        ("busybox (package busybox-static)", &busybox),
        ("UML modules (package user-mode-linux)", &modules),
        ("guest init script", &guest_init),
    ] {
        if !path.exists() {
            missing.push(format!("{what}: {} not found", path.display()));
        }
    }
    if missing.is_empty() {
        Ok(RigTools {
            linux_uml,
            pppd,
            busybox,
            modules,
            guest_init,
        })
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{INSTALL_HINT}\n  {}", missing.join("\n  ")),
        ))
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Bytes appended by a reader thread, with a condition variable for waiters.
#[derive(Default)]
struct Transcript {
    state: Mutex<TranscriptState>,
    cond: Condvar,
}

#[derive(Default)]
struct TranscriptState {
    data: Vec<u8>,
    eof: bool,
}

impl Transcript {
    fn push(&self, bytes: &[u8]) {
        self.state.lock().unwrap().data.extend_from_slice(bytes);
        self.cond.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap().eof = true;
        self.cond.notify_all();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.state.lock().unwrap().data).into_owned()
    }

    fn is_closed(&self) -> bool {
        self.state.lock().unwrap().eof
    }

    /// Waits until `check` finds something in the data, the writer side is closed, or the
    /// deadline passes. Returns the last `check` result and whether the writers are gone.
    fn wait_for<T>(
        &self,
        deadline: Instant,
        mut check: impl FnMut(&[u8]) -> Option<T>,
    ) -> (Option<T>, bool) {
        let mut st = self.state.lock().unwrap();
        loop {
            if let Some(v) = check(&st.data) {
                return (Some(v), st.eof);
            }
            let now = Instant::now();
            if st.eof || now >= deadline {
                return (None, st.eof);
            }
            st = self.cond.wait_timeout(st, deadline - now).unwrap().0;
        }
    }
}

/// The control line (ctl mode): a pty whose slave is the guest's `/dev/ttyS1`.
struct CtlLine {
    master: File,
    _slave: File,
    buf: Vec<u8>,
    ready: bool,
    log: String,
}

/// A running UML guest with pppd. Dropping it kills and reaps the guest.
pub struct PppdGuest {
    child: Option<Child>,
    pgid: Pid,
    dir: PathBuf,
    console: Arc<Transcript>,
    reader: Option<JoinHandle<()>>,
    watchdog: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    ctl: Option<CtlLine>,
    _line_slave: Option<File>,
    started: Instant,
    exit_status: Option<ExitStatus>,
    keep_dir: bool,
}

static SUBREAPER: Once = Once::new();
static GUEST_SEQ: AtomicU64 = AtomicU64::new(0);

impl PppdGuest {
    /// Boots UML with pppd on its `/dev/ttyS0` and returns the guest and the host side of the
    /// PPP line (the pty master in raw mode, or our socket of the pair), for the NAS.
    pub fn spawn(opts: GuestOptions) -> io::Result<(PppdGuest, OwnedFd)> {
        let tools = rig_tools()?;
        for word in opts.pppd_opts.iter().chain(&opts.pppd_extra) {
            if word.is_empty() || word.contains(char::is_whitespace) {
                return Err(invalid(format!(
                    "pppd option {word:?}: must be one non-empty word"
                )));
            }
        }
        // UML's helper processes are reparented to us when linux.uml exits first; being a
        // subreaper lets Drop reap them instead of leaving zombies with init.
        SUBREAPER.call_once(|| {
            let _ = nix::sys::prctl::set_child_subreaper(true);
        });

        let dir = make_guest_dir()?;
        // From here on, `guard` removes the directory if anything fails before the guest exists.
        let guard = DirGuard(Some(dir.clone()));
        let init = dir.join("guest-init.sh");
        fs::copy(&tools.guest_init, &init)?;
        fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;
        // Debian installs pppd 4754 root:dip and hostfs checks host permissions.
        let pppd = dir.join("pppd");
        fs::copy(&tools.pppd, &pppd)?;
        fs::set_permissions(&pppd, fs::Permissions::from_mode(0o755))?;
        let conf = dir.join("rig.conf");
        fs::write(&conf, config_file(&opts))?;
        fs::create_dir(dir.join("run"))?;

        let mut cmd = Command::new(&tools.linux_uml);
        cmd.arg(format!("mem={}", opts.mem))
            .arg(format!("uml_dir={}", kernel_word(&dir.join("run"))?))
            .args(["root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro"])
            .arg(format!("init={}", kernel_word(&init)?))
            .arg("con=null")
            .arg("ssl=null");

        let (ours, line_slave) = match opts.line {
            LineKind::Pty => {
                let (master, slave, path) = open_pty()?;
                cmd.arg(format!("ssl0=tty:{path}"))
                    .arg("con0=null,fd:1")
                    .stdin(Stdio::null());
                (master, Some(slave))
            }
            LineKind::SocketPair => {
                let (ours, theirs) = UnixStream::pair()?;
                cmd.arg("ssl0=fd:0")
                    .arg("con0=null,fd:1")
                    .stdin(Stdio::from(OwnedFd::from(theirs)));
                (OwnedFd::from(ours), None)
            }
            LineKind::Path => {
                let path = opts
                    .line_path
                    .as_ref()
                    .ok_or_else(|| invalid("LineKind::Path needs line_path".into()))?;
                cmd.arg(format!(
                    "ssl0=tty:{}",
                    kernel_word(&fs::canonicalize(path)?)?
                ))
                .arg("con0=null,fd:1")
                .stdin(Stdio::null());
                (OwnedFd::from(File::open("/dev/null")?), None)
            }
            LineKind::Given => {
                let fd = opts
                    .given_line
                    .as_ref()
                    .ok_or_else(|| invalid("LineKind::Given needs given_line".into()))?
                    .try_clone()?;
                cmd.arg("ssl0=fd:0")
                    .arg("con0=null,fd:1")
                    .stdin(Stdio::from(fd));
                (OwnedFd::from(File::open("/dev/null")?), None)
            }
        };
        if opts.extra_lines.len() > 62 {
            return Err(invalid("at most 62 extra lines (ttyS2..ttyS63)".into()));
        }
        for (j, path) in opts.extra_lines.iter().enumerate() {
            cmd.arg(format!(
                "ssl{}=tty:{}",
                j + 2,
                kernel_word(&fs::canonicalize(path)?)?
            ));
        }
        if opts.nonblocking {
            let flags = OFlag::from_bits_retain(fcntl(&ours, FcntlArg::F_GETFL)?);
            fcntl(&ours, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        }
        let ctl = if opts.ctl {
            let (master, slave, path) = open_pty()?;
            cmd.arg(format!("ssl1=tty:{path}")).arg("rig_mode=ctl");
            Some(CtlLine {
                master: File::from(master),
                _slave: slave,
                buf: Vec::new(),
                ready: false,
                log: String::new(),
            })
        } else {
            cmd.arg("rig_mode=auto");
            None
        };
        cmd.arg(format!("rig_conf={}", kernel_word(&conf)?))
            .arg(format!("rig_pppd={}", kernel_word(&pppd)?))
            .arg("quiet")
            .arg("initcall_blacklist=raid6_select_algo,init_btrfs_fs")
            .args(&opts.kernel_args);

        // Console: stdout and stderr of linux.uml into one pipe.
        let (pipe_r, pipe_w) = io::pipe()?;
        cmd.stdout(pipe_w.try_clone()?)
            .stderr(pipe_w)
            .env("TMPDIR", dir.join("run"))
            .current_dir(&dir)
            .process_group(0);
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("starting {}: {e}", tools.linux_uml.display()),
            )
        })?;
        drop(cmd); // closes our copies of the write end of the console pipe and the guest's fds
        let pgid = Pid::from_raw(child.id() as i32);

        let console = Arc::new(Transcript::default());
        let reader = {
            let console = Arc::clone(&console);
            let echo = std::env::var_os("NASD_UML_ECHO").is_some_and(|v| v == "1");
            let mut pipe_r = pipe_r;
            thread::Builder::new()
                .name(format!("uml-console-{pgid}"))
                .spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match pipe_r.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if echo {
                                    let _ = io::stderr().write_all(&buf[..n]);
                                }
                                console.push(&buf[..n]);
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                    console.close();
                })?
        };
        let watchdog = {
            let (tx, rx) = mpsc::channel::<()>();
            let console = Arc::clone(&console);
            let limit = opts.timeout;
            let handle = thread::Builder::new()
                .name(format!("uml-watchdog-{pgid}"))
                .spawn(move || {
                    if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                        console.push(
                            format!("\n[rig] watchdog: guest killed after {limit:?}\n").as_bytes(),
                        );
                        let _ = killpg(pgid, Signal::SIGKILL);
                    }
                })?;
            (tx, handle)
        };
        let mut guard = guard;
        guard.0 = None; // the guest owns the directory now
        let guest = PppdGuest {
            child: Some(child),
            pgid,
            dir,
            console,
            reader: Some(reader),
            watchdog: Some(watchdog),
            ctl,
            _line_slave: line_slave,
            started,
            exit_status: None,
            keep_dir: std::env::var_os("NASD_UML_KEEP").is_some(),
        };
        Ok((guest, ours))
    }

    /// When `linux.uml` was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The process group of the guest (= pid of `linux.uml`).
    pub fn pgid(&self) -> i32 {
        self.pgid.as_raw()
    }

    /// The guest's temporary directory on the host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything the guest printed on its console so far (pppd's debug log included).
    pub fn console(&self) -> String {
        self.console.text()
    }

    /// Waits until the console contains `needle`. Fails on timeout or when the guest is gone.
    pub fn wait_console(&self, needle: &str, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let (found, _) = self
            .console
            .wait_for(deadline, |data| find(data, needle.as_bytes()));
        match found {
            Some(_) => Ok(()),
            None => Err(self.failure(&format!("console never showed {needle:?}"), timeout)),
        }
    }

    /// Waits for `GUEST-RESULT rc=N` on the console (auto mode, or after `rig_finish` in ctl
    /// mode) and returns N. The console line is authoritative: UML occasionally dies from
    /// SIGABRT after a clean power-down. Also waits (within the same deadline) for the guest
    /// to end.
    pub fn wait_result(&mut self, timeout: Duration) -> io::Result<i32> {
        let deadline = Instant::now() + timeout;
        let (rc, _) = self.console.wait_for(deadline, parse_result);
        let Some(rc) = rc else {
            return Err(self.failure("no GUEST-RESULT line", timeout));
        };
        // The console pipe closes when every UML process is gone.
        let (_, closed) = self.console.wait_for(deadline, |_| None::<()>);
        if closed && let Some(mut child) = self.child.take() {
            self.stop_watchdog();
            self.exit_status = kill_and_reap(self.pgid, &mut child);
        }
        Ok(rc)
    }

    /// The exit status of `linux.uml`, once it has been seen to end.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit_status
    }

    /// Ctl mode: runs one shell command line in the guest (as PID 1's shell, so the helpers
    /// `ppp_up [opts]`, `ppp_down`, `rig_finish [rc]` and the variables `$NAS_IP`, `$PPPD`...
    /// are available) and returns its exit status.
    pub fn ctl(&mut self, cmd: &str, timeout: Duration) -> io::Result<i32> {
        self.ctl_output(cmd, timeout).map(|(rc, _)| rc)
    }

    /// Like [`ctl`](Self::ctl), and also returns what the command printed (stdout and stderr).
    pub fn ctl_output(&mut self, cmd: &str, timeout: Duration) -> io::Result<(i32, String)> {
        if cmd.contains('\n') {
            return Err(invalid("ctl commands are single lines".into()));
        }
        let deadline = Instant::now() + timeout;
        let res = self.ctl_exchange(cmd, deadline);
        res.map_err(|e| self.failure(&format!("ctl {cmd:?}: {e}"), timeout))
    }

    fn ctl_exchange(&mut self, cmd: &str, deadline: Instant) -> io::Result<(i32, String)> {
        let ctl = self
            .ctl
            .as_mut()
            .ok_or_else(|| invalid("guest was not started in ctl mode".into()))?;
        if !ctl.ready {
            ctl_read_until(ctl, deadline, |buf| {
                find(buf, b"CTL-READY\n").map(|i| ((), i + b"CTL-READY\n".len()))
            })?;
            ctl.ready = true;
        }
        ctl.master.write_all(format!("{cmd}\n").as_bytes())?;
        let _ = writeln!(ctl.log, "$ {cmd}");
        let (rc, out) = ctl_read_until(ctl, deadline, parse_mark)?;
        let _ = writeln!(ctl.log, "{out}[rc={rc}]");
        Ok((rc, out))
    }

    /// Ctl mode: asks the guest to end pppd, report `rc` and power off; then waits for it.
    pub fn finish(&mut self, rc: i32, timeout: Duration) -> io::Result<i32> {
        let deadline = Instant::now() + timeout;
        let ctl = self
            .ctl
            .as_mut()
            .ok_or_else(|| invalid("guest was not started in ctl mode".into()))?;
        // No MARK comes back: the guest powers off inside the command.
        ctl.master
            .write_all(format!("rig_finish {rc}\n").as_bytes())?;
        self.wait_result(deadline.saturating_duration_since(Instant::now()))
    }

    /// The ctl commands sent so far with their output, for assertion messages.
    pub fn ctl_log(&self) -> String {
        self.ctl.as_ref().map(|c| c.log.clone()).unwrap_or_default()
    }

    /// Must run before the group is reaped: afterwards its id may be recycled.
    fn stop_watchdog(&mut self) {
        if let Some((tx, handle)) = self.watchdog.take() {
            drop(tx);
            let _ = handle.join();
        }
    }

    /// An error with the context a failing test needs: what, when, and the console tail.
    fn failure(&self, what: &str, timeout: Duration) -> io::Error {
        let kind = if self.console.is_closed() {
            io::ErrorKind::UnexpectedEof
        } else {
            io::ErrorKind::TimedOut
        };
        let state = if self.console.is_closed() {
            "the guest has ended".to_string()
        } else {
            format!("gave up after {timeout:?}")
        };
        io::Error::new(
            kind,
            format!(
                "UML guest (pgid {}, up {:.1?}): {what}; {state}\n--- guest console (tail) ---\n{}\n--- ctl log ---\n{}",
                self.pgid,
                self.started.elapsed(),
                tail(&self.console(), 60),
                tail(&self.ctl_log(), 30),
            ),
        )
    }
}

impl Drop for PppdGuest {
    fn drop(&mut self) {
        self.stop_watchdog();
        if let Some(mut child) = self.child.take() {
            if !self.console.is_closed() {
                let _ = killpg(self.pgid, Signal::SIGTERM);
                // Give UML a moment to end by itself: the console pipe closes when it has.
                let deadline = Instant::now() + Duration::from_millis(1500);
                self.console.wait_for(deadline, |_| None::<()>);
            }
            self.exit_status = kill_and_reap(self.pgid, &mut child).or(self.exit_status);
        }
        if let Some(reader) = self.reader.take() {
            // Only join when the pipe is closed; a process that escaped the group could
            // otherwise keep us waiting forever.
            let deadline = Instant::now() + Duration::from_secs(2);
            let (_, closed) = self.console.wait_for(deadline, |_| None::<()>);
            if closed {
                let _ = reader.join();
            }
        }
        if !self.keep_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// SIGKILLs the group, then reaps `linux.uml` and every other process of the group (UML
/// helpers, reparented to us as the subreaper). The group id stays ours until the main
/// process is reaped, so the signal cannot hit a recycled group.
fn kill_and_reap(pgid: Pid, child: &mut Child) -> Option<ExitStatus> {
    let _ = killpg(pgid, Signal::SIGKILL);
    let status = child.wait().ok();
    // ECHILD: none of our children is left in the group.
    let group = Pid::from_raw(-pgid.as_raw());
    while let Ok(_) | Err(Errno::EINTR) = waitpid(group, Some(WaitPidFlag::__WALL)) {}
    status
}

/// True while any process (zombies included) is in process group `pgid`.
pub fn process_group_alive(pgid: i32) -> bool {
    !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

/// Processes in group `pgid` according to /proc: `(pid, state, command)`.
pub fn process_group_members(pgid: i32) -> Vec<(i32, char, String)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let pgrp = rest.nth(1).and_then(|s| s.parse::<i32>().ok());
        if pgrp == Some(pgid) {
            out.push((pid, state, comm));
        }
    }
    out
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A new per-guest directory under `NASD_UML_TMPDIR` or the system temp dir.
fn make_guest_dir() -> io::Result<PathBuf> {
    let base = std::env::var_os("NASD_UML_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seq = GUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("nasd-uml-{}-{seq}-{nanos:08x}", std::process::id()));
    fs::create_dir(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// A path as a kernel command line word: no whitespace allowed.
fn kernel_word(path: &Path) -> io::Result<String> {
    let s = path
        .to_str()
        .ok_or_else(|| invalid(format!("{}: not UTF-8", path.display())))?;
    if s.contains(char::is_whitespace) {
        return Err(invalid(format!(
            "{s}: kernel arguments cannot hold spaces (set NASD_UML_TMPDIR)"
        )));
    }
    Ok(s.to_string())
}

/// Opens a pty pair (both ends close-on-exec, slave in raw mode); returns master, slave and
/// the slave's path.
fn open_pty() -> io::Result<(OwnedFd, File, String)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let path = ptsname_r(&master)?;
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(&path)?;
    let mut t = tcgetattr(slave.as_fd())?;
    cfmakeraw(&mut t);
    tcsetattr(slave.as_fd(), SetArg::TCSANOW, &t)?;
    Ok((OwnedFd::from(master), slave, path))
}

/// Shell-quotes one word for the guest's config file.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn config_file(opts: &GuestOptions) -> String {
    let mut c = String::from("# written by netns-tests/support/uml.rs, sourced by guest-init.sh\n");
    let vars = [
        ("PPPD_OPTS", opts.pppd_opts.join(" ")),
        ("PPPD_EXTRA", opts.pppd_extra.join(" ")),
        ("PPP_USER", opts.user.clone()),
        ("PPP_PASS", opts.password.clone()),
        ("NAS_IP", opts.nas_ip.clone()),
        ("TEST_CMD", opts.test_cmd.clone()),
        ("EXTRA_MODULES", opts.extra_modules.join(" ")),
        (
            "EXTRA_TTYS",
            (0..opts.extra_lines.len())
                .map(|j| format!("/dev/ttyS{}", j + 2))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ];
    for (name, value) in vars {
        let _ = writeln!(c, "{name}={}", sh_quote(&value));
    }
    c.push_str(&opts.conf_extra);
    c.push('\n');
    c
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `GUEST-RESULT rc=N\n` anywhere in the console.
fn parse_result(data: &[u8]) -> Option<i32> {
    const TAG: &[u8] = b"GUEST-RESULT rc=";
    let mut from = 0;
    while let Some(i) = find(&data[from..], TAG) {
        let start = from + i + TAG.len();
        let digits = data[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 && matches!(data.get(start + digits), Some(b'\r' | b'\n')) {
            return std::str::from_utf8(&data[start..start + digits])
                .ok()?
                .parse()
                .ok();
        }
        from = start;
    }
    None
}

/// `MARK=<rc>\n` after a ctl command's output: returns (rc, output), consumed length.
fn parse_mark(buf: &[u8]) -> Option<((i32, String), usize)> {
    const TAG: &[u8] = b"MARK=";
    let mut from = 0;
    while let Some(i) = find(&buf[from..], TAG) {
        let at = from + i;
        let start = at + TAG.len();
        let digits = buf[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 && buf.get(start + digits) == Some(&b'\n') {
            let rc = std::str::from_utf8(&buf[start..start + digits])
                .ok()?
                .parse()
                .ok()?;
            let out = String::from_utf8_lossy(&buf[..at]).into_owned();
            return Some(((rc, out), start + digits + 1));
        }
        from = start;
    }
    None
}

/// Reads the control line until `parse` recognises something; drops what it consumed.
fn ctl_read_until<T>(
    ctl: &mut CtlLine,
    deadline: Instant,
    mut parse: impl FnMut(&[u8]) -> Option<(T, usize)>,
) -> io::Result<T> {
    let mut tmp = [0u8; 4096];
    loop {
        if let Some((v, used)) = parse(&ctl.buf) {
            ctl.buf.drain(..used);
            return Ok(v);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no answer on the control line; received so far: {:?}",
                    String::from_utf8_lossy(&ctl.buf)
                ),
            ));
        }
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(ctl.master.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match ctl.master.read(&mut tmp) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => ctl.buf.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
