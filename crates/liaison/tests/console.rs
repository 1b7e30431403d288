//! The web console through the whole router, on each store under test:
//! one-time links and sessions, the CSRF check of every form, the headers of
//! every page, the users list's paging, a user's failed Nextcloud delivery
//! (the fake, failing then recovered) retried from the console, the audit
//! log, and isolation: an organisation admin gets 404 on every console URL
//! of another organisation and on the operators' pages.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::App;
use provision::fakes::{spawn_nextcloud, Outage, OutageFor};
use provision::worker::{Worker, WorkerConfig, WorkerMetrics};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use store::{AppRecord, Store};

const CREDENTIAL_VAR: &str = "LIAISON_CONSOLE_TEST_NC";

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn request(
    app: &App,
    method: Method,
    uri: &str,
    cookie: Option<&str>,
    form: Option<String>,
) -> Page {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "liaison.test");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let req = match form {
        Some(f) => req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(f)),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let a = app.send(req).await;
    Page {
        status: a.status,
        headers: a.headers,
        body: match a.body {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            v => v.to_string(),
        },
    }
}

async fn get(app: &App, uri: &str, cookie: Option<&str>) -> Page {
    request(app, Method::GET, uri, cookie, None).await
}

async fn post(app: &App, uri: &str, cookie: &str, csrf: &str) -> Page {
    request(
        app,
        Method::POST,
        uri,
        Some(cookie),
        Some(format!("csrf={csrf}")),
    )
    .await
}

/// Opens a session through a one-time link; returns its cookie and the
/// CSRF token its pages carry.
async fn sign_in(app: &App, org: Option<&store::Org>) -> (String, String) {
    let link = service::console::issue_link(&app.store, org).await.unwrap();
    let uri = format!("/console/login/{}", link.secret);
    let p = get(app, &uri, None).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", app.label);
    let set = p.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/console")
    );
    assert!(
        !set.contains("Secure"),
        "no Secure cookie without an https public URL"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    // A link opens one session only.
    assert_eq!(get(app, &uri, None).await.status, StatusCode::NOT_FOUND);
    let secret = cookie.split_once('=').unwrap().1;
    (cookie.clone(), service::console::csrf_token(secret))
}

async fn create_user(app: &App, token: &str, org: &str, name: &str) -> String {
    let a = app
        .call(
            Method::POST,
            &format!("/o/{org}/scim/v2/Users"),
            Some(token),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "displayName": format!("Person {name}"),
            })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}: {}", app.label, a.body);
    a.body["id"].as_str().unwrap().to_owned()
}

async fn add_nextcloud(store: &Store, org_id: i64, url: &str) {
    let mut tx = store.begin().await.unwrap();
    tx.create_app(&AppRecord {
        id: 0,
        org_id,
        name: "cloud".into(),
        kind: store::AppKind::Nextcloud,
        base_url: url.into(),
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
}

/// A worker that parks a delivery at its first failure.
fn worker(store: &Store) -> Arc<Worker> {
    Worker::new(
        store.clone(),
        WorkerConfig {
            max_attempts: 1,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            ..WorkerConfig::default()
        },
        WorkerMetrics::default(),
    )
}

fn assert_console_headers(p: &Page, what: &str) {
    let csp = p.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(p.headers[header::CACHE_CONTROL], "no-store", "{what}");
    assert_eq!(p.headers[header::REFERRER_POLICY], "no-referrer", "{what}");
}

#[tokio::test]
async fn console_sessions_pages_retry_and_isolation() {
    std::env::set_var(CREDENTIAL_VAR, "admin:app-pass");
    for app in common::apps().await {
        let label = app.label.clone();
        let alpha_token = app.org("alpha").await;
        let beta_token = app.org("beta").await;
        let alpha = app.store.org_by_slug("alpha").await.unwrap().unwrap();

        // Alpha's Nextcloud fails every request: the user's delivery is parked.
        let fake = spawn_nextcloud("admin", "app-pass").await.unwrap();
        add_nextcloud(&app.store, alpha.id, &fake.base_url()).await;
        fake.set_outage(Outage::Status(500), OutageFor::UntilCleared)
            .await;
        let ada = create_user(&app, &alpha_token, "alpha", "ada").await;
        let bob = create_user(&app, &beta_token, "beta", "bob").await;
        let w = worker(&app.store);
        w.drain().await.unwrap();

        // Signed out: every page asks to sign in.
        let p = get(&app, "/console/", None).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{label}");
        assert!(p.body.contains("liaison console link"), "{label}");
        assert_console_headers(&p, "sign-in page");
        let css = get(&app, "/console/static/console.css", None).await;
        assert_eq!(css.status, StatusCode::OK);
        assert!(css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css"));
        assert!(css.body.contains("prefers-color-scheme: dark"));
        assert_eq!(
            get(&app, "/console/login/0123", None).await.status,
            StatusCode::NOT_FOUND
        );

        let (op, op_csrf) = sign_in(&app, None).await;
        let (admin, admin_csrf) = sign_in(&app, Some(&alpha)).await;

        // The operators' overview: alpha has one user, one app, one failure.
        let p = get(&app, "/console/", Some(&op)).await;
        assert_eq!(p.status, StatusCode::OK, "{label}");
        assert_console_headers(&p, "overview");
        assert!(
            p.body.contains("href=\"/console/o/alpha/users\""),
            "{label}"
        );
        assert!(p.body.contains("href=\"/console/o/beta/users\""), "{label}");
        assert!(p.body.contains("num bad\">1</td>"), "{label}: {}", p.body);

        // The user's page shows the app's error, and a retry form.
        let ada_page = format!("/console/o/alpha/users/{ada}");
        let p = get(&app, &ada_page, Some(&admin)).await;
        assert_eq!(p.status, StatusCode::OK, "{label}");
        assert!(
            p.body.contains("data-status=\"failed\""),
            "{label}: {}",
            p.body
        );
        assert!(p.body.contains("500"), "{label}: the app's error is shown");
        assert!(p.body.contains(&format!("value=\"{admin_csrf}\"")));

        // Every console URL, for each session.
        let retry = |org: &str, id: &str| format!("/console/o/{org}/users/{id}/retry");
        let alpha_gets = [
            "/console/o/alpha/users".to_owned(),
            "/console/o/alpha/users?q=ad".to_owned(),
            ada_page.clone(),
        ];
        let beta_gets = [
            "/console/o/beta/users".to_owned(),
            "/console/o/beta/users?q=b&after=a".to_owned(),
            format!("/console/o/beta/users/{bob}"),
            // Alpha's user under beta's URL, and the reverse.
            format!("/console/o/beta/users/{ada}"),
        ];
        let operator_gets = [
            "/console/operator/audit",
            "/console/operator/audit?before=5",
        ];
        for uri in alpha_gets.iter().chain(&beta_gets) {
            if uri.contains("/beta/users/") && uri.ends_with(&ada) {
                continue;
            }
            let p = get(&app, uri, Some(&op)).await;
            assert_eq!(p.status, StatusCode::OK, "{label}: operator {uri}");
            assert_console_headers(&p, uri);
        }
        for uri in operator_gets {
            assert_eq!(
                get(&app, uri, Some(&op)).await.status,
                StatusCode::OK,
                "{uri}"
            );
        }
        for uri in &alpha_gets {
            let p = get(&app, uri, Some(&admin)).await;
            assert_eq!(p.status, StatusCode::OK, "{label}: admin {uri}");
        }
        for uri in beta_gets.iter().map(String::as_str).chain(operator_gets) {
            let p = get(&app, uri, Some(&admin)).await;
            assert_eq!(p.status, StatusCode::NOT_FOUND, "{label}: admin {uri}");
            assert!(!p.body.contains("bob"), "{label}: {uri}");
        }
        for uri in [
            retry("beta", &bob),
            retry("beta", &ada),
            retry("nope", &ada),
        ] {
            let p = post(&app, &uri, &admin, &admin_csrf).await;
            assert_eq!(p.status, StatusCode::NOT_FOUND, "{label}: admin POST {uri}");
        }
        // An admin's home is their organisation.
        let p = get(&app, "/console/", Some(&admin)).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        assert_eq!(p.headers[header::LOCATION], "/console/o/alpha/users");

        // Forms without the session's token are refused, and change nothing.
        for token in ["", &op_csrf] {
            let p = post(&app, &retry("alpha", &ada), &admin, token).await;
            assert_eq!(p.status, StatusCode::FORBIDDEN, "{label}: csrf {token:?}");
        }
        let p = post(&app, "/console/logout", &admin, "").await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{label}");

        // The app recovers; the retry re-queues the delivery, which links.
        fake.clear_outage().await;
        let p = post(&app, &retry("alpha", &ada), &admin, &admin_csrf).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{label}: {}", p.body);
        let back = p.headers[header::LOCATION].to_str().unwrap().to_owned();
        assert!(
            back.starts_with(&ada_page) && back.ends_with("retried=1"),
            "{back}"
        );
        w.drain().await.unwrap();
        let p = get(&app, &back, Some(&admin)).await;
        assert!(p.body.contains("data-status=\"ok\""), "{label}: {}", p.body);
        assert!(
            !p.body.contains("action=\"/console/o/alpha/users"),
            "no retry left"
        );
        assert!(fake.state().users.contains_key("ada"), "{label}");

        // The audit log: who and what, with ids only.
        let p = get(&app, "/console/operator/audit", Some(&op)).await;
        assert!(p.body.contains(&format!("<code>{ada}</code>")), "{label}");
        assert!(p.body.contains(">retry</th>") && p.body.contains(">login</th>"));
        assert!(!p.body.contains("Person ada"), "{label}: no personal data");

        // Logout revokes the session at once.
        let p = post(&app, "/console/logout", &admin, &admin_csrf).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        assert!(p.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        let p = get(&app, &ada_page, Some(&admin)).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{label}");
    }
}

#[tokio::test]
async fn the_users_list_pages_by_name_and_searches_by_prefix() {
    for app in common::apps().await {
        let label = app.label.clone();
        let token = app.org("many").await;
        for i in 0..60 {
            create_user(&app, &token, "many", &format!("user{i:03}")).await;
        }
        create_user(&app, &token, "many", "Zoé").await;
        let (op, _) = sign_in(&app, None).await;
        let p = get(&app, "/console/o/many/users?q=USER", Some(&op)).await;
        assert_eq!(p.status, StatusCode::OK);
        assert_eq!(
            p.body.matches("<tr>").count(),
            1 + 50,
            "{label}: header + 50"
        );
        assert!(p.body.contains(">user000<") && p.body.contains(">user049<"));
        let next = p
            .body
            .split("rel=\"next\"")
            .next()
            .and_then(|s| s.rsplit("href=\"").next())
            .and_then(|s| s.split('"').next())
            .unwrap()
            // The template escapes `&` (as `&#38;` or `&amp;`).
            .replace("&#38;", "&")
            .replace("&amp;", "&");
        assert!(next.contains("after=user049"), "{label}: {next}");
        let p = get(&app, &next, Some(&op)).await;
        assert_eq!(p.body.matches("<tr>").count(), 1 + 10, "{label}");
        assert!(p.body.contains(">user050<") && p.body.contains(">user059<"));
        assert!(!p.body.contains("rel=\"next\""), "{label}: last page");
        let p = get(&app, "/console/o/many/users?q=zo", Some(&op)).await;
        assert!(p.body.contains(">Zoé<"), "{label}");
        assert_eq!(p.body.matches("<tr>").count(), 2, "{label}");
        let p = get(&app, "/console/o/many/users?q=nobody", Some(&op)).await;
        assert!(!p.body.contains("<table>"), "{label}");
    }
}

#[tokio::test]
async fn pages_follow_the_reader_language() {
    let app = common::apps().await.remove(0);
    let req = |lang: &'static str| {
        Request::builder()
            .uri("/console/")
            .header(header::ACCEPT_LANGUAGE, lang)
            .body(Body::empty())
            .unwrap()
    };
    let fr = app.send(req("fr-FR,fr;q=0.9")).await;
    assert_eq!(fr.headers[header::CONTENT_LANGUAGE], "fr");
    assert!(fr.body.as_str().unwrap().contains("<html lang=\"fr\">"));
    assert!(fr.body.as_str().unwrap().contains("Aller au contenu"));
    let en = app.send(req("de, en;q=0.5")).await;
    assert!(en.body.as_str().unwrap().contains("Skip to the content"));
}
