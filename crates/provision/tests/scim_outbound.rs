//! The outbound SCIM connector against the Python `scim2-server`
//! (`scripts/scim-peer.sh start PORT` and `start PORT2 --no-patch`, then source
//! the printed export lines). Reads `LIAISON_TEST_SCIM_URL` (+ `_TOKEN`), a peer
//! announcing PATCH, and `LIAISON_TEST_SCIM_NOPATCH_URL` (+ `_TOKEN`), a peer
//! that refuses PATCH. Skips with a notice when unset; fails then if
//! `LIAISON_REQUIRE_SCIM=1`.

use provision::connectors::scim::{ScimConfig, ScimConnector};
use provision::{Connector, DeliveryError, GroupSpec, UserSpec};
use serde_json::{json, Value};

/// The tests share one peer, and a listing paged by offset skips resources
/// deleted meanwhile: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone)]
struct Peer {
    url: String,
    token: Option<String>,
}

fn peer(var: &str) -> Option<Peer> {
    let url = std::env::var(format!("{var}_URL"))
        .ok()
        .filter(|s| !s.is_empty());
    let token = std::env::var(format!("{var}_TOKEN"))
        .ok()
        .filter(|s| !s.is_empty());
    match url {
        Some(url) => Some(Peer { url, token }),
        None => {
            assert!(
                std::env::var("LIAISON_REQUIRE_SCIM").as_deref() != Ok("1"),
                "LIAISON_REQUIRE_SCIM=1 but {var}_URL is unset"
            );
            eprintln!("skipped: set {var}_URL (scripts/scim-peer.sh start PORT) to run this test");
            None
        }
    }
}

fn connector(p: &Peer, use_patch: Option<bool>) -> ScimConnector {
    ScimConnector::new(ScimConfig {
        base_url: p.url.clone(),
        bearer_token: p.token.clone(),
        use_patch,
    })
    .expect("connector")
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", nanos % (1u128 << 48))
}

async fn raw(p: &Peer, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{}", p.url, path));
    if let Some(t) = &p.token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn fetch(p: &Peer, kind: &str, id: &str) -> Value {
    let (status, v) = raw(p, reqwest::Method::GET, &format!("/{kind}/{id}"), None).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn user(u: &str, tag: &str) -> UserSpec {
    UserSpec {
        scim_id: format!("{tag}-{u}"),
        external_id: None,
        user_name: format!("{tag}.user-{u}"),
        display_name: Some("Jeanne Martin".into()),
        given_name: Some("Jeanne".into()),
        family_name: Some("Martin".into()),
        email: Some(format!("{tag}-{u}@example.org")),
        active: true,
    }
}

fn members(group: &Value) -> Vec<String> {
    let mut m: Vec<String> = group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(str::to_owned))
        .collect();
    m.sort();
    m
}

/// Everything a connector does, checked on the peer after each step.
async fn lifecycle(p: &Peer, c: &ScimConnector, tag: &str) {
    let u = unique();
    let mut alice = user(&u, &format!("{tag}a"));

    // Create, and create again (found by userName, linked by externalId).
    let id = c.upsert_user(&alice, None).await.expect("create");
    assert_eq!(c.upsert_user(&alice, None).await.expect("create again"), id);
    let v = fetch(p, "Users", &id).await;
    assert_eq!(v["userName"], alice.user_name);
    assert_eq!(v["externalId"], alice.scim_id);
    assert_eq!(v["displayName"], "Jeanne Martin");
    assert_eq!(v["name"]["givenName"], "Jeanne");
    assert_eq!(v["name"]["familyName"], "Martin");
    assert_eq!(v["emails"][0]["value"], format!("{tag}a-{u}@example.org"));
    assert_eq!(v["active"], true);

    // Update: new display name, no more e-mail, no more family name.
    alice.display_name = Some("Jeanne Martin-Roy".into());
    alice.email = None;
    alice.family_name = None;
    assert_eq!(c.upsert_user(&alice, Some(&id)).await.expect("update"), id);
    assert_eq!(
        c.upsert_user(&alice, Some(&id))
            .await
            .expect("update again"),
        id
    );
    let v = fetch(p, "Users", &id).await;
    assert_eq!(v["displayName"], "Jeanne Martin-Roy");
    assert!(v["emails"].as_array().is_none_or(Vec::is_empty), "{v}");
    assert_eq!(v["name"]["givenName"], "Jeanne");
    assert!(v["name"].get("familyName").is_none(), "{v}");

    // Renamed in the directory, id unknown: found by externalId.
    alice.user_name = format!("{tag}a.renamed-{u}");
    assert_eq!(c.upsert_user(&alice, None).await.expect("rename"), id);
    assert_eq!(fetch(p, "Users", &id).await["userName"], alice.user_name);

    // Deactivate and reactivate, each twice.
    for _ in 0..2 {
        c.set_user_active(&id, false).await.expect("deactivate");
    }
    assert_eq!(fetch(p, "Users", &id).await["active"], false);
    let listed = c.list_users().await.expect("list users");
    let me = listed.iter().find(|a| a.app_id == id).expect("listed");
    assert!(!me.active);
    assert_eq!(me.user_name, alice.user_name);
    assert_eq!(me.display_name.as_deref(), Some("Jeanne Martin-Roy"));
    assert_eq!(
        me.last_active_ms, None,
        "SCIM has no last-activity attribute"
    );
    for _ in 0..2 {
        c.set_user_active(&id, true).await.expect("reactivate");
    }
    assert_eq!(fetch(p, "Users", &id).await["active"], true);
    // An upsert leaves the active state alone.
    c.set_user_active(&id, false).await.expect("deactivate");
    c.upsert_user(&alice, Some(&id)).await.expect("upsert");
    assert_eq!(fetch(p, "Users", &id).await["active"], false);

    // Groups and memberships.
    let bob = user(&u, &format!("{tag}b"));
    let bob_id = c.upsert_user(&bob, None).await.expect("bob");
    let mut group = GroupSpec {
        scim_id: format!("{tag}g-{u}"),
        display_name: format!("Équipe {tag} {u}"),
    };
    let gid = c.upsert_group(&group, None).await.expect("group");
    assert_eq!(
        c.upsert_group(&group, None).await.expect("group again"),
        gid
    );
    let g = fetch(p, "Groups", &gid).await;
    assert_eq!(g["displayName"], group.display_name);
    assert_eq!(g["externalId"], group.scim_id);
    for _ in 0..2 {
        c.add_member(&gid, &id).await.expect("add alice");
        c.add_member(&gid, &bob_id).await.expect("add bob");
    }
    let mut both = vec![id.clone(), bob_id.clone()];
    both.sort();
    assert_eq!(members(&fetch(p, "Groups", &gid).await), both);
    for _ in 0..2 {
        c.remove_member(&gid, &bob_id).await.expect("remove bob");
    }
    assert_eq!(members(&fetch(p, "Groups", &gid).await), vec![id.clone()]);

    group.display_name = format!("Équipe renommée {tag} {u}");
    assert_eq!(
        c.upsert_group(&group, Some(&gid)).await.expect("rename"),
        gid
    );
    let g = fetch(p, "Groups", &gid).await;
    assert_eq!(g["displayName"], group.display_name);
    assert_eq!(members(&g), vec![id.clone()], "renaming keeps the members");

    let listed = c.list_groups().await.expect("list groups");
    let lg = listed.iter().find(|g| g.app_id == gid).expect("listed");
    assert_eq!(lg.display_name, group.display_name);
    assert_eq!(lg.members, vec![id.clone()]);

    assert!(matches!(
        c.add_member("no-such-group", &id).await,
        Err(DeliveryError::NotFound(_))
    ));
    assert!(matches!(
        c.set_user_active("no-such-user", false).await,
        Err(DeliveryError::NotFound(_))
    ));

    // Deletions, each twice.
    for _ in 0..2 {
        c.delete_group(&gid).await.expect("delete group");
        c.delete_user(&bob_id).await.expect("delete bob");
    }
    let (status, _) = raw(p, reqwest::Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = raw(p, reqwest::Method::GET, &format!("/Users/{bob_id}"), None).await;
    assert_eq!(status, 404);
    c.delete_user(&id).await.expect("delete alice");
}

/// Users and groups that exist on the peer without Liaison's link.
async fn collisions(p: &Peer, c: &ScimConnector) {
    let u = unique();
    let (status, v) = raw(
        p,
        reqwest::Method::POST,
        "/Users",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("taken-{u}"),
            "title": "kept",
        })),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let mut spec = user(&u, "c");
    spec.user_name = format!("Taken-{u}");
    let r = c.upsert_user(&spec, None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    let taken = v["id"].as_str().expect("id").to_string();
    let v = fetch(p, "Users", &taken).await;
    assert!(v.get("externalId").is_none(), "left untouched: {v}");

    // Adopted (as `liaison sync --adopt` does: through the recorded id), the
    // account gets Liaison's externalId, keeps what Liaison does not manage,
    // and is found as Liaison's own from then on.
    assert_eq!(
        c.upsert_user(&spec, Some(&taken)).await.expect("adopted"),
        taken
    );
    let v = fetch(p, "Users", &taken).await;
    assert_eq!(
        v["externalId"],
        json!(spec.external_id.clone().unwrap_or(spec.scim_id.clone())),
        "{v}"
    );
    assert_eq!(v["title"], "kept", "{v}");
    assert_eq!(c.upsert_user(&spec, None).await.expect("ours"), taken);

    let (status, _) = raw(
        p,
        reqwest::Method::POST,
        "/Groups",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": format!("Taken group {u}"),
        })),
    )
    .await;
    assert_eq!(status, 201);
    let g = GroupSpec {
        scim_id: format!("cg-{u}"),
        display_name: format!("Taken group {u}"),
    };
    let r = c.upsert_group(&g, None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
}

#[tokio::test]
async fn patch_mode() {
    let Some(p) = peer("LIAISON_TEST_SCIM") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let c = connector(&p, Some(true));
    lifecycle(&p, &c, "patch").await;
    collisions(&p, &c).await;
}

#[tokio::test]
async fn put_mode() {
    let Some(p) = peer("LIAISON_TEST_SCIM") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let c = connector(&p, Some(false));
    lifecycle(&p, &c, "put").await;
    collisions(&p, &c).await;
}

#[tokio::test]
async fn discovered_patch_support() {
    let Some(p) = peer("LIAISON_TEST_SCIM") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let c = connector(&p, None);
    assert!(c.uses_patch().await.expect("discovery"));
    lifecycle(&p, &c, "disc").await;
}

#[tokio::test]
async fn peer_without_patch_gets_put() {
    let Some(p) = peer("LIAISON_TEST_SCIM_NOPATCH") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let c = connector(&p, None);
    assert!(!c.uses_patch().await.expect("discovery"));
    // The peer refuses PATCH: the whole lifecycle passing means none was sent.
    lifecycle(&p, &c, "nopatch").await;
    collisions(&p, &c).await;
}

#[tokio::test]
async fn put_keeps_attributes_liaison_does_not_manage() {
    let Some(p) = peer("LIAISON_TEST_SCIM") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let c = connector(&p, Some(false));
    let u = unique();
    let mut spec = user(&u, "keep");
    let id = c.upsert_user(&spec, None).await.expect("create");
    let (status, v) = raw(
        &p,
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "add", "path": "title", "value": "Directrice" }],
        })),
    )
    .await;
    assert!(status == 200 || status == 204, "{v}");
    spec.display_name = Some("Changed".into());
    c.upsert_user(&spec, Some(&id)).await.expect("update");
    let v = fetch(&p, "Users", &id).await;
    assert_eq!(v["displayName"], "Changed");
    assert_eq!(v["title"], "Directrice");
    c.delete_user(&id).await.expect("cleanup");
}

#[tokio::test]
async fn listing_follows_pages() {
    let Some(p) = peer("LIAISON_TEST_SCIM") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let c = connector(&p, Some(true));
    let u = unique();
    // More than one page (the connector asks for 100 at a time).
    let mut ids = Vec::new();
    for i in 0..130 {
        let (status, v) = raw(
            &p,
            reqwest::Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("page-{u}-{i}"),
            })),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    let listed = c.list_users().await.expect("list");
    assert!(listed.len() >= 130);
    for id in &ids {
        assert!(listed.iter().any(|a| &a.app_id == id), "{id} missing");
    }
    let mut seen: Vec<&str> = listed.iter().map(|a| a.app_id.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), listed.len(), "no user listed twice");
    for id in &ids {
        c.delete_user(id).await.expect("cleanup");
    }
}

#[tokio::test]
async fn wrong_token_is_permanent_and_not_echoed() {
    let Some(p) = peer("LIAISON_TEST_SCIM") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    if p.token.is_none() {
        eprintln!("skipped: the peer takes no token");
        return;
    }
    let bad = Peer {
        url: p.url.clone(),
        token: Some("not-the-token-1234".into()),
    };
    let c = connector(&bad, Some(true));
    match c.list_users().await {
        Err(DeliveryError::Permanent(m)) => assert!(!m.contains("not-the-token-1234")),
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_peer_is_transient() {
    let c = ScimConnector::new(ScimConfig {
        base_url: "http://127.0.0.1:9/scim/v2".into(),
        bearer_token: None,
        use_patch: None,
    })
    .expect("connector");
    assert!(c.list_users().await.expect_err("no peer").is_transient());
}
