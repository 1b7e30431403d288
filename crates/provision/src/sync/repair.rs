//! Repairs: the drift items of directory resources (and the adoptions) are
//! queued in the outbox as forced rows in one transaction, then delivered under
//! leases like any outbox row, by this run or by whichever worker takes them
//! first ([`deliver_repairs`]). Only the extras the directory does not know are
//! removed by a direct call to the app ([`repair_extra`]): an outbox row names a
//! directory resource and its delivery brings the app to that resource's
//! current state, so there is no row that could say "remove this account
//! Liaison never had".

use super::adopt::adoption_failed;
use super::read::{AppSide, Directory};
use super::{
    Adoption, AppReport, CollisionItem, Drift, DriftKind, DriftResource, SyncError, SyncProgress,
    REPAIR_WAIT,
};
use crate::deliver::deliver;
use crate::worker::{backoff, record_outcome, with_heartbeat, Outcome, WorkerConfig};
use crate::{Connector, DeliveryError};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use store::{AppRecord, Delivery, Store, Target};

/// The lease of a repair delivered by a run (renewed while it runs).
const REPAIR_LEASE: Duration = Duration::from_secs(15);

/// Repairs delivered per claim.
const REPAIR_BATCH: i64 = 8;

/// An outbox row's key: (target, resource, member).
type Key = (Target, String, String);

/// What every step of a run works with.
pub(super) struct Run<'a> {
    pub(super) store: &'a Store,
    pub(super) app: &'a AppRecord,
    pub(super) conn: &'a dyn Connector,
    pub(super) progress: &'a (dyn Fn(SyncProgress) + Sync),
}

impl Run<'_> {
    fn progress(&self, done: usize, total: usize) {
        (self.progress)(SyncProgress::Repairing {
            app: self.app.name.clone(),
            done,
            total,
        });
    }
}

/// Repairs `todo` (the items that count, without those of the users being
/// adopted) and delivers `adopting` (whose links are recorded): users, then
/// groups, then memberships. Records in `report` what was repaired, adopted,
/// refused as a collision, or failed.
pub(super) async fn repair(
    run: &Run<'_>,
    dir: &Directory,
    side: &AppSide,
    mut todo: Vec<Drift>,
    adopting: &[Adoption],
    report: &mut AppReport,
) -> Result<(), SyncError> {
    let (store, app) = (run.store, run.app);
    let total = todo.len() + adopting.len();
    let app_user_ids: HashSet<&str> = side.users.iter().map(|u| u.app_id.as_str()).collect();
    let app_group_ids: HashSet<&str> = side.groups.iter().map(|g| g.app_id.as_str()).collect();
    // Users, then groups, then memberships (which need both).
    todo.sort_by_key(|d| match d.resource {
        DriftResource::User => 0,
        DriftResource::Group => 1,
        DriftResource::Membership => 2,
    });
    // Stale app ids first (store only), then every repair of a directory
    // resource queued in one transaction.
    let mut queued: Vec<(&Drift, Key)> = Vec::new();
    let mut direct: Vec<&Drift> = Vec::new();
    for d in &todo {
        match repair_key(d) {
            Some(key) => {
                let present = match key.0 {
                    Target::User => Some(&app_user_ids),
                    Target::Group => Some(&app_group_ids),
                    Target::Member => None,
                };
                if let Some(present) = present {
                    if let Err(e) = clear_stale(store, app, dir, &key.1, present).await {
                        report.errors.push(repair_error(d, &e.to_string()));
                        continue;
                    }
                }
                queued.push((d, key));
            }
            None => direct.push(d),
        }
    }
    let adoption_key = |a: &Adoption| (Target::User, a.id.clone(), String::new());
    let mut tx = store.begin().await?;
    for a in adopting {
        tx.enqueue_repair(app, Target::User, &a.id, None).await?;
    }
    for (_, (target, resource, member)) in &queued {
        let member = (!member.is_empty()).then_some(member.as_str());
        tx.enqueue_repair(app, *target, resource, member).await?;
    }
    tx.commit().await?;
    let mut failed = deliver_repairs(run, total).await?;
    for a in adopting {
        match failed.remove(&adoption_key(a)) {
            None => report.adopted += 1,
            Some(RepairFailure::Collision(e)) => adoption_failed(report, a, true, e),
            Some(RepairFailure::Error(e)) => adoption_failed(report, a, false, e),
        }
    }
    for (d, key) in &queued {
        match failed.remove(key) {
            Some(RepairFailure::Collision(error)) => report.collisions.push(CollisionItem {
                resource: d.resource,
                id: d.id.clone().unwrap_or_default(),
                name: d.name.clone(),
                error,
            }),
            Some(RepairFailure::Error(e)) => report.errors.push(repair_error(d, &e)),
            None => report.repaired += 1,
        }
    }
    for (done, d) in (adopting.len() + queued.len()..).zip(direct) {
        run.progress(done, total);
        match repair_extra(app, run.conn, d).await {
            Ok(()) => report.repaired += 1,
            Err(e) => {
                // The report (for the operator) names the resource; the log
                // has Liaison's id only (never a user name nor an app id,
                // which may be a Matrix id).
                tracing::warn!(
                    app = %app.name, resource = d.resource.as_str(),
                    id = d.id.as_deref().unwrap_or("(extra)"),
                    member = d.member_id.as_deref().unwrap_or_default(),
                    drift = ?d.kind, error = e.kind(), "reconciliation repair failed"
                );
                report.errors.push(repair_error(d, &e.report()));
            }
        }
    }
    run.progress(total, total);
    if !report.collisions.is_empty() {
        tracing::warn!(
            app = %app.name,
            collisions = report.collisions.len(),
            "reconciliation met accounts Liaison did not create: left unchanged"
        );
    }
    Ok(())
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
        store
            .clear_app_ref(app.id, id)
            .await
            .map_err(|e| DeliveryError::Transient(format!("store: {e}")))?;
    }
    Ok(())
}

fn repair_error(d: &Drift, e: &str) -> String {
    format!("{} {:?} {}: {e}", d.resource.as_str(), d.kind, d.name)
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

/// Why a queued repair was not done.
enum RepairFailure {
    /// The app holds an account Liaison did not create (left unchanged).
    Collision(String),
    /// Any other failure (the repair stays in the outbox or is parked).
    Error(String),
}

/// Delivers the queued repairs of an app under leases (users and groups, then
/// memberships), waiting up to [`REPAIR_WAIT`] for those another worker
/// holds. Returns the repairs that failed, with why.
async fn deliver_repairs(
    run: &Run<'_>,
    total: usize,
) -> Result<HashMap<Key, RepairFailure>, SyncError> {
    let (store, app) = (run.store, run.app);
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
            let work = async {
                for d in &batch {
                    run.progress(done, total);
                    done += 1;
                    if let Some(e) = repair_one(run, d, &config).await? {
                        failed.insert(key_of(d), e);
                    }
                }
                Ok::<_, SyncError>(())
            };
            with_heartbeat(store, &batch, REPAIR_LEASE, work).await?;
        }
    }
    Ok(failed)
}

fn key_of(d: &Delivery) -> Key {
    (d.target, d.resource_id.clone(), d.member_id.clone())
}

/// Delivers one repair and records how it went, as the worker does; returns
/// the failure when it failed.
async fn repair_one(
    run: &Run<'_>,
    d: &Delivery,
    config: &WorkerConfig,
) -> Result<Option<RepairFailure>, SyncError> {
    let result = deliver(run.store, run.conn, run.app, d).await;
    let error = result.as_ref().err().map(DeliveryError::report);
    let wait = backoff(config.base_backoff, config.max_backoff, d.attempts + 1);
    let outcome = record_outcome(
        run.store,
        d,
        &run.app.name,
        result,
        config.max_attempts,
        wait,
    )
    .await?;
    Ok(match outcome {
        Outcome::Delivered => None,
        Outcome::Collision => error.map(RepairFailure::Collision),
        Outcome::Retry | Outcome::Poisoned => error.map(RepairFailure::Error),
    })
}

/// Removes an extra the directory does not know (under `--remove-extra`), by
/// a direct call to the app (see the module documentation for why).
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
