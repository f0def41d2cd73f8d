//! The answers to the control commands (everything but `capture`, see
//! [`stream`](super::stream); the SIP bridge's in [`sip`](super::sip)).

use super::server::Ctx;
use super::sip::{ANSWER_WAIT, Ask};
use super::{
    Command, PortView, Response, SessionView, StatsView, Traffic, VERSION, VersionView, unix_secs,
};
use crate::daemon::ReloadRequest;
use crate::daemon::registry::SessionEntry;
use crate::driver::port::PortState;
use crate::proto::link::LinkStats;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime};

/// How long `kill` waits for the sessions to be gone (LCP Terminate, hang-up).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// How long `reload` waits for the daemon to apply the new configuration.
const RELOAD_WAIT: Duration = Duration::from_secs(30);

/// The answer to `cmd`.
pub(super) async fn handle(ctx: &Ctx, cmd: Command) -> Response {
    match cmd {
        Command::Version => to_response(&VersionView {
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: VERSION,
        }),
        Command::Sessions { user, port } => {
            let entries: Vec<_> = ctx
                .shared
                .registry
                .all()
                .into_iter()
                .filter(|e| user.as_ref().is_none_or(|u| *u == e.user))
                .filter(|e| port.as_ref().is_none_or(|p| *p == e.port))
                .collect();
            let stats = futures::future::join_all(entries.iter().map(SessionEntry::stats)).await;
            let now = SystemTime::now();
            let views: Vec<_> = entries
                .iter()
                .zip(&stats)
                .map(|(e, s)| session_view(e, s, now))
                .collect();
            to_response(&views)
        }
        Command::Kill { target } => kill(ctx, &target).await,
        Command::Ports => {
            let views: Vec<_> = ctx
                .shared
                .monitor
                .ports()
                .into_iter()
                .map(|(name, e)| port_view(name, e.status.as_ref()))
                .collect();
            to_response(&views)
        }
        Command::Stats => stats(ctx).await,
        Command::Reload => reload(ctx).await,
        Command::Capture { .. } => Response::error("capture is a streaming request"),
        Command::SipRegistrations => {
            super::sip::answer(ctx.shared.sip.as_ref(), Ask::Registrations, ANSWER_WAIT).await
        }
        Command::SipCalls => {
            super::sip::answer(ctx.shared.sip.as_ref(), Ask::Calls, ANSWER_WAIT).await
        }
    }
}

fn to_response<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_value(v) {
        Ok(v) => Response::ok(v),
        Err(e) => Response::error(format!("internal error: {e}")),
    }
}

fn session_view(e: &SessionEntry, s: &LinkStats, now: SystemTime) -> SessionView {
    SessionView {
        id: e.id,
        acct_session_id: e.acct_id.clone(),
        port: e.port.clone(),
        user: e.user.clone(),
        ip: e.ip.map(|ip| ip.to_string()),
        caller_id: e.caller.clone(),
        speed: e.speed,
        state: e.stage.as_str().into(),
        auth: e.auth.map(Into::into),
        started_at: unix_secs(e.started),
        uptime_s: now.duration_since(e.started).map_or(0, |d| d.as_secs()),
        rx_bytes: s.rx_bytes,
        tx_bytes: s.tx_bytes,
        rx_packets: s.rx_packets,
        tx_packets: s.tx_packets,
    }
}

/// Whether `target` names the session: its id, its user or its address.
fn names(e: &SessionEntry, target: &str) -> bool {
    e.id.to_string() == target
        || (!e.user.is_empty() && e.user == target)
        || e.ip.is_some_and(|ip| ip.to_string() == target)
}

async fn kill(ctx: &Ctx, target: &str) -> Response {
    let registry = &ctx.shared.registry;
    let chosen: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|e| names(e, target))
        .collect();
    if chosen.is_empty() {
        return Response::error(format!("no session matches {target:?}"));
    }
    for e in &chosen {
        tracing::info!(session = e.id, port = %e.port, user = %e.user, "control: ending the session");
        e.kill.cancel();
    }
    // Answer once they are gone, so that what nasctl shows next is true.
    let deadline = Instant::now() + KILL_WAIT;
    while chosen.iter().any(|e| registry.get(e.id).is_some()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended = chosen
        .iter()
        .filter(|e| registry.get(e.id).is_none())
        .count();
    let ids: Vec<_> = chosen.iter().map(|e| e.id).collect();
    Response::ok(json!({ "killed": chosen.len(), "ended": ended, "ids": ids }))
}

fn port_view(name: String, status: Option<&crate::driver::port::PortStatus>) -> PortView {
    let Some(s) = status else {
        return PortView {
            name,
            state: "opening".into(),
            retry_at: None,
            calls: 0,
            last_call: None,
            last_error: None,
        };
    };
    let (state, retry_at) = match &s.state {
        PortState::Opening => ("opening", None),
        PortState::Initialising => ("initialising", None),
        PortState::Idle => ("idle", None),
        PortState::Ringing => ("ringing", None),
        PortState::Answering => ("answering", None),
        PortState::Connected => ("connected", None),
        PortState::BackingOff { until } => ("backing-off", Some(unix_secs(*until))),
    };
    PortView {
        name,
        state: state.into(),
        retry_at,
        calls: s.calls,
        last_call: s.last_call.map(unix_secs),
        last_error: s.last_error.clone(),
    }
}

async fn stats(ctx: &Ctx) -> Response {
    let shared = &ctx.shared;
    let live = shared.registry.all();
    let stats = futures::future::join_all(live.iter().map(SessionEntry::stats)).await;
    let mut traffic: Traffic = shared.monitor.ended();
    for s in &stats {
        traffic.add(s);
    }
    let router = shared.router.stats();
    let started = shared.monitor.started;
    let capture_dropped = shared
        .monitor
        .ports()
        .iter()
        .map(|(_, e)| e.tap.dropped())
        .sum();
    to_response(&StatsView {
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: unix_secs(started),
        uptime_s: SystemTime::now()
            .duration_since(started)
            .map_or(0, |d| d.as_secs()),
        sessions_now: live.len() as u64,
        sessions_total: shared.monitor.sessions_total(),
        auth_failures: shared.monitor.auth_failures(),
        traffic,
        spoofed: router.spoofed,
        isolated: router.isolated,
        no_session: router.no_session,
        capture_dropped,
    })
}

async fn reload(ctx: &Ctx) -> Response {
    let Some(reloader) = ctx.reloader.clone() else {
        return Response::error("this nasd cannot reload on request (send it SIGHUP)");
    };
    let spec = match tokio::task::spawn_blocking(move || reloader()).await {
        Ok(Ok(spec)) => spec,
        Ok(Err(e)) => {
            tracing::error!("control: the new configuration is invalid, keeping the old one: {e}");
            return Response::error(format!(
                "the new configuration is invalid, keeping the old one: {e}"
            ));
        }
        Err(e) => return Response::error(format!("reload failed: {e}")),
    };
    tracing::info!("control: reloading the configuration");
    let (done, ports) = tokio::sync::oneshot::channel();
    if ctx
        .reload_tx
        .send(ReloadRequest { spec, done })
        .await
        .is_err()
    {
        return Response::error("nasd is stopping");
    }
    match tokio::time::timeout(RELOAD_WAIT, ports).await {
        Ok(Ok(n)) => Response::ok(json!({ "reloaded": true, "ports": n })),
        _ => Response::error("the reload did not finish"),
    }
}
