//! Throughput of RFC 1662 framing: encode and decode of typical IP traffic, with a transmit
//! and receive ACCM of 0 (what links negotiate) and of 0xffffffff (the LCP default).
//!
//! Encode throughput counts payload bytes in; decode throughput counts wire bytes in.
//!
//! ```text
//! cargo bench --bench hdlc -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nasd::proto::fcs;
use nasd::proto::hdlc::{ACCM_ALL, Decoder, Encoder};
use nasd::proto::wire::protocol;

/// Deterministic pseudo-random bytes (xorshift64*).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// The workloads: one 1500-byte packet, and a mix of 40/576/1500-byte packets.
fn workloads() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let single = vec![random_bytes(1500, 1)];
    let mix = [40usize, 576, 1500, 40, 40, 1500, 576, 40, 1500, 40]
        .iter()
        .enumerate()
        .map(|(i, &n)| random_bytes(n, i as u64 + 7))
        .collect();
    vec![("1500", single), ("mix", mix)]
}

fn accms() -> [(&'static str, u32); 2] {
    [("accm0", 0), ("accm_all", ACCM_ALL)]
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("hdlc_encode");
    for (wname, packets) in workloads() {
        let bytes: usize = packets.iter().map(Vec::len).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        for (aname, accm) in accms() {
            let mut enc = Encoder::new();
            enc.set_accm(accm);
            let mut out = Vec::with_capacity(4 * bytes + 64);
            g.bench_function(BenchmarkId::new(aname, wname), |b| {
                b.iter(|| {
                    out.clear();
                    for p in &packets {
                        enc.encode(protocol::IPV4, black_box(p), &mut out);
                    }
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("hdlc_decode");
    for (wname, packets) in workloads() {
        for (aname, accm) in accms() {
            let mut enc = Encoder::new();
            enc.set_accm(accm);
            let mut wire = Vec::new();
            for p in &packets {
                enc.encode(protocol::IPV4, p, &mut wire);
            }
            let mut dec = Decoder::new(1600);
            dec.set_accm(accm);
            g.throughput(Throughput::Bytes(wire.len() as u64));
            g.bench_function(BenchmarkId::new(aname, wname), |b| {
                b.iter(|| {
                    let mut rest = black_box(&wire[..]);
                    let mut total = 0;
                    while !rest.is_empty() {
                        let (n, frame) = dec.decode(rest);
                        if let Some(f) = frame {
                            total += f.len();
                        }
                        rest = &rest[n..];
                    }
                    assert_eq!(total, packets.iter().map(|p| p.len() + 4).sum::<usize>());
                    total
                })
            });
        }
    }
    g.finish();
}

fn bench_fcs(c: &mut Criterion) {
    let mut g = c.benchmark_group("fcs");
    let data = random_bytes(1500, 3);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("fcs16/1500", |b| b.iter(|| fcs::fcs16(black_box(&data))));
    g.bench_function("fcs32/1500", |b| b.iter(|| fcs::fcs32(black_box(&data))));
    g.finish();
}

criterion_group!(benches, bench_encode, bench_decode, bench_fcs);
criterion_main!(benches);
