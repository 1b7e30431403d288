//! The error pages in a real browser: on each store under test, an organisation
//! with a branding profile, a host name and an active maintenance window is served
//! by `pages::router` over `DbSource` on a loopback port, and headless Chromium
//! (Debian's `chromium`) loads `http://<host>:<port>/503` with French as its
//! language. The rendered DOM must be the organisation's French maintenance page;
//! screenshots (light, and dark at twice the pixel density) must be PNG images of
//! the window's size; the console must report no `Content-Security-Policy`
//! violation (the inline style's hash must match). `LIAISON_KEEP_SCREENSHOTS=1`
//! keeps the screenshots and prints where they are.
//!
//! Skipped, with a message, when `chromium` is not on `PATH`, unless
//! `LIAISON_REQUIRE_CHROMIUM=1` (then the test fails).

use service::site::{self, DbSource, NewWindow, ProfilePatch};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const REQUIRE_VAR: &str = "LIAISON_REQUIRE_CHROMIUM";
/// A Chromium run that has not exited after this long is killed.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(60);

const HOST: &str = "pages.ecole-jaures.test";
const DISPLAY_NAME: &str = "École Jean Jaurès";
const COLOR: &str = "#8a1c7c";
const CONTACT: &str = "support@ecole-jaures.test";
/// Markup in the message must come out as text.
const MESSAGE_FR: &str = "Mise à jour de <b>Nextcloud</b> vers la version 31.";
const MESSAGE_FR_DOM: &str = "Mise à jour de &lt;b&gt;Nextcloud&lt;/b&gt; vers la version 31.";
const MESSAGE_EN: &str = "Upgrade of Nextcloud to version 31.";

/// The `chromium` executable on `PATH`.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
}

/// A fresh, empty directory under the system's temporary directory.
fn fresh_dir(label: &str) -> PathBuf {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let dir = std::env::temp_dir().join(format!(
        "liaison-pages-browser-{label}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on `url` with `extra` arguments, in a fresh profile
/// under `work`; returns its standard output. Kills it after [`CHROMIUM_LIMIT`].
/// Fails when the page's console reports a `Content-Security-Policy` violation (the
/// console goes to standard error with `--enable-logging=stderr`).
fn run_chromium(
    exe: &Path,
    work: &Path,
    name: &str,
    port: u16,
    url: &str,
    extra: &[String],
) -> String {
    let profile = work.join(format!("profile-{name}"));
    std::fs::create_dir_all(&profile).unwrap();
    let out_path = work.join(format!("{name}.stdout"));
    let err_path = work.join(format!("{name}.stderr"));
    let mut cmd = Command::new(exe);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        "--accept-lang=fr-FR,fr",
        "--lang=fr-FR",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--host-resolver-rules=MAP {HOST} 127.0.0.1"))
    .args(extra)
    .arg(url)
    .env("LANGUAGE", "fr_FR")
    .stdin(Stdio::null())
    .stdout(File::create(&out_path).unwrap())
    .stderr(File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("cannot start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CHROMIUM_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium ({name}, port {port}) did not exit within {CHROMIUM_LIMIT:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success(),
        "chromium ({name}) failed: {status}; stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("Content Security Policy"),
        "chromium ({name}): the page broke its Content-Security-Policy:\n{stderr}"
    );
    std::fs::read_to_string(&out_path).unwrap()
}

/// Width and height of a PNG file, after checking its signature and header chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 1000,
        "{}: only {} bytes",
        path.display(),
        bytes.len()
    );
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{}: not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR", "{}: no IHDR chunk", path.display());
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

async fn chromium_async(
    exe: &Path,
    work: &Path,
    name: &str,
    port: u16,
    extra: Vec<String>,
) -> String {
    let (exe, work, name) = (exe.to_owned(), work.to_owned(), name.to_owned());
    let url = format!("http://{HOST}:{port}/503");
    tokio::task::spawn_blocking(move || run_chromium(&exe, &work, &name, port, &url, &extra))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_a_branded_french_maintenance_page() {
    let Some(exe) = chromium() else {
        if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
            panic!("{REQUIRE_VAR}=1 but chromium is not on PATH");
        }
        eprintln!("skipping: chromium is not on PATH (set {REQUIRE_VAR}=1 to fail instead)");
        return;
    };
    for (engine, store) in store::testing::stores_under_test().await {
        let mut tx = store.begin().await.unwrap();
        let org = tx.create_org("ecole-jaures", "ecole-jaures").await.unwrap();
        tx.commit().await.unwrap();
        // English by default: French comes from the browser's Accept-Language.
        let patch = ProfilePatch {
            display_name: Some(DISPLAY_NAME.parse().unwrap()),
            color: Some(COLOR.parse().unwrap()),
            contact_email: Some(CONTACT.parse().unwrap()),
            default_language: Some("en".parse().unwrap()),
            ..Default::default()
        };
        site::set_profile(&store, &org, service::Caller::Operator, &patch, &[])
            .await
            .unwrap();
        site::add_domain(&store, &org, service::Caller::Operator, HOST)
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let messages = BTreeMap::from([
            ("fr".parse().unwrap(), MESSAGE_FR.parse().unwrap()),
            ("en".parse().unwrap(), MESSAGE_EN.parse().unwrap()),
        ]);
        site::add_window(
            &store,
            &org,
            &NewWindow {
                from: now - time::Duration::minutes(10),
                until: now + time::Duration::hours(2),
                app: None,
                messages,
            },
        )
        .await
        .unwrap();

        let cfg = pages::PagesConfig {
            refresh: Duration::ZERO,
            ..Default::default()
        };
        let app = pages::router(Arc::new(DbSource(store.clone())), cfg)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let work = fresh_dir(engine);
        let dom = chromium_async(&exe, &work, "dom", port, vec!["--dump-dom".into()]).await;
        let has = |needle: &str| {
            assert!(
                dom.contains(needle),
                "{engine}: no {needle:?} in the DOM:\n{dom}"
            );
        };
        has("<html lang=\"fr\"");
        has(&format!(
            "<title>Maintenance en cours · {DISPLAY_NAME}</title>"
        ));
        has(&format!("<span>{DISPLAY_NAME}</span>"));
        has("<h1>Maintenance en cours</h1>");
        has("Erreur 503");
        has("Merci de votre patience.");
        has(MESSAGE_FR_DOM);
        has("Retour prévu d’ici le ");
        has("Besoin d’aide ?");
        has(&format!("href=\"mailto:{CONTACT}\""));
        for absent in [
            "Maintenance in progress",
            "Service unavailable",
            MESSAGE_EN,
            "<b>",
            "lang=\"en\"",
        ] {
            assert!(
                !dom.contains(absent),
                "{engine}: {absent:?} in the DOM:\n{dom}"
            );
        }

        let light = work.join("light.png");
        chromium_async(
            &exe,
            &work,
            "light",
            port,
            vec![
                format!("--screenshot={}", light.display()),
                "--window-size=1280,900".into(),
                "--hide-scrollbars".into(),
            ],
        )
        .await;
        assert_eq!(png_size(&light), (1280, 900), "{engine}: light.png");

        let dark = work.join("dark-2x.png");
        chromium_async(
            &exe,
            &work,
            "dark-2x",
            port,
            vec![
                format!("--screenshot={}", dark.display()),
                "--window-size=1280,900".into(),
                "--hide-scrollbars".into(),
                "--force-dark-mode".into(),
                "--blink-settings=preferredColorScheme=0".into(),
                "--force-device-scale-factor=2".into(),
            ],
        )
        .await;
        assert_eq!(png_size(&dark), (2560, 1800), "{engine}: dark-2x.png");

        server.abort();
        if std::env::var("LIAISON_KEEP_SCREENSHOTS").as_deref() == Ok("1") {
            eprintln!("{engine}: screenshots kept in {}", work.display());
        } else {
            let _ = std::fs::remove_dir_all(&work);
        }
    }
}
