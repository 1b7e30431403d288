//! The source against a hostile fake of Keycloak's admin API (written from its
//! REST API documentation; a fake, not Keycloak), on every store under test:
//! paging, entries that fail the checks, deletions confirmed by id, answers
//! beyond the bounds, refused roles, token reuse and renewal.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use directory::Directory;
use scim::ResourceKind;
use serde_json::{json, Value};
use source::dir::Target;
use source::sync::{reconcile, Options};
use source::HttpLimits;
use source::{Bounds, HttpError, Keycloak, KeycloakConfig, KeycloakError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Fake {
    users: Vec<Value>,
    /// Users answered by id but missing from the listing.
    hidden: Vec<Value>,
    groups: Vec<Value>,
    children: HashMap<String, Vec<Value>>,
    members: HashMap<String, Vec<String>>,
    tokens_issued: usize,
    /// Tokens refused with 401 (expired early).
    revoked: Vec<String>,
    /// Status answered to every admin call instead of the data.
    fail_with: Option<u16>,
    /// Answer this to every list instead of the data.
    raw_list: Option<String>,
    /// Redirect every admin call there.
    redirect_to: Option<String>,
}

type Shared = Arc<Mutex<Fake>>;

#[derive(serde::Deserialize)]
struct Paging {
    first: Option<usize>,
    max: Option<usize>,
}

fn page(all: &[Value], p: &Paging) -> Vec<Value> {
    all.iter()
        .skip(p.first.unwrap_or(0))
        .take(p.max.unwrap_or(100))
        .cloned()
        .collect()
}

fn check(fake: &Fake, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if token.is_empty() || fake.revoked.iter().any(|t| t == token) {
        return Some(StatusCode::UNAUTHORIZED.into_response());
    }
    if let Some(to) = &fake.redirect_to {
        return Some((StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response());
    }
    if let Some(s) = fake.fail_with {
        return Some(
            (
                StatusCode::from_u16(s).unwrap(),
                "{\"error\":\"unknown_error\"}",
            )
                .into_response(),
        );
    }
    None
}

fn list(fake: &Fake, headers: &HeaderMap, all: &[Value], p: &Paging) -> Response {
    if let Some(r) = check(fake, headers) {
        return r;
    }
    if let Some(raw) = &fake.raw_list {
        return raw.clone().into_response();
    }
    Json(page(all, p)).into_response()
}

async fn fake_keycloak(fake: Shared) -> String {
    let router =
        Router::new()
            .route(
                "/realms/{realm}/protocol/openid-connect/token",
                post(|State(f): State<Shared>| async move {
                    let mut f = f.lock().unwrap();
                    f.tokens_issued += 1;
                    Json(
                        json!({"access_token": format!("t{}", f.tokens_issued), "expires_in": 300}),
                    )
                }),
            )
            .route(
                "/admin/realms/{realm}/users",
                get(
                    |State(f): State<Shared>, h: HeaderMap, Query(p): Query<Paging>| async move {
                        let f = f.lock().unwrap();
                        list(&f, &h, &f.users, &p)
                    },
                ),
            )
            .route(
                "/admin/realms/{realm}/users/{id}",
                get(
                    |State(f): State<Shared>,
                     h: HeaderMap,
                     Path((_, id)): Path<(String, String)>| async move {
                        let f = f.lock().unwrap();
                        if let Some(r) = check(&f, &h) {
                            return r;
                        }
                        match f.users.iter().chain(&f.hidden).find(|u| u["id"] == id) {
                            Some(u) => Json(u.clone()).into_response(),
                            None => (StatusCode::NOT_FOUND, "{\"error\":\"User not found\"}")
                                .into_response(),
                        }
                    },
                ),
            )
            .route(
                "/admin/realms/{realm}/groups",
                get(
                    |State(f): State<Shared>, h: HeaderMap, Query(p): Query<Paging>| async move {
                        let f = f.lock().unwrap();
                        list(&f, &h, &f.groups, &p)
                    },
                ),
            )
            .route(
                "/admin/realms/{realm}/groups/{id}",
                get(
                    |State(f): State<Shared>,
                     h: HeaderMap,
                     Path((_, id)): Path<(String, String)>| async move {
                        let f = f.lock().unwrap();
                        if let Some(r) = check(&f, &h) {
                            return r;
                        }
                        let all = f.groups.iter().chain(f.children.values().flatten());
                        match all.clone().find(|g| g["id"] == id) {
                            Some(g) => Json(g.clone()).into_response(),
                            None => StatusCode::NOT_FOUND.into_response(),
                        }
                    },
                ),
            )
            .route(
                "/admin/realms/{realm}/groups/{id}/children",
                get(
                    |State(f): State<Shared>,
                     h: HeaderMap,
                     Path((_, id)): Path<(String, String)>,
                     Query(p): Query<Paging>| async move {
                        let f = f.lock().unwrap();
                        let all = f.children.get(&id).cloned().unwrap_or_default();
                        list(&f, &h, &all, &p)
                    },
                ),
            )
            .route(
                "/admin/realms/{realm}/groups/{id}/members",
                get(
                    |State(f): State<Shared>,
                     h: HeaderMap,
                     Path((_, id)): Path<(String, String)>,
                     Query(p): Query<Paging>| async move {
                        let f = f.lock().unwrap();
                        let all: Vec<Value> = f
                            .members
                            .get(&id)
                            .into_iter()
                            .flatten()
                            .map(|u| json!({"id": u, "username": "x"}))
                            .collect();
                        list(&f, &h, &all, &p)
                    },
                ),
            )
            .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "username": name, "firstName": "F", "lastName": name, "email": format!("{name}@x.test"), "enabled": true})
}

fn keycloak(url: &str, bounds: Bounds, limits: HttpLimits) -> Keycloak {
    Keycloak::new(
        KeycloakConfig {
            base_url: url.parse().unwrap(),
            realm: "ecole".into(),
            client_id: "liaison".into(),
            client_secret: "s".into(),
        },
        bounds,
        limits,
    )
    .unwrap()
}

fn small_pages() -> Bounds {
    Bounds {
        page: 2,
        ..Bounds::default()
    }
}

async fn org(store: &store::Store) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let org = tx.create_org("ecole", "Ecole").await.unwrap();
    tx.commit().await.unwrap();
    org.id
}

async fn names(target: &Target<'_>, kind: ResourceKind) -> Vec<String> {
    let mut n: Vec<String> = target
        .load(kind)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name_lc)
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn invalid_entries_are_skipped_and_deletions_wait_for_a_404() {
    store::testing::for_each_store(|store| async move {
        let fake = Shared::default();
        {
            let mut f = fake.lock().unwrap();
            f.users = vec![
                user("u1", "alice"),
                user("u2", "bob"),
                user("u3", "carol"),
                json!({"id": "u4", "username": "eve\u{7}", "enabled": true}),
                json!({"id": "../admin", "username": "mallory"}),
            ];
            f.groups = vec![json!({"id": "g1", "name": "staff", "path": "/staff", "subGroupCount": 1})];
            f.children.insert(
                "g1".into(),
                vec![json!({"id": "g2", "name": "teachers", "path": "/staff/teachers", "parentId": "g1"})],
            );
            f.members.insert("g1".into(), vec!["u2".into()]);
            f.members.insert("g2".into(), vec!["u1".into(), "u3".into()]);
        }
        let url = fake_keycloak(fake.clone()).await;
        let kc = keycloak(&url, small_pages(), HttpLimits::default());
        let org_id = org(&store).await;
        let directory = Directory::new(store.clone(), Default::default());
        let target = Target { directory: &directory, org_id };

        let report = reconcile(&kc, target, Options::default(), &|_| {}).await.unwrap();
        assert!(report.in_sync(), "{report:#?}");
        assert_eq!((report.realm_users, report.realm_groups), (3, 2));
        assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
        assert_eq!(names(&target, ResourceKind::User).await, ["alice", "bob", "carol"]);
        assert_eq!(names(&target, ResourceKind::Group).await, ["staff", "staff/teachers"]);
        let teachers = target.find(ResourceKind::Group, "g2").await.unwrap().unwrap();
        assert_eq!(teachers.members.len(), 2);
        let staff = target.find(ResourceKind::Group, "g1").await.unwrap().unwrap();
        assert_eq!(staff.members.len(), 1, "bob, not the subgroup: {:?}", staff.members);
        assert_eq!(fake.lock().unwrap().tokens_issued, 1, "one token for the whole run");

        // Missing from the listing but still there by id: kept.
        {
            let mut f = fake.lock().unwrap();
            let carol = f.users.remove(2);
            f.hidden.push(carol);
        }
        let dry = reconcile(&kc, target, Options { dry_run: true, ..Options::default() }, &|_| {})
            .await
            .unwrap();
        assert!(dry.changes.is_empty(), "{dry:#?}");
        // Gone by id too: deleted, and out of the group.
        fake.lock().unwrap().hidden.clear();
        fake.lock().unwrap().members.insert("g2".into(), vec!["u1".into()]);
        let report = reconcile(&kc, target, Options::default(), &|_| {}).await.unwrap();
        assert!(report.in_sync(), "{report:#?}");
        assert_eq!(names(&target, ResourceKind::User).await, ["alice", "bob"]);
        let teachers = target.find(ResourceKind::Group, "g2").await.unwrap().unwrap();
        assert_eq!(teachers.members.len(), 1);

        // A user that becomes invalid is skipped and left as it is.
        fake.lock().unwrap().users[1] = json!({"id": "u2", "username": "", "enabled": true});
        let report = reconcile(&kc, target, Options::default(), &|_| {}).await.unwrap();
        assert!(report.changes.is_empty(), "{report:#?}");
        assert_eq!(names(&target, ResourceKind::User).await, ["alice", "bob"]);
    })
    .await;
}

#[tokio::test]
async fn hostile_answers_fail_the_run_before_anything_is_written() {
    store::testing::for_each_store(|store| async move {
        let fake = Shared::default();
        fake.lock().unwrap().users = (0..5)
            .map(|i| user(&format!("u{i}"), &format!("user{i}")))
            .collect();
        let url = fake_keycloak(fake.clone()).await;
        let org_id = org(&store).await;
        let directory = Directory::new(store.clone(), Default::default());
        let target = Target {
            directory: &directory,
            org_id,
        };
        let run =
            |kc: Keycloak| async move { reconcile(&kc, target, Options::default(), &|_| {}).await };

        // More users than the bound.
        let bounded = keycloak(
            &url,
            Bounds {
                page: 2,
                max_users: 3,
                ..Bounds::default()
            },
            HttpLimits::default(),
        );
        let err = run(bounded).await.unwrap_err();
        assert!(err.to_string().contains("more than 3 users"), "{err}");
        // A page longer than asked for.
        fake.lock().unwrap().raw_list =
            Some(serde_json::to_string(&vec![user("x", "x"); 5]).unwrap());
        let err = run(keycloak(&url, small_pages(), HttpLimits::default()))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("a page of 5 users for max=2"),
            "{err}"
        );
        // Not JSON, or not a list.
        fake.lock().unwrap().raw_list = Some("{\"users\": []}".into());
        let err = run(keycloak(&url, small_pages(), HttpLimits::default()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unexpected answer"), "{err}");
        // A body beyond the bound.
        fake.lock().unwrap().raw_list = Some(format!("[{}]", " ".repeat(4096)));
        let tight = HttpLimits {
            max_body: 1024,
            ..HttpLimits::default()
        };
        let err = run(keycloak(&url, small_pages(), tight)).await.unwrap_err();
        assert!(err.to_string().contains("exceeds 1024 bytes"), "{err}");
        // A service account without the roles.
        fake.lock().unwrap().raw_list = None;
        fake.lock().unwrap().fail_with = Some(403);
        let err = run(keycloak(&url, small_pages(), HttpLimits::default()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                source::sync::SyncError::Keycloak(KeycloakError::Auth(_))
            ),
            "{err}"
        );
        assert!(err.to_string().contains("lacks a role"), "{err}");
        // Keycloak failing: transient.
        fake.lock().unwrap().fail_with = Some(503);
        let err = run(keycloak(&url, small_pages(), HttpLimits::default()))
            .await
            .unwrap_err();
        match err {
            source::sync::SyncError::Keycloak(e) => assert!(e.is_transient(), "{e}"),
            other => panic!("{other}"),
        }
        assert!(
            target.load(ResourceKind::User).await.unwrap().is_empty(),
            "nothing written"
        );
    })
    .await;
}

#[tokio::test]
async fn a_token_refused_early_is_fetched_again_once() {
    let fake = Shared::default();
    fake.lock().unwrap().users = vec![user("u1", "alice")];
    let url = fake_keycloak(fake.clone()).await;
    let kc = keycloak(&url, small_pages(), HttpLimits::default());
    assert_eq!(kc.users().await.unwrap().0.len(), 1);
    assert_eq!(kc.users().await.unwrap().0.len(), 1);
    assert_eq!(fake.lock().unwrap().tokens_issued, 1, "reused while valid");
    fake.lock().unwrap().revoked.push("t1".into());
    assert_eq!(kc.users().await.unwrap().0.len(), 1);
    assert_eq!(fake.lock().unwrap().tokens_issued, 2, "renewed after a 401");
}

/// A server that counts the requests it gets (a redirect's target).
async fn counting() -> (String, Arc<Mutex<usize>>) {
    let hits: Arc<Mutex<usize>> = Arc::default();
    let count = hits.clone();
    let router = Router::new().fallback(move || {
        let count = count.clone();
        async move {
            *count.lock().unwrap() += 1;
            Json(json!({"access_token": "stolen", "expires_in": 300}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn redirects_are_refused_and_credentials_stay_home() {
    let (elsewhere, hits) = counting().await;
    // The token endpoint redirects: the client secret is not posted again.
    let target = format!("{elsewhere}/token");
    let router = Router::new().fallback(move || {
        let target = target.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let kc = keycloak(
        &format!("http://{addr}"),
        small_pages(),
        HttpLimits::default(),
    );
    let err = kc.users().await.unwrap_err();
    assert_eq!(
        err,
        KeycloakError::Http(HttpError::Redirect { status: 307 })
    );
    assert!(!err.is_transient());

    // The admin API redirects: the bearer token is not sent again.
    let fake = Shared::default();
    fake.lock().unwrap().users = vec![user("u1", "alice")];
    fake.lock().unwrap().redirect_to = Some(format!("{elsewhere}/admin"));
    let kc = keycloak(
        &fake_keycloak(fake.clone()).await,
        small_pages(),
        HttpLimits::default(),
    );
    let err = kc.users().await.unwrap_err();
    assert_eq!(
        err,
        KeycloakError::Http(HttpError::Redirect { status: 302 })
    );
    assert_eq!(*hits.lock().unwrap(), 0, "the redirect target was called");
}

#[tokio::test]
async fn an_oversized_token_answer_is_refused() {
    let padding = " ".repeat(4096);
    let router = Router::new().fallback(move || {
        let padding = padding.clone();
        async move { format!("{{\"access_token\": \"t\", \"expires_in\": 300{padding}}}") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let tight = HttpLimits {
        max_body: 1024,
        ..HttpLimits::default()
    };
    let kc = keycloak(&format!("http://{addr}"), small_pages(), tight);
    let err = kc.users().await.unwrap_err();
    assert_eq!(
        err,
        KeycloakError::Http(HttpError::TooLarge { limit: 1024 })
    );
}
