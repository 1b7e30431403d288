//! `GET /o/{org}/admin/footprint/{period}`: the organisation's carbon footprint
//! for a month, as JSON (default), CSV or a printable HTML page (French or
//! English: `lang`, else `Accept-Language`). Authorised like the other admin
//! endpoints (the organisation's token or an operator token); the answer holds
//! the organisation's own figures and the cluster's totals, never another
//! organisation's. The rules live in `footprint` and [`service::footprint`];
//! this maps HTTP to them.

use super::admin::{ApiError, Problem};
use super::{OrgCtx, SharedState};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use footprint::chart::MonthPoint;
use footprint::i18n::Lang;
use footprint::report::Report;
use footprint::settings::FootprintError;
use footprint::Month;
use serde::{Deserialize, Serialize};
use service::footprint::{compute_month, FootprintFailure};
use std::sync::OnceLock;
use tokio::sync::Semaphore;
use utoipa::{IntoParams, ToSchema};

/// Path of the endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FootprintPath {
    /// The organisation's slug (resolved by the authentication layer).
    #[allow(dead_code)]
    org: String,
    /// The month, `YYYY-MM`, from 2000-01 to 2199-12.
    #[param(pattern = "^2[01][0-9]{2}-(?:0[1-9]|1[0-2])$")]
    period: String,
}

/// The report's format.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
    Html,
}

/// The HTML page's language.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportLang {
    En,
    Fr,
}

/// Query of the endpoint.
#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FootprintQuery {
    /// `json` (default), `csv` or `html`.
    #[serde(default)]
    #[param(inline)]
    pub format: Option<ReportFormat>,
    /// `en` or `fr` for the HTML page; default from `Accept-Language`.
    #[serde(default)]
    #[param(inline)]
    pub lang: Option<ReportLang>,
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

fn service_error(e: FootprintFailure) -> ApiError {
    match e {
        // The resource does not exist on this server (not a failure of it).
        FootprintFailure::Footprint(FootprintError::Settings(d)) => {
            tracing::debug!(error = %d, "footprint not configured");
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_configured",
                "the footprint is not configured on this server",
            )
        }
        FootprintFailure::Footprint(FootprintError::NoUsage(period, _)) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no usage recorded for {period}"),
        ),
        FootprintFailure::Footprint(e @ FootprintError::Prometheus(_)) => {
            tracing::warn!(error = %e, "footprint: Prometheus failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "prometheus",
                "Prometheus did not give the month's usage; see the server's log",
            )
        }
        FootprintFailure::Footprint(e) => {
            tracing::error!(error = %e, "footprint failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the footprint could not be computed; see the server's log",
            )
        }
        FootprintFailure::Store(e) => service::ServiceError::from(e).into(),
    }
}

/// The organisation's carbon footprint for a month: use, manufacturing and
/// total with low/central/high ranges, the cluster's totals, and its kept
/// months before (docs/FOOTPRINT.md).
#[utoipa::path(get, path = "/o/{org}/admin/footprint/{period}", tag = "footprint",
    params(FootprintPath, FootprintQuery),
    responses((status = 200, description = "The report",
               content((Object = "application/json"), (String = "text/csv"),
                       (String = "text/html"))),
              (status = 400, response = Problem), (status = 401, response = Problem),
              (status = 404, response = Problem), (status = 502, response = Problem)))]
pub(super) async fn footprint_report(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(path): Path<FootprintPath>,
    query: Result<Query<FootprintQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m);
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let month = Month::parse(&path.period).map_err(|e| bad(e.to_string()))?;
    if month.start() > time::OffsetDateTime::now_utc().date() {
        return Err(ApiError::not_found(format!("{month} has not started")));
    }
    let format = q.format.unwrap_or_default();
    let lang = match q.lang {
        Some(ReportLang::En) => Lang::En,
        Some(ReportLang::Fr) => Lang::Fr,
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
        ReportFormat::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            footprint::report::to_csv(&report),
        )
            .into_response(),
        ReportFormat::Html => {
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
        ReportFormat::Json => Json(FootprintResponse { report, history }).into_response(),
    })
}
