//! A crash of the server while deliveries are in flight loses nothing and
//! duplicates nothing, on every store under test: the real `liaison` binary
//! serves a database (an SQLite file, or a fresh PostgreSQL database), its
//! organisation has a Nextcloud app (the fake of `provision::fakes`, running in
//! this test and answering slowly), 50 SCIM changes arrive over HTTP, the process
//! is killed with SIGKILL while deliveries are in flight, and a new process on
//! the same database takes the expired leases over. In the end the fake holds
//! exactly the directory and created each account once.

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
    let mut cmd = liaison(db, listen);
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

/// The 50 changes: 30 users created, 10 renamed, 5 deactivated, a group of 4
/// created, 3 members added and 1 removed.
async fn changes(scim: &Scim<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..30 {
        let body = json!({
            "schemas": [U],
            "userName": format!("crash{i:02}"),
            "displayName": format!("Crash {i}"),
            "emails": [{"value": format!("crash{i:02}@example.org")}],
        });
        let r = scim.send(reqwest::Method::POST, "/Users", Some(body)).await;
        ids.push(r["id"].as_str().expect("id").to_owned());
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
        .filter(|g| g.id != "admin")
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
        let mut cmd = liaison(&db.url, &listen);
        cmd.args(["org", "create", "acme"]);
        run(cmd, "org create");
        let mut cmd = liaison(&db.url, &listen);
        cmd.args(["token", "issue", "acme"]);
        let token = run(cmd, "token issue")
            .lines()
            .last()
            .expect("the token on the last line")
            .trim()
            .to_owned();
        let mut cmd = liaison(&db.url, &listen);
        cmd.args(["app", "add", "acme", "nextcloud", "--url", &fake.base_url()])
            .args(["--credential-env", CREDENTIAL_VAR]);
        run(cmd, "app add");

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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (pending, poisoned) = outbox(&http, &listen).await;
            assert_eq!(poisoned, 0, "{label}: nothing is parked as poison");
            if pending == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: {pending} still pending"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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
