//! `GET /o/{org}/admin/footprint/{period}`: the organisation's carbon footprint
//! for a month, as JSON (default), CSV or a printable HTML page (French or
//! English: `lang`, else `Accept-Language`). Authorised like the other admin
//! endpoints (the organisation's token or an operator token); the answer holds
//! the organisation's own figures and the cluster's totals, never another
//! organisation's. The rules live in `footprint` and
//! [`crate::commands::footprint`]; this maps HTTP to them.

use super::admin::ApiError;
use super::{OrgCtx, SharedState};
use crate::commands::footprint::{compute_month, ServiceError};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use footprint::chart::MonthPoint;
use footprint::i18n::Lang;
use footprint::report::Report;
use footprint::settings::FootprintError;
use footprint::Month;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

pub const FOOTPRINT: &str = "/o/{org}/admin/footprint/{period}";

pub fn routes() -> Router<SharedState> {
    Router::new().route(FOOTPRINT, get(footprint_report))
}

/// Path of the endpoint.
#[derive(Debug, Deserialize)]
pub struct FootprintPath {
    /// Unused here: the authentication layer resolved it.
    #[allow(dead_code)]
    org: String,
    /// `YYYY-MM`.
    period: String,
}

/// Query of the endpoint.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FootprintQuery {
    /// `json` (default), `csv` or `html`.
    #[serde(default)]
    pub format: Option<String>,
    /// `en` or `fr` for the HTML page; default from `Accept-Language`.
    #[serde(default)]
    pub lang: Option<String>,
}

/// The JSON answer: the month's report restricted to the organisation, and
/// the organisation's kept months before it.
#[derive(Debug, Serialize, Deserialize)]
pub struct FootprintResponse {
    #[serde(flatten)]
    pub report: Report,
    pub history: Vec<MonthPoint>,
}

/// One computation at a time per process: a report queries Prometheus for a
/// whole month.
fn gate() -> &'static Semaphore {
    static GATE: OnceLock<Semaphore> = OnceLock::new();
    GATE.get_or_init(|| Semaphore::new(1))
}

fn service_error(e: ServiceError) -> ApiError {
    match e {
        ServiceError::Footprint(FootprintError::Settings(d)) => {
            tracing::warn!(error = %d, "footprint not configured");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                "the footprint is not configured on this server",
            )
        }
        ServiceError::Footprint(FootprintError::NoUsage(period, _)) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no usage recorded for {period}"),
        ),
        ServiceError::Footprint(e @ FootprintError::Prometheus(_)) => {
            tracing::warn!(error = %e, "footprint: Prometheus failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "prometheus",
                "Prometheus did not give the month's usage; see the server's log",
            )
        }
        ServiceError::Footprint(e) => {
            tracing::error!(error = %e, "footprint failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the footprint could not be computed; see the server's log",
            )
        }
        ServiceError::Store(e) => crate::commands::apps::AppError::Store(e).into(),
    }
}

async fn footprint_report(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(path): Path<FootprintPath>,
    Query(q): Query<FootprintQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m);
    let month = Month::parse(&path.period).map_err(|e| bad(e.to_string()))?;
    if month.start() > time::OffsetDateTime::now_utc().date() {
        return Err(bad(format!("{month} has not started")));
    }
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html") {
        return Err(bad(format!(
            "unknown format {format:?} (json, csv or html)"
        )));
    }
    let lang = match q.lang.as_deref() {
        Some(l) => Lang::parse(l).ok_or_else(|| bad(format!("unknown lang {l:?} (en or fr)")))?,
        None => headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(Lang::negotiate)
            .unwrap_or_default(),
    };
    let computed = {
        let _permit = gate().acquire().await.map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "shutting down",
            )
        })?;
        compute_month(
            &st.store,
            &st.config.footprint,
            month,
            None,
            &mut |_, _, _| {},
        )
        .await
        .map_err(service_error)?
    };
    let report = computed.report.for_org(&ctx.org.slug).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no footprint for this organisation",
        )
    })?;
    let history = computed.history_of(&ctx.org.slug).to_vec();
    Ok(match format {
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            footprint::report::to_csv(&report),
        )
            .into_response(),
        "html" => {
            let page = footprint::report::to_html(&report, &ctx.org.slug, &history, lang)
                .expect("the organisation is in the report");
            (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_SECURITY_POLICY,
                        footprint::report::content_security_policy(),
                    ),
                    (header::CONTENT_LANGUAGE, lang.tag().to_owned()),
                ],
                page,
            )
                .into_response()
        }
        _ => Json(FootprintResponse { report, history }).into_response(),
    })
}
