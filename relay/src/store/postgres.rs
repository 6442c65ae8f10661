//! The PostgreSQL store, shared by several relay processes.
//!
//! Every operation is one transaction on a pooled connection, committed
//! before it is answered; a commit is durable as the server's
//! `synchronous_commit` makes it (on by default: flushed to the WAL). The
//! transaction runs in its own task, so a client that goes away cannot
//! cancel it half way.
//!
//! What SQLite keeps in its single writer's memory lives here in rows all
//! instances share: `account_counters` holds each account's waiting
//! messages and the bytes of its undelivered envelopes. A deposit, an
//! acknowledgement or a purge locks the counter rows it changes with
//! `SELECT … ORDER BY account FOR UPDATE` (one global order, so two
//! transactions never wait on each other in a cycle) before it decides
//! with [`rules`] and writes. A delivery id is drawn only after its
//! recipient's row is locked, so ids commit in order per mailbox and a
//! pull cursor never skips one committed late. One-time prekeys are
//! claimed with `FOR UPDATE SKIP LOCKED`: each goes to exactly one
//! claimer. Handle operations take a transaction-scoped advisory lock on
//! the handle. A deadlock or serialization failure the server reports is
//! retried a few times.
//!
//! The schema is versioned in `sealpost_schema`; [`MIGRATIONS`] are
//! applied under a session advisory lock, so instances starting together
//! migrate once.

use std::collections::HashSet;
use std::future::Future;
use std::sync::RwLock;

use deadpool_postgres::Transaction;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::rules::{self, Claim, ClaimContext, Verdict, Window};
use super::{
    AccountId, Charge, ClaimedBundle, DepositLimits, HANDLE_WINDOW, HandleCheck, HandleLimits, REFERENCE_BYTES,
    SeqCheck, SharedSession, Stats, Store, StoreError, StoreFuture, StoreResult, StoredMessage, Wake, WakeFn,
    account_name, stored_cost,
};

/// Schema steps: step `i` brings version `i` to `i + 1`, each in one
/// transaction with the new version. Never edit a step that shipped; add
/// one.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the schema of SQLite's version 1, with shared counters.
    "
    CREATE TABLE accounts (
        account bytea PRIMARY KEY,
        identity bytea NOT NULL,
        bundle bytea NOT NULL,
        updated_at bigint NOT NULL
    );
    CREATE TABLE account_counters (
        account bytea PRIMARY KEY,
        messages bigint NOT NULL DEFAULT 0,
        stored_bytes bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE one_time_prekeys (
        account bytea NOT NULL,
        key_id bigint NOT NULL,
        prekey bytea NOT NULL,
        PRIMARY KEY (account, key_id)
    );
    CREATE TABLE envelopes (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        sender bytea NOT NULL,
        body bytea NOT NULL,
        refs integer NOT NULL,
        received_at bigint NOT NULL
    );
    -- Ciphertext does not compress: store it out of line uncompressed, so
    -- octet_length() reads its size without loading it.
    ALTER TABLE envelopes ALTER COLUMN body SET STORAGE EXTERNAL;
    CREATE INDEX envelopes_by_time ON envelopes (received_at);
    CREATE INDEX envelopes_by_sender ON envelopes (sender);
    CREATE TABLE deliveries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        recipient bytea NOT NULL,
        envelope bigint NOT NULL,
        received_at bigint NOT NULL
    );
    CREATE INDEX deliveries_by_recipient ON deliveries (recipient, id);
    CREATE INDEX deliveries_by_time ON deliveries (received_at);
    CREATE TABLE handles (
        handle text PRIMARY KEY,
        account bytea NOT NULL,
        bound_at bigint NOT NULL
    );
    CREATE TABLE handle_claims (
        handle text NOT NULL,
        account bytea NOT NULL,
        code_hash bytea NOT NULL,
        expires_at bigint NOT NULL,
        attempts integer NOT NULL,
        claimed_at bigint NOT NULL,
        PRIMARY KEY (handle, account)
    );
    CREATE TABLE handle_limits (
        handle text PRIMARY KEY,
        window_start bigint NOT NULL,
        codes integer NOT NULL,
        wrong integer NOT NULL
    );
    ",
    // 2: nonces of signed requests, shared by every instance.
    "
    CREATE TABLE nonces (
        account bytea NOT NULL,
        ts bigint NOT NULL,
        nonce bytea NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (account, ts, nonce)
    );
    CREATE INDEX nonces_by_expiry ON nonces (expires_at);
    ",
    // 3: relay sessions and rate-limit buckets, shared by every instance.
    // Unlogged: never in the WAL, so neither in backups nor on replicas
    // (session keys, client addresses), and emptied by a database crash,
    // which costs clients a new session and a full bucket. Bit i of `seen`
    // stands for sequence number `highest - i`.
    "
    CREATE UNLOGGED TABLE relay_sessions (
        id bytea PRIMARY KEY,
        account bytea NOT NULL,
        key bytea NOT NULL,
        expires_at bigint NOT NULL,
        opened bigint GENERATED ALWAYS AS IDENTITY,
        highest bigint NOT NULL DEFAULT 0,
        seen bit(1024) NOT NULL DEFAULT B'0'::bit(1024)
    );
    CREATE INDEX relay_sessions_by_account ON relay_sessions (account, opened);
    CREATE INDEX relay_sessions_by_expiry ON relay_sessions (expires_at);
    CREATE UNLOGGED TABLE rate_buckets (
        key bytea PRIMARY KEY,
        tokens double precision NOT NULL,
        at double precision NOT NULL,
        full_at double precision NOT NULL
    );
    CREATE INDEX rate_buckets_by_full ON rate_buckets (full_at);
    -- Takes costs[i] tokens from bucket keys[i] (rates[i] per second up to
    -- bursts[i]), all or none, on the database's clock. Returns 0 when
    -- taken, else the seconds until the first bucket lacking tokens has
    -- enough. The caller passes the keys sorted, so that buckets are locked
    -- in one order. One UPDATE per bucket: a busy bucket's row is locked
    -- for as short a time as its transaction allows; the buckets taken
    -- before one that refuses get their tokens back.
    CREATE FUNCTION sealpost_take_tokens(keys bytea[], rates float8[], bursts float8[], costs float8[])
    RETURNS float8 LANGUAGE plpgsql AS $$
    DECLARE
        now_s float8 := extract(epoch FROM clock_timestamp());
        n integer := coalesce(array_length(keys, 1), 0);
        r float8;
        c float8;
        t float8;
        taken integer := 0;
    BEGIN
        FOR i IN 1 .. n LOOP
            r := greatest(rates[i], 1e-9);
            c := least(costs[i], bursts[i]);
            FOR attempt IN 1 .. 2 LOOP
                -- A call that waited for the row may hold an older now_s
                -- than the row's: time never moves back (no refill is
                -- counted twice).
                UPDATE rate_buckets b SET
                    tokens = least(bursts[i], least(bursts[i], b.tokens + greatest(now_s - b.at, 0) * r) - c),
                    at = greatest(b.at, now_s),
                    full_at = greatest(b.at, now_s) + (bursts[i]
                        - least(bursts[i], least(bursts[i], b.tokens + greatest(now_s - b.at, 0) * r) - c)) / r
                    WHERE b.key = keys[i] AND least(bursts[i], b.tokens + greatest(now_s - b.at, 0) * r) >= c;
                EXIT WHEN FOUND;
                -- No such bucket (a full one), or too few tokens in it.
                INSERT INTO rate_buckets (key, tokens, at, full_at)
                    VALUES (keys[i], least(bursts[i], bursts[i] - c), now_s,
                        now_s + (bursts[i] - least(bursts[i], bursts[i] - c)) / r)
                    ON CONFLICT (key) DO NOTHING;
                EXIT WHEN FOUND;
                -- It exists: lacking tokens, unless another call created it
                -- meanwhile (then the UPDATE sees it now).
                IF attempt = 2 THEN
                    SELECT (c - least(bursts[i], b.tokens + greatest(now_s - b.at, 0) * r)) / r INTO t
                        FROM rate_buckets b WHERE b.key = keys[i];
                    FOR j IN 1 .. taken LOOP
                        UPDATE rate_buckets b SET tokens = least(bursts[j], b.tokens + least(costs[j], bursts[j]))
                            WHERE b.key = keys[j];
                    END LOOP;
                    RETURN greatest(coalesce(t, 0), 1e-9);
                END IF;
            END LOOP;
            taken := i;
        END LOOP;
        RETURN 0;
    END
    $$;
    -- Records sequence number sq of session sid at now_s and takes the
    -- tokens, all or none. Returns 0 when done, -1 for no such session,
    -- -2 for an expired one, -3 for a number used or behind the window,
    -- else the seconds to wait. The number is checked once before the
    -- tokens are taken and again by the UPDATE that records it (under the
    -- row's lock); a number that lost a race gives its tokens back.
    CREATE FUNCTION sealpost_accept_seq(sid bytea, sq bigint, now_s bigint,
        keys bytea[], rates float8[], bursts float8[], costs float8[])
    RETURNS float8 LANGUAGE plpgsql AS $$
    DECLARE
        s record;
        wait float8;
    BEGIN
        SELECT highest, seen, expires_at INTO s FROM relay_sessions WHERE id = sid;
        IF NOT FOUND THEN
            RETURN -1;
        ELSIF s.expires_at < now_s THEN
            RETURN -2;
        ELSIF sq < 1 OR sq <= s.highest - 1024 THEN
            RETURN -3;
        ELSIF sq <= s.highest THEN
            -- Nested, so that get_bit only sees an index in the window.
            IF get_bit(s.seen, (s.highest - sq)::integer) = 1 THEN
                RETURN -3;
            END IF;
        END IF;
        wait := sealpost_take_tokens(keys, rates, bursts, costs);
        IF wait > 0 THEN
            RETURN wait;
        END IF;
        UPDATE relay_sessions SET
            seen = CASE WHEN sq > highest
                THEN set_bit(seen >> least(sq - highest, 1024)::integer, 0, 1)
                ELSE set_bit(seen, (highest - sq)::integer, 1) END,
            highest = greatest(highest, sq)
            WHERE id = sid AND expires_at >= now_s AND CASE
                WHEN sq > highest THEN true
                WHEN highest - sq >= 1024 THEN false
                ELSE get_bit(seen, (highest - sq)::integer) = 0 END;
        IF NOT FOUND THEN
            PERFORM sealpost_take_tokens(keys, rates, bursts, ARRAY(SELECT -c FROM unnest(costs) AS c));
            -- Lost a race: to the same number, or the session went.
            SELECT expires_at INTO s FROM relay_sessions WHERE id = sid;
            IF NOT FOUND THEN
                RETURN -1;
            ELSIF s.expires_at < now_s THEN
                RETURN -2;
            END IF;
            RETURN -3;
        END IF;
        RETURN 0;
    END
    $$;
    -- Records a signed request's nonce and takes the tokens, all or none:
    -- 0 when done, -3 a replay, else the seconds to wait.
    CREATE FUNCTION sealpost_record_nonce(who bytea, ts_s bigint, n bytea, expires bigint,
        keys bytea[], rates float8[], bursts float8[], costs float8[])
    RETURNS float8 LANGUAGE plpgsql AS $$
    DECLARE
        wait float8;
    BEGIN
        INSERT INTO nonces (account, ts, nonce, expires_at) VALUES (who, ts_s, n, expires) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN -3;
        END IF;
        wait := sealpost_take_tokens(keys, rates, bursts, costs);
        IF wait > 0 THEN
            DELETE FROM nonces WHERE account = who AND ts = ts_s AND nonce = n;
        END IF;
        RETURN wait;
    END
    $$;
    ",
    // 4: mailboxes enrolled for MQTT, by their random topic id.
    "
    CREATE TABLE mqtt_mailboxes (
        account bytea PRIMARY KEY,
        mailbox text NOT NULL UNIQUE,
        enrolled_at bigint NOT NULL
    );
    ",
];

/// The advisory lock key migrations hold (any fixed number; "sealpost").
const MIGRATION_LOCK: i64 = 0x7365_616c_706f_7374;
/// The first half of the transaction-scoped advisory lock of a purge (the
/// second is the schema's hash, so relays on separate schemas of one
/// database purge independently).
const PURGE_LOCK: i32 = 0x7365_616c;
/// Attempts of a transaction the server aborted for a deadlock or a
/// serialization failure.
const ATTEMPTS: u32 = 4;

/// Why a transaction stopped: the server failed (maybe retryable) or the
/// store refused the operation.
enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// A driver error with the server's message and the cause, if any (the
/// driver's own text says only which step failed).
fn db_internal(e: &tokio_postgres::Error) -> StoreError {
    use std::error::Error as _;
    match (e.as_db_error(), e.source()) {
        (Some(db), _) => StoreError::Internal(format!("{e}: {} ({})", db.message(), db.code().code())),
        (None, Some(cause)) => StoreError::Internal(format!("{e}: {cause}")),
        (None, None) => internal(e),
    }
}

/// The server aborted the transaction for a reason that trying again
/// resolves.
fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// The work of one transaction; called again when it is retried.
type TxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, Fail>> + Send + 'a>>;

/// The PostgreSQL store.
pub(crate) struct PgStore {
    pool: Pool,
    /// Connections that commit without waiting for the WAL flush, for
    /// what a database crash may lose at little cost: nonces, relay
    /// session sequence numbers, rate-limit tokens.
    lax: Pool,
    /// How to connect (for the wake-up listener's own connection).
    config: tokio_postgres::Config,
    /// The notification channel of this schema's relays
    /// (`sealpost_wake_` and the first half of the schema name's MD5).
    channel: String,
    /// The wake-up listener, stopped at close.
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Accounts seen to exist (accounts are never deleted, so a positive
    /// answer never goes stale).
    known: std::sync::Arc<RwLock<HashSet<AccountId>>>,
    /// The queue of the deposit writer (taken at close, which ends it).
    deposits: std::sync::Mutex<Option<mpsc::Sender<DepositJob>>>,
    /// The deposit writer, awaited at close.
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Most deposits committed in one transaction, and most envelope bytes.
const MAX_BATCH: usize = 512;
const MAX_BATCH_BYTES: usize = 8 << 20;

/// One deposit, as queued for the writer.
struct Deposit {
    sender: AccountId,
    recipients: Vec<AccountId>,
    envelope: Vec<u8>,
    now: u64,
    limits: DepositLimits,
}

/// A queued deposit and where its answer goes.
struct DepositJob {
    deposit: Deposit,
    reply: oneshot::Sender<StoreResult<Vec<i64>>>,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u32(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn account_of(blob: &[u8]) -> Result<AccountId, Fail> {
    blob.try_into().map_err(|_| Fail::Store(internal("stored account id has the wrong length")))
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://…`) with a pool of
    /// at most `pool_size` connections and migrates its schema.
    pub(crate) async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Internal(format!("database_url: {e}")))?;
        Self::with_config(config, pool_size).await
    }

    /// [`PgStore::connect`] with a parsed configuration.
    pub(crate) async fn with_config(config: tokio_postgres::Config, pool_size: usize) -> StoreResult<Self> {
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(pool_size.max(1)).build().map_err(internal)?;
        let mut lax_config = config.clone();
        let options = lax_config.get_options().map(|o| format!("{o} ")).unwrap_or_default();
        lax_config.options(format!("{options}-c synchronous_commit=off"));
        let manager =
            Manager::from_config(lax_config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let lax = Pool::builder(manager).max_size(pool_size.max(1)).build().map_err(internal)?;
        let mut client = pool.get().await.map_err(internal)?;
        migrate(&mut client).await?;
        // A channel name longer than 63 bytes makes `pg_notify` fail, and
        // schema names go up to 63: name it by a digest of the schema.
        let digest: String = client
            .query_one("SELECT left(md5(current_schema()), 32)", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| db_internal(&e))?;
        drop(client);
        let channel = format!("sealpost_wake_{digest}");
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        let writer = tokio::spawn(write_deposits(pool.clone(), channel.clone(), jobs));
        Ok(Self {
            pool,
            lax,
            config,
            channel,
            listener: std::sync::Mutex::new(None),
            known: Default::default(),
            deposits: std::sync::Mutex::new(Some(queue)),
            writer: std::sync::Mutex::new(Some(writer)),
        })
    }

    /// Runs `work` in a transaction in its own task and commits; retries
    /// it when the server aborted it for a deadlock or a serialization
    /// failure.
    fn transact<T, F>(&self, work: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: for<'a> Fn(&'a Transaction<'a>) -> TxFuture<'a, T> + Send + Sync + 'static,
    {
        transact_on(self.pool.clone(), work)
    }
}

/// [`PgStore::transact`] on `pool`.
fn transact_on<T, F>(pool: Pool, work: F) -> StoreFuture<T>
where
    T: Send + 'static,
    F: for<'a> Fn(&'a Transaction<'a>) -> TxFuture<'a, T> + Send + Sync + 'static,
{
    Box::pin(async move {
        tokio::spawn(async move {
            let mut client = pool.get().await.map_err(internal)?;
            let mut attempt = 1;
            loop {
                let failed = match client.transaction().await {
                    // A pooled connection the server dropped (it
                    // restarted): nothing was sent, so take another.
                    Err(e) if e.is_closed() && attempt < ATTEMPTS => None,
                    Err(e) => return Err(db_internal(&e)),
                    Ok(tx) => Some(match work(&tx).await {
                        Ok(value) => match tx.commit().await {
                            Ok(()) => return Ok(value),
                            Err(e) => e,
                        },
                        Err(Fail::Store(e)) => return Err(e),
                        Err(Fail::Db(e)) => e,
                    }),
                };
                let Some(failed) = failed else {
                    tracing::debug!(attempt, "a pooled connection was closed; taking another");
                    attempt += 1;
                    drop(deadpool_postgres::Client::take(client));
                    client = pool.get().await.map_err(internal)?;
                    continue;
                };
                if !retryable(&failed) || attempt >= ATTEMPTS {
                    return Err(db_internal(&failed));
                }
                tracing::debug!(error = %failed, attempt, "retrying a transaction");
                attempt += 1;
            }
        })
        .await
        .map_err(internal)?
    })
}

impl PgStore {
    /// Runs `work` (single statements, each its own transaction) on a
    /// [`PgStore::lax`] connection in its own task. A pooled connection
    /// the server closed is replaced before use; a statement that fails is
    /// not retried (it may have been applied).
    fn lax<T, F>(&self, work: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a deadpool_postgres::ClientWrapper) -> TxFuture<'a, T> + Send + 'static,
    {
        let pool = self.lax.clone();
        Box::pin(async move {
            tokio::spawn(async move {
                let mut client = pool.get().await.map_err(internal)?;
                for _ in 1..ATTEMPTS {
                    if !client.is_closed() {
                        break;
                    }
                    drop(deadpool_postgres::Client::take(client));
                    client = pool.get().await.map_err(internal)?;
                }
                match work(&client).await {
                    Ok(value) => Ok(value),
                    Err(Fail::Store(e)) => Err(e),
                    Err(Fail::Db(e)) => Err(db_internal(&e)),
                }
            })
            .await
            .map_err(internal)?
        })
    }
}

/// Creates the version table if needed and applies every step the
/// database has not had, holding [`MIGRATION_LOCK`].
async fn migrate(client: &mut deadpool_postgres::Client) -> StoreResult<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(|e| db_internal(&e))?;
    let result = migrate_locked(client).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
    result?;
    unlocked.map_err(|e| db_internal(&e))?;
    Ok(())
}

async fn migrate_locked(client: &mut deadpool_postgres::Client) -> StoreResult<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS sealpost_schema (version integer NOT NULL);
             INSERT INTO sealpost_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM sealpost_schema);",
        )
        .await
        .map_err(|e| db_internal(&e))?;
    let version: i32 = client
        .query_one("SELECT version FROM sealpost_schema", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| db_internal(&e))?;
    let current = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if version > current {
        return Err(StoreError::Internal(format!(
            "the database has schema version {version}; this relay knows up to {current}"
        )));
    }
    for (step, sql) in (version..).zip(MIGRATIONS.iter().skip(usize::try_from(version).unwrap_or(usize::MAX))) {
        let tx = client.transaction().await.map_err(|e| db_internal(&e))?;
        tx.batch_execute(sql).await.map_err(|e| db_internal(&e))?;
        tx.execute("UPDATE sealpost_schema SET version = $1", &[&step.saturating_add(1)])
            .await
            .map_err(|e| db_internal(&e))?;
        tx.commit().await.map_err(|e| db_internal(&e))?;
        tracing::info!(version = step.saturating_add(1), "migrated the database schema");
    }
    Ok(())
}

/// `sql` as a statement prepared once per pooled connection (deadpool's
/// cache), not again for every transaction.
async fn cached(tx: &Transaction<'_>, sql: &str) -> Result<tokio_postgres::Statement, Fail> {
    Ok(tx.prepare_cached(sql).await?)
}

/// Creates the counter rows of `accounts` (sorted, without duplicates)
/// and locks them in that order. Returns `(account, messages, bytes)`.
async fn lock_counters(tx: &Transaction<'_>, accounts: &[AccountId]) -> Result<Vec<(AccountId, u64, u64)>, Fail> {
    let keys: Vec<&[u8]> = accounts.iter().map(|a| &a[..]).collect();
    tx.execute(
        &cached(tx, "INSERT INTO account_counters (account) SELECT unnest($1::bytea[]) ON CONFLICT DO NOTHING").await?,
        &[&keys],
    )
    .await?;
    let rows = tx
        .query(
            "SELECT account, messages, stored_bytes FROM account_counters
             WHERE account = ANY($1) ORDER BY account FOR UPDATE",
            &[&keys],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push((account_of(row.try_get(0)?)?, to_u64(row.try_get(1)?), to_u64(row.try_get(2)?)));
    }
    Ok(out)
}

/// Adds `(account, messages, bytes)` deltas to the counters (locked).
async fn add_to_counters(tx: &Transaction<'_>, deltas: &[(AccountId, i64, i64)]) -> Result<(), Fail> {
    if deltas.is_empty() {
        return Ok(());
    }
    let keys: Vec<&[u8]> = deltas.iter().map(|d| &d.0[..]).collect();
    let messages: Vec<i64> = deltas.iter().map(|d| d.1).collect();
    let bytes: Vec<i64> = deltas.iter().map(|d| d.2).collect();
    tx.execute(
        &cached(
            tx,
            "UPDATE account_counters c SET messages = greatest(c.messages + u.m, 0),
             stored_bytes = greatest(c.stored_bytes + u.b, 0)
         FROM unnest($1::bytea[], $2::bigint[], $3::bigint[]) AS u(a, m, b) WHERE c.account = u.a",
        )
        .await?,
        &[&keys, &messages, &bytes],
    )
    .await?;
    Ok(())
}

/// Sorted, without duplicates.
fn lock_order(accounts: impl IntoIterator<Item = AccountId>) -> Vec<AccountId> {
    let mut v: Vec<AccountId> = accounts.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Takes the handle's advisory lock for the rest of the transaction.
async fn lock_handle(tx: &Transaction<'_>, handle: &str) -> Result<(), Fail> {
    tx.execute(&cached(tx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").await?, &[&handle]).await?;
    Ok(())
}

async fn handle_window(tx: &Transaction<'_>, handle: &str, now: u64) -> Result<Window, Fail> {
    let row = tx
        .query_opt(
            &cached(tx, "SELECT window_start, codes, wrong FROM handle_limits WHERE handle = $1").await?,
            &[&handle],
        )
        .await?;
    let stored = match row {
        Some(r) => {
            Some(Window { start: to_u64(r.try_get(0)?), codes: to_u32(r.try_get(1)?), wrong: to_u32(r.try_get(2)?) })
        }
        None => None,
    };
    Ok(Window::at(stored, now))
}

async fn put_handle_window(tx: &Transaction<'_>, handle: &str, w: Window) -> Result<(), Fail> {
    tx.execute(
        &cached(
            tx,
            "INSERT INTO handle_limits (handle, window_start, codes, wrong) VALUES ($1, $2, $3, $4)
         ON CONFLICT (handle) DO UPDATE SET window_start = $2, codes = $3, wrong = $4",
        )
        .await?,
        &[&handle, &to_i64(w.start), &to_i32(w.codes), &to_i32(w.wrong)],
    )
    .await?;
    Ok(())
}

async fn bound_to(tx: &Transaction<'_>, handle: &str) -> Result<Option<Vec<u8>>, Fail> {
    Ok(match tx.query_opt(&cached(tx, "SELECT account FROM handles WHERE handle = $1").await?, &[&handle]).await? {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

/// Most accounts named in one notification (PostgreSQL's payload limit is
/// 8000 bytes; an account is 65 characters here).
const WAKE_CHUNK: usize = 100;
/// How often the listener checks that its connection still answers.
const LISTEN_CHECK: std::time::Duration = std::time::Duration::from_secs(30);
/// How long that check may take before the connection counts as dead.
const LISTEN_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The notification payloads waking the recipients among `deltas` (those
/// with new messages): their ids in hex, comma-separated, in chunks.
fn wake_payloads(deltas: &[(AccountId, i64, i64)]) -> Vec<String> {
    let woken: Vec<String> =
        deltas.iter().filter(|d| d.1 > 0).map(|d| d.0.iter().map(|b| format!("{b:02x}")).collect::<String>()).collect();
    woken.chunks(WAKE_CHUNK).map(|c| c.join(",")).collect()
}

/// The accounts of a payload; a part that is not one is skipped.
fn parse_wake(payload: &str) -> impl Iterator<Item = AccountId> + '_ {
    payload.split(',').filter_map(|hex| {
        let mut out = [0u8; 32];
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    })
}

/// The listener: its own connection runs `LISTEN` on the channel and
/// turns each notification into wake-ups. Whenever it (re)connects it
/// wakes everyone, since notifications sent while it was away are lost;
/// it retries every second while the database is unreachable (push
/// clients still poll meanwhile).
async fn listen(mut config: tokio_postgres::Config, channel: String, wake: WakeFn) {
    use futures_util::StreamExt;
    config.application_name(format!("sealpost-listen/{channel}"));
    config.keepalives(true).keepalives_idle(LISTEN_CHECK);
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut notes) = mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_owned()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "the wake-up listener's connection failed");
                                return;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {quoted}")).await {
                    Ok(()) => {
                        tracing::debug!("listening for deposits through other instances");
                        wake(Wake::All);
                        let mut check = tokio::time::interval(LISTEN_CHECK);
                        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        check.tick().await;
                        loop {
                            tokio::select! {
                                payload = notes.recv() => {
                                    let Some(payload) = payload else { break };
                                    for account in parse_wake(&payload) {
                                        wake(Wake::Account(account));
                                    }
                                }
                                _ = check.tick() => {
                                    // A connection whose server or path
                                    // died silently delivers nothing and
                                    // fails nothing: ask it something.
                                    let asked = tokio::time::timeout(LISTEN_CHECK_TIMEOUT, client.simple_query("SELECT 1"));
                                    if !matches!(asked.await, Ok(Ok(_))) {
                                        tracing::warn!("the wake-up listener's connection stopped answering");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "the wake-up listener cannot connect"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The deposit writer: takes what is queued (up to [`MAX_BATCH`] deposits
/// or [`MAX_BATCH_BYTES`]) and commits it in one transaction, so that a
/// busy mailbox's counter row is locked once per batch rather than once
/// per deposit and one WAL flush carries the whole batch (group commit).
/// Ends when the queue's sender is dropped and everything queued is in.
async fn write_deposits(pool: Pool, channel: String, mut jobs: mpsc::Receiver<DepositJob>) {
    let channel = std::sync::Arc::new(channel);
    while let Some(first) = jobs.recv().await {
        let mut bytes = first.deposit.envelope.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(job) = jobs.try_recv() else { break };
            bytes = bytes.saturating_add(job.deposit.envelope.len());
            batch.push(job);
        }
        let (deposits, replies): (Vec<Deposit>, Vec<_>) = batch.into_iter().map(|j| (j.deposit, j.reply)).unzip();
        let deposits = std::sync::Arc::new(deposits);
        let channel = std::sync::Arc::clone(&channel);
        let committed = transact_on(pool.clone(), move |tx| {
            let (deposits, channel) = (std::sync::Arc::clone(&deposits), std::sync::Arc::clone(&channel));
            Box::pin(async move { deposit_batch(tx, &deposits, &channel).await })
        })
        .await;
        match committed {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Adds `(messages, bytes)` to `account`'s entry of a batch's deltas.
fn add_delta(deltas: &mut Vec<(AccountId, i64, i64)>, account: AccountId, messages: i64, bytes: i64) {
    match deltas.iter_mut().find(|d| d.0 == account) {
        Some(d) => {
            d.1 = d.1.saturating_add(messages);
            d.2 = d.2.saturating_add(bytes);
        }
        None => deltas.push((account, messages, bytes)),
    }
}

/// Decides and writes a batch of deposits in one transaction: each is
/// stored or refused (an unknown recipient, a full mailbox, the sender's
/// quota) as if they had come one after another in the batch's order.
async fn deposit_batch(
    tx: &Transaction<'_>,
    deposits: &[Deposit],
    channel: &str,
) -> Result<Vec<StoreResult<Vec<i64>>>, Fail> {
    let mut everyone: Vec<AccountId> = deposits.iter().flat_map(|d| d.recipients.iter().copied()).collect();
    everyone.sort_unstable();
    everyone.dedup();
    let keys: Vec<&[u8]> = everyone.iter().map(|r| &r[..]).collect();
    let rows = tx.query(&cached(tx, "SELECT account FROM accounts WHERE account = ANY($1)").await?, &[&keys]).await?;
    let mut present = HashSet::with_capacity(rows.len());
    for row in rows {
        present.insert(account_of(row.try_get(0)?)?);
    }
    let lockable = deposits
        .iter()
        .filter(|d| d.recipients.iter().all(|r| present.contains(r)))
        .flat_map(|d| d.recipients.iter().copied().chain([d.sender]));
    let mut counters: std::collections::HashMap<AccountId, (u64, u64)> =
        lock_counters(tx, &lock_order(lockable)).await?.into_iter().map(|(a, m, b)| (a, (m, b))).collect();
    // Decided in order, each against the counters the earlier ones left.
    let mut results: Vec<StoreResult<Vec<i64>>> = Vec::with_capacity(deposits.len());
    let mut accepted = Vec::new();
    let mut deltas: Vec<(AccountId, i64, i64)> = Vec::new();
    for (i, d) in deposits.iter().enumerate() {
        if let Some(r) = d.recipients.iter().find(|r| !present.contains(*r)) {
            results.push(Err(StoreError::UnknownAccount(account_name(r))));
            continue;
        }
        let of = |a: &AccountId| counters.get(a).copied().unwrap_or((0, 0));
        let cost = stored_cost(d.envelope.len(), d.recipients.len());
        if let Err(e) = rules::check_deposit(d.recipients.iter().map(|r| (r, of(r).0)), of(&d.sender).1, cost, d.limits)
        {
            results.push(Err(e));
            continue;
        }
        for r in &d.recipients {
            let waiting = counters.entry(*r).or_default();
            waiting.0 = waiting.0.saturating_add(1);
            add_delta(&mut deltas, *r, 1, 0);
        }
        let held = counters.entry(d.sender).or_default();
        held.1 = held.1.saturating_add(cost);
        add_delta(&mut deltas, d.sender, 0, to_i64(cost));
        accepted.push(i);
        results.push(Ok(Vec::new()));
    }
    if accepted.is_empty() {
        return Ok(results);
    }
    // Identity values are drawn in the order the rows are inserted, which
    // the ORDER BY fixes: the sorted ids map back to the deposits in order.
    let chosen: Vec<&Deposit> = accepted.iter().filter_map(|i| deposits.get(*i)).collect();
    let senders: Vec<&[u8]> = chosen.iter().map(|d| &d.sender[..]).collect();
    let bodies: Vec<&[u8]> = chosen.iter().map(|d| d.envelope.as_slice()).collect();
    let refs: Vec<i32> = chosen.iter().map(|d| i32::try_from(d.recipients.len()).unwrap_or(i32::MAX)).collect();
    let times: Vec<i64> = chosen.iter().map(|d| to_i64(d.now)).collect();
    let rows = tx
        .query(
            "INSERT INTO envelopes (sender, body, refs, received_at)
             SELECT s, b, r, t FROM unnest($1::bytea[], $2::bytea[], $3::integer[], $4::bigint[])
                 WITH ORDINALITY AS u(s, b, r, t, n) ORDER BY n
             RETURNING id",
            &[&senders, &bodies, &refs, &times],
        )
        .await?;
    let mut envelope_ids = rows.iter().map(|r| r.try_get::<_, i64>(0)).collect::<Result<Vec<_>, _>>()?;
    envelope_ids.sort_unstable();
    let (mut to, mut of_envelope, mut at) = (Vec::new(), Vec::new(), Vec::new());
    for (d, id) in chosen.iter().zip(&envelope_ids) {
        for r in &d.recipients {
            to.push(&r[..]);
            of_envelope.push(*id);
            at.push(to_i64(d.now));
        }
    }
    let rows = tx
        .query(
            "INSERT INTO deliveries (recipient, envelope, received_at)
             SELECT r, e, t FROM unnest($1::bytea[], $2::bigint[], $3::bigint[])
                 WITH ORDINALITY AS u(r, e, t, n) ORDER BY n
             RETURNING id",
            &[&to, &of_envelope, &at],
        )
        .await?;
    let mut delivery_ids = rows.iter().map(|r| r.try_get::<_, i64>(0)).collect::<Result<Vec<_>, _>>()?;
    delivery_ids.sort_unstable();
    let mut next = delivery_ids.into_iter();
    for i in &accepted {
        let n = deposits.get(*i).map_or(0, |d| d.recipients.len());
        if let Some(Ok(ids)) = results.get_mut(*i) {
            ids.extend(next.by_ref().take(n));
        }
    }
    add_to_counters(tx, &deltas).await?;
    // Delivered at commit, to every relay listening.
    tx.execute(
        &cached(tx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p").await?,
        &[&channel, &wake_payloads(&deltas)],
    )
    .await?;
    Ok(results)
}

/// Charges sorted by bucket, without duplicates: one lock order.
fn sorted(mut charges: Vec<Charge>) -> Vec<Charge> {
    charges.sort_by(|a, b| a.key.cmp(&b.key));
    charges.dedup_by(|a, b| a.key == b.key);
    charges
}

/// Charges as the SQL functions' four arrays.
struct Columns<'a> {
    keys: Vec<&'a [u8]>,
    rates: Vec<f64>,
    bursts: Vec<f64>,
    costs: Vec<f64>,
}

fn columns(charges: &[Charge]) -> Columns<'_> {
    Columns {
        keys: charges.iter().map(|c| c.key.as_slice()).collect(),
        rates: charges.iter().map(|c| c.rate).collect(),
        bursts: charges.iter().map(|c| c.burst).collect(),
        costs: charges.iter().map(|c| c.cost).collect(),
    }
}

/// A wait in seconds, rounded up to whole ones (at least 1).
fn whole_seconds(wait: f64) -> u64 {
    // Saturating float-to-int conversion: `as` on f64 clamps.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::as_conversions)]
    let secs = wait.ceil() as u64;
    secs.max(1)
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get_mut().ok().and_then(Option::take) {
            listener.abort();
        }
    }
}

impl Store for PgStore {
    fn publish_bundle(&self, account: AccountId, identity: Vec<u8>, bundle: Vec<u8>, now: u64) -> StoreFuture<()> {
        let known = std::sync::Arc::clone(&self.known);
        let done = self.transact(move |tx| {
            let (identity, bundle) = (identity.clone(), bundle.clone());
            Box::pin(async move {
                tx.execute(
                    &cached(
                        tx,
                        "INSERT INTO accounts (account, identity, bundle, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (account) DO UPDATE SET identity = $2, bundle = $3, updated_at = $4",
                    )
                    .await?,
                    &[&&account[..], &identity, &bundle, &to_i64(now)],
                )
                .await?;
                Ok(())
            })
        });
        Box::pin(async move {
            done.await?;
            if let Ok(mut k) = known.write() {
                k.insert(account);
            }
            Ok(())
        })
    }

    fn add_one_time_prekeys(&self, account: AccountId, prekeys: Vec<(u32, Vec<u8>)>, max: u64) -> StoreFuture<u64> {
        self.transact(move |tx| {
            let prekeys = prekeys.clone();
            Box::pin(async move {
                // The account row's lock serializes uploads, so `max` holds.
                if tx
                    .query_opt("SELECT 1 FROM accounts WHERE account = $1 FOR UPDATE", &[&&account[..]])
                    .await?
                    .is_none()
                {
                    return Err(StoreError::UnknownAccount(account_name(&account)).into());
                }
                let held: i64 = tx
                    .query_one("SELECT count(*) FROM one_time_prekeys WHERE account = $1", &[&&account[..]])
                    .await?
                    .try_get(0)?;
                let mut held = to_u64(held);
                let insert = tx
                    .prepare(
                        "INSERT INTO one_time_prekeys (account, key_id, prekey) VALUES ($1, $2, $3)
                         ON CONFLICT (account, key_id) DO NOTHING",
                    )
                    .await?;
                for (id, key) in prekeys {
                    if held >= max {
                        break;
                    }
                    held = held.saturating_add(tx.execute(&insert, &[&&account[..], &i64::from(id), &key]).await?);
                }
                Ok(held)
            })
        })
    }

    fn is_known(&self, account: AccountId) -> StoreFuture<bool> {
        if self.known.read().map(|k| k.contains(&account)).unwrap_or(false) {
            return Box::pin(async { Ok(true) });
        }
        let known = std::sync::Arc::clone(&self.known);
        let found = self.transact(move |tx| {
            Box::pin(async move {
                Ok(tx
                    .query_opt(&cached(tx, "SELECT 1 FROM accounts WHERE account = $1").await?, &[&&account[..]])
                    .await?
                    .is_some())
            })
        });
        Box::pin(async move {
            let found = found.await?;
            if found && let Ok(mut k) = known.write() {
                k.insert(account);
            }
            Ok(found)
        })
    }

    fn identity(&self, account: AccountId) -> StoreFuture<Option<(Vec<u8>, u64)>> {
        self.transact(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "SELECT identity, (SELECT count(*) FROM one_time_prekeys WHERE account = $1)
                         FROM accounts WHERE account = $1",
                        &[&&account[..]],
                    )
                    .await?;
                match row {
                    Some(r) => Ok(Some((r.try_get(0)?, to_u64(r.try_get(1)?)))),
                    None => Ok(None),
                }
            })
        })
    }

    fn claim_bundle(&self, account: AccountId) -> StoreFuture<Option<ClaimedBundle>> {
        self.transact(move |tx| {
            Box::pin(async move {
                let Some(row) = tx
                    .query_opt(&cached(tx, "SELECT bundle FROM accounts WHERE account = $1").await?, &[&&account[..]])
                    .await?
                else {
                    return Ok(None);
                };
                let bundle: Vec<u8> = row.try_get(0)?;
                // The lowest key nobody else is claiming right now; the
                // row lock makes the delete its claimer's alone.
                let claimed = tx
                    .query_opt(
                        "DELETE FROM one_time_prekeys WHERE (account, key_id) = (
                             SELECT account, key_id FROM one_time_prekeys WHERE account = $1
                             ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                         RETURNING prekey",
                        &[&&account[..]],
                    )
                    .await?;
                let one_time_prekey = match claimed {
                    Some(r) => Some(r.try_get(0)?),
                    None => None,
                };
                // Keys other claimers hold locked at this moment still
                // count, so this may be a few high under concurrent claims.
                let remaining: i64 = tx
                    .query_one("SELECT count(*) FROM one_time_prekeys WHERE account = $1", &[&&account[..]])
                    .await?
                    .try_get(0)?;
                Ok(Some(ClaimedBundle { bundle, one_time_prekey, remaining: to_u64(remaining) }))
            })
        })
    }

    fn deposit(
        &self,
        sender: AccountId,
        recipients: Vec<AccountId>,
        envelope: Vec<u8>,
        now: u64,
        limits: DepositLimits,
    ) -> StoreFuture<Vec<i64>> {
        let queue = self.deposits.lock().ok().and_then(|q| q.clone());
        Box::pin(async move {
            let queue = queue.ok_or_else(|| internal("the store is closed"))?;
            let (reply, answer) = oneshot::channel();
            let deposit = Deposit { sender, recipients, envelope, now, limits };
            queue.send(DepositJob { deposit, reply }).await.map_err(|_| internal("the deposit writer stopped"))?;
            // Not kept while waiting: closing waits for every holder.
            drop(queue);
            answer.await.map_err(|_| internal("the deposit writer stopped"))?
        })
    }

    fn pull(&self, account: AccountId, after: i64, limit: u32, max_bytes: usize) -> StoreFuture<Vec<StoredMessage>> {
        let max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        self.transact(move |tx| {
            Box::pin(async move {
                // The running total reads only sizes; bodies are loaded for
                // the rows that fit (and always the first).
                let rows = tx
                    .query(
                        "SELECT p.id, e.sender, e.body, p.received_at FROM (
                             SELECT d.id, d.envelope, d.received_at,
                                 sum(octet_length(e.body)) OVER (ORDER BY d.id) AS running,
                                 row_number() OVER (ORDER BY d.id) AS n
                             FROM deliveries d JOIN envelopes e ON e.id = d.envelope
                             WHERE d.recipient = $1 AND d.id > $2 ORDER BY d.id LIMIT $3
                         ) p JOIN envelopes e ON e.id = p.envelope
                         WHERE p.n = 1 OR p.running <= $4 ORDER BY p.id",
                        &[&&account[..], &after, &i64::from(limit), &max_bytes],
                    )
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(StoredMessage {
                        id: r.try_get(0)?,
                        sender: account_of(r.try_get(1)?)?,
                        envelope: r.try_get(2)?,
                        received_at: to_u64(r.try_get(3)?),
                    });
                }
                Ok(out)
            })
        })
    }

    fn ack(&self, account: AccountId, ids: Vec<i64>) -> StoreFuture<u64> {
        self.transact(move |tx| {
            let ids = ids.clone();
            Box::pin(async move {
                let rows = tx
                    .query(
                        "SELECT DISTINCT e.sender FROM deliveries d JOIN envelopes e ON e.id = d.envelope
                         WHERE d.recipient = $1 AND d.id = ANY($2)",
                        &[&&account[..], &ids],
                    )
                    .await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let mut senders = Vec::with_capacity(rows.len());
                for row in rows {
                    senders.push(account_of(row.try_get(0)?)?);
                }
                lock_counters(tx, &lock_order(senders.into_iter().chain([account]))).await?;
                // After the lock: a concurrent acknowledgement of the same
                // ids has committed or not begun, so each goes once.
                let gone = tx
                    .query(
                        "DELETE FROM deliveries WHERE recipient = $1 AND id = ANY($2) RETURNING envelope",
                        &[&&account[..], &ids],
                    )
                    .await?;
                let mut envelopes = Vec::with_capacity(gone.len());
                for row in &gone {
                    envelopes.push(row.try_get::<_, i64>(0)?);
                }
                let updated = tx
                    .query(
                        "UPDATE envelopes e SET refs = e.refs - c.n
                         FROM (SELECT id, count(*)::integer AS n FROM unnest($1::bigint[]) AS id GROUP BY id) c
                         WHERE e.id = c.id
                         RETURNING e.id, e.refs, e.sender, octet_length(e.body), c.n",
                        &[&envelopes],
                    )
                    .await?;
                let mut emptied = Vec::new();
                let mut deltas: Vec<(AccountId, i64, i64)> =
                    vec![(account, -i64::try_from(gone.len()).unwrap_or(0), 0)];
                for row in updated {
                    let (id, refs, sender, len, n): (i64, i32, &[u8], i32, i32) =
                        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
                    let mut freed = i64::from(n).saturating_mul(to_i64(REFERENCE_BYTES));
                    if refs <= 0 {
                        emptied.push(id);
                        freed = freed.saturating_add(i64::from(len));
                    }
                    let sender = account_of(sender)?;
                    match deltas.iter_mut().find(|d| d.0 == sender) {
                        Some(d) => d.2 = d.2.saturating_sub(freed),
                        None => deltas.push((sender, 0, -freed)),
                    }
                }
                if !emptied.is_empty() {
                    tx.execute(&cached(tx, "DELETE FROM envelopes WHERE id = ANY($1)").await?, &[&emptied]).await?;
                }
                add_to_counters(tx, &deltas).await?;
                Ok(u64::try_from(gone.len()).unwrap_or(u64::MAX))
            })
        })
    }

    fn purge(&self, before: u64) -> StoreFuture<u64> {
        self.transact(move |tx| {
            Box::pin(async move {
                let cut = to_i64(before);
                // One instance purges at a time; the others skip this round.
                let locked: bool = tx
                    .query_one("SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))", &[&PURGE_LOCK])
                    .await?
                    .try_get(0)?;
                if !locked {
                    return Ok(0);
                }
                tx.execute(
                    &cached(
                        tx,
                        "SELECT 1 FROM account_counters WHERE account IN (
                         SELECT recipient FROM deliveries WHERE received_at < $1
                         UNION SELECT sender FROM envelopes WHERE received_at < $1)
                     ORDER BY account FOR UPDATE",
                    )
                    .await?,
                    &[&cut],
                )
                .await?;
                // An envelope and its deliveries share their arrival time.
                let mut deltas: Vec<(AccountId, i64, i64)> = Vec::new();
                let mut removed: u64 = 0;
                for row in tx
                    .query(
                        "WITH gone AS (DELETE FROM deliveries WHERE received_at < $1 RETURNING recipient)
                         SELECT recipient, count(*) FROM gone GROUP BY recipient",
                        &[&cut],
                    )
                    .await?
                {
                    let n: i64 = row.try_get(1)?;
                    removed = removed.saturating_add(to_u64(n));
                    deltas.push((account_of(row.try_get(0)?)?, -n, 0));
                }
                for row in tx
                    .query(
                        "WITH gone AS (DELETE FROM envelopes WHERE received_at < $1
                             RETURNING sender, octet_length(body) AS len, refs)
                         SELECT sender, sum(len + refs * $2::bigint)::bigint FROM gone GROUP BY sender",
                        &[&cut, &to_i64(REFERENCE_BYTES)],
                    )
                    .await?
                {
                    let sender = account_of(row.try_get(0)?)?;
                    let freed: i64 = row.try_get(1)?;
                    match deltas.iter_mut().find(|d| d.0 == sender) {
                        Some(d) => d.2 = -freed,
                        None => deltas.push((sender, 0, -freed)),
                    }
                }
                add_to_counters(tx, &deltas).await?;
                tx.execute(&cached(tx, "DELETE FROM handle_claims WHERE expires_at < $1").await?, &[&cut]).await?;
                // Windows that ended before `before` limit nothing any more.
                tx.execute(
                    &cached(tx, "DELETE FROM handle_limits WHERE window_start < $1").await?,
                    &[&to_i64(before.saturating_sub(HANDLE_WINDOW))],
                )
                .await?;
                Ok(removed)
            })
        })
    }

    fn claim_handle(
        &self,
        handle: String,
        account: AccountId,
        code_hash: [u8; 32],
        now: u64,
        limits: HandleLimits,
    ) -> StoreFuture<()> {
        self.transact(move |tx| {
            let handle = handle.clone();
            Box::pin(async move {
                lock_handle(tx, &handle).await?;
                let bound = bound_to(tx, &handle).await?;
                let previous = match tx
                    .query_opt(
                        "SELECT claimed_at, expires_at, attempts FROM handle_claims WHERE handle = $1 AND account = $2",
                        &[&handle, &&account[..]],
                    )
                    .await?
                {
                    Some(r) => Some(Claim {
                        claimed_at: to_u64(r.try_get(0)?),
                        expires_at: to_u64(r.try_get(1)?),
                        attempts: to_u32(r.try_get(2)?),
                    }),
                    None => None,
                };
                let others = tx
                    .query_one(
                        "SELECT count(*), min(expires_at) FROM handle_claims
                         WHERE handle = $1 AND account != $2 AND expires_at >= $3",
                        &[&handle, &&account[..], &to_i64(now)],
                    )
                    .await?;
                let found = ClaimContext {
                    bound_elsewhere: bound.is_some_and(|b| b != account),
                    previous,
                    others: to_u64(others.try_get(0)?),
                    first_other_expiry: others.try_get::<_, Option<i64>>(1)?.map(to_u64),
                    window: handle_window(tx, &handle, now).await?,
                };
                let (attempts, window) = rules::claim(found, now, limits)?;
                put_handle_window(tx, &handle, window).await?;
                tx.execute(
                    &cached(
                        tx,
                        "INSERT INTO handle_claims (handle, account, code_hash, expires_at, attempts, claimed_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (handle, account) DO UPDATE SET code_hash = $3, expires_at = $4, attempts = $5,
                     claimed_at = $6",
                    )
                    .await?,
                    &[
                        &handle,
                        &&account[..],
                        &&code_hash[..],
                        &to_i64(now.saturating_add(limits.ttl)),
                        &to_i32(attempts),
                        &to_i64(now),
                    ],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn verify_handle(
        &self,
        handle: String,
        account: AccountId,
        code_hash: [u8; 32],
        now: u64,
        limits: HandleLimits,
    ) -> StoreFuture<HandleCheck> {
        self.transact(move |tx| {
            let handle = handle.clone();
            Box::pin(async move {
                lock_handle(tx, &handle).await?;
                let claim = match tx
                    .query_opt(
                        "SELECT code_hash, claimed_at, expires_at, attempts FROM handle_claims
                         WHERE handle = $1 AND account = $2",
                        &[&handle, &&account[..]],
                    )
                    .await?
                {
                    Some(r) => Some((
                        r.try_get::<_, Vec<u8>>(0)?,
                        Claim {
                            claimed_at: to_u64(r.try_get(1)?),
                            expires_at: to_u64(r.try_get(2)?),
                            attempts: to_u32(r.try_get(3)?),
                        },
                    )),
                    None => None,
                };
                let window = handle_window(tx, &handle, now).await?;
                match rules::verify(claim.as_ref().map(|(h, c)| (h.as_slice(), *c)), window, &code_hash, now, limits) {
                    Verdict::Answer(answer) => Ok(answer),
                    Verdict::Bind => {
                        if bound_to(tx, &handle).await?.is_some_and(|b| b != account) {
                            return Err(StoreError::HandleTaken.into());
                        }
                        tx.execute(
                            &cached(
                                tx,
                                "INSERT INTO handles (handle, account, bound_at) VALUES ($1, $2, $3)
                             ON CONFLICT (handle) DO UPDATE SET account = $2, bound_at = $3",
                            )
                            .await?,
                            &[&handle, &&account[..], &to_i64(now)],
                        )
                        .await?;
                        tx.execute(&cached(tx, "DELETE FROM handle_claims WHERE handle = $1").await?, &[&handle])
                            .await?;
                        Ok(HandleCheck::Bound)
                    }
                    Verdict::Wrong { window, attempts, answer } => {
                        put_handle_window(tx, &handle, window).await?;
                        tx.execute(
                            &cached(tx, "UPDATE handle_claims SET attempts = $3 WHERE handle = $1 AND account = $2")
                                .await?,
                            &[&handle, &&account[..], &to_i32(attempts)],
                        )
                        .await?;
                        Ok(answer)
                    }
                }
            })
        })
    }

    fn lookup_handle(&self, handle: String) -> StoreFuture<Option<(AccountId, Vec<u8>)>> {
        self.transact(move |tx| {
            let handle = handle.clone();
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "SELECT h.account, a.identity FROM handles h JOIN accounts a ON a.account = h.account
                         WHERE h.handle = $1",
                        &[&handle],
                    )
                    .await?;
                match row {
                    Some(r) => Ok(Some((account_of(r.try_get(0)?)?, r.try_get(1)?))),
                    None => Ok(None),
                }
            })
        })
    }

    fn enrol_mqtt(&self, account: AccountId, fresh: String, now: u64) -> StoreFuture<String> {
        self.transact(move |tx| {
            let fresh = fresh.clone();
            Box::pin(async move {
                let at = to_i64(now);
                tx.execute(
                    "INSERT INTO mqtt_mailboxes (account, mailbox, enrolled_at) VALUES ($1, $2, $3)
                     ON CONFLICT (account) DO NOTHING",
                    &[&&account[..], &fresh, &at],
                )
                .await?;
                let row =
                    tx.query_one("SELECT mailbox FROM mqtt_mailboxes WHERE account = $1", &[&&account[..]]).await?;
                Ok(row.try_get(0)?)
            })
        })
    }

    fn mqtt_owner(&self, mailbox: String) -> StoreFuture<Option<AccountId>> {
        self.transact(move |tx| {
            let mailbox = mailbox.clone();
            Box::pin(async move {
                let row = tx.query_opt("SELECT account FROM mqtt_mailboxes WHERE mailbox = $1", &[&mailbox]).await?;
                row.map(|r| account_of(r.try_get(0)?)).transpose()
            })
        })
    }

    fn mqtt_mailboxes(&self, accounts: Vec<AccountId>) -> StoreFuture<Vec<(AccountId, String)>> {
        self.transact(move |tx| {
            let accounts = accounts.clone();
            Box::pin(async move {
                let keys: Vec<&[u8]> = accounts.iter().map(|a| &a[..]).collect();
                let rows = tx
                    .query(
                        &cached(tx, "SELECT account, mailbox FROM mqtt_mailboxes WHERE account = ANY($1)").await?,
                        &[&keys],
                    )
                    .await?;
                rows.iter().map(|r| Ok((account_of(r.try_get(0)?)?, r.try_get(1)?))).collect()
            })
        })
    }

    fn stats(&self) -> StoreFuture<Stats> {
        self.transact(|tx| {
            Box::pin(async move {
                let r = tx
                    .query_one(
                        "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM deliveries),
                             (SELECT count(*) FROM envelopes),
                             (SELECT coalesce(sum(octet_length(body)), 0)::bigint FROM envelopes),
                             (SELECT count(*) FROM one_time_prekeys)",
                        &[],
                    )
                    .await?;
                Ok(Stats {
                    accounts: to_u64(r.try_get(0)?),
                    messages: to_u64(r.try_get(1)?),
                    envelopes: to_u64(r.try_get(2)?),
                    envelope_bytes: to_u64(r.try_get(3)?),
                    one_time_prekeys: to_u64(r.try_get(4)?),
                })
            })
        })
    }

    fn close(&self) -> StoreFuture<()> {
        // The writer commits what is queued, then ends with its queue;
        // closing the pools ends the idle connections (busy ones end when
        // they are returned).
        drop(self.deposits.lock().ok().and_then(|mut q| q.take()));
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(listener) = self.listener.lock().ok().and_then(|mut l| l.take()) {
            listener.abort();
        }
        let (pool, lax) = (self.pool.clone(), self.lax.clone());
        Box::pin(async move {
            if let Some(writer) = writer {
                writer.await.map_err(internal)?;
            }
            pool.close();
            lax.close();
            Ok(())
        })
    }

    fn record_nonce(
        &self,
        account: AccountId,
        ts: u64,
        nonce: [u8; 16],
        expires: u64,
        charges: Vec<Charge>,
    ) -> StoreFuture<Result<bool, u64>> {
        // Not flushed at once: losing the newest nonces takes a database
        // crash, and any durable write of the request itself (a deposit)
        // flushes the log past this one.
        let charges = sorted(charges);
        self.lax(move |client| {
            Box::pin(async move {
                let record =
                    client.prepare_cached("SELECT sealpost_record_nonce($1, $2, $3, $4, $5, $6, $7, $8)").await?;
                let Columns { keys, rates, bursts, costs } = columns(&charges);
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
                    [&&account[..], &to_i64(ts), &&nonce[..], &to_i64(expires), &keys, &rates, &bursts, &costs];
                let answer: f64 = client.query_one(&record, &params).await?.try_get(0)?;
                Ok(if answer < -2.5 {
                    Ok(false)
                } else if answer > 0.0 {
                    Err(whole_seconds(answer))
                } else {
                    Ok(true)
                })
            })
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn open_session(&self, id: [u8; 16], session: SharedSession, per_account: usize) -> StoreFuture<()> {
        let keep = i64::try_from(per_account.max(1)).unwrap_or(i64::MAX);
        self.lax(move |client| {
            Box::pin(async move {
                // Two statements, not one transaction: two sessions opened
                // for one account at once may leave one extra until the
                // account's next one.
                client
                    .execute(
                        "INSERT INTO relay_sessions (id, account, key, expires_at) VALUES ($1, $2, $3, $4)",
                        &[&&id[..], &&session.account[..], &&session.key[..], &to_i64(session.expires)],
                    )
                    .await?;
                client
                    .execute(
                        "DELETE FROM relay_sessions WHERE id IN (SELECT id FROM relay_sessions WHERE account = $1
                         ORDER BY opened DESC OFFSET $2)",
                        &[&&session.account[..], &keep],
                    )
                    .await?;
                Ok(())
            })
        })
    }

    fn session(&self, id: [u8; 16]) -> StoreFuture<Option<SharedSession>> {
        self.lax(move |client| {
            Box::pin(async move {
                let select =
                    client.prepare_cached("SELECT account, key, expires_at FROM relay_sessions WHERE id = $1").await?;
                let Some(row) = client.query_opt(&select, &[&&id[..]]).await? else { return Ok(None) };
                let account = account_of(row.try_get(0)?)?;
                let key: &[u8] = row.try_get(1)?;
                let key = zeroize::Zeroizing::new(
                    <[u8; 32]>::try_from(key).map_err(|_| internal("a relay session key is not 32 bytes"))?,
                );
                Ok(Some(SharedSession { account, key, expires: to_u64(row.try_get(2)?) }))
            })
        })
    }

    fn accept_seq(&self, id: [u8; 16], seq: u64, now: u64, charges: Vec<Charge>) -> StoreFuture<SeqCheck> {
        let charges = sorted(charges);
        self.lax(move |client| {
            Box::pin(async move {
                let Ok(seq) = i64::try_from(seq) else { return Ok(SeqCheck::Replayed) };
                // One call: the session row's lock orders concurrent
                // numbers, and the tokens go only with an accepted one.
                let accept = client.prepare_cached("SELECT sealpost_accept_seq($1, $2, $3, $4, $5, $6, $7)").await?;
                let Columns { keys, rates, bursts, costs } = columns(&charges);
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
                    [&&id[..], &seq, &to_i64(now), &keys, &rates, &bursts, &costs];
                let answer: f64 = client.query_one(&accept, &params).await?.try_get(0)?;
                Ok(match answer {
                    a if a < -2.5 => SeqCheck::Replayed,
                    a if a < -1.5 => SeqCheck::Expired,
                    a if a < 0.0 => SeqCheck::Unknown,
                    a if a > 0.0 => SeqCheck::RateLimited(whole_seconds(a)),
                    _ => SeqCheck::Accepted,
                })
            })
        })
    }

    fn take_tokens(&self, charges: Vec<Charge>) -> StoreFuture<Result<(), u64>> {
        let charges = sorted(charges);
        self.lax(move |client| {
            Box::pin(async move {
                let take = client.prepare_cached("SELECT sealpost_take_tokens($1, $2, $3, $4)").await?;
                let Columns { keys, rates, bursts, costs } = columns(&charges);
                let wait: f64 = client.query_one(&take, &[&keys, &rates, &bursts, &costs]).await?.try_get(0)?;
                Ok(if wait > 0.0 { Err(whole_seconds(wait)) } else { Ok(()) })
            })
        })
    }

    fn sweep_shared(&self, now: u64) -> StoreFuture<u64> {
        self.lax(move |client| {
            Box::pin(async move {
                let nonces = client.execute("DELETE FROM nonces WHERE expires_at < $1", &[&to_i64(now)]).await?;
                let sessions =
                    client.execute("DELETE FROM relay_sessions WHERE expires_at < $1", &[&to_i64(now)]).await?;
                // In key order and skipping rows a request holds, so the
                // sweep never waits on a request in a cycle; what it skips
                // goes at the next sweep.
                let mut buckets = 0u64;
                loop {
                    let swept = client
                        .execute(
                            "DELETE FROM rate_buckets WHERE key IN (SELECT key FROM rate_buckets
                             WHERE full_at < extract(epoch FROM clock_timestamp())
                             ORDER BY key LIMIT 10000 FOR UPDATE SKIP LOCKED)",
                            &[],
                        )
                        .await?;
                    buckets = buckets.saturating_add(swept);
                    if swept < 10_000 {
                        break;
                    }
                }
                Ok(nonces.saturating_add(sessions).saturating_add(buckets))
            })
        })
    }

    fn watch(&self, wake: WakeFn) {
        let task = tokio::spawn(listen(self.config.clone(), self.channel.clone(), wake));
        if let Ok(mut l) = self.listener.lock()
            && let Some(old) = l.replace(task)
        {
            old.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_payloads_fit_a_notification_and_parse_back() {
        let deltas: Vec<(AccountId, i64, i64)> = (0..250u8).map(|i| ([i; 32], i64::from(i % 5 != 0), 0)).collect();
        let payloads = wake_payloads(&deltas);
        assert_eq!(payloads.len(), 2);
        assert!(payloads.iter().all(|p| p.len() < 8000));
        let woken: Vec<AccountId> = payloads.iter().flat_map(|p| parse_wake(p).collect::<Vec<_>>()).collect();
        let expected: Vec<AccountId> = deltas.iter().filter(|d| d.1 > 0).map(|d| d.0).collect();
        assert_eq!(woken, expected, "only recipients, each once, in order");
        // A payload that is not ours wakes nobody and does not panic.
        assert_eq!(parse_wake("zz,é,1234,").count(), 0);
        assert_eq!(parse_wake(&"é".repeat(32)).count(), 0);
    }
}
