//! The PATCH `path` grammar of RFC 7644 §3.5.2:
//! `attrPath / valuePath [subAttr]`, e.g. `emails[type eq "work"].value`.
//!
//! Besides the RFC forms, a bare schema URN of a known schema (such as
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`) is accepted and
//! designates the whole extension object; it is represented as
//! `AttrPath { schema: Some(urn), attr: "", sub_attr: None }` (see
//! [`AttrPath::is_schema_only`]). A URN of an unknown schema is read as
//! `schema:attr`, split at its last `:`.
//!
//! Parsing reuses the filter lexer and parser of [`crate::filter`]; the value
//! filter in brackets is a full filter (without nested brackets).

use crate::error::{Result, ScimError, ScimType};
use crate::filter::{AttrPath, Filter, Parser, TokKind, MAX_FILTER_LEN};
use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use std::fmt;

/// A parsed PATCH path.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute; carries `sub_attr` for `name.givenName`.
    pub attr: AttrPath,
    /// The value filter of `members[value eq "x"]`.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter: `.value` in `emails[type eq "work"].value`.
    pub sub_attr: Option<String>,
}

/// Schema URNs that a PATCH path may name on their own.
const SCHEMA_URNS: [&str; 3] = [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA];

impl PatchPath {
    /// Parses a PATCH path. Errors are `invalidPath` (or `invalidFilter` for a bad
    /// value filter); their detail names the problem and its byte offset. The
    /// length limit is [`MAX_FILTER_LEN`].
    pub fn parse(input: &str) -> Result<PatchPath> {
        if input.len() > MAX_FILTER_LEN {
            return Err(ScimError::invalid_path(format!(
                "path is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
                input.len()
            )));
        }
        let mut p = Parser::new(input, ScimType::InvalidPath);
        let t = p.peek()?;
        let word = match t.kind {
            TokKind::Word(w) => w,
            TokKind::End => return Err(p.error_at(t.start, "empty path")),
            _ => {
                return Err(p.error_at(
                    t.start,
                    format!("expected an attribute path, found {}", t.describe()),
                ))
            }
        };
        p.bump(&t);
        let attr = if SCHEMA_URNS.iter().any(|u| u.eq_ignore_ascii_case(word)) {
            AttrPath {
                schema: Some(word.to_string()),
                attr: String::new(),
                sub_attr: None,
            }
        } else {
            p.attr_path(word, t.start)?
        };

        let mut path = PatchPath {
            attr,
            filter: None,
            sub_attr: None,
        };
        let next = p.peek()?;
        if next.kind == TokKind::LBracket {
            path.filter = Some(p.parse_value_filter(&path.attr, t.start)?);
            let after = p.peek()?;
            if let TokKind::Word(w) = after.kind {
                let Some(sub) = w.strip_prefix('.') else {
                    return Err(p.error_at(
                        after.start,
                        format!(
                            "expected '.subAttribute' or end of path after ']', found {}",
                            after.describe()
                        ),
                    ));
                };
                p.check_name(sub, after.start + 1)?;
                p.bump(&after);
                path.sub_attr = Some(sub.to_string());
            }
        }
        let end = p.peek()?;
        if end.kind != TokKind::End {
            return Err(p.error_at(
                end.start,
                format!("unexpected {} after the path", end.describe()),
            ));
        }
        Ok(path)
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{CompOp, CompValue};

    fn parse(s: &str) -> PatchPath {
        match PatchPath::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s:?} did not parse: {e}"),
        }
    }

    fn parse_err(s: &str) -> (ScimType, String) {
        match PatchPath::parse(s) {
            Ok(p) => panic!("{s:?} parsed as {p:?}"),
            Err(e) => (e.scim_type.unwrap_or(ScimType::InvalidSyntax), e.detail),
        }
    }

    fn eq(attr: &str, v: &str) -> Filter {
        Filter::Compare(AttrPath::new(attr), CompOp::Eq, CompValue::String(v.into()))
    }

    #[test]
    fn simple_and_sub_attribute() {
        assert_eq!(
            parse("userName"),
            PatchPath {
                attr: AttrPath::new("userName"),
                filter: None,
                sub_attr: None
            }
        );
        assert_eq!(
            parse("name.givenName").attr,
            AttrPath::with_sub("name", "givenName")
        );
        assert_eq!(parse("  displayName  ").attr, AttrPath::new("displayName"));
        assert_eq!(
            parse("members.$ref").attr,
            AttrPath::with_sub("members", "$ref")
        );
    }

    #[test]
    fn urn_qualified() {
        assert_eq!(
            parse("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName").attr,
            AttrPath::with_sub("name", "familyName").with_schema(USER_SCHEMA)
        );
        assert_eq!(
            parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").attr,
            AttrPath::with_sub("manager", "value").with_schema(ENTERPRISE_USER_SCHEMA)
        );
        assert_eq!(
            parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber").attr,
            AttrPath::new("employeeNumber").with_schema(ENTERPRISE_USER_SCHEMA)
        );
    }

    #[test]
    fn bare_schema_urn() {
        let p = parse(ENTERPRISE_USER_SCHEMA);
        assert!(p.attr.is_schema_only());
        assert_eq!(
            p.attr,
            AttrPath {
                schema: Some(ENTERPRISE_USER_SCHEMA.into()),
                attr: String::new(),
                sub_attr: None
            }
        );
        assert_eq!(p.to_string(), ENTERPRISE_USER_SCHEMA);
        let lower = ENTERPRISE_USER_SCHEMA.to_lowercase();
        assert!(parse(&lower).attr.is_schema_only());
        let (t, d) = parse_err(&format!("{ENTERPRISE_USER_SCHEMA}[a pr]"));
        assert_eq!(t, ScimType::InvalidPath);
        assert!(d.contains("not a schema URN"), "{d}");
    }

    #[test]
    fn value_filter() {
        let p = parse(r#"members[value eq "2819c223"]"#);
        assert_eq!(p.attr, AttrPath::new("members"));
        assert_eq!(p.filter, Some(eq("value", "2819c223")));
        assert_eq!(p.sub_attr, None);

        let p = parse(r#"emails[type eq "work"].value"#);
        assert_eq!(p.attr, AttrPath::new("emails"));
        assert_eq!(p.filter, Some(eq("type", "work")));
        assert_eq!(p.sub_attr.as_deref(), Some("value"));

        let p = parse(r#"addresses[type eq "work" and not (primary eq false)].streetAddress"#);
        assert!(matches!(p.filter, Some(Filter::And(..))));
        assert_eq!(p.sub_attr.as_deref(), Some("streetAddress"));

        let p = parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type EQ "work"]"#);
        assert_eq!(p.attr, AttrPath::new("emails").with_schema(USER_SCHEMA));
    }

    #[test]
    fn path_errors_are_invalid_path() {
        for (input, msg) in [
            ("", "empty path at byte 0"),
            ("   ", "empty path"),
            ("1abc", "invalid attribute name '1abc'"),
            ("name.", "empty attribute name at byte 5"),
            ("name.a.b", "more than one sub-attribute level"),
            ("urn:x:", "expected an attribute name after the schema URN"),
            (
                "userName eq \"x\"",
                "unexpected 'eq' after the path at byte 9",
            ),
            ("(userName)", "expected an attribute path, found '('"),
            (
                r#"emails[type eq "work"]value"#,
                "expected '.subAttribute' or end of path",
            ),
            (
                r#"emails[type eq "work"].va lue"#,
                "unexpected 'lue' after the path",
            ),
            (
                r#"emails[type eq "work"].1x"#,
                "invalid attribute name '1x'",
            ),
            (
                r#"emails[type eq "work"].value.x"#,
                "invalid attribute name 'value.x'",
            ),
            (r#"name.givenName[x pr]"#, "without a sub-attribute"),
            ("a]", "unexpected ']'"),
            (
                r#"emails[type eq "work"]]"#,
                "unexpected ']' after the path",
            ),
        ] {
            let (t, d) = parse_err(input);
            assert_eq!(t, ScimType::InvalidPath, "{input}: {d}");
            assert!(d.contains(msg), "{input}: {d}");
        }
    }

    #[test]
    fn bracket_errors_are_invalid_filter() {
        for (input, msg) in [
            ("emails[]", "empty value filter"),
            ("emails[type]", "expected an operator"),
            (r#"emails[type eq "work""#, "expected ']' to close '['"),
            (r#"emails[type eq "\x"]"#, "invalid string literal"),
            (
                r#"emails[type eq "work" and x[y pr]]"#,
                "nested value filters",
            ),
        ] {
            let (t, d) = parse_err(input);
            assert_eq!(t, ScimType::InvalidFilter, "{input}: {d}");
            assert!(d.contains(msg), "{input}: {d}");
        }
    }

    #[test]
    fn limits() {
        let long = format!("a{}", "b".repeat(MAX_FILTER_LEN));
        let (t, d) = parse_err(&long);
        assert_eq!(t, ScimType::InvalidPath);
        assert!(d.contains("at most 4096"));
        let deep = format!("a[{}b pr{}]", "(".repeat(40), ")".repeat(40));
        let (t, d) = parse_err(&deep);
        assert_eq!(t, ScimType::InvalidFilter);
        assert!(d.contains("exceeds 32 levels"), "{d}");
    }

    #[test]
    fn display_round_trips() {
        for ex in [
            "userName",
            "name.givenName",
            "NAME.GIVENNAME",
            "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            r#"emails[type eq "work"].value"#,
            r#"emails[TYPE Eq "work" OR (primary eq true and value co "\u0040")].display"#,
            r#"addresses[not (type eq "home")].postalCode"#,
        ] {
            let p = parse(ex);
            let shown = p.to_string();
            assert_eq!(parse(&shown), p, "{ex} -> {shown}");
            assert_eq!(parse(&shown).to_string(), shown);
        }
        assert_eq!(
            parse(r#"emails[ type  eq "work" ].value"#).to_string(),
            r#"emails[type eq "work"].value"#
        );
    }
}
