//! RADIUS cryptography: User-Password hiding (RFC 2865 section 5.2), the Response and
//! Accounting/DAE Request Authenticators (RFC 2865 section 3, RFC 2866 section 3, RFC 5176
//! section 2.3) and the Message-Authenticator (HMAC-MD5, RFC 3579 section 3.2).
//!
//! Signing works on a finished packet from [`super::packet::Builder`]; verification works on
//! raw received bytes, never on a re-encoding.

use super::attr::MESSAGE_AUTHENTICATOR;
use super::packet::{HEADER_LEN, Packet};
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};

/// The longest password RFC 2865 allows in User-Password.
pub const MAX_PASSWORD_LEN: usize = 128;

/// Hides a password for User-Password: padded with zeros to a multiple of 16 bytes (at most
/// 128), each block XORed with MD5(secret || previous cipher block), starting with the
/// request authenticator. A longer password is cut at 128 bytes.
pub fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let password = &password[..password.len().min(MAX_PASSWORD_LEN)];
    let blocks = password.len().div_ceil(16).max(1);
    let mut out = vec![0u8; blocks * 16];
    out[..password.len()].copy_from_slice(password);
    let mut prev: [u8; 16] = *authenticator;
    for block in out.chunks_exact_mut(16) {
        let b: [u8; 16] = Md5::new()
            .chain_update(secret)
            .chain_update(prev)
            .finalize()
            .into();
        for (c, k) in block.iter_mut().zip(b) {
            *c ^= k;
        }
        prev.copy_from_slice(block);
    }
    out
}

/// Reverses [`hide_password`] (trailing zero padding removed). `None` when the value is not a
/// whole number of 16-byte blocks between 16 and 128 bytes.
pub fn unhide_password(hidden: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Option<Vec<u8>> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > MAX_PASSWORD_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(hidden.len());
    let mut prev: &[u8] = authenticator;
    for block in hidden.chunks_exact(16) {
        let b: [u8; 16] = Md5::new()
            .chain_update(secret)
            .chain_update(prev)
            .finalize()
            .into();
        out.extend(block.iter().zip(b).map(|(c, k)| c ^ k));
        prev = block;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Some(out)
}

/// MD5(Code+Identifier+Length+`auth`+Attributes+secret) over `packet` with its
/// Authenticator field replaced by `auth`.
fn md5_with_auth(packet: &[u8], auth: &[u8; 16], secret: &[u8]) -> [u8; 16] {
    let Some((head, attrs)) = packet.get(..4).zip(packet.get(HEADER_LEN..)) else {
        return [0; 16];
    };
    Md5::new()
        .chain_update(head)
        .chain_update(auth)
        .chain_update(attrs)
        .chain_update(secret)
        .finalize()
        .into()
}

/// HMAC-MD5 over `packet` with its Authenticator field replaced by `auth` and the value of
/// the Message-Authenticator at `ma_offset` zeroed.
fn hmac_with_auth(packet: &[u8], auth: &[u8; 16], ma_offset: usize, secret: &[u8]) -> [u8; 16] {
    let mut copy = packet.to_vec();
    if let Some(a) = copy.get_mut(4..HEADER_LEN) {
        a.copy_from_slice(auth);
    }
    if let Some(v) = copy.get_mut(ma_offset..ma_offset + 16) {
        v.fill(0);
    }
    // HMAC takes keys of any length; should that ever fail, the all-zero result verifies
    // nothing that was signed properly.
    let Ok(mut mac) = <Hmac<Md5> as KeyInit>::new_from_slice(secret) else {
        return [0; 16];
    };
    mac.update(&copy);
    mac.finalize().into_bytes().into()
}

/// Where the value of the (first) Message-Authenticator starts, if the packet has one of
/// the right length. `Err(())` when it has one of the wrong length.
fn message_authenticator_offset(packet: &[u8]) -> Result<Option<usize>, ()> {
    let Ok(p) = Packet::new_checked(packet) else {
        return Err(());
    };
    match p.attributes().find(|a| a.ty == MESSAGE_AUTHENTICATOR) {
        None => Ok(None),
        Some(a) if a.value.len() == 16 => Ok(Some(a.offset)),
        Some(_) => Err(()),
    }
}

fn fill_message_authenticator(packet: &mut [u8], auth_for_hmac: &[u8; 16], secret: &[u8]) {
    if let Ok(Some(off)) = message_authenticator_offset(packet) {
        let mac = hmac_with_auth(packet, auth_for_hmac, off, secret);
        packet[off..off + 16].copy_from_slice(&mac);
    }
}

/// Signs an Access-Request (or Status-Server) whose Authenticator field already holds the
/// random Request Authenticator: fills in its Message-Authenticator, if it has one.
pub fn sign_access_request(packet: &mut [u8], secret: &[u8]) {
    let auth = authenticator_of(packet);
    fill_message_authenticator(packet, &auth, secret);
}

/// Signs an Accounting-, Disconnect- or CoA-Request: the Message-Authenticator (if any) is
/// computed with a zero Authenticator, then the Request Authenticator is
/// MD5(Code+Id+Length+16 zeros+Attributes+secret) (RFC 2866 section 3, RFC 5176 section 2.3).
pub fn sign_request_md5(packet: &mut [u8], secret: &[u8]) {
    fill_message_authenticator(packet, &[0; 16], secret);
    let auth = md5_with_auth(packet, &[0; 16], secret);
    if let Some(a) = packet.get_mut(4..HEADER_LEN) {
        a.copy_from_slice(&auth);
    }
}

/// Signs a response to a request whose authenticator was `request_auth`: the
/// Message-Authenticator (if any) with the request's authenticator, then the Response
/// Authenticator.
pub fn sign_response(packet: &mut [u8], request_auth: &[u8; 16], secret: &[u8]) {
    fill_message_authenticator(packet, request_auth, secret);
    let auth = md5_with_auth(packet, request_auth, secret);
    if let Some(a) = packet.get_mut(4..HEADER_LEN) {
        a.copy_from_slice(&auth);
    }
}

fn authenticator_of(packet: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    if let Some(src) = packet.get(4..HEADER_LEN) {
        a.copy_from_slice(src);
    }
    a
}

/// Constant-time comparison of equal-length byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a received packet's Message-Authenticator says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAuth {
    /// Present and correct.
    Valid,
    /// Absent.
    Missing,
    /// Present but wrong (or of the wrong length).
    Invalid,
}

fn check_message_authenticator(packet: &[u8], auth: &[u8; 16], secret: &[u8]) -> MessageAuth {
    match message_authenticator_offset(packet) {
        Err(()) => MessageAuth::Invalid,
        Ok(None) => MessageAuth::Missing,
        Ok(Some(off)) => {
            let mac = hmac_with_auth(packet, auth, off, secret);
            if ct_eq(&mac, &packet[off..off + 16]) {
                MessageAuth::Valid
            } else {
                MessageAuth::Invalid
            }
        }
    }
}

/// Checks a response's Response Authenticator against the request's authenticator.
pub fn verify_response(packet: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> bool {
    packet.len() >= HEADER_LEN
        && ct_eq(
            &md5_with_auth(packet, request_auth, secret),
            &packet[4..HEADER_LEN],
        )
}

/// Checks a response's Message-Authenticator (computed with the request's authenticator).
pub fn response_message_auth(packet: &[u8], request_auth: &[u8; 16], secret: &[u8]) -> MessageAuth {
    check_message_authenticator(packet, request_auth, secret)
}

/// Checks the Request Authenticator of an Accounting-, Disconnect- or CoA-Request.
pub fn verify_request_md5(packet: &[u8], secret: &[u8]) -> bool {
    packet.len() >= HEADER_LEN
        && ct_eq(
            &md5_with_auth(packet, &[0; 16], secret),
            &packet[4..HEADER_LEN],
        )
}

/// Checks the Message-Authenticator of an Accounting-, Disconnect- or CoA-Request
/// (computed with a zero Authenticator).
pub fn request_md5_message_auth(packet: &[u8], secret: &[u8]) -> MessageAuth {
    check_message_authenticator(packet, &[0; 16], secret)
}

/// Checks the Message-Authenticator of an Access-Request (computed with its own
/// Request Authenticator).
pub fn access_request_message_auth(packet: &[u8], secret: &[u8]) -> MessageAuth {
    let auth = authenticator_of(packet);
    check_message_authenticator(packet, &auth, secret)
}
