//! Shared set-up for the integration tests: two parties, a bundle, a session.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::PrekeyMessage;
use sealpost::{Account, Envelope, PrekeyBundle, Session, SessionPolicy};

pub(crate) const T0: u64 = 1_700_000_000;

pub(crate) fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

pub(crate) struct Pair {
    pub(crate) rng: ChaCha20Rng,
    pub(crate) alice: Account,
    pub(crate) bob: Account,
    pub(crate) policy: SessionPolicy,
    pub(crate) bundle: PrekeyBundle,
}

/// Alice and Bob, with Bob's verified bundle (with a one-time prekey).
pub(crate) fn pair_with(seed: u8, policy: SessionPolicy) -> Pair {
    let mut rng = rng(seed);
    let alice = Account::new(&mut rng, T0);
    let mut bob = Account::new(&mut rng, T0);
    let bundle = published_bundle(&mut rng, &mut bob, &policy);
    Pair { rng, alice, bob, policy, bundle }
}

/// `account`'s bundle with one fresh one-time prekey, as a peer decodes it
/// from the wire.
pub(crate) fn published_bundle(rng: &mut ChaCha20Rng, account: &mut Account, policy: &SessionPolicy) -> PrekeyBundle {
    let otk = account.generate_one_time_prekeys(rng, 1)[0];
    let wire = account.bundle(policy).unwrap().with_one_time_prekey(otk).unwrap().to_bytes();
    PrekeyBundle::from_bytes(&wire).unwrap()
}

/// `from` starts a session with `to` (default policy) and `to` accepts the
/// first message, `first`: both sessions and the first envelope.
pub(crate) fn start_session(
    rng: &mut ChaCha20Rng,
    from: &mut Account,
    to: &mut Account,
    now: u64,
    first: &[u8],
) -> (Session, Session, Vec<u8>) {
    let policy = SessionPolicy::default();
    let bundle = published_bundle(rng, to, &policy);
    let mut s = Session::initiate(rng, from, &bundle, &policy, now).unwrap();
    let envelope = s.encrypt(rng, now, first).unwrap();
    let (r, pt) = to.accept(&policy, now, &prekey_message(&envelope)).unwrap();
    assert_eq!(pt, first);
    (s, r, envelope)
}

pub(crate) fn prekey_message(bytes: &[u8]) -> PrekeyMessage {
    match Envelope::from_bytes(bytes).unwrap() {
        Envelope::Prekey(m) => m,
        other => panic!("expected a prekey message, got {other:?}"),
    }
}

/// A started conversation: Alice's session, Bob's session, after Alice's
/// first message and Bob's reply (so both sides are past the session start).
pub(crate) fn conversation(seed: u8, policy: SessionPolicy) -> (ChaCha20Rng, Session, Session) {
    let mut p = pair_with(seed, policy);
    let mut a = Session::initiate(&mut p.rng, &mut p.alice, &p.bundle, &p.policy, T0).unwrap();
    let first = a.encrypt(&mut p.rng, T0, b"hello").unwrap();
    let (mut b, pt) = p.bob.accept(&p.policy, T0, &prekey_message(&first)).unwrap();
    assert_eq!(pt, b"hello");
    let reply = b.encrypt(&mut p.rng, T0, b"hi").unwrap();
    assert_eq!(a.decrypt(T0, &reply).unwrap(), b"hi");
    (p.rng, a, b)
}
