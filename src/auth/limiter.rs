//! Brute-force protection: being written.
