//! SCIM errors as defined by RFC 7644 §3.12: an HTTP status, an optional `scimType`
//! keyword and a human-readable `detail`.

use serde_json::{json, Value};
use std::fmt;

/// The `urn:ietf:params:scim:api:messages:2.0:Error` schema URN.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` keywords of RFC 7644 §3.12, table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    /// The keyword as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }

    /// The HTTP status RFC 7644 pairs with this keyword.
    pub fn status(self) -> u16 {
        match self {
            ScimType::Uniqueness => 409,
            _ => 400,
        }
    }
}

/// An error answered to a SCIM client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    /// An error with a `scimType`, at the status the RFC pairs with it.
    pub fn new(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError {
            status: scim_type.status(),
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// An error with a status and no `scimType` (404, 401, 412, 413, 500, ...).
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidFilter, detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidSyntax, detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidPath, detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidValue, detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(ScimType::NoTarget, detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(ScimType::Mutability, detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(ScimType::Uniqueness, detail)
    }
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::new(ScimType::TooMany, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::status(404, detail)
    }

    /// The JSON body of RFC 7644 §3.12. `status` is a string, as in the RFC's examples.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            v["scimType"] = Value::from(t.as_str());
        }
        v
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t.as_str(), self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}

/// Result alias for SCIM operations.
pub type Result<T, E = ScimError> = std::result::Result<T, E>;
