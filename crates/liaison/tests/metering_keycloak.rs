//! Activity metering from a real Keycloak, on every store under test: test
//! users sign in (password grant, real LOGIN events), phasetwo's event webhook
//! (keycloak-events, installed by scripts/keycloak.sh) posts them, signed with
//! `X-Keycloak-Signature`, to Liaison's `/o/{org}/events/keycloak` on a real
//! socket, and the period counts each person exactly once.
//!
//! Needs `scripts/keycloak.sh start DIR PORT; source DIR/env` (skipped
//! without, failed when `LIAISON_REQUIRE_KEYCLOAK=1`).

mod common;
mod kc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "b5f0c6a4e2d94f0e8c7a6b5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f";

/// Webhook requests answered 200, and those that carried a signature.
#[derive(Default)]
struct Seen {
    ok: AtomicUsize,
    signed: AtomicUsize,
    other: AtomicUsize,
}

#[tokio::test]
async fn real_logins_are_metered_once_per_person() {
    let Some(env) = kc::env() else { return };
    for app in common::apps().await {
        let label = app.label.clone();
        app.org("acme").await;
        let org = app.store.org_by_slug("acme").await.unwrap().expect("org");
        app.store
            .set_webhook_secret(org.id, SECRET.as_bytes())
            .await
            .unwrap();

        // Liaison on a real socket, counting what the webhook receives.
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        let router =
            app.router
                .clone()
                .layer(middleware::from_fn(move |req: Request, next: Next| {
                    let s = s.clone();
                    async move {
                        let signed = req.headers().contains_key("x-keycloak-signature");
                        let resp: Response = next.run(req).await;
                        if resp.status() == 200 {
                            s.ok.fetch_add(1, Ordering::SeqCst);
                            if signed {
                                s.signed.fetch_add(1, Ordering::SeqCst);
                            }
                        } else {
                            s.other.fetch_add(1, Ordering::SeqCst);
                        }
                        resp
                    }
                }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router).await });

        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let p = format!("m{}{}", &label[..2], nanos % 1_000_000_000);
        let realm = kc::Realm::create_with_prefix(&env, &p).await;
        let (status, body) = realm
            .admin(
                reqwest::Method::POST,
                &format!("/realms/{}/webhooks", realm.name),
                Some(json!({
                    "enabled": true,
                    "url": format!("http://{addr}/o/acme/events/keycloak"),
                    "secret": SECRET,
                    "eventTypes": ["access.LOGIN"],
                })),
            )
            .await;
        assert!(
            (200..300).contains(&status),
            "{label}: webhook: {status} {body}"
        );

        for who in ["alice", "alice", "bob"] {
            realm.login(&format!("{p}{who}")).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while seen.ok.load(Ordering::SeqCst) < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: the webhook posted {} login(s) ({} refused)",
                seen.ok.load(Ordering::SeqCst),
                seen.other.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            seen.signed.load(Ordering::SeqCst),
            seen.ok.load(Ordering::SeqCst),
            "{label}: every post signed"
        );
        assert_eq!(
            seen.other.load(Ordering::SeqCst),
            0,
            "{label}: no post refused"
        );
        let now = time::OffsetDateTime::now_utc();
        let period = format!("{}-{:02}", now.year(), u8::from(now.month()));
        let counts = app.store.period_counts(org.id, &period).await.unwrap();
        assert_eq!(
            counts.total, 2,
            "{label}: alice and bob, once each: {counts:?}"
        );
        assert_eq!(
            counts.per_source.get(liaison::metering::KEYCLOAK),
            Some(&2),
            "{label}: {counts:?}"
        );
        server.abort();
        realm.delete().await;
    }
}
