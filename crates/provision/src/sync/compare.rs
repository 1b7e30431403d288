//! Comparison of the app with the directory, one resource kind at a time:
//! [`compare_users`] matches directory users with the app's accounts (by
//! recorded app id, then by name), [`compare_groups`] does the same for groups,
//! [`compare_memberships`] compares the members of each matched group,
//! [`compare_departed`] finds what the app still holds for resources gone from
//! the directory, and [`compare_extras`] lists what nothing matched. The order
//! of the items is the report's: users, then each group followed by its
//! memberships, then departed resources, then extras.

use super::read::{AppSide, Directory};
use super::{Drift, DriftKind, DriftResource};
use crate::deliver::{group_spec, user_spec, STATUS_PENDING};
use crate::{AppGroup, AppUser, Connector, UserSpec};
use std::collections::{BTreeSet, HashMap, HashSet};
use store::{AppRecord, ResourceRow};

/// Whether two optional texts are the same, trimmed and ignoring ASCII case
/// (a missing text is an empty one).
pub(super) fn same_text(a: Option<&str>, b: Option<&str>) -> bool {
    a.unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(b.unwrap_or("").trim())
}

/// The app side, indexed for matching.
struct Index<'a> {
    users_by_id: HashMap<&'a str, &'a AppUser>,
    /// Lower-cased login name → account.
    users_by_name: HashMap<String, &'a AppUser>,
    groups_by_id: HashMap<&'a str, &'a AppGroup>,
    /// Lower-cased display name → group.
    groups_by_name: HashMap<String, &'a AppGroup>,
    /// App ids some link records: never matched by name to another resource.
    linked_refs: HashSet<&'a str>,
}

impl<'a> Index<'a> {
    fn new(dir: &'a Directory, side: &'a AppSide) -> Index<'a> {
        Index {
            users_by_id: side.users.iter().map(|u| (u.app_id.as_str(), u)).collect(),
            users_by_name: side
                .users
                .iter()
                .map(|u| (u.user_name.to_lowercase(), u))
                .collect(),
            groups_by_id: side.groups.iter().map(|g| (g.app_id.as_str(), g)).collect(),
            groups_by_name: side
                .groups
                .iter()
                .map(|g| (g.display_name.to_lowercase(), g))
                .collect(),
            linked_refs: dir
                .links
                .values()
                .filter_map(|l| l.app_ref.as_deref())
                .collect(),
        }
    }
}

/// How the directory users matched the app's accounts.
struct Users<'a> {
    drift: Vec<Drift>,
    /// App ids matched with a directory resource.
    claimed: HashSet<String>,
    /// SCIM user id → app id, and back.
    user_app: HashMap<String, String>,
    app_user: HashMap<String, String>,
    /// SCIM user id → user name.
    user_name: HashMap<&'a str, String>,
    /// SCIM user id → whether the user is active.
    active: HashMap<&'a str, bool>,
}

/// How one directory group matched the app's groups.
struct GroupMatch<'a> {
    row: &'a ResourceRow,
    /// The group's name in the directory.
    name: String,
    found: Option<&'a AppGroup>,
    /// The group's own item (missing or different), if any.
    drift: Option<Drift>,
}

/// Compares the app with the directory.
pub(super) fn compare(
    app: &AppRecord,
    conn: &dyn Connector,
    dir: &Directory,
    side: &AppSide,
) -> Vec<Drift> {
    let index = Index::new(dir, side);
    let mut users = compare_users(conn, dir, &index);
    let mut drift = std::mem::take(&mut users.drift);
    let mut claimed_groups = HashSet::new();
    for group in compare_groups(conn, dir, &index, &mut claimed_groups) {
        drift.extend(group.drift.clone());
        drift.extend(compare_memberships(dir, side, &users, &group));
    }
    drift.extend(compare_departed(
        app,
        dir,
        &index,
        &mut users.claimed,
        &mut claimed_groups,
    ));
    drift.extend(compare_extras(side, &users.claimed, &claimed_groups));
    drift
}

/// Matches each directory user with an account (its recorded app id first,
/// then its login name, unless another resource's link records that account)
/// and reports the users missing and the accounts that differ.
fn compare_users<'a>(conn: &dyn Connector, dir: &'a Directory, index: &Index<'a>) -> Users<'a> {
    let mut out = Users {
        drift: Vec::new(),
        claimed: HashSet::new(),
        user_app: HashMap::new(),
        app_user: HashMap::new(),
        user_name: HashMap::new(),
        active: HashMap::new(),
    };
    for row in &dir.users {
        let spec = user_spec(row);
        out.user_name
            .insert(row.id.as_str(), spec.user_name.clone());
        out.active.insert(row.id.as_str(), spec.active);
        let link = dir.links.get(&row.id);
        let known = link.and_then(|l| l.app_ref.as_deref());
        let by_ref = known.and_then(|r| index.users_by_id.get(r).copied());
        let found = by_ref.or_else(|| {
            index
                .users_by_name
                .get(&conn.app_user_name(&spec.user_name).to_lowercase())
                .copied()
                .filter(|u| {
                    !out.claimed.contains(&u.app_id)
                        && (known == Some(u.app_id.as_str())
                            || !index.linked_refs.contains(u.app_id.as_str()))
                })
        });
        let Some(u) = found else {
            let mut d = Drift::new(DriftResource::User, DriftKind::Missing, &spec.user_name);
            d.id = Some(row.id.clone());
            out.drift.push(d);
            continue;
        };
        out.claimed.insert(u.app_id.clone());
        out.user_app.insert(row.id.clone(), u.app_id.clone());
        out.app_user.insert(u.app_id.clone(), row.id.clone());
        let pending = link.is_some_and(|l| l.status == STATUS_PENDING);
        let fields = user_fields(&spec, u, known, pending);
        if !fields.is_empty() {
            let mut d = Drift::new(DriftResource::User, DriftKind::Different, &spec.user_name);
            d.id = Some(row.id.clone());
            d.app_id = Some(u.app_id.clone());
            d.fields = fields;
            out.drift.push(d);
        }
    }
    out
}

/// The fields in which an account differs from what the directory wants:
/// `link` when it was found by name under another id than the recorded one, or
/// when its link is `pending` (an adoption recorded, not delivered yet).
fn user_fields(spec: &UserSpec, u: &AppUser, known: Option<&str>, pending: bool) -> Vec<String> {
    let mut fields = Vec::new();
    if known != Some(u.app_id.as_str()) || pending {
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
    if spec.email.is_some() && u.active && !same_text(spec.email.as_deref(), u.email.as_deref()) {
        fields.push("email".to_owned());
    }
    if u.active != spec.active {
        fields.push("active".to_owned());
    }
    fields
}

/// Matches each directory group with an app group (its recorded app id first,
/// then its name as the connector maps it), recording the groups matched in
/// `claimed`, with the group's own item when it is missing or differs.
fn compare_groups<'a>(
    conn: &dyn Connector,
    dir: &'a Directory,
    index: &Index<'a>,
    claimed: &mut HashSet<String>,
) -> Vec<GroupMatch<'a>> {
    let mut out = Vec::new();
    for row in &dir.groups {
        let spec = group_spec(row);
        let want_name = conn.app_group_name(&spec.display_name);
        let known = dir.links.get(&row.id).and_then(|l| l.app_ref.as_deref());
        let found = known
            .and_then(|r| index.groups_by_id.get(r).copied())
            .or_else(|| {
                index
                    .groups_by_name
                    .get(&want_name.to_lowercase())
                    .copied()
                    .filter(|g| {
                        !claimed.contains(&g.app_id)
                            && !index.linked_refs.contains(g.app_id.as_str())
                    })
            });
        let drift = match found {
            None => {
                let mut d =
                    Drift::new(DriftResource::Group, DriftKind::Missing, &spec.display_name);
                d.id = Some(row.id.clone());
                Some(d)
            }
            Some(g) => {
                claimed.insert(g.app_id.clone());
                let mut fields = Vec::new();
                if known != Some(g.app_id.as_str()) {
                    fields.push("link".to_owned());
                }
                if g.display_name.trim() != want_name.trim() {
                    fields.push("display_name".to_owned());
                }
                (!fields.is_empty()).then(|| {
                    let mut d = Drift::new(
                        DriftResource::Group,
                        DriftKind::Different,
                        &spec.display_name,
                    );
                    d.id = Some(row.id.clone());
                    d.app_id = Some(g.app_id.clone());
                    d.fields = fields;
                    d
                })
            }
        };
        out.push(GroupMatch {
            row,
            name: spec.display_name,
            found,
            drift,
        });
    }
    out
}

/// Compares the members of one directory group with its app group: every
/// active direct member must be there (all of them, when the group is
/// missing); a member the directory group does not have directly is extra
/// (the service account excepted; inactive direct members may stay).
fn compare_memberships(
    dir: &Directory,
    side: &AppSide,
    users: &Users<'_>,
    group: &GroupMatch<'_>,
) -> Vec<Drift> {
    let direct: HashSet<&str> = dir
        .members
        .get(&group.row.id)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let wanted: BTreeSet<&str> = direct
        .iter()
        .copied()
        .filter(|m| users.active.get(m).copied().unwrap_or(false))
        .collect();
    let member_drift = |kind, member: Option<&str>, member_app: Option<&str>| {
        let who = member
            .and_then(|m| users.user_name.get(m).cloned())
            .or_else(|| member_app.map(str::to_owned))
            .unwrap_or_default();
        let mut d = Drift::new(
            DriftResource::Membership,
            kind,
            format!("{}/{who}", group.name),
        );
        d.id = Some(group.row.id.clone());
        d.app_id = group.found.map(|g| g.app_id.clone());
        d.member_id = member.map(str::to_owned);
        d.member_app_id = member_app.map(str::to_owned);
        d
    };
    let mut drift = Vec::new();
    let Some(g) = group.found else {
        for m in &wanted {
            let app_id = users.user_app.get(*m).map(String::as_str);
            drift.push(member_drift(DriftKind::Missing, Some(m), app_id));
        }
        return drift;
    };
    let have: HashSet<&str> = g.members.iter().map(String::as_str).collect();
    for m in &wanted {
        let app_id = users.user_app.get(*m).map(String::as_str);
        if !app_id.is_some_and(|a| have.contains(a)) {
            drift.push(member_drift(DriftKind::Missing, Some(m), app_id));
        }
    }
    for a in &g.members {
        if side.protected.contains(a) {
            continue;
        }
        match users.app_user.get(a) {
            // Members of the directory group that are inactive may stay.
            Some(scim) if direct.contains(scim.as_str()) => {}
            Some(scim) => drift.push(member_drift(DriftKind::Extra, Some(scim), Some(a))),
            None => drift.push(member_drift(DriftKind::Extra, None, Some(a))),
        }
    }
    drift
}

/// What the app still holds for resources gone from the directory (found by
/// their links): an account still active (or, under the `delete` policy,
/// still there), a group still there under the `delete` policy. Claims them.
fn compare_departed(
    app: &AppRecord,
    dir: &Directory,
    index: &Index<'_>,
    claimed_users: &mut HashSet<String>,
    claimed_groups: &mut HashSet<String>,
) -> Vec<Drift> {
    let delete_policy = app.deprovision.deletes();
    let user_ids: HashSet<&str> = dir.users.iter().map(|u| u.id.as_str()).collect();
    let group_ids: HashSet<&str> = dir.groups.iter().map(|g| g.id.as_str()).collect();
    let mut drift = Vec::new();
    for (rid, link) in &dir.links {
        if user_ids.contains(rid.as_str()) || group_ids.contains(rid.as_str()) {
            continue;
        }
        let Some(r) = link.app_ref.as_deref() else {
            continue;
        };
        if let Some(u) = index.users_by_id.get(r) {
            if claimed_users.contains(&u.app_id) {
                continue;
            }
            claimed_users.insert(u.app_id.clone());
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
        } else if let Some(g) = index.groups_by_id.get(r) {
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
    drift
}

/// The accounts and groups nothing claimed (the service account excepted);
/// an extra group the service account belongs to is marked protected.
fn compare_extras(
    side: &AppSide,
    claimed_users: &HashSet<String>,
    claimed_groups: &HashSet<String>,
) -> Vec<Drift> {
    let mut drift = Vec::new();
    for u in &side.users {
        if claimed_users.contains(&u.app_id) || side.protected.contains(&u.app_id) {
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
        d.protected = g.members.iter().any(|m| side.protected.contains(m));
        drift.push(d);
    }
    drift
}
