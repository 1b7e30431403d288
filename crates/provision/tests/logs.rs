//! What provisioning logs about a person: Liaison's ids only. A delivery the
//! app refuses with a message naming the person (a Rocket.Chat user name taken
//! by another account, from the fake Rocket.Chat), by the worker and again by a
//! reconciliation repair, leaves the message in the outbox for the operator
//! and only ids and the kind of failure in the logs, on every store under test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use provision::connectors::rocketchat::{RocketChatConfig, RocketChatConnector};
use provision::fakes::{spawn_rocketchat, RcUser};
use provision::sync::{reconcile, SyncOptions};
use provision::worker::{Worker, WorkerConfig, WorkerMetrics};
use provision::GroupsAs;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

mod common;

use common::{AppSpec, Org};

/// Every log line, as the `serve` process would write it.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn delivery_and_repair_failures_log_ids_never_the_person() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_env_filter("provision=trace,store=trace,directory=trace")
        .finish();
    // The test runs on one thread: every task of the worker logs here.
    let _guard = tracing::subscriber::set_default(subscriber);
    for (engine, store) in store::testing::stores_under_test().await {
        let fake = spawn_rocketchat("adminid", "tok").await.unwrap();
        fake.with_state(|s| {
            s.users.insert(
                "humanZoe".into(),
                RcUser::new("humanZoe", "zoe.martin", "zoe@elsewhere.org"),
            );
        });
        let org = Org::new(
            store.clone(),
            AppSpec {
                name: "chat",
                kind: store::AppKind::Rocketchat,
                base_url: fake.base_url(),
                credential_var: format!("LIAISON_LOGS_RC_{}", engine.to_uppercase()),
                credential: "adminid:tok",
                groups_as: store::GroupsAs::Rooms,
            },
        )
        .await;
        let id = org
            .user(json!({
                "userName": "zoe.martin",
                "displayName": "Zoé Martin",
                "emails": [{"value": "zoe.martin@example.org", "primary": true}],
            }))
            .await;

        let worker = Worker::new(
            store.clone(),
            WorkerConfig {
                base_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(20),
                ..WorkerConfig::default()
            },
            WorkerMetrics::default(),
        );
        let round = worker.drain().await.unwrap();
        assert_eq!(round.poisoned, 1, "{engine}: {round:?}");
        // The operator still reads the app's message in the outbox.
        let rows = store
            .outbox_rows(org.org_id, None, false, 10)
            .await
            .unwrap();
        let kept = rows
            .iter()
            .filter_map(|r| r.delivery.last_error.as_deref())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(kept.contains("zoe.martin"), "{engine}: {kept}");

        let conn = RocketChatConnector::new(RocketChatConfig {
            base_url: fake.base_url(),
            user_id: "adminid".into(),
            token: "tok".into(),
            groups_as: GroupsAs::Rooms,
        })
        .unwrap();
        let opts = SyncOptions {
            dry_run: false,
            remove_extra: false,
            adopt: false,
        };
        let report = reconcile(&org.store, &org.app, &conn, &opts, &|_| {})
            .await
            .unwrap();
        // The repair meets the same account: a collision, for the operator.
        assert_eq!(report.collisions.len(), 1, "{engine}: {report:?}");
        assert!(report.errors.is_empty(), "{engine}: {report:?}");

        let text = logs.text();
        assert!(
            text.matches("delivery failed").count() >= 2
                && text.contains("reconciliation met accounts Liaison did not create"),
            "{engine}: both failures are logged: {text}"
        );
        assert!(text.contains(&id), "{engine}: by Liaison's id: {text}");
        for name in ["zoe.martin", "zoe@", "Zoé", "humanZoe"] {
            assert!(
                !text.contains(name),
                "{engine}: {name} is in the logs: {text}"
            );
        }
    }
}
