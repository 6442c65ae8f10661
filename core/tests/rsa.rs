//! RSA interoperability (feature `rsa`): what Python's `cryptography`
//! wrapped and signed opens and verifies here; round trips; tampering;
//! key import/export; weak keys refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealpost::legacy::{RsaPrivateKey, RsaPublicKey};
use sealpost::{Error, SessionPolicy, Suite};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/rsa");

fn all_suites() -> SessionPolicy {
    SessionPolicy { suites: Suite::ALL.to_vec(), ..SessionPolicy::default() }
}

fn key(name: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(format!("{DIR}/{name}.pem")).unwrap()).unwrap()
}

#[test]
fn messages_wrapped_and_signed_by_python_open_and_verify() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/from_python.json")).unwrap()).unwrap();
    let mut rng = sealpost::os_rng();
    let policy = all_suites();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 6);
    for v in vectors {
        let k = key(v["key"].as_str().unwrap());
        let msg = hex::decode(v["message"].as_str().unwrap()).unwrap();
        let sig = hex::decode(v["signature"].as_str().unwrap()).unwrap();
        let pt = hex::decode(v["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(k.unwrap_message(&mut rng, &policy, &msg).unwrap(), pt);
        assert_eq!(k.public_key().verify(&msg, &sig), Ok(()));
        let mut other = msg.clone();
        other[3 + 2 + 10] ^= 1; // inside the wrapped key
        assert_eq!(k.public_key().verify(&other, &sig), Err(Error::InvalidSignature));
        assert_eq!(k.unwrap_message(&mut rng, &policy, &other).err(), Some(Error::AuthenticationFailed));
    }
}

#[test]
fn round_trip_for_2048_and_3072_and_every_suite() {
    let mut rng = sealpost::os_rng();
    let policy = all_suites();
    for name in ["rsa2048", "rsa3072"] {
        let k = key(name);
        for suite in Suite::ALL {
            let msg = k.public_key().wrap_message(&mut rng, suite, b"content").unwrap();
            assert_eq!(k.unwrap_message(&mut rng, &policy, &msg).unwrap(), b"content");
            let sig = k.sign(&mut rng, &msg);
            assert_eq!(sig.len() * 8, k.public_key().bits());
            k.public_key().verify(&msg, &sig).unwrap();
        }
    }
}

#[test]
fn tampering_and_wrong_keys_are_refused() {
    let mut rng = sealpost::os_rng();
    let policy = all_suites();
    let (a, b) = (key("rsa2048"), key("rsa3072"));
    let msg = a.public_key().wrap_message(&mut rng, Suite::Aes256Gcm, b"for a only").unwrap();
    assert_eq!(b.unwrap_message(&mut rng, &policy, &msg).err(), Some(Error::AuthenticationFailed));
    // Every part: wrapped key, salt, ciphertext, tag.
    for i in (5..msg.len()).step_by(7) {
        let mut t = msg.clone();
        t[i] ^= 0x40;
        assert!(a.unwrap_message(&mut rng, &policy, &t).is_err(), "byte {i}");
    }
    for len in 0..msg.len() {
        assert!(a.unwrap_message(&mut rng, &policy, &msg[..len]).is_err());
    }
    let sig = a.sign(&mut rng, &msg);
    assert_eq!(b.public_key().verify(&msg, &sig), Err(Error::InvalidSignature));
    let mut bad = sig.clone();
    bad[0] ^= 1;
    assert_eq!(a.public_key().verify(&msg, &bad), Err(Error::InvalidSignature));
    assert_eq!(a.public_key().verify(&msg, &sig[..10]), Err(Error::InvalidSignature));
}

#[test]
fn keys_import_and_export_in_pem_and_der() {
    let k = key("rsa2048");
    let der = k.to_pkcs8_der().unwrap();
    let again = RsaPrivateKey::from_pkcs8_der(&der).unwrap();
    assert_eq!(again.public_key(), k.public_key());
    let pem = k.to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(RsaPrivateKey::from_pkcs8_pem(&pem).unwrap().public_key(), k.public_key());
    let pub_pem = std::fs::read_to_string(format!("{DIR}/rsa2048.pub.pem")).unwrap();
    let public = RsaPublicKey::from_public_key_pem(&pub_pem).unwrap();
    assert_eq!(public, k.public_key());
    assert_eq!(public.to_public_key_pem().unwrap().trim(), pub_pem.trim());
    let der = public.to_public_key_der().unwrap();
    assert_eq!(RsaPublicKey::from_public_key_der(&der).unwrap(), public);
    assert!(!format!("{k:?}").contains(&format!("{:?}", &der[..4])));
    assert_eq!(format!("{k:?}"), "RsaPrivateKey(2048 bits, <redacted>)");
}

#[test]
fn weak_and_malformed_keys_are_refused() {
    let weak = std::fs::read_to_string(format!("{DIR}/rsa1024-weak.pub.pem")).unwrap();
    assert_eq!(RsaPublicKey::from_public_key_pem(&weak).err(), Some(Error::WeakParameters));
    assert_eq!(RsaPublicKey::from_public_key_pem("not a key").err(), Some(Error::Malformed("rsa public key")));
    assert_eq!(RsaPrivateKey::from_pkcs8_der(&[0x30, 0x03, 1, 2, 3]).err(), Some(Error::Malformed("rsa private key")));
    let mut rng = sealpost::os_rng();
    assert_eq!(RsaPrivateKey::generate(&mut rng, 1024).err(), Some(Error::WeakParameters));
}

#[test]
fn the_policy_decides_which_suites_unwrap() {
    let mut rng = sealpost::os_rng();
    let k = key("rsa2048");
    let msg = k.public_key().wrap_message(&mut rng, Suite::Aes256CbcHmacSha256, b"cbc").unwrap();
    assert_eq!(k.unwrap_message(&mut rng, &SessionPolicy::default(), &msg).err(), Some(Error::SuiteNotAllowed(4)));
    assert_eq!(k.unwrap_message(&mut rng, &all_suites(), &msg).unwrap(), b"cbc");
}
