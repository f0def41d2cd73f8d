//! Tests of the writer thread and the forwarder: order, exactly-once delivery in a run,
//! back-off, records written while the server is down, shutdown.

use super::*;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const T0: u64 = 1_767_225_600;
/// Only a guard against a hung test; nothing waits for it to pass.
const GUARD: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Attempt(u64),
    Delivered(u64),
}

/// A server that fails `fail` times, or while `down`, then acknowledges. Every attempt moves
/// the clock one second on.
struct Fake {
    fail: AtomicUsize,
    down: AtomicBool,
    clock: Arc<AtomicU64>,
    attempts: Mutex<Vec<(u64, Duration)>>,
    delivered: Mutex<Vec<(u64, Duration)>>,
    events: mpsc::UnboundedSender<Event>,
}

impl Deliver for Fake {
    fn deliver<'a>(
        &'a self,
        rec: &'a Record,
        delay: Duration,
    ) -> BoxFuture<'a, Result<(), DeliverError>> {
        Box::pin(async move {
            self.clock.fetch_add(1, Ordering::SeqCst);
            self.attempts.lock().unwrap().push((rec.seq, delay));
            let _ = self.events.send(Event::Attempt(rec.seq));
            let failing = self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing || self.down.load(Ordering::SeqCst) {
                return Err(DeliverError("no answer".into()));
            }
            self.delivered.lock().unwrap().push((rec.seq, delay));
            let _ = self.events.send(Event::Delivered(rec.seq));
            Ok(())
        })
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    fake: Arc<Fake>,
    events: mpsc::UnboundedReceiver<Event>,
    acct: Accounting,
}

fn rig(fail: usize, down: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounting.jsonl");
    let clock = Arc::new(AtomicU64::new(T0));
    let (tx, events) = mpsc::unbounded_channel();
    let fake = Arc::new(Fake {
        fail: AtomicUsize::new(fail),
        down: AtomicBool::new(down),
        clock: clock.clone(),
        attempts: Mutex::default(),
        delivered: Mutex::default(),
        events: tx,
    });
    let (journal, _) = Journal::open(&path, Options::default(), T0).unwrap();
    let backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(4),
    };
    let read: Clock = Arc::new(move || clock.load(Ordering::SeqCst));
    let deliver: Arc<dyn Deliver> = fake.clone();
    let acct = Accounting::start(journal, Some(deliver), backoff, read).unwrap();
    Rig {
        _dir: dir,
        path,
        fake,
        events,
        acct,
    }
}

impl Rig {
    /// Waits until `n` more events matching `want` have been seen.
    async fn wait_for(&mut self, n: usize, want: fn(Event) -> bool) {
        let mut seen = 0;
        tokio::time::timeout(GUARD, async {
            while seen < n {
                let e = self.events.recv().await.expect("deliverer gone");
                if want(e) {
                    seen += 1;
                }
            }
        })
        .await
        .expect("events did not arrive");
    }

    fn delivered_seqs(&self) -> Vec<u64> {
        let d = self.fake.delivered.lock().unwrap();
        d.iter().map(|(s, _)| *s).collect()
    }
}

fn start(id: &str) -> Body {
    Body::Start(SessionRecord {
        session_id: id.into(),
        user: "bob".into(),
        port: "ttyS0".into(),
        ..SessionRecord::default()
    })
}

fn is_delivered(e: Event) -> bool {
    matches!(e, Event::Delivered(_))
}

fn is_attempt(e: Event) -> bool {
    matches!(e, Event::Attempt(_))
}

#[tokio::test]
async fn failures_are_retried_in_order_and_each_record_delivered_once() {
    let mut r = rig(3, false);
    for i in 0..5 {
        let rec = r.acct.record(start(&format!("S-{i}"))).await.unwrap();
        assert_eq!(rec.seq, i + 1);
    }
    r.wait_for(5, is_delivered).await;
    assert_eq!(r.delivered_seqs(), [1, 2, 3, 4, 5]);
    let attempts = r.fake.attempts.lock().unwrap().clone();
    let first: Vec<Duration> = attempts.iter().filter(|a| a.0 == 1).map(|a| a.1).collect();
    assert_eq!(
        first.len(),
        4,
        "three failures, then the delivery: {attempts:?}"
    );
    assert!(
        first.windows(2).all(|w| w[0] < w[1]),
        "delay grows: {first:?}"
    );
    assert_eq!(
        r.acct.clone().shutdown(GUARD).await.unwrap(),
        0,
        "none left"
    );

    let (j, rec) = Journal::open(&r.path, Options::default(), T0 + 100).unwrap();
    assert_eq!((j.delivered(), rec.records, rec.closed.len()), (5, 5, 5));
    assert_eq!(
        j.pending(),
        rec.closed,
        "only the sessions' reboot Stops are new"
    );
}

#[tokio::test]
async fn records_written_while_down_are_all_delivered_when_the_server_returns() {
    let mut r = rig(0, true);
    for i in 0..3 {
        r.acct.record(start(&format!("D-{i}"))).await.unwrap();
    }
    r.wait_for(3, is_attempt).await;
    for i in 3..6 {
        r.acct.record(start(&format!("D-{i}"))).await.unwrap();
    }
    assert!(r.delivered_seqs().is_empty());
    assert_eq!(r.acct.pending_len().await.unwrap(), 6);
    r.fake.down.store(false, Ordering::SeqCst);
    r.acct.retry_now();
    r.wait_for(6, is_delivered).await;
    assert_eq!(r.delivered_seqs(), [1, 2, 3, 4, 5, 6]);
    let attempts = r.fake.attempts.lock().unwrap().clone();
    let mut order: Vec<u64> = attempts.iter().map(|a| a.0).collect();
    order.dedup();
    assert_eq!(order, [1, 2, 3, 4, 5, 6], "never skipped nor reordered");
    let delivered = r.fake.delivered.lock().unwrap().clone();
    assert!(
        delivered[0].1 >= Duration::from_secs(3),
        "Acct-Delay-Time counts the outage"
    );
    assert_eq!(r.acct.clone().shutdown(GUARD).await.unwrap(), 0);
}

#[tokio::test]
async fn shutdown_while_down_keeps_the_records_for_the_next_start() {
    let mut r = rig(0, true);
    let a = r.acct.record(start("K-1")).await.unwrap();
    let b = r.acct.record(Body::AccountingOff).await.unwrap();
    r.wait_for(1, is_attempt).await;
    let other = r.acct.clone();
    let left = r
        .acct
        .clone()
        .shutdown(Duration::from_millis(20))
        .await
        .unwrap();
    assert_eq!(left, 2);
    assert!(
        other.record(Body::AccountingOn).await.is_err(),
        "closed after shutdown"
    );

    let (j, rec) = Journal::open(&r.path, Options::default(), T0 + 100).unwrap();
    let mut want = vec![a, b];
    want.extend(rec.closed.clone());
    assert_eq!(rec.closed.len(), 1, "K-1 was never stopped");
    assert_eq!(j.pending(), want);
}

#[tokio::test]
async fn concurrent_writers_get_distinct_ordered_sequence_numbers() {
    let mut r = rig(0, false);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let acct = r.acct.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for k in 0..5 {
                seqs.push(acct.record(start(&format!("C-{i}-{k}"))).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one caller's order kept"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>());
    r.wait_for(40, is_delivered).await;
    assert_eq!(r.delivered_seqs(), (1..=40).collect::<Vec<u64>>());
    assert_eq!(r.acct.clone().shutdown(GUARD).await.unwrap(), 0);
}

#[tokio::test]
async fn without_a_deliverer_records_are_only_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let options = Options {
        forwarding: false,
        ..Options::default()
    };
    let (journal, _) = Journal::open(&path, options, T0).unwrap();
    let acct = Accounting::start(journal, None, Backoff::default(), system_clock()).unwrap();
    let rec = acct.record(Body::AccountingOn).await.unwrap();
    assert!(rec.time > T0);
    assert_eq!(acct.pending_len().await.unwrap(), 0);
    assert_eq!(acct.shutdown(Duration::from_secs(1)).await.unwrap(), 0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1);
}
