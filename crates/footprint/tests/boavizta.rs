//! The Boavizta API (PyPI `boaviztapi`, run by `scripts/boavizta.sh` under
//! uvicorn on loopback) as a peer: the same server is described to both, for
//! the same 720 hours at the same load in France, and the use and
//! manufacturing figures are compared.
//!
//! * Boavizta's central figures must fall inside Liaison's ranges (the two
//!   methods differ; docs/FOOTPRINT.md explains by how much and why).
//! * Given Boavizta's own average power and its total embodied emissions,
//!   Liaison's formulas must give Boavizta's use and embedded figures (same
//!   energy × intensity, same amortisation over 35,040 hours).
//!
//! Needs `LIAISON_TEST_BOAVIZTA_URL`; skipped with a message without it, unless
//! `LIAISON_REQUIRE_BOAVIZTA=1` (then the test fails).

use std::collections::BTreeMap;
use std::time::Duration;

use footprint::allocate::{allocate, Mapping};
use footprint::inventory::Inventory;
use footprint::usage::{Amounts, Consumer, Usage};
use serde_json::{json, Value};

const REQUIRE_VAR: &str = "LIAISON_REQUIRE_BOAVIZTA";
const HOURS: f64 = 720.0;
const LOAD: f64 = 0.25;

fn peer() -> Option<String> {
    match std::env::var("LIAISON_TEST_BOAVIZTA_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                panic!("{REQUIRE_VAR}=1 but LIAISON_TEST_BOAVIZTA_URL is not set (scripts/boavizta.sh)");
            }
            eprintln!("skipping: no Boavizta API (scripts/boavizta.sh start DIR PORT; {REQUIRE_VAR}=1 fails instead)");
            None
        }
    }
}

/// One server, as both describe it.
struct Server {
    name: &'static str,
    cpu: &'static str,
    threads: u32,
    ram_dimms: u32,
    dimm_gb: u32,
    ssd: u32,
    ssd_gb: u32,
}

const SERVERS: &[Server] = &[
    Server {
        name: "epyc",
        cpu: "AMD EPYC 7302P",
        threads: 32,
        ram_dimms: 8,
        dimm_gb: 16,
        ssd: 2,
        ssd_gb: 1920,
    },
    Server {
        name: "xeon",
        cpu: "Intel Xeon Gold 6248",
        threads: 40,
        ram_dimms: 12,
        dimm_gb: 32,
        ssd: 4,
        ssd_gb: 960,
    },
];

struct Figures {
    value: f64,
    min: f64,
    max: f64,
}

fn figures(v: &Value) -> Figures {
    let n = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"));
    Figures {
        value: n("value"),
        min: n("min"),
        max: n("max"),
    }
}

async fn boavizta(url: &str, s: &Server) -> (Figures, Figures, f64) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let body = json!({
        "model": {"type": "rack"},
        "configuration": {
            "cpu": {"units": 1, "name": s.cpu},
            "ram": [{"units": s.ram_dimms, "capacity": s.dimm_gb}],
            "disk": [{"units": s.ssd, "type": "ssd", "capacity": s.ssd_gb}],
        },
        "usage": {"usage_location": "FRA", "time_workload": LOAD * 100.0},
    });
    let resp = client
        .post(format!(
            "{url}/v1/server/?verbose=true&duration={HOURS}&criteria=gwp"
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let v: Value = resp.json().await.unwrap();
    let gwp = &v["impacts"]["gwp"];
    let power = v["verbose"]["avg_power"]["value"]
        .as_f64()
        .or_else(|| v["verbose"]["USAGE"]["avg_power"]["value"].as_f64())
        .unwrap_or_else(|| panic!("no avg_power in {}", v["verbose"]));
    (figures(&gwp["use"]), figures(&gwp["embedded"]), power)
}

fn inventory(s: &Server, power: Option<f64>, embodied: Option<f64>) -> Inventory {
    let mut text = format!(
        r#"[[site]]
name = "fr"
pue = {{ low = 1.0, central = 1.0, high = 1.0, source = "none: Boavizta's server route has no PUE", year = 2024 }}
carbon_intensity = {{ low = 98, central = 98, high = 98, source = "boaviztapi 2.5.0 electrical_mix.csv, FRA", year = 2019 }}
[[server]]
name = "{}"
cpu_model = "{}"
sockets = 1
vcpus = {}
ram_gb = {}
disks = [{{ kind = "ssd", capacity_gb = {}, count = {} }}]
lifetime_years = 4
"#,
        s.name,
        s.cpu,
        s.threads,
        s.ram_dimms * s.dimm_gb,
        s.ssd_gb,
        s.ssd
    );
    if let Some(w) = power {
        text.push_str(&format!(
            "idle_w = {{ low = {w}, central = {w}, high = {w} }}\nmax_w = {{ low = {w}, central = {w}, high = {w} }}\n"
        ));
    }
    if let Some(e) = embodied {
        text.push_str(&format!("embodied_kgco2e = {e}\n"));
    }
    Inventory::from_toml(&text).unwrap()
}

fn liaison(s: &Server, inv: &Inventory) -> footprint::Figures {
    let mut usage = Usage::default();
    usage
        .set_node_cpu(s.name, LOAD * f64::from(s.threads) * HOURS * 3600.0)
        .unwrap();
    usage
        .add(
            Consumer::Namespace("all".into()),
            Some(s.name.into()),
            Amounts {
                cpu_request_core_hours: f64::from(s.threads) * HOURS,
                ..Default::default()
            },
        )
        .unwrap();
    let mapping = Mapping {
        namespaces: BTreeMap::from([("all".into(), "org".into())]),
        ..Default::default()
    };
    allocate(inv, &usage, &mapping, HOURS).unwrap().cluster
}

fn within(x: f64, r: footprint::Range) -> bool {
    r.low <= x && x <= r.high
}

fn near(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[tokio::test]
async fn the_same_server_against_the_boavizta_api() {
    let Some(url) = peer() else { return };
    for s in SERVERS {
        let (b_use, b_emb, b_power) = boavizta(&url, s).await;
        let ours = liaison(s, &inventory(s, None, None));
        println!(
            "{}: use kgCO2e Boavizta {} ({} to {}), Liaison {:.3} ({:.3} to {:.3}); \
             embedded Boavizta {} ({} to {}), Liaison {:.3} ({:.3} to {:.3}); \
             power Boavizta {b_power:.1} W, Liaison {:.1} W",
            s.name,
            b_use.value,
            b_use.min,
            b_use.max,
            ours.use_kgco2e.central,
            ours.use_kgco2e.low,
            ours.use_kgco2e.high,
            b_emb.value,
            b_emb.min,
            b_emb.max,
            ours.embodied_kgco2e.central,
            ours.embodied_kgco2e.low,
            ours.embodied_kgco2e.high,
            ours.energy_kwh.central * 1000.0 / HOURS,
        );
        // The peer's central figures lie inside Liaison's ranges.
        assert!(
            within(b_use.value, ours.use_kgco2e),
            "{}: use {} outside {:?}",
            s.name,
            b_use.value,
            ours.use_kgco2e
        );
        assert!(
            within(b_emb.value, ours.embodied_kgco2e),
            "{}: embedded {} outside {:?}",
            s.name,
            b_emb.value,
            ours.embodied_kgco2e
        );
        // With the peer's power and embodied total, the same formulas give the
        // same figures (Boavizta rounds to about 3 significant digits).
        let total_embodied = b_emb.value * 35_040.0 / HOURS;
        let same = liaison(s, &inventory(s, Some(b_power), Some(total_embodied)));
        assert!(
            near(same.use_kgco2e.central, b_use.value, 0.01),
            "{}: use {:?} vs {}",
            s.name,
            same.use_kgco2e,
            b_use.value
        );
        assert!(
            near(same.embodied_kgco2e.central, b_emb.value, 1e-9),
            "{}: embedded {:?} vs {}",
            s.name,
            same.embodied_kgco2e,
            b_emb.value
        );
        // Boavizta's energy is avg_power × hours × its France factor (0.098 kg/kWh).
        assert!(near(b_power * HOURS / 1000.0 * 0.098, b_use.value, 0.01));
    }
}
