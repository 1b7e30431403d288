//! Setting up and inspecting one app's provisioning: the initial delivery of a
//! whole organisation to a newly added app, and outbox listings and counts for
//! operators (CLI and admin API).

use crate::conn::{decode_error, from_micros, to_micros};
use crate::provisioning::stored_settings;
use crate::{Adopt, AppRecord, PendingDelivery, Result, Store, Target, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;
use time::OffsetDateTime;

/// Same upsert as the directory's enqueues: an existing row is bumped and made
/// due again, so a resource already waiting is delivered once.
const CONFLICT: &str = "ON CONFLICT (app_id, target, resource_id, member_id) DO UPDATE \
     SET seq = outbox.seq + 1, state = 'pending', attempts = 0, \
     next_attempt = excluded.next_attempt, last_error = NULL";

/// One row of the outbox, with its app, for operators.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub app_name: String,
    pub delivery: PendingDelivery,
}

/// Pending and poisoned row counts of one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    pub pending: i64,
    pub poisoned: i64,
}

fn target(s: &str) -> Result<Target> {
    match s {
        "user" => Ok(Target::User),
        "group" => Ok(Target::Group),
        "member" => Ok(Target::Member),
        other => Err(decode_error(format!("unknown outbox target {other}"))),
    }
}

fn pending_from_row(row: &AnyRow) -> Result<PendingDelivery> {
    let state: String = row.try_get("state")?;
    Ok(PendingDelivery {
        app_id: row.try_get("app_id")?,
        target: target(row.try_get("target")?)?,
        resource_id: row.try_get("resource_id")?,
        member_id: row.try_get("member_id")?,
        poisoned: state == "poison",
        attempts: row.try_get("attempts")?,
        next_attempt: from_micros(row.try_get("next_attempt")?)?,
        last_error: row.try_get("last_error")?,
        enqueued: from_micros(row.try_get("enqueued")?)?,
    })
}

impl Tx {
    /// Enqueues, for `app` only, a delivery of every user of its organisation
    /// and, unless the app provisions no groups, of every group and every direct
    /// membership of a user. Three statements whatever the size of the
    /// organisation. Returns the number of rows written.
    pub async fn enqueue_all_for_app(&mut self, app: &AppRecord) -> Result<u64> {
        let now = to_micros(OffsetDateTime::now_utc());
        let insert = "INSERT INTO outbox (org_id, app_id, target, resource_id, member_id, seq, \
             state, attempts, next_attempt, lease_until, enqueued)";
        let mut statements = vec![format!(
            "{insert} SELECT org_id, $2, 'user', id, '', 1, 'pending', 0, $3, 0, $3 \
             FROM resources WHERE org_id = $1 AND kind = 'User' {CONFLICT}"
        )];
        if app.groups_as.provisions_groups() {
            statements.push(format!(
                "{insert} SELECT org_id, $2, 'group', id, '', 1, 'pending', 0, $3, 0, $3 \
                 FROM resources WHERE org_id = $1 AND kind = 'Group' {CONFLICT}"
            ));
            statements.push(format!(
                "{insert} SELECT org_id, $2, 'member', group_id, member_id, 1, 'pending', 0, $3, \
                 0, $3 FROM members WHERE org_id = $1 AND member_kind = 'User' {CONFLICT}"
            ));
        }
        let mut total = 0;
        for sql in statements {
            total += sqlx::query(&sql)
                .bind(app.org_id)
                .bind(app.id)
                .bind(now)
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
        }
        Ok(total)
    }
}

impl Tx {
    /// Sets whether existing accounts may be adopted by an app of an
    /// organisation, keeping its other settings; `false` when the organisation
    /// has no app of that name.
    pub async fn set_app_adopt(&mut self, org_id: i64, name: &str, adopt: Adopt) -> Result<bool> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT settings FROM apps WHERE org_id = $1 AND name = $2")
                .bind(org_id)
                .bind(name)
                .fetch_optional(&mut *self.tx)
                .await?;
        let Some(text) = text else {
            return Ok(false);
        };
        let settings: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| crate::conn::decode_error(format!("app settings: {e}")))?;
        sqlx::query("UPDATE apps SET settings = $1 WHERE org_id = $2 AND name = $3")
            .bind(stored_settings(&settings, adopt))
            .bind(org_id)
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(true)
    }
}

impl Store {
    /// The app of an organisation with this name.
    pub async fn app_by_name(&self, org_id: i64, name: &str) -> Result<Option<AppRecord>> {
        Ok(self
            .apps(org_id)
            .await?
            .into_iter()
            .find(|a| a.name == name))
    }

    /// Outbox rows of an organisation (optionally one app, optionally poisoned
    /// rows only), oldest first, at most `limit`.
    pub async fn outbox_rows(
        &self,
        org_id: i64,
        app_id: Option<i64>,
        poisoned_only: bool,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let poison = if poisoned_only {
            " AND x.state = 'poison'"
        } else {
            ""
        };
        let sql = format!(
            "SELECT a.name AS app_name, x.app_id, x.target, x.resource_id, x.member_id, x.state, \
             x.attempts, x.next_attempt, x.last_error, x.enqueued FROM outbox x \
             JOIN apps a ON a.id = x.app_id WHERE x.org_id = $1 AND ($2 = 0 OR x.app_id = $2)\
             {poison} ORDER BY x.id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(org_id)
            .bind(app_id.unwrap_or(0))
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxRow {
                    app_name: row.try_get("app_name")?,
                    delivery: pending_from_row(row)?,
                })
            })
            .collect()
    }

    /// Pending and poisoned counts per app id of an organisation (apps with an
    /// empty outbox are absent).
    pub async fn outbox_counts(&self, org_id: i64) -> Result<Vec<(i64, OutboxCounts)>> {
        let rows = sqlx::query(
            "SELECT app_id, \
             SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending, \
             SUM(CASE WHEN state = 'poison' THEN 1 ELSE 0 END) AS poisoned \
             FROM outbox WHERE org_id = $1 GROUP BY app_id",
        )
        .bind(org_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("app_id")?,
                    OutboxCounts {
                        pending: row.try_get::<Option<i64>, _>("pending")?.unwrap_or(0),
                        poisoned: row.try_get::<Option<i64>, _>("poisoned")?.unwrap_or(0),
                    },
                ))
            })
            .collect()
    }
}
