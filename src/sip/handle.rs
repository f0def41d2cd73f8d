//! The running bridge as the rest of nasd sees it: queries for `nasctl sip`.

use tokio::sync::{mpsc, oneshot};

use super::view::{CallView, RegistrationView};

/// A question for the bridge task.
#[derive(Debug)]
pub enum Query {
    /// The registered contacts.
    Registrations(oneshot::Sender<Vec<RegistrationView>>),
    /// The calls in progress.
    Calls(oneshot::Sender<Vec<CallView>>),
}

/// A cheap handle on the bridge task.
#[derive(Debug, Clone)]
pub struct SipHandle {
    tx: mpsc::Sender<Query>,
    ended: Option<mpsc::UnboundedSender<String>>,
}

impl SipHandle {
    /// A handle sending queries on `tx` (the bridge task owns the receiver).
    pub fn new(tx: mpsc::Sender<Query>) -> Self {
        Self { tx, ended: None }
    }

    /// This handle, also telling the bridge on `ended` which ports' PPP sessions ended.
    pub fn with_session_ends(mut self, ended: mpsc::UnboundedSender<String>) -> Self {
        self.ended = Some(ended);
        self
    }

    /// The PPP session on `port` ended: the bridge hangs up the call on that line.
    pub fn session_ended(&self, port: &str) {
        if let Some(tx) = &self.ended {
            let _ = tx.send(port.to_string());
        }
    }

    /// The registered contacts, by account; empty if the bridge has stopped.
    pub async fn registrations(&self) -> Vec<RegistrationView> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Query::Registrations(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The calls in progress; empty if the bridge has stopped.
    pub async fn calls(&self) -> Vec<CallView> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Query::Calls(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}
