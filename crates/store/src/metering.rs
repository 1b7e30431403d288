//! Activity metering: webhook secrets, periods, their random keys, the keyed
//! hashes of the people seen active in an open period, and the counts that
//! survive a closed one.
//!
//! The store never sees a person id: callers hash it with the period key first
//! (`meter::keyed`). Nor does it see a period key in clear: callers hand it
//! sealed under a key-encryption key the database never holds, and open it
//! themselves. Closing a period counts the hashes, keeps the counts, and
//! deletes the key row, which deletes every hash of the period by cascade.
//!
//! Concurrency: a recording's foreign-key check takes a shared lock on the key
//! row (PostgreSQL `FOR KEY SHARE`) and closing an exclusive one (`FOR UPDATE`),
//! so a hash is either recorded before the close counts (and then counted and
//! deleted) or refused because the period's key row is gone; never left behind.
//! On SQLite writes are serialised anyway.

use crate::conn::to_micros;
use crate::{Dialect, Result, Store, Tx};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// Rows per multi-row `INSERT` when recording hashes.
const INSERT_CHUNK: usize = 200;

/// A metering period of one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodRow {
    pub org_id: i64,
    pub label: String,
    /// Bounds, microseconds since the epoch (end exclusive).
    pub starts: i64,
    pub ends: i64,
    pub closed: bool,
    /// The count of distinct people, once closed.
    pub active_accounts: Option<i64>,
}

/// Where a period stands for recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodKeyState {
    /// Open, with its key as stored: sealed (or, 32 bytes, a key written in
    /// clear by a version before sealing, not sealed yet).
    Open(Vec<u8>),
    /// Closed: nothing more can be recorded.
    Closed,
    /// Never opened.
    Absent,
}

/// The outcome of closing a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedCounts {
    /// Distinct people across every source.
    pub total: i64,
    /// Distinct people per source (`idp:keycloak` or an app's name).
    pub per_source: BTreeMap<String, i64>,
    /// The period was already closed: these are the counts kept then.
    pub already_closed: bool,
}

/// What a webhook request needs before it can record: see
/// [`Store::webhook_context`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookContext {
    pub org_id: i64,
    pub secret: Option<Vec<u8>>,
    pub period: PeriodKeyState,
}

/// `$first, $first+1, ...` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts of a period: live for an open one, kept for a closed one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeriodCounts {
    /// The period is closed: these are the counts kept at its close.
    pub closed: bool,
    pub total: i64,
    pub per_source: BTreeMap<String, i64>,
}

fn period_from_row(row: &sqlx::any::AnyRow) -> Result<PeriodRow> {
    let state: String = row.try_get("state")?;
    Ok(PeriodRow {
        org_id: row.try_get("org_id")?,
        label: row.try_get("label")?,
        starts: row.try_get("starts")?,
        ends: row.try_get("ends")?,
        closed: state == "closed",
        active_accounts: row.try_get("active_accounts")?,
    })
}

const PERIOD_COLUMNS: &str = "org_id, label, starts, ends, state, active_accounts";

impl Store {
    /// The organisation's webhook secret, if one was set.
    pub async fn webhook_secret(&self, org_id: i64) -> Result<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM meter_webhooks WHERE org_id = $1")
                .bind(org_id)
                .fetch_optional(self.reader())
                .await?,
        )
    }

    /// Sets (or replaces) the organisation's webhook secret.
    pub async fn set_webhook_secret(&self, org_id: i64, secret: &[u8]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO meter_webhooks (org_id, secret, created) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id) DO UPDATE SET secret = excluded.secret, created = excluded.created",
        )
        .bind(org_id)
        .bind(secret)
        .bind(to_micros(OffsetDateTime::now_utc()))
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// Where the period `label` of the organisation stands.
    pub async fn period_key(&self, org_id: i64, label: &str) -> Result<PeriodKeyState> {
        let row = sqlx::query(
            "SELECT p.state, k.sealed_key FROM meter_periods p \
             LEFT JOIN meter_keys k ON k.org_id = p.org_id AND k.label = p.label \
             WHERE p.org_id = $1 AND p.label = $2",
        )
        .bind(org_id)
        .bind(label)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else {
            return Ok(PeriodKeyState::Absent);
        };
        let state: String = row.try_get(0)?;
        let key: Option<Vec<u8>> = row.try_get(1)?;
        Ok(match (state.as_str(), key) {
            ("open", Some(k)) => PeriodKeyState::Open(k),
            _ => PeriodKeyState::Closed,
        })
    }

    /// Opens the period with `key` (sealed) unless it exists; returns its state
    /// after the call (the key stored first wins when processes race).
    pub async fn open_period(
        &self,
        org_id: i64,
        label: &str,
        starts: i64,
        ends: i64,
        key: &[u8],
    ) -> Result<PeriodKeyState> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO meter_periods (org_id, label, starts, ends, state) \
             VALUES ($1, $2, $3, $4, 'open') ON CONFLICT (org_id, label) DO NOTHING",
        )
        .bind(org_id)
        .bind(label)
        .bind(starts)
        .bind(ends)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            sqlx::query("INSERT INTO meter_keys (org_id, label, sealed_key) VALUES ($1, $2, $3)")
                .bind(org_id)
                .bind(label)
                .bind(key)
                .execute(&mut *tx.tx)
                .await?;
        }
        tx.commit().await?;
        self.period_key(org_id, label).await
    }

    /// Records keyed hashes of people seen active in an open period, once per
    /// source. Returns how many were new, or `None` when the period is closed
    /// (or was never opened): nothing is recorded then.
    ///
    /// Each chunk is one `INSERT` statement, atomic on its own: the foreign key
    /// to the period's key row refuses it once the period is closed (the key row
    /// is gone), and on PostgreSQL the key-share lock the check takes keeps a
    /// concurrent close waiting until the statement is done, so the close
    /// counts what it inserted.
    pub async fn record_seen(
        &self,
        org_id: i64,
        label: &str,
        source: &str,
        hashes: &[[u8; 32]],
    ) -> Result<Option<u64>> {
        let mut inserted = 0;
        for chunk in hashes.chunks(INSERT_CHUNK) {
            let mut sql =
                String::from("INSERT INTO meter_seen (org_id, label, source, hash) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let b = 4 + i;
                sql.push_str(&format!("($1, $2, $3, ${b})"));
            }
            sql.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(&sql).bind(org_id).bind(label).bind(source);
            for h in chunk {
                q = q.bind(h.to_vec());
            }
            match q.execute(self.writer()).await {
                Ok(done) => inserted += done.rows_affected(),
                Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                    // Closed (or never opened). Earlier chunks of this call, if
                    // any, were recorded before the close and counted by it.
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(inserted))
    }

    /// What the webhook needs, in one round trip: the organisation's id, its
    /// webhook secret, and the state of its period `label`. `None` when no
    /// organisation has this slug.
    pub async fn webhook_context(&self, slug: &str, label: &str) -> Result<Option<WebhookContext>> {
        let row = sqlx::query(
            "SELECT o.id, w.secret, p.state, k.sealed_key FROM orgs o \
             LEFT JOIN meter_webhooks w ON w.org_id = o.id \
             LEFT JOIN meter_periods p ON p.org_id = o.id AND p.label = $2 \
             LEFT JOIN meter_keys k ON k.org_id = o.id AND k.label = $2 \
             WHERE o.slug = $1",
        )
        .bind(slug)
        .bind(label)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let state: Option<String> = row.try_get(2)?;
        let key: Option<Vec<u8>> = row.try_get(3)?;
        Ok(Some(WebhookContext {
            org_id: row.try_get(0)?,
            secret: row.try_get(1)?,
            period: match (state.as_deref(), key) {
                (None, _) => PeriodKeyState::Absent,
                (Some("open"), Some(k)) => PeriodKeyState::Open(k),
                _ => PeriodKeyState::Closed,
            },
        }))
    }

    /// The person id each subject of the identity provider designates in the
    /// organisation's directory, keyed by subject: the user's `externalId` when
    /// set, else its id, for the user whose externalId (first) or id is the
    /// subject or, failing that, whose userName is the given user name.
    /// Subjects no user matches are absent.
    pub async fn persons_for_subjects(
        &self,
        org_id: i64,
        subjects: &[(&str, Option<&str>)],
    ) -> Result<HashMap<String, String>> {
        let mut found: HashMap<String, String> = HashMap::new();
        for chunk in subjects.chunks(INSERT_CHUNK) {
            // One query per chunk: the users whose externalId or id is one of
            // the subjects, or whose userName is one of the given names.
            let names: Vec<String> = chunk
                .iter()
                .filter_map(|(_, n)| n.map(str::to_lowercase))
                .collect();
            let list = placeholders(2, chunk.len());
            let by_name = if names.is_empty() {
                String::new()
            } else {
                format!(
                    " OR name_lc IN ({})",
                    placeholders(2 + chunk.len(), names.len())
                )
            };
            let sql = format!(
                "SELECT external_id, id, name_lc, COALESCE(external_id, id) FROM resources \
                 WHERE org_id = $1 AND kind = 'User' \
                 AND (external_id IN ({list}) OR id IN ({list}){by_name})"
            );
            let mut q = sqlx::query(&sql).bind(org_id);
            for (s, _) in chunk {
                q = q.bind(*s);
            }
            for name in &names {
                q = q.bind(name.as_str());
            }
            let mut by_external: HashMap<String, String> = HashMap::new();
            let mut by_id: HashMap<String, String> = HashMap::new();
            let mut by_name_lc: HashMap<String, String> = HashMap::new();
            for row in q.fetch_all(self.reader()).await? {
                let ext: Option<String> = row.try_get(0)?;
                let id: String = row.try_get(1)?;
                let name: String = row.try_get(2)?;
                let person: String = row.try_get(3)?;
                if let Some(e) = ext {
                    by_external.insert(e, person.clone());
                }
                by_id.insert(id, person.clone());
                by_name_lc.insert(name, person);
            }
            // externalId matches win over id matches, which win over names.
            for (subject, name) in chunk {
                let person = by_external
                    .get(*subject)
                    .or_else(|| by_id.get(*subject))
                    .or_else(|| name.and_then(|n| by_name_lc.get(&n.to_lowercase())));
                if let Some(p) = person {
                    found.insert((*subject).to_owned(), p.clone());
                }
            }
        }
        Ok(found)
    }

    /// For one app, the person id (externalId, else id) of every user it holds
    /// an account for, keyed by the app's own id of the account.
    pub async fn persons_for_app(&self, app_id: i64) -> Result<HashMap<String, String>> {
        let rows = sqlx::query(
            "SELECT l.app_ref, COALESCE(r.external_id, r.id) FROM app_links l \
             JOIN apps a ON a.id = l.app_id \
             JOIN resources r ON r.org_id = a.org_id AND r.id = l.resource_id \
             WHERE l.app_id = $1 AND l.app_ref IS NOT NULL AND r.kind = 'User'",
        )
        .bind(app_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The stored key of every open period, of every organisation, as
    /// `(org_id, label, key)`: what a process checks its cached periods
    /// against (a period missing here was closed; a different key, closed and
    /// opened again).
    pub async fn open_period_keys(&self) -> Result<Vec<(i64, String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT org_id, label, sealed_key FROM meter_keys")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// The keys of open periods still stored in clear (by a version before
    /// sealing), as `(org_id, label, key)`.
    pub async fn clear_period_keys(&self) -> Result<Vec<(i64, String, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT org_id, label, sealed_key FROM meter_keys WHERE length(sealed_key) = 32",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Replaces a period key stored in clear by its sealed form, unless
    /// another process did first (then `false`).
    pub async fn seal_period_key(
        &self,
        org_id: i64,
        label: &str,
        clear: &[u8],
        sealed: &[u8],
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE meter_keys SET sealed_key = $4 \
             WHERE org_id = $1 AND label = $2 AND sealed_key = $3",
        )
        .bind(org_id)
        .bind(label)
        .bind(clear)
        .bind(sealed)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Makes period keys replaced by their sealed form unrecoverable from the
    /// database files, best effort: PostgreSQL rewrites the table into new
    /// files (`VACUUM FULL`; a plain `VACUUM` leaves old row versions in its
    /// pages), SQLite has overwritten them (`secure_delete`) and checkpoints
    /// its write-ahead log.
    pub async fn scrub_period_keys(&self) {
        let sql = match self.dialect() {
            Dialect::Postgres => "VACUUM FULL meter_keys",
            Dialect::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        if let Err(e) = sqlx::query(sql).execute(self.writer()).await {
            tracing::warn!(error = %e, "scrubbing replaced period keys failed");
        }
    }

    /// Every period still open, of every organisation.
    pub async fn open_periods(&self) -> Result<Vec<PeriodRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {PERIOD_COLUMNS} FROM meter_periods WHERE state = 'open' ORDER BY org_id, starts"
        ))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(period_from_row).collect()
    }

    /// The period `label` of one organisation.
    pub async fn period(&self, org_id: i64, label: &str) -> Result<Option<PeriodRow>> {
        let row = sqlx::query(&format!(
            "SELECT {PERIOD_COLUMNS} FROM meter_periods WHERE org_id = $1 AND label = $2"
        ))
        .bind(org_id)
        .bind(label)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(period_from_row).transpose()
    }

    /// The counts of a period: kept ones when closed, live ones (from the keyed
    /// hashes) when open, zero when it never opened.
    pub async fn period_counts(&self, org_id: i64, label: &str) -> Result<PeriodCounts> {
        let Some(p) = self.period(org_id, label).await? else {
            return Ok(PeriodCounts::default());
        };
        if p.closed {
            let mut conn = self.reader().acquire().await?;
            return Ok(PeriodCounts {
                closed: true,
                total: p.active_accounts.unwrap_or(0),
                per_source: kept_counts(&mut conn, org_id, label).await?,
            });
        }
        let mut conn = self.reader().acquire().await?;
        live_counts(&mut conn, org_id, label).await
    }

    /// Closes a period: counts the distinct keyed hashes (in all and per
    /// source), keeps the counts, and deletes the period's key and every hash.
    /// A period that never opened is recorded closed with zero. Closing a closed
    /// period changes nothing and returns its kept counts.
    pub async fn close_period(
        &self,
        org_id: i64,
        label: &str,
        starts: i64,
        ends: i64,
    ) -> Result<ClosedCounts> {
        let mut tx = self.begin().await?;
        let outcome = tx.close_period(org_id, label, starts, ends).await?;
        tx.commit().await?;
        if !outcome.already_closed {
            self.scrub_deleted().await;
        }
        Ok(outcome)
    }

    /// Makes deleted keyed hashes unrecoverable from the database files, best
    /// effort. PostgreSQL keeps deleted rows in the table's pages until
    /// vacuumed: vacuum now rather than whenever autovacuum comes by. SQLite
    /// overwrites deleted content (`secure_delete`), but earlier versions of the
    /// pages remain in the write-ahead log until it is checkpointed and
    /// truncated.
    async fn scrub_deleted(&self) {
        let sql = match self.dialect() {
            Dialect::Postgres => "VACUUM meter_seen, meter_keys",
            Dialect::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        if let Err(e) = sqlx::query(sql).execute(self.writer()).await {
            tracing::warn!(error = %e, "scrubbing deleted metering rows failed");
        }
    }

    /// The reference of the invoice exported for a period to `system`, if any.
    pub async fn invoice_ref(
        &self,
        org_id: i64,
        label: &str,
        system: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT reference FROM meter_invoices WHERE org_id = $1 AND label = $2 AND system = $3",
        )
        .bind(org_id)
        .bind(label)
        .bind(system)
        .fetch_optional(self.reader())
        .await?)
    }

    /// Records that the period's invoice was exported to `system` as `reference`.
    pub async fn record_invoice(
        &self,
        org_id: i64,
        label: &str,
        system: &str,
        reference: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO meter_invoices (org_id, label, system, reference, created) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(org_id)
        .bind(label)
        .bind(system)
        .bind(reference)
        .bind(to_micros(OffsetDateTime::now_utc()))
        .execute(&mut *tx.tx)
        .await
        .map_err(|e| {
            crate::conn::map_unique(e, |_| format!("invoice for {label} already exported"))
        })?;
        tx.commit().await
    }
}

/// The per-source counts kept when the period closed.
async fn kept_counts(
    conn: &mut sqlx::AnyConnection,
    org_id: i64,
    label: &str,
) -> Result<BTreeMap<String, i64>> {
    let rows =
        sqlx::query("SELECT source, accounts FROM meter_counts WHERE org_id = $1 AND label = $2")
            .bind(org_id)
            .bind(label)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

async fn live_counts(
    conn: &mut sqlx::AnyConnection,
    org_id: i64,
    label: &str,
) -> Result<PeriodCounts> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT hash) FROM meter_seen WHERE org_id = $1 AND label = $2",
    )
    .bind(org_id)
    .bind(label)
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query(
        "SELECT source, COUNT(*) FROM meter_seen WHERE org_id = $1 AND label = $2 GROUP BY source",
    )
    .bind(org_id)
    .bind(label)
    .fetch_all(&mut *conn)
    .await?;
    let per_source = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_>>()?;
    Ok(PeriodCounts {
        closed: false,
        total,
        per_source,
    })
}

impl Tx {
    /// [`Store::close_period`] inside a transaction.
    pub async fn close_period(
        &mut self,
        org_id: i64,
        label: &str,
        starts: i64,
        ends: i64,
    ) -> Result<ClosedCounts> {
        let lock = match self.dialect {
            Dialect::Postgres => {
                "SELECT state FROM meter_periods WHERE org_id = $1 AND label = $2 FOR UPDATE"
            }
            Dialect::Sqlite => "SELECT state FROM meter_periods WHERE org_id = $1 AND label = $2",
        };
        let state: Option<String> = sqlx::query_scalar(lock)
            .bind(org_id)
            .bind(label)
            .fetch_optional(&mut *self.tx)
            .await?;
        if state.as_deref() == Some("closed") {
            let total: Option<i64> = sqlx::query_scalar(
                "SELECT active_accounts FROM meter_periods WHERE org_id = $1 AND label = $2",
            )
            .bind(org_id)
            .bind(label)
            .fetch_one(&mut *self.tx)
            .await?;
            return Ok(ClosedCounts {
                total: total.unwrap_or(0),
                per_source: kept_counts(&mut self.tx, org_id, label).await?,
                already_closed: true,
            });
        }
        if self.dialect == Dialect::Postgres {
            // Waits for recordings holding the key row, and keeps new ones out.
            sqlx::query("SELECT 1 FROM meter_keys WHERE org_id = $1 AND label = $2 FOR UPDATE")
                .bind(org_id)
                .bind(label)
                .execute(&mut *self.tx)
                .await?;
        }
        let counts = live_counts(&mut self.tx, org_id, label).await?;
        let now = to_micros(OffsetDateTime::now_utc());
        if state.is_none() {
            sqlx::query(
                "INSERT INTO meter_periods (org_id, label, starts, ends, state, active_accounts, closed_at) \
                 VALUES ($1, $2, $3, $4, 'closed', $5, $6)",
            )
            .bind(org_id)
            .bind(label)
            .bind(starts)
            .bind(ends)
            .bind(counts.total)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        } else {
            sqlx::query(
                "UPDATE meter_periods SET state = 'closed', active_accounts = $3, closed_at = $4 \
                 WHERE org_id = $1 AND label = $2",
            )
            .bind(org_id)
            .bind(label)
            .bind(counts.total)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        }
        for (source, n) in &counts.per_source {
            sqlx::query(
                "INSERT INTO meter_counts (org_id, label, source, accounts) VALUES ($1, $2, $3, $4)",
            )
            .bind(org_id)
            .bind(label)
            .bind(source)
            .bind(n)
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query("DELETE FROM meter_seen WHERE org_id = $1 AND label = $2")
            .bind(org_id)
            .bind(label)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM meter_keys WHERE org_id = $1 AND label = $2")
            .bind(org_id)
            .bind(label)
            .execute(&mut *self.tx)
            .await?;
        Ok(ClosedCounts {
            total: counts.total,
            per_source: counts.per_source,
            already_closed: false,
        })
    }
}
