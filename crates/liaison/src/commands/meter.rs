//! `liaison meter`: webhook secrets, polling, closing periods, statements and
//! invoice export.

use crate::config::Config;
use crate::metering::Metering;
use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use meter::period::{Period, PeriodKind};
use meter::statement::{to_csv, to_html, Statement};
use rand::RngCore;
use std::path::PathBuf;
use store::{Org, Store};
use time::OffsetDateTime;

#[derive(Subcommand)]
pub enum MeterCommand {
    /// Sets a new random webhook secret for the organisation's identity-provider
    /// events and prints it alone on the last line (the previous one stops
    /// working).
    WebhookSecret { org: String },
    /// Polls every app's last-activity fields once and records who was active.
    Poll,
    /// Closes a period: keeps the counts, destroys the period key and every
    /// keyed hash. Closes every organisation's period unless --org is given.
    Close {
        /// The period, e.g. 2026-11 (or 2026-W48, 2026-11-25 for weekly and
        /// daily periods), or `previous`: the last period that has ended.
        #[arg(long)]
        period: String,
        #[arg(long)]
        org: Option<String>,
        /// Closes a period that has not ended yet.
        #[arg(long)]
        force: bool,
    },
    /// Prints the statements of a period (open periods show live counts,
    /// marked `closed: false`).
    Report {
        /// The period's label, or `previous`.
        #[arg(long)]
        period: String,
        #[arg(long)]
        org: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Writes to this file (HTML: a directory, one page per organisation)
        /// instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Exports a draft invoice per organisation to Dokos for a closed period
    /// (once: an exported period is skipped).
    Invoice {
        /// The period's label, or `previous` (for a monthly scheduled job).
        #[arg(long)]
        period: String,
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Html,
}

async fn org_opt(store: &Store, slug: Option<&str>) -> anyhow::Result<Option<Org>> {
    match slug {
        Some(s) => Ok(Some(
            store
                .org_by_slug(s)
                .await?
                .with_context(|| format!("no organisation {s}"))?,
        )),
        None => Ok(None),
    }
}

/// The period a command names: a label, or `previous` (for scheduled jobs,
/// e.g. a monthly invoice export).
fn named_period(
    metering: &Metering,
    config: &Config,
    label: &str,
    now: OffsetDateTime,
) -> anyhow::Result<Period> {
    if label == "previous" {
        return previous_period(config.metering.period, now);
    }
    Ok(metering.period(label)?)
}

/// The last period of `kind` that has ended at `now`.
fn previous_period(kind: PeriodKind, now: OffsetDateTime) -> anyhow::Result<Period> {
    let current = Period::containing_date(kind, now.date())?;
    let last_day = current
        .start()
        .previous_day()
        .context("no period before the first")?;
    Ok(Period::containing_date(kind, last_day)?)
}

/// A new webhook secret: 32 random bytes, hex.
pub fn new_webhook_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub async fn run(store: &Store, config: &Config, cmd: MeterCommand) -> anyhow::Result<()> {
    let metering = Metering::new(
        store.clone(),
        config.metering.clone(),
        config.pricing(),
        crate::metering::load_kek(config)?,
    );
    // Keys stored in clear by an earlier version are sealed; without a
    // key-encryption key, commands that need none (close, report) still run.
    match metering.seal_clear_keys().await {
        Ok(0) => {}
        Ok(n) => eprintln!("{n} period keys stored in clear were sealed"),
        Err(e) => eprintln!("warning: {e}"),
    }
    let now = OffsetDateTime::now_utc();
    match cmd {
        MeterCommand::WebhookSecret { org } => {
            let org = org_opt(store, Some(&org)).await?.expect("some");
            let secret = new_webhook_secret();
            store.set_webhook_secret(org.id, secret.as_bytes()).await?;
            println!(
                "webhook secret for {} (POST /o/{}/events/keycloak; keep it secret):",
                org.slug, org.slug
            );
            println!("{secret}");
        }
        MeterCommand::Poll => {
            let r = metering.poll(now).await?;
            println!(
                "polled {} apps: {} recorded, {} already seen, {} late",
                r.apps, r.ingested.recorded, r.ingested.repeated, r.ingested.late
            );
            for f in &r.failed {
                eprintln!("failed: {f}");
            }
            if !r.failed.is_empty() {
                bail!("{} apps could not be polled", r.failed.len());
            }
        }
        MeterCommand::Close { period, org, force } => {
            let period = named_period(&metering, config, &period, now)?;
            let org = org_opt(store, org.as_deref()).await?;
            for (o, counts) in metering.close(&period, org.as_ref(), force, now).await? {
                let per: Vec<String> = counts
                    .per_source
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "{}\t{}\t{} active accounts{}\t{}",
                    o.slug,
                    period.label(),
                    counts.total,
                    if counts.already_closed {
                        " (already closed)"
                    } else {
                        ""
                    },
                    per.join(" ")
                );
            }
        }
        MeterCommand::Report {
            period,
            org,
            format,
            output,
        } => {
            let period = named_period(&metering, config, &period, now)?;
            let org = org_opt(store, org.as_deref()).await?;
            let statements = metering.statements(&period, org.as_ref()).await?;
            write_report(&statements, format, output.as_deref())?;
        }
        MeterCommand::Invoice { period, org } => {
            let Some(settings) = &config.dokos else {
                bail!("no [dokos] section in the configuration");
            };
            let period = named_period(&metering, config, &period, now)?;
            let org = org_opt(store, org.as_deref()).await?;
            for (slug, name, created) in metering
                .export_dokos(settings, &period, org.as_ref())
                .await?
            {
                let what = if created {
                    "created"
                } else {
                    "already exported"
                };
                println!("{slug}\t{}\t{name}\t{what}", period.label());
            }
        }
    }
    Ok(())
}

fn write_report(
    statements: &[Statement],
    format: Format,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(statements)? + "\n";
            emit(output, &text)
        }
        Format::Csv => emit(output, &to_csv(statements)),
        Format::Html => match output {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                for st in statements {
                    let path = dir.join(format!("{}-{}.html", st.org, st.period));
                    std::fs::write(&path, to_html(st))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("{}", path.display());
                }
                Ok(())
            }
            None => {
                if statements.len() != 1 {
                    bail!("HTML to standard output needs --org (one page); or give --output DIR");
                }
                emit(None, &to_html(&statements[0]))
            }
        },
    }
}

fn emit(output: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn previous(kind: PeriodKind, now: OffsetDateTime) -> String {
        previous_period(kind, now).expect("a period").label()
    }

    #[test]
    fn previous_is_the_last_period_that_ended() {
        let now = datetime!(2026-01-01 00:30 UTC);
        assert_eq!(previous(PeriodKind::Month, now), "2025-12");
        assert_eq!(previous(PeriodKind::Day, now), "2025-12-31");
        // 2026-01-01 is the Thursday of ISO week 2026-W01; the week before is 2025-W52.
        assert_eq!(previous(PeriodKind::Week, now), "2025-W52");
        let now = datetime!(2026-11-05 06:00 UTC);
        assert_eq!(previous(PeriodKind::Month, now), "2026-10");
    }
}
