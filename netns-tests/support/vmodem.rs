//! A vmodem pool started for one test, stopped (and its files removed) when the test ends.

use super::netns::Proc;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running `vmodem`.
pub struct Vmodem {
    proc: Proc,
    dir: PathBuf,
    owns_dir: bool,
}

impl Vmodem {
    /// Starts vmodem with `args` (besides `--dir`) in a new directory, removed on drop.
    pub fn start(args: &[&str]) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("nasd-vm-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut vm = Self::start_in(&dir, args);
        vm.owns_dir = true;
        vm
    }

    /// Starts vmodem in an existing directory (kept on drop) and waits for its ready line.
    pub fn start_in(dir: &Path, args: &[&str]) -> Self {
        let dir = dir.to_path_buf();
        let mut cmd = Command::new(super::netns::vmodem());
        cmd.arg("--dir").arg(&dir).args(args);
        let proc = Proc::spawn(cmd).unwrap();
        assert!(
            proc.stdout
                .wait_for("\"ready\":true", Duration::from_secs(20)),
            "vmodem did not start: {}",
            proc.stderr.text()
        );
        Self {
            proc,
            dir,
            owns_dir: false,
        }
    }

    /// The pool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/server<i>`.
    pub fn server(&self, i: usize) -> PathBuf {
        self.dir.join(format!("server{i}"))
    }

    /// `DIR/client<i>`.
    pub fn client(&self, i: usize) -> PathBuf {
        self.dir.join(format!("client{i}"))
    }

    /// One request on the control socket.
    pub fn ctl(&self, request: &str) -> serde_json::Value {
        let mut s = UnixStream::connect(self.dir.join("control.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    /// What vmodem logged.
    pub fn log(&self) -> String {
        self.proc.stderr.text()
    }
}

impl Drop for Vmodem {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.proc_id().to_string()])
            .status();
        let _ = self.proc.wait(Duration::from_secs(5));
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Vmodem {
    fn proc_id(&self) -> u32 {
        self.proc.id()
    }
}
