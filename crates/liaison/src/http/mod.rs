//! The HTTP server: routing, bearer-token authentication per organisation, body
//! limits, health, readiness and metrics. Handlers stay thin: they turn a request
//! into a `directory` call and its result into a [`reply::Reply`].

pub mod admin;
mod events;
pub mod footprint;
mod problem;
mod reply;
mod scim_api;
pub mod source;

use crate::config::Config;
use crate::metrics::{Metrics, RequestLabels};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use directory::Directory;
use reply::Reply;
use scim::ScimError;
use serde::Deserialize;
use service::tokens::{AuthError, Authenticator};
use std::sync::Arc;
use std::time::Instant;
use store::{Org, Store};

/// Shared by every request.
pub struct AppState {
    pub directory: Directory,
    /// The web console (`/console/`).
    pub console: Arc<console::Console>,
    pub store: Store,
    pub config: Config,
    pub metrics: Metrics,
    pub metering: Arc<crate::metering::Metering>,
    pub auth: Authenticator,
    /// The identity provider webhook's context (organisation, secret, open
    /// period) by slug and period, kept as long as verified tokens
    /// (`auth_cache_secs`): a new secret replaces the old one everywhere
    /// within that time. Only contexts of open periods are kept; a period
    /// closed meanwhile is still refused by the store when recording.
    webhook_contexts: moka::sync::Cache<(String, String), Arc<store::WebhookContext>>,
}

impl AppState {
    /// The state of a server on `store` with `config`.
    pub fn new(
        store: Store,
        config: Config,
        metrics: Metrics,
        metering: Arc<crate::metering::Metering>,
        directory: Directory,
    ) -> Self {
        let ttl = std::time::Duration::from_secs(config.auth_cache_secs);
        let auth = Authenticator::new(store.clone(), ttl, 100_000);
        let webhook_contexts = moka::sync::Cache::builder()
            .max_capacity(if ttl.is_zero() { 0 } else { 10_000 })
            .time_to_live(ttl.max(std::time::Duration::from_nanos(1)))
            .build();
        // Cookies are `Secure` when the console is reached over https.
        let secure = config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        let console = match directory.outbox_wake() {
            Some(wake) => console::Console::with_outbox_wake(store.clone(), secure, wake),
            None => console::Console::new(store.clone(), secure),
        };
        AppState {
            console,
            directory,
            store,
            config,
            metrics,
            metering,
            auth,
            webhook_contexts,
        }
    }

    /// The webhook's context for organisation `slug` in period `label`: from
    /// memory when an open period's was read less than `auth_cache_secs` ago,
    /// else from the store (one query). `None` for an unknown organisation.
    pub async fn webhook_context(
        &self,
        slug: &str,
        label: &str,
    ) -> Result<Option<Arc<store::WebhookContext>>, store::StoreError> {
        let key = (slug.to_owned(), label.to_owned());
        if let Some(ctx) = self.webhook_contexts.get(&key) {
            return Ok(Some(ctx));
        }
        let Some(ctx) = self.store.webhook_context(slug, label).await? else {
            return Ok(None);
        };
        let ctx = Arc::new(ctx);
        if ctx.secret.is_some() && matches!(ctx.period, store::PeriodKeyState::Open(_)) {
            self.webhook_contexts.insert(key, ctx.clone());
        }
        Ok(Some(ctx))
    }

    /// Forgets the cached webhook contexts (after this process set a new
    /// webhook secret, so that the old one stops working here at once).
    pub fn forget_webhook_contexts(&self) {
        self.webhook_contexts.invalidate_all();
    }
}

pub type SharedState = Arc<AppState>;

/// The organisation a request was authenticated for, and its SCIM base URL.
#[derive(Clone)]
pub struct OrgCtx {
    pub org: Org,
    pub base_url: String,
    /// Authenticated with an operator token (valid for every organisation).
    pub operator: bool,
}

impl OrgCtx {
    pub fn scope(&self) -> directory::OrgScope<'_> {
        directory::OrgScope {
            org_id: self.org.id,
            base_url: &self.base_url,
        }
    }
}

/// The whole application.
pub fn router(state: SharedState) -> Router {
    let (admin, openapi) = admin::routes().split_for_parts();
    let openapi = axum::body::Bytes::from(openapi.to_pretty_json().unwrap_or_default());
    let admin = admin.route_layer(middleware::from_fn_with_state(
        state.clone(),
        authenticate_admin,
    ));
    // Layers run outside in: authentication first, then the refusal of SCIM
    // writes to an organisation whose directory comes from a source.
    let scim = scim_api::routes()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            source::refuse_scim_writes,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let authenticated = scim
        .merge(admin)
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    openapi.clone(),
                )
            }),
        )
        .merge(authenticated)
        .merge(console::router(state.console.clone()))
        .merge(events::routes(state.config.limits.max_body_bytes))
        .fallback(|| async { Reply::Error(ScimError::not_found("no such endpoint")) })
        .method_not_allowed_fallback(|| async {
            Reply::Error(ScimError::status(
                405,
                "method not allowed on this endpoint",
            ))
        })
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

async fn readyz(State(st): State<SharedState>) -> Response {
    match st.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

/// `/metrics`: for operators' tokens and the configured metrics token, unless
/// the configuration makes it public; it names organisations and apps.
async fn metrics(State(st): State<SharedState>, headers: HeaderMap) -> Response {
    if !st.config.metrics.public {
        let allowed = match bearer(&headers) {
            Some(token) if st.config.metrics.accepts(token) => true,
            Some(token) => st.auth.authorize_operator(token).await.is_ok(),
            None => false,
        };
        if !allowed {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "an operator or metrics token is required\n",
            )
                .into_response();
        }
    }
    match st.store.outbox_stats().await {
        Ok(stats) => st.metrics.set_outbox(&stats),
        Err(e) => tracing::warn!(error = %e, "outbox figures unavailable"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// Counts and times every request by method, route template and status.
async fn record(State(st): State<SharedState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    st.metrics.requests.get_or_create(&labels).inc();
    st.metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

#[derive(Deserialize)]
struct OrgPath {
    org: String,
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Checks the bearer token against the organisation in the path, for the
/// SCIM API (errors in SCIM's form). A token of another organisation gets the
/// same 404 as an organisation that does not exist, so that a client learns
/// nothing about other tenants.
async fn authenticate(
    State(st): State<SharedState>,
    Path(OrgPath { org }): Path<OrgPath>,
    mut req: Request,
    next: Next,
) -> Response {
    // The request's own headers: no copy of them per request.
    match authorize(&st, &org, req.headers()).await {
        Ok(ctx) => {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        Err(AuthError::Unauthorized) => {
            Reply::Error(ScimError::status(401, "a valid bearer token is required")).into_response()
        }
        Err(AuthError::NoSuchOrg) => {
            Reply::Error(ScimError::not_found("no such organisation")).into_response()
        }
        Err(AuthError::Store(e)) => Reply::Error(directory::scim_error(e)).into_response(),
    }
}

/// The same check for the admin API, with errors as problem documents.
async fn authenticate_admin(
    State(st): State<SharedState>,
    Path(OrgPath { org }): Path<OrgPath>,
    mut req: Request,
    next: Next,
) -> Response {
    use admin::ApiError;
    match authorize(&st, &org, req.headers()).await {
        Ok(ctx) => {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        Err(AuthError::Unauthorized) => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
        Err(AuthError::NoSuchOrg) => ApiError::not_found("no such organisation").into_response(),
        Err(AuthError::Store(e)) => ApiError::internal(&e).into_response(),
    }
}

async fn authorize(st: &AppState, slug: &str, headers: &HeaderMap) -> Result<OrgCtx, AuthError> {
    let presented = bearer(headers).ok_or(AuthError::Unauthorized)?;
    let grant = st.auth.authorize(presented, slug).await?;
    let base = match &st.config.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    Ok(OrgCtx {
        base_url: format!("{base}/o/{}/scim/v2", grant.org.slug),
        org: grant.org,
        operator: grant.operator,
    })
}
