//! nasd: the modem-pool daemon.
//!
//! `nasd --config FILE` runs in the foreground and logs to stderr, or to the journal with
//! structured fields under systemd; `nasd --config FILE --check` validates the configuration and exits.
//! SIGTERM or SIGINT ends every session cleanly and exits; SIGHUP reloads the configuration
//! (secrets, ports added or removed) without dropping live sessions.

use anyhow::Result;
use clap::Parser;
use nasd::config::Config;
use nasd::daemon::{self, DaemonSpec};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(version, about = "nasd, the dial-up network access server")]
struct Args {
    /// The configuration file.
    #[arg(long, short, default_value = "/etc/nasd/nasd.toml")]
    config: PathBuf,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn load(path: &std::path::Path) -> Result<(Config, DaemonSpec), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let spec =
        DaemonSpec::from_config(&config).map_err(|e| format!("{}: {e:#}", path.display()))?;
    Ok((config, spec))
}

/// Logging: to the journal with structured fields (PORT, SESSION, USER, ...) when systemd
/// connected stderr to it (`$JOURNAL_STREAM`) and journald answers; else text on stderr.
fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let journald = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| tracing_journald::layer().ok())
        .map(|l| {
            l.with_syslog_identifier("nasd".into())
                .with_field_prefix(None)
        });
    let fmt = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(fmt)
        .init();
}

fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    let (config, spec) = match load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for w in config.warnings() {
        eprintln!("warning: {w}");
    }
    if args.check {
        println!(
            "{}: configuration is valid ({} ports)",
            args.config.display(),
            spec.ports.len()
        );
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(args.config, spec)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("nasd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: PathBuf, spec: DaemonSpec) -> Result<()> {
    let cancel = CancellationToken::new();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let c = cancel.clone();
    // `nasctl reload` reads the configuration as SIGHUP does.
    let reloader: daemon::Reloader = {
        let path = path.clone();
        std::sync::Arc::new(move || load(&path).map(|(_, spec)| spec))
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    match load(&path) {
                        Ok((_, spec)) => {
                            tracing::info!("SIGHUP: reloading {}", path.display());
                            let _ = reload_tx.send(spec).await;
                        }
                        Err(e) => tracing::error!("SIGHUP: the new configuration is invalid, keeping the old one: {e}"),
                    }
                }
            }
        }
        c.cancel();
    });
    daemon::run_with(spec, cancel, reload_rx, Some(reloader)).await
}
