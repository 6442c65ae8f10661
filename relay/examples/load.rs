//! Helper of the load benchmark (`scripts/bench-relay.sh`).
//!
//! `load prepare URL COUNT DIR`: registers a sender and a recipient at the
//! relay, opens a relay session for the sender and writes `DIR/body.json`
//! (a deposit of one 1 KiB envelope to the recipient) and `DIR/auth.txt`
//! (for each of `$SEALPOST_BENCH_THREADS` sessions, `DIR/auth-T.txt`: COUNT
//! Authorization headers, sequence numbers 1 to COUNT) for wrk to replay,
//! plus the recipient's account pickle.
//!
//! `load deliver URL DIR SECONDS`: connects as the recipient over the
//! WebSocket, acknowledges every pushed envelope, and prints how many
//! arrived (the "deliver" half of deposit-and-deliver).

// Indexing a `serde_json::Value` never panics.
#![allow(clippy::indexing_slicing)]

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use rand_core::Rng;
use sealpost::{Account, PickleKey, SessionPolicy, SymmetricKey};
use sealpost_relay::auth::{decode_fixed, session_authorization};
use sealpost_relay::client::{Client, PushEvent, account_id};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().ok_or("usage: load prepare URL COUNT DIR | load deliver URL DIR SECONDS");
    let mut rng = sealpost::os_rng();
    match arg(1)?.as_str() {
        "prepare" => {
            let (url, count, dir) = (arg(2)?, arg(3)?.parse::<usize>()?, arg(4)?);
            let sender = Account::new(&mut rng, now());
            let recipient = Account::new(&mut rng, now());
            for a in [&sender, &recipient] {
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
            // Deposits are authenticated with a relay session, as the client does.
            let client = Client::new(&url, sender.relay_signer())?;
            let headers = [("content-type", "application/json".to_owned())];
            // One session per load-generator thread, as one per device.
            let threads: usize = std::env::var("SEALPOST_BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
            for t in 0..threads {
                let session =
                    client.raw(hyper::Method::POST, "/v1/sessions", &headers, b"{}".to_vec(), true).await?.json();
                let id: [u8; 16] = decode_fixed(session["id"].as_str().ok_or("no session id")?).ok_or("bad id")?;
                let key: [u8; 32] = decode_fixed(session["key"].as_str().ok_or("no session key")?).ok_or("bad key")?;
                let mut out = std::io::BufWriter::new(std::fs::File::create(format!("{dir}/auth-{t}.txt"))?);
                for seq in 1..=u64::try_from(count)? {
                    let auth = session_authorization(&id, &key, "POST", "/v1/messages", seq, body.as_bytes());
                    writeln!(out, "{auth}")?;
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
        _ => return Err("usage: load prepare URL COUNT DIR | load deliver URL DIR SECONDS".into()),
    }
    Ok(())
}
