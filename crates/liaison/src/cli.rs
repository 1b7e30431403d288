//! Command-line interface.

use crate::commands;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::metering::Metering;
use crate::metrics::Metrics;
use anyhow::Context;
use clap::{Parser, Subcommand};
use directory::Directory;
use provision::worker::Worker;
use std::path::PathBuf;
use std::sync::Arc;
use store::Store;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "liaison",
    version,
    about = "SCIM 2.0 backbone for hosting collectives"
)]
pub struct Cli {
    /// TOML configuration file; `LIAISON_*` environment variables override it.
    #[arg(long, short, global = true, env = "LIAISON_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies database migrations, then serves HTTP until SIGTERM or Ctrl-C.
    Serve,
    /// Applies database migrations and exits.
    Migrate,
    /// Runs a demonstration: an SQLite database (unless configured otherwise), an
    /// organisation `demo`, a fresh token, and the server.
    Demo,
    /// Manages organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manages API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manages the apps an organisation is provisioned into.
    #[command(subcommand)]
    App(commands::apps::AppCommand),
    /// Reconciles apps with the directory: reports drift and repairs it.
    Sync(commands::sync::SyncArgs),
    /// Inspects and retries pending deliveries.
    #[command(subcommand)]
    Outbox(commands::outbox::OutboxCommand),
    /// Activity metering: webhook secrets, polling, periods, statements.
    #[command(subcommand)]
    Meter(commands::meter::MeterCommand),
    /// Host names mapped to organisations (for the error pages).
    #[command(subcommand)]
    Domain(commands::site_cmd::DomainCommand),
    /// Scheduled maintenance windows.
    #[command(subcommand)]
    Maintenance(commands::site_cmd::MaintenanceCommand),
    /// Serves the error and maintenance pages (the ingress' default backend).
    Pages(commands::site_cmd::PagesArgs),
    /// The identity provider an organisation's users and groups are read from
    /// (a Keycloak realm) instead of SCIM pushes.
    #[command(subcommand)]
    Source(commands::source::SourceCommand),
    /// Prints the admin API's OpenAPI document (as served at `/openapi.json`).
    Openapi,
    /// Carbon footprint of each organisation's share of the hosting.
    #[command(subcommand)]
    Footprint(commands::footprint::FootprintCommand),
    /// The web console: one-time login links.
    #[command(subcommand)]
    Console(commands::console::ConsoleCommand),
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Creates an organisation.
    Create {
        /// Short name used in URLs (`/o/<slug>/...`): lower-case letters, digits, `-`.
        slug: String,
        /// Human-readable name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// Lists organisations.
    List,
    /// Sets the organisation's profile: branding, pricing category, billing
    /// customer. An empty value clears a field.
    Set(commands::site_cmd::OrgSet),
    /// Deletes an organisation and everything it holds.
    Delete { slug: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issues a token for an organisation (or, with --operator, for all). The
    /// token is printed alone on the last line; it is not stored and cannot be
    /// shown again.
    Issue {
        /// The organisation's slug.
        #[arg(required_unless_present = "operator")]
        org: Option<String>,
        /// A token valid for every organisation.
        #[arg(long, conflicts_with = "org")]
        operator: bool,
    },
    /// Revokes a token by its id (the 16 hex digits after `lsn_`).
    Revoke {
        /// The organisation's slug, or `-` for an operator token.
        org: String,
        token_id: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi = cli.command {
        println!("{}", http::admin::openapi().to_pretty_json()?);
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    init_tracing(&config.log);
    match cli.command {
        Command::Openapi => unreachable!("handled above"),
        Command::Serve => {
            let store = open(&config).await?;
            serve(config, store).await
        }
        Command::Migrate => {
            open(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Demo => demo(config).await,
        Command::Org(OrgCommand::Set(args)) => {
            let store = open(&config).await?;
            commands::site_cmd::org_set(&store, &config, args).await
        }
        Command::Org(cmd) => {
            let store = open(&config).await?;
            org_command(&store, cmd).await
        }
        Command::Token(cmd) => {
            let store = open(&config).await?;
            token_command(&store, cmd).await
        }
        Command::App(cmd) => {
            let store = open(&config).await?;
            commands::apps::run(&store, cmd).await
        }
        Command::Sync(args) => {
            let store = open(&config).await?;
            let code = commands::sync::run(&store, args).await?;
            if code != std::process::ExitCode::SUCCESS {
                // Drift remains: the report is printed; the exit code says so.
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Outbox(cmd) => {
            let store = open(&config).await?;
            commands::outbox::run(&store, cmd).await
        }
        Command::Meter(cmd) => {
            let store = open(&config).await?;
            commands::meter::run(&store, &config, cmd).await
        }
        Command::Domain(cmd) => {
            let store = open(&config).await?;
            commands::site_cmd::domain(&store, cmd).await
        }
        Command::Maintenance(cmd) => {
            let store = open(&config).await?;
            commands::site_cmd::maintenance(&store, cmd).await
        }
        Command::Source(cmd) => {
            let store = open(&config).await?;
            let directory = Directory::new(store.clone(), config.directory_limits());
            let code = commands::source::run(&store, directory, cmd).await?;
            if code != std::process::ExitCode::SUCCESS {
                // The directory does not match the realm: the report says why.
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Pages(args) => {
            // With --static the pages need no database at all.
            let store = match args.static_file {
                Some(_) => None,
                None => Some(open(&config).await?),
            };
            commands::site_cmd::pages(&config, args, store, shutdown_signal()).await
        }
        Command::Footprint(cmd) => {
            let store = open(&config).await?;
            commands::footprint::run(&store, &config.footprint, cmd).await
        }
        Command::Console(cmd) => {
            let store = open(&config).await?;
            commands::console::run(&store, &config, cmd).await
        }
    }
}

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&config.database_url)))?;
    store.migrate().await.context("migrations failed")?;
    Ok(store)
}

/// The database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn serve(config: Config, store: Store) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let metrics = Metrics::new();
    // On SQLite this process owns the file: rows an earlier run leased (it was
    // killed) are taken back at once rather than when their lease expires.
    let worker_config = provision::worker::WorkerConfig {
        role: "serve",
        reclaim_at_start: store.dialect() == store::Dialect::Sqlite,
        ..config.provisioning.worker_config()
    };
    let worker = Worker::new(store.clone(), worker_config, metrics.worker.clone());
    // SIGTERM stops the server, the worker and reconciliation at once; they
    // drain side by side for at most `drain_secs`.
    let drain = std::time::Duration::from_secs(config.drain_secs);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker_task = config
        .provisioning
        .worker
        .then(|| tokio::spawn(worker.clone().run_until_drained(stopped.clone(), drain)));
    // Periodic reconciliation (0 = off); stops between two apps on shutdown.
    let reconcile_task = tokio::spawn(provision::sync::run_periodic(
        store.clone(),
        std::time::Duration::from_secs(config.provisioning.reconcile_interval_secs),
        stop.subscribe(),
    ));
    let metering = Arc::new(Metering::new(
        store.clone(),
        config.metering.clone(),
        config.pricing(),
        crate::metering::load_kek(&config)?,
    ));
    metering
        .prepare()
        .await
        .context("activity metering cannot start")?;
    let metering_task = tokio::spawn(metering.clone().run_periodic());
    let directory = Directory::new(store.clone(), config.directory_limits())
        .with_outbox_wake(worker.notifier());
    // The directory sources' follower (one process per source on PostgreSQL).
    let source_task = config.source.follow.then(|| {
        let runner = source::Runner::new(directory.clone(), metrics.source.clone());
        tokio::spawn(runner.run_periodic(
            std::time::Duration::from_secs(config.source.tick_secs),
            stop.subscribe(),
        ))
    });
    let state = Arc::new(AppState::new(store, config, metrics, metering, directory));
    tracing::info!(%addr, "listening");
    let mut http_stopped = stopped;
    let mut server = tokio::spawn(async move {
        axum::serve(listener, http::router(state))
            .with_graceful_shutdown(async move {
                let _ = http_stopped.wait_for(|stop| *stop).await;
            })
            .await
    });
    let ended = tokio::select! {
        () = shutdown_signal() => None,
        ended = &mut server => Some(ended),
    };
    tracing::info!(
        drain_secs = drain.as_secs(),
        "stopping: draining requests and deliveries"
    );
    let _ = stop.send(true);
    let deadline = tokio::time::Instant::now() + drain;
    let served = match ended {
        Some(ended) => ended,
        None => match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(ended) => ended,
            Err(_) => {
                tracing::warn!("requests still running at the drain deadline: closed");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    // The worker keeps its own deadline, then hands back what it holds.
    if let Some(task) = worker_task {
        let _ = task.await;
    }
    let mut reconcile_task = reconcile_task;
    if tokio::time::timeout_at(deadline, &mut reconcile_task)
        .await
        .is_err()
    {
        reconcile_task.abort();
    }
    if let Some(mut task) = source_task {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
        }
    }
    metering_task.abort();
    tracing::info!("stopped");
    served.context("the HTTP server task failed")??;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn demo(config: Config) -> anyhow::Result<()> {
    let store = open(&config).await?;
    if store.org_by_slug("demo").await?.is_none() {
        let mut tx = store.begin().await?;
        tx.create_org("demo", "Demo organisation").await?;
        tx.commit().await?;
    }
    let token = issue_token(&store, Some("demo")).await?;
    let base = commands::console::base_url(&config);
    let (link, _) = commands::console::link_url(&store, &config, None).await?;
    println!(
        "Liaison demo: organisation `demo` on {}",
        redact(&config.database_url)
    );
    println!("SCIM base URL: {base}/o/demo/scim/v2");
    println!("Try: curl -H 'Authorization: Bearer {token}' {base}/o/demo/scim/v2/Users");
    println!("Token:");
    println!("{token}");
    println!("Web console: {base}/console/");
    println!("Open the console (one-time operator link, valid 10 minutes):");
    println!("{link}");
    serve(config, store).await
}

async fn org_command(store: &Store, cmd: OrgCommand) -> anyhow::Result<()> {
    match cmd {
        OrgCommand::Create { slug, name } => {
            let org = service::orgs::create(store, &slug, name.as_deref()).await?;
            println!("created organisation {} ({})", org.slug, org.name);
        }
        OrgCommand::Set(_) => unreachable!("handled in run"),
        OrgCommand::List => {
            for org in store.list_orgs().await? {
                println!("{}\t{}", org.slug, org.name);
            }
        }
        OrgCommand::Delete { slug } => {
            service::orgs::delete(store, &slug).await?;
            println!("deleted organisation {slug}");
        }
    }
    Ok(())
}

/// The organisation of `slug`, or `None` for `-` (operator tokens).
async fn token_org(store: &Store, slug: &str) -> anyhow::Result<Option<store::Org>> {
    Ok(match slug {
        "-" => None,
        slug => Some(service::orgs::find(store, slug).await?),
    })
}

async fn issue_token(store: &Store, org: Option<&str>) -> anyhow::Result<String> {
    let org = match org {
        Some(slug) => Some(service::orgs::find(store, slug).await?),
        None => None,
    };
    Ok(service::tokens::issue_for(store, org.as_ref()).await?.token)
}

async fn token_command(store: &Store, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Issue { org, operator } => {
            let token = issue_token(store, if operator { None } else { org.as_deref() }).await?;
            let id = service::tokens::parse(&token)
                .map(|(id, _)| id)
                .unwrap_or_default();
            println!("token id: {id} (keep the token below secret; it is not shown again)");
            println!("{token}");
        }
        TokenCommand::Revoke { org, token_id } => {
            let org = token_org(store, &org).await?;
            service::tokens::revoke(store, org.as_ref(), &token_id).await?;
            println!("revoked token {token_id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://liaison:s3cret@db:5432/liaison"),
            "postgres://liaison:***@db:5432/liaison"
        );
        assert_eq!(redact("sqlite://liaison.db"), "sqlite://liaison.db");
    }
}
