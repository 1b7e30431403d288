//! Schema and attribute definitions (RFC 7643 §2, §4, §7, §8.7) for the resources
//! Liaison serves: User (with the enterprise extension) and Group, plus the
//! discovery schemas (ServiceProviderConfig, ResourceType, Schema) that `/Schemas`
//! publishes.
//!
//! The tables are static data; [`ResourceKind::resolve`] maps an attribute path
//! (case-insensitively, URN-qualified or not) to its definition.

use crate::error::Result;
use crate::filter::AttrPath;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

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

impl AttrType {
    /// The type name used in schema documents (RFC 7643 §7).
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    /// The keyword used in schema documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    /// The keyword used in schema documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    /// The keyword used in schema documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
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

impl AttrDef {
    /// A single-valued, optional, readWrite attribute returned by default,
    /// case-exact only for references and binary values; the builder methods below
    /// adjust it.
    pub const fn new(name: &'static str, ty: AttrType, description: &'static str) -> AttrDef {
        AttrDef {
            name,
            ty,
            multi_valued: false,
            description,
            required: false,
            case_exact: matches!(ty, AttrType::Reference | AttrType::Binary),
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        }
    }
    pub const fn multi(self) -> AttrDef {
        AttrDef {
            multi_valued: true,
            ..self
        }
    }
    pub const fn required(self) -> AttrDef {
        AttrDef {
            required: true,
            ..self
        }
    }
    pub const fn case_exact(self) -> AttrDef {
        AttrDef {
            case_exact: true,
            ..self
        }
    }
    pub const fn mutability(self, mutability: Mutability) -> AttrDef {
        AttrDef { mutability, ..self }
    }
    pub const fn read_only(self) -> AttrDef {
        self.mutability(Mutability::ReadOnly)
    }
    pub const fn returned(self, returned: Returned) -> AttrDef {
        AttrDef { returned, ..self }
    }
    pub const fn unique(self, uniqueness: Uniqueness) -> AttrDef {
        AttrDef { uniqueness, ..self }
    }
    pub const fn canonical(self, canonical_values: &'static [&'static str]) -> AttrDef {
        AttrDef {
            canonical_values,
            ..self
        }
    }
    pub const fn refs(self, reference_types: &'static [&'static str]) -> AttrDef {
        AttrDef {
            reference_types,
            ..self
        }
    }
    pub const fn subs(self, sub_attributes: &'static [AttrDef]) -> AttrDef {
        AttrDef {
            sub_attributes,
            ..self
        }
    }

    /// The sub-attribute named `name` (case-insensitive).
    pub fn sub(&self, name: &str) -> Option<&'static AttrDef> {
        find_attr(self.sub_attributes, name)
    }

    /// Whether the attribute is complex and has a `primary` sub-attribute.
    pub fn has_primary(&self) -> bool {
        self.multi_valued && self.sub("primary").is_some()
    }
}

/// One schema: an id (URN) and its attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttrDef],
}

impl SchemaDef {
    /// The attribute named `name` (case-insensitive).
    pub fn attr(&self, name: &str) -> Option<&'static AttrDef> {
        find_attr(self.attributes, name)
    }
}

fn find_attr(defs: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

use AttrType as T;

// Sub-attributes shared by the multi-valued attributes of RFC 7643 §2.4.
const fn mv_display(what: &'static str) -> AttrDef {
    AttrDef::new("display", T::String, what)
}
const fn mv_primary(what: &'static str) -> AttrDef {
    AttrDef::new("primary", T::Boolean, what)
}

const PRIMARY_DESC: &str =
    "A Boolean value indicating the 'primary' or preferred attribute value for this attribute. The primary attribute value 'true' MUST appear no more than once.";
const DISPLAY_DESC: &str = "A human-readable name, primarily used for display purposes. READ-ONLY.";

static NAME_SUBS: [AttrDef; 6] = [
    AttrDef::new(
        "formatted",
        T::String,
        "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display (e.g., 'Ms. Barbara J Jensen, III').",
    ),
    AttrDef::new(
        "familyName",
        T::String,
        "The family name of the User, or last name in most Western languages.",
    ),
    AttrDef::new(
        "givenName",
        T::String,
        "The given name of the User, or first name in most Western languages.",
    ),
    AttrDef::new(
        "middleName",
        T::String,
        "The middle name(s) of the User.",
    ),
    AttrDef::new(
        "honorificPrefix",
        T::String,
        "The honorific prefix(es) of the User, or title in most Western languages.",
    ),
    AttrDef::new(
        "honorificSuffix",
        T::String,
        "The honorific suffix(es) of the User, or suffix in most Western languages.",
    ),
];

static EMAIL_SUBS: [AttrDef; 4] = [
    AttrDef::new(
        "value",
        T::String,
        "Email addresses for the user. The value SHOULD be canonicalized by the service provider, e.g., 'bjensen@example.com' instead of 'bjensen@EXAMPLE.COM'.",
    ),
    mv_display(DISPLAY_DESC),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function, e.g., 'work' or 'home'.",
    )
    .canonical(&["work", "home", "other"]),
    mv_primary(PRIMARY_DESC),
];

static PHONE_SUBS: [AttrDef; 4] = [
    AttrDef::new("value", T::String, "Phone number of the User."),
    mv_display(DISPLAY_DESC),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function, e.g., 'work', 'home', 'mobile'.",
    )
    .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    mv_primary(PRIMARY_DESC),
];

static IMS_SUBS: [AttrDef; 4] = [
    AttrDef::new(
        "value",
        T::String,
        "Instant messaging address for the User.",
    ),
    mv_display(DISPLAY_DESC),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function, e.g., 'aim', 'gtalk', 'xmpp'.",
    )
    .canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    mv_primary(PRIMARY_DESC),
];

static PHOTO_SUBS: [AttrDef; 4] = [
    AttrDef::new("value", T::Reference, "URL of a photo of the User.").refs(&["external"]),
    mv_display(DISPLAY_DESC),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.",
    )
    .canonical(&["photo", "thumbnail"]),
    mv_primary(PRIMARY_DESC),
];

static ADDRESS_SUBS: [AttrDef; 8] = [
    AttrDef::new(
        "formatted",
        T::String,
        "The full mailing address, formatted for display or use with a mailing label.",
    ),
    AttrDef::new(
        "streetAddress",
        T::String,
        "The full street address component, which may include house number, street name, P.O. box, and multi-line extended street address information.",
    ),
    AttrDef::new("locality", T::String, "The city or locality component."),
    AttrDef::new("region", T::String, "The state or region component."),
    AttrDef::new("postalCode", T::String, "The zip code or postal code component."),
    AttrDef::new("country", T::String, "The country name component."),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function, e.g., 'work' or 'home'.",
    )
    .canonical(&["work", "home", "other"]),
    mv_primary(PRIMARY_DESC),
];

static GROUPS_SUBS: [AttrDef; 4] = [
    AttrDef::new("value", T::String, "The identifier of the User's group.").read_only(),
    AttrDef::new(
        "$ref",
        T::Reference,
        "The URI of the corresponding 'Group' resource to which the user belongs.",
    )
    .refs(&["User", "Group"])
    .read_only(),
    AttrDef::new("display", T::String, DISPLAY_DESC).read_only(),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.",
    )
    .canonical(&["direct", "indirect"])
    .read_only(),
];

static ENTITLEMENT_SUBS: [AttrDef; 4] = [
    AttrDef::new("value", T::String, "The value of an entitlement."),
    mv_display(DISPLAY_DESC),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function.",
    ),
    mv_primary(PRIMARY_DESC),
];

static ROLE_SUBS: [AttrDef; 4] = [
    AttrDef::new("value", T::String, "The value of a role."),
    mv_display(DISPLAY_DESC),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function.",
    ),
    mv_primary(PRIMARY_DESC),
];

static X509_SUBS: [AttrDef; 4] = [
    AttrDef::new("value", T::Binary, "The value of an X.509 certificate."),
    mv_display(DISPLAY_DESC),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the attribute's function.",
    ),
    mv_primary(PRIMARY_DESC),
];

static USER_ATTRS: [AttrDef; 21] = [
    AttrDef::new(
        "userName",
        T::String,
        "Unique identifier for the User, typically used by the user to directly authenticate to the service provider. Each User MUST include a non-empty userName value. This identifier MUST be unique across the service provider's entire set of Users. REQUIRED.",
    )
    .required()
    .unique(Uniqueness::Server),
    AttrDef::new(
        "name",
        T::Complex,
        "The components of the user's real name. Providers MAY return just the full name as a single string in the formatted sub-attribute, or they MAY return just the individual component attributes using the other sub-attributes, or they MAY return both.",
    )
    .subs(&NAME_SUBS),
    AttrDef::new(
        "displayName",
        T::String,
        "The name of the User, suitable for display to end-users. The name SHOULD be the full name of the User being described, if known.",
    ),
    AttrDef::new(
        "nickName",
        T::String,
        "The casual way to address the user in real life, e.g., 'Bob' or 'Bobby' instead of 'Robert'.",
    ),
    AttrDef::new(
        "profileUrl",
        T::Reference,
        "A fully qualified URL pointing to a page representing the User's online profile.",
    )
    .refs(&["external"]),
    AttrDef::new(
        "title",
        T::String,
        "The user's title, such as \"Vice President.\"",
    ),
    AttrDef::new(
        "userType",
        T::String,
        "Used to identify the relationship between the organization and the user. Typical values used might be 'Contractor', 'Employee', 'Intern', 'Temp', 'External', and 'Unknown', but any value may be used.",
    ),
    AttrDef::new(
        "preferredLanguage",
        T::String,
        "Indicates the User's preferred written or spoken language. Generally used for selecting a localized user interface; e.g., 'en_US' specifies the language English and country US.",
    ),
    AttrDef::new(
        "locale",
        T::String,
        "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations.",
    ),
    AttrDef::new(
        "timezone",
        T::String,
        "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'.",
    ),
    AttrDef::new(
        "active",
        T::Boolean,
        "A Boolean value indicating the User's administrative status.",
    ),
    AttrDef::new(
        "password",
        T::String,
        "The User's cleartext password. This attribute is intended to be used as a means to specify an initial password when creating a new User or to reset an existing User's password.",
    )
    .mutability(Mutability::WriteOnly)
    .returned(Returned::Never),
    AttrDef::new(
        "emails",
        T::Complex,
        "Email addresses for the user. The value SHOULD be canonicalized by the service provider, e.g., 'bjensen@example.com' instead of 'bjensen@EXAMPLE.COM'. Canonical type values of 'work', 'home', and 'other'.",
    )
    .multi()
    .subs(&EMAIL_SUBS),
    AttrDef::new(
        "phoneNumbers",
        T::Complex,
        "Phone numbers for the User. The value SHOULD be canonicalized by the service provider according to the format specified in RFC 3966, e.g., 'tel:+1-201-555-0123'. Canonical type values of 'work', 'home', 'mobile', 'fax', 'pager', and 'other'.",
    )
    .multi()
    .subs(&PHONE_SUBS),
    AttrDef::new(
        "ims",
        T::Complex,
        "Instant messaging addresses for the User.",
    )
    .multi()
    .subs(&IMS_SUBS),
    AttrDef::new("photos", T::Complex, "URLs of photos of the User.")
        .multi()
        .subs(&PHOTO_SUBS),
    AttrDef::new(
        "addresses",
        T::Complex,
        "A physical mailing address for this User. Canonical type values of 'work', 'home', and 'other'.",
    )
    .multi()
    .subs(&ADDRESS_SUBS),
    AttrDef::new(
        "groups",
        T::Complex,
        "A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.",
    )
    .multi()
    .read_only()
    .subs(&GROUPS_SUBS),
    AttrDef::new(
        "entitlements",
        T::Complex,
        "A list of entitlements for the User that represent a thing the User has.",
    )
    .multi()
    .subs(&ENTITLEMENT_SUBS),
    AttrDef::new(
        "roles",
        T::Complex,
        "A list of roles for the User that collectively represent who the User is, e.g., 'Student', 'Faculty'.",
    )
    .multi()
    .subs(&ROLE_SUBS),
    AttrDef::new(
        "x509Certificates",
        T::Complex,
        "A list of certificates issued to the User.",
    )
    .multi()
    .subs(&X509_SUBS),
];

static MANAGER_SUBS: [AttrDef; 3] = [
    AttrDef::new(
        "value",
        T::String,
        "The id of the SCIM resource representing the User's manager. REQUIRED.",
    ),
    AttrDef::new(
        "$ref",
        T::Reference,
        "The URI of the SCIM resource representing the User's manager. REQUIRED.",
    )
    .refs(&["User"]),
    AttrDef::new(
        "displayName",
        T::String,
        "The displayName of the User's manager. OPTIONAL and READ-ONLY.",
    )
    .read_only(),
];

static ENTERPRISE_ATTRS: [AttrDef; 6] = [
    AttrDef::new(
        "employeeNumber",
        T::String,
        "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization.",
    ),
    AttrDef::new(
        "costCenter",
        T::String,
        "Identifies the name of a cost center.",
    ),
    AttrDef::new(
        "organization",
        T::String,
        "Identifies the name of an organization.",
    ),
    AttrDef::new("division", T::String, "Identifies the name of a division."),
    AttrDef::new(
        "department",
        T::String,
        "Identifies the name of a department.",
    ),
    AttrDef::new(
        "manager",
        T::Complex,
        "The User's manager. A complex type that optionally allows service providers to represent organizational hierarchy by referencing the 'id' attribute of another User.",
    )
    .subs(&MANAGER_SUBS),
];

static MEMBER_SUBS: [AttrDef; 4] = [
    AttrDef::new(
        "value",
        T::String,
        "Identifier of the member of this Group.",
    )
    .mutability(Mutability::Immutable),
    AttrDef::new(
        "$ref",
        T::Reference,
        "The URI corresponding to a SCIM resource that is a member of this Group.",
    )
    .refs(&["User", "Group"])
    .mutability(Mutability::Immutable),
    AttrDef::new(
        "display",
        T::String,
        "A human-readable name for the member: the displayName of a Group, or of a User (its userName when it has none). Returned only when requested (attributes=members.display).",
    )
    .read_only()
    .returned(Returned::Request),
    AttrDef::new(
        "type",
        T::String,
        "A label indicating the type of resource, e.g., 'User' or 'Group'.",
    )
    .canonical(&["User", "Group"])
    .mutability(Mutability::Immutable),
];

static GROUP_ATTRS: [AttrDef; 2] = [
    AttrDef::new(
        "displayName",
        T::String,
        "A human-readable name for the Group. REQUIRED.",
    )
    .required()
    .unique(Uniqueness::Server),
    AttrDef::new("members", T::Complex, "A list of members of the Group.")
        .multi()
        .subs(&MEMBER_SUBS),
];

static META_SUBS: [AttrDef; 5] = [
    AttrDef::new(
        "resourceType",
        T::String,
        "The name of the resource type of the resource.",
    )
    .case_exact()
    .read_only(),
    AttrDef::new(
        "created",
        T::DateTime,
        "The DateTime that the resource was added to the service provider.",
    )
    .read_only(),
    AttrDef::new(
        "lastModified",
        T::DateTime,
        "The most recent DateTime that the details of this resource were updated at the service provider.",
    )
    .read_only(),
    AttrDef::new(
        "location",
        T::Reference,
        "The URI of the resource being returned.",
    )
    .refs(&["uri"])
    .case_exact()
    .read_only(),
    AttrDef::new(
        "version",
        T::String,
        "The version of the resource being returned.",
    )
    .case_exact()
    .read_only(),
];

/// The attributes common to all resources (RFC 7643 §3.1), defined outside any schema.
pub static COMMON_ATTRIBUTES: [AttrDef; 3] = [
    AttrDef::new(
        "id",
        T::String,
        "A unique identifier for a SCIM resource as defined by the service provider.",
    )
    .case_exact()
    .read_only()
    .returned(Returned::Always)
    .unique(Uniqueness::Server),
    AttrDef::new(
        "externalId",
        T::String,
        "A String that is an identifier for the resource as defined by the provisioning client.",
    )
    .case_exact(),
    AttrDef::new(
        "meta",
        T::Complex,
        "A complex attribute containing resource metadata.",
    )
    .read_only()
    .subs(&META_SUBS),
];

/// The core User schema (RFC 7643 §4.1).
pub static USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &USER_ATTRS,
};

/// The Enterprise User extension (RFC 7643 §4.3).
pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &ENTERPRISE_ATTRS,
};

/// The core Group schema (RFC 7643 §4.2).
pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &GROUP_ATTRS,
};

const fn ro(name: &'static str, ty: AttrType, description: &'static str) -> AttrDef {
    AttrDef::new(name, ty, description).read_only()
}
const fn supported(what: &'static str) -> AttrDef {
    ro("supported", T::Boolean, what).required()
}

static SPC_PATCH_SUBS: [AttrDef; 1] = [supported(
    "A Boolean value specifying whether or not the operation is supported.",
)];
static SPC_BULK_SUBS: [AttrDef; 3] = [
    supported("A Boolean value specifying whether or not the operation is supported."),
    ro(
        "maxOperations",
        T::Integer,
        "An integer value specifying the maximum number of operations.",
    )
    .required(),
    ro(
        "maxPayloadSize",
        T::Integer,
        "An integer value specifying the maximum payload size in bytes.",
    )
    .required(),
];
static SPC_FILTER_SUBS: [AttrDef; 2] = [
    supported("A Boolean value specifying whether or not the operation is supported."),
    ro(
        "maxResults",
        T::Integer,
        "An integer value specifying the maximum number of resources returned in a response.",
    )
    .required(),
];
static SPC_AUTH_SUBS: [AttrDef; 6] = [
    ro(
        "type",
        T::String,
        "The authentication scheme, e.g. 'oauthbearertoken'.",
    )
    .required()
    .canonical(&[
        "oauth",
        "oauth2",
        "oauthbearertoken",
        "httpbasic",
        "httpdigest",
    ]),
    ro(
        "name",
        T::String,
        "The common authentication scheme name, e.g., HTTP Basic.",
    )
    .required(),
    ro(
        "description",
        T::String,
        "A description of the authentication scheme.",
    )
    .required(),
    ro(
        "specUri",
        T::Reference,
        "An HTTP-addressable URL pointing to the authentication scheme's specification.",
    )
    .refs(&["external"]),
    ro(
        "documentationUri",
        T::Reference,
        "An HTTP-addressable URL pointing to the authentication scheme's usage documentation.",
    )
    .refs(&["external"]),
    ro(
        "primary",
        T::Boolean,
        "Whether this is the preferred authentication scheme.",
    ),
];

static SPC_ATTRS: [AttrDef; 8] = [
    ro(
        "documentationUri",
        T::Reference,
        "An HTTP-addressable URL pointing to the service provider's human-consumable help documentation.",
    )
    .refs(&["external"]),
    ro(
        "patch",
        T::Complex,
        "A complex type that specifies PATCH configuration options.",
    )
    .required()
    .subs(&SPC_PATCH_SUBS),
    ro(
        "bulk",
        T::Complex,
        "A complex type that specifies bulk configuration options.",
    )
    .required()
    .subs(&SPC_BULK_SUBS),
    ro(
        "filter",
        T::Complex,
        "A complex type that specifies FILTER options.",
    )
    .required()
    .subs(&SPC_FILTER_SUBS),
    ro(
        "changePassword",
        T::Complex,
        "A complex type that specifies configuration options related to changing a password.",
    )
    .required()
    .subs(&SPC_PATCH_SUBS),
    ro(
        "sort",
        T::Complex,
        "A complex type that specifies sort result options.",
    )
    .required()
    .subs(&SPC_PATCH_SUBS),
    ro(
        "etag",
        T::Complex,
        "A complex type that specifies ETag configuration options.",
    )
    .required()
    .subs(&SPC_PATCH_SUBS),
    ro(
        "authenticationSchemes",
        T::Complex,
        "A complex type that specifies supported authentication scheme properties.",
    )
    .multi()
    .required()
    .subs(&SPC_AUTH_SUBS),
];

static RT_EXT_SUBS: [AttrDef; 2] = [
    ro(
        "schema",
        T::Reference,
        "The URI of a schema extension.",
    )
    .refs(&["uri"])
    .required()
    .case_exact(),
    ro(
        "required",
        T::Boolean,
        "A Boolean value that specifies whether or not the schema extension is required for the resource type.",
    )
    .required(),
];

static RT_ATTRS: [AttrDef; 6] = [
    ro(
        "id",
        T::String,
        "The resource type's server unique id. May be the same as the 'name' attribute.",
    ),
    ro(
        "name",
        T::String,
        "The resource type name. When applicable, service providers MUST specify the name, e.g., 'User'.",
    )
    .required(),
    ro(
        "description",
        T::String,
        "The resource type's human-readable description.",
    ),
    ro(
        "endpoint",
        T::Reference,
        "The resource type's HTTP-addressable endpoint relative to the Base URL, e.g., '/Users'.",
    )
    .refs(&["uri"])
    .required(),
    ro(
        "schema",
        T::Reference,
        "The resource type's primary/base schema URI.",
    )
    .refs(&["uri"])
    .required()
    .case_exact(),
    ro(
        "schemaExtensions",
        T::Complex,
        "A list of URIs of the resource type's schema extensions.",
    )
    .multi()
    .subs(&RT_EXT_SUBS),
];

const TYPE_VALUES: &[&str] = &[
    "string",
    "complex",
    "boolean",
    "decimal",
    "integer",
    "dateTime",
    "reference",
    "binary",
];
const MUTABILITY_VALUES: &[&str] = &["readOnly", "readWrite", "immutable", "writeOnly"];
const RETURNED_VALUES: &[&str] = &["always", "never", "default", "request"];
const UNIQUENESS_VALUES: &[&str] = &["none", "server", "global"];

macro_rules! schema_attribute_subs {
    ($($extra:expr),*) => {
        [
            ro("name", T::String, "The attribute's name.").required().case_exact(),
            ro("type", T::String, "The attribute's data type.")
                .required()
                .canonical(TYPE_VALUES),
            ro(
                "multiValued",
                T::Boolean,
                "A Boolean value indicating an attribute's plurality.",
            )
            .required(),
            ro(
                "description",
                T::String,
                "A human-readable description of the attribute.",
            ),
            ro(
                "required",
                T::Boolean,
                "A boolean value indicating whether or not the attribute is required.",
            ),
            ro(
                "canonicalValues",
                T::String,
                "A collection of canonical values.",
            )
            .multi()
            .case_exact(),
            ro(
                "caseExact",
                T::Boolean,
                "A Boolean value indicating whether or not a string attribute is case sensitive.",
            ),
            ro(
                "mutability",
                T::String,
                "Indicates whether or not an attribute is modifiable.",
            )
            .case_exact()
            .canonical(MUTABILITY_VALUES),
            ro(
                "returned",
                T::String,
                "Indicates when an attribute is returned in a response (e.g., to a query).",
            )
            .case_exact()
            .canonical(RETURNED_VALUES),
            ro(
                "uniqueness",
                T::String,
                "Indicates how unique a value must be.",
            )
            .case_exact()
            .canonical(UNIQUENESS_VALUES),
            ro(
                "referenceTypes",
                T::String,
                "Used only with an attribute of type 'reference'. Specifies a SCIM resourceType that a reference attribute MAY refer to, e.g., 'User'.",
            )
            .multi()
            .case_exact()
            $(, $extra)*
        ]
    };
}

static SCHEMA_SUB_ATTRIBUTE_SUBS: [AttrDef; 11] = schema_attribute_subs!();
static SCHEMA_ATTRIBUTE_SUBS: [AttrDef; 12] = schema_attribute_subs!(ro(
    "subAttributes",
    T::Complex,
    "Used to define the sub-attributes of a complex attribute.",
)
.multi()
.subs(&SCHEMA_SUB_ATTRIBUTE_SUBS));

static SCHEMA_ATTRS: [AttrDef; 4] = [
    ro(
        "id",
        T::Reference,
        "The unique URI of the schema. When applicable, service providers MUST specify the URI.",
    )
    .refs(&["uri"])
    .required()
    .case_exact(),
    ro(
        "name",
        T::String,
        "The schema's human-readable name. When applicable, service providers MUST specify the name, e.g., 'User'.",
    ),
    ro(
        "description",
        T::String,
        "The schema's human-readable description. When applicable, service providers MUST specify the description.",
    ),
    ro(
        "attributes",
        T::Complex,
        "A complex attribute that includes the attributes of a schema.",
    )
    .multi()
    .required()
    .subs(&SCHEMA_ATTRIBUTE_SUBS),
];

/// The ServiceProviderConfig schema (RFC 7643 §5, §8.7.2).
pub static SERVICE_PROVIDER_CONFIG: SchemaDef = SchemaDef {
    id: SERVICE_PROVIDER_CONFIG_SCHEMA,
    name: "ServiceProviderConfig",
    description: "Schema for representing the service provider's configuration",
    attributes: &SPC_ATTRS,
};

/// The ResourceType schema (RFC 7643 §6, §8.7.2).
pub static RESOURCE_TYPE: SchemaDef = SchemaDef {
    id: RESOURCE_TYPE_SCHEMA,
    name: "ResourceType",
    description: "Specifies the schema that describes a SCIM resource type",
    attributes: &RT_ATTRS,
};

/// The Schema schema (RFC 7643 §7, §8.7.2).
pub static SCHEMA: SchemaDef = SchemaDef {
    id: SCHEMA_SCHEMA,
    name: "Schema",
    description: "Specifies the schema attribute and sub-attributes of a SCIM resource",
    attributes: &SCHEMA_ATTRS,
};

/// Every schema `/Schemas` publishes, resource schemas first.
pub static ALL_SCHEMAS: [&SchemaDef; 6] = [
    &USER,
    &ENTERPRISE_USER,
    &GROUP,
    &SERVICE_PROVIDER_CONFIG,
    &RESOURCE_TYPE,
    &SCHEMA,
];

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
    /// The extension schema holding the attribute, if it lives in one.
    pub fn extension(&self) -> Option<&'static SchemaDef> {
        self.schema.filter(|_| self.is_extension())
    }
}

static USER_EXTENSIONS: [&SchemaDef; 1] = [&ENTERPRISE_USER];

impl ResourceKind {
    /// Both kinds.
    pub const ALL: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

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

    /// The kind named `"User"` or `"Group"` (case-insensitive), as in a member's `type`.
    pub fn from_name(name: &str) -> Option<ResourceKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// The core schema of the resource type.
    pub fn core_schema(self) -> &'static SchemaDef {
        match self {
            ResourceKind::User => &USER,
            ResourceKind::Group => &GROUP,
        }
    }

    /// The extension schemas the resource type accepts (none is required).
    pub fn extensions(self) -> &'static [&'static SchemaDef] {
        match self {
            ResourceKind::User => &USER_EXTENSIONS,
            ResourceKind::Group => &[],
        }
    }

    /// The core schema followed by the extensions.
    pub fn schemas(self) -> impl Iterator<Item = &'static SchemaDef> {
        std::iter::once(self.core_schema()).chain(self.extensions().iter().copied())
    }

    /// The URNs of [`ResourceKind::schemas`].
    pub fn schema_ids(self) -> Vec<&'static str> {
        self.schemas().map(|s| s.id).collect()
    }

    /// The extension whose URN is `urn` (case-insensitive).
    pub fn extension(self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions()
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The schema (core or extension) whose URN is `urn` (case-insensitive).
    pub fn schema(self, urn: &str) -> Option<&'static SchemaDef> {
        self.schemas().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Splits `urn:...:Schema:attr.sub` into the schema of this kind that prefixes it
    /// and the rest (`attr.sub`). `None` when no schema of this kind prefixes it.
    pub fn split_urn(self, qualified: &str) -> Option<(&'static SchemaDef, &str)> {
        self.schemas().find_map(|s| {
            let prefix = qualified.get(..s.id.len())?;
            let rest = qualified.get(s.id.len()..)?;
            if prefix.eq_ignore_ascii_case(s.id) {
                rest.strip_prefix(':').map(|r| (s, r))
            } else {
                None
            }
        })
    }

    /// Resolves an attribute path (case-insensitively, URN-qualified or not) to its
    /// definition. An unqualified name is looked up among the common attributes and
    /// the core schema first, then the extensions. Unknown attributes are an
    /// `invalidPath`/`invalidFilter` decision left to the caller: this returns `None`.
    pub fn resolve(self, path: &AttrPath) -> Option<Resolved> {
        match &path.schema {
            Some(urn) => {
                let schema = self.schema(urn).or_else(|| {
                    // `urn:...:2.0:User` split at its last colon by a parser that
                    // did not know the schema: re-join and split on a known URN.
                    self.split_urn(&format!("{urn}:{}", path.attr))
                        .filter(|(_, rest)| rest.is_empty())
                        .map(|(s, _)| s)
                })?;
                let (attr, dotted_sub) = split_dot(&path.attr);
                let sub = path.sub_attr.as_deref().or(dotted_sub);
                let def = schema.attr(attr).or_else(|| {
                    if std::ptr::eq(schema, self.core_schema()) {
                        find_attr(&COMMON_ATTRIBUTES, attr)
                    } else {
                        None
                    }
                })?;
                let schema =
                    (!COMMON_ATTRIBUTES.iter().any(|c| std::ptr::eq(c, def))).then_some(schema);
                Self::with_sub(schema, def, sub)
            }
            None => {
                if let Some((schema, rest)) = self.split_urn(&path.attr) {
                    let (attr, dotted_sub) = split_dot(rest);
                    let qualified = AttrPath {
                        schema: Some(schema.id.to_string()),
                        attr: attr.to_string(),
                        sub_attr: path.sub_attr.clone().or(dotted_sub.map(str::to_string)),
                    };
                    return self.resolve(&qualified);
                }
                let (attr, dotted_sub) = split_dot(&path.attr);
                let sub = path.sub_attr.as_deref().or(dotted_sub);
                if let Some(def) = find_attr(&COMMON_ATTRIBUTES, attr) {
                    return Self::with_sub(None, def, sub);
                }
                self.schemas()
                    .find_map(|s| s.attr(attr).map(|d| (s, d)))
                    .and_then(|(s, d)| Self::with_sub(Some(s), d, sub))
            }
        }
    }

    fn with_sub(
        schema: Option<&'static SchemaDef>,
        attr: &'static AttrDef,
        sub: Option<&str>,
    ) -> Option<Resolved> {
        let sub = match sub {
            Some(name) => Some(attr.sub(name)?),
            None => None,
        };
        Some(Resolved { schema, attr, sub })
    }

    /// Like [`ResourceKind::resolve`] but an error (`invalidFilter`) when unknown.
    pub fn resolve_filter_attr(self, path: &AttrPath) -> Result<Resolved> {
        self.resolve(path).ok_or_else(|| {
            crate::ScimError::invalid_filter(format!("unknown attribute {}", path.attr))
        })
    }
}

/// `name.givenName` → (`name`, Some(`givenName`)).
fn split_dot(s: &str) -> (&str, Option<&str>) {
    match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(schema: Option<&str>, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            schema: schema.map(str::to_string),
            attr: attr.to_string(),
            sub_attr: sub.map(str::to_string),
        }
    }

    #[test]
    fn user_schema_lists_rfc_attributes() {
        let names: Vec<_> = USER.attributes.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                "userName",
                "name",
                "displayName",
                "nickName",
                "profileUrl",
                "title",
                "userType",
                "preferredLanguage",
                "locale",
                "timezone",
                "active",
                "password",
                "emails",
                "phoneNumbers",
                "ims",
                "photos",
                "addresses",
                "groups",
                "entitlements",
                "roles",
                "x509Certificates"
            ]
        );
        let user_name = USER.attr("username").unwrap();
        assert!(user_name.required && !user_name.case_exact);
        assert_eq!(user_name.uniqueness, Uniqueness::Server);
        let password = USER.attr("password").unwrap();
        assert_eq!(password.mutability, Mutability::WriteOnly);
        assert_eq!(password.returned, Returned::Never);
        assert_eq!(
            USER.attr("groups").unwrap().mutability,
            Mutability::ReadOnly
        );
        assert!(USER.attr("emails").unwrap().has_primary());
    }

    #[test]
    fn common_attributes() {
        let id = &COMMON_ATTRIBUTES[0];
        assert_eq!(id.name, "id");
        assert!(id.case_exact);
        assert_eq!(id.returned, Returned::Always);
        assert_eq!(id.mutability, Mutability::ReadOnly);
        assert!(COMMON_ATTRIBUTES[1].case_exact);
        assert_eq!(COMMON_ATTRIBUTES[2].mutability, Mutability::ReadOnly);
    }

    #[test]
    fn resolve_unqualified_case_insensitive() {
        let r = ResourceKind::User
            .resolve(&path(None, "USERNAME", None))
            .unwrap();
        assert_eq!(r.attr.name, "userName");
        assert!(std::ptr::eq(r.schema.unwrap(), &USER));
        let r = ResourceKind::User
            .resolve(&path(None, "name", Some("GIVENNAME")))
            .unwrap();
        assert_eq!(r.leaf().name, "givenName");
        let r = ResourceKind::User
            .resolve(&path(None, "emails.value", None))
            .unwrap();
        assert_eq!(r.leaf().name, "value");
        let r = ResourceKind::User.resolve(&path(None, "id", None)).unwrap();
        assert!(r.schema.is_none());
        let r = ResourceKind::User
            .resolve(&path(None, "meta", Some("lastModified")))
            .unwrap();
        assert_eq!(r.leaf().ty, AttrType::DateTime);
    }

    #[test]
    fn resolve_core_before_extension() {
        // displayName exists in the core User schema and manager.displayName in
        // the extension: the unqualified name is the core one.
        let r = ResourceKind::User
            .resolve(&path(None, "displayName", None))
            .unwrap();
        assert!(!r.is_extension());
        let r = ResourceKind::User
            .resolve(&path(None, "department", None))
            .unwrap();
        assert!(r.is_extension());
        assert!(r.extension().is_some());
    }

    #[test]
    fn resolve_qualified() {
        let r = ResourceKind::User
            .resolve(&path(
                Some(ENTERPRISE_USER_SCHEMA),
                "manager",
                Some("value"),
            ))
            .unwrap();
        assert!(r.is_extension());
        assert_eq!(r.leaf().name, "value");
        let r = ResourceKind::User
            .resolve(&path(
                Some("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"),
                "userName",
                None,
            ))
            .unwrap();
        assert_eq!(r.attr.name, "userName");
        let r = ResourceKind::User
            .resolve(&path(Some(USER_SCHEMA), "id", None))
            .unwrap();
        assert!(r.schema.is_none());
        // A whole URN in `attr` (no parser split).
        let r = ResourceKind::User
            .resolve(&path(
                None,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
                None,
            ))
            .unwrap();
        assert_eq!(r.leaf().mutability, Mutability::ReadOnly);
        // An extension attribute qualified with the core schema is unknown.
        assert!(ResourceKind::User
            .resolve(&path(Some(USER_SCHEMA), "department", None))
            .is_none());
        assert!(ResourceKind::Group
            .resolve(&path(Some(ENTERPRISE_USER_SCHEMA), "department", None))
            .is_none());
    }

    #[test]
    fn resolve_unknown() {
        assert!(ResourceKind::User
            .resolve(&path(None, "nope", None))
            .is_none());
        assert!(ResourceKind::User
            .resolve(&path(None, "name", Some("nope")))
            .is_none());
        assert!(ResourceKind::Group
            .resolve(&path(None, "userName", None))
            .is_none());
        let e = ResourceKind::Group
            .resolve_filter_attr(&path(None, "userName", None))
            .unwrap_err();
        assert_eq!(e.scim_type, Some(crate::ScimType::InvalidFilter));
    }

    #[test]
    fn group_members() {
        let r = ResourceKind::Group
            .resolve(&path(None, "members", Some("value")))
            .unwrap();
        assert_eq!(r.leaf().mutability, Mutability::Immutable);
        let t = ResourceKind::Group
            .resolve(&path(None, "members", Some("type")))
            .unwrap();
        assert_eq!(t.leaf().canonical_values, ["User", "Group"]);
        assert!(GROUP.attr("displayName").unwrap().required);
        let d = ResourceKind::Group
            .resolve(&path(None, "members", Some("display")))
            .unwrap();
        assert_eq!(d.leaf().returned, Returned::Request);
    }

    #[test]
    fn kinds() {
        assert_eq!(ResourceKind::from_name("group"), Some(ResourceKind::Group));
        assert_eq!(ResourceKind::from_name("x"), None);
        assert_eq!(
            ResourceKind::User.schema_ids(),
            [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]
        );
        assert_eq!(ResourceKind::Group.schema_ids(), [GROUP_SCHEMA]);
        let (s, rest) = ResourceKind::User
            .split_urn("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
            .unwrap();
        assert_eq!(s.id, ENTERPRISE_USER_SCHEMA);
        assert_eq!(rest, "manager.value");
        assert!(ResourceKind::User.split_urn("urn:x:y").is_none());
    }
}
