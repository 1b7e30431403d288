//! The admin API under `/o/{org}/admin/`: JSON, authorised like the SCIM API
//! (the organisation's token or an operator token), errors as RFC 9457
//! problem documents ([`Problem`]). Each handler maps HTTP to one function of
//! the `service` crate, which the command line and the console share. The
//! OpenAPI 3.1 document served at `/openapi.json` is derived from these
//! handlers' annotations and the service's types ([`openapi`]), so that it
//! cannot drift from the routes.

pub use super::problem::{ApiError, Problem};
use super::{OrgCtx, SharedState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use service::apps::{AddedView, AppChange, AppView, NewApp, ProvisioningView};
use service::site::{NewWindow, ProfilePatch, ProfileView, WindowView};
use service::types::HostName;
use service::{apps, outbox, site, Caller};
use store::ResourceKind;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Liaison admin API",
        description = "Per-organisation administration: the apps Liaison provisions users and \
groups into and the state of provisioning, the organisation's profile, host names and \
maintenance windows, metering statements. Authorised by the organisation's bearer token or an \
operator token; a token of another organisation gets 404, as an organisation that does not \
exist. Errors are RFC 9457 problem documents (`application/problem+json`).",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "apps", description = "The apps an organisation is provisioned into."),
        (name = "provisioning", description = "Where users and groups stand in each app; the outbox."),
        (name = "site", description = "Profile (branding), host names and maintenance windows."),
        (name = "metering", description = "Activity metering: statements and the webhook secret."),
        (name = "footprint", description = "The carbon footprint of the organisation's share of the hosting."),
        (name = "source", description = "The identity provider the directory is read from (a Keycloak realm)."),
    ),
    components(schemas(Problem), responses(Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "`lsn_...`, issued by `liaison token issue <org>` (or `--operator`)",
                        ))
                        .build(),
                ),
            );
        }
    }
}

/// The admin routes with their OpenAPI description.
pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, patch_app, delete_app))
        .routes(routes!(user_provisioning))
        .routes(routes!(group_provisioning))
        .routes(routes!(list_outbox))
        .routes(routes!(retry))
        .routes(routes!(get_profile, patch_profile))
        .routes(routes!(list_domains, add_domain))
        .routes(routes!(remove_domain))
        .routes(routes!(list_windows, add_window))
        .routes(routes!(cancel_window))
        .routes(routes!(statement))
        .routes(routes!(webhook_secret))
        .routes(routes!(
            super::source::get_source,
            super::source::put_source,
            super::source::delete_source
        ))
        .routes(routes!(super::source::sync_source))
        .routes(routes!(super::footprint::footprint_report))
}

/// The OpenAPI document of the admin API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

type ApiResult = Result<Response, ApiError>;

/// Parses a JSON body: 400 when it is not JSON, 422 when it does not fit `T`.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            "the body does not fit the schema: it must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid(format!("the body does not fit the schema: {inner}"))
        } else {
            ApiError::invalid(format!("the body does not fit the schema: {path}: {inner}"))
        }
    })
}

fn caller(ctx: &OrgCtx) -> Caller {
    if ctx.operator {
        Caller::Operator
    } else {
        Caller::OrgAdmin
    }
}

/// The organisation in the path (every admin route has it).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the authentication layer; here for the document
struct OrgParam {
    /// The organisation's slug.
    org: String,
}

#[derive(Serialize, ToSchema)]
struct AppList {
    apps: Vec<AppView>,
}

#[utoipa::path(get, path = "/o/{org}/admin/apps", tag = "apps", params(OrgParam),
    responses((status = 200, description = "The apps, by name", body = AppList),
              (status = 401, response = Problem), (status = 404, response = Problem)))]
async fn list_apps(State(st): State<SharedState>, Extension(ctx): Extension<OrgCtx>) -> ApiResult {
    let apps = apps::list(&st.store, &ctx.org).await?;
    Ok(Json(AppList { apps }).into_response())
}

/// Adds an app and enqueues the delivery of every user, group and membership
/// of the organisation to it. With an organisation's token the credential must
/// be a variable of the organisation's namespace (`LIAISON_ORG_<SLUG>__<NAME>`).
#[utoipa::path(post, path = "/o/{org}/admin/apps", tag = "apps", params(OrgParam),
    request_body = NewApp,
    responses((status = 201, description = "Added", body = AddedView,
               headers(("Location" = String, description = "The app's URL"))),
              (status = 400, response = Problem), (status = 401, response = Problem),
              (status = 403, response = Problem), (status = 404, response = Problem),
              (status = 409, response = Problem), (status = 422, response = Problem)))]
async fn create_app(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    let new: NewApp = parse_body(&body)?;
    let targets = if st.config.provisioning.allow_private_targets {
        apps::Targets::Any
    } else {
        apps::Targets::PublicOnly
    };
    let added = apps::add(&st.store, &ctx.org, &new, caller(&ctx), targets).await?;
    let view = AddedView {
        app: apps::get(&st.store, &ctx.org, &added.app.name).await?,
        enqueued: added.enqueued,
        warnings: added.warnings,
    };
    let location = format!("/o/{}/admin/apps/{}", ctx.org.slug, view.app.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct AppPath {
    /// The organisation's slug.
    #[allow(dead_code)]
    org: String,
    /// The app's name.
    name: String,
}

#[utoipa::path(get, path = "/o/{org}/admin/apps/{name}", tag = "apps", params(AppPath),
    responses((status = 200, body = AppView), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn get_app(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(AppPath { name, .. }): Path<AppPath>,
) -> ApiResult {
    Ok(Json(apps::get(&st.store, &ctx.org, &name).await?).into_response())
}

/// Changes an app: whether accounts it already has, which Liaison did not
/// create, may be adopted (`adopt`; operator tokens only).
#[utoipa::path(patch, path = "/o/{org}/admin/apps/{name}", tag = "apps", params(AppPath),
    request_body = AppChange,
    responses((status = 200, body = AppView), (status = 400, response = Problem),
              (status = 401, response = Problem), (status = 403, response = Problem),
              (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn patch_app(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(AppPath { name, .. }): Path<AppPath>,
    body: Bytes,
) -> ApiResult {
    let change: AppChange = parse_body(&body)?;
    let view = apps::change(&st.store, &ctx.org, &name, &change, caller(&ctx)).await?;
    Ok(Json(view).into_response())
}

/// Forgets an app, its pending deliveries and what Liaison knows it holds.
/// Nothing is removed from the app itself.
#[utoipa::path(delete, path = "/o/{org}/admin/apps/{name}", tag = "apps", params(AppPath),
    responses((status = 204, description = "Removed"), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn delete_app(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(AppPath { name, .. }): Path<AppPath>,
) -> ApiResult {
    apps::remove(&st.store, &ctx.org, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct IdPath {
    /// The organisation's slug.
    #[allow(dead_code)]
    org: String,
    /// The resource's id.
    id: String,
}

/// Where a user stands in each app: delivered, pending, retrying, failed
/// (with the app's error), in collision.
#[utoipa::path(get, path = "/o/{org}/admin/users/{id}/provisioning", tag = "provisioning",
    params(IdPath),
    responses((status = 200, body = ProvisioningView), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn user_provisioning(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> ApiResult {
    let v = apps::provisioning(&st.store, &ctx.org, ResourceKind::User, &id).await?;
    Ok(Json(v).into_response())
}

/// Where a group stands in each app.
#[utoipa::path(get, path = "/o/{org}/admin/groups/{id}/provisioning", tag = "provisioning",
    params(IdPath),
    responses((status = 200, body = ProvisioningView), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn group_provisioning(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> ApiResult {
    let v = apps::provisioning(&st.store, &ctx.org, ResourceKind::Group, &id).await?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    /// Only deliveries parked as poison.
    #[serde(default)]
    poisoned: bool,
    /// Only this app's deliveries.
    #[serde(default)]
    app: Option<String>,
    /// At most this many (1 to 10,000; default 200).
    #[serde(default)]
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct OutboxList {
    deliveries: Vec<outbox::OutboxEntry>,
}

/// The deliveries waiting for the organisation's apps, oldest first.
#[utoipa::path(get, path = "/o/{org}/admin/outbox", tag = "provisioning",
    params(OrgParam, OutboxQuery),
    responses((status = 200, body = OutboxList), (status = 400, response = Problem),
              (status = 401, response = Problem), (status = 404, response = Problem)))]
async fn list_outbox(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(200);
    if !(1..=outbox::MAX_ROWS).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {}",
            outbox::MAX_ROWS
        )));
    }
    let filter = outbox::Filter {
        poisoned: q.poisoned,
        app: q.app,
        limit,
    };
    let deliveries = outbox::list(&st.store, &ctx.org, &filter).await?;
    Ok(Json(OutboxList { deliveries }).into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    /// Only this app's deliveries (default: every app's).
    #[serde(default)]
    app: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Retried {
    /// Poisoned deliveries made due again.
    retried: u64,
}

/// Makes poisoned deliveries due again. The body is optional.
#[utoipa::path(post, path = "/o/{org}/admin/outbox/retry", tag = "provisioning",
    params(OrgParam), request_body(content = Option<RetryBody>),
    responses((status = 200, body = Retried), (status = 400, response = Problem),
              (status = 401, response = Problem), (status = 404, response = Problem),
              (status = 422, response = Problem)))]
async fn retry(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    // No body, or JSON null, retries every app's deliveries.
    let req: RetryBody = match std::str::from_utf8(&body).map(str::trim) {
        Ok("" | "null") => RetryBody::default(),
        _ => parse_body(&body)?,
    };
    let retried = outbox::retry(&st.store, &ctx.org, req.app.as_deref()).await?;
    Ok(Json(Retried { retried }).into_response())
}

#[utoipa::path(get, path = "/o/{org}/admin/profile", tag = "site", params(OrgParam),
    responses((status = 200, body = ProfileView), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn get_profile(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    Ok(Json(site::profile(&st.store, &ctx.org).await?).into_response())
}

/// Changes the profile: absent fields are kept, empty strings clear.
/// `category` and `billing_customer` need an operator token.
#[utoipa::path(patch, path = "/o/{org}/admin/profile", tag = "site", params(OrgParam),
    request_body = ProfilePatch,
    responses((status = 200, body = ProfileView), (status = 400, response = Problem),
              (status = 401, response = Problem), (status = 403, response = Problem),
              (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn patch_profile(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    let patch: ProfilePatch = parse_body(&body)?;
    let categories = st.config.pricing_categories();
    let view = site::set_profile(&st.store, &ctx.org, caller(&ctx), &patch, &categories).await?;
    Ok(Json(view).into_response())
}

#[derive(Serialize, ToSchema)]
struct DomainList {
    domains: Vec<String>,
}

#[utoipa::path(get, path = "/o/{org}/admin/domains", tag = "site", params(OrgParam),
    responses((status = 200, body = DomainList), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn list_domains(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    let view = site::profile(&st.store, &ctx.org).await?;
    Ok(Json(DomainList {
        domains: view.domains,
    })
    .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    /// A DNS host name, mapped to this organisation for the error pages.
    host: HostName,
}

#[derive(Serialize, ToSchema)]
struct DomainAdded {
    /// The host name as stored (lower-cased, without a final dot).
    host: String,
    org: String,
}

/// Maps a host name to the organisation (operator token only).
#[utoipa::path(post, path = "/o/{org}/admin/domains", tag = "site", params(OrgParam),
    request_body = NewDomain,
    responses((status = 201, body = DomainAdded), (status = 400, response = Problem),
              (status = 401, response = Problem), (status = 403, response = Problem),
              (status = 404, response = Problem), (status = 409, response = Problem),
              (status = 422, response = Problem)))]
async fn add_domain(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    caller(&ctx).require_operator("host names")?;
    let new: NewDomain = parse_body(&body)?;
    let host = site::add_domain(&st.store, &ctx.org, caller(&ctx), new.host.as_str()).await?;
    let added = DomainAdded {
        host,
        org: ctx.org.slug.clone(),
    };
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct HostPath {
    /// The organisation's slug.
    #[allow(dead_code)]
    org: String,
    /// The host name, in any case.
    host: String,
}

/// Removes a host name of the organisation (operator token only).
#[utoipa::path(delete, path = "/o/{org}/admin/domains/{host}", tag = "site", params(HostPath),
    responses((status = 204, description = "Removed"), (status = 401, response = Problem),
              (status = 403, response = Problem), (status = 404, response = Problem)))]
async fn remove_domain(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(HostPath { host, .. }): Path<HostPath>,
) -> ApiResult {
    site::remove_domain(&st.store, &ctx.org, caller(&ctx), &host).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
struct WindowList {
    windows: Vec<WindowView>,
}

/// The organisation's maintenance windows not yet over.
#[utoipa::path(get, path = "/o/{org}/admin/maintenance", tag = "site", params(OrgParam),
    responses((status = 200, body = WindowList), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn list_windows(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    let windows = site::windows(&st.store, &ctx.org).await?;
    Ok(Json(WindowList { windows }).into_response())
}

/// Schedules a maintenance window (at most 100 not yet over per organisation).
#[utoipa::path(post, path = "/o/{org}/admin/maintenance", tag = "site", params(OrgParam),
    request_body = NewWindow,
    responses((status = 201, body = WindowView,
               headers(("Location" = String, description = "The window's URL"))),
              (status = 400, response = Problem), (status = 401, response = Problem),
              (status = 404, response = Problem), (status = 409, response = Problem),
              (status = 422, response = Problem)))]
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

/// Cancels a maintenance window.
#[utoipa::path(delete, path = "/o/{org}/admin/maintenance/{id}", tag = "site", params(IdPath),
    responses((status = 204, description = "Cancelled"), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn cancel_window(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(IdPath { id, .. }): Path<IdPath>,
) -> ApiResult {
    site::cancel_window(&st.store, &ctx.org, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct PeriodPath {
    /// The organisation's slug.
    #[allow(dead_code)]
    org: String,
    /// The period's label: `2026-11` (month), `2026-W48` (ISO week) or
    /// `2026-11-30` (day), per the configured period kind; another label is
    /// no period (404).
    #[param(pattern = "^[0-9]{4}-(?:[0-9]{2}|W[0-9]{2}|[0-9]{2}-[0-9]{2})$")]
    period: String,
}

/// The statement's format.
#[derive(Deserialize, ToSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum StatementFormat {
    #[default]
    Json,
    Csv,
    Html,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FormatQuery {
    /// `json` (default), `csv` or `html` (printable).
    #[serde(default)]
    #[param(inline)]
    format: Option<StatementFormat>,
}

/// The organisation's statement for a period: active accounts and
/// contribution.
#[utoipa::path(get, path = "/o/{org}/admin/meter/statements/{period}", tag = "metering",
    params(PeriodPath, FormatQuery),
    responses((status = 200, description = "The statement",
               content((Object = "application/json"), (String = "text/csv"),
                       (String = "text/html"))),
              (status = 400, response = Problem), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn statement(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path(PeriodPath { period, .. }): Path<PeriodPath>,
    query: Result<Query<FormatQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    static LABEL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new("^[0-9]{4}-(?:[0-9]{2}|W[0-9]{2}|[0-9]{2}-[0-9]{2})$")
            .expect("the pattern compiles")
    });
    if !LABEL.is_match(&period) {
        return Err(ApiError::bad_request(format!(
            "{period:?} is not a period label (2026-11, 2026-W48 or 2026-11-30)"
        )));
    }
    // A well-formed label that names no period of the configured kind is no
    // resource.
    let period = st
        .metering
        .period(&period)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    let statements = st
        .metering
        .statements(&period, Some(&ctx.org))
        .await
        .map_err(meter_error)?;
    let statement = statements
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("no statement"))?;
    Ok(match q.format.unwrap_or_default() {
        StatementFormat::Json => Json(statement).into_response(),
        StatementFormat::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            meter::statement::to_csv(std::slice::from_ref(&statement)),
        )
            .into_response(),
        StatementFormat::Html => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:",
                ),
            ],
            meter::statement::to_html(&statement),
        )
            .into_response(),
    })
}

#[derive(Serialize, ToSchema)]
struct WebhookSecret {
    /// The new secret (shown once; the previous one stops working).
    secret: String,
    /// Where the identity provider posts its events.
    url: String,
}

/// Sets a new secret for the identity provider's event webhook.
#[utoipa::path(post, path = "/o/{org}/admin/meter/webhook-secret", tag = "metering",
    params(OrgParam),
    responses((status = 200, body = WebhookSecret), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
async fn webhook_secret(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    let secret = crate::commands::meter::new_webhook_secret();
    st.store
        .set_webhook_secret(ctx.org.id, secret.as_bytes())
        .await
        .map_err(service::ServiceError::from)?;
    st.forget_webhook_contexts();
    Ok(Json(WebhookSecret {
        secret,
        url: format!("/o/{}/events/keycloak", ctx.org.slug),
    })
    .into_response())
}

fn meter_error(e: crate::metering::MeterError) -> ApiError {
    match e {
        crate::metering::MeterError::Invalid(d) => ApiError::bad_request(d),
        crate::metering::MeterError::Store(e) => service::ServiceError::from(e).into(),
        crate::metering::MeterError::Dokos(e) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream", e.to_string())
        }
        crate::metering::MeterError::Kek(e) => {
            tracing::error!(error = %e, "metering key-encryption key");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "metering is misconfigured; retry later",
            )
        }
    }
}
