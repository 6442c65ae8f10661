//! Cipher suites through Sealpost's seal/open (per-message key derivation
//! included), next to the raw AEADs they use (RustCrypto) and `ring`'s, at
//! 64 B, 1 KiB, 16 KiB and 1 MiB, in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{AeadInOut, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealpost::{Suite, SymmetricKey};

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];

fn suites(c: &mut Criterion) {
    let secret = SymmetricKey::from_bytes([7; 32]);
    let salt = [9u8; 16];
    let aad = [1u8; 103];
    for suite in Suite::ALL {
        let mut g = c.benchmark_group(format!("suite/{}", suite.name()));
        for size in SIZES {
            let pt = vec![0x5au8; size];
            let sealed = sealpost::hazmat::suite_seal(suite, &secret, &salt, &aad, &pt).unwrap();
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new("seal", size), &pt, |b, pt| {
                b.iter(|| sealpost::hazmat::suite_seal(suite, &secret, &salt, &aad, black_box(pt)).unwrap())
            });
            g.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, ct| {
                b.iter(|| sealpost::hazmat::suite_open(suite, &secret, &salt, &aad, black_box(ct)).unwrap())
            });
        }
        g.finish();
    }
}

fn raw_rustcrypto(c: &mut Criterion) {
    let aes = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    let chacha = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = [3u8; 12];
    let aad = [1u8; 103];
    let mut g = c.benchmark_group("raw/rustcrypto");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5au8; size];
        g.bench_function(BenchmarkId::new("aes-256-gcm seal", size), |b| {
            b.iter(|| aes.encrypt_inout_detached(&nonce.into(), &aad, buf.as_mut_slice().into()).unwrap())
        });
        g.bench_function(BenchmarkId::new("chacha20-poly1305 seal", size), |b| {
            b.iter(|| chacha.encrypt_inout_detached(&nonce.into(), &aad, buf.as_mut_slice().into()).unwrap())
        });
    }
    g.finish();
}

fn raw_ring(c: &mut Criterion) {
    use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    let aes = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let chacha = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).unwrap());
    let aad = [1u8; 103];
    let mut g = c.benchmark_group("raw/ring");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5au8; size];
        g.bench_function(BenchmarkId::new("aes-256-gcm seal", size), |b| {
            b.iter(|| {
                aes.seal_in_place_separate_tag(Nonce::assume_unique_for_key([3; 12]), Aad::from(&aad), &mut buf)
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("chacha20-poly1305 seal", size), |b| {
            b.iter(|| {
                chacha
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key([3; 12]), Aad::from(&aad), &mut buf)
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .without_plots()
}

criterion_group! { name = benches; config = config(); targets = suites, raw_rustcrypto, raw_ring }
criterion_main!(benches);
