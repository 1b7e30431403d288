//! Directory sources: an organisation's users and groups read from its
//! identity provider instead of pushed over SCIM. The one kind today is a
//! Keycloak realm, followed through Keycloak's own admin REST API (no plugin):
//! a full reconciliation on a schedule and on demand ([`sync`]), and the
//! realm's admin and user events in between ([`follow`]), both applied through
//! the directory's SCIM service so that validation, uniqueness, the outbox and
//! everything downstream are the same as for SCIM pushes ([`dir`]).
//!
//! What belongs here: talking to the identity provider ([`keycloak`], over
//! `outbound`, the one HTTP layer of outbound calls), mapping its entries to SCIM resources,
//! planning and applying the difference, cursors and the follower's loop
//! ([`runner`]). What does not: the source's configuration rules and their
//! command line and admin API (the `liaison` binary), storage (`store`), SCIM
//! rules (`scim`, `directory`).
//!
//! Keycloak's answers are hostile input: every page, list, body and string is
//! bounded, every id checked before it reaches a URL or a filter; nothing is
//! written before everything a run needs is read, so an outage delays a run
//! and never leaves a half-applied realm.

pub mod dir;
pub mod follow;
pub mod keycloak;
pub mod runner;
pub mod sync;

pub use keycloak::{Bounds, Keycloak, KeycloakConfig, KeycloakError};
pub use outbound::{HttpError, Limits as HttpLimits};
pub use runner::{Ran, RunError, Runner, SourceMetrics};
pub use sync::{Change, Op, Options, Progress, Report};
