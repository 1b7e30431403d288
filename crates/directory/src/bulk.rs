//! Bulk operations (RFC 7644 §3.7): a sequence of POST/PUT/PATCH/DELETE applied
//! one by one, each in its own transaction, with `bulkId` cross-references and
//! `failOnErrors`.

use crate::render::Projection;
use crate::service::{Directory, OrgScope};
use scim::{ResourceKind, ScimError};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Bulk limits, advertised in `/ServiceProviderConfig`.
#[derive(Debug, Clone)]
pub struct BulkLimits {
    pub max_operations: usize,
    /// Bytes; larger requests are refused with 413 before parsing.
    pub max_payload_size: usize,
}

impl Default for BulkLimits {
    fn default() -> Self {
        BulkLimits {
            max_operations: 1000,
            max_payload_size: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

struct Operation {
    method: Method,
    bulk_id: Option<String>,
    version: Option<String>,
    path: String,
    data: Option<Value>,
}

const REF_PREFIX: &str = "bulkId:";

impl Directory {
    /// `POST /Bulk`. Errors of individual operations are reported in the
    /// response; only a malformed request as a whole is an `Err`.
    pub async fn bulk(&self, scope: OrgScope<'_>, body: &Value) -> Result<Value, ScimError> {
        let (ops, fail_on_errors) = parse(body, self.limits().bulk.max_operations)?;
        // bulkId -> created resource id, or None when its operation failed.
        let mut resolved: HashMap<String, Option<String>> = HashMap::new();
        // bulkId -> the operations declaring it, to tell in O(1) whether a
        // reference still waits for an operation that has not run.
        let mut declared: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, o) in ops.iter().enumerate() {
            if let Some(b) = &o.bulk_id {
                declared.entry(b.clone()).or_default().push(i);
            }
        }
        let mut results: Vec<Option<Value>> = vec![None; ops.len()];
        let mut errors = 0usize;
        let mut queue: Vec<usize> = (0..ops.len()).collect();
        // Operations whose references are not yet resolvable wait for a later pass;
        // a pass that makes no progress ends the loop (circular or dangling refs).
        loop {
            let mut deferred = Vec::new();
            let mut progressed = false;
            for &i in &queue {
                if fail_on_errors.is_some_and(|max| errors >= max) {
                    break;
                }
                let op = &ops[i];
                let waits_on = |r: &str| {
                    !resolved.contains_key(r)
                        && declared
                            .get(r)
                            .is_some_and(|js| js.iter().any(|&j| j != i && results[j].is_none()))
                };
                let refs = references(op);
                if refs.iter().any(|r| waits_on(r)) {
                    deferred.push(i);
                    continue;
                }
                progressed = true;
                let outcome = self.run(scope, op, &resolved).await;
                let entry = match outcome {
                    Ok((status, location, version, id)) => {
                        if let Some(b) = &op.bulk_id {
                            resolved.insert(b.clone(), id);
                        }
                        let mut e =
                            json!({"method": method_name(op.method), "status": status.to_string()});
                        if let Some(l) = location {
                            e["location"] = Value::String(l);
                        }
                        if let Some(v) = version {
                            e["version"] = Value::String(v);
                        }
                        e
                    }
                    Err(err) => {
                        errors += 1;
                        if let Some(b) = &op.bulk_id {
                            resolved.insert(b.clone(), None);
                        }
                        json!({
                            "method": method_name(op.method),
                            "status": err.status.to_string(),
                            "response": err.to_json(),
                        })
                    }
                };
                results[i] = Some(with_bulk_id(entry, op));
            }
            if deferred.is_empty() || !progressed || fail_on_errors.is_some_and(|m| errors >= m) {
                for &i in &deferred {
                    let err = ScimError::status(
                        409,
                        "a bulkId reference could not be resolved (circular or unknown)",
                    );
                    results[i] = Some(with_bulk_id(
                        json!({
                            "method": method_name(ops[i].method),
                            "status": "409",
                            "response": err.to_json(),
                        }),
                        &ops[i],
                    ));
                }
                break;
            }
            queue = deferred;
        }
        Ok(json!({
            "schemas": [BULK_RESPONSE_SCHEMA],
            "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
        }))
    }

    /// Runs one operation: (status, location, version, created id).
    async fn run(
        &self,
        scope: OrgScope<'_>,
        op: &Operation,
        resolved: &HashMap<String, Option<String>>,
    ) -> Result<(u16, Option<String>, Option<String>, Option<String>), ScimError> {
        let path = substitute_str(&op.path, resolved)?;
        let data = match &op.data {
            Some(d) => Some(substitute(d, resolved)?),
            None => None,
        };
        let (kind, id) = parse_path(&path)?;
        let proj = Projection::default();
        let data_or_err = || {
            data.as_ref()
                .ok_or_else(|| ScimError::invalid_syntax("this bulk operation needs data"))
        };
        match (op.method, id) {
            (Method::Post, None) => {
                let r = self.create(scope, kind, data_or_err()?, &proj).await?;
                let id = r.json.get("id").and_then(Value::as_str).map(str::to_owned);
                Ok((201, Some(r.location.clone()), Some(r.etag()), id))
            }
            (Method::Put, Some(id)) => {
                let r = self
                    .replace(
                        scope,
                        kind,
                        id,
                        data_or_err()?,
                        op.version.as_deref(),
                        &proj,
                    )
                    .await?;
                Ok((200, Some(r.location.clone()), Some(r.etag()), None))
            }
            (Method::Patch, Some(id)) => {
                let r = self
                    .patch(
                        scope,
                        kind,
                        id,
                        data_or_err()?,
                        op.version.as_deref(),
                        &proj,
                    )
                    .await?;
                Ok((200, Some(r.location.clone()), Some(r.etag()), None))
            }
            (Method::Delete, Some(id)) => {
                self.delete(scope, kind, id, op.version.as_deref()).await?;
                Ok((
                    204,
                    Some(format!("{}/{}/{}", scope.base_url, kind.endpoint(), id)),
                    None,
                    None,
                ))
            }
            (Method::Post, Some(_)) => Err(ScimError::invalid_path(
                "a bulk POST path names a resource type, e.g. /Users",
            )),
            _ => Err(ScimError::invalid_path(
                "a bulk PUT, PATCH or DELETE path names a resource, e.g. /Users/{id}",
            )),
        }
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

fn with_bulk_id(mut entry: Value, op: &Operation) -> Value {
    if let Some(b) = &op.bulk_id {
        entry["bulkId"] = Value::String(b.clone());
    }
    entry
}

fn parse(
    body: &Value,
    max_operations: usize,
) -> Result<(Vec<Operation>, Option<usize>), ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a bulk request must be a JSON object"))?;
    let schemas_ok = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(BULK_REQUEST_SCHEMA)));
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!(
            "schemas must contain {BULK_REQUEST_SCHEMA}"
        )));
    }
    let fail_on_errors =
        match get_ci(obj, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                ScimError::invalid_value("failOnErrors must be a positive integer")
            })? as usize),
        };
    let raw = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("Operations must be an array"))?;
    if raw.len() > max_operations {
        return Err(ScimError::status(
            413,
            format!("at most {max_operations} operations per bulk request"),
        ));
    }
    let mut ops = Vec::with_capacity(raw.len());
    for (i, o) in raw.iter().enumerate() {
        let o = o
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {i} is not an object")))?;
        let method = match get_ci(o, "method")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
        {
            Some(m) if m == "POST" => Method::Post,
            Some(m) if m == "PUT" => Method::Put,
            Some(m) if m == "PATCH" => Method::Patch,
            Some(m) if m == "DELETE" => Method::Delete,
            _ => {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {i}: method must be POST, PUT, PATCH or DELETE"
                )))
            }
        };
        let path = get_ci(o, "path")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {i}: path is required")))?
            .to_owned();
        let bulk_id = get_ci(o, "bulkId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if method == Method::Post && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "operation {i}: bulkId is required with POST"
            )));
        }
        ops.push(Operation {
            method,
            bulk_id,
            version: get_ci(o, "version")
                .and_then(Value::as_str)
                .map(str::to_owned),
            path,
            data: get_ci(o, "data").cloned(),
        });
    }
    Ok((ops, fail_on_errors))
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn parse_path(path: &str) -> Result<(ResourceKind, Option<&str>), ScimError> {
    let trimmed = path.trim_start_matches('/');
    let (ty, id) = match trimmed.split_once('/') {
        Some((t, id)) => (t, Some(id)),
        None => (trimmed, None),
    };
    let kind = match ty {
        "Users" => ResourceKind::User,
        "Groups" => ResourceKind::Group,
        _ => {
            return Err(ScimError::invalid_path(format!(
                "unknown resource path {path}"
            )))
        }
    };
    if id.is_some_and(|id| id.is_empty() || id.contains('/')) {
        return Err(ScimError::invalid_path(format!("bad resource path {path}")));
    }
    Ok((kind, id))
}

/// Every `bulkId:x` referenced by an operation's path or data.
fn references(op: &Operation) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = op.path.split('/').find_map(|s| s.strip_prefix(REF_PREFIX)) {
        out.push(r.to_owned());
    }
    if let Some(d) = &op.data {
        collect_refs(d, &mut out);
    }
    out
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(r) = s.strip_prefix(REF_PREFIX) {
                out.push(r.to_owned());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn lookup(r: &str, resolved: &HashMap<String, Option<String>>) -> Result<String, ScimError> {
    match resolved.get(r) {
        Some(Some(id)) => Ok(id.clone()),
        Some(None) => Err(ScimError::status(
            409,
            format!("bulkId {r} refers to an operation that failed"),
        )),
        None => Err(ScimError::status(409, format!("bulkId {r} is not defined"))),
    }
}

fn substitute_str(
    s: &str,
    resolved: &HashMap<String, Option<String>>,
) -> Result<String, ScimError> {
    s.split('/')
        .map(|seg| match seg.strip_prefix(REF_PREFIX) {
            Some(r) => lookup(r, resolved),
            None => Ok(seg.to_owned()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|parts| parts.join("/"))
}

fn substitute(v: &Value, resolved: &HashMap<String, Option<String>>) -> Result<Value, ScimError> {
    Ok(match v {
        Value::String(s) => match s.strip_prefix(REF_PREFIX) {
            Some(r) => Value::String(lookup(r, resolved)?),
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute(x, resolved))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), substitute(x, resolved)?)))
                .collect::<Result<_, ScimError>>()?,
        ),
        _ => v.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_schema_methods_and_limits() {
        let ok = json!({"schemas": [BULK_REQUEST_SCHEMA], "failOnErrors": 1, "Operations": [
            {"method": "post", "path": "/Users", "bulkId": "a", "data": {}},
            {"method": "DELETE", "path": "/Users/x"}
        ]});
        let (ops, f) = parse(&ok, 10).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(f, Some(1));
        assert_eq!(parse(&ok, 1).err().unwrap().status, 413);
        let no_bulk_id = json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [
            {"method": "POST", "path": "/Users", "data": {}}]});
        assert_eq!(parse(&no_bulk_id, 10).err().unwrap().status, 400);
        let no_schema = json!({"Operations": []});
        assert!(parse(&no_schema, 10).is_err());
    }

    #[test]
    fn references_are_found_and_substituted() {
        let mut resolved = HashMap::new();
        resolved.insert("u1".to_owned(), Some("id-1".to_owned()));
        resolved.insert("bad".to_owned(), None);
        let data = json!({"members": [{"value": "bulkId:u1"}], "x": "bulkId:"});
        let op = Operation {
            method: Method::Post,
            bulk_id: Some("g".into()),
            version: None,
            path: "/Groups".into(),
            data: Some(data.clone()),
        };
        assert_eq!(references(&op), vec!["u1".to_owned(), String::new()]);
        let out = substitute(&json!({"members": [{"value": "bulkId:u1"}]}), &resolved).unwrap();
        assert_eq!(out["members"][0]["value"], "id-1");
        assert_eq!(
            substitute(&json!("bulkId:bad"), &resolved)
                .unwrap_err()
                .status,
            409
        );
        assert_eq!(
            substitute_str("/Users/bulkId:u1", &resolved).unwrap(),
            "/Users/id-1"
        );
    }

    #[test]
    fn paths_name_a_type_and_maybe_an_id() {
        assert_eq!(parse_path("/Users").unwrap(), (ResourceKind::User, None));
        assert_eq!(
            parse_path("/Groups/abc").unwrap(),
            (ResourceKind::Group, Some("abc"))
        );
        assert!(parse_path("/Nope").is_err());
        assert!(parse_path("/Users/a/b").is_err());
    }
}
