//! Every suite round-trips random plaintexts, and a mutated ciphertext,
//! salt or associated data never opens. For the Twofish suite, the
//! ciphertext's CBC body is also checked against the `twofish` crate.
#![no_main]

use cbc::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use libfuzzer_sys::fuzz_target;
use sealpost::hazmat::{SuiteKeys, suite_open, suite_seal};
use sealpost::{Suite, SymmetricKey};

fuzz_target!(|data: &[u8]| {
    if data.len() < 34 {
        return;
    }
    let (head, rest) = data.split_at(34);
    let secret = SymmetricKey::from_bytes(head[..32].try_into().unwrap());
    let suite = Suite::ALL[usize::from(head[32]) % Suite::ALL.len()];
    let flip = usize::from(head[33]);
    let (aad, plaintext) = rest.split_at(rest.len().min(flip % 17));
    let salt = [head[33]; 16];
    let sealed = suite_seal(suite, &secret, &salt, aad, plaintext).unwrap();
    assert_eq!(suite_open(suite, &secret, &salt, aad, &sealed).unwrap(), plaintext);
    let mut bad = sealed.clone();
    let i = flip % bad.len();
    bad[i] ^= 1 << (flip % 8);
    assert!(suite_open(suite, &secret, &salt, aad, &bad).is_err());
    let mut other_salt = salt;
    other_salt[flip % 16] ^= 0x80;
    assert!(suite_open(suite, &secret, &other_salt, aad, &sealed).is_err());
    if !aad.is_empty() {
        let mut other_aad = aad.to_vec();
        other_aad[flip % aad.len()] ^= 4;
        assert!(suite_open(suite, &secret, &salt, &other_aad, &sealed).is_err());
    }
    if suite == Suite::Twofish256CbcHmacSha256 {
        let keys = SuiteKeys::derive(suite, &secret, &salt).unwrap();
        let reference = cbc::Encryptor::<twofish::Twofish>::new_from_slices(keys.enc_key(), keys.nonce())
            .unwrap()
            .encrypt_padded_vec::<Pkcs7>(plaintext);
        assert_eq!(&sealed[..reference.len()], reference.as_slice());
    }
});
