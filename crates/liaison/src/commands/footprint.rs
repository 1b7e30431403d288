//! `liaison footprint report|queries`: the rules are [`service::footprint`]'s;
//! this module maps arguments, shows progress and writes the reports.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use footprint::i18n::Lang;
use footprint::report::Report;
use footprint::settings::{FootprintSettings, UsageSource};
use footprint::Month;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use store::Store;

use service::footprint::{compute_month, Computed};

#[derive(Subcommand)]
pub enum FootprintCommand {
    /// Computes the footprint of a month and prints or writes its report. A
    /// month that is over is kept, so that later reports chart it.
    Report(ReportArgs),
    /// Prints the PromQL queries a report of the month runs (evaluation time
    /// in Unix seconds, a tab, the query), to check them against Prometheus.
    Queries {
        /// The month, YYYY-MM.
        #[arg(long)]
        period: String,
    },
}

#[derive(Args)]
pub struct ReportArgs {
    /// The month, YYYY-MM.
    #[arg(long)]
    pub period: String,
    /// One organisation only (its figures and the cluster's totals).
    #[arg(long)]
    pub org: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// A directory to write into (`footprint-<period>.json|csv`, or one
    /// `footprint-<org>-<period>.html` per organisation) instead of standard
    /// output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Reads the usage from this CSV file instead of the configured source.
    #[arg(long)]
    pub usage: Option<PathBuf>,
    /// Language of the HTML pages: en or fr.
    #[arg(long, default_value = "en")]
    pub lang: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Html,
}

pub async fn run(
    store: &Store,
    settings: &FootprintSettings,
    cmd: FootprintCommand,
) -> anyhow::Result<()> {
    let args = match cmd {
        FootprintCommand::Report(args) => args,
        FootprintCommand::Queries { period } => {
            let month = Month::parse(&period)?;
            for q in footprint::prometheus::queries(
                &settings.prometheus,
                month,
                settings.org_label.as_deref(),
            ) {
                println!("{}\t{}", q.time, q.promql);
            }
            return Ok(());
        }
    };
    let month = Month::parse(&args.period)?;
    let lang = Lang::parse(&args.lang).context("--lang must be en or fr")?;
    if let Some(slug) = &args.org {
        store
            .org_by_slug(slug)
            .await?
            .with_context(|| format!("no organisation {slug}"))?;
    }
    let bar = ProgressBar::new(0);
    let from_prometheus = args.usage.is_none() && settings.usage == UsageSource::Prometheus;
    if from_prometheus && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} Prometheus {bar:30} {pos}/{len} {msg}")
        {
            bar.set_style(style);
        }
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut progress = |done: usize, total: usize, label: &str| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(label.to_owned());
    };
    let computed =
        compute_month(store, settings, month, args.usage.as_deref(), &mut progress).await?;
    bar.finish_and_clear();
    let report = match &args.org {
        Some(slug) => computed
            .report
            .for_org(slug)
            .with_context(|| format!("organisation {slug} is not in the report"))?,
        None => computed.report.clone(),
    };
    for w in &report.warnings {
        eprintln!(
            "warning: {}",
            w.trim_start_matches(footprint::report::OPERATOR_ONLY)
        );
    }
    write(
        &computed,
        &report,
        args.format,
        args.output.as_deref(),
        lang,
    )
}

fn write(
    computed: &Computed,
    report: &Report,
    format: Format,
    output: Option<&Path>,
    lang: Lang,
) -> anyhow::Result<()> {
    let emit = |name: String, text: String| -> anyhow::Result<()> {
        match output {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                let path = dir.join(name);
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("{}", path.display());
                Ok(())
            }
            None => {
                print!("{text}");
                Ok(())
            }
        }
    };
    match format {
        Format::Json => emit(
            format!("footprint-{}.json", report.period),
            serde_json::to_string_pretty(report)? + "\n",
        ),
        Format::Csv => emit(
            format!("footprint-{}.csv", report.period),
            footprint::report::to_csv(report),
        ),
        Format::Html => {
            if output.is_none() && report.organisations.len() != 1 {
                bail!("HTML to standard output needs --org (one page); or give --output DIR");
            }
            for o in &report.organisations {
                let page =
                    footprint::report::to_html(report, &o.org, computed.history_of(&o.org), lang)
                        .expect("the organisation is in the report");
                emit(format!("footprint-{}-{}.html", o.org, report.period), page)?;
            }
            Ok(())
        }
    }
}
