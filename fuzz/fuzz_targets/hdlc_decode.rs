//! Fuzzes the RFC 1662 decoder: arbitrary bytes, fed in chunks whose sizes come from the
//! input, under a few receive ACCMs, frame limits and FCS sizes. Every frame must respect
//! the limit and go through `parse_header`; frames with a valid header must survive an
//! encode/decode round trip.
//!
//! Fuzzing builds (`cfg(fuzzing)`) accept any FCS so that random input reaches past it.
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run hdlc_decode -- -max_total_time=600
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use nasd::proto::hdlc::{ACCM_ALL, Decoder, Encoder, parse_header};

/// Control bytes at the start of the input select the configuration.
const CTL: usize = 4;

fuzz_target!(|data: &[u8]| {
    if data.len() < CTL {
        return;
    }
    let (ctl, input) = data.split_at(CTL);
    let accm = match ctl[0] & 3 {
        0 => 0,
        1 => ACCM_ALL,
        2 => 0x000a_0000,
        _ => u32::from_le_bytes([ctl[1], ctl[2], ctl[3], ctl[1] ^ ctl[3]]),
    };
    let max_frame = [1500, 0, 1, 2, 3, 8, 64, 300][usize::from((ctl[0] >> 2) & 7)];
    let fcs32 = ctl[0] & 0x20 != 0;
    let max_chunk = [1usize, 3, 64, usize::MAX][usize::from(ctl[0] >> 6)];
    let mut seed = u32::from_le_bytes([ctl[1], ctl[2], ctl[3], 0x5a]) | 1;

    let mut dec = Decoder::new(max_frame);
    dec.set_accm(accm);
    dec.set_fcs32(fcs32);

    let mut frames = 0u64;
    let mut rest = input;
    while !rest.is_empty() {
        // Next chunk size: xorshift32 over the seed.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = if max_chunk == usize::MAX {
            rest.len()
        } else {
            1 + seed as usize % max_chunk
        };
        let (mut chunk, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        while !chunk.is_empty() {
            let (n, frame) = dec.decode(chunk);
            assert!(n <= chunk.len());
            match frame {
                Some(f) => {
                    frames += 1;
                    assert!(f.len() <= max_frame && f.len() >= 2, "frame of {}", f.len());
                    check_frame(f, accm, fcs32, ctl[1]);
                }
                None => assert_eq!(n, chunk.len(), "stopped without a frame"),
            }
            chunk = &chunk[n..];
        }
    }
    assert_eq!(dec.stats().frames, frames);
});

/// Parses the header; a frame that parses must round-trip through the encoder.
fn check_frame(frame: &[u8], accm: u32, fcs32: bool, knobs: u8) {
    let Ok((protocol, info)) = parse_header(frame) else {
        return;
    };
    let mut enc = Encoder::new();
    enc.set_accm(accm);
    enc.set_fcs32(fcs32);
    enc.set_acfc(knobs & 1 != 0);
    enc.set_pfc(knobs & 2 != 0);
    let mut wire = Vec::new();
    enc.encode(protocol, info, &mut wire);
    let mut dec = Decoder::new(frame.len() + 4);
    dec.set_accm(accm);
    dec.set_fcs32(fcs32);
    let (n, again) = dec.decode(&wire);
    let again = again.expect("re-encoded frame does not decode");
    assert_eq!(n, wire.len());
    assert_eq!(parse_header(again), Ok((protocol, info)));
}
