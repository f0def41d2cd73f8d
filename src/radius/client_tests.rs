//! [`RadiusClient`] against tiny fake servers on loopback: verdicts,
//! refusal of responses without a valid Message-Authenticator, retransmission, fail-over,
//! more than 256 concurrent requests.

use super::AcctStatus;
use super::attr;
use super::client::{RadiusClient, RadiusClientConfig, RadiusError, ServerConfig};
use super::crypto;
use super::message::{AccessReply, AccessRequest, AccountingRequest, Credentials};
use super::packet::{Builder, Code, Packet};
use crate::proto::auth::Secret;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A fake server: answers each packet with `answer(packet, nth)` and reports what it got.
struct Fake {
    addr: SocketAddr,
    got: mpsc::UnboundedReceiver<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake(answer: impl Fn(&[u8], usize) -> Option<Vec<u8>> + Send + 'static) -> Fake {
    let sock = UdpSocket::bind((LO, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let (tx, got) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while let Ok((len, from)) = sock.recv_from(&mut buf).await {
            let _ = tx.send(buf[..len].to_vec());
            if let Some(r) = answer(&buf[..len], n) {
                let _ = sock.send_to(&r, from).await;
            }
            n += 1;
        }
    });
    Fake { addr, got, task }
}

/// A response to `req` signed with `secret`, with or without a Message-Authenticator.
fn reply(req: &[u8], code: Code, attrs: &[(u8, &[u8])], with_ma: bool, secret: &[u8]) -> Vec<u8> {
    let p = Packet::new_checked(req).unwrap();
    let mut b = Builder::new(code, p.identifier(), [0; 16]);
    if with_ma {
        b.message_authenticator().unwrap();
    }
    for (t, v) in attrs {
        b.attr(*t, v).unwrap();
    }
    let mut out = b.finish();
    crypto::sign_response(&mut out, &p.authenticator(), secret);
    out
}

fn config(ports: &[u16], timeout_ms: u64, retries: u32) -> RadiusClientConfig {
    let servers = ports
        .iter()
        .map(|&p| ServerConfig {
            addr: LO,
            auth_port: p,
            acct_port: p,
            secret: Secret::new("sec"),
        })
        .collect();
    let mut c = RadiusClientConfig::new(servers, "nasd-test");
    c.timeout = Duration::from_millis(timeout_ms);
    c.retries = retries;
    c
}

fn pap() -> AccessRequest {
    AccessRequest {
        user: "alice".into(),
        credentials: Credentials::Pap {
            password: Secret::new("pw"),
        },
        nas_port: 1,
        port_name: "ttyS1".into(),
        calling_station_id: Some("5551234".into()),
        called_station_id: None,
        connect_info: Some("33600".into()),
        acct_session_id: Some("s1".into()),
    }
}

/// A port with nothing listening on it.
async fn closed_port() -> u16 {
    UdpSocket::bind((LO, 0))
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn accept_with_message_authenticator_is_taken() {
    let f = fake(|req, _| {
        Some(reply(
            req,
            Code::AccessAccept,
            &[(attr::FRAMED_IP_ADDRESS, &[10, 1, 2, 3])],
            true,
            b"sec",
        ))
    })
    .await;
    let c = RadiusClient::new(config(&[f.addr.port()], 500, 0))
        .await
        .unwrap();
    match c.authenticate(&pap()).await.unwrap() {
        AccessReply::Accept { framed_ip, .. } => {
            assert_eq!(framed_ip, Some(Ipv4Addr::new(10, 1, 2, 3)))
        }
        r => panic!("{r:?}"),
    }
}

#[tokio::test]
async fn responses_without_or_with_a_bad_message_authenticator_are_refused() {
    for variant in 0..3 {
        let f = fake(move |req, _| {
            Some(match variant {
                0 => reply(req, Code::AccessAccept, &[], false, b"sec"),
                1 => {
                    let mut r = reply(req, Code::AccessAccept, &[], true, b"sec");
                    r[25] ^= 1; // corrupt the Message-Authenticator
                    r
                }
                _ => reply(req, Code::AccessAccept, &[], true, b"wrong-secret"),
            })
        })
        .await;
        let c = RadiusClient::new(config(&[f.addr.port()], 1000, 0))
            .await
            .unwrap();
        let r = c.authenticate(&pap()).await;
        assert!(
            matches!(r, Err(RadiusError::NoResponse)),
            "variant {variant}: {r:?}"
        );
        assert_eq!(c.stats().dropped_responses, 1, "variant {variant}");
    }
}

#[tokio::test]
async fn retransmits_the_identical_packet_then_takes_the_answer() {
    let mut f =
        fake(|req, n| (n == 2).then(|| reply(req, Code::AccessReject, &[], true, b"sec"))).await;
    let c = RadiusClient::new(config(&[f.addr.port()], 150, 3))
        .await
        .unwrap();
    assert_eq!(
        c.authenticate(&pap()).await.unwrap(),
        AccessReply::Reject {
            reply_message: None
        }
    );
    let (a, b, d) = (
        f.got.recv().await.unwrap(),
        f.got.recv().await.unwrap(),
        f.got.recv().await.unwrap(),
    );
    assert!(
        a == b && b == d,
        "retransmissions must repeat id and authenticator"
    );
    assert_eq!(c.stats().retransmits, 2);
}

#[tokio::test]
async fn fails_over_to_the_next_server_and_remembers_the_dead_one() {
    let dead = closed_port().await;
    let mut f = fake(|req, _| Some(reply(req, Code::AccountingResponse, &[], false, b"sec"))).await;
    let c = RadiusClient::new(config(&[dead, f.addr.port()], 300, 1))
        .await
        .unwrap();
    let mut rec = AccountingRequest::new(AcctStatus::Start, "s1");
    rec.delay_time = 1;
    c.account(&rec).await.unwrap();
    assert_eq!(c.stats().failovers, 1);
    let sent = f.got.recv().await.unwrap();
    let p = Packet::new_checked(&sent).unwrap();
    assert!(crypto::verify_request_md5(&sent, b"sec"));
    assert!(p.first(attr::ACCT_DELAY_TIME).is_some());
    // The dead server is now skipped: the next record goes straight to the live one.
    c.account(&rec).await.unwrap();
    assert_eq!(c.stats().failovers, 1);
    assert_eq!(c.stats().retransmits, 1);
}

#[tokio::test]
async fn more_than_256_concurrent_requests_all_complete() {
    let f = fake(|req, _| Some(reply(req, Code::AccessReject, &[], true, b"sec"))).await;
    let c = Arc::new(
        RadiusClient::new(config(&[f.addr.port()], 2000, 3))
            .await
            .unwrap(),
    );
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.authenticate(&pap()).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Ok(AccessReply::Reject { .. })));
    }
    assert_eq!(c.stats().dropped_responses, 0);
}
