//! The vmodem binary, driven as nasd and dial-in clients would drive it: a NAS answering on
//! the server-side pty (ATZ, RING with caller id, ATA, CONNECT), clients dialling on the
//! client-side pty and socket, the line rate measured from the data, noise, hang-ups in
//! both directions, and the control socket.
//!
//! Nothing here sleeps to synchronise: every wait is for a condition (text on a line, a
//! state in the control socket's `list`) with a deadline. The only sleeps are the `+++`
//! escape's guard times, which are silence the protocol requires. Each test starts its own
//! vmodem in its own directory; [`Vmodem`]'s `Drop` kills it and removes the directory, also
//! when the test fails (its log is printed then).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::Value;

const NUMBER: &str = "5551234";
const SHORT: Duration = Duration::from_secs(5);
/// Guard time used by the tests' `+++` (ATS12=5: 100 ms).
const GUARD: Duration = Duration::from_millis(100);

/// A running vmodem in its own directory.
struct Vmodem {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Vmodem {
    /// Starts vmodem with `args` (plus `--dir` and a fast pty re-check) and waits for its
    /// ready line.
    fn start(args: &[&str]) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("vmodem-test-{}-{n}", std::process::id()));
        let dir = base.join("pool");
        std::fs::create_dir_all(&base).unwrap();
        let log = base.join("vmodem.log");
        let child = Command::new(env!("CARGO_BIN_EXE_vmodem"))
            .arg("--dir")
            .arg(&dir)
            .args(["--recheck-ms", "20"])
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("cannot start vmodem");
        let mut vm = Self {
            child,
            dir: base,
            log,
        };
        let stdout = vm.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no ready line from vmodem");
        let ready: Value = serde_json::from_str(&line).expect("ready line is not JSON");
        assert_eq!(ready["ready"], true, "{line}");
        assert_eq!(ready["control"], vm.path("control.sock").to_str().unwrap());
        vm
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join("pool").join(name)
    }

    fn server(&self, i: usize) -> Dte {
        Dte::pty(&self.path(&format!("server{i}")))
    }

    fn client(&self, i: usize) -> Dte {
        Dte::pty(&self.path(&format!("client{i}")))
    }

    fn client_socket(&self, i: usize) -> Dte {
        let s = UnixStream::connect(self.path(&format!("client{i}.sock"))).unwrap();
        Dte::new(File::from(std::os::fd::OwnedFd::from(s)))
    }

    /// Sends one control request line and returns the reply.
    fn control_raw(&self, line: &[u8]) -> Value {
        let mut s = UnixStream::connect(self.path("control.sock")).unwrap();
        s.set_read_timeout(Some(SHORT)).unwrap();
        s.write_all(line).unwrap();
        s.write_all(b"\n").unwrap();
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"))
    }

    fn control(&self, json: &str) -> Value {
        self.control_raw(json.as_bytes())
    }

    fn list(&self) -> Value {
        let v = self.control(r#"{"cmd":"list"}"#);
        assert_eq!(v["ok"], true, "{v}");
        v
    }

    /// Waits until `list` satisfies `cond`; returns that `list`.
    fn wait_list(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + SHORT;
        loop {
            let v = self.list();
            if cond(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {v}"
            );
            // Not a synchronising sleep: a polling interval for a condition with a deadline.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Vmodem {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- vmodem log (last lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One DTE: a pty slave opened like a serial device, or a socket connection.
struct Dte {
    file: File,
    buf: Vec<u8>,
    eof: bool,
}

impl Dte {
    fn new(file: File) -> Self {
        let fd = file.as_fd();
        let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
        Self {
            file,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Opens a pty slave (through its symlink) read/write, in raw mode.
    fn pty(path: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let mut t = nix::sys::termios::tcgetattr(&file).unwrap();
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(&file, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
        Self::new(file)
    }

    /// Writes everything, waiting for room with a deadline.
    fn send(&mut self, bytes: &[u8]) {
        let deadline = Instant::now() + SHORT;
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.file.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.wait(PollFlags::POLLOUT, deadline);
                }
                Err(e) => panic!("write: {e}"),
            }
        }
    }

    fn wait(&self, flags: PollFlags, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.file.as_fd(), flags)];
        poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) > 0
    }

    /// Reads what is there (waiting until `deadline` for something); false at EOF/EIO.
    fn fill(&mut self, deadline: Instant) -> bool {
        if self.eof {
            return false;
        }
        self.wait(PollFlags::POLLIN, deadline);
        let mut chunk = [0u8; 8192];
        loop {
            match self.file.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                // A pty slave whose master went away reads EIO.
                Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => {
                    self.eof = true;
                    return false;
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Waits for `needle`; returns the text up to and including it (the rest stays).
    fn expect(&mut self, needle: &str) -> String {
        self.expect_within(needle, SHORT)
    }

    fn expect_within(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = find(&self.buf, needle.as_bytes()) {
                let got: Vec<u8> = self.buf.drain(..pos + needle.len()).collect();
                return String::from_utf8_lossy(&got).into_owned();
            }
            let open = self.fill(deadline);
            if Instant::now() >= deadline || (!open && find(&self.buf, needle.as_bytes()).is_none())
            {
                panic!(
                    "timed out (or EOF) waiting for {needle:?}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// Waits for end of file (or EIO).
    fn expect_eof(&mut self) {
        let deadline = Instant::now() + SHORT;
        while self.fill(deadline) {
            assert!(Instant::now() < deadline, "no EOF: {:?}", self.buf);
        }
    }

    /// Sends a command line and waits for its result.
    fn at(&mut self, cmd: &str, result: &str) -> String {
        self.send(format!("{cmd}\r").as_bytes());
        self.expect(result)
    }

    /// Sends `+++` surrounded by the guard time of silence and waits for OK.
    fn escape(&mut self) {
        // The guard times are silence the escape sequence requires, not synchronisation.
        std::thread::sleep(GUARD * 2);
        self.buf.clear();
        self.send(b"+++");
        self.expect("\r\nOK\r\n");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The NAS side initialises its modem as nasd would.
fn nas_init(server: &mut Dte) {
    server.at("ATZ", "\r\nOK\r\n");
    server.at("ATE0V1Q0S0=0&D2&C1S12=5", "\r\nOK\r\n");
}

/// Client `client` dials, the NAS on `server` sees RING and the caller id, answers, and
/// both see CONNECT. Returns the server's text up to its CONNECT.
fn call(client: &mut Dte, server: &mut Dte) -> String {
    client.at("ATZ", "OK\r\n");
    client.at("ATE0S12=5", "\r\nOK\r\n");
    client.send(format!("ATDT{NUMBER}\r").as_bytes());
    let mut text = server.expect("\r\nRING\r\n");
    text += &server.expect("NAME = ");
    server.send(b"ATA\r");
    text += &server.expect("\r\nCONNECT ");
    text += &server.expect("\r\n");
    client.expect("\r\nCONNECT ");
    client.expect("\r\n");
    text
}

#[test]
fn vmodem_dial_caller_id_and_data() {
    let vm = Vmodem::start(&[
        "--lines",
        "2",
        "--caller-number",
        "5550100",
        "--ring-interval-ms",
        "200",
    ]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut client = vm.client(0);
    let text = call(&mut client, &mut server);
    assert!(text.ends_with("\r\nCONNECT 33600\r\n"), "{text}");
    assert!(text.contains("\r\nNMBR = 5550100\r\n"), "{text}");
    assert!(text.contains("\r\nDATE = "), "{text}");
    assert!(text.contains("\r\nTIME = "), "{text}");
    let list = vm.list();
    assert_eq!(list["lines"][0]["state"], "connected", "{list}");
    assert_eq!(list["lines"][0]["call"]["caller"], "5550100");
    assert_eq!(list["lines"][0]["call"]["called"], NUMBER);
    assert_eq!(list["lines"][1]["state"], "idle");
    assert_eq!(list["clients"][0]["calling"], 0);
    // Data both ways, including bytes that are AT commands and escapes to a modem elsewhere.
    client.send(b"hello NAS\r\nATH\r\n");
    server.expect("hello NAS\r\nATH\r\n");
    server.send(b"\x7e\xff\x03\xc0\x21\x7e");
    client.expect("\x7e");
    let list = vm.wait_list("byte counters", |v| {
        v["lines"][0]["call"]["to_server"]["bytes"] == 16
            && v["lines"][0]["call"]["to_client"]["bytes"] == 6
    });
    assert_eq!(list["lines"][0]["rate"], 33600);
}

#[test]
fn vmodem_auto_answer_and_numeric_results() {
    let vm = Vmodem::start(&["--ring-interval-ms", "100", "--connect-suffix", "/ARQ"]);
    let mut server = vm.server(0);
    server.at("ATZ", "OK\r\n");
    server.at("ATE0V0S0=2", "0\r");
    let mut client = vm.client(0);
    client.at("ATE0", "OK\r\n");
    client.send(b"ATD5551234\r");
    // Numeric: RING is 2 (then the caller id), CONNECT is 1.
    server.expect("2\r");
    server.expect("NAME = VMODEM CLIENT 0\r\n");
    server.expect("2\r");
    server.expect("1\r");
    client.expect("\r\nCONNECT 33600/ARQ\r\n");
}

#[test]
fn vmodem_socket_client_dials_and_closing_hangs_up() {
    let vm = Vmodem::start(&["--ring-interval-ms", "200"]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut sock = vm.client_socket(0);
    let text = call(&mut sock, &mut server);
    assert!(text.contains("\r\nNMBR = 5550000\r\n"), "{text}");
    sock.send(b"ping");
    server.expect("ping");
    drop(sock);
    server.expect("\r\nNO CARRIER\r\n");
    vm.wait_list("idle line", |v| v["lines"][0]["state"] == "idle");
    // The modem is back in command mode.
    server.at("AT", "\r\nOK\r\n");
}

#[test]
fn vmodem_busy_when_every_line_is_in_a_call() {
    let vm = Vmodem::start(&[
        "--lines",
        "1",
        "--clients",
        "2",
        "--reject-delay-ms",
        "100",
        "--ring-interval-ms",
        "200",
    ]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut c0 = vm.client(0);
    call(&mut c0, &mut server);
    let mut c1 = vm.client(1);
    c1.at("ATE0", "OK\r\n");
    c1.at("ATDT5551234", "\r\nBUSY\r\n");
    // An unknown number is BUSY too.
    c1.at("ATDT999", "\r\nBUSY\r\n");
    // A server line busied out with ATH1 takes no calls either.
    server.escape();
    server.at("ATH", "\r\nOK\r\n");
    c0.expect("\r\nNO CARRIER\r\n");
    server.at("ATH1", "\r\nOK\r\n");
    c1.at("ATDT5551234", "\r\nBUSY\r\n");
    server.at("ATH0", "\r\nOK\r\n");
    c1.send(b"ATDT5551234\r");
    server.expect("\r\nRING\r\n");
}

#[test]
fn vmodem_no_answer_when_nobody_answers() {
    let vm = Vmodem::start(&["--ring-interval-ms", "300"]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut client = vm.client(0);
    client.at("ATE0S7=1", "OK\r\n");
    client.send(b"ATDT5551234\r");
    server.expect("\r\nRING\r\n");
    vm.wait_list("ringing", |v| v["lines"][0]["state"] == "ringing");
    client.expect_within("\r\nNO ANSWER\r\n", Duration::from_secs(3));
    let list = vm.wait_list("idle line", |v| v["lines"][0]["state"] == "idle");
    assert_eq!(list["lines"][0]["call"]["end"], "no-answer", "{list}");
    // ATA now finds no call.
    server.buf.clear();
    server.at("ATA", "\r\nNO CARRIER\r\n");
}

/// Pushes `data` from `from` to `to`, reading as it goes; returns what arrived and when.
fn pump(from: &mut Dte, to: &mut Dte, data: &[u8], expect: usize) -> Vec<(Instant, usize)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    let mut arrivals = Vec::new();
    let mut got = 0;
    while got < expect {
        assert!(
            Instant::now() < deadline,
            "only {got} of {expect} bytes arrived"
        );
        if sent < data.len() {
            match from.file.write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        let before = to.buf.len();
        let wait = Instant::now() + Duration::from_millis(if sent < data.len() { 5 } else { 200 });
        to.fill(wait);
        if to.buf.len() > before {
            got += to.buf.len() - before;
            arrivals.push((Instant::now(), to.buf.len() - before));
        }
    }
    arrivals
}

#[test]
fn vmodem_line_rate_33600() {
    let vm = Vmodem::start(&["--ring-interval-ms", "200"]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut client = vm.client(0);
    call(&mut client, &mut server);
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let arrivals = pump(&mut client, &mut server, &data, data.len());
    assert_eq!(server.buf, data, "the data arrived intact and in order");
    // The rate from the data: bytes after the first chunk over the time they took.
    let (t0, first) = arrivals[0];
    let (t1, _) = *arrivals.last().unwrap();
    let secs = (t1 - t0).as_secs_f64();
    let rate = (data.len() - first) as f64 / secs;
    eprintln!(
        "33600 bit/s line: 20000 bytes in {secs:.3} s after the first chunk: {rate:.0} bytes/s"
    );
    assert!(
        (3000.0..=3700.0).contains(&rate),
        "{rate} bytes/s over {secs} s"
    );
    // The other direction: also the line rate.
    server.buf.clear();
    let arrivals = pump(&mut server, &mut client, &data[..6720], 6720);
    let (t0, first) = arrivals[0];
    let secs = (arrivals.last().unwrap().0 - t0).as_secs_f64();
    let rate = (6720 - first) as f64 / secs;
    eprintln!("33600 bit/s line, server to client: {rate:.0} bytes/s");
    assert!(
        (3000.0..=3700.0).contains(&rate),
        "{rate} bytes/s over {secs} s"
    );
    // A slower rate set through the control socket applies to the call at once.
    let v = vm.control(r#"{"cmd":"rate","line":0,"bps":9600}"#);
    assert_eq!(v["ok"], true, "{v}");
    client.buf.clear();
    let arrivals = pump(&mut server, &mut client, &data[..2880], 2880);
    let (t0, first) = arrivals[0];
    let secs = (arrivals.last().unwrap().0 - t0).as_secs_f64();
    let rate = (2880 - first) as f64 / secs;
    eprintln!("9600 bit/s line: {rate:.0} bytes/s");
    assert!(
        (850.0..=1050.0).contains(&rate),
        "{rate} bytes/s over {secs} s"
    );
}

#[test]
fn vmodem_noise_bit_errors_drops_and_latency() {
    let vm = Vmodem::start(&[
        "--rate",
        "115200",
        "--seed",
        "42",
        "--ring-interval-ms",
        "200",
    ]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut client = vm.client(0);
    let text = call(&mut client, &mut server);
    assert!(text.ends_with("\r\nCONNECT 115200\r\n"), "{text}");
    // Bit errors: 20000 bytes are 160000 bits; at 1e-3 about 160 flip (sd about 13).
    let v = vm.control(r#"{"cmd":"noise","line":0,"ber":1e-3,"drop":0.0,"latency_ms":0}"#);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["line"]["noise"]["ber"], 1e-3);
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    pump(&mut client, &mut server, &data, data.len());
    let flipped: u32 = server
        .buf
        .iter()
        .zip(&data)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    eprintln!("ber 1e-3: {flipped} of 160000 bits flipped");
    assert!((100..=230).contains(&flipped), "{flipped} bits flipped");
    let list = vm.list();
    assert_eq!(
        list["lines"][0]["call"]["to_server"]["bits_flipped"],
        flipped
    );
    // Drops: 5% of 20000 bytes lost, about 1000 (sd about 31).
    let v = vm.control(r#"{"cmd":"noise","line":0,"ber":0,"drop":0.05}"#);
    assert_eq!(v["ok"], true, "{v}");
    server.buf.clear();
    client.send(&data);
    let list = vm.wait_list("every byte sent or dropped", |v| {
        let s = &v["lines"][0]["call"]["to_server"];
        // 20000 delivered in the bit error phase, 20000 delivered or dropped in this one.
        s["bytes"].as_u64().unwrap() + s["bytes_dropped"].as_u64().unwrap() == 40_000
    });
    let dropped = list["lines"][0]["call"]["to_server"]["bytes_dropped"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + SHORT;
    while server.buf.len() < 20_000 - dropped as usize {
        assert!(server.fill(deadline) && Instant::now() < deadline);
    }
    eprintln!("drop 0.05: {} of 20000 bytes arrived", server.buf.len());
    assert_eq!(server.buf.len() as u64, 20_000 - dropped);
    assert!((800..=1200).contains(&dropped), "{dropped} dropped");
    // Latency: a byte takes at least the added latency.
    let v = vm.control(r#"{"cmd":"noise","line":0,"drop":0,"latency_ms":300}"#);
    assert_eq!(v["ok"], true, "{v}");
    server.buf.clear();
    let t = Instant::now();
    client.send(b"L");
    server.expect("L");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

#[test]
fn vmodem_client_hangup_gives_the_server_no_carrier() {
    let vm = Vmodem::start(&["--ring-interval-ms", "200"]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut client = vm.client(0);
    call(&mut client, &mut server);
    client.escape();
    // The escape went through as data, as on real modems.
    server.expect("+++");
    client.at("ATH", "\r\nOK\r\n");
    server.expect("\r\nNO CARRIER\r\n");
    let list = vm.wait_list("idle line", |v| v["lines"][0]["state"] == "idle");
    assert_eq!(list["lines"][0]["call"]["end"], "client-hangup");
    // Closing the client pty mid-call is a hang-up too.
    call(&mut client, &mut server);
    drop(client);
    server.expect("\r\nNO CARRIER\r\n");
}

#[test]
fn vmodem_server_hangup_gives_the_client_no_carrier() {
    let vm = Vmodem::start(&["--ring-interval-ms", "200"]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut client = vm.client(0);
    call(&mut client, &mut server);
    server.escape();
    server.at("ATH", "\r\nOK\r\n");
    client.expect("\r\nNO CARRIER\r\n");
    // ATO after the call ended finds no carrier.
    client.at("ATO", "\r\nNO CARRIER\r\n");
    // With a socket client: NO CARRIER, then EOF.
    let mut sock = vm.client_socket(0);
    call(&mut sock, &mut server);
    server.escape();
    server.at("ATH0", "\r\nOK\r\n");
    sock.expect("\r\nNO CARRIER\r\n");
    sock.expect_eof();
}

#[test]
fn vmodem_server_pty_close_hangs_up_and_reopens() {
    let vm = Vmodem::start(&["--ring-interval-ms", "200"]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut sock = vm.client_socket(0);
    call(&mut sock, &mut server);
    drop(server);
    sock.expect("\r\nNO CARRIER\r\n");
    sock.expect_eof();
    vm.wait_list("idle line", |v| v["lines"][0]["state"] == "idle");
    let list = vm.list();
    assert_eq!(list["lines"][0]["call"]["end"], "server-hangup");
    // Opened again, the port has a freshly reset modem.
    let mut server = vm.server(0);
    server.at("AT", "AT\r\r\nOK\r\n");
    let mut client = vm.client(0);
    nas_init(&mut server);
    call(&mut client, &mut server);
}

#[test]
fn vmodem_cut_through_the_control_socket() {
    let vm = Vmodem::start(&["--ring-interval-ms", "200"]);
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut sock = vm.client_socket(0);
    call(&mut sock, &mut server);
    let v = vm.control(r#"{"cmd":"cut","line":0}"#);
    assert_eq!(v["ok"], true, "{v}");
    server.expect("\r\nNO CARRIER\r\n");
    sock.expect("\r\nNO CARRIER\r\n");
    sock.expect_eof();
    let list = vm.list();
    assert_eq!(list["lines"][0]["state"], "idle");
    assert_eq!(list["lines"][0]["call"]["end"], "cut");
    let v = vm.control(r#"{"cmd":"cut","line":0}"#);
    assert_eq!(v["ok"], false, "{v}");
}

#[test]
fn vmodem_eof_on_hangup_replaces_the_server_pty() {
    let vm = Vmodem::start(&["--eof-on-hangup", "--ring-interval-ms", "200"]);
    let link = vm.path("server0");
    let before = std::fs::read_link(&link).unwrap();
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut client = vm.client(0);
    call(&mut client, &mut server);
    client.escape();
    client.at("ATH", "\r\nOK\r\n");
    server.expect("\r\nNO CARRIER\r\n");
    server.expect_eof();
    let after = std::fs::read_link(&link).unwrap();
    assert_ne!(before, after, "the link moved to a new pty");
    let mut server = vm.server(0);
    nas_init(&mut server);
    call(&mut client, &mut server);
}

#[test]
fn vmodem_control_socket() {
    let vm = Vmodem::start(&["--lines", "2", "--ring-interval-ms", "200"]);
    let list = vm.list();
    assert_eq!(list["lines"].as_array().unwrap().len(), 2);
    assert_eq!(list["lines"][0]["state"], "idle");
    assert_eq!(list["lines"][0]["modem"], "idle");
    assert_eq!(list["clients"][1]["number"], "5550001");
    let mut server = vm.server(0);
    nas_init(&mut server);
    let mut client = vm.client(1);
    client.at("ATE0", "OK\r\n");
    client.send(b"ATD5551234\r");
    server.expect("\r\nRING\r\n");
    let list = vm.wait_list("ringing", |v| v["lines"][0]["state"] == "ringing");
    assert_eq!(list["lines"][0]["call"]["client"], 1);
    assert_eq!(list["clients"][1]["modem"], "dialing");
    server.send(b"ATA\r");
    server.expect("CONNECT");
    let list = vm.wait_list("connected", |v| v["lines"][0]["state"] == "connected");
    assert_eq!(list["lines"][0]["modem"], "online");
    assert_eq!(list["clients"][1]["modem"], "online");
    // Bad input gets an error reply, and the connection goes on.
    for bad in [
        &b"{not json"[..],
        br#"{"cmd":"reboot"}"#,
        br#"{"cmd":"cut","line":9}"#,
        br#"{"cmd":"rate","line":0,"bps":0}"#,
        br#"{"cmd":"noise","line":0,"ber":7}"#,
        br#"{"cmd":"noise","line":0,"typo":1}"#,
        b"\xff\xfe\x00",
    ] {
        let v = vm.control_raw(bad);
        assert_eq!(v["ok"], false, "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let mut s = UnixStream::connect(vm.path("control.sock")).unwrap();
    s.set_read_timeout(Some(SHORT)).unwrap();
    s.write_all(b"{bad\n{\"cmd\":\"list\"}\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\":false"), "{line}");
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\":true"), "{line}");
    // An over-long request is refused (once) and the connection goes on.
    s.write_all(&vec![b'x'; 10_000]).unwrap();
    s.write_all(b"\n{\"cmd\":\"list\"}\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("longer than"), "{line}");
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\":true"), "{line}");
    // The ctl subcommand.
    let dir = vm.path("");
    let out = Command::new(env!("CARGO_BIN_EXE_vmodem"))
        .args(["ctl", "--dir"])
        .arg(&dir)
        .arg(r#"{"cmd":"noise","line":1,"ber":1e-5}"#)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["line"]["noise"]["ber"], 1e-5);
    let out = Command::new(env!("CARGO_BIN_EXE_vmodem"))
        .args(["ctl", "--dir"])
        .arg(&dir)
        .arg("nonsense")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\":false"));
}

#[test]
fn vmodem_sigterm_removes_its_files() {
    let mut vm = Vmodem::start(&["--lines", "2"]);
    let names = [
        "server0",
        "server1",
        "client0",
        "client1",
        "client0.sock",
        "control.sock",
    ];
    for n in names {
        assert!(vm.path(n).symlink_metadata().is_ok(), "{n} missing");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(vm.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + SHORT;
    let status = loop {
        if let Some(s) = vm.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "vmodem did not exit on SIGTERM");
        // A polling interval for the exit, with a deadline.
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    for n in names {
        assert!(vm.path(n).symlink_metadata().is_err(), "{n} left behind");
    }
}
