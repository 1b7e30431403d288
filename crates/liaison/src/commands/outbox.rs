//! `liaison outbox list|retry`: inspect pending deliveries and revive poisoned ones.

use super::apps::print_table;
use clap::Subcommand;
use service::outbox::{self, Filter};
use store::Store;

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Lists the deliveries waiting for an organisation's apps, oldest first.
    List {
        /// The organisation's slug.
        org: String,
        /// Only deliveries parked as poison (they wait for `outbox retry`).
        #[arg(long)]
        poisoned: bool,
        /// Only this app's deliveries.
        #[arg(long)]
        app: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Makes poisoned deliveries due again and prints how many.
    Retry {
        /// The organisation's slug.
        org: String,
        /// Only this app's deliveries.
        #[arg(long)]
        app: Option<String>,
    },
}

pub async fn run(store: &Store, cmd: OutboxCommand) -> anyhow::Result<()> {
    match cmd {
        OutboxCommand::List {
            org,
            poisoned,
            app,
            limit,
        } => {
            let org = service::orgs::find(store, &org).await?;
            let rows = outbox::list(
                store,
                &org,
                &Filter {
                    poisoned,
                    app,
                    limit,
                },
            )
            .await?;
            if rows.is_empty() {
                println!("nothing waiting for {}", org.slug);
                return Ok(());
            }
            let rows: Vec<[String; 8]> = rows
                .into_iter()
                .map(|d| {
                    [
                        d.app,
                        d.target.to_owned(),
                        d.resource_id,
                        d.member_id.unwrap_or_default(),
                        if d.poisoned { "poison" } else { "pending" }.to_owned(),
                        d.attempts.to_string(),
                        d.next_attempt,
                        d.last_error
                            .map(|e| e.replace(['\n', '\r', '\t'], " "))
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "APP",
                    "TARGET",
                    "RESOURCE",
                    "MEMBER",
                    "STATE",
                    "ATTEMPTS",
                    "NEXT ATTEMPT",
                    "LAST ERROR",
                ],
                &rows,
            );
        }
        OutboxCommand::Retry { org, app } => {
            let org = service::orgs::find(store, &org).await?;
            let n = outbox::retry(store, &org, app.as_deref()).await?;
            println!("{n} poisoned deliveries made due again");
        }
    }
    Ok(())
}
