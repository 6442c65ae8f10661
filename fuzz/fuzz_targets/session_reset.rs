//! Session resets (PROTOCOL.md 12B): any bytes to the parser and to a
//! healer, and a genuine reset mutated at fuzzer-chosen offsets. Whatever
//! parses has a valid signature and the exact length, is accepted once by
//! the recipient it names for the session it names, and is refused by its
//! sender (another recipient); nothing altered is accepted; a refusal leaves
//! the healer able to accept the genuine reset.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::hazmat::{SESSION_RESET_LEN, SessionReset};
use sealpost::{Account, Error};
use sealpost::{HealEvent, Healer, is_session_reset};

const NOW: u64 = 1_700_000_000;
const SESSION: [u8; 32] = [5; 32];

struct Fixture {
    from: Account,
    to: Account,
    genuine: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let from = Account::new(&mut rng, 0);
        let to = Account::new(&mut rng, 0);
        let genuine = Healer::default()
            .on_decrypt_failure(&mut rng, &from, to.identity(), Some(SESSION), &Error::AuthenticationFailed, NOW)
            .unwrap();
        Fixture { from, to, genuine }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // Arbitrary bytes: whatever parses is a well-formed, signed reset that
    // its named recipient accepts exactly once for its named session.
    if let Ok(reset) = SessionReset::from_bytes(data) {
        assert_eq!(data.len(), SESSION_RESET_LEN);
        assert!(is_session_reset(data));
        let current = Some(reset.session_id);
        let mut healer = Healer::new(0);
        if reset.from != reset.to {
            assert_eq!(
                healer.accept(data, &reset.from, &reset.from, current, reset.timestamp),
                Err(Error::Misdirected)
            );
        }
        let event = healer.accept(data, &reset.to, &reset.from, current, reset.timestamp).unwrap();
        assert!(matches!(event, HealEvent::Renewed { crossed: false, .. }));
        assert_eq!(healer.accept(data, &reset.to, &reset.from, current, reset.timestamp), Err(Error::Replay));
    }
    // The genuine reset mutated as the input says: (index, xor) pairs.
    let mut healer = Healer::default();
    let mut mutated = f.genuine.clone();
    for pair in data.chunks_exact(3) {
        let at = usize::from(u16::from_be_bytes([pair[0], pair[1]])) % (mutated.len() + 1);
        if at == mutated.len() {
            mutated.push(pair[2]);
        } else {
            mutated[at] ^= pair[2];
        }
    }
    let r = healer.accept(&mutated, f.to.identity(), f.from.identity(), Some(SESSION), NOW);
    if mutated == f.genuine {
        assert!(r.is_ok());
    } else {
        assert!(r.is_err(), "an altered reset was accepted");
        let genuine = healer.accept(&f.genuine, f.to.identity(), f.from.identity(), Some(SESSION), NOW);
        assert!(genuine.is_ok(), "a refusal changed the healer: {genuine:?}");
    }
});
