//! SCIM 2.0 protocol logic (RFC 7643 core schema, RFC 7644 protocol), with no I/O.
//!
//! What belongs here: the schemas and their attribute definitions, the discovery
//! documents, the filter and PATCH path grammars with their in-memory evaluation,
//! PATCH application, validation of resource bodies, attribute projection, and the
//! error type whose JSON form is RFC 7644 §3.12. What does not: HTTP, SQL, storage,
//! organisations, tokens. Everything here is plain data in, plain data out, so it
//! can be fuzzed and unit-tested without a server.
//!
//! ```
//! use scim::filter::Filter;
//! let f = Filter::parse(r#"userName eq "bjensen" and not (emails[type eq "work"])"#).unwrap();
//! assert!(matches!(f, Filter::And(..)));
//! ```

pub mod discovery;
pub mod error;
pub mod filter;
pub mod patch;
pub mod path;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimType};
pub use filter::{AttrPath, CompOp, CompValue, Filter};
pub use path::PatchPath;
pub use schema::{AttrDef, AttrType, ResourceKind, SchemaDef};

/// The `application/scim+json` media type (RFC 7644 §3.1).
pub const MEDIA_TYPE: &str = "application/scim+json";
