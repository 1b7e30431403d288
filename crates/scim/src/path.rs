//! The PATCH `path` grammar of RFC 7644 §3.5.2:
//! `attrPath / valuePath [subAttr]`, e.g. `emails[type eq "work"].value`.

use crate::error::{Result, ScimError};
use crate::filter::{AttrPath, Filter};

/// A parsed PATCH path.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute; carries `sub_attr` for `name.givenName`.
    pub attr: AttrPath,
    /// The value filter of `members[value eq "x"]`.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter: `.value` in `emails[type eq "work"].value`.
    pub sub_attr: Option<String>,
}

impl PatchPath {
    /// Parses a PATCH path. Errors are `invalidPath` (or `invalidFilter` for a bad
    /// value filter).
    pub fn parse(input: &str) -> Result<PatchPath> {
        let _ = input;
        Err(ScimError::invalid_path("not implemented"))
    }
}
