//! Shared helpers for the netns integration tests.

pub mod netns;
pub mod uml;
pub mod vmodem;
