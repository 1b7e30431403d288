//! Operator commands beyond the server itself, one module each.

pub mod apps;
pub mod console;
pub mod footprint;
pub mod meter;
pub mod outbox;
pub mod site_cmd;
pub mod source;
pub mod sync;
