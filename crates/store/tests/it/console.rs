//! The console's store: one-time links, sessions, the organisations' health
//! and the users list paged by name.

use crate::common::*;
use serde_json::json;
use store::testing::for_each_store;
use store::{AppRecord, ConsoleGrant, SessionRecord, Target};
use time::{Duration, OffsetDateTime};

#[tokio::test]
async fn links_are_taken_once_and_sessions_expire() {
    for_each_store(|s| async move {
        let now = OffsetDateTime::now_utc();
        let o = org(&s, "acme").await;
        let mut tx = s.begin().await.unwrap();
        tx.insert_console_link(
            "h1",
            "lk-1",
            ConsoleGrant::OrgAdmin(o.id),
            now + Duration::minutes(10),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut tx = s.begin().await.unwrap();
        let link = tx.redeem_console_link("h1", now).await.unwrap().unwrap();
        assert_eq!(link.grant, ConsoleGrant::OrgAdmin(o.id));
        assert_eq!(link.label, "lk-1");
        assert_eq!(tx.redeem_console_link("h1", now).await.unwrap(), None);
        let record = SessionRecord {
            grant: link.grant,
            actor: "link:lk-1".into(),
            created: at(1_700_000_000),
            expires: now + Duration::hours(1),
        };
        tx.insert_console_session("s1", &record).await.unwrap();
        tx.commit().await.unwrap();
        let found = s.console_session("s1", now).await.unwrap().unwrap();
        assert_eq!(found.grant, record.grant);
        assert_eq!(found.actor, record.actor);
        assert_eq!(found.created, record.created);
        assert_eq!(
            s.console_session("s1", now + Duration::hours(2))
                .await
                .unwrap(),
            None
        );
        // The organisation's deletion ends its admins' sessions.
        let mut tx = s.begin().await.unwrap();
        tx.delete_org("acme").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(s.console_session("s1", now).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn health_counts_each_organisation_apart() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        insert(
            &s,
            a.id,
            &[user("u1", "ada"), user("u2", "alan"), group("g1", "staff")],
        )
        .await;
        insert(&s, b.id, &[user("u3", "bob")]).await;
        let mut tx = s.begin().await.unwrap();
        let app = tx
            .create_app(&AppRecord {
                id: 0,
                org_id: a.id,
                name: "cloud".into(),
                kind: store::AppKind::Nextcloud,
                base_url: "http://cloud.test".into(),
                credential: "env:X".into(),
                groups_as: store::GroupsAs::Groups,
                deprovision: store::Deprovision::Disable,
                adopt: store::Adopt::Never,
                settings: json!({}),
                created: OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        tx.enqueue(a.id, Target::User, "u1", None).await.unwrap();
        tx.enqueue(a.id, Target::User, "u2", None).await.unwrap();
        tx.commit().await.unwrap();
        s.record_link(app.id, "u2", None, None, "collision", Some("taken"))
            .await
            .unwrap();
        let health = s.org_health().await.unwrap();
        assert_eq!(health.len(), 2);
        let (ha, hb) = (&health[0], &health[1]);
        assert_eq!((ha.org.slug.as_str(), ha.users, ha.apps), ("a", 2, 1));
        assert_eq!((ha.pending, ha.failed, ha.collisions), (2, 0, 1));
        assert!(ha.oldest_pending.is_some());
        assert_eq!((hb.users, hb.apps, hb.pending, hb.collisions), (1, 0, 0, 0));
        assert_eq!(hb.oldest_pending, None);
    })
    .await;
}

#[tokio::test]
async fn users_are_paged_by_name_within_a_prefix() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        let names = ["Ada", "adam", "adele", "alan", "bob", "ad"];
        let rows: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, n)| user(&format!("u{i}"), n))
            .collect();
        insert(&s, a.id, &rows).await;
        insert(&s, b.id, &[user("x", "adrian")]).await;
        let names_of = |page: Vec<store::UserEntry>| -> Vec<String> {
            page.into_iter().map(|u| u.user_name).collect()
        };
        let page = s.user_page(a.id, "ad", None, 2).await.unwrap();
        assert_eq!(names_of(page.clone()), ["ad", "Ada"]);
        let after = page.last().unwrap().name_lc.clone();
        let page = s.user_page(a.id, "ad", Some(&after), 10).await.unwrap();
        assert_eq!(names_of(page), ["adam", "adele"]);
        // A cursor before the prefix is ignored; an empty prefix is everyone.
        let page = s.user_page(a.id, "al", Some("ad"), 10).await.unwrap();
        assert_eq!(names_of(page), ["alan"]);
        assert_eq!(s.user_page(a.id, "", None, 100).await.unwrap().len(), 6);
        assert!(s.user_page(a.id, "z", None, 10).await.unwrap().is_empty());
    })
    .await;
}
