//! Turns stored rows into SCIM JSON: `id`, `meta`, the computed `members` and
//! `groups`, then the client's `attributes`/`excludedAttributes` projection.

use scim::{AttrPath, ResourceKind};
use serde_json::{json, Map, Value};
use store::{GroupRef, Member, ResourceRow};
use time::format_description::well_known::Rfc3339;

/// Which attributes a response carries (RFC 7644 §3.9).
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    /// Whether the top-level attribute `name` (returned by default) will be in the
    /// response: lets the caller skip loading a 100,000-member list nobody asked for.
    pub fn wants(&self, name: &str) -> bool {
        let named = |p: &AttrPath| p.attr.eq_ignore_ascii_case(name);
        if !self.attributes.is_empty() {
            return self.attributes.iter().any(named);
        }
        !self
            .excluded
            .iter()
            .any(|p| named(p) && p.sub_attr.is_none())
    }

    pub fn apply(&self, kind: ResourceKind, resource: &mut Value) {
        scim::resource::project(kind, resource, &self.attributes, &self.excluded);
    }
}

/// The weak ETag of a version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn timestamp(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The full JSON form of a resource, before projection.
pub fn resource_json(
    base_url: &str,
    row: &ResourceRow,
    members: Option<&[Member]>,
    groups: Option<&[GroupRef]>,
) -> Value {
    let location = format!("{base_url}/{}/{}", row.kind.endpoint(), row.id);
    let mut out = Map::new();
    let doc = row.doc.as_object();
    if let Some(schemas) = doc.and_then(|d| d.get("schemas")) {
        out.insert("schemas".into(), schemas.clone());
    }
    out.insert("id".into(), Value::String(row.id.clone()));
    if let Some(doc) = doc {
        for (k, v) in doc {
            if k != "schemas" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(members) = members.filter(|m| !m.is_empty()) {
        let list = members
            .iter()
            .map(|m| {
                let mut o = json!({
                    "value": m.value,
                    "$ref": format!("{base_url}/{}/{}", m.kind.endpoint(), m.value),
                    "type": m.kind.name(),
                });
                if let Some(d) = &m.display {
                    o["display"] = Value::String(d.clone());
                }
                o
            })
            .collect();
        out.insert("members".into(), Value::Array(list));
    }
    if let Some(groups) = groups.filter(|g| !g.is_empty()) {
        let list = groups
            .iter()
            .map(|g| {
                let mut o = json!({
                    "value": g.value,
                    "$ref": format!("{base_url}/Groups/{}", g.value),
                    "type": g.membership,
                });
                if let Some(d) = &g.display {
                    o["display"] = Value::String(d.clone());
                }
                o
            })
            .collect();
        out.insert("groups".into(), Value::Array(list));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": row.kind.name(),
            "created": timestamp(row.created),
            "lastModified": timestamp(row.last_modified),
            "location": location,
            "version": etag(row.version),
        }),
    );
    Value::Object(out)
}
