//! Store support for reconciliation: forgetting an app id the app no longer
//! has, and a cluster-wide lock so that one process at a time reconciles.
//!
//! On PostgreSQL the lock is a session-level advisory lock
//! (`pg_try_advisory_lock`) held on one dedicated connection, which is closed
//! (never returned to the pool) when the guard goes: the server releases the
//! lock with the session even if the explicit unlock never ran. On SQLite there
//! is a single writer anyway and the lock always succeeds.

use crate::{Dialect, Result, Store};
use sqlx::pool::PoolConnection;
use sqlx::Any;

/// A held advisory lock; released by [`AdvisoryLock::release`] or on drop.
#[derive(Debug)]
pub struct AdvisoryLock {
    key: i64,
    /// PostgreSQL: the session holding the lock. `None` on SQLite.
    conn: Option<PoolConnection<Any>>,
}

impl AdvisoryLock {
    /// The key the lock was taken with.
    pub fn key(&self) -> i64 {
        self.key
    }

    /// Unlocks and closes the dedicated connection.
    pub async fn release(mut self) -> Result<()> {
        if let Some(mut conn) = self.conn.take() {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *conn)
                .await?;
            // close_on_drop was set at acquisition: dropping closes the session.
        }
        Ok(())
    }
}

impl Store {
    /// Tries to take the advisory lock `key` without waiting: `None` when another
    /// session holds it. Always succeeds on SQLite.
    pub async fn try_advisory_lock(&self, key: i64) -> Result<Option<AdvisoryLock>> {
        if self.dialect() == Dialect::Sqlite {
            return Ok(Some(AdvisoryLock { key, conn: None }));
        }
        let mut conn = self.reader().acquire().await?;
        // The lock lives as long as the session: never hand this session back
        // to the pool, where another task could inherit the lock.
        conn.close_on_drop();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        Ok(taken.then_some(AdvisoryLock {
            key,
            conn: Some(conn),
        }))
    }

    /// Forgets the app id (and the delivered state) recorded for a resource in
    /// an app, when the app no longer has that id: the next delivery creates or
    /// finds the account again. Returns whether a link was changed.
    pub async fn clear_app_ref(&self, app_id: i64, resource_id: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE app_links SET app_ref = NULL, delivered = NULL \
             WHERE app_id = $1 AND resource_id = $2",
        )
        .bind(app_id)
        .bind(resource_id)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use crate::testing::stores_under_test;

    #[tokio::test]
    async fn one_holder_at_a_time_on_postgres() {
        for (engine, store) in stores_under_test().await {
            let first = store.try_advisory_lock(4242).await.unwrap();
            assert!(first.is_some(), "{engine}");
            let second = store.try_advisory_lock(4242).await.unwrap();
            match engine {
                "postgres" => assert!(second.is_none(), "{engine}: lock taken twice"),
                _ => assert!(second.is_some(), "{engine}"),
            }
            first.unwrap().release().await.unwrap();
            let again = store.try_advisory_lock(4242).await.unwrap();
            assert!(again.is_some(), "{engine}: released lock not free");
            // Dropped without release: the closed session frees it.
            drop(again);
            drop(second);
            let mut freed = None;
            for _ in 0..50 {
                freed = store.try_advisory_lock(4242).await.unwrap();
                if freed.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(freed.is_some(), "{engine}: dropped lock not freed");
        }
    }
}
