//! Codec, crypto and DAE parser tests: RFC vectors, round trips, tampering, and a property
//! test that no input makes the decoders panic.

use super::attr;
use super::crypto::{self, MessageAuth};
use super::dae;
use super::message::{
    self, AccessReply, AccessRequest, AccountingRequest, Credentials, NasInfo, ReplyError,
};
use super::packet::{Builder, Code, Packet, ParseError};
use super::{AcctStatus, ErrorCause, TerminateCause};
use crate::proto::auth::{AuthRequest, Credentials as PppCredentials, Secret};
use core::net::Ipv4Addr;
use core::time::Duration;
use md5::{Digest, Md5};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const RFC_SECRET: &[u8] = b"xyzzy5461";
// RFC 2865 section 7.1: nemo / arctangent, and the server's Access-Accept.
const RFC_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a
    01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee
    04 06 c0 a8 01 10 05 06 00 00 00 03";
const RFC_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
    06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";

#[test]
fn rfc2865_example_parses_and_hides_the_password() {
    let raw = hex(RFC_REQUEST);
    let p = Packet::new_checked(&raw).unwrap();
    assert_eq!(p.code(), Code::AccessRequest);
    assert_eq!(p.first(attr::USER_NAME), Some(&b"nemo"[..]));
    let types: Vec<u8> = p.attributes().map(|a| a.ty).collect();
    assert_eq!(types, [1, 2, 4, 5]);
    let auth = p.authenticator();
    let hidden = crypto::hide_password(b"arctangent", RFC_SECRET, &auth);
    assert_eq!(Some(&hidden[..]), p.first(attr::USER_PASSWORD));
    let clear = crypto::unhide_password(&hidden, RFC_SECRET, &auth).unwrap();
    assert_eq!(clear, b"arctangent");
}

#[test]
fn rfc2865_example_response_authenticator() {
    let req = hex(RFC_REQUEST);
    let acc = hex(RFC_ACCEPT);
    let auth = Packet::new_checked(&req).unwrap().authenticator();
    assert!(crypto::verify_response(&acc, &auth, RFC_SECRET));
    assert!(!crypto::verify_response(&acc, &auth, b"wrong"));
    let mut tampered = acc.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(!crypto::verify_response(&tampered, &auth, RFC_SECRET));
    // Without a Message-Authenticator, the Access-Accept is refused (BlastRADIUS).
    assert_eq!(
        message::decode_access_reply(&acc, &req, RFC_SECRET),
        Err(ReplyError::MissingMessageAuthenticator)
    );
}

#[test]
fn multi_block_password_chains_cipher_blocks() {
    let auth = [7u8; 16];
    let pw = b"a password longer than two sixteen-byte blocks";
    let hidden = crypto::hide_password(pw, b"s3cret", &auth);
    assert_eq!(hidden.len(), 48);
    // Block 2 = P2 xor MD5(secret || C1) (RFC 2865 section 5.2).
    let b2: [u8; 16] = Md5::new()
        .chain_update(b"s3cret")
        .chain_update(&hidden[..16])
        .finalize()
        .into();
    let p2: Vec<u8> = hidden[16..32].iter().zip(b2).map(|(c, k)| c ^ k).collect();
    assert_eq!(p2, &pw[16..32]);
    assert_eq!(
        crypto::unhide_password(&hidden, b"s3cret", &auth).unwrap(),
        pw
    );
    // Empty passwords take one block; long ones are cut at 128.
    assert_eq!(crypto::hide_password(b"", b"s", &auth).len(), 16);
    assert_eq!(crypto::hide_password(&[b'x'; 200], b"s", &auth).len(), 128);
    assert_eq!(crypto::unhide_password(&[0; 15], b"s", &auth), None);
}

#[test]
fn checked_view_rejects_bad_lengths_and_ignores_padding() {
    assert_eq!(Packet::new_checked(&[1; 19]), Err(ParseError::Truncated));
    let mut raw = hex(RFC_ACCEPT);
    raw.extend_from_slice(&[0xee; 5]);
    assert_eq!(Packet::new_checked(&raw).unwrap().as_bytes().len(), 0x26);
    raw[3] = 19;
    assert_eq!(Packet::new_checked(&raw), Err(ParseError::BadLength));
    raw[3] = 0x26;
    raw[21] = 1; // first attribute's length below 2
    assert_eq!(Packet::new_checked(&raw), Err(ParseError::BadAttribute));
    raw[21] = 40; // runs past the end
    assert_eq!(Packet::new_checked(&raw), Err(ParseError::BadAttribute));
    raw[3] = 0x30; // Length beyond the buffer
    assert_eq!(
        Packet::new_checked(&raw[..0x26]),
        Err(ParseError::Truncated)
    );
}

#[test]
fn builder_limits_and_vendor_passthrough() {
    let mut b = Builder::new(Code::AccessAccept, 9, [0; 16]);
    assert!(b.attr(1, &[0; 254]).is_err());
    b.vendor(9, &[1, 4, 0xab, 0xcd]).unwrap();
    let raw = b.finish();
    let p = Packet::new_checked(&raw).unwrap();
    let a = p.attributes().next().unwrap();
    assert_eq!(a.vendor(), Some((9, &[1, 4, 0xab, 0xcd][..])));
    let mut big = Builder::new(Code::AccessAccept, 9, [0; 16]);
    let mut err = None;
    for _ in 0..20 {
        if let Err(e) = big.attr(25, &[0; 253]) {
            err = Some(e);
        }
    }
    assert_eq!(err, Some(super::packet::BuildError::PacketTooLong));
}

pub(super) fn nas() -> NasInfo {
    NasInfo {
        nas_identifier: "nasd-test".into(),
        nas_ip: Some(Ipv4Addr::new(192, 0, 2, 1)),
    }
}

pub(super) fn pap(user: &str, pw: &str) -> AccessRequest {
    let ppp = AuthRequest {
        user: user.into(),
        credentials: PppCredentials::Pap {
            password: Secret::new(pw),
        },
    };
    AccessRequest::from_auth(&ppp, 3, "ttyS3").unwrap()
}

#[test]
fn access_request_layout_and_message_authenticator() {
    let auth = [0x42; 16];
    let raw =
        message::encode_access_request(&pap("alice", "pw"), &nas(), 17, auth, b"sec").unwrap();
    let p = Packet::new_checked(&raw).unwrap();
    assert_eq!(
        (p.code(), p.identifier(), p.authenticator()),
        (Code::AccessRequest, 17, auth)
    );
    let types: Vec<u8> = p.attributes().map(|a| a.ty).collect();
    assert_eq!(
        types[0],
        attr::MESSAGE_AUTHENTICATOR,
        "Message-Authenticator first"
    );
    for t in [
        attr::USER_NAME,
        attr::USER_PASSWORD,
        attr::NAS_IDENTIFIER,
        attr::NAS_IP_ADDRESS,
        attr::NAS_PORT_ID,
    ] {
        assert!(types.contains(&t), "attribute {t} missing");
    }
    assert_eq!(p.first(attr::NAS_PORT_TYPE), Some(&[0, 0, 0, 0][..]));
    assert_eq!(p.first(attr::SERVICE_TYPE), Some(&[0, 0, 0, 2][..]));
    assert_eq!(p.first(attr::FRAMED_PROTOCOL), Some(&[0, 0, 0, 1][..]));
    assert_eq!(
        crypto::access_request_message_auth(&raw, b"sec"),
        MessageAuth::Valid
    );
    assert_eq!(
        crypto::access_request_message_auth(&raw, b"other"),
        MessageAuth::Invalid
    );
    // The password never appears in clear, nor in Debug output.
    assert!(!raw.windows(2).any(|w| w == b"pw"));
    let dbg = format!("{:?}", pap("alice", "hunter2"));
    assert!(!dbg.contains("hunter2"), "{dbg}");
}

#[test]
fn chap_request_carries_ident_response_and_challenge() {
    let ppp = AuthRequest {
        user: "bob".into(),
        credentials: PppCredentials::ChapMd5 {
            id: 5,
            challenge: vec![9; 24],
            response: Secret::new([3u8; 16]),
        },
    };
    let req = AccessRequest::from_auth(&ppp, 0, "").unwrap();
    let raw = message::encode_access_request(&req, &nas(), 1, [1; 16], b"s").unwrap();
    let p = Packet::new_checked(&raw).unwrap();
    let mut want = vec![5u8];
    want.extend_from_slice(&[3; 16]);
    assert_eq!(p.first(attr::CHAP_PASSWORD), Some(&want[..]));
    assert_eq!(p.first(attr::CHAP_CHALLENGE), Some(&[9; 24][..]));
    assert_eq!(p.first(attr::NAS_PORT_ID), None, "empty port name omitted");
    let none = AuthRequest {
        user: "x".into(),
        credentials: PppCredentials::None,
    };
    assert_eq!(AccessRequest::from_auth(&none, 0, ""), None);
}

/// A signed response to `request` built by hand, as a server would.
fn respond(
    request: &[u8],
    code: Code,
    attrs: &[(u8, &[u8])],
    with_ma: bool,
    secret: &[u8],
) -> Vec<u8> {
    let req = Packet::new_checked(request).unwrap();
    let mut b = Builder::new(code, req.identifier(), [0; 16]);
    if with_ma {
        b.message_authenticator().unwrap();
    }
    for (t, v) in attrs {
        b.attr(*t, v).unwrap();
    }
    let mut out = b.finish();
    crypto::sign_response(&mut out, &req.authenticator(), secret);
    out
}

#[test]
fn access_accept_is_decoded_only_with_a_valid_message_authenticator() {
    let req =
        message::encode_access_request(&pap("alice", "pw"), &nas(), 3, [5; 16], b"sec").unwrap();
    let attrs: &[(u8, &[u8])] = &[
        (attr::FRAMED_IP_ADDRESS, &[10, 9, 0, 7]),
        (attr::SESSION_TIMEOUT, &[0, 0, 2, 0x58]),
        (attr::IDLE_TIMEOUT, &[0, 0, 0, 120]),
        (attr::CLASS, b"gold"),
        (attr::REPLY_MESSAGE, b"Hello"),
        (attr::VENDOR_SPECIFIC, &[0, 0, 0, 9, 1, 3, 7]),
    ];
    let ok = respond(&req, Code::AccessAccept, attrs, true, b"sec");
    assert_eq!(
        message::decode_access_reply(&ok, &req, b"sec"),
        Ok(AccessReply::Accept {
            framed_ip: Some(Ipv4Addr::new(10, 9, 0, 7)),
            session_timeout: Some(Duration::from_secs(600)),
            idle_timeout: Some(Duration::from_secs(120)),
            class: vec![b"gold".to_vec()],
            reply_message: Some("Hello".into()),
            vendor_specific: vec![(9, vec![1, 3, 7])],
        })
    );
    let no_ma = respond(&req, Code::AccessAccept, attrs, false, b"sec");
    assert_eq!(
        message::decode_access_reply(&no_ma, &req, b"sec"),
        Err(ReplyError::MissingMessageAuthenticator)
    );
    let wrong = respond(&req, Code::AccessAccept, attrs, true, b"other");
    assert_eq!(
        message::decode_access_reply(&wrong, &req, b"sec"),
        Err(ReplyError::BadAuthenticator)
    );
    // A correct Response Authenticator over a wrong Message-Authenticator.
    let mut bad_ma = ok.clone();
    bad_ma[22] ^= 0xff;
    let auth = Packet::new_checked(&req).unwrap().authenticator();
    let mut resigned = bad_ma.clone();
    resigned[4..20].copy_from_slice(&auth);
    let md: [u8; 16] = Md5::new()
        .chain_update(&resigned)
        .chain_update(b"sec")
        .finalize()
        .into();
    bad_ma[4..20].copy_from_slice(&md);
    assert!(crypto::verify_response(&bad_ma, &auth, b"sec"));
    assert_eq!(
        message::decode_access_reply(&bad_ma, &req, b"sec"),
        Err(ReplyError::BadMessageAuthenticator)
    );
    let reject = respond(
        &req,
        Code::AccessReject,
        &[(attr::REPLY_MESSAGE, b"no")],
        true,
        b"sec",
    );
    assert_eq!(
        message::decode_access_reply(&reject, &req, b"sec"),
        Ok(AccessReply::Reject {
            reply_message: Some("no".into())
        })
    );
    let mut other_id = respond(&req, Code::AccessReject, &[], true, b"sec");
    other_id[1] ^= 1;
    assert_eq!(
        message::decode_access_reply(&other_id, &req, b"sec"),
        Err(ReplyError::WrongId)
    );
    let acct = respond(&req, Code::AccountingResponse, &[], true, b"sec");
    assert_eq!(
        message::decode_access_reply(&acct, &req, b"sec"),
        Err(ReplyError::UnexpectedCode(5))
    );
}

#[test]
fn accounting_request_authenticator_and_gigawords() {
    let mut r = AccountingRequest::new(AcctStatus::Stop, "sess-1");
    r.user = "alice".into();
    r.input_octets = 5 * (1 << 32) + 17;
    r.output_octets = 42;
    r.terminate_cause = Some(TerminateCause::LostCarrier);
    r.class = vec![b"gold".to_vec()];
    let raw = message::encode_accounting_request(&r, &nas(), 8, b"sec").unwrap();
    assert!(crypto::verify_request_md5(&raw, b"sec"));
    assert!(!crypto::verify_request_md5(&raw, b"other"));
    assert_eq!(
        crypto::request_md5_message_auth(&raw, b"sec"),
        MessageAuth::Valid
    );
    // RFC 2866 section 3: MD5(Code+Id+Length+16 zeros+Attributes+Secret), computed by hand.
    let mut z = raw.clone();
    z[4..20].fill(0);
    let want: [u8; 16] = Md5::new()
        .chain_update(&z)
        .chain_update(b"sec")
        .finalize()
        .into();
    assert_eq!(&raw[4..20], &want);
    let p = Packet::new_checked(&raw).unwrap();
    assert_eq!(p.first(attr::ACCT_INPUT_GIGAWORDS), Some(&[0, 0, 0, 5][..]));
    assert_eq!(p.first(attr::ACCT_INPUT_OCTETS), Some(&[0, 0, 0, 17][..]));
    assert_eq!(
        p.first(attr::ACCT_OUTPUT_GIGAWORDS),
        Some(&[0, 0, 0, 0][..])
    );
    assert_eq!(p.first(attr::ACCT_TERMINATE_CAUSE), Some(&[0, 0, 0, 2][..]));
    assert_eq!(p.first(attr::CLASS), Some(&b"gold"[..]));
    let resp = respond(&raw, Code::AccountingResponse, &[], false, b"sec");
    assert_eq!(
        message::check_accounting_response(&resp, &raw, b"sec"),
        Ok(())
    );
    assert_eq!(
        message::check_accounting_response(&resp, &raw, b"x"),
        Err(ReplyError::BadAuthenticator)
    );
    // A changed Acct-Delay-Time changes the authenticator.
    r.delay_time = 3;
    let again = message::encode_accounting_request(&r, &nas(), 8, b"sec").unwrap();
    assert_ne!(&again[4..20], &raw[4..20]);
}

#[test]
fn credentials_debug_hides_the_password() {
    let c = Credentials::Pap {
        password: Secret::new("topsecret"),
    };
    assert!(!format!("{c:?}").contains("topsecret"));
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(p) = Packet::new_checked(&bytes) {
            let n: usize = p.attributes().map(|a| a.value.len() + 2).sum();
            prop_assert_eq!(n + 20, p.as_bytes().len());
            let _ = format!("{p:?}");
        }
        let req = message::encode_access_request(&pap("a", "b"), &nas(), bytes.get(1).copied().unwrap_or(0), [0; 16], b"k").unwrap();
        let _ = message::decode_access_reply(&bytes, &req, b"k");
        let _ = message::check_accounting_response(&bytes, &req, b"k");
        let _ = dae::parse_request(&bytes, b"k", Some("n"));
        let _ = dae::encode_reply(&bytes, Some(ErrorCause::InvalidRequest), b"k");
        let _ = crypto::unhide_password(&bytes, b"k", &[0; 16]);
        let _ = crypto::access_request_message_auth(&bytes, b"k");
    }

    #[test]
    fn well_formed_packets_with_random_attributes_parse(attrs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..30)) {
        let mut b = Builder::new(Code::AccessAccept, 1, [0; 16]);
        for (t, v) in &attrs {
            b.attr(*t, v).unwrap();
        }
        let raw = b.finish();
        let p = Packet::new_checked(&raw).unwrap();
        let got: Vec<(u8, Vec<u8>)> = p.attributes().map(|a| (a.ty, a.value.to_vec())).collect();
        prop_assert_eq!(got, attrs);
    }

    #[test]
    fn password_hiding_round_trips(pw in proptest::collection::vec(1u8..=255, 0..=128), secret in proptest::collection::vec(any::<u8>(), 1..20), auth in any::<[u8; 16]>()) {
        let hidden = crypto::hide_password(&pw, &secret, &auth);
        prop_assert_eq!(crypto::unhide_password(&hidden, &secret, &auth).unwrap(), pw);
    }
}
