//! Three people chat through a real relay on loopback: handles, adding
//! people, broadcast and direct messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

use sealpost_chat::testing::Person;
use sealpost_relay::MemorySink;
use sealpost_relay::{Config, Running};
use tokio::io::AsyncWriteExt;

async fn person(base: &str) -> Person {
    Person::join(base).await
}

/// Envelope copies the relay committed so far, from its `/metrics`.
async fn deposited(addr: std::net::SocketAddr) -> u64 {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let line = text.lines().find(|l| l.starts_with("sealpost_envelopes_deposited_total ")).unwrap();
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

async fn register(p: &mut Person, codes: &MemorySink, handle: &str) {
    p.type_line(&format!("/claim {handle}")).await;
    p.expect("on its way").await;
    let code = codes.code(handle).unwrap();
    p.type_line(&format!("/verify {handle} {code}")).await;
    p.expect(&format!("you are @{handle}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_people_chat_with_broadcast_and_direct_messages() {
    let dir = tempfile::tempdir().unwrap();
    let codes = Arc::new(MemorySink::default());
    let config =
        Config { listen: "127.0.0.1:0".parse().unwrap(), data_dir: dir.path().to_path_buf(), ..Config::default() };
    let relay = Running::start(config, Some(codes.clone())).await.unwrap();
    let base = format!("http://{}", relay.addr);

    let mut alice = person(&base).await;
    let mut bob = person(&base).await;
    let mut carol = person(&base).await;
    register(&mut alice, &codes, "alice").await;
    register(&mut bob, &codes, "bob").await;
    register(&mut carol, &codes, "carol").await;

    alice.type_line("/add bob").await;
    alice.expect("@bob joined; safety number").await;
    let seen = bob.expect("@alice joined; safety number").await;
    // Both see the same safety number.
    let sn_bob = seen.last().unwrap().split("safety number ").nth(1).unwrap().to_owned();
    alice.type_line("/safety bob").await;
    let sn_alice = alice.expect("safety number with bob").await.last().unwrap().split(": ").nth(1).unwrap().to_owned();
    assert_eq!(sn_alice, sn_bob);

    alice.type_line("/add carol").await;
    carol.expect("@alice joined").await;
    carol.type_line("/add bob").await;
    bob.expect("@carol joined").await;

    alice.type_line("hello everyone").await;
    bob.expect("[alice] hello everyone").await;
    carol.expect("[alice] hello everyone").await;

    // A direct message is one envelope copy, for Bob's mailbox alone.
    let before = deposited(relay.addr).await;
    alice.type_line("/msg bob just between us").await;
    bob.expect("[alice → you] just between us").await;
    assert_eq!(deposited(relay.addr).await - before, 1, "the direct message went to one mailbox");
    // Carol's next line is the next broadcast: nothing of the direct message
    // (not even an envelope she could not open) reached her.
    bob.type_line("lunch?").await;
    let lines = carol.expect("[bob] lunch?").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    alice.expect("[bob] lunch?").await;

    alice.type_line("/who").await;
    let who = alice.expect("in the room").await;
    assert!(who.last().unwrap().contains("@bob") && who.last().unwrap().contains("@carol"));
    relay.stop().await.unwrap();
}
