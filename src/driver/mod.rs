//! Thin tokio drivers around the sans-IO core: they move bytes between the core and file
//! descriptors and turn deadlines into sleeps. No protocol logic lives here.

pub mod fdline;
pub mod port;
pub mod serial;
pub mod session;
pub mod tun;

/// 32 bytes from the operating system's random source, to seed a link.
pub fn random_seed() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}
