//! The OpenID Connect fixture the console will sign in with, checked against
//! the real Keycloak that scripts/keycloak.sh starts with
//! scripts/keycloak/realm-liaison.json: the confidential client
//! `liaison-console` runs the authorization code flow with PKCE (S256, and
//! nothing without it) to a redirect URI on 127.0.0.1 at any port, and the ID
//! token carries the `groups` claim (`liaison-operators` for the operator,
//! the organisation's admins group for its admin).
//!
//! Needs `scripts/keycloak.sh start DIR PORT; source DIR/env` (skipped
//! without, failed when `LIAISON_REQUIRE_KEYCLOAK=1`).

mod kc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

struct Fixture {
    base: String,
    realm: String,
    client: String,
    secret: String,
    password: String,
}

fn fixture() -> Option<Fixture> {
    let env = kc::env()?;
    let var =
        |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by scripts/keycloak.sh"));
    Some(Fixture {
        base: env.url,
        realm: var("LIAISON_TEST_KEYCLOAK_REALM"),
        client: var("LIAISON_TEST_KEYCLOAK_CONSOLE_CLIENT"),
        secret: var("LIAISON_TEST_KEYCLOAK_CONSOLE_SECRET"),
        password: var("LIAISON_TEST_KEYCLOAK_USER_PASSWORD"),
    })
}

/// The `Set-Cookie` name=value pairs of an answer, as one `Cookie` header.
fn cookies(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Signs `user` in through the login form and returns the authorization
/// code Keycloak redirects to `redirect` with.
async fn authorize(
    http: &reqwest::Client,
    f: &Fixture,
    user: &str,
    redirect: &str,
    challenge: Option<&str>,
) -> Result<String, String> {
    let mut query = vec![
        ("client_id", f.client.clone()),
        ("response_type", "code".into()),
        ("scope", "openid".into()),
        ("redirect_uri", redirect.into()),
        ("state", "s-123".into()),
    ];
    if let Some(c) = challenge {
        query.push(("code_challenge", c.into()));
        query.push(("code_challenge_method", "S256".into()));
    }
    let auth = format!("{}/realms/{}/protocol/openid-connect/auth", f.base, f.realm);
    let page = http
        .get(&auth)
        .query(&query)
        .send()
        .await
        .expect("Keycloak answers");
    if page.status().is_redirection() {
        // An error is sent back to the client.
        let to = page.headers()["location"].to_str().unwrap().to_owned();
        return Err(to);
    }
    let cookie = cookies(&page);
    let html = page.text().await.unwrap();
    let action = html
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a login form")
        .replace("&amp;", "&");
    let resp = http
        .post(&action)
        .header("cookie", cookie)
        .form(&[
            ("username", user),
            ("password", f.password.as_str()),
            ("credentialId", ""),
        ])
        .send()
        .await
        .expect("Keycloak answers");
    assert_eq!(
        resp.status().as_u16(),
        302,
        "login of {user}: {}",
        resp.text().await.unwrap_or_default()
    );
    let to = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with(redirect), "{to}");
    let url = reqwest::Url::parse(&to).unwrap();
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some("s-123"));
    get("code").ok_or(to)
}

async fn token(
    http: &reqwest::Client,
    f: &Fixture,
    code: &str,
    redirect: &str,
    verifier: &str,
) -> (u16, Value) {
    let resp = http
        .post(format!(
            "{}/realms/{}/protocol/openid-connect/token",
            f.base, f.realm
        ))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("client_id", f.client.as_str()),
            ("client_secret", f.secret.as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("Keycloak answers");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

#[tokio::test]
async fn the_console_client_signs_in_with_pkce_and_gets_the_groups_claim() {
    let Some(f) = fixture() else { return };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "a-verifier-of-forty-three-characters-or-more-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    for (user, port, group) in [
        ("operator", 41234, "liaison-operators"),
        ("acme-admin", 52001, "org-acme-admins"),
    ] {
        let redirect = format!("http://127.0.0.1:{port}/callback");
        let code = authorize(&http, &f, user, &redirect, Some(&challenge))
            .await
            .expect("a code");
        let (status, body) = token(&http, &f, &code, &redirect, verifier).await;
        assert_eq!(status, 200, "{user}: {body}");
        let id = claims(body["id_token"].as_str().expect("an ID token"));
        assert_eq!(id["preferred_username"], user, "{id}");
        let groups: Vec<&str> = id["groups"]
            .as_array()
            .expect("a groups claim")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(groups.contains(&group), "{user}: {groups:?}");
    }

    // The code is bound to the verifier.
    let redirect = "http://127.0.0.1:40000/callback";
    let code = authorize(&http, &f, "operator", redirect, Some(&challenge))
        .await
        .expect("a code");
    let (status, body) = token(
        &http,
        &f,
        &code,
        redirect,
        "another-verifier-of-forty-three-characters-000",
    )
    .await;
    assert_eq!(status, 400, "a wrong verifier is refused: {body}");
    // PKCE is required.
    let refused = authorize(&http, &f, "operator", redirect, None).await;
    let to = refused.expect_err("no code without PKCE");
    assert!(to.contains("error=invalid_request"), "{to}");
}
