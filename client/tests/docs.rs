//! The documents name exactly the relay's error codes: the `code` enum of
//! docs/openapi.yaml and the error table of docs/RELAY.md section 3 are
//! checked against [`ErrorCode::ALL`], so a new code cannot ship
//! undocumented and a documented code cannot silently go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;

use sealpost_client::ErrorCode;

fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn codes() -> BTreeSet<String> {
    ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}

#[test]
fn the_openapi_code_enum_is_the_relays_codes() {
    let text = doc("openapi.yaml");
    // The `enum:` right after the code's description in the Error schema.
    let start = text.find("description: Stable, machine-readable.").expect("the Error schema's code");
    let rest = &text[start..];
    let list = &rest[rest.find("enum:").unwrap() + "enum:".len()..];
    let listed: Vec<String> =
        list.lines().skip(1).map_while(|l| l.trim().strip_prefix("- ").map(str::to_owned)).collect();
    assert!(listed.len() > 10, "the enum was not found: {listed:?}");
    let set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(set.len(), listed.len(), "a code is listed twice");
    assert_eq!(set, codes(), "docs/openapi.yaml lists other codes than ErrorCode::ALL");
}

#[test]
fn the_relay_md_error_table_gives_each_code_its_status() {
    let text = doc("RELAY.md");
    let start = text.find("### Errors").unwrap();
    let end = start + text[start..].find("\n## ").unwrap();
    let rows: BTreeSet<(u16, String)> = text[start..end]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let status = cells.get(1)?.parse().ok()?;
            let code = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((status, code.to_owned()))
        })
        .collect();
    let expected: BTreeSet<(u16, String)> =
        ErrorCode::ALL.iter().map(|c| (c.status(), c.as_str().to_owned())).collect();
    assert_eq!(rows, expected, "docs/RELAY.md section 3 differs from ErrorCode::ALL");
}
