//! The Rocket.Chat connector against the fake Rocket.Chat (`provision::fakes`),
//! which is written from the official REST API documentation.

use provision::connectors::rocketchat::{RocketChatConfig, RocketChatConnector, LIAISON_FIELD};
use provision::fakes::{
    spawn_rocketchat, FakeApp, Outage, OutageFor, RcRoom, RcUser, RocketChatState,
};
use provision::{Connector, DeliveryError, GroupSpec, GroupsAs, UserSpec};

const ADMIN: &str = "adminUserId000001";
const TOKEN: &str = "personal-access-token";

async fn setup(groups_as: GroupsAs) -> (FakeApp<RocketChatState>, RocketChatConnector) {
    let fake = spawn_rocketchat(ADMIN, TOKEN).await.expect("fake starts");
    let rc = RocketChatConnector::new(config(&fake, TOKEN, groups_as)).expect("connector");
    (fake, rc)
}

fn config(fake: &FakeApp<RocketChatState>, token: &str, groups_as: GroupsAs) -> RocketChatConfig {
    RocketChatConfig {
        base_url: fake.base_url(),
        user_id: ADMIN.into(),
        token: token.into(),
        groups_as,
    }
}

fn user(name: &str) -> UserSpec {
    UserSpec {
        scim_id: format!("scim-{name}"),
        external_id: None,
        user_name: name.into(),
        display_name: None,
        given_name: Some("Given".into()),
        family_name: Some(name.into()),
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

fn by_username(fake: &FakeApp<RocketChatState>, username: &str) -> RcUser {
    fake.state()
        .user_by_username(username)
        .cloned()
        .expect("user exists")
}

#[tokio::test]
async fn creates_a_verified_tagged_user_with_a_mapped_username() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    let u = user("alice@example.org");
    let id = rc.upsert_user(&u, None).await.expect("created");
    let alice = by_username(&fake, "alice_example.org");
    assert_eq!(alice.id, id);
    assert_eq!(alice.name, "Given alice@example.org");
    assert_eq!(alice.email, "alice@example.org@example.org");
    assert!(alice.verified);
    assert!(alice.active);
    assert_eq!(alice.custom_fields[LIAISON_FIELD], "scim-alice@example.org");
}

#[tokio::test]
async fn upserting_twice_creates_once_and_writes_nothing_more() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    let u = user("alice");
    let id = rc.upsert_user(&u, None).await.expect("first");
    let before = fake.state();
    assert_eq!(rc.upsert_user(&u, None).await.expect("second"), id);
    assert_eq!(rc.upsert_user(&u, Some(&id)).await.expect("third"), id);
    assert_eq!(fake.state(), before);
    assert_eq!(fake.count("POST", "/api/v1/users.create"), 1);
    assert_eq!(fake.count("POST", "/api/v1/users.update"), 0);
}

#[tokio::test]
async fn updates_name_email_and_username_by_id() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    let mut u = user("alice");
    let id = rc.upsert_user(&u, None).await.expect("created");
    u.user_name = "alice.liddell".into();
    u.display_name = Some("Alice Liddell".into());
    u.email = Some("liddell@example.org".into());
    assert_eq!(rc.upsert_user(&u, Some(&id)).await.expect("updated"), id);
    let state = fake.state();
    let alice = &state.users[&id];
    assert_eq!(alice.username, "alice.liddell");
    assert_eq!(alice.name, "Alice Liddell");
    assert_eq!(alice.email, "liddell@example.org");
    assert_eq!(fake.count("POST", "/api/v1/users.update"), 1);
}

#[tokio::test]
async fn a_username_taken_by_another_account_is_a_collision() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    fake.with_state(|s| {
        s.users.insert(
            "humanBob".into(),
            RcUser::new("humanBob", "bob", "bob@elsewhere.org"),
        );
    });
    for _ in 0..2 {
        let err = rc
            .upsert_user(&user("bob"), None)
            .await
            .expect_err("collision");
        assert!(matches!(err, DeliveryError::Collision(_)), "{err:?}");
    }
    assert_eq!(fake.count("POST", "/api/v1/users.create"), 0);
    assert_eq!(by_username(&fake, "bob").email, "bob@elsewhere.org");

    // Same for an e-mail already used by another account.
    fake.with_state(|s| {
        s.users.insert(
            "humanCarl".into(),
            RcUser::new("humanCarl", "carl2", "carl@example.org"),
        );
    });
    let err = rc
        .upsert_user(&user("carl"), None)
        .await
        .expect_err("collision");
    assert!(matches!(err, DeliveryError::Collision(_)), "{err:?}");

    // Renaming onto a taken username too.
    let id = rc.upsert_user(&user("dora"), None).await.expect("dora");
    let mut dora = user("dora");
    dora.user_name = "bob".into();
    let err = rc
        .upsert_user(&dora, Some(&id))
        .await
        .expect_err("collision");
    assert!(matches!(err, DeliveryError::Collision(_)), "{err:?}");
}

#[tokio::test]
async fn an_account_tagged_for_this_user_is_adopted_after_a_lost_answer() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    fake.with_state(|s| {
        let mut eve = RcUser::new("eveId", "eve", "eve@example.org");
        eve.custom_fields
            .insert(LIAISON_FIELD.into(), serde_json::json!("scim-eve"));
        s.users.insert("eveId".into(), eve);
    });
    assert_eq!(
        rc.upsert_user(&user("eve"), None).await.expect("adopted"),
        "eveId"
    );
    assert_eq!(fake.count("POST", "/api/v1/users.create"), 0);
}

#[tokio::test]
async fn a_user_without_email_is_refused_permanently() {
    let (_fake, rc) = setup(GroupsAs::Rooms).await;
    let mut u = user("nomail");
    u.email = None;
    let err = rc.upsert_user(&u, None).await.expect_err("refused");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn active_status_and_delete_are_idempotent() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    let mut u = user("alice");
    u.active = false;
    let id = rc.upsert_user(&u, None).await.expect("created inactive");
    assert!(!fake.state().users[&id].active);
    for _ in 0..2 {
        rc.set_user_active(&id, true).await.expect("activated");
        assert!(fake.state().users[&id].active);
    }
    for _ in 0..2 {
        rc.set_user_active(&id, false).await.expect("deactivated");
        assert!(!fake.state().users[&id].active);
    }
    for _ in 0..2 {
        rc.delete_user(&id).await.expect("deleted");
    }
    assert!(!fake.state().users.contains_key(&id));
    let err = rc.set_user_active(&id, true).await.expect_err("gone");
    assert!(matches!(err, DeliveryError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn private_groups_and_their_members() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    let uid = rc.upsert_user(&user("alice"), None).await.expect("user");
    let g = group("g1", "Board members");
    let gid = rc.upsert_group(&g, None).await.expect("created");
    assert_eq!(rc.upsert_group(&g, None).await.expect("again"), gid);
    assert_eq!(rc.upsert_group(&g, Some(&gid)).await.expect("known"), gid);
    assert_eq!(fake.count("POST", "/api/v1/groups.create"), 1);
    assert_eq!(fake.state().rooms[&gid].name, "Board-members");

    rc.upsert_group(&group("g1", "Board"), Some(&gid))
        .await
        .expect("renamed");
    assert_eq!(fake.state().rooms[&gid].name, "Board");

    for _ in 0..2 {
        rc.add_member(&gid, &uid).await.expect("invited");
    }
    let groups = rc.list_groups().await.expect("listed");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].display_name, "Board");
    // The service account (owner of the room) is left out.
    assert_eq!(groups[0].members, vec![uid.clone()]);

    for _ in 0..2 {
        rc.remove_member(&gid, &uid).await.expect("kicked");
    }
    assert!(!fake.state().rooms[&gid].members.contains(&uid));

    for _ in 0..2 {
        rc.delete_group(&gid).await.expect("deleted");
    }
    assert!(fake.state().rooms.is_empty());
    let err = rc.add_member(&gid, &uid).await.expect_err("room gone");
    assert!(matches!(err, DeliveryError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn a_room_name_taken_by_someone_else_is_a_collision() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    fake.with_state(|s| {
        s.rooms.insert(
            "otherRoom".into(),
            RcRoom {
                id: "otherRoom".into(),
                name: "Board".into(),
                creator: "rocket.cat".into(),
                members: Default::default(),
                custom_fields: Default::default(),
                team_id: None,
                team_main: false,
            },
        );
    });
    let err = rc
        .upsert_group(&group("g1", "Board"), None)
        .await
        .expect_err("taken");
    assert!(matches!(err, DeliveryError::Collision(_)), "{err:?}");
    assert_eq!(fake.count("POST", "/api/v1/groups.create"), 0);
}

#[tokio::test]
async fn teams_and_their_members() {
    let (fake, rc) = setup(GroupsAs::Spaces).await;
    let uid = rc.upsert_user(&user("alice"), None).await.expect("user");
    let g = group("g1", "Gardening");
    let tid = rc.upsert_group(&g, None).await.expect("created");
    assert_eq!(rc.upsert_group(&g, None).await.expect("again"), tid);
    assert_eq!(fake.count("POST", "/api/v1/teams.create"), 1);
    assert_eq!(fake.state().teams[&tid].kind, 1);

    rc.upsert_group(&group("g1", "Garden"), Some(&tid))
        .await
        .expect("renamed");
    assert_eq!(fake.state().teams[&tid].name, "Garden");

    for _ in 0..2 {
        rc.add_member(&tid, &uid).await.expect("added");
    }
    let teams = rc.list_groups().await.expect("listed");
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0].app_id, tid);
    assert_eq!(teams[0].members, vec![uid.clone()]);

    for _ in 0..2 {
        rc.remove_member(&tid, &uid).await.expect("removed");
    }
    assert!(!fake.state().team_members(&tid).contains(&uid));

    for _ in 0..2 {
        rc.delete_group(&tid).await.expect("deleted");
    }
    assert!(fake.state().teams.is_empty());
}

#[tokio::test]
async fn rooms_mode_does_not_list_teams_main_rooms_and_none_mode_provisions_no_group() {
    let (fake, teams) = setup(GroupsAs::Spaces).await;
    teams
        .upsert_group(&group("t", "Team"), None)
        .await
        .expect("team");
    let rooms = RocketChatConnector::new(config(&fake, TOKEN, GroupsAs::Rooms)).expect("rooms");
    assert!(rooms.list_groups().await.expect("listed").is_empty());

    let none = RocketChatConnector::new(config(&fake, TOKEN, GroupsAs::None)).expect("none");
    assert!(none.list_groups().await.expect("listed").is_empty());
    let err = none
        .upsert_group(&group("g", "G"), None)
        .await
        .expect_err("none");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn list_users_pages_through_everything() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    fake.with_state(|s| {
        for i in 0..150 {
            let id = format!("u{i:03}");
            s.users.insert(
                id.clone(),
                RcUser::new(&id, &id, &format!("{id}@example.org")),
            );
        }
    });
    let users = rc.list_users().await.expect("listed");
    // 150 + the admin + rocket.cat.
    assert_eq!(users.len(), 152);
    assert_eq!(fake.count("GET", "/api/v1/users.list"), 2);
    let u7 = users.iter().find(|u| u.app_id == "u007").expect("u007");
    assert_eq!(u7.email.as_deref(), Some("u007@example.org"));
}

#[tokio::test]
async fn a_wrong_token_is_a_permanent_error() {
    let (fake, _) = setup(GroupsAs::Rooms).await;
    let rc = RocketChatConnector::new(config(&fake, "wrong", GroupsAs::Rooms)).expect("connector");
    let err = rc
        .upsert_user(&user("alice"), None)
        .await
        .expect_err("refused");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert_eq!(fake.requests()[0].status, 401);
}

#[tokio::test]
async fn service_unavailable_is_transient() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    fake.set_outage(Outage::Status(503), OutageFor::UntilCleared)
        .await;
    for _ in 0..3 {
        let err = rc.upsert_user(&user("alice"), None).await.expect_err("503");
        assert!(err.is_transient(), "{err:?}");
    }
    fake.clear_outage().await;
    rc.upsert_user(&user("alice"), None)
        .await
        .expect("after the outage");
    assert_eq!(fake.count("POST", "/api/v1/users.create"), 1);
}

#[tokio::test]
async fn refused_connections_are_transient_until_the_app_is_back() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    fake.set_outage(Outage::Refuse, OutageFor::UntilCleared)
        .await;
    let err = rc
        .upsert_user(&user("alice"), None)
        .await
        .expect_err("refused");
    assert!(err.is_transient(), "{err:?}");
    assert!(fake.requests().is_empty());
    fake.clear_outage().await;
    rc.upsert_user(&user("alice"), None).await.expect("back");
    assert_eq!(fake.count("POST", "/api/v1/users.create"), 1);
}

/// The fake itself: the documented failure envelope.
#[tokio::test]
async fn the_fake_answers_the_documented_envelopes() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    rc.upsert_user(&user("alice"), None).await.expect("created");
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/api/v1/users.create", fake.base_url()))
        .header("X-User-Id", ADMIN)
        .header("X-Auth-Token", TOKEN)
        .json(&serde_json::json!({
            "username": "alice", "name": "A", "email": "other@example.org", "password": "x"
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["success"], false);
    assert_eq!(body["errorType"], "error-field-unavailable");

    let resp = http
        .get(format!("{}/api/v1/users.list", fake.base_url()))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "error");
}

#[tokio::test]
async fn a_base_url_without_the_api_is_a_permanent_error_not_a_missing_user() {
    let (fake, _) = setup(GroupsAs::Rooms).await;
    let mut cfg = config(&fake, TOKEN, GroupsAs::Rooms);
    cfg.base_url = format!("{}/not-rocketchat", fake.base_url());
    let rc = RocketChatConnector::new(cfg).expect("connector");
    let err = rc.delete_user("someone").await.expect_err("no API here");
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
}

#[tokio::test]
async fn list_users_reports_the_last_login() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    let alice = rc.upsert_user(&user("alice"), None).await.expect("alice");
    let bob = rc.upsert_user(&user("bob"), None).await.expect("bob");
    fake.set_last_login(&alice, 1_481_156_535_167);

    // On the wire: an ISO 8601 date, absent for an account that never signed in.
    let info = |id: String| {
        let url = format!("{}/api/v1/users.info?userId={id}", fake.base_url());
        async move {
            reqwest::Client::new()
                .get(url)
                .header("X-User-Id", ADMIN)
                .header("X-Auth-Token", TOKEN)
                .send()
                .await
                .expect("users.info")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let v = info(alice.clone()).await;
    assert_eq!(v["user"]["lastLogin"], "2016-12-08T00:22:15.167Z", "{v}");
    let v = info(bob.clone()).await;
    assert!(v["user"].get("lastLogin").is_none(), "{v}");

    fake.clear_requests();
    let users = rc.list_users().await.expect("listed");
    let last = |id: &str| {
        users
            .iter()
            .find(|u| u.app_id == id)
            .unwrap_or_else(|| panic!("{id} listed"))
            .last_active_ms
    };
    assert_eq!(last(&alice), Some(1_481_156_535_167));
    assert_eq!(last(&bob), None, "never signed in");
    // One page, and Rocket.Chat's default projection (no `fields`).
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        !reqs[0].query.as_deref().unwrap_or("").contains("fields"),
        "{reqs:?}"
    );
}

#[tokio::test]
async fn the_service_account_and_the_bot_are_never_changed() {
    let (fake, rc) = setup(GroupsAs::Rooms).await;
    let before = fake.state();
    let mut admin = user("liaison");
    admin.email = Some("taken-over@example.org".into());
    admin.active = false;
    // By name (the admin carries no tag), through a recorded id, or through a
    // tag forged onto it.
    let r = rc.upsert_user(&admin, None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    let r = rc.upsert_user(&admin, Some(ADMIN)).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    fake.with_state(|s| {
        let a = s.users.get_mut(ADMIN).unwrap();
        a.custom_fields
            .insert(LIAISON_FIELD.into(), serde_json::json!("scim-liaison"));
    });
    let tagged = fake.state();
    let r = rc.upsert_user(&admin, None).await;
    assert!(matches!(r, Err(DeliveryError::Collision(_))), "{r:?}");
    for id in [ADMIN, "rocket.cat"] {
        assert!(rc.set_user_active(id, false).await.is_err());
        assert!(rc.delete_user(id).await.is_err());
    }
    assert_eq!(fake.state().users, tagged.users);
    assert_eq!(fake.state().users["rocket.cat"], before.users["rocket.cat"]);
    assert_eq!(fake.count("POST", "/api/v1/users.update"), 0);
    assert_eq!(fake.count("POST", "/api/v1/users.setActiveStatus"), 0);
    assert_eq!(fake.count("POST", "/api/v1/users.delete"), 0);
}
