//! Who is online: one entry per live session, for accounting, RADIUS Disconnect/CoA
//! requests and the control socket. An entry exists from the call's first PPP frame to the
//! session's end.

use crate::driver::session::SessionCommand;
use crate::proto::link::LinkStats;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How far a session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// LCP and authentication.
    Starting,
    /// IPCP is open: the session carries traffic.
    Up,
}

impl Stage {
    /// A short name for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Starting => "starting",
            Stage::Up => "up",
        }
    }
}

/// One live session.
#[derive(Debug, Clone)]
pub struct SessionEntry {
    /// nasd's session number.
    pub id: u64,
    /// The Acct-Session-Id (unique across restarts).
    pub acct_id: String,
    /// The port's name.
    pub port: String,
    /// The port's NAS-Port number.
    pub nas_port: u32,
    /// The authenticated user ("" until known).
    pub user: String,
    /// The assigned address, once authorised.
    pub ip: Option<Ipv4Addr>,
    /// The caller's number, when the modem reported it.
    pub caller: Option<String>,
    /// The connect speed, when the modem reported it.
    pub speed: Option<u32>,
    /// How the user authenticated (`pap`, `chap`, `pam`, `radius`, `none`).
    pub auth: Option<&'static str>,
    /// How far the session has come.
    pub stage: Stage,
    /// When the call reached PPP.
    pub started: SystemTime,
    /// When IPCP opened.
    pub up_at: Option<SystemTime>,
    /// Cancelling it ends the session with reason admin.
    pub kill: CancellationToken,
    /// Requests to the running session.
    pub control: mpsc::Sender<SessionCommand>,
}

impl SessionEntry {
    /// The link's counters now (zero when the session does not answer within a second).
    pub async fn stats(&self) -> LinkStats {
        let (tx, rx) = oneshot::channel();
        if self.control.send(SessionCommand::Stats(tx)).await.is_err() {
            return LinkStats::default();
        }
        tokio::time::timeout(Duration::from_secs(1), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }

    /// Seconds since IPCP opened (0 before).
    pub fn session_time(&self, now: SystemTime) -> u64 {
        self.up_at
            .and_then(|t| now.duration_since(t).ok())
            .map_or(0, |d| d.as_secs())
    }
}

/// Which sessions a request means; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// nasd's session number.
    pub id: Option<u64>,
    /// The Acct-Session-Id.
    pub acct_id: Option<String>,
    /// The user name.
    pub user: Option<String>,
    /// The assigned address.
    pub ip: Option<Ipv4Addr>,
    /// The port's name.
    pub port: Option<String>,
    /// The port's NAS-Port number.
    pub nas_port: Option<u32>,
    /// The caller's number.
    pub caller: Option<String>,
}

impl Selector {
    /// Whether the selector names anything at all (an empty one matches nothing).
    pub fn is_empty(&self) -> bool {
        *self == Selector::default()
    }

    /// Whether `e` is one of the sessions meant.
    pub fn matches(&self, e: &SessionEntry) -> bool {
        !self.is_empty()
            && self.id.is_none_or(|v| v == e.id)
            && self.acct_id.as_ref().is_none_or(|v| *v == e.acct_id)
            && self.user.as_ref().is_none_or(|v| *v == e.user)
            && self.ip.is_none_or(|v| Some(v) == e.ip)
            && self.port.as_ref().is_none_or(|v| *v == e.port)
            && self.nas_port.is_none_or(|v| v == e.nas_port)
            && self
                .caller
                .as_ref()
                .is_none_or(|v| Some(v) == e.caller.as_ref())
    }
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u64, SessionEntry>>,
}

impl Registry {
    /// Adds a session.
    pub fn insert(&self, e: SessionEntry) {
        self.lock().insert(e.id, e);
    }

    /// Changes a session's entry, if it is still there.
    pub fn update(&self, id: u64, f: impl FnOnce(&mut SessionEntry)) {
        if let Some(e) = self.lock().get_mut(&id) {
            f(e);
        }
    }

    /// Removes a session; its entry as it was.
    pub fn remove(&self, id: u64) -> Option<SessionEntry> {
        self.lock().remove(&id)
    }

    /// One session's entry.
    pub fn get(&self, id: u64) -> Option<SessionEntry> {
        self.lock().get(&id).cloned()
    }

    /// Every session `sel` matches, oldest first.
    pub fn select(&self, sel: &Selector) -> Vec<SessionEntry> {
        let mut v: Vec<_> = self
            .lock()
            .values()
            .filter(|e| sel.matches(e))
            .cloned()
            .collect();
        v.sort_by_key(|e| e.id);
        v
    }

    /// Every session, oldest first.
    pub fn all(&self) -> Vec<SessionEntry> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by_key(|e| e.id);
        v
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SessionEntry>> {
        // A panic elsewhere while holding the lock leaves the map usable.
        super::lock(&self.sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, user: &str, ip: [u8; 4], port: &str) -> SessionEntry {
        let (control, _) = mpsc::channel(1);
        SessionEntry {
            id,
            acct_id: format!("A-{id}"),
            port: port.into(),
            nas_port: id as u32,
            user: user.into(),
            ip: Some(Ipv4Addr::from(ip)),
            caller: None,
            speed: None,
            auth: Some("pap"),
            stage: Stage::Up,
            started: SystemTime::UNIX_EPOCH,
            up_at: None,
            kill: CancellationToken::new(),
            control,
        }
    }

    #[test]
    fn selectors_match_every_given_field() {
        let r = Registry::default();
        r.insert(entry(1, "alice", [10, 0, 0, 100], "ttyS0"));
        r.insert(entry(2, "bob", [10, 0, 0, 101], "ttyS1"));
        r.insert(entry(3, "alice", [10, 0, 0, 102], "ttyS2"));
        let ids = |s: Selector| r.select(&s).iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(
            ids(Selector {
                user: Some("alice".into()),
                ..Default::default()
            }),
            [1, 3]
        );
        assert_eq!(
            ids(Selector {
                user: Some("alice".into()),
                port: Some("ttyS2".into()),
                ..Default::default()
            }),
            [3]
        );
        assert_eq!(
            ids(Selector {
                ip: Some(Ipv4Addr::new(10, 0, 0, 101)),
                ..Default::default()
            }),
            [2]
        );
        assert_eq!(
            ids(Selector {
                acct_id: Some("A-2".into()),
                user: Some("alice".into()),
                ..Default::default()
            }),
            Vec::<u64>::new()
        );
        // Nothing named: nothing matched (never "everyone").
        assert!(ids(Selector::default()).is_empty());
        assert_eq!(r.len(), 3);
        r.remove(2);
        assert_eq!(r.all().len(), 2);
    }
}
