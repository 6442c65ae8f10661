//! Dropping key material wipes it: a global allocator records the bytes of
//! every block as it is freed, and the tests look for known secrets there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost::hazmat::{
    IdentityKeyPair, SuiteKeys, group_secrets, identity_secret_bytes, message_keys, session_secrets,
};
use sealpost::{
    Account, Envelope, Error, GroupSession, PickleKey, PrekeyBundle, Session, SessionPolicy, Suite, SymmetricKey,
};

struct Recording;

thread_local! {
    // Per thread, so tests running in parallel do not disturb each other.
    static ON: Cell<bool> = const { Cell::new(false) };
    static FREED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    // The size of every block freed while recording, in order.
    static SIZES: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    // Diagnosis of a failure: 16-byte windows to watch for, and where the
    // blocks holding them were freed.
    static WATCH: RefCell<HashSet<[u8; 16]>> = RefCell::new(HashSet::new());
    static TRACES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
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
            let _ = SIZES.try_with(|s| s.borrow_mut().push(layout.size()));
            let _ = WATCH.try_with(|w| {
                let w = w.borrow();
                if !w.is_empty() && bytes.windows(16).any(|x| w.contains(x)) {
                    let trace = format!("{} bytes\n{}", bytes.len(), std::backtrace::Backtrace::force_capture());
                    let _ = TRACES.try_with(|t| t.borrow_mut().push(trace));
                }
            });
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
    SIZES.with(|v| v.borrow_mut().clear());
    set_on(true);
    f();
    set_on(false);
    FREED.with(|v| std::mem::take(&mut *v.borrow_mut()))
}

/// How many blocks were freed while recording so far.
fn blocks_freed() -> usize {
    quiet(|| SIZES.with(|v| v.borrow().len()))
}

/// The sizes of the blocks freed while recording since `blocks_freed()`
/// returned `mark`.
fn sizes_since(mark: usize) -> Vec<usize> {
    quiet(|| SIZES.with(|v| v.borrow().get(mark..).unwrap_or_default().to_vec()))
}

/// Drops `value` while recording and returns the freed bytes, after
/// checking that its own box was among the freed blocks: a test whose
/// value is never freed (leaked, or freed elsewhere) would otherwise pass
/// without looking at anything.
fn dropped<T>(value: Box<T>) -> Vec<u8> {
    let mut sizes = Vec::new();
    let freed = freed_during(|| {
        drop(value);
        sizes = sizes_since(0);
    });
    assert!(sizes.contains(&size_of::<T>()), "no block of {} bytes was freed: {sizes:?}", size_of::<T>());
    freed
}

/// Runs `f` with recording off (the test's own bookkeeping).
fn quiet<T>(f: impl FnOnce() -> T) -> T {
    let was = on();
    set_on(false);
    let out = f();
    set_on(was);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_boxed_symmetric_key_is_wiped_before_its_memory_is_freed() {
    let secret = [0xA5u8; 32];
    let boxed = Box::new(SymmetricKey::from_bytes(secret));
    let freed = dropped(boxed);
    assert!(!contains(&freed, &secret[..16]), "key bytes survived in freed memory");
    // The control: a plain array in a box is *not* wiped, so the harness sees it.
    let control = Box::new(secret);
    let freed = dropped(control);
    assert!(contains(&freed, &secret[..16]), "the harness must be able to see unwiped bytes");
}

#[test]
fn suite_keys_are_wiped_on_drop() {
    let keys = Box::new(SuiteKeys::derive(Suite::Aes256Gcm, &SymmetricKey::from_bytes([7; 32]), &[1; 16]).unwrap());
    let enc = *keys.enc_key();
    let freed = dropped(keys);
    assert!(!contains(&freed, &enc[..16]));
}

#[test]
fn an_account_wipes_its_identity_and_prekeys_on_drop() {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let mut account = Box::new(Account::new(&mut rng, 1_700_000_000));
    let _ = account.generate_one_time_prekeys(&mut rng, 5);
    let (seed, dh) = identity_secret_bytes(&account);
    let freed = dropped(account);
    assert!(freed.len() > 200, "the account's allocations were freed while recording");
    assert!(!contains(&freed, &seed[..16]), "identity signing seed survived");
    assert!(!contains(&freed, &dh[..16]), "identity X25519 secret survived");
}

#[test]
fn an_identity_key_pair_is_wiped_on_drop() {
    let id = Box::new(IdentityKeyPair::from_secret_bytes(&[0x3C; 32], &[0x4D; 32]));
    let freed = dropped(id);
    assert!(!contains(&freed, &[0x3C; 16]) && !contains(&freed, &[0x4D; 16]));
}

#[test]
fn a_session_pickle_key_and_group_session_are_wiped_on_drop() {
    let mut rng = ChaCha20Rng::from_seed([10; 32]);
    let key = Box::new(sealpost::PickleKey::Key(SymmetricKey::from_bytes([0x6E; 32])));
    let freed = dropped(key);
    assert!(!contains(&freed, &[0x6E; 16]));
    let pass = Box::new(sealpost::PickleKey::passphrase(b"correct horse battery staple"));
    let freed = dropped(pass);
    assert!(freed.len() > size_of::<sealpost::PickleKey>(), "the passphrase's own buffer was freed too");
    assert!(!contains(&freed, b"correct horse battery"));
    let id = Account::new(&mut rng, 0);
    let group = Box::new(sealpost::GroupSession::new(&mut rng, b"g", &id, &SessionPolicy::default()).unwrap());
    let chain = *group.distribution().chain_key.as_bytes();
    let freed = dropped(group);
    assert!(!contains(&freed, &chain[..16]), "the sender chain key survived");
}

/// Every secret a conversation used, collected as it goes (with recording
/// off, so the collection itself leaves nothing in the log).
struct Seen {
    session: Vec<[u8; 32]>,
    group: Vec<[u8; 32]>,
}

/// Room for every secret collected: the collection must never grow. A
/// growing `Vec` frees its old buffer unwiped (recording is off then), and
/// the allocator hands that memory out again, stale secrets and all, as
/// the spare capacity of a later block, which the log would then show.
const ROOM: usize = 100_000;

impl Seen {
    fn new() -> Self {
        Self { session: Vec::with_capacity(ROOM), group: Vec::with_capacity(ROOM) }
    }

    /// The collection never grew (see [`ROOM`]).
    fn check_room(&self) {
        assert_eq!((self.session.capacity(), self.group.capacity()), (ROOM, ROOM));
    }

    fn session(&mut self, s: &Session) {
        quiet(|| self.session.extend(session_secrets(s).iter()));
    }

    fn group(&mut self, g: &GroupSession) {
        quiet(|| self.group.extend(group_secrets(g).iter()));
    }

    /// The suite key `receiver` will open `envelope` with, then opens it.
    fn open(&mut self, receiver: &mut Session, envelope: &[u8]) -> Result<Vec<u8>, Error> {
        quiet(|| {
            if let Ok(keys) = message_keys(receiver, envelope) {
                self.session.push(*keys.enc_key());
            }
        });
        let out = receiver.decrypt(1_700_000_000, envelope);
        self.session(receiver);
        out
    }
}

const NOW: u64 = 1_700_000_000;

/// A pairwise conversation that reaches every place a session keeps or
/// drops secrets: skipped keys, a wholly missed epoch, evictions of kept
/// keys, closed-chain records beyond their bound, own ratchet keys beyond
/// theirs, a pickle round trip and a restored sender.
fn pairwise(seen: &mut Seen, suite: Suite) {
    let mut rng = ChaCha20Rng::from_seed([31; 32]);
    let policy = SessionPolicy {
        suites: vec![suite],
        max_messages_per_chain: 3,
        max_skip_per_chain: 6,
        max_skipped_total: 5,
        ..SessionPolicy::default()
    };
    let mut alice_account = Account::new(&mut rng, NOW);
    let mut bob_account = Account::new(&mut rng, NOW);
    let otk = bob_account.generate_one_time_prekeys(&mut rng, 1)[0];
    let wire = bob_account.bundle(&policy).unwrap().with_one_time_prekey(otk).unwrap().to_bytes();
    let bundle = PrekeyBundle::from_bytes(&wire).unwrap();
    let mut alice = Session::initiate(&mut rng, &mut alice_account, &bundle, &policy, NOW).unwrap();
    seen.session(&alice);
    let first = alice.encrypt(&mut rng, NOW, b"m0").unwrap();
    seen.session(&alice);
    let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { panic!("not a prekey message") };
    let (mut bob, plaintext) = bob_account.accept(&policy, NOW, &m).unwrap();
    assert_eq!(plaintext, b"m0");
    seen.session(&bob);

    // Alice's epochs of three messages: m0 a1 a2 | a3 a4 a5 | a6 a7 a8 | a9 a10.
    let a: Vec<Vec<u8>> = (1..=10)
        .map(|i| {
            let e = alice.encrypt(&mut rng, NOW, format!("a{i}").as_bytes()).unwrap();
            seen.session(&alice);
            e
        })
        .collect();
    // a2 skips a1; a6 arrives before all of epoch 1 (missed, derived from
    // a6's header), a9 closes epoch 2: kept keys beyond the bound of 5 are
    // evicted oldest first.
    assert_eq!(seen.open(&mut bob, &a[1]).unwrap(), b"a2");
    assert_eq!(seen.open(&mut bob, &a[5]).unwrap(), b"a6");
    assert_eq!(seen.open(&mut bob, &a[0]).unwrap(), b"a1");
    assert_eq!(seen.open(&mut bob, &a[3]).unwrap(), b"a4");
    assert_eq!(seen.open(&mut bob, &a[8]).unwrap(), b"a9");
    assert_eq!(seen.open(&mut bob, &a[3]), Err(Error::Replay));
    assert_eq!(seen.open(&mut bob, &a[7]).unwrap(), b"a8");
    assert_eq!(seen.open(&mut bob, &a[9]).unwrap(), b"a10");

    // Many turns: own ratchet keys and closed-chain records go past their
    // bounds (4 and 16), and each turn drops a chain.
    for turn in 0..24u32 {
        let (from, to) = if turn % 2 == 0 { (&mut bob, &mut alice) } else { (&mut alice, &mut bob) };
        let text = format!("turn {turn}");
        let e1 = from.encrypt(&mut rng, NOW, text.as_bytes()).unwrap();
        let e2 = from.encrypt(&mut rng, NOW, b"and again").unwrap();
        seen.session(from);
        // The second arrives first: the first's key is kept until it does.
        assert_eq!(seen.open(to, &e2).unwrap(), b"and again");
        assert_eq!(seen.open(to, &e1).unwrap(), text.as_bytes());
    }

    // A pickle round trip; the restored Alice sends in a new epoch.
    let key = PickleKey::Key(SymmetricKey::from_bytes([0x77; 32]));
    let pickle = alice.pickle(&mut rng, &key, b"").unwrap();
    drop(alice);
    let mut alice = Session::from_pickle(&pickle, &key, b"").unwrap();
    let e = alice.encrypt(&mut rng, NOW, b"restored").unwrap();
    seen.session(&alice);
    assert_eq!(seen.open(&mut bob, &e).unwrap(), b"restored");
    // Keys Bob still keeps when the sessions are dropped.
    let late: Vec<_> = (0..3).map(|_| alice.encrypt(&mut rng, NOW, b"late").unwrap()).collect();
    seen.session(&alice);
    assert_eq!(seen.open(&mut bob, &late[2]).unwrap(), b"late");
    let kept = bob.skipped_key_count();
    assert!(kept >= 2);
    // The sessions' own allocations are freed (and looked at) too: every
    // kept key is a 32-byte box of its own.
    let mark = blocks_freed();
    drop((alice, bob));
    let boxes = sizes_since(mark).iter().filter(|n| **n == 32).count();
    assert!(boxes >= kept, "{boxes} boxes of 32 bytes freed with the sessions, {kept} kept keys");
    drop((alice_account, bob_account));
}

/// A group of four that reaches every place a group session keeps or
/// drops secrets: skipped keys and their eviction, a second chain per
/// member and the eviction of the third, a member's removal, a pickle
/// round trip.
fn group(seen: &mut Seen, suite: Suite) {
    let mut rng = ChaCha20Rng::from_seed([32; 32]);
    let policy =
        SessionPolicy { suites: vec![suite], max_skip_per_chain: 6, max_skipped_total: 3, ..SessionPolicy::default() };
    let ids: Vec<Account> = (0..4).map(|_| Account::new(&mut rng, 0)).collect();
    let mut g: Vec<GroupSession> =
        ids.iter().map(|id| GroupSession::new(&mut rng, b"hygiene", id, &policy).unwrap()).collect();
    for i in 0..4 {
        for j in 0..4 {
            if i != j {
                g[i].add_member(*ids[j].identity()).unwrap();
                let skd = g[j].distribution();
                g[i].process_distribution(ids[j].identity(), &skd).unwrap();
            }
        }
    }
    for s in &g {
        seen.group(s);
    }
    // Members 0 and 2 send five each; the others read them out of order.
    let mut sent = vec![Vec::new(); 4];
    for sender in [0, 2] {
        for k in 0..5 {
            let m = g[sender].encrypt(&mut rng, format!("{sender}:{k}").as_bytes()).unwrap();
            seen.group(&g[sender]);
            sent[sender].push(m);
        }
    }
    for reader in [1, 3] {
        for (sender, k) in [(0, 2), (0, 0), (2, 4), (2, 1), (0, 4), (2, 3), (0, 1)] {
            let (from, text) = g[reader].decrypt(&sent[sender][k]).unwrap();
            assert_eq!((from, text), (*ids[sender].identity(), format!("{sender}:{k}").into_bytes()));
            seen.group(&g[reader]);
        }
        // Four keys were kept for member 2's message 4: the oldest was evicted.
        assert_eq!(g[reader].decrypt(&sent[2][0]), Err(Error::OutsideWindow));
    }
    // Member 3 is removed; the others start new chains and hand them out.
    let removed = *ids[3].identity();
    let mut fresh = Vec::new();
    for (member, id) in g.iter_mut().zip(&ids).take(3) {
        fresh.push(member.remove_member(&mut rng, id, &removed).unwrap());
        seen.group(member);
    }
    for (i, member) in g.iter_mut().enumerate().take(3) {
        for (j, skd) in fresh.iter().enumerate() {
            if i != j {
                member.process_distribution(ids[j].identity(), skd).unwrap();
                seen.group(member);
            }
        }
    }
    // Member 0 rotates twice more: member 1 keeps two of its chains and
    // drops the oldest.
    for _ in 0..2 {
        let skd = g[0].rotate(&mut rng, &ids[0]).unwrap();
        g[1].process_distribution(ids[0].identity(), &skd).unwrap();
        let m = g[0].encrypt(&mut rng, b"after rotation").unwrap();
        let _ = g[0].encrypt(&mut rng, b"unread").unwrap();
        let m2 = g[0].encrypt(&mut rng, b"read first").unwrap();
        seen.group(&g[0]);
        assert_eq!(g[1].decrypt(&m2).unwrap().1, b"read first");
        assert_eq!(g[1].decrypt(&m).unwrap().1, b"after rotation");
        seen.group(&g[1]);
    }
    // A pickle round trip of member 1.
    let key = PickleKey::Key(SymmetricKey::from_bytes([0x78; 32]));
    let pickle = g[1].pickle(&mut rng, &key, b"").unwrap();
    let restored = GroupSession::from_pickle(&mut rng, &pickle, &key, b"", &ids[1]).unwrap();
    seen.group(&restored);
    g[1] = restored;
    let mark = blocks_freed();
    drop(g);
    // Each member's view of each other member's chain is a boxed key.
    let boxes = sizes_since(mark).iter().filter(|n| **n == 32).count();
    assert!(boxes >= 4 * 3, "{boxes} boxes of 32 bytes freed with the group sessions");
    drop(ids);
}

/// The 16-byte halves of `secrets` found in `freed`.
fn leaked(freed: &[u8], secrets: &[[u8; 32]]) -> Vec<[u8; 16]> {
    let halves: HashSet<[u8; 16]> =
        secrets.iter().flat_map(|s| [s[..16].try_into().unwrap(), s[16..].try_into().unwrap()]).collect();
    let mut found: Vec<[u8; 16]> =
        freed.windows(16).filter_map(|w| halves.get(w).copied()).collect::<HashSet<_>>().into_iter().collect();
    found.sort_unstable();
    found
}

#[test]
fn a_whole_conversation_leaves_no_secret_in_freed_memory() {
    let mut seen = Seen::new();
    // Every suite: their key schedules and buffers differ.
    let conversation = |seen: &mut Seen| {
        for suite in Suite::ALL {
            pairwise(seen, suite);
            group(seen, suite);
        }
    };
    let freed = freed_during(|| conversation(&mut seen));
    seen.check_room();
    assert!(freed.len() > 100_000, "the conversation's allocations were freed while recording");
    assert!(seen.session.len() > 500 && seen.group.len() > 100, "the conversation used few secrets");
    let session = leaked(&freed, &seen.session);
    let group_leaks = leaked(&freed, &seen.group);
    if session.is_empty() && group_leaks.is_empty() {
        return;
    }
    // Run the same (deterministic) conversation again and note where each
    // block holding a leaked secret was freed.
    WATCH.with(|w| w.borrow_mut().extend(session.iter().chain(&group_leaks)));
    let _ = freed_during(|| {
        conversation(&mut Seen::new());
    });
    WATCH.with(|w| w.borrow_mut().clear());
    let traces = TRACES.with(|t| std::mem::take(&mut *t.borrow_mut()));
    let shown: Vec<&String> = traces.iter().take(6).collect();
    let hex =
        |v: &[[u8; 16]]| v.iter().map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>()).collect::<Vec<_>>();
    panic!(
        "{} session ({:?}) and {} group ({:?}) secret halves survived in freed memory, in {} freed blocks; the first:\n{}",
        session.len(),
        hex(&session),
        group_leaks.len(),
        hex(&group_leaks),
        traces.len(),
        shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n----\n")
    );
}

/// Two sessions that have exchanged messages both ways, with a kept key for
/// a skipped message on Bob's side.
fn talking_pair(rng: &mut ChaCha20Rng) -> (Session, Session) {
    let policy = SessionPolicy::default();
    let mut alice_account = Account::new(rng, NOW);
    let bob_account = Account::new(rng, NOW);
    let bundle = PrekeyBundle::from_bytes(&bob_account.bundle(&policy).unwrap().to_bytes()).unwrap();
    let mut alice = Session::initiate(rng, &mut alice_account, &bundle, &policy, NOW).unwrap();
    let first = alice.encrypt(rng, NOW, b"hi").unwrap();
    let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { panic!("not a prekey message") };
    let mut bob_account = bob_account;
    let (mut bob, _) = bob_account.accept(&policy, NOW, &m).unwrap();
    let reply = bob.encrypt(rng, NOW, b"hello").unwrap();
    alice.decrypt(NOW, &reply).unwrap();
    let _skipped = alice.encrypt(rng, NOW, b"skipped").unwrap();
    let next = alice.encrypt(rng, NOW, b"next").unwrap();
    bob.decrypt(NOW, &next).unwrap();
    (alice, bob)
}

#[test]
fn a_dropped_session_wipes_its_roots_chains_and_kept_keys() {
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let (alice, bob) = talking_pair(&mut rng);
    for session in [alice, bob] {
        let secrets: Vec<[u8; 32]> = quiet(|| session_secrets(&session).to_vec());
        assert!(secrets.len() >= 4, "roots, chains and a kept key: {}", secrets.len());
        let freed = dropped(Box::new(session));
        let leaked = leaked(&freed, &secrets);
        assert!(leaked.is_empty(), "{} of {} session secrets survived the drop", leaked.len(), secrets.len());
    }
}

#[test]
fn account_and_room_pickles_wipe_their_encoding_buffers() {
    let mut rng = ChaCha20Rng::from_seed([13; 32]);
    let key = sealpost::PickleKey::Key(SymmetricKey::from_bytes([0x21; 32]));
    let policy = SessionPolicy::default();
    let mut account = Account::new(&mut rng, NOW);
    let _ = account.generate_one_time_prekeys(&mut rng, 3);
    let (seed, dh) = identity_secret_bytes(&account);
    let mut pickle = Vec::new();
    let freed = freed_during(|| pickle = account.pickle(&mut rng, &key, b"a").unwrap());
    // The encoding (about the pickle's size) was freed while recording: the
    // check below looks at it.
    assert!(freed.len() + 64 >= pickle.len(), "{} bytes freed for a {}-byte pickle", freed.len(), pickle.len());
    assert!(leaked(&freed, &[seed, dh]).is_empty(), "an identity secret survived in a freed encoding buffer");
    quiet(|| drop(pickle));

    let (alice, _bob) = talking_pair(&mut rng);
    let mut room = sealpost::Room::new(&mut rng, b"r", &account, &policy).unwrap();
    let peer = *alice.peer_identity();
    let _ = room.add_member(&mut rng, NOW, alice).unwrap();
    let mut secrets: Vec<[u8; 32]> = quiet(|| group_secrets(room.group()).to_vec());
    let session = room.session(&peer).unwrap();
    quiet(|| secrets.extend(session_secrets(session).iter()));
    let mut pickle = Vec::new();
    let freed = freed_during(|| pickle = room.pickle(&mut rng, &key, b"r").unwrap());
    assert!(freed.len() + 64 >= pickle.len(), "{} bytes freed for a {}-byte pickle", freed.len(), pickle.len());
    let leaked = leaked(&freed, &secrets);
    assert!(leaked.is_empty(), "{} of {} room secrets survived in freed encoding buffers", leaked.len(), secrets.len());
    quiet(|| drop(pickle));
}
