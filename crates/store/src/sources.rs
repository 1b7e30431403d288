//! Directory sources: the identity provider an organisation's users and groups
//! are read from (a Keycloak realm), and where following it stands (cursors,
//! last reconciliation, last error). At most one source per organisation.
//!
//! The store keeps where the client secret is (`file:/path` or `env:VAR`), never
//! the secret. The follower's writes to the state are single-statement
//! transactions of their own, separate from the directory writes they describe:
//! a cursor is only advanced after the changes it covers are committed, so a
//! crash between the two replays events (harmless: applying is idempotent)
//! rather than skipping them.

use crate::conn::{decode_error, from_micros, map_unique, to_micros};
use crate::{Result, Store, StoreError, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;
use time::OffsetDateTime;

/// Largest number of event ids kept in [`SourceState::seen_events`].
pub const MAX_SEEN_EVENTS: usize = 2000;

/// How an organisation's source is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub org_id: i64,
    /// `keycloak`.
    pub kind: String,
    /// Keycloak's base URL (`https://sso.example.org`, no `/realms/...`).
    pub base_url: String,
    pub realm: String,
    /// The confidential client Liaison authenticates as (client credentials).
    pub client_id: String,
    /// `file:/path` or `env:VAR`: where the client secret is read from.
    pub credential: String,
    /// Seconds between two full reconciliations.
    pub interval_secs: i64,
    /// The first full reconciliation may take over the resources the directory
    /// already holds, matching them by externalId, then by name.
    pub adopt: bool,
    pub created: OffsetDateTime,
}

/// Where following a source stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceState {
    /// Keycloak time (ms) of the last admin event applied.
    pub admin_cursor: Option<i64>,
    /// Keycloak time (ms) of the last user event applied.
    pub event_cursor: Option<i64>,
    /// Ids of the events applied at or just before the cursors.
    pub seen_events: Vec<String>,
    pub last_full_sync: Option<OffsetDateTime>,
    pub last_follow: Option<OffsetDateTime>,
    /// The last failure (cleared by the next success), without personal data.
    pub last_error: Option<String>,
    pub last_error_at: Option<OffsetDateTime>,
    /// Users and groups in the realm at the last full reconciliation.
    pub realm_users: Option<i64>,
    pub realm_groups: Option<i64>,
    /// Directory changes applied from the source since it was added.
    pub applied: i64,
    /// A full reconciliation was asked for and has not run yet.
    pub full_sync_requested: bool,
}

/// A source with its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub config: SourceRecord,
    pub state: SourceState,
}

/// What a completed run of the follower records.
#[derive(Debug, Clone, Default)]
pub struct SourceProgress {
    pub admin_cursor: Option<i64>,
    pub event_cursor: Option<i64>,
    pub seen_events: Vec<String>,
    /// Changes applied by this run.
    pub applied: i64,
    /// `Some((users, groups))` after a full reconciliation.
    pub full: Option<(i64, i64)>,
}

const COLUMNS: &str = "org_id, kind, base_url, realm, client_id, credential, interval_secs, \
     adopt, created, admin_cursor, event_cursor, seen_events, last_full_sync, last_follow, \
     last_error, last_error_at, realm_users, realm_groups, applied, full_sync_requested";

fn opt_time(row: &AnyRow, col: &str) -> Result<Option<OffsetDateTime>> {
    row.try_get::<Option<i64>, _>(col)?
        .map(from_micros)
        .transpose()
}

fn source_from_row(row: &AnyRow) -> Result<Source> {
    let seen: String = row.try_get("seen_events")?;
    let seen_events: Vec<String> = serde_json::from_str(&seen)
        .map_err(|e| decode_error(format!("sources.seen_events: {e}")))?;
    Ok(Source {
        config: SourceRecord {
            org_id: row.try_get("org_id")?,
            kind: row.try_get("kind")?,
            base_url: row.try_get("base_url")?,
            realm: row.try_get("realm")?,
            client_id: row.try_get("client_id")?,
            credential: row.try_get("credential")?,
            interval_secs: row.try_get("interval_secs")?,
            adopt: row.try_get::<i64, _>("adopt")? != 0,
            created: from_micros(row.try_get("created")?)?,
        },
        state: SourceState {
            admin_cursor: row.try_get("admin_cursor")?,
            event_cursor: row.try_get("event_cursor")?,
            seen_events,
            last_full_sync: opt_time(row, "last_full_sync")?,
            last_follow: opt_time(row, "last_follow")?,
            last_error: row.try_get("last_error")?,
            last_error_at: opt_time(row, "last_error_at")?,
            realm_users: row.try_get("realm_users")?,
            realm_groups: row.try_get("realm_groups")?,
            applied: row.try_get("applied")?,
            full_sync_requested: row.try_get::<i64, _>("full_sync_requested")? != 0,
        },
    })
}

fn seen_json(seen: &[String]) -> String {
    let start = seen.len().saturating_sub(MAX_SEEN_EVENTS);
    serde_json::to_string(&seen[start..]).unwrap_or_else(|_| "[]".to_owned())
}

impl Store {
    /// The source of an organisation, if it has one.
    pub async fn source(&self, org_id: i64) -> Result<Option<Source>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sources WHERE org_id = $1"))
            .bind(org_id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    /// Whether an organisation takes its directory from a source (then SCIM
    /// writes are refused).
    pub async fn has_source(&self, org_id: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sources WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(self.reader())
            .await?;
        Ok(n > 0)
    }

    /// Every configured source, by organisation id.
    pub async fn list_sources(&self) -> Result<Vec<Source>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM sources ORDER BY org_id"))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(source_from_row).collect()
    }

    /// Records a successful run of the follower: cursors, seen events, figures;
    /// clears the last error (and, after a full reconciliation, the adoption
    /// flag and any pending request). Does nothing if the source is gone.
    pub async fn record_source_progress(
        &self,
        org_id: i64,
        p: &SourceProgress,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let at = to_micros(now);
        sqlx::query(
            "UPDATE sources SET admin_cursor = COALESCE($1, admin_cursor), \
             event_cursor = COALESCE($2, event_cursor), seen_events = $3, \
             last_follow = $4, last_error = NULL, last_error_at = NULL, \
             applied = applied + $5 WHERE org_id = $6",
        )
        .bind(p.admin_cursor)
        .bind(p.event_cursor)
        .bind(seen_json(&p.seen_events))
        .bind(at)
        .bind(p.applied)
        .bind(org_id)
        .execute(&mut *tx.tx)
        .await?;
        if let Some((users, groups)) = p.full {
            sqlx::query(
                "UPDATE sources SET last_full_sync = $1, realm_users = $2, realm_groups = $3, \
                 adopt = 0, full_sync_requested = 0 WHERE org_id = $4",
            )
            .bind(at)
            .bind(users)
            .bind(groups)
            .bind(org_id)
            .execute(&mut *tx.tx)
            .await?;
        }
        tx.commit().await
    }

    /// Records a failed run (the message must not name people).
    pub async fn record_source_error(
        &self,
        org_id: i64,
        error: &str,
        applied: i64,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let error: String = error.chars().take(1000).collect();
        sqlx::query(
            "UPDATE sources SET last_error = $1, last_error_at = $2, applied = applied + $3 \
             WHERE org_id = $4",
        )
        .bind(error)
        .bind(to_micros(now))
        .bind(applied)
        .bind(org_id)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// Asks the server's follower for a full reconciliation at its next turn.
    /// Returns whether the organisation has a source.
    pub async fn request_full_sync(&self, org_id: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE sources SET full_sync_requested = 1 WHERE org_id = $1")
            .bind(org_id)
            .execute(&mut *tx.tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}

impl Tx {
    /// Adds an organisation's source. [`StoreError::Conflict`] if it has one.
    pub async fn insert_source(&mut self, s: &SourceRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO sources (org_id, kind, base_url, realm, client_id, credential, \
             interval_secs, adopt, created, seen_events, applied, full_sync_requested) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '[]', 0, 1)",
        )
        .bind(s.org_id)
        .bind(&s.kind)
        .bind(&s.base_url)
        .bind(&s.realm)
        .bind(&s.client_id)
        .bind(&s.credential)
        .bind(s.interval_secs)
        .bind(i64::from(s.adopt))
        .bind(to_micros(s.created))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| map_unique(e, |_| "the organisation already has a source".to_owned()))?;
        Ok(())
    }

    /// Changes a source's configuration. Pointing it at another realm (URL or
    /// realm name) resets the cursors and asks for a full reconciliation; the
    /// rest keeps the state. [`StoreError::NotFound`] if there is none.
    pub async fn update_source(&mut self, s: &SourceRecord) -> Result<()> {
        let done = sqlx::query(
            "UPDATE sources SET \
             admin_cursor = CASE WHEN base_url = $1 AND realm = $2 THEN admin_cursor END, \
             event_cursor = CASE WHEN base_url = $1 AND realm = $2 THEN event_cursor END, \
             full_sync_requested = CASE WHEN base_url = $1 AND realm = $2 \
                 THEN full_sync_requested ELSE 1 END, \
             base_url = $1, realm = $2, client_id = $3, credential = $4, interval_secs = $5 \
             WHERE org_id = $6",
        )
        .bind(&s.base_url)
        .bind(&s.realm)
        .bind(&s.client_id)
        .bind(&s.credential)
        .bind(s.interval_secs)
        .bind(s.org_id)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Removes an organisation's source (the directory keeps its resources).
    /// Returns whether there was one.
    pub async fn delete_source(&mut self, org_id: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sources WHERE org_id = $1")
            .bind(org_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Users and groups in an organisation's directory (the check before a
    /// source is added), seen by this transaction.
    pub async fn count_resources(&mut self, org_id: i64) -> Result<(i64, i64)> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM resources WHERE org_id = $1 GROUP BY kind",
        )
        .bind(org_id)
        .fetch_all(&mut *self.tx)
        .await?;
        let (mut users, mut groups) = (0, 0);
        for r in rows {
            let kind: String = r.try_get("kind")?;
            let n: i64 = r.try_get("n")?;
            match kind.as_str() {
                "User" => users = n,
                _ => groups = n,
            }
        }
        Ok((users, groups))
    }
}
