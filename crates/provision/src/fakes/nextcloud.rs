//! A fake Nextcloud provisioning API, written from the official documentation,
//! not from Nextcloud's code:
//!
//! - Nextcloud admin manual, "User provisioning API"
//!   (<https://docs.nextcloud.com/server/latest/admin_manual/configuration_user/user_provisioning_api.html>),
//!   "Instruction set for users" (`instruction_set_for_users.rst`) and
//!   "Instruction set for groups" (`instruction_set_for_groups.rst`);
//! - Nextcloud developer manual, "OCS API" (the envelope, `OCS-APIRequest`,
//!   `format=json`, and how v2 maps OCS status codes to HTTP statuses).
//!
//! Reproduced behaviours:
//! - both `/ocs/v1.php/cloud/...` and `/ocs/v2.php/cloud/...`; the `ocs.meta`
//!   envelope (`status`, `statuscode`, `message`); v1 answers HTTP 200 with
//!   `statuscode` 100 on success (401 for 997), v2 answers HTTP 200 with
//!   `statuscode` 200 and maps failures: 997 → 401, 998 → 404, 996/999 → 500,
//!   other codes → 400, the OCS code staying in `meta.statuscode`;
//! - JSON with `?format=json` or `Accept: application/json`, XML otherwise;
//! - Basic auth (the admin's app password) and the `OCS-APIRequest: true` header,
//!   both required (997 otherwise);
//! - users: add (`userid`, `password`, `displayName`, `email`, `groups[]`,
//!   `quota`; codes 101 invalid input, 102 exists (case-insensitively), 104 group
//!   missing, 108 neither password nor email), get (998 when unknown), list,
//!   `details` paged by `limit`/`offset` (an empty result is the JSON array `[]`,
//!   as PHP serialises it), edit `key`/`value` (101 unknown user, 102 invalid
//!   input), enable/disable/delete (101 unknown user), group membership
//!   (POST/DELETE `groupid`: 101 no group, 102 group missing, 103 user missing);
//! - groups: add (`groupid`, optional `displayname`; 101 invalid, 102 exists),
//!   list, `details`, members (`/groups/{id}` and `/groups/{id}/users`, 998 when
//!   unknown), edit `displayname`, delete (101 unknown, 102 for `admin`);
//! - `lastLogin` in the user details (`/users/{id}` and `/users/details`):
//!   milliseconds since the epoch, 0 for never; Nextcloud keeps whole seconds,
//!   so it is always a multiple of 1000. Tests set it with
//!   [`FakeApp::set_last_login`];
//! - user ids limited to `a-zA-Z0-9 _.@-'`, 64 characters, no surrounding
//!   whitespace; group ids up to 64 characters.
//!
//! Not reproduced: sub-admins, apps, quotas in bytes (the quota is kept as sent),
//! password policy, welcome e-mails (a user created without password is only
//! marked as such), the `search` parameter beyond a substring match.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

use super::{param, params, FakeApp, Shared};

/// A Nextcloud account in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NcUser {
    pub id: String,
    /// Empty means "defaults to the user id", as in Nextcloud.
    pub display_name: String,
    /// Empty when unset.
    pub email: String,
    pub enabled: bool,
    /// As sent (`"10 GB"`, `"none"`, `"default"`).
    pub quota: String,
    /// Whether a password was given at creation or later.
    pub password_set: bool,
    pub groups: BTreeSet<String>,
    /// The last login, in seconds since the epoch (as Nextcloud stores it); 0 =
    /// never.
    pub last_login: i64,
}

impl NcUser {
    pub fn new(id: &str) -> NcUser {
        NcUser {
            id: id.to_string(),
            display_name: String::new(),
            email: String::new(),
            enabled: true,
            quota: "default".to_string(),
            password_set: true,
            groups: BTreeSet::new(),
            last_login: 0,
        }
    }
}

/// A Nextcloud group in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NcGroup {
    pub id: String,
    pub display_name: String,
}

/// The fake's data: users and groups by id. Memberships live on the users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextcloudState {
    pub users: BTreeMap<String, NcUser>,
    pub groups: BTreeMap<String, NcGroup>,
}

impl NextcloudState {
    /// The ids of the members of a group.
    pub fn members(&self, group_id: &str) -> Vec<String> {
        self.users
            .values()
            .filter(|u| u.groups.contains(group_id))
            .map(|u| u.id.clone())
            .collect()
    }

    fn user_exists_ci(&self, id: &str) -> bool {
        self.users.keys().any(|k| k.eq_ignore_ascii_case(id))
    }
}

impl FakeApp<NextcloudState> {
    /// Records a login of `user_id` at `ms` milliseconds since the epoch, kept
    /// in whole seconds as Nextcloud does. Panics when the user does not exist.
    pub fn set_last_login(&self, user_id: &str, ms: i64) {
        self.with_state(|s| {
            s.users
                .get_mut(user_id)
                .unwrap_or_else(|| panic!("no Nextcloud user {user_id:?} in the fake"))
                .last_login = ms.div_euclid(1000);
        });
    }
}

struct Ctx {
    shared: Arc<Shared<NextcloudState>>,
    /// `user:password`, as the Basic credentials must decode.
    credentials: String,
}

/// Starts a fake Nextcloud whose admin `admin_user` signs in with `app_password`.
/// The admin exists as a user, member of the `admin` group.
pub async fn spawn_nextcloud(
    admin_user: &str,
    app_password: &str,
) -> std::io::Result<FakeApp<NextcloudState>> {
    let mut state = NextcloudState::default();
    let mut admin = NcUser::new(admin_user);
    admin.groups.insert("admin".to_string());
    state.users.insert(admin_user.to_string(), admin);
    state.groups.insert(
        "admin".to_string(),
        NcGroup {
            id: "admin".to_string(),
            display_name: "admin".to_string(),
        },
    );
    let shared = FakeApp::new_shared(state);
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        credentials: format!("{admin_user}:{app_password}"),
    });
    let app = Router::new().fallback(handle).with_state(ctx);
    FakeApp::start(shared, app).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The outcome of an endpoint: success with data, or an OCS failure code.
type Outcome = Result<Value, (u32, String)>;

fn fail<T>(code: u32, msg: &str) -> Result<T, (u32, String)> {
    Err((code, msg.to_string()))
}

async fn handle(
    State(ctx): State<Arc<Ctx>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let (version, rest) = if let Some(rest) = path.strip_prefix("/ocs/v2.php/") {
        (Version::V2, rest)
    } else if let Some(rest) = path.strip_prefix("/ocs/v1.php/") {
        (Version::V1, rest)
    } else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let query_params = params(uri.query(), None, &[]);
    let json = param(&query_params, "format") == Some("json")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));

    let outcome = if !authorised(&ctx.credentials, &headers) {
        Some(fail(997, "Current user is not logged in"))
    } else if headers
        .get("ocs-apirequest")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| !v.eq_ignore_ascii_case("true"))
    {
        Some(fail(997, "CSRF check failed"))
    } else {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let p = params(uri.query(), content_type, &body);
        let mut segments: Vec<String> = rest.split('/').map(percent_decode).collect();
        // User ids are looked up case-insensitively, as by the database backend.
        if segments.len() >= 3 && segments[0] == "cloud" && segments[1] == "users" {
            let canonical = ctx.shared.with(|s| {
                s.users
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(&segments[2]))
                    .cloned()
            });
            if let Some(id) = canonical {
                segments[2] = id;
            }
        }
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        ctx.shared
            .with(|state| route(state, &method, &segs, &p, &ctx.credentials))
    };
    match outcome {
        Some(outcome) => render(version, json, outcome),
        None => render(
            version,
            json,
            fail(998, "Invalid query, please check the syntax."),
        ),
    }
}

fn authorised(credentials: &str, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .is_ok_and(|d| d == credentials.as_bytes())
}

/// Dispatches one request; `None` when no endpoint matches.
fn route(
    s: &mut NextcloudState,
    method: &Method,
    segs: &[&str],
    p: &[(String, String)],
    credentials: &str,
) -> Option<Outcome> {
    let admin = credentials.split(':').next().unwrap_or_default();
    let m = method.as_str();
    Some(match (m, segs) {
        ("GET", ["cloud", "users"]) => {
            let ids: Vec<&String> = page(filtered(s.users.keys(), p), p);
            Ok(json!({ "users": ids }))
        }
        ("POST", ["cloud", "users"]) => add_user(s, p),
        ("GET", ["cloud", "users", "details"]) => {
            let ids: Vec<String> = page(filtered(s.users.keys(), p), p)
                .into_iter()
                .cloned()
                .collect();
            if ids.is_empty() {
                Ok(json!({ "users": [] }))
            } else {
                let mut map = serde_json::Map::new();
                for id in ids {
                    if let Some(u) = s.users.get(&id) {
                        map.insert(id, user_details(u));
                    }
                }
                Ok(json!({ "users": map }))
            }
        }
        ("GET", ["cloud", "users", id]) => match s.users.get(*id) {
            Some(u) => Ok(user_details(u)),
            None => fail(998, "User does not exist"),
        },
        ("PUT", ["cloud", "users", id]) => edit_user(s, id, p),
        ("DELETE", ["cloud", "users", id]) => {
            if *id == admin || s.users.remove(*id).is_none() {
                fail(101, "")
            } else {
                Ok(json!([]))
            }
        }
        ("PUT", ["cloud", "users", id, action @ ("enable" | "disable")]) => {
            match s.users.get_mut(*id) {
                Some(u) if *id != admin => {
                    u.enabled = *action == "enable";
                    Ok(json!([]))
                }
                _ => fail(101, ""),
            }
        }
        ("GET", ["cloud", "users", id, "groups"]) => match s.users.get(*id) {
            Some(u) => Ok(json!({ "groups": u.groups })),
            None => fail(998, "User does not exist"),
        },
        ("POST" | "DELETE", ["cloud", "users", id, "groups"]) => {
            let Some(gid) = param(p, "groupid").filter(|g| !g.is_empty()) else {
                return Some(fail(101, "No group specified"));
            };
            if !s.groups.contains_key(gid) {
                return Some(fail(102, "Group does not exist"));
            }
            let Some(u) = s.users.get_mut(*id) else {
                return Some(fail(103, "User does not exist"));
            };
            if m == "POST" {
                u.groups.insert(gid.to_string());
            } else {
                if *id == admin && gid == "admin" {
                    return Some(fail(105, "Cannot remove yourself from the admin group"));
                }
                u.groups.remove(gid);
            }
            Ok(json!([]))
        }
        ("GET", ["cloud", "groups"]) => {
            let ids: Vec<&String> = page(filtered(s.groups.keys(), p), p);
            Ok(json!({ "groups": ids }))
        }
        ("POST", ["cloud", "groups"]) => {
            let gid = param(p, "groupid").unwrap_or_default();
            if gid.is_empty() || gid.chars().count() > 64 {
                return Some(fail(101, "Invalid group name"));
            }
            if s.groups.contains_key(gid) {
                return Some(fail(102, "group exists"));
            }
            let display = param(p, "displayname")
                .filter(|d| !d.is_empty())
                .unwrap_or(gid);
            s.groups.insert(
                gid.to_string(),
                NcGroup {
                    id: gid.to_string(),
                    display_name: display.to_string(),
                },
            );
            Ok(json!([]))
        }
        ("GET", ["cloud", "groups", "details"]) => {
            let ids: Vec<String> = page(filtered(s.groups.keys(), p), p)
                .into_iter()
                .cloned()
                .collect();
            let groups: Vec<Value> = ids
                .iter()
                .filter_map(|id| s.groups.get(id))
                .map(|g| {
                    json!({
                        "id": g.id,
                        "displayname": g.display_name,
                        "usercount": s.members(&g.id).len(),
                        "disabled": 0,
                        "canAdd": true,
                        "canRemove": true,
                    })
                })
                .collect();
            Ok(json!({ "groups": groups }))
        }
        ("GET", ["cloud", "groups", gid] | ["cloud", "groups", gid, "users"]) => {
            if s.groups.contains_key(*gid) {
                Ok(json!({ "users": s.members(gid) }))
            } else {
                fail(998, "The requested group could not be found")
            }
        }
        ("PUT", ["cloud", "groups", gid]) => match s.groups.get_mut(*gid) {
            None => fail(998, "The requested group could not be found"),
            Some(g) => {
                if param(p, "key") != Some("displayname") {
                    return Some(fail(101, "Not supported by backend"));
                }
                g.display_name = param(p, "value").unwrap_or_default().to_string();
                Ok(json!([]))
            }
        },
        ("DELETE", ["cloud", "groups", gid]) => {
            if *gid == "admin" {
                return Some(fail(102, ""));
            }
            if s.groups.remove(*gid).is_none() {
                return Some(fail(101, ""));
            }
            for u in s.users.values_mut() {
                u.groups.remove(*gid);
            }
            Ok(json!([]))
        }
        _ => return None,
    })
}

fn filtered<'a>(ids: impl Iterator<Item = &'a String>, p: &[(String, String)]) -> Vec<&'a String> {
    let search = param(p, "search").unwrap_or_default().to_lowercase();
    ids.filter(|id| id.to_lowercase().contains(&search))
        .collect()
}

fn page<'a>(ids: Vec<&'a String>, p: &[(String, String)]) -> Vec<&'a String> {
    let offset = param(p, "offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = param(p, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    ids.into_iter().skip(offset).take(limit).collect()
}

fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= 64
        && id.trim() == id
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.@-'".contains(c))
}

fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn add_user(s: &mut NextcloudState, p: &[(String, String)]) -> Outcome {
    let id = param(p, "userid").unwrap_or_default();
    if !valid_user_id(id) {
        return fail(
            101,
            "Only the following characters are allowed in a username: \"a-z\", \"A-Z\", \"0-9\", spaces and \"_.@-'\"",
        );
    }
    if s.user_exists_ci(id) {
        return fail(102, "User already exists");
    }
    let password = param(p, "password").unwrap_or_default();
    let email = param(p, "email").unwrap_or_default();
    if !email.is_empty() && !valid_email(email) {
        return fail(101, "Invalid mail address");
    }
    if password.is_empty() && email.is_empty() {
        return fail(
            108,
            "To send a password link to the user an email address is required.",
        );
    }
    let groups: Vec<&str> = p
        .iter()
        .filter(|(k, _)| k == "groups[]" || k == "groups")
        .map(|(_, v)| v.as_str())
        .collect();
    if let Some(missing) = groups.iter().find(|g| !s.groups.contains_key(**g)) {
        return fail(104, &format!("group {missing} does not exist"));
    }
    let mut user = NcUser::new(id);
    user.password_set = !password.is_empty();
    user.email = email.to_string();
    user.display_name = param(p, "displayName").unwrap_or_default().to_string();
    if let Some(q) = param(p, "quota").filter(|q| !q.is_empty()) {
        user.quota = q.to_string();
    }
    user.groups = groups.into_iter().map(str::to_string).collect();
    s.users.insert(id.to_string(), user);
    Ok(json!({ "id": id }))
}

fn edit_user(s: &mut NextcloudState, id: &str, p: &[(String, String)]) -> Outcome {
    let Some(user) = s.users.get_mut(id) else {
        return fail(101, "User not found");
    };
    let value = param(p, "value").unwrap_or_default();
    match param(p, "key").unwrap_or_default() {
        "email" => {
            if !value.is_empty() && !valid_email(value) {
                return fail(102, "Invalid email");
            }
            user.email = value.to_string();
        }
        "displayname" | "display" => user.display_name = value.to_string(),
        "quota" => {
            if value.is_empty() {
                return fail(102, "Invalid quota value");
            }
            user.quota = value.to_string();
        }
        "password" => {
            if value.is_empty() {
                return fail(102, "Invalid password value");
            }
            user.password_set = true;
        }
        "phone" | "address" | "website" | "twitter" => {}
        _ => return fail(102, "Invalid input data"),
    }
    Ok(json!([]))
}

fn user_details(u: &NcUser) -> Value {
    let display = if u.display_name.is_empty() {
        &u.id
    } else {
        &u.display_name
    };
    json!({
        "enabled": u.enabled,
        "id": u.id,
        "lastLogin": u.last_login * 1000,
        "backend": "Database",
        "subadmin": [],
        "quota": { "quota": u.quota, "used": 0 },
        "email": if u.email.is_empty() { Value::Null } else { Value::String(u.email.clone()) },
        "displayname": display,
        "display-name": display,
        "phone": "",
        "address": "",
        "website": "",
        "twitter": "",
        "groups": u.groups,
        "language": "",
        "locale": "",
    })
}

fn render(version: Version, json: bool, outcome: Outcome) -> Response {
    let (ocs_code, message, data, ok) = match outcome {
        Ok(data) => (
            if version == Version::V1 { 100 } else { 200 },
            "OK".to_string(),
            data,
            true,
        ),
        Err((code, message)) => (code, message, json!([]), false),
    };
    let http = match (version, ok) {
        (_, true) => StatusCode::OK,
        (Version::V1, false) if ocs_code == 997 => StatusCode::UNAUTHORIZED,
        (Version::V1, false) => StatusCode::OK,
        (Version::V2, false) => match ocs_code {
            997 => StatusCode::UNAUTHORIZED,
            998 => StatusCode::NOT_FOUND,
            996 | 999 => StatusCode::INTERNAL_SERVER_ERROR,
            c if !(200..=600).contains(&c) => StatusCode::BAD_REQUEST,
            c => u16::try_from(c)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_REQUEST),
        },
    };
    let meta = json!({
        "status": if ok { "ok" } else { "failure" },
        "statuscode": ocs_code,
        "message": message,
        "totalitems": "",
        "itemsperpage": "",
    });
    if json {
        let body = json!({ "ocs": { "meta": meta, "data": data } });
        (
            http,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response()
    } else {
        let mut xml = String::from("<?xml version=\"1.0\"?>\n<ocs>");
        xml_value(&mut xml, "meta", &meta);
        xml_value(&mut xml, "data", &data);
        xml.push_str("</ocs>\n");
        (
            http,
            [(header::CONTENT_TYPE, "text/xml; charset=UTF-8")],
            xml,
        )
            .into_response()
    }
}

fn xml_value(out: &mut String, name: &str, v: &Value) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                xml_value(out, k, v);
            }
        }
        Value::Array(items) => {
            for item in items {
                xml_value(out, "element", item);
            }
        }
        Value::String(s) => out.push_str(&xml_escape(s)),
        Value::Null => {}
        other => out.push_str(&other.to_string()),
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Decodes `%XX` escapes of a path segment (invalid escapes are kept as is).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
