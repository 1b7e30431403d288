//! Bearer tokens: verified tokens are cached for `auth_cache_secs`, and a
//! revocation made by any process takes effect within that time.

mod common;

use axum::http::{Method, StatusCode};
use liaison::config::Config;
use std::time::Duration;

async fn status(app: &common::App, token: &str) -> StatusCode {
    app.call(Method::GET, "/o/acme/scim/v2/Users", Some(token), None, &[])
        .await
        .status
}

async fn revoke(app: &common::App, token: &str) {
    let org = app.store.org_by_slug("acme").await.unwrap().unwrap();
    let (id, _) = service::tokens::parse(token).unwrap();
    service::tokens::revoke(&app.store, Some(&org), id)
        .await
        .unwrap();
}

#[tokio::test]
async fn without_a_cache_a_revoked_token_is_refused_at_once() {
    let config = Config {
        auth_cache_secs: 0,
        ..Default::default()
    };
    for app in common::apps_with(config).await {
        let l = &app.label;
        let token = app.org("acme").await;
        assert_eq!(status(&app, &token).await, StatusCode::OK, "{l}");
        revoke(&app, &token).await;
        assert_eq!(status(&app, &token).await, StatusCode::UNAUTHORIZED, "{l}");
    }
}

#[tokio::test]
async fn a_revoked_token_stops_working_once_the_cache_time_has_passed() {
    let config = Config {
        auth_cache_secs: 1,
        ..Default::default()
    };
    for app in common::apps_with(config).await {
        let l = &app.label;
        let token = app.org("acme").await;
        let other = app.org("beta").await;
        assert_eq!(status(&app, &token).await, StatusCode::OK, "{l}");
        // The cache holds what was verified, not a pass for anything: a
        // token of another organisation is still refused.
        assert_eq!(status(&app, &other).await, StatusCode::NOT_FOUND, "{l}");
        revoke(&app, &token).await;
        let mut refused = false;
        for _ in 0..100 {
            if status(&app, &token).await == StatusCode::UNAUTHORIZED {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(refused, "{l}: the revoked token is still accepted");
        // A wrong secret under a known id is refused whatever the cache holds.
        let forged = format!("{}{}", &token[..token.len() - 1], "0");
        let forged = if forged == token {
            format!("{}{}", &token[..token.len() - 1], "1")
        } else {
            forged
        };
        assert_eq!(status(&app, &forged).await, StatusCode::UNAUTHORIZED, "{l}");
    }
}
