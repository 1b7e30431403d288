//! Full reconciliation: read the whole realm, compare it with the directory,
//! apply the difference (or only report it: dry run).
//!
//! Everything is read from Keycloak before anything is written: an outage
//! while reading fails the run with the directory untouched. A directory
//! resource missing from the listings is only deleted once Keycloak answers
//! 404 for it by id (pages of a list that changes while it is read may skip an
//! entry). Entries Keycloak answered that fail the checks are skipped, and
//! their directory counterparts are left as they are.

use crate::dir::{self, by_external_id, Entry, Target};
use crate::keycloak::{Invalid, KcGroup, KcUser, Keycloak, KeycloakError};
use scim::ResourceKind;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use store::StoreError;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// One difference between the realm and the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub op: Op,
    /// `user` or `group`.
    pub kind: &'static str,
    /// The Keycloak id.
    pub external_id: Option<String>,
    /// The directory id (absent for a creation).
    pub id: Option<String>,
    /// userName or group path, for the operator reading the report.
    pub name: String,
    /// For updates: which attributes differ (`members` for memberships).
    pub fields: Vec<String>,
}

/// What a reconciliation found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub realm_users: usize,
    pub realm_groups: usize,
    pub changes: Vec<Change>,
    /// Changes written (0 in a dry run).
    pub applied: usize,
    /// Entries of the realm that were not taken.
    pub skipped: Vec<Invalid>,
    /// Changes that failed (the directory refused them); the others were applied.
    pub errors: Vec<String>,
}

impl Report {
    /// Whether the directory matches the realm (after the run, unless dry).
    pub fn in_sync(&self) -> bool {
        self.errors.is_empty()
            && (self.changes.is_empty() || (!self.dry_run && self.applied == self.changes.len()))
    }
}

/// What a long run reports as it goes (for progress bars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Users read so far.
    Users(usize),
    /// Groups read so far (the tree).
    Groups(usize),
    /// Groups whose members were read, of the total.
    Members { done: usize, total: usize },
    /// Changes applied, of the total.
    Apply { done: usize, total: usize },
}

/// Why a run failed as a whole (nothing of it was written, or, for store
/// failures, what was written is consistent and the next run completes it).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Keycloak(#[from] KeycloakError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The directory failed a write for a reason of its own (its database).
    #[error("the directory failed: {0}")]
    Directory(String),
}

/// The realm's groups (all levels) with their direct members (user ids).
#[derive(Debug, Clone, Default)]
pub struct GroupTree {
    pub groups: Vec<KcGroup>,
    pub members: HashMap<String, Vec<String>>,
    pub skipped: Vec<Invalid>,
}

impl GroupTree {
    /// Reads the tree and every group's members.
    pub async fn read(
        kc: &Keycloak,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<GroupTree, KeycloakError> {
        let (groups, mut skipped) = kc.groups().await?;
        progress(Progress::Groups(groups.len()));
        let mut members = HashMap::new();
        let total = groups.len();
        let mut gone = HashSet::new();
        for (i, g) in groups.iter().enumerate() {
            match kc.members(&g.id).await? {
                Some(m) => {
                    members.insert(g.id.clone(), m);
                }
                // Deleted while the tree was read: taken as gone (its
                // directory counterpart is deleted only after a 404 by id).
                None => {
                    gone.insert(g.id.clone());
                }
            }
            progress(Progress::Members { done: i + 1, total });
        }
        let groups: Vec<KcGroup> = groups
            .into_iter()
            .filter(|g| !gone.contains(&g.id))
            .collect();
        // A group whose parent was skipped or is gone hangs nowhere: skipped too.
        let ids: HashSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        let (kept, orphans): (Vec<KcGroup>, Vec<KcGroup>) = groups
            .iter()
            .cloned()
            .partition(|g| g.parent_id.as_deref().is_none_or(|p| ids.contains(p)));
        skipped.extend(orphans.into_iter().map(|g| Invalid {
            id: Some(g.id),
            reason: "its parent group was not read".into(),
        }));
        Ok(GroupTree {
            groups: kept,
            members,
            skipped,
        })
    }

    /// The Keycloak ids of a group's direct members (users). Subgroups are
    /// not members: in Keycloak a subgroup's members are not members of its
    /// parent (they inherit its roles only); the hierarchy shows in the names.
    fn wanted(&self, g: &KcGroup) -> BTreeSet<String> {
        self.members
            .get(&g.id)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// The realm as read for a full reconciliation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub users: Vec<KcUser>,
    pub skipped_users: Vec<Invalid>,
    pub tree: GroupTree,
}

impl Snapshot {
    pub async fn read(
        kc: &Keycloak,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Snapshot, KeycloakError> {
        let (users, skipped_users) = kc.users().await?;
        progress(Progress::Users(users.len()));
        let tree = GroupTree::read(kc, progress).await?;
        Ok(Snapshot {
            users,
            skipped_users,
            tree,
        })
    }
}

/// A planned user write.
#[derive(Debug, Clone)]
enum UserWrite {
    Upsert {
        user: KcUser,
        current: Option<String>,
    },
    Delete {
        id: String,
    },
}

/// Plans and applies the users of a snapshot. `adopt`: directory users not
/// matched by externalId may be matched by userName.
struct UserPlan {
    writes: Vec<UserWrite>,
    changes: Vec<Change>,
    /// Users missing from the listing that Keycloak still has by id.
    found_by_id: Vec<KcUser>,
}

fn differing_fields(current: &serde_json::Value, wanted: &serde_json::Value) -> Vec<String> {
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    for doc in [current, wanted] {
        if let Some(o) = doc.as_object() {
            keys.extend(o.keys().map(String::as_str));
        }
    }
    keys.into_iter()
        .filter(|k| current.get(*k) != wanted.get(*k))
        .map(str::to_owned)
        .collect()
}

async fn plan_users(
    kc: &Keycloak,
    users: &[KcUser],
    skipped: &[Invalid],
    dir_users: &[Entry],
    adopt: bool,
) -> Result<UserPlan, KeycloakError> {
    let by_ext = by_external_id(dir_users);
    let mut matched: HashSet<&str> = HashSet::new();
    let mut by_name: HashMap<&str, &Entry> = HashMap::new();
    if adopt {
        let listed: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
        by_name = dir_users
            .iter()
            .filter(|e| e.external_id.as_deref().is_none_or(|x| !listed.contains(x)))
            .map(|e| (e.name_lc.as_str(), e))
            .collect();
    }
    let mut plan = UserPlan {
        writes: Vec::new(),
        changes: Vec::new(),
        found_by_id: Vec::new(),
    };
    let upsert = |u: &KcUser, current: Option<&Entry>, plan: &mut UserPlan| {
        let wanted = dir::stored_doc(ResourceKind::User, &dir::user_body(u));
        let change = match (current, wanted) {
            (_, Err(e)) => {
                // Keycloak accepted what SCIM refuses: reported when applied.
                Some(Change {
                    op: if current.is_some() {
                        Op::Update
                    } else {
                        Op::Create
                    },
                    kind: "user",
                    external_id: Some(u.id.clone()),
                    id: current.map(|c| c.id.clone()),
                    name: u.username.clone(),
                    fields: vec![format!("invalid: {}", e.detail)],
                })
            }
            (Some(c), Ok(w)) => {
                let fields = differing_fields(&c.doc, &w);
                (!fields.is_empty()).then(|| Change {
                    op: Op::Update,
                    kind: "user",
                    external_id: Some(u.id.clone()),
                    id: Some(c.id.clone()),
                    name: u.username.clone(),
                    fields,
                })
            }
            (None, Ok(_)) => Some(Change {
                op: Op::Create,
                kind: "user",
                external_id: Some(u.id.clone()),
                id: None,
                name: u.username.clone(),
                fields: Vec::new(),
            }),
        };
        if let Some(change) = change {
            plan.changes.push(change);
            plan.writes.push(UserWrite::Upsert {
                user: u.clone(),
                current: current.map(|c| c.id.clone()),
            });
        }
    };
    for u in users {
        let current = by_ext
            .get(u.id.as_str())
            .copied()
            .or_else(|| by_name.get(u.username.to_lowercase().as_str()).copied());
        if let Some(c) = current {
            matched.insert(c.id.as_str());
        }
        upsert(u, current, &mut plan);
    }
    let kept: HashSet<&str> = skipped.iter().filter_map(|i| i.id.as_deref()).collect();
    for e in dir_users {
        if matched.contains(e.id.as_str()) {
            continue;
        }
        if let Some(ext) = e.external_id.as_deref() {
            if kept.contains(ext) {
                continue;
            }
            // Not listed: gone only if Keycloak says so by id.
            match kc.user(ext).await? {
                Some(Ok(u)) => {
                    matched.insert(e.id.as_str());
                    upsert(&u, Some(e), &mut plan);
                    plan.found_by_id.push(u);
                    continue;
                }
                Some(Err(_)) => continue,
                None => {}
            }
        }
        plan.changes.push(Change {
            op: Op::Delete,
            kind: "user",
            external_id: e.external_id.clone(),
            id: Some(e.id.clone()),
            name: e.name_lc.clone(),
            fields: Vec::new(),
        });
        plan.writes.push(UserWrite::Delete { id: e.id.clone() });
    }
    Ok(plan)
}

/// A planned group write.
#[derive(Debug, Clone)]
enum GroupWrite {
    Create {
        group: KcGroup,
    },
    /// Name and members as the realm has them.
    Replace {
        group: KcGroup,
    },
    Delete {
        id: String,
    },
}

struct GroupPlan {
    writes: Vec<GroupWrite>,
    changes: Vec<Change>,
}

async fn plan_groups(
    kc: &Keycloak,
    tree: &GroupTree,
    dir_groups: &[Entry],
    dir_users: &[Entry],
    planned_users: &[KcUser],
    adopt: bool,
) -> Result<GroupPlan, KeycloakError> {
    let by_ext = by_external_id(dir_groups);
    // Directory id → Keycloak id, for users and groups (members compare in
    // Keycloak ids).
    let ext_of: HashMap<&str, &str> = dir_users
        .iter()
        .chain(dir_groups)
        .filter_map(|e| e.external_id.as_deref().map(|x| (e.id.as_str(), x)))
        .collect();
    // Users that will exist once the users are applied (Keycloak ids).
    let known_users: HashSet<&str> = planned_users.iter().map(|u| u.id.as_str()).collect();
    let mut by_name: HashMap<&str, &Entry> = HashMap::new();
    if adopt {
        let listed: HashSet<&str> = tree.groups.iter().map(|g| g.id.as_str()).collect();
        by_name = dir_groups
            .iter()
            .filter(|e| e.external_id.as_deref().is_none_or(|x| !listed.contains(x)))
            .map(|e| (e.name_lc.as_str(), e))
            .collect();
    }
    let mut plan = GroupPlan {
        writes: Vec::new(),
        changes: Vec::new(),
    };
    let mut matched: HashSet<&str> = HashSet::new();
    for g in &tree.groups {
        let current = by_ext.get(g.id.as_str()).copied().or_else(|| {
            by_name
                .get(dir::group_name(g).to_lowercase().as_str())
                .copied()
        });
        let wanted: BTreeSet<String> = tree
            .wanted(g)
            .into_iter()
            .filter(|u| known_users.contains(u.as_str()))
            .collect();
        let Some(c) = current else {
            plan.changes.push(Change {
                op: Op::Create,
                kind: "group",
                external_id: Some(g.id.clone()),
                id: None,
                name: dir::group_name(g),
                fields: if wanted.is_empty() {
                    vec![]
                } else {
                    vec!["members".into()]
                },
            });
            plan.writes.push(GroupWrite::Create { group: g.clone() });
            continue;
        };
        matched.insert(c.id.as_str());
        let mut fields = match dir::stored_doc(ResourceKind::Group, &dir::group_body(g, None)) {
            Ok(w) => differing_fields(&c.doc, &w),
            Err(e) => vec![format!("invalid: {}", e.detail)],
        };
        let have: BTreeSet<String> = c
            .members
            .iter()
            .map(|(id, _)| {
                ext_of
                    .get(id.as_str())
                    .map_or_else(|| id.clone(), |x| (*x).to_owned())
            })
            .collect();
        if have != wanted {
            fields.push("members".into());
        }
        if !fields.is_empty() {
            plan.changes.push(Change {
                op: Op::Update,
                kind: "group",
                external_id: Some(g.id.clone()),
                id: Some(c.id.clone()),
                name: dir::group_name(g),
                fields,
            });
            plan.writes.push(GroupWrite::Replace { group: g.clone() });
        }
    }
    let kept: HashSet<&str> = tree
        .skipped
        .iter()
        .filter_map(|i| i.id.as_deref())
        .collect();
    for e in dir_groups {
        if matched.contains(e.id.as_str()) {
            continue;
        }
        if let Some(ext) = e.external_id.as_deref() {
            if kept.contains(ext) || kc.group_exists(ext).await? {
                // Present in Keycloak but not read (skipped, or moved while the
                // tree was read): left for the next run.
                continue;
            }
        }
        plan.changes.push(Change {
            op: Op::Delete,
            kind: "group",
            external_id: e.external_id.clone(),
            id: Some(e.id.clone()),
            name: e.name_lc.clone(),
            fields: Vec::new(),
        });
        plan.writes.push(GroupWrite::Delete { id: e.id.clone() });
    }
    // Creations need the new groups to exist before they are members of
    // their parents: every created group is also replaced (with its members)
    // once all creations are done.
    let created: Vec<GroupWrite> = plan
        .writes
        .iter()
        .filter_map(|w| match w {
            GroupWrite::Create { group } => Some(GroupWrite::Replace {
                group: group.clone(),
            }),
            _ => None,
        })
        .collect();
    plan.writes.extend(created);
    Ok(plan)
}

/// Applies planned writes in a safe order: deletions first (a user deleted
/// and created again under the same name), users, group creations, then
/// group names and members.
struct Applier<'a> {
    target: Target<'a>,
    /// Keycloak id → directory id, for users and groups.
    ids: HashMap<String, (String, ResourceKind)>,
    errors: Vec<String>,
}

impl<'a> Applier<'a> {
    async fn new(target: Target<'a>) -> Result<Applier<'a>, StoreError> {
        let mut ids = HashMap::new();
        for kind in [ResourceKind::User, ResourceKind::Group] {
            for e in target.load_ids(kind).await? {
                ids.insert(e.0, (e.1, kind));
            }
        }
        Ok(Applier {
            target,
            ids,
            errors: Vec::new(),
        })
    }

    fn fail(&mut self, what: &str, ext: &str, e: scim::ScimError) {
        self.errors.push(format!("{what} {ext}: {}", e.detail));
    }

    async fn user(&mut self, w: &UserWrite) {
        match w {
            UserWrite::Delete { id } => match self.target.delete(ResourceKind::User, id).await {
                Ok(()) => {}
                Err(e) => self.fail("deleting user", id, e),
            },
            UserWrite::Upsert { user, current } => {
                let body = dir::user_body(user);
                let done = match current {
                    Some(id) => self
                        .target
                        .replace(ResourceKind::User, id, &body)
                        .await
                        .map(|()| id.clone()),
                    None => self.target.create(ResourceKind::User, &body).await,
                };
                match done {
                    Ok(id) => {
                        self.ids.insert(user.id.clone(), (id, ResourceKind::User));
                    }
                    Err(e) => self.fail("user", &user.id, e),
                }
            }
        }
    }

    async fn group(&mut self, w: &GroupWrite, tree: &GroupTree) {
        match w {
            GroupWrite::Delete { id } => match self.target.delete(ResourceKind::Group, id).await {
                Ok(()) => {}
                Err(e) => self.fail("deleting group", id, e),
            },
            GroupWrite::Create { group } => {
                match self
                    .target
                    .create(ResourceKind::Group, &dir::group_body(group, None))
                    .await
                {
                    Ok(id) => {
                        self.ids.insert(group.id.clone(), (id, ResourceKind::Group));
                    }
                    Err(e) => self.fail("group", &group.id, e),
                }
            }
            GroupWrite::Replace { group } => {
                let Some((id, _)) = self.ids.get(&group.id).cloned() else {
                    // Its creation failed (already reported).
                    return;
                };
                let members: Vec<(String, ResourceKind)> = tree
                    .wanted(group)
                    .iter()
                    .filter_map(|x| self.ids.get(x).cloned())
                    .collect();
                match self
                    .target
                    .replace(
                        ResourceKind::Group,
                        &id,
                        &dir::group_body(group, Some(&members)),
                    )
                    .await
                {
                    Ok(()) => {}
                    Err(e) => self.fail("group", &group.id, e),
                }
            }
        }
    }
}

impl Target<'_> {
    /// (externalId, id) of every resource of a kind that has an externalId.
    async fn load_ids(&self, kind: ResourceKind) -> Result<Vec<(String, String)>, StoreError> {
        let entries = self.load(kind).await?;
        Ok(entries
            .into_iter()
            .filter_map(|e| e.external_id.map(|x| (x, e.id)))
            .collect())
    }
}

/// Options of a reconciliation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub dry_run: bool,
    /// Match directory resources without a Keycloak id by name (first run of
    /// a source added with adoption).
    pub adopt: bool,
    /// Reconcile the groups only (the users are taken as they are).
    pub groups_only: bool,
}

/// Reads the realm, compares, and (unless dry) applies.
pub async fn reconcile(
    kc: &Keycloak,
    target: Target<'_>,
    options: Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report, SyncError> {
    let snapshot = if options.groups_only {
        Snapshot {
            tree: GroupTree::read(kc, progress).await?,
            ..Snapshot::default()
        }
    } else {
        Snapshot::read(kc, progress).await?
    };
    let dir_users = target.load(ResourceKind::User).await?;
    let dir_groups = target.load(ResourceKind::Group).await?;
    let (users, known) = if options.groups_only {
        // Every directory user with a Keycloak id stays a possible member.
        let known: Vec<KcUser> = dir_users
            .iter()
            .filter_map(|e| {
                e.external_id.as_ref().map(|x| KcUser {
                    id: x.clone(),
                    username: String::new(),
                    first_name: None,
                    last_name: None,
                    email: None,
                    enabled: true,
                })
            })
            .collect();
        (
            UserPlan {
                writes: vec![],
                changes: vec![],
                found_by_id: vec![],
            },
            known,
        )
    } else {
        let mut known = snapshot.users.clone();
        let plan = plan_users(
            kc,
            &snapshot.users,
            &snapshot.skipped_users,
            &dir_users,
            options.adopt,
        )
        .await?;
        // Users kept as they are (skipped, or found by id) stay possible members.
        known.extend(plan.found_by_id.iter().cloned());
        for s in &snapshot.skipped_users {
            if let Some(id) = &s.id {
                known.push(KcUser {
                    id: id.clone(),
                    username: String::new(),
                    first_name: None,
                    last_name: None,
                    email: None,
                    enabled: true,
                });
            }
        }
        (plan, known)
    };
    let groups = plan_groups(
        kc,
        &snapshot.tree,
        &dir_groups,
        &dir_users,
        &known,
        options.adopt,
    )
    .await?;
    let mut report = Report {
        dry_run: options.dry_run,
        realm_users: snapshot.users.len(),
        realm_groups: snapshot.tree.groups.len(),
        changes: users
            .changes
            .iter()
            .chain(&groups.changes)
            .cloned()
            .collect(),
        applied: 0,
        skipped: snapshot
            .skipped_users
            .iter()
            .chain(&snapshot.tree.skipped)
            .cloned()
            .collect(),
        errors: Vec::new(),
    };
    if options.dry_run || report.changes.is_empty() {
        return Ok(report);
    }
    let total = users.writes.len() + groups.writes.len();
    let mut a = Applier::new(target).await?;
    let mut done = 0;
    let mut step = || {
        done += 1;
        progress(Progress::Apply { done, total });
    };
    let is_delete = |u: &&UserWrite| matches!(u, UserWrite::Delete { .. });
    let is_group_delete = |w: &&GroupWrite| matches!(w, GroupWrite::Delete { .. });
    for w in users.writes.iter().filter(is_delete) {
        a.user(w).await;
        step();
    }
    for w in groups.writes.iter().filter(is_group_delete) {
        a.group(w, &snapshot.tree).await;
        step();
    }
    for w in users.writes.iter().filter(|w| !is_delete(w)) {
        a.user(w).await;
        step();
    }
    for w in groups.writes.iter().filter(|w| !is_group_delete(w)) {
        a.group(w, &snapshot.tree).await;
        step();
    }
    // One failed write fails one change (a created group's member write is
    // skipped when its creation failed).
    report.applied = report.changes.len().saturating_sub(a.errors.len());
    report.errors = a.errors;
    Ok(report)
}
