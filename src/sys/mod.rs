//! The kernel side of the network set-up: what the nasd daemon asks Linux to do around its TUN
//! device.
//!
//! * [`netlink::Net`]: addresses, MTU and link state of the TUN, one `/32` host route per
//!   session (with the session's MTU), proxy ARP entries on the LAN interface, the search for
//!   that interface, and the clean-up after a crashed nasd. rtnetlink over a netlink socket;
//!   nothing shells out to `ip`.
//! * [`nft::Firewall`]: nasd's own nftables table `inet nasd` (forwarding rules, MSS clamping,
//!   masquerade, client isolation), installed in one transaction and removed on exit.
//! * [`sysctl`] reads and sets `net.ipv4.ip_forward`.
//!
//! Every error names what failed: the interface, the address and the operation (see [`Error`]).
//! All of it needs `CAP_NET_ADMIN` in the network namespace it runs in.

pub mod netlink;
pub mod nft;
pub mod notify;
pub mod sysctl;

use std::fmt;
use std::io;
use std::net::Ipv4Addr;

/// What went wrong while setting up the network. The message of each variant holds the cause
/// as well (the kernel's or `nft`'s text), so printing the error alone says everything.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An interface named in a request does not exist.
    #[error("interface {0}: no such interface")]
    NoSuchInterface(String),
    /// A netlink request failed. `what` names the request, e.g.
    /// `add address 10.0.0.1/32 to ppp-nasd0`; `err` is the kernel's answer.
    #[error("netlink: {what}: {err}")]
    Netlink {
        /// The request, with its interface and addresses.
        what: String,
        /// The error (an errno from the kernel, or a socket error).
        err: io::Error,
    },
    /// No Ethernet interface has a subnet that contains the whole address pool, so nobody
    /// could answer ARP for the pool's addresses.
    #[error(
        "proxy_arp: no Ethernet interface has a subnet containing the pool {first}-{last} \
         (interfaces: {interfaces})"
    )]
    NoLanInterface {
        /// First address of the pool.
        first: Ipv4Addr,
        /// Last address of the pool.
        last: Ipv4Addr,
        /// The interfaces that were considered, with their IPv4 addresses.
        interfaces: String,
    },
    /// A configuration value that cannot be used (an invalid interface name, an empty pool).
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),
    /// `nft` failed. `what` names the operation, `detail` holds nft's own message.
    #[error("nftables: {what}: {detail}")]
    Nft {
        /// The operation, e.g. `install table inet nasd`.
        what: String,
        /// nft's message (or why nft could not be run).
        detail: String,
    },
}

/// The result of the operations in [`sys`](self).
pub type Result<T> = std::result::Result<T, Error>;

/// An IPv4 address with a prefix length, as configured on an interface (`192.168.1.5/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address (not necessarily the network address).
    pub addr: Ipv4Addr,
    /// The prefix length, 0 to 32.
    pub prefix_len: u8,
}

impl Ipv4Net {
    /// `addr/prefix_len`; `None` when the prefix length is above 32.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= 32).then_some(Self { addr, prefix_len })
    }

    /// The netmask (`255.255.255.0` for a /24).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }

    /// The network address (`192.168.1.0` for `192.168.1.5/24`).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// True when `ip` is in this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }

    fn mask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p.min(32))),
        }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Checks an interface name as the kernel would take it: 1 to 15 bytes, no whitespace, no
/// `/`, no quotes (names end up inside nft rules).
pub(crate) fn check_ifname(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '"' | '\\' | ':'));
    if bad {
        Err(Error::InvalidConfig(format!(
            "{name:?} is not a valid interface name (1-15 characters, no spaces, '/', ':' or quotes)"
        )))
    } else {
        Ok(())
    }
}

/// Checks that `first..=last` is a non-empty range.
pub(crate) fn check_pool(first: Ipv4Addr, last: Ipv4Addr) -> Result<()> {
    if first > last {
        Err(Error::InvalidConfig(format!(
            "the pool {first}-{last} is empty (its first address is above its last)"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4net_contains_and_formats() {
        let n = Ipv4Net::new(Ipv4Addr::new(192, 168, 1, 5), 24).unwrap();
        assert!(n.contains(Ipv4Addr::new(192, 168, 1, 0)));
        assert!(n.contains(Ipv4Addr::new(192, 168, 1, 255)));
        assert!(!n.contains(Ipv4Addr::new(192, 168, 2, 1)));
        assert_eq!(n.network(), Ipv4Addr::new(192, 168, 1, 0));
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(n.to_string(), "192.168.1.5/24");
        let all = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 0).unwrap();
        assert!(all.contains(Ipv4Addr::new(200, 1, 2, 3)));
        let host = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 32).unwrap();
        assert!(host.contains(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!host.contains(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 33).is_none());
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("ppp-nasd0").is_ok());
        for bad in ["", "a b", "x\"y", "0123456789abcdef", "a/b", ".."] {
            let e = check_ifname(bad).unwrap_err().to_string();
            assert!(e.contains("not a valid interface name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn pools_are_checked() {
        assert!(check_pool(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 1)).is_ok());
        let e = check_pool(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 1)).unwrap_err();
        assert!(e.to_string().contains("10.0.0.9-10.0.0.1"), "{e}");
    }
}
