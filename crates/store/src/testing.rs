//! Fresh, migrated stores on every engine under test, for integration tests of
//! this crate and of the crates above it (feature `testing`).
//!
//! SQLite is always tested, on a private temporary file. PostgreSQL is tested when
//! `LIAISON_TEST_POSTGRES_URL` names a server where the user may create databases:
//! each store gets its own database `liaison_t_<random>`, dropped when the last
//! clone of the store goes away (also when the test panics). With
//! `LIAISON_REQUIRE_POSTGRES=1` and no URL, the helpers panic, so that CI cannot
//! silently skip PostgreSQL.
//!
//! ```no_run
//! # async fn demo() {
//! for (engine, store) in store::testing::stores_under_test().await {
//!     let mut tx = store.begin().await.unwrap();
//!     tx.create_org("acme", "Acme").await.unwrap();
//!     tx.commit().await.unwrap();
//!     assert!(store.org_by_slug("acme").await.unwrap().is_some(), "{engine}");
//! }
//! # }
//! ```

use crate::conn::DropGuard;
use crate::Store;
use sqlx::{AnyConnection, Connection, Executor};
use std::future::Future;

/// The PostgreSQL server URL variable.
pub const POSTGRES_URL_VAR: &str = "LIAISON_TEST_POSTGRES_URL";
/// Set to `1` to make a missing PostgreSQL URL an error.
pub const REQUIRE_POSTGRES_VAR: &str = "LIAISON_REQUIRE_POSTGRES";

/// One migrated, empty store per engine under test, labelled `"sqlite"` or
/// `"postgres"`.
///
/// # Panics
/// When a store cannot be created, or PostgreSQL is required but not configured.
pub async fn stores_under_test() -> Vec<(&'static str, Store)> {
    let mut out = vec![("sqlite", sqlite_store().await)];
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => out.push(("postgres", postgres_store(&url).await)),
        _ => {
            if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                panic!("{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set");
            }
        }
    }
    out
}

/// Runs `test` once per engine under test, each time on a fresh store; a panic
/// names the engine it happened on.
pub async fn for_each_store<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for (engine, store) in stores_under_test().await {
        let outcome = tokio::spawn(test(store)).await;
        if let Err(e) = outcome {
            eprintln!("test failed on {engine}");
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("test on {engine} did not finish: {e}"),
            }
        }
    }
}

/// A migrated SQLite store on a temporary file.
pub async fn sqlite_store() -> Store {
    let store = Store::connect("sqlite::memory:")
        .await
        .expect("open temporary SQLite database");
    store.migrate().await.expect("migrate SQLite");
    store
}

/// A migrated store on a new database of the PostgreSQL server at `server_url`.
pub async fn postgres_store(server_url: &str) -> Store {
    sqlx::any::install_default_drivers();
    let name = format!("liaison_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = AnyConnection::connect(server_url)
        .await
        .expect("connect to the PostgreSQL test server");
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .expect("create test database");
    let _ = admin.close().await;
    let url = with_database(server_url, &name);
    let server = server_url.to_owned();
    let drop_name = name.clone();
    let guard = DropGuard::new(move || drop_database(server, drop_name));
    let store = Store::connect(&url)
        .await
        .expect("connect to the test database")
        .with_guard(guard);
    store.migrate().await.expect("migrate PostgreSQL");
    store
}

/// Drops a test database from a thread of its own (this runs in `Drop`, possibly
/// inside an async runtime).
fn drop_database(server_url: String, name: String) {
    let job = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok(mut admin) = AnyConnection::connect(&server_url).await {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                if let Err(e) = admin.execute(sql.as_str()).await {
                    eprintln!("could not drop test database {name}: {e}");
                }
                let _ = admin.close().await;
            }
        });
    });
    let _ = job.join();
}

/// `url` with its database name replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Every place `needle` occurs in the store's database: `table.column` for each
/// column of each table holding a value that contains it (as bytes, or as text
/// for text columns on PostgreSQL), and, on SQLite, `file:<path>` for the
/// database file and its write-ahead log when their raw bytes contain it (free
/// pages and old log frames included). For privacy tests.
pub async fn find_everywhere(store: &Store, needle: &[u8]) -> Vec<String> {
    use sqlx::Row;
    let mut found = Vec::new();
    let pool = store.reader();
    match store.dialect() {
        crate::Dialect::Sqlite => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(pool)
            .await
            .expect("list tables");
            for t in tables {
                let cols: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                        .bind(&t)
                        .fetch_all(pool)
                        .await
                        .expect("list columns");
                for c in cols {
                    let sql = format!(
                        "SELECT COUNT(*) FROM \"{t}\" WHERE instr(CAST(\"{c}\" AS BLOB), $1) > 0"
                    );
                    let n: i64 = sqlx::query_scalar(&sql)
                        .bind(needle.to_vec())
                        .fetch_one(pool)
                        .await
                        .expect("search column");
                    if n > 0 {
                        found.push(format!("{t}.{c}"));
                    }
                }
            }
            let row = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(pool)
                .await
                .expect("database file");
            let path: String = row.try_get(0).expect("path");
            for suffix in ["", "-wal"] {
                let p = format!("{path}{suffix}");
                if let Ok(bytes) = std::fs::read(&p) {
                    if bytes.windows(needle.len()).any(|w| w == needle) {
                        found.push(format!("file:{p}"));
                    }
                }
            }
        }
        crate::Dialect::Postgres => {
            let rows = sqlx::query(
                "SELECT table_name::text, column_name::text, data_type::text \
                 FROM information_schema.columns WHERE table_schema = current_schema()",
            )
            .fetch_all(pool)
            .await
            .expect("list columns");
            let text = std::str::from_utf8(needle).ok().map(str::to_owned);
            for r in rows {
                let (t, c, ty): (String, String, String) = (r.get(0), r.get(1), r.get(2));
                let n: i64 = if ty == "bytea" {
                    sqlx::query_scalar(&format!(
                        "SELECT COUNT(*) FROM \"{t}\" WHERE position($1::bytea in \"{c}\") > 0"
                    ))
                    .bind(needle.to_vec())
                    .fetch_one(pool)
                    .await
                    .expect("search column")
                } else if let Some(text) = &text {
                    sqlx::query_scalar(&format!(
                        "SELECT COUNT(*) FROM \"{t}\" WHERE strpos(\"{c}\"::text, $1) > 0"
                    ))
                    .bind(text)
                    .fetch_one(pool)
                    .await
                    .expect("search column")
                } else {
                    0
                };
                if n > 0 {
                    found.push(format!("{t}.{c}"));
                }
            }
        }
    }
    found
}

/// The ids of the resources of `kind` in the organisation that match `filter`,
/// sorted by id, as translated by [`crate::sql::filter_sql`] or, with
/// `json_scan`, by [`crate::sql::filter_sql_json_scan`] (the documents only).
///
/// # Panics
/// When the filter cannot be translated or the query fails.
pub async fn ids_matching(
    store: &Store,
    org_id: i64,
    kind: crate::ResourceKind,
    filter: &scim::Filter,
    json_scan: bool,
) -> Vec<String> {
    use sqlx::Row;
    let q = filter_query(store, org_id, kind, filter, json_scan);
    let mut ids: Vec<String> = q
        .query()
        .fetch_all(store.reader())
        .await
        .expect("run the filter")
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    ids.sort();
    ids
}

/// The engine's query plan (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN`)
/// of the query selecting the resources that match `filter`, after refreshing
/// the planner's statistics (`ANALYZE`), one line per plan row.
///
/// # Panics
/// When the filter cannot be translated or a statement fails.
pub async fn filter_plan(
    store: &Store,
    org_id: i64,
    kind: crate::ResourceKind,
    filter: &scim::Filter,
) -> String {
    plan(store, org_id, kind, filter, true).await
}

/// [`filter_plan`] without `ANALYZE`: the plan of a table just filled, before
/// the planner has statistics of it.
///
/// # Panics
/// When the filter cannot be translated or a statement fails.
pub async fn filter_plan_without_statistics(
    store: &Store,
    org_id: i64,
    kind: crate::ResourceKind,
    filter: &scim::Filter,
) -> String {
    plan(store, org_id, kind, filter, false).await
}

async fn plan(
    store: &Store,
    org_id: i64,
    kind: crate::ResourceKind,
    filter: &scim::Filter,
    analyze: bool,
) -> String {
    use sqlx::Row;
    let mut conn = store.writer().acquire().await.expect("a connection");
    if analyze {
        // What autovacuum (PostgreSQL) and `Store::optimize` (SQLite) do on a
        // live server.
        conn.execute("ANALYZE").await.expect("analyze");
    }
    let mut q = filter_query(store, org_id, kind, filter, false);
    let explain = match store.dialect() {
        crate::Dialect::Sqlite => "EXPLAIN QUERY PLAN ",
        crate::Dialect::Postgres => "EXPLAIN ",
    };
    q.text.insert_str(0, explain);
    let rows = q.query().fetch_all(&mut *conn).await.expect("explain");
    rows.iter()
        .map(|r| match store.dialect() {
            crate::Dialect::Sqlite => r.get::<String, _>(3),
            crate::Dialect::Postgres => r.get::<String, _>(0),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn filter_query(
    store: &Store,
    org_id: i64,
    kind: crate::ResourceKind,
    filter: &scim::Filter,
    json_scan: bool,
) -> crate::sql::Sql {
    use crate::sql::{self, Arg, Sql};
    let mut q = Sql::default();
    let o = q.param(Arg::Int(Some(org_id)));
    let k = q.param(Arg::Text(Some(kind.name().to_owned())));
    let (cond, lookup) = if json_scan {
        let c = sql::filter_sql_json_scan(&mut q, store.dialect(), kind, org_id, filter);
        (c.expect("translate the filter"), false)
    } else {
        sql::filter_sql_lookup(&mut q, store.dialect(), kind, org_id, filter)
            .expect("translate the filter")
    };
    // The order of a list without sortBy (as `Store::list_resources`).
    let order = sql::order_by(store.dialect(), kind, None, false, lookup).expect("order");
    q.text = format!(
        "SELECT res.id FROM resources res WHERE res.org_id = {o} AND res.kind = {k} AND {cond} \
         ORDER BY {order}"
    );
    q
}

/// Runs one SQL statement on the store's writer, outside any transaction (to
/// set up states a test needs, such as a database as an older version left it).
///
/// # Panics
/// When the statement fails.
pub async fn execute(store: &Store, sql: &str) {
    store
        .writer()
        .execute(sql)
        .await
        .expect("run the statement");
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:55432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t3"),
            "postgres://h:5432/t3"
        );
    }
}
