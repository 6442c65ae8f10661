//! Public-key rules at parse time (PROTOCOL.md 4.1, 5.4, 8.2): low-order
//! X25519 keys and out-of-range ML-KEM keys are refused with
//! `Error::InvalidKey` wherever they arrive, before any signature is
//! checked; and the hazmat X25519 / ML-KEM entry points that let other
//! implementations run published vectors against this core.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use sealpost::OneTimePrekey;
use sealpost::hazmat::{check_x25519_public, ml_kem_decapsulate, ml_kem_encapsulate, ml_kem_public, x25519};
use sealpost::{Account, Error, PrekeyBundle, Session, SessionPolicy, Suite};
use sealpost::{Envelope, RatchetHeader, RatchetMessage};

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Low-order u-coordinates (RFC 7748 section 7 asks to check for them; the
/// list is the one in the curve's published small-subgroup analysis), in
/// canonical and non-canonical encodings, with and without bit 255.
fn low_order() -> Vec<[u8; 32]> {
    let base = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    let mut all = Vec::new();
    for b in base {
        let k = h32(b);
        let mut top = k;
        top[31] |= 0x80;
        all.extend([k, top]);
    }
    all
}

#[test]
fn hazmat_x25519_reproduces_rfc7748_and_zeroes_on_low_order_points() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("kat/x25519.json")).unwrap();
    for v in doc["vectors"].as_array().unwrap() {
        let out = x25519(&h32(v["scalar"].as_str().unwrap()), &h32(v["u"].as_str().unwrap()));
        assert_eq!(hex::encode(out), v["output"].as_str().unwrap(), "{}", v["name"]);
    }
    let dh = &doc["diffie_hellman"][0];
    let a = h32(dh["alice_private"].as_str().unwrap());
    let b_pub = h32(dh["bob_public"].as_str().unwrap());
    assert_eq!(hex::encode(x25519(&a, &b_pub)), dh["shared"].as_str().unwrap());
    // RFC 7748 section 6.1: the base point is u = 9.
    let mut nine = [0u8; 32];
    nine[0] = 9;
    assert_eq!(hex::encode(x25519(&a, &nine)), dh["alice_public"].as_str().unwrap());
    assert_eq!(check_x25519_public(&b_pub), Ok(()));
    for low in low_order() {
        assert_eq!(x25519(&a, &low), [0; 32]);
        assert_eq!(check_x25519_public(&low), Err(Error::InvalidKey));
    }
}

#[test]
fn hazmat_ml_kem_encapsulation_is_deterministic_and_checks_the_modulus() {
    let seed = [3u8; 64];
    let ek = ml_kem_public(&seed);
    let (ct, ss) = ml_kem_encapsulate(&ek, &[7; 32]).unwrap();
    assert_eq!(ml_kem_encapsulate(&ek, &[7; 32]).unwrap(), (ct.clone(), ss));
    assert_ne!(ml_kem_encapsulate(&ek, &[8; 32]).unwrap().1, ss);
    assert_eq!(ml_kem_decapsulate(&seed, &ct).unwrap(), ss);
    // Coefficient 0 set to 0xfff >= q = 3329: fails the FIPS 203 modulus check.
    let mut bad = ek.clone();
    bad[0] = 0xff;
    bad[1] |= 0x0f;
    assert_eq!(ml_kem_encapsulate(&bad, &[7; 32]), Err(Error::InvalidKey));
    assert_eq!(ml_kem_encapsulate(&ek[..1183], &[7; 32]), Err(Error::InvalidKey));
}

/// Where the signed prekey's key and the ML-KEM key sit in a bundle.
fn offsets(wire: &[u8]) -> (usize, usize) {
    let nv = usize::from(wire[129]);
    let ns = usize::from(wire[130 + nv]);
    let spk = 131 + nv + ns + 4;
    (spk, spk + 32 + 8 + 1)
}

#[test]
fn bundle_with_a_bad_key_is_refused_before_its_signatures() {
    let mut rng = common::rng(60);
    let mut account = Account::new(&mut rng, common::T0);
    let otk = account.generate_one_time_prekeys(&mut rng, 1)[0];
    let wire = account.bundle(&SessionPolicy::default()).unwrap().with_one_time_prekey(otk).unwrap().to_bytes();
    assert!(PrekeyBundle::from_bytes(&wire).is_ok());
    let (spk, pq) = offsets(&wire);
    assert_eq!(wire[pq - 1], 1, "the default bundle carries an ML-KEM prekey");
    let otk_key = wire.len() - 96;
    for low in low_order() {
        for at in [33, spk, otk_key] {
            let mut t = wire.clone();
            t[at..at + 32].copy_from_slice(&low);
            assert_eq!(PrekeyBundle::from_bytes(&t), Err(Error::InvalidKey), "key at {at}");
        }
    }
    let mut t = wire.clone();
    t[pq + 2] = 0xff; // coefficient 1 = 0xff << 4 | (t[pq+1] >> 4) >= 3329
    assert_eq!(PrekeyBundle::from_bytes(&t), Err(Error::InvalidKey));
    // A one-time prekey on its own (as uploaded to a relay).
    let mut o = otk.to_bytes();
    o[4..36].copy_from_slice(&[0; 32]);
    assert_eq!(OneTimePrekey::from_bytes(&o), Err(Error::InvalidKey));
    let low_otk = OneTimePrekey { key: [0; 32], ..otk };
    assert_eq!(low_otk.verify(account.identity()), Err(Error::InvalidKey));
}

#[test]
fn envelopes_with_low_order_keys_are_refused() {
    let header = RatchetHeader {
        ratchet_key: [9; 32],
        epoch: 0,
        peer_epoch: 0,
        counter: 0,
        prev_count: 0,
        prev_ratchet_key: [0; 32],
        prev_peer_epoch: 0,
        salt: [1; 16],
    };
    let ok = RatchetMessage { version: 1, suite: Suite::Aes256Gcm, header, ciphertext: vec![0; 20] };
    assert!(Envelope::from_bytes(&ok.to_bytes().unwrap()).is_ok());
    for low in low_order() {
        let mut m = ok.clone();
        m.header.ratchet_key = low;
        assert_eq!(Envelope::from_bytes(&m.to_bytes().unwrap()), Err(Error::InvalidKey));
        if low != [0; 32] {
            let mut m = ok.clone();
            m.header.prev_ratchet_key = low;
            assert_eq!(Envelope::from_bytes(&m.to_bytes().unwrap()), Err(Error::InvalidKey));
        }
    }
    // A prekey message: its base key, and its sender identity's X25519 key.
    let mut p = common::pair_with(61, SessionPolicy::default());
    let mut a = Session::initiate(&mut p.rng, &mut p.alice, &p.bundle, &p.policy, common::T0).unwrap();
    let first = a.encrypt(&mut p.rng, common::T0, b"hi").unwrap();
    let Ok(Envelope::Prekey(msg)) = Envelope::from_bytes(&first) else { panic!("a prekey message") };
    for low in low_order() {
        let mut m = msg.clone();
        m.base_key = low;
        assert_eq!(Envelope::from_bytes(&m.to_bytes().unwrap()), Err(Error::InvalidKey));
    }
    let mut wire = msg.to_bytes().unwrap();
    wire[3 + 32..3 + 64].copy_from_slice(&[0; 32]);
    assert_eq!(Envelope::from_bytes(&wire), Err(Error::InvalidKey));
}
