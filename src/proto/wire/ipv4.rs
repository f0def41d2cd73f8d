//! A minimal IPv4 header view (RFC 791): enough to check where a packet comes from and goes.

use super::{Error, Result};
use core::net::Ipv4Addr;

/// The fields of an IPv4 header the datapath looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// The total length field.
    pub total_len: u16,
    /// The protocol field (1 ICMP, 6 TCP, 17 UDP).
    pub protocol: u8,
}

impl Header {
    /// Parses the fixed part of an IPv4 header, checking version, header length and total
    /// length against the buffer.
    pub fn parse(p: &[u8]) -> Result<Self> {
        if p.len() < 20 {
            return Err(Error::Truncated);
        }
        if p[0] >> 4 != 4 {
            return Err(Error::BadHeader);
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let total_len = u16::from_be_bytes([p[2], p[3]]);
        if ihl < 20 || usize::from(total_len) < ihl || usize::from(total_len) > p.len() {
            return Err(Error::BadLength);
        }
        Ok(Self {
            src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
            dst: Ipv4Addr::new(p[16], p[17], p[18], p[19]),
            total_len,
            protocol: p[9],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_icmp_echo_header() {
        let mut p = [0u8; 28];
        p[0] = 0x45;
        p[3] = 28;
        p[9] = 1;
        p[12..16].copy_from_slice(&[10, 0, 0, 100]);
        p[16..20].copy_from_slice(&[10, 0, 0, 1]);
        let h = Header::parse(&p).unwrap();
        assert_eq!(h.src, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(h.dst, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!((h.total_len, h.protocol), (28, 1));
        p[0] = 0x65;
        assert_eq!(Header::parse(&p), Err(Error::BadHeader));
        p[0] = 0x45;
        p[3] = 60;
        assert_eq!(Header::parse(&p), Err(Error::BadLength));
        assert_eq!(Header::parse(&p[..10]), Err(Error::Truncated));
    }
}
