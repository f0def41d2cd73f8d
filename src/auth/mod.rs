//! Deciding who may dial in: the pppd-compatible secrets file (more backends later).

pub mod limiter;
pub mod pam;
pub mod secrets;
