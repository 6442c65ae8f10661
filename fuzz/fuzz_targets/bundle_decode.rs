//! Any bytes as a prekey bundle, identity or one-time prekey: a bundle that
//! parses has verified signatures and re-encodes identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::{IdentityPublic, OneTimePrekey, PrekeyBundle};

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = PrekeyBundle::from_bytes(data) {
        assert_eq!(bundle.to_bytes(), data, "non-canonical bundle accepted");
        if let Some(otk) = bundle.one_time_prekey() {
            otk.verify(bundle.identity()).expect("a parsed bundle's one-time prekey verifies");
        }
    }
    if let Ok(id) = IdentityPublic::from_bytes(data) {
        assert_eq!(id.to_bytes().as_slice(), data);
    }
    let _ = OneTimePrekey::from_bytes(data);
});
