//! A TUN device (tun-tap) made asynchronous with tokio's `AsyncFd`.
//!
//! tun-tap's own `tokio` feature targets tokio-core 0.1, so the device is opened without it,
//! switched to non-blocking mode and registered with the tokio reactor here.
#![allow(unsafe_code)]

use std::io;
use tokio::io::unix::AsyncFd;
use tun_tap::{Iface, Mode};

/// An asynchronous TUN device carrying bare IP packets (no packet-information header).
#[derive(Debug)]
pub struct Tun {
    fd: AsyncFd<Iface>,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`; `%d` in the name picks a free number.
    pub fn open(name: &str) -> io::Result<Self> {
        let iface = Iface::without_packet_info(name, Mode::Tun).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open TUN device {name} (/dev/net/tun): {e}"),
            )
        })?;
        iface.set_non_blocking()?;
        // SAFETY: `Iface` owns its file descriptor, which stays open for as long as the
        // `AsyncFd` (which owns the `Iface`) is registered: deregistration happens in
        // `AsyncFd`'s drop, before the `Iface` closes the descriptor.
        let fd = unsafe { AsyncFd::register(iface) }?;
        Ok(Self { fd })
    }

    /// The kernel's name of the device.
    pub fn name(&self) -> &str {
        self.fd.get_ref().name()
    }

    /// Receives one packet.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|i| i.get_ref().recv(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one packet.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|i| i.get_ref().send(packet)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}
