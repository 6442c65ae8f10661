//! The Rust side of the binding benchmark (`bash bindings/bench/run.sh`):
//! 1 KiB encrypt + decrypt round trips on an established session, timed
//! the same way as the Python and Kotlin programs next to it (median of 7
//! rounds), once through the core directly and once through the binding's
//! own Rust objects (`Arc`, mutex, owned buffers, but no foreign call),
//! plus the cheapest exported call (`is_session_reset` on an empty buffer).
//! Prints one JSON object.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use sealpost::{Account, PrekeyBundle, Session, SessionPolicy};

const T0: u64 = 1_700_000_000;
const ROUNDS: usize = 7;

/// Nanoseconds per call of `f`: the median of [`ROUNDS`] rounds of `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds.get(ROUNDS / 2).copied().expect("seven rounds")
}

fn main() {
    let n: u32 = std::env::args().nth(1).map_or(20_000, |a| a.parse().expect("iterations"));
    let message = vec![0x5a_u8; 1024];

    // The core, directly.
    let mut rng = sealpost::os_rng();
    let policy = SessionPolicy::default();
    let mut alice = Account::new(&mut rng, T0);
    let mut bob = Account::new(&mut rng, T0);
    let bundle = PrekeyBundle::from_bytes(&bob.bundle(&policy).unwrap().to_bytes()).unwrap();
    let mut a = Session::initiate(&mut rng, &mut alice, &bundle, &policy, T0).unwrap();
    let first = a.encrypt(&mut rng, T0, b"hi").unwrap();
    let sealpost::Envelope::Prekey(first) = sealpost::Envelope::from_bytes(&first).unwrap() else { unreachable!() };
    let (mut b, _) = bob.accept(&policy, T0, &first).unwrap();
    a.decrypt(T0, &b.encrypt(&mut rng, T0, b"back").unwrap()).unwrap();
    let core = per_call(n, || {
        let envelope = a.encrypt(&mut rng, T0, black_box(&message)).unwrap();
        black_box(b.decrypt(T0, &envelope).unwrap());
    });

    // The binding's objects, from Rust.
    let policy = sealpost_ffi::default_policy().unwrap();
    let alice = sealpost_ffi::Account::new(Some(T0)).unwrap();
    let bob = sealpost_ffi::Account::new(Some(T0)).unwrap();
    let bundle = sealpost_ffi::PrekeyBundle::from_bytes(bob.bundle(policy.clone()).unwrap().to_bytes()).unwrap();
    let a = sealpost_ffi::Session::initiate(Arc::clone(&alice), bundle, policy.clone(), Some(T0)).unwrap();
    let accepted = bob.accept(policy, a.encrypt(b"hi".to_vec(), Some(T0)).unwrap(), Some(T0)).unwrap();
    let b = accepted.session;
    a.decrypt(b.encrypt(b"back".to_vec(), Some(T0)).unwrap(), Some(T0)).unwrap();
    let objects = per_call(n, || {
        let envelope = a.encrypt(black_box(message.clone()), Some(T0)).unwrap();
        black_box(b.decrypt(envelope, Some(T0)).unwrap());
    });
    let call = per_call(n.saturating_mul(50), || {
        black_box(sealpost_ffi::is_session_reset(black_box(Vec::new())));
    });
    println!(
        "{{\"language\": \"rust\", \"core_round_trip_ns\": {core:.0}, \"round_trip_ns\": {objects:.0}, \"call_ns\": {call:.1}}}"
    );
}
