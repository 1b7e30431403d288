//! The apps an organisation is provisioned into, and where each of its users
//! and groups stands in them.
//!
//! A credential is stored as where to find it (`file:PATH` or `env:VAR`), never
//! as the secret, and the secret is never shown.

use crate::types::{AppName, EnvVar, FilePath, HttpUrl};
use crate::{rfc3339, Caller, ServiceError};
use http::Uri;
use provision::{Adopt, AppKind, Deprovision, GroupsAs};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use store::{AppRecord, Org, Store, StoreError};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An app to add, as the admin API receives it and the CLI builds it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    /// The kind of app.
    pub kind: AppKind,
    /// The app's name in the organisation (default: the kind).
    #[serde(default)]
    pub name: Option<AppName>,
    /// The app's base URL.
    pub url: HttpUrl,
    /// A file of the server holding the credential (operator tokens only).
    /// Exactly one of `credential_file` and `credential_env` is required.
    #[serde(default)]
    pub credential_file: Option<FilePath>,
    /// An environment variable of the server holding the credential; with an
    /// organisation's token, `LIAISON_ORG_<SLUG>__<NAME>`.
    #[serde(default)]
    pub credential_env: Option<EnvVar>,
    /// What groups become: `groups`, `rooms`, `spaces` or `none` (default per
    /// kind; synapse and rocketchat: rooms, spaces or none; nextcloud and
    /// scim: groups or none).
    #[serde(default)]
    pub groups_as: Option<GroupsAs>,
    /// What happens to a user deleted from the directory: `disable` (default)
    /// or `delete`.
    #[serde(default)]
    pub deprovision: Option<Deprovision>,
    /// Kind-specific settings: synapse `server_name` (required) and
    /// `auth_provider`; nextcloud `quota`; scim `use_patch` (boolean).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Whether accounts the app already has, which Liaison did not create, may
    /// be adopted by `liaison sync --adopt`, matched by login name or e-mail
    /// (default `never`: they are collisions). Operator tokens only.
    #[serde(default)]
    pub adopt: Option<Adopt>,
}

/// A change to an app, as the admin API receives it and the CLI builds it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppChange {
    /// See [`NewApp::adopt`]. Operator tokens only.
    #[serde(default)]
    pub adopt: Option<Adopt>,
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

fn check_url(url: &str) -> Result<String, ServiceError> {
    let bad = || ServiceError::Invalid(format!("url {url:?} is not an absolute http(s) URL"));
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
fn check_secret(kind: AppKind, secret: &str, source: &str) -> Result<(), ServiceError> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(ServiceError::Invalid(format!(
            "the credential in {source} is empty"
        )));
    }
    let pair = matches!(kind, AppKind::Nextcloud | AppKind::Rocketchat);
    if pair
        && !secret
            .split_once(':')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
    {
        return Err(ServiceError::Invalid(format!(
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
) -> Result<String, ServiceError> {
    match (&new.credential_file, &new.credential_env) {
        (Some(path), None) => {
            let absolute = std::path::absolute(Path::new(path.as_str()))
                .map_err(|e| ServiceError::Invalid(format!("credential file {path}: {e}")))?;
            let secret = std::fs::read_to_string(&absolute).map_err(|e| {
                ServiceError::Invalid(format!(
                    "cannot read the credential file {}: {e}",
                    absolute.display()
                ))
            })?;
            let source = format!("file:{}", absolute.display());
            check_secret(kind, &secret, &source)?;
            Ok(source)
        }
        (None, Some(var)) => {
            let source = format!("env:{var}");
            match std::env::var(var.as_str()) {
                Ok(secret) => check_secret(kind, &secret, &source)?,
                Err(_) => warnings.push(format!(
                    "the variable {var} is not set here; the server reads it from its own \
                     environment and must have it ({})",
                    credential_shape(kind)
                )),
            }
            Ok(source)
        }
        (Some(_), Some(_)) => Err(ServiceError::Invalid(
            "give either credential_file or credential_env, not both".into(),
        )),
        (None, None) => Err(ServiceError::Invalid(
            "a credential is required: credential_file or credential_env".into(),
        )),
    }
}

fn check_settings(kind: AppKind, settings: &Map<String, Value>) -> Result<(), ServiceError> {
    let allowed: &[(&str, bool)] = match kind {
        // (key, is a string; otherwise a boolean)
        AppKind::Synapse => &[("server_name", true), ("auth_provider", true)],
        AppKind::Nextcloud => &[("quota", true)],
        AppKind::Rocketchat => &[],
        AppKind::Scim => &[("use_patch", false)],
    };
    for (key, value) in settings {
        if key == "adopt" {
            return Err(ServiceError::Invalid(
                "adopt is its own field, not a setting".into(),
            ));
        }
        let Some((_, is_string)) = allowed.iter().find(|(k, _)| k == key) else {
            return Err(ServiceError::Invalid(format!(
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
            return Err(ServiceError::Invalid(format!(
                "setting {key:?} must be {what}"
            )));
        }
    }
    if kind == AppKind::Synapse && !settings.contains_key("server_name") {
        return Err(ServiceError::Invalid(
            "a synapse app needs the setting server_name".into(),
        ));
    }
    Ok(())
}

/// Validates a new app for an organisation; the record is not stored yet.
pub fn validate(org: &Org, new: &NewApp) -> Result<(AppRecord, Vec<String>), ServiceError> {
    let kind = new.kind;
    let name = new
        .name
        .as_ref()
        .map_or_else(|| kind.as_str().to_owned(), |n| n.as_str().to_owned());
    if !valid_name(&name) {
        return Err(ServiceError::Invalid(format!(
            "name {name:?}: use 1 to 63 lower-case letters, digits, '-' and '_'"
        )));
    }
    let base_url = check_url(new.url.as_str())?;
    let (default_groups, accepted) = kind.groups_as();
    let groups_as = new.groups_as.unwrap_or(default_groups);
    if !accepted.contains(&groups_as) {
        let accepted: Vec<&str> = accepted.iter().map(|g| g.as_str()).collect();
        return Err(ServiceError::Invalid(format!(
            "groups_as {:?} does not apply to a {kind} app (use one of: {})",
            groups_as.as_str(),
            accepted.join(", ")
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
            kind,
            base_url,
            credential,
            groups_as,
            deprovision: new.deprovision.unwrap_or_default(),
            adopt: new.adopt.unwrap_or_default(),
            settings: Value::Object(new.settings.clone()),
            created: OffsetDateTime::now_utc(),
        },
        warnings,
    ))
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

/// The command line and operators may name any credential source; an
/// organisation's own token may not: the server's files and environment are
/// not the organisation's, so only the variables of its namespace
/// ([`org_env_prefix`]) may hold its credentials (an app's, a source's).
pub fn check_credential_source(
    caller: Caller,
    org: &Org,
    file: Option<&FilePath>,
    env: Option<&EnvVar>,
) -> Result<(), ServiceError> {
    if caller.is_operator() {
        return Ok(());
    }
    if file.is_some() {
        return Err(ServiceError::Forbidden(
            "credential_file needs an operator token; an organisation's token may use \
             credential_env in its namespace"
                .into(),
        ));
    }
    if let Some(var) = env {
        let prefix = org_env_prefix(&org.slug);
        let ok = var
            .as_str()
            .strip_prefix(&prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains("__"));
        if !ok {
            return Err(ServiceError::Forbidden(format!(
                "with an organisation's token, credential_env must be {prefix}<NAME> \
                 (NAME without a double underscore)"
            )));
        }
    }
    Ok(())
}

/// Where an app added with an organisation's token may point. Liaison calls
/// apps with admin credentials from inside the hoster's network, so an
/// organisation must not be able to aim it at the hoster's own services.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Targets {
    /// Public addresses only: no loopback, private, link-local, shared
    /// (100.64.0.0/10), unique-local, multicast or unspecified address, for
    /// the host itself or any address its name resolves to.
    #[default]
    PublicOnly,
    /// Any address (`provisioning.allow_private_targets`).
    Any,
}

/// Whether `ip` is an address an organisation may not aim Liaison at.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Refuses (`Forbidden`) an app URL of an organisation's token whose host is,
/// or resolves to, an internal address ([`is_internal`]), unless `targets`
/// allows any. Operators (and the command line) may name any host. The check
/// is made when the app is added: a name that does not resolve yet is
/// accepted, and a name whose records change later is not checked again.
pub async fn check_target(url: &str, caller: Caller, targets: Targets) -> Result<(), ServiceError> {
    if caller.is_operator() || targets == Targets::Any {
        return Ok(());
    }
    let parsed = url::Url::parse(url).map_err(|_| {
        ServiceError::Invalid(format!("url {url:?} is not an absolute http(s) URL"))
    })?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            let lookup = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio::net::lookup_host((name, port)),
            )
            .await;
            match lookup {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                _ => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    if addrs.iter().copied().any(is_internal) {
        return Err(ServiceError::Forbidden(
            "an organisation's token may not add an app on a loopback, private or \
             link-local address (the hoster may allow it: provisioning.allow_private_targets)"
                .into(),
        ));
    }
    Ok(())
}

/// Validates and stores an app, and enqueues the initial provisioning of the
/// organisation's users, groups and memberships, in one transaction. With an
/// organisation's token, the app's host must be public unless `targets`
/// allows any ([`check_target`]). An app's URL never changes afterwards (the
/// credential stays bound to the host it was added for): to move an app,
/// remove it and add it again.
pub async fn add(
    store: &Store,
    org: &Org,
    new: &NewApp,
    caller: Caller,
    targets: Targets,
) -> Result<Added, ServiceError> {
    check_credential_source(
        caller,
        org,
        new.credential_file.as_ref(),
        new.credential_env.as_ref(),
    )?;
    if new.adopt.is_some_and(|a| a != Adopt::Never) {
        caller.require_operator("adopting existing accounts")?;
    }
    let (record, warnings) = validate(org, new)?;
    check_target(&record.base_url, caller, targets).await?;
    let mut tx = store.begin().await?;
    let app = match tx.create_app(&record).await {
        Ok(app) => app,
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::Conflict(format!(
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

/// Changes an app (its `adopt` setting); operators only. `NotFound` when the
/// organisation has no app of that name.
pub async fn change(
    store: &Store,
    org: &Org,
    name: &str,
    change: &AppChange,
    caller: Caller,
) -> Result<AppView, ServiceError> {
    if let Some(adopt) = change.adopt {
        caller.require_operator("adopting existing accounts")?;
        let mut tx = store.begin().await?;
        if !tx.set_app_adopt(org.id, name, adopt).await? {
            return Err(ServiceError::NotFound(format!("no app named {name}")));
        }
        tx.commit().await?;
    }
    get(store, org, name).await
}

/// Removes an app; `NotFound` when the organisation has none of that name.
pub async fn remove(store: &Store, org: &Org, name: &str) -> Result<(), ServiceError> {
    let mut tx = store.begin().await?;
    if !tx.delete_app(org.id, name).await? {
        return Err(ServiceError::NotFound(format!("no app named {name}")));
    }
    tx.commit().await?;
    Ok(())
}

/// An app with its outbox counts, as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppView {
    pub name: String,
    /// The kind of app.
    pub kind: AppKind,
    pub url: String,
    /// Where the secret is read: `file:PATH` or `env:VAR`.
    pub credential: String,
    /// What groups become in the app.
    pub groups_as: GroupsAs,
    /// What happens to a user deleted from the directory.
    pub deprovision: Deprovision,
    /// Whether existing accounts may be adopted (see [`NewApp::adopt`]).
    pub adopt: Adopt,
    #[schema(value_type = Object)]
    pub settings: Value,
    /// RFC 3339.
    pub created: String,
    /// Deliveries waiting (due or retrying).
    pub pending: i64,
    /// Deliveries parked as poison, waiting for a retry.
    pub poisoned: i64,
}

/// An app just added, with what was enqueued for it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddedView {
    #[serde(flatten)]
    pub app: AppView,
    /// Deliveries enqueued for the initial provisioning.
    pub enqueued: u64,
    /// Things to check that did not prevent the addition.
    pub warnings: Vec<String>,
}

/// The apps of an organisation, by name, with their outbox counts.
pub async fn list(store: &Store, org: &Org) -> Result<Vec<AppView>, ServiceError> {
    let counts: HashMap<i64, store::OutboxCounts> =
        store.outbox_counts(org.id).await?.into_iter().collect();
    Ok(store
        .apps(org.id)
        .await?
        .into_iter()
        .map(|a| {
            let c = counts.get(&a.id).copied().unwrap_or_default();
            AppView {
                adopt: a.adopt,
                settings: a.settings,
                name: a.name,
                kind: a.kind,
                url: a.base_url,
                credential: a.credential,
                groups_as: a.groups_as,
                deprovision: a.deprovision,
                created: rfc3339(a.created),
                pending: c.pending,
                poisoned: c.poisoned,
            }
        })
        .collect())
}

/// One app of an organisation, by name.
pub async fn get(store: &Store, org: &Org, name: &str) -> Result<AppView, ServiceError> {
    list(store, org)
        .await?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ServiceError::NotFound(format!("no app named {name}")))
}

/// Where one resource stands in one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    /// Nothing was ever delivered.
    Never,
    /// A delivery waits for its first attempt.
    Pending,
    /// A delivery failed and will be tried again.
    Retrying,
    /// A delivery is parked as poison (it waits for a retry).
    Failed,
    /// The app holds the resource as the directory has it.
    Ok,
    /// The user was removed from the directory and disabled in the app.
    Deprovisioned,
    /// The app holds an account Liaison did not create under this name:
    /// reported, never merged.
    Collision,
}

impl LinkStatus {
    /// The status recorded in a link row by the worker.
    fn of_link(s: &str) -> LinkStatus {
        match s {
            "ok" => LinkStatus::Ok,
            "deprovisioned" => LinkStatus::Deprovisioned,
            "collision" => LinkStatus::Collision,
            "retrying" => LinkStatus::Retrying,
            "pending" => LinkStatus::Pending,
            _ => LinkStatus::Failed,
        }
    }
}

/// A delivery that waits for one app.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingView {
    /// `user`, `group` or `member`.
    pub target: &'static str,
    pub resource_id: String,
    /// For a membership: the member's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub attempts: i64,
    /// RFC 3339.
    pub next_attempt: String,
    pub last_error: Option<String>,
    pub poisoned: bool,
}

/// Where a resource stands in one app.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppState {
    pub app: String,
    pub kind: AppKind,
    pub status: LinkStatus,
    /// The app's own id for the resource, once delivered.
    pub app_id: Option<String>,
    /// RFC 3339.
    pub last_attempt: Option<String>,
    pub last_error: Option<String>,
    pub pending: Vec<PendingView>,
}

/// Where a user or group stands in each app of its organisation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProvisioningView {
    /// The user's id (for a user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The group's id (for a group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub apps: Vec<AppState>,
}

/// Where a user or group stands in each app of its organisation; `NotFound`
/// when the organisation has no such resource.
pub async fn provisioning(
    store: &Store,
    org: &Org,
    kind: store::ResourceKind,
    id: &str,
) -> Result<ProvisioningView, ServiceError> {
    let label = match kind {
        store::ResourceKind::User => "user",
        store::ResourceKind::Group => "group",
    };
    if store.get_resource(org.id, kind, id).await?.is_none() {
        return Err(ServiceError::NotFound(format!("no {label} {id}")));
    }
    let links = store.links_of(org.id, id).await?;
    let pending = store.pending_for(org.id, id).await?;
    let mut apps = Vec::new();
    for app in store.apps(org.id).await? {
        let link = links.iter().find(|l| l.app_id == app.id);
        let rows: Vec<_> = pending.iter().filter(|p| p.app_id == app.id).collect();
        let collision = link.is_some_and(|l| l.status == provision::deliver::STATUS_COLLISION);
        let status = if collision && rows.iter().all(|r| r.poisoned) {
            LinkStatus::Collision
        } else if rows.iter().any(|r| r.poisoned) {
            LinkStatus::Failed
        } else if rows.iter().any(|r| r.attempts > 0) {
            LinkStatus::Retrying
        } else if !rows.is_empty() {
            LinkStatus::Pending
        } else {
            link.map_or(LinkStatus::Never, |l| LinkStatus::of_link(&l.status))
        };
        let last_error = link
            .and_then(|l| l.last_error.clone())
            .or_else(|| rows.iter().rev().find_map(|r| r.last_error.clone()));
        apps.push(AppState {
            app: app.name,
            kind: app.kind,
            status,
            app_id: link.and_then(|l| l.app_ref.clone()),
            last_attempt: link.map(|l| rfc3339(l.last_attempt)),
            last_error,
            pending: rows
                .iter()
                .map(|r| PendingView {
                    target: r.target.as_str(),
                    resource_id: r.resource_id.clone(),
                    member_id: (!r.member_id.is_empty()).then(|| r.member_id.clone()),
                    attempts: r.attempts,
                    next_attempt: rfc3339(r.next_attempt),
                    last_error: r.last_error.clone(),
                    poisoned: r.poisoned,
                })
                .collect(),
        });
    }
    let (user, group) = match kind {
        store::ResourceKind::User => (Some(id.to_owned()), None),
        store::ResourceKind::Group => (None, Some(id.to_owned())),
    };
    Ok(ProvisioningView { user, group, apps })
}

#[cfg(test)]
mod target_tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised_and_public_ones_pass() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd12::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "ff02::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn operators_and_the_any_policy_skip_the_check() {
        let url = "http://127.0.0.1:8008";
        assert!(check_target(url, Caller::Operator, Targets::PublicOnly)
            .await
            .is_ok());
        assert!(check_target(url, Caller::OrgAdmin, Targets::Any)
            .await
            .is_ok());
        assert!(matches!(
            check_target(url, Caller::OrgAdmin, Targets::PublicOnly).await,
            Err(ServiceError::Forbidden(_))
        ));
    }
}
