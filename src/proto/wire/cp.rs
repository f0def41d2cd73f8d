//! Control packets (RFC 1661 section 5) shared by LCP, IPCP, and the option TLVs inside them.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Data ...
//! ```
//! Octets past `Length` are padding and ignored; a `Length` larger than the packet makes it
//! malformed. PAP and CHAP packets share the same four-octet header.

use super::{Error, Result};

/// RFC 1661 packet codes.
pub mod code {
    /// Configure-Request.
    pub const CONF_REQ: u8 = 1;
    /// Configure-Ack.
    pub const CONF_ACK: u8 = 2;
    /// Configure-Nak.
    pub const CONF_NAK: u8 = 3;
    /// Configure-Reject.
    pub const CONF_REJ: u8 = 4;
    /// Terminate-Request.
    pub const TERM_REQ: u8 = 5;
    /// Terminate-Ack.
    pub const TERM_ACK: u8 = 6;
    /// Code-Reject.
    pub const CODE_REJ: u8 = 7;
    /// Protocol-Reject (LCP only).
    pub const PROTO_REJ: u8 = 8;
    /// Echo-Request (LCP only).
    pub const ECHO_REQ: u8 = 9;
    /// Echo-Reply (LCP only).
    pub const ECHO_REPLY: u8 = 10;
    /// Discard-Request (LCP only).
    pub const DISCARD_REQ: u8 = 11;
    /// Identification (RFC 1570, LCP only; sent by Windows clients).
    pub const IDENTIFICATION: u8 = 12;
    /// Time-Remaining (RFC 1570, LCP only).
    pub const TIME_REMAINING: u8 = 13;
}

/// A parsed control packet borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The code.
    pub code: u8,
    /// The identifier.
    pub id: u8,
    /// The data after the header, cut to `Length`.
    pub data: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses a control packet, checking the length field.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < 4 {
            return Err(Error::Truncated);
        }
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if len < 4 || len > buf.len() {
            return Err(Error::BadLength);
        }
        Ok(Self {
            code: buf[0],
            id: buf[1],
            data: &buf[4..len],
        })
    }

    /// The options carried by a Configure-* packet.
    pub fn options(&self) -> Options<'a> {
        Options::new(self.data)
    }
}

/// Appends a control packet with the given code, identifier and data to `out`.
/// Data longer than 65531 octets is cut so the length field stays true.
pub fn emit(code: u8, id: u8, data: &[u8], out: &mut Vec<u8>) {
    let data = &data[..data.len().min(usize::from(u16::MAX) - 4)];
    let len = (data.len() + 4) as u16;
    out.reserve(data.len() + 4);
    out.extend_from_slice(&[code, id]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

/// One option (Type, Length, Data) of a Configure-* packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt<'a> {
    /// The option type.
    pub kind: u8,
    /// The option data (without type and length octets).
    pub data: &'a [u8],
}

impl Opt<'_> {
    /// The data as a big-endian u16, when it is exactly two octets.
    pub fn u16(&self) -> Option<u16> {
        <[u8; 2]>::try_from(self.data).ok().map(u16::from_be_bytes)
    }
    /// The data as a big-endian u32, when it is exactly four octets.
    pub fn u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.data).ok().map(u32::from_be_bytes)
    }
    /// Appends this option, unchanged, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        push_option(out, self.kind, self.data);
    }
}

/// Iterator over the options of a Configure-* packet. A malformed option (length below two
/// or past the end) yields one `Err(Error::BadLength)` and ends the iteration.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Options<'a> {
    /// Options over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            rest: data,
            failed: false,
        }
    }

    /// Checks that the whole option list is well formed.
    pub fn validate(data: &[u8]) -> Result<()> {
        Options::new(data).try_for_each(|o| o.map(|_| ()))
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Opt<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        if self.rest.len() < 2 {
            self.failed = true;
            return Some(Err(Error::Truncated));
        }
        let len = usize::from(self.rest[1]);
        if len < 2 || len > self.rest.len() {
            self.failed = true;
            return Some(Err(Error::BadLength));
        }
        let opt = Opt {
            kind: self.rest[0],
            data: &self.rest[2..len],
        };
        self.rest = &self.rest[len..];
        Some(Ok(opt))
    }
}

/// Appends an option TLV. Data longer than 253 octets is cut.
pub fn push_option(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = &data[..data.len().min(253)];
    out.push(kind);
    out.push((data.len() + 2) as u8);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    // An LCP Configure-Request as Debian's pppd 2.4.9 sends it:
    // asyncmap 0, magic 0x24bbe143, PFC, ACFC.
    const PPPD_CONFREQ: [u8; 20] = [
        0x01, 0x01, 0x00, 0x14, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x05, 0x06, 0x24, 0xbb, 0xe1,
        0x43, 0x07, 0x02, 0x08, 0x02,
    ];

    #[test]
    fn parse_pppd_confreq() {
        let p = Packet::parse(&PPPD_CONFREQ).unwrap();
        assert_eq!((p.code, p.id, p.data.len()), (code::CONF_REQ, 1, 16));
        let opts: Vec<_> = p.options().map(|o| o.unwrap()).collect();
        assert_eq!(opts.len(), 4);
        assert_eq!(opts[0].u32(), Some(0));
        assert_eq!((opts[1].kind, opts[1].u32()), (5, Some(0x24bb_e143)));
        assert_eq!((opts[2].kind, opts[2].data), (7, &[][..]));
        assert_eq!(opts[3].u16(), None);
    }

    #[test]
    fn round_trip() {
        let p = Packet::parse(&PPPD_CONFREQ).unwrap();
        let mut data = Vec::new();
        for o in p.options() {
            o.unwrap().emit(&mut data);
        }
        let mut out = Vec::new();
        emit(p.code, p.id, &data, &mut out);
        assert_eq!(out, PPPD_CONFREQ);
    }

    #[test]
    fn padding_ignored_and_bad_lengths_rejected() {
        let mut padded = PPPD_CONFREQ.to_vec();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(Packet::parse(&padded).unwrap().data.len(), 16);
        assert_eq!(Packet::parse(&[1, 1, 0]), Err(Error::Truncated));
        assert_eq!(Packet::parse(&[1, 1, 0, 3]), Err(Error::BadLength));
        assert_eq!(Packet::parse(&[1, 1, 0, 9, 0]), Err(Error::BadLength));
    }

    #[test]
    fn malformed_options_end_iteration() {
        assert_eq!(Options::validate(&[1, 4, 5, 220]), Ok(()));
        assert_eq!(Options::validate(&[1, 1]), Err(Error::BadLength));
        assert_eq!(Options::validate(&[1, 4, 0]), Err(Error::BadLength));
        assert_eq!(Options::validate(&[1]), Err(Error::Truncated));
        let mut it = Options::new(&[7, 2, 9, 0, 1]);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn long_data_is_cut() {
        let mut out = Vec::new();
        push_option(&mut out, 1, &[0; 300]);
        assert_eq!(out.len(), 255);
        assert_eq!(out[1], 255);
    }
}
