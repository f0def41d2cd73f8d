//! The answers to `sip-registrations` and `sip-calls`: the SIP bridge task's views, asked
//! through its [`SipHandle`].
//!
//! The control server's [`Ctx`](super::server::Ctx) needs a whole running daemon
//! (`Shared`: TUN, netlink, accounting), so the tests here drive [`answer`] directly, with a
//! handle whose queries a test task answers.

use super::Response;
use crate::sip::handle::SipHandle;
use std::time::Duration;

/// The error when nasd runs without a SIP bridge.
pub(crate) const NOT_CONFIGURED: &str =
    "the SIP bridge is not configured (no [sip] section in nasd.toml)";

/// The error when the bridge task does not answer in time.
pub(crate) const NO_ANSWER: &str = "the SIP bridge did not answer";

/// How long the bridge task may take to answer a query.
pub(super) const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// What is asked of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// Its registered contacts.
    Registrations,
    /// Its calls in progress.
    Calls,
}

/// The answer to `ask`: the bridge's views as a JSON array, or why there are none. A bridge
/// that has stopped has nothing to show (an empty array); one that does not answer within
/// `wait` is an error, so that a wedged bridge never wedges the control connection.
pub(super) async fn answer(sip: Option<&SipHandle>, ask: Ask, wait: Duration) -> Response {
    let Some(sip) = sip else {
        return Response::error(NOT_CONFIGURED);
    };
    let got = match ask {
        Ask::Registrations => tokio::time::timeout(wait, sip.registrations())
            .await
            .map(serde_json::to_value),
        Ask::Calls => tokio::time::timeout(wait, sip.calls())
            .await
            .map(serde_json::to_value),
    };
    match got {
        Ok(Ok(v)) => Response::ok(v),
        Ok(Err(e)) => Response::error(format!("internal error: {e}")),
        Err(_) => {
            tracing::warn!(query = ?ask, "control: the SIP bridge did not answer in {wait:?}");
            Response::error(NO_ANSWER)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::show::tests::{call, registration};
    use crate::sip::handle::Query;
    use crate::sip::view::{CallView, RegistrationView};
    use tokio::sync::mpsc;

    fn registrations() -> Vec<RegistrationView> {
        vec![
            registration(),
            RegistrationView {
                account: "alice".into(),
                contact: "sip:alice@198.51.100.7:40000".into(),
                source: "198.51.100.7:40000".into(),
                expires_in: 60,
                port: None,
                status: "unknown".into(),
                latency_ms: None,
                user_agent: None,
            },
        ]
    }

    fn calls() -> Vec<CallView> {
        vec![call()]
    }

    /// A handle whose queries a task answers with the canned views.
    fn bridge() -> SipHandle {
        let (tx, mut rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(q) = rx.recv().await {
                match q {
                    Query::Registrations(reply) => {
                        let _ = reply.send(registrations());
                    }
                    Query::Calls(reply) => {
                        let _ = reply.send(calls());
                    }
                }
            }
        });
        SipHandle::new(tx)
    }

    /// The answer as it crosses the socket: one line, parsed back.
    fn wire(r: &Response) -> Response {
        let line = r.to_line();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&line).unwrap()
    }

    #[tokio::test]
    async fn the_bridges_views_come_back_whole() {
        let sip = bridge();
        let r = wire(&answer(Some(&sip), Ask::Registrations, ANSWER_WAIT).await);
        assert!(r.ok, "{r:?}");
        let got: Vec<RegistrationView> = serde_json::from_value(r.data.unwrap()).unwrap();
        assert_eq!(got, registrations());

        let r = wire(&answer(Some(&sip), Ask::Calls, ANSWER_WAIT).await);
        assert!(r.ok, "{r:?}");
        let got: Vec<CallView> = serde_json::from_value(r.data.unwrap()).unwrap();
        assert_eq!(got, calls());
    }

    #[tokio::test]
    async fn without_a_bridge_both_commands_say_so() {
        for ask in [Ask::Registrations, Ask::Calls] {
            let r = wire(&answer(None, ask, ANSWER_WAIT).await);
            assert!(!r.ok && r.data.is_none(), "{r:?}");
            assert_eq!(
                r.error.as_deref(),
                Some("the SIP bridge is not configured (no [sip] section in nasd.toml)")
            );
        }
    }

    #[tokio::test]
    async fn a_stopped_bridge_has_nothing_to_show() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let sip = SipHandle::new(tx);
        for ask in [Ask::Registrations, Ask::Calls] {
            let r = wire(&answer(Some(&sip), ask, ANSWER_WAIT).await);
            assert!(r.ok, "{r:?}");
            assert_eq!(r.data, Some(serde_json::json!([])));
        }
    }

    #[tokio::test]
    async fn a_wedged_bridge_is_an_error_not_a_hang() {
        // The receiver lives but nobody reads it: the query is never answered.
        let (tx, _rx) = mpsc::channel(4);
        let sip = SipHandle::new(tx);
        let wait = Duration::from_millis(50);
        let r = tokio::time::timeout(ANSWER_WAIT, answer(Some(&sip), Ask::Calls, wait))
            .await
            .expect("answer gives up after its wait");
        assert!(!r.ok);
        assert_eq!(r.error.as_deref(), Some(NO_ANSWER));
    }
}
