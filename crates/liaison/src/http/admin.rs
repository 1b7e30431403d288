//! The admin API under `/o/{org}/admin/`: JSON, described in OpenAPI
//! (`/openapi.json`, [`OPENAPI`]), authorised like the SCIM API (the
//! organisation's token or an operator token). Errors are
//! `{"error": code, "detail": message}`. The handlers only translate HTTP to the
//! functions of [`crate::commands::apps`], which the command line shares.

use super::{OrgCtx, SharedState};
use crate::commands::apps::{self, AppError, Caller, NewApp};
use crate::commands::site::{self, NewWindow, ProfilePatch};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use store::ResourceKind;

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

const APPS: &str = "/o/{org}/admin/apps";
const APP: &str = "/o/{org}/admin/apps/{name}";
const USER_PROVISIONING: &str = "/o/{org}/admin/users/{id}/provisioning";
const GROUP_PROVISIONING: &str = "/o/{org}/admin/groups/{id}/provisioning";
const OUTBOX_RETRY: &str = "/o/{org}/admin/outbox/retry";
const PROFILE: &str = "/o/{org}/admin/profile";
const DOMAINS: &str = "/o/{org}/admin/domains";
const DOMAIN: &str = "/o/{org}/admin/domains/{host}";
const MAINTENANCE: &str = "/o/{org}/admin/maintenance";
const MAINTENANCE_WINDOW: &str = "/o/{org}/admin/maintenance/{id}";
const STATEMENT: &str = "/o/{org}/admin/meter/statements/{period}";
const WEBHOOK_SECRET: &str = "/o/{org}/admin/meter/webhook-secret";

/// Every path the admin API routes (for checks against [`OPENAPI`]).
pub const PATHS: &[&str] = &[
    APPS,
    APP,
    USER_PROVISIONING,
    GROUP_PROVISIONING,
    OUTBOX_RETRY,
    PROFILE,
    DOMAINS,
    DOMAIN,
    MAINTENANCE,
    MAINTENANCE_WINDOW,
    STATEMENT,
    WEBHOOK_SECRET,
    super::footprint::FOOTPRINT,
];

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(APPS, get(list_apps).post(create_app))
        .route(APP, get(get_app).delete(delete_app))
        .route(USER_PROVISIONING, get(user_provisioning))
        .route(GROUP_PROVISIONING, get(group_provisioning))
        .route(OUTBOX_RETRY, post(retry))
        .route(PROFILE, get(get_profile).patch(patch_profile))
        .route(DOMAINS, get(list_domains).post(add_domain))
        .route(DOMAIN, delete(remove_domain))
        .route(MAINTENANCE, get(list_windows).post(add_window))
        .route(MAINTENANCE_WINDOW, delete(cancel_window))
        .route(STATEMENT, get(statement))
        .route(WEBHOOK_SECRET, post(webhook_secret))
}

/// `GET /openapi.json`, served without authentication.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// An admin API error.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(d) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", d),
            AppError::Forbidden(d) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", d),
            AppError::Conflict(d) => ApiError::new(StatusCode::CONFLICT, "conflict", d),
            AppError::NotFound(d) => ApiError::new(StatusCode::NOT_FOUND, "not_found", d),
            AppError::Store(e) => {
                tracing::error!(error = %e, "admin API store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the database failed; see the server's log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.code, "detail": self.detail})),
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Parses a JSON body: 400 when it is not JSON, 422 when it does not fit `T`.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "the body does not fit the schema: it must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("the body does not fit the schema: {e}"),
        )
    })
}

async fn list_apps(State(st): State<SharedState>, Extension(ctx): Extension<OrgCtx>) -> ApiResult {
    let apps = apps::list(&st.store, &ctx.org).await?;
    Ok(Json(json!({ "apps": apps })).into_response())
}

async fn create_app(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    let new: NewApp = parse_body(&body)?;
    let caller = if ctx.operator {
        Caller::Operator
    } else {
        Caller::Org
    };
    let added = apps::add(&st.store, &ctx.org, &new, caller).await?;
    let mut view = serde_json::to_value(apps::get(&st.store, &ctx.org, &added.app.name).await?)
        .unwrap_or(Value::Null);
    if let Value::Object(map) = &mut view {
        map.insert("enqueued".into(), json!(added.enqueued));
        map.insert("warnings".into(), json!(added.warnings));
    }
    let location = format!("/o/{}/admin/apps/{}", ctx.org.slug, added.app.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[derive(Deserialize)]
struct AppPath {
    name: String,
}

async fn get_app(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(AppPath { name }): Path<AppPath>,
) -> ApiResult {
    Ok(Json(apps::get(&st.store, &ctx.org, &name).await?).into_response())
}

async fn delete_app(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(AppPath { name }): Path<AppPath>,
) -> ApiResult {
    apps::remove(&st.store, &ctx.org, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct IdPath {
    id: String,
}

async fn user_provisioning(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult {
    let v = apps::provisioning(&st.store, &ctx.org, ResourceKind::User, &id).await?;
    Ok(Json(v).into_response())
}

async fn group_provisioning(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult {
    let v = apps::provisioning(&st.store, &ctx.org, ResourceKind::Group, &id).await?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    #[serde(default)]
    app: Option<String>,
}

async fn retry(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    let req: RetryBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetryBody::default()
    } else {
        parse_body(&body)?
    };
    let n = apps::retry(&st.store, &ctx.org, req.app.as_deref()).await?;
    Ok(Json(json!({ "retried": n })).into_response())
}

async fn get_profile(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    Ok(Json(site::profile(&st.store, &ctx.org).await?).into_response())
}

async fn patch_profile(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    let patch: ProfilePatch = parse_body(&body)?;
    if patch.category.is_some() || patch.billing_customer.is_some() {
        operator_only(&ctx, "category and billing_customer")?;
    }
    let categories = st.config.pricing_categories();
    Ok(Json(site::set_profile(&st.store, &ctx.org, &patch, &categories).await?).into_response())
}

/// Host names and billing are the collective's to set: an organisation's token
/// could otherwise claim another's host name or lower its own contribution.
fn operator_only(ctx: &OrgCtx, what: &str) -> Result<(), ApiError> {
    if ctx.operator {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{what}: an operator token is required"),
        ))
    }
}

async fn list_domains(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    let view = site::profile(&st.store, &ctx.org).await?;
    Ok(Json(json!({ "domains": view.domains })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    host: String,
}

async fn add_domain(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    operator_only(&ctx, "host names")?;
    let new: NewDomain = parse_body(&body)?;
    let host = site::add_domain(&st.store, &ctx.org, &new.host).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "host": host, "org": ctx.org.slug })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct HostPath {
    host: String,
}

async fn remove_domain(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(HostPath { host }): Path<HostPath>,
) -> ApiResult {
    operator_only(&ctx, "host names")?;
    site::remove_domain(&st.store, &ctx.org, &host).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_windows(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    let windows = site::windows(&st.store, &ctx.org).await?;
    Ok(Json(json!({ "windows": windows })).into_response())
}

async fn add_window(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    let new: NewWindow = parse_body(&body)?;
    let w = site::add_window(&st.store, &ctx.org, &new).await?;
    let location = format!("/o/{}/admin/maintenance/{}", ctx.org.slug, w.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(w)).into_response())
}

async fn cancel_window(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult {
    site::cancel_window(&st.store, &ctx.org, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct PeriodPath {
    period: String,
}

#[derive(Deserialize)]
struct FormatQuery {
    #[serde(default)]
    format: Option<String>,
}

async fn statement(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(PeriodPath { period }): Path<PeriodPath>,
    axum::extract::Query(q): axum::extract::Query<FormatQuery>,
) -> ApiResult {
    let period = st.metering.period(&period).map_err(meter_error)?;
    let statements = st
        .metering
        .statements(&period, Some(&ctx.org))
        .await
        .map_err(meter_error)?;
    let st0 = statements
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no statement"))?;
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => Json(st0).into_response(),
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            meter::statement::to_csv(std::slice::from_ref(&st0)),
        )
            .into_response(),
        "html" => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:",
                ),
            ],
            meter::statement::to_html(&st0),
        )
            .into_response(),
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("unknown format {other:?} (json, csv or html)"),
            ))
        }
    })
}

async fn webhook_secret(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    let secret = crate::commands::meter::new_webhook_secret();
    st.store
        .set_webhook_secret(ctx.org.id, secret.as_bytes())
        .await
        .map_err(AppError::from)?;
    Ok(Json(json!({
        "secret": secret,
        "url": format!("/o/{}/events/keycloak", ctx.org.slug),
    }))
    .into_response())
}

fn meter_error(e: crate::metering::MeterError) -> ApiError {
    match e {
        crate::metering::MeterError::Invalid(d) => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", d)
        }
        crate::metering::MeterError::Store(e) => AppError::Store(e).into(),
        crate::metering::MeterError::Dokos(e) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "dokos", e.to_string())
        }
    }
}
