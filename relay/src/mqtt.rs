//! The MQTT bridge (docs/RELAY.md, section 14): with `mqtt_url` set, the
//! relay is a client of a standard MQTT 5 broker. It answers the API's
//! signed requests published to request topics through the same code as
//! over HTTP ([`crate::api::handle_mqtt`]), publishes each new envelope
//! to its recipient's mailbox topic (QoS 1), and provisions each enrolled
//! mailbox as a client of the broker's access control (Mosquitto's
//! dynamic-security plugin), so that the broker lets a device use its own
//! topics and nobody else's.
//!
//! Without `mqtt_url` none of this runs and the relay never opens a
//! connection to a broker.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http_body_util::BodyExt;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use sealpost_client::mqtt::{CONTENT_TYPE, MAX_CORRELATION_BYTES};
use sealpost_client::{
    Delivered, ErrorCode, MqttEnrolled, MqttRequest, MqttTopics, is_response_topic, message_frame, request_topic_id,
    response_properties,
};
use serde_json::json;
use sha2::Digest;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::api::{Call, Relay};
use crate::config::{Config, MqttUrl};
use crate::error::{ApiError, Error};
use crate::store::AccountId;

/// The topic of the dynamic-security plugin's commands.
const CONTROL_TOPIC: &str = "$CONTROL/dynamic-security/v1";
/// The topic of its answers (to every administrator: correlation data tells ours).
const CONTROL_RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";
/// How long an enrolment waits for the broker.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Requests answered at once; the broker holds back more than this many
/// unacknowledged ones (the relay's receive maximum), and any beyond are
/// dropped unanswered (the device sends again).
const MAX_REQUESTS_AT_ONCE: usize = 256;
/// How long a connection must have lasted for the next attempt to start
/// again at the shortest wait (two relays with one client id, which the
/// broker disconnects in turn, back off instead of storming).
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How long "this account has no MQTT mailbox" is believed (another
/// instance may enrol it meanwhile).
const ABSENT_FOR: Duration = Duration::from_secs(10);
/// How long the broker keeps the relay's session (its subscriptions and
/// the QoS 1 requests published meanwhile) while the relay is away.
const SESSION_EXPIRY_SECS: u32 = 3600;

/// The relay's connection to the broker.
pub(crate) struct Bridge {
    client: AsyncClient,
    prefix: String,
    /// Enrolments waiting for the broker's answer, by correlation data.
    control: Mutex<HashMap<String, oneshot::Sender<serde_json::Value>>>,
    next: AtomicU64,
    /// Mailbox ids already read from the store (they never change).
    mailboxes: RwLock<HashMap<AccountId, String>>,
    /// Accounts found without one, and when.
    absent: Mutex<HashMap<AccountId, Instant>>,
    /// Mailbox owners by id (they never change).
    owners: RwLock<HashMap<String, AccountId>>,
    connected: AtomicBool,
    /// Marks this process's dynamic-security commands (random).
    tag: String,
    /// One enrolment at a time: two at once could hand out a password the
    /// broker did not keep.
    enrolling: tokio::sync::Mutex<()>,
    /// Permits of the requests being answered ([`MAX_REQUESTS_AT_ONCE`]).
    requests: Arc<tokio::sync::Semaphore>,
    /// Packet ids of the requests being answered: a redelivery of one of
    /// them (after a reconnection) is not answered a second time.
    answering: Mutex<HashSet<u16>>,
    /// The connection, until [`Bridge::start`] takes it.
    connection: Mutex<Option<EventLoop>>,
    /// Requests answered and envelopes published, for `/metrics`.
    answered: AtomicU64,
    pushed: AtomicU64,
    /// Pushes dropped because the queue to the broker was full.
    dropped: AtomicU64,
    /// Requests dropped unanswered (QoS 0, or too many at once).
    refused: AtomicU64,
}

impl Bridge {
    /// Builds the client from the settings (nothing connects until
    /// [`run`] polls it).
    pub(crate) fn new(config: &Config, url: &MqttUrl) -> Result<Arc<Self>, Error> {
        let mut options = MqttOptions::new(config.mqtt_client_id.clone(), url.host.clone(), url.port);
        if let Some(user) = &config.mqtt_username {
            let password = match &config.mqtt_password_file {
                Some(path) => read_password(path)?,
                None => Zeroizing::new(String::new()),
            };
            options.set_credentials(user.clone(), password.as_str());
        }
        if url.tls {
            options.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(tls_config(
                config.mqtt_ca_file.as_deref(),
            )?)));
        }
        options.set_keep_alive(Duration::from_secs(30));
        // A persistent session: the broker keeps the subscriptions and the
        // requests devices publish while the relay restarts.
        options.set_clean_start(false);
        options.set_session_expiry_interval(Some(SESSION_EXPIRY_SECS));
        let limit = u32::try_from(crate::api::body_limit(config).saturating_add(16 * 1024)).unwrap_or(u32::MAX);
        options.set_max_packet_size(Some(limit));
        options.set_request_channel_capacity(1024);
        // A request is acknowledged to the broker once answered: one the
        // relay took but never answered (it stopped) comes again.
        options.set_manual_acks(true);
        options.set_receive_maximum(Some(u16::try_from(MAX_REQUESTS_AT_ONCE).unwrap_or(u16::MAX)));
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let tag = random_b64::<9>();
        let bridge = Arc::new(Self {
            client,
            prefix: config.mqtt_topic_prefix.clone(),
            control: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            mailboxes: RwLock::new(HashMap::new()),
            connected: AtomicBool::new(false),
            absent: Mutex::new(HashMap::new()),
            owners: RwLock::new(HashMap::new()),
            tag,
            enrolling: tokio::sync::Mutex::new(()),
            requests: Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_AT_ONCE)),
            answering: Mutex::new(HashSet::new()),
            connection: Mutex::new(Some(eventloop)),
            answered: AtomicU64::new(0),
            pushed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        Ok(bridge)
    }

    /// Starts polling the broker connection (once; later calls give `None`).
    pub(crate) fn start(relay: &Arc<Relay>) -> Option<tokio::task::JoinHandle<()>> {
        let bridge = Arc::clone(relay.mqtt.get()?);
        let eventloop = bridge.connection.lock().ok()?.take()?;
        Some(tokio::spawn(run(Arc::downgrade(relay), bridge, eventloop)))
    }

    /// Appends the bridge's metrics to the Prometheus text.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (name, kind, help, v) in [
            (
                "sealpost_mqtt_connected",
                "gauge",
                "1 while the MQTT bridge is connected to the broker.",
                u64::from(self.connected()),
            ),
            ("sealpost_mqtt_requests_total", "counter", "Requests answered over MQTT.", load(&self.answered)),
            ("sealpost_mqtt_pushes_total", "counter", "Envelopes published to MQTT mailboxes.", load(&self.pushed)),
            (
                "sealpost_mqtt_requests_dropped_total",
                "counter",
                "MQTT requests dropped unanswered (QoS 0, or more than 256 at once).",
                load(&self.refused),
            ),
            (
                "sealpost_mqtt_pushes_dropped_total",
                "counter",
                "Pushes dropped because the queue to the broker was full (the envelopes wait for a pull).",
                load(&self.dropped),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {v}");
        }
    }

    /// Whether the bridge is connected to the broker now.
    pub(crate) fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Enrols `account`'s mailbox: gives it a random topic id (once) and
    /// (re)creates its broker client with a new password and a role that
    /// allows its own topics only.
    pub(crate) async fn enrol(&self, relay: &Relay, account: AccountId) -> Result<MqttEnrolled, ApiError> {
        let _one = self.enrolling.lock().await;
        let id = relay.store.enrol_mqtt(account, random_b64::<16>(), relay.clock.now()).await?;
        if let Ok(mut m) = self.mailboxes.write() {
            m.insert(account, id.clone());
        }
        if let Ok(mut a) = self.absent.lock() {
            a.remove(&account);
        }
        let topics = MqttTopics::new(&self.prefix, &id);
        let username = format!("sp-{id}");
        let password = Zeroizing::new(random_b64::<24>());
        let acl = |acltype: &str, topic: &str| json!({"acltype": acltype, "topic": topic, "allow": true});
        let role = json!({
            "command": "createRole",
            "rolename": username,
            "acls": [
                acl("subscribePattern", &topics.mailbox),
                acl("publishClientReceive", &topics.mailbox),
                acl("subscribePattern", &topics.response_filter()),
                acl("publishClientReceive", &topics.response_filter()),
                acl("publishClientSend", &topics.requests),
            ],
        });
        // Creating what exists fails harmlessly; the password is set in any
        // case, and only its answer decides.
        let client = json!({
            "command": "createClient",
            "username": username,
            "clientid": username,
            "roles": [{"rolename": username}],
        });
        let set = json!({"command": "setClientPassword", "username": username, "password": password.as_str()});
        let answers = self.control(vec![role, client, set]).await?;
        match answers.last().and_then(|a| a.get("error")) {
            None => {}
            Some(error) => {
                tracing::warn!(%error, "the broker refused to set an MQTT client's password");
                return Err(broker_unavailable("the broker refused the enrolment"));
            }
        }
        Ok(MqttEnrolled::new(username.clone(), password.to_string(), username, topics))
    }

    /// Sends dynamic-security commands and waits for their answers, in order.
    async fn control(&self, commands: Vec<serde_json::Value>) -> Result<Vec<serde_json::Value>, ApiError> {
        if !self.connected() {
            return Err(broker_unavailable("the relay is not connected to the MQTT broker"));
        }
        let mut tags = Forget { control: &self.control, tags: Vec::new() };
        let mut waits = Vec::new();
        let mut tagged = Vec::new();
        for mut command in commands {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let tag = format!("{}-{n}", self.tag);
            let (tx, rx) = oneshot::channel();
            if let Ok(mut c) = self.control.lock() {
                c.insert(tag.clone(), tx);
            }
            if let Some(map) = command.as_object_mut() {
                map.insert("correlationData".into(), tag.clone().into());
            }
            tagged.push(command);
            tags.tags.push(tag);
            waits.push(rx);
        }
        let payload = Zeroizing::new(serde_json::to_vec(&json!({ "commands": tagged })).unwrap_or_default());
        let exchange = async {
            self.client
                .publish(CONTROL_TOPIC, QoS::AtLeastOnce, false, payload.to_vec())
                .await
                .map_err(|_| broker_unavailable("the MQTT bridge is stopping"))?;
            let mut answers = Vec::new();
            for rx in waits {
                answers.push(rx.await.map_err(|_| broker_unavailable("the MQTT bridge is stopping"))?);
            }
            Ok(answers)
        };
        // The waiting entries go with `tags` however this ends.
        tokio::time::timeout(CONTROL_TIMEOUT, exchange)
            .await
            .map_err(|_| broker_unavailable("the MQTT broker did not answer the enrolment"))?
    }

    /// The account that owns mailbox `id`, if it is enrolled.
    async fn owner(&self, relay: &Relay, id: &str) -> Result<Option<AccountId>, ApiError> {
        if let Some(owner) = self.owners.read().ok().and_then(|o| o.get(id).copied()) {
            return Ok(Some(owner));
        }
        let owner = relay.store.mqtt_owner(id.to_owned()).await?;
        if let (Some(account), Ok(mut o)) = (owner, self.owners.write()) {
            o.insert(id.to_owned(), account);
        }
        Ok(owner)
    }

    /// Publishes a deposit's envelope to those recipients that enrolled for
    /// MQTT (QoS 1), each with its own message id.
    pub(crate) async fn push(
        &self,
        relay: &Relay,
        sender: AccountId,
        to: Vec<(AccountId, i64)>,
        envelope: Vec<u8>,
        received_at: u64,
    ) {
        let mut ids: Vec<(String, i64)> = Vec::new();
        let mut unknown = Vec::new();
        if let (Ok(m), Ok(mut absent)) = (self.mailboxes.read(), self.absent.lock()) {
            for (account, message) in &to {
                match m.get(account) {
                    Some(id) => ids.push((id.clone(), *message)),
                    None => match absent.get(account) {
                        Some(at) if at.elapsed() < ABSENT_FOR => {}
                        _ => {
                            absent.remove(account);
                            unknown.push(*account);
                        }
                    },
                }
            }
        }
        if !unknown.is_empty() {
            match relay.store.mqtt_mailboxes(unknown.clone()).await {
                Ok(found) => {
                    if let Ok(mut absent) = self.absent.lock() {
                        let now = Instant::now();
                        absent.retain(|_, at| at.elapsed() < ABSENT_FOR);
                        for account in unknown.iter().filter(|a| !found.iter().any(|(f, _)| f == *a)) {
                            absent.insert(*account, now);
                        }
                    }
                    if let Ok(mut m) = self.mailboxes.write() {
                        for (account, id) in found {
                            if let Some((_, message)) = to.iter().find(|(a, _)| *a == account) {
                                ids.push((id.clone(), *message));
                            }
                            m.insert(account, id);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading MQTT mailboxes for a push"),
            }
        }
        if ids.is_empty() {
            return;
        }
        let mut delivered = Delivered { id: 0, sender, envelope, received_at };
        for (mailbox, message) in ids {
            delivered.id = message;
            let frame = message_frame(&delivered);
            let topic = MqttTopics::new(&self.prefix, &mailbox).mailbox;
            // A full queue (the broker away for long) drops the push: the
            // envelope waits in the mailbox for the device's next pull.
            if self.client.try_publish(topic, QoS::AtLeastOnce, false, frame).is_ok() {
                relay.metrics.delivered(1);
                self.pushed.fetch_add(1, Ordering::Relaxed);
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn broker_unavailable(message: &str) -> ApiError {
    ApiError::new(ErrorCode::BrokerUnavailable, message)
}

fn random_b64<const N: usize>() -> String {
    let mut bytes = Zeroizing::new([0u8; N]);
    rand_core::Rng::fill_bytes(&mut sealpost::os_rng(), &mut bytes[..]);
    B64.encode(&bytes[..])
}

fn read_password(path: &std::path::Path) -> Result<Zeroizing<String>, Error> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?);
    Ok(Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned()))
}

fn tls_config(ca: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| Error::Config(format!("mqtt_ca_file {}: {e}", path.display())))?;
            for cert in certs {
                roots.add(cert).map_err(|e| Error::Config(format!("mqtt_ca_file {}: {e}", path.display())))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(Error::Config("mqtts:// needs mqtt_ca_file or system root certificates".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("MQTT TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The address a request from mailbox `id` counts against in the
/// per-address limits: one of 2^64 in `100::/64`, the discard-only prefix
/// (RFC 6666), which no real peer comes from. The same on every instance,
/// so that the limits shared through PostgreSQL hold for a mailbox across
/// them; ids are drawn at random by the relay, so no device can pick two
/// that share an address.
pub(crate) fn mqtt_peer(id: &str) -> IpAddr {
    let mut h = sha2::Sha256::new();
    h.update(b"sealpost/mqtt-peer\0");
    h.update(id.as_bytes());
    let digest = h.finalize();
    let mut octets = [0u8; 16];
    octets[0] = 0x01;
    for (o, d) in octets.iter_mut().skip(8).zip(digest.iter()) {
        *o = *d;
    }
    IpAddr::V6(Ipv6Addr::from(octets))
}

/// Polls the broker connection until the task is aborted: reconnects with
/// exponential backoff (0.1 s doubling to 30 s), subscribes on every
/// connection, routes control answers and answers requests.
async fn run(relay: Weak<Relay>, bridge: Arc<Bridge>, mut eventloop: EventLoop) {
    let mut backoff = Duration::from_millis(100);
    let mut since: Option<Instant> = None;
    let requests = format!("$share/sealpost-relay/{}/r/+", bridge.prefix);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                since = Some(Instant::now());
                bridge.connected.store(true, Ordering::Relaxed);
                tracing::info!(session_present = ack.session_present, "connected to the MQTT broker");
                for filter in [requests.as_str(), CONTROL_RESPONSE_TOPIC] {
                    if let Err(e) = bridge.client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::warn!(error = %e, filter, "subscribing");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if publish.topic.as_ref() == CONTROL_RESPONSE_TOPIC.as_bytes() {
                    bridge.control_answers(&publish.payload);
                    let _ = bridge.client.try_ack(&publish);
                } else if let Some(relay) = relay.upgrade() {
                    bridge.take(relay, publish);
                }
            }
            Ok(_) => {}
            Err(e) => {
                if since.take().is_some_and(|at| at.elapsed() >= STABLE_AFTER) {
                    backoff = Duration::from_millis(100);
                }
                if bridge.connected.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "lost the MQTT broker; reconnecting");
                } else {
                    tracing::debug!(error = %e, retry_in = ?backoff, "MQTT broker unreachable");
                }
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Removes waiting enrolment entries when their exchange ends, however.
struct Forget<'a> {
    control: &'a Mutex<HashMap<String, oneshot::Sender<serde_json::Value>>>,
    tags: Vec<String>,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.control.lock() {
            for t in &self.tags {
                c.remove(t);
            }
        }
    }
}

impl Bridge {
    /// Starts answering a request publish, unless it is QoS 0 (no flow
    /// control: dropped), a redelivery of one being answered (its first
    /// copy's answer and acknowledgement stand for both), or beyond
    /// [`MAX_REQUESTS_AT_ONCE`] (dropped and acknowledged: the device
    /// sends again).
    fn take(self: &Arc<Self>, relay: Arc<Relay>, publish: Publish) {
        if publish.qos == QoS::AtMostOnce {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Ok(permit) = Arc::clone(&self.requests).try_acquire_owned() else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            let _ = self.client.try_ack(&publish);
            return;
        };
        let fresh = self.answering.lock().map(|mut a| a.insert(publish.pkid)).unwrap_or(false);
        if !fresh {
            return;
        }
        let bridge = Arc::clone(self);
        tokio::spawn(async move {
            bridge.answer(relay, publish).await;
            drop(permit);
        });
    }

    /// Hands the broker's answers to the enrolments waiting for them.
    fn control_answers(&self, payload: &[u8]) {
        let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(payload) else { return };
        let Some(responses) = parsed.get("responses").and_then(|r| r.as_array()) else { return };
        for response in responses {
            let Some(tag) = response.get("correlationData").and_then(|t| t.as_str()) else { continue };
            let waiter = self.control.lock().ok().and_then(|mut c| c.remove(tag));
            if let Some(tx) = waiter {
                let _ = tx.send(response.clone());
            }
        }
    }

    /// Answers one request publish: reads it, runs it through the API and
    /// publishes the answer to its response topic. A request without a
    /// response topic of its own mailbox gets no answer.
    async fn answer(&self, relay: Arc<Relay>, publish: Publish) {
        let mut ack = publish.clone();
        ack.payload = Bytes::new();
        self.answer_publish(relay, publish).await;
        if let Err(e) = self.client.ack(&ack).await {
            tracing::debug!(error = %e, "acknowledging an MQTT request");
        }
        if let Ok(mut a) = self.answering.lock() {
            a.remove(&ack.pkid);
        }
    }

    async fn answer_publish(&self, relay: Arc<Relay>, publish: Publish) {
        let Ok(topic) = std::str::from_utf8(&publish.topic) else { return };
        let Some(id) = request_topic_id(&self.prefix, topic) else { return };
        let properties = publish.properties.unwrap_or_default();
        let Some(response_topic) = properties.response_topic.filter(|t| is_response_topic(&self.prefix, id, t)) else {
            tracing::debug!(mailbox = id, "an MQTT request without a response topic of its mailbox was dropped");
            return;
        };
        let correlation = properties.correlation_data.filter(|c| c.len() <= MAX_CORRELATION_BYTES);
        let peer = mqtt_peer(id);
        let checked = async {
            let request = MqttRequest::from_properties(&properties.user_properties)?;
            // As over HTTP: a POST body must be declared JSON.
            let mime = properties.content_type.as_deref().and_then(|ct| ct.split(';').next()).map(str::trim);
            if request.method == sealpost_client::Method::Post
                && !mime.is_some_and(|m| m.eq_ignore_ascii_case(CONTENT_TYPE))
            {
                return Err(ApiError::new(ErrorCode::UnsupportedContentType, "POST bodies must be application/json"));
            }
            // The broker lets only this mailbox's client publish here; the
            // request must also be its owner's, so that a mailbox cannot
            // speak for other accounts (and multiply its limits).
            let owner = self
                .owner(&relay, id)
                .await?
                .ok_or_else(|| ApiError::new(ErrorCode::NotYourMailbox, "this mailbox is not enrolled"))?;
            Ok(Call::new(request, publish.payload, peer, owner))
        };
        let resp = match checked.await {
            Ok(call) => crate::api::handle_mqtt(&relay, call).await,
            Err(e) => crate::error::into_response(&e),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let Ok(body) = resp.into_body().collect().await.map(|b| b.to_bytes());
        let properties = PublishProperties {
            correlation_data: correlation,
            content_type: Some(CONTENT_TYPE.to_owned()),
            user_properties: response_properties(status, retry_after),
            ..PublishProperties::default()
        };
        match self.client.publish_with_properties(response_topic, QoS::AtLeastOnce, false, body, properties).await {
            Ok(()) => {
                self.answered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(error = %e, "publishing an MQTT answer"),
        }
    }
}
