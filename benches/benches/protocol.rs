//! Sealpost's protocol operations next to vodozemac's Olm in the same run:
//! session creation (initiator and responder), 1 KiB message round trips
//! in a steady one-way stream and alternating (a Diffie-Hellman step each
//! turn), pickling, and a group message to 100 members. Session creation
//! is measured both in the default hybrid version 2 (X25519 + ML-KEM-768)
//! and in classical version 1, so the post-quantum cost is a ratio.
//! The `x25519` group times the curve operations alone (a key generation,
//! a Diffie-Hellman, and the floor of one alternating round trip: two key
//! generations and four Diffie-Hellmans), the part of a turn no protocol
//! change can remove.
//! The `forgery` group measures what a forged envelope costs its receiver
//! before authentication fails: the cheapest forgery that reaches the tag
//! check next to the worst case at the default policy and at the hard cap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::{Account, Envelope, GroupSession, PickleKey, PrekeyBundle, Session, SessionPolicy, SymmetricKey};
use vodozemac::olm::{Account as OlmAccount, OlmMessage, SessionConfig};

const NOW: u64 = 1_700_000_000;
const KIB: [u8; 1024] = [0x42; 1024];

fn seeded() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([5; 32])
}

fn bundle_of(bob: &mut Account, rng: &mut ChaCha20Rng, policy: &SessionPolicy) -> PrekeyBundle {
    let otk = bob.generate_one_time_prekeys(rng, 1)[0];
    let signed =
        if policy.min_version < 2 { sealpost::hazmat::classical_bundle(bob, policy) } else { bob.bundle(policy) };
    signed.unwrap().with_one_time_prekey(otk).unwrap()
}

/// Alice's and Bob's sessions after a first message and a reply.
fn sealpost_pair() -> (ChaCha20Rng, Session, Session) {
    sealpost_pair_with(&SessionPolicy::default())
}

/// [`sealpost_pair`] under `policy`.
fn sealpost_pair_with(policy: &SessionPolicy) -> (ChaCha20Rng, Session, Session) {
    let policy = policy.clone();
    let mut rng = seeded();
    let mut alice = Account::new(&mut rng, NOW);
    let mut bob = Account::new(&mut rng, NOW);
    let bundle = bundle_of(&mut bob, &mut rng, &policy);
    let mut a = Session::initiate(&mut rng, &mut alice, &bundle, &policy, NOW).unwrap();
    let first = a.encrypt(&mut rng, NOW, b"hi").unwrap();
    let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { unreachable!() };
    let (mut b, _) = bob.accept(&policy, NOW, &m).unwrap();
    let r = b.encrypt(&mut rng, NOW, b"hi").unwrap();
    a.decrypt(NOW, &r).unwrap();
    (rng, a, b)
}

fn olm_pair() -> (vodozemac::olm::Session, vodozemac::olm::Session) {
    let alice = OlmAccount::new();
    let mut bob = OlmAccount::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    let mut a = alice.create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk).unwrap();
    let OlmMessage::PreKey(m) = a.encrypt(b"hi").unwrap() else { unreachable!() };
    let mut b = bob.create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &m).unwrap().session;
    let r = b.encrypt(b"hi").unwrap();
    a.decrypt(&r).unwrap();
    (a, b)
}

fn session_creation(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_start");
    let mut rng = seeded();
    let classical = SessionPolicy { min_version: 1, ..SessionPolicy::default() };
    for (name, policy) in [("sealpost", SessionPolicy::default()), ("sealpost-classical", classical)] {
        // One initiator account per version: an account that has seen a
        // peer's version-2 bundle refuses that peer's version-1 bundle
        // (downgrade protection), and every run meets the same seeded peer.
        let mut alice = Account::new(&mut rng, NOW);
        sealpost_session_creation(&mut g, name, &mut alice, &policy);
    }
    olm_session_creation(&mut g);
    g.finish();
}

/// Initiator and responder cost of one Sealpost session start under
/// `policy` (version 2 for the default, version 1 for `min_version: 1` with
/// a classical bundle).
fn sealpost_session_creation(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    alice: &mut Account,
    policy: &SessionPolicy,
) {
    let mut rng = seeded();
    let mut bob = Account::new(&mut rng, NOW);
    let bundle = bundle_of(&mut bob, &mut rng, policy);
    let want = if policy.min_version < 2 { 1 } else { 2 };
    assert_eq!(Session::initiate(&mut rng, alice, &bundle, policy, NOW).unwrap().version(), want);
    g.bench_function(format!("{name}/initiator"), |b| {
        b.iter(|| Session::initiate(&mut rng, alice, black_box(&bundle), policy, NOW).unwrap())
    });
    // What the initiator pays before its first message can leave: the
    // session start and the first 1 KiB prekey message.
    g.bench_function(format!("{name}/initiator, first message"), |b| {
        b.iter(|| {
            let mut s = Session::initiate(&mut rng, alice, black_box(&bundle), policy, NOW).unwrap();
            s.encrypt(&mut rng, NOW, &KIB).unwrap()
        })
    });
    g.bench_function(format!("{name}/responder"), |b| {
        b.iter_batched(
            || {
                let mut rng = seeded();
                let mut bob = Account::new(&mut rng, NOW);
                let bundle = bundle_of(&mut bob, &mut rng, policy);
                let mut a = Session::initiate(&mut rng, alice, &bundle, policy, NOW).unwrap();
                let Envelope::Prekey(m) = Envelope::from_bytes(&a.encrypt(&mut rng, NOW, &KIB).unwrap()).unwrap()
                else {
                    unreachable!()
                };
                (bob, m)
            },
            |(mut bob, m)| bob.accept(policy, NOW, &m).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

/// vodozemac's Olm session start, the external baseline.
fn olm_session_creation(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let olm_alice = OlmAccount::new();
    let mut olm_bob = OlmAccount::new();
    olm_bob.generate_one_time_keys(1);
    let otk = *olm_bob.one_time_keys().values().next().unwrap();
    let bob_key = olm_bob.curve25519_key();
    g.bench_function("vodozemac/initiator", |b| {
        b.iter(|| olm_alice.create_outbound_session(SessionConfig::version_1(), bob_key, black_box(otk)).unwrap())
    });
    g.bench_function("vodozemac/initiator, first message", |b| {
        b.iter(|| {
            let mut s = olm_alice.create_outbound_session(SessionConfig::version_1(), bob_key, black_box(otk)).unwrap();
            s.encrypt(KIB).unwrap()
        })
    });
    g.bench_function("vodozemac/responder", |b| {
        b.iter_batched(
            || {
                let mut bob = OlmAccount::new();
                bob.generate_one_time_keys(1);
                let otk = *bob.one_time_keys().values().next().unwrap();
                let mut a =
                    olm_alice.create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk).unwrap();
                let OlmMessage::PreKey(m) = a.encrypt(KIB).unwrap() else { unreachable!() };
                (bob, m)
            },
            |(mut bob, m)| {
                bob.create_inbound_session(SessionConfig::version_1(), olm_alice.curve25519_key(), &m).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
}

fn round_trips(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip_1k");
    let (mut rng, mut a, mut b) = sealpost_pair();
    g.bench_function("sealpost/steady", |bench| {
        bench.iter(|| {
            let m = a.encrypt(&mut rng, NOW, black_box(&KIB)).unwrap();
            b.decrypt(NOW, &m).unwrap()
        })
    });
    let (mut rng, mut a, mut b) = sealpost_pair();
    g.bench_function("sealpost/alternating", |bench| {
        bench.iter(|| {
            let m = a.encrypt(&mut rng, NOW, black_box(&KIB)).unwrap();
            b.decrypt(NOW, &m).unwrap();
            let r = b.encrypt(&mut rng, NOW, black_box(&KIB)).unwrap();
            a.decrypt(NOW, &r).unwrap()
        })
    });
    let (mut oa, mut ob) = olm_pair();
    g.bench_function("vodozemac/steady", |bench| {
        bench.iter(|| {
            let m = oa.encrypt(black_box(KIB)).unwrap();
            ob.decrypt(&m).unwrap()
        })
    });
    let (mut oa, mut ob) = olm_pair();
    g.bench_function("vodozemac/alternating", |bench| {
        bench.iter(|| {
            let m = oa.encrypt(black_box(KIB)).unwrap();
            ob.decrypt(&m).unwrap();
            let r = ob.encrypt(black_box(KIB)).unwrap();
            oa.decrypt(&r).unwrap()
        })
    });
    g.finish();
}

/// The X25519 floor: the scalar multiplications alone, with the same
/// library both protocols use (x25519-dalek on curve25519-dalek). A turn
/// of the alternating conversation needs a key generation (fixed-base) and
/// a Diffie-Hellman (variable-base) by the sender, and a Diffie-Hellman by
/// the receiver; a round trip is two turns.
fn x25519_floor(c: &mut Criterion) {
    use x25519_dalek::{PublicKey, StaticSecret};
    let mut g = c.benchmark_group("x25519");
    let mut rng = seeded();
    let mut secret = || {
        let mut k = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut rng, &mut k);
        StaticSecret::from(k)
    };
    let (a, b) = (secret(), secret());
    let (a_pub, b_pub) = (PublicKey::from(&a), PublicKey::from(&b));
    g.bench_function("key generation", |bench| bench.iter(|| PublicKey::from(black_box(&a))));
    g.bench_function("diffie-hellman", |bench| bench.iter(|| black_box(&a).diffie_hellman(black_box(&b_pub))));
    g.bench_function("round-trip floor", |bench| {
        bench.iter(|| {
            for (sender, receiver, receiver_pub) in [(&a, &b, &b_pub), (&b, &a, &a_pub)] {
                let fresh = PublicKey::from(black_box(sender));
                black_box(sender.diffie_hellman(black_box(receiver_pub)));
                black_box(receiver.diffie_hellman(black_box(&fresh)));
            }
        })
    });
    g.finish();
}

fn pickles(c: &mut Criterion) {
    let mut g = c.benchmark_group("pickle");
    let (mut rng, a, _) = sealpost_pair();
    let key = PickleKey::Key(SymmetricKey::from_bytes([1; 32]));
    let pickle = a.pickle(&mut rng, &key, b"").unwrap();
    g.bench_function("sealpost/session pickle", |b| b.iter(|| a.pickle(&mut rng, &key, b"").unwrap()));
    g.bench_function("sealpost/session restore", |b| {
        b.iter(|| Session::from_pickle(black_box(&pickle), &key, b"").unwrap())
    });
    let (oa, _) = olm_pair();
    let olm_pickle = oa.pickle().encrypt(&[1; 32]);
    g.bench_function("vodozemac/session pickle", |b| b.iter(|| oa.pickle().encrypt(&[1; 32])));
    g.bench_function("vodozemac/session restore", |b| {
        b.iter(|| vodozemac::olm::SessionPickle::from_encrypted(black_box(&olm_pickle), &[1; 32]).unwrap())
    });
    g.finish();
}

fn group(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_100");
    let mut rng = seeded();
    let policy = SessionPolicy::default();
    let ids: Vec<Account> = (0..101).map(|_| Account::new(&mut rng, 0)).collect();
    let mut sender = GroupSession::new(&mut rng, b"bench", &ids[0], &policy).unwrap();
    let skd = sender.distribution();
    let mut members: Vec<GroupSession> = ids[1..]
        .iter()
        .map(|id| {
            let mut m = GroupSession::new(&mut rng, b"bench", id, &policy).unwrap();
            m.add_member(*ids[0].identity()).unwrap();
            m.process_distribution(ids[0].identity(), &skd).unwrap();
            m
        })
        .collect();
    // A sender whose messages nobody reads, for the sealing cost alone.
    let mut lone = GroupSession::new(&mut rng, b"bench", &ids[0], &policy).unwrap();
    g.bench_function("sealpost/encrypt once", |b| b.iter(|| lone.encrypt(&mut rng, black_box(&KIB)).unwrap()));
    g.bench_function("sealpost/encrypt and 100 members decrypt", |b| {
        b.iter(|| {
            let m = sender.encrypt(&mut rng, black_box(&KIB)).unwrap();
            for member in members.iter_mut() {
                member.decrypt(&m).unwrap();
            }
        })
    });
    g.finish();
}

/// A forged ratchet message to Bob of `sealpost_pair` (his next receiving
/// epoch is 1; he holds his ratchet secrets of epochs 0 and 1): epoch
/// `epoch` at `counter`, under ratchet keys nobody holds, with a
/// ciphertext of one padded block that fails the tag check.
fn forged(rng: &mut ChaCha20Rng, bob: &Session, epoch: u32, counter: u32) -> Vec<u8> {
    use sealpost::{RatchetHeader, RatchetMessage};
    let mut key = || {
        let mut k = [0u8; 32];
        rand_core::Rng::fill_bytes(rng, &mut k);
        k
    };
    let header = RatchetHeader {
        ratchet_key: key(),
        epoch,
        peer_epoch: 1,
        counter,
        prev_count: counter,
        prev_ratchet_key: key(),
        prev_peer_epoch: 1,
        salt: [9; 16],
    };
    RatchetMessage { version: bob.version(), suite: bob.suite(), header, ciphertext: vec![0x5A; 64] }
        .to_bytes()
        .unwrap()
}

/// What a forged envelope costs before it fails (SECURITY.md 2.6). The
/// cheap case opens Bob's next epoch at counter 0: one X25519, one root
/// step, one chain step and the tag check. The worst case claims that the
/// epoch before was missed and sends the last counter the policy lets a
/// chain skip to: two X25519, two root steps and `max_skip_per_chain + 1`
/// chain steps before the tag check (the missed epoch's kept keys are
/// derived only after authentication).
fn forgeries(c: &mut Criterion) {
    let mut g = c.benchmark_group("forgery");
    let cap = sealpost::MAX_SKIP_PER_CHAIN_CAP;
    let at_cap = SessionPolicy { max_skip_per_chain: cap, max_skipped_total: 2 * cap, ..SessionPolicy::default() };
    let default_skip = SessionPolicy::default().max_skip_per_chain;
    let cases = [
        ("cheap: next epoch, counter 0", SessionPolicy::default(), 1, 0),
        ("worst at default: missed epoch, counter 1000", SessionPolicy::default(), 2, default_skip),
        ("worst at cap: missed epoch, counter 10000", at_cap, 2, cap),
    ];
    for (name, policy, epoch, counter) in cases {
        let (mut rng, _, mut bob) = sealpost_pair_with(&policy);
        let envelope = forged(&mut rng, &bob, epoch, counter);
        assert_eq!(bob.decrypt(NOW, &envelope), Err(sealpost::Error::AuthenticationFailed));
        if epoch == 2 {
            // One counter further is refused before any Diffie-Hellman: the
            // measured case is the most the policy lets a forgery cost.
            let beyond = forged(&mut rng, &bob, epoch, counter + 1);
            assert_eq!(bob.decrypt(NOW, &beyond), Err(sealpost::Error::TooManySkipped));
        }
        g.bench_function(name, |b| b.iter(|| bob.decrypt(NOW, black_box(&envelope)).unwrap_err()));
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! { name = benches; config = config(); targets = session_creation, round_trips, x25519_floor, pickles, group, forgeries }
criterion_main!(benches);
