//! Storage behind one trait, [`Store`], with two backends: the embedded
//! SQLite file ([`SqliteStore`], the default, one relay process) and
//! PostgreSQL ([`PgStore`], shared by several relay processes). What a
//! deposit, a handle claim or a code check decides is written once, in
//! [`rules`], and both backends apply it inside their own transactions.
//!
//! An envelope is stored once, however many recipients it has: a row of
//! `envelopes` holds it with a count of the `deliveries` rows (one per
//! recipient, the mailbox entries) that still refer to it, and goes with
//! the last of them. Each backend versions its schema and migrates it
//! forward when it opens, one numbered step at a time, and refuses a
//! database written by a newer relay.

use std::future::Future;
use std::pin::Pin;

mod postgres;
pub(crate) mod rules;
mod sqlite;
#[cfg(test)]
mod suite;

pub(crate) use postgres::PgStore;
pub(crate) use sqlite::SqliteStore;

/// An account id: the identity's Ed25519 signing key.
pub(crate) type AccountId = [u8; 32];

/// Store failures. Only `Internal` is the relay's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A recipient's mailbox is at its cap (the string names it).
    #[error("mailbox of {0} is full")]
    MailboxFull(String),
    /// The account has not published a bundle (the string names it).
    #[error("unknown account {0}")]
    UnknownAccount(String),
    /// Too soon to repeat the operation (seconds to wait).
    #[error("retry in {0} s")]
    RetryLater(u64),
    /// The handle is bound to another account.
    #[error("handle taken")]
    HandleTaken,
    /// The sender's undelivered envelopes would exceed its storage quota
    /// (bytes it holds now, the quota).
    #[error("sender holds {0} of {1} bytes")]
    SenderQuota(u64, u64),
    /// Anything else: the database failed.
    #[error("storage failure: {0}")]
    Internal(String),
}

/// Result of store operations.
pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// A message waiting in a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredMessage {
    /// Position in the relay's sequence (the pull cursor).
    pub id: i64,
    /// Who deposited it.
    pub sender: AccountId,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// When it was deposited (Unix seconds).
    pub received_at: u64,
}

/// A bundle handed out, with at most one one-time prekey claimed for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClaimedBundle {
    /// The signed part of the bundle.
    pub bundle: Vec<u8>,
    /// The claimed one-time prekey (100 bytes), if any were left.
    pub one_time_prekey: Option<Vec<u8>>,
    /// One-time prekeys left after this claim.
    pub remaining: u64,
}

/// Outcome of a handle verification attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandleCheck {
    /// The code matched; the handle is now bound to the account.
    Bound,
    /// Wrong code; this many attempts remain.
    WrongCode(u32),
    /// The code expired.
    Expired,
    /// Too many wrong codes: the claim is locked until a new one.
    TooManyAttempts,
    /// No claim of this handle by this account.
    NoClaim,
    /// Too many wrong codes for this handle this hour, across accounts:
    /// retry after this many seconds.
    Locked(u64),
}

/// A relay session as the processes sharing a store keep it.
pub(crate) struct SharedSession {
    /// The account that opened it.
    pub account: AccountId,
    /// Its MAC key.
    pub key: zeroize::Zeroizing<[u8; 32]>,
    /// The last second it is valid (Unix seconds).
    pub expires: u64,
}

/// What a shared store made of a relay session's sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    /// First use inside the window: accepted and recorded.
    Accepted,
    /// Already used, or too far behind the highest one.
    Replayed,
    /// No such session (never opened, or dropped).
    Unknown,
    /// The session expired.
    Expired,
    /// A bucket charged with it lacks tokens: nothing was recorded or
    /// taken; the whole seconds to wait.
    RateLimited(u64),
}

/// One token bucket charged by [`Store::take_tokens`]: `rate` tokens per
/// second up to `burst`, `cost` taken (a negative cost gives tokens back).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Charge {
    /// Names the bucket: a kind byte, then the account or address.
    pub key: Vec<u8>,
    /// Tokens per second.
    pub rate: f64,
    /// Most tokens held.
    pub burst: f64,
    /// Tokens taken.
    pub cost: f64,
}

/// The limits on handle claims and codes (see `Config`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HandleLimits {
    /// Seconds a code stays valid.
    pub ttl: u64,
    /// Seconds before the same account may claim the same handle again.
    pub cooldown: u64,
    /// Wrong codes allowed per claim.
    pub max_attempts: u32,
    /// Accounts that may hold an unexpired claim on one handle at once.
    pub max_pending: u32,
    /// Codes delivered per handle per hour.
    pub codes_per_hour: u32,
    /// Wrong codes per handle per hour, across accounts.
    pub wrong_per_hour: u32,
}

/// The limits a deposit is checked against (see `Config`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DepositLimits {
    /// Most messages waiting in one mailbox.
    pub mailbox: u64,
    /// Most bytes ([`stored_cost`]) one sender's undelivered envelopes may
    /// take.
    pub sender_quota: u64,
}

/// What the relay counts for each recipient reference of an envelope: the
/// row and its index entries, rounded up.
pub(crate) const REFERENCE_BYTES: u64 = 64;

/// The bytes an envelope of `len` bytes for `recipients` recipients takes
/// in the store, as the deposit cap and the sender quota count them: the
/// envelope once and a reference per recipient.
pub(crate) fn stored_cost(len: usize, recipients: usize) -> u64 {
    let (len, n) = (u64::try_from(len).unwrap_or(u64::MAX), u64::try_from(recipients).unwrap_or(u64::MAX));
    len.saturating_add(n.saturating_mul(REFERENCE_BYTES))
}

/// The per-handle counting window, in seconds.
pub(crate) const HANDLE_WINDOW: u64 = 3600;

/// Base64url of an account, for error messages.
pub(crate) fn account_name(account: &AccountId) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(account)
}

/// Counts for the status page and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Accounts with a published bundle.
    pub accounts: u64,
    /// Messages waiting (one per recipient of an envelope).
    pub messages: u64,
    /// Envelopes stored (each once, however many recipients it has).
    pub envelopes: u64,
    /// Bytes of the stored envelopes.
    pub envelope_bytes: u64,
    /// One-time prekeys held.
    pub one_time_prekeys: u64,
}

/// What another process's deposit means for the push connections here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// New messages may be waiting for this account.
    Account(AccountId),
    /// New messages may be waiting for anyone (wake-ups may have been
    /// missed).
    All,
}

/// Where [`Store::watch`] reports wake-ups.
pub(crate) type WakeFn = std::sync::Arc<dyn Fn(Wake) + Send + Sync>;

/// A store operation under way.
pub(crate) type StoreFuture<T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'static>>;

/// Everything the relay keeps. Every call returns a future, so that a
/// backend can queue writes (SQLite's group commit) or talk to a server.
pub(crate) trait Store: Send + Sync + 'static {
    /// Stores (or replaces) an account's identity and signed bundle.
    fn publish_bundle(&self, account: AccountId, identity: Vec<u8>, bundle: Vec<u8>, now: u64) -> StoreFuture<()>;
    /// Adds one-time prekeys `(id, 100-byte encoding)`; keeps at most `max`
    /// per account (extra ones are ignored). Returns how many are held.
    fn add_one_time_prekeys(&self, account: AccountId, prekeys: Vec<(u32, Vec<u8>)>, max: u64) -> StoreFuture<u64>;
    /// Whether the account has published a bundle (answered from memory
    /// where the backend can).
    fn is_known(&self, account: AccountId) -> StoreFuture<bool>;
    /// The identity (128 bytes) of an account, if it published a bundle,
    /// and how many one-time prekeys the relay holds for it.
    fn identity(&self, account: AccountId) -> StoreFuture<Option<(Vec<u8>, u64)>>;
    /// Hands out the bundle with one one-time prekey, which is deleted in
    /// the same transaction: each is handed out exactly once.
    fn claim_bundle(&self, account: AccountId) -> StoreFuture<Option<ClaimedBundle>>;
    /// Deposits an envelope for every recipient, all or nothing: the
    /// envelope is stored once, with one reference per recipient. Fails if
    /// a recipient is unknown, if its mailbox holds `limits.mailbox`
    /// messages, or if the sender's stored bytes ([`stored_cost`]) would
    /// exceed `limits.sender_quota`.
    fn deposit(
        &self,
        sender: AccountId,
        recipients: Vec<AccountId>,
        envelope: Vec<u8>,
        now: u64,
        limits: DepositLimits,
    ) -> StoreFuture<Vec<i64>>;
    /// Messages for `account` with id greater than `after`, oldest first:
    /// at most `limit` of them and, after the first, no more than
    /// `max_bytes` envelope bytes in all (the first is returned however
    /// large, so a page always makes progress).
    fn pull(&self, account: AccountId, after: i64, limit: u32, max_bytes: usize) -> StoreFuture<Vec<StoredMessage>>;
    /// Deletes the given messages of `account` (others' are untouched).
    fn ack(&self, account: AccountId, ids: Vec<i64>) -> StoreFuture<u64>;
    /// Deletes messages received before `before`. Returns how many.
    fn purge(&self, before: u64) -> StoreFuture<u64>;
    /// Records a claim of `handle` by `account` with the hash of its code.
    /// Refused (`RetryLater`, with the seconds to wait) when the account
    /// renews within `limits.cooldown`, when `limits.max_pending` other
    /// accounts hold unexpired claims on the handle, or when the handle had
    /// `limits.codes_per_hour` codes this hour. A renewed claim keeps the
    /// wrong-attempt count unless the old code had expired.
    fn claim_handle(
        &self,
        handle: String,
        account: AccountId,
        code_hash: [u8; 32],
        now: u64,
        limits: HandleLimits,
    ) -> StoreFuture<()>;
    /// Checks a code hash (in constant time); binds the handle on success.
    /// A handle that had `limits.wrong_per_hour` wrong codes this hour, from
    /// any accounts, is not checked at all (`HandleCheck::Locked`).
    fn verify_handle(
        &self,
        handle: String,
        account: AccountId,
        code_hash: [u8; 32],
        now: u64,
        limits: HandleLimits,
    ) -> StoreFuture<HandleCheck>;
    /// The account and identity a handle is bound to.
    fn lookup_handle(&self, handle: String) -> StoreFuture<Option<(AccountId, Vec<u8>)>>;
    /// The MQTT mailbox id of `account`, which becomes `fresh` if it has
    /// none yet (an id never changes once given).
    fn enrol_mqtt(&self, account: AccountId, fresh: String, now: u64) -> StoreFuture<String>;
    /// The MQTT mailbox ids of those of `accounts` that enrolled.
    fn mqtt_mailboxes(&self, accounts: Vec<AccountId>) -> StoreFuture<Vec<(AccountId, String)>>;
    /// The account that enrolled MQTT mailbox `mailbox`.
    fn mqtt_owner(&self, mailbox: String) -> StoreFuture<Option<AccountId>>;
    /// Counts.
    fn stats(&self) -> StoreFuture<Stats>;
    /// Stops after everything queued is committed.
    fn close(&self) -> StoreFuture<()>;
    /// Records the nonce of a verified signed request (`ts` its time)
    /// where every process sharing the store sees it, until `expires`, and
    /// takes the `charges` ([`Store::take_tokens`]), all or none: `Ok(false)`
    /// if the nonce was recorded before (a replay through another process),
    /// `Err` with the seconds to wait if a bucket lacks tokens (then
    /// nothing is kept). A store only one process uses answers
    /// `Ok(true)`: the relay's memory of nonces and buckets decides alone.
    fn record_nonce(
        &self,
        account: AccountId,
        ts: u64,
        nonce: [u8; 16],
        expires: u64,
        charges: Vec<Charge>,
    ) -> StoreFuture<Result<bool, u64>> {
        let _ = (account, ts, nonce, expires, charges);
        Box::pin(async { Ok(Ok(true)) })
    }
    /// Whether several relay processes may share this store, so that relay
    /// sessions and rate limits must be kept in it as well
    /// ([`Store::open_session`], [`Store::take_tokens`]). A store only one
    /// process uses leaves them to the relay's memory.
    fn shared(&self) -> bool {
        false
    }
    /// Records relay session `id` where every process sharing the store
    /// finds it, keeping the account's `per_account` newest sessions.
    fn open_session(&self, id: [u8; 16], session: SharedSession, per_account: usize) -> StoreFuture<()> {
        let _ = (id, session, per_account);
        Box::pin(async { Ok(()) })
    }
    /// The shared relay session `id`, if it is held.
    fn session(&self, id: [u8; 16]) -> StoreFuture<Option<SharedSession>> {
        let _ = id;
        Box::pin(async { Ok(None) })
    }
    /// Records sequence number `seq` (at least 1) of shared session `id` at
    /// time `now` and takes the `charges`, in one step every process sees:
    /// each number is accepted once, only within the session's window
    /// behind its highest, and only with the tokens.
    fn accept_seq(&self, id: [u8; 16], seq: u64, now: u64, charges: Vec<Charge>) -> StoreFuture<SeqCheck> {
        let _ = (id, seq, now, charges);
        Box::pin(async { Ok(SeqCheck::Unknown) })
    }
    /// Takes the charges' tokens from buckets every process sharing the
    /// store sees, all or none: on refusal, the whole seconds to wait. A
    /// store only one process uses takes nothing and refuses nothing.
    fn take_tokens(&self, charges: Vec<Charge>) -> StoreFuture<Result<(), u64>> {
        let _ = charges;
        Box::pin(async { Ok(Ok(())) })
    }
    /// Forgets shared nonces and relay sessions that expired before `now`,
    /// and buckets that are full again; returns how many rows went.
    fn sweep_shared(&self, now: u64) -> StoreFuture<u64> {
        let _ = now;
        Box::pin(async { Ok(0) })
    }
    /// Calls `wake` whenever another process sharing the store deposited
    /// for an account ([`Wake::Account`]), or might have while the backend
    /// could not tell ([`Wake::All`]). A store only one process uses has
    /// nothing to report and ignores it.
    fn watch(&self, wake: WakeFn) {
        let _ = wake;
    }
}
