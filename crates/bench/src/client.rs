//! A minimal SCIM 2.0 HTTP client: just the requests the benchmark sends, each
//! checking the status code and the parts of the answer the benchmark relies on.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";

/// Group writes ask the server to leave the member list out of its answer
/// (RFC 7644 §3.9), as a client managing large groups would.
const NO_MEMBERS: (&str, &str) = ("excludedAttributes", "members");

/// A SCIM client bound to one base URL and one bearer token. Cheap to clone: the
/// connection pool is shared.
#[derive(Clone)]
pub struct Scim {
    http: reqwest::Client,
    base: String,
    auth: String,
}

impl Scim {
    /// Builds a client for `base` (e.g. `http://127.0.0.1:8080/o/acme/scim/v2`)
    /// keeping up to `pool` idle connections open.
    pub fn new(base: &str, token: &str, pool: usize, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth: format!("Bearer {token}"),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .header(reqwest::header::ACCEPT, SCIM_JSON)
    }

    fn with_body(builder: RequestBuilder, body: &Value) -> Result<RequestBuilder> {
        let bytes = serde_json::to_vec(body).context("encoding a request body")?;
        Ok(builder
            .header(reqwest::header::CONTENT_TYPE, SCIM_JSON)
            .body(bytes))
    }

    /// Creates one user and returns its `id`.
    pub async fn create_user(&self, user_name: &str, n: usize) -> Result<String> {
        let body = json!({
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "displayName": format!("Bench User {n}"),
            "name": {"givenName": "Bench", "familyName": format!("User{n}")},
            "emails": [{"value": format!("{user_name}@bench.example"), "type": "work", "primary": true}],
            "active": true,
        });
        let req = Self::with_body(self.request(Method::POST, "/Users"), &body)?;
        let value = expect_json(req.send().await, StatusCode::CREATED, "POST /Users").await?;
        id_of(&value)
    }

    /// Looks a user up with `filter=userName eq "…"` and checks that exactly one
    /// resource matched.
    pub async fn find_user(&self, user_name: &str) -> Result<()> {
        let filter = format!("userName eq \"{user_name}\"");
        let req = self
            .request(Method::GET, "/Users")
            .query(&[("filter", filter.as_str())]);
        let value = expect_json(req.send().await, StatusCode::OK, "GET /Users?filter").await?;
        match value.get("totalResults").and_then(Value::as_u64) {
            Some(1) => Ok(()),
            other => bail!("filter on userName {user_name:?} gave totalResults {other:?}"),
        }
    }

    /// Runs `filter` on `/Users` and checks that exactly one resource matched.
    pub async fn find_one(&self, filter: &str) -> Result<()> {
        let req = self
            .request(Method::GET, "/Users")
            .query(&[("filter", filter)]);
        let value = expect_json(req.send().await, StatusCode::OK, "GET /Users?filter").await?;
        match value.get("totalResults").and_then(Value::as_u64) {
            Some(1) => Ok(()),
            other => bail!("filter {filter:?} gave totalResults {other:?}"),
        }
    }

    /// Fetches one page of users and returns how many resources it held.
    pub async fn list_page(&self, start_index: usize, count: usize) -> Result<usize> {
        let req = self.request(Method::GET, "/Users").query(&[
            ("startIndex", start_index.to_string()),
            ("count", count.to_string()),
        ]);
        let value = expect_json(req.send().await, StatusCode::OK, "GET /Users page").await?;
        Ok(value
            .get("Resources")
            .and_then(Value::as_array)
            .map_or(0, Vec::len))
    }

    /// Creates an empty group and returns its `id`.
    pub async fn create_group(&self, display_name: &str) -> Result<String> {
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": display_name});
        let req = Self::with_body(self.request(Method::POST, "/Groups"), &body)?;
        let value = expect_json(req.send().await, StatusCode::CREATED, "POST /Groups").await?;
        id_of(&value)
    }

    /// Adds members to a group with one PATCH `add` operation.
    pub async fn add_members(&self, group_id: &str, member_ids: &[String]) -> Result<()> {
        let body = json!({
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "add", "path": "members", "value": members(member_ids)}],
        });
        let req = self
            .request(Method::PATCH, &format!("/Groups/{group_id}"))
            .query(&[NO_MEMBERS]);
        let req = Self::with_body(req, &body)?;
        expect_success(req.send().await, "PATCH /Groups").await
    }

    /// Replaces a group whole with PUT.
    pub async fn put_group(
        &self,
        group_id: &str,
        display_name: &str,
        member_ids: &[String],
    ) -> Result<()> {
        let body = json!({
            "schemas": [GROUP_SCHEMA],
            "id": group_id,
            "displayName": display_name,
            "members": members(member_ids),
        });
        let req = self
            .request(Method::PUT, &format!("/Groups/{group_id}"))
            .query(&[NO_MEMBERS]);
        let req = Self::with_body(req, &body)?;
        expect_success(req.send().await, "PUT /Groups").await
    }
}

fn members(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({"value": id})).collect())
}

fn id_of(value: &Value) -> Result<String> {
    value
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the created resource has no id"))
}

/// Fails with the status and the start of the body unless the answer is 2xx.
async fn check(sent: reqwest::Result<Response>, what: &str) -> Result<Response> {
    let response = sent.with_context(|| format!("{what}: no answer"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let head: String = body.chars().take(400).collect();
    bail!("{what}: HTTP {status}: {head}")
}

async fn expect_success(sent: reqwest::Result<Response>, what: &str) -> Result<()> {
    let response = check(sent, what).await?;
    // Drain the body so that the connection goes back to the pool.
    response
        .bytes()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    Ok(())
}

async fn expect_json(
    sent: reqwest::Result<Response>,
    expected: StatusCode,
    what: &str,
) -> Result<Value> {
    let response = check(sent, what).await?;
    let status = response.status();
    if status != expected {
        bail!("{what}: HTTP {status}, expected {expected}");
    }
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{what}: the answer is not JSON"))
}
