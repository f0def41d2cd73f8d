//! nasd-line: the PPP server on one line, without the modem pool around it.
//!
//! A debugging and interop tool, and the thinnest driver of the engine: it opens a serial
//! line (or a pseudo-terminal), runs one PPP session on it, authenticates against a
//! pppd-style secrets file and, with `--tun`, routes the peer's packets through a TUN device
//! so the host's kernel answers them. It exits when the session ends.

use anyhow::{Context, Result, bail};
use clap::Parser;
use nasd::auth::secrets::Secrets;
use nasd::driver::fdline::FdLine;
use nasd::driver::session::{self, AuthFuture, Hooks, HostPackets};
use nasd::driver::tun::Tun;
use nasd::proto::auth::{AuthRequest, AuthResult, Credentials, Grant};
use nasd::proto::lcp::AuthProto;
use nasd::proto::link::{Link, LinkConfig, SessionInfo};
use nasd::proto::wire::ipv4;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_serial::SerialPortBuilderExt;
use tokio_util::sync::CancellationToken;

trait Line: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Line for T {}

#[derive(Parser, Debug)]
#[command(version, about = "Run the nasd PPP server on one line")]
struct Args {
    /// The line: a serial device, a pseudo-terminal such as /dev/pts/3, or `-` for standard
    /// input (a pty master or socket handed over by a getty or a test rig).
    #[arg(long)]
    device: PathBuf,
    /// Line speed.
    #[arg(long, default_value_t = 115_200)]
    speed: u32,
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
    #[arg(long, default_value_t = 0)]
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
}

struct LineHooks {
    secrets: Arc<Secrets>,
    default_ip: Ipv4Addr,
    tun: Option<String>,
    local_ip: Ipv4Addr,
}

impl Hooks for LineHooks {
    fn authorize(&mut self, req: AuthRequest) -> AuthFuture {
        let secrets = self.secrets.clone();
        let default_ip = self.default_ip;
        Box::pin(async move {
            let reject = AuthResult::Reject {
                message: "Authentication failed".into(),
            };
            if req.credentials == Credentials::None {
                return AuthResult::Accept(Grant::new(default_ip));
            }
            let Some(entry) = secrets.lookup(&req.user, "*") else {
                tracing::warn!(user = %req.user, "no secrets entry");
                return reject;
            };
            if !req.verify_secret(entry.secret.expose()) || !entry.allows_session() {
                tracing::warn!(user = %req.user, "authentication failed");
                return reject;
            }
            AuthResult::Accept(Grant::new(entry.fixed_address().unwrap_or(default_ip)))
        })
    }

    fn up(&mut self, info: &SessionInfo) {
        let Some(tun) = &self.tun else { return };
        let run = |args: &[&str]| {
            let st = std::process::Command::new("ip").args(args).status();
            if !st.is_ok_and(|s| s.success()) {
                tracing::error!(?args, "ip command failed");
            }
        };
        let (l, p, mtu) = (
            self.local_ip.to_string(),
            info.peer_ip.to_string(),
            info.peer_mru.to_string(),
        );
        run(&["addr", "add", &l, "peer", &p, "dev", tun]);
        run(&["link", "set", tun, "mtu", &mtu, "up"]);
    }
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
    Ok(c)
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
    let line: Box<dyn Line> = if args.device.as_os_str() == "-" {
        Box::new(FdLine::stdin().context("cannot use standard input as the line")?)
    } else {
        Box::new(
            tokio_serial::new(args.device.to_string_lossy(), args.speed)
                .open_native_async()
                .with_context(|| format!("cannot open line {}", args.device.display()))?,
        )
    };

    let (to_host, mut to_host_rx) = mpsc::channel::<Vec<u8>>(64);
    let (from_host_tx, from_host) = mpsc::channel::<Vec<u8>>(64);
    let peer_ip = Arc::new(std::sync::Mutex::new(None::<Ipv4Addr>));
    if let Some(name) = &args.tun {
        let tun = Arc::new(Tun::open(name)?);
        let t = tun.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = t.recv(&mut buf).await {
                if from_host_tx.send(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        });
        let peer = peer_ip.clone();
        tokio::spawn(async move {
            while let Some(p) = to_host_rx.recv().await {
                // Anti-spoofing: only the peer's own address may leave the line.
                let src = ipv4::Header::parse(&p).map(|h| h.src).ok();
                if src.is_some() && src == *peer.lock().expect("lock") {
                    let _ = tun.send(&p).await;
                } else {
                    tracing::debug!(?src, "dropped packet with a foreign source address");
                }
            }
        });
    }

    struct Tracking<'a>(LineHooks, &'a std::sync::Mutex<Option<Ipv4Addr>>);
    impl Hooks for Tracking<'_> {
        fn authorize(&mut self, req: AuthRequest) -> AuthFuture {
            self.0.authorize(req)
        }
        fn up(&mut self, info: &SessionInfo) {
            *self.1.lock().expect("lock") = Some(info.peer_ip);
            self.0.up(info);
        }
    }
    let mut hooks = Tracking(
        LineHooks {
            secrets: Arc::new(secrets),
            default_ip: args.peer_ip,
            tun: args.tun.clone(),
            local_ip: args.local_ip,
        },
        &peer_ip,
    );
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        c.cancel();
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let c = cancel.clone();
    tokio::spawn(async move {
        term.recv().await;
        c.cancel();
    });
    let mut link = Link::new(config, nasd::driver::random_seed()?);
    let host = HostPackets { to_host, from_host };
    let reason = session::run(line, &mut link, &mut hooks, host, cancel).await;
    let s = link.stats();
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
    Ok(())
}
