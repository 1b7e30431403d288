//! Serves the pages from a snapshot file, for benchmarks and browser tests:
//! `cargo run --release -p pages --example serve -- [SNAPSHOT] [ADDR]`
//! (defaults: `crates/pages/examples/pages.toml`, `127.0.0.1:8089`).

use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pages.toml").into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8089".into());
    let source = Arc::new(pages::StaticSource::new(file));
    let app = pages::router(source, pages::PagesConfig::default()).await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("pages on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
