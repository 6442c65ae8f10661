//! Known-answer tests against published vectors (RFC 8439, the GCM
//! specification, draft-irtf-cfrg-xchacha, NIST SP 800-38A, the Twofish
//! submission tables, RFC 5869, RFC 7914, RFC 7748, RFC 8032), run through
//! this crate's own code paths. The vectors live in `core/tests/kat/`.

use alloc::vec::Vec;

use serde_json::Value;

use crate::identity::IdentityKeyPair;
use crate::kdf::{hkdf_sha256, pbkdf2_sha256};
use crate::suite::{Suite, SuiteKeys};

fn load(text: &str) -> Value {
    serde_json::from_str(text).expect("vector file is JSON")
}

fn hex(v: &Value, field: &str) -> Vec<u8> {
    let s = v[field].as_str().unwrap_or_else(|| panic!("field {field}"));
    ::hex::decode(s).expect("hex")
}

fn vectors(doc: &Value, list: &str) -> Vec<Value> {
    let v = doc[list].as_array().expect("vector list").clone();
    assert!(!v.is_empty(), "no vectors in {list}");
    v
}

fn check_aead(suite: Suite, text: &str) {
    let doc = load(text);
    for v in vectors(&doc, "vectors") {
        let key: [u8; 32] = hex(&v, "key").try_into().expect("32-byte key");
        let keys = SuiteKeys::from_parts(suite, key, [0; 32], &hex(&v, "nonce")).expect("nonce length");
        let mut expected = hex(&v, "ciphertext");
        expected.extend_from_slice(&hex(&v, "tag"));
        let sealed = keys.seal(&hex(&v, "aad"), &hex(&v, "plaintext")).expect("seal");
        assert_eq!(sealed, expected, "{suite} {}", v["name"]);
        assert_eq!(keys.open(&hex(&v, "aad"), &expected).expect("open"), hex(&v, "plaintext"));
    }
}

#[test]
fn aes256gcm_gcm_spec_test_cases() {
    check_aead(Suite::Aes256Gcm, include_str!("../tests/kat/aes256gcm.json"));
}

#[test]
fn chacha20poly1305_rfc8439() {
    check_aead(Suite::ChaCha20Poly1305, include_str!("../tests/kat/chacha20poly1305.json"));
}

#[test]
fn xchacha20poly1305_draft_irtf_cfrg_xchacha() {
    check_aead(Suite::XChaCha20Poly1305, include_str!("../tests/kat/xchacha20poly1305.json"));
}

#[test]
fn aes256_cbc_sp800_38a() {
    // CBC is prefix-preserving: the suite's output starts with the unpadded
    // NIST ciphertext, followed by one block of PKCS#7 padding and the tag.
    let doc = load(include_str!("../tests/kat/aes256cbc.json"));
    for v in vectors(&doc, "vectors") {
        let key: [u8; 32] = hex(&v, "key").try_into().expect("key");
        let keys = SuiteKeys::from_parts(Suite::Aes256CbcHmacSha256, key, [3; 32], &hex(&v, "iv")).expect("iv");
        let pt = hex(&v, "plaintext");
        let ct = hex(&v, "ciphertext");
        let sealed = keys.seal(b"", &pt).expect("seal");
        assert_eq!(sealed.len(), pt.len() + 16 + 32);
        assert_eq!(&sealed[..ct.len()], &ct[..]);
        assert_eq!(keys.open(b"", &sealed).expect("open"), pt);
    }
}

#[test]
fn twofish256_submission_tables() {
    // With an all-zero IV the first CBC block is the ECB encryption.
    let doc = load(include_str!("../tests/kat/twofish.json"));
    for v in vectors(&doc, "vectors") {
        let key: [u8; 32] = hex(&v, "key").try_into().expect("256-bit key vectors only");
        let keys = SuiteKeys::from_parts(Suite::Twofish256CbcHmacSha256, key, [3; 32], &[0; 16]).expect("iv");
        let sealed = keys.seal(b"", &hex(&v, "plaintext")).expect("seal");
        assert_eq!(&sealed[..16], &hex(&v, "ciphertext")[..], "{}", v["name"]);
    }
}

#[test]
fn twofish256_submission_tables_under_both_keyings() {
    // The suite picks zero keying for short messages (the path above) and
    // full keying for long ones: each must match the tables on its own, in
    // both directions.
    use crate::twofish::Twofish256;
    let doc = load(include_str!("../tests/kat/twofish.json"));
    for v in vectors(&doc, "vectors") {
        let key: [u8; 32] = hex(&v, "key").try_into().expect("256-bit key vectors only");
        let pt: [u8; 16] = hex(&v, "plaintext").try_into().expect("one block");
        let ct = hex(&v, "ciphertext");
        let (full, zero) = (Twofish256::new(&key), Twofish256::new_zero_keyed(&key));
        let (mut a, mut b) = (pt, pt);
        full.encrypt_block(&mut a);
        zero.encrypt_block(&mut b);
        assert_eq!((&a[..], &b[..]), (&ct[..], &ct[..]), "{}", v["name"]);
        full.decrypt_block(&mut a);
        zero.decrypt_block(&mut b);
        assert_eq!((a, b), (pt, pt), "{}", v["name"]);
    }
}

#[test]
fn hkdf_sha256_rfc5869() {
    let doc = load(include_str!("../tests/kat/hkdf_sha256.json"));
    for v in vectors(&doc, "vectors") {
        let mut okm = alloc::vec![0u8; usize::try_from(v["length"].as_u64().expect("length")).expect("fits")];
        hkdf_sha256(&hex(&v, "salt"), &hex(&v, "ikm"), &[&hex(&v, "info")], &mut okm).expect("hkdf");
        assert_eq!(okm, hex(&v, "okm"), "{}", v["name"]);
    }
}

#[test]
fn pbkdf2_hmac_sha256_rfc7914() {
    let doc = load(include_str!("../tests/kat/pbkdf2_hmac_sha256.json"));
    for v in vectors(&doc, "vectors") {
        let mut out = alloc::vec![0u8; usize::try_from(v["length"].as_u64().expect("length")).expect("fits")];
        let pw = v["password"].as_str().expect("password");
        let salt = v["salt"].as_str().expect("salt");
        let iterations = u32::try_from(v["iterations"].as_u64().expect("iterations")).expect("fits");
        pbkdf2_sha256(pw.as_bytes(), salt.as_bytes(), iterations, &mut out);
        assert_eq!(out, hex(&v, "output"), "{}", v["name"]);
    }
}

#[test]
fn x25519_rfc7748() {
    let doc = load(include_str!("../tests/kat/x25519.json"));
    for v in vectors(&doc, "vectors") {
        let scalar: [u8; 32] = hex(&v, "scalar").try_into().expect("scalar");
        let u: [u8; 32] = hex(&v, "u").try_into().expect("u");
        let secret = x25519_dalek::StaticSecret::from(scalar);
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(u));
        assert_eq!(shared.as_bytes()[..], hex(&v, "output")[..], "{}", v["name"]);
    }
    for v in vectors(&doc, "diffie_hellman") {
        let a: [u8; 32] = hex(&v, "alice_private").try_into().expect("key");
        let b: [u8; 32] = hex(&v, "bob_private").try_into().expect("key");
        // Through the identity type: the X25519 half of an identity.
        let alice = IdentityKeyPair::from_secret_bytes(&[1; 32], &a);
        let bob = IdentityKeyPair::from_secret_bytes(&[2; 32], &b);
        assert_eq!(alice.public().dh_key()[..], hex(&v, "alice_public")[..]);
        assert_eq!(bob.public().dh_key()[..], hex(&v, "bob_public")[..]);
        let shared = crate::identity::dh(alice.dh_secret(), bob.public().dh_key()).expect("contributory");
        assert_eq!(shared[..], hex(&v, "shared")[..]);
    }
}

#[test]
fn ed25519_rfc8032() {
    let doc = load(include_str!("../tests/kat/ed25519.json"));
    for v in vectors(&doc, "vectors") {
        let seed: [u8; 32] = hex(&v, "secret_key").try_into().expect("seed");
        let id = IdentityKeyPair::from_secret_bytes(&seed, &[9; 32]);
        assert_eq!(id.public().signing_key()[..], hex(&v, "public_key")[..], "{}", v["name"]);
        // The crate-internal raw path: plain Ed25519, no context.
        let sig = id.sign_raw(&hex(&v, "message"));
        assert_eq!(sig[..], hex(&v, "signature")[..], "{}", v["name"]);
        assert_eq!(id.public().verify_raw(&hex(&v, "message"), &sig), Ok(()));
    }
}

#[test]
fn hmac_sha256_rfc4231() {
    use hmac::Mac;
    let doc = load(include_str!("../tests/kat/hmac_sha256.json"));
    for v in vectors(&doc, "vectors") {
        // Through the crate's own MAC path (the one the CBC suites use), with
        // the data split in two parts, as that path feeds it.
        let data = hex(&v, "data");
        let (head, tail) = data.split_at(data.len() / 2);
        let mac = crate::suite::hmac_sha256(&hex(&v, "key"), &[head, tail]).expect("key");
        assert_eq!(mac.clone().finalize().into_bytes().to_vec(), hex(&v, "mac"), "{}", v["name"]);
        assert!(mac.verify_slice(&hex(&v, "mac")).is_ok(), "{}", v["name"]);
    }
}
