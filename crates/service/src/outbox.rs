//! The deliveries waiting for an organisation's apps: listing them and making
//! poisoned ones due again.

use crate::{rfc3339, ServiceError};
use serde::Serialize;
use store::{Org, Store};
use utoipa::ToSchema;

/// The app of that name in the organisation, or `NotFound`.
pub async fn app_id(store: &Store, org: &Org, name: &str) -> Result<i64, ServiceError> {
    Ok(store
        .app_by_name(org.id, name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no app named {name} in {}", org.slug)))?
        .id)
}

/// Makes poisoned deliveries of an organisation (optionally one app) due again;
/// returns how many.
pub async fn retry(store: &Store, org: &Org, app: Option<&str>) -> Result<u64, ServiceError> {
    let app_id = match app {
        Some(name) => Some(app_id(store, org, name).await?),
        None => None,
    };
    Ok(store.retry_poisoned(org.id, app_id).await?)
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only those parked as poison.
    pub poisoned: bool,
    /// Only this app's.
    pub app: Option<String>,
    /// At most this many (at least 1, at most [`MAX_ROWS`]).
    pub limit: i64,
}

/// The most rows one listing returns.
pub const MAX_ROWS: i64 = 10_000;

/// A delivery waiting for an app.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxEntry {
    pub app: String,
    /// `user`, `group` or `member`.
    pub target: &'static str,
    pub resource_id: String,
    /// For a membership: the member's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub poisoned: bool,
    pub attempts: i64,
    /// RFC 3339.
    pub next_attempt: String,
    pub last_error: Option<String>,
    /// RFC 3339: when the change was first enqueued.
    pub enqueued: String,
}

/// The deliveries waiting for the organisation's apps, oldest first.
pub async fn list(store: &Store, org: &Org, f: &Filter) -> Result<Vec<OutboxEntry>, ServiceError> {
    let app_id = match &f.app {
        Some(name) => Some(app_id(store, org, name).await?),
        None => None,
    };
    let rows = store
        .outbox_rows(org.id, app_id, f.poisoned, f.limit.clamp(1, MAX_ROWS))
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let d = r.delivery;
            OutboxEntry {
                app: r.app_name,
                target: d.target.as_str(),
                resource_id: d.resource_id,
                member_id: (!d.member_id.is_empty()).then_some(d.member_id),
                poisoned: d.poisoned,
                attempts: d.attempts,
                next_attempt: rfc3339(d.next_attempt),
                last_error: d.last_error,
                enqueued: rfc3339(d.enqueued),
            }
        })
        .collect())
}
