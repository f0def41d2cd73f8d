//! The daemon's configuration: a TOML file (`nasd --config FILE`; `--check` validates it
//! without running) read into a typed [`Config`].
//!
//! Every problem in a file is reported at once, each with its file, line and column
//! ([`ConfigError`]); a key that nasd does not know is an error too. Devices need not exist
//! when the file is read (a USB modem may be plugged in later: its port backs off and tries
//! again), but [`Config::warnings`] mentions those that do not.
//!
//! # Schema
//!
//! ```toml
//! [network]
//! local_ip = "10.0.0.1"          # required: nasd's address on every link
//! pool = "10.0.0.100-10.0.0.199" # required: "A.B.C.D-A.B.C.E" or "A.B.C.D/N" (a network's
//!                                # own and broadcast addresses are left out; /31 and /32
//!                                # give all theirs); at most 65536 addresses
//! dns = ["10.0.0.1"]             # 0-2 DNS servers offered to callers (default none)
//! nbns = []                      # 0-2 NBNS (WINS) servers (default none)
//! tun = "nasd0"                  # the TUN interface (default "nasd0")
//! masquerade = "eth0"            # NAT callers out of this interface (default: no NAT)
//! proxy_arp = false              # answer ARP for callers' addresses (default false)
//! isolate_clients = false        # callers cannot reach each other (default false)
//!
//! [ppp]
//! auth = ["chap", "pap"]         # required protocols, preferred first; [] = none
//! mru = 1500                     # 128-16384
//! echo_interval = 30             # seconds between LCP echoes on a quiet link; 0 = off
//! echo_failure = 4               # unanswered echoes before the link is dead
//! idle_timeout = 0               # seconds without traffic; 0 or absent = none
//! session_timeout = 0            # seconds; 0 or absent = none
//! first_request_delay_ms = 1000  # wait before our first Configure-Request (max 60000)
//! chap_interval = 0              # seconds between CHAP re-challenges; 0 = never
//! restart = 3                    # restart timer, seconds
//! max_configure = 10
//! max_terminate = 2
//! max_failure = 5
//! login = false                  # classic text login before PPP
//!
//! [auth]
//! secrets = "/etc/ppp/chap-secrets" # pppd-style secrets file; this is the default unless
//!                                   # pam_service is set, then there is none by default
//! pam_service = "nasd"           # check PAP and login passwords with PAM (not CHAP)
//! name = "nasd"                  # our CHAP name (default "nasd")
//!
//! [control]
//! socket = "/run/nasd/control.sock"
//! group = "dialout"              # group owning the socket (default: root's)
//!
//! [accounting]
//! journal = "/var/lib/nasd/accounting.jsonl" # every start, interim and stop, fsync'd
//! interim_interval = 300         # seconds between interim records; 0 = none
//!
//! [radius]                       # absent: no RADIUS
//! authenticate = true            # check credentials with RADIUS (default true)
//! accounting = true              # send accounting to RADIUS (default true)
//! nas_identifier = "nasd"        # NAS-Identifier (default: [auth] name)
//! nas_ip = "192.0.2.10"          # NAS-IP-Address (default: none sent)
//! timeout = 3                    # seconds per try, 1-60
//! retries = 3                    # tries per server before the next, 1-10
//! dae_listen = "0.0.0.0:3799"    # RFC 5176 Disconnect/CoA server (absent: off)
//! [[radius.server]]              # one or more, tried in order (fail-over)
//! address = "192.0.2.1"
//! secret = "shared-secret"
//! auth_port = 1812
//! acct_port = 1813
//! [[radius.dae_client]]          # who may send Disconnect/CoA requests
//! address = "192.0.2.1"
//! secret = "shared-secret"
//!
//! [[port]]                       # one table per line; at least one
//! device = "/dev/ttyUSB0"        # required; need not exist yet
//! name = "ttyUSB0"               # default: the device's file name
//! mode = "modem"                 # "modem" or "direct" (null-modem cable)
//! speed = 115200
//! flow_control = "rtscts"        # "rtscts" or "none"; default rtscts for a modem, none
//!                                # for a direct line (three-wire cables have no RTS/CTS)
//! init = ["ATQ0V1H0", "ATS0=0Q0&D3&C1"] # each must answer OK (mgetty's default)
//! answer = "ATA"
//! rings = 1
//! answer_timeout = 80            # seconds to wait for CONNECT
//! health_interval = 60           # seconds between idle "AT" checks; 0 = never
//! lock_dir = "/var/lock"         # UUCP lock files; "none" = no lock
//! toggle_dtr_ms = 500            # DTR low this long to hang up
//! login = false                  # overrides [ppp] login for this port
//! number = "5551234"             # the line's telephone number (Called-Station-Id)
//!
//! [sip]                          # the SIP bridge; absent: none
//! listen = "0.0.0.0:5060"        # an address alone means port 5060
//! public = "192.0.2.1:5060"      # address for Via/Contact (default: found from the host)
//! realm = "nasd"                 # the digest realm
//! allow = ["10.0.0.0/8"]         # source ACL (addresses or networks); absent/[] = everyone
//! qualify = 60                   # seconds between OPTIONS probes; 0 or absent = off
//! qualify_max_ms = 200           # slower answers are "lagged", 1-60000
//! ring_timeout = 20              # seconds per line before the next, 1-3600
//! min_expires = 60               # min_expires <= default_expires <= max_expires
//! max_expires = 7200
//! default_expires = 3600
//! nonce_lifetime = 300           # seconds, 1-86400
//! max_message_size = 8192        # bytes, 1024-65507
//! max_calls = 1000               # 1-100000
//! [[sip.account]]
//! name = "line1"                 # required, unique, SIP token characters, at most 64
//! secret = "s3cret"              # required, non-empty; never shown
//! extension = "101"              # names, extensions and aliases: one namespace
//! aliases = ["modem1"]
//! port = "ttyUSB0"               # a modem [[port]], rung by at most one account
//! [[sip.group]]
//! name = "modems"                # unique
//! lines = ["line1"]              # accounts, hunted in order; not empty
//! [[sip.rule]]                   # a Kamailio dialplan row
//! priority = 0
//! match_op = "regex"             # "equal", "regex", "fnmatch" or 0, 1, 2
//! match_exp = "^9"               # required
//! match_len = 0                  # 0 or absent: any length
//! subst_exp = "^9(.*)$"
//! repl_exp = "\\1"
//! attrs = ""
//! group = "modems"               # exactly one of account = "..." / group = "..."
//! ```

mod pool;
mod raw;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sip;
mod validate;

pub use pool::{MAX_POOL, Pool, PoolError};

use crate::driver::port::{PortMode, PortSpec};
use crate::driver::serial::PortSettings;
use crate::proto::auth::AuthConfig;
use crate::proto::fsm::FsmConfig;
use crate::proto::ipcp::IpcpConfig;
use crate::proto::lcp::{AuthProto, LcpConfig};
use crate::proto::link::LinkConfig;
use crate::proto::login::LoginConfig;
use crate::proto::modem::{ChatStep, ModemConfig};
use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::path::{Path, PathBuf};

/// The secrets file used when `[auth] secrets` is absent and no `pam_service` is set.
pub const DEFAULT_SECRETS: &str = "/etc/ppp/chap-secrets";
/// The control socket when `[control] socket` is absent.
pub const DEFAULT_SOCKET: &str = "/run/nasd/control.sock";
/// The accounting journal when `[accounting] journal` is absent.
pub const DEFAULT_JOURNAL: &str = "/var/lib/nasd/accounting.jsonl";
/// The TUN interface when `[network] tun` is absent.
pub const DEFAULT_TUN: &str = "nasd0";
/// The UUCP lock directory when a port's `lock_dir` is absent.
pub const DEFAULT_LOCK_DIR: &str = "/var/lock";
/// The modem init chat when a port's `init` is absent (mgetty's).
pub const DEFAULT_INIT: [&str; 2] = ["ATQ0V1H0", "ATS0=0Q0&D3&C1"];

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file's name as given to [`Config::from_str`] or [`Config::load`].
    pub source: String,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the problem has a place in the file.
    pub column: Option<usize>,
    /// What is wrong, e.g. `[network] pool: "10.0.0.300-10.0.0.399" is not an address range`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.source, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.source, self.message),
            _ => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

/// Everything wrong with a configuration file (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    /// The problems, in the order of the file where they have a place.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// `[network]`: addresses and the host side of the datapath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// nasd's address on every link.
    pub local_ip: Ipv4Addr,
    /// The addresses given to callers.
    pub pool: Pool,
    /// DNS servers offered to callers (0-2).
    pub dns: Vec<Ipv4Addr>,
    /// NBNS (WINS) servers offered to callers (0-2).
    pub nbns: Vec<Ipv4Addr>,
    /// The TUN interface.
    pub tun: String,
    /// NAT callers' traffic out of this interface (`None`: no NAT).
    pub masquerade: Option<String>,
    /// Answer ARP on the LAN for callers' addresses.
    pub proxy_arp: bool,
    /// Callers cannot reach each other.
    pub isolate_clients: bool,
}

/// `[ppp]`: the PPP settings of every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppConfig {
    /// Required authentication protocols, preferred first; empty for none.
    pub auth: Vec<AuthProto>,
    /// The MRU we ask for.
    pub mru: u16,
    /// Interval of LCP Echo-Requests on a quiet link (`None`: off).
    pub echo_interval: Option<Duration>,
    /// Unanswered Echo-Requests after which the link is dead.
    pub echo_failure: u32,
    /// End a session after this long without traffic.
    pub idle_timeout: Option<Duration>,
    /// End a session after this long.
    pub session_timeout: Option<Duration>,
    /// Wait this long before our first Configure-Request.
    pub first_request_delay: Duration,
    /// Re-challenge CHAP peers this often (`None`: never).
    pub chap_interval: Option<Duration>,
    /// The restart timer of LCP, IPCP and CHAP.
    pub restart: Duration,
    /// Configure-Requests without answer before giving up.
    pub max_configure: u32,
    /// Terminate-Requests without answer before giving up.
    pub max_terminate: u32,
    /// Configure-Naks before Naks become Rejects.
    pub max_failure: u32,
    /// Offer a classic text login before PPP (ports may override).
    pub login: bool,
}

/// `[auth]`: where credentials are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The pppd-style secrets file (`None` when PAM checks every password).
    pub secrets: Option<PathBuf>,
    /// The PAM service checking PAP and login passwords (`None`: no PAM).
    pub pam_service: Option<String>,
    /// Our name in CHAP challenges.
    pub name: String,
}

/// `[control]`: the control socket of `nasctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// The socket's path.
    pub socket: PathBuf,
    /// The group owning the socket (`None`: nasd's own).
    pub group: Option<String>,
}

/// `[accounting]`: where sessions are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingConfig {
    /// The JSON-lines journal of sessions.
    pub journal: PathBuf,
    /// Time between interim records of a running session (`None`: none).
    pub interim_interval: Option<Duration>,
}

/// One RADIUS server (or one client allowed to send Disconnect/CoA requests).
#[derive(Clone, PartialEq, Eq)]
pub struct RadiusPeer {
    /// Its address.
    pub address: core::net::IpAddr,
    /// The shared secret.
    pub secret: String,
    /// Its authentication port (1812).
    pub auth_port: u16,
    /// Its accounting port (1813).
    pub acct_port: u16,
}

impl fmt::Debug for RadiusPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RadiusPeer")
            .field("address", &self.address)
            .field("secret", &"<redacted>")
            .field("auth_port", &self.auth_port)
            .field("acct_port", &self.acct_port)
            .finish()
    }
}

/// `[radius]`: a pool of RADIUS servers shared with other NAS boxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusSettings {
    /// The servers, in the order they are tried.
    pub servers: Vec<RadiusPeer>,
    /// Check credentials with RADIUS.
    pub authenticate: bool,
    /// Send accounting records to RADIUS.
    pub accounting: bool,
    /// NAS-Identifier.
    pub nas_identifier: String,
    /// NAS-IP-Address, if any.
    pub nas_ip: Option<Ipv4Addr>,
    /// How long one try waits for an answer.
    pub timeout: Duration,
    /// Tries per server before the next.
    pub retries: u32,
    /// Where the RFC 5176 server listens (`None`: off).
    pub dae_listen: Option<core::net::SocketAddr>,
    /// Who may send Disconnect and CoA requests.
    pub dae_clients: Vec<RadiusPeer>,
}

/// How a port is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMode {
    /// A modem: init chat, RING, answer, CONNECT.
    Modem,
    /// A direct (null-modem) line: PPP as soon as the line is open.
    Direct,
}

/// Flow control on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowControl {
    /// RTS/CTS hardware flow control.
    RtsCts,
    /// None.
    None,
}

/// One `[[port]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// The port's name in logs and `nasctl`.
    pub name: String,
    /// The device (need not exist yet).
    pub device: PathBuf,
    /// Modem or direct line.
    pub mode: LineMode,
    /// Bits per second.
    pub speed: u32,
    /// Flow control.
    pub flow_control: FlowControl,
    /// Modem init commands, each answered with OK.
    pub init: Vec<String>,
    /// The modem's answer command.
    pub answer: String,
    /// RINGs before answering.
    pub rings: u32,
    /// How long to wait for CONNECT after answering.
    pub answer_timeout: Duration,
    /// Check the idle modem this often (`None`: never).
    pub health_interval: Option<Duration>,
    /// Where UUCP lock files live (`None`: no lock).
    pub lock_dir: Option<PathBuf>,
    /// How long DTR stays low to hang up.
    pub toggle_dtr: Duration,
    /// Text login before PPP on this port (`None`: as `[ppp] login`).
    pub login: Option<bool>,
    /// The line's telephone number (RADIUS Called-Station-Id).
    pub number: Option<String>,
}

impl PortConfig {
    /// How to open the port.
    pub fn settings(&self) -> PortSettings {
        PortSettings {
            device: self.device.clone(),
            speed: self.speed,
            rtscts: self.flow_control == FlowControl::RtsCts,
            lock_dir: self.lock_dir.clone(),
        }
    }

    /// How the port is driven: a modem dialogue with its settings, or a direct line.
    pub fn mode(&self) -> PortMode {
        match self.mode {
            LineMode::Direct => PortMode::Direct,
            LineMode::Modem => PortMode::Modem(ModemConfig {
                init: self.init.iter().map(|c| ChatStep::ok(c)).collect(),
                rings: self.rings,
                answer: self.answer.clone(),
                answer_timeout: self.answer_timeout,
                health_interval: self.health_interval,
                toggle_dtr: self.toggle_dtr,
                ..ModemConfig::default()
            }),
        }
    }
}

/// Something for `--check` to mention that does not stop nasd.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Warning {
    /// Known when the file was read.
    Fixed(String),
    /// `{prefix}{path} does not exist{rest}`, checked when the warnings are asked for.
    MissingPath {
        prefix: String,
        path: PathBuf,
        rest: &'static str,
    },
}

/// The whole configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[network]`.
    pub network: NetworkConfig,
    /// `[ppp]`.
    pub ppp: PppConfig,
    /// `[auth]`.
    pub auth: AuthSettings,
    /// `[control]`.
    pub control: ControlConfig,
    /// `[accounting]`.
    pub accounting: AccountingConfig,
    /// `[radius]` (`None`: no RADIUS).
    pub radius: Option<RadiusSettings>,
    /// The `[[port]]`s, in file order (at least one).
    pub ports: Vec<PortConfig>,
    /// `[sip]`: the SIP bridge (`None`: no bridge).
    pub sip: Option<crate::sip::config::SipConfig>,
    source: String,
    warnings: Vec<Warning>,
}

impl Config {
    /// Reads and validates the text of a configuration file; `source_name` names it in
    /// messages (`nasd.toml:12:8: ...`).
    ///
    /// # Errors
    ///
    /// Every problem found: TOML syntax, unknown sections and keys, values of the wrong
    /// type or out of range, and inconsistent settings.
    pub fn from_str(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        validate::validate(text, source_name)
    }

    /// Reads and validates a configuration file.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or any problem of [`Config::from_str`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_str(&text, &source),
            Err(e) => Err(ConfigError {
                problems: vec![Problem {
                    source,
                    line: None,
                    column: None,
                    message: format!("cannot read the configuration: {e}"),
                }],
            }),
        }
    }

    /// The name the configuration was read under.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Things that look wrong but do not stop nasd: devices, secrets files and lock
    /// directories that do not exist now, settings that have no effect. The file system is
    /// looked at when this is called.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .iter()
            .filter_map(|w| match w {
                Warning::Fixed(s) => Some(s.clone()),
                Warning::MissingPath { prefix, path, rest } => (!path.exists())
                    .then(|| format!("{prefix}{} does not exist{rest}", path.display())),
            })
            .collect()
    }

    /// The PPP settings of a session on `port`.
    pub fn link_config(&self, port: &PortConfig) -> LinkConfig {
        let _ = port; // Every port shares the [ppp] settings for now.
        let p = &self.ppp;
        let fsm = FsmConfig {
            restart: p.restart,
            max_configure: p.max_configure,
            max_terminate: p.max_terminate,
            max_failure: p.max_failure,
        };
        let n = &self.network;
        LinkConfig {
            lcp: LcpConfig {
                fsm,
                mru: p.mru,
                auth: p.auth.clone(),
                echo_interval: p.echo_interval,
                echo_failure: p.echo_failure,
                ..LcpConfig::default()
            },
            ipcp: IpcpConfig {
                fsm,
                local_ip: n.local_ip,
                dns: [n.dns.first().copied(), n.dns.get(1).copied()],
                nbns: [n.nbns.first().copied(), n.nbns.get(1).copied()],
            },
            auth: AuthConfig {
                restart: p.restart,
                rechallenge: p.chap_interval,
                name: self.auth.name.clone(),
                ..AuthConfig::default()
            },
            first_request_delay: p.first_request_delay,
            idle_timeout: p.idle_timeout,
            session_timeout: p.session_timeout,
            ..LinkConfig::default()
        }
    }

    /// The text login before PPP on `port` (`None`: off).
    pub fn login_config(&self, port: &PortConfig) -> Option<LoginConfig> {
        port.login
            .unwrap_or(self.ppp.login)
            .then(LoginConfig::default)
    }

    /// Everything the port task of `port` needs (back-off from 1 s up to 60 s).
    pub fn port_spec(&self, port: &PortConfig) -> PortSpec {
        PortSpec {
            name: port.name.clone(),
            settings: port.settings(),
            mode: port.mode(),
            link: self.link_config(port),
            login: self.login_config(port),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}
