//! Canaille as a live SCIM client, on every store under test: a real Canaille
//! (PyPI, SQLite backend, `CANAILLE_SCIM.ENABLE_CLIENT`), driven through its
//! Python API by scripts/canaille/driver.py, pushes the users and groups it
//! creates, edits and deletes to a Liaison organisation served on a real
//! socket; the directory follows, and so does a provisioned Synapse.
//!
//! Needs `scripts/canaille.sh install DIR; source DIR/env` (skipped without,
//! failed when `LIAISON_REQUIRE_CANAILLE=1`); the Synapse part needs
//! `LIAISON_TEST_SYNAPSE_URL`/`_TOKEN` (`LIAISON_REQUIRE_SYNAPSE`).

mod common;

use axum::http::Method;
use common::App;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

fn canaille_python() -> Option<String> {
    match std::env::var("LIAISON_TEST_CANAILLE_PYTHON")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(p) => Some(p),
        None => {
            assert!(
                std::env::var("LIAISON_REQUIRE_CANAILLE").as_deref() != Ok("1"),
                "LIAISON_REQUIRE_CANAILLE=1 but LIAISON_TEST_CANAILLE_PYTHON is not set"
            );
            eprintln!(
                "skipped: set LIAISON_TEST_CANAILLE_PYTHON (scripts/canaille.sh install DIR; \
                 source DIR/env) to run against Canaille"
            );
            None
        }
    }
}

/// The driver process: one JSON command per line, one answer per line.
struct Canaille {
    child: Child,
    io: Arc<Mutex<(ChildStdin, BufReader<ChildStdout>)>>,
}

impl Canaille {
    fn start(python: &str) -> Canaille {
        let driver = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/canaille/driver.py"
        );
        let mut child = Command::new(python)
            .arg(driver)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Canaille driver starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Canaille {
            child,
            io: Arc::new(Mutex::new((stdin, stdout))),
        }
    }

    /// Runs a command (blocking I/O off the runtime's threads); panics when
    /// it fails or when Canaille logged a warning (how it reports a push that
    /// failed).
    async fn run(&self, cmd: Value) -> Value {
        let io = self.io.clone();
        let sent = cmd.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let mut io = io.lock().unwrap();
            writeln!(io.0, "{sent}").unwrap();
            io.0.flush().unwrap();
            let mut line = String::new();
            io.1.read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        let answer: Value =
            serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{cmd}: {answer:?}"));
        assert_eq!(answer["ok"], true, "{cmd}: {answer}");
        assert_eq!(
            answer["warnings"],
            json!([]),
            "{cmd}: Canaille reported: {answer}"
        );
        answer
    }
}

impl Drop for Canaille {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn find(app: &App, token: &str, resource: &str, ext: &str) -> Option<Value> {
    let a = app
        .call(
            Method::GET,
            &format!("/o/acme/scim/v2/{resource}?filter=externalId%20eq%20%22{ext}%22"),
            Some(token),
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{}: {}", app.label, a.body);
    a.body["Resources"]
        .as_array()
        .and_then(|r| r.first().cloned())
}

const SYNAPSE_VAR: &str = "LIAISON_E2E_CANAILLE_SYNAPSE_TOKEN";

async fn synapse_get(http: &reqwest::Client, base: &str, token: &str, path: &str) -> Value {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("Synapse answers");
    assert_eq!(r.status().as_u16(), 200, "{path}");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaille_pushes_users_and_groups_that_the_directory_and_synapse_follow() {
    let Some(python) = canaille_python() else {
        return;
    };
    let synapse = common::synapse_from_env();
    if let Some((_, t)) = &synapse {
        std::env::set_var(SYNAPSE_VAR, t);
    }
    let http = reqwest::Client::new();
    for app in common::apps().await {
        let l = app.label.clone();
        let token = app.org("acme").await;
        let org = app.store.org_by_slug("acme").await.unwrap().unwrap();
        let matrix = match &synapse {
            Some((url, _)) => {
                Some(common::add_synapse_app(&app.store, org.id, url, SYNAPSE_VAR).await)
            }
            None => None,
        };
        let worker = common::fast_worker(&app.store);
        let drain = || async {
            let r = worker.drain().await.unwrap();
            assert_eq!(r.retried + r.poisoned, 0, "{l}: {r:?}");
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app.router.clone();
        let server = tokio::spawn(async move { axum::serve(listener, router).await });

        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let p = format!("cn{}{}", &l[..2], nanos % 1_000_000_000);
        let db = std::env::temp_dir().join(format!("liaison-canaille-{p}.db"));
        let canaille = Canaille::start(&python);
        canaille
            .run(json!({
                "op": "setup", "db": db.display().to_string(),
                "scim_url": format!("http://{addr}/o/acme/scim/v2"), "token": token,
            }))
            .await;

        // Users and a group.
        let user = |name: &str, given: &str, family: &str| {
            json!({"op": "create_user", "user_name": format!("{p}{name}"), "given_name": given,
                   "family_name": family, "email": format!("{p}{name}@example.org")})
        };
        let alice = canaille.run(user("alice", "Alice", "Liddell")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let bob = canaille.run(user("bob", "Bob", "Builder")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let a = find(&app, &token, "Users", &alice)
            .await
            .expect("alice pushed");
        assert_eq!(a["userName"], format!("{p}alice"), "{l}");
        assert_eq!(a["name"]["familyName"], "Liddell", "{l}");
        assert_eq!(
            a["emails"][0]["value"],
            format!("{p}alice@example.org"),
            "{l}"
        );
        let team = canaille
            .run(json!({"op": "create_group", "display_name": format!("{p} Teachers"), "members": [alice, bob]}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let g = find(&app, &token, "Groups", &team)
            .await
            .expect("group pushed");
        let members = |g: &Value| -> BTreeSet<String> {
            g["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["value"].as_str().map(str::to_owned))
                .collect()
        };
        let a_id = a["id"].as_str().unwrap().to_owned();
        let b_id = find(&app, &token, "Users", &bob).await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            members(&g),
            BTreeSet::from([a_id.clone(), b_id.clone()]),
            "{l}: {g}"
        );
        drain().await;
        let room = match &matrix {
            Some(m) => app
                .store
                .link(m.id, g["id"].as_str().unwrap())
                .await
                .unwrap()
                .and_then(|l| l.app_ref),
            None => None,
        };
        if let (Some((url, t)), Some(room)) = (&synapse, &room) {
            let joined = synapse_get(
                &http,
                url,
                t,
                &format!("/_synapse/admin/v1/rooms/{room}/members"),
            )
            .await;
            for who in ["alice", "bob"] {
                assert!(
                    joined["members"]
                        .as_array()
                        .unwrap()
                        .contains(&json!(format!("@{p}{who}:localhost"))),
                    "{l}: {who}: {joined}"
                );
            }
        }

        // Edits: a renamed user, a renamed group that loses a member.
        canaille
            .run(
                json!({"op": "update_user", "id": alice, "family_name": "Pleasance",
                        "email": format!("{p}alice@ecole.example")}),
            )
            .await;
        let a = find(&app, &token, "Users", &alice).await.unwrap();
        assert_eq!(a["name"]["familyName"], "Pleasance", "{l}");
        assert_eq!(
            a["emails"][0]["value"],
            format!("{p}alice@ecole.example"),
            "{l}"
        );
        canaille
            .run(json!({"op": "update_group", "id": team, "display_name": format!("{p} Enseignants"), "members": [alice]}))
            .await;
        let g = find(&app, &token, "Groups", &team).await.unwrap();
        assert_eq!(g["displayName"], format!("{p} Enseignants"), "{l}");
        assert_eq!(members(&g), BTreeSet::from([a_id.clone()]), "{l}");
        drain().await;
        if let (Some((url, t)), Some(room)) = (&synapse, &room) {
            let u = synapse_get(
                &http,
                url,
                t,
                &format!("/_synapse/admin/v2/users/@{p}alice:localhost"),
            )
            .await;
            let mails: Vec<&str> = u["threepids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["address"].as_str())
                .collect();
            assert_eq!(mails, vec![format!("{p}alice@ecole.example")], "{l}: {u}");
            let joined = synapse_get(
                &http,
                url,
                t,
                &format!("/_synapse/admin/v1/rooms/{room}/members"),
            )
            .await;
            assert!(
                !joined["members"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(format!("@{p}bob:localhost"))),
                "{l}: bob left the room: {joined}"
            );
        }

        // Deletions.
        canaille.run(json!({"op": "delete_user", "id": bob})).await;
        assert!(
            find(&app, &token, "Users", &bob).await.is_none(),
            "{l}: bob deleted"
        );
        canaille
            .run(json!({"op": "delete_group", "id": team}))
            .await;
        assert!(
            find(&app, &token, "Groups", &team).await.is_none(),
            "{l}: group deleted"
        );
        drain().await;
        if let Some((url, t)) = &synapse {
            let u = synapse_get(
                &http,
                url,
                t,
                &format!("/_synapse/admin/v2/users/@{p}bob:localhost"),
            )
            .await;
            assert_eq!(u["deactivated"], true, "{l}: {u}");
        }
        drop(canaille);
        server.abort();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
}
