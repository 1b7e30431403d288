//! Branding, host names and maintenance windows through the admin API and the
//! command line, on every store under test; and what the error pages read of
//! them (`site::snapshot`).

mod common;

use axum::http::{Method, StatusCode};
use common::{apps, operator_token};
use serde_json::json;
use service::site;
use std::process::Command;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn at(offset: Duration) -> String {
    (OffsetDateTime::now_utc() + offset)
        .format(&Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn profile_domains_and_windows_through_the_admin_api() {
    for app in apps().await {
        let l = &app.label;
        let acme = app.org("acme").await;
        let beta = app.org("beta").await;
        let op = operator_token(&app.store).await;
        let call = |method: Method, uri: &str, token: &str, body: Option<serde_json::Value>| {
            let (method, uri, token) = (method, uri.to_owned(), token.to_owned());
            let app = &app;
            async move { app.call(method, &uri, Some(&token), body, &[]).await }
        };

        // Branding: the organisation sets its own; billing fields are the operator's.
        let a = call(
            Method::PATCH,
            "/o/acme/admin/profile",
            &acme,
            Some(json!({
                "display_name": "École <Jaurès>", "color": "#8a1c7c",
                "contact_email": "support@acme.example", "default_language": "fr"
            })),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{l}: {}", a.body);
        assert_eq!(a.body["display_name"], "École <Jaurès>");
        for (body, want) in [
            (
                json!({"color": "red; background:url(x)"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json!({"logo_url": "javascript:alert(1)"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json!({"contact_email": "not an address"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (json!({"colour": "#fff"}), StatusCode::UNPROCESSABLE_ENTITY),
            (json!({"category": "school"}), StatusCode::FORBIDDEN),
        ] {
            let a = call(
                Method::PATCH,
                "/o/acme/admin/profile",
                &acme,
                Some(body.clone()),
            )
            .await;
            assert_eq!(a.status, want, "{l}: {body}: {}", a.body);
        }
        let a = call(
            Method::PATCH,
            "/o/acme/admin/profile",
            &op,
            Some(json!({"category": "school"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{l}: {}", a.body);
        let a = call(
            Method::PATCH,
            "/o/acme/admin/profile",
            &op,
            Some(json!({"category": "gold"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{l}");
        // Clearing a field with an empty string.
        let a = call(
            Method::PATCH,
            "/o/acme/admin/profile",
            &acme,
            Some(json!({"default_language": ""})),
        )
        .await;
        assert!(a.body["default_language"].is_null(), "{l}: {}", a.body);

        // Host names: operator only, unique across organisations.
        let a = call(
            Method::POST,
            "/o/acme/admin/domains",
            &acme,
            Some(json!({"host": "cloud.acme.example"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{l}");
        let a = call(
            Method::POST,
            "/o/acme/admin/domains",
            &op,
            Some(json!({"host": "Cloud.Acme.Example"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{l}: {}", a.body);
        assert_eq!(a.body["host"], "cloud.acme.example");
        let a = call(
            Method::POST,
            "/o/beta/admin/domains",
            &op,
            Some(json!({"host": "cloud.acme.example"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{l}");
        let a = call(
            Method::POST,
            "/o/beta/admin/domains",
            &op,
            Some(json!({"host": "bad host/<x>"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{l}");
        let a = call(Method::GET, "/o/acme/admin/domains", &acme, None).await;
        assert_eq!(a.body["domains"], json!(["cloud.acme.example"]), "{l}");

        // Maintenance windows.
        let a = call(Method::POST, "/o/acme/admin/maintenance", &acme, Some(json!({
            "from": at(Duration::minutes(-5)), "until": at(Duration::hours(2)), "app": "nextcloud",
            "messages": {"fr": "Mise à jour", "en": "Upgrade"}
        }))).await;
        assert_eq!(a.status, StatusCode::CREATED, "{l}: {}", a.body);
        let id = a.body["id"].as_str().unwrap().to_owned();
        assert_eq!(
            a.headers["location"],
            format!("/o/acme/admin/maintenance/{id}")
        );
        for bad in [
            json!({"from": "tomorrow", "until": at(Duration::hours(2))}),
            json!({"from": at(Duration::hours(2)), "until": at(Duration::hours(1))}),
            json!({"from": at(Duration::hours(-3)), "until": at(Duration::hours(-2))}),
            json!({"from": at(Duration::hours(1)), "until": at(Duration::hours(2)), "messages": {"FR!": "x"}}),
        ] {
            let a = call(
                Method::POST,
                "/o/acme/admin/maintenance",
                &acme,
                Some(bad.clone()),
            )
            .await;
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{l}: {bad}: {}",
                a.body
            );
        }
        let a = call(Method::GET, "/o/acme/admin/maintenance", &acme, None).await;
        assert_eq!(a.body["windows"].as_array().unwrap().len(), 1, "{l}");
        assert!(call(Method::GET, "/o/beta/admin/maintenance", &beta, None)
            .await
            .body["windows"]
            .as_array()
            .unwrap()
            .is_empty());

        // What the error pages read.
        let snap = site::snapshot(&app.store).await.unwrap();
        assert_eq!(
            snap.sites.len(),
            1,
            "{l}: only organisations with a host name"
        );
        assert_eq!(snap.sites[0].org, "acme");
        assert_eq!(snap.sites[0].hosts, vec!["cloud.acme.example"]);
        assert_eq!(snap.sites[0].branding.display_name, "École <Jaurès>");
        assert_eq!(snap.sites[0].branding.color.as_deref(), Some("#8a1c7c"));
        assert_eq!(snap.windows.len(), 1);
        assert_eq!(snap.windows[0].app.as_deref(), Some("nextcloud"));
        assert_eq!(snap.windows[0].messages["fr"], "Mise à jour");

        // Another organisation cannot cancel it; its own can, once.
        let uri = format!("/o/beta/admin/maintenance/{id}");
        assert_eq!(
            call(Method::DELETE, &uri, &beta, None).await.status,
            StatusCode::NOT_FOUND,
            "{l}"
        );
        let uri = format!("/o/acme/admin/maintenance/{id}");
        assert_eq!(
            call(Method::DELETE, &uri, &acme, None).await.status,
            StatusCode::NO_CONTENT,
            "{l}"
        );
        assert_eq!(
            call(Method::DELETE, &uri, &acme, None).await.status,
            StatusCode::NOT_FOUND,
            "{l}"
        );
        let a = call(
            Method::DELETE,
            "/o/acme/admin/domains/cloud.acme.example",
            &op,
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{l}");
        assert!(site::snapshot(&app.store).await.unwrap().sites.is_empty());
    }
}

fn liaison(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_liaison"))
        .args(args)
        .env("LIAISON_DATABASE_URL", db)
        .env("LIAISON_LOG", "warn")
        .output()
        .expect("run liaison");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The command line of the interface, on a fresh SQLite file.
#[test]
fn the_command_line_sets_up_pages_and_reports_contributions() {
    let dir = std::env::temp_dir().join(format!("liaison-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("l.db").display());
    let ok = |args: &[&str]| {
        let (ok, out, err) = liaison(&db, args);
        assert!(ok, "liaison {args:?} failed: {out}{err}");
        out
    };
    ok(&["org", "create", "jaures", "--name", "École Jean Jaurès"]);
    ok(&["org", "create", "syndicat"]);
    let out = ok(&["meter", "webhook-secret", "jaures"]);
    let secret = out.lines().last().unwrap();
    assert!(
        secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
        "{out}"
    );
    ok(&["domain", "add", "jaures", "cloud.jaures.example"]);
    ok(&[
        "org",
        "set",
        "jaures",
        "--color",
        "#8a1c7c",
        "--contact",
        "support@jaures.example",
        "--category",
        "school",
    ]);
    let (failed, _, err) = liaison(&db, &["org", "set", "jaures", "--color", "<script>"]);
    assert!(!failed && err.contains("color"), "{err}");
    let (failed, _, err) = liaison(&db, &["org", "set", "jaures", "--category", "nope"]);
    assert!(!failed && err.contains("category"), "{err}");
    let until = at(Duration::hours(1));
    let out = ok(&[
        "maintenance",
        "add",
        "jaures",
        "--from",
        &at(Duration::minutes(-1)),
        "--until",
        &until,
        "--message-fr",
        "Travaux",
    ]);
    let id = out.lines().last().unwrap().to_owned();
    assert!(ok(&["maintenance", "list"]).contains(&id));
    assert!(ok(&["domain", "list"]).contains("cloud.jaures.example\tjaures"));

    let out = ok(&["meter", "report", "--period", "2026-10", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON array");
    let report = report.as_array().unwrap();
    assert_eq!(report.len(), 2);
    for st in report {
        for key in [
            "org",
            "period",
            "active_accounts",
            "per_app",
            "contribution",
        ] {
            assert!(st.get(key).is_some(), "{key} in {st}");
        }
        assert_eq!(st["period"], "2026-10");
        assert_eq!(st["active_accounts"], 0);
    }
    // Nobody active: the minimum applies, scaled by nothing.
    assert_eq!(report[0]["contribution"]["net"], "10.00");
    assert_eq!(report[0]["contribution"]["category"], "school");
    let csv = ok(&["meter", "report", "--period", "2026-10", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let out = ok(&["meter", "close", "--period", "2026-10"]);
    assert!(out.contains("jaures\t2026-10\t0 active accounts"), "{out}");
    let (failed, _, err) = liaison(&db, &["meter", "close", "--period", "2999-01"]);
    assert!(!failed && err.contains("has not ended"), "{err}");
    let (failed, _, err) = liaison(&db, &["meter", "report", "--period", "November"]);
    assert!(!failed && err.contains("November"), "{err}");
    ok(&["maintenance", "cancel", "jaures", &id]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `liaison pages --static FILE`: the listener alone, without a database.
#[tokio::test]
async fn the_pages_listener_serves_a_static_file() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../pages/examples/pages.toml");
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Killed(
        Command::new(env!("CARGO_BIN_EXE_liaison"))
            .args([
                "pages",
                "--static",
                file,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env("LIAISON_LOG", "warn")
            .env_remove("LIAISON_DATABASE_URL")
            .spawn()
            .expect("start liaison pages"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            ready = r.status().is_success();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "liaison pages did not answer /healthz");
    let r = client
        .get(format!("{base}/"))
        .header("host", "ecole-jaures.example.org")
        .header("x-code", "502")
        .header("accept-language", "fr")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 502);
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    assert_eq!(r.headers()["x-robots-tag"], "noindex");
    let body = r.text().await.unwrap();
    assert!(body.contains("lang=\"fr\""), "{body}");
    assert!(body.contains("École Jean Jaurès"), "{body}");
    let r = client.get(format!("{base}/404.json")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], 404, "{v}");
}

/// A host name is stored lower-cased, so removing it works in any case.
#[tokio::test]
async fn host_names_are_removed_in_any_case() {
    for app in apps().await {
        let l = &app.label;
        app.org("acme").await;
        let op = operator_token(&app.store).await;
        let added = app
            .call(
                Method::POST,
                "/o/acme/admin/domains",
                Some(&op),
                Some(json!({"host": "Cloud.Example.ORG"})),
                &[],
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{l}: {}", added.body);
        assert_eq!(added.body["host"], "cloud.example.org", "{l}");
        let removed = app
            .call(
                Method::DELETE,
                "/o/acme/admin/domains/Cloud.Example.ORG",
                Some(&op),
                None,
                &[],
            )
            .await;
        assert_eq!(
            removed.status,
            StatusCode::NO_CONTENT,
            "{l}: {}",
            removed.body
        );
        let left = app
            .call(Method::GET, "/o/acme/admin/domains", Some(&op), None, &[])
            .await;
        assert_eq!(left.body["domains"], json!([]), "{l}");
    }
}

/// An organisation cannot fill the database with maintenance windows.
#[tokio::test]
async fn maintenance_windows_per_organisation_are_bounded() {
    for app in apps().await {
        let l = &app.label;
        let acme = app.org("acme").await;
        let beta = app.org("beta").await;
        let window = json!({"from": at(Duration::hours(1)), "until": at(Duration::hours(2))});
        for i in 0..site::MAX_WINDOWS {
            let a = app
                .call(
                    Method::POST,
                    "/o/acme/admin/maintenance",
                    Some(&acme),
                    Some(window.clone()),
                    &[],
                )
                .await;
            assert_eq!(a.status, StatusCode::CREATED, "{l}: window {i}: {}", a.body);
        }
        let over = app
            .call(
                Method::POST,
                "/o/acme/admin/maintenance",
                Some(&acme),
                Some(window.clone()),
                &[],
            )
            .await;
        assert_eq!(over.status, StatusCode::CONFLICT, "{l}: {}", over.body);
        assert_eq!(
            over.headers["content-type"], "application/problem+json",
            "{l}"
        );
        // Another organisation's windows are its own.
        let other = app
            .call(
                Method::POST,
                "/o/beta/admin/maintenance",
                Some(&beta),
                Some(window),
                &[],
            )
            .await;
        assert_eq!(other.status, StatusCode::CREATED, "{l}: {}", other.body);
    }
}
