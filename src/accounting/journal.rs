//! The journal file: append-only JSON lines, fsync'd, repaired and recovered at open.
//!
//! Blocking std I/O; the tokio side is [`super::Accounting`]. Files, for a journal at `PATH`:
//!
//! * `PATH`: the records, one JSON object per line ([`Record`]).
//! * `PATH.delivered`: the delivery cursor, one decimal number: every record with a `seq` up to
//!   it has been delivered (delivery is strictly in order). Replaced atomically (write a
//!   temporary file, fsync, rename, fsync the directory).
//! * `PATH.1`: the previous journal after a rotation; `PATH.new` exists only during one.
//!
//! Rotation happens after an append or a delivery once the file has grown by
//! [`Options::rotate_bytes`] since it was opened or last rotated, and only when nothing is
//! pending. The new file starts with verbatim copies of the open sessions' Start and latest
//! Interim records, so a crash later still closes them. Only one old file is kept. While no
//! accounting server answers, nothing rotates: the journal grows with the undelivered records
//! (they are also held in memory), bounded only by the disk.

use super::record::{Body, Record, SessionRecord, cause};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Mode of the files the journal creates: records name users and callers.
const FILE_MODE: u32 = 0o600;

/// How a journal behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Records are to be forwarded to an accounting server. When false nothing is pending and
    /// the cursor follows the end of the journal.
    pub forwarding: bool,
    /// Rotate once the file has grown by this many bytes (see the module's documentation).
    pub rotate_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            forwarding: true,
            rotate_bytes: 16 << 20,
        }
    }
}

/// What [`Journal::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records read.
    pub records: usize,
    /// Lines that were not JSON records at all (skipped, logged, left in the file; a torn last
    /// line is counted here and removed).
    pub corrupt_lines: usize,
    /// Lines with a `seq` but a kind or shape this build does not know (kept, never forwarded).
    pub unknown_lines: usize,
    /// The file ended in a torn line (a crash during a write); it was cut off.
    pub torn_tail: bool,
    /// The Stop records (cause `nas-reboot`) written for sessions that were open.
    pub closed: Vec<Record>,
    /// The time of the last record read, before the Stops above.
    pub last_time: Option<u64>,
    /// A boot stamp for [`new_session_id`](super::new_session_id): greater than the time of
    /// every record read, so session ids never repeat across restarts when each start writes
    /// a record (Accounting-On) before its first session.
    pub boot_stamp: u64,
}

/// What the journal knows of a session that has not stopped.
#[derive(Debug, Clone)]
struct OpenSession {
    /// The Start (or, when it was lost, the first Interim seen).
    first: Record,
    /// The latest Interim after `first`.
    latest: Option<Record>,
}

/// Only the sequence number of a line whose body is not understood.
#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// The accounting journal. See the module's documentation.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Length of the file's good content; a failed append is cut back to it.
    len: u64,
    /// `len` when the journal was opened or last rotated.
    base_len: u64,
    /// A failed append may have left bytes past `len` that could not be cut yet.
    dirty_tail: bool,
    next_seq: u64,
    delivered: u64,
    /// The cursor's value in its file.
    stored_delivered: u64,
    options: Options,
    pending: VecDeque<Record>,
    open: HashMap<String, OpenSession>,
    last_time: Option<u64>,
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates (or empties) a file with [`FILE_MODE`].
fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn line_of(rec: &Record) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(rec).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// Notes one record in the open-session table.
fn track(open: &mut HashMap<String, OpenSession>, rec: &Record) {
    match &rec.body {
        Body::Start(s) => {
            open.insert(
                s.session_id.clone(),
                OpenSession {
                    first: rec.clone(),
                    latest: None,
                },
            );
        }
        Body::Interim(s) => match open.get_mut(&s.session_id) {
            Some(o) => o.latest = Some(rec.clone()),
            None => {
                open.insert(
                    s.session_id.clone(),
                    OpenSession {
                        first: rec.clone(),
                        latest: None,
                    },
                );
            }
        },
        Body::Stop(s) => {
            open.remove(&s.session_id);
        }
        _ => {}
    }
}

/// The Stop written at open for a session that was still open, alive until `last_time`.
fn reboot_stop(o: &OpenSession, last_time: u64) -> Body {
    let first = match &o.first.body {
        Body::Start(s) | Body::Interim(s) => s,
        _ => return Body::Stop(SessionRecord::default()),
    };
    let began = o.first.time.saturating_sub(first.session_time_s);
    let mut s = match o.latest.as_ref().map(|r| &r.body) {
        Some(Body::Interim(l)) => l.clone(),
        _ => first.clone(),
    };
    s.session_time_s = s.session_time_s.max(last_time.saturating_sub(began));
    s.terminate_cause = Some(cause::NAS_REBOOT.to_string());
    Body::Stop(s)
}

impl Journal {
    /// Opens (creating it and its directory when missing) the journal at `path`, repairs a
    /// torn last line, and appends a Stop (cause `nas-reboot`) for each session that has a
    /// Start but no Stop. Unreadable lines are counted and skipped, never fatal; only I/O
    /// errors are.
    pub fn open(path: &Path, options: Options, now_unix: u64) -> io::Result<(Journal, Recovery)> {
        let dir = parent_dir(path);
        fs::create_dir_all(dir)?;
        let new_path = suffixed(path, ".new");
        if new_path.exists() {
            if path.exists() {
                fs::remove_file(&new_path)?;
            } else {
                // A rotation stopped between its two renames: finish it.
                fs::rename(&new_path, path)?;
                sync_dir(dir)?;
            }
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .open(path)?;
        if !existed {
            sync_dir(dir)?;
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;

        let mut recovery = Recovery::default();
        let mut records = Vec::new();
        let mut max_seq = 0u64;
        let mut good_len = data.len();
        let mut complete_tail = false;
        let mut start = 0usize;
        let mut lineno = 0usize;
        while start < data.len() {
            lineno += 1;
            let (end, terminated) = match data[start..].iter().position(|&b| b == b'\n') {
                Some(i) => (start + i, true),
                None => (data.len(), false),
            };
            let line = &data[start..end];
            if !line.iter().all(u8::is_ascii_whitespace) {
                if let Ok(rec) = serde_json::from_slice::<Record>(line) {
                    max_seq = max_seq.max(rec.seq);
                    records.push(rec);
                    complete_tail = !terminated;
                } else if let Ok(s) = serde_json::from_slice::<SeqOnly>(line) {
                    max_seq = max_seq.max(s.seq);
                    recovery.unknown_lines += 1;
                    complete_tail = !terminated;
                    tracing::warn!(
                        line = lineno,
                        "accounting journal: a record of unknown kind"
                    );
                } else {
                    recovery.corrupt_lines += 1;
                    if terminated {
                        tracing::warn!(line = lineno, "accounting journal: skipping a bad line");
                    } else {
                        recovery.torn_tail = true;
                        good_len = start;
                        tracing::warn!(line = lineno, "accounting journal: cutting a torn line");
                    }
                }
            }
            start = end + 1;
        }
        if recovery.torn_tail {
            file.set_len(good_len as u64)?;
            file.sync_data()?;
        } else if complete_tail {
            // A whole record lacking only its newline.
            file.write_all(b"\n")?;
            file.sync_data()?;
            good_len += 1;
        }

        let cursor_path = suffixed(path, ".delivered");
        let stored = match fs::read_to_string(&cursor_path) {
            Ok(s) => s.trim().parse::<u64>().unwrap_or_else(|_| {
                tracing::error!("accounting journal: unreadable delivery cursor; resending");
                0
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };

        let mut open = HashMap::new();
        for rec in &records {
            track(&mut open, rec);
        }
        recovery.records = records.len();
        recovery.last_time = records.iter().map(|r| r.time).max();
        recovery.boot_stamp = match recovery.last_time {
            Some(t) => now_unix.max(t.saturating_add(1)),
            None => now_unix,
        };
        let mut pending: Vec<Record> = if options.forwarding {
            records.into_iter().filter(|r| r.seq > stored).collect()
        } else {
            Vec::new()
        };
        pending.sort_by_key(|r| r.seq);

        let last_seq = max_seq.max(stored);
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
            len: good_len as u64,
            base_len: 0,
            dirty_tail: false,
            next_seq: last_seq.saturating_add(1),
            delivered: if options.forwarding { stored } else { last_seq },
            stored_delivered: stored,
            options,
            pending: pending.into(),
            open,
            last_time: recovery.last_time,
        };

        let mut stale: Vec<OpenSession> = journal.open.values().cloned().collect();
        stale.sort_by_key(|o| o.first.seq);
        let alive_until = recovery.last_time.unwrap_or(now_unix);
        for o in &stale {
            let stop = reboot_stop(o, alive_until);
            recovery.closed.push(journal.append(stop, now_unix)?);
        }
        journal.persist_cursor()?;
        Ok((journal, recovery))
    }

    /// Appends one record and returns it once it is on disk (fdatasync). On error nothing was
    /// written (a partial line is cut off) and the sequence number is not used.
    pub fn append(&mut self, body: Body, now_unix: u64) -> io::Result<Record> {
        let rec = Record {
            seq: self.next_seq,
            time: now_unix,
            body,
        };
        let line = line_of(&rec)?;
        if self.dirty_tail {
            self.file.set_len(self.len)?;
            self.dirty_tail = false;
        }
        if let Err(e) = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
        {
            if self.file.set_len(self.len).is_err() {
                self.dirty_tail = true;
            }
            return Err(e);
        }
        self.len += line.len() as u64;
        self.next_seq = self.next_seq.saturating_add(1);
        self.last_time = Some(now_unix);
        track(&mut self.open, &rec);
        if self.options.forwarding {
            self.pending.push_back(rec.clone());
        } else {
            self.delivered = rec.seq;
        }
        self.maybe_rotate();
        Ok(rec)
    }

    /// The oldest record not yet delivered.
    pub fn next_pending(&self) -> Option<&Record> {
        self.pending.front()
    }

    /// Every record not yet delivered, oldest first. Empty when not forwarding.
    pub fn pending(&self) -> Vec<Record> {
        self.pending.iter().cloned().collect()
    }

    /// How many records are not yet delivered.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Notes that every record up to `seq` has been delivered, durably. Delivery is in order:
    /// the records before `seq` count as delivered too. In memory the cursor moves even when
    /// storing it fails (the error is returned); after a restart those records are sent again.
    pub fn mark_delivered(&mut self, seq: u64) -> io::Result<()> {
        let seq = seq.min(self.next_seq.saturating_sub(1));
        if seq <= self.delivered {
            return Ok(());
        }
        while self.pending.front().is_some_and(|r| r.seq <= seq) {
            self.pending.pop_front();
        }
        self.delivered = seq;
        self.persist_cursor()?;
        self.maybe_rotate();
        Ok(())
    }

    /// The delivery cursor: every record up to this `seq` has been delivered.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The `seq` the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many sessions have a Start and no Stop.
    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores the cursor (when not forwarding it stands at the last record) and closes.
    pub fn close(mut self) -> io::Result<()> {
        self.persist_cursor()
    }

    fn persist_cursor(&mut self) -> io::Result<()> {
        if self.delivered == self.stored_delivered {
            return Ok(());
        }
        let cursor = suffixed(&self.path, ".delivered");
        let tmp = suffixed(&self.path, ".delivered.tmp");
        {
            let mut f = create(&tmp)?;
            writeln!(f, "{}", self.delivered)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &cursor)?;
        sync_dir(parent_dir(&self.path))?;
        self.stored_delivered = self.delivered;
        Ok(())
    }

    fn maybe_rotate(&mut self) {
        if self.len.saturating_sub(self.base_len) < self.options.rotate_bytes
            || !self.pending.is_empty()
        {
            return;
        }
        if let Err(e) = self.rotate() {
            tracing::warn!(error = %e, "accounting journal: rotation failed");
        }
    }

    /// Moves the journal to `PATH.1` and starts a new one holding the open sessions' records.
    fn rotate(&mut self) -> io::Result<()> {
        // The cursor carries the sequence numbers over when no session is open.
        self.delivered = self.next_seq.saturating_sub(1);
        self.persist_cursor()?;
        let mut carried: Vec<&OpenSession> = self.open.values().collect();
        carried.sort_by_key(|o| o.first.seq);
        let mut content = Vec::new();
        for o in carried {
            content.extend(line_of(&o.first)?);
            if let Some(l) = &o.latest {
                content.extend(line_of(l)?);
            }
        }
        let new_path = suffixed(&self.path, ".new");
        {
            let mut f = create(&new_path)?;
            f.write_all(&content)?;
            f.sync_all()?;
        }
        let old_path = suffixed(&self.path, ".1");
        fs::rename(&self.path, &old_path)?;
        if let Err(e) = fs::rename(&new_path, &self.path) {
            // Put the journal back so appends keep going to `PATH`.
            fs::rename(&old_path, &self.path)?;
            return Err(e);
        }
        sync_dir(parent_dir(&self.path))?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.len = content.len() as u64;
        self.base_len = self.len;
        self.dirty_tail = false;
        tracing::info!(path = %self.path.display(), "accounting journal rotated");
        Ok(())
    }
}
