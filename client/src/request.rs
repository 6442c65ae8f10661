//! Requests: what a client sends (method, path, body) and how the relay
//! checks each body before it touches storage.

use crate::auth::{RelaySession, authorization};
use crate::codes::ErrorCode;
use crate::error::RelayError;
use crate::json::{Fields, JsonError, Object, ObjectWriter, read_object};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// Most one-time prekeys per upload, ids per acknowledgement, messages per pull.
const MAX_BATCH: usize = 1000;

/// The HTTP methods of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// `"GET"` or `"POST"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One API request: send `body` with `method` to the relay's base URL
/// followed by `path_and_query`, with `Content-Type: application/json` on
/// POST and the `Authorization` value from [`Request::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    path_and_query: String,
    body: Vec<u8>,
}

/// Encodes an account id (32 bytes) as base64url, as in URLs and JSON.
pub fn encode_account(account: &[u8; 32]) -> String {
    B64.encode(account)
}

/// Decodes an account id; `bad_account` unless it is 32 bytes of base64url.
pub fn decode_account(field: &str, value: &str) -> Result<[u8; 32], RelayError> {
    B64.decode(value).ok().and_then(|v| v.try_into().ok()).ok_or_else(|| {
        RelayError::new(ErrorCode::BadAccount, format!("{field} must be a 32-byte account id in base64url"))
    })
}

fn post(path: &str, body: ObjectWriter) -> Request {
    Request { method: Method::Post, path_and_query: path.to_owned(), body: body.finish() }
}

fn get(path_and_query: String) -> Request {
    Request { method: Method::Get, path_and_query, body: Vec::new() }
}

/// Percent-encodes a path segment (handles may hold `+`).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Request {
    /// A request this crate has no constructor for (a route of a newer
    /// relay, or a malformed body in a test). It is signed like any other.
    pub fn custom(method: Method, path_and_query: &str, body: Vec<u8>) -> Self {
        Request { method, path_and_query: path_and_query.to_owned(), body }
    }

    /// `POST /v1/keys/bundle`: publish the signed part of the caller's bundle.
    pub fn publish_bundle(bundle: &sealpost::PrekeyBundle) -> Self {
        post("/v1/keys/bundle", ObjectWriter::new().str("bundle", &B64.encode(bundle.to_bytes())))
    }

    /// `POST /v1/keys/one-time`: upload one-time prekeys.
    pub fn upload_prekeys(prekeys: &[sealpost::OneTimePrekey]) -> Self {
        let encoded: Vec<String> = prekeys.iter().map(|k| B64.encode(k.to_bytes())).collect();
        post("/v1/keys/one-time", ObjectWriter::new().strs("prekeys", encoded.iter().map(String::as_str)))
    }

    /// `GET /v1/keys/{account}`: fetch someone's bundle (claims one of
    /// their one-time prekeys).
    pub fn fetch_bundle(account: &[u8; 32]) -> Self {
        get(format!("/v1/keys/{}", encode_account(account)))
    }

    /// `POST /v1/sessions`: open a relay session.
    pub fn open_session() -> Self {
        Request { method: Method::Post, path_and_query: "/v1/sessions".to_owned(), body: b"{}".to_vec() }
    }

    /// `POST /v1/messages`: deposit an envelope for one or more recipients.
    pub fn deposit(recipients: &[[u8; 32]], envelope: &[u8]) -> Self {
        let recipients: Vec<String> = recipients.iter().map(encode_account).collect();
        post(
            "/v1/messages",
            ObjectWriter::with_capacity(
                crate::push::base64_len(envelope.len())
                    .saturating_add(recipients.len().saturating_mul(46))
                    .saturating_add(64),
            )
            .strs("recipients", recipients.iter().map(String::as_str))
            .str("envelope", &B64.encode(envelope)),
        )
    }

    /// `GET /v1/messages?after=&limit=`: read up to `limit` (1 to 1000)
    /// messages with id above `after`.
    pub fn pull(after: i64, limit: u32) -> Self {
        get(format!("/v1/messages?after={after}&limit={limit}"))
    }

    /// `POST /v1/messages/ack`: delete messages from the caller's mailbox.
    pub fn ack(ids: &[i64]) -> Self {
        post("/v1/messages/ack", ObjectWriter::new().i64s("ids", ids))
    }

    /// `POST /v1/handles/claim`: ask for a verification code for `handle`.
    pub fn claim_handle(handle: &str) -> Self {
        post("/v1/handles/claim", ObjectWriter::new().str("handle", handle))
    }

    /// `POST /v1/handles/verify`: prove the code, binding the handle.
    pub fn verify_handle(handle: &str, code: &str) -> Self {
        post("/v1/handles/verify", ObjectWriter::new().str("handle", handle).str("code", code))
    }

    /// `GET /v1/handles/{handle}`: find the identity bound to a handle.
    pub fn lookup_handle(handle: &str) -> Self {
        get(format!("/v1/handles/{}", encode_segment(handle)))
    }

    /// `GET /v1/ws`: the WebSocket upgrade (signed like any request; see
    /// [`ws_auth_query`](crate::ws_auth_query) for browsers).
    pub fn websocket() -> Self {
        get("/v1/ws".to_owned())
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The path and query, to append to the relay's base URL.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The body (empty for GET).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, taken.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The `Content-Type` to send: `application/json` for POST.
    pub fn content_type(&self) -> Option<&'static str> {
        (self.method == Method::Post).then_some("application/json")
    }

    /// The `Authorization` value: the request signed by the account at
    /// `ts` (Unix seconds, the caller's clock) with a fresh random `nonce`
    /// (never reuse one).
    pub fn authorize(&self, signer: &sealpost::RelaySigner, ts: u64, nonce: &[u8; 16]) -> String {
        authorization(signer, self.method.as_str(), &self.path_and_query, ts, nonce, &self.body)
    }

    /// The `Authorization` value under a relay session (the relay accepts
    /// it for deposits only), using the session's next sequence number.
    pub fn authorize_session(&self, session: &mut RelaySession) -> String {
        session.authorize(self.method.as_str(), &self.path_and_query, &self.body)
    }
}

/// Parses a JSON body strictly: `read` takes every field it needs, and a
/// field it did not take is refused, as are missing or mistyped ones
/// (`bad_json`).
pub(crate) fn parse_json<T>(
    body: &[u8],
    read: impl FnOnce(&mut Object) -> Result<T, JsonError>,
) -> Result<T, RelayError> {
    read_object(body, Fields::Strict, read)
        .map_err(|e| RelayError::new(ErrorCode::BadJson, format!("invalid JSON body: {e}")))
}

fn b64(field: &str, value: &str) -> Result<Vec<u8>, RelayError> {
    B64.decode(value)
        .map_err(|_| RelayError::new(ErrorCode::BadBase64, format!("{field} is not base64url without padding")))
}

/// A published bundle, as the relay checks it.
#[derive(Debug, Clone)]
pub struct PublishBundleBody {
    /// The verified bundle.
    pub bundle: sealpost::PrekeyBundle,
    /// Its bytes as sent.
    pub bytes: Vec<u8>,
}

impl PublishBundleBody {
    /// Parses and verifies the body (`bad_json`, `bad_base64`, `bad_bundle`).
    pub fn decode(body: &[u8]) -> Result<Self, RelayError> {
        let bundle = parse_json(body, |o| o.string("bundle"))?;
        let bytes = b64("bundle", &bundle)?;
        let bundle = sealpost::PrekeyBundle::from_bytes(&bytes)
            .map_err(|e| RelayError::new(ErrorCode::BadBundle, format!("the bundle does not verify: {e}")))?;
        Ok(Self { bundle, bytes })
    }
}

/// An upload of one-time prekeys, as the relay checks it (their
/// signatures are checked against the caller's identity afterwards).
#[derive(Debug, Clone)]
pub struct PrekeysBody {
    /// Each prekey with its bytes as sent.
    pub prekeys: Vec<(sealpost::OneTimePrekey, Vec<u8>)>,
}

impl PrekeysBody {
    /// Parses the body: 1 to 1000 prekeys of 100 bytes (`bad_prekeys`).
    pub fn decode(body: &[u8]) -> Result<Self, RelayError> {
        let prekeys = parse_json(body, |o| o.strings("prekeys"))?;
        if prekeys.is_empty() || prekeys.len() > MAX_BATCH {
            return Err(RelayError::new(ErrorCode::BadPrekeys, "upload 1 to 1000 one-time prekeys at a time"));
        }
        let prekeys = prekeys
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let bytes = b64("prekeys", p)?;
                let otk = sealpost::OneTimePrekey::from_bytes(&bytes)
                    .map_err(|_| RelayError::new(ErrorCode::BadPrekeys, format!("prekey {i} is not 100 bytes")))?;
                Ok((otk, bytes))
            })
            .collect::<Result<_, RelayError>>()?;
        Ok(Self { prekeys })
    }
}

/// A deposit, as the relay checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositBody {
    /// Distinct recipients.
    pub recipients: Vec<[u8; 32]>,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
}

impl DepositBody {
    /// Parses the body: 1 to `max_recipients` distinct recipients
    /// (`bad_recipients`), a non-empty envelope (`bad_envelope`) of at most
    /// `max_envelope_bytes` (`too_large`).
    pub fn decode(body: &[u8], max_recipients: usize, max_envelope_bytes: usize) -> Result<Self, RelayError> {
        let (wire_recipients, wire_envelope) =
            parse_json(body, |o| Ok((o.strings("recipients")?, o.string("envelope")?)))?;
        if wire_recipients.is_empty() || wire_recipients.len() > max_recipients {
            return Err(RelayError::new(
                ErrorCode::BadRecipients,
                format!("1 to {max_recipients} recipients per deposit"),
            ));
        }
        let mut recipients = Vec::with_capacity(wire_recipients.len());
        for r in &wire_recipients {
            let id = decode_account("recipients", r)?;
            if recipients.contains(&id) {
                return Err(RelayError::new(ErrorCode::BadRecipients, "a recipient is listed twice"));
            }
            recipients.push(id);
        }
        let envelope = b64("envelope", &wire_envelope)?;
        if envelope.is_empty() {
            return Err(RelayError::new(ErrorCode::BadEnvelope, "the envelope is empty"));
        }
        if envelope.len() > max_envelope_bytes {
            return Err(RelayError::new(
                ErrorCode::TooLarge,
                format!("envelopes are limited to {max_envelope_bytes} bytes"),
            ));
        }
        Ok(Self { recipients, envelope })
    }
}

/// An acknowledgement, as the relay checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckBody {
    /// The message ids to delete.
    pub ids: Vec<i64>,
}

impl AckBody {
    /// Parses the body: 1 to 1000 ids (`bad_ids`).
    pub fn decode(body: &[u8]) -> Result<Self, RelayError> {
        let ids = parse_json(body, |o| o.i64s("ids"))?;
        check_ids(&ids)?;
        Ok(Self { ids })
    }
}

/// 1 to 1000 ids, each at least 1 (message ids start at 1), or `bad_ids`.
pub(crate) fn check_ids(ids: &[i64]) -> Result<(), RelayError> {
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(RelayError::new(ErrorCode::BadIds, "acknowledge 1 to 1000 ids at a time"));
    }
    if ids.iter().any(|id| *id < 1) {
        return Err(RelayError::new(ErrorCode::BadIds, "message ids are 1 or more"));
    }
    Ok(())
}

/// A handle claim, as the relay parses it (the relay normalizes the handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHandleBody {
    /// The handle as sent.
    pub handle: String,
}

impl ClaimHandleBody {
    /// Parses the body (`bad_json`).
    pub fn decode(body: &[u8]) -> Result<Self, RelayError> {
        let handle = parse_json(body, |o| o.string("handle"))?;
        Ok(Self { handle })
    }
}

/// A handle verification, as the relay parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyHandleBody {
    /// The handle as sent (the relay normalizes it).
    pub handle: String,
    /// The six-digit code.
    pub code: String,
}

impl VerifyHandleBody {
    /// Parses the body; the code must be six ASCII digits (`bad_code`).
    pub fn decode(body: &[u8]) -> Result<Self, RelayError> {
        let (handle, code) = parse_json(body, |o| Ok((o.string("handle")?, o.string("code")?)))?;
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RelayError::new(ErrorCode::BadCode, "the code is six digits"));
        }
        Ok(Self { handle, code })
    }
}

/// The query of a pull, as the relay parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullQuery {
    /// Messages with an id above this one (default 0).
    pub after: i64,
    /// At most this many (1 to 1000, default 100).
    pub limit: u32,
}

impl PullQuery {
    /// Parses the query string (without `?`); `bad_query` on anything else.
    pub fn decode(query: &str) -> Result<Self, RelayError> {
        let bad = |m: String| RelayError::new(ErrorCode::BadQuery, m);
        let mut q = Self { after: 0, limit: 100 };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "after" => {
                    q.after = v
                        .parse()
                        .ok()
                        .filter(|a| *a >= 0)
                        .ok_or_else(|| bad("after must be a message id or 0".into()))?
                }
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|l| (1..=1000).contains(l))
                        .ok_or_else(|| bad("limit must be 1 to 1000".into()))?
                }
                _ => return Err(bad(format!("unknown query parameter {k}"))),
            }
        }
        Ok(q)
    }
}
