//! Organisations (tenants) and API tokens.

use crate::conn::{from_micros, map_unique, to_micros};
use crate::{Org, Result, Store, TokenRecord, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;
use time::OffsetDateTime;

fn org_from_row(row: &AnyRow) -> Result<Org> {
    Ok(Org {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created: from_micros(row.try_get("created")?)?,
    })
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        secret_hash: row.try_get("secret_hash")?,
        created: from_micros(row.try_get("created")?)?,
    })
}

impl Store {
    /// The organisation with this slug.
    pub async fn org_by_slug(&self, slug: &str) -> Result<Option<Org>> {
        let row = sqlx::query("SELECT id, slug, name, created FROM orgs WHERE slug = $1")
            .bind(slug)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(org_from_row).transpose()
    }

    /// The organisation with this id.
    pub async fn org_by_id(&self, id: i64) -> Result<Option<Org>> {
        let row = sqlx::query("SELECT id, slug, name, created FROM orgs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(org_from_row).transpose()
    }

    /// Every organisation, by slug.
    pub async fn list_orgs(&self) -> Result<Vec<Org>> {
        let rows = sqlx::query("SELECT id, slug, name, created FROM orgs ORDER BY slug")
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(org_from_row).collect()
    }

    /// The token with this public id, whatever its organisation.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT id, org_id, secret_hash, created FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The tokens of one organisation (`Some`) or the operator tokens (`None`),
    /// oldest first.
    pub async fn list_tokens(&self, org_id: Option<i64>) -> Result<Vec<TokenRecord>> {
        let rows = match org_id {
            Some(org) => {
                sqlx::query(
                    "SELECT id, org_id, secret_hash, created FROM tokens \
                 WHERE org_id = $1 ORDER BY created, id",
                )
                .bind(org)
                .fetch_all(self.reader())
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT id, org_id, secret_hash, created FROM tokens \
                 WHERE org_id IS NULL ORDER BY created, id",
                )
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(token_from_row).collect()
    }
}

impl Tx {
    /// Creates an organisation. [`crate::StoreError::Conflict`] if the slug is taken.
    pub async fn create_org(&mut self, slug: &str, name: &str) -> Result<Org> {
        let created = OffsetDateTime::now_utc();
        let micros = to_micros(created);
        let row =
            sqlx::query("INSERT INTO orgs (slug, name, created) VALUES ($1, $2, $3) RETURNING id")
                .bind(slug)
                .bind(name)
                .bind(micros)
                .fetch_one(&mut *self.tx)
                .await
                .map_err(|e| map_unique(e, |_| format!("organisation {slug} already exists")))?;
        Ok(Org {
            id: row.try_get(0)?,
            slug: slug.to_owned(),
            name: name.to_owned(),
            created: crate::conn::from_micros(micros)?,
        })
    }

    /// Deletes an organisation and, by cascade, its tokens, resources and
    /// memberships. Returns whether it existed.
    pub async fn delete_org(&mut self, slug: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM orgs WHERE slug = $1")
            .bind(slug)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a token. [`crate::StoreError::Conflict`] if the id exists.
    pub async fn insert_token(&mut self, t: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (id, org_id, secret_hash, created) VALUES ($1, $2, $3, $4)",
        )
        .bind(&t.id)
        .bind(t.org_id)
        .bind(&t.secret_hash)
        .bind(to_micros(t.created))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| map_unique(e, |_| format!("token {} already exists", t.id)))?;
        Ok(())
    }

    /// Deletes the token `id` if it belongs to `org_id` (`None`: if it is an
    /// operator token). Returns whether a token was deleted.
    pub async fn revoke_token(&mut self, org_id: Option<i64>, id: &str) -> Result<bool> {
        let done = match org_id {
            Some(org) => {
                sqlx::query("DELETE FROM tokens WHERE id = $1 AND org_id = $2")
                    .bind(id)
                    .bind(org)
                    .execute(&mut *self.tx)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM tokens WHERE id = $1 AND org_id IS NULL")
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }
}
