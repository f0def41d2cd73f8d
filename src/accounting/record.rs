//! One accounting record: a JSON object on one line of the journal.
//!
//! ```text
//! {"seq":7,"time":1767225600,"kind":"start","session_id":"695A4F00-00000003","user":"alice",...}
//! ```
//!
//! `seq` and `time` are the journal's; `kind` names the body ([`Body`]), whose fields follow at
//! the same level. Optional fields that are empty are left out. New kinds can be added to
//! [`Body`] without touching the journal: a line of a kind this build does not know is kept in
//! the file, counted in [`Recovery::unknown_lines`](super::Recovery::unknown_lines) and never
//! forwarded.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Sequence number: 1 for the first record ever written, one more for each record after,
    /// across restarts and rotations.
    pub seq: u64,
    /// Wall-clock time the record was written, unix seconds. A forwarder sends
    /// `now - time` as Acct-Delay-Time.
    pub time: u64,
    /// What happened.
    #[serde(flatten)]
    pub body: Body,
}

/// What a record says. Serialized with its variant name, in kebab case, in the `kind` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Body {
    /// A session began (Acct-Status-Type Start).
    Start(SessionRecord),
    /// A session is still up (Acct-Status-Type Interim-Update); the counters so far.
    Interim(SessionRecord),
    /// A session ended (Acct-Status-Type Stop); the final counters and the terminate cause.
    Stop(SessionRecord),
    /// The NAS started accounting (Acct-Status-Type Accounting-On): written at every start.
    AccountingOn,
    /// The NAS stopped accounting cleanly (Acct-Status-Type Accounting-Off).
    AccountingOff,
    /// One call attempt seen by the SIP bridge.
    Call(CallRecord),
}

impl Body {
    /// The session record of a Start, Interim or Stop.
    pub fn session(&self) -> Option<&SessionRecord> {
        match self {
            Body::Start(s) | Body::Interim(s) | Body::Stop(s) => Some(s),
            _ => None,
        }
    }

    /// The `kind` field's value, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Start(_) => "start",
            Body::Interim(_) => "interim",
            Body::Stop(_) => "stop",
            Body::AccountingOn => "accounting-on",
            Body::AccountingOff => "accounting-off",
            Body::Call(_) => "call",
        }
    }
}

/// Terminate causes (RFC 2866 Acct-Terminate-Cause, in kebab case) used by nasd.
pub mod cause {
    /// The user (the peer) ended the session.
    pub const USER_REQUEST: &str = "user-request";
    /// The line dropped carrier.
    pub const LOST_CARRIER: &str = "lost-carrier";
    /// The idle timer ran out.
    pub const IDLE_TIMEOUT: &str = "idle-timeout";
    /// The session timer ran out.
    pub const SESSION_TIMEOUT: &str = "session-timeout";
    /// An administrator ended the session.
    pub const ADMIN_RESET: &str = "admin-reset";
    /// An administrator stopped nasd (SIGTERM) while the session was up.
    pub const ADMIN_REBOOT: &str = "admin-reboot";
    /// The peer stopped answering (LCP echo timeout).
    pub const LOST_SERVICE: &str = "lost-service";
    /// nasd stopped (or crashed) while the session was up.
    pub const NAS_REBOOT: &str = "nas-reboot";
    /// nasd ended the session for another reason (e.g. echo timeout).
    pub const NAS_REQUEST: &str = "nas-request";
    /// The port failed.
    pub const PORT_ERROR: &str = "port-error";
}

/// The fields of a Start, Interim or Stop record. Never holds a password or secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Acct-Session-Id: unique across restarts (see [`new_session_id`]).
    pub session_id: String,
    /// The authenticated user name.
    pub user: String,
    /// The port's name (e.g. `ttyUSB0`).
    pub port: String,
    /// NAS-Port: the port's number.
    pub nas_port: u32,
    /// Calling-Station-Id, from the modem's caller id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// Framed-IP-Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// How the user was authenticated: `pap`, `chap`, `pam`, `radius`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Acct-Session-Time: seconds since the session began.
    #[serde(default)]
    pub session_time_s: u64,
    /// Octets received from the user.
    #[serde(default)]
    pub rx_bytes: u64,
    /// Octets sent to the user.
    #[serde(default)]
    pub tx_bytes: u64,
    /// Packets received from the user.
    #[serde(default)]
    pub rx_packets: u64,
    /// Packets sent to the user.
    #[serde(default)]
    pub tx_packets: u64,
    /// Acct-Terminate-Cause of a Stop (see [`cause`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate_cause: Option<String>,
    /// RADIUS Class attributes from the Access-Accept, each in hex, echoed in accounting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class: Vec<String>,
}

/// One call attempt through the SIP bridge. Every field is optional so the bridge can fill
/// in what it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The call's identifier (e.g. the SIP Call-ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The calling number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The called number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee: Option<String>,
    /// The line (SIP account) the call used last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// That line's nasd port, for a modem line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Lines tried (hunting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The final SIP status sent to the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The attributes of the dialplan rule that routed the call (Kamailio `attrs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<String>,
    /// When the call arrived, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// When it was answered, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<u64>,
    /// When it ended, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    /// How it ended: `answered`, `busy`, `no-answer`, `failed`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// Seconds from answer to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
}

/// An Acct-Session-Id: `BBBBBBBB-CCCCCCCC`, the boot stamp and the session counter in
/// upper-case hex (wider than 8 digits when a value needs it).
///
/// Unique across restarts when every start uses a boot stamp greater than the last one's;
/// [`Recovery::boot_stamp`](super::Recovery::boot_stamp) is such a value.
pub fn new_session_id(boot_unix: u64, counter: u64) -> String {
    format!("{boot_unix:08X}-{counter:08X}")
}
