//! `Debug` of every secret-holding type shows no key bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::hazmat::{SuiteKeys, identity_secret_bytes};
use sealpost::{Account, Envelope, GroupSession, PickleKey, PrekeyBundle, Session, SessionPolicy, Suite, SymmetricKey};

/// Every rendering of `secret` a Debug implementation might produce.
fn renderings(secret: &[u8]) -> Vec<String> {
    let part = &secret[..8];
    vec![
        part.iter().map(|b| format!("{b:02x}")).collect(),
        part.iter().map(|b| format!("{b:02X}")).collect(),
        format!("{:?}", part).trim_end_matches(']').to_owned(),
        part.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", "),
    ]
}

fn assert_hidden(shown: &str, secret: &[u8], what: &str) {
    for r in renderings(secret) {
        assert!(!shown.contains(&r), "{what}: Debug shows secret bytes ({r}) in {shown}");
    }
}

/// Fails on anything in `shown` that looks like key material printed
/// whole, in any of the renderings `Debug` gives bytes: a run of 40 or more
/// hex digits, a run of 16 or more decimal digits, or a list of 8 or more
/// comma-separated numbers (how `[u8]` and `Vec<u8>` print).
fn assert_no_byte_dump(shown: &str, what: &str) {
    let chars: Vec<char> = shown.chars().collect();
    assert!(!chars.windows(40).any(|w| w.iter().all(|c| c.is_ascii_hexdigit())), "{what}: hex run in {shown}");
    assert!(!chars.windows(16).any(|w| w.iter().all(|c| c.is_ascii_digit())), "{what}: digit run in {shown}");
    for piece in shown.split(|c: char| !(c.is_ascii_digit() || c == ',' || c == ' ')) {
        let numbers = piece.split(',').filter(|n| !n.trim().is_empty() && n.trim().chars().all(|c| c.is_ascii_digit()));
        assert!(numbers.count() < 8, "{what}: a list of numbers in {shown}");
    }
}

#[test]
fn the_byte_dump_check_catches_every_rendering() {
    let key = [0x9Cu8; 32];
    for rendering in [
        format!("{key:?}"),
        format!("{:?}", key.to_vec()),
        key.iter().map(|b| format!("{b:02x}")).collect(),
        "1".repeat(20),
    ] {
        let caught = std::panic::catch_unwind(|| assert_no_byte_dump(&format!("Session {{ k: {rendering} }}"), "t"));
        assert!(caught.is_err(), "not caught: {rendering}");
    }
    assert_no_byte_dump("Session { id: 12, epoch: 3, suite: Aes256Gcm, counters: (4, 5) }", "t");
}

#[test]
fn no_debug_output_reveals_key_bytes() {
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let policy = SessionPolicy::default();

    let key = SymmetricKey::from_bytes([0x5A; 32]);
    assert_hidden(&format!("{key:?}"), &[0x5A; 32], "SymmetricKey");
    assert_hidden(&format!("{:?}", PickleKey::Key(key.clone())), &[0x5A; 32], "PickleKey");
    assert_hidden(&format!("{:?}", PickleKey::passphrase(b"hunter2 hunter2")), b"hunter2 hunter2", "PickleKey");

    let suite_keys = SuiteKeys::derive(Suite::Aes256CbcHmacSha256, &key, &[2; 16]).unwrap();
    for secret in [&suite_keys.enc_key()[..], &suite_keys.mac_key()[..]] {
        assert_hidden(&format!("{suite_keys:?}"), secret, "SuiteKeys");
    }

    let mut bob = Account::new(&mut rng, 1_700_000_000);
    let mut alice = Account::new(&mut rng, 1_700_000_000);
    let (seed, dh) = identity_secret_bytes(&bob);
    for shown in [format!("{bob:?}"), format!("{:?}", sealpost::hazmat::identity_keys(&bob))] {
        assert_hidden(&shown, &seed, "Account/IdentityKeyPair");
        assert_hidden(&shown, &dh, "Account/IdentityKeyPair");
    }

    // Sessions: their keys are not reachable, but a pickle's plaintext holds
    // them all; Debug must show none of its 8-byte windows of key material.
    let otk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
    let bundle =
        PrekeyBundle::from_bytes(&bob.bundle(&policy).unwrap().with_one_time_prekey(otk).unwrap().to_bytes()).unwrap();
    let mut a = Session::initiate(&mut rng, &mut alice, &bundle, &policy, 1_700_000_000).unwrap();
    let first = a.encrypt(&mut rng, 1_700_000_000, b"x").unwrap();
    let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { panic!() };
    let (b, _) = bob.accept(&policy, 1_700_000_000, &m).unwrap();
    let shown = format!("{a:?} {b:?}");
    assert!(shown.len() < 600, "Session Debug is a short summary: {shown}");
    assert_no_byte_dump(&shown, "Session");

    let id = Account::new(&mut rng, 0);
    let group = GroupSession::new(&mut rng, b"g", &id, &policy).unwrap();
    let skd = group.distribution();
    assert_hidden(&format!("{group:?}"), skd.chain_key.as_bytes(), "GroupSession");
    assert_hidden(&format!("{skd:?}"), skd.chain_key.as_bytes(), "SenderKeyDistribution");

    let rsa = sealpost::RsaPrivateKey::from_pkcs8_pem(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/rsa/rsa2048.pem")).unwrap(),
    )
    .unwrap();
    let der = rsa.to_pkcs8_der().unwrap();
    // The private exponent sits deep in the DER; check a window from its middle.
    assert_hidden(&format!("{rsa:?}"), &der[200..216], "RsaPrivateKey");
}
