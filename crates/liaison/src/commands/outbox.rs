//! `liaison outbox list|retry`: inspect pending deliveries and revive poisoned ones.

use super::apps::{self, print_table};
use clap::Subcommand;
use store::Store;
use time::format_description::well_known::Rfc3339;

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
            let org = find_org(store, &org).await?;
            let app_id = match &app {
                Some(name) => Some(
                    store
                        .app_by_name(org.id, name)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no app named {name} in {}", org.slug))?
                        .id,
                ),
                None => None,
            };
            let rows = store
                .outbox_rows(org.id, app_id, poisoned, limit.max(1))
                .await?;
            if rows.is_empty() {
                println!("nothing waiting for {}", org.slug);
                return Ok(());
            }
            let rows: Vec<[String; 8]> = rows
                .into_iter()
                .map(|r| {
                    let d = r.delivery;
                    [
                        r.app_name,
                        d.target.as_str().to_owned(),
                        d.resource_id,
                        d.member_id,
                        if d.poisoned { "poison" } else { "pending" }.to_owned(),
                        d.attempts.to_string(),
                        d.next_attempt.format(&Rfc3339).unwrap_or_default(),
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
            let org = find_org(store, &org).await?;
            let n = apps::retry(store, &org, app.as_deref()).await?;
            println!("{n} poisoned deliveries made due again");
        }
    }
    Ok(())
}

async fn find_org(store: &Store, slug: &str) -> anyhow::Result<store::Org> {
    store
        .org_by_slug(slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no organisation {slug}"))
}
