//! Group memberships: one row per (group, member), indexed both ways.
//!
//! Long id lists are processed in chunks of [`CHUNK`] ids per statement, far
//! below both engines' parameter limits.

use crate::resources::kind_from_str;
use crate::sql::{Arg, Sql};
use crate::{GroupRef, Member, Result, Store, StoreError, Tx};
use scim::ScimError;
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// Ids per statement in batched membership queries.
const CHUNK: usize = 2000;

/// Removes duplicate ids, keeping the first occurrence's position.
fn dedup<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// Maps a foreign-key violation (the group does not exist) to `NotFound`.
fn map_fk(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.kind() == sqlx::error::ErrorKind::ForeignKeyViolation {
            return StoreError::NotFound;
        }
    }
    StoreError::Db(e)
}

impl Store {
    /// The members of each of `group_ids` (every requested id is a key, with an
    /// empty list if it has no members), ordered by member id, with each member's
    /// current displayName (or userName for a User without displayName).
    pub async fn members(
        &self,
        org_id: i64,
        group_ids: &[&str],
    ) -> Result<HashMap<String, Vec<Member>>> {
        let mut out: HashMap<String, Vec<Member>> = group_ids
            .iter()
            .map(|id| ((*id).to_owned(), Vec::new()))
            .collect();
        for chunk in dedup(group_ids.iter().copied()).chunks(CHUNK) {
            let mut q = Sql::default();
            let org = q.param(Arg::Int(Some(org_id)));
            q.push(&format!(
                "SELECT m.group_id, m.member_id, m.member_kind, \
                 COALESCE(r.display_name, r.user_name) AS display \
                 FROM members m JOIN resources r ON r.org_id = m.org_id AND r.id = m.member_id \
                 WHERE m.org_id = {org} AND m.group_id IN ("
            ));
            q.push_list(chunk.iter().copied());
            q.push(") ORDER BY m.group_id, m.member_id");
            for row in q.query().fetch_all(self.reader()).await? {
                let group: String = row.try_get(0)?;
                let member = Member {
                    value: row.try_get(1)?,
                    kind: kind_from_str(&row.try_get::<String, _>(2)?)?,
                    display: row.try_get(3)?,
                };
                out.entry(group).or_default().push(member);
            }
        }
        Ok(out)
    }

    /// The groups each of `user_ids` belongs to: directly, and indirectly through
    /// nested groups (a group reached both ways is `"direct"`), ordered by group
    /// id. Users without groups have no key. Membership cycles are harmless.
    pub async fn groups_of(
        &self,
        org_id: i64,
        user_ids: &[&str],
    ) -> Result<HashMap<String, Vec<GroupRef>>> {
        let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
        for chunk in dedup(user_ids.iter().copied()).chunks(CHUNK) {
            let mut q = Sql::default();
            let org = q.param(Arg::Int(Some(org_id)));
            q.push(&format!(
                "WITH RECURSIVE g(user_id, group_id, direct) AS ( \
                 SELECT m.member_id, m.group_id, 1 FROM members m \
                 WHERE m.org_id = {org} AND m.member_id IN ("
            ));
            q.push_list(chunk.iter().copied());
            // CROSS JOIN makes SQLite keep `g` (a few rows) as the outer loop;
            // without statistics it would otherwise scan the organisation's
            // memberships and resources. PostgreSQL plans it freely.
            q.push(&format!(
                ") UNION \
                 SELECT g.user_id, m.group_id, 0 FROM g CROSS JOIN members m \
                 WHERE m.org_id = {org} AND m.member_id = g.group_id) \
                 SELECT g.user_id, g.group_id, CAST(MAX(g.direct) AS BIGINT) AS direct, \
                 r.display_name FROM g CROSS JOIN resources r \
                 WHERE r.org_id = {org} AND r.id = g.group_id \
                 GROUP BY g.user_id, g.group_id, r.display_name \
                 ORDER BY g.user_id, g.group_id"
            ));
            for row in q.query().fetch_all(self.reader()).await? {
                let user: String = row.try_get(0)?;
                let direct: i64 = row.try_get(2)?;
                out.entry(user).or_default().push(GroupRef {
                    value: row.try_get(1)?,
                    display: row.try_get(3)?,
                    membership: if direct == 1 { "direct" } else { "indirect" },
                });
            }
        }
        Ok(out)
    }
}

impl Tx {
    /// The ids of a group's members, ordered.
    pub async fn member_ids(&mut self, org_id: i64, group_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT member_id FROM members WHERE org_id = $1 AND group_id = $2 ORDER BY member_id",
        )
        .bind(org_id)
        .bind(group_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// A group's members as this transaction sees them, with display values, as
    /// [`Store::members`].
    pub async fn members_of(&mut self, org_id: i64, group_id: &str) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.member_id, m.member_kind, COALESCE(r.display_name, r.user_name) \
             FROM members m JOIN resources r ON r.org_id = m.org_id AND r.id = m.member_id \
             WHERE m.org_id = $1 AND m.group_id = $2 ORDER BY m.member_id",
        )
        .bind(org_id)
        .bind(group_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    value: row.try_get(0)?,
                    kind: kind_from_str(&row.try_get::<String, _>(1)?)?,
                    display: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Adds members to a group; members already in it are left alone. Each member
    /// must be a resource of the same organisation ([`StoreError::UnknownMember`]
    /// otherwise, and nothing of this call is kept once the transaction rolls
    /// back); its kind is read from the stored resource, `Member::kind` and
    /// `display` are ignored. A group cannot contain itself (`invalidValue`).
    /// [`StoreError::NotFound`] if the group does not exist.
    pub async fn add_members(
        &mut self,
        org_id: i64,
        group_id: &str,
        members: &[Member],
    ) -> Result<()> {
        if members.iter().any(|m| m.value == group_id) {
            return Err(StoreError::Scim(ScimError::invalid_value(
                "a group cannot be a member of itself",
            )));
        }
        let ids = dedup(members.iter().map(|m| m.value.as_str()));
        for chunk in ids.chunks(CHUNK) {
            let mut check = Sql::default();
            let org = check.param(Arg::Int(Some(org_id)));
            check.push(&format!(
                "SELECT id FROM resources WHERE org_id = {org} AND id IN ("
            ));
            check.push_list(chunk.iter().copied());
            check.push(")");
            let found: HashSet<String> = check
                .query()
                .fetch_all(&mut *self.tx)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            if let Some(missing) = chunk.iter().find(|id| !found.contains(**id)) {
                return Err(StoreError::UnknownMember((*missing).to_owned()));
            }

            let mut insert = Sql::default();
            let org = insert.param(Arg::Int(Some(org_id)));
            let group = insert.param(Arg::Text(Some(group_id.to_owned())));
            insert.push(&format!(
                "INSERT INTO members (org_id, group_id, member_id, member_kind) \
                 SELECT {org}, {group}, r.id, r.kind FROM resources r \
                 WHERE r.org_id = {org} AND r.id IN ("
            ));
            insert.push_list(chunk.iter().copied());
            insert.push(") ON CONFLICT DO NOTHING");
            insert
                .query()
                .execute(&mut *self.tx)
                .await
                .map_err(map_fk)?;
        }
        Ok(())
    }

    /// Removes these members from a group (ids that are not members are ignored).
    pub async fn remove_members(
        &mut self,
        org_id: i64,
        group_id: &str,
        member_ids: &[String],
    ) -> Result<()> {
        for chunk in dedup(member_ids.iter().map(String::as_str)).chunks(CHUNK) {
            let mut q = Sql::default();
            let org = q.param(Arg::Int(Some(org_id)));
            let group = q.param(Arg::Text(Some(group_id.to_owned())));
            q.push(&format!(
                "DELETE FROM members WHERE org_id = {org} AND group_id = {group} AND member_id IN ("
            ));
            q.push_list(chunk.iter().copied());
            q.push(")");
            q.query().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Removes every member of a group.
    pub async fn clear_members(&mut self, org_id: i64, group_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM members WHERE org_id = $1 AND group_id = $2")
            .bind(org_id)
            .bind(group_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
