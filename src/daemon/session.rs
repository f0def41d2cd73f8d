//! Per-session wiring: the session's entry in the registry, authorisation (see
//! [`aaa`](super::aaa)), its place on the datapath, its host route and proxy ARP entry, its
//! accounting, and their removal when it ends.

use super::aaa::{self, AuthContext, Refusal};
use super::acct::{self, AcctEvent};
use super::registry::{SessionEntry, Stage};
use super::{Shared, lock};
use crate::capture::CaptureTap;
use crate::driver::port::{CallInfo, PortHooks, PortStatus};
use crate::driver::session::{AuthFuture, Hooks, HostPackets};
use crate::proto::auth::{AuthRequest, AuthResult, Grant};
use crate::proto::lcp::AuthProto;
use crate::proto::link::{DownReason, LinkStats, SessionInfo};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The daemon's hooks for one port.
pub(crate) struct PortHooksImpl {
    shared: Arc<Shared>,
    port: String,
    nas_port: u32,
    /// The port's capture tap, handed to each session.
    tap: CaptureTap,
}

impl PortHooksImpl {
    pub(crate) fn new(shared: Arc<Shared>, port: String) -> Self {
        let nas_port = shared.nas_port(&port);
        let tap = shared.monitor.add_port(&port);
        Self {
            shared,
            port,
            nas_port,
            tap,
        }
    }
}

/// One session's hooks.
pub(crate) struct Session {
    shared: Arc<Shared>,
    id: u64,
    cx: AuthContext,
    /// The assigned address, shared with the uplink task (anti-spoofing).
    ip: Arc<Mutex<Option<Ipv4Addr>>>,
    inbox: mpsc::Sender<Vec<u8>>,
    user: String,
    /// RADIUS Class attributes, for accounting.
    class: Arc<Mutex<Vec<Vec<u8>>>>,
    acct: mpsc::UnboundedSender<AcctEvent>,
}

impl PortHooks for PortHooksImpl {
    type Session = Session;

    fn new_session(&mut self, call: &CallInfo, kill: &CancellationToken) -> (Session, HostPackets) {
        let shared = &self.shared;
        let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
        shared.monitor.session_started();
        let acct_id = crate::accounting::new_session_id(shared.boot_stamp, id);
        let (to_host, to_host_rx) = mpsc::channel(64);
        let (inbox, from_host) = mpsc::channel(64);
        let (control_tx, control_rx) = mpsc::channel(4);
        let ip = Arc::new(Mutex::new(None));
        tokio::spawn(shared.router.clone().run_uplink(ip.clone(), to_host_rx));
        let connect = call.connect.as_ref();
        // The caller of the SIP call that rang this line (the call and the session are one),
        // else the modem's caller id.
        let sip_caller = lock(&shared.sip_callers).get(&self.port).cloned();
        let caller = sip_caller.or_else(|| connect.and_then(|c| c.caller.number.clone()));
        tracing::info!(port = %self.port, session = id, acct_id = %acct_id, caller = ?caller, "call");
        shared.registry.insert(SessionEntry {
            id,
            acct_id: acct_id.clone(),
            port: self.port.clone(),
            nas_port: self.nas_port,
            user: String::new(),
            ip: None,
            caller: caller.clone(),
            speed: connect.and_then(|c| c.speed),
            auth: None,
            stage: Stage::Starting,
            started: SystemTime::now(),
            up_at: None,
            kill: kill.clone(),
            control: control_tx,
        });
        let class = Arc::new(Mutex::new(Vec::new()));
        let (acct, acct_rx) = mpsc::unbounded_channel();
        shared.tasks.spawn(acct::session_task(
            shared.clone(),
            id,
            class.clone(),
            acct_rx,
        ));
        let s = Session {
            shared: shared.clone(),
            id,
            cx: AuthContext {
                port: self.port.clone(),
                nas_port: self.nas_port,
                caller,
                called: self
                    .shared
                    .spec
                    .read()
                    .expect("spec")
                    .numbers
                    .get(&self.port)
                    .cloned(),
                connect_info: connect.map(|c| c.text.clone()).filter(|t| !t.is_empty()),
                acct_id,
            },
            ip,
            inbox,
            user: String::new(),
            class,
            acct,
        };
        let mut host = HostPackets::new(to_host, from_host);
        host.control = Some(control_rx);
        host.capture = Some(self.tap.clone());
        (s, host)
    }

    fn session_ended(&mut self, s: Session, reason: DownReason, stats: LinkStats) {
        tracing::info!(
            port = %s.cx.port,
            session = s.id,
            user = %s.user,
            reason = %reason,
            rx_bytes = stats.rx_bytes,
            tx_bytes = stats.tx_bytes,
            "session ended"
        );
        // Out of the registry first: the totals never count a session twice.
        self.shared.registry.remove(s.id);
        self.shared.monitor.session_ended(&stats);
        if let Some(sip) = &self.shared.sip {
            sip.session_ended(&s.cx.port);
        }
        let _ = s.acct.send(AcctEvent::Ended(reason, stats));
    }

    fn status(&mut self, status: &PortStatus) {
        tracing::info!(port = %self.port, state = ?status.state, error = ?status.last_error, "port");
        self.shared.monitor.set_status(&self.port, status);
    }
}

impl Hooks for Session {
    fn authorize(&mut self, req: AuthRequest) -> AuthFuture {
        let shared = self.shared.clone();
        let slot = self.ip.clone();
        let inbox = self.inbox.clone();
        let class = self.class.clone();
        let (id, cx) = (self.id, self.cx.clone());
        self.user.clone_from(&req.user);
        Box::pin(async move {
            let d = match aaa::decide(&shared, &cx, &req).await {
                Ok(d) => d,
                Err(why) => {
                    shared.monitor.auth_failed();
                    // Never the password: only the user name and the reason.
                    let level_warn = !matches!(why, Refusal::Unavailable(_));
                    if level_warn {
                        tracing::warn!(port = %cx.port, session = id, user = %req.user, reason = %why.reason(), "authentication refused");
                    } else {
                        tracing::error!(port = %cx.port, session = id, user = %req.user, reason = %why.reason(), "authentication could not be completed");
                    }
                    return AuthResult::Reject {
                        message: "Authentication failed".into(),
                    };
                }
            };
            let ip = d.ip;
            let method = match (d.method, req.proto()) {
                ("secrets", Some(AuthProto::Pap)) => "pap",
                ("secrets", Some(AuthProto::ChapMd5)) => "chap",
                (m, _) => m,
            };
            shared.registry.update(id, |e| {
                e.user.clone_from(&req.user);
                e.ip = Some(ip);
                e.auth = Some(method);
            });
            *lock(&class) = d.class;
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
            let mut grant = Grant::new(ip);
            grant.session_timeout = d.session_timeout;
            grant.idle_timeout = d.idle_timeout;
            if let Some(m) = d.message {
                grant.message = m;
            }
            AuthResult::Accept(grant)
        })
    }

    fn up(&mut self, info: &SessionInfo) {
        tracing::info!(
            port = %self.cx.port,
            session = self.id,
            user = %info.user,
            ip = %info.peer_ip,
            caller = ?self.cx.caller,
            mru = info.peer_mru,
            "session up"
        );
        self.shared.registry.update(self.id, |e| {
            e.stage = Stage::Up;
            e.up_at = Some(SystemTime::now());
            e.ip = Some(info.peer_ip);
            if e.auth.is_none() {
                e.auth = Some("none");
            }
        });
        if let Some(e) = self.shared.registry.get(self.id) {
            let _ = self.acct.send(AcctEvent::Up(Box::new(e)));
        }
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
