//! Adoption: the directory users without a recorded account that may take
//! over an existing one under the app's [`Adopt`] setting, and their adoption.
//!
//! Adopting records the link (the account's app id, status `pending`) and
//! nothing else: the user is then queued as a forced repair with the others
//! (see [`super::repair`]), and its delivery, by whichever worker leases it,
//! brings the account to the directory's state and sets Liaison's marker.

use super::compare::same_text;
use super::read::{AppSide, Directory};
use super::{Adoption, AppReport, CollisionItem, DriftResource};
use crate::deliver::{user_spec, STATUS_PENDING};
use crate::{Adopt, AppUser, Connector, DeliveryError};
use std::collections::HashSet;
use store::{AppRecord, Store};

/// The directory users without a recorded account that may adopt an existing
/// one under `mode`: one match only (by login name or by e-mail), each account
/// once, never the service account nor an account another link records.
pub(super) fn adoption_candidates(
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

/// Records the link of every account of [`AppReport::adoptable`] (status
/// `pending`, to be delivered as a queued repair). Returns the adoptions
/// recorded; those refused are reported (see [`adoption_failed`]).
pub(super) async fn record_adoptions(
    store: &Store,
    app: &AppRecord,
    conn: &dyn Connector,
    report: &mut AppReport,
) -> Vec<Adoption> {
    let mut recorded = Vec::new();
    for a in report.adoptable.clone() {
        match record_link(store, app, conn, &a).await {
            Ok(()) => recorded.push(a),
            Err(e) => adoption_failed(report, &a, e.is_collision(), e.report()),
        }
    }
    recorded
}

/// Records that the user's account is `a.app_id` (the account the connector
/// signs in with is refused). No call to the app.
async fn record_link(
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
        .record_link(app.id, &a.id, Some(&a.app_id), None, STATUS_PENDING, None)
        .await
        .map_err(|e| DeliveryError::Transient(format!("store: {e}")))
}

/// Reports an adoption that failed: a collision (the account may not be
/// Liaison's) among the collisions, any other failure among the errors.
pub(super) fn adoption_failed(
    report: &mut AppReport,
    a: &Adoption,
    collision: bool,
    error: String,
) {
    if collision {
        report.collisions.push(CollisionItem {
            resource: DriftResource::User,
            id: a.id.clone(),
            name: a.user_name.clone(),
            error,
        });
    } else {
        report
            .errors
            .push(format!("adopt user {}: {error}", a.user_name));
    }
}
