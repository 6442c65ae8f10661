//! A group member fed arbitrary and mutated group messages: only genuine
//! ones open, each once; nothing panics.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::{Account, GroupSession, SessionPolicy};

struct Fixture {
    reader: GroupSession,
    genuine: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let policy = SessionPolicy::default();
        let a = Account::new(&mut rng, 0);
        let b = Account::new(&mut rng, 0);
        let mut ga = GroupSession::new(&mut rng, b"fuzz", &a, &policy).unwrap();
        let mut gb = GroupSession::new(&mut rng, b"fuzz", &b, &policy).unwrap();
        gb.add_member(*a.identity()).unwrap();
        gb.process_distribution(a.identity(), &ga.distribution()).unwrap();
        let genuine = (0..3u8).map(|i| ga.encrypt(&mut rng, &[i; 20]).unwrap()).collect();
        Fixture { reader: gb, genuine }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut g = f.reader.clone();
    let _ = g.decrypt(data);
    if let Some((&pick, edits)) = data.split_first() {
        let original = &f.genuine[usize::from(pick) % f.genuine.len()];
        let mut mutated = original.clone();
        for pair in edits.chunks_exact(3) {
            let i = usize::from(u16::from_be_bytes([pair[0], pair[1]])) % mutated.len();
            mutated[i] ^= pair[2];
        }
        let mut g = f.reader.clone();
        let result = g.decrypt(&mutated);
        if mutated != *original {
            assert!(result.is_err(), "a mutated group message was accepted");
        }
    }
});
