//! Thin tokio drivers around the sans-IO core (being written).
