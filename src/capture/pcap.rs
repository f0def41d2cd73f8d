//! The classic libpcap file format (not pcapng), for `nasctl capture`: what Wireshark,
//! tshark and tcpdump read.
//!
//! ```text
//!  global header (24 bytes): magic a1b2c3d4, version 2.4, thiszone 0, sigfigs 0,
//!                            snaplen, link type                 (all little-endian)
//!  record header (16 bytes): seconds, microseconds, captured length, original length
//!  record data:              the frame, cut to snaplen
//! ```
//!
//! Frames are PPP frames as on the line after HDLC decoding: no flags, no octet stuffing,
//! no FCS; the address and control fields and the protocol field may be compressed (ACFC,
//! PFC). [`encapsulate`] turns such a frame into what a [`LinkType`] expects:
//!
//! * [`LinkType::PppHdlc`] (50, "PPP in HDLC-like framing", RFC 1662): `ff 03`, then the
//!   two-byte protocol and the information field.
//! * [`LinkType::Ppp`] (9): the two-byte protocol first.
//! * [`LinkType::PppWithDir`] (204): one direction byte — 0 for a frame nasd received
//!   from the caller, 1 for a frame nasd sent — then the frame as for `PppHdlc`. The only
//!   one of the three that records the direction; Wireshark shows it as "Point-to-Point
//!   Direction: Received/Sent".
//!
//! Sans-IO: everything returns bytes; [`PcapWriter`] is a thin wrapper over any
//! [`std::io::Write`].

use super::Direction;
use std::io::{self, Write};
use std::time::Duration;

/// The magic number of a pcap file with microsecond timestamps.
pub const MAGIC: u32 = 0xa1b2_c3d4;
/// A snapshot length that keeps every PPP frame whole (libpcap's default, 256 KiB; an MRU
/// is at most 65535).
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// The link-layer header types nasd writes (the `network` field of the global header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_PPP` (9): the PPP protocol field first.
    Ppp,
    /// `LINKTYPE_PPP_HDLC` (50): `ff 03`, protocol, information (RFC 1662 without flags,
    /// stuffing or FCS).
    PppHdlc,
    /// `LINKTYPE_PPP_WITH_DIR` (204): a direction byte (0 received, 1 sent), then as
    /// [`LinkType::PppHdlc`].
    PppWithDir,
}

impl LinkType {
    /// The number written in the global header.
    pub fn code(self) -> u32 {
        match self {
            LinkType::Ppp => 9,
            LinkType::PppHdlc => 50,
            LinkType::PppWithDir => 204,
        }
    }
}

/// The 24-byte global header of a pcap file.
pub fn global_header(linktype: LinkType, snaplen: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone (8..12) and sigfigs (12..16) are 0.
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&linktype.code().to_le_bytes());
    h
}

/// One record: its 16-byte header and `frame` cut to `snaplen` bytes. `ts` is the time
/// since the Unix epoch (seconds beyond `u32::MAX`, in 2106, are clamped).
pub fn record(ts: Duration, frame: &[u8], snaplen: u32) -> Vec<u8> {
    let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    let incl_len = orig_len.min(snaplen);
    let kept = &frame[..incl_len as usize];
    let secs = u32::try_from(ts.as_secs()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(16 + kept.len());
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&ts.subsec_micros().to_le_bytes());
    out.extend_from_slice(&incl_len.to_le_bytes());
    out.extend_from_slice(&orig_len.to_le_bytes());
    out.extend_from_slice(kept);
    out
}

/// `frame` (a PPP frame as decoded from the line, possibly with ACFC and PFC) in the form
/// `linktype` expects; `None` when it is too short to hold a protocol field.
pub fn encapsulate(linktype: LinkType, direction: Direction, frame: &[u8]) -> Option<Vec<u8>> {
    let (protocol, info) = split_protocol(frame)?;
    let mut out = Vec::with_capacity(frame.len() + 5);
    match linktype {
        LinkType::Ppp => {}
        LinkType::PppHdlc => out.extend_from_slice(&[0xff, 0x03]),
        LinkType::PppWithDir => {
            let dir = match direction {
                Direction::Rx => 0,
                Direction::Tx => 1,
            };
            out.extend_from_slice(&[dir, 0xff, 0x03]);
        }
    }
    out.extend_from_slice(&protocol.to_be_bytes());
    out.extend_from_slice(info);
    Some(out)
}

/// The protocol and information fields of a frame with or without address and control and
/// with a one- or two-byte protocol (RFC 1661 section 6.6: a protocol's first byte is even,
/// its last odd).
fn split_protocol(frame: &[u8]) -> Option<(u16, &[u8])> {
    let rest = match frame {
        [0xff, 0x03, rest @ ..] => rest,
        _ => frame,
    };
    match rest {
        [p, info @ ..] if p & 1 == 1 => Some((u16::from(*p), info)),
        [hi, lo, info @ ..] => Some((u16::from_be_bytes([*hi, *lo]), info)),
        _ => None,
    }
}

/// Writes a pcap stream: the global header first, then one record per frame.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    linktype: LinkType,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `out`.
    pub fn new(mut out: W, linktype: LinkType, snaplen: u32) -> io::Result<Self> {
        out.write_all(&global_header(linktype, snaplen))?;
        Ok(Self {
            out,
            linktype,
            snaplen,
        })
    }

    /// Writes one frame (as for [`encapsulate`]) seen at `ts` (since the Unix epoch).
    /// Returns false, writing nothing, when the frame has no protocol field.
    pub fn write_frame(
        &mut self,
        ts: Duration,
        direction: Direction,
        frame: &[u8],
    ) -> io::Result<bool> {
        match encapsulate(self.linktype, direction, frame) {
            Some(data) => {
                self.out.write_all(&record(ts, &data, self.snaplen))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn the_global_header_is_classic_pcap() {
        assert_eq!(
            global_header(LinkType::PppHdlc, 65535),
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 50,
                0, 0, 0
            ]
        );
        assert_eq!(global_header(LinkType::Ppp, 1)[20..], [9, 0, 0, 0]);
        assert_eq!(global_header(LinkType::PppWithDir, 1)[20..], [204, 0, 0, 0]);
    }

    #[test]
    fn a_record_parses_back() {
        let frame: Vec<u8> = (0..=255u8).collect();
        let ts = Duration::new(1_700_000_123, 456_789_999);
        let r = record(ts, &frame, 100);
        assert_eq!(r.len(), 16 + 100);
        assert_eq!(u32_at(&r, 0), 1_700_000_123);
        assert_eq!(u32_at(&r, 4), 456_789);
        assert_eq!(u32_at(&r, 8), 100, "captured length is cut to snaplen");
        assert_eq!(u32_at(&r, 12), 256, "original length is the frame's");
        assert_eq!(&r[16..], &frame[..100]);

        let whole = record(Duration::ZERO, &frame[..3], 65535);
        assert_eq!(
            whole,
            [0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 0, 1, 2]
        );
        let far = record(Duration::from_secs(u64::from(u32::MAX) + 5), &[], 10);
        assert_eq!(u32_at(&far, 0), u32::MAX);
    }

    #[test]
    fn frames_are_encapsulated_per_link_type() {
        let full = [0xff, 0x03, 0xc0, 0x21, 9, 1, 0, 4];
        let acfc = [0xc0, 0x21, 9, 1, 0, 4];
        let pfc = [0x21, 0x45, 0x00];
        for f in [&full[..], &acfc[..]] {
            assert_eq!(
                encapsulate(LinkType::PppHdlc, Direction::Rx, f).unwrap(),
                full
            );
            assert_eq!(
                encapsulate(LinkType::Ppp, Direction::Rx, f).unwrap(),
                full[2..]
            );
        }
        assert_eq!(
            encapsulate(LinkType::PppHdlc, Direction::Tx, &pfc).unwrap(),
            [0xff, 0x03, 0x00, 0x21, 0x45, 0x00]
        );
        assert_eq!(
            encapsulate(LinkType::PppWithDir, Direction::Rx, &acfc).unwrap(),
            [0, 0xff, 0x03, 0xc0, 0x21, 9, 1, 0, 4]
        );
        assert_eq!(
            encapsulate(LinkType::PppWithDir, Direction::Tx, &full).unwrap()[0],
            1
        );
        for short in [
            &[][..],
            &[0xff, 0x03][..],
            &[0xc0][..],
            &[0xff, 0x03, 0xc0][..],
        ] {
            assert_eq!(
                encapsulate(LinkType::Ppp, Direction::Rx, short),
                None,
                "{short:?}"
            );
        }
    }

    #[test]
    fn the_writer_writes_header_then_records() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::PppWithDir, 64).unwrap();
        assert!(
            w.write_frame(Duration::from_secs(7), Direction::Tx, &[0xc0, 0x21, 5])
                .unwrap()
        );
        assert!(
            !w.write_frame(Duration::from_secs(8), Direction::Rx, &[])
                .unwrap()
        );
        let bytes = w.into_inner();
        assert_eq!(bytes[..24], global_header(LinkType::PppWithDir, 64));
        assert_eq!(
            bytes[24..],
            [
                7, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 6, 0, 0, 0, 1, 0xff, 0x03, 0xc0, 0x21, 5
            ]
        );
    }

    /// Wireshark's dissectors read what we write: an LCP Configure-Request, a PAP
    /// Authenticate-Request and an IPCP Configure-Request, in each link type.
    #[test]
    fn tshark_reads_the_capture() {
        let Ok(out) = std::process::Command::new("tshark")
            .arg("--version")
            .output()
        else {
            panic!("tshark is not installed: apt-get install tshark (the Debian package)");
        };
        assert!(out.status.success(), "tshark --version failed");
        let lcp = [
            0xff, 0x03, 0xc0, 0x21, 0x01, 0x01, 0x00, 0x0a, 0x05, 0x06, 0x12, 0x34, 0x56, 0x78,
        ];
        // PAP Authenticate-Request: id 2, peer-id "dial", password "dial".
        let pap = [
            0xc0, 0x23, 0x01, 0x02, 0x00, 0x0e, 0x04, b'd', b'i', b'a', b'l', 0x04, b'd', b'i',
            b'a', b'l',
        ];
        // IPCP Configure-Request: id 3, IP-Address 0.0.0.0.
        let ipcp = [0x80, 0x21, 0x01, 0x03, 0x00, 0x0a, 0x03, 0x06, 0, 0, 0, 0];
        let dir = tempfile::tempdir().unwrap();
        for linktype in [LinkType::PppHdlc, LinkType::Ppp, LinkType::PppWithDir] {
            let path = dir.path().join(format!("{}.pcap", linktype.code()));
            let file = std::fs::File::create(&path).unwrap();
            let mut w = PcapWriter::new(file, linktype, DEFAULT_SNAPLEN).unwrap();
            let t0 = Duration::from_secs(1_700_000_000);
            w.write_frame(t0, Direction::Tx, &lcp).unwrap();
            w.write_frame(t0 + Duration::from_millis(5), Direction::Rx, &pap)
                .unwrap();
            w.write_frame(t0 + Duration::from_millis(9), Direction::Rx, &ipcp)
                .unwrap();
            w.flush().unwrap();
            drop(w);
            let out = std::process::Command::new("tshark")
                .arg("-r")
                .arg(&path)
                .arg("-V")
                .env("HOME", dir.path())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "tshark failed on link type {}: {}",
                linktype.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            for want in [
                "Link Control Protocol",
                "Password Authentication Protocol",
                "Internet Protocol Control Protocol",
                "Magic Number: 0x12345678",
                "Peer-ID: dial",
            ] {
                assert!(
                    text.contains(want),
                    "link type {}: {want:?} missing from tshark -V:\n{text}",
                    linktype.code()
                );
            }
            if linktype == LinkType::PppWithDir {
                assert!(text.contains("Direction: Sent"), "{text}");
                assert!(text.contains("Direction: Received"), "{text}");
            }
        }
    }
}
