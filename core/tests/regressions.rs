//! Inputs that once crashed (or were chosen as edge cases for) the fuzz
//! targets, replayed through every parser on each test run. A crash found
//! by `fuzz/run.sh` is fixed and its input added to `core/tests/fuzz-regressions/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealpost::{
    Account, Envelope, GroupSession, IdentityPublic, OneTimePrekey, PickleKey, PrekeyBundle, Session, SymmetricKey,
};

#[test]
fn fuzz_regressions_give_typed_errors() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-regressions");
    let mut n = 0;
    let key = PickleKey::Key(SymmetricKey::from_bytes([7; 32]));
    let mut rng = sealpost::os_rng();
    let own = Account::new(&mut rng, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(Envelope::from_bytes(&data).is_err());
        assert!(PrekeyBundle::from_bytes(&data).is_err());
        let _ = IdentityPublic::from_bytes(&data);
        let _ = OneTimePrekey::from_bytes(&data);
        assert!(Account::from_pickle(&data, &key, b"").is_err());
        assert!(Session::from_pickle(&data, &key, b"").is_err());
        assert!(GroupSession::from_pickle(&mut rng, &data, &key, b"", &own).is_err());
        n += 1;
    }
    assert!(n >= 5);
}
