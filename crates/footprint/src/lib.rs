//! Carbon footprint of each organisation's share of the hosting.
//!
//! What belongs here: the inventory of servers and sites (TOML, validated), the
//! usage of a period (CSV, or Prometheus' HTTP query API through one small
//! bounded client), the allocation method with its `low`/`central`/`high`
//! ranges, and the reports (JSON, CSV, a printable HTML page in French or
//! English with a chart drawn on the server as SVG). What does not: the store
//! (monthly results are kept by `store::footprint`), configuration files and
//! HTTP routing (the `liaison` binary).
//!
//! The core ([`allocate`]) is pure and takes well under a second for a thousand
//! namespaces on twenty servers. It computes in `f64`: the inputs are physical
//! estimates known to two or three significant digits, spread by ranges of tens
//! of per cent, so exact decimals would add nothing but cost; the only exact
//! property that matters, conservation (the organisations add up to the
//! cluster), holds bound by bound up to floating-point rounding (relative 1e-9),
//! and reports round to the gram.

pub mod allocate;
pub mod chart;
pub mod example;
pub mod i18n;
pub mod inventory;
pub mod period;
pub mod prometheus;
pub mod range;
pub mod report;
pub mod settings;
pub mod usage;

pub use allocate::{allocate, AllocateError, Figures, Footprint, Mapping, OrgFootprint};
pub use inventory::{Inventory, InventoryError};
pub use period::Month;
pub use range::Range;
pub use report::Report;

pub use usage::{Amounts, Consumer, Usage, UsageError};
