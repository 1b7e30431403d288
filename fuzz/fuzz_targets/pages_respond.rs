//! The error pages' request handling: any path and header values give an
//! answer with a 2xx (health) or error status, and reflected input never
//! reaches an HTML page unescaped: a tag the template cannot hold (`<zq`) in any
//! reflected value never appears in the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pages::{respond, Catalogue, Format, Index, PageRequest, Snapshot};
use std::sync::OnceLock;

fn fixtures() -> &'static (Index, Catalogue) {
    static F: OnceLock<(Index, Catalogue)> = OnceLock::new();
    F.get_or_init(|| {
        let snap = Snapshot::from_toml_str(include_str!("../../crates/pages/examples/pages.toml"))
            .expect("the example parses");
        (
            Index::new(&snap, std::time::Duration::from_secs(72 * 3600)),
            Catalogue::embedded(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Fields separated by newlines: path, host, accept, accept-language, code,
    // format, original URI, service name, request id.
    let f: Vec<&str> = text.splitn(9, '\n').collect();
    let get = |i: usize| f.get(i).copied();
    let req = PageRequest {
        path: get(0).unwrap_or("/"),
        host: get(1),
        accept: get(2),
        accept_language: get(3),
        code: get(4),
        format: get(5),
        original_uri: get(6),
        service_name: get(7),
        request_id: get(8),
        ..Default::default()
    };
    let (index, cat) = fixtures();
    let now = time::OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let resp = respond(&req, index, cat, now);
    assert!(resp.status == 200 || (400..=599).contains(&resp.status), "{}", resp.status);
    if resp.format == Format::Html && text.contains("<zq") {
        assert!(!resp.body.contains("<zq"), "unescaped input in {:?}", resp.body);
    }
});
