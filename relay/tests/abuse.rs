//! Abuse resistance over real loopback sockets (issue 12): no single
//! client, however many free accounts it makes, can deny service to
//! everyone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{start_with, user};
use hyper::Method;
use sealpost_relay::auth::authorization;
use sealpost_relay::client::Client;

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

const PULL: &str = "/v1/messages?after=0&limit=1";

/// A signed `GET PULL` header from `identity` with a fresh nonce.
fn signed(identity: &sealpost::RelaySigner, ts: u64, n: u128) -> String {
    authorization(identity, "GET", PULL, ts, &n.to_le_bytes(), b"")
}

async fn get(c: &Client, auth: &str) -> (u16, String) {
    let r = c.raw(Method::GET, PULL, &[("authorization", auth.to_owned())], vec![], false).await.unwrap();
    (r.status.as_u16(), r.json()["error"]["code"].as_str().unwrap_or("").to_owned())
}

/// Defect 1: a request refused as unregistered or rate-limited records no
/// nonce, one account's full set refuses only that account, and a full
/// cache never refuses everyone.
#[tokio::test]
async fn nonces_are_kept_only_for_admitted_requests_and_never_lock_everyone_out() {
    // Unregistered: refused before the nonce is kept, so the very same
    // request is accepted once the key registers (today it was "replayed").
    let relay = start_with(|c| c.max_nonces_per_account = 4).await;
    let state = &relay.running.as_ref().unwrap().relay;
    let mut rng = sealpost::os_rng();
    let account = sealpost::Account::new(&mut rng, common::NOW);
    let stranger = Client::new(&relay.base, account.relay_signer()).unwrap();
    let early = signed(&account.relay_signer(), unix_now(), 1);
    assert_eq!(get(&stranger, &early).await, (403, "not_registered".into()));
    for n in 2..50 {
        assert_eq!(get(&stranger, &signed(&account.relay_signer(), unix_now(), n)).await.0, 403);
    }
    assert_eq!(state.nonces.len(), 0, "refused requests leave nothing behind");
    stranger.publish_bundle(&account.bundle(&sealpost::SessionPolicy::default()).unwrap()).await.unwrap();
    assert_eq!(get(&stranger, &early).await.0, 200);
    assert_eq!(get(&stranger, &early).await, (401, "replayed_request".into()));

    // One account signing more than its share within the window: only it
    // is refused (as stale), others are served; nothing can be replayed.
    let honest = user(&relay, 0).await;
    let attacker = user(&relay, 0).await;
    let ts = unix_now();
    let first = signed(&attacker.account.relay_signer(), ts, 0);
    let mut codes = Vec::new();
    for n in 0..40u128 {
        codes.push(get(&attacker.client, &signed(&attacker.account.relay_signer(), ts, n)).await);
    }
    // Its publish took one of its four places (one more if it fell in an
    // earlier second than these requests).
    let served = codes.iter().take_while(|c| c.0 == 200).count();
    assert!((4..=5).contains(&served), "{codes:?}");
    assert!(codes[served..].iter().all(|c| *c == (401, "stale_request".into())), "{codes:?}");
    assert_eq!(get(&attacker.client, &first).await, (401, "stale_request".into()));
    assert_eq!(honest.client.pull(0, 1).await.unwrap().len(), 0);

    // Rate-limited requests keep no nonce either.
    let relay = start_with(|c| {
        c.rate_account_burst = 2.0;
        c.rate_account_per_sec = 0.001;
    })
    .await;
    let state = &relay.running.as_ref().unwrap().relay;
    let limited = user(&relay, 0).await; // the publish took one token
    assert_eq!(get(&limited.client, &signed(&limited.account.relay_signer(), unix_now(), 1)).await.0, 200);
    let kept = state.nonces.len();
    for n in 2..20 {
        let r = get(&limited.client, &signed(&limited.account.relay_signer(), unix_now(), n)).await;
        assert_eq!(r, (429, "rate_limited".into()));
    }
    assert_eq!(state.nonces.len(), kept);

    // Many accounts filling the whole cache: it trims the biggest holders;
    // an honest account with few requests is still served, and none of the
    // attackers' requests can be replayed.
    let relay = start_with(|c| c.max_nonces = 200).await;
    let state = &relay.running.as_ref().unwrap().relay;
    let honest = user(&relay, 0).await;
    let mut replays = Vec::new();
    for _ in 0..40 {
        let a = user(&relay, 0).await;
        let ts = unix_now();
        for n in 0..5u128 {
            let h = signed(&a.account.relay_signer(), ts, n);
            get(&a.client, &h).await;
            replays.push((a.client.clone(), h));
        }
    }
    assert!(state.nonces.len() <= 200, "{}", state.nonces.len());
    assert_eq!(honest.client.pull(0, 1).await.unwrap().len(), 0, "an honest account is served");
    for (c, h) in &replays {
        let (status, code) = get(c, h).await;
        assert_eq!(status, 401);
        assert!(code == "replayed_request" || code == "stale_request", "{code}");
    }
}

/// Defect 10: a restart forgets every nonce, so requests signed before the
/// relay started are refused rather than accepted a second time.
#[tokio::test]
async fn a_request_replayed_after_a_restart_is_refused() {
    let mut relay = start_with(|_| {}).await;
    let alice = user(&relay, 0).await;
    let ts = unix_now();
    let once = signed(&alice.account.relay_signer(), ts, 1);
    assert_eq!(get(&alice.client, &once).await.0, 200);
    // Restart in a later second than the one the request was signed in.
    while unix_now() <= ts {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    relay.restart().await;
    let alice = Client::new(&relay.base, alice.account.relay_signer()).unwrap();
    assert_eq!(get(&alice, &once).await, (401, "stale_request".into()));
    // Requests signed now are served.
    assert_eq!(alice.pull(0, 1).await.unwrap().len(), 0);
}

/// Reads until the relay closes the connection or `limit` passes; returns
/// whether it closed, and what it sent.
async fn closed_within(s: &mut tokio::net::TcpStream, limit: std::time::Duration) -> (bool, String) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return (false, String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(0)) | Ok(Err(_)) => return (true, String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Defect 5: silent, slow-header, slow-body and idle keep-alive
/// connections are closed, over HTTP/1 and HTTP/2.
#[tokio::test]
async fn slow_and_silent_connections_are_closed() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let relay = start_with(|c| {
        c.http_header_timeout_secs = 1;
        c.http_body_timeout_secs = 1;
        c.http_idle_timeout_secs = 2;
    })
    .await;
    let addr = relay.running.as_ref().unwrap().addr;
    let connect = || tokio::net::TcpStream::connect(addr);
    let limit = Duration::from_secs(4);

    let silent = async {
        let mut s = connect().await.unwrap();
        closed_within(&mut s, limit).await
    };
    let slow_headers = async {
        let mut s = connect().await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        closed_within(&mut s, limit).await
    };
    let slow_body = async {
        let mut s = connect().await.unwrap();
        s.write_all(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{\"rec")
            .await
            .unwrap();
        closed_within(&mut s, limit).await
    };
    let idle = async {
        let mut s = connect().await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        closed_within(&mut s, limit).await
    };
    // An HTTP/2 client that answers pings but sends no further request.
    let h2_idle = async {
        let io = hyper_util::rt::TokioIo::new(connect().await.unwrap());
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
        let conn = tokio::spawn(conn);
        let req = hyper::Request::get(format!("http://{addr}/healthz"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        assert_eq!(send.send_request(req).await.unwrap().status(), 200);
        let answered = tokio::time::Instant::now();
        let closed = tokio::time::timeout(limit, conn).await.is_ok();
        (closed, answered.elapsed())
    };
    let h2_silent = async {
        let mut s = connect().await.unwrap();
        // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
        closed_within(&mut s, limit).await
    };
    let (silent, slow_headers, slow_body, idle, h2_silent, (h2_idle, idle_took)) =
        tokio::join!(silent, slow_headers, slow_body, idle, h2_silent, h2_idle);
    assert!(silent.0, "a connection that never sends a request is closed");
    assert!(slow_headers.0, "a request whose headers never end is closed: {}", slow_headers.1);
    assert!(slow_body.0, "a request whose body never ends is closed");
    assert!(slow_body.1.starts_with("HTTP/1.1 408"), "{}", slow_body.1);
    assert!(slow_body.1.contains("\"request_timeout\""), "{}", slow_body.1);
    assert!(idle.0 && idle.1.starts_with("HTTP/1.1 200"), "an idle keep-alive connection is closed: {}", idle.1);
    assert!(h2_silent.0, "an HTTP/2 connection without requests is closed");
    assert!(h2_idle, "an idle HTTP/2 connection is closed");
    assert!(idle_took >= Duration::from_millis(1500), "not before the idle timeout: {idle_took:?}");
    // The relay still serves.
    let c = Client::new(&relay.base, sealpost::Account::new(&mut sealpost::os_rng(), 0).relay_signer()).unwrap();
    assert_eq!(c.raw(Method::GET, "/healthz", &[], vec![], false).await.unwrap().status, 200);
}

/// Defect 3: a pull page is capped by envelope bytes (always at least one
/// message), not only by count.
#[tokio::test]
async fn pull_pages_are_capped_by_bytes() {
    let relay = start_with(|c| c.max_pull_bytes = 10_000).await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    for i in 0..5u8 {
        alice.client.deposit(&[bob.client.account()], &[i; 4000]).await.unwrap();
    }
    alice.client.deposit(&[bob.client.account()], &[9; 12_000]).await.unwrap();
    let r = bob.client.raw(Method::GET, "/v1/messages?after=0&limit=1000", &[], vec![], true).await.unwrap();
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_eq!(page["messages"].as_array().unwrap().len(), 2, "two of 4000 bytes fit in 10000");
    // Measured: the body is the base64 of 8000 bytes plus ~260 bytes of JSON.
    assert!(r.body.len() < 8000 * 4 / 3 + 400, "{}", r.body.len());
    let mut sizes = Vec::new();
    let mut after = 0;
    loop {
        let got = bob.client.pull(after, 1000).await.unwrap();
        if got.is_empty() {
            break;
        }
        sizes.push(got.iter().map(|m| m.envelope.len()).collect::<Vec<_>>());
        after = got.last().unwrap().id;
    }
    assert_eq!(sizes, vec![vec![4000, 4000], vec![4000, 4000], vec![4000], vec![12_000]]);
    assert_eq!(page["next_after"], serde_json::json!(bob.client.pull(0, 2).await.unwrap()[1].id));
}
