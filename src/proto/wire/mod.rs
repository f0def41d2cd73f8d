//! Wire formats: PPP protocol numbers, control packets and their options.
//!
//! Views borrow the received bytes (smoltcp style); nothing here allocates on the parse path.

pub mod cp;
pub mod ipv4;

use core::fmt;

/// Why a frame or packet could not be parsed. Small and `Copy`: drop reasons feed counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header or a length field needs.
    Truncated,
    /// A length field that is inconsistent with the data.
    BadLength,
    /// The frame check sequence did not match.
    BadFcs,
    /// The address/control fields were present but not 0xFF 0x03, or the protocol field is
    /// malformed (RFC 1661 section 2: the last octet of the protocol must be odd).
    BadHeader,
    /// A frame longer than the configured maximum.
    Oversize,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated",
            Self::BadLength => "bad length field",
            Self::BadFcs => "bad frame check sequence",
            Self::BadHeader => "bad address, control or protocol field",
            Self::Oversize => "frame too long",
        })
    }
}

impl std::error::Error for Error {}

/// Result of parsing wire data.
pub type Result<T> = core::result::Result<T, Error>;

/// PPP protocol numbers (RFC 1661, RFC 1700 and the IANA registry).
pub mod protocol {
    /// Internet Protocol version 4.
    pub const IPV4: u16 = 0x0021;
    /// Van Jacobson compressed TCP/IP.
    pub const VJ_COMP: u16 = 0x002d;
    /// Van Jacobson uncompressed TCP/IP.
    pub const VJ_UNCOMP: u16 = 0x002f;
    /// Internet Protocol version 6.
    pub const IPV6: u16 = 0x0057;
    /// IP Control Protocol (RFC 1332).
    pub const IPCP: u16 = 0x8021;
    /// IPX Control Protocol.
    pub const IPXCP: u16 = 0x802b;
    /// NetBIOS Frames Control Protocol.
    pub const NBFCP: u16 = 0x803f;
    /// IPv6 Control Protocol.
    pub const IPV6CP: u16 = 0x8057;
    /// Compression Control Protocol.
    pub const CCP: u16 = 0x80fd;
    /// Bandwidth Allocation Control Protocol.
    pub const BACP: u16 = 0xc02b;
    /// Link Control Protocol (RFC 1661).
    pub const LCP: u16 = 0xc021;
    /// Password Authentication Protocol (RFC 1334).
    pub const PAP: u16 = 0xc023;
    /// Link Quality Report.
    pub const LQR: u16 = 0xc025;
    /// Challenge Handshake Authentication Protocol (RFC 1994).
    pub const CHAP: u16 = 0xc223;

    /// A short name for logs.
    pub fn name(p: u16) -> &'static str {
        match p {
            IPV4 => "IPv4",
            VJ_COMP | VJ_UNCOMP => "VJ",
            IPV6 => "IPv6",
            IPCP => "IPCP",
            IPXCP => "IPXCP",
            NBFCP => "NBFCP",
            IPV6CP => "IPV6CP",
            CCP => "CCP",
            BACP => "BACP",
            LCP => "LCP",
            PAP => "PAP",
            LQR => "LQR",
            CHAP => "CHAP",
            _ => "unknown",
        }
    }
}
