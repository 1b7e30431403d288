//! Applies fuzzed PATCH requests to a stored User and Group.
//!
//! Input layout: the first byte picks the resource kind (bit 7: Group) and the
//! mode (`byte % 4`): 0 means the rest is a whole PATCH body in JSON; 1, 2 and
//! 3 mean one `add`, `remove` or `replace` operation whose path is the text up
//! to the first newline and whose value is the JSON after it (or that text as
//! a JSON string when it is not JSON). Checked: nothing panics; a failed
//! request leaves the document unchanged; a successful one leaves a document
//! that validates again as a resource body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim::patch::{apply, PatchRequest, PATCH_OP_SCHEMA};
use scim::resource::normalize;
use scim::ResourceKind;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn stored(kind: ResourceKind) -> &'static Value {
    static USER: OnceLock<Value> = OnceLock::new();
    static GROUP: OnceLock<Value> = OnceLock::new();
    let (cell, body) = match kind {
        ResourceKind::User => (
            &USER,
            json!({
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
                ],
                "externalId": "bjensen",
                "userName": "bjensen@example.com",
                "name": {"familyName": "Jensen", "givenName": "Barbara"},
                "displayName": "Babs Jensen",
                "active": true,
                "emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home"}
                ],
                "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
                "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "country": "USA"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": "701984",
                    "department": "Tour Operations",
                    "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
                }
            }),
        ),
        ResourceKind::Group => (
            &GROUP,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Tour Guides",
                "externalId": "guides"
            }),
        ),
    };
    cell.get_or_init(|| match normalize(kind, &body) {
        Ok(n) => n.doc,
        Err(e) => panic!("the sample {} does not validate: {e}", kind.name()),
    })
}

fn request(data: &[u8]) -> Option<(ResourceKind, Value)> {
    let (&first, rest) = data.split_first()?;
    let kind = if first & 0x80 != 0 {
        ResourceKind::Group
    } else {
        ResourceKind::User
    };
    let rest = std::str::from_utf8(rest).ok()?;
    let body = match first % 4 {
        0 => serde_json::from_str(rest).ok()?,
        mode => {
            let op = ["add", "remove", "replace"][usize::from(mode - 1)];
            let (path, value) = rest.split_once('\n').unwrap_or((rest, ""));
            let mut operation = json!({"op": op, "path": path});
            if !value.is_empty() {
                operation["value"] =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
            }
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [operation]})
        }
    };
    Some((kind, body))
}

fuzz_target!(|data: &[u8]| {
    let Some((kind, body)) = request(data) else {
        return;
    };
    let Ok(req) = PatchRequest::parse(&body) else {
        return;
    };
    let before = stored(kind);
    let mut doc = before.clone();
    match apply(kind, &mut doc, &req) {
        Err(_) => assert_eq!(&doc, before, "a failed PATCH changed the document"),
        Ok(_) => {
            if let Err(e) = normalize(kind, &doc) {
                panic!("PATCH {body} left a document that does not validate ({e}): {doc}");
            }
        }
    }
});
