//! What the control socket reports besides the session registry: each port's latest status
//! and capture tap, and daemon-wide counters (sessions, authentication failures, the
//! traffic of sessions that have ended).

use super::lock;
use crate::capture::CaptureTap;
use crate::control::Traffic;
use crate::driver::port::PortStatus;
use crate::proto::link::LinkStats;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// One configured port.
#[derive(Debug, Clone)]
pub(crate) struct PortEntry {
    /// The latest status the port task reported (`None` before the first).
    pub(crate) status: Option<PortStatus>,
    /// The port's capture tap, handed to each of its sessions.
    pub(crate) tap: CaptureTap,
}

/// Ports and counters.
#[derive(Debug)]
pub(crate) struct Monitor {
    /// When nasd started.
    pub(crate) started: SystemTime,
    ports: Mutex<BTreeMap<String, PortEntry>>,
    sessions_total: AtomicU64,
    auth_failures: AtomicU64,
    ended: Mutex<Traffic>,
    /// Bumped at every port change, so the SIP bridge re-reads the states only then.
    version: AtomicU64,
}

impl Default for Monitor {
    fn default() -> Self {
        Self {
            started: SystemTime::now(),
            ports: Mutex::default(),
            sessions_total: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            ended: Mutex::default(),
            version: AtomicU64::new(0),
        }
    }
}

impl Monitor {
    /// A port is (re)started: its entry, new or kept; the tap for its sessions.
    pub(crate) fn add_port(&self, name: &str) -> CaptureTap {
        self.version.fetch_add(1, Ordering::Relaxed);
        lock(&self.ports)
            .entry(name.to_string())
            .or_insert_with(|| PortEntry {
                status: None,
                tap: CaptureTap::new(),
            })
            .tap
            .clone()
    }

    /// A port was removed (reload): it is no longer reported, and captures of it end once
    /// its task and sessions are gone.
    pub(crate) fn remove_port(&self, name: &str) {
        self.version.fetch_add(1, Ordering::Relaxed);
        lock(&self.ports).remove(name);
    }

    /// The port's status changed (ignored for a port no longer configured).
    pub(crate) fn set_status(&self, name: &str, status: &PortStatus) {
        if let Some(e) = lock(&self.ports).get_mut(name) {
            e.status = Some(status.clone());
        }
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever a port is added, removed or changes state.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// Every configured port, by name.
    pub(crate) fn ports(&self) -> Vec<(String, PortEntry)> {
        lock(&self.ports)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The port's capture tap, if it is configured.
    pub(crate) fn tap(&self, name: &str) -> Option<CaptureTap> {
        lock(&self.ports).get(name).map(|e| e.tap.clone())
    }

    /// A call reached PPP.
    pub(crate) fn session_started(&self) {
        self.sessions_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions started since nasd started.
    pub(crate) fn sessions_total(&self) -> u64 {
        self.sessions_total.load(Ordering::Relaxed)
    }

    /// An authentication was refused.
    pub(crate) fn auth_failed(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Refused authentications since nasd started.
    pub(crate) fn auth_failures(&self) -> u64 {
        self.auth_failures.load(Ordering::Relaxed)
    }

    /// A session ended with these final counters.
    pub(crate) fn session_ended(&self, stats: &LinkStats) {
        lock(&self.ended).add(stats);
    }

    /// The counters of every session that has ended.
    pub(crate) fn ended(&self) -> Traffic {
        *lock(&self.ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::port::PortState;

    fn status(state: PortState) -> PortStatus {
        PortStatus {
            state,
            calls: 0,
            last_call: None,
            last_error: None,
            worked: false,
        }
    }

    #[test]
    fn ports_keep_their_latest_status_until_removed() {
        let m = Monitor::default();
        let tap = m.add_port("m0");
        m.add_port("m1");
        m.set_status("m0", &status(PortState::Idle));
        m.set_status("gone", &status(PortState::Idle));
        let ports = m.ports();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].1.status.as_ref().unwrap().state, PortState::Idle);
        assert!(ports[1].1.status.is_none());
        // Restarting a port keeps its tap (captures go on).
        let _rx = tap.subscribe();
        assert!(m.add_port("m0").is_active());
        m.remove_port("m0");
        assert!(m.tap("m0").is_none());
        m.set_status("m0", &status(PortState::Connected));
        assert_eq!(m.ports().len(), 1);
    }

    #[test]
    fn ended_sessions_add_up() {
        let m = Monitor::default();
        let s = LinkStats {
            rx_bytes: 10,
            decoder: crate::proto::hdlc::DecoderStats {
                bad_fcs: 2,
                ..Default::default()
            },
            ..Default::default()
        };
        m.session_ended(&s);
        m.session_ended(&s);
        m.session_started();
        m.auth_failed();
        assert_eq!(m.ended().rx_bytes, 20);
        assert_eq!(m.ended().bad_fcs, 4);
        assert_eq!((m.sessions_total(), m.auth_failures()), (1, 1));
    }
}
