//! The worked example of docs/FOOTPRINT.md: one server, two organisations, a
//! shared ingress, a 30-day month. Tests check every figure the documentation
//! derives from it, and the binary's tests use it as their fixture.

use std::collections::{BTreeMap, BTreeSet};

use crate::allocate::Mapping;

/// The inventory.
pub const INVENTORY: &str = r#"[[site]]
name = "lyon"
pue = { low = 1.4, central = 1.5, high = 1.6, source = "hoster's meter, 2025", year = 2025 }
carbon_intensity = { low = 31, central = 56, high = 98, source = "Electricity Maps 2025 / codecarbon 2023 / boaviztapi 2019", year = 2025 }

[[server]]
name = "node-1"
cpu_model = "AMD EPYC 7302P"
sockets = 1
vcpus = 32
ram_gb = 128
disks = [{ kind = "ssd", capacity_gb = 1000, count = 2 }]
idle_w = { low = 90, central = 100, high = 110 }
max_w = { low = 280, central = 300, high = 320 }
lifetime_years = { low = 4, central = 5, high = 6 }
embodied_kgco2e = { low = 1200, central = 1500, high = 2100 }
"#;

/// The usage of the month (720 hours).
pub const USAGE_CSV: &str =
    "namespace,node,cpu_seconds,cpu_request_core_hours,memory_gb_hours,storage_gb_hours,network_gb
,node-1,20736000,0,0,0,0
nc-ecole,node-1,5184000,1440,14400,0,12
chat-syndicat,node-1,2592000,2880,28800,0,3
ingress,node-1,2592000,720,7200,0,0
nc-ecole,,0,0,0,144000,0
";

/// `nc-ecole` is `ecole`'s, `chat-syndicat` is `syndicat`'s, `ingress` is shared.
pub fn mapping() -> Mapping {
    Mapping {
        namespaces: BTreeMap::from([
            ("nc-ecole".into(), "ecole".into()),
            ("chat-syndicat".into(), "syndicat".into()),
        ]),
        shared: BTreeSet::from(["ingress".into()]),
        ..Default::default()
    }
}

/// The same usage with every namespace's figures times `k` (the node's own
/// CPU-seconds too), for other months of the example.
pub fn usage_csv_scaled(k: f64) -> String {
    let mut out = String::new();
    for (i, line) in USAGE_CSV.lines().enumerate() {
        if i == 0 {
            out.push_str(line);
        } else {
            let cells: Vec<String> = line
                .split(',')
                .enumerate()
                .map(|(j, c)| match (j, c.parse::<f64>()) {
                    (2.., Ok(v)) => (v * k).to_string(),
                    _ => c.to_owned(),
                })
                .collect();
            out.push_str(&cells.join(","));
        }
        out.push('\n');
    }
    out
}
