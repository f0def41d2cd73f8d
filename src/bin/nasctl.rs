//! nasctl: talks to a running nasd over its control socket.
//!
//! ```text
//! nasctl sessions [--json] [--user U] [--port P]   who is online
//! nasctl kill <id|user|ip>                         end sessions (reason admin)
//! nasctl ports [--json]                            each port's state
//! nasctl stats [--json]                            daemon-wide counters
//! nasctl capture <port> -w FILE|-                  the line's PPP frames, as pcap
//! nasctl reload                                    re-read the configuration (as SIGHUP)
//! nasctl version                                   nasctl's and nasd's versions
//! nasctl sip registrations [--json]                the SIP bridge's registered devices
//! nasctl sip calls [--json]                        the SIP bridge's calls in progress
//! ```
//!
//! The socket is `--socket PATH`, else `[control] socket` of `--config FILE`, else
//! `/run/nasd/control.sock`.

use clap::{Parser, Subcommand};
use nasd::control::client::{Client, ClientError};
use nasd::control::{Command, PortView, SessionView, StatsView, VersionView};
use nasd::control::{capture_client, show};
use nasd::sip::view::{CallView, RegistrationView};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(version, about = "Control a running nasd")]
struct Args {
    /// The control socket.
    #[arg(long, short, global = true)]
    socket: Option<PathBuf>,
    /// nasd's configuration file (its `[control] socket` is used).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the live sessions.
    Sessions {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this user's sessions.
        #[arg(long)]
        user: Option<String>,
        /// Only this port's sessions.
        #[arg(long)]
        port: Option<String>,
    },
    /// End the sessions with this id, user name or address.
    Kill {
        /// A session id, a user name or an address.
        target: String,
    },
    /// Show each port's state.
    Ports {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show daemon-wide counters.
    Stats {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Capture a port's PPP frames (pcap, LINKTYPE_PPP_HDLC; 204 with --direction).
    Capture {
        /// The port's name.
        port: String,
        /// Record each frame's direction (pcap link type 204, PPP with direction).
        #[arg(long)]
        direction: bool,
        /// The file to write, `-` for standard output (e.g. `| tshark -r -`).
        #[arg(short = 'w', long = "write")]
        write: String,
        /// Stop after this many frames.
        #[arg(long)]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Re-read nasd's configuration (as SIGHUP does).
    Reload,
    /// Show nasctl's and nasd's versions.
    Version,
    /// The SIP bridge: registered devices and calls.
    Sip {
        #[command(subcommand)]
        cmd: SipCmd,
    },
}

#[derive(Subcommand, Debug)]
enum SipCmd {
    /// List the registered SIP devices (ATAs, phones) and their reachability.
    Registrations {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the calls in progress.
    Calls {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let socket = match socket_path(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nasctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nasctl: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args.cmd, socket)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nasctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn socket_path(args: &Args) -> Result<PathBuf, String> {
    if let Some(s) = &args.socket {
        return Ok(s.clone());
    }
    if let Some(c) = &args.config {
        let config = nasd::config::Config::load(c).map_err(|e| e.to_string())?;
        return Ok(config.control.socket);
    }
    Ok(PathBuf::from(nasd::config::DEFAULT_SOCKET))
}

async fn run(cmd: Cmd, socket: PathBuf) -> Result<(), ClientError> {
    if let Cmd::Capture {
        port,
        write,
        direction,
        count,
        duration,
    } = cmd
    {
        return capture_client::run(&socket, &port, &write, direction, count, duration).await;
    }
    let mut client = Client::connect(&socket).await?;
    match cmd {
        Cmd::Sessions { json, user, port } => {
            let data = client.request(Command::Sessions { user, port }).await?;
            if json {
                print_json(&data);
            } else {
                let sessions: Vec<SessionView> = parse(data)?;
                println!("{}", show::sessions(&sessions));
            }
        }
        Cmd::Kill { target } => {
            let data = client.request(Command::Kill { target }).await?;
            let n = data["killed"].as_u64().unwrap_or(0);
            let ended = data["ended"].as_u64().unwrap_or(0);
            let s = if n == 1 { "" } else { "s" };
            println!("{n} session{s} killed ({ended} ended)");
        }
        Cmd::Ports { json } => {
            let data = client.request(Command::Ports).await?;
            if json {
                print_json(&data);
            } else {
                let ports: Vec<PortView> = parse(data)?;
                println!("{}", show::ports(&ports));
            }
        }
        Cmd::Stats { json } => {
            let data = client.request(Command::Stats).await?;
            if json {
                print_json(&data);
            } else {
                let stats: StatsView = parse(data)?;
                print!("{}", show::stats(&stats));
            }
        }
        Cmd::Reload => {
            let data = client.request(Command::Reload).await?;
            println!(
                "configuration reloaded ({} ports)",
                data["ports"].as_u64().unwrap_or(0)
            );
        }
        Cmd::Version => {
            let data = client.request(Command::Version).await?;
            let v: VersionView = parse(data)?;
            println!("nasctl {}", env!("CARGO_PKG_VERSION"));
            println!("nasd {} (control protocol {})", v.version, v.protocol);
        }
        Cmd::Sip { cmd } => sip(&mut client, cmd).await?,
        Cmd::Capture { .. } => {}
    }
    Ok(())
}

async fn sip(client: &mut Client, cmd: SipCmd) -> Result<(), ClientError> {
    match cmd {
        SipCmd::Registrations { json } => {
            let data = client.request(Command::SipRegistrations).await?;
            if json {
                print_json(&array(data)?);
            } else {
                let regs: Vec<RegistrationView> = parse(data)?;
                println!("{}", show::sip_registrations(&regs));
            }
        }
        SipCmd::Calls { json } => {
            let data = client.request(Command::SipCalls).await?;
            if json {
                print_json(&array(data)?);
            } else {
                let calls: Vec<CallView> = parse(data)?;
                println!("{}", show::sip_calls(&calls));
            }
        }
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(data: serde_json::Value) -> Result<T, ClientError> {
    serde_json::from_value(data)
        .map_err(|e| ClientError::Protocol(format!("nasd's answer is not understood: {e}")))
}

/// `data` if it is a JSON array (what the list commands answer).
fn array(data: serde_json::Value) -> Result<serde_json::Value, ClientError> {
    if data.is_array() {
        Ok(data)
    } else {
        Err(ClientError::Protocol(
            "nasd's answer is not understood: expected a list".into(),
        ))
    }
}

fn print_json(data: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string())
    );
}
