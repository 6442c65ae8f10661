//! Pickle restore: arbitrary sealed bytes, and arbitrary plaintexts sealed
//! properly (so the decoders behind the authentication are reached), for
//! accounts, sessions and group sessions. Typed errors only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::hazmat::PickleKind;
use sealpost::{Account, GroupSession, PickleKey, Session, SymmetricKey};

fuzz_target!(|data: &[u8]| {
    let key = PickleKey::Key(SymmetricKey::from_bytes([7; 32]));
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let own = Account::new(&mut rng, 0);
    let _ = Account::from_pickle(data, &key, b"");
    let _ = Session::from_pickle(data, &key, b"");
    let _ = GroupSession::from_pickle(&mut rng, data, &key, b"", &own);
    // A group pickle restores only for its own identity: a copy of the
    // input with `own`'s identity spliced in where a group pickle holds it
    // (after vec8(group id) and the suite byte) reaches past that check.
    let mut spliced = data.to_vec();
    let at = usize::from(data.first().copied().unwrap_or(0)) + 2;
    if let Some(slot) = spliced.get_mut(at..at + 128) {
        slot.copy_from_slice(&own.identity().to_bytes());
    }
    for (kind, data) in [
        (PickleKind::Account, data),
        (PickleKind::Session, data),
        (PickleKind::Group, data),
        (PickleKind::Group, &spliced[..]),
    ] {
        let sealed = sealpost::hazmat::seal_pickle(&mut rng, kind, &key, data).expect("sealing works");
        match kind {
            PickleKind::Account => {
                let _ = Account::from_pickle(&sealed, &key, b"");
            }
            PickleKind::Session => {
                if let Ok(mut s) = Session::from_pickle(&sealed, &key, b"") {
                    // A restored session must survive use without panicking.
                    let _ = s.encrypt(&mut rng, 1_700_000_000, b"after restore");
                    let _ = s.decrypt(1_700_000_000, data);
                }
            }
            _ => {
                if let Ok(mut g) = GroupSession::from_pickle(&mut rng, &sealed, &key, b"", &own) {
                    let _ = g.decrypt(data);
                }
            }
        }
    }
});
