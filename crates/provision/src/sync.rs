//! Reconciliation: compares what an app holds with the directory, reports the
//! drift, and repairs it through the ordinary state-based deliveries.
//!
//! Directory resources are matched with app accounts and groups through the
//! recorded app id (`app_links.app_ref`) first, then by name (as the connector
//! maps names). Drift comes in three kinds:
//!
//! - `missing`: the directory has it, the app does not (an inactive user must
//!   exist disabled; a membership of an active user must exist);
//! - `different`: both have it, but fields differ (`display_name`, `email`,
//!   `active`, `link` when the account was found by name under another id, or
//!   `deprovisioned` when an account deleted from the directory must be gone);
//! - `extra`: the app has an account, group or group member Liaison does not
//!   know. Extras are only reported, unless removal is asked for; the app's own
//!   service account is never reported.
//!
//! Repairs of directory resources go through the outbox, like any change: each
//! is queued as a repair ([`store::Tx::enqueue_repair`], one transaction for the
//! app) and delivered under a lease, by this run or by any outbox worker that
//! takes it first, never by two at once. Users and groups are delivered first,
//! memberships after. The run waits for the repairs another worker holds (up
//! to [`REPAIR_WAIT`]), then lists the app again and reports what remains.
//! Removing extras (accounts, groups and members the directory does not know,
//! with nothing to queue) calls the app directly.
//! A repair that meets an account Liaison did not create is a *collision*: it
//! is reported apart ([`AppReport::collisions`]), recorded on the link, and
//! nothing in the app changes.
//!
//! **Adoption.** When the app's [`Adopt`] setting allows it, the directory
//! users without a recorded account that match an existing account (by login
//! name or by e-mail, per the setting) are listed in
//! [`AppReport::adoptable`], the account Liaison signs in with and accounts
//! already linked to another resource excepted. Only a run with
//! [`SyncOptions::adopt`] adopts them: the link is recorded, then the user is
//! delivered, which marks the account as Liaison's.

use crate::deliver::{deliver, deliver_user, group_spec, user_spec};
use crate::worker::{backoff, record_outcome, with_heartbeat, Outcome, WorkerConfig};
use crate::{Adopt, AppGroup, AppKind, AppUser, Connector, DeliveryError};
use rand::Rng;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;
use store::{AppRecord, Delivery, Link, ListQuery, ResourceKind, ResourceRow, Store, Target};

/// How long a run waits for its repairs that another worker is delivering.
pub const REPAIR_WAIT: Duration = Duration::from_secs(60);

/// The lease of a repair delivered by a run (renewed while it runs).
const REPAIR_LEASE: Duration = Duration::from_secs(15);

/// Repairs delivered per claim.
const REPAIR_BATCH: i64 = 8;

/// An outbox row's key: (target, resource, member).
type Key = (Target, String, String);

/// Directory resources read per page.
const PAGE: u64 = 500;

/// What a run does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Report only: change nothing.
    pub dry_run: bool,
    /// Deprovision extra accounts (disable or delete, per the app's policy),
    /// delete extra groups (under the `delete` policy only) and remove unknown
    /// members from managed groups.
    pub remove_extra: bool,
    /// Adopt the accounts listed in [`AppReport::adoptable`] (the app's
    /// [`Adopt`] setting must allow it; with `dry_run`, they are only listed).
    pub adopt: bool,
}

/// An existing account a directory user may adopt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adoption {
    /// The user's SCIM id.
    pub id: String,
    pub user_name: String,
    /// The account's app id.
    pub app_id: String,
    /// How it was matched: `by-username` or `by-email`.
    pub by: Adopt,
}

/// A resource whose delivery met an account (or group) Liaison did not create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollisionItem {
    pub resource: DriftResource,
    pub id: String,
    pub name: String,
    /// The app's explanation (bounded).
    pub error: String,
}

/// What a drift item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftResource {
    User,
    Group,
    Membership,
}

/// The kind of a drift item (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    Missing,
    Extra,
    Different,
}

/// One difference between the app and the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub resource: DriftResource,
    /// The SCIM id (of the group, for a membership); `None` for extras.
    pub id: Option<String>,
    /// The app's id (of the group, for a membership), when the app has it.
    pub app_id: Option<String>,
    /// User name or group name; `group/user` for a membership.
    pub name: String,
    pub kind: DriftKind,
    /// The differing fields (`different` only).
    pub fields: Vec<String>,
    /// Memberships: the member's SCIM id, when it is a directory user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// Memberships: the member's app id, when the app has the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_app_id: Option<String>,
    /// Extra accounts: whether the account is active in the app.
    #[serde(skip)]
    pub app_active: Option<bool>,
    /// Extra groups the service account belongs to (the app's own): never removed.
    #[serde(skip)]
    pub protected: bool,
}

impl Drift {
    fn new(resource: DriftResource, kind: DriftKind, name: impl Into<String>) -> Drift {
        Drift {
            resource,
            id: None,
            app_id: None,
            name: name.into(),
            kind,
            fields: Vec::new(),
            member_id: None,
            member_app_id: None,
            app_active: None,
            protected: false,
        }
    }

    /// Whether this item still needs action under `opts` and the app's policy.
    /// Extras count only when their removal was asked for and would change
    /// something (an extra account already disabled satisfies `disable`).
    pub fn counts(&self, app: &AppRecord, opts: &SyncOptions) -> bool {
        match self.kind {
            DriftKind::Missing | DriftKind::Different => true,
            DriftKind::Extra => opts.remove_extra && self.removable(app),
        }
    }

    fn removable(&self, app: &AppRecord) -> bool {
        let delete = app.deprovision.deletes();
        match self.resource {
            DriftResource::User => delete || self.app_active.unwrap_or(true),
            DriftResource::Group => delete && !self.protected,
            DriftResource::Membership => true,
        }
    }
}

/// The outcome of reconciling one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppReport {
    pub app: String,
    pub kind: AppKind,
    /// Everything found before repairs (extras included).
    pub drift: Vec<Drift>,
    /// Repairs that succeeded.
    pub repaired: usize,
    /// Drift items that still count after the run (see [`Drift::counts`]).
    pub remaining: usize,
    /// The items left after repairs (all of them, extras included); equal to
    /// `drift` on a dry run.
    #[serde(skip)]
    pub left: Vec<Drift>,
    /// Repairs that failed, with the app's or store's error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Repairs refused because the app holds an account or group Liaison did
    /// not create: nothing was changed there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collisions: Vec<CollisionItem>,
    /// Existing accounts the app's `adopt` setting allows to adopt (listed
    /// before anything is done).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adoptable: Vec<Adoption>,
    /// Accounts adopted by this run.
    pub adopted: usize,
}

/// Progress of a run, for progress bars and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProgress {
    /// Listing the directory and the app.
    Listing {
        app: String,
    },
    /// `done` of `total` repairs made.
    Repairing {
        app: String,
        done: usize,
        total: usize,
    },
    /// Listing again after repairs.
    Verifying {
        app: String,
    },
    Done {
        app: String,
        remaining: usize,
    },
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    /// The app could not be listed.
    #[error("app {app}: {error}")]
    App { app: String, error: DeliveryError },
    /// Adoption was asked for an app whose `adopt` setting is `never`.
    #[error("app {0}: its adopt setting is never; set it to by-username or by-email first")]
    AdoptionNotAllowed(String),
}

/// The directory side of an organisation.
struct Directory {
    users: Vec<ResourceRow>,
    groups: Vec<ResourceRow>,
    /// Group id → direct member ids (users and groups).
    members: HashMap<String, Vec<String>>,
    links: HashMap<String, Link>,
}

async fn all_resources(
    store: &Store,
    org_id: i64,
    kind: ResourceKind,
) -> Result<Vec<ResourceRow>, SyncError> {
    let mut out = Vec::new();
    let mut start = 1;
    loop {
        let page = store
            .list_resources(
                org_id,
                kind,
                &ListQuery {
                    start_index: start,
                    count: PAGE,
                    ..ListQuery::default()
                },
            )
            .await?;
        let n = page.resources.len() as u64;
        out.extend(page.resources);
        start += n;
        if n == 0 || start > page.total_results {
            return Ok(out);
        }
    }
}

async fn read_directory(store: &Store, app: &AppRecord) -> Result<Directory, SyncError> {
    let users = all_resources(store, app.org_id, ResourceKind::User).await?;
    let groups = if !app.groups_as.provisions_groups() {
        Vec::new()
    } else {
        all_resources(store, app.org_id, ResourceKind::Group).await?
    };
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let members = store
        .members(app.org_id, &ids)
        .await?
        .into_iter()
        .map(|(g, list)| (g, list.into_iter().map(|m| m.value).collect()))
        .collect();
    let links = store
        .links(app.id)
        .await?
        .into_iter()
        .map(|l| (l.resource_id.clone(), l))
        .collect();
    Ok(Directory {
        users,
        groups,
        members,
        links,
    })
}

/// What the app holds.
struct AppSide {
    users: Vec<AppUser>,
    groups: Vec<AppGroup>,
    /// App ids never reported nor touched.
    protected: HashSet<String>,
}

async fn read_app(app: &AppRecord, conn: &dyn Connector) -> Result<AppSide, SyncError> {
    let err = |error| SyncError::App {
        app: app.name.clone(),
        error,
    };
    // Groups first: listing them tells some connectors (Synapse) their own id.
    let groups = if !app.groups_as.provisions_groups() {
        Vec::new()
    } else {
        conn.list_groups().await.map_err(err)?
    };
    let users = conn.list_users().await.map_err(err)?;
    Ok(AppSide {
        users,
        groups,
        protected: conn.protected_accounts().into_iter().collect(),
    })
}

fn same_text(a: Option<&str>, b: Option<&str>) -> bool {
    a.unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(b.unwrap_or("").trim())
}

/// Compares the app with the directory.
fn compare(app: &AppRecord, conn: &dyn Connector, dir: &Directory, side: &AppSide) -> Vec<Drift> {
    let mut drift = Vec::new();
    let protected = &side.protected;
    let delete_policy = app.deprovision.deletes();

    // Users.
    let by_id: HashMap<&str, &AppUser> =
        side.users.iter().map(|u| (u.app_id.as_str(), u)).collect();
    let by_name: HashMap<String, &AppUser> = side
        .users
        .iter()
        .map(|u| (u.user_name.to_lowercase(), u))
        .collect();
    // App ids some link records: never matched by name to another resource.
    let linked_refs: HashSet<&str> = dir
        .links
        .values()
        .filter_map(|l| l.app_ref.as_deref())
        .collect();
    let mut claimed: HashSet<String> = HashSet::new();
    // SCIM user id → app id, and back.
    let mut user_app: HashMap<String, String> = HashMap::new();
    let mut app_user: HashMap<String, String> = HashMap::new();
    let mut user_name: HashMap<&str, String> = HashMap::new();
    let mut active: HashMap<&str, bool> = HashMap::new();

    for row in &dir.users {
        let spec = user_spec(row);
        user_name.insert(row.id.as_str(), spec.user_name.clone());
        active.insert(row.id.as_str(), spec.active);
        let known = dir.links.get(&row.id).and_then(|l| l.app_ref.as_deref());
        let by_ref = known.and_then(|r| by_id.get(r).copied());
        let found = by_ref.or_else(|| {
            by_name
                .get(&conn.app_user_name(&spec.user_name).to_lowercase())
                .copied()
                .filter(|u| {
                    !claimed.contains(&u.app_id)
                        && (known == Some(u.app_id.as_str())
                            || !linked_refs.contains(u.app_id.as_str()))
                })
        });
        let Some(u) = found else {
            let mut d = Drift::new(DriftResource::User, DriftKind::Missing, &spec.user_name);
            d.id = Some(row.id.clone());
            drift.push(d);
            continue;
        };
        claimed.insert(u.app_id.clone());
        user_app.insert(row.id.clone(), u.app_id.clone());
        app_user.insert(u.app_id.clone(), row.id.clone());
        let mut fields = Vec::new();
        if known != Some(u.app_id.as_str()) {
            fields.push("link".to_owned());
        }
        if let Some(want) = spec
            .display_name
            .as_deref()
            .filter(|d| !d.trim().is_empty())
        {
            if u.display_name.as_deref().map(str::trim) != Some(want.trim()) {
                fields.push("display_name".to_owned());
            }
        }
        // Some apps forget the address of a deactivated account (Synapse).
        if spec.email.is_some() && u.active && !same_text(spec.email.as_deref(), u.email.as_deref())
        {
            fields.push("email".to_owned());
        }
        if u.active != spec.active {
            fields.push("active".to_owned());
        }
        if !fields.is_empty() {
            let mut d = Drift::new(DriftResource::User, DriftKind::Different, &spec.user_name);
            d.id = Some(row.id.clone());
            d.app_id = Some(u.app_id.clone());
            d.fields = fields;
            drift.push(d);
        }
    }

    // Groups.
    let group_ids: HashSet<&str> = dir.groups.iter().map(|g| g.id.as_str()).collect();
    let user_ids: HashSet<&str> = dir.users.iter().map(|u| u.id.as_str()).collect();
    let groups_by_id: HashMap<&str, &AppGroup> =
        side.groups.iter().map(|g| (g.app_id.as_str(), g)).collect();
    let groups_by_name: HashMap<String, &AppGroup> = side
        .groups
        .iter()
        .map(|g| (g.display_name.to_lowercase(), g))
        .collect();
    let mut claimed_groups: HashSet<String> = HashSet::new();
    for row in &dir.groups {
        let spec = group_spec(row);
        let want_name = conn.app_group_name(&spec.display_name);
        let known = dir.links.get(&row.id).and_then(|l| l.app_ref.as_deref());
        let found = known
            .and_then(|r| groups_by_id.get(r).copied())
            .or_else(|| {
                groups_by_name
                    .get(&want_name.to_lowercase())
                    .copied()
                    .filter(|g| {
                        !claimed_groups.contains(&g.app_id)
                            && !linked_refs.contains(g.app_id.as_str())
                    })
            });
        let wanted: BTreeSet<&str> = dir
            .members
            .get(&row.id)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|m| active.get(m).copied().unwrap_or(false))
            .collect();
        let member_drift = |kind, member: Option<&str>, member_app: Option<&str>| {
            let who = member
                .and_then(|m| user_name.get(m).cloned())
                .or_else(|| member_app.map(str::to_owned))
                .unwrap_or_default();
            let mut d = Drift::new(
                DriftResource::Membership,
                kind,
                format!("{}/{who}", spec.display_name),
            );
            d.id = Some(row.id.clone());
            d.app_id = found.map(|g| g.app_id.clone());
            d.member_id = member.map(str::to_owned);
            d.member_app_id = member_app.map(str::to_owned);
            d
        };
        let Some(g) = found else {
            let mut d = Drift::new(DriftResource::Group, DriftKind::Missing, &spec.display_name);
            d.id = Some(row.id.clone());
            drift.push(d);
            for m in &wanted {
                drift.push(member_drift(
                    DriftKind::Missing,
                    Some(m),
                    user_app.get(*m).map(String::as_str),
                ));
            }
            continue;
        };
        claimed_groups.insert(g.app_id.clone());
        let mut fields = Vec::new();
        if known != Some(g.app_id.as_str()) {
            fields.push("link".to_owned());
        }
        if g.display_name.trim() != want_name.trim() {
            fields.push("display_name".to_owned());
        }
        if !fields.is_empty() {
            let mut d = Drift::new(
                DriftResource::Group,
                DriftKind::Different,
                &spec.display_name,
            );
            d.id = Some(row.id.clone());
            d.app_id = Some(g.app_id.clone());
            d.fields = fields;
            drift.push(d);
        }
        let have: HashSet<&str> = g.members.iter().map(String::as_str).collect();
        for m in &wanted {
            let app_id = user_app.get(*m).map(String::as_str);
            if !app_id.is_some_and(|a| have.contains(a)) {
                drift.push(member_drift(DriftKind::Missing, Some(m), app_id));
            }
        }
        let direct: HashSet<&str> = dir
            .members
            .get(&row.id)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        for a in &g.members {
            if protected.contains(a) {
                continue;
            }
            match app_user.get(a) {
                // Members of the directory group that are inactive may stay.
                Some(scim) if direct.contains(scim.as_str()) => {}
                Some(scim) => drift.push(member_drift(DriftKind::Extra, Some(scim), Some(a))),
                None => drift.push(member_drift(DriftKind::Extra, None, Some(a))),
            }
        }
    }

    // Links of resources gone from the directory.
    for (rid, link) in &dir.links {
        if user_ids.contains(rid.as_str()) || group_ids.contains(rid.as_str()) {
            continue;
        }
        let Some(r) = link.app_ref.as_deref() else {
            continue;
        };
        if let Some(u) = by_id.get(r) {
            if claimed.contains(&u.app_id) {
                continue;
            }
            claimed.insert(u.app_id.clone());
            let field = if delete_policy {
                "deprovisioned"
            } else if u.active {
                "active"
            } else {
                continue;
            };
            let mut d = Drift::new(DriftResource::User, DriftKind::Different, &u.user_name);
            d.id = Some(rid.clone());
            d.app_id = Some(u.app_id.clone());
            d.fields = vec![field.to_owned()];
            drift.push(d);
        } else if let Some(g) = groups_by_id.get(r) {
            if claimed_groups.contains(&g.app_id) {
                continue;
            }
            claimed_groups.insert(g.app_id.clone());
            if delete_policy {
                let mut d = Drift::new(DriftResource::Group, DriftKind::Different, &g.display_name);
                d.id = Some(rid.clone());
                d.app_id = Some(g.app_id.clone());
                d.fields = vec!["deprovisioned".to_owned()];
                drift.push(d);
            }
        }
    }

    // Extras.
    for u in &side.users {
        if claimed.contains(&u.app_id) || protected.contains(&u.app_id) {
            continue;
        }
        let mut d = Drift::new(DriftResource::User, DriftKind::Extra, &u.user_name);
        d.app_id = Some(u.app_id.clone());
        d.app_active = Some(u.active);
        drift.push(d);
    }
    for g in &side.groups {
        if claimed_groups.contains(&g.app_id) {
            continue;
        }
        let mut d = Drift::new(DriftResource::Group, DriftKind::Extra, &g.display_name);
        d.app_id = Some(g.app_id.clone());
        d.protected = g.members.iter().any(|m| protected.contains(m));
        drift.push(d);
    }
    drift
}

/// The directory users without a recorded account that may adopt an existing
/// one under `mode` (see the module documentation).
fn adoption_candidates(
    mode: Adopt,
    conn: &dyn Connector,
    dir: &Directory,
    side: &AppSide,
) -> Vec<Adoption> {
    if mode == Adopt::Never {
        return Vec::new();
    }
    let linked: HashSet<&str> = dir
        .links
        .values()
        .filter_map(|l| l.app_ref.as_deref())
        .collect();
    let free: Vec<&AppUser> = side
        .users
        .iter()
        .filter(|u| !side.protected.contains(&u.app_id) && !linked.contains(u.app_id.as_str()))
        .collect();
    let mut taken: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for row in &dir.users {
        if dir.links.get(&row.id).is_some_and(|l| l.app_ref.is_some()) {
            continue;
        }
        let spec = user_spec(row);
        let matches: Vec<&&AppUser> = match mode {
            Adopt::Never => Vec::new(),
            Adopt::ByUsername => {
                let want = conn.app_user_name(&spec.user_name).to_lowercase();
                free.iter()
                    .filter(|u| u.user_name.to_lowercase() == want)
                    .collect()
            }
            Adopt::ByEmail => match spec.email.as_deref().map(str::trim) {
                Some(email) if !email.is_empty() => free
                    .iter()
                    .filter(|u| same_text(u.email.as_deref(), Some(email)))
                    .collect(),
                _ => Vec::new(),
            },
        };
        // Only an unambiguous match, and each account once.
        if let [only] = matches.as_slice() {
            if taken.insert(only.app_id.as_str()) {
                out.push(Adoption {
                    id: row.id.clone(),
                    user_name: spec.user_name.clone(),
                    app_id: only.app_id.clone(),
                    by: mode,
                });
            }
        }
    }
    out
}

/// Adopts one account: records the link, then delivers the user (which marks
/// the account as Liaison's and brings it to the directory's state).
async fn adopt_one(
    store: &Store,
    app: &AppRecord,
    conn: &dyn Connector,
    a: &Adoption,
) -> Result<(), DeliveryError> {
    if conn.protected_accounts().contains(&a.app_id) {
        return Err(DeliveryError::Collision(format!(
            "{} is an account Liaison never changes",
            a.app_id
        )));
    }
    store
        .record_link(
            app.id,
            &a.id,
            Some(&a.app_id),
            None,
            crate::deliver::STATUS_OK,
            None,
        )
        .await
        .map_err(store_err)?;
    deliver_user(store, conn, app, &a.id, true).await.map(drop)
}

/// Lists, compares and (unless `opts.dry_run`) repairs one app.
pub async fn reconcile(
    store: &Store,
    app: &AppRecord,
    conn: &dyn Connector,
    opts: &SyncOptions,
    progress: &(dyn Fn(SyncProgress) + Sync),
) -> Result<AppReport, SyncError> {
    progress(SyncProgress::Listing {
        app: app.name.clone(),
    });
    let dir = read_directory(store, app).await?;
    let side = read_app(app, conn).await?;
    let drift = compare(app, conn, &dir, &side);
    let mode = app.adopt;
    if opts.adopt && mode == Adopt::Never {
        return Err(SyncError::AdoptionNotAllowed(app.name.clone()));
    }
    let mut report = AppReport {
        app: app.name.clone(),
        kind: app.kind,
        drift: drift.clone(),
        repaired: 0,
        remaining: 0,
        left: drift,
        errors: Vec::new(),
        collisions: Vec::new(),
        adoptable: adoption_candidates(mode, conn, &dir, &side),
        adopted: 0,
    };
    if opts.dry_run {
        report.remaining = report.left.iter().filter(|d| d.counts(app, opts)).count();
        progress(SyncProgress::Done {
            app: app.name.clone(),
            remaining: report.remaining,
        });
        return Ok(report);
    }
    let mut adopted: HashSet<String> = HashSet::new();
    if opts.adopt {
        for a in report.adoptable.clone() {
            match adopt_one(store, app, conn, &a).await {
                Ok(()) => {
                    report.adopted += 1;
                    adopted.insert(a.id.clone());
                }
                Err(e) => {
                    let item = CollisionItem {
                        resource: DriftResource::User,
                        id: a.id.clone(),
                        name: a.user_name.clone(),
                        error: e.report(),
                    };
                    if e.is_collision() {
                        report.collisions.push(item);
                    } else {
                        report
                            .errors
                            .push(format!("adopt user {}: {}", a.user_name, item.error));
                    }
                }
            }
        }
    }
    let todo: Vec<&Drift> = report
        .drift
        .iter()
        .filter(|d| d.counts(app, opts))
        .filter(|d| {
            !(d.resource == DriftResource::User
                && d.id.as_ref().is_some_and(|id| adopted.contains(id)))
        })
        .collect();
    let total = todo.len();
    let app_user_ids: HashSet<&str> = side.users.iter().map(|u| u.app_id.as_str()).collect();
    let app_group_ids: HashSet<&str> = side.groups.iter().map(|g| g.app_id.as_str()).collect();
    // Users, then groups, then memberships (which need both).
    let order = |d: &&Drift| match d.resource {
        DriftResource::User => 0,
        DriftResource::Group => 1,
        DriftResource::Membership => 2,
    };
    let mut sorted = todo;
    sorted.sort_by_key(order);
    let mut errors = std::mem::take(&mut report.errors);
    let mut collisions = std::mem::take(&mut report.collisions);
    // Stale app ids first (store only), then every repair of a directory
    // resource queued in one transaction.
    let mut queued: Vec<(&Drift, Key)> = Vec::new();
    let mut direct: Vec<&Drift> = Vec::new();
    for d in sorted {
        match repair_key(d) {
            Some(key) => {
                let present = match key.0 {
                    Target::User => Some(&app_user_ids),
                    Target::Group => Some(&app_group_ids),
                    Target::Member => None,
                };
                if let Some(present) = present {
                    if let Err(e) = clear_stale(store, app, &dir, &key.1, present).await {
                        errors.push(repair_error(d, &e.to_string()));
                        continue;
                    }
                }
                queued.push((d, key));
            }
            None => direct.push(d),
        }
    }
    let mut tx = store.begin().await?;
    for (_, (target, resource, member)) in &queued {
        let member = (!member.is_empty()).then_some(member.as_str());
        tx.enqueue_repair(app, *target, resource, member).await?;
    }
    tx.commit().await?;
    let mut failed = deliver_repairs(store, app, conn, total, progress).await?;
    let mut done = queued.len();
    for (d, key) in &queued {
        match failed.remove(key) {
            Some(RepairFailure::Collision(error)) => collisions.push(CollisionItem {
                resource: d.resource,
                id: d.id.clone().unwrap_or_default(),
                name: d.name.clone(),
                error,
            }),
            Some(RepairFailure::Error(e)) => errors.push(repair_error(d, &e)),
            None => report.repaired += 1,
        }
    }
    for d in direct {
        progress(SyncProgress::Repairing {
            app: app.name.clone(),
            done,
            total,
        });
        done += 1;
        match repair_extra(app, conn, d).await {
            Ok(()) => report.repaired += 1,
            Err(e) => {
                // The report (for the operator) names the resource; the log
                // has Liaison's id only (never a user name nor an app id,
                // which may be a Matrix id).
                tracing::warn!(
                    app = %app.name, resource = resource_name(d),
                    id = d.id.as_deref().unwrap_or("(extra)"),
                    member = d.member_id.as_deref().unwrap_or_default(),
                    drift = ?d.kind, error = e.kind(), "reconciliation repair failed"
                );
                errors.push(repair_error(d, &e.report()));
            }
        }
    }
    progress(SyncProgress::Repairing {
        app: app.name.clone(),
        done: total,
        total,
    });
    if !collisions.is_empty() {
        tracing::warn!(
            app = %app.name,
            collisions = collisions.len(),
            "reconciliation met accounts Liaison did not create: left unchanged"
        );
    }
    report.errors = errors;
    report.collisions = collisions;
    progress(SyncProgress::Verifying {
        app: app.name.clone(),
    });
    let dir = read_directory(store, app).await?;
    let side = read_app(app, conn).await?;
    report.left = compare(app, conn, &dir, &side);
    report.remaining = report.left.iter().filter(|d| d.counts(app, opts)).count();
    progress(SyncProgress::Done {
        app: app.name.clone(),
        remaining: report.remaining,
    });
    Ok(report)
}

fn resource_name(d: &Drift) -> &'static str {
    match d.resource {
        DriftResource::User => "user",
        DriftResource::Group => "group",
        DriftResource::Membership => "membership",
    }
}

fn store_err(e: store::StoreError) -> DeliveryError {
    DeliveryError::Transient(format!("store: {e}"))
}

/// Clears a recorded app id the app no longer has.
async fn clear_stale(
    store: &Store,
    app: &AppRecord,
    dir: &Directory,
    id: &str,
    present: &HashSet<&str>,
) -> Result<(), DeliveryError> {
    let stale = dir
        .links
        .get(id)
        .and_then(|l| l.app_ref.as_deref())
        .is_some_and(|r| !present.contains(r));
    if stale {
        store.clear_app_ref(app.id, id).await.map_err(store_err)?;
    }
    Ok(())
}

fn repair_error(d: &Drift, e: &str) -> String {
    format!("{} {:?} {}: {e}", resource_name(d), d.kind, d.name)
}

/// The outbox row that repairs a drift item of a directory resource; `None`
/// for extras the directory does not know (repaired directly).
fn repair_key(d: &Drift) -> Option<Key> {
    let id = d.id.clone()?;
    match (d.resource, d.kind) {
        (DriftResource::User, DriftKind::Missing | DriftKind::Different) => {
            Some((Target::User, id, String::new()))
        }
        (DriftResource::Group, DriftKind::Missing | DriftKind::Different) => {
            Some((Target::Group, id, String::new()))
        }
        (DriftResource::Membership, _) => d
            .member_id
            .clone()
            .map(|member| (Target::Member, id, member)),
        _ => None,
    }
}

/// Delivers the queued repairs of an app under leases (users and groups, then
/// memberships), waiting up to [`REPAIR_WAIT`] for those another worker
/// holds. Returns the repairs that failed, with why.
async fn deliver_repairs(
    store: &Store,
    app: &AppRecord,
    conn: &dyn Connector,
    total: usize,
    progress: &(dyn Fn(SyncProgress) + Sync),
) -> Result<HashMap<Key, RepairFailure>, SyncError> {
    let config = WorkerConfig::default();
    let incarnation = format!("{:016x}", rand::thread_rng().gen::<u64>());
    let deadline = tokio::time::Instant::now() + REPAIR_WAIT;
    let mut failed = HashMap::new();
    let mut claims = 0;
    let mut done = 0;
    for members in [false, true] {
        loop {
            let lease = store::lease_id("sync", &incarnation, claims);
            claims += 1;
            let batch = store
                .claim_repairs(&lease, app.id, members, REPAIR_BATCH, REPAIR_LEASE)
                .await?;
            if batch.is_empty() {
                let waiting: Vec<Key> = store
                    .repairs_queued(app.id)
                    .await?
                    .into_iter()
                    .filter(|k| (k.0 == Target::Member) == members)
                    .collect();
                if waiting.is_empty() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    for key in waiting {
                        failed.insert(
                            key,
                            RepairFailure::Error(
                                "still being delivered by another worker".to_owned(),
                            ),
                        );
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let run = async {
                for d in &batch {
                    progress(SyncProgress::Repairing {
                        app: app.name.clone(),
                        done,
                        total,
                    });
                    done += 1;
                    if let Some(e) = repair_one(store, app, conn, d, &config).await? {
                        failed.insert(key_of(d), e);
                    }
                }
                Ok::<_, SyncError>(())
            };
            with_heartbeat(store, &batch, REPAIR_LEASE, run).await?;
        }
    }
    Ok(failed)
}

fn key_of(d: &Delivery) -> Key {
    (d.target, d.resource_id.clone(), d.member_id.clone())
}

/// Why a queued repair was not done.
enum RepairFailure {
    /// The app holds an account Liaison did not create (left unchanged).
    Collision(String),
    /// Any other failure (the repair stays in the outbox or is parked).
    Error(String),
}

/// Delivers one repair and records how it went, as the worker does; returns
/// the failure when it failed.
async fn repair_one(
    store: &Store,
    app: &AppRecord,
    conn: &dyn Connector,
    d: &Delivery,
    config: &WorkerConfig,
) -> Result<Option<RepairFailure>, SyncError> {
    let result = deliver(store, conn, app, d).await;
    let error = result.as_ref().err().map(DeliveryError::report);
    let wait = backoff(config.base_backoff, config.max_backoff, d.attempts + 1);
    let outcome = record_outcome(store, d, &app.name, result, config.max_attempts, wait).await?;
    Ok(match outcome {
        Outcome::Delivered => None,
        Outcome::Collision => error.map(RepairFailure::Collision),
        Outcome::Retry | Outcome::Poisoned => error.map(RepairFailure::Error),
    })
}

/// Removes an extra the directory does not know (under `--remove-extra`).
async fn repair_extra(
    app: &AppRecord,
    conn: &dyn Connector,
    d: &Drift,
) -> Result<(), DeliveryError> {
    let delete = app.deprovision.deletes();
    match (d.resource, d.kind) {
        (DriftResource::Membership, _) => match (&d.app_id, &d.member_app_id) {
            (Some(g), Some(member_app)) => match conn.remove_member(g, member_app).await {
                Ok(()) | Err(DeliveryError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            },
            _ => Ok(()),
        },
        (DriftResource::User, DriftKind::Extra) => {
            let Some(a) = d.app_id.as_deref() else {
                return Ok(());
            };
            let r = if delete {
                conn.delete_user(a).await
            } else {
                conn.set_user_active(a, false).await
            };
            match r {
                Ok(()) | Err(DeliveryError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        (DriftResource::Group, DriftKind::Extra) => match d.app_id.as_deref() {
            Some(a) if delete && !d.protected => match conn.delete_group(a).await {
                Ok(()) | Err(DeliveryError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            },
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Drift counts of a report by kind, for logs: (missing, different, extra).
pub fn counts_by_kind(drift: &[Drift]) -> (usize, usize, usize) {
    drift
        .iter()
        .fold((0, 0, 0), |(m, d, e), item| match item.kind {
            DriftKind::Missing => (m + 1, d, e),
            DriftKind::Different => (m, d + 1, e),
            DriftKind::Extra => (m, d, e + 1),
        })
}

/// The PostgreSQL advisory lock key that makes one process at a time run the
/// periodic reconciliation ("LiaiSync").
pub const RECONCILE_LOCK_KEY: i64 = 0x4c69_6169_5379_6e63;

/// Reconciles every app of every organisation every `interval` (repairing,
/// never removing extras), one app at a time, until `shutdown` turns true. On
/// PostgreSQL a round runs only in the process that takes the advisory lock
/// [`RECONCILE_LOCK_KEY`]; the others skip it. A zero interval returns at once.
pub async fn run_periodic(
    store: Store,
    interval: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    if interval.is_zero() {
        return;
    }
    tracing::info!(
        interval_secs = interval.as_secs(),
        "periodic reconciliation started"
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
        if *shutdown.borrow() {
            break;
        }
        match store.try_advisory_lock(RECONCILE_LOCK_KEY).await {
            Ok(Some(lock)) => {
                reconcile_all(&store, &shutdown).await;
                if let Err(e) = lock.release().await {
                    tracing::warn!(error = %e, "releasing the reconciliation lock failed");
                }
            }
            Ok(None) => tracing::debug!("another process is reconciling; round skipped"),
            Err(e) => tracing::warn!(error = %e, "cannot take the reconciliation lock"),
        }
    }
    tracing::info!("periodic reconciliation stopped");
}

async fn reconcile_all(store: &Store, shutdown: &tokio::sync::watch::Receiver<bool>) {
    let apps = match store.all_apps().await {
        Ok(apps) => apps,
        Err(e) => {
            tracing::warn!(error = %e, "reconciliation: cannot list the apps");
            return;
        }
    };
    let opts = SyncOptions::default();
    for app in apps {
        if *shutdown.borrow() {
            return;
        }
        let conn = match crate::registry::connector_for(&app) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(org_id = app.org_id, app = %app.name, error = %e, "reconciliation: no connector");
                continue;
            }
        };
        match reconcile(store, &app, conn.as_ref(), &opts, &|_| {}).await {
            Ok(report) => {
                let (missing, different, extra) = counts_by_kind(&report.drift);
                let level_warn = report.remaining > 0 || !report.errors.is_empty();
                if level_warn {
                    tracing::warn!(
                        org_id = app.org_id, app = %app.name, missing, different, extra,
                        repaired = report.repaired, remaining = report.remaining,
                        errors = report.errors.len(), "reconciliation left drift"
                    );
                } else {
                    tracing::info!(
                        org_id = app.org_id, app = %app.name, missing, different, extra,
                        repaired = report.repaired, "reconciled"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(org_id = app.org_id, app = %app.name, error = %e, "reconciliation failed")
            }
        }
    }
}
