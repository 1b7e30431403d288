//! What the web console keeps and reads: one-time login links, sessions, the
//! audit log, and the read models of its pages (the organisations' health,
//! a page of users by name).
//!
//! Links and sessions are looked up by the SHA-256 of their secret (the
//! callers hash; the store never sees a secret). A console grant is an
//! operator's (`org_id` `None`) or an organisation admin's.

use crate::conn::{from_micros, to_micros};
use crate::{Org, Result, Store, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;
use time::OffsetDateTime;

/// Who a link or a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleGrant {
    /// Every organisation and the operators' pages.
    Operator,
    /// One organisation (its id).
    OrgAdmin(i64),
}

impl ConsoleGrant {
    fn role(self) -> &'static str {
        match self {
            ConsoleGrant::Operator => "operator",
            ConsoleGrant::OrgAdmin(_) => "org_admin",
        }
    }

    fn org_id(self) -> Option<i64> {
        match self {
            ConsoleGrant::Operator => None,
            ConsoleGrant::OrgAdmin(id) => Some(id),
        }
    }

    fn from_row(row: &AnyRow) -> Result<ConsoleGrant> {
        let role: String = row.try_get("role")?;
        let org: Option<i64> = row.try_get("org_id")?;
        match (role.as_str(), org) {
            ("operator", None) => Ok(ConsoleGrant::Operator),
            ("org_admin", Some(id)) => Ok(ConsoleGrant::OrgAdmin(id)),
            _ => Err(crate::conn::decode_error(format!(
                "console grant: role {role} with organisation {org:?}"
            ))),
        }
    }
}

/// A stored console session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub grant: ConsoleGrant,
    /// Who signed in (`link:<label>`), as the audit log names them.
    pub actor: String,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
}

/// A redeemed login link: its grant and public label.
#[derive(Debug, Clone, PartialEq)]
pub struct RedeemedLink {
    pub grant: ConsoleGrant,
    pub label: String,
}

/// One entry of the console's audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    /// `operator` or `org_admin`.
    pub role: String,
    pub org_slug: Option<String>,
    pub action: String,
    /// The id of the resource the action concerned.
    pub subject: Option<String>,
    pub detail: Option<String>,
}

/// An entry to write in the audit log.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub grant: ConsoleGrant,
    pub org_slug: Option<&'a str>,
    pub action: &'a str,
    pub subject: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// How one organisation's provisioning stands.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgHealth {
    pub org: Org,
    pub users: i64,
    pub apps: i64,
    /// Deliveries waiting (not parked).
    pub pending: i64,
    /// Deliveries parked as poison.
    pub failed: i64,
    /// Links recorded as a collision.
    pub collisions: i64,
    /// When the oldest waiting delivery was enqueued.
    pub oldest_pending: Option<OffsetDateTime>,
}

/// A user as the console lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserEntry {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    /// The lower-cased userName: the key of the list's order and paging.
    pub name_lc: String,
}

impl Tx {
    /// Stores a one-time login link, and forgets the expired ones.
    pub async fn insert_console_link(
        &mut self,
        secret_hash: &str,
        label: &str,
        grant: ConsoleGrant,
        expires: OffsetDateTime,
    ) -> Result<()> {
        let now = to_micros(OffsetDateTime::now_utc());
        sqlx::query("DELETE FROM console_links WHERE expires <= $1")
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_links (secret_hash, label, role, org_id, created, expires) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(secret_hash)
        .bind(label)
        .bind(grant.role())
        .bind(grant.org_id())
        .bind(now)
        .bind(to_micros(expires))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes a login link once: deletes it and returns its grant, or `None`
    /// when no unexpired link has that hash (unknown, used or expired).
    pub async fn redeem_console_link(
        &mut self,
        secret_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<RedeemedLink>> {
        let row = sqlx::query(
            "DELETE FROM console_links WHERE secret_hash = $1 \
             RETURNING label, role, org_id, expires",
        )
        .bind(secret_hash)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires: i64 = row.try_get("expires")?;
        if expires <= to_micros(now) {
            return Ok(None);
        }
        Ok(Some(RedeemedLink {
            grant: ConsoleGrant::from_row(&row)?,
            label: row.try_get("label")?,
        }))
    }

    /// Stores a session, and forgets the expired ones.
    pub async fn insert_console_session(
        &mut self,
        id_hash: &str,
        session: &SessionRecord,
    ) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE expires <= $1")
            .bind(to_micros(OffsetDateTime::now_utc()))
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, role, org_id, actor, created, expires) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(session.grant.role())
        .bind(session.grant.org_id())
        .bind(&session.actor)
        .bind(to_micros(session.created))
        .bind(to_micros(session.expires))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Deletes a session; returns whether it existed.
    pub async fn delete_console_session(&mut self, id_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Appends an entry to the audit log.
    pub async fn insert_audit(&mut self, e: &NewAudit<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_audit (at, actor, role, org_slug, action, subject, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(to_micros(OffsetDateTime::now_utc()))
        .bind(e.actor)
        .bind(e.grant.role())
        .bind(e.org_slug)
        .bind(e.action)
        .bind(e.subject)
        .bind(e.detail)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Makes the parked deliveries touching one resource of an organisation
    /// (as the resource, or as the member of a membership) due again, in
    /// every app; returns how many.
    pub async fn retry_poisoned_of(&mut self, org_id: i64, resource_id: &str) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt = $1 \
             WHERE state = 'poison' AND org_id = $2 AND (resource_id = $3 OR member_id = $3)",
        )
        .bind(to_micros(OffsetDateTime::now_utc()))
        .bind(org_id)
        .bind(resource_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        Ok(n)
    }
}

impl Store {
    /// The unexpired session with that hash.
    pub async fn console_session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT role, org_id, actor, created, expires FROM console_sessions \
             WHERE id_hash = $1 AND expires > $2",
        )
        .bind(id_hash)
        .bind(to_micros(now))
        .fetch_optional(self.reader())
        .await?;
        row.map(|row| {
            Ok(SessionRecord {
                grant: ConsoleGrant::from_row(&row)?,
                actor: row.try_get("actor")?,
                created: from_micros(row.try_get("created")?)?,
                expires: from_micros(row.try_get("expires")?)?,
            })
        })
        .transpose()
    }

    /// At most `limit` audit entries, newest first, older than entry `before`
    /// when given (keyset paging on the id).
    pub async fn audit_page(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, role, org_slug, action, subject, detail FROM console_audit \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.try_get("id")?,
                    at: from_micros(row.try_get("at")?)?,
                    actor: row.try_get("actor")?,
                    role: row.try_get("role")?,
                    org_slug: row.try_get("org_slug")?,
                    action: row.try_get("action")?,
                    subject: row.try_get("subject")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Every organisation, by slug, with its users, apps and the state of its
    /// deliveries: one grouped query per figure.
    pub async fn org_health(&self) -> Result<Vec<OrgHealth>> {
        let mut out: Vec<OrgHealth> = self
            .list_orgs()
            .await?
            .into_iter()
            .map(|org| OrgHealth {
                org,
                users: 0,
                apps: 0,
                pending: 0,
                failed: 0,
                collisions: 0,
                oldest_pending: None,
            })
            .collect();
        let position = |out: &[OrgHealth], id: i64| out.iter().position(|h| h.org.id == id);
        let counts = |sql: &'static str| sqlx::query(sql).fetch_all(self.reader());
        for row in counts(
            "SELECT org_id, COUNT(*) AS n FROM resources WHERE kind = 'User' GROUP BY org_id",
        )
        .await?
        {
            if let Some(i) = position(&out, row.try_get("org_id")?) {
                out[i].users = row.try_get("n")?;
            }
        }
        for row in counts("SELECT org_id, COUNT(*) AS n FROM apps GROUP BY org_id").await? {
            if let Some(i) = position(&out, row.try_get("org_id")?) {
                out[i].apps = row.try_get("n")?;
            }
        }
        for row in counts(
            "SELECT a.org_id, COUNT(*) AS n FROM app_links l JOIN apps a ON a.id = l.app_id \
             WHERE l.status = 'collision' GROUP BY a.org_id",
        )
        .await?
        {
            if let Some(i) = position(&out, row.try_get("org_id")?) {
                out[i].collisions = row.try_get("n")?;
            }
        }
        for row in counts(
            "SELECT org_id, \
             SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending, \
             SUM(CASE WHEN state = 'poison' THEN 1 ELSE 0 END) AS failed, \
             MIN(CASE WHEN state = 'pending' THEN enqueued END) AS oldest \
             FROM outbox GROUP BY org_id",
        )
        .await?
        {
            if let Some(i) = position(&out, row.try_get("org_id")?) {
                out[i].pending = row.try_get::<Option<i64>, _>("pending")?.unwrap_or(0);
                out[i].failed = row.try_get::<Option<i64>, _>("failed")?.unwrap_or(0);
                let oldest: Option<i64> = row.try_get("oldest")?;
                out[i].oldest_pending = oldest.map(from_micros).transpose()?;
            }
        }
        Ok(out)
    }

    /// At most `limit` users of an organisation whose lower-cased userName
    /// starts with `prefix` (already lower-cased) and comes after `after`, in
    /// that order: a range of the `(org_id, kind, name_lc)` unique index,
    /// whatever the organisation's size.
    pub async fn user_page(
        &self,
        org_id: i64,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserEntry>> {
        // The prefix's range: [prefix, prefix with its last character
        // incremented). An empty prefix has no upper bound.
        let upper = prefix_upper(prefix);
        let lower = match after {
            Some(a) if a >= prefix => a,
            _ => prefix,
        };
        let strict = after.is_some_and(|a| a >= prefix);
        let op = if strict { ">" } else { ">=" };
        let sql = match upper {
            Some(_) => format!(
                "SELECT id, user_name, display_name, name_lc FROM resources \
                 WHERE org_id = $1 AND kind = 'User' AND name_lc {op} $2 AND name_lc < $3 \
                 ORDER BY name_lc LIMIT $4"
            ),
            None => format!(
                "SELECT id, user_name, display_name, name_lc FROM resources \
                 WHERE org_id = $1 AND kind = 'User' AND name_lc {op} $2 \
                 ORDER BY name_lc LIMIT $3"
            ),
        };
        let mut q = sqlx::query(&sql).bind(org_id).bind(lower);
        if let Some(u) = &upper {
            q = q.bind(u.as_str());
        }
        let rows = q.bind(limit).fetch_all(self.reader()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let entry = UserEntry {
                id: row.try_get("id")?,
                user_name: row
                    .try_get::<Option<String>, _>("user_name")?
                    .unwrap_or_default(),
                display_name: row.try_get("display_name")?,
                name_lc: row.try_get("name_lc")?,
            };
            // The range is a superset under a collation that is not by code
            // point: keep only true prefixes.
            if entry.name_lc.starts_with(prefix) {
                out.push(entry);
            }
        }
        Ok(out)
    }
}

/// The smallest string above every string starting with `prefix`: its last
/// character incremented (`None` for an empty prefix or one that cannot be).
fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        // Skip the surrogate range, which holds no `char`.
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_upper;

    #[test]
    fn prefix_upper_bounds() {
        assert_eq!(prefix_upper(""), None);
        assert_eq!(prefix_upper("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }
}
