//! The carbon footprint through the admin API (`GET
//! /o/{org}/admin/footprint/{period}`) and the command line (`liaison footprint
//! report`), on each store under test, with the worked example of
//! docs/FOOTPRINT.md as usage (CSV files, one per month).

mod common;

use axum::http::{Method, StatusCode};
use common::App;
use liaison::config::Config;
use std::path::{Path, PathBuf};

fn fixture(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "liaison-footprint-api-{label}-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(dir.join("usage")).unwrap();
    std::fs::write(dir.join("inventory.toml"), footprint::example::INVENTORY).unwrap();
    for (month, k) in [("2026-09", 0.8), ("2026-10", 0.9), ("2026-11", 1.0)] {
        std::fs::write(
            dir.join("usage").join(format!("{month}.csv")),
            footprint::example::usage_csv_scaled(k),
        )
        .unwrap();
    }
    dir
}

fn config(dir: &Path) -> Config {
    let mut c = Config::default();
    let f = &mut c.footprint;
    f.inventory = Some(dir.join("inventory.toml"));
    f.usage = footprint::settings::UsageSource::Csv;
    f.usage_dir = Some(dir.join("usage"));
    let m = footprint::example::mapping();
    f.namespaces = m.namespaces;
    f.shared_namespaces = m.shared;
    c
}

async fn apps(dir: &Path) -> Vec<App> {
    common::apps_with(config(dir)).await
}

#[tokio::test]
async fn an_organisation_reads_its_own_footprint_and_only_its_own() {
    let dir = fixture("api");
    for app in apps(&dir).await {
        let l = &app.label;
        let ecole = app.org("ecole").await;
        let syndicat = app.org("syndicat").await;
        let get = |uri: String, token: String| {
            let app = &app;
            async move { app.call(Method::GET, &uri, Some(&token), None, &[]).await }
        };
        // Earlier months, computed once (they are over): kept for the chart.
        for month in ["2026-09", "2026-10"] {
            let a = get(format!("/o/ecole/admin/footprint/{month}"), ecole.clone()).await;
            assert_eq!(a.status, StatusCode::OK, "{l}: {:?}", a.body);
        }
        let a = get("/o/ecole/admin/footprint/2026-11".into(), ecole.clone()).await;
        assert_eq!(a.status, StatusCode::OK, "{l}: {:?}", a.body);
        let b = &a.body;
        assert_eq!(b["period"], "2026-11");
        assert_eq!(b["organisations"].as_array().unwrap().len(), 1);
        let o = &b["organisations"][0];
        assert_eq!(o["org"], "ecole");
        for key in [
            "energy_kwh",
            "use_kgco2e",
            "embodied_kgco2e",
            "total_kgco2e",
        ] {
            let r = &o[key];
            let (lo, c, hi) = (
                r["low"].as_f64().unwrap(),
                r["central"].as_f64().unwrap(),
                r["high"].as_f64().unwrap(),
            );
            assert!(lo <= c && c <= hi && lo >= 0.0, "{l}: {key} {r}");
        }
        assert!(o["direct"]["total_kgco2e"]["central"].as_f64().unwrap() > 0.0);
        assert!(o["shared"]["total_kgco2e"]["central"].as_f64().unwrap() > 0.0);
        assert!(
            (b["cluster"]["energy_kwh"]["central"].as_f64().unwrap() - 162.0).abs() < 1e-9,
            "{l}"
        );
        let history: Vec<&str> = b["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["period"].as_str().unwrap())
            .collect();
        assert_eq!(history, ["2026-09", "2026-10"], "{l}");
        // Nothing of the other organisation: neither its name nor its namespace.
        let text = b.to_string();
        assert!(!text.contains("syndicat"), "{l}: {text}");

        // Another organisation's token: the same 404 as a missing organisation.
        let a = get("/o/ecole/admin/footprint/2026-11".into(), syndicat.clone()).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{l}");

        let a = get(
            "/o/ecole/admin/footprint/2026-11?format=csv".into(),
            ecole.clone(),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.headers["content-type"], "text/csv; charset=utf-8");
        let csv = a.body.as_str().unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        assert!(csv.lines().nth(1).unwrap().starts_with("ecole,2026-11,"));
        assert!(csv.lines().nth(2).unwrap().starts_with("*,2026-11,"));

        let a = app
            .call(
                Method::GET,
                "/o/ecole/admin/footprint/2026-11?format=html",
                Some(&ecole),
                None,
                &[("accept-language", "fr-FR,fr;q=0.9,en;q=0.5")],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
        let csp = a.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(a.headers["content-language"], "fr");
        let html = a.body.as_str().unwrap();
        assert!(html.contains("<html lang=\"fr\">"));
        assert!(html.contains("<title>Empreinte carbone : ecole, 2026-11</title>"));
        assert!(html.contains("<svg role=\"img\" aria-labelledby=\"chart-title\""));
        assert!(html.contains("n’est pas un intervalle de confiance"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("syndicat"));

        let a = get(
            "/o/ecole/admin/footprint/2026-11?format=html&lang=en".into(),
            ecole.clone(),
        )
        .await;
        assert!(a.body.as_str().unwrap().contains("<html lang=\"en\">"));

        for (uri, status) in [
            ("/o/ecole/admin/footprint/2026-13", StatusCode::BAD_REQUEST),
            ("/o/ecole/admin/footprint/2999-01", StatusCode::BAD_REQUEST),
            (
                "/o/ecole/admin/footprint/2026-11?format=xml",
                StatusCode::BAD_REQUEST,
            ),
            (
                "/o/ecole/admin/footprint/2026-11?lang=de",
                StatusCode::BAD_REQUEST,
            ),
            (
                "/o/ecole/admin/footprint/2026-11?bogus=1",
                StatusCode::BAD_REQUEST,
            ),
            ("/o/ecole/admin/footprint/2026-08", StatusCode::NOT_FOUND),
        ] {
            let a = get(uri.into(), ecole.clone()).await;
            assert_eq!(a.status, status, "{l}: {uri}: {:?}", a.body);
        }
        let a = app
            .call(
                Method::GET,
                "/o/ecole/admin/footprint/2026-11",
                None,
                None,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_configuration_the_endpoint_says_so() {
    for app in common::apps().await {
        let token = app.org("ecole").await;
        let a = app
            .call(
                Method::GET,
                "/o/ecole/admin/footprint/2026-11",
                Some(&token),
                None,
                &[],
            )
            .await;
        // Not a failure of the server (a 5xx): the resource does not exist here.
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", app.label);
        assert_eq!(a.body["error"], "not_configured");
    }
}

#[test]
fn the_command_line_writes_reports() {
    let dir = fixture("cli");
    let db = format!("sqlite://{}", dir.join("liaison.db").display());
    let conf = dir.join("liaison.toml");
    std::fs::write(
        &conf,
        format!(
            "[footprint]\ninventory = {:?}\nusage = \"csv\"\nusage_dir = {:?}\nshared_namespaces = [\"ingress\"]\n\
             [footprint.namespaces]\n\"nc-ecole\" = \"ecole\"\n\"chat-syndicat\" = \"syndicat\"\n",
            dir.join("inventory.toml"),
            dir.join("usage")
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_liaison"))
            .arg("--config")
            .arg(&conf)
            .args(args)
            .env("LIAISON_DATABASE_URL", &db)
            .env_remove("LIAISON_TEST_POSTGRES_URL")
            .env_remove("LIAISON_REQUIRE_POSTGRES")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(run(&["org", "create", "ecole"]).0);
    assert!(run(&["org", "create", "syndicat"]).0);
    let (ok, out, err) = run(&[
        "footprint",
        "report",
        "--period",
        "2026-11",
        "--format",
        "csv",
    ]);
    assert!(ok, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert!(rows[0].starts_with("org,period,energy_kwh_low"));
    let (ok, out, err) = run(&[
        "footprint",
        "report",
        "--period",
        "2026-11",
        "--org",
        "ecole",
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["organisations"][0]["org"], "ecole");
    let html_dir = dir.join("html");
    let (ok, out, err) = run(&[
        "footprint",
        "report",
        "--period",
        "2026-11",
        "--format",
        "html",
        "--lang",
        "fr",
        "--output",
        html_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let page = std::fs::read_to_string(html_dir.join("footprint-ecole-2026-11.html")).unwrap();
    assert!(page.contains("<html lang=\"fr\">"));
    // A usage file given on the command line wins over the configured one.
    let other = dir.join("other.csv");
    std::fs::write(&other, footprint::example::usage_csv_scaled(2.0)).unwrap();
    let (ok, out, err) = run(&[
        "footprint",
        "report",
        "--period",
        "2026-11",
        "--usage",
        other.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["source"], "csv");
    // Errors: a bad month, an unknown organisation, HTML to stdout for several.
    let (ok, _, err) = run(&["footprint", "report", "--period", "2026-13"]);
    assert!(!ok && err.contains("invalid period"), "{err}");
    let (ok, _, err) = run(&[
        "footprint",
        "report",
        "--period",
        "2026-11",
        "--org",
        "nobody",
    ]);
    assert!(!ok && err.contains("no organisation nobody"), "{err}");
    let (ok, _, err) = run(&[
        "footprint",
        "report",
        "--period",
        "2026-11",
        "--format",
        "html",
    ]);
    assert!(!ok && err.contains("needs --org"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
