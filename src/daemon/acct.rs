//! Accounting and dynamic authorisation: each session's Start, Interim and Stop records in
//! the journal (which forwards them to RADIUS), the RADIUS delivery itself, and the RFC 5176
//! Disconnect/CoA handler.

use super::Shared;
use super::registry::{Selector, SessionEntry};
use crate::accounting::{Body, Deliver, DeliverError, Record, SessionRecord, cause};
use crate::driver::session::SessionCommand;
use crate::proto::link::{DownReason, LinkStats};
use crate::radius::{
    AccountingRequest, AcctStatus, DaeKind, DaeRequest, RadiusClient, TerminateCause,
};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// What a session's accounting task hears from the session.
#[derive(Debug)]
pub(crate) enum AcctEvent {
    /// IPCP opened: the session as it is then.
    Up(Box<SessionEntry>),
    /// The session is over, with its final counters.
    Ended(DownReason, LinkStats),
}

/// Runs one session's accounting: Start when it comes up, Interim every
/// `interim_interval`, Stop at the end. A session that never came up writes nothing.
pub(crate) async fn session_task(
    shared: Arc<Shared>,
    id: u64,
    class: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    mut events: mpsc::UnboundedReceiver<AcctEvent>,
) {
    let mut started = false;
    let interval = shared.interim_interval;
    let mut tick = tokio::time::interval(interval.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<SessionEntry> = None;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(AcctEvent::Up(e)) => {
                    let rec = record(&e, &class, LinkStats::default(), None);
                    write(&shared, Body::Start(rec)).await;
                    started = true;
                    last = Some(*e);
                    tick.reset();
                }
                Some(AcctEvent::Ended(reason, stats)) => {
                    if started && let Some(e) = last.take() {
                        let why = terminate_cause(reason, shared.stopping());
                        let rec = record(&e, &class, stats, Some(why));
                        write(&shared, Body::Stop(rec)).await;
                    }
                    break;
                }
                None => break,
            },
            _ = tick.tick(), if started && interval.is_some() => {
                if let Some(e) = shared.registry.get(id) {
                    let stats = e.stats().await;
                    let rec = record(&e, &class, stats, None);
                    write(&shared, Body::Interim(rec)).await;
                    last = Some(e);
                }
            }
        }
    }
}

/// The record of a session as it is now.
fn record(
    e: &SessionEntry,
    class: &std::sync::Mutex<Vec<Vec<u8>>>,
    stats: LinkStats,
    why: Option<&str>,
) -> SessionRecord {
    SessionRecord {
        session_id: e.acct_id.clone(),
        user: e.user.clone(),
        port: e.port.clone(),
        nas_port: e.nas_port,
        caller_id: e.caller.clone(),
        ip: e.ip,
        auth: e.auth.map(str::to_string),
        session_time_s: e.session_time(SystemTime::now()),
        rx_bytes: stats.rx_bytes,
        tx_bytes: stats.tx_bytes,
        rx_packets: stats.rx_packets,
        tx_packets: stats.tx_packets,
        terminate_cause: why.map(str::to_string),
        class: class
            .lock()
            .map(|c| c.iter().map(|v| hex(v)).collect())
            .unwrap_or_default(),
    }
}

/// Writes a record to the journal; a failure is logged loudly (the disk is the last line).
pub(crate) async fn write(shared: &Shared, body: Body) {
    let kind = body.kind();
    if let Err(e) = shared.accounting.record(body).await {
        tracing::error!(kind, error = %e, "ACCOUNTING RECORD LOST: cannot write the journal");
    }
}

/// The Acct-Terminate-Cause of a session that ended for `reason`.
pub(crate) fn terminate_cause(reason: DownReason, stopping: bool) -> &'static str {
    match reason {
        DownReason::Admin if stopping => cause::ADMIN_REBOOT,
        DownReason::Admin => cause::ADMIN_RESET,
        DownReason::PeerTerminated => cause::USER_REQUEST,
        DownReason::LostCarrier => cause::LOST_CARRIER,
        DownReason::EchoTimeout => cause::LOST_SERVICE,
        DownReason::IdleTimeout => cause::IDLE_TIMEOUT,
        DownReason::SessionTimeout => cause::SESSION_TIMEOUT,
        DownReason::AuthFailed
        | DownReason::AuthTimeout
        | DownReason::AuthRefused
        | DownReason::Loopback
        | DownReason::NegotiationFailed(_) => cause::NAS_REQUEST,
    }
}

fn terminate_cause_attr(name: &str) -> Option<TerminateCause> {
    Some(match name {
        cause::USER_REQUEST => TerminateCause::UserRequest,
        cause::LOST_CARRIER => TerminateCause::LostCarrier,
        cause::LOST_SERVICE => TerminateCause::LostService,
        cause::IDLE_TIMEOUT => TerminateCause::IdleTimeout,
        cause::SESSION_TIMEOUT => TerminateCause::SessionTimeout,
        cause::ADMIN_RESET => TerminateCause::AdminReset,
        cause::ADMIN_REBOOT => TerminateCause::AdminReboot,
        cause::NAS_REBOOT => TerminateCause::NasReboot,
        cause::NAS_REQUEST => TerminateCause::NasRequest,
        cause::PORT_ERROR => TerminateCause::PortError,
        _ => return None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Delivers journal records to the RADIUS accounting servers.
pub(crate) struct RadiusDeliver {
    pub(crate) client: Arc<RadiusClient>,
    /// The Acct-Session-Id of Accounting-On/Off records.
    pub(crate) nas_session: String,
}

impl Deliver for RadiusDeliver {
    fn deliver<'a>(
        &'a self,
        rec: &'a Record,
        delay: Duration,
    ) -> BoxFuture<'a, Result<(), DeliverError>> {
        Box::pin(async move {
            let Some(req) = self.request(rec, delay) else {
                return Ok(());
            };
            self.client
                .account(&req)
                .await
                .map_err(|e| DeliverError(format!("RADIUS accounting: {e}")))
        })
    }
}

impl RadiusDeliver {
    /// The Accounting-Request for a record (`None` for kinds RADIUS does not get).
    fn request(&self, rec: &Record, delay: Duration) -> Option<AccountingRequest> {
        let (status, s) = match &rec.body {
            Body::Start(s) => (AcctStatus::Start, Some(s)),
            Body::Interim(s) => (AcctStatus::InterimUpdate, Some(s)),
            Body::Stop(s) => (AcctStatus::Stop, Some(s)),
            Body::AccountingOn => (AcctStatus::AccountingOn, None),
            Body::AccountingOff => (AcctStatus::AccountingOff, None),
            Body::Call(_) => return None,
        };
        let mut req = AccountingRequest::new(status, self.nas_session.clone());
        req.delay_time = u32::try_from(delay.as_secs()).unwrap_or(u32::MAX);
        req.event_time = u32::try_from(rec.time).ok();
        if let Some(s) = s {
            req.session_id.clone_from(&s.session_id);
            req.user.clone_from(&s.user);
            req.nas_port = s.nas_port;
            req.port_name.clone_from(&s.port);
            req.framed_ip = s.ip;
            req.calling_station_id.clone_from(&s.caller_id);
            req.session_time = u32::try_from(s.session_time_s).unwrap_or(u32::MAX);
            req.input_octets = s.rx_bytes;
            req.output_octets = s.tx_bytes;
            req.input_packets = u32::try_from(s.rx_packets).unwrap_or(u32::MAX);
            req.output_packets = u32::try_from(s.tx_packets).unwrap_or(u32::MAX);
            req.terminate_cause = s.terminate_cause.as_deref().and_then(terminate_cause_attr);
            req.class = s.class.iter().filter_map(|c| unhex(c)).collect();
        }
        Some(req)
    }
}

/// Carries out a verified Disconnect- or CoA-Request; returns how many sessions matched.
pub(crate) async fn dynamic_authorization(shared: Arc<Shared>, req: DaeRequest) -> usize {
    let sel = Selector {
        acct_id: req.acct_session_id.clone(),
        user: req.user.clone(),
        ip: req.framed_ip,
        port: req.port_name.clone(),
        nas_port: req.nas_port,
        caller: req.calling_station_id.clone(),
        ..Default::default()
    };
    let matched = shared.registry.select(&sel);
    for e in &matched {
        match &req.kind {
            DaeKind::Disconnect => {
                tracing::info!(session = e.id, user = %e.user, port = %e.port, "RADIUS Disconnect-Request: ending the session");
                e.kill.cancel();
            }
            DaeKind::Coa {
                session_timeout,
                idle_timeout,
            } => {
                if let Some(limit) = session_timeout {
                    let ok = ask(e, |tx| SessionCommand::SessionTimeout(Some(*limit), tx)).await;
                    tracing::info!(session = e.id, user = %e.user, limit_s = limit.as_secs(), applied = ok, "RADIUS CoA: new session timeout");
                }
                if let Some(limit) = idle_timeout {
                    let ok = ask(e, |tx| SessionCommand::IdleTimeout(Some(*limit), tx)).await;
                    tracing::info!(session = e.id, user = %e.user, limit_s = limit.as_secs(), applied = ok, "RADIUS CoA: new idle timeout");
                }
            }
        }
    }
    matched.len()
}

/// Sends a command to a running session; whether it was applied.
async fn ask(e: &SessionEntry, cmd: impl FnOnce(oneshot::Sender<bool>) -> SessionCommand) -> bool {
    let (tx, rx) = oneshot::channel();
    e.control.send(cmd(tx)).await.is_ok() && rx.await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_down_reason_has_a_radius_cause() {
        for r in [
            DownReason::Admin,
            DownReason::PeerTerminated,
            DownReason::AuthFailed,
            DownReason::AuthTimeout,
            DownReason::AuthRefused,
            DownReason::EchoTimeout,
            DownReason::IdleTimeout,
            DownReason::SessionTimeout,
            DownReason::Loopback,
            DownReason::LostCarrier,
            DownReason::NegotiationFailed(0x8021),
        ] {
            for stopping in [false, true] {
                let c = terminate_cause(r, stopping);
                assert!(terminate_cause_attr(c).is_some(), "{r:?} → {c}");
            }
        }
        assert_eq!(terminate_cause(DownReason::Admin, true), "admin-reboot");
        assert_eq!(terminate_cause(DownReason::Admin, false), "admin-reset");
        assert_eq!(
            terminate_cause(DownReason::PeerTerminated, false),
            "user-request"
        );
        assert_eq!(
            terminate_cause_attr(cause::NAS_REBOOT),
            Some(TerminateCause::NasReboot)
        );
    }

    #[test]
    fn class_survives_hex() {
        let c = vec![0u8, 1, 0xfe, 0xff, b'a'];
        assert_eq!(unhex(&hex(&c)), Some(c));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}
