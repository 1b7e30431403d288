//! Any SCIM 2.0 service provider (RFC 7643/7644), Liaison being the client.
//!
//! * A user is found by the id recorded at an earlier delivery, else by
//!   `userName eq "..."`, else by `externalId eq "..."` (a renamed user). The
//!   `externalId` Liaison sends is the directory's `externalId`, or its SCIM id
//!   when there is none. A user found by `userName` whose `externalId` differs
//!   (or is missing) belongs to someone else: [`DeliveryError::Collision`].
//! * Groups carry Liaison's SCIM id as `externalId` and are found by it; a group
//!   of the same `displayName` without that link is a collision.
//! * Updates use `PATCH` when the peer supports it (read once from
//!   `/ServiceProviderConfig` unless [`ScimConfig::use_patch`] says), with only the
//!   operations that change something; otherwise `GET` + `PUT` of the whole
//!   resource, keeping the attributes Liaison does not manage (members, phone
//!   numbers...). Memberships are `PATCH add`/`remove members[value eq "..."]`, or
//!   `GET` + `PUT` of the whole member list.
//! * Deleting something already gone (404) succeeds.

use outbound::{Method, StatusCode, Url};
use serde_json::{json, Map, Value};
use tokio::sync::OnceCell;

use crate::{
    http_client, status_error, AppGroup, AppKind, AppUser, Connector, DeliveryError, GroupSpec,
    UserSpec,
};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";
/// Page size asked for by the list calls.
const PAGE: usize = 100;
/// The user attributes Liaison manages (besides `active`).
const USER_ATTRS: [&str; 6] = [
    "userName",
    "externalId",
    "name.givenName",
    "name.familyName",
    "displayName",
    "emails",
];

/// The value at an attribute path of at most one dot (`name.givenName`).
fn at<'a>(resource: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    match path.split_once('.') {
        Some((parent, sub)) => resource.get(parent)?.get(sub),
        None => resource.get(path),
    }
}

/// Sets (or removes, for `None`) the value at an attribute path; a complex
/// attribute left empty is removed.
fn set_at(resource: &mut Map<String, Value>, path: &str, value: Option<Value>) {
    match path.split_once('.') {
        Some((parent, sub)) => {
            let entry = resource
                .entry(parent.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Some(obj) = entry.as_object_mut() {
                match value {
                    Some(v) => {
                        obj.insert(sub.to_string(), v);
                    }
                    None => {
                        obj.remove(sub);
                    }
                }
                // A changed part makes the peer's `formatted` stale.
                obj.remove("formatted");
                if obj.is_empty() {
                    resource.remove(parent);
                }
            }
        }
        None => {
            match value {
                Some(v) => resource.insert(path.to_string(), v),
                None => resource.remove(path),
            };
        }
    }
}

/// Where and how to reach a SCIM service provider.
#[derive(Clone)]
pub struct ScimConfig {
    /// The SCIM base URL: `Users`, `Groups` and `ServiceProviderConfig` are below it.
    pub base_url: String,
    /// Sent as `Authorization: Bearer ...` when set. Never logged.
    pub bearer_token: Option<String>,
    /// `Some(true)`: update with PATCH; `Some(false)`: GET + PUT; `None`: ask the
    /// peer's `/ServiceProviderConfig` once (`patch.supported`).
    pub use_patch: Option<bool>,
}

impl std::fmt::Debug for ScimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimConfig")
            .field("base_url", &self.base_url)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("use_patch", &self.use_patch)
            .finish()
    }
}

/// Provisions a SCIM service provider. See the module documentation.
pub struct ScimConnector {
    http: outbound::Client,
    base: Url,
    token: Option<String>,
    use_patch: Option<bool>,
    discovered_patch: OnceCell<bool>,
}

impl std::fmt::Debug for ScimConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimConnector")
            .field("base_url", &self.base.as_str())
            .field("use_patch", &self.use_patch)
            .finish_non_exhaustive()
    }
}

/// Quotes a string as a SCIM filter literal (a JSON string).
fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A failed call: the HTTP status and `scimType` of the answer (when there
/// was one), and what it means for the delivery.
#[derive(Debug)]
struct ScimFailure {
    status: Option<u16>,
    scim_type: String,
    error: DeliveryError,
}

impl From<outbound::HttpError> for ScimFailure {
    fn from(e: outbound::HttpError) -> Self {
        ScimFailure {
            status: None,
            scim_type: String::new(),
            error: e.into(),
        }
    }
}

/// Maps a SCIM error answer to a failure.
fn scim_failure(status: StatusCode, body: &str) -> ScimFailure {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let scim_type = parsed
        .as_ref()
        .and_then(|v| v.get("scimType"))
        .and_then(Value::as_str)
        .map(outbound::excerpt)
        .unwrap_or_default();
    ScimFailure {
        status: Some(status.as_u16()),
        error: scim_error(status, body),
        scim_type,
    }
}

/// Maps a SCIM error answer to a delivery error.
fn scim_error(status: StatusCode, body: &str) -> DeliveryError {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let detail = parsed
        .as_ref()
        .map(|v| {
            let scim_type = v.get("scimType").and_then(Value::as_str).unwrap_or("");
            let detail = v.get("detail").and_then(Value::as_str).unwrap_or("");
            format!("{scim_type} {detail}").trim().to_string()
        })
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| body.to_string());
    if status == StatusCode::NOT_IMPLEMENTED {
        // The peer lacks the feature (e.g. PATCH): retrying will not help.
        return DeliveryError::Permanent(format!("HTTP {status}: {}", outbound::excerpt(&detail)));
    }
    status_error(status, &detail)
}

fn id_of(resource: &Value) -> Result<String, DeliveryError> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| DeliveryError::Permanent("the SCIM peer sent a resource without id".into()))
}

fn str_field<'a>(resource: &'a Value, name: &str) -> Option<&'a str> {
    resource.get(name).and_then(Value::as_str)
}

/// The attributes Liaison manages for a user, as they should be.
fn desired_user(user: &UserSpec) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("userName".into(), json!(user.user_name));
    m.insert(
        "externalId".into(),
        json!(user.external_id.as_deref().unwrap_or(&user.scim_id)),
    );
    let mut name = Map::new();
    if let Some(g) = &user.given_name {
        name.insert("givenName".into(), json!(g));
    }
    if let Some(f) = &user.family_name {
        name.insert("familyName".into(), json!(f));
    }
    if !name.is_empty() {
        m.insert("name".into(), Value::Object(name));
    }
    if let Some(d) = &user.display_name {
        m.insert("displayName".into(), json!(d));
    }
    if let Some(e) = user.email.as_deref().filter(|e| !e.trim().is_empty()) {
        m.insert(
            "emails".into(),
            json!([{ "value": e, "type": "work", "primary": true }]),
        );
    }
    m
}

/// Whether the peer's value of a managed attribute already matches. Peers add
/// sub-attributes of their own, so only the ones Liaison sets are compared.
fn same_value(have: Option<&Value>, want: Option<&Value>) -> bool {
    match (have, want) {
        (None | Some(Value::Null), None) => true,
        (Some(Value::Array(a)), None) => a.is_empty(),
        (Some(h), Some(w)) => covers(h, w),
        _ => false,
    }
}

fn covers(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| covers(hv, wv))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(hv, wv)| covers(hv, wv))
        }
        (Value::String(h), Value::String(w)) => h == w,
        (h, w) => h == w,
    }
}

fn member_ids(group: &Value) -> Vec<String> {
    group
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("value").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// A resource made ready to be sent back with PUT.
fn for_put(mut resource: Value) -> Value {
    if let Some(m) = resource.as_object_mut() {
        m.remove("meta");
    }
    resource
}

impl ScimConnector {
    /// Builds the connector; fails on an invalid base URL.
    pub fn new(config: ScimConfig) -> Result<Self, DeliveryError> {
        Self::with_client(config, http_client()?)
    }

    /// Uses the given HTTP client (its limits).
    pub fn with_client(config: ScimConfig, http: outbound::Client) -> Result<Self, DeliveryError> {
        let base = Url::parse(&config.base_url)
            .map_err(|e| DeliveryError::Permanent(format!("invalid SCIM base URL: {e}")))?;
        if base.cannot_be_a_base() {
            return Err(DeliveryError::Permanent("invalid SCIM base URL".into()));
        }
        Ok(ScimConnector {
            http,
            base,
            token: config.bearer_token.filter(|t| !t.is_empty()),
            use_patch: config.use_patch,
            discovered_patch: OnceCell::new(),
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends a request; returns the JSON body of a success (`Null` when empty).
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, DeliveryError> {
        self.call(method, url, body).await.map_err(|f| f.error)
    }

    /// Like [`ScimConnector::send`], with the status of a failure.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, ScimFailure> {
        let mut req = self.http.request(method, url).header(
            reqwest::header::ACCEPT,
            "application/scim+json, application/json",
        );
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|e| ScimFailure {
                status: None,
                scim_type: String::new(),
                error: DeliveryError::Permanent(format!("JSON: {e}")),
            })?;
            req = req
                .header(reqwest::header::CONTENT_TYPE, SCIM_JSON)
                .body(bytes);
        }
        let resp = self.http.send(req).await?;
        let status = resp.status;
        if !status.is_success() {
            return Err(scim_failure(status, &resp.text()));
        }
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&resp.body).map_err(|e| ScimFailure {
            status: Some(status.as_u16()),
            scim_type: String::new(),
            error: DeliveryError::Transient(format!("the SCIM peer sent invalid JSON: {e}")),
        })
    }

    async fn get(&self, kind: &str, id: &str) -> Result<Option<Value>, DeliveryError> {
        match self.send(Method::GET, self.url(&[kind, id]), None).await {
            Ok(v) => Ok(Some(v)),
            Err(DeliveryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first resource matching `filter`, if any.
    async fn search_one(&self, kind: &str, filter: &str) -> Result<Option<Value>, DeliveryError> {
        let mut url = self.url(&[kind]);
        url.query_pairs_mut()
            .append_pair("filter", filter)
            .append_pair("startIndex", "1")
            .append_pair("count", "2");
        let page = self.send(Method::GET, url, None).await?;
        Ok(page
            .get("Resources")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .cloned())
    }

    /// Every resource of a kind, following `totalResults`.
    async fn list_all(&self, kind: &str) -> Result<Vec<Value>, DeliveryError> {
        let mut all = Vec::new();
        let mut start = 1usize;
        let mut pager = self.http.pager();
        loop {
            let mut url = self.url(&[kind]);
            url.query_pairs_mut()
                .append_pair("startIndex", &start.to_string())
                .append_pair("count", &PAGE.to_string());
            let page = self.send(Method::GET, url, None).await?;
            let resources = page
                .get("Resources")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = page
                .get("totalResults")
                .and_then(Value::as_u64)
                .and_then(|t| usize::try_from(t).ok())
                .unwrap_or(0);
            if resources.is_empty() {
                break;
            }
            pager.page(resources.len())?;
            start += resources.len();
            all.extend(resources);
            if start > total {
                break;
            }
        }
        Ok(all)
    }

    async fn patch(&self, kind: &str, id: &str, ops: Vec<Value>) -> Result<(), DeliveryError> {
        self.patch_raw(kind, id, ops).await.map_err(|f| f.error)
    }

    async fn patch_raw(&self, kind: &str, id: &str, ops: Vec<Value>) -> Result<(), ScimFailure> {
        let body = json!({ "schemas": [PATCH_SCHEMA], "Operations": ops });
        self.call(Method::PATCH, self.url(&[kind, id]), Some(&body))
            .await
            .map(|_| ())
    }

    async fn put(&self, kind: &str, id: &str, resource: Value) -> Result<(), DeliveryError> {
        self.send(Method::PUT, self.url(&[kind, id]), Some(&for_put(resource)))
            .await
            .map(|_| ())
    }

    /// Whether updates use PATCH (configured, or discovered once).
    pub async fn uses_patch(&self) -> Result<bool, DeliveryError> {
        if let Some(p) = self.use_patch {
            return Ok(p);
        }
        let p = self
            .discovered_patch
            .get_or_try_init(|| async {
                match self
                    .send(Method::GET, self.url(&["ServiceProviderConfig"]), None)
                    .await
                {
                    Ok(v) => Ok(v
                        .get("patch")
                        .and_then(|p| p.get("supported"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)),
                    Err(DeliveryError::NotFound(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(*p)
    }

    /// The peer's user that `user` is, or `None` when it has none.
    async fn find_user(
        &self,
        user: &UserSpec,
        known_id: Option<&str>,
        ext: &str,
    ) -> Result<Option<Value>, DeliveryError> {
        if let Some(id) = known_id {
            if let Some(found) = self.get("Users", id).await? {
                return Ok(Some(found));
            }
        }
        let by_name = self
            .search_one("Users", &format!("userName eq {}", quote(&user.user_name)))
            .await?;
        if let Some(found) = by_name {
            if str_field(&found, "externalId") != Some(ext) {
                return Err(DeliveryError::Collision(format!(
                    "the SCIM peer already has a user named {:?} that is not linked to this user",
                    user.user_name
                )));
            }
            return Ok(Some(found));
        }
        self.search_one("Users", &format!("externalId eq {}", quote(ext)))
            .await
    }

    async fn update_user(
        &self,
        existing: Value,
        want: Map<String, Value>,
    ) -> Result<String, DeliveryError> {
        let id = id_of(&existing)?;
        let Value::Object(mut resource) = existing else {
            return Err(DeliveryError::Permanent(
                "the SCIM peer sent a user that is not an object".into(),
            ));
        };
        let changed: Vec<&str> = USER_ATTRS
            .into_iter()
            .filter(|a| !same_value(at(&resource, a), at(&want, a)))
            .collect();
        if changed.is_empty() {
            return Ok(id);
        }
        if self.uses_patch().await? {
            let ops = changed
                .iter()
                .map(|a| match at(&want, a) {
                    Some(v) => json!({ "op": "replace", "path": a, "value": v }),
                    None => json!({ "op": "remove", "path": a }),
                })
                .collect();
            self.patch("Users", &id, ops).await?;
        } else {
            for a in changed {
                set_at(&mut resource, a, at(&want, a).cloned());
            }
            self.put("Users", &id, Value::Object(resource)).await?;
        }
        Ok(id)
    }

    async fn find_group(
        &self,
        group: &GroupSpec,
        known_id: Option<&str>,
    ) -> Result<Option<Value>, DeliveryError> {
        if let Some(id) = known_id {
            if let Some(found) = self.get("Groups", id).await? {
                return Ok(Some(found));
            }
        }
        if let Some(found) = self
            .search_one(
                "Groups",
                &format!("externalId eq {}", quote(&group.scim_id)),
            )
            .await?
        {
            return Ok(Some(found));
        }
        let by_name = self
            .search_one(
                "Groups",
                &format!("displayName eq {}", quote(&group.display_name)),
            )
            .await?;
        match by_name {
            Some(found) if str_field(&found, "externalId") != Some(group.scim_id.as_str()) => {
                Err(DeliveryError::Collision(format!(
                    "the SCIM peer already has a group named {:?} that is not linked to this group",
                    group.display_name
                )))
            }
            other => Ok(other),
        }
    }

    async fn get_group(&self, group_id: &str) -> Result<Value, DeliveryError> {
        self.get("Groups", group_id)
            .await?
            .ok_or_else(|| DeliveryError::NotFound(format!("no SCIM group {group_id}")))
    }
}

#[async_trait::async_trait]
impl Connector for ScimConnector {
    fn kind(&self) -> AppKind {
        AppKind::Scim
    }

    async fn upsert_user(
        &self,
        user: &UserSpec,
        known_id: Option<&str>,
    ) -> Result<String, DeliveryError> {
        let want = desired_user(user);
        let ext = user.external_id.as_deref().unwrap_or(&user.scim_id);
        if let Some(existing) = self.find_user(user, known_id, ext).await? {
            return self.update_user(existing, want).await;
        }
        let mut body = want.clone();
        body.insert("schemas".into(), json!([USER_SCHEMA]));
        body.insert("active".into(), json!(user.active));
        match self
            .call(
                Method::POST,
                self.url(&["Users"]),
                Some(&Value::Object(body)),
            )
            .await
        {
            Ok(created) => id_of(&created),
            // Created meanwhile (a retried delivery), or someone else's user.
            Err(f) if f.status == Some(409) => match self.find_user(user, None, ext).await? {
                Some(existing) => self.update_user(existing, want).await,
                None => Err(DeliveryError::Collision(format!(
                    "the SCIM peer refused user {:?} as not unique",
                    user.user_name
                ))),
            },
            Err(f) => Err(f.error),
        }
    }

    async fn set_user_active(&self, app_id: &str, active: bool) -> Result<(), DeliveryError> {
        if self.uses_patch().await? {
            let ops = vec![json!({ "op": "replace", "path": "active", "value": active })];
            return self.patch("Users", app_id, ops).await;
        }
        let mut user = self
            .get("Users", app_id)
            .await?
            .ok_or_else(|| DeliveryError::NotFound(format!("no SCIM user {app_id}")))?;
        if user.get("active").and_then(Value::as_bool) == Some(active) {
            return Ok(());
        }
        if let Some(m) = user.as_object_mut() {
            m.insert("active".into(), json!(active));
        }
        self.put("Users", app_id, user).await
    }

    async fn delete_user(&self, app_id: &str) -> Result<(), DeliveryError> {
        match self
            .send(Method::DELETE, self.url(&["Users", app_id]), None)
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
        if let Some(existing) = self.find_group(group, known_id).await? {
            let id = id_of(&existing)?;
            let name_ok = str_field(&existing, "displayName") == Some(group.display_name.as_str());
            let ext_ok = str_field(&existing, "externalId") == Some(group.scim_id.as_str());
            if name_ok && ext_ok {
                return Ok(id);
            }
            if self.uses_patch().await? {
                let ops = vec![
                    json!({ "op": "replace", "path": "displayName", "value": group.display_name }),
                    json!({ "op": "replace", "path": "externalId", "value": group.scim_id }),
                ];
                self.patch("Groups", &id, ops).await?;
            } else {
                let mut resource = existing;
                if let Some(m) = resource.as_object_mut() {
                    m.insert("displayName".into(), json!(group.display_name));
                    m.insert("externalId".into(), json!(group.scim_id));
                }
                self.put("Groups", &id, resource).await?;
            }
            return Ok(id);
        }
        let body = json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": group.display_name,
            "externalId": group.scim_id,
        });
        match self
            .call(Method::POST, self.url(&["Groups"]), Some(&body))
            .await
        {
            Ok(created) => id_of(&created),
            Err(f) if f.status == Some(409) => Err(DeliveryError::Collision(format!(
                "the SCIM peer refused group {:?} as not unique",
                group.display_name
            ))),
            Err(f) => Err(f.error),
        }
    }

    async fn delete_group(&self, app_id: &str) -> Result<(), DeliveryError> {
        match self
            .send(Method::DELETE, self.url(&["Groups", app_id]), None)
            .await
        {
            Ok(_) | Err(DeliveryError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        if self.uses_patch().await? {
            let ops =
                vec![json!({ "op": "add", "path": "members", "value": [{ "value": user_id }] })];
            return match self.patch_raw("Groups", group_id, ops).await {
                // Some peers refuse adding a member twice: it is there.
                Err(f) if f.status == Some(409) => Ok(()),
                other => other.map_err(|f| f.error),
            };
        }
        let mut group = self.get_group(group_id).await?;
        if member_ids(&group).iter().any(|m| m == user_id) {
            return Ok(());
        }
        if let Some(m) = group.as_object_mut() {
            let members = m.entry("members").or_insert_with(|| json!([]));
            if !members.is_array() {
                *members = json!([]);
            }
            if let Some(list) = members.as_array_mut() {
                list.push(json!({ "value": user_id }));
            }
        }
        self.put("Groups", group_id, group).await
    }

    async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<(), DeliveryError> {
        if self.uses_patch().await? {
            let path = format!("members[value eq {}]", quote(user_id));
            let ops = vec![json!({ "op": "remove", "path": path })];
            return match self.patch_raw("Groups", group_id, ops).await {
                // RFC 7644 3.5.2.2: no member matched; it is not there.
                Err(f) if f.status == Some(400) && f.scim_type == "noTarget" => Ok(()),
                other => other.map_err(|f| f.error),
            };
        }
        let mut group = self.get_group(group_id).await?;
        if !member_ids(&group).iter().any(|m| m == user_id) {
            return Ok(());
        }
        if let Some(list) = group.get_mut("members").and_then(Value::as_array_mut) {
            list.retain(|m| m.get("value").and_then(Value::as_str) != Some(user_id));
        }
        self.put("Groups", group_id, group).await
    }

    async fn list_users(&self) -> Result<Vec<AppUser>, DeliveryError> {
        Ok(self
            .list_all("Users")
            .await?
            .into_iter()
            .filter_map(|u| {
                let emails = u.get("emails").and_then(Value::as_array);
                let email = emails
                    .and_then(|es| {
                        es.iter()
                            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                            .or_else(|| es.first())
                    })
                    .and_then(|e| e.get("value"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Some(AppUser {
                    app_id: str_field(&u, "id")?.to_string(),
                    user_name: str_field(&u, "userName").unwrap_or("").to_string(),
                    display_name: str_field(&u, "displayName").map(str::to_owned),
                    email,
                    active: u.get("active").and_then(Value::as_bool).unwrap_or(true),
                    // SCIM 2.0 has no standard last-activity attribute.
                    last_active_ms: None,
                })
            })
            .collect())
    }

    async fn list_groups(&self) -> Result<Vec<AppGroup>, DeliveryError> {
        Ok(self
            .list_all("Groups")
            .await?
            .into_iter()
            .filter_map(|g| {
                Some(AppGroup {
                    app_id: str_field(&g, "id")?.to_string(),
                    display_name: str_field(&g, "displayName").unwrap_or("").to_string(),
                    members: member_ids(&g),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_literals_are_json_strings() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("élodie"), "\"élodie\"");
    }

    #[test]
    fn desired_user_holds_the_managed_attributes() {
        let u = UserSpec {
            scim_id: "s1".into(),
            external_id: None,
            user_name: "jdoe".into(),
            display_name: Some("Jane Doe".into()),
            given_name: Some("Jane".into()),
            family_name: None,
            email: Some("jane@example.org".into()),
            active: false,
        };
        let m = desired_user(&u);
        assert_eq!(m["externalId"], "s1");
        assert_eq!(m["name"], json!({ "givenName": "Jane" }));
        assert_eq!(m["emails"][0]["value"], "jane@example.org");
        assert!(!m.contains_key("active"));
    }

    #[test]
    fn comparison_ignores_the_peers_own_sub_attributes() {
        let have = json!([{ "value": "a@b.c", "type": "work", "primary": true, "display": "x" }]);
        let want = json!([{ "value": "a@b.c", "type": "work", "primary": true }]);
        assert!(same_value(Some(&have), Some(&want)));
        let other = json!([{ "value": "z@b.c", "type": "work", "primary": true }]);
        assert!(!same_value(Some(&have), Some(&other)));
        assert!(same_value(None, None));
        assert!(same_value(Some(&json!([])), None));
        assert!(!same_value(Some(&have), None));
    }

    #[test]
    fn dotted_paths_reach_sub_attributes() {
        let mut m = Map::new();
        set_at(&mut m, "name.givenName", Some(json!("Jane")));
        set_at(&mut m, "name.familyName", Some(json!("Doe")));
        assert_eq!(at(&m, "name.givenName"), Some(&json!("Jane")));
        m["name"]["formatted"] = json!("Jane Doe");
        set_at(&mut m, "name.familyName", None);
        assert_eq!(m["name"], json!({ "givenName": "Jane" }));
        set_at(&mut m, "name.givenName", None);
        assert!(!m.contains_key("name"));
        set_at(&mut m, "displayName", Some(json!("J")));
        assert_eq!(at(&m, "displayName"), Some(&json!("J")));
        assert_eq!(at(&m, "name.givenName"), None);
    }

    #[test]
    fn scim_errors_are_classified() {
        let f = scim_failure(
            StatusCode::CONFLICT,
            r#"{"status":"409","scimType":"uniqueness","detail":"taken"}"#,
        );
        assert_eq!((f.status, f.scim_type.as_str()), (Some(409), "uniqueness"));
        assert!(matches!(f.error, DeliveryError::Permanent(m) if m.contains("uniqueness")));
        assert!(scim_error(StatusCode::SERVICE_UNAVAILABLE, "").is_transient());
        assert!(matches!(
            scim_error(
                StatusCode::NOT_IMPLEMENTED,
                r#"{"detail":"PATCH is not supported"}"#
            ),
            DeliveryError::Permanent(_)
        ));
        assert!(matches!(
            scim_error(StatusCode::NOT_FOUND, "{}"),
            DeliveryError::NotFound(_)
        ));
    }

    #[test]
    fn config_debug_hides_the_token() {
        let c = ScimConfig {
            base_url: "http://x".into(),
            bearer_token: Some("s3cret".into()),
            use_patch: None,
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
