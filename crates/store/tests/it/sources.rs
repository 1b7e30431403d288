//! Directory sources: one per organisation, configuration changes, progress
//! and errors recorded, cursors reset when the realm changes.

use store::testing::for_each_store;
use store::{SourceProgress, SourceRecord, StoreError, MAX_SEEN_EVENTS};
use time::OffsetDateTime;

fn record(org_id: i64) -> SourceRecord {
    SourceRecord {
        org_id,
        kind: "keycloak".into(),
        base_url: "https://sso.example.org".into(),
        realm: "ecole".into(),
        client_id: "liaison".into(),
        credential: "env:KC".into(),
        interval_secs: 3600,
        adopt: false,
        created: OffsetDateTime::now_utc(),
    }
}

#[tokio::test]
async fn a_source_per_organisation_with_its_state() {
    for_each_store(|store| async move {
        let mut tx = store.begin().await.unwrap();
        let org = tx.create_org("ecole", "Ecole").await.unwrap();
        let other = tx.create_org("other", "Other").await.unwrap();
        tx.insert_source(&record(org.id)).await.unwrap();
        tx.commit().await.unwrap();
        assert!(store.has_source(org.id).await.unwrap());
        assert!(!store.has_source(other.id).await.unwrap());
        let s = store.source(org.id).await.unwrap().unwrap();
        assert_eq!(s.config.realm, "ecole");
        assert!(
            s.state.full_sync_requested,
            "the first run is a full reconciliation"
        );
        assert_eq!(s.state.admin_cursor, None);

        let mut tx = store.begin().await.unwrap();
        let again = tx.insert_source(&record(org.id)).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        drop(tx);

        // A full run, then a follow run with more seen events than are kept.
        let now = OffsetDateTime::now_utc();
        let full = SourceProgress {
            admin_cursor: Some(1_000),
            event_cursor: Some(2_000),
            seen_events: vec![],
            applied: 7,
            full: Some((40, 5)),
        };
        store
            .record_source_progress(org.id, &full, now)
            .await
            .unwrap();
        store
            .record_source_error(org.id, "Keycloak unreachable", 0, now)
            .await
            .unwrap();
        let seen: Vec<String> = (0..MAX_SEEN_EVENTS + 10)
            .map(|i| format!("{i}:e{i}"))
            .collect();
        let follow = SourceProgress {
            admin_cursor: Some(3_000),
            event_cursor: None,
            seen_events: seen,
            applied: 2,
            full: None,
        };
        store
            .record_source_progress(org.id, &follow, now)
            .await
            .unwrap();
        let s = store.source(org.id).await.unwrap().unwrap().state;
        assert_eq!((s.admin_cursor, s.event_cursor), (Some(3_000), Some(2_000)));
        assert_eq!(
            (s.realm_users, s.realm_groups, s.applied),
            (Some(40), Some(5), 9)
        );
        assert!(s.last_error.is_none(), "a success clears the error");
        assert!(!s.full_sync_requested && s.last_full_sync.is_some());
        assert_eq!(s.seen_events.len(), MAX_SEEN_EVENTS, "bounded");
        assert_eq!(
            s.seen_events.last().map(String::as_str),
            Some(format!("{0}:e{0}", MAX_SEEN_EVENTS + 9).as_str())
        );

        // Same realm: the state stays; another realm: the cursors go.
        let mut tx = store.begin().await.unwrap();
        tx.update_source(&SourceRecord {
            interval_secs: 600,
            ..record(org.id)
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let s = store.source(org.id).await.unwrap().unwrap();
        assert_eq!(
            (s.config.interval_secs, s.state.admin_cursor),
            (600, Some(3_000))
        );
        let mut tx = store.begin().await.unwrap();
        tx.update_source(&SourceRecord {
            realm: "autre".into(),
            ..record(org.id)
        })
        .await
        .unwrap();
        let missing = tx.update_source(&record(other.id)).await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
        tx.commit().await.unwrap();
        let s = store.source(org.id).await.unwrap().unwrap();
        assert_eq!((s.state.admin_cursor, s.state.event_cursor), (None, None));
        assert!(s.state.full_sync_requested);
        assert!(store.request_full_sync(org.id).await.unwrap());
        assert!(!store.request_full_sync(other.id).await.unwrap());
        assert_eq!(store.list_sources().await.unwrap().len(), 1);

        // Deleting the organisation deletes its source.
        let mut tx = store.begin().await.unwrap();
        assert!(tx.delete_org("ecole").await.unwrap());
        tx.commit().await.unwrap();
        assert!(store.list_sources().await.unwrap().is_empty());
    })
    .await;
}
