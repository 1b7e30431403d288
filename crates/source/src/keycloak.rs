//! Keycloak's admin REST API, as far as a directory source needs it: a
//! client-credentials token (cached until shortly before it expires, dropped
//! and fetched again on a 401), users, groups and their children, members, a
//! user's groups, admin events and user events.
//!
//! Every list is read in pages (`first`/`max`) up to a bound; every answer is
//! hostile input: bounded in size (`outbound`, which also refuses redirects),
//! parsed into the few fields used, each checked (ids, lengths). An entry that
//! fails the checks is reported as [`Invalid`], never guessed at.

use outbound::{Client, HttpError, Limits, Method, RequestBuilder, Response, Url};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Where a realm is and how Liaison authenticates to it.
#[derive(Clone)]
pub struct KeycloakConfig {
    /// The server's base URL (`https://sso.example.org`).
    pub base_url: Url,
    pub realm: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for KeycloakConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeycloakConfig")
            .field("base_url", &self.base_url.as_str())
            .field("realm", &self.realm)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// Bounds on what is read from Keycloak.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Entries per page (`max`).
    pub page: usize,
    /// Users in a realm.
    pub max_users: usize,
    /// Groups in a realm (all levels).
    pub max_groups: usize,
    /// Levels of subgroups.
    pub max_depth: usize,
    /// Events read by one run of the follower; beyond, a full reconciliation
    /// is cheaper and complete.
    pub max_events: usize,
    /// Groups of one user.
    pub max_user_groups: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            page: 100,
            max_users: 200_000,
            max_groups: 20_000,
            max_depth: 16,
            max_events: 5_000,
            max_user_groups: 1_000,
        }
    }
}

/// Why reading the realm failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeycloakError {
    #[error("Keycloak {0}")]
    Http(#[from] HttpError),
    /// The realm holds more than a bound allows.
    #[error("the realm exceeds a bound: {0}")]
    Bound(String),
    /// Keycloak refused the client's credentials or roles.
    #[error("Keycloak refused the client: {0}")]
    Auth(String),
}

impl KeycloakError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            KeycloakError::Http(e) => e.is_transient(),
            _ => false,
        }
    }
}

type Result<T> = std::result::Result<T, KeycloakError>;

/// A user as Liaison takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KcUser {
    pub id: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
}

/// A group as Liaison takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KcGroup {
    pub id: String,
    pub name: String,
    /// `/parent/child`.
    pub path: String,
    pub parent_id: Option<String>,
    pub sub_group_count: u64,
}

/// An entry Keycloak answered that Liaison does not take (the id when it
/// has one, and why).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Invalid {
    pub id: Option<String>,
    pub reason: String,
}

/// An admin event, reduced to what says which resource changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEvent {
    pub id: Option<String>,
    pub time: i64,
    pub operation: String,
    pub resource_type: String,
    pub resource_path: String,
}

/// A user event, reduced to its type and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEvent {
    pub id: Option<String>,
    pub time: i64,
    pub kind: String,
    pub user_id: Option<String>,
}

/// The user events that change a directory entry (logins do not).
pub const USER_EVENT_TYPES: &[&str] = &[
    "REGISTER",
    "UPDATE_PROFILE",
    "UPDATE_EMAIL",
    "VERIFY_EMAIL",
    "DELETE_ACCOUNT",
];

/// The admin event resource types that concern users and groups.
pub const ADMIN_RESOURCE_TYPES: &[&str] = &["USER", "GROUP", "GROUP_MEMBERSHIP"];

const MAX_ID: usize = 64;
const MAX_NAME: usize = 255;
const MAX_EMAIL: usize = 320;
const MAX_PATH: usize = 4096;

/// Whether `s` looks like a Keycloak id (a UUID, or any short token of
/// letters, digits, `-` and `_`): ids end up in URLs and filters.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn text(s: Option<String>, max: usize, what: &str) -> std::result::Result<Option<String>, String> {
    match s {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) if s.chars().count() > max => Err(format!("{what} longer than {max} characters")),
        Some(s) if s.chars().any(char::is_control) => Err(format!("{what} has control characters")),
        Some(s) => Ok(Some(s)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUser {
    id: Option<String>,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    enabled: Option<bool>,
}

impl RawUser {
    fn check(self) -> std::result::Result<KcUser, Invalid> {
        let id = self.id.filter(|i| valid_id(i));
        let invalid = |reason: String| Invalid {
            id: id.clone(),
            reason,
        };
        let Some(uid) = id.clone() else {
            return Err(invalid("no valid id".into()));
        };
        let username = text(self.username, MAX_NAME, "username")
            .map_err(&invalid)?
            .ok_or_else(|| invalid("no username".into()))?;
        let email = text(self.email, MAX_EMAIL, "email").map_err(&invalid)?;
        if email.as_deref().is_some_and(|e| !e.contains('@')) {
            return Err(invalid("email without @".into()));
        }
        Ok(KcUser {
            id: uid,
            username,
            first_name: text(self.first_name, MAX_NAME, "firstName").map_err(&invalid)?,
            last_name: text(self.last_name, MAX_NAME, "lastName").map_err(&invalid)?,
            email,
            // Keycloak omits nothing here in practice; absent means not enabled.
            enabled: self.enabled.unwrap_or(false),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGroup {
    id: Option<String>,
    name: Option<String>,
    path: Option<String>,
    parent_id: Option<String>,
    sub_group_count: Option<u64>,
}

impl RawGroup {
    fn check(self, parent: Option<&str>) -> std::result::Result<KcGroup, Invalid> {
        let id = self.id.filter(|i| valid_id(i));
        let invalid = |reason: String| Invalid {
            id: id.clone(),
            reason,
        };
        let Some(gid) = id.clone() else {
            return Err(invalid("no valid id".into()));
        };
        let name = text(self.name, MAX_NAME, "name")
            .map_err(&invalid)?
            .ok_or_else(|| invalid("no name".into()))?;
        let path = text(self.path, MAX_PATH, "path")
            .map_err(&invalid)?
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| invalid("no path".into()))?;
        if let (Some(claimed), Some(expected)) = (self.parent_id.as_deref(), parent) {
            if claimed != expected {
                return Err(invalid("listed under another parent than it names".into()));
            }
        }
        Ok(KcGroup {
            id: gid,
            name,
            path,
            parent_id: parent.map(str::to_owned),
            sub_group_count: self.sub_group_count.unwrap_or(0),
        })
    }
}

/// An entry of which only the id is used.
#[derive(Deserialize)]
struct RawId {
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAdminEvent {
    id: Option<String>,
    time: Option<i64>,
    operation_type: Option<String>,
    resource_type: Option<String>,
    resource_path: Option<String>,
}

#[derive(Deserialize)]
struct RawUserEvent {
    id: Option<String>,
    time: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

struct CachedToken {
    value: String,
    renew_at: Instant,
}

/// A client of one realm's admin API.
pub struct Keycloak {
    http: Client,
    config: KeycloakConfig,
    bounds: Bounds,
    token: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for Keycloak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keycloak")
            .field("config", &self.config)
            .finish()
    }
}

/// One page of a list: the entries taken and the ones refused.
type Page<T> = (Vec<T>, Vec<Invalid>);

impl Keycloak {
    pub fn new(config: KeycloakConfig, bounds: Bounds, limits: Limits) -> Result<Keycloak> {
        Ok(Keycloak {
            http: Client::new(limits)?,
            config,
            bounds,
            token: Mutex::new(None),
        })
    }

    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    pub fn config(&self) -> &KeycloakConfig {
        &self.config
    }

    /// `{base}/{segments...}` with each segment escaped.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.config.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    fn admin_url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut all = vec!["admin", "realms", self.config.realm.as_str()];
        all.extend_from_slice(segments);
        self.url(&all, query)
    }

    /// Sends a request asking for JSON; answers other than 2xx and `accept`
    /// are errors.
    async fn send(
        &self,
        req: RequestBuilder,
        accept: &[u16],
    ) -> std::result::Result<Response, HttpError> {
        let req = req.header(outbound::header::ACCEPT, "application/json");
        self.http.send_expecting(req, accept).await
    }

    /// GET as JSON with a bearer token; `Ok(None)` on 404.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        bearer: &str,
    ) -> std::result::Result<Option<T>, HttpError> {
        let req = self.http.request(Method::GET, url).bearer_auth(bearer);
        let resp = self.send(req, &[404]).await?;
        if resp.status == outbound::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        resp.decode().map(Some)
    }

    /// A valid access token, from the cache or fetched.
    async fn token(&self) -> Result<String> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.renew_at > Instant::now()) {
            return Ok(t.value.clone());
        }
        let url = self.url(
            &[
                "realms",
                self.config.realm.as_str(),
                "protocol",
                "openid-connect",
                "token",
            ],
            &[],
        );
        let req = self.http.request(Method::POST, url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
        ]);
        let started = Instant::now();
        let answer: TokenAnswer = self
            .send(req, &[])
            .await
            .map_err(|e| match e {
                HttpError::Status { status, excerpt } if status == 400 || status == 401 => {
                    KeycloakError::Auth(format!("token request answered {status}: {excerpt}"))
                }
                other => KeycloakError::Http(other),
            })?
            .decode()?;
        if answer.access_token.is_empty() || answer.access_token.len() > 64 << 10 {
            return Err(
                HttpError::Decode("the token answer has no usable access_token".into()).into(),
            );
        }
        // Renewed 30 s (or a third of its life, when shorter) before it expires.
        let life = Duration::from_secs(answer.expires_in.unwrap_or(60).clamp(1, 86_400));
        let margin = Duration::from_secs(30).min(life / 3);
        *cached = Some(CachedToken {
            value: answer.access_token.clone(),
            renew_at: started + life - margin,
        });
        Ok(answer.access_token)
    }

    /// GET under the realm's admin API as JSON (`None` on 404); on a 401 the
    /// token is fetched again once.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Option<T>> {
        let url = self.admin_url(segments, query);
        for attempt in 0..2 {
            let token = self.token().await?;
            match self.get_json(url.clone(), &token).await {
                Err(HttpError::Status { status: 401, .. }) if attempt == 0 => {
                    *self.token.lock().await = None;
                }
                Err(HttpError::Status {
                    status: 403,
                    excerpt,
                }) => {
                    return Err(KeycloakError::Auth(format!(
                        "403 on {}: the service account lacks a role ({excerpt})",
                        segments.first().copied().unwrap_or("")
                    )))
                }
                other => return Ok(other?),
            }
        }
        Err(KeycloakError::Auth("401 with a fresh token".into()))
    }

    /// Reads every page of a list, up to `limit` entries.
    async fn pages<R, T>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        limit: usize,
        what: &str,
        mut check: impl FnMut(R) -> std::result::Result<T, Invalid>,
    ) -> Result<Page<T>>
    where
        R: serde::de::DeserializeOwned,
    {
        let page = self.bounds.page.max(1);
        let mut out = Vec::new();
        let mut invalid = Vec::new();
        let mut first = 0usize;
        loop {
            let mut q = query.to_vec();
            q.push(("first", first.to_string()));
            q.push(("max", page.to_string()));
            let items: Vec<R> = self
                .get(segments, &q)
                .await?
                .ok_or_else(|| HttpError::Status {
                    status: 404,
                    excerpt: format!("{} not found", segments.join("/")),
                })?;
            let n = items.len();
            if n > page {
                return Err(
                    HttpError::Decode(format!("a page of {n} {what} for max={page}")).into(),
                );
            }
            for item in items {
                match check(item) {
                    Ok(v) => out.push(v),
                    Err(e) => invalid.push(e),
                }
            }
            if out.len() + invalid.len() > limit {
                return Err(KeycloakError::Bound(format!("more than {limit} {what}")));
            }
            if n < page {
                return Ok((out, invalid));
            }
            first += n;
        }
    }

    /// Every user of the realm (service accounts are not listed by Keycloak).
    pub async fn users(&self) -> Result<Page<KcUser>> {
        let q = [("briefRepresentation", "true".to_owned())];
        self.pages(
            &["users"],
            &q,
            self.bounds.max_users,
            "users",
            RawUser::check,
        )
        .await
    }

    /// One user; `Ok(None)` when Keycloak has no such user.
    pub async fn user(&self, id: &str) -> Result<Option<std::result::Result<KcUser, Invalid>>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let raw: Option<RawUser> = self.get(&["users", id], &[]).await?;
        Ok(raw.map(|r| r.check().and_then(|u| same_id(u, id))))
    }

    /// The ids of the groups a user is a direct member of; `Ok(None)` when the
    /// user is gone.
    pub async fn user_groups(&self, id: &str) -> Result<Option<Vec<String>>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let max = self.bounds.max_user_groups;
        self.ids(&["users", id, "groups"], max, "groups of a user")
            .await
    }

    /// The ids listed at `segments` (briefly), `Ok(None)` on 404.
    async fn ids(
        &self,
        segments: &[&str],
        limit: usize,
        what: &str,
    ) -> Result<Option<Vec<String>>> {
        let q = [("briefRepresentation", "true".to_owned())];
        let listed = self
            .pages(segments, &q, limit, what, |r: RawId| {
                r.id.filter(|i| valid_id(i)).ok_or(Invalid {
                    id: None,
                    reason: "an entry without a valid id".into(),
                })
            })
            .await;
        match listed {
            Ok((ids, _)) => Ok(Some(ids)),
            Err(KeycloakError::Http(HttpError::Status { status: 404, .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The whole group tree, parents before children.
    pub async fn groups(&self) -> Result<Page<KcGroup>> {
        let q = [("briefRepresentation", "true".to_owned())];
        let max = self.bounds.max_groups;
        let (mut all, mut invalid) = self
            .pages(&["groups"], &q, max, "groups", |g: RawGroup| g.check(None))
            .await?;
        let mut level_start = 0;
        for depth in 0.. {
            let level_end = all.len();
            let parents: Vec<(String, u64)> = all[level_start..level_end]
                .iter()
                .filter(|g| g.sub_group_count > 0)
                .map(|g| (g.id.clone(), g.sub_group_count))
                .collect();
            if parents.is_empty() {
                break;
            }
            if depth >= self.bounds.max_depth {
                return Err(KeycloakError::Bound(format!(
                    "subgroups deeper than {} levels",
                    self.bounds.max_depth
                )));
            }
            for (parent, _) in parents {
                let room = max.saturating_sub(all.len() + invalid.len());
                let (children, bad) = self
                    .pages(
                        &["groups", &parent, "children"],
                        &q,
                        room,
                        "groups",
                        |g: RawGroup| g.check(Some(&parent)),
                    )
                    .await
                    .map_err(|e| match e {
                        KeycloakError::Bound(_) => {
                            KeycloakError::Bound(format!("more than {max} groups"))
                        }
                        other => other,
                    })?;
                all.extend(children);
                invalid.extend(bad);
            }
            level_start = level_end;
        }
        Ok((all, invalid))
    }

    /// One group; `Ok(None)` when it is gone.
    pub async fn group_exists(&self, id: &str) -> Result<bool> {
        if !valid_id(id) {
            return Ok(false);
        }
        let raw: Option<serde_json::Value> = self.get(&["groups", id], &[]).await?;
        Ok(raw.is_some())
    }

    /// The ids of a group's direct members; `Ok(None)` when the group is gone.
    pub async fn members(&self, group_id: &str) -> Result<Option<Vec<String>>> {
        if !valid_id(group_id) {
            return Ok(None);
        }
        self.ids(
            &["groups", group_id, "members"],
            self.bounds.max_users,
            "members",
        )
        .await
    }

    /// Admin events about users, groups and memberships from `since` (ms,
    /// inclusive), oldest first, up to [`Bounds::max_events`] (`Err(Bound)`
    /// beyond).
    pub async fn admin_events(&self, since: i64) -> Result<Vec<AdminEvent>> {
        let mut q = vec![
            ("dateFrom", since.to_string()),
            ("direction", "asc".to_owned()),
        ];
        q.extend(
            ADMIN_RESOURCE_TYPES
                .iter()
                .map(|t| ("resourceTypes", (*t).to_owned())),
        );
        let (events, _) = self
            .pages(
                &["admin-events"],
                &q,
                self.bounds.max_events,
                "admin events",
                |e: RawAdminEvent| {
                    let bad = |reason: &str| Invalid {
                        id: e.id.clone(),
                        reason: reason.into(),
                    };
                    Ok(AdminEvent {
                        time: e.time.ok_or_else(|| bad("no time"))?,
                        operation: e.operation_type.clone().unwrap_or_default(),
                        resource_type: e.resource_type.clone().unwrap_or_default(),
                        resource_path: e
                            .resource_path
                            .clone()
                            .filter(|p| p.len() <= MAX_PATH)
                            .unwrap_or_default(),
                        id: e.id.filter(|i| valid_id(i)),
                    })
                },
            )
            .await?;
        Ok(events)
    }

    /// User events that change a directory entry, from `since` (ms, inclusive),
    /// oldest first, bounded like [`Keycloak::admin_events`].
    pub async fn user_events(&self, since: i64) -> Result<Vec<UserEvent>> {
        let mut q = vec![
            ("dateFrom", since.to_string()),
            ("direction", "asc".to_owned()),
        ];
        q.extend(USER_EVENT_TYPES.iter().map(|t| ("type", (*t).to_owned())));
        let (events, _) = self
            .pages(
                &["events"],
                &q,
                self.bounds.max_events,
                "user events",
                |e: RawUserEvent| {
                    Ok(UserEvent {
                        time: e.time.ok_or(Invalid {
                            id: e.id.clone(),
                            reason: "no time".into(),
                        })?,
                        kind: e.kind.unwrap_or_default(),
                        user_id: e.user_id.filter(|i| valid_id(i)),
                        id: e.id.filter(|i| valid_id(i)),
                    })
                },
            )
            .await?;
        Ok(events)
    }
}

fn same_id(u: KcUser, asked: &str) -> std::result::Result<KcUser, Invalid> {
    if u.id == asked {
        Ok(u)
    } else {
        Err(Invalid {
            id: Some(asked.to_owned()),
            reason: "answered for another id".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_checked_field_by_field() {
        let ok: RawUser = serde_json::from_value(serde_json::json!({
            "id": "5fe06c44-2bcb-4d0e-9984-9da59ddf8fa9", "username": "bob",
            "firstName": "Bob", "lastName": " ", "email": "bob@acme.test", "enabled": true,
            "attributes": {"anything": ["ignored"]}
        }))
        .unwrap();
        let u = ok.check().unwrap();
        assert_eq!(u.last_name, None, "blank is absent");
        assert!(u.enabled);
        for (body, why) in [
            (
                serde_json::json!({"id": "../../x", "username": "a"}),
                "no valid id",
            ),
            (serde_json::json!({"id": "a1"}), "no username"),
            (
                serde_json::json!({"id": "a1", "username": "x".repeat(256)}),
                "username longer than 255 characters",
            ),
            (
                serde_json::json!({"id": "a1", "username": "a\u{0}b"}),
                "username has control characters",
            ),
            (
                serde_json::json!({"id": "a1", "username": "a", "email": "nope"}),
                "email without @",
            ),
        ] {
            let raw: RawUser = serde_json::from_value(body).unwrap();
            assert_eq!(raw.check().unwrap_err().reason, why);
        }
    }

    #[test]
    fn a_group_must_sit_under_the_parent_it_was_listed_under() {
        let raw: RawGroup = serde_json::from_value(serde_json::json!({
            "id": "g2", "name": "teachers", "path": "/staff/teachers", "parentId": "other"
        }))
        .unwrap();
        assert!(raw.check(Some("g1")).is_err());
        let raw: RawGroup = serde_json::from_value(serde_json::json!({
            "id": "g2", "name": "teachers", "path": "/staff/teachers", "parentId": "g1"
        }))
        .unwrap();
        assert_eq!(
            raw.check(Some("g1")).unwrap().parent_id.as_deref(),
            Some("g1")
        );
    }

    #[test]
    fn ids_are_short_tokens() {
        assert!(valid_id("5fe06c44-2bcb-4d0e-9984-9da59ddf8fa9"));
        for bad in ["", "a/b", "a b", "é", &"a".repeat(65), "a\"b"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
