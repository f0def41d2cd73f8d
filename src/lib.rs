//! nasd: a dial-up network access server.
//!
//! # Layering
//!
//! ```text
//!   binaries (nasd-line, later nasd / nasctl)
//!        |
//!   driver  -- thin tokio loops: serial port / pty, TUN, timers
//!        |
//!   proto   -- the sans-IO core: bytes, events and `now` in;
//!              frames, packets, events and deadlines out
//! ```
//!
//! Everything under [`proto`] is pure: it never reads a clock, never does I/O and never
//! spawns. The drivers feed it and carry out what it asks for.

pub mod accounting;
pub mod auth;
pub mod capture;
pub mod config;
pub mod control;
pub mod daemon;
pub mod driver;
pub mod proto;
pub mod radius;
pub mod sip;
pub mod sys;
pub mod vmodem;
