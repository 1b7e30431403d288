//! `liaison-bench-provision`: initial provisioning of U users and G groups of M
//! members into Matrix Synapse, two ways with the same concurrency:
//!
//! - `liaison`: SCIM writes to a Liaison server whose organisation has a Synapse
//!   app; each phase is timed from its first write until the server's outbox is
//!   empty (`liaison_outbox_pending` on `/metrics` drops to 0);
//! - `direct`: a minimal client making the Synapse calls the provisioning needs
//!   and nothing else (a user `PUT`, a `createRoom`, an admin join).
//!
//! Phases, each finished before the next starts: users; groups (Liaison: empty
//! groups; direct: rooms); memberships (Liaison: one PATCH adding M members per
//! group; direct: one join per membership). The result is one JSON object on
//! standard output, then one Markdown table row.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(name = "liaison-bench-provision", version)]
struct Cli {
    #[command(subcommand)]
    path: Path,
}

#[derive(Debug, Subcommand)]
enum Path {
    /// Through Liaison: SCIM writes, deliveries by its outbox worker.
    Liaison {
        /// SCIM base URL of the organisation, e.g. http://127.0.0.1:8080/o/bench/scim/v2
        #[arg(long)]
        scim: String,
        /// The organisation's bearer token.
        #[arg(long, env = "SCIM_BENCH_TOKEN")]
        token: String,
        /// Liaison's metrics URL, e.g. http://127.0.0.1:8080/metrics
        #[arg(long)]
        metrics: String,
        #[command(flatten)]
        shape: Shape,
    },
    /// Directly against Synapse's admin API.
    Direct {
        /// Synapse's client-server base URL.
        #[arg(long)]
        synapse: String,
        /// An admin access token.
        #[arg(long, env = "SYNAPSE_ADMIN_TOKEN")]
        token: String,
        /// The homeserver's server_name.
        #[arg(long, default_value = "localhost")]
        server_name: String,
        #[command(flatten)]
        shape: Shape,
    },
}

#[derive(Debug, Args)]
struct Shape {
    /// Users to provision.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Groups to provision.
    #[arg(long, default_value_t = 500)]
    groups: usize,
    /// Members per group (users taken in turn).
    #[arg(long, default_value_t = 20)]
    members: usize,
    /// Concurrent requests.
    #[arg(short = 'c', long, default_value_t = 8)]
    concurrency: usize,
    /// Prefix of user names and group names (lower case); unique per run.
    #[arg(long)]
    prefix: String,
    /// Seconds a phase may take before the run fails.
    #[arg(long, default_value_t = 7200)]
    timeout_secs: u64,
}

/// The timings of one run.
#[derive(Debug, Serialize)]
struct Report {
    path: &'static str,
    users: usize,
    groups: usize,
    memberships: usize,
    concurrency: usize,
    users_secs: f64,
    groups_secs: f64,
    members_secs: f64,
    total_secs: f64,
    /// Deliveries (user, group and membership provisionings) per second.
    per_sec: f64,
    /// Liaison only: seconds spent in SCIM writes (within the phases).
    #[serde(skip_serializing_if = "Option::is_none")]
    scim_write_secs: Option<f64>,
}

impl Report {
    fn markdown_row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
            self.path,
            self.users,
            self.groups,
            self.memberships,
            self.concurrency,
            self.users_secs,
            self.groups_secs,
            self.members_secs,
            self.total_secs,
            self.per_sec
        )
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let report = match cli.path {
        Path::Liaison {
            scim,
            token,
            metrics,
            shape,
        } => liaison(&scim, &token, &metrics, &shape).await?,
        Path::Direct {
            synapse,
            token,
            server_name,
            shape,
        } => direct(&synapse, &token, &server_name, &shape).await?,
    };
    println!("{}", serde_json::to_string(&report)?);
    println!("{}", report.markdown_row());
    Ok(())
}

fn client(shape: &Shape) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(shape.concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(300))
        .build()
        .context("building the HTTP client")
}

/// Runs `job(0..n)` with `concurrency` jobs at a time; the first error stops it.
async fn pool<F, Fut>(n: usize, concurrency: usize, job: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let mut set: tokio::task::JoinSet<Result<()>> = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let job = job.clone();
        let next = next.clone();
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok(());
                }
                job(i).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.context("a worker task panicked")??;
    }
    Ok(())
}

/// Sends a JSON request and returns the JSON answer; any status but 2xx fails.
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: &str,
    content_type: &str,
    body: Option<&Value>,
) -> Result<Value> {
    let mut req = http.request(method.clone(), url).bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(serde_json::to_vec(b)?);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "{method} {url}: {status}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn user_name(prefix: &str, i: usize) -> String {
    format!("{prefix}u{i:05}")
}

fn group_name(prefix: &str, g: usize) -> String {
    format!("{prefix}g{g:04}")
}

/// The users of group `g`: `members` users taken in turn.
fn members_of(shape: &Shape, g: usize) -> impl Iterator<Item = usize> + '_ {
    (0..shape.members).map(move |k| (g * shape.members + k) % shape.users.max(1))
}

fn memberships(shape: &Shape) -> usize {
    shape.groups * shape.members.min(shape.users)
}

fn check(shape: &Shape) -> Result<()> {
    if shape.users == 0 || shape.concurrency == 0 {
        bail!("--users and --concurrency must be at least 1");
    }
    if shape.members > shape.users {
        bail!("--members cannot exceed --users");
    }
    if shape.prefix.is_empty()
        || !shape
            .prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        bail!("--prefix: lower-case letters and digits");
    }
    Ok(())
}

/// Pending and poisoned deliveries on Liaison's `/metrics`.
async fn outbox(http: &reqwest::Client, metrics: &str) -> Result<(u64, u64)> {
    let text = http
        .get(metrics)
        .send()
        .await
        .context("reading metrics")?
        .text()
        .await?;
    let sum = |name: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter(|l| l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next())
            .filter_map(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    };
    Ok((
        sum("liaison_outbox_pending"),
        sum("liaison_outbox_poisoned"),
    ))
}

/// Waits until Liaison's outbox is empty; fails on poisoned deliveries.
async fn until_delivered(http: &reqwest::Client, metrics: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let (pending, poisoned) = outbox(http, metrics).await?;
        if poisoned > 0 {
            bail!("{poisoned} deliveries were parked as poison (see `liaison outbox list`)");
        }
        if pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{pending} deliveries still pending after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn liaison(scim: &str, token: &str, metrics: &str, shape: &Shape) -> Result<Report> {
    check(shape)?;
    let http = client(shape)?;
    let timeout = Duration::from_secs(shape.timeout_secs);
    let base = scim.trim_end_matches('/').to_owned();
    let token = Arc::new(token.to_owned());
    let scim_json = "application/scim+json";
    let (pending, poisoned) = outbox(&http, metrics).await?;
    if pending + poisoned > 0 {
        bail!("the outbox is not empty at the start ({pending} pending, {poisoned} poisoned)");
    }
    let mut writing = Duration::ZERO;

    // Users.
    let start = Instant::now();
    let ids: Arc<Vec<std::sync::OnceLock<String>>> = Arc::new(
        (0..shape.users)
            .map(|_| std::sync::OnceLock::new())
            .collect(),
    );
    {
        let (http, base, token, ids) = (http.clone(), base.clone(), token.clone(), ids.clone());
        let prefix = shape.prefix.clone();
        pool(shape.users, shape.concurrency, move |i| {
            let (http, base, token, ids) = (http.clone(), base.clone(), token.clone(), ids.clone());
            let name = user_name(&prefix, i);
            async move {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name,
                    "displayName": format!("Bench User {i}"),
                    "emails": [{"value": format!("{name}@bench.example"), "primary": true}],
                });
                let url = format!("{base}/Users");
                let r = send(&http, Method::POST, &url, &token, scim_json, Some(&body)).await?;
                let id = r["id"].as_str().ok_or_else(|| anyhow!("no id in {r}"))?;
                let _ = ids[i].set(id.to_owned());
                Ok(())
            }
        })
        .await?;
    }
    writing += start.elapsed();
    until_delivered(&http, metrics, timeout).await?;
    let users_secs = start.elapsed().as_secs_f64();

    // Groups, empty.
    let start = Instant::now();
    let group_ids: Arc<Vec<std::sync::OnceLock<String>>> = Arc::new(
        (0..shape.groups)
            .map(|_| std::sync::OnceLock::new())
            .collect(),
    );
    {
        let (http, base, token, gids) =
            (http.clone(), base.clone(), token.clone(), group_ids.clone());
        let prefix = shape.prefix.clone();
        pool(shape.groups, shape.concurrency, move |g| {
            let (http, base, token, gids) =
                (http.clone(), base.clone(), token.clone(), gids.clone());
            let name = group_name(&prefix, g);
            async move {
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name,
                });
                let url = format!("{base}/Groups");
                let r = send(&http, Method::POST, &url, &token, scim_json, Some(&body)).await?;
                let id = r["id"].as_str().ok_or_else(|| anyhow!("no id in {r}"))?;
                let _ = gids[g].set(id.to_owned());
                Ok(())
            }
        })
        .await?;
    }
    writing += start.elapsed();
    until_delivered(&http, metrics, timeout).await?;
    let groups_secs = start.elapsed().as_secs_f64();

    // Memberships: one PATCH per group.
    let start = Instant::now();
    let plan: Arc<Vec<(String, Vec<String>)>> = Arc::new(
        (0..shape.groups)
            .map(|g| {
                let gid = group_ids[g].get().cloned().unwrap_or_default();
                let members = members_of(shape, g)
                    .map(|i| ids[i].get().cloned().unwrap_or_default())
                    .collect();
                (gid, members)
            })
            .collect(),
    );
    {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        pool(shape.groups, shape.concurrency, move |g| {
            let (http, base, token, plan) =
                (http.clone(), base.clone(), token.clone(), plan.clone());
            async move {
                let (gid, members) = &plan[g];
                let values: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": values}],
                });
                let url = format!("{base}/Groups/{gid}?excludedAttributes=members");
                send(&http, Method::PATCH, &url, &token, scim_json, Some(&body)).await?;
                Ok(())
            }
        })
        .await?;
    }
    writing += start.elapsed();
    until_delivered(&http, metrics, timeout).await?;
    let members_secs = start.elapsed().as_secs_f64();
    Ok(report(
        "liaison",
        shape,
        users_secs,
        groups_secs,
        members_secs,
        Some(writing),
    ))
}

fn report(
    path: &'static str,
    shape: &Shape,
    users_secs: f64,
    groups_secs: f64,
    members_secs: f64,
    writing: Option<Duration>,
) -> Report {
    let total_secs = users_secs + groups_secs + members_secs;
    let deliveries = shape.users + shape.groups + memberships(shape);
    Report {
        path,
        users: shape.users,
        groups: shape.groups,
        memberships: memberships(shape),
        concurrency: shape.concurrency,
        users_secs,
        groups_secs,
        members_secs,
        total_secs,
        per_sec: deliveries as f64 / total_secs.max(1e-9),
        scim_write_secs: writing.map(|w| w.as_secs_f64()),
    }
}

/// Percent-encodes a path segment (Matrix ids and room ids carry `@ : ! #`).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn direct(synapse: &str, token: &str, server_name: &str, shape: &Shape) -> Result<Report> {
    check(shape)?;
    let http = client(shape)?;
    let base = Arc::new(synapse.trim_end_matches('/').to_owned());
    let token = Arc::new(token.to_owned());
    let server = Arc::new(server_name.to_owned());
    let js = "application/json";

    // What the connector does once: lift the admin's rate limits.
    let me = send(
        &http,
        Method::GET,
        &format!("{base}/_matrix/client/v3/account/whoami"),
        &token,
        js,
        None,
    )
    .await?;
    let admin = me["user_id"]
        .as_str()
        .ok_or_else(|| anyhow!("whoami: {me}"))?;
    send(
        &http,
        Method::POST,
        &format!(
            "{base}/_synapse/admin/v1/users/{}/override_ratelimit",
            seg(admin)
        ),
        &token,
        js,
        Some(&json!({"messages_per_second": 0, "burst_count": 0})),
    )
    .await?;

    let start = Instant::now();
    {
        let (http, base, token, server) =
            (http.clone(), base.clone(), token.clone(), server.clone());
        let prefix = shape.prefix.clone();
        pool(shape.users, shape.concurrency, move |i| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let name = user_name(&prefix, i);
            let mxid = format!("@{name}:{server}");
            async move {
                let body = json!({
                    "displayname": format!("Bench User {i}"),
                    "threepids": [{"medium": "email", "address": format!("{name}@bench.example")}],
                    "external_ids": [{"auth_provider": "bench", "external_id": name}],
                });
                let url = format!("{base}/_synapse/admin/v2/users/{}", seg(&mxid));
                send(&http, Method::PUT, &url, &token, js, Some(&body)).await?;
                Ok(())
            }
        })
        .await?;
    }
    let users_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let rooms: Arc<Vec<std::sync::OnceLock<String>>> = Arc::new(
        (0..shape.groups)
            .map(|_| std::sync::OnceLock::new())
            .collect(),
    );
    {
        let (http, base, token, rooms) = (http.clone(), base.clone(), token.clone(), rooms.clone());
        let prefix = shape.prefix.clone();
        pool(shape.groups, shape.concurrency, move |g| {
            let (http, base, token, rooms) =
                (http.clone(), base.clone(), token.clone(), rooms.clone());
            let name = group_name(&prefix, g);
            async move {
                let body = json!({
                    "preset": "private_chat",
                    "visibility": "private",
                    "name": name,
                    "room_alias_name": format!("bench-{name}"),
                });
                let url = format!("{base}/_matrix/client/v3/createRoom");
                let r = send(&http, Method::POST, &url, &token, js, Some(&body)).await?;
                let id = r["room_id"]
                    .as_str()
                    .ok_or_else(|| anyhow!("no room_id: {r}"))?;
                let _ = rooms[g].set(id.to_owned());
                Ok(())
            }
        })
        .await?;
    }
    let groups_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let joins: Arc<Vec<(String, String)>> = Arc::new(
        (0..shape.groups)
            .flat_map(|g| {
                let room = rooms[g].get().cloned().unwrap_or_default();
                members_of(shape, g)
                    .map(|i| {
                        (
                            room.clone(),
                            format!("@{}:{server}", user_name(&shape.prefix, i)),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
    );
    {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let n = joins.len();
        pool(n, shape.concurrency, move |k| {
            let (http, base, token, joins) =
                (http.clone(), base.clone(), token.clone(), joins.clone());
            async move {
                let (room, user) = &joins[k];
                let url = format!("{base}/_synapse/admin/v1/join/{}", seg(room));
                let body = json!({ "user_id": user });
                send(&http, Method::POST, &url, &token, js, Some(&body)).await?;
                Ok(())
            }
        })
        .await?;
    }
    let members_secs = start.elapsed().as_secs_f64();
    Ok(report(
        "direct",
        shape,
        users_secs,
        groups_secs,
        members_secs,
        None,
    ))
}
