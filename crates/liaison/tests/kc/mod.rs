//! A real Keycloak for the tests (`scripts/keycloak.sh start DIR PORT`, then
//! `source DIR/env`): its master admin, driving the admin REST API as an
//! operator would, and a fresh realm per test made from the repository's
//! realm file, so tests running at once never see each other's users.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::time::Duration;

/// What `scripts/keycloak.sh` exports.
#[derive(Clone, Debug)]
pub struct Env {
    pub url: String,
    pub admin_user: String,
    pub admin_password: String,
    pub start_seconds: String,
}

/// The running Keycloak, or `None` (with a notice) to skip; a failure when
/// `LIAISON_REQUIRE_KEYCLOAK=1`.
pub fn env() -> Option<Env> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("LIAISON_TEST_KEYCLOAK_URL"),
        var("LIAISON_TEST_KEYCLOAK_ADMIN_USER"),
        var("LIAISON_TEST_KEYCLOAK_ADMIN_PASSWORD"),
    ) {
        (Some(url), Some(admin_user), Some(admin_password)) => Some(Env {
            url: url.trim_end_matches('/').to_owned(),
            admin_user,
            admin_password,
            start_seconds: var("LIAISON_TEST_KEYCLOAK_START_SECONDS").unwrap_or_default(),
        }),
        _ => {
            assert!(
                std::env::var("LIAISON_REQUIRE_KEYCLOAK").as_deref() != Ok("1"),
                "LIAISON_REQUIRE_KEYCLOAK=1 but LIAISON_TEST_KEYCLOAK_URL (and the admin \
                 credentials) are not set"
            );
            eprintln!(
                "skipped: set LIAISON_TEST_KEYCLOAK_* (scripts/keycloak.sh start DIR PORT; \
                 source DIR/env) to run against Keycloak"
            );
            None
        }
    }
}

/// A realm made for one test, deleted when the test ends well.
pub struct Realm {
    pub http: reqwest::Client,
    pub base: String,
    pub name: String,
    env: Env,
    /// The service account's secret (client `liaison-source`).
    pub source_secret: String,
    /// The test users' password.
    pub password: String,
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}{}", nanos % 1_000_000_000_000)
}

impl Realm {
    /// Creates a realm from `scripts/keycloak/realm-liaison.json`, named
    /// after `prefix`, whose users' names start with `prefix` (they must be
    /// unique in the apps that outlive the realm, such as Synapse).
    pub async fn create_with_prefix(env: &Env, prefix: &str) -> Realm {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/keycloak/realm-liaison.json"
        );
        let template = std::fs::read_to_string(path).expect("the realm file");
        let source_secret = unique("src-");
        let password = unique("pw-");
        let text = template
            .replace("${LIAISON_KC_SOURCE_SECRET}", &source_secret)
            .replace("${LIAISON_KC_CONSOLE_SECRET}", &unique("console-"))
            .replace("${LIAISON_KC_USER_PASSWORD}", &password);
        let mut rep: Value = serde_json::from_str(&text).expect("realm JSON");
        let name = format!("{prefix}r");
        rep["realm"] = json!(name);
        for u in rep["users"].as_array_mut().into_iter().flatten() {
            if u.get("serviceAccountClientId").is_none() {
                let renamed = format!("{prefix}{}", u["username"].as_str().unwrap_or_default());
                u["username"] = json!(renamed);
                if let Some(email) = u["email"].as_str() {
                    let renamed = format!("{prefix}{email}");
                    u["email"] = json!(renamed);
                }
            }
        }
        let realm = Realm {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: env.url.clone(),
            name,
            env: env.clone(),
            source_secret,
            password,
        };
        let (status, body) = realm
            .admin(reqwest::Method::POST, "/admin/realms", Some(rep))
            .await;
        assert_eq!(status, 201, "creating realm {}: {body}", realm.name);
        realm
    }

    async fn admin_token(&self) -> String {
        let resp = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", self.env.admin_user.as_str()),
                ("password", self.env.admin_password.as_str()),
            ])
            .send()
            .await
            .expect("Keycloak answers");
        let body: Value = resp.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("admin token")
            .to_owned()
    }

    /// A call as the master realm's admin; `path` from the server's root.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.admin_token().await;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("Keycloak answers");
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(match location {
            Some(l) => json!({"location": l}),
            None => Value::String(text),
        });
        (status, body)
    }

    /// A call under `/admin/realms/{realm}`; panics unless it succeeds.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let full = format!("/admin/realms/{}{path}", self.name);
        let (status, answer) = self.admin(method.clone(), &full, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {full}: {status} {answer}"
        );
        answer
    }

    /// Creates a user; returns its id.
    pub async fn create_user(&self, username: &str, first: &str, last: &str) -> String {
        let created = self
            .call(
                reqwest::Method::POST,
                "/users",
                Some(json!({
                    "username": username, "enabled": true, "firstName": first, "lastName": last,
                    "email": format!("{username}@example.org"), "emailVerified": true,
                    "credentials": [{"type": "password", "value": self.password, "temporary": false}]
                })),
            )
            .await;
        id_from_location(&created)
    }

    /// The id of a user by username.
    pub async fn user_id(&self, username: &str) -> String {
        let found = self
            .call(
                reqwest::Method::GET,
                &format!("/users?username={username}&exact=true"),
                None,
            )
            .await;
        found[0]["id"].as_str().expect("user").to_owned()
    }

    /// The id of a group by path (`/staff/teachers`).
    pub async fn group_id(&self, path: &str) -> String {
        let g = self
            .call(reqwest::Method::GET, &format!("/group-by-path{path}"), None)
            .await;
        g["id"].as_str().expect("group").to_owned()
    }

    pub async fn create_group(&self, name: &str, parent: Option<&str>) -> String {
        let path = match parent {
            Some(p) => format!("/groups/{p}/children"),
            None => "/groups".to_owned(),
        };
        let created = self
            .call(reqwest::Method::POST, &path, Some(json!({"name": name})))
            .await;
        created["id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| id_from_location(&created))
    }

    pub async fn join(&self, user: &str, group: &str) {
        self.call(
            reqwest::Method::PUT,
            &format!("/users/{user}/groups/{group}"),
            None,
        )
        .await;
    }

    pub async fn leave(&self, user: &str, group: &str) {
        self.call(
            reqwest::Method::DELETE,
            &format!("/users/{user}/groups/{group}"),
            None,
        )
        .await;
    }

    /// Signs a user in with the password grant (a real LOGIN event).
    pub async fn login(&self, username: &str) {
        let resp = self
            .http
            .post(format!(
                "{}/realms/{}/protocol/openid-connect/token",
                self.base, self.name
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "liaison-login-test"),
                ("username", username),
                ("password", self.password.as_str()),
            ])
            .send()
            .await
            .expect("Keycloak answers");
        assert_eq!(
            resp.status().as_u16(),
            200,
            "login of {username}: {}",
            resp.text().await.unwrap_or_default()
        );
    }

    /// Deletes the realm.
    pub async fn delete(self) {
        let (status, body) = self
            .admin(
                reqwest::Method::DELETE,
                &format!("/admin/realms/{}", self.name),
                None,
            )
            .await;
        assert_eq!(status, 204, "deleting realm {}: {body}", self.name);
    }
}

fn id_from_location(answer: &Value) -> String {
    answer["location"]
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .expect("a Location header")
        .to_owned()
}
