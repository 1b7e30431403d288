//! Resource CRUD, uniqueness, tenant isolation, paging and sorting.

use crate::common::*;
use scim::{AttrPath, ScimType};
use serde_json::json;
use store::testing::for_each_store;
use store::{ListQuery, ResourceKind, StoreError};

#[tokio::test]
async fn resources_round_trip_update_and_delete() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        let mut u = row(
            ResourceKind::User,
            "u1",
            json!({
                "userName": "bjensen",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
                "active": true,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7"}
            }),
        );
        u.password_hash = Some("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA".into());
        u.last_modified = at(1_600_000_123);
        insert(&s, o.id, &[u.clone()]).await;
        assert_eq!(s.get_resource(o.id, ResourceKind::User, "u1").await.unwrap(), Some(u.clone()));
        assert_eq!(s.get_resource(o.id, ResourceKind::Group, "u1").await.unwrap(), None, "kind matters");

        let mut tx = s.begin().await.unwrap();
        let mut locked = tx
            .get_resource_for_update(o.id, ResourceKind::User, "u1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(locked, u);
        locked.doc["userName"] = json!("barbara");
        locked.doc["active"] = json!(false);
        locked.version = 2;
        locked.last_modified = at(1_600_000_999);
        locked.password_hash = None;
        tx.update_resource(o.id, &locked).await.unwrap();
        tx.commit().await.unwrap();

        let got = s.get_resource(o.id, ResourceKind::User, "u1").await.unwrap().unwrap();
        assert_eq!(got, locked);
        assert_eq!(got.created, u.created, "created is kept");
        // The derived columns follow the document.
        assert_eq!(matching(&s, o.id, ResourceKind::User, r#"userName eq "barbara""#).await, ["u1"]);
        assert!(matching(&s, o.id, ResourceKind::User, r#"userName eq "bjensen""#).await.is_empty());
        assert_eq!(matching(&s, o.id, ResourceKind::User, "active eq false").await, ["u1"]);

        let mut tx = s.begin().await.unwrap();
        let mut ghost = user("nope", "ghost");
        ghost.version = 2;
        assert!(matches!(tx.update_resource(o.id, &ghost).await, Err(StoreError::NotFound)));
        assert!(!tx.delete_resource(o.id, ResourceKind::Group, "u1").await.unwrap());
        assert!(tx.delete_resource(o.id, ResourceKind::User, "u1").await.unwrap());
        assert!(!tx.delete_resource(o.id, ResourceKind::User, "u1").await.unwrap());
        tx.commit().await.unwrap();
        assert!(s.get_resource(o.id, ResourceKind::User, "u1").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn names_are_unique_case_insensitively_per_org_and_kind() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        insert(
            &s,
            a.id,
            &[
                user("u1", "BJensen"),
                group("g1", "Staff"),
                user("u2", "ÅSA"),
            ],
        )
        .await;

        // One transaction per attempt: on PostgreSQL a failed statement aborts
        // the transaction.
        let conflicts = |org_id: i64, r: store::ResourceRow| {
            let s = s.clone();
            async move {
                let mut tx = s.begin().await.unwrap();
                matches!(
                    tx.insert_resource(org_id, &r).await,
                    Err(StoreError::Conflict(_))
                )
            }
        };
        assert!(conflicts(a.id, user("u9", "bjensen")).await);
        assert!(conflicts(a.id, user("u9", "åsa")).await, "Unicode folding");
        assert!(conflicts(a.id, group("g9", "STAFF")).await);
        assert!(conflicts(a.id, user("u1", "other")).await, "same id");
        let conflict = |r: store::Result<()>| matches!(r, Err(StoreError::Conflict(_)));

        // Another organisation, or the other kind, may use the same name.
        insert(&s, b.id, &[user("u1", "bjensen"), group("g1", "staff")]).await;
        insert(&s, a.id, &[group("g2", "bjensen"), user("u3", "staff")]).await;

        // Renaming onto a taken name conflicts; renaming in case only does not.
        let mut tx = s.begin().await.unwrap();
        let mut u3 = user("u3", "BJENSEN");
        u3.version = 2;
        assert!(conflict(tx.update_resource(a.id, &u3).await));
        drop(tx);
        let mut tx = s.begin().await.unwrap();
        let mut u1 = user("u1", "bjensen");
        u1.version = 2;
        tx.update_resource(a.id, &u1).await.unwrap();
        tx.commit().await.unwrap();

        // A resource without its name is refused before reaching the database.
        let mut tx = s.begin().await.unwrap();
        let bad = row(ResourceKind::User, "u7", json!({"displayName": "x"}));
        match tx.insert_resource(a.id, &bad).await {
            Err(StoreError::Scim(e)) => assert_eq!(e.scim_type, Some(ScimType::InvalidValue)),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn organisations_never_see_each_other() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        insert(&s, a.id, &[user("ua", "alice"), group("ga", "team")]).await;
        insert(&s, b.id, &[user("ub", "bob"), group("gb", "team")]).await;

        assert!(s
            .get_resource(a.id, ResourceKind::User, "ub")
            .await
            .unwrap()
            .is_none());
        let all = ListQuery {
            start_index: 1,
            count: 100,
            ..Default::default()
        };
        assert_eq!(list_ids(&s, a.id, ResourceKind::User, &all).await, ["ua"]);
        assert_eq!(list_ids(&s, b.id, ResourceKind::User, &all).await, ["ub"]);
        assert!(
            matching(&s, a.id, ResourceKind::User, r#"userName eq "bob""#)
                .await
                .is_empty()
        );
        assert!(matching(&s, a.id, ResourceKind::User, r#"id eq "ub""#)
            .await
            .is_empty());

        let mut tx = s.begin().await.unwrap();
        assert!(tx
            .get_resource_for_update(a.id, ResourceKind::User, "ub")
            .await
            .unwrap()
            .is_none());
        let mut ub = user("ub", "mallory");
        ub.version = 2;
        assert!(matches!(
            tx.update_resource(a.id, &ub).await,
            Err(StoreError::NotFound)
        ));
        assert!(!tx
            .delete_resource(a.id, ResourceKind::User, "ub")
            .await
            .unwrap());
        let m = store::Member {
            value: "ub".into(),
            kind: ResourceKind::User,
            display: None,
        };
        match tx.add_members(a.id, "ga", &[m]).await {
            Err(StoreError::UnknownMember(id)) => assert_eq!(id, "ub"),
            other => panic!("{other:?}"),
        }
        drop(tx);
        let mut tx = s.begin().await.unwrap();
        let m = store::Member {
            value: "ua".into(),
            kind: ResourceKind::User,
            display: None,
        };
        assert!(
            tx.add_members(b.id, "gb", &[m]).await.is_err(),
            "member of another org"
        );
        drop(tx);
        let mut tx = s.begin().await.unwrap();
        let m = store::Member {
            value: "ub".into(),
            kind: ResourceKind::User,
            display: None,
        };
        tx.add_members(b.id, "gb", &[m]).await.unwrap();
        assert!(tx.member_ids(a.id, "gb").await.unwrap().is_empty());
        tx.remove_members(a.id, "gb", &["ub".to_owned()])
            .await
            .unwrap();
        tx.clear_members(a.id, "gb").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            s.members(b.id, &["gb"]).await.unwrap()["gb"].len(),
            1,
            "untouched by org a"
        );
        assert!(s.members(a.id, &["gb"]).await.unwrap()["gb"].is_empty());
        assert!(s.groups_of(a.id, &["ub"]).await.unwrap().is_empty());
        assert_eq!(s.groups_of(b.id, &["ub"]).await.unwrap()["ub"].len(), 1);

        let b_still = s
            .get_resource(b.id, ResourceKind::User, "ub")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b_still.doc["userName"], "bob");
    })
    .await;
}

#[tokio::test]
async fn paging_counts_all_matches_and_slices_in_order() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        let rows: Vec<_> = (0..7)
            .map(|i| user(&format!("u{i}"), &format!("name{i}")))
            .collect();
        insert(&s, o.id, &rows).await;
        let page = |start: u64, count: u64| ListQuery {
            sort_by: Some(AttrPath::new("userName")),
            start_index: start,
            count,
            ..Default::default()
        };
        let p = s
            .list_resources(o.id, ResourceKind::User, &page(3, 2))
            .await
            .unwrap();
        assert_eq!(p.total_results, 7);
        assert_eq!(
            p.resources
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["u2", "u3"]
        );
        let p = s
            .list_resources(o.id, ResourceKind::User, &page(6, 10))
            .await
            .unwrap();
        assert_eq!(p.resources.len(), 2);
        let p = s
            .list_resources(o.id, ResourceKind::User, &page(8, 10))
            .await
            .unwrap();
        assert_eq!((p.total_results, p.resources.len()), (7, 0));
        let p = s
            .list_resources(o.id, ResourceKind::User, &page(1, 0))
            .await
            .unwrap();
        assert_eq!((p.total_results, p.resources.len()), (7, 0));
        let p = s
            .list_resources(o.id, ResourceKind::User, &page(0, 1))
            .await
            .unwrap();
        assert_eq!(p.resources[0].id, "u0", "start index 0 counts as 1");
        let mut q = query(r#"userName sw "name""#);
        q.start_index = 7;
        let p = s
            .list_resources(o.id, ResourceKind::User, &q)
            .await
            .unwrap();
        assert_eq!((p.total_results, p.resources.len()), (7, 1));
        let groups = ListQuery {
            start_index: 1,
            count: 10,
            ..Default::default()
        };
        let p = s
            .list_resources(o.id, ResourceKind::Group, &groups)
            .await
            .unwrap();
        assert_eq!((p.total_results, p.resources.len()), (0, 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_readers() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        // Distinct names from many tasks at once, with reads in between: all land.
        let mut tasks = Vec::new();
        for t in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let mut tx = s.begin().await.unwrap();
                    let id = format!("t{t}-{i}");
                    assert!(tx
                        .get_resource_for_update(o.id, ResourceKind::User, &id)
                        .await
                        .unwrap()
                        .is_none());
                    tx.insert_resource(o.id, &user(&id, &id)).await.unwrap();
                    tx.commit().await.unwrap();
                    assert!(s
                        .get_resource(o.id, ResourceKind::User, &id)
                        .await
                        .unwrap()
                        .is_some());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let q = ListQuery {
            start_index: 1,
            count: 0,
            ..Default::default()
        };
        assert_eq!(
            s.list_resources(o.id, ResourceKind::User, &q)
                .await
                .unwrap()
                .total_results,
            80
        );

        // The same name from many tasks at once: exactly one wins.
        let mut tasks = Vec::new();
        for t in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = s.begin().await.unwrap();
                match tx
                    .insert_resource(
                        o.id,
                        &user(&format!("dup{t}"), if t % 2 == 0 { "same" } else { "SAME" }),
                    )
                    .await
                {
                    Ok(()) => {
                        tx.commit().await.unwrap();
                        true
                    }
                    Err(StoreError::Conflict(_)) => false,
                    Err(e) => panic!("{e}"),
                }
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
    })
    .await;
}
