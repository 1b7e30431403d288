//! Usage of a month from Prometheus' HTTP query API (`POST /api/v1/query`).
//!
//! One instant query per figure, evaluated at the month's end over the whole
//! month (`increase(…[Nh])` for counters, `sum_over_time(…[Nh:step])` for
//! gauges), grouped by namespace and node (see [`queries`] for the PromQL).
//! Prometheus' answers are hostile input: the body is bounded, the number of
//! series is bounded, every value must be a finite non-negative number and
//! every name must be a valid namespace, node or bucket name; what does not fit
//! is skipped and counted in a warning.
//!
//! All HTTP goes through [`post_query`] on an [`outbound::Client`] ([`client`]):
//! no redirects, timeouts, a bounded body.

use std::collections::BTreeMap;
use std::time::Duration;

use outbound::{HttpError, Limits, Method, Url};
use serde::{Deserialize, Serialize};

use crate::period::Month;
use crate::usage::{
    valid_bucket, valid_namespace, valid_node, valid_value, Amounts, Consumer, Usage,
};

/// Where and how to query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSettings {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    pub url: String,
    /// The label naming the node on cAdvisor and kube-state-metrics series.
    pub node_label: String,
    /// Resolution of the gauges' sums, seconds (a divisor of 3600).
    pub step_secs: u32,
    /// Gauge of each bucket's bytes (MinIO: `minio_bucket_usage_total_bytes`).
    pub bucket_metric: String,
    /// The label naming the bucket on it.
    pub bucket_label: String,
    /// Counter of each node's energy in joules (Kepler), the label selector
    /// that keeps non-overlapping zones, and its node label.
    pub energy_metric: String,
    pub energy_selector: String,
    pub energy_node_label: String,
    /// Most series one answer may hold.
    pub max_series: usize,
    /// Largest answer, bytes.
    pub max_body_bytes: usize,
    /// Time allowed for one query, seconds.
    pub timeout_secs: u64,
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        PrometheusSettings {
            url: "http://127.0.0.1:9090".into(),
            node_label: "node".into(),
            step_secs: 3600,
            bucket_metric: "minio_bucket_usage_total_bytes".into(),
            bucket_label: "bucket".into(),
            energy_metric: "kepler_node_cpu_joules_total".into(),
            energy_selector: r#"zone=~"package|dram""#.into(),
            energy_node_label: "node_name".into(),
            max_series: 200_000,
            max_body_bytes: 64 << 20,
            timeout_secs: 120,
        }
    }
}

/// What went wrong talking to Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("invalid Prometheus settings: {0}")]
    Settings(String),
    /// Unreachable, a redirect, an answer beyond `max_body_bytes`, or an
    /// error status other than the query errors of Prometheus' API.
    #[error("Prometheus: {0}")]
    Http(#[from] HttpError),
    #[error("Prometheus' answer holds more than {0} series")]
    TooManySeries(usize),
    #[error("Prometheus' answer is not what its API documents: {0}")]
    Malformed(String),
    #[error("Prometheus refused the query ({kind}): {detail}")]
    Query { kind: String, detail: String },
}

/// What one figure's query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    CpuSeconds,
    CpuRequests,
    Memory,
    Volumes,
    NetworkReceive,
    NetworkTransmit,
    Buckets,
    NodeCpu,
    NodeEnergy,
    OrgLabels,
}

impl Figure {
    pub fn label(self) -> &'static str {
        match self {
            Figure::CpuSeconds => "CPU-seconds per namespace and node",
            Figure::CpuRequests => "CPU requests",
            Figure::Memory => "memory (requests or working set)",
            Figure::Volumes => "persistent volumes",
            Figure::NetworkReceive => "network received",
            Figure::NetworkTransmit => "network sent",
            Figure::Buckets => "S3 buckets",
            Figure::NodeCpu => "CPU-seconds per node",
            Figure::NodeEnergy => "metered node energy",
            Figure::OrgLabels => "namespaces' organisation label",
        }
    }
}

/// The label kube-state-metrics gives a Kubernetes label (`liaison.coop/org`
/// becomes `label_liaison_coop_org`).
pub fn ksm_label(kubernetes_label: &str) -> String {
    let mut out = String::from("label_");
    out.extend(kubernetes_label.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

fn valid_metric_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        && !s.as_bytes()[0].is_ascii_digit()
}

impl PrometheusSettings {
    pub fn validate(&self) -> Result<(), PromError> {
        let bad = |m: &str| Err(PromError::Settings(m.into()));
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return bad("url must start with http:// or https://");
        }
        for l in [
            &self.node_label,
            &self.bucket_label,
            &self.energy_node_label,
        ] {
            if !valid_label_name(l) {
                return bad("label names are letters, digits and '_'");
            }
        }
        for m in [&self.bucket_metric, &self.energy_metric] {
            if !valid_metric_name(m) {
                return bad("metric names are letters, digits, '_' and ':'");
            }
        }
        if self.energy_selector.len() > 200
            || self
                .energy_selector
                .contains(['}', '{', '\n', '[', ']', '(', ')'])
        {
            return bad("energy_selector is label matchers only, e.g. zone=~\"package|dram\"");
        }
        if self.step_secs == 0 || 3600 % self.step_secs != 0 {
            return bad("step_secs must divide 3600");
        }
        if self.max_series == 0 || self.max_body_bytes == 0 || self.timeout_secs == 0 {
            return bad("max_series, max_body_bytes and timeout_secs must be positive");
        }
        Ok(())
    }
}

/// A query, and the time it is evaluated at.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub figure: Figure,
    pub promql: String,
    /// Unix seconds.
    pub time: i64,
}

/// The queries for `month` (`org_label`: the Kubernetes label naming a
/// namespace's organisation, when the mapping reads it from Prometheus).
pub fn queries(s: &PrometheusSettings, month: Month, org_label: Option<&str>) -> Vec<Query> {
    let (_, end) = month.bounds_unix();
    let hours = month.hours() as i64;
    let range = format!("{hours}h");
    let sub = format!("[{hours}h:{}s]", s.step_secs);
    let node = &s.node_label;
    let containers = r#"container!="",container!="POD",image!="""#;
    let per_hour = format!("* {}", f64::from(s.step_secs) / 3600.0);
    // Counters are read at the end (the range holds the month's samples);
    // gauges at one second before it, so that the subquery's aligned steps are
    // the month's hours and not the next month's first.
    let gauge_time = end - 1;
    let max_of = |a: &str, b: &str| format!("(({a}) >= ({b})) or ({b}) or ({a})");
    let mut out = vec![
        Query {
            figure: Figure::CpuSeconds,
            promql: format!("sum by (namespace, {node}) (increase(container_cpu_usage_seconds_total{{{containers}}}[{range}]))"),
            time: end,
        },
        Query {
            figure: Figure::CpuRequests,
            promql: format!("sum_over_time((sum by (namespace, {node}) (kube_pod_container_resource_requests{{resource=\"cpu\"}})){sub}) {per_hour}"),
            time: gauge_time,
        },
        Query {
            figure: Figure::Memory,
            promql: format!(
                "sum_over_time(({}){sub}) {per_hour} / 1e9",
                max_of(
                    &format!("sum by (namespace, {node}) (kube_pod_container_resource_requests{{resource=\"memory\"}})"),
                    &format!("sum by (namespace, {node}) (container_memory_working_set_bytes{{{containers}}})"),
                )
            ),
            time: gauge_time,
        },
        Query {
            figure: Figure::Volumes,
            promql: format!(
                "sum_over_time(({}){sub}) {per_hour} / 1e9",
                max_of(
                    "sum by (namespace) (kube_persistentvolumeclaim_resource_requests_storage_bytes)",
                    "sum by (namespace) (kubelet_volume_stats_used_bytes)",
                )
            ),
            time: gauge_time,
        },
        Query {
            figure: Figure::NetworkReceive,
            promql: format!("sum by (namespace) (increase(container_network_receive_bytes_total[{range}])) / 1e9"),
            time: end,
        },
        Query {
            figure: Figure::NetworkTransmit,
            promql: format!("sum by (namespace) (increase(container_network_transmit_bytes_total[{range}])) / 1e9"),
            time: end,
        },
        Query {
            figure: Figure::Buckets,
            promql: format!(
                "sum_over_time((sum by ({b}) ({m})){sub}) {per_hour} / 1e9",
                b = s.bucket_label,
                m = s.bucket_metric
            ),
            time: gauge_time,
        },
        Query {
            figure: Figure::NodeCpu,
            promql: format!("sum by ({node}) (increase(container_cpu_usage_seconds_total{{id=\"/\"}}[{range}]))"),
            time: end,
        },
        Query {
            figure: Figure::NodeEnergy,
            promql: format!(
                "sum by ({l}) (increase({m}{{{sel}}}[{range}])) / 3.6e6",
                l = s.energy_node_label,
                m = s.energy_metric,
                sel = s.energy_selector
            ),
            time: end,
        },
    ];
    if let Some(label) = org_label {
        let l = ksm_label(label);
        out.push(Query {
            figure: Figure::OrgLabels,
            promql: format!("max by (namespace, {l}) (max_over_time(kube_namespace_labels{{{l}!=\"\"}}[{range}]))"),
            time: end,
        });
    }
    out
}

/// What was read from Prometheus.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    pub usage: Usage,
    /// Namespace → organisation, from the namespaces' label.
    pub org_labels: BTreeMap<String, String>,
    pub warnings: Vec<String>,
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// Parses an instant-query answer into samples; invalid values (not finite,
/// negative) are returned in the second list as text, not as samples.
pub fn parse_vector(body: &[u8], max_series: usize) -> Result<(Vec<Sample>, usize), PromError> {
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| PromError::Malformed(e.to_string()))?;
    if env.status != "success" {
        return Err(PromError::Query {
            kind: clip(env.error_type.as_deref().unwrap_or("unknown")),
            detail: clip(env.error.as_deref().unwrap_or("")),
        });
    }
    let data = env
        .data
        .ok_or_else(|| PromError::Malformed("no data".into()))?;
    if data.result_type != "vector" {
        return Err(PromError::Malformed(format!(
            "resultType {:?} where a vector was expected",
            clip(&data.result_type)
        )));
    }
    let items = match &data.result {
        serde_json::Value::Array(a) => a,
        _ => return Err(PromError::Malformed("result is not an array".into())),
    };
    if items.len() > max_series {
        return Err(PromError::TooManySeries(max_series));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut invalid = 0;
    for item in items {
        let item: VectorItem = serde_json::from_value(item.clone())
            .map_err(|e| PromError::Malformed(e.to_string()))?;
        match item.value.1.parse::<f64>() {
            Ok(v) if valid_value(v) => out.push(Sample {
                labels: item.metric,
                value: v,
            }),
            _ => invalid += 1,
        }
    }
    Ok((out, invalid))
}

/// At most 300 characters of Prometheus' text, sanitised.
fn clip(s: &str) -> String {
    outbound::clip(s, 300)
}

/// Statuses with which Prometheus answers a query it refuses, with its JSON
/// envelope (read by [`parse_vector`]).
const QUERY_ERRORS: [u16; 3] = [400, 422, 503];

/// The one HTTP call of this crate: POSTs a query form to `url`
/// (`…/api/v1/query`) and returns the answer's body. A non-2xx answer other
/// than a query error ([`QUERY_ERRORS`]) is an error.
pub async fn post_query(
    client: &outbound::Client,
    url: &Url,
    form: &[(&str, String)],
) -> Result<Vec<u8>, PromError> {
    let req = client.request(Method::POST, url.clone()).form(form);
    Ok(client.send_expecting(req, &QUERY_ERRORS).await?.body)
}

/// A client for Prometheus: no redirects, a connection timeout, each query
/// given `timeout_secs` and at most `max_body_bytes` of answer.
pub fn client(s: &PrometheusSettings) -> Result<outbound::Client, PromError> {
    Ok(outbound::Client::new(Limits {
        connect_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(s.timeout_secs),
        max_body: s.max_body_bytes,
        ..Limits::default()
    })?)
}

/// The query endpoint under the settings' base URL.
pub fn query_url(s: &PrometheusSettings) -> Result<Url, PromError> {
    Url::parse(&format!("{}/api/v1/query", s.url.trim_end_matches('/')))
        .map_err(|e| PromError::Settings(format!("url: {e}")))
}

/// Runs the month's queries and builds its usage. `progress(done, total,
/// label)` is called before each query and once at the end.
pub async fn fetch(
    s: &PrometheusSettings,
    month: Month,
    org_label: Option<&str>,
    progress: &mut (dyn FnMut(usize, usize, &str) + Send),
) -> Result<Fetched, PromError> {
    s.validate()?;
    let client = client(s)?;
    let url = query_url(s)?;
    let qs = queries(s, month, org_label);
    let total = qs.len();
    let mut fetched = Fetched::default();
    let mut rejected: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, q) in qs.iter().enumerate() {
        progress(i, total, q.figure.label());
        let form = [("query", q.promql.clone()), ("time", q.time.to_string())];
        let body = post_query(&client, &url, &form).await?;
        let (samples, invalid) = parse_vector(&body, s.max_series)?;
        let bad = absorb(&mut fetched, s, q.figure, samples, org_label);
        if invalid + bad > 0 {
            *rejected.entry(q.figure.label()).or_default() += invalid + bad;
        }
    }
    progress(total, total, "done");
    for (what, n) in rejected {
        fetched.warnings.push(format!(
            "Prometheus: {n} series of {what} skipped (invalid name or value)"
        ));
    }
    Ok(fetched)
}

/// Adds one figure's samples; returns how many were skipped.
fn absorb(
    f: &mut Fetched,
    s: &PrometheusSettings,
    figure: Figure,
    samples: Vec<Sample>,
    org_label: Option<&str>,
) -> usize {
    let mut skipped = 0;
    for sample in samples {
        let ns = sample.labels.get("namespace").map(String::as_str);
        let node = sample
            .labels
            .get(&s.node_label)
            .filter(|n| !n.is_empty())
            .cloned();
        let v = sample.value;
        let amounts = |set: &dyn Fn(&mut Amounts)| {
            let mut a = Amounts::default();
            set(&mut a);
            a
        };
        let ok = match figure {
            Figure::CpuSeconds | Figure::CpuRequests | Figure::Memory => match ns {
                Some(ns) => {
                    let a = amounts(&|a| match figure {
                        Figure::CpuSeconds => a.cpu_seconds = v,
                        Figure::CpuRequests => a.cpu_request_core_hours = v,
                        _ => a.memory_gb_hours = v,
                    });
                    f.usage
                        .add(Consumer::Namespace(ns.to_owned()), node, a)
                        .is_ok()
                }
                None => false,
            },
            Figure::Volumes | Figure::NetworkReceive | Figure::NetworkTransmit => match ns {
                Some(ns) => {
                    let a = amounts(&|a| match figure {
                        Figure::Volumes => a.storage_gb_hours = v,
                        _ => a.network_gb = v,
                    });
                    f.usage
                        .add(Consumer::Namespace(ns.to_owned()), None, a)
                        .is_ok()
                }
                None => false,
            },
            Figure::Buckets => match sample.labels.get(&s.bucket_label) {
                Some(b) => f
                    .usage
                    .add(
                        Consumer::Bucket(b.clone()),
                        None,
                        amounts(&|a| a.storage_gb_hours = v),
                    )
                    .is_ok(),
                None => false,
            },
            Figure::NodeCpu => match node {
                Some(n) => f.usage.set_node_cpu(&n, v).is_ok(),
                None => false,
            },
            Figure::NodeEnergy => match sample.labels.get(&s.energy_node_label) {
                Some(n) if valid_node(n) => f.usage.set_node_energy(n, v).is_ok(),
                _ => false,
            },
            Figure::OrgLabels => {
                let key = ksm_label(org_label.unwrap_or_default());
                match (ns, sample.labels.get(&key)) {
                    (Some(ns), Some(org)) if valid_namespace(ns) && valid_org(org) => {
                        f.org_labels.insert(ns.to_owned(), org.clone());
                        true
                    }
                    _ => false,
                }
            }
        };
        if !ok {
            skipped += 1;
        }
    }
    skipped
}

/// An organisation slug as Liaison accepts it.
pub fn valid_org(s: &str) -> bool {
    valid_namespace(s)
}

/// Whether a bucket name is valid (re-exported for configuration checks).
pub fn valid_bucket_name(s: &str) -> bool {
    valid_bucket(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vectors_and_rejects_hostile_answers() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"a","node":"n1"},"value":[1700000000,"3600"]},
            {"metric":{"namespace":"b","node":"n1"},"value":[1700000000,"NaN"]},
            {"metric":{"namespace":"c","node":"n1"},"value":[1700000000,"-5"]},
            {"metric":{"namespace":"d","node":"n1"},"value":[1700000000,"+Inf"]}]}}"#;
        let (samples, invalid) = parse_vector(body, 10).unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].value, 3600.0);
        assert_eq!(invalid, 3);
        assert!(matches!(
            parse_vector(body, 3),
            Err(PromError::TooManySeries(3))
        ));
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(parse_vector(err, 10)
            .unwrap_err()
            .to_string()
            .contains("bad_data"));
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(
            parse_vector(matrix, 10),
            Err(PromError::Malformed(_))
        ));
        assert!(matches!(
            parse_vector(b"<html>", 10),
            Err(PromError::Malformed(_))
        ));
        let wrong = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":"x"}]}}"#;
        assert!(matches!(
            parse_vector(wrong, 10),
            Err(PromError::Malformed(_))
        ));
    }

    #[test]
    fn absorbs_only_valid_names() {
        let s = PrometheusSettings::default();
        let mut f = Fetched::default();
        let sample = |ns: &str, node: &str, v: f64| Sample {
            labels: BTreeMap::from([
                ("namespace".to_owned(), ns.to_owned()),
                ("node".to_owned(), node.to_owned()),
            ]),
            value: v,
        };
        let skipped = absorb(
            &mut f,
            &s,
            Figure::CpuSeconds,
            vec![
                sample("a", "n1", 1.0),
                sample("A B", "n1", 1.0),
                sample("a", "<n>", 1.0),
            ],
            None,
        );
        assert_eq!(skipped, 2);
        assert_eq!(f.usage.rows.len(), 1);
    }

    #[test]
    fn queries_cover_the_month() {
        let m = Month::parse("2026-11").unwrap();
        let qs = queries(&PrometheusSettings::default(), m, Some("liaison.coop/org"));
        assert_eq!(qs.len(), 10);
        assert!(qs[0].promql.contains("[720h]"));
        assert!(qs[1].promql.contains("[720h:3600s]"));
        assert!(qs[9].promql.contains("label_liaison_coop_org"));
        assert_eq!(ksm_label("liaison.coop/org"), "label_liaison_coop_org");
        let bad = PrometheusSettings {
            node_label: "no de".into(),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = PrometheusSettings {
            step_secs: 7,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
