//! Randomness for the core, injected as a seed: magic numbers, CHAP challenges, identifiers.
//!
//! The core never reads the OS random source; the driver seeds each link with 32 bytes from it.
//! The generator is ChaCha8 (D. J. Bernstein's ChaCha with 8 rounds), so CHAP challenges are
//! unpredictable to an observer while tests stay deterministic.

/// A ChaCha8 keystream used as a random number generator.
#[derive(Clone)]
pub struct Rng {
    key: [u32; 8],
    counter: u64,
    block: [u32; 16],
    used: usize,
}

impl core::fmt::Debug for Rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Rng(..)")
    }
}

impl Rng {
    /// A generator keyed by `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        let mut key = [0u32; 8];
        for (k, c) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Self {
            key,
            counter: 0,
            block: [0; 16],
            used: 16,
        }
    }

    /// A generator keyed by a small number: for tests and benchmarks only.
    pub fn from_u64(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Self::new(s)
    }

    fn refill(&mut self) {
        const C: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
        let mut s = [0u32; 16];
        s[..4].copy_from_slice(&C);
        s[4..12].copy_from_slice(&self.key);
        s[12] = self.counter as u32;
        s[13] = (self.counter >> 32) as u32;
        let input = s;
        fn qr(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
            s[a] = s[a].wrapping_add(s[b]);
            s[d] = (s[d] ^ s[a]).rotate_left(16);
            s[c] = s[c].wrapping_add(s[d]);
            s[b] = (s[b] ^ s[c]).rotate_left(12);
            s[a] = s[a].wrapping_add(s[b]);
            s[d] = (s[d] ^ s[a]).rotate_left(8);
            s[c] = s[c].wrapping_add(s[d]);
            s[b] = (s[b] ^ s[c]).rotate_left(7);
        }
        for _ in 0..4 {
            qr(&mut s, 0, 4, 8, 12);
            qr(&mut s, 1, 5, 9, 13);
            qr(&mut s, 2, 6, 10, 14);
            qr(&mut s, 3, 7, 11, 15);
            qr(&mut s, 0, 5, 10, 15);
            qr(&mut s, 1, 6, 11, 12);
            qr(&mut s, 2, 7, 8, 13);
            qr(&mut s, 3, 4, 9, 14);
        }
        for (o, i) in s.iter_mut().zip(input.iter()) {
            *o = o.wrapping_add(*i);
        }
        self.block = s;
        self.used = 0;
        self.counter = self.counter.wrapping_add(1);
    }

    /// The next random 32-bit number.
    pub fn next_u32(&mut self) -> u32 {
        if self.used == 16 {
            self.refill();
        }
        let v = self.block[self.used];
        self.used += 1;
        v
    }

    /// A random number that is never zero (Magic-Number values must not be zero).
    pub fn nonzero_u32(&mut self) -> u32 {
        loop {
            let v = self.next_u32();
            if v != 0 {
                return v;
            }
        }
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let v = self.next_u32().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_spread() {
        let mut a = Rng::from_u64(1);
        let mut b = Rng::from_u64(1);
        let mut c = Rng::from_u64(2);
        let va: Vec<u32> = (0..40).map(|_| a.next_u32()).collect();
        let vb: Vec<u32> = (0..40).map(|_| b.next_u32()).collect();
        let vc: Vec<u32> = (0..40).map(|_| c.next_u32()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        let mut sorted = va.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 40);
    }

    #[test]
    fn fill_odd_lengths() {
        let mut r = Rng::from_u64(7);
        let mut buf = [0u8; 17];
        r.fill(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
        assert_ne!(r.nonzero_u32(), 0);
    }
}
