//! Shared helpers for the netns integration tests.

pub mod freeradius;
pub mod netns;
pub mod topology;
pub mod uml;
pub mod vmodem;
