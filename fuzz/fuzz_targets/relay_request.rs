//! The relay's request parsing: Authorization headers (signature and
//! session schemes) and every route's JSON body. 4xx errors only, no panics.
//! Also the client's side of the same JSON: replies, error answers and push
//! frames give a value or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_client::Credentials;
use sealpost_relay::fuzzing::{NonceCache, Sessions};

const ROUTES: [&str; 7] =
    ["publish_bundle", "upload_prekeys", "deposit", "ack", "claim_handle", "verify_handle", "open_session"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    if let Ok(creds) = Credentials::parse(&text) {
        if creds.verify("POST", "/v1/messages", rest, creds.ts, 300).is_ok() {
            let nonces = NonceCache::new(4, 16, 300, 0);
            let _ = nonces.record(&creds, creds.ts);
        }
    }
    let sessions = Sessions::default();
    let _ = sessions.verify(&text, "POST", "/v1/messages", rest, 0);
    let _ = sealpost_relay::fuzzing::normalize_handle(&text);
    let _ = sealpost_client::PushFrame::decode(&text);
    let _ = sealpost_client::parse_response::<sealpost_client::MessagePage>(200, None, rest);
    let _ = sealpost_client::parse_response::<sealpost_client::SessionOpened>(409, Some("1"), rest);
    let _ = sealpost_client::parse_response::<sealpost_client::MqttEnrolled>(200, None, rest);
    if let Err(e) = sealpost_relay::fuzzing::check_body(ROUTES[usize::from(selector) % ROUTES.len()], rest) {
        assert!((400..500).contains(&e.status()), "{e}");
    }
});
