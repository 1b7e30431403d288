//! Parses arbitrary UTF-8 as a SCIM filter. Accepted filters must display to a
//! canonical string that parses back to the same AST and displays identically,
//! and evaluating them against a sample resource must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim::filter::{Filter, MAX_FILTER_LEN};
use scim::ResourceKind;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn sample_user() -> &'static Value {
    static USER: OnceLock<Value> = OnceLock::new();
    USER.get_or_init(|| {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "bjensen",
            "userName": "bjensen@example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "title": "",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z"
            },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = Filter::parse(input) else {
        return;
    };
    let shown = filter.to_string();
    // Canonical numbers (`1E2` -> `100.0`) can make the display longer than the
    // accepted limit; such strings are legitimately rejected.
    if shown.len() <= MAX_FILTER_LEN {
        let again = match Filter::parse(&shown) {
            Ok(f) => f,
            Err(e) => panic!("display of {input:?} is {shown:?}, which fails to parse: {e}"),
        };
        assert_eq!(again, filter, "{input:?} displays as {shown:?}");
        assert_eq!(again.to_string(), shown);
    }
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let _ = filter.matches(kind, sample_user());
    }
});
