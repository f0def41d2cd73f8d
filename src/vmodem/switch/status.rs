//! What the switch reports: call events for the driver, and line states for the control
//! socket.

use super::super::channel::{ChannelStats, Noise};
use super::super::hayes::ModemState;

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndCause {
    /// The client side hung up (ATH, ATZ, a key while dialling, its DTE closed).
    ClientHangup,
    /// Nobody answered within the caller's S7 seconds.
    NoAnswer,
    /// The server side hung up (ATH, ATZ, its DTE closed).
    ServerHangup,
    /// The control socket cut the line.
    Cut,
}

/// Something the driver may want to act on or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchEvent {
    /// Client line `client` called and server line `line` rings.
    Ringing {
        /// The server line.
        line: usize,
        /// The calling client line.
        client: usize,
    },
    /// The call on server line `line` is up.
    Connected {
        /// The server line.
        line: usize,
        /// The calling client line.
        client: usize,
        /// The line rate.
        bps: u32,
    },
    /// A dialling attempt failed without ringing a line.
    Rejected {
        /// The calling client line.
        client: usize,
        /// The dialled number.
        number: String,
        /// The result the client gets.
        result: &'static str,
    },
    /// The call on server line `line` ended.
    Ended {
        /// The server line.
        line: usize,
        /// The calling client line.
        client: usize,
        /// Why.
        cause: EndCause,
    },
}

/// The call state of a server line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineState {
    /// No call.
    Idle,
    /// A call rings.
    Ringing,
    /// A call is up.
    Connected,
}

/// The current (or last) call of a server line, for the control socket.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallStatus {
    /// The calling client line.
    pub client: usize,
    /// The caller's number.
    pub caller: String,
    /// The dialled number.
    pub called: String,
    /// `ringing`, `connected` or `ended`.
    pub state: &'static str,
    /// Rings so far.
    pub rings: u32,
    /// Client to server direction.
    pub to_server: ChannelStats,
    /// Server to client direction.
    pub to_client: ChannelStats,
    /// Why it ended (for an ended call).
    pub end: Option<EndCause>,
}

/// One server line, for the control socket.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LineStatus {
    /// The line number.
    pub line: usize,
    /// The call state.
    pub state: LineState,
    /// The server-side modem.
    pub modem: ModemState,
    /// Line rate in bits per second.
    pub rate: u32,
    /// Noise settings.
    pub noise: Noise,
    /// The current call, or the last one.
    pub call: Option<CallStatus>,
}

/// One client line, for the control socket.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClientStatus {
    /// The client line number.
    pub client: usize,
    /// Its modem.
    pub modem: ModemState,
    /// Its caller number.
    pub number: String,
    /// The server line it is calling or connected to.
    pub calling: Option<usize>,
}
