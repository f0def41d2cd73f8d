//! Property tests: garbage in, no panic, bounded memory. (Being written.)
mod harness;
