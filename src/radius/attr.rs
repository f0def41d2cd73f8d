//! Attribute type numbers and the enumerated values nasd sends or reads
//! (RFC 2865, 2866, 2869, 3579, 5176).

#![allow(missing_docs)] // the constants are named after their RFC attributes

pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const CHAP_PASSWORD: u8 = 3;
pub const NAS_IP_ADDRESS: u8 = 4;
pub const NAS_PORT: u8 = 5;
pub const SERVICE_TYPE: u8 = 6;
pub const FRAMED_PROTOCOL: u8 = 7;
pub const FRAMED_IP_ADDRESS: u8 = 8;
pub const REPLY_MESSAGE: u8 = 18;
pub const STATE: u8 = 24;
pub const CLASS: u8 = 25;
pub const VENDOR_SPECIFIC: u8 = 26;
pub const SESSION_TIMEOUT: u8 = 27;
pub const IDLE_TIMEOUT: u8 = 28;
pub const CALLED_STATION_ID: u8 = 30;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const PROXY_STATE: u8 = 33;
pub const ACCT_STATUS_TYPE: u8 = 40;
pub const ACCT_DELAY_TIME: u8 = 41;
pub const ACCT_INPUT_OCTETS: u8 = 42;
pub const ACCT_OUTPUT_OCTETS: u8 = 43;
pub const ACCT_SESSION_ID: u8 = 44;
pub const ACCT_AUTHENTIC: u8 = 45;
pub const ACCT_SESSION_TIME: u8 = 46;
pub const ACCT_INPUT_PACKETS: u8 = 47;
pub const ACCT_OUTPUT_PACKETS: u8 = 48;
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
pub const EVENT_TIMESTAMP: u8 = 55;
pub const CHAP_CHALLENGE: u8 = 60;
pub const NAS_PORT_TYPE: u8 = 61;
pub const CONNECT_INFO: u8 = 77;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
pub const NAS_PORT_ID: u8 = 87;
pub const ERROR_CAUSE: u8 = 101;

/// Service-Type = Framed.
pub const SERVICE_TYPE_FRAMED: u32 = 2;
/// Framed-Protocol = PPP.
pub const FRAMED_PROTOCOL_PPP: u32 = 1;
/// NAS-Port-Type = Async (a modem line).
pub const NAS_PORT_TYPE_ASYNC: u32 = 0;
/// Acct-Authentic = RADIUS.
pub const ACCT_AUTHENTIC_RADIUS: u32 = 1;

/// Acct-Status-Type values (RFC 2866 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcctStatus {
    /// 1: a session started.
    Start,
    /// 2: a session ended.
    Stop,
    /// 3: an interim update of a running session.
    InterimUpdate,
    /// 7: the NAS started (all earlier sessions are over).
    AccountingOn,
    /// 8: the NAS is stopping.
    AccountingOff,
}

impl AcctStatus {
    /// The attribute value.
    pub fn value(self) -> u32 {
        match self {
            Self::Start => 1,
            Self::Stop => 2,
            Self::InterimUpdate => 3,
            Self::AccountingOn => 7,
            Self::AccountingOff => 8,
        }
    }
}

/// Acct-Terminate-Cause values (RFC 2866 section 5.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TerminateCause {
    /// 1: the user ended the session (LCP Terminate).
    UserRequest,
    /// 2: DCD dropped.
    LostCarrier,
    /// 3: the service was lost.
    LostService,
    /// 4: the idle timer expired.
    IdleTimeout,
    /// 5: Session-Timeout reached.
    SessionTimeout,
    /// 6: an administrator ended the session (also a RADIUS Disconnect-Request).
    AdminReset,
    /// 7: an administrator rebooted the NAS.
    AdminReboot,
    /// 8: the port failed.
    PortError,
    /// 9: the NAS failed.
    NasError,
    /// 10: the NAS ended the session (e.g. negotiation failed).
    NasRequest,
    /// 11: the NAS rebooted.
    NasReboot,
    /// 12: the port is no longer needed.
    PortUnneeded,
    /// 13: the port was pre-empted.
    PortPreempted,
    /// 14: the port was suspended.
    PortSuspended,
    /// 15: the service is unavailable.
    ServiceUnavailable,
    /// 16: the NAS is calling back.
    Callback,
    /// 17: a user error.
    UserError,
    /// 18: the host ended the session.
    HostRequest,
}

impl TerminateCause {
    /// The attribute value.
    pub fn value(self) -> u32 {
        match self {
            Self::UserRequest => 1,
            Self::LostCarrier => 2,
            Self::LostService => 3,
            Self::IdleTimeout => 4,
            Self::SessionTimeout => 5,
            Self::AdminReset => 6,
            Self::AdminReboot => 7,
            Self::PortError => 8,
            Self::NasError => 9,
            Self::NasRequest => 10,
            Self::NasReboot => 11,
            Self::PortUnneeded => 12,
            Self::PortPreempted => 13,
            Self::PortSuspended => 14,
            Self::ServiceUnavailable => 15,
            Self::Callback => 16,
            Self::UserError => 17,
            Self::HostRequest => 18,
        }
    }
}

/// Error-Cause values for Disconnect/CoA NAKs (RFC 5176 section 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCause {
    /// 401: an attribute the NAS does not support.
    UnsupportedAttribute,
    /// 402: a required attribute is missing.
    MissingAttribute,
    /// 403: NAS-Identifier or NAS-IP-Address names another NAS.
    NasIdentificationMismatch,
    /// 404: the request is malformed.
    InvalidRequest,
    /// 503: no session matched.
    SessionContextNotFound,
    /// 506: the NAS could not act on the request.
    ResourcesUnavailable,
}

impl ErrorCause {
    /// The attribute value.
    pub fn value(self) -> u32 {
        match self {
            Self::UnsupportedAttribute => 401,
            Self::MissingAttribute => 402,
            Self::NasIdentificationMismatch => 403,
            Self::InvalidRequest => 404,
            Self::SessionContextNotFound => 503,
            Self::ResourcesUnavailable => 506,
        }
    }
}
