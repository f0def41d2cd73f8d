//! Durable local accounting, on by default.
//!
//! Every session Start, Interim and Stop (and later the SIP bridge's call records) is
//! appended to a journal of JSON lines and fsync'd before the caller goes on ([`Journal`],
//! [`Record`]). When nasd starts after a crash, each session that has a Start and no Stop gets a
//! Stop with cause `nas-reboot` ([`Recovery::closed`]); a torn last line is cut off and other
//! unreadable lines are skipped and counted, never fatal.
//!
//! When records are forwarded (to RADIUS accounting), they wait in the journal until the
//! [`Deliver`] implementation acknowledges them, strictly in order, retried with exponential
//! back-off while no server answers; the delivery cursor is stored durably, so nothing is lost
//! across restarts and a record is sent twice only if nasd dies between the server's answer
//! and storing the cursor. Each delivery carries the delay since the record was written
//! (Acct-Delay-Time); the record keeps its Acct-Session-Id.
//!
//! Wiring: open the journal with [`Journal::open`], write [`Body::AccountingOn`], build
//! session ids with [`new_session_id`] from [`Recovery::boot_stamp`], hand the journal to
//! [`Accounting::start`] and give its clones to the sessions; on exit write
//! [`Body::AccountingOff`] and call [`Accounting::shutdown`].

mod forwarder;
mod journal;
mod record;
#[cfg(test)]
mod tests_forwarder;
#[cfg(test)]
mod tests_journal;

pub use forwarder::{Accounting, Backoff, Clock, Deliver, DeliverError, system_clock};
pub use journal::{Journal, Options, Recovery};
pub use record::{Body, CallRecord, Record, SessionRecord, cause, new_session_id};
