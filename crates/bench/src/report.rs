//! The benchmark's results: a JSON document and one Markdown table row, plus the
//! reading of a server process's peak resident memory from `/proc`.

use serde::Serialize;

/// Everything one run measured. `None` fields were not measured (phase skipped).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub url: String,
    pub users: usize,
    pub concurrency: usize,
    pub create: Create,
    pub lookup: Option<Lookup>,
    pub email: Option<EmailLookup>,
    pub page: Option<Page>,
    pub group: Option<Group>,
    pub server_memory: Option<Memory>,
}

/// (a) Creating the users.
#[derive(Debug, Clone, Serialize)]
pub struct Create {
    pub count: usize,
    pub seconds: f64,
    pub per_second: f64,
}

/// (b) `filter=userName eq "…"` lookups by concurrent clients.
#[derive(Debug, Clone, Serialize)]
pub struct Lookup {
    pub seconds: f64,
    pub requests: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// (b2) Lookups by e-mail from one client, one after the other: medians (p50)
/// of `emails.value eq "…"`, of `emails[type eq "work" and value eq "…"]`, and
/// of the same lookup read from the JSON documents rather than the index
/// (`emails[value eq "…" and not (display pr)]`: `display` is not indexed).
#[derive(Debug, Clone, Serialize)]
pub struct EmailLookup {
    pub repetitions: usize,
    pub eq_p50_ms: f64,
    pub complex_p50_ms: f64,
    pub json_scan_repetitions: usize,
    pub json_scan_p50_ms: f64,
}

/// (c) One page of the user list.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub start_index: usize,
    pub count: usize,
    pub returned: usize,
    pub repetitions: usize,
    pub median_ms: f64,
}

/// (d) One large group.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Members the group had before the timed operations.
    pub members: usize,
    pub batch: usize,
    pub build_seconds: f64,
    pub repetitions: usize,
    pub patch_add_one_median_ms: f64,
    pub put_all_median_ms: f64,
}

/// (e) The server process's memory, from `/proc/PID/status`.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub pid: u32,
    pub peak_rss_mib: f64,
    pub rss_mib: f64,
}

/// Columns of [`Report::markdown_row`].
pub fn markdown_header() -> String {
    [
        "| Server | Users | Clients | Creates/s | Lookups/s | Lookup p50 ms | Lookup p99 ms \
         | E-mail eq p50 ms | emails[type,value] p50 ms | E-mail JSON scan p50 ms \
         | Page of 100 ms | Group build s | PATCH +1 member ms | PUT all members ms | Peak RSS MiB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    .join("\n")
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

impl Report {
    /// One row of the table whose header is [`markdown_header`].
    pub fn markdown_row(&self) -> String {
        let lookup = self.lookup.as_ref();
        let group = self.group.as_ref();
        let email = self.email.as_ref();
        let cells = [
            self.label.replace('|', "/"),
            self.users.to_string(),
            self.concurrency.to_string(),
            cell(Some(self.create.per_second), 0),
            cell(lookup.map(|l| l.per_second), 0),
            cell(lookup.map(|l| l.p50_ms), 2),
            cell(lookup.map(|l| l.p99_ms), 2),
            cell(email.map(|e| e.eq_p50_ms), 2),
            cell(email.map(|e| e.complex_p50_ms), 2),
            cell(email.map(|e| e.json_scan_p50_ms), 1),
            cell(self.page.as_ref().map(|p| p.median_ms), 2),
            cell(group.map(|g| g.build_seconds), 1),
            cell(group.map(|g| g.patch_add_one_median_ms), 2),
            cell(group.map(|g| g.put_all_median_ms), 1),
            cell(self.server_memory.as_ref().map(|m| m.peak_rss_mib), 0),
        ];
        format!("| {} |", cells.join(" | "))
    }
}

/// A `kB` field (such as `VmHWM` or `VmRSS`) of a `/proc/PID/status` text, in KiB.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Reads the peak and current resident set size of process `pid`.
pub fn read_memory(pid: u32) -> std::io::Result<Option<Memory>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(status_field_kib(&status, "VmHWM")
        .zip(status_field_kib(&status, "VmRSS"))
        .map(|(hwm, rss)| Memory {
            pid,
            peak_rss_mib: mib(hwm),
            rss_mib: mib(rss),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tliaison\nVmPeak:\t  812345 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";

    #[test]
    fn reads_kib_fields() {
        assert_eq!(status_field_kib(STATUS, "VmHWM"), Some(20480));
        assert_eq!(status_field_kib(STATUS, "VmRSS"), Some(10240));
        assert_eq!(status_field_kib(STATUS, "VmSwap"), None);
        assert_eq!(status_field_kib("VmHWM:\tlots kB\n", "VmHWM"), None);
        // A field name must match whole, not as a prefix of a longer one.
        assert_eq!(status_field_kib("VmHWMx:\t1 kB\n", "VmHWM"), None);
    }

    #[test]
    fn reads_own_memory() {
        let me = read_memory(std::process::id()).expect("own /proc status");
        let me = me.expect("VmHWM and VmRSS present");
        assert!(me.peak_rss_mib >= me.rss_mib && me.rss_mib > 0.0);
    }

    fn report() -> Report {
        Report {
            label: "Liaison | SQLite".into(),
            url: "http://127.0.0.1:1/o/a/scim/v2".into(),
            users: 2000,
            concurrency: 8,
            create: Create {
                count: 2000,
                seconds: 2.0,
                per_second: 1000.0,
            },
            lookup: Some(Lookup {
                seconds: 5.0,
                requests: 5000,
                per_second: 1000.0,
                p50_ms: 1.234,
                p99_ms: 9.876,
            }),
            email: Some(EmailLookup {
                repetitions: 100,
                eq_p50_ms: 0.9,
                complex_p50_ms: 1.0,
                json_scan_repetitions: 10,
                json_scan_p50_ms: 25.04,
            }),
            page: None,
            group: None,
            server_memory: Some(Memory {
                pid: 1,
                peak_rss_mib: 42.4,
                rss_mib: 40.0,
            }),
        }
    }

    #[test]
    fn markdown_row_matches_header() {
        let row = report().markdown_row();
        assert_eq!(
            row,
            "| Liaison / SQLite | 2000 | 8 | 1000 | 1000 | 1.23 | 9.88 | 0.90 | 1.00 | 25.0 | – | – | – | – | 42 |"
        );
        let columns = |s: &str| s.matches('|').count();
        let header = markdown_header();
        let first = header.lines().next().unwrap_or_default();
        assert_eq!(columns(first), columns(&row));
    }

    #[test]
    fn json_has_every_phase() {
        let v = serde_json::to_value(report()).expect("serializable");
        assert_eq!(v["create"]["per_second"], 1000.0);
        assert_eq!(v["lookup"]["requests"], 5000);
        assert!(v["group"].is_null());
        assert_eq!(v["server_memory"]["pid"], 1);
    }
}
