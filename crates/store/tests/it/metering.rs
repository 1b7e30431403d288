//! Metering periods, keyed hashes and their deletion at close; profiles,
//! domains and maintenance windows.

use crate::common::*;
use store::testing::for_each_store;
use store::{MaintenanceRecord, OrgProfile, PeriodKeyState, StoreError};

fn h(n: u8) -> [u8; 32] {
    [n; 32]
}

#[tokio::test]
async fn a_period_counts_distinct_hashes_and_forgets_them_at_close() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        assert_eq!(
            s.period_key(a.id, "2026-11").await.unwrap(),
            PeriodKeyState::Absent
        );
        let key = s
            .open_period(a.id, "2026-11", 10, 20, &[7; 32])
            .await
            .unwrap();
        assert_eq!(key, PeriodKeyState::Open(vec![7; 32]));
        // A second opener (another process) gets the first key.
        let again = s
            .open_period(a.id, "2026-11", 10, 20, &[9; 32])
            .await
            .unwrap();
        assert_eq!(again, PeriodKeyState::Open(vec![7; 32]));
        s.open_period(b.id, "2026-11", 10, 20, &[8; 32])
            .await
            .unwrap();

        assert_eq!(
            s.record_seen(a.id, "2026-11", "keycloak", &[h(1), h(2), h(1)])
                .await
                .unwrap(),
            Some(2)
        );
        assert_eq!(
            s.record_seen(a.id, "2026-11", "matrix", &[h(2), h(3)])
                .await
                .unwrap(),
            Some(2)
        );
        assert_eq!(
            s.record_seen(a.id, "2026-11", "matrix", &[h(2)])
                .await
                .unwrap(),
            Some(0)
        );
        s.record_seen(b.id, "2026-11", "keycloak", &[h(1)])
            .await
            .unwrap();
        let live = s.period_counts(a.id, "2026-11").await.unwrap();
        assert_eq!(live.total, 3);
        assert_eq!(live.per_source.get("keycloak"), Some(&2));
        assert_eq!(live.per_source.get("matrix"), Some(&2));

        let closed = s.close_period(a.id, "2026-11", 10, 20).await.unwrap();
        assert_eq!((closed.total, closed.already_closed), (3, false));
        assert_eq!(
            s.period_key(a.id, "2026-11").await.unwrap(),
            PeriodKeyState::Closed
        );
        // Late recordings are refused and nothing is stored.
        assert_eq!(
            s.record_seen(a.id, "2026-11", "keycloak", &[h(5)])
                .await
                .unwrap(),
            None
        );
        let kept = s.period_counts(a.id, "2026-11").await.unwrap();
        assert_eq!(kept.total, 3);
        assert_eq!(kept.per_source, closed.per_source);
        // Closing again returns the kept counts.
        let twice = s.close_period(a.id, "2026-11", 10, 20).await.unwrap();
        assert!(twice.already_closed);
        assert_eq!(twice.total, 3);
        // The other organisation's period is untouched.
        assert_eq!(s.period_counts(b.id, "2026-11").await.unwrap().total, 1);
        // A period that never opened closes at zero.
        let empty = s.close_period(b.id, "2026-10", 0, 10).await.unwrap();
        assert_eq!(empty.total, 0);
        assert!(s.period(b.id, "2026-10").await.unwrap().unwrap().closed);
        assert_eq!(s.open_periods().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn recording_without_an_open_period_stores_nothing() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        assert_eq!(
            s.record_seen(a.id, "2026-11", "keycloak", &[h(1)])
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.period_counts(a.id, "2026-11").await.unwrap().total, 0);
    })
    .await;
}

#[tokio::test]
async fn webhook_secrets_and_invoices() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        assert_eq!(s.webhook_secret(a.id).await.unwrap(), None);
        s.set_webhook_secret(a.id, b"one").await.unwrap();
        s.set_webhook_secret(a.id, b"two").await.unwrap();
        assert_eq!(s.webhook_secret(a.id).await.unwrap(), Some(b"two".to_vec()));
        s.close_period(a.id, "2026-10", 0, 10).await.unwrap();
        assert_eq!(s.invoice_ref(a.id, "2026-10", "dokos").await.unwrap(), None);
        s.record_invoice(a.id, "2026-10", "dokos", "ACC-SINV-1")
            .await
            .unwrap();
        let err = s
            .record_invoice(a.id, "2026-10", "dokos", "ACC-SINV-2")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(
            s.invoice_ref(a.id, "2026-10", "dokos")
                .await
                .unwrap()
                .as_deref(),
            Some("ACC-SINV-1")
        );
    })
    .await;
}

#[tokio::test]
async fn profiles_domains_and_maintenance_windows() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        assert_eq!(s.org_profile(a.id).await.unwrap(), OrgProfile::default());
        let profile = OrgProfile {
            display_name: Some("Les Amis".into()),
            color: Some("#123456".into()),
            category: Some("school".into()),
            ..Default::default()
        };
        let mut tx = s.begin().await.unwrap();
        tx.set_org_profile(a.id, &profile).await.unwrap();
        tx.add_domain(a.id, "Cloud.Amis.example").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(s.org_profile(a.id).await.unwrap(), profile);
        assert_eq!(s.org_profiles().await.unwrap().len(), 1);

        let mut tx = s.begin().await.unwrap();
        let err = tx.add_domain(b.id, "cloud.amis.example").await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        drop(tx);
        let domains = s.domains(None).await.unwrap();
        assert_eq!(s.domains(Some(a.id)).await.unwrap(), domains);
        assert!(s.domains(Some(b.id)).await.unwrap().is_empty());
        assert_eq!(domains.len(), 1);
        assert_eq!(
            (domains[0].host.as_str(), domains[0].org_id),
            ("cloud.amis.example", a.id)
        );

        let w = MaintenanceRecord {
            id: "w1".into(),
            org_id: a.id,
            app: Some("nextcloud".into()),
            starts: at(2_000_000_000),
            ends: at(2_000_003_600),
            messages: [("fr".to_owned(), "Mise à jour".to_owned())].into(),
            created: at(1_900_000_000),
        };
        let mut tx = s.begin().await.unwrap();
        tx.add_maintenance(&w).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            s.maintenance_windows(Some(a.id), at(1_999_000_000))
                .await
                .unwrap(),
            vec![w.clone()]
        );
        assert!(s
            .maintenance_windows(Some(b.id), at(0))
            .await
            .unwrap()
            .is_empty());
        assert!(s
            .maintenance_windows(None, at(2_000_004_000))
            .await
            .unwrap()
            .is_empty());
        let mut tx = s.begin().await.unwrap();
        assert!(
            !tx.cancel_maintenance(b.id, "w1").await.unwrap(),
            "another org cannot cancel it"
        );
        assert!(tx.cancel_maintenance(a.id, "w1").await.unwrap());
        assert!(tx.remove_domain(a.id, "CLOUD.amis.example").await.unwrap());
        tx.commit().await.unwrap();
        assert!(s.maintenance_windows(None, at(0)).await.unwrap().is_empty());
        assert!(s.domains(None).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn subjects_map_to_people_by_external_id_then_id_then_user_name() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        let mut tx = s.begin().await.unwrap();
        let mut alice = user("u-alice", "Alice");
        alice.doc["externalId"] = "kc-alice".into();
        tx.insert_resource(a.id, &alice).await.unwrap();
        tx.insert_resource(a.id, &user("u-bob", "bob"))
            .await
            .unwrap();
        tx.insert_resource(a.id, &user("u-carol", "carol"))
            .await
            .unwrap();
        let mut other = user("u-x", "mallory");
        other.doc["externalId"] = "kc-mallory".into();
        tx.insert_resource(b.id, &other).await.unwrap();
        tx.commit().await.unwrap();
        let found = s
            .persons_for_subjects(
                a.id,
                &[
                    ("kc-alice", None),
                    ("u-bob", None),
                    ("kc-carol", Some("CAROL")),
                    ("kc-mallory", Some("mallory")),
                    ("kc-nobody", None),
                ],
            )
            .await
            .unwrap();
        assert_eq!(found.get("kc-alice").map(String::as_str), Some("kc-alice"));
        assert_eq!(found.get("u-bob").map(String::as_str), Some("u-bob"));
        assert_eq!(found.get("kc-carol").map(String::as_str), Some("u-carol"));
        assert!(
            !found.contains_key("kc-mallory"),
            "another organisation's user"
        );
        assert!(!found.contains_key("kc-nobody"));
    })
    .await;
}
