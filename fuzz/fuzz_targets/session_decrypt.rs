//! A pairwise session fed arbitrary envelopes and mutations of genuine
//! ones: nothing altered is ever accepted, nothing panics, and a failed
//! decryption leaves the session able to open the genuine messages.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::{Account, Envelope, PrekeyBundle, Session, SessionPolicy};

struct Fixture {
    receiver: Session,
    genuine: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let now = 1_700_000_000;
        let policy = SessionPolicy::default();
        let mut alice = Account::new(&mut rng, now);
        let mut bob = Account::new(&mut rng, now);
        let otk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
        let bundle =
            PrekeyBundle::from_bytes(&bob.bundle(&policy).unwrap().with_one_time_prekey(otk).unwrap().to_bytes())
                .unwrap();
        let mut a = Session::initiate(&mut rng, &mut alice, &bundle, &policy, now).unwrap();
        let first = a.encrypt(&mut rng, now, b"first").unwrap();
        let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { unreachable!() };
        let (mut b, _) = bob.accept(&policy, now, &m).unwrap();
        let reply = b.encrypt(&mut rng, now, b"reply").unwrap();
        a.decrypt(now, &reply).unwrap();
        let mut genuine = Vec::new();
        for i in 0..4u8 {
            genuine.push(a.encrypt(&mut rng, now + u64::from(i) * 2000, &[i; 33]).unwrap());
        }
        Fixture { receiver: b, genuine }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = 1_700_010_000;
    // Arbitrary bytes.
    let mut s = f.receiver.clone();
    let _ = s.decrypt(now, data);
    // A genuine envelope mutated as the input says: (index, xor) pairs.
    if let Some((&pick, edits)) = data.split_first() {
        let original = &f.genuine[usize::from(pick) % f.genuine.len()];
        let mut mutated = original.clone();
        for pair in edits.chunks_exact(3) {
            let i = usize::from(u16::from_be_bytes([pair[0], pair[1]])) % mutated.len();
            mutated[i] ^= pair[2];
        }
        let mut s = f.receiver.clone();
        let result = s.decrypt(now, &mutated);
        if mutated != *original {
            assert!(result.is_err(), "a mutated envelope was accepted");
        }
        // Whatever happened, the genuine messages still open, each once.
        for g in &f.genuine {
            assert!(s.decrypt(now, g).is_ok() || mutated == *g);
        }
    }
});
