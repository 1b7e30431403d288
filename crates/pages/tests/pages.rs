//! The pages through their router (`oneshot`) and through the pure `respond` with a
//! fixed clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use pages::{
    respond, Catalogue, FixedSource, Format, Index, MaintenanceWindow, PageRequest, Pages,
    PagesConfig, Snapshot, Source, StaticSource, DEFAULT_ANNOUNCE_AHEAD,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt as _;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pages.toml");

fn example() -> Snapshot {
    Snapshot::from_toml_file(EXAMPLE).unwrap()
}

fn window(
    id: &str,
    org: &str,
    app: Option<&str>,
    starts_at: OffsetDateTime,
    ends_at: OffsetDateTime,
) -> MaintenanceWindow {
    MaintenanceWindow {
        id: id.into(),
        org: org.into(),
        app: app.map(Into::into),
        starts_at,
        ends_at,
        messages: BTreeMap::from([
            ("fr".into(), "Mise à jour du serveur.".into()),
            ("en".into(), "Server upgrade.".into()),
        ]),
    }
}

async fn app(snap: Snapshot) -> Router {
    pages::router(Arc::new(FixedSource(snap)), PagesConfig::default())
        .await
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn get(app: &Router, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

const JAURES: &str = "ecole-jaures.example.org";
const HARBOUR: &str = "harbour.example.net";

#[tokio::test]
async fn status_follows_x_code_then_the_path_then_404() {
    let app = app(example()).await;
    let cases: &[(&str, Option<&str>, u16)] = &[
        ("/", None, 404),
        ("/", Some("502"), 502),
        ("/", Some("503"), 503),
        ("/", Some("401"), 401),
        ("/", Some("200"), 404),
        ("/", Some("302"), 404),
        ("/", Some("600"), 404),
        ("/", Some("<script>"), 404),
        ("/429", None, 429),
        ("/418", None, 418),
        ("/599.json", None, 599),
        ("/200", None, 404),
        ("/503", Some("500"), 500),
        ("/503", Some("abc"), 503),
        ("/some/unknown/path", None, 404),
        ("/favicon.ico", None, 404),
        ("/404.png", None, 404),
    ];
    for &(path, code, want) in cases {
        let headers: Vec<(&str, &str)> = code.map(|c| ("x-code", c)).into_iter().collect();
        let a = get(&app, path, &headers).await;
        assert_eq!(a.status.as_u16(), want, "{path} X-Code {code:?}");
        assert!(a.body.contains(&want.to_string()), "{path}: {}", a.body);
    }
    // Family texts for codes without their own.
    let a = get(&app, "/418.txt", &[]).await;
    assert!(a.body.contains("Request error"), "{}", a.body);
    let a = get(&app, "/", &[("x-code", "507"), ("accept", "text/plain")]).await;
    assert!(a.body.contains("Server error"), "{}", a.body);
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = app(example()).await;
    let a = get(&app, "/healthz", &[("x-code", "503"), ("host", JAURES)]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "ok");
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn path_forms_choose_the_format() {
    let app = app(example()).await;
    for (path, ct) in [
        ("/503", "text/html; charset=utf-8"),
        ("/503.html", "text/html; charset=utf-8"),
        ("/503.json", "application/json"),
        ("/503.xml", "application/xml; charset=utf-8"),
        ("/503.txt", "text/plain; charset=utf-8"),
    ] {
        let a = get(&app, path, &[]).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(a.header("content-type"), Some(ct), "{path}");
    }
    let a = get(&app, "/503.json", &[]).await;
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["status"], 503);
    assert_eq!(v["title"], "Service unavailable");
    assert_eq!(v["organisation"], serde_json::Value::Null);
    let a = get(&app, "/404.xml", &[]).await;
    assert!(a.body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error xml:lang=\"en\"><status>404</status>"), "{}", a.body);
    let a = get(&app, "/404.txt", &[]).await;
    assert!(
        a.body.starts_with("Error 404 - Page not found\n"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn format_precedence_is_extension_then_x_format_then_accept() {
    let app = app(example()).await;
    let ct = |a: &Answer| {
        a.header("content-type")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, Headers, &str)] = &[
        (
            "/404.txt",
            &[
                ("x-format", "application/json"),
                ("accept", "application/xml"),
            ],
            "text/plain",
        ),
        (
            "/",
            &[
                ("x-format", "application/json"),
                ("accept", "application/xml"),
            ],
            "application/json",
        ),
        (
            "/",
            &[("x-format", browser), ("accept", "application/json")],
            "text/html",
        ),
        (
            "/",
            &[("x-format", "image/png"), ("accept", "application/json")],
            "application/json",
        ),
        ("/", &[("accept", "application/xml")], "application/xml"),
        ("/", &[("accept", "text/plain, text/*;q=0.5")], "text/plain"),
        (
            "/",
            &[("accept", "application/json;q=0.4, text/xml;q=0.6")],
            "application/xml",
        ),
        ("/", &[("accept", "*/*")], "text/html"),
        ("/", &[("accept", "image/webp")], "text/html"),
        ("/", &[], "text/html"),
    ];
    for (path, headers, want) in cases {
        assert_eq!(
            ct(&get(&app, path, headers).await),
            *want,
            "{path} {headers:?}"
        );
    }
}

#[tokio::test]
async fn language_from_accept_language_then_the_organisation_then_english() {
    let app = app(example()).await;
    let a = get(&app, "/", &[("accept-language", "fr-CA,fr;q=0.9,en;q=0.8")]).await;
    assert!(a.body.contains("<html lang=\"fr\">"));
    assert!(a.body.contains("<h1>Page introuvable</h1>"), "{}", a.body);
    assert_eq!(a.header("content-language"), Some("fr"));
    // ecole-jaures defaults to French, harbour-coop to English.
    let a = get(
        &app,
        "/",
        &[("host", JAURES), ("accept-language", "de-DE,it;q=0.5")],
    )
    .await;
    assert_eq!(a.header("content-language"), Some("fr"));
    let a = get(
        &app,
        "/",
        &[("host", HARBOUR), ("accept-language", "de-DE")],
    )
    .await;
    assert_eq!(a.header("content-language"), Some("en"));
    let a = get(
        &app,
        "/",
        &[("host", JAURES), ("accept-language", "en-GB, fr;q=0.3")],
    )
    .await;
    assert_eq!(a.header("content-language"), Some("en"));
    assert!(a.body.contains("<h1>Page not found</h1>"));
    let a = get(
        &app,
        "/",
        &[("host", "unknown.example"), ("accept-language", "de")],
    )
    .await;
    assert_eq!(a.header("content-language"), Some("en"));
    let a = get(&app, "/503.json", &[("accept-language", "fr")]).await;
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        (v["language"].as_str(), v["title"].as_str()),
        (Some("fr"), Some("Service indisponible"))
    );
}

#[tokio::test]
async fn branding_follows_the_host() {
    let app = app(example()).await;
    let a = get(
        &app,
        "/",
        &[
            ("host", "Cloud.Ecole-Jaures.example.org:443"),
            ("accept-language", "fr"),
        ],
    )
    .await;
    let b = &a.body;
    assert!(
        b.contains("<title>Page introuvable · École Jean Jaurès</title>"),
        "{b}"
    );
    assert!(b.contains("<img src=\"https://static.example.org/logos/ecole-jaures.svg\" alt=\"\" height=\"48\"><span>École Jean Jaurès</span>"));
    assert!(b.contains("--brand:#8a1c7c"));
    assert!(b.contains(
        "<a href=\"mailto:support@ecole-jaures.example.org\">Contacter l’assistance</a>"
    ));
    assert!(b.contains(
        "<a href=\"https://status.example.org/ecole-jaures\">Page d’état des services</a>"
    ));
    let csp = a.header("content-security-policy").unwrap();
    assert!(csp.contains("img-src https://static.example.org;"), "{csp}");

    let a = get(&app, "/", &[("host", HARBOUR)]).await;
    assert!(a.body.contains("<span>Harbour Cooperative</span>") && a.body.contains("--brand:#0a6"));
    assert!(!a.body.contains("<img"));
    assert!(!a.body.contains("status.example.org"));

    // Unknown host, or a known one only in X-Forwarded-Host: neutral page.
    for headers in [
        vec![("host", "other.example.org")],
        vec![("host", "other.example.org"), ("x-forwarded-host", JAURES)],
        vec![],
    ] {
        let a = get(&app, "/", &headers).await;
        assert!(
            !a.body.contains("<header>")
                && !a.body.contains("Jaurès")
                && !a.body.contains("--brand:#8a1c7c"),
            "{}",
            a.body
        );
        assert!(!a
            .header("content-security-policy")
            .unwrap()
            .contains("img-src"));
    }
}

#[tokio::test]
async fn security_headers_and_a_style_allowed_by_hash() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let app = app(example()).await;
    for (path, host) in [
        ("/", JAURES),
        ("/", "unknown.example"),
        ("/502.json", JAURES),
        ("/404.xml", ""),
        ("/404.txt", ""),
    ] {
        let a = get(&app, path, &[("host", host)]).await;
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("x-robots-tag"), Some("noindex"));
        assert_eq!(a.header("cache-control"), Some("no-store"));
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
        let csp = a.header("content-security-policy").unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        for d in [
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ] {
            assert!(csp.contains(d), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
        if path == "/" {
            let css = a
                .body
                .split("<style>")
                .nth(1)
                .unwrap()
                .split("</style>")
                .next()
                .unwrap();
            let hash = base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(css.as_bytes()));
            assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
            // Nothing else the policy would block: no inline style attributes, no scripts.
            assert!(!a.body.contains(" style=") && !a.body.contains("<script"));
            assert!(a
                .body
                .contains("<meta name=\"robots\" content=\"noindex\">"));
        }
    }
}

#[tokio::test]
async fn pages_are_accessible_html() {
    let app = app(example()).await;
    let a = get(
        &app,
        "/",
        &[
            ("host", JAURES),
            ("x-code", "502"),
            ("x-original-uri", "/x"),
            ("x-request-id", "abc"),
        ],
    )
    .await;
    let b = &a.body;
    assert!(b.starts_with("<!doctype html>\n<html lang=\"fr\">"));
    assert!(b.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
    assert_eq!(b.matches("<h1>").count(), 1);
    assert!(b.contains("<main>") && b.contains("<header>") && b.contains("<footer>\n<h2>"));
    assert!(b.contains("prefers-color-scheme:dark") && b.contains("color-scheme:light dark"));
    // Sizes in rem and a fluid width, so 200% zoom reflows rather than overflows.
    assert!(b.contains("max-width:42rem") && b.contains("overflow-wrap:anywhere"));
    assert!(
        b.contains("<dt>Adresse demandée</dt><dd><code>ecole-jaures.example.org/x</code></dd>"),
        "{b}"
    );
    assert!(b.contains("<dt>Identifiant de la requête</dt><dd><code>abc</code></dd>"));
}

#[tokio::test]
async fn request_ids_are_echoed_sanitised_and_bounded() {
    let app = app(example()).await;
    let a = get(&app, "/", &[("x-request-id", "0f1e2d3c-4b5a")]).await;
    assert_eq!(a.header("x-request-id"), Some("0f1e2d3c-4b5a"));
    let a = get(&app, "/", &[("x-correlation-id", "corr-1")]).await;
    assert_eq!(a.header("x-request-id"), Some("corr-1"));
    let a = get(
        &app,
        "/",
        &[("x-request-id", "a\"<script>alert(1)</script> b")],
    )
    .await;
    assert_eq!(a.header("x-request-id"), Some("ascriptalert1/scriptb"));
    let long = "x".repeat(1000);
    let a = get(&app, "/", &[("x-request-id", &long)]).await;
    assert_eq!(
        a.header("x-request-id").unwrap().len(),
        pages::MAX_REQUEST_ID
    );
    let a = get(&app, "/", &[("x-request-id", "<>\"")]).await;
    assert_eq!(a.header("x-request-id"), None);
    let a = get(&app, "/healthz", &[("x-request-id", "h-1")]).await;
    assert_eq!(a.header("x-request-id"), Some("h-1"));
}

#[tokio::test]
async fn oversized_headers_are_answered_431() {
    let app = app(example()).await;
    let big = "a".repeat(pages::MAX_HEADER_LINE + 1);
    let a = get(
        &app,
        "/",
        &[
            ("cookie", &big),
            ("x-code", "502"),
            ("accept", "application/json"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(a.body.contains("\"status\":431"));
    let chunk = "b".repeat(4000);
    let many: Vec<(String, &str)> = (0..9)
        .map(|i| (format!("x-filler-{i}"), chunk.as_str()))
        .collect();
    let headers: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        get(&app, "/", &headers).await.status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let a = get(&app, "/", &[("cookie", &"c".repeat(4000))]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reflected_and_configured_values_are_escaped_in_every_format() {
    // Header values are visible ASCII; configured values may be any text.
    let evil_ascii = "\"'><script>alert(1)</script>]]><!--&amp;";
    let evil = format!("{evil_ascii}\u{2028}");
    let evil = evil.as_str();
    let mut snap = example();
    let b = &mut snap.sites[1].branding;
    b.display_name = evil.into();
    b.color = Some("#fff;}body{background:url(https://evil.example)}".into());
    b.logo_url = Some("javascript:alert(1)".into());
    b.status_url = Some("https://ok.example/\"onmouseover=alert(1)".into());
    b.contact_email = Some("a@b.org?body=<script>".into());
    let now = OffsetDateTime::now_utc();
    let mut w = window(
        "w<1>",
        "harbour-coop",
        None,
        now - Duration::hours(1),
        now + Duration::hours(1),
    );
    w.messages = BTreeMap::from([("en".into(), evil.into())]);
    snap.windows.push(w);
    let app = app(snap).await;
    let uri = format!("/search?q={evil_ascii}");
    for ext in ["html", "json", "xml", "txt"] {
        let a = get(
            &app,
            &format!("/503.{ext}"),
            &[
                ("host", HARBOUR),
                ("x-original-uri", &uri),
                ("x-request-id", evil_ascii),
                ("x-service-name", evil_ascii),
            ],
        )
        .await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{ext}");
        let body = &a.body;
        assert!(
            !body.contains("javascript:")
                && !body.contains("evil.example")
                && !body.contains("onmouseover"),
            "{ext}: {body}"
        );
        assert!(
            !body.contains("<b.org") && !body.contains("a@b.org"),
            "{ext}: {body}"
        );
        match ext {
            "html" | "xml" => {
                assert!(
                    !body.contains("<script") && !body.contains("]]>") && !body.contains("<!--"),
                    "{ext}: {body}"
                );
                assert!(!body.contains("\"'>"), "{ext}: {body}");
                assert!(body.contains("&quot;&#39;&gt;&lt;script&gt;alert(1)&lt;/script&gt;]]&gt;&lt;!--&amp;amp;"), "{ext}: {body}");
            }
            "json" => {
                assert!(
                    !body.contains('<') && !body.contains('>') && !body.contains('\u{2028}'),
                    "{body}"
                );
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                assert_eq!(v["organisation"], evil);
                assert_eq!(v["maintenance"]["message"], evil);
                assert_eq!(v["original_uri"], uri);
                assert_eq!(v["contact_email"], serde_json::Value::Null);
            }
            _ => assert!(body.contains(evil)),
        }
    }
    // Unknown host reflected in the requested address.
    let a = get(
        &app,
        "/",
        &[("host", "x\"><script>.example"), ("x-original-uri", "/")],
    )
    .await;
    assert!(
        a.body
            .contains("<code>x&quot;&gt;&lt;script&gt;.example/</code>"),
        "{}",
        a.body
    );
    // Reflected values are bounded.
    let long = format!("/{}", "a".repeat(400));
    let a = get(&app, "/404.json", &[("x-original-uri", &long)]).await;
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        v["original_uri"].as_str().unwrap(),
        &long[..pages::MAX_REFLECTED]
    );
}

// Maintenance, through the pure core with a fixed clock.

fn maintenance_snapshot() -> (Index, OffsetDateTime) {
    let mut snap = example();
    // Active org-wide window for harbour-coop, ending 90.2 s from now.
    let now = datetime!(2030-06-01 21:00 UTC);
    snap.windows.push(window(
        "harbour-all",
        "harbour-coop",
        None,
        now - Duration::hours(1),
        now + Duration::milliseconds(90_200),
    ));
    // An upcoming one for harbour-coop, in 48 h.
    snap.windows.push(window(
        "harbour-later",
        "harbour-coop",
        None,
        now + Duration::hours(48),
        now + Duration::hours(50),
    ));
    (Index::new(&snap, DEFAULT_ANNOUNCE_AHEAD), now)
}

fn req<'a>(host: &'a str, code: &'a str) -> PageRequest<'a> {
    PageRequest {
        path: "/",
        host: Some(host),
        code: Some(code),
        ..Default::default()
    }
}

#[test]
fn active_window_turns_502_503_504_into_maintenance() {
    let (idx, now) = maintenance_snapshot();
    let cat = Catalogue::embedded();
    for code in ["502", "503", "504"] {
        let r = respond(&req(HARBOUR, code), &idx, &cat, now);
        assert_eq!(r.status, 503, "{code}");
        assert_eq!(r.retry_after, Some(91), "rounded up");
        assert_eq!(r.maintenance.as_deref(), Some("harbour-all"));
        assert!(
            r.body.contains("<h1>Maintenance in progress</h1>"),
            "{}",
            r.body
        );
        assert!(r.body.contains("<p>Server upgrade.</p>"));
        assert!(
            r.body
                .contains("We expect to be back by 2030-06-01 21:01 UTC."),
            "{}",
            r.body
        );
    }
    // Other codes keep their own page, and an active window is not "upcoming".
    for (code, want) in [("500", 500), ("404", 404), ("429", 429)] {
        let r = respond(&req(HARBOUR, code), &idx, &cat, now);
        assert_eq!((r.status, r.retry_after, r.maintenance), (want, None, None));
        assert!(
            r.body
                .contains("<h2 id=\"upcoming\">Scheduled maintenance</h2>"),
            "{}",
            r.body
        );
    }
    // Another organisation's host, and an unknown host, are not affected.
    for host in [JAURES, "unknown.example"] {
        let r = respond(&req(host, "503"), &idx, &cat, now);
        assert_eq!((r.status, r.retry_after), (503, None));
        assert!(!r.body.contains("aintenance"), "{}", r.body);
    }
    // Retry-After is at least 1, and the window's end is exclusive.
    let end = now + Duration::milliseconds(90_200);
    let r = respond(
        &req(HARBOUR, "502"),
        &idx,
        &cat,
        end - Duration::milliseconds(10),
    );
    assert_eq!(r.retry_after, Some(1));
    let r = respond(&req(HARBOUR, "502"), &idx, &cat, end);
    assert_eq!((r.status, r.retry_after), (502, None));
    // The JSON carries the window.
    let r = respond(
        &PageRequest {
            path: "/503.json",
            host: Some(HARBOUR),
            ..Default::default()
        },
        &idx,
        &cat,
        now,
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["maintenance"]["id"], "harbour-all");
    assert_eq!(v["maintenance"]["retry_after"], 91);
    assert_eq!(v["maintenance"]["ends_at"], "2030-06-01T21:01:30.2Z");
}

#[test]
fn per_app_windows_apply_only_to_that_service() {
    let idx = Index::new(&example(), DEFAULT_ANNOUNCE_AHEAD);
    let cat = Catalogue::embedded();
    let now = datetime!(2030-06-01 21:00 UTC);
    let with = |service: Option<&'static str>, ingress: Option<&'static str>| PageRequest {
        path: "/",
        host: Some("cloud.ecole-jaures.example.org"),
        code: Some("502"),
        service_name: service,
        ingress_name: ingress,
        ..Default::default()
    };
    let r = respond(&with(Some("nextcloud"), None), &idx, &cat, now);
    assert_eq!((r.status, r.retry_after), (503, Some(3600)));
    assert!(
        r.body.contains("<h1>Maintenance en cours</h1>")
            && r.body.contains("Mise à jour de Nextcloud"),
        "{}",
        r.body
    );
    assert!(r
        .body
        .contains("Retour prévu d’ici le 2030-06-01 22:00 UTC."));
    let r = respond(&with(None, Some("NextCloud")), &idx, &cat, now);
    assert_eq!(r.status, 503);
    for other in [with(Some("synapse"), Some("chat")), with(None, None)] {
        let r = respond(&other, &idx, &cat, now);
        assert_eq!((r.status, r.retry_after), (502, None));
    }
    // The message follows the page's language, with a lang attribute when it differs.
    let mut en = with(Some("nextcloud"), None);
    en.accept_language = Some("en");
    let r = respond(&en, &idx, &cat, now);
    assert!(r
        .body
        .contains("<p>Upgrade of Nextcloud to version 31.</p>"));
    let mut snap = example();
    snap.windows[0].messages.remove("en");
    let idx = Index::new(&snap, DEFAULT_ANNOUNCE_AHEAD);
    let r = respond(&en, &idx, &cat, now);
    assert!(
        r.body
            .contains("<p lang=\"fr\">Mise à jour de Nextcloud vers la version 31.</p>"),
        "{}",
        r.body
    );
}

#[test]
fn upcoming_windows_are_announced_within_the_period() {
    let idx = Index::new(&example(), DEFAULT_ANNOUNCE_AHEAD);
    let cat = Catalogue::embedded();
    let start = datetime!(2030-06-01 20:00 UTC);
    let page = |now: OffsetDateTime, service: Option<&'static str>, path: &'static str| {
        let r = PageRequest {
            path,
            host: Some(JAURES),
            service_name: service,
            ..Default::default()
        };
        respond(&r, &idx, &cat, now)
    };
    let r = page(start - Duration::hours(71), Some("nextcloud"), "/");
    assert_eq!(r.status, 404);
    assert!(
        r.body
            .contains("<h2 id=\"upcoming\">Maintenance programmée</h2>"),
        "{}",
        r.body
    );
    assert!(r
        .body
        .contains("Une maintenance est prévue du 2030-06-01 20:00 UTC au 2030-06-01 22:00 UTC"));
    assert!(r.body.contains("Mise à jour de Nextcloud"));
    let r = page(start - Duration::hours(71), Some("nextcloud"), "/404.json");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["upcoming_maintenance"]["starts_at"],
        "2030-06-01T20:00:00Z"
    );
    // Too far ahead, another app's page, already started or over: no announcement.
    for (now, service) in [
        (start - Duration::hours(73), Some("nextcloud")),
        (start - Duration::hours(1), Some("synapse")),
        (start + Duration::minutes(1), Some("nextcloud")),
        (start + Duration::hours(3), Some("nextcloud")),
    ] {
        let r = page(now, service, "/");
        assert!(!r.body.contains("upcoming"), "{now} {service:?}");
    }
    // The period is configurable.
    let idx = Index::new(&example(), std::time::Duration::from_secs(3600));
    let r = respond(
        &PageRequest {
            host: Some(JAURES),
            service_name: Some("nextcloud"),
            ..Default::default()
        },
        &idx,
        &cat,
        start - Duration::hours(2),
    );
    assert!(!r.body.contains("upcoming"));
}

#[test]
fn respond_reads_headers_like_the_router() {
    let mut h = HeaderMap::new();
    h.insert("host", JAURES.parse().unwrap());
    h.insert("x-code", "504".parse().unwrap());
    h.insert("x-format", "application/json".parse().unwrap());
    h.insert("x-service-name", "nextcloud".parse().unwrap());
    let idx = Index::new(&example(), DEFAULT_ANNOUNCE_AHEAD);
    let r = respond(
        &PageRequest::from_http("/", &h),
        &idx,
        &Catalogue::embedded(),
        datetime!(2030-06-01 21:59:59.5 UTC),
    );
    assert_eq!(
        (r.status, r.format, r.retry_after),
        (503, Format::Json, Some(1))
    );
}

// Loading and refreshing.

struct Flaky {
    fail: AtomicBool,
    snap: std::sync::Mutex<Snapshot>,
}

#[async_trait::async_trait]
impl Source for Flaky {
    async fn load(&self) -> anyhow::Result<Snapshot> {
        if self.fail.load(Ordering::SeqCst) {
            anyhow::bail!("database down");
        }
        Ok(self.snap.lock().unwrap().clone())
    }
}

#[tokio::test]
async fn the_first_load_must_succeed_and_failed_refreshes_keep_the_last_snapshot() {
    let source = Arc::new(Flaky {
        fail: AtomicBool::new(true),
        snap: std::sync::Mutex::new(example()),
    });
    assert!(pages::router(source.clone(), PagesConfig::default())
        .await
        .is_err());
    source.fail.store(false, Ordering::SeqCst);
    let cfg = PagesConfig {
        refresh: std::time::Duration::ZERO,
        ..Default::default()
    };
    let pages = Pages::new(source.clone(), cfg).await.unwrap();
    let app = pages.router();
    assert!(get(&app, "/", &[("host", HARBOUR)])
        .await
        .body
        .contains("Harbour Cooperative"));
    source.snap.lock().unwrap().sites[1].branding.display_name = "Harbour Coop".into();
    source.fail.store(true, Ordering::SeqCst);
    assert!(pages.refresh().await.is_err());
    assert!(get(&app, "/", &[("host", HARBOUR)])
        .await
        .body
        .contains("Harbour Cooperative"));
    source.fail.store(false, Ordering::SeqCst);
    pages.refresh().await.unwrap();
    let body = get(&app, "/", &[("host", HARBOUR)]).await.body;
    assert!(body.contains("<span>Harbour Coop</span>"), "{body}");
}

#[tokio::test]
async fn two_pages_on_one_thread_answer_from_their_own_index() {
    let cfg = PagesConfig {
        refresh: std::time::Duration::ZERO,
        ..Default::default()
    };
    let mut other = example();
    other.sites[1].branding.display_name = "Other Harbour".into();
    let a = Pages::new(Arc::new(FixedSource(example())), cfg.clone())
        .await
        .unwrap()
        .router();
    let b = Pages::new(Arc::new(FixedSource(other)), cfg)
        .await
        .unwrap()
        .router();
    for _ in 0..3 {
        let body = get(&a, "/", &[("host", HARBOUR)]).await.body;
        assert!(body.contains("<span>Harbour Cooperative</span>"), "{body}");
        let body = get(&b, "/", &[("host", HARBOUR)]).await.body;
        assert!(body.contains("<span>Other Harbour</span>"), "{body}");
    }
}

#[test]
fn catalogue_markup_is_escaped_in_html_and_kept_in_text() {
    let dir = std::env::temp_dir().join(format!("pages-markup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("xx.toml"),
        "[page]\nerror_code = \"<b>Error</b> {code} & co\"\n\
         [status.404]\ntitle = \"<i>Lost</i>\"\ndescription = \"Gone & 'away'\"\n",
    )
    .unwrap();
    let cat = Catalogue::load_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let idx = Index::new(&example(), DEFAULT_ANNOUNCE_AHEAD);
    let page = |format: &'static str| {
        let req = PageRequest {
            path: "/",
            host: Some(JAURES),
            accept: Some(format),
            accept_language: Some("xx"),
            code: Some("404"),
            ..Default::default()
        };
        respond(&req, &idx, &cat, OffsetDateTime::now_utc()).body
    };
    let html = page("text/html");
    assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
    assert!(
        html.contains("<title>&lt;i&gt;Lost&lt;/i&gt; · École Jean Jaurès</title>"),
        "{html}"
    );
    assert!(
        html.contains("<p class=\"code\">&lt;b&gt;Error&lt;/b&gt; 404 &amp; co</p>"),
        "{html}"
    );
    assert!(html.contains("<p>Gone &amp; &#39;away&#39;</p>"), "{html}");
    let text = page("text/plain");
    assert!(
        text.contains("<b>Error</b> 404 & co - <i>Lost</i>\nGone & 'away'\n"),
        "{text}"
    );
}

#[tokio::test]
async fn static_source_reads_toml_and_json_and_sees_changes() {
    let dir = std::env::temp_dir().join(format!("pages-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("snap.json");
    std::fs::write(&json, serde_json::to_string(&example()).unwrap()).unwrap();
    let source = Arc::new(StaticSource::new(&json));
    assert_eq!(source.load().await.unwrap(), example());
    let pages = Pages::new(
        source.clone(),
        PagesConfig {
            refresh: std::time::Duration::ZERO,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        pages.index().org_for_host("chat.harbour.example.net"),
        Some("harbour-coop")
    );
    let mut changed = example();
    changed.sites[1]
        .hosts
        .push("new.harbour.example.net".into());
    std::fs::write(&json, serde_json::to_string(&changed).unwrap()).unwrap();
    pages.refresh().await.unwrap();
    assert_eq!(
        pages.index().org_for_host("new.harbour.example.net"),
        Some("harbour-coop")
    );
    std::fs::write(&json, "{ not json").unwrap();
    assert!(pages.refresh().await.is_err());
    assert_eq!(
        pages.index().org_for_host("new.harbour.example.net"),
        Some("harbour-coop")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_example_file_is_valid() {
    let snap = example();
    assert_eq!(snap.sites.len(), 2);
    assert_eq!(snap.windows.len(), 1);
    for site in &snap.sites {
        site.hosts
            .iter()
            .for_each(|h| pages::validate_host(h).unwrap());
        let b = &site.branding;
        b.color
            .iter()
            .for_each(|c| pages::validate_color(c).unwrap());
        b.logo_url
            .iter()
            .chain(&b.status_url)
            .for_each(|u| pages::validate_url(u).unwrap());
        b.contact_email
            .iter()
            .for_each(|e| pages::validate_email(e).unwrap());
    }
    assert_eq!(Index::new(&snap, DEFAULT_ANNOUNCE_AHEAD).len(), (2, 5));
}
