//! PAM for PAP: being written.
