//! The filter grammar of RFC 7644 §3.4.2.2, parsed to a plain-data AST, and its
//! evaluation against a JSON resource.
//!
//! Operators and the keywords `and`, `or`, `not` and `pr` are case-insensitive;
//! the parser keeps attribute names as written and
//! [`crate::schema::ResourceKind::resolve`] maps them to their canonical
//! definitions. [`Filter`]'s `Display` gives a canonical string that parses back
//! to the same AST.
//!
//! The lexer and the recursive-descent parser here are shared with
//! [`crate::path::PatchPath`]. Recursion only happens on `(`, `not (` and `[`, and
//! each of those counts against [`MAX_FILTER_DEPTH`], so no input can overflow the
//! stack; `and`/`or` chains are parsed by loops.

use crate::error::{Result, ScimError, ScimType};
use crate::schema::{AttrDef, AttrType, ResourceKind, GROUP_SCHEMA};
use crate::schema::{Resolved, USER_SCHEMA};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::fmt;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of `( )`, `not ( )` and `[ ]` accepted.
pub const MAX_FILTER_DEPTH: usize = 32;

/// An attribute reference: `[schemaURN ":"] attr ["." subAttr]`.
///
/// In a PATCH path a bare schema URN (the whole extension object, e.g.
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`) is represented
/// with `schema: Some(urn)`, an empty `attr` and no `sub_attr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix when the path is URN-qualified.
    pub schema: Option<String>,
    pub attr: String,
    pub sub_attr: Option<String>,
}

impl AttrPath {
    pub fn new(attr: impl Into<String>) -> Self {
        AttrPath {
            schema: None,
            attr: attr.into(),
            sub_attr: None,
        }
    }
    pub fn with_sub(attr: impl Into<String>, sub: impl Into<String>) -> Self {
        AttrPath {
            schema: None,
            attr: attr.into(),
            sub_attr: Some(sub.into()),
        }
    }
    /// The same path qualified by a schema URN.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
    /// Whether this is a bare schema URN (only produced by PATCH paths).
    pub fn is_schema_only(&self) -> bool {
        self.schema.is_some() && self.attr.is_empty()
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) if self.attr.is_empty() => return f.write_str(s),
            Some(s) => write!(f, "{s}:")?,
            None => {}
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Comparison operators (`eq ne co sw ew gt ge lt le`); `pr` is [`Filter::Present`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompOp {
    /// The operator keyword, lower-case.
    pub fn as_str(self) -> &'static str {
        match self {
            CompOp::Eq => "eq",
            CompOp::Ne => "ne",
            CompOp::Co => "co",
            CompOp::Sw => "sw",
            CompOp::Ew => "ew",
            CompOp::Gt => "gt",
            CompOp::Ge => "ge",
            CompOp::Lt => "lt",
            CompOp::Le => "le",
        }
    }

    /// The operator for a keyword, case-insensitively.
    pub fn from_keyword(word: &str) -> Option<CompOp> {
        const ALL: [CompOp; 9] = [
            CompOp::Eq,
            CompOp::Ne,
            CompOp::Co,
            CompOp::Sw,
            CompOp::Ew,
            CompOp::Gt,
            CompOp::Ge,
            CompOp::Lt,
            CompOp::Le,
        ];
        ALL.into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for CompOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison value: a JSON literal (`false`, `null`, `true`, number, string).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            // A JSON string literal; `Value`'s Display cannot fail.
            CompValue::String(s) => write!(f, "{}", Value::String(s.clone())),
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath compareOp compValue`
    Compare(AttrPath, CompOp, CompValue),
    /// `not ( filter )`
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    /// `attrPath [ valFilter ]`: the attribute (never with a sub-attribute) and a
    /// filter whose attribute paths name sub-attributes of it.
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    /// Parses a filter, enforcing [`MAX_FILTER_LEN`] and [`MAX_FILTER_DEPTH`].
    /// Errors are `invalidFilter`; their detail names the problem and its byte
    /// offset.
    pub fn parse(input: &str) -> Result<Filter> {
        if input.len() > MAX_FILTER_LEN {
            return Err(ScimError::invalid_filter(format!(
                "filter is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
                input.len()
            )));
        }
        let mut p = Parser::new(input, ScimType::InvalidFilter);
        if p.peek()?.kind == TokKind::End {
            return Err(p.error_at(0, "empty filter"));
        }
        let f = p.parse_or()?;
        let t = p.peek()?;
        match t.kind {
            TokKind::End => Ok(f),
            TokKind::RParen => Err(p.error_at(t.start, "unmatched ')'")),
            TokKind::RBracket => Err(p.error_at(t.start, "unmatched ']'")),
            _ => Err(p.error_at(
                t.start,
                format!(
                    "expected 'and', 'or' or end of filter, found {}",
                    t.describe()
                ),
            )),
        }
    }

    /// Whether `resource` (a SCIM resource in its JSON wire form) matches, using the
    /// attribute definitions of `kind` for case sensitivity and types.
    ///
    /// Semantics (RFC 7644 §3.4.2.2): a multi-valued attribute matches when any of
    /// its values does; a complex multi-valued attribute compared without a
    /// sub-attribute compares the `value` sub-attribute of each element; strings
    /// compare case-insensitively unless the definition is `caseExact`; `gt ge lt
    /// le` order strings lexicographically, numbers numerically and dateTimes
    /// chronologically, and never match booleans or binaries; `co sw ew` only
    /// match strings and references; `pr` means present and not null, `""`, `[]`
    /// or `{}`; `eq null` means "not present" and `ne null` means "present". Any
    /// other comparison (`ne` included) needs a value to be present: an absent
    /// attribute never matches `title ne "x"`. Keys are looked up
    /// case-insensitively. Unknown attributes (for which `kind.resolve` has no
    /// definition) are typed from their JSON value and compared as non-caseExact
    /// strings; two strings that both parse as RFC 3339 timestamps compare
    /// chronologically.
    pub fn matches(&self, kind: ResourceKind, resource: &Value) -> bool {
        eval(self, kind, &Scope::Resource, resource)
    }

    /// Checks that every attribute the filter names is defined for `kind`
    /// (inside `emails[...]`, names are sub-attributes of `emails`); `schemas`
    /// is always allowed. The error is `invalidFilter` naming the attribute.
    pub fn validate(&self, kind: ResourceKind) -> Result<()> {
        validate(self, kind, None)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::Compare(p, op, v) => write!(f, "{p} {op} {v}"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath(p, inner) => write!(f, "{p}[{inner}]"),
            Filter::And(l, r) => {
                // `and` binds tighter than `or` and both are left-associative.
                write_operand(f, l, matches!(**l, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(l, r) => {
                write_operand(f, l, false)?;
                f.write_str(" or ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..)))
            }
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, x: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({x})")
    } else {
        write!(f, "{x}")
    }
}

// ---------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokKind<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A run of characters that are not whitespace, brackets, parentheses or `"`:
    /// an attribute path, a keyword, a number or `true`/`false`/`null`.
    Word(&'a str),
    /// A JSON string literal, decoded.
    Str(String),
    End,
}

/// A token and its byte span in the input.
#[derive(Debug, Clone)]
pub(crate) struct Tok<'a> {
    pub(crate) kind: TokKind<'a>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Tok<'_> {
    /// The token as an error message names it.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            TokKind::LParen => "'('".into(),
            TokKind::RParen => "')'".into(),
            TokKind::LBracket => "'['".into(),
            TokKind::RBracket => "']'".into(),
            TokKind::Word(w) => format!("'{}'", truncate(w)),
            TokKind::Str(s) => {
                format!("string {}", truncate(&Value::String(s.clone()).to_string()))
            }
            TokKind::End => "end of input".into(),
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.kind, TokKind::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// Shortens long input excerpts quoted in error messages.
fn truncate(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_delim(c: u8) -> bool {
    matches!(c, b'(' | b')' | b'[' | b']' | b'"')
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

/// Recursive-descent parser over the lexer, shared by filters and PATCH paths.
pub(crate) struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    /// Inside `[ ]`: value paths and schema URNs are not allowed there.
    in_brackets: bool,
    /// The `scimType` of errors raised right now.
    pub(crate) err_type: ScimType,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str, err_type: ScimType) -> Self {
        Parser {
            src,
            pos: 0,
            depth: 0,
            in_brackets: false,
            err_type,
        }
    }

    pub(crate) fn error_at(&self, at: usize, msg: impl fmt::Display) -> ScimError {
        ScimError::new(self.err_type, format!("{msg} at byte {at}"))
    }

    /// Lexes the token starting at or after `pos`.
    fn lex_at(&self, mut pos: usize) -> Result<Tok<'a>> {
        let bytes = self.src.as_bytes();
        while pos < bytes.len() && is_ws(bytes[pos]) {
            pos += 1;
        }
        let start = pos;
        let Some(&c) = bytes.get(pos) else {
            return Ok(Tok {
                kind: TokKind::End,
                start,
                end: start,
            });
        };
        let single = |kind| {
            Ok(Tok {
                kind,
                start,
                end: start + 1,
            })
        };
        match c {
            b'(' => single(TokKind::LParen),
            b')' => single(TokKind::RParen),
            b'[' => single(TokKind::LBracket),
            b']' => single(TokKind::RBracket),
            b'"' => {
                let mut i = pos + 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(self.error_at(start, "unterminated string literal"));
                        }
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                let end = i + 1;
                // `"` and `\` never occur inside a multi-byte UTF-8 sequence, so
                // `start..end` lies on character boundaries.
                let lit = self.src.get(start..end).unwrap_or_default();
                let s: String = serde_json::from_str(lit)
                    .map_err(|e| self.error_at(start, format!("invalid string literal ({e})")))?;
                Ok(Tok {
                    kind: TokKind::Str(s),
                    start,
                    end,
                })
            }
            _ => {
                let mut i = pos;
                while i < bytes.len() && !is_ws(bytes[i]) && !is_delim(bytes[i]) {
                    i += 1;
                }
                // Whitespace and delimiters are ASCII, so `i` is a char boundary.
                let w = self.src.get(start..i).unwrap_or_default();
                Ok(Tok {
                    kind: TokKind::Word(w),
                    start,
                    end: i,
                })
            }
        }
    }

    pub(crate) fn peek(&self) -> Result<Tok<'a>> {
        self.lex_at(self.pos)
    }

    pub(crate) fn bump(&mut self, t: &Tok<'_>) {
        self.pos = t.end;
    }

    fn enter(&mut self, at: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.error_at(
                at,
                format!(
                    "nesting of parentheses, 'not' and brackets exceeds {MAX_FILTER_DEPTH} levels"
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `filter := andExpr ("or" andExpr)*`
    pub(crate) fn parse_or(&mut self) -> Result<Filter> {
        let mut left = self.parse_and()?;
        loop {
            let t = self.peek()?;
            if !t.is_keyword("or") {
                return Ok(left);
            }
            self.bump(&t);
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
    }

    /// `andExpr := unary ("and" unary)*`
    fn parse_and(&mut self) -> Result<Filter> {
        let mut left = self.parse_unary()?;
        loop {
            let t = self.peek()?;
            if !t.is_keyword("and") {
                return Ok(left);
            }
            self.bump(&t);
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
    }

    /// `unary := "not" "(" filter ")" / "(" filter ")" / attrExp / valuePath`
    fn parse_unary(&mut self) -> Result<Filter> {
        let t = self.peek()?;
        match &t.kind {
            TokKind::LParen => {
                self.bump(&t);
                self.enter(t.start)?;
                let inner = self.parse_or()?;
                self.expect_close(TokKind::RParen, t.start)?;
                self.leave();
                Ok(inner)
            }
            TokKind::Word(w) if w.eq_ignore_ascii_case("not") => {
                let next = self.lex_at(t.end)?;
                if next.kind != TokKind::LParen {
                    // An attribute that happens to be called `not`.
                    return self.parse_attr_expr();
                }
                self.bump(&next);
                self.enter(t.start)?;
                let inner = self.parse_or()?;
                self.expect_close(TokKind::RParen, next.start)?;
                self.leave();
                Ok(Filter::Not(Box::new(inner)))
            }
            TokKind::Word(_) => self.parse_attr_expr(),
            TokKind::End => {
                Err(self.error_at(t.start, "unexpected end of filter: expected an expression"))
            }
            _ => Err(self.error_at(
                t.start,
                format!(
                    "expected an attribute path, 'not' or '(', found {}",
                    t.describe()
                ),
            )),
        }
    }

    fn expect_close(&mut self, want: TokKind<'static>, opened_at: usize) -> Result<()> {
        let t = self.peek()?;
        if t.kind == want {
            self.bump(&t);
            return Ok(());
        }
        let (close, open) = if want == TokKind::RParen {
            ("')'", "'('")
        } else {
            ("']'", "'['")
        };
        let what = if t.kind == TokKind::End {
            String::new()
        } else if matches!(t.kind, TokKind::Word(_) | TokKind::Str(_)) {
            format!(" (expected 'and', 'or' or {close})")
        } else {
            String::new()
        };
        Err(self.error_at(
            t.start,
            format!(
                "expected {close} to close {open} opened at byte {opened_at}, found {}{what}",
                t.describe()
            ),
        ))
    }

    /// `attrPath ("pr" / compareOp compValue / "[" valFilter "]")`
    fn parse_attr_expr(&mut self) -> Result<Filter> {
        let t = self.peek()?;
        let TokKind::Word(w) = t.kind else {
            return Err(self.error_at(
                t.start,
                format!("expected an attribute path, found {}", t.describe()),
            ));
        };
        self.bump(&t);
        let path = self.attr_path(w, t.start)?;
        if self.in_brackets && path.schema.is_some() {
            return Err(self.error_at(
                t.start,
                "schema-qualified attribute not allowed inside a value filter",
            ));
        }
        let op = self.peek()?;
        match &op.kind {
            TokKind::LBracket => {
                let inner = self.parse_value_filter(&path, t.start)?;
                let after = self.peek()?;
                if let TokKind::Word(w) = after.kind {
                    if w.starts_with('.') {
                        return Err(self.error_at(
                            after.start,
                            "a sub-attribute after a value filter is only allowed in PATCH paths, not in filters",
                        ));
                    }
                }
                Ok(Filter::ValuePath(path, Box::new(inner)))
            }
            TokKind::Word(o) if o.eq_ignore_ascii_case("pr") => {
                self.bump(&op);
                let next = self.peek()?;
                let is_value = match next.kind {
                    TokKind::Str(_) => true,
                    TokKind::Word(v) => parse_literal(v).is_some(),
                    _ => false,
                };
                if is_value {
                    return Err(self.error_at(next.start, "'pr' takes no comparison value"));
                }
                Ok(Filter::Present(path))
            }
            TokKind::Word(o) => {
                let Some(cop) = CompOp::from_keyword(o) else {
                    return Err(self.error_at(
                        op.start,
                        format!(
                            "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after attribute '{}', found {}",
                            truncate(w),
                            op.describe()
                        ),
                    ));
                };
                self.bump(&op);
                let v = self.peek()?;
                let value = match &v.kind {
                    TokKind::Str(s) => CompValue::String(s.clone()),
                    TokKind::Word(lit) => parse_literal(lit).ok_or_else(|| {
                        self.error_at(
                            v.start,
                            format!(
                                "invalid comparison value {}: expected a JSON string, number, true, false or null",
                                v.describe()
                            ),
                        )
                    })?,
                    _ => {
                        return Err(self.error_at(
                            v.start,
                            format!("expected a comparison value after '{cop}', found {}", v.describe()),
                        ))
                    }
                };
                self.bump(&v);
                Ok(Filter::Compare(path, cop, value))
            }
            _ => Err(self.error_at(
                op.start,
                format!(
                    "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after attribute '{}', found {}",
                    truncate(w),
                    op.describe()
                ),
            )),
        }
    }

    /// Parses `"[" valFilter "]"` after `path` (which started at `path_at`); the
    /// next token must be `[`. Errors about `path` itself keep the current
    /// `scimType`; errors inside the brackets are `invalidFilter`.
    pub(crate) fn parse_value_filter(&mut self, path: &AttrPath, path_at: usize) -> Result<Filter> {
        let open = self.peek()?;
        if self.in_brackets {
            return Err(self.error_at(
                open.start,
                "nested value filters ('[' inside '[ ]') are not allowed",
            ));
        }
        if path.sub_attr.is_some() {
            return Err(self.error_at(
                path_at,
                format!(
                    "a value filter must follow an attribute without a sub-attribute, not '{path}'"
                ),
            ));
        }
        if path.is_schema_only() {
            return Err(self.error_at(
                path_at,
                "a value filter must follow an attribute, not a schema URN",
            ));
        }
        // Errors inside the brackets are `invalidFilter`, even in a PATCH path.
        let outer_err = std::mem::replace(&mut self.err_type, ScimType::InvalidFilter);
        self.bump(&open);
        self.enter(open.start)?;
        if self.peek()?.kind == TokKind::RBracket {
            return Err(self.error_at(open.start, "empty value filter"));
        }
        self.in_brackets = true;
        let inner = self.parse_or()?;
        self.expect_close(TokKind::RBracket, open.start)?;
        self.in_brackets = false;
        self.leave();
        self.err_type = outer_err;
        Ok(inner)
    }

    /// Splits a word into `[schemaURN ":"] attr ["." subAttr]`. The URN is
    /// everything before the last `:`, so dots inside it (`2.0`) are kept.
    pub(crate) fn attr_path(&self, word: &str, at: usize) -> Result<AttrPath> {
        let (schema, rest, rest_at) = match word.rfind(':') {
            Some(i) => {
                let schema = &word[..i];
                if !schema.starts_with(|c: char| c.is_ascii_alphabetic())
                    || !schema.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(self.error_at(
                        at,
                        format!(
                            "invalid schema URN '{}' in attribute path",
                            truncate(schema)
                        ),
                    ));
                }
                (Some(schema.to_string()), &word[i + 1..], at + i + 1)
            }
            None => (None, word, at),
        };
        if rest.is_empty() {
            return Err(self.error_at(rest_at, "expected an attribute name after the schema URN"));
        }
        let (attr, sub) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        self.check_name(attr, rest_at)?;
        if let Some(s) = sub {
            let sub_at = rest_at + attr.len() + 1;
            if s.contains('.') {
                return Err(self.error_at(
                    sub_at,
                    format!("'{}' has more than one sub-attribute level", truncate(rest)),
                ));
            }
            self.check_name(s, sub_at)?;
        }
        Ok(AttrPath {
            schema,
            attr: attr.to_string(),
            sub_attr: sub.map(str::to_string),
        })
    }

    /// `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA`;
    /// `$ref` (RFC 7643 §2.4) is allowed too.
    pub(crate) fn check_name(&self, name: &str, at: usize) -> Result<()> {
        if is_attr_name(name) {
            Ok(())
        } else if name.is_empty() {
            Err(self.error_at(at, "empty attribute name"))
        } else {
            Err(self.error_at(
                at,
                format!(
                    "invalid attribute name '{}': expected a letter followed by letters, digits, '-' or '_'",
                    truncate(name)
                ),
            ))
        }
    }
}

/// Whether `name` is an ATTRNAME (or `$` followed by one, as in `$ref`).
pub(crate) fn is_attr_name(name: &str) -> bool {
    let n = name.strip_prefix('$').unwrap_or(name);
    let mut bytes = n.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `true`, `false`, `null` (any case) or a JSON number.
fn parse_literal(w: &str) -> Option<CompValue> {
    if w.eq_ignore_ascii_case("true") {
        Some(CompValue::Bool(true))
    } else if w.eq_ignore_ascii_case("false") {
        Some(CompValue::Bool(false))
    } else if w.eq_ignore_ascii_case("null") {
        Some(CompValue::Null)
    } else if is_json_number(w) {
        parse_number(w).map(CompValue::Number)
    } else {
        None
    }
}

/// A JSON number as an integer when it is one that fits in 64 bits, else as the
/// nearest `f64` (correctly rounded, unlike serde_json's default parser, so the
/// shortest form `Display` writes parses back to the same value). `None` when
/// out of the `f64` range.
fn parse_number(w: &str) -> Option<Number> {
    if !w.contains(['.', 'e', 'E']) {
        if let Ok(i) = w.parse::<i64>() {
            return Some(i.into());
        }
        if let Ok(u) = w.parse::<u64>() {
            return Some(u.into());
        }
    }
    w.parse::<f64>().ok().and_then(Number::from_f64)
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn is_json_number(w: &str) -> bool {
    let b = w.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

fn validate(f: &Filter, kind: ResourceKind, parent: Option<&AttrPath>) -> Result<()> {
    let check = |p: &AttrPath| -> Result<()> {
        let full = match parent {
            None if p.schema.is_none() && p.attr.eq_ignore_ascii_case("schemas") => return Ok(()),
            None => Some(p.clone()),
            Some(parent) => p.sub_attr.is_none().then(|| AttrPath {
                schema: parent.schema.clone(),
                attr: parent.attr.clone(),
                sub_attr: Some(p.attr.clone()),
            }),
        };
        match full.as_ref().and_then(|full| kind.resolve(full)) {
            Some(_) => Ok(()),
            None => {
                let shown = match parent {
                    Some(parent) => format!("{parent}.{p}"),
                    None => p.to_string(),
                };
                Err(ScimError::invalid_filter(format!(
                    "unknown attribute '{}' for {}",
                    truncate(&shown),
                    kind.name()
                )))
            }
        }
    };
    match f {
        Filter::Present(p) | Filter::Compare(p, ..) => check(p),
        Filter::Not(x) => validate(x, kind, parent),
        Filter::And(l, r) | Filter::Or(l, r) => {
            validate(l, kind, parent)?;
            validate(r, kind, parent)
        }
        Filter::ValuePath(p, inner) => {
            check(p)?;
            validate(inner, kind, Some(p))
        }
    }
}

/// Where attribute paths are looked up.
enum Scope<'p> {
    /// Top level of a resource.
    Resource,
    /// One element of the multi-valued (or complex) attribute `parent`, inside a
    /// value filter: paths name its sub-attributes.
    Element(&'p AttrPath),
}

fn eval(f: &Filter, kind: ResourceKind, scope: &Scope<'_>, node: &Value) -> bool {
    match f {
        Filter::And(l, r) => eval(l, kind, scope, node) && eval(r, kind, scope, node),
        Filter::Or(l, r) => eval(l, kind, scope, node) || eval(r, kind, scope, node),
        Filter::Not(x) => !eval(x, kind, scope, node),
        Filter::Present(p) => {
            let t = target(kind, scope, node, p);
            t.values.iter().any(|v| !is_empty(v))
        }
        Filter::Compare(p, op, v) => {
            let t = target(kind, scope, node, p);
            compare_target(kind, &t, *op, v)
        }
        Filter::ValuePath(p, inner) => {
            let t = target(kind, scope, node, p);
            let Some(attr) = t.attr_value else {
                return false;
            };
            let elems: Vec<&Value> = match attr {
                Value::Array(items) => items.iter().collect(),
                v => vec![v],
            };
            let inner_scope = Scope::Element(p);
            elems.into_iter().any(|e| match e {
                Value::Object(_) => eval(inner, kind, &inner_scope, e),
                Value::Null => false,
                // A primitive element stands for its `value`.
                other => {
                    let mut m = Map::new();
                    m.insert("value".into(), other.clone());
                    eval(inner, kind, &inner_scope, &Value::Object(m))
                }
            })
        }
    }
}

/// The values an attribute path designates in a node.
struct Target<'a> {
    /// The attribute's own value (before descending into a sub-attribute).
    attr_value: Option<&'a Value>,
    /// The designated values, arrays flattened.
    values: Vec<&'a Value>,
    /// The absolute path with which definitions resolve (`emails.type` for `type`
    /// inside `emails[...]`); `None` when no definition can apply.
    full: Option<AttrPath>,
    resolved: Option<Resolved>,
}

fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let m = v.as_object()?;
    m.get(key).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => out.extend(items.iter()),
        v => out.push(v),
    }
}

fn target<'a>(kind: ResourceKind, scope: &Scope<'_>, node: &'a Value, p: &AttrPath) -> Target<'a> {
    let (full, container) = match scope {
        Scope::Resource => {
            let resolved = kind.resolve(p);
            let core = |s: &str| {
                s.eq_ignore_ascii_case(USER_SCHEMA) || s.eq_ignore_ascii_case(GROUP_SCHEMA)
            };
            let container = match (resolved, &p.schema) {
                // Known: extension attributes live under their schema URN.
                (Some(r), _) => match r.extension() {
                    Some(ext) => get_ci(node, ext.id),
                    None => Some(node),
                },
                // Unknown: core URNs mean the top level, other URNs their own object.
                (None, Some(s)) if core(s) => Some(node),
                (None, Some(s)) => get_ci(node, s),
                (None, None) => Some(node),
            };
            (Some(p.clone()), container)
        }
        // `emails[type eq "x"]`: `type` resolves as `emails.type`; a path with a
        // sub-attribute inside a value filter has no definition.
        Scope::Element(parent) => {
            let full = p.sub_attr.is_none().then(|| AttrPath {
                schema: parent.schema.clone(),
                attr: parent.attr.clone(),
                sub_attr: Some(p.attr.clone()),
            });
            (full, Some(node))
        }
    };
    let resolved = full.as_ref().and_then(|f| kind.resolve(f));
    let attr_value = container.and_then(|c| get_ci(c, &p.attr));
    let mut values = Vec::new();
    if let Some(av) = attr_value {
        match &p.sub_attr {
            Some(sub) => match av {
                Value::Array(items) => {
                    for it in items {
                        if let Some(v) = get_ci(it, sub) {
                            push_flat(v, &mut values);
                        }
                    }
                }
                v => {
                    if let Some(v) = get_ci(v, sub) {
                        push_flat(v, &mut values);
                    }
                }
            },
            None => push_flat(av, &mut values),
        }
    }
    Target {
        attr_value,
        values,
        full,
        resolved,
    }
}

/// Null, `""`, `[]`, `{}`.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_empty),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

fn compare_target(kind: ResourceKind, t: &Target<'_>, op: CompOp, v: &CompValue) -> bool {
    // `ne` is the negation of `eq`, as the store's SQL translation has it: an
    // absent attribute matches, and a multi-valued one matches when no value equals.
    if op == CompOp::Ne && *v != CompValue::Null {
        return !compare_target(kind, t, CompOp::Eq, v);
    }
    if *v == CompValue::Null {
        let present = t.values.iter().any(|x| !is_empty(x));
        return match op {
            CompOp::Eq => !present,
            CompOp::Ne => present,
            _ => false,
        };
    }
    let leaf = t.resolved.map(|r| r.leaf());
    // The definition of `value`, for complex values compared without sub-attribute.
    let value_def = || -> Option<&'static AttrDef> {
        let mut p = t.full.clone()?;
        if p.sub_attr.is_some() {
            return None;
        }
        p.sub_attr = Some("value".into());
        kind.resolve(&p).map(|r| r.leaf())
    };
    t.values.iter().any(|x| match x {
        Value::Object(_) => match get_ci(x, "value") {
            Some(inner) => match inner {
                Value::Array(items) => items.iter().any(|i| compare_value(value_def(), i, op, v)),
                i => compare_value(value_def(), i, op, v),
            },
            None => false,
        },
        x => compare_value(leaf, x, op, v),
    })
}

/// Compares one attribute value with a comparison value.
fn compare_value(def: Option<&AttrDef>, x: &Value, op: CompOp, v: &CompValue) -> bool {
    let case_exact = def.is_some_and(|d| d.case_exact);
    match def.map(|d| d.ty) {
        Some(AttrType::String | AttrType::Reference) => match (x, v) {
            (Value::String(a), CompValue::String(b)) => compare_str(a, b, op, case_exact),
            _ => false,
        },
        Some(AttrType::DateTime) => match (x, v) {
            (Value::String(a), CompValue::String(b)) => compare_date(a, b, op, case_exact),
            _ => false,
        },
        Some(AttrType::Boolean) => match (x, v) {
            (Value::Bool(a), CompValue::Bool(b)) => compare_eq_only(a == b, op),
            _ => false,
        },
        Some(AttrType::Integer | AttrType::Decimal) => match (x, v) {
            (Value::Number(a), CompValue::Number(b)) => compare_num(a, b, op),
            _ => false,
        },
        Some(AttrType::Binary) => match (x, v) {
            (Value::String(a), CompValue::String(b)) => compare_eq_only(a == b, op),
            _ => false,
        },
        Some(AttrType::Complex) => false,
        // Unknown attribute: typed by its JSON value.
        None => match (x, v) {
            (Value::String(a), CompValue::String(b)) => {
                if op.is_ordering_or_eq()
                    && parse_datetime(a).is_some()
                    && parse_datetime(b).is_some()
                {
                    compare_date(a, b, op, false)
                } else {
                    compare_str(a, b, op, false)
                }
            }
            (Value::Number(a), CompValue::Number(b)) => compare_num(a, b, op),
            (Value::Bool(a), CompValue::Bool(b)) => compare_eq_only(a == b, op),
            _ => false,
        },
    }
}

impl CompOp {
    fn is_ordering_or_eq(self) -> bool {
        !matches!(self, CompOp::Co | CompOp::Sw | CompOp::Ew)
    }
}

fn compare_eq_only(equal: bool, op: CompOp) -> bool {
    match op {
        CompOp::Eq => equal,
        CompOp::Ne => !equal,
        _ => false,
    }
}

fn ordering_matches(ord: Ordering, op: CompOp) -> bool {
    match op {
        CompOp::Eq => ord == Ordering::Equal,
        CompOp::Ne => ord != Ordering::Equal,
        CompOp::Gt => ord == Ordering::Greater,
        CompOp::Ge => ord != Ordering::Less,
        CompOp::Lt => ord == Ordering::Less,
        CompOp::Le => ord != Ordering::Greater,
        CompOp::Co | CompOp::Sw | CompOp::Ew => false,
    }
}

fn compare_str(a: &str, b: &str, op: CompOp, case_exact: bool) -> bool {
    let (a, b) = if case_exact {
        (a.to_string(), b.to_string())
    } else {
        (a.to_lowercase(), b.to_lowercase())
    };
    match op {
        CompOp::Co => a.contains(&b),
        CompOp::Sw => a.starts_with(&b),
        CompOp::Ew => a.ends_with(&b),
        _ => ordering_matches(a.cmp(&b), op),
    }
}

fn compare_date(a: &str, b: &str, op: CompOp, case_exact: bool) -> bool {
    if !op.is_ordering_or_eq() {
        return compare_str(a, b, op, case_exact);
    }
    match (parse_datetime(a), parse_datetime(b)) {
        (Some(x), Some(y)) => ordering_matches(x.cmp(&y), op),
        // Not a timestamp on one side: only exact textual equality can hold.
        _ => compare_eq_only(a == b, op),
    }
}

/// An `xsd:dateTime`: RFC 3339, or without offset (taken as UTC).
fn parse_datetime(s: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|t| t.assume_utc())
}

fn compare_num(a: &Number, b: &Number, op: CompOp) -> bool {
    let ord = match (as_i128(a), as_i128(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
    };
    ord.is_some_and(|o| ordering_matches(o, op))
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ENTERPRISE_USER_SCHEMA;
    use serde_json::json;

    fn parse(s: &str) -> Filter {
        match Filter::parse(s) {
            Ok(f) => f,
            Err(e) => panic!("{s:?} did not parse: {e}"),
        }
    }

    fn parse_err(s: &str) -> String {
        match Filter::parse(s) {
            Ok(f) => panic!("{s:?} parsed as {f:?}"),
            Err(e) => {
                assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{e}");
                assert_eq!(e.status, 400);
                e.detail
            }
        }
    }

    fn cmp(attr: &str, op: CompOp, v: CompValue) -> Filter {
        Filter::Compare(AttrPath::new(attr), op, v)
    }

    fn s(v: &str) -> CompValue {
        CompValue::String(v.into())
    }

    fn pr(attr: &str) -> Filter {
        Filter::Present(AttrPath::new(attr))
    }

    fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    fn not(x: Filter) -> Filter {
        Filter::Not(Box::new(x))
    }

    #[test]
    fn every_operator() {
        for (kw, op) in [
            ("eq", CompOp::Eq),
            ("ne", CompOp::Ne),
            ("co", CompOp::Co),
            ("sw", CompOp::Sw),
            ("ew", CompOp::Ew),
            ("gt", CompOp::Gt),
            ("ge", CompOp::Ge),
            ("lt", CompOp::Lt),
            ("le", CompOp::Le),
        ] {
            assert_eq!(
                parse(&format!("userName {kw} \"x\"")),
                cmp("userName", op, s("x"))
            );
            let upper = kw.to_uppercase();
            assert_eq!(
                parse(&format!("userName {upper} \"x\"")),
                cmp("userName", op, s("x"))
            );
        }
    }

    #[test]
    fn present() {
        assert_eq!(parse("title pr"), pr("title"));
        assert_eq!(parse("title PR"), pr("title"));
    }

    #[test]
    fn literals() {
        assert_eq!(
            parse("active eq true"),
            cmp("active", CompOp::Eq, CompValue::Bool(true))
        );
        assert_eq!(
            parse("active eq False"),
            cmp("active", CompOp::Eq, CompValue::Bool(false))
        );
        assert_eq!(
            parse("title eq NULL"),
            cmp("title", CompOp::Eq, CompValue::Null)
        );
        assert_eq!(
            parse("n gt 42"),
            cmp("n", CompOp::Gt, CompValue::Number(42.into()))
        );
        assert_eq!(
            parse("n gt -7"),
            cmp("n", CompOp::Gt, CompValue::Number((-7).into()))
        );
        let Filter::Compare(_, _, CompValue::Number(n)) = parse("n lt 1.5e3") else {
            panic!("not a number comparison")
        };
        assert_eq!(n.as_f64(), Some(1500.0));
        // Correctly rounded, so the display parses back to the same value.
        let big = parse("n ge 112000000000000000000000000000000000");
        assert_eq!(big.to_string(), "n ge 1.12e+35");
        assert_eq!(parse(&big.to_string()), big);
        assert_eq!(parse("n eq -0").to_string(), "n eq 0");
        for bad in [
            "n gt 01",
            "n gt 1.",
            "n gt .5",
            "n gt 1e",
            "n gt +1",
            "n gt 0x10",
            "n gt 1e999",
        ] {
            assert!(parse_err(bad).contains("invalid comparison value"), "{bad}");
        }
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            parse(r#"displayName eq "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00""#),
            cmp("displayName", CompOp::Eq, s("a\"b\\c/d\u{8}\u{c}\n\r\té😀"))
        );
        assert_eq!(
            parse(r#"displayName eq "ünï""#),
            cmp("displayName", CompOp::Eq, s("ünï"))
        );
        assert_eq!(
            parse(r#"displayName eq "a (b) [c] and d""#),
            cmp("displayName", CompOp::Eq, s("a (b) [c] and d"))
        );
        assert!(parse_err(r#"x eq "\q""#).contains("at byte 5"));
        assert!(parse_err(r#"x eq "\q""#).contains("invalid string literal"));
        assert!(parse_err(r#"x eq "\ud800""#).contains("invalid string literal"));
        assert!(parse_err("x eq \"a\u{1}\"").contains("invalid string literal"));
        assert!(parse_err(r#"x eq "abc"#).contains("unterminated string literal at byte 5"));
        assert!(parse_err(r#"x eq "abc\""#).contains("unterminated"));
    }

    #[test]
    fn whitespace_is_tolerated() {
        assert_eq!(
            parse("  userName \t eq   \"x\"\tand\t\ttitle  pr  "),
            and(cmp("userName", CompOp::Eq, s("x")), pr("title"))
        );
        assert_eq!(parse("not(a pr)"), not(pr("a")));
        assert_eq!(parse("(a pr)or(b pr)"), or(pr("a"), pr("b")));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(
            parse("a pr or b pr and c pr"),
            or(pr("a"), and(pr("b"), pr("c")))
        );
        assert_eq!(
            parse("a pr and b pr or c pr"),
            or(and(pr("a"), pr("b")), pr("c"))
        );
        assert_eq!(
            parse("(a pr or b pr) and c pr"),
            and(or(pr("a"), pr("b")), pr("c"))
        );
        assert_eq!(
            parse("a pr AND b pr Or c pr"),
            or(and(pr("a"), pr("b")), pr("c"))
        );
    }

    #[test]
    fn left_associative() {
        assert_eq!(
            parse("a pr or b pr or c pr"),
            or(or(pr("a"), pr("b")), pr("c"))
        );
        assert_eq!(
            parse("a pr and b pr and c pr"),
            and(and(pr("a"), pr("b")), pr("c"))
        );
        assert_eq!(
            parse("a pr and (b pr and c pr)"),
            and(pr("a"), and(pr("b"), pr("c")))
        );
    }

    #[test]
    fn not_and_parentheses() {
        assert_eq!(parse("not (a pr) and b pr"), and(not(pr("a")), pr("b")));
        assert_eq!(parse("NOT (a pr or b pr)"), not(or(pr("a"), pr("b"))));
        assert_eq!(parse("((a pr))"), pr("a"));
        assert_eq!(parse("not (not (a pr))"), not(not(pr("a"))));
        // An attribute may be called `not` when no `(` follows.
        assert_eq!(parse("not pr"), pr("not"));
        assert_eq!(
            parse("and eq 1 and or pr"),
            and(
                cmp("and", CompOp::Eq, CompValue::Number(1.into())),
                pr("or")
            )
        );
    }

    #[test]
    fn sub_attributes_and_urns() {
        assert_eq!(
            parse(r#"name.familyName co "O'Malley""#),
            Filter::Compare(
                AttrPath::with_sub("name", "familyName"),
                CompOp::Co,
                s("O'Malley")
            )
        );
        assert_eq!(
            parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#),
            Filter::Compare(
                AttrPath::new("userName").with_schema(USER_SCHEMA),
                CompOp::Sw,
                s("J")
            )
        );
        assert_eq!(
            parse(
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#
            ),
            Filter::Compare(
                AttrPath::with_sub("manager", "value").with_schema(ENTERPRISE_USER_SCHEMA),
                CompOp::Eq,
                s("26118915")
            )
        );
        assert_eq!(
            parse("meta.lastModified gt \"2011-05-13T04:42:34Z\""),
            Filter::Compare(
                AttrPath::with_sub("meta", "lastModified"),
                CompOp::Gt,
                s("2011-05-13T04:42:34Z")
            )
        );
        assert_eq!(
            parse("members.$ref pr"),
            Filter::Present(AttrPath::with_sub("members", "$ref"))
        );
        // Names are kept as written.
        assert_eq!(
            parse("USERNAME eq \"x\""),
            cmp("USERNAME", CompOp::Eq, s("x"))
        );
    }

    #[test]
    fn value_paths() {
        let work = cmp("type", CompOp::Eq, s("work"));
        assert_eq!(
            parse(r#"emails[type eq "work" and value co "@example.com"]"#),
            Filter::ValuePath(
                AttrPath::new("emails"),
                Box::new(and(
                    work.clone(),
                    cmp("value", CompOp::Co, s("@example.com"))
                ))
            )
        );
        assert_eq!(
            parse(r#"emails[type eq "work" or not (primary eq true)] and userName pr"#),
            and(
                Filter::ValuePath(
                    AttrPath::new("emails"),
                    Box::new(or(
                        work.clone(),
                        not(cmp("primary", CompOp::Eq, CompValue::Bool(true)))
                    ))
                ),
                pr("userName")
            )
        );
        assert_eq!(
            parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"]"#),
            Filter::ValuePath(
                AttrPath::new("emails").with_schema(USER_SCHEMA),
                Box::new(work)
            )
        );
        assert_eq!(
            parse(r#"emails[(type eq "a" or type eq "b") and primary eq true]"#),
            Filter::ValuePath(
                AttrPath::new("emails"),
                Box::new(and(
                    or(
                        cmp("type", CompOp::Eq, s("a")),
                        cmp("type", CompOp::Eq, s("b"))
                    ),
                    cmp("primary", CompOp::Eq, CompValue::Bool(true))
                ))
            )
        );
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(parse_err(""), "empty filter at byte 0");
        assert_eq!(parse_err("   "), "empty filter at byte 0");
        assert!(parse_err("userName").contains("expected an operator"));
        assert!(parse_err("userName foo \"x\"").contains(
            "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) \
             after attribute 'userName', found 'foo' at byte 9"
        ));
        assert!(parse_err("userName eq")
            .contains("expected a comparison value after 'eq', found end of input at byte 11"));
        assert!(parse_err("userName eq bjensen").contains("invalid comparison value 'bjensen'"));
        assert!(parse_err("userName eq \"x\" garbage")
            .contains("expected 'and', 'or' or end of filter, found 'garbage' at byte 16"));
        assert!(parse_err("a pr)").contains("unmatched ')' at byte 4"));
        assert!(parse_err("a pr]").contains("unmatched ']'"));
        assert!(parse_err("(a pr")
            .contains("expected ')' to close '(' opened at byte 0, found end of input"));
        assert!(parse_err("(a pr b pr)").contains("expected ')'"));
        assert!(parse_err("a pr and").contains("unexpected end of filter"));
        assert!(parse_err("a pr or or b pr").contains("expected an operator"));
        assert!(parse_err("and").contains("expected an operator"));
        assert!(parse_err("()")
            .contains("expected an attribute path, 'not' or '(', found ')' at byte 1"));
        assert!(parse_err("not (a pr").contains("expected ')' to close '(' opened at byte 4"));
        assert!(parse_err("\"x\" eq \"y\"").contains("expected an attribute path"));
    }

    #[test]
    fn pr_takes_no_value() {
        assert!(parse_err("title pr \"x\"").contains("'pr' takes no comparison value at byte 9"));
        assert!(parse_err("title pr true").contains("'pr' takes no comparison value"));
        assert!(parse_err("title pr 3").contains("'pr' takes no comparison value"));
    }

    #[test]
    fn attribute_name_errors() {
        let e = parse_err("1abc pr");
        assert!(
            e.contains("invalid attribute name '1abc'") && e.ends_with("at byte 0"),
            "{e}"
        );
        assert!(parse_err("name. pr").contains("empty attribute name at byte 5"));
        assert!(parse_err("name.a.b pr").contains("more than one sub-attribute level"));
        assert!(parse_err("urn:x: pr")
            .contains("expected an attribute name after the schema URN at byte 6"));
        assert!(parse_err(":userName pr").contains("invalid schema URN"));
        assert!(parse_err("user$name pr").contains("invalid attribute name"));
        assert!(parse_err("usér pr").contains("invalid attribute name"));
        assert!(parse_err("urn:é:x pr").contains("invalid schema URN"));
    }

    #[test]
    fn value_path_errors() {
        assert!(parse_err(r#"emails[type eq "work"].value eq "x""#)
            .contains("only allowed in PATCH paths"));
        assert!(parse_err(r#"a[b[c pr]]"#).contains("nested value filters"));
        assert!(parse_err(r#"a[b pr and c[d pr]]"#).contains("nested value filters"));
        assert!(parse_err("emails[]").contains("empty value filter at byte 6"));
        assert!(parse_err("emails[type pr").contains("expected ']' to close '[' opened at byte 6"));
        assert!(parse_err("name.givenName[x pr]").contains("without a sub-attribute"));
        assert!(parse_err("emails[urn:x:y:type pr]")
            .contains("schema-qualified attribute not allowed inside a value filter"));
        assert!(parse_err("emails[type pr)").contains("expected ']'"));
    }

    #[test]
    fn length_limit() {
        let ok = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 14));
        assert_eq!(ok.len(), MAX_FILTER_LEN);
        assert!(Filter::parse(&ok).is_ok());
        let long = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN));
        let e = parse_err(&long);
        assert!(e.contains("at most 4096"), "{e}");
    }

    #[test]
    fn depth_limit() {
        let nest = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
        assert!(Filter::parse(&nest(MAX_FILTER_DEPTH)).is_ok());
        let e = parse_err(&nest(MAX_FILTER_DEPTH + 1));
        assert!(e.contains("exceeds 32 levels at byte 32"), "{e}");
        let nots = |n: usize| format!("{}a pr{}", "not (".repeat(n), ")".repeat(n));
        assert!(Filter::parse(&nots(MAX_FILTER_DEPTH)).is_ok());
        assert!(parse_err(&nots(MAX_FILTER_DEPTH + 1)).contains("exceeds"));
        // Brackets count too.
        let n = MAX_FILTER_DEPTH - 1;
        let inner = format!("{}b pr{}", "(".repeat(n), ")".repeat(n));
        assert!(Filter::parse(&format!("a[{inner}]")).is_ok());
        assert!(parse_err(&format!("a[({inner})]")).contains("exceeds"));
        // Unbalanced deep input fails on depth, not on the stack.
        assert!(parse_err(&"(".repeat(MAX_FILTER_LEN)).contains("exceeds"));
        assert!(parse_err(&"not (".repeat(800)).contains("exceeds"));
        // Long and/or chains are loops: accepted, then displayed and dropped fine.
        let chain = vec!["a pr"; 500].join(" or ");
        let f = parse(&chain);
        assert_eq!(f.to_string(), chain);
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(parse("userName EQ \"x\"").to_string(), "userName eq \"x\"");
        assert_eq!(
            parse("a pr or (b pr and c pr)").to_string(),
            "a pr or b pr and c pr"
        );
        assert_eq!(
            parse("(a pr or b pr) and c pr").to_string(),
            "(a pr or b pr) and c pr"
        );
        assert_eq!(
            parse("a pr and (b pr and c pr)").to_string(),
            "a pr and (b pr and c pr)"
        );
        assert_eq!(
            parse("a pr or (b pr or c pr)").to_string(),
            "a pr or (b pr or c pr)"
        );
        assert_eq!(parse("NOT(a Pr)").to_string(), "not (a pr)");
        assert_eq!(
            parse("x eq \"\\u00e9\\n\\\"\"").to_string(),
            "x eq \"é\\n\\\"\""
        );
        assert_eq!(parse("x eq NULL").to_string(), "x eq null");
        assert_eq!(parse("x eq 1E2").to_string(), "x eq 100.0");
        assert_eq!(parse("e[ a pr ]").to_string(), "e[a pr]");
    }

    #[test]
    fn display_round_trips() {
        let examples = [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"title pr"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
            r#"a pr or b pr and c pr"#,
            r#"not (a pr) and b pr"#,
            r#"not (not (a pr or b pr) and (c pr or d pr))"#,
            r#"a pr and (b pr and (c pr or d pr))"#,
            r#"((a pr or b pr) or (c pr or d pr)) and (e pr and f pr)"#,
            r#"x eq 1.5 or x eq -0 or x eq 1e300 or x eq 18446744073709551616 or x eq -9223372036854775808"#,
            r#"x eq "\u0000\u001f\"\\\/" and y eq "😀" and z eq true and w ne false and v eq null"#,
            r#"emails[not (type eq "home") or (primary eq true and value ew ".org")]"#,
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            r#"not[not pr] and or pr or and eq 1"#,
        ];
        for ex in examples {
            let f = parse(ex);
            let shown = f.to_string();
            assert_eq!(parse(&shown), f, "{ex} -> {shown}");
            assert_eq!(parse(&shown).to_string(), shown);
        }
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "bjensen@example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "title": "",
            "nickName": null,
            "active": true,
            "loginCount": 7,
            "score": 2.5,
            "userType": "Employee",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [],
            "x509Certificates": [{}],
            "tags": ["Alpha", "beta"],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34+02:00"
            },
            ENTERPRISE_USER_SCHEMA: {
                "employeeNumber": "701984",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        })
    }

    fn m(filter: &str) -> bool {
        parse(filter).matches(ResourceKind::User, &user())
    }

    #[test]
    fn eval_strings_case_insensitive_by_default() {
        assert!(m(r#"userName eq "BJensen@Example.com""#));
        assert!(
            m(r#"username eq "bjensen@example.com""#),
            "keys are case-insensitive"
        );
        assert!(!m(r#"userName eq "bjensen""#));
        assert!(m(r#"userName ne "bjensen""#));
        assert!(m(r#"userName co "JENSEN""#));
        assert!(m(r#"userName sw "bJ""#));
        assert!(m(r#"userName ew ".COM""#));
        assert!(!m(r#"userName ew "example""#));
        assert!(m(r#"userName gt "a""#));
        assert!(m(r#"userName ge "BJENSEN@example.com""#));
        assert!(m(r#"userName lt "C""#));
        assert!(m(r#"userName le "bjensen@example.com""#));
        assert!(!m(r#"userName lt "b""#));
        assert!(m(r#"name.familyName eq "jensen""#));
        assert!(m(r#"NAME.FAMILYNAME eq "jensen""#));
    }

    #[test]
    fn eval_multi_valued() {
        assert!(m(r#"emails.value co "jensen.org""#));
        assert!(
            m(r#"emails co "jensen.org""#),
            "complex without sub compares value"
        );
        assert!(m(r#"emails eq "BABS@jensen.org""#));
        assert!(!m(r#"emails eq "nobody@example.com""#));
        assert!(m(r#"emails.type eq "home""#));
        assert!(m(r#"tags eq "ALPHA""#));
        assert!(m(r#"tags eq "beta""#));
        assert!(!m(r#"tags eq "gamma""#));
        assert!(m(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!m(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(m(r#"emails[type eq "home" or primary eq true]"#));
        assert!(m(r#"emails[not (primary eq true)]"#));
        assert!(m(r#"emails[primary pr]"#));
        assert!(!m(r#"phoneNumbers[type pr]"#));
        assert!(
            m(r#"tags[value eq "beta"]"#),
            "primitive elements stand for their value"
        );
        assert!(m(r#"name[givenName sw "barb"]"#), "complex single-valued");
    }

    #[test]
    fn eval_numbers_booleans() {
        assert!(m("loginCount eq 7"));
        assert!(m("loginCount eq 7.0"));
        assert!(m("loginCount gt 6.5"));
        assert!(m("loginCount ge 7"));
        assert!(!m("loginCount lt 7"));
        assert!(m("loginCount le 7"));
        assert!(m("score lt 3"));
        assert!(!m("loginCount co 7"));
        assert!(!m(r#"loginCount eq "7""#));
        assert!(m("active eq true"));
        assert!(m("active ne false"));
        assert!(!m("active gt false"));
        assert!(!m(r#"active eq "true""#));
    }

    #[test]
    fn eval_dates() {
        assert!(m(r#"meta.created lt "2011-01-01T00:00:00Z""#));
        assert!(
            m(r#"meta.created eq "2010-01-23T05:56:22+01:00""#),
            "chronological equality"
        );
        // 04:42:34+02:00 is 02:42:34Z: not after 03:00Z although it sorts after it as text.
        assert!(!m(r#"meta.lastModified gt "2011-05-13T03:00:00Z""#));
        assert!(m(r#"meta.lastModified lt "2011-05-13T03:00:00Z""#));
        assert!(m(r#"meta.lastModified ge "2011-05-13T02:42:34Z""#));
        assert!(
            m(r#"meta.lastModified le "2011-05-13T02:42:34""#),
            "no offset means UTC"
        );
        assert!(m(r#"meta.created sw "2010-01""#));
    }

    #[test]
    fn eval_present() {
        assert!(m("userName pr"));
        assert!(!m("title pr"), "empty string");
        assert!(!m("nickName pr"), "null");
        assert!(!m("phoneNumbers pr"), "empty array");
        assert!(!m("x509Certificates pr"), "array of an empty object");
        assert!(!m("displayName pr"), "absent");
        assert!(m("emails pr"));
        assert!(m("emails.primary pr"));
        assert!(m("name.givenName pr"));
        assert!(!m("name.middleName pr"));
        assert!(m("nickName eq null"));
        assert!(m("displayName eq null"));
        assert!(!m("userName eq null"));
        assert!(m("userName ne null"));
        assert!(
            m("displayName ne \"x\""),
            "ne is the negation of eq: an absent attribute matches"
        );
        assert!(
            !m("emails.type ne \"work\""),
            "a multi-valued attribute matches ne only when no value equals"
        );
    }

    #[test]
    fn eval_logic() {
        assert!(m(r#"userName pr and userType eq "employee""#));
        assert!(!m(r#"userName pr and userType eq "intern""#));
        assert!(m(r#"userType eq "intern" or title eq """#));
        assert!(m(r#"not (userType eq "intern")"#));
        assert!(m(r#"displayName pr or userName pr and active eq true"#));
        assert!(!m(r#"(displayName pr or userName pr) and active eq false"#));
    }

    #[test]
    fn eval_urn_qualified() {
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen""#
        ));
        assert!(m(
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.familyName eq "Jensen""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value sw "26118915""#
        ));
        assert!(!m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName pr"#
        ));
        assert!(!m(r#"urn:example:other:userName pr"#));
        let group = json!({"displayName": "Admins", "members": [{"value": "a1"}, {"value": "b2"}]});
        assert!(parse(r#"members[value eq "b2"]"#).matches(ResourceKind::Group, &group));
        assert!(parse(r#"members eq "A1""#).matches(ResourceKind::Group, &group));
        assert!(!parse(r#"members eq "c3""#).matches(ResourceKind::Group, &group));
    }

    #[test]
    fn eval_uses_schema_definitions() {
        // `id` and `externalId` are caseExact (RFC 7643 §3.1).
        assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
        assert!(!m(r#"id sw "2819C223""#));
        let mut u = user();
        u["externalId"] = json!("Ext-1");
        let f = |s: &str| parse(s).matches(ResourceKind::User, &u);
        assert!(f(r#"externalId eq "Ext-1""#));
        assert!(!f(r#"externalId eq "ext-1""#));
        // Unqualified extension attributes are found under the extension URN.
        assert!(m(r#"employeeNumber eq "701984""#));
        assert!(m(r#"manager.value sw "26118915""#));
        // userName is not caseExact.
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:USERNAME eq "BJENSEN@example.com""#
        ));
    }

    #[test]
    fn validate_names_unknown_attributes() {
        let ok = |s: &str| parse(s).validate(ResourceKind::User);
        assert_eq!(ok(r#"userName eq "x" and name.familyName pr"#), Ok(()));
        assert_eq!(
            ok(
                r#"emails[type eq "work" and value co "@"] or meta.created gt "2020-01-01T00:00:00Z""#
            ),
            Ok(())
        );
        assert_eq!(
            ok(r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#),
            Ok(())
        );
        assert_eq!(
            ok(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr"#),
            Ok(())
        );
        let e = ok(r#"userName pr and not (nosuch eq 1)"#).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
        assert!(
            e.detail.contains("unknown attribute 'nosuch' for User"),
            "{}",
            e.detail
        );
        let e = ok(r#"emails[nosuch pr]"#).unwrap_err();
        assert!(e.detail.contains("'emails.nosuch'"), "{}", e.detail);
        assert!(ok("name.nosuch pr").is_err());
        assert!(parse("members[value pr]")
            .validate(ResourceKind::Group)
            .is_ok());
        assert!(parse("userName pr").validate(ResourceKind::Group).is_err());
    }

    #[test]
    fn eval_non_object_resource() {
        for r in [json!(null), json!([1, 2]), json!("x")] {
            assert!(!parse("a pr").matches(ResourceKind::User, &r));
            assert!(parse("a eq null").matches(ResourceKind::User, &r));
        }
    }
}
