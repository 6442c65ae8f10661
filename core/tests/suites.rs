//! Every suite: round trips over sizes up to 64 KiB, and any single flipped
//! bit in the ciphertext, tag, nonce/IV, salt or associated data rejected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use proptest::prelude::*;
use sealpost::hazmat::SuiteKeys;
use sealpost::{Error, Suite, SymmetricKey};

fn suite_strategy() -> impl Strategy<Value = Suite> {
    prop::sample::select(Suite::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn every_suite_round_trips_up_to_64_kib(
        suite in suite_strategy(),
        secret in any::<[u8; 32]>(),
        salt in any::<[u8; 16]>(),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        plaintext in prop::collection::vec(any::<u8>(), 0..=65536),
    ) {
        let key = SymmetricKey::from_bytes(secret);
        let sealed = sealpost::hazmat::suite_seal(suite, &key, &salt, &aad, &plaintext).unwrap();
        prop_assert_eq!(sealed.len(), suite.ciphertext_len(plaintext.len()));
        prop_assert_eq!(sealpost::hazmat::suite_open(suite, &key, &salt, &aad, &sealed).unwrap(), plaintext);
    }

    #[test]
    fn arbitrary_ciphertexts_are_rejected_without_panic(
        suite in suite_strategy(),
        junk in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let key = SymmetricKey::from_bytes([9; 32]);
        prop_assert_eq!(sealpost::hazmat::suite_open(suite, &key, b"salt", b"", &junk), Err(Error::AuthenticationFailed));
    }
}

/// Every suite and every plaintext length from 0 to 48 bytes (every CBC
/// padding length, three blocks either side): 5 x 49 cases, all of them.
#[test]
fn every_suite_round_trips_small_sizes_exhaustively() {
    let mut cases = 0;
    for suite in Suite::ALL {
        for len in 0usize..=48 {
            let key = SymmetricKey::from_bytes([len as u8; 32]);
            let pt = vec![0xA5; len];
            let sealed = sealpost::hazmat::suite_seal(suite, &key, b"s", b"ad", &pt).unwrap();
            assert_eq!(sealed.len(), suite.ciphertext_len(len), "{suite:?} length {len}");
            assert_eq!(
                sealpost::hazmat::suite_open(suite, &key, b"s", b"ad", &sealed).unwrap(),
                pt,
                "{suite:?} length {len}"
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 245);
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[bit / 8] ^= 1 << (bit % 8);
    v
}

#[test]
fn any_flipped_bit_is_rejected_in_every_suite() {
    let secret = SymmetricKey::from_bytes([0x42; 32]);
    let salt = [7u8; 16];
    let aad = b"header bytes".to_vec();
    let pt = b"attack at dawn, bring snacks".to_vec(); // 28 bytes: two CBC blocks
    for suite in Suite::ALL {
        let sealed = sealpost::hazmat::suite_seal(suite, &secret, &salt, &aad, &pt).unwrap();
        // Ciphertext and tag: every bit.
        for bit in 0..sealed.len() * 8 {
            assert_eq!(
                sealpost::hazmat::suite_open(suite, &secret, &salt, &aad, &flip(&sealed, bit)),
                Err(Error::AuthenticationFailed),
                "{suite}: ciphertext bit {bit}"
            );
        }
        // Associated data: every bit.
        for bit in 0..aad.len() * 8 {
            assert_eq!(
                sealpost::hazmat::suite_open(suite, &secret, &salt, &flip(&aad, bit), &sealed),
                Err(Error::AuthenticationFailed)
            );
        }
        // The per-message salt (from which key and nonce derive): every bit.
        for bit in 0..salt.len() * 8 {
            assert_eq!(
                sealpost::hazmat::suite_open(suite, &secret, &flip(&salt, bit), &aad, &sealed),
                Err(Error::AuthenticationFailed)
            );
        }
        // The nonce / IV itself, through explicit keys: every bit.
        let keys = SuiteKeys::derive(suite, &secret, &salt).unwrap();
        assert_eq!(keys.open(&aad, &sealed).unwrap(), pt);
        for bit in 0..keys.nonce().len() * 8 {
            let other =
                SuiteKeys::from_parts(suite, *keys.enc_key(), *keys.mac_key(), &flip(keys.nonce(), bit)).unwrap();
            assert_eq!(other.open(&aad, &sealed), Err(Error::AuthenticationFailed), "{suite}: nonce bit {bit}");
        }
        // Truncated or extended ciphertexts.
        for len in 0..sealed.len() {
            assert_eq!(
                sealpost::hazmat::suite_open(suite, &secret, &salt, &aad, &sealed[..len]),
                Err(Error::AuthenticationFailed)
            );
        }
        let mut longer = sealed.clone();
        longer.extend_from_slice(&[0; 16]);
        assert_eq!(
            sealpost::hazmat::suite_open(suite, &secret, &salt, &aad, &longer),
            Err(Error::AuthenticationFailed)
        );
    }
}

#[test]
fn cbc_suites_reject_bad_padding_with_the_same_error_as_a_bad_tag() {
    // Build a ciphertext whose MAC is valid but whose padding is not: the
    // caller must still see only AuthenticationFailed.
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;
    for suite in [Suite::Aes256CbcHmacSha256, Suite::Twofish256CbcHmacSha256] {
        let keys = SuiteKeys::from_parts(suite, [1; 32], [2; 32], &[3; 16]).unwrap();
        let body = [0x5Au8; 32]; // random-looking blocks: padding will not check out
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(keys.mac_key()).unwrap();
        mac.update(&[suite.id()]);
        mac.update(&0u64.to_be_bytes());
        mac.update(keys.nonce());
        mac.update(&(body.len() as u64).to_be_bytes());
        mac.update(&body);
        let mut forged = body.to_vec();
        forged.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(keys.open(b"", &forged), Err(Error::AuthenticationFailed));
        // And a valid MAC over a non-block-multiple body.
        let short = [0u8; 20];
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(keys.mac_key()).unwrap();
        mac.update(&[suite.id()]);
        mac.update(&0u64.to_be_bytes());
        mac.update(keys.nonce());
        mac.update(&(short.len() as u64).to_be_bytes());
        mac.update(&short);
        let mut forged = short.to_vec();
        forged.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(keys.open(b"", &forged), Err(Error::AuthenticationFailed));
    }
}

#[test]
fn keys_and_nonces_differ_across_suites_and_salts() {
    let secret = SymmetricKey::from_bytes([5; 32]);
    let mut seen = std::collections::HashSet::new();
    for suite in Suite::ALL {
        for salt in [[0u8; 16], [1u8; 16]] {
            let k = SuiteKeys::derive(suite, &secret, &salt).unwrap();
            assert!(seen.insert((k.enc_key().to_vec(), k.nonce().to_vec())), "key/nonce reused");
        }
    }
}

#[test]
fn suite_ids_are_fixed() {
    let ids: Vec<u8> = Suite::ALL.iter().map(|s| s.id()).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    for s in Suite::ALL {
        assert_eq!(Suite::from_id(s.id()), Ok(s));
    }
    assert_eq!(Suite::from_id(0), Err(Error::UnsupportedSuite(0)));
    assert_eq!(Suite::from_id(6), Err(Error::UnsupportedSuite(6)));
}
