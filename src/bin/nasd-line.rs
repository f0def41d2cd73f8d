//! nasd-line: the PPP server on one line, without the pool around it.
//!
//! A debugging and interop tool, and the thinnest complete driver of the engine: it opens a
//! serial line (or a pseudo-terminal, or takes standard input as pppd does under a getty),
//! answers the modem on it or starts PPP at once on a direct line, authenticates against a
//! pppd-style secrets file and, with `--tun`, routes the peer's packets through a TUN device
//! so the host's kernel answers them.

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use nasd::auth::secrets::Secrets;
use nasd::driver::fdline::FdLine;
use nasd::driver::port::{self, CallInfo, PortHooks, PortMode, PortSpec, PortStatus};
use nasd::driver::serial::PortSettings;
use nasd::driver::session::{self, AuthFuture, CarrierWatch, Hooks, HostPackets};
use nasd::driver::tun::Tun;
use nasd::proto::auth::{AuthRequest, AuthResult, Credentials, Grant};
use nasd::proto::lcp::AuthProto;
use nasd::proto::link::{DownReason, Link, LinkConfig, LinkStats, SessionInfo};
use nasd::proto::login::LoginConfig;
use nasd::proto::modem::{ChatStep, ModemConfig};
use nasd::proto::wire::ipv4;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// A modem: initialise it, wait for RING, answer, then PPP.
    Modem,
    /// A direct line: PPP at once.
    Direct,
}

#[derive(Parser, Debug)]
#[command(version, about = "Run the nasd PPP server on one line")]
struct Args {
    /// The line: a serial device, a pseudo-terminal such as /dev/pts/3, or `-` for standard
    /// input (a pty master or socket handed over by a getty or a test rig).
    #[arg(long)]
    device: PathBuf,
    /// Modem or direct line.
    #[arg(long, value_enum, default_value_t = Mode::Direct)]
    mode: Mode,
    /// Line speed.
    #[arg(long, default_value_t = 115_200)]
    speed: u32,
    /// RTS/CTS hardware flow control.
    #[arg(long)]
    rtscts: bool,
    /// Directory of UUCP lock files (`none` for no lock).
    #[arg(long, default_value = "/var/lock")]
    lock_dir: String,
    /// Modem init commands, each answered with OK (default: ATQ0V1H0, ATS0=0Q0&D3&C1).
    #[arg(long)]
    init: Vec<String>,
    /// RINGs before answering.
    #[arg(long, default_value_t = 1)]
    rings: u32,
    /// Calls to handle before exiting (0: no limit).
    #[arg(long, default_value_t = 1)]
    calls: u64,
    /// Our address on the link.
    #[arg(long, default_value = "10.0.0.1")]
    local_ip: Ipv4Addr,
    /// The address given to the peer (unless its secrets line names one).
    #[arg(long, default_value = "10.0.0.2")]
    peer_ip: Ipv4Addr,
    /// DNS servers offered to the peer (up to two).
    #[arg(long)]
    dns: Vec<Ipv4Addr>,
    /// Authentication protocols to require, most preferred first: pap, chap, none.
    #[arg(long, value_delimiter = ',', default_value = "chap,pap")]
    auth: Vec<String>,
    /// pppd-style secrets file (`client server secret [addresses]`).
    #[arg(long)]
    secrets: Option<PathBuf>,
    /// Route the peer's packets through this TUN device.
    #[arg(long)]
    tun: Option<String>,
    /// Milliseconds to wait before our first LCP Configure-Request.
    #[arg(long, default_value_t = 1000)]
    first_request_delay_ms: u64,
    /// Seconds between LCP Echo-Requests on a quiet link (0: off).
    #[arg(long, default_value_t = 30)]
    echo_interval: u64,
    /// Unanswered Echo-Requests after which the peer is declared gone.
    #[arg(long, default_value_t = 4)]
    echo_failure: u32,
    /// Seconds between CHAP re-challenges while the session is up (0: never).
    #[arg(long, default_value_t = 0)]
    chap_interval: u64,
    /// End each session after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0)]
    session_timeout: u64,
    /// Offer a classic text login (`login:` / `Password:`) before PPP.
    #[arg(long)]
    login: bool,
    /// End a session after this many seconds without IP traffic (0: no limit).
    #[arg(long, default_value_t = 0)]
    idle_timeout: u64,
}

fn link_config(a: &Args) -> Result<LinkConfig> {
    let mut c = LinkConfig::default();
    c.lcp.auth.clear();
    for name in &a.auth {
        match name.as_str() {
            "pap" => c.lcp.auth.push(AuthProto::Pap),
            "chap" => c.lcp.auth.push(AuthProto::ChapMd5),
            "none" => {}
            other => bail!("unknown authentication protocol `{other}` (pap, chap, none)"),
        }
    }
    c.lcp.echo_interval = (a.echo_interval > 0).then(|| Duration::from_secs(a.echo_interval));
    c.lcp.echo_failure = a.echo_failure;
    c.auth.rechallenge = (a.chap_interval > 0).then(|| Duration::from_secs(a.chap_interval));
    c.ipcp.local_ip = a.local_ip;
    if a.dns.len() > 2 {
        bail!("at most two --dns servers");
    }
    c.ipcp.dns = [a.dns.first().copied(), a.dns.get(1).copied()];
    c.first_request_delay = Duration::from_millis(a.first_request_delay_ms);
    c.session_timeout = (a.session_timeout > 0).then(|| Duration::from_secs(a.session_timeout));
    c.idle_timeout = (a.idle_timeout > 0).then(|| Duration::from_secs(a.idle_timeout));
    Ok(c)
}

/// What every session of the line shares.
struct Shared {
    secrets: Secrets,
    default_ip: Ipv4Addr,
    local_ip: Ipv4Addr,
    tun: Option<Arc<Tun>>,
    /// The running session's address (for anti-spoofing) and its inbox for TUN packets.
    current: Mutex<Current>,
    /// Ends the running session (SIGUSR1).
    kill: Mutex<Option<CancellationToken>>,
}

type Current = (Option<Ipv4Addr>, Option<mpsc::Sender<Vec<u8>>>);

struct Session {
    shared: Arc<Shared>,
    up: bool,
}

impl Hooks for Session {
    fn authorize(&mut self, req: AuthRequest) -> AuthFuture {
        let shared = self.shared.clone();
        Box::pin(async move {
            let reject = AuthResult::Reject {
                message: "Authentication failed".into(),
            };
            if req.credentials == Credentials::None {
                return AuthResult::Accept(Grant::new(shared.default_ip));
            }
            let Some(entry) = shared.secrets.lookup(&req.user, "*") else {
                tracing::warn!(user = %req.user, "no secrets entry");
                return reject;
            };
            if !req.verify_secret(entry.secret.expose()) || !entry.allows_session() {
                tracing::warn!(user = %req.user, "authentication failed");
                return reject;
            }
            AuthResult::Accept(Grant::new(
                entry.fixed_address().unwrap_or(shared.default_ip),
            ))
        })
    }

    fn up(&mut self, info: &SessionInfo) {
        self.up = true;
        self.shared.current.lock().expect("lock").0 = Some(info.peer_ip);
        if let Some(tun) = &self.shared.tun {
            let (l, p) = (self.shared.local_ip.to_string(), info.peer_ip.to_string());
            ip(&["addr", "add", &l, "peer", &p, "dev", tun.name()]);
            ip(&[
                "link",
                "set",
                tun.name(),
                "mtu",
                &info.peer_mru.to_string(),
                "up",
            ]);
        }
    }

    fn down(&mut self, _reason: DownReason) {
        let peer = self.shared.current.lock().expect("lock").0.take();
        if let (true, Some(tun), Some(p)) = (self.up, &self.shared.tun, peer) {
            let (l, p) = (self.shared.local_ip.to_string(), p.to_string());
            ip(&["addr", "del", &l, "peer", &p, "dev", tun.name()]);
        }
    }
}

fn ip(args: &[&str]) {
    let st = std::process::Command::new("ip").args(args).status();
    if !st.is_ok_and(|s| s.success()) {
        tracing::error!(?args, "ip command failed");
    }
}

impl Shared {
    /// A new session: its own channel from the TUN reader, and one toward the TUN.
    fn session(self: &Arc<Self>) -> (Session, HostPackets) {
        let (to_host, mut to_host_rx) = mpsc::channel::<Vec<u8>>(64);
        let (from_host_tx, from_host) = mpsc::channel::<Vec<u8>>(64);
        self.current.lock().expect("lock").1 = Some(from_host_tx);
        let shared = self.clone();
        tokio::spawn(async move {
            while let Some(p) = to_host_rx.recv().await {
                // Anti-spoofing: only the peer's own address may leave the line.
                let src = ipv4::Header::parse(&p).map(|h| h.src).ok();
                let peer = shared.current.lock().expect("lock").0;
                match (&shared.tun, src) {
                    (Some(tun), Some(s)) if Some(s) == peer => {
                        let _ = tun.send(&p).await;
                    }
                    _ => tracing::debug!(?src, "dropped packet with a foreign source address"),
                }
            }
        });
        (
            Session {
                shared: self.clone(),
                up: false,
            },
            HostPackets::new(to_host, from_host),
        )
    }
}

struct LinePort {
    shared: Arc<Shared>,
}

impl PortHooks for LinePort {
    type Session = Session;

    fn new_session(&mut self, call: &CallInfo, kill: &CancellationToken) -> (Session, HostPackets) {
        if let Some(c) = &call.connect {
            tracing::info!(caller = ?c.caller.number, speed = ?c.speed, "call");
        }
        *self.shared.kill.lock().expect("lock") = Some(kill.clone());
        self.shared.session()
    }

    fn session_ended(&mut self, _s: Session, reason: DownReason, stats: LinkStats) {
        report(reason, &stats);
    }

    fn status(&mut self, status: &PortStatus) {
        tracing::info!(state = ?status.state, calls = status.calls, error = ?status.last_error, "port");
    }
}

fn report(reason: DownReason, s: &LinkStats) {
    println!(
        "session ended: {reason}; frames in {} out {}, packets in {} out {}, bad fcs {}, \
         echo requests {} replies {}",
        s.rx_frames,
        s.tx_frames,
        s.rx_packets,
        s.tx_packets,
        s.decoder.bad_fcs,
        s.echo_requests,
        s.echo_replies
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let config = link_config(&args)?;
    let secrets = match &args.secrets {
        Some(p) => {
            let (s, warnings) = Secrets::load(p)?;
            for w in warnings {
                tracing::warn!("{w}");
            }
            s
        }
        None if config.lcp.auth.is_empty() => Secrets::default(),
        None => bail!("--secrets is needed unless --auth none"),
    };
    let tun = match &args.tun {
        Some(name) => Some(Arc::new(Tun::open(name)?)),
        None => None,
    };
    let shared = Arc::new(Shared {
        secrets,
        default_ip: args.peer_ip,
        local_ip: args.local_ip,
        tun: tun.clone(),
        current: Mutex::new((None, None)),
        kill: Mutex::new(None),
    });
    if let Some(tun) = tun {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = tun.recv(&mut buf).await {
                let inbox = shared.current.lock().expect("lock").1.clone();
                if let Some(tx) = inbox {
                    let _ = tx.try_send(buf[..n].to_vec());
                }
            }
        });
    }

    let cancel = CancellationToken::new();
    // SIGUSR1 ends the running session and leaves the line ready for the next call.
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    let s2 = shared.clone();
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            if let Some(k) = s2.kill.lock().expect("lock").take() {
                tracing::info!("SIGUSR1: ending the session");
                k.cancel();
            }
        }
    });
    let c = cancel.clone();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        c.cancel();
    });

    if args.device.as_os_str() == "-" {
        // Standard input: one session on a direct line.
        let mut line = FdLine::stdin().context("cannot use standard input as the line")?;
        let mut link = Link::new(config, nasd::driver::random_seed()?);
        let (mut s, mut host) = shared.session();
        let watch = CarrierWatch::default();
        let reason =
            session::run(&mut line, &[], &mut link, &mut s, &mut host, cancel, watch).await;
        report(reason, &link.stats());
        return Ok(());
    }

    let mode = match args.mode {
        Mode::Direct => PortMode::Direct,
        Mode::Modem => {
            let mut m = ModemConfig {
                rings: args.rings,
                ..ModemConfig::default()
            };
            if !args.init.is_empty() {
                m.init = args.init.iter().map(|c| ChatStep::ok(c)).collect();
            }
            PortMode::Modem(m)
        }
    };
    let spec = PortSpec {
        name: args
            .device
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        settings: PortSettings {
            device: args.device.clone(),
            speed: args.speed,
            rtscts: args.rtscts,
            lock_dir: (args.lock_dir != "none").then(|| PathBuf::from(&args.lock_dir)),
        },
        mode,
        link: config,
        login: args.login.then(LoginConfig::default),
        min_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
    };
    let max_calls = (args.calls > 0).then_some(args.calls);
    port::run(spec, LinePort { shared }, cancel, max_calls).await;
    Ok(())
}
