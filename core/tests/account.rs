//! Account state that must hold under load and over time: the replay
//! memory of first messages cannot be flushed, rotation keeps the account
//! pickle restorable, and an old version-1-only bundle of a peer that has
//! published version 2 is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{T0, prekey_message, published_bundle, rng};
use sealpost::hazmat::{MAX_BASE_KEYS_PER_PREKEY, MAX_SIGNED_PREKEYS};
use sealpost::{Account, Error, PickleKey, PrekeyBundle, Session, SessionPolicy, SymmetricKey};

fn key() -> PickleKey {
    PickleKey::Key(SymmetricKey::from_bytes([4; 32]))
}

/// `account`'s bundle as the relay serves it when it has no one-time prekey.
fn bare_bundle(account: &Account, policy: &SessionPolicy) -> PrekeyBundle {
    PrekeyBundle::from_bytes(&account.bundle(policy).unwrap().to_bytes()).unwrap()
}

/// A first message from `from` to the owner of `bundle`.
fn first_message(r: &mut rand_chacha::ChaCha20Rng, from: &mut Account, bundle: &PrekeyBundle) -> Vec<u8> {
    let mut s = Session::initiate(r, from, bundle, &SessionPolicy::default(), T0).unwrap();
    s.encrypt(r, T0, b"first").unwrap()
}

/// More genuine session starts than the old global memory held (2000),
/// and then every one the signed prekey can remember: the first message
/// stays refused, before and after a pickle round trip, and once the
/// memory is full the prekey refuses new starts instead of forgetting.
#[test]
fn a_captured_first_message_stays_refused_while_its_prekey_is_kept() {
    let mut r = rng(120);
    let policy = SessionPolicy::default();
    let mut alice = Account::new(&mut r, T0);
    let mut bob = Account::new(&mut r, T0);
    let bundle = bare_bundle(&bob, &policy);
    let captured = first_message(&mut r, &mut alice, &bundle);
    bob.accept(&policy, T0, &prekey_message(&captured)).unwrap();
    for i in 1..5000 {
        let m = first_message(&mut r, &mut alice, &bundle);
        bob.accept(&policy, T0, &prekey_message(&m)).unwrap_or_else(|e| panic!("start {i}: {e}"));
    }
    assert_eq!(bob.accept(&policy, T0, &prekey_message(&captured)).err(), Some(Error::Replay));
    let mut bob = Account::from_pickle(&bob.pickle(&mut r, &key(), b"bob").unwrap(), &key(), b"bob").unwrap();
    assert_eq!(bob.accept(&policy, T0, &prekey_message(&captured)).err(), Some(Error::Replay));

    for _ in 5000..MAX_BASE_KEYS_PER_PREKEY {
        let m = first_message(&mut r, &mut alice, &bundle);
        bob.accept(&policy, T0, &prekey_message(&m)).unwrap();
    }
    // Full: a new start without a one-time prekey is refused, nothing forgotten.
    let refused = first_message(&mut r, &mut alice, &bundle);
    assert_eq!(bob.accept(&policy, T0, &prekey_message(&refused)).err(), Some(Error::PrekeyExhausted));
    assert_eq!(bob.accept(&policy, T0, &prekey_message(&captured)).err(), Some(Error::Replay));
    // A start with a one-time prekey still works (the spent prekey refuses its replay).
    let with_otk = published_bundle(&mut r, &mut bob, &policy);
    let m = first_message(&mut r, &mut alice, &with_otk);
    bob.accept(&policy, T0, &prekey_message(&m)).unwrap();
    assert_eq!(bob.accept(&policy, T0, &prekey_message(&m)).err(), Some(Error::UnknownPrekey));
    // Maintenance rotates the exhausted prekey at once; the new bundle works
    // and the old prekey (with its memory) is still kept.
    assert!(bob.maintain(&mut r, T0 + 1));
    let fresh = bare_bundle(&bob, &policy);
    assert_ne!(fresh.signed_prekey().id, bundle.signed_prekey().id);
    let m = first_message(&mut r, &mut alice, &fresh);
    bob.accept(&policy, T0 + 1, &prekey_message(&m)).unwrap();
    assert_eq!(bob.accept(&policy, T0 + 1, &prekey_message(&captured)).err(), Some(Error::Replay));
}

/// Rotating far more often than the old decoder's limit (1024 signed
/// prekeys) keeps the pickle restorable: only the newest
/// `MAX_SIGNED_PREKEYS` are kept, and a bundle of each of them still works.
#[test]
fn an_account_rotated_1100_times_restores_from_its_pickle() {
    let mut r = rng(121);
    let policy = SessionPolicy::default();
    let mut alice = Account::new(&mut r, T0);
    let mut bob = Account::new(&mut r, T0);
    let mut bundles = Vec::new();
    for i in 0..1100u64 {
        bob.rotate_signed_prekey(&mut r, T0 + i);
        bundles.push(bare_bundle(&bob, &policy));
    }
    let pickle = bob.pickle(&mut r, &key(), b"").unwrap();
    let mut restored = Account::from_pickle(&pickle, &key(), b"").unwrap();
    assert_eq!(restored.bundle(&policy).unwrap().signed_prekey(), bob.bundle(&policy).unwrap().signed_prekey());
    let (gone, kept) = bundles.split_at(bundles.len() - MAX_SIGNED_PREKEYS);
    let m = first_message(&mut r, &mut alice, gone.last().unwrap());
    assert_eq!(restored.accept(&policy, T0, &prekey_message(&m)).err(), Some(Error::UnknownPrekey));
    for b in kept {
        let m = first_message(&mut r, &mut alice, b);
        restored.accept(&policy, T0, &prekey_message(&m)).unwrap();
    }
}

/// Once Bob has published version 2, Alice refuses a version-1-only
/// bundle of his (an old bundle served again), even with a policy that
/// allows version 1, across a pickle round trip, until the app allows it.
#[test]
fn an_old_version_one_bundle_of_a_version_two_peer_is_refused() {
    let mut r = rng(122);
    let classical = SessionPolicy { min_version: 1, ..SessionPolicy::default() };
    let mut alice = Account::new(&mut r, T0);
    let bob = Account::new(&mut r, T0);
    let carol = Account::new(&mut r, T0);
    let old = |who: &Account| {
        PrekeyBundle::from_bytes(&sealpost::hazmat::classical_bundle(who, &classical).unwrap().to_bytes()).unwrap()
    };
    // Carol was never seen with version 2: her version-1 bundle is fine.
    assert_eq!(Session::initiate(&mut r, &mut alice, &old(&carol), &classical, T0).unwrap().version(), 1);
    let current = bare_bundle(&bob, &classical);
    assert_eq!(current.versions(), [2, 1]);
    assert_eq!(Session::initiate(&mut r, &mut alice, &current, &classical, T0).unwrap().version(), 2);
    assert_eq!(Session::initiate(&mut r, &mut alice, &old(&bob), &classical, T0).err(), Some(Error::Downgrade));
    let mut alice = Account::from_pickle(&alice.pickle(&mut r, &key(), b"alice").unwrap(), &key(), b"alice").unwrap();
    assert_eq!(Session::initiate(&mut r, &mut alice, &old(&bob), &classical, T0).err(), Some(Error::Downgrade));
    // Carol publishing version 2 later protects her too.
    Session::initiate(&mut r, &mut alice, &bare_bundle(&carol, &classical), &classical, T0).unwrap();
    assert_eq!(Session::initiate(&mut r, &mut alice, &old(&carol), &classical, T0).err(), Some(Error::Downgrade));
    // The app's explicit decision, for Bob only.
    assert!(alice.allow_version_downgrade(bob.identity()));
    assert_eq!(Session::initiate(&mut r, &mut alice, &old(&bob), &classical, T0).unwrap().version(), 1);
    assert_eq!(Session::initiate(&mut r, &mut alice, &old(&carol), &classical, T0).err(), Some(Error::Downgrade));
}
