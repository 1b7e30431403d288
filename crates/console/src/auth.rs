//! The session cookie and the CSRF check of forms.
//!
//! The cookie holds the session's secret only (`HttpOnly`, `SameSite=Lax`,
//! `Path=/console`, `Secure` when the public URL is https); the store holds
//! its hash. Every POST carries the session's CSRF token in a `csrf` field.

use axum::http::{header, HeaderMap, HeaderValue};
use serde::Deserialize;

/// The cookie's name.
pub(crate) const COOKIE: &str = "liaison_console";

/// The session secret a request presents, if any.
pub(crate) fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// The `Set-Cookie` value that stores a session for `max_age` seconds.
pub(crate) fn set_cookie(secret: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={secret}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// The `Set-Cookie` value that forgets the session.
pub(crate) fn clear_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static(
            "liaison_console=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0; Secure",
        )
    } else {
        HeaderValue::from_static(
            "liaison_console=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0",
        )
    }
}

/// A form that carries only its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The CSRF token of a urlencoded form body (empty when the body is not one).
pub(crate) fn form_csrf(body: &[u8]) -> String {
    serde_urlencoded::from_bytes::<CsrfForm>(body)
        .map(|f| f.csrf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; liaison_console=abc"),
        );
        assert_eq!(session_secret(&h).as_deref(), Some("abc"));
        let h = HeaderMap::new();
        assert_eq!(session_secret(&h), None);
    }

    #[test]
    fn cookies_are_http_only_and_secure_behind_https() {
        let c = set_cookie("s", 60, true).unwrap();
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("Secure"));
        let c = set_cookie("s", 60, false).unwrap();
        assert!(!c.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn csrf_is_read_from_forms() {
        assert_eq!(form_csrf(b"csrf=ab12&x=1"), "ab12");
        assert_eq!(form_csrf(b"\xff\xfe"), "");
        assert_eq!(form_csrf(b""), "");
    }
}
