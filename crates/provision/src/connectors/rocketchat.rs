//! Rocket.Chat connector: the REST API (`/api/v1/...`) as documented at
//! <https://developer.rocket.chat/apidocs> ("Create User", "Update User", "Set
//! User Active Status", "Delete User", "Get Users List", "Get User's Info", the
//! private group (`groups.*`) and team (`teams.*`) endpoints).
//!
//! Authentication: the `X-User-Id` and `X-Auth-Token` headers of an admin's
//! personal access token, created with "Ignore Two Factor Authentication" (a
//! token without it gets `totp-required`, reported as a permanent error).
//!
//! Answers: `{"success": true, ...}`, or `{"success": false, "error": ...,
//! "errorType": ...}` (HTTP 400) which is classified by its error type: unknown
//! user, room or team → [`DeliveryError::NotFound`]; a name or e-mail already in
//! use → [`DeliveryError::Collision`]; anything else → `Permanent`. HTTP 401/403
//! are `Permanent`, 429 and 5xx `Transient`, network errors `Transient`; a 404
//! or 2xx without a Rocket.Chat body (wrong base URL, unknown endpoint) is
//! `Permanent`, never read as "already deleted".
//!
//! Choices:
//! - **Username** = the SCIM `userName` with every character outside Rocket.Chat's
//!   default username rule `[0-9a-zA-Z-_.]` replaced by `_` (`alice@example.org` →
//!   `alice_example.org`). Two names that map to one username are reported as a
//!   collision, never merged. Renaming in SCIM renames the Rocket.Chat account.
//! - **Password**: a random 40-character password, never stored or shown (people
//!   sign in through SSO). Accounts are created `verified`, without welcome e-mail
//!   and without a forced password change. Rocket.Chat requires an e-mail: a user
//!   without one is refused with a `Permanent` error.
//! - **Which accounts are Liaison's**: the recorded app id (`known_id`) first;
//!   then each account Liaison creates carries the custom field
//!   [`LIAISON_FIELD`] = SCIM id. Rocket.Chat keeps custom fields only when the
//!   workspace declares them (Administration → Accounts → Registration → Custom
//!   Fields, e.g. `{"liaisonId": {"type": "text", "required": false}}`); without
//!   it, a retry after a lost answer to `users.create` reports a collision instead
//!   of adopting the account. An account with the username but without the tag
//!   (or with another SCIM id) is a [`DeliveryError::Collision`].
//! - **Service account**: the admin Liaison signs in with and the `rocket.cat`
//!   bot are never updated, deactivated or deleted, even through a recorded id
//!   or a tag: a [`DeliveryError::Collision`].
//! - **Groups**: [`GroupsAs::Rooms`] (and [`GroupsAs::Groups`]) make private groups
//!   (`groups.*`), [`GroupsAs::Spaces`] private teams (`teams.*`, type 1),
//!   [`GroupsAs::None`] provisions no group. The room or team name is the SCIM
//!   `displayName` with characters outside `[0-9a-zA-Z-_.]` replaced by `-`; the
//!   app id is the room `_id` or team `_id`. Rooms are tagged with the
//!   [`LIAISON_FIELD`] room custom field; a same-named room or team is adopted only
//!   when it carries this group's tag or, untagged, was created by the service
//!   account; otherwise it is a collision.
//! - **Service account**: it becomes a member (owner) of every room and team it
//!   creates; it is left out of the members that [`Connector::list_groups`]
//!   reports. `list_groups` leaves out teams' main rooms in rooms mode.
//! - **Last activity**: [`Connector::list_users`] pages through `users.list`
//!   (one request per 100 accounts), whose default projection includes
//!   `lastLogin`, an ISO 8601 date absent for an account that never signed in.
//!   No `fields` parameter is sent (Rocket.Chat 7 ignores it unless
//!   `ALLOW_UNSAFE_QUERY_AND_FIELDS_API_PARAMS` is set).
//! - **Idempotence**: deleting a missing user, room or team and removing a member
//!   who is not in the room (or whose room or account is gone) succeed; when
//!   `teams.addMembers` refuses, the member list is read and an existing
//!   membership counts as success.

use std::collections::HashSet;

use outbound::{Method, StatusCode, Url};
use serde_json::{json, Value};

use crate::{
    http_client, random_password, AppGroup, AppKind, AppUser, Connector, DeliveryError, GroupSpec,
    GroupsAs, UserSpec,
};

/// The custom field (on users and rooms) that holds the SCIM id of what Liaison
/// created.
pub const LIAISON_FIELD: &str = "liaisonId";

/// Users, rooms and members listed per request (Rocket.Chat's default upper
/// limit is 100).
const PAGE: usize = 100;

/// How to reach a Rocket.Chat workspace. Its `Debug` form hides the token.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RocketChatConfig {
    /// E.g. `https://chat.example.org`.
    pub base_url: String,
    /// The admin's user id (`X-User-Id`).
    pub user_id: String,
    /// The admin's personal access token (`X-Auth-Token`).
    pub token: String,
    /// What SCIM groups become.
    #[serde(default)]
    pub groups_as: GroupsAs,
}

impl std::fmt::Debug for RocketChatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocketChatConfig")
            .field("base_url", &self.base_url)
            .field("user_id", &self.user_id)
            .field("token", &"<redacted>")
            .field("groups_as", &self.groups_as)
            .finish()
    }
}

/// The Rocket.Chat connector. See the module documentation.
#[derive(Debug, Clone)]
pub struct RocketChatConnector {
    config: RocketChatConfig,
    base: Url,
    http: outbound::Client,
}

/// A `{"success": false}` answer.
#[derive(Debug)]
struct RcFailure {
    http: StatusCode,
    error: String,
    error_type: String,
}

impl RcFailure {
    fn has(&self, needle: &str) -> bool {
        self.error_type.contains(needle) || self.error.contains(needle)
    }

    fn is_not_found(&self) -> bool {
        self.http == StatusCode::NOT_FOUND
            || [
                "not found",
                "invalid-user",
                "user-not-found",
                "room-not-found",
                "error-invalid-room",
                "team-does-not-exist",
                "team-not-found",
                "does not exist",
                "Team not found",
            ]
            .iter()
            .any(|n| self.has(n))
    }

    fn is_taken(&self) -> bool {
        [
            "error-field-unavailable",
            "error-duplicate-channel-name",
            "already-exists",
            "already in use",
        ]
        .iter()
        .any(|n| self.has(n))
    }

    fn into_error(self, what: &str) -> DeliveryError {
        let msg = format!(
            "{what}: HTTP {} {} ({})",
            self.http.as_u16(),
            self.error,
            self.error_type
        );
        if self.http.is_server_error()
            || self.http == StatusCode::TOO_MANY_REQUESTS
            || self.has("error-too-many-requests")
        {
            DeliveryError::Transient(msg)
        } else if self.has("totp-required") || self.has("totp-invalid") {
            DeliveryError::Permanent(format!(
                "{msg}: the personal access token must ignore two-factor authentication"
            ))
        } else if self.is_not_found() {
            DeliveryError::NotFound(msg)
        } else if self.is_taken() {
            DeliveryError::Collision(msg)
        } else {
            DeliveryError::Permanent(msg)
        }
    }
}

/// A user as `users.info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RcAccount {
    id: String,
    username: String,
    name: String,
    email: String,
    active: bool,
    tag: Option<String>,
    /// `lastLogin`, in ms since the epoch.
    last_login: Option<i64>,
}

/// A room or team as `*.info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RcGroup {
    id: String,
    name: String,
    creator: Option<String>,
    tag: Option<String>,
}

/// The Rocket.Chat username of a SCIM `userName`.
pub fn username_for(user_name: &str) -> Result<String, DeliveryError> {
    let name = sanitize(user_name, '_');
    if name.is_empty() {
        return Err(DeliveryError::Permanent(format!(
            "userName {user_name:?} gives an empty Rocket.Chat username"
        )));
    }
    Ok(name)
}

/// The Rocket.Chat room or team name of a SCIM group `displayName`.
pub fn room_name_for(display_name: &str) -> Result<String, DeliveryError> {
    let name = sanitize(display_name.trim(), '-');
    if name.is_empty() {
        return Err(DeliveryError::Permanent(format!(
            "group name {display_name:?} gives an empty Rocket.Chat room name"
        )));
    }
    Ok(name)
}

fn sanitize(s: &str, replacement: char) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                replacement
            }
        })
        .collect()
}

fn str_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn parse_account(v: &Value) -> Option<RcAccount> {
    Some(RcAccount {
        id: str_at(v, "/_id")?,
        username: str_at(v, "/username").unwrap_or_default(),
        name: str_at(v, "/name").unwrap_or_default(),
        email: str_at(v, "/emails/0/address").unwrap_or_default(),
        active: v.get("active").and_then(Value::as_bool).unwrap_or(true),
        tag: str_at(v, &format!("/customFields/{LIAISON_FIELD}")),
        last_login: v.get("lastLogin").and_then(Value::as_str).and_then(iso_ms),
    })
}

/// Milliseconds since the epoch of an ISO 8601 (RFC 3339) date such as
/// `2016-12-08T00:22:15.167Z`; `None` when it does not parse.
fn iso_ms(date: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn parse_group(v: &Value) -> Option<RcGroup> {
    Some(RcGroup {
        id: str_at(v, "/_id")?,
        name: str_at(v, "/name").unwrap_or_default(),
        creator: str_at(v, "/u/_id").or_else(|| str_at(v, "/createdBy/_id")),
        tag: str_at(v, &format!("/customFields/{LIAISON_FIELD}")),
    })
}

impl RocketChatConnector {
    /// Checks the base URL and builds an HTTP client with [`outbound`]'s
    /// default limits.
    pub fn new(config: RocketChatConfig) -> Result<Self, DeliveryError> {
        Self::with_client(config, http_client()?)
    }

    /// Uses the given HTTP client (its limits).
    pub fn with_client(
        config: RocketChatConfig,
        http: outbound::Client,
    ) -> Result<Self, DeliveryError> {
        let base = Url::parse(config.base_url.trim_end_matches('/'))
            .map_err(|e| DeliveryError::Permanent(format!("Rocket.Chat base URL: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(DeliveryError::Permanent(format!(
                "Rocket.Chat base URL {:?} is not an http(s) URL",
                config.base_url
            )));
        }
        Ok(RocketChatConnector { config, base, http })
    }

    fn teams(&self) -> Result<bool, DeliveryError> {
        match self.config.groups_as {
            GroupsAs::Rooms | GroupsAs::Groups => Ok(false),
            GroupsAs::Spaces => Ok(true),
            GroupsAs::None => Err(DeliveryError::Permanent(
                "groups are not provisioned to this Rocket.Chat (groups_as = none)".into(),
            )),
        }
    }

    /// Sends one request: `Err` is a delivery error already (transport, HTTP
    /// status without a Rocket.Chat body), `Ok(Err)` a `success: false` answer.
    async fn call(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Result<Value, RcFailure>, DeliveryError> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1", endpoint]);
        }
        let mut req = self
            .http
            .request(method.clone(), url)
            .header("X-User-Id", &self.config.user_id)
            .header("X-Auth-Token", &self.config.token)
            .query(query);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = self.http.send(req).await?;
        let status = resp.status;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(DeliveryError::Permanent(format!(
                "{endpoint}: HTTP {status}: {} (check the user id and personal access token)",
                resp.excerpt()
            )));
        }
        let parsed: Option<Value> = resp.json();
        match parsed
            .as_ref()
            .and_then(|v| v.get("success"))
            .and_then(Value::as_bool)
        {
            Some(true) if status.is_success() => Ok(Ok(parsed.unwrap_or(Value::Null))),
            Some(_) if !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS => {
                let v = parsed.unwrap_or(Value::Null);
                Ok(Err(RcFailure {
                    http: status,
                    error: outbound::excerpt(&str_at(&v, "/error").unwrap_or_default()),
                    error_type: outbound::excerpt(&str_at(&v, "/errorType").unwrap_or_default()),
                }))
            }
            // A 404 without `success` is an unknown endpoint (wrong base URL, a
            // Rocket.Chat too old for this API), not a missing user or room.
            _ if status.is_success() || status == StatusCode::NOT_FOUND => {
                Err(DeliveryError::Permanent(format!(
                    "{endpoint}: HTTP {}, not a Rocket.Chat answer (is the base URL right?)",
                    status.as_u16()
                )))
            }
            _ => Err(resp.error().into()),
        }
    }

    /// A call whose failures all take their generic meaning.
    async fn call_ok(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, DeliveryError> {
        self.call(method, endpoint, query, body)
            .await?
            .map_err(|f| f.into_error(endpoint))
    }

    /// `users.info` by id or username: `None` when unknown.
    async fn user_info(&self, key: &str, value: &str) -> Result<Option<RcAccount>, DeliveryError> {
        match self
            .call(Method::GET, "users.info", &[(key, value.to_string())], None)
            .await?
        {
            Ok(v) => Ok(v.get("user").and_then(parse_account)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(f.into_error("users.info")),
        }
    }

    /// `groups.info` / `teams.info` by id or name: `None` when unknown.
    async fn group_info(
        &self,
        teams: bool,
        by_id: bool,
        value: &str,
    ) -> Result<Option<RcGroup>, DeliveryError> {
        let (endpoint, key, field) = match (teams, by_id) {
            (false, true) => ("groups.info", "roomId", "group"),
            (false, false) => ("groups.info", "roomName", "group"),
            (true, true) => ("teams.info", "teamId", "teamInfo"),
            (true, false) => ("teams.info", "teamName", "teamInfo"),
        };
        match self
            .call(Method::GET, endpoint, &[(key, value.to_string())], None)
            .await?
        {
            Ok(v) => Ok(v.get(field).and_then(parse_group)),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(f.into_error(endpoint)),
        }
    }

    /// The admin Liaison signs in with and the `rocket.cat` bot.
    fn is_protected(&self, id: &str) -> bool {
        id == self.config.user_id || id == "rocket.cat"
    }

    /// Refuses to touch the service account or the workspace's bot.
    fn refuse_protected(&self, id: &str) -> Result<(), DeliveryError> {
        if self.is_protected(id) {
            return Err(DeliveryError::Collision(format!(
                "Rocket.Chat account {id} is the account Liaison signs in with or the \
                 workspace's bot: never changed"
            )));
        }
        Ok(())
    }

    fn owns_group(&self, g: &RcGroup, scim_id: &str) -> bool {
        match &g.tag {
            Some(tag) => tag == scim_id,
            None => g.creator.as_deref() == Some(self.config.user_id.as_str()),
        }
    }

    /// Every item of a paged list (`count`/`offset`, `total`).
    async fn all_pages(
        &self,
        endpoint: &str,
        query: &[(&str, String)],
        key: &str,
    ) -> Result<Vec<Value>, DeliveryError> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        let mut pager = self.http.pager();
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("count", PAGE.to_string()));
            q.push(("offset", offset.to_string()));
            let v = self.call_ok(Method::GET, endpoint, &q, None).await?;
            let page = v
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = page.len();
            pager.page(n)?;
            out.extend(page);
            offset += n;
            let total = v.get("total").and_then(Value::as_u64).map(|t| t as usize);
            let done = match total {
                Some(total) => offset >= total,
                None => n < PAGE,
            };
            if n == 0 || done {
                return Ok(out);
            }
        }
    }
}

#[async_trait::async_trait]
impl Connector for RocketChatConnector {
    fn kind(&self) -> AppKind {
        AppKind::Rocketchat
    }

    fn service_account(&self) -> Option<String> {
        Some(self.config.user_id.clone())
    }

    /// The admin and the `rocket.cat` bot every workspace has (its `_id` is
    /// `rocket.cat`).
    fn protected_accounts(&self) -> Vec<String> {
        vec![self.config.user_id.clone(), "rocket.cat".to_owned()]
    }

    fn app_user_name(&self, user_name: &str) -> String {
        username_for(user_name).unwrap_or_else(|_| user_name.to_owned())
    }

    fn app_group_name(&self, display_name: &str) -> String {
        room_name_for(display_name).unwrap_or_else(|_| display_name.to_owned())
    }

    async fn upsert_user(
        &self,
        user: &UserSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let username = username_for(&user.user_name)?;
        let name = user.shown_name();
        if let Some(id) = known_id {
            self.refuse_protected(id)?;
        }
        let mut existing = match known_id {
            Some(id) => self.user_info("userId", id).await?,
            None => None,
        };
        if existing.is_none() {
            existing = match self.user_info("username", &username).await? {
                Some(acc) if self.is_protected(&acc.id) => {
                    return Err(self.refuse_protected(&acc.id).unwrap_err())
                }
                Some(acc) if acc.tag.as_deref() == Some(user.scim_id.as_str()) => Some(acc),
                Some(acc) => {
                    return Err(DeliveryError::Collision(format!(
                        "Rocket.Chat username {username} belongs to account {} that Liaison did not create",
                        acc.id
                    )))
                }
                None => None,
            };
        }

        if let Some(acc) = existing {
            let mut data = serde_json::Map::new();
            if acc.username != username {
                data.insert("username".into(), json!(username));
            }
            if acc.name != name {
                data.insert("name".into(), json!(name));
            }
            if let Some(email) = user.email.as_deref().filter(|e| !e.is_empty()) {
                if !acc.email.eq_ignore_ascii_case(email) {
                    data.insert("email".into(), json!(email));
                    data.insert("verified".into(), json!(true));
                }
            }
            if acc.tag.as_deref() != Some(user.scim_id.as_str()) {
                data.insert(
                    "customFields".into(),
                    json!({ LIAISON_FIELD: user.scim_id }),
                );
            }
            if !data.is_empty() {
                self.call_ok(
                    Method::POST,
                    "users.update",
                    &[],
                    Some(json!({ "userId": acc.id, "data": data })),
                )
                .await?;
            }
            return Ok(acc.id);
        }

        let Some(email) = user.email.as_deref().filter(|e| !e.is_empty()) else {
            return Err(DeliveryError::Permanent(format!(
                "Rocket.Chat needs an e-mail address to create {username}"
            )));
        };
        let body = json!({
            "username": username,
            "name": name,
            "email": email,
            "password": random_password(),
            "verified": true,
            "active": user.active,
            "requirePasswordChange": false,
            "sendWelcomeEmail": false,
            "customFields": { LIAISON_FIELD: user.scim_id },
        });
        let v = self
            .call_ok(Method::POST, "users.create", &[], Some(body))
            .await?;
        str_at(&v, "/user/_id").ok_or_else(|| {
            DeliveryError::Permanent("users.create: the answer has no user._id".into())
        })
    }

    async fn set_user_active(&self, app_id: &str, active: bool) -> Result<(), DeliveryError> {
        self.refuse_protected(app_id)?;
        self.call_ok(
            Method::POST,
            "users.setActiveStatus",
            &[],
            Some(json!({ "userId": app_id, "activeStatus": active, "confirmRelinquish": true })),
        )
        .await
        .map(|_| ())
    }

    async fn delete_user(&self, app_id: &str) -> Result<(), DeliveryError> {
        self.refuse_protected(app_id)?;
        match self
            .call(
                Method::POST,
                "users.delete",
                &[],
                Some(json!({ "userId": app_id, "confirmRelinquish": true })),
            )
            .await?
        {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() => Ok(()),
            Err(f) => Err(f.into_error("users.delete")),
        }
    }

    async fn upsert_group(
        &self,
        group: &GroupSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let teams = self.teams()?;
        let name = room_name_for(&group.display_name)?;
        let mut existing = match known_id {
            Some(id) => self.group_info(teams, true, id).await?,
            None => None,
        };
        if existing.is_none() {
            existing = match self.group_info(teams, false, &name).await? {
                Some(g) if self.owns_group(&g, &group.scim_id) => Some(g),
                Some(g) => {
                    return Err(DeliveryError::Collision(format!(
                        "Rocket.Chat {} {name} ({}) was not created by Liaison for this group",
                        if teams { "team" } else { "room" },
                        g.id
                    )))
                }
                None => None,
            };
        }
        if let Some(g) = existing {
            if g.name != name {
                let (endpoint, body) = if teams {
                    (
                        "teams.update",
                        json!({ "teamId": g.id, "data": { "name": name } }),
                    )
                } else {
                    ("groups.rename", json!({ "roomId": g.id, "name": name }))
                };
                self.call_ok(Method::POST, endpoint, &[], Some(body))
                    .await?;
            }
            return Ok(g.id);
        }
        if teams {
            let v = self
                .call_ok(
                    Method::POST,
                    "teams.create",
                    &[],
                    Some(json!({ "name": name, "type": 1, "members": [] })),
                )
                .await?;
            str_at(&v, "/team/_id").ok_or_else(|| {
                DeliveryError::Permanent("teams.create: the answer has no team._id".into())
            })
        } else {
            let v = self
                .call_ok(
                    Method::POST,
                    "groups.create",
                    &[],
                    Some(json!({
                        "name": name,
                        "members": [],
                        "readOnly": false,
                        "customFields": { LIAISON_FIELD: group.scim_id },
                    })),
                )
                .await?;
            str_at(&v, "/group/_id").ok_or_else(|| {
                DeliveryError::Permanent("groups.create: the answer has no group._id".into())
            })
        }
    }

    async fn delete_group(&self, app_id: &str) -> Result<(), DeliveryError> {
        let (endpoint, body) = if self.teams()? {
            ("teams.delete", json!({ "teamId": app_id }))
        } else {
            ("groups.delete", json!({ "roomId": app_id }))
        };
        match self.call(Method::POST, endpoint, &[], Some(body)).await? {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() => Ok(()),
            Err(f) => Err(f.into_error(endpoint)),
        }
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        let (endpoint, body) = if self.teams()? {
            (
                "teams.addMembers",
                json!({ "teamId": group_id, "members": [{ "userId": user_id, "roles": ["member"] }] }),
            )
        } else {
            (
                "groups.invite",
                json!({ "roomId": group_id, "userId": user_id }),
            )
        };
        let teams = endpoint == "teams.addMembers";
        match self.call(Method::POST, endpoint, &[], Some(body)).await? {
            Ok(_) => Ok(()),
            Err(f) if teams && !f.is_not_found() && f.http == StatusCode::BAD_REQUEST => {
                // Adding someone who is already a member may be refused: that is
                // the wanted state.
                let members = self
                    .all_pages(
                        "teams.members",
                        &[("teamId", group_id.to_string())],
                        "members",
                    )
                    .await?;
                if members
                    .iter()
                    .any(|m| str_at(m, "/user/_id").as_deref() == Some(user_id))
                {
                    Ok(())
                } else {
                    Err(f.into_error(endpoint))
                }
            }
            Err(f) => Err(f.into_error(endpoint)),
        }
    }

    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        let (endpoint, body) = if self.teams()? {
            (
                "teams.removeMember",
                json!({ "teamId": group_id, "userId": user_id }),
            )
        } else {
            (
                "groups.kick",
                json!({ "roomId": group_id, "userId": user_id }),
            )
        };
        match self.call(Method::POST, endpoint, &[], Some(body)).await? {
            Ok(_) => Ok(()),
            Err(f)
                if f.is_not_found()
                    || f.has("not-in-room")
                    || f.has("member-does-not-exist")
                    || f.has("not in") =>
            {
                Ok(())
            }
            Err(f) => Err(f.into_error(endpoint)),
        }
    }

    async fn list_users(&self) -> Result<Vec<AppUser>, DeliveryError> {
        let mut seen = HashSet::new();
        Ok(self
            .all_pages("users.list", &[], "users")
            .await?
            .iter()
            .filter_map(parse_account)
            .filter(|a| seen.insert(a.id.clone()))
            .map(|a| AppUser {
                app_id: a.id,
                user_name: a.username,
                display_name: Some(a.name).filter(|n| !n.is_empty()),
                email: Some(a.email).filter(|e| !e.is_empty()),
                active: a.active,
                last_active_ms: a.last_login,
            })
            .collect())
    }

    async fn list_groups(&self) -> Result<Vec<AppGroup>, DeliveryError> {
        let teams = match self.config.groups_as {
            GroupsAs::None => return Ok(Vec::new()),
            _ => self.teams()?,
        };
        let (list, list_key, members_ep, id_key) = if teams {
            ("teams.listAll", "teams", "teams.members", "teamId")
        } else {
            ("groups.listAll", "groups", "groups.members", "roomId")
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for item in self.all_pages(list, &[], list_key).await? {
            if !teams && item.get("teamMain").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let Some(g) = parse_group(&item) else {
                continue;
            };
            if !seen.insert(g.id.clone()) {
                continue;
            }
            let members = match self
                .all_pages(members_ep, &[(id_key, g.id.clone())], "members")
                .await
            {
                Ok(m) => m,
                // Deleted while listing.
                Err(DeliveryError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let members = members
                .iter()
                .filter_map(|m| str_at(m, "/_id").or_else(|| str_at(m, "/user/_id")))
                .filter(|id| *id != self.config.user_id)
                .collect();
            out.push(AppGroup {
                app_id: g.id,
                display_name: g.name,
                members,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_login_dates_become_milliseconds() {
        assert_eq!(iso_ms("2016-12-08T00:22:15.167Z"), Some(1481156535167));
        assert_eq!(iso_ms("2016-12-08T01:22:15+01:00"), Some(1481156535000));
        assert_eq!(iso_ms("yesterday"), None);
        let a = parse_account(&json!({ "_id": "x", "lastLogin": "1970-01-01T00:00:01.5Z" }));
        assert_eq!(a.and_then(|a| a.last_login), Some(1500));
        let never = parse_account(&json!({ "_id": "y" }));
        assert_eq!(never.and_then(|a| a.last_login), None);
    }

    #[test]
    fn usernames_keep_allowed_characters() {
        assert_eq!(username_for("alice").ok(), Some("alice".into()));
        assert_eq!(
            username_for("alice@example.org").ok(),
            Some("alice_example.org".into())
        );
        assert_eq!(username_for("Élo Dupont").ok(), Some("_lo_Dupont".into()));
        assert!(username_for("").is_err());
        assert_eq!(
            room_name_for(" Board members ").ok(),
            Some("Board-members".into())
        );
        assert!(room_name_for("  ").is_err());
    }

    #[test]
    fn failures_are_classified_by_error_type() {
        let f = |http: u16, error: &str, error_type: &str| RcFailure {
            http: StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_REQUEST),
            error: error.into(),
            error_type: error_type.into(),
        };
        assert!(matches!(
            f(400, "x is already in use :(", "error-field-unavailable").into_error("t"),
            DeliveryError::Collision(_)
        ));
        assert!(matches!(
            f(400, "User not found.", "").into_error("t"),
            DeliveryError::NotFound(_)
        ));
        assert!(matches!(
            f(400, "", "error-room-not-found").into_error("t"),
            DeliveryError::NotFound(_)
        ));
        assert!(matches!(
            f(400, "", "totp-required").into_error("t"),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            f(429, "", "error-too-many-requests").into_error("t"),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            f(400, "bad", "invalid-params").into_error("t"),
            DeliveryError::Permanent(_)
        ));
    }
}
