//! The SCIM service of one Liaison deployment: it validates SCIM requests with the
//! `scim` crate and applies them to the `store`, one organisation at a time.
//!
//! Everything a SCIM endpoint does lives here, so that the HTTP layer only maps
//! requests to calls and results to responses, and a second front end (the CLI, a
//! bulk importer) reuses the same rules. Each write is one store transaction: a
//! request either takes effect whole or not at all. No HTTP types appear here.

mod bulk;
mod password;
mod query;
mod render;
mod service;

pub use bulk::{BulkLimits, BULK_REQUEST_SCHEMA, BULK_RESPONSE_SCHEMA};
pub use query::{SearchRequest, LIST_RESPONSE_SCHEMA, SEARCH_REQUEST_SCHEMA};
pub use render::Projection;
pub use service::{etag_matches, Directory, Limits, OrgScope, Resource};

/// Turns a store error into the SCIM error a client sees. Database failures are
/// logged here and answered as an opaque 500.
pub fn scim_error(e: store::StoreError) -> scim::ScimError {
    use scim::ScimError;
    use store::StoreError;
    match e {
        StoreError::Conflict(what) => ScimError::uniqueness(what),
        StoreError::NotFound => ScimError::not_found("resource not found"),
        StoreError::UnknownMember(id) => ScimError::invalid_value(format!(
            "member {id} is not a resource of this organisation"
        )),
        StoreError::Scim(e) => e,
        other => {
            tracing::error!(error = %other, "store failure");
            ScimError::status(500, "internal error")
        }
    }
}
