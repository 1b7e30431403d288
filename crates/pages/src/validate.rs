//! Validators for the branding and host fields, shared with the command line and the
//! admin API. Every rendered branding value has passed one of these (the index drops
//! the ones that fail), so they are strict: what they accept is safe in a CSS value,
//! an HTML attribute and a `Content-Security-Policy` header.

/// A colour as `#rgb` or `#rrggbb` (hexadecimal digits, either case).
pub fn validate_color(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    if (b.len() == 4 || b.len() == 7) && b[0] == b'#' && b[1..].iter().all(u8::is_ascii_hexdigit) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a colour of the form #rgb or #rrggbb"))
    }
}

/// An absolute `http` or `https` URL without user information, whitespace, control
/// characters, quotes or angle brackets, at most 2048 bytes.
pub fn validate_url(s: &str) -> Result<(), String> {
    url_origin(s).map(|_| ())
}

/// The origin (`scheme://host[:port]`, lower-cased) of a URL that [`validate_url`]
/// accepts.
pub(crate) fn url_origin(s: &str) -> Result<String, String> {
    let err = |why: &str| Err(format!("{s:?} is not an absolute http(s) URL: {why}"));
    if s.len() > 2048 {
        return err("longer than 2048 bytes");
    }
    if let Some(c) = s.chars().find(|c| {
        !c.is_ascii_graphic()
            || matches!(
                c,
                '"' | '\'' | '<' | '>' | '\\' | '`' | '{' | '}' | '|' | '^'
            )
    }) {
        return err(&format!("character {c:?} not allowed"));
    }
    let lower = s.to_ascii_lowercase();
    let (scheme, rest) = if let Some(r) = lower.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = lower.strip_prefix("http://") {
        ("http", r)
    } else {
        return err("the scheme must be http or https");
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return err("user information is not allowed");
    }
    let (host, port) = split_port(authority);
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return err("bad port");
        }
    }
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        validate_host(host).is_ok()
    };
    if !host_ok {
        return err("bad host");
    }
    Ok(format!("{scheme}://{authority}"))
}

/// A host name as matched against the `Host` header: DNS labels of letters, digits
/// and hyphens (1 to 63 bytes, no hyphen at either end), at most 253 bytes in all; or
/// a dotted IPv4 address. No port, no wildcard, no trailing dot.
pub fn validate_host(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a host name (letters, digits, hyphens and dots; no port)"
        ))
    }
}

/// An e-mail address for a `mailto:` link: one `@`, a non-empty local part of
/// letters, digits and `.!#$%&'*+-/=^_{|}~` (no `?`, no
/// space), and a domain [`validate_host`] accepts; at most 254 bytes.
pub fn validate_email(s: &str) -> Result<(), String> {
    let ok = s.len() <= 254
        && match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && local
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._+-=~!$%*/^_{}|#&'".contains(&b))
                    && validate_host(domain).is_ok()
            }
            None => false,
        };
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not an e-mail address"))
    }
}

/// Splits `host:port` (or `[v6]:port`) into host and port; the port is `None` when
/// there is no colon after the host.
pub(crate) fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let (h, rest) = authority.split_at(end + 1);
                (h, rest.strip_prefix(':'))
            }
            None => (authority, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        for ok in ["#fff", "#FFF", "#0a1B2c"] {
            assert!(validate_color(ok).is_ok(), "{ok}");
        }
        for bad in [
            "fff",
            "#ffff",
            "#gggggg",
            "red",
            "#fff;}body{",
            "",
            "#12345",
        ] {
            assert!(validate_color(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        for ok in [
            "https://example.org",
            "http://a.b:8080/x?y=1#z",
            "https://[::1]/logo.svg",
        ] {
            assert!(validate_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "//example.org/x",
            "/relative",
            "https://",
            "https://user@example.org/",
            "https://example.org/\"><script>",
            "https://exa mple.org",
            "ftp://example.org",
            "https://example.org:99999999/",
            "data:image/png;base64,AAAA",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            url_origin("HTTPS://Cdn.Example.org:8443/a/b.svg").unwrap(),
            "https://cdn.example.org:8443"
        );
    }

    #[test]
    fn hosts_and_emails() {
        for ok in ["example.org", "A-1.example.org", "localhost", "10.0.0.1"] {
            assert!(validate_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "example.org:80",
            "-a.org",
            "a..org",
            "*.example.org",
            "exa mple.org",
            "a.org.",
        ] {
            assert!(validate_host(bad).is_err(), "{bad}");
        }
        assert!(validate_email("support+pages@example.org").is_ok());
        for bad in [
            "a@b@c.org",
            "@example.org",
            "a b@example.org",
            "a@example.org?subject=x",
            "<a>@x.org",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
