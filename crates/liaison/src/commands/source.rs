//! `liaison source ...`: an organisation's directory source (a Keycloak realm).
//! The rules are [`service::source`]'s; this module maps arguments, runs a
//! full reconciliation with a progress bar, and prints.

use crate::commands::sync::Format;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use directory::Directory;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use service::source::DEFAULT_INTERVAL_SECS;
use service::source::{SourceRequest, SourceView};
use service::types::{EnvVar, FilePath};
use service::Caller;
use std::io::IsTerminal;
use store::{Org, Store};

#[derive(Subcommand)]
pub enum SourceCommand {
    /// Takes the organisation's users and groups from an identity provider
    /// (refused while the directory holds resources, unless --adopt).
    Add(AddArgs),
    /// Shows the organisation's source and where following it stands.
    List {
        /// The organisation's slug.
        org: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Stops taking the organisation's directory from its source (the users
    /// and groups stay; SCIM writes are accepted again).
    Remove {
        /// The organisation's slug.
        org: String,
    },
    /// Reconciles the directory with the realm now: reads every user, group
    /// and membership and applies the difference. Exit code 0 when the
    /// directory matches the realm.
    Sync(SyncArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Keycloak,
}

#[derive(Args)]
pub struct AddArgs {
    /// The organisation's slug.
    org: String,
    #[arg(value_enum)]
    kind: KindArg,
    /// Keycloak's base URL (`https://sso.example.org`, without `/realms/...`).
    #[arg(long)]
    url: String,
    #[arg(long)]
    realm: String,
    /// The confidential client with a service account (client credentials)
    /// holding realm-management's query-users, query-groups, view-users and
    /// view-events.
    #[arg(long)]
    client_id: String,
    /// A file holding the client secret (read by the server when it runs).
    #[arg(
        long,
        conflicts_with = "credential_env",
        required_unless_present = "credential_env"
    )]
    credential_file: Option<std::path::PathBuf>,
    /// An environment variable of the server holding the client secret.
    #[arg(long, value_parser = EnvVar::parse)]
    credential_env: Option<EnvVar>,
    /// Seconds between two full reconciliations (events are followed in between).
    #[arg(long, default_value_t = DEFAULT_INTERVAL_SECS)]
    interval: u64,
    /// Take over the users and groups the directory already holds: matched by
    /// externalId (Keycloak's id), then by userName or group name; the others
    /// are deleted by the first reconciliation.
    #[arg(long)]
    adopt: bool,
}

#[derive(Args)]
pub struct SyncArgs {
    /// The organisation's slug.
    org: String,
    /// Report the difference, change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs a `liaison source` command. Returns the exit code.
pub async fn run(
    store: &Store,
    directory: Directory,
    cmd: SourceCommand,
) -> anyhow::Result<std::process::ExitCode> {
    let org_of = |slug: String| async move {
        store
            .org_by_slug(&slug)
            .await?
            .with_context(|| format!("no organisation {slug}"))
    };
    match cmd {
        SourceCommand::Add(a) => {
            let org = org_of(a.org.clone()).await?;
            let credential_file = match &a.credential_file {
                Some(path) => Some(
                    FilePath::parse(&std::path::absolute(path)?.to_string_lossy())
                        .map_err(anyhow::Error::msg)?,
                ),
                None => None,
            };
            let req = SourceRequest {
                kind: match a.kind {
                    KindArg::Keycloak => "keycloak".into(),
                },
                url: a.url,
                realm: a.realm,
                client_id: a.client_id,
                credential_file,
                credential_env: a.credential_env,
                interval_secs: Some(a.interval),
                adopt: a.adopt,
            };
            let out = service::source::put(store, &org, &req, Caller::Operator, false).await?;
            for w in &out.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{} now takes its users and groups from Keycloak realm {} at {}; `liaison serve` \
                 reconciles it at once, then follows its events (or run `liaison source sync {}`)",
                org.slug, out.source.realm, out.source.url, org.slug
            );
        }
        SourceCommand::List { org, format } => {
            let org = org_of(org).await?;
            let view = store.source(org.id).await?.map(|s| SourceView::from(&s));
            match (format, view) {
                (Format::Json, v) => println!("{}", serde_json::to_string_pretty(&v)?),
                (Format::Text, None) => println!("{} has no source", org.slug),
                (Format::Text, Some(v)) => print_view(&org, &v),
            }
        }
        SourceCommand::Remove { org } => {
            let org = org_of(org).await?;
            service::source::remove(store, &org).await?;
            println!(
                "{} no longer takes its directory from a source; its users and groups stay, \
                 SCIM writes are accepted again",
                org.slug
            );
        }
        SourceCommand::Sync(args) => return sync(store, directory, args).await,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn print_view(org: &Org, v: &SourceView) {
    let s = &v.state;
    let or_never = |t: &Option<String>| t.clone().unwrap_or_else(|| "never".into());
    println!("organisation:     {}", org.slug);
    println!(
        "source:           {} realm {} at {}",
        v.kind, v.realm, v.url
    );
    println!(
        "client:           {} (secret from {})",
        v.client_id, v.credential
    );
    println!("full sync every:  {} s", v.interval_secs);
    println!("last full sync:   {}", or_never(&s.last_full_sync));
    println!("last follow:      {}", or_never(&s.last_follow));
    println!(
        "events until:     admin {}, user {}",
        or_never(&s.admin_events_until),
        or_never(&s.user_events_until)
    );
    if let (Some(u), Some(g)) = (s.realm_users, s.realm_groups) {
        println!("realm:            {u} user(s), {g} group(s)");
    }
    println!("changes applied:  {}", s.applied_changes);
    if s.full_sync_pending {
        println!("pending:          a full reconciliation");
    }
    if let Some(e) = &s.last_error {
        println!(
            "last error:       {e} ({})",
            s.last_error_at.clone().unwrap_or_default()
        );
    }
}

async fn sync(
    store: &Store,
    directory: Directory,
    args: SyncArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let org = store
        .org_by_slug(&args.org)
        .await?
        .with_context(|| format!("no organisation {}", args.org))?;
    let source = store
        .source(org.id)
        .await?
        .with_context(|| format!("{} has no source (liaison source add)", org.slug))?;
    let runner = source::Runner::new(directory, source::SourceMetrics::default());
    let bar = ProgressBar::new(0);
    if args.format == Format::Json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else if let Ok(style) =
        ProgressStyle::with_template("{spinner} {prefix:>12} {wide_bar} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    let progress = |p: source::Progress| match p {
        source::Progress::Users(n) => {
            bar.set_prefix("users");
            bar.set_length(n as u64);
            bar.set_position(n as u64);
        }
        source::Progress::Groups(n) => {
            bar.set_prefix("groups");
            bar.set_length(n as u64);
            bar.set_position(n as u64);
        }
        source::Progress::Members { done, total } => {
            bar.set_prefix("members");
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        source::Progress::Apply { done, total } => {
            bar.set_prefix("applying");
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    // On PostgreSQL the server's follower holds the source's lock while it
    // runs: a reconciliation that writes waits for it (a dry run only reads).
    let lock = if args.dry_run {
        None
    } else {
        Some(wait_for_lock(store, org.id).await?)
    };
    let report = runner.full_sync(&source, args.dry_run, &progress).await;
    bar.finish_and_clear();
    if let Some(lock) = lock {
        lock.release().await?;
    }
    let report = report?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_report(&org, &report),
    }
    Ok(if report.in_sync() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// Takes the source's advisory lock, waiting up to two minutes for a running
/// follower to finish.
async fn wait_for_lock(store: &Store, org_id: i64) -> anyhow::Result<store::AdvisoryLock> {
    for attempt in 0..240 {
        if let Some(lock) = store
            .try_advisory_lock(source::runner::lock_key(org_id))
            .await?
        {
            return Ok(lock);
        }
        if attempt == 0 {
            eprintln!("waiting for the server's follower to finish its run of this source");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    anyhow::bail!("another process kept following this source for two minutes; try again later")
}

fn print_report(org: &Org, r: &source::Report) {
    println!(
        "{}: realm has {} user(s) and {} group(s); {} difference(s){}",
        org.slug,
        r.realm_users,
        r.realm_groups,
        r.changes.len(),
        if r.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    for c in &r.changes {
        let op = match c.op {
            source::Op::Create => "create",
            source::Op::Update => "update",
            source::Op::Delete => "delete",
        };
        let fields = if c.fields.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.fields.join(", "))
        };
        println!("  {op:<6} {:<5} {}{fields}", c.kind, c.name);
    }
    for s in &r.skipped {
        println!(
            "  skipped {}: {}",
            s.id.as_deref().unwrap_or("(no id)"),
            s.reason
        );
    }
    for e in &r.errors {
        println!("  error: {e}");
    }
    if !r.dry_run {
        println!("applied {} change(s)", r.applied);
    }
}
