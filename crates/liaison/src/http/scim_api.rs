//! SCIM 2.0 endpoints under `/o/{org}/scim/v2`.

use super::reply::Reply;
use super::{OrgCtx, SharedState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use directory::{Projection, SearchRequest};
use scim::resource::parse_attr_list;
use scim::{ResourceKind, ScimError};
use serde_json::Value;

const BASE: &str = "/o/{org}/scim/v2";

pub fn routes() -> Router<SharedState> {
    let r = |p: &str| format!("{BASE}{p}");
    Router::new()
        .route(&r("/ServiceProviderConfig"), get(service_provider_config))
        .route(&r("/ResourceTypes"), get(resource_types))
        .route(&r("/ResourceTypes/{id}"), get(resource_type))
        .route(&r("/Schemas"), get(schemas))
        .route(&r("/Schemas/{id}"), get(schema))
        .route(&r("/Bulk"), post(bulk))
        .route(&r("/.search"), post(search_all))
        .route(&r("/Me"), get(me).post(me).put(me).patch(me).delete(me))
        .route(&r("/{resource}"), get(list).post(create))
        .route(&r("/{resource}/.search"), post(search))
        .route(
            &r("/{resource}/{id}"),
            get(read).put(replace).patch(patch).delete(remove),
        )
}

type Params = Query<Vec<(String, String)>>;

fn kind_of(segment: &str) -> Result<ResourceKind, ScimError> {
    match segment {
        "Users" => Ok(ResourceKind::User),
        "Groups" => Ok(ResourceKind::Group),
        _ => Err(ScimError::not_found(format!(
            "no resource type at /{segment}"
        ))),
    }
}

/// Parses a request body. `application/scim+json` and `application/json` are
/// both accepted (and a missing type): the body must be JSON either way.
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ScimError> {
    let bytes = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ScimError::status(413, "the request body exceeds the maximum payload size")
        } else {
            ScimError::status(status.as_u16(), e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))
}

fn projection(params: &[(String, String)]) -> Result<Projection, ScimError> {
    let mut p = Projection::default();
    for (k, v) in params {
        if k.eq_ignore_ascii_case("attributes") {
            p.attributes = parse_attr_list(v)?;
        } else if k.eq_ignore_ascii_case("excludedAttributes") {
            p.excluded = parse_attr_list(v)?;
        }
    }
    Ok(p)
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn limits(st: &SharedState) -> scim::discovery::Limits {
    let l = st.directory.limits();
    scim::discovery::Limits {
        max_results: l.max_results,
        bulk_max_operations: l.bulk.max_operations,
        bulk_max_payload_size: l.bulk.max_payload_size,
    }
}

async fn service_provider_config(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
) -> Reply {
    Reply::Json(scim::discovery::service_provider_config(
        &ctx.base_url,
        &limits(&st),
    ))
}

async fn resource_types(Extension(ctx): Extension<OrgCtx>) -> Reply {
    Reply::Json(scim::discovery::resource_types(&ctx.base_url))
}

async fn resource_type(
    Extension(ctx): Extension<OrgCtx>,
    Path((_, id)): Path<(String, String)>,
) -> Reply {
    match scim::discovery::resource_type(&ctx.base_url, &id) {
        Some(v) => Reply::Json(v),
        None => ScimError::not_found(format!("no resource type {id}")).into(),
    }
}

async fn schemas(Extension(ctx): Extension<OrgCtx>) -> Reply {
    Reply::Json(scim::discovery::schemas(&ctx.base_url))
}

async fn schema(Extension(ctx): Extension<OrgCtx>, Path((_, id)): Path<(String, String)>) -> Reply {
    match scim::discovery::schema(&ctx.base_url, &id) {
        Some(v) => Reply::Json(v),
        None => ScimError::not_found(format!("no schema {id}")).into(),
    }
}

async fn me() -> Reply {
    ScimError::status(
        501,
        "/Me is not supported: tokens belong to organisations, not users",
    )
    .into()
}

async fn list(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path((_, resource)): Path<(String, String)>,
    Query(params): Params,
) -> Reply {
    let run = async {
        let kind = kind_of(&resource)?;
        let req = SearchRequest::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        st.directory.list(ctx.scope(), kind, &req).await
    };
    run.await.map_or_else(Reply::Error, Reply::Json)
}

async fn search(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path((_, resource)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let run = async {
        let kind = kind_of(&resource)?;
        let req = SearchRequest::from_body(&json_body(body)?)?;
        st.directory.list(ctx.scope(), kind, &req).await
    };
    run.await.map_or_else(Reply::Error, Reply::Json)
}

async fn search_all(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let run = async {
        let req = SearchRequest::from_body(&json_body(body)?)?;
        st.directory.search_all(ctx.scope(), &req).await
    };
    run.await.map_or_else(Reply::Error, Reply::Json)
}

async fn create(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path((_, resource)): Path<(String, String)>,
    Query(params): Params,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let run = async {
        let kind = kind_of(&resource)?;
        let proj = projection(&params)?;
        let body = json_body(body)?;
        st.directory.create(ctx.scope(), kind, &body, &proj).await
    };
    match run.await {
        Ok(r) => Reply::Resource(StatusCode::CREATED, r),
        Err(e) => e.into(),
    }
}

async fn read(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path((_, resource, id)): Path<(String, String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Reply {
    let run = async {
        let kind = kind_of(&resource)?;
        let proj = projection(&params)?;
        if let Some(tags) = header(&headers, header::IF_NONE_MATCH) {
            let version = st.directory.version(ctx.scope(), kind, &id).await?;
            if directory::etag_matches(tags, version) {
                return Ok(Reply::NotModified(format!("W/\"{version}\"")));
            }
        }
        let r = st.directory.get(ctx.scope(), kind, &id, &proj).await?;
        Ok(Reply::Resource(StatusCode::OK, r))
    };
    run.await.unwrap_or_else(Reply::Error)
}

/// What PUT and PATCH both read from a request.
struct Update<'h> {
    kind: ResourceKind,
    proj: Projection,
    body: Value,
    if_match: Option<&'h str>,
}

fn update<'h>(
    resource: &str,
    params: &[(String, String)],
    headers: &'h HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Update<'h>, ScimError> {
    Ok(Update {
        kind: kind_of(resource)?,
        proj: projection(params)?,
        body: json_body(body)?,
        if_match: header(headers, header::IF_MATCH),
    })
}

async fn replace(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path((_, resource, id)): Path<(String, String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let run = async {
        let u = update(&resource, &params, &headers, body)?;
        st.directory
            .replace(ctx.scope(), u.kind, &id, &u.body, u.if_match, &u.proj)
            .await
    };
    run.await
        .map_or_else(Reply::Error, |r| Reply::Resource(StatusCode::OK, r))
}

async fn patch(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path((_, resource, id)): Path<(String, String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let run = async {
        let u = update(&resource, &params, &headers, body)?;
        st.directory
            .patch(ctx.scope(), u.kind, &id, &u.body, u.if_match, &u.proj)
            .await
    };
    run.await
        .map_or_else(Reply::Error, |r| Reply::Resource(StatusCode::OK, r))
}

async fn remove(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    Path((_, resource, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Reply {
    let run = async {
        let kind = kind_of(&resource)?;
        let if_match = header(&headers, header::IF_MATCH);
        st.directory.delete(ctx.scope(), kind, &id, if_match).await
    };
    run.await.map_or_else(Reply::Error, |()| Reply::NoContent)
}

async fn bulk(
    State(st): State<SharedState>,
    Extension(ctx): Extension<OrgCtx>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let run = async {
        let body = json_body(body)?;
        st.directory.bulk(ctx.scope(), &body).await
    };
    run.await.map_or_else(Reply::Error, Reply::Json)
}
