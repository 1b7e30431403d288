//! Keycloak webhook bodies and authentication headers: `verify` and `parse`
//! never panic, and a body that parses yields bounded activities.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meter::keycloak::{parse, verify, WebhookAuth, MAX_EVENTS, MAX_SUBJECT_BYTES};

fuzz_target!(|data: &[u8]| {
    // The first line is the signature header, the second the Authorization
    // header, the rest the body.
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let sig = parts.next().and_then(|s| std::str::from_utf8(s).ok());
    let authz = parts.next().and_then(|s| std::str::from_utf8(s).ok());
    let body = parts.next().unwrap_or_default();
    let auth = WebhookAuth {
        signature: sig,
        authorization: authz,
    };
    let _ = verify(&auth, body, b"fuzz-secret");
    if let Ok(activities) = parse(body) {
        assert!(activities.len() <= MAX_EVENTS);
        for a in activities {
            assert!(!a.subject.is_empty() && a.subject.len() <= MAX_SUBJECT_BYTES);
        }
    }
});
