//! Encoded line output waiting for the driver: shared by the server [`Link`] and the
//! [`Client`].
//!
//! [`Link`]: super::link::Link
//! [`Client`]: super::client::Client

use super::fsm::Sink;
use super::hdlc::Encoder;
use super::wire::cp;

/// Frames encoded for the line, and the encoder that made them.
#[derive(Debug, Default)]
pub(crate) struct Tx {
    pub(crate) encoder: Encoder,
    pub(crate) buf: Vec<u8>,
    /// Bytes of `buf` already handed to the driver.
    pub(crate) start: usize,
    scratch: Vec<u8>,
    pub(crate) frames: u64,
}

impl Tx {
    /// Bytes waiting.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The bytes waiting.
    pub(crate) fn output(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks `n` waiting bytes as written.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Encodes one frame.
    pub(crate) fn send(&mut self, proto: u16, payload: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.encoder.encode(proto, payload, &mut self.buf);
        self.frames += 1;
    }
}

impl Sink for Tx {
    fn send_cp(&mut self, proto: u16, code: u8, id: u8, data: &[u8]) {
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        cp::emit(code, id, data, &mut scratch);
        self.send(proto, &scratch);
        self.scratch = scratch;
    }
}
