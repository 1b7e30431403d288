//! Usage of the period: per namespace (or bucket) and node, what was used and
//! reserved, from a CSV file or from Prometheus ([`crate::prometheus`]).
//!
//! CSV header (exactly): `namespace,node,cpu_seconds,cpu_request_core_hours,
//! memory_gb_hours,storage_gb_hours,network_gb`.
//! * `namespace` is a Kubernetes namespace, or `bucket:NAME` for an S3 bucket (a
//!   namespace cannot contain `:`), or empty for the node's own totals (its whole
//!   CPU-seconds, system processes included).
//! * `node` is the node's name, or empty when the usage is not tied to one node
//!   (replicated volumes, buckets): it is then spread over the servers of its
//!   kind in proportion to their capacity.
//! * `memory_gb_hours` is the memory reserved: hour by hour the larger of the
//!   request and the working set. `storage_gb_hours` is the persistent volumes'
//!   requested (or used, if larger) bytes, before replication.
//!
//! Rows for the same namespace and node add up. Every number must be finite and
//! non-negative; names follow Kubernetes' and S3's rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The CSV header, in order.
pub const CSV_HEADER: [&str; 7] = [
    "namespace",
    "node",
    "cpu_seconds",
    "cpu_request_core_hours",
    "memory_gb_hours",
    "storage_gb_hours",
    "network_gb",
];

/// Largest CSV read, in bytes, and most rows.
pub const MAX_CSV_BYTES: usize = 512 << 20;
pub const MAX_ROWS: usize = 2_000_000;
/// Largest value of any usage figure (a sanity bound, far above any cluster).
pub const MAX_VALUE: f64 = 1.0e15;

/// Who used resources: a namespace or a bucket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Consumer {
    Namespace(String),
    Bucket(String),
}

impl Consumer {
    pub fn name(&self) -> &str {
        match self {
            Consumer::Namespace(n) | Consumer::Bucket(n) => n,
        }
    }
}

impl std::fmt::Display for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Consumer::Namespace(n) => write!(f, "{n}"),
            Consumer::Bucket(n) => write!(f, "bucket:{n}"),
        }
    }
}

/// What one consumer used on one node (or spread) over the period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Amounts {
    pub cpu_seconds: f64,
    pub cpu_request_core_hours: f64,
    pub memory_gb_hours: f64,
    pub storage_gb_hours: f64,
    pub network_gb: f64,
}

impl Amounts {
    pub fn add(&mut self, o: &Amounts) {
        self.cpu_seconds += o.cpu_seconds;
        self.cpu_request_core_hours += o.cpu_request_core_hours;
        self.memory_gb_hours += o.memory_gb_hours;
        self.storage_gb_hours += o.storage_gb_hours;
        self.network_gb += o.network_gb;
    }

    fn values(&self) -> [f64; 5] {
        [
            self.cpu_seconds,
            self.cpu_request_core_hours,
            self.memory_gb_hours,
            self.storage_gb_hours,
            self.network_gb,
        ]
    }
}

/// The usage of one period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Per consumer and node (`None`: not tied to a node).
    pub rows: BTreeMap<(Consumer, Option<String>), Amounts>,
    /// Each node's own CPU-seconds (the whole machine).
    pub node_cpu_seconds: BTreeMap<String, f64>,
    /// Each node's metered energy (Kepler), kWh.
    pub node_energy_kwh: BTreeMap<String, f64>,
}

/// Why usage was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UsageError {
    #[error("line {line}: {problem}")]
    Line { line: u64, problem: String },
    #[error("{0}")]
    Invalid(String),
}

/// A Kubernetes namespace name (RFC 1123 label).
pub fn valid_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An S3 bucket name (3 to 63 lower-case letters, digits, `.` and `-`).
pub fn valid_bucket(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// A Kubernetes node name (RFC 1123 subdomain).
pub fn valid_node(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// A usage figure: finite, non-negative, below [`MAX_VALUE`].
pub fn valid_value(v: f64) -> bool {
    v.is_finite() && (0.0..=MAX_VALUE).contains(&v)
}

impl Usage {
    /// Adds one consumer's amounts on a node, checking every value.
    pub fn add(
        &mut self,
        consumer: Consumer,
        node: Option<String>,
        amounts: Amounts,
    ) -> Result<(), String> {
        match &consumer {
            Consumer::Namespace(n) if !valid_namespace(n) => {
                return Err(format!("invalid namespace name {n:?}"))
            }
            Consumer::Bucket(b) if !valid_bucket(b) => {
                return Err(format!("invalid bucket name {b:?}"))
            }
            _ => {}
        }
        if let Some(n) = &node {
            if !valid_node(n) {
                return Err(format!("invalid node name {n:?}"));
            }
        }
        if let Some(v) = amounts.values().into_iter().find(|v| !valid_value(*v)) {
            return Err(format!(
                "invalid value {v}: finite, non-negative numbers only"
            ));
        }
        let entry = self.rows.entry((consumer, node)).or_default();
        entry.add(&amounts);
        if entry.values().into_iter().any(|v| !valid_value(v)) {
            return Err("a sum of values exceeds the bound".into());
        }
        Ok(())
    }

    /// Sets a node's own CPU-seconds (checked).
    pub fn set_node_cpu(&mut self, node: &str, seconds: f64) -> Result<(), String> {
        if !valid_node(node) {
            return Err(format!("invalid node name {node:?}"));
        }
        if !valid_value(seconds) {
            return Err(format!("invalid value {seconds}"));
        }
        *self.node_cpu_seconds.entry(node.to_owned()).or_default() += seconds;
        Ok(())
    }

    /// Sets a node's metered energy in kWh (checked).
    pub fn set_node_energy(&mut self, node: &str, kwh: f64) -> Result<(), String> {
        if !valid_node(node) {
            return Err(format!("invalid node name {node:?}"));
        }
        if !valid_value(kwh) {
            return Err(format!("invalid value {kwh}"));
        }
        *self.node_energy_kwh.entry(node.to_owned()).or_default() += kwh;
        Ok(())
    }

    /// Reads the CSV form (see the module's documentation).
    pub fn from_csv(input: impl std::io::Read) -> Result<Usage, UsageError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(input.take(MAX_CSV_BYTES as u64 + 1));
        let header = reader
            .headers()
            .map_err(|e| UsageError::Line {
                line: 1,
                problem: e.to_string(),
            })?
            .clone();
        let names: Vec<&str> = header.iter().map(str::trim).collect();
        if names != CSV_HEADER {
            return Err(UsageError::Line {
                line: 1,
                problem: format!("the header must be {}", CSV_HEADER.join(",")),
            });
        }
        let mut usage = Usage::default();
        let mut record = csv::StringRecord::new();
        let mut rows = 0usize;
        loop {
            let line = reader.position().line();
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    return Err(UsageError::Line {
                        line,
                        problem: e.to_string(),
                    })
                }
            }
            if reader.position().byte() > MAX_CSV_BYTES as u64 {
                return Err(UsageError::Invalid(format!(
                    "the CSV is larger than {MAX_CSV_BYTES} bytes"
                )));
            }
            rows += 1;
            if rows > MAX_ROWS {
                return Err(UsageError::Invalid(format!("more than {MAX_ROWS} rows")));
            }
            let bad = |problem: String| UsageError::Line { line, problem };
            let mut values = [0.0f64; 5];
            for (i, v) in values.iter_mut().enumerate() {
                let cell = record[i + 2].trim();
                *v = if cell.is_empty() {
                    0.0
                } else {
                    cell.parse::<f64>().map_err(|_| {
                        bad(format!("{}: not a number: {cell:?}", CSV_HEADER[i + 2]))
                    })?
                };
            }
            let amounts = Amounts {
                cpu_seconds: values[0],
                cpu_request_core_hours: values[1],
                memory_gb_hours: values[2],
                storage_gb_hours: values[3],
                network_gb: values[4],
            };
            let namespace = record[0].trim();
            let node = record[1].trim();
            if namespace.is_empty() {
                if node.is_empty() {
                    return Err(bad("a row needs a namespace, a node or both".into()));
                }
                usage.set_node_cpu(node, amounts.cpu_seconds).map_err(bad)?;
                continue;
            }
            let consumer = match namespace.strip_prefix("bucket:") {
                Some(b) => Consumer::Bucket(b.to_owned()),
                None => Consumer::Namespace(namespace.to_owned()),
            };
            let node = (!node.is_empty()).then(|| node.to_owned());
            usage.add(consumer, node, amounts).map_err(bad)?;
        }
        Ok(usage)
    }

    /// The CSV form of this usage (node totals as rows with an empty namespace).
    pub fn to_csv(&self) -> String {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(CSV_HEADER).expect("writing CSV to memory");
        for ((consumer, node), a) in &self.rows {
            let v = a.values();
            let mut row = vec![consumer.to_string(), node.clone().unwrap_or_default()];
            row.extend(v.iter().map(|x| x.to_string()));
            out.write_record(&row).expect("writing CSV to memory");
        }
        for (node, s) in &self.node_cpu_seconds {
            out.write_record(["", node, &s.to_string(), "0", "0", "0", "0"])
                .expect("writing CSV to memory");
        }
        String::from_utf8(out.into_inner().expect("flush")).expect("UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "namespace,node,cpu_seconds,cpu_request_core_hours,memory_gb_hours,storage_gb_hours,network_gb\n";

    #[test]
    fn reads_rows_buckets_and_node_totals() {
        let text = format!(
            "{HEAD}nc-ecole,node-1,3600,2,100,50,1.5\nnc-ecole,node-1,3600,0,0,0,0\n\
             bucket:ecole-files,,0,0,0,1000,0\n,node-1,90000,,,,\nnc-ecole,,0,0,0,20,0\n"
        );
        let u = Usage::from_csv(text.as_bytes()).unwrap();
        let key = (
            Consumer::Namespace("nc-ecole".into()),
            Some("node-1".into()),
        );
        assert_eq!(u.rows[&key].cpu_seconds, 7200.0);
        assert_eq!(u.rows[&key].network_gb, 1.5);
        let bucket = (Consumer::Bucket("ecole-files".into()), None);
        assert_eq!(u.rows[&bucket].storage_gb_hours, 1000.0);
        assert_eq!(u.node_cpu_seconds["node-1"], 90000.0);
        assert_eq!(u.rows.len(), 3);
        let again = Usage::from_csv(u.to_csv().as_bytes()).unwrap();
        assert_eq!(again, u);
    }

    #[test]
    fn refuses_bad_input() {
        let err = |body: &str| {
            Usage::from_csv(format!("{HEAD}{body}").as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(err("ns,node-1,-1,0,0,0,0\n").contains("line 2: invalid value -1"));
        assert!(err("ns,node-1,NaN,0,0,0,0\n").contains("invalid value NaN"));
        assert!(err("ns,node-1,inf,0,0,0,0\n").contains("invalid value inf"));
        assert!(err("ns,node-1,1e300,0,0,0,0\n").contains("invalid value"));
        assert!(err("ns,node-1,abc,0,0,0,0\n").contains("not a number"));
        assert!(err("NS,node-1,1,0,0,0,0\n").contains("invalid namespace"));
        assert!(err("ns,Node 1,1,0,0,0,0\n").contains("invalid node"));
        assert!(err("bucket:x,,1,0,0,0,0\n").contains("invalid bucket"));
        assert!(err(",,1,0,0,0,0\n").contains("needs a namespace"));
        assert!(err("ns,node-1,1,0,0,0\n").contains("line 2"));
        let wrong = Usage::from_csv("a,b\n1,2\n".as_bytes()).unwrap_err();
        assert!(wrong.to_string().contains("the header must be"));
    }
}
