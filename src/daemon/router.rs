//! The datapath: one TUN device for all sessions, and a map from assigned address to the
//! session that owns it.
//!
//! Packets from the TUN go to the session that owns their destination. Packets from a line
//! go to the TUN only when their source is the session's own address (anti-spoofing), and,
//! with `isolate_clients`, not when their destination is another dial-in user. Everything
//! dropped is counted by cause.

use crate::driver::tun::Tun;
use etherparse::Ipv4HeaderSlice;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Packets and drops on the datapath.
#[derive(Debug, Default)]
pub struct DatapathStats {
    /// Packets from the TUN delivered to a session.
    pub to_sessions: AtomicU64,
    /// Packets from sessions written to the TUN.
    pub to_tun: AtomicU64,
    /// Packets from the TUN for an address no session owns.
    pub no_session: AtomicU64,
    /// Packets from a line whose source was not the session's address.
    pub spoofed: AtomicU64,
    /// Packets between two dial-in users, dropped with `isolate_clients`.
    pub isolated: AtomicU64,
    /// Packets that are not IPv4 or whose header is broken.
    pub malformed: AtomicU64,
    /// Packets for a session whose queue was full.
    pub session_backlog: AtomicU64,
}

/// A plain copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatapathSnapshot {
    /// See [`DatapathStats::to_sessions`].
    pub to_sessions: u64,
    /// See [`DatapathStats::to_tun`].
    pub to_tun: u64,
    /// See [`DatapathStats::no_session`].
    pub no_session: u64,
    /// See [`DatapathStats::spoofed`].
    pub spoofed: u64,
    /// See [`DatapathStats::isolated`].
    pub isolated: u64,
    /// See [`DatapathStats::malformed`].
    pub malformed: u64,
    /// See [`DatapathStats::session_backlog`].
    pub session_backlog: u64,
}

/// The shared TUN and the address map.
#[derive(Debug)]
pub struct Router {
    tun: Arc<Tun>,
    isolate: bool,
    routes: Mutex<HashMap<Ipv4Addr, mpsc::Sender<Vec<u8>>>>,
    stats: DatapathStats,
}

impl Router {
    /// A router over `tun`.
    pub fn new(tun: Arc<Tun>, isolate_clients: bool) -> Arc<Self> {
        Arc::new(Self {
            tun,
            isolate: isolate_clients,
            routes: Mutex::default(),
            stats: DatapathStats::default(),
        })
    }

    /// The TUN device.
    pub fn tun(&self) -> &Tun {
        &self.tun
    }

    /// Packets for `ip` now go to `inbox`.
    pub fn register(&self, ip: Ipv4Addr, inbox: mpsc::Sender<Vec<u8>>) {
        self.routes.lock().expect("routes").insert(ip, inbox);
    }

    /// `ip` no longer belongs to a session.
    pub fn unregister(&self, ip: Ipv4Addr) {
        self.routes.lock().expect("routes").remove(&ip);
    }

    /// Sessions with an address.
    pub fn sessions(&self) -> usize {
        self.routes.lock().expect("routes").len()
    }

    /// The counters.
    pub fn stats(&self) -> DatapathSnapshot {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DatapathSnapshot {
            to_sessions: g(&s.to_sessions),
            to_tun: g(&s.to_tun),
            no_session: g(&s.no_session),
            spoofed: g(&s.spoofed),
            isolated: g(&s.isolated),
            malformed: g(&s.malformed),
            session_backlog: g(&s.session_backlog),
        }
    }

    /// Reads the TUN until `cancel`, handing each packet to the session that owns its
    /// destination.
    pub async fn run_tun_reader(self: Arc<Self>, cancel: CancellationToken) {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = tokio::select! {
                r = self.tun.recv(&mut buf) => match r {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::error!(error = %e, "reading the TUN device failed");
                        return;
                    }
                },
                _ = cancel.cancelled() => return,
            };
            self.deliver(&buf[..n]);
        }
    }

    fn deliver(&self, packet: &[u8]) {
        let Ok(h) = Ipv4HeaderSlice::from_slice(packet) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let dst = h.destination_addr();
        let inbox = self.routes.lock().expect("routes").get(&dst).cloned();
        match inbox {
            Some(tx) => match tx.try_send(packet.to_vec()) {
                Ok(()) => {
                    self.stats.to_sessions.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.stats.session_backlog.fetch_add(1, Ordering::Relaxed);
                }
            },
            None => {
                self.stats.no_session.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Checks a packet a session sent; true when it may go to the TUN.
    pub fn admit(&self, session_ip: Option<Ipv4Addr>, packet: &[u8]) -> bool {
        let Ok(h) = Ipv4HeaderSlice::from_slice(packet) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        if Some(h.source_addr()) != session_ip {
            self.stats.spoofed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(src = %h.source_addr(), session = ?session_ip, "spoofed source dropped");
            return false;
        }
        if self.isolate
            && self
                .routes
                .lock()
                .expect("routes")
                .contains_key(&h.destination_addr())
        {
            self.stats.isolated.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Forwards what a session sends to the TUN, after [`Router::admit`], until the session
    /// ends (its sender is dropped). `ip` is filled in once the session has an address.
    pub async fn run_uplink(
        self: Arc<Self>,
        ip: Arc<Mutex<Option<Ipv4Addr>>>,
        mut rx: mpsc::Receiver<Vec<u8>>,
    ) {
        while let Some(p) = rx.recv().await {
            let session_ip = *ip.lock().expect("ip");
            if self.admit(session_ip, &p) {
                match self.tun.send(&p).await {
                    Ok(_) => {
                        self.stats.to_tun.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::debug!(error = %e, "writing to the TUN device failed"),
                }
            }
        }
    }
}
