//! Running sources: one run of one organisation's source (a full
//! reconciliation when one is due or asked for, else the events since the
//! cursor), the state it records, its metrics, and the loop `liaison serve`
//! runs over every source.
//!
//! On PostgreSQL a source is followed by one process at a time: a run holds the
//! advisory lock [`lock_key`] of its organisation; the other processes skip it.
//! A failed run records its error and leaves the cursor where it was; the next
//! run starts from there, after a backoff that grows while the failures last.

use crate::dir::Target;
use crate::follow::{self, Cursor, Followed};
use crate::keycloak::{Bounds, Keycloak, KeycloakConfig, KeycloakError};
use crate::sync::{self, Options, Progress, Report, SyncError};
use crate::HttpLimits;
use directory::Directory;
use outbound::Url;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::{Source, SourceProgress, SourceRecord, Store};
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// Margin taken off the cursors a full reconciliation starts (ms): events of
/// that window are read again (applying is idempotent), so a clock running
/// ahead of Keycloak's loses nothing.
pub const START_MARGIN_MS: i64 = 60_000;

/// The advisory lock of an organisation's source.
pub fn lock_key(org_id: i64) -> i64 {
    0x4c53_5352_0000_0000 | (org_id & 0xffff_ffff)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// `full` or `follow`.
    pub mode: String,
    /// `ok`, `error`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrgLabels {
    pub org: String,
}

/// The sources' metrics (registered by the server with the others).
#[derive(Clone, Default)]
pub struct SourceMetrics {
    pub runs: Family<RunLabels, Counter>,
    pub changes: Family<OrgLabels, Counter>,
    pub events: Family<OrgLabels, Counter>,
    pub last_success: Family<OrgLabels, Gauge>,
}

impl SourceMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "source_runs",
            "Runs of the directory sources by mode (full, follow) and outcome",
            self.runs.clone(),
        );
        registry.register(
            "source_changes",
            "Directory changes applied from a source",
            self.changes.clone(),
        );
        registry.register(
            "source_events",
            "Keycloak events read by a source's follower",
            self.events.clone(),
        );
        registry.register(
            "source_last_success_timestamp_seconds",
            "When a source's last successful run ended",
            self.last_success.clone(),
        );
    }

    fn run(&self, mode: &str, ok: bool) {
        self.runs
            .get_or_create(&RunLabels {
                mode: mode.into(),
                outcome: if ok { "ok" } else { "error" }.into(),
            })
            .inc();
    }
}

/// Why a source cannot be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the source is misconfigured: {0}")]
    Config(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl From<KeycloakError> for RunError {
    fn from(e: KeycloakError) -> Self {
        RunError::Sync(SyncError::Keycloak(e))
    }
}

impl From<store::StoreError> for RunError {
    fn from(e: store::StoreError) -> Self {
        RunError::Sync(SyncError::Store(e))
    }
}

/// Builds the client of a source, reading its secret now.
pub fn client(
    record: &SourceRecord,
    bounds: Bounds,
    limits: HttpLimits,
) -> Result<Keycloak, RunError> {
    let base_url =
        Url::parse(&record.base_url).map_err(|e| RunError::Config(format!("url: {e}")))?;
    let client_secret = provision::registry::read_credential(&record.credential)
        .map_err(|e| RunError::Config(e.to_string()))?;
    Keycloak::new(
        KeycloakConfig {
            base_url,
            realm: record.realm.clone(),
            client_id: record.client_id.clone(),
            client_secret,
        },
        bounds,
        limits,
    )
    .map_err(RunError::from)
}

/// What a run did.
#[derive(Debug)]
pub enum Ran {
    Full(Report),
    Followed {
        events: usize,
        applied: usize,
        errors: Vec<String>,
    },
}

/// Runs sources and records what they did.
#[derive(Clone)]
pub struct Runner {
    store: Store,
    directory: Directory,
    metrics: SourceMetrics,
    bounds: Bounds,
    limits: HttpLimits,
    /// Clients by organisation, with the configuration they were built from
    /// (their tokens are reused between runs).
    clients: Arc<Mutex<Clients>>,
}

/// Clients by organisation, with the configuration each was built from.
type Clients = HashMap<i64, (SourceRecord, Arc<Keycloak>)>;

impl Runner {
    pub fn new(directory: Directory, metrics: SourceMetrics) -> Runner {
        Runner {
            store: directory.store().clone(),
            directory,
            metrics,
            bounds: Bounds::default(),
            limits: HttpLimits::default(),
            clients: Arc::default(),
        }
    }

    /// Other bounds (tests read in small pages).
    pub fn with_bounds(mut self, bounds: Bounds, limits: HttpLimits) -> Runner {
        self.bounds = bounds;
        self.limits = limits;
        self
    }

    async fn client_for(&self, record: &SourceRecord) -> Result<Arc<Keycloak>, RunError> {
        let mut clients = self.clients.lock().await;
        if let Some((r, c)) = clients.get(&record.org_id) {
            if r == record {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(client(record, self.bounds, self.limits)?);
        clients.insert(record.org_id, (record.clone(), c.clone()));
        Ok(c)
    }

    /// Metrics labels: the organisation's slug (its id if it cannot be read).
    async fn label(&self, org_id: i64) -> OrgLabels {
        let org = match self.store.org_by_id(org_id).await {
            Ok(Some(o)) => o.slug,
            _ => org_id.to_string(),
        };
        OrgLabels { org }
    }

    async fn forget_client(&self, org_id: i64) {
        self.clients.lock().await.remove(&org_id);
    }

    fn target(&self, org_id: i64) -> Target<'_> {
        Target {
            directory: &self.directory,
            org_id,
        }
    }

    /// A full reconciliation of one organisation's source, now. A dry run
    /// records nothing; a real one records the cursors it started from.
    pub async fn full_sync(
        &self,
        source: &Source,
        dry_run: bool,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Report, RunError> {
        let org_id = source.config.org_id;
        let started = OffsetDateTime::now_utc();
        let start_ms = (started.unix_timestamp_nanos() / 1_000_000) as i64 - START_MARGIN_MS;
        let outcome = async {
            let kc = self.client_for(&source.config).await?;
            let options = Options {
                dry_run,
                adopt: source.config.adopt,
                groups_only: false,
            };
            Ok::<_, RunError>(sync::reconcile(&kc, self.target(org_id), options, progress).await?)
        }
        .await;
        if dry_run {
            return outcome;
        }
        let now = OffsetDateTime::now_utc();
        let label = self.label(org_id).await;
        match &outcome {
            Ok(report) => {
                self.metrics.run("full", report.errors.is_empty());
                self.metrics
                    .changes
                    .get_or_create(&label)
                    .inc_by(report.applied as u64);
                // The cursors move to the start of this run unless they are
                // already past it (events since then are read next).
                let cursor = |c: Option<i64>| Some(c.map_or(start_ms, |c| c.max(start_ms)));
                let progress = SourceProgress {
                    admin_cursor: cursor(source.state.admin_cursor),
                    event_cursor: cursor(source.state.event_cursor),
                    seen_events: source.state.seen_events.clone(),
                    applied: report.applied as i64,
                    full: Some((report.realm_users as i64, report.realm_groups as i64)),
                };
                self.store
                    .record_source_progress(org_id, &progress, now)
                    .await?;
                if let Some(first) = report.errors.first() {
                    let msg = format!(
                        "{} change(s) refused by the directory; first: {first}",
                        report.errors.len()
                    );
                    self.store.record_source_error(org_id, &msg, 0, now).await?;
                } else {
                    self.metrics
                        .last_success
                        .get_or_create(&label)
                        .set(now.unix_timestamp());
                }
            }
            Err(e) => {
                self.metrics.run("full", false);
                self.failed(org_id, e, now).await;
            }
        }
        outcome
    }

    async fn failed(&self, org_id: i64, e: &RunError, now: OffsetDateTime) {
        if matches!(
            e,
            RunError::Config(_) | RunError::Sync(SyncError::Keycloak(KeycloakError::Auth(_)))
        ) {
            // A changed secret or configuration is read again next time.
            self.forget_client(org_id).await;
        }
        if let Err(err) = self
            .store
            .record_source_error(org_id, &e.to_string(), 0, now)
            .await
        {
            tracing::warn!(org_id, error = %err, "cannot record the source's error");
        }
    }

    /// One run of a source: a full reconciliation when none was done yet, one
    /// was asked for, or the interval has passed; else the events since the
    /// cursor (or a full reconciliation when they are too many).
    pub async fn run_once(&self, source: &Source) -> Result<Ran, RunError> {
        let s = &source.state;
        let now = OffsetDateTime::now_utc();
        let due = match (s.last_full_sync, s.admin_cursor, s.event_cursor) {
            (Some(last), Some(_), Some(_)) => {
                s.full_sync_requested
                    || source.config.adopt
                    || now - last >= time::Duration::seconds(source.config.interval_secs.max(1))
            }
            _ => true,
        };
        if due {
            return self.full_sync(source, false, &|_| {}).await.map(Ran::Full);
        }
        let cursor = Cursor {
            admin: s.admin_cursor.unwrap_or_default(),
            user: s.event_cursor.unwrap_or_default(),
            seen: s.seen_events.clone(),
        };
        let org_id = source.config.org_id;
        let outcome = async {
            let kc = self.client_for(&source.config).await?;
            Ok::<_, RunError>(follow::follow(&kc, self.target(org_id), &cursor).await?)
        }
        .await;
        let now = OffsetDateTime::now_utc();
        let label = self.label(org_id).await;
        match outcome {
            Ok(Followed::NeedsFull(why)) => {
                tracing::info!(org_id, reason = %why, "source: full reconciliation instead of events");
                self.full_sync(source, false, &|_| {}).await.map(Ran::Full)
            }
            Ok(Followed::Applied {
                cursor,
                events,
                applied,
                errors,
            }) => {
                self.metrics.run("follow", errors.is_empty());
                self.metrics
                    .events
                    .get_or_create(&label)
                    .inc_by(events as u64);
                self.metrics
                    .changes
                    .get_or_create(&label)
                    .inc_by(applied as u64);
                let progress = SourceProgress {
                    admin_cursor: Some(cursor.admin),
                    event_cursor: Some(cursor.user),
                    seen_events: cursor.seen,
                    applied: applied as i64,
                    full: None,
                };
                self.store
                    .record_source_progress(org_id, &progress, now)
                    .await?;
                if let Some(first) = errors.first() {
                    let msg = format!(
                        "{} change(s) refused by the directory; first: {first}",
                        errors.len()
                    );
                    self.store.record_source_error(org_id, &msg, 0, now).await?;
                } else {
                    self.metrics
                        .last_success
                        .get_or_create(&label)
                        .set(now.unix_timestamp());
                }
                Ok(Ran::Followed {
                    events,
                    applied,
                    errors,
                })
            }
            Err(e) => {
                self.metrics.run("follow", false);
                self.failed(org_id, &e, now).await;
                Err(e)
            }
        }
    }

    /// Runs every source every `tick` until `shutdown` turns true. A source
    /// whose run failed waits (tick × 2^failures, at most ten minutes) before
    /// the next one.
    pub async fn run_periodic(
        self,
        tick: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        if tick.is_zero() {
            return;
        }
        tracing::info!(tick_secs = tick.as_secs(), "source follower started");
        let mut failures: HashMap<i64, (u32, tokio::time::Instant)> = HashMap::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.store.list_sources().await {
                Ok(sources) => {
                    for source in sources {
                        if *shutdown.borrow() {
                            break;
                        }
                        let org_id = source.config.org_id;
                        if failures
                            .get(&org_id)
                            .is_some_and(|(_, until)| *until > tokio::time::Instant::now())
                        {
                            continue;
                        }
                        let lock = match self.store.try_advisory_lock(lock_key(org_id)).await {
                            Ok(Some(lock)) => lock,
                            Ok(None) => continue,
                            Err(e) => {
                                tracing::warn!(org_id, error = %e, "cannot take the source's lock");
                                continue;
                            }
                        };
                        // Read again under the lock: another process may have
                        // moved the cursor meanwhile.
                        let fresh = match self.store.source(org_id).await {
                            Ok(Some(s)) => s,
                            _ => continue,
                        };
                        match self.run_once(&fresh).await {
                            Ok(ran) => {
                                failures.remove(&org_id);
                                log_ran(org_id, &ran);
                            }
                            Err(e) => {
                                let n = failures.get(&org_id).map_or(0, |(n, _)| *n) + 1;
                                let wait = (tick * 2u32.saturating_pow(n.min(16)))
                                    .min(Duration::from_secs(600));
                                failures.insert(org_id, (n, tokio::time::Instant::now() + wait));
                                tracing::warn!(org_id, error = %e, retry_in_secs = wait.as_secs(), "source run failed");
                            }
                        }
                        if let Err(e) = lock.release().await {
                            tracing::warn!(org_id, error = %e, "releasing the source's lock failed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list the sources"),
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!("source follower stopped");
    }
}

fn log_ran(org_id: i64, ran: &Ran) {
    match ran {
        Ran::Full(r) => tracing::info!(
            org_id,
            users = r.realm_users,
            groups = r.realm_groups,
            changes = r.changes.len(),
            errors = r.errors.len(),
            skipped = r.skipped.len(),
            "source: full reconciliation"
        ),
        Ran::Followed {
            events,
            applied,
            errors,
        } if *events > 0 => tracing::info!(
            org_id,
            events,
            applied,
            errors = errors.len(),
            "source: events applied"
        ),
        Ran::Followed { .. } => {}
    }
}
