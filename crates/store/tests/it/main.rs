//! Integration tests of the store, run on SQLite and (when configured) PostgreSQL
//! through `store::testing::for_each_store`.

mod apps;
mod common;
mod console;
mod filters;
mod footprint;
mod members;
mod metering;
mod orgs;
mod perf;
mod resources;
mod sources;
mod values;
