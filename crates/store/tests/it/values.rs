//! Filters on `emails` and `phoneNumbers`, read from the `attr_values` index
//! table: the same results as reading the JSON documents, through every write
//! path, with Unicode case folding, and an index lookup for `eq`.

use crate::common::*;
use serde_json::{json, Value};
use store::testing::{
    execute, filter_plan, filter_plan_without_statistics, for_each_store, ids_matching,
};
use store::{ResourceKind, ResourceRow, Store};

fn user_doc(id: &str, user_name: &str, doc: Value) -> ResourceRow {
    let mut doc = doc;
    doc["userName"] = json!(user_name);
    row(ResourceKind::User, id, doc)
}

/// Users with no, one and several e-mails and phone numbers, mixed case,
/// non-ASCII, missing types or values, odd element types.
fn people() -> Vec<ResourceRow> {
    vec![
        user_doc(
            "u01",
            "bjensen",
            json!({"emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "Babs@Home.ORG", "type": "home"}
            ], "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}]}),
        ),
        user_doc(
            "u02",
            "elodie",
            json!({"emails": [
                {"value": "Élodie@Exemple.org", "type": "WORK"},
                {"value": "elodie@example.com", "type": "other", "primary": false}
            ]}),
        ),
        user_doc("u03", "nomail", json!({"displayName": "No Mail"})),
        user_doc("u04", "empty", json!({"emails": []})),
        user_doc(
            "u05",
            "notype",
            json!({"emails": [{"value": "bjensen@EXAMPLE.com"}, {"type": "work"}, {"value": ""}]}),
        ),
        user_doc(
            "u06",
            "odd",
            json!({"emails": [null, {"value": "x_y%z@example.com", "display": "X"}]}),
        ),
        user_doc(
            "u07",
            "phones",
            json!({"phoneNumbers": [
                {"value": "+33 1 23 45 67 89", "type": "mobile", "primary": true},
                {"value": "+1 555 0100", "type": "home"}
            ]}),
        ),
        user_doc(
            "u08",
            "work2",
            json!({"emails": [{"value": "ops@example.com", "type": "work"},
                              {"value": "bjensen@example.com", "type": "home"}]}),
        ),
    ]
}

/// Filters whose comparison values are ASCII: the JSON scan folds their case
/// like Rust on both engines, so both translations must agree exactly.
const FILTERS: &[&str] = &[
    r#"emails.value eq "bjensen@example.com""#,
    r#"emails.value eq "BJENSEN@example.COM""#,
    r#"emails eq "ops@example.com""#,
    r#"emails.value ne "bjensen@example.com""#,
    r#"emails.value sw "bjensen@""#,
    r#"emails.value sw "BABS""#,
    r#"emails.value sw """#,
    r#"emails.value ew ".com""#,
    r#"emails.value co "example""#,
    r#"emails.value co "_y%""#,
    r#"emails.value gt "m""#,
    r#"emails.value le "babs@home.org""#,
    r#"emails.value pr"#,
    r#"emails.value eq null"#,
    r#"emails pr"#,
    r#"not (emails pr)"#,
    r#"emails.type eq "work""#,
    r#"emails.type pr"#,
    r#"emails.primary eq true"#,
    r#"emails.primary eq false"#,
    r#"emails.primary pr"#,
    r#"emails.display eq "x""#,
    r#"emails[type eq "work" and value eq "bjensen@example.com"]"#,
    r#"emails[type eq "WORK" and value sw "B"]"#,
    r#"emails[type eq "work" or primary eq true]"#,
    r#"emails[not (type eq "work")]"#,
    r#"emails[value pr and not (type pr)]"#,
    r#"emails[type eq "work" and display pr]"#,
    r#"emails[display eq "x"]"#,
    r#"emails[type eq "home"] and phoneNumbers.value pr"#,
    r#"emails[type eq "work"] or phoneNumbers[type eq "mobile"]"#,
    r#"not (emails[type eq "work" and value ew "example.com"])"#,
    r#"userName eq "bjensen" or emails.value eq "ops@example.com""#,
    r#"phoneNumbers.value eq "+1 555 0100""#,
    r#"phoneNumbers.value sw "+33""#,
    r#"phoneNumbers pr"#,
    r#"phoneNumbers[type eq "home" and value co "555"]"#,
    r#"phoneNumbers.primary eq true and emails pr"#,
];

async fn assert_same_as_json_scan(s: &Store, org_id: i64, stage: &str) -> usize {
    let mut matches = 0;
    for f in FILTERS {
        let filter = scim::Filter::parse(f).unwrap();
        let indexed = ids_matching(s, org_id, ResourceKind::User, &filter, false).await;
        let scanned = ids_matching(s, org_id, ResourceKind::User, &filter, true).await;
        assert_eq!(indexed, scanned, "{stage}: {f}");
        // The public list query agrees too.
        assert_eq!(
            matching(s, org_id, ResourceKind::User, f).await,
            indexed,
            "{stage}: {f}"
        );
        matches += indexed.len();
    }
    matches
}

#[tokio::test]
async fn indexed_filters_match_the_json_scan_through_every_write() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        let other = org(&s, "other").await;
        insert(&s, o.id, &people()).await;
        // The same people in another organisation must never show up.
        insert(&s, other.id, &people()).await;
        let found = assert_same_as_json_scan(&s, o.id, "created").await;
        assert!(found > 20, "the filters select something ({found})");

        // Replace (PUT or PATCH end here): values change, move, disappear.
        let mut tx = s.begin().await.unwrap();
        let mut u1 = user_doc(
            "u01",
            "bjensen",
            json!({"emails": [{"value": "Babs@Home.ORG", "type": "work", "primary": true}]}),
        );
        u1.version = 2;
        tx.update_resource(o.id, &u1).await.unwrap();
        let u8 = user_doc("u08", "work2", json!({"displayName": "no more mail"}));
        tx.update_resource(o.id, &u8).await.unwrap();
        let u3 = user_doc(
            "u03",
            "nomail",
            json!({"emails": [{"value": "bjensen@example.com", "type": "work"}]}),
        );
        tx.update_resource(o.id, &u3).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            matching(
                &s,
                o.id,
                ResourceKind::User,
                r#"emails[type eq "work" and value eq "bjensen@example.com"]"#
            )
            .await,
            ["u03"]
        );
        assert_same_as_json_scan(&s, o.id, "replaced").await;

        // Delete.
        let mut tx = s.begin().await.unwrap();
        assert!(tx
            .delete_resource(o.id, ResourceKind::User, "u03")
            .await
            .unwrap());
        assert!(tx
            .delete_resource(o.id, ResourceKind::User, "u07")
            .await
            .unwrap());
        tx.commit().await.unwrap();
        assert_same_as_json_scan(&s, o.id, "deleted").await;
        assert!(matching(
            &s,
            o.id,
            ResourceKind::User,
            r#"phoneNumbers[type eq "mobile"]"#
        )
        .await
        .is_empty());

        // A rolled-back write leaves the index as it was.
        let mut tx = s.begin().await.unwrap();
        let u2 = user_doc(
            "u02",
            "elodie",
            json!({"emails": [{"value": "gone@example.com"}]}),
        );
        tx.update_resource(o.id, &u2).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            matching(
                &s,
                o.id,
                ResourceKind::User,
                r#"emails.value eq "elodie@example.com""#
            )
            .await,
            ["u02"]
        );
        assert_same_as_json_scan(&s, o.id, "rolled back").await;
        // The other organisation still has its own.
        assert_same_as_json_scan(&s, other.id, "other org").await;
    })
    .await;
}

#[tokio::test]
async fn email_filters_fold_case_per_unicode() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        insert(&s, o.id, &people()).await;
        for (f, want) in [
            (r#"emails.value eq "Élodie@Exemple.org""#, &["u02"][..]),
            (r#"emails.value eq "élodie@exemple.org""#, &["u02"]),
            (r#"emails.value eq "ÉLODIE@EXEMPLE.ORG""#, &["u02"]),
            (r#"emails.value sw "ÉLO""#, &["u02"]),
            (r#"emails.value co "lodie@EXEMPLE""#, &["u02"]),
            (
                r#"emails[type eq "work" and value eq "élodie@exemple.org"]"#,
                &["u02"],
            ),
            (
                r#"emails[type eq "home" and value eq "élodie@exemple.org"]"#,
                &[],
            ),
            (
                r#"emails.value ne "ÉLODIE@exemple.org" and userName eq "elodie""#,
                &[],
            ),
        ] {
            assert_eq!(matching(&s, o.id, ResourceKind::User, f).await, want, "{f}");
        }
    })
    .await;
}

#[tokio::test]
async fn user_display_name_folds_case_per_unicode() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        insert(
            &s,
            o.id,
            &[
                user_doc("u1", "a", json!({"displayName": "Élodie Ünal"})),
                user_doc("u2", "b", json!({"displayName": "ÅSE"})),
                user_doc("u3", "c", json!({"displayName": "elodie"})),
            ],
        )
        .await;
        for (f, want) in [
            (r#"displayName eq "élodie ünal""#, &["u1"][..]),
            (r#"displayName eq "ÉLODIE ÜNAL""#, &["u1"]),
            (r#"displayName sw "éLO""#, &["u1"]),
            (r#"displayName co "DIE Ü""#, &["u1"]),
            (r#"displayName ew "ünal""#, &["u1"]),
            (r#"displayName eq "åse""#, &["u2"]),
            (r#"displayName sw "ELO""#, &["u3"]),
            (r#"displayName ne "ÅsE""#, &["u1", "u3"]),
        ] {
            assert_eq!(matching(&s, o.id, ResourceKind::User, f).await, want, "{f}");
        }
        // A rename keeps the lower-cased column current.
        let mut tx = s.begin().await.unwrap();
        tx.update_resource(
            o.id,
            &user_doc("u2", "b", json!({"displayName": "Øystein"})),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            matching(&s, o.id, ResourceKind::User, r#"displayName eq "ØYSTEIN""#).await,
            ["u2"]
        );
    })
    .await;
}

#[tokio::test]
async fn migration_backfills_existing_resources() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        insert(&s, o.id, &people()).await;
        insert(
            &s,
            o.id,
            &[user_doc("u99", "z", json!({"displayName": "ÉLODIE"}))],
        )
        .await;
        // The state a database had before the migration: no derived data, and
        // the job the migration leaves for the store.
        execute(&s, "DELETE FROM attr_values").await;
        execute(&s, "UPDATE resources SET display_name_lc = NULL").await;
        execute(
            &s,
            "INSERT INTO store_backfills (name) VALUES ('derived_values')",
        )
        .await;
        assert!(matching(&s, o.id, ResourceKind::User, r#"emails pr"#)
            .await
            .is_empty());

        s.migrate().await.unwrap();
        assert_same_as_json_scan(&s, o.id, "backfilled").await;
        assert_eq!(
            matching(
                &s,
                o.id,
                ResourceKind::User,
                r#"emails.value eq "élodie@exemple.org""#
            )
            .await,
            ["u02"]
        );
        assert_eq!(
            matching(&s, o.id, ResourceKind::User, r#"displayName eq "élodie""#).await,
            ["u99"]
        );
        // Done once: migrating again changes nothing.
        s.migrate().await.unwrap();
        assert_same_as_json_scan(&s, o.id, "migrated twice").await;
    })
    .await;
}

#[tokio::test]
async fn email_lookups_use_the_index() {
    for_each_store(|s| async move {
        let o = org(&s, "o").await;
        let users: Vec<ResourceRow> = (0..2000)
            .map(|i| {
                user_doc(
                    &format!("u{i:05}"),
                    &format!("user{i}"),
                    json!({
                        "emails": [
                            {"value": format!("user{i}@example.com"), "type": "work", "primary": true},
                            {"value": format!("u{i}@home.example"), "type": "home"}
                        ],
                        "phoneNumbers": [{"value": format!("+1 555 {i:04}"), "type": "work"}]
                    }),
                )
            })
            .collect();
        insert(&s, o.id, &users).await;
        for f in [
            r#"emails.value eq "user1234@example.com""#,
            r#"emails[type eq "work" and value eq "user1234@example.com"]"#,
            r#"emails.value sw "user1234@""#,
            r#"phoneNumbers.value eq "+1 555 1234""#,
        ] {
            let filter = scim::Filter::parse(f).unwrap();
            let plan = filter_plan(&s, o.id, ResourceKind::User, &filter).await;
            assert!(plan.contains("attr_values_value"), "{f}: {plan}");
            // The resources are reached by key, never scanned.
            assert!(!plan.contains("SCAN res"), "{f}: {plan}");
            assert!(!plan.contains("Seq Scan on resources"), "{f}: {plan}");
            let ids = ids_matching(&s, o.id, ResourceKind::User, &filter, false).await;
            assert_eq!(ids, ["u01234"], "{f}");
        }
    })
    .await;
}

/// A table just filled has no planner statistics yet: on SQLite (which has
/// none until `Store::optimize` or a new writer connection gathers them),
/// lookups by userName and e-mail must still go through their own index, not
/// read the organisation in creation order and test every row. PostgreSQL's
/// planner is left to autovacuum's statistics.
#[tokio::test]
async fn lookups_use_their_index_before_statistics_exist() {
    for_each_store(|s| async move {
        if s.dialect() != store::Dialect::Sqlite {
            return;
        }
        let o = org(&s, "o").await;
        let users: Vec<ResourceRow> = (0..2000)
            .map(|i| {
                user_doc(
                    &format!("u{i:05}"),
                    &format!("user{i}"),
                    json!({"externalId": format!("ext{i}"),
                           "emails": [{"value": format!("user{i}@example.com"), "type": "work"}]}),
                )
            })
            .collect();
        insert(&s, o.id, &users).await;
        for (f, index) in [
            (r#"userName eq "user1234""#, "name_lc"),
            (
                r#"emails.value eq "user1234@example.com""#,
                "attr_values_value",
            ),
        ] {
            let filter = scim::Filter::parse(f).unwrap();
            let plan = filter_plan_without_statistics(&s, o.id, ResourceKind::User, &filter).await;
            assert!(
                index.split('|').any(|i| plan.contains(i)),
                "{f}: {index} not in {plan}"
            );
            assert!(!plan.contains("resources_created"), "{f}: {plan}");
            let ids = ids_matching(&s, o.id, ResourceKind::User, &filter, false).await;
            assert_eq!(ids, ["u01234"], "{f}");
        }
    })
    .await;
}
