//! Reports of a period: JSON (serde), CSV (one row per organisation) and a
//! printable HTML page per organisation, in French or English, with its chart.
//!
//! Figures are rounded to three decimals (watt-hours, grams) in every format;
//! the organisations' rounded figures add up to the cluster's within rounding.

use askama::Template;
use serde::{Deserialize, Serialize};

use crate::allocate::{ConsumerFootprint, Figures, Footprint, ServerFootprint};
use crate::chart::{self, MonthPoint};
use crate::i18n::{fill, Lang, ReportTexts, Texts};
use crate::inventory::{Inventory, SourcedRange};
use crate::period::Month;
use crate::range::Range;
use crate::usage::Consumer;

/// Decimals kept in reports.
pub const DECIMALS: i32 = 3;

/// Version of the method, in every report (bumped when a formula changes).
pub const METHOD: &str = "liaison-footprint/1";

/// Printed with every report.
pub const RANGE_NOTE: &str = "low and high are what the inputs' own low and high values give \
(interval arithmetic); a range is not a confidence interval.";

/// Warnings that start with this name namespaces or organisations: they are
/// for the operator, and left out of one organisation's view.
pub const OPERATOR_ONLY: &str = "[operator] ";

/// The report of one period. Reading is lenient (unknown fields are
/// ignored), so that kept months written by another version still chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub period: String,
    pub hours: f64,
    pub method: String,
    pub range_note: String,
    /// Where the usage came from: `csv` or `prometheus`.
    pub source: String,
    pub cluster: ClusterReport,
    pub organisations: Vec<OrgReport>,
    pub sites: Vec<SiteReport>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    pub energy_kwh: Range,
    pub use_kgco2e: Range,
    pub embodied_kgco2e: Range,
    pub total_kgco2e: Range,
    /// What shared namespaces, unmapped namespaces and headroom held before it
    /// was spread over the organisations.
    pub shared_pool: Figures,
    /// What no organisation could take (zero unless there is none).
    pub unattributed: Figures,
    pub servers: Vec<ServerFootprint>,
}

/// Direct part and share of the shared pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgReport {
    pub org: String,
    pub period: String,
    pub energy_kwh: Range,
    pub use_kgco2e: Range,
    pub embodied_kgco2e: Range,
    pub total_kgco2e: Range,
    pub direct: Figures,
    pub shared: Figures,
    /// The organisation's share of the shared energy, use and embodied pools.
    pub shared_keys: SharedKeys,
    /// `total_kgco2e.central` over the cluster's, 0 to 1.
    pub share_of_cluster: f64,
    pub network_gb: f64,
    pub consumers: Vec<ConsumerFootprint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SharedKeys {
    pub energy: f64,
    #[serde(rename = "use")]
    pub use_: f64,
    pub embodied: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteReport {
    pub name: String,
    pub pue: SourcedRange,
    pub carbon_intensity: SourcedRange,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

impl Report {
    /// The report of `footprint` for `month`, rounded.
    pub fn new(month: Month, footprint: &Footprint, inventory: &Inventory, source: &str) -> Report {
        let r = |f: Figures| f.round(DECIMALS);
        let c = footprint.cluster;
        let organisations = footprint
            .orgs
            .iter()
            .map(|o| {
                let f = r(o.figures);
                let mut consumers = o.consumers.clone();
                for cf in &mut consumers {
                    cf.figures = r(cf.figures);
                    cf.cpu_seconds = crate::range::round_to(cf.cpu_seconds, DECIMALS);
                    cf.network_gb = crate::range::round_to(cf.network_gb, DECIMALS);
                }
                OrgReport {
                    org: o.org.clone(),
                    period: month.label(),
                    energy_kwh: f.energy_kwh,
                    use_kgco2e: f.use_kgco2e,
                    embodied_kgco2e: f.embodied_kgco2e,
                    total_kgco2e: f.total_kgco2e,
                    direct: r(o.direct),
                    shared: r(o.shared),
                    shared_keys: SharedKeys {
                        energy: crate::range::round_to(o.shared_keys[0], 6),
                        use_: crate::range::round_to(o.shared_keys[1], 6),
                        embodied: crate::range::round_to(o.shared_keys[2], 6),
                    },
                    share_of_cluster: crate::range::round_to(
                        ratio(o.figures.total_kgco2e.central, c.total_kgco2e.central),
                        6,
                    ),
                    network_gb: crate::range::round_to(o.network_gb, DECIMALS),
                    consumers,
                }
            })
            .collect();
        let c = r(c);
        Report {
            period: month.label(),
            hours: footprint.hours,
            method: METHOD.into(),
            range_note: RANGE_NOTE.into(),
            source: source.into(),
            cluster: ClusterReport {
                energy_kwh: c.energy_kwh,
                use_kgco2e: c.use_kgco2e,
                embodied_kgco2e: c.embodied_kgco2e,
                total_kgco2e: c.total_kgco2e,
                shared_pool: r(footprint.shared_pool),
                unattributed: r(footprint.unattributed),
                servers: footprint
                    .servers
                    .iter()
                    .map(|s| {
                        let mut s = s.clone();
                        s.figures = r(s.figures);
                        s.idle_it_kwh = s.idle_it_kwh.round(DECIMALS);
                        s.dynamic_it_kwh = s.dynamic_it_kwh.round(DECIMALS);
                        s
                    })
                    .collect(),
            },
            organisations,
            sites: inventory
                .sites
                .iter()
                .map(|s| SiteReport {
                    name: s.name.clone(),
                    pue: s.pue.clone(),
                    carbon_intensity: s.carbon_intensity.clone(),
                })
                .collect(),
            warnings: footprint.warnings.clone(),
        }
    }

    /// The same report with one organisation only (the cluster's totals stay;
    /// other organisations' figures and the warnings naming namespaces or
    /// organisations go). `None` when the organisation is not in the report.
    pub fn for_org(&self, org: &str) -> Option<Report> {
        let one = self.organisations.iter().find(|o| o.org == org)?.clone();
        Some(Report {
            organisations: vec![one],
            warnings: self
                .warnings
                .iter()
                .filter(|w| !w.starts_with(OPERATOR_ONLY))
                .cloned()
                .collect(),
            ..self.clone()
        })
    }

    /// This report's point for an organisation's chart.
    pub fn month_point(org: &OrgReport) -> MonthPoint {
        MonthPoint {
            period: org.period.clone(),
            use_kgco2e: org.use_kgco2e,
            embodied_kgco2e: org.embodied_kgco2e,
            total_kgco2e: org.total_kgco2e,
        }
    }
}

/// The CSV columns.
pub const CSV_HEADER: [&str; 25] = [
    "org",
    "period",
    "energy_kwh_low",
    "energy_kwh_central",
    "energy_kwh_high",
    "use_kgco2e_low",
    "use_kgco2e_central",
    "use_kgco2e_high",
    "embodied_kgco2e_low",
    "embodied_kgco2e_central",
    "embodied_kgco2e_high",
    "total_kgco2e_low",
    "total_kgco2e_central",
    "total_kgco2e_high",
    "direct_energy_kwh",
    "direct_use_kgco2e",
    "direct_embodied_kgco2e",
    "direct_total_kgco2e",
    "shared_energy_kwh",
    "shared_use_kgco2e",
    "shared_embodied_kgco2e",
    "shared_total_kgco2e",
    "share_of_cluster",
    "network_gb",
    "method",
];

/// One row per organisation (direct and shared parts as central values), then
/// a row `org = *` with the cluster's totals.
pub fn to_csv(report: &Report) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_HEADER).expect("writing CSV to memory");
    let nums = |r: &Range| [r.low, r.central, r.high].map(|v| v.to_string());
    let centrals = |f: &Figures| {
        [
            f.energy_kwh,
            f.use_kgco2e,
            f.embodied_kgco2e,
            f.total_kgco2e,
        ]
        .map(|r| r.central.to_string())
    };
    for o in &report.organisations {
        let mut row = vec![text_cell(&o.org), text_cell(&o.period)];
        for r in [
            &o.energy_kwh,
            &o.use_kgco2e,
            &o.embodied_kgco2e,
            &o.total_kgco2e,
        ] {
            row.extend(nums(r));
        }
        row.extend(centrals(&o.direct));
        row.extend(centrals(&o.shared));
        row.push(o.share_of_cluster.to_string());
        row.push(o.network_gb.to_string());
        row.push(report.method.clone());
        out.write_record(&row).expect("writing CSV to memory");
    }
    let c = &report.cluster;
    let mut row = vec!["*".to_owned(), text_cell(&report.period)];
    for r in [
        &c.energy_kwh,
        &c.use_kgco2e,
        &c.embodied_kgco2e,
        &c.total_kgco2e,
    ] {
        row.extend(nums(r));
    }
    row.extend(std::iter::repeat_n(String::new(), 8));
    row.push("1".into());
    row.push(String::new());
    row.push(report.method.clone());
    out.write_record(&row).expect("writing CSV to memory");
    String::from_utf8(out.into_inner().expect("flush")).expect("UTF-8")
}

/// Neutralises a text cell that a spreadsheet would take for a formula.
fn text_cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

/// The stylesheet of the HTML page (its hash goes in the CSP).
pub const STYLE: &str = include_str!("../templates/report.css");

/// `Content-Security-Policy` of the HTML page: nothing but its own stylesheet.
pub fn content_security_policy() -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(STYLE.as_bytes());
    format!(
        "default-src 'none'; style-src 'sha256-{}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

struct Row {
    label: String,
    low: String,
    central: String,
    high: String,
}

struct ConsumerRow {
    name: String,
    kind: String,
    cpu_hours: String,
    energy: String,
    use_: String,
    embodied: String,
    total: String,
}

struct MonthRow {
    period: String,
    use_: String,
    embodied: String,
    low: String,
    central: String,
    high: String,
}

struct SiteRow {
    name: String,
    pue: String,
    intensity: String,
    source: String,
    year: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    lang: &'a str,
    t: &'a Texts,
    style: &'a str,
    title: String,
    subtitle: String,
    summary_caption: String,
    cluster_caption: String,
    summary: Vec<Row>,
    split: Vec<Row>,
    share: String,
    chart_svg: String,
    months: Vec<MonthRow>,
    consumers: Vec<ConsumerRow>,
    cluster: Vec<Row>,
    sites: Vec<SiteRow>,
    warnings: &'a [String],
}

/// The printable page of one organisation of `report` (which must hold it),
/// with `history` (earlier months, any order) in the chart. `None` when the
/// organisation is not in the report.
pub fn to_html(report: &Report, org: &str, history: &[MonthPoint], lang: Lang) -> Option<String> {
    let o = report.organisations.iter().find(|o| o.org == org)?;
    let t = lang.texts();
    let n = |v: f64| lang.number(v, 1);
    let range_row = |label: &str, r: &Range| Row {
        label: label.to_owned(),
        low: n(r.low),
        central: n(r.central),
        high: n(r.high),
    };
    let figures_rows = |f: [&Range; 4]| {
        vec![
            range_row(&t.energy, f[0]),
            range_row(&t.use_emissions, f[1]),
            range_row(&t.embodied, f[2]),
            range_row(&t.total, f[3]),
        ]
    };
    let split = [
        (&t.energy, o.direct.energy_kwh, o.shared.energy_kwh),
        (&t.use_emissions, o.direct.use_kgco2e, o.shared.use_kgco2e),
        (
            &t.embodied,
            o.direct.embodied_kgco2e,
            o.shared.embodied_kgco2e,
        ),
        (&t.total, o.direct.total_kgco2e, o.shared.total_kgco2e),
    ]
    .into_iter()
    .map(|(label, d, s)| Row {
        label: label.clone(),
        low: n(d.central),
        central: n(s.central),
        high: n(d.central + s.central),
    })
    .collect();
    let mut points: Vec<MonthPoint> = history
        .iter()
        .filter(|p| p.period != o.period)
        .cloned()
        .collect();
    points.push(Report::month_point(o));
    points.sort_by(|a, b| a.period.cmp(&b.period));
    points.dedup_by(|a, b| a.period == b.period);
    let points = &points[points.len().saturating_sub(chart::MAX_MONTHS)..];
    let vars = [
        ("org", o.org.as_str()),
        ("period", o.period.as_str()),
        ("hours", &lang.number(report.hours, 0)),
    ];
    let alt = fill(&t.chart_alt, &vars);
    let page = Page {
        lang: lang.tag(),
        t,
        style: STYLE,
        title: fill(&t.title, &vars),
        subtitle: fill(&t.subtitle, &vars),
        summary_caption: fill(&t.summary_caption, &vars),
        cluster_caption: fill(&t.cluster_caption, &vars),
        summary: figures_rows([
            &o.energy_kwh,
            &o.use_kgco2e,
            &o.embodied_kgco2e,
            &o.total_kgco2e,
        ]),
        split,
        share: fill(
            &t.share_of_cluster,
            &[(
                "share",
                &format!("{}\u{a0}%", lang.number(o.share_of_cluster * 100.0, 1)),
            )],
        ),
        chart_svg: chart::svg(points, lang, &alt),
        months: points
            .iter()
            .map(|p| MonthRow {
                period: p.period.clone(),
                use_: n(p.use_kgco2e.central),
                embodied: n(p.embodied_kgco2e.central),
                low: n(p.total_kgco2e.low),
                central: n(p.total_kgco2e.central),
                high: n(p.total_kgco2e.high),
            })
            .collect(),
        consumers: o
            .consumers
            .iter()
            .map(|c| ConsumerRow {
                name: c.consumer.name().to_owned(),
                kind: match c.consumer {
                    Consumer::Namespace(_) => t.namespace.clone(),
                    Consumer::Bucket(_) => t.bucket.clone(),
                },
                cpu_hours: n(c.cpu_seconds / 3600.0),
                energy: n(c.figures.energy_kwh.central),
                use_: n(c.figures.use_kgco2e.central),
                embodied: n(c.figures.embodied_kgco2e.central),
                total: n(c.figures.total_kgco2e.central),
            })
            .collect(),
        cluster: figures_rows([
            &report.cluster.energy_kwh,
            &report.cluster.use_kgco2e,
            &report.cluster.embodied_kgco2e,
            &report.cluster.total_kgco2e,
        ]),
        sites: report
            .sites
            .iter()
            .map(|s| SiteRow {
                name: s.name.clone(),
                pue: format!(
                    "{} – {} – {}",
                    lang.number(s.pue.low, 2),
                    lang.number(s.pue.central, 2),
                    lang.number(s.pue.high, 2)
                ),
                intensity: format!(
                    "{} – {} – {}",
                    lang.number(s.carbon_intensity.low, 0),
                    lang.number(s.carbon_intensity.central, 0),
                    lang.number(s.carbon_intensity.high, 0)
                ),
                source: format!("{}; {}", s.pue.source, s.carbon_intensity.source),
                year: format!("{}; {}", s.pue.year, s.carbon_intensity.year),
            })
            .collect(),
        warnings: &report.warnings,
    };
    Some(
        page.render()
            .expect("rendering into a String does not fail"),
    )
}
