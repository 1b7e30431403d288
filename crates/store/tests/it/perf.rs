//! Timings on larger data sets (ignored by default; run with
//! `cargo test -p store --features testing --release -- --ignored --nocapture perf`).

use crate::common::*;
use serde_json::json;
use std::time::Instant;
use store::testing::for_each_store;
use store::{ListQuery, Member, ResourceKind};

#[tokio::test]
#[ignore = "timing run"]
async fn perf_hundred_thousand_users() {
    for_each_store(|s| async move {
        let d = s.dialect();
        let o = org(&s, "o").await;
        let n = 100_000;
        let t = Instant::now();
        let mut tx = s.begin().await.unwrap();
        for i in 0..n {
            let r = row(
                ResourceKind::User,
                &format!("u{i:06}"),
                json!({
                    "userName": format!("user{i}"),
                    "name": {"givenName": format!("G{}", i % 1000), "familyName": format!("F{i}")},
                    "emails": [{"value": format!("user{i}@example.com"), "type": "work", "primary": true}],
                    "active": i % 2 == 0
                }),
            );
            tx.insert_resource(o.id, &r).await.unwrap();
        }
        tx.insert_resource(o.id, &group("g", "all")).await.unwrap();
        tx.commit().await.unwrap();
        eprintln!("{d:?}: inserted {n} users in {:?}", t.elapsed());

        let members: Vec<Member> = (0..n)
            .map(|i| Member { value: format!("u{i:06}"), kind: ResourceKind::User, display: None })
            .collect();
        let t = Instant::now();
        let mut tx = s.begin().await.unwrap();
        tx.add_members(o.id, "g", &members).await.unwrap();
        tx.commit().await.unwrap();
        eprintln!("{d:?}: added {n} members in {:?}", t.elapsed());
        let t = Instant::now();
        let mut tx = s.begin().await.unwrap();
        tx.add_members(o.id, "g", &members[..1]).await.unwrap();
        tx.commit().await.unwrap();
        eprintln!("{d:?}: added 1 member to a {n}-member group in {:?}", t.elapsed());

        for (label, f, sort) in [
            ("no filter", None, None),
            ("userName eq", Some(r#"userName eq "USER77777""#), None),
            ("userName sw", Some(r#"userName sw "user7777""#), None),
            ("externalId eq", Some(r#"externalId eq "nope""#), None),
            ("emails.value eq", Some(r#"emails.value eq "user77777@example.com""#), None),
            ("emails[type and value]", Some(r#"emails[type eq "work" and value co "77777@"]"#), None),
            ("name.familyName eq", Some(r#"name.familyName eq "f77777""#), None),
            ("active eq true", Some("active eq true"), None),
            ("groups.value eq", Some(r#"groups.value eq "g""#), None),
            ("sort userName desc", None, Some(scim::AttrPath::new("userName"))),
            ("sort name.familyName", None, Some(scim::AttrPath::with_sub("name", "familyName"))),
            ("sort emails", None, Some(scim::AttrPath::new("emails"))),
        ] {
            let q = ListQuery {
                filter: f.map(|f| scim::Filter::parse(f).unwrap()),
                sort_by: sort,
                descending: true,
                start_index: 501,
                count: 100,
            };
            let t = Instant::now();
            let p = s.list_resources(o.id, ResourceKind::User, &q).await.unwrap();
            eprintln!("{d:?}: list {label}: {} results in {:?}", p.total_results, t.elapsed());
        }
        let ids: Vec<String> = (0..100).map(|i| format!("u{i:06}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let t = Instant::now();
        let g = s.groups_of(o.id, &refs).await.unwrap();
        eprintln!("{d:?}: groups_of 100 users in {:?} ({} with groups)", t.elapsed(), g.len());
        let t = Instant::now();
        let m = s.members(o.id, &["g"]).await.unwrap();
        eprintln!("{d:?}: members of a {}-member group in {:?}", m["g"].len(), t.elapsed());
        let t = Instant::now();
        let mut tx = s.begin().await.unwrap();
        tx.delete_org("o").await.unwrap();
        tx.commit().await.unwrap();
        eprintln!("{d:?}: deleted the org in {:?}", t.elapsed());
    })
    .await;
}
