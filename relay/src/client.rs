//! A Rust client for the relay's API, used by the tests and the examples.
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

// Indexing a `serde_json::Value` never panics (a missing key gives `Null`).
#![allow(clippy::indexing_slicing)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand_core::Rng;
use sealpost::{IdentityPublic, OneTimePrekey, PrekeyBundle, RelaySigner};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::auth::authorization;

/// What can go wrong talking to the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The relay answered with an error.
    #[error("relay answered {status} {code}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The error code from the JSON body.
        code: String,
        /// The message from the JSON body.
        message: String,
    },
    /// The connection failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The relay's answer did not make sense (or did not verify).
    #[error("protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The HTTP status, if the relay answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<sealpost::Error> for ClientError {
    fn from(e: sealpost::Error) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

/// Result of client calls.
pub type ClientResult<T> = Result<T, ClientError>;

/// A message delivered from the caller's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The relay's id (acknowledge it to delete the message).
    pub id: i64,
    /// The sender's account (identity signing key).
    pub sender: [u8; 32],
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// When the relay stored it.
    pub received_at: u64,
}

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
    /// The body as JSON (or `Null`).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A relay session: deposits are authenticated with a MAC under its key.
struct RelaySession {
    id: [u8; 16],
    key: zeroize::Zeroizing<[u8; 32]>,
    seq: u64,
    expires: std::time::Instant,
}

/// A client acting for one account.
#[derive(Clone)]
pub struct Client {
    base: String,
    signer: RelaySigner,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    session: std::sync::Arc<tokio::sync::Mutex<Option<RelaySession>>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Encodes an account id for URLs and JSON.
pub fn account_id(identity: &IdentityPublic) -> String {
    B64.encode(identity.signing_key())
}

fn decode(field: &str, v: &Value) -> ClientResult<Vec<u8>> {
    let s = v.as_str().ok_or_else(|| ClientError::Protocol(format!("{field} missing")))?;
    B64.decode(s).map_err(|_| ClientError::Protocol(format!("{field} is not base64url")))
}

impl Client {
    /// A client for the relay at `base` (`http://host:port`).
    pub fn new(base: &str, signer: RelaySigner) -> ClientResult<Self> {
        if !base.starts_with("http://") {
            return Err(ClientError::Transport("this client speaks http:// (use a TLS proxy for https)".into()));
        }
        let http = HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new());
        Ok(Self { base: base.trim_end_matches('/').to_owned(), signer, http, session: Default::default() })
    }

    /// This client's account id.
    pub fn account(&self) -> [u8; 32] {
        *self.signer.account()
    }

    /// The `Authorization` header for a request made now.
    pub fn sign(&self, method: &str, path_and_query: &str, body: &[u8]) -> String {
        let mut nonce = [0u8; 16];
        sealpost::os_rng().fill_bytes(&mut nonce);
        authorization(&self.signer, method, path_and_query, now(), &nonce, body)
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
        let mut req = Request::builder().method(method.clone()).uri(format!("{}{path_and_query}", self.base));
        if sign {
            req = req.header("authorization", self.sign(method.as_str(), path_and_query, &body));
        }
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| ClientError::Transport(e.to_string()))?;
        let resp = self.http.request(req).await.map_err(|e| ClientError::Transport(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| ClientError::Transport(e.to_string()))?.to_bytes();
        Ok(RawResponse { status: parts.status, headers: parts.headers, body })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> ClientResult<Value> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let headers =
            if method == Method::POST { vec![("content-type", "application/json".to_owned())] } else { vec![] };
        let resp = self.raw(method, path, &headers, bytes, true).await?;
        let json = resp.json();
        if resp.status.is_success() {
            Ok(json)
        } else {
            Err(ClientError::Http {
                status: resp.status.as_u16(),
                code: json.pointer("/error/code").and_then(Value::as_str).unwrap_or("").to_owned(),
                message: json.pointer("/error/message").and_then(Value::as_str).unwrap_or("").to_owned(),
            })
        }
    }

    /// Publishes the signed part of the caller's bundle.
    pub async fn publish_bundle(&self, bundle: &PrekeyBundle) -> ClientResult<()> {
        self.call(Method::POST, "/v1/keys/bundle", Some(json!({ "bundle": B64.encode(bundle.to_bytes()) }))).await?;
        Ok(())
    }

    /// Uploads one-time prekeys; returns how many the relay holds.
    pub async fn upload_prekeys(&self, prekeys: &[OneTimePrekey]) -> ClientResult<u64> {
        let list: Vec<String> = prekeys.iter().map(|k| B64.encode(k.to_bytes())).collect();
        let v = self.call(Method::POST, "/v1/keys/one-time", Some(json!({ "prekeys": list }))).await?;
        v["one_time_prekeys"].as_u64().ok_or_else(|| ClientError::Protocol("one_time_prekeys missing".into()))
    }

    /// Fetches (and verifies) someone's bundle, claiming one one-time prekey.
    pub async fn fetch_bundle(&self, account: &[u8; 32]) -> ClientResult<(PrekeyBundle, u64)> {
        let v = self.call(Method::GET, &format!("/v1/keys/{}", B64.encode(account)), None).await?;
        let bundle = PrekeyBundle::from_bytes(&decode("bundle", &v["bundle"])?)
            .map_err(|e| ClientError::Protocol(format!("bundle does not verify: {e}")))?;
        if bundle.identity().signing_key() != account {
            return Err(ClientError::Protocol("the relay served another account's bundle".into()));
        }
        Ok((bundle, v["one_time_prekeys_left"].as_u64().unwrap_or(0)))
    }

    /// Opens a relay session (one identity-signed request); deposits are
    /// then authenticated with a cheap MAC under the session key.
    pub async fn open_session(&self) -> ClientResult<()> {
        let v = self.call(Method::POST, "/v1/sessions", Some(json!({}))).await?;
        let id = decode("id", &v["id"])?.try_into().map_err(|_| ClientError::Protocol("bad session id".into()))?;
        let key: [u8; 32] =
            decode("key", &v["key"])?.try_into().map_err(|_| ClientError::Protocol("bad session key".into()))?;
        let ttl = v["expires_in"].as_u64().unwrap_or(0).saturating_sub(30);
        *self.session.lock().await = Some(RelaySession {
            id,
            key: zeroize::Zeroizing::new(key),
            seq: 0,
            expires: std::time::Instant::now() + std::time::Duration::from_secs(ttl),
        });
        Ok(())
    }

    /// The next session credentials, opening a session when needed.
    async fn next_session(&self) -> ClientResult<([u8; 16], zeroize::Zeroizing<[u8; 32]>, u64)> {
        let fresh = self.session.lock().await.as_ref().is_some_and(|s| s.expires > std::time::Instant::now());
        if !fresh {
            self.open_session().await?;
        }
        let mut guard = self.session.lock().await;
        let s = guard.as_mut().ok_or_else(|| ClientError::Protocol("no session".into()))?;
        s.seq = s.seq.saturating_add(1);
        Ok((s.id, s.key.clone(), s.seq))
    }

    /// Deposits an envelope for one or more recipients; returns the ids.
    /// Authenticated with the relay session (opened on first use, renewed
    /// when the relay forgot it, for example after a restart).
    pub async fn deposit(&self, recipients: &[[u8; 32]], envelope: &[u8]) -> ClientResult<Vec<i64>> {
        let rs: Vec<String> = recipients.iter().map(|r| B64.encode(r)).collect();
        let body = json!({ "recipients": rs, "envelope": B64.encode(envelope) }).to_string().into_bytes();
        for attempt in 0..2 {
            let (id, key, seq) = self.next_session().await?;
            let auth = crate::auth::session_authorization(&id, &key, "POST", "/v1/messages", seq, &body);
            let headers = [("content-type", "application/json".to_owned()), ("authorization", auth)];
            let resp = self.raw(Method::POST, "/v1/messages", &headers, body.clone(), false).await?;
            let v = resp.json();
            if resp.status.is_success() {
                return v["ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .ok_or_else(|| ClientError::Protocol("ids missing".into()));
            }
            let code = v.pointer("/error/code").and_then(Value::as_str).unwrap_or("").to_owned();
            if attempt == 0 && matches!(code.as_str(), "unknown_session" | "session_expired") {
                *self.session.lock().await = None;
                continue;
            }
            return Err(ClientError::Http {
                status: resp.status.as_u16(),
                code,
                message: v.pointer("/error/message").and_then(Value::as_str).unwrap_or("").to_owned(),
            });
        }
        Err(ClientError::Protocol("the relay refused every session".into()))
    }

    /// Reads up to `limit` messages with id above `after`.
    pub async fn pull(&self, after: i64, limit: u32) -> ClientResult<Vec<Delivered>> {
        let v = self.call(Method::GET, &format!("/v1/messages?after={after}&limit={limit}"), None).await?;
        let list = v["messages"].as_array().ok_or_else(|| ClientError::Protocol("messages missing".into()))?;
        list.iter().map(parse_delivered).collect()
    }

    /// Deletes messages from the caller's mailbox; returns how many.
    pub async fn ack(&self, ids: &[i64]) -> ClientResult<u64> {
        let v = self.call(Method::POST, "/v1/messages/ack", Some(json!({ "ids": ids }))).await?;
        v["deleted"].as_u64().ok_or_else(|| ClientError::Protocol("deleted missing".into()))
    }

    /// Asks for a verification code for `handle`.
    pub async fn claim_handle(&self, handle: &str) -> ClientResult<()> {
        self.call(Method::POST, "/v1/handles/claim", Some(json!({ "handle": handle }))).await?;
        Ok(())
    }

    /// Proves the code and binds the handle to the caller.
    pub async fn verify_handle(&self, handle: &str, code: &str) -> ClientResult<()> {
        self.call(Method::POST, "/v1/handles/verify", Some(json!({ "handle": handle, "code": code }))).await?;
        Ok(())
    }

    /// Finds the identity bound to `handle`. Compare its safety number out
    /// of band before trusting it.
    pub async fn lookup_handle(&self, handle: &str) -> ClientResult<IdentityPublic> {
        let encoded: String =
            handle.bytes().map(|b| if b == b'+' { "%2B".to_owned() } else { char::from(b).to_string() }).collect();
        let v = self.call(Method::GET, &format!("/v1/handles/{encoded}"), None).await?;
        IdentityPublic::from_bytes(&decode("identity", &v["identity"])?)
            .map_err(|e| ClientError::Protocol(format!("identity does not verify: {e}")))
    }

    /// Opens the push connection.
    pub async fn connect_push(&self) -> ClientResult<Push> {
        let url = format!("{}/v1/ws", self.base.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request().map_err(|e| ClientError::Transport(e.to_string()))?;
        let auth = self.sign("GET", "/v1/ws", b"");
        req.headers_mut()
            .insert("authorization", auth.parse().map_err(|_| ClientError::Transport("bad header".into()))?);
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(Push { ws })
    }
}

fn parse_delivered(m: &Value) -> ClientResult<Delivered> {
    Ok(Delivered {
        id: m["id"].as_i64().ok_or_else(|| ClientError::Protocol("id missing".into()))?,
        sender: decode("sender", &m["sender"])?
            .try_into()
            .map_err(|_| ClientError::Protocol("sender is not 32 bytes".into()))?,
        envelope: decode("envelope", &m["envelope"])?,
        received_at: m["received_at"].as_u64().unwrap_or(0),
    })
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
    /// An acknowledgement was processed.
    Acked(u64),
    /// The relay refused a frame.
    Error(String),
}

impl Push {
    /// The next event, or `None` when the connection closed.
    pub async fn next(&mut self) -> Option<ClientResult<PushEvent>> {
        loop {
            let frame = match self.ws.next().await? {
                Ok(f) => f,
                Err(e) => return Some(Err(ClientError::Transport(e.to_string()))),
            };
            let Message::Text(text) = frame else { continue };
            let v: Value = match serde_json::from_str(text.as_str()) {
                Ok(v) => v,
                Err(e) => return Some(Err(ClientError::Protocol(e.to_string()))),
            };
            return Some(match v["type"].as_str() {
                Some("message") => parse_delivered(&v).map(PushEvent::Message),
                Some("acked") => Ok(PushEvent::Acked(v["deleted"].as_u64().unwrap_or(0))),
                Some("error") => Ok(PushEvent::Error(v["code"].as_str().unwrap_or("").to_owned())),
                _ => Err(ClientError::Protocol(format!("unknown frame {text}"))),
            });
        }
    }

    /// Acknowledges (deletes) messages.
    pub async fn ack(&mut self, ids: &[i64]) -> ClientResult<()> {
        self.send_text(json!({ "type": "ack", "ids": ids }).to_string()).await
    }

    /// Sends a raw text frame (for tests of bad input).
    pub async fn send_text(&mut self, text: String) -> ClientResult<()> {
        self.ws.send(Message::text(text)).await.map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
