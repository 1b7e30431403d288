//! `liaison app add|list|set|remove`: the apps an organisation is provisioned into.
//! The rules are [`service::apps`]'; this module maps arguments and prints.

use clap::{Args, Subcommand};
use provision::{Adopt, AppKind, Deprovision, GroupsAs};
use serde_json::{Map, Value};
use service::apps::{self, NewApp};
use service::types::{AppName, EnvVar, FilePath, HttpUrl};
use service::Caller;
use store::Store;

#[derive(Subcommand)]
pub enum AppCommand {
    /// Adds an app to an organisation and enqueues the delivery of every user
    /// and group the organisation has.
    Add(AddArgs),
    /// Lists the apps of an organisation with their outbox counts.
    List {
        /// The organisation's slug.
        org: String,
    },
    /// Changes an app: whether existing accounts may be adopted.
    Set {
        /// The organisation's slug.
        org: String,
        /// The app's name.
        name: String,
        /// Whether accounts the app already has, which Liaison did not create,
        /// may be adopted by `liaison sync --adopt`, and how they are matched.
        #[arg(long, value_enum)]
        adopt: Adopt,
    },
    /// Removes an app, with its pending deliveries and what Liaison knows it holds.
    /// Nothing is removed from the app itself.
    Remove {
        /// The organisation's slug.
        org: String,
        /// The app's name.
        name: String,
    },
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("credential").required(true))]
pub struct AddArgs {
    /// The organisation's slug.
    pub org: String,
    /// The kind of app.
    #[arg(value_enum)]
    pub kind: AppKind,
    /// The app's base URL (http or https).
    #[arg(long, value_parser = HttpUrl::parse)]
    pub url: HttpUrl,
    /// A file holding the credential (synapse: an admin access token; nextcloud:
    /// user:app-password; rocketchat: user-id:token; scim: a bearer token).
    #[arg(long, group = "credential")]
    pub credential_file: Option<std::path::PathBuf>,
    /// An environment variable of the server holding the credential.
    #[arg(long, group = "credential", value_parser = EnvVar::parse)]
    pub credential_env: Option<EnvVar>,
    /// The app's name in the organisation (default: the kind).
    #[arg(long, value_parser = AppName::parse)]
    pub name: Option<AppName>,
    /// What groups become (default per kind: synapse rooms, nextcloud groups,
    /// rocketchat rooms, scim groups).
    #[arg(long, value_enum)]
    pub groups_as: Option<GroupsAs>,
    /// What happens to a user deleted from the directory.
    #[arg(long, value_enum, default_value_t = Deprovision::Disable)]
    pub deprovision: Deprovision,
    /// Synapse: the homeserver's server_name (required).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Synapse: the auth_provider of the external id linking accounts.
    #[arg(long)]
    pub auth_provider: Option<String>,
    /// Nextcloud: the quota of new accounts (e.g. `5 GB`).
    #[arg(long)]
    pub quota: Option<String>,
    /// SCIM: replace resources with PUT instead of PATCH.
    #[arg(long)]
    pub no_patch: bool,
    /// Whether accounts the app already has, which Liaison did not create, may
    /// be adopted by `liaison sync --adopt` (default: never, they are
    /// collisions).
    #[arg(long, value_enum)]
    pub adopt: Option<Adopt>,
}

impl AddArgs {
    fn to_new_app(&self) -> anyhow::Result<NewApp> {
        let credential_file = match &self.credential_file {
            Some(path) => {
                let absolute = std::path::absolute(path)?;
                Some(FilePath::parse(&absolute.to_string_lossy()).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let mut settings = Map::new();
        let mut put = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                settings.insert(key.to_owned(), Value::String(v.clone()));
            }
        };
        put("server_name", &self.server_name);
        put("auth_provider", &self.auth_provider);
        put("quota", &self.quota);
        if self.no_patch {
            settings.insert("use_patch".into(), Value::Bool(false));
        }
        Ok(NewApp {
            kind: self.kind,
            name: self.name.clone(),
            url: self.url.clone(),
            credential_file,
            credential_env: self.credential_env.clone(),
            groups_as: self.groups_as,
            deprovision: Some(self.deprovision),
            settings,
            adopt: self.adopt,
        })
    }
}

pub async fn run(store: &Store, cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Add(args) => {
            let org = service::orgs::find(store, &args.org).await?;
            let added = apps::add(
                store,
                &org,
                &args.to_new_app()?,
                Caller::Operator,
                apps::Targets::Any,
            )
            .await?;
            for w in &added.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "added app {} ({}, {}) to {}; credential from {}; {} deliveries enqueued",
                added.app.name,
                added.app.kind,
                added.app.base_url,
                org.slug,
                added.app.credential,
                added.enqueued
            );
        }
        AppCommand::List { org: slug } => {
            let org = service::orgs::find(store, &slug).await?;
            let apps = apps::list(store, &org).await?;
            if apps.is_empty() {
                println!("no apps in {}", org.slug);
                return Ok(());
            }
            let rows: Vec<[String; 9]> = apps
                .into_iter()
                .map(|a| {
                    [
                        a.name,
                        a.kind.to_string(),
                        a.url,
                        a.groups_as.to_string(),
                        a.deprovision.to_string(),
                        a.adopt.as_str().to_owned(),
                        a.credential,
                        a.pending.to_string(),
                        a.poisoned.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "NAME",
                    "KIND",
                    "URL",
                    "GROUPS-AS",
                    "DEPROVISION",
                    "ADOPT",
                    "CREDENTIAL",
                    "PENDING",
                    "POISONED",
                ],
                &rows,
            );
        }
        AppCommand::Set {
            org: slug,
            name,
            adopt,
        } => {
            let org = service::orgs::find(store, &slug).await?;
            let change = apps::AppChange { adopt: Some(adopt) };
            let app = apps::change(store, &org, &name, &change, Caller::Operator).await?;
            println!(
                "app {} of {}: adopt {}",
                app.name,
                org.slug,
                app.adopt.as_str()
            );
        }
        AppCommand::Remove { org: slug, name } => {
            let org = service::orgs::find(store, &slug).await?;
            apps::remove(store, &org, &name).await?;
            println!("removed app {name} from {}", org.slug);
        }
    }
    Ok(())
}

/// Prints rows under a header, columns padded to their widest cell.
pub(crate) fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
