//! Activity metering end to end on every store under test: the Keycloak webhook
//! (signatures, formats, duplicates), restarts mid-period, several sources,
//! closing, late events, and a privacy check of the whole database after close.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{apps, Answer, App, TEST_KEK};
use hmac::{Hmac, Mac};
use liaison::config::MeteringConfig;
use liaison::metering::{MeterError, Metering, Signal, KEYCLOAK};
use meter::keyed::{person_hash, Kek, PeriodKey, SEALED_LEN};
use serde_json::{json, Value};
use sha2::Sha256;
use store::{PeriodKeyState, Store};
use time::OffsetDateTime;

const SECRET: &str = "3f1c0d9e8b7a65544332211000ffeeddccbbaa99887766554433221100aabbcc";

fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// p2-inc keycloak-events' webhook form.
fn p2_event(kind: &str, user: &str) -> Value {
    json!({
        "uid": "0b5c3a1e-5c2f-4d4e-9a2a-6b1f5d3c2e10",
        "time": OffsetDateTime::now_utc().unix_timestamp() * 1000,
        "realmId": "acme",
        "type": format!("access.{kind}"),
        "authDetails": {
            "realmId": "acme", "clientId": "nextcloud", "userId": user,
            "ipAddress": "192.0.2.44", "username": "ignored", "sessionId": "s-1"
        },
        "details": {"auth_method": "openid-connect", "redirect_uri": "https://cloud.acme.example/"}
    })
}

/// keycloak-event-listener-http's form (Keycloak's own `Event`).
fn kc_event(kind: &str, user: &str) -> Value {
    json!({
        "time": OffsetDateTime::now_utc().unix_timestamp() * 1000,
        "type": kind, "realmId": "acme", "clientId": "matrix", "userId": user,
        "sessionId": "s-2", "ipAddress": "198.51.100.7", "details": {"username": "x"}
    })
}

async fn post_events(app: &App, org: &str, body: &[u8], headers: &[(&str, String)]) -> Answer {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("/o/{org}/events/keycloak"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    app.send(req.body(Body::from(body.to_vec())).unwrap()).await
}

async fn signed(app: &App, org: &str, events: &Value) -> Answer {
    signed_with(app, org, events, SECRET).await
}

async fn signed_with(app: &App, org: &str, events: &Value, secret: &str) -> Answer {
    let body = serde_json::to_vec(events).unwrap();
    let sig = sign(&body, secret);
    post_events(app, org, &body, &[("x-keycloak-signature", sig)]).await
}

async fn org_with_secret(app: &App, slug: &str) -> (String, i64) {
    let token = app.org(slug).await;
    let org = app.store.org_by_slug(slug).await.unwrap().unwrap();
    app.store
        .set_webhook_secret(org.id, SECRET.as_bytes())
        .await
        .unwrap();
    (token, org.id)
}

async fn scim_user(
    app: &App,
    org: &str,
    token: &str,
    user_name: &str,
    external_id: &str,
) -> String {
    let a = app
        .call(
            Method::POST,
            &format!("/o/{org}/scim/v2/Users"),
            Some(token),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name,
                "externalId": external_id,
                "emails": [{"value": format!("{user_name}@example.org"), "primary": true}]
            })),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}: {}", app.label, a.body);
    a.body["id"].as_str().unwrap().to_owned()
}

fn metering(store: &Store) -> Metering {
    metering_with(store, Some(Kek::from_bytes(TEST_KEK)))
}

fn metering_with(store: &Store, kek: Option<Kek>) -> Metering {
    Metering::new(
        store.clone(),
        MeteringConfig::default(),
        Default::default(),
        kek,
    )
}

fn label_now() -> String {
    let now = OffsetDateTime::now_utc();
    format!("{}-{:02}", now.year(), u8::from(now.month()))
}

#[tokio::test]
async fn people_count_once_across_duplicates_formats_sources_and_restarts() {
    for app in apps().await {
        let (token, org_id) = org_with_secret(&app, "acme").await;
        scim_user(&app, "acme", &token, "alice", "kc-a").await;
        scim_user(&app, "acme", &token, "bob", "kc-b").await;

        let batch = json!([
            p2_event("LOGIN", "kc-a"),
            p2_event("LOGIN", "kc-a"),
            p2_event("REFRESH_TOKEN", "kc-a"),
            kc_event("CODE_TO_TOKEN", "kc-b"),
            kc_event("LOGOUT", "kc-c"),
            kc_event("LOGIN_ERROR", "kc-d"),
            p2_event("LOGIN", "kc-unknown"),
        ]);
        let a = signed(&app, "acme", &batch).await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", app.label, a.body);
        assert_eq!(a.body["recorded"], 3, "{}: {}", app.label, a.body);
        assert_eq!(a.body["repeated"], 2, "{}", app.label);
        // One event per request, as p2-inc sends them.
        for _ in 0..3 {
            let a = signed(&app, "acme", &p2_event("LOGIN", "kc-b")).await;
            assert_eq!(a.status, StatusCode::OK, "{}", app.label);
            assert_eq!(a.body["recorded"], 0, "{}", app.label);
        }

        // A restart: a new process, empty caches, the same database.
        let m = metering(&app.store);
        let got = m
            .ingest(
                org_id,
                KEYCLOAK,
                &[Signal {
                    subject: "kc-a".into(),
                    username: None,
                    at_ms: None,
                    resolved: false,
                }],
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert_eq!((got.recorded, got.repeated), (0, 1), "{}", app.label);

        // Apps report the same people (by person id): the total does not move.
        let polled: Vec<Signal> = ["kc-a", "kc-b"]
            .iter()
            .map(|p| Signal {
                subject: (*p).into(),
                username: None,
                at_ms: Some(OffsetDateTime::now_utc().unix_timestamp() * 1000),
                resolved: true,
            })
            .collect();
        let got = m
            .ingest(org_id, "nextcloud", &polled, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(got.recorded, 2, "{}", app.label);

        let counts = app.store.period_counts(org_id, &label_now()).await.unwrap();
        assert_eq!(
            counts.total, 3,
            "{}: alice, bob and the unknown subject",
            app.label
        );
        assert_eq!(counts.per_source.get(KEYCLOAK), Some(&3), "{}", app.label);
        assert_eq!(
            counts.per_source.get("nextcloud"),
            Some(&2),
            "{}",
            app.label
        );

        let period = m.period(&label_now()).unwrap();
        let statements = m.statements(&period, None).await.unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].active_accounts, 3);
        assert!(!statements[0].closed);

        // The admin API shows the same statement to the organisation.
        let a = app
            .call(
                Method::GET,
                &format!("/o/acme/admin/meter/statements/{}", label_now()),
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", app.label, a.body);
        assert_eq!(a.body["active_accounts"], 3);
        assert_eq!(a.body["per_app"]["nextcloud"], 2);
    }
}

#[tokio::test]
async fn an_app_named_keycloak_is_counted_apart_from_the_identity_provider() {
    for app in apps().await {
        let (token, org_id) = org_with_secret(&app, "acme").await;
        scim_user(&app, "acme", &token, "alice", "kc-a").await;
        let a = signed(&app, "acme", &p2_event("LOGIN", "kc-a")).await;
        assert_eq!(a.body["recorded"], 1, "{}: {}", app.label, a.body);
        // The same person, active in an app the organisation named "keycloak".
        let got = metering(&app.store)
            .ingest(
                org_id,
                "keycloak",
                &[Signal {
                    subject: "kc-a".into(),
                    username: None,
                    at_ms: None,
                    resolved: false,
                }],
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert_eq!(got.recorded, 1, "{}: a source of its own", app.label);
        let counts = app.store.period_counts(org_id, &label_now()).await.unwrap();
        assert_eq!(counts.total, 1, "{}", app.label);
        assert_eq!(
            counts.per_source.get(KEYCLOAK),
            Some(&1),
            "{}: {:?}",
            app.label,
            counts.per_source
        );
        assert_eq!(
            counts.per_source.get("keycloak"),
            Some(&1),
            "{}: {:?}",
            app.label,
            counts.per_source
        );
    }
}

#[tokio::test]
async fn forged_and_malformed_webhooks_are_refused_and_store_nothing() {
    for app in apps().await {
        let (_token, org_id) = org_with_secret(&app, "acme").await;
        let body = serde_json::to_vec(&p2_event("LOGIN", "kc-a")).unwrap();
        let forged = sign(&body, "not-the-secret");
        // (organisation, headers); every one must be refused with 401.
        type Case<'a> = (&'a str, Vec<(&'a str, String)>);
        let cases: Vec<Case> = vec![
            ("acme", vec![("x-keycloak-signature", forged.clone())]),
            ("acme", vec![]),
            ("acme", vec![("x-keycloak-signature", "zz".into())]),
            ("acme", vec![("authorization", "Bearer wrong".into())]),
            // A valid signature does not open another organisation's feed.
            (
                "nobody",
                vec![("x-keycloak-signature", sign(&body, SECRET))],
            ),
        ];
        for (org, headers) in cases {
            let a = post_events(&app, org, &body, &headers).await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{}: {headers:?}",
                app.label
            );
            assert_eq!(a.body["error"], "unauthorized");
        }
        // A signed body tampered with in transit.
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let a = post_events(
            &app,
            "acme",
            &tampered,
            &[("x-keycloak-signature", sign(&body, SECRET))],
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", app.label);

        for bad in [
            b"{not json".to_vec(),
            b"42".to_vec(),
            serde_json::to_vec(&json!([p2_event("LOGIN", "kc-a"), "oops"])).unwrap(),
            serde_json::to_vec(&json!({"type": "LOGIN", "time": 1})).unwrap(),
        ] {
            let sig = sign(&bad, SECRET);
            let a = post_events(&app, "acme", &bad, &[("x-keycloak-signature", sig)]).await;
            assert_eq!(
                a.status,
                StatusCode::BAD_REQUEST,
                "{}: {}",
                app.label,
                String::from_utf8_lossy(&bad)
            );
        }
        // Nothing was recorded, not even the valid event in the rejected array.
        assert_eq!(
            app.store.period_key(org_id, &label_now()).await.unwrap(),
            PeriodKeyState::Absent
        );
        assert!(
            app.store.open_periods().await.unwrap().is_empty(),
            "{}",
            app.label
        );
    }
}

#[tokio::test]
async fn after_close_nothing_about_the_person_remains_in_metering_data() {
    for app in apps().await {
        let (token, org_id) = org_with_secret(&app, "acme").await;
        let subject = "kc-7f3a9c1e-alice";
        let user_name = "alice.martin";
        let id = scim_user(&app, "acme", &token, user_name, subject).await;
        let a = signed(
            &app,
            "acme",
            &json!([
                p2_event("LOGIN", subject),
                kc_event("REFRESH_TOKEN", subject)
            ]),
        )
        .await;
        assert_eq!(a.body["recorded"], 1, "{}: {}", app.label, a.body);
        let m = metering(&app.store);
        m.ingest(
            org_id,
            "matrix",
            &[Signal {
                subject: subject.into(),
                username: None,
                at_ms: None,
                resolved: true,
            }],
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();

        let label = label_now();
        let PeriodKeyState::Open(sealed) = app.store.period_key(org_id, &label).await.unwrap()
        else {
            panic!("{}: the period is open", app.label)
        };
        let key = Kek::from_bytes(TEST_KEK)
            .open(&sealed, org_id, &label)
            .unwrap();
        let hash = person_hash(&key, subject);
        let before = store::testing::find_everywhere(&app.store, &hash).await;
        assert!(
            before.iter().any(|w| w == "meter_seen.hash"),
            "{}: the keyed hash is in meter_seen while the period is open: {before:?}",
            app.label
        );

        let period = m.period(&label).unwrap();
        let closed = m
            .close(&period, None, true, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(closed[0].1.total, 1, "{}", app.label);

        // The keyed hash and the period key are gone from every table (and, on
        // SQLite, from the raw bytes of the database file and its log).
        for (what, needle) in [
            ("keyed hash", hash.to_vec()),
            ("period key", key.as_bytes().to_vec()),
            ("sealed period key", sealed.clone()),
        ] {
            let found = store::testing::find_everywhere(&app.store, &needle).await;
            assert!(
                found.is_empty(),
                "{}: the {what} remains in {found:?}",
                app.label
            );
        }
        // The person's identifiers are in the directory, never in metering data.
        let email = format!("{user_name}@example.org");
        for needle in [id.as_str(), user_name, email.as_str(), subject] {
            let found = store::testing::find_everywhere(&app.store, needle.as_bytes()).await;
            let metering_tables: Vec<_> = found
                .iter()
                .filter(|w| w.starts_with("meter_") || w.starts_with("file:"))
                .filter(|w| !w.starts_with("file:"))
                .collect();
            assert!(
                metering_tables.is_empty(),
                "{}: {needle} found in {metering_tables:?}",
                app.label
            );
            assert!(
                found.iter().any(|w| w.starts_with("resources.")),
                "{}: sanity, {needle} is in the directory",
                app.label
            );
        }
        // What remains: the counts.
        let counts = app.store.period_counts(org_id, &label).await.unwrap();
        assert_eq!(counts.total, 1);
        assert_eq!(counts.per_source.get(KEYCLOAK), Some(&1));
        assert_eq!(counts.per_source.get("matrix"), Some(&1));

        // A late event for the closed period is accepted (the sender must not
        // retry) but dropped: nothing is stored and the count does not change.
        let a = signed(&app, "acme", &p2_event("LOGIN", subject)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", app.label);
        assert_eq!(a.body["late"], 1, "{}: {}", app.label, a.body);
        let found = store::testing::find_everywhere(&app.store, &hash).await;
        assert!(found.is_empty(), "{}: {found:?}", app.label);
        assert_eq!(
            app.store.period_counts(org_id, &label).await.unwrap().total,
            1
        );
        assert_eq!(
            app.store.period_key(org_id, &label).await.unwrap(),
            PeriodKeyState::Closed
        );
    }
}

#[tokio::test]
async fn a_period_does_not_close_before_its_end_unless_forced() {
    for app in apps().await {
        org_with_secret(&app, "acme").await;
        let m = metering(&app.store);
        let period = m.period(&label_now()).unwrap();
        let err = m
            .close(&period, None, false, OffsetDateTime::now_utc())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("has not ended"), "{err}");
        // Past periods close (at zero when nothing was seen) and stay closed.
        let past = m.period("2020-01").unwrap();
        let closed = m
            .close(&past, None, false, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(closed[0].1.total, 0);
        let again = m
            .close(&past, None, false, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert!(again[0].1.already_closed);
        // An event dated in a long-closed period is late, whatever the clock says.
        let mut ev = p2_event("LOGIN", "kc-a");
        ev["time"] = json!(1_579_000_000_000_i64); // January 2020
        let a = signed(&app, "acme", &ev).await;
        assert_eq!(a.body["late"], 1, "{}: {}", app.label, a.body);
    }
}

/// Polling: the app's own last-activity field (here a Nextcloud fake written
/// from the OCS API docs, as Nextcloud cannot run in the test environment)
/// counts the people active in the period, merged with the webhook's.
#[tokio::test]
async fn polled_last_logins_count_with_webhook_activity() {
    std::env::set_var("LIAISON_METER_NC", "admin:app-pass");
    for app in apps().await {
        let (token, org_id) = org_with_secret(&app, "acme").await;
        let fake = provision::fakes::spawn_nextcloud("admin", "app-pass")
            .await
            .unwrap();
        let mut tx = app.store.begin().await.unwrap();
        tx.create_app(&store::AppRecord {
            id: 0,
            org_id,
            name: "cloud".into(),
            kind: store::AppKind::Nextcloud,
            base_url: fake.base_url(),
            credential: "env:LIAISON_METER_NC".into(),
            groups_as: store::GroupsAs::Groups,
            deprovision: store::Deprovision::Disable,
            adopt: store::Adopt::Never,
            settings: json!({}),
            created: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        scim_user(&app, "acme", &token, "alice", "kc-a").await;
        scim_user(&app, "acme", &token, "bob", "kc-b").await;
        scim_user(&app, "acme", &token, "carol", "kc-c").await;
        let worker = provision::worker::Worker::new(
            app.store.clone(),
            provision::worker::WorkerConfig::default(),
            provision::worker::WorkerMetrics::default(),
        );
        let round = worker.drain().await.unwrap();
        assert_eq!(round.delivered, 3, "{}: {round:?}", app.label);
        let users = fake.state().users;
        assert!(
            users.contains_key("alice") && users.contains_key("bob"),
            "{}: {:?}",
            app.label,
            users.keys()
        );

        let now_ms = OffsetDateTime::now_utc().unix_timestamp() * 1000;
        fake.set_last_login("alice", now_ms);
        fake.set_last_login("carol", 1_579_000_000_000); // January 2020: long closed
                                                         // The service account's own logins never count.
        fake.set_last_login("admin", now_ms);

        let m = metering(&app.store);
        let report = m.poll(OffsetDateTime::now_utc()).await.unwrap();
        assert!(
            report.failed.is_empty(),
            "{}: {:?}",
            app.label,
            report.failed
        );
        assert_eq!(report.ingested.recorded, 1, "{}: {report:?}", app.label);
        assert_eq!(report.ingested.late, 1, "{}: carol's old login", app.label);
        // Polling again finds nothing new.
        let again = m.poll(OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(again.ingested.recorded, 0, "{}", app.label);

        signed(
            &app,
            "acme",
            &json!([p2_event("LOGIN", "kc-a"), p2_event("LOGIN", "kc-b")]),
        )
        .await;
        let counts = app.store.period_counts(org_id, &label_now()).await.unwrap();
        assert_eq!(
            counts.total, 2,
            "{}: alice (both sources) and bob",
            app.label
        );
        assert_eq!(counts.per_source.get("cloud"), Some(&1));
        assert_eq!(counts.per_source.get(KEYCLOAK), Some(&2));
    }
}

/// Periods past their end and grace close by themselves (what `serve` runs
/// every minute); others stay open.
#[tokio::test]
async fn periods_past_end_and_grace_close_automatically() {
    for app in apps().await {
        let (_token, org_id) = org_with_secret(&app, "acme").await;
        let m = metering(&app.store);
        let old = m.period("2020-01").unwrap();
        app.store
            .open_period(
                org_id,
                "2020-01",
                old.start_micros(),
                old.end_micros(),
                &[1; 32],
            )
            .await
            .unwrap();
        app.store
            .record_seen(org_id, "2020-01", KEYCLOAK, &[[9; 32], [8; 32]])
            .await
            .unwrap();
        signed(&app, "acme", &p2_event("LOGIN", "kc-a")).await;
        let closed = m.close_due(OffsetDateTime::now_utc()).await.unwrap();
        assert_eq!(closed.len(), 1, "{}: only January 2020", app.label);
        assert_eq!((closed[0].1.as_str(), closed[0].2.total), ("2020-01", 2));
        let open = app.store.open_periods().await.unwrap();
        assert_eq!(open.len(), 1, "{}", app.label);
        assert_eq!(open[0].label, label_now());
        let found = store::testing::find_everywhere(&app.store, &[9; 32]).await;
        assert!(found.is_empty(), "{}: {found:?}", app.label);
    }
}

fn login(subject: &str) -> Signal {
    Signal {
        subject: subject.into(),
        username: None,
        at_ms: None,
        resolved: false,
    }
}

/// Two processes on one database: one closes the period; the other drops the
/// period's key and cached hashes at its next refresh, and counts nothing more
/// into the closed period.
#[tokio::test]
async fn a_period_closed_by_another_process_leaves_its_memory_at_the_next_refresh() {
    for app in apps().await {
        let (token, org_id) = org_with_secret(&app, "acme").await;
        scim_user(&app, "acme", &token, "alice", "kc-a").await;
        scim_user(&app, "acme", &token, "bob", "kc-b").await;
        scim_user(&app, "acme", &token, "carol", "kc-c").await;
        let label = label_now();
        let now = OffsetDateTime::now_utc;
        let closer = metering(&app.store);
        let other = metering(&app.store);
        let got = closer
            .ingest(org_id, "keycloak", &[login("kc-a")], now())
            .await;
        assert_eq!(got.unwrap().recorded, 1, "{}", app.label);
        let got = other
            .ingest(org_id, "keycloak", &[login("kc-b")], now())
            .await;
        assert_eq!(got.unwrap().recorded, 1, "{}", app.label);
        let held = vec![(org_id, label.clone())];
        assert_eq!(other.cached_periods(), held, "{}", app.label);
        // Refreshing an open period keeps it.
        assert_eq!(other.refresh().await.unwrap(), 0, "{}", app.label);
        assert_eq!(other.cached_periods(), held, "{}", app.label);

        let period = closer.period(&label).unwrap();
        let closed = closer.close(&period, None, true, now()).await.unwrap();
        assert_eq!(closed[0].1.total, 2, "{}", app.label);
        assert!(closer.cached_periods().is_empty(), "{}", app.label);

        assert_eq!(other.refresh().await.unwrap(), 1, "{}", app.label);
        assert!(
            other.cached_periods().is_empty(),
            "{}: the closed period's key and hashes are still in memory",
            app.label
        );

        // Activity after the close does not count into the closed period, from
        // either process, for a new person or one seen before.
        for m in [&other, &closer] {
            let got = m
                .ingest(org_id, "keycloak", &[login("kc-c"), login("kc-b")], now())
                .await
                .unwrap();
            assert_eq!((got.recorded, got.late), (0, 2), "{}", app.label);
            assert!(m.cached_periods().is_empty(), "{}", app.label);
        }
        let counts = app.store.period_counts(org_id, &label).await.unwrap();
        assert!(counts.closed, "{}", app.label);
        assert_eq!(counts.total, 2, "{}", app.label);
        assert_eq!(
            app.store.period_key(org_id, &label).await.unwrap(),
            PeriodKeyState::Closed,
            "{}",
            app.label
        );
    }
}

/// The period key is in the database only sealed under the key-encryption key:
/// a copy of the database holds neither the key nor the means to recompute a
/// person's hash; a wrong (or missing) key-encryption key records nothing and
/// opens no second key.
#[tokio::test]
async fn period_keys_are_stored_sealed_and_a_wrong_kek_records_nothing() {
    for app in apps().await {
        let (token, org_id) = org_with_secret(&app, "acme").await;
        scim_user(&app, "acme", &token, "alice", "kc-a").await;
        scim_user(&app, "acme", &token, "bob", "kc-b").await;
        let a = signed(&app, "acme", &p2_event("LOGIN", "kc-a")).await;
        assert_eq!(a.body["recorded"], 1, "{}: {}", app.label, a.body);
        let label = label_now();
        let PeriodKeyState::Open(sealed) = app.store.period_key(org_id, &label).await.unwrap()
        else {
            panic!("{}: the period is open", app.label)
        };
        assert_eq!(sealed.len(), SEALED_LEN, "{}", app.label);
        let key = Kek::from_bytes(TEST_KEK)
            .open(&sealed, org_id, &label)
            .unwrap();
        let hash = person_hash(&key, "kc-a");
        let found = store::testing::find_everywhere(&app.store, &hash).await;
        assert!(
            found.iter().any(|w| w == "meter_seen.hash"),
            "{}: sanity: {found:?}",
            app.label
        );
        // Every column of every table (and SQLite's files): no clear key.
        let found = store::testing::find_everywhere(&app.store, key.as_bytes()).await;
        assert!(
            found.is_empty(),
            "{}: the period key is in clear in {found:?}",
            app.label
        );
        // Without the key-encryption key the stored form gives no key that
        // recomputes the hash.
        assert!(
            sealed
                .windows(32)
                .all(|w| person_hash(&PeriodKey::from_slice(w).unwrap(), "kc-a") != hash),
            "{}",
            app.label
        );
        assert!(Kek::random().open(&sealed, org_id, &label).is_err());

        for (kek, says) in [
            (Some(Kek::random()), "must be the key-encryption key"),
            (None, "none is configured"),
        ] {
            let m = metering_with(&app.store, kek);
            let err = m
                .ingest(
                    org_id,
                    KEYCLOAK,
                    &[login("kc-b")],
                    OffsetDateTime::now_utc(),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, MeterError::Kek(_)), "{}: {err}", app.label);
            assert!(err.to_string().contains(says), "{}: {err}", app.label);
            assert!(m.cached_periods().is_empty(), "{}", app.label);
        }
        let err = metering_with(&app.store, Some(Kek::random()))
            .prepare()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("kek_file"), "{}: {err}", app.label);
        assert_eq!(
            app.store.period_key(org_id, &label).await.unwrap(),
            PeriodKeyState::Open(sealed.clone()),
            "{}: no second key",
            app.label
        );
        let counts = app.store.period_counts(org_id, &label).await.unwrap();
        assert_eq!(counts.total, 1, "{}", app.label);
        // The right key still counts bob, once.
        let got = metering(&app.store)
            .ingest(
                org_id,
                KEYCLOAK,
                &[login("kc-b"), login("kc-a")],
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert_eq!((got.recorded, got.repeated), (1, 1), "{}", app.label);
    }
}

/// A key stored in clear (by a version before sealing) is sealed when a
/// process starts, keeps counting the same people once, and leaves no clear
/// copy in the database.
#[tokio::test]
async fn keys_stored_in_clear_are_sealed_at_start() {
    for app in apps().await {
        let (token, org_id) = org_with_secret(&app, "acme").await;
        scim_user(&app, "acme", &token, "alice", "kc-a").await;
        let label = label_now();
        let period = metering(&app.store).period(&label).unwrap();
        let clear = [0x3c_u8; 32];
        app.store
            .open_period(
                org_id,
                &label,
                period.start_micros(),
                period.end_micros(),
                &clear,
            )
            .await
            .unwrap();
        let hash = person_hash(&PeriodKey::from_bytes(clear), "kc-a");
        app.store
            .record_seen(org_id, &label, "keycloak", &[hash])
            .await
            .unwrap();

        let m = metering(&app.store);
        m.prepare().await.unwrap();
        let PeriodKeyState::Open(sealed) = app.store.period_key(org_id, &label).await.unwrap()
        else {
            panic!("{}: the period is open", app.label)
        };
        let key = Kek::from_bytes(TEST_KEK)
            .open(&sealed, org_id, &label)
            .unwrap();
        assert_eq!(key.as_bytes(), &clear, "{}", app.label);
        let found = store::testing::find_everywhere(&app.store, &clear).await;
        assert!(found.is_empty(), "{}: {found:?}", app.label);
        let got = m
            .ingest(
                org_id,
                "keycloak",
                &[login("kc-a")],
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert_eq!((got.recorded, got.repeated), (0, 1), "{}", app.label);
        assert_eq!(m.seal_clear_keys().await.unwrap(), 0, "{}", app.label);
    }
}

/// The webhook's context is kept in memory between requests, yet a new
/// secret set through the admin API replaces the old one at once in this
/// process, and a period closed by another process records nothing more.
#[tokio::test]
async fn a_cached_webhook_context_follows_new_secrets_and_closed_periods() {
    for app in apps().await {
        let (token, org_id) = org_with_secret(&app, "acme").await;
        let a = signed(&app, "acme", &json!([p2_event("LOGIN", "kc-a")])).await;
        assert_eq!(a.body["recorded"], 1, "{}: {}", app.label, a.body);

        let a = app
            .call(
                Method::POST,
                "/o/acme/admin/meter/webhook-secret",
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", app.label, a.body);
        let fresh = a.body["secret"].as_str().unwrap().to_owned();

        let events = json!([p2_event("LOGIN", "kc-b")]);
        let old = signed_with(&app, "acme", &events, SECRET).await;
        assert_eq!(
            old.status,
            StatusCode::UNAUTHORIZED,
            "{}: the old secret still works",
            app.label
        );
        let new = signed_with(&app, "acme", &events, &fresh).await;
        assert_eq!(new.status, StatusCode::OK, "{}: {}", app.label, new.body);
        assert_eq!(new.body["recorded"], 1, "{}: {}", app.label, new.body);

        // Another process closes the period while this one has it cached.
        let other = metering(&app.store);
        let period = other.period(&label_now()).unwrap();
        other
            .close(&period, None, true, OffsetDateTime::now_utc())
            .await
            .unwrap();
        let late = signed_with(&app, "acme", &json!([p2_event("LOGIN", "kc-c")]), &fresh).await;
        assert_eq!(late.status, StatusCode::OK, "{}: {}", app.label, late.body);
        assert_eq!(late.body["recorded"], 0, "{}: {}", app.label, late.body);
        assert_eq!(late.body["late"], 1, "{}: {}", app.label, late.body);
        assert_eq!(
            app.store.period_key(org_id, &label_now()).await.unwrap(),
            PeriodKeyState::Closed,
            "{}",
            app.label
        );
    }
}
