//! SCIM responses: `application/scim+json` bodies, `ETag` and `Location` headers,
//! and errors in the RFC 7644 §3.12 form.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use directory::Resource;
use scim::ScimError;
use serde_json::Value;

pub enum Reply {
    /// A resource, with its ETag and (for 201) its Location.
    Resource(StatusCode, Resource),
    Json(Value),
    NoContent,
    NotModified(String),
    Error(ScimError),
}

impl From<ScimError> for Reply {
    fn from(e: ScimError) -> Self {
        Reply::Error(e)
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(scim::MEDIA_TYPE),
    );
    r
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Resource(status, res) => {
                let mut r = json_response(status, &res.json);
                if let Ok(v) = HeaderValue::from_str(&res.etag()) {
                    r.headers_mut().insert(header::ETAG, v);
                }
                if status == StatusCode::CREATED {
                    if let Ok(v) = HeaderValue::from_str(&res.location) {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                }
                r
            }
            Reply::Json(v) => json_response(StatusCode::OK, &v),
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
            Reply::NotModified(etag) => {
                let mut r = StatusCode::NOT_MODIFIED.into_response();
                if let Ok(v) = HeaderValue::from_str(&etag) {
                    r.headers_mut().insert(header::ETAG, v);
                }
                r
            }
            Reply::Error(e) => {
                let status =
                    StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut r = json_response(status, &e.to_json());
                if status == StatusCode::UNAUTHORIZED {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"liaison\""),
                    );
                }
                r
            }
        }
    }
}
