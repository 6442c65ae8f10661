//! RSA interoperability (feature `rsa`): what Python's `cryptography`
//! sealed and signed opens here; round trips; tampering; the sender's and
//! recipient's identities bound into signature and associated data;
//! implicit rejection; key import/export; moduli checked in bits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use sealpost::hazmat::RSA_MESSAGE_VERSION;
use sealpost::{Error, SessionPolicy, Suite};
use sealpost::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/rsa");

fn all_suites() -> SessionPolicy {
    SessionPolicy { suites: Suite::ALL.to_vec(), ..SessionPolicy::default() }
}

fn pem(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

fn key(name: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(&pem(&format!("{name}.pem"))).unwrap()
}

/// Where the fields of a message start, read the way 12A lays them out:
/// (W, C, offset of the signature).
fn layout(msg: &[u8]) -> (usize, usize, usize) {
    let w = usize::from(u16::from_be_bytes([msg[3], msg[4]]));
    let c = u32::from_be_bytes(msg[21 + w..25 + w].try_into().unwrap()) as usize;
    (w, c, 27 + w + c)
}

/// Signs `unsigned` (every byte of a message before its signature) as
/// `signer` would for `sender_fp` -> `recipient_fp`, with the `rsa` crate
/// directly and the exact input 12A defines, and appends the signature.
fn sign_as(signer: &str, sender_fp: [u8; 32], recipient_fp: [u8; 32], unsigned: &[u8]) -> Vec<u8> {
    let k = rsa::RsaPrivateKey::from_pkcs8_pem(&pem(&format!("{signer}.pem"))).unwrap();
    let signing = rsa::pss::SigningKey::<Sha256>::new_with_salt_len(k, 32);
    let mut input = b"sealpost/v1/rsa-pss".to_vec();
    input.extend_from_slice(&sender_fp);
    input.extend_from_slice(&recipient_fp);
    input.extend_from_slice(unsigned);
    let mut out = unsigned.to_vec();
    out.extend_from_slice(&signing.sign_with_rng(&mut sealpost::os_rng(), &input).to_vec());
    out
}

#[test]
fn messages_sealed_and_signed_by_python_open_here() {
    let doc: Value = serde_json::from_str(&pem("from_python.json")).unwrap();
    let mut rng = sealpost::os_rng();
    let policy = all_suites();
    for (name, fp) in doc["fingerprints"].as_object().unwrap() {
        assert_eq!(hex::encode(key(name).public_key().fingerprint()), fp.as_str().unwrap());
    }
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 9);
    for v in vectors {
        let sender = key(v["sender"].as_str().unwrap()).public_key();
        let recipient = key(v["recipient"].as_str().unwrap());
        let msg = hex::decode(v["message"].as_str().unwrap()).unwrap();
        let pt = hex::decode(v["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(msg[0], RSA_MESSAGE_VERSION);
        assert_eq!(recipient.open_message(&mut rng, &policy, &sender, &msg), Ok(pt));
        let mut other = msg.clone();
        other[3 + 2 + 10] ^= 1; // inside the wrapped key, which the signature covers
        assert_eq!(recipient.open_message(&mut rng, &policy, &sender, &other), Err(Error::InvalidSignature));
    }
}

#[test]
fn round_trip_between_2048_and_3072_in_both_directions_and_every_suite() {
    let mut rng = sealpost::os_rng();
    let policy = all_suites();
    for (from, to) in [("rsa2048", "rsa3072"), ("rsa3072", "rsa2048"), ("rsa3072", "rsa3072")] {
        let (sender, recipient) = (key(from), key(to));
        for suite in Suite::ALL {
            let msg = sender.seal_message(&mut rng, &recipient.public_key(), suite, b"content").unwrap();
            let (w, _, sig_at) = layout(&msg);
            assert_eq!(w * 8, recipient.public_key().bits());
            assert_eq!((msg.len() - sig_at) * 8, sender.public_key().bits());
            assert_eq!(recipient.open_message(&mut rng, &policy, &sender.public_key(), &msg), Ok(b"content".to_vec()));
        }
    }
}

#[test]
fn tampering_truncation_and_wrong_keys_are_refused_with_exact_errors() {
    let mut rng = sealpost::os_rng();
    let policy = all_suites();
    let (alice, bob) = (key("rsa2048"), key("rsa3072"));
    let msg = alice.seal_message(&mut rng, &bob.public_key(), Suite::Aes256Gcm, b"for bob only").unwrap();
    let open = |m: &[u8]| bob.open_message(&mut sealpost::os_rng(), &policy, &alice.public_key(), m);
    assert_eq!(open(&msg), Ok(b"for bob only".to_vec()));
    let mut t = msg.clone();
    t[0] = 1; // the unsigned, unbound format of earlier builds
    assert_eq!(open(&t), Err(Error::UnsupportedVersion(1)));
    t = msg.clone();
    t[1] = 2;
    assert_eq!(open(&t), Err(Error::Malformed("envelope type")));
    t = msg.clone();
    t[2] = 9;
    assert_eq!(open(&t), Err(Error::UnsupportedSuite(9)));
    t = msg.clone();
    t[2] = 2; // another allowed suite: the signature covers the suite byte
    assert_eq!(open(&t), Err(Error::InvalidSignature));
    // Every byte of wrapped key, salt, ciphertext, tag and signature.
    let (w, c, sig_at) = layout(&msg);
    for i in (5..5 + w + 16).chain(25 + w..25 + w + c).chain(sig_at..msg.len()) {
        let mut t = msg.clone();
        t[i] ^= 0x40;
        assert_eq!(open(&t), Err(Error::InvalidSignature), "byte {i}");
    }
    for len in 0..msg.len() {
        assert_eq!(open(&msg[..len]), Err(Error::Malformed("rsa message")), "length {len}");
    }
    let mut longer = msg.clone();
    longer.push(0);
    assert_eq!(open(&longer), Err(Error::Malformed("rsa message")));
    // Not for this recipient, or not from this sender.
    let mallory = key("mallory2048");
    assert_eq!(mallory.open_message(&mut rng, &policy, &alice.public_key(), &msg), Err(Error::InvalidSignature));
    assert_eq!(bob.open_message(&mut rng, &policy, &mallory.public_key(), &msg), Err(Error::InvalidSignature));
}

#[test]
fn a_signature_replaced_by_someone_elses_does_not_open() {
    let mut rng = sealpost::os_rng();
    let policy = all_suites();
    let (alice, bob, mallory) = (key("rsa2048"), key("rsa3072"), key("mallory2048"));
    let msg = alice.seal_message(&mut rng, &bob.public_key(), Suite::ChaCha20Poly1305, b"from alice").unwrap();
    let (_, _, sig_at) = layout(&msg);
    // Mallory strips Alice's signature and signs the same bytes herself,
    // correctly bound to her own fingerprint and Bob's: the signature now
    // verifies as Mallory's, but the content key was sealed with Alice's
    // fingerprint in the associated data, so the message does not open.
    let restamped =
        sign_as("mallory2048", mallory.public_key().fingerprint(), bob.public_key().fingerprint(), &msg[..sig_at]);
    assert_eq!(restamped.len(), msg.len());
    assert_eq!(
        bob.open_message(&mut rng, &policy, &mallory.public_key(), &restamped),
        Err(Error::AuthenticationFailed)
    );
    // The same helper, signing as Alice, reproduces a valid message: the
    // refusal above comes from the binding, not from the helper.
    let resigned = sign_as("rsa2048", alice.public_key().fingerprint(), bob.public_key().fingerprint(), &msg[..sig_at]);
    assert_eq!(bob.open_message(&mut rng, &policy, &alice.public_key(), &resigned), Ok(b"from alice".to_vec()));
    // A signature by Alice bound to another recipient does not verify for Bob.
    let misbound =
        sign_as("rsa2048", alice.public_key().fingerprint(), mallory.public_key().fingerprint(), &msg[..sig_at]);
    assert_eq!(bob.open_message(&mut rng, &policy, &alice.public_key(), &misbound), Err(Error::InvalidSignature));
}

/// A seeded generator that records the length of every draw.
struct Recording {
    inner: ChaCha20Rng,
    draws: Vec<usize>,
}

impl rand_core::TryRng for Recording {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.draws.push(4);
        Ok(self.inner.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.draws.push(8);
        Ok(self.inner.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.draws.push(dst.len());
        self.inner.fill_bytes(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Recording {}

#[test]
fn implicit_rejection_takes_the_same_steps_whether_oaep_decoding_succeeds_or_fails() {
    let policy = all_suites();
    let (alice, bob) = (key("rsa2048"), key("rsa3072"));
    let msg = alice.seal_message(&mut sealpost::os_rng(), &bob.public_key(), Suite::Aes256Gcm, b"hello").unwrap();
    let (w, _, sig_at) = layout(&msg);
    // Replace the wrapped key with other valid RSA-OAEP ciphertexts for Bob
    // (so the RSA step itself is the same) and sign as Alice, so that only
    // the OAEP decoding differs: under another label (OAEP fails), and of
    // a 16-byte key (OAEP succeeds, the length is wrong).
    let bob_rsa = rsa::RsaPrivateKey::from_pkcs8_pem(&pem("rsa3072.pem")).unwrap().to_public_key();
    let with_wrapped = |wrapped: Vec<u8>| {
        assert_eq!(wrapped.len(), w);
        let mut unsigned = msg[..sig_at].to_vec();
        unsigned[5..5 + w].copy_from_slice(&wrapped);
        sign_as("rsa2048", alice.public_key().fingerprint(), bob.public_key().fingerprint(), &unsigned)
    };
    let mut os = sealpost::os_rng();
    let wrong_label =
        bob_rsa.encrypt(&mut os, rsa::Oaep::<Sha256>::new_with_label(&b"another label"[..]), &[7u8; 32]).unwrap();
    let short_key = bob_rsa
        .encrypt(&mut os, rsa::Oaep::<Sha256>::new_with_label(&b"sealpost/v1/rsa-wrap"[..]), &[7u8; 16])
        .unwrap();
    let cases = [
        (msg.clone(), Ok(b"hello".to_vec())),
        (with_wrapped(wrong_label), Err(Error::AuthenticationFailed)),
        (with_wrapped(short_key), Err(Error::AuthenticationFailed)),
    ];
    let mut logs = Vec::new();
    for (m, expected) in cases {
        let mut rng = Recording { inner: ChaCha20Rng::from_seed([42; 32]), draws: Vec::new() };
        assert_eq!(bob.open_message(&mut rng, &policy, &alice.public_key(), &m), expected);
        logs.push(rng.draws);
    }
    assert_eq!(logs[0].first(), Some(&32), "the fallback key is drawn first");
    assert_eq!(logs[1], logs[0]);
    assert_eq!(logs[2], logs[0]);
}

#[test]
fn moduli_are_checked_in_bits_exactly_2048_or_3072() {
    // A 2041-bit modulus is 256 bytes long, but it is not a 2048-bit key.
    assert_eq!(RsaPrivateKey::from_pkcs8_pem(&pem("rsa2041.pem")).err(), Some(Error::WeakParameters));
    assert_eq!(RsaPublicKey::from_public_key_pem(&pem("rsa2041.pub.pem")).err(), Some(Error::WeakParameters));
    assert_eq!(RsaPublicKey::from_public_key_pem(&pem("rsa4096.pub.pem")).err(), Some(Error::WeakParameters));
    assert_eq!(RsaPublicKey::from_public_key_pem(&pem("rsa1024-weak.pub.pem")).err(), Some(Error::WeakParameters));
    let mut rng = sealpost::os_rng();
    for bits in [1024, 2041, 4096] {
        assert_eq!(RsaPrivateKey::generate(&mut rng, bits).err(), Some(Error::WeakParameters), "{bits}");
    }
    assert_eq!(key("rsa2048").public_key().bits(), 2048);
    assert_eq!(key("rsa3072").public_key().bits(), 3072);
}

#[test]
fn keys_import_and_export_in_pem_and_der_and_fingerprint_their_spki() {
    let k = key("rsa2048");
    let der = k.to_pkcs8_der().unwrap();
    let again = RsaPrivateKey::from_pkcs8_der(&der).unwrap();
    assert_eq!(again.public_key(), k.public_key());
    let pem_out = k.to_pkcs8_pem().unwrap();
    assert!(pem_out.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(RsaPrivateKey::from_pkcs8_pem(&pem_out).unwrap().public_key(), k.public_key());
    let pub_pem = pem("rsa2048.pub.pem");
    let public = RsaPublicKey::from_public_key_pem(&pub_pem).unwrap();
    assert_eq!(public, k.public_key());
    assert_eq!(public.to_public_key_pem().unwrap().trim(), pub_pem.trim());
    let spki = public.to_public_key_der().unwrap();
    assert_eq!(RsaPublicKey::from_public_key_der(&spki).unwrap(), public);
    assert_eq!(public.fingerprint(), <[u8; 32]>::from(Sha256::digest(&spki)));
    assert_ne!(public.fingerprint(), key("rsa3072").public_key().fingerprint());
    assert!(!format!("{k:?}").contains(&format!("{:?}", &der[..4])));
    assert_eq!(format!("{k:?}"), "RsaPrivateKey(2048 bits, <redacted>)");
}

#[test]
fn malformed_keys_are_refused() {
    assert_eq!(RsaPublicKey::from_public_key_pem("not a key").err(), Some(Error::Malformed("rsa public key")));
    assert_eq!(RsaPrivateKey::from_pkcs8_der(&[0x30, 0x03, 1, 2, 3]).err(), Some(Error::Malformed("rsa private key")));
}

#[test]
fn the_policy_decides_which_suites_open() {
    let mut rng = sealpost::os_rng();
    let k = key("rsa2048");
    let msg = k.seal_message(&mut rng, &k.public_key(), Suite::Aes256CbcHmacSha256, b"cbc").unwrap();
    assert_eq!(
        k.open_message(&mut rng, &SessionPolicy::default(), &k.public_key(), &msg),
        Err(Error::SuiteNotAllowed(4))
    );
    assert_eq!(k.open_message(&mut rng, &all_suites(), &k.public_key(), &msg), Ok(b"cbc".to_vec()));
}
