//! A fake Rocket.Chat REST API, written from the official documentation, not from
//! Rocket.Chat's code:
//!
//! - Rocket.Chat developer docs, REST API: "Create User" (`/api/v1/users.create`),
//!   "Update User", "Set User Active Status", "Delete User", "Get Users List",
//!   "Get User's Info", "Create Private Group", "Invite Users to Group", "Kick
//!   User from Group", "Rename Group", "Delete Group", "Get Group Members", "Get
//!   List of All Groups", "Create Team", "Add Members to Team", "Remove Team
//!   Member", "Get Team Members", "List All Teams", "Team Info", "Update Team",
//!   "Delete Team" (<https://developer.rocket.chat/apidocs>);
//! - "Personal Access Tokens" and the authentication headers `X-User-Id` /
//!   `X-Auth-Token`.
//!
//! Reproduced behaviours:
//! - authentication by `X-User-Id` and `X-Auth-Token`: otherwise HTTP 401 with
//!   `{"status": "error", "message": "You must be logged in to do this."}`;
//! - successes `{"success": true, ...}` and failures HTTP 400
//!   `{"success": false, "error": "... [type]", "errorType": "type"}`;
//! - users: create (required `email`, `name`, `password`, `username`; usernames
//!   `[0-9a-zA-Z-_.]+`; usernames and e-mails unique case-insensitively →
//!   `error-field-unavailable`; `customFields` kept as sent), update by `userId`
//!   with `data`, `setActiveStatus`, `delete` (`confirmRelinquish`), `info` by
//!   `userId` or `username` ("User not found."), `list` paged by `count`/`offset`
//!   with `total`; a `rocket.cat` bot and the calling admin exist from the start;
//!   `lastLogin` (an ISO 8601 date in UTC with milliseconds, e.g.
//!   `2016-12-08T00:22:15.167Z`, absent until the first login) in `users.list`
//!   and `users.info`, set by tests with [`FakeApp::set_last_login`];
//! - private groups: create (the caller becomes a member; names
//!   `[0-9a-zA-Z-_.]+`, unique → `error-duplicate-channel-name`), info, rename,
//!   invite, kick (`error-user-not-in-room`), delete, members and listAll (which
//!   include teams' main rooms, as in Rocket.Chat), `error-room-not-found`;
//! - teams: create (`type` 1 = private; a main room is created; the caller is a
//!   member), info, update (`data.name`), addMembers, removeMember, members,
//!   listAll, delete.
//!
//! Not reproduced: roles and permissions (the caller may do everything), rate
//! limits, the `Accounts_CustomFields` setting (custom fields are always kept),
//! two-factor challenges, e-mails, the `query`/`sort`/`fields` parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

use super::{param, params, random_id, FakeApp, Shared};

/// A Rocket.Chat account in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcUser {
    pub id: String,
    pub username: String,
    pub name: String,
    pub email: String,
    pub verified: bool,
    pub active: bool,
    /// `"user"` or `"bot"`.
    pub kind: String,
    pub roles: Vec<String>,
    pub custom_fields: Map<String, Value>,
    /// The last login, in milliseconds since the epoch; `None` = never.
    pub last_login: Option<i64>,
}

impl RcUser {
    pub fn new(id: &str, username: &str, email: &str) -> RcUser {
        RcUser {
            id: id.to_string(),
            username: username.to_string(),
            name: username.to_string(),
            email: email.to_string(),
            verified: false,
            active: true,
            kind: "user".to_string(),
            roles: vec!["user".to_string()],
            custom_fields: Map::new(),
            last_login: None,
        }
    }
}

/// A private group (`t: "p"`), possibly the main room of a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcRoom {
    pub id: String,
    pub name: String,
    /// The id of the user who created the room.
    pub creator: String,
    /// User ids.
    pub members: BTreeSet<String>,
    pub custom_fields: Map<String, Value>,
    pub team_id: Option<String>,
    pub team_main: bool,
}

/// A team; its members are those of its main room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcTeam {
    pub id: String,
    pub name: String,
    pub room_id: String,
    pub creator: String,
    /// 0 public, 1 private.
    pub kind: u8,
}

/// The fake's data, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RocketChatState {
    pub users: BTreeMap<String, RcUser>,
    pub rooms: BTreeMap<String, RcRoom>,
    pub teams: BTreeMap<String, RcTeam>,
}

impl FakeApp<RocketChatState> {
    /// Records a login of the user with id `user_id` at `ms` milliseconds since
    /// the epoch. Panics when the user does not exist.
    pub fn set_last_login(&self, user_id: &str, ms: i64) {
        self.with_state(|s| {
            s.users
                .get_mut(user_id)
                .unwrap_or_else(|| panic!("no Rocket.Chat user {user_id:?} in the fake"))
                .last_login = Some(ms);
        });
    }
}

impl RocketChatState {
    pub fn user_by_username(&self, username: &str) -> Option<&RcUser> {
        self.users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    pub fn room_by_name(&self, name: &str) -> Option<&RcRoom> {
        self.rooms.values().find(|r| r.name == name)
    }

    pub fn team_by_name(&self, name: &str) -> Option<&RcTeam> {
        self.teams.values().find(|t| t.name == name)
    }

    /// The user ids of a team's members.
    pub fn team_members(&self, team_id: &str) -> BTreeSet<String> {
        self.teams
            .get(team_id)
            .and_then(|t| self.rooms.get(&t.room_id))
            .map(|r| r.members.clone())
            .unwrap_or_default()
    }

    fn name_taken(&self, name: &str, except_room: Option<&str>) -> bool {
        self.rooms
            .values()
            .any(|r| r.name.eq_ignore_ascii_case(name) && Some(r.id.as_str()) != except_room)
    }
}

struct Ctx {
    shared: Arc<Shared<RocketChatState>>,
    user_id: String,
    token: String,
}

/// Starts a fake Rocket.Chat where the admin `user_id` (username `liaison`)
/// authenticates with the personal access token `token`.
pub async fn spawn_rocketchat(
    user_id: &str,
    token: &str,
) -> std::io::Result<FakeApp<RocketChatState>> {
    let mut state = RocketChatState::default();
    let mut admin = RcUser::new(user_id, "liaison", "liaison@localhost");
    admin.roles = vec!["admin".to_string(), "user".to_string()];
    admin.verified = true;
    state.users.insert(user_id.to_string(), admin);
    let mut bot = RcUser::new("rocket.cat", "rocket.cat", "rocket.cat@rocket.chat");
    bot.kind = "bot".to_string();
    bot.roles = vec!["bot".to_string()];
    bot.name = "Rocket.Cat".to_string();
    state.users.insert(bot.id.clone(), bot);
    let shared = FakeApp::new_shared(state);
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        user_id: user_id.to_string(),
        token: token.to_string(),
    });
    let app = Router::new().fallback(handle).with_state(ctx);
    FakeApp::start(shared, app).await
}

/// A failure: `errorType` and a message.
struct Failure {
    kind: Option<&'static str>,
    message: String,
}

type Outcome = Result<Value, Failure>;

fn failure(kind: &'static str, message: &str) -> Outcome {
    Err(Failure {
        kind: Some(kind),
        message: format!("{message} [{kind}]"),
    })
}

fn plain_failure(message: &str) -> Outcome {
    Err(Failure {
        kind: None,
        message: message.to_string(),
    })
}

fn invalid_params(what: &str) -> Outcome {
    failure(
        "invalid-params",
        &format!("must have required property '{what}'"),
    )
}

async fn handle(
    State(ctx): State<Arc<Ctx>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(endpoint) = uri.path().strip_prefix("/api/v1/") else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let header_is = |name: &str, expected: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected)
    };
    if !header_is("x-user-id", &ctx.user_id) || !header_is("x-auth-token", &ctx.token) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({
                "status": "error",
                "message": "You must be logged in to do this."
            })),
        )
            .into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let body: Map<String, Value> =
        if content_type.is_some_and(|c| c.starts_with("application/json")) {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => map,
                _ if body.is_empty() => Map::new(),
                _ => {
                    return respond(failure("error-invalid-body", "Invalid JSON body"));
                }
            }
        } else {
            params(None, content_type, &body)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect()
        };
    let query = params(uri.query(), None, &[]);
    let outcome = ctx.shared.with(|state| {
        route(
            state,
            &ctx.user_id,
            method.as_str(),
            endpoint,
            &query,
            &body,
        )
    });
    match outcome {
        Some(outcome) => respond(outcome),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "status": "error", "message": "API endpoint not found" })),
        )
            .into_response(),
    }
}

fn respond(outcome: Outcome) -> Response {
    match outcome {
        Ok(Value::Object(mut map)) => {
            map.insert("success".to_string(), Value::Bool(true));
            (StatusCode::OK, axum::Json(Value::Object(map))).into_response()
        }
        Ok(_) => (StatusCode::OK, axum::Json(json!({ "success": true }))).into_response(),
        Err(f) => {
            let mut body = json!({ "success": false, "error": f.message });
            if let (Some(kind), Some(map)) = (f.kind, body.as_object_mut()) {
                map.insert("errorType".to_string(), Value::String(kind.to_string()));
            }
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
        }
    }
}

fn s<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

fn b(body: &Map<String, Value>, key: &str) -> Option<bool> {
    match body.get(key) {
        Some(Value::Bool(v)) => Some(*v),
        Some(Value::String(v)) => v.parse().ok(),
        _ => None,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn valid_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && d.contains('.') && !email.contains(char::is_whitespace)
    })
}

/// Dispatches one request; `None` when no endpoint matches.
fn route(
    st: &mut RocketChatState,
    caller: &str,
    method: &str,
    endpoint: &str,
    q: &[(String, String)],
    body: &Map<String, Value>,
) -> Option<Outcome> {
    Some(match (method, endpoint) {
        ("POST", "users.create") => users_create(st, body),
        ("POST", "users.update") => users_update(st, body),
        ("POST", "users.setActiveStatus") => {
            let Some(id) = s(body, "userId") else {
                return Some(invalid_params("userId"));
            };
            let Some(active) = b(body, "activeStatus") else {
                return Some(invalid_params("activeStatus"));
            };
            match st.users.get_mut(id) {
                Some(u) => {
                    u.active = active;
                    Ok(json!({ "user": { "_id": u.id, "active": u.active } }))
                }
                None => failure("error-invalid-user", "Invalid user"),
            }
        }
        ("POST", "users.delete") => {
            let Some(id) = s(body, "userId") else {
                return Some(invalid_params("userId"));
            };
            if id == caller {
                return Some(failure("error-not-allowed", "Not allowed"));
            }
            if st.users.remove(id).is_none() {
                return Some(failure("error-invalid-user", "Invalid user"));
            }
            for r in st.rooms.values_mut() {
                r.members.remove(id);
            }
            Ok(json!({}))
        }
        ("GET", "users.info") => {
            let user = if let Some(id) = param(q, "userId") {
                st.users.get(id)
            } else if let Some(name) = param(q, "username") {
                st.user_by_username(name)
            } else {
                return Some(failure(
                    "invalid-params",
                    "must have required property 'userId' or 'username'",
                ));
            };
            match user {
                Some(u) => Ok(json!({ "user": user_json(u) })),
                None => plain_failure("User not found."),
            }
        }
        ("GET", "users.list") => {
            let all: Vec<Value> = st.users.values().map(user_json).collect();
            paged(q, "users", all)
        }
        ("POST", "groups.create") => {
            let Some(name) = s(body, "name") else {
                return Some(invalid_params("name"));
            };
            if !valid_name(name) {
                return Some(failure(
                    "error-invalid-room-name",
                    &format!("{name} is not a valid room name"),
                ));
            }
            if st.name_taken(name, None) {
                return Some(failure(
                    "error-duplicate-channel-name",
                    &format!("A channel with name '{name}' exists"),
                ));
            }
            let mut members: BTreeSet<String> = BTreeSet::from([caller.to_string()]);
            if let Some(Value::Array(names)) = body.get("members") {
                for n in names.iter().filter_map(Value::as_str) {
                    if let Some(u) = st.user_by_username(n) {
                        members.insert(u.id.clone());
                    }
                }
            }
            let room = RcRoom {
                id: random_id(17),
                name: name.to_string(),
                creator: caller.to_string(),
                members,
                custom_fields: body
                    .get("customFields")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                team_id: None,
                team_main: false,
            };
            let out = json!({ "group": room_json(st, &room) });
            st.rooms.insert(room.id.clone(), room);
            Ok(out)
        }
        ("GET", "groups.info") => match find_room(st, q) {
            Ok(id) => Ok(json!({ "group": room_json(st, &st.rooms[&id]) })),
            Err(e) => Err(e),
        },
        ("POST", "groups.rename") => {
            let id = match room_from_body(st, body) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            let Some(name) = s(body, "name") else {
                return Some(invalid_params("name"));
            };
            if !valid_name(name) {
                return Some(failure(
                    "error-invalid-room-name",
                    &format!("{name} is not a valid room name"),
                ));
            }
            if st.name_taken(name, Some(&id)) {
                return Some(failure(
                    "error-duplicate-channel-name",
                    &format!("A channel with name '{name}' exists"),
                ));
            }
            let team_id = st.rooms.get(&id).and_then(|r| r.team_id.clone());
            if let Some(room) = st.rooms.get_mut(&id) {
                room.name = name.to_string();
                if room.team_main {
                    if let Some(team) = team_id.and_then(|t| st.teams.get_mut(&t)) {
                        team.name = name.to_string();
                    }
                }
            }
            Ok(json!({ "group": room_json(st, &st.rooms[&id]) }))
        }
        ("POST", "groups.invite" | "groups.kick") => {
            let id = match room_from_body(st, body) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            let Some(user) = s(body, "userId") else {
                return Some(invalid_params("userId"));
            };
            if !st.users.contains_key(user) {
                return Some(failure("error-invalid-user", "Invalid user"));
            }
            let Some(room) = st.rooms.get_mut(&id) else {
                return Some(room_not_found());
            };
            if endpoint == "groups.invite" {
                room.members.insert(user.to_string());
            } else if !room.members.remove(user) {
                return Some(failure(
                    "error-user-not-in-room",
                    "User is not in this room",
                ));
            }
            Ok(json!({ "group": room_json(st, &st.rooms[&id]) }))
        }
        ("POST", "groups.delete") => {
            let id = match room_from_body(st, body) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            if st.rooms.get(&id).is_some_and(|r| r.team_main) {
                return Some(failure(
                    "error-cannot-delete-team-channel",
                    "Cannot delete a team main room",
                ));
            }
            st.rooms.remove(&id);
            Ok(json!({}))
        }
        ("GET", "groups.members") => {
            let id = match find_room(st, q) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            let members: Vec<Value> = st.rooms[&id]
                .members
                .iter()
                .filter_map(|m| st.users.get(m))
                .map(|u| json!({ "_id": u.id, "username": u.username, "name": u.name, "status": "offline" }))
                .collect();
            paged(q, "members", members)
        }
        ("GET", "groups.listAll") => {
            let all: Vec<Value> = st.rooms.values().map(|r| room_json(st, r)).collect();
            paged(q, "groups", all)
        }
        ("POST", "teams.create") => {
            let Some(name) = s(body, "name") else {
                return Some(invalid_params("name"));
            };
            let kind = body.get("type").and_then(Value::as_u64).unwrap_or(0);
            if !valid_name(name) {
                return Some(failure(
                    "error-invalid-room-name",
                    &format!("{name} is not a valid room name"),
                ));
            }
            if st.name_taken(name, None) {
                return Some(plain_failure("team-name-already-exists"));
            }
            let mut members = BTreeSet::from([caller.to_string()]);
            if let Some(Value::Array(ids)) = body.get("members") {
                for id in ids.iter().filter_map(Value::as_str) {
                    if st.users.contains_key(id) {
                        members.insert(id.to_string());
                    }
                }
            }
            let team_id = random_id(17);
            let room = RcRoom {
                id: random_id(17),
                name: name.to_string(),
                creator: caller.to_string(),
                members,
                custom_fields: Map::new(),
                team_id: Some(team_id.clone()),
                team_main: true,
            };
            let team = RcTeam {
                id: team_id.clone(),
                name: name.to_string(),
                room_id: room.id.clone(),
                creator: caller.to_string(),
                kind: if kind == 1 { 1 } else { 0 },
            };
            st.rooms.insert(room.id.clone(), room);
            let out = json!({ "team": team_json(st, &team) });
            st.teams.insert(team_id, team);
            Ok(out)
        }
        ("GET", "teams.info") => match find_team(st, param(q, "teamId"), param(q, "teamName")) {
            Ok(id) => Ok(json!({ "teamInfo": team_json(st, &st.teams[&id]) })),
            Err(e) => Err(e),
        },
        ("POST", "teams.update") => {
            let id = match find_team(st, s(body, "teamId"), None) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            let data = body.get("data").and_then(Value::as_object);
            if let Some(name) = data.and_then(|d| s(d, "name")) {
                let room_id = st.teams[&id].room_id.clone();
                if !valid_name(name) {
                    return Some(failure(
                        "error-invalid-room-name",
                        &format!("{name} is not a valid room name"),
                    ));
                }
                if st.name_taken(name, Some(&room_id)) {
                    return Some(plain_failure("team-name-already-exists"));
                }
                if let Some(t) = st.teams.get_mut(&id) {
                    t.name = name.to_string();
                }
                if let Some(r) = st.rooms.get_mut(&room_id) {
                    r.name = name.to_string();
                }
            }
            if let Some(kind) = data.and_then(|d| d.get("type")).and_then(Value::as_u64) {
                if let Some(t) = st.teams.get_mut(&id) {
                    t.kind = if kind == 1 { 1 } else { 0 };
                }
            }
            Ok(json!({}))
        }
        ("POST", "teams.addMembers") => {
            let id = match find_team(st, s(body, "teamId"), s(body, "teamName")) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            let Some(Value::Array(members)) = body.get("members") else {
                return Some(invalid_params("members"));
            };
            let ids: Vec<String> = members
                .iter()
                .filter_map(|m| m.get("userId").and_then(Value::as_str))
                .map(str::to_string)
                .collect();
            if let Some(unknown) = ids.iter().find(|u| !st.users.contains_key(*u)) {
                return Some(failure(
                    "error-invalid-user",
                    &format!("Invalid user {unknown}"),
                ));
            }
            let room_id = st.teams[&id].room_id.clone();
            if let Some(room) = st.rooms.get_mut(&room_id) {
                room.members.extend(ids);
            }
            Ok(json!({}))
        }
        ("POST", "teams.removeMember") => {
            let id = match find_team(st, s(body, "teamId"), s(body, "teamName")) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            let Some(user) = s(body, "userId") else {
                return Some(invalid_params("userId"));
            };
            if !st.users.contains_key(user) {
                return Some(plain_failure("invalid-user"));
            }
            let room_id = st.teams[&id].room_id.clone();
            let removed = st
                .rooms
                .get_mut(&room_id)
                .is_some_and(|room| room.members.remove(user));
            if removed {
                Ok(json!({}))
            } else {
                plain_failure("member-does-not-exist")
            }
        }
        ("POST", "teams.delete") => {
            let id = match find_team(st, s(body, "teamId"), s(body, "teamName")) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            if let Some(team) = st.teams.remove(&id) {
                st.rooms.remove(&team.room_id);
                for r in st.rooms.values_mut() {
                    if r.team_id.as_deref() == Some(id.as_str()) {
                        r.team_id = None;
                    }
                }
            }
            Ok(json!({}))
        }
        ("GET", "teams.members") => {
            let id = match find_team(st, param(q, "teamId"), param(q, "teamName")) {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            let members: Vec<Value> = st
                .team_members(&id)
                .iter()
                .filter_map(|m| st.users.get(m))
                .map(|u| {
                    json!({
                        "user": { "_id": u.id, "username": u.username, "name": u.name, "status": "offline" },
                        "roles": if st.teams[&id].creator == u.id { json!(["owner"]) } else { json!(["member"]) },
                    })
                })
                .collect();
            paged(q, "members", members)
        }
        ("GET", "teams.listAll") => {
            let all: Vec<Value> = st.teams.values().map(|t| team_json(st, t)).collect();
            paged(q, "teams", all)
        }
        _ => return None,
    })
}

fn users_create(st: &mut RocketChatState, body: &Map<String, Value>) -> Outcome {
    for key in ["email", "name", "password", "username"] {
        if s(body, key).is_none_or(str::is_empty) {
            return invalid_params(key);
        }
    }
    let (Some(email), Some(name), Some(username)) =
        (s(body, "email"), s(body, "name"), s(body, "username"))
    else {
        return invalid_params("username");
    };
    if !valid_name(username) {
        return failure(
            "error-input-is-not-a-valid-field",
            &format!("{username} is not a valid username"),
        );
    }
    if !valid_email(email) {
        return failure("error-invalid-email", &format!("Invalid email {email}"));
    }
    if st.user_by_username(username).is_some() {
        return failure(
            "error-field-unavailable",
            &format!("<strong>{username}</strong> is already in use :("),
        );
    }
    if st
        .users
        .values()
        .any(|u| u.email.eq_ignore_ascii_case(email))
    {
        return failure(
            "error-field-unavailable",
            &format!("<strong>{email}</strong> is already in use :("),
        );
    }
    let mut user = RcUser::new(&random_id(17), username, email);
    user.name = name.to_string();
    user.verified = b(body, "verified").unwrap_or(false);
    user.active = b(body, "active").unwrap_or(true);
    if let Some(fields) = body.get("customFields").and_then(Value::as_object) {
        user.custom_fields = fields.clone();
    }
    let out = json!({ "user": user_json(&user) });
    st.users.insert(user.id.clone(), user);
    Ok(out)
}

fn users_update(st: &mut RocketChatState, body: &Map<String, Value>) -> Outcome {
    let Some(id) = s(body, "userId") else {
        return invalid_params("userId");
    };
    let Some(data) = body.get("data").and_then(Value::as_object) else {
        return invalid_params("data");
    };
    if !st.users.contains_key(id) {
        return failure("error-invalid-user", "Invalid user");
    }
    if let Some(username) = s(data, "username") {
        if !valid_name(username) {
            return failure(
                "error-input-is-not-a-valid-field",
                &format!("{username} is not a valid username"),
            );
        }
        if st
            .users
            .values()
            .any(|u| u.id != id && u.username.eq_ignore_ascii_case(username))
        {
            return failure(
                "error-field-unavailable",
                &format!("<strong>{username}</strong> is already in use :("),
            );
        }
    }
    if let Some(email) = s(data, "email") {
        if !valid_email(email) {
            return failure("error-invalid-email", &format!("Invalid email {email}"));
        }
        if st
            .users
            .values()
            .any(|u| u.id != id && u.email.eq_ignore_ascii_case(email))
        {
            return failure(
                "error-field-unavailable",
                &format!("<strong>{email}</strong> is already in use :("),
            );
        }
    }
    let Some(user) = st.users.get_mut(id) else {
        return failure("error-invalid-user", "Invalid user");
    };
    if let Some(v) = s(data, "username") {
        user.username = v.to_string();
    }
    if let Some(v) = s(data, "email") {
        user.email = v.to_string();
    }
    if let Some(v) = s(data, "name") {
        user.name = v.to_string();
    }
    if let Some(v) = b(data, "verified") {
        user.verified = v;
    }
    if let Some(v) = b(data, "active") {
        user.active = v;
    }
    if let Some(fields) = data.get("customFields").and_then(Value::as_object) {
        for (k, v) in fields {
            user.custom_fields.insert(k.clone(), v.clone());
        }
    }
    Ok(json!({ "user": user_json(user) }))
}

fn room_not_found() -> Outcome {
    failure(
        "error-room-not-found",
        "The required \"roomId\" or \"roomName\" param provided does not match any group",
    )
}

fn find_room(st: &RocketChatState, q: &[(String, String)]) -> Result<String, Failure> {
    let found = if let Some(id) = param(q, "roomId") {
        st.rooms.get(id)
    } else if let Some(name) = param(q, "roomName") {
        st.room_by_name(name)
    } else {
        return invalid_params("roomId").map(|_| String::new());
    };
    match found {
        Some(r) => Ok(r.id.clone()),
        None => room_not_found().map(|_| String::new()),
    }
}

fn room_from_body(st: &RocketChatState, body: &Map<String, Value>) -> Result<String, Failure> {
    let q: Vec<(String, String)> = ["roomId", "roomName"]
        .iter()
        .filter_map(|k| s(body, k).map(|v| (k.to_string(), v.to_string())))
        .collect();
    find_room(st, &q)
}

fn find_team(
    st: &RocketChatState,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<String, Failure> {
    let found = match (id, name) {
        (Some(id), _) => st.teams.get(id),
        (None, Some(name)) => st.team_by_name(name),
        (None, None) => return invalid_params("teamId").map(|_| String::new()),
    };
    match found {
        Some(t) => Ok(t.id.clone()),
        None => plain_failure("team-does-not-exist").map(|_| String::new()),
    }
}

fn paged(q: &[(String, String)], key: &str, all: Vec<Value>) -> Outcome {
    let offset = param(q, "offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let count = param(q, "count")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(50)
        .min(100);
    let total = all.len();
    let page: Vec<Value> = all.into_iter().skip(offset).take(count).collect();
    let mut out = Map::new();
    out.insert("count".to_string(), json!(page.len()));
    out.insert(key.to_string(), Value::Array(page));
    out.insert("offset".to_string(), json!(offset));
    out.insert("total".to_string(), json!(total));
    Ok(Value::Object(out))
}

fn user_json(u: &RcUser) -> Value {
    let mut v = json!({
        "_id": u.id,
        "username": u.username,
        "name": u.name,
        "emails": [{ "address": u.email, "verified": u.verified }],
        "active": u.active,
        "type": u.kind,
        "roles": u.roles,
        "status": "offline",
    });
    if let Some(map) = v.as_object_mut() {
        if !u.custom_fields.is_empty() {
            map.insert(
                "customFields".to_string(),
                Value::Object(u.custom_fields.clone()),
            );
        }
        if let Some(date) = u.last_login.and_then(iso_date) {
            map.insert("lastLogin".to_string(), Value::String(date));
        }
    }
    v
}

/// A JavaScript `Date` as JSON shows it: `2016-12-08T00:22:15.167Z`.
fn iso_date(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .ok()
}

fn room_json(st: &RocketChatState, r: &RcRoom) -> Value {
    let creator = st.users.get(&r.creator);
    let mut v = json!({
        "_id": r.id,
        "name": r.name,
        "fname": r.name,
        "t": "p",
        "usersCount": r.members.len(),
        "u": { "_id": r.creator, "username": creator.map(|u| u.username.as_str()).unwrap_or_default() },
        "ro": false,
    });
    if let Some(map) = v.as_object_mut() {
        if !r.custom_fields.is_empty() {
            map.insert(
                "customFields".to_string(),
                Value::Object(r.custom_fields.clone()),
            );
        }
        if let Some(team) = &r.team_id {
            map.insert("teamId".to_string(), json!(team));
        }
        if r.team_main {
            map.insert("teamMain".to_string(), json!(true));
        }
    }
    v
}

fn team_json(st: &RocketChatState, t: &RcTeam) -> Value {
    let creator = st.users.get(&t.creator);
    json!({
        "_id": t.id,
        "name": t.name,
        "type": t.kind,
        "roomId": t.room_id,
        "createdBy": { "_id": t.creator, "username": creator.map(|u| u.username.as_str()).unwrap_or_default() },
        "numberOfUsers": st.team_members(&t.id).len(),
    })
}
