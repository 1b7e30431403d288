//! Usage read from a real Prometheus (Debian's `prometheus`), filled by
//! `scripts/prometheus.sh` with a synthetic month written by
//! `scripts/footprint-synth.py` and backfilled with `promtool tsdb
//! create-blocks-from openmetrics`. The generator also writes what the series
//! amount to as a usage CSV: the figures read through PromQL must be those, and
//! so must the reports computed from either.
//!
//! Needs `LIAISON_TEST_PROMETHEUS_URL` and `LIAISON_TEST_PROMETHEUS_DATA` (see
//! `scripts/prometheus.sh`); skipped with a message without them, unless
//! `LIAISON_REQUIRE_PROMETHEUS=1` (then the test fails). The hostile-server
//! cases run everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;

use footprint::prometheus::{fetch, post_query, query_url, PromError, PrometheusSettings};
use footprint::settings::{compute, FootprintSettings, UsageSource};
use footprint::usage::Usage;
use footprint::Month;
use outbound::HttpError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REQUIRE_VAR: &str = "LIAISON_REQUIRE_PROMETHEUS";

fn peer() -> Option<(String, PathBuf)> {
    match (
        std::env::var("LIAISON_TEST_PROMETHEUS_URL"),
        std::env::var("LIAISON_TEST_PROMETHEUS_DATA"),
    ) {
        (Ok(url), Ok(data)) if !url.is_empty() => Some((url, PathBuf::from(data))),
        _ => {
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                panic!("{REQUIRE_VAR}=1 but LIAISON_TEST_PROMETHEUS_URL/DATA are not set (scripts/prometheus.sh)");
            }
            eprintln!("skipping: no Prometheus (run scripts/prometheus.sh start DIR PORT and source DIR/env; {REQUIRE_VAR}=1 fails instead)");
            None
        }
    }
}

fn expected_env(data: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(data.join("expected.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-9)
}

fn settings_for(url: &str, data: &std::path::Path) -> FootprintSettings {
    let mut s: FootprintSettings =
        toml::from_str(&std::fs::read_to_string(data.join("mapping.toml")).unwrap()).unwrap();
    // The label, not the table, says whose the namespaces are.
    s.namespaces.clear();
    s.org_label = Some("liaison.coop/org".into());
    s.inventory = Some(data.join("inventory.toml"));
    s.usage = UsageSource::Prometheus;
    s.prometheus = PrometheusSettings {
        url: url.to_owned(),
        ..Default::default()
    };
    s
}

#[tokio::test]
async fn the_month_read_from_prometheus_is_the_month_that_was_written() {
    let Some((url, data)) = peer() else { return };
    let env = expected_env(&data);
    let month = Month::parse(&env["MONTH"]).unwrap();
    let truth = Usage::from_csv(std::fs::File::open(data.join("usage.csv")).unwrap()).unwrap();
    let settings = settings_for(&url, &data);
    let mut steps = Vec::new();
    let fetched = fetch(
        &settings.prometheus,
        month,
        settings.org_label.as_deref(),
        &mut |done, total, label| steps.push((done, total, label.to_owned())),
    )
    .await
    .unwrap();
    assert_eq!(steps.len(), 11, "{steps:?}");
    assert_eq!(steps.last().unwrap().0, 10);
    assert!(fetched.warnings.is_empty(), "{:?}", fetched.warnings);

    // Every row, every figure (CPU counters, max of request and working set
    // hour by hour, volumes, network, buckets).
    let got = &fetched.usage;
    assert_eq!(
        got.rows.keys().collect::<Vec<_>>(),
        truth.rows.keys().collect::<Vec<_>>()
    );
    for (key, want) in &truth.rows {
        let have = got.rows[key];
        for (name, a, b) in [
            ("cpu_seconds", have.cpu_seconds, want.cpu_seconds),
            (
                "cpu_request_core_hours",
                have.cpu_request_core_hours,
                want.cpu_request_core_hours,
            ),
            (
                "memory_gb_hours",
                have.memory_gb_hours,
                want.memory_gb_hours,
            ),
            (
                "storage_gb_hours",
                have.storage_gb_hours,
                want.storage_gb_hours,
            ),
            ("network_gb", have.network_gb, want.network_gb),
        ] {
            assert!(
                rel_close(a, b, 1e-6),
                "{key:?} {name}: Prometheus {a}, written {b}"
            );
        }
    }
    assert_eq!(got.node_cpu_seconds.len(), truth.node_cpu_seconds.len());
    for (node, want) in &truth.node_cpu_seconds {
        assert!(rel_close(got.node_cpu_seconds[node], *want, 1e-6), "{node}");
    }
    // Kepler: package and DRAM zones, not the overlapping core zone.
    let kepler: f64 = env["KEPLER_KWH"].parse().unwrap();
    assert_eq!(got.node_energy_kwh.len(), 1);
    assert!(rel_close(
        got.node_energy_kwh[&env["KEPLER_NODE"]],
        kepler,
        1e-6
    ));
    // The namespaces' label gives the same mapping as the generator's table.
    let table: FootprintSettings =
        toml::from_str(&std::fs::read_to_string(data.join("mapping.toml")).unwrap()).unwrap();
    assert_eq!(fetched.org_labels, table.namespaces);

    // The whole report, from Prometheus and from the CSV (with the meter).
    let from_prom = compute(&settings, month, None, &[], &mut |_, _, _| {})
        .await
        .unwrap();
    let mut truth_with_meter = truth.clone();
    truth_with_meter
        .set_node_energy(&env["KEPLER_NODE"], kepler)
        .unwrap();
    let dir = tempdir();
    let csv = dir.join("usage.csv");
    std::fs::write(&csv, truth_with_meter.to_csv()).unwrap();
    let mut csv_settings = table.clone();
    csv_settings.inventory = Some(data.join("inventory.toml"));
    let mut from_csv = compute(&csv_settings, month, Some(&csv), &[], &mut |_, _, _| {})
        .await
        .unwrap();
    // The CSV form has no energy column: the meter goes in by hand.
    from_csv.footprint = footprint::allocate(
        &csv_settings.read_inventory().unwrap(),
        &truth_with_meter,
        &csv_settings.mapping(&BTreeMap::new(), &[]),
        month.hours(),
    )
    .unwrap();
    let (a, b) = (&from_prom.footprint, &from_csv.footprint);
    assert_eq!(a.orgs.len(), 4);
    assert_eq!(a.orgs.len(), b.orgs.len());
    for (x, y) in a.orgs.iter().zip(&b.orgs) {
        assert_eq!(x.org, y.org);
        for (p, q) in [
            (x.figures.total_kgco2e, y.figures.total_kgco2e),
            (x.figures.energy_kwh, y.figures.energy_kwh),
            (x.direct.embodied_kgco2e, y.direct.embodied_kgco2e),
        ] {
            assert!(
                rel_close(p.low, q.low, 1e-6)
                    && rel_close(p.central, q.central, 1e-6)
                    && rel_close(p.high, q.high, 1e-6),
                "{}: {p:?} vs {q:?}",
                x.org
            );
        }
    }
    assert_eq!(from_prom.report.source, "prometheus");
    assert!(a.servers.iter().any(|s| s.power_origin == "metered"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_prometheus_query_error_is_reported() {
    let Some((url, _)) = peer() else { return };
    let s = PrometheusSettings {
        url,
        timeout_secs: 10,
        max_body_bytes: 1 << 20,
        ..Default::default()
    };
    let client = footprint::prometheus::client(&s).unwrap();
    let body = post_query(
        &client,
        &query_url(&s).unwrap(),
        &[("query", "sum(".into())],
    )
    .await
    .unwrap();
    let err = footprint::prometheus::parse_vector(&body, 10).unwrap_err();
    assert!(
        matches!(err, PromError::Query { ref kind, .. } if kind == "bad_data"),
        "{err}"
    );
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "liaison-footprint-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A one-connection server answering `response` to whatever it is asked.
async fn hostile(response: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(&response).await;
            let _ = sock.shutdown().await;
        }
    });
    format!("http://{addr}")
}

async fn fetch_from(url: String, max_body: usize) -> PromError {
    let s = PrometheusSettings {
        url,
        max_body_bytes: max_body,
        timeout_secs: 5,
        ..Default::default()
    };
    fetch(
        &s,
        Month::parse("2026-11").unwrap(),
        None,
        &mut |_, _, _| {},
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let url = hostile(b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()).await;
    let err = fetch_from(url, 1 << 20).await;
    assert!(
        matches!(err, PromError::Http(HttpError::Redirect { status: 302 })),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_answers_are_refused() {
    let body = format!(
        "{{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":[{}]}}}}",
        vec![r#"{"metric":{"namespace":"a"},"value":[1,"1"]}"#; 2000].join(",")
    );
    // Announced length, and a chunked answer with no length.
    let announced = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let err = fetch_from(hostile(announced.into_bytes()).await, 10_000).await;
    assert!(
        matches!(err, PromError::Http(HttpError::TooLarge { limit: 10_000 })),
        "{err}"
    );
    let chunked = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let err = fetch_from(hostile(chunked.into_bytes()).await, 10_000).await;
    assert!(
        matches!(err, PromError::Http(HttpError::TooLarge { limit: 10_000 })),
        "{err}"
    );
}

#[tokio::test]
async fn non_json_answers_are_refused() {
    let url = hostile(
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<html>".to_vec(),
    )
    .await;
    assert!(matches!(
        fetch_from(url, 1 << 20).await,
        PromError::Malformed(_)
    ));
}
