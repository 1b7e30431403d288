//! The outbox worker: leases due deliveries, runs them against the apps, and
//! records the outcome: done, retry later (exponential backoff with jitter), or
//! poison (after `max_attempts` transient failures, or at once for a permanent
//! error or a collision), with the error kept for operators (bounded, see
//! [`DeliveryError::report`]). A collision is recorded as such on the link
//! (status `collision`) and counted apart in the metrics.
//!
//! Several workers, in one process or many, can run on one PostgreSQL database:
//! leases are taken with `FOR UPDATE SKIP LOCKED`. Leases are short
//! ([`WorkerConfig::lease`], 15 s) and each worker renews the leases of the rows
//! it holds every third of that while it works (its heartbeat, one statement),
//! so a delivery may take as long as it needs, and a worker that dies (killed,
//! its machine lost) stops renewing: its rows are taken again by the others
//! within one lease. A worker started with [`WorkerConfig::reclaim_at_start`]
//! (`serve` on SQLite, where one process owns the file) takes back at once
//! the rows its earlier incarnations held. A worker that is
//! stopped ([`Worker::run_until_drained`]) starts no new delivery, lets the
//! running ones finish for a while, and hands back every row it still holds,
//! so that the others take them at once.

use crate::deliver::deliver;
use crate::registry::connector_for;
use crate::{Connector, DeliveryError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::{AppRecord, Delivery, Store};
use time::OffsetDateTime;
use tokio::sync::{watch, Mutex, Notify};

/// Tuning of a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Rows leased per round: twice `concurrency` by default, so a round ends
    /// well within its lease.
    pub batch: i64,
    /// Deliveries run at once.
    pub concurrency: usize,
    /// How long a lease lasts without renewal; the worker renews the leases it
    /// holds every third of this, so a worker that died holds its rows at most
    /// this long after its last renewal.
    pub lease: Duration,
    /// What kind of process the worker runs in (`serve`, `cli`...): the prefix
    /// of its lease names.
    pub role: &'static str,
    /// Take back, when [`Worker::run`] starts, the rows that earlier workers of
    /// the same `role` leased (see [`store::Store::reclaim_leases`]). Only for a
    /// role of which one worker runs at a time on the database (`serve` on
    /// SQLite).
    pub reclaim_at_start: bool,
    /// Transient failures before a delivery is parked as poison.
    pub max_attempts: i64,
    /// First retry delay; doubled at each failure, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Sleep between rounds when nothing is due (a local change wakes the worker
    /// at once through [`Worker::notifier`]).
    pub idle_poll: Duration,
    /// How long a built connector (and the secret it read) is reused.
    pub connector_ttl: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch: 16,
            concurrency: 8,
            lease: Duration::from_secs(15),
            role: "worker",
            reclaim_at_start: false,
            max_attempts: 12,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
            idle_poll: Duration::from_millis(500),
            connector_ttl: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub app: String,
    /// `ok`, `retry`, `poison`, `collision`.
    pub result: String,
}

/// Counters a worker updates; register them where metrics are served.
#[derive(Clone, Default)]
pub struct WorkerMetrics {
    pub deliveries: Family<DeliveryLabels, Counter>,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub delivered: usize,
    pub retried: usize,
    pub poisoned: usize,
}

impl Round {
    pub fn total(&self) -> usize {
        self.delivered + self.retried + self.poisoned
    }
}

struct CachedConnector {
    app: AppRecord,
    conn: Arc<dyn Connector>,
    built: tokio::time::Instant,
}

/// An outbox worker.
pub struct Worker {
    store: Store,
    config: WorkerConfig,
    metrics: WorkerMetrics,
    connectors: Mutex<HashMap<i64, CachedConnector>>,
    wake: Arc<Notify>,
    /// Rows leased and not yet settled, by id: handed back when the worker stops.
    held: std::sync::Mutex<HashMap<i64, Delivery>>,
    /// Set when the worker drains: no delivery starts any more.
    stopping: AtomicBool,
    /// Unique to this worker: its leases are named after it.
    incarnation: String,
    claims: AtomicU64,
}

impl Worker {
    pub fn new(store: Store, config: WorkerConfig, metrics: WorkerMetrics) -> Arc<Worker> {
        Arc::new(Worker {
            store,
            config,
            metrics,
            connectors: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            held: std::sync::Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            incarnation: format!("{:016x}", rand::thread_rng().gen::<u64>()),
            claims: AtomicU64::new(0),
        })
    }

    /// The rows this worker has leased and not settled yet.
    pub fn held_count(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Notify it after committing a change to deliver it without waiting for the
    /// next poll.
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs rounds until `shutdown` turns true. Store errors are logged and
    /// retried after a pause: the worker never gives up.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        tracing::info!("outbox worker started");
        if self.config.reclaim_at_start {
            match self
                .store
                .reclaim_leases(self.config.role, &self.incarnation)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deliveries = n,
                    "deliveries leased by an earlier run taken back"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "taking back an earlier run's deliveries failed: they are taken again when their lease expires"
                ),
            }
        }
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pause = match self.round().await {
                Ok(r) if r.total() > 0 => continue,
                Ok(_) => self.config.idle_poll,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox round failed");
                    self.config.idle_poll * 4
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Leases one batch of due deliveries and runs them, renewing the leases
    /// while they run.
    pub async fn round(&self) -> Result<Round, store::StoreError> {
        let claim = self.claims.fetch_add(1, Ordering::Relaxed);
        let lease = store::lease_id(self.config.role, &self.incarnation, claim);
        let batch = self
            .store
            .claim_deliveries(&lease, self.config.batch, self.config.lease)
            .await?;
        if batch.is_empty() {
            return Ok(Round::default());
        }
        self.hold(&batch);
        let work = self.run_batch(batch);
        tokio::pin!(work);
        tokio::select! {
            round = &mut work => round,
            never = self.heartbeat() => match never {},
        }
    }

    /// Renews the leases of the rows held, every third of a lease, forever.
    async fn heartbeat(&self) -> std::convert::Infallible {
        let every = (self.config.lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(every).await;
            let rows: Vec<Delivery> = {
                let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                held.values().cloned().collect()
            };
            renew(&self.store, &rows, self.config.lease).await;
        }
    }

    async fn run_batch(&self, batch: Vec<Delivery>) -> Result<Round, store::StoreError> {
        // Users and groups first, memberships after: a membership needs both
        // ends to exist in the app, and creating them from two deliveries at
        // once would race.
        let (members, resources): (Vec<Delivery>, Vec<Delivery>) = batch
            .into_iter()
            .partition(|d| d.target == store::Target::Member);
        let mut round = Round::default();
        for phase in [resources, members] {
            for o in self.run_concurrently(phase).await {
                match o? {
                    Outcome::Delivered => round.delivered += 1,
                    Outcome::Retry => round.retried += 1,
                    Outcome::Poisoned | Outcome::Collision => round.poisoned += 1,
                }
            }
        }
        Ok(round)
    }

    async fn run_concurrently(
        &self,
        deliveries: Vec<Delivery>,
    ) -> Vec<Result<Outcome, store::StoreError>> {
        use futures_util::StreamExt;
        futures_util::stream::iter(deliveries)
            // Once draining, the rows not started stay held, to be handed back.
            .take_while(|_| std::future::ready(!self.stopping.load(Ordering::SeqCst)))
            .map(|d| async move {
                let outcome = self.run_one(&d).await;
                self.settle(d.id);
                outcome
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await
    }

    /// Runs the worker until `shutdown` turns true, then drains: no delivery
    /// starts any more, the running ones get `drain` to finish, and what is
    /// left (leased but not started, or abandoned at the deadline) is handed
    /// back to the store at once, so that other workers take it over without
    /// waiting for the lease to expire. Deliveries are idempotent: one
    /// abandoned half-way is simply done again.
    pub async fn run_until_drained(
        self: Arc<Self>,
        shutdown: watch::Receiver<bool>,
        drain: Duration,
    ) {
        let mut signal = shutdown.clone();
        {
            let run = self.clone().run(shutdown);
            tokio::pin!(run);
            tokio::select! {
                () = &mut run => {}
                () = async {
                    // Stops as well when the sender is gone.
                    let _ = signal.wait_for(|stop| *stop).await;
                } => {
                    self.stopping.store(true, Ordering::SeqCst);
                    if tokio::time::timeout(drain, &mut run).await.is_err() {
                        tracing::warn!(
                            drain_secs = drain.as_secs_f64(),
                            "deliveries still running at the drain deadline: abandoned"
                        );
                    }
                }
            }
        }
        self.release_held().await;
    }

    fn hold(&self, batch: &[Delivery]) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.extend(batch.iter().map(|d| (d.id, d.clone())));
    }

    fn settle(&self, id: i64) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&id);
    }

    /// Hands back every row still held.
    async fn release_held(&self) {
        let rows: Vec<Delivery> = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.drain().map(|(_, d)| d).collect()
        };
        if rows.is_empty() {
            return;
        }
        match self.store.release_deliveries(&rows).await {
            Ok(()) => tracing::info!(deliveries = rows.len(), "leased deliveries handed back"),
            Err(e) => tracing::warn!(
                error = %e,
                deliveries = rows.len(),
                "handing back leased deliveries failed: they are taken again when their lease expires"
            ),
        }
    }

    /// Runs rounds until nothing is due (deliveries waiting for a later retry
    /// are left). For the CLI and tests.
    pub async fn drain(&self) -> Result<Round, store::StoreError> {
        let mut total = Round::default();
        loop {
            let r = self.round().await?;
            if r.total() == 0 {
                return Ok(total);
            }
            total.delivered += r.delivered;
            total.retried += r.retried;
            total.poisoned += r.poisoned;
        }
    }

    async fn connector(
        &self,
        app_id: i64,
    ) -> Result<Option<(AppRecord, Arc<dyn Connector>)>, DeliveryError> {
        let mut cache = self.connectors.lock().await;
        if let Some(c) = cache.get(&app_id) {
            if c.built.elapsed() < self.config.connector_ttl {
                return Ok(Some((c.app.clone(), c.conn.clone())));
            }
        }
        let Some(app) = self
            .store
            .app_by_id(app_id)
            .await
            .map_err(|e| DeliveryError::Transient(format!("store: {e}")))?
        else {
            cache.remove(&app_id);
            return Ok(None);
        };
        let conn = connector_for(&app)?;
        cache.insert(
            app_id,
            CachedConnector {
                app: app.clone(),
                conn: conn.clone(),
                built: tokio::time::Instant::now(),
            },
        );
        Ok(Some((app, conn)))
    }

    async fn run_one(&self, d: &Delivery) -> Result<Outcome, store::StoreError> {
        let (app_name, result) = match self.connector(d.app_id).await {
            // The app was removed: its rows went with it.
            Ok(None) => return Ok(Outcome::Delivered),
            Ok(Some((app, conn))) => {
                let r = deliver(&self.store, conn.as_ref(), &app, d).await;
                (app.name, r)
            }
            Err(e) => (format!("app-{}", d.app_id), Err(e)),
        };
        let attempts = d.attempts + 1;
        let outcome = record_outcome(
            &self.store,
            d,
            &app_name,
            result,
            self.config.max_attempts,
            self.backoff(attempts),
        )
        .await?;
        let result = match outcome {
            Outcome::Delivered => "ok",
            Outcome::Retry => "retry",
            Outcome::Poisoned => "poison",
            Outcome::Collision => "collision",
        };
        self.metrics
            .deliveries
            .get_or_create(&DeliveryLabels {
                app: app_name,
                result: result.into(),
            })
            .inc();
        Ok(outcome)
    }

    fn backoff(&self, attempts: i64) -> Duration {
        backoff(self.config.base_backoff, self.config.max_backoff, attempts)
    }
}

async fn renew(store: &Store, rows: &[Delivery], lease: Duration) {
    if let Err(e) = store.renew_leases(rows, lease).await {
        tracing::warn!(error = %e, deliveries = rows.len(), "renewing leases failed");
    }
}

/// Runs `work` while renewing the leases of `rows` every third of `lease`
/// (rows settled meanwhile are no longer renewed: their lease is gone).
pub(crate) async fn with_heartbeat<F: std::future::Future>(
    store: &Store,
    rows: &[Delivery],
    lease: Duration,
    work: F,
) -> F::Output {
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => out,
        never = beat(store, rows, lease) => match never {},
    }
}

async fn beat(store: &Store, rows: &[Delivery], lease: Duration) -> std::convert::Infallible {
    let every = (lease / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        renew(store, rows, lease).await;
    }
}

/// `base * 2^(attempts-1)`, capped at `max`, times a random factor in [0.5, 1).
pub(crate) fn backoff(base: Duration, max: Duration, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let raw = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    raw.mul_f64(rand::thread_rng().gen_range(0.5..1.0))
}

/// Records how a delivery went: the row goes when it succeeded; after a
/// failure it is retried after `backoff`, or parked as poison (at once for an
/// error that is not transient, or at the `max_attempts`-th failure), and the
/// link of a user or group says so.
pub(crate) async fn record_outcome(
    store: &Store,
    d: &Delivery,
    app_name: &str,
    result: Result<(), DeliveryError>,
    max_attempts: i64,
    backoff: Duration,
) -> Result<Outcome, store::StoreError> {
    let e = match result {
        Ok(()) => {
            store.complete_delivery(d).await?;
            return Ok(Outcome::Delivered);
        }
        Err(e) => e,
    };
    let attempts = d.attempts + 1;
    let poison = !e.is_transient() || attempts >= max_attempts;
    let retry_at = (!poison).then(|| OffsetDateTime::now_utc() + backoff);
    // The message may name the person: it goes to the outbox
    // (`liaison outbox`), the log has Liaison's ids only.
    tracing::warn!(
        app = %app_name, target = d.target.as_str(), resource = %d.resource_id,
        attempts, poison, error = e.kind(), "delivery failed"
    );
    let recorded = e.report();
    store.fail_delivery(d, &recorded, retry_at).await?;
    let status = if e.is_collision() {
        crate::deliver::STATUS_COLLISION
    } else if poison {
        "failed"
    } else {
        "retrying"
    };
    if d.target != store::Target::Member {
        store
            .record_link(
                d.app_id,
                &d.resource_id,
                None,
                None,
                status,
                Some(&recorded),
            )
            .await?;
    }
    Ok(if e.is_collision() {
        Outcome::Collision
    } else if poison {
        Outcome::Poisoned
    } else {
        Outcome::Retry
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    Retry,
    Poisoned,
    /// The app holds an account Liaison did not create (parked like poison).
    Collision,
}
