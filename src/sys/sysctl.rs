//! The sysctls nasd needs: IPv4 forwarding.
//!
//! `/proc/sys/net/...` shows the network namespace of the thread that opens the file, so these
//! act on the caller's namespace.

use std::fs;
use std::io;
use std::path::Path;

/// The IPv4 forwarding switch.
pub const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

fn with_path(e: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {action} {}: {e}", path.display()))
}

/// Reads a sysctl file and returns its value without surrounding whitespace.
pub fn read(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| with_path(e, "read", path))
}

/// Writes `value` to a sysctl file.
pub fn write(path: impl AsRef<Path>, value: &str) -> io::Result<()> {
    let path = path.as_ref();
    fs::write(path, format!("{value}\n")).map_err(|e| with_path(e, "write", path))
}

/// True when IPv4 forwarding is on (`net.ipv4.ip_forward` is not 0).
pub fn ip_forward() -> io::Result<bool> {
    Ok(read(IP_FORWARD)? != "0")
}

/// Turns IPv4 forwarding on (writes 1 to `/proc/sys/net/ipv4/ip_forward`); returns whether
/// this changed anything (false when it was on already).
pub fn enable_ip_forward() -> io::Result<bool> {
    if ip_forward()? {
        return Ok(false);
    }
    write(IP_FORWARD, "1")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let e = read("/proc/sys/net/ipv4/no_such_sysctl").unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot read /proc/sys/net/ipv4/no_such_sysctl"),
            "{e}"
        );
    }

    #[test]
    fn reads_ip_forward() {
        // Whatever the value, it reads as a boolean.
        ip_forward().unwrap();
    }
}
