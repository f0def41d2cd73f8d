//! Interfaces, addresses, host routes and proxy ARP entries over rtnetlink.
//!
//! One [`Net`] holds one `NETLINK_ROUTE` socket, bound to the network namespace of the thread
//! that created it. Every operation nasd repeats (at start-up after a crash, when a session
//! comes up twice) is idempotent: adding what exists replaces it, deleting what is missing
//! succeeds.
//!
//! Proxy ARP: the kernel answers an ARP request arriving on an interface for an address that
//! is not its own when forwarding is on (`net.ipv4.ip_forward`), the address is routed out of
//! another interface (here the session's host route via the TUN), and the interface has a
//! proxy neighbour entry (`ip neigh add proxy ADDR dev IFACE`, `NTF_PROXY`) for it. The
//! `proxy_arp` sysctl, which would answer for *every* routed address, is not needed and nasd
//! leaves it alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkLayerType};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use super::{Error, Ipv4Net, Result};

const ENODEV: i32 = 19;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;

/// What [`Net::cleanup_stale`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Peers whose host routes via the TUN were deleted.
    pub routes: Vec<Ipv4Addr>,
    /// Proxy ARP entries deleted: interface name and address.
    pub proxy_arp: Vec<(String, Ipv4Addr)>,
}

/// A handle on the kernel's routing tables and interfaces (rtnetlink).
///
/// Cheap to clone; the connection task lives as long as any clone.
#[derive(Debug, Clone)]
pub struct Net {
    handle: Handle,
}

/// Turns an rtnetlink error into an [`Error::Netlink`] naming `what`.
fn nl_err(what: impl Into<String>, e: rtnetlink::Error) -> Error {
    Error::Netlink {
        what: what.into(),
        err: to_io(e),
    }
}

fn to_io(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// The errno carried by a netlink error answer, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

fn in_pool(ip: Ipv4Addr, first: Ipv4Addr, last: Ipv4Addr) -> bool {
    first <= ip && ip <= last
}

impl Net {
    /// Opens a rtnetlink socket in the calling thread's network namespace and spawns its
    /// connection task on the current tokio runtime.
    ///
    /// Fails when called outside a tokio runtime or when the socket cannot be opened.
    pub fn new() -> Result<Net> {
        let rt = tokio::runtime::Handle::try_current().map_err(|e| Error::Netlink {
            what: "start the rtnetlink connection".into(),
            err: io::Error::other(format!("not inside a tokio runtime: {e}")),
        })?;
        let (conn, handle, _messages) =
            rtnetlink::new_connection().map_err(|err| Error::Netlink {
                what: "open a NETLINK_ROUTE socket".into(),
                err,
            })?;
        rt.spawn(conn);
        Ok(Net { handle })
    }

    /// The interface index of `name`, or `None` when there is no such interface.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(Some(link.header.index)),
            Ok(None) => Ok(None),
            Err(e) if matches!(errno(&e), Some(ENODEV)) => Ok(None),
            Err(e) => Err(nl_err(format!("look up interface {name}"), e)),
        }
    }

    /// The interface index of `name`; a missing interface is an error naming it.
    async fn require_index(&self, name: &str) -> Result<u32> {
        self.link_index(name)
            .await?
            .ok_or_else(|| Error::NoSuchInterface(name.to_string()))
    }

    /// Configures the TUN device `name`: the address `local/32` (an existing identical address
    /// is kept), the MTU, and the link up.
    pub async fn setup_tun(&self, name: &str, local: Ipv4Addr, mtu: u32) -> Result<()> {
        let index = self.require_index(name).await?;
        self.handle
            .address()
            .add(index, IpAddr::V4(local), 32)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("add address {local}/32 to {name}"), e))?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).mtu(mtu).up().build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("set {name} up with MTU {mtu}"), e))
    }

    /// Adds (or replaces) the route `peer/32 dev tun src src scope link`, with the per-route
    /// MTU (`RTAX_MTU`, `ip route ... mtu N`) when `mtu` is given, so that the kernel sends
    /// the session no packet larger than its negotiated MRU. Replacing an existing route also
    /// replaces (or drops) its MTU.
    pub async fn add_host_route(
        &self,
        tun: &str,
        peer: Ipv4Addr,
        src: Ipv4Addr,
        mtu: Option<u32>,
    ) -> Result<()> {
        let index = self.require_index(tun).await?;
        let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(peer, 32)
            .output_interface(index)
            .pref_source(src)
            .scope(RouteScope::Link)
            .build();
        if let Some(mtu) = mtu {
            route
                .attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        let mtu_text = mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
        self.handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(|e| {
                nl_err(
                    format!("add route {peer}/32 dev {tun} src {src}{mtu_text}"),
                    e,
                )
            })
    }

    /// Deletes the route `peer/32 dev tun`. A missing route, or a missing TUN (its routes went
    /// with it), is not an error.
    pub async fn del_host_route(&self, tun: &str, peer: Ipv4Addr) -> Result<()> {
        let Some(index) = self.link_index(tun).await? else {
            return Ok(());
        };
        let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(peer, 32)
            .output_interface(index)
            .build();
        // Match any protocol and scope (RT_SCOPE_NOWHERE is "any" to RTM_DELROUTE, as with
        // `ip route del`): a route left by another version is deleted as well.
        route.header.protocol = RouteProtocol::Unspec;
        route.header.scope = RouteScope::NoWhere;
        self.del_route(route, &format!("delete route {peer}/32 dev {tun}"))
            .await
    }

    async fn del_route(&self, route: RouteMessage, what: &str) -> Result<()> {
        match self.handle.route().del(route).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(ESRCH | ENOENT)) => Ok(()),
            Err(e) => Err(nl_err(what, e)),
        }
    }

    /// Adds a proxy ARP entry (`ip neigh add proxy ip dev iface`): the NAS answers ARP
    /// requests for `ip` on `iface`. Adding an existing entry succeeds. The kernel answers only
    /// while forwarding is on and `ip` is routed out of another interface (the session's host
    /// route).
    pub async fn add_proxy_arp(&self, iface: &str, ip: Ipv4Addr) -> Result<()> {
        let index = self.require_index(iface).await?;
        self.handle
            .neighbours()
            .add(index, IpAddr::V4(ip))
            .flags(NeighbourFlags::Proxy)
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(format!("add proxy ARP entry for {ip} on {iface}"), e))
    }

    /// Deletes the proxy ARP entry for `ip` on `iface`. A missing entry, or a missing
    /// interface, is not an error.
    pub async fn del_proxy_arp(&self, iface: &str, ip: Ipv4Addr) -> Result<()> {
        let Some(index) = self.link_index(iface).await? else {
            return Ok(());
        };
        self.del_proxy_index(index, ip, iface).await
    }

    async fn del_proxy_index(&self, index: u32, ip: Ipv4Addr, iface: &str) -> Result<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.ifindex = index;
        msg.header.flags = NeighbourFlags::Proxy;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        match self.handle.neighbours().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(ENOENT | ESRCH)) => Ok(()),
            Err(e) => Err(nl_err(
                format!("delete proxy ARP entry for {ip} on {iface}"),
                e,
            )),
        }
    }

    /// The IPv4 proxy ARP entries: interface index and address.
    pub async fn proxy_arp_entries(&self) -> Result<Vec<(u32, Ipv4Addr)>> {
        let msgs: Vec<NeighbourMessage> = self
            .handle
            .neighbours()
            .get()
            .proxies()
            .set_address_family(AddressFamily::Inet)
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("list proxy ARP entries", e))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.flags.contains(NeighbourFlags::Proxy))
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                        Some((m.header.ifindex, *ip))
                    }
                    _ => None,
                })
            })
            .collect())
    }

    /// Interface index → (name, link-layer type), for every interface.
    async fn links(&self) -> Result<BTreeMap<u32, (String, LinkLayerType)>> {
        let links: Vec<_> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("list interfaces", e))?;
        Ok(links
            .into_iter()
            .map(|l| {
                let name = l
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| format!("if{}", l.header.index));
                (l.header.index, (name, l.header.link_layer_type))
            })
            .collect())
    }

    /// Every IPv4 address: interface index and address with prefix length.
    async fn ipv4_addresses(&self) -> Result<Vec<(u32, Ipv4Net)>> {
        let addrs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("list addresses", e))?;
        Ok(addrs
            .iter()
            .filter(|a| a.header.family == AddressFamily::Inet)
            .filter_map(|a| {
                // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
                // point-to-point links); fall back to IFA_ADDRESS.
                let local = a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                });
                let address = a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                });
                let ip = local.or(address)?;
                Some((a.header.index, Ipv4Net::new(ip, a.header.prefix_len)?))
            })
            .collect())
    }

    /// The Ethernet interface (`ARPHRD_ETHER`: physical NICs, veth, bridges, VLANs, ...) that
    /// has an IPv4 address whose subnet contains the whole pool `pool_first..=pool_last`: the
    /// interface where dial-in users' addresses need proxy ARP. The first such interface by
    /// index wins. When there is none, the error lists the interfaces and their addresses.
    pub async fn find_lan_interface(
        &self,
        pool_first: Ipv4Addr,
        pool_last: Ipv4Addr,
    ) -> Result<(String, Ipv4Net)> {
        super::check_pool(pool_first, pool_last)?;
        let links = self.links().await?;
        let addrs = self.ipv4_addresses().await?;
        let mut seen = String::new();
        for (index, net) in &addrs {
            let Some((name, kind)) = links.get(index) else {
                continue;
            };
            let ether = *kind == LinkLayerType::Ether;
            if ether && net.contains(pool_first) && net.contains(pool_last) {
                return Ok((name.clone(), *net));
            }
            if *kind == LinkLayerType::Loopback {
                continue;
            }
            if !seen.is_empty() {
                seen.push_str(", ");
            }
            let _ = write!(seen, "{name} {net}");
            if !ether {
                seen.push_str(" (not Ethernet)");
            }
        }
        if seen.is_empty() {
            seen.push_str("none has an IPv4 address");
        }
        Err(Error::NoLanInterface {
            first: pool_first,
            last: pool_last,
            interfaces: seen,
        })
    }

    /// Removes what a crashed nasd may have left: the host routes (main table) via `tun` to
    /// addresses in the pool, and the proxy ARP entries for pool addresses on any interface.
    /// A missing `tun` has no routes left. Returns what was removed.
    pub async fn cleanup_stale(
        &self,
        tun: &str,
        pool_first: Ipv4Addr,
        pool_last: Ipv4Addr,
    ) -> Result<Cleaned> {
        super::check_pool(pool_first, pool_last)?;
        let mut cleaned = Cleaned::default();
        if let Some(index) = self.link_index(tun).await? {
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
                .execute()
                .try_collect()
                .await
                .map_err(|e| nl_err("list IPv4 routes", e))?;
            for route in routes {
                let Some(peer) = stale_host_route(&route, index, pool_first, pool_last) else {
                    continue;
                };
                self.del_route(route, &format!("delete stale route {peer}/32 dev {tun}"))
                    .await?;
                cleaned.routes.push(peer);
            }
        }
        let entries = self.proxy_arp_entries().await?;
        if entries
            .iter()
            .any(|(_, ip)| in_pool(*ip, pool_first, pool_last))
        {
            let links = self.links().await?;
            for (index, ip) in entries {
                if !in_pool(ip, pool_first, pool_last) {
                    continue;
                }
                let name = links
                    .get(&index)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_else(|| format!("if{index}"));
                self.del_proxy_index(index, ip, &name).await?;
                cleaned.proxy_arp.push((name, ip));
            }
        }
        Ok(cleaned)
    }
}

/// The peer of `route` when it is a main-table unicast `/32` via interface `index` to a pool
/// address.
fn stale_host_route(
    route: &RouteMessage,
    index: u32,
    first: Ipv4Addr,
    last: Ipv4Addr,
) -> Option<Ipv4Addr> {
    let h = &route.header;
    if h.address_family != AddressFamily::Inet
        || h.destination_prefix_length != 32
        || h.kind != RouteType::Unicast
    {
        return None;
    }
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(h.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    let via_tun = route
        .attributes
        .iter()
        .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index));
    let dst = route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })?;
    (via_tun && in_pool(dst, first, last)).then_some(dst)
}
