//! Webhook payloads from Keycloak's HTTP event-listener extensions.
//!
//! Two senders are understood:
//! - p2-inc's `keycloak-events` HTTP webhook: a JSON event whose `type` carries a
//!   prefix (`access.LOGIN`, `admin.USER-CREATE`), the user in `authDetails.userId`
//!   and `authDetails.username`, `time` in milliseconds, and the header
//!   `X-Keycloak-Signature` holding the hex HMAC-SHA256 of the raw body keyed with
//!   the webhook's shared secret;
//! - `keycloak-event-listener-http`: Keycloak's own `Event` as JSON (`type` `LOGIN`,
//!   `userId`, `time`, `details.username`), optionally with HTTP Basic auth.
//!
//! A body is one event object or an array of them. Only the events that show a
//! person using the suite count (`LOGIN`, `CODE_TO_TOKEN`, `REFRESH_TOKEN`); of those
//! only the user id, the username and the time are kept.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header p2-inc's webhook signs its bodies in.
pub const SIGNATURE_HEADER: &str = "X-Keycloak-Signature";
/// Most events accepted in one body.
pub const MAX_EVENTS: usize = 10_000;
/// Longest user id (and username) kept, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// The event types that count as activity, without p2-inc's `access.` prefix.
/// `CLIENT_LOGIN` is absent on purpose: service accounts are not people.
const COUNTED: [&str; 3] = ["LOGIN", "CODE_TO_TOKEN", "REFRESH_TOKEN"];

/// The authentication headers of a webhook request, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookAuth<'a> {
    /// The value of `X-Keycloak-Signature`.
    pub signature: Option<&'a str>,
    /// The value of `Authorization`.
    pub authorization: Option<&'a str>,
}

/// Why a webhook request was refused. Messages never contain the secret or the
/// credentials received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no webhook secret is configured")]
    NoSecret,
    #[error("neither an X-Keycloak-Signature nor an Authorization header")]
    Missing,
    #[error("the X-Keycloak-Signature header is not a hex HMAC-SHA256")]
    MalformedSignature,
    #[error("the X-Keycloak-Signature header does not match the body")]
    BadSignature,
    #[error("the Authorization header is neither Basic nor Bearer")]
    UnsupportedScheme,
    #[error("the Authorization header's credentials are wrong")]
    BadCredentials,
}

/// Checks that a webhook request comes from the holder of `secret`.
///
/// Accepted: a signature header holding the hex HMAC-SHA256 of `body` keyed with the
/// secret (optionally prefixed `sha256=`, hex in either case); else an
/// `Authorization: Basic` whose password is the secret; else `Authorization: Bearer
/// <secret>`. A signature header that is present decides alone: a wrong one fails
/// even when the `Authorization` header is right. Comparisons are constant-time.
pub fn verify(auth: &WebhookAuth<'_>, body: &[u8], secret: &[u8]) -> Result<(), VerifyError> {
    if secret.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    if let Some(signature) = auth.signature {
        return verify_signature(signature, body, secret);
    }
    let Some(authorization) = auth.authorization else {
        return Err(VerifyError::Missing);
    };
    let authorization = authorization.trim();
    let (scheme, credentials) = authorization
        .split_once(char::is_whitespace)
        .unwrap_or((authorization, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| VerifyError::BadCredentials)?;
        let colon = decoded
            .iter()
            .position(|&b| b == b':')
            .ok_or(VerifyError::BadCredentials)?;
        secret_matches(&decoded[colon + 1..], secret)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        secret_matches(credentials.as_bytes(), secret)
    } else {
        Err(VerifyError::UnsupportedScheme)
    }
}

fn verify_signature(signature: &str, body: &[u8], secret: &[u8]) -> Result<(), VerifyError> {
    let signature = signature.trim();
    let hex_digits = match signature.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256=") => &signature[7..],
        _ => signature,
    };
    let expected = hex::decode(hex_digits).map_err(|_| VerifyError::MalformedSignature)?;
    if expected.len() != 32 {
        return Err(VerifyError::MalformedSignature);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| VerifyError::NoSecret)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| VerifyError::BadSignature)
}

/// Compares digests of both values so that neither content nor length leaks.
fn secret_matches(given: &[u8], secret: &[u8]) -> Result<(), VerifyError> {
    let given = Sha256::digest(given);
    let secret = Sha256::digest(secret);
    if bool::from(given.ct_eq(&secret)) {
        Ok(())
    } else {
        Err(VerifyError::BadCredentials)
    }
}

/// A person's use of the suite, as told by one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Keycloak's user id.
    pub subject: String,
    /// The username, when the event carries one of at most [`MAX_SUBJECT_BYTES`].
    pub username: Option<String>,
    /// When it happened, in milliseconds since the Unix epoch.
    pub time_ms: Option<i64>,
}

/// Why a webhook body was refused; nothing of it is to be stored then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not JSON: {0}")]
    Json(String),
    #[error("the body is neither an event object nor an array of events")]
    NotEvents,
    #[error("more than {MAX_EVENTS} events in one body")]
    TooManyEvents,
    #[error("event {index} is not a JSON object")]
    NotAnObject { index: usize },
    #[error("event {index}: `{field}` has the wrong type")]
    WrongType { index: usize, field: &'static str },
    #[error("event {index}: a {kind} event without a user id")]
    MissingUser { index: usize, kind: &'static str },
    #[error("event {index}: the user id is longer than {MAX_SUBJECT_BYTES} bytes")]
    SubjectTooLong { index: usize },
}

/// Reads a webhook body: one event or an array of events. Events of other types
/// (admin events, `LOGIN_ERROR`, `LOGOUT`, `CLIENT_LOGIN`...) and events without a
/// `type` are valid and yield nothing.
pub fn parse(body: &[u8]) -> Result<Vec<Activity>, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    match value {
        Value::Object(event) => Ok(activity(0, &event)?.into_iter().collect()),
        Value::Array(events) => {
            if events.len() > MAX_EVENTS {
                return Err(ParseError::TooManyEvents);
            }
            let mut out = Vec::new();
            for (index, event) in events.iter().enumerate() {
                let event = event.as_object().ok_or(ParseError::NotAnObject { index })?;
                out.extend(activity(index, event)?);
            }
            Ok(out)
        }
        _ => Err(ParseError::NotEvents),
    }
}

fn activity(index: usize, event: &Map<String, Value>) -> Result<Option<Activity>, ParseError> {
    let wrong = |field| ParseError::WrongType { index, field };
    let kind = match event.get("type") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(kind)) => kind.strip_prefix("access.").unwrap_or(kind),
        Some(_) => return Err(wrong("type")),
    };
    let Some(kind) = COUNTED.iter().copied().find(|counted| *counted == kind) else {
        return Ok(None);
    };
    let auth_details = match event.get("authDetails") {
        None | Some(Value::Null) => None,
        Some(Value::Object(details)) => Some(details),
        Some(_) => return Err(wrong("authDetails")),
    };
    let details = match event.get("details") {
        None | Some(Value::Null) => None,
        Some(Value::Object(details)) => Some(details),
        Some(_) => return Err(wrong("details")),
    };

    let subject = match string_field(event, "userId", index)? {
        Some(subject) => Some(subject),
        None => match auth_details {
            Some(details) => string_field(details, "userId", index)?,
            None => None,
        },
    };
    let subject = subject
        .filter(|s| !s.is_empty())
        .ok_or(ParseError::MissingUser { index, kind })?;
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(ParseError::SubjectTooLong { index });
    }

    let username = match auth_details.map(|d| string_field(d, "username", index)) {
        Some(Ok(Some(name))) => Some(name),
        Some(Err(e)) => return Err(e),
        _ => match details {
            Some(details) => string_field(details, "username", index)?,
            None => None,
        },
    }
    .filter(|name| !name.is_empty() && name.len() <= MAX_SUBJECT_BYTES);

    let time_ms = match event.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or(wrong("time"))?),
        Some(_) => return Err(wrong("time")),
    };

    Ok(Some(Activity {
        subject: subject.to_owned(),
        username: username.map(str::to_owned),
        time_ms,
    }))
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
    index: usize,
) -> Result<Option<&'a str>, ParseError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ParseError::WrongType { index, field }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"webhook-secret";

    fn sign(body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn sig(signature: &str) -> WebhookAuth<'_> {
        WebhookAuth {
            signature: Some(signature),
            authorization: None,
        }
    }

    fn authz(authorization: &str) -> WebhookAuth<'_> {
        WebhookAuth {
            signature: None,
            authorization: Some(authorization),
        }
    }

    #[test]
    fn a_signature_of_the_body_is_accepted_in_every_spelling() {
        let body = br#"{"type":"access.LOGIN"}"#;
        let hex = sign(body);
        assert_eq!(verify(&sig(&hex), body, SECRET), Ok(()));
        assert_eq!(verify(&sig(&hex.to_uppercase()), body, SECRET), Ok(()));
        assert_eq!(verify(&sig(&format!("sha256={hex}")), body, SECRET), Ok(()));
        assert_eq!(verify(&sig(&format!("SHA256={hex}")), body, SECRET), Ok(()));
    }

    #[test]
    fn a_signature_of_another_body_or_key_fails() {
        let body = br#"{"type":"access.LOGIN"}"#;
        let other = sign(b"{}");
        assert_eq!(
            verify(&sig(&other), body, SECRET),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(&sig(&sign(body)), body, b"another-secret"),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(&sig("zz"), body, SECRET),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(
            verify(&sig("abcd"), body, SECRET),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(
            verify(&sig(""), body, SECRET),
            Err(VerifyError::MalformedSignature)
        );
    }

    #[test]
    fn a_wrong_signature_fails_even_with_a_right_bearer() {
        let body = b"[]";
        let auth = WebhookAuth {
            signature: Some("00"),
            authorization: Some("Bearer webhook-secret"),
        };
        assert_eq!(
            verify(&auth, body, SECRET),
            Err(VerifyError::MalformedSignature)
        );
        let wrong = sign(b"other");
        let auth = WebhookAuth {
            signature: Some(&wrong),
            authorization: Some("Bearer webhook-secret"),
        };
        assert_eq!(verify(&auth, body, SECRET), Err(VerifyError::BadSignature));
    }

    #[test]
    fn basic_and_bearer_carry_the_secret() {
        let basic = base64::engine::general_purpose::STANDARD.encode("keycloak:webhook-secret");
        assert_eq!(
            verify(&authz(&format!("Basic {basic}")), b"x", SECRET),
            Ok(())
        );
        assert_eq!(
            verify(&authz(&format!("basic  {basic}")), b"x", SECRET),
            Ok(())
        );
        assert_eq!(
            verify(&authz("Bearer webhook-secret"), b"x", SECRET),
            Ok(())
        );

        let wrong = base64::engine::general_purpose::STANDARD.encode("keycloak:guess");
        assert_eq!(
            verify(&authz(&format!("Basic {wrong}")), b"x", SECRET),
            Err(VerifyError::BadCredentials)
        );
        let no_colon = base64::engine::general_purpose::STANDARD.encode("webhook-secret");
        assert_eq!(
            verify(&authz(&format!("Basic {no_colon}")), b"x", SECRET),
            Err(VerifyError::BadCredentials)
        );
        assert_eq!(
            verify(&authz("Basic !!!"), b"x", SECRET),
            Err(VerifyError::BadCredentials)
        );
        assert_eq!(
            verify(&authz("Bearer webhook-secre"), b"x", SECRET),
            Err(VerifyError::BadCredentials)
        );
        assert_eq!(
            verify(&authz("Bearer"), b"x", SECRET),
            Err(VerifyError::BadCredentials)
        );
        assert_eq!(
            verify(&authz("Digest webhook-secret"), b"x", SECRET),
            Err(VerifyError::UnsupportedScheme)
        );
    }

    #[test]
    fn nothing_or_no_secret_is_refused_and_errors_do_not_echo_secrets() {
        assert_eq!(
            verify(&WebhookAuth::default(), b"x", SECRET),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verify(&authz("Bearer "), b"x", b""),
            Err(VerifyError::NoSecret)
        );
        for error in [
            verify(&authz("Bearer guess"), b"x", SECRET).unwrap_err(),
            verify(&sig(&sign(b"y")), b"x", SECRET).unwrap_err(),
        ] {
            let text = error.to_string();
            assert!(
                !text.contains("webhook-secret") && !text.contains("guess"),
                "{text}"
            );
        }
    }

    #[test]
    fn p2_inc_events_yield_the_user_and_time_only() {
        let body = br#"{
            "time": 1764000000123,
            "realmId": "7a11ef96",
            "uid": "d2e0fe26",
            "authDetails": {
                "realmId": "ecole", "clientId": "nextcloud",
                "userId": "88251cc6-7408-4b31-a4c7-b2840d99b916",
                "ipAddress": "192.0.2.1", "username": "alice",
                "sessionId": "3cd8d025"
            },
            "type": "access.LOGIN",
            "details": {"auth_method": "openid-connect", "username": "alice"}
        }"#;
        assert_eq!(
            parse(body).unwrap(),
            vec![Activity {
                subject: "88251cc6-7408-4b31-a4c7-b2840d99b916".into(),
                username: Some("alice".into()),
                time_ms: Some(1_764_000_000_123),
            }]
        );
    }

    #[test]
    fn raw_keycloak_events_and_batches_are_read() {
        let body = br#"[
            {"type": "LOGIN", "realmId": "r", "clientId": "c", "userId": "u1",
             "ipAddress": "192.0.2.1", "time": 1, "details": {"username": "bob"}},
            {"type": "CODE_TO_TOKEN", "userId": "u2"},
            {"type": "access.REFRESH_TOKEN", "authDetails": {"userId": "u3"}, "time": 3},
            {"type": "LOGOUT", "userId": "u4"},
            {"type": "LOGIN_ERROR", "userId": "u5", "error": "invalid_user_credentials"},
            {"type": "CLIENT_LOGIN", "userId": "service-account"},
            {"type": "access.CLIENT_LOGIN", "authDetails": {"userId": "service-account"}},
            {"type": "admin.USER-CREATE", "authDetails": {"userId": "admin"}},
            {"time": 5, "realmId": "r", "operationType": "CREATE", "resourcePath": "users/x",
             "authDetails": {"userId": "admin"}},
            {"type": "login", "userId": "lowercase-is-not-keycloak"}
        ]"#;
        let subjects: Vec<_> = parse(body)
            .unwrap()
            .into_iter()
            .map(|a| (a.subject, a.username, a.time_ms))
            .collect();
        assert_eq!(
            subjects,
            vec![
                ("u1".to_owned(), Some("bob".to_owned()), Some(1)),
                ("u2".to_owned(), None, None),
                ("u3".to_owned(), None, Some(3)),
            ]
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(matches!(parse(b"{"), Err(ParseError::Json(_))));
        assert_eq!(parse(b"42"), Err(ParseError::NotEvents));
        assert_eq!(
            parse(br#"[{"type":"LOGOUT"}, 3]"#),
            Err(ParseError::NotAnObject { index: 1 })
        );
        assert_eq!(
            parse(br#"{"type":"LOGIN","time":1}"#),
            Err(ParseError::MissingUser {
                index: 0,
                kind: "LOGIN"
            })
        );
        assert_eq!(
            parse(br#"{"type":"access.LOGIN","authDetails":{"userId":""}}"#),
            Err(ParseError::MissingUser {
                index: 0,
                kind: "LOGIN"
            })
        );
        assert_eq!(
            parse(br#"{"type":"LOGIN","userId":7}"#),
            Err(ParseError::WrongType {
                index: 0,
                field: "userId"
            })
        );
        assert_eq!(
            parse(br#"{"type":"LOGIN","userId":"u","time":"yesterday"}"#),
            Err(ParseError::WrongType {
                index: 0,
                field: "time"
            })
        );
        assert_eq!(
            parse(br#"{"type":["LOGIN"]}"#),
            Err(ParseError::WrongType {
                index: 0,
                field: "type"
            })
        );
        let long = format!(r#"{{"type":"LOGIN","userId":"{}"}}"#, "x".repeat(257));
        assert_eq!(
            parse(long.as_bytes()),
            Err(ParseError::SubjectTooLong { index: 0 })
        );
        let exact = format!(r#"{{"type":"LOGIN","userId":"{}"}}"#, "x".repeat(256));
        assert_eq!(parse(exact.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn one_bad_event_refuses_the_whole_batch() {
        assert_eq!(
            parse(br#"[{"type":"LOGIN","userId":"u1"},{"type":"REFRESH_TOKEN"}]"#),
            Err(ParseError::MissingUser {
                index: 1,
                kind: "REFRESH_TOKEN"
            })
        );
    }

    #[test]
    fn batches_are_bounded() {
        let event = r#"{"type":"LOGOUT"}"#;
        let at_bound = format!("[{}]", vec![event; MAX_EVENTS].join(","));
        assert_eq!(parse(at_bound.as_bytes()).unwrap(), vec![]);
        let over = format!("[{}]", vec![event; MAX_EVENTS + 1].join(","));
        assert_eq!(parse(over.as_bytes()), Err(ParseError::TooManyEvents));
    }

    #[test]
    fn a_long_username_is_dropped_not_kept() {
        let body = format!(
            r#"{{"type":"LOGIN","userId":"u","details":{{"username":"{}"}}}}"#,
            "é".repeat(200)
        );
        assert_eq!(parse(body.as_bytes()).unwrap()[0].username, None);
    }
}
