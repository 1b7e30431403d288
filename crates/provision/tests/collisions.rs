//! Collisions and adoption, end to end on every store under test: directory
//! users whose names are taken in the app by accounts Liaison did not create
//! (the fake Nextcloud's own admin among them) end as collisions, change
//! nothing in the app, and show in the link, the metrics and the sync report;
//! adoption happens only when the app's setting allows it and the run asks.

use directory::{Directory, Limits, OrgScope, Projection};
use provision::connectors::nextcloud::{NextcloudConfig, NextcloudConnector, MARKER_GROUP};
use provision::fakes::{spawn_nextcloud, FakeApp, NcUser, NextcloudState};
use provision::sync::{reconcile, AppReport, SyncError, SyncOptions};
use provision::worker::{DeliveryLabels, Worker, WorkerConfig, WorkerMetrics};
use provision::Adopt;
use serde_json::json;
use store::{AppRecord, ResourceKind, Store};

struct Setup {
    store: Store,
    fake: FakeApp<NextcloudState>,
    app: AppRecord,
    conn: NextcloudConnector,
    dir: Directory,
    org_id: i64,
}

async fn setup(store: Store, engine: &str, test: &str) -> Setup {
    let fake = spawn_nextcloud("admin", "app-pw").await.unwrap();
    fake.with_state(|s| {
        let admin = s.users.get_mut("admin").unwrap();
        admin.email = "hoster@example.net".into();
        admin.display_name = "Hoster".into();
    });
    let var = format!("LIAISON_COLLISION_NC_{test}_{}", engine.to_uppercase());
    std::env::set_var(&var, "admin:app-pw");
    let mut tx = store.begin().await.unwrap();
    let org = tx.create_org("acme", "Acme").await.unwrap();
    let app = tx
        .create_app(&AppRecord {
            id: 0,
            org_id: org.id,
            name: "nextcloud".into(),
            kind: store::AppKind::Nextcloud,
            base_url: fake.base_url(),
            credential: format!("env:{var}"),
            groups_as: store::GroupsAs::Groups,
            deprovision: store::Deprovision::Disable,
            adopt: store::Adopt::Never,
            settings: json!({}),
            created: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let conn = NextcloudConnector::new(NextcloudConfig {
        base_url: fake.base_url(),
        user: "admin".into(),
        app_password: "app-pw".into(),
        quota: None,
    })
    .unwrap();
    Setup {
        dir: Directory::new(store.clone(), Limits::default()),
        store,
        fake,
        app,
        conn,
        org_id: org.id,
    }
}

impl Setup {
    async fn user(&self, name: &str, email: &str, active: bool) -> String {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "displayName": format!("{name} from the IdP"),
            "active": active,
            "emails": [{"value": email, "primary": true}],
        });
        let scope = OrgScope {
            org_id: self.org_id,
            base_url: "http://liaison.test/o/acme/scim/v2",
        };
        let r = self
            .dir
            .create(scope, ResourceKind::User, &body, &Projection::default())
            .await
            .unwrap();
        r.json["id"].as_str().unwrap().to_owned()
    }

    async fn sync(&self, dry_run: bool, adopt: bool) -> Result<AppReport, SyncError> {
        let app = self
            .store
            .app_by_id(self.app.id)
            .await
            .unwrap()
            .expect("app");
        let opts = SyncOptions {
            dry_run,
            remove_extra: false,
            adopt,
        };
        reconcile(&self.store, &app, &self.conn, &opts, &|_| {}).await
    }

    async fn set_adopt(&self, adopt: Adopt) {
        let mut tx = self.store.begin().await.unwrap();
        tx.set_app_adopt(self.org_id, "nextcloud", adopt)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn a_scim_user_named_like_the_nextcloud_admin_is_a_collision_and_the_admin_is_untouched() {
    for (engine, store) in store::testing::stores_under_test().await {
        let s = setup(store, engine, "ADMIN").await;
        let admin_before = s.fake.state().users["admin"].clone();
        // The exact attack: POST /Users with userName = the admin Liaison signs
        // in with, another e-mail, inactive.
        let id = s.user("admin", "attacker@example.org", false).await;
        let metrics = WorkerMetrics::default();
        let worker = Worker::new(s.store.clone(), WorkerConfig::default(), metrics.clone());
        let round = worker.drain().await.unwrap();
        assert_eq!(
            (round.delivered, round.poisoned),
            (0, 1),
            "{engine}: {round:?}"
        );
        let admin = s.fake.state().users["admin"].clone();
        assert_eq!(admin, admin_before, "{engine}");
        assert!(
            admin.enabled && admin.email == "hoster@example.net" && admin.display_name == "Hoster"
        );

        let link = s.store.link(s.app.id, &id).await.unwrap().expect("link");
        assert_eq!(link.status, "collision", "{engine}");
        assert!(link.app_ref.is_none(), "{engine}");
        let collisions = metrics
            .deliveries
            .get_or_create(&DeliveryLabels {
                app: "nextcloud".into(),
                result: "collision".into(),
            })
            .get();
        assert_eq!(collisions, 1, "{engine}");

        // Reconciliation reports it as a collision and changes nothing either,
        // even when the app allows adoption: the admin is never adoptable.
        s.set_adopt(Adopt::ByUsername).await;
        let report = s.sync(false, true).await.unwrap();
        assert!(
            report.adoptable.is_empty(),
            "{engine}: {:?}",
            report.adoptable
        );
        assert_eq!(report.collisions.len(), 1, "{engine}: {report:?}");
        assert_eq!(report.collisions[0].id, id);
        assert_eq!(s.fake.state().users["admin"], admin_before, "{engine}");
    }
}

#[tokio::test]
async fn an_existing_account_is_adopted_only_when_the_app_allows_it_and_the_run_asks() {
    for (engine, store) in store::testing::stores_under_test().await {
        let s = setup(store, engine, "ADOPT").await;
        s.fake.with_state(|st| {
            let mut bob = NcUser::new("bob");
            bob.email = "bob@example.org".into();
            bob.display_name = "Bob (before Liaison)".into();
            st.users.insert("bob".into(), bob);
        });
        let bob_before = s.fake.state().users["bob"].clone();
        let id = s.user("bob", "bob@example.org", true).await;
        let worker = Worker::new(
            s.store.clone(),
            WorkerConfig::default(),
            WorkerMetrics::default(),
        );
        let round = worker.drain().await.unwrap();
        assert_eq!(round.poisoned, 1, "{engine}: {round:?}");
        assert_eq!(s.fake.state().users["bob"], bob_before, "{engine}");

        // Default `never`: nothing adoptable, and asking is refused.
        let report = s.sync(true, false).await.unwrap();
        assert!(report.adoptable.is_empty(), "{engine}");
        assert!(matches!(
            s.sync(false, true).await,
            Err(SyncError::AdoptionNotAllowed(_))
        ));
        // A plain run reports the collision and leaves bob alone.
        let report = s.sync(false, false).await.unwrap();
        assert_eq!(report.collisions.len(), 1, "{engine}: {report:?}");
        assert_eq!(s.fake.state().users["bob"], bob_before, "{engine}");

        for mode in [Adopt::ByUsername, Adopt::ByEmail] {
            s.set_adopt(mode).await;
            // The dry run lists what would be adopted, and changes nothing.
            let report = s.sync(true, true).await.unwrap();
            assert_eq!(report.adoptable.len(), 1, "{engine} {mode:?}");
            assert_eq!(report.adoptable[0].app_id, "bob");
            assert_eq!(report.adoptable[0].by, mode);
            assert_eq!(report.adopted, 0);
            assert_eq!(s.fake.state().users["bob"], bob_before, "{engine}");
        }
        let report = s.sync(false, true).await.unwrap();
        assert_eq!(report.adopted, 1, "{engine}: {report:?}");
        assert!(report.collisions.is_empty(), "{engine}: {report:?}");
        let bob = s.fake.state().users["bob"].clone();
        assert!(bob.groups.contains(MARKER_GROUP), "{engine}");
        assert_eq!(bob.display_name, "bob from the IdP");
        let link = s.store.link(s.app.id, &id).await.unwrap().expect("link");
        assert_eq!(
            (link.status.as_str(), link.app_ref.as_deref()),
            ("ok", Some("bob"))
        );
        // Adopted once: nothing left to adopt, nothing left drifting.
        let report = s.sync(true, false).await.unwrap();
        assert!(report.adoptable.is_empty(), "{engine}");
        assert_eq!(report.remaining, 0, "{engine}: {:?}", report.drift);
    }
}
