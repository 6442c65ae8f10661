//! Shared set-up for the integration tests: two parties, a bundle, a session.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::envelope::PrekeyMessage;
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
    let otk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
    let wire = bob.bundle(&policy).unwrap().with_one_time_prekey(otk).unwrap().to_bytes();
    let bundle = PrekeyBundle::from_bytes(&wire).unwrap();
    Pair { rng, alice, bob, policy, bundle }
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
    let mut a = Session::initiate(&mut p.rng, &p.alice, &p.bundle, &p.policy, T0).unwrap();
    let first = a.encrypt(&mut p.rng, T0, b"hello").unwrap();
    let (mut b, pt) = p.bob.accept(&p.policy, T0, &prekey_message(&first)).unwrap();
    assert_eq!(pt, b"hello");
    let reply = b.encrypt(&mut p.rng, T0, b"hi").unwrap();
    assert_eq!(a.decrypt(T0, &reply).unwrap(), b"hi");
    (p.rng, a, b)
}
