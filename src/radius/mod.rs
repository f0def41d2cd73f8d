//! RADIUS for nasd (RFC 2865, 2866, 3579, 5176): our own small codec and thin tokio drivers.
//!
//! * [`packet`]: the zero-copy checked packet view, its attribute iterator and a builder.
//!   Pure and panic-free on any input.
//! * [`attr`]: attribute type numbers and enumerated values (Acct-Status-Type,
//!   Acct-Terminate-Cause, Error-Cause).
//! * [`crypto`]: User-Password hiding, Request/Response Authenticators and the
//!   Message-Authenticator (HMAC-MD5).
//! * [`message`]: the requests nasd sends ([`AccessRequest`], [`AccountingRequest`]) and the
//!   replies it accepts ([`AccessReply`]) as Rust values, with pure encoders and checked decoders.
//!   Every request carries a Message-Authenticator; every Access-Accept/Reject/Challenge must
//!   carry a valid one or it is dropped (BlastRADIUS, CVE-2024-3596).
//! * [`client`]: [`RadiusClient`], the tokio client: identifiers, retransmission, fail-over
//!   between servers and dead-server memory.
//! * [`dae`]: the Dynamic Authorization server (Disconnect-Request and CoA-Request, RFC 5176),
//!   with a pure request parser and a tokio UDP listener.

pub mod attr;
pub mod client;
pub mod crypto;
pub mod dae;
pub mod message;
pub mod packet;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod dae_tests;
#[cfg(test)]
mod tests;

pub use attr::{AcctStatus, ErrorCause, TerminateCause};
pub use client::{ClientStats, RadiusClient, RadiusClientConfig, RadiusError, ServerConfig};
pub use dae::{DaeClient, DaeConfig, DaeHandler, DaeKind, DaeRequest, DaeServer, DaeStats};
pub use message::{
    AccessReply, AccessRequest, AccountingRequest, Credentials, NasInfo, ReplyError,
};
