//! The filter grammar of RFC 7644 §3.4.2.2, parsed to a plain-data AST, and its
//! evaluation against a JSON resource.
//!
//! Attribute names and operators are case-insensitive; the parser keeps names as
//! written and [`crate::schema::ResourceKind::resolve`] maps them to their
//! canonical definitions.

use crate::error::{Result, ScimError};
use serde_json::Value;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of `( )`, `not ( )` and `[ ]` accepted.
pub const MAX_FILTER_DEPTH: usize = 32;

/// An attribute reference: `[schemaURN ":"] attr ["." subAttr]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix when the path is URN-qualified.
    pub schema: Option<String>,
    pub attr: String,
    pub sub_attr: Option<String>,
}

impl AttrPath {
    pub fn new(attr: impl Into<String>) -> Self {
        AttrPath {
            schema: None,
            attr: attr.into(),
            sub_attr: None,
        }
    }
    pub fn with_sub(attr: impl Into<String>, sub: impl Into<String>) -> Self {
        AttrPath {
            schema: None,
            attr: attr.into(),
            sub_attr: Some(sub.into()),
        }
    }
}

/// Comparison operators (`eq ne co sw ew gt ge lt le`); `pr` is [`Filter::Present`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison value: a JSON literal (`false`, `null`, `true`, number, string).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath compareOp compValue`
    Compare(AttrPath, CompOp, CompValue),
    /// `not ( filter )`
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    /// `attrPath [ valFilter ]`: the attribute (never with a sub-attribute) and a
    /// filter whose attribute paths name sub-attributes of it.
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    /// Parses a filter, enforcing [`MAX_FILTER_LEN`] and [`MAX_FILTER_DEPTH`].
    /// Errors are `invalidFilter`.
    pub fn parse(input: &str) -> Result<Filter> {
        let _ = input;
        Err(ScimError::invalid_filter("not implemented"))
    }

    /// Whether `resource` (a SCIM resource in its JSON wire form) matches, using the
    /// attribute definitions of `kind` for case sensitivity and types.
    pub fn matches(&self, kind: crate::schema::ResourceKind, resource: &Value) -> bool {
        let _ = (kind, resource);
        false
    }
}
