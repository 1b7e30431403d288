//! An organisation's carbon footprint for a month: computed by the
//! `footprint` crate from the inventory and the month's usage, each
//! organisation's result kept once the month is over, and its months before
//! read back for the chart. Shared by `liaison footprint report` and the
//! admin API.

use footprint::chart::MonthPoint;
use footprint::report::{OrgReport, Report, METHOD};
use footprint::settings::{compute, FootprintError, FootprintSettings};
use footprint::Month;
use std::path::Path;
use store::{Org, Store};
use time::OffsetDateTime;

/// Months before the reported one drawn in the chart.
pub const HISTORY_MONTHS: i64 = 23;

/// A month's report with each organisation's months before it.
#[derive(Debug, Clone)]
pub struct Computed {
    pub report: Report,
    /// Per organisation of the report, its kept months before this one.
    pub history: Vec<(String, Vec<MonthPoint>)>,
}

impl Computed {
    pub fn history_of(&self, org: &str) -> &[MonthPoint] {
        self.history
            .iter()
            .find(|(o, _)| o == org)
            .map(|(_, h)| h.as_slice())
            .unwrap_or(&[])
    }
}

/// Why a footprint could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum FootprintFailure {
    #[error(transparent)]
    Footprint(#[from] FootprintError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Computes `month` (usage from `csv` when given), keeps each organisation's
/// result when the month is over, and reads the months before it.
pub async fn compute_month(
    store: &Store,
    settings: &FootprintSettings,
    month: Month,
    csv: Option<&Path>,
    progress: &mut (dyn FnMut(usize, usize, &str) + Send),
) -> Result<Computed, FootprintFailure> {
    let orgs = store.list_orgs().await?;
    let slugs: Vec<String> = orgs.iter().map(|o| o.slug.clone()).collect();
    let mut computed = compute(settings, month, csv, &slugs, progress).await?;
    let over = month.end() <= OffsetDateTime::now_utc().date();
    let mut history = Vec::new();
    for o in &computed.report.organisations {
        let Some(org) = orgs.iter().find(|x| x.slug == o.org) else {
            computed.report.warnings.push(format!(
                "{}organisation {} of the mapping is not in the database: its results are not kept",
                footprint::report::OPERATOR_ONLY,
                o.org
            ));
            continue;
        };
        if over {
            let json = serde_json::to_string(o).expect("a report serialises");
            store
                .save_footprint(org.id, &month.label(), METHOD, &json)
                .await?;
        }
        history.push((o.org.clone(), kept_months(store, org, month).await?));
    }
    Ok(Computed {
        report: computed.report,
        history,
    })
}

/// The organisation's kept months before `month` (results that do not read
/// back as a report, e.g. from another version, are left out).
pub async fn kept_months(
    store: &Store,
    org: &Org,
    month: Month,
) -> Result<Vec<MonthPoint>, store::StoreError> {
    let rows = store
        .footprint_history(org.id, &month.label(), HISTORY_MONTHS)
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str::<OrgReport>(&r.result).ok())
        .map(|o| Report::month_point(&o))
        .collect())
}
