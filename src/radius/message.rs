//! The requests nasd sends and the replies it accepts, as plain Rust values, with their pure
//! encoders and checked decoders: [`AccessRequest`] → Access-Request, Access-Accept/Reject/
//! Challenge → [`AccessReply`], [`AccountingRequest`] → Accounting-Request.

use super::attr::{self, AcctStatus, TerminateCause};
use super::crypto::{self, MessageAuth};
use super::packet::{BuildError, Builder, Code, Packet, as_u32};
use crate::proto::auth::{AuthRequest, Credentials as PppCredentials, Secret};
use core::net::Ipv4Addr;
use core::time::Duration;

/// Who we are, sent in every request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NasInfo {
    /// NAS-Identifier.
    pub nas_identifier: String,
    /// NAS-IP-Address, when set.
    pub nas_ip: Option<Ipv4Addr>,
}

/// What the user presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// PAP: sent as a hidden User-Password.
    Pap {
        /// The password.
        password: Secret,
    },
    /// CHAP-MD5: sent as CHAP-Password and CHAP-Challenge.
    Chap {
        /// The CHAP identifier.
        ident: u8,
        /// The challenge we sent the peer.
        challenge: Vec<u8>,
        /// The peer's MD5 response.
        response: [u8; 16],
    },
}

/// An authentication request for one user on one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// User-Name.
    pub user: String,
    /// PAP or CHAP credentials.
    pub credentials: Credentials,
    /// NAS-Port.
    pub nas_port: u32,
    /// NAS-Port-Id (the port's name); omitted when empty.
    pub port_name: String,
    /// Calling-Station-Id (the caller's number).
    pub calling_station_id: Option<String>,
    /// Called-Station-Id (the number dialled).
    pub called_station_id: Option<String>,
    /// Connect-Info (e.g. the modem's CONNECT speed).
    pub connect_info: Option<String>,
    /// Acct-Session-Id of the session being authenticated.
    pub acct_session_id: Option<String>,
}

impl AccessRequest {
    /// The request for what the PPP engine hands over; `None` when no PAP or CHAP-MD5
    /// credentials were presented (or the CHAP response is not 16 bytes).
    pub fn from_auth(
        req: &AuthRequest,
        nas_port: u32,
        port_name: impl Into<String>,
    ) -> Option<Self> {
        let credentials = match &req.credentials {
            PppCredentials::None => return None,
            PppCredentials::Pap { password } => Credentials::Pap {
                password: password.clone(),
            },
            PppCredentials::ChapMd5 {
                id,
                challenge,
                response,
            } => Credentials::Chap {
                ident: *id,
                challenge: challenge.clone(),
                response: response.expose().try_into().ok()?,
            },
        };
        Some(Self {
            user: req.user.clone(),
            credentials,
            nas_port,
            port_name: port_name.into(),
            calling_station_id: None,
            called_station_id: None,
            connect_info: None,
            acct_session_id: None,
        })
    }
}

/// The server's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessReply {
    /// Access-Accept.
    Accept {
        /// Framed-IP-Address (None also for 255.255.255.254/255: "NAS chooses").
        framed_ip: Option<Ipv4Addr>,
        /// Session-Timeout (0 is taken as none).
        session_timeout: Option<Duration>,
        /// Idle-Timeout (0 is taken as none).
        idle_timeout: Option<Duration>,
        /// Class attributes, to be echoed in accounting.
        class: Vec<Vec<u8>>,
        /// Reply-Message attributes, joined with newlines.
        reply_message: Option<String>,
        /// Vendor-Specific attributes, passed through: (Vendor-Id, data).
        vendor_specific: Vec<(u32, Vec<u8>)>,
    },
    /// Access-Reject (or an Access-Challenge, which nasd does not support: RFC 2865 lets a
    /// NAS treat it as a reject).
    Reject {
        /// Reply-Message attributes, joined with newlines.
        reply_message: Option<String>,
    },
}

/// One accounting record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingRequest {
    /// Acct-Status-Type.
    pub status: AcctStatus,
    /// Acct-Session-Id.
    pub session_id: String,
    /// User-Name; omitted when empty (Accounting-On/Off).
    pub user: String,
    /// NAS-Port.
    pub nas_port: u32,
    /// NAS-Port-Id; omitted when empty.
    pub port_name: String,
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<String>,
    /// Acct-Session-Time in seconds (sent for Interim-Update and Stop).
    pub session_time: u32,
    /// Octets from the user; sent as Acct-Input-Octets and -Gigawords.
    pub input_octets: u64,
    /// Octets to the user; sent as Acct-Output-Octets and -Gigawords.
    pub output_octets: u64,
    /// Acct-Input-Packets.
    pub input_packets: u32,
    /// Acct-Output-Packets.
    pub output_packets: u32,
    /// Acct-Terminate-Cause (Stop only).
    pub terminate_cause: Option<TerminateCause>,
    /// Class attributes from the Access-Accept.
    pub class: Vec<Vec<u8>>,
    /// Acct-Delay-Time: seconds the record waited before this send (the client adds the
    /// time it spent failing over).
    pub delay_time: u32,
    /// Event-Timestamp (Unix time).
    pub event_time: Option<u32>,
}

impl AccountingRequest {
    /// A record with the given status and session id and every counter zero.
    pub fn new(status: AcctStatus, session_id: impl Into<String>) -> Self {
        Self {
            status,
            session_id: session_id.into(),
            user: String::new(),
            nas_port: 0,
            port_name: String::new(),
            framed_ip: None,
            calling_station_id: None,
            session_time: 0,
            input_octets: 0,
            output_octets: 0,
            input_packets: 0,
            output_packets: 0,
            terminate_cause: None,
            class: Vec::new(),
            delay_time: 0,
            event_time: None,
        }
    }
}

fn opt_text(b: &mut Builder, ty: u8, v: Option<&str>) -> Result<(), BuildError> {
    match v {
        Some(s) if !s.is_empty() => b.text(ty, s).map(|_| ()),
        _ => Ok(()),
    }
}

fn nas_attrs(b: &mut Builder, nas: &NasInfo, port: u32, port_name: &str) -> Result<(), BuildError> {
    opt_text(b, attr::NAS_IDENTIFIER, Some(&nas.nas_identifier))?;
    if let Some(ip) = nas.nas_ip {
        b.attr(attr::NAS_IP_ADDRESS, &ip.octets())?;
    }
    b.u32(attr::NAS_PORT, port)?;
    opt_text(b, attr::NAS_PORT_ID, Some(port_name))?;
    b.u32(attr::NAS_PORT_TYPE, attr::NAS_PORT_TYPE_ASYNC)?;
    b.u32(attr::SERVICE_TYPE, attr::SERVICE_TYPE_FRAMED)?;
    b.u32(attr::FRAMED_PROTOCOL, attr::FRAMED_PROTOCOL_PPP)?;
    Ok(())
}

/// Encodes and signs an Access-Request. The Message-Authenticator comes first (the
/// BlastRADIUS mitigation); `authenticator` must be 16 fresh random bytes.
pub fn encode_access_request(
    req: &AccessRequest,
    nas: &NasInfo,
    id: u8,
    authenticator: [u8; 16],
    secret: &[u8],
) -> Result<Vec<u8>, BuildError> {
    let mut b = Builder::new(Code::AccessRequest, id, authenticator);
    b.message_authenticator()?;
    b.text(attr::USER_NAME, &req.user)?;
    match &req.credentials {
        Credentials::Pap { password } => {
            let hidden = crypto::hide_password(password.expose(), secret, &authenticator);
            b.attr(attr::USER_PASSWORD, &hidden)?;
        }
        Credentials::Chap {
            ident,
            challenge,
            response,
        } => {
            let mut v = [0u8; 17];
            v[0] = *ident;
            v[1..].copy_from_slice(response);
            b.attr(attr::CHAP_PASSWORD, &v)?;
            b.attr(attr::CHAP_CHALLENGE, challenge)?;
        }
    }
    nas_attrs(&mut b, nas, req.nas_port, &req.port_name)?;
    opt_text(
        &mut b,
        attr::CALLING_STATION_ID,
        req.calling_station_id.as_deref(),
    )?;
    opt_text(
        &mut b,
        attr::CALLED_STATION_ID,
        req.called_station_id.as_deref(),
    )?;
    opt_text(&mut b, attr::CONNECT_INFO, req.connect_info.as_deref())?;
    opt_text(
        &mut b,
        attr::ACCT_SESSION_ID,
        req.acct_session_id.as_deref(),
    )?;
    let mut p = b.finish();
    crypto::sign_access_request(&mut p, secret);
    Ok(p)
}

/// Encodes and signs an Accounting-Request (with a Message-Authenticator). Its
/// authenticator is derived from the content, so changing `delay_time` changes it.
pub fn encode_accounting_request(
    req: &AccountingRequest,
    nas: &NasInfo,
    id: u8,
    secret: &[u8],
) -> Result<Vec<u8>, BuildError> {
    let mut b = Builder::new(Code::AccountingRequest, id, [0; 16]);
    b.message_authenticator()?;
    b.u32(attr::ACCT_STATUS_TYPE, req.status.value())?;
    b.text(attr::ACCT_SESSION_ID, &req.session_id)?;
    opt_text(&mut b, attr::USER_NAME, Some(&req.user))?;
    nas_attrs(&mut b, nas, req.nas_port, &req.port_name)?;
    b.u32(attr::ACCT_AUTHENTIC, attr::ACCT_AUTHENTIC_RADIUS)?;
    if let Some(ip) = req.framed_ip {
        b.attr(attr::FRAMED_IP_ADDRESS, &ip.octets())?;
    }
    opt_text(
        &mut b,
        attr::CALLING_STATION_ID,
        req.calling_station_id.as_deref(),
    )?;
    for c in &req.class {
        b.attr(attr::CLASS, c)?;
    }
    b.u32(attr::ACCT_DELAY_TIME, req.delay_time)?;
    if let Some(t) = req.event_time {
        b.u32(attr::EVENT_TIMESTAMP, t)?;
    }
    if matches!(req.status, AcctStatus::Stop | AcctStatus::InterimUpdate) {
        b.u32(attr::ACCT_SESSION_TIME, req.session_time)?;
        b.u32(attr::ACCT_INPUT_OCTETS, req.input_octets as u32)?;
        b.u32(attr::ACCT_INPUT_GIGAWORDS, (req.input_octets >> 32) as u32)?;
        b.u32(attr::ACCT_OUTPUT_OCTETS, req.output_octets as u32)?;
        b.u32(
            attr::ACCT_OUTPUT_GIGAWORDS,
            (req.output_octets >> 32) as u32,
        )?;
        b.u32(attr::ACCT_INPUT_PACKETS, req.input_packets)?;
        b.u32(attr::ACCT_OUTPUT_PACKETS, req.output_packets)?;
    }
    if let Some(c) = req.terminate_cause {
        b.u32(attr::ACCT_TERMINATE_CAUSE, c.value())?;
    }
    let mut p = b.finish();
    crypto::sign_request_md5(&mut p, secret);
    Ok(p)
}

/// Why a received response was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Not a well-formed RADIUS packet.
    #[error("malformed response")]
    Malformed,
    /// Its identifier is not the request's.
    #[error("identifier mismatch")]
    WrongId,
    /// Its code does not answer the request.
    #[error("unexpected response code {0}")]
    UnexpectedCode(u8),
    /// The Response Authenticator is wrong (wrong secret or forged).
    #[error("bad response authenticator")]
    BadAuthenticator,
    /// An Access-Accept/Reject/Challenge without Message-Authenticator (BlastRADIUS).
    #[error("missing Message-Authenticator")]
    MissingMessageAuthenticator,
    /// A wrong Message-Authenticator.
    #[error("bad Message-Authenticator")]
    BadMessageAuthenticator,
}

/// Checks a response's identifier, code, Response Authenticator and Message-Authenticator.
fn check_response<'a>(
    raw: &'a [u8],
    request: &[u8],
    codes: &[Code],
    require_ma: bool,
    secret: &[u8],
) -> Result<Packet<'a>, ReplyError> {
    let p = Packet::new_checked(raw).map_err(|_| ReplyError::Malformed)?;
    let req = Packet::new_checked(request).map_err(|_| ReplyError::Malformed)?;
    if p.identifier() != req.identifier() {
        return Err(ReplyError::WrongId);
    }
    if !codes.contains(&p.code()) {
        return Err(ReplyError::UnexpectedCode(p.code().into()));
    }
    let req_auth = req.authenticator();
    if !crypto::verify_response(p.as_bytes(), &req_auth, secret) {
        return Err(ReplyError::BadAuthenticator);
    }
    match crypto::response_message_auth(p.as_bytes(), &req_auth, secret) {
        MessageAuth::Valid => Ok(p),
        MessageAuth::Missing if !require_ma => Ok(p),
        MessageAuth::Missing => Err(ReplyError::MissingMessageAuthenticator),
        MessageAuth::Invalid => Err(ReplyError::BadMessageAuthenticator),
    }
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn seconds(v: &[u8]) -> Option<Duration> {
    as_u32(v)
        .filter(|&s| s > 0)
        .map(|s| Duration::from_secs(s.into()))
}

/// Checks and decodes the answer to the Access-Request `request` (the exact bytes sent).
/// A valid Message-Authenticator is required.
pub fn decode_access_reply(
    raw: &[u8],
    request: &[u8],
    secret: &[u8],
) -> Result<AccessReply, ReplyError> {
    let codes = [
        Code::AccessAccept,
        Code::AccessReject,
        Code::AccessChallenge,
    ];
    let p = check_response(raw, request, &codes, true, secret)?;
    let messages: Vec<String> = p
        .attributes()
        .filter(|a| a.ty == attr::REPLY_MESSAGE)
        .map(|a| text(a.value))
        .collect();
    let reply_message = (!messages.is_empty()).then(|| messages.join("\n"));
    if p.code() != Code::AccessAccept {
        return Ok(AccessReply::Reject { reply_message });
    }
    let mut framed_ip = None;
    let mut session_timeout = None;
    let mut idle_timeout = None;
    let mut class = Vec::new();
    let mut vendor_specific = Vec::new();
    for a in p.attributes() {
        match a.ty {
            attr::FRAMED_IP_ADDRESS => {
                framed_ip = <[u8; 4]>::try_from(a.value)
                    .ok()
                    .map(Ipv4Addr::from)
                    .filter(|ip| ip.octets()[..3] != [255, 255, 255] || ip.octets()[3] < 254);
            }
            attr::SESSION_TIMEOUT => session_timeout = seconds(a.value),
            attr::IDLE_TIMEOUT => idle_timeout = seconds(a.value),
            attr::CLASS => class.push(a.value.to_vec()),
            attr::VENDOR_SPECIFIC => {
                if let Some((vid, data)) = a.vendor() {
                    vendor_specific.push((vid, data.to_vec()));
                }
            }
            _ => {}
        }
    }
    Ok(AccessReply::Accept {
        framed_ip,
        session_timeout,
        idle_timeout,
        class,
        reply_message,
        vendor_specific,
    })
}

/// Checks an Accounting-Response to the Accounting-Request `request` (the exact bytes sent).
/// A Message-Authenticator is verified when present.
pub fn check_accounting_response(
    raw: &[u8],
    request: &[u8],
    secret: &[u8],
) -> Result<(), ReplyError> {
    check_response(raw, request, &[Code::AccountingResponse], false, secret).map(|_| ())
}
