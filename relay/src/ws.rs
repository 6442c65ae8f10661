//! WebSocket push: `GET /v1/ws`, signed like any request (the
//! `Authorization` header, or for browsers an `auth` query parameter with
//! the same value, URL-encoded; the signed path is then `/v1/ws`).
//!
//! The relay sends every waiting message as a text frame
//! `{"type":"message","id":…,"sender":…,"envelope":…,"received_at":…}` and
//! then each new one as it is deposited. The client acknowledges with
//! `{"type":"ack","ids":[…]}`, answered by `{"type":"acked","deleted":n}`.
//! Malformed frames get `{"type":"error","code":…,"message":…}`; the
//! connection stays open.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::api::{Relay, Resp, unix_now};
use sealpost_client::{Credentials, acked_frame, decode_ack_frame, error_frame};

use crate::error::{ApiError, ErrorCode};
use crate::store::{AccountId, Store};

/// Messages pushed per store read.
const BATCH: u32 = 100;
/// A quiet connection re-checks its mailbox this often anyway.
const POLL: Duration = Duration::from_secs(30);

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let decoded = (b == b'%')
            .then(|| bytes.get(i.saturating_add(1)..i.saturating_add(3)))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match decoded {
            Some(v) => {
                out.push(v);
                i = i.saturating_add(3);
            }
            None => {
                out.push(if b == b'+' { b' ' } else { b });
                i = i.saturating_add(1);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks the handshake (RFC 6455: `Upgrade: websocket`, `Connection:
/// Upgrade`, a key, version 13), authenticates, takes one of the account's
/// connection places (429 when none is left, before anything is upgraded)
/// and upgrades the connection.
pub(crate) async fn upgrade(relay: Arc<Relay>, mut req: Request<Incoming>) -> Result<Resp, ApiError> {
    let not_ws = || ApiError::new(ErrorCode::NotWebsocket, "this route needs a WebSocket upgrade");
    let headers = req.headers();
    let has_token = |name, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(UPGRADE, "websocket") || !has_token(CONNECTION, "upgrade") {
        return Err(not_ws());
    }
    let key = headers.get(SEC_WEBSOCKET_KEY).ok_or_else(not_ws)?.clone();
    if headers.get(SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        let mut resp = crate::error::into_response(&ApiError::new(
            ErrorCode::UnsupportedWebsocketVersion,
            "only WebSocket version 13 is spoken",
        ));
        resp.headers_mut().insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Ok(resp);
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    let (header, signed_path) = match req.headers().get(hyper::header::AUTHORIZATION) {
        Some(h) => (
            h.to_str().map_err(|_| ApiError::new(ErrorCode::BadAuthorization, "bad header"))?.to_owned(),
            req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
        ),
        None => (
            query_param(&query, "auth")
                .ok_or_else(|| ApiError::new(ErrorCode::MissingAuthorization, "sign the upgrade request"))?,
            req.uri().path().to_owned(),
        ),
    };
    let creds = Credentials::parse(&header)?;
    let now = unix_now();
    creds.verify("GET", &signed_path, b"", now, relay.config.max_clock_skew_secs)?;
    crate::api::admit(&relay, &creds, true, now)?;
    let account = creds.account;
    // Registered before answering, so that concurrent upgrades cannot all
    // pass the count and be closed after 101.
    let registration = relay.hub.register(account, relay.config.ws_max_per_account).ok_or_else(|| ApiError {
        retry_after: Some(relay.config.ws_idle_secs),
        ..ApiError::new(ErrorCode::TooManyConnections, "too many push connections")
    })?;
    let accept = derive_accept_key(key.as_bytes());
    let slot = req.extensions_mut().remove::<Arc<crate::limits::ConnectionSlot>>();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let _slot = slot;
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = Some(ws_config(&relay.config));
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, config).await;
                if let Err(e) = session(relay, account, registration, ws).await {
                    tracing::debug!(error = %e, "websocket closed");
                }
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).map_err(crate::error::internal)?);
    Ok(resp)
}

/// Small buffers and inbound limits: clients only send acks, so a
/// connection needs little memory; the write buffer holds at most about
/// one pushed frame (sends wait for the socket instead of piling up).
fn ws_config(config: &crate::config::Config) -> WebSocketConfig {
    let largest_frame = config.max_envelope_bytes.div_ceil(3).saturating_mul(4).saturating_add(1024);
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(largest_frame.saturating_mul(2))
        .max_message_size(Some(config.ws_max_message_bytes))
        .max_frame_size(Some(config.ws_max_message_bytes))
}

/// Sends one frame, giving up (and so closing the connection) when the
/// client does not read it within `limit`.
async fn send<T>(tx: &mut T, message: Message, limit: Duration) -> Result<(), String>
where
    T: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    match tokio::time::timeout(limit, tx.send(message)).await {
        Ok(sent) => sent.map_err(|e| e.to_string()),
        Err(_) => Err("send timed out: the client does not read".into()),
    }
}

async fn session<S>(
    relay: Arc<Relay>,
    account: AccountId,
    mut registration: crate::hub::Registration,
    ws: WebSocketStream<S>,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut tx, mut rx) = ws.split();
    let limit = Duration::from_secs(relay.config.ws_send_timeout_secs);
    let batch_bytes = relay.config.ws_batch_bytes.min(relay.config.max_pull_bytes);
    let mut cursor = 0i64;
    let mut poll = tokio::time::interval(POLL);
    let idle = Duration::from_secs(relay.config.ws_idle_secs);
    let mut ping = tokio::time::interval(idle / 3);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        // Push everything new since the cursor.
        loop {
            let after = cursor;
            let batch = relay.store.pull(account, after, BATCH, batch_bytes).await.map_err(|e| e.to_string())?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                let mut frame = Vec::new();
                let m = crate::api::delivered(m);
                sealpost_client::write_message(&mut frame, &m, true);
                drop(m.envelope);
                let text = String::from_utf8(frame).map_err(|e| e.to_string())?;
                send(&mut tx, Message::text(text), limit).await?;
                cursor = cursor.max(m.id);
            }
        }
        tokio::select! {
            woke = registration.wake.recv() => {
                if woke.is_none() { return Ok(()); }
            }
            _ = poll.tick() => {}
            _ = ping.tick() => {
                if last_heard.elapsed() >= idle {
                    let _ = send(&mut tx, Message::Close(None), limit).await;
                    return Ok(());
                }
                send(&mut tx, Message::Ping(Bytes::new()), limit).await?;
            }
            frame = rx.next() => {
                let Some(frame) = frame else { return Ok(()) };
                last_heard = tokio::time::Instant::now();
                match frame.map_err(|e| e.to_string())? {
                    Message::Text(text) => {
                        let reply = match decode_ack_frame(text.as_str()) {
                            Ok(ids) => match relay.store.ack(account, ids).await.map_err(ApiError::from) {
                                Ok(n) => acked_frame(n),
                                Err(e) => error_frame(&e),
                            },
                            Err(e) => error_frame(&e),
                        };
                        send(&mut tx, Message::text(reply), limit).await?;
                    }
                    Message::Ping(p) => send(&mut tx, Message::Pong(p), limit).await?,
                    Message::Close(_) => return Ok(()),
                    _ => {}
                }
            }
        }
    }
}
