//! Helper of the load benchmark (`scripts/bench-relay.sh`).
//!
//! `load prepare URL COUNT DIR`: registers `$SEALPOST_BENCH_SENDERS`
//! senders (1 by default) and a recipient at the relay, and writes
//! `DIR/body.json` (a deposit of one 1 KiB envelope to the recipient) and,
//! for each of `$SEALPOST_BENCH_THREADS` load threads, `DIR/auth-T.txt`:
//! COUNT Authorization headers for wrk to replay, taking the senders in
//! turn, each with a relay session of its own per thread (sequence numbers
//! from 1); plus the recipient's account pickle.
//!
//! `load deliver URL DIR SECONDS`: connects as the recipient over the
//! WebSocket, acknowledges every pushed envelope, and prints how many
//! arrived (the "deliver" half of deposit-and-deliver).
//!
//! `load hold URL N DIR`: registers `N / 8` accounts (the relay's default
//! `ws_max_per_account`) and opens `N` WebSocket push connections, 8 per
//! account; writes `DIR/held` with the count once all are open, then holds
//! them until `DIR/release` appears (or ten minutes pass).

// Indexing a `serde_json::Value` never panics.
#![allow(clippy::indexing_slicing)]

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use rand_core::Rng;
use sealpost::{Account, PickleKey, SessionPolicy, SymmetricKey};
use sealpost_relay::client::{Client, PushEvent, account_id};

const USAGE: &str = "usage: load prepare URL COUNT DIR | load deliver URL DIR SECONDS | load hold URL N DIR";

/// Push connections per account (the relay's default `ws_max_per_account`).
const PER_ACCOUNT: usize = 8;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().ok_or(USAGE);
    let mut rng = sealpost::os_rng();
    match arg(1)?.as_str() {
        "prepare" => {
            let (url, count, dir) = (arg(2)?, arg(3)?.parse::<usize>()?, arg(4)?);
            let senders: usize =
                std::env::var("SEALPOST_BENCH_SENDERS").ok().and_then(|t| t.parse().ok()).unwrap_or(1).max(1);
            let senders: Vec<Account> = (0..senders).map(|_| Account::new(&mut rng, now())).collect();
            let recipient = Account::new(&mut rng, now());
            for a in senders.iter().chain([&recipient]) {
                Client::new(&url, a.relay_signer())?.publish_bundle(&a.bundle(&SessionPolicy::default())?).await?;
            }
            let mut envelope = vec![0u8; 1024];
            rng.fill_bytes(&mut envelope);
            let body = serde_json::json!({
                "recipients": [account_id(recipient.identity())],
                "envelope": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&envelope),
            })
            .to_string();
            std::fs::write(format!("{dir}/body.json"), &body)?;
            // Deposits are authenticated with relay sessions, as the client does.
            let headers = [("content-type", "application/json".to_owned())];
            let deposit = sealpost_client::Request::custom(
                sealpost_client::Method::Post,
                "/v1/messages",
                body.as_bytes().to_vec(),
            );
            // One session per sender and load-generator thread, as one per device.
            let threads: usize = std::env::var("SEALPOST_BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
            for t in 0..threads {
                let mut sessions = Vec::new();
                for sender in &senders {
                    let client = Client::new(&url, sender.relay_signer())?;
                    let opened: sealpost_client::SessionOpened = client
                        .raw(hyper::Method::POST, "/v1/sessions", &headers, b"{}".to_vec(), true)
                        .await?
                        .parse()?;
                    sessions.push(opened.session());
                }
                let mut out = std::io::BufWriter::new(std::fs::File::create(format!("{dir}/auth-{t}.txt"))?);
                for i in 0..count {
                    if let Some(session) = sessions.get_mut(i % senders.len()) {
                        writeln!(out, "{}", deposit.authorize_session(session))?;
                    }
                }
                out.flush()?;
            }
            // A benchmark throwaway: the pickle key is fixed.
            let key = PickleKey::Key(SymmetricKey::from_bytes([0; 32]));
            std::fs::write(format!("{dir}/recipient.pickle"), recipient.pickle(&mut rng, &key, b"load/recipient")?)?;
        }
        "deliver" => {
            let (url, dir, secs) = (arg(2)?, arg(3)?, arg(4)?.parse::<u64>()?);
            let key = PickleKey::Key(SymmetricKey::from_bytes([0; 32]));
            let recipient =
                Account::from_pickle(&std::fs::read(format!("{dir}/recipient.pickle"))?, &key, b"load/recipient")?;
            let client = Client::new(&url, recipient.relay_signer())?;
            let mut push = client.connect_push().await?;
            let mut delivered = 0u64;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
            let mut pending = Vec::new();
            loop {
                match tokio::time::timeout_at(deadline, push.next()).await {
                    Err(_) | Ok(None) => break,
                    Ok(Some(Ok(PushEvent::Message(m)))) => {
                        delivered += 1;
                        pending.push(m.id);
                        if pending.len() >= 200 {
                            push.ack(&pending).await?;
                            pending.clear();
                        }
                    }
                    Ok(Some(_)) => {}
                }
            }
            println!("{delivered}");
        }
        "hold" => {
            let (url, n, dir) = (arg(2)?, arg(3)?.parse::<usize>()?, arg(4)?);
            let accounts: Vec<Account> = (0..n.div_ceil(PER_ACCOUNT)).map(|_| Account::new(&mut rng, now())).collect();
            let mut clients = Vec::new();
            for chunk in accounts.chunks(64) {
                let mut registered = Vec::new();
                for a in chunk {
                    let client = Client::new(&url, a.relay_signer())?;
                    let bundle = a.bundle(&SessionPolicy::default())?;
                    registered.push(tokio::spawn(async move { client.publish_bundle(&bundle).await.map(|()| client) }));
                }
                for r in registered {
                    clients.push(r.await??);
                }
            }
            let mut held = Vec::with_capacity(n);
            let mut failed = 0usize;
            let targets: Vec<Client> = (0..n).filter_map(|i| clients.get(i / PER_ACCOUNT).cloned()).collect();
            for chunk in targets.chunks(256) {
                let opening: Vec<_> =
                    chunk.iter().cloned().map(|c| tokio::spawn(async move { c.connect_push().await })).collect();
                for o in opening {
                    match o.await? {
                        Ok(push) => held.push(push),
                        Err(e) => {
                            if failed == 0 {
                                eprintln!("load hold: a connection failed: {e}");
                            }
                            failed += 1;
                        }
                    }
                }
            }
            std::fs::write(format!("{dir}/held"), format!("{} {failed}\n", held.len()))?;
            let release = std::path::Path::new(&dir).join("release");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
            while !release.exists() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            drop(held);
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}
