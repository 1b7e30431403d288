//! `liaison app add|list|remove`: the apps an organisation is provisioned into.
//!
//! The validation and storage of an app, and the provisioning state of a
//! resource, live here once and serve both the command line and the admin API
//! (`http::admin`). A credential is stored as where to find it (`file:PATH` or
//! `env:VAR`), never as the secret, and the secret is never printed.

use axum::http::Uri;
use clap::{Args, Subcommand, ValueEnum};
use provision::AppKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;
use store::{AppRecord, Org, Store, StoreError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Subcommand)]
pub enum AppCommand {
    /// Adds an app to an organisation and enqueues the delivery of every user
    /// and group the organisation has.
    Add(AddArgs),
    /// Lists the apps of an organisation with their outbox counts.
    List {
        /// The organisation's slug.
        org: String,
    },
    /// Removes an app, with its pending deliveries and what Liaison knows it holds.
    /// Nothing is removed from the app itself.
    Remove {
        /// The organisation's slug.
        org: String,
        /// The app's name.
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KindArg {
    Synapse,
    Nextcloud,
    Rocketchat,
    Scim,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GroupsAsArg {
    Groups,
    Rooms,
    Spaces,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DeprovisionArg {
    Disable,
    Delete,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("credential").required(true))]
pub struct AddArgs {
    /// The organisation's slug.
    pub org: String,
    /// The kind of app.
    #[arg(value_enum)]
    pub kind: KindArg,
    /// The app's base URL (http or https).
    #[arg(long)]
    pub url: String,
    /// A file holding the credential (synapse: an admin access token; nextcloud:
    /// user:app-password; rocketchat: user-id:token; scim: a bearer token).
    #[arg(long, group = "credential")]
    pub credential_file: Option<String>,
    /// An environment variable of the server holding the credential.
    #[arg(long, group = "credential")]
    pub credential_env: Option<String>,
    /// The app's name in the organisation (default: the kind).
    #[arg(long)]
    pub name: Option<String>,
    /// What groups become (default per kind: synapse rooms, nextcloud groups,
    /// rocketchat rooms, scim groups).
    #[arg(long, value_enum)]
    pub groups_as: Option<GroupsAsArg>,
    /// What happens to a user deleted from the directory.
    #[arg(long, value_enum, default_value = "disable")]
    pub deprovision: DeprovisionArg,
    /// Synapse: the homeserver's server_name (required).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Synapse: the auth_provider of the external id linking accounts.
    #[arg(long)]
    pub auth_provider: Option<String>,
    /// Nextcloud: the quota of new accounts (e.g. `5 GB`).
    #[arg(long)]
    pub quota: Option<String>,
    /// SCIM: replace resources with PUT instead of PATCH.
    #[arg(long)]
    pub no_patch: bool,
}

/// An app to add, as the admin API receives it and the CLI builds it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    #[serde(default)]
    pub credential_file: Option<String>,
    #[serde(default)]
    pub credential_env: Option<String>,
    #[serde(default)]
    pub groups_as: Option<String>,
    #[serde(default)]
    pub deprovision: Option<String>,
    #[serde(default)]
    pub settings: Map<String, Value>,
}

/// Why an app operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is not acceptable (bad kind, URL, credential...).
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this (an organisation's token choosing a
    /// credential source outside the organisation's namespace).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An app that was added.
#[derive(Debug, Clone)]
pub struct Added {
    pub app: AppRecord,
    /// Deliveries enqueued for the initial provisioning.
    pub enqueued: u64,
    /// Things to check that did not prevent the addition.
    pub warnings: Vec<String>,
}

/// What the default `groups_as` of a kind is, and which values it accepts.
fn groups_as_of(kind: AppKind) -> (&'static str, &'static [&'static str]) {
    match kind {
        AppKind::Synapse => ("rooms", &["rooms", "spaces", "none"]),
        AppKind::Nextcloud => ("groups", &["groups", "none"]),
        AppKind::Rocketchat => ("rooms", &["rooms", "spaces", "none"]),
        AppKind::Scim => ("groups", &["groups", "none"]),
    }
}

fn credential_shape(kind: AppKind) -> &'static str {
    match kind {
        AppKind::Synapse => "an admin access token",
        AppKind::Nextcloud => "user:app-password",
        AppKind::Rocketchat => "user-id:token",
        AppKind::Scim => "a bearer token",
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn valid_env_var(var: &str) -> bool {
    let mut bytes = var.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_url(url: &str) -> Result<String, AppError> {
    let bad = || AppError::Invalid(format!("url {url:?} is not an absolute http(s) URL"));
    let uri: Uri = url.parse().map_err(|_| bad())?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(bad()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Checks a secret's form without ever putting it in a message.
fn check_secret(kind: AppKind, secret: &str, source: &str) -> Result<(), AppError> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(AppError::Invalid(format!(
            "the credential in {source} is empty"
        )));
    }
    let pair = matches!(kind, AppKind::Nextcloud | AppKind::Rocketchat);
    if pair
        && !secret
            .split_once(':')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
    {
        return Err(AppError::Invalid(format!(
            "the credential in {source} must be {} for a {} app",
            credential_shape(kind),
            kind.as_str()
        )));
    }
    Ok(())
}

/// Checks the credential source now: a file must exist and hold a credential of
/// the right form; an unset variable only warns (the server reads it in its
/// own environment).
fn check_credential(
    kind: AppKind,
    new: &NewApp,
    warnings: &mut Vec<String>,
) -> Result<String, AppError> {
    match (&new.credential_file, &new.credential_env) {
        (Some(path), None) => {
            let absolute = std::path::absolute(Path::new(path))
                .map_err(|e| AppError::Invalid(format!("credential file {path}: {e}")))?;
            let secret = std::fs::read_to_string(&absolute).map_err(|e| {
                AppError::Invalid(format!(
                    "cannot read the credential file {}: {e}",
                    absolute.display()
                ))
            })?;
            let source = format!("file:{}", absolute.display());
            check_secret(kind, &secret, &source)?;
            Ok(source)
        }
        (None, Some(var)) => {
            if !valid_env_var(var) {
                return Err(AppError::Invalid(format!(
                    "credential_env {var:?} is not a variable name"
                )));
            }
            let source = format!("env:{var}");
            match std::env::var(var) {
                Ok(secret) => check_secret(kind, &secret, &source)?,
                Err(_) => warnings.push(format!(
                    "the variable {var} is not set here; the server reads it from its own \
                     environment and must have it ({})",
                    credential_shape(kind)
                )),
            }
            Ok(source)
        }
        (Some(_), Some(_)) => Err(AppError::Invalid(
            "give either credential_file or credential_env, not both".into(),
        )),
        (None, None) => Err(AppError::Invalid(
            "a credential is required: credential_file or credential_env".into(),
        )),
    }
}

fn check_settings(kind: AppKind, settings: &Map<String, Value>) -> Result<(), AppError> {
    let allowed: &[(&str, bool)] = match kind {
        // (key, is a string; otherwise a boolean)
        AppKind::Synapse => &[("server_name", true), ("auth_provider", true)],
        AppKind::Nextcloud => &[("quota", true)],
        AppKind::Rocketchat => &[],
        AppKind::Scim => &[("use_patch", false)],
    };
    for (key, value) in settings {
        let Some((_, is_string)) = allowed.iter().find(|(k, _)| k == key) else {
            return Err(AppError::Invalid(format!(
                "setting {key:?} does not apply to a {} app",
                kind.as_str()
            )));
        };
        let ok = if *is_string {
            value.as_str().is_some_and(|s| !s.trim().is_empty())
        } else {
            value.is_boolean()
        };
        if !ok {
            let what = if *is_string {
                "a non-empty string"
            } else {
                "a boolean"
            };
            return Err(AppError::Invalid(format!("setting {key:?} must be {what}")));
        }
    }
    if kind == AppKind::Synapse && !settings.contains_key("server_name") {
        return Err(AppError::Invalid(
            "a synapse app needs the setting server_name".into(),
        ));
    }
    Ok(())
}

/// Validates a new app for an organisation; the record is not stored yet.
pub fn validate(org: &Org, new: &NewApp) -> Result<(AppRecord, Vec<String>), AppError> {
    let kind = AppKind::parse(&new.kind).ok_or_else(|| {
        AppError::Invalid(format!(
            "kind {:?} is not one of synapse, nextcloud, rocketchat, scim",
            new.kind
        ))
    })?;
    let name = new.name.clone().unwrap_or_else(|| kind.as_str().to_owned());
    if !valid_name(&name) {
        return Err(AppError::Invalid(format!(
            "name {name:?}: use 1 to 63 lower-case letters, digits, '-' and '_'"
        )));
    }
    let base_url = check_url(&new.url)?;
    let (default_groups, accepted) = groups_as_of(kind);
    let groups_as = new.groups_as.as_deref().unwrap_or(default_groups);
    if !accepted.contains(&groups_as) {
        return Err(AppError::Invalid(format!(
            "groups_as {groups_as:?} does not apply to a {} app (use one of: {})",
            kind.as_str(),
            accepted.join(", ")
        )));
    }
    let deprovision = new.deprovision.as_deref().unwrap_or("disable");
    if !matches!(deprovision, "disable" | "delete") {
        return Err(AppError::Invalid(format!(
            "deprovision {deprovision:?} is not disable or delete"
        )));
    }
    check_settings(kind, &new.settings)?;
    let mut warnings = Vec::new();
    let credential = check_credential(kind, new, &mut warnings)?;
    Ok((
        AppRecord {
            id: 0,
            org_id: org.id,
            name,
            kind: kind.as_str().to_owned(),
            base_url,
            credential,
            groups_as: groups_as.to_owned(),
            deprovision: deprovision.to_owned(),
            settings: Value::Object(new.settings.clone()),
            created: OffsetDateTime::now_utc(),
        },
        warnings,
    ))
}

/// Who adds an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The command line or an operator token: any credential source.
    Operator,
    /// An organisation's own token: the server's files and environment are not
    /// the organisation's, so only the variables of its namespace
    /// ([`org_env_prefix`]) may hold its credentials.
    Org,
}

/// The prefix of the environment variables an organisation's token may name as
/// credential sources: `LIAISON_ORG_<SLUG>__`, the slug upper-cased with `-` as
/// `_`. The rest of the name must not contain `__`, which keeps namespaces
/// apart (`LIAISON_ORG_A__B__X` is not organisation `a`'s).
pub fn org_env_prefix(slug: &str) -> String {
    format!(
        "LIAISON_ORG_{}__",
        slug.to_ascii_uppercase().replace('-', "_")
    )
}

pub(crate) fn check_caller(caller: Caller, org: &Org, new: &NewApp) -> Result<(), AppError> {
    if caller == Caller::Operator {
        return Ok(());
    }
    if new.credential_file.is_some() {
        return Err(AppError::Forbidden(
            "credential_file needs an operator token; an organisation's token may use \
             credential_env in its namespace"
                .into(),
        ));
    }
    if let Some(var) = &new.credential_env {
        let prefix = org_env_prefix(&org.slug);
        let ok = var
            .strip_prefix(&prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains("__"));
        if !ok {
            return Err(AppError::Forbidden(format!(
                "with an organisation's token, credential_env must be {prefix}<NAME> \
                 (NAME without a double underscore)"
            )));
        }
    }
    Ok(())
}

/// Validates and stores an app, and enqueues the initial provisioning of the
/// organisation's users, groups and memberships, in one transaction.
pub async fn add(
    store: &Store,
    org: &Org,
    new: &NewApp,
    caller: Caller,
) -> Result<Added, AppError> {
    check_caller(caller, org, new)?;
    let (record, warnings) = validate(org, new)?;
    let mut tx = store.begin().await?;
    let app = match tx.create_app(&record).await {
        Ok(app) => app,
        Err(StoreError::Conflict(_)) => {
            return Err(AppError::Conflict(format!(
                "the organisation already has an app named {}",
                record.name
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let enqueued = tx.enqueue_all_for_app(&app).await?;
    tx.commit().await?;
    Ok(Added {
        app,
        enqueued,
        warnings,
    })
}

/// Removes an app; `NotFound` when the organisation has none of that name.
pub async fn remove(store: &Store, org: &Org, name: &str) -> Result<(), AppError> {
    let mut tx = store.begin().await?;
    if !tx.delete_app(org.id, name).await? {
        return Err(AppError::NotFound(format!("no app named {name}")));
    }
    tx.commit().await?;
    Ok(())
}

/// An app with its outbox counts, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct AppView {
    pub name: String,
    pub kind: String,
    pub url: String,
    /// `file:PATH` or `env:VAR`.
    pub credential: String,
    pub groups_as: String,
    pub deprovision: String,
    pub settings: Value,
    pub created: String,
    pub pending: i64,
    pub poisoned: i64,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The apps of an organisation, by name, with their outbox counts.
pub async fn list(store: &Store, org: &Org) -> Result<Vec<AppView>, AppError> {
    let counts: HashMap<i64, store::OutboxCounts> =
        store.outbox_counts(org.id).await?.into_iter().collect();
    Ok(store
        .apps(org.id)
        .await?
        .into_iter()
        .map(|a| {
            let c = counts.get(&a.id).copied().unwrap_or_default();
            AppView {
                name: a.name,
                kind: a.kind,
                url: a.base_url,
                credential: a.credential,
                groups_as: a.groups_as,
                deprovision: a.deprovision,
                settings: a.settings,
                created: rfc3339(a.created),
                pending: c.pending,
                poisoned: c.poisoned,
            }
        })
        .collect())
}

/// One app of an organisation, by name.
pub async fn get(store: &Store, org: &Org, name: &str) -> Result<AppView, AppError> {
    list(store, org)
        .await?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| AppError::NotFound(format!("no app named {name}")))
}

/// Makes poisoned deliveries of an organisation (optionally one app) due again;
/// returns how many.
pub async fn retry(store: &Store, org: &Org, app: Option<&str>) -> Result<u64, AppError> {
    let app_id = match app {
        Some(name) => Some(
            store
                .app_by_name(org.id, name)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("no app named {name}")))?
                .id,
        ),
        None => None,
    };
    Ok(store.retry_poisoned(org.id, app_id).await?)
}

/// Where a user or group stands in each app of its organisation, as JSON
/// (`{"user"|"group": id, "apps": [...]}`); `NotFound` when the organisation
/// has no such resource.
pub async fn provisioning(
    store: &Store,
    org: &Org,
    kind: store::ResourceKind,
    id: &str,
) -> Result<Value, AppError> {
    let label = match kind {
        store::ResourceKind::User => "user",
        store::ResourceKind::Group => "group",
    };
    if store.get_resource(org.id, kind, id).await?.is_none() {
        return Err(AppError::NotFound(format!("no {label} {id}")));
    }
    let links = store.links_of(org.id, id).await?;
    let pending = store.pending_for(org.id, id).await?;
    let mut apps = Vec::new();
    for app in store.apps(org.id).await? {
        let link = links.iter().find(|l| l.app_id == app.id);
        let rows: Vec<_> = pending.iter().filter(|p| p.app_id == app.id).collect();
        let status = if rows.iter().any(|r| r.poisoned) {
            "failed"
        } else if rows.iter().any(|r| r.attempts > 0) {
            "retrying"
        } else if !rows.is_empty() {
            "pending"
        } else {
            link.map_or("never", |l| l.status.as_str())
        };
        let last_error = link
            .and_then(|l| l.last_error.clone())
            .or_else(|| rows.iter().rev().find_map(|r| r.last_error.clone()));
        let rows: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut v = json!({
                    "target": r.target.as_str(),
                    "resource_id": r.resource_id,
                    "attempts": r.attempts,
                    "next_attempt": rfc3339(r.next_attempt),
                    "last_error": r.last_error,
                    "poisoned": r.poisoned,
                });
                if !r.member_id.is_empty() {
                    v["member_id"] = json!(r.member_id);
                }
                v
            })
            .collect();
        apps.push(json!({
            "app": app.name,
            "kind": app.kind,
            "status": status,
            "app_id": link.and_then(|l| l.app_ref.clone()),
            "last_attempt": link.map(|l| rfc3339(l.last_attempt)),
            "last_error": last_error,
            "pending": rows,
        }));
    }
    Ok(json!({ label: id, "apps": apps }))
}

async fn org(store: &Store, slug: &str) -> anyhow::Result<Org> {
    store
        .org_by_slug(slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no organisation {slug}"))
}

impl AddArgs {
    fn to_new_app(&self) -> NewApp {
        let kind = match self.kind {
            KindArg::Synapse => AppKind::Synapse,
            KindArg::Nextcloud => AppKind::Nextcloud,
            KindArg::Rocketchat => AppKind::Rocketchat,
            KindArg::Scim => AppKind::Scim,
        };
        let mut settings = Map::new();
        let mut put = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                settings.insert(key.to_owned(), Value::String(v.clone()));
            }
        };
        put("server_name", &self.server_name);
        put("auth_provider", &self.auth_provider);
        put("quota", &self.quota);
        if self.no_patch {
            settings.insert("use_patch".into(), Value::Bool(false));
        }
        NewApp {
            kind: kind.as_str().to_owned(),
            name: self.name.clone(),
            url: self.url.clone(),
            credential_file: self.credential_file.clone(),
            credential_env: self.credential_env.clone(),
            groups_as: self.groups_as.map(|g| {
                match g {
                    GroupsAsArg::Groups => "groups",
                    GroupsAsArg::Rooms => "rooms",
                    GroupsAsArg::Spaces => "spaces",
                    GroupsAsArg::None => "none",
                }
                .to_owned()
            }),
            deprovision: Some(
                match self.deprovision {
                    DeprovisionArg::Disable => "disable",
                    DeprovisionArg::Delete => "delete",
                }
                .to_owned(),
            ),
            settings,
        }
    }
}

pub async fn run(store: &Store, cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Add(args) => {
            let org = org(store, &args.org).await?;
            let added = add(store, &org, &args.to_new_app(), Caller::Operator).await?;
            for w in &added.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "added app {} ({}, {}) to {}; credential from {}; {} deliveries enqueued",
                added.app.name,
                added.app.kind,
                added.app.base_url,
                org.slug,
                added.app.credential,
                added.enqueued
            );
        }
        AppCommand::List { org: slug } => {
            let org = org(store, &slug).await?;
            let apps = list(store, &org).await?;
            if apps.is_empty() {
                println!("no apps in {}", org.slug);
                return Ok(());
            }
            let rows: Vec<[String; 8]> = apps
                .into_iter()
                .map(|a| {
                    [
                        a.name,
                        a.kind,
                        a.url,
                        a.groups_as,
                        a.deprovision,
                        a.credential,
                        a.pending.to_string(),
                        a.poisoned.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "NAME",
                    "KIND",
                    "URL",
                    "GROUPS-AS",
                    "DEPROVISION",
                    "CREDENTIAL",
                    "PENDING",
                    "POISONED",
                ],
                &rows,
            );
        }
        AppCommand::Remove { org: slug, name } => {
            let org = org(store, &slug).await?;
            remove(store, &org, &name).await?;
            println!("removed app {name} from {}", org.slug);
        }
    }
    Ok(())
}

/// Prints rows under a header, columns padded to their widest cell.
pub(crate) fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
