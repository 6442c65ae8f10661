//! A room member fed room payloads (12.5) and sender-key distributions
//! (7.6) through its pairwise sessions, and raw envelopes: nothing panics,
//! a changed distribution is never installed, and whatever is accepted is
//! attributed to the peer of the session that carried it, never to the
//! identity the transport names.
//!
//! The first input byte picks the path (the rest is `data`):
//! 0. `data` is the plaintext of a ratchet message from Alice, a member;
//! 1. Alice's genuine distribution of a new chain in a room payload, with
//!    `data` read as edits (u16 offset, xor byte);
//! 2. `data` is an envelope delivered as if from Alice, then from Mallory;
//! 3. `data` is the plaintext of the first message of a new session from
//!    Mallory, a stranger, accepted with [`Room::accept`].
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::{Account, Envelope, Error, GroupSession, IdentityPublic, PrekeyBundle, Session, SessionPolicy};
use sealpost::{Incoming, Room};

const T: u64 = 1_700_000_000;
const ROOM: &[u8] = b"lobby";

struct Fixture {
    policy: SessionPolicy,
    alice: IdentityPublic,
    mallory: Account,
    bob: Account,
    bob_bundle: PrekeyBundle,
    bob_room: Room,
    /// Alice's session with Bob, after Bob's answer (so it sends ratchet messages).
    alice_to_bob: Session,
    /// A room payload with a distribution of a new chain of Alice's.
    genuine_payload: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([18; 32]);
        let policy = SessionPolicy::default();
        let mut alice = Account::new(&mut rng, T);
        let mut bob = Account::new(&mut rng, T);
        let mallory = Account::new(&mut rng, T);
        let bob_bundle = PrekeyBundle::from_bytes(&bob.bundle(&policy).unwrap().to_bytes()).unwrap();
        let mut alice_room = Room::new(&mut rng, ROOM, &alice, &policy).unwrap();
        let mut bob_room = Room::new(&mut rng, ROOM, &bob, &policy).unwrap();
        let to_bob = Session::initiate(&mut rng, &mut alice, &bob_bundle, &policy, T).unwrap();
        let out = alice_room.add_member(&mut rng, T, to_bob).unwrap();
        let Ok(Envelope::Prekey(first)) = Envelope::from_bytes(&out.envelope) else { panic!("not a prekey message") };
        let (_, back) = bob_room.accept(&mut rng, T, &mut bob, &policy, &first).unwrap();
        alice_room.receive(T, bob.identity().signing_key(), &back.envelope).unwrap();
        let alice_to_bob = alice_room.session(bob.identity()).unwrap().clone();
        let chain = GroupSession::new(&mut rng, ROOM, &alice, &policy).unwrap();
        let mut genuine_payload = vec![2, u8::try_from(ROOM.len()).unwrap()];
        genuine_payload.extend_from_slice(ROOM);
        genuine_payload.extend_from_slice(&chain.distribution().to_bytes().unwrap());
        Fixture { policy, alice: *alice.identity(), mallory, bob, bob_bundle, bob_room, alice_to_bob, genuine_payload }
    })
}

/// Sends `payload` from Alice over her session and has Bob's room open it.
fn from_alice(f: &Fixture, rng: &mut ChaCha20Rng, payload: &[u8]) -> Result<Incoming, Error> {
    let mut session = f.alice_to_bob.clone();
    let envelope = session.encrypt(rng, T, payload).unwrap();
    f.bob_room.clone().receive(T, f.alice.signing_key(), &envelope)
}

fn assert_from(result: &Result<Incoming, Error>, who: &IdentityPublic) {
    match result {
        Ok(Incoming::Direct { from, .. } | Incoming::KeyUpdate { from }) => assert_eq!(from, who, "misattributed"),
        Ok(other) => panic!("a pairwise message opened as {other:?}"),
        Err(_) => {}
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else { return };
    let f = fixture();
    let mut rng = ChaCha20Rng::from_seed([mode; 32]);
    match mode % 4 {
        0 => assert_from(&from_alice(f, &mut rng, data), &f.alice),
        1 => {
            let mut payload = f.genuine_payload.clone();
            for edit in data.chunks_exact(3) {
                let i = usize::from(u16::from_be_bytes([edit[0], edit[1]])) % payload.len();
                payload[i] ^= edit[2];
            }
            let result = from_alice(f, &mut rng, &payload);
            if payload == f.genuine_payload {
                assert_eq!(result, Ok(Incoming::KeyUpdate { from: f.alice }));
            } else if payload[0] == 1 {
                // The kind byte turned into a direct message: its text is Alice's.
                assert_from(&result, &f.alice);
            } else {
                assert!(result.is_err(), "a changed distribution was accepted: {result:?}");
            }
        }
        2 => {
            let mut room = f.bob_room.clone();
            if let Ok(Incoming::Broadcast { from, .. }) = room.receive(T, f.alice.signing_key(), data) {
                panic!("a broadcast from {from:?} opened without a chain of its own");
            }
            assert_from(&room.receive(T, f.mallory.identity().signing_key(), data), &f.alice);
        }
        _ => {
            let mut mallory = f.mallory.clone();
            let mut session = Session::initiate(&mut rng, &mut mallory, &f.bob_bundle, &f.policy, T).unwrap();
            let envelope = session.encrypt(&mut rng, T, data).unwrap();
            let mut room = f.bob_room.clone();
            // Named as Alice's by the transport: no session of the room is this one.
            assert_eq!(room.receive(T, f.alice.signing_key(), &envelope), Err(Error::UnknownSender));
            let Ok(Envelope::Prekey(first)) = Envelope::from_bytes(&envelope) else { panic!("not a prekey message") };
            let mut bob = f.bob.clone();
            match room.accept(&mut rng, T, &mut bob, &f.policy, &first) {
                Ok((incoming, _)) => assert_from(&Ok(incoming), f.mallory.identity()),
                Err(_) => assert!(!room.group().is_member(f.mallory.identity()), "a refused stranger was added"),
            }
        }
    }
});
