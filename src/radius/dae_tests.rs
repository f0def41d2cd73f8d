//! The Dynamic Authorization side: request verification and parsing, signed replies, and
//! the [`DaeServer`] listener on loopback (ACK, NAK 503, silent drop, duplicates).

use super::ErrorCause;
use super::attr;
use super::crypto::{self, MessageAuth};
use super::dae::{self, DaeClient, DaeConfig, DaeKind, DaeRequest, DaeServer, Refusal};
use super::message;
use super::packet::{Builder, Code, Packet};
use super::tests::{nas, pap};
use crate::proto::auth::Secret;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::UdpSocket;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A Disconnect- or CoA-Request as a DAE client would send it.
fn dae_request(code: Code, attrs: &[(u8, &[u8])], with_ma: bool, secret: &[u8]) -> Vec<u8> {
    let mut b = Builder::new(code, 77, [0; 16]);
    if with_ma {
        b.message_authenticator().unwrap();
    }
    for (t, v) in attrs {
        b.attr(*t, v).unwrap();
    }
    let mut out = b.finish();
    crypto::sign_request_md5(&mut out, secret);
    out
}

#[test]
fn dae_requests_are_verified_and_parsed() {
    let d = dae_request(
        Code::DisconnectRequest,
        &[(attr::USER_NAME, b"alice"), (attr::PROXY_STATE, b"ps")],
        true,
        b"k",
    );
    let r = dae::parse_request(&d, b"k", None).unwrap();
    assert_eq!(
        (r.kind.clone(), r.user.as_deref()),
        (DaeKind::Disconnect, Some("alice"))
    );
    assert_eq!(dae::parse_request(&d, b"wrong", None), Err(Refusal::Drop));
    let mut tampered = d.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        dae::parse_request(&tampered, b"k", None),
        Err(Refusal::Drop)
    );

    let c = dae_request(
        Code::CoaRequest,
        &[
            (attr::ACCT_SESSION_ID, b"s1"),
            (attr::FRAMED_IP_ADDRESS, &[10, 0, 0, 5]),
            (attr::SESSION_TIMEOUT, &[0, 0, 0, 60]),
        ],
        false,
        b"k",
    );
    let r = dae::parse_request(&c, b"k", Some("nas1")).unwrap();
    assert_eq!(
        r.kind,
        DaeKind::Coa {
            session_timeout: Some(Duration::from_secs(60)),
            idle_timeout: None
        }
    );
    assert_eq!(r.framed_ip, Some(Ipv4Addr::new(10, 0, 0, 5)));
    assert_eq!(r.acct_session_id.as_deref(), Some("s1"));

    let nak = |attrs: &[(u8, &[u8])]| {
        dae::parse_request(
            &dae_request(Code::DisconnectRequest, attrs, false, b"k"),
            b"k",
            Some("nas1"),
        )
    };
    assert_eq!(
        nak(&[(attr::REPLY_MESSAGE, b"x")]),
        Err(Refusal::Nak(ErrorCause::MissingAttribute))
    );
    assert_eq!(
        nak(&[
            (attr::USER_NAME, b"a"),
            (attr::VENDOR_SPECIFIC, &[0, 0, 0, 9, 1, 3, 0])
        ]),
        Err(Refusal::Nak(ErrorCause::UnsupportedAttribute))
    );
    assert_eq!(
        nak(&[
            (attr::USER_NAME, b"a"),
            (attr::SESSION_TIMEOUT, &[0, 0, 0, 1])
        ]),
        Err(Refusal::Nak(ErrorCause::UnsupportedAttribute))
    );
    assert_eq!(
        nak(&[(attr::FRAMED_IP_ADDRESS, &[1, 2, 3])]),
        Err(Refusal::Nak(ErrorCause::InvalidRequest))
    );
    assert_eq!(
        nak(&[(attr::USER_NAME, b"a"), (attr::NAS_IDENTIFIER, b"nas2")]),
        Err(Refusal::Nak(ErrorCause::NasIdentificationMismatch))
    );
    assert!(nak(&[(attr::USER_NAME, b"a"), (attr::NAS_IDENTIFIER, b"nas1")]).is_ok());
    // An Access-Request is not a DAE request.
    let a = message::encode_access_request(&pap("a", "b"), &nas(), 1, [0; 16], b"k").unwrap();
    assert_eq!(dae::parse_request(&a, b"k", None), Err(Refusal::Drop));
}

#[test]
fn dae_replies_are_signed_and_echo_proxy_state() {
    let d = dae_request(
        Code::DisconnectRequest,
        &[(attr::USER_NAME, b"alice"), (attr::PROXY_STATE, b"ps")],
        true,
        b"k",
    );
    let auth = Packet::new_checked(&d).unwrap().authenticator();
    let ack = dae::encode_reply(&d, None, b"k").unwrap();
    let p = Packet::new_checked(&ack).unwrap();
    assert_eq!((p.code(), p.identifier()), (Code::DisconnectAck, 77));
    assert_eq!(p.first(attr::PROXY_STATE), Some(&b"ps"[..]));
    assert!(crypto::verify_response(&ack, &auth, b"k"));
    assert_eq!(
        crypto::response_message_auth(&ack, &auth, b"k"),
        MessageAuth::Valid
    );
    let nak = dae::encode_reply(&d, Some(ErrorCause::SessionContextNotFound), b"k").unwrap();
    let p = Packet::new_checked(&nak).unwrap();
    assert_eq!(p.code(), Code::DisconnectNak);
    assert_eq!(p.first(attr::ERROR_CAUSE), Some(&503u32.to_be_bytes()[..]));
    let c = dae_request(Code::CoaRequest, &[(attr::USER_NAME, b"a")], false, b"k");
    let p2 = dae::encode_reply(&c, None, b"k").unwrap();
    assert_eq!(Packet::new_checked(&p2).unwrap().code(), Code::CoaAck);
}

/// A DAE request as a client would send it.
fn dae_packet(code: Code, id: u8, attrs: &[(u8, &[u8])], secret: &[u8]) -> Vec<u8> {
    let mut b = Builder::new(code, id, [0; 16]);
    for (t, v) in attrs {
        b.attr(*t, v).unwrap();
    }
    let mut out = b.finish();
    crypto::sign_request_md5(&mut out, secret);
    out
}

async fn ask(sock: &UdpSocket, to: SocketAddr, pkt: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(pkt, to).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(buf[..n].to_vec())
}

#[tokio::test]
async fn dae_server_acks_naks_drops_and_deduplicates() {
    let mut cfg = DaeConfig::new(vec![DaeClient {
        addr: LO,
        secret: Secret::new("k"),
    }]);
    cfg.listen = (LO, 0).into();
    let srv = Arc::new(DaeServer::bind(cfg).await.unwrap());
    let to = srv.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = calls.clone();
    let handler = Arc::new(move |req: DaeRequest| {
        calls2.fetch_add(1, Ordering::SeqCst);
        async move { usize::from(req.user.as_deref() == Some("alice")) }
    });
    let s2 = srv.clone();
    let task = tokio::spawn(async move { s2.run(handler).await });
    let sock = UdpSocket::bind((LO, 0)).await.unwrap();

    let d = dae_packet(
        Code::DisconnectRequest,
        1,
        &[(attr::USER_NAME, b"alice")],
        b"k",
    );
    let ack = ask(&sock, to, &d).await.expect("an answer");
    assert_eq!(
        Packet::new_checked(&ack).unwrap().code(),
        Code::DisconnectAck
    );
    assert!(crypto::verify_response(
        &ack,
        &Packet::new_checked(&d).unwrap().authenticator(),
        b"k"
    ));
    // The same request again: the same reply, and the handler is not called twice.
    assert_eq!(ask(&sock, to, &d).await.as_deref(), Some(&ack[..]));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let c = dae_packet(Code::CoaRequest, 2, &[(attr::USER_NAME, b"bob")], b"k");
    let nak = ask(&sock, to, &c).await.expect("an answer");
    let p = Packet::new_checked(&nak).unwrap();
    assert_eq!(
        (p.code(), p.first(attr::ERROR_CAUSE)),
        (Code::CoaNak, Some(&503u32.to_be_bytes()[..]))
    );

    let wrong = dae_packet(
        Code::DisconnectRequest,
        3,
        &[(attr::USER_NAME, b"alice")],
        b"other",
    );
    assert_eq!(ask(&sock, to, &wrong).await, None);
    let st = srv.stats();
    assert_eq!((st.acks, st.naks, st.dropped, st.duplicates), (1, 1, 1, 1));
    task.abort();
}
