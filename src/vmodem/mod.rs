//! vmodem: a virtual modem pool, the test and demo stand-in for a rack of Hayes modems and
//! the telephone network behind them.
//!
//! # Layering
//!
//! ```text
//!   src/bin/vmodem.rs  -- the command line
//!        |
//!   pool, control, pty, port  -- tokio drivers: pseudo-terminals, Unix sockets, timers
//!        |
//!   switch  -- the network: hunt group, ringing, calls   } sans-IO: bytes, events and
//!   channel -- line rate pacing and noise                } `now` in; bytes, events and
//!   hayes   -- one Hayes modem: AT commands, +++         } deadlines out
//! ```
//!
//! [`hayes`], [`channel`] and [`switch`] (with their submodules) never read a clock, never do I/O and never spawn
//! (a test below enforces it), so every command, result code and timer is tested on a
//! virtual clock. [`pool`] runs them: it holds the pty masters and sockets, feeds bytes and
//! deadlines in and writes what comes out.

#![warn(missing_docs)]

pub mod channel;
pub mod control;
pub mod hayes;
pub mod pool;
pub mod port;
pub mod pty;
pub mod switch;

#[cfg(test)]
mod architecture {
    //! The sans-IO rule, checked for the emulator's core.
    use std::path::Path;

    const FORBIDDEN: &[&str] = &[
        "tokio",
        "std::fs",
        "std::net",
        "std::os",
        "std::process",
        "std::thread",
        "Instant::now",
        "SystemTime",
        "libc::",
        "nix::",
    ];

    #[test]
    fn core_is_sans_io() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/vmodem");
        let mut bad = Vec::new();
        let core = [
            "hayes.rs",
            "hayes/commands.rs",
            "channel.rs",
            "switch.rs",
            "switch/status.rs",
        ];
        for file in core {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (no, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for word in FORBIDDEN {
                    if line.contains(word) {
                        bad.push(format!("{file}:{}: {word}", no + 1));
                    }
                }
            }
        }
        assert!(
            bad.is_empty(),
            "I/O in the sans-IO core:\n{}",
            bad.join("\n")
        );
    }
}
