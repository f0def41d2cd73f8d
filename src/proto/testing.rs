//! Test support (being written)
