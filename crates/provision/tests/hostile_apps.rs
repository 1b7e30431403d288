//! Apps that answer what they should not: redirects (to steal the admin's
//! credentials), oversized bodies, listings that never end, error bodies full
//! of control characters. Local axum servers record every request they get.

use std::sync::{Arc, Mutex};

use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::Router;
use provision::connectors::nextcloud::{NextcloudConfig, NextcloudConnector};
use provision::connectors::rocketchat::{RocketChatConfig, RocketChatConnector};
use provision::connectors::scim::{ScimConfig, ScimConnector};
use provision::connectors::synapse::{SynapseConfig, SynapseConnector};
use provision::worker::{Worker, WorkerConfig, WorkerMetrics};
use provision::{Connector, DeliveryError, GroupsAs, UserSpec};
use serde_json::{json, Value};
use store::{AppRecord, Store};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A server that records the headers of every request it gets.
async fn recorder() -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let base = serve(Router::new().fallback(move |headers: HeaderMap| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(headers);
            (StatusCode::OK, r#"{"success": true}"#)
        }
    }))
    .await;
    (base, seen)
}

/// A server that redirects every request to `target` (same path).
async fn redirector(target: String, status: StatusCode) -> String {
    serve(Router::new().fallback(move |uri: Uri| {
        let location = format!("{target}{}", uri.path());
        async move { (status, [(header::LOCATION, location)]) }
    }))
    .await
}

fn user(name: &str) -> UserSpec {
    UserSpec {
        scim_id: format!("id-{name}"),
        external_id: None,
        user_name: name.into(),
        display_name: Some(name.into()),
        given_name: None,
        family_name: None,
        email: Some(format!("{name}@example.org")),
        active: true,
    }
}

fn small_client(max_body: usize, max_pages: usize) -> outbound::Client {
    outbound::Client::new(outbound::Limits {
        max_body,
        max_pages,
        ..outbound::Limits::default()
    })
    .unwrap()
}

#[tokio::test]
async fn redirects_are_not_followed_and_credentials_never_reach_the_target() {
    let (elsewhere, seen) = recorder().await;
    for status in [
        StatusCode::FOUND,
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ] {
        let app = redirector(elsewhere.clone(), status).await;
        let rc = RocketChatConnector::new(RocketChatConfig {
            base_url: app.clone(),
            user_id: "admin-id".into(),
            token: "admin-token".into(),
            groups_as: GroupsAs::Rooms,
        })
        .unwrap();
        let nc = NextcloudConnector::new(NextcloudConfig {
            base_url: app.clone(),
            user: "admin".into(),
            app_password: "app-pass".into(),
            quota: None,
        })
        .unwrap();
        let scim = ScimConnector::new(ScimConfig {
            base_url: app.clone(),
            bearer_token: Some("scim-token".into()),
            use_patch: Some(true),
        })
        .unwrap();
        let synapse =
            SynapseConnector::new(SynapseConfig::new(app.clone(), "example.org", "syt-token"))
                .unwrap();
        let conns: [&dyn Connector; 4] = [&rc, &nc, &scim, &synapse];
        for conn in conns {
            let r = conn.upsert_user(&user("alice"), None).await;
            assert!(
                matches!(&r, Err(DeliveryError::Permanent(m)) if m.contains("redirect")),
                "{:?} {status}: {r:?}",
                conn.kind()
            );
            let r = conn.set_user_active("some-id", false).await;
            assert!(matches!(r, Err(DeliveryError::Permanent(_))), "{r:?}");
            assert!(conn.list_users().await.is_err());
        }
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "the redirect target was called: {:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    // A Nextcloud whose every answer is a valid, but huge, OCS envelope.
    let huge = json!({"ocs": {"meta": {"status": "ok", "statuscode": 200},
        "data": {"users": {}, "padding": "x".repeat(64 * 1024)}}})
    .to_string();
    let app = serve(Router::new().fallback(move || {
        let huge = huge.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], huge) }
    }))
    .await;
    let nc = NextcloudConnector::with_client(
        NextcloudConfig {
            base_url: app,
            user: "admin".into(),
            app_password: "app-pass".into(),
            quota: None,
        },
        small_client(16 * 1024, 100),
    )
    .unwrap();
    let r = nc.list_users().await;
    assert!(
        matches!(&r, Err(DeliveryError::Permanent(m)) if m.contains("exceeds 16384 bytes")),
        "{r:?}"
    );
}

#[derive(serde::Deserialize)]
struct Page {
    #[serde(rename = "startIndex")]
    start_index: Option<usize>,
    count: Option<usize>,
}

#[tokio::test]
async fn a_scim_peer_announcing_a_trillion_results_stops_at_the_page_cap() {
    let requests = Arc::new(Mutex::new(0usize));
    let counter = requests.clone();
    let app = serve(Router::new().fallback(move |Query(p): Query<Page>| {
        let counter = counter.clone();
        async move {
            *counter.lock().unwrap() += 1;
            let start = p.start_index.unwrap_or(1);
            let count = p.count.unwrap_or(100);
            // Full pages of fresh users, for ever.
            let resources: Vec<Value> = (start..start + count)
                .map(|i| json!({"id": format!("u{i}"), "userName": format!("user{i}")}))
                .collect();
            axum::Json(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 1_000_000_000_000_u64,
                "startIndex": start,
                "itemsPerPage": count,
                "Resources": resources,
            }))
        }
    }))
    .await;
    let scim = ScimConnector::with_client(
        ScimConfig {
            base_url: app,
            bearer_token: None,
            use_patch: Some(true),
        },
        small_client(8 << 20, 5),
    )
    .unwrap();
    let r = scim.list_users().await;
    assert!(
        matches!(&r, Err(DeliveryError::Permanent(m)) if m.contains("exceeds 5 pages")),
        "{r:?}"
    );
    assert_eq!(
        *requests.lock().unwrap(),
        6,
        "one page past the cap, no more"
    );
}

#[tokio::test]
async fn a_rocketchat_announcing_more_than_it_sends_stops_at_the_page_cap() {
    let app = serve(Router::new().fallback(|| async {
        let users: Vec<Value> = (0..100)
            .map(|i| json!({"_id": format!("id{i}"), "username": format!("u{i}")}))
            .collect();
        axum::Json(json!({"success": true, "users": users, "total": 1_000_000_000_000_u64}))
    }))
    .await;
    let rc = RocketChatConnector::with_client(
        RocketChatConfig {
            base_url: app,
            user_id: "admin-id".into(),
            token: "admin-token".into(),
            groups_as: GroupsAs::Rooms,
        },
        small_client(8 << 20, 3),
    )
    .unwrap();
    let r = rc.list_users().await;
    assert!(
        matches!(&r, Err(DeliveryError::Permanent(m)) if m.contains("exceeds 3 pages")),
        "{r:?}"
    );
}

#[tokio::test]
async fn the_recorded_error_is_a_short_clean_excerpt_of_the_answer() {
    store::testing::for_each_store(|store: Store| async move {
        // A SCIM peer refusing everything with a huge body full of escapes.
        let body = format!(
            "{{\"detail\": \"refused\\u001b[2J\\r\\nSet-Cookie: x{}\"}}",
            "A".repeat(200_000)
        );
        let app_url = serve(Router::new().fallback(move || {
            let body = body.clone();
            async move { (StatusCode::BAD_REQUEST, body) }
        }))
        .await;
        std::env::set_var("LIAISON_HOSTILE_SCIM_TOKEN", "t");
        let mut tx = store.begin().await.unwrap();
        let org = tx.create_org("acme", "Acme").await.unwrap();
        let app = tx
            .create_app(&AppRecord {
                id: 0,
                org_id: org.id,
                name: "scim".into(),
                kind: store::AppKind::Scim,
                base_url: app_url,
                credential: "env:LIAISON_HOSTILE_SCIM_TOKEN".into(),
                groups_as: store::GroupsAs::None,
                deprovision: store::Deprovision::Disable,
                adopt: store::Adopt::Never,
                settings: json!({"use_patch": true}),
                created: time::OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let dir = directory::Directory::new(store.clone(), directory::Limits::default());
        let scope = directory::OrgScope {
            org_id: org.id,
            base_url: "http://liaison.test/o/acme/scim/v2",
        };
        let created = dir
            .create(
                scope,
                store::ResourceKind::User,
                &json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "alice",
                    "emails": [{"value": "alice@example.org"}],
                }),
                &directory::Projection::default(),
            )
            .await
            .unwrap();
        let id = created.json["id"].as_str().unwrap().to_owned();
        let worker = Worker::new(
            store.clone(),
            WorkerConfig::default(),
            WorkerMetrics::default(),
        );
        let round = worker.drain().await.unwrap();
        assert_eq!(round.poisoned, 1, "{round:?}");
        let link = store.link(app.id, &id).await.unwrap().expect("link");
        let rows = store.outbox_rows(org.id, None, false, 10).await.unwrap();
        let recorded = [
            link.last_error.unwrap_or_default(),
            rows[0].delivery.last_error.clone().unwrap_or_default(),
        ];
        for e in recorded {
            assert!(e.contains("refused"), "{e}");
            assert!(e.chars().count() <= provision::ERROR_CHARS, "{}", e.len());
            assert!(!e.chars().any(char::is_control), "{e:?}");
        }
    })
    .await;
}
