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
//!   `active`, `link` when the account was found by name under another id or
//!   its adoption is recorded but not delivered yet (link `pending`), or
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
//! with nothing to queue: an outbox row names a directory resource) calls the
//! app directly.
//! A repair that meets an account Liaison did not create is a *collision*: it
//! is reported apart ([`AppReport::collisions`]), recorded on the link, and
//! nothing in the app changes.
//!
//! **Adoption.** When the app's [`Adopt`] setting allows it, the directory
//! users without a recorded account that match an existing account (by login
//! name or by e-mail, per the setting) are listed in
//! [`AppReport::adoptable`], the account Liaison signs in with and accounts
//! already linked to another resource excepted. Only a run with
//! [`SyncOptions::adopt`] adopts them: the link is recorded (`pending`), then
//! the user is queued as a forced repair with the others, whose delivery
//! marks the account as Liaison's.
//!
//! The files: `read` (both sides), `compare` (one function per resource
//! kind), `adopt` (candidates, links of the adopted accounts), `repair`
//! (queuing and delivering the repairs, removing extras), `report` (the types
//! of the public API).

mod adopt;
mod compare;
mod read;
mod repair;
mod report;

pub use report::{
    Adoption, AppReport, CollisionItem, Drift, DriftKind, DriftResource, SyncError, SyncOptions,
    SyncProgress,
};

use crate::{Adopt, Connector};
use compare::compare;
use read::{read_app, read_directory};
use std::collections::HashSet;
use std::time::Duration;
use store::{AppRecord, Store};

/// How long a run waits for its repairs that another worker is delivering.
pub const REPAIR_WAIT: Duration = Duration::from_secs(60);

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
        adoptable: adopt::adoption_candidates(mode, conn, &dir, &side),
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
    let adopting = if opts.adopt {
        adopt::record_adoptions(store, app, conn, &mut report).await
    } else {
        Vec::new()
    };
    // An adopted user's own drift is repaired by its adoption's delivery.
    let adopted: HashSet<&str> = adopting.iter().map(|a| a.id.as_str()).collect();
    let todo: Vec<Drift> = report
        .drift
        .iter()
        .filter(|d| d.counts(app, opts))
        .filter(|d| {
            !(d.resource == DriftResource::User
                && d.id.as_deref().is_some_and(|id| adopted.contains(id)))
        })
        .cloned()
        .collect();
    let run = repair::Run {
        store,
        app,
        conn,
        progress,
    };
    repair::repair(&run, &dir, &side, todo, &adopting, &mut report).await?;
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
