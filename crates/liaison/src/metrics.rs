//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The matched route template (`/o/{org}/scim/v2/{resource}`), never the raw
    /// path, so organisations and ids do not multiply series.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabels {
    pub org: String,
    pub app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    /// `idp:keycloak` or an app's name.
    pub source: String,
    /// recorded, repeated, late, unauthorized, malformed.
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RequestLabels, Histogram>,
    pub worker: provision::worker::WorkerMetrics,
    pub outbox_pending: Family<AppLabels, Gauge>,
    pub outbox_poisoned: Family<AppLabels, Gauge>,
    pub outbox_oldest_age: Family<AppLabels, Gauge<f64, AtomicU64>>,
    pub meter_signals: Family<SignalLabels, Counter>,
    /// The directory sources' runs, changes and events.
    pub source: source::SourceMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("liaison");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        let worker = provision::worker::WorkerMetrics::default();
        registry.register(
            "deliveries",
            "Outbox deliveries by app and result (ok, retry, poison)",
            worker.deliveries.clone(),
        );
        let outbox_pending = Family::<AppLabels, Gauge>::default();
        let outbox_poisoned = Family::<AppLabels, Gauge>::default();
        let outbox_oldest_age = Family::<AppLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "outbox_pending",
            "Deliveries waiting in the outbox",
            outbox_pending.clone(),
        );
        registry.register(
            "outbox_poisoned",
            "Deliveries parked after repeated or permanent failures",
            outbox_poisoned.clone(),
        );
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending delivery",
            outbox_oldest_age.clone(),
        );
        let meter_signals = Family::<SignalLabels, Counter>::default();
        registry.register(
            "meter_signals",
            "Activity signals by source and outcome (no person, no organisation)",
            meter_signals.clone(),
        );
        let source = source::SourceMetrics::default();
        source.register(&mut registry);
        Metrics {
            source,
            meter_signals,
            registry,
            requests,
            latency,
            worker,
            outbox_pending,
            outbox_poisoned,
            outbox_oldest_age,
        }
    }

    /// Sets the outbox gauges from fresh figures (apps that disappeared vanish).
    pub fn set_outbox(&self, stats: &[store::OutboxStats]) {
        self.outbox_pending.clear();
        self.outbox_poisoned.clear();
        self.outbox_oldest_age.clear();
        let now = time::OffsetDateTime::now_utc();
        for s in stats {
            let labels = AppLabels {
                org: s.org_slug.clone(),
                app: s.app_name.clone(),
            };
            self.outbox_pending.get_or_create(&labels).set(s.pending);
            self.outbox_poisoned.get_or_create(&labels).set(s.poisoned);
            let age = s
                .oldest_pending
                .map(|t| (now - t).as_seconds_f64().max(0.0))
                .unwrap_or(0.0);
            self.outbox_oldest_age.get_or_create(&labels).set(age);
        }
    }

    /// Counts one signal (or one refused request) of `source`.
    pub fn meter_signal(&self, source: &str, outcome: &str) {
        self.meter_signals
            .get_or_create(&SignalLabels {
                source: source.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts what became of a batch of signals.
    pub fn meter_ingested(&self, source: &str, got: &crate::metering::Ingested) {
        for (outcome, n) in [
            ("recorded", got.recorded),
            ("repeated", got.repeated),
            ("late", got.late),
        ] {
            self.meter_signals
                .get_or_create(&SignalLabels {
                    source: source.to_owned(),
                    outcome: outcome.to_owned(),
                })
                .inc_by(n);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
