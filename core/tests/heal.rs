//! Self-healing end to end in the core: after simulated state loss on
//! either side, the side that can no longer decrypt asks for a reset over
//! an authenticated, rate-limited path, and the pair starts a fresh
//! session without user action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::T0;
use rand_chacha::ChaCha20Rng;
use sealpost::heal::{HealEvent, Healer, is_session_reset};
use sealpost::{Account, Envelope, Error, PickleKey, Session, SymmetricKey};

struct Person {
    account: Account,
    healer: Healer,
}

fn start(rng: &mut ChaCha20Rng, from: &mut Person, to: &mut Person, now: u64) -> (Session, Session) {
    let (s, r, _) = common::start_session(rng, &mut from.account, &mut to.account, now, b"hello");
    (s, r)
}

/// `from` reports a failure to decrypt `to`'s message in session `ID`.
fn ask(
    rng: &mut ChaCha20Rng,
    healer: &mut Healer,
    from: &Account,
    to: &Account,
    error: &Error,
    now: u64,
) -> Option<Vec<u8>> {
    healer.on_decrypt_failure(rng, from.identity_keys(), to.identity(), Some(ID), error, now)
}

const ID: [u8; 32] = [7; 32];

fn people(seed: u8) -> (ChaCha20Rng, Person, Person) {
    let mut rng = common::rng(seed);
    let a = Person { account: Account::new(&mut rng, T0), healer: Healer::default() };
    let b = Person { account: Account::new(&mut rng, T0), healer: Healer::default() };
    (rng, a, b)
}

/// Bob's side is restored from a backup taken before the conversation
/// turned; Alice can no longer read him. She asks for a reset, Bob renews.
#[test]
fn a_rolled_back_peer_is_asked_to_renew_and_the_pair_recovers() {
    let (mut rng, mut alice, mut bob) = people(80);
    let (mut a, mut b) = start(&mut rng, &mut alice, &mut bob, T0);
    let key = PickleKey::Key(SymmetricKey::from_bytes([1; 32]));
    let r = b.encrypt(&mut rng, T0 + 1, b"before the backup").unwrap();
    a.decrypt(T0 + 1, &r).unwrap();
    let backup = b.pickle(&mut rng, &key, b"").unwrap();
    let m = a.encrypt(&mut rng, T0 + 2, b"turn").unwrap();
    b.decrypt(T0 + 2, &m).unwrap();
    let r = b.encrypt(&mut rng, T0 + 3, b"new epoch, then lost").unwrap();
    a.decrypt(T0 + 3, &r).unwrap();
    // Bob's device rolls back.
    let mut b = Session::from_pickle(&backup, &key, b"").unwrap();
    let stale = b.encrypt(&mut rng, T0 + 4, b"from the restored device").unwrap();
    let err = a.decrypt(T0 + 4, &stale).unwrap_err();
    // Alice asks Bob, over the relay, to start again.
    let request = alice
        .healer
        .on_decrypt_failure(&mut rng, alice.account.identity_keys(), bob.account.identity(), Some(a.id()), &err, T0 + 4)
        .expect("divergence is reported");
    assert!(is_session_reset(&request));
    // Bob checks it came from Alice, then renews from her bundle.
    let event = bob.healer.accept(&request, alice.account.identity(), T0 + 5).unwrap();
    assert_eq!(event, HealEvent::Renewed { peer: *alice.account.identity() });
    let (mut b2, mut a2) = start(&mut rng, &mut bob, &mut alice, T0 + 5);
    let r = b2.encrypt(&mut rng, T0 + 6, b"fresh session").unwrap();
    assert_eq!(a2.decrypt(T0 + 6, &r).unwrap(), b"fresh session");
    let m = a2.encrypt(&mut rng, T0 + 7, b"welcome back").unwrap();
    assert_eq!(b2.decrypt(T0 + 7, &m).unwrap(), b"welcome back");
    assert_ne!(a2.id(), a.id());
}

/// Alice lost her sessions entirely (a new device from an account pickle
/// with no session pickles): she cannot read Bob and asks for a reset
/// without a session id.
#[test]
fn a_peer_that_lost_every_session_gets_a_new_one() {
    let (mut rng, mut alice, mut bob) = people(81);
    let (_a, mut b) = start(&mut rng, &mut alice, &mut bob, T0);
    let r = b.encrypt(&mut rng, T0 + 1, b"are you there?").unwrap();
    // Alice has no session for Bob: the envelope cannot be opened.
    let err = Error::OutsideWindow;
    assert!(matches!(Envelope::from_bytes(&r).unwrap(), Envelope::Ratchet(_)));
    let request = alice
        .healer
        .on_decrypt_failure(&mut rng, alice.account.identity_keys(), bob.account.identity(), None, &err, T0 + 1)
        .unwrap();
    assert!(matches!(bob.healer.accept(&request, alice.account.identity(), T0 + 2), Ok(HealEvent::Renewed { .. })));
    let (mut b2, mut a2) = start(&mut rng, &mut bob, &mut alice, T0 + 2);
    let r = b2.encrypt(&mut rng, T0 + 3, b"again").unwrap();
    assert_eq!(a2.decrypt(T0 + 3, &r).unwrap(), b"again");
}

#[test]
fn resets_are_authenticated_fresh_single_use_and_rate_limited() {
    let (mut rng, alice, mut bob) = people(82);
    let mut alice = alice;
    let mallory = Account::new(&mut rng, T0);
    let mut mallory_healer = Healer::default();
    // Only errors that mean divergence trigger a request.
    for benign in [Error::Replay, Error::Malformed("envelope"), Error::SessionExpired] {
        assert!(ask(&mut rng, &mut alice.healer, &alice.account, &bob.account, &benign, T0).is_none());
    }
    let request =
        ask(&mut rng, &mut alice.healer, &alice.account, &bob.account, &Error::AuthenticationFailed, T0).unwrap();
    // The asker sends at most one request per peer per interval.
    assert!(
        ask(&mut rng, &mut alice.healer, &alice.account, &bob.account, &Error::AuthenticationFailed, T0 + 10).is_none()
    );
    // Mallory cannot ask in Alice's name: her request names her own identity...
    let forged = ask(&mut rng, &mut mallory_healer, &mallory, &bob.account, &Error::AuthenticationFailed, T0).unwrap();
    assert_eq!(bob.healer.accept(&forged, alice.account.identity(), T0).err(), Some(Error::InvalidSignature));
    // ...and any changed byte of Alice's request breaks its signature.
    for i in 3..request.len() {
        let mut t = request.clone();
        t[i] ^= 1;
        assert!(bob.healer.accept(&t, alice.account.identity(), T0).is_err(), "byte {i}");
    }
    // Stale requests are refused.
    let mut late = Healer::default();
    assert_eq!(late.accept(&request, alice.account.identity(), T0 + 10_000).err(), Some(Error::OutsideWindow));
    // The genuine request is accepted once; a replay is refused; a new
    // request within the interval is rate limited.
    assert!(bob.healer.accept(&request, alice.account.identity(), T0 + 1).is_ok());
    assert_eq!(bob.healer.accept(&request, alice.account.identity(), T0 + 2).err(), Some(Error::Replay));
    let mut alice2 = Healer::default();
    let again =
        ask(&mut rng, &mut alice2, &alice.account, &bob.account, &Error::AuthenticationFailed, T0 + 60).unwrap();
    assert_eq!(bob.healer.accept(&again, alice.account.identity(), T0 + 60).err(), Some(Error::RateLimited));
    let later =
        ask(&mut rng, &mut alice2, &alice.account, &bob.account, &Error::AuthenticationFailed, T0 + 3700).unwrap();
    assert!(bob.healer.accept(&later, alice.account.identity(), T0 + 3700).is_ok());
}
