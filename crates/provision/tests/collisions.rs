//! Collisions and adoption, end to end on every store under test: directory
//! users whose names are taken in the app by accounts Liaison did not create
//! (the fake Nextcloud's own admin among them) end as collisions, change
//! nothing in the app, and show in the link, the metrics and the sync report;
//! adoption happens only when the app's setting allows it and the run asks, and
//! the adopted account is written by an outbox delivery (a forced repair).

use provision::connectors::nextcloud::{NextcloudConfig, NextcloudConnector, MARKER_GROUP};
use provision::fakes::{spawn_nextcloud, FakeApp, NcUser, NextcloudState};
use provision::sync::{reconcile, AppReport, DriftKind, SyncError, SyncOptions};
use provision::worker::{DeliveryLabels, Worker, WorkerConfig, WorkerMetrics};
use provision::{Adopt, AppGroup, AppKind, AppUser, Connector, DeliveryError, GroupSpec, UserSpec};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use store::{Store, Target};

mod common;

use common::{AppSpec, Org};

struct Setup {
    org: Org,
    fake: FakeApp<NextcloudState>,
    conn: NextcloudConnector,
}

async fn setup(store: Store, engine: &str, test: &str) -> Setup {
    let fake = spawn_nextcloud("admin", "app-pw").await.unwrap();
    fake.with_state(|s| {
        let admin = s.users.get_mut("admin").unwrap();
        admin.email = "hoster@example.net".into();
        admin.display_name = "Hoster".into();
    });
    let org = Org::new(
        store,
        AppSpec {
            name: "nextcloud",
            kind: store::AppKind::Nextcloud,
            base_url: fake.base_url(),
            credential_var: format!("LIAISON_COLLISION_NC_{test}_{}", engine.to_uppercase()),
            credential: "admin:app-pw",
            groups_as: store::GroupsAs::Groups,
        },
    )
    .await;
    let conn = nextcloud(&fake);
    Setup { org, fake, conn }
}

impl Setup {
    async fn user(&self, name: &str, email: &str, active: bool) -> String {
        self.org
            .user(json!({
                "userName": name,
                "displayName": format!("{name} from the IdP"),
                "active": active,
                "emails": [{"value": email, "primary": true}],
            }))
            .await
    }

    async fn sync(&self, dry_run: bool, adopt: bool) -> Result<AppReport, SyncError> {
        self.sync_through(&self.conn, dry_run, adopt).await
    }

    /// A run through `conn` (the app as read again: its settings change).
    async fn sync_through(
        &self,
        conn: &dyn Connector,
        dry_run: bool,
        adopt: bool,
    ) -> Result<AppReport, SyncError> {
        let app = self
            .org
            .store
            .app_by_id(self.org.app.id)
            .await
            .unwrap()
            .expect("app");
        let opts = SyncOptions {
            dry_run,
            remove_extra: false,
            adopt,
        };
        reconcile(&self.org.store, &app, conn, &opts, &|_| {}).await
    }

    async fn set_adopt(&self, adopt: Adopt) {
        let mut tx = self.org.store.begin().await.unwrap();
        tx.set_app_adopt(self.org.org_id, "nextcloud", adopt)
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
        let worker = Worker::new(
            s.org.store.clone(),
            WorkerConfig::default(),
            metrics.clone(),
        );
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

        let link = s
            .org
            .store
            .link(s.org.app.id, &id)
            .await
            .unwrap()
            .expect("link");
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
            s.org.store.clone(),
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
        let link = s
            .org
            .store
            .link(s.org.app.id, &id)
            .await
            .unwrap()
            .expect("link");
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

fn nextcloud(fake: &FakeApp<NextcloudState>) -> NextcloudConnector {
    NextcloudConnector::new(NextcloudConfig {
        base_url: fake.base_url(),
        user: "admin".into(),
        app_password: "app-pw".into(),
        quota: None,
    })
    .unwrap()
}

/// The Nextcloud connector, whose next `failures` account writes fail as an
/// app that does not answer would.
struct Flaky {
    inner: NextcloudConnector,
    failures: AtomicUsize,
}

#[async_trait::async_trait]
impl Connector for Flaky {
    fn kind(&self) -> AppKind {
        self.inner.kind()
    }
    async fn upsert_user(
        &self,
        user: &UserSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(DeliveryError::Transient("the app did not answer".into()));
        }
        self.inner.upsert_user(user, known_id).await
    }
    async fn set_user_active(&self, app_id: &str, active: bool) -> Result<(), DeliveryError> {
        self.inner.set_user_active(app_id, active).await
    }
    async fn delete_user(&self, app_id: &str) -> Result<(), DeliveryError> {
        self.inner.delete_user(app_id).await
    }
    async fn upsert_group(
        &self,
        group: &GroupSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        self.inner.upsert_group(group, known_id).await
    }
    async fn delete_group(&self, app_id: &str) -> Result<(), DeliveryError> {
        self.inner.delete_group(app_id).await
    }
    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        self.inner.add_member(group_id, user_id).await
    }
    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        self.inner.remove_member(group_id, user_id).await
    }
    async fn list_users(&self) -> Result<Vec<AppUser>, DeliveryError> {
        self.inner.list_users().await
    }
    async fn list_groups(&self) -> Result<Vec<AppGroup>, DeliveryError> {
        self.inner.list_groups().await
    }
    fn service_account(&self) -> Option<String> {
        self.inner.service_account()
    }
    fn protected_accounts(&self) -> Vec<String> {
        self.inner.protected_accounts()
    }
    fn app_user_name(&self, user_name: &str) -> String {
        self.inner.app_user_name(user_name)
    }
    fn app_group_name(&self, display_name: &str) -> String {
        self.inner.app_group_name(display_name)
    }
}

#[tokio::test]
async fn an_adopted_account_is_written_by_an_outbox_delivery_not_beside_it() {
    for (engine, store) in store::testing::stores_under_test().await {
        let s = setup(store, engine, "QUEUED").await;
        s.fake.with_state(|st| {
            let mut bob = NcUser::new("bob");
            bob.email = "bob@example.org".into();
            bob.display_name = "Bob (before Liaison)".into();
            st.users.insert("bob".into(), bob);
        });
        let bob_before = s.fake.state().users["bob"].clone();
        let id = s.user("bob", "bob@example.org", true).await;
        let worker = Worker::new(
            s.org.store.clone(),
            WorkerConfig::default(),
            WorkerMetrics::default(),
        );
        assert_eq!(worker.drain().await.unwrap().poisoned, 1, "{engine}");
        s.set_adopt(Adopt::ByUsername).await;

        // The app does not answer the run's first write. The adoption is an
        // outbox delivery: its failure is recorded on the row, which stays
        // queued for the worker, and the run wrote nothing beside it.
        let flaky = Flaky {
            inner: nextcloud(&s.fake),
            failures: AtomicUsize::new(1),
        };
        let report = s.sync_through(&flaky, false, true).await.unwrap();
        assert_eq!(report.adoptable.len(), 1, "{engine}: {report:?}");
        assert_eq!(report.adopted, 0, "{engine}: {report:?}");
        assert!(report.collisions.is_empty(), "{engine}: {report:?}");
        assert_eq!(report.errors.len(), 1, "{engine}: {:?}", report.errors);
        assert!(
            report.errors[0].starts_with("adopt user bob: "),
            "{engine}: {:?}",
            report.errors
        );
        assert_eq!(s.fake.state().users["bob"], bob_before, "{engine}");
        let link = s
            .org
            .store
            .link(s.org.app.id, &id)
            .await
            .unwrap()
            .expect("link");
        assert_eq!(
            (link.status.as_str(), link.app_ref.as_deref()),
            ("retrying", Some("bob")),
            "{engine}"
        );
        let rows = s
            .org
            .store
            .outbox_rows(s.org.org_id, Some(s.org.app.id), false, 10)
            .await
            .unwrap();
        let rows: Vec<_> = rows.into_iter().map(|r| r.delivery).collect();
        assert_eq!(rows.len(), 1, "{engine}: {rows:?}");
        let row = &rows[0];
        assert_eq!(
            (
                row.target,
                row.resource_id.as_str(),
                row.attempts,
                row.poisoned
            ),
            (Target::User, id.as_str(), 1, false),
            "{engine}"
        );
        assert!(
            row.last_error
                .as_deref()
                .is_some_and(|e| e.contains("did not answer")),
            "{engine}: {row:?}"
        );
        // It is a forced repair (claimed as one once due, then handed back).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let claimed = loop {
            let batch = s
                .org
                .store
                .claim_repairs(
                    "test:look/0",
                    s.org.app.id,
                    false,
                    8,
                    Duration::from_secs(15),
                )
                .await
                .unwrap();
            if !batch.is_empty() {
                break batch;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{engine}: never due"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(claimed.len(), 1, "{engine}: {claimed:?}");
        assert!(
            claimed[0].forced && claimed[0].resource_id == id,
            "{engine}"
        );
        s.org.store.release_deliveries(&claimed).await.unwrap();

        // The worker adopts the account.
        let round = worker.drain().await.unwrap();
        assert_eq!(
            (round.delivered, round.retried, round.poisoned),
            (1, 0, 0),
            "{engine}: {round:?}"
        );
        let bob = s.fake.state().users["bob"].clone();
        assert!(bob.groups.contains(MARKER_GROUP), "{engine}");
        assert_eq!(bob.display_name, "bob from the IdP", "{engine}");
        let link = s
            .org
            .store
            .link(s.org.app.id, &id)
            .await
            .unwrap()
            .expect("link");
        assert_eq!(
            (link.status.as_str(), link.app_ref.as_deref()),
            ("ok", Some("bob")),
            "{engine}"
        );
        let report = s.sync(true, false).await.unwrap();
        assert!(report.adoptable.is_empty(), "{engine}");
        assert_eq!(report.remaining, 0, "{engine}: {:?}", report.drift);
        let left = s
            .org
            .store
            .outbox_rows(s.org.org_id, None, false, 10)
            .await
            .unwrap();
        assert!(left.is_empty(), "{engine}: {} row(s) left", left.len());
    }
}

#[tokio::test]
async fn an_adoption_recorded_but_never_delivered_is_delivered_by_the_next_run() {
    for (engine, store) in store::testing::stores_under_test().await {
        let s = setup(store, engine, "RESUMED").await;
        // The account already holds what the directory says, but not the marker.
        s.fake.with_state(|st| {
            let mut bob = NcUser::new("bob");
            bob.email = "bob@example.org".into();
            bob.display_name = "bob from the IdP".into();
            st.users.insert("bob".into(), bob);
        });
        let id = s.user("bob", "bob@example.org", true).await;
        let worker = Worker::new(
            s.org.store.clone(),
            WorkerConfig::default(),
            WorkerMetrics::default(),
        );
        assert_eq!(worker.drain().await.unwrap().poisoned, 1, "{engine}");
        // A run recorded the adoption, then stopped before queuing it.
        s.org
            .store
            .record_link(s.org.app.id, &id, Some("bob"), None, "pending", None)
            .await
            .unwrap();
        let report = s.sync(true, false).await.unwrap();
        let items: Vec<_> = report
            .drift
            .iter()
            .filter(|d| d.kind != DriftKind::Extra)
            .map(|d| (d.id.as_deref(), d.kind, d.fields.clone()))
            .collect();
        assert_eq!(
            items,
            vec![(
                Some(id.as_str()),
                DriftKind::Different,
                vec!["link".to_owned()]
            )],
            "{engine}"
        );
        let report = s.sync(false, false).await.unwrap();
        assert_eq!(
            (report.repaired, report.remaining),
            (1, 0),
            "{engine}: {report:?}"
        );
        assert!(
            s.fake.state().users["bob"].groups.contains(MARKER_GROUP),
            "{engine}"
        );
        let link = s
            .org
            .store
            .link(s.org.app.id, &id)
            .await
            .unwrap()
            .expect("link");
        assert_eq!(
            (link.status.as_str(), link.app_ref.as_deref()),
            ("ok", Some("bob")),
            "{engine}"
        );
    }
}
