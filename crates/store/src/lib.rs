//! Liaison's persistent state: organisations, API tokens, SCIM resources and group
//! memberships, on SQLite (the embedded default) or PostgreSQL, through one code path.
//!
//! Both engines are reached through `sqlx`'s `Any` driver; what differs between
//! them (JSON functions, row locks, upserts) is confined to [`Dialect`]. SCIM
//! filters are translated to SQL here (`sql` module) so that filtering, sorting and
//! paging run in the database on indexed columns. The store knows attribute names
//! (to pick columns) but not HTTP, tokens' wire form or SCIM's JSON envelopes.
//!
//! Every write happens inside a [`Tx`]; nothing is written outside a transaction.
//! Every query is scoped by an organisation id first: tenant isolation is enforced
//! by the queries and by the schema (memberships reference both sides through
//! `(org_id, id)` keys, so they can never cross organisations).
//!
//! Notes for callers:
//! * SQLite runs every [`Tx`] on one writer connection (`BEGIN IMMEDIATE`): a task
//!   holding a `Tx` must not begin another. [`Store`] reads use separate reader
//!   connections and see committed data only.
//! * On PostgreSQL a failed statement (e.g. a [`StoreError::Conflict`]) aborts the
//!   whole transaction: drop the `Tx` and start over rather than continuing it.
//! * Timestamps are stored with microsecond precision.
//! * PostgreSQL keeps documents as `jsonb`, which does not preserve object key
//!   order: a document reads back equal (as a `serde_json::Value`) but possibly
//!   with its keys reordered.
//! * Documents must use canonical attribute names (as `scim` normalises them):
//!   filters read JSON keys exactly.
//!
//! ```no_run
//! # async fn demo() -> store::Result<()> {
//! let store = store::Store::connect("sqlite::memory:").await?;
//! store.migrate().await?;
//! let mut tx = store.begin().await?;
//! let org = tx.create_org("acme", "Acme").await?;
//! tx.commit().await?;
//! assert_eq!(store.org_by_slug("acme").await?, Some(org));
//! # Ok(()) }
//! ```

mod app_settings;
mod app_setup;
mod conn;
mod console;
mod footprint;
mod members;
mod metering;
mod orgs;
mod profiles;
mod provisioning;
mod resources;
mod sources;
pub mod sql;
mod sync_support;
#[cfg(feature = "testing")]
pub mod testing;

use serde_json::Value;
use time::OffsetDateTime;

pub use app_settings::{Adopt, AppKind, Deprovision, GroupsAs, UnknownSetting};
pub use app_setup::{OutboxCounts, OutboxRow};
pub use conn::{Store, Tx};
pub use console::{
    AuditRecord, ConsoleGrant, NewAudit, OrgHealth, RedeemedLink, SessionRecord, UserEntry,
};
pub use footprint::FootprintRow;
pub use metering::{ClosedCounts, PeriodCounts, PeriodKeyState, PeriodRow, WebhookContext};
pub use profiles::{Domain, MaintenanceRecord, OrgProfile};
pub use provisioning::{lease_id, AppRecord, Delivery, Link, OutboxStats, PendingDelivery, Target};
pub use scim::ResourceKind;
pub use sources::{Source, SourceProgress, SourceRecord, SourceState, MAX_SEEN_EVENTS};
pub use sync_support::AdvisoryLock;

/// Which SQL engine a URL designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint (userName, Group displayName, org slug) was violated.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// A member to add to a group is not a resource of the group's organisation.
    #[error("unknown member: {0}")]
    UnknownMember(String),
    /// A filter or sort the store cannot translate (already a SCIM error).
    #[error(transparent)]
    Scim(#[from] scim::ScimError),
    /// A stored app setting is not one of its values (the row was not
    /// written by Liaison).
    #[error("stored app setting: {0}")]
    UnknownSetting(#[from] UnknownSetting),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An organisation (tenant).
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub created: OffsetDateTime,
}

/// A stored API token: its public id and the SHA-256 of its secret.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    /// `None` for an operator token valid for every organisation.
    pub org_id: Option<i64>,
    pub secret_hash: Vec<u8>,
    pub created: OffsetDateTime,
}

/// A SCIM resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    pub id: String,
    pub kind: ResourceKind,
    /// The resource's attributes in SCIM JSON form, without `id`, `meta`,
    /// `members` (Group), `groups` (User) and `password`. Enterprise attributes stay
    /// nested under their schema URN. The store derives its indexed columns
    /// (userName, displayName, externalId, active, ...) from it.
    pub doc: Value,
    /// argon2id PHC string, Users only.
    pub password_hash: Option<String>,
    /// Incremented on every write; the ETag is `W/"{version}"`.
    pub version: i64,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// The member resource's id.
    pub value: String,
    pub kind: ResourceKind,
    /// The member's current displayName (Group or User) or userName (User without
    /// displayName), filled on reads, ignored on writes.
    pub display: Option<String>,
}

/// A group a user belongs to, for the User `groups` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub value: String,
    pub display: Option<String>,
    /// `"direct"` or `"indirect"` (through nested groups).
    pub membership: &'static str,
}

/// What a list query asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Option<scim::Filter>,
    pub sort_by: Option<scim::AttrPath>,
    pub descending: bool,
    /// 1-based, as in SCIM.
    pub start_index: u64,
    pub count: u64,
}

/// One page of a list query.
#[derive(Debug, Clone)]
pub struct Page {
    pub total_results: u64,
    pub resources: Vec<ResourceRow>,
    /// For a page of Users: the ids of those that belong to at least one
    /// group, read by the page's own query, so that a caller rendering their
    /// `groups` asks for the memberships of those users only (a lookup of a
    /// user in no group is then one query). `None` for Groups.
    pub grouped: Option<std::collections::HashSet<String>>,
}
