//! One delivery: bring an app up to date with the *current* state of a user, a
//! group or a membership in the directory.
//!
//! Deliveries are state-based, not replays of changes: whatever happened between
//! two attempts, the app ends up holding what the directory holds now. That is
//! what makes coalescing safe and keeps retries idempotent.

use crate::{Connector, DeliveryError, Deprovision, GroupSpec, UserSpec};
use serde_json::{json, Value};
use store::{AppRecord, Delivery, ResourceKind, ResourceRow, Store, Target};

/// Link statuses recorded in `app_links`.
pub const STATUS_OK: &str = "ok";
pub const STATUS_DEPROVISIONED: &str = "deprovisioned";
/// The app's id is recorded and the delivery queued, not yet made (an
/// account being adopted by reconciliation).
pub const STATUS_PENDING: &str = "pending";
/// The app holds an account Liaison did not create under this name.
pub const STATUS_COLLISION: &str = "collision";

fn store_error(e: store::StoreError) -> DeliveryError {
    DeliveryError::Transient(format!("store: {e}"))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A removal that finds nothing to remove has done its job.
fn already_gone(outcome: Result<(), DeliveryError>) -> Result<(), DeliveryError> {
    match outcome {
        Err(DeliveryError::NotFound(_)) => Ok(()),
        other => other,
    }
}

/// After a resource left the directory and the app was dealt with: under the
/// `delete` policy the link goes; under `disable` it stays, marked deprovisioned.
async fn forget(store: &Store, app: &AppRecord, id: &str) -> Result<(), DeliveryError> {
    match app.deprovision {
        Deprovision::Delete => store.delete_link(app.id, id).await.map_err(store_error),
        Deprovision::Disable => {
            let gone = json!({"deprovisioned": true});
            store
                .record_link(app.id, id, None, Some(&gone), STATUS_DEPROVISIONED, None)
                .await
                .map_err(store_error)
        }
    }
}

/// What the directory wants an app to hold for a stored user.
pub fn user_spec(row: &ResourceRow) -> UserSpec {
    let doc = &row.doc;
    let name = doc.get("name").cloned().unwrap_or(Value::Null);
    let emails = doc.get("emails").and_then(Value::as_array);
    let email = emails
        .and_then(|list| {
            list.iter()
                .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                .or_else(|| list.first())
        })
        .and_then(|e| text(e, "value"));
    let given_name = text(&name, "givenName");
    let family_name = text(&name, "familyName");
    let display_name = text(doc, "displayName")
        .or_else(|| text(&name, "formatted"))
        .or_else(|| match (&given_name, &family_name) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        });
    UserSpec {
        scim_id: row.id.clone(),
        external_id: text(doc, "externalId"),
        user_name: text(doc, "userName").unwrap_or_default(),
        display_name,
        given_name,
        family_name,
        email,
        active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
    }
}

/// What the directory wants an app to hold for a stored group.
pub fn group_spec(row: &ResourceRow) -> GroupSpec {
    GroupSpec {
        scim_id: row.id.clone(),
        display_name: text(&row.doc, "displayName").unwrap_or_default(),
    }
}

/// Runs one delivery against one app (a reconciliation repair skips the
/// "already delivered" check).
pub async fn deliver(
    store: &Store,
    conn: &dyn Connector,
    app: &AppRecord,
    d: &Delivery,
) -> Result<(), DeliveryError> {
    match d.target {
        Target::User => deliver_user(store, conn, app, &d.resource_id, d.forced)
            .await
            .map(drop),
        Target::Group => deliver_group(store, conn, app, &d.resource_id, d.forced)
            .await
            .map(drop),
        Target::Member => deliver_member(store, conn, app, &d.resource_id, &d.member_id).await,
    }
}

/// Makes the app hold the user as the directory has it (or deprovisions it when
/// the directory no longer has it). `force` skips the "already delivered" check
/// (reconciliation). Returns the app's id of the user, if it has one.
pub async fn deliver_user(
    store: &Store,
    conn: &dyn Connector,
    app: &AppRecord,
    id: &str,
    force: bool,
) -> Result<Option<String>, DeliveryError> {
    let link = store.link(app.id, id).await.map_err(store_error)?;
    let known = link.as_ref().and_then(|l| l.app_ref.clone());
    let Some(row) = store
        .get_resource(app.org_id, ResourceKind::User, id)
        .await
        .map_err(store_error)?
    else {
        let Some(app_ref) = known else {
            return Ok(None);
        };
        let outcome = match app.deprovision {
            Deprovision::Delete => conn.delete_user(&app_ref).await,
            Deprovision::Disable => conn.set_user_active(&app_ref, false).await,
        };
        already_gone(outcome)?;
        forget(store, app, id).await?;
        return Ok(None);
    };
    let spec = user_spec(&row);
    let wanted = serde_json::to_value(&spec).unwrap_or(Value::Null);
    let previous = link.as_ref().and_then(|l| l.delivered.clone());
    if !force && known.is_some() && previous.as_ref() == Some(&wanted) {
        return Ok(known);
    }
    let app_ref = match conn.upsert_user(&spec, known.as_deref()).await {
        // Deleted behind Liaison's back: create it again.
        Err(DeliveryError::NotFound(_)) if known.is_some() => conn.upsert_user(&spec, None).await?,
        other => other?,
    };
    // Apps create accounts active; only a change (or an inactive newcomer) needs a call.
    let was_active = previous
        .as_ref()
        .filter(|_| known.as_deref() == Some(app_ref.as_str()))
        .and_then(|p| p.get("active").and_then(Value::as_bool))
        .unwrap_or(true);
    if force || was_active != spec.active {
        conn.set_user_active(&app_ref, spec.active).await?;
    }
    let created = known.as_deref() != Some(app_ref.as_str());
    if spec.active && (!was_active || created) {
        // Memberships are delivered only to active accounts, and some apps
        // (Synapse) drop them on deactivation: queue them again on reactivation,
        // and on creation those not already queued (a membership withdrawn while
        // the user was inactive and not yet in the app).
        let mut tx = store.begin().await.map_err(store_error)?;
        tx.enqueue_memberships_of(app, id, was_active)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
    }
    store
        .record_link(app.id, id, Some(&app_ref), Some(&wanted), STATUS_OK, None)
        .await
        .map_err(store_error)?;
    Ok(Some(app_ref))
}

/// Makes the app hold the group as the directory has it. A group gone from the
/// directory is deleted in the app only under the `delete` policy; under
/// `disable` it is left there (its data is the organisation's) and marked.
pub async fn deliver_group(
    store: &Store,
    conn: &dyn Connector,
    app: &AppRecord,
    id: &str,
    force: bool,
) -> Result<Option<String>, DeliveryError> {
    if !app.groups_as.provisions_groups() {
        return Ok(None);
    }
    let link = store.link(app.id, id).await.map_err(store_error)?;
    let known = link.as_ref().and_then(|l| l.app_ref.clone());
    let Some(row) = store
        .get_resource(app.org_id, ResourceKind::Group, id)
        .await
        .map_err(store_error)?
    else {
        let Some(app_ref) = known else {
            return Ok(None);
        };
        if app.deprovision.deletes() {
            already_gone(conn.delete_group(&app_ref).await)?;
        }
        forget(store, app, id).await?;
        return Ok(None);
    };
    let spec = group_spec(&row);
    let wanted = serde_json::to_value(&spec).unwrap_or(Value::Null);
    if !force
        && known.is_some()
        && link.as_ref().and_then(|l| l.delivered.as_ref()) == Some(&wanted)
    {
        return Ok(known);
    }
    let app_ref = match conn.upsert_group(&spec, known.as_deref()).await {
        Err(DeliveryError::NotFound(_)) if known.is_some() => {
            conn.upsert_group(&spec, None).await?
        }
        other => other?,
    };
    store
        .record_link(app.id, id, Some(&app_ref), Some(&wanted), STATUS_OK, None)
        .await
        .map_err(store_error)?;
    Ok(Some(app_ref))
}

/// Makes the app's membership of `member_id` in `group_id` match the directory.
/// Only direct members that are active users are provisioned: nested groups are
/// not expanded, and an inactive user's memberships wait for its reactivation.
pub async fn deliver_member(
    store: &Store,
    conn: &dyn Connector,
    app: &AppRecord,
    group_id: &str,
    member_id: &str,
) -> Result<(), DeliveryError> {
    if !app.groups_as.provisions_groups() {
        return Ok(());
    }
    let user = store
        .get_resource(app.org_id, ResourceKind::User, member_id)
        .await
        .map_err(store_error)?;
    let member = store
        .is_member(app.org_id, group_id, member_id)
        .await
        .map_err(store_error)?;
    if member {
        // An end that is not in the app yet is created below, unless its own
        // delivery is queued: then this one waits for it rather than racing it
        // (and an inactive user's membership is decided once the user is there).
        for (target, id) in [(Target::Group, group_id), (Target::User, member_id)] {
            let linked = store
                .link(app.id, id)
                .await
                .map_err(store_error)?
                .is_some_and(|l| l.app_ref.is_some());
            if !linked
                && store
                    .is_queued(app.id, target, id)
                    .await
                    .map_err(store_error)?
            {
                return Err(DeliveryError::Transient(format!(
                    "waiting for the {} {id} to be provisioned first",
                    target.as_str()
                )));
            }
        }
    }
    let wanted = member && user.as_ref().is_some_and(|u| user_spec(u).active);
    if wanted {
        let Some(group_ref) = deliver_group(store, conn, app, group_id, false).await? else {
            return Ok(());
        };
        let Some(user_ref) = deliver_user(store, conn, app, member_id, false).await? else {
            return Ok(());
        };
        conn.add_member(&group_ref, &user_ref).await
    } else {
        let group_ref = store
            .link(app.id, group_id)
            .await
            .map_err(store_error)?
            .and_then(|l| l.app_ref);
        let user_ref = store
            .link(app.id, member_id)
            .await
            .map_err(store_error)?
            .and_then(|l| l.app_ref);
        match (group_ref, user_ref) {
            (Some(g), Some(u)) => already_gone(conn.remove_member(&g, &u).await),
            // Never delivered: nothing to take away.
            _ => Ok(()),
        }
    }
}
