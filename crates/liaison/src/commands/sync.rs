//! `liaison sync <org>`: reconciliation of the apps with the directory.
//!
//! Lists each app (or the one named with `--app`), compares it with the
//! directory and, unless `--dry-run`, repairs the drift
//! ([`provision::sync::reconcile`]). Extra accounts and groups are reported and
//! left alone unless `--remove-extra` is given; left alone, they do not count as
//! remaining drift. Existing accounts the app's `adopt` setting allows to adopt
//! are listed; `--adopt` adopts them. A repair that meets an account Liaison
//! did not create is reported as a collision and changes nothing. The exit
//! code is 0 when no drift remains (and every app
//! could be listed), 1 otherwise.

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use provision::sync::{Drift, DriftKind, SyncOptions, SyncProgress};
use serde_json::{json, Value};
use service::sync::AppOutcome;
use std::io::IsTerminal;
use store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub struct SyncArgs {
    /// The organisation's slug.
    org: String,
    /// Reconcile only this app.
    #[arg(long)]
    app: Option<String>,
    /// Report the drift, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Deprovision accounts the directory does not know (disable or delete, per
    /// the app's policy), delete unknown groups (policy `delete` only) and remove
    /// unknown members from managed groups.
    #[arg(long)]
    remove_extra: bool,
    /// Adopt the existing accounts the app's `adopt` setting allows (listed by
    /// a run without it, `--dry-run` for instance): each is linked to its
    /// directory user, then brought to the directory's state.
    #[arg(long)]
    adopt: bool,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Returns the process exit code.
pub async fn run(store: &Store, args: SyncArgs) -> anyhow::Result<std::process::ExitCode> {
    let org = service::orgs::find(store, &args.org).await?;
    let opts = SyncOptions {
        dry_run: args.dry_run,
        remove_extra: args.remove_extra,
        adopt: args.adopt,
    };
    let bar = ProgressBar::new(0);
    if args.format == Format::Json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {prefix} {wide_bar} {pos}/{len} {msg}")
        {
            bar.set_style(style);
        }
    }
    let progress = |p: SyncProgress| match p {
        SyncProgress::Listing { app } => {
            bar.set_prefix(app);
            bar.set_message("listing");
            bar.tick();
        }
        SyncProgress::Repairing { done, total, .. } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message("repairing");
        }
        SyncProgress::Verifying { .. } => bar.set_message("verifying"),
        SyncProgress::Done { .. } => bar.set_message("done"),
    };
    let report = service::sync::run(store, &org, args.app.as_deref(), &opts, &progress).await?;
    bar.finish_and_clear();

    let clean = report.clean();
    let outcomes = report.apps;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&org.slug, &outcomes))?
        ),
        Format::Text => print_text(&org.slug, &outcomes, &opts),
    }
    Ok(if clean {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

fn to_json(org: &str, outcomes: &[AppOutcome]) -> Value {
    let apps: Vec<Value> = outcomes
        .iter()
        .map(|o| match o {
            AppOutcome::Report(r) => serde_json::to_value(r).unwrap_or(Value::Null),
            AppOutcome::Failed { app, kind, error } => json!({
                "app": app, "kind": kind, "error": error,
                "drift": [], "repaired": 0, "remaining": null,
            }),
        })
        .collect();
    json!({ "org": org, "apps": apps })
}

fn kind_word(k: DriftKind) -> &'static str {
    match k {
        DriftKind::Missing => "missing",
        DriftKind::Extra => "extra",
        DriftKind::Different => "different",
    }
}

fn resource_word(r: provision::sync::DriftResource) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn line(d: &Drift) -> String {
    let resource = serde_json::to_value(d.resource)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut s = format!("  {:<10} {:<11} {}", kind_word(d.kind), resource, d.name);
    if !d.fields.is_empty() {
        s.push_str(&format!(" ({})", d.fields.join(", ")));
    }
    s
}

fn print_text(org: &str, outcomes: &[AppOutcome], opts: &SyncOptions) {
    println!(
        "organisation {org}{}",
        if opts.dry_run { " (dry run)" } else { "" }
    );
    for o in outcomes {
        match o {
            AppOutcome::Failed { app, kind, error } => {
                println!("app {app} ({kind}): not reconciled: {error}");
            }
            AppOutcome::Report(r) => {
                println!(
                    "app {} ({}): {} drift item(s), {} repaired, {} remaining",
                    r.app,
                    r.kind,
                    r.drift.len(),
                    r.repaired,
                    r.remaining
                );
                for d in &r.drift {
                    let mut l = line(d);
                    if d.kind == DriftKind::Extra && !opts.remove_extra {
                        l.push_str("  [left alone; --remove-extra to deprovision]");
                    }
                    println!("{l}");
                }
                if !opts.dry_run && r.remaining > 0 {
                    println!("  still drifting after repair:");
                    for d in r
                        .left
                        .iter()
                        .filter(|d| d.kind != DriftKind::Extra || opts.remove_extra)
                    {
                        println!("  {}", line(d));
                    }
                }
                let adopting = opts.adopt && !opts.dry_run;
                for a in &r.adoptable {
                    let verb = if adopting { "adoption" } else { "adoptable" };
                    println!(
                        "  {verb:<10} user        {} -> {} ({})",
                        a.user_name,
                        a.app_id,
                        a.by.as_str()
                    );
                }
                if !r.adoptable.is_empty() && !adopting {
                    println!("  [run with --adopt to adopt these accounts]");
                }
                if r.adopted > 0 {
                    println!("  {} account(s) adopted", r.adopted);
                }
                for c in &r.collisions {
                    println!(
                        "  collision  {:<11} {}: {} (left unchanged)",
                        resource_word(c.resource),
                        c.name,
                        c.error
                    );
                }
                for e in &r.errors {
                    println!("  repair failed: {e}");
                }
            }
        }
    }
}
