//! The pool daemon: every configured port an independent task, one TUN device for all
//! sessions, addresses from the pool or the secrets file, host routes, proxy ARP and the
//! nftables table. No protocol logic lives here: it wires the port tasks to the OS.

pub mod pool;
pub mod router;
mod session;

use crate::auth::secrets::Secrets;
use crate::driver::port::{self, PortSpec};
use crate::driver::tun::Tun;
use crate::sys::netlink::Net;
use crate::sys::nft::{Firewall, FirewallConfig};
use anyhow::{Context, Result, bail};
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
    /// The pppd-style secrets file.
    pub secrets: PathBuf,
    /// The server name matched against the secrets file's second column.
    pub server_name: String,
    /// The ports.
    pub ports: Vec<PortSpec>,
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
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// How long sessions get to end cleanly at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn load_secrets(path: &std::path::Path) -> Result<Secrets> {
    let (s, warnings) =
        Secrets::load(path).with_context(|| format!("secrets file {}", path.display()))?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(s)
}

/// Runs the daemon until `cancel`. Each spec arriving on `reload` replaces the running
/// one: secrets are read again, removed ports stop, new ports start, unchanged ports (and
/// their calls) go on.
pub async fn run(
    spec: DaemonSpec,
    cancel: CancellationToken,
    mut reload: mpsc::Receiver<DaemonSpec>,
) -> Result<()> {
    let secrets = load_secrets(&spec.secrets)?;
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
    });
    tracing::info!(
        tun = %shared.router.tun().name(),
        ports = spec.ports.len(),
        pool = %format!("{}-{}", spec.pool.0, spec.pool.1),
        "nasd running"
    );

    let mut ports: HashMap<String, (PortSpec, CancellationToken, JoinHandle<()>)> = HashMap::new();
    start_ports(&shared, &spec.ports, &mut ports, &cancel);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            new = reload.recv() => {
                let Some(new) = new else { continue };
                apply_reload(&shared, new, &mut ports, &cancel);
            }
        }
    }
    tracing::info!("stopping: ending every session");
    let handles: Vec<_> = ports.into_values().map(|(_, _, h)| h).collect();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, futures_join(handles)).await;
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
    match load_secrets(&new.secrets) {
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
    *shared.spec.write().expect("spec") = new;
}

impl DaemonSpec {
    /// The daemon's view of a validated configuration.
    pub fn from_config(c: &crate::config::Config) -> Result<Self> {
        let Some(secrets) = c.auth.secrets.clone() else {
            bail!("[auth] secrets: a secrets file is needed (PAM is not available yet)");
        };
        Ok(Self {
            tun: c.network.tun.clone(),
            local_ip: c.network.local_ip,
            pool: (c.network.pool.first, c.network.pool.last),
            masquerade: c.network.masquerade.clone(),
            proxy_arp: c.network.proxy_arp,
            isolate_clients: c.network.isolate_clients,
            secrets,
            server_name: c.auth.name.clone(),
            ports: c.ports.iter().map(|p| c.port_spec(p)).collect(),
        })
    }
}
