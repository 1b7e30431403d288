//! Nextcloud connector: the OCS provisioning API (`/ocs/v2.php/cloud/...`), as
//! described in the Nextcloud admin manual, "User provisioning API" and its
//! "Instruction set for users" and "Instruction set for groups".
//!
//! Every request sends `OCS-APIRequest: true`, asks for JSON (`format=json`) and
//! authenticates with Basic auth (an admin's app password). Answers are read from
//! the `ocs.meta` envelope: `statuscode` 100 (v1) or 200 (v2) is success, other
//! codes are interpreted per endpoint as documented, then generically: 997
//! (unauthorised) and HTTP 401/403 are [`DeliveryError::Permanent`], 998 and HTTP
//! 404 [`DeliveryError::NotFound`], 996/999, HTTP 5xx and 429
//! [`DeliveryError::Transient`]. A body that is not an OCS envelope falls back to
//! the HTTP status (a proxy's 502/503 is transient), except that a 404 or a 2xx
//! without an envelope is `Permanent` (wrong base URL or provisioning app
//! disabled: never read as "user already deleted").
//!
//! Choices:
//! - **User id** = the SCIM `userName`, unchanged, so that the SSO login (OIDC or
//!   SAML, matching by user id) finds the account. Nextcloud allows only
//!   `a-zA-Z0-9 _.@-'`, at most 64 characters and no surrounding spaces; any
//!   other name is refused with a `Permanent` error rather than mapped, because a
//!   mapped id would not match the SSO login and two names could map to one id.
//!   Nextcloud user ids cannot change: once an account exists (`known_id`), a
//!   later `userName` change updates its other fields but keeps the id.
//! - **Password**: accounts are created with a random 40-character password that
//!   is never stored or shown; people sign in through SSO. This needs no mail
//!   server and sends no "set your password" link that would bypass SSO.
//! - **Which accounts are Liaison's**: the recorded app id (`known_id`), or
//!   membership of the group [`MARKER_GROUP`]. Liaison creates that group
//!   (once, "group exists" is fine) and creates every account in it, in the
//!   same `POST /cloud/users` (its `groups[]` argument), so an account it
//!   created after a lost answer, or that another Liaison process created at
//!   the same moment, is found marked and taken as its own. An existing account
//!   (OCS 102 "username already exists") without the marker is a
//!   [`DeliveryError::Collision`]: nothing in it is changed. Only Nextcloud
//!   admins can change group memberships, so a user cannot mark their own
//!   account. The group is left out of [`Connector::list_groups`].
//! - **Service account**: the account Liaison signs in with
//!   ([`NextcloudConfig::user`]) is never created, updated, disabled or
//!   deleted, whatever the directory says: a collision.
//! - **Updates** read the account first and edit only the fields that differ
//!   (`displayname`, `email`). The quota of [`NextcloudConfig::quota`] is set at
//!   creation only, so an admin's later change is kept.
//! - **Active state**: a new account is disabled right after creation when the
//!   spec says inactive; otherwise upserts leave it to
//!   [`Connector::set_user_active`].
//! - **Group id** = the SCIM id of the group (stable across renames); the SCIM
//!   `displayName` is the Nextcloud group's display name (`displayname`, set at
//!   creation and by `PUT /cloud/groups/{id}`). Group ids must be at most 64
//!   characters of `a-zA-Z0-9._-`.
//! - **Last activity**: [`Connector::list_users`] pages through
//!   `GET /cloud/users/details` (the details of every account, one request per
//!   100 accounts) and reads each account's `lastLogin`, milliseconds since the
//!   epoch (Nextcloud keeps seconds and shows them × 1000), 0 meaning never.
//! - **Idempotence**: deleting a missing user or group and removing a membership
//!   whose user or group is gone succeed; adding an existing membership succeeds
//!   (Nextcloud answers 100).

use std::collections::HashSet;

use outbound::{Method, StatusCode, Url};
use serde_json::Value;

use crate::{
    http_client, random_password, AppGroup, AppKind, AppUser, Connector, DeliveryError, GroupSpec,
    UserSpec,
};

/// How to reach a Nextcloud instance. Its `Debug` form hides the app password.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct NextcloudConfig {
    /// E.g. `https://cloud.example.org` (a sub-path install works too).
    pub base_url: String,
    /// An admin account.
    pub user: String,
    /// An app password of that account.
    pub app_password: String,
    /// Quota given to new accounts (`"10 GB"`, `"none"`); `None` = Nextcloud's default.
    pub quota: Option<String>,
}

impl std::fmt::Debug for NextcloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextcloudConfig")
            .field("base_url", &self.base_url)
            .field("user", &self.user)
            .field("app_password", &"<redacted>")
            .field("quota", &self.quota)
            .finish()
    }
}

/// Users and groups listed per request.
const PAGE: usize = 100;

/// The group whose members are the accounts Liaison created (its marker).
pub const MARKER_GROUP: &str = "liaison-managed";

/// The Nextcloud connector. See the module documentation.
#[derive(Debug, Clone)]
pub struct NextcloudConnector {
    config: NextcloudConfig,
    base: Url,
    http: outbound::Client,
    /// Set once [`MARKER_GROUP`] is known to exist.
    marker_ready: std::sync::Arc<tokio::sync::OnceCell<()>>,
}

/// An OCS failure: the HTTP status and the envelope's code and message.
#[derive(Debug)]
struct OcsFailure {
    http: StatusCode,
    code: i64,
    message: String,
}

impl OcsFailure {
    /// The generic meaning of a failure no endpoint-specific rule covered.
    fn into_error(self, what: &str) -> DeliveryError {
        let msg = format!(
            "{what}: OCS {} (HTTP {}) {}",
            self.code,
            self.http.as_u16(),
            self.message
        );
        if self.code == 997
            || self.http == StatusCode::UNAUTHORIZED
            || self.http == StatusCode::FORBIDDEN
        {
            DeliveryError::Permanent(format!("{msg} (check the user and app password)"))
        } else if self.code == 998 || self.http == StatusCode::NOT_FOUND {
            DeliveryError::NotFound(msg)
        } else if self.code == 996
            || self.code == 999
            || self.http.is_server_error()
            || self.http == StatusCode::TOO_MANY_REQUESTS
        {
            DeliveryError::Transient(msg)
        } else {
            DeliveryError::Permanent(msg)
        }
    }
}

/// A user as `GET /cloud/users/{id}` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NcAccount {
    id: String,
    display_name: String,
    email: String,
    enabled: bool,
    /// Ids of the groups the account is in.
    groups: Vec<String>,
}

/// Checks that a SCIM `userName` is usable as a Nextcloud user id.
pub fn user_id_for(user_name: &str) -> Result<String, DeliveryError> {
    let ok = !user_name.is_empty()
        && user_name.chars().count() <= 64
        && user_name.trim() == user_name
        && user_name != "."
        && user_name != ".."
        && user_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.@-'".contains(c));
    if ok {
        Ok(user_name.to_string())
    } else {
        Err(DeliveryError::Permanent(format!(
            "userName {user_name:?} is not a valid Nextcloud user id \
             (allowed: a-z A-Z 0-9 space _ . @ - ', at most 64 characters)"
        )))
    }
}

/// The Nextcloud group id of a group: its SCIM id, checked.
pub fn group_id_for(scim_id: &str) -> Result<String, DeliveryError> {
    let ok = !scim_id.is_empty()
        && scim_id.len() <= 64
        && scim_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(scim_id.to_string())
    } else {
        Err(DeliveryError::Permanent(format!(
            "group id {scim_id:?} is not usable as a Nextcloud group id"
        )))
    }
}

fn string_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn bool_field(v: &Value, key: &str) -> Option<bool> {
    match v.get(key) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s == "true" || s == "1"),
        Some(Value::Number(n)) => Some(n.as_i64() != Some(0)),
        _ => None,
    }
}

/// The `lastLogin` of user details (ms since the epoch, a number or a numeric
/// string); 0 (never signed in), absent or unreadable is `None`.
fn last_login(v: &Value) -> Option<i64> {
    match v.get("lastLogin") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|&ms| ms > 0)
}

fn parse_account(v: &Value, fallback_id: &str) -> NcAccount {
    let id = string_field(v, "id").unwrap_or_else(|| fallback_id.to_string());
    let display_name = string_field(v, "displayname")
        .or_else(|| string_field(v, "display-name"))
        .unwrap_or_else(|| id.clone());
    NcAccount {
        display_name,
        email: string_field(v, "email").unwrap_or_default(),
        enabled: bool_field(v, "enabled").unwrap_or(true),
        groups: string_list(v.get("groups")),
        id,
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        // PHP serialises a list with holes as an object.
        Some(Value::Object(map)) => map
            .values()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

impl NextcloudConnector {
    /// Checks the base URL and builds an HTTP client with [`outbound`]'s
    /// default limits.
    pub fn new(config: NextcloudConfig) -> Result<Self, DeliveryError> {
        Self::with_client(config, http_client()?)
    }

    /// Uses the given HTTP client (its limits).
    pub fn with_client(
        config: NextcloudConfig,
        http: outbound::Client,
    ) -> Result<Self, DeliveryError> {
        let base = Url::parse(config.base_url.trim_end_matches('/'))
            .map_err(|e| DeliveryError::Permanent(format!("Nextcloud base URL: {e}")))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(DeliveryError::Permanent(format!(
                "Nextcloud base URL {:?} is not an http(s) URL",
                config.base_url
            )));
        }
        Ok(NextcloudConnector {
            config,
            base,
            http,
            marker_ready: Default::default(),
        })
    }

    /// Whether `id` is the account Liaison signs in with (user ids compare
    /// case-insensitively, as Nextcloud looks them up).
    fn is_service_account(&self, id: &str) -> bool {
        id.eq_ignore_ascii_case(&self.config.user)
    }

    fn refuse_service_account(&self, id: &str) -> Result<(), DeliveryError> {
        if self.is_service_account(id) {
            return Err(DeliveryError::Collision(format!(
                "Nextcloud account {id} is the account Liaison signs in with: never changed"
            )));
        }
        Ok(())
    }

    /// Creates [`MARKER_GROUP`] unless it exists (once per connector).
    async fn ensure_marker_group(&self) -> Result<(), DeliveryError> {
        self.marker_ready
            .get_or_try_init(|| async {
                match self
                    .call(
                        Method::POST,
                        &["groups"],
                        &[],
                        &[
                            ("groupid", MARKER_GROUP),
                            ("displayname", "Liaison: managed accounts"),
                        ],
                    )
                    .await?
                {
                    Ok(_) => Ok(()),
                    Err(f) if f.code == 102 => Ok(()),
                    Err(f) => Err(f.into_error("create the group liaison-managed")),
                }
            })
            .await
            .map(|_| ())
    }

    /// Marks an account Liaison holds (a recorded link) that lacks the marker.
    async fn mark(&self, account: &NcAccount) -> Result<(), DeliveryError> {
        if account.groups.iter().any(|g| g == MARKER_GROUP) {
            return Ok(());
        }
        self.ensure_marker_group().await?;
        self.membership(Method::POST, MARKER_GROUP, &account.id)
            .await
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["ocs", "v2.php", "cloud"])
                .extend(segments);
        }
        url
    }

    /// Sends one OCS request. `Err` is a delivery error already (transport, not
    /// an OCS answer); `Ok(Err)` an OCS failure for the caller to interpret.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        form: &[(&str, &str)],
    ) -> Result<Result<Value, OcsFailure>, DeliveryError> {
        let mut req = self
            .http
            .request(method.clone(), self.url(segments))
            .basic_auth(&self.config.user, Some(&self.config.app_password))
            .header("OCS-APIRequest", "true")
            .header(reqwest::header::ACCEPT, "application/json")
            .query(&[("format", "json")])
            .query(query);
        if !form.is_empty() {
            req = req.form(form);
        }
        let resp = self.http.send(req).await?;
        let status = resp.status;
        let parsed: Option<Value> = resp.json();
        let Some(meta) = parsed.as_ref().and_then(|v| v.pointer("/ocs/meta")) else {
            // A 404 without an envelope is no OCS endpoint at all (wrong base URL,
            // provisioning app disabled), not a missing user or group.
            if status.is_success() || status == StatusCode::NOT_FOUND {
                return Err(DeliveryError::Permanent(format!(
                    "{method} {}: HTTP {}, not an OCS answer (is the base URL right? \
                     is the provisioning_api app enabled?)",
                    segments.join("/"),
                    status.as_u16()
                )));
            }
            return Err(resp.error().into());
        };
        let code = match meta.get("statuscode") {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let ok = meta.get("status").and_then(Value::as_str) == Some("ok")
            || ((code == 100 || code == 200) && status.is_success());
        if ok {
            Ok(Ok(parsed
                .as_ref()
                .and_then(|v| v.pointer("/ocs/data"))
                .cloned()
                .unwrap_or(Value::Null)))
        } else {
            Ok(Err(OcsFailure {
                http: status,
                code,
                message: outbound::excerpt(
                    meta.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                ),
            }))
        }
    }

    /// `GET /cloud/users/{id}`: `None` when Nextcloud does not know the user.
    async fn get_user(&self, id: &str) -> Result<Option<NcAccount>, DeliveryError> {
        match self.call(Method::GET, &["users", id], &[], &[]).await? {
            Ok(data) => Ok(Some(parse_account(&data, id))),
            Err(f) => match f.into_error("get user") {
                DeliveryError::NotFound(_) => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn edit_user(&self, id: &str, key: &str, value: &str) -> Result<(), DeliveryError> {
        match self
            .call(
                Method::PUT,
                &["users", id],
                &[],
                &[("key", key), ("value", value)],
            )
            .await?
        {
            Ok(_) => Ok(()),
            Err(f) if f.code == 101 => Err(DeliveryError::NotFound(format!("user {id}"))),
            Err(f) if f.code == 102 || f.code == 103 => Err(DeliveryError::Permanent(format!(
                "edit {key} of {id}: invalid input: {}",
                f.message
            ))),
            Err(f) => Err(f.into_error(&format!("edit {key} of {id}"))),
        }
    }

    /// Edits the fields of `current` that differ from `user`.
    async fn update_user(&self, current: &NcAccount, user: &UserSpec) -> Result<(), DeliveryError> {
        let display = user.shown_name();
        if current.display_name != display {
            self.edit_user(&current.id, "displayname", &display).await?;
        }
        let email = user.email.as_deref().unwrap_or_default();
        if !current.email.eq_ignore_ascii_case(email) {
            self.edit_user(&current.id, "email", email).await?;
        }
        Ok(())
    }

    /// `POST /cloud/users`: `Ok(Some(id))` when created, `Ok(None)` when the user
    /// id exists (OCS 102).
    async fn create_user(
        &self,
        uid: &str,
        user: &UserSpec,
    ) -> Result<Option<String>, DeliveryError> {
        let password = random_password();
        let display = user.shown_name();
        let mut form: Vec<(&str, &str)> = vec![
            ("userid", uid),
            ("password", &password),
            ("displayName", &display),
        ];
        if let Some(email) = user.email.as_deref().filter(|e| !e.is_empty()) {
            form.push(("email", email));
        }
        if let Some(quota) = self.config.quota.as_deref() {
            form.push(("quota", quota));
        }
        self.ensure_marker_group().await?;
        form.push(("groups[]", MARKER_GROUP));
        match self.call(Method::POST, &["users"], &[], &form).await? {
            Ok(data) => Ok(Some(
                string_field(&data, "id").unwrap_or_else(|| uid.to_string()),
            )),
            Err(f) => match f.code {
                102 => Ok(None),
                103 => Err(DeliveryError::Transient(format!(
                    "create user {uid}: unknown error: {}",
                    f.message
                ))),
                101 | 104..=109 => Err(DeliveryError::Permanent(format!(
                    "create user {uid}: OCS {}: {}",
                    f.code, f.message
                ))),
                _ => Err(f.into_error(&format!("create user {uid}"))),
            },
        }
    }

    /// The display name of a group, `None` when the group does not exist.
    async fn group_display_name(&self, gid: &str) -> Result<Option<String>, DeliveryError> {
        let mut offset = 0;
        let mut pager = self.http.pager();
        loop {
            let data = self
                .call(
                    Method::GET,
                    &["groups", "details"],
                    &[
                        ("search", gid.to_string()),
                        ("limit", PAGE.to_string()),
                        ("offset", offset.to_string()),
                    ],
                    &[],
                )
                .await?
                .map_err(|f| f.into_error("search groups"))?;
            let groups = data
                .get("groups")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            pager.page(groups.len())?;
            if let Some(g) = groups
                .iter()
                .find(|g| string_field(g, "id").as_deref() == Some(gid))
            {
                return Ok(Some(
                    string_field(g, "displayname").unwrap_or_else(|| gid.to_string()),
                ));
            }
            if groups.len() < PAGE {
                return Ok(None);
            }
            offset += groups.len();
        }
    }

    async fn membership(
        &self,
        method: Method,
        group_id: &str,
        user_id: &str,
    ) -> Result<(), DeliveryError> {
        let adding = method == Method::POST;
        let what = if adding { "add" } else { "remove" };
        match self
            .call(
                method,
                &["users", user_id, "groups"],
                &[],
                &[("groupid", group_id)],
            )
            .await?
        {
            Ok(_) => Ok(()),
            Err(f) => match f.code {
                // The group (102) or the user (103) is gone: nothing to remove.
                102 | 103 if !adding => Ok(()),
                102 => Err(DeliveryError::NotFound(format!("group {group_id}"))),
                103 => Err(DeliveryError::NotFound(format!("user {user_id}"))),
                101 | 104 | 105 => Err(DeliveryError::Permanent(format!(
                    "{what} {user_id} in {group_id}: OCS {}: {}",
                    f.code, f.message
                ))),
                _ => Err(f.into_error(&format!("{what} {user_id} in {group_id}"))),
            },
        }
    }
}

#[async_trait::async_trait]
impl Connector for NextcloudConnector {
    fn kind(&self) -> AppKind {
        AppKind::Nextcloud
    }

    fn service_account(&self) -> Option<String> {
        Some(self.config.user.clone())
    }

    fn app_user_name(&self, user_name: &str) -> String {
        user_id_for(user_name).unwrap_or_else(|_| user_name.to_owned())
    }

    async fn upsert_user(
        &self,
        user: &UserSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        if let Some(id) = known_id {
            self.refuse_service_account(id)?;
            if let Some(current) = self.get_user(id).await? {
                self.refuse_service_account(&current.id)?;
                self.mark(&current).await?;
                self.update_user(&current, user).await?;
                return Ok(current.id);
            }
            // Deleted behind Liaison's back: created again below.
        }
        let uid = user_id_for(&user.user_name)?;
        self.refuse_service_account(&uid)?;
        match self.create_user(&uid, user).await? {
            Some(id) => {
                if !user.active {
                    self.set_user_active(&id, false).await?;
                }
                Ok(id)
            }
            None => {
                let current = self.get_user(&uid).await?.ok_or_else(|| {
                    DeliveryError::Transient(format!(
                        "user {uid} is reported as existing but cannot be read"
                    ))
                })?;
                self.refuse_service_account(&current.id)?;
                // Ours only when it carries the marker (a retry after a lost
                // answer, or another Liaison process creating it at the same
                // time); anyone else's account is left as it is.
                if !current.groups.iter().any(|g| g == MARKER_GROUP) {
                    return Err(DeliveryError::Collision(format!(
                        "Nextcloud account {} exists and was not created by Liaison",
                        current.id
                    )));
                }
                self.update_user(&current, user).await?;
                Ok(current.id)
            }
        }
    }

    async fn set_user_active(&self, app_id: &str, active: bool) -> Result<(), DeliveryError> {
        self.refuse_service_account(app_id)?;
        let action = if active { "enable" } else { "disable" };
        match self
            .call(Method::PUT, &["users", app_id, action], &[], &[])
            .await?
        {
            Ok(_) => Ok(()),
            // 101 "failure" also means "no such user": tell them apart.
            Err(f) if f.code == 101 => match self.get_user(app_id).await? {
                None => Err(DeliveryError::NotFound(format!("user {app_id}"))),
                Some(_) => Err(DeliveryError::Permanent(format!(
                    "{action} user {app_id}: refused: {}",
                    f.message
                ))),
            },
            Err(f) => Err(f.into_error(&format!("{action} user {app_id}"))),
        }
    }

    async fn delete_user(&self, app_id: &str) -> Result<(), DeliveryError> {
        self.refuse_service_account(app_id)?;
        match self
            .call(Method::DELETE, &["users", app_id], &[], &[])
            .await?
        {
            Ok(_) => Ok(()),
            Err(f) if f.code == 101 => match self.get_user(app_id).await? {
                None => Ok(()),
                Some(_) => Err(DeliveryError::Permanent(format!(
                    "delete user {app_id}: refused: {}",
                    f.message
                ))),
            },
            Err(f) => match f.into_error(&format!("delete user {app_id}")) {
                DeliveryError::NotFound(_) => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn upsert_group(
        &self,
        group: &GroupSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let gid = match known_id {
            Some(id) => id.to_string(),
            None => group_id_for(&group.scim_id)?,
        };
        let created = self
            .call(
                Method::POST,
                &["groups"],
                &[],
                &[("groupid", &gid), ("displayname", &group.display_name)],
            )
            .await?;
        match created {
            Ok(_) => {}
            Err(f) if f.code == 102 => {}
            Err(f) if f.code == 101 || f.code == 103 => {
                return Err(DeliveryError::Permanent(format!(
                    "create group {gid}: OCS {}: {}",
                    f.code, f.message
                )))
            }
            Err(f) => return Err(f.into_error(&format!("create group {gid}"))),
        }
        // Older servers ignore `displayname` at creation: check it either way.
        if self.group_display_name(&gid).await?.as_deref() != Some(group.display_name.as_str()) {
            match self
                .call(
                    Method::PUT,
                    &["groups", &gid],
                    &[],
                    &[("key", "displayname"), ("value", &group.display_name)],
                )
                .await?
            {
                Ok(_) => {}
                Err(f) if f.code == 101 => {
                    return Err(DeliveryError::Permanent(format!(
                        "rename group {gid}: not supported by the group backend"
                    )))
                }
                Err(f) => return Err(f.into_error(&format!("rename group {gid}"))),
            }
        }
        Ok(gid)
    }

    async fn delete_group(&self, app_id: &str) -> Result<(), DeliveryError> {
        match self
            .call(Method::DELETE, &["groups", app_id], &[], &[])
            .await?
        {
            Ok(_) => Ok(()),
            Err(f) if f.code == 101 => Ok(()),
            Err(f) if f.code == 102 => Err(DeliveryError::Permanent(format!(
                "delete group {app_id}: refused: {}",
                f.message
            ))),
            Err(f) => match f.into_error(&format!("delete group {app_id}")) {
                DeliveryError::NotFound(_) => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        self.membership(Method::POST, group_id, user_id).await
    }

    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        self.membership(Method::DELETE, group_id, user_id).await
    }

    async fn list_users(&self) -> Result<Vec<AppUser>, DeliveryError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut offset = 0;
        let mut pager = self.http.pager();
        loop {
            let data = self
                .call(
                    Method::GET,
                    &["users", "details"],
                    &[("limit", PAGE.to_string()), ("offset", offset.to_string())],
                    &[],
                )
                .await?
                .map_err(|f| f.into_error("list users"))?;
            // A map from user id to details; `[]` when empty.
            let entries: Vec<(String, Value)> = match data.get("users") {
                Some(Value::Object(map)) => {
                    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                }
                _ => Vec::new(),
            };
            let n = entries.len();
            pager.page(n)?;
            let mut fresh = 0;
            for (key, details) in entries {
                let acc = parse_account(&details, &key);
                if seen.insert(acc.id.clone()) {
                    fresh += 1;
                    out.push(AppUser {
                        app_id: acc.id.clone(),
                        user_name: acc.id,
                        display_name: Some(acc.display_name),
                        email: Some(acc.email).filter(|e| !e.is_empty()),
                        active: acc.enabled,
                        last_active_ms: last_login(&details),
                    });
                }
            }
            if n < PAGE || fresh == 0 {
                return Ok(out);
            }
            offset += n;
        }
    }

    async fn list_groups(&self) -> Result<Vec<AppGroup>, DeliveryError> {
        let mut groups: Vec<(String, String)> = Vec::new();
        let mut seen = HashSet::new();
        let mut offset = 0;
        let mut pager = self.http.pager();
        loop {
            let data = self
                .call(
                    Method::GET,
                    &["groups", "details"],
                    &[("limit", PAGE.to_string()), ("offset", offset.to_string())],
                    &[],
                )
                .await?
                .map_err(|f| f.into_error("list groups"))?;
            let page = data
                .get("groups")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = page.len();
            pager.page(n)?;
            let mut fresh = 0;
            for g in page {
                if let Some(id) = string_field(&g, "id").filter(|id| id != MARKER_GROUP) {
                    if seen.insert(id.clone()) {
                        fresh += 1;
                        let name = string_field(&g, "displayname").unwrap_or_else(|| id.clone());
                        groups.push((id, name));
                    }
                }
            }
            if n < PAGE || fresh == 0 {
                break;
            }
            offset += n;
        }
        let mut out = Vec::with_capacity(groups.len());
        for (id, display_name) in groups {
            let members = match self
                .call(Method::GET, &["groups", &id, "users"], &[], &[])
                .await?
            {
                Ok(data) => string_list(data.get("users")),
                Err(f) => match f.into_error(&format!("members of {id}")) {
                    // Deleted while listing.
                    DeliveryError::NotFound(_) => continue,
                    e => return Err(e),
                },
            };
            out.push(AppGroup {
                app_id: id,
                display_name,
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
    fn user_ids_follow_nextcloud_rules() {
        assert!(user_id_for("alice").is_ok());
        assert!(user_id_for("o'neil.a-b_c@example.org").is_ok());
        assert!(user_id_for("Frank K").is_ok());
        for bad in ["", " alice", "alice ", "a/b", "élodie", "..", "a:b"] {
            assert!(
                matches!(user_id_for(bad), Err(DeliveryError::Permanent(_))),
                "{bad:?}"
            );
        }
        assert!(user_id_for(&"a".repeat(65)).is_err());
    }

    #[test]
    fn last_login_is_milliseconds_and_zero_is_never() {
        use serde_json::json;
        assert_eq!(
            last_login(&json!({ "lastLogin": 1700000000000_i64 })),
            Some(1700000000000)
        );
        assert_eq!(
            last_login(&json!({ "lastLogin": "1700000000000" })),
            Some(1700000000000)
        );
        assert_eq!(last_login(&json!({ "lastLogin": 0 })), None);
        assert_eq!(last_login(&json!({})), None);
    }

    #[test]
    fn failures_map_to_delivery_errors() {
        let f = |http: u16, code: i64| OcsFailure {
            http: StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message: String::new(),
        };
        assert!(matches!(
            f(401, 997).into_error("x"),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            f(200, 997).into_error("x"),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            f(404, 998).into_error("x"),
            DeliveryError::NotFound(_)
        ));
        assert!(matches!(
            f(500, 996).into_error("x"),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            f(503, 0).into_error("x"),
            DeliveryError::Transient(_)
        ));
        assert!(matches!(
            f(400, 101).into_error("x"),
            DeliveryError::Permanent(_)
        ));
    }
}
