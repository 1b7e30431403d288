//! The Synapse connector against a real Synapse (`scripts/synapse.sh start DIR
//! PORT`, then `source DIR/env`). Reads `LIAISON_TEST_SYNAPSE_URL` and
//! `LIAISON_TEST_SYNAPSE_TOKEN` (an admin's access token; the server name is
//! `localhost` unless `LIAISON_TEST_SYNAPSE_SERVER_NAME` says otherwise). Skips
//! with a notice when they are unset, fails then if `LIAISON_REQUIRE_SYNAPSE=1`.

use provision::connectors::synapse::{localpart, SynapseConfig, SynapseConnector};
use provision::{Connector, DeliveryError, GroupSpec, GroupsAs, UserSpec};
use serde_json::{json, Value};

struct Env {
    url: String,
    token: String,
    server: String,
}

fn env() -> Option<Env> {
    let url = std::env::var("LIAISON_TEST_SYNAPSE_URL")
        .ok()
        .filter(|s| !s.is_empty());
    let token = std::env::var("LIAISON_TEST_SYNAPSE_TOKEN")
        .ok()
        .filter(|s| !s.is_empty());
    match (url, token) {
        (Some(url), Some(token)) => Some(Env {
            url,
            token,
            server: std::env::var("LIAISON_TEST_SYNAPSE_SERVER_NAME")
                .unwrap_or_else(|_| "localhost".into()),
        }),
        _ => {
            assert!(
                std::env::var("LIAISON_REQUIRE_SYNAPSE").as_deref() != Ok("1"),
                "LIAISON_REQUIRE_SYNAPSE=1 but LIAISON_TEST_SYNAPSE_URL/TOKEN are unset"
            );
            eprintln!(
                "skipped: set LIAISON_TEST_SYNAPSE_URL and LIAISON_TEST_SYNAPSE_TOKEN \
                 (scripts/synapse.sh start DIR PORT) to run the Synapse tests"
            );
            None
        }
    }
}

fn connector(env: &Env, groups_as: GroupsAs) -> SynapseConnector {
    let mut config = SynapseConfig::new(&env.url, &env.server, &env.token);
    config.groups_as = groups_as;
    SynapseConnector::new(config).expect("connector")
}

/// A suffix that makes names unique across runs against the same server.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", nanos % (1u128 << 48))
}

/// Raw admin calls to check what Synapse holds, independently of the connector.
async fn raw(env: &Env, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{}", env.url, path))
        .bearer_auth(&env.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v)
}

async fn synapse_user(env: &Env, id: &str) -> Value {
    let (status, v) = raw(
        env,
        reqwest::Method::GET,
        &format!("/_synapse/admin/v2/users/{}", id.replace('#', "%23")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn members(env: &Env, room: &str) -> Vec<String> {
    let (status, v) = raw(
        env,
        reqwest::Method::GET,
        &format!("/_synapse/admin/v1/rooms/{room}/members"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect()
}

fn spec(user_name: &str, scim_id: &str) -> UserSpec {
    UserSpec {
        scim_id: scim_id.to_string(),
        external_id: Some(format!("idp-{scim_id}")),
        user_name: user_name.to_string(),
        display_name: Some("Jean Dupont".into()),
        given_name: Some("Jean".into()),
        family_name: Some("Dupont".into()),
        email: Some(format!("{scim_id}@ecole.example")),
        active: true,
    }
}

#[tokio::test]
async fn user_lifecycle() {
    let Some(env) = env() else { return };
    let c = connector(&env, GroupsAs::Rooms);
    let u = unique();
    let mut user = spec(&format!("Jean.Dupont-{u}@ecole.fr"), &format!("s{u}"));
    let expected_id = format!("@{}:{}", localpart(&user.user_name), env.server);

    let id = c.upsert_user(&user, None).await.expect("create");
    assert_eq!(id, expected_id);
    let again = c.upsert_user(&user, None).await.expect("create again");
    assert_eq!(again, id, "a repeated create finds the same account");
    let v = synapse_user(&env, &id).await;
    assert_eq!(v["displayname"], "Jean Dupont");
    assert_eq!(v["threepids"][0]["medium"], "email");
    assert_eq!(v["threepids"][0]["address"], format!("s{u}@ecole.example"));
    assert_eq!(
        v["external_ids"],
        json!([{ "auth_provider": "liaison", "external_id": format!("idp-s{u}") }])
    );
    assert_eq!(v["deactivated"], false);

    user.display_name = Some("Jean-Marie Dupont".into());
    user.email = Some(format!("jm{u}@ecole.example"));
    c.upsert_user(&user, Some(&id)).await.expect("update");
    c.upsert_user(&user, Some(&id)).await.expect("update again");
    let v = synapse_user(&env, &id).await;
    assert_eq!(v["displayname"], "Jean-Marie Dupont");
    assert_eq!(v["threepids"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["threepids"][0]["address"], format!("jm{u}@ecole.example"));

    c.set_user_active(&id, false).await.expect("deactivate");
    c.set_user_active(&id, false)
        .await
        .expect("deactivate again");
    assert_eq!(synapse_user(&env, &id).await["deactivated"], true);
    let listed = c.list_users().await.expect("list");
    let me = listed
        .iter()
        .find(|a| a.app_id == id)
        .expect("listed while deactivated");
    assert!(!me.active);

    c.set_user_active(&id, true).await.expect("reactivate");
    c.set_user_active(&id, true)
        .await
        .expect("reactivate again");
    assert_eq!(synapse_user(&env, &id).await["deactivated"], false);
    // Deactivation dropped the threepids: a new upsert restores them.
    c.upsert_user(&user, Some(&id)).await.expect("restore");
    let listed = c.list_users().await.expect("list");
    let me = listed.iter().find(|a| a.app_id == id).expect("listed");
    assert!(me.active);
    assert_eq!(me.user_name, localpart(&user.user_name));
    assert_eq!(me.display_name.as_deref(), Some("Jean-Marie Dupont"));
    assert_eq!(
        me.email.as_deref(),
        Some(format!("jm{u}@ecole.example").as_str())
    );

    c.delete_user(&id).await.expect("delete");
    c.delete_user(&id).await.expect("delete again");
    let v = synapse_user(&env, &id).await;
    assert_eq!(v["deactivated"], true);
    assert_eq!(v["erased"], true);

    let unknown = format!("@nobody-{u}:{}", env.server);
    assert!(matches!(
        c.set_user_active(&unknown, false).await,
        Err(DeliveryError::NotFound(_))
    ));
    c.delete_user(&unknown)
        .await
        .expect("deleting an unknown user is a no-op");
}

#[tokio::test]
async fn existing_account_is_a_collision() {
    let Some(env) = env() else { return };
    let c = connector(&env, GroupsAs::Rooms);
    let u = unique();
    let name = format!("élodie-{u}");
    let mxid = format!("@{}:{}", localpart(&name), env.server);
    assert!(mxid.starts_with("@=c3=a9lodie-"));
    // An account made by someone else, directly through the admin API.
    let (status, v) = raw(
        &env,
        reqwest::Method::PUT,
        &format!("/_synapse/admin/v2/users/{mxid}"),
        Some(json!({ "displayname": "Someone else" })),
    )
    .await;
    assert_eq!(status, 201, "{v}");

    let user = spec(&name, &format!("c{u}"));
    let r = c.upsert_user(&user, None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    let v = synapse_user(&env, &mxid).await;
    assert_eq!(
        v["displayname"], "Someone else",
        "the account is left untouched"
    );
    assert_eq!(v["external_ids"], json!([]));

    // Linked to another external id of our provider: a collision too.
    let (status, _) = raw(
        &env,
        reqwest::Method::PUT,
        &format!("/_synapse/admin/v2/users/{mxid}"),
        Some(json!({ "external_ids": [{ "auth_provider": "liaison", "external_id": format!("other-{u}") }] })),
    )
    .await;
    assert_eq!(status, 200);
    let r = c.upsert_user(&user, None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");

    // The same external id already linked to another account: a collision.
    let mut twin = spec(&format!("other-{u}"), &format!("c{u}"));
    twin.external_id = Some(format!("other-{u}"));
    let r = c.upsert_user(&twin, None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    let (status, _) = raw(
        &env,
        reqwest::Method::GET,
        &format!("/_synapse/admin/v2/users/@other-{u}:{}", env.server),
        None,
    )
    .await;
    assert_eq!(status, 404, "no orphan account is left behind");

    // An e-mail address bound to another account stays with it.
    let first = spec(&format!("first-{u}"), &format!("f{u}"));
    let first_id = c.upsert_user(&first, None).await.expect("first");
    let mut second = spec(&format!("second-{u}"), &format!("g{u}"));
    second.email = first.email.clone();
    let second_id = c.upsert_user(&second, None).await.expect("second");
    assert_eq!(synapse_user(&env, &second_id).await["threepids"], json!([]));
    let v = synapse_user(&env, &first_id).await;
    assert_eq!(v["threepids"][0]["address"], format!("f{u}@ecole.example"));
}

async fn group_lifecycle(groups_as: GroupsAs) {
    let Some(env) = env() else { return };
    let c = connector(&env, groups_as);
    let u = unique();
    let alice = c
        .upsert_user(&spec(&format!("alice-{u}"), &format!("a{u}")), None)
        .await
        .expect("alice");
    let bob = c
        .upsert_user(&spec(&format!("bob-{u}"), &format!("b{u}")), None)
        .await
        .expect("bob");

    let mut group = GroupSpec {
        scim_id: format!("G{u}-grp"),
        display_name: format!("Équipe {u}"),
    };
    let room = c.upsert_group(&group, None).await.expect("create room");
    assert!(room.starts_with('!'));
    assert_eq!(
        c.upsert_group(&group, None).await.expect("again, by alias"),
        room
    );
    assert_eq!(
        c.upsert_group(&group, Some(&room))
            .await
            .expect("again, by id"),
        room
    );
    let (_, details) = raw(
        &env,
        reqwest::Method::GET,
        &format!("/_synapse/admin/v1/rooms/{room}"),
        None,
    )
    .await;
    assert_eq!(details["name"], group.display_name);
    assert_eq!(details["canonical_alias"], c.room_alias(&group.scim_id));
    assert_eq!(details["public"], false);
    assert_eq!(details["join_rules"], "invite");
    let expected_type = if groups_as == GroupsAs::Spaces {
        json!("m.space")
    } else {
        Value::Null
    };
    assert_eq!(details["room_type"], expected_type);

    for _ in 0..2 {
        c.add_member(&room, &alice).await.expect("add alice");
        c.add_member(&room, &bob).await.expect("add bob");
    }
    let m = members(&env, &room).await;
    assert!(m.contains(&alice) && m.contains(&bob), "{m:?}");

    for _ in 0..2 {
        c.remove_member(&room, &bob).await.expect("kick bob");
    }
    let m = members(&env, &room).await;
    assert!(m.contains(&alice) && !m.contains(&bob), "{m:?}");

    group.display_name = format!("Équipe renommée {u}");
    assert_eq!(
        c.upsert_group(&group, Some(&room)).await.expect("rename"),
        room
    );
    assert_eq!(
        c.upsert_group(&group, Some(&room))
            .await
            .expect("rename again"),
        room
    );
    let (_, details) = raw(
        &env,
        reqwest::Method::GET,
        &format!("/_synapse/admin/v1/rooms/{room}"),
        None,
    )
    .await;
    assert_eq!(details["name"], group.display_name);

    let listed = c.list_groups().await.expect("list groups");
    let g = listed.iter().find(|g| g.app_id == room).expect("listed");
    assert_eq!(g.display_name, group.display_name);
    assert_eq!(
        g.members,
        vec![alice.clone()],
        "the admin user is not listed"
    );

    c.delete_group(&room).await.expect("delete");
    c.delete_group(&room).await.expect("delete again");
    let (status, _) = raw(
        &env,
        reqwest::Method::GET,
        &format!("/_synapse/admin/v1/rooms/{room}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let listed = c.list_groups().await.expect("list groups");
    assert!(listed.iter().all(|g| g.app_id != room));
    // The alias went with the room: a new upsert makes a new room.
    let again = c.upsert_group(&group, Some(&room)).await.expect("recreate");
    assert_ne!(again, room);
    c.delete_group(&again).await.expect("cleanup");
}

#[tokio::test]
async fn groups_as_rooms() {
    group_lifecycle(GroupsAs::Rooms).await;
}

#[tokio::test]
async fn groups_as_spaces() {
    group_lifecycle(GroupsAs::Spaces).await;
}

#[tokio::test]
async fn admin_rate_limits_can_be_lifted() {
    let Some(env) = env() else { return };
    let c = connector(&env, GroupsAs::Rooms);
    c.exempt_admin_from_rate_limits().await.expect("override");
    c.exempt_admin_from_rate_limits()
        .await
        .expect("override again");
    let (_, who) = raw(
        &env,
        reqwest::Method::GET,
        "/_matrix/client/v3/account/whoami",
        None,
    )
    .await;
    let admin = who["user_id"].as_str().expect("user_id").to_string();
    let (status, v) = raw(
        &env,
        reqwest::Method::GET,
        &format!("/_synapse/admin/v1/users/{admin}/override_ratelimit"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v, json!({ "messages_per_second": 0, "burst_count": 0 }));
}

#[tokio::test]
async fn bad_token_is_permanent_and_not_echoed() {
    let Some(env) = env() else { return };
    let mut config = SynapseConfig::new(&env.url, &env.server, "syt_not_a_valid_token_42");
    config.groups_as = GroupsAs::Rooms;
    let c = SynapseConnector::new(config).expect("connector");
    let r = c.list_users().await;
    match r {
        Err(DeliveryError::Permanent(msg)) => assert!(!msg.contains("syt_not_a_valid_token_42")),
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_server_is_transient() {
    let c = SynapseConnector::new(SynapseConfig::new("http://127.0.0.1:9", "localhost", "t"))
        .expect("connector");
    assert!(c.list_users().await.expect_err("no server").is_transient());
}

/// Signs in as `user_id` with a password set through the admin API and makes one
/// authenticated request. (The admin API's "login as user" would not do: Synapse
/// records the activity of such a token against the admin, unless
/// `track_puppeted_user_ips` is set.)
async fn be_active(env: &Env, user_id: &str) {
    let password = format!("Pw-{}-Aa1", unique());
    let (status, v) = raw(
        env,
        reqwest::Method::PUT,
        &format!("/_synapse/admin/v2/users/{user_id}"),
        Some(json!({ "password": password, "logout_devices": false })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let login: Value = reqwest::Client::new()
        .post(format!("{}/_matrix/client/v3/login", env.url))
        .json(&json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user_id },
            "password": password,
        }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login answer");
    let token = login["access_token"].as_str().expect("access_token");
    let who: Value = reqwest::Client::new()
        .get(format!("{}/_matrix/client/v3/account/whoami", env.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("whoami")
        .json()
        .await
        .expect("whoami answer");
    assert_eq!(who["user_id"], user_id);
}

#[tokio::test]
async fn last_activity_is_reported() {
    let Some(env) = env() else { return };
    let c = connector(&env, GroupsAs::Rooms);
    let u = unique();
    let active = c
        .upsert_user(&spec(&format!("busy-{u}"), &format!("la{u}")), None)
        .await
        .expect("busy user");
    let idle = c
        .upsert_user(&spec(&format!("idle-{u}"), &format!("li{u}")), None)
        .await
        .expect("idle user");
    let last = |listed: &[provision::AppUser], id: &str| {
        listed
            .iter()
            .find(|a| a.app_id == id)
            .unwrap_or_else(|| panic!("{id} listed"))
            .last_active_ms
    };
    let listed = c.list_users().await.expect("list");
    assert_eq!(last(&listed, &active), None, "not active yet");

    be_active(&env, &active).await;
    // Synapse writes the client IPs it saw in batches, every few seconds.
    let mut seen = None;
    for _ in 0..150 {
        let listed = c.list_users().await.expect("list");
        seen = last(&listed, &active);
        if seen.is_some() {
            assert_eq!(last(&listed, &idle), None, "never active");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let seen = seen.expect("Synapse never reported the activity");
    assert_eq!(
        Some(seen),
        synapse_user(&env, &active).await["last_seen_ts"].as_i64(),
        "the account's own last_seen_ts"
    );

    // A deactivated account keeps its last activity (it needs no detail call).
    c.set_user_active(&active, false).await.expect("deactivate");
    let listed = c.list_users().await.expect("list");
    assert_eq!(last(&listed, &active), Some(seen));
}

/// A fresh admin of the test server and its own access token, so that the
/// server's shared admin is never at stake.
async fn fresh_admin(env: &Env) -> (String, String) {
    let id = format!("@liaison-adm-{}:{}", unique(), env.server);
    let (status, v) = raw(
        env,
        reqwest::Method::PUT,
        &format!("/_synapse/admin/v2/users/{id}"),
        Some(json!({ "admin": true, "displayname": "Hoster admin", "password": format!("Pw-{}-x", unique()) })),
    )
    .await;
    assert!(status == 200 || status == 201, "{v}");
    let (status, v) = raw(
        env,
        reqwest::Method::POST,
        &format!("/_synapse/admin/v1/users/{id}/login"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    (id, v["access_token"].as_str().expect("token").to_owned())
}

#[tokio::test]
async fn the_account_liaison_signs_in_with_is_never_changed() {
    let Some(env) = env() else { return };
    let (admin_id, token) = fresh_admin(&env).await;
    let admin_env = Env {
        url: env.url.clone(),
        token,
        server: env.server.clone(),
    };
    let conn = connector(&admin_env, GroupsAs::Rooms);
    let localpart = admin_id
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let mut s = spec(&localpart, &format!("scim-{}", unique()));
    s.active = false;
    // By name, and through a recorded id (an earlier adoption, a forged link).
    let r = conn.upsert_user(&s, None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    let r = conn.upsert_user(&s, Some(&admin_id)).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    let r = conn.set_user_active(&admin_id, false).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    let r = conn.delete_user(&admin_id).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    let after = synapse_user(&env, &admin_id).await;
    assert_eq!(after["displayname"], "Hoster admin", "{after}");
    assert_eq!(after["deactivated"], false, "{after}");
    assert_eq!(after["external_ids"], json!([]), "{after}");
}
