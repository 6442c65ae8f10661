//! The store's behaviour, one list of cases run against every backend:
//! [`cases!`] makes each case a test for SQLite (a temporary directory)
//! and for PostgreSQL (a fresh schema in the database at
//! `SEALPOST_TEST_DATABASE_URL`), so neither backend can miss one. Without
//! that variable the PostgreSQL tests fail when `SEALPOST_REQUIRE_POSTGRES`
//! is set (as the test command sets it) and are skipped otherwise, saying
//! so. Cases about several instances open two stores on one schema.

use super::*;

const T0: u64 = 1_700_000_000;

/// A mailbox cap and no sender quota.
fn lim(mailbox: u64) -> DepositLimits {
    DepositLimits { mailbox, sender_quota: u64::MAX }
}

fn handle_limits(ttl: u64) -> HandleLimits {
    HandleLimits { ttl, cooldown: 0, max_attempts: 5, max_pending: 3, codes_per_hour: 6, wrong_per_hour: 10 }
}

/// Where a backend's stores live while a test runs.
pub(crate) enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(Box<tokio_postgres::Config>),
}

impl Place {
    pub(crate) async fn sqlite() -> Option<Self> {
        Some(Place::Sqlite(tempfile::tempdir().unwrap()))
    }

    /// A fresh schema, or `None` (skipped) without a database.
    pub(crate) async fn postgres() -> Option<Self> {
        let mut name = [0u8; 8];
        rand_core::Rng::fill_bytes(&mut sealpost::os_rng(), &mut name);
        let schema: String = name.iter().map(|b| format!("{b:02x}")).collect();
        Self::postgres_schema(&format!("t_{schema}")).await
    }

    /// The fresh schema `schema` (letters, digits and `_`), or `None`
    /// (skipped) without a database.
    pub(crate) async fn postgres_schema(schema: &str) -> Option<Self> {
        let Ok(url) = std::env::var("SEALPOST_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("SEALPOST_REQUIRE_POSTGRES").is_none(),
                "SEALPOST_REQUIRE_POSTGRES is set but SEALPOST_TEST_DATABASE_URL is not"
            );
            eprintln!("skipped: set SEALPOST_TEST_DATABASE_URL to run the PostgreSQL store tests");
            return None;
        };
        let config: tokio_postgres::Config = url.parse().unwrap();
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
        let mut config = config;
        config.options(format!("-c search_path={schema}"));
        Some(Place::Postgres(Box::new(config)))
    }

    /// A connection of the test's own to this PostgreSQL schema.
    async fn sql(&self) -> tokio_postgres::Client {
        let Place::Postgres(config) = self else { panic!("not PostgreSQL") };
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// A store on this place (another instance on the same data each call).
    pub(crate) async fn open(&self) -> Box<dyn Store> {
        match self {
            Place::Sqlite(dir) => Box::new(SqliteStore::open(dir.path()).unwrap()),
            Place::Postgres(config) => Box::new(PgStore::with_config((**config).clone(), 8).await.unwrap()),
        }
    }
}

/// A store on `place` where `accounts` published a bundle.
async fn store_with(place: &Place, accounts: &[AccountId]) -> Box<dyn Store> {
    let store = place.open().await;
    for a in accounts {
        store.publish_bundle(*a, vec![0; 128], vec![0], T0).await.unwrap();
    }
    store
}

/// Two stores on the same data: two instances for PostgreSQL; for SQLite,
/// which is one process's own, the same store twice.
async fn pair(place: &Place, accounts: &[AccountId]) -> (std::sync::Arc<dyn Store>, std::sync::Arc<dyn Store>) {
    let a: std::sync::Arc<dyn Store> = store_with(place, accounts).await.into();
    let b = match place {
        Place::Sqlite(_) => std::sync::Arc::clone(&a),
        Place::Postgres(_) => place.open().await.into(),
    };
    (a, b)
}

/// Each case as a test of each backend.
macro_rules! cases {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let place = super::Place::sqlite().await.unwrap();
                super::$case(&place).await;
            })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(place) = super::Place::postgres().await else { return };
                super::$case(&place).await;
            })+
        }
    };
}

cases!(
    purge_removes_what_arrived_before_the_cut_and_keeps_the_rest,
    purge_frees_the_mailbox_count,
    purge_drops_handle_claims_that_expired_before_the_cut,
    an_envelope_is_stored_once_and_goes_with_its_last_reference,
    the_sender_quota_counts_undelivered_bytes_and_frees_them_on_ack_and_purge,
    bundles_and_one_time_prekeys,
    a_deposit_is_all_or_nothing,
    pages_are_bounded_by_count_and_bytes,
    handle_claims_and_codes,
    everything_survives_reopening,
    concurrent_claims_hand_each_prekey_out_once,
    concurrent_deposits_respect_the_mailbox_cap_and_keep_ids_in_order,
    concurrent_handle_limits_hold_across_instances,
    concurrent_acks_free_each_reference_once,
    a_puller_racing_deposits_never_skips_an_id,
    an_mqtt_mailbox_id_is_given_once_and_survives_reopening,
);

/// The first enrolment's id stays; a second enrolment gets it back; only
/// enrolled accounts have one; the id survives a restart.
async fn an_mqtt_mailbox_id_is_given_once_and_survives_reopening(place: &Place) {
    let (alice, bob, carol) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    {
        let store = store_with(place, &[alice, bob, carol]).await;
        assert_eq!(store.enrol_mqtt(alice, "first".into(), T0).await.unwrap(), "first");
        assert_eq!(store.enrol_mqtt(alice, "second".into(), T0).await.unwrap(), "first");
        assert_eq!(store.enrol_mqtt(bob, "bobs".into(), T0).await.unwrap(), "bobs");
        // Ids are unique: a clash is an error, never a shared mailbox.
        assert!(store.enrol_mqtt(carol, "bobs".into(), T0).await.is_err());
        store.close().await.unwrap();
    }
    let store = place.open().await;
    let mut found = store.mqtt_mailboxes(vec![alice, bob, carol]).await.unwrap();
    found.sort();
    assert_eq!(found, vec![(alice, "first".to_owned()), (bob, "bobs".to_owned())]);
    assert_eq!(store.mqtt_mailboxes(vec![carol]).await.unwrap(), vec![]);
    assert_eq!(store.mqtt_owner("first".into()).await.unwrap(), Some(alice));
    assert_eq!(store.mqtt_owner("second".into()).await.unwrap(), None);
}

/// A mailbox pulled over and over while two stores deposit into it: the
/// cursor never passes an id that commits later, so every deposit is seen
/// exactly once.
async fn a_puller_racing_deposits_never_skips_an_id(place: &Place) {
    let (alice, bob, carol) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let (a, b) = pair(place, &[alice, bob, carol]).await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let puller = {
        let (store, done) = (std::sync::Arc::clone(&a), std::sync::Arc::clone(&done));
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (0, Vec::new());
            loop {
                let last = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = store.pull(bob, cursor, 1000, usize::MAX).await.unwrap();
                if let Some(m) = page.last() {
                    cursor = m.id;
                }
                seen.extend(page.into_iter().map(|m| m.id));
                if last {
                    return seen;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for i in 0..120u8 {
        let store = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b });
        // Some go to carol first, so bob's id is drawn later in the commit.
        let to = if i % 3 == 0 { vec![carol, bob] } else { vec![bob] };
        tasks.push(tokio::spawn(async move { store.deposit(alice, to, vec![i], T0, lim(1000)).await.unwrap() }));
    }
    let mut deposited = Vec::new();
    for t in tasks {
        let ids = t.await.unwrap();
        let page = a.pull(bob, 0, 1000, usize::MAX).await.unwrap();
        deposited.push(*ids.iter().find(|id| page.iter().any(|m| m.id == **id)).expect("bob's delivery"));
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut seen = puller.await.unwrap();
    let pulled = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), pulled, "no id seen twice");
    deposited.sort_unstable();
    assert_eq!(seen, deposited, "every deposit seen by the racing cursor");
}

/// A schema name of the longest kind PostgreSQL allows (63 bytes) still
/// makes a notification channel `pg_notify` takes: deposits go through,
/// and a second store watching the schema is woken for the recipient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_schema_of_63_bytes_deposits_and_wakes() {
    let mut name = [0u8; 8];
    rand_core::Rng::fill_bytes(&mut sealpost::os_rng(), &mut name);
    let suffix: String = name.iter().map(|b| format!("{b:02x}")).collect();
    let schema = format!("t_{suffix}_{}", "x".repeat(63 - 3 - suffix.len()));
    assert_eq!(schema.len(), 63);
    let Some(place) = Place::postgres_schema(&schema).await else { return };
    let (alice, bob) = ([1u8; 32], [2u8; 32]);
    let a = store_with(&place, &[alice, bob]).await;
    let b = place.open().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    b.watch(std::sync::Arc::new(move |w| {
        let _ = tx.send(w);
    }));
    assert!(matches!(tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await, Ok(Some(Wake::All))));
    a.deposit(alice, vec![bob], vec![1], T0, lim(10)).await.unwrap();
    let woken = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await;
    assert!(matches!(woken, Ok(Some(Wake::Account(who))) if who == bob), "{woken:?}");
}

/// Instances starting together on a fresh schema migrate it once, and a
/// schema a newer relay migrated is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_migrate_a_fresh_schema_once_and_refuse_a_newer_one() {
    let Some(place) = Place::postgres().await else { return };
    let Place::Postgres(config) = &place else { unreachable!() };
    let opening: Vec<_> = (0..4).map(|_| tokio::spawn(PgStore::with_config((**config).clone(), 2))).collect();
    for o in opening {
        o.await.unwrap().unwrap();
    }
    let sql = place.sql().await;
    let versions = sql.query("SELECT version FROM sealpost_schema", &[]).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].get::<_, i32>(0), i32::try_from(super::postgres::MIGRATIONS.len()).unwrap());
    sql.execute("UPDATE sealpost_schema SET version = version + 1", &[]).await.unwrap();
    let refused = PgStore::with_config((**config).clone(), 2).await.err().expect("a newer schema is refused");
    assert!(refused.to_string().contains("this relay knows up to"), "{refused}");
}

/// Deposits, acknowledgements and purges through two stores at once leave
/// `account_counters` equal to what the tables hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_counters_match_the_tables_after_racing_deposits_acks_and_purges() {
    let Some(place) = Place::postgres().await else { return };
    let accounts: Vec<AccountId> = (1..=4u8).map(|i| [i; 32]).collect();
    let (a, b) = pair(&place, &accounts).await;
    let mut tasks = Vec::new();
    for i in 0..160usize {
        let store = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b });
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            let (sender, to) = (accounts[i % 4], vec![accounts[(i + 1) % 4], accounts[(i + 2) % 4]]);
            match i % 5 {
                // Old enough for the purges to take.
                0 | 1 => drop(store.deposit(sender, to, vec![0; i], T0, lim(1000)).await.unwrap()),
                2 => drop(store.deposit(sender, to, vec![0; i], T0 + 100, lim(1000)).await.unwrap()),
                3 => {
                    let page = store.pull(accounts[i % 4], 0, 5, usize::MAX).await.unwrap();
                    store.ack(accounts[i % 4], page.into_iter().map(|m| m.id).collect()).await.unwrap();
                }
                _ => drop(store.purge(T0 + 1).await.unwrap()),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let sql = place.sql().await;
    let mismatched: i64 = sql
        .query_one(
            "WITH real AS (
                 SELECT a.account,
                        (SELECT count(*) FROM deliveries d WHERE d.recipient = a.account) AS messages,
                        (SELECT coalesce(sum(octet_length(e.body) + e.refs * $1::bigint), 0)
                           FROM envelopes e WHERE e.sender = a.account) AS stored_bytes
                 FROM accounts a)
             SELECT count(*) FROM real LEFT JOIN account_counters c USING (account)
             WHERE coalesce(c.messages, 0) <> real.messages OR coalesce(c.stored_bytes, 0) <> real.stored_bytes",
            &[&i64::try_from(REFERENCE_BYTES).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mismatched, 0, "every account's counters equal its rows");
    let waiting: i64 = sql.query_one("SELECT count(*) FROM deliveries", &[]).await.unwrap().get(0);
    assert!(waiting > 0, "the race left messages behind, so the check compared something");
}

async fn purge_removes_what_arrived_before_the_cut_and_keeps_the_rest(place: &Place) {
    let (alice, bob) = ([1u8; 32], [2u8; 32]);
    let store = store_with(place, &[alice, bob]).await;
    let old = store.deposit(alice, vec![bob], b"old".to_vec(), T0, lim(10)).await.unwrap();
    let edge = store.deposit(alice, vec![bob], b"edge".to_vec(), T0 + 100, lim(10)).await.unwrap();
    let young = store.deposit(alice, vec![bob], b"young".to_vec(), T0 + 200, lim(10)).await.unwrap();
    // Received strictly before the cut goes; at or after it stays.
    assert_eq!(store.purge(T0 + 100).await.unwrap(), 1);
    let left: Vec<i64> = store.pull(bob, 0, 10, usize::MAX).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(left, [edge[0], young[0]]);
    assert_ne!(left[0], old[0]);
    assert_eq!(store.purge(T0 + 100).await.unwrap(), 0, "nothing more before the same cut");
    assert_eq!(store.purge(T0 + 201).await.unwrap(), 2);
    assert!(store.pull(bob, 0, 10, usize::MAX).await.unwrap().is_empty());
    assert_eq!(store.stats().await.unwrap().envelopes, 0);
}

async fn purge_frees_the_mailbox_count(place: &Place) {
    let (alice, bob) = ([1u8; 32], [2u8; 32]);
    let store = store_with(place, &[alice, bob]).await;
    for i in 0..3u8 {
        store.deposit(alice, vec![bob], vec![i], T0, lim(3)).await.unwrap();
    }
    assert_eq!(
        store.deposit(alice, vec![bob], b"full".to_vec(), T0, lim(3)).await,
        Err(StoreError::MailboxFull(account_name(&bob)))
    );
    assert_eq!(store.purge(T0 + 1).await.unwrap(), 3);
    // The count followed: the mailbox takes three again, not zero.
    for i in 0..3u8 {
        store.deposit(alice, vec![bob], vec![i], T0 + 1, lim(3)).await.unwrap();
    }
    assert_eq!(
        store.deposit(alice, vec![bob], b"x".to_vec(), T0 + 1, lim(3)).await,
        Err(StoreError::MailboxFull(account_name(&bob)))
    );
}

async fn purge_drops_handle_claims_that_expired_before_the_cut(place: &Place) {
    let alice = [1u8; 32];
    let store = store_with(place, &[alice]).await;
    let hash = [7u8; 32];
    store.claim_handle("old".into(), alice, hash, T0, handle_limits(10)).await.unwrap();
    store.claim_handle("live".into(), alice, hash, T0, handle_limits(1000)).await.unwrap();
    // "old" expired at T0 + 10; the cut at T0 + 11 removes its claim.
    store.purge(T0 + 11).await.unwrap();
    assert_eq!(
        store.verify_handle("old".into(), alice, hash, T0 + 11, handle_limits(0)).await,
        Ok(HandleCheck::NoClaim)
    );
    assert_eq!(
        store.verify_handle("live".into(), alice, hash, T0 + 11, handle_limits(0)).await,
        Ok(HandleCheck::Bound)
    );
}

async fn an_envelope_is_stored_once_and_goes_with_its_last_reference(place: &Place) {
    let (alice, bob, carol, dave) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
    let store = store_with(place, &[alice, bob, carol, dave]).await;
    let body = vec![9u8; 10_000];
    let ids = store.deposit(alice, vec![bob, carol, dave], body.clone(), T0, lim(10)).await.unwrap();
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.envelopes, stats.envelope_bytes), (3, 1, 10_000));
    for (who, id) in [(bob, ids[0]), (carol, ids[1]), (dave, ids[2])] {
        let page = store.pull(who, 0, 10, usize::MAX).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!((page[0].id, page[0].sender, &page[0].envelope, page[0].received_at), (id, alice, &body, T0));
    }
    // Nobody can drop another's reference, nor the same one twice.
    assert_eq!(store.ack(bob, vec![ids[1], ids[2]]).await.unwrap(), 0);
    assert_eq!(store.ack(bob, vec![ids[0], ids[0]]).await.unwrap(), 1);
    assert_eq!(store.ack(bob, vec![ids[0]]).await.unwrap(), 0);
    assert_eq!(store.ack(carol, vec![ids[1]]).await.unwrap(), 1);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.envelopes), (1, 1), "dave still holds it");
    assert_eq!(store.pull(dave, 0, 10, usize::MAX).await.unwrap()[0].envelope, body);
    assert_eq!(store.ack(dave, vec![ids[2]]).await.unwrap(), 1);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.envelopes, stats.envelope_bytes), (0, 0, 0));
}

async fn the_sender_quota_counts_undelivered_bytes_and_frees_them_on_ack_and_purge(place: &Place) {
    let (alice, bob, carol) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let store = store_with(place, &[alice, bob, carol]).await;
    let cost = stored_cost(1000, 2);
    let limits = DepositLimits { mailbox: 100, sender_quota: 3 * cost };
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(store.deposit(alice, vec![bob, carol], vec![0; 1000], T0, limits).await.unwrap());
    }
    assert_eq!(
        store.deposit(alice, vec![bob, carol], vec![0; 1000], T0, limits).await,
        Err(StoreError::SenderQuota(3 * cost, 3 * cost))
    );
    // Another sender is not affected.
    store.deposit(bob, vec![carol], vec![0; 1000], T0, limits).await.unwrap();
    // One reference acknowledged frees only that reference...
    store.ack(bob, vec![ids[0][0]]).await.unwrap();
    assert_eq!(
        store.deposit(alice, vec![bob], vec![0; 1], T0, limits).await,
        Err(StoreError::SenderQuota(3 * cost - REFERENCE_BYTES, 3 * cost))
    );
    // ...the last one the envelope too.
    store.ack(carol, vec![ids[0][1]]).await.unwrap();
    store.deposit(alice, vec![bob, carol], vec![0; 1000], T0 + 10, limits).await.unwrap();
    // Expired envelopes free their bytes; the count is read again.
    store.purge(T0 + 1).await.unwrap();
    for _ in 0..2 {
        store.deposit(alice, vec![bob, carol], vec![0; 1000], T0 + 10, limits).await.unwrap();
    }
    assert_eq!(
        store.deposit(alice, vec![bob, carol], vec![0; 1000], T0 + 10, limits).await,
        Err(StoreError::SenderQuota(3 * cost, 3 * cost))
    );
}

async fn bundles_and_one_time_prekeys(place: &Place) {
    let (alice, nobody) = ([1u8; 32], [9u8; 32]);
    let store = place.open().await;
    assert!(!store.is_known(alice).await.unwrap());
    assert_eq!(store.identity(alice).await.unwrap(), None);
    assert_eq!(store.claim_bundle(alice).await.unwrap(), None);
    assert_eq!(
        store.add_one_time_prekeys(nobody, vec![(1, vec![1; 100])], 10).await,
        Err(StoreError::UnknownAccount(account_name(&nobody)))
    );
    store.publish_bundle(alice, vec![1; 128], b"first".to_vec(), T0).await.unwrap();
    store.publish_bundle(alice, vec![2; 128], b"second".to_vec(), T0 + 1).await.unwrap();
    assert!(store.is_known(alice).await.unwrap());
    assert!(!store.is_known(nobody).await.unwrap());
    // At most `max` are kept; a key id already held is not counted again.
    let keys: Vec<(u32, Vec<u8>)> = (10..20u32).map(|i| (i, vec![u8::try_from(i).unwrap(); 100])).collect();
    assert_eq!(store.add_one_time_prekeys(alice, keys[..3].to_vec(), 5).await.unwrap(), 3);
    assert_eq!(store.add_one_time_prekeys(alice, keys.clone(), 5).await.unwrap(), 5);
    assert_eq!(store.identity(alice).await.unwrap(), Some((vec![2; 128], 5)));
    // Handed out lowest id first, each once, then the bundle alone.
    for (i, expected) in (10..15u8).enumerate() {
        let claimed = store.claim_bundle(alice).await.unwrap().unwrap();
        assert_eq!(claimed.bundle, b"second");
        assert_eq!(claimed.one_time_prekey, Some(vec![expected; 100]));
        assert_eq!(claimed.remaining, 4 - u64::try_from(i).unwrap());
    }
    let last = store.claim_bundle(alice).await.unwrap().unwrap();
    assert_eq!((last.one_time_prekey, last.remaining), (None, 0));
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.accounts, stats.one_time_prekeys), (1, 0));
}

async fn a_deposit_is_all_or_nothing(place: &Place) {
    let (alice, bob, carol, nobody) = ([1u8; 32], [2u8; 32], [3u8; 32], [9u8; 32]);
    let store = store_with(place, &[alice, bob, carol]).await;
    assert_eq!(
        store.deposit(alice, vec![bob, nobody], b"x".to_vec(), T0, lim(10)).await,
        Err(StoreError::UnknownAccount(account_name(&nobody)))
    );
    store.deposit(alice, vec![carol], b"fill".to_vec(), T0, lim(1)).await.unwrap();
    // Carol is full: Bob gets nothing either.
    assert_eq!(
        store.deposit(alice, vec![bob, carol], b"x".to_vec(), T0, lim(1)).await,
        Err(StoreError::MailboxFull(account_name(&carol)))
    );
    assert!(store.pull(bob, 0, 10, usize::MAX).await.unwrap().is_empty());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.messages, stats.envelopes), (1, 1));
}

async fn pages_are_bounded_by_count_and_bytes(place: &Place) {
    let (alice, bob) = ([1u8; 32], [2u8; 32]);
    let store = store_with(place, &[alice, bob]).await;
    let mut ids = Vec::new();
    for len in [100usize, 200, 300, 5000, 10] {
        ids.extend(store.deposit(alice, vec![bob], vec![7; len], T0, lim(100)).await.unwrap());
    }
    let page = |after, limit, bytes| {
        let store = &store;
        async move {
            let got = store.pull(bob, after, limit, bytes).await.unwrap();
            got.iter().map(|m| m.envelope.len()).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(0, 10, usize::MAX).await, [100, 200, 300, 5000, 10]);
    assert_eq!(page(0, 2, usize::MAX).await, [100, 200]);
    assert_eq!(page(0, 10, 600).await, [100, 200, 300], "stops at the first that does not fit");
    assert_eq!(page(0, 10, 599).await, [100, 200]);
    assert_eq!(page(ids[2], 10, 10).await, [5000], "the first is returned however large");
    assert_eq!(page(ids[3], 10, 10).await, [10]);
    assert!(page(ids[4], 10, usize::MAX).await.is_empty());
}

async fn handle_claims_and_codes(place: &Place) {
    let (alice, bob, carol, dave, erin) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32], [5u8; 32]);
    let store = store_with(place, &[alice, bob, carol, dave, erin]).await;
    let (right, wrong) = ([1u8; 32], [2u8; 32]);
    let limits =
        HandleLimits { ttl: 600, cooldown: 60, max_attempts: 3, max_pending: 2, codes_per_hour: 4, wrong_per_hour: 4 };
    let claim = |who, at| store.claim_handle("ann".into(), who, right, at, limits);
    let verify = |who, code, at| store.verify_handle("ann".into(), who, code, at, limits);

    assert_eq!(verify(alice, right, T0).await, Ok(HandleCheck::NoClaim));
    claim(alice, T0).await.unwrap();
    assert_eq!(claim(alice, T0 + 10).await, Err(StoreError::RetryLater(50)), "cooldown");
    assert_eq!(verify(alice, wrong, T0 + 1).await, Ok(HandleCheck::WrongCode(2)));
    // A renewed claim keeps the wrong attempts while the old code lived.
    claim(alice, T0 + 60).await.unwrap();
    assert_eq!(verify(alice, wrong, T0 + 61).await, Ok(HandleCheck::WrongCode(1)));
    claim(bob, T0 + 62).await.unwrap();
    // Two accounts hold claims: a third waits until the first expires.
    assert_eq!(claim(carol, T0 + 63).await, Err(StoreError::RetryLater(600 + 60 + 1 - 63)));
    assert_eq!(verify(alice, wrong, T0 + 64).await, Ok(HandleCheck::TooManyAttempts));
    assert_eq!(verify(alice, right, T0 + 65).await, Ok(HandleCheck::TooManyAttempts), "locked, even the right code");
    // Bob's code expires unused.
    assert_eq!(verify(bob, right, T0 + 62 + 601).await, Ok(HandleCheck::Expired));
    // The hour's codes: alice twice, bob once, and one more.
    claim(dave, T0 + 62 + 602).await.unwrap();
    assert_eq!(claim(erin, T0 + 62 + 603).await, Err(StoreError::RetryLater(3600 - 62 - 603)));
    assert_eq!(verify(dave, right, T0 + 62 + 604).await, Ok(HandleCheck::Bound));
    assert_eq!(store.lookup_handle("ann".into()).await.unwrap(), Some((dave, vec![0; 128])));
    assert_eq!(store.lookup_handle("bea".into()).await.unwrap(), None);
    // Bound to dave: nobody else may claim it, dave may renew.
    assert_eq!(claim(erin, T0 + 7200).await, Err(StoreError::HandleTaken));
    claim(dave, T0 + 7200).await.unwrap();

    // Wrong codes across accounts lock the handle for the hour.
    let locks = |who, code, at| store.verify_handle("cy".into(), who, code, at, limits);
    for who in [alice, bob] {
        store.claim_handle("cy".into(), who, right, T0, limits).await.unwrap();
    }
    for (who, left) in [(alice, 2), (bob, 2), (alice, 1), (bob, 1)] {
        assert_eq!(locks(who, wrong, T0 + 1).await, Ok(HandleCheck::WrongCode(left)));
    }
    assert_eq!(locks(alice, right, T0 + 2).await, Ok(HandleCheck::Locked(3600 - 2)));
    assert_eq!(store.lookup_handle("cy".into()).await.unwrap(), None);
}

/// Handle limits raced through two stores at once (two instances on
/// PostgreSQL): 12 accounts claim one handle, 3 may hold claims; then the
/// hour's codes; then 12 wrong codes at once against a cap of 4.
async fn concurrent_handle_limits_hold_across_instances(place: &Place) {
    let accounts: Vec<AccountId> = (1..=12u8).map(|i| [i; 32]).collect();
    let (a, b) = pair(place, &accounts).await;
    let limits = |max_pending, codes_per_hour, wrong_per_hour| HandleLimits {
        ttl: 600,
        cooldown: 0,
        max_attempts: 5,
        max_pending,
        codes_per_hour,
        wrong_per_hour,
    };
    let race = |handle: &'static str, lim: HandleLimits, verify: bool| {
        let tasks: Vec<_> = accounts
            .iter()
            .enumerate()
            .map(|(i, who)| {
                let (store, who) = (std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b }), *who);
                tokio::spawn(async move {
                    if verify {
                        store.verify_handle(handle.into(), who, [2; 32], T0 + 1, lim).await.map(|c| format!("{c:?}"))
                    } else {
                        store.claim_handle(handle.into(), who, [1; 32], T0, lim).await.map(|()| "claimed".to_owned())
                    }
                })
            })
            .collect();
        async move {
            let mut outcomes = Vec::new();
            for t in tasks {
                outcomes.push(match t.await.unwrap() {
                    Ok(o) => o,
                    Err(StoreError::RetryLater(_)) => "retry later".to_owned(),
                    Err(e) => panic!("{e}"),
                });
            }
            outcomes.sort();
            outcomes
        }
    };
    let count = |outcomes: &[String], what: &str| outcomes.iter().filter(|o| o.starts_with(what)).count();
    let pending = race("dee", limits(3, 100, 100), false).await;
    assert_eq!((count(&pending, "claimed"), count(&pending, "retry later")), (3, 9), "{pending:?}");
    let hourly = race("eve", limits(100, 5, 100), false).await;
    assert_eq!((count(&hourly, "claimed"), count(&hourly, "retry later")), (5, 7), "{hourly:?}");
    // Every account claims "fay", then all send a wrong code at once.
    for who in &accounts {
        a.claim_handle("fay".into(), *who, [1; 32], T0, limits(100, 100, 4)).await.unwrap();
    }
    let wrong = race("fay", limits(100, 100, 4), true).await;
    assert_eq!((count(&wrong, "WrongCode"), count(&wrong, "Locked")), (4, 8), "{wrong:?}");
}

async fn everything_survives_reopening(place: &Place) {
    let (alice, bob) = ([1u8; 32], [2u8; 32]);
    let ids = {
        let store = store_with(place, &[alice, bob]).await;
        store.add_one_time_prekeys(bob, vec![(1, vec![1; 100]), (2, vec![2; 100])], 10).await.unwrap();
        let ids = store.deposit(alice, vec![bob], b"kept".to_vec(), T0, lim(2)).await.unwrap();
        store.close().await.unwrap();
        ids
    };
    let store = place.open().await;
    assert!(store.is_known(alice).await.unwrap() && store.is_known(bob).await.unwrap());
    let page = store.pull(bob, 0, 10, usize::MAX).await.unwrap();
    assert_eq!((page[0].id, page[0].envelope.as_slice()), (ids[0], &b"kept"[..]));
    assert_eq!(store.claim_bundle(bob).await.unwrap().unwrap().remaining, 1);
    // The mailbox count came back with the data: one more fits, not two.
    store.deposit(alice, vec![bob], b"two".to_vec(), T0, lim(2)).await.unwrap();
    assert_eq!(
        store.deposit(alice, vec![bob], b"three".to_vec(), T0, lim(2)).await,
        Err(StoreError::MailboxFull(account_name(&bob)))
    );
    let next = store.deposit(alice, vec![alice], b"x".to_vec(), T0, lim(2)).await.unwrap();
    assert!(next[0] > ids[0], "ids never go back");
}

/// Two stores on the same data ([`pair`]) claiming at once: every prekey goes to exactly one claimer.
async fn concurrent_claims_hand_each_prekey_out_once(place: &Place) {
    let bob = [2u8; 32];
    let (a, b) = pair(place, &[bob]).await;
    let keys: Vec<(u32, Vec<u8>)> = (0..40u32).map(|i| (i, i.to_be_bytes().repeat(25))).collect();
    a.add_one_time_prekeys(bob, keys.clone(), 1000).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b });
        tasks.push(tokio::spawn(async move { store.claim_bundle(bob).await.unwrap().unwrap().one_time_prekey }));
    }
    let mut handed = Vec::new();
    for t in tasks {
        if let Some(k) = t.await.unwrap() {
            handed.push(k);
        }
    }
    handed.sort();
    let mut expected: Vec<Vec<u8>> = keys.into_iter().map(|(_, k)| k).collect();
    expected.sort();
    assert_eq!(handed, expected, "each of the 40 exactly once");
}

/// Deposits through two stores at once into one mailbox: the cap holds
/// exactly, and every mailbox's ids come back in increasing order.
async fn concurrent_deposits_respect_the_mailbox_cap_and_keep_ids_in_order(place: &Place) {
    let (alice, bob, carol) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let (a, b) = pair(place, &[alice, bob, carol]).await;
    let mut tasks = Vec::new();
    for i in 0..80u8 {
        let store = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b });
        // Half go to both mailboxes (in either order), half to bob's alone.
        let to = match i % 4 {
            0 => vec![bob, carol],
            1 => vec![carol, bob],
            _ => vec![bob],
        };
        tasks.push(tokio::spawn(async move { store.deposit(alice, to, vec![i], T0, lim(50)).await }));
    }
    let (mut stored, mut full) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => stored += 1,
            Err(StoreError::MailboxFull(_)) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((stored, full), (50, 30), "bob's cap of 50 held exactly");
    let page = a.pull(bob, 0, 1000, usize::MAX).await.unwrap();
    assert_eq!(page.len(), 50);
    assert!(page.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(a.stats().await.unwrap().messages, 50 + b.pull(carol, 0, 1000, usize::MAX).await.unwrap().len() as u64);
}

/// The same messages acknowledged through two stores at once: each goes
/// once, and the sender's bytes come back exactly once.
async fn concurrent_acks_free_each_reference_once(place: &Place) {
    let (alice, bob) = ([1u8; 32], [2u8; 32]);
    let (a, b) = pair(place, &[alice, bob]).await;
    let cost = stored_cost(100, 1);
    let limits = DepositLimits { mailbox: 1000, sender_quota: 20 * cost };
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.extend(a.deposit(alice, vec![bob], vec![0; 100], T0, limits).await.unwrap());
    }
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b });
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move { store.ack(bob, ids).await.unwrap() }));
    }
    let mut deleted = 0;
    for t in tasks {
        deleted += t.await.unwrap();
    }
    assert_eq!(deleted, 20);
    assert_eq!(a.stats().await.unwrap(), Stats { accounts: 2, ..Stats::default() });
    // The whole quota is free again, and no more than that.
    for _ in 0..20 {
        b.deposit(alice, vec![bob], vec![0; 100], T0, limits).await.unwrap();
    }
    assert_eq!(
        b.deposit(alice, vec![bob], vec![0; 100], T0, limits).await,
        Err(StoreError::SenderQuota(20 * cost, 20 * cost))
    );
}

/// Nonces recorded through one PostgreSQL store are seen by another on
/// the same schema until they expire and are swept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nonces_are_shared_until_they_expire() {
    let Some(place) = Place::postgres().await else { return };
    let (a, b) = (place.open().await, place.open().await);
    let alice = [1u8; 32];
    assert!(a.record_nonce(alice, T0, [7; 16], T0 + 360, vec![]).await.unwrap().unwrap());
    assert!(
        !b.record_nonce(alice, T0, [7; 16], T0 + 360, vec![]).await.unwrap().unwrap(),
        "a replay through the other instance"
    );
    assert!(
        b.record_nonce(alice, T0 + 1, [7; 16], T0 + 361, vec![]).await.unwrap().unwrap(),
        "another time is another request"
    );
    assert!(b.record_nonce([2; 32], T0, [7; 16], T0 + 360, vec![]).await.unwrap().unwrap(), "another account's");
    assert_eq!(a.sweep_shared(T0 + 360).await.unwrap(), 0, "kept until it expires");
    assert_eq!(a.sweep_shared(T0 + 361).await.unwrap(), 2);
    assert!(a.record_nonce(alice, T0, [7; 16], T0 + 360, vec![]).await.unwrap().unwrap(), "forgotten once expired");

    // With charges: recorded only with the tokens, and kept only then.
    let bucket = |cost| vec![Charge { key: b"n".to_vec(), rate: 0.001, burst: 2.0, cost }];
    assert_eq!(a.record_nonce(alice, T0, [1; 16], T0 + 360, bucket(1.0)).await.unwrap(), Ok(true));
    assert_eq!(b.record_nonce(alice, T0, [2; 16], T0 + 360, bucket(1.0)).await.unwrap(), Ok(true));
    assert_eq!(a.record_nonce(alice, T0, [3; 16], T0 + 360, bucket(1.0)).await.unwrap(), Err(1000));
    assert_eq!(a.record_nonce(alice, T0, [1; 16], T0 + 360, bucket(1.0)).await.unwrap(), Ok(false), "a replay");
    assert_eq!(a.take_tokens(bucket(-1.0)).await.unwrap(), Ok(()));
    assert_eq!(
        b.record_nonce(alice, T0, [3; 16], T0 + 360, bucket(1.0)).await.unwrap(),
        Ok(true),
        "the refused one was not kept"
    );
}

fn shared_session(account: AccountId, expires: u64) -> SharedSession {
    SharedSession { account, key: zeroize::Zeroizing::new([9; 32]), expires }
}

/// A relay session opened through one PostgreSQL store is read by
/// another; each sequence number is accepted once across both, only
/// within the window behind the highest, only until the session expires;
/// an account keeps its newest sessions; and the sweep drops the expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_relay_sessions_are_shared_and_each_sequence_number_counts_once() {
    let Some(place) = Place::postgres().await else { return };
    let (a, b): (std::sync::Arc<dyn Store>, std::sync::Arc<dyn Store>) =
        (place.open().await.into(), place.open().await.into());
    assert!(a.shared() && !SqliteStore::open(tempfile::tempdir().unwrap().path()).unwrap().shared());
    let (alice, id) = ([1u8; 32], [3u8; 16]);
    a.open_session(id, shared_session(alice, T0 + 100), 8).await.unwrap();
    let read = b.session(id).await.unwrap().expect("the other instance finds it");
    assert_eq!((read.account, *read.key, read.expires), (alice, [9; 32], T0 + 100));
    assert!(b.session([4; 16]).await.unwrap().is_none());
    assert_eq!(b.accept_seq([4; 16], 1, T0, vec![]).await.unwrap(), SeqCheck::Unknown);

    let seq = |store: &std::sync::Arc<dyn Store>, n: u64| {
        let store = std::sync::Arc::clone(store);
        async move { store.accept_seq(id, n, T0, vec![]).await.unwrap() }
    };
    assert_eq!(seq(&a, 5).await, SeqCheck::Accepted);
    assert_eq!(seq(&b, 5).await, SeqCheck::Replayed, "a replay through the other instance");
    assert_eq!(seq(&b, 3).await, SeqCheck::Accepted, "out of order inside the window");
    assert_eq!(seq(&a, 3).await, SeqCheck::Replayed);
    assert_eq!(seq(&a, 0).await, SeqCheck::Replayed, "0 is never a sequence number");
    assert_eq!(seq(&a, u64::MAX).await, SeqCheck::Replayed, "beyond the database's integers");
    assert_eq!(seq(&a, 2000).await, SeqCheck::Accepted);
    assert_eq!(seq(&b, 2000 - 1024).await, SeqCheck::Replayed, "behind the window");
    assert_eq!(seq(&b, 2000 - 1023).await, SeqCheck::Accepted, "the window's oldest place");
    assert_eq!(seq(&a, 2000 - 1023).await, SeqCheck::Replayed);
    assert_eq!(seq(&a, 1999).await, SeqCheck::Accepted);
    // A jump of more than the window clears it; what was seen is behind it.
    assert_eq!(seq(&b, 10_000).await, SeqCheck::Accepted);
    assert_eq!(seq(&a, 1999).await, SeqCheck::Replayed);
    assert_eq!(seq(&a, 9_999).await, SeqCheck::Accepted, "not marked seen by the jump");
    // A jump of exactly 64 moves bits across words of the window.
    assert_eq!(seq(&a, 10_064).await, SeqCheck::Accepted);
    assert_eq!(seq(&b, 10_000).await, SeqCheck::Replayed);
    assert_eq!(seq(&b, 9_999).await, SeqCheck::Replayed);
    assert_eq!(seq(&b, 9_998).await, SeqCheck::Accepted);

    // The same number offered through both stores at once: one wins.
    let racers: Vec<_> = (0..40).map(|i| tokio::spawn(seq(if i % 2 == 0 { &a } else { &b }, 20_000))).collect();
    let mut accepted = 0;
    for r in racers {
        accepted += usize::from(r.await.unwrap() == SeqCheck::Accepted);
    }
    assert_eq!(accepted, 1);

    // With charges: a number is recorded only with the tokens.
    let bucket = |cost| vec![Charge { key: b"s".to_vec(), rate: 0.001, burst: 1.0, cost }];
    assert_eq!(a.accept_seq(id, 25_000, T0, bucket(1.0)).await.unwrap(), SeqCheck::Accepted);
    assert_eq!(b.accept_seq(id, 25_001, T0, bucket(1.0)).await.unwrap(), SeqCheck::RateLimited(1000));
    assert_eq!(b.accept_seq(id, 25_000, T0, bucket(1.0)).await.unwrap(), SeqCheck::Replayed, "no tokens for a replay");
    assert_eq!(a.take_tokens(bucket(-1.0)).await.unwrap(), Ok(()));
    assert_eq!(b.accept_seq(id, 25_001, T0, bucket(1.0)).await.unwrap(), SeqCheck::Accepted, "not used by the refusal");
    assert_eq!(
        a.accept_seq(id, 30_000, T0 + 100, vec![]).await.unwrap(),
        SeqCheck::Accepted,
        "valid to its last second"
    );
    assert_eq!(a.accept_seq(id, 30_001, T0 + 101, vec![]).await.unwrap(), SeqCheck::Expired);

    // An account keeps its newest sessions only.
    let ids: Vec<[u8; 16]> = (0..10u8).map(|i| [100 + i; 16]).collect();
    for i in &ids {
        b.open_session(*i, shared_session([2; 32], T0 + 1000), 8).await.unwrap();
    }
    assert!(a.session(ids[0]).await.unwrap().is_none() && a.session(ids[1]).await.unwrap().is_none());
    assert_eq!(a.accept_seq(ids[1], 1, T0, vec![]).await.unwrap(), SeqCheck::Unknown);
    for i in &ids[2..] {
        assert!(a.session(*i).await.unwrap().is_some());
    }
    assert!(a.session(id).await.unwrap().is_some(), "another account's session is untouched");

    // The sweep drops the expired session and nothing else.
    let rows = |c: tokio_postgres::Client| async move {
        c.query_one("SELECT count(*) FROM relay_sessions", &[]).await.unwrap().get::<_, i64>(0)
    };
    assert_eq!(rows(place.sql().await).await, 9);
    a.sweep_shared(T0 + 101).await.unwrap();
    assert_eq!(rows(place.sql().await).await, 8);
    assert!(b.session(id).await.unwrap().is_none());
}

fn charge(key: &[u8], burst: f64, cost: f64) -> Charge {
    Charge { key: key.to_vec(), rate: 0.001, burst, cost }
}

/// Rate-limit buckets taken through two PostgreSQL stores are one bucket:
/// all charges of a take or none, exact under concurrent takes, refunds
/// up to the burst, and the sweep forgets only full buckets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rate_buckets_are_shared_exact_and_all_or_none() {
    let Some(place) = Place::postgres().await else { return };
    let (a, b): (std::sync::Arc<dyn Store>, std::sync::Arc<dyn Store>) =
        (place.open().await.into(), place.open().await.into());
    assert_eq!(a.take_tokens(vec![charge(b"k1", 5.0, 3.0)]).await.unwrap(), Ok(()));
    // 2 left at 0.001 per second: a cost of 3 waits (3 - 2) / 0.001 s.
    assert_eq!(b.take_tokens(vec![charge(b"k1", 5.0, 3.0)]).await.unwrap(), Err(1000));
    assert_eq!(b.take_tokens(vec![charge(b"k1", 5.0, 2.0)]).await.unwrap(), Ok(()));
    // All or none: k1 is empty, so k2 keeps its tokens.
    let both = vec![charge(b"k2", 5.0, 1.0), charge(b"k1", 5.0, 1.0)];
    assert!(a.take_tokens(both).await.unwrap().is_err());
    assert_eq!(a.take_tokens(vec![charge(b"k2", 5.0, 5.0)]).await.unwrap(), Ok(()), "k2 was not charged");
    // A refund gives tokens back, never beyond the burst.
    assert_eq!(b.take_tokens(vec![charge(b"k1", 5.0, -2.0)]).await.unwrap(), Ok(()));
    assert_eq!(a.take_tokens(vec![charge(b"k1", 5.0, 2.0)]).await.unwrap(), Ok(()));
    assert!(a.take_tokens(vec![charge(b"k1", 5.0, 1.0)]).await.unwrap().is_err());
    assert_eq!(a.take_tokens(vec![charge(b"k3", 5.0, -100.0)]).await.unwrap(), Ok(()));
    assert_eq!(a.take_tokens(vec![charge(b"k3", 5.0, 5.0)]).await.unwrap(), Ok(()));
    assert!(a.take_tokens(vec![charge(b"k3", 5.0, 1.0)]).await.unwrap().is_err(), "the refund stopped at the burst");
    // A cost above the burst takes a full bucket.
    assert_eq!(a.take_tokens(vec![charge(b"k4", 5.0, 50.0)]).await.unwrap(), Ok(()));
    assert!(a.take_tokens(vec![charge(b"k4", 5.0, 1.0)]).await.unwrap().is_err());

    // 40 takes at once through both stores from a bucket of 10: 10 pass.
    let racers: Vec<_> = (0..40)
        .map(|i| {
            let store = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &b });
            let charges = vec![charge(b"race", 10.0, 1.0), charge(&[b'x', i], 1.0, 1.0)];
            tokio::spawn(async move { store.take_tokens(charges).await.unwrap() })
        })
        .collect();
    let mut passed = 0;
    for r in racers {
        passed += usize::from(r.await.unwrap().is_ok());
    }
    assert_eq!(passed, 10);

    // Refilled at 1000 per second, a bucket is full again within
    // milliseconds and swept; the slow ones are kept.
    let fast = Charge { key: b"fast".to_vec(), rate: 1000.0, burst: 5.0, cost: 1.0 };
    assert_eq!(a.take_tokens(vec![fast]).await.unwrap(), Ok(()));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let count = |c: tokio_postgres::Client, key: &'static [u8]| async move {
        c.query_one("SELECT count(*) FROM rate_buckets WHERE key = $1", &[&key]).await.unwrap().get::<_, i64>(0)
    };
    assert_eq!(count(place.sql().await, b"fast").await, 1);
    b.sweep_shared(T0).await.unwrap();
    assert_eq!(count(place.sql().await, b"fast").await, 0);
    assert_eq!(count(place.sql().await, b"k1").await, 1);

    // A bucket another call counted up to half a second from now: a call
    // with an older clock must not move its time back (the half second
    // would be refilled twice).
    let tick = |cost| vec![Charge { key: b"clock".to_vec(), rate: 10.0, burst: 20.0, cost }];
    assert_eq!(a.take_tokens(tick(20.0)).await.unwrap(), Ok(()));
    place
        .sql()
        .await
        .execute(
            "UPDATE rate_buckets SET tokens = 0, at = extract(epoch FROM clock_timestamp()) + 0.5 WHERE key = 'clock'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(a.take_tokens(tick(0.0)).await.unwrap(), Ok(()));
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    // About 0.1 s of refill (1 token) since the bucket's time, not 0.6 s.
    assert!(b.take_tokens(tick(5.0)).await.unwrap().is_err(), "refill counted from the bucket's own time");
}
