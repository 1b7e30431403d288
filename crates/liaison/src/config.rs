//! Configuration: defaults, then a TOML file, then `LIAISON_*` environment
//! variables (nested keys with `__`, e.g. `LIAISON_LIMITS__MAX_RESULTS`).

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`.
    pub database_url: String,
    /// Address the HTTP server listens on.
    pub listen: String,
    /// External base URL (`https://liaison.example.org`) used in `meta.location`
    /// and `$ref`; when unset, `http://` plus the request's `Host`.
    pub public_url: Option<String>,
    /// Log filter in `tracing` syntax; `RUST_LOG` wins when set.
    pub log: String,
    /// How long a verified token (and an organisation looked up by slug) is
    /// trusted without asking the database again, in seconds: a revoked token
    /// stops working on every instance within this time. 0 turns it off.
    pub auth_cache_secs: u64,
    /// After SIGTERM, how long (seconds) `serve` lets in-flight requests and
    /// deliveries finish; deliveries still running then are abandoned and,
    /// like those leased but not started, handed back at once for other
    /// processes. Keep it below the pod's termination grace period.
    pub drain_secs: u64,
    pub metrics: MetricsConfig,
    pub limits: LimitsConfig,
    pub provisioning: ProvisioningConfig,
    pub metering: MeteringConfig,
    /// The contribution model (docs/METERING.md); absent = the example model
    /// ([`meter::pricing::Pricing::example`]). Given, it replaces the example
    /// entirely (no merging of brackets or categories).
    pub pricing: Option<meter::pricing::Pricing>,
    /// Draft invoices in Dokos; absent = no export.
    pub dokos: Option<DokosSettings>,
    pub pages: PagesSettings,
    #[serde(default)]
    pub source: SourceSettings,
    /// Carbon footprint (docs/FOOTPRINT.md).
    pub footprint: footprint::settings::FootprintSettings,
}

/// The directory sources' follower inside `serve` (docs: README "Connecting
/// Keycloak").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// Run the follower inside `serve`.
    pub follow: bool,
    /// Seconds between two looks at each source's events; 0 turns the
    /// follower off.
    pub tick_secs: u64,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            follow: true,
            tick_secs: 15,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeteringConfig {
    /// Length of a period: `month` (default), `week` (ISO) or `day`.
    pub period: meter::period::PeriodKind,
    /// Hours after a period's end during which late activity still counts;
    /// then the period closes automatically.
    pub grace_hours: u64,
    /// Close periods automatically (inside `serve`) once past end and grace.
    pub auto_close: bool,
    /// Poll the apps' last-activity fields every so many seconds inside
    /// `serve`; 0 turns polling off.
    pub poll_interval_secs: u64,
    /// A file holding the key-encryption key that seals each period's key in
    /// the database: 32 random bytes, raw, as 64 hexadecimal digits or in
    /// base64 (`openssl rand -hex 32`), kept outside the database and its
    /// backups (e.g. a mounted Kubernetes secret). Unset with SQLite: a file
    /// beside the database, created on first use. Unset with PostgreSQL:
    /// nothing can be recorded.
    pub kek_file: Option<std::path::PathBuf>,
}

impl Default for MeteringConfig {
    fn default() -> Self {
        MeteringConfig {
            period: meter::period::PeriodKind::Month,
            grace_hours: 72,
            auto_close: true,
            poll_interval_secs: 900,
            kek_file: None,
        }
    }
}

/// Where draft invoices go (Dokos, Frappe REST API).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DokosSettings {
    /// Base URL, e.g. `https://dokos.example.coop`.
    pub url: String,
    pub api_key: String,
    /// The API secret or, better, `file:/path` or `env:VAR` holding it.
    pub api_secret: String,
    /// The Item invoiced (one line per pricing bracket).
    pub item_code: String,
    pub company: Option<String>,
}

impl std::fmt::Debug for DokosSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DokosSettings")
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field("item_code", &self.item_code)
            .field("company", &self.company)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagesSettings {
    /// Address `liaison pages` listens on.
    pub listen: String,
    /// How often the pages re-read branding and maintenance, in seconds.
    pub refresh_secs: u64,
    /// How long ahead an upcoming maintenance is announced, in hours.
    pub announce_hours: u64,
    /// A directory of extra or replacement catalogues (`<lang>.toml`).
    pub locales_dir: Option<std::path::PathBuf>,
}

impl Default for PagesSettings {
    fn default() -> Self {
        PagesSettings {
            listen: "127.0.0.1:8081".into(),
            refresh_secs: 10,
            announce_hours: 72,
            locales_dir: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningConfig {
    /// Run the outbox worker inside `serve` (turn off to run deliveries in
    /// separate processes only).
    pub worker: bool,
    /// Deliveries run at once by one worker.
    pub concurrency: usize,
    /// Transient failures before a delivery is parked as poison.
    pub max_attempts: i64,
    /// First retry delay in seconds, doubled at each failure.
    pub base_backoff_secs: f64,
    /// Longest retry delay in seconds.
    pub max_backoff_secs: f64,
    /// Periodic reconciliation of every app, in seconds; 0 turns it off.
    pub reconcile_interval_secs: u64,
    /// How long a delivery's lease lasts without renewal, in seconds. A worker
    /// renews the leases it holds every third of this while it runs, so a
    /// process that died (killed, its node lost) holds its deliveries at most
    /// this long after its last renewal; then another takes them over.
    pub lease_secs: u64,
    /// Let an organisation's token add apps on loopback, private or
    /// link-local addresses (off: only operators may, so that an
    /// organisation cannot aim Liaison's admin calls at the hoster's own
    /// services). For a hoster whose apps all live on a private network.
    pub allow_private_targets: bool,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            worker: true,
            concurrency: 8,
            max_attempts: 12,
            base_backoff_secs: 1.0,
            max_backoff_secs: 3600.0,
            reconcile_interval_secs: 3600,
            lease_secs: 15,
            allow_private_targets: false,
        }
    }
}

impl ProvisioningConfig {
    pub fn worker_config(&self) -> provision::worker::WorkerConfig {
        provision::worker::WorkerConfig {
            concurrency: self.concurrency.max(1),
            max_attempts: self.max_attempts.max(1),
            base_backoff: std::time::Duration::from_secs_f64(self.base_backoff_secs.max(0.001)),
            max_backoff: std::time::Duration::from_secs_f64(self.max_backoff_secs.max(0.001)),
            lease: std::time::Duration::from_secs(self.lease_secs.max(1)),
            batch: i64::try_from(self.concurrency.max(1) * 2).unwrap_or(16),
            ..Default::default()
        }
    }
}

/// Who may read `/metrics`, which names every organisation and app.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` to anyone (behind a network policy, say).
    pub public: bool,
    /// A file holding a token for Prometheus (its scrape configuration's
    /// `authorization: {credentials_file: ...}`), accepted besides operator
    /// tokens. Any string of at least 32 characters.
    pub token_file: Option<std::path::PathBuf>,
    /// SHA-256 of the token read from `token_file` at load.
    #[serde(skip)]
    token_sha256: Option<[u8; 32]>,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("public", &self.public)
            .field("token_file", &self.token_file)
            .finish()
    }
}

impl MetricsConfig {
    /// Reads the token file, if any.
    fn load_token(&mut self) -> anyhow::Result<()> {
        let Some(path) = &self.token_file else {
            return Ok(());
        };
        let token = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("metrics.token_file {}: {e}", path.display()))?;
        let token = token.trim();
        if token.len() < 32 {
            anyhow::bail!(
                "metrics.token_file {}: the token must have at least 32 characters",
                path.display()
            );
        }
        self.token_sha256 = Some(sha2::Sha256::digest(token.as_bytes()).into());
        Ok(())
    }

    /// Whether `token` is the configured metrics token (constant time).
    pub fn accepts(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let Some(expected) = &self.token_sha256 else {
            return false;
        };
        let presented: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        presented.ct_eq(expected).into()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted, bytes (413 beyond). Also the bulk
    /// `maxPayloadSize`.
    pub max_body_bytes: usize,
    /// Largest page of a list or search (`filter.maxResults`).
    pub max_results: u64,
    /// Bulk `maxOperations`.
    pub bulk_max_operations: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://liaison.db".into(),
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            log: "info".into(),
            auth_cache_secs: 5,
            drain_secs: 20,
            metrics: MetricsConfig::default(),
            limits: LimitsConfig {
                max_body_bytes: 1 << 20,
                max_results: 1000,
                bulk_max_operations: 1000,
            },
            provisioning: ProvisioningConfig::default(),
            metering: MeteringConfig::default(),
            pricing: None,
            dokos: None,
            pages: PagesSettings::default(),
            source: SourceSettings::default(),
            footprint: footprint::settings::FootprintSettings::default(),
        }
    }
}

/// Top-level keys settable from the environment (`limits` is set key by key).
const ENV_KEYS: &[&str] = &[
    "database_url",
    "listen",
    "public_url",
    "log",
    "auth_cache_secs",
    "drain_secs",
];

impl Config {
    /// Loads the configuration: defaults < `file` (when given) < environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                anyhow::bail!("configuration file {} does not exist", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        // Only the variables that name a key: `LIAISON_CONFIG` (the file's path)
        // and variables of other tools sharing the prefix are not configuration.
        let env = Env::prefixed("LIAISON_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                ENV_KEYS.iter().any(|k| key == *k)
                    || key.starts_with("limits__")
                    || key.starts_with("metrics__")
                    || key.starts_with("provisioning__")
                    || key.starts_with("metering__")
                    || key.starts_with("pages__")
                    || key.starts_with("dokos__")
                    || key.starts_with("source__")
                    || key.starts_with("footprint__")
            })
            .split("__");
        let mut cfg: Config = fig.merge(env).extract()?;
        cfg.metrics.load_token()?;
        if cfg.limits.max_results == 0 || cfg.limits.bulk_max_operations == 0 {
            anyhow::bail!("limits.max_results and limits.bulk_max_operations must be positive");
        }
        cfg.pricing()
            .validate()
            .map_err(|e| anyhow::anyhow!("pricing: {e}"))?;
        Ok(cfg)
    }

    /// The contribution model in force.
    pub fn pricing(&self) -> meter::pricing::Pricing {
        self.pricing.clone().unwrap_or_default()
    }

    /// The names of the pricing categories.
    pub fn pricing_categories(&self) -> Vec<String> {
        self.pricing().categories.keys().cloned().collect()
    }

    pub fn directory_limits(&self) -> directory::Limits {
        directory::Limits {
            max_results: self.limits.max_results,
            bulk: directory::BulkLimits {
                max_operations: self.limits.bulk_max_operations,
                max_payload_size: self.limits.max_body_bytes,
            },
        }
    }
}

#[cfg(test)]
// figment::Jail's closures return figment's (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "liaison.toml",
                "listen = \"0.0.0.0:9000\"\n[limits]\nmax_results = 50\n",
            )?;
            jail.set_env("LIAISON_DATABASE_URL", "postgres://db/liaison");
            jail.set_env("LIAISON_LIMITS__MAX_RESULTS", "70");
            jail.set_env("LIAISON_CONFIG", "elsewhere.toml");
            jail.set_env("LIAISON_TEST_POSTGRES_URL", "postgres://unrelated");
            let cfg = Config::load(Some(Path::new("liaison.toml"))).expect("loads");
            assert_eq!(cfg.listen, "0.0.0.0:9000");
            assert_eq!(cfg.database_url, "postgres://db/liaison");
            assert_eq!(cfg.limits.max_results, 70);
            assert_eq!(cfg.limits.bulk_max_operations, 1000);
            Ok(())
        });
    }

    #[test]
    fn the_footprint_section_reads_from_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "liaison.toml",
                "[footprint]\ninventory = \"/etc/liaison/inventory.toml\"\norg_label = \"liaison.coop/org\"\n\
                 shared_namespaces = [\"kube-system\"]\n[footprint.namespaces]\n\"nc-ecole\" = \"ecole\"\n\
                 [footprint.prometheus]\nurl = \"http://prometheus:9090\"\n",
            )?;
            jail.set_env("LIAISON_FOOTPRINT__PROMETHEUS__TIMEOUT_SECS", "30");
            let cfg = Config::load(Some(Path::new("liaison.toml"))).expect("loads");
            let f = &cfg.footprint;
            assert_eq!(
                f.inventory.as_deref(),
                Some(Path::new("/etc/liaison/inventory.toml"))
            );
            assert_eq!(f.prometheus.url, "http://prometheus:9090");
            assert_eq!(f.prometheus.timeout_secs, 30);
            assert_eq!(f.prometheus.node_label, "node");
            assert_eq!(f.namespaces["nc-ecole"], "ecole");
            assert_eq!(f.shared_namespaces.len(), 1);
            f.validate().expect("valid");
            jail.create_file("bad.toml", "[footprint]\nnamespace = {}\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "lissen = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            Ok(())
        });
    }
}
