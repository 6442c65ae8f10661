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
fn signed(identity: &sealpost::IdentityKeyPair, ts: u64, n: u128) -> String {
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
    let stranger = Client::new(&relay.base, account.identity_keys().clone()).unwrap();
    let early = signed(account.identity_keys(), unix_now(), 1);
    assert_eq!(get(&stranger, &early).await, (403, "not_registered".into()));
    for n in 2..50 {
        assert_eq!(get(&stranger, &signed(account.identity_keys(), unix_now(), n)).await.0, 403);
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
    let first = signed(attacker.account.identity_keys(), ts, 0);
    let mut codes = Vec::new();
    for n in 0..40u128 {
        codes.push(get(&attacker.client, &signed(attacker.account.identity_keys(), ts, n)).await);
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
    assert_eq!(get(&limited.client, &signed(limited.account.identity_keys(), unix_now(), 1)).await.0, 200);
    let kept = state.nonces.len();
    for n in 2..20 {
        let r = get(&limited.client, &signed(limited.account.identity_keys(), unix_now(), n)).await;
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
            let h = signed(a.account.identity_keys(), ts, n);
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
    let once = signed(alice.account.identity_keys(), ts, 1);
    assert_eq!(get(&alice.client, &once).await.0, 200);
    // Restart in a later second than the one the request was signed in.
    while unix_now() <= ts {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    relay.restart().await;
    let alice = Client::new(&relay.base, alice.account.identity_keys().clone()).unwrap();
    assert_eq!(get(&alice, &once).await, (401, "stale_request".into()));
    // Requests signed now are served.
    assert_eq!(alice.pull(0, 1).await.unwrap().len(), 0);
}
