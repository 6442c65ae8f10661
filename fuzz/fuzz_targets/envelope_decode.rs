//! Any bytes as an envelope: a typed error or a value that re-encodes to
//! exactly the same bytes (the format is canonical); never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::from_bytes(data) {
        let again = env.to_bytes().expect("a parsed envelope encodes");
        assert_eq!(again, data, "non-canonical envelope accepted");
    }
    let _ = sealpost::hazmat::unpad(data);
});
