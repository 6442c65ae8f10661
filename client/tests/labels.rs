//! Every domain-separation label of the protocol and of the relay's client
//! protocol (`sealpost/v1/…`: signature contexts, KDF and MAC labels) is
//! unambiguous across the whole workspace: none is a prefix of another.
//! The core's own test (core/src/context.rs) covers the core's table; this
//! one also sees the labels the client and the relay define for
//! themselves (the relay-session MAC, the handle-code hash), so a new label
//! anywhere cannot collide with one elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

/// The `sealpost/v1/…` literals of the non-test part of every `.rs` file
/// under `dir` (a file's test module starts at its top-level `#[cfg(test)] mod`).
fn labels_in(dir: &Path, out: &mut BTreeSet<String>, files: &mut usize) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            labels_in(&path, out, files);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        *files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("\n#[cfg(test)]\nmod ").next().unwrap();
        let mut rest = code;
        while let Some(at) = rest.find("\"sealpost/v1/") {
            let start = at + 1;
            let len = rest[start..].find('"').unwrap();
            let label = &rest[start..start + len];
            // Doc comments quote formulas ("sealpost/v1/x" "\n" …) too: the
            // same labels, which is fine.
            out.insert(label.to_owned());
            rest = &rest[start + len..];
        }
    }
}

#[test]
fn no_label_in_the_workspace_is_a_prefix_of_another() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (mut labels, mut files) = (BTreeSet::new(), 0);
    for dir in ["core/src", "client/src", "relay/src", "bindings/uniffi/src", "bindings/wasm/src"] {
        labels_in(&root.join(dir), &mut labels, &mut files);
    }
    assert!(files > 40, "only {files} source files read");
    for must in ["sealpost/v1/bundle", "sealpost/v1/relay-session", "sealpost/v1/handle-code", "sealpost/v1/pickle"] {
        assert!(labels.contains(must), "{must} not found among {labels:?}");
    }
    assert!(labels.len() >= 20, "{labels:?}");
    for a in &labels {
        assert!(a.len() > "sealpost/v1/".len(), "an empty label: {a:?}");
        for b in &labels {
            assert!(a == b || !b.starts_with(a.as_str()), "{a:?} is a prefix of {b:?}");
        }
    }
}
