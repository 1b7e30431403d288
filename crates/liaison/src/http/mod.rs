//! The HTTP server: routing, bearer-token authentication per organisation, body
//! limits, health, readiness and metrics. Handlers stay thin: they turn a request
//! into a `directory` call and its result into a [`reply::Reply`].

pub mod admin;
mod events;
pub mod footprint;
mod reply;
mod scim_api;

use crate::config::Config;
use crate::metrics::{Metrics, RequestLabels};
use crate::tokens;
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
use std::sync::Arc;
use std::time::Instant;
use store::{Org, Store};

/// Shared by every request.
pub struct AppState {
    pub directory: Directory,
    pub store: Store,
    pub config: Config,
    pub metrics: Metrics,
    pub metering: Arc<crate::metering::Metering>,
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
    let scim = scim_api::routes()
        .merge(admin::routes())
        .merge(footprint::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(admin::openapi))
        .merge(scim)
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

async fn metrics(State(st): State<SharedState>) -> Response {
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

/// Checks the bearer token against the organisation in the path. A token of
/// another organisation gets the same 404 as an organisation that does not
/// exist, so that a client learns nothing about other tenants.
async fn authenticate(
    State(st): State<SharedState>,
    Path(OrgPath { org }): Path<OrgPath>,
    headers: HeaderMap,
    mut req: Request,
    next: Next,
) -> Response {
    match authorize(&st, &org, &headers).await {
        Ok(ctx) => {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        Err(e) => Reply::Error(e).into_response(),
    }
}

async fn authorize(st: &AppState, slug: &str, headers: &HeaderMap) -> Result<OrgCtx, ScimError> {
    let unauthorized = || ScimError::status(401, "a valid bearer token is required");
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or_else(unauthorized)?;
    let (id, secret) = tokens::parse(presented).ok_or_else(unauthorized)?;
    let record = st
        .store
        .token(id)
        .await
        .map_err(directory::scim_error)?
        .ok_or_else(unauthorized)?;
    if !tokens::verify(secret, &record.secret_hash) {
        return Err(unauthorized());
    }
    let not_found = || ScimError::not_found("no such organisation");
    let org = st
        .store
        .org_by_slug(slug)
        .await
        .map_err(directory::scim_error)?
        .ok_or_else(not_found)?;
    if record.org_id.is_some_and(|id| id != org.id) {
        return Err(not_found());
    }
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
        base_url: format!("{base}/o/{}/scim/v2", org.slug),
        org,
        operator: record.org_id.is_none(),
    })
}
