//! Dropping key material wipes it: a global allocator records the bytes of
//! every block as it is freed, and the tests look for known secrets there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::hazmat::{SuiteKeys, identity_secret_bytes};
use sealpost::{Account, IdentityKeyPair, SessionPolicy, Suite, SymmetricKey};

struct Recording;

thread_local! {
    // Per thread, so tests running in parallel do not disturb each other.
    static ON: Cell<bool> = const { Cell::new(false) };
    static FREED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn on() -> bool {
    ON.try_with(Cell::get).unwrap_or(false)
}

fn set_on(v: bool) {
    let _ = ON.try_with(|c| c.set(v));
}

unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if on() {
            // Copy the block's last contents before it is freed. Recording
            // is switched off while the log itself grows.
            set_on(false);
            let bytes = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            let _ = FREED.try_with(|f| f.borrow_mut().extend_from_slice(bytes));
            set_on(true);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Recording = Recording;

/// Runs `f` with recording on and returns every freed byte.
fn freed_during(f: impl FnOnce()) -> Vec<u8> {
    FREED.with(|v| v.borrow_mut().clear());
    set_on(true);
    f();
    set_on(false);
    FREED.with(|v| std::mem::take(&mut *v.borrow_mut()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_boxed_symmetric_key_is_wiped_before_its_memory_is_freed() {
    let secret = [0xA5u8; 32];
    let boxed = Box::new(SymmetricKey::from_bytes(secret));
    let freed = freed_during(|| drop(boxed));
    assert!(freed.len() >= 32, "the box was freed while recording");
    assert!(!contains(&freed, &secret[..16]), "key bytes survived in freed memory");
    // The control: a plain array in a box is *not* wiped, so the harness sees it.
    let control = Box::new(secret);
    let freed = freed_during(|| drop(control));
    assert!(contains(&freed, &secret[..16]), "the harness must be able to see unwiped bytes");
}

#[test]
fn suite_keys_are_wiped_on_drop() {
    let keys = Box::new(SuiteKeys::derive(Suite::Aes256Gcm, &SymmetricKey::from_bytes([7; 32]), &[1; 16]).unwrap());
    let enc = *keys.enc_key();
    let freed = freed_during(|| drop(keys));
    assert!(!freed.is_empty());
    assert!(!contains(&freed, &enc[..16]));
}

#[test]
fn an_account_wipes_its_identity_and_prekeys_on_drop() {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let mut account = Box::new(Account::new(&mut rng, 1_700_000_000));
    let _ = account.generate_one_time_prekeys(&mut rng, 5);
    let (seed, dh) = identity_secret_bytes(account.identity_keys());
    let freed = freed_during(|| drop(account));
    assert!(freed.len() > 200, "the account's allocations were freed while recording");
    assert!(!contains(&freed, &seed[..16]), "identity signing seed survived");
    assert!(!contains(&freed, &dh[..16]), "identity X25519 secret survived");
}

#[test]
fn an_identity_key_pair_is_wiped_on_drop() {
    let id = Box::new(IdentityKeyPair::from_secret_bytes(&[0x3C; 32], &[0x4D; 32]));
    let freed = freed_during(|| drop(id));
    assert!(!contains(&freed, &[0x3C; 16]) && !contains(&freed, &[0x4D; 16]));
}

#[test]
fn a_session_pickle_key_and_group_session_are_wiped_on_drop() {
    let mut rng = ChaCha20Rng::from_seed([10; 32]);
    let key = Box::new(sealpost::PickleKey::Key(SymmetricKey::from_bytes([0x6E; 32])));
    let freed = freed_during(|| drop(key));
    assert!(!contains(&freed, &[0x6E; 16]));
    let pass = Box::new(sealpost::PickleKey::passphrase(b"correct horse battery staple"));
    let freed = freed_during(|| drop(pass));
    assert!(!contains(&freed, b"correct horse battery"));
    let id = IdentityKeyPair::generate(&mut rng);
    let group = Box::new(sealpost::GroupSession::new(&mut rng, b"g", &id, &SessionPolicy::default()).unwrap());
    let chain = *group.distribution().chain_key.as_bytes();
    let freed = freed_during(|| drop(group));
    assert!(!contains(&freed, &chain[..16]), "the sender chain key survived");
}
