//! `liaison`: the server (`serve`, `demo`), the error pages (`pages`) and the
//! operator's command line (`migrate`, `org`, `token`, `app`, `sync`, `meter`,
//! `domain`, `maintenance`...).
//!
//! This crate stays thin: configuration, wiring and HTTP mapping. The SCIM rules
//! live in `directory` and `scim`, the state in `store`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod http;
pub mod metering;
pub mod metrics;
