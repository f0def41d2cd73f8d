//! The pool daemon: every configured port an independent task, one TUN device for all
//! sessions, addresses from the pool or the secrets file, host routes, proxy ARP and the
//! nftables table. No protocol logic lives here: it wires the port tasks to the OS.

mod aaa;
mod acct;
pub(crate) mod monitor;
pub mod pool;
pub mod registry;
pub mod router;
mod session;
mod sip;

use crate::accounting::{self, Accounting, Backoff, Body, Journal};
use crate::auth::limiter::{Limiter, LimiterConfig};
use crate::auth::pam::Pam;
use crate::auth::secrets::Secrets;
use crate::config::{ControlConfig, RadiusSettings};
use crate::driver::port::{self, PortSpec};
use crate::driver::tun::Tun;
use crate::proto::auth::Secret;
use crate::radius::{
    DaeClient, DaeConfig, DaeServer, RadiusClient, RadiusClientConfig, ServerConfig,
};
use crate::sys::netlink::Net;
use crate::sys::nft::{Firewall, FirewallConfig};
use crate::sys::notify;
use anyhow::{Context, Result};
use pool::AddressPool;
use router::Router;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the daemon runs: the network settings and the ports.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    /// The TUN device's name.
    pub tun: String,
    /// The NAS address on every link.
    pub local_ip: Ipv4Addr,
    /// The first and last pool address.
    pub pool: (Ipv4Addr, Ipv4Addr),
    /// Masquerade pool traffic out of this interface.
    pub masquerade: Option<String>,
    /// Answer ARP on the LAN for session addresses.
    pub proxy_arp: bool,
    /// Drop traffic between dial-in users.
    pub isolate_clients: bool,
    /// The pppd-style secrets file (`None`: PAM or RADIUS decide).
    pub secrets: Option<PathBuf>,
    /// The PAM service checking PAP passwords.
    pub pam_service: Option<String>,
    /// RADIUS servers and the dynamic-authorisation listener.
    pub radius: Option<RadiusSettings>,
    /// The accounting journal.
    pub journal: PathBuf,
    /// Time between interim accounting records.
    pub interim_interval: Option<Duration>,
    /// The server name matched against the secrets file's second column.
    pub server_name: String,
    /// The ports.
    pub ports: Vec<PortSpec>,
    /// Each port's telephone number (Called-Station-Id), by port name.
    pub numbers: HashMap<String, String>,
    /// The control socket (read at start only).
    pub control: ControlConfig,
    /// The SIP bridge (read at start only).
    pub sip: Option<crate::sip::config::SipConfig>,
}

/// Reads the configuration again, for `nasctl reload` (what SIGHUP does): the new spec, or
/// why the configuration is invalid.
pub type Reloader = Arc<dyn Fn() -> std::result::Result<DaemonSpec, String> + Send + Sync>;

/// A reload asked for on the control socket: the new spec, and where to say how many ports
/// run after it.
pub(crate) struct ReloadRequest {
    pub(crate) spec: DaemonSpec,
    pub(crate) done: tokio::sync::oneshot::Sender<usize>,
}

/// Shared by every port task and session.
pub(crate) struct Shared {
    pub(crate) spec: RwLock<DaemonSpec>,
    pub(crate) secrets: RwLock<Secrets>,
    pub(crate) pool: Mutex<AddressPool>,
    pub(crate) router: Arc<Router>,
    pub(crate) net: Net,
    /// The LAN interface for proxy ARP.
    pub(crate) lan: Option<String>,
    pub(crate) next_session: std::sync::atomic::AtomicU64,
    /// Live sessions.
    pub(crate) registry: registry::Registry,
    /// Per-session accounting tasks (waited for at shutdown).
    pub(crate) tasks: tokio_util::task::TaskTracker,
    /// The accounting journal.
    pub(crate) accounting: Accounting,
    /// Time between interim records.
    pub(crate) interim_interval: Option<Duration>,
    /// Makes Acct-Session-Ids unique across restarts.
    pub(crate) boot_stamp: u64,
    /// RADIUS, for authentication and/or accounting.
    pub(crate) radius: Option<Arc<RadiusClient>>,
    /// Whether RADIUS checks credentials.
    pub(crate) radius_auth: bool,
    /// PAM for PAP.
    pub(crate) pam: Option<Pam>,
    /// Failure limits per port and user.
    pub(crate) limiter: Mutex<Limiter>,
    /// NAS-Port numbers by port name, stable while nasd runs.
    pub(crate) port_numbers: Mutex<HashMap<String, u32>>,
    /// Set when nasd is stopping (sessions then end with cause admin-reboot).
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// Port states, capture taps and counters for the control socket.
    pub(crate) monitor: monitor::Monitor,
    /// The SIP bridge, when `[sip]` is configured.
    pub(crate) sip: Option<crate::sip::handle::SipHandle>,
    /// The caller's number of the answered SIP call on each modem port, for the PPP
    /// session that starts there.
    pub(crate) sip_callers: Mutex<HashMap<String, String>>,
}

impl Shared {
    /// The port's NAS-Port number: 1, 2, ... in the order ports were first started.
    pub(crate) fn nas_port(&self, port: &str) -> u32 {
        let mut m = lock(&self.port_numbers);
        let next = u32::try_from(m.len() + 1).unwrap_or(u32::MAX);
        *m.entry(port.to_string()).or_insert(next)
    }

    /// Whether nasd is stopping.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// Locks a mutex of the daemon's shared state; nothing is left half-done under these locks,
/// so a poisoned one is still consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long sessions get to end cleanly at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn load_secrets(path: Option<&std::path::Path>) -> Result<Secrets> {
    let Some(path) = path else {
        return Ok(Secrets::default());
    };
    let (s, warnings) =
        Secrets::load(path).with_context(|| format!("secrets file {}", path.display()))?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(s)
}

/// Runs the daemon until `cancel`. Each spec arriving on `reload` replaces the running
/// one: secrets are read again, removed ports stop, new ports start, unchanged ports (and
/// their calls) go on. `nasctl reload` is refused (use [`run_with`]).
pub async fn run(
    spec: DaemonSpec,
    cancel: CancellationToken,
    reload: mpsc::Receiver<DaemonSpec>,
) -> Result<()> {
    run_with(spec, cancel, reload, None).await
}

/// [`run`], with `reloader` reading the configuration again for `nasctl reload`.
pub async fn run_with(
    spec: DaemonSpec,
    cancel: CancellationToken,
    mut reload: mpsc::Receiver<DaemonSpec>,
    reloader: Option<Reloader>,
) -> Result<()> {
    let secrets = load_secrets(spec.secrets.as_deref())?;
    // First, so that a bad [control] section fails before anything is changed; the socket
    // file goes when `control` is dropped, on every way out of this function.
    let control = crate::control::server::ControlServer::bind(&spec.control)?;
    let radius = match &spec.radius {
        Some(r) => Some(Arc::new(
            RadiusClient::new(radius_client_config(r))
                .await
                .context("RADIUS client")?,
        )),
        None => None,
    };
    let forwarding = radius.is_some() && spec.radius.as_ref().is_some_and(|r| r.accounting);
    let (accounting, boot_stamp) = open_accounting(&spec, radius.clone(), forwarding)?;
    let net = Net::new().context("netlink")?;
    let lan = if spec.proxy_arp {
        let (iface, _) = net
            .find_lan_interface(spec.pool.0, spec.pool.1)
            .await
            .context("proxy_arp")?;
        Some(iface)
    } else {
        None
    };
    let tun = Arc::new(Tun::open(&spec.tun)?);
    net.setup_tun(tun.name(), spec.local_ip, 1500)
        .await
        .with_context(|| format!("configuring {}", spec.tun))?;
    net.cleanup_stale(tun.name(), spec.pool.0, spec.pool.1)
        .await
        .ok();
    if let Some(out) = &spec.masquerade
        && net.link_index(out).await.ok().flatten().is_none()
    {
        // It may come later (a PPPoE or LTE uplink); the rule matches it by name then.
        tracing::warn!(
            interface = %out,
            "masquerade interface {out:?} does not exist (yet): callers' traffic reaches nothing beyond this server until it does"
        );
    }
    if spec.masquerade.is_some() || spec.proxy_arp {
        let changed =
            crate::sys::sysctl::enable_ip_forward().context("enabling IPv4 forwarding")?;
        if changed {
            tracing::info!("IPv4 forwarding was off: enabled (net.ipv4.ip_forward = 1)");
        }
    }
    let firewall = Firewall::install(&FirewallConfig {
        tun: tun.name().to_string(),
        pool_first: spec.pool.0,
        pool_last: spec.pool.1,
        masquerade: spec.masquerade.clone(),
        isolate_clients: spec.isolate_clients,
    })
    .await
    .context("installing the nftables table inet nasd")?;
    let sip = match &spec.sip {
        Some(c) => Some(sip::prepare(c).await?),
        None => None,
    };
    let mut sip_task = None;
    let router = Router::new(tun.clone(), spec.isolate_clients);
    tokio::spawn(router.clone().run_tun_reader(cancel.child_token()));
    let shared = Arc::new(Shared {
        pool: Mutex::new(AddressPool::new(spec.pool.0, spec.pool.1)),
        spec: RwLock::new(spec.clone()),
        secrets: RwLock::new(secrets),
        router,
        net,
        lan,
        next_session: std::sync::atomic::AtomicU64::new(1),
        registry: registry::Registry::default(),
        tasks: tokio_util::task::TaskTracker::new(),
        accounting,
        interim_interval: spec.interim_interval,
        boot_stamp,
        radius_auth: spec.radius.as_ref().is_some_and(|r| r.authenticate),
        radius,
        pam: spec.pam_service.as_ref().map(|s| Pam::new(s.clone(), 8)),
        limiter: Mutex::new(Limiter::new(LimiterConfig::default())),
        port_numbers: Mutex::new(HashMap::new()),
        stopping: std::sync::atomic::AtomicBool::new(false),
        monitor: monitor::Monitor::default(),
        sip: sip.as_ref().map(|p| p.handle.clone()),
        sip_callers: Mutex::new(HashMap::new()),
    });
    if let Some(p) = sip {
        let shared = shared.clone();
        let token = cancel.child_token();
        sip_task = Some(tokio::spawn(sip::run(shared, p, token)));
    }
    if let Some(r) = &spec.radius
        && let Some(listen) = r.dae_listen
    {
        start_dae(&shared, r, listen, &cancel).await?;
    }
    tracing::info!(
        tun = %shared.router.tun().name(),
        ports = spec.ports.len(),
        pool = %format!("{}-{}", spec.pool.0, spec.pool.1),
        "nasd running"
    );

    let mut ports: HashMap<String, (PortSpec, CancellationToken, JoinHandle<()>)> = HashMap::new();
    start_ports(&shared, &spec.ports, &mut ports, &cancel);
    let (ctl_reload_tx, mut ctl_reload) = mpsc::channel::<ReloadRequest>(1);
    let _socket = control.serve(
        shared.clone(),
        reloader,
        ctl_reload_tx,
        cancel.child_token(),
    );
    // Under systemd (Type=notify): ready now, and keep-alives at half the watchdog period.
    notify(notify::ready());
    let watchdog = notify::watchdog_interval().map(|d| d / 2);
    let mut keepalive = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            new = reload.recv() => {
                let Some(new) = new else { continue };
                notify(notify::reloading());
                apply_reload(&shared, new, &mut ports, &cancel);
                notify(notify::ready());
            }
            Some(req) = ctl_reload.recv() => {
                notify(notify::reloading());
                apply_reload(&shared, req.spec, &mut ports, &cancel);
                notify(notify::ready());
                let _ = req.done.send(ports.len());
            }
            _ = keepalive.tick(), if watchdog.is_some() => notify(notify::watchdog()),
        }
    }
    notify(notify::stopping());
    tracing::info!("stopping: ending every session");
    shared
        .stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut handles: Vec<_> = ports.into_values().map(|(_, _, h)| h).collect();
    handles.extend(sip_task);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, futures_join(handles)).await;
    // Every session's Stop record is on disk before Accounting-Off.
    shared.tasks.close();
    if tokio::time::timeout(Duration::from_secs(2), shared.tasks.wait())
        .await
        .is_err()
    {
        tracing::error!(
            "accounting tasks did not finish: the journal's recovery will close those sessions at the next start"
        );
    }
    acct::write(&shared, Body::AccountingOff).await;
    match shared
        .accounting
        .clone()
        .shutdown(Duration::from_secs(2))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            records = n,
            "accounting records not yet delivered: they are kept in the journal and sent after the next start"
        ),
        Err(e) => tracing::error!(error = %e, "closing the accounting journal"),
    }
    firewall.remove().await.ok();
    let spec = shared.spec.read().expect("spec").clone();
    shared
        .net
        .cleanup_stale(&spec.tun, spec.pool.0, spec.pool.1)
        .await
        .ok();
    Ok(())
}

async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

fn start_ports(
    shared: &Arc<Shared>,
    specs: &[PortSpec],
    ports: &mut HashMap<String, (PortSpec, CancellationToken, JoinHandle<()>)>,
    cancel: &CancellationToken,
) {
    for p in specs {
        let token = cancel.child_token();
        let hooks = session::PortHooksImpl::new(shared.clone(), p.name.clone());
        let handle = tokio::spawn(port::run(p.clone(), hooks, token.clone(), None));
        ports.insert(p.name.clone(), (p.clone(), token, handle));
    }
}

fn apply_reload(
    shared: &Arc<Shared>,
    new: DaemonSpec,
    ports: &mut HashMap<String, (PortSpec, CancellationToken, JoinHandle<()>)>,
    cancel: &CancellationToken,
) {
    match load_secrets(new.secrets.as_deref()) {
        Ok(s) => *shared.secrets.write().expect("secrets") = s,
        Err(e) => tracing::error!(error = %format!("{e:#}"), "reload: keeping the old secrets"),
    }
    let same = |a: &PortSpec, b: &PortSpec| format!("{a:?}") == format!("{b:?}");
    let mut started = Vec::new();
    let wanted: HashMap<&str, &PortSpec> = new.ports.iter().map(|p| (p.name.as_str(), p)).collect();
    ports.retain(|name, (spec, token, _)| match wanted.get(name.as_str()) {
        Some(w) if same(spec, w) => true,
        _ => {
            tracing::info!(port = %name, "reload: stopping port");
            token.cancel();
            shared.monitor.remove_port(name);
            false
        }
    });
    for p in &new.ports {
        if !ports.contains_key(&p.name) {
            tracing::info!(port = %p.name, "reload: starting port");
            started.push(p.clone());
        }
    }
    start_ports(shared, &started, ports, cancel);
    let mut new = new;
    let old_control = shared.spec.read().expect("spec").control.clone();
    if new.control != old_control {
        tracing::warn!("reload: [control] changes take effect at the next start");
        new.control = old_control;
    }
    let old_sip = shared.spec.read().expect("spec").sip.clone();
    if new.sip != old_sip {
        tracing::warn!(
            "reload: [sip] changes (accounts, rules, ...) take effect at the next start; registrations and calls go on"
        );
        new.sip = old_sip;
    }
    *shared.spec.write().expect("spec") = new;
}

impl DaemonSpec {
    /// The daemon's view of a validated configuration.
    pub fn from_config(c: &crate::config::Config) -> Result<Self> {
        Ok(Self {
            tun: c.network.tun.clone(),
            local_ip: c.network.local_ip,
            pool: (c.network.pool.first, c.network.pool.last),
            masquerade: c.network.masquerade.clone(),
            proxy_arp: c.network.proxy_arp,
            isolate_clients: c.network.isolate_clients,
            secrets: c.auth.secrets.clone(),
            pam_service: c.auth.pam_service.clone(),
            radius: c.radius.clone(),
            journal: c.accounting.journal.clone(),
            interim_interval: c.accounting.interim_interval,
            server_name: c.auth.name.clone(),
            ports: c.ports.iter().map(|p| c.port_spec(p)).collect(),
            numbers: c
                .ports
                .iter()
                .filter_map(|p| Some((p.name.clone(), p.number.clone()?)))
                .collect(),
            control: c.control.clone(),
            sip: c.sip.clone(),
        })
    }
}

fn radius_client_config(r: &RadiusSettings) -> RadiusClientConfig {
    let servers = r
        .servers
        .iter()
        .map(|s| ServerConfig {
            addr: s.address,
            auth_port: s.auth_port,
            acct_port: s.acct_port,
            secret: Secret::new(s.secret.clone().into_bytes()),
        })
        .collect();
    let mut c = RadiusClientConfig::new(servers, r.nas_identifier.clone());
    c.timeout = r.timeout;
    c.retries = r.retries;
    c.nas_ip = r.nas_ip;
    c
}

/// Opens the journal, closes the sessions a crash left open, writes Accounting-On and starts
/// the forwarder; returns the handle and the boot stamp for Acct-Session-Ids.
fn open_accounting(
    spec: &DaemonSpec,
    radius: Option<Arc<RadiusClient>>,
    forwarding: bool,
) -> Result<(Accounting, u64)> {
    if let Some(dir) = spec.journal.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the journal's directory {}", dir.display()))?;
    }
    let now = unix_now();
    let options = accounting::Options {
        forwarding,
        ..Default::default()
    };
    let (mut journal, recovery) = Journal::open(&spec.journal, options, now)
        .with_context(|| format!("accounting journal {}", spec.journal.display()))?;
    if recovery.corrupt_lines > 0 || recovery.torn_tail {
        tracing::warn!(corrupt = recovery.corrupt_lines, torn_tail = recovery.torn_tail, journal = %spec.journal.display(), "the journal had damaged lines: skipped, the good records are kept");
    }
    for r in &recovery.closed {
        if let Some(s) = r.body.session() {
            tracing::warn!(acct_id = %s.session_id, user = %s.user, port = %s.port, "a session left open by a crash is closed (nas-reboot)");
        }
    }
    journal
        .append(Body::AccountingOn, now)
        .context("writing Accounting-On to the journal")?;
    let boot = recovery.boot_stamp;
    let deliver: Option<Arc<dyn accounting::Deliver>> = match (forwarding, radius) {
        (true, Some(client)) => Some(Arc::new(acct::RadiusDeliver {
            client,
            nas_session: accounting::new_session_id(boot, 0),
        })),
        _ => None,
    };
    let handle = Accounting::start(
        journal,
        deliver,
        Backoff::default(),
        accounting::system_clock(),
    )
    .context("starting the accounting writer")?;
    Ok((handle, boot))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn start_dae(
    shared: &Arc<Shared>,
    r: &RadiusSettings,
    listen: std::net::SocketAddr,
    cancel: &CancellationToken,
) -> Result<()> {
    let clients = r
        .dae_clients
        .iter()
        .map(|c| DaeClient {
            addr: c.address,
            secret: Secret::new(c.secret.clone().into_bytes()),
        })
        .collect();
    let mut config = DaeConfig::new(clients);
    config.listen = listen;
    config.nas_identifier = Some(r.nas_identifier.clone());
    let server = Arc::new(
        DaeServer::bind(config)
            .await
            .with_context(|| format!("[radius] dae_listen: cannot listen on {listen}"))?,
    );
    tracing::info!(listen = %listen, "RADIUS dynamic authorisation (RFC 5176) listening");
    let shared = shared.clone();
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let handler = Arc::new(move |req| acct::dynamic_authorization(shared.clone(), req));
        tokio::select! {
            r = server.run(handler) => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "the RADIUS dynamic authorisation listener failed");
                }
            }
            _ = cancel.cancelled() => {}
        }
    });
    Ok(())
}

/// Logs a failed systemd notification (nasd goes on: the service manager will say more).
fn notify(r: std::io::Result<bool>) {
    if let Err(e) = r {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
