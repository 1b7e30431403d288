//! Organisations and tokens.

use crate::common::*;
use store::testing::for_each_store;
use store::{ResourceKind, StoreError, TokenRecord};

fn token(id: &str, org_id: Option<i64>) -> TokenRecord {
    TokenRecord {
        id: id.to_owned(),
        org_id,
        secret_hash: vec![1, 2, 3, 255],
        created: at(1_700_000_000),
    }
}

#[tokio::test]
async fn orgs_are_created_listed_and_unique_by_slug() {
    for_each_store(|s| async move {
        let a = org(&s, "acme").await;
        let b = org(&s, "beta").await;
        assert_ne!(a.id, b.id);
        assert_eq!(s.org_by_slug("acme").await.unwrap(), Some(a.clone()));
        assert_eq!(s.org_by_id(b.id).await.unwrap(), Some(b.clone()));
        assert_eq!(s.org_by_slug("nope").await.unwrap(), None);
        assert_eq!(s.list_orgs().await.unwrap(), vec![a, b]);

        let mut tx = s.begin().await.unwrap();
        let err = tx.create_org("acme", "again").await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        drop(tx);
        assert_eq!(s.list_orgs().await.unwrap().len(), 2);
        s.ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn tokens_round_trip_and_revoke_only_in_their_scope() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        let mut tx = s.begin().await.unwrap();
        tx.insert_token(&token("ta", Some(a.id))).await.unwrap();
        tx.insert_token(&token("tb", Some(b.id))).await.unwrap();
        tx.insert_token(&token("op", None)).await.unwrap();
        let dup = tx.insert_token(&token("ta", Some(b.id))).await.unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{dup:?}");
        drop(tx);

        let mut tx = s.begin().await.unwrap();
        tx.insert_token(&token("ta", Some(a.id))).await.unwrap();
        tx.insert_token(&token("tb", Some(b.id))).await.unwrap();
        tx.insert_token(&token("op", None)).await.unwrap();
        tx.commit().await.unwrap();

        let t = s.token("ta").await.unwrap().unwrap();
        assert_eq!(t.org_id, Some(a.id));
        assert_eq!(t.secret_hash, vec![1, 2, 3, 255]);
        assert_eq!(t.created, at(1_700_000_000));
        assert_eq!(s.token("op").await.unwrap().unwrap().org_id, None);
        assert!(s.token("zz").await.unwrap().is_none());
        let ids = |v: Vec<TokenRecord>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
        assert_eq!(ids(s.list_tokens(Some(a.id)).await.unwrap()), ["ta"]);
        assert_eq!(ids(s.list_tokens(None).await.unwrap()), ["op"]);

        let mut tx = s.begin().await.unwrap();
        assert!(
            !tx.revoke_token(Some(b.id), "ta").await.unwrap(),
            "other org"
        );
        assert!(
            !tx.revoke_token(None, "ta").await.unwrap(),
            "not an operator token"
        );
        assert!(!tx.revoke_token(Some(a.id), "op").await.unwrap());
        assert!(tx.revoke_token(Some(a.id), "ta").await.unwrap());
        assert!(tx.revoke_token(None, "op").await.unwrap());
        assert!(
            !tx.revoke_token(Some(a.id), "ta").await.unwrap(),
            "already gone"
        );
        tx.commit().await.unwrap();
        assert!(s.token("ta").await.unwrap().is_none());
        assert!(s.token("op").await.unwrap().is_none());
        assert!(s.token("tb").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn deleting_an_org_cascades_to_everything_it_owns_only() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        for o in [&a, &b] {
            insert(&s, o.id, &[user("u1", "alice"), group("g1", "staff")]).await;
            let mut tx = s.begin().await.unwrap();
            tx.insert_token(&token(&format!("t{}", o.slug), Some(o.id)))
                .await
                .unwrap();
            tx.add_members(
                o.id,
                "g1",
                &[store::Member {
                    value: "u1".into(),
                    kind: ResourceKind::User,
                    display: None,
                }],
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let mut tx = s.begin().await.unwrap();
        assert!(tx.delete_org("a").await.unwrap());
        assert!(!tx.delete_org("a").await.unwrap());
        tx.commit().await.unwrap();

        assert!(s.org_by_slug("a").await.unwrap().is_none());
        assert!(s.token("ta").await.unwrap().is_none());
        assert!(s
            .get_resource(a.id, ResourceKind::User, "u1")
            .await
            .unwrap()
            .is_none());
        assert!(s.members(a.id, &["g1"]).await.unwrap()["g1"].is_empty());
        // The other organisation is untouched.
        assert!(s.token("tb").await.unwrap().is_some());
        assert!(s
            .get_resource(b.id, ResourceKind::User, "u1")
            .await
            .unwrap()
            .is_some());
        assert_eq!(s.members(b.id, &["g1"]).await.unwrap()["g1"].len(), 1);
        // A new org never reuses the deleted id.
        let c = org(&s, "c").await;
        assert_ne!(c.id, a.id);
    })
    .await;
}
