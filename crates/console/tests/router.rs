//! The console's router alone, on each store under test: the stylesheet,
//! the signed-out page in both languages, a session opened by a link and the
//! pages it reaches.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(app: &Router, uri: &str, headers: &[(header::HeaderName, &str)]) -> Answer {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

#[tokio::test]
async fn pages_of_a_session_in_both_languages() {
    for (label, store) in store::testing::stores_under_test().await {
        let now = time::OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(0).unwrap();
        let mut tx = store.begin().await.unwrap();
        let org = tx.create_org("ecole", "École Jean Jaurès").await.unwrap();
        tx.add_maintenance(&store::MaintenanceRecord {
            id: "w1".into(),
            org_id: org.id,
            app: None,
            starts: now + time::Duration::days(2),
            ends: now + time::Duration::days(2) + time::Duration::hours(1),
            messages: Default::default(),
            created: now,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let start = (now + time::Duration::days(2))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let app: Router = console::router(console::Console::new(store.clone(), true));

        let css = get(&app, "/console/static/console.css", &[]).await;
        assert_eq!(css.status, StatusCode::OK);
        assert_eq!(css.body, console::STYLESHEET);

        let p = get(&app, "/console", &[]).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        let p = get(&app, "/console/", &[(header::ACCEPT_LANGUAGE, "fr")]).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{label}");
        assert!(p.body.contains("<html lang=\"fr\">") && p.body.contains("Connexion"));
        assert!(p.body.contains("href=\"/console/static/console.css\""));
        assert!(!p.body.contains("<script") && !p.body.contains("style="));
        assert_eq!(p.headers[header::CONTENT_SECURITY_POLICY], console::CSP);

        let link = service::console::issue_link(&store, None).await.unwrap();
        let p = get(&app, &format!("/console/login/{}", link.secret), &[]).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{label}");
        let set = p.headers[header::SET_COOKIE].to_str().unwrap();
        assert!(set.ends_with("; Secure"), "https public URL: {set}");
        let cookie = set.split(';').next().unwrap().to_owned();
        let p = get(
            &app,
            "/console/",
            &[
                (header::COOKIE, &cookie),
                (header::ACCEPT_LANGUAGE, "fr-FR"),
            ],
        )
        .await;
        assert_eq!(p.status, StatusCode::OK, "{label}");
        assert!(p.body.contains("École Jean Jaurès") && p.body.contains("Journal d’audit"));
        assert!(
            p.body.contains(&format!("<time datetime=\"{start}\">")),
            "{label}: the next maintenance window is shown"
        );
        assert!(
            p.body.contains("name=\"csrf\""),
            "the logout form has its token"
        );
        let p = get(&app, "/console/o/ecole/users", &[(header::COOKIE, &cookie)]).await;
        assert_eq!(p.status, StatusCode::OK, "{label}");
        assert!(p.body.contains("No user matches."));
        let p = get(
            &app,
            "/console/o/ecole/users/nobody",
            &[(header::COOKIE, &cookie)],
        )
        .await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{label}");
        let p = get(&app, "/console/elsewhere", &[(header::COOKIE, &cookie)]).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{label}");
        let p = get(
            &app,
            "/console/operator/audit",
            &[(header::COOKIE, &cookie)],
        )
        .await;
        assert!(
            p.body.contains(&link.label),
            "{label}: the login is recorded"
        );
    }
}
