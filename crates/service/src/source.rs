//! An organisation's directory source (a Keycloak realm): its configuration,
//! its state, and a full reconciliation on demand. The following itself is
//! the `source` crate's.
//!
//! One source of truth per organisation: while a source is configured, SCIM
//! writes are refused (403); and a source is only added to an organisation
//! whose directory is empty, unless the caller asks for adoption, whose first
//! reconciliation takes over the users and groups the directory holds
//! (matched by externalId, then by userName or group name) and deletes the
//! others. An empty directory is the only sign that no SCIM client wrote there
//! that cannot be forged or forgotten: tokens are also used for the admin
//! API, and a source removed and added again finds the directory it left
//! (hence adoption).

use crate::types::{EnvVar, FilePath};
use crate::{rfc3339, Caller, ServiceError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use store::{Org, Source, SourceRecord, Store, StoreError};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Default seconds between full reconciliations.
pub const DEFAULT_INTERVAL_SECS: u64 = 3600;
const MIN_INTERVAL_SECS: u64 = 60;
const MAX_INTERVAL_SECS: u64 = 7 * 24 * 3600;

/// A source as the admin API receives it (`PUT /o/{org}/admin/source`) and the
/// command line builds it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// `keycloak`.
    #[schema(pattern = "^keycloak$")]
    pub kind: String,
    /// Keycloak's base URL, without `/realms/...`, query or fragment.
    #[schema(example = "https://sso.example.org")]
    pub url: String,
    /// The realm's name.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^/\\x00-\\x1f\\x7f-\\x9f]{1,255}$"
    )]
    pub realm: String,
    /// The service-account client Liaison signs in as.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]{1,255}$"
    )]
    pub client_id: String,
    /// A file of the server holding the client secret (operators only).
    /// Exactly one of `credential_file` and `credential_env` is required.
    #[serde(default)]
    pub credential_file: Option<FilePath>,
    /// An environment variable of the server holding the client secret; with
    /// an organisation's token, `LIAISON_ORG_<SLUG>__<NAME>`.
    #[serde(default)]
    pub credential_env: Option<EnvVar>,
    /// Seconds between full reconciliations (default 3600).
    #[serde(default)]
    #[schema(minimum = 60, maximum = 604800)]
    pub interval_secs: Option<u64>,
    /// Adding only: take over the resources the directory holds.
    #[serde(default)]
    pub adopt: bool,
}

/// Where following a source stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PutOutcome {
    #[serde(flatten)]
    pub source: SourceView,
    #[serde(skip)]
    pub created: bool,
    pub warnings: Vec<String>,
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

fn text_ok(s: &str, what: &str) -> Result<(), ServiceError> {
    if s.trim().is_empty() || s.chars().count() > 255 || s.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(format!(
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
) -> Result<SourceRecord, ServiceError> {
    if req.kind != "keycloak" {
        return Err(ServiceError::Invalid(format!(
            "unknown source kind {:?}: the one kind is keycloak",
            req.kind
        )));
    }
    let url = url::Url::parse(req.url.trim())
        .map_err(|e| ServiceError::Invalid(format!("url {:?}: {e}", req.url)))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ServiceError::Invalid(
            "url must be http(s)://host[:port][/path], without credentials, query or fragment"
                .into(),
        ));
    }
    if url.path().contains("/realms/") {
        return Err(ServiceError::Invalid(
            "url is Keycloak's base URL, without /realms/<realm> (the realm is its own field)"
                .into(),
        ));
    }
    text_ok(&req.realm, "realm")?;
    if req.realm.contains('/') {
        return Err(ServiceError::Invalid("realm must not contain '/'".into()));
    }
    text_ok(&req.client_id, "client_id")?;
    let interval = req.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS);
    if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&interval) {
        return Err(ServiceError::Invalid(format!(
            "interval_secs must be between {MIN_INTERVAL_SECS} and {MAX_INTERVAL_SECS}"
        )));
    }
    let credential =
        match (&req.credential_file, &req.credential_env) {
            (Some(path), None) => {
                let absolute = std::path::absolute(Path::new(path.as_str()))
                    .map_err(|e| ServiceError::Invalid(format!("credential file {path}: {e}")))?;
                let secret = std::fs::read_to_string(&absolute).map_err(|e| {
                    ServiceError::Invalid(format!(
                        "cannot read the credential file {}: {e}",
                        absolute.display()
                    ))
                })?;
                if secret.trim().is_empty() {
                    return Err(ServiceError::Invalid(format!(
                        "the credential file {} is empty",
                        absolute.display()
                    )));
                }
                format!("file:{}", absolute.display())
            }
            (None, Some(var)) => {
                if std::env::var(var.as_str()).map_or(true, |v| v.trim().is_empty()) {
                    warnings.push(format!(
                        "the variable {var} is not set here; the server reads it from its own \
                     environment and must have it (the client secret)"
                    ));
                }
                format!("env:{var}")
            }
            (Some(_), Some(_)) => {
                return Err(ServiceError::Invalid(
                    "give either credential_file or credential_env, not both".into(),
                ))
            }
            (None, None) => return Err(ServiceError::Invalid(
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
) -> Result<PutOutcome, ServiceError> {
    crate::apps::check_credential_source(
        caller,
        org,
        req.credential_file.as_ref(),
        req.credential_env.as_ref(),
    )?;
    let mut warnings = Vec::new();
    let record = validate(org, req, &mut warnings)?;
    let mut tx = store.begin().await?;
    let existing = store.source(org.id).await?;
    let created = match existing {
        Some(_) if !replace => {
            return Err(ServiceError::Conflict(format!(
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
                return Err(ServiceError::Conflict(format!(
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
                    return Err(ServiceError::Conflict(format!(
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
        .ok_or_else(|| ServiceError::NotFound("the source vanished".into()))?;
    Ok(PutOutcome {
        source: SourceView::from(&source),
        created,
        warnings,
    })
}

/// The organisation's source with its state.
pub async fn get(store: &Store, org: &Org) -> Result<SourceView, ServiceError> {
    store
        .source(org.id)
        .await?
        .map(|s| SourceView::from(&s))
        .ok_or_else(|| ServiceError::NotFound(format!("{} has no source", org.slug)))
}

/// Removes the organisation's source.
pub async fn remove(store: &Store, org: &Org) -> Result<(), ServiceError> {
    let mut tx = store.begin().await?;
    if !tx.delete_source(org.id).await? {
        return Err(ServiceError::NotFound(format!(
            "{} has no source",
            org.slug
        )));
    }
    tx.commit().await?;
    Ok(())
}

/// Asks the server's follower for a full reconciliation at its next turn.
pub async fn request_sync(store: &Store, org: &Org) -> Result<(), ServiceError> {
    if store.request_full_sync(org.id).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!(
            "{} has no source",
            org.slug
        )))
    }
}
