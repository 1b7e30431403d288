//! A Liaison router over each store under test, driven in-process (no socket).

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use liaison::config::Config;
use liaison::http::{router, AppState};
use liaison::metrics::Metrics;
use serde_json::Value;
use service::tokens;
use std::sync::Arc;
use store::{Store, TokenRecord};
use tower::ServiceExt;

/// The metering key-encryption key of every test's service objects.
pub const TEST_KEK: [u8; 32] = [0x4b; 32];

pub struct App {
    pub router: Router,
    pub store: Store,
    pub label: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl App {
    pub async fn new(label: String, store: Store, config: Config) -> App {
        let metering = Arc::new(liaison::metering::Metering::new(
            store.clone(),
            config.metering.clone(),
            config.pricing(),
            Some(meter::keyed::Kek::from_bytes(TEST_KEK)),
        ));
        let directory = directory::Directory::new(store.clone(), config.directory_limits());
        let state = Arc::new(AppState::new(
            store.clone(),
            config,
            Metrics::new(),
            metering,
            directory,
        ));
        App {
            router: router(state),
            store,
            label,
        }
    }

    /// Creates an organisation and returns a token for it.
    pub async fn org(&self, slug: &str) -> String {
        let mut tx = self.store.begin().await.unwrap();
        let org = tx.create_org(slug, slug).await.unwrap();
        tx.commit().await.unwrap();
        issue_token(&self.store, Some(org.id)).await
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "liaison.test");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/scim+json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }
}

/// Issues an operator token (valid for every organisation).
pub async fn operator_token(store: &Store) -> String {
    issue_token(store, None).await
}

/// Issues a token for one organisation (`Some`) or an operator token (`None`).
pub async fn issue_token(store: &Store, org_id: Option<i64>) -> String {
    let issued = tokens::issue();
    let mut tx = store.begin().await.unwrap();
    tx.insert_token(&TokenRecord {
        id: issued.id.clone(),
        org_id,
        secret_hash: issued.secret_hash,
        created: time::OffsetDateTime::now_utc(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    issued.token
}

/// One app per store under test (SQLite always, PostgreSQL when configured).
pub async fn apps() -> Vec<App> {
    apps_with(Config::default()).await
}

pub async fn apps_with(config: Config) -> Vec<App> {
    let mut out = Vec::new();
    for (label, store) in store::testing::stores_under_test().await {
        out.push(App::new(label.to_string(), store, config.clone()).await);
    }
    out
}

/// The real Synapse of the test run (`LIAISON_TEST_SYNAPSE_URL`, `_TOKEN`), or
/// `None` with a notice; a failure when `LIAISON_REQUIRE_SYNAPSE=1`.
pub fn synapse_from_env() -> Option<(String, String)> {
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
            eprintln!("Synapse not configured: the Synapse checks are skipped");
            None
        }
    }
}

/// Adds a Synapse app named `matrix` (groups as rooms, disable on removal) to
/// an organisation; its admin token is read from the variable `credential_var`.
pub async fn add_synapse_app(
    store: &Store,
    org_id: i64,
    base_url: &str,
    credential_var: &str,
) -> store::AppRecord {
    let mut tx = store.begin().await.unwrap();
    let app = tx
        .create_app(&store::AppRecord {
            id: 0,
            org_id,
            name: "matrix".into(),
            kind: store::AppKind::Synapse,
            base_url: base_url.into(),
            credential: format!("env:{credential_var}"),
            groups_as: store::GroupsAs::Rooms,
            deprovision: store::Deprovision::Disable,
            adopt: store::Adopt::Never,
            settings: serde_json::json!({"server_name": "localhost"}),
            created: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app
}

/// An outbox worker retrying fast, for tests that drain it.
pub fn fast_worker(store: &Store) -> Arc<provision::worker::Worker> {
    provision::worker::Worker::new(
        store.clone(),
        provision::worker::WorkerConfig {
            base_backoff: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        provision::worker::WorkerMetrics::default(),
    )
}
