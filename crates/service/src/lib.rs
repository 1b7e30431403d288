//! The rules of Liaison's administration, once, for every front end: the
//! command line (`liaison app add ...`), the admin API (`/o/{org}/admin/...`)
//! and the console call these functions and only map their inputs and outputs.
//!
//! What belongs here: validation of what an operator or an organisation's
//! admin asks for, who may ask for it ([`Caller`]), the store transactions
//! that carry it out, and the views returned (serde types with
//! [`utoipa::ToSchema`], so the admin API's OpenAPI document is derived from
//! them). What does not: HTTP (status codes, headers), clap types, printing,
//! SCIM (the `directory` crate) and delivery into the apps (`provision`).
//!
//! ```no_run
//! # async fn f(store: store::Store, org: store::Org) -> Result<(), service::ServiceError> {
//! let apps = service::apps::list(&store, &org).await?;
//! for app in apps {
//!     println!("{} {} pending", app.name, app.pending);
//! }
//! # Ok(()) }
//! ```

pub mod apps;
pub mod console;
pub mod footprint;
pub mod orgs;
pub mod outbox;
pub mod site;
pub mod source;
pub mod sync;
pub mod tokens;
pub mod types;

use store::StoreError;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Who asks. Operators (the command line, an operator token, an operator's
/// console session) may do everything; an organisation's admin (its token, or
/// its admin's console session) only what concerns the organisation and
/// cannot name the server's own files, variables or the collective's billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Operator,
    OrgAdmin,
}

impl Caller {
    pub fn is_operator(self) -> bool {
        self == Caller::Operator
    }

    /// `Forbidden` unless the caller is an operator; `what` names the thing
    /// reserved to operators.
    pub fn require_operator(self, what: &str) -> Result<(), ServiceError> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "{what}: an operator is required"
            )))
        }
    }
}

/// Why a service operation failed. Front ends map each variant to their own
/// form (an HTTP status and problem document, an exit code and message); the
/// message is meant for the person who asked and never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is not acceptable (bad kind, URL, credential, date...).
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with what exists (a name already taken).
    #[error("{0}")]
    Conflict(String),
    /// No such thing in the caller's organisation.
    #[error("{0}")]
    NotFound(String),
    /// A system Liaison depends on (an app, the accounting system) failed.
    #[error("{0}")]
    Upstream(String),
    /// The database failed; the details go to the log, not to the caller.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An instant as RFC 3339, as every view shows times.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
