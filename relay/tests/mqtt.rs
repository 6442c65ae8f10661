//! The MQTT bridge against a real Mosquitto broker (dynamic-security
//! plugin, started per test by scripts/mqtt-broker.sh on a loopback port)
//! and a real relay: enrolment and the broker's access control, the HTTP
//! API's requests over MQTT with the same checks and codes, pushes, and
//! restarts of the broker and of the relay during traffic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{TestRelay, User, real_now, start_with, user};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use sealpost_client::{
    Acked, Deposited, ErrorCode, MessagePage, MqttEnrolled, PushFrame, Reply, Request, encode_account,
    parse_mqtt_response, request_properties,
};
use sealpost_relay::testing::Broker;
use tokio::sync::{mpsc, oneshot};

/// Starts a relay bridged to `broker` and waits until the bridge is up
/// (an enrolment succeeds).
async fn relay_on(broker: &Broker) -> TestRelay {
    let relay = start_with(|c| broker.configure(c)).await;
    wait_for_bridge(&relay).await;
    relay
}

async fn wait_for_bridge(relay: &TestRelay) {
    let probe = user(relay, 0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        match probe.client.enrol_mqtt().await {
            Ok(_) => return,
            Err(e) if e.code() == Some(ErrorCode::BrokerUnavailable) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("enrolment failed: {e}"),
        }
    }
    panic!("the bridge never connected");
}

/// An answer as it came: user properties, payload, correlation data.
type Answer = (Vec<(String, String)>, Bytes, Option<Bytes>);

/// A device on MQTT: its broker connection, the pushes from its mailbox
/// and the answers to its requests.
struct Device {
    client: AsyncClient,
    enrolled: MqttEnrolled,
    pushes: mpsc::UnboundedReceiver<(bool, Vec<u8>)>,
    waiting: Arc<Mutex<HashMap<Vec<u8>, oneshot::Sender<Answer>>>>,
    /// Subscription answers (reason codes), in order.
    subacks: mpsc::UnboundedReceiver<Vec<SubscribeReasonCode>>,
    /// Each (re)connection.
    connacks: mpsc::UnboundedReceiver<bool>,
    /// Every answer received, expected or not.
    answered: Arc<std::sync::atomic::AtomicUsize>,
    /// Publishes received on topics that are not this mailbox's.
    foreign: Arc<std::sync::atomic::AtomicUsize>,
    next: std::sync::atomic::AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

fn options(broker: &Broker, client_id: &str, username: &str, password: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", broker.port);
    o.set_credentials(username, password);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_clean_start(false);
    o.set_session_expiry_interval(Some(600));
    o
}

impl Device {
    /// Connects as `enrolled` (with `client_id` and `password`, which a
    /// test may change to an impostor's) and subscribes to its topics.
    async fn connect_as(broker: &Broker, enrolled: &MqttEnrolled, client_id: &str, password: &str) -> Self {
        let (client, mut eventloop) = AsyncClient::new(options(broker, client_id, &enrolled.username, password), 64);
        let (push_tx, pushes) = mpsc::unbounded_channel();
        let (sub_tx, subacks) = mpsc::unbounded_channel();
        let (conn_tx, connacks) = mpsc::unbounded_channel();
        let waiting: Arc<Mutex<HashMap<Vec<u8>, oneshot::Sender<Answer>>>> = Arc::default();
        let (mailbox, answers) = (enrolled.topics.mailbox.clone(), Arc::clone(&waiting));
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&answered);
        let foreign = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (foreign_seen, responses) = (Arc::clone(&foreign), enrolled.topics.responses.clone());
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        let _ = conn_tx.send(ack.session_present);
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let _ = sub_tx.send(ack.return_codes.clone());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic.as_ref() == mailbox.as_bytes() {
                            let _ = push_tx.send((p.dup, p.payload.to_vec()));
                        } else if !p.topic.starts_with(responses.as_bytes()) {
                            foreign_seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        } else {
                            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let props = p.properties.unwrap_or_default();
                            let key = props.correlation_data.clone().map(|c| c.to_vec()).unwrap_or_default();
                            if let Some(tx) = answers.lock().unwrap().remove(&key) {
                                let _ = tx.send((props.user_properties, p.payload, props.correlation_data));
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Device {
            client,
            enrolled: enrolled.clone(),
            pushes,
            waiting,
            subacks,
            connacks,
            answered,
            foreign,
            next: 0.into(),
            task,
        }
    }

    async fn connect(broker: &Broker, enrolled: &MqttEnrolled) -> Self {
        let mut d = Self::connect_as(broker, enrolled, &enrolled.client_id, enrolled.password()).await;
        let session = tokio::time::timeout(Duration::from_secs(10), d.connacks.recv()).await.unwrap().unwrap();
        let _ = session;
        for filter in [enrolled.topics.mailbox.clone(), enrolled.topics.response_filter()] {
            assert_eq!(d.subscribe(&filter).await, SubscribeReasonCode::Success(QoS::AtLeastOnce), "{filter}");
        }
        d
    }

    async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let codes = tokio::time::timeout(Duration::from_secs(10), self.subacks.recv()).await.unwrap().unwrap();
        codes[0]
    }

    /// Publishes a request with the given user properties and payload and
    /// waits (up to `wait`) for the answer.
    async fn raw(
        &self,
        properties: Vec<(String, String)>,
        payload: Vec<u8>,
        response_topic: Option<String>,
        wait: Duration,
    ) -> Option<Answer> {
        let json = (!payload.is_empty()).then(|| "application/json".to_owned());
        self.raw_typed(properties, payload, json, response_topic, wait).await
    }

    /// [`Device::raw`] with the given content type.
    async fn raw_typed(
        &self,
        properties: Vec<(String, String)>,
        payload: Vec<u8>,
        content_type: Option<String>,
        response_topic: Option<String>,
        wait: Duration,
    ) -> Option<Answer> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let correlation = format!("req-{n}").into_bytes();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(correlation.clone(), tx);
        let props = PublishProperties {
            response_topic: response_topic.or_else(|| Some(self.enrolled.topics.response_topic("test"))),
            correlation_data: Some(correlation.into()),
            user_properties: properties,
            content_type,
            ..PublishProperties::default()
        };
        self.client
            .publish_with_properties(self.enrolled.topics.requests.clone(), QoS::AtLeastOnce, false, payload, props)
            .await
            .unwrap();
        tokio::time::timeout(wait, rx).await.ok().map(Result::unwrap)
    }

    /// Signs `request` as `user` now and sends it; the parsed answer. A
    /// request that gets no answer in 4 s is signed again and sent again
    /// (up to three times), as docs/RELAY.md tells devices to: a broker
    /// drops a request published while no relay is subscribed, as right
    /// after the broker restarted and before the relays subscribed again.
    async fn call<T: Reply>(&self, user: &User, request: Request) -> Result<T, sealpost_client::Error> {
        for _ in 0..3 {
            let auth = request.authorize(&user.account.relay_signer(), real_now(), &nonce());
            let properties = request_properties(&request, &auth);
            let content_type = request.content_type().map(str::to_owned);
            let body = request.body().to_vec();
            let answer = self.raw_typed(properties, body, content_type, None, Duration::from_secs(4)).await;
            if let Some((props, payload, _)) = answer {
                return parse_mqtt_response(&props, &payload);
            }
        }
        panic!("no answer to three tries of {}", request.path_and_query());
    }

    /// The next push within `wait`: (duplicate flag, message).
    async fn push(&mut self, wait: Duration) -> Option<(bool, sealpost_client::Delivered)> {
        let (dup, payload) = tokio::time::timeout(wait, self.pushes.recv()).await.ok()??;
        match PushFrame::decode(std::str::from_utf8(&payload).unwrap()).unwrap() {
            PushFrame::Message(m) => Some((dup, m)),
            other => panic!("a push that is not a message: {other:?}"),
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn nonce() -> [u8; 16] {
    let mut n = [0u8; 16];
    rand_core::Rng::fill_bytes(&mut sealpost::os_rng(), &mut n);
    n
}

fn status(props: &[(String, String)]) -> u16 {
    props.iter().find(|(k, _)| k == "status").unwrap().1.parse().unwrap()
}

fn code(answer: &Answer) -> String {
    let v: serde_json::Value = serde_json::from_slice(&answer.1).unwrap();
    v["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_bridge_enrolment_is_refused_and_nothing_connects() {
    let relay = common::start().await;
    let alice = user(&relay, 0).await;
    let e = alice.client.enrol_mqtt().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MqttDisabled));
    assert_eq!(e.status(), Some(404));
}

/// The broker, not topic secrecy, keeps a mailbox private: another
/// enrolled device may not subscribe to it (directly or by wildcard),
/// publish requests as it, or take its client id; a wrong password is
/// refused. The topics do not name the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_own_device_can_read_a_mailbox() {
    let broker = Broker::start().unwrap();
    let relay = relay_on(&broker).await;
    let (alice, bob) = (user(&relay, 0).await, user(&relay, 0).await);
    let (ea, eb) = (alice.client.enrol_mqtt().await.unwrap(), bob.client.enrol_mqtt().await.unwrap());
    let account = encode_account(&alice.client.account());
    for topic in [&ea.topics.mailbox, &ea.topics.requests, &ea.topics.responses, &ea.username] {
        assert!(!topic.contains(&account), "{topic} names the account");
    }
    assert_ne!(ea.topics.mailbox, eb.topics.mailbox);
    // Enrolling again keeps the topics and replaces the password.
    let again = alice.client.enrol_mqtt().await.unwrap();
    assert_eq!(again.topics, ea.topics);
    assert_ne!(again.password(), ea.password());
    let ea = again;

    let mut a = Device::connect(&broker, &ea).await;
    let mut b = Device::connect(&broker, &eb).await;
    let denied = SubscribeReasonCode::NotAuthorized;
    for filter in [
        ea.topics.mailbox.clone(),
        ea.topics.response_filter(),
        "sealpost/m/#".to_owned(),
        "sealpost/m/+".to_owned(),
        "sealpost/#".to_owned(),
        "#".to_owned(),
        "$CONTROL/dynamic-security/#".to_owned(),
    ] {
        assert_eq!(b.subscribe(&filter).await, denied, "bob subscribed to {filter}");
    }

    // Bob deposits for Alice over HTTP: only Alice's device gets the push.
    let ids = bob.client.deposit(&[alice.client.account()], b"for alice only").await.unwrap();
    let (_, m) = a.push(Duration::from_secs(10)).await.expect("alice's push");
    assert_eq!((m.id, m.sender, m.envelope.as_slice()), (ids[0], bob.client.account(), &b"for alice only"[..]));
    assert!(b.push(Duration::from_millis(500)).await.is_none(), "bob saw alice's mail");

    // A request published to Alice's request topic by Bob never reaches the
    // relay (the broker drops it): the relay would answer anything it got
    // on Alice's response topic, where nothing comes; nothing is stored.
    let request = Request::pull(0, 10);
    let auth = request.authorize(&bob.account.relay_signer(), real_now(), &nonce());
    let props = PublishProperties {
        response_topic: Some(ea.topics.response_topic("test")),
        user_properties: request_properties(&request, &auth),
        ..PublishProperties::default()
    };
    let before = a.answered.load(std::sync::atomic::Ordering::Relaxed);
    b.client.publish_with_properties(ea.topics.requests.clone(), QoS::AtLeastOnce, false, vec![], props).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        a.answered.load(std::sync::atomic::Ordering::Relaxed),
        before,
        "a request on another's topic was answered"
    );
    assert_eq!(alice.client.pull(0, 10).await.unwrap().len(), 1);
    // Through her own mailbox, Alice's device may not speak for Bob either.
    let as_bob = Request::pull(0, 10);
    let auth = as_bob.authorize(&bob.account.relay_signer(), real_now(), &nonce());
    let refused = a.raw(request_properties(&as_bob, &auth), vec![], None, Duration::from_secs(10)).await.unwrap();
    assert_eq!((status(&refused.0), code(&refused)), (403, "not_your_mailbox".to_owned()));
    // Of everything published meanwhile, Bob's client received nothing of Alice's.
    assert_eq!(b.foreign.load(std::sync::atomic::Ordering::Relaxed), 0, "bob received a publish on alice's topics");

    // Alice's client id under Bob's name, and a wrong password: refused.
    for (client_id, username, password) in [
        (ea.client_id.as_str(), eb.username.as_str(), eb.password()),
        (eb.client_id.as_str(), eb.username.as_str(), "wrong"),
    ] {
        let (_c, mut ev) = AsyncClient::new(options(&broker, client_id, username, password), 8);
        let refused = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return false,
                    Ok(_) => {}
                    Err(_) => return true,
                }
            }
        });
        assert!(refused.await.unwrap(), "{client_id} as {username} was let in");
    }
}

/// Every route a mailbox owner uses, over MQTT, with the HTTP API's
/// bodies, statuses and error codes; one code path checks them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_mqtt_get_the_http_apis_answers_and_checks() {
    let broker = Broker::start().unwrap();
    let relay = relay_on(&broker).await;
    let bob = user(&relay, 2).await;
    // A fresh account publishes its bundle over MQTT? It has no broker
    // client yet: enrolment is over HTTP, after publishing.
    let mut alice = user(&relay, 0).await;
    let ea = alice.client.enrol_mqtt().await.unwrap();
    let mut a = Device::connect(&broker, &ea).await;

    // Keys: publish again, upload prekeys, fetch Bob's bundle.
    let policy = sealpost::SessionPolicy::default();
    let published: sealpost_client::BundlePublished =
        a.call(&alice, Request::publish_bundle(&alice.account.bundle(&policy).unwrap())).await.unwrap();
    assert_eq!(published.account, alice.client.account());
    let keys = alice.account.generate_one_time_prekeys(&mut sealpost::os_rng(), 3);
    let stored: sealpost_client::PrekeysStored = a.call(&alice, Request::upload_prekeys(&keys)).await.unwrap();
    assert_eq!(stored.one_time_prekeys, 3);
    let fetched: sealpost_client::BundleFetched =
        a.call(&alice, Request::fetch_bundle(&bob.client.account())).await.unwrap();
    assert_eq!(fetched.one_time_prekeys_left, 1);

    // Deposit to Bob, who pulls it over HTTP; Bob deposits back over HTTP,
    // Alice gets the push, pulls and acknowledges over MQTT.
    let d: Deposited = a.call(&alice, Request::deposit(&[bob.client.account()], b"over mqtt")).await.unwrap();
    let page = bob.client.pull(0, 10).await.unwrap();
    assert_eq!((page[0].id, page[0].envelope.as_slice()), (d.ids[0], &b"over mqtt"[..]));
    let back = bob.client.deposit(&[alice.client.account()], b"back").await.unwrap();
    let (_, pushed) = a.push(Duration::from_secs(10)).await.unwrap();
    assert_eq!(pushed.id, back[0]);
    let page: MessagePage = a.call(&alice, Request::pull(0, 10)).await.unwrap();
    assert_eq!(page.messages.iter().map(|m| m.id).collect::<Vec<_>>(), back);
    let acked: Acked = a.call(&alice, Request::ack(&back)).await.unwrap();
    assert_eq!(acked.deleted, 1);
    assert!(alice.client.pull(0, 10).await.unwrap().is_empty(), "the ack over MQTT deleted it");

    // Handles over MQTT, with the code from the relay's sink.
    let _: sealpost_client::HandleClaimed = a.call(&alice, Request::claim_handle("alice-mqtt")).await.unwrap();
    let sent_code = relay.codes.code("alice-mqtt").unwrap();
    let _: sealpost_client::HandleBound =
        a.call(&alice, Request::verify_handle("alice-mqtt", &sent_code)).await.unwrap();
    let found: sealpost_client::HandleFound = a.call(&alice, Request::lookup_handle("alice-mqtt")).await.unwrap();
    assert_eq!(found.account, alice.client.account());

    // The same refusals as over HTTP.
    let request = Request::pull(0, 10);
    let auth = request.authorize(&alice.account.relay_signer(), real_now(), &nonce());
    let ok = a.raw(request_properties(&request, &auth), vec![], None, Duration::from_secs(10)).await.unwrap();
    assert_eq!(status(&ok.0), 200);
    assert!(ok.2.as_deref().is_some_and(|c| c.starts_with(b"req-")), "correlation data echoed");
    let replay = a.raw(request_properties(&request, &auth), vec![], None, Duration::from_secs(10)).await.unwrap();
    assert_eq!((status(&replay.0), code(&replay)), (401, "replayed_request".to_owned()));
    let other = Request::pull(1, 10);
    let wrong = a.raw(request_properties(&other, &auth), vec![], None, Duration::from_secs(10)).await.unwrap();
    assert_eq!((status(&wrong.0), code(&wrong)), (401, "bad_signature".to_owned()));
    let unsigned = vec![("method".to_owned(), "GET".to_owned()), ("path".to_owned(), "/v1/messages".to_owned())];
    let missing = a.raw(unsigned, vec![], None, Duration::from_secs(10)).await.unwrap();
    assert_eq!((status(&missing.0), code(&missing)), (401, "missing_authorization".to_owned()));
    let no_method = vec![("path".to_owned(), "/v1/messages".to_owned())];
    let bad = a.raw(no_method, vec![], None, Duration::from_secs(10)).await.unwrap();
    assert_eq!((status(&bad.0), code(&bad)), (400, "bad_mqtt_request".to_owned()));
    for (method, path, want) in [
        ("GET", "/v1/ws", "no_such_route"),
        ("GET", "/metrics", "no_such_route"),
        ("GET", "/v1/keys/bundle", "method_not_allowed"),
    ] {
        let r = Request::custom(
            if method == "GET" { sealpost_client::Method::Get } else { sealpost_client::Method::Post },
            path,
            vec![],
        );
        let auth = r.authorize(&alice.account.relay_signer(), real_now(), &nonce());
        let answer = a.raw(request_properties(&r, &auth), vec![], None, Duration::from_secs(10)).await.unwrap();
        assert_eq!(code(&answer), want, "{method} {path}");
    }
    let junk = Request::custom(sealpost_client::Method::Post, "/v1/messages", b"{not json".to_vec());
    let auth = junk.authorize(&alice.account.relay_signer(), real_now(), &nonce());
    let answer =
        a.raw(request_properties(&junk, &auth), junk.body().to_vec(), None, Duration::from_secs(10)).await.unwrap();
    assert_eq!((status(&answer.0), code(&answer)), (400, "bad_json".to_owned()));
    // A response topic outside the mailbox's own prefix gets no answer.
    let r = Request::pull(0, 10);
    let auth = r.authorize(&alice.account.relay_signer(), real_now(), &nonce());
    // (Its own mailbox topic, which the device listens to: the answer
    // would arrive there as a push.)
    let elsewhere = Some(ea.topics.mailbox.clone());
    assert!(a.raw(request_properties(&r, &auth), vec![], elsewhere, Duration::from_millis(800)).await.is_none());
    assert!(
        a.push(Duration::from_millis(200)).await.is_none(),
        "the relay answered on a topic that is no response topic"
    );
    // A POST body must be declared JSON, as over HTTP.
    let post = Request::ack(&[1]);
    for content_type in [None, Some("text/plain".to_owned())] {
        let auth = post.authorize(&alice.account.relay_signer(), real_now(), &nonce());
        let answer = a
            .raw_typed(
                request_properties(&post, &auth),
                post.body().to_vec(),
                content_type.clone(),
                None,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(
            (status(&answer.0), code(&answer)),
            (400, "unsupported_content_type".to_owned()),
            "{content_type:?}"
        );
    }
    // A body over the limit: 413 before anything else.
    let big = Request::deposit(&[bob.client.account()], &vec![7u8; 300 * 1024]);
    let auth = big.authorize(&alice.account.relay_signer(), real_now(), &nonce());
    let answer =
        a.raw(request_properties(&big, &auth), big.body().to_vec(), None, Duration::from_secs(10)).await.unwrap();
    assert_eq!((status(&answer.0), code(&answer)), (413, "too_large".to_owned()));
}

/// The per-address limits count per MQTT client: a device's burst runs
/// out and it gets 429 with Retry-After, while another device goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_per_device_over_mqtt() {
    let broker = Broker::start().unwrap();
    let mut relay = relay_on(&broker).await;
    let (alice, bob) = (user(&relay, 0).await, user(&relay, 0).await);
    let enrolled = [alice.client.enrol_mqtt().await.unwrap(), bob.client.enrol_mqtt().await.unwrap()];
    // Enrolments outlive a restart, which brings the small burst.
    relay
        .restart_with(|c| {
            broker.configure(c);
            c.rate_ip_burst = 5.0;
            c.rate_ip_per_sec = 0.01;
        })
        .await;
    let a = Device::connect(&broker, &enrolled[0]).await;
    let b = Device::connect(&broker, &enrolled[1]).await;
    let mut refused = None;
    for _ in 0..8 {
        match a.call::<MessagePage>(&alice, Request::pull(0, 1)).await {
            Ok(_) => {}
            Err(sealpost_client::Error::Relay(e)) => {
                refused = Some(e);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let refused = refused.expect("the burst ran out");
    assert_eq!(refused.code, ErrorCode::RateLimited);
    assert!(refused.retry_after.is_some_and(|s| s >= 1));
    b.call::<MessagePage>(&bob, Request::pull(0, 1)).await.expect("another device has its own burst");
}

/// Deposits keep coming over HTTP while the broker restarts twice: the
/// device gets every envelope (pushes, and a pull after each reconnect),
/// sees duplicates only as ids it already has, and after acknowledging
/// has an empty mailbox. Then the relay restarts: the bridge reconnects,
/// a device's request published meanwhile is answered (the broker kept it
/// in the relay's session) and pushes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_across_broker_and_relay_restarts() {
    let broker = Broker::start().unwrap();
    let mut relay = relay_on(&broker).await;
    let (alice, bob) = (user(&relay, 0).await, user(&relay, 0).await);
    let eb = bob.client.enrol_mqtt().await.unwrap();
    let mut b = Device::connect(&broker, &eb).await;

    let sender = {
        let client = alice.client.at(&relay.base).unwrap();
        let to = bob.client.account();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..60u32 {
                ids.extend(client.deposit(&[to], format!("reading {i}").as_bytes()).await.unwrap());
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            ids
        })
    };
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A request of the device's in flight across the restart: answered
        // once the broker and the relay's subscription are back (the
        // device signs it again if the broker dropped it).
        let restart = broker.restart_in_background();
        let _: MessagePage = b.call(&bob, Request::pull(0, 1)).await.unwrap();
        restart.join().unwrap().unwrap();
        while let Some((_, m)) = b.push(Duration::from_millis(50)).await {
            if !seen.insert(m.id) {
                duplicates += 1;
            }
        }
    }
    let sent: BTreeSet<i64> = sender.await.unwrap().into_iter().collect();
    // After the restarts: pushes that were queued, then a pull for the rest.
    while let Some((_, m)) = b.push(Duration::from_secs(2)).await {
        if !seen.insert(m.id) {
            duplicates += 1;
        }
    }
    let page: MessagePage = b.call(&bob, Request::pull(0, 1000)).await.unwrap();
    for m in &page.messages {
        seen.insert(m.id);
    }
    assert_eq!(page.messages.iter().map(|m| m.id).collect::<BTreeSet<_>>(), sent, "the mailbox holds every deposit");
    assert_eq!(seen, sent, "the device has every envelope once (duplicates came {duplicates} times)");
    let acked: Acked = b.call(&bob, Request::ack(&sent.iter().copied().collect::<Vec<_>>())).await.unwrap();
    assert_eq!(acked.deleted, 60);

    // The relay restarts; a request published while it is away is kept by
    // the broker (the relay's persistent session) and answered after.
    relay.stop().await;
    let request = Request::pull(0, 10);
    let auth = request.authorize(&bob.account.relay_signer(), real_now(), &nonce());
    let waiting = b.raw(request_properties(&request, &auth), vec![], None, Duration::from_secs(15));
    let restart = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        relay.restart_with(|c| broker.configure(c)).await;
    };
    let (answer, ()) = tokio::join!(waiting, restart);
    let answer = answer.expect("the request published while the relay was away was answered");
    // On the test's clock the request is younger than the relay's start;
    // on a real one it would be older, and refused as stale_request.
    let page: MessagePage = parse_mqtt_response(&answer.0, &answer.1).unwrap();
    assert!(page.messages.is_empty());
    let ids = alice.client.deposit(&[bob.client.account()], b"after the restart").await.unwrap();
    // QoS 1 may bring again what came before (already seen, acknowledged):
    // only the id tells, and it is never a new one.
    loop {
        let (_, m) = b.push(Duration::from_secs(10)).await.expect("pushes go on after the relay restarted");
        if m.id == ids[0] {
            break;
        }
        assert!(seen.contains(&m.id), "push {} is neither new nor seen before", m.id);
    }
}

/// `mqtts://` with `mqtt_ca_file`: the bridge verifies the broker's
/// certificate and works over TLS; with a CA that did not sign it, the
/// bridge never connects (enrolment answers 503 `broker_unavailable`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_speaks_tls_and_refuses_a_broker_it_cannot_verify() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let broker = Broker::start_tls(&cert.cert.pem(), &cert.signing_key.serialize_pem()).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (good, bad) = (files.path().join("good.pem"), files.path().join("bad.pem"));
    std::fs::write(&good, cert.cert.pem()).unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&bad, stranger.cert.pem()).unwrap();
    let tls = |c: &mut sealpost_relay::Config, ca: &std::path::Path| {
        broker.configure(c);
        c.mqtt_url = Some(sealpost_relay::config::MqttUrl {
            host: "localhost".into(),
            port: broker.tls_port.unwrap(),
            tls: true,
        });
        c.mqtt_ca_file = Some(ca.to_path_buf());
    };

    let relay = start_with(|c| tls(c, &good)).await;
    wait_for_bridge(&relay).await;
    let (alice, bob) = (user(&relay, 0).await, user(&relay, 0).await);
    let ea = alice.client.enrol_mqtt().await.unwrap();
    let mut a = Device::connect(&broker, &ea).await;
    let ids = bob.client.deposit(&[alice.client.account()], b"through TLS").await.unwrap();
    let (_, m) = a.push(Duration::from_secs(10)).await.expect("a push through the TLS bridge");
    assert_eq!(m.id, ids[0]);

    let unverified = start_with(|c| tls(c, &bad)).await;
    let carol = user(&unverified, 0).await;
    for _ in 0..10 {
        let e = carol.client.enrol_mqtt().await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::BrokerUnavailable));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `route`'s count with `status` in a relay's `/metrics`.
async fn served(relay: &TestRelay, route: &str, status: u16) -> u64 {
    metric(relay, &format!("sealpost_requests_total{{route=\"{route}\",status=\"{status}\"}}")).await
}

/// The value of the metric `key` (name and labels) in a relay's `/metrics`, 0 when absent.
async fn metric(relay: &TestRelay, key: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = relay.running.as_ref().unwrap().addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let key = format!("{key} ");
    text.lines().find_map(|l| l.strip_prefix(&key)).map_or(0, |n| n.parse().unwrap())
}

/// Two relays on one PostgreSQL database, each with its own client id on
/// one broker: a mailbox enrolled through one is pushed to by the other,
/// and the shared subscription hands each request to exactly one of them
/// (both take some; every request gets one answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_database_share_the_broker() {
    let Some(url) = common::fresh_postgres_schema().await else { return };
    let broker = Broker::start().unwrap();
    let instance = |id: &'static str| {
        let (url, broker) = (url.clone(), &broker);
        move |c: &mut sealpost_relay::Config| {
            broker.configure(c);
            c.database_url = Some(sealpost_relay::config::DatabaseUrl(url));
            c.mqtt_client_id = id.to_owned();
        }
    };
    let one = start_with(instance("relay-one")).await;
    wait_for_bridge(&one).await;
    let two = start_with(instance("relay-two")).await;
    wait_for_bridge(&two).await;
    let (alice, bob) = (user(&one, 0).await, user(&two, 0).await);
    let ea = alice.client.enrol_mqtt().await.unwrap();
    let mut a = Device::connect(&broker, &ea).await;

    // Enrolled through one, deposited through two: two publishes the push.
    let ids = bob.client.deposit(&[alice.client.account()], b"via two").await.unwrap();
    let (_, m) = a.push(Duration::from_secs(10)).await.expect("the other instance pushed");
    assert_eq!(m.id, ids[0]);

    let before = a.answered.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..20 {
        let page: MessagePage = a.call(&alice, Request::pull(0, 10)).await.unwrap();
        assert_eq!(page.messages.len(), 1);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answers = a.answered.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert_eq!(answers, 20, "each request is answered once");
    let (by_one, by_two) = (served(&one, "messages", 200).await, served(&two, "messages", 200).await);
    assert_eq!(by_one + by_two, 20);
    let counted =
        metric(&one, "sealpost_mqtt_requests_total").await + metric(&two, "sealpost_mqtt_requests_total").await;
    assert!(counted >= 20, "the bridges count their answers: {counted}");
    assert_eq!(metric(&one, "sealpost_mqtt_connected").await, 1);
    assert!(metric(&two, "sealpost_mqtt_pushes_total").await >= 1);
    assert!(by_one > 0 && by_two > 0, "both relays took requests: {by_one} and {by_two}");
}
