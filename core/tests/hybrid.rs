//! The hybrid post-quantum session start (protocol version 2, ML-KEM-768):
//! on by default, classical only when the policy allows it, and stripping
//! the post-quantum part in transit never opens a session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{T0, pair_with, prekey_message};
use sealpost::{Error, PrekeyBundle, Session, SessionPolicy};

fn classical() -> SessionPolicy {
    SessionPolicy { min_version: 1, ..SessionPolicy::default() }
}

#[test]
fn sessions_are_hybrid_by_default() {
    let mut p = pair_with(90, SessionPolicy::default());
    assert_eq!(p.bundle.versions(), [2]);
    assert_eq!(p.bundle.pq_prekey().map(<[u8]>::len), Some(sealpost::hazmat::PQ_PREKEY_LEN));
    let mut a = Session::initiate(&mut p.rng, &mut p.alice, &p.bundle, &p.policy, T0).unwrap();
    assert_eq!(a.version(), 2);
    let m = prekey_message(&a.encrypt(&mut p.rng, T0, b"post-quantum hello").unwrap());
    assert_eq!(m.version, 2);
    assert_eq!(m.pq_ciphertext.as_ref().map(Vec::len), Some(sealpost::hazmat::PQ_CIPHERTEXT_LEN));
    let (mut b, pt) = p.bob.accept(&p.policy, T0, &m).unwrap();
    assert_eq!(pt, b"post-quantum hello");
    let r = b.encrypt(&mut p.rng, T0, b"reply").unwrap();
    assert_eq!(a.decrypt(T0, &r).unwrap(), b"reply");
}

#[test]
fn a_classical_peer_is_reached_only_when_the_policy_allows_it() {
    let mut p = pair_with(91, classical());
    let old = sealpost::hazmat::classical_bundle(&p.bob, &p.policy).unwrap();
    let old = PrekeyBundle::from_bytes(&old.to_bytes()).unwrap();
    assert_eq!((old.versions(), old.pq_prekey()), (&[1u8][..], None));
    // The default policy refuses.
    assert_eq!(
        Session::initiate(&mut p.rng, &mut p.alice, &old, &SessionPolicy::default(), T0).err(),
        Some(Error::UnsupportedVersion(1))
    );
    // Allowed on both sides: a version 1 session.
    let mut a = Session::initiate(&mut p.rng, &mut p.alice, &old, &classical(), T0).unwrap();
    assert_eq!(a.version(), 1);
    let m = prekey_message(&a.encrypt(&mut p.rng, T0, b"classical").unwrap());
    assert_eq!(m.pq_ciphertext, None);
    // A responder whose policy requires version 2 refuses it.
    assert_eq!(p.bob.clone().accept(&SessionPolicy::default(), T0, &m).err(), Some(Error::UnsupportedVersion(1)));
    assert_eq!(p.bob.accept(&classical(), T0, &m).unwrap().1, b"classical");
}

#[test]
fn stripping_the_post_quantum_part_never_opens_a_session() {
    let mut p = pair_with(92, classical());
    // A bundle that offers version 2 and whose ML-KEM key is removed: the
    // signature breaks (or the bundle is malformed), whatever else is edited.
    let wire = p.bundle.to_bytes();
    let presence = wire.len() - 64 - 1 - 100 - sealpost::hazmat::PQ_PREKEY_LEN - 1;
    assert_eq!(wire[presence], 1);
    let mut stripped = wire[..presence].to_vec();
    stripped.push(0);
    stripped.extend_from_slice(&wire[presence + 1 + sealpost::hazmat::PQ_PREKEY_LEN..]);
    assert!(PrekeyBundle::from_bytes(&stripped).is_err());
    let mut edited = stripped.clone();
    edited[1 + 128 + 1] = 1; // versions [2, 1] -> [1, 1]: duplicates, or the signature fails
    assert!(PrekeyBundle::from_bytes(&edited).is_err());

    // A hybrid first message rewritten as a classical one in transit.
    let mut a = Session::initiate(&mut p.rng, &mut p.alice, &p.bundle, &p.policy, T0).unwrap();
    assert_eq!(a.version(), 2);
    let m = prekey_message(&a.encrypt(&mut p.rng, T0, b"secret").unwrap());
    let mut downgraded = m.clone();
    downgraded.version = 1;
    downgraded.pq_ciphertext = None;
    assert_eq!(p.bob.clone().accept(&classical(), T0, &downgraded).err(), Some(Error::AuthenticationFailed));
    // A changed ML-KEM ciphertext: implicit rejection gives another secret.
    let mut tampered = m.clone();
    tampered.pq_ciphertext.as_mut().unwrap()[100] ^= 1;
    assert_eq!(p.bob.clone().accept(&classical(), T0, &tampered).err(), Some(Error::AuthenticationFailed));
    // The genuine message still opens.
    assert_eq!(p.bob.accept(&classical(), T0, &m).unwrap().1, b"secret");
}

#[test]
fn ml_kem_matches_an_independent_implementation() {
    // test-vectors/mlkem.json: keys from seeds and encapsulations made by
    // OpenSSL (through Python's cryptography); Sealpost derives the same
    // public keys and decapsulates to the same secrets.
    let path = format!("{}/../test-vectors/mlkem.json", env!("CARGO_MANIFEST_DIR"));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 3);
    for v in vectors {
        let seed: [u8; 64] = hex::decode(v["seed"].as_str().unwrap()).unwrap().try_into().unwrap();
        let ek = hex::decode(v["encapsulation_key"].as_str().unwrap()).unwrap();
        let ct = hex::decode(v["ciphertext"].as_str().unwrap()).unwrap();
        let ss = hex::decode(v["shared_secret"].as_str().unwrap()).unwrap();
        assert_eq!(sealpost::hazmat::ml_kem_public(&seed), ek);
        assert_eq!(sealpost::hazmat::ml_kem_decapsulate(&seed, &ct).unwrap().to_vec(), ss);
    }
}

#[test]
fn ml_kem_768_passes_the_accumulated_known_answer_test() {
    // C2SP CCTV "accumulated pq-crystals vectors" for ML-KEM-768: inputs
    // come from one SHAKE-128 stream over the empty string (d, z, m, and a
    // random ciphertext per test); ek, dk, ct, k and the implicit-rejection
    // k are absorbed by a second SHAKE-128, whose first 32 bytes after
    // 10 000 tests are the value below. CCTV publishes f7db260e... for the
    // FIPS 203 draft, whose key generation hashes G(d); the final standard
    // hashes G(d || k), and BoringSSL's and LibreSSL's ML-KEM tests publish
    // the final-standard value used here for the same procedure. This covers the key
    // generation from a seed and the decapsulation Sealpost calls, and the
    // encapsulation with chosen randomness its initiator performs.
    #![allow(deprecated)] // the expanded (legacy) dk encoding is what the vectors hash
    use ml_kem::kem::{Decapsulate, KeyExport};
    use ml_kem::{DecapsulationKey, EncapsulationKey, ExpandedKeyEncoding, MlKem768};
    use shake::{ExtendableOutput, Shake128, Update, XofReader};

    let mut inputs = Shake128::default().finalize_xof();
    let mut outputs = Shake128::default();
    let mut first = [0u8; 16];
    let mut probe = Shake128::default().finalize_xof();
    probe.read(&mut first);
    assert_eq!(hex::encode(first), "7f9c2ba4e88f827d616045507605853e");
    for _ in 0..10_000 {
        let mut seed = [0u8; 64];
        let mut m = [0u8; 32];
        let mut random_ct = [0u8; sealpost::hazmat::PQ_CIPHERTEXT_LEN];
        inputs.read(&mut seed);
        inputs.read(&mut m);
        inputs.read(&mut random_ct);
        let ek = sealpost::hazmat::ml_kem_public(&seed);
        let dk = DecapsulationKey::<MlKem768>::from_seed(seed.into());
        assert_eq!(dk.encapsulation_key().to_bytes().as_slice(), ek.as_slice());
        let encaps = EncapsulationKey::<MlKem768>::new(ek.as_slice().try_into().unwrap()).unwrap();
        let (ct, k) = encaps.encapsulate_deterministic(&m.into());
        assert_eq!(sealpost::hazmat::ml_kem_decapsulate(&seed, &ct).unwrap().as_slice(), k.as_slice());
        let rejected = dk.decapsulate(&random_ct.into());
        assert_eq!(sealpost::hazmat::ml_kem_decapsulate(&seed, &random_ct).unwrap().as_slice(), rejected.as_slice());
        outputs.update(&ek);
        outputs.update(&dk.to_expanded_bytes());
        outputs.update(&ct);
        outputs.update(&k);
        outputs.update(&rejected);
    }
    let mut digest = [0u8; 32];
    outputs.finalize_xof().read(&mut digest);
    assert_eq!(hex::encode(digest), "f959d18d3d1180121433bf0e05f11e7908cf9d03edc150b2b07cb90bef5bc1c1");
}
