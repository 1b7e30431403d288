//! `liaison-bench`: measures a SCIM 2.0 server over HTTP — Liaison or any other.
//!
//! Phases, in order: (a) create N users with C concurrent clients; (b) look users
//! up with `filter=userName eq "…"` from C clients for D seconds; (b2) look users
//! up by e-mail, one request at a time (indexed, and the same lookup read from
//! the documents as a baseline); (c) fetch one
//! page of 100 users; (d) build one group of M members in PATCH batches, then time
//! a PATCH adding one member and a PUT of the whole member list with one member
//! changed; (e) read the server's peak resident memory from `/proc/PID/status`.
//! The results are printed as a JSON object followed by one Markdown table row.
//! Every request is checked; the first failure stops the run with an error.

mod client;
mod report;
mod stats;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio::task::JoinSet;

use client::Scim;
use report::{Create, EmailLookup, Group, Lookup, Page, Report};
use stats::{median, ms, percentile};

/// Benchmark a SCIM 2.0 server (users, filtered lookups, paging, a large group).
#[derive(Debug, Parser)]
#[command(name = "liaison-bench", version)]
struct Args {
    /// SCIM base URL, e.g. http://127.0.0.1:8080/o/bench/scim/v2
    #[arg(long, required_unless_present = "markdown_header")]
    url: Option<String>,
    /// Bearer token sent with every request.
    #[arg(long, env = "SCIM_BENCH_TOKEN", default_value = "")]
    token: String,
    /// Users to create.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    users: usize,
    /// Concurrent clients for the create and lookup phases.
    #[arg(short = 'c', long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds of filtered lookups.
    #[arg(short = 'd', long, default_value_t = 30)]
    lookup_seconds: u64,
    /// E-mail lookups of each indexed form (0: skip the e-mail phase).
    #[arg(long, default_value_t = 200)]
    email_lookups: usize,
    /// E-mail lookups read from the documents (the baseline; each scans every user).
    #[arg(long, default_value_t = 10)]
    json_scan_lookups: usize,
    /// Members of the large group (at most the users created, less --repetitions).
    #[arg(long, default_value_t = 100_000)]
    group_members: usize,
    /// Members added per PATCH while building the group.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Repetitions of the page, PATCH and PUT timings (their median is reported).
    #[arg(short = 'r', long, default_value_t = 7)]
    repetitions: usize,
    /// Skip the group phase.
    #[arg(long)]
    skip_group: bool,
    /// Server process whose peak resident memory (VmHWM) is reported.
    #[arg(long)]
    pid: Option<u32>,
    /// Name of the server in the Markdown row.
    #[arg(long, default_value = "server")]
    label: String,
    /// Prefix of the userNames created; defaults to one derived from the clock so
    /// that runs against the same server do not collide.
    #[arg(long)]
    prefix: Option<String>,
    /// Seconds before one request is abandoned (and the run fails).
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
    /// Also write the Markdown row to this file.
    #[arg(long)]
    markdown_out: Option<std::path::PathBuf>,
    /// Print the Markdown table header and exit.
    #[arg(long)]
    markdown_header: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.markdown_header {
        println!("{}", report::markdown_header());
        return Ok(());
    }
    let report = run(&args).await?;
    let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
    let row = report.markdown_row();
    println!("{json}");
    println!("{row}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.markdown_out {
        std::fs::write(path, format!("{row}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn run(args: &Args) -> Result<Report> {
    let Some(url) = args.url.as_deref() else {
        bail!("--url is required");
    };
    if args.users == 0 || args.concurrency == 0 {
        bail!("--users and --concurrency must be at least 1");
    }
    let scim = Scim::new(
        url,
        &args.token,
        args.concurrency,
        Duration::from_secs(args.timeout_secs),
    )?;
    let prefix = args.prefix.clone().unwrap_or_else(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("bench{secs}")
    });

    eprintln!(
        "[a] creating {} users with {} clients",
        args.users, args.concurrency
    );
    let (ids, create) = create_users(&scim, &prefix, args.users, args.concurrency).await?;
    eprintln!("    {:.0} creates/s", create.per_second);

    let lookup = if args.lookup_seconds > 0 {
        eprintln!(
            "[b] filtered lookups by {} clients for {} s",
            args.concurrency, args.lookup_seconds
        );
        let l = lookups(
            &scim,
            &prefix,
            args.users,
            args.concurrency,
            args.lookup_seconds,
        )
        .await?;
        eprintln!(
            "    {:.0} lookups/s, p50 {:.2} ms, p99 {:.2} ms",
            l.per_second, l.p50_ms, l.p99_ms
        );
        Some(l)
    } else {
        None
    };

    let email = if args.email_lookups > 0 {
        eprintln!(
            "[b2] {} e-mail lookups of each form, {} read from the documents",
            args.email_lookups, args.json_scan_lookups
        );
        let e = email_lookups(
            &scim,
            &prefix,
            args.users,
            args.email_lookups,
            args.json_scan_lookups,
        )
        .await?;
        eprintln!(
            "    eq p50 {:.2} ms, [type and value] p50 {:.2} ms, from the documents p50 {:.1} ms",
            e.eq_p50_ms, e.complex_p50_ms, e.json_scan_p50_ms
        );
        Some(e)
    } else {
        None
    };

    let repetitions = args.repetitions.max(1);
    eprintln!("[c] one page of 100 users, {repetitions} times");
    let page = page(&scim, args.users, repetitions).await?;
    eprintln!("    median {:.2} ms", page.median_ms);

    let members = args
        .group_members
        .min(args.users.saturating_sub(repetitions));
    let group = if args.skip_group || members == 0 {
        None
    } else {
        eprintln!(
            "[d] a group of {members} members in PATCH batches of {}",
            args.batch.max(1)
        );
        let g = group(
            &scim,
            &prefix,
            &ids,
            members,
            args.batch.max(1),
            repetitions,
        )
        .await?;
        eprintln!(
            "    built in {:.1} s; PATCH +1 median {:.2} ms; PUT all median {:.1} ms",
            g.build_seconds, g.patch_add_one_median_ms, g.put_all_median_ms
        );
        Some(g)
    };

    let server_memory = match args.pid {
        Some(pid) => {
            report::read_memory(pid).with_context(|| format!("reading /proc/{pid}/status"))?
        }
        None => None,
    };

    Ok(Report {
        label: args.label.clone(),
        url: url.to_owned(),
        users: args.users,
        concurrency: args.concurrency,
        create,
        lookup,
        email,
        page: Some(page),
        group,
        server_memory,
    })
}

fn user_name(prefix: &str, n: usize) -> String {
    format!("{prefix}-{n:07}")
}

/// Waits for every task; the first error (or panic) fails the phase.
async fn join_all<T: 'static>(mut set: JoinSet<Result<T>>) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        match joined.context("a client task stopped")? {
            Ok(v) => out.push(v),
            Err(e) => {
                set.abort_all();
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// (a) Creates `n` users; returns their ids indexed by user number.
async fn create_users(
    scim: &Scim,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> Result<(Vec<String>, Create)> {
    let next = Arc::new(AtomicUsize::new(0));
    let tenth = (n / 10).max(1);
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let (scim, next, prefix) = (scim.clone(), next.clone(), prefix.to_owned());
        set.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok(made);
                }
                let id = scim.create_user(&user_name(&prefix, i), i).await?;
                made.push((i, id));
                if (i + 1) % tenth == 0 {
                    eprintln!("    {} / {n}", i + 1);
                }
            }
        });
    }
    let batches = join_all(set).await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut ids = vec![String::new(); n];
    for (i, id) in batches.into_iter().flatten() {
        if let Some(slot) = ids.get_mut(i) {
            *slot = id;
        }
    }
    Ok((
        ids,
        Create {
            count: n,
            seconds,
            per_second: n as f64 / seconds.max(f64::EPSILON),
        },
    ))
}

/// A small xorshift generator: enough to spread lookups over the users.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// (b) Random filtered lookups until `seconds` have passed.
async fn lookups(
    scim: &Scim,
    prefix: &str,
    n: usize,
    concurrency: usize,
    seconds: u64,
) -> Result<Lookup> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut set = JoinSet::new();
    for worker in 0..concurrency {
        let (scim, prefix) = (scim.clone(), prefix.to_owned());
        set.spawn(async move {
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ ((worker as u64 + 1) * 0x2545_F491));
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let name = user_name(&prefix, rng.below(n));
                let sent = Instant::now();
                scim.find_user(&name).await?;
                samples.push(sent.elapsed());
            }
            Ok(samples)
        });
    }
    let mut samples: Vec<Duration> = join_all(set).await?.into_iter().flatten().collect();
    let elapsed = started.elapsed().as_secs_f64();
    let requests = samples.len();
    let p50 = percentile(&mut samples, 50.0).unwrap_or_default();
    let p99 = percentile(&mut samples, 99.0).unwrap_or_default();
    Ok(Lookup {
        seconds: elapsed,
        requests,
        per_second: requests as f64 / elapsed.max(f64::EPSILON),
        p50_ms: ms(p50),
        p99_ms: ms(p99),
    })
}

/// (b2) E-mail lookups of random users, one at a time.
async fn email_lookups(
    scim: &Scim,
    prefix: &str,
    n: usize,
    repetitions: usize,
    json_scan: usize,
) -> Result<EmailLookup> {
    let mut rng = XorShift(0x5DEE_CE66_D1CE_4E5B);
    let email = |rng: &mut XorShift| format!("{}@bench.example", user_name(prefix, rng.below(n)));
    let time = |filters: Vec<String>| async move {
        let mut samples = Vec::with_capacity(filters.len());
        for f in filters {
            let sent = Instant::now();
            scim.find_one(&f).await?;
            samples.push(sent.elapsed());
        }
        anyhow::Ok(ms(median(&mut samples).unwrap_or_default()))
    };
    let eq = (0..repetitions)
        .map(|_| format!("emails.value eq \"{}\"", email(&mut rng)))
        .collect();
    let complex = (0..repetitions)
        .map(|_| {
            format!(
                "emails[type eq \"work\" and value eq \"{}\"]",
                email(&mut rng)
            )
        })
        .collect();
    let scan = (0..json_scan.max(1))
        .map(|_| {
            format!(
                "emails[value eq \"{}\" and not (display pr)]",
                email(&mut rng)
            )
        })
        .collect();
    Ok(EmailLookup {
        repetitions,
        eq_p50_ms: time(eq).await?,
        complex_p50_ms: time(complex).await?,
        json_scan_repetitions: json_scan.max(1),
        json_scan_p50_ms: time(scan).await?,
    })
}

/// (c) `GET /Users?startIndex=5000&count=100` (from 1 when there are fewer users).
async fn page(scim: &Scim, n: usize, repetitions: usize) -> Result<Page> {
    const COUNT: usize = 100;
    let start_index = if n >= 5_000 + COUNT { 5_000 } else { 1 };
    let mut samples = Vec::with_capacity(repetitions);
    let mut returned = 0;
    for _ in 0..repetitions {
        let sent = Instant::now();
        returned = scim.list_page(start_index, COUNT).await?;
        samples.push(sent.elapsed());
    }
    if returned < COUNT.min(n) {
        bail!("the page at startIndex={start_index} held {returned} users, expected {COUNT}");
    }
    Ok(Page {
        start_index,
        count: COUNT,
        returned,
        repetitions,
        median_ms: ms(median(&mut samples).unwrap_or_default()),
    })
}

/// (d) Builds a group of the first `members` users, then times single-member
/// PATCHes (adding the next users) and whole-group PUTs that each change one
/// membership relative to the group's state before them.
async fn group(
    scim: &Scim,
    prefix: &str,
    ids: &[String],
    members: usize,
    batch: usize,
    repetitions: usize,
) -> Result<Group> {
    let display_name = format!("{prefix}-group");
    let Some(initial) = ids.get(..members) else {
        bail!("not enough users for a group of {members}");
    };
    let Some(extra) = ids.get(members..members + repetitions) else {
        bail!("not enough users for {repetitions} single-member additions");
    };
    let group_id = scim.create_group(&display_name).await?;

    let started = Instant::now();
    let batches = initial.len().div_ceil(batch);
    for (done, chunk) in initial.chunks(batch).enumerate() {
        scim.add_members(&group_id, chunk).await?;
        if (done + 1) % (batches / 10).max(1) == 0 {
            eprintln!(
                "    {} / {members} members after {:.1} s",
                (done * batch + chunk.len()),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let build_seconds = started.elapsed().as_secs_f64();

    let mut patch = Vec::with_capacity(repetitions);
    for id in extra {
        let sent = Instant::now();
        scim.add_members(&group_id, std::slice::from_ref(id))
            .await?;
        let took = sent.elapsed();
        patch.push(took);
        eprintln!("    PATCH +1 member: {:.2} ms", ms(took));
    }

    // The group now holds initial + extra. Alternate between that list less one
    // member and the whole list again: each PUT changes exactly one membership.
    let all: Vec<String> = initial.iter().chain(extra).cloned().collect();
    let mut put = Vec::with_capacity(repetitions);
    for r in 0..repetitions {
        let list = if r % 2 == 0 {
            let drop = r / 2;
            all.iter()
                .enumerate()
                .filter(|&(i, _)| i != drop)
                .map(|(_, id)| id.clone())
                .collect()
        } else {
            all.clone()
        };
        let sent = Instant::now();
        scim.put_group(&group_id, &display_name, &list).await?;
        let took = sent.elapsed();
        put.push(took);
        eprintln!("    PUT {} members: {:.1} ms", list.len(), ms(took));
    }

    Ok(Group {
        members,
        batch,
        build_seconds,
        repetitions,
        patch_add_one_median_ms: ms(median(&mut patch).unwrap_or_default()),
        put_all_median_ms: ms(median(&mut put).unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_fixed_width() {
        assert_eq!(user_name("b", 42), "b-0000042");
    }

    #[test]
    fn xorshift_stays_in_range_and_spreads() {
        let mut rng = XorShift(12345);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = rng.below(10);
            assert!(v < 10);
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn args_parse_with_defaults() {
        let a = Args::try_parse_from(["liaison-bench", "--url", "http://x/scim/v2"])
            .expect("valid arguments");
        assert_eq!(a.users, 100_000);
        assert_eq!(a.batch, 1_000);
        assert!(Args::try_parse_from(["liaison-bench"]).is_err());
        assert!(Args::try_parse_from(["liaison-bench", "--markdown-header"]).is_ok());
    }
}
