//! The `[footprint]` settings and the one function that turns them into a
//! period's report: read the inventory, read the usage (a CSV file, or
//! Prometheus), build the mapping, allocate. The CLI and the admin API both
//! call [`compute`].
//!
//! ```toml
//! [footprint]
//! inventory = "/etc/liaison/inventory.toml"
//! usage = "prometheus"                 # or "csv": <usage_dir>/<YYYY-MM>.csv
//! org_label = "liaison.coop/org"       # namespaces' label naming their organisation
//! shared_namespaces = ["kube-system", "ingress-nginx", "monitoring", "liaison"]
//! [footprint.prometheus]
//! url = "http://prometheus.monitoring:9090"
//! [footprint.namespaces]               # static table, wins over the label
//! "nextcloud-ecole" = "ecole-jaures"
//! [footprint.buckets]
//! "ecole-jaures-files" = "ecole-jaures"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::allocate::{allocate, AllocateError, Footprint, Mapping};
use crate::inventory::{Inventory, InventoryError, MAX_INVENTORY_BYTES};
use crate::period::Month;
use crate::prometheus::{fetch, valid_org, PromError, PrometheusSettings};
use crate::report::Report;
use crate::usage::{valid_bucket, valid_namespace, Usage, UsageError};

/// Where a period's usage comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    #[default]
    Prometheus,
    Csv,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FootprintSettings {
    /// The inventory file (docs/FOOTPRINT.md).
    pub inventory: Option<PathBuf>,
    pub usage: UsageSource,
    /// With `usage = "csv"`: a directory of `<YYYY-MM>.csv` files.
    pub usage_dir: Option<PathBuf>,
    pub prometheus: PrometheusSettings,
    /// The Kubernetes label of a namespace naming its organisation (read from
    /// `kube_namespace_labels`); none: the static table only.
    pub org_label: Option<String>,
    /// Namespaces every organisation shares.
    pub shared_namespaces: BTreeSet<String>,
    /// Namespace → organisation (wins over the label).
    pub namespaces: BTreeMap<String, String>,
    /// Bucket → organisation.
    pub buckets: BTreeMap<String, String>,
}

impl Default for FootprintSettings {
    fn default() -> Self {
        FootprintSettings {
            inventory: None,
            usage: UsageSource::Prometheus,
            usage_dir: None,
            prometheus: PrometheusSettings::default(),
            org_label: None,
            shared_namespaces: ["kube-system", "ingress-nginx", "monitoring", "liaison"]
                .into_iter()
                .map(String::from)
                .collect(),
            namespaces: BTreeMap::new(),
            buckets: BTreeMap::new(),
        }
    }
}

/// Why a report could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum FootprintError {
    #[error("footprint settings: {0}")]
    Settings(String),
    #[error("{path}: {error}")]
    Read { path: String, error: String },
    #[error("inventory {path}: {error}")]
    Inventory { path: String, error: InventoryError },
    #[error("usage {path}: {error}")]
    Usage { path: String, error: UsageError },
    #[error(transparent)]
    Prometheus(#[from] PromError),
    #[error(transparent)]
    Allocate(#[from] AllocateError),
    #[error("no usage for {0}: the file {1} does not exist")]
    NoUsage(String, String),
}

impl FootprintSettings {
    /// Checks names and bounds.
    pub fn validate(&self) -> Result<(), FootprintError> {
        let bad = |m: String| Err(FootprintError::Settings(m));
        for (ns, org) in &self.namespaces {
            if !valid_namespace(ns) || !valid_org(org) {
                return bad(format!(
                    "namespaces: {ns:?} = {org:?}: a namespace name and an organisation slug"
                ));
            }
        }
        for (b, org) in &self.buckets {
            if !valid_bucket(b) || !valid_org(org) {
                return bad(format!(
                    "buckets: {b:?} = {org:?}: a bucket name and an organisation slug"
                ));
            }
        }
        for ns in &self.shared_namespaces {
            if !valid_namespace(ns) {
                return bad(format!("shared_namespaces: {ns:?} is not a namespace name"));
            }
            if self.namespaces.contains_key(ns) {
                return bad(format!("{ns} is both shared and an organisation's"));
            }
        }
        if let Some(l) = &self.org_label {
            if l.is_empty()
                || l.len() > 317
                || !l
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
            {
                return bad(format!("org_label {l:?} is not a Kubernetes label name"));
            }
        }
        if self.usage == UsageSource::Prometheus {
            self.prometheus.validate()?;
        }
        Ok(())
    }

    /// The mapping from the static tables, with `labels` (namespace →
    /// organisation read from Prometheus) under them and `orgs` reported even
    /// without usage.
    pub fn mapping(&self, labels: &BTreeMap<String, String>, orgs: &[String]) -> Mapping {
        let mut namespaces = labels.clone();
        namespaces.extend(self.namespaces.clone());
        for ns in &self.shared_namespaces {
            namespaces.remove(ns);
        }
        Mapping {
            namespaces,
            buckets: self.buckets.clone(),
            shared: self.shared_namespaces.clone(),
            orgs: orgs.iter().cloned().collect(),
        }
    }

    /// Reads and validates the inventory file.
    pub fn read_inventory(&self) -> Result<Inventory, FootprintError> {
        let path = self.inventory.as_deref().ok_or_else(|| {
            FootprintError::Settings("no inventory file configured (footprint.inventory)".into())
        })?;
        let text = read_bounded(path, MAX_INVENTORY_BYTES)?;
        Inventory::from_toml(&text).map_err(|error| FootprintError::Inventory {
            path: path.display().to_string(),
            error,
        })
    }
}

fn read_bounded(path: &Path, max: usize) -> Result<String, FootprintError> {
    use std::io::Read as _;
    let err = |e: String| FootprintError::Read {
        path: path.display().to_string(),
        error: e,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    file.take(max as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    if text.len() > max {
        return Err(err(format!("larger than {max} bytes")));
    }
    Ok(text)
}

/// Reads a usage CSV file.
pub fn read_usage_csv(path: &Path) -> Result<Usage, FootprintError> {
    let file = std::fs::File::open(path).map_err(|e| FootprintError::Read {
        path: path.display().to_string(),
        error: e.to_string(),
    })?;
    Usage::from_csv(std::io::BufReader::new(file)).map_err(|error| FootprintError::Usage {
        path: path.display().to_string(),
        error,
    })
}

/// A computed period.
#[derive(Debug, Clone)]
pub struct Computed {
    pub report: Report,
    pub footprint: Footprint,
}

/// Computes `month`'s report: usage from `csv` when given, else from the
/// configured source. `orgs`: organisations to report even without usage.
/// `progress` follows the Prometheus queries.
pub async fn compute(
    settings: &FootprintSettings,
    month: Month,
    csv: Option<&Path>,
    orgs: &[String],
    progress: &mut (dyn FnMut(usize, usize, &str) + Send),
) -> Result<Computed, FootprintError> {
    settings.validate()?;
    let inventory = settings.read_inventory()?;
    let (usage, labels, warnings, source) = match (csv, settings.usage) {
        (Some(path), _) => (read_usage_csv(path)?, BTreeMap::new(), Vec::new(), "csv"),
        (None, UsageSource::Csv) => {
            let dir = settings.usage_dir.as_deref().ok_or_else(|| {
                FootprintError::Settings("usage = \"csv\" needs usage_dir".into())
            })?;
            let path = dir.join(format!("{}.csv", month.label()));
            if !path.exists() {
                return Err(FootprintError::NoUsage(
                    month.label(),
                    path.display().to_string(),
                ));
            }
            (read_usage_csv(&path)?, BTreeMap::new(), Vec::new(), "csv")
        }
        (None, UsageSource::Prometheus) => {
            let f = fetch(
                &settings.prometheus,
                month,
                settings.org_label.as_deref(),
                progress,
            )
            .await?;
            (f.usage, f.org_labels, f.warnings, "prometheus")
        }
    };
    let mapping = settings.mapping(&labels, orgs);
    let mut footprint = allocate(&inventory, &usage, &mapping, month.hours())?;
    footprint.warnings.extend(warnings);
    let report = Report::new(month, &footprint, &inventory, source);
    Ok(Computed { report, footprint })
}
