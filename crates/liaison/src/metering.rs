//! Activity metering, tying `meter` (pure rules) to the store: activity signals
//! become keyed hashes in the open period they fall in; periods close into
//! counts; counts become statements and draft invoices.
//!
//! What is kept about a person, and for how long, is in docs/PRIVACY.md. In
//! short: during an open period, HMAC-SHA256(period key, person id) once per
//! source; at close, the counts only. The period key is stored sealed under the
//! key-encryption key ([`load_kek`]), which the database never holds. The
//! subject, user name and time of a signal are used to find the period and the
//! person and are then dropped: they are neither stored nor logged. A
//! process-local cache of keyed hashes (keyed with the same period key) spares
//! the database repeated signals; it is bounded in size, and a period leaves
//! it, key and hashes, when it closes: at once in the process that closes it or
//! records for it, within a minute (the periodic tick's [`Metering::refresh`])
//! in every other process.

use crate::config::{Config, DokosSettings, MeteringConfig};
use meter::dokos::{DokosConfig, DokosError};
use meter::keyed::{person_hash, Kek, PeriodKey};
use meter::period::Period;
use meter::pricing::Pricing;
use meter::statement::Statement;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{ClosedCounts, Org, OrgProfile, PeriodKeyState, Store, StoreError};
use time::OffsetDateTime;

/// The source name of identity-provider events. An app's source is its name,
/// which cannot contain `:` (`service::types::AppName`), so no app can take
/// this one, whatever it is called (an app named `keycloak` counts apart).
pub const KEYCLOAK: &str = "idp:keycloak";

/// How far in the future a signal's own time may be before it is taken as
/// "now" (clock skew between the identity provider and Liaison).
const MAX_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// Entries of the process-local cache of one period before it is emptied.
const CACHE_LIMIT: usize = 500_000;

/// One activity signal: someone was active, per the identity provider or an app.
#[derive(Debug, Clone)]
pub struct Signal {
    /// The identity provider's subject (Keycloak user id), or, when `resolved`,
    /// the person id itself.
    pub subject: String,
    /// The login name, to find the person when the subject is unknown.
    pub username: Option<String>,
    /// When, milliseconds since the epoch; `None` = now.
    pub at_ms: Option<i64>,
    /// `subject` is already the person id (app polling maps accounts itself).
    pub resolved: bool,
}

/// What became of a batch of signals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Ingested {
    /// Newly recorded (a person not yet seen from this source in the period).
    pub recorded: u64,
    /// Already recorded earlier in the period.
    pub repeated: u64,
    /// For a period already closed (or past its grace): dropped.
    pub late: u64,
}

impl std::ops::AddAssign for Ingested {
    fn add_assign(&mut self, o: Ingested) {
        self.recorded += o.recorded;
        self.repeated += o.repeated;
        self.late += o.late;
    }
}

/// An error of the metering service.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("Dokos: {0}")]
    Dokos(#[from] DokosError),
    /// The key-encryption key is missing, or does not open a stored period
    /// key: nothing is recorded (a new key would count people twice).
    #[error("metering key-encryption key: {0}")]
    Kek(String),
}

/// Signals of one period: the keyed hashes of people to record, and the cache
/// markers (keyed hashes of source and subject) they settle.
type Batch = (Vec<[u8; 32]>, Vec<[u8; 32]>);

struct OpenPeriod {
    /// Wiped from memory when the last holder drops it.
    key: Arc<PeriodKey>,
    /// The key as stored (sealed): a different one means the period was
    /// closed and opened again.
    stored: Vec<u8>,
    /// Keyed hashes of (source, subject) already recorded.
    seen: HashSet<[u8; 32]>,
}

/// The metering service. Cheap to share behind an `Arc`.
pub struct Metering {
    store: Store,
    config: MeteringConfig,
    pricing: Pricing,
    open: Mutex<HashMap<(i64, String), OpenPeriod>>,
    /// Seals and opens period keys; `None` when none is configured (nothing
    /// can be recorded then).
    kek: Option<Kek>,
}

impl Metering {
    pub fn new(
        store: Store,
        config: MeteringConfig,
        pricing: Pricing,
        kek: Option<Kek>,
    ) -> Metering {
        Metering {
            store,
            config,
            pricing,
            open: Mutex::new(HashMap::new()),
            kek,
        }
    }

    fn kek(&self) -> Result<&Kek, MeterError> {
        self.kek.as_ref().ok_or_else(|| {
            MeterError::Kek(
                "none is configured (metering.kek_file): activity cannot be recorded".into(),
            )
        })
    }

    /// Opens a stored (sealed) period key.
    fn open_key(&self, org_id: i64, label: &str, stored: &[u8]) -> Result<PeriodKey, MeterError> {
        self.kek()?.open(stored, org_id, label).map_err(|e| {
            MeterError::Kek(format!(
                "period {label} of organisation {org_id}: {e}; metering.kek_file must be the \
                 key-encryption key the open periods were sealed with (nothing was recorded)"
            ))
        })
    }

    /// Seals the keys of open periods still stored in clear (written by a
    /// version before sealing), then scrubs the replaced keys from the
    /// database files. Returns how many were sealed.
    pub async fn seal_clear_keys(&self) -> Result<usize, MeterError> {
        let clear = self.store.clear_period_keys().await?;
        if clear.is_empty() {
            return Ok(0);
        }
        let kek = self.kek()?;
        let mut sealed = 0;
        for (org_id, label, bytes) in clear {
            let Some(key) = PeriodKey::from_slice(&bytes) else {
                continue;
            };
            let wrapped = kek.seal(&key, org_id, &label);
            let done = self
                .store
                .seal_period_key(org_id, &label, &bytes, &wrapped)
                .await;
            drop(PeriodKey::from_vec(bytes));
            if done? {
                sealed += 1;
            }
        }
        self.store.scrub_period_keys().await;
        Ok(sealed)
    }

    /// What `serve` runs before it starts: seals keys still stored in clear,
    /// and checks that the key-encryption key opens the key of every open
    /// period, so that a wrong one stops the process with a clear error
    /// rather than failing at each event.
    pub async fn prepare(&self) -> Result<(), MeterError> {
        let sealed = self.seal_clear_keys().await?;
        if sealed > 0 {
            tracing::info!(periods = sealed, "period keys stored in clear sealed");
        }
        let open = self.store.open_period_keys().await?;
        if self.kek.is_none() {
            if !open.is_empty() {
                tracing::warn!(
                    periods = open.len(),
                    "no metering key-encryption key: activity in the open periods cannot be recorded"
                );
            }
            return Ok(());
        }
        for (org_id, label, stored) in open {
            self.open_key(org_id, &label, &stored)?;
        }
        Ok(())
    }

    pub fn pricing(&self) -> &Pricing {
        &self.pricing
    }

    /// Parses a period label of the configured kind (`2026-11` by default).
    pub fn period(&self, label: &str) -> Result<Period, MeterError> {
        Period::parse(self.config.period, label).map_err(|e| {
            MeterError::Invalid(format!(
                "{label} is not a {:?} period: {e}",
                self.config.period
            ))
        })
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.config.grace_hours.saturating_mul(3600))
    }

    /// The key of an open period (opening it with a fresh random key if
    /// needed); `None` when it is closed. `known` is the period's state as just
    /// read by the caller; otherwise it is read here. Either way the state comes
    /// from the store once per batch, so that a period closed by another
    /// process is seen at once and its cache dropped.
    async fn key(
        &self,
        org_id: i64,
        period: &Period,
        known: Option<PeriodKeyState>,
    ) -> Result<Option<Arc<PeriodKey>>, MeterError> {
        let label = period.label();
        let mut state = match known {
            Some(state) => state,
            None => self.store.period_key(org_id, &label).await?,
        };
        if matches!(&state, PeriodKeyState::Open(k) if k.len() == 32) {
            // Stored in clear by an earlier version: sealed first.
            self.seal_clear_keys().await?;
            state = self.store.period_key(org_id, &label).await?;
        }
        let state = match state {
            PeriodKeyState::Absent => {
                let fresh = PeriodKey::random();
                let sealed = self.kek()?.seal(&fresh, org_id, &label);
                self.store
                    .open_period(
                        org_id,
                        &label,
                        period.start_micros(),
                        period.end_micros(),
                        &sealed,
                    )
                    .await?
            }
            other => other,
        };
        let PeriodKeyState::Open(stored) = state else {
            self.forget(org_id, &label);
            return Ok(None);
        };
        let id = (org_id, label);
        if let Some(p) = self.open.lock().expect("cache lock").get(&id) {
            if p.stored == stored {
                return Ok(Some(p.key.clone()));
            }
        }
        let key = Arc::new(self.open_key(org_id, &id.1, &stored)?);
        // Kept while the stored key is the same; a period closed and reopened
        // elsewhere (a forced close) starts again with an empty cache.
        let mut open = self.open.lock().expect("cache lock");
        let entry = match open.entry(id) {
            Entry::Occupied(e) if e.get().stored == stored => e.into_mut(),
            Entry::Occupied(mut e) => {
                e.insert(OpenPeriod {
                    key,
                    stored,
                    seen: HashSet::new(),
                });
                e.into_mut()
            }
            Entry::Vacant(e) => e.insert(OpenPeriod {
                key,
                stored,
                seen: HashSet::new(),
            }),
        };
        Ok(Some(entry.key.clone()))
    }

    /// Checks the cached periods against the store and drops every one that
    /// is closed (or was closed and opened again with another key), with its
    /// key (wiped from memory) and its cached hashes. Another process (the
    /// command line, or the `serve` that closes due periods) may have closed
    /// it: [`Metering::run_periodic`] calls this at every tick, so a closed
    /// period leaves every process's memory within a tick. Returns how many
    /// periods were dropped.
    pub async fn refresh(&self) -> Result<usize, MeterError> {
        if self.open.lock().expect("cache lock").is_empty() {
            return Ok(0);
        }
        let stored: HashMap<(i64, String), Vec<u8>> = self
            .store
            .open_period_keys()
            .await?
            .into_iter()
            .map(|(org, label, key)| ((org, label), key))
            .collect();
        let mut open = self.open.lock().expect("cache lock");
        let before = open.len();
        open.retain(|id, p| stored.get(id).is_some_and(|stored| *stored == p.stored));
        Ok(before - open.len())
    }

    /// The periods whose key and hashes this process holds in memory, as
    /// `(org_id, label)`, sorted.
    pub fn cached_periods(&self) -> Vec<(i64, String)> {
        let mut out: Vec<_> = self
            .open
            .lock()
            .expect("cache lock")
            .keys()
            .cloned()
            .collect();
        out.sort();
        out
    }

    fn forget(&self, org_id: i64, label: &str) {
        self.open
            .lock()
            .expect("cache lock")
            .remove(&(org_id, label.to_owned()));
    }

    /// Records signals from `source` for the organisation.
    pub async fn ingest(
        &self,
        org_id: i64,
        source: &str,
        signals: &[Signal],
        now: OffsetDateTime,
    ) -> Result<Ingested, MeterError> {
        self.ingest_with(org_id, source, signals, now, None).await
    }

    /// The period `now` falls in, for callers that read its state together with
    /// other things ([`Store::webhook_context`]).
    pub fn current_label(&self, now: OffsetDateTime) -> Option<String> {
        Period::containing(self.config.period, micros(now))
            .ok()
            .map(|p| p.label())
    }

    /// [`Metering::ingest`], with the state of one period already read.
    pub async fn ingest_with(
        &self,
        org_id: i64,
        source: &str,
        signals: &[Signal],
        now: OffsetDateTime,
        known: Option<(String, PeriodKeyState)>,
    ) -> Result<Ingested, MeterError> {
        let now_us = micros(now);
        let mut out = Ingested::default();
        let mut known = known;
        // The keys of the periods this batch touches (closed: `None`).
        let mut keys: HashMap<String, Option<Arc<PeriodKey>>> = HashMap::new();
        // Signals still to record: period, its key, cache marker, signal.
        let mut pending: Vec<(String, Arc<PeriodKey>, [u8; 32], &Signal)> = Vec::new();
        for s in signals {
            let at = s
                .at_ms
                .map(|ms| ms.saturating_mul(1000))
                .filter(|&us| us <= now_us + MAX_SKEW_MICROS)
                .unwrap_or(now_us);
            let Ok(period) = Period::containing(self.config.period, at) else {
                out.late += 1;
                continue;
            };
            if period.close_due(now_us, self.grace()) {
                out.late += 1;
                continue;
            }
            let label = period.label();
            let key = match keys.get(&label) {
                Some(k) => k.clone(),
                None => {
                    let state = known.take_if(|(l, _)| *l == label).map(|(_, state)| state);
                    let k = self.key(org_id, &period, state).await?;
                    keys.insert(label.clone(), k.clone());
                    k
                }
            };
            let Some(key) = key else {
                out.late += 1;
                continue;
            };
            let marker = person_hash(&key, &format!("{source}\u{0}{}", s.subject));
            let cached = self
                .open
                .lock()
                .expect("cache lock")
                .get(&(org_id, label.clone()))
                .is_some_and(|p| p.seen.contains(&marker));
            if cached {
                out.repeated += 1;
                continue;
            }
            pending.push((label, key, marker, s));
        }
        if pending.is_empty() {
            return Ok(out);
        }
        // One lookup for every subject of the batch.
        let lookups: Vec<(&str, Option<&str>)> = pending
            .iter()
            .filter(|(_, _, _, s)| !s.resolved)
            .map(|(_, _, _, s)| (s.subject.as_str(), s.username.as_deref()))
            .collect();
        let persons = if lookups.is_empty() {
            HashMap::new()
        } else {
            self.store.persons_for_subjects(org_id, &lookups).await?
        };
        let mut batches: BTreeMap<String, Batch> = BTreeMap::new();
        for (label, key, marker, s) in pending {
            let person = match s.resolved {
                true => &s.subject,
                false => persons.get(&s.subject).unwrap_or(&s.subject),
            };
            let entry = batches.entry(label).or_default();
            entry.0.push(person_hash(&key, person));
            entry.1.push(marker);
        }
        for (label, (hashes, markers)) in batches {
            match self
                .store
                .record_seen(org_id, &label, source, &hashes)
                .await?
            {
                Some(n) => {
                    out.recorded += n;
                    out.repeated += hashes.len() as u64 - n;
                    let mut open = self.open.lock().expect("cache lock");
                    if let Some(p) = open.get_mut(&(org_id, label)) {
                        if p.seen.len() + markers.len() > CACHE_LIMIT {
                            p.seen.clear();
                        }
                        p.seen.extend(markers);
                    }
                }
                None => {
                    out.late += hashes.len() as u64;
                    self.forget(org_id, &label);
                }
            }
        }
        Ok(out)
    }

    /// Polls every app of every organisation for its accounts' last activity
    /// and records those active in an open period. Apps that fail are reported
    /// and skipped.
    pub async fn poll(&self, now: OffsetDateTime) -> Result<PollReport, MeterError> {
        let mut report = PollReport::default();
        for org in self.store.list_orgs().await? {
            for app in self.store.apps(org.id).await? {
                match self.poll_app(&org, &app, now).await {
                    Ok(got) => {
                        report.apps += 1;
                        report.ingested += got;
                    }
                    Err(e) => {
                        tracing::warn!(org = %org.slug, app = %app.name, error = %e, "activity poll failed");
                        report
                            .failed
                            .push(format!("{}/{}: {e}", org.slug, app.name));
                    }
                }
            }
        }
        Ok(report)
    }

    async fn poll_app(
        &self,
        org: &Org,
        app: &store::AppRecord,
        now: OffsetDateTime,
    ) -> Result<Ingested, MeterError> {
        let connector = provision::registry::connector_for(app)
            .map_err(|e| MeterError::Invalid(e.to_string()))?;
        let users = connector
            .list_users()
            .await
            .map_err(|e| MeterError::Invalid(e.to_string()))?;
        let persons = self.store.persons_for_app(app.id).await?;
        let signals: Vec<Signal> = users
            .into_iter()
            .filter_map(|u| {
                let at_ms = u.last_active_ms.filter(|&ms| ms > 0)?;
                let person = persons.get(&u.app_id)?;
                Some(Signal {
                    subject: person.clone(),
                    username: None,
                    at_ms: Some(at_ms),
                    resolved: true,
                })
            })
            .collect();
        self.ingest(org.id, &app.name, &signals, now).await
    }

    /// Closes the period of one organisation (or of every organisation).
    /// Refuses a period that has not ended yet unless `force`.
    pub async fn close(
        &self,
        period: &Period,
        org: Option<&Org>,
        force: bool,
        now: OffsetDateTime,
    ) -> Result<Vec<(Org, ClosedCounts)>, MeterError> {
        if !force && period.end_micros() > micros(now) {
            return Err(MeterError::Invalid(format!(
                "period {} has not ended yet (use --force to close it now; later activity in it will be dropped)",
                period.label()
            )));
        }
        let orgs = match org {
            Some(o) => vec![o.clone()],
            None => self.store.list_orgs().await?,
        };
        let mut out = Vec::with_capacity(orgs.len());
        for o in orgs {
            let counts = self
                .store
                .close_period(
                    o.id,
                    &period.label(),
                    period.start_micros(),
                    period.end_micros(),
                )
                .await?;
            self.forget(o.id, &period.label());
            out.push((o, counts));
        }
        Ok(out)
    }

    /// Closes every open period past its end and grace. Returns what closed.
    pub async fn close_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(i64, String, ClosedCounts)>, MeterError> {
        let grace = i64::try_from(self.grace().as_micros()).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        for p in self.store.open_periods().await? {
            if p.ends.saturating_add(grace) <= micros(now) {
                let counts = self
                    .store
                    .close_period(p.org_id, &p.label, p.starts, p.ends)
                    .await?;
                self.forget(p.org_id, &p.label);
                tracing::info!(org_id = p.org_id, period = %p.label, active_accounts = counts.total, "metering period closed");
                out.push((p.org_id, p.label, counts));
            }
        }
        Ok(out)
    }

    /// The statements of a period, one per organisation (or for one).
    pub async fn statements(
        &self,
        period: &Period,
        org: Option<&Org>,
    ) -> Result<Vec<Statement>, MeterError> {
        let all = self.statements_with_orgs(period, org).await?;
        Ok(all.into_iter().map(|(_, _, st)| st).collect())
    }

    /// The statements with the organisation and profile each was made from.
    async fn statements_with_orgs(
        &self,
        period: &Period,
        org: Option<&Org>,
    ) -> Result<Vec<(Org, OrgProfile, Statement)>, MeterError> {
        let orgs = match org {
            Some(o) => vec![o.clone()],
            None => self.store.list_orgs().await?,
        };
        let label = period.label();
        let mut out = Vec::with_capacity(orgs.len());
        for o in orgs {
            let counts = self.store.period_counts(o.id, &label).await?;
            let profile = self.store.org_profile(o.id).await?;
            let active = u64::try_from(counts.total).unwrap_or(0);
            let contribution = self
                .pricing
                .contribution(active, profile.category.as_deref())
                .map_err(|e| MeterError::Invalid(format!("organisation {}: {e}", o.slug)))?;
            let per_app = counts
                .per_source
                .into_iter()
                .map(|(k, v)| (k, u64::try_from(v).unwrap_or(0)))
                .collect();
            let name = profile
                .display_name
                .clone()
                .unwrap_or_else(|| o.name.clone());
            let st = Statement::new(
                o.slug.clone(),
                name,
                period,
                per_app,
                counts.closed,
                contribution,
            );
            out.push((o, profile, st));
        }
        Ok(out)
    }

    /// Exports a draft invoice to Dokos for each closed statement of the period
    /// not exported yet. Returns (org, invoice name, newly created).
    pub async fn export_dokos(
        &self,
        settings: &DokosSettings,
        period: &Period,
        org: Option<&Org>,
    ) -> Result<Vec<(String, String, bool)>, MeterError> {
        let cfg = DokosConfig {
            url: settings.url.clone(),
            api_key: settings.api_key.clone(),
            api_secret: provision::registry::read_credential(&settings.api_secret)
                .map_err(|e| MeterError::Invalid(format!("dokos.api_secret: {e}")))?,
            item_code: settings.item_code.clone(),
            company: settings.company.clone(),
        };
        // Like every outbound call: no redirect (the API key would follow it),
        // timeouts, answers read up to a bound.
        let client = meter::dokos::client()?;
        let mut out = Vec::new();
        for (o, profile, st) in self.statements_with_orgs(period, org).await? {
            if !st.closed {
                return Err(MeterError::Invalid(format!(
                    "period {} of {} is still open: close it first",
                    st.period, st.org
                )));
            }
            if let Some(name) = self.store.invoice_ref(o.id, &st.period, "dokos").await? {
                out.push((st.org.clone(), name, false));
                continue;
            }
            let customer = profile.billing_customer.unwrap_or_else(|| o.name.clone());
            // Found rather than created again when an earlier export created
            // it and stopped before recording it.
            let draft = meter::dokos::draft_from_statement(&st, &customer, &cfg.item_code)
                .with_reference(meter::dokos::reference(&st.org, &st.period));
            let (name, created) = meter::dokos::ensure_draft_invoice(&client, &cfg, &draft).await?;
            self.store
                .record_invoice(o.id, &st.period, "dokos", &name)
                .await?;
            out.push((st.org.clone(), name, created));
        }
        Ok(out)
    }

    /// Runs polling and automatic closing until the process ends, every
    /// minute. With several processes on one PostgreSQL database, one at a time
    /// does a round (an advisory lock); the others skip it. Every process
    /// drops the periods closed since the last tick from its memory
    /// ([`Metering::refresh`]).
    pub async fn run_periodic(self: Arc<Self>) {
        let poll_every = Duration::from_secs(self.config.poll_interval_secs);
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_poll: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            // Every process, not only the one holding the lock: a period closed
            // elsewhere leaves this process's memory too.
            match self.refresh().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(periods = n, "closed metering periods dropped from memory")
                }
                Err(e) => tracing::warn!(error = %e, "checking cached metering periods failed"),
            }
            let lock = match self.store.try_advisory_lock(METERING_LOCK_KEY).await {
                Ok(Some(lock)) => lock,
                Ok(None) => {
                    tracing::debug!("another process runs the metering round; skipped");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the metering lock");
                    continue;
                }
            };
            let now = OffsetDateTime::now_utc();
            if self.config.auto_close {
                if let Err(e) = self.close_due(now).await {
                    tracing::warn!(error = %e, "closing due metering periods failed");
                }
            }
            let due = !poll_every.is_zero() && last_poll.is_none_or(|t| t.elapsed() >= poll_every);
            if due {
                last_poll = Some(std::time::Instant::now());
                match self.poll(now).await {
                    Ok(r) => tracing::info!(
                        apps = r.apps,
                        recorded = r.ingested.recorded,
                        failed = r.failed.len(),
                        "activity poll"
                    ),
                    Err(e) => tracing::warn!(error = %e, "activity poll failed"),
                }
            }
            if let Err(e) = lock.release().await {
                tracing::warn!(error = %e, "releasing the metering lock failed");
            }
        }
    }
}

/// The name of the key-encryption key's file beside a SQLite database
/// (`liaison.db` → `liaison.db.meter-kek`).
pub const KEK_FILE_SUFFIX: &str = ".meter-kek";

/// The key-encryption key of period keys, from `metering.kek_file` when set.
/// Otherwise, for a SQLite database in a file, from a file beside it
/// (`<database>.meter-kek`), created with a random key and mode 0600 on first
/// use; for a temporary SQLite database, a random key that lives as long as
/// the process (and the database). With PostgreSQL and no `kek_file`: none,
/// and nothing can be recorded (a warning says so). Where the key comes from
/// is logged, never the key.
pub fn load_kek(config: &Config) -> anyhow::Result<Option<Kek>> {
    if let Some(path) = &config.metering.kek_file {
        let kek = read_kek(path)?;
        tracing::info!(path = %path.display(), "metering key-encryption key read from metering.kek_file");
        return Ok(Some(kek));
    }
    let url = config.database_url.as_str();
    let Some(rest) = url.strip_prefix("sqlite:") else {
        tracing::warn!(
            "no metering.kek_file: activity metering cannot record (set it to a file of 32 random bytes \
             kept outside the database, e.g. a mounted secret)"
        );
        return Ok(None);
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return Ok(Some(Kek::random()));
    }
    let path = std::path::PathBuf::from(format!("{path}{KEK_FILE_SUFFIX}"));
    if path.exists() {
        let kek = read_kek(&path)?;
        tracing::info!(path = %path.display(), "metering key-encryption key read from beside the SQLite database (back it up apart from the database)");
        return Ok(Some(kek));
    }
    let kek = Kek::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            use std::io::Write;
            let text = kek.to_hex();
            file.write_all(text.as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    anyhow::anyhow!("metering key-encryption key {}: {e}", path.display())
                })?;
            tracing::info!(path = %path.display(), "metering key-encryption key created beside the SQLite database, mode 0600 (back it up apart from the database)");
            Ok(Some(kek))
        }
        // Created by another process meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_kek(&path).map(Some),
        Err(e) => anyhow::bail!("metering key-encryption key {}: {e}", path.display()),
    }
}

fn read_kek(path: &std::path::Path) -> anyhow::Result<Kek> {
    let content = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("metering key-encryption key {}: {e}", path.display()))?;
    let kek = Kek::parse(&content);
    drop(PeriodKey::from_vec(content));
    kek.map_err(|e| anyhow::anyhow!("metering key-encryption key {}: {e}", path.display()))
}

/// The advisory lock of the periodic metering round ("LSNMETER").
const METERING_LOCK_KEY: i64 = 0x4c53_4e4d_4554_4552;

/// What a poll of the apps did.
#[derive(Debug, Default, serde::Serialize)]
pub struct PollReport {
    pub apps: usize,
    pub ingested: Ingested,
    pub failed: Vec<String>,
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use meter::pricing::Pricing;

    /// The key-encryption key: from `metering.kek_file` (also set from the
    /// environment), else beside a SQLite database, created once with mode
    /// 0600; a file that holds no key is a clear error.
    #[test]
    #[allow(clippy::result_large_err)]
    fn the_kek_comes_from_its_file_or_beside_the_sqlite_database() {
        use crate::config::Config;
        use meter::keyed::{Kek, PeriodKey};
        figment::Jail::expect_with(|jail| {
            let dir = jail.directory().to_owned();
            let key = PeriodKey::random();
            let config = Config {
                database_url: format!("sqlite://{}/liaison.db", dir.display()),
                ..Config::default()
            };
            let kek = super::load_kek(&config).unwrap().expect("created");
            let file = dir.join("liaison.db.meter-kek");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
            let sealed = kek.seal(&key, 1, "2026-11");
            let again = super::load_kek(&config).unwrap().expect("read back");
            assert_eq!(
                again.open(&sealed, 1, "2026-11").unwrap().as_bytes(),
                key.as_bytes()
            );

            jail.create_file("kek", &format!("{}\n", hex::encode([7u8; 32])))?;
            jail.set_env("LIAISON_METERING__KEK_FILE", "kek");
            let config = Config::load(None).unwrap();
            assert_eq!(
                config.metering.kek_file.as_deref(),
                Some(std::path::Path::new("kek"))
            );
            let kek = super::load_kek(&config).unwrap().expect("from the file");
            let sealed = Kek::from_bytes([7u8; 32]).seal(&key, 1, "2026-11");
            assert!(kek.open(&sealed, 1, "2026-11").is_ok());

            jail.create_file("kek", "not a key")?;
            let err = super::load_kek(&config).expect_err("refused").to_string();
            assert!(err.contains("32 bytes"), "{err}");

            let config = Config {
                database_url: "postgres://db/liaison".into(),
                ..Config::default()
            };
            assert!(super::load_kek(&config).unwrap().is_none());
            Ok(())
        });
    }

    /// The worked example of docs/METERING.md, with the configuration shown there.
    #[test]
    fn the_documented_worked_example_holds() {
        let doc = include_str!("../../../docs/METERING.md");
        let start = doc.find("```toml\n[pricing]").expect("the pricing example") + 8;
        let end = start + doc[start..].find("```").expect("its end");
        #[derive(serde::Deserialize)]
        struct Wrapper {
            pricing: Pricing,
        }
        let w: Wrapper = toml::from_str(&doc[start..end]).expect("the example parses");
        assert_eq!(
            w.pricing,
            Pricing::example(),
            "the example is the default model"
        );
        let c = w.pricing.contribution(180, Some("school")).unwrap();
        let s = |d: rust_decimal::Decimal| d.to_string();
        let lines: Vec<(u64, String)> = c.lines.iter().map(|l| (l.accounts, s(l.amount))).collect();
        assert_eq!(lines, vec![(50, "50.00".into()), (130, "104.00".into())]);
        assert_eq!(s(c.subtotal), "154.00");
        assert_eq!(s(c.after_coefficient), "123.20");
        assert!(!c.minimum_applied);
        assert_eq!(s(c.net), "123.20");
        assert_eq!(s(c.vat), "24.64");
        assert_eq!(s(c.total), "147.84");
    }
}
