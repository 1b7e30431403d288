//! The web console in a real browser, on SQLite: Liaison's router on a
//! loopback port, an organisation whose Nextcloud (the fake) failed a user's
//! delivery and has since recovered, an outbox worker, and
//! `crates/console/browser/flow.mjs` driving headless Debian Chromium through
//! playwright-core: open a one-time link, see the overview, go to the user,
//! read the app's error, retry, see the user linked, read the audit log. axe-core
//! runs on every page in light and dark: zero serious or critical violations.
//!
//! The node modules are installed by the test itself when missing
//! (`npm ci` from the committed lock file into `crates/console/browser/node_modules`,
//! with npm's cache in `.npm-cache` at the repository's root, both ignored by git;
//! offline once cached). `LIAISON_KEEP_SCREENSHOTS=1` keeps the screenshots
//! and prints where they are.
//!
//! Skipped, with a message, when `chromium`, `node` or `npm` is missing,
//! unless `LIAISON_REQUIRE_CHROMIUM=1` (then the test fails).

mod common;

use axum::http::{Method, StatusCode};
use provision::fakes::{spawn_nextcloud, Outage, OutageFor};
use provision::worker::{Worker, WorkerConfig, WorkerMetrics};
use serde_json::json;
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const REQUIRE_VAR: &str = "LIAISON_REQUIRE_CHROMIUM";
const CREDENTIAL_VAR: &str = "LIAISON_CONSOLE_BROWSER_NC";

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The repository's root (two levels above this crate).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

/// Installs the flow's node modules from the lock file when missing.
fn npm_ci(dir: &Path) {
    let marker = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = |m: &Path| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((modified(m), modified(&lock)), (Some(a), Some(b)) if a >= b)
    };
    if fresh(&marker) {
        return;
    }
    let cache = repo_root().join(".npm-cache");
    let status = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--cache",
        ])
        .arg(&cache)
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .expect("cannot run npm");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium() {
    let required = std::env::var(REQUIRE_VAR).as_deref() == Ok("1");
    let chromium = std::env::var_os("LIAISON_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| on_path("chromium"));
    let (Some(chromium), Some(_), Some(_)) = (chromium, on_path("node"), on_path("npm")) else {
        assert!(
            !required,
            "{REQUIRE_VAR}=1 but chromium, node or npm is missing"
        );
        eprintln!("chromium, node or npm not found: the console's browser test is skipped");
        return;
    };
    let flow_dir = repo_root().join("crates/console/browser");
    npm_ci(&flow_dir);

    std::env::set_var(CREDENTIAL_VAR, "admin:app-pass");
    let app = common::apps().await.remove(0);
    let token = app.org("ecole").await;
    let org = app.store.org_by_slug("ecole").await.unwrap().unwrap();
    let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
    let mut tx = app.store.begin().await.unwrap();
    tx.create_app(&store::AppRecord {
        id: 0,
        org_id: org.id,
        name: "cloud".into(),
        kind: store::AppKind::Nextcloud,
        base_url: fake.base_url(),
        credential: format!("env:{CREDENTIAL_VAR}"),
        groups_as: store::GroupsAs::Groups,
        deprovision: store::Deprovision::Disable,
        adopt: store::Adopt::Never,
        settings: json!({}),
        created: time::OffsetDateTime::now_utc(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for name in ["ada", "alan", "grace"] {
        let a = app
            .call(
                Method::POST,
                "/o/ecole/scim/v2/Users",
                Some(&token),
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name,
                })),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    }

    // Nextcloud fails: the deliveries are parked. Then it recovers.
    let worker = Worker::new(
        app.store.clone(),
        WorkerConfig {
            max_attempts: 1,
            idle_poll: Duration::from_millis(100),
            ..WorkerConfig::default()
        },
        WorkerMetrics::default(),
    );
    fake.set_outage(Outage::Status(500), OutageFor::UntilCleared)
        .await;
    worker.drain().await.unwrap();
    fake.clear_outage().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker_task = tokio::spawn(worker.clone().run(stopped));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app.router.clone()).into_future());
    let link = service::console::issue_link(&app.store, None)
        .await
        .unwrap();
    let url = format!("http://{addr}/console/login/{}", link.secret);

    let keep = std::env::var("LIAISON_KEEP_SCREENSHOTS").as_deref() == Ok("1");
    let shots =
        std::env::temp_dir().join(format!("liaison-console-browser-{}", std::process::id()));
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::task::spawn_blocking({
        let flow_dir = flow_dir.clone();
        let shots = shots.clone();
        move || {
            Command::new("node")
                .arg("flow.mjs")
                .arg(&url)
                .args(["ecole", "ada"])
                .arg(&shots)
                .env("LIAISON_CHROMIUM", &chromium)
                .current_dir(&flow_dir)
                .stdin(Stdio::null())
                .output()
                .expect("cannot run node")
        }
    });
    let out = tokio::time::timeout(Duration::from_secs(180), out)
        .await
        .expect("the browser flow did not end within 3 minutes")
        .unwrap();
    let _ = stop.send(true);
    let _ = worker_task.await;
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if keep {
        eprintln!("console screenshots kept in {}", shots.display());
    } else {
        let _ = std::fs::remove_dir_all(&shots);
    }
    assert!(
        out.status.success(),
        "the browser flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(r#""result":"ok""#), "{stdout}");
    // Five pages, each scanned in light and dark.
    assert_eq!(
        stdout.matches(r#""serious_or_critical":0"#).count(),
        10,
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""step":"user""#) && stdout.contains("500"),
        "{stdout}"
    );
    assert!(
        fake.state().users.contains_key("ada"),
        "ada is in Nextcloud"
    );
}
