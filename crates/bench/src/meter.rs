//! `liaison-bench-meter`: activity metering under load, against a peer that keeps
//! a login log.
//!
//! Subcommands:
//! - `load`: sends N accounts × E signed Keycloak events (p2-inc's webhook form:
//!   `type: access.LOGIN`, `authDetails.userId`, `X-Keycloak-Signature`) from C
//!   concurrent clients, one event per request or B per request (a JSON array),
//!   in a fixed pseudo-random order that spreads each account's events over the
//!   run. Every answer is checked: Liaison's counts (`recorded` must add up to N,
//!   `late` to 0) or the peer's (`inserted` must add up to N × E). Prints events
//!   per second, latency percentiles and the server's peak resident memory.
//! - `peer`: the design Liaison does not use, as a server: a minimal axum handler
//!   that checks the same signature, reads the same events and INSERTs one row
//!   `(user_id, at)` per counted event into `login_log`, on SQLite or PostgreSQL
//!   through the same `sqlx` driver and pool shapes as Liaison's store.
//! - `inspect`: sizes of a database and of one table with its indexes, and, for
//!   the login log, the time of `SELECT COUNT(DISTINCT user_id)` over the
//!   current month.
//!
//! Results are one JSON object on standard output.

// Shared with `liaison-bench`; this binary uses `read_memory` only.
#[allow(dead_code)]
mod report;
mod stats;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Args, Parser, Subcommand};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use tokio::task::JoinSet;

use stats::{median, ms, percentile};

/// Event types that count as activity (Liaison's rule, `meter::keycloak`).
const COUNTED: [&str; 3] = ["LOGIN", "CODE_TO_TOKEN", "REFRESH_TOKEN"];

#[derive(Parser)]
#[command(name = "liaison-bench-meter", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Sends signed Keycloak events to a webhook URL and measures the server.
    Load(LoadArgs),
    /// Serves the login-log peer: POST /o/{org}/events/keycloak.
    Peer(PeerArgs),
    /// Prints database and table sizes (and the login log's count query time).
    Inspect(InspectArgs),
}

#[derive(Args)]
struct LoadArgs {
    /// Webhook URL, e.g. http://127.0.0.1:8080/o/bench/events/keycloak
    #[arg(long)]
    url: String,
    /// The webhook secret the bodies are signed with.
    #[arg(long, env = "BENCH_METER_SECRET", hide_env_values = true)]
    secret: String,
    /// Distinct accounts.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    accounts: usize,
    /// Events per account.
    #[arg(short = 'e', long, default_value_t = 10)]
    events: usize,
    /// Concurrent clients.
    #[arg(short = 'c', long, default_value_t = 8)]
    concurrency: usize,
    /// Events per request (1: a single JSON object, as p2-inc sends them; more:
    /// a JSON array).
    #[arg(short = 'b', long, default_value_t = 1)]
    batch: usize,
    /// How answers are checked: `liaison` (recorded/repeated/late counts) or
    /// `peer` (inserted rows).
    #[arg(long, value_enum)]
    answers: Answers,
    /// Server process whose peak resident memory (VmHWM) is reported.
    #[arg(long)]
    pid: Option<u32>,
    /// Name of the run in the report.
    #[arg(long, default_value = "server")]
    label: String,
    /// Seconds before one request is abandoned (and the run fails).
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Answers {
    Liaison,
    Peer,
}

#[derive(Args)]
struct PeerArgs {
    /// sqlite://path or postgres://...
    #[arg(long)]
    database: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The webhook secret bodies are signed with.
    #[arg(long, env = "BENCH_METER_SECRET", hide_env_values = true)]
    secret: String,
}

#[derive(Args)]
struct InspectArgs {
    /// sqlite://path or postgres://...
    #[arg(long)]
    database: String,
    /// The table whose size (with its indexes) is reported.
    #[arg(long)]
    table: String,
    /// Also time `SELECT COUNT(DISTINCT user_id)` over the current month on the
    /// login log (median of this many runs).
    #[arg(long)]
    count_runs: Option<usize>,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Load(a) => {
            let report = load(&a).await?;
            let json = serde_json::to_string_pretty(&report)?;
            println!("{json}");
            if let Some(path) = &a.json_out {
                std::fs::write(path, format!("{json}\n"))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Cmd::Peer(a) => peer(a).await,
        Cmd::Inspect(a) => {
            println!("{}", serde_json::to_string_pretty(&inspect(&a).await?)?);
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- load

#[derive(Serialize)]
struct LoadReport {
    label: String,
    url: String,
    accounts: usize,
    events: usize,
    batch: usize,
    requests: usize,
    concurrency: usize,
    seconds: f64,
    events_per_second: f64,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Liaison: people newly recorded, events already seen, events too late.
    recorded: Option<u64>,
    repeated: Option<u64>,
    late: Option<u64>,
    /// Peer: rows inserted.
    inserted: Option<u64>,
    peak_rss_mib: Option<f64>,
    rss_mib: Option<f64>,
}

/// The order of the events: event `i` of the run is event `i * step mod total`
/// of the list where event `j` belongs to account `j mod n`. `step` is prime to
/// `total`, so every event is sent exactly once and each account's events are
/// spread over the run.
#[derive(Clone, Copy)]
struct Order {
    total: u64,
    step: u64,
    accounts: u64,
}

impl Order {
    fn new(accounts: usize, events: usize) -> Order {
        let total = (accounts * events) as u64;
        let mut step = 2_654_435_761 % total.max(1);
        while total > 1 && gcd(step, total) != 1 {
            step += 1;
        }
        Order {
            total,
            step: step.max(1),
            accounts: accounts as u64,
        }
    }

    fn account(&self, i: u64) -> u64 {
        let j = ((u128::from(i) * u128::from(self.step)) % u128::from(self.total)) as u64;
        j % self.accounts
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The Keycloak user id of account `a` (UUID-shaped).
fn subject(a: u64) -> String {
    format!("5e1f0c2a-0000-4000-8000-{a:012x}")
}

/// Event number `i` of the run, in p2-inc keycloak-events' webhook form.
fn event(i: u64, account: u64, now_ms: i64) -> Value {
    json!({
        "uid": format!("b0a7c9d2-0000-4000-8000-{i:012x}"),
        "time": now_ms,
        "realmId": "bench",
        "type": "access.LOGIN",
        "authDetails": {
            "realmId": "bench",
            "clientId": "nextcloud",
            "userId": subject(account),
            "ipAddress": "192.0.2.44",
            "username": format!("user-{account:07}"),
            "sessionId": format!("s-{i}")
        },
        "details": {"auth_method": "openid-connect", "redirect_uri": "https://cloud.bench.example/"}
    })
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Default)]
struct Totals {
    recorded: AtomicU64,
    repeated: AtomicU64,
    late: AtomicU64,
    inserted: AtomicU64,
}

async fn load(a: &LoadArgs) -> Result<LoadReport> {
    if a.accounts == 0 || a.events == 0 || a.concurrency == 0 || a.batch == 0 {
        bail!("--accounts, --events, --concurrency and --batch must be at least 1");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(a.timeout_secs))
        .build()?;
    let order = Order::new(a.accounts, a.events);
    let total = order.total;
    let requests = total.div_ceil(a.batch as u64);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let totals = Arc::new(Totals::default());
    let secret: Arc<[u8]> = a.secret.as_bytes().into();
    let tenth = (requests / 10).max(1) as usize;
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..a.concurrency {
        let (http, next, done, totals, secret) = (
            http.clone(),
            next.clone(),
            done.clone(),
            totals.clone(),
            secret.clone(),
        );
        let (url, batch, answers) = (a.url.clone(), a.batch as u64, a.answers);
        set.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let r = next.fetch_add(1, Ordering::Relaxed);
                if r >= requests {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let now = now_ms();
                let first = r * batch;
                let last = (first + batch).min(total);
                let body = if batch == 1 {
                    event(first, order.account(first), now)
                } else {
                    Value::Array(
                        (first..last)
                            .map(|i| event(i, order.account(i), now))
                            .collect(),
                    )
                };
                let body = serde_json::to_vec(&body)?;
                let signature = sign(&secret, &body);
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-keycloak-signature", signature)
                    .body(body)
                    .send()
                    .await
                    .with_context(|| format!("request {r}"))?;
                let status = response.status();
                let text = response.text().await?;
                latencies.push(sent.elapsed());
                if !status.is_success() {
                    bail!("request {r}: {status}: {text}");
                }
                let v: Value = serde_json::from_str(&text)
                    .with_context(|| format!("request {r}: answer is not JSON: {text}"))?;
                let field = |k: &str| v.get(k).and_then(Value::as_u64);
                match answers {
                    Answers::Liaison => {
                        let (Some(rec), Some(rep), Some(late)) =
                            (field("recorded"), field("repeated"), field("late"))
                        else {
                            bail!("request {r}: unexpected answer {text}");
                        };
                        totals.recorded.fetch_add(rec, Ordering::Relaxed);
                        totals.repeated.fetch_add(rep, Ordering::Relaxed);
                        totals.late.fetch_add(late, Ordering::Relaxed);
                    }
                    Answers::Peer => {
                        let Some(n) = field("inserted") else {
                            bail!("request {r}: unexpected answer {text}");
                        };
                        totals.inserted.fetch_add(n, Ordering::Relaxed);
                    }
                }
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d % tenth == 0 {
                    eprintln!(
                        "    {d} / {requests} requests, {:.0} events/s",
                        (d as u64 * batch) as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    let mut latencies = Vec::with_capacity(requests as usize);
    while let Some(joined) = set.join_next().await {
        match joined.context("a client task stopped")? {
            Ok(l) => latencies.extend(l),
            Err(e) => {
                set.abort_all();
                return Err(e);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (recorded, repeated, late, inserted) = (
        load(&totals.recorded),
        load(&totals.repeated),
        load(&totals.late),
        load(&totals.inserted),
    );
    match a.answers {
        Answers::Liaison => {
            if recorded != a.accounts as u64 || late != 0 || recorded + repeated != total {
                bail!(
                    "Liaison answered recorded {recorded}, repeated {repeated}, late {late}; \
                     expected {} recorded of {total} events and none late",
                    a.accounts
                );
            }
        }
        Answers::Peer => {
            if inserted != total {
                bail!("the peer inserted {inserted} rows of {total} events");
            }
        }
    }
    let memory = match a.pid {
        Some(pid) => {
            report::read_memory(pid).with_context(|| format!("reading /proc/{pid}/status"))?
        }
        None => None,
    };
    let liaison = a.answers == Answers::Liaison;
    Ok(LoadReport {
        label: a.label.clone(),
        url: a.url.clone(),
        accounts: a.accounts,
        events: total as usize,
        batch: a.batch,
        requests: requests as usize,
        concurrency: a.concurrency,
        seconds,
        events_per_second: total as f64 / seconds,
        requests_per_second: requests as f64 / seconds,
        p50_ms: percentile(&mut latencies, 50.0).map(ms).unwrap_or(0.0),
        p99_ms: percentile(&mut latencies, 99.0).map(ms).unwrap_or(0.0),
        max_ms: percentile(&mut latencies, 100.0).map(ms).unwrap_or(0.0),
        recorded: liaison.then_some(recorded),
        repeated: liaison.then_some(repeated),
        late: liaison.then_some(late),
        inserted: (!liaison).then_some(inserted),
        peak_rss_mib: memory.as_ref().map(|m| m.peak_rss_mib),
        rss_mib: memory.as_ref().map(|m| m.rss_mib),
    })
}

// ---------------------------------------------------------------- peer

#[derive(Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

fn engine(url: &str) -> Result<Engine> {
    if url.starts_with("sqlite:") {
        Ok(Engine::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Engine::Postgres)
    } else {
        bail!("unsupported database URL (want sqlite: or postgres:): {url}")
    }
}

/// Pools shaped like Liaison's store: on SQLite one writer connection in WAL
/// mode with `synchronous = NORMAL`; on PostgreSQL 16 connections.
async fn pool(url: &str, max: u32) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let sqlite = engine(url)? == Engine::Sqlite;
    let url = if sqlite && !url.contains("mode=") {
        format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
    } else {
        url.to_owned()
    };
    let mut options = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(60));
    if sqlite {
        options = options.after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                Ok(())
            })
        });
    }
    Ok(options.connect(&url).await?)
}

struct Peer {
    pool: AnyPool,
    secret: Vec<u8>,
}

async fn peer(a: PeerArgs) -> Result<()> {
    let max = match engine(&a.database)? {
        Engine::Sqlite => 1,
        Engine::Postgres => 16,
    };
    let pool = pool(&a.database, max).await?;
    pool.execute(
        "CREATE TABLE IF NOT EXISTS login_log (user_id TEXT NOT NULL, at BIGINT NOT NULL)",
    )
    .await?;
    let state = Arc::new(Peer {
        pool,
        secret: a.secret.into_bytes(),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/o/{org}/events/keycloak", post(peer_events))
        .layer(DefaultBodyLimit::max(16 << 20))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(a.listen).await?;
    eprintln!("login-log peer listening on {}", a.listen);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn peer_error(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, Json(json!({"error": detail.into()}))).into_response()
}

/// The user id and time of a counted event, or `None` for other events.
fn logged(event: &Value) -> Option<(String, i64)> {
    let kind = event.get("type")?.as_str()?;
    let kind = kind.strip_prefix("access.").unwrap_or(kind);
    if !COUNTED.contains(&kind) {
        return None;
    }
    let user = event
        .get("userId")
        .or_else(|| event.get("authDetails")?.get("userId"))?
        .as_str()?;
    let at = event
        .get("time")
        .and_then(Value::as_i64)
        .unwrap_or_else(now_ms);
    Some((user.to_owned(), at))
}

async fn peer_events(State(st): State<Arc<Peer>>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("x-keycloak-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| hex::decode(s.trim()).ok());
    let mut mac = Hmac::<Sha256>::new_from_slice(&st.secret).expect("any key length");
    mac.update(&body);
    if signature.is_none_or(|s| mac.verify_slice(&s).is_err()) {
        return peer_error(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let rows: Vec<(String, i64)> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(events)) => events.iter().filter_map(logged).collect(),
        Ok(event @ Value::Object(_)) => logged(&event).into_iter().collect(),
        _ => return peer_error(StatusCode::BAD_REQUEST, "not an event"),
    };
    match insert_rows(&st.pool, &rows).await {
        Ok(()) => Json(json!({"inserted": rows.len()})).into_response(),
        Err(e) => peer_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// One INSERT per event; a batch is one multi-row INSERT (chunks of 200 rows,
/// as Liaison's store writes) in one transaction.
async fn insert_rows(pool: &AnyPool, rows: &[(String, i64)]) -> Result<(), sqlx::Error> {
    match rows {
        [] => Ok(()),
        [(user, at)] => {
            sqlx::query("INSERT INTO login_log (user_id, at) VALUES ($1, $2)")
                .bind(user)
                .bind(at)
                .execute(pool)
                .await?;
            Ok(())
        }
        _ => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(200) {
                let mut sql = String::from("INSERT INTO login_log (user_id, at) VALUES ");
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
                }
                let mut q = sqlx::query(&sql);
                for (user, at) in chunk {
                    q = q.bind(user).bind(at);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await
        }
    }
}

// ---------------------------------------------------------------- inspect

#[derive(Serialize)]
struct Inspection {
    table: String,
    database_bytes: i64,
    table_bytes: i64,
    count: Option<i64>,
    count_median_ms: Option<f64>,
    count_runs_ms: Vec<f64>,
}

/// The current UTC month's bounds in milliseconds since the epoch.
fn month_bounds_ms() -> (i64, i64) {
    let now = time::OffsetDateTime::now_utc();
    let start = now
        .date()
        .replace_day(1)
        .expect("day 1 exists")
        .midnight()
        .assume_utc();
    let next = match start.month() {
        time::Month::December => start
            .replace_year(start.year() + 1)
            .and_then(|d| d.replace_month(time::Month::January)),
        m => start.replace_month(m.next()),
    }
    .expect("the first of the next month exists");
    let ms = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    (ms(start), ms(next))
}

async fn inspect(a: &InspectArgs) -> Result<Inspection> {
    if !a
        .table
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("not a table name: {}", a.table);
    }
    let engine = engine(&a.database)?;
    let pool = pool(&a.database, 1).await?;
    let (database_bytes, table_bytes): (i64, i64) = match engine {
        Engine::Sqlite => {
            let pages: i64 = sqlx::query_scalar(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .fetch_one(&pool)
            .await?;
            let table: i64 = sqlx::query_scalar(
                "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = $1 \
                 OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = $1)",
            )
            .bind(&a.table)
            .fetch_one(&pool)
            .await
            .context("dbstat (SQLite's page statistics)")?;
            (pages, table)
        }
        Engine::Postgres => {
            let db: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&pool)
                .await?;
            let table: i64 = sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
                .bind(&a.table)
                .fetch_one(&pool)
                .await?;
            (db, table)
        }
    };
    let mut count = None;
    let mut runs = Vec::new();
    if let Some(n) = a.count_runs {
        let (start, end) = month_bounds_ms();
        let sql = format!(
            "SELECT COUNT(DISTINCT user_id) FROM {} WHERE at >= $1 AND at < $2",
            a.table
        );
        for _ in 0..n.max(1) {
            let t = Instant::now();
            let c: i64 = sqlx::query_scalar(&sql)
                .bind(start)
                .bind(end)
                .fetch_one(&pool)
                .await?;
            runs.push(t.elapsed());
            count = Some(c);
        }
    }
    let count_runs_ms = runs.iter().copied().map(ms).collect();
    Ok(Inspection {
        table: a.table.clone(),
        database_bytes,
        table_bytes,
        count,
        count_median_ms: median(&mut runs).map(ms),
        count_runs_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_sends_each_account_its_events() {
        for (n, e) in [(1, 1), (7, 3), (1000, 10), (10, 1)] {
            let order = Order::new(n, e);
            let mut per = vec![0usize; n];
            let mut seen = std::collections::HashSet::new();
            for i in 0..order.total {
                let j = ((u128::from(i) * u128::from(order.step)) % u128::from(order.total)) as u64;
                assert!(seen.insert(j), "event {j} twice");
                per[order.account(i) as usize] += 1;
            }
            assert!(per.iter().all(|&c| c == e), "{n}×{e}: {per:?}");
        }
    }

    #[test]
    fn peer_reads_counted_events_only() {
        let e = event(3, 42, 1_000);
        assert_eq!(logged(&e), Some((subject(42), 1_000)));
        let mut other = e.clone();
        other["type"] = json!("access.LOGOUT");
        assert_eq!(logged(&other), None);
        let kc = json!({"type": "CODE_TO_TOKEN", "userId": "u-1", "time": 5});
        assert_eq!(logged(&kc), Some(("u-1".into(), 5)));
    }

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        let sig = sign(b"secret", b"body");
        assert_eq!(sig.len(), 64);
        let bytes = hex::decode(&sig).expect("hex");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").expect("key");
        mac.update(b"body");
        assert!(mac.verify_slice(&bytes).is_ok());
    }

    #[test]
    fn month_bounds_hold_now() {
        let (start, end) = month_bounds_ms();
        let now = now_ms();
        assert!(start <= now && now < end);
        assert!((28..=31).contains(&((end - start) / 86_400_000)));
    }
}
