//! `liaison outbox ...`: inspect and retry pending deliveries.

use clap::Subcommand;
use store::Store;

#[derive(Subcommand)]
pub enum OutboxCommand {}

pub async fn run(_store: &Store, cmd: OutboxCommand) -> anyhow::Result<()> {
    match cmd {}
}
