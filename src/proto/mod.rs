//! The sans-IO protocol core.
//!
//! Nothing in this module reads the clock, touches a file descriptor, or depends on an async
//! runtime: callers pass `now` in and ask for deadlines out, in the manner of quinn-proto.
//!
//! * [`hdlc`]: RFC 1662 asynchronous HDLC-like framing (flags, escaping, ACCM, FCS).
//! * [`wire`]: zero-copy views and emitters for PPP control packets (RFC 1661, 1332, 1334,
//!   1877, 1994).
//! * [`fsm`]: the RFC 1661 option-negotiation automaton, generic over a [`fsm::Negotiator`].
//! * [`lcp`], [`ipcp`]: the server's option policies.
//! * [`auth`]: PAP and CHAP-MD5 as the authenticator.
//! * [`link`]: the [`link::Link`] object that ties the phases together.
//!
//! # Calling protocol
//!
//! A driver owns one [`link::Link`] per line and, after every input
//! (`handle_serial_input`, `handle_ip_packet`, `handle_timeout`, `handle_auth_result`,
//! `close`), drains the outputs in this order: serial bytes (`serial_output` /
//! `consume_serial_output`), IP packets (`poll_ip_output`), events (`poll_event`), and
//! finally the next deadline (`poll_timeout`).

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod fcs;
pub mod fsm;
pub mod hdlc;
pub mod ipcp;
pub mod lcp;
pub mod link;
pub mod login;
pub mod modem;
pub mod rng;
mod tx;
pub mod wire;

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod architecture {
    //! The sans-IO rule, checked: no file under `src/proto` may use I/O, the clock or tokio
    //! outside its tests.
    use std::path::Path;

    const FORBIDDEN: &[&str] = &[
        "tokio",
        "std::fs",
        "std::net::UdpSocket",
        "std::net::TcpStream",
        "std::process",
        "std::thread",
        "Instant::now",
        "SystemTime::now",
        "libc::",
        "nix::",
    ];

    fn check(dir: &Path, bad: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                check(&path, bad);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs")
                || path.file_name().is_some_and(|n| n == "testing.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Only the code before the test module is checked.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (no, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                for word in FORBIDDEN {
                    if line.contains(word) {
                        bad.push(format!("{}:{}: {}", path.display(), no + 1, word));
                    }
                }
            }
        }
    }

    #[test]
    fn proto_is_sans_io() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/proto");
        let mut bad = Vec::new();
        check(&dir, &mut bad);
        assert!(
            bad.is_empty(),
            "forbidden uses in the sans-IO core:\n{}",
            bad.join("\n")
        );
    }
}
