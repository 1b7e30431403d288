//! Provisioning into a real Matrix Synapse, on every store under test: SCIM
//! writes through the in-process router, deliveries by the outbox worker, and
//! checks through Synapse's own admin API. Drift made behind Liaison's back is
//! repaired by reconciliation (`provision::sync`).
//!
//! Needs `LIAISON_TEST_SYNAPSE_URL` and `LIAISON_TEST_SYNAPSE_TOKEN`
//! (`scripts/synapse.sh start DIR PORT && source DIR/env`); skipped with a notice
//! without them, failed when `LIAISON_REQUIRE_SYNAPSE=1`. Synapse keeps its state
//! between runs, so every user name is unique to the run.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use common::App;
use provision::sync::{reconcile, SyncOptions};
use provision::worker::{Worker, WorkerConfig, WorkerMetrics};
use serde_json::{json, Value};
use store::{AppRecord, Store};

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The variable the app's credential names (`env:` source).
const CREDENTIAL_VAR: &str = "LIAISON_E2E_SYNAPSE_ADMIN_TOKEN";

/// Synapse's URL and admin token, or `None` (with a notice) to skip.
fn synapse() -> Option<(String, String)> {
    let url = std::env::var("LIAISON_TEST_SYNAPSE_URL")
        .ok()
        .filter(|s| !s.is_empty());
    let token = std::env::var("LIAISON_TEST_SYNAPSE_TOKEN")
        .ok()
        .filter(|s| !s.is_empty());
    match (url, token) {
        (Some(u), Some(t)) => Some((u.trim_end_matches('/').to_owned(), t)),
        _ => {
            assert!(
                std::env::var("LIAISON_REQUIRE_SYNAPSE").as_deref() != Ok("1"),
                "LIAISON_REQUIRE_SYNAPSE=1 but LIAISON_TEST_SYNAPSE_URL or \
                 LIAISON_TEST_SYNAPSE_TOKEN is not set"
            );
            eprintln!(
                "skipped: set LIAISON_TEST_SYNAPSE_URL and LIAISON_TEST_SYNAPSE_TOKEN \
                 (scripts/synapse.sh start DIR PORT; source DIR/env) to run against Synapse"
            );
            None
        }
    }
}

/// Synapse's admin API, as the test checks it (independently of the connector).
struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("Synapse answers");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn user(&self, mxid: &str) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/_synapse/admin/v2/users/{mxid}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{mxid}: {body}");
        body
    }

    /// The joined members of a room.
    async fn joined(&self, room: &str) -> BTreeSet<String> {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/_synapse/admin/v1/rooms/{room}/members"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{room}: {body}");
        body["members"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| m.as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn membership(&self, room: &str, mxid: &str) -> Option<String> {
        let (_, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/{mxid}"),
                None,
            )
            .await;
        body["membership"].as_str().map(str::to_owned)
    }
}

fn emails(user: &Value) -> Vec<String> {
    user["threepids"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter(|t| t["medium"] == "email")
                .filter_map(|t| t["address"].as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn deactivated(user: &Value) -> bool {
    user["deactivated"].as_bool().unwrap_or(false)
}

struct Scim<'a> {
    app: &'a App,
    token: String,
}

impl Scim<'_> {
    async fn send(&self, method: Method, path: &str, body: Value) -> Value {
        let uri = format!("/o/acme/scim/v2{path}");
        let r = self
            .app
            .call(method.clone(), &uri, Some(&self.token), Some(body), &[])
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

    async fn create_user(&self, name: &str, display: &str) -> String {
        let body = json!({
            "schemas": [U],
            "userName": name,
            "displayName": display,
            "emails": [{"value": format!("{name}@example.org"), "primary": true}],
        });
        let r = self.send(Method::POST, "/Users", body).await;
        r["id"].as_str().expect("id").to_owned()
    }

    async fn patch(&self, path: &str, ops: Value) {
        let body = json!({"schemas": [PATCH], "Operations": ops});
        self.send(Method::PATCH, path, body).await;
    }
}

async fn add_synapse_app(store: &Store, base_url: &str) -> AppRecord {
    let org = store.org_by_slug("acme").await.unwrap().expect("org");
    let mut tx = store.begin().await.unwrap();
    let app = tx
        .create_app(&AppRecord {
            id: 0,
            org_id: org.id,
            name: "matrix".into(),
            kind: store::AppKind::Synapse,
            base_url: base_url.into(),
            credential: format!("env:{CREDENTIAL_VAR}"),
            groups_as: store::GroupsAs::Rooms,
            deprovision: store::Deprovision::Disable,
            adopt: store::Adopt::Never,
            settings: json!({"server_name": "localhost"}),
            created: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app
}

/// Drains the outbox and checks that every delivery succeeded.
async fn drain(worker: &Worker, store: &Store, label: &str) {
    let r = worker.drain().await.unwrap();
    if r.retried + r.poisoned > 0 {
        let org = store.org_by_slug("acme").await.unwrap().expect("org");
        let mut errors = Vec::new();
        for kind in [store::ResourceKind::User, store::ResourceKind::Group] {
            let q = store::ListQuery {
                start_index: 1,
                count: 1000,
                ..Default::default()
            };
            for row in store
                .list_resources(org.id, kind, &q)
                .await
                .unwrap()
                .resources
            {
                errors.extend(store.pending_for(org.id, &row.id).await.unwrap());
            }
        }
        panic!("{label}: {r:?}: {errors:#?}");
    }
    let stats = store.outbox_stats().await.unwrap();
    assert!(
        stats.iter().all(|s| s.pending == 0 && s.poisoned == 0),
        "{label}: {stats:?}"
    );
}

/// A prefix unique to this run and store, valid as a Matrix localpart.
fn run_prefix(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("e2e{}{}", &label[..2], nanos % 10_000_000_000)
}

/// One delivery at a time, then (below) eight at once.
#[tokio::test]
async fn users_groups_and_drift_end_to_end_in_synapse() {
    end_to_end(1).await;
}

/// With concurrent deliveries: a new group's members wait for the group's own
/// delivery instead of each creating the room (which would leave orphan rooms
/// and 409s on the alias).
#[tokio::test]
async fn users_groups_and_drift_end_to_end_with_concurrent_deliveries() {
    end_to_end(8).await;
}

async fn end_to_end(concurrency: usize) {
    let Some((url, admin_token)) = synapse() else {
        return;
    };
    std::env::set_var(CREDENTIAL_VAR, &admin_token);
    let admin = Admin {
        http: reqwest::Client::new(),
        base: url.clone(),
        token: admin_token,
    };
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let matrix = add_synapse_app(&app.store, &url).await;
        let worker: Arc<Worker> = Worker::new(
            app.store.clone(),
            WorkerConfig {
                concurrency,
                base_backoff: Duration::from_millis(50),
                ..WorkerConfig::default()
            },
            WorkerMetrics::default(),
        );
        let scim = Scim { app: &app, token };
        let p = run_prefix(&label);
        let mxid = |name: &str| format!("@{p}{name}:localhost");

        // Users.
        let alice = scim
            .create_user(&format!("{p}alice"), "Alice Liddell")
            .await;
        let bob = scim.create_user(&format!("{p}bob"), "Bob Builder").await;
        let carol = scim
            .create_user(&format!("{p}carol"), "Carol Danvers")
            .await;
        drain(&worker, &app.store, &label).await;
        let a = admin.user(&mxid("alice")).await;
        assert_eq!(a["displayname"], "Alice Liddell", "{label}: {a}");
        assert_eq!(emails(&a), vec![format!("{p}alice@example.org")], "{label}");
        assert!(!deactivated(&a), "{label}");
        assert_eq!(
            a["external_ids"][0]["external_id"].as_str(),
            Some(alice.as_str()),
            "{label}: linked to the SCIM id: {a}"
        );
        assert_eq!(
            admin.user(&mxid("carol")).await["displayname"],
            "Carol Danvers"
        );

        // Deactivation and reactivation.
        let replace = |attr: &str, v: Value| json!([{"op": "replace", "path": attr, "value": v}]);
        scim.patch(&format!("/Users/{alice}"), replace("active", json!(false)))
            .await;
        drain(&worker, &app.store, &label).await;
        assert!(
            deactivated(&admin.user(&mxid("alice")).await),
            "{label}: deactivated"
        );
        scim.patch(&format!("/Users/{alice}"), replace("active", json!(true)))
            .await;
        drain(&worker, &app.store, &label).await;
        let a = admin.user(&mxid("alice")).await;
        assert!(!deactivated(&a), "{label}: reactivated: {a}");
        assert_eq!(
            emails(&a),
            vec![format!("{p}alice@example.org")],
            "{label}: e-mail restored"
        );

        // A group becomes a room with its members joined.
        let body = json!({
            "schemas": [G],
            "displayName": format!("{p} Team"),
            "members": [{"value": alice}, {"value": bob}, {"value": carol}],
        });
        let team = scim.send(Method::POST, "/Groups", body).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        drain(&worker, &app.store, &label).await;
        let room = app
            .store
            .link(matrix.id, &team)
            .await
            .unwrap()
            .and_then(|l| l.app_ref)
            .expect("the room is recorded");
        let ours = |joined: BTreeSet<String>| -> BTreeSet<String> {
            joined
                .into_iter()
                .filter(|m| m.starts_with(&format!("@{p}")))
                .collect()
        };
        let everyone = BTreeSet::from([mxid("alice"), mxid("bob"), mxid("carol")]);
        assert_eq!(ours(admin.joined(&room).await), everyone, "{label}");

        // Removing a member kicks it.
        scim.patch(
            &format!("/Groups/{team}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}]),
        )
        .await;
        drain(&worker, &app.store, &label).await;
        assert_eq!(
            ours(admin.joined(&room).await),
            BTreeSet::from([mxid("alice"), mxid("carol")]),
            "{label}"
        );
        assert_eq!(
            admin.membership(&room, &mxid("bob")).await.as_deref(),
            Some("leave")
        );

        // Drift behind Liaison's back: carol deactivated, alice deactivated and
        // erased, bob renamed.
        let (s, b) = admin
            .call(
                reqwest::Method::PUT,
                &format!("/_synapse/admin/v2/users/{}", mxid("carol")),
                Some(json!({"deactivated": true})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = admin
            .call(
                reqwest::Method::POST,
                &format!("/_synapse/admin/v1/deactivate/{}", mxid("alice")),
                Some(json!({"erase": true})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = admin
            .call(
                reqwest::Method::PUT,
                &format!("/_synapse/admin/v2/users/{}", mxid("bob")),
                Some(json!({"displayname": "Someone Else"})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        // Synapse parts deactivated users from their rooms in the background.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !ours(admin.joined(&room).await).is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: members not parted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let conn = provision::registry::connector_for(&matrix).expect("connector");
        let report = reconcile(
            &app.store,
            &matrix,
            conn.as_ref(),
            &SyncOptions::default(),
            &|_| {},
        )
        .await
        .expect("reconciliation runs");
        let about = |id: &str| {
            report
                .drift
                .iter()
                .filter(|d| d.id.as_deref() == Some(id))
                .count()
        };
        assert!(
            about(&alice) > 0 && about(&bob) > 0 && about(&carol) > 0,
            "{label}: drift reported for the three users: {:#?}",
            report.drift
        );
        drain(&worker, &app.store, &label).await;
        for (name, display) in [
            ("alice", "Alice Liddell"),
            ("bob", "Bob Builder"),
            ("carol", "Carol Danvers"),
        ] {
            let u = admin.user(&mxid(name)).await;
            assert!(!deactivated(&u), "{label}: {name} reactivated: {u}");
            assert_eq!(u["displayname"], display, "{label}: {name}: {u}");
            assert_eq!(
                emails(&u),
                vec![format!("{p}{name}@example.org")],
                "{label}: {name}"
            );
        }
        assert_eq!(
            ours(admin.joined(&room).await),
            BTreeSet::from([mxid("alice"), mxid("carol")]),
            "{label}: memberships repaired; report: {:#?}",
            report
        );
        assert_eq!(report.remaining, 0, "{label}: {:#?}", report.left);
    }
}
