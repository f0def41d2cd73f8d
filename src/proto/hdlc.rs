//! RFC 1662 asynchronous HDLC-like framing: flags, octet stuffing, the Async-Control-
//! Character-Map and the Frame Check Sequence.
//!
//! # The frame format (RFC 1662 section 3)
//!
//! ```text
//!  7E | FF | 03 | protocol (1 or 2) | information ... | FCS (2 or 4) | 7E
//! ```
//!
//! * Each frame is delimited by the Flag Sequence 0x7E (section 3.1). The encoder always
//!   sends an opening and a closing flag; the decoder accepts a single shared flag between
//!   frames and silently ignores empty frames (two flags in a row).
//! * Octet stuffing (section 4.2): the Control Escape 0x7D is sent before any octet that is a
//!   flag, a control escape, or a control character (< 0x20) flagged in the transmit
//!   Async-Control-Character-Map; the octet itself is sent XOR 0x20. The sequence 0x7D 0x7E
//!   aborts the frame being received (section 4.2 / 3.1 "abort").
//! * On reception, control characters flagged in the *receive* ACCM are removed before
//!   anything else is done with them: they may have been inserted by the modems (XON/XOFF).
//!   The ACCM starts with all 32 bits set (section 7.1) until LCP negotiates another one.
//! * The FCS (section 3.1, appendix C) is computed over the address, control, protocol and
//!   information fields before stuffing, and transmitted complemented, least significant
//!   octet first; see [`super::fcs`]. The 32-bit FCS can be switched on when LCP negotiates
//!   it (RFC 1570).
//! * Address-and-Control-Field-Compression and Protocol-Field-Compression (RFC 1661
//!   sections 6.5 and 6.6) are applied on transmit only when enabled and never to LCP
//!   packets, and LCP Configure-*, Terminate-* and Code-Reject packets are always sent with
//!   every control character escaped (RFC 1662 section 7.1), as Linux' `ppp_async` does.
//!   [`parse_header`] accepts every form on reception.
//!
//! # Performance
//!
//! Both directions are run oriented: with an ACCM of 0 only 0x7D and 0x7E are special, so
//! [`memchr::memchr2`] finds them and the runs in between are copied whole. With a nonzero
//! ACCM a 256-entry lookup table decides which octets are special. The FCS uses
//! slicing-by-16 tables (see [`super::fcs`]). The decoder owns one buffer, sized at
//! construction, and never allocates afterwards.
//!
//! # Sans-IO
//!
//! Nothing here does I/O or reads a clock, and no input can make it panic.

use super::fcs;
use super::wire;

/// The Flag Sequence that delimits frames (RFC 1662 section 4.1).
pub const FLAG: u8 = 0x7e;
/// The Control Escape octet (RFC 1662 section 4.2).
pub const ESCAPE: u8 = 0x7d;
/// The value an escaped octet is XORed with.
pub const ESCAPE_XOR: u8 = 0x20;
/// The All-Stations address (RFC 1662 section 3.1).
pub const ADDRESS: u8 = 0xff;
/// The Unnumbered Information control field (RFC 1662 section 3.1).
pub const CONTROL: u8 = 0x03;

/// The ACCM that escapes every control character: the default before LCP negotiates one.
pub const ACCM_ALL: u32 = 0xffff_ffff;

/// The largest `max_frame` a [`Decoder`] accepts; larger values are clamped to it. It holds
/// a 4-octet header and the largest MRU LCP can negotiate (65535), with room to spare.
pub const MAX_FRAME_LIMIT: usize = 1 << 17;

/// Counters kept by the [`Decoder`]. Every dropped frame or byte is counted in one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Good frames handed out.
    pub frames: u64,
    /// Frames dropped for a bad FCS.
    pub bad_fcs: u64,
    /// Frames dropped for exceeding the maximum length.
    pub oversize: u64,
    /// Frames dropped as too short to hold a header and an FCS.
    pub runts: u64,
    /// Frames ended by the abort sequence (0x7D 0x7E).
    pub aborts: u64,
    /// Unescaped control characters discarded because the receive ACCM marks them.
    pub discarded_ctrl: u64,
    /// Bytes skipped before the first flag was seen (modem result codes, echo, noise).
    pub garbage: u64,
}

/// A 256-entry "is this octet special" table.
type Table = [bool; 256];

/// Octets a sender must escape under `accm`: flagged control characters, 0x7D and 0x7E.
/// On reception the same set is special: flags and escapes steer the decoder, flagged
/// control characters are dropped.
const fn special_table(accm: u32) -> Table {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 32 {
        t[i] = accm & (1 << i) != 0;
        i += 1;
    }
    t[FLAG as usize] = true;
    t[ESCAPE as usize] = true;
    t
}

/// The table for [`ACCM_ALL`], used for the LCP packets that are always fully escaped.
static TABLE_ALL: Table = special_table(ACCM_ALL);

#[inline]
fn accm_marks(accm: u32, b: u8) -> bool {
    b < 0x20 && accm & (1u32 << b) != 0
}

/// Streaming decoder: push received bytes, get complete, FCS-checked frames.
pub struct Decoder {
    /// The unescaped frame being received (FCS included); capacity fixed at construction.
    buf: Vec<u8>,
    /// Maximum frame length without the FCS.
    max_frame: usize,
    /// Receive ACCM and its special-octet table.
    accm: u32,
    special: Table,
    fcs32: bool,
    /// A flag has been seen: we are inside the frame stream.
    synced: bool,
    /// The previous octet was a Control Escape.
    escape: bool,
    /// The current frame overflowed: skip to the next flag.
    overflow: bool,
    /// `buf` holds a frame handed out by the previous `decode` call.
    handed_out: bool,
    stats: DecoderStats,
}

impl core::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decoder")
            .field("max_frame", &self.max_frame)
            .field("accm", &format_args!("{:#010x}", self.accm))
            .field("fcs32", &self.fcs32)
            .field("synced", &self.synced)
            .field("escape", &self.escape)
            .field("overflow", &self.overflow)
            .field("buffered", &self.buf.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Decoder {
    /// A decoder for frames of at most `max_frame` bytes (address, control, protocol and
    /// information, without the FCS). The receive ACCM starts as [`ACCM_ALL`].
    ///
    /// `max_frame` is clamped to [`MAX_FRAME_LIMIT`]. The frame buffer (`max_frame` plus
    /// room for a 32-bit FCS) is allocated here, once.
    pub fn new(max_frame: usize) -> Self {
        let max_frame = max_frame.min(MAX_FRAME_LIMIT);
        Self {
            buf: Vec::with_capacity(max_frame + 4),
            max_frame,
            accm: ACCM_ALL,
            special: special_table(ACCM_ALL),
            fcs32: false,
            synced: false,
            escape: false,
            overflow: false,
            handed_out: false,
            stats: DecoderStats::default(),
        }
    }

    /// Sets the receive ACCM: unescaped control characters it marks are discarded.
    pub fn set_accm(&mut self, accm: u32) {
        self.accm = accm;
        self.special = special_table(accm);
    }

    /// Use the 32-bit FCS instead of the 16-bit one.
    pub fn set_fcs32(&mut self, on: bool) {
        self.fcs32 = on;
    }

    /// The receive ACCM in force.
    pub fn accm(&self) -> u32 {
        self.accm
    }

    /// The maximum frame length (without FCS) this decoder accepts.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Consumes bytes from `input` until a frame completes or the input ends. Returns how
    /// many bytes were consumed and the frame (address/control/protocol/information, FCS
    /// stripped) when one completed. Call again with the rest of the input.
    ///
    /// A returned frame is at least 2 and at most `max_frame` bytes long. Bytes before the
    /// first flag ever seen are skipped and counted in [`DecoderStats::garbage`].
    pub fn decode<'a>(&'a mut self, input: &[u8]) -> (usize, Option<&'a [u8]>) {
        if self.handed_out {
            self.handed_out = false;
            self.buf.clear();
        }
        let mut i = 0;
        while i < input.len() {
            if !self.synced {
                match memchr::memchr(FLAG, &input[i..]) {
                    Some(p) => {
                        self.stats.garbage += p as u64;
                        self.synced = true;
                        i += p + 1;
                        continue;
                    }
                    None => {
                        self.stats.garbage += (input.len() - i) as u64;
                        return (input.len(), None);
                    }
                }
            }
            if self.escape {
                let b = input[i];
                i += 1;
                if b == FLAG {
                    // Control Escape followed by a flag: the abort sequence. A frame that
                    // overflowed was already counted as oversize.
                    if !self.overflow {
                        self.stats.aborts += 1;
                    }
                    self.escape = false;
                    self.reset_frame();
                } else if accm_marks(self.accm, b) {
                    // Removed before un-stuffing; the escape stays pending.
                    self.stats.discarded_ctrl += 1;
                } else {
                    self.escape = false;
                    self.push(&[b ^ ESCAPE_XOR]);
                }
                continue;
            }
            let rest = &input[i..];
            let found = if self.accm == 0 {
                memchr::memchr2(FLAG, ESCAPE, rest)
            } else {
                let special = &self.special;
                rest.iter().position(|&b| special[b as usize])
            };
            let Some(p) = found else {
                self.push(rest);
                return (input.len(), None);
            };
            self.push(&rest[..p]);
            i += p + 1;
            match rest[p] {
                FLAG => {
                    if let Some(len) = self.end_frame() {
                        self.handed_out = true;
                        return (i, Some(&self.buf[..len]));
                    }
                }
                ESCAPE => self.escape = true,
                _ => self.stats.discarded_ctrl += 1,
            }
        }
        (i, None)
    }

    /// The counters.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    fn fcs_len(&self) -> usize {
        if self.fcs32 { 4 } else { 2 }
    }

    /// Appends unescaped octets to the frame, or starts skipping when it grows too long.
    #[inline]
    fn push(&mut self, run: &[u8]) {
        if self.overflow || run.is_empty() {
            return;
        }
        if self.buf.len() + run.len() > self.max_frame + self.fcs_len() {
            self.stats.oversize += 1;
            self.overflow = true;
            self.buf.clear();
        } else {
            self.buf.extend_from_slice(run);
        }
    }

    fn reset_frame(&mut self) {
        self.buf.clear();
        self.overflow = false;
    }

    /// A flag closed the current frame: check it and return its length without FCS if good.
    fn end_frame(&mut self) -> Option<usize> {
        if self.overflow {
            // Already counted as oversize when it overflowed.
            self.reset_frame();
            return None;
        }
        let n = self.buf.len();
        if n == 0 {
            return None;
        }
        let fcs_len = self.fcs_len();
        if n < 2 + fcs_len {
            self.stats.runts += 1;
            self.reset_frame();
            return None;
        }
        let good = if self.fcs32 {
            fcs::fcs32_update(fcs::FCS32_INIT, &self.buf) == fcs::FCS32_GOOD
        } else {
            fcs::fcs16_update(fcs::FCS16_INIT, &self.buf) == fcs::FCS16_GOOD
        };
        // Fuzzing builds accept any FCS so that the fuzzer reaches the code behind it.
        let good = good || cfg!(fuzzing);
        if !good {
            self.stats.bad_fcs += 1;
            self.reset_frame();
            return None;
        }
        self.stats.frames += 1;
        Some(n - fcs_len)
    }
}

/// Frame encoder. ACCM, ACFC and PFC start off (everything escaped, full headers).
#[derive(Clone)]
pub struct Encoder {
    accm: u32,
    special: Table,
    acfc: bool,
    pfc: bool,
    fcs32: bool,
}

impl core::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encoder")
            .field("accm", &format_args!("{:#010x}", self.accm))
            .field("acfc", &self.acfc)
            .field("pfc", &self.pfc)
            .field("fcs32", &self.fcs32)
            .finish()
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends `data` to `out`, stuffing the octets `special` marks. `accm_zero` selects the
/// memchr2 fast path (only 0x7D and 0x7E special).
#[inline]
fn stuff(out: &mut Vec<u8>, data: &[u8], special: &Table, accm_zero: bool) {
    let mut start = 0;
    if accm_zero {
        for p in memchr::memchr2_iter(FLAG, ESCAPE, data) {
            out.extend_from_slice(&data[start..p]);
            out.extend_from_slice(&[ESCAPE, data[p] ^ ESCAPE_XOR]);
            start = p + 1;
        }
    } else {
        for (p, &b) in data.iter().enumerate() {
            if special[b as usize] {
                out.extend_from_slice(&data[start..p]);
                out.extend_from_slice(&[ESCAPE, b ^ ESCAPE_XOR]);
                start = p + 1;
            }
        }
    }
    out.extend_from_slice(&data[start..]);
}

impl Encoder {
    /// A new encoder with the link defaults.
    pub fn new() -> Self {
        Self {
            accm: ACCM_ALL,
            special: special_table(ACCM_ALL),
            acfc: false,
            pfc: false,
            fcs32: false,
        }
    }

    /// Sets the transmit ACCM (the peer's negotiated receive ACCM).
    pub fn set_accm(&mut self, accm: u32) {
        self.accm = accm;
        self.special = special_table(accm);
    }

    /// Address-and-Control-Field-Compression on transmit (never applied to LCP).
    pub fn set_acfc(&mut self, on: bool) {
        self.acfc = on;
    }

    /// Protocol-Field-Compression on transmit (never applied to LCP).
    pub fn set_pfc(&mut self, on: bool) {
        self.pfc = on;
    }

    /// Use the 32-bit FCS.
    pub fn set_fcs32(&mut self, on: bool) {
        self.fcs32 = on;
    }

    /// The transmit ACCM in force.
    pub fn accm(&self) -> u32 {
        self.accm
    }

    /// Appends one complete frame (flags, header, escaped information and FCS) to `out`.
    ///
    /// LCP (0xC021) always gets the full `FF 03` header and a 2-octet protocol, and LCP
    /// codes 1 to 7 (Configure-*, Terminate-*, Code-Reject) are escaped with [`ACCM_ALL`].
    /// Under ACFC, PFC is not applied to protocol 0x00FF (the frame would start with 0xFF and
    /// read as an address field) nor to an empty information field (the frame would be a
    /// single octet, shorter than the 2-octet minimum receivers accept).
    pub fn encode(&self, protocol: u16, payload: &[u8], out: &mut Vec<u8>) {
        let lcp = protocol == wire::protocol::LCP;
        let mut hdr = [0u8; 4];
        let mut h = 0;
        if lcp || !self.acfc {
            hdr[0] = ADDRESS;
            hdr[1] = CONTROL;
            h = 2;
        }
        let [hi, lo] = protocol.to_be_bytes();
        // Under ACFC, PFC is skipped where it would make the frame start with 0xFF (read as
        // an address field) or leave a 1-octet frame (a runt to every receiver).
        let pfc_ok = h == 2 || (lo != ADDRESS && !payload.is_empty());
        if !lcp && self.pfc && hi == 0 && pfc_ok {
            hdr[h] = lo;
            h += 1;
        } else {
            hdr[h] = hi;
            hdr[h + 1] = lo;
            h += 2;
        }
        let hdr = &hdr[..h];

        let (special, accm_zero) = if lcp && matches!(payload.first(), Some(1..=7)) {
            (&TABLE_ALL, false)
        } else {
            (&self.special, self.accm == 0)
        };

        let mut fcs_buf = [0u8; 4];
        let trailer: &[u8] = if self.fcs32 {
            let f = !fcs::fcs32_update(fcs::fcs32_update(fcs::FCS32_INIT, hdr), payload);
            fcs_buf = f.to_le_bytes();
            &fcs_buf
        } else {
            let f = !fcs::fcs16_update(fcs::fcs16_update(fcs::FCS16_INIT, hdr), payload);
            fcs_buf[..2].copy_from_slice(&f.to_le_bytes());
            &fcs_buf[..2]
        };

        // Typical growth is far below 2x; reserve for the common case up front.
        out.reserve(payload.len() + payload.len() / 8 + 2 * (h + trailer.len()) + 2);
        out.push(FLAG);
        stuff(out, hdr, special, false);
        stuff(out, payload, special, accm_zero);
        stuff(out, trailer, special, false);
        out.push(FLAG);
    }
}

/// Splits a decoded frame into its protocol number and information field, accepting both
/// the full and the compressed (ACFC, PFC) header forms.
///
/// * `FF 03` at the start is the address and control field; a frame starting with 0xFF
///   followed by anything else is [`wire::Error::BadHeader`]. Without them, the frame is
///   taken to be in the ACFC form.
/// * The protocol is one octet when its first octet is odd (PFC), else two octets, the
///   second of which must be odd (RFC 1661 section 2), else [`wire::Error::BadHeader`].
/// * Frames too short for the header are [`wire::Error::Truncated`].
pub fn parse_header(frame: &[u8]) -> wire::Result<(u16, &[u8])> {
    let rest = match frame {
        [ADDRESS, CONTROL, rest @ ..] => rest,
        [ADDRESS] => return Err(wire::Error::Truncated),
        [ADDRESS, _, ..] => return Err(wire::Error::BadHeader),
        _ => frame,
    };
    match rest {
        [] => Err(wire::Error::Truncated),
        [p, info @ ..] if p & 1 == 1 => Ok((u16::from(*p), info)),
        [_] => Err(wire::Error::Truncated),
        [hi, lo, info @ ..] if lo & 1 == 1 => Ok((u16::from_be_bytes([*hi, *lo]), info)),
        _ => Err(wire::Error::BadHeader),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::protocol;
    use proptest::prelude::*;

    fn encode(enc: &Encoder, proto: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        enc.encode(proto, payload, &mut out);
        out
    }

    /// Feeds `input` in chunks of `chunk` bytes (0 = all at once) and collects the frames.
    fn decode_all(dec: &mut Decoder, input: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let chunk = if chunk == 0 {
            input.len().max(1)
        } else {
            chunk
        };
        for piece in input.chunks(chunk) {
            let mut rest = piece;
            loop {
                let (n, frame) = dec.decode(rest);
                if let Some(f) = frame {
                    frames.push(f.to_vec());
                }
                rest = &rest[n..];
                if rest.is_empty() {
                    break;
                }
            }
        }
        frames
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// Unstuffs an encoded frame (between its flags) without any checks.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut esc = false;
        for &b in &wire[1..wire.len() - 1] {
            if esc {
                out.push(b ^ 0x20);
                esc = false;
            } else if b == ESCAPE {
                esc = true;
            } else {
                out.push(b);
            }
        }
        out
    }

    // -- FCS vectors ---------------------------------------------------------------------

    #[test]
    fn fcs_check_values_and_residues() {
        assert_eq!(fcs::fcs16(b"123456789"), 0x906e);
        assert_eq!(fcs::fcs32(b"123456789"), 0xcbf4_3926);
        assert_eq!(fcs::FCS16_INIT, 0xffff);
        assert_eq!(fcs::FCS16_GOOD, 0xf0b8);
        assert_eq!(fcs::FCS32_INIT, 0xffff_ffff);
        assert_eq!(fcs::FCS32_GOOD, 0xdebb_20e3);
        let mut w = b"123456789".to_vec();
        w.extend_from_slice(&0x906e_u16.to_le_bytes());
        assert_eq!(fcs::fcs16_update(fcs::FCS16_INIT, &w), fcs::FCS16_GOOD);
        let mut w = b"123456789".to_vec();
        w.extend_from_slice(&0xcbf4_3926_u32.to_le_bytes());
        assert_eq!(fcs::fcs32_update(fcs::FCS32_INIT, &w), fcs::FCS32_GOOD);
    }

    // -- Encoder -------------------------------------------------------------------------

    #[test]
    fn escaping_accm_all() {
        let enc = Encoder::new();
        let w = encode(&enc, protocol::IPV4, &[0x00, 0x1f, 0x20, 0x7d, 0x7e, 0x41]);
        let body = &w[1..w.len() - 1];
        assert_eq!(&w[..1], &[FLAG]);
        assert_eq!(w.last(), Some(&FLAG));
        let expected = hex("ff 7d 23 7d 20 21 7d 20 7d 3f 20 7d 5d 7d 5e 41");
        assert_eq!(&body[..expected.len()], &expected[..]);
        // No unescaped control characters, flags or escapes anywhere in the body.
        let mut esc = false;
        for &b in body {
            if esc {
                esc = false;
                continue;
            }
            assert!(b >= 0x20 && b != FLAG, "raw {b:#04x}");
            esc = b == ESCAPE;
        }
    }

    #[test]
    fn escaping_accm_zero() {
        let mut enc = Encoder::new();
        enc.set_accm(0);
        let w = encode(&enc, protocol::IPV4, &[0x00, 0x11, 0x13, 0x7d, 0x7e, 0x20]);
        let expected_body = hex("ff 03 00 21 00 11 13 7d 5d 7d 5e 20");
        assert_eq!(&w[1..1 + expected_body.len()], &expected_body[..]);
    }

    #[test]
    fn escaping_accm_xon_xoff() {
        let mut enc = Encoder::new();
        enc.set_accm(0x000a_0000);
        let payload: Vec<u8> = (0u8..0x20).collect();
        let w = encode(&enc, protocol::IPV4, &payload);
        let expected_body = hex(
            "ff 03 00 21 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 7d 31 12 7d 33 14 \
             15 16 17 18 19 1a 1b 1c 1d 1e 1f",
        );
        assert_eq!(&w[1..1 + expected_body.len()], &expected_body[..]);
        let mut dec = Decoder::new(1500);
        dec.set_accm(0x000a_0000);
        let frames = decode_all(&mut dec, &w, 0);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            parse_header(&frames[0]).unwrap(),
            (protocol::IPV4, &payload[..])
        );
    }

    #[test]
    fn fcs_bytes_are_escaped() {
        // Search for a payload whose FCS contains 0x7E and another whose FCS contains 0x7D.
        let mut enc = Encoder::new();
        enc.set_accm(0);
        let mut found = [false; 2];
        for i in 0u32..20_000 {
            let payload = i.to_le_bytes();
            let mut frame = vec![0xff, 0x03, 0x00, 0x21];
            frame.extend_from_slice(&payload);
            let f = fcs::fcs16(&frame).to_le_bytes();
            for (k, special) in [FLAG, ESCAPE].into_iter().enumerate() {
                if f.contains(&special) && !found[k] {
                    found[k] = true;
                    let w = encode(&enc, protocol::IPV4, &payload);
                    assert!(!w[1..w.len() - 1].contains(&FLAG));
                    let mut dec = Decoder::new(100);
                    dec.set_accm(0);
                    let frames = decode_all(&mut dec, &w, 0);
                    assert_eq!(frames, vec![frame.clone()]);
                }
            }
            if found == [true, true] {
                return;
            }
        }
        panic!("no FCS with 7E/7D found");
    }

    #[test]
    fn pppd_lcp_configure_request() {
        // What pppd sends first on a fresh link (debug log, "sent [LCP ConfReq id=0x1
        // <asyncmap 0x0> <magic 0x2a8c5b4e> <pcomp> <accomp>]"):
        let info = hex("01 01 00 14 02 06 00 00 00 00 05 06 2a 8c 5b 4e 07 02 08 02");
        let mut enc = Encoder::new();
        // Even with everything negotiated off, ConfReq is sent in full form with ACCM_ALL.
        enc.set_accm(0);
        enc.set_acfc(true);
        enc.set_pfc(true);
        let w = encode(&enc, protocol::LCP, &info);
        let prefix = hex(
            "7e ff 7d 23 c0 21 7d 21 7d 21 7d 20 7d 34 7d 22 7d 26 7d 20 7d 20 7d 20 7d 20 \
             7d 25 7d 26 2a 8c 5b 4e 7d 27 7d 22 7d 28 7d 22",
        );
        assert_eq!(&w[..prefix.len()], &prefix[..]);
        assert_eq!(w.last(), Some(&FLAG));
        let raw = unstuff(&w);
        assert_eq!(raw.len(), 4 + info.len() + 2);
        assert_eq!(fcs::fcs16_update(fcs::FCS16_INIT, &raw), fcs::FCS16_GOOD);
        // pppd receives it with its default receive ACCM.
        let mut dec = Decoder::new(1500);
        let frames = decode_all(&mut dec, &w, 0);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            parse_header(&frames[0]).unwrap(),
            (protocol::LCP, &info[..])
        );
    }

    #[test]
    fn lcp_never_compressed() {
        let mut enc = Encoder::new();
        enc.set_accm(0);
        enc.set_acfc(true);
        enc.set_pfc(true);
        // Echo-Request (code 9) uses the negotiated ACCM but still a full header.
        let echo = hex("09 01 00 08 00 00 00 00");
        let w = encode(&enc, protocol::LCP, &echo);
        assert_eq!(&w[..5], &hex("7e ff 03 c0 21")[..]);
        assert_eq!(&w[5..13], &echo[..]);
        // Other protocols are compressed.
        let w = encode(&enc, protocol::IPV4, &[0x45]);
        assert_eq!(&w[..3], &[FLAG, 0x21, 0x45]);
        let w = encode(&enc, protocol::IPCP, &[0x01]);
        assert_eq!(&w[..4], &[FLAG, 0x80, 0x21, 0x01]);
        // ACFC alone, PFC alone.
        enc.set_pfc(false);
        let w = encode(&enc, protocol::IPV4, &[0x45]);
        assert_eq!(&w[..4], &[FLAG, 0x00, 0x21, 0x45]);
        enc.set_acfc(false);
        enc.set_pfc(true);
        let w = encode(&enc, protocol::IPV4, &[0x45]);
        assert_eq!(&w[..5], &[FLAG, 0xff, 0x03, 0x21, 0x45]);
    }

    #[test]
    fn pfc_not_applied_where_ambiguous_or_runt() {
        let mut enc = Encoder::new();
        enc.set_accm(0);
        enc.set_acfc(true);
        enc.set_pfc(true);
        let w = encode(&enc, 0x00ff, &[1, 2]);
        assert_eq!(&w[..3], &[FLAG, 0x00, 0xff]);
        let mut dec = Decoder::new(100);
        dec.set_accm(0);
        let frames = decode_all(&mut dec, &w, 0);
        assert_eq!(parse_header(&frames[0]).unwrap(), (0x00ff, &[1u8, 2][..]));
        // An empty information field keeps a 2-octet protocol: no 1-octet runt frames.
        let w = encode(&enc, protocol::IPV4, &[]);
        assert_eq!(&w[..3], &[FLAG, 0x00, 0x21]);
        let frames = decode_all(&mut dec, &w, 0);
        assert_eq!(parse_header(&frames[0]).unwrap(), (protocol::IPV4, &[][..]));
        assert_eq!(dec.stats().runts, 0);
        // Without ACFC, PFC applies to both.
        enc.set_acfc(false);
        let w = encode(&enc, protocol::IPV4, &[]);
        assert_eq!(&w[..4], &[FLAG, 0xff, 0x03, 0x21]);
    }

    #[test]
    fn fcs32_round_trip() {
        let mut enc = Encoder::new();
        enc.set_fcs32(true);
        let w = encode(&enc, protocol::IPV4, b"hello");
        let raw = unstuff(&w);
        assert_eq!(raw.len(), 4 + 5 + 4);
        assert_eq!(fcs::fcs32_update(fcs::FCS32_INIT, &raw), fcs::FCS32_GOOD);
        let mut dec = Decoder::new(100);
        dec.set_fcs32(true);
        let frames = decode_all(&mut dec, &w, 0);
        assert_eq!(frames, vec![raw[..raw.len() - 4].to_vec()]);
        // A 16-bit decoder rejects it.
        let mut dec = Decoder::new(100);
        assert!(decode_all(&mut dec, &w, 0).is_empty());
        assert_eq!(dec.stats().bad_fcs, 1);
    }

    // -- parse_header --------------------------------------------------------------------

    #[test]
    fn parse_header_forms() {
        let info = [0x45u8, 0x00];
        let ok = |f: &[u8], p: u16| assert_eq!(parse_header(f).unwrap(), (p, &info[..]));
        ok(&[0xff, 0x03, 0x00, 0x21, 0x45, 0x00], 0x0021);
        ok(&[0xff, 0x03, 0x21, 0x45, 0x00], 0x0021); // PFC
        ok(&[0x00, 0x21, 0x45, 0x00], 0x0021); // ACFC
        ok(&[0x21, 0x45, 0x00], 0x0021); // ACFC + PFC
        ok(&[0xc0, 0x21, 0x45, 0x00], 0xc021);
        ok(&[0xff, 0x03, 0x80, 0x21, 0x45, 0x00], 0x8021);
        assert_eq!(parse_header(&[0xff, 0x03, 0x21]).unwrap(), (0x21, &[][..]));
        assert_eq!(parse_header(&[0xff, 0x03, 0xff]).unwrap(), (0xff, &[][..]));
    }

    #[test]
    fn parse_header_errors() {
        use wire::Error::{BadHeader, Truncated};
        assert_eq!(parse_header(&[]), Err(Truncated));
        assert_eq!(parse_header(&[0xff]), Err(Truncated));
        assert_eq!(parse_header(&[0xff, 0x03]), Err(Truncated));
        assert_eq!(parse_header(&[0xff, 0x03, 0x00]), Err(Truncated));
        assert_eq!(parse_header(&[0x00]), Err(Truncated));
        assert_eq!(parse_header(&[0xff, 0x13, 0x00, 0x21]), Err(BadHeader));
        assert_eq!(parse_header(&[0xff, 0xff, 0x00, 0x21]), Err(BadHeader));
        assert_eq!(parse_header(&[0xff, 0x03, 0x00, 0x20]), Err(BadHeader));
        assert_eq!(parse_header(&[0xc0, 0x22, 0x01]), Err(BadHeader));
    }

    // -- Decoder -------------------------------------------------------------------------

    #[test]
    fn empty_frames_ignored_and_shared_flags() {
        let mut enc = Encoder::new();
        enc.set_accm(0);
        let a = encode(&enc, protocol::IPV4, b"one");
        let b = encode(&enc, protocol::IPV4, b"two");
        // Flags shared between frames, plus extra empty frames.
        let mut s = vec![FLAG, FLAG, FLAG];
        s.extend_from_slice(&a[..a.len() - 1]);
        s.extend_from_slice(&b);
        s.extend_from_slice(&[FLAG, FLAG]);
        let mut dec = Decoder::new(1500);
        dec.set_accm(0);
        let frames = decode_all(&mut dec, &s, 0);
        assert_eq!(frames.len(), 2);
        assert_eq!(parse_header(&frames[0]).unwrap().1, b"one");
        assert_eq!(parse_header(&frames[1]).unwrap().1, b"two");
        let st = *dec.stats();
        assert_eq!(
            st,
            DecoderStats {
                frames: 2,
                ..Default::default()
            }
        );
    }

    #[test]
    fn abort_sequence_drops_partial_frame() {
        let enc = Encoder::new();
        let good = encode(&enc, protocol::IPV4, b"payload");
        let mut s = good[..good.len() / 2].to_vec();
        s.extend_from_slice(&[ESCAPE, FLAG]);
        s.extend_from_slice(&good[1..]); // the abort's flag opens the next frame
        let mut dec = Decoder::new(1500);
        let frames = decode_all(&mut dec, &s, 0);
        assert_eq!(frames.len(), 1);
        assert_eq!(parse_header(&frames[0]).unwrap().1, b"payload");
        assert_eq!(dec.stats().aborts, 1);
        assert_eq!(dec.stats().bad_fcs, 0);
        assert_eq!(dec.stats().runts, 0);
    }

    #[test]
    fn oversize_frames_dropped_then_resync() {
        let mut enc = Encoder::new();
        enc.set_accm(0);
        let big = encode(&enc, protocol::IPV4, &[0x55; 200]);
        let fits = encode(&enc, protocol::IPV4, &[0x55; 96]); // 100 bytes with header
        let too_big = encode(&enc, protocol::IPV4, &[0x55; 97]);
        let small = encode(&enc, protocol::IPV4, b"ok");
        let mut s = big.clone();
        s.extend_from_slice(&fits);
        s.extend_from_slice(&too_big);
        s.extend_from_slice(&small);
        for chunk in [0, 1, 7] {
            let mut dec = Decoder::new(100);
            dec.set_accm(0);
            let frames = decode_all(&mut dec, &s, chunk);
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0].len(), 100);
            assert_eq!(parse_header(&frames[1]).unwrap().1, b"ok");
            assert_eq!(dec.stats().oversize, 2);
            assert_eq!(dec.stats().bad_fcs, 0);
            assert!(dec.buf.capacity() <= 104 + 8, "buffer grew");
        }
    }

    #[test]
    fn abort_of_oversize_frame_counted_once() {
        let mut enc = Encoder::new();
        enc.set_accm(0);
        let big = encode(&enc, protocol::IPV4, &[0x55; 200]);
        let mut s = big[..150].to_vec();
        s.extend_from_slice(&[ESCAPE, FLAG]);
        let mut dec = Decoder::new(100);
        assert!(decode_all(&mut dec, &s, 0).is_empty());
        assert_eq!((dec.stats().oversize, dec.stats().aborts), (1, 0));
    }

    #[test]
    fn oversize_with_fcs32_limit() {
        let mut enc = Encoder::new();
        enc.set_fcs32(true);
        let w = encode(&enc, protocol::IPV4, &[1; 96]);
        let mut dec = Decoder::new(100);
        dec.set_fcs32(true);
        assert_eq!(decode_all(&mut dec, &w, 0).len(), 1);
        let w = encode(&enc, protocol::IPV4, &[1; 97]);
        assert!(decode_all(&mut dec, &w, 0).is_empty());
        assert_eq!(dec.stats().oversize, 1);
    }

    #[test]
    fn runts() {
        let mut dec = Decoder::new(1500);
        dec.set_accm(0);
        // One, two and three bytes between flags: all shorter than 2 + FCS.
        let s = hex("7e 21 7e 21 45 7e ff 03 00 7e");
        assert!(decode_all(&mut dec, &s, 0).is_empty());
        assert_eq!(dec.stats().runts, 3);
        // The shortest acceptable frame: 2 header bytes + FCS.
        let mut frame = vec![0x21, 0x45];
        frame.extend_from_slice(&fcs::fcs16(&frame).to_le_bytes());
        let mut s = vec![FLAG];
        s.extend_from_slice(&frame);
        s.push(FLAG);
        let frames = decode_all(&mut dec, &s, 0);
        assert_eq!(frames, vec![vec![0x21, 0x45]]);
    }

    #[test]
    fn garbage_then_good_frame() {
        let enc = Encoder::new();
        let good = encode(&enc, protocol::LCP, &hex("01 01 00 04"));
        let mut s = b"ATDT5551234\r\r\nCONNECT 33600/ARQ/V34/LAPM/V42BIS\r\n".to_vec();
        let garbage_len = s.len() as u64;
        s.extend_from_slice(&good);
        for chunk in [0, 1, 3, 16] {
            let mut dec = Decoder::new(1500);
            let frames = decode_all(&mut dec, &s, chunk);
            assert_eq!(frames.len(), 1);
            assert_eq!(parse_header(&frames[0]).unwrap().0, protocol::LCP);
            assert_eq!(dec.stats().garbage, garbage_len);
            assert_eq!(dec.stats().bad_fcs, 0);
            assert_eq!(dec.stats().runts, 0);
        }
    }

    #[test]
    fn noise_between_frames_only_costs_that_frame() {
        let mut enc = Encoder::new();
        enc.set_accm(0);
        let good = encode(&enc, protocol::IPV4, b"abcdef");
        let mut s = good.clone();
        // Noise after a frame: it ends as a bad frame at the next flag ('~' is 0x7E).
        s.extend_from_slice(b"NO CARRIER\r\nline noise~");
        s.extend_from_slice(&good);
        // A noise byte followed by an escape that swallows the next opening flag: abort.
        s.extend_from_slice(b"x}");
        s.extend_from_slice(&good);
        s.extend_from_slice(&good);
        let mut dec = Decoder::new(1500);
        dec.set_accm(0);
        let frames = decode_all(&mut dec, &s, 0);
        assert_eq!(frames.len(), 4);
        let st = dec.stats();
        assert_eq!(st.frames, 4);
        assert_eq!((st.bad_fcs, st.aborts, st.runts), (1, 1, 0));
    }

    #[test]
    fn receive_accm_discards_control_chars() {
        let mut enc = Encoder::new();
        enc.set_accm(0);
        let w = encode(&enc, protocol::IPV4, b"hello world");
        // A modem inserts XON/XOFF everywhere, including between an escape and its octet.
        let mut s = Vec::new();
        for &b in &w {
            s.push(0x11);
            s.push(b);
            s.push(0x13);
        }
        let mut with_esc = encode(&enc, protocol::IPV4, &[0x7e, 0x7d]);
        let first_escape = with_esc.iter().position(|&b| b == ESCAPE).unwrap();
        with_esc.insert(first_escape + 1, 0x11);
        s.extend_from_slice(&with_esc);
        let mut dec = Decoder::new(1500);
        dec.set_accm(0x000a_0000);
        let frames = decode_all(&mut dec, &s, 0);
        assert_eq!(frames.len(), 2);
        assert_eq!(parse_header(&frames[0]).unwrap().1, b"hello world");
        assert_eq!(parse_header(&frames[1]).unwrap().1, &[0x7e, 0x7d]);
        assert_eq!(dec.stats().discarded_ctrl, 2 * w.len() as u64 - 1 + 1);
        // Before the first flag the 0x11 is garbage, not a discarded control char.
        assert_eq!(dec.stats().garbage, 1);
        // With ACCM 0 the same control characters are data: the frame fails its FCS.
        let mut dec = Decoder::new(1500);
        dec.set_accm(0);
        assert!(decode_all(&mut dec, &s[..3 * w.len()], 0).is_empty());
        assert_eq!(dec.stats().bad_fcs, 1);
    }

    #[test]
    fn byte_by_byte() {
        let mut enc = Encoder::new();
        let payloads: Vec<Vec<u8>> = vec![
            (0..=255).collect(),
            vec![0x7e; 10],
            vec![0x7d; 10],
            b"plain".to_vec(),
        ];
        for accm in [ACCM_ALL, 0, 0x000a_0000] {
            enc.set_accm(accm);
            let mut s = Vec::new();
            for p in &payloads {
                enc.encode(protocol::IPV4, p, &mut s);
            }
            let mut dec = Decoder::new(1500);
            dec.set_accm(accm);
            let frames = decode_all(&mut dec, &s, 1);
            assert_eq!(frames.len(), payloads.len());
            for (f, p) in frames.iter().zip(&payloads) {
                assert_eq!(parse_header(f).unwrap(), (protocol::IPV4, &p[..]));
            }
        }
    }

    #[test]
    fn decode_returns_after_each_frame() {
        let enc = Encoder::new();
        let a = encode(&enc, protocol::IPV4, b"a1");
        let mut s = a.clone();
        s.extend_from_slice(&a);
        let mut dec = Decoder::new(1500);
        let (n, f) = dec.decode(&s);
        assert!(f.is_some());
        assert_eq!(n, a.len());
        let (n2, f) = dec.decode(&s[n..]);
        assert!(f.is_some());
        assert_eq!(n + n2, s.len());
        let (n3, f) = dec.decode(&[]);
        assert_eq!((n3, f), (0, None));
    }

    #[test]
    fn max_frame_clamped() {
        let dec = Decoder::new(usize::MAX);
        assert_eq!(dec.max_frame(), MAX_FRAME_LIMIT);
    }

    // -- Properties ----------------------------------------------------------------------

    fn accm_strategy() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            Just(ACCM_ALL),
            Just(0x000a_0000u32),
            any::<u32>()
        ]
    }

    fn protocol_strategy() -> impl Strategy<Value = u16> {
        prop_oneof![
            Just(protocol::IPV4),
            Just(protocol::LCP),
            Just(protocol::IPCP),
            Just(0x00ff_u16),
            any::<u16>()
        ]
    }

    fn payload_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4),
            prop::collection::vec(any::<u8>(), 0..300)
        ]
    }

    proptest! {
        #[test]
        fn prop_round_trip(
            frames in prop::collection::vec((protocol_strategy(), payload_strategy()), 1..6),
            accm in accm_strategy(),
            acfc in any::<bool>(),
            pfc in any::<bool>(),
            fcs32 in any::<bool>(),
            chunk in 0usize..40,
        ) {
            let mut enc = Encoder::new();
            enc.set_accm(accm);
            enc.set_acfc(acfc);
            enc.set_pfc(pfc);
            enc.set_fcs32(fcs32);
            // Valid PPP protocol numbers: low byte odd, high byte even.
            let frames: Vec<(u16, Vec<u8>)> =
                frames.into_iter().map(|(p, d)| ((p | 1) & !0x0100, d)).collect();
            let mut s = Vec::new();
            for (p, d) in &frames {
                enc.encode(*p, d, &mut s);
            }
            // The receiver's ACCM must be a subset of what the sender escapes.
            let mut dec = Decoder::new(400);
            dec.set_accm(accm);
            dec.set_fcs32(fcs32);
            let got = decode_all(&mut dec, &s, chunk);
            prop_assert_eq!(got.len(), frames.len());
            for (f, (p, d)) in got.iter().zip(&frames) {
                let (gp, gd) = parse_header(f).unwrap();
                prop_assert_eq!(gp, *p);
                prop_assert_eq!(gd, &d[..]);
            }
            prop_assert_eq!(dec.stats().frames, frames.len() as u64);
            // No raw control character the ACCM marks on the wire.
            prop_assert!(!s.iter().any(|&b| accm_marks(accm, b)));
        }

        #[test]
        fn prop_garbage_prefix_then_frame(
            garbage in prop::collection::vec(any::<u8>().prop_filter("no flag", |b| *b != FLAG), 0..200),
            payload in prop::collection::vec(any::<u8>(), 0..200),
            accm in accm_strategy(),
        ) {
            let mut enc = Encoder::new();
            enc.set_accm(accm);
            let mut s = garbage.clone();
            enc.encode(protocol::IPV4, &payload, &mut s);
            let mut dec = Decoder::new(1500);
            dec.set_accm(accm);
            let got = decode_all(&mut dec, &s, 0);
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(parse_header(&got[0]).unwrap().1, &payload[..]);
            prop_assert_eq!(dec.stats().garbage, garbage.len() as u64);
        }

        #[test]
        fn prop_arbitrary_input_is_safe(
            input in prop::collection::vec(
                prop_oneof![3 => any::<u8>(), 1 => Just(FLAG), 1 => Just(ESCAPE)], 0..3000),
            max_frame in 0usize..300,
            accm in accm_strategy(),
            fcs32 in any::<bool>(),
            chunk in 0usize..50,
        ) {
            let mut dec = Decoder::new(max_frame);
            dec.set_accm(accm);
            dec.set_fcs32(fcs32);
            let cap = dec.buf.capacity();
            let got = decode_all(&mut dec, &input, chunk);
            for f in &got {
                prop_assert!(f.len() <= max_frame);
                prop_assert!(f.len() >= 2);
                let _ = parse_header(f);
            }
            prop_assert_eq!(dec.buf.capacity(), cap);
            prop_assert_eq!(dec.stats().frames, got.len() as u64);
        }
    }
}
