//! `liaison`: the server (`serve`, `demo`) and the operator's command line
//! (`migrate`, `org`, `token`).
//!
//! This crate stays thin: configuration, wiring and HTTP mapping. The SCIM rules
//! live in `directory` and `scim`, the state in `store`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod http;
pub mod metrics;
pub mod tokens;
