//! The allocation method (docs/FOOTPRINT.md gives every formula with a worked
//! example). Pure: inventory, usage, mapping and period length in, footprint out.
//!
//! Per server, over the period's `H` hours:
//! * utilisation `u` = the node's CPU-seconds / (vcpus · H · 3600), at most 1;
//! * IT energy: idle pool `idle_w · H`, dynamic pool `u · (max_w − idle_w) · H`
//!   (or, with a meter, the metered energy less the idle pool);
//! * facility energy = IT energy · PUE; use emissions = facility energy · intensity;
//! * embodied emissions of the period = embodied · H / (lifetime · 8760).
//!
//! The dynamic pool is shared by CPU-seconds; the idle pool and the embodied
//! emissions by reservations (per component, the larger of request and use,
//! weighted by the component's share of the server in Teads' model). What shared
//! namespaces, unmapped namespaces and unreserved headroom hold is then spread
//! over the organisations in proportion to their direct part, so that the
//! organisations add up to the cluster.
//!
//! Every share is a number computed from usage alone (no range); ranges enter
//! only through the pools, so each bound of a result is the same linear
//! combination of the pools' bounds: ordering and conservation hold bound by bound.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::inventory::{Inventory, ResolvedServer, Role, HOURS_PER_YEAR};
use crate::range::Range;
use crate::usage::{Amounts, Consumer, Usage};

/// Utilisation of a server without any CPU figure: CCF's 50 %, from 10 to 90 %.
pub const UNKNOWN_UTILISATION: Range = Range {
    low: 0.1,
    central: 0.5,
    high: 0.9,
};

/// Which namespaces and buckets belong to which organisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    /// Namespace → organisation slug.
    pub namespaces: BTreeMap<String, String>,
    /// Bucket → organisation slug.
    pub buckets: BTreeMap<String, String>,
    /// Namespaces every organisation shares (ingress, monitoring, Liaison,
    /// kube-system).
    pub shared: BTreeSet<String>,
    /// Organisations to report even without usage (e.g. every organisation of
    /// the store).
    pub orgs: BTreeSet<String>,
}

impl Mapping {
    fn org_of(&self, c: &Consumer) -> Option<&str> {
        match c {
            Consumer::Namespace(n) if self.shared.contains(n) => None,
            Consumer::Namespace(n) => self.namespaces.get(n).map(String::as_str),
            Consumer::Bucket(b) => self.buckets.get(b).map(String::as_str),
        }
    }

    /// Every organisation named by the mapping.
    pub fn all_orgs(&self) -> BTreeSet<String> {
        let mut out = self.orgs.clone();
        out.extend(self.namespaces.values().cloned());
        out.extend(self.buckets.values().cloned());
        out
    }
}

/// Energy and emissions, each a range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Facility energy (IT energy × PUE), kWh.
    pub energy_kwh: Range,
    /// Emissions of that energy, kgCO2e.
    pub use_kgco2e: Range,
    /// Manufacturing amortised over the period, kgCO2e.
    pub embodied_kgco2e: Range,
    /// `use + embodied`, kgCO2e.
    pub total_kgco2e: Range,
}

impl Figures {
    pub const ZERO: Figures = Figures {
        energy_kwh: Range::ZERO,
        use_kgco2e: Range::ZERO,
        embodied_kgco2e: Range::ZERO,
        total_kgco2e: Range::ZERO,
    };

    fn new(energy_kwh: Range, use_kgco2e: Range, embodied_kgco2e: Range) -> Figures {
        Figures {
            energy_kwh,
            use_kgco2e,
            embodied_kgco2e,
            total_kgco2e: use_kgco2e.plus(embodied_kgco2e),
        }
    }

    pub fn plus(self, o: Figures) -> Figures {
        Figures::new(
            self.energy_kwh.plus(o.energy_kwh),
            self.use_kgco2e.plus(o.use_kgco2e),
            self.embodied_kgco2e.plus(o.embodied_kgco2e),
        )
    }

    /// Each figure rounded to `digits` decimals.
    pub fn round(self, digits: i32) -> Figures {
        Figures {
            energy_kwh: self.energy_kwh.round(digits),
            use_kgco2e: self.use_kgco2e.round(digits),
            embodied_kgco2e: self.embodied_kgco2e.round(digits),
            total_kgco2e: self.total_kgco2e.round(digits),
        }
    }

    fn ranges(&self) -> [&Range; 4] {
        [
            &self.energy_kwh,
            &self.use_kgco2e,
            &self.embodied_kgco2e,
            &self.total_kgco2e,
        ]
    }

    /// Whether every figure is ordered.
    pub fn is_ordered(&self) -> bool {
        self.ranges().iter().all(|r| r.is_ordered())
    }
}

/// One server's pools, for the report and for checking by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFootprint {
    pub name: String,
    pub site: String,
    pub role: Role,
    /// `measured`, `rated` or `modelled`; `metered` when a meter gave the energy.
    pub power_origin: String,
    /// `given` or `modelled`.
    pub embodied_origin: String,
    pub idle_w: Range,
    pub max_w: Range,
    pub utilisation: Range,
    pub pue: Range,
    /// gCO2e/kWh.
    pub carbon_intensity: Range,
    pub lifetime_years: Range,
    /// The server's whole embodied emissions, kgCO2e.
    pub embodied_total_kgco2e: Range,
    /// IT energy of the idle and dynamic pools, kWh (before PUE).
    pub idle_it_kwh: Range,
    pub dynamic_it_kwh: Range,
    /// The server's figures for the period (facility energy, emissions).
    pub figures: Figures,
    /// Fraction of the server reserved, before the headroom (0 to 1).
    pub reserved_fraction: f64,
    /// Weights of CPU, memory and storage in the reservation key.
    pub weights: [f64; 3],
}

/// One consumer's direct figures (summed over servers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerFootprint {
    #[serde(flatten)]
    pub consumer: Consumer,
    pub figures: Figures,
    pub cpu_seconds: f64,
    pub network_gb: f64,
}

/// One organisation's share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgFootprint {
    pub org: String,
    /// `direct + shared`.
    pub figures: Figures,
    /// What its own namespaces and buckets used and reserved.
    pub direct: Figures,
    /// Its part of what shared namespaces, unmapped namespaces and unreserved
    /// headroom hold.
    pub shared: Figures,
    /// Its share of each shared pool (energy, use, embodied), 0 to 1.
    pub shared_keys: [f64; 3],
    pub consumers: Vec<ConsumerFootprint>,
    pub network_gb: f64,
}

/// The whole result for one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footprint {
    pub hours: f64,
    pub cluster: Figures,
    /// Held by shared and unmapped namespaces and by headroom, before spreading.
    pub shared_pool: Figures,
    pub orgs: Vec<OrgFootprint>,
    /// What no organisation could take (only when there is none).
    pub unattributed: Figures,
    pub servers: Vec<ServerFootprint>,
    pub warnings: Vec<String>,
}

/// Why a computation could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocateError {
    #[error("the inventory: {0}")]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error("the period must last a positive, finite number of hours")]
    Hours,
}

/// Usage of one consumer on one server, after spreading.
#[derive(Default, Clone, Copy)]
struct Local {
    cpu_seconds: f64,
    cpu_core_hours: f64,
    memory_gb_hours: f64,
    storage_gb_hours: f64,
    network_gb: f64,
}

/// Computes the footprint of the period.
pub fn allocate(
    inventory: &Inventory,
    usage: &Usage,
    mapping: &Mapping,
    hours: f64,
) -> Result<Footprint, AllocateError> {
    if !(hours.is_finite() && hours > 0.0) {
        return Err(AllocateError::Hours);
    }
    inventory.validate()?;
    let servers = inventory.resolve()?;
    let mut warnings = Vec::new();
    let by_name: BTreeMap<&str, usize> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let nodes: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].role == Role::Node)
        .collect();
    let stores: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].role == Role::Storage)
        .collect();

    // Consumers get a dense index; per server, a list of (consumer, local usage).
    let mut consumers: Vec<Consumer> = Vec::new();
    let mut index: BTreeMap<&Consumer, usize> = BTreeMap::new();
    let mut local: Vec<BTreeMap<usize, Local>> = vec![BTreeMap::new(); servers.len()];
    let mut network = Vec::new();
    let mut unknown_nodes = BTreeSet::new();
    for ((consumer, node), a) in &usage.rows {
        let ci = *index.entry(consumer).or_insert_with(|| {
            consumers.push(consumer.clone());
            network.push(0.0);
            consumers.len() - 1
        });
        network[ci] += a.network_gb;
        let is_bucket = matches!(consumer, Consumer::Bucket(_));
        let target = node.as_deref().and_then(|n| {
            let found = by_name.get(n).copied();
            if found.is_none() {
                unknown_nodes.insert(n.to_owned());
            }
            found.filter(|&i| !is_bucket || servers[i].role == Role::Storage)
        });
        match target {
            Some(i) => put(&mut local[i], ci, a, 1.0, 1.0, 1.0),
            None => {
                let pool = if is_bucket { &stores } else { &nodes };
                let pool = if pool.is_empty() { &nodes } else { pool };
                spread(&servers, pool, &mut local, ci, a);
            }
        }
    }
    for n in unknown_nodes {
        warnings.push(format!(
            "node {n} is not in the inventory: its usage is spread over the servers of its kind"
        ));
    }
    for n in usage
        .node_cpu_seconds
        .keys()
        .chain(usage.node_energy_kwh.keys())
    {
        if !by_name.contains_key(n.as_str()) {
            warnings.push(format!(
                "node {n} is not in the inventory: its totals are ignored"
            ));
        }
    }
    let mut unmapped = BTreeSet::new();
    for c in &consumers {
        let shared = matches!(c, Consumer::Namespace(n) if mapping.shared.contains(n));
        if !shared && mapping.org_of(c).is_none() {
            unmapped.insert(c.to_string());
        }
    }
    if !unmapped.is_empty() {
        let list: Vec<String> = unmapped.into_iter().collect();
        warnings.push(format!(
            "{}{} namespaces or buckets belong to no organisation and are shared: {}",
            crate::report::OPERATOR_ONLY,
            list.len(),
            list.join(", ")
        ));
    }

    let nc = consumers.len();
    let mut direct: Vec<Figures> = vec![Figures::ZERO; nc];
    let mut cpu_total = vec![0.0; nc];
    let mut cluster = Figures::ZERO;
    let mut headroom = Figures::ZERO;
    let mut server_out = Vec::with_capacity(servers.len());
    for (si, s) in servers.iter().enumerate() {
        let site = &inventory.sites[s.site];
        let pue = site.pue.range();
        let intensity = site.carbon_intensity.range();
        let here = &local[si];
        let cpu_ns: f64 = here.values().map(|l| l.cpu_seconds).sum();
        let capacity_cpu_seconds = s.vcpus * hours * 3600.0;
        let node_cpu = usage.node_cpu_seconds.get(&s.name).copied();
        let utilisation = match node_cpu {
            Some(n) => Range::point((n.max(cpu_ns) / capacity_cpu_seconds).min(1.0)),
            None if here.values().any(|l| l.cpu_seconds > 0.0)
                || (!here.is_empty() && s.role == Role::Node) =>
            {
                Range::point((cpu_ns / capacity_cpu_seconds).min(1.0))
            }
            None => UNKNOWN_UTILISATION,
        };
        let idle_pool = s.idle_w.scale(hours / 1000.0);
        let modelled_dyn = s
            .max_w
            .minus(s.idle_w)
            .times(utilisation)
            .scale(hours / 1000.0);
        let metered = usage.node_energy_kwh.get(&s.name).copied();
        let (idle_it, dyn_it, power_origin) = match metered {
            Some(m) => {
                let modelled_high = idle_pool.high + modelled_dyn.high;
                let energy = Range {
                    low: m,
                    central: m,
                    high: m.max(modelled_high),
                };
                let idle = Range {
                    low: idle_pool.low.min(energy.low),
                    central: idle_pool.central.min(energy.central),
                    high: idle_pool.high.min(energy.high),
                };
                (idle, energy.minus(idle), "metered".to_owned())
            }
            None => (idle_pool, modelled_dyn, s.power_origin.to_owned()),
        };
        let idle_fac = idle_it.times(pue);
        let dyn_fac = dyn_it.times(pue);
        let to_kg = |kwh: Range| kwh.times(intensity).scale(1.0 / 1000.0);
        let idle_use = to_kg(idle_fac);
        let dyn_use = to_kg(dyn_fac);
        let embodied = s
            .embodied_kgco2e
            .over(s.lifetime_years)
            .scale(hours / HOURS_PER_YEAR);
        let figures = Figures::new(idle_fac.plus(dyn_fac), idle_use.plus(dyn_use), embodied);
        cluster = cluster.plus(figures);

        // Reservation key.
        let weights = weights(s);
        let sto_cap_gbh = s.disk_gb * hours;
        let replication = |c: usize| match consumers[c] {
            Consumer::Bucket(_) => inventory.storage.bucket_replication,
            Consumer::Namespace(_) => inventory.storage.volume_replication,
        };
        let reserved = |c: usize, l: &Local| {
            [
                l.cpu_core_hours.max(l.cpu_seconds / 3600.0),
                l.memory_gb_hours,
                l.storage_gb_hours * replication(c),
            ]
        };
        let mut sums = [0.0f64; 3];
        for (&c, l) in here {
            let r = reserved(c, l);
            for k in 0..3 {
                sums[k] += r[k];
            }
        }
        let caps = [s.vcpus * hours, s.ram_gb * hours, sto_cap_gbh];
        let denom: Vec<f64> = (0..3).map(|k| caps[k].max(sums[k])).collect();
        let fraction_of = |r: [f64; 3]| -> f64 {
            (0..3)
                .filter(|&k| denom[k] > 0.0)
                .map(|k| weights[k] * r[k] / denom[k])
                .sum()
        };
        let mut reserved_fraction = 0.0;
        for (&c, l) in here {
            let rho = fraction_of(reserved(c, l));
            reserved_fraction += rho;
            let k_dyn = if cpu_ns > 0.0 {
                l.cpu_seconds / cpu_ns
            } else {
                rho
            };
            direct[c] = direct[c].plus(Figures::new(
                dyn_fac.scale(k_dyn).plus(idle_fac.scale(rho)),
                dyn_use.scale(k_dyn).plus(idle_use.scale(rho)),
                embodied.scale(rho),
            ));
            cpu_total[c] += l.cpu_seconds;
        }
        let free = (1.0 - reserved_fraction).max(0.0);
        let dyn_free = if cpu_ns > 0.0 { 0.0 } else { free };
        headroom = headroom.plus(Figures::new(
            dyn_fac.scale(dyn_free).plus(idle_fac.scale(free)),
            dyn_use.scale(dyn_free).plus(idle_use.scale(free)),
            embodied.scale(free),
        ));
        server_out.push(ServerFootprint {
            name: s.name.clone(),
            site: site.name.clone(),
            role: s.role,
            power_origin,
            embodied_origin: s.embodied_origin.to_owned(),
            idle_w: s.idle_w,
            max_w: s.max_w,
            utilisation,
            pue,
            carbon_intensity: intensity,
            lifetime_years: s.lifetime_years,
            embodied_total_kgco2e: s.embodied_kgco2e,
            idle_it_kwh: idle_it,
            dynamic_it_kwh: dyn_it,
            figures,
            reserved_fraction,
            weights,
        });
    }

    // Organisations: direct parts, then the shared pool spread pro rata.
    let mut orgs: BTreeMap<String, OrgFootprint> = mapping
        .all_orgs()
        .into_iter()
        .map(|o| {
            (
                o.clone(),
                OrgFootprint {
                    org: o,
                    figures: Figures::ZERO,
                    direct: Figures::ZERO,
                    shared: Figures::ZERO,
                    shared_keys: [0.0; 3],
                    consumers: Vec::new(),
                    network_gb: 0.0,
                },
            )
        })
        .collect();
    let mut shared_pool = headroom;
    for (c, consumer) in consumers.iter().enumerate() {
        match mapping.org_of(consumer).and_then(|o| orgs.get_mut(o)) {
            Some(org) => {
                org.direct = org.direct.plus(direct[c]);
                org.network_gb += network[c];
                org.consumers.push(ConsumerFootprint {
                    consumer: consumer.clone(),
                    figures: direct[c],
                    cpu_seconds: cpu_total[c],
                    network_gb: network[c],
                });
            }
            None => shared_pool = shared_pool.plus(direct[c]),
        }
    }
    let keys = shared_keys(&orgs);
    let mut unattributed = Figures::ZERO;
    if orgs.is_empty() {
        unattributed = shared_pool;
    }
    for (org, key) in orgs.values_mut().zip(keys) {
        org.shared_keys = key;
        org.shared = Figures::new(
            shared_pool.energy_kwh.scale(key[0]),
            shared_pool.use_kgco2e.scale(key[1]),
            shared_pool.embodied_kgco2e.scale(key[2]),
        );
        org.figures = org.direct.plus(org.shared);
    }
    Ok(Footprint {
        hours,
        cluster,
        shared_pool,
        orgs: orgs.into_values().collect(),
        unattributed,
        servers: server_out,
        warnings,
    })
}

/// Each organisation's share of the shared energy, use and embodied pools: its
/// direct central value over the sum of all direct central values (equal shares
/// when no organisation has any).
fn shared_keys(orgs: &BTreeMap<String, OrgFootprint>) -> Vec<[f64; 3]> {
    let get = |f: &Figures, k: usize| match k {
        0 => f.energy_kwh.central,
        1 => f.use_kgco2e.central,
        _ => f.embodied_kgco2e.central,
    };
    let n = orgs.len() as f64;
    let totals: Vec<f64> = (0..3)
        .map(|k| orgs.values().map(|o| get(&o.direct, k)).sum())
        .collect();
    orgs.values()
        .map(|o| {
            let mut key = [0.0; 3];
            for (k, slot) in key.iter_mut().enumerate() {
                *slot = if totals[k] > 0.0 {
                    get(&o.direct, k) / totals[k]
                } else {
                    1.0 / n
                };
            }
            key
        })
        .collect()
}

/// Weights of CPU, memory and storage in a server's reservation key: the
/// components' shares of its embodied emissions (Teads' model). A storage
/// server is all storage.
pub fn weights(s: &ResolvedServer) -> [f64; 3] {
    if s.role == Role::Storage {
        return [0.0, 0.0, 1.0];
    }
    let c = s.components;
    let t = c.total();
    [c.cpu / t, c.memory / t, c.storage / t]
}

fn put(map: &mut BTreeMap<usize, Local>, c: usize, a: &Amounts, fc: f64, fm: f64, fs: f64) {
    let l = map.entry(c).or_default();
    l.cpu_seconds += a.cpu_seconds * fc;
    l.cpu_core_hours += a.cpu_request_core_hours * fc;
    l.memory_gb_hours += a.memory_gb_hours * fm;
    l.storage_gb_hours += a.storage_gb_hours * fs;
    l.network_gb += a.network_gb * fc;
}

/// Spreads a row not tied to a server over `pool`, each component in
/// proportion to the servers' capacity for it.
fn spread(
    servers: &[ResolvedServer],
    pool: &[usize],
    local: &mut [BTreeMap<usize, Local>],
    c: usize,
    a: &Amounts,
) {
    if pool.is_empty() {
        return;
    }
    let n = pool.len() as f64;
    let share = |f: &dyn Fn(&ResolvedServer) -> f64, i: usize| {
        let total: f64 = pool.iter().map(|&j| f(&servers[j])).sum();
        if total > 0.0 {
            f(&servers[i]) / total
        } else {
            1.0 / n
        }
    };
    for &i in pool {
        let fc = share(&|s| s.vcpus, i);
        let fm = share(&|s| s.ram_gb, i);
        let fs = share(&|s| s.disk_gb, i);
        put(&mut local[i], c, a, fc, fm, fs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(extra: &str) -> Inventory {
        Inventory::from_toml(&format!(
            r#"
[[site]]
name = "fr"
pue = {{ low = 1.0, central = 1.0, high = 1.0, source = "test", year = 2024 }}
carbon_intensity = {{ low = 98, central = 98, high = 98, source = "boaviztapi 2.5.0 electrical_mix.csv, FRA", year = 2019 }}
{extra}"#
        ))
        .unwrap()
    }

    const SERVER_300W: &str = r#"
[[server]]
name = "s1"
cpu_model = "test"
sockets = 1
vcpus = 10
ram_gb = 16
idle_w = { low = 300, central = 300, high = 300 }
max_w = { low = 300, central = 300, high = 300 }
lifetime_years = 4
embodied_kgco2e = 0
"#;

    #[test]
    fn a_300_w_server_for_730_hours_at_98_g_per_kwh() {
        let inv = inventory(SERVER_300W);
        let mut usage = Usage::default();
        usage
            .add(
                Consumer::Namespace("a".into()),
                Some("s1".into()),
                Amounts {
                    cpu_seconds: 3600.0,
                    cpu_request_core_hours: 7300.0,
                    memory_gb_hours: 16.0 * 730.0,
                    ..Default::default()
                },
            )
            .unwrap();
        let mapping = Mapping {
            namespaces: BTreeMap::from([("a".into(), "org-a".into())]),
            ..Default::default()
        };
        let f = allocate(&inv, &usage, &mapping, 730.0).unwrap();
        // 300 W × 730 h = 219 kWh; × 98 g/kWh = 21.462 kg.
        assert!((f.cluster.energy_kwh.central - 219.0).abs() < 1e-9);
        assert!((f.cluster.use_kgco2e.central - 21.462).abs() < 1e-9);
        assert_eq!(f.cluster.use_kgco2e.round(2).central, 21.46);
        assert_eq!(f.cluster.embodied_kgco2e, Range::ZERO);
        // One namespace reserving the whole server takes it all, directly.
        let org = &f.orgs[0];
        assert!((org.direct.use_kgco2e.central - 21.462).abs() < 1e-9);
        assert!(org.shared.use_kgco2e.central.abs() < 1e-9);
    }

    #[test]
    fn embodied_is_amortised_over_the_lifetime() {
        let inv = inventory(&SERVER_300W.replace("embodied_kgco2e = 0", "embodied_kgco2e = 1752"));
        let f = allocate(&inv, &Usage::default(), &Mapping::default(), 730.0).unwrap();
        // 1752 kg × 730 h / (4 × 8760 h) = 36.5 kg.
        assert!((f.cluster.embodied_kgco2e.central - 36.5).abs() < 1e-9);
        // No organisation: everything is unattributed.
        assert_eq!(f.unattributed, f.cluster);
    }
}
