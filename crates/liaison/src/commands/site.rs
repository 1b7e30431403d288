//! An organisation's public face: its profile (branding for the error pages,
//! pricing category, billing customer), the host names mapped to it, and its
//! maintenance windows. Shared by the command line (`liaison org set`,
//! `liaison domain`, `liaison maintenance`) and the admin API; both validate
//! through here.

use super::apps::AppError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use store::{MaintenanceRecord, Org, OrgProfile, Store, StoreError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Longest text accepted in a profile field or a maintenance message.
const MAX_TEXT: usize = 2000;

/// Changes to a profile: absent = unchanged, empty string = cleared.
pub type ProfilePatch = OrgProfile;

/// A profile as the admin API shows it: the organisation, its profile's fields
/// and its host names.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileView {
    pub org: String,
    #[serde(flatten)]
    pub profile: OrgProfile,
    pub domains: Vec<String>,
}

fn invalid(field: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Invalid(format!("{field}: {e}"))
}

/// Applies one field of a patch: `None` keeps, `""` clears, else validates.
fn apply(
    slot: &mut Option<String>,
    new: Option<&String>,
    field: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<(), AppError> {
    let Some(v) = new else { return Ok(()) };
    let v = v.trim();
    if v.is_empty() {
        *slot = None;
        return Ok(());
    }
    if v.len() > MAX_TEXT || v.chars().any(char::is_control) {
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

/// Updates the organisation's profile with `patch`; returns the result.
pub async fn set_profile(
    store: &Store,
    org: &Org,
    patch: &ProfilePatch,
    categories: &[String],
) -> Result<ProfileView, AppError> {
    let mut p = store.org_profile(org.id).await?;
    apply(
        &mut p.display_name,
        patch.display_name.as_ref(),
        "display_name",
        any_text,
    )?;
    apply(
        &mut p.logo_url,
        patch.logo_url.as_ref(),
        "logo_url",
        pages::validate_url,
    )?;
    apply(
        &mut p.color,
        patch.color.as_ref(),
        "color",
        pages::validate_color,
    )?;
    apply(
        &mut p.contact_email,
        patch.contact_email.as_ref(),
        "contact_email",
        pages::validate_email,
    )?;
    apply(
        &mut p.status_url,
        patch.status_url.as_ref(),
        "status_url",
        pages::validate_url,
    )?;
    apply(
        &mut p.default_language,
        patch.default_language.as_ref(),
        "default_language",
        language,
    )?;
    apply(&mut p.category, patch.category.as_ref(), "category", |c| {
        if categories.iter().any(|k| k == c) {
            Ok(())
        } else {
            Err(format!(
                "unknown pricing category (known: {})",
                categories.join(", ")
            ))
        }
    })?;
    apply(
        &mut p.billing_customer,
        patch.billing_customer.as_ref(),
        "billing_customer",
        any_text,
    )?;
    let mut tx = store.begin().await?;
    tx.set_org_profile(org.id, &p).await?;
    tx.commit().await?;
    profile(store, org).await
}

/// The organisation's profile and host names.
pub async fn profile(store: &Store, org: &Org) -> Result<ProfileView, AppError> {
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

/// Maps a host name to the organisation.
pub async fn add_domain(store: &Store, org: &Org, host: &str) -> Result<String, AppError> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    pages::validate_host(&host).map_err(|e| invalid("host", e))?;
    let mut tx = store.begin().await?;
    match tx.add_domain(org.id, &host).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(AppError::Conflict(format!("host {host} is already mapped")))
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(host)
}

/// Removes a host name of the organisation.
pub async fn remove_domain(store: &Store, org: &Org, host: &str) -> Result<(), AppError> {
    let mut tx = store.begin().await?;
    if !tx.remove_domain(org.id, host.trim()).await? {
        return Err(AppError::NotFound(format!(
            "no host {host} for {}",
            org.slug
        )));
    }
    tx.commit().await?;
    Ok(())
}

/// A maintenance window to schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWindow {
    /// RFC 3339.
    pub from: String,
    /// RFC 3339.
    pub until: String,
    #[serde(default)]
    pub app: Option<String>,
    /// Message per language (`{"fr": "...", "en": "..."}`).
    #[serde(default)]
    pub messages: BTreeMap<String, String>,
}

/// A maintenance window as shown.
#[derive(Debug, Clone, Serialize)]
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
        from: w.starts.format(&Rfc3339).unwrap_or_default(),
        until: w.ends.format(&Rfc3339).unwrap_or_default(),
        messages: w.messages,
    }
}

fn instant(field: &str, s: &str) -> Result<OffsetDateTime, AppError> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|e| invalid(field, format!("{s:?} is not an RFC 3339 date-time: {e}")))
}

/// Schedules a maintenance window.
pub async fn add_window(store: &Store, org: &Org, new: &NewWindow) -> Result<WindowView, AppError> {
    let starts = instant("from", &new.from)?;
    let ends = instant("until", &new.until)?;
    if ends <= starts {
        return Err(invalid("until", "must be after from"));
    }
    if ends <= OffsetDateTime::now_utc() {
        return Err(invalid("until", "is already past"));
    }
    if let Some(app) = &new.app {
        if app.is_empty() || app.len() > 100 || app.chars().any(char::is_control) {
            return Err(invalid(
                "app",
                "an app or service name of 1 to 100 characters",
            ));
        }
    }
    for (lang, text) in &new.messages {
        language(lang).map_err(|e| invalid("messages", format!("{lang:?}: {e}")))?;
        if text.len() > MAX_TEXT {
            return Err(invalid(
                "messages",
                format!("{lang}: longer than {MAX_TEXT} bytes"),
            ));
        }
    }
    let record = MaintenanceRecord {
        id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        org_id: org.id,
        app: new.app.clone(),
        starts,
        ends,
        messages: new.messages.clone(),
        created: OffsetDateTime::now_utc(),
    };
    let mut tx = store.begin().await?;
    tx.add_maintenance(&record).await?;
    tx.commit().await?;
    Ok(view(org, record))
}

/// The organisation's windows not yet over.
pub async fn windows(store: &Store, org: &Org) -> Result<Vec<WindowView>, AppError> {
    Ok(store
        .maintenance_windows(Some(org.id), OffsetDateTime::now_utc())
        .await?
        .into_iter()
        .map(|w| view(org, w))
        .collect())
}

/// Cancels a window of the organisation.
pub async fn cancel_window(store: &Store, org: &Org, id: &str) -> Result<(), AppError> {
    let mut tx = store.begin().await?;
    if !tx.cancel_maintenance(org.id, id).await? {
        return Err(AppError::NotFound(format!(
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
