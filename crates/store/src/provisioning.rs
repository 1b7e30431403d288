//! Provisioning state: the apps of each organisation, the outbox of pending
//! deliveries, and what each app holds for each resource (`app_links`).
//!
//! The outbox is filled inside the transaction of the directory change that
//! causes it ([`Tx::enqueue`]), so a change and its deliveries commit or vanish
//! together. Workers lease due rows ([`Store::claim_deliveries`]); on PostgreSQL
//! several processes share the work with `FOR UPDATE SKIP LOCKED`, on SQLite the
//! single writer connection serialises claims.
//!
//! A lease is short and named (`lease_owner`, see [`lease_id`]): the worker
//! renews the leases it holds while it works ([`Store::renew_leases`]), and
//! completions, failures and hand-backs apply only to the lease they name, so a
//! worker whose lease ran out and was taken over changes nothing. A lease that
//! is not renewed (the worker died) expires and the row is claimable again; a
//! restarted process on SQLite takes back its earlier incarnations' rows at once
//! ([`Store::reclaim_leases`]). A crash delays a delivery, never drops it. Lease
//! times are read from the database's clock on PostgreSQL (one clock for every
//! process), from the process's on SQLite (one process owns the file).

use crate::conn::{from_micros, map_unique, to_micros};
use crate::{Adopt, AppKind, Deprovision, GroupsAs};
use crate::{Dialect, Result, Store, Tx};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::time::Duration;
use time::OffsetDateTime;

/// An app of an organisation, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRecord {
    pub id: i64,
    pub org_id: i64,
    /// Unique within the organisation.
    pub name: String,
    pub kind: AppKind,
    pub base_url: String,
    /// Where the secret is: `file:/path` or `env:VAR`. Never the secret.
    pub credential: String,
    pub groups_as: GroupsAs,
    pub deprovision: Deprovision,
    /// Whether existing accounts may be adopted (stored as the `adopt` key of
    /// the settings, absent when `never`).
    pub adopt: Adopt,
    /// Kind-specific settings (e.g. Synapse's `server_name`), without `adopt`.
    pub settings: Value,
    pub created: OffsetDateTime,
}

/// What a delivery brings up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    User,
    Group,
    /// One membership: `resource_id` is the group, `member_id` the member.
    Member,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::User => "user",
            Target::Group => "group",
            Target::Member => "member",
        }
    }

    fn parse(s: &str) -> Result<Target> {
        match s {
            "user" => Ok(Target::User),
            "group" => Ok(Target::Group),
            "member" => Ok(Target::Member),
            other => Err(crate::conn::decode_error(format!(
                "unknown outbox target {other}"
            ))),
        }
    }
}

/// A leased outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub org_id: i64,
    pub app_id: i64,
    pub target: Target,
    pub resource_id: String,
    /// Empty unless `target` is [`Target::Member`].
    pub member_id: String,
    /// The change count this lease covers; a newer change bumps it.
    pub seq: i64,
    /// Failed attempts so far.
    pub attempts: i64,
    /// A reconciliation repair: delivered even when the app is recorded as
    /// holding the directory's state already.
    pub forced: bool,
    /// The lease this worker holds ([`lease_id`]): a worker whose lease ran out
    /// and was taken over no longer changes the row.
    pub lease: String,
    /// When the lease ends as claimed (microseconds; the database's clock on
    /// PostgreSQL). Renewals move it in the database only.
    pub lease_until: i64,
}

/// The name of a lease: `{role}:{incarnation}/{claim}`. `role` says what kind of
/// process holds it (`serve`, `sync`...), `incarnation` is unique to one run of
/// one worker, `claim` counts its claims.
pub fn lease_id(role: &str, incarnation: &str, claim: u64) -> String {
    format!("{role}:{incarnation}/{claim}")
}

/// The current time in microseconds as lease statements read it: PostgreSQL's
/// clock at the start of the statement, or the parameter `param` (the
/// process's clock) on SQLite.
fn lease_clock(dialect: Dialect, param: &str) -> String {
    match dialect {
        Dialect::Postgres => {
            "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000)::BIGINT".to_owned()
        }
        Dialect::Sqlite => param.to_owned(),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

const DELIVERY_COLUMNS: &str =
    "id, org_id, app_id, target, resource_id, member_id, seq, attempts, forced, lease_owner, \
     lease_until";

/// What an app holds for a resource, and how the last attempt went.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub app_id: i64,
    pub resource_id: String,
    /// The app's own id for the resource, once created there.
    pub app_ref: Option<String>,
    /// The state last delivered (connector-specific JSON).
    pub delivered: Option<Value>,
    /// `ok`, `retrying`, `failed` (poison), `deprovisioned`.
    pub status: String,
    pub last_attempt: OffsetDateTime,
    pub last_error: Option<String>,
}

/// A pending or poisoned outbox row, for operators.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub app_id: i64,
    pub target: Target,
    pub resource_id: String,
    pub member_id: String,
    pub poisoned: bool,
    pub attempts: i64,
    pub next_attempt: OffsetDateTime,
    pub last_error: Option<String>,
    pub enqueued: OffsetDateTime,
}

/// Outbox figures for one app, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxStats {
    pub org_slug: String,
    pub app_name: String,
    pub pending: i64,
    pub poisoned: i64,
    pub oldest_pending: Option<OffsetDateTime>,
}

const APP_COLUMNS: &str =
    "id, org_id, name, kind, base_url, credential, groups_as, deprovision, settings, created";

/// The key of `apps.settings` that holds [`AppRecord::adopt`].
const ADOPT_KEY: &str = "adopt";

/// An app as stored: its settings' text parsed, an unknown value refused
/// ([`crate::StoreError::UnknownSetting`]).
fn app_from_row(row: &AnyRow) -> Result<AppRecord> {
    let text: String = row.try_get("settings")?;
    let mut settings: Value = serde_json::from_str(&text)
        .map_err(|e| crate::conn::decode_error(format!("app settings: {e}")))?;
    let adopt = match settings.as_object_mut().and_then(|m| m.remove(ADOPT_KEY)) {
        None => Adopt::Never,
        Some(Value::String(a)) => a.parse()?,
        Some(other) => other.to_string().parse()?,
    };
    Ok(AppRecord {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        kind: row.try_get::<String, _>("kind")?.parse()?,
        base_url: row.try_get("base_url")?,
        credential: row.try_get("credential")?,
        groups_as: row.try_get::<String, _>("groups_as")?.parse()?,
        deprovision: row.try_get::<String, _>("deprovision")?.parse()?,
        adopt,
        settings,
        created: from_micros(row.try_get("created")?)?,
    })
}

/// The settings as stored: `settings` with `adopt` added unless it is `never`.
pub(crate) fn stored_settings(settings: &Value, adopt: Adopt) -> String {
    let mut map = settings.as_object().cloned().unwrap_or_default();
    map.remove(ADOPT_KEY);
    if adopt != Adopt::Never {
        map.insert(ADOPT_KEY.into(), Value::String(adopt.as_str().into()));
    }
    Value::Object(map).to_string()
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        app_id: row.try_get("app_id")?,
        target: Target::parse(row.try_get("target")?)?,
        resource_id: row.try_get("resource_id")?,
        member_id: row.try_get("member_id")?,
        seq: row.try_get("seq")?,
        attempts: row.try_get("attempts")?,
        forced: row.try_get::<i64, _>("forced")? != 0,
        lease: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
    })
}

fn link_from_row(row: &AnyRow) -> Result<Link> {
    let delivered: Option<String> = row.try_get("delivered")?;
    Ok(Link {
        app_id: row.try_get("app_id")?,
        resource_id: row.try_get("resource_id")?,
        app_ref: row.try_get("app_ref")?,
        delivered: delivered.and_then(|d| serde_json::from_str(&d).ok()),
        status: row.try_get("status")?,
        last_attempt: from_micros(row.try_get("last_attempt")?)?,
        last_error: row.try_get("last_error")?,
    })
}

fn now_micros() -> i64 {
    to_micros(OffsetDateTime::now_utc())
}

/// The upsert that records a change: a new row, or the existing row bumped
/// (pending again, attempts reset, due now) so superseded changes coalesce.
const ENQUEUE_CONFLICT: &str = "ON CONFLICT (app_id, target, resource_id, member_id) DO UPDATE \
     SET seq = outbox.seq + 1, state = 'pending', attempts = 0, \
     next_attempt = excluded.next_attempt, last_error = NULL";

/// Gives a row back for another round after a newer change arrived, unless
/// another worker has taken it over meanwhile (its lease is then not ours).
async fn release(tx: &mut Tx, d: &Delivery) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET lease_until = 0, lease_owner = '' WHERE id = $1 AND lease_owner = $2",
    )
    .bind(d.id)
    .bind(&d.lease)
    .execute(&mut *tx.tx)
    .await?;
    Ok(())
}

impl Tx {
    /// Adds an app; `Conflict` if the organisation already has one of that name.
    pub async fn create_app(&mut self, app: &AppRecord) -> Result<AppRecord> {
        let created = to_micros(app.created);
        let sql = format!(
            "INSERT INTO apps (org_id, name, kind, base_url, credential, groups_as, deprovision, \
             settings, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {APP_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(app.org_id)
            .bind(&app.name)
            .bind(app.kind.as_str())
            .bind(&app.base_url)
            .bind(&app.credential)
            .bind(app.groups_as.as_str())
            .bind(app.deprovision.as_str())
            .bind(stored_settings(&app.settings, app.adopt))
            .bind(created)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(|e| map_unique(e, |_| format!("app {} already exists", app.name)))?;
        app_from_row(&row)
    }

    /// Removes an app with its outbox rows and links.
    pub async fn delete_app(&mut self, org_id: i64, name: &str) -> Result<bool> {
        let app: Option<i64> =
            sqlx::query_scalar("SELECT id FROM apps WHERE org_id = $1 AND name = $2")
                .bind(org_id)
                .bind(name)
                .fetch_optional(&mut *self.tx)
                .await?;
        let Some(id) = app else { return Ok(false) };
        for table in ["outbox", "app_links"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE app_id = $1"))
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(true)
    }

    /// Records that `target` changed, for every app of the organisation (groups
    /// and memberships only for apps that provision groups). One statement,
    /// whatever the number of apps; nothing when the organisation has none.
    pub async fn enqueue(
        &mut self,
        org_id: i64,
        target: Target,
        resource_id: &str,
        member_id: Option<&str>,
    ) -> Result<()> {
        let groups_only = if target == Target::User {
            String::new()
        } else {
            format!(" AND groups_as <> '{}'", GroupsAs::None.as_str())
        };
        let sql = format!(
            "INSERT INTO outbox (org_id, app_id, target, resource_id, member_id, seq, state, \
             attempts, next_attempt, lease_until, enqueued) \
             SELECT org_id, id, $2, $3, $4, 1, 'pending', 0, $5, 0, $5 FROM apps \
             WHERE org_id = $1{groups_only} {ENQUEUE_CONFLICT}"
        );
        sqlx::query(&sql)
            .bind(org_id)
            .bind(target.as_str())
            .bind(resource_id)
            .bind(member_id.unwrap_or(""))
            .bind(now_micros())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// [`Tx::enqueue`] for many memberships of one group, in one statement
    /// (the member ids go as one JSON array parameter).
    pub async fn enqueue_members(
        &mut self,
        org_id: i64,
        group_id: &str,
        member_ids: &[String],
    ) -> Result<()> {
        if member_ids.is_empty() {
            return Ok(());
        }
        let members = self.dialect().distinct_text_elements("$3");
        let none = GroupsAs::None.as_str();
        let sql = format!(
            "INSERT INTO outbox (org_id, app_id, target, resource_id, member_id, seq, state, \
             attempts, next_attempt, lease_until, enqueued) \
             SELECT a.org_id, a.id, 'member', $2, m.value, 1, 'pending', 0, $4, 0, $4 \
             FROM apps a, {members} m WHERE a.org_id = $1 AND a.groups_as <> '{none}' \
             {ENQUEUE_CONFLICT}"
        );
        let ids = serde_json::to_string(member_ids).expect("strings serialise");
        sqlx::query(&sql)
            .bind(org_id)
            .bind(group_id)
            .bind(ids)
            .bind(now_micros())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records a change for one app only (re-delivery).
    pub async fn enqueue_for_app(
        &mut self,
        app: &AppRecord,
        target: Target,
        resource_id: &str,
        member_id: Option<&str>,
    ) -> Result<()> {
        self.enqueue_one(app, target, resource_id, member_id, false)
            .await
    }

    /// Records a reconciliation repair for one app: like
    /// [`Tx::enqueue_for_app`], and the delivery sends the directory's state
    /// even when the app is recorded as holding it (the app changed behind
    /// Liaison's back).
    pub async fn enqueue_repair(
        &mut self,
        app: &AppRecord,
        target: Target,
        resource_id: &str,
        member_id: Option<&str>,
    ) -> Result<()> {
        self.enqueue_one(app, target, resource_id, member_id, true)
            .await
    }

    async fn enqueue_one(
        &mut self,
        app: &AppRecord,
        target: Target,
        resource_id: &str,
        member_id: Option<&str>,
        forced: bool,
    ) -> Result<()> {
        let force = if forced { ", forced = 1" } else { "" };
        let sql = format!(
            "INSERT INTO outbox (org_id, app_id, target, resource_id, member_id, seq, state, \
             attempts, next_attempt, lease_until, enqueued, forced) \
             VALUES ($1, $2, $3, $4, $5, 1, 'pending', 0, $6, 0, $6, {}) {ENQUEUE_CONFLICT}{force}",
            i64::from(forced)
        );
        sqlx::query(&sql)
            .bind(app.org_id)
            .bind(app.id)
            .bind(target.as_str())
            .bind(resource_id)
            .bind(member_id.unwrap_or(""))
            .bind(now_micros())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The groups `member_id` is a direct member of.
    pub async fn groups_of_member(&mut self, org_id: i64, member_id: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT group_id FROM members WHERE org_id = $1 AND member_id = $2")
                .bind(org_id)
                .bind(member_id)
                .fetch_all(&mut *self.tx)
                .await?,
        )
    }

    /// Queues the deliveries of every membership of `member_id` to one app, for
    /// apps that forget them (Synapse drops room memberships on deactivation).
    /// With `only_missing`, memberships that already have a queued delivery are
    /// left as they are (no extra round for them).
    pub async fn enqueue_memberships_of(
        &mut self,
        app: &AppRecord,
        member_id: &str,
        only_missing: bool,
    ) -> Result<()> {
        let conflict = if only_missing {
            "ON CONFLICT (app_id, target, resource_id, member_id) DO NOTHING"
        } else {
            ENQUEUE_CONFLICT
        };
        let sql = format!(
            "INSERT INTO outbox (org_id, app_id, target, resource_id, member_id, seq, state, \
             attempts, next_attempt, lease_until, enqueued) \
             SELECT org_id, $1, 'member', group_id, member_id, 1, 'pending', 0, $2, 0, $2 \
             FROM members WHERE org_id = $3 AND member_id = $4 {conflict}"
        );
        sqlx::query(&sql)
            .bind(app.id)
            .bind(now_micros())
            .bind(app.org_id)
            .bind(member_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Whether `member_id` is a direct member of `group_id`.
    pub async fn is_member(&self, org_id: i64, group_id: &str, member_id: &str) -> Result<bool> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT member_kind FROM members WHERE org_id = $1 AND group_id = $2 AND member_id = $3",
        )
        .bind(org_id)
        .bind(group_id)
        .bind(member_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(found.is_some())
    }

    /// Whether a delivery of `target` for `resource_id` to the app is queued
    /// (pending, leased or not; poisoned rows do not count).
    pub async fn is_queued(&self, app_id: i64, target: Target, resource_id: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM outbox WHERE app_id = $1 AND target = $2 AND resource_id = $3 \
             AND member_id = '' AND state = 'pending'",
        )
        .bind(app_id)
        .bind(target.as_str())
        .bind(resource_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(found.is_some())
    }

    /// The apps of an organisation, by name.
    pub async fn apps(&self, org_id: i64) -> Result<Vec<AppRecord>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE org_id = $1 ORDER BY name");
        let rows = sqlx::query(&sql)
            .bind(org_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(app_from_row).collect()
    }

    /// Every app of every organisation.
    pub async fn all_apps(&self) -> Result<Vec<AppRecord>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY org_id, name");
        let rows = sqlx::query(&sql).fetch_all(self.reader()).await?;
        rows.iter().map(app_from_row).collect()
    }

    pub async fn app_by_id(&self, id: i64) -> Result<Option<AppRecord>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    /// Leases up to `limit` due deliveries under the lease named `lease_id`
    /// ([`lease_id`]) for `lease`. Rows leased by another worker are skipped;
    /// rows whose lease expired are taken again.
    pub async fn claim_deliveries(
        &self,
        lease_id: &str,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Delivery>> {
        self.claim(lease_id, limit, lease, "").await
    }

    /// [`Store::claim_deliveries`] for the reconciliation repairs of one app
    /// ([`Tx::enqueue_repair`]), users and groups (`members` false) or
    /// memberships (`members` true).
    pub async fn claim_repairs(
        &self,
        lease_id: &str,
        app_id: i64,
        members: bool,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Delivery>> {
        let target = if members { "=" } else { "<>" };
        let filter = format!(" AND app_id = {app_id} AND forced = 1 AND target {target} 'member'");
        self.claim(lease_id, limit, lease, &filter).await
    }

    async fn claim(
        &self,
        lease_id: &str,
        limit: i64,
        lease: Duration,
        filter: &str,
    ) -> Result<Vec<Delivery>> {
        let now = now_micros();
        let lock = match self.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let clock = lease_clock(self.dialect(), "$2");
        let sql = format!(
            "UPDATE outbox SET lease_until = {clock} + $1, lease_owner = $4 \
             WHERE id IN (SELECT id FROM outbox \
             WHERE state = 'pending' AND next_attempt <= $2 AND lease_until <= {clock}{filter} \
             ORDER BY next_attempt, id LIMIT $3{lock}) RETURNING {DELIVERY_COLUMNS}"
        );
        let mut tx = self.begin().await?;
        let rows = sqlx::query(&sql)
            .bind(micros(lease))
            .bind(now)
            .bind(limit)
            .bind(lease_id)
            .fetch_all(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        let mut out = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    /// Extends the leases of the rows a worker holds to `lease` from now, in one
    /// statement (the worker's heartbeat). Rows another worker has taken over,
    /// and rows settled meanwhile, are left alone. Returns the rows renewed.
    pub async fn renew_leases(&self, held: &[Delivery], lease: Duration) -> Result<u64> {
        if held.is_empty() {
            return Ok(0);
        }
        let mut leases: Vec<&str> = held.iter().map(|d| d.lease.as_str()).collect();
        leases.sort_unstable();
        leases.dedup();
        let ids = held
            .iter()
            .map(|d| d.id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        // The process's clock is parameter $2 on SQLite only.
        let (clock, first) = match self.dialect() {
            Dialect::Postgres => (lease_clock(Dialect::Postgres, ""), 2),
            Dialect::Sqlite => ("$2".to_owned(), 3),
        };
        let names = (0..leases.len())
            .map(|i| format!("${}", i + first))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE outbox SET lease_until = {clock} + $1 \
             WHERE id IN ({ids}) AND lease_owner IN ({names})"
        );
        let mut q = sqlx::query(&sql).bind(micros(lease));
        if first == 3 {
            q = q.bind(now_micros());
        }
        for l in &leases {
            q = q.bind(*l);
        }
        let mut tx = self.begin().await?;
        let n = q.execute(&mut *tx.tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Takes back at once the rows leased by earlier incarnations of `role`
    /// (every lease of that role but those of `incarnation`), and rows leased
    /// before leases were named. For SQLite, where one `serve` process owns the
    /// file: a restarted process need not wait for its dead predecessor's
    /// leases to expire. Returns the rows taken back.
    pub async fn reclaim_leases(&self, role: &str, incarnation: &str) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE outbox SET lease_until = 0, lease_owner = '' WHERE lease_until > 0 \
             AND (lease_owner = '' OR (lease_owner LIKE $1 AND lease_owner NOT LIKE $2))",
        )
        .bind(format!("{role}:%"))
        .bind(format!("{role}:{incarnation}/%"))
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Reconciliation repairs of an app that are still to be made for the first
    /// time (pending, not yet attempted), leased or not: (target, resource,
    /// member).
    pub async fn repairs_queued(&self, app_id: i64) -> Result<Vec<(Target, String, String)>> {
        let rows = sqlx::query(
            "SELECT target, resource_id, member_id FROM outbox WHERE app_id = $1 \
             AND forced = 1 AND state = 'pending' AND attempts = 0",
        )
        .bind(app_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    Target::parse(row.try_get("target")?)?,
                    row.try_get("resource_id")?,
                    row.try_get("member_id")?,
                ))
            })
            .collect()
    }

    /// A delivery succeeded: the row goes, unless a newer change arrived
    /// meanwhile (then it is released for another round).
    pub async fn complete_delivery(&self, d: &Delivery) -> Result<()> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("DELETE FROM outbox WHERE id = $1 AND seq = $2 AND lease_owner = $3")
                .bind(d.id)
                .bind(d.seq)
                .bind(&d.lease)
                .execute(&mut *tx.tx)
                .await?
                .rows_affected();
        if done == 0 {
            release(&mut tx, d).await?;
        }
        tx.commit().await
    }

    /// A delivery failed: retry at `retry_at`, or park the row as poison when
    /// `retry_at` is `None`. A newer change that arrived meanwhile wins: the row
    /// is released for a fresh attempt instead.
    pub async fn fail_delivery(
        &self,
        d: &Delivery,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let (state, next) = match retry_at {
            Some(t) => ("pending", to_micros(t)),
            None => ("poison", now_micros()),
        };
        let n = sqlx::query(
            "UPDATE outbox SET state = $1, attempts = attempts + 1, next_attempt = $2, \
             lease_until = 0, lease_owner = '', last_error = $3 \
             WHERE id = $4 AND seq = $5 AND lease_owner = $6",
        )
        .bind(state)
        .bind(next)
        .bind(error)
        .bind(d.id)
        .bind(d.seq)
        .bind(&d.lease)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        if n == 0 {
            release(&mut tx, d).await?;
        }
        tx.commit().await
    }

    /// Makes poisoned deliveries of an organisation (optionally one app) due again.
    pub async fn retry_poisoned(&self, org_id: i64, app_id: Option<i64>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt = $1 \
             WHERE state = 'poison' AND org_id = $2 AND ($3 = 0 OR app_id = $3)",
        )
        .bind(now_micros())
        .bind(org_id)
        .bind(app_id.unwrap_or(0))
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// The link of a resource in an app.
    pub async fn link(&self, app_id: i64, resource_id: &str) -> Result<Option<Link>> {
        let row = sqlx::query(
            "SELECT app_id, resource_id, app_ref, delivered, status, last_attempt, last_error \
             FROM app_links WHERE app_id = $1 AND resource_id = $2",
        )
        .bind(app_id)
        .bind(resource_id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    /// Every link of an app (reconciliation).
    pub async fn links(&self, app_id: i64) -> Result<Vec<Link>> {
        let rows = sqlx::query(
            "SELECT app_id, resource_id, app_ref, delivered, status, last_attempt, last_error \
             FROM app_links WHERE app_id = $1",
        )
        .bind(app_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    /// The links of one resource in every app of its organisation.
    pub async fn links_of(&self, org_id: i64, resource_id: &str) -> Result<Vec<Link>> {
        let rows = sqlx::query(
            "SELECT l.app_id, l.resource_id, l.app_ref, l.delivered, l.status, l.last_attempt, \
             l.last_error FROM app_links l JOIN apps a ON a.id = l.app_id \
             WHERE a.org_id = $1 AND l.resource_id = $2",
        )
        .bind(org_id)
        .bind(resource_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    /// Records the outcome of an attempt for a resource in an app. `app_ref` and
    /// `delivered` are kept when `None` is given.
    pub async fn record_link(
        &self,
        app_id: i64,
        resource_id: &str,
        app_ref: Option<&str>,
        delivered: Option<&Value>,
        status: &str,
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO app_links (app_id, resource_id, app_ref, delivered, status, last_attempt, \
             last_error) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (app_id, resource_id) DO UPDATE SET \
             app_ref = COALESCE(excluded.app_ref, app_links.app_ref), \
             delivered = COALESCE(excluded.delivered, app_links.delivered), \
             status = excluded.status, last_attempt = excluded.last_attempt, \
             last_error = excluded.last_error",
        )
        .bind(app_id)
        .bind(resource_id)
        .bind(app_ref)
        .bind(delivered.map(Value::to_string))
        .bind(status)
        .bind(now_micros())
        .bind(error)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// Forgets what an app held for a resource (after a deletion there).
    pub async fn delete_link(&self, app_id: i64, resource_id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM app_links WHERE app_id = $1 AND resource_id = $2")
            .bind(app_id)
            .bind(resource_id)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await
    }

    /// Pending and poisoned deliveries touching a resource (as the resource, or
    /// as the member of a membership).
    pub async fn pending_for(
        &self,
        org_id: i64,
        resource_id: &str,
    ) -> Result<Vec<PendingDelivery>> {
        let rows = sqlx::query(
            "SELECT app_id, target, resource_id, member_id, state, attempts, next_attempt, \
             last_error, enqueued FROM outbox WHERE org_id = $1 \
             AND (resource_id = $2 OR member_id = $2) ORDER BY id",
        )
        .bind(org_id)
        .bind(resource_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(PendingDelivery {
                    app_id: row.try_get("app_id")?,
                    target: Target::parse(row.try_get("target")?)?,
                    resource_id: row.try_get("resource_id")?,
                    member_id: row.try_get("member_id")?,
                    poisoned: state == "poison",
                    attempts: row.try_get("attempts")?,
                    next_attempt: from_micros(row.try_get("next_attempt")?)?,
                    last_error: row.try_get("last_error")?,
                    enqueued: from_micros(row.try_get("enqueued")?)?,
                })
            })
            .collect()
    }

    /// Depth and age of the outbox per app.
    pub async fn outbox_stats(&self) -> Result<Vec<OutboxStats>> {
        let rows = sqlx::query(
            "SELECT o.slug AS org_slug, a.name AS app_name, \
             SUM(CASE WHEN x.state = 'pending' THEN 1 ELSE 0 END) AS pending, \
             SUM(CASE WHEN x.state = 'poison' THEN 1 ELSE 0 END) AS poisoned, \
             MIN(CASE WHEN x.state = 'pending' THEN x.enqueued END) AS oldest \
             FROM apps a JOIN orgs o ON o.id = a.org_id LEFT JOIN outbox x ON x.app_id = a.id \
             GROUP BY o.slug, a.name ORDER BY o.slug, a.name",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                let oldest: Option<i64> = row.try_get("oldest")?;
                Ok(OutboxStats {
                    org_slug: row.try_get("org_slug")?,
                    app_name: row.try_get("app_name")?,
                    pending: row.try_get::<Option<i64>, _>("pending")?.unwrap_or(0),
                    poisoned: row.try_get::<Option<i64>, _>("poisoned")?.unwrap_or(0),
                    oldest_pending: oldest.map(from_micros).transpose()?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Hands leased deliveries back without an attempt (a worker shutting
    /// down): they are due again at once for any worker, their attempts and
    /// schedule unchanged. A row whose lease another worker has taken over
    /// meanwhile is left alone.
    pub async fn release_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for d in deliveries {
            release(&mut tx, d).await?;
        }
        tx.commit().await
    }
}
