//! One direction of a call's data path: bytes paced at the line rate, with injected noise.
//!
//! A [`Channel`] is sans-IO like the rest of the emulator's core: [`Channel::push`] queues
//! bytes sent by one modem, [`Channel::handle_timeout`] moves the wire forward to `now`,
//! [`Channel::take_delivered`] gives what reached the other modem, and
//! [`Channel::poll_timeout`] says when something will be delivered next.
//!
//! # The wire
//!
//! Every byte takes 10 bit times (start bit, 8 data bits, stop bit) at the line rate, so a
//! 33600 bit/s line carries 3360 bytes per second in each direction. The wire clock is exact
//! (nanoseconds computed from a bit count, not accumulated), and deliveries are batched: the
//! channel asks to be woken at most every [`TICK`] while busy, and each wake-up delivers every
//! byte whose last bit has gone out.
//!
//! # Noise
//!
//! [`Noise`] has a bit error rate (each data bit is flipped with that probability), a byte
//! drop probability and a fixed added latency. Errors and drops are drawn by sampling the gap
//! to the next event from the geometric distribution, from a seeded [`Rng`], so a run is
//! reproducible and costs nothing per clean bit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::proto::rng::Rng;

/// The longest the channel lets bytes wait for a wake-up once their time has come.
pub const TICK: Duration = Duration::from_millis(5);

/// Bits on the wire per byte (asynchronous framing with one start and one stop bit).
pub const BITS_PER_BYTE: u64 = 10;

/// Impairments of a line.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Noise {
    /// Probability that each data bit is flipped (0 to 1).
    pub ber: f64,
    /// Probability that each byte is lost (0 to 1).
    pub drop: f64,
    /// Delay added to every byte, in milliseconds.
    pub latency_ms: u64,
}

impl Noise {
    /// Checks that the probabilities are probabilities and the latency is at most a minute.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.ber) {
            return Err(format!("ber must be between 0 and 1, not {}", self.ber));
        }
        if !(0.0..=1.0).contains(&self.drop) {
            return Err(format!("drop must be between 0 and 1, not {}", self.drop));
        }
        if self.latency_ms > 60_000 {
            return Err(format!(
                "latency_ms must be at most 60000, not {}",
                self.latency_ms
            ));
        }
        Ok(())
    }
}

/// Counters of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ChannelStats {
    /// Bytes delivered to the receiving modem.
    pub bytes: u64,
    /// Data bits flipped by noise.
    pub bits_flipped: u64,
    /// Bytes lost to noise.
    pub bytes_dropped: u64,
    /// Bytes discarded because the sender overran the queue.
    pub bytes_overrun: u64,
}

/// One direction of a call. See the [module documentation](self).
#[derive(Debug)]
pub struct Channel {
    bps: u32,
    noise: Noise,
    queue: VecDeque<u8>,
    /// The wire clock: the last byte sent finished at `epoch + bits / bps`.
    epoch: Instant,
    bits: u64,
    /// Bytes sent, waiting out the latency: (due, bytes).
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    delivered: Vec<u8>,
    last_step: Instant,
    rng: Rng,
    clean_bits: u64,
    kept_bytes: u64,
    max_queue: usize,
    stats: ChannelStats,
}

impl Channel {
    /// An idle channel at `bps` bits per second; `max_queue` bounds the bytes waiting to be
    /// sent (more are discarded and counted as overrun).
    pub fn new(now: Instant, bps: u32, noise: Noise, rng: Rng, max_queue: usize) -> Self {
        let mut c = Self {
            bps: bps.max(1),
            noise,
            queue: VecDeque::new(),
            epoch: now,
            bits: 0,
            in_flight: VecDeque::new(),
            delivered: Vec::new(),
            last_step: now,
            rng,
            clean_bits: 0,
            kept_bytes: 0,
            max_queue,
            stats: ChannelStats::default(),
        };
        c.resample();
        c
    }

    /// The line rate in bits per second.
    pub fn rate(&self) -> u32 {
        self.bps
    }

    /// The noise settings.
    pub fn noise(&self) -> Noise {
        self.noise
    }

    /// The counters.
    pub fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// Bytes queued and not yet on the wire.
    pub fn backlog(&self) -> usize {
        self.queue.len()
    }

    fn wire_time(&self, bits: u64) -> Instant {
        let nanos = u128::from(bits) * 1_000_000_000 / u128::from(self.bps);
        self.epoch + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Changes the rate from `now` on (bytes already sent keep their timing).
    pub fn set_rate(&mut self, now: Instant, bps: u32) {
        self.advance(now);
        self.epoch = self.wire_time(self.bits);
        self.bits = 0;
        self.bps = bps.max(1);
    }

    /// Changes the noise from now on.
    pub fn set_noise(&mut self, noise: Noise) {
        self.noise = noise;
        self.resample();
    }

    /// Queues bytes for sending.
    pub fn push(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.advance(now);
        if self.queue.is_empty() && self.wire_time(self.bits) < now {
            // The wire was idle: the first bit goes out now.
            self.epoch = now;
            self.bits = 0;
        }
        let room = self.max_queue.saturating_sub(self.queue.len());
        let take = bytes.len().min(room);
        self.queue.extend(&bytes[..take]);
        self.stats.bytes_overrun += (bytes.len() - take) as u64;
    }

    /// Moves the wire forward to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    fn advance(&mut self, now: Instant) {
        let mut sent = Vec::new();
        let mut last_done = None;
        while !self.queue.is_empty() {
            let done = self.wire_time(self.bits + BITS_PER_BYTE);
            if done > now {
                break;
            }
            self.bits += BITS_PER_BYTE;
            let b = self.queue.pop_front().unwrap_or_default();
            if let Some(b) = self.impair(b) {
                sent.push(b);
            }
            last_done = Some(done);
        }
        if let Some(done) = last_done {
            self.last_step = now;
            if !sent.is_empty() {
                let due = done + Duration::from_millis(self.noise.latency_ms);
                self.in_flight.push_back((due, sent));
            }
        }
        while self.in_flight.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, bytes)) = self.in_flight.pop_front() {
                self.stats.bytes += bytes.len() as u64;
                self.delivered.extend_from_slice(&bytes);
            }
        }
    }

    /// Takes the bytes delivered so far.
    pub fn take_delivered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.delivered)
    }

    /// When [`Channel::handle_timeout`] will deliver something next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let wire = (!self.queue.is_empty()).then(|| {
            self.wire_time(self.bits + BITS_PER_BYTE)
                .max(self.last_step + TICK)
        });
        let flight = self.in_flight.front().map(|(due, _)| *due);
        match (wire, flight) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies noise to one byte: `None` when it is lost.
    fn impair(&mut self, b: u8) -> Option<u8> {
        if self.noise.drop > 0.0 {
            if self.kept_bytes == 0 {
                self.kept_bytes = geometric(&mut self.rng, self.noise.drop);
                self.stats.bytes_dropped += 1;
                return None;
            }
            self.kept_bytes -= 1;
        }
        let mut b = b;
        if self.noise.ber > 0.0 {
            let mut bit = 0u64;
            while bit.saturating_add(self.clean_bits) < 8 {
                bit += self.clean_bits;
                b ^= 1 << bit;
                self.stats.bits_flipped += 1;
                bit += 1;
                self.clean_bits = geometric(&mut self.rng, self.noise.ber);
            }
            self.clean_bits -= 8 - bit;
        }
        Some(b)
    }

    fn resample(&mut self) {
        self.clean_bits = geometric(&mut self.rng, self.noise.ber);
        self.kept_bytes = geometric(&mut self.rng, self.noise.drop);
    }
}

/// A uniform number in (0, 1].
fn uniform(rng: &mut Rng) -> f64 {
    let hi = u64::from(rng.next_u32()) << 21;
    let lo = u64::from(rng.next_u32()) >> 11;
    let x = (hi | lo) as f64 / (1u64 << 53) as f64;
    1.0 - x
}

/// How many trials succeed before the first failure, each failing with probability `p`.
fn geometric(rng: &mut Rng, p: f64) -> u64 {
    if p <= 0.0 || p.is_nan() {
        return u64::MAX;
    }
    if p >= 1.0 {
        return 0;
    }
    let gap = (uniform(rng).ln() / (-p).ln_1p()).floor();
    if gap >= u64::MAX as f64 {
        u64::MAX
    } else {
        gap as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(now: Instant, bps: u32, noise: Noise) -> Channel {
        Channel::new(now, bps, noise, Rng::from_u64(7), 1 << 20)
    }

    /// Runs the channel by its own deadlines until it is idle; returns (time, bytes) deliveries.
    fn drain(c: &mut Channel) -> Vec<(Instant, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(t) = c.poll_timeout() {
            c.handle_timeout(t);
            let d = c.take_delivered();
            if !d.is_empty() {
                out.push((t, d));
            }
        }
        out
    }

    #[test]
    fn paces_at_ten_bits_per_byte() {
        let t = Instant::now();
        let mut c = ch(t, 33600, Noise::default());
        let data: Vec<u8> = (0..3360u32).map(|i| i as u8).collect();
        c.push(t, &data);
        let out = drain(&mut c);
        let all: Vec<u8> = out.iter().flat_map(|(_, d)| d.clone()).collect();
        assert_eq!(all, data);
        let last = out.last().unwrap().0;
        let took = last - t;
        assert!(
            (Duration::from_millis(999)..=Duration::from_millis(1006)).contains(&took),
            "{took:?}"
        );
        // Batched: about one wake-up per tick, never one per byte.
        assert!(out.len() <= 201, "{} wake-ups", out.len());
        assert_eq!(c.stats().bytes, 3360);
    }

    #[test]
    fn a_lone_byte_goes_out_in_one_byte_time() {
        let t = Instant::now();
        let mut c = ch(t, 9600, Noise::default());
        c.handle_timeout(t + Duration::from_secs(5));
        let t1 = t + Duration::from_secs(10);
        c.push(t1, b"x");
        let due = c.poll_timeout().unwrap();
        assert_eq!(due - t1, Duration::from_nanos(10_000_000_000 / 9600));
        c.handle_timeout(due);
        assert_eq!(c.take_delivered(), b"x");
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn rate_change_mid_stream() {
        let t = Instant::now();
        let mut c = ch(t, 10_000, Noise::default());
        c.push(t, &[0; 2000]);
        c.handle_timeout(t + Duration::from_secs(1));
        assert_eq!(c.take_delivered().len(), 1000);
        c.set_rate(t + Duration::from_secs(1), 5_000);
        let out = drain(&mut c);
        let last = out.last().unwrap().0 - t;
        assert!(
            (Duration::from_secs(3)..=Duration::from_millis(3006)).contains(&last),
            "{last:?}"
        );
    }

    #[test]
    fn latency_delays_delivery() {
        let t = Instant::now();
        let noise = Noise {
            latency_ms: 200,
            ..Noise::default()
        };
        let mut c = ch(t, 100_000, noise);
        c.push(t, b"abc");
        let out = drain(&mut c);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, b"abc");
        assert!(out[0].0 - t >= Duration::from_millis(200));
        assert!(out[0].0 - t <= Duration::from_millis(206));
    }

    #[test]
    fn bit_errors_at_the_configured_rate() {
        let t = Instant::now();
        let noise = Noise {
            ber: 1e-3,
            ..Noise::default()
        };
        let mut c = ch(t, 1_000_000, noise);
        let data = vec![0u8; 100_000];
        c.push(t, &data);
        let all: Vec<u8> = drain(&mut c).into_iter().flat_map(|(_, d)| d).collect();
        assert_eq!(all.len(), data.len());
        let flipped: u32 = all.iter().map(|b| b.count_ones()).sum();
        assert_eq!(u64::from(flipped), c.stats().bits_flipped);
        // 800 000 bits at 1e-3: 800 expected, standard deviation about 28.
        assert!((650..=950).contains(&flipped), "{flipped}");
    }

    #[test]
    fn every_bit_flips_at_ber_one() {
        let t = Instant::now();
        let noise = Noise {
            ber: 1.0,
            ..Noise::default()
        };
        let mut c = ch(t, 1_000_000, noise);
        c.push(t, &[0x0f, 0xaa]);
        let all: Vec<u8> = drain(&mut c).into_iter().flat_map(|(_, d)| d).collect();
        assert_eq!(all, [0xf0, 0x55]);
    }

    #[test]
    fn drops_at_the_configured_rate() {
        let t = Instant::now();
        let noise = Noise {
            drop: 0.1,
            ..Noise::default()
        };
        let mut c = ch(t, 1_000_000, noise);
        c.push(t, &[1u8; 10_000]);
        let n: usize = drain(&mut c).iter().map(|(_, d)| d.len()).sum();
        assert_eq!(n as u64 + c.stats().bytes_dropped, 10_000);
        assert!((8_800..=9_200).contains(&n), "{n}");
    }

    #[test]
    fn seeded_noise_is_reproducible() {
        let t = Instant::now();
        let noise = Noise {
            ber: 1e-2,
            drop: 1e-2,
            latency_ms: 0,
        };
        let run = || {
            let mut c = ch(t, 1_000_000, noise);
            c.push(t, &[0x55; 5000]);
            drain(&mut c)
                .into_iter()
                .flat_map(|(_, d)| d)
                .collect::<Vec<u8>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn overrun_is_bounded_and_counted() {
        let t = Instant::now();
        let mut c = Channel::new(t, 9600, Noise::default(), Rng::from_u64(1), 100);
        c.push(t, &[0; 250]);
        assert_eq!(c.backlog(), 100);
        assert_eq!(c.stats().bytes_overrun, 150);
    }

    #[test]
    fn noise_validation() {
        assert!(Noise::default().validate().is_ok());
        for bad in [
            Noise {
                ber: 1.5,
                ..Noise::default()
            },
            Noise {
                drop: -0.1,
                ..Noise::default()
            },
            Noise {
                ber: f64::NAN,
                ..Noise::default()
            },
            Noise {
                latency_ms: 60_001,
                ..Noise::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn geometric_edges() {
        let mut r = Rng::from_u64(3);
        assert_eq!(geometric(&mut r, 0.0), u64::MAX);
        assert_eq!(geometric(&mut r, 1.0), 0);
        assert!(geometric(&mut r, 1e-300) > 1_000_000);
    }
}
