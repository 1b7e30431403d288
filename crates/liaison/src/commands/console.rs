//! `liaison console link`: a one-time link into the web console, for an
//! operator or an organisation's admin, printed as the last line.

use crate::config::Config;
use clap::{Args, Subcommand};
use store::Store;

#[derive(Subcommand)]
pub enum ConsoleCommand {
    /// Prints a one-time login link valid 10 minutes (the last line).
    Link(LinkArgs),
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct LinkArgs {
    /// A link for an operator (every organisation, the operators' pages).
    #[arg(long)]
    operator: bool,
    /// A link for the admin of this organisation only.
    #[arg(long, value_name = "ORG")]
    org: Option<String>,
}

/// Where the console is reached: the public URL, else the listen address
/// (`0.0.0.0` and `[::]` shown as `localhost`).
pub fn base_url(config: &Config) -> String {
    if let Some(u) = &config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = match config.listen.split_once(':') {
        Some(("0.0.0.0", port)) | Some(("[::]", port)) => format!("localhost:{port}"),
        _ => config.listen.clone(),
    };
    format!("http://{host}")
}

/// Issues a link and returns its URL.
pub async fn link_url(
    store: &Store,
    config: &Config,
    org: Option<&store::Org>,
) -> anyhow::Result<(String, service::console::IssuedLink)> {
    let link = service::console::issue_link(store, org).await?;
    let url = format!("{}/console/login/{}", base_url(config), link.secret);
    Ok((url, link))
}

pub async fn run(store: &Store, config: &Config, cmd: ConsoleCommand) -> anyhow::Result<()> {
    match cmd {
        ConsoleCommand::Link(args) => {
            let org = match (&args.org, args.operator) {
                (Some(slug), _) => Some(service::orgs::find(store, slug).await?),
                (None, _) => None,
            };
            let (url, link) = link_url(store, config, org.as_ref()).await?;
            let who = match &org {
                Some(o) => format!("the admin of {}", o.slug),
                None => "an operator".to_owned(),
            };
            println!(
                "one-time console link {} for {who}, valid until {} (opens once; keep it secret):",
                link.label,
                link.expires
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            );
            println!("{url}");
        }
    }
    Ok(())
}
