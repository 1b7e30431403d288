//! The inventory: the hoster's servers and sites, read from TOML and validated,
//! and what is modelled when a figure is missing (power from the CPU, embodied
//! emissions from the components), each with its range.
//!
//! ```toml
//! [storage]
//! volume_replication = 3      # copies of a persistent volume's bytes
//! bucket_replication = 1.5    # raw bytes per object byte (copies or erasure coding)
//!
//! [[site]]
//! name = "lyon"
//! pue = { low = 1.4, central = 1.58, high = 1.8, source = "Uptime Institute 2023", year = 2023 }
//! carbon_intensity = { low = 31, central = 56, high = 98, source = "…", year = 2024 }
//!
//! [[server]]
//! name = "k1-node-1"
//! site = "lyon"
//! cpu_model = "AMD EPYC 7302P"
//! sockets = 1
//! vcpus = 32
//! ram_gb = 128
//! disks = [{ kind = "ssd", capacity_gb = 960, count = 2 }]
//! idle_w = 95                 # optional: else modelled from the CPU
//! max_w = 310
//! power_source = "measured"   # or "rated"
//! lifetime_years = 5          # optional: default 4 (3 to 6)
//! embodied_kgco2e = 1450      # optional: else modelled from the components
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::range::{Range, RangeInput};

/// Hours in a year of the amortisation (365 days, as the Boavizta API counts).
pub const HOURS_PER_YEAR: f64 = 8760.0;

/// Bounds of what an inventory may hold.
pub const MAX_SERVERS: usize = 10_000;
pub const MAX_SITES: usize = 100;
pub const MAX_DISK_LINES: usize = 64;
/// Largest inventory file read, in bytes.
pub const MAX_INVENTORY_BYTES: usize = 4 << 20;

/// Relative spreads (below, above the central value) given to figures that
/// are not known exactly.
pub mod spread {
    /// Power measured with a meter (a wattmeter's accuracy and day-to-day drift).
    pub const MEASURED_POWER: (f64, f64) = (0.05, 0.05);
    /// Power from a data sheet (SPECpower or the vendor's calculator).
    pub const RATED_POWER: (f64, f64) = (0.15, 0.15);
    /// Power modelled from the CPU family, memory and disks (CCF coefficients):
    /// those are per-thread cloud figures without fans, power-supply losses or
    /// board; the high doubles them, which covers the Boavizta API's estimate
    /// of the same server (docs/FOOTPRINT.md, "Against the Boavizta API").
    pub const MODELLED_POWER: (f64, f64) = (0.4, 1.0);
    /// Embodied emissions modelled from the components (Teads' model through
    /// CCF); the low halves them, which covers the Boavizta API's estimate.
    pub const MODELLED_EMBODIED: (f64, f64) = (0.5, 1.0);
}

/// Lifetime when none is given: 4 years, from 3 to 6.
pub const DEFAULT_LIFETIME_YEARS: Range = Range {
    low: 3.0,
    central: 4.0,
    high: 6.0,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default)]
    pub storage: StorageSettings,
    #[serde(default, rename = "site")]
    pub sites: Vec<Site>,
    #[serde(default, rename = "server")]
    pub servers: Vec<Server>,
}

/// How many raw bytes each stored byte occupies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Copies of a persistent volume (Longhorn, Ceph RBD: 3; local disks: 1).
    #[serde(default = "one")]
    pub volume_replication: f64,
    /// Raw bytes per object byte in the S3 store (copies, or 1.5 for 4+2
    /// erasure coding).
    #[serde(default = "one")]
    pub bucket_replication: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            volume_replication: 1.0,
            bucket_replication: 1.0,
        }
    }
}

/// A data centre or room: its PUE and its grid's carbon intensity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    /// Power usage effectiveness (facility energy / IT energy).
    pub pue: SourcedRange,
    /// Carbon intensity of the grid's electricity, gCO2e/kWh.
    pub carbon_intensity: SourcedRange,
}

/// A range with where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcedRange {
    pub low: f64,
    pub central: f64,
    pub high: f64,
    pub source: String,
    pub year: u16,
}

impl SourcedRange {
    pub fn range(&self) -> Range {
        Range {
            low: self.low,
            central: self.central,
            high: self.high,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A Kubernetes node: shared by the namespaces' pods.
    #[default]
    Node,
    /// A server of the S3 store: shared by the buckets' bytes.
    Storage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKind {
    Ssd,
    Hdd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub kind: DiskKind,
    pub capacity_gb: f64,
    #[serde(default = "one_u32")]
    pub count: u32,
}

fn one_u32() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerSource {
    /// Read from a wattmeter or the server's BMC.
    Measured,
    /// From a data sheet.
    #[default]
    Rated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: String,
    /// The site's name; may be left out when the inventory has one site.
    #[serde(default)]
    pub site: Option<String>,
    #[serde(default)]
    pub role: Role,
    pub cpu_model: String,
    /// Overrides the family read from `cpu_model` (see [`CpuFamily`]).
    #[serde(default)]
    pub cpu_family: Option<CpuFamily>,
    pub sockets: u32,
    /// Hardware threads.
    pub vcpus: u32,
    pub ram_gb: f64,
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub idle_w: Option<RangeInput>,
    #[serde(default)]
    pub max_w: Option<RangeInput>,
    #[serde(default)]
    pub power_source: PowerSource,
    #[serde(default)]
    pub lifetime_years: Option<RangeInput>,
    #[serde(default)]
    pub embodied_kgco2e: Option<RangeInput>,
}

/// CPU families with Cloud Carbon Footprint's per-thread power coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuFamily {
    Haswell,
    Broadwell,
    Skylake,
    CascadeLake,
    IceLake,
    SapphireRapids,
    Epyc1,
    Epyc2,
    Epyc3,
    Epyc4,
    Unknown,
}

impl CpuFamily {
    /// Watts per hardware thread at idle and at full load (CCF,
    /// `packages/aws/src/domain/AwsFootprintEstimationConstants.ts`; EPYC 1st
    /// generation uses CCF's EPYC 2nd generation figures).
    pub fn watts_per_vcpu(self) -> (f64, f64) {
        match self {
            CpuFamily::Haswell => (1.86, 5.60),
            CpuFamily::Broadwell => (0.71, 3.69),
            CpuFamily::Skylake => (0.61, 4.10),
            CpuFamily::CascadeLake => (0.69, 4.06),
            CpuFamily::IceLake => (0.77, 3.76),
            CpuFamily::SapphireRapids => (1.04, 4.16),
            CpuFamily::Epyc1 | CpuFamily::Epyc2 => (0.47, 1.69),
            CpuFamily::Epyc3 => (0.46, 1.96),
            CpuFamily::Epyc4 => (0.74, 2.28),
            CpuFamily::Unknown => (0.74, 3.50),
        }
    }

    /// The family of a CPU model name (`AMD EPYC 7302P`, `Intel Xeon Gold
    /// 6248R`, `Xeon E5-2630 v4`); `Unknown` when it cannot tell.
    pub fn of_model(model: &str) -> CpuFamily {
        let m = model.to_ascii_lowercase();
        let words: Vec<&str> = m
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        let number_after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .copied()
        };
        if m.contains("epyc") {
            // EPYC 7xx1 Naples, 7xx2 Rome, 7xx3 Milan, 9xx4 Genoa (and 8xx4, 4xx4).
            if let Some(num) = number_after("epyc") {
                let digits: Vec<u32> = num.chars().filter_map(|c| c.to_digit(10)).collect();
                if digits.len() >= 4 {
                    return match digits[3] {
                        1 => CpuFamily::Epyc1,
                        2 => CpuFamily::Epyc2,
                        3 => CpuFamily::Epyc3,
                        4 => CpuFamily::Epyc4,
                        _ => CpuFamily::Unknown,
                    };
                }
            }
            return CpuFamily::Unknown;
        }
        if m.contains("xeon") {
            if m.contains(" v4") {
                return CpuFamily::Broadwell;
            }
            if m.contains(" v3") {
                return CpuFamily::Haswell;
            }
            // Scalable: Bronze/Silver/Gold/Platinum NxNN: second digit is the generation.
            for tier in ["bronze", "silver", "gold", "platinum"] {
                if let Some(num) = number_after(tier) {
                    let digits: Vec<u32> = num.chars().filter_map(|c| c.to_digit(10)).collect();
                    if digits.len() >= 4 {
                        return match digits[1] {
                            1 => CpuFamily::Skylake,
                            2 => CpuFamily::CascadeLake,
                            3 => CpuFamily::IceLake,
                            4 => CpuFamily::SapphireRapids,
                            _ => CpuFamily::Unknown,
                        };
                    }
                }
            }
        }
        CpuFamily::Unknown
    }
}

/// Memory power, W per GB (CCF: 0.000392 kWh per GB-hour).
pub const MEMORY_W_PER_GB: f64 = 0.392;
/// Disk power, W per TB of capacity (CCF: 1.2 Wh/TB-h for SSD, 0.65 for HDD).
pub const SSD_W_PER_TB: f64 = 1.2;
pub const HDD_W_PER_TB: f64 = 0.65;

/// Teads' server model, as CCF ships it (`ccfcoef/constants.py`): kgCO2e.
pub mod embodied_model {
    /// A server with one CPU, 16 GB of memory and no disk.
    pub const BASE: f64 = 1000.0;
    /// Per GB of memory (533/384).
    pub const PER_GB_RAM: f64 = 533.0 / 384.0;
    /// The memory the base includes.
    pub const BASE_RAM_GB: f64 = 16.0;
    pub const PER_EXTRA_CPU: f64 = 100.0;
    pub const PER_SSD: f64 = 100.0;
    pub const PER_HDD: f64 = 50.0;
}

/// A server's embodied emissions split over its components, kgCO2e (Teads'
/// model): the weights by which its idle power and manufacturing are shared
/// between CPU, memory and storage reservations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Components {
    /// Base server less its memory, plus extra CPUs.
    pub cpu: f64,
    pub memory: f64,
    pub storage: f64,
}

impl Components {
    pub fn total(&self) -> f64 {
        self.cpu + self.memory + self.storage
    }
}

/// Why an inventory was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct InventoryError {
    /// Where: `server k1-node-1`, `site lyon`, `inventory`.
    pub at: String,
    pub problem: String,
}

fn err(at: impl Into<String>, problem: impl Into<String>) -> InventoryError {
    InventoryError {
        at: at.into(),
        problem: problem.into(),
    }
}

/// A server with every figure resolved to a range.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedServer {
    pub name: String,
    pub role: Role,
    /// Index into [`Inventory::sites`].
    pub site: usize,
    pub vcpus: f64,
    pub ram_gb: f64,
    /// Raw disk capacity, GB.
    pub disk_gb: f64,
    pub idle_w: Range,
    pub max_w: Range,
    /// Where the power figures come from: `measured`, `rated`, `modelled`.
    pub power_origin: &'static str,
    pub lifetime_years: Range,
    pub embodied_kgco2e: Range,
    /// `given` or `modelled`.
    pub embodied_origin: &'static str,
    pub components: Components,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn finite_in(v: f64, lo: f64, hi: f64) -> bool {
    v.is_finite() && v >= lo && v <= hi
}

impl Inventory {
    /// Parses and validates an inventory.
    pub fn from_toml(text: &str) -> Result<Inventory, InventoryError> {
        if text.len() > MAX_INVENTORY_BYTES {
            return Err(err(
                "inventory",
                format!("larger than {MAX_INVENTORY_BYTES} bytes"),
            ));
        }
        let inv: Inventory = toml::from_str(text).map_err(|e| err("inventory", e.to_string()))?;
        inv.validate()?;
        Ok(inv)
    }

    /// Checks every bound and reference; [`Inventory::resolve`] relies on it.
    pub fn validate(&self) -> Result<(), InventoryError> {
        let storage = &self.storage;
        for (what, v) in [
            ("volume_replication", storage.volume_replication),
            ("bucket_replication", storage.bucket_replication),
        ] {
            if !finite_in(v, 1.0, 10.0) {
                return Err(err("storage", format!("{what} must be between 1 and 10")));
            }
        }
        if self.sites.is_empty() {
            return Err(err("inventory", "no [[site]]"));
        }
        if self.sites.len() > MAX_SITES {
            return Err(err("inventory", format!("more than {MAX_SITES} sites")));
        }
        if self.servers.is_empty() {
            return Err(err("inventory", "no [[server]]"));
        }
        if self.servers.len() > MAX_SERVERS {
            return Err(err("inventory", format!("more than {MAX_SERVERS} servers")));
        }
        let mut names = BTreeSet::new();
        for site in &self.sites {
            let at = format!("site {}", site.name);
            if site.name.is_empty()
                || site.name.len() > 64
                || site.name.chars().any(char::is_control)
            {
                return Err(err(
                    "site",
                    "a name of 1 to 64 printable characters is required",
                ));
            }
            if !names.insert(site.name.as_str()) {
                return Err(err(at, "defined twice"));
            }
            check_sourced(&at, "pue", &site.pue, 1.0, 5.0)?;
            check_sourced(&at, "carbon_intensity", &site.carbon_intensity, 0.0, 3000.0)?;
        }
        let mut names = BTreeSet::new();
        for s in &self.servers {
            let at = format!("server {}", s.name);
            if !valid_name(&s.name) {
                return Err(err(
                    "server",
                    format!("{:?}: a name is 1 to 253 lower-case letters, digits, '-' and '.' (the Kubernetes node name)", s.name),
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(err(at, "defined twice"));
            }
            self.site_index(s)?;
            if s.cpu_model.len() > 200 || s.cpu_model.chars().any(char::is_control) {
                return Err(err(at, "cpu_model: at most 200 printable characters"));
            }
            if !(1..=16).contains(&s.sockets) {
                return Err(err(at, "sockets must be between 1 and 16"));
            }
            if !(1..=8192).contains(&s.vcpus) {
                return Err(err(at, "vcpus must be between 1 and 8192"));
            }
            if !finite_in(s.ram_gb, 0.5, 1.0e5) {
                return Err(err(at, "ram_gb must be between 0.5 and 100000"));
            }
            if s.disks.len() > MAX_DISK_LINES {
                return Err(err(at, format!("more than {MAX_DISK_LINES} disk lines")));
            }
            for d in &s.disks {
                if !finite_in(d.capacity_gb, 1.0, 1.0e6) || !(1..=1024).contains(&d.count) {
                    return Err(err(
                        at,
                        "a disk has capacity_gb between 1 and 1000000 and count between 1 and 1024",
                    ));
                }
            }
            if s.role == Role::Storage && s.disks.is_empty() {
                return Err(err(at, "a storage server needs disks"));
            }
            let idle = opt_range(&at, "idle_w", s.idle_w, 0.0, 1.0e5)?;
            let max = opt_range(&at, "max_w", s.max_w, 0.0, 1.0e5)?;
            match (idle, max) {
                (Some(i), Some(m)) => {
                    if i.central > m.central || i.low > m.low || i.high > m.high {
                        return Err(err(at, "idle_w exceeds max_w"));
                    }
                    if m.central <= 0.0 {
                        return Err(err(at, "max_w must be positive"));
                    }
                }
                (None, None) => {}
                _ => return Err(err(at, "give both idle_w and max_w, or neither")),
            }
            if let Some(l) = opt_range(&at, "lifetime_years", s.lifetime_years, 0.5, 30.0)? {
                if l.low <= 0.0 {
                    return Err(err(at, "lifetime_years must be positive"));
                }
            }
            opt_range(&at, "embodied_kgco2e", s.embodied_kgco2e, 0.0, 1.0e6)?;
        }
        Ok(())
    }

    fn site_index(&self, s: &Server) -> Result<usize, InventoryError> {
        match &s.site {
            Some(name) => self
                .sites
                .iter()
                .position(|x| &x.name == name)
                .ok_or_else(|| err(format!("server {}", s.name), format!("no site {name:?}"))),
            None if self.sites.len() == 1 => Ok(0),
            None => Err(err(
                format!("server {}", s.name),
                "site is required when the inventory has several sites",
            )),
        }
    }

    /// Every server with its figures resolved (given, or modelled with their
    /// wider ranges). The inventory must be valid.
    pub fn resolve(&self) -> Result<Vec<ResolvedServer>, InventoryError> {
        self.servers
            .iter()
            .map(|s| self.resolve_server(s))
            .collect()
    }

    fn resolve_server(&self, s: &Server) -> Result<ResolvedServer, InventoryError> {
        let at = format!("server {}", s.name);
        let site = self.site_index(s)?;
        let ssd_gb: f64 = disk_total(s, DiskKind::Ssd, |d| d.capacity_gb * f64::from(d.count));
        let hdd_gb: f64 = disk_total(s, DiskKind::Hdd, |d| d.capacity_gb * f64::from(d.count));
        let (idle_w, max_w, power_origin) = match (s.idle_w, s.max_w) {
            (Some(i), Some(m)) => {
                let (below, above) = match s.power_source {
                    PowerSource::Measured => spread::MEASURED_POWER,
                    PowerSource::Rated => spread::RATED_POWER,
                };
                let widen = |r: RangeInput| match r {
                    RangeInput::Exact(v) => Range::spread(v, below, above),
                    other => other.to_range().unwrap_or(Range::ZERO),
                };
                let origin = match s.power_source {
                    PowerSource::Measured => "measured",
                    PowerSource::Rated => "rated",
                };
                (widen(i), widen(m), origin)
            }
            _ => {
                let family = s
                    .cpu_family
                    .unwrap_or_else(|| CpuFamily::of_model(&s.cpu_model));
                let (per_idle, per_max) = family.watts_per_vcpu();
                let rest = MEMORY_W_PER_GB * s.ram_gb
                    + SSD_W_PER_TB * ssd_gb / 1000.0
                    + HDD_W_PER_TB * hdd_gb / 1000.0;
                let vcpus = f64::from(s.vcpus);
                let (below, above) = spread::MODELLED_POWER;
                (
                    Range::spread(per_idle * vcpus + rest, below, above),
                    Range::spread(per_max * vcpus + rest, below, above),
                    "modelled",
                )
            }
        };
        let lifetime_years = match s.lifetime_years {
            Some(l) => l
                .to_range()
                .map_err(|e| err(&at, format!("lifetime_years: {e}")))?,
            None => DEFAULT_LIFETIME_YEARS,
        };
        let components = components(s);
        let (embodied_kgco2e, embodied_origin) = match s.embodied_kgco2e {
            Some(e) => (
                e.to_range()
                    .map_err(|e| err(&at, format!("embodied_kgco2e: {e}")))?,
                "given",
            ),
            None => {
                let (below, above) = spread::MODELLED_EMBODIED;
                (Range::spread(components.total(), below, above), "modelled")
            }
        };
        Ok(ResolvedServer {
            name: s.name.clone(),
            role: s.role,
            site,
            vcpus: f64::from(s.vcpus),
            ram_gb: s.ram_gb,
            disk_gb: ssd_gb + hdd_gb,
            idle_w,
            max_w,
            power_origin,
            lifetime_years,
            embodied_kgco2e,
            embodied_origin,
            components,
        })
    }
}

fn disk_total(s: &Server, kind: DiskKind, f: impl Fn(&Disk) -> f64) -> f64 {
    s.disks.iter().filter(|d| d.kind == kind).map(f).sum()
}

/// Teads' model per component.
pub fn components(s: &Server) -> Components {
    use embodied_model::*;
    let ssd: f64 = disk_total(s, DiskKind::Ssd, |d| f64::from(d.count));
    let hdd: f64 = disk_total(s, DiskKind::Hdd, |d| f64::from(d.count));
    Components {
        cpu: BASE - BASE_RAM_GB * PER_GB_RAM
            + PER_EXTRA_CPU * f64::from(s.sockets.saturating_sub(1)),
        memory: PER_GB_RAM * s.ram_gb,
        storage: PER_SSD * ssd + PER_HDD * hdd,
    }
}

fn check_sourced(
    at: &str,
    what: &str,
    r: &SourcedRange,
    lo: f64,
    hi: f64,
) -> Result<(), InventoryError> {
    let range =
        Range::new(r.low, r.central, r.high).map_err(|e| err(at, format!("{what}: {e}")))?;
    if !finite_in(range.low, lo, hi) || !finite_in(range.high, lo, hi) {
        return Err(err(at, format!("{what} must be between {lo} and {hi}")));
    }
    if r.source.trim().is_empty() || r.source.len() > 500 {
        return Err(err(
            at,
            format!("{what}: name its source (1 to 500 characters)"),
        ));
    }
    if !(1990..=2100).contains(&r.year) {
        return Err(err(
            at,
            format!("{what}: year must be between 1990 and 2100"),
        ));
    }
    Ok(())
}

fn opt_range(
    at: &str,
    what: &str,
    r: Option<RangeInput>,
    lo: f64,
    hi: f64,
) -> Result<Option<Range>, InventoryError> {
    let Some(r) = r else { return Ok(None) };
    let range = r.to_range().map_err(|e| err(at, format!("{what}: {e}")))?;
    if !finite_in(range.low, lo, hi) || !finite_in(range.high, lo, hi) {
        return Err(err(at, format!("{what} must be between {lo} and {hi}")));
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
[storage]
volume_replication = 3

[[site]]
name = "lyon"
pue = { low = 1.4, central = 1.58, high = 1.8, source = "Uptime Institute", year = 2023 }
carbon_intensity = { low = 31, central = 56, high = 98, source = "Electricity Maps, codecarbon, Boavizta", year = 2024 }

[[server]]
name = "node-1"
cpu_model = "AMD EPYC 7302P"
sockets = 1
vcpus = 32
ram_gb = 128
disks = [{ kind = "ssd", capacity_gb = 960, count = 2 }]
idle_w = 95
max_w = 310
power_source = "measured"
lifetime_years = 5
embodied_kgco2e = { low = 1200, central = 1500, high = 2000 }

[[server]]
name = "node-2"
cpu_model = "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz"
sockets = 2
vcpus = 96
ram_gb = 384
"#;

    #[test]
    fn families() {
        for (model, family) in [
            ("AMD EPYC 7302P 16-Core Processor", CpuFamily::Epyc2),
            ("AMD EPYC 7443", CpuFamily::Epyc3),
            ("AMD EPYC 9354", CpuFamily::Epyc4),
            (
                "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz",
                CpuFamily::CascadeLake,
            ),
            ("Intel Xeon Silver 4114", CpuFamily::Skylake),
            ("Intel Xeon Gold 6338", CpuFamily::IceLake),
            ("Intel Xeon Platinum 8480+", CpuFamily::SapphireRapids),
            ("Intel Xeon E5-2630 v4", CpuFamily::Broadwell),
            ("Intel Xeon E5-2680 v3", CpuFamily::Haswell),
            ("Raspberry", CpuFamily::Unknown),
        ] {
            assert_eq!(CpuFamily::of_model(model), family, "{model}");
        }
    }

    #[test]
    fn example_resolves() {
        let inv = Inventory::from_toml(EXAMPLE).unwrap();
        let servers = inv.resolve().unwrap();
        let n1 = &servers[0];
        assert_eq!(n1.power_origin, "measured");
        assert!((n1.idle_w.low - 90.25).abs() < 1e-9);
        assert_eq!(n1.lifetime_years, Range::point(5.0));
        assert_eq!(n1.embodied_origin, "given");
        let n2 = &servers[1];
        assert_eq!(n2.power_origin, "modelled");
        // Cascade Lake: 96 × 0.69 + 0.392 × 384 = 66.24 + 150.528.
        assert!(
            (n2.idle_w.central - 216.768).abs() < 1e-9,
            "{:?}",
            n2.idle_w
        );
        assert!((n2.max_w.central - (96.0 * 4.06 + 150.528)).abs() < 1e-9);
        assert_eq!(n2.lifetime_years, DEFAULT_LIFETIME_YEARS);
        // 1000 − 16·533/384 + 100 + 384·533/384 = 1100 + 368·533/384.
        let expected = 1100.0 + 368.0 * 533.0 / 384.0;
        assert!((n2.embodied_kgco2e.central - expected).abs() < 1e-9);
        assert_eq!(n2.embodied_origin, "modelled");
        assert!(n2.embodied_kgco2e.width() > 0.0);
    }

    #[test]
    fn refusals() {
        let bad = |from: &str, to: &str| {
            let text = EXAMPLE.replacen(from, to, 1);
            Inventory::from_toml(&text).unwrap_err().to_string()
        };
        assert!(bad("name = \"node-2\"", "name = \"node-1\"").contains("defined twice"));
        assert!(bad("name = \"node-2\"", "name = \"Node 2\"").contains("Kubernetes node name"));
        assert!(bad("max_w = 310", "max_w = 50").contains("idle_w exceeds max_w"));
        assert!(bad("max_w = 310", "").contains("both idle_w and max_w"));
        assert!(bad("vcpus = 32", "vcpus = 0").contains("vcpus"));
        assert!(bad("low = 1.4", "low = 1.9").contains("does not hold"));
        assert!(bad("low = 1.4", "low = 0.4").contains("between 1 and 5"));
        assert!(bad("year = 2023", "year = 20").contains("year"));
        assert!(bad("source = \"Uptime Institute\"", "source = \" \"").contains("source"));
        assert!(bad("lifetime_years = 5", "lifetime_years = 0").contains("lifetime_years"));
        assert!(bad("ram_gb = 128", "ram_gb = nan").contains("ram_gb"));
        assert!(bad("ram_gb = 128", "ram_gb = 128\nbogus = 1").contains("unknown field"));
        assert!(bad("[[site]]", "[[nosite]]").contains("unknown field"));
    }
}
