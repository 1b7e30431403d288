//! Matrix Synapse: users through the Synapse admin API, groups as private rooms
//! or spaces created by the admin user through the client-server API.
//!
//! * A user is `@<localpart>:<server_name>` where the localpart is
//!   [`localpart`]`(userName)`, Synapse's own mapping of a user name onto a
//!   Matrix id. It is created or updated with `PUT /_synapse/admin/v2/users/<id>`
//!   (display name, the e-mail as a threepid, and an `external_ids` entry
//!   `{auth_provider, external_id}` with the SCIM `externalId`, or the SCIM id
//!   when there is none). No password is ever sent at creation: users sign in
//!   through SSO, whose provider id is the configured `auth_provider`
//!   (`oidc-<idp_id>` for an OIDC provider of Synapse, so that SSO logins land on
//!   the provisioned account). An existing Matrix id that does not carry this
//!   link is reported as [`DeliveryError::Collision`], never taken over.
//! * The admin Liaison signs in with (`whoami`) is never updated, deactivated
//!   or deleted, even through a recorded id: a [`DeliveryError::Collision`].
//! * Deactivation is `PUT ... {"deactivated": true}`. Synapse then removes the
//!   threepids, the password and the room memberships; a later
//!   [`Connector::upsert_user`] restores the e-mail, and memberships must be
//!   delivered again. Reactivation is `{"deactivated": false}` without password
//!   (accepted by Synapse 1.163; older releases answer 400 "Must provide a
//!   password to re-activate an account" when password login is enabled, and then
//!   a random password that is never stored nor logged is set so the account can
//!   be reactivated and used through SSO or a password reset).
//! * Deletion is `POST /_synapse/admin/v1/deactivate/<id>` with `erase: true`:
//!   Matrix ids are never reused, so the account stays, deactivated and erased.
//! * A group is a private room (or a space, see [`GroupsAs`]) created by the
//!   admin user with the canonical alias `#liaison-<scim id>:<server_name>`, by
//!   which it is found again. Members join through the admin join API and are
//!   kicked by the admin user; rooms are deleted (and purged) with the admin API.
//!   `GroupsAs::Groups` means rooms too (Matrix has no other kind of group).
//! * Last activity ([`AppUser::last_active_ms`]) is the `last_seen_ts` (ms) of
//!   each entry of the paged "List Accounts" answer, which Synapse derives from
//!   the client IPs it records (written in batches, every few seconds); `null`
//!   (never seen) is `None`. When an entry lacks the field, the `last_seen_ts` of
//!   the account's detail, already fetched for its e-mail, is used: listing costs
//!   no extra request.

use std::sync::Arc;

use outbound::{Method, StatusCode, Url};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::{
    http_client, random_password, status_error, AppGroup, AppKind, AppUser, Connector,
    DeliveryError, GroupSpec, GroupsAs, UserSpec,
};

/// The prefix of the alias localpart of every room or space Liaison manages.
pub const ALIAS_PREFIX: &str = "liaison-";

/// How many user details are fetched at once by [`Connector::list_users`].
const DETAIL_CONCURRENCY: usize = 8;
/// Page size of the admin list APIs.
const PAGE: usize = 500;

/// Where and how to reach a Synapse homeserver.
#[derive(Clone)]
pub struct SynapseConfig {
    /// The client-server API base URL, e.g. `https://matrix.example.org`.
    pub base_url: String,
    /// The homeserver's `server_name` (the part after `:` in Matrix ids).
    pub server_name: String,
    /// An access token of a Synapse admin user. Never logged.
    pub admin_token: String,
    /// What groups become: rooms (also for `Groups`), spaces, or nothing.
    pub groups_as: GroupsAs,
    /// The `auth_provider` of the `external_ids` entry linking an account to
    /// Liaison; `"liaison"` by default, `oidc-<idp_id>` to link SSO logins.
    pub auth_provider: String,
}

impl SynapseConfig {
    /// A configuration with groups as rooms and the `"liaison"` auth provider.
    pub fn new(
        base_url: impl Into<String>,
        server_name: impl Into<String>,
        admin_token: impl Into<String>,
    ) -> Self {
        SynapseConfig {
            base_url: base_url.into(),
            server_name: server_name.into(),
            admin_token: admin_token.into(),
            groups_as: GroupsAs::Rooms,
            auth_provider: "liaison".to_string(),
        }
    }
}

impl std::fmt::Debug for SynapseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynapseConfig")
            .field("base_url", &self.base_url)
            .field("server_name", &self.server_name)
            .field("admin_token", &"<redacted>")
            .field("groups_as", &self.groups_as)
            .field("auth_provider", &self.auth_provider)
            .finish()
    }
}

/// Maps a user name onto a Matrix id localpart exactly as Synapse's
/// `map_username_to_mxid_localpart` does (case-insensitive variant): ASCII is
/// lower-cased, every byte of the UTF-8 form outside `a-z 0-9 _ - . / +` (and
/// `=` itself) becomes `=` and two lower-case hex digits, and a leading `_`
/// becomes `=5f`.
pub fn localpart(user_name: &str) -> String {
    let mut out = String::with_capacity(user_name.len());
    for (i, b) in user_name.bytes().enumerate() {
        let b = b.to_ascii_lowercase();
        let allowed = b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'_' | b'-' | b'.' | b'/' | b'+');
        if allowed && !(i == 0 && b == b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02x}"));
        }
    }
    out
}

/// The alias localpart of the room of a group: [`ALIAS_PREFIX`] followed by the
/// SCIM id, with every character outside `a-z 0-9 - . _` escaped as `=xx` so that
/// distinct ids give distinct aliases.
pub fn alias_localpart(scim_id: &str) -> String {
    let mut out = String::from(ALIAS_PREFIX);
    for b in scim_id.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02x}"));
        }
    }
    out
}

/// The HTTP side, shared with the tasks of `list_users`.
struct Api {
    http: outbound::Client,
    base: Url,
    token: String,
}

impl Api {
    fn url(&self, segments: &[&str]) -> Result<Url, DeliveryError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                DeliveryError::Permanent("the Synapse base URL cannot hold a path".into())
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends a request and returns the JSON body of a success (`Null` when empty).
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, DeliveryError> {
        self.call(method, url, body).await.map_err(|f| f.error)
    }

    /// Like [`Api::send`], with the status and Matrix error of a failure.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, MatrixFailure> {
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = self.http.send(req).await.map_err(|e| MatrixFailure {
            status: None,
            message: String::new(),
            error: e.into(),
        })?;
        let status = resp.status;
        if !status.is_success() {
            return Err(matrix_failure(status, &resp.text()));
        }
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&resp.body).map_err(|e| MatrixFailure {
            status: Some(status.as_u16()),
            message: String::new(),
            error: DeliveryError::Transient(format!("Synapse sent invalid JSON: {e}")),
        })
    }

    async fn get(&self, segments: &[&str]) -> Result<Value, DeliveryError> {
        self.send(Method::GET, self.url(segments)?, None).await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<Value>, DeliveryError> {
        match self
            .get(&["_synapse", "admin", "v2", "users", user_id])
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(DeliveryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A failed call: the HTTP status (when there was an answer), the Matrix
/// `error` (excerpt), and what it means for the delivery.
#[derive(Debug)]
struct MatrixFailure {
    status: Option<u16>,
    message: String,
    error: DeliveryError,
}

fn matrix_failure(status: StatusCode, body: &str) -> MatrixFailure {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(outbound::excerpt)
            .unwrap_or_default()
    };
    MatrixFailure {
        status: Some(status.as_u16()),
        message: field("error"),
        error: matrix_error(status, body),
    }
}

/// Maps a Matrix error answer (`{"errcode", "error"}`) to a delivery error.
fn matrix_error(status: StatusCode, body: &str) -> DeliveryError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let errcode = parsed
        .as_ref()
        .and_then(|v| v.get("errcode"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let error = outbound::excerpt(
        parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .unwrap_or(body),
    );
    let errcode = outbound::excerpt(errcode);
    let errcode = errcode.as_str();
    let detail = if errcode.is_empty() {
        error.to_string()
    } else {
        format!("{errcode}: {error}")
    };
    match errcode {
        "M_LIMIT_EXCEEDED" => DeliveryError::Transient(format!("HTTP {status}: {detail}")),
        "M_USER_IN_USE" | "M_ROOM_IN_USE" => {
            DeliveryError::Collision(format!("HTTP {status}: {detail}"))
        }
        "M_NOT_FOUND" => DeliveryError::NotFound(format!("HTTP {status}: {detail}")),
        _ => status_error(status, &detail),
    }
}

/// Provisions a Synapse homeserver. See the module documentation.
pub struct SynapseConnector {
    api: Arc<Api>,
    server_name: String,
    groups_as: GroupsAs,
    auth_provider: String,
    /// The admin user's own Matrix id (excluded from group member lists).
    admin_id: OnceCell<String>,
}

impl std::fmt::Debug for SynapseConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynapseConnector")
            .field("base_url", &self.api.base.as_str())
            .field("server_name", &self.server_name)
            .field("groups_as", &self.groups_as)
            .finish_non_exhaustive()
    }
}

impl SynapseConnector {
    /// Builds the connector; fails on an invalid base URL or empty settings.
    pub fn new(config: SynapseConfig) -> Result<Self, DeliveryError> {
        let base = Url::parse(&config.base_url)
            .map_err(|e| DeliveryError::Permanent(format!("invalid Synapse base URL: {e}")))?;
        if config.server_name.is_empty() || config.admin_token.is_empty() {
            return Err(DeliveryError::Permanent(
                "the Synapse server name and admin token must be set".into(),
            ));
        }
        let http = http_client()?;
        Ok(SynapseConnector {
            api: Arc::new(Api {
                http,
                base,
                token: config.admin_token,
            }),
            server_name: config.server_name,
            groups_as: config.groups_as,
            auth_provider: config.auth_provider,
            admin_id: OnceCell::new(),
        })
    }

    /// The Matrix id a user name maps to on this server.
    pub fn user_id(&self, user_name: &str) -> String {
        format!("@{}:{}", localpart(user_name), self.server_name)
    }

    /// The canonical alias of the room of a group.
    pub fn room_alias(&self, scim_id: &str) -> String {
        format!("#{}:{}", alias_localpart(scim_id), self.server_name)
    }

    /// Lifts the message rate limits of the admin user (the
    /// `override_ratelimit` admin API), so that creating rooms, renaming them and
    /// kicking members in bulk is not throttled by `rc_message`. Idempotent; meant
    /// to be called once when the app is set up.
    pub async fn exempt_admin_from_rate_limits(&self) -> Result<(), DeliveryError> {
        let admin = self.admin_id().await?.to_string();
        let url = self.api.url(&[
            "_synapse",
            "admin",
            "v1",
            "users",
            &admin,
            "override_ratelimit",
        ])?;
        let body = json!({ "messages_per_second": 0, "burst_count": 0 });
        self.api
            .send(Method::POST, url, Some(&body))
            .await
            .map(|_| ())
    }

    async fn admin_id(&self) -> Result<&str, DeliveryError> {
        let id = self
            .admin_id
            .get_or_try_init(|| async {
                let v = self
                    .api
                    .get(&["_matrix", "client", "v3", "account", "whoami"])
                    .await?;
                v.get("user_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| DeliveryError::Transient("whoami without user_id".into()))
            })
            .await?;
        Ok(id)
    }

    /// Refuses to touch the admin Liaison signs in with (asked once through
    /// `whoami`).
    async fn refuse_admin(&self, user_id: &str) -> Result<(), DeliveryError> {
        if self.admin_id().await? == user_id {
            return Err(DeliveryError::Collision(format!(
                "{user_id} is the account Liaison signs in with: never changed"
            )));
        }
        Ok(())
    }

    fn external_id_of(user: &UserSpec) -> &str {
        user.external_id.as_deref().unwrap_or(&user.scim_id)
    }

    /// Whether an account (admin API user object) carries our link to `ext`.
    fn linked_to(&self, account: &Value, ext: &str) -> bool {
        account
            .get("external_ids")
            .and_then(Value::as_array)
            .is_some_and(|ids| {
                ids.iter().any(|e| {
                    e.get("auth_provider").and_then(Value::as_str) == Some(&self.auth_provider)
                        && e.get("external_id").and_then(Value::as_str) == Some(ext)
                })
            })
    }

    /// The account an external id of our auth provider is linked to.
    async fn owner_of_external_id(&self, ext: &str) -> Result<Option<String>, DeliveryError> {
        let segments = [
            "_synapse",
            "admin",
            "v1",
            "auth_providers",
            self.auth_provider.as_str(),
            "users",
            ext,
        ];
        match self.api.get(&segments).await {
            Ok(v) => Ok(v.get("user_id").and_then(Value::as_str).map(str::to_owned)),
            Err(DeliveryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The account an e-mail address is bound to.
    async fn owner_of_email(&self, email: &str) -> Result<Option<String>, DeliveryError> {
        match self
            .api
            .get(&[
                "_synapse", "admin", "v1", "threepid", "email", "users", email,
            ])
            .await
        {
            Ok(v) => Ok(v.get("user_id").and_then(Value::as_str).map(str::to_owned)),
            Err(DeliveryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put_user(&self, user_id: &str, body: &Value) -> Result<(), DeliveryError> {
        self.put_user_raw(user_id, body).await.map_err(|f| f.error)
    }

    /// `PUT` of a user, with the status of a failure.
    async fn put_user_raw(&self, user_id: &str, body: &Value) -> Result<(), MatrixFailure> {
        let url = self
            .api
            .url(&["_synapse", "admin", "v2", "users", user_id])
            .map_err(|error| MatrixFailure {
                status: None,
                message: String::new(),
                error,
            })?;
        match self.api.call(Method::PUT, url, Some(body)).await {
            Ok(_) => Ok(()),
            // 409: the external id is already linked to another account.
            Err(f) if f.status == Some(409) => Err(MatrixFailure {
                error: DeliveryError::Collision(format!("{user_id}: {}", f.error)),
                ..f
            }),
            Err(f) => Err(f),
        }
    }

    /// The membership of `user_id` in `room_id` as the admin user sees it.
    async fn membership(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, DeliveryError> {
        let r = self
            .api
            .get(&[
                "_matrix",
                "client",
                "v3",
                "rooms",
                room_id,
                "state",
                "m.room.member",
                user_id,
            ])
            .await;
        match r {
            Ok(v) => Ok(v
                .get("membership")
                .and_then(Value::as_str)
                .map(str::to_owned)),
            Err(DeliveryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The admin API details of a room, or `None` when Synapse does not know it.
    async fn room(&self, room_id: &str) -> Result<Option<Value>, DeliveryError> {
        match self
            .api
            .get(&["_synapse", "admin", "v1", "rooms", room_id])
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(DeliveryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn resolve_alias(&self, alias: &str) -> Result<Option<String>, DeliveryError> {
        match self
            .api
            .get(&["_matrix", "client", "v3", "directory", "room", alias])
            .await
        {
            Ok(v) => Ok(v.get("room_id").and_then(Value::as_str).map(str::to_owned)),
            Err(DeliveryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_room(&self, group: &GroupSpec) -> Result<String, DeliveryError> {
        let mut body = json!({
            "preset": "private_chat",
            "visibility": "private",
            "name": group.display_name,
            "room_alias_name": alias_localpart(&group.scim_id),
        });
        if self.groups_as == GroupsAs::Spaces {
            body["creation_content"] = json!({ "type": "m.space" });
        }
        let url = self.api.url(&["_matrix", "client", "v3", "createRoom"])?;
        match self.api.send(Method::POST, url, Some(&body)).await {
            Ok(v) => v
                .get("room_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| DeliveryError::Transient("createRoom answered no room_id".into())),
            // The alias was taken meanwhile (a concurrent or earlier delivery).
            Err(DeliveryError::Collision(msg)) => {
                match self.resolve_alias(&self.room_alias(&group.scim_id)).await? {
                    Some(id) => Ok(id),
                    None => Err(DeliveryError::Transient(msg)),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn set_room_name(&self, room_id: &str, name: &str) -> Result<(), DeliveryError> {
        let url = self.api.url(&[
            "_matrix",
            "client",
            "v3",
            "rooms",
            room_id,
            "state",
            "m.room.name",
            "",
        ])?;
        self.api
            .send(Method::PUT, url, Some(&json!({ "name": name })))
            .await
            .map(|_| ())
    }

    async fn reactivate(&self, app_id: &str) -> Result<(), DeliveryError> {
        match self
            .put_user_raw(app_id, &json!({ "deactivated": false }))
            .await
        {
            // "Must provide a password to re-activate an account".
            Err(f) if f.status == Some(400) && f.message.contains("password") => {
                // Synapse releases that insist on a password when password login
                // is enabled: a random one, known to nobody.
                let body = json!({
                    "deactivated": false,
                    "password": random_password(),
                    "logout_devices": true,
                });
                self.put_user(app_id, &body).await
            }
            other => other.map_err(|f| f.error),
        }
    }
}

fn first_email(user: &Value) -> Option<String> {
    user.get("threepids")?
        .as_array()?
        .iter()
        .find(|t| t.get("medium").and_then(Value::as_str) == Some("email"))
        .and_then(|t| t.get("address"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The `last_seen_ts` (ms since the epoch) of an admin API user object; `null`,
/// absent or not positive is `None`.
fn last_seen(user: &Value) -> Option<i64> {
    user.get("last_seen_ts")
        .and_then(Value::as_i64)
        .filter(|&ms| ms > 0)
}

fn mxid_localpart(user_id: &str) -> &str {
    let rest = user_id.strip_prefix('@').unwrap_or(user_id);
    rest.split_once(':').map_or(rest, |(l, _)| l)
}

#[async_trait::async_trait]
impl Connector for SynapseConnector {
    fn kind(&self) -> AppKind {
        AppKind::Synapse
    }

    /// Known once `whoami` was asked (listing groups, managing rooms).
    fn service_account(&self) -> Option<String> {
        self.admin_id.get().cloned()
    }

    fn app_user_name(&self, user_name: &str) -> String {
        localpart(user_name)
    }

    async fn upsert_user(
        &self,
        user: &UserSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let ext = Self::external_id_of(user);
        let user_id = match known_id {
            Some(id) => id.to_string(),
            None => self.user_id(&user.user_name),
        };
        self.refuse_admin(&user_id).await?;
        let existing = self.api.get_user(&user_id).await?;
        if known_id.is_none() {
            if let Some(account) = &existing {
                if !self.linked_to(account, ext) {
                    return Err(DeliveryError::Collision(format!(
                        "{user_id} already exists and is not linked to this user"
                    )));
                }
            }
        }
        if existing.is_none() {
            // Synapse would create the account before refusing a reused
            // external id: check first, so no orphan account is left behind.
            if let Some(other) = self.owner_of_external_id(ext).await? {
                if other != user_id {
                    return Err(DeliveryError::Collision(format!(
                        "the external id of {user_id} is already linked to {other}"
                    )));
                }
            }
        }
        // Keep the links of other identity providers; replace ours.
        let mut external_ids: Vec<Value> = existing
            .as_ref()
            .and_then(|a| a.get("external_ids"))
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter(|e| {
                        e.get("auth_provider").and_then(Value::as_str) != Some(&self.auth_provider)
                    })
                    .map(|e| {
                        json!({
                            "auth_provider": e.get("auth_provider"),
                            "external_id": e.get("external_id"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        external_ids.push(json!({ "auth_provider": self.auth_provider, "external_id": ext }));
        let mut threepids = Vec::new();
        if let Some(email) = user
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let email = email.to_lowercase();
            // Synapse moves an address already bound to another account over to
            // this one: leave it with its owner instead.
            match self.owner_of_email(&email).await? {
                Some(owner) if owner != user_id => {
                    // Liaison's id only: Matrix ids name people.
                    tracing::warn!(
                        resource = %user.scim_id,
                        "the e-mail address belongs to another Synapse account; not set"
                    );
                }
                _ => threepids.push(json!({ "medium": "email", "address": email })),
            }
        }
        let body = json!({
            "displayname": user.shown_name(),
            "threepids": threepids,
            "external_ids": external_ids,
        });
        self.put_user(&user_id, &body).await?;
        Ok(user_id)
    }

    async fn set_user_active(&self, app_id: &str, active: bool) -> Result<(), DeliveryError> {
        self.refuse_admin(app_id).await?;
        // A PUT on an unknown id would create the account: look first.
        let Some(account) = self.api.get_user(app_id).await? else {
            return Err(DeliveryError::NotFound(format!("no Synapse user {app_id}")));
        };
        let deactivated = account
            .get("deactivated")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match (active, deactivated) {
            (true, false) | (false, true) => Ok(()),
            (false, false) => self.put_user(app_id, &json!({ "deactivated": true })).await,
            (true, true) => self.reactivate(app_id).await,
        }
    }

    async fn delete_user(&self, app_id: &str) -> Result<(), DeliveryError> {
        self.refuse_admin(app_id).await?;
        let url = self
            .api
            .url(&["_synapse", "admin", "v1", "deactivate", app_id])?;
        match self
            .api
            .send(Method::POST, url, Some(&json!({ "erase": true })))
            .await
        {
            Ok(_) | Err(DeliveryError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn upsert_group(
        &self,
        group: &GroupSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        if self.groups_as == GroupsAs::None {
            return Err(DeliveryError::Permanent(
                "groups are not provisioned to this Synapse".into(),
            ));
        }
        let mut found = None;
        if let Some(id) = known_id {
            found = self.room(id).await?.map(|r| (id.to_string(), r));
        }
        if found.is_none() {
            if let Some(id) = self.resolve_alias(&self.room_alias(&group.scim_id)).await? {
                found = self.room(&id).await?.map(|r| (id, r));
            }
        }
        match found {
            Some((room_id, room)) => {
                if room.get("name").and_then(Value::as_str) != Some(group.display_name.as_str()) {
                    self.set_room_name(&room_id, &group.display_name).await?;
                }
                Ok(room_id)
            }
            None => self.create_room(group).await,
        }
    }

    async fn delete_group(&self, app_id: &str) -> Result<(), DeliveryError> {
        if self.room(app_id).await?.is_none() {
            return Ok(());
        }
        let url = self
            .api
            .url(&["_synapse", "admin", "v2", "rooms", app_id])?;
        let v = match self
            .api
            .send(
                Method::DELETE,
                url,
                Some(&json!({ "block": false, "purge": true })),
            )
            .await
        {
            Ok(v) => v,
            Err(DeliveryError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        // The deletion runs in the background: wait a little for it so that a
        // caller listing rooms right after sees it gone.
        let Some(delete_id) = v.get("delete_id").and_then(Value::as_str) else {
            return Ok(());
        };
        for _ in 0..100 {
            let status = self
                .api
                .get(&[
                    "_synapse",
                    "admin",
                    "v2",
                    "rooms",
                    "delete_status",
                    delete_id,
                ])
                .await?;
            match status.get("status").and_then(Value::as_str) {
                Some("complete") => return Ok(()),
                Some("failed") => {
                    return Err(DeliveryError::Transient(format!(
                        "Synapse failed to delete room {app_id}"
                    )))
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        Ok(())
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        if self.membership(group_id, user_id).await?.as_deref() == Some("join") {
            return Ok(());
        }
        let url = self
            .api
            .url(&["_synapse", "admin", "v1", "join", group_id])?;
        self.api
            .send(Method::POST, url, Some(&json!({ "user_id": user_id })))
            .await
            .map(|_| ())
    }

    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        match self.membership(group_id, user_id).await?.as_deref() {
            Some("join") | Some("invite") | Some("knock") => {}
            _ => return Ok(()),
        }
        let url = self
            .api
            .url(&["_matrix", "client", "v3", "rooms", group_id, "kick"])?;
        let body = json!({ "user_id": user_id, "reason": "removed from the group" });
        match self.api.send(Method::POST, url, Some(&body)).await {
            Ok(_) => Ok(()),
            // The user left meanwhile (a deactivation parts the user from every
            // room in the background; the kick then answers "not in the room"):
            // the membership is gone, which is what was asked.
            Err(e) => match self.membership(group_id, user_id).await?.as_deref() {
                Some("join") | Some("invite") | Some("knock") => Err(e),
                _ => Ok(()),
            },
        }
    }

    async fn list_users(&self) -> Result<Vec<AppUser>, DeliveryError> {
        // One paged listing (deactivated accounts included, with `last_seen_ts`),
        // then one detail GET per active account for its e-mail, a few at a
        // time. Deactivated accounts have no threepids left, so they need no
        // detail call.
        let mut users = Vec::new();
        let mut from = 0u64;
        let mut pager = self.api.http.pager();
        loop {
            let mut url = self.api.url(&["_synapse", "admin", "v2", "users"])?;
            url.query_pairs_mut()
                .append_pair("from", &from.to_string())
                .append_pair("limit", &PAGE.to_string())
                .append_pair("guests", "false")
                .append_pair("deactivated", "true");
            let page = self.api.send(Method::GET, url, None).await?;
            pager.page(
                page.get("users")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len),
            )?;
            for u in page
                .get("users")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(name) = u.get("name").and_then(Value::as_str) else {
                    continue;
                };
                users.push(AppUser {
                    app_id: name.to_string(),
                    user_name: mxid_localpart(name).to_string(),
                    display_name: u
                        .get("displayname")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    email: None,
                    active: !u
                        .get("deactivated")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    last_active_ms: last_seen(u),
                });
            }
            let next = match page.get("next_token") {
                Some(Value::String(s)) => s.parse::<u64>().ok(),
                Some(Value::Number(n)) => n.as_u64(),
                _ => None,
            };
            match next {
                Some(n) if n > from => from = n,
                _ => break,
            }
        }
        let active: Vec<usize> = (0..users.len()).filter(|&i| users[i].active).collect();
        for chunk in active.chunks(DETAIL_CONCURRENCY) {
            let mut tasks = tokio::task::JoinSet::new();
            for &i in chunk {
                let api = Arc::clone(&self.api);
                let id = users[i].app_id.clone();
                tasks.spawn(async move { (i, api.get_user(&id).await) });
            }
            while let Some(joined) = tasks.join_next().await {
                let (i, detail) = joined
                    .map_err(|e| DeliveryError::Transient(format!("listing task failed: {e}")))?;
                if let Some(detail) = detail? {
                    users[i].email = first_email(&detail);
                    if users[i].last_active_ms.is_none() {
                        users[i].last_active_ms = last_seen(&detail);
                    }
                }
            }
        }
        Ok(users)
    }

    async fn list_groups(&self) -> Result<Vec<AppGroup>, DeliveryError> {
        let admin = self.admin_id().await?.to_string();
        let alias_start = format!("#{ALIAS_PREFIX}");
        let alias_end = format!(":{}", self.server_name);
        let mut rooms = Vec::new();
        let mut from = 0u64;
        let mut pager = self.api.http.pager();
        loop {
            let mut url = self.api.url(&["_synapse", "admin", "v1", "rooms"])?;
            url.query_pairs_mut()
                .append_pair("from", &from.to_string())
                .append_pair("limit", &PAGE.to_string())
                .append_pair("search_term", ALIAS_PREFIX);
            let page = self.api.send(Method::GET, url, None).await?;
            pager.page(
                page.get("rooms")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len),
            )?;
            for r in page
                .get("rooms")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let alias = r
                    .get("canonical_alias")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !(alias.starts_with(&alias_start) && alias.ends_with(&alias_end)) {
                    continue;
                }
                if let Some(id) = r.get("room_id").and_then(Value::as_str) {
                    let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                    rooms.push((id.to_string(), name.to_string()));
                }
            }
            match page.get("next_batch").and_then(Value::as_u64) {
                Some(n) if n > from => from = n,
                _ => break,
            }
        }
        let mut groups = Vec::with_capacity(rooms.len());
        for (room_id, name) in rooms {
            let members = match self
                .api
                .get(&["_synapse", "admin", "v1", "rooms", &room_id, "members"])
                .await
            {
                Ok(v) => v,
                // Deleted between the listing and now.
                Err(DeliveryError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let members = members
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|m| *m != admin)
                .map(str::to_owned)
                .collect();
            groups.push(AppGroup {
                app_id: room_id,
                display_name: name,
                members,
            });
        }
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localpart_matches_synapse_mapping() {
        assert_eq!(localpart("Jean.Dupont@ecole.fr"), "jean.dupont=40ecole.fr");
        assert_eq!(localpart("élodie"), "=c3=a9lodie");
        assert_eq!(localpart("_x"), "=5fx");
        assert_eq!(localpart("a_b"), "a_b");
        assert_eq!(localpart("a=b"), "a=3db");
        assert_eq!(localpart("A+B/c-d"), "a+b/c-d");
        assert_eq!(localpart("Émile Zola"), "=c3=89mile=20zola");
        assert_eq!(localpart(""), "");
    }

    #[test]
    fn alias_localpart_escapes_and_keeps_case_apart() {
        assert_eq!(alias_localpart("2b9f-41aa"), "liaison-2b9f-41aa");
        assert_ne!(alias_localpart("Ab"), alias_localpart("ab"));
        assert_eq!(alias_localpart("a:b"), "liaison-a=3ab");
    }

    #[test]
    fn matrix_errors_are_classified() {
        let e = matrix_error(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":10}"#,
        );
        assert!(e.is_transient());
        let e = matrix_error(
            StatusCode::BAD_REQUEST,
            r#"{"errcode":"M_USER_IN_USE","error":"User ID already taken."}"#,
        );
        assert!(matches!(e, DeliveryError::Collision(_)));
        let e = matrix_error(
            StatusCode::NOT_FOUND,
            r#"{"errcode":"M_NOT_FOUND","error":"User not found"}"#,
        );
        assert!(matches!(e, DeliveryError::NotFound(_)));
        let e = matrix_error(
            StatusCode::FORBIDDEN,
            r#"{"errcode":"M_FORBIDDEN","error":"You are not a server admin"}"#,
        );
        assert!(matches!(e, DeliveryError::Permanent(m) if m.contains("M_FORBIDDEN")));
        assert!(matrix_error(StatusCode::BAD_GATEWAY, "<html>").is_transient());
    }

    #[test]
    fn last_seen_reads_milliseconds_and_null() {
        assert_eq!(
            last_seen(&json!({ "last_seen_ts": 1732919539393_i64 })),
            Some(1732919539393)
        );
        assert_eq!(last_seen(&json!({ "last_seen_ts": null })), None);
        assert_eq!(last_seen(&json!({ "last_seen_ts": 0 })), None);
        assert_eq!(last_seen(&json!({})), None);
    }

    #[test]
    fn config_debug_hides_the_token() {
        let c = SynapseConfig::new("http://x", "localhost", "syt_secret");
        assert!(!format!("{c:?}").contains("syt_secret"));
    }
}
