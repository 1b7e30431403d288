//! The discovery documents of RFC 7644 §4 built from the static schema tables:
//! `/ServiceProviderConfig` (RFC 7643 §5), `/ResourceTypes` (§6) and `/Schemas`
//! (§7). Each carries `meta.location` under the base URL it is given.

use crate::schema::{
    AttrDef, ResourceKind, SchemaDef, ALL_SCHEMAS, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA,
};
use serde_json::{json, Map, Value};

/// The `urn:ietf:params:scim:api:messages:2.0:ListResponse` schema URN.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The service provider's limits, published in `/ServiceProviderConfig`.
///
/// PATCH, sorting, ETags and password changes are always supported; bulk is
/// advertised as supported when `bulk_max_operations` is not zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `filter.maxResults`: the most resources one list response holds.
    pub max_results: u64,
    /// `bulk.maxOperations`.
    pub bulk_max_operations: usize,
    /// `bulk.maxPayloadSize`, in bytes.
    pub bulk_max_payload_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_results: 1000,
            bulk_max_operations: 1000,
            bulk_max_payload_size: 1 << 20,
        }
    }
}

/// A complete (unpaged) `ListResponse` holding `resources` (RFC 7644 §3.4.2).
pub fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

fn base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// The `/ServiceProviderConfig` document.
pub fn service_provider_config(base_url: &str, limits: &Limits) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": true},
        "bulk": {
            "supported": limits.bulk_max_operations > 0,
            "maxOperations": limits.bulk_max_operations,
            "maxPayloadSize": limits.bulk_max_payload_size,
        },
        "filter": {"supported": true, "maxResults": limits.max_results},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication scheme using the OAuth Bearer Token Standard",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base(base_url)),
        },
    })
}

fn resource_type_json(base_url: &str, kind: ResourceKind) -> Value {
    let core = kind.core_schema();
    let extensions: Vec<Value> = kind
        .extensions()
        .iter()
        .map(|s| json!({"schema": s.id, "required": false}))
        .collect();
    let mut v = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": format!("/{}", kind.endpoint()),
        "description": core.description,
        "schema": core.id,
    });
    if !extensions.is_empty() {
        v["schemaExtensions"] = Value::Array(extensions);
    }
    v["meta"] = json!({
        "resourceType": "ResourceType",
        "location": format!("{}/ResourceTypes/{}", base(base_url), kind.name()),
    });
    v
}

/// The `/ResourceTypes` list response.
pub fn resource_types(base_url: &str) -> Value {
    list_response(
        ResourceKind::ALL
            .into_iter()
            .map(|k| resource_type_json(base_url, k))
            .collect(),
    )
}

/// The `/ResourceTypes/{id}` document, `None` for an unknown id.
pub fn resource_type(base_url: &str, id: &str) -> Option<Value> {
    ResourceKind::ALL
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(id))
        .map(|k| resource_type_json(base_url, k))
}

fn attribute_json(def: &AttrDef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), def.name.into());
    m.insert("type".into(), def.ty.as_str().into());
    m.insert("multiValued".into(), def.multi_valued.into());
    m.insert("description".into(), def.description.into());
    m.insert("required".into(), def.required.into());
    if !def.canonical_values.is_empty() {
        m.insert("canonicalValues".into(), def.canonical_values.into());
    }
    m.insert("caseExact".into(), def.case_exact.into());
    m.insert("mutability".into(), def.mutability.as_str().into());
    m.insert("returned".into(), def.returned.as_str().into());
    m.insert("uniqueness".into(), def.uniqueness.as_str().into());
    if !def.reference_types.is_empty() {
        m.insert("referenceTypes".into(), def.reference_types.into());
    }
    if !def.sub_attributes.is_empty() {
        m.insert(
            "subAttributes".into(),
            def.sub_attributes.iter().map(attribute_json).collect(),
        );
    }
    Value::Object(m)
}

/// The schema document (RFC 7643 §7) of one schema.
pub fn schema_json(base_url: &str, schema: &SchemaDef) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attributes.iter().map(attribute_json).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", base(base_url), schema.id),
        },
    })
}

/// The `/Schemas` list response: User, EnterpriseUser, Group and the three
/// discovery schemas.
pub fn schemas(base_url: &str) -> Value {
    list_response(
        ALL_SCHEMAS
            .iter()
            .map(|s| schema_json(base_url, s))
            .collect(),
    )
}

/// The `/Schemas/{id}` document, `None` for an unknown URN.
pub fn schema(base_url: &str, id: &str) -> Option<Value> {
    ALL_SCHEMAS
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .map(|s| schema_json(base_url, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

    const BASE: &str = "https://example.org/scim/v2/org/";

    #[test]
    fn service_provider_config_document() {
        let limits = Limits {
            max_results: 200,
            bulk_max_operations: 50,
            bulk_max_payload_size: 4096,
        };
        let v = service_provider_config(BASE, &limits);
        assert_eq!(v["schemas"][0], SERVICE_PROVIDER_CONFIG_SCHEMA);
        assert_eq!(v["patch"]["supported"], true);
        assert_eq!(
            v["bulk"],
            json!({"supported": true, "maxOperations": 50, "maxPayloadSize": 4096})
        );
        assert_eq!(v["filter"], json!({"supported": true, "maxResults": 200}));
        assert_eq!(v["changePassword"]["supported"], true);
        assert_eq!(v["sort"]["supported"], true);
        assert_eq!(v["etag"]["supported"], true);
        assert_eq!(v["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert_eq!(
            v["meta"]["location"],
            "https://example.org/scim/v2/org/ServiceProviderConfig"
        );
        let no_bulk = Limits {
            bulk_max_operations: 0,
            ..limits
        };
        assert_eq!(
            service_provider_config(BASE, &no_bulk)["bulk"]["supported"],
            false
        );
    }

    #[test]
    fn resource_types_list() {
        let v = resource_types(BASE);
        assert_eq!(v["schemas"][0], LIST_RESPONSE_SCHEMA);
        assert_eq!(v["totalResults"], 2);
        let user = &v["Resources"][0];
        assert_eq!(user["id"], "User");
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schema"], USER_SCHEMA);
        assert_eq!(
            user["schemaExtensions"],
            json!([{"schema": ENTERPRISE_USER_SCHEMA, "required": false}])
        );
        assert_eq!(
            user["meta"]["location"],
            "https://example.org/scim/v2/org/ResourceTypes/User"
        );
        let group = &v["Resources"][1];
        assert_eq!(group["schema"], GROUP_SCHEMA);
        assert!(group.get("schemaExtensions").is_none());
        assert_eq!(resource_type(BASE, "Group").as_ref(), Some(group));
        assert!(resource_type(BASE, "Nope").is_none());
    }

    #[test]
    fn schemas_list() {
        let v = schemas(BASE);
        assert_eq!(v["totalResults"], 6);
        let names: Vec<&str> = v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "User",
                "EnterpriseUser",
                "Group",
                "ServiceProviderConfig",
                "ResourceType",
                "Schema"
            ]
        );
        let user = schema(BASE, USER_SCHEMA).unwrap();
        assert_eq!(
            user["meta"]["location"],
            format!("https://example.org/scim/v2/org/Schemas/{USER_SCHEMA}")
        );
        let attrs = user["attributes"].as_array().unwrap();
        let user_name = &attrs[0];
        assert_eq!(
            user_name,
            &json!({
                "name": "userName",
                "type": "string",
                "multiValued": false,
                "description": user_name["description"],
                "required": true,
                "caseExact": false,
                "mutability": "readWrite",
                "returned": "default",
                "uniqueness": "server",
            })
        );
        let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
        assert_eq!(emails["multiValued"], true);
        let email_type = &emails["subAttributes"][2];
        assert_eq!(
            email_type["canonicalValues"],
            json!(["work", "home", "other"])
        );
        let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
        assert_eq!(password["returned"], "never");
        assert_eq!(password["mutability"], "writeOnly");
        let groups = attrs.iter().find(|a| a["name"] == "groups").unwrap();
        assert_eq!(
            groups["subAttributes"][1]["referenceTypes"],
            json!(["User", "Group"])
        );
        // The common attributes are not part of any schema.
        assert!(attrs
            .iter()
            .all(|a| a["name"] != "id" && a["name"] != "meta"));
        let schema_schema = schema(BASE, SCHEMA_SCHEMA).unwrap();
        let sub = &schema_schema["attributes"][3]["subAttributes"];
        assert!(sub
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "subAttributes"));
        assert!(schema(BASE, "urn:nope").is_none());
    }
}
