//! The relay's client protocol (from `sealpost-client`, the code the relay
//! itself and every binding use): build a [`RelayRequest`], sign it, send
//! it with the platform's own HTTP stack (OkHttp or `java.net.http`,
//! URLSession, `urllib`/`httpx`), and hand the answer's status,
//! `Retry-After` header and body to the matching `parse_*` function.
//! WebSocket push: sign [`RelayRequest::websocket`] and send the value as
//! the upgrade's `Authorization` header (or with [`ws_auth_query`]), then
//! read frames with [`parse_push_frame`] and acknowledge with [`ack_frame`].
//! Over MQTT (docs/RELAY.md section 14): enrol with
//! [`RelayRequest::enrol_mqtt`] and [`parse_enrol_mqtt`], publish each
//! request with [`RelayRequest::mqtt_properties`] as its user properties,
//! and hand an answer's user properties to [`mqtt_answer_status`] for the
//! status and `Retry-After` its `parse_*` function takes.
//! There is no call that signs arbitrary bytes.

use std::sync::{Arc, Mutex};

use sealpost_client as sc;

use crate::error::ErrorCode;
use crate::{PrekeyBundle, SealpostError, clock, lock};

/// A failed relay call: the relay's refusal (with its machine code, for
/// example `"session_expired"`, and HTTP status) or an answer that does
/// not parse or verify.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum RelayError {
    /// The relay refused the request.
    Refused {
        /// The relay's machine-readable code (docs/RELAY.md, errors).
        code: String,
        /// The HTTP status that goes with the code.
        status: u16,
        /// A human-readable explanation (not for matching on; not named
        /// `message`, which Kotlin's `Throwable` already has).
        reason: String,
        /// Seconds to wait before retrying (429).
        retry_after: Option<u64>,
    },
    /// An error code this build does not know (a newer relay).
    UnknownErrorCode {
        /// The HTTP status.
        status: u16,
    },
    /// Neither the expected success status nor a relay error (a proxy?).
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The answer's body is not what the protocol says (a missing field,
    /// bad base64, a wrong length).
    Malformed {
        /// Which part.
        what: String,
    },
    /// A key or bundle in the answer does not verify (the core's code).
    Core {
        /// The core's error code.
        code: ErrorCode,
    },
    /// The relay answered for another account than the one asked for.
    WrongAccount,
    /// An argument is unusable (an account id that is not 32 bytes, a
    /// nonce that is not 16, a prekey that does not parse).
    InvalidArgument,
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::Refused { code, status, reason, .. } => write!(f, "{status} {code}: {reason}"),
            RelayError::UnknownErrorCode { status } => write!(f, "unknown error code with status {status}"),
            RelayError::UnexpectedStatus { status } => write!(f, "unexpected status {status}"),
            RelayError::Malformed { what } => write!(f, "malformed answer: {what}"),
            RelayError::Core { code } => write!(f, "does not verify: {}", code.as_str()),
            RelayError::WrongAccount => f.write_str("answer for another account"),
            RelayError::InvalidArgument => f.write_str("invalid argument"),
        }
    }
}

impl std::error::Error for RelayError {}

impl From<sc::Error> for RelayError {
    fn from(e: sc::Error) -> Self {
        match e {
            sc::Error::Relay(r) => RelayError::Refused {
                code: r.code.as_str().to_owned(),
                status: r.code.status(),
                reason: r.message,
                retry_after: r.retry_after,
            },
            sc::Error::UnknownErrorCode { status } => RelayError::UnknownErrorCode { status },
            sc::Error::UnexpectedStatus { status } => RelayError::UnexpectedStatus { status },
            sc::Error::Malformed { what } => RelayError::Malformed { what: what.to_owned() },
            sc::Error::Core(c) => RelayError::Core { code: ErrorCode::from(SealpostError::from(c)) },
            sc::Error::WrongAccount => RelayError::WrongAccount,
            _ => RelayError::Malformed { what: "answer".to_owned() },
        }
    }
}

impl From<SealpostError> for RelayError {
    fn from(e: SealpostError) -> Self {
        match e {
            SealpostError::InvalidArgument => RelayError::InvalidArgument,
            other => RelayError::Core { code: ErrorCode::from(other) },
        }
    }
}

type Result<T> = std::result::Result<T, RelayError>;

fn account_id(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| RelayError::InvalidArgument)
}

/// Signs relay requests for one account (from `Account.relay_signer()`):
/// it signs only under the relay-request context.
#[derive(uniffi::Object)]
pub struct RelaySigner {
    pub(crate) inner: sealpost::RelaySigner,
}

#[uniffi::export]
impl RelaySigner {
    /// The account id (the identity's Ed25519 key, 32 bytes).
    pub fn account(&self) -> Vec<u8> {
        self.inner.account().to_vec()
    }
}

/// A relay session (from [`parse_open_session`]): deposits authorized with
/// [`RelayRequest::authorize_session`] cost the relay a MAC, not a
/// signature check. Thread-safe; each use takes the next sequence number.
#[derive(uniffi::Object)]
pub struct RelaySession {
    inner: Mutex<sc::RelaySession>,
}

/// One API request: send [`RelayRequest::body`] with
/// [`RelayRequest::method`] to the relay's base URL followed by
/// [`RelayRequest::path_and_query`], with the `Content-Type` of
/// [`RelayRequest::content_type`] and the `Authorization` value of
/// [`RelayRequest::authorize`].
#[derive(uniffi::Object)]
pub struct RelayRequest {
    inner: sc::Request,
}

fn request(inner: sc::Request) -> Arc<RelayRequest> {
    Arc::new(RelayRequest { inner })
}

#[uniffi::export]
impl RelayRequest {
    /// `POST /v1/keys/bundle`: publish the account's bundle.
    #[uniffi::constructor]
    pub fn publish_bundle(bundle: Arc<PrekeyBundle>) -> Arc<Self> {
        request(sc::Request::publish_bundle(&bundle.inner))
    }

    /// `POST /v1/keys/one-time`: upload one-time prekeys (the bytes from
    /// `Account.generate_one_time_prekeys`).
    #[uniffi::constructor]
    pub fn upload_prekeys(prekeys: Vec<Vec<u8>>) -> Result<Arc<Self>> {
        let keys = prekeys
            .iter()
            .map(|k| sealpost::OneTimePrekey::from_bytes(k).map_err(|_| RelayError::InvalidArgument))
            .collect::<Result<Vec<_>>>()?;
        Ok(request(sc::Request::upload_prekeys(&keys)))
    }

    /// `GET /v1/keys/{account}`: fetch someone's bundle.
    #[uniffi::constructor]
    pub fn fetch_bundle(account: Vec<u8>) -> Result<Arc<Self>> {
        Ok(request(sc::Request::fetch_bundle(&account_id(&account)?)))
    }

    /// `POST /v1/sessions`: open a relay session.
    #[uniffi::constructor]
    pub fn open_session() -> Arc<Self> {
        request(sc::Request::open_session())
    }

    /// `POST /v1/messages`: deposit an envelope for recipients (account ids).
    #[uniffi::constructor]
    pub fn deposit(recipients: Vec<Vec<u8>>, envelope: Vec<u8>) -> Result<Arc<Self>> {
        let ids = recipients.iter().map(|r| account_id(r)).collect::<Result<Vec<_>>>()?;
        Ok(request(sc::Request::deposit(&ids, &envelope)))
    }

    /// `GET /v1/messages?after=&limit=`: read messages with id above `after`.
    #[uniffi::constructor]
    pub fn pull(after: i64, limit: u32) -> Arc<Self> {
        request(sc::Request::pull(after, limit))
    }

    /// `POST /v1/messages/ack`: delete messages from the mailbox.
    #[uniffi::constructor]
    pub fn ack(ids: Vec<i64>) -> Arc<Self> {
        request(sc::Request::ack(&ids))
    }

    /// `POST /v1/handles/claim`: ask for a verification code.
    #[uniffi::constructor]
    pub fn claim_handle(handle: String) -> Arc<Self> {
        request(sc::Request::claim_handle(&handle))
    }

    /// `POST /v1/handles/verify`: prove the code.
    #[uniffi::constructor]
    pub fn verify_handle(handle: String, code: String) -> Arc<Self> {
        request(sc::Request::verify_handle(&handle, &code))
    }

    /// `GET /v1/handles/{handle}`: look a handle up.
    #[uniffi::constructor]
    pub fn lookup_handle(handle: String) -> Arc<Self> {
        request(sc::Request::lookup_handle(&handle))
    }

    /// `GET /v1/ws`: the WebSocket upgrade.
    #[uniffi::constructor]
    pub fn websocket() -> Arc<Self> {
        request(sc::Request::websocket())
    }

    /// `POST /v1/mqtt`: enrol the account's mailbox on the relay's MQTT
    /// broker (a new broker password each time).
    #[uniffi::constructor]
    pub fn enrol_mqtt() -> Arc<Self> {
        request(sc::Request::enrol_mqtt())
    }

    /// The MQTT 5 user properties of this request signed with
    /// `authorization` (from [`RelayRequest::authorize`]): publish them to
    /// the mailbox's request topic, QoS 1, with [`RelayRequest::body`] as
    /// the payload, [`RelayRequest::content_type`] as the content type, a
    /// response topic under the enrolment's `responses` and correlation
    /// data of at most 64 bytes.
    pub fn mqtt_properties(&self, authorization: String) -> Vec<MqttProperty> {
        sc::request_properties(&self.inner, &authorization)
            .into_iter()
            .map(|(name, value)| MqttProperty { name, value })
            .collect()
    }

    /// `"GET"` or `"POST"`.
    pub fn method(&self) -> String {
        self.inner.method().as_str().to_owned()
    }

    /// The path and query, appended to the relay's base URL.
    pub fn path_and_query(&self) -> String {
        self.inner.path_and_query().to_owned()
    }

    /// The body (empty for GET).
    pub fn body(&self) -> Vec<u8> {
        self.inner.body().to_vec()
    }

    /// `"application/json"` for POST, none for GET.
    pub fn content_type(&self) -> Option<String> {
        self.inner.content_type().map(str::to_owned)
    }

    /// The `Authorization` value, signed now (or at `now`, Unix seconds)
    /// with a random nonce from the operating system (or `nonce`, 16
    /// bytes; tests only: never reuse one).
    #[uniffi::method(default(now = None, nonce = None))]
    pub fn authorize(&self, signer: Arc<RelaySigner>, now: Option<u64>, nonce: Option<Vec<u8>>) -> Result<String> {
        let now = clock(now)?;
        let nonce: [u8; 16] = match nonce {
            Some(n) => n.as_slice().try_into().map_err(|_| RelayError::InvalidArgument)?,
            None => {
                let mut n = [0u8; 16];
                rand_core::Rng::fill_bytes(&mut crate::rng(), &mut n);
                n
            }
        };
        Ok(self.inner.authorize(&signer.inner, now, &nonce))
    }

    /// The `Authorization` value under a relay session (deposits only).
    pub fn authorize_session(&self, session: Arc<RelaySession>) -> Result<String> {
        let mut guard = lock(&session.inner)?;
        Ok(self.inner.authorize_session(&mut guard))
    }
}

/// One MQTT 5 user property.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MqttProperty {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// An answer's status and `Retry-After`, as the `parse_*` functions take them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AnswerStatus {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` value, when the relay asks to wait.
    pub retry_after: Option<String>,
}

/// The status and `Retry-After` of an answer received over MQTT, from its
/// user properties; its payload is the body for the `parse_*` function.
#[uniffi::export]
pub fn mqtt_answer_status(properties: Vec<MqttProperty>) -> Result<AnswerStatus> {
    let pairs: Vec<(String, String)> = properties.into_iter().map(|p| (p.name, p.value)).collect();
    let (status, retry_after) = sc::mqtt_status(&pairs)?;
    Ok(AnswerStatus { status, retry_after: retry_after.map(str::to_owned) })
}

/// A mailbox enrolled on the relay's MQTT broker. An object, not a
/// record, so that printing it never shows the password.
#[derive(uniffi::Object)]
pub struct MqttEnrolment {
    inner: sc::MqttEnrolled,
}

#[uniffi::export]
impl MqttEnrolment {
    /// The broker username.
    pub fn username(&self) -> String {
        self.inner.username.clone()
    }

    /// The broker password (a secret: keep it like a key).
    pub fn password(&self) -> String {
        self.inner.password().to_owned()
    }

    /// The only client id the broker accepts for this username.
    pub fn client_id(&self) -> String {
        self.inner.client_id.clone()
    }

    /// Subscribe (QoS 1): each new envelope arrives as a push frame
    /// ([`parse_push_frame`]).
    pub fn mailbox(&self) -> String {
        self.inner.topics.mailbox.clone()
    }

    /// Publish requests here.
    pub fn requests(&self) -> String {
        self.inner.topics.requests.clone()
    }

    /// Response topics start with this (subscribe to it followed by `#`).
    pub fn responses(&self) -> String {
        self.inner.topics.responses.clone()
    }
}

/// `enrol_mqtt`'s answer.
#[uniffi::export]
pub fn parse_enrol_mqtt(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<Arc<MqttEnrolment>> {
    Ok(Arc::new(MqttEnrolment { inner: parse::<sc::MqttEnrolled>(status, retry_after, &body)? }))
}

/// `/v1/ws?auth=…`: the WebSocket path carrying a signed
/// [`RelayRequest::websocket`] authorization, for stacks that cannot set
/// headers on the upgrade.
#[uniffi::export]
pub fn ws_auth_query(authorization: String) -> String {
    sc::ws_auth_query(&authorization)
}

fn parse<T: sc::Reply>(status: u16, retry_after: Option<String>, body: &[u8]) -> Result<T> {
    Ok(sc::parse_response(status, retry_after.as_deref(), body)?)
}

/// `publish_bundle`'s answer: the account id.
#[uniffi::export]
pub fn parse_publish_bundle(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<Vec<u8>> {
    Ok(parse::<sc::BundlePublished>(status, retry_after, &body)?.account.to_vec())
}

/// `upload_prekeys`'s answer: how many one-time prekeys the relay holds.
#[uniffi::export]
pub fn parse_upload_prekeys(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<u64> {
    Ok(parse::<sc::PrekeysStored>(status, retry_after, &body)?.one_time_prekeys)
}

/// A fetched, verified bundle.
#[derive(uniffi::Record)]
pub struct FetchedBundle {
    /// The bundle (with a one-time prekey when the relay had one).
    pub bundle: Arc<PrekeyBundle>,
    /// One-time prekeys left for that account.
    pub one_time_prekeys_left: u64,
}

/// `fetch_bundle`'s answer, checked to be `account`'s bundle.
#[uniffi::export]
pub fn parse_fetch_bundle(
    account: Vec<u8>,
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
) -> Result<FetchedBundle> {
    let fetched = parse::<sc::BundleFetched>(status, retry_after, &body)?;
    fetched.check_account(&account_id(&account)?)?;
    Ok(FetchedBundle {
        bundle: Arc::new(PrekeyBundle { inner: fetched.bundle }),
        one_time_prekeys_left: fetched.one_time_prekeys_left,
    })
}

/// An opened relay session.
#[derive(uniffi::Record)]
pub struct OpenedSession {
    /// The session, for [`RelayRequest::authorize_session`].
    pub session: Arc<RelaySession>,
    /// Seconds it lasts; open a new one before (or on `session_expired`).
    pub expires_in: u64,
}

/// `open_session`'s answer.
#[uniffi::export]
pub fn parse_open_session(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<OpenedSession> {
    let opened = parse::<sc::SessionOpened>(status, retry_after, &body)?;
    Ok(OpenedSession {
        session: Arc::new(RelaySession { inner: Mutex::new(opened.session()) }),
        expires_in: opened.expires_in,
    })
}

/// `deposit`'s answer: the message ids, one per recipient.
#[uniffi::export]
pub fn parse_deposit(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<Vec<i64>> {
    Ok(parse::<sc::Deposited>(status, retry_after, &body)?.ids)
}

/// A message from the mailbox.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RelayDelivered {
    /// The relay's id (acknowledge it to delete the message).
    pub id: i64,
    /// The sender's account id.
    pub sender: Vec<u8>,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// When the relay stored it (Unix seconds).
    pub received_at: u64,
}

fn delivered(m: sc::Delivered) -> RelayDelivered {
    RelayDelivered { id: m.id, sender: m.sender.to_vec(), envelope: m.envelope, received_at: m.received_at }
}

/// A page of messages.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MessagePage {
    /// Oldest first.
    pub messages: Vec<RelayDelivered>,
    /// Pass as `after` for the next page.
    pub next_after: i64,
}

/// `pull`'s answer.
#[uniffi::export]
pub fn parse_pull(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<MessagePage> {
    let page = parse::<sc::MessagePage>(status, retry_after, &body)?;
    Ok(MessagePage { messages: page.messages.into_iter().map(delivered).collect(), next_after: page.next_after })
}

/// `ack`'s answer: how many messages were deleted.
#[uniffi::export]
pub fn parse_ack(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<u64> {
    Ok(parse::<sc::Acked>(status, retry_after, &body)?.deleted)
}

/// A claimed handle.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HandleClaimed {
    /// The normalized handle.
    pub handle: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

/// `claim_handle`'s answer.
#[uniffi::export]
pub fn parse_claim_handle(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<HandleClaimed> {
    let c = parse::<sc::HandleClaimed>(status, retry_after, &body)?;
    Ok(HandleClaimed { handle: c.handle, expires_in: c.expires_in })
}

/// A handle bound to the caller.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HandleBound {
    /// The normalized handle.
    pub handle: String,
    /// The caller's account id.
    pub account: Vec<u8>,
}

/// `verify_handle`'s answer.
#[uniffi::export]
pub fn parse_verify_handle(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<HandleBound> {
    let b = parse::<sc::HandleBound>(status, retry_after, &body)?;
    Ok(HandleBound { handle: b.handle, account: b.account.to_vec() })
}

/// A looked-up handle. Compare the safety number before trusting it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HandleFound {
    /// The normalized handle.
    pub handle: String,
    /// The account id bound to it.
    pub account: Vec<u8>,
    /// That account's public identity (bytes, verified).
    pub identity: Vec<u8>,
}

/// `lookup_handle`'s answer.
#[uniffi::export]
pub fn parse_lookup_handle(status: u16, retry_after: Option<String>, body: Vec<u8>) -> Result<HandleFound> {
    let f = parse::<sc::HandleFound>(status, retry_after, &body)?;
    Ok(HandleFound { handle: f.handle, account: f.account.to_vec(), identity: f.identity.to_bytes().to_vec() })
}

/// A WebSocket frame from the relay.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PushFrame {
    /// A message.
    Message {
        /// The message.
        message: RelayDelivered,
    },
    /// An acknowledgement was processed.
    Acked {
        /// Messages deleted.
        deleted: u64,
    },
    /// The relay refused a frame.
    Error {
        /// The relay's machine code.
        code: String,
        /// The explanation.
        message: String,
    },
}

/// Parses a text frame from the relay.
#[uniffi::export]
pub fn parse_push_frame(text: String) -> Result<PushFrame> {
    Ok(match sc::PushFrame::decode(&text)? {
        sc::PushFrame::Message(m) => PushFrame::Message { message: delivered(m) },
        sc::PushFrame::Acked(deleted) => PushFrame::Acked { deleted },
        sc::PushFrame::Error(e) => PushFrame::Error { code: e.code.as_str().to_owned(), message: e.message },
    })
}

/// The text frame acknowledging (deleting) messages.
#[uniffi::export]
pub fn ack_frame(ids: Vec<i64>) -> String {
    sc::ack_frame(&ids)
}
