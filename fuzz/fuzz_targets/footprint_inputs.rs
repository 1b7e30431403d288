//! The footprint's parsers on arbitrary bytes: the first byte picks the
//! inventory (TOML), the usage CSV, or a Prometheus answer. What they accept
//! must allocate without a panic into ordered ranges that add up.

#![no_main]

use footprint::allocate::{allocate, Figures, Mapping};
use footprint::inventory::Inventory;
use footprint::usage::Usage;
use libfuzzer_sys::fuzz_target;

fn check(f: &footprint::Footprint) {
    assert!(f.cluster.is_ordered(), "{:?}", f.cluster);
    let sum = f.orgs.iter().fold(f.unattributed, |a: Figures, o| a.plus(o.figures));
    for (a, b) in [
        (sum.total_kgco2e, f.cluster.total_kgco2e),
        (sum.energy_kwh, f.cluster.energy_kwh),
    ] {
        for (x, y) in [(a.low, b.low), (a.central, b.central), (a.high, b.high)] {
            assert!((x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0), "{x} vs {y}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(inv) = Inventory::from_toml(text) {
                let f = allocate(&inv, &Usage::default(), &Mapping::default(), 720.0)
                    .expect("a valid inventory allocates");
                check(&f);
            }
        }
        1 => {
            if let Ok(usage) = Usage::from_csv(rest) {
                let inv = Inventory::from_toml(footprint::example::INVENTORY).unwrap();
                let f = allocate(&inv, &usage, &footprint::example::mapping(), 720.0)
                    .expect("valid usage allocates");
                check(&f);
            }
        }
        _ => {
            let _ = footprint::prometheus::parse_vector(rest, 1000);
        }
    }
});
