//! The source's rules through the admin API and SCIM, on every store under
//! test (no Keycloak needed): one source of truth per organisation (SCIM
//! writes refused with a SCIM error while a source is configured; a source
//! refused on a directory SCIM wrote, unless adopting), validation, the
//! organisation token's credential namespace, and the state shown.

mod common;

use axum::http::{Method, StatusCode};
use common::{operator_token, App};
use serde_json::{json, Value};

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn source_body(extra: Value) -> Value {
    let mut b = json!({
        "kind": "keycloak",
        "url": "https://sso.example.org/",
        "realm": "ecole",
        "client_id": "liaison-source",
        "credential_env": "LIAISON_ORG_ACME__KEYCLOAK",
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut b, extra) {
        b.extend(e);
    }
    b
}

async fn put(app: &App, token: &str, body: Value) -> common::Answer {
    app.call(
        Method::PUT,
        "/o/acme/admin/source",
        Some(token),
        Some(body),
        &[],
    )
    .await
}

async fn create_user(app: &App, token: &str, name: &str) -> common::Answer {
    app.call(
        Method::POST,
        "/o/acme/scim/v2/Users",
        Some(token),
        Some(json!({"schemas": [U], "userName": name})),
        &[],
    )
    .await
}

#[tokio::test]
async fn one_source_of_truth_per_organisation() {
    for app in common::apps().await {
        let l = app.label.clone();
        let token = app.org("acme").await;
        let operator = operator_token(&app.store).await;

        let a = app
            .call(Method::GET, "/o/acme/admin/source", Some(&token), None, &[])
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{l}: {}", a.body);

        // Added with the organisation's own token, in its variable namespace.
        let a = put(&app, &token, source_body(json!({}))).await;
        assert_eq!(a.status, StatusCode::CREATED, "{l}: {}", a.body);
        assert_eq!(a.body["url"], "https://sso.example.org", "{l}");
        assert_eq!(
            a.body["credential"], "env:LIAISON_ORG_ACME__KEYCLOAK",
            "{l}"
        );
        assert_eq!(a.body["state"]["full_sync_pending"], true, "{l}");
        assert_eq!(a.body["state"]["last_full_sync"], Value::Null, "{l}");
        assert!(
            a.body["warnings"][0].as_str().unwrap().contains("not set"),
            "{l}"
        );

        // SCIM writes are refused, reads are not.
        let a = create_user(&app, &token, "bjensen").await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{l}: {}", a.body);
        assert_eq!(
            a.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{l}"
        );
        assert_eq!(a.body["status"], "403", "{l}");
        let detail = a.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("keycloak source (realm ecole"),
            "{l}: {detail}"
        );
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
        for (method, path, body, status) in [
            (
                Method::PATCH,
                "/o/acme/scim/v2/Users/x",
                Some(json!({})),
                StatusCode::FORBIDDEN,
            ),
            (
                Method::PUT,
                "/o/acme/scim/v2/Groups/x",
                Some(json!({})),
                StatusCode::FORBIDDEN,
            ),
            (
                Method::POST,
                "/o/acme/scim/v2/Bulk",
                Some(json!({})),
                StatusCode::FORBIDDEN,
            ),
            (
                Method::DELETE,
                "/o/acme/scim/v2/Users/x",
                None,
                StatusCode::FORBIDDEN,
            ),
            (Method::GET, "/o/acme/scim/v2/Users", None, StatusCode::OK),
            (
                Method::POST,
                "/o/acme/scim/v2/Users/.search",
                Some(search),
                StatusCode::OK,
            ),
        ] {
            let a = app
                .call(method.clone(), path, Some(&token), body, &[])
                .await;
            assert_eq!(a.status, status, "{l}: {method} {path}: {}", a.body);
        }

        // Changed in place; a full reconciliation on demand.
        let a = put(&app, &token, source_body(json!({"interval_secs": 600}))).await;
        assert_eq!(a.status, StatusCode::OK, "{l}: {}", a.body);
        assert_eq!(a.body["interval_secs"], 600, "{l}");
        let a = app
            .call(
                Method::POST,
                "/o/acme/admin/source/sync",
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{l}: {}", a.body);

        // Removed: SCIM writes again; the directory is no longer empty, so a
        // new source needs adoption.
        let a = app
            .call(
                Method::DELETE,
                "/o/acme/admin/source",
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{l}");
        let a = create_user(&app, &token, "bjensen").await;
        assert_eq!(a.status, StatusCode::CREATED, "{l}: {}", a.body);
        let a = put(&app, &token, source_body(json!({}))).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{l}: {}", a.body);
        let detail = a.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("1 user(s) and 0 group(s)") && detail.contains("adopt"),
            "{l}: {detail}"
        );
        let a = put(&app, &operator, source_body(json!({"adopt": true}))).await;
        assert_eq!(a.status, StatusCode::CREATED, "{l}: {}", a.body);
        assert_eq!(a.body["state"]["adopt_pending"], true, "{l}");
    }
}

#[tokio::test]
async fn bad_sources_are_refused_with_the_reason() {
    for app in common::apps().await {
        let l = app.label.clone();
        let token = app.org("acme").await;
        let operator = operator_token(&app.store).await;
        for (body, status, needle) in [
            (json!({"kind": "ldap"}), 422, "unknown source kind"),
            (json!({"url": "ftp://sso.example.org"}), 422, "http(s)"),
            (
                json!({"url": "https://sso.example.org/realms/ecole"}),
                422,
                "without /realms/",
            ),
            (
                json!({"url": "https://u:p@sso.example.org"}),
                422,
                "without credentials",
            ),
            (json!({"realm": "a/b"}), 422, "'/'"),
            (json!({"realm": ""}), 422, "realm must be"),
            (json!({"interval_secs": 5}), 422, "interval_secs"),
            (
                json!({"credential_env": "LIAISON_ORG_OTHER__X"}),
                403,
                "credential_env must be",
            ),
            (
                json!({"credential_env": null, "credential_file": "/etc/passwd"}),
                403,
                "operator token",
            ),
            (json!({"colour": "blue"}), 422, "unknown field"),
        ] {
            let a = put(&app, &token, source_body(body.clone())).await;
            refused(&a, status, needle, &format!("{l}: {body}"));
        }
        // The operator may name any variable (a valid name) and files, which
        // must hold a secret.
        let a = put(
            &app,
            &operator,
            source_body(json!({"credential_env": "1BAD"})),
        )
        .await;
        refused(&a, 422, "not an environment variable name", &l);
        let empty = std::env::temp_dir().join(format!("liaison-empty-{}", uuid_like()));
        std::fs::write(&empty, "\n").unwrap();
        let body = source_body(
            json!({"credential_env": null, "credential_file": empty.display().to_string()}),
        );
        let a = put(&app, &operator, body).await;
        refused(&a, 422, "is empty", &l);
        let _ = std::fs::remove_file(empty);
        let a = app
            .call(Method::GET, "/o/acme/admin/source", Some(&token), None, &[])
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{l}: nothing was stored");
    }
}

/// Checks a refusal: its status and a word of its detail.
fn refused(a: &common::Answer, status: u16, needle: &str, context: &str) {
    assert_eq!(a.status.as_u16(), status, "{context}: {}", a.body);
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "{context}: {detail}");
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}
