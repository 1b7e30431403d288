//! Strings with a shape: host names, URLs, e-mail addresses, colours, names.
//!
//! Each type holds a string that matched its pattern, checks it when it is
//! deserialised or parsed, and describes itself in the OpenAPI document with
//! the same pattern and length, so that what the admin API documents and what
//! it accepts cannot differ. The patterns use the subset of regular
//! expressions that the `regex` crate, ECMA-262 (JSON Schema) and Python agree
//! on: classes, alternation, repetition, non-capturing groups, anchors.

use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::fmt;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

/// One DNS label: letters, digits, inner hyphens, at most 63.
macro_rules! label {
    () => {
        "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    };
}
/// A DNS host name: labels separated by dots.
macro_rules! host {
    () => {
        concat!(label!(), "(?:\\.", label!(), ")*")
    };
}
/// An absolute http(s) URL: host, port, path, query, fragment; characters
/// outside the unreserved and sub-delimiter sets only percent-encoded.
macro_rules! url {
    () => {
        concat!(
            "https?://",
            host!(),
            "(?::[0-9]{1,5})?",
            "(?:/(?:[A-Za-z0-9._~!$&()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?",
            "(?:\\?(?:[A-Za-z0-9._~!$&()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?",
            "(?:#(?:[A-Za-z0-9._~!$&()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?"
        )
    };
}
macro_rules! email {
    () => {
        concat!("[A-Za-z0-9._+=~!$%*/^{}|#&'-]{1,64}@", host!())
    };
}
macro_rules! color {
    () => {
        "#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})"
    };
}
macro_rules! language {
    () => {
        "[a-z]{2,8}"
    };
}
/// Text without control characters.
macro_rules! text {
    () => {
        "[^\\x00-\\x1f\\x7f-\\x9f]"
    };
}

/// Declares a string type checked against `^(?:PATTERN)$` and at most `max`
/// characters.
macro_rules! shaped {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $max:expr, $what:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The anchored pattern the value matches.
            pub const PATTERN: &'static str = concat!("^(?:", $pattern, ")$");
            /// The most characters the value has.
            pub const MAX_CHARS: usize = $max;

            /// Checks `s`; the error says what was expected.
            pub fn parse(s: &str) -> Result<Self, String> {
                static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
                    regex::Regex::new($name::PATTERN).expect("the pattern compiles")
                });
                if s.chars().count() <= $max && RE.is_match(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(format!(concat!("{:?} is not ", $what), s))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                $name::parse(s)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Cow::<'de, str>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .pattern(Some($name::PATTERN))
                    .max_length(Some($max))
                    .description(Some(concat!("Matches the pattern: ", $what, ".")))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

shaped!(
    /// A DNS host name (no port, no trailing dot), at most 253 characters.
    HostName, host!(), 253, "a host name (DNS labels of letters, digits and inner hyphens)",
    "cloud.example.org"
);
shaped!(
    /// An absolute `http` or `https` URL, at most 2048 characters.
    HttpUrl, url!(), 2048, "an absolute http(s) URL", "https://cloud.example.org"
);
shaped!(
    /// The same, or the empty string (which clears a field).
    HttpUrlOrEmpty, concat!("(?:", url!(), ")?"), 2048,
    "an absolute http(s) URL or the empty string", "https://status.example.org"
);
shaped!(
    /// An e-mail address, or the empty string (which clears a field).
    EmailOrEmpty, concat!("(?:", email!(), ")?"), 254,
    "an e-mail address or the empty string", "support@example.org"
);
shaped!(
    /// A colour `#rgb` or `#rrggbb`, or the empty string.
    ColorOrEmpty, concat!("(?:", color!(), ")?"), 7,
    "a colour #rgb or #rrggbb, or the empty string", "#8a1c7c"
);
shaped!(
    /// A lower-case language code (`fr`, `en`), or the empty string.
    LanguageOrEmpty, concat!("(?:", language!(), ")?"), 8,
    "a lower-case language code such as fr or en, or the empty string", "fr"
);
shaped!(
    /// A lower-case language code (`fr`, `en`).
    Language, language!(), 8, "a lower-case language code such as fr or en", "fr"
);
shaped!(
    /// Text without control characters, at most 2000 characters (empty clears
    /// a field).
    Text, concat!(text!(), "*"), 2000, "text without control characters, at most 2000 characters",
    "École Jean Jaurès"
);
shaped!(
    /// The name of an app or service as the ingress reports it: 1 to 100
    /// characters without control characters.
    ServiceName, concat!(text!(), "{1,100}"), 100,
    "an app or service name of 1 to 100 characters", "nextcloud"
);
shaped!(
    /// The name of an app in its organisation: 1 to 63 of `a-z`, `0-9`, `-`, `_`.
    AppName, "[a-z0-9_-]{1,63}", 63,
    "an app name (1 to 63 lower-case letters, digits, '-' and '_')", "nextcloud"
);
shaped!(
    /// The name of an environment variable.
    EnvVar, "[A-Za-z_][A-Za-z0-9_]*", 128, "an environment variable name",
    "LIAISON_ORG_DEMO__NEXTCLOUD"
);
shaped!(
    /// An absolute path of the server's file system.
    FilePath, concat!("/", text!(), "*"), 4096, "an absolute file path",
    "/run/secrets/nextcloud"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in ["a", "cloud.example.org", "x-1.y", &"a".repeat(63)] {
            assert!(HostName::parse(ok).is_ok(), "{ok}");
            assert!(
                pages::validate_host(&ok.to_ascii_lowercase()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a:80",
            &"a".repeat(64),
        ] {
            assert!(HostName::parse(bad).is_err(), "{bad}");
        }
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(HostName::parse(&long).is_err(), "255 characters");
    }

    #[test]
    fn urls_accepted_here_are_accepted_by_the_pages() {
        for ok in [
            "https://a.example.org",
            "http://a:8080/x/y?q=1&r=%20#frag",
            "https://x.org/logo.svg",
        ] {
            assert!(HttpUrl::parse(ok).is_ok(), "{ok}");
            assert!(pages::validate_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ftp://a",
            "https://",
            "https://a b",
            "https://u@a",
            "https://a/<script>",
            "https://a/%zz",
            "HTTPS://a",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(HttpUrlOrEmpty::parse("").is_ok());
    }

    #[test]
    fn other_shapes() {
        assert!(EmailOrEmpty::parse("a.b+c@x.org").is_ok());
        assert!(pages::validate_email("a.b+c@x.org").is_ok());
        assert!(EmailOrEmpty::parse("a@b@c").is_err());
        assert!(ColorOrEmpty::parse("#abc").is_ok());
        assert!(ColorOrEmpty::parse("#abcd").is_err());
        assert!(ColorOrEmpty::parse(" #abc").is_err());
        assert!(Text::parse("École\u{7f}").is_err());
        assert!(Text::parse(&"é".repeat(2000)).is_ok());
        assert!(Text::parse(&"é".repeat(2001)).is_err());
        assert!(AppName::parse("next-cloud_2").is_ok());
        assert!(AppName::parse("Next").is_err());
        assert!(FilePath::parse("relative").is_err());
        let v: Result<HostName, _> = serde_json::from_str("\"bad host\"");
        assert!(v.unwrap_err().to_string().contains("is not a host name"));
    }
}
