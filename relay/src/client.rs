//! A Rust client for the relay's API, used by the tests and the examples:
//! HTTP and WebSocket over tokio around `sealpost-client`, which builds,
//! signs and parses every request (the same code the bindings use).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sealpost_relay::client::ClientError> {
//! use sealpost::{Account, SessionPolicy};
//! use sealpost_relay::client::Client;
//! let mut rng = sealpost::os_rng();
//! let mut account = Account::new(&mut rng, 1_700_000_000);
//! let client = Client::new("http://127.0.0.1:8080", account.relay_signer())?;
//! client.publish_bundle(&account.bundle(&SessionPolicy::default())?).await?;
//! client.upload_prekeys(&account.generate_one_time_prekeys(&mut rng, 20)).await?;
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request as HttpRequest, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand_core::Rng;
use sealpost::{IdentityPublic, OneTimePrekey, PrekeyBundle, RelaySigner};
use sealpost_client::{
    Acked, BundleFetched, Deposited, ErrorCode, HandleBound, HandleClaimed, HandleFound, MessagePage, PrekeysStored,
    PushFrame, RelaySession, Reply, Request, SessionOpened, ack_frame, parse_response,
};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub use sealpost_client::Delivered;

/// What can go wrong talking to the relay.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The relay refused the request ([`sealpost_client::Error::Relay`],
    /// with its [`ErrorCode`]), or its answer did not parse or verify
    /// (with the core's error kind where the core refused it).
    #[error(transparent)]
    Protocol(#[from] sealpost_client::Error),
    /// The request could not be made or the connection failed.
    #[error("transport: {0}")]
    Transport(#[source] std::sync::Arc<TransportError>),
}

/// Why a request could not be made or its connection failed
/// ([`ClientError::Transport`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The relay's URL is not `http://` (this client speaks plain HTTP;
    /// put a TLS proxy in front for https).
    #[error("this client speaks http:// (use a TLS proxy for https)")]
    UnsupportedScheme,
    /// The request could not be built (an invalid URL or header).
    #[error("building the request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The connection failed or the relay's answer was not HTTP.
    #[error("{0}")]
    Http(#[from] hyper_util::client::legacy::Error),
    /// The answer's body could not be read.
    #[error("reading the answer: {0}")]
    Body(#[from] hyper::Error),
    /// An `Authorization` value is not a valid header value.
    #[error("the authorization header: {0}")]
    Header(#[from] hyper::header::InvalidHeaderValue),
    /// The push connection failed.
    #[error("push connection: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

impl ClientError {
    /// The HTTP status, if the relay refused the request.
    pub fn status(&self) -> Option<u16> {
        self.relay_error().map(sealpost_client::RelayError::status)
    }

    /// The relay's error code, if it refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        self.relay_error().map(|e| e.code)
    }

    /// The relay's `Retry-After` seconds, if it refused the request with one.
    pub fn retry_after(&self) -> Option<u64> {
        self.relay_error().and_then(|e| e.retry_after)
    }

    fn relay_error(&self) -> Option<&sealpost_client::RelayError> {
        match self {
            ClientError::Protocol(sealpost_client::Error::Relay(e)) => Some(e),
            _ => None,
        }
    }
}

impl From<sealpost::Error> for ClientError {
    fn from(e: sealpost::Error) -> Self {
        ClientError::Protocol(sealpost_client::Error::Core(e))
    }
}

fn transport(e: impl Into<TransportError>) -> ClientError {
    ClientError::Transport(std::sync::Arc::new(e.into()))
}

/// Result of client calls.
pub type ClientResult<T> = Result<T, ClientError>;

/// A raw answer: status, headers and body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl RawResponse {
    /// The body as JSON (or `Null`), for tests that look at raw answers.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Parses the answer as reply `T` (or the relay's typed refusal).
    pub fn parse<T: Reply>(&self) -> ClientResult<T> {
        let retry_after = self.headers.get(hyper::header::RETRY_AFTER).and_then(|v| v.to_str().ok());
        Ok(parse_response(self.status.as_u16(), retry_after, &self.body)?)
    }
}

/// A relay session: deposits are authenticated with a MAC under its key.
struct OpenSession {
    session: RelaySession,
    renew_at: Instant,
}

/// A client acting for one account.
#[derive(Clone)]
pub struct Client {
    base: String,
    signer: RelaySigner,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    session: std::sync::Arc<tokio::sync::Mutex<Option<OpenSession>>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn fresh_nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    sealpost::os_rng().fill_bytes(&mut nonce);
    nonce
}

/// Encodes an account id for URLs and JSON.
pub fn account_id(identity: &IdentityPublic) -> String {
    sealpost_client::encode_account(identity.signing_key())
}

impl Client {
    /// A client for the relay at `base` (`http://host:port`), signing with
    /// the account's relay signer.
    pub fn new(base: &str, signer: RelaySigner) -> ClientResult<Self> {
        if !base.starts_with("http://") {
            return Err(transport(TransportError::UnsupportedScheme));
        }
        let http = HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new());
        Ok(Self { base: base.trim_end_matches('/').to_owned(), signer, http, session: Default::default() })
    }

    /// This client, its account and its relay session, talking to another
    /// address of the same relay (`http://host:port`), as requests spread
    /// over instances by a load balancer do.
    pub fn at(&self, base: &str) -> ClientResult<Self> {
        if !base.starts_with("http://") {
            return Err(transport(TransportError::UnsupportedScheme));
        }
        Ok(Self { base: base.trim_end_matches('/').to_owned(), ..self.clone() })
    }

    /// This client's account id.
    pub fn account(&self) -> [u8; 32] {
        *self.signer.account()
    }

    /// The `Authorization` header for a request made now (for tests that
    /// send raw requests).
    pub fn sign(&self, method: &str, path_and_query: &str, body: &[u8]) -> String {
        let method = if method == "POST" { sealpost_client::Method::Post } else { sealpost_client::Method::Get };
        Request::custom(method, path_and_query, body.to_vec()).authorize(&self.signer, now(), &fresh_nonce())
    }

    /// Sends a request with full control over headers and body (the
    /// `Authorization` header is added when `sign` is set).
    pub async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        sign: bool,
    ) -> ClientResult<RawResponse> {
        let mut req = HttpRequest::builder().method(method.clone()).uri(format!("{}{path_and_query}", self.base));
        if sign {
            req = req.header("authorization", self.sign(method.as_str(), path_and_query, &body));
        }
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(transport)?;
        let resp = self.http.request(req).await.map_err(transport)?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(transport)?.to_bytes();
        Ok(RawResponse { status: parts.status, headers: parts.headers, body })
    }

    /// Sends a built request with the given `Authorization` value.
    async fn send(&self, request: Request, authorization: String) -> ClientResult<RawResponse> {
        let method = match request.method() {
            sealpost_client::Method::Get => Method::GET,
            sealpost_client::Method::Post => Method::POST,
        };
        let mut headers = vec![("authorization", authorization)];
        if let Some(ct) = request.content_type() {
            headers.push(("content-type", ct.to_owned()));
        }
        let path = request.path_and_query().to_owned();
        self.raw(method, &path, &headers, request.into_body(), false).await
    }

    /// Signs a built request now, sends it and parses the reply.
    async fn call<T: Reply>(&self, request: Request) -> ClientResult<T> {
        let auth = request.authorize(&self.signer, now(), &fresh_nonce());
        self.send(request, auth).await?.parse()
    }

    /// Publishes the signed part of the caller's bundle.
    pub async fn publish_bundle(&self, bundle: &PrekeyBundle) -> ClientResult<()> {
        self.call::<sealpost_client::BundlePublished>(Request::publish_bundle(bundle)).await.map(drop)
    }

    /// Uploads one-time prekeys; returns how many the relay holds.
    pub async fn upload_prekeys(&self, prekeys: &[OneTimePrekey]) -> ClientResult<u64> {
        Ok(self.call::<PrekeysStored>(Request::upload_prekeys(prekeys)).await?.one_time_prekeys)
    }

    /// Fetches (and verifies) someone's bundle, claiming one one-time
    /// prekey; returns it with how many one-time prekeys are left.
    pub async fn fetch_bundle(&self, account: &[u8; 32]) -> ClientResult<(PrekeyBundle, u64)> {
        let fetched = self.call::<BundleFetched>(Request::fetch_bundle(account)).await?;
        fetched.check_account(account)?;
        Ok((fetched.bundle, fetched.one_time_prekeys_left))
    }

    /// Opens a relay session (one identity-signed request); deposits are
    /// then authenticated with a cheap MAC under the session key.
    pub async fn open_session(&self) -> ClientResult<()> {
        let opened = self.call::<SessionOpened>(Request::open_session()).await?;
        let renew_at = Instant::now() + Duration::from_secs(opened.expires_in.saturating_sub(30));
        *self.session.lock().await = Some(OpenSession { session: opened.session(), renew_at });
        Ok(())
    }

    /// Deposits an envelope for one or more recipients; returns the ids.
    /// Authenticated with the relay session (opened on first use, renewed
    /// when the relay forgot it, for example after a restart, or when it
    /// expired).
    pub async fn deposit(&self, recipients: &[[u8; 32]], envelope: &[u8]) -> ClientResult<Vec<i64>> {
        let request = Request::deposit(recipients, envelope);
        let mut renewed = false;
        loop {
            let fresh = self.session.lock().await.as_ref().is_some_and(|s| s.renew_at > Instant::now());
            if !fresh {
                self.open_session().await?;
            }
            let auth = {
                let mut guard = self.session.lock().await;
                let open = guard
                    .as_mut()
                    .ok_or(ClientError::Protocol(sealpost_client::Error::Malformed { what: "relay session" }))?;
                request.authorize_session(&mut open.session)
            };
            let result = self.send(request.clone(), auth).await?.parse::<Deposited>();
            match result {
                Err(e)
                    if !renewed && matches!(e.code(), Some(ErrorCode::UnknownSession | ErrorCode::SessionExpired)) =>
                {
                    *self.session.lock().await = None;
                    renewed = true;
                }
                other => return other.map(|d| d.ids),
            }
        }
    }

    /// Reads up to `limit` messages with id above `after`.
    pub async fn pull(&self, after: i64, limit: u32) -> ClientResult<Vec<Delivered>> {
        Ok(self.call::<MessagePage>(Request::pull(after, limit)).await?.messages)
    }

    /// Deletes messages from the caller's mailbox; returns how many.
    pub async fn ack(&self, ids: &[i64]) -> ClientResult<u64> {
        Ok(self.call::<Acked>(Request::ack(ids)).await?.deleted)
    }

    /// Asks for a verification code for `handle`.
    pub async fn claim_handle(&self, handle: &str) -> ClientResult<()> {
        self.call::<HandleClaimed>(Request::claim_handle(handle)).await.map(drop)
    }

    /// Proves the code and binds the handle to the caller.
    pub async fn verify_handle(&self, handle: &str, code: &str) -> ClientResult<()> {
        self.call::<HandleBound>(Request::verify_handle(handle, code)).await.map(drop)
    }

    /// Finds the identity bound to `handle`. Compare its safety number out
    /// of band before trusting it.
    pub async fn lookup_handle(&self, handle: &str) -> ClientResult<IdentityPublic> {
        Ok(self.call::<HandleFound>(Request::lookup_handle(handle)).await?.identity)
    }

    /// Enrols the caller's mailbox for MQTT: its topics and a new broker
    /// password (docs/RELAY.md section 14).
    pub async fn enrol_mqtt(&self) -> ClientResult<sealpost_client::MqttEnrolled> {
        self.call::<sealpost_client::MqttEnrolled>(Request::enrol_mqtt()).await
    }

    /// Opens the push connection.
    pub async fn connect_push(&self) -> ClientResult<Push> {
        let request = Request::websocket();
        let url = format!("{}{}", self.base.replacen("http://", "ws://", 1), request.path_and_query());
        let mut req = url.into_client_request().map_err(transport)?;
        let auth = request.authorize(&self.signer, now(), &fresh_nonce());
        req.headers_mut().insert("authorization", auth.parse().map_err(transport)?);
        let (ws, _) = match tokio_tungstenite::connect_async(req).await {
            Ok(connected) => connected,
            // The relay refused the upgrade with a JSON error: keep its code.
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let retry_after = resp.headers().get(hyper::header::RETRY_AFTER).and_then(|v| v.to_str().ok());
                let body = resp.body().as_deref().unwrap_or_default();
                let refused = match sealpost_client::RelayError::decode(resp.status().as_u16(), retry_after, body) {
                    Ok(e) => sealpost_client::Error::Relay(e),
                    Err(e) => e,
                };
                return Err(ClientError::Protocol(refused));
            }
            Err(e) => return Err(transport(e)),
        };
        Ok(Push { ws })
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A push connection: new messages arrive as they are deposited.
pub struct Push {
    ws: WsStream,
}

/// One event on a push connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// A message.
    Message(Delivered),
    /// An acknowledgement was processed: this many messages were deleted.
    Acked(u64),
    /// The relay refused a frame.
    Error(ErrorCode),
}

impl Push {
    /// The next event, or `None` when the connection closed.
    pub async fn next(&mut self) -> Option<ClientResult<PushEvent>> {
        loop {
            let frame = match self.ws.next().await? {
                Ok(f) => f,
                Err(e) => return Some(Err(transport(e))),
            };
            let Message::Text(text) = frame else { continue };
            return Some(match PushFrame::decode(text.as_str()) {
                Ok(PushFrame::Message(m)) => Ok(PushEvent::Message(m)),
                Ok(PushFrame::Acked(n)) => Ok(PushEvent::Acked(n)),
                Ok(PushFrame::Error(e)) => Ok(PushEvent::Error(e.code)),
                Err(e) => Err(e.into()),
            });
        }
    }

    /// Acknowledges (deletes) messages.
    pub async fn ack(&mut self, ids: &[i64]) -> ClientResult<()> {
        self.send_text(ack_frame(ids)).await
    }

    /// Sends a raw text frame (for tests of bad input).
    pub async fn send_text(&mut self, text: String) -> ClientResult<()> {
        self.ws.send(Message::text(text)).await.map_err(transport)
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
