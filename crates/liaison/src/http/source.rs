//! The organisation's directory source in the admin API
//! (`GET`/`PUT`/`DELETE /o/{org}/admin/source`, `POST .../source/sync`), and the
//! refusal of SCIM writes while a source is configured. The rules are in
//! [`crate::commands::source`], shared with the command line.

use super::admin::{parse_body, ApiError};
use super::reply::Reply;
use super::{OrgCtx, SharedState};
use crate::commands::apps::Caller;
use crate::commands::source::{self, SourceRequest};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use scim::ScimError;
use serde_json::json;

pub const SOURCE: &str = "/o/{org}/admin/source";
pub const SOURCE_SYNC: &str = "/o/{org}/admin/source/sync";

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route(
            SOURCE,
            get(get_source).put(put_source).delete(delete_source),
        )
        .route(SOURCE_SYNC, post(sync_source))
}

type ApiResult = Result<Response, ApiError>;

async fn get_source(State(st): State<SharedState>, Extension(ctx): Extension<OrgCtx>) -> ApiResult {
    Ok(Json(source::get(&st.store, &ctx.org).await?).into_response())
}

async fn put_source(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Bytes,
) -> ApiResult {
    let req: SourceRequest = parse_body(&body)?;
    let caller = if ctx.operator {
        Caller::Operator
    } else {
        Caller::Org
    };
    let out = source::put(&st.store, &ctx.org, &req, caller, true).await?;
    let status = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)).into_response())
}

async fn delete_source(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    source::remove(&st.store, &ctx.org).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn sync_source(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> ApiResult {
    source::request_sync(&st.store, &ctx.org).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"requested": true, "detail": "the server's follower reconciles the realm at its next turn"})),
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
    Extension(ctx): Extension<OrgCtx>,
    req: Request,
    next: Next,
) -> Response {
    if !writes(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
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
