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
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::api::{Relay, Resp};
use sealpost_client::{Credentials, acked_frame, decode_ack_frame, error_frame};

use crate::error::{ApiError, Error, ErrorCode};
use crate::store::AccountId;

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
pub(crate) async fn upgrade(
    relay: Arc<Relay>,
    mut req: Request<Incoming>,
    address: std::net::IpAddr,
) -> Result<Resp, ApiError> {
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
    // Browsers send the page's origin; CORS does not apply to upgrades, so
    // the relay applies its list itself.
    if !relay.cors.allows_websocket(headers) {
        return Err(ApiError::new(ErrorCode::OriginNotAllowed, "pages on this origin may not use this relay"));
    }
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
    let now = relay.clock.now();
    creds.verify("GET", &signed_path, b"", now, relay.config.max_clock_skew_secs)?;
    crate::api::admit(&relay, &creds, true, address, now, None).await?;
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
    // The idle clock starts now, not when the spawned task first runs, and
    // the watch is taken now so that no move of a manual clock is missed.
    let opened = (relay.clock.now(), relay.clock.watch());
    tokio::spawn(async move {
        let _slot = slot;
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = Some(ws_config(&relay.config));
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, config).await;
                if let Err(e) = session(relay, (account, address), registration, opened, ws).await {
                    tracing::debug!(error = %e, "websocket closed");
                }
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut resp = Response::new(crate::inflight::Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).map_err(crate::error::internal)?);
    Ok(resp)
}

/// Pushed frames gather in the write buffer until it holds more than this
/// many bytes, then they are written, so a batch of small messages costs a
/// few writes, not one each.
const WRITE_BUFFER: usize = 16 * 1024;

/// Small buffers and inbound limits: clients only send acks, so a
/// connection needs little memory. Pushed frames of one batch gather in
/// the write buffer until it passes [`WRITE_BUFFER`] bytes and are written
/// then, and the batch ends with a flush. A blocked write is finished
/// before the next frame is buffered, so the buffer holds at most
/// `WRITE_BUFFER` and one frame (while the sink's slot and the pending feed
/// hold one more frame each); `max_write_buffer_size` is the hard bound
/// above that. Sends wait for the socket instead of piling up. tungstenite
/// keeps the buffer's capacity once grown, so a connection that was pushed
/// a batch keeps about that much.
fn ws_config(config: &crate::config::Config) -> WebSocketConfig {
    let largest_frame = config.max_envelope_bytes.div_ceil(3).saturating_mul(4).saturating_add(1024);
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(largest_frame.saturating_mul(2).saturating_add(WRITE_BUFFER))
        .max_message_size(Some(config.ws_max_message_bytes))
        .max_frame_size(Some(config.ws_max_message_bytes))
}

/// How long a closing connection waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Sends one frame and flushes, giving up (and so closing the connection)
/// when the client does not read it within `limit`.
async fn send<T>(tx: &mut T, message: Message, limit: Duration) -> Result<(), Error>
where
    T: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    within(limit, tx.send(message)).await
}

/// Runs a send, feed or flush of the connection, giving up (and so closing
/// the connection) when the client does not read within `limit`.
async fn within<F>(limit: Duration, sending: F) -> Result<(), Error>
where
    F: Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
{
    match tokio::time::timeout(limit, sending).await {
        Ok(sent) => Ok(sent?),
        Err(_) => Err(Error::PushTimeout),
    }
}

async fn session<S>(
    relay: Arc<Relay>,
    (account, address): (AccountId, std::net::IpAddr),
    mut registration: crate::hub::Registration,
    (opened, mut moved): (u64, crate::clock::ClockWatch),
    ws: WebSocketStream<S>,
) -> Result<(), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut tx, mut rx) = ws.split();
    let limit = Duration::from_secs(relay.config.ws_send_timeout_secs);
    let batch_bytes = relay.config.ws_batch_bytes.min(relay.config.max_pull_bytes);
    let mut cursor = 0i64;
    let mut poll = tokio::time::interval(POLL);
    // Times in seconds on the relay's clock; the real-time `tick` (and, for
    // a manual clock, its moves) make the loop look at them.
    let idle = relay.config.ws_idle_secs;
    let ping_every = (idle / 3).max(1);
    let mut tick = tokio::time::interval(Duration::from_secs(ping_every));
    tick.tick().await;
    let mut last_heard = opened;
    let mut last_ping = last_heard;
    loop {
        // Push everything new since the cursor.
        loop {
            // A batch takes one of the address's pull places while it is
            // read and sent; without one it is a single message, so that
            // many stalled connections from one address pin little.
            let place = relay.in_flight.pull(address);
            let (count, bytes) = if place.is_some() { (BATCH, batch_bytes) } else { (1, 0) };
            let batch = relay.store.pull(account, cursor, count, bytes).await?;
            if batch.is_empty() {
                break;
            }
            // Frames are fed (written once the buffer fills) and the batch
            // is flushed at its end.
            let count = batch.len();
            for m in batch {
                let m = crate::api::delivered(m);
                let frame = sealpost_client::message_frame(&m);
                drop(m.envelope);
                let text = String::from_utf8(frame).map_err(tokio_tungstenite::tungstenite::Error::from)?;
                within(limit, tx.feed(Message::text(text))).await?;
                cursor = cursor.max(m.id);
            }
            within(limit, tx.flush()).await?;
            relay.metrics.delivered(count);
        }
        tokio::select! {
            woke = registration.wake.recv() => {
                if woke.is_none() { return Ok(()); }
            }
            _ = poll.tick() => {}
            _ = tick.tick() => {}
            () = moved.changed() => {}
            frame = rx.next() => {
                let Some(frame) = frame else { return Ok(()) };
                last_heard = relay.clock.now();
                match frame? {
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
        let now = relay.clock.now();
        if now.saturating_sub(last_heard) >= idle {
            // No longer counted against the account while it says goodbye.
            drop(registration);
            let _ = send(&mut tx, Message::Close(None), limit).await;
            // Read on briefly so the client's answer (or a late pong) is
            // consumed: closing a socket with unread input would reset
            // it, and the client might then miss the close frame.
            let drain = async { while let Some(Ok(_)) = rx.next().await {} };
            let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
            return Ok(());
        }
        // A second of slack: real ticks and whole seconds need not line up.
        if now.saturating_sub(last_ping) >= ping_every.saturating_sub(1).max(1) {
            send(&mut tx, Message::Ping(Bytes::new()), limit).await?;
            last_ping = now;
        }
    }
}
