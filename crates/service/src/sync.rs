//! Reconciliation of an organisation's apps with the directory, app by app:
//! what `liaison sync`, the console's drift page and the periodic
//! reconciliation ask for. The comparison and repairs are
//! [`provision::sync::reconcile`]'s.

use crate::ServiceError;
use provision::sync::{reconcile, AppReport, SyncOptions, SyncProgress};
use serde::Serialize;
use store::{Org, Store};

/// The outcome for one app: a report, or why it could not be reconciled.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AppOutcome {
    Report(AppReport),
    Failed {
        app: String,
        kind: provision::AppKind,
        error: String,
    },
}

impl AppOutcome {
    /// Whether the app matches the directory (after repairs, when made).
    pub fn clean(&self) -> bool {
        match self {
            AppOutcome::Report(r) => {
                r.remaining == 0 && r.errors.is_empty() && r.collisions.is_empty()
            }
            AppOutcome::Failed { .. } => false,
        }
    }
}

/// The outcome for every app reconciled.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub org: String,
    pub apps: Vec<AppOutcome>,
}

impl SyncReport {
    /// No drift remains and every app could be listed.
    pub fn clean(&self) -> bool {
        self.apps.iter().all(AppOutcome::clean)
    }
}

/// Reconciles every app of the organisation (or the one named), one after the
/// other, reporting progress through `progress`.
pub async fn run(
    store: &Store,
    org: &Org,
    app: Option<&str>,
    opts: &SyncOptions,
    progress: &(dyn Fn(SyncProgress) + Sync),
) -> Result<SyncReport, ServiceError> {
    let mut apps = store.apps(org.id).await?;
    if let Some(name) = app {
        apps.retain(|a| a.name == name);
        if apps.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "organisation {} has no app {name}",
                org.slug
            )));
        }
    }
    if opts.adopt {
        if let Some(app) = apps.iter().find(|a| a.adopt == provision::Adopt::Never) {
            return Err(ServiceError::Invalid(format!(
                "app {} does not allow adoption (its adopt setting is never): \
                 set it with `liaison app set {} {} --adopt by-username|by-email` first",
                app.name, org.slug, app.name
            )));
        }
    }
    let mut outcomes = Vec::with_capacity(apps.len());
    for app in &apps {
        let failed = |error: String| AppOutcome::Failed {
            app: app.name.clone(),
            kind: app.kind,
            error,
        };
        let outcome = match provision::registry::connector_for(app) {
            Err(e) => failed(e.to_string()),
            Ok(conn) => match reconcile(store, app, conn.as_ref(), opts, progress).await {
                Ok(report) => AppOutcome::Report(report),
                Err(e) => failed(e.to_string()),
            },
        };
        outcomes.push(outcome);
    }
    Ok(SyncReport {
        org: org.slug.clone(),
        apps: outcomes,
    })
}
