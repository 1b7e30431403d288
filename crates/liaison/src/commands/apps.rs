//! `liaison app add|list|remove`: the apps an organisation is provisioned into.

use clap::Subcommand;
use store::Store;

#[derive(Subcommand)]
pub enum AppCommand {}

pub async fn run(_store: &Store, cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {}
}
