//! IPCP, the IP Control Protocol (RFC 1332), with the DNS and NBNS options of RFC 1877.
//!
//! The server tells the peer its address (`IP-Address`, type 3): a request for 0.0.0.0 or
//! for any address other than the one assigned is Naked with the assigned one, and a
//! request with no address gets the assigned one as a hint once. Primary and secondary DNS
//! (129, 131) and NBNS (130, 132) are answered with the configured values and rejected when
//! none is configured. VJ compression (type 2) and the obsolete IP-Addresses (type 1) are
//! rejected. Nak loops are bounded by the automaton's Max-Failure.

use super::fsm::{Fsm, FsmConfig, Negotiator, Reply};
use super::wire::cp::{Options, push_option};
use super::wire::protocol;
use core::net::Ipv4Addr;

/// IPCP option types.
pub mod opt {
    /// IP-Addresses (RFC 1172, obsolete).
    pub const IP_ADDRESSES: u8 = 1;
    /// IP-Compression-Protocol (VJ).
    pub const IP_COMPRESSION: u8 = 2;
    /// IP-Address.
    pub const IP_ADDRESS: u8 = 3;
    /// Primary DNS server (RFC 1877).
    pub const PRIMARY_DNS: u8 = 129;
    /// Primary NBNS server (RFC 1877).
    pub const PRIMARY_NBNS: u8 = 130;
    /// Secondary DNS server (RFC 1877).
    pub const SECONDARY_DNS: u8 = 131;
    /// Secondary NBNS server (RFC 1877).
    pub const SECONDARY_NBNS: u8 = 132;
}

/// IPCP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcpConfig {
    /// Timers and counters.
    pub fsm: FsmConfig,
    /// Our address on the link.
    pub local_ip: Ipv4Addr,
    /// Primary and secondary DNS servers offered to the peer.
    pub dns: [Option<Ipv4Addr>; 2],
    /// Primary and secondary NBNS (WINS) servers offered to the peer.
    pub nbns: [Option<Ipv4Addr>; 2],
}

impl Default for IpcpConfig {
    fn default() -> Self {
        Self {
            fsm: FsmConfig::default(),
            local_ip: Ipv4Addr::new(10, 0, 0, 1),
            dns: [None, None],
            nbns: [None, None],
        }
    }
}

/// The server's IPCP policy.
#[derive(Debug)]
pub struct IpcpPolicy {
    config: IpcpConfig,
    /// The address the peer must use (set before IPCP opens).
    peer_ip: Ipv4Addr,
    /// Whether to put our address in our request (dropped if the peer rejects it).
    send_address: bool,
    /// A Nak carrying a hint for a missing IP-Address was already sent.
    hinted: bool,
    /// The peer's address as acknowledged.
    acked_peer: Option<Ipv4Addr>,
}

impl IpcpPolicy {
    fn offered(&self, kind: u8) -> Option<Ipv4Addr> {
        match kind {
            opt::PRIMARY_DNS => self.config.dns[0],
            opt::SECONDARY_DNS => self.config.dns[1],
            opt::PRIMARY_NBNS => self.config.nbns[0],
            opt::SECONDARY_NBNS => self.config.nbns[1],
            _ => None,
        }
    }
}

impl Negotiator for IpcpPolicy {
    fn reset(&mut self) {
        self.send_address = true;
        self.hinted = false;
        self.acked_peer = None;
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if self.send_address {
            push_option(out, opt::IP_ADDRESS, &self.config.local_ip.octets());
        }
    }

    fn judge_request(&mut self, options: Options<'_>, reply: &mut Reply) {
        let mut saw_address = false;
        let mut peer = None;
        for o in options.flatten() {
            match (o.kind, o.data.len()) {
                (opt::IP_ADDRESS, 4) => {
                    saw_address = true;
                    let asked = Ipv4Addr::from(o.u32().unwrap_or(0));
                    if asked == self.peer_ip {
                        peer = Some(asked);
                    } else {
                        reply.nak(&o, &self.peer_ip.octets());
                    }
                }
                (
                    opt::PRIMARY_DNS | opt::SECONDARY_DNS | opt::PRIMARY_NBNS | opt::SECONDARY_NBNS,
                    4,
                ) => match self.offered(o.kind) {
                    Some(a) if a.octets() == o.data => {}
                    Some(a) => reply.nak(&o, &a.octets()),
                    None => reply.reject(&o),
                },
                _ => reply.reject(&o),
            }
        }
        if !saw_address && !self.hinted {
            // RFC 1332 3.3: a Nak may hint at an address the peer did not ask for.
            self.hinted = true;
            reply.nak_missing(opt::IP_ADDRESS, &self.peer_ip.octets());
        }
        if reply.verdict() == super::fsm::Verdict::Ack {
            self.acked_peer = peer.or(Some(self.peer_ip));
        }
    }

    fn handle_ack(&mut self, _options: Options<'_>) {}

    fn handle_nak(&mut self, _options: Options<'_>) {
        // Our address is ours: we keep asking for it. The automaton bounds the loop.
    }

    fn handle_reject(&mut self, options: Options<'_>) {
        for o in options.flatten() {
            if o.kind == opt::IP_ADDRESS {
                self.send_address = false;
            }
        }
    }
}

/// IPCP: automaton and policy.
#[derive(Debug)]
pub struct Ipcp {
    /// The automaton.
    pub fsm: Fsm,
    /// The policy.
    pub policy: IpcpPolicy,
}

impl Ipcp {
    /// IPCP with the given settings.
    pub fn new(config: IpcpConfig) -> Self {
        Self {
            fsm: Fsm::new(protocol::IPCP, config.fsm),
            policy: IpcpPolicy {
                config,
                peer_ip: Ipv4Addr::UNSPECIFIED,
                send_address: true,
                hinted: false,
                acked_peer: None,
            },
        }
    }

    /// The settings.
    pub fn config(&self) -> &IpcpConfig {
        &self.policy.config
    }

    /// Sets the address the peer must use: before IPCP opens.
    pub fn set_peer_ip(&mut self, ip: Ipv4Addr) {
        self.policy.peer_ip = ip;
    }

    /// The address assigned to the peer.
    pub fn peer_ip(&self) -> Ipv4Addr {
        self.policy.peer_ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::fsm::{Reply, Verdict};

    fn ipcp() -> Ipcp {
        let mut i = Ipcp::new(IpcpConfig {
            dns: [Some(Ipv4Addr::new(10, 0, 0, 53)), None],
            ..IpcpConfig::default()
        });
        i.set_peer_ip(Ipv4Addr::new(10, 0, 0, 100));
        i.policy.reset();
        i
    }

    fn judge(i: &mut Ipcp, opts: &[u8]) -> Reply {
        let mut r = Reply::new(true);
        i.policy.judge_request(Options::new(opts), &mut r);
        r
    }

    #[test]
    fn assigns_the_address_and_dns() {
        let mut i = ipcp();
        // pppd: addr 0.0.0.0, ms-dns 0.0.0.0 (129) and 0.0.0.0 (131).
        let r = judge(
            &mut i,
            &[3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0],
        );
        assert_eq!(r.verdict(), Verdict::Reject, "no secondary DNS configured");
        assert_eq!(r.reject_options(), [131, 6, 0, 0, 0, 0]);
        let r = judge(&mut i, &[3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0]);
        assert_eq!(r.verdict(), Verdict::Nak);
        assert_eq!(r.nak_options(), [3, 6, 10, 0, 0, 100, 129, 6, 10, 0, 0, 53]);
        let r = judge(&mut i, &[3, 6, 10, 0, 0, 100, 129, 6, 10, 0, 0, 53]);
        assert_eq!(r.verdict(), Verdict::Ack);
        assert_eq!(i.policy.acked_peer, Some(Ipv4Addr::new(10, 0, 0, 100)));
    }

    #[test]
    fn a_wrong_address_is_naked_and_vj_rejected() {
        let mut i = ipcp();
        let r = judge(&mut i, &[3, 6, 192, 168, 1, 9]);
        assert_eq!(r.nak_options(), [3, 6, 10, 0, 0, 100]);
        let r = judge(&mut i, &[2, 6, 0, 0x2d, 15, 1, 3, 6, 10, 0, 0, 100]);
        assert_eq!(r.verdict(), Verdict::Reject);
        assert_eq!(r.reject_options(), [2, 6, 0, 0x2d, 15, 1]);
        let r = judge(&mut i, &[1, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r.verdict(), Verdict::Reject, "obsolete IP-Addresses");
    }

    #[test]
    fn a_peer_without_an_address_gets_one_hint() {
        let mut i = ipcp();
        let r = judge(&mut i, &[]);
        assert_eq!(
            (r.verdict(), r.nak_options()),
            (Verdict::Nak, &[3, 6, 10, 0, 0, 100][..])
        );
        let r = judge(&mut i, &[]);
        assert_eq!(r.verdict(), Verdict::Ack);
    }

    #[test]
    fn our_request_names_our_address_until_rejected() {
        let mut i = ipcp();
        let mut out = Vec::new();
        i.policy.build_request(&mut out);
        assert_eq!(out, [3, 6, 10, 0, 0, 1]);
        i.policy.handle_reject(Options::new(&[3, 6, 10, 0, 0, 1]));
        out.clear();
        i.policy.build_request(&mut out);
        assert!(out.is_empty());
    }
}
