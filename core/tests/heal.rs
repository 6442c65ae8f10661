//! Self-healing end to end in the core: after simulated state loss on
//! either side, the side that can no longer decrypt asks for a reset over
//! an authenticated, rate-limited path, and the pair starts a fresh
//! session without user action. Resets are bound to their recipient and to
//! the session they name, survive restarts in a pickle, stay bounded in
//! memory, and converge when both sides ask at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::T0;
use rand_chacha::ChaCha20Rng;
use sealpost::PREVIOUS_SESSION_LIFETIME;
use sealpost::hazmat::MAX_RESET_NONCES;
use sealpost::hazmat::{SESSION_RESET_LEN, SessionReset};
use sealpost::{Account, Envelope, Error, IdentityPublic, PickleKey, Session, SymmetricKey};
use sealpost::{HealEvent, Healer, PeerSessions, RESET_MAX_AGE, is_session_reset};

struct Person {
    account: Account,
    healer: Healer,
}

impl Person {
    fn id(&self) -> &IdentityPublic {
        self.account.identity()
    }
}

fn start(rng: &mut ChaCha20Rng, from: &mut Person, to: &mut Person, now: u64) -> (Session, Session) {
    let (s, r, _) = common::start_session(rng, &mut from.account, &mut to.account, now, b"hello");
    (s, r)
}

/// `from` reports a failure to decrypt `to`'s message in session `session`.
fn ask_about(
    rng: &mut ChaCha20Rng,
    healer: &mut Healer,
    from: &Account,
    to: &IdentityPublic,
    session: Option<[u8; 32]>,
    now: u64,
) -> Vec<u8> {
    healer.on_decrypt_failure(rng, from, to, session, &Error::AuthenticationFailed, now).unwrap()
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
    healer.on_decrypt_failure(rng, from, to.identity(), Some(ID), error, now)
}

const ID: [u8; 32] = [7; 32];

fn person(rng: &mut ChaCha20Rng) -> Person {
    Person { account: Account::new(rng, T0), healer: Healer::default() }
}

fn people(seed: u8) -> (ChaCha20Rng, Person, Person) {
    let mut rng = common::rng(seed);
    let a = person(&mut rng);
    let b = person(&mut rng);
    (rng, a, b)
}

/// Bob's side is restored from a backup taken before the conversation
/// turned; Alice can no longer read him. She asks for a reset, Bob renews.
#[test]
fn a_rolled_back_peer_is_asked_to_renew_and_the_pair_recovers() {
    let (mut rng, mut alice, mut bob) = people(80);
    let (a, b) = start(&mut rng, &mut alice, &mut bob, T0);
    let (mut pa, mut pb) = (PeerSessions::new(), PeerSessions::new());
    pa.install(a, T0).unwrap();
    pb.install(b, T0).unwrap();
    let key = PickleKey::Key(SymmetricKey::from_bytes([1; 32]));
    let r = pb.current().unwrap().encrypt(&mut rng, T0 + 1, b"before the backup").unwrap();
    pa.decrypt(T0 + 1, &r).unwrap();
    let backup = pb.current().unwrap().pickle(&mut rng, &key, b"").unwrap();
    let m = pa.current().unwrap().encrypt(&mut rng, T0 + 2, b"turn").unwrap();
    pb.decrypt(T0 + 2, &m).unwrap();
    let r = pb.current().unwrap().encrypt(&mut rng, T0 + 3, b"new epoch, then lost").unwrap();
    pa.decrypt(T0 + 3, &r).unwrap();
    // Bob's device rolls back.
    let mut b = Session::from_pickle(&backup, &key, b"").unwrap();
    let stale = b.encrypt(&mut rng, T0 + 4, b"from the restored device").unwrap();
    let err = pa.decrypt(T0 + 4, &stale).unwrap_err();
    assert_eq!(err, Error::AuthenticationFailed);
    let old_id = pa.current_id().unwrap();
    // Alice asks Bob, over the relay, to start again.
    let request = alice
        .healer
        .on_decrypt_failure(&mut rng, &alice.account, bob.id(), pa.current_id(), &err, T0 + 4)
        .expect("divergence is reported");
    assert!(is_session_reset(&request));
    assert_eq!(request.len(), SESSION_RESET_LEN);
    // Bob checks it came from Alice, for him, about the session he has, then
    // renews from her bundle.
    let mut pb = PeerSessions::new();
    pb.install(b, T0 + 4).unwrap();
    assert_eq!(pb.current_id(), Some(old_id));
    let event =
        bob.healer.accept(&request, &bob.account.identity().clone(), alice.id(), pb.current_id(), T0 + 5).unwrap();
    assert_eq!(event, HealEvent::Renewed { peer: *alice.id(), crossed: false });
    let (b2, a2) = start(&mut rng, &mut bob, &mut alice, T0 + 5);
    pb.install(b2, T0 + 5).unwrap();
    pa.install(a2, T0 + 5).unwrap();
    let r = pb.current().unwrap().encrypt(&mut rng, T0 + 6, b"fresh session").unwrap();
    assert_eq!(pa.decrypt(T0 + 6, &r).unwrap(), b"fresh session");
    let m = pa.current().unwrap().encrypt(&mut rng, T0 + 7, b"welcome back").unwrap();
    assert_eq!(pb.decrypt(T0 + 7, &m).unwrap(), b"welcome back");
    assert_ne!(pa.current_id(), Some(old_id));
    assert_eq!(pa.current_id(), pb.current_id());
}

/// Alice lost her sessions entirely (a new device from an account pickle
/// with no session pickles): she cannot read Bob and asks for a reset
/// without a session id.
#[test]
fn a_peer_that_lost_every_session_gets_a_new_one() {
    let (mut rng, mut alice, mut bob) = people(81);
    let (_a, b) = start(&mut rng, &mut alice, &mut bob, T0);
    let mut pb = PeerSessions::new();
    pb.install(b, T0).unwrap();
    let r = pb.current().unwrap().encrypt(&mut rng, T0 + 1, b"are you there?").unwrap();
    // Alice has no session for Bob: the envelope cannot be opened.
    let mut pa = PeerSessions::new();
    assert!(matches!(Envelope::from_bytes(&r).unwrap(), Envelope::Ratchet(_)));
    let err = pa.decrypt(T0 + 1, &r).unwrap_err();
    assert_eq!(err, Error::UnknownPrekey);
    let request =
        alice.healer.on_decrypt_failure(&mut rng, &alice.account, bob.id(), pa.current_id(), &err, T0 + 1).unwrap();
    assert_eq!(SessionReset::from_bytes(&request).unwrap().session_id, [0; 32]);
    // A zero session id resets whatever session Bob has.
    let event =
        bob.healer.accept(&request, &bob.account.identity().clone(), alice.id(), pb.current_id(), T0 + 2).unwrap();
    assert_eq!(event, HealEvent::Renewed { peer: *alice.id(), crossed: false });
    let (b2, a2) = start(&mut rng, &mut bob, &mut alice, T0 + 2);
    pb.install(b2, T0 + 2).unwrap();
    pa.install(a2, T0 + 2).unwrap();
    let r = pb.current().unwrap().encrypt(&mut rng, T0 + 3, b"again").unwrap();
    assert_eq!(pa.decrypt(T0 + 3, &r).unwrap(), b"again");
}

#[test]
fn resets_are_authenticated_fresh_single_use_and_rate_limited() {
    let (mut rng, mut alice, mut bob) = people(82);
    let mallory = Account::new(&mut rng, T0);
    let mut mallory_healer = Healer::default();
    // Only errors that mean divergence trigger a request.
    for benign in [Error::Replay, Error::Malformed("envelope"), Error::SessionExpired] {
        assert_eq!(ask(&mut rng, &mut alice.healer, &alice.account, &bob.account, &benign, T0), None);
    }
    let request =
        ask(&mut rng, &mut alice.healer, &alice.account, &bob.account, &Error::AuthenticationFailed, T0).unwrap();
    // The asker sends at most one request per peer per interval.
    assert_eq!(
        ask(&mut rng, &mut alice.healer, &alice.account, &bob.account, &Error::AuthenticationFailed, T0 + 10),
        None
    );
    let (bob_id, alice_id) = (*bob.id(), *alice.id());
    // Mallory cannot ask in Alice's name: her request names her own identity...
    let forged = ask(&mut rng, &mut mallory_healer, &mallory, &bob.account, &Error::AuthenticationFailed, T0).unwrap();
    assert_eq!(bob.healer.accept(&forged, &bob_id, &alice_id, Some(ID), T0), Err(Error::InvalidSignature));
    // ...and any changed byte of Alice's request breaks a signature: the
    // identities' own binding signatures (bytes 3 to 258) or the request's.
    // The one exception is a flip in either identity's Ed25519 key (bytes
    // 3..35 and 131..163) that leaves no curve point: keys are checked
    // before signatures, so that is `InvalidKey`. Whether a flipped key
    // still decodes depends on the key; ed25519-dalek decides it here.
    let signing_keys = [3..35, 131..163];
    let mut bad_keys = 0;
    for i in 3..request.len() {
        let mut t = request.clone();
        t[i] ^= 1;
        let r = bob.healer.accept(&t, &bob_id, &alice_id, Some(ID), T0);
        let key = signing_keys.iter().find(|k| k.contains(&i)).map(|k| <[u8; 32]>::try_from(&t[k.clone()]).unwrap());
        let expected = match key {
            Some(k) if ed25519_dalek::VerifyingKey::from_bytes(&k).is_err() => {
                bad_keys += 1;
                Error::InvalidKey
            }
            _ => Error::InvalidSignature,
        };
        assert_eq!(r, Err(expected), "byte {i}");
    }
    assert_ne!(bad_keys, 0, "some flipped keys are no curve points");
    // A truncated or extended request is malformed.
    assert_eq!(
        bob.healer.accept(&request[..request.len() - 1], &bob_id, &alice_id, Some(ID), T0),
        Err(Error::Malformed("session reset"))
    );
    let mut longer = request.clone();
    longer.push(0);
    assert_eq!(bob.healer.accept(&longer, &bob_id, &alice_id, Some(ID), T0), Err(Error::Malformed("session reset")));
    // Stale requests are refused, just past the window in both directions.
    let mut late = Healer::default();
    assert_eq!(late.accept(&request, &bob_id, &alice_id, Some(ID), T0 + RESET_MAX_AGE + 1), Err(Error::OutsideWindow));
    assert_eq!(late.accept(&request, &bob_id, &alice_id, Some(ID), T0 - RESET_MAX_AGE - 1), Err(Error::OutsideWindow));
    // The genuine request is accepted once, at the edge of the window; a
    // replay is refused; a new request within the interval is rate limited.
    assert_eq!(
        bob.healer.accept(&request, &bob_id, &alice_id, Some(ID), T0 + RESET_MAX_AGE),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
    assert_eq!(bob.healer.accept(&request, &bob_id, &alice_id, Some(ID), T0 + RESET_MAX_AGE), Err(Error::Replay));
    let mut alice2 = Healer::default();
    let again =
        ask(&mut rng, &mut alice2, &alice.account, &bob.account, &Error::AuthenticationFailed, T0 + 700).unwrap();
    assert_eq!(bob.healer.accept(&again, &bob_id, &alice_id, Some(ID), T0 + 700), Err(Error::RateLimited));
    let later =
        ask(&mut rng, &mut alice2, &alice.account, &bob.account, &Error::AuthenticationFailed, T0 + 4300).unwrap();
    assert_eq!(
        bob.healer.accept(&later, &bob_id, &alice_id, Some(ID), T0 + 4300),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
}

/// Issue 10.1: whoever relays Alice's reset for Bob (the relay sees them
/// all) cannot deliver it to Alice's other contacts.
#[test]
fn a_reset_for_one_contact_is_refused_by_another() {
    let (mut rng, mut alice, mut bob) = people(83);
    let mut carol = person(&mut rng);
    let (_a, b) = start(&mut rng, &mut alice, &mut bob, T0);
    let (_a, c) = start(&mut rng, &mut alice, &mut carol, T0);
    let for_bob = ask_about(&mut rng, &mut alice.healer, &alice.account, bob.id(), Some(b.id()), T0 + 1);
    let reset = SessionReset::from_bytes(&for_bob).unwrap();
    assert_eq!(reset.to, *bob.id());
    // Carol refuses it even though it is fresh, from her contact Alice, and
    // names no session she could check (the same holds for any session id).
    let (carol_id, alice_id) = (*carol.id(), *alice.id());
    assert_eq!(carol.healer.accept(&for_bob, &carol_id, &alice_id, Some(c.id()), T0 + 1), Err(Error::Misdirected));
    assert_eq!(carol.healer.remembered(), 0);
    // Bob, its recipient, accepts it.
    let bob_id = *bob.id();
    assert_eq!(
        bob.healer.accept(&for_bob, &bob_id, &alice_id, Some(b.id()), T0 + 1),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
    // Carol's own request is accepted by her.
    let mut alice2 = Healer::default();
    let for_carol = ask_about(&mut rng, &mut alice2, &alice.account, &carol_id, Some(c.id()), T0 + 2);
    assert_eq!(
        carol.healer.accept(&for_carol, &carol_id, &alice_id, Some(c.id()), T0 + 2),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
}

/// Issue 10.2: a reset names the session it is about; a delayed one about
/// a session that was already replaced must not end the new one.
#[test]
fn an_old_reset_naming_a_replaced_session_is_refused() {
    let (mut rng, mut alice, mut bob) = people(84);
    let (a1, b1) = start(&mut rng, &mut alice, &mut bob, T0);
    let (s1, alice_id, bob_id) = (a1.id(), *alice.id(), *bob.id());
    // Alice's request about session 1 is held back by the network...
    let delayed = ask_about(&mut rng, &mut alice.healer, &alice.account, &bob_id, Some(s1), T0 + 1);
    // ...while the pair moves to session 2.
    let (b2, _a2) = start(&mut rng, &mut bob, &mut alice, T0 + 2);
    let mut pb = PeerSessions::new();
    pb.install(b1, T0).unwrap();
    pb.install(b2, T0 + 2).unwrap();
    let s2 = pb.current_id().unwrap();
    assert_ne!(s1, s2);
    assert_eq!(bob.healer.accept(&delayed, &bob_id, &alice_id, Some(s2), T0 + 3), Err(Error::Misdirected));
    // Without any session, a request naming one is not for this side either.
    assert_eq!(bob.healer.accept(&delayed, &bob_id, &alice_id, None, T0 + 3), Err(Error::Misdirected));
    // Refused requests leave no trace: named correctly, the same bytes pass.
    assert_eq!(bob.healer.remembered(), 0);
    assert_eq!(
        bob.healer.accept(&delayed, &bob_id, &alice_id, Some(s1), T0 + 3),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
}

/// Issue 10.3: the replay memory survives a restart through its pickle.
#[test]
fn a_restored_healer_still_refuses_a_replay() {
    let (mut rng, alice, mut bob) = people(85);
    let key = PickleKey::Key(SymmetricKey::from_bytes([9; 32]));
    let (alice_id, bob_id) = (*alice.id(), *bob.id());
    // No rate limit, so that only the replay memory can refuse.
    bob.healer = Healer::new(0);
    let mut alice_healer = Healer::new(0);
    let request = ask_about(&mut rng, &mut alice_healer, &alice.account, &bob_id, None, T0);
    assert_eq!(
        bob.healer.accept(&request, &bob_id, &alice_id, None, T0),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
    let pickle = bob.healer.pickle(&mut rng, &key, b"bob's account").unwrap();
    assert_eq!(pickle[1], 4, "pickle kind 4");
    // A restart without the pickle would accept the replay.
    assert_eq!(
        Healer::new(0).accept(&request, &bob_id, &alice_id, None, T0 + 1),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
    let mut restored = Healer::from_pickle(&pickle, &key, b"bob's account").unwrap();
    assert_eq!(restored, bob.healer);
    assert_eq!(restored.accept(&request, &bob_id, &alice_id, None, T0 + 1), Err(Error::Replay));
    // A new request still passes.
    let fresh = ask_about(&mut rng, &mut alice_healer, &alice.account, &bob_id, None, T0 + 2);
    assert_eq!(
        restored.accept(&fresh, &bob_id, &alice_id, None, T0 + 2),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
    // The rate limit survives too.
    let mut limited = Healer::default();
    assert_eq!(
        limited.accept(&request, &bob_id, &alice_id, None, T0),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
    let mut limited = Healer::from_pickle(&limited.pickle(&mut rng, &key, b"").unwrap(), &key, b"").unwrap();
    assert_eq!(limited.accept(&fresh, &bob_id, &alice_id, None, T0 + 2), Err(Error::RateLimited));
    // The pickle is bound to its key, its associated data and its kind.
    let other = PickleKey::Key(SymmetricKey::from_bytes([8; 32]));
    assert_eq!(Healer::from_pickle(&pickle, &other, b"bob's account"), Err(Error::AuthenticationFailed));
    assert_eq!(Healer::from_pickle(&pickle, &key, b"carol's account"), Err(Error::AuthenticationFailed));
    let mut carol = person(&mut rng);
    let (a, _b) = start(&mut rng, &mut carol, &mut bob, T0);
    let session_pickle = a.pickle(&mut rng, &key, b"").unwrap();
    assert_eq!(Healer::from_pickle(&session_pickle, &key, b""), Err(Error::Malformed("pickle kind")));
    for n in [0, 1, pickle.len() - 1] {
        assert!(Healer::from_pickle(&pickle[..n], &key, b"bob's account").is_err(), "truncated to {n}");
    }
}

/// Issue 10.3: many resets within the window keep at most
/// `MAX_RESET_NONCES` in memory, and the ones that had to go are still
/// refused (the horizon); resets past the window leave the memory.
#[test]
fn the_replay_memory_is_bounded_and_eviction_never_reopens_a_replay() {
    let (mut rng, alice, mut bob) = people(86);
    let (alice_id, bob_id) = (*alice.id(), *bob.id());
    bob.healer = Healer::new(0);
    let mut alice_healer = Healer::new(0);
    let total = MAX_RESET_NONCES + 6;
    let mut requests = Vec::new();
    // Two requests a second, so that all of them are inside the window.
    for i in 0..total {
        let now = T0 + (i / 2) as u64;
        let r = ask_about(&mut rng, &mut alice_healer, &alice.account, &bob_id, None, now);
        assert_eq!(
            bob.healer.accept(&r, &bob_id, &alice_id, None, now),
            Ok(HealEvent::Renewed { peer: alice_id, crossed: false }),
            "request {i}"
        );
        requests.push((now, r));
    }
    assert_eq!(bob.healer.remembered(), MAX_RESET_NONCES);
    let end = T0 + (total / 2) as u64;
    // Evicted and retained requests alike are refused as replays.
    for (i, (_, r)) in requests.iter().enumerate() {
        assert_eq!(bob.healer.accept(r, &bob_id, &alice_id, None, end), Err(Error::Replay), "request {i}");
    }
    // Past the window everything is dropped; a fresh request is the only entry.
    let much_later = end + RESET_MAX_AGE + 1;
    let r = ask_about(&mut rng, &mut alice_healer, &alice.account, &bob_id, None, much_later);
    assert_eq!(
        bob.healer.accept(&r, &bob_id, &alice_id, None, much_later),
        Ok(HealEvent::Renewed { peer: alice_id, crossed: false })
    );
    assert_eq!(bob.healer.remembered(), 1);
    // And so is its pickle: it no longer grows with the history.
    let key = PickleKey::Key(SymmetricKey::from_bytes([3; 32]));
    let small = bob.healer.pickle(&mut rng, &key, b"").unwrap();
    assert!(small.len() < 200, "{} bytes", small.len());
    // The old requests stay refused, now as stale.
    let (t, first) = &requests[0];
    assert_eq!(bob.healer.accept(first, &bob_id, &alice_id, None, much_later), Err(Error::OutsideWindow));
    // Even with the clock set back to when it was fresh: behind the horizon.
    assert_eq!(bob.healer.accept(first, &bob_id, &alice_id, None, *t), Err(Error::Replay));
}

/// One crossing: both ask at once, each receives the other's request.
/// Returns (Alice's event, Bob's event, whether Alice's request sorts lower).
fn cross(seed: u8) -> (HealEvent, HealEvent, bool, ChaCha20Rng, Person, Person, Session, Session) {
    let (mut rng, mut alice, mut bob) = people(seed);
    let (a, b) = start(&mut rng, &mut alice, &mut bob, T0);
    let (alice_id, bob_id) = (*alice.id(), *bob.id());
    let from_alice = ask_about(&mut rng, &mut alice.healer, &alice.account, &bob_id, Some(a.id()), T0 + 1);
    let from_bob = ask_about(&mut rng, &mut bob.healer, &bob.account, &alice_id, Some(b.id()), T0 + 1);
    let (ra, rb) = (SessionReset::from_bytes(&from_alice).unwrap(), SessionReset::from_bytes(&from_bob).unwrap());
    // The rule of the spec, computed here from the fields: nonce, then
    // the sender's identity encoding.
    let alice_lower = (ra.nonce, ra.from.to_bytes().to_vec()) < (rb.nonce, rb.from.to_bytes().to_vec());
    let ea = alice.healer.accept(&from_bob, &alice_id, &bob_id, Some(a.id()), T0 + 2).unwrap();
    let eb = bob.healer.accept(&from_alice, &bob_id, &alice_id, Some(b.id()), T0 + 2).unwrap();
    (ea, eb, alice_lower, rng, alice, bob, a, b)
}

/// Issue 10.4: when both sides renew at once, exactly one of them starts
/// the new session (the one whose peer's request sorts lower), and both end
/// on the same session.
#[test]
fn crossing_resets_converge_on_one_session() {
    let mut outcomes = [false; 2];
    for seed in 90..100 {
        let (ea, eb, alice_lower, mut rng, mut alice, mut bob, a, b) = cross(seed);
        let (alice_id, bob_id) = (*alice.id(), *bob.id());
        let (mut pa, mut pb) = (PeerSessions::new(), PeerSessions::new());
        pa.install(a, T0).unwrap();
        pb.install(b, T0).unwrap();
        let old = pa.current_id().unwrap();
        if alice_lower {
            // Alice's request wins: Bob renews, Alice waits.
            assert_eq!(ea, HealEvent::PeerRenews { peer: bob_id });
            assert_eq!(eb, HealEvent::Renewed { peer: alice_id, crossed: true });
            let (b2, a2) = start(&mut rng, &mut bob, &mut alice, T0 + 3);
            pb.install(b2, T0 + 3).unwrap();
            pa.install(a2, T0 + 3).unwrap();
        } else {
            assert_eq!(ea, HealEvent::Renewed { peer: bob_id, crossed: true });
            assert_eq!(eb, HealEvent::PeerRenews { peer: alice_id });
            let (a2, b2) = start(&mut rng, &mut alice, &mut bob, T0 + 3);
            pa.install(a2, T0 + 3).unwrap();
            pb.install(b2, T0 + 3).unwrap();
        }
        outcomes[usize::from(alice_lower)] = true;
        assert_eq!(pa.current_id(), pb.current_id());
        assert_ne!(pa.current_id(), Some(old));
        let m = pa.current().unwrap().encrypt(&mut rng, T0 + 4, b"one session").unwrap();
        assert_eq!(pb.decrypt(T0 + 4, &m).unwrap(), b"one session");
    }
    assert_eq!(outcomes, [true, true], "both orders were exercised");
}

/// A request of ours older than the freshness window can no longer be
/// accepted by the peer, so it does not make a crossing.
#[test]
fn an_expired_request_of_ours_does_not_cross() {
    let (mut rng, mut alice, bob) = people(87);
    let (alice_id, bob_id) = (*alice.id(), *bob.id());
    let _ours = ask_about(&mut rng, &mut alice.healer, &alice.account, &bob_id, None, T0);
    let mut bob_healer = Healer::default();
    let at_edge = ask_about(&mut rng, &mut bob_healer, &bob.account, &alice_id, None, T0 + RESET_MAX_AGE);
    let past = ask_about(&mut rng, &mut Healer::default(), &bob.account, &alice_id, None, T0 + RESET_MAX_AGE + 1);
    // At the edge of the window it is a crossing, and Bob's request wins
    // (seed 87), so Alice renews (with `PeerRenews` hers would have won).
    assert_eq!(
        alice.healer.clone().accept(&at_edge, &alice_id, &bob_id, None, T0 + RESET_MAX_AGE),
        Ok(HealEvent::Renewed { peer: bob_id, crossed: true }),
        "at the edge of the window it is a crossing"
    );
    assert_eq!(
        alice.healer.accept(&past, &alice_id, &bob_id, None, T0 + RESET_MAX_AGE + 1),
        Ok(HealEvent::Renewed { peer: bob_id, crossed: false })
    );
}

/// Issue 17.13: with two sessions between the same pair, an envelope is
/// tried against the current session, then the previous one for a bounded
/// time, and the current session reports the refusal.
#[test]
fn envelopes_are_tried_against_the_current_then_the_previous_session() {
    let (mut rng, mut alice, mut bob) = people(88);
    let (a1, b1) = start(&mut rng, &mut alice, &mut bob, T0);
    let (mut pa, mut pb) = (PeerSessions::new(), PeerSessions::new());
    pa.install(a1, T0).unwrap();
    pb.install(b1, T0).unwrap();
    // Bob sends twice in session 1; the messages are still in flight when
    // the pair renews.
    let late1 = pb.current().unwrap().encrypt(&mut rng, T0 + 1, b"late one").unwrap();
    let late2 = pb.current().unwrap().encrypt(&mut rng, T0 + 1, b"late two").unwrap();
    let late3 = pb.current().unwrap().encrypt(&mut rng, T0 + 1, b"late three").unwrap();
    let (b2, a2) = start(&mut rng, &mut bob, &mut alice, T0 + 2);
    pb.install(b2, T0 + 2).unwrap();
    pa.install(a2, T0 + 2).unwrap();
    let now = pb.current().unwrap().encrypt(&mut rng, T0 + 3, b"new").unwrap();
    assert_eq!(pa.decrypt(T0 + 3, &now).unwrap(), b"new");
    // The previous session opens what was sent in it.
    assert_eq!(pa.decrypt(T0 + 3, &late1).unwrap(), b"late one");
    // A second delivery is a replay, reported as such (not as divergence).
    assert_eq!(pa.decrypt(T0 + 3, &late1), Err(Error::Replay));
    // A forgery neither session opens is refused (by the current one), and
    // changes neither: the genuine message still opens.
    let mut forged = late2.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(pa.decrypt(T0 + 3, &forged), Err(Error::AuthenticationFailed));
    assert_eq!(pa.decrypt(T0 + 3, &late2).unwrap(), b"late two");
    assert_eq!(pa.decrypt(T0 + 3, &now), Err(Error::Replay));
    // The previous session is kept for a bounded time, then dropped: its
    // messages are refused by the current session from then on (which is
    // kept alive meanwhile).
    let t1 = T0 + 2 + PREVIOUS_SESSION_LIFETIME - 100;
    let alive = pb.current().unwrap().encrypt(&mut rng, t1, b"still here").unwrap();
    assert_eq!(pa.decrypt(t1, &alive).unwrap(), b"still here");
    assert!(pa.has_previous(T0 + 2 + PREVIOUS_SESSION_LIFETIME));
    assert!(!pa.has_previous(T0 + 3 + PREVIOUS_SESSION_LIFETIME));
    assert_eq!(pa.decrypt(T0 + 3 + PREVIOUS_SESSION_LIFETIME, &late3), Err(Error::AuthenticationFailed));
    assert!(!pa.has_previous(T0 + 3));
    // A session with somebody else is not installed.
    let mut carol = person(&mut rng);
    let (a3, _c) = start(&mut rng, &mut alice, &mut carol, T0 + 4);
    let before = pa.current_id();
    assert_eq!(pa.install(a3, T0 + 4), Err(Error::Misdirected));
    assert_eq!(pa.current_id(), before);
}
