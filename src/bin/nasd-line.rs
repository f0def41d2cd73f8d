//! nasd-line: runs the PPP server on one line (being written).
fn main() {}
