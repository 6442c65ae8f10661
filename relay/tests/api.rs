//! The relay over real loopback sockets: the full flow of two clients,
//! authentication, handles, one-time prekeys under concurrency, limits,
//! persistence, malformed requests and WebSocket push.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{NOW, start, start_with, user};
use hyper::Method;
use sealpost::{Envelope, Session, SessionPolicy};
use sealpost_relay::client::{Client, PushEvent};

fn json_body(v: serde_json::Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn ct() -> Vec<(&'static str, String)> {
    vec![("content-type", "application/json".to_owned())]
}

#[tokio::test]
async fn two_clients_converse_through_the_relay_with_push() {
    let relay = start().await;
    let mut alice = user(&relay, 5).await;
    let mut bob = user(&relay, 5).await;
    let policy = SessionPolicy::default();
    let mut rng = sealpost::os_rng();
    let mut bob_push = bob.client.connect_push().await.unwrap();

    // Alice fetches Bob's bundle (a one-time prekey comes with it) and writes.
    let (bundle, left) = alice.client.fetch_bundle(&bob.client.account()).await.unwrap();
    assert!(bundle.one_time_prekey().is_some());
    assert_eq!(left, 4);
    let mut to_bob = Session::initiate(&mut rng, &mut alice.account, &bundle, &policy, NOW).unwrap();
    let first = to_bob.encrypt(&mut rng, NOW, b"hello Bob").unwrap();
    alice.client.deposit(&[bob.client.account()], &first).await.unwrap();

    // Bob is online: the envelope is pushed to him.
    let PushEvent::Message(m) =
        tokio::time::timeout(Duration::from_secs(5), bob_push.next()).await.unwrap().unwrap().unwrap()
    else {
        panic!("expected a message")
    };
    assert_eq!(m.sender, alice.client.account());
    let Envelope::Prekey(pm) = Envelope::from_bytes(&m.envelope).unwrap() else { panic!() };
    let (mut to_alice, text) = bob.account.accept(&policy, NOW, &pm).unwrap();
    assert_eq!(text, b"hello Bob");
    bob_push.ack(&[m.id]).await.unwrap();
    assert_eq!(bob_push.next().await.unwrap().unwrap(), PushEvent::Acked(1));

    // Bob answers; Alice (offline) pulls, decrypts and acknowledges.
    for i in 0..3u8 {
        let reply = to_alice.encrypt(&mut rng, NOW + 1, &[b'r', i]).unwrap();
        bob.client.deposit(&[alice.client.account()], &reply).await.unwrap();
    }
    let inbox = alice.client.pull(0, 100).await.unwrap();
    assert_eq!(inbox.len(), 3);
    for (i, m) in inbox.iter().enumerate() {
        assert_eq!(m.sender, bob.client.account());
        assert_eq!(to_bob.decrypt(NOW + 1, &m.envelope).unwrap(), [b'r', i as u8]);
    }
    // The cursor skips what was already seen.
    assert!(alice.client.pull(inbox[1].id, 100).await.unwrap().len() == 1);
    let ids: Vec<i64> = inbox.iter().map(|m| m.id).collect();
    assert_eq!(alice.client.ack(&ids).await.unwrap(), 3);
    assert!(alice.client.pull(0, 100).await.unwrap().is_empty());
    assert_eq!(alice.client.ack(&ids).await.unwrap(), 0);

    // The safety number both compute from what the relay served matches.
    assert_eq!(to_bob.safety_number(), to_alice.safety_number());
    let _ = (&mut alice, &mut bob);
}

#[tokio::test]
async fn one_deposit_reaches_many_recipients() {
    let relay = start().await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    let carol = user(&relay, 0).await;
    let ids = alice.client.deposit(&[bob.client.account(), carol.client.account()], b"group envelope").await.unwrap();
    assert_eq!(ids.len(), 2);
    for u in [&bob, &carol] {
        let got = u.client.pull(0, 10).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].envelope, b"group envelope");
    }
}

#[tokio::test]
async fn requests_without_a_valid_signature_get_401() {
    let relay = start().await;
    let alice = user(&relay, 0).await;
    let path = "/v1/messages?after=0&limit=10";
    // No Authorization header.
    let r = alice.client.raw(Method::GET, path, &[], vec![], false).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "missing_authorization");
    // A signature over another path.
    let auth = alice.client.sign("GET", "/v1/messages?after=1&limit=10", b"");
    let r = alice.client.raw(Method::GET, path, &[("authorization", auth)], vec![], false).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "bad_signature");
    // A signature over another body.
    let body = json_body(serde_json::json!({ "ids": [1] }));
    let auth = alice.client.sign("POST", "/v1/messages/ack", b"{\"ids\":[2]}");
    let mut h = ct();
    h.push(("authorization", auth));
    let r = alice.client.raw(Method::POST, "/v1/messages/ack", &h, body, false).await.unwrap();
    assert_eq!(r.status, 401);
    // A stale timestamp.
    let signer = alice.account.relay_signer();
    let request = sealpost_client::Request::custom(sealpost_client::Method::Get, path, vec![]);
    let old = request.authorize(&signer, 1_000, &[1; 16]);
    let r = alice.client.raw(Method::GET, path, &[("authorization", old)], vec![], false).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "stale_request");
    // A reused nonce.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let once = request.authorize(&signer, now, &[7; 16]);
    let r = alice.client.raw(Method::GET, path, &[("authorization", once.clone())], vec![], false).await.unwrap();
    assert_eq!(r.status, 200);
    let r = alice.client.raw(Method::GET, path, &[("authorization", once)], vec![], false).await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "replayed_request");
    // Garbage in the header.
    for bad in ["Bearer xyz", "Sealpost key=abc", "Sealpost key=a,ts=1,nonce=b,sig=c,extra=d", "Sealpost"] {
        let r = alice.client.raw(Method::GET, path, &[("authorization", bad.to_owned())], vec![], false).await.unwrap();
        assert_eq!(r.status, 401, "{bad}");
    }
}

#[tokio::test]
async fn no_account_can_read_acknowledge_or_overwrite_anothers_data() {
    let relay = start().await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    let mallory = user(&relay, 0).await;
    let ids = bob.client.deposit(&[alice.client.account()], b"for alice only").await.unwrap();
    // Mallory's pull shows only her own (empty) mailbox.
    assert!(mallory.client.pull(0, 100).await.unwrap().is_empty());
    // Mallory cannot delete Alice's message.
    assert_eq!(mallory.client.ack(&ids).await.unwrap(), 0);
    assert_eq!(alice.client.pull(0, 100).await.unwrap().len(), 1);
    // Mallory cannot publish a bundle for Alice.
    let err =
        mallory.client.publish_bundle(&alice.account.bundle(&SessionPolicy::default()).unwrap()).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    // Nor upload prekeys signed by someone else into her own account.
    let mut rng = sealpost::os_rng();
    let mut other = sealpost::Account::new(&mut rng, NOW);
    let foreign = other.generate_one_time_prekeys(&mut rng, 1);
    assert_eq!(mallory.client.upload_prekeys(&foreign).await.unwrap_err().status(), Some(400));
    // Nor sign as Alice: a request under Alice's key with Mallory's signature.
    let forged = Client::new(&relay.base, mallory.account.relay_signer()).unwrap();
    let auth = forged.sign("GET", "/v1/messages?after=0&limit=10", b"").replacen(
        &sealpost_relay::client::account_id(mallory.account.identity()),
        &sealpost_relay::client::account_id(alice.account.identity()),
        1,
    );
    let r = forged
        .raw(Method::GET, "/v1/messages?after=0&limit=10", &[("authorization", auth)], vec![], false)
        .await
        .unwrap();
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn handles_are_bound_by_a_code_with_expiry_and_attempt_limits() {
    let relay = start_with(|c| {
        c.code_max_attempts = 3;
        c.code_ttl_secs = 600;
    })
    .await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    alice.client.claim_handle("Alice").await.unwrap();
    let code = relay.codes.code("alice").expect("a code was sent");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = alice.client.verify_handle("alice", wrong).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    // Bob cannot use Alice's code for himself.
    assert_eq!(bob.client.verify_handle("alice", &code).await.unwrap_err().status(), Some(404));
    alice.client.verify_handle("alice", &code).await.unwrap();
    let found = bob.client.lookup_handle("ALICE").await.unwrap();
    assert_eq!(&found, alice.account.identity());
    // Bob cannot take the handle now.
    assert_eq!(bob.client.claim_handle("alice").await.unwrap_err().status(), Some(409));
    // Phone numbers work too.
    bob.client.claim_handle("+4915112345678").await.unwrap();
    bob.client
        .verify_handle("+4915112345678", &relay.codes.code("+4915112345678").expect("a code was sent"))
        .await
        .unwrap();
    assert_eq!(&alice.client.lookup_handle("+4915112345678").await.unwrap(), bob.account.identity());
    // Too many wrong codes lock the claim, even for the right code.
    bob.client.claim_handle("bobby").await.unwrap();
    let right = relay.codes.code("bobby").expect("a code was sent");
    let wrong = if right == "000000" { "111111" } else { "000000" };
    assert_eq!(bob.client.verify_handle("bobby", wrong).await.unwrap_err().status(), Some(403));
    assert_eq!(bob.client.verify_handle("bobby", wrong).await.unwrap_err().status(), Some(403));
    assert_eq!(bob.client.verify_handle("bobby", wrong).await.unwrap_err().status(), Some(429));
    assert_eq!(bob.client.verify_handle("bobby", &right).await.unwrap_err().status(), Some(429));
    // Asking again at once is refused (no code floods to the owner)...
    let again = bob.client.claim_handle("bobby").await.unwrap_err();
    assert_eq!(again.status(), Some(429));
    // Unknown and malformed handles.
    assert_eq!(alice.client.lookup_handle("nobody").await.unwrap_err().status(), Some(404));
    assert_eq!(alice.client.claim_handle("a b").await.unwrap_err().status(), Some(400));
}

#[tokio::test]
async fn a_locked_claim_stays_locked_until_its_code_expires() {
    let relay = start_with(|c| {
        c.code_ttl_secs = 2;
        c.code_cooldown_secs = 1;
        c.code_max_attempts = 2;
    })
    .await;
    let bob = user(&relay, 0).await;
    bob.client.claim_handle("bobby").await.unwrap();
    let right = relay.codes.code("bobby").expect("a code was sent");
    let wrong = if right == "000000" { "111111" } else { "000000" };
    assert_eq!(bob.client.verify_handle("bobby", wrong).await.unwrap_err().status(), Some(403));
    assert_eq!(bob.client.verify_handle("bobby", wrong).await.unwrap_err().status(), Some(429));
    // A new claim after the cooldown but while the old code lives keeps the count.
    relay.clock.advance(1);
    bob.client.claim_handle("bobby").await.unwrap();
    assert_eq!(
        bob.client
            .verify_handle("bobby", &relay.codes.code("bobby").expect("a code was sent"))
            .await
            .unwrap_err()
            .status(),
        Some(429)
    );
    // Once the old code has expired, a new claim starts afresh.
    relay.clock.advance(3);
    bob.client.claim_handle("bobby").await.unwrap();
    bob.client.verify_handle("bobby", &relay.codes.code("bobby").expect("a code was sent")).await.unwrap();
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let relay = start_with(|c| c.code_ttl_secs = 1).await;
    let alice = user(&relay, 0).await;
    alice.client.claim_handle("slowpoke").await.unwrap();
    alice.client.claim_handle("punctual").await.unwrap();
    let code = relay.codes.code("slowpoke").expect("a code was sent");
    // A code is valid up to its last second, and refused after it.
    relay.clock.advance(1);
    alice.client.verify_handle("punctual", &relay.codes.code("punctual").unwrap()).await.unwrap();
    relay.clock.advance(1);
    let err = alice.client.verify_handle("slowpoke", &code).await.unwrap_err();
    assert_eq!(err.code(), Some(sealpost_client::ErrorCode::CodeExpired));
    assert_eq!(err.status(), Some(410));
}

#[tokio::test]
async fn each_one_time_prekey_is_handed_out_once_under_concurrency() {
    let relay = start().await;
    let bob = user(&relay, 40).await;
    let fetchers: Vec<_> = futures_join(5, &relay).await;
    let target = bob.client.account();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let c = fetchers[i % fetchers.len()].clone();
        tasks.push(tokio::spawn(async move { c.fetch_bundle(&target).await.unwrap().0 }));
    }
    let mut ids = Vec::new();
    let mut without = 0;
    for t in tasks {
        match t.await.unwrap().one_time_prekey() {
            Some(k) => ids.push(k.id),
            None => without += 1,
        }
    }
    let distinct: HashSet<u32> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 40, "every key handed out");
    assert_eq!(distinct.len(), 40, "none twice");
    assert_eq!(without, 20);
}

async fn futures_join(n: usize, relay: &common::TestRelay) -> Vec<Client> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(user(relay, 0).await.client);
    }
    v
}

#[tokio::test]
async fn oversized_envelopes_get_413_before_the_body_is_read() {
    let relay = start_with(|c| c.max_envelope_bytes = 1000).await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    // An envelope over the limit inside a body under the body limit.
    let err = alice.client.deposit(&[bob.client.account()], &[0u8; 1001]).await.unwrap_err();
    assert_eq!(err.status(), Some(413));
    alice.client.deposit(&[bob.client.account()], &[0u8; 1000]).await.unwrap();
    // A Content-Length over the body limit: refused on the header alone,
    // without sending (let alone buffering) the body.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = relay.running.as_ref().unwrap().addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 99999999\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("too_large"));
    // A chunked body without a length that grows past the limit.
    let big = vec![b'a'; 100_000];
    let r = alice.client.raw(Method::POST, "/v1/messages", &ct(), big, true).await.unwrap();
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn a_full_mailbox_refuses_the_whole_deposit() {
    let relay = start_with(|c| c.max_mailbox_messages = 3).await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    let carol = user(&relay, 0).await;
    for _ in 0..3 {
        alice.client.deposit(&[bob.client.account()], b"x").await.unwrap();
    }
    let err = alice.client.deposit(&[carol.client.account(), bob.client.account()], b"y").await.unwrap_err();
    assert_eq!(err.status(), Some(507));
    // All or nothing: Carol got nothing either.
    assert!(carol.client.pull(0, 10).await.unwrap().is_empty());
    assert_eq!(bob.client.pull(0, 10).await.unwrap().len(), 3);
    // Acknowledging makes room again.
    let ids: Vec<i64> = bob.client.pull(0, 10).await.unwrap().iter().map(|m| m.id).collect();
    bob.client.ack(&ids[..1]).await.unwrap();
    alice.client.deposit(&[bob.client.account()], b"z").await.unwrap();
    // Unknown recipients are refused the same way.
    assert_eq!(alice.client.deposit(&[[9u8; 32]], b"?").await.unwrap_err().status(), Some(404));
}

/// Waits (for the relay's purge task, not for a time limit) until `done`.
async fn eventually(mut done: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}");
}

#[tokio::test]
async fn the_purge_removes_envelopes_older_than_the_retention_and_keeps_younger_ones() {
    let relay = start_with(|c| {
        c.retention_secs = 10;
        c.purge_interval_secs = 5;
    })
    .await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    let old = alice.client.deposit(&[bob.client.account()], b"old").await.unwrap();
    relay.clock.advance(8);
    let young = alice.client.deposit(&[bob.client.account()], b"young").await.unwrap();
    // At +13 the purge removes what arrived before +3: the first only.
    relay.clock.advance(5);
    eventually(
        async || bob.client.pull(0, 10).await.unwrap().len() == 1,
        "the envelope older than the retention was not purged",
    )
    .await;
    let left = bob.client.pull(0, 10).await.unwrap();
    assert_eq!((left[0].id, left[0].envelope.as_slice()), (young[0], &b"young"[..]));
    assert_ne!(old, young);
    // The younger one goes once it is older than the retention too.
    relay.clock.advance(10);
    eventually(async || bob.client.pull(0, 10).await.unwrap().is_empty(), "the second envelope was not purged").await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let relay = start_with(|c| {
        c.rate_account_per_sec = 1.0;
        c.rate_account_burst = 3.0;
    })
    .await;
    let alice = user(&relay, 0).await; // two requests: publish (no prekeys)
    let _ = alice.client.pull(0, 1).await.unwrap();
    let mut limited = None;
    for _ in 0..5 {
        let r = alice.client.raw(Method::GET, "/v1/messages?after=0&limit=1", &[], vec![], true).await.unwrap();
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the account limit applies");
    // One token a second, the bucket just emptied: one second to wait.
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    assert_eq!(r.json()["error"]["code"], "rate_limited");

    let relay = start_with(|c| {
        c.rate_ip_per_sec = 1.0;
        c.rate_ip_burst = 5.0;
    })
    .await;
    let probe = Client::new(&relay.base, sealpost::Account::new(&mut sealpost::os_rng(), 1_700_000_000).relay_signer())
        .unwrap();
    let mut answers = Vec::new();
    for _ in 0..7 {
        let r = probe.raw(Method::GET, "/healthz", &[], vec![], false).await.unwrap();
        let retry = r.headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        answers.push((r.status.as_u16(), retry));
    }
    // The burst of five, then refusals naming the one second to wait.
    let ok = (200, None);
    let limited = (429, Some("1".to_owned()));
    assert_eq!(answers, [ok.clone(), ok.clone(), ok.clone(), ok.clone(), ok, limited.clone(), limited]);
}

#[tokio::test]
async fn envelopes_survive_a_restart() {
    let mut relay = start().await;
    let alice = user(&relay, 3).await;
    let bob = user(&relay, 0).await;
    alice.client.deposit(&[bob.client.account()], b"kept on disk").await.unwrap();
    relay.restart().await;
    let bob = Client::new(&relay.base, bob.account.relay_signer()).unwrap();
    let got = bob.pull(0, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope, b"kept on disk");
    // The prekey directory survived too.
    let (_, left) = bob.fetch_bundle(&alice.client.account()).await.unwrap();
    assert_eq!(left, 2);
}

#[tokio::test]
async fn malformed_requests_get_400_with_a_json_error_never_500() {
    let relay = start().await;
    let alice = user(&relay, 0).await;
    type Case = (&'static str, Vec<(&'static str, String)>, Vec<u8>, u16, &'static str);
    let cases: Vec<Case> = vec![
        ("/v1/messages", ct(), b"{not json".to_vec(), 400, "bad_json"),
        (
            "/v1/messages",
            ct(),
            json_body(serde_json::json!({"recipients": ["AA"], "envelope": "AA", "x": 1})),
            400,
            "bad_json",
        ),
        (
            "/v1/messages",
            ct(),
            json_body(serde_json::json!({"recipients": ["!!!"], "envelope": "AA"})),
            400,
            "bad_account",
        ),
        (
            "/v1/messages",
            ct(),
            json_body(
                serde_json::json!({"recipients": [sealpost_relay::client::account_id(alice.account.identity())], "envelope": "***"}),
            ),
            400,
            "bad_base64",
        ),
        (
            "/v1/messages",
            vec![("content-type", "text/plain".to_owned())],
            b"{}".to_vec(),
            400,
            "unsupported_content_type",
        ),
        ("/v1/messages", vec![], b"{}".to_vec(), 400, "unsupported_content_type"),
        (
            "/v1/messages",
            ct(),
            json_body(serde_json::json!({"recipients": [], "envelope": "AA"})),
            400,
            "bad_recipients",
        ),
        ("/v1/messages/ack", ct(), json_body(serde_json::json!({"ids": "seven"})), 400, "bad_json"),
        ("/v1/keys/bundle", ct(), json_body(serde_json::json!({"bundle": "AAAA"})), 400, "bad_bundle"),
        ("/v1/keys/one-time", ct(), json_body(serde_json::json!({"prekeys": ["AAAA"]})), 400, "bad_prekeys"),
        (
            "/v1/handles/verify",
            ct(),
            json_body(serde_json::json!({"handle": "alice", "code": "12ab56"})),
            400,
            "bad_code",
        ),
        ("/v1/handles/claim", ct(), json_body(serde_json::json!({"handle": "x"})), 400, "bad_handle"),
    ];
    for (path, headers, body, status, code) in cases {
        let r = alice.client.raw(Method::POST, path, &headers, body, true).await.unwrap();
        assert_eq!(r.status.as_u16(), status, "{path} {code}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["error"]["code"], code, "{path}");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let gets = [
        ("/v1/messages?after=x", 400, "bad_query"),
        ("/v1/messages?limit=0", 400, "bad_query"),
        ("/v1/messages?color=red", 400, "bad_query"),
        ("/v1/keys/not-an-account", 400, "bad_account"),
        ("/v1/handles/%zz", 400, "bad_handle"),
        ("/v1/nothing", 404, "no_such_route"),
    ];
    for (path, status, code) in gets {
        let r = alice.client.raw(Method::GET, path, &[], vec![], true).await.unwrap();
        assert_eq!(r.status.as_u16(), status, "{path}");
        assert_eq!(r.json()["error"]["code"], code, "{path}");
    }
    let r = alice.client.raw(Method::DELETE, "/v1/messages", &[], vec![], true).await.unwrap();
    assert_eq!(r.status, 405);
    let r = alice.client.raw(Method::GET, "/v1/ws", &[], vec![], true).await.unwrap();
    assert_eq!(r.status, 400, "a plain GET on the WebSocket route");
    // Nothing of that disturbed the relay.
    assert_eq!(alice.client.raw(Method::GET, "/healthz", &[], vec![], false).await.unwrap().status, 200);
}

#[tokio::test]
async fn health_metrics_and_status_page() {
    let relay = start().await;
    let alice = user(&relay, 2).await;
    let r = alice.client.raw(Method::GET, "/healthz", &[], vec![], false).await.unwrap();
    assert_eq!(r.json()["status"], "ok");
    let r = alice.client.raw(Method::GET, "/metrics", &[], vec![], false).await.unwrap();
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("sealpost_accounts 1"), "{text}");
    assert!(text.contains("sealpost_one_time_prekeys 2"));
    assert!(text.contains("sealpost_requests_total{route=\"publish_bundle\",status=\"200\"} 1"));
    let r = alice.client.raw(Method::GET, "/", &[], vec![], false).await.unwrap();
    assert!(String::from_utf8_lossy(&r.body).contains("Sealpost relay"));
}

/// `/status.json` once its history holds `n` samples (the clock was moved
/// past each sample's time; the sampler runs on its own task).
async fn status_with(client: &Client, samples: usize) -> serde_json::Value {
    for _ in 0..200 {
        let r = client.raw(Method::GET, "/status.json", &[], vec![], false).await.unwrap();
        assert_eq!(r.headers["content-type"].to_str().unwrap(), "application/json");
        let status = r.json();
        if status["series"]["t"].as_array().unwrap().len() >= samples {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the history never reached {samples} samples");
}

/// The dashboard: the page and its files with a strict CSP, and
/// `/status.json` whose totals are the store's and whose samples are the
/// growth of the same counters `/metrics` exports, per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_samples_the_relays_own_counters() {
    let relay = start().await;
    let alice = user(&relay, 3).await;
    let bob = user(&relay, 0).await;
    for (path, kind) in [("/", "text/html"), ("/status.css", "text/css"), ("/status.js", "text/javascript")] {
        let r = alice.client.raw(Method::GET, path, &[], vec![], false).await.unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert!(r.headers["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; script-src 'self';"), "{path}: {csp}");
    }
    let page = alice.client.raw(Method::GET, "/", &[], vec![], false).await.unwrap();
    let page = String::from_utf8_lossy(&page.body).into_owned();
    assert!(page.contains("<script src=\"/status.js\"") && !page.contains("<script>"), "no inline script");
    assert_eq!(alice.client.raw(Method::POST, "/status.json", &[], vec![], false).await.unwrap().status, 405);

    // The counters start from zero with the relay; the first sample is
    // taken after 10 s of its clock, covering the registrations.
    relay.clock.advance(10);
    let status = status_with(&alice.client, 1).await;
    assert_eq!(status["sample_secs"], 10);
    // Then 3 deposits, 3 messages pulled, 1 refusal (a handle claimed
    // twice within the cooldown), in the next 10 s.
    for i in 0..3u8 {
        alice.client.deposit(&[bob.client.account()], &[i; 40]).await.unwrap();
    }
    assert_eq!(bob.client.pull(0, 10).await.unwrap().len(), 3);
    alice.client.claim_handle("dashboard").await.unwrap();
    let refused = alice.client.claim_handle("dashboard").await.unwrap_err();
    assert_eq!(refused.status(), Some(429));
    relay.clock.advance(10);
    let status = status_with(&alice.client, 2).await;
    let series = &status["series"];
    let t0 = series["t"][0].as_u64().unwrap();
    assert_eq!(series["t"][1].as_u64().unwrap(), t0 + 10);
    assert_eq!(series["deposits_per_sec"][1], 0.3);
    assert_eq!(series["deliveries_per_sec"][1], 0.3);
    assert_eq!(series["rate_limited_per_sec"][1], 0.1);
    assert_eq!(series["deposits_per_sec"][0], 0.0);
    assert_eq!(series["messages_waiting"][1], 3);
    assert_eq!(series["push_connections"][1], 0);
    assert_eq!(series["envelope_bytes_stored"][1], 120);
    let totals = &status["totals"];
    assert_eq!(totals["accounts"], 2);
    assert_eq!(totals["messages_waiting"], 3);
    assert_eq!(totals["envelopes_stored"], 3);
    assert_eq!(totals["envelope_bytes_stored"], 120);
    assert_eq!(totals["one_time_prekeys"], 3);
    // The same counters in Prometheus' text.
    let metrics = alice.client.raw(Method::GET, "/metrics", &[], vec![], false).await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("\nsealpost_messages_delivered_total 3\n"), "{text}");
    assert!(text.contains("\nsealpost_rate_limited_total 1\n"), "{text}");
    assert!(text.contains("\nsealpost_envelopes_deposited_total 3\n"), "{text}");
}

/// The public pages count the store at most once a second, however often
/// they are asked (counting scans the tables, and they need no
/// authentication): a registration shows after the second, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_pages_read_the_stores_counts_at_most_once_a_second() {
    let relay = start().await;
    let alice = user(&relay, 0).await;
    let accounts = |text: String| {
        text.lines().find_map(|l| l.strip_prefix("sealpost_accounts ")).map(str::to_owned).unwrap_or_default()
    };
    let metrics = || async {
        let r = alice.client.raw(Method::GET, "/metrics", &[], vec![], false).await.unwrap();
        accounts(String::from_utf8_lossy(&r.body).into_owned())
    };
    assert_eq!(metrics().await, "1");
    let _bob = user(&relay, 0).await;
    assert_eq!(metrics().await, "1", "the reading of a moment ago");
    let status = alice.client.raw(Method::GET, "/status.json", &[], vec![], false).await.unwrap().json();
    assert_eq!(status["totals"]["accounts"], 1, "shared by the dashboard");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(metrics().await, "2");
}

async fn next(p: &mut sealpost_relay::client::Push) -> PushEvent {
    tokio::time::timeout(Duration::from_secs(5), p.next()).await.unwrap().unwrap().unwrap()
}

#[tokio::test]
async fn websocket_push_takes_acks_and_survives_bad_frames() {
    let relay = start().await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    // A message waiting before Bob connects is pushed on connect.
    alice.client.deposit(&[bob.client.account()], b"waiting").await.unwrap();
    let mut push = bob.client.connect_push().await.unwrap();
    let PushEvent::Message(m1) = next(&mut push).await else { panic!() };
    assert_eq!(m1.envelope, b"waiting");
    push.send_text("{not json".into()).await.unwrap();
    assert_eq!(next(&mut push).await, PushEvent::Error(sealpost_client::ErrorCode::BadJson));
    push.send_text(r#"{"type":"ack","ids":[]}"#.into()).await.unwrap();
    assert_eq!(next(&mut push).await, PushEvent::Error(sealpost_client::ErrorCode::BadIds));
    alice.client.deposit(&[bob.client.account()], b"live").await.unwrap();
    let PushEvent::Message(m2) = next(&mut push).await else { panic!() };
    assert_eq!(m2.envelope, b"live");
    push.ack(&[m1.id, m2.id]).await.unwrap();
    assert_eq!(next(&mut push).await, PushEvent::Acked(2));
    assert!(bob.client.pull(0, 10).await.unwrap().is_empty());
    // Unsigned upgrades are refused with 401 missing_authorization.
    let url = format!("{}/v1/ws", relay.base.replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 401);
            let body: serde_json::Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "missing_authorization");
        }
        other => panic!("{other:?}"),
    }
    push.close().await;
}

#[tokio::test]
async fn a_deposit_cannot_be_made_for_nobody_and_reveals_nothing_of_others() {
    let relay = start().await;
    let alice = user(&relay, 0).await;
    let r = alice.client.deposit(&[], b"x").await.unwrap_err();
    assert_eq!(r.status(), Some(400));
    let dup = alice.client.account();
    assert_eq!(alice.client.deposit(&[dup, dup], b"x").await.unwrap_err().status(), Some(400));
}

#[tokio::test]
async fn deposits_use_relay_sessions_with_replay_protection() {
    let mut relay = start().await;
    let alice = user(&relay, 0).await;
    let bob = user(&relay, 0).await;
    // The client opens a session on its first deposit and reuses it.
    alice.client.deposit(&[bob.client.account()], b"one").await.unwrap();
    alice.client.deposit(&[bob.client.account()], b"two").await.unwrap();
    // A session request, built by hand, replayed.
    let r = alice.client.raw(Method::POST, "/v1/sessions", &ct(), b"{}".to_vec(), true).await.unwrap();
    assert_eq!(r.status, 201);
    let v = r.json();
    let b64 = |s: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.as_str().unwrap()).unwrap()
    };
    let id: [u8; 16] = b64(&v["id"]).try_into().unwrap();
    let key: [u8; 32] = b64(&v["key"]).try_into().unwrap();
    let body = json_body(serde_json::json!({
        "recipients": [sealpost_relay::client::account_id(bob.account.identity())],
        "envelope": "dGhyZWU",
    }));
    let send = |seq: u64, mac_key: [u8; 32], path: &'static str, method: Method| {
        // Built by hand to choose the sequence numbers.
        let mac = sealpost_client::session_mac(&mac_key, method.as_str(), path, seq, &body);
        let auth = {
            use base64::Engine;
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!("SealpostSession id={},seq={seq},mac={}", b.encode(id), b.encode(mac))
        };
        let mut h = ct();
        h.push(("authorization", auth));
        let c = alice.client.clone();
        let body = body.clone();
        async move { c.raw(method, path, &h, body, false).await.unwrap() }
    };
    assert_eq!(send(7, key, "/v1/messages", Method::POST).await.status, 201);
    let r = send(7, key, "/v1/messages", Method::POST).await;
    assert_eq!((r.status.as_u16(), r.json()["error"]["code"].clone()), (401, "replayed_request".into()));
    // Out of order but new: fine. Far too old: refused.
    assert_eq!(send(5, key, "/v1/messages", Method::POST).await.status, 201);
    assert_eq!(send(5000, key, "/v1/messages", Method::POST).await.status, 201);
    assert_eq!(send(6, key, "/v1/messages", Method::POST).await.status, 401);
    // A wrong key, and a session used where an identity signature is required.
    let r = send(5001, [0; 32], "/v1/messages", Method::POST).await;
    assert_eq!(r.json()["error"]["code"], "bad_mac");
    let r = send(5002, key, "/v1/messages/ack", Method::POST).await;
    assert_eq!(r.json()["error"]["code"], "signature_required");
    assert_eq!(bob.client.pull(0, 100).await.unwrap().len(), 5);
    // After a restart the relay has forgotten sessions: the old one is
    // refused and the client opens a new one by itself.
    relay.restart().await;
    let r = send(5003, key, "/v1/messages", Method::POST).await;
    assert_eq!(r.json()["error"]["code"], "unknown_session");
    alice.client.deposit(&[bob.client.account()], b"after restart").await.unwrap();
    assert_eq!(bob.client.pull(0, 100).await.unwrap().len(), 6);
}

#[tokio::test]
async fn unregistered_keys_get_403() {
    let relay = start().await;
    let stranger =
        Client::new(&relay.base, sealpost::Account::new(&mut sealpost::os_rng(), 1_700_000_000).relay_signer())
            .unwrap();
    let err = stranger.pull(0, 10).await.unwrap_err();
    assert_eq!((err.status(), err.to_string().contains("not_registered")), (Some(403), true));
    assert_eq!(stranger.open_session().await.unwrap_err().status(), Some(403));
}

/// The webhook code sender POSTs {"handle","code"} to the configured URL.
#[tokio::test]
async fn codes_can_go_to_a_webhook() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let received = tokio::spawn(async move {
        let (mut s, _) = hook.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read until the JSON body is complete.
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if n == 0 || buf.ends_with(b"}") {
                break;
            }
        }
        s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        String::from_utf8(buf).unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.code_webhook = Some(format!("http://{hook_addr}/sms"));
    let running = sealpost_relay::Running::start(config, None).await.unwrap();
    let base = format!("http://{}", running.addr);
    let mut rng = sealpost::os_rng();
    let account = sealpost::Account::new(&mut rng, NOW);
    let client = Client::new(&base, account.relay_signer()).unwrap();
    client.publish_bundle(&account.bundle(&SessionPolicy::default()).unwrap()).await.unwrap();
    client.claim_handle("+4930123456789").await.unwrap();
    let request = tokio::time::timeout(Duration::from_secs(5), received).await.unwrap().unwrap();
    assert!(request.starts_with("POST /sms HTTP/1.1"), "{request}");
    let body = &request[request.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["handle"], "+4930123456789");
    let code = v["code"].as_str().unwrap().to_owned();
    client.verify_handle("+4930123456789", &code).await.unwrap();
    running.stop().await.unwrap();
}

#[tokio::test]
async fn push_connections_are_capped_per_account_and_closed_when_idle() {
    let relay = start_with(|c| {
        c.ws_max_per_account = 2;
        c.ws_idle_secs = 3;
    })
    .await;
    let bob = user(&relay, 0).await;
    let first = bob.client.connect_push().await.unwrap();
    let _second = bob.client.connect_push().await.unwrap();
    let third = bob.client.connect_push().await.err().expect("a third connection is refused");
    assert_eq!(
        (third.code(), third.status(), third.to_string().contains("too many push connections")),
        (Some(sealpost_client::ErrorCode::TooManyConnections), Some(429), true),
        "{third}"
    );
    let running = relay.running.as_ref().unwrap();
    assert_eq!(running.push_connections(), 2);
    // Nobody reads these connections, so nobody answers the relay's pings:
    // once the idle time has passed on the relay's clock it closes them.
    relay.clock.advance(2);
    assert_eq!(running.push_connections(), 2, "not before the idle time");
    relay.clock.advance(1);
    eventually(async || running.push_connections() == 0, "idle push connections were not closed").await;
    drop(first);
    // A connection that keeps talking stays open past the idle time.
    let mut live = bob.client.connect_push().await.unwrap();
    for _ in 0..3 {
        relay.clock.advance(2);
        // An ack round trip: the relay heard from it after the clock moved.
        live.ack(&[1]).await.unwrap();
        assert_eq!(next(&mut live).await, PushEvent::Acked(0));
        assert_eq!(running.push_connections(), 1, "a connection that talks stays open");
    }
    // Then silence for the idle time closes it too. A pong to the last
    // ping may reach the relay just after the clock moved (the client
    // answers pings whenever it reads), which restarts the idle time: so
    // the clock moves on a second at a time, for at most ten more.
    relay.clock.advance(3);
    let mut extra = 0;
    eventually(
        async || {
            if running.push_connections() == 0 {
                return true;
            }
            if extra < 10 {
                extra += 1;
                relay.clock.advance(1);
            }
            false
        },
        "the silent connection was not closed",
    )
    .await;
    // The relay said goodbye with a close frame: the stream simply ends.
    let end = tokio::time::timeout(Duration::from_secs(5), live.next()).await.unwrap();
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let limited = |trusted: bool| {
        start_with(move |c| {
            c.rate_ip_per_sec = 0.01;
            c.rate_ip_burst = 2.0;
            if trusted {
                c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            }
        })
    };
    let statuses = |relay: &common::TestRelay, xff: &'static str| {
        let c = Client::new(&relay.base, sealpost::Account::new(&mut sealpost::os_rng(), 1_700_000_000).relay_signer())
            .unwrap();
        async move {
            let mut v = Vec::new();
            for _ in 0..3 {
                let r = c
                    .raw(Method::GET, "/healthz", &[("x-forwarded-for", xff.to_owned())], vec![], false)
                    .await
                    .unwrap();
                v.push(r.status.as_u16());
            }
            v
        }
    };
    let relay = limited(true).await;
    assert_eq!(statuses(&relay, "10.0.0.1").await, [200, 200, 429]);
    assert_eq!(statuses(&relay, "10.0.0.2").await, [200, 200, 429], "another client has its own bucket");
    // A client cannot pick a new bucket by forging entries to the left.
    assert_eq!(statuses(&relay, "1.2.3.4, 10.0.0.1").await, [429, 429, 429]);
    let relay = limited(false).await;
    assert_eq!(statuses(&relay, "10.0.0.1").await, [200, 200, 429]);
    assert_eq!(statuses(&relay, "10.0.0.2").await, [429, 429, 429], "without a trusted proxy the header is ignored");
}

/// Sends a request built by `sealpost-client` as a binding would: its
/// method, path, content type and body, with the given `Authorization`.
async fn send_shared(c: &Client, req: &sealpost_client::Request, auth: String) -> sealpost_relay::client::RawResponse {
    let method = match req.method() {
        sealpost_client::Method::Get => Method::GET,
        sealpost_client::Method::Post => Method::POST,
    };
    let mut h = vec![("authorization", auth)];
    if let Some(ct) = req.content_type() {
        h.push(("content-type", ct.to_owned()));
    }
    c.raw(method, req.path_and_query(), &h, req.body().to_vec(), false).await.unwrap()
}

#[tokio::test]
async fn the_shared_protocol_drives_every_route_against_the_relay() {
    use sealpost_client::{
        Acked, BundleFetched, BundlePublished, Deposited, HandleBound, HandleClaimed, HandleFound, MessagePage,
        PrekeysStored, PushFrame, Request, SessionOpened,
    };
    use tokio_tungstenite::tungstenite::Message;
    let relay = start().await;
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut rng = sealpost::os_rng();
    let mut nonce = 0u128;
    let mut fresh = move || {
        nonce += 1;
        nonce.to_le_bytes()
    };
    let mut alice = sealpost::Account::new(&mut rng, NOW);
    let mut bob = sealpost::Account::new(&mut rng, NOW);
    let (sa, sb) = (alice.relay_signer(), bob.relay_signer());
    // The HTTP transport only; every header value and body comes from the shared crate.
    let http = Client::new(&relay.base, sealpost::Account::new(&mut rng, NOW).relay_signer()).unwrap();
    macro_rules! call {
        ($signer:expr, $req:expr, $ty:ty) => {{
            let req = $req;
            let auth = req.authorize($signer, now(), &fresh());
            send_shared(&http, &req, auth).await.parse::<$ty>().unwrap()
        }};
    }
    for (account, signer) in [(&mut alice, &sa), (&mut bob, &sb)] {
        let bundle = account.bundle(&SessionPolicy::default()).unwrap();
        let published = call!(signer, Request::publish_bundle(&bundle), BundlePublished);
        assert_eq!(&published.account, signer.account());
        let keys = account.generate_one_time_prekeys(&mut rng, 2);
        assert_eq!(call!(signer, Request::upload_prekeys(&keys), PrekeysStored).one_time_prekeys, 2);
    }
    let claimed = call!(&sb, Request::claim_handle("+4915112340000"), HandleClaimed);
    assert_eq!((claimed.handle.as_str(), claimed.expires_in), ("+4915112340000", 600));
    let code = relay.codes.code("+4915112340000").unwrap();
    let bound = call!(&sb, Request::verify_handle("+4915112340000", &code), HandleBound);
    assert_eq!(&bound.account, sb.account());
    let found = call!(&sa, Request::lookup_handle("+4915112340000"), HandleFound);
    assert_eq!(&found.identity, bob.identity());
    let fetched = call!(&sa, Request::fetch_bundle(sb.account()), BundleFetched);
    fetched.check_account(sb.account()).unwrap();
    assert_eq!(fetched.one_time_prekeys_left, 1);
    assert!(fetched.bundle.one_time_prekey().is_some());

    // A deposit under a relay session.
    let mut session = call!(&sa, Request::open_session(), SessionOpened).session();
    let deposit = Request::deposit(&[*sb.account()], b"hello bob");
    let auth = deposit.authorize_session(&mut session);
    let ids = send_shared(&http, &deposit, auth.clone()).await.parse::<Deposited>().unwrap().ids;
    assert_eq!(ids.len(), 1);
    // The same request again is a replay, answered with the shared code.
    let e = send_shared(&http, &deposit, auth).await.parse::<Deposited>().unwrap_err();
    assert_eq!(e.code(), Some(sealpost_client::ErrorCode::ReplayedRequest));

    let page = call!(&sb, Request::pull(0, 10), MessagePage);
    assert_eq!(page.next_after, ids[0]);
    assert_eq!((page.messages[0].sender, page.messages[0].envelope.as_slice()), (*sa.account(), &b"hello bob"[..]));

    // Push over the `auth` query parameter (no headers), as a browser does.
    let auth = Request::websocket().authorize(&sb, now(), &fresh());
    let url = format!("{}{}", relay.base.replacen("http://", "ws://", 1), sealpost_client::ws_auth_query(&auth));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    let frame = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(t) = frame {
            break PushFrame::decode(t.as_str()).unwrap();
        }
    };
    let PushFrame::Message(m) = frame else { panic!("expected a message") };
    assert_eq!(m, page.messages[0]);
    ws.send(Message::text(sealpost_client::ack_frame(&[m.id]))).await.unwrap();
    let frame = loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            break PushFrame::decode(t.as_str()).unwrap();
        }
    };
    assert_eq!(frame, PushFrame::Acked(1));
    assert_eq!(call!(&sb, Request::ack(&[m.id]), Acked).deleted, 0);
    assert_eq!(call!(&sb, Request::pull(0, 10), MessagePage).messages, vec![]);
}

/// The sweep runs on the relay's clock: nonces are forgotten once their
/// timestamps left the accepted window, not before.
#[tokio::test]
async fn the_nonce_sweep_runs_on_the_relays_clock() {
    let relay = start_with(|c| c.max_clock_skew_secs = 100).await;
    let start = relay.clock.now();
    let alice = user(&relay, 0).await;
    alice.client.pull(0, 1).await.unwrap();
    let running = relay.running.as_ref().unwrap();
    let held = running.remembered_nonces();
    assert!(held >= 2, "{held}");
    // At +20, before the first sweep (due at +30), one more request, signed
    // at the relay's time.
    relay.clock.advance(20);
    let req = sealpost_client::Request::pull(0, 1);
    let auth = req.authorize(&alice.account.relay_signer(), start + 20, &[0x5e; 16]);
    assert_eq!(send_shared(&alice.client, &req, auth).await.status, 200);
    assert_eq!(running.remembered_nonces(), held + 1);
    // At +120 the sweep runs (the one due at +30, late) and keeps timestamps
    // from +20 on: the first requests' (signed at the real time, within
    // seconds of the start) are forgotten, the one at +20, exactly at the
    // edge of the window, is kept. Nothing but a sweep drops a nonce here,
    // and one sweep goes from `held + 1` straight to 1 (or to 0, had it
    // forgotten the one at the edge).
    relay.clock.advance(100);
    eventually(async || running.remembered_nonces() == 1, "the sweep did not forget exactly the expired nonces").await;
    // A second later it left the window too, and the next sweep (due a
    // second after the late one) forgets it.
    relay.clock.advance(1);
    eventually(async || running.remembered_nonces() == 0, "the sweep did not forget the last nonce").await;
}
