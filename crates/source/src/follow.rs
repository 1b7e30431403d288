//! Incremental following: the realm's admin events and user events since the
//! cursors say which users and groups changed; those are read again from
//! Keycloak and applied (an event is a hint, the current state is the truth,
//! so applying twice changes nothing).
//!
//! The events are read from a little before each cursor (clock and commit
//! order between Keycloak's nodes), and the ids of the events already applied
//! in that overlap are remembered, so they are not applied again. A run that
//! finds more events or changed users than its bounds asks for a full
//! reconciliation instead.

use crate::dir::{self, Target};
use crate::keycloak::{KcUser, Keycloak, KeycloakError};
use crate::sync::{self, Options, SyncError};
use scim::ResourceKind;
use std::collections::{BTreeSet, HashSet};

/// How far before a cursor the events are read again (ms).
pub const OVERLAP_MS: i64 = 10_000;
/// Users changed in one run beyond which a full reconciliation is run instead.
pub const MAX_CHANGED_USERS: usize = 500;

/// Where following stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub admin: i64,
    pub user: i64,
    /// `"{time}:{id}"` of the events applied in the overlap.
    pub seen: Vec<String>,
}

/// What one run of the follower did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Events applied; the cursor to store.
    Applied {
        cursor: Cursor,
        events: usize,
        applied: usize,
        errors: Vec<String>,
    },
    /// Too much changed for events: run a full reconciliation.
    NeedsFull(String),
}

/// What the events of a run touched.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touched {
    pub users: BTreeSet<String>,
    pub groups: bool,
    pub memberships: BTreeSet<String>,
}

/// What an event says changed.
enum Hint {
    User(String),
    Membership(String),
    Groups,
}

/// The user id an admin event path `users/{id}/...` names.
fn user_in_path(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    (parts.next() == Some("users"))
        .then(|| parts.next())
        .flatten()
        .filter(|id| crate::keycloak::valid_id(id))
}

/// Reads the events since the cursor. `Err(NeedsFull)` through `Ok(None)`.
async fn read_events(
    kc: &Keycloak,
    cursor: &Cursor,
) -> Result<Option<(Touched, Cursor, usize)>, KeycloakError> {
    let admin = match kc.admin_events(cursor.admin - OVERLAP_MS).await {
        Ok(e) => e,
        Err(KeycloakError::Bound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let user = match kc.user_events(cursor.user - OVERLAP_MS).await {
        Ok(e) => e,
        Err(KeycloakError::Bound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let seen: HashSet<&str> = cursor.seen.iter().map(String::as_str).collect();
    let key = |time: i64, id: &Option<String>| id.as_ref().map(|i| format!("{time}:{i}"));
    let fresh = |k: &Option<String>| k.as_deref().is_none_or(|k| !seen.contains(k));
    let mut touched = Touched::default();
    let mut next = Cursor {
        admin: cursor.admin,
        user: cursor.user,
        seen: Vec::new(),
    };
    // One pass over both streams: (is an admin event, time, id, what it touches).
    let admin_hints = admin.iter().map(|e| {
        let hint = match e.resource_type.as_str() {
            "USER" => user_in_path(&e.resource_path).map(|u| Hint::User(u.to_owned())),
            "GROUP_MEMBERSHIP" => {
                user_in_path(&e.resource_path).map(|u| Hint::Membership(u.to_owned()))
            }
            "GROUP" => Some(Hint::Groups),
            _ => None,
        };
        (true, e.time, &e.id, hint)
    });
    let user_hints = user
        .iter()
        .map(|e| (false, e.time, &e.id, e.user_id.clone().map(Hint::User)));
    let mut keys: Vec<(i64, String)> = Vec::new();
    let mut count = 0;
    for (is_admin, time, id, hint) in admin_hints.chain(user_hints) {
        let cursor = if is_admin {
            &mut next.admin
        } else {
            &mut next.user
        };
        *cursor = (*cursor).max(time);
        let k = key(time, id);
        if let Some(k) = &k {
            keys.push((time, k.clone()));
        }
        if !fresh(&k) {
            continue;
        }
        count += 1;
        match hint {
            Some(Hint::User(u)) => {
                touched.users.insert(u);
            }
            Some(Hint::Membership(u)) => {
                touched.memberships.insert(u);
            }
            Some(Hint::Groups) => touched.groups = true,
            None => {}
        }
    }
    // Keep what the next run's overlap will read again (the old entries too:
    // their events are still in the window when no newer event came).
    let floor = next.admin.min(next.user) - OVERLAP_MS;
    let mut kept: BTreeSet<String> = cursor
        .seen
        .iter()
        .filter(|k| {
            k.split_once(':')
                .and_then(|(t, _)| t.parse::<i64>().ok())
                .is_some_and(|t| t >= floor)
        })
        .cloned()
        .collect();
    kept.extend(
        keys.into_iter()
            .filter(|(t, _)| *t >= floor)
            .map(|(_, k)| k),
    );
    next.seen = kept.into_iter().collect();
    Ok(Some((touched, next, count)))
}

/// One user as read again: present (with its groups), gone, or not taken.
enum UserNow {
    Present(KcUser, Option<Vec<String>>),
    Gone,
    Skipped,
}

/// Applies the events since `cursor`.
pub async fn follow(
    kc: &Keycloak,
    target: Target<'_>,
    cursor: &Cursor,
) -> Result<Followed, SyncError> {
    let Some((touched, next, events)) = read_events(kc, cursor).await? else {
        return Ok(Followed::NeedsFull(format!(
            "more than {} events since the cursor",
            kc.bounds().max_events
        )));
    };
    let mut changed: BTreeSet<String> = touched.users.clone();
    changed.extend(touched.memberships.iter().cloned());
    if changed.len() > MAX_CHANGED_USERS {
        return Ok(Followed::NeedsFull(format!(
            "more than {MAX_CHANGED_USERS} users changed since the cursor"
        )));
    }
    // Everything is read before anything is written.
    let mut now = Vec::new();
    for id in &changed {
        let state = match kc.user(id).await? {
            None => UserNow::Gone,
            Some(Err(_)) => UserNow::Skipped,
            Some(Ok(u)) => {
                let groups = if touched.groups {
                    None
                } else {
                    kc.user_groups(id).await?
                };
                UserNow::Present(u, groups)
            }
        };
        now.push((id.clone(), state));
    }
    let mut applied = 0;
    let mut errors = Vec::new();
    let mut fail = |what: String, e: scim::ScimError| -> Result<(), SyncError> {
        if e.status >= 500 {
            // The database failed: stop here, the cursor stays.
            return Err(SyncError::Directory(e.detail));
        }
        errors.push(format!("{what}: {}", e.detail));
        Ok(())
    };
    // Deletions first: a user deleted and created again under the same name.
    for (id, state) in &now {
        if let UserNow::Gone = state {
            if let Some(e) = target.find(ResourceKind::User, id).await? {
                match target.delete(ResourceKind::User, &e.id).await {
                    Ok(()) => applied += 1,
                    Err(err) => fail(format!("deleting user {id}"), err)?,
                }
            }
        }
    }
    let mut need_groups = touched.groups;
    for (id, state) in &now {
        let UserNow::Present(u, groups) = state else {
            continue;
        };
        let body = dir::user_body(u);
        let current = target.find(ResourceKind::User, id).await?;
        let written = match &current {
            Some(c) => {
                let same = dir::stored_doc(ResourceKind::User, &body).is_ok_and(|w| w == c.doc);
                if same {
                    Ok(Some(c.id.clone()))
                } else {
                    target
                        .replace(ResourceKind::User, &c.id, &body)
                        .await
                        .map(|()| {
                            applied += 1;
                            Some(c.id.clone())
                        })
                }
            }
            None => target.create(ResourceKind::User, &body).await.map(|new| {
                applied += 1;
                Some(new)
            }),
        };
        let user_id = match written {
            Ok(Some(i)) => i,
            Ok(None) => continue,
            Err(e) => {
                fail(format!("user {id}"), e)?;
                continue;
            }
        };
        let Some(groups) = groups else { continue };
        // The user's direct groups, as Keycloak has them now.
        let mut wanted = HashSet::new();
        for g in groups {
            match target.find(ResourceKind::Group, g).await? {
                Some(e) => {
                    wanted.insert(e.id);
                }
                // A group the directory does not have yet: the groups are
                // reconciled below.
                None => need_groups = true,
            }
        }
        let have: HashSet<String> = target.groups_of(&user_id).await?.into_iter().collect();
        for (gid, member) in wanted
            .difference(&have)
            .map(|g| (g, true))
            .chain(have.difference(&wanted).map(|g| (g, false)))
        {
            match target.set_member(gid, &user_id, member).await {
                Ok(()) => applied += 1,
                Err(e) => fail(format!("membership of user {id}"), e)?,
            }
        }
    }
    if need_groups {
        let report = sync::reconcile(
            kc,
            target,
            Options {
                groups_only: true,
                ..Options::default()
            },
            &|_| {},
        )
        .await?;
        applied += report.applied;
        errors.extend(report.errors);
    }
    Ok(Followed::Applied {
        cursor: next,
        events,
        applied,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::user_in_path;

    #[test]
    fn admin_event_paths_name_users() {
        assert_eq!(user_in_path("users/abc-1"), Some("abc-1"));
        assert_eq!(user_in_path("users/abc-1/groups/g-2"), Some("abc-1"));
        assert_eq!(user_in_path("users/abc-1/reset-password"), Some("abc-1"));
        assert_eq!(user_in_path("groups/g-2"), None);
        assert_eq!(user_in_path("users/../x"), None);
        assert_eq!(user_in_path("users"), None);
    }
}
