//! Reconciliation against the Nextcloud and Rocket.Chat fakes, on every store
//! under test: the worker provisions a directory, the app is then changed behind
//! Liaison's back (an account deleted, renamed, disabled, a membership removed,
//! an extra account added), a dry run reports exactly that drift, a repair run
//! removes it (the extra account stays), and `remove_extra` disables the extra.

use std::collections::BTreeSet;
use std::time::Duration;

use directory::{Directory, Limits, OrgScope, Projection};
use provision::connectors::nextcloud::{NextcloudConfig, NextcloudConnector};
use provision::connectors::rocketchat::{RocketChatConfig, RocketChatConnector};
use provision::fakes::{spawn_nextcloud, spawn_rocketchat, NcUser, RcUser};
use provision::sync::{reconcile, AppReport, SyncOptions, SyncProgress};
use provision::worker::{Worker, WorkerConfig, WorkerMetrics};
use provision::{Adopt, AppKind, Connector, Deprovision, GroupsAs};
use serde_json::json;
use store::{AppRecord, ResourceKind, Store};

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

struct Org {
    dir: Directory,
    org_id: i64,
}

impl Org {
    async fn new(store: &Store) -> Org {
        let mut tx = store.begin().await.unwrap();
        let org = tx.create_org("acme", "Acme").await.unwrap();
        tx.commit().await.unwrap();
        Org {
            dir: Directory::new(store.clone(), Limits::default()),
            org_id: org.id,
        }
    }

    fn scope(&self) -> OrgScope<'_> {
        OrgScope {
            org_id: self.org_id,
            base_url: "http://liaison.test/o/acme/scim/v2",
        }
    }

    async fn user(&self, name: &str, display: &str, active: bool) -> String {
        let body = json!({
            "schemas": [U],
            "userName": name,
            "displayName": display,
            "active": active,
            "emails": [{"value": format!("{name}@example.org"), "primary": true}],
        });
        let r = self
            .dir
            .create(
                self.scope(),
                ResourceKind::User,
                &body,
                &Projection::default(),
            )
            .await
            .unwrap();
        r.json["id"].as_str().unwrap().to_owned()
    }

    async fn group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<_> = members.iter().map(|m| json!({"value": m})).collect();
        let body = json!({"schemas": [G], "displayName": name, "members": members});
        let r = self
            .dir
            .create(
                self.scope(),
                ResourceKind::Group,
                &body,
                &Projection::default(),
            )
            .await
            .unwrap();
        r.json["id"].as_str().unwrap().to_owned()
    }

    async fn app(
        &self,
        store: &Store,
        kind: AppKind,
        base_url: &str,
        credential_var: &str,
        groups_as: GroupsAs,
        deprovision: Deprovision,
    ) -> AppRecord {
        let mut tx = store.begin().await.unwrap();
        let app = tx
            .create_app(&AppRecord {
                id: 0,
                org_id: self.org_id,
                name: kind.as_str().to_owned(),
                kind,
                base_url: base_url.to_owned(),
                credential: format!("env:{credential_var}"),
                groups_as,
                deprovision,
                adopt: Adopt::Never,
                settings: json!({}),
                created: time::OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        tx.commit().await.unwrap();
        app
    }
}

/// Runs the outbox until it is empty, through the registry's connector.
async fn drain(store: &Store, label: &str) {
    let worker = Worker::new(
        store.clone(),
        WorkerConfig {
            // One at a time: a group and its memberships delivered at once race
            // to create the group (a collision on Rocket.Chat).
            concurrency: 1,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..WorkerConfig::default()
        },
        WorkerMetrics::default(),
    );
    let round = worker.drain().await.unwrap();
    if round.poisoned + round.retried > 0 {
        let org = store.org_by_slug("acme").await.unwrap().unwrap();
        let rows = store.outbox_rows(org.id, None, false, 100).await.unwrap();
        let errors: Vec<_> = rows.iter().map(|r| &r.delivery).collect();
        panic!("{label}: {round:?}: {errors:#?}");
    }
    assert!(round.delivered > 0, "{label}: nothing delivered");
}

/// (resource, kind, name, fields) of every drift item, for exact assertions.
fn items(report: &AppReport) -> BTreeSet<String> {
    report
        .drift
        .iter()
        .map(|d| {
            let v = serde_json::to_value(d).unwrap();
            format!(
                "{} {} {} [{}]",
                v["resource"].as_str().unwrap(),
                v["kind"].as_str().unwrap(),
                d.name,
                d.fields.join(",")
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn run(
    store: &Store,
    app: &AppRecord,
    conn: &dyn Connector,
    dry_run: bool,
    remove_extra: bool,
) -> AppReport {
    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |p: SyncProgress| seen.lock().unwrap().push(p);
    let opts = SyncOptions {
        dry_run,
        remove_extra,
        adopt: false,
    };
    let report = reconcile(store, app, conn, &opts, &progress).await.unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(matches!(seen.first(), Some(SyncProgress::Listing { .. })));
    assert!(matches!(seen.last(), Some(SyncProgress::Done { .. })));
    report
}

#[tokio::test]
async fn nextcloud_drift_is_reported_then_repaired() {
    for (engine, store) in store::testing::stores_under_test().await {
        let fake = spawn_nextcloud("admin", "app-pw").await.unwrap();
        let var = format!("LIAISON_SYNC_NC_{}", engine.to_uppercase());
        std::env::set_var(&var, "admin:app-pw");
        let org = Org::new(&store).await;
        let app = org
            .app(
                &store,
                AppKind::Nextcloud,
                &fake.base_url(),
                &var,
                GroupsAs::Groups,
                Deprovision::Disable,
            )
            .await;
        let conn = NextcloudConnector::new(NextcloudConfig {
            base_url: fake.base_url(),
            user: "admin".into(),
            app_password: "app-pw".into(),
            quota: None,
        })
        .unwrap();

        let alice = org.user("alice", "Alice A", true).await;
        let bob = org.user("bob", "Bob B", true).await;
        let _carol = org.user("carol", "Carol C", false).await;
        let _dave = org.user("dave", "Dave D", true).await;
        let staff = org.group("Staff", &[&alice, &bob]).await;
        drain(&store, engine).await;
        // Signing in changes the app's last activity, which is never drift.
        fake.set_last_login("alice", 1_700_000_000_000);
        fake.set_last_login("carol", 1_600_000_000_000);

        // In sync: only the app's own admin group is extra.
        let clean = run(&store, &app, &conn, true, false).await;
        assert_eq!(items(&clean), set(&["group extra admin []"]), "{engine}");
        assert_eq!(clean.remaining, 0, "{engine}");

        let gid = provision::connectors::nextcloud::group_id_for(&staff).unwrap();
        fake.with_state(|s| {
            s.users.remove("bob");
            let a = s.users.get_mut("alice").unwrap();
            a.display_name = "Mallory's idea".into();
            a.groups.remove(&gid);
            s.users.get_mut("dave").unwrap().enabled = false;
            s.users.get_mut("carol").unwrap().enabled = true;
            let mut extra = NcUser::new("mallory");
            extra.display_name = "Mallory".into();
            s.users.insert("mallory".into(), extra);
        });

        let dry = run(&store, &app, &conn, true, false).await;
        assert_eq!(
            items(&dry),
            set(&[
                "user missing bob []",
                "user different alice [display_name]",
                "user different carol [active]",
                "user different dave [active]",
                "membership missing Staff/alice []",
                "membership missing Staff/bob []",
                "user extra mallory []",
                "group extra admin []",
            ]),
            "{engine}"
        );
        assert_eq!(dry.repaired, 0);
        assert_eq!(dry.remaining, 6, "{engine}: extras do not count");
        assert!(
            !fake.state().users.contains_key("bob"),
            "{engine}: dry run changed the app"
        );

        let fixed = run(&store, &app, &conn, false, false).await;
        assert!(fixed.errors.is_empty(), "{engine}: {:?}", fixed.errors);
        assert_eq!(fixed.repaired, 6, "{engine}");
        assert_eq!(fixed.remaining, 0, "{engine}: {:?}", fixed.left);
        let st = fake.state();
        assert!(st.users.contains_key("bob"), "{engine}");
        assert_eq!(st.users["alice"].display_name, "Alice A");
        assert_eq!(st.users["alice"].last_login, 1_700_000_000, "{engine}");
        assert!(st.users["dave"].enabled);
        assert!(!st.users["carol"].enabled);
        let members: BTreeSet<_> = st.members(&gid).into_iter().collect();
        assert_eq!(members, set(&["alice", "bob"]), "{engine}");
        assert!(st.users["mallory"].enabled, "{engine}: extra touched");
        // The fresh bob is linked again.
        let link = store.link(app.id, &bob).await.unwrap().unwrap();
        assert_eq!(link.app_ref.as_deref(), Some("bob"));

        let again = run(&store, &app, &conn, true, false).await;
        assert_eq!(
            items(&again),
            set(&["user extra mallory []", "group extra admin []"]),
            "{engine}"
        );

        // Asked to remove extras: the account is disabled (policy `disable`),
        // the admin group is left alone.
        let dry_extra = run(&store, &app, &conn, true, true).await;
        assert_eq!(dry_extra.remaining, 1, "{engine}");
        let removed = run(&store, &app, &conn, false, true).await;
        assert_eq!(removed.repaired, 1, "{engine}");
        assert_eq!(removed.remaining, 0, "{engine}: {:?}", removed.left);
        let st = fake.state();
        assert!(!st.users["mallory"].enabled, "{engine}");
        assert!(
            st.users["admin"].enabled,
            "{engine}: service account touched"
        );
        assert!(st.groups.contains_key("admin"), "{engine}");
    }
}

#[tokio::test]
async fn rocketchat_drift_is_reported_then_repaired() {
    for (engine, store) in store::testing::stores_under_test().await {
        let fake = spawn_rocketchat("adminid", "tok").await.unwrap();
        let var = format!("LIAISON_SYNC_RC_{}", engine.to_uppercase());
        std::env::set_var(&var, "adminid:tok");
        let org = Org::new(&store).await;
        let app = org
            .app(
                &store,
                AppKind::Rocketchat,
                &fake.base_url(),
                &var,
                GroupsAs::Rooms,
                Deprovision::Delete,
            )
            .await;
        let conn = RocketChatConnector::new(RocketChatConfig {
            base_url: fake.base_url(),
            user_id: "adminid".into(),
            token: "tok".into(),
            groups_as: GroupsAs::Rooms,
        })
        .unwrap();

        let alice = org.user("alice", "Alice A", true).await;
        let bob = org.user("bob", "Bob B", true).await;
        org.group("Board members", &[&alice, &bob]).await;
        drain(&store, engine).await;
        // Signing in changes the app's last activity, which is never drift.
        let alice_rc = fake.state().user_by_username("alice").unwrap().id.clone();
        fake.set_last_login(&alice_rc, 1_700_000_000_000);

        let clean = run(&store, &app, &conn, true, false).await;
        assert_eq!(
            items(&clean),
            BTreeSet::new(),
            "{engine}: rocket.cat is not extra"
        );

        let alice_ref = store
            .link(app.id, &alice)
            .await
            .unwrap()
            .unwrap()
            .app_ref
            .unwrap();
        let bob_ref = store
            .link(app.id, &bob)
            .await
            .unwrap()
            .unwrap()
            .app_ref
            .unwrap();
        fake.with_state(|s| {
            s.users.get_mut(&alice_ref).unwrap().name = "Somebody Else".into();
            s.users.get_mut(&bob_ref).unwrap().active = false;
            let room = s
                .rooms
                .values_mut()
                .find(|r| r.name == "Board-members")
                .unwrap();
            room.members.remove(&alice_ref);
            s.users
                .insert("x1".into(), RcUser::new("x1", "intruder", "x@example.org"));
        });

        let dry = run(&store, &app, &conn, true, false).await;
        assert_eq!(
            items(&dry),
            set(&[
                "user different alice [display_name]",
                "user different bob [active]",
                "membership missing Board members/alice []",
                "user extra intruder []",
            ]),
            "{engine}"
        );
        assert_eq!(dry.remaining, 3, "{engine}");

        let fixed = run(&store, &app, &conn, false, false).await;
        assert!(fixed.errors.is_empty(), "{engine}: {:?}", fixed.errors);
        assert_eq!(fixed.remaining, 0, "{engine}: {:?}", fixed.left);
        let st = fake.state();
        assert_eq!(st.users[&alice_ref].name, "Alice A");
        assert!(st.users[&bob_ref].active);
        assert!(st
            .room_by_name("Board-members")
            .unwrap()
            .members
            .contains(&alice_ref));
        assert!(st.users.contains_key("x1"), "{engine}: extra touched");

        // Policy `delete`: the extra account goes; the bot and admin stay.
        let removed = run(&store, &app, &conn, false, true).await;
        assert_eq!(removed.remaining, 0, "{engine}: {:?}", removed.left);
        let st = fake.state();
        assert!(!st.users.contains_key("x1"), "{engine}");
        assert!(st.users.contains_key("rocket.cat"), "{engine}");
        assert!(st.users.contains_key("adminid"), "{engine}");
    }
}

#[tokio::test]
async fn the_periodic_reconciliation_repairs_and_stops_on_shutdown() {
    for (engine, store) in store::testing::stores_under_test().await {
        let fake = spawn_nextcloud("admin", "app-pw").await.unwrap();
        let var = format!("LIAISON_SYNC_PERIODIC_{}", engine.to_uppercase());
        std::env::set_var(&var, "admin:app-pw");
        let org = Org::new(&store).await;
        org.app(
            &store,
            AppKind::Nextcloud,
            &fake.base_url(),
            &var,
            GroupsAs::Groups,
            Deprovision::Disable,
        )
        .await;
        org.user("erin", "Erin E", true).await;
        drain(&store, engine).await;
        fake.with_state(|s| {
            s.users.remove("erin");
            s.users.insert("extra".into(), NcUser::new("extra"));
        });

        // Another process holding the lock makes rounds skip (PostgreSQL only).
        let held = store
            .try_advisory_lock(provision::sync::RECONCILE_LOCK_KEY)
            .await
            .unwrap()
            .unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(provision::sync::run_periodic(
            store.clone(),
            Duration::from_millis(50),
            stopped,
        ));
        if engine == "postgres" {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                !fake.state().users.contains_key("erin"),
                "{engine}: ran without the lock"
            );
        }
        held.release().await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !fake.state().users.contains_key("erin") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{engine}: not repaired"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            fake.state().users["extra"].enabled,
            "{engine}: extra touched"
        );
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("stopped on shutdown")
            .unwrap();
    }
}
