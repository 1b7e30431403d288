//! The footprint report in a real browser. Six months of the worked example are
//! computed through the admin API (on SQLite: the page does not depend on the
//! store), the French HTML page of the last one is served on a loopback port
//! with the API's own `Content-Security-Policy`, and headless Chromium (Debian's
//! `chromium`):
//! * renders the page: the DOM must be the French report with its chart and
//!   the chart's table, with no CSP violation in the console;
//! * takes PNG screenshots of the page and of the chart alone (twice the pixel
//!   density), whose sizes are checked;
//! * and the chart's screenshot must be legible: Tesseract OCR (Debian's
//!   `tesseract-ocr`) must read its legend and its months.
//!
//! `LIAISON_KEEP_SCREENSHOTS=1` keeps the screenshots and prints where they are.
//! Skipped, with a message, when `chromium` (or `tesseract`) is not on `PATH`,
//! unless `LIAISON_REQUIRE_CHROMIUM=1` (then the test fails).

mod common;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const REQUIRE_VAR: &str = "LIAISON_REQUIRE_CHROMIUM";
const MONTHS: [(&str, f64); 6] = [
    ("2026-06", 0.6),
    ("2026-07", 0.5),
    ("2026-08", 0.7),
    ("2026-09", 0.8),
    ("2026-10", 0.9),
    ("2026-11", 1.0),
];

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn required(what: &str) {
    if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
        panic!("{REQUIRE_VAR}=1 but {what} is not on PATH");
    }
    eprintln!("skipping: {what} is not on PATH (set {REQUIRE_VAR}=1 to fail instead)");
}

/// Runs `exe` with `args`, killing it after a minute; returns its standard
/// output and error.
fn run(exe: &Path, args: &[String], work: &Path, name: &str) -> (String, String) {
    let out = work.join(format!("{name}.out"));
    let err = work.join(format!("{name}.err"));
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name}: {} did not exit within a minute", exe.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (o, e) = (
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    );
    assert!(status.success(), "{name}: {status}\n{e}");
    (o, e)
}

fn chromium_args(work: &Path, name: &str, url: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!(
        "--user-data-dir={}",
        work.join(format!("profile-{name}")).display()
    ));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(url.to_owned());
    args
}

/// Width and height of a PNG, after checking its signature.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert!(
        b.len() > 2000 && &b[..8] == b"\x89PNG\r\n\x1a\n" && &b[12..16] == b"IHDR",
        "{}",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_french_report_and_its_chart_in_chromium() {
    let Some(chromium) = on_path("chromium") else {
        return required("chromium");
    };
    let Some(tesseract) = on_path("tesseract") else {
        return required("tesseract");
    };
    let work = std::env::temp_dir().join(format!(
        "liaison-footprint-browser-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(work.join("usage")).unwrap();
    std::fs::write(work.join("inventory.toml"), footprint::example::INVENTORY).unwrap();
    for (month, k) in MONTHS {
        std::fs::write(
            work.join("usage").join(format!("{month}.csv")),
            footprint::example::usage_csv_scaled(k),
        )
        .unwrap();
    }
    let mut config = liaison::config::Config::default();
    config.footprint.inventory = Some(work.join("inventory.toml"));
    config.footprint.usage = footprint::settings::UsageSource::Csv;
    config.footprint.usage_dir = Some(work.join("usage"));
    let m = footprint::example::mapping();
    config.footprint.namespaces = m.namespaces;
    config.footprint.shared_namespaces = m.shared;
    let app = common::App::new(
        "sqlite".into(),
        store::testing::sqlite_store().await,
        config,
    )
    .await;
    let token = app.org("ecole").await;
    let mut page = None;
    for (month, _) in MONTHS {
        let a = app
            .call(
                Method::GET,
                &format!("/o/ecole/admin/footprint/{month}?format=html"),
                Some(&token),
                None,
                &[("accept-language", "fr")],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{month}: {:?}", a.body);
        page = Some((
            a.body.as_str().unwrap().to_owned(),
            a.headers["content-security-policy"].clone(),
        ));
    }
    let (html, csp) = page.unwrap();
    let svg = {
        let start = html.find("<svg").unwrap();
        let end = html.find("</svg>").unwrap() + "</svg>".len();
        html[start..end].replacen(
            "<svg ",
            "<svg xmlns:xlink=\"http://www.w3.org/1999/xlink\" ",
            0,
        )
    };
    let with = |body: String, kind: &'static str, csp: HeaderValue| {
        move || async move {
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
                    (header::CONTENT_SECURITY_POLICY, csp),
                ],
                body,
            )
                .into_response()
        }
    };
    let server = axum::Router::new()
        .route(
            "/",
            axum::routing::get(with(html.clone(), "text/html; charset=utf-8", csp.clone())),
        )
        .route(
            "/chart.svg",
            axum::routing::get(with(svg, "image/svg+xml", csp)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(async move { axum::serve(listener, server).await });

    let (w, c, t) = (work.clone(), chromium.clone(), tesseract.clone());
    tokio::task::spawn_blocking(move || {
        let (dom, err) = run(
            &c,
            &chromium_args(&w, "dom", &format!("{base}/"), &["--dump-dom"]),
            &w,
            "dom",
        );
        assert!(
            !err.contains("Content Security Policy"),
            "the page broke its CSP:\n{err}"
        );
        for needle in [
            "<html lang=\"fr\">",
            "<title>Empreinte carbone : ecole, 2026-11</title>",
            "<figure id=\"chart-figure\">",
            "<title id=\"chart-title\">Diagramme en barres",
            "Émissions par mois (kgCO2e), comme dans le diagramme",
            "<th scope=\"row\">2026-06</th>",
            "\nkgCO2e\n</text>",
        ] {
            assert!(dom.contains(needle), "no {needle:?} in the DOM:\n{dom}");
        }
        let page_png = w.join("page.png");
        let shot = format!("--screenshot={}", page_png.display());
        let (_, err) = run(
            &c,
            &chromium_args(
                &w,
                "page",
                &format!("{base}/"),
                &[&shot, "--window-size=1000,1600"],
            ),
            &w,
            "page",
        );
        assert!(!err.contains("Content Security Policy"), "{err}");
        assert_eq!(png_size(&page_png), (1000, 1600));
        let chart_png = w.join("chart.png");
        let shot = format!("--screenshot={}", chart_png.display());
        let size = format!(
            "--window-size={},{}",
            footprint::chart::WIDTH,
            footprint::chart::HEIGHT
        );
        run(
            &c,
            &chromium_args(
                &w,
                "chart",
                &format!("{base}/chart.svg"),
                &[&shot, &size, "--force-device-scale-factor=2"],
            ),
            &w,
            "chart",
        );
        assert_eq!(
            png_size(&chart_png),
            (footprint::chart::WIDTH * 2, footprint::chart::HEIGHT * 2)
        );
        // Legible: OCR reads the legend and the months (the axis title is
        // vertical, which Tesseract does not read; the DOM check above has it).
        let (text, _) = run(
            &t,
            &[
                chart_png.display().to_string(),
                "stdout".into(),
                "--psm".into(),
                "11".into(),
            ],
            &w,
            "ocr",
        );
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for word in ["Usage", "Fabrication", "Fourchette", "basse"] {
            assert!(
                compact.contains(word),
                "OCR did not read {word:?} in the chart:\n{text}"
            );
        }
        let months = MONTHS.iter().filter(|(m, _)| compact.contains(m)).count();
        assert!(months >= 5, "OCR read {months} of the 6 months:\n{text}");
    })
    .await
    .unwrap();
    serving.abort();
    if std::env::var("LIAISON_KEEP_SCREENSHOTS").as_deref() == Ok("1") {
        eprintln!("screenshots kept in {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
}
