//! Carbon footprint: each organisation's result of a computed month (the JSON
//! of `footprint::report::OrgReport`, opaque here), kept so that a report can
//! chart the months before it.

use crate::conn::to_micros;
use crate::{Result, Store};
use sqlx::Row;
use time::OffsetDateTime;

/// A kept month of one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FootprintRow {
    /// `YYYY-MM`.
    pub period: String,
    /// The method's version that computed it.
    pub method: String,
    /// When it was computed.
    pub computed: OffsetDateTime,
    /// The organisation's result, JSON.
    pub result: String,
}

impl Store {
    /// Keeps (or replaces) the organisation's result for `period`.
    pub async fn save_footprint(
        &self,
        org_id: i64,
        period: &str,
        method: &str,
        result: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO footprint_results (org_id, period, method, computed, result) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, period) DO UPDATE SET \
             method = excluded.method, computed = excluded.computed, result = excluded.result",
        )
        .bind(org_id)
        .bind(period)
        .bind(method)
        .bind(to_micros(OffsetDateTime::now_utc()))
        .bind(result)
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await
    }

    /// The organisation's kept months before `before` (`YYYY-MM`, excluded),
    /// the latest `limit` of them, oldest first.
    pub async fn footprint_history(
        &self,
        org_id: i64,
        before: &str,
        limit: i64,
    ) -> Result<Vec<FootprintRow>> {
        let rows = sqlx::query(
            "SELECT period, method, computed, result FROM footprint_results \
             WHERE org_id = $1 AND period < $2 ORDER BY period DESC LIMIT $3",
        )
        .bind(org_id)
        .bind(before)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(FootprintRow {
                    period: r.try_get("period")?,
                    method: r.try_get("method")?,
                    computed: crate::conn::from_micros(r.try_get("computed")?)?,
                    result: r.try_get("result")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }
}
