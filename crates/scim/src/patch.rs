//! PATCH (RFC 7644 §3.5.2): parsing a `PatchOp` request and applying it to the
//! stored form of a resource (see [`crate::resource`]).
//!
//! Operations on a Group's `members` are not applied to the document: they become
//! [`MemberChange`]s, in order, for the caller to apply to its membership store. A
//! User's `password` is handed back in [`PatchOutcome::password`]. Tolerated
//! client deviations: case-insensitive `op` and keys, boolean strings
//! (`"True"`), dotted and URN-qualified keys in path-less values, a single object
//! for a multi-valued attribute, `"manager": "id"`, member removal by value list,
//! and `add` through a value filter that matches nothing (a new value is built
//! from the filter's equalities, as Entra ID expects).

use crate::error::{Result, ScimError};
use crate::filter::{AttrPath, CompOp, CompValue, Filter};
use crate::path::PatchPath;
use crate::resource::{
    check_single, check_writable, is_primary, normalize_map, parse_members, resolve_key,
    MemberValue,
};
use crate::schema::{AttrDef, AttrType, Mutability, Resolved, ResourceKind, SchemaDef};
use serde_json::{Map, Value};

/// The `urn:ietf:params:scim:api:messages:2.0:PatchOp` schema URN.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The three PATCH operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

/// One operation of a PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// A parsed `PatchOp` request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

impl PatchRequest {
    /// Parses a PATCH body. The PatchOp schema must be listed and `Operations` be a
    /// non-empty array (`invalidSyntax`); `op` is case-insensitive; `remove` needs
    /// a `path` (`noTarget`); `add` and `replace` need a `value` (`invalidSyntax`);
    /// paths are parsed with [`PatchPath::parse`] (`invalidPath`, `invalidFilter`).
    pub fn parse(body: &Value) -> Result<PatchRequest> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the PATCH body must be a JSON object"))?;
        let has_schema = get_ci(obj, "schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
                })
            });
        if !has_schema {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must list {PATCH_OP_SCHEMA}"
            )));
        }
        let ops = get_ci(obj, "Operations")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ScimError::invalid_syntax("'Operations' must be a non-empty array"))?;
        let operations = ops
            .iter()
            .enumerate()
            .map(|(i, op)| parse_operation(i, op))
            .collect::<Result<Vec<_>>>()?;
        Ok(PatchRequest { operations })
    }
}

fn parse_operation(i: usize, op: &Value) -> Result<PatchOperation> {
    let obj = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax(format!("operation {i} must be an object")))?;
    let kind = match get_ci(obj, "op").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("add") => PatchOpKind::Add,
        Some(s) if s.eq_ignore_ascii_case("remove") => PatchOpKind::Remove,
        Some(s) if s.eq_ignore_ascii_case("replace") => PatchOpKind::Replace,
        _ => {
            return Err(ScimError::invalid_syntax(format!(
                "operation {i}: 'op' must be \"add\", \"remove\" or \"replace\""
            )))
        }
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(PatchPath::parse(s.trim())?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "operation {i}: 'path' must be a string"
            )))
        }
    };
    let value = get_ci(obj, "value").filter(|v| !v.is_null()).cloned();
    match kind {
        PatchOpKind::Remove if path.is_none() => Err(ScimError::no_target(format!(
            "operation {i}: remove needs a 'path'"
        ))),
        PatchOpKind::Add | PatchOpKind::Replace if value.is_none() => Err(
            ScimError::invalid_syntax(format!("operation {i}: a 'value' is required")),
        ),
        _ => Ok(PatchOperation {
            op: kind,
            path,
            value,
        }),
    }
}

/// A change to a Group's member list, in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Add these members (already present ones are left alone).
    Add(Vec<MemberValue>),
    /// Remove the members with these ids.
    Remove(Vec<String>),
    /// Remove the members matching this value filter (its paths name member
    /// sub-attributes: `value`, `type`, `display`).
    RemoveWhere(Filter),
    /// Remove every member.
    Clear,
}

/// What [`apply`] leaves to the caller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatchOutcome {
    pub member_changes: Vec<MemberChange>,
    /// A new cleartext password set by the request. Removing `password` is
    /// accepted and ignored.
    pub password: Option<String>,
}

/// Applies a PATCH request to the stored form `doc` of a resource, all or
/// nothing: on error `doc` is unchanged. After the operations the document is
/// validated as [`crate::resource::normalize`] does (types, required attributes,
/// one primary value) and its `schemas` rewritten.
pub fn apply(kind: ResourceKind, doc: &mut Value, req: &PatchRequest) -> Result<PatchOutcome> {
    let mut work = match doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let mut outcome = PatchOutcome::default();
    let mut patcher = Patcher {
        kind,
        doc: &mut work,
        out: &mut outcome,
    };
    for op in &req.operations {
        patcher.operation(op)?;
    }
    let normalized = normalize_map(kind, &work)?;
    *doc = normalized.doc;
    Ok(outcome)
}

struct Patcher<'a> {
    kind: ResourceKind,
    doc: &'a mut Map<String, Value>,
    out: &'a mut PatchOutcome,
}

fn member_ids(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Compare(p, CompOp::Eq, CompValue::String(s))
            if p.sub_attr
                .as_deref()
                .unwrap_or(&p.attr)
                .eq_ignore_ascii_case("value") =>
        {
            Some(vec![s.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = member_ids(a)?;
            ids.extend(member_ids(b)?);
            Some(ids)
        }
        _ => None,
    }
}

fn member_removal(f: &Filter) -> MemberChange {
    match member_ids(f) {
        Some(ids) => MemberChange::Remove(ids),
        None => MemberChange::RemoveWhere(f.clone()),
    }
}

/// The attribute values a filter of equalities (`type eq "work" and primary eq
/// true`) pins down, to build a new value from.
fn filter_equalities(f: &Filter, def: &AttrDef, out: &mut Map<String, Value>) -> bool {
    match f {
        Filter::Compare(p, CompOp::Eq, v) => {
            let name = p.sub_attr.as_deref().unwrap_or(&p.attr);
            let Some(sub) = def.sub(name) else {
                return false;
            };
            let value = match v {
                CompValue::String(s) => Value::from(s.as_str()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return false,
            };
            out.insert(sub.name.to_string(), value);
            true
        }
        Filter::And(a, b) => filter_equalities(a, def, out) && filter_equalities(b, def, out),
        _ => false,
    }
}

/// Whether one value of the multi-valued attribute `r` matches a value filter.
fn element_matches(kind: ResourceKind, r: &Resolved, filter: &Filter, element: &Value) -> bool {
    let name = r.attr.name;
    let mut wrapper = Map::new();
    wrapper.insert(name.to_string(), Value::Array(vec![element.clone()]));
    let (resource, path) = match r.extension() {
        Some(ext) => {
            let mut outer = Map::new();
            outer.insert(ext.id.to_string(), Value::Object(wrapper));
            (outer, AttrPath::new(name).with_schema(ext.id))
        }
        None => (wrapper, AttrPath::new(name)),
    };
    Filter::ValuePath(path, Box::new(filter.clone())).matches(kind, &Value::Object(resource))
}

/// Clears `primary` on the values that had it before when the operation made
/// another value primary.
fn fix_primary(def: &AttrDef, before: &[Value], after: &mut [Value]) {
    if !def.has_primary() {
        return;
    }
    let primaries: Vec<usize> = (0..after.len())
        .filter(|&i| is_primary(&after[i]))
        .collect();
    if primaries.len() < 2 {
        return;
    }
    for i in primaries {
        if before.contains(&after[i]) {
            if let Some(o) = after[i].as_object_mut() {
                o.remove("primary");
            }
        }
    }
}

fn as_array(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

/// Moves a key written in another case to its canonical spelling.
fn canonical_key(map: &mut Map<String, Value>, name: &str) {
    if map.contains_key(name) {
        return;
    }
    let other = map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned();
    if let Some(k) = other {
        if let Some(v) = map.remove(&k) {
            map.insert(name.to_string(), v);
        }
    }
}

impl Patcher<'_> {
    fn operation(&mut self, op: &PatchOperation) -> Result<()> {
        match &op.path {
            None => {
                let value = op.value.as_ref().unwrap_or(&Value::Null);
                self.pathless(op.op, value)
            }
            Some(path) => self.with_path(op.op, path, op.value.as_ref()),
        }
    }

    /// `add`/`replace` without a path: each key of the value object is a target.
    fn pathless(&mut self, op: PatchOpKind, value: &Value) -> Result<()> {
        let obj = value.as_object().ok_or_else(|| {
            ScimError::invalid_syntax("an operation without 'path' needs an object 'value'")
        })?;
        for (key, v) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if let Some(ext) = self.kind.extension(key) {
                self.extension_object(op, ext, v)?;
                continue;
            }
            let r = resolve_key(self.kind, key)
                .ok_or_else(|| ScimError::invalid_path(format!("unknown attribute '{key}'")))?;
            // Clients echo whole resources: readOnly attributes are ignored here,
            // as in PUT.
            if r.attr.mutability == Mutability::ReadOnly
                || r.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
            {
                continue;
            }
            let path = PatchPath {
                attr: AttrPath::new(r.attr.name),
                filter: None,
                sub_attr: None,
            };
            self.target(op, &path, r, Some(v))?;
        }
        Ok(())
    }

    /// `add`/`replace` of an extension object (path-less key or the bare URN as path).
    fn extension_object(
        &mut self,
        op: PatchOpKind,
        ext: &'static SchemaDef,
        v: &Value,
    ) -> Result<()> {
        let inner = match v {
            Value::Object(o) => o,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "'{}' must be an object",
                    ext.id
                )))
            }
        };
        for (k, v) in inner {
            if k.eq_ignore_ascii_case("schemas") {
                continue;
            }
            let r = self
                .kind
                .resolve(&AttrPath::new(k.as_str()).with_schema(ext.id))
                .ok_or_else(|| {
                    ScimError::invalid_path(format!("unknown attribute '{}:{k}'", ext.id))
                })?;
            if r.attr.mutability == Mutability::ReadOnly
                || r.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
            {
                continue;
            }
            let path = PatchPath {
                attr: AttrPath::new(r.attr.name),
                filter: None,
                sub_attr: None,
            };
            self.target(op, &path, r, Some(v))?;
        }
        Ok(())
    }

    fn with_path(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<()> {
        if path.attr.attr.is_empty() {
            let urn = path.attr.schema.as_deref().unwrap_or_default();
            if let Some(ext) = self.kind.extension(urn) {
                return match op {
                    PatchOpKind::Remove => {
                        self.doc.retain(|k, _| !k.eq_ignore_ascii_case(ext.id));
                        Ok(())
                    }
                    _ => self.extension_object(op, ext, value.unwrap_or(&Value::Null)),
                };
            }
            if urn.eq_ignore_ascii_case(self.kind.core_schema().id) && op != PatchOpKind::Remove {
                return self.pathless(op, value.unwrap_or(&Value::Null));
            }
            return Err(ScimError::invalid_path(format!(
                "'{urn}' is not a schema of {}",
                self.kind.name()
            )));
        }
        let r = self.kind.resolve(&path.attr).ok_or_else(|| {
            ScimError::invalid_path(format!("unknown attribute '{}'", path.attr.attr))
        })?;
        let read_only = |d: &AttrDef| d.mutability == Mutability::ReadOnly;
        if read_only(r.attr) || r.sub.is_some_and(read_only) {
            return Err(ScimError::mutability(format!(
                "attribute '{}' is readOnly",
                r.leaf().name
            )));
        }
        self.target(op, path, r, value)
    }

    /// Applies one operation to a resolved, writable target.
    fn target(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        r: Resolved,
        value: Option<&Value>,
    ) -> Result<()> {
        if self.kind == ResourceKind::Group && r.attr.name == "members" {
            return self.members(op, path, r, value);
        }
        if self.kind == ResourceKind::User && r.attr.name == "password" {
            if op != PatchOpKind::Remove {
                match check_writable(r.attr, value.unwrap_or(&Value::Null), "password")? {
                    Some(Value::String(p)) => self.out.password = Some(p),
                    None => {}
                    _ => {
                        return Err(ScimError::invalid_value(
                            "attribute 'password' must be a string",
                        ))
                    }
                }
            }
            return Ok(());
        }
        match &path.filter {
            Some(filter) => self.filtered(op, r, filter, path.sub_attr.as_deref(), value),
            None => self.unfiltered(op, r, value),
        }
    }

    /// The object holding the attribute `r`: the document, or its extension
    /// object (created when `create`).
    fn container(&mut self, r: &Resolved, create: bool) -> Option<&mut Map<String, Value>> {
        match r.extension() {
            None => Some(&mut *self.doc),
            Some(ext) => {
                canonical_key(self.doc, ext.id);
                if create && !matches!(self.doc.get(ext.id), Some(Value::Object(_))) {
                    self.doc
                        .insert(ext.id.to_string(), Value::Object(Map::new()));
                }
                match self.doc.get_mut(ext.id) {
                    Some(Value::Object(m)) => Some(m),
                    _ => None,
                }
            }
        }
    }

    fn unfiltered(&mut self, op: PatchOpKind, r: Resolved, value: Option<&Value>) -> Result<()> {
        let def = r.attr;
        if op == PatchOpKind::Remove && def.multi_valued && r.sub.is_none() {
            if let Some(v) = value {
                return self.remove_values(r, v);
            }
        }
        let value = value.unwrap_or(&Value::Null);
        let new = match (op, r.sub) {
            (PatchOpKind::Remove, _) => None,
            (_, Some(sub)) => check_writable(sub, value, &format!("{}.{}", def.name, sub.name))?,
            (_, None) => check_writable(def, value, def.name)?,
        };
        let Some(map) = self.container(&r, op != PatchOpKind::Remove) else {
            return Ok(());
        };
        canonical_key(map, def.name);
        let current = map.get(def.name).filter(|v| !v.is_null()).cloned();
        let leaf = r.leaf();
        if leaf.mutability == Mutability::Immutable {
            let before = match r.sub {
                Some(sub) => current.as_ref().and_then(|c| c.get(sub.name)),
                None => current.as_ref(),
            };
            if before.is_some() && before != new.as_ref() {
                return Err(ScimError::mutability(format!(
                    "attribute '{}' is immutable",
                    leaf.name
                )));
            }
        }
        match r.sub {
            None => {
                let updated = match (op, new) {
                    (PatchOpKind::Remove, _) | (PatchOpKind::Replace, None) => None,
                    (PatchOpKind::Add, None) => current,
                    (_, Some(new)) if def.multi_valued => {
                        let before = as_array(current.as_ref());
                        let mut values = if op == PatchOpKind::Add {
                            before.clone()
                        } else {
                            Vec::new()
                        };
                        // Exact duplicates are dropped, in linear time.
                        let mut seen: std::collections::HashSet<String> =
                            values.iter().map(Value::to_string).collect();
                        for v in as_array(Some(&new)) {
                            if seen.insert(v.to_string()) {
                                values.push(v);
                            }
                        }
                        fix_primary(def, &before, &mut values);
                        Some(Value::Array(values))
                    }
                    (_, Some(Value::Object(new))) if def.ty == AttrType::Complex => {
                        // add and replace both merge sub-attributes (§3.5.2.1, §3.5.2.3).
                        let mut merged = match current {
                            Some(Value::Object(m)) => m,
                            _ => Map::new(),
                        };
                        merged.extend(new);
                        Some(Value::Object(merged))
                    }
                    (_, Some(new)) => Some(new),
                };
                match updated {
                    Some(v) => map.insert(def.name.to_string(), v),
                    None => map.remove(def.name),
                };
            }
            Some(sub) => {
                let set = |o: &mut Map<String, Value>| match &new {
                    Some(v) => {
                        o.insert(sub.name.to_string(), v.clone());
                    }
                    None => {
                        o.retain(|k, _| !k.eq_ignore_ascii_case(sub.name));
                    }
                };
                let updated = if def.multi_valued {
                    // `emails.value` without a filter: every value.
                    let before = as_array(current.as_ref());
                    let mut values = before.clone();
                    if values.is_empty() && new.is_some() {
                        values.push(Value::Object(Map::new()));
                    }
                    for v in values.iter_mut() {
                        if let Value::Object(o) = v {
                            set(o);
                        }
                    }
                    values.retain(|v| !matches!(v, Value::Object(o) if o.is_empty()));
                    fix_primary(def, &before, &mut values);
                    (!values.is_empty()).then_some(Value::Array(values))
                } else {
                    let mut o = match current {
                        Some(Value::Object(o)) => o,
                        _ => Map::new(),
                    };
                    set(&mut o);
                    (!o.is_empty()).then_some(Value::Object(o))
                };
                match updated {
                    Some(v) => map.insert(def.name.to_string(), v),
                    None => map.remove(def.name),
                };
            }
        }
        Ok(())
    }

    /// `remove` of a multi-valued attribute with a `value` (as Entra ID sends for
    /// members): removes the listed values, matched on their `value`
    /// sub-attribute when they have one, else as a whole.
    fn remove_values(&mut self, r: Resolved, value: &Value) -> Result<()> {
        let def = r.attr;
        let Some(doomed) = check_writable(def, value, def.name)? else {
            return Ok(());
        };
        let doomed = as_array(Some(&doomed));
        let Some(map) = self.container(&r, false) else {
            return Ok(());
        };
        canonical_key(map, def.name);
        let mut values = as_array(map.get(def.name));
        values.retain(|e| {
            !doomed
                .iter()
                .any(|d| match (d.get("value"), e.get("value")) {
                    (Some(a), Some(b)) => a == b,
                    _ => d == e,
                })
        });
        if values.is_empty() {
            map.remove(def.name);
        } else {
            map.insert(def.name.to_string(), Value::Array(values));
        }
        Ok(())
    }

    fn filtered(
        &mut self,
        op: PatchOpKind,
        r: Resolved,
        filter: &Filter,
        sub_attr: Option<&str>,
        value: Option<&Value>,
    ) -> Result<()> {
        let def = r.attr;
        if !def.multi_valued || def.ty != AttrType::Complex || r.sub.is_some() {
            return Err(ScimError::invalid_path(format!(
                "a value filter needs a multi-valued complex attribute, not '{}'",
                r.leaf().name
            )));
        }
        let sub = match sub_attr {
            None => None,
            Some(s) => {
                let sub = def.sub(s).ok_or_else(|| {
                    ScimError::invalid_path(format!("unknown attribute '{}.{s}'", def.name))
                })?;
                if sub.mutability == Mutability::ReadOnly {
                    return Err(ScimError::mutability(format!(
                        "attribute '{}.{}' is readOnly",
                        def.name, sub.name
                    )));
                }
                Some(sub)
            }
        };
        let value = value.unwrap_or(&Value::Null);
        let new = match (op, sub) {
            (PatchOpKind::Remove, _) => None,
            (_, Some(sub)) => check_writable(sub, value, &format!("{}.{}", def.name, sub.name))?,
            (_, None) => check_single(def, value, def.name)?,
        };
        let kind = self.kind;
        let Some(map) = self.container(&r, op != PatchOpKind::Remove) else {
            return Ok(());
        };
        canonical_key(map, def.name);
        let before = as_array(map.get(def.name));
        let matched: Vec<bool> = before
            .iter()
            .map(|e| element_matches(kind, &r, filter, e))
            .collect();
        let any = matched.contains(&true);
        let mut values: Vec<Value> = Vec::with_capacity(before.len() + 1);
        for (e, hit) in before.iter().zip(&matched) {
            if !hit {
                values.push(e.clone());
                continue;
            }
            let mut e = e.clone();
            match (op, sub, &new) {
                (PatchOpKind::Remove, None, _) => continue,
                (_, Some(sub), Some(v)) => {
                    if let Value::Object(o) = &mut e {
                        o.insert(sub.name.to_string(), v.clone());
                    }
                }
                (_, Some(sub), None) => {
                    if let Value::Object(o) = &mut e {
                        o.retain(|k, _| !k.eq_ignore_ascii_case(sub.name));
                    }
                }
                (PatchOpKind::Replace, None, Some(v)) => e = v.clone(),
                (PatchOpKind::Add, None, Some(Value::Object(v))) => {
                    if let Value::Object(o) = &mut e {
                        o.extend(v.clone());
                    }
                }
                (_, None, _) => continue,
            }
            if !values.contains(&e) && !matches!(&e, Value::Object(o) if o.is_empty()) {
                values.push(e);
            }
        }
        if !any {
            match op {
                PatchOpKind::Remove => return Ok(()),
                PatchOpKind::Replace => {
                    return Err(ScimError::no_target(format!(
                        "no value of '{}' matches the filter",
                        def.name
                    )))
                }
                PatchOpKind::Add => {
                    let mut base = Map::new();
                    if !filter_equalities(filter, def, &mut base) {
                        return Err(ScimError::no_target(format!(
                            "no value of '{}' matches the filter",
                            def.name
                        )));
                    }
                    match (sub, new) {
                        (Some(sub), Some(v)) => {
                            base.insert(sub.name.to_string(), v);
                        }
                        (None, Some(Value::Object(v))) => base.extend(v),
                        _ => {}
                    }
                    if let Some(e) = check_single(def, &Value::Object(base), def.name)? {
                        values.push(e);
                    }
                }
            }
        }
        fix_primary(def, &before, &mut values);
        if values.is_empty() {
            map.remove(def.name);
        } else {
            map.insert(def.name.to_string(), Value::Array(values));
        }
        Ok(())
    }

    fn members(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        r: Resolved,
        value: Option<&Value>,
    ) -> Result<()> {
        if r.sub.is_some() || path.sub_attr.is_some() {
            return Err(ScimError::mutability(
                "the sub-attributes of a member are immutable; add or remove members instead",
            ));
        }
        let changes = &mut self.out.member_changes;
        match (op, &path.filter) {
            (PatchOpKind::Add, None) => {
                let values = parse_members(value.unwrap_or(&Value::Null))?;
                if !values.is_empty() {
                    changes.push(MemberChange::Add(values));
                }
            }
            (PatchOpKind::Add, Some(_)) => {
                return Err(ScimError::invalid_path(
                    "add to 'members' takes no value filter",
                ))
            }
            (PatchOpKind::Replace, filter) => {
                let values = parse_members(value.unwrap_or(&Value::Null))?;
                changes.push(match filter {
                    None => MemberChange::Clear,
                    Some(f) => member_removal(f),
                });
                if !values.is_empty() {
                    changes.push(MemberChange::Add(values));
                }
            }
            (PatchOpKind::Remove, Some(f)) => changes.push(member_removal(f)),
            (PatchOpKind::Remove, None) => match value {
                None => changes.push(MemberChange::Clear),
                // Azure/Entra ID: `"value": [{"value": "id"}, ...]`.
                Some(v) => {
                    let ids = parse_members(v)?.into_iter().map(|m| m.value).collect();
                    changes.push(MemberChange::Remove(ids));
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
    use crate::ScimType;
    use serde_json::json;

    fn req(ops: Value) -> PatchRequest {
        match PatchRequest::parse(&json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})) {
            Ok(r) => r,
            Err(e) => panic!("{ops} did not parse: {e}"),
        }
    }

    fn parse_err(body: Value) -> ScimType {
        PatchRequest::parse(&body).unwrap_err().scim_type.unwrap()
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ]
        })
    }

    fn group() -> Value {
        json!({"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides"})
    }

    /// Applies `ops` to `doc`, returning the outcome.
    fn run(kind: ResourceKind, doc: &mut Value, ops: Value) -> PatchOutcome {
        match apply(kind, doc, &req(ops.clone())) {
            Ok(o) => o,
            Err(e) => panic!("{ops} failed: {e}"),
        }
    }

    /// Applies `ops` to a user, expecting an error; checks the user is unchanged.
    fn user_err(ops: Value) -> ScimError {
        let mut doc = user();
        let e = apply(ResourceKind::User, &mut doc, &req(ops.clone()))
            .expect_err(&format!("{ops} should fail"));
        assert_eq!(doc, user(), "the document must be unchanged on error");
        e
    }

    fn member(id: &str) -> MemberValue {
        MemberValue {
            value: id.into(),
            kind: None,
            display: None,
        }
    }

    #[test]
    fn parse_requires_schema_and_operations() {
        let op = json!([{"op": "remove", "path": "nickName"}]);
        assert_eq!(
            parse_err(json!({"Operations": op})),
            ScimType::InvalidSyntax
        );
        assert_eq!(
            parse_err(json!({"schemas": [USER_SCHEMA], "Operations": op})),
            ScimType::InvalidSyntax
        );
        assert_eq!(
            parse_err(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []})),
            ScimType::InvalidSyntax
        );
        assert_eq!(
            parse_err(json!({"schemas": [PATCH_OP_SCHEMA]})),
            ScimType::InvalidSyntax
        );
        assert_eq!(parse_err(json!("x")), ScimType::InvalidSyntax);
        let r =
            PatchRequest::parse(&json!({"schemas": [PATCH_OP_SCHEMA], "operations": op})).unwrap();
        assert_eq!(r.operations.len(), 1);
    }

    #[test]
    fn parse_ops_case_insensitive() {
        let r = req(json!([
            {"op": "Replace", "path": "active", "value": false},
            {"OP": "ADD", "Path": "nickName", "Value": "Babs"},
            {"op": "remove", "path": "title"},
            {"op": "add", "value": {"title": "x"}}
        ]));
        let kinds: Vec<_> = r.operations.iter().map(|o| o.op).collect();
        assert_eq!(
            kinds,
            [
                PatchOpKind::Replace,
                PatchOpKind::Add,
                PatchOpKind::Remove,
                PatchOpKind::Add
            ]
        );
        assert_eq!(r.operations[1].value, Some(json!("Babs")));
        assert_eq!(
            r.operations[1].path.as_ref().unwrap().attr,
            AttrPath::new("nickName")
        );
        assert!(r.operations[3].path.is_none());
    }

    #[test]
    fn parse_errors() {
        let body = |op: Value| json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [op]});
        assert_eq!(
            parse_err(body(json!({"op": "move", "path": "a"}))),
            ScimType::InvalidSyntax
        );
        assert_eq!(
            parse_err(body(json!({"path": "a"}))),
            ScimType::InvalidSyntax
        );
        assert_eq!(parse_err(body(json!({"op": "remove"}))), ScimType::NoTarget);
        assert_eq!(
            parse_err(body(json!({"op": "remove", "path": ""}))),
            ScimType::NoTarget
        );
        assert_eq!(
            parse_err(body(json!({"op": "add", "path": "nickName"}))),
            ScimType::InvalidSyntax
        );
        assert_eq!(
            parse_err(body(
                json!({"op": "replace", "path": "nickName", "value": null})
            )),
            ScimType::InvalidSyntax
        );
        assert_eq!(
            parse_err(body(json!({"op": "remove", "path": "name.givenName.x"}))),
            ScimType::InvalidPath
        );
        assert_eq!(
            parse_err(body(json!({"op": "remove", "path": 3}))),
            ScimType::InvalidPath
        );
        assert_eq!(parse_err(body(json!("add"))), ScimType::InvalidSyntax);
    }

    #[test]
    fn rfc_add_email() {
        // RFC 7644 §3.5.2.1: add to a multi-valued attribute appends.
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "add", "path": "emails",
                    "value": [{"value": "babs@jensen.org", "type": "home"},
                              {"value": "b@other.org", "type": "other"}]}]),
        );
        assert_eq!(
            doc["emails"],
            json!([
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"},
                {"value": "b@other.org", "type": "other"}
            ])
        );
    }

    #[test]
    fn add_single_valued_replaces_and_complex_merges() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([
                {"op": "add", "path": "userName", "value": "babs"},
                {"op": "add", "path": "name", "value": {"givenName": "Babs", "middleName": "J"}},
                {"op": "add", "path": "nickName", "value": "B"}
            ]),
        );
        assert_eq!(doc["userName"], "babs");
        assert_eq!(
            doc["name"],
            json!({"givenName": "Babs", "familyName": "Jensen", "middleName": "J"})
        );
        assert_eq!(doc["nickName"], "B");
    }

    #[test]
    fn pathless_add_and_okta_replace() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([
                {"op": "add", "value": {"emails": [{"value": "x@y.org", "type": "work"}], "nickName": "Babs"}},
                {"op": "replace", "value": {"active": false}}
            ]),
        );
        assert_eq!(doc["active"], false);
        assert_eq!(doc["nickName"], "Babs");
        assert_eq!(doc["emails"].as_array().unwrap().len(), 3);
        // readOnly attributes echoed in a path-less value are ignored.
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "value": {"id": "other", "meta": {}, "displayName": "B J"}}]),
        );
        assert_eq!(doc["displayName"], "B J");
        assert!(doc.get("id").is_none());
    }

    #[test]
    fn entra_boolean_strings() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(doc["active"], false);
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "value": {"active": "True"}}]),
        );
        assert_eq!(doc["active"], true);
    }

    #[test]
    fn pathless_dotted_and_urn_keys() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "value": {
                "name.givenName": "Babs",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tours",
                "urn:ietf:params:scim:schemas:core:2.0:User:title": "Guide",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "7"
            }}]),
        );
        assert_eq!(doc["name"]["givenName"], "Babs");
        assert_eq!(doc["name"]["familyName"], "Jensen");
        assert_eq!(doc["title"], "Guide");
        assert_eq!(
            doc[ENTERPRISE_USER_SCHEMA],
            json!({"department": "Tours", "manager": {"value": "7"}})
        );
        assert_eq!(doc["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    }

    #[test]
    fn extension_paths() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "701984"},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "26118915"},
                {"op": "replace", "value": {ENTERPRISE_USER_SCHEMA: {"costCenter": "4130"}}}
            ]),
        );
        assert_eq!(
            doc[ENTERPRISE_USER_SCHEMA],
            json!({"employeeNumber": "701984", "manager": {"value": "26118915"}, "costCenter": "4130"})
        );
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"}]),
        );
        assert!(doc[ENTERPRISE_USER_SCHEMA].get("manager").is_none());
        // The bare extension URN designates the whole extension object.
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "path": ENTERPRISE_USER_SCHEMA,
                    "value": {"schemas": [ENTERPRISE_USER_SCHEMA], "division": "D"}}]),
        );
        assert_eq!(doc[ENTERPRISE_USER_SCHEMA]["division"], "D");
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]),
        );
        assert!(doc.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(doc["schemas"], json!([USER_SCHEMA]));
    }

    #[test]
    fn replace_with_value_filter() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
        );
        assert_eq!(
            doc["emails"][0],
            json!({"value": "new@example.com", "type": "work", "primary": true})
        );
        // RFC 7644 §3.5.2.3: replace whole matching values.
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "path": "emails[type eq \"home\"]",
                    "value": {"value": "babs@home.org", "type": "home"}}]),
        );
        assert_eq!(
            doc["emails"][1],
            json!({"value": "babs@home.org", "type": "home"})
        );
    }

    #[test]
    fn replace_filter_matching_nothing_is_no_target() {
        let e = user_err(
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x"}]),
        );
        assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn entra_add_through_filter_creates_value() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}]),
        );
        assert_eq!(
            doc["phoneNumbers"],
            json!([{"type": "mobile", "value": "+1 555 0100"}])
        );
        // And a second add through the same filter updates it.
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0199"}]),
        );
        assert_eq!(
            doc["phoneNumbers"],
            json!([{"type": "mobile", "value": "+1 555 0199"}])
        );
    }

    #[test]
    fn remove_operations() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([
                {"op": "remove", "path": "emails[type eq \"home\"]"},
                {"op": "remove", "path": "name.familyName"},
                {"op": "remove", "path": "emails[type eq \"nothing\"]"},
                {"op": "remove", "path": "nickName"}
            ]),
        );
        assert_eq!(
            doc["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(doc["name"], json!({"givenName": "Barbara"}));
        run(
            ResourceKind::User,
            &mut doc,
            json!([
                {"op": "remove", "path": "emails[type eq \"work\"].primary"},
                {"op": "remove", "path": "name.givenName"}
            ]),
        );
        assert_eq!(
            doc["emails"],
            json!([{"value": "bjensen@example.com", "type": "work"}])
        );
        assert!(doc.get("name").is_none());
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "remove", "path": "emails"}]),
        );
        assert!(doc.get("emails").is_none());
    }

    #[test]
    fn remove_with_value_list() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "remove", "path": "emails", "value": [{"value": "babs@jensen.org"}]}]),
        );
        assert_eq!(
            doc["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "remove", "path": "emails", "value": {"value": "bjensen@example.com"}}]),
        );
        assert!(doc.get("emails").is_none());
    }

    #[test]
    fn primary_moves() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "add", "path": "emails", "value": [{"value": "n@x.org", "primary": true}]}]),
        );
        let primaries: Vec<_> = doc["emails"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["primary"] == true)
            .map(|e| e["value"].clone())
            .collect();
        assert_eq!(primaries, [json!("n@x.org")]);
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        );
        let primaries: Vec<_> = doc["emails"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["primary"] == true)
            .map(|e| e["value"].clone())
            .collect();
        assert_eq!(primaries, [json!("babs@jensen.org")]);
        // Two primaries in one value: invalidValue.
        let e = user_err(json!([{"op": "replace", "path": "emails", "value": [
            {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn read_only_targets_are_mutability() {
        for path in [
            "id",
            "meta",
            "meta.created",
            "groups",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
        ] {
            let e = user_err(json!([{"op": "replace", "path": path, "value": "x"}]));
            assert_eq!(e.scim_type, Some(ScimType::Mutability), "{path}");
        }
        let e = user_err(json!([{"op": "remove", "path": "groups"}]));
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn unknown_attributes_are_invalid_path() {
        for ops in [
            json!([{"op": "replace", "path": "favouriteColour", "value": "x"}]),
            json!([{"op": "replace", "path": "name.nope", "value": "x"}]),
            json!([{"op": "add", "value": {"favouriteColour": "x"}}]),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].nope", "value": "x"}]),
            json!([{"op": "remove", "path": "name[givenName eq \"x\"]"}]),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:displayName", "value": "x"}]),
        ] {
            let e = user_err(ops.clone());
            assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{ops}");
        }
    }

    #[test]
    fn wrong_types_are_invalid_value() {
        for ops in [
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            json!([{"op": "replace", "path": "userName", "value": 3}]),
            json!([{"op": "add", "path": "emails", "value": "x@y"}]),
            json!([{"op": "replace", "path": "name", "value": ["x"]}]),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "x"}]),
            json!([{"op": "add", "value": {ENTERPRISE_USER_SCHEMA: "x"}}]),
        ] {
            let e = user_err(ops.clone());
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{ops}");
        }
        let e = user_err(json!([{"op": "add", "value": "x"}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    }

    #[test]
    fn required_attributes_stay() {
        let e = user_err(json!([{"op": "remove", "path": "userName"}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
        let e = user_err(json!([{"op": "replace", "path": "userName", "value": ""}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn all_or_nothing() {
        // The first operation succeeds, the second fails: nothing is applied.
        let e = user_err(json!([
            {"op": "replace", "path": "nickName", "value": "B"},
            {"op": "replace", "path": "nope", "value": "x"}
        ]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn password_is_extracted() {
        let mut doc = user();
        let out = run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "path": "password", "value": "s3cret"}]),
        );
        assert_eq!(out.password.as_deref(), Some("s3cret"));
        assert!(doc.get("password").is_none());
        let out = run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "replace", "value": {"password": "p2"}}]),
        );
        assert_eq!(out.password.as_deref(), Some("p2"));
        let out = run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "remove", "path": "password"}]),
        );
        assert_eq!(out.password, None);
        assert_eq!(doc, user());
        let e = user_err(json!([{"op": "replace", "path": "password", "value": 5}]));
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn rfc_group_member_operations() {
        let mut doc = group();
        let out = run(
            ResourceKind::Group,
            &mut doc,
            json!([
                // RFC 7644 §3.5.2.1
                {"op": "add", "path": "members", "value": [
                    {"display": "Babs Jensen", "$ref": "https://example.com/v2/Users/2819c223", "value": "2819c223"}]},
                // RFC 7644 §3.5.2.2
                {"op": "remove", "path": "members[value eq \"2819c223-7f76-...413861904646\"]"},
                {"op": "remove", "path": "members"},
                // RFC 7644 §3.5.2.3
                {"op": "replace", "path": "members", "value": [{"value": "a", "type": "User"}, {"value": "b"}]},
                {"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"},
                {"op": "remove", "path": "members[type eq \"Group\"]"}
            ]),
        );
        assert_eq!(doc, group());
        let babs = MemberValue {
            value: "2819c223".into(),
            kind: None,
            display: Some("Babs Jensen".into()),
        };
        let a = MemberValue {
            kind: Some(ResourceKind::User),
            ..member("a")
        };
        let type_filter = req(json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]))
            .operations[0]
            .path
            .clone()
            .unwrap()
            .filter
            .unwrap();
        assert_eq!(
            out.member_changes,
            vec![
                MemberChange::Add(vec![babs]),
                MemberChange::Remove(vec!["2819c223-7f76-...413861904646".into()]),
                MemberChange::Clear,
                MemberChange::Clear,
                MemberChange::Add(vec![a, member("b")]),
                MemberChange::Remove(vec!["a".into(), "b".into()]),
                MemberChange::RemoveWhere(type_filter),
            ]
        );
    }

    #[test]
    fn azure_member_removal_by_value() {
        let mut doc = group();
        let out = run(
            ResourceKind::Group,
            &mut doc,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "x"}, {"value": "y"}]}]),
        );
        assert_eq!(
            out.member_changes,
            vec![MemberChange::Remove(vec!["x".into(), "y".into()])]
        );
    }

    #[test]
    fn pathless_members_and_display_name() {
        let mut doc = group();
        let out = run(
            ResourceKind::Group,
            &mut doc,
            json!([
                {"op": "replace", "value": {"displayName": "Guides", "members": [{"value": "m1"}]}},
                {"op": "add", "value": {"members": [{"value": "m2"}]}}
            ]),
        );
        assert_eq!(doc["displayName"], "Guides");
        assert!(doc.get("members").is_none());
        assert_eq!(
            out.member_changes,
            vec![
                MemberChange::Clear,
                MemberChange::Add(vec![member("m1")]),
                MemberChange::Add(vec![member("m2")]),
            ]
        );
    }

    #[test]
    fn member_errors() {
        let cases = [
            (
                json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "add", "path": "members", "value": "m1"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "members[value eq \"a\"].value", "value": "b"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "members.display", "value": "b"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "add", "path": "members[value eq \"a\"]", "value": [{"value": "b"}]}]),
                ScimType::InvalidPath,
            ),
        ];
        for (ops, want) in cases {
            let mut doc = group();
            let e = apply(ResourceKind::Group, &mut doc, &req(ops.clone())).unwrap_err();
            assert_eq!(e.scim_type, Some(want), "{ops}");
            assert_eq!(doc, group());
        }
        let mut doc = group();
        let e = apply(
            ResourceKind::Group,
            &mut doc,
            &req(json!([{"op": "remove", "path": "displayName"}])),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn no_duplicates_on_add() {
        let mut doc = user();
        run(
            ResourceKind::User,
            &mut doc,
            json!([{"op": "add", "path": "emails", "value": {"value": "babs@jensen.org", "type": "home"}}]),
        );
        assert_eq!(doc, user());
    }

    #[test]
    fn hand_built_paths() {
        // Operations built without the path parser.
        let request = PatchRequest {
            operations: vec![PatchOperation {
                op: PatchOpKind::Replace,
                path: Some(PatchPath {
                    attr: AttrPath::new("emails"),
                    filter: Some(Filter::Compare(
                        AttrPath::new("type"),
                        CompOp::Eq,
                        CompValue::String("work".into()),
                    )),
                    sub_attr: Some("display".into()),
                }),
                value: Some(json!("Work")),
            }],
        };
        let mut doc = user();
        apply(ResourceKind::User, &mut doc, &request).unwrap();
        assert_eq!(doc["emails"][0]["display"], "Work");
    }

    fn all_paths(kind: ResourceKind) -> Vec<String> {
        let mut out = Vec::new();
        let common = crate::schema::COMMON_ATTRIBUTES.iter().map(|a| (None, a));
        let schemas = kind
            .schemas()
            .flat_map(|s| s.attributes.iter().map(move |a| (Some(s), a)));
        for (schema, a) in common.chain(schemas) {
            let base = match schema {
                Some(s) if s.id != kind.core_schema().id => format!("{}:{}", s.id, a.name),
                _ => a.name.to_string(),
            };
            out.push(base.clone());
            for sub in a.sub_attributes {
                out.push(format!("{base}.{}", sub.name));
            }
            if a.multi_valued {
                for f in [
                    "[type eq \"work\"]",
                    "[value eq \"x\"]",
                    "[primary eq true]",
                ] {
                    out.push(format!("{base}{f}"));
                    for sub in a.sub_attributes {
                        out.push(format!("{base}{f}.{}", sub.name));
                    }
                }
            }
        }
        for s in kind.extensions() {
            out.push(s.id.to_string());
        }
        out
    }

    fn sample_values() -> Vec<Value> {
        vec![
            json!(true),
            json!("True"),
            json!(1),
            json!(1.5),
            json!("work"),
            json!("2010-01-23T04:56:22Z"),
            json!([]),
            json!([null]),
            json!([{}]),
            json!({}),
            json!({"value": 1}),
            json!({"value": "x", "type": "work", "primary": true}),
            json!([{"value": "x", "primary": true}, {"value": "y", "primary": "true"}]),
            json!([{"value": "x", "type": "work"}, "y"]),
            json!({"givenName": "G", "department": "D", "value": "v"}),
        ]
    }

    /// Whatever the operation, `apply` does not panic, leaves the document
    /// unchanged on error, and otherwise leaves a document that `normalize`
    /// accepts as it is.
    #[test]
    fn apply_invariants() {
        for (kind, start) in [
            (ResourceKind::User, {
                let mut u = user();
                u["phoneNumbers"] = json!([{"value": "1", "type": "work"}]);
                u["schemas"] = json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]);
                u[ENTERPRISE_USER_SCHEMA] = json!({"department": "D", "manager": {"value": "m"}});
                u
            }),
            (ResourceKind::Group, group()),
        ] {
            let mut ops: Vec<Value> = Vec::new();
            for path in all_paths(kind) {
                ops.push(json!({"op": "remove", "path": path}));
                for v in sample_values() {
                    ops.push(json!({"op": "add", "path": path, "value": v}));
                    ops.push(json!({"op": "replace", "path": path, "value": v}));
                }
            }
            for path in all_paths(kind) {
                for v in sample_values() {
                    ops.push(json!({"op": "add", "value": {path.as_str(): v}}));
                    ops.push(json!({"op": "replace", "value": {path.as_str(): v}}));
                }
            }
            let (mut ok, mut failed) = (0, 0);
            for op in ops {
                let Ok(request) =
                    PatchRequest::parse(&json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [op]}))
                else {
                    continue;
                };
                let mut doc = start.clone();
                match apply(kind, &mut doc, &request) {
                    Ok(_) => {
                        ok += 1;
                        let again = crate::resource::normalize(kind, &doc)
                            .unwrap_or_else(|e| panic!("{op}: result rejected: {e}"));
                        assert_eq!(again.doc, doc, "{op}");
                    }
                    Err(e) => {
                        failed += 1;
                        assert_eq!(doc, start, "{op}: changed on error {e}");
                        assert!(e.scim_type.is_some(), "{op}: {e}");
                    }
                }
            }
            assert!(
                ok > 100 && failed > 100,
                "{kind:?}: {ok} ok, {failed} failed"
            );
        }
    }

    /// `normalize` does not panic on any attribute/value pair, and its output is
    /// a fixed point.
    #[test]
    fn normalize_invariants() {
        for kind in ResourceKind::ALL {
            let required = match kind {
                ResourceKind::User => "userName",
                ResourceKind::Group => "displayName",
            };
            for key in all_paths(kind) {
                for v in sample_values() {
                    let body = json!({
                        "schemas": kind.schema_ids(),
                        required: "x",
                        key.as_str(): v,
                    });
                    match crate::resource::normalize(kind, &body) {
                        Ok(n) => {
                            let again = crate::resource::normalize(kind, &n.doc)
                                .unwrap_or_else(|e| panic!("{body}: output rejected: {e}"));
                            assert_eq!(again.doc, n.doc, "{body}");
                        }
                        Err(e) => assert!(e.scim_type.is_some(), "{body}: {e}"),
                    }
                }
            }
        }
    }
}
