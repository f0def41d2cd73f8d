//! vmodem: a virtual modem pool, the stand-in for a rack of Hayes modems and the telephone
//! network, so that nasd can be tested and demonstrated without hardware.
//!
//! `vmodem --dir DIR --lines N` makes `DIR/server<i>` (the pty nasd answers on),
//! `DIR/client<i>` (the pty a dial-in client uses), `DIR/client<i>.sock` (the same client
//! line as a Unix socket, for User-Mode Linux) and `DIR/control.sock`, prints one JSON
//! `{"ready":true,..}` line, and runs until SIGTERM or SIGINT. `vmodem ctl --dir DIR JSON`
//! sends one control request and prints the reply. See `nasd::vmodem` for the details.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use nasd::vmodem::channel::Noise;
use nasd::vmodem::hayes::ModemConfig;
use nasd::vmodem::pool::{self, PoolConfig};
use nasd::vmodem::switch::{MAX_RATE, MIN_RATE, SwitchConfig};

/// Most server (and client) lines one pool runs.
const MAX_LINES: usize = 2048;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A virtual modem pool: Hayes modems and a telephone network on pseudo-terminals",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send one JSON request to a running pool's control socket and print the reply.
    Ctl {
        /// The pool's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The request, e.g. '{"cmd":"list"}'.
        json: String,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Directory for the pty links and sockets (created if missing).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Server lines: modems nasd answers on.
    #[arg(long, default_value_t = 1)]
    lines: usize,
    /// Client lines: modems that dial in (default: as many as --lines).
    #[arg(long)]
    clients: Option<usize>,
    /// A number that reaches the pool's hunt group (repeatable; default 5551234).
    #[arg(long = "number")]
    numbers: Vec<String>,
    /// Caller number of client line 0, 1, ... in order (repeatable; default 555<4 digits>).
    #[arg(long = "caller-number")]
    caller_numbers: Vec<String>,
    /// Line rate in bits per second (10 bits per byte on the wire).
    #[arg(long, default_value_t = 33_600)]
    rate: u32,
    /// Bit error rate of every line.
    #[arg(long, default_value_t = 0.0)]
    ber: f64,
    /// Byte drop probability of every line.
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// Latency added to every line, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed of the noise generators.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Milliseconds between RINGs.
    #[arg(long, default_value_t = 2000)]
    ring_interval_ms: u64,
    /// Milliseconds before BUSY for an unknown number or a full pool.
    #[arg(long, default_value_t = 1000)]
    reject_delay_ms: u64,
    /// Appended to "CONNECT <rate>", e.g. /ARQ.
    #[arg(long, default_value = "")]
    connect_suffix: String,
    /// What ATI answers.
    #[arg(long, default_value = "vmodem")]
    identity: String,
    /// Replace a server line's pty whenever a call on it ends (like a USB modem that
    /// vanishes): its opener reads EOF and the DIR/server<i> link moves to a new pty.
    #[arg(long)]
    eof_on_hangup: bool,
    /// Milliseconds between checks of a closed pty for a new opener.
    #[arg(long, default_value_t = 200)]
    recheck_ms: u64,
}

impl RunArgs {
    fn config(self) -> Result<PoolConfig> {
        let Some(dir) = self.dir else {
            bail!("--dir is required");
        };
        // 4096 is the kernel's default pty limit (/proc/sys/kernel/pty/max); each line
        // takes one pty per side, and the scale benchmark runs 1,000 lines.
        if !(1..=MAX_LINES).contains(&self.lines) {
            bail!("--lines must be between 1 and {MAX_LINES}");
        }
        let clients = self.clients.unwrap_or(self.lines);
        if clients > MAX_LINES {
            bail!("--clients must be at most {MAX_LINES}");
        }
        if !(MIN_RATE..=MAX_RATE).contains(&self.rate) {
            bail!("--rate must be between {MIN_RATE} and {MAX_RATE}");
        }
        let noise = Noise {
            ber: self.ber,
            drop: self.drop,
            latency_ms: self.latency_ms,
        };
        if let Err(e) = noise.validate() {
            bail!("{e}");
        }
        let mut numbers = self.numbers;
        if numbers.is_empty() {
            numbers.push("5551234".into());
        }
        for n in &numbers {
            if n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
            {
                bail!("--number {n:?}: only digits, * and # can be dialled");
            }
        }
        if self.ring_interval_ms == 0 || self.recheck_ms == 0 {
            bail!("--ring-interval-ms and --recheck-ms must be positive");
        }
        let dir = std::path::absolute(&dir)?;
        Ok(PoolConfig {
            dir,
            switch: SwitchConfig {
                lines: self.lines,
                clients,
                numbers,
                caller_numbers: self.caller_numbers,
                rate: self.rate,
                noise,
                ring_interval: Duration::from_millis(self.ring_interval_ms),
                reject_delay: Duration::from_millis(self.reject_delay_ms),
                connect_suffix: self.connect_suffix,
                seed: self.seed,
                modem: ModemConfig {
                    identity: self.identity,
                },
                ..SwitchConfig::default()
            },
            eof_on_hangup: self.eof_on_hangup,
            recheck: Duration::from_millis(self.recheck_ms),
        })
    }
}

/// Registers SIGTERM and SIGINT handlers now (before the ready line) and returns a future
/// that completes on either.
fn shutdown() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Ctl { dir, json }) => {
            match nasd::vmodem::control::request(&dir.join("control.sock"), &json).await {
                Ok(reply) => {
                    println!("{reply}");
                    let ok = serde_json::from_str::<serde_json::Value>(&reply)
                        .is_ok_and(|v| v["ok"] == true);
                    return if ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    };
                }
                Err(e) => Err(anyhow::Error::from(e).context("control socket")),
            }
        }
        None => match (cli.run.config(), shutdown()) {
            (Ok(config), Ok(signals)) => pool::run(config, signals).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmodem: {e:#}");
            ExitCode::FAILURE
        }
    }
}
