//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, MD5 as in RFC 8760),
//! server side, stateless: a nonce carries its issue time and a keyed MD5 tag, so a
//! [`Challenger`] needs no table of issued nonces. Pure: the time (`now`, whole seconds on a
//! clock that does not jump, e.g. Unix time) and the key (random bytes) are passed in.
//!
//! Without server state, a captured response can be replayed until its nonce expires; `nc`
//! is checked for form only.

use core::fmt;
use md5::{Digest, Md5};

/// The default nonce lifetime in seconds: older nonces get a `stale=true` challenge.
pub const DEFAULT_NONCE_LIFETIME: u64 = 300;

/// A user's secret, as the password lookup returns it. Never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The clear-text password.
    Password(String),
    /// HA1 = MD5(user:realm:password), as 32 hex digits.
    Ha1(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::Ha1(_) => f.write_str("Ha1(<redacted>)"),
        }
    }
}

/// The outcome of [`Challenger::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are right: this user.
    Ok(String),
    /// The credentials are right but the nonce expired: challenge again with `stale=true`.
    Stale,
    /// Unknown user, wrong realm or password, or a nonce this server did not issue.
    Wrong,
    /// Not a Digest header, or missing or malformed parameters.
    Malformed,
}

/// Issues challenges and checks answers for one realm.
#[derive(Clone)]
pub struct Challenger {
    realm: String,
    key: Vec<u8>,
    lifetime: u64,
}

impl fmt::Debug for Challenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenger")
            .field("realm", &self.realm)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Challenger {
    /// A challenger for `realm`, signing nonces with `key` (random bytes, e.g. 32, drawn once
    /// at start-up), nonces valid for `lifetime` seconds.
    pub fn new(realm: &str, key: &[u8], lifetime: u64) -> Self {
        Self {
            realm: realm.to_string(),
            key: key.to_vec(),
            lifetime,
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// A nonce issued at `now`: 16 hex digits of time then 32 of MD5(time:key:realm).
    pub fn nonce(&self, now: u64) -> String {
        let ts = format!("{now:016x}");
        let tag = self.tag(&ts);
        ts + &tag
    }

    fn tag(&self, ts: &str) -> String {
        let mut h = Md5::new();
        h.update(ts.as_bytes());
        h.update(b":");
        h.update(&self.key);
        h.update(b":");
        h.update(self.realm.as_bytes());
        hex(&h.finalize())
    }

    /// The issue time of a nonce this challenger made; `None` if it did not make it.
    fn nonce_time(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 48 || !nonce.is_ascii() {
            return None;
        }
        let (ts, tag) = nonce.split_at(16);
        let t = u64::from_str_radix(ts, 16).ok()?;
        ct_eq(tag.as_bytes(), self.tag(ts).as_bytes()).then_some(t)
    }

    /// The WWW-Authenticate (or Proxy-Authenticate) value for a challenge at `now`.
    pub fn challenge(&self, now: u64, stale: bool) -> String {
        let mut s = format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.realm,
            self.nonce(now)
        );
        if stale {
            s.push_str(", stale=true");
        }
        s
    }

    /// Checks an Authorization (or Proxy-Authorization) value for a request with `method`.
    /// `lookup` gives a user's credential. A right answer on an expired nonce is `Stale`.
    pub fn verify(
        &self,
        now: u64,
        method: &str,
        authorization: &str,
        lookup: impl Fn(&str) -> Option<Credential>,
    ) -> Verdict {
        let Some(p) = parse_authorization(authorization) else {
            return Verdict::Malformed;
        };
        let get = |name: &str| {
            p.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) = (
            get("username"),
            get("realm"),
            get("nonce"),
            get("uri"),
            get("response"),
        ) else {
            return Verdict::Malformed;
        };
        if get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("MD5")) {
            return Verdict::Malformed;
        }
        let qop = match get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return Verdict::Malformed;
                };
                if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Verdict::Malformed;
                }
                Some((nc, cnonce))
            }
            Some(_) => return Verdict::Malformed,
        };
        if response.len() != 32 || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Verdict::Malformed;
        }
        if realm != self.realm {
            return Verdict::Wrong;
        }
        let Some(issued) = self.nonce_time(nonce) else {
            return Verdict::Wrong;
        };
        if issued > now.saturating_add(60) {
            return Verdict::Wrong;
        }
        let ha1 = match lookup(user) {
            None => return Verdict::Wrong,
            Some(Credential::Password(pw)) => ha1(user, realm, &pw),
            Some(Credential::Ha1(h)) => h.to_ascii_lowercase(),
        };
        let expected = match qop {
            Some((nc, cnonce)) => response_auth(&ha1, nonce, nc, cnonce, method, uri),
            None => response_no_qop(&ha1, nonce, method, uri),
        };
        if !ct_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return Verdict::Wrong;
        }
        if now.saturating_sub(issued) > self.lifetime {
            return Verdict::Stale;
        }
        Verdict::Ok(user.to_string())
    }
}

/// HA1 = MD5(user:realm:password), lower-case hex.
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    md5_hex(&[user, realm, password])
}

/// The `qop=auth` response: MD5(HA1:nonce:nc:cnonce:auth:MD5(method:uri)).
pub fn response_auth(
    ha1: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = md5_hex(&[method, uri]);
    md5_hex(&[ha1, nonce, nc, cnonce, "auth", &ha2])
}

/// The RFC 2069 response (no qop): MD5(HA1:nonce:MD5(method:uri)).
pub fn response_no_qop(ha1: &str, nonce: &str, method: &str, uri: &str) -> String {
    let ha2 = md5_hex(&[method, uri]);
    md5_hex(&[ha1, nonce, &ha2])
}

/// Parses `Digest a=b, c="d, e", ...` into (name, unquoted value) pairs.
pub fn parse_authorization(value: &str) -> Option<Vec<(String, String)>> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut out = Vec::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let name = s[..eq].trim();
        if name.is_empty() || !name.bytes().all(crate::sip::message::is_token_byte) {
            return None;
        }
        s = s[eq + 1..].trim_start();
        let val;
        if let Some(q) = s.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            val = v;
            s = &q[end?..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            val = s[..end].trim().to_string();
            s = &s[end..];
        }
        out.push((name.to_string(), val));
        s = s.trim_start();
        match s.strip_prefix(',') {
            Some(r) => s = r.trim_start(),
            None if s.is_empty() => {}
            None => return None,
        }
    }
    Some(out)
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Equality in time independent of where the inputs differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
