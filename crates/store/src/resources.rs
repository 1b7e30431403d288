//! SCIM resources: reads, list queries (filter, sort, paging) and writes.
//!
//! The indexed columns (`name_lc`, `user_name`, `display_name`,
//! `display_name_lc`, `external_id`, `active`) and the `attr_values` rows (the
//! elements of a User's `emails` and `phoneNumbers`, see
//! [`sql::INDEXED_MULTI`]) are derived from [`ResourceRow::doc`] on every insert
//! and update, in the same transaction; deleting a resource deletes its
//! `attr_values` rows (foreign key cascade).

use crate::conn::{decode_error, from_micros, map_unique, to_micros};
use crate::sql::{self, Arg, Sql};
use crate::{Dialect, ListQuery, Page, ResourceKind, ResourceRow, Result, Store, StoreError, Tx};
use scim::ScimError;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

/// The columns a [`ResourceRow`] is read from, for a table aliased `res`.
fn columns(d: Dialect) -> String {
    format!(
        "res.id, res.kind, {} AS doc, res.password_hash, res.version, res.created, \
         res.last_modified",
        d.json_as_text("res.doc")
    )
}

impl Dialect {
    /// A JSON column read as text (PostgreSQL's `jsonb` is cast).
    pub(crate) fn json_as_text(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => column.to_owned(),
            Dialect::Postgres => format!("{column}::text"),
        }
    }

    /// The placeholder `p` of a JSON text parameter as the engine's JSON type.
    pub(crate) fn json_param(self, p: &str) -> String {
        match self {
            Dialect::Sqlite => p.to_owned(),
            Dialect::Postgres => format!("{p}::jsonb"),
        }
    }

    /// What ends a `SELECT` that locks its rows until the end of the
    /// transaction (nothing on SQLite, whose single writer serialises them).
    pub(crate) fn row_lock(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

pub(crate) fn kind_from_str(s: &str) -> Result<ResourceKind> {
    match s {
        "User" => Ok(ResourceKind::User),
        "Group" => Ok(ResourceKind::Group),
        other => Err(decode_error(format!("unknown resource kind {other:?}"))),
    }
}

fn row_from(row: &AnyRow) -> Result<ResourceRow> {
    let doc: String = row.try_get("doc")?;
    Ok(ResourceRow {
        id: row.try_get("id")?,
        kind: kind_from_str(&row.try_get::<String, _>("kind")?)?,
        doc: serde_json::from_str(&doc)
            .map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))?,
        password_hash: row.try_get("password_hash")?,
        version: row.try_get("version")?,
        created: from_micros(row.try_get("created")?)?,
        last_modified: from_micros(row.try_get("last_modified")?)?,
    })
}

/// A top-level member of the document, matched exactly, else ignoring ASCII case.
fn field<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    let obj = doc.as_object()?;
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn string_field(doc: &Value, name: &str) -> Option<String> {
    field(doc, name).and_then(Value::as_str).map(str::to_owned)
}

/// The indexed columns of a resource, derived from its document.
struct Hot {
    name_lc: String,
    user_name: Option<String>,
    display_name: Option<String>,
    /// `display_name` lower-cased in Rust (full Unicode).
    display_name_lc: Option<String>,
    external_id: Option<String>,
    active: Option<bool>,
}

impl Hot {
    fn of(row: &ResourceRow) -> Result<Hot> {
        let user_name = match row.kind {
            ResourceKind::User => string_field(&row.doc, "userName"),
            ResourceKind::Group => None,
        };
        let display_name = string_field(&row.doc, "displayName");
        let name = match row.kind {
            ResourceKind::User => user_name.as_deref(),
            ResourceKind::Group => display_name.as_deref(),
        };
        let Some(name) = name else {
            let attr = match row.kind {
                ResourceKind::User => "userName",
                ResourceKind::Group => "displayName",
            };
            return Err(StoreError::Scim(ScimError::invalid_value(format!(
                "{attr} is required"
            ))));
        };
        Ok(Hot {
            name_lc: name.to_lowercase(),
            external_id: string_field(&row.doc, "externalId"),
            active: match row.kind {
                ResourceKind::User => field(&row.doc, "active").and_then(Value::as_bool),
                ResourceKind::Group => None,
            },
            user_name,
            display_name_lc: display_name.as_deref().map(str::to_lowercase),
            display_name,
        })
    }
}

/// One element of an indexed multi-valued attribute, as kept in `attr_values`.
struct AttrValue {
    attr: &'static str,
    /// Position in the array.
    pos: i64,
    type_lc: Option<String>,
    value_lc: Option<String>,
    primary: Option<bool>,
}

impl AttrValue {
    /// The elements of the resource's indexed attributes (the document's keys
    /// read exactly, as filters do): one per array element, whatever its JSON
    /// type, so that `emails pr` is "a non-empty array".
    fn of(row: &ResourceRow) -> Vec<AttrValue> {
        let mut out = Vec::new();
        if row.kind != ResourceKind::User {
            return out;
        }
        for attr in sql::INDEXED_MULTI {
            let Some(Value::Array(elems)) = row.doc.get(attr) else {
                continue;
            };
            for (pos, e) in elems.iter().enumerate() {
                let lc = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_lowercase);
                out.push(AttrValue {
                    attr,
                    pos: i64::try_from(pos).unwrap_or(i64::MAX),
                    type_lc: lc("type"),
                    value_lc: lc("value"),
                    primary: e.get("primary").and_then(Value::as_bool),
                });
            }
        }
        out
    }
}

/// The conflict message for a unique violation on `resources`.
fn conflict_message(kind: ResourceKind, constraint: &str) -> String {
    if constraint.contains("name_lc") {
        match kind {
            ResourceKind::User => "a User with this userName already exists".to_owned(),
            ResourceKind::Group => "a Group with this displayName already exists".to_owned(),
        }
    } else {
        format!("a {} with this id already exists", kind.name())
    }
}

impl Store {
    /// One resource of one organisation.
    pub async fn get_resource(
        &self,
        org_id: i64,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<ResourceRow>> {
        let q = format!(
            "SELECT {} FROM resources res WHERE res.org_id = $1 AND res.kind = $2 AND res.id = $3",
            columns(self.dialect())
        );
        let row = sqlx::query(&q)
            .bind(org_id)
            .bind(kind.name())
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(row_from).transpose()
    }

    /// One page of the resources of `kind` in an organisation that match
    /// `q.filter`, sorted by `q.sort_by` (ties and unsorted lists by id / creation),
    /// starting at the 1-based `q.start_index` (values below 1 count as 1), at most
    /// `q.count` of them (0: only the total). `total_results` counts all matches.
    pub async fn list_resources(
        &self,
        org_id: i64,
        kind: ResourceKind,
        q: &ListQuery,
    ) -> Result<Page> {
        let d = self.dialect();
        let mut sql = Sql::default();
        let org = sql.param(Arg::Int(Some(org_id)));
        let k = sql.param(Arg::Text(Some(kind.name().to_owned())));
        let mut where_ = format!("res.org_id = {org} AND res.kind = {k}");
        let mut lookup = false;
        if let Some(f) = &q.filter {
            let (cond, l) = sql::filter_sql_lookup(&mut sql, d, kind, org_id, f)?;
            where_.push_str(&format!(" AND {cond}"));
            lookup = l;
        }
        let order = sql::order_by(d, kind, q.sort_by.as_ref(), q.descending, lookup)?;

        // The page first: when it is not full, it tells the total without a
        // COUNT (a lookup by userName or e-mail is one query, not two).
        let offset = q.start_index.saturating_sub(1);
        let mut resources = Vec::new();
        let users = kind == ResourceKind::User;
        let mut grouped = users.then(std::collections::HashSet::new);
        if q.count > 0 {
            let mut page = Sql {
                text: String::new(),
                args: sql.args.clone(),
            };
            let limit = page.param(Arg::Int(Some(i64::try_from(q.count).unwrap_or(i64::MAX))));
            let off = page.param(Arg::Int(Some(i64::try_from(offset).unwrap_or(i64::MAX))));
            // Users: whether each belongs to a group, in the same query.
            let grouped_column = if users {
                ", CAST(CASE WHEN EXISTS (SELECT 1 FROM members m \
                 WHERE m.org_id = res.org_id AND m.member_id = res.id) \
                 THEN 1 ELSE 0 END AS BIGINT) AS grouped"
            } else {
                ""
            };
            page.text = format!(
                "SELECT {}{grouped_column} FROM resources res WHERE {where_} \
                 ORDER BY {order} LIMIT {limit} OFFSET {off}",
                columns(d)
            );
            let rows = page.query().fetch_all(self.reader()).await?;
            for row in &rows {
                let resource = row_from(row)?;
                if let Some(set) = grouped.as_mut() {
                    if row.try_get::<i64, _>("grouped")? != 0 {
                        set.insert(resource.id.clone());
                    }
                }
                resources.push(resource);
            }
        }
        let short = (resources.len() as u64) < q.count;
        let total = if short && (offset == 0 || !resources.is_empty()) {
            i64::try_from(offset + resources.len() as u64).unwrap_or(i64::MAX)
        } else {
            sql.text = format!("SELECT COUNT(*) FROM resources res WHERE {where_}");
            sql.query().fetch_one(self.reader()).await?.try_get(0)?
        };
        Ok(Page {
            total_results: u64::try_from(total).unwrap_or(0),
            resources,
            grouped,
        })
    }
}

impl Tx {
    /// One resource, locked until the end of the transaction on PostgreSQL
    /// (`FOR UPDATE`); on SQLite the single writer connection already serialises
    /// transactions.
    pub async fn get_resource_for_update(
        &mut self,
        org_id: i64,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<ResourceRow>> {
        let lock = self.dialect.row_lock();
        let q = format!(
            "SELECT {} FROM resources res WHERE res.org_id = $1 AND res.kind = $2 AND res.id = $3{lock}",
            columns(self.dialect)
        );
        let row = sqlx::query(&q)
            .bind(org_id)
            .bind(kind.name())
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(row_from).transpose()
    }

    /// Stores a new resource. [`StoreError::Conflict`] when the organisation
    /// already has a resource of this kind with the same name (userName or Group
    /// displayName, compared case-insensitively) or one with this id.
    pub async fn insert_resource(&mut self, org_id: i64, row: &ResourceRow) -> Result<()> {
        let hot = Hot::of(row)?;
        let doc = serde_json::to_string(&row.doc)
            .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
        let q = format!(
            "INSERT INTO resources (org_id, id, kind, name_lc, user_name, display_name, \
             external_id, active, doc, password_hash, version, created, last_modified, \
             display_name_lc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {}, $10, $11, $12, $13, $14)",
            self.dialect.json_param("$9")
        );
        sqlx::query(&q)
            .bind(org_id)
            .bind(&row.id)
            .bind(row.kind.name())
            .bind(&hot.name_lc)
            .bind(&hot.user_name)
            .bind(&hot.display_name)
            .bind(&hot.external_id)
            .bind(hot.active)
            .bind(&doc)
            .bind(&row.password_hash)
            .bind(row.version)
            .bind(to_micros(row.created))
            .bind(to_micros(row.last_modified))
            .bind(&hot.display_name_lc)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| map_unique(e, |c| conflict_message(row.kind, c)))?;
        self.write_values(org_id, row, false).await
    }

    /// Replaces a stored resource's document, password hash, version and
    /// lastModified (the caller has bumped the version; `created` is kept).
    /// [`StoreError::NotFound`] if it does not exist, [`StoreError::Conflict`] on
    /// a name clash as for [`Tx::insert_resource`].
    pub async fn update_resource(&mut self, org_id: i64, row: &ResourceRow) -> Result<()> {
        let hot = Hot::of(row)?;
        let doc = serde_json::to_string(&row.doc)
            .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
        let q = format!(
            "UPDATE resources SET name_lc = $1, user_name = $2, display_name = $3, \
             external_id = $4, active = $5, doc = {}, password_hash = $7, version = $8, \
             last_modified = $9, display_name_lc = $13 \
             WHERE org_id = $10 AND kind = $11 AND id = $12",
            self.dialect.json_param("$6")
        );
        let done = sqlx::query(&q)
            .bind(&hot.name_lc)
            .bind(&hot.user_name)
            .bind(&hot.display_name)
            .bind(&hot.external_id)
            .bind(hot.active)
            .bind(&doc)
            .bind(&row.password_hash)
            .bind(row.version)
            .bind(to_micros(row.last_modified))
            .bind(org_id)
            .bind(row.kind.name())
            .bind(&row.id)
            .bind(&hot.display_name_lc)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| map_unique(e, |c| conflict_message(row.kind, c)))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.write_values(org_id, row, true).await
    }

    /// Writes the `attr_values` rows of a resource, first removing the old ones
    /// when `replace`. One statement each, whatever the number of values.
    async fn write_values(&mut self, org_id: i64, row: &ResourceRow, replace: bool) -> Result<()> {
        if row.kind != ResourceKind::User {
            return Ok(());
        }
        if replace {
            sqlx::query("DELETE FROM attr_values WHERE org_id = $1 AND resource_id = $2")
                .bind(org_id)
                .bind(&row.id)
                .execute(&mut *self.tx)
                .await?;
        }
        let values = AttrValue::of(row);
        if values.is_empty() {
            return Ok(());
        }
        let mut q = Sql::new(
            "INSERT INTO attr_values (org_id, resource_id, attr, pos, type_lc, value_lc, \
             is_primary) VALUES ",
        );
        for (i, v) in values.into_iter().enumerate() {
            let params = [
                q.param(Arg::Int(Some(org_id))),
                q.param(Arg::Text(Some(row.id.clone()))),
                q.param(Arg::Text(Some(v.attr.to_owned()))),
                q.param(Arg::Int(Some(v.pos))),
                q.param(Arg::Text(v.type_lc)),
                q.param(Arg::Text(v.value_lc)),
                q.param(Arg::Bool(v.primary)),
            ];
            if i > 0 {
                q.push(", ");
            }
            q.push(&format!("({})", params.join(", ")));
        }
        q.query().execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Recomputes every resource's derived data that SQL cannot compute
    /// (`display_name_lc`, `attr_values`), in this transaction: the backfill of
    /// the migration that introduced them.
    pub(crate) async fn rederive_all_resources(&mut self) -> Result<()> {
        const BATCH: i64 = 1000;
        let d = self.dialect;
        sqlx::query("DELETE FROM attr_values")
            .execute(&mut *self.tx)
            .await?;
        let mut after: (i64, String) = (i64::MIN, String::new());
        loop {
            let q = format!(
                "SELECT res.org_id, {} FROM resources res \
                 WHERE (res.org_id > $1 OR (res.org_id = $1 AND res.id > $2)) \
                 ORDER BY res.org_id, res.id LIMIT $3",
                columns(d)
            );
            let rows = sqlx::query(&q)
                .bind(after.0)
                .bind(&after.1)
                .bind(BATCH)
                .fetch_all(&mut *self.tx)
                .await?;
            for r in &rows {
                let org_id: i64 = r.try_get("org_id")?;
                let row = row_from(r)?;
                let display_lc = string_field(&row.doc, "displayName").map(|s| s.to_lowercase());
                sqlx::query(
                    "UPDATE resources SET display_name_lc = $1 WHERE org_id = $2 AND id = $3",
                )
                .bind(display_lc)
                .bind(org_id)
                .bind(&row.id)
                .execute(&mut *self.tx)
                .await?;
                self.write_values(org_id, &row, false).await?;
                after = (org_id, row.id);
            }
            if (rows.len() as i64) < BATCH {
                return Ok(());
            }
        }
    }

    /// Deletes a resource and every membership it takes part in (as group or as
    /// member). Returns whether it existed.
    pub async fn delete_resource(
        &mut self,
        org_id: i64,
        kind: ResourceKind,
        id: &str,
    ) -> Result<bool> {
        let done = sqlx::query("DELETE FROM resources WHERE org_id = $1 AND kind = $2 AND id = $3")
            .bind(org_id)
            .bind(kind.name())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
