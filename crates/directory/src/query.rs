//! List and search parameters (RFC 7644 §3.4.2 and §3.4.3), from a query string
//! or a `SearchRequest` body, with the server's limits applied.

use scim::resource::parse_attr_list;
use scim::{AttrPath, Filter, ScimError};
use serde_json::Value;

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A list or search request, validated.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub filter: Option<Filter>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    /// 1-based.
    pub start_index: u64,
    /// `None` when the client did not ask: the server's maximum applies.
    pub count: Option<u64>,
    pub attributes: Vec<AttrPath>,
    pub excluded_attributes: Vec<AttrPath>,
}

impl SearchRequest {
    /// From query parameters (`GET /Users?filter=...`). Parameter names are matched
    /// case-insensitively; unknown parameters are ignored.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ScimError> {
        let mut req = SearchRequest {
            start_index: 1,
            ..Default::default()
        };
        for (k, v) in params {
            match k.to_ascii_lowercase().as_str() {
                "filter" => req.filter = Some(Filter::parse(v)?),
                "sortby" => req.sort_by = Some(parse_sort_by(v)?),
                "sortorder" => req.descending = parse_sort_order(v)?,
                "startindex" => req.start_index = parse_start_index(v)?,
                "count" => req.count = Some(parse_count(v)?),
                "attributes" => req.attributes = parse_attr_list(v)?,
                "excludedattributes" => req.excluded_attributes = parse_attr_list(v)?,
                _ => {}
            }
        }
        Ok(req)
    }

    /// From a `POST .search` body.
    pub fn from_body(body: &Value) -> Result<Self, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the search request must be a JSON object"))?;
        if let Some(schemas) = obj.get("schemas") {
            let ok = schemas
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SEARCH_REQUEST_SCHEMA)));
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "schemas must contain {SEARCH_REQUEST_SCHEMA}"
                )));
            }
        }
        let mut req = SearchRequest {
            start_index: 1,
            ..Default::default()
        };
        for (k, v) in obj {
            let lower = k.to_ascii_lowercase();
            let text = |v: &Value| -> Result<String, ScimError> {
                match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Array(a) => Ok(a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")),
                    _ => Err(ScimError::invalid_value(format!("{k} has the wrong type"))),
                }
            };
            match lower.as_str() {
                "filter" => req.filter = Some(Filter::parse(&text(v)?)?),
                "sortby" => req.sort_by = Some(parse_sort_by(&text(v)?)?),
                "sortorder" => req.descending = parse_sort_order(&text(v)?)?,
                "startindex" => req.start_index = parse_start_index(&text(v)?)?,
                "count" => req.count = Some(parse_count(&text(v)?)?),
                "attributes" => req.attributes = parse_attr_list(&text(v)?)?,
                "excludedattributes" => req.excluded_attributes = parse_attr_list(&text(v)?)?,
                _ => {}
            }
        }
        Ok(req)
    }
}

fn parse_sort_by(v: &str) -> Result<AttrPath, ScimError> {
    let p = scim::PatchPath::parse(v.trim())
        .map_err(|_| ScimError::invalid_value(format!("sortBy {v:?} is not an attribute path")))?;
    if p.filter.is_some() || p.sub_attr.is_some() {
        return Err(ScimError::invalid_value(
            "sortBy takes an attribute path, not a filter",
        ));
    }
    Ok(p.attr)
}

fn parse_sort_order(v: &str) -> Result<bool, ScimError> {
    match v.to_ascii_lowercase().as_str() {
        "ascending" | "" => Ok(false),
        "descending" => Ok(true),
        _ => Err(ScimError::invalid_value(
            "sortOrder must be \"ascending\" or \"descending\"",
        )),
    }
}

/// RFC 7644 §3.4.2.4: a startIndex below 1 is treated as 1.
fn parse_start_index(v: &str) -> Result<u64, ScimError> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| ScimError::invalid_value("startIndex must be an integer"))?;
    Ok(n.max(1) as u64)
}

/// RFC 7644 §3.4.2.4: a negative count is treated as 0.
fn parse_count(v: &str) -> Result<u64, ScimError> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| ScimError::invalid_value("count must be an integer"))?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_are_case_insensitive_and_clamped() {
        let r = SearchRequest::from_params([
            ("StartIndex", "-3"),
            ("COUNT", "-1"),
            ("sortOrder", "Descending"),
        ])
        .unwrap();
        assert_eq!(r.start_index, 1);
        assert_eq!(r.count, Some(0));
        assert!(r.descending);
    }

    #[test]
    fn bad_numbers_are_invalid_value() {
        let e = SearchRequest::from_params([("count", "ten")]).unwrap_err();
        assert_eq!(e.scim_type, Some(scim::ScimType::InvalidValue));
    }

    #[test]
    fn body_needs_the_search_schema_when_it_names_one() {
        let e = SearchRequest::from_body(&json!({"schemas": ["urn:x"], "count": 1})).unwrap_err();
        assert_eq!(e.scim_type, Some(scim::ScimType::InvalidSyntax));
        let r = SearchRequest::from_body(&json!({
            "schemas": [SEARCH_REQUEST_SCHEMA], "startIndex": 3, "count": 10,
            "attributes": ["userName", "name.givenName"]
        }))
        .unwrap();
        assert_eq!((r.start_index, r.count), (3, Some(10)));
        assert_eq!(r.attributes.len(), 2);
    }
}
