//! The organisation's directory source in the admin API
//! (`GET`/`PUT`/`DELETE /o/{org}/admin/source`, `POST .../source/sync`), and the
//! refusal of SCIM writes while a source is configured. The rules are
//! [`service::source`]'s, shared with the command line.

use super::admin::{parse_body, ApiError, Problem};
use super::reply::Reply;
use super::{OrgCtx, SharedState};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use scim::ScimError;
use serde::Serialize;
use service::source::{self, PutOutcome, SourceRequest, SourceView};
use service::Caller;
use utoipa::ToSchema;

type ApiResult = Result<Response, ApiError>;

/// The organisation in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the authentication layer; here for the document
struct OrgParam {
    /// The organisation's slug.
    org: String,
}

/// The organisation's directory source with where following it stands.
#[utoipa::path(get, path = "/o/{org}/admin/source", tag = "source", params(OrgParam),
    responses((status = 200, body = SourceView), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
pub(super) async fn get_source(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    Ok(Json(source::get(&st.store, &ctx.org).await?).into_response())
}

/// Takes the organisation's users and groups from a Keycloak realm (201), or
/// changes the source it has (200). Adding is refused (409) while the
/// directory holds users or groups, unless `adopt`.
#[utoipa::path(put, path = "/o/{org}/admin/source", tag = "source", params(OrgParam),
    request_body = SourceRequest,
    responses((status = 200, body = PutOutcome), (status = 201, body = PutOutcome),
              (status = 400, response = Problem), (status = 401, response = Problem),
              (status = 403, response = Problem), (status = 404, response = Problem),
              (status = 409, response = Problem), (status = 422, response = Problem)))]
pub(super) async fn put_source(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    let req: SourceRequest = parse_body(&body)?;
    let caller = if ctx.operator {
        Caller::Operator
    } else {
        Caller::OrgAdmin
    };
    let out = source::put(&st.store, &ctx.org, &req, caller, true).await?;
    let status = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)).into_response())
}

/// Stops taking the directory from the source (the users and groups stay;
/// SCIM writes are accepted again).
#[utoipa::path(delete, path = "/o/{org}/admin/source", tag = "source", params(OrgParam),
    responses((status = 204, description = "Removed"), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
pub(super) async fn delete_source(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    source::remove(&st.store, &ctx.org).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
pub(super) struct SyncRequested {
    requested: bool,
    detail: &'static str,
}

/// Asks the server's follower for a full reconciliation at its next turn.
#[utoipa::path(post, path = "/o/{org}/admin/source/sync", tag = "source", params(OrgParam),
    responses((status = 202, body = SyncRequested), (status = 401, response = Problem),
              (status = 404, response = Problem)))]
pub(super) async fn sync_source(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    source::request_sync(&st.store, &ctx.org).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncRequested {
            requested: true,
            detail: "the server's follower reconciles the realm at its next turn",
        }),
    )
        .into_response())
}

/// Whether a SCIM request writes (`POST /.search` reads).
fn writes(method: &Method, path: &str) -> bool {
    match *method {
        Method::POST => !path.ends_with("/.search"),
        Method::PUT | Method::PATCH | Method::DELETE => true,
        _ => false,
    }
}

/// Refuses SCIM writes to an organisation whose directory comes from a
/// source: 403 with a SCIM error saying why and what to do.
pub async fn refuse_scim_writes(
    State(st): State<SharedState>,
    req: Request,
    next: Next,
) -> Response {
    if !writes(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    // Set by the authentication layer, which runs first.
    let Some(ctx) = req.extensions().get::<OrgCtx>().cloned() else {
        return Reply::Error(ScimError::status(401, "a valid bearer token is required"))
            .into_response();
    };
    match st.store.source(ctx.org.id).await {
        Ok(None) => next.run(req).await,
        Ok(Some(s)) => {
            let mut r = Reply::Error(ScimError::status(
                403,
                format!(
                    "the users and groups of {} come from its {} source (realm {} at {}): change them \
                     there; SCIM writes are refused while the source is configured (liaison source \
                     remove {})",
                    ctx.org.slug, s.config.kind, s.config.realm, s.config.base_url, ctx.org.slug
                ),
            ))
            .into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => Reply::Error(directory::scim_error(e)).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::writes;
    use axum::http::Method;

    #[test]
    fn searches_read_and_everything_else_but_get_writes() {
        assert!(!writes(&Method::GET, "/o/a/scim/v2/Users"));
        assert!(!writes(&Method::POST, "/o/a/scim/v2/Users/.search"));
        assert!(!writes(&Method::POST, "/o/a/scim/v2/.search"));
        assert!(writes(&Method::POST, "/o/a/scim/v2/Users"));
        assert!(writes(&Method::POST, "/o/a/scim/v2/Bulk"));
        assert!(writes(&Method::PATCH, "/o/a/scim/v2/Groups/x"));
        assert!(writes(&Method::DELETE, "/o/a/scim/v2/Users/x"));
    }
}
