//! Per-session wiring: authorisation (secrets and address assignment), the session's place
//! on the datapath, its host route and proxy ARP entry, and their removal when it ends.

use super::Shared;
use crate::driver::port::{CallInfo, PortHooks, PortStatus};
use crate::driver::session::{AuthFuture, Hooks, HostPackets};
use crate::proto::auth::{AuthRequest, AuthResult, Credentials, Grant};
use crate::proto::link::{DownReason, LinkStats, SessionInfo};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The daemon's hooks for one port.
pub(crate) struct PortHooksImpl {
    shared: Arc<Shared>,
    port: String,
}

impl PortHooksImpl {
    pub(crate) fn new(shared: Arc<Shared>, port: String) -> Self {
        Self { shared, port }
    }
}

/// One session's hooks.
pub(crate) struct Session {
    shared: Arc<Shared>,
    id: u64,
    port: String,
    caller: Option<String>,
    /// The assigned address, shared with the uplink task (anti-spoofing).
    ip: Arc<Mutex<Option<Ipv4Addr>>>,
    inbox: mpsc::Sender<Vec<u8>>,
    user: String,
}

impl PortHooks for PortHooksImpl {
    type Session = Session;

    fn new_session(
        &mut self,
        call: &CallInfo,
        _kill: &CancellationToken,
    ) -> (Session, HostPackets) {
        let id = self.shared.next_session.fetch_add(1, Ordering::Relaxed);
        let (to_host, to_host_rx) = mpsc::channel(64);
        let (inbox, from_host) = mpsc::channel(64);
        let ip = Arc::new(Mutex::new(None));
        tokio::spawn(
            self.shared
                .router
                .clone()
                .run_uplink(ip.clone(), to_host_rx),
        );
        let caller = call.connect.as_ref().and_then(|c| c.caller.number.clone());
        tracing::info!(port = %self.port, session = id, caller = ?caller, "call");
        let s = Session {
            shared: self.shared.clone(),
            id,
            port: self.port.clone(),
            caller,
            ip,
            inbox,
            user: String::new(),
        };
        (s, HostPackets::new(to_host, from_host))
    }

    fn session_ended(&mut self, s: Session, reason: DownReason, stats: LinkStats) {
        tracing::info!(
            port = %s.port,
            session = s.id,
            user = %s.user,
            reason = %reason,
            rx_bytes = stats.rx_bytes,
            tx_bytes = stats.tx_bytes,
            "session ended"
        );
    }

    fn status(&mut self, status: &PortStatus) {
        tracing::info!(port = %self.port, state = ?status.state, error = ?status.last_error, "port");
    }
}

/// Decides on credentials and picks the address: the user's fixed one from the secrets
/// file, else a free pool address the entry permits.
fn decide(shared: &Shared, req: &AuthRequest) -> Result<Ipv4Addr, &'static str> {
    let server = shared.spec.read().expect("spec").server_name.clone();
    let secrets = shared.secrets.read().expect("secrets");
    let entry = match &req.credentials {
        Credentials::None => None,
        _ => {
            let e = secrets.lookup(&req.user, &server).ok_or("unknown user")?;
            if !req.verify_secret(e.secret.expose()) {
                return Err("wrong password");
            }
            if !e.allows_session() {
                return Err("no address allowed for this user");
            }
            Some(e)
        }
    };
    let mut pool = shared.pool.lock().expect("pool");
    match entry.and_then(|e| e.fixed_address()) {
        Some(ip) if pool.take(ip) => Ok(ip),
        Some(_) => Err("the user's address is in use"),
        None => pool
            .allocate(|ip| entry.is_none_or(|e| e.permits(ip)))
            .ok_or("the address pool is exhausted"),
    }
}

impl Hooks for Session {
    fn authorize(&mut self, req: AuthRequest) -> AuthFuture {
        let shared = self.shared.clone();
        let slot = self.ip.clone();
        let inbox = self.inbox.clone();
        let (id, port) = (self.id, self.port.clone());
        self.user.clone_from(&req.user);
        Box::pin(async move {
            let ip = match decide(&shared, &req) {
                Ok(ip) => ip,
                Err(why) => {
                    // Never the password: only the user name and the reason.
                    tracing::warn!(port = %port, session = id, user = %req.user, reason = why, "authentication refused");
                    return AuthResult::Reject {
                        message: "Authentication failed".into(),
                    };
                }
            };
            let (tun, local) = {
                let spec = shared.spec.read().expect("spec");
                (spec.tun.clone(), spec.local_ip)
            };
            // The route and the address map exist before IPCP opens: no packet is lost.
            if let Err(e) = shared.net.add_host_route(&tun, ip, local, None).await {
                tracing::error!(session = id, ip = %ip, error = %e, "adding the host route failed");
            }
            if let Some(lan) = &shared.lan
                && let Err(e) = shared.net.add_proxy_arp(lan, ip).await
            {
                tracing::error!(session = id, ip = %ip, lan = %lan, error = %e, "adding the proxy ARP entry failed");
            }
            *slot.lock().expect("ip") = Some(ip);
            shared.router.register(ip, inbox);
            AuthResult::Accept(Grant::new(ip))
        })
    }

    fn up(&mut self, info: &SessionInfo) {
        tracing::info!(
            port = %self.port,
            session = self.id,
            user = %info.user,
            ip = %info.peer_ip,
            caller = ?self.caller,
            mru = info.peer_mru,
            "session up"
        );
        // The path to the session respects its MRU.
        let shared = self.shared.clone();
        let (ip, mru) = (info.peer_ip, u32::from(info.peer_mru));
        tokio::spawn(async move {
            let (tun, local) = {
                let spec = shared.spec.read().expect("spec");
                (spec.tun.clone(), spec.local_ip)
            };
            if let Err(e) = shared.net.add_host_route(&tun, ip, local, Some(mru)).await {
                tracing::error!(ip = %ip, error = %e, "setting the route MTU failed");
            }
        });
    }

    fn down(&mut self, reason: DownReason) {
        let Some(ip) = self.ip.lock().expect("ip").take() else {
            return;
        };
        let shared = self.shared.clone();
        let id = self.id;
        tracing::debug!(session = id, reason = %reason, "releasing the session's address");
        shared.router.unregister(ip);
        tokio::spawn(async move {
            let tun = shared.spec.read().expect("spec").tun.clone();
            if let Err(e) = shared.net.del_host_route(&tun, ip).await {
                tracing::warn!(session = id, ip = %ip, error = %e, "removing the host route failed");
            }
            if let Some(lan) = &shared.lan
                && let Err(e) = shared.net.del_proxy_arp(lan, ip).await
            {
                tracing::warn!(session = id, ip = %ip, error = %e, "removing the proxy ARP entry failed");
            }
            shared.pool.lock().expect("pool").release(ip);
            tracing::info!(session = id, ip = %ip, "address released");
        });
    }
}
