//! The authenticator side of PAP (RFC 1334) and CHAP with MD5 (RFC 1994).
//!
//! The engine collects the peer's credentials and hands them out as an [`AuthRequest`]; the
//! driver decides (secrets file, PAM, RADIUS: it may take seconds) and answers with
//! [`AuthResult`]. The engine never learns how the verdict was reached. Passwords and CHAP
//! responses are wrapped in [`Secret`], whose `Debug` shows nothing.

use super::fsm::Sink;
use super::lcp::AuthProto;
use super::rng::Rng;
use super::wire::cp::Packet;
use super::wire::protocol;
use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;
use md5::{Digest, Md5};
use std::time::Instant;

/// Bytes that must never reach a log: `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }
    /// The secret bytes, for the one place that must compare or hash them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The credentials a peer presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No authentication protocol was negotiated.
    None,
    /// PAP: the password in clear.
    Pap {
        /// The password.
        password: Secret,
    },
    /// CHAP-MD5: the verifier needs the identifier and challenge to check the response.
    ChapMd5 {
        /// The identifier of the challenge.
        id: u8,
        /// The challenge we sent.
        challenge: Vec<u8>,
        /// The peer's response value.
        response: Secret,
    },
}

/// A request for a verdict on the peer's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The peer's name (PAP Peer-ID or CHAP Name), as received.
    pub user: String,
    /// What the peer presented.
    pub credentials: Credentials,
}

impl AuthRequest {
    /// The protocol the credentials came by.
    pub fn proto(&self) -> Option<AuthProto> {
        match self.credentials {
            Credentials::None => None,
            Credentials::Pap { .. } => Some(AuthProto::Pap),
            Credentials::ChapMd5 { .. } => Some(AuthProto::ChapMd5),
        }
    }

    /// Checks the credentials against a known plaintext secret: PAP compares it, CHAP
    /// computes the expected MD5 response. Comparison time does not depend on where the
    /// values differ.
    pub fn verify_secret(&self, secret: &[u8]) -> bool {
        match &self.credentials {
            Credentials::None => true,
            // pppd's `""` secret means "check the system password" (its `login` option): it
            // never lets anyone in by itself, not even with an empty password.
            _ if secret.is_empty() => false,
            Credentials::Pap { password } => ct_eq(password.expose(), secret),
            Credentials::ChapMd5 {
                id,
                challenge,
                response,
            } => ct_eq(&chap_md5(*id, secret, challenge), response.expose()),
        }
    }
}

/// The CHAP-MD5 response value: MD5(identifier || secret || challenge) (RFC 1994 section 2).
pub fn chap_md5(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([id]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the session gets when the credentials are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The address the peer gets.
    pub peer_ip: Ipv4Addr,
    /// Text for the PAP Authenticate-Ack or CHAP Success message.
    pub message: String,
    /// Ends the session after this long (RADIUS Session-Timeout).
    pub session_timeout: Option<Duration>,
    /// Ends the session after this long without IP traffic (RADIUS Idle-Timeout).
    pub idle_timeout: Option<Duration>,
}

impl Grant {
    /// A grant of an address, with the default message and no limits.
    pub fn new(peer_ip: Ipv4Addr) -> Self {
        Self {
            peer_ip,
            message: "Welcome".into(),
            session_timeout: None,
            idle_timeout: None,
        }
    }
}

/// The driver's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    /// Accepted.
    Accept(Grant),
    /// Refused; the message goes to the peer.
    Reject {
        /// Text for the PAP Authenticate-Nak or CHAP Failure message.
        message: String,
    },
}

/// Authenticator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The whole authentication phase must finish within this time.
    pub timeout: Duration,
    /// CHAP: retransmit the challenge after this long.
    pub restart: Duration,
    /// CHAP: challenges sent before giving up.
    pub max_challenges: u32,
    /// CHAP: re-challenge the peer this often while the link is up (`None`: never).
    pub rechallenge: Option<Duration>,
    /// CHAP: the name we put in challenges.
    pub name: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            restart: Duration::from_secs(3),
            max_challenges: 10,
            rechallenge: None,
            name: "nasd".into(),
        }
    }
}

/// PAP (RFC 1334) and CHAP (RFC 1994) packet codes.
pub mod code {
    /// PAP Authenticate-Request.
    pub const PAP_REQ: u8 = 1;
    /// PAP Authenticate-Ack.
    pub const PAP_ACK: u8 = 2;
    /// PAP Authenticate-Nak.
    pub const PAP_NAK: u8 = 3;
    /// CHAP Challenge.
    pub const CHAP_CHALLENGE: u8 = 1;
    /// CHAP Response.
    pub const CHAP_RESPONSE: u8 = 2;
    /// CHAP Success.
    pub const CHAP_SUCCESS: u8 = 3;
    /// CHAP Failure.
    pub const CHAP_FAILURE: u8 = 4;
}

const CHALLENGE_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Waiting for the peer (PAP request, CHAP response).
    Waiting,
    /// Credentials handed out; waiting for the driver.
    Pending,
    /// Accepted; `id` of the request answered, to answer retransmissions.
    Accepted {
        id: u8,
    },
    Failed,
}

/// How authentication went, reported to the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutput {
    /// Credentials to decide on.
    Request(AuthRequest),
    /// The peer passed.
    Success(Grant),
    /// The peer failed (refused credentials, or a re-challenge failed).
    Failure,
    /// The peer did not complete authentication in time.
    Timeout,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Malformed packets.
    pub malformed: u64,
    /// Packets with a wrong identifier or arriving in the wrong phase.
    pub unexpected: u64,
    /// Challenges sent.
    pub challenges: u64,
}

/// The authenticator for one link.
#[derive(Debug)]
pub struct Authenticator {
    proto: AuthProto,
    config: AuthConfig,
    phase: Phase,
    id: u8,
    challenge: [u8; CHALLENGE_LEN],
    retransmit_at: Option<Instant>,
    challenges_left: u32,
    timeout_at: Option<Instant>,
    rechallenge_at: Option<Instant>,
    /// The id of the latest PAP request, answered when the verdict comes.
    pap_id: u8,
    stats: AuthStats,
}

impl Authenticator {
    /// An idle authenticator for `proto`.
    pub fn new(proto: AuthProto, config: AuthConfig) -> Self {
        Self {
            proto,
            config,
            phase: Phase::Idle,
            id: 0,
            challenge: [0; CHALLENGE_LEN],
            retransmit_at: None,
            challenges_left: 0,
            timeout_at: None,
            rechallenge_at: None,
            pap_id: 0,
            stats: AuthStats::default(),
        }
    }

    /// The protocol.
    pub fn proto(&self) -> AuthProto {
        self.proto
    }

    /// The counters.
    pub fn stats(&self) -> &AuthStats {
        &self.stats
    }

    /// True once the peer passed and no re-challenge is under way.
    pub fn accepted(&self) -> bool {
        matches!(self.phase, Phase::Accepted { .. })
    }

    /// Starts authentication: PAP waits for the peer's request, CHAP sends a challenge.
    pub fn start(&mut self, now: Instant, rng: &mut Rng, tx: &mut impl Sink) {
        self.timeout_at = Some(now + self.config.timeout);
        self.phase = Phase::Waiting;
        if self.proto == AuthProto::ChapMd5 {
            self.challenges_left = self.config.max_challenges;
            self.new_challenge(now, rng, tx);
        }
    }

    /// Stops all timers (the link went down).
    pub fn stop(&mut self) {
        self.phase = Phase::Idle;
        self.retransmit_at = None;
        self.timeout_at = None;
        self.rechallenge_at = None;
    }

    fn new_challenge(&mut self, now: Instant, rng: &mut Rng, tx: &mut impl Sink) {
        self.id = self.id.wrapping_add(1 + (rng.next_u32() % 16) as u8);
        rng.fill(&mut self.challenge);
        self.send_challenge(now, tx);
    }

    fn send_challenge(&mut self, now: Instant, tx: &mut impl Sink) {
        let mut data = Vec::with_capacity(1 + CHALLENGE_LEN + self.config.name.len());
        data.push(CHALLENGE_LEN as u8);
        data.extend_from_slice(&self.challenge);
        data.extend_from_slice(self.config.name.as_bytes());
        tx.send_cp(protocol::CHAP, code::CHAP_CHALLENGE, self.id, &data);
        self.stats.challenges += 1;
        self.challenges_left = self.challenges_left.saturating_sub(1);
        self.retransmit_at = Some(now + self.config.restart);
    }

    /// The earliest deadline.
    pub fn deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.rechallenge_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs expired timers.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        tx: &mut impl Sink,
    ) -> Option<AuthOutput> {
        if self.timeout_at.is_some_and(|t| t <= now) {
            self.stop();
            self.phase = Phase::Failed;
            return Some(AuthOutput::Timeout);
        }
        if self.retransmit_at.is_some_and(|t| t <= now) {
            self.retransmit_at = None;
            if self.phase == Phase::Waiting {
                if self.challenges_left == 0 {
                    self.stop();
                    self.phase = Phase::Failed;
                    return Some(AuthOutput::Timeout);
                }
                self.send_challenge(now, tx);
            }
        }
        if self.rechallenge_at.is_some_and(|t| t <= now) {
            self.rechallenge_at = None;
            if matches!(self.phase, Phase::Accepted { .. }) {
                self.start(now, rng, tx);
            }
        }
        None
    }

    /// Handles a PAP or CHAP packet.
    pub fn receive(
        &mut self,
        proto: u16,
        pkt: &Packet<'_>,
        tx: &mut impl Sink,
    ) -> Option<AuthOutput> {
        match (self.proto, proto, pkt.code) {
            (AuthProto::Pap, protocol::PAP, code::PAP_REQ) => self.pap_request(pkt, tx),
            (AuthProto::ChapMd5, protocol::CHAP, code::CHAP_RESPONSE) => {
                self.chap_response(pkt, tx)
            }
            _ => {
                self.stats.unexpected += 1;
                None
            }
        }
    }

    fn pap_request(&mut self, pkt: &Packet<'_>, tx: &mut impl Sink) -> Option<AuthOutput> {
        // Peer-ID Length, Peer-ID, Passwd-Length, Password.
        let d = pkt.data;
        let parsed = (|| {
            let ul = usize::from(*d.first()?);
            let user = d.get(1..1 + ul)?;
            let pl = usize::from(*d.get(1 + ul)?);
            let pass = d.get(2 + ul..2 + ul + pl)?;
            Some((user, pass))
        })();
        let Some((user, pass)) = parsed else {
            self.stats.malformed += 1;
            return None;
        };
        match self.phase {
            Phase::Waiting => {
                self.pap_id = pkt.id;
                self.phase = Phase::Pending;
                Some(AuthOutput::Request(AuthRequest {
                    user: String::from_utf8_lossy(user).into_owned(),
                    credentials: Credentials::Pap {
                        password: Secret::new(pass),
                    },
                }))
            }
            Phase::Pending => {
                // A retransmission while the verdict is pending: answer this id later.
                self.pap_id = pkt.id;
                None
            }
            Phase::Accepted { .. } => {
                // Our Ack was lost: send it again (RFC 1334 2.2.1).
                tx.send_cp(protocol::PAP, code::PAP_ACK, pkt.id, &[0]);
                None
            }
            Phase::Idle | Phase::Failed => {
                self.stats.unexpected += 1;
                None
            }
        }
    }

    fn chap_response(&mut self, pkt: &Packet<'_>, tx: &mut impl Sink) -> Option<AuthOutput> {
        // Value-Size, Value, Name.
        let d = pkt.data;
        let parsed = (|| {
            let vl = usize::from(*d.first()?);
            let value = d.get(1..1 + vl)?;
            Some((value, &d[1 + vl..]))
        })();
        let Some((value, name)) = parsed else {
            self.stats.malformed += 1;
            return None;
        };
        if pkt.id != self.id {
            self.stats.unexpected += 1;
            return None;
        }
        match self.phase {
            Phase::Waiting => {
                self.phase = Phase::Pending;
                self.retransmit_at = None;
                Some(AuthOutput::Request(AuthRequest {
                    user: String::from_utf8_lossy(name).into_owned(),
                    credentials: Credentials::ChapMd5 {
                        id: pkt.id,
                        challenge: self.challenge.to_vec(),
                        response: Secret::new(value),
                    },
                }))
            }
            Phase::Accepted { id } if id == pkt.id => {
                // Our Success was lost (RFC 1994 4.2).
                tx.send_cp(protocol::CHAP, code::CHAP_SUCCESS, pkt.id, b"Welcome");
                None
            }
            _ => {
                self.stats.unexpected += 1;
                None
            }
        }
    }

    /// Delivers the driver's verdict on the pending request.
    pub fn verdict(
        &mut self,
        now: Instant,
        result: AuthResult,
        tx: &mut impl Sink,
    ) -> Option<AuthOutput> {
        if self.phase != Phase::Pending {
            self.stats.unexpected += 1;
            return None;
        }
        let (id, proto) = match self.proto {
            AuthProto::Pap => (self.pap_id, protocol::PAP),
            AuthProto::ChapMd5 => (self.id, protocol::CHAP),
        };
        match result {
            AuthResult::Accept(grant) => {
                let code = if proto == protocol::PAP {
                    code::PAP_ACK
                } else {
                    code::CHAP_SUCCESS
                };
                send_message(tx, proto, code, id, &grant.message);
                self.phase = Phase::Accepted { id };
                self.timeout_at = None;
                self.retransmit_at = None;
                self.rechallenge_at = match (self.proto, self.config.rechallenge) {
                    (AuthProto::ChapMd5, Some(i)) => Some(now + i),
                    _ => None,
                };
                Some(AuthOutput::Success(grant))
            }
            AuthResult::Reject { message } => {
                let code = if proto == protocol::PAP {
                    code::PAP_NAK
                } else {
                    code::CHAP_FAILURE
                };
                send_message(tx, proto, code, id, &message);
                self.stop();
                self.phase = Phase::Failed;
                Some(AuthOutput::Failure)
            }
        }
    }
}

/// PAP Ack/Nak carry a length-prefixed message; CHAP Success/Failure carry it bare.
fn send_message(tx: &mut impl Sink, proto: u16, code: u8, id: u8, message: &str) {
    let msg = &message.as_bytes()[..message.len().min(200)];
    if proto == protocol::PAP {
        let mut data = Vec::with_capacity(msg.len() + 1);
        data.push(msg.len() as u8);
        data.extend_from_slice(msg);
        tx.send_cp(proto, code, id, &data);
    } else {
        tx.send_cp(proto, code, id, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chap_md5_matches_rfc1994_construction() {
        // MD5 of id 0x01, secret "secret", challenge 16 x 0x00, computed independently.
        let r = chap_md5(1, b"secret", &[0u8; 16]);
        let mut h = Md5::new();
        h.update([1u8]);
        h.update(b"secret");
        h.update([0u8; 16]);
        assert_eq!(r, <[u8; 16]>::from(h.finalize()));
        // MD5("") is the well-known d41d8cd98f00b204e9800998ecf8427e.
        let empty: [u8; 16] = Md5::new().finalize().into();
        assert_eq!(empty[..4], [0xd4, 0x1d, 0x8c, 0xd9]);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let req = AuthRequest {
            user: "alice".into(),
            credentials: Credentials::Pap {
                password: Secret::new("hunter2"),
            },
        };
        let s = format!("{req:?}");
        assert!(s.contains("alice"));
        assert!(!s.contains("hunter2"));
        assert!(req.verify_secret(b"hunter2"));
        assert!(!req.verify_secret(b"hunter3"));
        assert!(!req.verify_secret(b"hunter"));
    }

    #[test]
    fn chap_verify() {
        let challenge = [7u8; 16];
        let resp = chap_md5(9, b"s3cret", &challenge);
        let req = AuthRequest {
            user: "bob".into(),
            credentials: Credentials::ChapMd5 {
                id: 9,
                challenge: challenge.to_vec(),
                response: Secret::new(resp),
            },
        };
        assert!(req.verify_secret(b"s3cret"));
        assert!(!req.verify_secret(b"s3creT"));
        assert!(!format!("{req:?}").contains("s3cret"));
    }

    #[test]
    fn pap_malformed_requests_are_counted() {
        let mut a = Authenticator::new(AuthProto::Pap, AuthConfig::default());
        let mut tx: Vec<(u16, Vec<u8>)> = Vec::new();
        let now = Instant::now();
        a.start(now, &mut Rng::from_u64(1), &mut tx);
        for data in [&[][..], &[5, b'a'], &[1, b'a', 9, b'x']] {
            let p = Packet {
                code: 1,
                id: 1,
                data,
            };
            assert_eq!(a.receive(protocol::PAP, &p, &mut tx), None);
        }
        assert_eq!(a.stats().malformed, 3);
        let p = Packet {
            code: 1,
            id: 2,
            data: &[1, b'a', 1, b'x'],
        };
        assert!(matches!(
            a.receive(protocol::PAP, &p, &mut tx),
            Some(AuthOutput::Request(_))
        ));
    }
}
