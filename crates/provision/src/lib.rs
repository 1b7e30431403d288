//! Provisioning: makes each app of an organisation (Matrix Synapse, Nextcloud,
//! Rocket.Chat, any SCIM service provider) hold the users and groups the directory
//! holds.
//!
//! A [`Connector`] speaks one app's own admin API and nothing else: it creates or
//! updates a user or group idempotently, (de)activates, deletes, manages
//! memberships, and lists what the app has for reconciliation. The outbox worker
//! (which decides *what* to deliver and *when*, with retries) is built on top of
//! this trait and never sees an app's wire format.

pub mod connectors;
pub mod deliver;
#[cfg(feature = "fakes")]
pub mod fakes;
pub mod registry;
pub mod sync;
pub mod worker;

use serde::{Deserialize, Serialize};

/// The app settings the code branches on are the store's types (parsed when
/// an app is read), re-exported here where they have always been used.
pub use store::{Adopt, AppKind, Deprovision, GroupsAs, UnknownSetting};

/// A user as the directory wants it to be in an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    /// The SCIM id in Liaison (stable).
    pub scim_id: String,
    /// The identity provider's subject (`externalId`), when known.
    pub external_id: Option<String>,
    pub user_name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// The primary (or first) e-mail address.
    pub email: Option<String>,
    pub active: bool,
}

impl UserSpec {
    /// The name to show in an app: `displayName`, else the given and family
    /// names, else the `userName`.
    pub fn shown_name(&self) -> String {
        if let Some(d) = self
            .display_name
            .as_deref()
            .filter(|d| !d.trim().is_empty())
        {
            return d.to_string();
        }
        let full = [self.given_name.as_deref(), self.family_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if full.trim().is_empty() {
            self.user_name.clone()
        } else {
            full.trim().to_string()
        }
    }
}

/// A random password nobody knows, for accounts that sign in through SSO only:
/// 36 letters and digits, plus one character of each class that password
/// policies ask for.
pub(crate) fn random_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    let mut p = Alphanumeric.sample_string(&mut rand::thread_rng(), 36);
    p.push_str("-Aa1");
    p
}

/// A group as the directory wants it to be in an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub scim_id: String,
    pub display_name: String,
}

/// A user as an app has it, for drift detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppUser {
    /// The app's own id (Matrix user id, Nextcloud user id, Rocket.Chat `_id`, SCIM id).
    pub app_id: String,
    /// The login name in the app.
    pub user_name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    /// The app's own record of the account's last activity, in milliseconds
    /// since the Unix epoch: Synapse's `last_seen_ts`, Nextcloud's `lastLogin`,
    /// Rocket.Chat's `lastLogin`. `None` when the account was never active or the
    /// app does not say (SCIM). Read for metering only: reconciliation ignores it.
    #[serde(default)]
    pub last_active_ms: Option<i64>,
}

/// A group as an app has it, for drift detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppGroup {
    pub app_id: String,
    pub display_name: String,
    /// App ids of the member users.
    pub members: Vec<String>,
}

/// Why a delivery failed, which decides whether it is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The app is unreachable, overloaded or failing (connection refused, timeout,
    /// 429, 5xx): retry later with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// The app refused the change for good (validation error, forbidden): retrying
    /// the same change will not help.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The app already holds a different account under the name this user maps to.
    /// Reported, never merged.
    #[error("collision: {0}")]
    Collision(String),
    /// The app does not know this id (deleted behind Liaison's back).
    #[error("not found in the app: {0}")]
    NotFound(String),
}

impl DeliveryError {
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient(_))
    }

    /// The kind of failure, for logs: the message may name the person (a
    /// user name taken in the app, say) and is kept in the outbox instead.
    pub fn kind(&self) -> &'static str {
        match self {
            DeliveryError::Transient(_) => "transient",
            DeliveryError::Permanent(_) => "permanent",
            DeliveryError::Collision(_) => "collision",
            DeliveryError::NotFound(_) => "not_found",
        }
    }
}

/// One app's admin API. Every method is idempotent: repeating a call after an
/// unknown outcome (timeout, crash) leaves the app in the same state.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    fn kind(&self) -> AppKind;

    /// Creates the user, or updates it to match `user` when it exists. `known_id`
    /// is the app id recorded at an earlier delivery. Returns the app's id.
    /// Does not change the active state: see [`Connector::set_user_active`].
    async fn upsert_user(
        &self,
        user: &UserSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError>;

    /// Enables or disables the account (sign-in refused, data kept).
    async fn set_user_active(&self, app_id: &str, active: bool) -> Result<(), DeliveryError>;

    /// Deletes the account (only when the organisation's policy says so).
    async fn delete_user(&self, app_id: &str) -> Result<(), DeliveryError>;

    /// Creates the group (room, space, team...) or renames it. Returns its app id.
    async fn upsert_group(
        &self,
        group: &GroupSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError>;

    async fn delete_group(&self, app_id: &str) -> Result<(), DeliveryError>;

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError>;

    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError>;

    /// Every user the app has (paged internally).
    async fn list_users(&self) -> Result<Vec<AppUser>, DeliveryError>;

    /// Every group the app has, with members.
    async fn list_groups(&self) -> Result<Vec<AppGroup>, DeliveryError>;

    /// The app id of the account Liaison itself signs in with (Synapse admin,
    /// Nextcloud admin user, Rocket.Chat bot user), which reconciliation never
    /// reports or touches. `None` when unknown.
    fn service_account(&self) -> Option<String> {
        None
    }

    /// App ids reconciliation never reports or touches: the service account and
    /// the app's built-in accounts (Rocket.Chat's `rocket.cat` bot).
    fn protected_accounts(&self) -> Vec<String> {
        self.service_account().into_iter().collect()
    }

    /// The login name (as [`AppUser::user_name`] shows it) a directory user name
    /// maps to in this app, for matching accounts by name.
    fn app_user_name(&self, user_name: &str) -> String {
        user_name.to_owned()
    }

    /// The name (as [`AppGroup::display_name`] shows it) a group's
    /// `displayName` maps to in this app.
    fn app_group_name(&self, display_name: &str) -> String {
        display_name.to_owned()
    }
}

/// Characters of a delivery error kept where it is recorded (`last_error` of
/// the outbox and the links) and reported.
pub const ERROR_CHARS: usize = 500;

impl DeliveryError {
    /// The error as recorded and shown to the organisation: at most
    /// [`ERROR_CHARS`] characters, without control characters. What an app
    /// answered is already only a short excerpt ([`outbound::excerpt`]).
    pub fn report(&self) -> String {
        outbound::clip(&self.to_string(), ERROR_CHARS)
    }

    /// Whether this is a collision.
    pub fn is_collision(&self) -> bool {
        matches!(self, DeliveryError::Collision(_))
    }
}

impl From<outbound::HttpError> for DeliveryError {
    /// Unreachable, 5xx, 408 and 429 are transient; 404 is `NotFound`; a
    /// redirect, an oversized answer or listing and other statuses are
    /// permanent; an answer that does not parse is transient (a proxy's page).
    fn from(e: outbound::HttpError) -> Self {
        use outbound::HttpError;
        let msg = e.to_string();
        match e {
            HttpError::Status { status: 404, .. } => DeliveryError::NotFound(msg),
            HttpError::Decode(_) => DeliveryError::Transient(msg),
            e if e.is_transient() => DeliveryError::Transient(msg),
            _ => DeliveryError::Permanent(msg),
        }
    }
}

/// The HTTP client of the connectors ([`outbound`]'s rules, default limits).
pub(crate) fn http_client() -> Result<outbound::Client, DeliveryError> {
    outbound::Client::new(outbound::Limits::default())
        .map_err(|e| DeliveryError::Permanent(format!("HTTP client: {e}")))
}

/// Maps an HTTP status that is not a success, and a detail already cut short,
/// to a delivery error.
pub(crate) fn status_error(status: outbound::StatusCode, detail: &str) -> DeliveryError {
    outbound::HttpError::Status {
        status: status.as_u16(),
        excerpt: outbound::excerpt(detail),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_name_falls_back_to_names_then_user_name() {
        let mut u = UserSpec {
            scim_id: "1".into(),
            external_id: None,
            user_name: "jdoe".into(),
            display_name: None,
            given_name: Some("Jane".into()),
            family_name: Some("Doe".into()),
            email: None,
            active: true,
        };
        assert_eq!(u.shown_name(), "Jane Doe");
        u.given_name = None;
        u.family_name = None;
        assert_eq!(u.shown_name(), "jdoe");
        u.display_name = Some("J. Doe".into());
        assert_eq!(u.shown_name(), "J. Doe");
    }

    #[test]
    fn random_passwords_differ_and_meet_policies() {
        let a = random_password();
        assert_ne!(a, random_password());
        assert!(a.len() >= 40 && a.ends_with("-Aa1"));
    }
}
