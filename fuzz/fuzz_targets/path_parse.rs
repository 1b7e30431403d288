//! Parses arbitrary UTF-8 as a SCIM PATCH path. Accepted paths must display to
//! a canonical string that parses back to the same value and displays
//! identically.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim::filter::MAX_FILTER_LEN;
use scim::PatchPath;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = PatchPath::parse(input) else {
        return;
    };
    let shown = path.to_string();
    if shown.len() <= MAX_FILTER_LEN {
        let again = match PatchPath::parse(&shown) {
            Ok(p) => p,
            Err(e) => panic!("display of {input:?} is {shown:?}, which fails to parse: {e}"),
        };
        assert_eq!(again, path, "{input:?} displays as {shown:?}");
        assert_eq!(again.to_string(), shown);
    }
});
