//! The SIP bridge: the telephony leg that lets ATAs and SIP phones register and routes calls
//! to free modem lines, instead of an Asterisk box. Everything here is sans-IO; the tokio
//! driver is `crate::daemon::sip`.
//!
//! * [`message`]: RFC 3261 messages over UDP: parsing (compact headers, folding, limits: 400
//!   and 513), typed headers (Via with rport/received, From/To tags, CSeq, Contact, ...),
//!   responses built from requests, RFC 3581 Via stamping.
//! * [`digest`]: MD5 digest authentication (RFC 2617 / 8760) with stateless, expiring nonces
//!   (`stale=true`).
//! * [`registrar`]: the location service: bindings per address-of-record with expiry,
//!   RFC 3261 §10.3 rules, bounded memory, qualify (OPTIONS keepalive) bookkeeping.
//! * [`dialplan`]: Kamailio dialplan semantics (priority, equal/regex/fnmatch match,
//!   substitution with back-references, attributes) mapping a dialled number to an account
//!   or a hunt group of modem lines.
//!
//! * [`transaction`]: RFC 3261 §17 client and server transactions over UDP (INVITE and
//!   non-INVITE, timers A-K, retransmissions absorbed and repeated, bounded).
//!
//! * [`bridge`]: the registrar and call router (a B2BUA) built on the above: routing,
//!   serial hunting over modem lines, CANCEL/BYE/re-INVITE, qualify, call records.
//! * [`config`], [`view`], [`handle`]: its settings, what `nasctl sip` shows, and the handle
//!   the rest of nasd uses.

pub mod bridge;
pub mod config;
pub mod dialplan;
pub mod digest;
pub mod handle;
pub mod message;
pub mod registrar;
pub mod transaction;
pub mod view;
