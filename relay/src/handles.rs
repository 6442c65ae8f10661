//! Human handles (user names and phone numbers) bound to identity keys by
//! a one-time code delivered out of band.

use std::future::Future;
use std::pin::Pin;

use rand_core::Rng;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, CodeDeliveryFault, Error, ErrorCode};
use crate::store::AccountId;

/// What [`CodeSink::deliver`] returns: a boxed future, `Err`
/// ([`Error::CodeDelivery`]) if the code could not be delivered.
pub type DeliverFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// Brings a verification code to the person who claims a handle.
pub trait CodeSink: Send + Sync + 'static {
    /// Delivers `code` for `handle`.
    fn deliver<'a>(&'a self, handle: &'a str, code: &'a str) -> DeliverFuture<'a>;
}

/// The default: writes the code to standard output (not to the log, which
/// goes to standard error), for development and small deployments where the
/// operator relays it.
pub(crate) struct StdoutSink;

impl CodeSink for StdoutSink {
    fn deliver<'a>(&'a self, handle: &'a str, code: &'a str) -> DeliverFuture<'a> {
        Box::pin(async move {
            println!("verification code for {handle}: {code}");
            Ok(())
        })
    }
}

/// Keeps the last code sent for each handle in memory, for tests and for
/// an application that embeds the relay and delivers codes itself.
#[derive(Default)]
pub struct MemorySink(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl MemorySink {
    /// The last code sent for `handle`, if any.
    pub fn code(&self, handle: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(handle).cloned()
    }
}

impl CodeSink for MemorySink {
    fn deliver<'a>(&'a self, handle: &'a str, code: &'a str) -> DeliverFuture<'a> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(handle.to_owned(), code.to_owned());
        Box::pin(async { Ok(()) })
    }
}

/// POSTs `{"handle": ..., "code": ...}` to an SMS or e-mail gateway.
pub(crate) struct WebhookSink {
    url: hyper::Uri,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl WebhookSink {
    /// A sink posting to `url` (http://).
    pub(crate) fn new(url: &str) -> Result<Self, Error> {
        let url: hyper::Uri = url.parse().map_err(|e| Error::Config(format!("code_webhook: {e}")))?;
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
        Ok(Self { url, client })
    }
}

impl CodeSink for WebhookSink {
    fn deliver<'a>(&'a self, handle: &'a str, code: &'a str) -> DeliverFuture<'a> {
        Box::pin(async move {
            let body = serde_json::json!({ "handle": handle, "code": code }).to_string();
            let req = hyper::Request::post(self.url.clone())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .map_err(|e| Error::CodeDelivery(CodeDeliveryFault::Request(e)))?;
            let resp = tokio::time::timeout(std::time::Duration::from_secs(10), self.client.request(req))
                .await
                .map_err(|_| Error::CodeDelivery(CodeDeliveryFault::Timeout))?
                .map_err(|e| Error::CodeDelivery(CodeDeliveryFault::Connection(e)))?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(Error::CodeDelivery(CodeDeliveryFault::Status(resp.status())))
            }
        })
    }
}

/// A uniformly random six-digit code.
pub(crate) fn generate_code() -> String {
    let mut rng = sealpost::os_rng();
    // Rejection sampling keeps every code equally likely.
    loop {
        let v = rng.next_u32();
        if v < 4_294_000_000 {
            return format!("{:06}", v % 1_000_000);
        }
    }
}

/// What the relay stores instead of the code.
pub(crate) fn code_hash(handle: &str, account: &AccountId, code: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"sealpost/v1/handle-code")
        .chain_update(u32::try_from(handle.len()).unwrap_or(u32::MAX).to_be_bytes())
        .chain_update(handle.as_bytes())
        .chain_update(account)
        .chain_update(code.as_bytes())
        .finalize()
        .into()
}

/// Checks and normalizes a handle: a user name (3 to 32 of `a-z 0-9 _ . -`,
/// compared in lower case) or a phone number (`+` and 8 to 15 digits).
pub fn normalize_handle(raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            ErrorCode::BadHandle,
            "a handle is a user name (3-32 of a-z 0-9 _ . -) or a phone number (+ and 8-15 digits)",
        )
    };
    if let Some(digits) = raw.strip_prefix('+') {
        if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(raw.to_owned());
        }
        return Err(bad());
    }
    let lower = raw.to_ascii_lowercase();
    // These are route names under /v1/handles/.
    if matches!(lower.as_str(), "claim" | "verify") {
        return Err(bad());
    }
    if (3..=32).contains(&lower.len())
        && lower.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
    {
        Ok(lower)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_normalized_or_refused() {
        assert_eq!(normalize_handle("Alice_01").ok(), Some("alice_01".into()));
        assert_eq!(normalize_handle("+4915112345678").ok(), Some("+4915112345678".into()));
        for bad in ["al", "a b c", "+12", "+1234567890123456", "émile", "", "x/y"] {
            assert_eq!(normalize_handle(bad).map_err(|e| e.code), Err(ErrorCode::BadHandle), "{bad}");
        }
    }

    #[test]
    fn codes_are_six_digits_and_hashes_bind_everything() {
        let c = generate_code();
        assert_eq!(c.len(), 6);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
        let a = code_hash("alice", &[1; 32], "123456");
        assert_ne!(a, code_hash("alice", &[2; 32], "123456"));
        assert_ne!(a, code_hash("alicf", &[1; 32], "123456"));
        assert_ne!(a, code_hash("alice", &[1; 32], "123457"));
    }
}
