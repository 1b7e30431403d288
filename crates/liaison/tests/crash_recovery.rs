//! A crash of the server while deliveries are in flight loses nothing and
//! duplicates nothing, on every store under test: the real `liaison` binary
//! serves a database (an SQLite file, or a fresh PostgreSQL database), its
//! organisation has a Nextcloud app (the fake of `provision::fakes`, running in
//! this test and answering slowly), 50 SCIM changes arrive over HTTP, the process
//! is killed with SIGKILL while deliveries are in flight, and a new process on
//! the same database takes the expired leases over. In the end the fake holds
//! exactly the directory and created each account once.
//!
//! Stopping is graceful: a server sent SIGTERM hands back the deliveries it
//! holds (on both stores), and three servers on PostgreSQL replaced one by one
//! during a burst of changes deliver each change once.
//!
//! Chaos: three servers on PostgreSQL deliver a burst of 500 changes to a real
//! Synapse and to the fake Nextcloud while one of them is killed with SIGKILL
//! and restarted; the others take its deliveries over when its leases expire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use provision::fakes::{spawn_nextcloud, FakeApp, NextcloudState, Outage, OutageFor};
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection, Executor};

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BIN: &str = env!("CARGO_BIN_EXE_liaison");
const CREDENTIAL_VAR: &str = "LIAISON_CRASH_TEST_NEXTCLOUD";

/// A database for the binary: its URL, and the PostgreSQL database to drop.
struct Database {
    url: String,
    drop: Option<(String, String)>,
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((server, name)) = self.drop.take() {
            // Runs inside the test's runtime: use a thread with its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(mut c) = AnyConnection::connect(&server).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = c.execute(sql.as_str()).await;
                    }
                });
            })
            .join();
        }
    }
}

/// One database per engine under test.
async fn databases(dir: &Path) -> Vec<(&'static str, Database)> {
    let mut out = vec![(
        "sqlite",
        Database {
            url: format!("sqlite://{}", dir.join("liaison.db").display()),
            drop: None,
        },
    )];
    match std::env::var(store::testing::POSTGRES_URL_VAR) {
        Ok(server) if !server.is_empty() => {
            sqlx::any::install_default_drivers();
            let name = format!("liaison_crash_{}", uuid::Uuid::new_v4().simple());
            let mut admin = AnyConnection::connect(&server).await.expect("PostgreSQL");
            admin
                .execute(format!("CREATE DATABASE \"{name}\"").as_str())
                .await
                .expect("create database");
            let _ = admin.close().await;
            out.push((
                "postgres",
                Database {
                    url: store::testing::with_database(&server, &name),
                    drop: Some((server, name)),
                },
            ));
        }
        _ => assert!(
            std::env::var(store::testing::REQUIRE_POSTGRES_VAR).as_deref() != Ok("1"),
            "PostgreSQL is required but {} is not set",
            store::testing::POSTGRES_URL_VAR
        ),
    }
    out
}

/// The `liaison` binary with the test's configuration.
fn liaison(db: &str, listen: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LIAISON_DATABASE_URL", db)
        .env("LIAISON_LISTEN", listen)
        .env("LIAISON_LOG", "warn")
        .env("LIAISON_PROVISIONING__LEASE_SECS", "2")
        .env("LIAISON_PROVISIONING__BASE_BACKOFF_SECS", "0.05")
        .env("LIAISON_PROVISIONING__MAX_BACKOFF_SECS", "0.5")
        .env("LIAISON_PROVISIONING__RECONCILE_INTERVAL_SECS", "0")
        .env("LIAISON_METRICS__PUBLIC", "true")
        .env(CREDENTIAL_VAR, "admin:app-pass");
    cmd
}

/// Runs a command to completion and returns its standard output.
fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().expect("the binary runs");
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts `liaison serve` and waits until it answers.
async fn serve(db: &str, listen: &str, http: &reqwest::Client) -> Child {
    serve_with(db, listen, &[], http).await
}

/// Starts `liaison serve` with more variables and waits until it answers.
async fn serve_with(db: &str, listen: &str, env: &[(&str, &str)], http: &reqwest::Client) -> Child {
    let mut cmd = liaison(db, listen);
    cmd.envs(env.iter().copied());
    cmd.arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("serve starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("http://{listen}/metrics")).send().await {
            if r.status().is_success() {
                return child;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited: {status}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve did not answer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pending and poisoned deliveries, from `/metrics`.
async fn outbox(http: &reqwest::Client, listen: &str) -> (u64, u64) {
    let text = http
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let sum = |name: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next())
            .filter_map(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    };
    (
        sum("liaison_outbox_pending"),
        sum("liaison_outbox_poisoned"),
    )
}

struct Scim<'a> {
    http: &'a reqwest::Client,
    base: String,
    token: String,
}

impl Scim<'_> {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("Liaison answers");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    async fn patch(&self, path: &str, ops: Value) {
        let body = json!({"schemas": [PATCH], "Operations": ops});
        self.send(reqwest::Method::PATCH, path, Some(body)).await;
    }

    async fn list(&self, what: &str) -> Vec<Value> {
        let r = self
            .send(reqwest::Method::GET, &format!("/{what}?count=1000"), None)
            .await;
        r["Resources"].as_array().cloned().unwrap_or_default()
    }
}

/// Creates the user `name` (with a display name and an address) and returns
/// its id.
async fn create_user(scim: &Scim<'_>, name: &str) -> String {
    let body = json!({
        "schemas": [U],
        "userName": name,
        "displayName": format!("User {name}"),
        "emails": [{"value": format!("{name}@example.org")}],
    });
    let r = scim.send(reqwest::Method::POST, "/Users", Some(body)).await;
    r["id"].as_str().expect("id").to_owned()
}

/// The 50 changes: 30 users created, 10 renamed, 5 deactivated, a group of 4
/// created, 3 members added and 1 removed.
async fn changes(scim: &Scim<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(create_user(scim, &format!("crash{i:02}")).await);
    }
    let replace = |attr: &str, v: Value| json!([{"op": "replace", "path": attr, "value": v}]);
    for id in &ids[0..10] {
        scim.patch(
            &format!("/Users/{id}"),
            replace("displayName", json!(format!("Renamed {id}"))),
        )
        .await;
    }
    for id in &ids[10..15] {
        scim.patch(&format!("/Users/{id}"), replace("active", json!(false)))
            .await;
    }
    let members: Vec<Value> = ids[20..24].iter().map(|m| json!({"value": m})).collect();
    let body = json!({"schemas": [G], "displayName": "Survivors", "members": members});
    let group = scim
        .send(reqwest::Method::POST, "/Groups", Some(body))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for id in &ids[24..27] {
        scim.patch(
            &format!("/Groups/{group}"),
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )
        .await;
    }
    scim.patch(
        &format!("/Groups/{group}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[20])}]),
    )
    .await;
    ids
}

type Users = BTreeMap<String, (String, String, bool)>;
type Groups = BTreeMap<String, (String, BTreeSet<String>)>;

/// What the directory holds, read over SCIM, in the shape of [`nextcloud`].
async fn directory(scim: &Scim<'_>) -> (Users, Groups) {
    let mut users = Users::new();
    let mut active = BTreeMap::new();
    for u in scim.list("Users").await {
        let name = u["userName"].as_str().unwrap_or_default().to_owned();
        let on = u["active"].as_bool().unwrap_or(true);
        active.insert(
            u["id"].as_str().unwrap_or_default().to_owned(),
            (name.clone(), on),
        );
        let email = u["emails"][0]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let display = u["displayName"].as_str().unwrap_or_default().to_owned();
        users.insert(name, (display, email, on));
    }
    let mut groups = Groups::new();
    for g in scim.list("Groups").await {
        let members = g["members"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| m["value"].as_str())
                    .filter_map(|id| active.get(id))
                    .filter(|(_, on)| *on)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let id = g["id"].as_str().unwrap_or_default().to_owned();
        groups.insert(
            id,
            (
                g["displayName"].as_str().unwrap_or_default().to_owned(),
                members,
            ),
        );
    }
    (users, groups)
}

fn nextcloud(state: &NextcloudState) -> (Users, Groups) {
    let users = state
        .users
        .values()
        .filter(|u| u.id != "admin")
        .map(|u| {
            (
                u.id.clone(),
                (u.display_name.clone(), u.email.clone(), u.enabled),
            )
        })
        .collect();
    let groups = state
        .groups
        .values()
        // Nextcloud's `admin` group, and the group marking Liaison's accounts.
        .filter(|g| g.id != "admin" && g.id != provision::connectors::nextcloud::MARKER_GROUP)
        .map(|g| {
            let members = state.members(&g.id).into_iter().collect();
            (g.id.clone(), (g.display_name.clone(), members))
        })
        .collect();
    (users, groups)
}

/// Successful user creations in the fake's log, by user id.
fn creations(fake: &FakeApp<NextcloudState>) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/ocs/v2.php/cloud/users" && r.status == 200)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_and_duplicates_no_delivery() {
    let dir = std::env::temp_dir().join(format!("liaison-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let http = reqwest::Client::new();
    for (label, db) in databases(&dir).await {
        let fake = spawn_nextcloud("admin", "app-pass").await.expect("fake");
        let listen = format!("127.0.0.1:{}", free_port());
        let token = acme_with_nextcloud(&db.url, &fake);

        // Every request takes 300 ms: deliveries stay in flight.
        fake.set_outage(
            Outage::Delay(Duration::from_millis(300)),
            OutageFor::UntilCleared,
        )
        .await;
        let mut server = serve(&db.url, &listen, &http).await;
        let scim = Scim {
            http: &http,
            base: format!("http://{listen}/o/acme/scim/v2"),
            token,
        };
        let started = tokio::time::Instant::now();
        changes(&scim).await;
        // Let the worker lease and start a few rounds, then kill it mid-flight.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (pending, _) = outbox(&http, &listen).await;
        let seen_before_kill = fake.requests().len();
        server.kill().expect("SIGKILL");
        server.wait().expect("reaped");
        assert!(
            pending > 0,
            "{label}: deliveries were still pending at the kill"
        );
        // Requests the dead process had sent still complete on the app's side.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let in_flight = fake.requests().len().saturating_sub(seen_before_kill);
        eprintln!(
            "{label}: killed after {:?} with {pending} deliveries pending, \
             {in_flight} requests in flight, {} users created so far",
            started.elapsed(),
            creations(&fake)
        );

        // A new process takes the expired leases over.
        let mut server = serve(&db.url, &listen, &http).await;
        fake.set_outage(
            Outage::Delay(Duration::from_millis(20)),
            OutageFor::UntilCleared,
        )
        .await;
        settle(&http, &listen, label).await;
        let recovered = started.elapsed();
        fake.clear_outage().await;

        let (want_users, want_groups) = directory(&scim).await;
        let (have_users, have_groups) = nextcloud(&fake.state());
        server.kill().expect("SIGKILL");
        server.wait().expect("reaped");
        assert_eq!(want_users.len(), 30, "{label}");
        assert_eq!(have_users, want_users, "{label}: users in Nextcloud");
        assert_eq!(have_groups, want_groups, "{label}: groups in Nextcloud");
        assert_eq!(creations(&fake), 30, "{label}: each user created once");
        eprintln!("{label}: all 50 changes delivered {recovered:?} after the first");
        drop(db);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `liaison serve` that is killed if a failed assertion drops it (an
/// orphan would keep the test's output open).
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM to a `liaison serve`, as Kubernetes sends it; the process must exit
/// by itself (status 0). Waits up to two minutes, far beyond any drain.
async fn terminate(mut server: Server, what: &str) {
    let mut child = server.0.take().expect("a running server");
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "{what}: kill -TERM {pid}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            assert!(
                status.success(),
                "{what}: exited with {status} after SIGTERM"
            );
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running two minutes after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Outbox rows as the database holds them: (leased now, pending and never
/// attempted with no lease, all rows).
async fn outbox_rows(db: &str) -> (i64, i64, i64) {
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(db).await.expect("database");
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    let now = i64::try_from(now).expect("micros");
    let mut out = [0i64; 3];
    let queries = [
        format!("SELECT COUNT(*) FROM outbox WHERE lease_until > {now}"),
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND attempts = 0 AND lease_until = 0"
            .to_owned(),
        "SELECT COUNT(*) FROM outbox".to_owned(),
    ];
    for (n, sql) in out.iter_mut().zip(queries) {
        let row = sqlx::query(&sql).fetch_one(&mut c).await.expect("count");
        *n = sqlx::Row::try_get::<i64, _>(&row, 0).expect("a count");
    }
    let _ = c.close().await;
    (out[0], out[1], out[2])
}

/// Waits until every pending delivery is done, per `/metrics` of `listen`.
async fn settle(http: &reqwest::Client, listen: &str, label: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (pending, poisoned) = outbox(http, listen).await;
        assert_eq!(poisoned, 0, "{label}: nothing is parked as poison");
        if pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{label}: {pending} deliveries still pending"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An organisation `acme` with the fake Nextcloud as its app; returns its token.
fn acme_with_nextcloud(db: &str, fake: &FakeApp<NextcloudState>) -> String {
    let listen = "127.0.0.1:9";
    let mut cmd = liaison(db, listen);
    cmd.args(["org", "create", "acme"]);
    run(cmd, "org create");
    let mut cmd = liaison(db, listen);
    cmd.args(["token", "issue", "acme"]);
    let token = run(cmd, "token issue")
        .lines()
        .last()
        .expect("the token on the last line")
        .trim()
        .to_owned();
    let mut cmd = liaison(db, listen);
    cmd.args(["app", "add", "acme", "nextcloud", "--url", &fake.base_url()])
        .args(["--credential-env", CREDENTIAL_VAR]);
    run(cmd, "app add");
    token
}

/// Starts `liaison serve` with long leases (300 s: a row a stopped process
/// kept would wait that long) and the drain given.
async fn serve_draining(db: &str, listen: &str, drain: &str, http: &reqwest::Client) -> Server {
    let env = [
        ("LIAISON_PROVISIONING__LEASE_SECS", "300"),
        ("LIAISON_DRAIN_SECS", drain),
    ];
    Server(Some(serve_with(db, listen, &env, http).await))
}

/// Attempts to create a Nextcloud account, successful or not.
fn creation_attempts(fake: &FakeApp<NextcloudState>) -> usize {
    fake.count("POST", "/ocs/v2.php/cloud/users")
}

/// A stopped server starts no new delivery, abandons the running ones at the
/// drain deadline, and hands every row it holds back at once: they are
/// pending, never attempted and not leased when it has exited (with leases of
/// 300 s, another process would otherwise wait 5 minutes for them). A new
/// process then delivers each of them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_hands_back_the_deliveries_it_holds() {
    let dir = std::env::temp_dir().join(format!("liaison-drain-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let http = reqwest::Client::new();
    for (label, db) in databases(&dir).await {
        let fake = spawn_nextcloud("admin", "app-pass").await.expect("fake");
        let token = acme_with_nextcloud(&db.url, &fake);
        // The app answers after 20 s: every delivery started is still running
        // at the 1 s drain deadline.
        fake.set_outage(
            Outage::Delay(Duration::from_secs(20)),
            OutageFor::UntilCleared,
        )
        .await;
        let listen = format!("127.0.0.1:{}", free_port());
        let scim = Scim {
            http: &http,
            base: format!("http://{listen}/o/acme/scim/v2"),
            token,
        };
        // The changes arrive while no worker runs, so that the first round
        // leases all 12 rows.
        let intake = serve_with(
            &db.url,
            &listen,
            &[("LIAISON_PROVISIONING__WORKER", "false")],
            &http,
        )
        .await;
        for i in 0..12 {
            create_user(&scim, &format!("drain{i:02}")).await;
        }
        terminate(Server(Some(intake)), label).await;
        let server = serve_draining(&db.url, &listen, "1", &http).await;
        // Stop once the worker holds all 12 (8 running, 4 waiting for a slot).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while outbox_rows(&db.url).await.0 < 12 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: never leased"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        terminate(server, label).await;
        let (leased, handed_back, rows) = outbox_rows(&db.url).await;
        assert_eq!(rows, 12, "{label}: no delivery completed");
        assert_eq!(leased, 0, "{label}: no row is left leased");
        assert_eq!(
            handed_back, 12,
            "{label}: every row handed back, unattempted"
        );

        fake.clear_outage().await;
        let server = serve_draining(&db.url, &listen, "1", &http).await;
        settle(&http, &listen, label).await;
        let (want, _) = directory(&scim).await;
        let (have, _) = nextcloud(&fake.state());
        terminate(server, label).await;
        assert_eq!(have, want, "{label}: users in Nextcloud");
        assert_eq!(creations(&fake), 12, "{label}: each user created once");
        drop(db);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rolling upgrade of three replicas on PostgreSQL: three `liaison serve`
/// processes share one database behind a client that spreads requests over
/// them (as a Service does), a burst of changes arrives, and the processes
/// are replaced one by one during it: taken out of the rotation (the
/// endpoint removed), sent SIGTERM, and a new process started in their place.
/// Every change reaches the app once: each user is created by exactly one
/// request (a delivery cut short and redone would send a second), and the app
/// ends up holding the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_replaced_one_by_one_deliver_every_change_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::sync::RwLock;

    let dir = std::env::temp_dir().join(format!("liaison-roll-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let Some((label, db)) = databases(&dir)
        .await
        .into_iter()
        .find(|(label, _)| *label == "postgres")
    else {
        eprintln!(
            "skipped: replicas need PostgreSQL ({} not set)",
            store::testing::POSTGRES_URL_VAR
        );
        return;
    };
    // A fresh connection per request: a process that stopped leaves no
    // pooled connection behind.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let fake = spawn_nextcloud("admin", "app-pass").await.expect("fake");
    let token = acme_with_nextcloud(&db.url, &fake);
    // Every request to the app takes 250 ms: deliveries are in flight when a
    // process is told to stop.
    fake.set_outage(
        Outage::Delay(Duration::from_millis(250)),
        OutageFor::UntilCleared,
    )
    .await;
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let listen = format!("127.0.0.1:{}", free_port());
        servers.push(serve_draining(&db.url, &listen, "20", &http).await);
        addrs.push(RwLock::new(listen));
    }
    // The rotation: one address per replica. Requests hold it for reading;
    // a replacement takes it for writing, so that no request goes to a
    // stopping process and none is cut off (the endpoint leaves the Service
    // before SIGTERM).
    let slots: Arc<Vec<RwLock<String>>> = Arc::new(addrs);
    let next = Arc::new(AtomicUsize::new(0));
    const USERS: usize = 90;

    let burst = {
        let (slots, next, http, token) = (slots.clone(), next.clone(), http.clone(), token.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..USERS + 30 {
                // The next replica in the rotation that is not being replaced.
                let addr = loop {
                    let n = next.fetch_add(1, Ordering::Relaxed) % 3;
                    if let Ok(addr) = slots[n].try_read() {
                        break addr;
                    }
                };
                let scim = Scim {
                    http: &http,
                    base: format!("http://{}/o/acme/scim/v2", *addr),
                    token: token.clone(),
                };
                if i < USERS {
                    ids.push(create_user(&scim, &format!("roll{i:03}")).await);
                } else {
                    // Then 30 renames of users created earlier.
                    let id = &ids[(i - USERS) * 3];
                    let ops = json!([{"op": "replace", "path": "displayName", "value": format!("Renamed {i}")}]);
                    scim.patch(&format!("/Users/{id}"), ops).await;
                }
            }
        })
    };

    // Replace each replica once while the burst runs.
    let mut in_flight_at_stop = Vec::new();
    for slot in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut addr = slots[slot].write().await;
        let (pending, _) = outbox(&http, &addr).await;
        in_flight_at_stop.push(pending);
        // The new replica starts (and is ready) before the old one stops, as
        // with `maxSurge: 1, maxUnavailable: 0`.
        let listen = format!("127.0.0.1:{}", free_port());
        let fresh = serve_draining(&db.url, &listen, "20", &http).await;
        let old = std::mem::replace(&mut servers[slot], fresh);
        terminate(old, &format!("{label}: replica {slot}")).await;
        *addr = listen;
    }
    burst.await.expect("the burst of changes");
    eprintln!("{label}: pending deliveries when each replica was stopped: {in_flight_at_stop:?}");
    assert!(
        in_flight_at_stop.iter().any(|&n| n > 0),
        "{label}: deliveries were pending during the replacements"
    );

    let listen = slots[0].read().await.clone();
    settle(&http, &listen, label).await;
    fake.clear_outage().await;
    let scim = Scim {
        http: &http,
        base: format!("http://{listen}/o/acme/scim/v2"),
        token,
    };
    let (want, _) = directory(&scim).await;
    let (have, _) = nextcloud(&fake.state());
    for server in servers {
        terminate(server, label).await;
    }
    assert_eq!(want.len(), USERS, "{label}");
    assert_eq!(have, want, "{label}: users in Nextcloud");
    assert_eq!(creations(&fake), USERS, "{label}: each user created");
    assert_eq!(
        creation_attempts(&fake),
        USERS,
        "{label}: no creation was sent twice"
    );
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

const SYNAPSE_VAR: &str = "LIAISON_CRASH_TEST_SYNAPSE";

/// Synapse's URL and admin token from the test environment, or `None` (with a
/// notice; a failure when `LIAISON_REQUIRE_SYNAPSE=1`).
fn synapse_env() -> Option<(String, String)> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("LIAISON_TEST_SYNAPSE_URL"),
        var("LIAISON_TEST_SYNAPSE_TOKEN"),
    ) {
        (Some(url), Some(token)) => Some((url.trim_end_matches('/').to_owned(), token)),
        _ => {
            assert!(
                std::env::var("LIAISON_REQUIRE_SYNAPSE").as_deref() != Ok("1"),
                "LIAISON_REQUIRE_SYNAPSE=1 but LIAISON_TEST_SYNAPSE_URL/_TOKEN are not set"
            );
            None
        }
    }
}

/// Starts `liaison serve` for the chaos test: production leases (15 s),
/// the Synapse token in its environment.
async fn serve_chaos(
    db: &str,
    listen: &str,
    synapse_token: &str,
    http: &reqwest::Client,
) -> Server {
    let env = [
        ("LIAISON_PROVISIONING__LEASE_SECS", "15"),
        ("LIAISON_DRAIN_SECS", "5"),
        (SYNAPSE_VAR, synapse_token),
    ];
    Server(Some(serve_with(db, listen, &env, http).await))
}

/// Three `liaison serve` on one PostgreSQL database deliver a burst of 500
/// changes (300 users created, 150 renamed, 50 deactivated) to a real Synapse
/// and to the fake Nextcloud, while one of them is killed with SIGKILL (taken
/// out of the rotation first, as a dead pod's endpoint is) and restarted.
/// Every change is applied exactly once in effect: each account created once
/// in Nextcloud, both apps holding the directory's state, nothing poisoned, and
/// the outbox empty within a bounded time (the killed process's rows are taken
/// over when their 15 s leases expire, not after 300 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_one_killed_deliver_a_burst_once_to_synapse_and_nextcloud() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::sync::RwLock;

    let dir = std::env::temp_dir().join(format!("liaison-chaos-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let Some((synapse_url, synapse_token)) = synapse_env() else {
        eprintln!("skipped: needs LIAISON_TEST_SYNAPSE_URL and LIAISON_TEST_SYNAPSE_TOKEN");
        return;
    };
    let Some((label, db)) = databases(&dir)
        .await
        .into_iter()
        .find(|(label, _)| *label == "postgres")
    else {
        eprintln!(
            "skipped: replicas need PostgreSQL ({} not set)",
            store::testing::POSTGRES_URL_VAR
        );
        return;
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let fake = spawn_nextcloud("admin", "app-pass").await.expect("fake");
    let token = acme_with_nextcloud(&db.url, &fake);
    let mut cmd = liaison(&db.url, "127.0.0.1:9");
    cmd.args(["app", "add", "acme", "synapse", "--url", &synapse_url])
        .args([
            "--server-name",
            "localhost",
            "--credential-env",
            SYNAPSE_VAR,
        ]);
    run(cmd, "app add synapse");
    // Nextcloud answers in 100 ms: deliveries are in flight at the kill.
    fake.set_outage(
        Outage::Delay(Duration::from_millis(100)),
        OutageFor::UntilCleared,
    )
    .await;

    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let listen = format!("127.0.0.1:{}", free_port());
        servers.push(serve_chaos(&db.url, &listen, &synapse_token, &http).await);
        addrs.push(RwLock::new(listen));
    }
    let slots: Arc<Vec<RwLock<String>>> = Arc::new(addrs);
    let next = Arc::new(AtomicUsize::new(0));
    const USERS: usize = 300;
    const RENAMES: usize = 150;
    const DEACTIVATIONS: usize = 50;
    // Synapse keeps its accounts between runs: names unique to this one.
    let prefix = format!(
        "chaos{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() % 10_000_000_000)
            .unwrap_or_default()
    );

    let burst = {
        let (slots, next, http, token, prefix) = (
            slots.clone(),
            next.clone(),
            http.clone(),
            token.clone(),
            prefix.clone(),
        );
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..USERS + RENAMES + DEACTIVATIONS {
                let addr = loop {
                    let n = next.fetch_add(1, Ordering::Relaxed) % 3;
                    if let Ok(addr) = slots[n].try_read() {
                        break addr;
                    }
                    tokio::task::yield_now().await;
                };
                let scim = Scim {
                    http: &http,
                    base: format!("http://{}/o/acme/scim/v2", *addr),
                    token: token.clone(),
                };
                let replace =
                    |attr: &str, v: Value| json!([{"op": "replace", "path": attr, "value": v}]);
                if i < USERS {
                    ids.push(create_user(&scim, &format!("{prefix}u{i:03}")).await);
                } else if i < USERS + RENAMES {
                    let id = &ids[(i - USERS) * 2];
                    let ops = replace("displayName", json!(format!("Renamed {i}")));
                    scim.patch(&format!("/Users/{id}"), ops).await;
                } else {
                    let id = &ids[(i - USERS - RENAMES) * 2 + 1];
                    scim.patch(&format!("/Users/{id}"), replace("active", json!(false)))
                        .await;
                }
            }
        })
    };

    // Kill replica 1 in the middle of the burst, then start it again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while creations(&fake) < USERS / 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{label}: the burst did not get going"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending_at_kill = {
        let mut addr = slots[1].write().await;
        let (pending, _) = outbox(&http, &addr).await;
        let mut victim = servers[1].0.take().expect("running");
        victim.kill().expect("SIGKILL");
        victim.wait().expect("reaped");
        let listen = format!("127.0.0.1:{}", free_port());
        servers[1] = serve_chaos(&db.url, &listen, &synapse_token, &http).await;
        *addr = listen;
        pending
    };
    burst.await.expect("the burst of changes");
    eprintln!("{label}: {pending_at_kill} deliveries pending when replica 1 was killed");

    // Bounded: far below the 300 s a killed process's leases used to last.
    let listen = slots[0].read().await.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let (pending, poisoned) = outbox(&http, &listen).await;
        assert_eq!(poisoned, 0, "{label}: nothing is parked as poison");
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{label}: {pending} deliveries still pending"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    fake.clear_outage().await;

    let scim = Scim {
        http: &http,
        base: format!("http://{listen}/o/acme/scim/v2"),
        token,
    };
    let (want, _) = directory(&scim).await;
    let (have, _) = nextcloud(&fake.state());
    assert_eq!(want.len(), USERS, "{label}");
    assert_eq!(have, want, "{label}: users in Nextcloud");
    assert_eq!(
        creations(&fake),
        USERS,
        "{label}: each account created once"
    );

    // Synapse holds each user as the directory has it.
    for (name, (display, _, active)) in &want {
        let mxid = format!("@{name}:localhost");
        let r = http
            .get(format!("{synapse_url}/_synapse/admin/v2/users/{mxid}"))
            .bearer_auth(&synapse_token)
            .send()
            .await
            .expect("Synapse answers");
        assert_eq!(r.status().as_u16(), 200, "{label}: {mxid} in Synapse");
        let user: Value = r.json().await.expect("JSON");
        assert_eq!(
            user["deactivated"].as_bool().unwrap_or(false),
            !active,
            "{label}: {mxid} active"
        );
        if *active {
            assert_eq!(
                user["displayname"].as_str().unwrap_or_default(),
                display,
                "{label}: {mxid} display name"
            );
        }
    }
    for server in servers {
        terminate(server, label).await;
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
