//! A Sealpost "sensor" that talks to people in the terminal chat
//! (`examples/chat`) through an MQTT 5 broker instead of HTTP.
//!
//! The device uses the protocol core without its `std` feature, as a
//! microcontroller build would; only the transport around it is the host's
//! (tokio, rumqttc, and hyper for the one-time enrolment).
//!
//! 1. [`Device::enrol`] creates an [`Account`], publishes its bundle and
//!    one-time prekeys over HTTP and enrols the mailbox for MQTT
//!    (`POST /v1/mqtt`, docs/RELAY.md section 14). That is the only HTTP.
//! 2. [`Device::connect`] connects to the broker with a persistent MQTT 5
//!    session (QoS 1 pushes wait while the device is away), subscribes to
//!    the mailbox and response topics, and from then on sends every relay
//!    request as a PUBLISH on the request topic
//!    ([`sealpost_client::mqtt`]).
//! 3. New envelopes arrive as pushes on the mailbox topic; after every
//!    (re)connection the device also pulls what is still in its mailbox.
//!    [`Inbox`] lets each message id through once, however often QoS 1
//!    redelivery or a pull brings it again, until it is acknowledged.
//!
//! The device speaks the chat's room protocol: it joins whoever `/add`s it
//! ([`Room::accept`]), introduces its handle with the chat's `HELLO` direct
//! message, believes a peer's `HELLO` only if the relay binds that handle
//! to that identity, and answers a direct `ping` with `pong` and a direct
//! `read` with a sensor reading (`temperature 21.5`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sealpost_mqtt_device::DeviceError> {
//! use sealpost_mqtt_device::Device;
//! let enrolment = Device::enrol("http://127.0.0.1:8080").await?;
//! let mut device = Device::connect(enrolment, "127.0.0.1", 1883, None).await?;
//! device.claim_handle("sensor1").await?;
//! // ... the code arrives out of band ...
//! device.verify_handle("sensor1", "123456").await?;
//! while let Some(event) = device.next_event().await {
//!     println!("{event}");
//! }
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand_core::Rng;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use sealpost::{
    Account, Envelope, IdentityPublic, Incoming, Outgoing, RelaySigner, Room, SafetyNumber, Session, SessionPolicy,
};
use sealpost_client::{
    Acked, BundleFetched, BundlePublished, Deposited, ErrorCode, HandleBound, HandleClaimed, HandleFound, MessagePage,
    MqttTopics, PrekeysStored, PushFrame, Reply, Request, parse_mqtt_response, parse_response, request_properties,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use sealpost_client::{Delivered, MqttEnrolled};

/// The room the device joins unless told otherwise: the chat's default.
pub const DEFAULT_ROOM: &str = "lobby";

/// The opening of the chat's direct message that introduces the sender's
/// handle (examples/chat).
const HELLO: &str = "\u{1}hello-from-handle ";
/// How long a request over MQTT waits for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// How many times a request is sent before its error is given up on.
const TRIES: u32 = 3;
/// How long [`Device::connect`] waits for the broker's first CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between reconnection attempts.
const RECONNECT_DELAY: Duration = Duration::from_secs(2);
/// How often the mailbox is pulled while connected, and failed
/// acknowledgements are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(30);
/// How long the broker keeps the session (and its QoS 1 messages) while
/// the device is away.
const SESSION_EXPIRY_SECS: u32 = 3600;
/// MQTT keep-alive.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Largest packet the device accepts: a pull page holds at most 4 MiB of
/// envelopes by default (`max_pull_bytes`), about 5.4 MiB in base64.
const MAX_PACKET_BYTES: u32 = 8 << 20;
/// Messages per pull page.
const PAGE: u32 = 100;
/// Most ids per acknowledgement (the relay's limit).
const MAX_ACK_BATCH: usize = 1000;
/// Acknowledge at the latest after this many handled messages.
const ACK_EVERY: usize = 50;
/// One-time prekeys published at enrolment, and topped up to.
const ONE_TIME_PREKEYS: usize = 20;
/// Top up one-time prekeys when fewer than this many are left.
const LOW_PREKEYS: usize = 5;
/// The tag of this device's response topic.
const RESPONSE_TAG: &str = "device";
/// Acknowledged ids the [`Inbox`] still remembers (late QoS 1 duplicates).
const REMEMBERED_ACKS: usize = 1024;
/// Capacity of rumqttc's request channel.
const MQTT_CHANNEL: usize = 64;
/// Capacity of the command channel to the device task.
const COMMANDS: usize = 16;

/// The device's time source for the protocol core (Unix seconds). A board
/// would read its RTC, or take the relay's `received_at`.
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The operating system's generator (the core's `os_rng` needs `std`; on
/// a board this is the chip's TRNG behind `rand_core`).
fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

fn nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    rng().fill_bytes(&mut nonce);
    nonce
}

fn normalize(handle: &str) -> String {
    handle.trim().trim_start_matches('@').to_ascii_lowercase()
}

/// What can go wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum DeviceError {
    /// The relay refused a request, or its answer did not parse or verify.
    Relay(sealpost_client::Error),
    /// The protocol core refused something.
    Protocol(sealpost::Error),
    /// The enrolment over HTTP failed (connection, request or body).
    Http(Box<dyn std::error::Error + Send + Sync>),
    /// The broker refused the connection, or a request could not be
    /// published.
    Mqtt(String),
    /// No answer within the time limit (the broker or the relay is away).
    Timeout,
    /// Nobody with that handle is in the room.
    NotAMember(String),
    /// The device's tasks have ended (after [`Device::disconnect`]).
    Stopped,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Relay(e) => write!(f, "relay: {e}"),
            DeviceError::Protocol(e) => write!(f, "protocol: {e}"),
            DeviceError::Http(e) => write!(f, "enrolment over HTTP: {e}"),
            DeviceError::Mqtt(e) => write!(f, "broker: {e}"),
            DeviceError::Timeout => f.write_str("no answer in time"),
            DeviceError::NotAMember(handle) => write!(f, "{handle} is not in the room"),
            DeviceError::Stopped => f.write_str("the device has stopped"),
        }
    }
}

impl std::error::Error for DeviceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DeviceError::Relay(e) => Some(e),
            DeviceError::Protocol(e) => Some(e),
            DeviceError::Http(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<sealpost_client::Error> for DeviceError {
    fn from(e: sealpost_client::Error) -> Self {
        DeviceError::Relay(e)
    }
}

impl From<sealpost::Error> for DeviceError {
    fn from(e: sealpost::Error) -> Self {
        DeviceError::Protocol(e)
    }
}

fn http_error(e: impl std::error::Error + Send + Sync + 'static) -> DeviceError {
    DeviceError::Http(Box::new(e))
}

/// What happened, for the application (in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// Connected (or reconnected) to the broker; the backlog is being pulled.
    Connected,
    /// The connection to the broker failed; the device keeps reconnecting.
    Offline {
        /// Why.
        reason: String,
    },
    /// Someone in the room introduced their handle and the relay confirms
    /// it is theirs.
    Joined {
        /// Their handle.
        handle: String,
        /// The safety number to compare with them out of band.
        safety_number: String,
    },
    /// A direct message to the device.
    Direct {
        /// The sender's handle (`#` and the start of the account id if the
        /// device does not know it yet).
        from_handle: String,
        /// The text.
        text: String,
    },
    /// A message to everyone in the room.
    Broadcast {
        /// The sender's handle (as in [`DeviceEvent::Direct`]).
        from_handle: String,
        /// The text.
        text: String,
    },
    /// The device answered a direct message (`pong`, a reading).
    Answered {
        /// To whom.
        to_handle: String,
        /// The answer.
        text: String,
    },
    /// An envelope was refused (by the core, or from a stranger) and
    /// acknowledged.
    Dropped {
        /// Why.
        reason: String,
    },
    /// Background work failed (a pull, an acknowledgement, a prekey top-up);
    /// it is tried again later.
    Failed {
        /// What and why.
        what: String,
    },
}

impl fmt::Display for DeviceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceEvent::Connected => f.write_str("* connected to the broker"),
            DeviceEvent::Offline { reason } => write!(f, "! offline: {reason}"),
            DeviceEvent::Joined { handle, safety_number } => {
                write!(f, "* @{handle} joined; safety number {safety_number}")
            }
            DeviceEvent::Direct { from_handle, text } => write!(f, "[{from_handle} → device] {text}"),
            DeviceEvent::Broadcast { from_handle, text } => write!(f, "[{from_handle}] {text}"),
            DeviceEvent::Answered { to_handle, text } => write!(f, "[device → {to_handle}] {text}"),
            DeviceEvent::Dropped { reason } => write!(f, "! dropped a message: {reason}"),
            DeviceEvent::Failed { what } => write!(f, "! {what}"),
        }
    }
}

/// Lets each mailbox message through once, whether it came pushed (QoS 1
/// may deliver it twice, and the broker redelivers after a reconnection)
/// or pulled (a pull returns everything not yet acknowledged). No I/O.
///
/// An id offered again while it is outstanding (let through, not yet
/// acknowledged) is held back; so is one acknowledged lately (the last
/// 1024), in case a duplicate arrives after the acknowledgement.
#[derive(Debug, Default)]
pub struct Inbox {
    outstanding: HashSet<i64>,
    acked: HashSet<i64>,
    acked_order: VecDeque<i64>,
}

impl Inbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// The message if this is the first time its id is seen (it is then
    /// outstanding until [`Inbox::acknowledged`]), `None` for a duplicate.
    pub fn offer(&mut self, message: Delivered) -> Option<Delivered> {
        if self.outstanding.contains(&message.id) || self.acked.contains(&message.id) {
            return None;
        }
        self.outstanding.insert(message.id);
        Some(message)
    }

    /// Records that the relay acknowledged (deleted) these ids.
    pub fn acknowledged(&mut self, ids: &[i64]) {
        for id in ids {
            if self.outstanding.remove(id) && self.acked.insert(*id) {
                self.acked_order.push_back(*id);
            }
        }
        while self.acked_order.len() > REMEMBERED_ACKS {
            if let Some(old) = self.acked_order.pop_front() {
                self.acked.remove(&old);
            }
        }
    }

    /// How many messages were let through and not yet acknowledged.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }
}

/// An account enrolled at the relay: its bundle and prekeys are published
/// and its mailbox has MQTT credentials and topics. A device provisioned
/// in the factory would store this (the account pickled) and skip
/// [`Device::enrol`].
#[derive(Clone)]
pub struct Enrolment {
    /// The account (identity and prekey secrets).
    pub account: Account,
    /// The mailbox's broker credentials and topics.
    pub mqtt: MqttEnrolled,
}

/// The minimal HTTP client of the enrolment.
struct Http {
    base: String,
    client: HttpClient<HttpConnector, Full<Bytes>>,
    signer: RelaySigner,
}

impl Http {
    async fn call<T: Reply>(&self, request: &Request) -> Result<T, DeviceError> {
        match self.call_once(request).await {
            Err(DeviceError::Relay(e)) if e.code() == Some(ErrorCode::StaleRequest) => self.call_once(request).await,
            other => other,
        }
    }

    async fn call_once<T: Reply>(&self, request: &Request) -> Result<T, DeviceError> {
        let authorization = request.authorize(&self.signer, now(), &nonce());
        let method = match request.method() {
            sealpost_client::Method::Get => hyper::Method::GET,
            sealpost_client::Method::Post => hyper::Method::POST,
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, request.path_and_query()))
            .header(hyper::header::AUTHORIZATION, authorization);
        if let Some(content_type) = request.content_type() {
            builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
        }
        let http_request = builder.body(Full::new(Bytes::from(request.body().to_vec()))).map_err(http_error)?;
        let response = self.client.request(http_request).await.map_err(http_error)?;
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(hyper::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.into_body().collect().await.map_err(http_error)?.to_bytes();
        Ok(parse_response(status, retry_after.as_deref(), &body)?)
    }
}

/// An answer on the response topic.
struct Answer {
    properties: Vec<(String, String)>,
    payload: Bytes,
}

/// Requests waiting for their answer, by correlation data.
type Pending = Arc<Mutex<HashMap<Vec<u8>, oneshot::Sender<Answer>>>>;

fn lock(pending: &Pending) -> MutexGuard<'_, HashMap<Vec<u8>, oneshot::Sender<Answer>>> {
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The relay's API over MQTT: signs, publishes and waits for the answer.
struct Link {
    client: AsyncClient,
    topics: MqttTopics,
    signer: RelaySigner,
    pending: Pending,
    /// Random per run, so that an answer to a previous run's request
    /// (queued in the persistent session) never matches a new one.
    prefix: [u8; 8],
    counter: u64,
}

impl Link {
    /// Sends `request` and parses its answer. Signs it again and resends
    /// it (up to [`TRIES`] times in all) when the relay found it stale (it
    /// forgets nonces on restart) or when no answer came: the broker drops
    /// a request published while no relay is subscribed (docs/RELAY.md
    /// section 14).
    async fn call<T: Reply>(&mut self, request: Request) -> Result<T, DeviceError> {
        let mut tries = 1;
        loop {
            match self.call_once(&request).await {
                Err(DeviceError::Relay(e)) if e.code() == Some(ErrorCode::StaleRequest) && tries < TRIES => {}
                Err(DeviceError::Timeout) if tries < TRIES => {}
                other => return other,
            }
            tries += 1;
        }
    }

    async fn call_once<T: Reply>(&mut self, request: &Request) -> Result<T, DeviceError> {
        let authorization = request.authorize(&self.signer, now(), &nonce());
        self.counter = self.counter.wrapping_add(1);
        let mut correlation = self.prefix.to_vec();
        correlation.extend_from_slice(&self.counter.to_be_bytes());
        let properties = PublishProperties {
            response_topic: Some(self.topics.response_topic(RESPONSE_TAG)),
            correlation_data: Some(Bytes::from(correlation.clone())),
            content_type: request.content_type().map(str::to_owned),
            user_properties: request_properties(request, &authorization),
            ..PublishProperties::default()
        };
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(correlation.clone(), tx);
        let client = &self.client;
        let topic = self.topics.requests.clone();
        let body = request.body().to_vec();
        let exchange = async move {
            client
                .publish_with_properties(topic, QoS::AtLeastOnce, false, body, properties)
                .await
                .map_err(|e| DeviceError::Mqtt(e.to_string()))?;
            let answer: Answer = rx.await.map_err(|_| DeviceError::Stopped)?;
            Ok::<Answer, DeviceError>(answer)
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await;
        lock(&self.pending).remove(&correlation);
        let answer = answer.map_err(|_| DeviceError::Timeout)??;
        Ok(parse_mqtt_response(&answer.properties, &answer.payload)?)
    }
}

/// From the MQTT task to the device task.
enum Wire {
    /// A CONNACK: (re)connected and subscribed.
    Connected,
    /// The connection failed.
    Offline(String),
    /// A message pushed on the mailbox topic.
    Push(Delivered),
    /// Something on the mailbox topic that is not a message frame.
    Unreadable,
}

/// Polls the MQTT event loop for the device's lifetime: subscribes after
/// every CONNACK, routes answers to their waiting requests and pushes to
/// the device task, reconnects after failures.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    topics: MqttTopics,
    pending: Pending,
    wire: mpsc::UnboundedSender<Wire>,
) {
    // Report the first failure, then only a failure after being online.
    let mut report_failure = true;
    loop {
        let sent = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                report_failure = true;
                // Again after every CONNACK: harmless if the session kept
                // them, needed if the broker started a new session.
                for filter in [topics.mailbox.clone(), topics.response_filter()] {
                    if let Err(e) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                        let _ = wire.send(Wire::Offline(format!("subscribing: {e}")));
                    }
                }
                wire.send(Wire::Connected).is_ok()
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => dispatch(&topics, &pending, &wire, publish),
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => true,
            Err(e) => {
                let sent = !report_failure || wire.send(Wire::Offline(e.to_string())).is_ok();
                report_failure = false;
                tokio::time::sleep(RECONNECT_DELAY).await;
                sent
            }
        };
        if !sent {
            // The device task has ended.
            return;
        }
    }
}

/// Routes one PUBLISH; false if the device task has ended.
fn dispatch(topics: &MqttTopics, pending: &Pending, wire: &mpsc::UnboundedSender<Wire>, publish: Publish) -> bool {
    let Ok(topic) = std::str::from_utf8(&publish.topic) else { return true };
    if topic == topics.mailbox {
        let frame = std::str::from_utf8(&publish.payload).ok().map(PushFrame::decode);
        return match frame {
            Some(Ok(PushFrame::Message(message))) => wire.send(Wire::Push(message)).is_ok(),
            Some(Ok(_)) => true,
            Some(Err(_)) | None => wire.send(Wire::Unreadable).is_ok(),
        };
    }
    if topic.starts_with(topics.responses.as_str()) {
        let Some(PublishProperties { correlation_data: Some(correlation), user_properties, .. }) = publish.properties
        else {
            return true;
        };
        let key: &[u8] = &correlation;
        let waiting = lock(pending).remove(key);
        if let Some(waiting) = waiting {
            let _ = waiting.send(Answer { properties: user_properties, payload: publish.payload });
        }
    }
    true
}

/// The reading the device sends for `read`.
type Sensor = Box<dyn FnMut() -> f64 + Send>;

/// From [`Device`] to the device task.
enum Command {
    Claim { handle: String, reply: oneshot::Sender<Result<(), DeviceError>> },
    Verify { handle: String, code: String, reply: oneshot::Sender<Result<String, DeviceError>> },
    Add { handle: String, reply: oneshot::Sender<Result<SafetyNumber, DeviceError>> },
    Direct { handle: String, text: String, reply: oneshot::Sender<Result<(), DeviceError>> },
    Broadcast { text: String, reply: oneshot::Sender<Result<(), DeviceError>> },
    Sensor { sensor: Sensor, reply: oneshot::Sender<Result<(), DeviceError>> },
}

/// The device's state, owned by one task that handles one thing at a time
/// (a command or an envelope) to the end, so that the room's state is never
/// left half-updated when the application stops waiting.
struct Engine {
    account: Account,
    room: Room,
    policy: SessionPolicy,
    /// Handles the relay confirmed, by account id.
    names: HashMap<[u8; 32], String>,
    my_handle: Option<String>,
    link: Link,
    inbox: Inbox,
    /// Messages let through by the inbox, waiting to be handled.
    backlog: VecDeque<Delivered>,
    /// Handled messages whose acknowledgement has not succeeded yet.
    unacked: Vec<i64>,
    /// The next pull page to read, while pulling.
    pull_after: Option<i64>,
    /// A pull page that failed, to read again on the next retry.
    retry_pull: Option<i64>,
    events: mpsc::UnboundedSender<DeviceEvent>,
    sensor: Sensor,
}

impl Engine {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut wire: mpsc::UnboundedReceiver<Wire>) {
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(message) = self.backlog.pop_front() {
                // Commands are not starved by a long backlog.
                while let Ok(command) = commands.try_recv() {
                    self.command(command).await;
                }
                self.handle(message).await;
                continue;
            }
            if let Some(after) = self.pull_after.take() {
                self.pull_page(after).await;
                continue;
            }
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command).await,
                    None => break,
                },
                item = wire.recv() => match item {
                    Some(item) => self.wire(item).await,
                    None => break,
                },
                _ = retry.tick() => {
                    // A failed pull again, or else the whole mailbox: a push
                    // the relay had to drop (its queue to the broker full)
                    // arrives within this long, as the WebSocket's re-read
                    // does (the inbox lets each id through once).
                    self.pull_after = Some(self.retry_pull.take().unwrap_or(0));
                    self.flush_acks().await;
                }
            }
        }
    }

    fn emit(&self, event: DeviceEvent) {
        let _ = self.events.send(event);
    }

    async fn wire(&mut self, item: Wire) {
        match item {
            Wire::Connected => {
                self.emit(DeviceEvent::Connected);
                self.retry_pull = None;
                self.pull_after = Some(0);
                self.flush_acks().await;
            }
            Wire::Offline(reason) => self.emit(DeviceEvent::Offline { reason }),
            Wire::Push(message) => {
                if let Some(message) = self.inbox.offer(message) {
                    self.backlog.push_back(message);
                }
            }
            Wire::Unreadable => self.emit(DeviceEvent::Dropped { reason: "an unreadable push frame".to_owned() }),
        }
    }

    /// Reads one page of the mailbox into the backlog; the next page is
    /// read once the backlog is handled, until a page comes back empty (a
    /// page can be short because of the relay's byte limit).
    async fn pull_page(&mut self, after: i64) {
        match self.link.call::<MessagePage>(Request::pull(after, PAGE)).await {
            Ok(page) => {
                let more = !page.messages.is_empty() && page.next_after > after;
                for message in page.messages {
                    if let Some(message) = self.inbox.offer(message) {
                        self.backlog.push_back(message);
                    }
                }
                if more {
                    self.pull_after = Some(page.next_after);
                }
            }
            Err(e) => {
                self.retry_pull = Some(after);
                self.emit(DeviceEvent::Failed { what: format!("pulling the mailbox: {e}") });
            }
        }
    }

    /// Handles one message, then acknowledges it, opened or refused (the
    /// chat's rule; docs/RELAY.md, "Which envelopes a client acknowledges").
    async fn handle(&mut self, message: Delivered) {
        if let Err(e) = self.deliver(&message).await {
            self.emit(DeviceEvent::Dropped { reason: e.to_string() });
        }
        self.unacked.push(message.id);
        if self.backlog.is_empty() || self.unacked.len() >= ACK_EVERY {
            self.flush_acks().await;
        }
    }

    async fn flush_acks(&mut self) {
        while !self.unacked.is_empty() {
            let n = self.unacked.len().min(MAX_ACK_BATCH);
            let ids: Vec<i64> = self.unacked.iter().take(n).copied().collect();
            match self.link.call::<Acked>(Request::ack(&ids)).await {
                Ok(_) => {
                    self.inbox.acknowledged(&ids);
                    self.unacked = self.unacked.split_off(n);
                }
                Err(e) => {
                    let what = format!("acknowledging {} message(s): {e}", ids.len());
                    self.emit(DeviceEvent::Failed { what });
                    return;
                }
            }
        }
    }

    fn name_of(&self, id: &IdentityPublic) -> String {
        self.names.get(id.signing_key()).cloned().unwrap_or_else(|| {
            let hex: String = id.signing_key().iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("#{hex}")
        })
    }

    fn member(&self, handle: &str) -> Option<IdentityPublic> {
        let handle = normalize(handle);
        self.room.members().find(|m| self.names.get(m.signing_key()) == Some(&handle)).copied()
    }

    /// Deposits an envelope for its recipient, or for every member.
    async fn deposit(&mut self, out: Outgoing) -> Result<(), DeviceError> {
        let recipients: Vec<[u8; 32]> = match out.recipient {
            Some(r) => vec![*r.signing_key()],
            None => self.room.members().map(|m| *m.signing_key()).collect(),
        };
        if !recipients.is_empty() {
            self.link.call::<Deposited>(Request::deposit(&recipients, &out.envelope)).await?;
        }
        Ok(())
    }

    /// The chat's introduction: this device's handle, if it has one.
    async fn hello(&mut self, to: &IdentityPublic) -> Result<(), DeviceError> {
        if let Some(me) = self.my_handle.clone() {
            let out = self.room.direct(&mut rng(), now(), to, format!("{HELLO}{me}").as_bytes())?;
            self.deposit(out).await?;
        }
        Ok(())
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Claim { handle, reply } => {
                let result = self.link.call::<HandleClaimed>(Request::claim_handle(&handle)).await.map(drop);
                let _ = reply.send(result);
            }
            Command::Verify { handle, code, reply } => {
                let result = self.link.call::<HandleBound>(Request::verify_handle(&handle, &code)).await;
                let result = result.map(|bound| {
                    self.my_handle = Some(bound.handle.clone());
                    bound.handle
                });
                let _ = reply.send(result);
            }
            Command::Add { handle, reply } => {
                let result = self.add(&handle).await;
                let _ = reply.send(result);
            }
            Command::Direct { handle, text, reply } => {
                let result = self.direct(&handle, &text).await;
                let _ = reply.send(result);
            }
            Command::Broadcast { text, reply } => {
                let result = match self.room.broadcast(&mut rng(), text.as_bytes()) {
                    Ok(out) => self.deposit(out).await,
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(result);
            }
            Command::Sensor { sensor, reply } => {
                self.sensor = sensor;
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// The chat's `/add`: look the handle up, start a session from the
    /// bundle, add the member (sending this device's sender key) and
    /// introduce this device's handle.
    async fn add(&mut self, handle: &str) -> Result<SafetyNumber, DeviceError> {
        let handle = normalize(handle);
        let found = self.link.call::<HandleFound>(Request::lookup_handle(&handle)).await?;
        let account = *found.identity.signing_key();
        let fetched = self.link.call::<BundleFetched>(Request::fetch_bundle(&account)).await?;
        fetched.check_account(&account)?;
        let mut rng = rng();
        let session = Session::initiate(&mut rng, &mut self.account, &fetched.bundle, &self.policy, now())?;
        self.names.insert(account, handle);
        let out = self.room.add_member(&mut rng, now(), session)?;
        self.deposit(out).await?;
        self.hello(&found.identity).await?;
        Ok(SafetyNumber::new(self.account.identity(), &found.identity))
    }

    /// The chat's `/msg`.
    async fn direct(&mut self, handle: &str, text: &str) -> Result<(), DeviceError> {
        let to = self.member(handle).ok_or_else(|| DeviceError::NotAMember(handle.to_owned()))?;
        let out = self.room.direct(&mut rng(), now(), &to, text.as_bytes())?;
        self.deposit(out).await
    }

    /// Opens one envelope as the chat does.
    async fn deliver(&mut self, message: &Delivered) -> Result<(), DeviceError> {
        let sender = message.sender;
        let known = self.room.members().any(|m| m.signing_key() == &sender);
        let incoming = match Envelope::from_bytes(&message.envelope)? {
            // Someone started a new session with us: accept it and join
            // them. The room learns who it is from the session.
            Envelope::Prekey(first) if !self.room.session(&first.identity).is_some_and(|s| s.matches(&first)) => {
                let (incoming, back) = self.room.accept(&mut rng(), now(), &mut self.account, &self.policy, &first)?;
                self.deposit(back).await?;
                self.hello(&first.identity).await?;
                self.top_up_prekeys().await;
                incoming
            }
            // `sender` only picks the pairwise session to try.
            _ if known => self.room.receive(now(), &sender, &message.envelope)?,
            _ => {
                self.emit(DeviceEvent::Dropped { reason: "a message from a stranger".to_owned() });
                return Ok(());
            }
        };
        match incoming {
            Incoming::Broadcast { from, text } => {
                let text = String::from_utf8_lossy(&text).into_owned();
                self.emit(DeviceEvent::Broadcast { from_handle: self.name_of(&from), text });
            }
            Incoming::Direct { from, text } => {
                let text = String::from_utf8_lossy(&text).into_owned();
                match text.strip_prefix(HELLO) {
                    Some(handle) => self.introduced(&from, handle).await,
                    None => {
                        self.emit(DeviceEvent::Direct { from_handle: self.name_of(&from), text: text.clone() });
                        self.answer(&from, &text).await?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A peer's `HELLO`: believed only if the relay binds the handle to
    /// that identity.
    async fn introduced(&mut self, from: &IdentityPublic, handle: &str) {
        if self.names.get(from.signing_key()).map(String::as_str) == Some(handle) {
            return;
        }
        match self.link.call::<HandleFound>(Request::lookup_handle(handle)).await {
            Ok(found) if found.identity == *from => {
                self.names.insert(*from.signing_key(), handle.to_owned());
                let safety_number = SafetyNumber::new(self.account.identity(), from).to_string();
                self.emit(DeviceEvent::Joined { handle: handle.to_owned(), safety_number });
            }
            Ok(_) => {
                let reason = format!("{} introduced itself as @{handle}, which is someone else's", self.name_of(from));
                self.emit(DeviceEvent::Dropped { reason });
            }
            Err(e) => self.emit(DeviceEvent::Failed { what: format!("looking up @{handle}: {e}") }),
        }
    }

    /// The demo's behaviour: `ping` gets `pong`, `read` gets a reading.
    async fn answer(&mut self, to: &IdentityPublic, text: &str) -> Result<(), DeviceError> {
        let reply = match text.trim().to_ascii_lowercase().as_str() {
            "ping" => "pong".to_owned(),
            "read" => format!("temperature {:.1}", (self.sensor)()),
            _ => return Ok(()),
        };
        let out = self.room.direct(&mut rng(), now(), to, reply.as_bytes())?;
        self.deposit(out).await?;
        self.emit(DeviceEvent::Answered { to_handle: self.name_of(to), text: reply });
        Ok(())
    }

    /// Publishes new one-time prekeys (over MQTT) when few are left.
    async fn top_up_prekeys(&mut self) {
        if self.account.one_time_prekey_count() >= LOW_PREKEYS {
            return;
        }
        let count = ONE_TIME_PREKEYS.saturating_sub(self.account.one_time_prekey_count());
        let prekeys = self.account.generate_one_time_prekeys(&mut rng(), count);
        if prekeys.is_empty() {
            return;
        }
        if let Err(e) = self.link.call::<PrekeysStored>(Request::upload_prekeys(&prekeys)).await {
            self.emit(DeviceEvent::Failed { what: format!("uploading one-time prekeys: {e}") });
        }
    }
}

/// A connected device: its state lives in a task of its own, next to the
/// task that polls the MQTT connection. Dropping it stops both (the broker
/// keeps the session); [`Device::disconnect`] first says goodbye.
pub struct Device {
    identity: IdentityPublic,
    commands: mpsc::Sender<Command>,
    events: mpsc::UnboundedReceiver<DeviceEvent>,
    client: AsyncClient,
    mqtt_task: JoinHandle<()>,
    engine_task: JoinHandle<()>,
}

impl Device {
    /// Creates an account, publishes its bundle and one-time prekeys and
    /// enrols its mailbox for MQTT, over HTTP at `relay_url`
    /// (`http://host:port`; put a TLS proxy in front for https).
    pub async fn enrol(relay_url: &str) -> Result<Enrolment, DeviceError> {
        let base = relay_url.trim_end_matches('/');
        if !base.starts_with("http://") {
            return Err(DeviceError::Http("this example speaks http:// (use a TLS proxy for https)".into()));
        }
        let mut rng = rng();
        let policy = SessionPolicy::default();
        let mut account = Account::new(&mut rng, now());
        let http = Http {
            base: base.to_owned(),
            client: HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new()),
            signer: account.relay_signer(),
        };
        http.call::<BundlePublished>(&Request::publish_bundle(&account.bundle(&policy)?)).await?;
        let prekeys = account.generate_one_time_prekeys(&mut rng, ONE_TIME_PREKEYS);
        http.call::<PrekeysStored>(&Request::upload_prekeys(&prekeys)).await?;
        let mqtt = http.call::<MqttEnrolled>(&Request::enrol_mqtt()).await?;
        Ok(Enrolment { account, mqtt })
    }

    /// Connects to the broker at `broker_host:broker_port` and joins the
    /// room [`DEFAULT_ROOM`] (the chat's default). `handle` is this
    /// device's handle if it already verified one (it introduces itself
    /// with it); otherwise use [`Device::claim_handle`] and
    /// [`Device::verify_handle`].
    pub async fn connect(
        enrolment: Enrolment,
        broker_host: &str,
        broker_port: u16,
        handle: Option<&str>,
    ) -> Result<Self, DeviceError> {
        Self::connect_in_room(enrolment, broker_host, broker_port, handle, DEFAULT_ROOM).await
    }

    /// [`Device::connect`], joining the room named `room` (the chat's
    /// `--room`).
    pub async fn connect_in_room(
        enrolment: Enrolment,
        broker_host: &str,
        broker_port: u16,
        handle: Option<&str>,
        room: &str,
    ) -> Result<Self, DeviceError> {
        let Enrolment { account, mqtt } = enrolment;
        let policy = SessionPolicy::default();
        let room = Room::new(&mut rng(), room.as_bytes(), &account, &policy)?;

        let mut options = MqttOptions::new(mqtt.client_id.clone(), broker_host, broker_port);
        options
            .set_credentials(mqtt.username.clone(), mqtt.password())
            .set_clean_start(false)
            .set_session_expiry_interval(Some(SESSION_EXPIRY_SECS))
            .set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(Some(MAX_PACKET_BYTES));
        let (client, eventloop) = AsyncClient::new(options, MQTT_CHANNEL);
        let pending = Pending::default();
        let (wire_tx, mut wire_rx) = mpsc::unbounded_channel();
        let topics = mqtt.topics.clone();
        let mqtt_task = tokio::spawn(drive(eventloop, client.clone(), topics.clone(), pending.clone(), wire_tx));

        // Wait for the first CONNACK so that bad credentials or an absent
        // broker show here; pushes cannot come before it.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, wire_rx.recv()).await;
        match first {
            Ok(Some(Wire::Connected)) => {}
            Ok(Some(Wire::Offline(reason))) => {
                mqtt_task.abort();
                return Err(DeviceError::Mqtt(reason));
            }
            Ok(Some(Wire::Push(_) | Wire::Unreadable)) | Ok(None) => {
                mqtt_task.abort();
                return Err(DeviceError::Stopped);
            }
            Err(_) => {
                mqtt_task.abort();
                return Err(DeviceError::Timeout);
            }
        }

        let identity = *account.identity();
        let mut prefix = [0u8; 8];
        rng().fill_bytes(&mut prefix);
        let link = Link { client: client.clone(), topics, signer: account.relay_signer(), pending, prefix, counter: 0 };
        let (events_tx, events) = mpsc::unbounded_channel();
        let _ = events_tx.send(DeviceEvent::Connected);
        let engine = Engine {
            account,
            room,
            policy,
            names: HashMap::new(),
            my_handle: handle.map(normalize),
            link,
            inbox: Inbox::new(),
            backlog: VecDeque::new(),
            unacked: Vec::new(),
            pull_after: Some(0),
            retry_pull: None,
            events: events_tx,
            sensor: Box::new(|| 21.5),
        };
        let (commands, commands_rx) = mpsc::channel(COMMANDS);
        let engine_task = tokio::spawn(engine.run(commands_rx, wire_rx));
        Ok(Self { identity, commands, events, client, mqtt_task, engine_task })
    }

    /// This device's identity (its signing key is its account id).
    pub fn identity(&self) -> &IdentityPublic {
        &self.identity
    }

    /// Hands a command to the device task and waits for its outcome.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, DeviceError>>) -> Command,
    ) -> Result<T, DeviceError> {
        let (reply, outcome) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| DeviceError::Stopped)?;
        outcome.await.map_err(|_| DeviceError::Stopped)?
    }

    /// Asks the relay for a verification code for `handle`.
    pub async fn claim_handle(&self, handle: &str) -> Result<(), DeviceError> {
        let handle = handle.to_owned();
        self.ask(|reply| Command::Claim { handle, reply }).await
    }

    /// Proves the code, binding `handle` to this device; returns the handle
    /// as the relay normalized it. The device introduces itself with it
    /// from then on.
    pub async fn verify_handle(&self, handle: &str, code: &str) -> Result<String, DeviceError> {
        let (handle, code) = (handle.to_owned(), code.trim().to_owned());
        self.ask(|reply| Command::Verify { handle, code, reply }).await
    }

    /// The chat's `/add`: looks `handle` up, starts a session with them,
    /// adds them to the room and introduces this device. Returns the safety
    /// number to compare with them (no [`DeviceEvent::Joined`] follows:
    /// the device named them itself).
    pub async fn add(&self, handle: &str) -> Result<SafetyNumber, DeviceError> {
        let handle = handle.to_owned();
        self.ask(|reply| Command::Add { handle, reply }).await
    }

    /// The chat's `/msg`: a direct message to the room member with that
    /// handle ([`DeviceError::NotAMember`] if there is none).
    pub async fn send_to(&self, handle: &str, text: &str) -> Result<(), DeviceError> {
        let (handle, text) = (handle.to_owned(), text.to_owned());
        self.ask(|reply| Command::Direct { handle, text, reply }).await
    }

    /// A message to everyone in the room.
    pub async fn broadcast(&self, text: &str) -> Result<(), DeviceError> {
        let text = text.to_owned();
        self.ask(|reply| Command::Broadcast { text, reply }).await
    }

    /// Replaces the sensor read for `read` (the default reads 21.5).
    pub async fn set_sensor(&self, sensor: impl FnMut() -> f64 + Send + 'static) -> Result<(), DeviceError> {
        let sensor: Sensor = Box::new(sensor);
        self.ask(|reply| Command::Sensor { sensor, reply }).await
    }

    /// The next event, or `None` once the device has stopped. Cancel-safe:
    /// the device keeps working while nobody waits here, and no event is
    /// lost.
    pub async fn next_event(&mut self) -> Option<DeviceEvent> {
        self.events.recv().await
    }

    /// Disconnects from the broker cleanly (the broker keeps the session
    /// for an hour, with the pushes that arrive meanwhile) and stops.
    pub async fn disconnect(mut self) {
        if self.client.disconnect().await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.mqtt_task).await;
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.mqtt_task.abort();
        self.engine_task.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    fn message(id: i64) -> Delivered {
        Delivered { id, sender: [7; 32], envelope: vec![1, 2, 3], received_at: 1_700_000_000 }
    }

    /// The message as the relay pushes it on the mailbox topic.
    fn pushed(m: &Delivered) -> Delivered {
        let frame = sealpost_client::message_frame(m);
        match PushFrame::decode(std::str::from_utf8(&frame).unwrap()).unwrap() {
            PushFrame::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    /// The message as a pull returns it.
    fn pulled(m: &Delivered) -> Delivered {
        let body = MessagePage::encode(vec![m.clone()], 0);
        let page: MessagePage = parse_response(200, None, &body).unwrap();
        page.messages.into_iter().next().unwrap()
    }

    #[test]
    fn the_same_id_twice_surfaces_once() {
        let mut inbox = Inbox::new();
        assert_eq!(inbox.offer(pushed(&message(5))), Some(message(5)));
        assert_eq!(inbox.offer(pushed(&message(5))), None);
        assert_eq!(inbox.outstanding(), 1);
    }

    #[test]
    fn after_an_ack_a_different_id_surfaces_and_the_acked_one_stays_quiet() {
        let mut inbox = Inbox::new();
        assert!(inbox.offer(message(5)).is_some());
        inbox.acknowledged(&[5]);
        assert_eq!(inbox.outstanding(), 0);
        assert_eq!(inbox.offer(message(6)), Some(message(6)));
        // A late QoS 1 duplicate of the acknowledged message.
        assert_eq!(inbox.offer(message(5)), None);
    }

    #[test]
    fn pull_and_push_of_the_same_id_surface_once() {
        let mut inbox = Inbox::new();
        assert_eq!(inbox.offer(pulled(&message(9))), Some(message(9)));
        assert_eq!(inbox.offer(pushed(&message(9))), None);
        let mut inbox = Inbox::new();
        assert!(inbox.offer(pushed(&message(9))).is_some());
        assert_eq!(inbox.offer(pulled(&message(9))), None);
    }

    #[test]
    fn acknowledging_ids_never_let_through_changes_nothing() {
        let mut inbox = Inbox::new();
        inbox.acknowledged(&[3]);
        assert_eq!(inbox.offer(message(3)), Some(message(3)));
    }

    #[test]
    fn old_acknowledgements_are_forgotten() {
        let mut inbox = Inbox::new();
        let total = i64::try_from(REMEMBERED_ACKS).unwrap() + 10;
        for id in 1..=total {
            assert!(inbox.offer(message(id)).is_some());
            inbox.acknowledged(&[id]);
        }
        assert_eq!(inbox.acked.len(), REMEMBERED_ACKS);
        // The oldest are forgotten, the latest remembered.
        assert!(inbox.offer(message(1)).is_some());
        assert!(inbox.offer(message(total)).is_none());
    }

    #[test]
    fn handles_are_normalized_like_the_chat() {
        assert_eq!(normalize(" @Sensor1 "), "sensor1");
    }
}
