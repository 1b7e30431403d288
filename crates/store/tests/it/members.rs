//! Group memberships: batches, idempotence, nesting, cascades.

use crate::common::*;
use scim::ScimType;
use std::time::Instant;
use store::testing::for_each_store;
use store::{GroupRef, Member, ResourceKind, StoreError};

fn m(id: &str) -> Member {
    Member {
        value: id.to_owned(),
        kind: ResourceKind::User,
        display: None,
    }
}

#[tokio::test]
async fn ten_thousand_members_add_remove_clear() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        let users: Vec<_> = (0..10_000)
            .map(|i| user(&format!("u{i:05}"), &format!("user{i}")))
            .collect();
        let mut rows = users.clone();
        rows.push(group("g", "big"));
        rows.push(user("extra", "extra"));
        insert(&s, o.id, &rows).await;
        let all: Vec<Member> = users.iter().map(|u| m(&u.id)).collect();

        let t = Instant::now();
        let mut tx = s.begin().await.unwrap();
        tx.add_members(o.id, "g", &all).await.unwrap();
        tx.commit().await.unwrap();
        eprintln!(
            "{:?}: added 10000 members in {:?}",
            s.dialect(),
            t.elapsed()
        );

        let mut tx = s.begin().await.unwrap();
        assert_eq!(tx.member_ids(o.id, "g").await.unwrap().len(), 10_000);
        // Adding them again, plus one new member, adds exactly one row.
        let mut again = all.clone();
        again.push(m("extra"));
        tx.add_members(o.id, "g", &again).await.unwrap();
        let ids = tx.member_ids(o.id, "g").await.unwrap();
        assert_eq!(ids.len(), 10_001);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered");
        let removed: Vec<String> = (0..5_000).map(|i| format!("u{i:05}")).collect();
        tx.remove_members(o.id, "g", &removed).await.unwrap();
        tx.remove_members(o.id, "g", &["not-a-member".to_owned()])
            .await
            .unwrap();
        assert_eq!(tx.member_ids(o.id, "g").await.unwrap().len(), 5_001);
        tx.commit().await.unwrap();

        let listed = s.members(o.id, &["g"]).await.unwrap();
        assert_eq!(listed["g"].len(), 5_001);
        assert_eq!(
            listed["g"][0],
            Member {
                value: "extra".into(),
                kind: ResourceKind::User,
                display: Some("extra".into())
            }
        );

        let mut tx = s.begin().await.unwrap();
        tx.clear_members(o.id, "g").await.unwrap();
        assert!(tx.member_ids(o.id, "g").await.unwrap().is_empty());
        tx.commit().await.unwrap();
        // Users are untouched.
        let q = store::ListQuery {
            start_index: 1,
            count: 0,
            ..Default::default()
        };
        assert_eq!(
            s.list_resources(o.id, ResourceKind::User, &q)
                .await
                .unwrap()
                .total_results,
            10_001
        );
    })
    .await;
}

#[tokio::test]
async fn member_kind_and_display_come_from_the_stored_resource() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        let mut named = user("u1", "alice");
        named.doc["displayName"] = "Alice A.".into();
        insert(
            &s,
            o.id,
            &[
                named,
                user("u2", "bob"),
                group("g1", "Team"),
                group("g2", "Sub"),
            ],
        )
        .await;
        let mut tx = s.begin().await.unwrap();
        // The client claims wrong kinds and displays; both are ignored.
        let claimed = [
            Member {
                value: "g2".into(),
                kind: ResourceKind::User,
                display: Some("x".into()),
            },
            Member {
                value: "u2".into(),
                kind: ResourceKind::Group,
                display: None,
            },
            m("u1"),
            m("u1"),
        ];
        tx.add_members(o.id, "g1", &claimed).await.unwrap();
        assert_eq!(tx.members_of(o.id, "g1").await.unwrap().len(), 3);
        tx.commit().await.unwrap();
        let got = s.members(o.id, &["g1", "g2", "nope"]).await.unwrap();
        assert_eq!(
            got["g1"],
            vec![
                Member {
                    value: "g2".into(),
                    kind: ResourceKind::Group,
                    display: Some("Sub".into())
                },
                Member {
                    value: "u1".into(),
                    kind: ResourceKind::User,
                    display: Some("Alice A.".into())
                },
                Member {
                    value: "u2".into(),
                    kind: ResourceKind::User,
                    display: Some("bob".into())
                },
            ]
        );
        assert!(got["g2"].is_empty());
        assert!(got["nope"].is_empty());
    })
    .await;
}

#[tokio::test]
async fn invalid_members_are_refused() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        insert(&s, o.id, &[user("u1", "alice"), group("g1", "Team")]).await;

        let mut tx = s.begin().await.unwrap();
        match tx.add_members(o.id, "g1", &[m("u1"), m("ghost")]).await {
            Err(StoreError::UnknownMember(id)) => assert_eq!(id, "ghost"),
            other => panic!("{other:?}"),
        }
        drop(tx);
        assert!(
            s.members(o.id, &["g1"]).await.unwrap()["g1"].is_empty(),
            "rolled back"
        );

        let mut tx = s.begin().await.unwrap();
        match tx.add_members(o.id, "g1", &[m("g1")]).await {
            Err(StoreError::Scim(e)) => assert_eq!(e.scim_type, Some(ScimType::InvalidValue)),
            other => panic!("{other:?}"),
        }
        drop(tx);

        let mut tx = s.begin().await.unwrap();
        match tx.add_members(o.id, "no-such-group", &[m("u1")]).await {
            Err(StoreError::NotFound) => {}
            other => panic!("{other:?}"),
        }
        drop(tx);

        let mut tx = s.begin().await.unwrap();
        tx.add_members(o.id, "g1", &[]).await.unwrap();
        tx.remove_members(o.id, "g1", &[]).await.unwrap();
        tx.commit().await.unwrap();
    })
    .await;
}

fn refs(v: &[GroupRef]) -> Vec<(&str, &str, Option<&str>)> {
    v.iter()
        .map(|g| (g.value.as_str(), g.membership, g.display.as_deref()))
        .collect()
}

#[tokio::test]
async fn groups_of_follows_nesting_and_survives_cycles() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        insert(
            &s,
            o.id,
            &[
                user("u1", "alice"),
                user("u2", "bob"),
                user("u3", "carol"),
                group("g1", "One"),
                group("g2", "Two"),
                group("g3", "Three"),
            ],
        )
        .await;
        let mut tx = s.begin().await.unwrap();
        tx.add_members(o.id, "g1", &[m("u1"), m("u2")])
            .await
            .unwrap();
        tx.add_members(o.id, "g2", &[m("g1")]).await.unwrap();
        tx.add_members(o.id, "g3", &[m("g2"), m("u1")])
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let got = s.groups_of(o.id, &["u1", "u2", "u3"]).await.unwrap();
        assert_eq!(
            refs(&got["u1"]),
            [
                ("g1", "direct", Some("One")),
                ("g2", "indirect", Some("Two")),
                ("g3", "direct", Some("Three")),
            ]
        );
        assert_eq!(
            refs(&got["u2"]),
            [
                ("g1", "direct", Some("One")),
                ("g2", "indirect", Some("Two")),
                ("g3", "indirect", Some("Three")),
            ]
        );
        assert!(!got.contains_key("u3"));

        // A cycle g3 -> g1 -> g2 -> g3 terminates.
        let mut tx = s.begin().await.unwrap();
        tx.add_members(o.id, "g1", &[m("g3")]).await.unwrap();
        tx.commit().await.unwrap();
        let got = s.groups_of(o.id, &["u2"]).await.unwrap();
        assert_eq!(got["u2"].len(), 3);
        // Groups can be asked for too (their parents).
        let got = s.groups_of(o.id, &["g1"]).await.unwrap();
        assert_eq!(
            refs(&got["g1"]).iter().map(|r| r.0).collect::<Vec<_>>(),
            ["g1", "g2", "g3"]
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_a_resource_removes_its_memberships_both_ways() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        insert(
            &s,
            o.id,
            &[
                user("u1", "alice"),
                user("u2", "bob"),
                group("g1", "One"),
                group("g2", "Two"),
            ],
        )
        .await;
        let mut tx = s.begin().await.unwrap();
        tx.add_members(o.id, "g1", &[m("u1"), m("u2")])
            .await
            .unwrap();
        tx.add_members(o.id, "g2", &[m("g1"), m("u1")])
            .await
            .unwrap();
        assert!(tx
            .delete_resource(o.id, ResourceKind::User, "u1")
            .await
            .unwrap());
        tx.commit().await.unwrap();
        let got = s.members(o.id, &["g1", "g2"]).await.unwrap();
        assert_eq!(
            got["g1"]
                .iter()
                .map(|m| m.value.as_str())
                .collect::<Vec<_>>(),
            ["u2"]
        );
        assert_eq!(
            got["g2"]
                .iter()
                .map(|m| m.value.as_str())
                .collect::<Vec<_>>(),
            ["g1"]
        );

        let mut tx = s.begin().await.unwrap();
        assert!(tx
            .delete_resource(o.id, ResourceKind::Group, "g1")
            .await
            .unwrap());
        tx.commit().await.unwrap();
        let got = s.members(o.id, &["g1", "g2"]).await.unwrap();
        assert!(got["g1"].is_empty());
        assert!(got["g2"].is_empty());
        assert!(s.groups_of(o.id, &["u2"]).await.unwrap().is_empty());
        // Recreating an id does not resurrect old memberships.
        insert(&s, o.id, &[user("u1", "alice")]).await;
        assert!(s.groups_of(o.id, &["u1"]).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn memberships_are_queued_once_per_app_that_takes_groups() {
    for_each_store(|s| async move {
        let o = org(&s, "q").await;
        let app = |name: &str, groups_as: store::GroupsAs| store::AppRecord {
            id: 0,
            org_id: o.id,
            name: name.to_owned(),
            kind: store::AppKind::Synapse,
            base_url: "https://matrix.example.org".to_owned(),
            credential: "env:X".to_owned(),
            groups_as,
            deprovision: store::Deprovision::Disable,
            adopt: store::Adopt::Never,
            settings: serde_json::json!({}),
            created: time::OffsetDateTime::now_utc(),
        };
        let mut tx = s.begin().await.unwrap();
        let rooms = tx
            .create_app(&app("chat", store::GroupsAs::Rooms))
            .await
            .unwrap();
        tx.create_app(&app("files", store::GroupsAs::None))
            .await
            .unwrap();
        // A repeated id is one membership; an empty list queues nothing.
        let ids: Vec<String> = ["u1", "u2", "u1", "Üñ"].map(String::from).to_vec();
        tx.enqueue_members(o.id, "g", &ids).await.unwrap();
        tx.enqueue_members(o.id, "g", &[]).await.unwrap();
        tx.commit().await.unwrap();
        let queued = s.pending_for(o.id, "g").await.unwrap();
        let mut members: Vec<(i64, &str)> = queued
            .iter()
            .map(|d| (d.app_id, d.member_id.as_str()))
            .collect();
        members.sort();
        assert_eq!(
            members,
            [(rooms.id, "u1"), (rooms.id, "u2"), (rooms.id, "Üñ")],
            "{:?}",
            s.dialect()
        );
        assert!(queued.iter().all(|d| d.target == store::Target::Member));

        // Queued again (a newer change): still one row each.
        let mut tx = s.begin().await.unwrap();
        tx.enqueue_members(o.id, "g", &ids).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(s.pending_for(o.id, "g").await.unwrap().len(), 3);
    })
    .await;
}
