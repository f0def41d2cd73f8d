//! Frame Check Sequences for RFC 1662 framing: the 16-bit FCS (RFC 1662 appendix C.2, the
//! CRC-CCITT polynomial x¹⁶ + x¹² + x⁵ + 1) and the 32-bit FCS (appendix C.3, the
//! Ethernet/AUTODIN II polynomial), both bit-reflected ("LSB first").
//!
//! The computation is table driven with *slicing-by-16*: sixteen 256-entry tables, built at
//! compile time by `const fn`, let the inner loop consume sixteen octets per step with
//! sixteen independent table look-ups instead of a serial chain of sixteen. There is no
//! `unsafe` and no platform-specific code.
//!
//! # Usage
//!
//! A sender starts from [`FCS16_INIT`] (or [`FCS32_INIT`]), folds in the address, control,
//! protocol and information fields with [`fcs16_update`], and transmits the ones' complement
//! of the result least significant octet first. A receiver folds in the whole frame *including*
//! the received FCS; the frame is good when the result is [`FCS16_GOOD`] (or [`FCS32_GOOD`]).
//!
//! ```
//! use nasd::proto::fcs;
//! let frame = [0xff, 0x03, 0xc0, 0x21, 0x09, 0x01, 0x00, 0x08, 0, 0, 0, 0];
//! let fcs = !fcs::fcs16_update(fcs::FCS16_INIT, &frame);
//! let mut wire = frame.to_vec();
//! wire.extend_from_slice(&fcs.to_le_bytes());
//! assert_eq!(fcs::fcs16_update(fcs::FCS16_INIT, &wire), fcs::FCS16_GOOD);
//! ```

/// Initial value of the 16-bit FCS (RFC 1662 appendix C.2, `PPPINITFCS16`).
pub const FCS16_INIT: u16 = 0xffff;
/// Value of the 16-bit FCS computed over a good frame including its FCS (`PPPGOODFCS16`).
pub const FCS16_GOOD: u16 = 0xf0b8;
/// Initial value of the 32-bit FCS (RFC 1662 appendix C.3, `PPPINITFCS32`).
pub const FCS32_INIT: u32 = 0xffff_ffff;
/// Value of the 32-bit FCS computed over a good frame including its FCS (`PPPGOODFCS32`).
pub const FCS32_GOOD: u32 = 0xdebb_20e3;

/// The bit-reflected CRC-CCITT polynomial used by the 16-bit FCS.
const POLY16: u16 = 0x8408;
/// The bit-reflected AUTODIN II polynomial used by the 32-bit FCS.
const POLY32: u32 = 0xedb8_8320;
/// Octets consumed per step of the sliced loops (and number of tables).
const SLICES: usize = 16;

const fn tables16() -> [[u16; 256]; SLICES] {
    let mut t = [[0u16; 256]; SLICES];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ POLY16
            } else {
                c >> 1
            };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    // t[k][i]: the CRC of octet i followed by k zero octets, starting from 0.
    let mut k = 1;
    while k < SLICES {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

const fn tables32() -> [[u32; 256]; SLICES] {
    let mut t = [[0u32; 256]; SLICES];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ POLY32
            } else {
                c >> 1
            };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < SLICES {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Slicing tables for the 16-bit FCS; `T16[0]` is the classic `fcstab` of RFC 1662 C.2.
static T16: [[u16; 256]; SLICES] = tables16();
/// Slicing tables for the 32-bit FCS; `T32[0]` is the classic `fcstab_32` of RFC 1662 C.3.
static T32: [[u32; 256]; SLICES] = tables32();

/// The classic one-table 16-bit FCS table of RFC 1662 appendix C.2 (`fcstab`).
pub const FCS16_TABLE: [u16; 256] = tables16()[0];
/// The classic one-table 32-bit FCS table of RFC 1662 appendix C.3 (`fcstab_32`).
pub const FCS32_TABLE: [u32; 256] = tables32()[0];

#[inline(always)]
fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Folds `data` into a running 16-bit FCS (RFC 1662 appendix C.2 `pppfcs16`).
#[inline]
pub fn fcs16_update(fcs: u16, data: &[u8]) -> u16 {
    let t = &T16;
    let mut crc = fcs;
    let mut chunks = data.chunks_exact(SLICES);
    for c in &mut chunks {
        let a = le64(&c[..8]) ^ u64::from(crc);
        let b = le64(&c[8..]);
        crc = t[15][a as u8 as usize]
            ^ t[14][(a >> 8) as u8 as usize]
            ^ t[13][(a >> 16) as u8 as usize]
            ^ t[12][(a >> 24) as u8 as usize]
            ^ t[11][(a >> 32) as u8 as usize]
            ^ t[10][(a >> 40) as u8 as usize]
            ^ t[9][(a >> 48) as u8 as usize]
            ^ t[8][(a >> 56) as u8 as usize]
            ^ t[7][b as u8 as usize]
            ^ t[6][(b >> 8) as u8 as usize]
            ^ t[5][(b >> 16) as u8 as usize]
            ^ t[4][(b >> 24) as u8 as usize]
            ^ t[3][(b >> 32) as u8 as usize]
            ^ t[2][(b >> 40) as u8 as usize]
            ^ t[1][(b >> 48) as u8 as usize]
            ^ t[0][(b >> 56) as u8 as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][(crc as u8 ^ byte) as usize];
    }
    crc
}

/// Folds `data` into a running 32-bit FCS (RFC 1662 appendix C.3 `pppfcs32`).
#[inline]
pub fn fcs32_update(fcs: u32, data: &[u8]) -> u32 {
    let t = &T32;
    let mut crc = fcs;
    let mut chunks = data.chunks_exact(SLICES);
    for c in &mut chunks {
        let a = le64(&c[..8]) ^ u64::from(crc);
        let b = le64(&c[8..]);
        crc = t[15][a as u8 as usize]
            ^ t[14][(a >> 8) as u8 as usize]
            ^ t[13][(a >> 16) as u8 as usize]
            ^ t[12][(a >> 24) as u8 as usize]
            ^ t[11][(a >> 32) as u8 as usize]
            ^ t[10][(a >> 40) as u8 as usize]
            ^ t[9][(a >> 48) as u8 as usize]
            ^ t[8][(a >> 56) as u8 as usize]
            ^ t[7][b as u8 as usize]
            ^ t[6][(b >> 8) as u8 as usize]
            ^ t[5][(b >> 16) as u8 as usize]
            ^ t[4][(b >> 24) as u8 as usize]
            ^ t[3][(b >> 32) as u8 as usize]
            ^ t[2][(b >> 40) as u8 as usize]
            ^ t[1][(b >> 48) as u8 as usize]
            ^ t[0][(b >> 56) as u8 as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][(crc as u8 ^ byte) as usize];
    }
    crc
}

/// The 16-bit FCS of `data` as transmitted: ones' complement of the CRC, to be sent least
/// significant octet first (`fcs16(data).to_le_bytes()`).
#[inline]
pub fn fcs16(data: &[u8]) -> u16 {
    !fcs16_update(FCS16_INIT, data)
}

/// The 32-bit FCS of `data` as transmitted: ones' complement of the CRC, to be sent least
/// significant octet first (`fcs32(data).to_le_bytes()`).
#[inline]
pub fn fcs32(data: &[u8]) -> u32 {
    !fcs32_update(FCS32_INIT, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise16(mut crc: u16, data: &[u8]) -> u16 {
        for &b in data {
            crc ^= u16::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLY16
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    fn bitwise32(mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLY32
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_values() {
        // CRC-16/X-25 and CRC-32 (ISO-HDLC) check values.
        assert_eq!(fcs16(b"123456789"), 0x906e);
        assert_eq!(fcs32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn rfc1662_table_entries() {
        // First and last entries of fcstab / fcstab_32 as printed in RFC 1662 appendix C.
        assert_eq!(&FCS16_TABLE[..4], &[0x0000, 0x1189, 0x2312, 0x329b]);
        assert_eq!(FCS16_TABLE[255], 0x0f78);
        assert_eq!(
            &FCS32_TABLE[..4],
            &[0x0000_0000, 0x7707_3096, 0xee0e_612c, 0x9909_51ba]
        );
        assert_eq!(FCS32_TABLE[255], 0x2d02_ef8d);
    }

    #[test]
    fn residues() {
        for len in [0usize, 1, 5, 15, 16, 17, 31, 32, 33, 100] {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut w = data.clone();
            w.extend_from_slice(&fcs16(&data).to_le_bytes());
            assert_eq!(fcs16_update(FCS16_INIT, &w), FCS16_GOOD);
            let mut w = data.clone();
            w.extend_from_slice(&fcs32(&data).to_le_bytes());
            assert_eq!(fcs32_update(FCS32_INIT, &w), FCS32_GOOD);
        }
    }

    #[test]
    fn sliced_equals_bitwise() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..20 {
            for end in [start, start + 1, start + 16, start + 17, 333, 1000] {
                let d = &data[start..end];
                assert_eq!(fcs16_update(0x1234, d), bitwise16(0x1234, d));
                assert_eq!(fcs32_update(0x89ab_cdef, d), bitwise32(0x89ab_cdef, d));
            }
        }
        // Incremental folding equals one pass.
        let (a, b) = data.split_at(421);
        assert_eq!(
            fcs16_update(fcs16_update(FCS16_INIT, a), b),
            fcs16_update(FCS16_INIT, &data)
        );
        assert_eq!(
            fcs32_update(fcs32_update(FCS32_INIT, a), b),
            fcs32_update(FCS32_INIT, &data)
        );
    }
}
