//! The allocation method: closed-form cases (including the worked example of
//! docs/FOOTPRINT.md), conservation for random inventories and usages (a
//! property test), ranges ordered and widening when an input is missing.

use footprint::allocate::{allocate, Figures, Mapping};
use footprint::inventory::Inventory;
use footprint::usage::{Amounts, Consumer, Usage};
use footprint::{Month, Range, Report};
use proptest::prelude::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_range(r: Range, low: f64, central: f64, high: f64, what: &str) {
    assert!(
        (r.low - low).abs() < 5e-4
            && (r.central - central).abs() < 5e-4
            && (r.high - high).abs() < 5e-4,
        "{what}: {r:?}, expected {low} / {central} / {high}"
    );
}

use footprint::example::{
    mapping as example_mapping, INVENTORY as EXAMPLE_INVENTORY, USAGE_CSV as EXAMPLE_USAGE,
};

#[test]
fn worked_example_of_the_documentation() {
    let inv = Inventory::from_toml(EXAMPLE_INVENTORY).unwrap();
    let usage = Usage::from_csv(EXAMPLE_USAGE.as_bytes()).unwrap();
    let f = allocate(&inv, &usage, &example_mapping(), 720.0).unwrap();
    let s = &f.servers[0];
    // u = 20,736,000 / (32 × 720 × 3600) = 0.25.
    assert_eq!(s.utilisation, Range::point(0.25));
    // Idle pool 100 W × 720 h = 72 kWh; dynamic 0.25 × 200 W × 720 h = 36 kWh.
    assert_range(s.idle_it_kwh, 64.8, 72.0, 79.2, "idle IT");
    // Dynamic: max − idle = [280 − 110, 320 − 90] = [170, 230] W.
    assert_range(s.dynamic_it_kwh, 30.6, 36.0, 41.4, "dynamic IT");
    // Facility energy: (72 + 36) × 1.5 = 162 kWh.
    assert_range(f.cluster.energy_kwh, 133.56, 162.0, 192.96, "energy");
    // Use: 162 × 56 / 1000 = 9.072 kg.
    assert_range(f.cluster.use_kgco2e, 4.14036, 9.072, 18.91008, "use");
    // Embodied: 1500 × 720 / (5 × 8760) = 24.6575 kg.
    assert_range(
        f.cluster.embodied_kgco2e,
        1200.0 * 720.0 / (6.0 * 8760.0),
        1500.0 * 720.0 / (5.0 * 8760.0),
        2100.0 * 720.0 / (4.0 * 8760.0),
        "embodied",
    );
    // Weights (Teads): memory 128 × 533/384 = 177.667, storage 2 × 100 = 200,
    // CPU and the rest 1000 − 16 × 533/384 = 977.792; total 1355.458.
    let w = s.weights;
    assert!((w[0] - 977.7916667 / 1355.4583333).abs() < 1e-6, "{w:?}");
    assert!((w[1] - 177.6666667 / 1355.4583333).abs() < 1e-6, "{w:?}");
    assert!((w[2] - 200.0 / 1355.4583333).abs() < 1e-6, "{w:?}");
    let ecole = f.orgs.iter().find(|o| o.org == "ecole").unwrap();
    let syndicat = f.orgs.iter().find(|o| o.org == "syndicat").unwrap();
    // ecole: CPU max(1440, 5,184,000/3600 = 1440) / (32 × 720) = 0.0625;
    // memory 14,400 / (128 × 720) = 0.15625; storage 144,000 × 1 / (2000 × 720) = 0.1.
    let rho_ecole = w[0] * 0.0625 + w[1] * 0.15625 + w[2] * 0.1;
    // syndicat: CPU 2880 / 23,040 = 0.125; memory 28,800 / 92,160 = 0.3125.
    let rho_syndicat = w[0] * 0.125 + w[1] * 0.3125;
    // Dynamic energy by CPU-seconds: ecole 5,184,000 / 10,368,000 = 1/2.
    let dyn_fac = 36.0 * 1.5;
    let idle_fac = 72.0 * 1.5;
    let ecole_energy = 0.5 * dyn_fac + rho_ecole * idle_fac;
    let syndicat_energy = 0.25 * dyn_fac + rho_syndicat * idle_fac;
    assert!(close(ecole.direct.energy_kwh.central, ecole_energy));
    assert!(close(syndicat.direct.energy_kwh.central, syndicat_energy));
    // The rest (ingress and the headroom) is spread pro rata of the direct parts.
    let shared = 162.0 - ecole_energy - syndicat_energy;
    let key = ecole_energy / (ecole_energy + syndicat_energy);
    assert!(close(ecole.shared.energy_kwh.central, shared * key));
    assert!(close(
        ecole.figures.energy_kwh.central + syndicat.figures.energy_kwh.central,
        162.0
    ));
    // The report, rounded, carries the same.
    let report = Report::new(Month::parse("2026-11").unwrap(), &f, &inv, "csv");
    let o = report.for_org("ecole").unwrap();
    assert_eq!(o.organisations.len(), 1);
    assert!(
        (o.organisations[0].energy_kwh.central - ecole.figures.energy_kwh.central).abs() < 5e-4
    );
    println!(
        "worked example: rho ecole {rho_ecole:.6}, syndicat {rho_syndicat:.6}; ecole {:?}; syndicat {:?}",
        ecole.figures, syndicat.figures
    );
}

fn sum_orgs(f: &footprint::Footprint) -> Figures {
    f.orgs
        .iter()
        .fold(f.unattributed, |acc, o| acc.plus(o.figures))
}

fn figures_close(a: &Figures, b: &Figures) -> bool {
    [
        (a.energy_kwh, b.energy_kwh),
        (a.use_kgco2e, b.use_kgco2e),
        (a.embodied_kgco2e, b.embodied_kgco2e),
        (a.total_kgco2e, b.total_kgco2e),
    ]
    .iter()
    .all(|(x, y)| close(x.low, y.low) && close(x.central, y.central) && close(x.high, y.high))
}

#[derive(Debug, Clone)]
struct ServerSpec {
    vcpus: u32,
    ram_gb: u32,
    ssd: u32,
    hdd: u32,
    storage_role: bool,
    power: Option<(f64, f64)>,
    lifetime: Option<f64>,
    embodied: Option<f64>,
}

fn server_spec() -> impl Strategy<Value = ServerSpec> {
    (
        1u32..=128,
        1u32..=1024,
        0u32..=4,
        0u32..=8,
        any::<bool>(),
        proptest::option::of((10.0f64..300.0, 0.0f64..700.0)),
        proptest::option::of(1.0f64..10.0),
        proptest::option::of(0.0f64..5000.0),
    )
        .prop_map(
            |(vcpus, ram_gb, ssd, hdd, storage, power, lifetime, embodied)| ServerSpec {
                vcpus,
                ram_gb,
                ssd,
                hdd,
                storage_role: storage && (ssd + hdd) > 0,
                power: power.map(|(idle, extra)| (idle, idle + extra)),
                lifetime,
                embodied,
            },
        )
}

fn inventory_of(specs: &[ServerSpec]) -> Inventory {
    let mut text = String::from(
        "[storage]\nvolume_replication = 2\nbucket_replication = 1.5\n[[site]]\nname = \"a\"\n\
         pue = { low = 1.1, central = 1.4, high = 1.9, source = \"t\", year = 2024 }\n\
         carbon_intensity = { low = 20, central = 60, high = 400, source = \"t\", year = 2024 }\n\
         [[site]]\nname = \"b\"\n\
         pue = { low = 1.0, central = 1.0, high = 1.0, source = \"t\", year = 2024 }\n\
         carbon_intensity = { low = 300, central = 300, high = 300, source = \"t\", year = 2024 }\n",
    );
    for (i, s) in specs.iter().enumerate() {
        text.push_str(&format!(
            "[[server]]\nname = \"s{i}\"\nsite = \"{}\"\nrole = \"{}\"\ncpu_model = \"AMD EPYC 7543\"\nsockets = {}\nvcpus = {}\nram_gb = {}\n",
            if i % 2 == 0 { "a" } else { "b" },
            if s.storage_role { "storage" } else { "node" },
            1 + i % 2,
            s.vcpus,
            s.ram_gb
        ));
        let mut disks = Vec::new();
        if s.ssd > 0 {
            disks.push(format!(
                "{{ kind = \"ssd\", capacity_gb = 960, count = {} }}",
                s.ssd
            ));
        }
        if s.hdd > 0 {
            disks.push(format!(
                "{{ kind = \"hdd\", capacity_gb = 8000, count = {} }}",
                s.hdd
            ));
        }
        text.push_str(&format!("disks = [{}]\n", disks.join(", ")));
        if let Some((idle, max)) = s.power {
            text.push_str(&format!(
                "idle_w = {idle}\nmax_w = {max}\npower_source = \"rated\"\n"
            ));
        }
        if let Some(l) = s.lifetime {
            text.push_str(&format!("lifetime_years = {l}\n"));
        }
        if let Some(e) = s.embodied {
            text.push_str(&format!("embodied_kgco2e = {e}\n"));
        }
    }
    Inventory::from_toml(&text).unwrap()
}

#[derive(Debug, Clone)]
struct RowSpec {
    consumer: usize,
    bucket: bool,
    node: Option<usize>,
    amounts: [f64; 5],
}

fn row_spec() -> impl Strategy<Value = RowSpec> {
    (
        0usize..12,
        prop::bool::weighted(0.15),
        proptest::option::weighted(0.8, 0usize..8),
        [
            0.0f64..5.0e6,
            0.0f64..5000.0,
            0.0f64..50000.0,
            0.0f64..500000.0,
            0.0f64..100.0,
        ],
    )
        .prop_map(|(consumer, bucket, node, amounts)| RowSpec {
            consumer,
            bucket,
            node,
            amounts,
        })
}

fn usage_of(rows: &[RowSpec], nodes: usize, node_cpu: &[f64]) -> Usage {
    let mut u = Usage::default();
    for r in rows {
        let consumer = if r.bucket {
            Consumer::Bucket(format!("bucket-{}", r.consumer))
        } else {
            Consumer::Namespace(format!("ns-{}", r.consumer))
        };
        // Node 7 is missing from every inventory: spread, with a warning.
        let node = r
            .node
            .map(|n| format!("s{}", if n == 7 { 99 } else { n % nodes }));
        let a = r.amounts;
        u.add(
            consumer,
            node,
            Amounts {
                cpu_seconds: a[0],
                cpu_request_core_hours: a[1],
                memory_gb_hours: a[2],
                storage_gb_hours: a[3],
                network_gb: a[4],
            },
        )
        .unwrap();
    }
    for (i, &s) in node_cpu.iter().enumerate().take(nodes) {
        if s > 0.0 {
            u.set_node_cpu(&format!("s{i}"), s).unwrap();
        }
    }
    u
}

fn mapping_of(orgs: usize, owner: &[Option<usize>], shared: &[bool]) -> Mapping {
    let mut m = Mapping::default();
    for c in 0..12 {
        if shared[c] {
            m.shared.insert(format!("ns-{c}"));
        } else if let Some(o) = owner[c].filter(|_| orgs > 0) {
            m.namespaces
                .insert(format!("ns-{c}"), format!("org-{}", o % orgs));
            m.buckets
                .insert(format!("bucket-{c}"), format!("org-{}", o % orgs));
        }
    }
    if orgs > 0 {
        m.orgs.insert("org-idle".into());
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The organisations (and what no organisation could take) add up to the
    /// cluster, bound by bound; every figure is ordered and non-negative.
    #[test]
    fn conservation(
        specs in prop::collection::vec(server_spec(), 1..6),
        rows in prop::collection::vec(row_spec(), 0..40),
        node_cpu in prop::collection::vec(0.0f64..2.0e7, 6),
        orgs in 0usize..4,
        owner in prop::collection::vec(proptest::option::weighted(0.8, 0usize..4), 12),
        shared in prop::collection::vec(prop::bool::weighted(0.2), 12),
        hours in 1.0f64..800.0,
    ) {
        let inv = inventory_of(&specs);
        let usage = usage_of(&rows, specs.len(), &node_cpu);
        let mapping = mapping_of(orgs, &owner, &shared);
        let f = allocate(&inv, &usage, &mapping, hours).unwrap();
        prop_assert!(figures_close(&sum_orgs(&f), &f.cluster), "{:?} vs {:?}", sum_orgs(&f), f.cluster);
        prop_assert!(f.cluster.is_ordered());
        for o in &f.orgs {
            prop_assert!(o.figures.is_ordered(), "{o:?}");
            prop_assert!(o.direct.is_ordered() && o.shared.is_ordered());
            prop_assert!(o.figures.total_kgco2e.low >= 0.0);
            prop_assert!(figures_close(&o.direct.plus(o.shared), &o.figures));
            let direct: Figures = o.consumers.iter().fold(Figures::ZERO, |a, c| a.plus(c.figures));
            prop_assert!(figures_close(&direct, &o.direct));
        }
        // Rounded reports add up within rounding (half a gram per organisation).
        let report = Report::new(Month::parse("2026-11").unwrap(), &f, &inv, "csv");
        let n = report.organisations.len() as f64 + 1.0;
        let sum: f64 = report.organisations.iter().map(|o| o.total_kgco2e.central).sum::<f64>()
            + report.cluster.unattributed.total_kgco2e.central;
        prop_assert!((sum - report.cluster.total_kgco2e.central).abs() <= 0.0005 * n + 1e-9 * sum.abs());
    }

    /// Removing a known figure (power, lifetime, embodied) widens the range it
    /// feeds, relative to its central value.
    #[test]
    fn ranges_widen_when_an_input_is_missing(
        mut spec in server_spec(),
        cpu in 1.0e5f64..5.0e6,
    ) {
        spec.storage_role = false;
        spec.power = Some((80.0, 250.0));
        spec.lifetime = Some(5.0);
        spec.embodied = Some(1500.0);
        let usage = usage_of(&[RowSpec { consumer: 0, bucket: false, node: Some(0), amounts: [cpu, 100.0, 100.0, 0.0, 0.0] }], 1, &[]);
        let mapping = mapping_of(1, &[Some(0); 12], &[false; 12]);
        let run = |s: &ServerSpec| allocate(&inventory_of(std::slice::from_ref(s)), &usage, &mapping, 720.0).unwrap().cluster;
        let rel = |r: Range| r.width() / r.central;
        let known = run(&spec);
        prop_assert!(known.is_ordered());

        let mut no_power = spec.clone();
        no_power.power = None;
        let f = run(&no_power);
        prop_assert!(f.is_ordered());
        prop_assert!(rel(f.energy_kwh) > rel(known.energy_kwh), "{:?} vs {:?}", f.energy_kwh, known.energy_kwh);

        let mut no_lifetime = spec.clone();
        no_lifetime.lifetime = None;
        let f = run(&no_lifetime);
        prop_assert!(rel(f.embodied_kgco2e) > rel(known.embodied_kgco2e));

        let mut no_embodied = spec.clone();
        no_embodied.embodied = None;
        let f = run(&no_embodied);
        prop_assert!(rel(f.embodied_kgco2e) > rel(known.embodied_kgco2e));
        prop_assert!(f.total_kgco2e.width() > known.total_kgco2e.width() || f.embodied_kgco2e.central < known.embodied_kgco2e.central);
    }
}

#[test]
fn a_server_without_any_cpu_figure_gets_the_unknown_utilisation() {
    let inv = Inventory::from_toml(EXAMPLE_INVENTORY).unwrap();
    let f = allocate(&inv, &Usage::default(), &example_mapping(), 720.0).unwrap();
    assert_eq!(
        f.servers[0].utilisation,
        footprint::allocate::UNKNOWN_UTILISATION
    );
    // Nobody used anything: the two organisations share equally.
    assert_eq!(f.orgs.len(), 2);
    assert!(close(
        f.orgs[0].figures.total_kgco2e.central,
        f.cluster.total_kgco2e.central / 2.0
    ));
}

#[test]
fn unmapped_namespaces_and_unknown_nodes_are_warned_about() {
    let inv = Inventory::from_toml(EXAMPLE_INVENTORY).unwrap();
    let text = format!("{EXAMPLE_USAGE}stray,node-9,3600,1,1,0,0\n");
    let usage = Usage::from_csv(text.as_bytes()).unwrap();
    let f = allocate(&inv, &usage, &example_mapping(), 720.0).unwrap();
    assert!(
        f.warnings
            .iter()
            .any(|w| w.contains("node node-9 is not in the inventory")),
        "{:?}",
        f.warnings
    );
    assert!(f
        .warnings
        .iter()
        .any(|w| w.contains("belong to no organisation") && w.contains("stray")));
    assert!(figures_close(&sum_orgs(&f), &f.cluster));
    // The per-organisation view drops the warning that names other namespaces.
    let report = Report::new(Month::parse("2026-11").unwrap(), &f, &inv, "csv");
    assert!(report
        .for_org("ecole")
        .unwrap()
        .warnings
        .iter()
        .all(|w| !w.contains("stray")));
    assert!(report.for_org("nobody").is_none());
}

#[test]
fn a_meter_replaces_the_modelled_energy() {
    let inv = Inventory::from_toml(EXAMPLE_INVENTORY).unwrap();
    let mut usage = Usage::from_csv(EXAMPLE_USAGE.as_bytes()).unwrap();
    usage.set_node_energy("node-1", 100.0).unwrap();
    let f = allocate(&inv, &usage, &example_mapping(), 720.0).unwrap();
    let s = &f.servers[0];
    assert_eq!(s.power_origin, "metered");
    // IT energy 100 kWh at low and central; the model's high (79.2 + 41.4) above it.
    assert!(close(
        s.idle_it_kwh.central + s.dynamic_it_kwh.central,
        100.0
    ));
    assert!(close(f.cluster.energy_kwh.central, 150.0));
    assert!(f.cluster.energy_kwh.high >= 120.6 * 1.6 - 1e-9);
    assert!(f.cluster.is_ordered());
}
