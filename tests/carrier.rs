//! Carrier loss through the modem's DCD line ends the session within a second.
//!
//! MOCK: this machine has no hardware modem, and no pseudo-terminal has a DCD line, so the
//! carrier-detect probe is simulated by a flag; everything else is the real session loop
//! (`driver::session::run`) with the real engine, talking to a PPP client built on the same
//! engine over an in-memory line. The NO CARRIER text path and EOF are proven for real by
//! the netns tests with vmodem.

use nasd::driver::session::{self, AuthFuture, CarrierWatch, Hooks, HostPackets};
use nasd::proto::auth::{AuthRequest, AuthResult, Grant};
use nasd::proto::client::{Client, ClientConfig, ClientEvent};
use nasd::proto::link::{DownReason, Link, LinkConfig, SessionInfo};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

struct Accept(Option<oneshot::Sender<()>>);

impl Hooks for Accept {
    fn authorize(&mut self, req: AuthRequest) -> AuthFuture {
        let ok = req.verify_secret(b"s3cret");
        Box::pin(async move {
            if ok {
                AuthResult::Accept(Grant::new(Ipv4Addr::new(10, 0, 0, 2)))
            } else {
                AuthResult::Reject {
                    message: "no".into(),
                }
            }
        })
    }
    fn up(&mut self, _info: &SessionInfo) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Drives a client on its end of the line until the line closes.
async fn peer(mut io: DuplexStream) {
    let mut c = Client::new(ClientConfig::with_credentials("dial", "s3cret"), [9; 32]);
    c.start(Instant::now());
    let mut buf = [0u8; 4096];
    loop {
        let out = c.serial_output().to_vec();
        if !out.is_empty() {
            if io.write_all(&out).await.is_err() {
                return;
            }
            c.consume_serial_output(out.len());
        }
        while let Some(ev) = c.poll_event() {
            if matches!(ev, ClientEvent::Down(_)) {
                return;
            }
        }
        let deadline = c
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        tokio::select! {
            r = io.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => c.handle_serial_input(Instant::now(), &buf[..n]),
            },
            _ = tokio::time::sleep_until(deadline.into()) => c.handle_timeout(Instant::now()),
        }
    }
}

#[tokio::test]
async fn dcd_drop_ends_the_session_within_a_second() {
    let (mut nas_io, peer_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(peer(peer_io));
    let carrier = Arc::new(AtomicBool::new(true));
    let probe = carrier.clone();
    let watch = CarrierWatch {
        dcd: Some(Box::new(move || Some(probe.load(Ordering::SeqCst)))),
        no_carrier_text: false,
    };
    let (up_tx, up_rx) = oneshot::channel();
    let (to_host, _to_host_rx) = mpsc::channel(16);
    let (_from_host_tx, from_host) = mpsc::channel(16);
    let session = tokio::spawn(async move {
        let mut link = Link::new(LinkConfig::default(), [3; 32]);
        let mut hooks = Accept(Some(up_tx));
        let mut host = HostPackets::new(to_host, from_host);
        session::run(
            &mut nas_io,
            &[],
            &mut link,
            &mut hooks,
            &mut host,
            CancellationToken::new(),
            watch,
        )
        .await
    });
    tokio::time::timeout(Duration::from_secs(20), up_rx)
        .await
        .expect("session up")
        .unwrap();
    // The modem drops DCD.
    carrier.store(false, Ordering::SeqCst);
    let t0 = Instant::now();
    let reason = tokio::time::timeout(Duration::from_secs(5), session)
        .await
        .expect("ended")
        .unwrap();
    assert_eq!(reason, DownReason::LostCarrier);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn a_steady_carrier_keeps_the_session() {
    // The same, with DCD up throughout: the session ends only when asked to.
    let (mut nas_io, peer_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(peer(peer_io));
    let polled = Arc::new(tokio::sync::Notify::new());
    let p2 = polled.clone();
    let watch = CarrierWatch {
        dcd: Some(Box::new(move || {
            p2.notify_one();
            Some(true)
        })),
        no_carrier_text: false,
    };
    let (up_tx, up_rx) = oneshot::channel();
    let (to_host, _to_host_rx) = mpsc::channel(16);
    let (_from_host_tx, from_host) = mpsc::channel(16);
    let kill = CancellationToken::new();
    let k2 = kill.clone();
    let session = tokio::spawn(async move {
        let mut link = Link::new(LinkConfig::default(), [3; 32]);
        let mut hooks = Accept(Some(up_tx));
        let mut host = HostPackets::new(to_host, from_host);
        session::run(
            &mut nas_io,
            &[],
            &mut link,
            &mut hooks,
            &mut host,
            k2,
            watch,
        )
        .await
    });
    tokio::time::timeout(Duration::from_secs(20), up_rx)
        .await
        .expect("session up")
        .unwrap();
    // Several DCD polls go by without ending anything.
    for _ in 0..3 {
        polled.notified().await;
    }
    assert!(!session.is_finished());
    kill.cancel();
    let reason = tokio::time::timeout(Duration::from_secs(10), session)
        .await
        .expect("ended")
        .unwrap();
    assert_eq!(reason, DownReason::Admin);
}
