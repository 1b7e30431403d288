//! The admin API under `/o/{org}/admin/`: JSON, described in OpenAPI
//! (`/openapi.json`), authorised like the SCIM API (the organisation's token or an
//! operator token).

use super::SharedState;
use axum::Router;

pub fn routes() -> Router<SharedState> {
    Router::new()
}
