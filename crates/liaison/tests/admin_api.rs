//! The admin API (`/o/{org}/admin/...`), its OpenAPI description, and the
//! `app` and `outbox` commands, on every store under test.

mod common;

use common::operator_token;

use axum::http::{Method, StatusCode};
use clap::Parser;
use liaison::commands::{apps, outbox};
use provision::worker::{Worker, WorkerConfig, WorkerMetrics};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Issues a token valid for every organisation.
/// A credential file holding `content`, removed when dropped.
struct SecretFile(PathBuf);

impl SecretFile {
    fn new(content: &str) -> SecretFile {
        let path = std::env::temp_dir().join(format!("liaison-admin-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, content).unwrap();
        SecretFile(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn nextcloud_app(url: &str, file: &SecretFile) -> Value {
    json!({"kind": "nextcloud", "url": url, "credential_file": file.path()})
}

#[tokio::test]
async fn apps_are_created_listed_read_and_deleted() {
    let secret = "admin:Sup3rSecretAppPassword";
    let file = SecretFile::new(secret);
    for app in common::apps().await {
        let l = &app.label;
        let token = app.org("alpha").await;
        let operator = operator_token(&app.store).await;
        let base = "/o/alpha/admin/apps";
        let created = app
            .call(
                Method::POST,
                base,
                Some(&operator),
                Some(json!({
                    "kind": "nextcloud", "name": "cloud", "url": "https://cloud.example.org/",
                    "credential_file": file.path(), "deprovision": "delete",
                    "settings": {"quota": "5 GB"}
                })),
                &[],
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{l}: {}", created.body);
        assert_eq!(
            created.headers["location"], "/o/alpha/admin/apps/cloud",
            "{l}"
        );
        let body = &created.body;
        assert_eq!(body["name"], "cloud", "{l}");
        assert_eq!(body["kind"], "nextcloud", "{l}");
        assert_eq!(body["url"], "https://cloud.example.org", "{l}");
        assert_eq!(body["groups_as"], "groups", "{l}: the default of nextcloud");
        assert_eq!(body["deprovision"], "delete", "{l}");
        assert_eq!(body["credential"], format!("file:{}", file.path()), "{l}");
        assert_eq!(body["settings"], json!({"quota": "5 GB"}), "{l}");
        assert_eq!(body["enqueued"], 0, "{l}: an empty organisation");
        assert!(
            !body.to_string().contains("Sup3rSecret"),
            "{l}: the secret leaked"
        );

        let list = app.call(Method::GET, base, Some(&token), None, &[]).await;
        assert_eq!(list.status, StatusCode::OK, "{l}");
        let names: Vec<&str> = list.body["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["cloud"], "{l}");
        assert!(!list.body.to_string().contains("Sup3rSecret"), "{l}");

        let one = app
            .call(
                Method::GET,
                &format!("{base}/cloud"),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(one.status, StatusCode::OK, "{l}");
        assert_eq!(one.body["pending"], 0, "{l}");
        assert_eq!(one.body["poisoned"], 0, "{l}");

        let again = app
            .call(
                Method::POST,
                base,
                Some(&operator),
                Some(json!({
                    "kind": "nextcloud", "name": "cloud", "url": "https://other.example.org",
                    "credential_file": file.path()
                })),
                &[],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{l}");
        assert_eq!(again.body["error"], "conflict", "{l}");

        let gone = app
            .call(
                Method::DELETE,
                &format!("{base}/cloud"),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT, "{l}");
        let missing = app
            .call(
                Method::GET,
                &format!("{base}/cloud"),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{l}");
        assert_eq!(missing.body["error"], "not_found", "{l}");
        assert!(missing.body["detail"].is_string(), "{l}");
        let twice = app
            .call(
                Method::DELETE,
                &format!("{base}/cloud"),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(twice.status, StatusCode::NOT_FOUND, "{l}");
        let list = app.call(Method::GET, base, Some(&token), None, &[]).await;
        assert_eq!(list.body["apps"], json!([]), "{l}");
    }
}

#[tokio::test]
async fn invalid_apps_are_refused_with_a_reason() {
    let good = SecretFile::new("admin:pw");
    let unpaired = SecretFile::new("JustATokenNoColon");
    let empty = SecretFile::new("  \n");
    let f = good.path();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"kind": "exchange", "url": "https://x.org", "credential_file": f}),
            "kind",
        ),
        (
            json!({"kind": "nextcloud", "url": "ftp://x.org", "credential_file": f}),
            "url",
        ),
        (
            json!({"kind": "nextcloud", "url": "not a url", "credential_file": f}),
            "url",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_file": "/nonexistent/liaison/secret"}),
            "credential file",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org"}),
            "credential",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_file": f, "credential_env": "X"}),
            "not both",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_env": "1BAD-NAME"}),
            "variable",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_file": unpaired.path()}),
            "user:app-password",
        ),
        (
            json!({"kind": "scim", "url": "https://x.org", "credential_file": empty.path()}),
            "empty",
        ),
        (
            json!({"kind": "synapse", "url": "https://x.org", "credential_file": f}),
            "server_name",
        ),
        (
            json!({"kind": "synapse", "url": "https://x.org", "credential_file": f, "settings": {"server_name": 7}}),
            "string",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_file": f, "groups_as": "rooms"}),
            "groups_as",
        ),
        (
            json!({"kind": "scim", "url": "https://x.org", "credential_file": f, "groups_as": "spaces"}),
            "groups_as",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_file": f, "deprovision": "erase"}),
            "deprovision",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_file": f, "settings": {"server_name": "x"}}),
            "does not apply",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_file": f, "name": "Bad Name"}),
            "name",
        ),
        (
            json!({"kind": "nextcloud", "url": "https://x.org", "credential_file": f, "colour": "red"}),
            "unknown field",
        ),
        (
            json!({"url": "https://x.org", "credential_file": f}),
            "kind",
        ),
        (json!(["not", "an", "object"]), "schema"),
    ];
    for app in common::apps().await {
        let l = &app.label;
        let token = app.org("alpha").await;
        let operator = operator_token(&app.store).await;
        for (body, reason) in &cases {
            let a = app
                .call(
                    Method::POST,
                    "/o/alpha/admin/apps",
                    Some(&operator),
                    Some(body.clone()),
                    &[],
                )
                .await;
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{l}: {body} -> {}",
                a.body
            );
            assert_eq!(a.body["error"], "invalid", "{l}: {body}");
            let detail = a.body["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains(reason),
                "{l}: {body}: {detail:?} should mention {reason:?}"
            );
            assert!(
                !detail.contains("JustATokenNoColon"),
                "{l}: the secret leaked: {detail}"
            );
        }
        let raw = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/o/alpha/admin/apps")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{not json"))
            .unwrap();
        let a = app.send(raw).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{l}");
        assert_eq!(a.body["error"], "bad_request", "{l}");
        let list = app
            .call(Method::GET, "/o/alpha/admin/apps", Some(&token), None, &[])
            .await;
        assert_eq!(list.body["apps"], json!([]), "{l}: nothing was stored");

        // An unset variable is accepted with a warning: the server has its own environment.
        let a = app
            .call(
                Method::POST,
                "/o/alpha/admin/apps",
                Some(&operator),
                Some(json!({
                    "kind": "synapse", "url": "http://matrix.example.org:8008",
                    "credential_env": "LIAISON_ADMIN_TEST_SURELY_UNSET",
                    "groups_as": "spaces", "settings": {"server_name": "example.org"}
                })),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{l}: {}", a.body);
        assert_eq!(
            a.body["credential"], "env:LIAISON_ADMIN_TEST_SURELY_UNSET",
            "{l}"
        );
        assert_eq!(
            a.body["name"], "synapse",
            "{l}: the name defaults to the kind"
        );
        let warnings = a.body["warnings"].as_array().unwrap();
        assert!(
            warnings.iter().any(|w| w
                .as_str()
                .unwrap()
                .contains("LIAISON_ADMIN_TEST_SURELY_UNSET")),
            "{l}: {warnings:?}"
        );
    }
}

#[tokio::test]
async fn a_token_of_another_org_sees_nothing_and_operators_see_all() {
    let file = SecretFile::new("admin:pw");
    for app in common::apps().await {
        let l = &app.label;
        let token_a = app.org("alpha").await;
        let token_b = app.org("beta").await;
        let operator = operator_token(&app.store).await;
        let made = app
            .call(
                Method::POST,
                "/o/beta/admin/apps",
                Some(&token_b),
                Some(json!({"kind": "nextcloud", "url": "https://b.example.org",
                    "credential_env": "LIAISON_ORG_BETA__NEXTCLOUD"})),
                &[],
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{l}");
        let user = app
            .call(
                Method::POST,
                "/o/beta/scim/v2/Users",
                Some(&token_b),
                Some(json!({"schemas": [U], "userName": "b.user"})),
                &[],
            )
            .await;
        let uid = user.body["id"].as_str().unwrap().to_owned();

        let attempts: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, "/o/beta/admin/apps".into(), None),
            (
                Method::POST,
                "/o/beta/admin/apps".into(),
                Some(nextcloud_app("https://a.example.org", &file)),
            ),
            (Method::GET, "/o/beta/admin/apps/nextcloud".into(), None),
            (Method::DELETE, "/o/beta/admin/apps/nextcloud".into(), None),
            (
                Method::GET,
                format!("/o/beta/admin/users/{uid}/provisioning"),
                None,
            ),
            (
                Method::GET,
                "/o/beta/admin/groups/nope/provisioning".into(),
                None,
            ),
            (Method::POST, "/o/beta/admin/outbox/retry".into(), None),
        ];
        for (method, uri, body) in &attempts {
            let a = app
                .call(method.clone(), uri, Some(&token_a), body.clone(), &[])
                .await;
            assert_eq!(
                a.status,
                StatusCode::NOT_FOUND,
                "{l}: {method} {uri} with alpha's token"
            );
            assert!(!a.body.to_string().contains("b.example.org"), "{l}: {uri}");
            let a = app.call(method.clone(), uri, None, body.clone(), &[]).await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{l}: {method} {uri} without a token"
            );
        }
        // Beta's app is untouched, alpha has none.
        let b = app
            .call(Method::GET, "/o/beta/admin/apps", Some(&token_b), None, &[])
            .await;
        assert_eq!(b.body["apps"].as_array().unwrap().len(), 1, "{l}");
        assert_eq!(b.body["apps"][0]["url"], "https://b.example.org", "{l}");
        let a = app
            .call(
                Method::GET,
                "/o/alpha/admin/apps",
                Some(&token_a),
                None,
                &[],
            )
            .await;
        assert_eq!(a.body["apps"], json!([]), "{l}");

        // The operator token works for both organisations.
        let b = app
            .call(
                Method::GET,
                "/o/beta/admin/apps",
                Some(&operator),
                None,
                &[],
            )
            .await;
        assert_eq!(b.status, StatusCode::OK, "{l}");
        assert_eq!(b.body["apps"][0]["name"], "nextcloud", "{l}");
        let p = app
            .call(
                Method::GET,
                &format!("/o/beta/admin/users/{uid}/provisioning"),
                Some(&operator),
                None,
                &[],
            )
            .await;
        assert_eq!(p.status, StatusCode::OK, "{l}");
        let made = app
            .call(
                Method::POST,
                "/o/alpha/admin/apps",
                Some(&operator),
                Some(nextcloud_app("https://a.example.org", &file)),
                &[],
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{l}");
        let a = app
            .call(
                Method::GET,
                "/o/alpha/admin/apps/nextcloud",
                Some(&token_a),
                None,
                &[],
            )
            .await;
        assert_eq!(a.body["url"], "https://a.example.org", "{l}");
        // Beta's user is not alpha's.
        let p = app
            .call(
                Method::GET,
                &format!("/o/alpha/admin/users/{uid}/provisioning"),
                Some(&operator),
                None,
                &[],
            )
            .await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{l}");
        let missing = app
            .call(
                Method::GET,
                "/o/gamma/admin/apps",
                Some(&operator),
                None,
                &[],
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{l}");
    }
}

#[tokio::test]
async fn an_org_token_names_only_its_own_credential_variables() {
    let file = SecretFile::new("admin:pw");
    for app in common::apps().await {
        let l = &app.label;
        let token = app.org("ecole-2").await;
        let prefix = service::apps::org_env_prefix("ecole-2");
        assert_eq!(prefix, "LIAISON_ORG_ECOLE_2__");
        let refused = [
            json!({"kind": "scim", "url": "https://s.example.org", "credential_file": file.path()}),
            json!({"kind": "scim", "url": "https://s.example.org", "credential_env": "LIAISON_DATABASE_URL"}),
            json!({"kind": "scim", "url": "https://s.example.org", "credential_env": "LIAISON_ORG_ECOLE__TOKEN"}),
            json!({"kind": "scim", "url": "https://s.example.org", "credential_env": "LIAISON_ORG_ECOLE_2__"}),
            json!({"kind": "scim", "url": "https://s.example.org", "credential_env": "LIAISON_ORG_ECOLE_2__X__TOKEN"}),
        ];
        for body in &refused {
            let a = app
                .call(
                    Method::POST,
                    "/o/ecole-2/admin/apps",
                    Some(&token),
                    Some(body.clone()),
                    &[],
                )
                .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{l}: {body} -> {}", a.body);
            assert_eq!(a.body["error"], "forbidden", "{l}");
        }
        let a = app
            .call(
                Method::POST,
                "/o/ecole-2/admin/apps",
                Some(&token),
                Some(json!({"kind": "scim", "url": "https://s.example.org",
                    "credential_env": "LIAISON_ORG_ECOLE_2__SCIM_TOKEN"})),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{l}: {}", a.body);
        assert_eq!(
            a.body["credential"], "env:LIAISON_ORG_ECOLE_2__SCIM_TOKEN",
            "{l}"
        );
    }
}

#[tokio::test]
async fn an_org_token_cannot_aim_liaison_at_internal_addresses() {
    let internal = [
        "http://127.0.0.1:8008",
        "http://localhost:9000",
        "http://169.254.169.254/latest",
        "http://10.1.2.3",
        "https://192.168.0.10",
        "http://172.16.5.5",
        "http://100.64.0.1",
        "http://0.0.0.0",
    ];
    let body = |url: &str| {
        json!({"kind": "scim", "url": url,
            "credential_env": "LIAISON_ORG_ECOLE__SCIM_TOKEN"})
    };
    for app in common::apps().await {
        let l = &app.label;
        let token = app.org("ecole").await;
        let operator = operator_token(&app.store).await;
        for url in internal {
            let a = app
                .call(
                    Method::POST,
                    "/o/ecole/admin/apps",
                    Some(&token),
                    Some(body(url)),
                    &[],
                )
                .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{l}: {url} -> {}", a.body);
            assert_eq!(a.body["error"], "forbidden", "{l}");
        }
        let listed = app
            .call(Method::GET, "/o/ecole/admin/apps", Some(&token), None, &[])
            .await;
        assert_eq!(listed.body["apps"], json!([]), "{l}: {}", listed.body);
        // Operators may.
        let a = app
            .call(
                Method::POST,
                "/o/ecole/admin/apps",
                Some(&operator),
                Some(body("http://127.0.0.1:8008")),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{l}: {}", a.body);
    }
    // And organisations too where the hoster allows it.
    let mut config = liaison::config::Config::default();
    config.provisioning.allow_private_targets = true;
    for app in common::apps_with(config).await {
        let token = app.org("ecole").await;
        let a = app
            .call(
                Method::POST,
                "/o/ecole/admin/apps",
                Some(&token),
                Some(body("http://10.1.2.3")),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}: {}", app.label, a.body);
    }
}

fn app_state<'a>(provisioning: &'a Value, name: &str) -> &'a Value {
    provisioning["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["app"] == name))
        .unwrap_or_else(|| panic!("no app {name} in {provisioning}"))
}

#[tokio::test]
async fn provisioning_state_follows_the_deliveries() {
    let fake = provision::fakes::spawn_nextcloud("admin", "pw")
        .await
        .unwrap();
    let file = SecretFile::new("admin:pw");
    for app in common::apps().await {
        let l = &app.label;
        let token = app.org("alpha").await;
        let operator = operator_token(&app.store).await;
        let user = app
            .call(
                Method::POST,
                "/o/alpha/scim/v2/Users",
                Some(&token),
                Some(json!({"schemas": [U], "userName": format!("ada-{l}"), "displayName": "Ada"})),
                &[],
            )
            .await;
        let uid = user.body["id"].as_str().unwrap().to_owned();
        let group = app
            .call(Method::POST, "/o/alpha/scim/v2/Groups", Some(&token),
                Some(json!({"schemas": [G], "displayName": format!("crew-{l}"), "members": [{"value": uid}]})), &[])
            .await;
        let gid = group.body["id"].as_str().unwrap().to_owned();
        let user_uri = format!("/o/alpha/admin/users/{uid}/provisioning");
        let group_uri = format!("/o/alpha/admin/groups/{gid}/provisioning");

        let p = app
            .call(Method::GET, &user_uri, Some(&token), None, &[])
            .await;
        assert_eq!(p.status, StatusCode::OK, "{l}");
        assert_eq!(p.body, json!({"user": uid, "apps": []}), "{l}: no apps yet");

        // Adding the app enqueues the user, the group and the membership.
        let made = app
            .call(Method::POST, "/o/alpha/admin/apps", Some(&operator),
                Some(json!({"kind": "nextcloud", "name": "cloud", "url": fake.base_url(), "credential_file": file.path()})), &[])
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{l}: {}", made.body);
        assert_eq!(made.body["enqueued"], 3, "{l}");
        assert_eq!(made.body["pending"], 3, "{l}");
        // An app that cannot be reached, whose deliveries are poisoned at once.
        let made = app
            .call(Method::POST, "/o/alpha/admin/apps", Some(&operator),
                Some(json!({"kind": "nextcloud", "name": "down", "url": "http://127.0.0.1:9", "credential_file": file.path(), "groups_as": "none"})), &[])
            .await;
        assert_eq!(
            made.body["enqueued"], 1,
            "{l}: users only when groups are not provisioned"
        );

        let p = app
            .call(Method::GET, &user_uri, Some(&token), None, &[])
            .await;
        let cloud = app_state(&p.body, "cloud");
        assert_eq!(cloud["status"], "pending", "{l}: {cloud}");
        assert_eq!(cloud["kind"], "nextcloud", "{l}");
        assert_eq!(cloud["app_id"], Value::Null, "{l}");
        let targets: BTreeSet<&str> = cloud["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["target"].as_str().unwrap())
            .collect();
        assert_eq!(targets, BTreeSet::from(["user", "member"]), "{l}: {cloud}");
        assert_eq!(cloud["pending"][0]["attempts"], 0, "{l}");
        assert_eq!(cloud["pending"][0]["poisoned"], false, "{l}");

        let config = WorkerConfig {
            max_attempts: 1,
            ..WorkerConfig::default()
        };
        let worker = Worker::new(app.store.clone(), config, WorkerMetrics::default());
        let round = worker.drain().await.unwrap();
        assert_eq!(round.delivered, 3, "{l}: {round:?}");
        assert_eq!(round.poisoned, 1, "{l}: {round:?}");

        let p = app
            .call(Method::GET, &user_uri, Some(&token), None, &[])
            .await;
        let cloud = app_state(&p.body, "cloud");
        assert_eq!(cloud["status"], "ok", "{l}: {cloud}");
        assert_eq!(cloud["app_id"], format!("ada-{l}"), "{l}: {cloud}");
        assert_eq!(cloud["pending"], json!([]), "{l}");
        assert!(
            cloud["last_attempt"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{l}: {cloud}"
        );
        let down = app_state(&p.body, "down");
        assert_eq!(down["status"], "failed", "{l}: {down}");
        assert_eq!(down["pending"][0]["poisoned"], true, "{l}");
        assert!(
            down["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{l}: {down}"
        );
        assert!(fake.state().users.contains_key(&format!("ada-{l}")), "{l}");

        let g = app
            .call(Method::GET, &group_uri, Some(&token), None, &[])
            .await;
        assert_eq!(g.status, StatusCode::OK, "{l}");
        assert_eq!(g.body["group"], gid, "{l}");
        let group_ref = app_state(&g.body, "cloud")["app_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            fake.state()
                .members(&group_ref)
                .contains(&format!("ada-{l}")),
            "{l}: the membership reached the app"
        );
        assert_eq!(
            app_state(&g.body, "cloud")["status"],
            "ok",
            "{l}: {}",
            g.body
        );
        assert_eq!(
            app_state(&g.body, "down")["status"],
            "never",
            "{l}: {}",
            g.body
        );

        let listed = app
            .call(
                Method::GET,
                "/o/alpha/admin/apps/down",
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(listed.body["poisoned"], 1, "{l}");

        // Retrying revives the poisoned row; unknown apps are 404.
        let r = app
            .call(
                Method::POST,
                "/o/alpha/admin/outbox/retry",
                Some(&token),
                Some(json!({"app": "nope"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{l}");
        let r = app
            .call(
                Method::POST,
                "/o/alpha/admin/outbox/retry",
                Some(&token),
                Some(json!({"app": "down"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{l}");
        assert_eq!(r.body, json!({"retried": 1}), "{l}");
        let p = app
            .call(Method::GET, &user_uri, Some(&token), None, &[])
            .await;
        assert_eq!(
            app_state(&p.body, "down")["status"],
            "pending",
            "{l}: {}",
            p.body
        );
        let r = app
            .call(
                Method::POST,
                "/o/alpha/admin/outbox/retry",
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(r.body, json!({"retried": 0}), "{l}");

        let missing = app
            .call(
                Method::GET,
                "/o/alpha/admin/users/nope/provisioning",
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{l}");
        assert_eq!(missing.body["error"], "not_found", "{l}");
        // A group id is not a user.
        let wrong = app
            .call(
                Method::GET,
                &format!("/o/alpha/admin/users/{gid}/provisioning"),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::NOT_FOUND, "{l}");
    }
}

#[tokio::test]
async fn openapi_is_generated_and_committed() {
    for app in common::apps().await {
        let l = &app.label;
        let doc = app
            .call(Method::GET, "/openapi.json", None, None, &[])
            .await;
        assert_eq!(doc.status, StatusCode::OK, "{l}");
        assert_eq!(doc.headers["content-type"], "application/json", "{l}");
        assert_eq!(doc.body["openapi"], "3.1.0", "{l}");
        let paths = doc.body["paths"].as_object().unwrap();
        // The committed copy is the generated document (`liaison openapi`).
        let committed: Value = serde_json::from_str(include_str!("../../../docs/openapi.json"))
            .expect("docs/openapi.json is JSON");
        assert!(
            committed == doc.body,
            "docs/openapi.json differs from the served document: run \
             `cargo run -p liaison -- openapi > docs/openapi.json`"
        );
        for schema in ["AppView", "NewApp", "ProvisioningView", "Problem"] {
            assert!(
                doc.body["components"]["schemas"][schema].is_object(),
                "{l}: {schema}"
            );
        }
        assert_eq!(
            doc.body["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
            "{l}"
        );

        // Every documented operation is routed (answered by a handler, not the
        // fallback or the method guard).
        app.org("alpha").await;
        let operator = operator_token(&app.store).await;
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                let uri = path
                    .replace("{org}", "alpha")
                    .replace("{name}", "nope")
                    .replace("{id}", "nope")
                    .replace("{host}", "nope.example")
                    .replace("{period}", "2026-11");
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = (m == Method::POST).then(|| json!({}));
                let a = app.call(m.clone(), &uri, Some(&operator), body, &[]).await;
                assert_ne!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{l}: {m} {uri}");
                assert!(
                    a.body.get("schemas").is_none(),
                    "{l}: {m} {uri} fell through: {}",
                    a.body
                );
                assert!(
                    a.body.is_null() || a.body.get("error").is_some() || a.status.is_success(),
                    "{l}: {m} {uri}"
                );
                if !a.status.is_success() {
                    assert_eq!(
                        a.headers["content-type"], "application/problem+json",
                        "{l}: {m} {uri}"
                    );
                }
            }
        }
    }
}

#[derive(Parser)]
struct AppCli {
    #[command(subcommand)]
    cmd: apps::AppCommand,
}

#[derive(Parser)]
struct OutboxCli {
    #[command(subcommand)]
    cmd: outbox::OutboxCommand,
}

fn app_cmd(args: &[&str]) -> apps::AppCommand {
    AppCli::try_parse_from(std::iter::once("app").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .cmd
}

fn outbox_cmd(args: &[&str]) -> outbox::OutboxCommand {
    OutboxCli::try_parse_from(std::iter::once("outbox").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .cmd
}

#[tokio::test]
async fn cli_adds_lists_and_removes_apps() {
    let file = SecretFile::new("user-id:token");
    let path = file.path();
    // The command line refuses what clap can tell at once.
    assert!(
        AppCli::try_parse_from(["app", "add", "alpha", "nextcloud", "--url", "https://x.org"])
            .is_err()
    );
    assert!(AppCli::try_parse_from([
        "app",
        "add",
        "alpha",
        "exchange",
        "--url",
        "https://x.org",
        "--credential-env",
        "X"
    ])
    .is_err());
    assert!(AppCli::try_parse_from([
        "app",
        "add",
        "alpha",
        "scim",
        "--url",
        "https://x.org",
        "--credential-env",
        "X",
        "--credential-file",
        "/f"
    ])
    .is_err());
    for (label, store) in store::testing::stores_under_test().await {
        let mut tx = store.begin().await.unwrap();
        let org = tx.create_org("alpha", "Alpha").await.unwrap();
        tx.commit().await.unwrap();
        let directory = directory::Directory::new(store.clone(), Default::default());
        let scope = directory::OrgScope {
            org_id: org.id,
            base_url: "http://t/o/alpha/scim/v2",
        };
        for name in ["ann", "bob"] {
            directory
                .create(
                    scope,
                    store::ResourceKind::User,
                    &json!({"schemas": [U], "userName": name}),
                    &directory::Projection::default(),
                )
                .await
                .unwrap();
        }

        apps::run(
            &store,
            app_cmd(&[
                "add",
                "alpha",
                "rocketchat",
                "--url",
                "https://chat.example.org",
                "--credential-file",
                &path,
                "--groups-as",
                "spaces",
            ]),
        )
        .await
        .unwrap();
        let added = store
            .app_by_name(org.id, "rocketchat")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(added.credential, format!("file:{path}"), "{label}");
        assert_eq!(added.groups_as, store::GroupsAs::Spaces, "{label}");
        assert_eq!(added.deprovision, store::Deprovision::Disable, "{label}");
        let counts = store.outbox_counts(org.id).await.unwrap();
        assert_eq!(counts.len(), 1, "{label}");
        assert_eq!(counts[0].1.pending, 2, "{label}: both users enqueued");

        apps::run(
            &store,
            app_cmd(&[
                "add",
                "alpha",
                "synapse",
                "--name",
                "matrix",
                "--url",
                "https://m.example.org",
                "--credential-env",
                "LIAISON_CLI_TEST_UNSET",
                "--server-name",
                "example.org",
                "--auth-provider",
                "oidc-kc",
            ]),
        )
        .await
        .unwrap();
        let m = store.app_by_name(org.id, "matrix").await.unwrap().unwrap();
        assert_eq!(m.groups_as, store::GroupsAs::Rooms, "{label}");
        assert_eq!(
            m.settings,
            json!({"server_name": "example.org", "auth_provider": "oidc-kc"}),
            "{label}"
        );

        let refused = [
            vec![
                "add",
                "alpha",
                "synapse",
                "--url",
                "https://m.example.org",
                "--credential-env",
                "X",
            ],
            vec![
                "add",
                "alpha",
                "scim",
                "--url",
                "https://s.example.org",
                "--credential-file",
                "/nonexistent/liaison",
            ],
            vec![
                "add",
                "alpha",
                "nextcloud",
                "--url",
                "https://n.example.org",
                "--credential-file",
                &path,
                "--groups-as",
                "rooms",
            ],
            vec![
                "add",
                "alpha",
                "scim",
                "--name",
                "matrix",
                "--url",
                "https://s.example.org",
                "--credential-file",
                &path,
            ],
            vec![
                "add",
                "nowhere",
                "scim",
                "--url",
                "https://s.example.org",
                "--credential-file",
                &path,
            ],
        ];
        for args in &refused {
            assert!(
                apps::run(&store, app_cmd(args)).await.is_err(),
                "{label}: {args:?}"
            );
        }
        assert_eq!(store.apps(org.id).await.unwrap().len(), 2, "{label}");

        apps::run(&store, app_cmd(&["list", "alpha"]))
            .await
            .unwrap();
        outbox::run(&store, outbox_cmd(&["list", "alpha"]))
            .await
            .unwrap();
        outbox::run(
            &store,
            outbox_cmd(&["list", "alpha", "--poisoned", "--app", "matrix"]),
        )
        .await
        .unwrap();
        assert!(
            outbox::run(&store, outbox_cmd(&["list", "alpha", "--app", "nope"]))
                .await
                .is_err()
        );
        outbox::run(&store, outbox_cmd(&["retry", "alpha", "--app", "matrix"]))
            .await
            .unwrap();
        assert!(
            outbox::run(&store, outbox_cmd(&["retry", "alpha", "--app", "nope"]))
                .await
                .is_err()
        );
        let rows = store
            .outbox_rows(org.id, Some(m.id), false, 100)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{label}");
        assert!(
            rows.iter()
                .all(|r| r.app_name == "matrix" && !r.delivery.poisoned),
            "{label}"
        );

        apps::run(&store, app_cmd(&["remove", "alpha", "rocketchat"]))
            .await
            .unwrap();
        assert!(
            apps::run(&store, app_cmd(&["remove", "alpha", "rocketchat"]))
                .await
                .is_err(),
            "{label}"
        );
        let names: Vec<String> = store
            .apps(org.id)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["matrix"], "{label}");
        assert_eq!(
            store
                .outbox_rows(org.id, None, false, 100)
                .await
                .unwrap()
                .len(),
            2,
            "{label}"
        );
    }
}

#[tokio::test]
async fn the_binary_refuses_a_missing_credential_file() {
    let dir = std::env::temp_dir().join(format!("liaison-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}/l.db?mode=rwc", dir.display());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_liaison"))
            .args(args)
            .env("LIAISON_DATABASE_URL", &db)
            .env_remove("LIAISON_CONFIG")
            .output()
            .unwrap()
    };
    let created = run(&["org", "create", "alpha"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let out = run(&[
        "app",
        "add",
        "alpha",
        "scim",
        "--url",
        "https://s.example.org",
        "--credential-file",
        "/nonexistent/liaison",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/liaison"));
    let secret = dir.join("token");
    std::fs::write(&secret, "VerySecretBearer").unwrap();
    let out = run(&[
        "app",
        "add",
        "alpha",
        "scim",
        "--url",
        "https://s.example.org",
        "--credential-file",
        &secret.display().to_string(),
        "--no-patch",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["app", "list", "alpha"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("https://s.example.org") && listed.contains("file:"),
        "{listed}"
    );
    assert!(!listed.contains("VerySecretBearer"), "{listed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn adopting_existing_accounts_is_an_operators_choice_per_app() {
    let file = SecretFile::new("admin:Sup3rSecretAppPassword");
    for app in common::apps().await {
        let l = &app.label;
        let token = app.org("alpha").await;
        let operator = operator_token(&app.store).await;
        let base = "/o/alpha/admin/apps";
        let mut new = nextcloud_app("https://cloud.example.org", &file);
        new["adopt"] = json!("by-username");
        // An organisation's token may not allow adoption, nor smuggle it in
        // the free settings.
        let refused = app
            .call(Method::POST, base, Some(&token), Some(new.clone()), &[])
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{l}: {}",
            refused.body
        );
        let mut smuggled = nextcloud_app("https://cloud.example.org", &file);
        smuggled["settings"] = json!({"adopt": "by-username"});
        let refused = app
            .call(Method::POST, base, Some(&operator), Some(smuggled), &[])
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{l}: {}",
            refused.body
        );

        let created = app
            .call(Method::POST, base, Some(&operator), Some(new), &[])
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{l}: {}", created.body);
        assert_eq!(created.body["adopt"], "by-username", "{l}");
        assert_eq!(created.body["settings"], json!({}), "{l}");

        let path = format!("{base}/nextcloud");
        let patch = json!({"adopt": "by-email"});
        let refused = app
            .call(Method::PATCH, &path, Some(&token), Some(patch.clone()), &[])
            .await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{l}: {}",
            refused.body
        );
        let changed = app
            .call(Method::PATCH, &path, Some(&operator), Some(patch), &[])
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{l}: {}", changed.body);
        assert_eq!(changed.body["adopt"], "by-email", "{l}");
        let bad = app
            .call(
                Method::PATCH,
                &path,
                Some(&operator),
                Some(json!({"adopt": "always"})),
                &[],
            )
            .await;
        assert!(bad.status.is_client_error(), "{l}: {}", bad.body);
        let one = app.call(Method::GET, &path, Some(&token), None, &[]).await;
        assert_eq!(one.body["adopt"], "by-email", "{l}");
        let reset = app
            .call(
                Method::PATCH,
                &path,
                Some(&operator),
                Some(json!({"adopt": "never"})),
                &[],
            )
            .await;
        assert_eq!(reset.body["adopt"], "never", "{l}");
    }
}
