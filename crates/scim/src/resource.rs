//! Resource bodies: validation and canonicalisation of POST/PUT bodies against the
//! schema tables ([`normalize`]), the immutability check of PUT
//! ([`check_immutable`]), and the `attributes`/`excludedAttributes` projection of
//! responses (RFC 7644 §3.4.2.5, §3.9; [`parse_attr_list`], [`project`]).
//!
//! The stored form of a resource (`doc`) holds canonical attribute names, the
//! enterprise attributes nested under their schema URN, and a `schemas` array; it
//! never holds `id`, `meta`, `password`, User `groups` or Group `members`.

use crate::error::{Result, ScimError};
use crate::filter::AttrPath;
use crate::schema::{
    AttrDef, AttrType, Mutability, Resolved, ResourceKind, Returned, SchemaDef, ENTERPRISE_USER,
    GROUP, USER,
};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One member of a group as a client wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// The member's `id`.
    pub value: String,
    /// From the member's `type` (`"User"` or `"Group"`), when given.
    pub kind: Option<ResourceKind>,
    /// The client's `display`, informational only.
    pub display: Option<String>,
}

/// A validated POST/PUT body.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The stored form (see the module documentation).
    pub doc: Value,
    /// The cleartext `password` of a User, when given.
    pub password: Option<String>,
    /// The `members` of a Group, when the body has the attribute (`Some(vec![])`
    /// for an explicit empty list).
    pub members: Option<Vec<MemberValue>>,
}

/// Validates a POST or PUT body and turns it into the stored form.
///
/// `schemas` must list the core schema (`invalidSyntax`). Attribute names are
/// matched case-insensitively and rewritten to their defined case; readOnly and
/// unknown attributes are dropped silently (RFC 7644 §3.5.1); values are checked
/// against their types (`invalidValue`, naming the attribute); required
/// attributes must be present and non-empty (`invalidValue`). A User's
/// `password` and a Group's `members` are taken out of the document.
pub fn normalize(kind: ResourceKind, body: &Value) -> Result<Normalized> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the resource must be a JSON object"))?;
    check_schemas(kind, obj)?;
    normalize_map(kind, obj)
}

/// [`normalize`] without the `schemas` requirement: the re-validation of a
/// document after PATCH.
pub(crate) fn normalize_map(kind: ResourceKind, obj: &Map<String, Value>) -> Result<Normalized> {
    let mut core = Map::new();
    let mut exts: Vec<(&'static SchemaDef, Map<String, Value>)> = Vec::new();
    let mut password = None;
    let mut members = None;
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = kind.extension(key) {
            let inner = match value {
                Value::Null => continue,
                Value::Object(o) => o,
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "'{}' must be an object",
                        ext.id
                    )))
                }
            };
            for (k, v) in inner {
                if let Some(def) = ext.attr(k).filter(|d| d.mutability != Mutability::ReadOnly) {
                    if let Some(v) = check_writable(def, v, def.name)? {
                        ext_map(&mut exts, ext).insert(def.name.to_string(), v);
                    }
                }
            }
            continue;
        }
        let Some(resolved) = resolve_key(kind, key) else {
            continue;
        };
        if resolved.sub.is_some() {
            continue;
        }
        let def = resolved.attr;
        if def.mutability == Mutability::ReadOnly {
            continue;
        }
        if kind == ResourceKind::Group && def.name == "members" {
            members = Some(parse_members(value)?);
            continue;
        }
        let Some(v) = check_writable(def, value, def.name)? else {
            continue;
        };
        if kind == ResourceKind::User && def.name == "password" {
            password = v.as_str().map(str::to_string);
            continue;
        }
        match resolved.extension() {
            Some(ext) => {
                ext_map(&mut exts, ext).insert(def.name.to_string(), v);
            }
            None => {
                core.insert(def.name.to_string(), v);
            }
        }
    }
    let core_schema = kind.core_schema();
    for def in core_schema.attributes {
        if def.required && is_unassigned(core.get(def.name)) {
            return Err(ScimError::invalid_value(format!(
                "attribute '{}' is required",
                def.name
            )));
        }
    }
    let mut doc = Map::new();
    let mut schemas = vec![Value::from(core_schema.id)];
    exts.retain(|(_, m)| !m.is_empty());
    for ext in kind.extensions() {
        if exts.iter().any(|(s, _)| std::ptr::eq(*s, *ext)) {
            schemas.push(Value::from(ext.id));
        }
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    doc.extend(core);
    for ext in kind.extensions() {
        if let Some(i) = exts.iter().position(|(s, _)| std::ptr::eq(*s, *ext)) {
            let (_, m) = exts.swap_remove(i);
            doc.insert(ext.id.to_string(), Value::Object(m));
        }
    }
    Ok(Normalized {
        doc: Value::Object(doc),
        password,
        members,
    })
}

fn ext_map<'a>(
    exts: &'a mut Vec<(&'static SchemaDef, Map<String, Value>)>,
    ext: &'static SchemaDef,
) -> &'a mut Map<String, Value> {
    let i = match exts.iter().position(|(s, _)| std::ptr::eq(*s, ext)) {
        Some(i) => i,
        None => {
            exts.push((ext, Map::new()));
            exts.len() - 1
        }
    };
    &mut exts[i].1
}

fn is_unassigned(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

fn check_schemas(kind: ResourceKind, obj: &Map<String, Value>) -> Result<()> {
    let core = kind.core_schema().id;
    let schemas = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
        .ok_or_else(|| ScimError::invalid_syntax(format!("'schemas' must list {core}")))?;
    let list = schemas
        .as_array()
        .ok_or_else(|| ScimError::invalid_syntax("'schemas' must be an array of URNs"))?;
    let mut has_core = false;
    for s in list {
        let s = s
            .as_str()
            .ok_or_else(|| ScimError::invalid_syntax("'schemas' must be an array of URNs"))?;
        has_core |= s.eq_ignore_ascii_case(core);
    }
    if has_core {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "'schemas' must list {core}"
        )))
    }
}

/// Resolves a top-level JSON key of a resource body or a path-less PATCH value:
/// a core (or common) attribute name, possibly dotted (`name.givenName`), or a
/// URN-qualified name of the core schema or an extension.
pub(crate) fn resolve_key(kind: ResourceKind, key: &str) -> Option<Resolved> {
    if let Some((schema, rest)) = kind.split_urn(key) {
        return kind.resolve(&AttrPath {
            schema: Some(schema.id.to_string()),
            attr: rest.to_string(),
            sub_attr: None,
        });
    }
    kind.resolve(&AttrPath {
        schema: Some(kind.core_schema().id.to_string()),
        attr: key.to_string(),
        sub_attr: None,
    })
}

/// Parses a `members` value: an array of `{"value", "type"?, "display"?}` objects
/// (a single object is tolerated). Each needs a non-empty string `value`.
pub(crate) fn parse_members(v: &Value) -> Result<Vec<MemberValue>> {
    let items: Vec<&Value> = match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        _ => return Err(ScimError::invalid_value("'members' must be an array")),
    };
    let mut out: Vec<MemberValue> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in items {
        let obj = item
            .as_object()
            .ok_or_else(|| ScimError::invalid_value("each member must be an object"))?;
        let field = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .filter(|v| !v.is_null())
        };
        let value = match field("value") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                return Err(ScimError::invalid_value(
                    "attribute 'members.value' must be a non-empty string",
                ))
            }
        };
        let kind = match field("type") {
            None => None,
            Some(Value::String(s)) => Some(ResourceKind::from_name(s).ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "attribute 'members.type' must be \"User\" or \"Group\", not {s:?}"
                ))
            })?),
            Some(_) => {
                return Err(ScimError::invalid_value(
                    "attribute 'members.type' must be a string",
                ))
            }
        };
        let display = field("display").and_then(Value::as_str).map(str::to_string);
        if seen.insert(value.clone()) {
            out.push(MemberValue {
                value,
                kind,
                display,
            });
        }
    }
    Ok(out)
}

/// Checks a value written to `def` (named `name` in errors): readOnly
/// sub-attributes are dropped. `None` when the value leaves the attribute
/// unassigned (null, empty array, empty complex value).
pub(crate) fn check_writable(def: &AttrDef, v: &Value, name: &str) -> Result<Option<Value>> {
    if v.is_null() {
        return Ok(None);
    }
    if !def.multi_valued {
        return check_single(def, v, name);
    }
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) if def.ty == AttrType::Complex => vec![v],
        _ => {
            return Err(ScimError::invalid_value(format!(
                "attribute '{name}' is multi-valued and must be an array"
            )))
        }
    };
    let mut out: Vec<Value> = Vec::new();
    // Exact duplicates are dropped; the set keeps this linear in the list's size.
    let mut seen = std::collections::HashSet::new();
    for item in items {
        if item.is_null() {
            continue;
        }
        if let Some(c) = check_single(def, item, name)? {
            if seen.insert(c.to_string()) {
                out.push(c);
            }
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    check_primary(def, &out, name)?;
    Ok(Some(Value::Array(out)))
}

/// Checks one value of `def` (an element when `def` is multi-valued).
pub(crate) fn check_single(def: &AttrDef, v: &Value, name: &str) -> Result<Option<Value>> {
    if v.is_null() {
        return Ok(None);
    }
    if def.ty == AttrType::Complex {
        return check_complex(def, v, name);
    }
    check_scalar(def.ty, v, name).map(Some)
}

fn check_complex(def: &AttrDef, v: &Value, name: &str) -> Result<Option<Value>> {
    let obj = match v {
        Value::Object(o) => o,
        // `"manager": "id"` (Entra ID) stands for `{"value": "id"}`.
        Value::String(_) if def.sub("value").is_some() => {
            let mut o = Map::new();
            o.insert("value".into(), v.clone());
            return check_complex(def, &Value::Object(o), name);
        }
        _ => {
            return Err(ScimError::invalid_value(format!(
                "attribute '{name}' must be an object"
            )))
        }
    };
    let mut out = Map::new();
    for (k, sv) in obj {
        let Some(sub) = def.sub(k) else {
            continue;
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(c) = check_writable(sub, sv, &format!("{name}.{}", sub.name))? {
            out.insert(sub.name.to_string(), c);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn check_scalar(ty: AttrType, v: &Value, name: &str) -> Result<Value> {
    let wrong = |what: &str| ScimError::invalid_value(format!("attribute '{name}' must be {what}"));
    match ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => match v {
            Value::String(_) => Ok(v.clone()),
            _ => Err(wrong("a string")),
        },
        AttrType::Boolean => match v {
            Value::Bool(_) => Ok(v.clone()),
            // Entra ID sends "True"/"False".
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(wrong("a boolean")),
        },
        AttrType::Integer => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            _ => Err(wrong("an integer")),
        },
        AttrType::Decimal => match v {
            Value::Number(_) => Ok(v.clone()),
            _ => Err(wrong("a number")),
        },
        AttrType::DateTime => match v {
            Value::String(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => Ok(v.clone()),
            _ => Err(wrong("an RFC 3339 date-time string")),
        },
        AttrType::Complex => Err(wrong("an object")),
    }
}

/// At most one value of a multi-valued attribute may be `primary: true`.
pub(crate) fn check_primary(def: &AttrDef, values: &[Value], name: &str) -> Result<()> {
    if !def.has_primary() {
        return Ok(());
    }
    let n = values.iter().filter(|v| is_primary(v)).count();
    if n > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one value of '{name}' may be primary"
        )));
    }
    Ok(())
}

pub(crate) fn is_primary(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool) == Some(true)
}

/// For PUT: an immutable attribute that had a value must keep it (`mutability`).
pub fn check_immutable(kind: ResourceKind, old_doc: &Value, new_doc: &Value) -> Result<()> {
    for schema in kind.schemas() {
        let (old, new) = if std::ptr::eq(schema, kind.core_schema()) {
            (Some(old_doc), Some(new_doc))
        } else {
            (old_doc.get(schema.id), new_doc.get(schema.id))
        };
        check_immutable_attrs(schema.attributes, old, new, "")?;
    }
    Ok(())
}

fn check_immutable_attrs(
    defs: &[AttrDef],
    old: Option<&Value>,
    new: Option<&Value>,
    prefix: &str,
) -> Result<()> {
    let Some(old) = old else {
        return Ok(());
    };
    for def in defs {
        let before = old.get(def.name).filter(|v| !v.is_null());
        let Some(before) = before else {
            continue;
        };
        let after = new.and_then(|n| n.get(def.name));
        let name = format!("{prefix}{}", def.name);
        if def.mutability == Mutability::Immutable && after != Some(before) {
            return Err(ScimError::mutability(format!(
                "attribute '{name}' is immutable"
            )));
        }
        if def.ty == AttrType::Complex && !def.multi_valued {
            check_immutable_attrs(def.sub_attributes, Some(before), after, &format!("{name}."))?;
        }
    }
    Ok(())
}

/// Parses an `attributes` or `excludedAttributes` parameter: comma-separated
/// attribute paths, URN-qualified or not (`userName,name.givenName,
/// urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`). A bare
/// extension URN stands for all its attributes. Names of unknown schemas are
/// ignored; a malformed entry is `invalidValue`.
pub fn parse_attr_list(s: &str) -> Result<Vec<AttrPath>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            if let Some(schema) = [&USER, &ENTERPRISE_USER, &GROUP]
                .into_iter()
                .find(|s| s.id.eq_ignore_ascii_case(item))
            {
                out.extend(schema.attributes.iter().map(|a| AttrPath {
                    schema: Some(schema.id.to_string()),
                    attr: a.name.to_string(),
                    sub_attr: None,
                }));
                continue;
            }
            let split = ResourceKind::ALL
                .into_iter()
                .find_map(|k| k.split_urn(item));
            if let Some((schema, rest)) = split {
                let (attr, sub) = split_name(item, rest)?;
                out.push(AttrPath {
                    schema: Some(schema.id.to_string()),
                    attr,
                    sub_attr: sub,
                });
            }
            continue;
        }
        let (attr, sub) = split_name(item, item)?;
        out.push(AttrPath {
            schema: None,
            attr,
            sub_attr: sub,
        });
    }
    Ok(out)
}

fn split_name(item: &str, name: &str) -> Result<(String, Option<String>)> {
    let valid = |n: &str| {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let (attr, sub) = match name.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (name, None),
    };
    if !valid(attr) || !sub.is_none_or(valid) {
        return Err(ScimError::invalid_value(format!(
            "{item:?} is not an attribute name"
        )));
    }
    Ok((attr.to_string(), sub.map(str::to_string)))
}

/// Applies `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) and the
/// `returned` characteristics to a resource in its wire form. Attributes returned
/// `always` (`id`, `schemas`) stay; `never` ones (`password`) go; `request` ones stay
/// only when asked for. With a non-empty `attributes`, only those (and `always`
/// ones) stay, down to sub-attributes (`name.givenName`); `excluded` removes
/// attributes or sub-attributes. Paths that name no attribute are ignored.
/// Complex values and extension objects left empty are removed.
pub fn project(
    kind: ResourceKind,
    resource: &mut Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let sel = Selection {
        attributes: attributes.iter().filter_map(|p| kind.resolve(p)).collect(),
        excluded: excluded.iter().filter_map(|p| kind.resolve(p)).collect(),
    };
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let keep = if let Some(ext) = kind.extension(&key) {
            match obj.get_mut(&key) {
                Some(Value::Object(inner)) => {
                    let inner_keys: Vec<String> = inner.keys().cloned().collect();
                    for k in inner_keys {
                        let keep = match (ext.attr(&k), inner.get_mut(&k)) {
                            (Some(def), Some(v)) => sel.keep(def, v),
                            _ => sel.attributes.is_empty(),
                        };
                        if !keep {
                            inner.remove(&k);
                        }
                    }
                    !inner.is_empty()
                }
                _ => false,
            }
        } else {
            match (resolve_key(kind, &key), obj.get_mut(&key)) {
                (Some(r), Some(v)) if r.sub.is_none() => sel.keep(r.attr, v),
                _ => sel.attributes.is_empty(),
            }
        };
        if !keep {
            obj.remove(&key);
        }
    }
}

struct Selection {
    attributes: Vec<Resolved>,
    excluded: Vec<Resolved>,
}

impl Selection {
    /// Whether the attribute `def` stays; trims its sub-attributes in `v`.
    fn keep(&self, def: &'static AttrDef, v: &mut Value) -> bool {
        let same = |r: &&Resolved| std::ptr::eq(r.attr, def);
        match def.returned {
            Returned::Never => return false,
            Returned::Always => {
                trim_subs(def, v, |s| s.returned != Returned::Never);
                return true;
            }
            Returned::Default | Returned::Request => {}
        }
        if !self.attributes.is_empty() {
            let named: Vec<&Resolved> = self.attributes.iter().filter(same).collect();
            if named.is_empty() {
                return false;
            }
            let whole = named.iter().any(|r| r.sub.is_none());
            let listed = |s: &AttrDef| {
                named
                    .iter()
                    .any(|r| r.sub.is_some_and(|x| std::ptr::eq(x, s)))
            };
            if whole {
                trim_subs(def, v, |s| match s.returned {
                    Returned::Never => false,
                    Returned::Request => listed(s),
                    _ => true,
                });
            } else {
                trim_subs(def, v, |s| {
                    s.returned == Returned::Always || (s.returned != Returned::Never && listed(s))
                });
            }
            return !is_unassigned(Some(v));
        }
        if def.returned == Returned::Request {
            return false;
        }
        let excluded: Vec<&Resolved> = self.excluded.iter().filter(same).collect();
        if excluded.iter().any(|r| r.sub.is_none()) {
            return false;
        }
        trim_subs(def, v, |s| match s.returned {
            Returned::Always => true,
            Returned::Never | Returned::Request => false,
            Returned::Default => !excluded
                .iter()
                .any(|r| r.sub.is_some_and(|x| std::ptr::eq(x, s))),
        });
        !is_unassigned(Some(v))
    }
}

/// Keeps the sub-attributes of a complex value (or of each value of a
/// multi-valued one) that `keep` accepts; drops values left empty.
fn trim_subs(def: &AttrDef, v: &mut Value, keep: impl Fn(&AttrDef) -> bool) {
    if def.ty != AttrType::Complex {
        return;
    }
    let trim = |o: &mut Map<String, Value>| {
        o.retain(|k, _| def.sub(k).is_none_or(&keep));
    };
    match v {
        Value::Object(o) => trim(o),
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::Object(o) = item {
                    trim(o);
                }
            }
            items.retain(|i| !matches!(i, Value::Object(o) if o.is_empty()));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
    use crate::ScimType;
    use serde_json::json;

    fn err(kind: ResourceKind, body: Value) -> ScimError {
        normalize(kind, &body).unwrap_err()
    }

    #[test]
    fn rfc_full_user_example() {
        // RFC 7643 §8.2, trimmed.
        let body = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen",
                     "givenName": "Barbara", "middleName": "Jane"},
            "displayName": "Babs Jensen",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza",
                           "locality": "Hollywood", "region": "CA", "postalCode": "91608",
                           "country": "USA", "primary": true}],
            "groups": [{"value": "e9e30dba", "display": "Tour Guides"}],
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "manager": {"value": "26118915", "$ref": "../Users/26118915", "displayName": "John Smith"}
            },
            "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "version": "W/\"a330bc54f0671c9\""},
            "password": "t1meMa$heen",
            "active": true
        });
        let n = normalize(ResourceKind::User, &body).unwrap();
        assert_eq!(n.password.as_deref(), Some("t1meMa$heen"));
        assert!(n.members.is_none());
        let doc = n.doc;
        assert_eq!(doc["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        for gone in ["id", "meta", "groups", "password"] {
            assert!(doc.get(gone).is_none(), "{gone} should be dropped");
        }
        assert_eq!(doc["externalId"], "701984");
        assert_eq!(doc["name"]["givenName"], "Barbara");
        assert_eq!(doc["emails"][1]["value"], "babs@jensen.org");
        assert_eq!(doc["active"], true);
        // manager.displayName is readOnly.
        assert_eq!(
            doc[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "26118915", "$ref": "../Users/26118915"})
        );
        // The schemas array comes first.
        assert_eq!(doc.as_object().unwrap().keys().next().unwrap(), "schemas");
    }

    #[test]
    fn names_are_canonicalised_and_unknown_dropped() {
        let n = normalize(
            ResourceKind::User,
            &json!({
                "Schemas": [USER_SCHEMA],
                "username": "bob",
                "NAME": {"GivenName": "Bob", "nope": 1},
                "EMAILS": [{"VALUE": "b@x.org"}],
                "favouriteColour": "blue"
            }),
        )
        .unwrap();
        assert_eq!(
            n.doc,
            json!({"schemas": [USER_SCHEMA], "userName": "bob",
                   "name": {"givenName": "Bob"}, "emails": [{"value": "b@x.org"}]})
        );
    }

    #[test]
    fn schemas_are_required() {
        let e = err(ResourceKind::User, json!({"userName": "bob"}));
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e = err(
            ResourceKind::User,
            json!({"schemas": [GROUP_SCHEMA], "userName": "bob"}),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e = err(
            ResourceKind::User,
            json!({"schemas": USER_SCHEMA, "userName": "bob"}),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let e = err(ResourceKind::User, json!(["userName"]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    }

    #[test]
    fn extension_without_schema_listed_is_added() {
        let n = normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA], "userName": "bob",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "R&D"}}),
        )
        .unwrap();
        assert_eq!(
            n.doc["schemas"],
            json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
        );
        assert_eq!(n.doc[ENTERPRISE_USER_SCHEMA]["department"], "R&D");
        // Listed but empty: dropped from both.
        let n = normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": "bob",
                    ENTERPRISE_USER_SCHEMA: {}}),
        )
        .unwrap();
        assert_eq!(n.doc, json!({"schemas": [USER_SCHEMA], "userName": "bob"}));
        // A URN-qualified key at the top level.
        let n = normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA], "userName": "bob",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "4130"}),
        )
        .unwrap();
        assert_eq!(n.doc[ENTERPRISE_USER_SCHEMA]["costCenter"], "4130");
    }

    #[test]
    fn required_attributes() {
        for body in [
            json!({"schemas": [USER_SCHEMA]}),
            json!({"schemas": [USER_SCHEMA], "userName": ""}),
            json!({"schemas": [USER_SCHEMA], "userName": null}),
        ] {
            let e = err(ResourceKind::User, body);
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
            assert!(e.detail.contains("userName"));
        }
        let e = err(ResourceKind::Group, json!({"schemas": [GROUP_SCHEMA]}));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(e.detail.contains("displayName"));
    }

    #[test]
    fn types_are_checked() {
        let cases = [
            (json!({"active": "yes"}), "active"),
            (json!({"active": 1}), "active"),
            (json!({"displayName": 3}), "displayName"),
            (json!({"name": "Bob"}), "name"),
            (json!({"emails": "b@x.org"}), "emails"),
            (json!({"emails": [{"value": 5}]}), "emails.value"),
            (
                json!({"emails": [{"value": "a", "primary": "maybe"}]}),
                "emails.primary",
            ),
            (json!({"phoneNumbers": [["x"]]}), "phoneNumbers"),
            (
                json!({ENTERPRISE_USER_SCHEMA: "R&D"}),
                ENTERPRISE_USER_SCHEMA,
            ),
        ];
        for (extra, name) in cases {
            let mut body = json!({"schemas": [USER_SCHEMA], "userName": "bob"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let e = err(ResourceKind::User, body);
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{name}");
            assert!(e.detail.contains(name), "{name}: {}", e.detail);
        }
    }

    #[test]
    fn boolean_strings_are_converted() {
        let n = normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA], "userName": "bob", "active": "False",
                    "emails": [{"value": "a@x", "primary": "True"}]}),
        )
        .unwrap();
        assert_eq!(n.doc["active"], false);
        assert_eq!(n.doc["emails"][0]["primary"], true);
    }

    #[test]
    fn single_object_for_multi_valued_is_wrapped() {
        let n = normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA], "userName": "bob",
                    "emails": {"value": "a@x", "type": "work"}}),
        )
        .unwrap();
        assert_eq!(n.doc["emails"], json!([{"value": "a@x", "type": "work"}]));
    }

    #[test]
    fn manager_as_plain_string() {
        let n = normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": "bob",
                    ENTERPRISE_USER_SCHEMA: {"manager": "42"}}),
        )
        .unwrap();
        assert_eq!(
            n.doc[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "42"})
        );
    }

    #[test]
    fn one_primary_at_most() {
        let e = err(
            ResourceKind::User,
            json!({"schemas": [USER_SCHEMA], "userName": "bob", "emails": [
                {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}),
        );
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(e.detail.contains("emails"));
    }

    #[test]
    fn date_times_are_checked() {
        // No dateTime attribute is writable in the User schema; meta is readOnly
        // and dropped before checking.
        let n = normalize(
            ResourceKind::User,
            &json!({"schemas": [USER_SCHEMA], "userName": "bob", "meta": {"created": "junk"}}),
        )
        .unwrap();
        assert!(n.doc.get("meta").is_none());
        assert!(check_scalar(AttrType::DateTime, &json!("2010-01-23T04:56:22Z"), "d").is_ok());
        assert!(check_scalar(
            AttrType::DateTime,
            &json!("2010-01-23T04:56:22.5+02:00"),
            "d"
        )
        .is_ok());
        let e = check_scalar(AttrType::DateTime, &json!("2010-01-23"), "d").unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        assert!(check_scalar(AttrType::Integer, &json!(3), "i").is_ok());
        assert!(check_scalar(AttrType::Integer, &json!(3.5), "i").is_err());
        assert!(check_scalar(AttrType::Decimal, &json!(3.5), "d").is_ok());
        assert!(check_scalar(AttrType::Decimal, &json!("3.5"), "d").is_err());
    }

    #[test]
    fn group_members_are_extracted() {
        let n = normalize(
            ResourceKind::Group,
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides",
            "members": [
                {"value": "2819c223", "$ref": "https://example.com/v2/Users/2819c223",
                 "display": "Babs Jensen", "type": "User"},
                {"value": "902c246b", "type": "group"},
                {"value": "2819c223"}
            ]}),
        )
        .unwrap();
        assert_eq!(
            n.doc,
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides"})
        );
        assert_eq!(
            n.members.unwrap(),
            vec![
                MemberValue {
                    value: "2819c223".into(),
                    kind: Some(ResourceKind::User),
                    display: Some("Babs Jensen".into())
                },
                MemberValue {
                    value: "902c246b".into(),
                    kind: Some(ResourceKind::Group),
                    display: None
                },
            ]
        );
        let n = normalize(
            ResourceKind::Group,
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "G", "members": []}),
        )
        .unwrap();
        assert_eq!(n.members, Some(vec![]));
        for bad in [
            json!([{"display": "x"}]),
            json!([{"value": 3}]),
            json!([{"value": ""}]),
            json!([{"value": "a", "type": "Robot"}]),
            json!("a"),
        ] {
            let e = err(
                ResourceKind::Group,
                json!({"schemas": [GROUP_SCHEMA], "displayName": "G", "members": bad}),
            );
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{bad}");
            assert!(e.detail.contains("member"));
        }
    }

    #[test]
    fn immutable_attributes() {
        static DEFS: [AttrDef; 2] = [
            AttrDef::new("code", AttrType::String, "").mutability(Mutability::Immutable),
            AttrDef::new("plain", AttrType::String, ""),
        ];
        let old = json!({"code": "a", "plain": "x"});
        assert!(check_immutable_attrs(
            &DEFS,
            Some(&old),
            Some(&json!({"code": "a", "plain": "y"})),
            ""
        )
        .is_ok());
        let e =
            check_immutable_attrs(&DEFS, Some(&old), Some(&json!({"code": "b"})), "").unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
        let e = check_immutable_attrs(&DEFS, Some(&old), Some(&json!({})), "").unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
        // Unset before: may be set.
        assert!(
            check_immutable_attrs(&DEFS, Some(&json!({})), Some(&json!({"code": "b"})), "").is_ok()
        );
        // The User and Group tables have no immutable stored attribute.
        let old = json!({"schemas": [USER_SCHEMA], "userName": "a", "externalId": "1"});
        let new = json!({"schemas": [USER_SCHEMA], "userName": "b"});
        assert!(check_immutable(ResourceKind::User, &old, &new).is_ok());
    }

    #[test]
    fn attr_lists() {
        let l = parse_attr_list(
            " userName, name.givenName ,,urn:ietf:params:scim:schemas:core:2.0:User:emails.value,\
             urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager,urn:unknown:x:y",
        )
        .unwrap();
        assert_eq!(
            l,
            vec![
                AttrPath::new("userName"),
                AttrPath::with_sub("name", "givenName"),
                AttrPath {
                    schema: Some(USER_SCHEMA.into()),
                    attr: "emails".into(),
                    sub_attr: Some("value".into())
                },
                AttrPath {
                    schema: Some(ENTERPRISE_USER_SCHEMA.into()),
                    attr: "manager".into(),
                    sub_attr: None
                },
            ]
        );
        let l = parse_attr_list(ENTERPRISE_USER_SCHEMA).unwrap();
        assert_eq!(l.len(), 6);
        assert!(l
            .iter()
            .all(|p| p.schema.as_deref() == Some(ENTERPRISE_USER_SCHEMA)));
        assert_eq!(
            parse_attr_list("members.$ref").unwrap()[0]
                .sub_attr
                .as_deref(),
            Some("$ref")
        );
        assert!(parse_attr_list("").unwrap().is_empty());
        for bad in [
            "name.",
            "a b",
            "aéé",
            "ué:x",
            "\"userName\"",
            "emails[type eq \"work\"]",
        ] {
            let e = parse_attr_list(bad).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{bad}");
        }
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "42",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@x.org", "type": "work", "primary": true}],
            "password": "secret",
            "meta": {"resourceType": "User", "version": "W/\"1\""},
            ENTERPRISE_USER_SCHEMA: {"department": "R&D", "manager": {"value": "7", "displayName": "Boss"}}
        })
    }

    fn projected(attributes: &str, excluded: &str) -> Value {
        let mut v = user();
        project(
            ResourceKind::User,
            &mut v,
            &parse_attr_list(attributes).unwrap(),
            &parse_attr_list(excluded).unwrap(),
        );
        v
    }

    #[test]
    fn projection_default_drops_never() {
        let mut want = user();
        want.as_object_mut().unwrap().remove("password");
        assert_eq!(projected("", ""), want);
    }

    #[test]
    fn projection_attributes() {
        assert_eq!(
            projected("userName", ""),
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "42", "userName": "bjensen"})
        );
        assert_eq!(
            projected("name.givenName,emails.value,password", ""),
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "42",
                   "name": {"givenName": "Barbara"}, "emails": [{"value": "b@x.org"}]})
        );
        assert_eq!(
            projected(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
                ""
            ),
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "42",
                   ENTERPRISE_USER_SCHEMA: {"manager": {"displayName": "Boss"}}})
        );
        assert_eq!(
            projected("DEPARTMENT", ""),
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "42",
                   ENTERPRISE_USER_SCHEMA: {"department": "R&D"}})
        );
        // A sub-attribute with no value leaves nothing.
        assert_eq!(
            projected("name.middleName", ""),
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "42"})
        );
        // Unknown names are ignored: the default set.
        assert_eq!(projected("nope", ""), projected("", ""));
    }

    #[test]
    fn projection_excluded() {
        let v = projected("", "emails,id,name.familyName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department,manager");
        assert_eq!(
            v,
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "42", "userName": "bjensen",
                   "name": {"givenName": "Barbara"},
                   "meta": {"resourceType": "User", "version": "W/\"1\""}})
        );
        let v = projected("", "meta");
        assert!(v.get("meta").is_none());
    }

    #[test]
    fn projection_group_members() {
        let mut g = json!({"schemas": [GROUP_SCHEMA], "id": "1", "displayName": "G",
                           "members": [{"value": "a", "display": "A", "type": "User"}]});
        project(
            ResourceKind::Group,
            &mut g,
            &[],
            &[AttrPath::new("members")],
        );
        assert_eq!(
            g,
            json!({"schemas": [GROUP_SCHEMA], "id": "1", "displayName": "G"})
        );
        let mut g = json!({"schemas": [GROUP_SCHEMA], "id": "1", "displayName": "G",
                           "members": [{"value": "a", "display": "A"}]});
        project(
            ResourceKind::Group,
            &mut g,
            &[AttrPath::with_sub("members", "value")],
            &[],
        );
        assert_eq!(
            g,
            json!({"schemas": [GROUP_SCHEMA], "id": "1", "members": [{"value": "a"}]})
        );
        // members.display is returned on request only.
        let g0 = json!({"schemas": [GROUP_SCHEMA], "id": "1", "members": [{"value": "a", "display": "A"}]});
        let mut g = g0.clone();
        project(ResourceKind::Group, &mut g, &[], &[]);
        assert_eq!(g["members"], json!([{"value": "a"}]));
        let mut g = g0.clone();
        project(
            ResourceKind::Group,
            &mut g,
            &[AttrPath::new("members")],
            &[],
        );
        assert_eq!(g["members"], json!([{"value": "a"}]));
        let mut g = g0.clone();
        project(
            ResourceKind::Group,
            &mut g,
            &[AttrPath::with_sub("members", "display")],
            &[],
        );
        assert_eq!(g["members"], json!([{"display": "A"}]));
    }
}
