//! RFC 1662 asynchronous HDLC-like framing. (STUB: the signatures are the contract; bodies to
//! be written.)

use super::wire;

/// The ACCM that escapes every control character: the default before LCP negotiates one.
pub const ACCM_ALL: u32 = 0xffff_ffff;

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
}

/// Streaming decoder: push received bytes, get complete, FCS-checked frames.
#[derive(Debug)]
pub struct Decoder {}

impl Decoder {
    /// A decoder for frames of at most `max_frame` bytes (address, control, protocol and
    /// information, without the FCS). The receive ACCM starts as [`ACCM_ALL`].
    pub fn new(max_frame: usize) -> Self {
        let _ = max_frame;
        todo!()
    }
    /// Sets the receive ACCM: unescaped control characters it marks are discarded.
    pub fn set_accm(&mut self, accm: u32) {
        let _ = accm;
        todo!()
    }
    /// Use the 32-bit FCS instead of the 16-bit one.
    pub fn set_fcs32(&mut self, on: bool) {
        let _ = on;
        todo!()
    }
    /// Consumes bytes from `input` until a frame completes or the input ends. Returns how
    /// many bytes were consumed and the frame (address/control/protocol/information, FCS
    /// stripped) when one completed. Call again with the rest of the input.
    pub fn decode<'a>(&'a mut self, input: &[u8]) -> (usize, Option<&'a [u8]>) {
        let _ = input;
        todo!()
    }
    /// The counters.
    pub fn stats(&self) -> &DecoderStats {
        todo!()
    }
}

/// Frame encoder. ACCM, ACFC and PFC start off (everything escaped, full headers).
#[derive(Debug, Clone)]
pub struct Encoder {}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// A new encoder with the link defaults.
    pub fn new() -> Self {
        todo!()
    }
    /// Sets the transmit ACCM (the peer's negotiated receive ACCM).
    pub fn set_accm(&mut self, accm: u32) {
        let _ = accm;
        todo!()
    }
    /// Address-and-Control-Field-Compression on transmit (never applied to LCP).
    pub fn set_acfc(&mut self, on: bool) {
        let _ = on;
        todo!()
    }
    /// Protocol-Field-Compression on transmit (never applied to LCP).
    pub fn set_pfc(&mut self, on: bool) {
        let _ = on;
        todo!()
    }
    /// Use the 32-bit FCS.
    pub fn set_fcs32(&mut self, on: bool) {
        let _ = on;
        todo!()
    }
    /// Appends one complete frame (flags, header, escaped information and FCS) to `out`.
    pub fn encode(&self, protocol: u16, payload: &[u8], out: &mut Vec<u8>) {
        let _ = (protocol, payload, out);
        todo!()
    }
}

/// Splits a decoded frame into its protocol number and information field, accepting both
/// the full and the compressed (ACFC, PFC) header forms.
pub fn parse_header(frame: &[u8]) -> wire::Result<(u16, &[u8])> {
    let _ = frame;
    todo!()
}
