//! The control socket of `nasctl`: a Unix stream socket speaking a small versioned JSON
//! protocol.
//!
//! # Protocol (version 1)
//!
//! Each request is one JSON object on one line (at most [`MAX_REQUEST`] bytes with its
//! newline); each answer is one JSON object on one line:
//!
//! ```text
//! -> {"v":1,"cmd":"sessions","user":"alice","port":null}
//! <- {"v":1,"ok":true,"data":[{"id":1,"port":"m0","user":"alice",...}]}
//! -> {"v":1,"cmd":"kill","target":"bob"}
//! <- {"v":1,"ok":false,"error":"no session matches \"bob\""}
//! -> {"v":1,"cmd":"sip-calls"}
//! <- {"v":1,"ok":true,"data":[{"id":3,"caller":"5550100","callee":"5551234",...}]}
//! ```
//!
//! Commands: `version`, `sessions` (`user`, `port` filters), `kill` (`target`: a session
//! id, user name or address), `ports`, `stats`, `reload`, `capture` (`port`), and the SIP
//! bridge's `sip-registrations` (an array of
//! [`RegistrationView`](crate::sip::view::RegistrationView)) and `sip-calls` (an array of
//! [`CallView`](crate::sip::view::CallView)), both errors when nasd has no `[sip]`. A
//! connection may carry several requests, one after the other. After a successful `capture`
//! answer the connection carries a pcap stream (LINKTYPE_PPP_HDLC, or 204 with direction) of the
//! port's frames until the client closes it or the port goes away.
//!
//! A request longer than [`MAX_REQUEST`] gets an error answer and the connection is
//! closed. Only root and members of the socket's group may use the socket (checked with
//! `SO_PEERCRED`); everyone else gets the error `permission denied`.

pub mod access;
pub mod capture_client;
pub mod client;
mod commands;
pub mod server;
pub mod show;
mod sip;
mod stream;

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// The longest request line, newline included.
pub const MAX_REQUEST: usize = 64 * 1024;

/// The error text for a peer that is neither root nor in the socket's group.
pub const PERMISSION_DENIED: &str = "permission denied";

/// A request as sent on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The protocol version ([`VERSION`]).
    pub v: u32,
    /// What is asked.
    #[serde(flatten)]
    pub cmd: Command,
}

impl Request {
    /// A request of this build's protocol version.
    pub fn new(cmd: Command) -> Self {
        Self { v: VERSION, cmd }
    }
}

/// The commands of the control protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Command {
    /// The daemon's version and protocol.
    Version,
    /// The live sessions, optionally only one user's or one port's.
    Sessions {
        /// Only this user's sessions.
        #[serde(default)]
        user: Option<String>,
        /// Only this port's sessions.
        #[serde(default)]
        port: Option<String>,
    },
    /// End the sessions whose id, user name or address is `target` (reason admin).
    Kill {
        /// A session id, a user name or an address.
        target: String,
    },
    /// Every port's state.
    Ports,
    /// Daemon-wide counters.
    Stats,
    /// Re-read the configuration, as SIGHUP does.
    Reload,
    /// Stream the port's PPP frames in pcap format.
    Capture {
        /// The port's name.
        port: String,
        /// Keep each frame's direction (link type 204, PPP with direction) instead of
        /// LINKTYPE_PPP_HDLC (50).
        #[serde(default)]
        direction: bool,
    },
    /// The SIP bridge's registered contacts.
    #[serde(rename = "sip-registrations")]
    SipRegistrations,
    /// The SIP bridge's calls in progress.
    #[serde(rename = "sip-calls")]
    SipCalls,
}

/// An answer as sent on the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The protocol version ([`VERSION`]).
    pub v: u32,
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// Why the request failed, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A successful answer.
    pub fn ok(data: serde_json::Value) -> Self {
        Self {
            v: VERSION,
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    /// A failed answer.
    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            v: VERSION,
            ok: false,
            data: None,
            error: Some(msg.into()),
        }
    }

    /// The answer as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"v":1,"ok":false,"error":"internal error: unserialisable answer"}"#.to_vec()
        });
        v.push(b'\n');
        v
    }
}

/// One live session, as `sessions` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// nasd's session number.
    pub id: u64,
    /// The Acct-Session-Id.
    pub acct_session_id: String,
    /// The port's name.
    pub port: String,
    /// The user ("" until authenticated).
    pub user: String,
    /// The assigned address.
    pub ip: Option<String>,
    /// The caller's number, when the modem reported it.
    pub caller_id: Option<String>,
    /// The connect speed, when the modem reported it.
    pub speed: Option<u32>,
    /// `starting` (LCP, authentication) or `up`.
    pub state: String,
    /// How the user authenticated (`pap`, `chap`, `pam`, `radius`, `none`).
    pub auth: Option<String>,
    /// When the call reached PPP, in seconds since the Unix epoch.
    pub started_at: u64,
    /// Seconds since the call reached PPP.
    pub uptime_s: u64,
    /// IP octets from the caller.
    pub rx_bytes: u64,
    /// IP octets to the caller.
    pub tx_bytes: u64,
    /// IP packets from the caller.
    pub rx_packets: u64,
    /// IP packets to the caller.
    pub tx_packets: u64,
}

/// One port, as `ports` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortView {
    /// The port's name.
    pub name: String,
    /// `opening`, `initialising`, `idle`, `ringing`, `answering`, `connected`,
    /// `backing-off` or `failed`.
    pub state: String,
    /// While backing off: when the next attempt is due (seconds since the Unix epoch).
    pub retry_at: Option<u64>,
    /// Calls answered since nasd started.
    pub calls: u64,
    /// When the last call started (seconds since the Unix epoch).
    pub last_call: Option<u64>,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// Traffic and drop counters summed over sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// IP octets from callers.
    pub rx_bytes: u64,
    /// IP octets to callers.
    pub tx_bytes: u64,
    /// IP packets from callers.
    pub rx_packets: u64,
    /// IP packets to callers.
    pub tx_packets: u64,
    /// Frames dropped for a bad FCS.
    pub bad_fcs: u64,
    /// Frames dropped for exceeding the MRU.
    pub oversize: u64,
    /// Frames too short to hold a header and an FCS.
    pub runts: u64,
    /// Frames with a malformed PPP header or control packet.
    pub malformed: u64,
    /// Packets toward callers dropped (larger than the MRU, or the line backed up).
    pub tx_dropped: u64,
}

impl Traffic {
    /// Adds one link's counters.
    pub fn add(&mut self, s: &crate::proto::link::LinkStats) {
        self.rx_bytes += s.rx_bytes;
        self.tx_bytes += s.tx_bytes;
        self.rx_packets += s.rx_packets;
        self.tx_packets += s.tx_packets;
        self.bad_fcs += s.decoder.bad_fcs;
        self.oversize += s.decoder.oversize;
        self.runts += s.decoder.runts;
        self.malformed += s.malformed;
        self.tx_dropped += s.tx_dropped;
    }
}

/// Daemon-wide counters, as `stats` reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    /// nasd's version.
    pub version: String,
    /// When nasd started (seconds since the Unix epoch).
    pub started_at: u64,
    /// Seconds since nasd started.
    pub uptime_s: u64,
    /// Sessions live now.
    pub sessions_now: u64,
    /// Sessions started since nasd started.
    pub sessions_total: u64,
    /// Refused authentications.
    pub auth_failures: u64,
    /// Every session's counters, ended and live.
    pub traffic: Traffic,
    /// Packets from callers with a source other than their address.
    pub spoofed: u64,
    /// Packets between callers dropped by `isolate_clients`.
    pub isolated: u64,
    /// Packets from the host for an address no session owns.
    pub no_session: u64,
    /// Capture frames lost to slow capture readers (never line frames).
    pub capture_dropped: u64,
}

/// The version answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionView {
    /// nasd's version.
    pub version: String,
    /// The protocol version.
    pub protocol: u32,
}

/// The first answer of `capture`, before the pcap stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureView {
    /// The port.
    pub port: String,
    /// The pcap link type of the stream.
    pub linktype: u32,
}

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_one_line_of_json() {
        let r = Request::new(Command::Sessions {
            user: Some("alice".into()),
            port: None,
        });
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""v":1"#) && text.contains(r#""cmd":"sessions""#));
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        let bare: Request = serde_json::from_str(r#"{"v":1,"cmd":"sessions"}"#).unwrap();
        assert_eq!(
            bare.cmd,
            Command::Sessions {
                user: None,
                port: None
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"cmd":"format-disk"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"v":1,"cmd":"kill"}"#).is_err());
    }

    #[test]
    fn sip_commands_round_trip_with_their_dashed_names() {
        for (cmd, name) in [
            (Command::SipRegistrations, "sip-registrations"),
            (Command::SipCalls, "sip-calls"),
        ] {
            let text = serde_json::to_string(&Request::new(cmd.clone())).unwrap();
            assert_eq!(text, format!(r#"{{"v":1,"cmd":"{name}"}}"#));
            assert_eq!(serde_json::from_str::<Request>(&text).unwrap().cmd, cmd);
        }
        // Only the dashed spelling is the command.
        for wrong in ["sipcalls", "sip_calls", "sipregistrations", "SipCalls"] {
            let line = format!(r#"{{"v":1,"cmd":"{wrong}"}}"#);
            assert!(serde_json::from_str::<Request>(&line).is_err(), "{wrong}");
        }
    }

    #[test]
    fn answers_are_one_line() {
        let line = Response::error("no such\nport").to_line();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let back: Response = serde_json::from_slice(&line).unwrap();
        assert!(!back.ok);
        assert_eq!(back.error.as_deref(), Some("no such\nport"));
    }
}
