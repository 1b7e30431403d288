//! SCIM filters and sorting translated to SQL, checked on real data.

use crate::common::*;
use scim::{AttrPath, ScimType};
use serde_json::json;
use store::testing::for_each_store;
use store::{ListQuery, Member, ResourceKind, Store, StoreError};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Four users with a spread of attributes, created a year apart, and two groups.
async fn fixture(s: &Store) -> i64 {
    let o = org(s, "o").await;
    let other = org(s, "other").await;
    let mut u1 = row(
        ResourceKind::User,
        "u1",
        json!({
            "userName": "bjensen",
            "displayName": "Babs Jensen",
            "externalId": "ext-1",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "title": "Tour Guide",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@home.org", "type": "home"}
            ],
            ENT: {"employeeNumber": "701", "manager": {"value": "u3"}}
        }),
    );
    u1.created = at(1_577_836_800); // 2020-01-01
    let mut u2 = row(
        ResourceKind::User,
        "u2",
        json!({
            "userName": "JSmith",
            "externalId": "EXT-2",
            "name": {"givenName": "John", "familyName": "Smith"},
            "title": "",
            "nickName": "100%_off\\",
            "active": false,
            "emails": [{"value": "john@EXAMPLE.com", "type": "home"}]
        }),
    );
    u2.created = at(1_609_459_200); // 2021-01-01
    let mut u3 = row(
        ResourceKind::User,
        "u3",
        json!({
            "userName": "ÅSA",
            "displayName": "Åsa",
            ENT: {"employeeNumber": "5"}
        }),
    );
    u3.created = at(1_640_995_200); // 2022-01-01
    let mut u4 = row(
        ResourceKind::User,
        "u4",
        json!({
            "userName": "zed",
            "externalId": "a*b?[c]",
            "title": "Boss",
            "active": true,
            "emails": [{"value": "z@x.org", "type": "work"}, {"value": "a@x.org", "type": "other", "primary": true}]
        }),
    );
    u4.created = at(1_672_531_200); // 2023-01-01
    u4.last_modified = at(1_700_000_000);
    insert(
        s,
        o.id,
        &[
            u1,
            u2,
            u3,
            u4,
            group("g1", "Admins"),
            group("g2", "Everyone"),
        ],
    )
    .await;
    // A look-alike in another organisation that no query of `o` may return.
    insert(s, other.id, &[user("x1", "bjensen"), group("g1", "Admins")]).await;
    let mut tx = s.begin().await.unwrap();
    let m = |id: &str| Member {
        value: id.into(),
        kind: ResourceKind::User,
        display: None,
    };
    tx.add_members(o.id, "g1", &[m("u1"), m("u2")])
        .await
        .unwrap();
    tx.add_members(o.id, "g2", &[m("g1"), m("u4")])
        .await
        .unwrap();
    tx.add_members(other.id, "g1", &[m("x1")]).await.unwrap();
    tx.commit().await.unwrap();
    o.id
}

async fn check(s: &Store, org: i64, kind: ResourceKind, cases: &[(&str, &[&str])]) {
    for (filter, want) in cases {
        let got = matching(s, org, kind, filter).await;
        assert_eq!(got, *want, "{:?}: {filter}", s.dialect());
    }
}

async fn users(s: &Store, org: i64, cases: &[(&str, &[&str])]) {
    check(s, org, ResourceKind::User, cases).await
}

#[tokio::test]
async fn string_operators_on_hot_columns() {
    for_each_store(|s| async move {
        let o = fixture(&s).await;
        users(
            &s,
            o,
            &[
                (r#"userName eq "BJENSEN""#, &["u1"]),
                (r#"userName eq "åsa""#, &["u3"]),
                (r#"USERNAME Eq "jsmith""#, &["u2"]),
                (r#"userName ne "bjensen""#, &["u2", "u3", "u4"]),
                (r#"userName sw "j""#, &["u2"]),
                (r#"userName co "SE""#, &["u1"]),
                (r#"userName ew "ED""#, &["u4"]),
                (r#"userName gt "j""#, &["u2", "u3", "u4"]),
                (r#"userName ge "jsmith""#, &["u2", "u3", "u4"]),
                (r#"userName lt "jsmith""#, &["u1"]),
                (r#"userName le "jsmith""#, &["u1", "u2"]),
                (r#"id eq "u2""#, &["u2"]),
                (r#"id eq "U2""#, &[]),
                (r#"externalId eq "EXT-2""#, &["u2"]),
                (r#"externalId eq "ext-2""#, &[]),
                (r#"externalId sw "EXT""#, &["u2"]),
                (r#"externalId sw "ext""#, &["u1"]),
                (r#"externalId co "*b?[""#, &["u4"]),
                (r#"externalId sw "a*""#, &["u4"]),
                (r#"externalId co "x*""#, &[]),
                (r#"externalId pr"#, &["u1", "u2", "u4"]),
                (r#"displayName eq "babs jensen""#, &["u1"]),
                (r#"displayName pr"#, &["u1", "u3"]),
                (r#"meta.resourceType eq "User""#, &["u1", "u2", "u3", "u4"]),
                (r#"meta.version eq "W/\"1\"""#, &["u1", "u2", "u3", "u4"]),
            ],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn json_attributes_case_and_like_escaping() {
    for_each_store(|s| async move {
        let o = fixture(&s).await;
        users(
            &s,
            o,
            &[
                (r#"name.givenName eq "barbara""#, &["u1"]),
                (r#"name.familyName co "MIT""#, &["u2"]),
                (r#"name.givenName sw "J""#, &["u2"]),
                (r#"name.familyName gt "K""#, &["u2"]),
                (r#"name pr"#, &["u1", "u2"]),
                (r#"name.givenName pr"#, &["u1", "u2"]),
                (r#"title pr"#, &["u1", "u4"]),
                (r#"title eq null"#, &["u2", "u3"]),
                (r#"title ne null"#, &["u1", "u4"]),
                (r#"title ne "Boss""#, &["u1", "u2", "u3"]),
                (r#"not (title eq "boss")"#, &["u1", "u2", "u3"]),
                (r#"nickName co "%_""#, &["u2"]),
                (r#"nickName co "%""#, &["u2"]),
                (r#"nickName co "_o""#, &["u2"]),
                (r#"nickName co "\\""#, &["u2"]),
                (r#"nickName ew "f\\""#, &["u2"]),
                (r#"nickName co "x%""#, &[]),
                (r#"title co "_""#, &[]),
            ],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn booleans_dates_and_type_errors() {
    for_each_store(|s| async move {
        let o = fixture(&s).await;
        users(
            &s,
            o,
            &[
                ("active eq true", &["u1", "u4"]),
                ("active eq false", &["u2"]),
                ("active ne true", &["u2", "u3"]),
                ("active pr", &["u1", "u2", "u4"]),
                ("not (active eq true)", &["u2", "u3"]),
                (
                    r#"meta.created gt "2021-01-01T00:00:00Z""#,
                    &["u2", "u3", "u4"],
                ),
                (
                    r#"meta.created ge "2021-01-01T00:00:00.123456Z""#,
                    &["u2", "u3", "u4"],
                ),
                (
                    r#"meta.created gt "2021-01-01T00:00:00.123456Z""#,
                    &["u3", "u4"],
                ),
                (
                    r#"meta.created lt "2021-06-01T00:00:00+02:00""#,
                    &["u1", "u2"],
                ),
                (r#"meta.created le "2020-01-01T00:00:00.123456Z""#, &["u1"]),
                (
                    r#"meta.created eq "2020-01-01T01:00:00.123456+01:00""#,
                    &["u1"],
                ),
                (r#"meta.lastModified gt "2023-06-01T00:00:00Z""#, &["u4"]),
                (r#"meta.created pr"#, &["u1", "u2", "u3", "u4"]),
                (r#"emails[primary eq true]"#, &["u1", "u4"]),
                (r#"emails[not (primary eq true)]"#, &["u1", "u2", "u4"]),
            ],
        )
        .await;
        for bad in [
            "active gt true",
            "active eq \"true\"",
            "userName eq 5",
            "userName eq true",
            "meta.created co \"2020\"",
            "meta.created gt \"yesterday\"",
            "meta.created gt 5",
            "noSuchAttribute eq \"x\"",
            "name eq \"x\"",
            "name.noSuchSub eq \"x\"",
            "userName gt null",
            "meta.location eq \"x\"",
            "userName[value eq \"x\"]",
        ] {
            let q = query(bad);
            match s.list_resources(o, ResourceKind::User, &q).await {
                Err(StoreError::Scim(e)) => {
                    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{bad}: {e}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn multi_valued_value_paths_and_urn_paths() {
    for_each_store(|s| async move {
        let o = fixture(&s).await;
        users(&s, o, &[
            (r#"emails.value co "example.com""#, &["u1", "u2"]),
            (r#"emails co "EXAMPLE.COM""#, &["u1", "u2"]),
            (r#"emails.value eq "z@x.org""#, &["u4"]),
            (r#"emails.type eq "work""#, &["u1", "u4"]),
            (r#"emails.type ne "work""#, &["u2", "u3"]),
            (r#"emails[type eq "work"]"#, &["u1", "u4"]),
            (r#"emails[type eq "work" and value co "example"]"#, &["u1"]),
            (r#"emails[type eq "home" and value co "home.org"]"#, &["u1"]),
            (r#"emails[type eq "work" and value co "home.org"]"#, &[]),
            (r#"emails[type eq "work" or value ew ".COM"]"#, &["u1", "u2", "u4"]),
            (r#"emails[value sw "j"] or userName eq "zed""#, &["u2", "u4"]),
            (r#"emails pr"#, &["u1", "u2", "u4"]),
            (r#"not (emails pr)"#, &["u3"]),
            (r#"emails eq null"#, &["u3"]),
            (r#"emails.value pr"#, &["u1", "u2", "u4"]),
            (r#"not (emails[type eq "work"])"#, &["u2", "u3"]),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701""#, &["u1"]),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr"#, &["u1", "u3"]),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u3""#, &["u1"]),
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr"#, &["u1"]),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "zed""#, &["u4"]),
            (r#"name[givenName eq "John" and familyName eq "smith"]"#, &["u2"]),
            (r#"userName eq "zed" or (name.givenName sw "J" and active eq false)"#, &["u2", "u4"]),
            (r#"userName eq "zed" or name.givenName sw "J" and active eq true"#, &["u4"]),
        ])
        .await;
    })
    .await;
}

#[tokio::test]
async fn members_and_groups_filters_use_the_members_table() {
    for_each_store(|s| async move {
        let o = fixture(&s).await;
        check(
            &s,
            o,
            ResourceKind::Group,
            &[
                (r#"displayName eq "admins""#, &["g1"]),
                (r#"displayName sw "E""#, &["g2"]),
                (r#"members.value eq "u1""#, &["g1"]),
                (r#"members eq "g1""#, &["g2"]),
                (r#"members[value eq "u4" and type eq "User"]"#, &["g2"]),
                (r#"members[type eq "Group"]"#, &["g2"]),
                (r#"members.display eq "JSMITH""#, &["g1"]),
                (r#"members.display eq "Admins""#, &["g2"]),
                (r#"members pr"#, &["g1", "g2"]),
                (r#"members.value ne "u1""#, &["g2"]),
                (r#"members.value eq "x1""#, &[]),
            ],
        )
        .await;
        users(
            &s,
            o,
            &[
                (r#"groups.value eq "g1""#, &["u1", "u2"]),
                (r#"groups[display eq "everyone"]"#, &["u4"]),
                (r#"groups pr"#, &["u1", "u2", "u4"]),
                (r#"not (groups pr)"#, &["u3"]),
            ],
        )
        .await;
    })
    .await;
}

async fn sorted(s: &Store, org: i64, by: AttrPath, descending: bool) -> Vec<String> {
    let q = ListQuery {
        sort_by: Some(by),
        descending,
        start_index: 1,
        count: 100,
        ..Default::default()
    };
    list_ids(s, org, ResourceKind::User, &q).await
}

#[tokio::test]
async fn sorting_by_columns_json_and_multi_valued_attributes() {
    for_each_store(|s| async move {
        let o = fixture(&s).await;
        // Code-point order of the lower-cased names: "å" sorts after "z".
        assert_eq!(
            sorted(&s, o, AttrPath::new("userName"), false).await,
            ["u1", "u2", "u4", "u3"]
        );
        assert_eq!(
            sorted(&s, o, AttrPath::new("username"), true).await,
            ["u3", "u4", "u2", "u1"]
        );
        // Missing values last ascending, first descending; ties by id.
        let family = AttrPath::with_sub("name", "familyName");
        assert_eq!(
            sorted(&s, o, family.clone(), false).await,
            ["u1", "u2", "u3", "u4"]
        );
        assert_eq!(sorted(&s, o, family, true).await, ["u3", "u4", "u2", "u1"]);
        assert_eq!(
            sorted(&s, o, AttrPath::new("title"), false).await,
            ["u2", "u4", "u1", "u3"]
        );
        // Multi-valued: the primary value, else the first.
        assert_eq!(
            sorted(&s, o, AttrPath::new("emails"), false).await,
            ["u4", "u1", "u2", "u3"]
        );
        assert_eq!(
            sorted(&s, o, AttrPath::with_sub("emails", "type"), false).await,
            ["u2", "u4", "u1", "u3"]
        );
        let created = AttrPath::with_sub("meta", "created");
        assert_eq!(
            sorted(&s, o, created.clone(), true).await,
            ["u4", "u3", "u2", "u1"]
        );
        assert_eq!(
            sorted(&s, o, created, false).await,
            ["u1", "u2", "u3", "u4"]
        );
        assert_eq!(
            sorted(&s, o, AttrPath::new("externalId"), false).await,
            ["u2", "u4", "u1", "u3"]
        );
        let emp = AttrPath::new("employeeNumber").with_schema(ENT);
        assert_eq!(sorted(&s, o, emp, false).await, ["u3", "u1", "u2", "u4"]);
        // No sortBy: creation order.
        let q = ListQuery {
            start_index: 1,
            count: 10,
            ..Default::default()
        };
        assert_eq!(
            list_ids(&s, o, ResourceKind::User, &q).await,
            ["u1", "u2", "u3", "u4"]
        );
        for bad in [
            AttrPath::new("nope"),
            AttrPath::new("name"),
            AttrPath::new("groups"),
        ] {
            let q = ListQuery {
                sort_by: Some(bad.clone()),
                start_index: 1,
                count: 10,
                ..Default::default()
            };
            let err = s
                .list_resources(o, ResourceKind::User, &q)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Scim(_)), "{bad:?}: {err:?}");
        }
    })
    .await;
}
