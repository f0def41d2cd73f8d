//! The tokio side: a cloneable [`Accounting`] handle, one writer thread that owns the
//! [`Journal`], and a forwarder task that delivers pending records in order.
//!
//! Delivery is at least once: a record is marked delivered only after [`Deliver::deliver`]
//! returned `Ok`, and the mark is stored at once, so only a crash (or a shutdown deadline)
//! between the server's answer and that mark sends one record twice, with the same `seq`,
//! Acct-Session-Id and status type and a larger Acct-Delay-Time.

use super::journal::Journal;
use super::record::{Body, Record};
use futures::future::BoxFuture;
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Wall-clock unix seconds. Injected so tests control record times and delays.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system's wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// A delivery that did not happen (no server answered, the server refused, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeliverError(pub String);

/// Sends records to an accounting server; the daemon implements it over RADIUS.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers one record, `delay` after it was written (Acct-Delay-Time). `Ok` means the
    /// server acknowledged it, or that this kind of record is not sent anywhere (the record
    /// then counts as delivered). Called for one record at a time, in `seq` order.
    fn deliver<'a>(
        &'a self,
        rec: &'a Record,
        delay: Duration,
    ) -> BoxFuture<'a, Result<(), DeliverError>>;
}

/// The forwarder's retry delays after a failed delivery: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay, and the delay again after a success or [`Accounting::retry_now`].
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// What the writer thread is asked to do.
enum Cmd {
    Append(Box<Body>, oneshot::Sender<io::Result<Record>>),
    NextPending(oneshot::Sender<Option<Record>>),
    Delivered(u64, oneshot::Sender<io::Result<()>>),
    PendingLen(oneshot::Sender<usize>),
    Close(oneshot::Sender<io::Result<usize>>),
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the accounting journal is closed",
    )
}

async fn ask<T>(
    tx: &mpsc::Sender<Cmd>,
    make: impl FnOnce(oneshot::Sender<T>) -> Cmd,
) -> io::Result<T> {
    let (reply, answer) = oneshot::channel();
    tx.send(make(reply)).map_err(|_| closed())?;
    answer.await.map_err(|_| closed())
}

/// The writer thread: the only code that touches the journal, one command at a time.
fn writer(mut journal: Journal, rx: mpsc::Receiver<Cmd>, clock: Clock) {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Append(body, reply) => {
                let _ = reply.send(journal.append(*body, clock()));
            }
            Cmd::NextPending(reply) => {
                let _ = reply.send(journal.next_pending().cloned());
            }
            Cmd::Delivered(seq, reply) => {
                let _ = reply.send(journal.mark_delivered(seq));
            }
            Cmd::PendingLen(reply) => {
                let _ = reply.send(journal.pending_len());
            }
            Cmd::Close(reply) => {
                let left = journal.pending_len();
                let _ = reply.send(journal.close().map(|()| left));
                return;
            }
        }
    }
    if let Err(e) = journal.close() {
        tracing::warn!(error = %e, "accounting journal: closing failed");
    }
}

struct Inner {
    tx: mpsc::Sender<Cmd>,
    wake: Arc<Notify>,
    kick: Arc<Notify>,
    /// `Some(deadline)` once shutting down.
    stop: watch::Sender<Option<Instant>>,
    forwarder: Mutex<Option<JoinHandle<()>>>,
}

/// The handle sessions use to write accounting records. Cheap to clone.
#[derive(Clone)]
pub struct Accounting {
    inner: Arc<Inner>,
}

impl Accounting {
    /// Starts the writer thread and, when `deliver` is given, the forwarder task (so this
    /// must run inside a tokio runtime). Records get their time from `clock`.
    pub fn start(
        journal: Journal,
        deliver: Option<Arc<dyn Deliver>>,
        backoff: Backoff,
        clock: Clock,
    ) -> io::Result<Accounting> {
        let (tx, rx) = mpsc::channel();
        let writer_clock = clock.clone();
        std::thread::Builder::new()
            .name("nasd-journal".into())
            .spawn(move || writer(journal, rx, writer_clock))?;
        let wake = Arc::new(Notify::new());
        let kick = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(None);
        let forwarder = deliver.map(|deliver| {
            let f = Forwarder {
                tx: tx.clone(),
                deliver,
                clock,
                wake: wake.clone(),
                kick: kick.clone(),
                stop: stop_rx,
                backoff,
            };
            tokio::spawn(f.run())
        });
        Ok(Accounting {
            inner: Arc::new(Inner {
                tx,
                wake,
                kick,
                stop,
                forwarder: Mutex::new(forwarder),
            }),
        })
    }

    /// Appends a record; it is on disk when this returns. Records from all handles are
    /// written in the order their calls reach the writer.
    pub async fn record(&self, body: Body) -> io::Result<Record> {
        let rec = ask(&self.inner.tx, |r| Cmd::Append(Box::new(body), r)).await??;
        self.inner.wake.notify_one();
        Ok(rec)
    }

    /// How many records wait for delivery.
    pub async fn pending_len(&self) -> io::Result<usize> {
        ask(&self.inner.tx, Cmd::PendingLen).await
    }

    /// Retries a failed delivery now and resets the back-off (e.g. after a server change).
    pub fn retry_now(&self) {
        self.inner.kick.notify_one();
    }

    /// Stops: the forwarder delivers what it can until `deadline` from now, then the journal
    /// is closed. Returns how many records were left undelivered (they are sent after the
    /// next start). Other handles' `record` fails afterwards.
    pub async fn shutdown(self, deadline: Duration) -> io::Result<usize> {
        let until = Instant::now() + deadline;
        self.inner.stop.send_replace(Some(until));
        let handle = self.inner.forwarder.lock().ok().and_then(|mut f| f.take());
        if let Some(mut handle) = handle {
            // The forwarder honours the deadline itself; this only guards against a stuck one.
            let grace = until + Duration::from_millis(100);
            if tokio::time::timeout_at(grace, &mut handle).await.is_err() {
                handle.abort();
            }
        }
        let left = ask(&self.inner.tx, Cmd::Close).await??;
        if left > 0 {
            tracing::warn!(left, "accounting: records left undelivered at shutdown");
        }
        Ok(left)
    }
}

/// The forwarder task's state.
struct Forwarder {
    tx: mpsc::Sender<Cmd>,
    deliver: Arc<dyn Deliver>,
    clock: Clock,
    wake: Arc<Notify>,
    kick: Arc<Notify>,
    stop: watch::Receiver<Option<Instant>>,
    backoff: Backoff,
}

impl Forwarder {
    async fn run(mut self) {
        let mut wait = self.backoff.first;
        loop {
            let drain = *self.stop.borrow_and_update();
            if drain.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            let Ok(next) = ask(&self.tx, Cmd::NextPending).await else {
                return;
            };
            let Some(rec) = next else {
                if drain.is_some() {
                    return;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = self.kick.notified() => {}
                    r = self.stop.changed() => if r.is_err() { return },
                }
                continue;
            };
            let delay = Duration::from_secs((self.clock)().saturating_sub(rec.time));
            let deliver = self.deliver.clone();
            let Some(result) = self.until_deadline(deliver.deliver(&rec, delay)).await else {
                return;
            };
            match result {
                Ok(()) => {
                    wait = self.backoff.first;
                    match ask(&self.tx, |r| Cmd::Delivered(rec.seq, r)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "accounting: storing the delivery cursor")
                        }
                        Err(_) => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(seq = rec.seq, kind = rec.body.kind(), error = %e,
                        retry_in = ?wait, "accounting: delivery failed");
                    let mut until = Instant::now() + wait;
                    if let Some(d) = drain {
                        until = until.min(d);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {
                            wait = (wait * 2).min(self.backoff.max);
                        }
                        _ = self.kick.notified() => wait = self.backoff.first,
                        r = self.stop.changed() => if r.is_err() { return },
                    }
                }
            }
        }
    }

    /// Runs one delivery; once shutting down, only until the deadline. `None`: given up.
    async fn until_deadline<T>(&mut self, fut: BoxFuture<'_, T>) -> Option<T> {
        let mut fut = pin!(fut);
        loop {
            let drain = *self.stop.borrow_and_update();
            if let Some(d) = drain {
                return tokio::time::timeout_at(d, &mut fut).await.ok();
            }
            tokio::select! {
                biased;
                r = &mut fut => return Some(r),
                r = self.stop.changed() => if r.is_err() { return None },
            }
        }
    }
}
