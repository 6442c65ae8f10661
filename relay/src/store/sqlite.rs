//! The embedded SQLite store.
//!
//! The file runs in WAL mode with `synchronous=FULL`. All writes go
//! through one writer thread that takes every write waiting in its queue,
//! applies them in one transaction (each in its own savepoint, so one
//! refused write does not undo the others) and commits once: a *group
//! commit*. A write is answered only after that commit returned, so a
//! deposit acknowledged with 2xx survives a process crash, and with
//! `synchronous=FULL` also a power loss (the WAL is fsynced at commit).
//! Reads use a small pool of separate connections, which WAL lets run
//! alongside the writer. The writer also keeps, in memory, which accounts
//! exist, how full each mailbox is and how many bytes each sender has
//! stored, so a deposit's checks cost no query. The schema is versioned
//! with `PRAGMA user_version`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use rusqlite::{Connection, OptionalExtension, params};

use super::rules::{self, Claim, ClaimContext, Verdict, Window};
use super::{
    AccountId, ClaimedBundle, DepositLimits, HandleCheck, HandleLimits, REFERENCE_BYTES, Stats, Store, StoreError,
    StoreFuture, StoreResult, StoredMessage, account_name, stored_cost,
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Internal(e.to_string())
    }
}

/// The handle's counting window at `now`.
fn handle_window(c: &Connection, handle: &str, now: u64) -> StoreResult<Window> {
    let row: Option<(i64, i64, i64)> = c
        .query_row("SELECT window_start, codes, wrong FROM handle_limits WHERE handle = ?1", [handle], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let stored =
        row.map(|(start, codes, wrong)| Window { start: to_u64(start), codes: to_u32(codes), wrong: to_u32(wrong) });
    Ok(Window::at(stored, now))
}

/// Stores the handle's counting window.
fn put_handle_window(c: &Connection, handle: &str, w: Window) -> StoreResult<()> {
    c.execute(
        "INSERT INTO handle_limits (handle, window_start, codes, wrong) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (handle) DO UPDATE SET window_start = ?2, codes = ?3, wrong = ?4",
        params![handle, to_i64(w.start), w.codes, w.wrong],
    )?;
    Ok(())
}

/// The first schema (version 0), as the first relays created it; the
/// steps of [`MIGRATIONS`] bring it to the current one.
const SCHEMA_V0: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    account BLOB PRIMARY KEY,
    identity BLOB NOT NULL,
    bundle BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
    account BLOB NOT NULL,
    key_id INTEGER NOT NULL,
    prekey BLOB NOT NULL,
    PRIMARY KEY (account, key_id)
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient BLOB NOT NULL,
    sender BLOB NOT NULL,
    envelope BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages (recipient, id);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (received_at);
CREATE TABLE IF NOT EXISTS handles (
    handle TEXT PRIMARY KEY,
    account BLOB NOT NULL,
    bound_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS handle_claims (
    handle TEXT NOT NULL,
    account BLOB NOT NULL,
    code_hash BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (handle, account)
);
CREATE TABLE IF NOT EXISTS handle_limits (
    handle TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    codes INTEGER NOT NULL,
    wrong INTEGER NOT NULL
);
";

/// Schema steps: step `i` brings version `i` to `i + 1`. Each runs in one
/// transaction with the new `user_version`, so a crash leaves either
/// version. Never edit a step that shipped; add one.
const MIGRATIONS: &[&str] = &[
    // 1: each envelope stored once, referenced by one delivery per
    // recipient. Delivery ids continue the old message ids (pull cursors
    // stay valid), and the sequence never goes back.
    "
    CREATE TABLE envelopes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender BLOB NOT NULL,
        body BLOB NOT NULL,
        refs INTEGER NOT NULL,
        received_at INTEGER NOT NULL
    );
    INSERT INTO envelopes (id, sender, body, refs, received_at)
        SELECT id, sender, envelope, 1, received_at FROM messages;
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient BLOB NOT NULL,
        envelope INTEGER NOT NULL,
        received_at INTEGER NOT NULL
    );
    INSERT INTO deliveries (id, recipient, envelope, received_at)
        SELECT id, recipient, id, received_at FROM messages;
    DELETE FROM sqlite_sequence WHERE name IN ('deliveries', 'envelopes');
    INSERT INTO sqlite_sequence (name, seq) SELECT 'deliveries', seq FROM sqlite_sequence WHERE name = 'messages';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'envelopes', seq FROM sqlite_sequence WHERE name = 'messages';
    DROP TABLE messages;
    CREATE INDEX deliveries_by_recipient ON deliveries (recipient, id);
    CREATE INDEX deliveries_by_time ON deliveries (received_at);
    CREATE INDEX envelopes_by_time ON envelopes (received_at);
    CREATE INDEX envelopes_by_sender ON envelopes (sender);
    ",
    // 2: mailboxes enrolled for MQTT, by their random topic id.
    "
    CREATE TABLE mqtt_mailboxes (
        account BLOB PRIMARY KEY,
        mailbox TEXT NOT NULL UNIQUE,
        enrolled_at INTEGER NOT NULL
    );
    ",
];

/// Creates the first schema if the file is new, then applies every step
/// the file has not had. A file from a newer relay is refused.
fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 {
        // New, or written before versions were kept (then it has them all).
        conn.execute_batch(SCHEMA_V0)?;
    }
    let current = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    if version > current {
        return Err(StoreError::Internal(format!(
            "the database has schema version {version}; this relay knows up to {current}"
        )));
    }
    for (step, sql) in (version..).zip(MIGRATIONS.iter().skip(usize::try_from(version).unwrap_or(usize::MAX))) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step.saturating_add(1))?;
        tx.commit()?;
        tracing::info!(version = step.saturating_add(1), "migrated the database schema");
    }
    Ok(())
}

/// What only the writer thread touches: the connection, the mailbox sizes
/// and the senders' stored bytes it has counted (exact, because every
/// change goes through it; loaded on first use).
struct Writer {
    conn: Connection,
    counts: HashMap<AccountId, u64>,
    sent_bytes: HashMap<AccountId, u64>,
}

/// Adds `delta` to a counted value, if it was counted.
fn adjust(map: &mut HashMap<AccountId, u64>, account: &AccountId, delta: i64) {
    if let Some(n) = map.get_mut(account) {
        *n = if delta >= 0 { n.saturating_add(delta.unsigned_abs()) } else { n.saturating_sub(delta.unsigned_abs()) };
    }
}

impl Writer {
    fn count(&mut self, account: &AccountId) -> StoreResult<u64> {
        if let Some(n) = self.counts.get(account) {
            return Ok(*n);
        }
        let n: i64 =
            self.conn
                .query_row("SELECT COUNT(*) FROM deliveries WHERE recipient = ?1", [&account[..]], |r| r.get(0))?;
        let n = to_u64(n);
        self.counts.insert(*account, n);
        Ok(n)
    }

    /// The bytes ([`stored_cost`]) of the sender's envelopes still stored.
    fn sent(&mut self, sender: &AccountId) -> StoreResult<u64> {
        if let Some(n) = self.sent_bytes.get(sender) {
            return Ok(*n);
        }
        let n: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(length(body) + refs * ?2), 0) FROM envelopes WHERE sender = ?1",
            params![&sender[..], to_i64(REFERENCE_BYTES)],
            |r| r.get(0),
        )?;
        let n = to_u64(n);
        self.sent_bytes.insert(*sender, n);
        Ok(n)
    }

    /// Forgets every counted value (after a rollback or a purge).
    fn forget_counts(&mut self) {
        self.counts.clear();
        self.sent_bytes.clear();
    }
}

/// A write waiting for the writer thread.
trait WriteJob: Send {
    /// Runs inside the batch transaction; false means "roll this one back".
    fn run(&mut self, w: &mut Writer) -> bool;
    /// Answers the caller once the batch committed (or failed to).
    fn finish(self: Box<Self>, committed: StoreResult<()>);
}

struct Job<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send, F: FnOnce(&mut Writer) -> StoreResult<T> + Send> WriteJob for Job<T, F> {
    fn run(&mut self, w: &mut Writer) -> bool {
        let Some(work) = self.work.take() else { return false };
        let result = work(w);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        let answer = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(e), Some(Ok(_))) => Err(e),
            (_, Some(Err(e))) => Err(e),
            (_, None) => Err(StoreError::Internal("write job did not run".into())),
        };
        // The caller may have gone away (request cancelled); nothing to do then.
        let _ = self.reply.send(answer);
    }
}

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 512;
/// Writes that may wait for the writer before callers wait for room.
const QUEUE: usize = 8192;
/// Read connections kept open.
const READERS: usize = 4;

/// The embedded SQLite store.
pub(crate) struct SqliteStore {
    writer: Mutex<Option<mpsc::Sender<Box<dyn WriteJob>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    known: Arc<RwLock<HashSet<AccountId>>>,
    path: std::path::PathBuf,
}

fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (or creates) `dir/sealpost.sqlite3` and starts the writer.
    pub(crate) fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Internal(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("sealpost.sqlite3");
        let mut conn = open_connection(&path)?;
        migrate(&mut conn)?;
        let known: HashSet<AccountId> = {
            let mut stmt = conn.prepare("SELECT account FROM accounts")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            let mut set = HashSet::new();
            for row in rows {
                set.insert(account_of(row?)?);
            }
            set
        };
        let known = Arc::new(RwLock::new(known));
        let (tx, rx) = mpsc::channel::<Box<dyn WriteJob>>(QUEUE);
        let writer = Writer { conn, counts: HashMap::new(), sent_bytes: HashMap::new() };
        let thread = std::thread::Builder::new()
            .name("sealpost-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(Self {
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            readers: Arc::new(Mutex::new(Vec::new())),
            known,
            path,
        })
    }

    /// Whether the account published a bundle (from memory).
    fn knows(&self, account: &AccountId) -> bool {
        self.known.read().map(|k| k.contains(account)).unwrap_or(false)
    }

    /// Closes the writer's queue; the thread ends once it committed what
    /// is queued. Returns the thread to join (once).
    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        self.thread.lock().ok().and_then(|mut t| t.take())
    }

    fn write<T, F>(&self, work: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> StoreResult<T> + Send + 'static,
    {
        let sender = self.writer.lock().ok().and_then(|w| w.clone());
        Box::pin(async move {
            let sender = sender.ok_or_else(|| StoreError::Internal("store is closed".into()))?;
            let (reply, answer) = oneshot::channel();
            let job: Box<dyn WriteJob> = Box::new(Job { work: Some(work), result: None, reply });
            sender.send(job).await.map_err(|_| StoreError::Internal("writer stopped".into()))?;
            answer.await.map_err(|_| StoreError::Internal("writer stopped".into()))?
        })
    }

    fn read<T, F>(&self, work: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (pool, path) = (Arc::clone(&self.readers), self.path.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = match pool.lock().map_err(|_| StoreError::Internal("pool poisoned".into()))?.pop() {
                    Some(c) => c,
                    None => open_connection(&path)?,
                };
                let result = work(&conn);
                if let Ok(mut p) = pool.lock()
                    && p.len() < READERS
                {
                    p.push(conn);
                }
                result
            })
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some(handle) = self.stop_writer() {
            let _ = handle.join();
        }
    }
}

fn writer_loop(mut w: Writer, mut rx: mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(&mut w, &mut jobs);
        if let Err(e) = &committed {
            tracing::error!(error = %e, batch = jobs.len(), "write batch failed");
            // The counts may include writes that were rolled back: recount.
            w.forget_counts();
        }
        for job in jobs {
            job.finish(committed.clone());
        }
    }
}

/// Runs one of the batch's own statements (`BEGIN`, `SAVEPOINT`, ...) from
/// the statement cache: they run for every write, and parsing them each
/// time showed in profiles.
fn control(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn run_batch(w: &mut Writer, jobs: &mut [Box<dyn WriteJob>]) -> StoreResult<()> {
    control(&w.conn, "BEGIN IMMEDIATE")?;
    for job in jobs.iter_mut() {
        let step = (|| -> StoreResult<()> {
            control(&w.conn, "SAVEPOINT job")?;
            if job.run(w) {
                control(&w.conn, "RELEASE job")
            } else {
                Ok(w.conn.execute_batch("ROLLBACK TO job; RELEASE job")?)
            }
        })();
        if let Err(e) = step {
            let _ = w.conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    control(&w.conn, "COMMIT").inspect_err(|_| {
        let _ = w.conn.execute_batch("ROLLBACK");
    })
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn account_of(blob: Vec<u8>) -> StoreResult<AccountId> {
    blob.try_into().map_err(|_| StoreError::Internal("stored account id has the wrong length".into()))
}

impl Store for SqliteStore {
    fn publish_bundle(&self, account: AccountId, identity: Vec<u8>, bundle: Vec<u8>, now: u64) -> StoreFuture<()> {
        let known = Arc::clone(&self.known);
        self.write(move |w| {
            w.conn.execute(
                "INSERT INTO accounts (account, identity, bundle, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account) DO UPDATE SET identity = ?2, bundle = ?3, updated_at = ?4",
                params![&account[..], identity, bundle, to_i64(now)],
            )?;
            // Marking it known before the commit is harmless: a failed commit
            // only lets deposits to it fail later with "unknown account".
            if let Ok(mut k) = known.write() {
                k.insert(account);
            }
            Ok(())
        })
    }

    fn add_one_time_prekeys(&self, account: AccountId, prekeys: Vec<(u32, Vec<u8>)>, max: u64) -> StoreFuture<u64> {
        if !self.knows(&account) {
            return Box::pin(async move { Err(StoreError::UnknownAccount(account_name(&account))) });
        }
        self.write(move |w| {
            let c = &w.conn;
            let mut held: i64 =
                c.query_row("SELECT COUNT(*) FROM one_time_prekeys WHERE account = ?1", [&account[..]], |r| r.get(0))?;
            let mut insert = c.prepare_cached(
                "INSERT INTO one_time_prekeys (account, key_id, prekey) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account, key_id) DO NOTHING",
            )?;
            for (id, key) in prekeys {
                if to_u64(held) >= max {
                    break;
                }
                held = held.saturating_add(i64::try_from(insert.execute(params![&account[..], id, key])?).unwrap_or(0));
            }
            Ok(to_u64(held))
        })
    }

    fn is_known(&self, account: AccountId) -> StoreFuture<bool> {
        let known = self.knows(&account);
        Box::pin(async move { Ok(known) })
    }

    fn identity(&self, account: AccountId) -> StoreFuture<Option<(Vec<u8>, u64)>> {
        self.read(move |c| {
            let identity: Option<Vec<u8>> = c
                .query_row("SELECT identity FROM accounts WHERE account = ?1", [&account[..]], |r| r.get(0))
                .optional()?;
            let Some(identity) = identity else { return Ok(None) };
            let held: i64 =
                c.query_row("SELECT COUNT(*) FROM one_time_prekeys WHERE account = ?1", [&account[..]], |r| r.get(0))?;
            Ok(Some((identity, to_u64(held))))
        })
    }

    fn claim_bundle(&self, account: AccountId) -> StoreFuture<Option<ClaimedBundle>> {
        self.write(move |w| {
            let c = &w.conn;
            let bundle: Option<Vec<u8>> = c
                .query_row("SELECT bundle FROM accounts WHERE account = ?1", [&account[..]], |r| r.get(0))
                .optional()?;
            let Some(bundle) = bundle else { return Ok(None) };
            let otk: Option<(i64, Vec<u8>)> = c
                .query_row(
                    "SELECT key_id, prekey FROM one_time_prekeys WHERE account = ?1 ORDER BY key_id LIMIT 1",
                    [&account[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((id, _)) = &otk {
                c.execute(
                    "DELETE FROM one_time_prekeys WHERE account = ?1 AND key_id = ?2",
                    params![&account[..], id],
                )?;
            }
            let remaining: i64 =
                c.query_row("SELECT COUNT(*) FROM one_time_prekeys WHERE account = ?1", [&account[..]], |r| r.get(0))?;
            Ok(Some(ClaimedBundle { bundle, one_time_prekey: otk.map(|(_, k)| k), remaining: to_u64(remaining) }))
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
        if let Some(r) = recipients.iter().find(|r| !self.knows(r)) {
            let name = account_name(r);
            return Box::pin(async move { Err(StoreError::UnknownAccount(name)) });
        }
        self.write(move |w| {
            // Check every mailbox and the sender's quota first: all or nothing.
            let mut waiting = Vec::with_capacity(recipients.len());
            for r in &recipients {
                waiting.push((r, w.count(r)?));
            }
            let cost = stored_cost(envelope.len(), recipients.len());
            rules::check_deposit(waiting, w.sent(&sender)?, cost, limits)?;
            let refs = i64::try_from(recipients.len()).unwrap_or(i64::MAX);
            w.conn
                .prepare_cached("INSERT INTO envelopes (sender, body, refs, received_at) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![&sender[..], &envelope, refs, to_i64(now)])?;
            let stored = w.conn.last_insert_rowid();
            let mut ids = Vec::with_capacity(recipients.len());
            {
                let mut insert = w
                    .conn
                    .prepare_cached("INSERT INTO deliveries (recipient, envelope, received_at) VALUES (?1, ?2, ?3)")?;
                for r in &recipients {
                    insert.execute(params![&r[..], stored, to_i64(now)])?;
                    ids.push(w.conn.last_insert_rowid());
                }
            }
            for r in &recipients {
                adjust(&mut w.counts, r, 1);
            }
            adjust(&mut w.sent_bytes, &sender, i64::try_from(cost).unwrap_or(i64::MAX));
            Ok(ids)
        })
    }

    fn pull(&self, account: AccountId, after: i64, limit: u32, max_bytes: usize) -> StoreFuture<Vec<StoredMessage>> {
        self.read(move |c| {
            // length() of a blob is read from the record header, so an
            // envelope that does not fit is never loaded.
            let mut stmt = c.prepare_cached(
                "SELECT d.id, e.sender, length(e.body), e.body, d.received_at
                 FROM deliveries d JOIN envelopes e ON e.id = d.envelope
                 WHERE d.recipient = ?1 AND d.id > ?2 ORDER BY d.id LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![&account[..], after, limit])?;
            let (mut out, mut bytes) = (Vec::new(), 0usize);
            while let Some(r) = rows.next()? {
                let len = usize::try_from(r.get::<_, i64>(2)?).unwrap_or(usize::MAX);
                if !out.is_empty() && bytes.saturating_add(len) > max_bytes {
                    break;
                }
                bytes = bytes.saturating_add(len);
                out.push(StoredMessage {
                    id: r.get(0)?,
                    sender: account_of(r.get(1)?)?,
                    envelope: r.get(3)?,
                    received_at: to_u64(r.get(4)?),
                });
            }
            Ok(out)
        })
    }

    fn ack(&self, account: AccountId, ids: Vec<i64>) -> StoreFuture<u64> {
        self.write(move |w| {
            let mut deleted: u64 = 0;
            let mut freed: Vec<(AccountId, u64)> = Vec::new();
            {
                let c = &w.conn;
                let mut find = c.prepare_cached(
                    "SELECT d.envelope, e.sender, length(e.body), e.refs
                     FROM deliveries d JOIN envelopes e ON e.id = d.envelope WHERE d.id = ?1 AND d.recipient = ?2",
                )?;
                let mut del = c.prepare_cached("DELETE FROM deliveries WHERE id = ?1")?;
                let mut unref = c.prepare_cached("UPDATE envelopes SET refs = refs - 1 WHERE id = ?1")?;
                let mut drop_envelope = c.prepare_cached("DELETE FROM envelopes WHERE id = ?1")?;
                for id in ids {
                    let found: Option<(i64, Vec<u8>, i64, i64)> = find
                        .query_row(params![id, &account[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .optional()?;
                    let Some((envelope, sender, len, refs)) = found else { continue };
                    del.execute([id])?;
                    deleted = deleted.saturating_add(1);
                    // The last reference takes the envelope with it.
                    let mut bytes = REFERENCE_BYTES;
                    if refs <= 1 {
                        drop_envelope.execute([envelope])?;
                        bytes = bytes.saturating_add(to_u64(len));
                    } else {
                        unref.execute([envelope])?;
                    }
                    freed.push((account_of(sender)?, bytes));
                }
            }
            adjust(&mut w.counts, &account, -i64::try_from(deleted).unwrap_or(0));
            for (sender, bytes) in freed {
                adjust(&mut w.sent_bytes, &sender, -i64::try_from(bytes).unwrap_or(0));
            }
            Ok(deleted)
        })
    }

    fn purge(&self, before: u64) -> StoreFuture<u64> {
        self.write(move |w| {
            // An envelope and its deliveries share their arrival time.
            let n = w.conn.execute("DELETE FROM deliveries WHERE received_at < ?1", [to_i64(before)])?;
            w.conn.execute("DELETE FROM envelopes WHERE received_at < ?1", [to_i64(before)])?;
            if n > 0 {
                w.forget_counts();
            }
            w.conn.execute("DELETE FROM handle_claims WHERE expires_at < ?1", [to_i64(before)])?;
            // Windows that ended before `before` limit nothing any more.
            w.conn.execute(
                "DELETE FROM handle_limits WHERE window_start < ?1",
                [to_i64(before.saturating_sub(super::HANDLE_WINDOW))],
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
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
        self.write(move |w| {
            let c = &w.conn;
            let bound: Option<Vec<u8>> =
                c.query_row("SELECT account FROM handles WHERE handle = ?1", [&handle], |r| r.get(0)).optional()?;
            let previous: Option<(i64, i64, i64)> = c
                .query_row(
                    "SELECT claimed_at, expires_at, attempts FROM handle_claims WHERE handle = ?1 AND account = ?2",
                    params![handle, &account[..]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let (others, first): (i64, Option<i64>) = c.query_row(
                "SELECT COUNT(*), MIN(expires_at) FROM handle_claims
                 WHERE handle = ?1 AND account != ?2 AND expires_at >= ?3",
                params![handle, &account[..], to_i64(now)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let found = ClaimContext {
                bound_elsewhere: bound.is_some_and(|b| b != account),
                previous: previous.map(|(claimed_at, expires_at, attempts)| Claim {
                    claimed_at: to_u64(claimed_at),
                    expires_at: to_u64(expires_at),
                    attempts: to_u32(attempts),
                }),
                others: to_u64(others),
                first_other_expiry: first.map(to_u64),
                window: handle_window(c, &handle, now)?,
            };
            let (attempts, window) = rules::claim(found, now, limits)?;
            put_handle_window(c, &handle, window)?;
            c.execute(
                "INSERT INTO handle_claims (handle, account, code_hash, expires_at, attempts, claimed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (handle, account) DO UPDATE SET code_hash = ?3, expires_at = ?4, attempts = ?5,
                 claimed_at = ?6",
                params![
                    handle,
                    &account[..],
                    &code_hash[..],
                    to_i64(now.saturating_add(limits.ttl)),
                    attempts,
                    to_i64(now)
                ],
            )?;
            Ok(())
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
        self.write(move |w| {
            let c = &w.conn;
            let claim: Option<(Vec<u8>, i64, i64, i64)> = c
                .query_row(
                    "SELECT code_hash, claimed_at, expires_at, attempts FROM handle_claims
                     WHERE handle = ?1 AND account = ?2",
                    params![handle, &account[..]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let claim = claim.map(|(hash, claimed_at, expires_at, attempts)| {
                let state = Claim {
                    claimed_at: to_u64(claimed_at),
                    expires_at: to_u64(expires_at),
                    attempts: to_u32(attempts),
                };
                (hash, state)
            });
            let window = handle_window(c, &handle, now)?;
            match rules::verify(claim.as_ref().map(|(h, s)| (h.as_slice(), *s)), window, &code_hash, now, limits) {
                Verdict::Answer(answer) => Ok(answer),
                Verdict::Bind => {
                    let bound: Option<Vec<u8>> = c
                        .query_row("SELECT account FROM handles WHERE handle = ?1", [&handle], |r| r.get(0))
                        .optional()?;
                    if bound.is_some_and(|b| b != account) {
                        return Err(StoreError::HandleTaken);
                    }
                    c.execute(
                        "INSERT INTO handles (handle, account, bound_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (handle) DO UPDATE SET account = ?2, bound_at = ?3",
                        params![handle, &account[..], to_i64(now)],
                    )?;
                    c.execute("DELETE FROM handle_claims WHERE handle = ?1", [&handle])?;
                    Ok(HandleCheck::Bound)
                }
                Verdict::Wrong { window, attempts, answer } => {
                    put_handle_window(c, &handle, window)?;
                    c.execute(
                        "UPDATE handle_claims SET attempts = ?3 WHERE handle = ?1 AND account = ?2",
                        params![handle, &account[..], attempts],
                    )?;
                    Ok(answer)
                }
            }
        })
    }

    fn lookup_handle(&self, handle: String) -> StoreFuture<Option<(AccountId, Vec<u8>)>> {
        self.read(move |c| {
            let row: Option<(Vec<u8>, Vec<u8>)> = c
                .query_row(
                    "SELECT h.account, a.identity FROM handles h JOIN accounts a ON a.account = h.account
                     WHERE h.handle = ?1",
                    [&handle],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(a, id)| Ok((account_of(a)?, id))).transpose()
        })
    }

    fn enrol_mqtt(&self, account: AccountId, fresh: String, now: u64) -> StoreFuture<String> {
        self.write(move |w| {
            w.conn.execute(
                "INSERT INTO mqtt_mailboxes (account, mailbox, enrolled_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account) DO NOTHING",
                params![&account[..], fresh, to_i64(now)],
            )?;
            Ok(w.conn
                .query_row("SELECT mailbox FROM mqtt_mailboxes WHERE account = ?1", [&account[..]], |r| r.get(0))?)
        })
    }

    fn mqtt_owner(&self, mailbox: String) -> StoreFuture<Option<AccountId>> {
        self.read(move |c| {
            let row: Option<Vec<u8>> = c
                .query_row("SELECT account FROM mqtt_mailboxes WHERE mailbox = ?1", [&mailbox], |r| r.get(0))
                .optional()?;
            row.map(account_of).transpose()
        })
    }

    fn mqtt_mailboxes(&self, accounts: Vec<AccountId>) -> StoreFuture<Vec<(AccountId, String)>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached("SELECT mailbox FROM mqtt_mailboxes WHERE account = ?1")?;
            let mut found = Vec::new();
            for account in accounts {
                if let Some(id) = stmt.query_row([&account[..]], |r| r.get::<_, String>(0)).optional()? {
                    found.push((account, id));
                }
            }
            Ok(found)
        })
    }

    fn stats(&self) -> StoreFuture<Stats> {
        self.read(|c| {
            let n = |sql: &str| -> StoreResult<u64> { Ok(to_u64(c.query_row(sql, [], |r| r.get(0))?)) };
            Ok(Stats {
                accounts: n("SELECT COUNT(*) FROM accounts")?,
                messages: n("SELECT COUNT(*) FROM deliveries")?,
                envelopes: n("SELECT COUNT(*) FROM envelopes")?,
                envelope_bytes: n("SELECT COALESCE(SUM(length(body)), 0) FROM envelopes")?,
                one_time_prekeys: n("SELECT COUNT(*) FROM one_time_prekeys")?,
            })
        })
    }

    fn close(&self) -> StoreFuture<()> {
        let thread = self.stop_writer();
        Box::pin(async move {
            if let Some(handle) = thread {
                tokio::task::spawn_blocking(move || handle.join())
                    .await
                    .map_err(|e| StoreError::Internal(e.to_string()))?
                    .map_err(|_| StoreError::Internal("the writer thread panicked".into()))?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    /// A mailbox cap and no sender quota.
    fn lim(mailbox: u64) -> DepositLimits {
        DepositLimits { mailbox, sender_quota: u64::MAX }
    }

    #[tokio::test]
    async fn a_version_0_database_is_migrated_with_its_messages_and_ids() {
        let (alice, bob) = ([1u8; 32], [2u8; 32]);
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join("sealpost.sqlite3")).unwrap();
            c.execute_batch(SCHEMA_V0).unwrap();
            for a in [alice, bob] {
                c.execute(
                    "INSERT INTO accounts VALUES (?1, ?2, ?3, ?4)",
                    params![&a[..], vec![0u8; 128], vec![0u8], 1],
                )
                .unwrap();
            }
            let insert = "INSERT INTO messages (recipient, sender, envelope, received_at) VALUES (?1, ?2, ?3, ?4)";
            for i in 0..5u8 {
                c.execute(insert, params![&bob[..], &alice[..], vec![i; 3], to_i64(T0)]).unwrap();
            }
            // The newest two were acknowledged: their ids must never come back.
            c.execute("DELETE FROM messages WHERE id > 3", []).unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let page = store.pull(bob, 0, 10, usize::MAX).await.unwrap();
        let got: Vec<(i64, Vec<u8>)> = page.iter().map(|m| (m.id, m.envelope.clone())).collect();
        assert_eq!(got, [(1, vec![0; 3]), (2, vec![1; 3]), (3, vec![2; 3])]);
        assert!(page.iter().all(|m| m.sender == alice && m.received_at == T0));
        let next = store.deposit(alice, vec![bob], b"new".to_vec(), T0, lim(10)).await.unwrap();
        assert_eq!(next, [6], "ids continue after the highest ever given");
        assert_eq!(store.ack(bob, vec![1, 2, 3]).await.unwrap(), 3);
        assert_eq!(store.stats().await.unwrap().envelopes, 1);
        store.close().await.unwrap();
        drop(store);
        // Opening again applies nothing twice and keeps what is there.
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.pull(bob, 0, 10, usize::MAX).await.unwrap()[0].envelope, b"new");
        let c = Connection::open(dir.path().join("sealpost.sqlite3")).unwrap();
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(usize::try_from(version).unwrap(), MIGRATIONS.len());
        let old: i64 =
            c.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages'", [], |r| r.get(0)).unwrap();
        assert_eq!(old, 0, "the version-0 table is gone and not created again");
    }

    #[test]
    fn a_database_from_a_newer_relay_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("sealpost.sqlite3")).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(SqliteStore::open(dir.path()), Err(StoreError::Internal(m)) if m.contains("99")));
    }
}
