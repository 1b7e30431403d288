//! Reading both sides of a reconciliation: the organisation's directory (its
//! users, its groups when the app takes groups, their direct members, and the
//! app's link records) and what the app holds.

use super::SyncError;
use crate::{AppGroup, AppUser, Connector};
use std::collections::{HashMap, HashSet};
use store::{AppRecord, Link, ListQuery, ResourceKind, ResourceRow, Store};

/// Directory resources read per page.
const PAGE: u64 = 500;

/// The directory side of an organisation.
pub(super) struct Directory {
    pub(super) users: Vec<ResourceRow>,
    pub(super) groups: Vec<ResourceRow>,
    /// Group id → direct member ids (users and groups).
    pub(super) members: HashMap<String, Vec<String>>,
    /// Resource id → the app's link record.
    pub(super) links: HashMap<String, Link>,
}

/// What the app holds.
pub(super) struct AppSide {
    pub(super) users: Vec<AppUser>,
    pub(super) groups: Vec<AppGroup>,
    /// App ids never reported nor touched.
    pub(super) protected: HashSet<String>,
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

/// Reads the directory side of `app`'s organisation.
pub(super) async fn read_directory(store: &Store, app: &AppRecord) -> Result<Directory, SyncError> {
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

/// Lists what the app holds (its groups only when it takes groups).
pub(super) async fn read_app(app: &AppRecord, conn: &dyn Connector) -> Result<AppSide, SyncError> {
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
