//! `liaison source ...` and the rules the admin API shares with it: an
//! organisation's directory source (a Keycloak realm), its configuration, its
//! state, and a full reconciliation on demand.
//!
//! One source of truth per organisation: while a source is configured, SCIM
//! writes are refused (403, `crate::http::source`); and a source is only added
//! to an organisation whose directory is empty, unless the caller asks for
//! adoption, whose first reconciliation takes over the users and groups the
//! directory holds (matched by externalId, then by userName or group name) and
//! deletes the others. An empty directory is the only sign that no SCIM client
//! wrote there that cannot be forged or forgotten: tokens are also used for
//! the admin API, and a source removed and added again finds the directory it
//! left (hence `--adopt`).

use crate::commands::apps::{self, AppError, Caller, NewApp};
use crate::commands::sync::Format;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use directory::Directory;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::Path;
use store::{Org, Source, SourceRecord, Store, StoreError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Default seconds between full reconciliations.
pub const DEFAULT_INTERVAL_SECS: u64 = 3600;
const MIN_INTERVAL_SECS: u64 = 60;
const MAX_INTERVAL_SECS: u64 = 7 * 24 * 3600;

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
    credential_file: Option<String>,
    /// An environment variable of the server holding the client secret.
    #[arg(long)]
    credential_env: Option<String>,
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

/// A source as the admin API receives it (`PUT /o/{org}/admin/source`) and the
/// command line builds it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// `keycloak`.
    pub kind: String,
    pub url: String,
    pub realm: String,
    pub client_id: String,
    #[serde(default)]
    pub credential_file: Option<String>,
    #[serde(default)]
    pub credential_env: Option<String>,
    #[serde(default)]
    pub interval_secs: Option<u64>,
    /// Adding only: take over the resources the directory holds.
    #[serde(default)]
    pub adopt: bool,
}

/// Where following a source stands.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStateView {
    /// RFC 3339 times; null until it happened.
    pub last_full_sync: Option<String>,
    pub last_follow: Option<String>,
    /// Keycloak time of the last admin event and user event taken into account.
    pub admin_events_until: Option<String>,
    pub user_events_until: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// Users and groups in the realm at the last full reconciliation.
    pub realm_users: Option<i64>,
    pub realm_groups: Option<i64>,
    /// Directory changes applied from the source since it was added.
    pub applied_changes: i64,
    /// A full reconciliation is pending (asked for, or the first one).
    pub full_sync_pending: bool,
    /// The first reconciliation will adopt the directory's resources.
    pub adopt_pending: bool,
}

/// A source with its state (`GET /o/{org}/admin/source`).
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub kind: String,
    pub url: String,
    pub realm: String,
    pub client_id: String,
    /// `file:PATH` or `env:VAR`.
    pub credential: String,
    pub interval_secs: i64,
    pub created: String,
    pub state: SourceStateView,
}

/// The answer to a `PUT`: the source, whether it was created, and warnings.
#[derive(Debug, Clone, Serialize)]
pub struct PutOutcome {
    #[serde(flatten)]
    pub source: SourceView,
    #[serde(skip)]
    pub created: bool,
    pub warnings: Vec<String>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn ms_time(ms: Option<i64>) -> Option<String> {
    ms.and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .map(rfc3339)
}

impl From<&Source> for SourceView {
    fn from(s: &Source) -> Self {
        let st = &s.state;
        SourceView {
            kind: s.config.kind.clone(),
            url: s.config.base_url.clone(),
            realm: s.config.realm.clone(),
            client_id: s.config.client_id.clone(),
            credential: s.config.credential.clone(),
            interval_secs: s.config.interval_secs,
            created: rfc3339(s.config.created),
            state: SourceStateView {
                last_full_sync: st.last_full_sync.map(rfc3339),
                last_follow: st.last_follow.map(rfc3339),
                admin_events_until: ms_time(st.admin_cursor),
                user_events_until: ms_time(st.event_cursor),
                last_error: st.last_error.clone(),
                last_error_at: st.last_error_at.map(rfc3339),
                realm_users: st.realm_users,
                realm_groups: st.realm_groups,
                applied_changes: st.applied,
                full_sync_pending: st.full_sync_requested,
                adopt_pending: s.config.adopt,
            },
        }
    }
}

fn text_ok(s: &str, what: &str) -> Result<(), AppError> {
    if s.trim().is_empty() || s.chars().count() > 255 || s.chars().any(char::is_control) {
        return Err(AppError::Invalid(format!(
            "{what} must be 1 to 255 characters without control characters"
        )));
    }
    Ok(())
}

/// Checks a request and turns it into the record to store.
fn validate(
    org: &Org,
    req: &SourceRequest,
    warnings: &mut Vec<String>,
) -> Result<SourceRecord, AppError> {
    if req.kind != "keycloak" {
        return Err(AppError::Invalid(format!(
            "unknown source kind {:?}: the one kind is keycloak",
            req.kind
        )));
    }
    let url = reqwest::Url::parse(req.url.trim())
        .map_err(|e| AppError::Invalid(format!("url {:?}: {e}", req.url)))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(AppError::Invalid(
            "url must be http(s)://host[:port][/path], without credentials, query or fragment"
                .into(),
        ));
    }
    if url.path().contains("/realms/") {
        return Err(AppError::Invalid(
            "url is Keycloak's base URL, without /realms/<realm> (the realm is its own field)"
                .into(),
        ));
    }
    text_ok(&req.realm, "realm")?;
    if req.realm.contains('/') {
        return Err(AppError::Invalid("realm must not contain '/'".into()));
    }
    text_ok(&req.client_id, "client_id")?;
    let interval = req.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS);
    if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&interval) {
        return Err(AppError::Invalid(format!(
            "interval_secs must be between {MIN_INTERVAL_SECS} and {MAX_INTERVAL_SECS}"
        )));
    }
    let credential =
        match (&req.credential_file, &req.credential_env) {
            (Some(path), None) => {
                let absolute = std::path::absolute(Path::new(path))
                    .map_err(|e| AppError::Invalid(format!("credential file {path}: {e}")))?;
                let secret = std::fs::read_to_string(&absolute).map_err(|e| {
                    AppError::Invalid(format!(
                        "cannot read the credential file {}: {e}",
                        absolute.display()
                    ))
                })?;
                if secret.trim().is_empty() {
                    return Err(AppError::Invalid(format!(
                        "the credential file {} is empty",
                        absolute.display()
                    )));
                }
                format!("file:{}", absolute.display())
            }
            (None, Some(var)) => {
                let valid = !var.is_empty()
                    && var.len() <= 128
                    && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !var.as_bytes()[0].is_ascii_digit();
                if !valid {
                    return Err(AppError::Invalid(format!(
                        "credential_env {var:?} is not a variable name"
                    )));
                }
                if std::env::var(var).map_or(true, |v| v.trim().is_empty()) {
                    warnings.push(format!(
                        "the variable {var} is not set here; the server reads it from its own \
                     environment and must have it (the client secret)"
                    ));
                }
                format!("env:{var}")
            }
            (Some(_), Some(_)) => {
                return Err(AppError::Invalid(
                    "give either credential_file or credential_env, not both".into(),
                ))
            }
            (None, None) => return Err(AppError::Invalid(
                "a credential is required: credential_file or credential_env (the client secret)"
                    .into(),
            )),
        };
    Ok(SourceRecord {
        org_id: org.id,
        kind: req.kind.clone(),
        base_url: url.as_str().trim_end_matches('/').to_owned(),
        realm: req.realm.clone(),
        client_id: req.client_id.clone(),
        credential,
        interval_secs: interval as i64,
        adopt: req.adopt,
        created: OffsetDateTime::now_utc(),
    })
}

/// Adds the organisation's source, or (`replace`) changes the one it has.
/// Adding is refused while the directory holds users or groups, unless
/// `adopt`.
pub async fn put(
    store: &Store,
    org: &Org,
    req: &SourceRequest,
    caller: Caller,
    replace: bool,
) -> Result<PutOutcome, AppError> {
    let probe = NewApp {
        credential_file: req.credential_file.clone(),
        credential_env: req.credential_env.clone(),
        ..NewApp::default()
    };
    apps::check_caller(caller, org, &probe)?;
    let mut warnings = Vec::new();
    let record = validate(org, req, &mut warnings)?;
    let mut tx = store.begin().await?;
    let existing = store.source(org.id).await?;
    let created = match existing {
        Some(_) if !replace => {
            return Err(AppError::Conflict(format!(
            "{} already has a source; remove it first, or change it with PUT /o/{}/admin/source",
            org.slug, org.slug
        )))
        }
        Some(_) => {
            tx.update_source(&record).await?;
            false
        }
        None => {
            let (users, groups) = tx.count_resources(org.id).await?;
            if (users > 0 || groups > 0) && !req.adopt {
                return Err(AppError::Conflict(format!(
                    "the directory of {} holds {users} user(s) and {groups} group(s) written over SCIM \
                     (or by an earlier source); a source is the organisation's only source of truth. \
                     Delete them, or add the source with adoption (--adopt, \"adopt\": true): its first \
                     reconciliation matches them by externalId, then by userName or group name, and \
                     deletes the others",
                    org.slug
                )));
            }
            match tx.insert_source(&record).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    return Err(AppError::Conflict(format!(
                        "{} already has a source",
                        org.slug
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            true
        }
    };
    tx.commit().await?;
    let source = store
        .source(org.id)
        .await?
        .ok_or_else(|| AppError::NotFound("the source vanished".into()))?;
    Ok(PutOutcome {
        source: SourceView::from(&source),
        created,
        warnings,
    })
}

/// The organisation's source with its state.
pub async fn get(store: &Store, org: &Org) -> Result<SourceView, AppError> {
    store
        .source(org.id)
        .await?
        .map(|s| SourceView::from(&s))
        .ok_or_else(|| AppError::NotFound(format!("{} has no source", org.slug)))
}

/// Removes the organisation's source.
pub async fn remove(store: &Store, org: &Org) -> Result<(), AppError> {
    let mut tx = store.begin().await?;
    if !tx.delete_source(org.id).await? {
        return Err(AppError::NotFound(format!("{} has no source", org.slug)));
    }
    tx.commit().await?;
    Ok(())
}

/// Asks the server's follower for a full reconciliation at its next turn.
pub async fn request_sync(store: &Store, org: &Org) -> Result<(), AppError> {
    if store.request_full_sync(org.id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("{} has no source", org.slug)))
    }
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
            let req = SourceRequest {
                kind: match a.kind {
                    KindArg::Keycloak => "keycloak".into(),
                },
                url: a.url,
                realm: a.realm,
                client_id: a.client_id,
                credential_file: a.credential_file,
                credential_env: a.credential_env,
                interval_secs: Some(a.interval),
                adopt: a.adopt,
            };
            let out = put(store, &org, &req, Caller::Operator, false).await?;
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
            remove(store, &org).await?;
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
