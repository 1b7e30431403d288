//! The operators' and organisations' web console: server-rendered HTML
//! pages under `/console/`, over the `service` crate (the same rules as the
//! admin API and the command line), in French or English.
//!
//! What belongs here: routes, sessions' cookies and CSRF checks on forms,
//! templates (askama, compiled in), the catalogues (`locales/{en,fr}.toml`)
//! and the stylesheet (`static/console.css`, served as a file, so the
//! `Content-Security-Policy` has no `unsafe-inline`). What does not: any rule
//! of administration or SQL (the `service` crate), and JavaScript (none).
//!
//! A signed-out visitor gets a page telling how to sign in
//! (`liaison console link`); a one-time link `/console/login/{secret}` opens
//! a session (cookie `HttpOnly`, `SameSite=Lax`, `Secure` behind https). An
//! organisation admin gets 404 on every URL of another organisation and on
//! the operators' pages, as for a page that does not exist.
//!
//! ```no_run
//! # async fn f(store: store::Store) {
//! let app: axum::Router = console::router(console::Console::new(store, false));
//! # }
//! ```

mod auth;
mod i18n;
mod pages;

pub use i18n::{ConsoleTexts, Lang, Texts};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use store::Store;
use tokio::sync::Notify;

/// The stylesheet, served at `/console/static/console.css`.
pub const STYLESHEET: &str = include_str!("../static/console.css");

/// The policy of every console page: nothing inline, nothing from elsewhere,
/// never in a frame.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console's handlers share.
pub struct Console {
    pub(crate) store: Store,
    /// Whether cookies carry `Secure` (the public URL is https).
    pub(crate) secure_cookies: bool,
    /// Wakes the outbox worker after a retry, when it runs in this process.
    pub(crate) outbox_wake: Option<Arc<Notify>>,
}

impl Console {
    pub fn new(store: Store, secure_cookies: bool) -> Arc<Console> {
        Arc::new(Console {
            store,
            secure_cookies,
            outbox_wake: None,
        })
    }

    /// The same, waking `notify` after a retry so that the worker delivers at once.
    pub fn with_outbox_wake(
        store: Store,
        secure_cookies: bool,
        notify: Arc<Notify>,
    ) -> Arc<Console> {
        Arc::new(Console {
            store,
            secure_cookies,
            outbox_wake: Some(notify),
        })
    }
}

/// The console's routes, every one under `/console`, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>(console: Arc<Console>) -> Router<S> {
    Router::new()
        .route("/console", get(|| async { pages::see_other("/console/") }))
        .route("/console/", get(pages::home))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/login/{secret}", get(pages::login))
        .route("/console/logout", post(pages::logout))
        .route("/console/operator/audit", get(pages::audit))
        .route("/console/o/{org}/users", get(pages::users))
        .route("/console/o/{org}/users/{id}", get(pages::user))
        .route("/console/o/{org}/users/{id}/retry", post(pages::retry))
        .route(
            "/console/{*rest}",
            get(pages::not_found).post(pages::not_found),
        )
        .with_state(console)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// An HTML page with the console's headers.
pub(crate) fn html(status: StatusCode, lang: Lang, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    r
}

/// The headers every console answer carries, pages and redirects alike.
pub(crate) fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
}
