//! The SIP bridge's settings, validated (the `[sip]` section of `nasd.toml`; parsing and
//! validation of the TOML live in `crate::config`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::dialplan::Rule;

/// A SIP account: an ATA line or phone that registers with the bridge.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// The account name: the digest user name and the address-of-record's user part.
    pub name: String,
    /// The digest password (never logged: `Debug` hides it).
    pub secret: String,
    /// The account's extension (a number that reaches it without a dialplan rule).
    pub extension: Option<String>,
    /// Further numbers or names that reach it.
    pub aliases: Vec<String>,
    /// The nasd port whose modem this ATA line rings (`port = "ttyUSB0"`): a modem line.
    pub port: Option<String>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("secret", &"<hidden>")
            .field("extension", &self.extension)
            .field("aliases", &self.aliases)
            .field("port", &self.port)
            .finish()
    }
}

/// A hunt group: modem lines (account names) tried one after the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuntGroup {
    /// The group's name, used by dialplan rules (`group = "modems"`).
    pub name: String,
    /// Account names, in hunting order.
    pub lines: Vec<String>,
}

/// An address block of the source ACL (Kamailio `permissions` address table: ip/mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length (0-32 for IPv4, 0-128 for IPv6).
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `192.0.2.7` (a single host) or `::1/128`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Everything the bridge needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    /// Where to listen for SIP over UDP (default `0.0.0.0:5060`).
    pub listen: SocketAddr,
    /// The address put in Via and Contact when `listen` is a wildcard (default: the
    /// address the peer's datagram arrived on is unknown to a UDP socket bound to the
    /// wildcard, so the first non-loopback address of the host is used).
    pub public: Option<SocketAddr>,
    /// The digest realm (default `nasd`).
    pub realm: String,
    /// The accounts.
    pub accounts: Vec<Account>,
    /// The hunt groups.
    pub groups: Vec<HuntGroup>,
    /// The dialplan rules (Kamailio semantics).
    pub rules: Vec<Rule>,
    /// Sources allowed to send requests other than REGISTER-with-credentials; empty: all.
    pub allow: Vec<Cidr>,
    /// Time between qualify probes (OPTIONS) per registered contact; `None`: no qualify.
    pub qualify_interval: Option<Duration>,
    /// A contact answering slower than this is "lagged" (`qualify=200`: 200 ms).
    pub qualify_max: Duration,
    /// How long one line may ring before the next is tried (`Dial(...,20)`: 20 s).
    pub ring_timeout: Duration,
    /// Registration expiry limits, seconds.
    pub min_expires: u32,
    /// The longest expiry granted, seconds.
    pub max_expires: u32,
    /// Expiry when the REGISTER names none, seconds.
    pub default_expires: u32,
    /// How long a digest nonce is valid.
    pub nonce_lifetime: Duration,
    /// Largest SIP message accepted, bytes (larger requests get 513).
    pub max_message_size: usize,
    /// Calls at once at most (more get 503).
    pub max_calls: usize,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            public: None,
            realm: "nasd".to_string(),
            accounts: Vec::new(),
            groups: Vec::new(),
            rules: Vec::new(),
            allow: Vec::new(),
            qualify_interval: None,
            qualify_max: Duration::from_millis(200),
            ring_timeout: Duration::from_secs(20),
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            nonce_lifetime: Duration::from_secs(super::digest::DEFAULT_NONCE_LIFETIME),
            max_message_size: super::message::DEFAULT_MAX_SIZE,
            max_calls: 1000,
        }
    }
}

impl SipConfig {
    /// The account called `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Whether a request from `ip` passes the ACL.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let host = Cidr::parse("192.0.2.7").unwrap();
        assert_eq!(host.prefix, 32);
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let a = Account {
            name: "line1".into(),
            secret: "hunter2".into(),
            extension: None,
            aliases: vec![],
            port: None,
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
