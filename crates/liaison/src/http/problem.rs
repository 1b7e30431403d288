//! Errors of the admin API as RFC 9457 problem documents
//! (`application/problem+json`): `type`, `title`, `status`, `detail`, and
//! `error`, a short stable code (`invalid`, `forbidden`...) for programs.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use service::ServiceError;
use utoipa::{ToResponse, ToSchema};

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema, ToResponse)]
#[response(
    description = "What went wrong (an RFC 9457 problem document)",
    content_type = "application/problem+json"
)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank`: the status says it all).
    #[schema(example = "about:blank")]
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status' reason phrase.
    #[schema(example = "Unprocessable Entity")]
    pub title: &'static str,
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong with this request, for the person who sent it.
    pub detail: String,
    /// A short stable code: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `invalid`, `upstream`, `internal`...
    #[schema(example = "invalid")]
    pub error: &'static str,
}

/// An admin API error, answered as a [`Problem`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 500 with an opaque detail; the cause goes to the log.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "admin API failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; see its log",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            error: self.code,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(d) => ApiError::invalid(d),
            ServiceError::Forbidden(d) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", d),
            ServiceError::Conflict(d) => ApiError::new(StatusCode::CONFLICT, "conflict", d),
            ServiceError::NotFound(d) => ApiError::not_found(d),
            ServiceError::Upstream(d) => ApiError::new(StatusCode::BAD_GATEWAY, "upstream", d),
            ServiceError::Store(e) => ApiError::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}
