//! The relay's deposit-and-deliver path in-process, over loopback: one
//! authenticated 1 KiB deposit, then the recipient pulls and acknowledges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sealpost::{Account, SessionPolicy};
use sealpost_relay::client::Client;
use sealpost_relay::{Config, Running};

fn relay(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (running, alice, bob) = rt.block_on(async {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            rate_account_burst: 1e12,
            rate_account_per_sec: 1e12,
            rate_ip_burst: 1e12,
            rate_ip_per_sec: 1e12,
            rate_ip_write_bytes_per_sec: 1e15,
            rate_ip_write_bytes_burst: 1e15,
            max_requests_in_flight_per_address: usize::MAX,
            max_pulls_in_flight_per_address: usize::MAX,
            max_mailbox_messages: u64::MAX,
            ..Config::default()
        };
        let running = Running::start(config, None).await.unwrap();
        let base = format!("http://{}", running.addr);
        let mut rng = sealpost::os_rng();
        let mut clients = Vec::new();
        for _ in 0..2 {
            let account = Account::new(&mut rng, 1_700_000_000);
            let client = Client::new(&base, account.relay_signer()).unwrap();
            client.publish_bundle(&account.bundle(&SessionPolicy::default()).unwrap()).await.unwrap();
            clients.push(client);
        }
        let bob = clients.pop().unwrap();
        let alice = clients.pop().unwrap();
        (running, alice, bob)
    });
    let envelope = vec![0x42u8; 1024];
    let to = [bob.account()];
    let mut g = c.benchmark_group("relay");
    g.bench_function("deposit 1 KiB (durable)", |b| b.iter(|| rt.block_on(alice.deposit(&to, &envelope)).unwrap()));
    rt.block_on(async {
        // Drain what the previous benchmark left.
        loop {
            let got = bob.pull(0, 1000).await.unwrap();
            if got.is_empty() {
                break;
            }
            bob.ack(&got.iter().map(|m| m.id).collect::<Vec<_>>()).await.unwrap();
        }
    });
    g.bench_function("deposit, pull and ack 1 KiB", |b| {
        b.iter(|| {
            rt.block_on(async {
                alice.deposit(&to, &envelope).await.unwrap();
                let got = bob.pull(0, 10).await.unwrap();
                bob.ack(&[got[0].id]).await.unwrap();
            })
        })
    });
    g.finish();
    rt.block_on(running.stop()).unwrap();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).without_plots()
}

criterion_group! { name = benches; config = config(); targets = relay }
criterion_main!(benches);
