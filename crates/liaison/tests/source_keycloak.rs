//! The Keycloak source against a real Keycloak, on every store under test:
//! users and groups created, renamed, moved, disabled and deleted in Keycloak
//! through its admin API reach the directory (full reconciliation, then the
//! realm's events) and a real Synapse; a realm changed while Liaison is stopped
//! is caught up by a new follower; Keycloak cut off mid-sync leaves the
//! directory untouched and the next run completes.
//!
//! Needs `scripts/keycloak.sh start DIR PORT; source DIR/env` (skipped without,
//! failed when `LIAISON_REQUIRE_KEYCLOAK=1`); the Synapse part needs
//! `LIAISON_TEST_SYNAPSE_URL`/`_TOKEN` likewise (`LIAISON_REQUIRE_SYNAPSE`).
//! Each test works in a realm of its own, made from
//! `scripts/keycloak/realm-liaison.json`.

mod common;
mod kc;

use axum::http::Method;
use common::App;
use provision::worker::Worker;
use serde_json::{json, Value};
use service::source::{self as source_cmd, SourceRequest};
use service::Caller;
use source::HttpLimits;
use source::{Bounds, Ran, Runner, SourceMetrics};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// Small pages, so that paging is exercised with a handful of users.
fn bounds() -> Bounds {
    Bounds {
        page: 2,
        ..Bounds::default()
    }
}

/// The source of a realm: its service-account secret written to a file.
fn source_request(realm: &kc::Realm, url: &str) -> SourceRequest {
    let secret = std::env::temp_dir().join(format!("liaison-kc-{}-secret", realm.name));
    std::fs::write(&secret, &realm.source_secret).unwrap();
    SourceRequest {
        kind: "keycloak".into(),
        url: url.into(),
        realm: realm.name.clone(),
        client_id: "liaison-source".into(),
        credential_file: Some(secret.display().to_string().parse().unwrap()),
        credential_env: None,
        interval_secs: Some(3600),
        adopt: false,
    }
}

/// Adds the realm as the source of `acme`.
async fn add_source(app: &App, realm: &kc::Realm, url: &str) -> i64 {
    let org = app.store.org_by_slug("acme").await.unwrap().expect("org");
    let req = source_request(realm, url);
    source_cmd::put(&app.store, &org, &req, Caller::Operator, false)
        .await
        .expect("source added");
    org.id
}

fn runner(app: &App) -> Runner {
    let directory = directory::Directory::new(app.store.clone(), Default::default());
    Runner::new(directory, SourceMetrics::default()).with_bounds(bounds(), HttpLimits::default())
}

/// A dry-run full reconciliation: what still differs.
async fn dry_run(runner: &Runner, store: &Store, org_id: i64) -> source::Report {
    let s = store.source(org_id).await.unwrap().expect("source");
    runner
        .full_sync(&s, true, &|_| {})
        .await
        .expect("the dry run succeeds")
}

async fn run(runner: &Runner, store: &Store, org_id: i64) -> Ran {
    let s = store.source(org_id).await.unwrap().expect("source");
    runner.run_once(&s).await.expect("the run succeeds")
}

/// The directory as the SCIM API answers it.
struct Dir<'a> {
    app: &'a App,
    token: &'a str,
}

impl Dir<'_> {
    async fn list(&self, resource: &str) -> Vec<Value> {
        let a = self
            .app
            .call(
                Method::GET,
                &format!("/o/acme/scim/v2/{resource}?count=1000"),
                Some(self.token),
                None,
                &[],
            )
            .await;
        assert_eq!(a.status, 200, "{}: {}", self.app.label, a.body);
        a.body["Resources"].as_array().cloned().unwrap_or_default()
    }

    async fn user(&self, ext: &str) -> Option<Value> {
        self.list("Users")
            .await
            .into_iter()
            .find(|u| u["externalId"] == ext)
    }

    async fn group(&self, ext: &str) -> Option<Value> {
        self.list("Groups")
            .await
            .into_iter()
            .find(|g| g["externalId"] == ext)
    }

    /// The externalIds of a group's members.
    async fn members(&self, group_ext: &str) -> BTreeSet<String> {
        let users = self.list("Users").await;
        let groups = self.list("Groups").await;
        let ext_of = |id: &str| {
            users
                .iter()
                .chain(&groups)
                .find(|r| r["id"] == id)
                .and_then(|r| r["externalId"].as_str())
                .map(str::to_owned)
        };
        let g = groups
            .iter()
            .find(|g| g["externalId"] == group_ext)
            .unwrap_or_else(|| panic!("{}: no group {group_ext}", self.app.label));
        g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["value"].as_str().and_then(ext_of))
            .collect()
    }
}

/// Synapse's admin API, as the test checks it.
struct Synapse {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Synapse {
    fn from_env() -> Option<Synapse> {
        common::synapse_from_env().map(|(base, token)| Synapse {
            http: reqwest::Client::new(),
            base,
            token,
        })
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("Synapse answers");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.json().await.expect("JSON")
    }

    async fn user(&self, localpart: &str) -> Value {
        self.get(&format!("/_synapse/admin/v2/users/@{localpart}:localhost"))
            .await
    }

    async fn joined(&self, room: &str) -> BTreeSet<String> {
        let body = self
            .get(&format!("/_synapse/admin/v1/rooms/{room}/members"))
            .await;
        body["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect()
    }
}

const SYNAPSE_VAR: &str = "LIAISON_E2E_KC_SYNAPSE_TOKEN";

async fn drain(worker: &Worker, store: &Store, org_id: i64, label: &str) {
    let r = worker.drain().await.unwrap();
    if r.retried + r.poisoned > 0 {
        let rows = store.outbox_rows(org_id, None, false, 50).await.unwrap();
        let mut names = Vec::new();
        for row in &rows {
            for id in [&row.delivery.resource_id, &row.delivery.member_id] {
                for kind in [store::ResourceKind::User, store::ResourceKind::Group] {
                    if let Some(r) = store.get_resource(org_id, kind, id).await.unwrap() {
                        names.push(format!("{id} = {}", r.doc));
                    }
                }
            }
        }
        let q = store::ListQuery {
            start_index: 1,
            count: 100,
            ..Default::default()
        };
        for kind in [store::ResourceKind::User, store::ResourceKind::Group] {
            for r in store
                .list_resources(org_id, kind, &q)
                .await
                .unwrap()
                .resources
            {
                names.push(format!("present {} = {}", r.id, r.doc));
            }
        }
        panic!("{label}: deliveries failed: {r:?}: {rows:#?} {names:#?}");
    }
}

/// A prefix unique to this run and store, valid as a Matrix localpart.
fn prefix(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("kc{}{}", &label[..2], nanos % 1_000_000_000)
}

#[tokio::test]
async fn a_realm_reaches_the_directory_and_synapse_and_is_followed() {
    let Some(env) = kc::env() else { return };
    eprintln!("Keycloak started in {}s", env.start_seconds);
    let synapse = Synapse::from_env();
    if let Some(s) = &synapse {
        std::env::set_var(SYNAPSE_VAR, &s.token);
    }
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let p = prefix(&label);
        let realm = kc::Realm::create_with_prefix(&env, &p).await;
        let org_id = add_source(&app, &realm, &env.url).await;
        let matrix = match &synapse {
            Some(s) => {
                Some(common::add_synapse_app(&app.store, org_id, &s.base, SYNAPSE_VAR).await)
            }
            None => None,
        };
        let worker = common::fast_worker(&app.store);
        let dir = Dir {
            app: &app,
            token: &token,
        };
        let r = runner(&app);

        // The first run is a full reconciliation of the imported realm.
        let Ran::Full(report) = run(&r, &app.store, org_id).await else {
            panic!("{label}: the first run is a full reconciliation");
        };
        assert!(report.in_sync(), "{label}: {report:#?}");
        assert_eq!(
            (report.realm_users, report.realm_groups),
            (4, 4),
            "{label}: {report:#?}"
        );
        let alice = realm.user_id(&format!("{p}alice")).await;
        let bob = realm.user_id(&format!("{p}bob")).await;
        let admin = realm.user_id(&format!("{p}acme-admin")).await;
        let staff = realm.group_id("/staff").await;
        let teachers = realm.group_id("/staff/teachers").await;
        let a = dir.user(&alice).await.expect("alice in the directory");
        assert_eq!(a["userName"], format!("{p}alice"), "{label}");
        assert_eq!(a["displayName"], "Alice Liddell", "{label}");
        assert_eq!(
            a["emails"][0]["value"],
            format!("{p}alice@acme.test"),
            "{label}"
        );
        assert_eq!(
            dir.members(&staff).await,
            BTreeSet::from([admin.clone(), bob.clone()]),
            "{label}: staff holds its direct members (not its subgroup's)"
        );
        assert_eq!(
            dir.members(&teachers).await,
            BTreeSet::from([alice.clone()]),
            "{label}"
        );
        assert_eq!(
            dir.group(&teachers).await.expect("teachers")["displayName"],
            "staff/teachers",
            "{label}"
        );
        let dry = dry_run(&r, &app.store, org_id).await;
        assert!(dry.changes.is_empty() && dry.in_sync(), "{label}: {dry:#?}");
        drain(&worker, &app.store, org_id, &label).await;
        let room = |group_ext: String| {
            let store = app.store.clone();
            let matrix = matrix.clone();
            let dir = &dir;
            async move {
                let id = dir.group(&group_ext).await.expect("group")["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                store
                    .link(matrix.expect("matrix").id, &id)
                    .await
                    .unwrap()
                    .and_then(|l| l.app_ref)
                    .expect("a room")
            }
        };
        if let Some(s) = &synapse {
            let u = s.user(&format!("{p}alice")).await;
            assert_eq!(u["displayname"], "Alice Liddell", "{label}: {u}");
            let joined = s.joined(&room(teachers.clone()).await).await;
            assert!(
                joined.contains(&format!("@{p}alice:localhost")),
                "{label}: {joined:?}"
            );
        }

        // Changes in Keycloak, followed from its events.
        let carol = realm
            .create_user(&format!("{p}carol"), "Carol", "Danvers")
            .await;
        realm.join(&carol, &staff).await;
        realm
            .call(
                reqwest::Method::PUT,
                &format!("/users/{bob}"),
                Some(json!({"lastName": "Bâtisseur", "enabled": false})),
            )
            .await;
        realm.leave(&alice, &teachers).await;
        realm.join(&alice, &staff).await;
        realm
            .call(reqwest::Method::DELETE, &format!("/users/{admin}"), None)
            .await;
        realm
            .call(
                reqwest::Method::PUT,
                &format!("/groups/{teachers}"),
                Some(json!({"name": "enseignants"})),
            )
            .await;
        let Ran::Followed { events, errors, .. } = run(&r, &app.store, org_id).await else {
            panic!("{label}: events are followed");
        };
        assert!(events >= 6, "{label}: {events} events");
        assert!(errors.is_empty(), "{label}: {errors:?}");
        let c = dir.user(&carol).await.expect("carol");
        assert_eq!(c["displayName"], "Carol Danvers", "{label}");
        let b = dir.user(&bob).await.expect("bob");
        assert_eq!(b["displayName"], "Bob Bâtisseur", "{label}");
        assert_eq!(b["active"], false, "{label}");
        assert!(dir.user(&admin).await.is_none(), "{label}: deleted");
        assert_eq!(
            dir.members(&staff).await,
            BTreeSet::from([alice.clone(), bob.clone(), carol.clone()]),
            "{label}"
        );
        assert!(dir.members(&teachers).await.is_empty(), "{label}");
        assert_eq!(
            dir.group(&teachers).await.expect("renamed")["displayName"],
            "staff/enseignants",
            "{label}"
        );
        let dry = dry_run(&r, &app.store, org_id).await;
        assert!(
            dry.changes.is_empty(),
            "{label}: the events missed: {dry:#?}"
        );
        drain(&worker, &app.store, org_id, &label).await;
        if let Some(s) = &synapse {
            let u = s.user(&format!("{p}bob")).await;
            assert_eq!(u["displayname"], "Bob Bâtisseur", "{label}: {u}");
            assert_eq!(u["deactivated"], true, "{label}: {u}");
            assert_eq!(
                s.user(&format!("{p}carol")).await["displayname"],
                "Carol Danvers"
            );
            assert_eq!(
                s.user(&format!("{p}acme-admin")).await["deactivated"],
                true,
                "{label}"
            );
            let joined = s.joined(&room(staff.clone()).await).await;
            for who in ["alice", "carol"] {
                assert!(
                    joined.contains(&format!("@{p}{who}:localhost")),
                    "{label}: {who}: {joined:?}"
                );
            }
            let joined = s.joined(&room(teachers.clone()).await).await;
            assert!(
                !joined.contains(&format!("@{p}alice:localhost")),
                "{label}: {joined:?}"
            );
        }

        // Liaison stopped: the realm changes meanwhile; a new follower (a new
        // process: nothing in memory) catches up from the stored cursor.
        drop(r);
        realm
            .call(reqwest::Method::DELETE, &format!("/users/{carol}"), None)
            .await;
        // Moved to the top level.
        realm
            .call(
                reqwest::Method::POST,
                "/groups",
                Some(json!({"id": teachers, "name": "enseignants"})),
            )
            .await;
        let dave = realm
            .create_user(&format!("{p}dave"), "Dave", "Bowman")
            .await;
        realm.join(&dave, &teachers).await;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let follower = tokio::spawn(runner(&app).run_periodic(Duration::from_millis(200), stopped));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let caught_up = dir.user(&carol).await.is_none()
                && dir.members(&teachers).await == BTreeSet::from([dave.clone()])
                && dir
                    .group(&teachers)
                    .await
                    .is_some_and(|g| g["displayName"] == "enseignants")
                && dir.members(&staff).await.len() == 2;
            if caught_up {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: not caught up: {:?}",
                app.store.source(org_id).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = stop.send(true);
        follower.await.unwrap();
        let state = app.store.source(org_id).await.unwrap().unwrap().state;
        assert!(state.last_error.is_none(), "{label}: {state:?}");
        assert!(
            state.applied > 0 && state.last_follow.is_some(),
            "{label}: {state:?}"
        );
        realm.delete().await;
    }
}

/// A TCP proxy in front of Keycloak that can cut every connection once a
/// number of requests went through, and refuse new ones until restored.
struct Cutter {
    url: String,
    /// Requests still let through; `usize::MAX` for no limit.
    budget: Arc<AtomicUsize>,
}

impl Cutter {
    async fn start(upstream: &str) -> Cutter {
        let target = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let budget = Arc::new(AtomicUsize::new(usize::MAX));
        let b = budget.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let b = b.clone();
                let target = target.clone();
                tokio::spawn(async move { pipe(client, &target, b).await });
            }
        });
        Cutter { url, budget }
    }

    fn cut_after(&self, requests: usize) {
        self.budget.store(requests, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.budget.store(usize::MAX, Ordering::SeqCst);
    }
}

/// Forwards one connection; each request line going up spends one unit of the
/// budget; at zero the connection is closed.
async fn pipe(mut client: tokio::net::TcpStream, target: &str, budget: Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if budget.load(Ordering::SeqCst) == 0 {
        return;
    }
    let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let up = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let requests = buf[..n]
                .windows(11)
                .filter(|w| w == b" HTTP/1.1\r\n")
                .count();
            for _ in 0..requests {
                let spent = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| match b {
                    0 => None,
                    usize::MAX => Some(usize::MAX),
                    b => Some(b - 1),
                });
                if spent.is_err() {
                    return;
                }
            }
            if uw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let n = match ur.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {},
        () = down => {},
    }
}

#[tokio::test]
async fn keycloak_cut_off_mid_sync_leaves_the_directory_untouched_and_the_next_run_completes() {
    let Some(env) = kc::env() else { return };
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let p = prefix(&label);
        let realm = kc::Realm::create_with_prefix(&env, &p).await;
        for i in 0..6 {
            realm
                .create_user(&format!("{p}extra{i}"), "Extra", &format!("N{i}"))
                .await;
        }
        let cutter = Cutter::start(&env.url).await;
        let org_id = add_source(&app, &realm, &cutter.url).await;
        let dir = Dir {
            app: &app,
            token: &token,
        };
        let r = runner(&app);

        // Cut after the token and two pages of users (10 users in pages of 2).
        cutter.cut_after(3);
        let s = app.store.source(org_id).await.unwrap().unwrap();
        let err = r.run_once(&s).await.expect_err("the run fails");
        assert!(err.to_string().contains("unreachable"), "{label}: {err}");
        assert!(
            dir.list("Users").await.is_empty(),
            "{label}: nothing written"
        );
        assert!(
            dir.list("Groups").await.is_empty(),
            "{label}: nothing written"
        );
        let state = app.store.source(org_id).await.unwrap().unwrap().state;
        assert!(
            state
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("unreachable")),
            "{label}: {state:?}"
        );
        assert!(
            state.last_full_sync.is_none() && state.admin_cursor.is_none(),
            "{label}: {state:?}"
        );

        // Keycloak back: the next run completes.
        cutter.restore();
        let Ran::Full(report) = run(&r, &app.store, org_id).await else {
            panic!("{label}: a full reconciliation");
        };
        assert!(report.in_sync(), "{label}: {report:#?}");
        assert_eq!(dir.list("Users").await.len(), 10, "{label}");
        let before = app.store.source(org_id).await.unwrap().unwrap().state;
        assert!(before.last_error.is_none(), "{label}: {before:?}");

        // An outage while following: the cursor stays, the next run applies.
        let late = realm
            .create_user(&format!("{p}late"), "Late", "Comer")
            .await;
        cutter.cut_after(0);
        let s = app.store.source(org_id).await.unwrap().unwrap();
        assert!(r.run_once(&s).await.is_err(), "{label}");
        let during = app.store.source(org_id).await.unwrap().unwrap().state;
        assert_eq!(
            (during.admin_cursor, during.event_cursor),
            (before.admin_cursor, before.event_cursor),
            "{label}: the cursor did not move"
        );
        assert!(dir.user(&late).await.is_none(), "{label}");
        cutter.restore();
        let Ran::Followed { applied, .. } = run(&r, &app.store, org_id).await else {
            panic!("{label}: events are followed");
        };
        assert!(applied >= 1, "{label}");
        assert_eq!(
            dir.user(&late).await.expect("late")["displayName"],
            "Late Comer",
            "{label}"
        );
        realm.delete().await;
    }
}

#[tokio::test]
async fn adoption_takes_over_what_scim_wrote_and_deletes_the_rest() {
    let Some(env) = kc::env() else { return };
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("acme").await;
        let p = prefix(&label);
        let realm = kc::Realm::create_with_prefix(&env, &p).await;
        // Written over SCIM before the source: alice (by name), a stranger.
        let mut ids = Vec::new();
        for name in [format!("{p}Alice"), format!("{p}stranger")] {
            let a = app
                .call(
                    Method::POST,
                    "/o/acme/scim/v2/Users",
                    Some(&token),
                    Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})),
                    &[],
                )
                .await;
            assert_eq!(a.status, 201, "{label}: {}", a.body);
            ids.push(a.body["id"].as_str().unwrap().to_owned());
        }
        let org = app.store.org_by_slug("acme").await.unwrap().unwrap();
        let mut req = source_request(&realm, &env.url);
        let refused = source_cmd::put(&app.store, &org, &req, Caller::Operator, false).await;
        assert!(
            refused.is_err(),
            "{label}: a directory SCIM wrote needs adoption"
        );
        req.adopt = true;
        source_cmd::put(&app.store, &org, &req, Caller::Operator, false)
            .await
            .unwrap();
        let r = runner(&app);
        let Ran::Full(report) = run(&r, &app.store, org.id).await else {
            panic!("{label}: a full reconciliation");
        };
        assert!(report.in_sync(), "{label}: {report:#?}");
        let dir = Dir {
            app: &app,
            token: &token,
        };
        let alice = realm.user_id(&format!("{p}alice")).await;
        let a = dir.user(&alice).await.expect("alice adopted");
        assert_eq!(
            a["id"],
            ids[0].as_str(),
            "{label}: the same directory user, now Keycloak's"
        );
        assert_eq!(a["userName"], format!("{p}alice"), "{label}");
        let users = dir.list("Users").await;
        assert_eq!(users.len(), 4, "{label}: the realm's four users");
        assert!(
            users.iter().all(|u| u["id"] != ids[1].as_str()),
            "{label}: the stranger is gone"
        );
        let state = app.store.source(org.id).await.unwrap().unwrap();
        assert!(!state.config.adopt, "{label}: adoption happens once");
        realm.delete().await;
    }
}

#[tokio::test]
async fn the_command_line_adds_reconciles_and_reports() {
    let Some(env) = kc::env() else { return };
    let p = prefix("cli");
    let realm = kc::Realm::create_with_prefix(&env, &p).await;
    let dir = std::env::temp_dir().join(format!("liaison-cli-{p}"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("liaison.db").display());
    let secret = dir.join("secret");
    std::fs::write(&secret, &realm.source_secret).unwrap();
    let liaison = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_liaison"))
            .args(args)
            .env("LIAISON_DATABASE_URL", &db)
            .env("LIAISON_LOG", "warn")
            .output()
            .expect("the binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    let secret_path = secret.display().to_string();
    let add = [
        "source",
        "add",
        "acme",
        "keycloak",
        "--url",
        &env.url,
        "--realm",
        &realm.name,
        "--client-id",
        "liaison-source",
        "--credential-file",
        &secret_path,
        "--interval",
        "600",
    ];
    let (code, _, err) = liaison(&["org", "create", "acme"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = liaison(&add);
    assert_eq!(code, Some(0), "{out}{err}");

    let (code, out, err) = liaison(&["source", "sync", "acme", "--dry-run", "--format", "json"]);
    assert_eq!(code, Some(1), "differences remain: {out}{err}");
    let report: Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["changes"].as_array().map(Vec::len),
        Some(8),
        "4 users and 4 groups to create: {report}"
    );
    assert!(report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["op"] == "create"));

    let (code, out, err) = liaison(&["source", "sync", "acme"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("applied 8 change(s)"), "{out}");
    let (code, out, err) = liaison(&["source", "sync", "acme", "--dry-run"]);
    assert_eq!(code, Some(0), "the directory matches the realm: {out}{err}");
    assert!(out.contains("0 difference(s)"), "{out}");

    let (code, out, _) = liaison(&["source", "list", "acme", "--format", "json"]);
    assert_eq!(code, Some(0));
    let view: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(view["realm"], realm.name.as_str());
    assert_eq!(view["state"]["realm_users"], 4, "{view}");
    assert_eq!(view["state"]["applied_changes"], 8, "{view}");
    assert!(view["state"]["last_full_sync"].is_string(), "{view}");

    let (code, out, err) = liaison(&["source", "remove", "acme"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (_, out, _) = liaison(&["source", "list", "acme"]);
    assert!(out.contains("has no source"), "{out}");
    // The directory holds the realm's users now: adding again needs adoption.
    let (code, out, err) = liaison(&add);
    assert_ne!(code, Some(0), "{out}");
    assert!(err.contains("--adopt"), "{err}");
    let mut adopt = add.to_vec();
    adopt.push("--adopt");
    let (code, out, err) = liaison(&adopt);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = liaison(&["source", "sync", "acme"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("0 difference(s)"),
        "adopted by externalId: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    realm.delete().await;
}
