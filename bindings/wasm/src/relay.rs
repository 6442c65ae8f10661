//! The relay's client protocol (from `sealpost-client`, the code the relay
//! itself and every binding use): build a [`RelayRequest`], sign it, send
//! it with `fetch`, and hand the answer's status, `Retry-After` header and
//! body to the matching `parse*` function. WebSocket push: sign
//! `RelayRequest.websocket()` and open `wsAuthQuery(authorization)` (a
//! browser cannot set headers on the upgrade), read text frames with
//! `parsePushFrame` and acknowledge with `ackFrame`. Failures are thrown
//! as `RelayError`s. There is no call that signs arbitrary bytes.

use std::cell::RefCell;

use js_sys::Array;
use sealpost_client as sc;
use wasm_bindgen::prelude::*;

use crate::error::RelayError;
use crate::{PrekeyBundle, borrow, js};

type Result<T> = std::result::Result<T, RelayError>;

#[wasm_bindgen(typescript_custom_section)]
const RELAY_TS: &str = r#"
/** A fetched, verified bundle. */
export interface FetchedBundle {
  /** The bundle (with a one-time prekey when the relay had one). */
  bundle: PrekeyBundle;
  /** One-time prekeys left for that account. */
  oneTimePrekeysLeft: number;
}

/** An opened relay session. */
export interface OpenedSession {
  /** The session, for {@link RelayRequest.authorizeSession}. */
  session: RelaySession;
  /** Seconds it lasts; open a new one before (or on `session_expired`). */
  expiresIn: number;
}

/** A message from the mailbox. */
export interface RelayDelivered {
  /** The relay's id (acknowledge it to delete the message). */
  id: number;
  /** The sender's account id (base64url). */
  sender: string;
  /** The sealed envelope. */
  envelope: Uint8Array;
  /** When the relay stored it (Unix seconds). */
  receivedAt: number;
}

/** A page of messages. */
export interface MessagePage {
  /** Oldest first. */
  messages: RelayDelivered[];
  /** Pass as `after` for the next page. */
  nextAfter: number;
}

/** A claimed handle. */
export interface HandleClaimed {
  /** The normalized handle. */
  handle: string;
  /** Seconds the code stays valid. */
  expiresIn: number;
}

/** A handle bound to the caller. */
export interface HandleBound {
  /** The normalized handle. */
  handle: string;
  /** The caller's account id (base64url). */
  account: string;
}

/** A looked-up handle. Compare the safety number before trusting it. */
export interface HandleFound {
  /** The normalized handle. */
  handle: string;
  /** The account id bound to it (base64url). */
  account: string;
  /** That account's public identity (128 bytes, verified). */
  identity: Uint8Array;
}

/** A WebSocket frame from the relay. */
export type PushFrame =
  /** A message. */
  | { kind: "message"; message: RelayDelivered }
  /** An acknowledgement was processed. */
  | { kind: "acked"; deleted: number }
  /** The relay refused a frame (its machine code and explanation). */
  | { kind: "error"; code: string; message: string };
"#;

fn account_id(s: &str) -> Result<[u8; 32]> {
    js::id32(s).ok_or(RelayError::InvalidArgument("an account id is 32 bytes of base64url"))
}

fn number(x: i64, what: &'static str) -> Result<f64> {
    js::i64_to_f64(x).ok_or(RelayError::Unrepresentable(what))
}

/// Signs relay requests for one account (from `Account.relaySigner()`):
/// it signs only under the relay-request context.
#[wasm_bindgen]
pub struct RelaySigner {
    pub(crate) inner: sealpost::RelaySigner,
}

#[wasm_bindgen]
impl RelaySigner {
    /// The account id (base64url of the identity's Ed25519 key).
    pub fn account(&self) -> String {
        js::id_string(self.inner.account())
    }
}

/// A relay session (from `parseOpenSession`): deposits authorized with
/// `RelayRequest.authorizeSession` cost the relay a MAC, not a signature
/// check. Each use takes the next sequence number.
#[wasm_bindgen]
pub struct RelaySession {
    inner: RefCell<sc::RelaySession>,
}

/// One API request: send `body()` with `method()` to the relay's base URL
/// followed by `pathAndQuery()`, with the `Content-Type` of
/// `contentType()` and the `Authorization` value of `authorize()`.
#[wasm_bindgen]
pub struct RelayRequest {
    inner: sc::Request,
}

fn request(inner: sc::Request) -> RelayRequest {
    RelayRequest { inner }
}

#[wasm_bindgen]
impl RelayRequest {
    /// `POST /v1/keys/bundle`: publish the account's bundle.
    #[wasm_bindgen(js_name = publishBundle)]
    pub fn publish_bundle(bundle: &PrekeyBundle) -> RelayRequest {
        request(sc::Request::publish_bundle(&bundle.inner))
    }

    /// `POST /v1/keys/one-time`: upload one-time prekeys (the bytes from
    /// `Account.generateOneTimePrekeys`).
    #[wasm_bindgen(js_name = uploadPrekeys)]
    pub fn upload_prekeys(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array[]")] prekeys: JsValue,
    ) -> Result<RelayRequest> {
        const WHAT: &str = "prekeys must be an array of one-time prekeys";
        let keys = js::to_byte_arrays(&prekeys, WHAT)?
            .iter()
            .map(|k| sealpost::OneTimePrekey::from_bytes(k).map_err(|_| RelayError::InvalidArgument(WHAT)))
            .collect::<Result<Vec<_>>>()?;
        Ok(request(sc::Request::upload_prekeys(&keys)))
    }

    /// `GET /v1/keys/{account}`: fetch someone's bundle.
    #[wasm_bindgen(js_name = fetchBundle)]
    pub fn fetch_bundle(account: &str) -> Result<RelayRequest> {
        Ok(request(sc::Request::fetch_bundle(&account_id(account)?)))
    }

    /// `POST /v1/sessions`: open a relay session.
    #[wasm_bindgen(js_name = openSession)]
    pub fn open_session() -> RelayRequest {
        request(sc::Request::open_session())
    }

    /// `POST /v1/messages`: deposit an envelope for recipients (account ids).
    pub fn deposit(
        #[wasm_bindgen(unchecked_param_type = "string[]")] recipients: JsValue,
        envelope: &[u8],
    ) -> Result<RelayRequest> {
        let ids = js::to_strings(&recipients, "recipients must be an array of account ids")?
            .iter()
            .map(|r| account_id(r))
            .collect::<Result<Vec<_>>>()?;
        Ok(request(sc::Request::deposit(&ids, envelope)))
    }

    /// `GET /v1/messages?after=&limit=`: read messages with id above `after`.
    pub fn pull(after: f64, limit: u32) -> Result<RelayRequest> {
        let after = js::safe_i64(after).ok_or(RelayError::InvalidArgument("after must be a safe integer"))?;
        Ok(request(sc::Request::pull(after, limit)))
    }

    /// `POST /v1/messages/ack`: delete messages (by id) from the mailbox.
    pub fn ack(#[wasm_bindgen(unchecked_param_type = "number[]")] ids: JsValue) -> Result<RelayRequest> {
        Ok(request(sc::Request::ack(&js::to_i64s(&ids, "ids must be an array of safe integers")?)))
    }

    /// `POST /v1/handles/claim`: ask for a verification code.
    #[wasm_bindgen(js_name = claimHandle)]
    pub fn claim_handle(handle: &str) -> RelayRequest {
        request(sc::Request::claim_handle(handle))
    }

    /// `POST /v1/handles/verify`: prove the code.
    #[wasm_bindgen(js_name = verifyHandle)]
    pub fn verify_handle(handle: &str, code: &str) -> RelayRequest {
        request(sc::Request::verify_handle(handle, code))
    }

    /// `GET /v1/handles/{handle}`: look a handle up.
    #[wasm_bindgen(js_name = lookupHandle)]
    pub fn lookup_handle(handle: &str) -> RelayRequest {
        request(sc::Request::lookup_handle(handle))
    }

    /// `GET /v1/ws`: the WebSocket upgrade.
    pub fn websocket() -> RelayRequest {
        request(sc::Request::websocket())
    }

    /// `"GET"` or `"POST"`.
    pub fn method(&self) -> String {
        self.inner.method().as_str().to_owned()
    }

    /// The path and query, appended to the relay's base URL.
    #[wasm_bindgen(js_name = pathAndQuery)]
    pub fn path_and_query(&self) -> String {
        self.inner.path_and_query().to_owned()
    }

    /// The body (empty for GET).
    pub fn body(&self) -> Vec<u8> {
        self.inner.body().to_vec()
    }

    /// `"application/json"` for POST, undefined for GET.
    #[wasm_bindgen(js_name = contentType)]
    pub fn content_type(&self) -> Option<String> {
        self.inner.content_type().map(str::to_owned)
    }

    /// The `Authorization` value, signed now (or at `now`, Unix seconds)
    /// with a random nonce (or `nonce`, 16 bytes; tests only: never reuse one).
    pub fn authorize(&self, signer: &RelaySigner, now: Option<f64>, nonce: Option<Vec<u8>>) -> Result<String> {
        let now = js::clock(now)?;
        let nonce: [u8; 16] = match nonce {
            Some(n) => n.as_slice().try_into().map_err(|_| RelayError::InvalidArgument("a nonce is 16 bytes"))?,
            None => {
                let mut n = [0u8; 16];
                rand_core::Rng::fill_bytes(&mut crate::rng()?, &mut n);
                n
            }
        };
        Ok(self.inner.authorize(&signer.inner, now, &nonce))
    }

    /// The `Authorization` value under a relay session (deposits only).
    #[wasm_bindgen(js_name = authorizeSession)]
    pub fn authorize_session(&self, session: &RelaySession) -> Result<String> {
        Ok(self.inner.authorize_session(&mut *borrow(&session.inner)?))
    }
}

/// `/v1/ws?auth=…`: the WebSocket path carrying a signed
/// `RelayRequest.websocket()` authorization (browsers cannot set headers
/// on the upgrade).
#[wasm_bindgen(js_name = wsAuthQuery)]
pub fn ws_auth_query(authorization: &str) -> String {
    sc::ws_auth_query(authorization)
}

fn parse<T: sc::Reply>(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<T> {
    Ok(sc::parse_response(status, retry_after.as_deref(), body)?)
}

/// `publishBundle`'s answer: the account id.
#[wasm_bindgen(js_name = parsePublishBundle)]
pub fn parse_publish_bundle(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<String> {
    Ok(js::id_string(&parse::<sc::BundlePublished>(status, retry_after, body)?.account))
}

/// `uploadPrekeys`'s answer: how many one-time prekeys the relay holds.
#[wasm_bindgen(js_name = parseUploadPrekeys)]
pub fn parse_upload_prekeys(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<f64> {
    Ok(js::u64_to_f64(parse::<sc::PrekeysStored>(status, retry_after, body)?.one_time_prekeys))
}

/// `fetchBundle`'s answer, checked to be `account`'s bundle.
#[wasm_bindgen(js_name = parseFetchBundle, unchecked_return_type = "FetchedBundle")]
pub fn parse_fetch_bundle(account: &str, status: u16, retry_after: Option<String>, body: &[u8]) -> Result<JsValue> {
    let account = account_id(account)?;
    let fetched = parse::<sc::BundleFetched>(status, retry_after, body)?;
    fetched.check_account(&account)?;
    Ok(js::object(&[
        ("bundle", PrekeyBundle { inner: fetched.bundle }.into()),
        ("oneTimePrekeysLeft", js::u64_to_f64(fetched.one_time_prekeys_left).into()),
    ]))
}

/// `openSession`'s answer.
#[wasm_bindgen(js_name = parseOpenSession, unchecked_return_type = "OpenedSession")]
pub fn parse_open_session(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<JsValue> {
    let opened = parse::<sc::SessionOpened>(status, retry_after, body)?;
    Ok(js::object(&[
        ("session", RelaySession { inner: RefCell::new(opened.session()) }.into()),
        ("expiresIn", js::u64_to_f64(opened.expires_in).into()),
    ]))
}

/// `deposit`'s answer: the message ids, one per recipient.
#[wasm_bindgen(js_name = parseDeposit, unchecked_return_type = "number[]")]
pub fn parse_deposit(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<Array> {
    let ids = parse::<sc::Deposited>(status, retry_after, body)?.ids;
    let ids = ids.into_iter().map(|id| number(id, "a message id").map(JsValue::from)).collect::<Result<Vec<_>>>()?;
    Ok(js::array(ids))
}

fn delivered(m: sc::Delivered) -> Result<JsValue> {
    Ok(js::object(&[
        ("id", number(m.id, "a message id")?.into()),
        ("sender", js::id_string(&m.sender).into()),
        ("envelope", js::bytes(&m.envelope)),
        ("receivedAt", js::u64_to_f64(m.received_at).into()),
    ]))
}

/// `pull`'s answer.
#[wasm_bindgen(js_name = parsePull, unchecked_return_type = "MessagePage")]
pub fn parse_pull(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<JsValue> {
    let page = parse::<sc::MessagePage>(status, retry_after, body)?;
    let messages = page.messages.into_iter().map(delivered).collect::<Result<Vec<_>>>()?;
    Ok(js::object(&[
        ("messages", js::array(messages).into()),
        ("nextAfter", number(page.next_after, "next_after")?.into()),
    ]))
}

/// `ack`'s answer: how many messages were deleted.
#[wasm_bindgen(js_name = parseAck)]
pub fn parse_ack(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<f64> {
    Ok(js::u64_to_f64(parse::<sc::Acked>(status, retry_after, body)?.deleted))
}

/// `claimHandle`'s answer.
#[wasm_bindgen(js_name = parseClaimHandle, unchecked_return_type = "HandleClaimed")]
pub fn parse_claim_handle(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<JsValue> {
    let c = parse::<sc::HandleClaimed>(status, retry_after, body)?;
    Ok(js::object(&[("handle", c.handle.into()), ("expiresIn", js::u64_to_f64(c.expires_in).into())]))
}

/// `verifyHandle`'s answer.
#[wasm_bindgen(js_name = parseVerifyHandle, unchecked_return_type = "HandleBound")]
pub fn parse_verify_handle(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<JsValue> {
    let b = parse::<sc::HandleBound>(status, retry_after, body)?;
    Ok(js::object(&[("handle", b.handle.into()), ("account", js::id_string(&b.account).into())]))
}

/// `lookupHandle`'s answer.
#[wasm_bindgen(js_name = parseLookupHandle, unchecked_return_type = "HandleFound")]
pub fn parse_lookup_handle(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<JsValue> {
    let f = parse::<sc::HandleFound>(status, retry_after, body)?;
    Ok(js::object(&[
        ("handle", f.handle.into()),
        ("account", js::id_string(&f.account).into()),
        ("identity", js::bytes(&f.identity.to_bytes())),
    ]))
}

/// Parses a text frame from the relay's WebSocket.
#[wasm_bindgen(js_name = parsePushFrame, unchecked_return_type = "PushFrame")]
pub fn parse_push_frame(text: &str) -> Result<JsValue> {
    Ok(match sc::PushFrame::decode(text)? {
        sc::PushFrame::Message(m) => js::object(&[("kind", "message".into()), ("message", delivered(m)?)]),
        sc::PushFrame::Acked(deleted) => {
            js::object(&[("kind", "acked".into()), ("deleted", js::u64_to_f64(deleted).into())])
        }
        sc::PushFrame::Error(e) => {
            js::object(&[("kind", "error".into()), ("code", e.code.as_str().into()), ("message", e.message.into())])
        }
    })
}

/// The text frame acknowledging (deleting) messages by id.
#[wasm_bindgen(js_name = ackFrame)]
pub fn ack_frame(#[wasm_bindgen(unchecked_param_type = "number[]")] ids: JsValue) -> Result<String> {
    Ok(sc::ack_frame(&js::to_i64s(&ids, "ids must be an array of safe integers")?))
}
