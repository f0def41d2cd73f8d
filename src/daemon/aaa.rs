//! Deciding on credentials and choosing the address: the brute-force limiter first, then
//! RADIUS, PAM (PAP only) or the secrets file; the address from RADIUS (Framed-IP-Address),
//! the secrets file's address column, or the pool. Never logs a password.

use super::{Shared, lock};
use crate::auth::limiter::Verdict;
use crate::auth::pam::PamError;
use crate::proto::auth::{AuthRequest, Credentials};
use crate::radius::{AccessReply, AccessRequest};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// What is known of the call when its credentials are checked.
#[derive(Debug, Clone)]
pub(crate) struct AuthContext {
    /// The port's name (NAS-Port-Id, PAM_TTY).
    pub port: String,
    /// The port's number (NAS-Port).
    pub nas_port: u32,
    /// The caller's number (Calling-Station-Id, PAM_RHOST).
    pub caller: Option<String>,
    /// The line's own number (Called-Station-Id).
    pub called: Option<String>,
    /// The modem's connect text (Connect-Info).
    pub connect_info: Option<String>,
    /// The session's Acct-Session-Id.
    pub acct_id: String,
}

/// An accepted session.
#[derive(Debug, Clone)]
pub(crate) struct Decision {
    /// The caller's address (taken from the pool's map of used addresses).
    pub ip: Ipv4Addr,
    /// RADIUS Session-Timeout.
    pub session_timeout: Option<Duration>,
    /// RADIUS Idle-Timeout.
    pub idle_timeout: Option<Duration>,
    /// RADIUS Class attributes, echoed in accounting.
    pub class: Vec<Vec<u8>>,
    /// RADIUS Reply-Message, for the PAP/CHAP success message.
    pub message: Option<String>,
    /// Who decided: `radius`, `pam`, `secrets` or `none`.
    pub method: &'static str,
}

/// Why a session is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The credentials are wrong (counted by the limiter).
    Denied(String),
    /// Too many failures on this port or for this user: no check was made.
    Throttled(Duration),
    /// The credentials could not be checked, or no address is free (not the user's fault).
    Unavailable(String),
}

impl Refusal {
    /// Text for the log (never a password).
    pub(crate) fn reason(&self) -> String {
        match self {
            Refusal::Denied(s) | Refusal::Unavailable(s) => s.clone(),
            Refusal::Throttled(d) => {
                format!(
                    "too many failures: refused for another {} s",
                    d.as_secs().max(1)
                )
            }
        }
    }
}

/// Checks `req` and picks the address.
pub(crate) async fn decide(
    shared: &Shared,
    cx: &AuthContext,
    req: &AuthRequest,
) -> Result<Decision, Refusal> {
    if matches!(req.credentials, Credentials::None) {
        // No authentication configured: an address from the pool.
        let ip = allocate(shared, |_| true)?;
        return Ok(plain(ip, "none"));
    }
    if let Verdict::Wait(d) = lock(&shared.limiter).check(Instant::now(), &cx.port, &req.user) {
        return Err(Refusal::Throttled(d));
    }
    let result = check(shared, cx, req).await;
    let mut limiter = lock(&shared.limiter);
    match &result {
        Ok(_) => limiter.succeeded(Instant::now(), &cx.port, &req.user),
        Err(Refusal::Denied(_)) => limiter.failed(Instant::now(), &cx.port, &req.user),
        Err(_) => {}
    }
    result
}

async fn check(shared: &Shared, cx: &AuthContext, req: &AuthRequest) -> Result<Decision, Refusal> {
    if let Some(radius) = shared.radius.as_ref().filter(|_| shared.radius_auth) {
        let Some(mut ar) = AccessRequest::from_auth(req, cx.nas_port, cx.port.clone()) else {
            return Err(Refusal::Denied("malformed CHAP response".into()));
        };
        ar.calling_station_id.clone_from(&cx.caller);
        ar.called_station_id.clone_from(&cx.called);
        ar.connect_info.clone_from(&cx.connect_info);
        ar.acct_session_id = Some(cx.acct_id.clone());
        return match radius.authenticate(&ar).await {
            Ok(AccessReply::Accept {
                framed_ip,
                session_timeout,
                idle_timeout,
                class,
                reply_message,
                ..
            }) => {
                let ip = match framed_ip {
                    Some(ip) => take(shared, ip)?,
                    None => allocate(shared, |_| true)?,
                };
                Ok(Decision {
                    ip,
                    session_timeout,
                    idle_timeout,
                    class,
                    message: reply_message,
                    method: "radius",
                })
            }
            Ok(AccessReply::Reject { .. }) => Err(Refusal::Denied("RADIUS Access-Reject".into())),
            Err(e) => Err(Refusal::Unavailable(format!("RADIUS: {e}"))),
        };
    }
    if let (Some(pam), Credentials::Pap { password }) = (&shared.pam, &req.credentials) {
        return match pam
            .check(&req.user, password, &cx.port, cx.caller.as_deref())
            .await
        {
            Ok(()) => {
                let ip = allocate(shared, |_| true)?;
                Ok(plain(ip, "pam"))
            }
            Err(PamError::Refused(why)) => Err(Refusal::Denied(format!("PAM: {why}"))),
            Err(PamError::System(why)) => Err(Refusal::Unavailable(format!("PAM: {why}"))),
        };
    }
    secrets(shared, req)
}

/// The secrets file: the user's entry, its password and its addresses.
fn secrets(shared: &Shared, req: &AuthRequest) -> Result<Decision, Refusal> {
    let server = shared.spec.read().expect("spec").server_name.clone();
    let fixed;
    let permits: Box<dyn Fn(Ipv4Addr) -> bool> = {
        let secrets = shared.secrets.read().expect("secrets");
        let e = secrets
            .lookup(&req.user, &server)
            .ok_or_else(|| Refusal::Denied("unknown user".into()))?;
        if !req.verify_secret(e.secret.expose()) {
            return Err(Refusal::Denied("wrong password".into()));
        }
        if !e.allows_session() {
            return Err(Refusal::Denied("no address allowed for this user".into()));
        }
        fixed = e.fixed_address();
        let e = e.clone();
        Box::new(move |ip| e.permits(ip))
    };
    let ip = match fixed {
        Some(ip) => take(shared, ip)?,
        None => allocate(shared, permits)?,
    };
    Ok(plain(ip, "secrets"))
}

fn plain(ip: Ipv4Addr, method: &'static str) -> Decision {
    Decision {
        ip,
        session_timeout: None,
        idle_timeout: None,
        class: Vec::new(),
        message: None,
        method,
    }
}

/// A specific address (fixed in the secrets file, or RADIUS Framed-IP-Address).
fn take(shared: &Shared, ip: Ipv4Addr) -> Result<Ipv4Addr, Refusal> {
    let mut pool = lock(&shared.pool);
    if !pool.contains(ip) {
        tracing::warn!(ip = %ip, "the assigned address lies outside the pool: nasd's masquerade and forwarding rules cover the pool only");
    }
    if pool.take(ip) {
        Ok(ip)
    } else {
        Err(Refusal::Unavailable(format!("the address {ip} is in use")))
    }
}

/// A free pool address that `allowed` accepts.
fn allocate(shared: &Shared, allowed: impl Fn(Ipv4Addr) -> bool) -> Result<Ipv4Addr, Refusal> {
    lock(&shared.pool)
        .allocate(allowed)
        .ok_or_else(|| Refusal::Unavailable("the address pool is exhausted".into()))
}
