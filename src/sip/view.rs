//! What `nasctl sip registrations` and `nasctl sip calls` show: plain data, serialized on the
//! control socket.

use serde::{Deserialize, Serialize};

/// One registered contact of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationView {
    /// The account (address-of-record).
    pub account: String,
    /// The contact URI the device registered.
    pub contact: String,
    /// Where its REGISTER came from (requests for it go there: rport).
    pub source: String,
    /// Seconds until the binding lapses.
    pub expires_in: u32,
    /// The nasd port this line rings, for a modem line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Qualify: `reachable`, `lagged` (slower than `qualify_max`), `unreachable` or
    /// `unknown` (no probe answered yet or qualify off).
    pub status: String,
    /// Round-trip time of the last answered qualify probe, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The device's User-Agent, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// One call in progress (ringing or answered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    /// The bridge's call number (stable while the call lasts).
    pub id: u64,
    /// The caller's Call-ID.
    pub call_id: String,
    /// The calling number (From user part).
    pub caller: String,
    /// The dialled number (Request-URI user part).
    pub callee: String,
    /// The account (line) currently rung or connected, if any yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// That line's nasd port, for a modem line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// `routing`, `ringing`, `answered` or `ending`.
    pub state: String,
    /// When the INVITE arrived, unix seconds.
    pub started: u64,
    /// When the call was answered, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<u64>,
    /// Lines tried so far (hunting).
    pub attempts: u32,
}
