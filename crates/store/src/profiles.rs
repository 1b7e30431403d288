//! Organisation profiles (branding, pricing category, billing customer), the host
//! names that map to an organisation, and scheduled maintenance windows: what
//! the error pages and the statements read.

use crate::conn::{from_micros, map_unique, to_micros};
use crate::{Result, Store, Tx};
use sqlx::Row;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// An organisation's profile. Every field is optional; absent = not set.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgProfile {
    pub display_name: Option<String>,
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    pub contact_email: Option<String>,
    pub status_url: Option<String>,
    /// BCP 47 primary language (`fr`), used when the visitor's is not offered.
    pub default_language: Option<String>,
    /// Pricing category (solidarity coefficient).
    pub category: Option<String>,
    /// Customer name in the accounting system.
    pub billing_customer: Option<String>,
}

/// A host name served by the error pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub host: String,
    pub org_id: i64,
}

/// A scheduled maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceRecord {
    pub id: String,
    pub org_id: i64,
    /// The app concerned; `None` = every app of the organisation.
    pub app: Option<String>,
    pub starts: OffsetDateTime,
    pub ends: OffsetDateTime,
    /// Message per language.
    pub messages: BTreeMap<String, String>,
    pub created: OffsetDateTime,
}

const PROFILE_COLUMNS: &str = "display_name, logo_url, color, contact_email, status_url, \
     default_language, category, billing_customer";

fn profile_from_row(row: &sqlx::any::AnyRow) -> Result<OrgProfile> {
    Ok(OrgProfile {
        display_name: row.try_get("display_name")?,
        logo_url: row.try_get("logo_url")?,
        color: row.try_get("color")?,
        contact_email: row.try_get("contact_email")?,
        status_url: row.try_get("status_url")?,
        default_language: row.try_get("default_language")?,
        category: row.try_get("category")?,
        billing_customer: row.try_get("billing_customer")?,
    })
}

fn window_from_row(row: &sqlx::any::AnyRow) -> Result<MaintenanceRecord> {
    let messages: String = row.try_get("messages")?;
    Ok(MaintenanceRecord {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        app: row.try_get("app")?,
        starts: from_micros(row.try_get("starts")?)?,
        ends: from_micros(row.try_get("ends")?)?,
        messages: serde_json::from_str(&messages)
            .map_err(|e| crate::StoreError::Db(sqlx::Error::Decode(Box::new(e))))?,
        created: from_micros(row.try_get("created")?)?,
    })
}

const WINDOW_COLUMNS: &str = "id, org_id, app, starts, ends, messages, created";

impl Store {
    /// The organisation's profile (all fields unset when never written).
    pub async fn org_profile(&self, org_id: i64) -> Result<OrgProfile> {
        let row = sqlx::query(&format!(
            "SELECT {PROFILE_COLUMNS} FROM org_profiles WHERE org_id = $1"
        ))
        .bind(org_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row
            .as_ref()
            .map(profile_from_row)
            .transpose()?
            .unwrap_or_default())
    }

    /// Every profile, by organisation id.
    pub async fn org_profiles(&self) -> Result<BTreeMap<i64, OrgProfile>> {
        let rows = sqlx::query(&format!(
            "SELECT org_id, {PROFILE_COLUMNS} FROM org_profiles"
        ))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("org_id")?, profile_from_row(r)?)))
            .collect()
    }

    /// The host names of one organisation (or all), by host.
    pub async fn domains(&self, org_id: Option<i64>) -> Result<Vec<Domain>> {
        let rows = match org_id {
            Some(org) => {
                sqlx::query("SELECT host, org_id FROM domains WHERE org_id = $1 ORDER BY host")
                    .bind(org)
                    .fetch_all(self.reader())
                    .await?
            }
            None => {
                sqlx::query("SELECT host, org_id FROM domains ORDER BY host")
                    .fetch_all(self.reader())
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(Domain {
                    host: r.try_get(0)?,
                    org_id: r.try_get(1)?,
                })
            })
            .collect()
    }

    /// Maintenance windows of one organisation (or all), ending after `after`,
    /// by start.
    pub async fn maintenance_windows(
        &self,
        org_id: Option<i64>,
        after: OffsetDateTime,
    ) -> Result<Vec<MaintenanceRecord>> {
        let rows = match org_id {
            Some(org) => {
                sqlx::query(&format!(
                    "SELECT {WINDOW_COLUMNS} FROM maintenance_windows \
                     WHERE org_id = $1 AND ends > $2 ORDER BY starts, id"
                ))
                .bind(org)
                .bind(to_micros(after))
                .fetch_all(self.reader())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {WINDOW_COLUMNS} FROM maintenance_windows \
                     WHERE ends > $1 ORDER BY starts, id"
                ))
                .bind(to_micros(after))
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(window_from_row).collect()
    }
}

impl Tx {
    /// Writes the organisation's whole profile.
    pub async fn set_org_profile(&mut self, org_id: i64, p: &OrgProfile) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO org_profiles (org_id, {PROFILE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (org_id) DO UPDATE SET display_name = excluded.display_name, \
             logo_url = excluded.logo_url, color = excluded.color, \
             contact_email = excluded.contact_email, status_url = excluded.status_url, \
             default_language = excluded.default_language, category = excluded.category, \
             billing_customer = excluded.billing_customer"
        ))
        .bind(org_id)
        .bind(&p.display_name)
        .bind(&p.logo_url)
        .bind(&p.color)
        .bind(&p.contact_email)
        .bind(&p.status_url)
        .bind(&p.default_language)
        .bind(&p.category)
        .bind(&p.billing_customer)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Maps a host name (stored lower-case) to the organisation.
    /// [`crate::StoreError::Conflict`] when the host is taken.
    pub async fn add_domain(&mut self, org_id: i64, host: &str) -> Result<()> {
        sqlx::query("INSERT INTO domains (host, org_id, created) VALUES ($1, $2, $3)")
            .bind(host.to_ascii_lowercase())
            .bind(org_id)
            .bind(to_micros(OffsetDateTime::now_utc()))
            .execute(&mut *self.tx)
            .await
            .map_err(|e| map_unique(e, |_| format!("host {host} is already mapped")))?;
        Ok(())
    }

    /// Removes a host name of the organisation. Returns whether it existed.
    pub async fn remove_domain(&mut self, org_id: i64, host: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM domains WHERE org_id = $1 AND host = $2")
            .bind(org_id)
            .bind(host.to_ascii_lowercase())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a maintenance window.
    pub async fn add_maintenance(&mut self, w: &MaintenanceRecord) -> Result<()> {
        let messages = serde_json::to_string(&w.messages).expect("a map of strings serialises");
        sqlx::query(&format!(
            "INSERT INTO maintenance_windows ({WINDOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&w.id)
        .bind(w.org_id)
        .bind(&w.app)
        .bind(to_micros(w.starts))
        .bind(to_micros(w.ends))
        .bind(messages)
        .bind(to_micros(w.created))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// How many windows of the organisation end after `now`.
    pub async fn count_maintenance(&mut self, org_id: i64, now: OffsetDateTime) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM maintenance_windows WHERE org_id = $1 AND ends > $2",
        )
        .bind(org_id)
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Cancels (deletes) a window of the organisation. Returns whether it existed.
    pub async fn cancel_maintenance(&mut self, org_id: i64, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM maintenance_windows WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
