//! Schema and attribute definitions (RFC 7643 §2, §4, §7, §8.7) for the resources
//! Liaison serves: User (with the enterprise extension) and Group.

use crate::error::Result;
use crate::filter::AttrPath;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Attribute data types (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition.
#[derive(Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttrDef],
}

/// One schema: an id (URN) and its attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttrDef],
}

/// The resource types Liaison serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

/// Where an attribute path lands.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// The schema holding the attribute; `None` for the common attributes
    /// (`id`, `externalId`, `meta`).
    pub schema: Option<&'static SchemaDef>,
    /// The top-level attribute.
    pub attr: &'static AttrDef,
    /// The sub-attribute, when the path names one.
    pub sub: Option<&'static AttrDef>,
}

impl Resolved {
    /// The definition the path finally designates (the sub-attribute if any).
    pub fn leaf(&self) -> &'static AttrDef {
        self.sub.unwrap_or(self.attr)
    }
    /// Whether the attribute lives in an extension schema (nested under its URN
    /// in the JSON form).
    pub fn is_extension(&self) -> bool {
        self.schema.is_some_and(|s| s.id == ENTERPRISE_USER_SCHEMA)
    }
}

impl ResourceKind {
    /// `"User"` or `"Group"`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
    /// `"Users"` or `"Groups"`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// Resolves an attribute path (case-insensitively, URN-qualified or not) to its
    /// definition. Unknown attributes are an `invalidPath`/`invalidFilter` decision
    /// left to the caller: this returns `None`.
    pub fn resolve(self, path: &AttrPath) -> Option<Resolved> {
        let _ = path;
        None
    }

    /// Like [`ResourceKind::resolve`] but an error (`invalidFilter`) when unknown.
    pub fn resolve_filter_attr(self, path: &AttrPath) -> Result<Resolved> {
        self.resolve(path).ok_or_else(|| {
            crate::ScimError::invalid_filter(format!("unknown attribute {}", path.attr))
        })
    }
}
