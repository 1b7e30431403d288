//! Apps as stored: their settings are written from the enums and parsed when a
//! row is read, an unknown stored value refused with a typed error.

use crate::common::*;
use serde_json::json;
use store::testing::{execute, for_each_store};
use store::{Adopt, AppKind, AppRecord, Deprovision, GroupsAs, StoreError};

fn app(org_id: i64, name: &str) -> AppRecord {
    AppRecord {
        id: 0,
        org_id,
        name: name.to_owned(),
        kind: AppKind::Rocketchat,
        base_url: "https://chat.example.org".to_owned(),
        credential: "env:X".to_owned(),
        groups_as: GroupsAs::Spaces,
        deprovision: Deprovision::Delete,
        adopt: Adopt::ByEmail,
        settings: json!({ "quota": "1 GB" }),
        created: at(1_700_000_000),
    }
}

#[tokio::test]
async fn settings_read_back_as_written_and_adopt_changes_alone() {
    for_each_store(|s| async move {
        let o = org(&s, "a").await;
        let mut tx = s.begin().await.unwrap();
        let created = tx.create_app(&app(o.id, "chat")).await.unwrap();
        tx.commit().await.unwrap();
        let mut want = app(o.id, "chat");
        want.id = created.id;
        assert_eq!(created, want);
        assert_eq!(s.app_by_name(o.id, "chat").await.unwrap(), Some(want));

        let mut tx = s.begin().await.unwrap();
        assert!(tx.set_app_adopt(o.id, "chat", Adopt::Never).await.unwrap());
        assert!(!tx.set_app_adopt(o.id, "nope", Adopt::Never).await.unwrap());
        tx.commit().await.unwrap();
        let read = s.app_by_name(o.id, "chat").await.unwrap().unwrap();
        assert_eq!(read.adopt, Adopt::Never);
        assert_eq!(read.settings, json!({ "quota": "1 GB" }));

        let mut tx = s.begin().await.unwrap();
        tx.set_app_adopt(o.id, "chat", Adopt::ByUsername)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let read = s.app_by_name(o.id, "chat").await.unwrap().unwrap();
        assert_eq!(read.adopt, Adopt::ByUsername);
        assert_eq!(read.settings, json!({ "quota": "1 GB" }));
    })
    .await;
}

#[tokio::test]
async fn an_unknown_stored_setting_is_refused_with_a_typed_error() {
    for_each_store(|s| async move {
        let o = org(&s, "b").await;
        let mut tx = s.begin().await.unwrap();
        tx.create_app(&app(o.id, "chat")).await.unwrap();
        tx.commit().await.unwrap();
        let id = o.id;
        for (sql, setting, value) in [
            // (`deprovision` has a CHECK constraint.)
            (
                format!("UPDATE apps SET groups_as = 'Rooms' WHERE org_id = {id}"),
                "groups_as",
                "Rooms",
            ),
            (
                format!(
                    "UPDATE apps SET groups_as = 'rooms', kind = 'exchange' WHERE org_id = {id}"
                ),
                "kind",
                "exchange",
            ),
            (
                format!(
                    "UPDATE apps SET kind = 'scim', settings = '{{\"adopt\":\"always\"}}' \
                     WHERE org_id = {id}"
                ),
                "adopt",
                "always",
            ),
        ] {
            execute(&s, &sql).await;
            for got in [
                s.apps(o.id).await.map(|_| ()),
                s.app_by_name(o.id, "chat").await.map(|_| ()),
                s.all_apps().await.map(|_| ()),
            ] {
                match got {
                    Err(StoreError::UnknownSetting(e)) => {
                        assert_eq!((e.setting, e.value.as_str()), (setting, value));
                    }
                    other => panic!("{setting}: expected UnknownSetting, got {other:?}"),
                }
            }
        }
    })
    .await;
}
