//! Complete PPP negotiations per second on one core: a [`Client`] and a server `Link`, from
//! `start` to both ends Up (LCP, PAP or CHAP-MD5 with the verdict, IPCP with the address
//! and DNS Naks), through the two-endpoint harness of `tests/pair.rs` on its fast path
//! (no wire rules, no logging): HDLC encode and decode, both automata, the MD5s, creating
//! both endpoints.
//!
//! ```text
//! cargo bench --bench negotiation -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! [`Client`]: nasd::proto::client::Client

#[path = "../tests/harness/mod.rs"]
mod harness;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::{Pair, Peer, client_config, server_config};
use nasd::proto::lcp::AuthProto;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn negotiate(base: Instant, auth: AuthProto, seed: u8) -> Pair {
    let mut p = Pair::with_base(
        base,
        server_config(&[auth]),
        Peer::client(client_config(), seed),
    );
    p.logging = false;
    p.start();
    let up = p.run_until_up(Duration::from_secs(10));
    assert!(up, "negotiation did not complete");
    p
}

fn bench(c: &mut Criterion) {
    let base = Instant::now();
    let mut g = c.benchmark_group("negotiation");
    g.throughput(Throughput::Elements(1));
    for (name, auth) in [("pap", AuthProto::Pap), ("chap", AuthProto::ChapMd5)] {
        let mut seed = 0u8;
        g.bench_function(name, |b| {
            b.iter(|| {
                seed = seed.wrapping_add(1);
                black_box(negotiate(base, auth, seed))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
