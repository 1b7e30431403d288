//! `liaison sync <org>`: reconciliation of the apps with the directory.

use clap::Args;
use store::Store;

#[derive(Args)]
pub struct SyncArgs {}

/// Returns the process exit code.
pub async fn run(_store: &Store, _args: SyncArgs) -> anyhow::Result<std::process::ExitCode> {
    Ok(std::process::ExitCode::SUCCESS)
}
