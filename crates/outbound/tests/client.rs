//! The client against local servers: redirects, oversized bodies, timeouts.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use outbound::{Client, HttpError, Limits, Method, Url};
use std::sync::{Arc, Mutex};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn url(base: &str, path: &str) -> Url {
    Url::parse(&format!("{base}{path}")).unwrap()
}

#[tokio::test]
async fn redirects_are_not_followed_and_headers_stay_home() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let elsewhere = serve(Router::new().fallback(move |headers: HeaderMap| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(headers);
            "stolen"
        }
    }))
    .await;
    let target = format!("{elsewhere}/steal");
    let app = serve(Router::new().fallback(move || {
        let target = target.clone();
        async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }
    }))
    .await;
    let client = Client::new(Limits::default()).unwrap();
    for method in [Method::GET, Method::POST] {
        let req = client
            .request(method, url(&app, "/api/v1/users.info"))
            .header("X-User-Id", "admin-id")
            .header("X-Auth-Token", "admin-token")
            .basic_auth("admin", Some("pw"));
        let err = client.send(req).await.unwrap_err();
        assert_eq!(err, HttpError::Redirect { status: 302 });
        assert!(!err.is_transient());
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "the redirect target was called"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_announced_or_not() {
    let app = serve(
        Router::new()
            .route("/announced", get(|| async { "x".repeat(5000) }))
            .route(
                "/streamed",
                get(|| async {
                    let chunks = (0..50).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 200]));
                    Body::from_stream(futures_util::stream::iter(chunks))
                }),
            )
            .route("/small", get(|| async { "ok" })),
    )
    .await;
    let client = Client::new(Limits {
        max_body: 1000,
        ..Limits::default()
    })
    .unwrap();
    for path in ["/announced", "/streamed"] {
        let r = client
            .send(client.request(Method::GET, url(&app, path)))
            .await;
        assert_eq!(
            r.unwrap_err(),
            HttpError::TooLarge { limit: 1000 },
            "{path}"
        );
    }
    let ok = client
        .send(client.request(Method::GET, url(&app, "/small")))
        .await
        .unwrap();
    assert_eq!(ok.text(), "ok");
}

#[tokio::test]
async fn error_answers_keep_their_status_and_a_clean_excerpt() {
    let app = serve(Router::new().fallback(|| async {
        (
            StatusCode::CONFLICT,
            format!("line one\r\n\u{1b}[2J{}", "z".repeat(10_000)),
        )
    }))
    .await;
    let client = Client::new(Limits::default()).unwrap();
    let resp = client
        .send(client.request(Method::GET, url(&app, "/x")))
        .await
        .unwrap();
    let err = resp.error();
    assert_eq!(err.status(), Some(409));
    let HttpError::Status { excerpt, .. } = err else {
        panic!("not a status error")
    };
    assert!(excerpt.chars().count() <= outbound::EXCERPT_CHARS);
    assert!(!excerpt.chars().any(char::is_control), "{excerpt:?}");
    assert!(excerpt.starts_with("line one [2J"), "{excerpt:?}");
}

#[tokio::test]
async fn an_unreachable_peer_is_transient() {
    let client = Client::new(Limits::default()).unwrap();
    let err = client
        .send(client.request(Method::GET, Url::parse("http://127.0.0.1:9/").unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Transport(_)) && err.is_transient());
}

#[tokio::test]
async fn expected_statuses_pass_and_others_are_errors() {
    let app = serve(
        Router::new()
            .route("/list", get(|| async { "[1, 2]" }))
            .route("/gone", get(|| async { (StatusCode::NOT_FOUND, "{}") }))
            .route("/down", get(|| async { (StatusCode::BAD_GATEWAY, "down") })),
    )
    .await;
    let client = Client::new(Limits::default()).unwrap();
    let get = |p: &str| client.request(Method::GET, url(&app, p));
    let list = client.send_expecting(get("/list"), &[]).await.unwrap();
    assert_eq!(list.decode::<Vec<u8>>(), Ok(vec![1, 2]));
    assert!(matches!(list.decode::<String>(), Err(HttpError::Decode(_))));
    let gone = client.send_expecting(get("/gone"), &[404]).await.unwrap();
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let err = client.send_expecting(get("/gone"), &[]).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let err = client
        .send_expecting(get("/down"), &[404])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        HttpError::Status {
            status: 502,
            excerpt: "down".into()
        }
    );
    assert!(err.is_transient());
}
