//! The Nextcloud connector against the fake Nextcloud (`provision::fakes`), which
//! is written from the official provisioning API documentation.

use std::time::Duration;

use provision::connectors::nextcloud::{NextcloudConfig, NextcloudConnector};
use provision::fakes::{spawn_nextcloud, FakeApp, NcUser, NextcloudState, Outage, OutageFor};
use provision::{Connector, DeliveryError, GroupSpec, UserSpec};

const USERS: &str = "/ocs/v2.php/cloud/users";

async fn setup() -> (FakeApp<NextcloudState>, NextcloudConnector) {
    let fake = spawn_nextcloud("admin", "app-pass")
        .await
        .expect("fake starts");
    let conn = NextcloudConnector::new(config(&fake, "app-pass")).expect("connector");
    (fake, conn)
}

fn config(fake: &FakeApp<NextcloudState>, password: &str) -> NextcloudConfig {
    NextcloudConfig {
        base_url: fake.base_url(),
        user: "admin".into(),
        app_password: password.into(),
        quota: Some("5 GB".into()),
    }
}

fn user(name: &str) -> UserSpec {
    UserSpec {
        scim_id: format!("id-{name}"),
        external_id: None,
        user_name: name.into(),
        display_name: Some(format!("{name} Display")),
        given_name: None,
        family_name: None,
        email: Some(format!("{name}@example.org")),
        active: true,
    }
}

fn group(id: &str, name: &str) -> GroupSpec {
    GroupSpec {
        scim_id: id.into(),
        display_name: name.into(),
    }
}

#[tokio::test]
async fn creates_a_user_with_its_fields_and_a_password_nobody_knows() {
    let (fake, nc) = setup().await;
    let id = nc.upsert_user(&user("alice"), None).await.expect("created");
    assert_eq!(id, "alice");
    let state = fake.state();
    let alice = &state.users["alice"];
    assert_eq!(alice.display_name, "alice Display");
    assert_eq!(alice.email, "alice@example.org");
    assert_eq!(alice.quota, "5 GB");
    assert!(alice.password_set);
    assert!(alice.enabled);
    assert_eq!(fake.count("POST", USERS), 1);
}

#[tokio::test]
async fn upserting_twice_changes_nothing_the_second_time() {
    let (fake, nc) = setup().await;
    let alice = user("alice");
    let id = nc.upsert_user(&alice, None).await.expect("first");
    let before = fake.state();
    fake.clear_requests();

    // Without the recorded id: POST answers 102, then the user is read.
    assert_eq!(nc.upsert_user(&alice, None).await.expect("second"), id);
    // With it: only read.
    assert_eq!(nc.upsert_user(&alice, Some(&id)).await.expect("third"), id);
    assert_eq!(fake.state(), before);
    assert_eq!(fake.count("POST", USERS), 1);
    assert_eq!(fake.count("PUT", "/ocs/v2.php/cloud/users/alice"), 0);
}

#[tokio::test]
async fn updates_only_the_fields_that_differ() {
    let (fake, nc) = setup().await;
    let mut alice = user("alice");
    let id = nc.upsert_user(&alice, None).await.expect("created");
    fake.clear_requests();

    alice.display_name = Some("Alice Liddell".into());
    nc.upsert_user(&alice, Some(&id)).await.expect("renamed");
    assert_eq!(fake.count("PUT", "/ocs/v2.php/cloud/users/alice"), 1);
    assert_eq!(fake.state().users["alice"].display_name, "Alice Liddell");

    alice.email = Some("liddell@example.org".into());
    nc.upsert_user(&alice, Some(&id)).await.expect("new mail");
    assert_eq!(fake.count("PUT", "/ocs/v2.php/cloud/users/alice"), 2);
    assert_eq!(fake.state().users["alice"].email, "liddell@example.org");
}

#[tokio::test]
async fn an_existing_account_liaison_did_not_create_is_a_collision_left_unchanged() {
    let (fake, nc) = setup().await;
    fake.with_state(|s| {
        let mut bob = NcUser::new("Bob");
        bob.email = "old@example.org".into();
        bob.display_name = "Robert".into();
        s.users.insert("Bob".into(), bob);
    });
    let before = fake.state().users["Bob"].clone();
    // User ids are case-insensitive in Nextcloud: "bob" is the existing "Bob".
    let r = nc.upsert_user(&user("bob"), None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    assert_eq!(fake.state().users["Bob"], before);
    assert_eq!(fake.count("PUT", "/ocs/v2.php/cloud/users/Bob"), 0);
}

#[tokio::test]
async fn scim_user_named_like_the_admin_is_a_collision_and_the_admin_is_untouched() {
    let (fake, nc) = setup().await;
    fake.with_state(|s| {
        let admin = s.users.get_mut("admin").unwrap();
        admin.email = "hoster@example.net".into();
        admin.display_name = "Hoster".into();
    });
    let before = fake.state().users["admin"].clone();
    fake.clear_requests();
    for name in ["admin", "Admin"] {
        let mut spec = user(name);
        spec.active = false;
        let r = nc.upsert_user(&spec, None).await;
        assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
        // Even through a recorded id, a disable or a deletion.
        let r = nc.upsert_user(&spec, Some("admin")).await;
        assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    }
    assert!(nc.set_user_active("admin", false).await.is_err());
    assert!(nc.delete_user("ADMIN").await.is_err());
    let after = fake.state().users["admin"].clone();
    assert_eq!(after, before);
    assert!(after.enabled && after.email == "hoster@example.net");
    assert_eq!(fake.count("PUT", "/ocs/v2.php/cloud/users/admin"), 0);
    assert_eq!(
        fake.count("PUT", "/ocs/v2.php/cloud/users/admin/disable"),
        0
    );
}

#[tokio::test]
async fn an_account_carrying_the_marker_is_taken_as_liaisons_own() {
    // Another Liaison process created it (or the answer to the creation was
    // lost): it is in the marker group, so it is adopted, not a collision.
    let (fake, nc) = setup().await;
    let other = NextcloudConnector::new(config(&fake, "app-pass")).expect("connector");
    let id = other
        .upsert_user(&user("carol"), None)
        .await
        .expect("created");
    assert!(fake.state().users["carol"]
        .groups
        .contains(provision::connectors::nextcloud::MARKER_GROUP));
    let mut renamed = user("carol");
    renamed.display_name = Some("Carol C.".into());
    assert_eq!(nc.upsert_user(&renamed, None).await.expect("ours"), id);
    assert_eq!(fake.state().users["carol"].display_name, "Carol C.");
    // The marker group is no directory group: never listed.
    let groups = nc.list_groups().await.expect("groups");
    assert!(groups
        .iter()
        .all(|g| g.app_id != provision::connectors::nextcloud::MARKER_GROUP));
}

#[tokio::test]
async fn a_recorded_id_that_vanished_is_created_again() {
    let (fake, nc) = setup().await;
    let id = nc.upsert_user(&user("alice"), None).await.expect("created");
    fake.with_state(|s| s.users.remove("alice"));
    assert_eq!(
        nc.upsert_user(&user("alice"), Some(&id))
            .await
            .expect("again"),
        "alice"
    );
    assert!(fake.state().users.contains_key("alice"));
}

#[tokio::test]
async fn user_names_nextcloud_refuses_are_permanent_errors_without_a_request() {
    let (fake, nc) = setup().await;
    for bad in ["a/b", "zoë", " lead", "x".repeat(65).as_str()] {
        let err = nc.upsert_user(&user(bad), None).await.expect_err(bad);
        assert!(matches!(err, DeliveryError::Permanent(_)), "{bad}: {err:?}");
    }
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_inactive_user_is_created_disabled() {
    let (fake, nc) = setup().await;
    let mut carol = user("carol");
    carol.active = false;
    nc.upsert_user(&carol, None).await.expect("created");
    assert!(!fake.state().users["carol"].enabled);
}

#[tokio::test]
async fn disable_and_enable_are_idempotent() {
    let (fake, nc) = setup().await;
    let id = nc.upsert_user(&user("alice"), None).await.expect("created");
    for _ in 0..2 {
        nc.set_user_active(&id, false).await.expect("disabled");
        assert!(!fake.state().users["alice"].enabled);
    }
    for _ in 0..2 {
        nc.set_user_active(&id, true).await.expect("enabled");
        assert!(fake.state().users["alice"].enabled);
    }
    let err = nc
        .set_user_active("ghost", false)
        .await
        .expect_err("unknown");
    assert!(matches!(err, DeliveryError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn delete_is_idempotent() {
    let (fake, nc) = setup().await;
    let id = nc.upsert_user(&user("alice"), None).await.expect("created");
    nc.delete_user(&id).await.expect("deleted");
    nc.delete_user(&id).await.expect("deleted again");
    assert!(!fake.state().users.contains_key("alice"));
}

#[tokio::test]
async fn groups_are_created_renamed_and_deleted_idempotently() {
    let (fake, nc) = setup().await;
    let g = group("3f0c9a", "Board");
    let gid = nc.upsert_group(&g, None).await.expect("created");
    assert_eq!(gid, "3f0c9a");
    assert_eq!(nc.upsert_group(&g, None).await.expect("again"), gid);
    assert_eq!(nc.upsert_group(&g, Some(&gid)).await.expect("known"), gid);
    assert_eq!(fake.state().groups[&gid].display_name, "Board");
    assert_eq!(fake.count("PUT", "/ocs/v2.php/cloud/groups/3f0c9a"), 0);

    nc.upsert_group(&group("3f0c9a", "Board of directors"), Some(&gid))
        .await
        .expect("renamed");
    assert_eq!(fake.state().groups[&gid].display_name, "Board of directors");
    assert_eq!(fake.count("PUT", "/ocs/v2.php/cloud/groups/3f0c9a"), 1);

    nc.delete_group(&gid).await.expect("deleted");
    nc.delete_group(&gid).await.expect("deleted again");
    assert!(!fake.state().groups.contains_key(&gid));
}

#[tokio::test]
async fn memberships_are_added_and_removed_idempotently() {
    let (fake, nc) = setup().await;
    let uid = nc.upsert_user(&user("alice"), None).await.expect("user");
    let gid = nc
        .upsert_group(&group("g1", "Team"), None)
        .await
        .expect("group");
    for _ in 0..2 {
        nc.add_member(&gid, &uid).await.expect("added");
    }
    assert_eq!(fake.state().members(&gid), vec!["alice".to_string()]);

    let groups = nc.list_groups().await.expect("listed");
    let team = groups
        .iter()
        .find(|g| g.app_id == gid)
        .expect("listed group");
    assert_eq!(team.display_name, "Team");
    assert_eq!(team.members, vec!["alice".to_string()]);

    for _ in 0..2 {
        nc.remove_member(&gid, &uid).await.expect("removed");
    }
    assert!(fake.state().members(&gid).is_empty());

    let err = nc.add_member("nope", &uid).await.expect_err("no group");
    assert!(matches!(err, DeliveryError::NotFound(_)), "{err:?}");
    let err = nc.add_member(&gid, "ghost").await.expect_err("no user");
    assert!(matches!(err, DeliveryError::NotFound(_)), "{err:?}");
    nc.remove_member("nope", &uid)
        .await
        .expect("nothing to remove");
}

#[tokio::test]
async fn list_users_pages_through_everything() {
    let (fake, nc) = setup().await;
    fake.with_state(|s| {
        for i in 0..250 {
            let id = format!("user{i:03}");
            let mut u = NcUser::new(&id);
            u.enabled = i % 2 == 0;
            s.users.insert(id, u);
        }
    });
    let users = nc.list_users().await.expect("listed");
    assert_eq!(users.len(), 251);
    let u1 = users
        .iter()
        .find(|u| u.app_id == "user001")
        .expect("user001");
    assert!(!u1.active);
    assert_eq!(u1.display_name.as_deref(), Some("user001"));
    assert_eq!(fake.count("GET", "/ocs/v2.php/cloud/users/details"), 3);
}

#[tokio::test]
async fn wrong_credentials_are_a_permanent_error() {
    let (fake, _) = setup().await;
    let nc = NextcloudConnector::new(config(&fake, "wrong")).expect("connector");
    let err = nc
        .upsert_user(&user("alice"), None)
        .await
        .expect_err("refused");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("997"), "{err}");
    assert_eq!(fake.requests()[0].status, 401);
    assert_eq!(fake.state().users.len(), 1);
}

#[tokio::test]
async fn service_unavailable_is_transient_and_leaves_no_trace() {
    let (fake, nc) = setup().await;
    fake.set_outage(Outage::Status(503), OutageFor::Requests(1))
        .await;
    let err = nc.upsert_user(&user("alice"), None).await.expect_err("503");
    assert!(err.is_transient(), "{err:?}");
    assert!(!fake.state().users.contains_key("alice"));
    // The outage lasted one request.
    nc.upsert_user(&user("alice"), None)
        .await
        .expect("after the outage");
    assert_eq!(fake.state().users["alice"].email, "alice@example.org");
}

#[tokio::test]
async fn refused_connections_are_transient_until_the_app_is_back() {
    let (fake, nc) = setup().await;
    fake.set_outage(Outage::Refuse, OutageFor::UntilCleared)
        .await;
    for _ in 0..2 {
        let err = nc
            .upsert_user(&user("alice"), None)
            .await
            .expect_err("refused");
        assert!(err.is_transient(), "{err:?}");
    }
    assert!(fake.requests().is_empty());
    fake.clear_outage().await;
    nc.upsert_user(&user("alice"), None).await.expect("back");
    assert_eq!(fake.count("POST", USERS), 1);
}

#[tokio::test]
async fn a_timeout_after_the_effect_is_transient_and_the_retry_creates_nothing_twice() {
    let (fake, _) = setup().await;
    let http = outbound::Client::new(outbound::Limits {
        timeout: Duration::from_millis(200),
        ..outbound::Limits::default()
    })
    .expect("client");
    let nc = NextcloudConnector::with_client(config(&fake, "app-pass"), http).expect("connector");
    // The marker group exists already.
    nc.upsert_user(&user("bob"), None).await.expect("bob");
    fake.set_outage(
        Outage::Delay(Duration::from_millis(600)),
        OutageFor::Requests(1),
    )
    .await;
    let err = nc
        .upsert_user(&user("alice"), None)
        .await
        .expect_err("timed out");
    assert!(err.is_transient(), "{err:?}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The first POST took effect; the retry finds the user (102) and stops there.
    assert_eq!(
        nc.upsert_user(&user("alice"), None).await.expect("retry"),
        "alice"
    );
    assert_eq!(fake.state().users.len(), 3);
    assert_eq!(fake.count("POST", USERS), 3);
}

/// The fake itself: the documented envelopes of v1 and v2.
#[tokio::test]
async fn the_fake_answers_ocs_envelopes_like_the_documentation() {
    let (fake, nc) = setup().await;
    nc.upsert_user(&user("alice"), None).await.expect("created");
    let http = reqwest::Client::new();
    let post = |version: &str| {
        http.post(format!(
            "{}/ocs/{version}/cloud/users?format=json",
            fake.base_url()
        ))
        .basic_auth("admin", Some("app-pass"))
        .header("OCS-APIRequest", "true")
        .form(&[("userid", "alice"), ("password", "Secret-123456")])
    };
    let v1 = post("v1.php").send().await.expect("v1");
    assert_eq!(v1.status(), 200);
    let body: serde_json::Value = v1.json().await.expect("json");
    assert_eq!(body["ocs"]["meta"]["statuscode"], 102);
    assert_eq!(body["ocs"]["meta"]["status"], "failure");

    let v2 = post("v2.php").send().await.expect("v2");
    assert_eq!(v2.status(), 400);
    let body: serde_json::Value = v2.json().await.expect("json");
    assert_eq!(body["ocs"]["meta"]["statuscode"], 102);

    // Without OCS-APIRequest: refused.
    let resp = http
        .get(format!(
            "{}/ocs/v2.php/cloud/users?format=json",
            fake.base_url()
        ))
        .basic_auth("admin", Some("app-pass"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);

    // XML unless JSON is asked for.
    let resp = http
        .get(format!("{}/ocs/v1.php/cloud/users/alice", fake.base_url()))
        .basic_auth("admin", Some("app-pass"))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .expect("sent");
    let text = resp.text().await.expect("text");
    assert!(text.contains("<statuscode>100</statuscode>"), "{text}");
    assert!(text.contains("<email>alice@example.org</email>"), "{text}");
}

#[tokio::test]
async fn a_base_url_without_ocs_is_a_permanent_error_not_a_missing_user() {
    let (fake, _) = setup().await;
    let mut cfg = config(&fake, "app-pass");
    cfg.base_url = format!("{}/not-nextcloud", fake.base_url());
    let nc = NextcloudConnector::new(cfg).expect("connector");
    let err = nc.delete_user("alice").await.expect_err("no OCS here");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    let err = nc
        .upsert_user(&user("alice"), Some("alice"))
        .await
        .expect_err("no OCS here");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn user_ids_with_spaces_and_apostrophes_reach_the_right_account() {
    let (fake, nc) = setup().await;
    let mut frank = user("Frank O'Neil");
    frank.email = Some("frank@example.org".into());
    let id = nc.upsert_user(&frank, None).await.expect("created");
    assert_eq!(id, "Frank O'Neil");
    nc.set_user_active(&id, false).await.expect("disabled");
    assert!(!fake.state().users["Frank O'Neil"].enabled);
    nc.delete_user(&id).await.expect("deleted");
    assert_eq!(fake.state().users.len(), 1);
}

#[tokio::test]
async fn the_fake_can_go_down_and_come_back_repeatedly() {
    let (fake, nc) = setup().await;
    for round in 0..3 {
        fake.set_outage(Outage::Refuse, OutageFor::UntilCleared)
            .await;
        let err = nc.list_users().await.expect_err("down");
        assert!(err.is_transient(), "round {round}: {err:?}");
        fake.clear_outage().await;
        nc.list_users().await.expect("up");
    }
    fake.set_outage(Outage::Status(502), OutageFor::Requests(2))
        .await;
    assert!(nc.list_users().await.expect_err("1st").is_transient());
    assert!(nc.list_users().await.expect_err("2nd").is_transient());
    nc.list_users().await.expect("3rd");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[statuses.len() - 3..], &[502, 502, 200]);
}

#[tokio::test]
async fn list_users_reports_the_last_login() {
    let (fake, nc) = setup().await;
    nc.upsert_user(&user("alice"), None).await.expect("alice");
    nc.upsert_user(&user("bob"), None).await.expect("bob");
    // Nextcloud keeps seconds: the milliseconds are dropped.
    fake.set_last_login("alice", 1_700_000_000_123);

    // On the wire: `lastLogin` in milliseconds, 0 for never.
    for (id, want) in [("alice", 1_700_000_000_000_i64), ("bob", 0)] {
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!("{}{USERS}/{id}?format=json", fake.base_url()))
            .basic_auth("admin", Some("app-pass"))
            .header("OCS-APIRequest", "true")
            .send()
            .await
            .expect("get user")
            .json()
            .await
            .expect("json");
        assert_eq!(v["ocs"]["data"]["lastLogin"], want, "{id}: {v}");
    }

    fake.clear_requests();
    let users = nc.list_users().await.expect("listed");
    let last = |id: &str| {
        users
            .iter()
            .find(|u| u.app_id == id)
            .unwrap_or_else(|| panic!("{id} listed"))
            .last_active_ms
    };
    assert_eq!(last("alice"), Some(1_700_000_000_000));
    assert_eq!(last("bob"), None, "never signed in");
    assert_eq!(last("admin"), None);
    // The details listing carries it: no request per user.
    assert_eq!(fake.requests().len(), 1, "{:?}", fake.requests());
}
