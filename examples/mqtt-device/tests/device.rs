//! The example device against a real Mosquitto broker and a real relay:
//! it enrols, verifies a handle over MQTT, and talks with a person in the
//! terminal chat (HTTP and WebSocket) both ways; the broker restarts while
//! the person writes to it and the message still arrives exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use sealpost_chat::testing::Person;
use sealpost_mqtt_device::{Device, DeviceEvent};
use sealpost_relay::testing::Broker;
use sealpost_relay::{Config, MemorySink, Running};

/// The device's next event that `pick` accepts, within 30 s (others are
/// collected and returned too, for the assertions on what came between).
async fn wait_for(device: &mut Device, mut pick: impl FnMut(&DeviceEvent) -> bool) -> (DeviceEvent, Vec<DeviceEvent>) {
    let mut before = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), device.next_event())
            .await
            .unwrap_or_else(|_| panic!("timed out; the device saw {before:?}"))
            .expect("the device stopped");
        if pick(&event) {
            return (event, before);
        }
        before.push(event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_on_mqtt_talks_with_a_person_in_the_terminal_chat() {
    let broker = Broker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let codes = Arc::new(MemorySink::default());
    let mut config =
        Config { listen: "127.0.0.1:0".parse().unwrap(), data_dir: dir.path().to_path_buf(), ..Config::default() };
    broker.configure(&mut config);
    let relay = Running::start(config, Some(codes.clone())).await.unwrap();
    let base = format!("http://{}", relay.addr);

    // The relay's bridge may still be connecting: enrolment waits for it.
    let enrolment = loop {
        match Device::enrol(&base).await {
            Ok(e) => break e,
            Err(e) if e.to_string().contains("broker_unavailable") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("enrolment: {e}"),
        }
    };
    let mut device = Device::connect(enrolment, "127.0.0.1", broker.port, None).await.unwrap();
    wait_for(&mut device, |e| *e == DeviceEvent::Connected).await;
    // The handle, claimed and verified over MQTT with the code the relay sent.
    device.claim_handle("sensor1").await.unwrap();
    let code = codes.code("sensor1").unwrap();
    assert_eq!(device.verify_handle("sensor1", &code).await.unwrap(), "sensor1");

    let mut alice = Person::join(&base).await;
    alice.type_line("/claim alice").await;
    alice.expect("on its way").await;
    let code = codes.code("alice").unwrap();
    alice.type_line(&format!("/verify alice {code}")).await;
    alice.expect("you are @alice").await;

    // Alice adds the device; it accepts the session and introduces itself.
    alice.type_line("/add sensor1").await;
    let alice_sn = alice.expect("@sensor1 joined; safety number").await.pop().unwrap();
    let (joined, _) = wait_for(&mut device, |e| matches!(e, DeviceEvent::Joined { .. })).await;
    let DeviceEvent::Joined { handle, safety_number } = joined else { unreachable!() };
    assert_eq!(handle, "alice");
    assert!(alice_sn.ends_with(&safety_number), "the same safety number on both sides: {alice_sn} / {safety_number}");

    // Direct messages both ways.
    alice.type_line("/msg sensor1 ping").await;
    let (ping, _) = wait_for(&mut device, |e| matches!(e, DeviceEvent::Direct { .. })).await;
    assert_eq!(ping, DeviceEvent::Direct { from_handle: "alice".into(), text: "ping".into() });
    alice.expect("[sensor1 → you] pong").await;
    alice.type_line("/msg sensor1 read").await;
    alice.expect("[sensor1 → you] temperature 21.5").await;
    device.send_to("alice", "door opened").await.unwrap();
    alice.expect("[sensor1 → you] door opened").await;
    // And a broadcast to the room, which the device reads too.
    alice.type_line("hello room").await;
    let (room, _) = wait_for(&mut device, |e| matches!(e, DeviceEvent::Broadcast { .. })).await;
    assert_eq!(room, DeviceEvent::Broadcast { from_handle: "alice".into(), text: "hello room".into() });

    // The broker restarts while Alice writes (her deposit goes to the relay
    // over HTTP; its push to the broker waits or is lost): the device
    // reconnects and gets the message once (the queued push and the pull
    // after reconnecting may both bring it), and answers.
    let restart = broker.restart_in_background();
    tokio::time::sleep(Duration::from_millis(50)).await;
    alice.type_line("/msg sensor1 ping").await;
    restart.join().unwrap().unwrap();
    let (again, between) = wait_for(&mut device, |e| matches!(e, DeviceEvent::Direct { .. })).await;
    assert_eq!(again, DeviceEvent::Direct { from_handle: "alice".into(), text: "ping".into() });
    assert!(
        between.iter().all(|e| !matches!(e, DeviceEvent::Direct { .. } | DeviceEvent::Dropped { .. })),
        "{between:?}"
    );
    alice.expect("[sensor1 → you] pong").await;
    // Nothing else surfaces: no second copy of anything.
    device.send_to("alice", "still here").await.unwrap();
    alice.expect("[sensor1 → you] still here").await;
    let late = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match device.next_event().await {
                Some(
                    e @ (DeviceEvent::Direct { .. } | DeviceEvent::Broadcast { .. } | DeviceEvent::Dropped { .. }),
                ) => {
                    return e;
                }
                Some(_) => {}
                None => std::future::pending().await,
            }
        }
    })
    .await;
    assert!(late.is_err(), "a message surfaced twice: {late:?}");
    relay.stop().await.unwrap();
}
