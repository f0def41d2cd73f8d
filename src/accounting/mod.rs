//! Durable accounting: being written.
