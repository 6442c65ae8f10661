//! Pickles: accounts and sessions survive serialize/restore under a key or
//! a passphrase; wrong keys, truncation and any changed byte are typed
//! errors; a session restored from an older pickle never reuses a key and
//! nonce and its peer still decrypts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{T0, conversation, pair_with, prekey_message};
use sealpost::hazmat::message_keys;
use sealpost::{Account, Error, PickleKey, Session, SessionPolicy, SymmetricKey};

fn key(b: u8) -> PickleKey {
    PickleKey::Key(SymmetricKey::from_bytes([b; 32]))
}

#[test]
fn account_round_trips_and_keeps_its_prekeys() {
    let mut p = pair_with(50, SessionPolicy::default());
    let pickle = p.bob.pickle(&mut p.rng, &key(1), b"").unwrap();
    let mut restored = Account::from_pickle(&pickle, &key(1), b"").unwrap();
    assert_eq!(restored.identity(), p.bob.identity());
    assert_eq!(restored.one_time_prekey_count(), p.bob.one_time_prekey_count());
    // The restored account answers a session started from the old bundle.
    let mut a = Session::initiate(&mut p.rng, &mut p.alice, &p.bundle, &p.policy, T0).unwrap();
    let m = a.encrypt(&mut p.rng, T0, b"to the restored account").unwrap();
    let (_, pt) = restored.accept(&p.policy, T0, &prekey_message(&m)).unwrap();
    assert_eq!(pt, b"to the restored account");
    // And it remembers the base key after its own round trip.
    let again = Account::from_pickle(&restored.pickle(&mut p.rng, &key(1), b"").unwrap(), &key(1), b"").unwrap();
    let mut again = again;
    assert_eq!(again.accept(&p.policy, T0, &prekey_message(&m)).err(), Some(Error::Replay));
}

#[test]
fn passphrase_pickles_store_salt_and_iterations() {
    let mut p = pair_with(51, SessionPolicy::default());
    let pass = PickleKey::passphrase(b"correct horse battery staple");
    let pickle = p.alice.pickle(&mut p.rng, &pass, b"").unwrap();
    assert_eq!(pickle[2], 2, "mode byte: passphrase");
    let iterations = u32::from_be_bytes(pickle[19..23].try_into().unwrap());
    assert!(iterations >= 600_000);
    let restored = Account::from_pickle(&pickle, &pass, b"").unwrap();
    assert_eq!(restored.identity(), p.alice.identity());
    assert_eq!(
        Account::from_pickle(&pickle, &PickleKey::passphrase(b"wrong"), b"").err(),
        Some(Error::AuthenticationFailed)
    );
    // Same passphrase, another pickle: a fresh salt each time.
    let other = p.alice.pickle(&mut p.rng, &pass, b"").unwrap();
    assert_ne!(pickle[3..19], other[3..19]);
}

#[test]
fn session_pickles_continue_the_conversation() {
    let (mut rng, a, b) = conversation(52, SessionPolicy::default());
    let mut a = Session::from_pickle(&a.pickle(&mut rng, &key(2), b"").unwrap(), &key(2), b"").unwrap();
    let mut b = Session::from_pickle(&b.pickle(&mut rng, &key(3), b"").unwrap(), &key(3), b"").unwrap();
    for i in 0..10u8 {
        let m = a.encrypt(&mut rng, T0 + u64::from(i), &[i]).unwrap();
        assert_eq!(b.decrypt(T0 + u64::from(i), &m).unwrap(), [i]);
        let r = b.encrypt(&mut rng, T0 + u64::from(i), &[i, i]).unwrap();
        assert_eq!(a.decrypt(T0 + u64::from(i), &r).unwrap(), [i, i]);
    }
    assert_eq!(a.safety_number(), b.safety_number());
}

#[test]
fn pickle_keeps_skipped_keys_and_replay_state() {
    let (mut rng, mut a, mut b) = conversation(53, SessionPolicy::default());
    let m1 = a.encrypt(&mut rng, T0, b"1").unwrap();
    let m2 = a.encrypt(&mut rng, T0, b"2").unwrap();
    assert_eq!(b.decrypt(T0, &m2).unwrap(), b"2");
    let mut b = Session::from_pickle(&b.pickle(&mut rng, &key(4), b"").unwrap(), &key(4), b"").unwrap();
    assert_eq!(b.skipped_key_count(), 1);
    assert_eq!(b.decrypt(T0, &m1).unwrap(), b"1");
    assert_eq!(b.decrypt(T0, &m2).err(), Some(Error::Replay));
}

#[test]
fn wrong_key_truncation_and_every_changed_byte_are_errors() {
    let (mut rng, a, _) = conversation(54, SessionPolicy::default());
    let pickle = a.pickle(&mut rng, &key(5), b"").unwrap();
    assert_eq!(Session::from_pickle(&pickle, &key(6), b"").err(), Some(Error::AuthenticationFailed));
    assert!(Session::from_pickle(&pickle, &PickleKey::passphrase(b"x"), b"").is_err());
    for len in 0..pickle.len() {
        assert!(Session::from_pickle(&pickle[..len], &key(5), b"").is_err(), "truncated to {len}");
    }
    for i in 0..pickle.len() {
        let mut t = pickle.clone();
        t[i] ^= 0x04;
        assert!(Session::from_pickle(&t, &key(5), b"").is_err(), "byte {i} changed");
    }
    // A pickle of another kind is refused.
    let mut p = pair_with(55, SessionPolicy::default());
    let account = p.alice.pickle(&mut p.rng, &key(5), b"").unwrap();
    assert_eq!(Session::from_pickle(&account, &key(5), b"").err(), Some(Error::Malformed("pickle kind")));
    assert_eq!(Account::from_pickle(&pickle, &key(5), b"").err(), Some(Error::Malformed("pickle kind")));
    assert_eq!(format!("{:?}", key(9)), "PickleKey::Key(<redacted>)");
}

/// Keys and nonces of every message Bob opens, observed before he opens it.
fn observe(b: &Session, envelope: &[u8], seen: &mut HashSet<(Vec<u8>, Vec<u8>)>) {
    let k = message_keys(b, envelope).unwrap();
    assert!(seen.insert((k.enc_key().to_vec(), k.nonce().to_vec())), "a key/nonce pair was used twice");
}

#[test]
fn sender_restored_from_an_old_pickle_never_reuses_keys_and_peer_still_decrypts() {
    let (mut rng, mut a, mut b) = conversation(56, SessionPolicy::default());
    let mut seen = HashSet::new();
    // Alice's current epoch is under way when her device is backed up.
    let m = a.encrypt(&mut rng, T0 + 1, b"before the backup").unwrap();
    observe(&b, &m, &mut seen);
    b.decrypt(T0 + 1, &m).unwrap();
    let backup = a.pickle(&mut rng, &key(7), b"").unwrap();
    // Alice goes on in the same epoch: three messages Bob reads.
    for i in 0..3u8 {
        let m = a.encrypt(&mut rng, T0 + 1, &[b'a', i]).unwrap();
        observe(&b, &m, &mut seen);
        assert_eq!(b.decrypt(T0 + 1, &m).unwrap(), [b'a', i]);
    }
    // Her device is restored from the backup and sends again, from the
    // same chain positions: the keys are fresh and Bob still reads them.
    let mut a = Session::from_pickle(&backup, &key(7), b"").unwrap();
    for i in 0..3u8 {
        let m = a.encrypt(&mut rng, T0 + 2, &[b'b', i]).unwrap();
        observe(&b, &m, &mut seen);
        assert_eq!(b.decrypt(T0 + 2, &m).unwrap(), [b'b', i]);
    }
    // The conversation goes on in both directions.
    let r = b.encrypt(&mut rng, T0 + 3, b"still here").unwrap();
    assert_eq!(a.decrypt(T0 + 3, &r).unwrap(), b"still here");
    let m = a.encrypt(&mut rng, T0 + 4, b"me too").unwrap();
    observe(&b, &m, &mut seen);
    assert_eq!(b.decrypt(T0 + 4, &m).unwrap(), b"me too");
    assert_eq!(seen.len(), 8);
}

#[test]
fn rollback_past_an_epoch_the_peer_saw_is_a_typed_error_and_changes_nothing() {
    // The lost state had started a new epoch (a turn) that Bob read: the
    // restored Alice cannot follow (the roots absorbed that epoch's secret
    // Diffie-Hellman output). Bob refuses her messages without changing
    // his session; the pair must start a new session.
    let (mut rng, mut a, mut b) = conversation(59, SessionPolicy::default());
    let backup = a.pickle(&mut rng, &key(9), b"").unwrap();
    let m = a.encrypt(&mut rng, T0 + 1, b"new epoch after the turn").unwrap();
    b.decrypt(T0 + 1, &m).unwrap();
    let mut restored = Session::from_pickle(&backup, &key(9), b"").unwrap();
    let stale = restored.encrypt(&mut rng, T0 + 2, b"from the rolled-back device").unwrap();
    assert_eq!(b.decrypt(T0 + 2, &stale).err(), Some(Error::AuthenticationFailed));
    // Bob's session is intact: the real Alice still gets through.
    let m = a.encrypt(&mut rng, T0 + 3, b"the real one").unwrap();
    assert_eq!(b.decrypt(T0 + 3, &m).unwrap(), b"the real one");
}

#[test]
fn rolled_back_sender_with_the_same_positions_still_gets_fresh_keys() {
    // Even at the same chain position, the per-message salt makes the key
    // and nonce different: compare what Bob would use for both versions.
    let (mut rng, mut a, b) = conversation(57, SessionPolicy::default());
    let mut copy = a.clone(); // a rollback without a pickle (an in-memory copy)
    let m1 = a.encrypt(&mut rng, T0, b"first plaintext").unwrap();
    let m1b = copy.encrypt(&mut rng, T0, b"other plaintext").unwrap();
    let k1 = message_keys(&b, &m1).unwrap();
    let k2 = message_keys(&b, &m1b).unwrap();
    assert!(k1.enc_key() != k2.enc_key() || k1.nonce() != k2.nonce());
    assert_ne!(k1.enc_key(), k2.enc_key());
    assert_ne!(k1.nonce(), k2.nonce());
}

#[test]
fn initiator_restored_before_the_reply_keeps_sending_prekey_messages() {
    let mut p = pair_with(58, SessionPolicy::default());
    let mut a = Session::initiate(&mut p.rng, &mut p.alice, &p.bundle, &p.policy, T0).unwrap();
    let m1 = a.encrypt(&mut p.rng, T0, b"first").unwrap();
    let backup = a.pickle(&mut p.rng, &key(8), b"").unwrap();
    let m2 = a.encrypt(&mut p.rng, T0, b"second").unwrap();
    let (mut b, _) = p.bob.accept(&p.policy, T0, &prekey_message(&m1)).unwrap();
    assert_eq!(b.decrypt(T0, &m2).unwrap(), b"second");
    let mut a = Session::from_pickle(&backup, &key(8), b"").unwrap();
    assert!(a.is_awaiting_reply());
    let m3 = a.encrypt(&mut p.rng, T0, b"after restore").unwrap();
    assert!(matches!(sealpost::Envelope::from_bytes(&m3).unwrap(), sealpost::Envelope::Prekey(_)));
    assert_eq!(b.decrypt(T0, &m3).unwrap(), b"after restore");
    let r = b.encrypt(&mut p.rng, T0, b"reply").unwrap();
    assert_eq!(a.decrypt(T0, &r).unwrap(), b"reply");
    assert!(!a.is_awaiting_reply());
}

/// Carol talks to Alice and to Bob; an attacker with write access to her
/// storage swaps the two session rows. Each pickle is bound to the peer's
/// identity, so neither restores in the other's place, and both still
/// restore where they belong.
#[test]
fn swapped_session_pickles_of_two_peers_are_refused() {
    let mut rng = common::rng(56);
    let mut carol = Account::new(&mut rng, T0);
    let mut alice = Account::new(&mut rng, T0);
    let mut bob = Account::new(&mut rng, T0);
    let (with_alice, _, _) = common::start_session(&mut rng, &mut carol, &mut alice, T0, b"hi alice");
    let (with_bob, _, _) = common::start_session(&mut rng, &mut carol, &mut bob, T0, b"hi bob");
    let ad = |s: &Session| s.peer_identity().to_bytes();
    let (ad_alice, ad_bob) = (ad(&with_alice), ad(&with_bob));
    let row_alice = with_alice.pickle(&mut rng, &key(10), &ad_alice).unwrap();
    let row_bob = with_bob.pickle(&mut rng, &key(10), &ad_bob).unwrap();
    // Swapped: each row is read back under the other peer's name.
    assert_eq!(Session::from_pickle(&row_bob, &key(10), &ad_alice).err(), Some(Error::AuthenticationFailed));
    assert_eq!(Session::from_pickle(&row_alice, &key(10), &ad_bob).err(), Some(Error::AuthenticationFailed));
    // Empty associated data is a different binding too.
    assert_eq!(Session::from_pickle(&row_alice, &key(10), b"").err(), Some(Error::AuthenticationFailed));
    // In place, both restore, to the right peer.
    let back = Session::from_pickle(&row_alice, &key(10), &ad_alice).unwrap();
    assert_eq!(back.peer_identity(), alice.identity());
    let back = Session::from_pickle(&row_bob, &key(10), &ad_bob).unwrap();
    assert_eq!(back.peer_identity(), bob.identity());
}

/// Account and group pickles bind their associated data the same way,
/// under a passphrase as under a key; one changed byte or a prefix of the
/// associated data is refused.
#[test]
fn account_and_group_pickles_bind_associated_data() {
    let mut p = pair_with(57, SessionPolicy::default());
    for pickle_key in [key(11), PickleKey::passphrase(b"pass")] {
        let pickle = p.alice.pickle(&mut p.rng, &pickle_key, b"row 7").unwrap();
        for wrong in [&b"row 8"[..], b"row ", b"row 77", b""] {
            assert_eq!(
                Account::from_pickle(&pickle, &pickle_key, wrong).err(),
                Some(Error::AuthenticationFailed),
                "{wrong:?}"
            );
        }
        assert_eq!(Account::from_pickle(&pickle, &pickle_key, b"row 7").unwrap().identity(), p.alice.identity());
    }
    let own = Account::new(&mut p.rng, 0);
    let group = sealpost::GroupSession::new(&mut p.rng, b"team", &own, &p.policy).unwrap();
    let pickle = group.pickle(&mut p.rng, &key(12), b"group team").unwrap();
    assert_eq!(
        sealpost::GroupSession::from_pickle(&mut p.rng, &pickle, &key(12), b"group other", &own).err(),
        Some(Error::AuthenticationFailed)
    );
    let back = sealpost::GroupSession::from_pickle(&mut p.rng, &pickle, &key(12), b"group team", &own).unwrap();
    assert_eq!(back.group_id(), b"team");
}

/// Version 1 pickles (before associated data) are refused by their format byte.
#[test]
fn format_one_pickles_are_refused() {
    let mut p = pair_with(58, SessionPolicy::default());
    let mut pickle = p.alice.pickle(&mut p.rng, &key(13), b"").unwrap();
    assert_eq!(pickle[0], 2);
    pickle[0] = 1;
    assert_eq!(Account::from_pickle(&pickle, &key(13), b"").err(), Some(Error::UnsupportedVersion(1)));
}
