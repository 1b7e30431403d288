//! SCIM filters (RFC 7644 §3.4.2.2) and `sortBy` translated to SQL for both
//! engines, with every value passed as a bound parameter.
//!
//! Attribute paths are resolved with [`ResourceKind::resolve`]; unknown ones are
//! `invalidFilter`. The main query aliases the resources table as `res`.
//!
//! Where an attribute lives:
//! * hot columns: `id`, `externalId`, `userName` (the Rust-lower-cased `name_lc`
//!   column, so case-insensitive matching is fully Unicode-correct), Group
//!   `displayName` (also `name_lc`), User `displayName` (`display_name_lc`, also
//!   lower-cased in Rust), `active`, `meta.created`, `meta.lastModified`
//!   (compared as timestamps), `meta.resourceType`, `meta.version`;
//! * User `emails` and `phoneNumbers` ([`INDEXED_MULTI`]): their elements'
//!   `value`, `type` (both lower-cased in Rust) and `primary` are rows of the
//!   `attr_values` table; a filter on them is `res.id IN (SELECT resource_id FROM
//!   attr_values WHERE org_id = ... AND attr = ... AND ...)`, an index lookup for
//!   `eq` and `sw` (a range on `value_lc`), a scan of that narrow table for `co`,
//!   `ew` and orderings. A value filter naming another sub-attribute
//!   (`emails[display eq "x"]`) reads the document, as does sorting;
//! * `members` (Group) and `groups` (User, direct memberships only): `EXISTS` on
//!   the members table;
//! * everything else: the JSON document (SQLite `json_extract`/`json_each`,
//!   PostgreSQL `->`/`->>`/`jsonb_array_elements`), extension attributes under
//!   their schema URN key. The document must use canonical attribute names.
//!
//! Semantics chosen where the RFC leaves room (and kept identical on both engines):
//! * `ne` is the negation of `eq`: a resource without the attribute matches
//!   `ne`; for multi-valued attributes `ne` means "no value equals";
//! * `eq null` means absent (`not pr`), `ne null` means present;
//! * `pr`: not null and, for strings, not empty; for complex attributes a non-empty
//!   object; for multi-valued ones a non-empty array;
//! * a multi-valued complex attribute compared without sub-attribute
//!   (`emails co "x"`) compares its `value` sub-attribute;
//! * `gt ge lt le` compare numbers as numbers, dateTimes as instants and strings
//!   by code point (PostgreSQL `COLLATE "C"`, SQLite `BINARY`); on booleans and
//!   with `co sw ew` on non-strings they are `invalidFilter`;
//! * a comparison value of the wrong JSON type for the attribute is `invalidFilter`;
//! * `not (...)` treats unknown (SQL NULL) as false before negating, so
//!   `not (title eq "x")` matches resources without a title.
//!
//! Case-insensitive (`caseExact: false`) comparisons lower-case both sides. The
//! value is lower-cased in Rust (full Unicode); the stored side is a column
//! lower-cased in Rust where there is one (`name_lc`, `display_name_lc`,
//! `attr_values`) and SQL `lower()` otherwise. SQLite's `lower()`
//! only folds ASCII, so on SQLite a JSON attribute holding non-ASCII capitals
//! (e.g. `name.familyName` "ÅSE") does not match case-insensitively ("åse");
//! PostgreSQL folds per its locale.

use crate::{Dialect, Result};
use scim::schema::{AttrDef, GROUP_SCHEMA, USER_SCHEMA};
use scim::{AttrPath, AttrType, CompOp, CompValue, Filter, ResourceKind, ScimError};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A bound parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Float(f64),
    Bool(Option<bool>),
    Blob(Vec<u8>),
}

/// SQL text with its parameters, referenced as `$1, $2, ...` in the order they
/// were added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Sql {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Adds a parameter and returns its placeholder.
    pub fn param(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    /// Appends a comma-separated list of placeholders for `values`.
    pub fn push_list<'v>(&mut self, values: impl IntoIterator<Item = &'v str>) -> &mut Self {
        let mut first = true;
        for v in values {
            let p = self.param(Arg::Text(Some(v.to_owned())));
            if !first {
                self.text.push_str(", ");
            }
            first = false;
            self.text.push_str(&p);
        }
        self
    }

    /// The query, ready to run.
    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(v) => q.bind(v.as_deref()),
                Arg::Int(v) => q.bind(*v),
                Arg::Float(v) => q.bind(*v),
                Arg::Bool(v) => q.bind(*v),
                Arg::Blob(v) => q.bind(v.as_slice()),
            };
        }
        q
    }
}

/// The multi-valued User attributes whose elements are also kept in the
/// `attr_values` table (their `type`, `value` and `primary`), so that filters on
/// them are index lookups.
pub const INDEXED_MULTI: [&str; 2] = ["emails", "phoneNumbers"];

/// Translates `filter` into a boolean SQL expression over the row `res` of the
/// organisation `org_id`, adding its parameters to `q` (the expression is
/// returned, not appended). Filters on [`INDEXED_MULTI`] read `attr_values`.
pub fn filter_sql(
    q: &mut Sql,
    dialect: Dialect,
    kind: ResourceKind,
    org_id: i64,
    filter: &Filter,
) -> Result<String> {
    Ok(filter_sql_lookup(q, dialect, kind, org_id, filter)?.0)
}

/// [`filter_sql`], and whether the expression looks values up in
/// `attr_values` (see [`order_by`]).
pub fn filter_sql_lookup(
    q: &mut Sql,
    dialect: Dialect,
    kind: ResourceKind,
    org_id: i64,
    filter: &Filter,
) -> Result<(String, bool)> {
    let mut tr = Tr::new(q, dialect, kind, org_id, true);
    let cond = tr.filter(&Scope::Resource, filter)?;
    Ok((cond, tr.value_lookups > 0))
}

/// [`filter_sql`] reading every attribute from the JSON documents, without
/// `attr_values`: the reference the indexed translation is tested against, and
/// the baseline of the benchmark. Same results, except that case-insensitive
/// comparisons of [`INDEXED_MULTI`] values fold per SQL `lower()` here (ASCII
/// only on SQLite) rather than per Rust.
pub fn filter_sql_json_scan(
    q: &mut Sql,
    dialect: Dialect,
    kind: ResourceKind,
    org_id: i64,
    filter: &Filter,
) -> Result<String> {
    Tr::new(q, dialect, kind, org_id, false).filter(&Scope::Resource, filter)
}

/// The `ORDER BY` terms (without the keywords) for a list: by `sort_by`, missing
/// values last when ascending and first when descending (RFC 7644 §3.4.2.3), then
/// by id; by creation then id without `sort_by`.
///
/// With `after_lookup` (the filter looks values up in `attr_values`), the first
/// key is kept from the query planner's index choice
/// ([`Dialect::not_from_index`]): the few matching resources are found through
/// the lookup and then sorted, rather than every resource read in index order
/// and tested.
pub fn order_by(
    dialect: Dialect,
    kind: ResourceKind,
    sort_by: Option<&AttrPath>,
    descending: bool,
    after_lookup: bool,
) -> Result<String> {
    let first = |key: &str| {
        if after_lookup {
            dialect.not_from_index(key)
        } else {
            key.to_owned()
        }
    };
    let Some(path) = sort_by else {
        return Ok(format!("{} ASC, res.id ASC", first("res.created")));
    };
    let mut scratch = Sql::default();
    let mut tr = Tr::new(&mut scratch, dialect, kind, 0, false);
    let target = tr.resource_target(path).map_err(|e| {
        crate::StoreError::Scim(ScimError::invalid_value(format!(
            "cannot sort by {}: {}",
            path.attr, e
        )))
    })?;
    let (key, nullable) = tr.sort_key(&target, path)?;
    let dir = match (descending, nullable) {
        (false, false) => "ASC",
        (true, false) => "DESC",
        (false, true) => "ASC NULLS LAST",
        (true, true) => "DESC NULLS FIRST",
    };
    if matches!(key.as_str(), "res.name_lc" | "res.id") {
        // Unique within an organisation's resources of one kind: no tie to break,
        // and the index alone can deliver the order.
        return Ok(format!("{} {dir}", first(&key)));
    }
    Ok(format!("{} {dir}, res.id ASC", first(&key)))
}

fn invalid(msg: impl Into<String>) -> crate::StoreError {
    crate::StoreError::Scim(ScimError::invalid_filter(msg))
}

/// `NOT x`, with unknown (NULL) counted as false first.
fn not(x: &str) -> String {
    format!("(NOT COALESCE({x}, FALSE))")
}

/// Checks that a JSON key taken from the schema tables can be spliced into SQL.
fn key(name: &'static str) -> Result<&'static str> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_' | '-' | '$'))
    {
        Ok(name)
    } else {
        Err(invalid(format!(
            "attribute name {name:?} cannot be queried"
        )))
    }
}

const VERSION_EXPR: &str = "('W/\"' || res.version || '\"')";

/// Where a JSON value is read from.
#[derive(Debug, Clone)]
enum JBase {
    /// The resource document `res.doc`.
    Doc,
    /// The current element of an array iteration with this alias.
    Elem(String),
}

/// A JSON value: a base and a key path below it.
#[derive(Debug, Clone)]
struct JsonRef {
    base: JBase,
    path: Vec<&'static str>,
}

impl JsonRef {
    fn sqlite_base(&self) -> String {
        match &self.base {
            JBase::Doc => "res.doc".to_owned(),
            JBase::Elem(a) => format!("{a}.value"),
        }
    }

    fn sqlite_path(&self) -> String {
        let mut p = String::from("'$");
        for k in &self.path {
            p.push_str(".\"");
            p.push_str(k);
            p.push('"');
        }
        p.push('\'');
        p
    }

    /// The value as an SQL scalar (text for strings; SQLite: native numbers and
    /// 0/1 for booleans; PostgreSQL: text for everything).
    fn text(&self, d: Dialect) -> String {
        match d {
            Dialect::Sqlite => match (&self.base, self.path.is_empty()) {
                (JBase::Elem(a), true) => format!("{a}.value"),
                _ => format!(
                    "json_extract({}, {})",
                    self.sqlite_base(),
                    self.sqlite_path()
                ),
            },
            Dialect::Postgres => {
                let base = self.pg_base();
                match self.path.split_last() {
                    None => format!("({base} #>> '{{}}')"),
                    Some((last, init)) => {
                        let mut s = format!("({base}");
                        for k in init {
                            s.push_str(&format!("->'{k}'"));
                        }
                        s.push_str(&format!("->>'{last}')"));
                        s
                    }
                }
            }
        }
    }

    fn pg_base(&self) -> String {
        match &self.base {
            JBase::Doc => "res.doc".to_owned(),
            JBase::Elem(a) => format!("{a}.v"),
        }
    }

    /// PostgreSQL: the value as `jsonb`.
    fn pg_json(&self) -> String {
        let mut s = format!("({}", self.pg_base());
        for k in &self.path {
            s.push_str(&format!("->'{k}'"));
        }
        s.push(')');
        s
    }

    /// The rows of the array at this place, aliased `alias` (element: SQLite
    /// `alias.value`, PostgreSQL `alias.v`; position: SQLite `alias.key`,
    /// PostgreSQL `alias.n`).
    fn elements(&self, d: Dialect, alias: &str) -> String {
        match d {
            Dialect::Sqlite => format!(
                "json_each({}, {}) AS {alias}",
                self.sqlite_base(),
                self.sqlite_path()
            ),
            Dialect::Postgres => {
                let j = self.pg_json();
                format!(
                    "jsonb_array_elements(CASE WHEN jsonb_typeof({j}) = 'array' THEN {j} \
                     ELSE '[]'::jsonb END) WITH ORDINALITY AS {alias}(v, n)"
                )
            }
        }
    }
}

/// A scalar value a comparison reads.
#[derive(Debug, Clone)]
enum Operand {
    /// A text column or expression; `lowered` when it holds the value already
    /// lower-cased in Rust (`name_lc`).
    Text { expr: String, lowered: bool },
    /// A timestamp column in microseconds.
    Micros(&'static str),
    /// A boolean column (`active`, `attr_values.is_primary`).
    Bool(&'static str),
    /// A JSON value.
    Json(JsonRef),
}

/// Which side of the members table a `members`/`groups` attribute reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Group `members`: rows whose group is the resource.
    Group,
    /// User `groups`: rows whose member is the resource.
    User,
}

/// What an attribute path designates.
#[derive(Debug, Clone)]
enum Target {
    Scalar(Operand, &'static AttrDef),
    /// A single-valued complex attribute (`name`, enterprise `manager`).
    Complex(JsonRef),
    /// A multi-valued attribute in the document, optionally one sub-attribute;
    /// `indexed` when its elements are also in `attr_values`.
    Multi {
        array: JsonRef,
        attr: &'static AttrDef,
        sub: Option<&'static AttrDef>,
        indexed: bool,
    },
    /// Group `members` or User `groups`, optionally one sub-attribute.
    Membership {
        side: Side,
        attr: &'static AttrDef,
        sub: Option<&'static AttrDef>,
    },
    /// `meta`: always present.
    Always,
}

/// Where attribute paths of a (sub-)filter are resolved.
enum Scope<'p> {
    Resource,
    /// Inside `attr[...]` of a multi-valued document attribute.
    Element {
        outer: &'p AttrPath,
        alias: String,
    },
    /// Inside `attr[...]` of an attribute kept in `attr_values` (alias `av`),
    /// every sub-attribute named being one of its columns.
    Indexed {
        outer: &'p AttrPath,
    },
    /// Inside `attr[...]` of a single-valued complex attribute.
    Complex {
        outer: &'p AttrPath,
        prefix: Vec<&'static str>,
    },
    /// Inside `members[...]` / `groups[...]`.
    Membership {
        outer: &'p AttrPath,
        side: Side,
        m: String,
        r: String,
    },
}

fn is_stringy(t: AttrType) -> bool {
    matches!(t, AttrType::String | AttrType::Reference | AttrType::Binary)
}

fn value_sub(attr: &'static AttrDef) -> Option<&'static AttrDef> {
    attr.sub_attributes.iter().find(|s| s.name == "value")
}

fn sym(op: CompOp) -> Option<&'static str> {
    match op {
        CompOp::Eq => Some("="),
        CompOp::Gt => Some(">"),
        CompOp::Ge => Some(">="),
        CompOp::Lt => Some("<"),
        CompOp::Le => Some("<="),
        CompOp::Ne | CompOp::Co | CompOp::Sw | CompOp::Ew => None,
    }
}

fn op_name(op: CompOp) -> &'static str {
    match op {
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

/// `%`, `_` and `\` escaped for `LIKE ... ESCAPE '\'`, wrapped per operator.
fn like_pattern(op: CompOp, s: &str) -> String {
    let mut esc = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            esc.push('\\');
        }
        esc.push(c);
    }
    match op {
        CompOp::Sw => format!("{esc}%"),
        CompOp::Ew => format!("%{esc}"),
        _ => format!("%{esc}%"),
    }
}

/// `*`, `?` and `[` escaped for SQLite's (case-sensitive) `GLOB`.
fn glob_pattern(op: CompOp, s: &str) -> String {
    let mut esc = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '*' => esc.push_str("[*]"),
            '?' => esc.push_str("[?]"),
            '[' => esc.push_str("[[]"),
            c => esc.push(c),
        }
    }
    match op {
        CompOp::Sw => format!("{esc}*"),
        CompOp::Ew => format!("*{esc}"),
        _ => format!("*{esc}*"),
    }
}

fn parse_time(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| invalid(format!("{s:?} is not an RFC 3339 date-time")))
}

/// What the translator writes differently per engine.
impl Dialect {
    /// A FROM item of the distinct strings of the JSON array of text
    /// parameter `p`, as a column `value`.
    pub(crate) fn distinct_text_elements(self, p: &str) -> String {
        match self {
            Dialect::Sqlite => format!("(SELECT DISTINCT value FROM json_each({p}))"),
            Dialect::Postgres => format!(
                "(SELECT DISTINCT value FROM jsonb_array_elements_text({p}::jsonb) AS e(value))"
            ),
        }
    }

    /// `expr` compared and sorted by code point (PostgreSQL: `COLLATE "C"`;
    /// SQLite's `BINARY` already is).
    pub(crate) fn code_point_order(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => expr.to_owned(),
            Dialect::Postgres => format!("({expr}) COLLATE \"C\""),
        }
    }

    /// `key` as an `ORDER BY` term no index can deliver (SQLite: unary `+`, a
    /// no-op on its value; PostgreSQL's planner weighs the row estimates itself).
    pub(crate) fn not_from_index(self, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!("+{key}"),
            Dialect::Postgres => key.to_owned(),
        }
    }

    /// Whether `LIKE` tells letter case apart (SQLite's ignores ASCII case: a
    /// case-exact pattern match uses `GLOB` there).
    pub(crate) fn like_is_case_sensitive(self) -> bool {
        match self {
            Dialect::Sqlite => false,
            Dialect::Postgres => true,
        }
    }

    /// An RFC 3339 text expression as an instant, for comparing and sorting.
    pub(crate) fn instant(self, text: &str) -> String {
        match self {
            Dialect::Sqlite => format!("unixepoch({text}, 'subsec')"),
            Dialect::Postgres => format!("{text}::timestamptz"),
        }
    }

    /// The parameter a JSON boolean compares equal to (SQLite's `json_extract`
    /// gives 0/1, PostgreSQL's `->>` gives text).
    pub(crate) fn json_bool_arg(self, b: bool) -> Arg {
        match self {
            Dialect::Sqlite => Arg::Int(Some(i64::from(b))),
            Dialect::Postgres => Arg::Text(Some(b.to_string())),
        }
    }

    /// The parameter a JSON number compares with.
    pub(crate) fn number_arg(self, n: &serde_json::Number) -> Arg {
        match (self, n.as_i64()) {
            (Dialect::Sqlite, Some(i)) => Arg::Int(Some(i)),
            (Dialect::Sqlite, None) => Arg::Float(n.as_f64().unwrap_or(f64::NAN)),
            (Dialect::Postgres, _) => Arg::Text(Some(n.to_string())),
        }
    }

    /// The placeholder `p` of a [`Dialect::number_arg`] as a number.
    pub(crate) fn number_param(self, p: &str) -> String {
        match self {
            Dialect::Sqlite => p.to_owned(),
            Dialect::Postgres => format!("{p}::numeric"),
        }
    }

    /// A JSON value as a number, NULL when it is not one (for comparisons).
    fn json_number(self, j: &JsonRef) -> String {
        let text = j.text(self);
        match self {
            Dialect::Sqlite => {
                format!("(CASE WHEN typeof({text}) IN ('integer', 'real') THEN {text} END)")
            }
            Dialect::Postgres => self.json_number_key(j),
        }
    }

    /// A JSON value as a sort key for numbers.
    fn json_number_key(self, j: &JsonRef) -> String {
        let text = j.text(self);
        match self {
            Dialect::Sqlite => text,
            Dialect::Postgres => format!(
                "(CASE WHEN jsonb_typeof({}) = 'number' THEN {text}::numeric END)",
                j.pg_json()
            ),
        }
    }

    /// Whether the JSON value is a non-empty object.
    fn json_nonempty_object(self, j: &JsonRef) -> String {
        match self {
            Dialect::Sqlite => {
                let (b, p) = (j.sqlite_base(), j.sqlite_path());
                format!("(json_type({b}, {p}) = 'object' AND json_extract({b}, {p}) <> '{{}}')")
            }
            Dialect::Postgres => {
                let j = j.pg_json();
                format!("(jsonb_typeof({j}) = 'object' AND {j} <> '{{}}'::jsonb)")
            }
        }
    }

    /// Whether the JSON value is a non-empty array.
    fn json_nonempty_array(self, j: &JsonRef) -> String {
        match self {
            Dialect::Sqlite => format!(
                "(json_array_length({}, {}) > 0)",
                j.sqlite_base(),
                j.sqlite_path()
            ),
            Dialect::Postgres => {
                let j = j.pg_json();
                format!(
                    "(CASE WHEN jsonb_typeof({j}) = 'array' THEN jsonb_array_length({j}) > 0 \
                     ELSE FALSE END)"
                )
            }
        }
    }

    /// The order of the elements of [`JsonRef::elements`] aliased `alias`: the
    /// primary one first when `has_primary`, then by position.
    fn elements_order(self, alias: &str, has_primary: bool) -> String {
        match (self, has_primary) {
            (Dialect::Sqlite, true) => format!(
                "COALESCE(json_extract({alias}.value, '$.\"primary\"'), 0) DESC, {alias}.key"
            ),
            (Dialect::Sqlite, false) => format!("{alias}.key"),
            (Dialect::Postgres, true) => {
                format!("(COALESCE({alias}.v->>'primary', '') = 'true') DESC, {alias}.n")
            }
            (Dialect::Postgres, false) => format!("{alias}.n"),
        }
    }
}

struct Tr<'q> {
    d: Dialect,
    kind: ResourceKind,
    q: &'q mut Sql,
    aliases: usize,
    org_id: i64,
    /// The placeholder of `org_id`, once added.
    org_param: Option<String>,
    /// Whether to read [`INDEXED_MULTI`] from `attr_values`.
    use_index: bool,
    /// How many `attr_values` lookups the expression holds.
    value_lookups: usize,
}

/// The `attr_values` column holding a sub-attribute of an indexed attribute,
/// if it is kept there.
fn indexed_operand(sub: &'static AttrDef) -> Option<Operand> {
    let lowered = |expr: &str| Operand::Text {
        expr: expr.to_owned(),
        lowered: true,
    };
    match sub.name {
        "value" if !sub.case_exact => Some(lowered("av.value_lc")),
        "type" if !sub.case_exact => Some(lowered("av.type_lc")),
        "primary" => Some(Operand::Bool("av.is_primary")),
        _ => None,
    }
}

/// The smallest string greater than every string starting with `prefix` (by
/// code point), or `None` when there is none: `s` starts with `prefix` exactly
/// when `prefix <= s < successor`.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl<'q> Tr<'q> {
    fn new(q: &'q mut Sql, d: Dialect, kind: ResourceKind, org_id: i64, use_index: bool) -> Self {
        Tr {
            d,
            kind,
            q,
            aliases: 0,
            org_id,
            org_param: None,
            use_index,
            value_lookups: 0,
        }
    }

    /// The placeholder of the organisation id.
    fn org(&mut self) -> String {
        if let Some(p) = &self.org_param {
            return p.clone();
        }
        let p = self.q.param(Arg::Int(Some(self.org_id)));
        self.org_param = Some(p.clone());
        p
    }

    /// `res.id` among the resources with an element of the indexed attribute
    /// `attr` satisfying `cond` (over `attr_values av`): a lookup on the
    /// `(org_id, attr, value_lc)` index, then on the resources' primary key.
    fn in_values(&mut self, attr: &'static AttrDef, cond: Option<&str>) -> Result<String> {
        let org = self.org();
        let name = key(attr.name)?;
        self.value_lookups += 1;
        let extra = cond.map(|c| format!(" AND {c}")).unwrap_or_default();
        Ok(format!(
            "res.id IN (SELECT av.resource_id FROM attr_values av \
             WHERE av.org_id = {org} AND av.attr = '{name}'{extra})"
        ))
    }

    /// Whether every attribute `f` names (inside `outer[...]`) is an
    /// `attr_values` column.
    fn indexable(&self, outer: &AttrPath, f: &Filter) -> bool {
        match f {
            Filter::And(a, b) | Filter::Or(a, b) => {
                self.indexable(outer, a) && self.indexable(outer, b)
            }
            Filter::Not(a) => self.indexable(outer, a),
            Filter::Present(p) | Filter::Compare(p, ..) => self
                .sub_target(outer, p)
                .ok()
                .and_then(indexed_operand)
                .is_some(),
            Filter::ValuePath(..) => false,
        }
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    fn filter(&mut self, scope: &Scope<'_>, f: &Filter) -> Result<String> {
        Ok(match f {
            Filter::And(a, b) => {
                format!(
                    "({} AND {})",
                    self.filter(scope, a)?,
                    self.filter(scope, b)?
                )
            }
            Filter::Or(a, b) => {
                format!("({} OR {})", self.filter(scope, a)?, self.filter(scope, b)?)
            }
            Filter::Not(a) => not(&self.filter(scope, a)?),
            Filter::Present(p) => {
                let t = self.target(scope, p)?;
                self.present(&t)?
            }
            Filter::Compare(p, op, v) => {
                let t = self.target(scope, p)?;
                self.compare(&t, *op, v)?
            }
            Filter::ValuePath(p, inner) => {
                if !matches!(scope, Scope::Resource) {
                    return Err(invalid("value filters cannot be nested"));
                }
                if p.sub_attr.is_some() {
                    return Err(invalid(
                        "a value filter applies to an attribute, not a sub-attribute",
                    ));
                }
                match self.resource_target(p)? {
                    Target::Multi {
                        attr,
                        indexed: true,
                        ..
                    } if self.indexable(p, inner) => {
                        let scope = Scope::Indexed { outer: p };
                        let cond = self.filter(&scope, inner)?;
                        self.in_values(attr, Some(&cond))?
                    }
                    Target::Multi { array, .. } => {
                        let alias = self.alias("e");
                        let scope = Scope::Element {
                            outer: p,
                            alias: alias.clone(),
                        };
                        let cond = self.filter(&scope, inner)?;
                        self.exists_elements(&array, &alias, &cond)
                    }
                    Target::Membership { side, .. } => {
                        let (m, r) = (self.alias("m"), self.alias("r"));
                        let scope = Scope::Membership {
                            outer: p,
                            side,
                            m: m.clone(),
                            r: r.clone(),
                        };
                        let cond = self.filter(&scope, inner)?;
                        self.exists_members(side, &m, &r, Some(&cond))
                    }
                    Target::Complex(j) => {
                        let scope = Scope::Complex {
                            outer: p,
                            prefix: j.path,
                        };
                        self.filter(&scope, inner)?
                    }
                    Target::Scalar(..) | Target::Always => {
                        return Err(invalid(format!(
                            "{} has no sub-attributes to filter on",
                            p.attr
                        )))
                    }
                }
            }
        })
    }

    fn exists_elements(&self, array: &JsonRef, alias: &str, cond: &str) -> String {
        format!(
            "EXISTS (SELECT 1 FROM {} WHERE {cond})",
            array.elements(self.d, alias)
        )
    }

    fn exists_members(&self, side: Side, m: &str, r: &str, cond: Option<&str>) -> String {
        let (this, other) = match side {
            Side::Group => ("group_id", "member_id"),
            Side::User => ("member_id", "group_id"),
        };
        let join = match cond {
            Some(c) if c.contains(&format!("{r}.")) => format!(
                " LEFT JOIN resources {r} ON {r}.org_id = {m}.org_id AND {r}.id = {m}.{other}"
            ),
            _ => String::new(),
        };
        let extra = cond.map(|c| format!(" AND {c}")).unwrap_or_default();
        format!(
            "EXISTS (SELECT 1 FROM members {m}{join} \
             WHERE {m}.org_id = res.org_id AND {m}.{this} = res.id{extra})"
        )
    }

    /// Resolves a path at the top level of the filter.
    fn resource_target(&self, path: &AttrPath) -> Result<Target> {
        let r = self.kind.resolve_filter_attr(path)?;
        let (attr, sub) = (r.attr, r.sub);
        let Some(schema) = r.schema else {
            let leaf = r.leaf();
            let text = |expr: &str| {
                Target::Scalar(
                    Operand::Text {
                        expr: expr.to_owned(),
                        lowered: false,
                    },
                    leaf,
                )
            };
            return match (attr.name, sub.map(|s| s.name)) {
                ("id", None) => Ok(text("res.id")),
                ("externalId", None) => Ok(text("res.external_id")),
                ("meta", None) => Ok(Target::Always),
                ("meta", Some("created")) => {
                    Ok(Target::Scalar(Operand::Micros("res.created"), leaf))
                }
                ("meta", Some("lastModified")) => {
                    Ok(Target::Scalar(Operand::Micros("res.last_modified"), leaf))
                }
                ("meta", Some("resourceType")) => Ok(text("res.kind")),
                ("meta", Some("version")) => Ok(text(VERSION_EXPR)),
                (a, s) => Err(invalid(format!(
                    "{a}{} cannot be filtered on",
                    s.map(|s| format!(".{s}")).unwrap_or_default()
                ))),
            };
        };
        let core = schema.id == USER_SCHEMA || schema.id == GROUP_SCHEMA;
        if core && sub.is_none() {
            let column = |expr: &str, lowered: bool| {
                Target::Scalar(
                    Operand::Text {
                        expr: expr.to_owned(),
                        lowered,
                    },
                    attr,
                )
            };
            match (self.kind, attr.name) {
                (ResourceKind::User, "userName") | (ResourceKind::Group, "displayName") => {
                    return Ok(if attr.case_exact {
                        let col = if self.kind == ResourceKind::User {
                            "res.user_name"
                        } else {
                            "res.display_name"
                        };
                        column(col, false)
                    } else {
                        column("res.name_lc", true)
                    });
                }
                (ResourceKind::User, "displayName") => {
                    return Ok(if attr.case_exact {
                        column("res.display_name", false)
                    } else {
                        column("res.display_name_lc", true)
                    });
                }
                (ResourceKind::User, "active") => {
                    return Ok(Target::Scalar(Operand::Bool("res.active"), attr))
                }
                _ => {}
            }
        }
        if core {
            match (self.kind, attr.name) {
                (ResourceKind::Group, "members") => {
                    return Ok(Target::Membership {
                        side: Side::Group,
                        attr,
                        sub,
                    })
                }
                (ResourceKind::User, "groups") => {
                    return Ok(Target::Membership {
                        side: Side::User,
                        attr,
                        sub,
                    })
                }
                _ => {}
            }
        }
        let mut jpath = Vec::with_capacity(3);
        if r.is_extension() {
            jpath.push(key(schema.id)?);
        }
        jpath.push(key(attr.name)?);
        if attr.multi_valued {
            let indexed = self.use_index
                && core
                && self.kind == ResourceKind::User
                && INDEXED_MULTI.contains(&attr.name);
            return Ok(Target::Multi {
                array: JsonRef {
                    base: JBase::Doc,
                    path: jpath,
                },
                attr,
                sub,
                indexed,
            });
        }
        match sub {
            Some(s) => {
                jpath.push(key(s.name)?);
                Ok(Target::Scalar(
                    Operand::Json(JsonRef {
                        base: JBase::Doc,
                        path: jpath,
                    }),
                    s,
                ))
            }
            None if attr.ty == AttrType::Complex => Ok(Target::Complex(JsonRef {
                base: JBase::Doc,
                path: jpath,
            })),
            None => Ok(Target::Scalar(
                Operand::Json(JsonRef {
                    base: JBase::Doc,
                    path: jpath,
                }),
                attr,
            )),
        }
    }

    /// Resolves a path inside a value filter: it names a sub-attribute of `outer`.
    fn sub_target(&self, outer: &AttrPath, path: &AttrPath) -> Result<&'static AttrDef> {
        let name = match &path.sub_attr {
            Some(s) if path.attr.eq_ignore_ascii_case(&outer.attr) => s.clone(),
            Some(_) => {
                return Err(invalid(format!(
                    "{}.{} is not a sub-attribute of {}",
                    path.attr,
                    path.sub_attr.as_deref().unwrap_or_default(),
                    outer.attr
                )))
            }
            None => path.attr.clone(),
        };
        let full = AttrPath {
            schema: outer.schema.clone(),
            attr: outer.attr.clone(),
            sub_attr: Some(name),
        };
        let r = self.kind.resolve_filter_attr(&full)?;
        r.sub
            .ok_or_else(|| invalid(format!("{} has no sub-attribute {}", outer.attr, path.attr)))
    }

    fn target(&self, scope: &Scope<'_>, path: &AttrPath) -> Result<Target> {
        match scope {
            Scope::Resource => self.resource_target(path),
            Scope::Element { outer, alias } => {
                let sub = self.sub_target(outer, path)?;
                Ok(Target::Scalar(
                    Operand::Json(JsonRef {
                        base: JBase::Elem(alias.clone()),
                        path: vec![key(sub.name)?],
                    }),
                    sub,
                ))
            }
            Scope::Indexed { outer } => {
                let sub = self.sub_target(outer, path)?;
                let o = indexed_operand(sub)
                    .ok_or_else(|| invalid(format!("{} is not indexed", sub.name)))?;
                Ok(Target::Scalar(o, sub))
            }
            Scope::Complex { outer, prefix } => {
                let sub = self.sub_target(outer, path)?;
                let mut p = prefix.clone();
                p.push(key(sub.name)?);
                Ok(Target::Scalar(
                    Operand::Json(JsonRef {
                        base: JBase::Doc,
                        path: p,
                    }),
                    sub,
                ))
            }
            Scope::Membership { outer, side, m, r } => {
                let sub = self.sub_target(outer, path)?;
                Ok(Target::Scalar(member_operand(*side, sub, m, r)?, sub))
            }
        }
    }

    fn present(&mut self, t: &Target) -> Result<String> {
        let d = self.d;
        Ok(match t {
            Target::Always => "(1 = 1)".to_owned(),
            Target::Scalar(o, def) => match o {
                Operand::Text { expr, .. } => format!("({expr} IS NOT NULL AND {expr} <> '')"),
                Operand::Micros(_) => "(1 = 1)".to_owned(),
                Operand::Bool(c) => format!("({c} IS NOT NULL)"),
                Operand::Json(j) => {
                    let t = j.text(d);
                    if is_stringy(def.ty) {
                        format!("({t} IS NOT NULL AND {t} <> '')")
                    } else {
                        format!("({t} IS NOT NULL)")
                    }
                }
            },
            Target::Complex(j) => d.json_nonempty_object(j),
            Target::Multi {
                attr,
                sub: None,
                indexed: true,
                ..
            } => self.in_values(attr, None)?,
            Target::Multi {
                attr,
                sub: Some(s),
                indexed: true,
                ..
            } if indexed_operand(s).is_some() => {
                let o = indexed_operand(s).ok_or_else(|| invalid("not indexed"))?;
                let cond = self.present(&Target::Scalar(o, s))?;
                self.in_values(attr, Some(&cond))?
            }
            Target::Multi {
                array, sub: None, ..
            } => d.json_nonempty_array(array),
            Target::Multi {
                array,
                sub: Some(s),
                ..
            } => {
                let alias = self.alias("e");
                let elem = Target::Scalar(Operand::Json(elem_ref(&alias, Some(s))?), s);
                let cond = self.present(&elem)?;
                self.exists_elements(array, &alias, &cond)
            }
            Target::Membership { side, sub, .. } => {
                let (m, r) = (self.alias("m"), self.alias("r"));
                match sub {
                    None => self.exists_members(*side, &m, &r, None),
                    Some(s) => {
                        let t = Target::Scalar(member_operand(*side, s, &m, &r)?, s);
                        let cond = self.present(&t)?;
                        self.exists_members(*side, &m, &r, Some(&cond))
                    }
                }
            }
        })
    }

    fn compare(&mut self, t: &Target, op: CompOp, v: &CompValue) -> Result<String> {
        if let CompValue::Null = v {
            return match op {
                CompOp::Eq => Ok(not(&self.present(t)?)),
                CompOp::Ne => self.present(t),
                _ => Err(invalid(format!("{} cannot compare with null", op_name(op)))),
            };
        }
        if op == CompOp::Ne {
            return Ok(not(&self.compare(t, CompOp::Eq, v)?));
        }
        match t {
            Target::Scalar(o, def) => self.compare_scalar(o, def, op, v),
            Target::Multi {
                array,
                attr,
                sub,
                indexed,
            } => {
                let sub = match sub {
                    Some(s) => Some(*s),
                    None if attr.ty == AttrType::Complex => {
                        Some(value_sub(attr).ok_or_else(|| {
                            invalid(format!(
                                "{} has no value sub-attribute to compare",
                                attr.name
                            ))
                        })?)
                    }
                    None => None,
                };
                if let Some((s, o)) = sub
                    .filter(|_| *indexed)
                    .and_then(|s| indexed_operand(s).map(|o| (s, o)))
                {
                    let cond = self.compare_scalar(&o, s, op, v)?;
                    return self.in_values(attr, Some(&cond));
                }
                let alias = self.alias("e");
                let elem = Operand::Json(elem_ref(&alias, sub)?);
                let cond = self.compare_scalar(&elem, sub.unwrap_or(attr), op, v)?;
                Ok(self.exists_elements(array, &alias, &cond))
            }
            Target::Membership { side, attr, sub } => {
                let sub = match sub {
                    Some(s) => *s,
                    None => value_sub(attr).ok_or_else(|| {
                        invalid(format!(
                            "{} has no value sub-attribute to compare",
                            attr.name
                        ))
                    })?,
                };
                let (m, r) = (self.alias("m"), self.alias("r"));
                let operand = member_operand(*side, sub, &m, &r)?;
                let cond = self.compare_scalar(&operand, sub, op, v)?;
                Ok(self.exists_members(*side, &m, &r, Some(&cond)))
            }
            Target::Complex(_) | Target::Always => Err(invalid(
                "a complex attribute can only be tested with pr or a value filter",
            )),
        }
    }

    fn compare_scalar(
        &mut self,
        o: &Operand,
        def: &'static AttrDef,
        op: CompOp,
        v: &CompValue,
    ) -> Result<String> {
        let wrong_type = || {
            invalid(format!(
                "{} is of type {:?}; the comparison value does not match",
                def.name, def.ty
            ))
        };
        let ordering = || {
            sym(op).ok_or_else(|| {
                invalid(format!(
                    "{} cannot be used on {} ({:?})",
                    op_name(op),
                    def.name,
                    def.ty
                ))
            })
        };
        match o {
            Operand::Micros(col) => {
                if !matches!(v, CompValue::String(_)) {
                    return Err(wrong_type());
                }
                let s = ordering()?;
                let t = parse_time_value(v)?;
                let p = self.q.param(Arg::Int(Some(crate::conn::to_micros(t))));
                Ok(format!("{col} {s} {p}"))
            }
            Operand::Bool(col) => {
                let CompValue::Bool(b) = v else {
                    return Err(wrong_type());
                };
                if op != CompOp::Eq {
                    return Err(invalid(format!(
                        "{} cannot be used on booleans",
                        op_name(op)
                    )));
                }
                let p = self.q.param(Arg::Bool(Some(*b)));
                Ok(format!("{col} = {p}"))
            }
            Operand::Text { expr, lowered } => {
                let CompValue::String(s) = v else {
                    return Err(wrong_type());
                };
                self.text_compare(expr, *lowered, def.case_exact, op, s)
            }
            Operand::Json(j) => {
                let text = j.text(self.d);
                match def.ty {
                    AttrType::String | AttrType::Reference | AttrType::Binary => {
                        let CompValue::String(s) = v else {
                            return Err(wrong_type());
                        };
                        self.text_compare(&text, false, def.case_exact, op, s)
                    }
                    AttrType::Boolean => {
                        let CompValue::Bool(b) = v else {
                            return Err(wrong_type());
                        };
                        if op != CompOp::Eq {
                            return Err(invalid(format!(
                                "{} cannot be used on booleans",
                                op_name(op)
                            )));
                        }
                        let p = self.q.param(self.d.json_bool_arg(*b));
                        Ok(format!("{text} = {p}"))
                    }
                    AttrType::Integer | AttrType::Decimal => {
                        let CompValue::Number(n) = v else {
                            return Err(wrong_type());
                        };
                        let s = ordering()?;
                        let p = self.q.param(self.d.number_arg(n));
                        Ok(format!(
                            "{} {s} {}",
                            self.d.json_number(j),
                            self.d.number_param(&p)
                        ))
                    }
                    AttrType::DateTime => {
                        let s = ordering()?;
                        let t = parse_time_value(v)?;
                        let iso = t
                            .to_offset(time::UtcOffset::UTC)
                            .format(&Rfc3339)
                            .map_err(|_| invalid("date-time out of range"))?;
                        let p = self.q.param(Arg::Text(Some(iso)));
                        Ok(format!(
                            "{} {s} {}",
                            self.d.instant(&text),
                            self.d.instant(&p)
                        ))
                    }
                    AttrType::Complex => Err(invalid(format!(
                        "{} is complex: compare one of its sub-attributes",
                        def.name
                    ))),
                }
            }
        }
    }

    fn text_compare(
        &mut self,
        expr: &str,
        lowered: bool,
        case_exact: bool,
        op: CompOp,
        s: &str,
    ) -> Result<String> {
        let (lhs, val) = if case_exact {
            (expr.to_owned(), s.to_owned())
        } else if lowered {
            (expr.to_owned(), s.to_lowercase())
        } else {
            (format!("lower({expr})"), s.to_lowercase())
        };
        Ok(match op {
            CompOp::Eq => {
                let p = self.q.param(Arg::Text(Some(val)));
                format!("{lhs} = {p}")
            }
            CompOp::Sw if lowered && !case_exact => {
                // A range on the Rust-lower-cased column (binary order on both
                // engines): exact, and an index range scan.
                let from = self.q.param(Arg::Text(Some(val.clone())));
                match prefix_successor(&val) {
                    Some(to) => {
                        let to = self.q.param(Arg::Text(Some(to)));
                        format!("({lhs} >= {from} AND {lhs} < {to})")
                    }
                    None => format!("{lhs} >= {from}"),
                }
            }
            CompOp::Co | CompOp::Sw | CompOp::Ew => {
                if case_exact && !self.d.like_is_case_sensitive() {
                    let p = self.q.param(Arg::Text(Some(glob_pattern(op, &val))));
                    format!("{lhs} GLOB {p}")
                } else {
                    let p = self.q.param(Arg::Text(Some(like_pattern(op, &val))));
                    format!("{lhs} LIKE {p} ESCAPE '\\'")
                }
            }
            CompOp::Gt | CompOp::Ge | CompOp::Lt | CompOp::Le => {
                let s = sym(op).unwrap_or("=");
                let p = self.q.param(Arg::Text(Some(val)));
                format!("{} {s} {p}", self.d.code_point_order(&lhs))
            }
            CompOp::Ne => not(&self.text_compare(expr, lowered, case_exact, CompOp::Eq, s)?),
        })
    }

    /// The sort key for a target and whether it can be NULL.
    fn sort_key(&mut self, t: &Target, path: &AttrPath) -> Result<(String, bool)> {
        let d = self.d;
        let cannot = || {
            crate::StoreError::Scim(ScimError::invalid_value(format!(
                "cannot sort by {}",
                path.attr
            )))
        };
        match t {
            Target::Scalar(o, def) => Ok(match o {
                Operand::Micros(c) => ((*c).to_owned(), false),
                Operand::Bool(c) => ((*c).to_owned(), true),
                Operand::Text { expr, lowered } => {
                    if expr == VERSION_EXPR {
                        ("res.version".to_owned(), false)
                    } else {
                        let key = if *lowered || def.case_exact {
                            expr.clone()
                        } else {
                            format!("lower({expr})")
                        };
                        let nullable =
                            !matches!(expr.as_str(), "res.id" | "res.kind" | "res.name_lc");
                        (key, nullable)
                    }
                }
                Operand::Json(j) => (json_sort_key(d, j, def), true),
            }),
            Target::Multi {
                array, attr, sub, ..
            } => {
                let sub = match sub {
                    Some(s) => Some(*s),
                    None if attr.ty == AttrType::Complex => {
                        Some(value_sub(attr).ok_or_else(cannot)?)
                    }
                    None => None,
                };
                let alias = self.alias("e");
                let elem = elem_ref(&alias, sub)?;
                let key = json_sort_key(d, &elem, sub.unwrap_or(attr));
                let has_primary = attr.sub_attributes.iter().any(|s| s.name == "primary");
                let order = d.elements_order(&alias, has_primary);
                Ok((
                    format!(
                        "(SELECT {key} FROM {} ORDER BY {order} LIMIT 1)",
                        array.elements(d, &alias)
                    ),
                    true,
                ))
            }
            Target::Complex(_) | Target::Membership { .. } | Target::Always => Err(cannot()),
        }
    }
}

fn parse_time_value(v: &CompValue) -> Result<OffsetDateTime> {
    match v {
        CompValue::String(s) => parse_time(s),
        _ => Err(invalid("a date-time comparison needs a string value")),
    }
}

/// The current element (or its sub-attribute `sub`) of an iteration `alias`.
fn elem_ref(alias: &str, sub: Option<&'static AttrDef>) -> Result<JsonRef> {
    Ok(JsonRef {
        base: JBase::Elem(alias.to_owned()),
        path: match sub {
            Some(s) => vec![key(s.name)?],
            None => Vec::new(),
        },
    })
}

/// The column a `members`/`groups` sub-attribute reads, in a members row `m`
/// joined with the other side's resource `r`.
fn member_operand(side: Side, sub: &'static AttrDef, m: &str, r: &str) -> Result<Operand> {
    let expr = match (side, sub.name) {
        (Side::Group, "value") => format!("{m}.member_id"),
        (Side::User, "value") => format!("{m}.group_id"),
        (Side::Group, "type") => format!("{m}.member_kind"),
        (Side::User, "type") => "'direct'".to_owned(),
        (Side::Group, "display") => format!("COALESCE({r}.display_name, {r}.user_name)"),
        (Side::User, "display") => format!("{r}.display_name"),
        (_, other) => return Err(invalid(format!("{other} cannot be filtered on"))),
    };
    Ok(Operand::Text {
        expr,
        lowered: false,
    })
}

/// A sort key for a JSON value of type `def.ty`.
fn json_sort_key(d: Dialect, j: &JsonRef, def: &AttrDef) -> String {
    let text = j.text(d);
    match def.ty {
        t if is_stringy(t) => {
            let key = if def.case_exact {
                text
            } else {
                format!("lower({text})")
            };
            d.code_point_order(&key)
        }
        AttrType::DateTime => d.instant(&text),
        AttrType::Integer | AttrType::Decimal => d.json_number_key(j),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escapes_wildcards_and_escape() {
        assert_eq!(like_pattern(CompOp::Co, r"a%b_c\d"), r"%a\%b\_c\\d%");
        assert_eq!(like_pattern(CompOp::Sw, "x"), "x%");
        assert_eq!(like_pattern(CompOp::Ew, "x"), "%x");
    }

    #[test]
    fn prefix_successor_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_successor("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        assert_eq!(prefix_successor(""), None);
        let (from, to) = ("élo", prefix_successor("élo").unwrap());
        for s in ["élo", "élodie", "élo\u{10FFFF}x"] {
            assert!(from <= s && s < to.as_str(), "{s}");
        }
        for s in ["él", "élp", "elodie", " émo"] {
            assert!(!(from <= s && s < to.as_str()), "{s}");
        }
    }

    #[test]
    fn glob_escapes_wildcards() {
        assert_eq!(glob_pattern(CompOp::Co, "a*b?c[d]"), "*a[*]b[?]c[[]d]*");
        assert_eq!(glob_pattern(CompOp::Sw, "x"), "x*");
        assert_eq!(glob_pattern(CompOp::Ew, "x"), "*x");
    }

    #[test]
    fn json_paths_per_dialect() {
        let j = JsonRef {
            base: JBase::Doc,
            path: vec!["name", "givenName"],
        };
        assert_eq!(
            j.text(Dialect::Sqlite),
            r#"json_extract(res.doc, '$."name"."givenName"')"#
        );
        assert_eq!(j.text(Dialect::Postgres), "(res.doc->'name'->>'givenName')");
        let e = JsonRef {
            base: JBase::Elem("e1".into()),
            path: vec![],
        };
        assert_eq!(e.text(Dialect::Sqlite), "e1.value");
        assert_eq!(e.text(Dialect::Postgres), "(e1.v #>> '{}')");
    }

    #[test]
    fn keys_with_quotes_are_refused() {
        assert!(key("givenName").is_ok());
        assert!(key("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User").is_ok());
        assert!(key("a'b").is_err());
        assert!(key("a\"b").is_err());
    }
}

/// Operand types the User and Group schemas do not use (numbers, JSON
/// date-times, JSON booleans, multi-valued simple attributes), run against real
/// rows on every engine under test with made-up attribute definitions.
#[cfg(all(test, feature = "testing"))]
mod typed_json_tests {
    use super::*;
    use crate::testing::stores_under_test;
    use crate::{ResourceRow, Store};
    use serde_json::json;
    use sqlx::Row;

    static SCORE: AttrDef = AttrDef::new("score", AttrType::Integer, "");
    static WHEN: AttrDef = AttrDef::new("when", AttrType::DateTime, "");
    static FLAG: AttrDef = AttrDef::new("flag", AttrType::Boolean, "");
    static TAGS: AttrDef = AttrDef::new("tags", AttrType::String, "").multi();

    fn scalar(def: &'static AttrDef) -> Target {
        Target::Scalar(
            Operand::Json(JsonRef {
                base: JBase::Doc,
                path: vec![def.name],
            }),
            def,
        )
    }

    fn tags() -> Target {
        Target::Multi {
            array: JsonRef {
                base: JBase::Doc,
                path: vec!["tags"],
            },
            attr: &TAGS,
            sub: None,
            indexed: false,
        }
    }

    async fn ids(
        store: &Store,
        org: i64,
        build: impl FnOnce(&mut Tr<'_>) -> (String, String),
    ) -> Vec<String> {
        let mut q = Sql::default();
        let o = q.param(Arg::Int(Some(org)));
        let (cond, order) = build(&mut Tr::new(
            &mut q,
            store.dialect(),
            ResourceKind::User,
            org,
            true,
        ));
        q.text = format!(
            "SELECT res.id FROM resources res WHERE res.org_id = {o} AND {cond} ORDER BY {order}"
        );
        q.query()
            .fetch_all(store.reader())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect()
    }

    async fn filter(store: &Store, org: i64, t: Target, op: CompOp, v: CompValue) -> Vec<String> {
        ids(store, org, |tr| {
            (tr.compare(&t, op, &v).unwrap(), "res.id".into())
        })
        .await
    }

    async fn present(store: &Store, org: i64, t: Target) -> Vec<String> {
        ids(store, org, |tr| (tr.present(&t).unwrap(), "res.id".into())).await
    }

    async fn sorted(store: &Store, org: i64, t: Target) -> Vec<String> {
        ids(store, org, |tr| {
            let (key, _) = tr.sort_key(&t, &AttrPath::new("x")).unwrap();
            ("(1 = 1)".into(), format!("{key} ASC NULLS LAST, res.id"))
        })
        .await
    }

    fn num(n: serde_json::Number) -> CompValue {
        CompValue::Number(n)
    }

    #[tokio::test]
    async fn numbers_dates_booleans_and_simple_arrays() {
        for (engine, store) in stores_under_test().await {
            let mut tx = store.begin().await.unwrap();
            let org = tx.create_org("o", "o").await.unwrap().id;
            let docs = [
                (
                    "u1",
                    json!({"userName": "a", "score": 5, "when": "2020-01-01T00:00:00Z", "flag": true, "tags": ["b", "A"]}),
                ),
                (
                    "u2",
                    json!({"userName": "b", "score": 12.5, "when": "2021-06-01T12:00:00+02:00", "flag": false, "tags": []}),
                ),
                ("u3", json!({"userName": "c", "score": "7"})),
                ("u4", json!({"userName": "d"})),
            ];
            for (id, doc) in docs {
                let now = time::OffsetDateTime::now_utc();
                let row = ResourceRow {
                    id: id.into(),
                    kind: ResourceKind::User,
                    doc,
                    password_hash: None,
                    version: 1,
                    created: now,
                    last_modified: now,
                };
                tx.insert_resource(org, &row).await.unwrap();
            }
            tx.commit().await.unwrap();
            let s = &store;
            let n = |v: f64| num(serde_json::Number::from_f64(v).unwrap());
            let i = |v: i64| num(v.into());
            let t = |v: &str| CompValue::String(v.into());

            assert_eq!(
                filter(s, org, scalar(&SCORE), CompOp::Gt, i(6)).await,
                ["u2"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, scalar(&SCORE), CompOp::Eq, i(5)).await,
                ["u1"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, scalar(&SCORE), CompOp::Le, n(12.5)).await,
                ["u1", "u2"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, scalar(&SCORE), CompOp::Lt, n(5.5)).await,
                ["u1"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, scalar(&SCORE), CompOp::Ne, i(5)).await,
                ["u2", "u3", "u4"],
                "{engine}"
            );
            assert_eq!(
                present(s, org, scalar(&SCORE)).await,
                ["u1", "u2", "u3"],
                "{engine}"
            );

            assert_eq!(
                filter(s, org, scalar(&WHEN), CompOp::Gt, t("2020-06-01T00:00:00Z")).await,
                ["u2"],
                "{engine}"
            );
            assert_eq!(
                filter(
                    s,
                    org,
                    scalar(&WHEN),
                    CompOp::Eq,
                    t("2020-01-01T01:00:00+01:00")
                )
                .await,
                ["u1"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, scalar(&WHEN), CompOp::Lt, t("2021-06-01T10:00:01Z")).await,
                ["u1", "u2"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, scalar(&WHEN), CompOp::Ge, t("2021-06-01T10:00:01Z")).await,
                Vec::<String>::new(),
                "{engine}"
            );

            assert_eq!(
                filter(s, org, scalar(&FLAG), CompOp::Eq, CompValue::Bool(true)).await,
                ["u1"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, scalar(&FLAG), CompOp::Eq, CompValue::Bool(false)).await,
                ["u2"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, scalar(&FLAG), CompOp::Ne, CompValue::Bool(true)).await,
                ["u2", "u3", "u4"],
                "{engine}"
            );
            assert_eq!(
                present(s, org, scalar(&FLAG)).await,
                ["u1", "u2"],
                "{engine}"
            );

            assert_eq!(
                filter(s, org, tags(), CompOp::Eq, t("a")).await,
                ["u1"],
                "{engine}"
            );
            assert_eq!(
                filter(s, org, tags(), CompOp::Sw, t("B")).await,
                ["u1"],
                "{engine}"
            );
            assert_eq!(present(s, org, tags()).await, ["u1"], "{engine}");

            assert_eq!(
                sorted(s, org, scalar(&SCORE)).await,
                ["u1", "u2", "u3", "u4"],
                "{engine}"
            );
            assert_eq!(
                sorted(s, org, scalar(&WHEN)).await,
                ["u1", "u2", "u3", "u4"],
                "{engine}"
            );
            assert_eq!(
                sorted(s, org, tags()).await,
                ["u1", "u2", "u3", "u4"],
                "{engine}"
            );

            // Wrong value types and operators are refused.
            let mut q = Sql::default();
            let mut tr = Tr::new(&mut q, store.dialect(), ResourceKind::User, org, true);
            assert!(tr.compare(&scalar(&SCORE), CompOp::Co, &i(1)).is_err());
            assert!(tr.compare(&scalar(&SCORE), CompOp::Eq, &t("1")).is_err());
            assert!(tr.compare(&scalar(&WHEN), CompOp::Sw, &t("2020")).is_err());
            assert!(tr
                .compare(&scalar(&FLAG), CompOp::Gt, &CompValue::Bool(true))
                .is_err());
        }
    }
}
