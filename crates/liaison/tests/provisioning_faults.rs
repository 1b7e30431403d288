//! Provisioning through outages, on every store under test: SCIM writes go
//! through the in-process router, the outbox worker delivers them to the fakes of
//! Nextcloud and Rocket.Chat (`provision::fakes`) while they fail (HTTP 503, then
//! refused connections), and after recovery the app holds exactly what the
//! directory holds, each account created once. Permanent errors park deliveries
//! as poison until an operator retries them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::App;
use provision::fakes::{
    spawn_nextcloud, spawn_rocketchat, FakeApp, NextcloudState, Outage, OutageFor,
};
use provision::worker::{Round, Worker, WorkerConfig, WorkerMetrics};
use serde_json::{json, Value};
use store::{AppRecord, ResourceKind, Store};

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const NC_USERS: &str = "/ocs/v2.php/cloud/users";
const NC_GROUPS: &str = "/ocs/v2.php/cloud/groups";

/// A worker with tiny backoffs, so retries come due within milliseconds.
fn worker(store: &Store, max_attempts: i64) -> Arc<Worker> {
    worker_with(store, max_attempts, WorkerConfig::default().concurrency)
}

fn worker_with(store: &Store, max_attempts: i64, concurrency: usize) -> Arc<Worker> {
    let config = WorkerConfig {
        concurrency,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(80),
        max_attempts,
        idle_poll: Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    Worker::new(store.clone(), config, WorkerMetrics::default())
}

/// Adds an app to the organisation `slug` and returns it.
async fn add_app(
    store: &Store,
    slug: &str,
    kind: store::AppKind,
    base_url: &str,
    var: &str,
) -> AppRecord {
    let org = store.org_by_slug(slug).await.unwrap().expect("org exists");
    let mut tx = store.begin().await.unwrap();
    let app = tx
        .create_app(&AppRecord {
            id: 0,
            org_id: org.id,
            name: kind.to_string(),
            kind,
            base_url: base_url.to_string(),
            credential: format!("env:{var}"),
            groups_as: store::GroupsAs::Rooms,
            deprovision: store::Deprovision::Disable,
            adopt: store::Adopt::Never,
            settings: json!({}),
            created: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app
}

/// Pending and poisoned rows of the whole outbox.
async fn outbox(store: &Store) -> (i64, i64) {
    let stats = store.outbox_stats().await.unwrap();
    (
        stats.iter().map(|s| s.pending).sum(),
        stats.iter().map(|s| s.poisoned).sum(),
    )
}

/// Drains until no delivery is pending (waiting for retry times), bounded.
async fn drain_until_empty(store: &Store, worker: &Worker, label: &str) -> Round {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut total = Round::default();
    loop {
        let r = worker.drain().await.unwrap();
        total.delivered += r.delivered;
        total.retried += r.retried;
        total.poisoned += r.poisoned;
        if outbox(store).await.0 == 0 {
            return total;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{label}: the outbox did not empty: {:?}",
            outbox(store).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A few worker rounds spread over `for_ms`, as a running worker would do them.
async fn rounds_during(worker: &Worker, for_ms: u64) -> Round {
    let mut total = Round::default();
    let end = tokio::time::Instant::now() + Duration::from_millis(for_ms);
    while tokio::time::Instant::now() < end {
        let r = worker.drain().await.unwrap();
        total.delivered += r.delivered;
        total.retried += r.retried;
        total.poisoned += r.poisoned;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    total
}

struct Scim<'a> {
    app: &'a App,
    token: String,
    base: String,
}

impl Scim<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let uri = format!("{}{path}", self.base);
        let r = self
            .app
            .call(method.clone(), &uri, Some(&self.token), body, &[])
            .await;
        assert!(
            r.status.is_success(),
            "{}: {method} {uri}: {} {}",
            self.app.label,
            r.status,
            r.body
        );
        r.body
    }

    async fn create_user(&self, name: &str) -> String {
        let body = json!({
            "schemas": [U],
            "userName": name,
            "displayName": format!("{name} Initial"),
            "emails": [{"value": format!("{name}@example.org"), "primary": true}],
        });
        let r = self.send(Method::POST, "/Users", Some(body)).await;
        r["id"].as_str().expect("id").to_owned()
    }

    async fn patch(&self, path: &str, ops: Value) {
        let body = json!({"schemas": [PATCH], "Operations": ops});
        self.send(Method::PATCH, path, Some(body)).await;
    }

    async fn replace(&self, id: &str, attr: &str, value: Value) {
        self.patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": attr, "value": value}]),
        )
        .await;
    }

    async fn create_group(&self, name: &str, members: &[String]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let body = json!({"schemas": [G], "displayName": name, "members": members});
        let r = self.send(Method::POST, "/Groups", Some(body)).await;
        r["id"].as_str().expect("id").to_owned()
    }

    async fn add_member(&self, group: &str, member: &str) {
        self.patch(
            &format!("/Groups/{group}"),
            json!([{"op": "add", "path": "members", "value": [{"value": member}]}]),
        )
        .await;
    }

    async fn remove_member(&self, group: &str, member: &str) {
        self.patch(
            &format!("/Groups/{group}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
        )
        .await;
    }
}

/// A user as an app should hold it: (user name, display name, e-mail, active).
type WantedUser = (String, String, String, bool);

/// Users by user name, and groups by id with their display name and the user
/// names of their members.
type View = (
    BTreeMap<String, WantedUser>,
    BTreeMap<String, (String, BTreeSet<String>)>,
);

/// What the directory holds: users by user name, and each group's display name
/// with the user names of its active direct members (inactive users'
/// memberships are withdrawn until they are reactivated).
async fn directory(store: &Store, org_id: i64) -> View {
    let mut users = BTreeMap::new();
    let mut by_id = BTreeMap::new();
    for row in all(store, org_id, ResourceKind::User).await {
        let spec = provision::deliver::user_spec(&row);
        by_id.insert(spec.scim_id.clone(), (spec.user_name.clone(), spec.active));
        users.insert(
            spec.user_name.clone(),
            (
                spec.user_name,
                spec.display_name.unwrap_or_default(),
                spec.email.unwrap_or_default(),
                spec.active,
            ),
        );
    }
    let mut groups = BTreeMap::new();
    for row in all(store, org_id, ResourceKind::Group).await {
        let mut tx = store.begin().await.unwrap();
        let member_ids = tx.member_ids(org_id, &row.id).await.unwrap();
        tx.commit().await.unwrap();
        let members = member_ids
            .iter()
            .filter_map(|id| by_id.get(id))
            .filter(|(_, active)| *active)
            .map(|(name, _)| name.clone())
            .collect();
        let name = row.doc["displayName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        groups.insert(row.id.clone(), (name, members));
    }
    (users, groups)
}

async fn all(store: &Store, org_id: i64, kind: ResourceKind) -> Vec<store::ResourceRow> {
    let q = store::ListQuery {
        filter: None,
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 100_000,
    };
    store
        .list_resources(org_id, kind, &q)
        .await
        .unwrap()
        .resources
}

/// The fake Nextcloud's users (without its admin) and groups (without `admin`),
/// in the shape of [`directory`].
fn nextcloud_view(state: &NextcloudState) -> View {
    let users = state
        .users
        .values()
        .filter(|u| u.id != "admin")
        .map(|u| {
            (
                u.id.clone(),
                (
                    u.id.clone(),
                    u.display_name.clone(),
                    u.email.clone(),
                    u.enabled,
                ),
            )
        })
        .collect();
    let groups = state
        .groups
        .values()
        .filter(|g| g.id != "admin" && g.id != provision::connectors::nextcloud::MARKER_GROUP)
        .map(|g| {
            (
                g.id.clone(),
                (
                    g.display_name.clone(),
                    state.members(&g.id).into_iter().collect(),
                ),
            )
        })
        .collect();
    (users, groups)
}

/// Successful requests with this method and path in a fake's log.
fn successes<S: Clone + Send + 'static>(fake: &FakeApp<S>, method: &str, path: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path && (200..300).contains(&r.status))
        .count()
}

/// Requests other than GET that the fake answered with success.
fn writes<S: Clone + Send + 'static>(fake: &FakeApp<S>) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method != "GET" && (200..300).contains(&r.status))
        .count()
}

#[tokio::test]
async fn nextcloud_outage_then_recovery_converges_exactly_once() {
    std::env::set_var("LIAISON_FAULTS_NC", "admin:app-pass");
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
        let nc = add_app(
            &app.store,
            "acme",
            store::AppKind::Nextcloud,
            &fake.base_url(),
            "LIAISON_FAULTS_NC",
        )
        .await;
        let org_id = nc.org_id;
        let worker = worker(&app.store, 10_000);
        let scim = Scim {
            app: &app,
            token,
            base: "/o/acme/scim/v2".into(),
        };

        // Phase 1: the app answers 503 to everything.
        fake.set_outage(Outage::Status(503), OutageFor::UntilCleared)
            .await;
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(scim.create_user(&format!("user{i:02}")).await);
        }
        let r = rounds_during(&worker, 150).await;
        assert_eq!(
            r.delivered, 0,
            "{label}: nothing is delivered during a 503 outage"
        );
        assert!(
            r.retried >= 20,
            "{label}: every delivery was tried and failed: {r:?}"
        );
        assert_eq!(r.poisoned, 0, "{label}");
        for (i, id) in ids.iter().enumerate().take(4) {
            scim.replace(id, "displayName", json!(format!("User {i} Renamed")))
                .await;
        }
        for id in ids[4..8].iter().chain([&ids[18]]) {
            scim.replace(id, "active", json!(false)).await;
        }
        let team_a = scim.create_group("Team A", &ids[0..10]).await;
        let team_b = scim.create_group("Team B", &ids[10..18]).await;
        scim.remove_member(&team_a, &ids[3]).await;
        scim.add_member(&team_a, &ids[15]).await;
        let r = rounds_during(&worker, 150).await;
        // Only the withdrawal of a removed member that was never delivered
        // completes (it needs no call); the memberships of inactive users wait
        // for their users' own deliveries.
        assert_eq!(r.delivered, 1, "{label}: {r:?}");
        assert_eq!(writes(&fake), 0, "{label}");

        // Phase 2: connections are refused.
        fake.set_outage(Outage::Refuse, OutageFor::UntilCleared)
            .await;
        scim.replace(
            &ids[12],
            "emails",
            json!([{"value": "twelve@example.org", "primary": true}]),
        )
        .await;
        scim.replace(&ids[19], "active", json!(false)).await;
        // Reactivated before it was ever delivered; in no group (see
        // `a_user_reactivated_before_its_first_delivery_gets_its_memberships`).
        scim.replace(&ids[18], "active", json!(true)).await;
        scim.remove_member(&team_b, &ids[11]).await;
        let r = rounds_during(&worker, 150).await;
        assert!(r.retried > 0, "{label}: {r:?}");
        let (pending, poisoned) = outbox(&app.store).await;
        assert!(pending > 0, "{label}");
        assert_eq!(poisoned, 0, "{label}");
        assert_eq!(
            fake.state().users.len(),
            1,
            "{label}: only the admin so far"
        );

        // Recovery.
        fake.clear_outage().await;
        drain_until_empty(&app.store, &worker, &label).await;
        assert_eq!(outbox(&app.store).await, (0, 0), "{label}");

        let (want_users, want_groups) = directory(&app.store, org_id).await;
        let (have_users, have_groups) = nextcloud_view(&fake.state());
        assert_eq!(have_users, want_users, "{label}: users in Nextcloud");
        assert_eq!(have_groups, want_groups, "{label}: groups in Nextcloud");
        assert_eq!(want_users.len(), 20, "{label}");
        assert!(!want_users["user05"].3 && want_users["user18"].3, "{label}");
        assert_eq!(want_users["user12"].2, "twelve@example.org", "{label}");
        assert_eq!(
            want_groups[&team_a].1.len(),
            6,
            "{label}: {:?}",
            want_groups[&team_a]
        );
        assert_eq!(
            want_groups[&team_b].1.len(),
            7,
            "{label}: {:?}",
            want_groups[&team_b]
        );

        // Exactly once in effect: one successful create per user and per group.
        assert_eq!(
            successes(&fake, "POST", NC_USERS),
            20,
            "{label}: user creations"
        );
        // The two directory groups, and Liaison's marker group once.
        assert_eq!(
            successes(&fake, "POST", NC_GROUPS),
            3,
            "{label}: group creations"
        );
        let failed = fake.requests().iter().filter(|r| r.status == 503).count();
        assert!(
            failed >= 20,
            "{label}: the outage was hit ({failed} answers 503)"
        );

        // A second pass changes nothing: deliveries are state-based and recorded.
        fake.clear_requests();
        let mut tx = app.store.begin().await.unwrap();
        for id in &ids {
            tx.enqueue_for_app(&nc, store::Target::User, id, None)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        drain_until_empty(&app.store, &worker, &label).await;
        assert!(
            fake.requests().iter().all(|r| r.method == "GET"),
            "{label}: re-delivering unchanged users writes nothing: {:?}",
            fake.requests()
        );
    }
}

/// A user deactivated and reactivated while the app was down (so never
/// delivered inactive) still gets its memberships once the app is back.
#[tokio::test]
async fn a_user_reactivated_before_its_first_delivery_gets_its_memberships() {
    std::env::set_var("LIAISON_FAULTS_REACTIVATED", "admin:app-pass");
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
        add_app(
            &app.store,
            "acme",
            store::AppKind::Nextcloud,
            &fake.base_url(),
            "LIAISON_FAULTS_REACTIVATED",
        )
        .await;
        let worker = worker(&app.store, 10_000);
        let scim = Scim {
            app: &app,
            token,
            base: "/o/acme/scim/v2".into(),
        };
        fake.set_outage(Outage::Status(503), OutageFor::UntilCleared)
            .await;
        let dora = scim.create_user("dora").await;
        let group = scim
            .create_group("Explorers", std::slice::from_ref(&dora))
            .await;
        scim.replace(&dora, "active", json!(false)).await;
        rounds_during(&worker, 100).await;
        scim.replace(&dora, "active", json!(true)).await;
        fake.clear_outage().await;
        drain_until_empty(&app.store, &worker, &label).await;
        assert_eq!(
            fake.state().members(&group),
            vec!["dora".to_string()],
            "{label}"
        );
    }
}

/// One delivery at a time, then (below) eight at once.
#[tokio::test]
async fn rocketchat_outage_then_recovery_creates_each_account_once() {
    rocketchat_outage_then_recovery(1).await;
}

/// With concurrent deliveries, a membership waits for its user's and group's own
/// queued deliveries instead of creating them too: each account is created once.
#[tokio::test]
async fn rocketchat_outage_then_recovery_with_concurrent_deliveries() {
    rocketchat_outage_then_recovery(8).await;
}

async fn rocketchat_outage_then_recovery(concurrency: usize) {
    std::env::set_var("LIAISON_FAULTS_RC", "liaison-id:rc-token");
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let fake = spawn_rocketchat("liaison-id", "rc-token").await.unwrap();
        add_app(
            &app.store,
            "acme",
            store::AppKind::Rocketchat,
            &fake.base_url(),
            "LIAISON_FAULTS_RC",
        )
        .await;
        let worker = worker_with(&app.store, 10_000, concurrency);
        let scim = Scim {
            app: &app,
            token,
            base: "/o/acme/scim/v2".into(),
        };

        fake.set_outage(Outage::Status(503), OutageFor::UntilCleared)
            .await;
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(scim.create_user(&format!("rc{i}")).await);
        }
        let crew = scim.create_group("Crew", &ids[0..4]).await;
        rounds_during(&worker, 100).await;
        assert_eq!(writes(&fake), 0, "{label}");
        fake.set_outage(Outage::Refuse, OutageFor::UntilCleared)
            .await;
        scim.replace(&ids[1], "displayName", json!("Second Person"))
            .await;
        scim.replace(&ids[2], "active", json!(false)).await;
        scim.add_member(&crew, &ids[5]).await;
        rounds_during(&worker, 100).await;
        assert_eq!(writes(&fake), 0, "{label}");
        fake.clear_outage().await;
        drain_until_empty(&app.store, &worker, &label).await;
        assert_eq!(
            outbox(&app.store).await,
            (0, 0),
            "{label}: nothing parked as poison"
        );

        let state = fake.state();
        for i in 0..6 {
            let user = state
                .user_by_username(&format!("rc{i}"))
                .unwrap_or_else(|| panic!("{label}: rc{i} in Rocket.Chat"));
            assert_eq!(user.active, i != 2, "{label}: rc{i} active");
            assert_eq!(user.email, format!("rc{i}@example.org"), "{label}");
        }
        assert_eq!(
            state.user_by_username("rc1").map(|u| u.name.as_str()),
            Some("Second Person")
        );
        assert_eq!(
            state.users.len(),
            2 + 6,
            "{label}: admin, bot and six users"
        );
        let room = state.room_by_name("Crew").expect("the group's room");
        let members: BTreeSet<&str> = room
            .members
            .iter()
            .filter_map(|id| state.users.get(id))
            .map(|u| u.username.as_str())
            .filter(|u| *u != "liaison")
            .collect();
        assert_eq!(
            members,
            BTreeSet::from(["rc0", "rc1", "rc3", "rc5"]),
            "{label}: {:#?}",
            fake.requests()
        );
        assert_eq!(
            successes(&fake, "POST", "/api/v1/users.create"),
            6,
            "{label}"
        );
        assert_eq!(
            successes(&fake, "POST", "/api/v1/groups.create"),
            1,
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_permanent_error_parks_the_delivery_until_retried() {
    std::env::set_var("LIAISON_FAULTS_POISON", "admin:app-pass");
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
        let nc = add_app(
            &app.store,
            "acme",
            store::AppKind::Nextcloud,
            &fake.base_url(),
            "LIAISON_FAULTS_POISON",
        )
        .await;
        let worker = worker(&app.store, 10_000);
        let scim = Scim {
            app: &app,
            token,
            base: "/o/acme/scim/v2".into(),
        };

        // 401 is what Nextcloud answers (OCS 997) to a revoked app password.
        fake.set_outage(Outage::Status(401), OutageFor::UntilCleared)
            .await;
        let id = scim.create_user("poisoned").await;
        let r = worker.drain().await.unwrap();
        assert_eq!(
            (r.delivered, r.retried, r.poisoned),
            (0, 0, 1),
            "{label}: {r:?}"
        );
        let rows = app.store.pending_for(nc.org_id, &id).await.unwrap();
        assert_eq!(rows.len(), 1, "{label}");
        assert!(rows[0].poisoned, "{label}");
        assert_eq!(rows[0].attempts, 1, "{label}");
        let error = rows[0].last_error.clone().unwrap_or_default();
        assert!(error.contains("401"), "{label}: the error is kept: {error}");
        let link = app.store.link(nc.id, &id).await.unwrap().expect("link");
        assert_eq!(link.status, "failed", "{label}");
        assert_eq!(outbox(&app.store).await, (0, 1), "{label}");

        // Poison is not retried on its own, even once the app works again.
        fake.clear_outage().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(worker.drain().await.unwrap().total(), 0, "{label}");
        assert!(!fake.state().users.contains_key("poisoned"), "{label}");

        assert_eq!(
            app.store
                .retry_poisoned(nc.org_id, Some(nc.id))
                .await
                .unwrap(),
            1
        );
        let r = worker.drain().await.unwrap();
        assert_eq!(r.delivered, 1, "{label}: {r:?}");
        assert_eq!(outbox(&app.store).await, (0, 0), "{label}");
        let user = fake
            .state()
            .users
            .get("poisoned")
            .cloned()
            .expect("created");
        assert_eq!(user.email, "poisoned@example.org", "{label}");
        let link = app.store.link(nc.id, &id).await.unwrap().expect("link");
        assert_eq!(
            (link.status.as_str(), link.last_error),
            ("ok", None),
            "{label}"
        );
    }
}

#[tokio::test]
async fn transient_failures_become_poison_after_max_attempts() {
    std::env::set_var("LIAISON_FAULTS_ATTEMPTS", "admin:app-pass");
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
        let nc = add_app(
            &app.store,
            "acme",
            store::AppKind::Nextcloud,
            &fake.base_url(),
            "LIAISON_FAULTS_ATTEMPTS",
        )
        .await;
        let worker = worker(&app.store, 3);
        let scim = Scim {
            app: &app,
            token,
            base: "/o/acme/scim/v2".into(),
        };
        fake.set_outage(Outage::Status(503), OutageFor::UntilCleared)
            .await;
        let id = scim.create_user("flaky").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while outbox(&app.store).await.1 == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: never poisoned"
            );
            worker.drain().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rows = app.store.pending_for(nc.org_id, &id).await.unwrap();
        assert_eq!(rows[0].attempts, 3, "{label}");
        assert!(
            rows[0].last_error.as_deref().unwrap_or("").contains("503"),
            "{label}"
        );
        let tried = fake.requests().iter().filter(|r| r.status == 503).count();
        assert!(tried >= 3, "{label}: {tried}");
        assert!(StatusCode::SERVICE_UNAVAILABLE.is_server_error());
    }
}

/// Deleting a group under the `disable` policy leaves the group in the app
/// (its data is the organisation's) but takes its members out of it: they are
/// no longer members in the directory.
#[tokio::test]
async fn deleting_a_group_under_disable_empties_it_in_the_app() {
    std::env::set_var("LIAISON_FAULTS_GROUP_DELETE", "admin:app-pass");
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
        let nc = add_app(
            &app.store,
            "acme",
            store::AppKind::Nextcloud,
            &fake.base_url(),
            "LIAISON_FAULTS_GROUP_DELETE",
        )
        .await;
        assert_eq!(nc.deprovision, store::Deprovision::Disable, "{label}");
        let worker = worker(&app.store, 3);
        let scim = Scim {
            app: &app,
            token,
            base: "/o/acme/scim/v2".into(),
        };
        let ada = scim.create_user("ada").await;
        let bob = scim.create_user("bob").await;
        let group = scim.create_group("Crew", &[ada, bob]).await;
        drain_until_empty(&app.store, &worker, &label).await;
        assert_eq!(
            fake.state().members(&group),
            vec!["ada".to_string(), "bob".to_string()],
            "{label}: delivered"
        );

        scim.send(Method::DELETE, &format!("/Groups/{group}"), None)
            .await;
        let round = drain_until_empty(&app.store, &worker, &label).await;
        assert_eq!(round.poisoned, 0, "{label}");
        let state = fake.state();
        assert!(
            state.groups.values().any(|g| g.id == group),
            "{label}: the group stays in the app under `disable`"
        );
        assert!(
            state.members(&group).is_empty(),
            "{label}: its memberships are gone: {:?}",
            state.members(&group)
        );
        assert_eq!(
            state.users.values().filter(|u| u.id != "admin").count(),
            2,
            "{label}: the users stay"
        );
    }
}

/// A worker killed while it holds deliveries (its task aborted: no hand-back
/// and no more lease renewals, as after `kill -9`) delays them by at most one
/// lease: the next worker takes them over, on SQLite at once (a new
/// incarnation of `serve` takes back its predecessor's rows), on PostgreSQL
/// when the leases nobody renews expire (15 s). The wait is bounded well
/// below the 300 s a dead worker's rows used to wait.
#[tokio::test]
async fn a_killed_worker_s_deliveries_are_taken_over_by_the_next() {
    std::env::set_var("LIAISON_FAULTS_KILLED", "admin:app-pass");
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
        add_app(
            &app.store,
            "acme",
            store::AppKind::Nextcloud,
            &fake.base_url(),
            "LIAISON_FAULTS_KILLED",
        )
        .await;
        let scim = Scim {
            app: &app,
            token,
            base: "/o/acme/scim/v2".into(),
        };
        for i in 0..6 {
            scim.create_user(&format!("killed{i}")).await;
        }
        let config = || WorkerConfig {
            role: "serve",
            reclaim_at_start: app.store.dialect() == store::Dialect::Sqlite,
            idle_poll: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        // The app hangs: the first worker's deliveries never finish.
        fake.set_outage(
            Outage::Delay(Duration::from_secs(3600)),
            OutageFor::UntilCleared,
        )
        .await;
        let first = Worker::new(app.store.clone(), config(), WorkerMetrics::default());
        let running = {
            let first = first.clone();
            tokio::spawn(async move { first.round().await })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while first.held_count() < 6 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: never leased"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        running.abort();
        assert!(running.await.is_err(), "{label}: killed mid-round");
        fake.clear_outage().await;

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let next = Worker::new(app.store.clone(), config(), WorkerMetrics::default());
        let task = tokio::spawn(next.run(stopped));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let (pending, poisoned) = outbox(&app.store).await;
            assert_eq!(poisoned, 0, "{label}: nothing poisoned");
            if pending == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: {pending} deliveries still held by the killed worker"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).unwrap();
        task.await.unwrap();
        let (want, _) = directory(
            &app.store,
            app.store.org_by_slug("acme").await.unwrap().unwrap().id,
        )
        .await;
        let (have, _) = nextcloud_view(&fake.state());
        assert_eq!(have, want, "{label}: users in Nextcloud");
        assert_eq!(
            successes(&fake, "POST", NC_USERS),
            6,
            "{label}: each user created once"
        );
    }
}

/// Reconciliation repairs through the outbox: while the worker is creating a
/// user (its request held up by the app), a reconciliation that finds the user
/// missing queues its repair and waits for the worker's delivery instead of
/// creating the account beside it. The account is created by one request.
#[tokio::test]
async fn reconciliation_does_not_race_the_worker() {
    std::env::set_var("LIAISON_FAULTS_SYNC_RACE", "admin:app-pass");
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
        let nc = add_app(
            &app.store,
            "acme",
            store::AppKind::Nextcloud,
            &fake.base_url(),
            "LIAISON_FAULTS_SYNC_RACE",
        )
        .await;
        let scim = Scim {
            app: &app,
            token,
            base: "/o/acme/scim/v2".into(),
        };
        scim.create_user("raced").await;
        // The next request (the worker's creation) takes a while.
        fake.set_outage(
            Outage::Delay(Duration::from_millis(2000)),
            OutageFor::Requests(1),
        )
        .await;
        let worker = worker(&app.store, 3);
        let running = {
            let worker = worker.clone();
            tokio::spawn(async move { worker.round().await })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while worker.held_count() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: never leased"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let its request reach the app before reconciliation lists it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let conn = provision::registry::connector_for(&nc).unwrap();
        let report = provision::sync::reconcile(
            &app.store,
            &nc,
            conn.as_ref(),
            &provision::sync::SyncOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(report.errors, Vec::<String>::new(), "{label}");
        assert_eq!(report.remaining, 0, "{label}: {:?}", report.left);
        assert_eq!(
            fake.count("POST", NC_USERS),
            1,
            "{label}: the account is created by one request"
        );
        assert_eq!(outbox(&app.store).await, (0, 0), "{label}");
    }
}
