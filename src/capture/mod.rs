//! Packet capture of PPP lines, for `nasctl capture`.
//!
//! A session loop owns a [`CaptureTap`] and [offers](CaptureTap::offer) it every frame it
//! receives from or sends to the line. The tap hands copies to whoever has
//! [subscribed](CaptureTap::subscribe) (the control server, on behalf of `nasctl`), and
//! [`pcap`] writes them in the libpcap format.
//!
//! The tap never gets in the way of the session:
//!
//! * with no subscriber, [`offer`](CaptureTap::offer) is one atomic load: no lock, no copy,
//!   no clock read;
//! * each subscriber has a bounded queue; when it is full (a slow reader, a stuck socket),
//!   the frame is dropped for that subscriber and counted — the producer never waits and
//!   memory stays bounded;
//! * a subscriber that went away is forgotten at the next offer.

pub mod pcap;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::mpsc;

/// Which way a frame went, seen from nasd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from the caller (the line's input).
    Rx,
    /// Sent to the caller (the line's output).
    Tx,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// When the tap saw it.
    pub timestamp: SystemTime,
    /// Which way it went.
    pub direction: Direction,
    /// The PPP frame as decoded from the line or about to be encoded onto it: no flags, no
    /// stuffing, no FCS (see [`pcap::encapsulate`]).
    pub frame: Vec<u8>,
}

/// The queue length of [`CaptureTap::subscribe`].
pub const DEFAULT_QUEUE: usize = 1024;

/// A bounded, non-blocking fan-out of a line's frames to capture subscribers. Cheap to
/// clone: clones share their subscribers.
#[derive(Debug, Clone, Default)]
pub struct CaptureTap {
    inner: Arc<TapInner>,
}

#[derive(Debug, Default)]
struct TapInner {
    /// The number of entries in `subscribers` (read without the lock).
    active: AtomicUsize,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Frames dropped for any subscriber, since the tap was made.
    dropped: AtomicU64,
}

#[derive(Debug)]
struct Subscriber {
    tx: mpsc::Sender<CapturedFrame>,
    dropped: Arc<AtomicU64>,
    max_frame: usize,
}

impl CaptureTap {
    /// A tap with no subscriber.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when someone is listening (the session may skip work that only serves capture).
    pub fn is_active(&self) -> bool {
        self.inner.active.load(Ordering::Acquire) > 0
    }

    /// The number of subscribers.
    pub fn subscribers(&self) -> usize {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Frames dropped so far because a subscriber's queue was full (each subscriber that
    /// missed a frame counts once).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Hands a copy of `frame` to every subscriber, stamped with the current time. Never
    /// blocks: a subscriber whose queue is full misses the frame (counted).
    pub fn offer(&self, direction: Direction, frame: &[u8]) {
        if self.is_active() {
            self.offer_at(SystemTime::now(), direction, frame);
        }
    }

    /// [`offer`](Self::offer) with a given timestamp.
    pub fn offer_at(&self, timestamp: SystemTime, direction: Direction, frame: &[u8]) {
        if !self.is_active() {
            return;
        }
        let mut subs = self.lock();
        subs.retain(|s| {
            if s.tx.is_closed() {
                return false;
            }
            let permit = match s.tx.try_reserve() {
                Ok(permit) => permit,
                Err(mpsc::error::TrySendError::Full(())) => {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Err(mpsc::error::TrySendError::Closed(())) => return false,
            };
            let kept = &frame[..frame.len().min(s.max_frame)];
            permit.send(CapturedFrame {
                timestamp,
                direction,
                frame: kept.to_vec(),
            });
            true
        });
        self.inner.active.store(subs.len(), Ordering::Release);
    }

    /// A new subscriber with a queue of [`DEFAULT_QUEUE`] frames, each kept whole.
    pub fn subscribe(&self) -> CaptureReceiver {
        self.subscribe_with(DEFAULT_QUEUE, usize::MAX)
    }

    /// A new subscriber with a queue of `queue` frames (at least 1), each cut to
    /// `max_frame` bytes (a snapshot length).
    pub fn subscribe_with(&self, queue: usize, max_frame: usize) -> CaptureReceiver {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut subs = self.lock();
        subs.push(Subscriber {
            tx,
            dropped: Arc::clone(&dropped),
            max_frame,
        });
        self.inner.active.store(subs.len(), Ordering::Release);
        CaptureReceiver { rx, dropped }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Subscriber>> {
        // Nothing is left half-done under this lock, so a poisoned one is still consistent.
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The receiving end of one capture subscription. Dropping it unsubscribes.
#[derive(Debug)]
pub struct CaptureReceiver {
    rx: mpsc::Receiver<CapturedFrame>,
    dropped: Arc<AtomicU64>,
}

impl CaptureReceiver {
    /// The next frame; `None` once every clone of the tap is gone.
    pub async fn recv(&mut self) -> Option<CapturedFrame> {
        self.rx.recv().await
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Result<CapturedFrame, mpsc::error::TryRecvError> {
        self.rx.try_recv()
    }

    /// Frames this subscriber missed because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn without_subscribers_nothing_is_kept() {
        let tap = CaptureTap::new();
        assert!(!tap.is_active());
        for _ in 0..10_000 {
            tap.offer(Direction::Rx, &[0xc0, 0x21, 1, 1, 0, 4]);
        }
        assert_eq!(tap.dropped(), 0);
        assert_eq!(tap.subscribers(), 0);
    }

    #[test]
    fn subscribers_get_copies_in_order() {
        let tap = CaptureTap::new();
        let mut a = tap.subscribe();
        let mut b = tap.clone().subscribe_with(8, 3);
        assert_eq!(tap.subscribers(), 2);
        tap.offer_at(at(1), Direction::Rx, &[1, 2, 3, 4]);
        tap.offer_at(at(2), Direction::Tx, &[5]);
        let f = a.try_recv().unwrap();
        assert_eq!(
            f,
            CapturedFrame {
                timestamp: at(1),
                direction: Direction::Rx,
                frame: vec![1, 2, 3, 4]
            }
        );
        assert_eq!(a.try_recv().unwrap().frame, [5]);
        assert!(a.try_recv().is_err());
        assert_eq!(b.try_recv().unwrap().frame, [1, 2, 3], "cut to max_frame");
        let g = b.try_recv().unwrap();
        assert_eq!((g.timestamp, g.direction), (at(2), Direction::Tx));
    }

    #[test]
    fn a_slow_subscriber_loses_frames_and_the_producer_never_waits() {
        let tap = CaptureTap::new();
        let mut slow = tap.subscribe_with(4, usize::MAX);
        let mut fast = tap.subscribe_with(1000, usize::MAX);
        // Runs on the test thread with no runtime: a blocking send would never return.
        for i in 0..100u8 {
            tap.offer_at(at(u64::from(i)), Direction::Rx, &[i]);
        }
        assert_eq!(slow.dropped(), 96);
        assert_eq!(fast.dropped(), 0);
        assert_eq!(tap.dropped(), 96);
        let got: Vec<u8> = std::iter::from_fn(|| slow.try_recv().ok())
            .map(|f| f.frame[0])
            .collect();
        assert_eq!(
            got,
            [0, 1, 2, 3],
            "the oldest frames are kept, later ones dropped"
        );
        assert_eq!(std::iter::from_fn(|| fast.try_recv().ok()).count(), 100);
        // With room again, the slow subscriber gets frames again.
        tap.offer_at(at(200), Direction::Tx, &[200]);
        assert_eq!(slow.try_recv().unwrap().frame, [200]);
    }

    #[test]
    fn a_dropped_receiver_unsubscribes() {
        let tap = CaptureTap::new();
        let gone = tap.subscribe();
        let mut kept = tap.subscribe();
        drop(gone);
        tap.offer_at(at(1), Direction::Rx, &[1]);
        assert_eq!(tap.subscribers(), 1);
        assert_eq!(kept.try_recv().unwrap().frame, [1]);
        drop(kept);
        tap.offer_at(at(2), Direction::Rx, &[2]);
        assert!(!tap.is_active());
    }

    #[tokio::test]
    async fn recv_ends_when_the_tap_is_gone() {
        let tap = CaptureTap::new();
        let mut rx = tap.subscribe();
        let producer = tap.clone();
        let task = tokio::spawn(async move {
            for i in 0..3u8 {
                producer.offer(Direction::Tx, &[i]);
                tokio::task::yield_now().await;
            }
        });
        task.await.unwrap();
        drop(tap);
        let mut frames = Vec::new();
        while let Some(f) = rx.recv().await {
            assert!(f.timestamp > SystemTime::UNIX_EPOCH);
            frames.push(f.frame[0]);
        }
        assert_eq!(frames, [0, 1, 2]);
    }
}
