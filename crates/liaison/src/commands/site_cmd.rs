//! `liaison org set`, `liaison domain`, `liaison maintenance` and
//! `liaison pages`: the command-line side of [`super::site`].

use crate::config::Config;
use anyhow::Context;
use clap::{Args, Subcommand};
use service::site::{self, NewWindow, ProfilePatch};
use service::types::{
    ColorOrEmpty, EmailOrEmpty, HttpUrlOrEmpty, Language, LanguageOrEmpty, ServiceName, Text,
};
use service::Caller;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::{Org, Store};
use time::OffsetDateTime;

/// `liaison org set`: the organisation's profile. An empty value clears a field.
#[derive(Args)]
pub struct OrgSet {
    pub org: String,
    /// Name shown on the error pages and statements.
    #[arg(long, value_parser = Text::parse)]
    pub display_name: Option<Text>,
    /// Logo (https URL).
    #[arg(long, value_parser = HttpUrlOrEmpty::parse)]
    pub logo_url: Option<HttpUrlOrEmpty>,
    /// Primary colour, `#rrggbb`.
    #[arg(long, value_parser = ColorOrEmpty::parse)]
    pub color: Option<ColorOrEmpty>,
    /// Contact e-mail address shown on the pages.
    #[arg(long, value_parser = EmailOrEmpty::parse)]
    pub contact: Option<EmailOrEmpty>,
    /// Status page link.
    #[arg(long, value_parser = HttpUrlOrEmpty::parse)]
    pub status_url: Option<HttpUrlOrEmpty>,
    /// Language of the pages when the visitor's is not available (`fr`).
    #[arg(long, value_parser = LanguageOrEmpty::parse)]
    pub language: Option<LanguageOrEmpty>,
    /// Pricing category (see `[pricing.categories]`).
    #[arg(long, value_parser = Text::parse)]
    pub category: Option<Text>,
    /// Customer name in the accounting system (Dokos).
    #[arg(long, value_parser = Text::parse)]
    pub billing_customer: Option<Text>,
}

#[derive(Subcommand)]
pub enum DomainCommand {
    /// Maps a host name to the organisation (for the error pages).
    Add { org: String, host: String },
    /// Lists host names (of one organisation, or all).
    List { org: Option<String> },
    /// Removes a host name.
    Remove { org: String, host: String },
}

#[derive(Subcommand)]
pub enum MaintenanceCommand {
    /// Schedules a maintenance window; prints its id.
    Add {
        org: String,
        /// Start, RFC 3339 (`2026-12-01T20:00:00+01:00`).
        #[arg(long, value_parser = rfc3339)]
        from: OffsetDateTime,
        /// End, RFC 3339.
        #[arg(long, value_parser = rfc3339)]
        until: OffsetDateTime,
        /// Only this app (matched against the ingress' service or ingress name).
        #[arg(long, value_parser = ServiceName::parse)]
        app: Option<ServiceName>,
        #[arg(long, value_parser = Text::parse)]
        message_fr: Option<Text>,
        #[arg(long, value_parser = Text::parse)]
        message_en: Option<Text>,
        /// A message in another language: `--message de=Wartung`.
        #[arg(long, value_parser = lang_message)]
        message: Vec<(Language, Text)>,
    },
    /// Lists the windows not over yet.
    List { org: Option<String> },
    /// Cancels a window.
    Cancel { org: String, id: String },
}

fn lang_message(s: &str) -> Result<(Language, Text), String> {
    let (lang, text) = s
        .split_once('=')
        .ok_or_else(|| "expected LANG=TEXT".to_owned())?;
    Ok((Language::parse(lang.trim())?, Text::parse(text)?))
}

fn rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 date-time: {e}"))
}

/// `liaison pages`: the error pages listener.
#[derive(Args)]
pub struct PagesArgs {
    /// Address to listen on (default: `pages.listen` of the configuration).
    #[arg(long, env = "LIAISON_PAGES_LISTEN")]
    pub listen: Option<String>,
    /// Reads branding and maintenance from this TOML or JSON file instead of
    /// the database.
    #[arg(long = "static")]
    pub static_file: Option<PathBuf>,
}

async fn org(store: &Store, slug: &str) -> anyhow::Result<Org> {
    Ok(service::orgs::find(store, slug).await?)
}

pub async fn org_set(store: &Store, config: &Config, args: OrgSet) -> anyhow::Result<()> {
    let o = org(store, &args.org).await?;
    let patch = ProfilePatch {
        display_name: args.display_name,
        logo_url: args.logo_url,
        color: args.color,
        contact_email: args.contact,
        status_url: args.status_url,
        default_language: args.language,
        category: args.category,
        billing_customer: args.billing_customer,
    };
    let view = site::set_profile(
        store,
        &o,
        Caller::Operator,
        &patch,
        &config.pricing_categories(),
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&view)?);
    Ok(())
}

pub async fn domain(store: &Store, cmd: DomainCommand) -> anyhow::Result<()> {
    match cmd {
        DomainCommand::Add { org: slug, host } => {
            let o = org(store, &slug).await?;
            let host = site::add_domain(store, &o, Caller::Operator, &host).await?;
            println!("{host} -> {}", o.slug);
        }
        DomainCommand::List { org: slug } => {
            let only = match slug {
                Some(s) => Some(org(store, &s).await?.id),
                None => None,
            };
            let names: BTreeMap<i64, String> = store
                .list_orgs()
                .await?
                .into_iter()
                .map(|o| (o.id, o.slug))
                .collect();
            for d in store.domains(only).await? {
                println!("{}\t{}", d.host, names.get(&d.org_id).map_or("?", |s| s));
            }
        }
        DomainCommand::Remove { org: slug, host } => {
            let o = org(store, &slug).await?;
            site::remove_domain(store, &o, Caller::Operator, &host).await?;
            println!("removed {host}");
        }
    }
    Ok(())
}

pub async fn maintenance(store: &Store, cmd: MaintenanceCommand) -> anyhow::Result<()> {
    match cmd {
        MaintenanceCommand::Add {
            org: slug,
            from,
            until,
            app,
            message_fr,
            message_en,
            message,
        } => {
            let o = org(store, &slug).await?;
            let mut messages: BTreeMap<Language, Text> = message.into_iter().collect();
            for (lang, m) in [("fr", message_fr), ("en", message_en)] {
                if let Some(m) = m {
                    messages.insert(Language::parse(lang).map_err(anyhow::Error::msg)?, m);
                }
            }
            let w = site::add_window(
                store,
                &o,
                &NewWindow {
                    from,
                    until,
                    app,
                    messages,
                },
            )
            .await?;
            println!(
                "scheduled {} for {} from {} until {}",
                w.id, w.org, w.from, w.until
            );
            println!("{}", w.id);
        }
        MaintenanceCommand::List { org: slug } => {
            let orgs = match slug {
                Some(s) => vec![org(store, &s).await?],
                None => store.list_orgs().await?,
            };
            for o in orgs {
                for w in site::windows(store, &o).await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        w.id,
                        w.org,
                        w.app.as_deref().unwrap_or("*"),
                        w.from,
                        w.until
                    );
                }
            }
        }
        MaintenanceCommand::Cancel { org: slug, id } => {
            let o = org(store, &slug).await?;
            site::cancel_window(store, &o, &id).await?;
            println!("cancelled {id}");
        }
    }
    Ok(())
}

/// Runs the error pages until SIGTERM or Ctrl-C.
///
/// Like nginx's workers, one single-threaded runtime per core accepts on its
/// own `SO_REUSEPORT` socket bound to the same address (the kernel spreads
/// connections across them): no work stealing and no cross-thread wake-ups on
/// a path that only renders a page. Responses go out without Nagle's delay.
pub async fn pages(
    config: &Config,
    args: PagesArgs,
    store: Option<Store>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listen = args.listen.unwrap_or_else(|| config.pages.listen.clone());
    let source: Arc<dyn pages::Source> = match (&args.static_file, store) {
        (Some(file), _) => Arc::new(pages::StaticSource::new(file.clone())),
        (None, Some(store)) => Arc::new(site::DbSource(store)),
        (None, None) => anyhow::bail!("liaison pages needs a database or --static FILE"),
    };
    let cfg = pages::PagesConfig {
        refresh: Duration::from_secs(config.pages.refresh_secs.max(1)),
        announce_ahead: Duration::from_secs(config.pages.announce_hours.saturating_mul(3600)),
        locales_dir: config.pages.locales_dir.clone(),
    };
    // Loads once (failing here if the source is unusable) and refreshes on
    // this runtime.
    let app = pages::router(source, cfg).await?;
    let addr = tokio::net::lookup_host(&listen)
        .await
        .with_context(|| format!("cannot resolve {listen}"))?
        .next()
        .with_context(|| format!("{listen} resolves to no address"))?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The first socket fixes the port (when 0 was asked); the others share it.
    let first = reuseport_listener(addr).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..workers {
        listeners
            .push(reuseport_listener(addr).with_context(|| format!("cannot listen on {addr}"))?);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::with_capacity(workers);
    for (i, listener) in listeners.into_iter().enumerate() {
        let app = app.clone();
        let mut stopped = stopped.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pages-{i}"))
            .spawn(move || -> std::io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    use axum::serve::ListenerExt;
                    let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        })
                        .await
                })
            })?;
        threads.push(thread);
    }
    tracing::info!(%addr, workers, "error pages listening");
    shutdown.await;
    let _ = stop.send(true);
    let joined = tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a pages thread panicked")))
            })
            .collect::<std::io::Result<Vec<()>>>()
    })
    .await?;
    joined?;
    Ok(())
}

/// A listening socket on `addr` with `SO_REUSEPORT`, as a non-blocking std
/// listener to hand to another runtime.
fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}
