//! Fixtures shared by the store tests.

use serde_json::Value;
use store::{ListQuery, Org, ResourceKind, ResourceRow, Store};
use time::OffsetDateTime;

/// Creates an organisation.
pub async fn org(store: &Store, slug: &str) -> Org {
    let mut tx = store.begin().await.unwrap();
    let org = tx.create_org(slug, &format!("Org {slug}")).await.unwrap();
    tx.commit().await.unwrap();
    org
}

/// A timestamp at whole microseconds (what the store keeps).
pub fn at(unix_seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap()
        + time::Duration::microseconds(123_456)
}

pub fn row(kind: ResourceKind, id: &str, doc: Value) -> ResourceRow {
    ResourceRow {
        id: id.to_owned(),
        kind,
        doc,
        password_hash: None,
        version: 1,
        created: at(1_600_000_000),
        last_modified: at(1_600_000_000),
    }
}

pub fn user(id: &str, user_name: &str) -> ResourceRow {
    row(
        ResourceKind::User,
        id,
        serde_json::json!({ "userName": user_name }),
    )
}

pub fn group(id: &str, display_name: &str) -> ResourceRow {
    row(
        ResourceKind::Group,
        id,
        serde_json::json!({ "displayName": display_name }),
    )
}

/// Inserts rows in one transaction.
pub async fn insert(store: &Store, org_id: i64, rows: &[ResourceRow]) {
    let mut tx = store.begin().await.unwrap();
    for r in rows {
        tx.insert_resource(org_id, r).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// The ids a list query returns, in order.
pub async fn list_ids(
    store: &Store,
    org_id: i64,
    kind: ResourceKind,
    q: &ListQuery,
) -> Vec<String> {
    store
        .list_resources(org_id, kind, q)
        .await
        .unwrap()
        .resources
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// A query with a parsed filter, first 1000 results.
pub fn query(filter: &str) -> ListQuery {
    ListQuery {
        filter: Some(scim::Filter::parse(filter).unwrap()),
        start_index: 1,
        count: 1000,
        ..ListQuery::default()
    }
}

/// The ids of the resources of `kind` matching `filter`, sorted.
pub async fn matching(store: &Store, org_id: i64, kind: ResourceKind, filter: &str) -> Vec<String> {
    let mut ids = list_ids(store, org_id, kind, &query(filter)).await;
    ids.sort();
    ids
}
