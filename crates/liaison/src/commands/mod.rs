//! Operator commands beyond the server itself, one module each.

pub mod apps;
pub mod outbox;
pub mod sync;
