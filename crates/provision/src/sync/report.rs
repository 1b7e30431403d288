//! What a reconciliation run is asked to do and what it reports: the options,
//! the drift items, the per-app report, the progress events and the errors.

use crate::{Adopt, AppKind, DeliveryError};
use serde::Serialize;
use store::AppRecord;

/// What a run does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Report only: change nothing.
    pub dry_run: bool,
    /// Deprovision extra accounts (disable or delete, per the app's policy),
    /// delete extra groups (under the `delete` policy only) and remove unknown
    /// members from managed groups.
    pub remove_extra: bool,
    /// Adopt the accounts listed in [`AppReport::adoptable`] (the app's
    /// [`Adopt`] setting must allow it; with `dry_run`, they are only listed).
    pub adopt: bool,
}

/// An existing account a directory user may adopt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adoption {
    /// The user's SCIM id.
    pub id: String,
    pub user_name: String,
    /// The account's app id.
    pub app_id: String,
    /// How it was matched: `by-username` or `by-email`.
    pub by: Adopt,
}

/// A resource whose delivery met an account (or group) Liaison did not create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollisionItem {
    pub resource: DriftResource,
    pub id: String,
    pub name: String,
    /// The app's explanation (bounded).
    pub error: String,
}

/// What a drift item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftResource {
    User,
    Group,
    Membership,
}

impl DriftResource {
    /// The word for logs and error lines.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DriftResource::User => "user",
            DriftResource::Group => "group",
            DriftResource::Membership => "membership",
        }
    }
}

/// The kind of a drift item (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftKind {
    Missing,
    Extra,
    Different,
}

/// One difference between the app and the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub resource: DriftResource,
    /// The SCIM id (of the group, for a membership); `None` for extras.
    pub id: Option<String>,
    /// The app's id (of the group, for a membership), when the app has it.
    pub app_id: Option<String>,
    /// User name or group name; `group/user` for a membership.
    pub name: String,
    pub kind: DriftKind,
    /// The differing fields (`different` only).
    pub fields: Vec<String>,
    /// Memberships: the member's SCIM id, when it is a directory user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// Memberships: the member's app id, when the app has the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_app_id: Option<String>,
    /// Extra accounts: whether the account is active in the app.
    #[serde(skip)]
    pub app_active: Option<bool>,
    /// Extra groups the service account belongs to (the app's own): never removed.
    #[serde(skip)]
    pub protected: bool,
}

impl Drift {
    pub(super) fn new(resource: DriftResource, kind: DriftKind, name: impl Into<String>) -> Drift {
        Drift {
            resource,
            id: None,
            app_id: None,
            name: name.into(),
            kind,
            fields: Vec::new(),
            member_id: None,
            member_app_id: None,
            app_active: None,
            protected: false,
        }
    }

    /// Whether this item still needs action under `opts` and the app's policy.
    /// Extras count only when their removal was asked for and would change
    /// something (an extra account already disabled satisfies `disable`).
    pub fn counts(&self, app: &AppRecord, opts: &SyncOptions) -> bool {
        match self.kind {
            DriftKind::Missing | DriftKind::Different => true,
            DriftKind::Extra => opts.remove_extra && self.removable(app),
        }
    }

    fn removable(&self, app: &AppRecord) -> bool {
        let delete = app.deprovision.deletes();
        match self.resource {
            DriftResource::User => delete || self.app_active.unwrap_or(true),
            DriftResource::Group => delete && !self.protected,
            DriftResource::Membership => true,
        }
    }
}

/// The outcome of reconciling one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppReport {
    pub app: String,
    pub kind: AppKind,
    /// Everything found before repairs (extras included).
    pub drift: Vec<Drift>,
    /// Repairs that succeeded.
    pub repaired: usize,
    /// Drift items that still count after the run (see [`Drift::counts`]).
    pub remaining: usize,
    /// The items left after repairs (all of them, extras included); equal to
    /// `drift` on a dry run.
    #[serde(skip)]
    pub left: Vec<Drift>,
    /// Repairs that failed, with the app's or store's error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Repairs refused because the app holds an account or group Liaison did
    /// not create: nothing was changed there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collisions: Vec<CollisionItem>,
    /// Existing accounts the app's `adopt` setting allows to adopt (listed
    /// before anything is done).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adoptable: Vec<Adoption>,
    /// Accounts adopted by this run.
    pub adopted: usize,
}

/// Progress of a run, for progress bars and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProgress {
    /// Listing the directory and the app.
    Listing {
        app: String,
    },
    /// `done` of `total` repairs made.
    Repairing {
        app: String,
        done: usize,
        total: usize,
    },
    /// Listing again after repairs.
    Verifying {
        app: String,
    },
    Done {
        app: String,
        remaining: usize,
    },
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    /// The app could not be listed.
    #[error("app {app}: {error}")]
    App { app: String, error: DeliveryError },
    /// Adoption was asked for an app whose `adopt` setting is `never`.
    #[error("app {0}: its adopt setting is never; set it to by-username or by-email first")]
    AdoptionNotAllowed(String),
}
