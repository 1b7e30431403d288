//! An organisation's public face: its profile (branding for the error pages,
//! pricing category, billing customer), the host names mapped to it, and its
//! maintenance windows. Host names, the pricing category and the billing
//! customer are the collective's to set: an organisation could otherwise claim
//! another's host name or lower its own contribution.

use crate::types::{
    ColorOrEmpty, EmailOrEmpty, HttpUrlOrEmpty, Language, LanguageOrEmpty, ServiceName, Text,
};
use crate::{rfc3339, Caller, ServiceError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use store::{MaintenanceRecord, Org, OrgProfile, Store, StoreError};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Longest text accepted in a profile field or a maintenance message.
const MAX_TEXT: usize = 2000;

/// Maintenance windows an organisation may have scheduled (not yet over) at once.
pub const MAX_WINDOWS: usize = 100;

/// Messages (languages) of one maintenance window.
const MAX_MESSAGES: usize = 20;

/// Changes to a profile: absent = unchanged, empty string = cleared.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// Name shown on the error pages and statements.
    #[serde(default)]
    pub display_name: Option<Text>,
    /// Logo shown on the error pages.
    #[serde(default)]
    pub logo_url: Option<HttpUrlOrEmpty>,
    /// Primary colour of the pages.
    #[serde(default)]
    pub color: Option<ColorOrEmpty>,
    /// Contact address shown on the pages.
    #[serde(default)]
    pub contact_email: Option<EmailOrEmpty>,
    /// Status page linked from the pages.
    #[serde(default)]
    pub status_url: Option<HttpUrlOrEmpty>,
    /// Language of the pages when the visitor's is not offered.
    #[serde(default)]
    pub default_language: Option<LanguageOrEmpty>,
    /// Pricing category, one of the configured ones (operators only).
    #[serde(default)]
    pub category: Option<Text>,
    /// Customer name in the accounting system (operators only).
    #[serde(default)]
    pub billing_customer: Option<Text>,
}

/// A profile as the admin API shows it: the organisation, its profile's fields
/// and its host names.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileView {
    pub org: String,
    #[serde(flatten)]
    pub profile: OrgProfile,
    pub domains: Vec<String>,
}

fn invalid(field: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Invalid(format!("{field}: {e}"))
}

/// Applies one field of a patch: `None` keeps, `""` clears, else validates.
fn apply(
    slot: &mut Option<String>,
    new: Option<&str>,
    field: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<(), ServiceError> {
    let Some(v) = new else { return Ok(()) };
    let v = v.trim();
    if v.is_empty() {
        *slot = None;
        return Ok(());
    }
    if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(invalid(field, "too long or holds control characters"));
    }
    check(v).map_err(|e| invalid(field, e))?;
    *slot = Some(v.to_owned());
    Ok(())
}

fn any_text(_: &str) -> Result<(), String> {
    Ok(())
}

fn language(s: &str) -> Result<(), String> {
    let ok = (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase());
    ok.then_some(())
        .ok_or_else(|| "a lower-case language code such as fr or en".to_owned())
}

/// Updates the organisation's profile with `patch`; returns the result. The
/// pricing category and the billing customer are an operator's to set.
pub async fn set_profile(
    store: &Store,
    org: &Org,
    caller: Caller,
    patch: &ProfilePatch,
    categories: &[String],
) -> Result<ProfileView, ServiceError> {
    if patch.category.is_some() || patch.billing_customer.is_some() {
        caller.require_operator("category and billing_customer")?;
    }
    let mut p = store.org_profile(org.id).await?;
    apply(
        &mut p.display_name,
        patch.display_name.as_ref().map(|v| v.as_str()),
        "display_name",
        any_text,
    )?;
    apply(
        &mut p.logo_url,
        patch.logo_url.as_ref().map(|v| v.as_str()),
        "logo_url",
        pages::validate_url,
    )?;
    apply(
        &mut p.color,
        patch.color.as_ref().map(|v| v.as_str()),
        "color",
        pages::validate_color,
    )?;
    apply(
        &mut p.contact_email,
        patch.contact_email.as_ref().map(|v| v.as_str()),
        "contact_email",
        pages::validate_email,
    )?;
    apply(
        &mut p.status_url,
        patch.status_url.as_ref().map(|v| v.as_str()),
        "status_url",
        pages::validate_url,
    )?;
    apply(
        &mut p.default_language,
        patch.default_language.as_ref().map(|v| v.as_str()),
        "default_language",
        language,
    )?;
    apply(
        &mut p.category,
        patch.category.as_ref().map(|v| v.as_str()),
        "category",
        |c| {
            if categories.iter().any(|k| k == c) {
                Ok(())
            } else {
                Err(format!(
                    "unknown pricing category (known: {})",
                    categories.join(", ")
                ))
            }
        },
    )?;
    apply(
        &mut p.billing_customer,
        patch.billing_customer.as_ref().map(|v| v.as_str()),
        "billing_customer",
        any_text,
    )?;
    let mut tx = store.begin().await?;
    tx.set_org_profile(org.id, &p).await?;
    tx.commit().await?;
    profile(store, org).await
}

/// The organisation's profile and host names.
pub async fn profile(store: &Store, org: &Org) -> Result<ProfileView, ServiceError> {
    let p = store.org_profile(org.id).await?;
    let domains = store
        .domains(Some(org.id))
        .await?
        .into_iter()
        .map(|d| d.host)
        .collect();
    Ok(ProfileView {
        org: org.slug.clone(),
        profile: p,
        domains,
    })
}

/// A host name as stored: trimmed, without the final dot, lower-cased.
fn normal_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Maps a host name to the organisation (operators only).
pub async fn add_domain(
    store: &Store,
    org: &Org,
    caller: Caller,
    host: &str,
) -> Result<String, ServiceError> {
    caller.require_operator("host names")?;
    let host = normal_host(host);
    pages::validate_host(&host).map_err(|e| invalid("host", e))?;
    let mut tx = store.begin().await?;
    match tx.add_domain(org.id, &host).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::Conflict(format!(
                "host {host} is already mapped"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(host)
}

/// Removes a host name of the organisation (operators only), written in any case.
pub async fn remove_domain(
    store: &Store,
    org: &Org,
    caller: Caller,
    host: &str,
) -> Result<(), ServiceError> {
    caller.require_operator("host names")?;
    let mut tx = store.begin().await?;
    if !tx.remove_domain(org.id, &normal_host(host)).await? {
        return Err(ServiceError::NotFound(format!(
            "no host {host} for {}",
            org.slug
        )));
    }
    tx.commit().await?;
    Ok(())
}

/// A maintenance window to schedule.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWindow {
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2026-12-01T20:00:00+01:00")]
    pub from: OffsetDateTime,
    /// RFC 3339, after `from` and not yet past.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2026-12-01T22:00:00+01:00")]
    pub until: OffsetDateTime,
    /// Only this app or service (matched against the ingress' service or
    /// ingress name); absent = every app of the organisation.
    #[serde(default)]
    pub app: Option<ServiceName>,
    /// Message per language (`{"fr": "...", "en": "..."}`), at most 20.
    #[serde(default)]
    pub messages: BTreeMap<Language, Text>,
}

/// A maintenance window as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowView {
    pub id: String,
    pub org: String,
    pub app: Option<String>,
    pub from: String,
    pub until: String,
    pub messages: BTreeMap<String, String>,
}

fn view(org: &Org, w: MaintenanceRecord) -> WindowView {
    WindowView {
        id: w.id,
        org: org.slug.clone(),
        app: w.app,
        from: rfc3339(w.starts),
        until: rfc3339(w.ends),
        messages: w.messages,
    }
}

/// Schedules a maintenance window.
pub async fn add_window(
    store: &Store,
    org: &Org,
    new: &NewWindow,
) -> Result<WindowView, ServiceError> {
    let (starts, ends) = (new.from, new.until);
    if ends <= starts {
        return Err(invalid("until", "must be after from"));
    }
    if ends <= OffsetDateTime::now_utc() {
        return Err(invalid("until", "is already past"));
    }
    if new.messages.len() > MAX_MESSAGES {
        return Err(invalid(
            "messages",
            format!("at most {MAX_MESSAGES} languages"),
        ));
    }
    let record = MaintenanceRecord {
        id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        org_id: org.id,
        app: new.app.as_ref().map(|a| a.as_str().to_owned()),
        starts,
        ends,
        messages: new
            .messages
            .iter()
            .map(|(lang, text)| (lang.as_str().to_owned(), text.as_str().to_owned()))
            .collect(),
        created: OffsetDateTime::now_utc(),
    };
    let mut tx = store.begin().await?;
    // A bound on storage, not a quota: concurrent requests on PostgreSQL may
    // pass it by the number of requests in flight.
    if tx
        .count_maintenance(org.id, OffsetDateTime::now_utc())
        .await?
        >= MAX_WINDOWS as i64
    {
        return Err(ServiceError::Conflict(format!(
            "{} already has {MAX_WINDOWS} maintenance windows scheduled; cancel one first",
            org.slug
        )));
    }
    tx.add_maintenance(&record).await?;
    tx.commit().await?;
    Ok(view(org, record))
}

/// The organisation's windows not yet over.
pub async fn windows(store: &Store, org: &Org) -> Result<Vec<WindowView>, ServiceError> {
    Ok(store
        .maintenance_windows(Some(org.id), OffsetDateTime::now_utc())
        .await?
        .into_iter()
        .map(|w| view(org, w))
        .collect())
}

/// Cancels a window of the organisation.
pub async fn cancel_window(store: &Store, org: &Org, id: &str) -> Result<(), ServiceError> {
    let mut tx = store.begin().await?;
    if !tx.cancel_maintenance(org.id, id).await? {
        return Err(ServiceError::NotFound(format!(
            "no maintenance window {id} for {}",
            org.slug
        )));
    }
    tx.commit().await?;
    Ok(())
}

/// The error pages' view of the database: every organisation with a host
/// name, its branding, and the windows not over yet.
pub async fn snapshot(store: &Store) -> Result<pages::Snapshot, StoreError> {
    let orgs = store.list_orgs().await?;
    let profiles = store.org_profiles().await?;
    let mut hosts: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for d in store.domains(None).await? {
        hosts.entry(d.org_id).or_default().push(d.host);
    }
    let slugs: BTreeMap<i64, &Org> = orgs.iter().map(|o| (o.id, o)).collect();
    let sites = orgs
        .iter()
        .filter_map(|o| {
            let hosts = hosts.remove(&o.id)?;
            let p = profiles.get(&o.id).cloned().unwrap_or_default();
            Some(pages::Site {
                org: o.slug.clone(),
                hosts,
                branding: pages::Branding {
                    display_name: p.display_name.unwrap_or_else(|| o.name.clone()),
                    logo_url: p.logo_url,
                    color: p.color,
                    contact_email: p.contact_email,
                    status_url: p.status_url,
                },
                default_language: p.default_language,
            })
        })
        .collect();
    let windows = store
        .maintenance_windows(None, OffsetDateTime::now_utc())
        .await?
        .into_iter()
        .filter_map(|w| {
            Some(pages::MaintenanceWindow {
                id: w.id,
                org: slugs.get(&w.org_id)?.slug.clone(),
                app: w.app,
                starts_at: w.starts,
                ends_at: w.ends,
                messages: w.messages,
            })
        })
        .collect();
    Ok(pages::Snapshot { sites, windows })
}

/// [`pages::Source`] reading the database.
pub struct DbSource(pub Store);

#[async_trait::async_trait]
impl pages::Source for DbSource {
    async fn load(&self) -> anyhow::Result<pages::Snapshot> {
        Ok(snapshot(&self.0).await?)
    }
}
