//! The relay's memory of authenticated requests: the nonces of signed
//! requests ([`NonceCache`]) and relay sessions ([`Sessions`]). Parsing the
//! `Authorization` value and checking its signature or MAC is
//! `sealpost-client`'s ([`Credentials`], [`SessionCredentials`]), the same
//! code clients sign with (docs/RELAY.md section 4).

use std::collections::{HashMap, VecDeque};

use sealpost_client::{Credentials, SessionCredentials};

use crate::error::{ApiError, ErrorCode};
use crate::shards::{MAX_SHARDS, Shards, shards_for};
use crate::store::{AccountId, Charge, SeqCheck, SharedSession, Store};

/// The nonces one account used recently.
#[derive(Default)]
struct AccountNonces {
    /// Requests of this account signed at or before this time are refused
    /// (their nonces may have been forgotten).
    floor: u64,
    /// `(timestamp, nonce)` of recent requests, unordered.
    seen: Vec<(u64, [u8; 16])>,
}

impl AccountNonces {
    /// Forgets the oldest entries until at most `keep` are left, raising the floor.
    fn shrink_to(&mut self, keep: usize) {
        if self.seen.len() <= keep {
            return;
        }
        self.seen.sort_unstable_by_key(|(ts, _)| *ts);
        let drop = self.seen.len().saturating_sub(keep);
        if let Some((ts, _)) = self.seen.get(drop.saturating_sub(1)) {
            self.floor = self.floor.max(*ts);
        }
        self.seen.drain(..drop);
    }

    fn newest(&self) -> u64 {
        self.seen.iter().map(|(ts, _)| *ts).max().unwrap_or(0).max(self.floor)
    }
}

#[derive(Default)]
struct NonceState {
    accounts: HashMap<AccountId, AccountNonces>,
    /// Entries in all `seen` lists.
    entries: usize,
    /// Requests signed at or before this time are refused for every
    /// account (only raised when whole accounts had to be forgotten).
    floor: u64,
}

/// Nonces of signed requests, per account, until their timestamps leave
/// the accepted window.
///
/// Bounded without ever refusing everyone: an account keeps at most
/// `per_account` nonces (when it has more, its oldest are forgotten and its
/// requests signed at or before the newest forgotten one are refused as
/// stale, so that they cannot be replayed); when all accounts together
/// hold `total`, expired entries are dropped and every account keeps its
/// newest half. Requests signed before the relay started are refused, so
/// that a restart (which forgets every nonce) opens no replay window.
///
/// The accounts are split into shards (one per 16384 places of `total`,
/// at most 64), each with its share of `total` and its own lock: a request
/// locks only its account's shard, and the sweep one shard at a time.
pub struct NonceCache {
    shards: Shards<NonceState>,
    per_account: usize,
    /// Places per shard.
    total: usize,
    window: u64,
    not_before: u64,
}

impl NonceCache {
    /// A cache keeping `per_account` nonces per account and `total` in all,
    /// for timestamps up to `window` seconds from the clock, refusing
    /// requests signed before `not_before` (the start of the process).
    pub fn new(per_account: usize, total: usize, window: u64, not_before: u64) -> Self {
        let shards = Shards::new(shards_for(total));
        Self { per_account: per_account.max(1), total: (total / shards.count()).max(2), shards, window, not_before }
    }

    /// Records the nonce of a verified request: refused if the same
    /// request was seen (`replayed_request`) or if it was signed before the
    /// relay started or before nonces of its account had to be forgotten
    /// (`stale_request`, sign it again).
    pub fn record(&self, creds: &Credentials, now: u64) -> Result<(), ApiError> {
        let stale = |why: &str| ApiError::new(ErrorCode::StaleRequest, format!("{why}; sign the request again"));
        if creds.ts < self.not_before {
            return Err(stale("the request was signed before the relay started"));
        }
        let mut state =
            self.shards.lock_of(&creds.account).ok_or_else(|| crate::error::internal("nonce lock poisoned"))?;
        if creds.ts <= state.floor {
            return Err(stale("the request is older than the relay's replay memory"));
        }
        let mine = state.accounts.entry(creds.account).or_default();
        if creds.ts <= mine.floor {
            return Err(stale("the request is older than this account's replay memory"));
        }
        if mine.seen.iter().any(|(ts, n)| *ts == creds.ts && n == &creds.nonce) {
            return Err(ApiError::new(ErrorCode::ReplayedRequest, "this nonce was already used"));
        }
        mine.seen.push((creds.ts, creds.nonce));
        let before = mine.seen.len();
        mine.shrink_to(self.per_account);
        let removed = before.saturating_sub(mine.seen.len());
        state.entries = state.entries.saturating_add(1).saturating_sub(removed);
        if state.entries.saturating_add(state.accounts.len()) > self.total {
            self.compact(&mut state, now);
        }
        Ok(())
    }

    /// Forgets the nonce of a request [`NonceCache::record`] let through and
    /// something later refused (the shared rate limits), so that the same
    /// signed request may come again.
    pub fn forget(&self, creds: &Credentials) {
        let Some(mut state) = self.shards.lock_of(&creds.account) else { return };
        let Some(mine) = state.accounts.get_mut(&creds.account) else { return };
        let before = mine.seen.len();
        mine.seen.retain(|(ts, n)| !(*ts == creds.ts && n == &creds.nonce));
        let removed = before.saturating_sub(mine.seen.len());
        state.entries = state.entries.saturating_sub(removed);
    }

    /// Makes room: drops expired entries; then trims the accounts holding
    /// the most nonces down to a common level (accounts below it keep
    /// everything), so that the cache is at most half full; and only if
    /// accounts alone fill half of it, forgets the accounts with the oldest
    /// requests behind a global floor. Amortized O(log n) per request, as
    /// each pass at least halves the cache.
    fn compact(&self, state: &mut NonceState, now: u64) {
        Self::expire(state, now, self.window);
        let half = self.total / 2;
        if state.entries.saturating_add(state.accounts.len()) <= half {
            return;
        }
        let budget = half.saturating_sub(state.accounts.len());
        let mut lens: Vec<usize> = state.accounts.values().map(|a| a.seen.len()).collect();
        lens.sort_unstable();
        // The largest level such that the sum of min(len, level) fits.
        let (mut level, mut below, n) = (usize::MAX, 0usize, lens.len());
        for (i, len) in lens.iter().enumerate() {
            let rest = n.saturating_sub(i);
            if below.saturating_add(len.saturating_mul(rest)) > budget {
                level = budget.saturating_sub(below) / rest.max(1);
                break;
            }
            below = below.saturating_add(*len);
        }
        let mut entries = 0usize;
        for a in state.accounts.values_mut() {
            a.shrink_to(level);
            entries = entries.saturating_add(a.seen.len());
        }
        state.entries = entries;
        if state.accounts.len() > half {
            let mut by_age: Vec<(u64, AccountId)> = state.accounts.iter().map(|(k, a)| (a.newest(), *k)).collect();
            by_age.sort_unstable();
            let excess = state.accounts.len().saturating_sub(half);
            for (newest, account) in by_age.into_iter().take(excess) {
                if let Some(a) = state.accounts.remove(&account) {
                    state.entries = state.entries.saturating_sub(a.seen.len());
                    state.floor = state.floor.max(newest);
                }
            }
        }
    }

    fn expire(state: &mut NonceState, now: u64, window: u64) {
        let oldest_valid = now.saturating_sub(window);
        let mut entries = 0usize;
        state.accounts.retain(|_, a| {
            a.seen.retain(|(ts, _)| *ts >= oldest_valid);
            entries = entries.saturating_add(a.seen.len());
            !a.seen.is_empty() || a.floor >= oldest_valid
        });
        state.entries = entries;
    }

    /// Forgets nonces whose timestamps left the accepted window (they are
    /// refused as stale anyway), one shard at a time.
    pub fn purge(&self, now: u64) {
        self.shards.for_each(|state| Self::expire(state, now, self.window));
    }

    /// How many nonces are remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        let mut n = 0usize;
        self.shards.for_each(|s| n = n.saturating_add(s.entries));
        n
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How far behind the highest sequence number a request may arrive
/// (requests travel over parallel connections).
const WINDOW: u64 = 1024;
/// Most sessions held; most per account (the oldest goes first).
const MAX_SESSIONS: usize = 1_000_000;
pub(crate) const MAX_SESSIONS_PER_ACCOUNT: usize = 8;

struct SessionEntry {
    account: AccountId,
    key: zeroize::Zeroizing<[u8; 32]>,
    expires: u64,
    highest: u64,
    /// Bit i: sequence number `highest - i` was seen.
    seen: [u64; 16],
}

impl SessionEntry {
    /// Records `seq`; false if it was seen or is too old.
    fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            shift_window(&mut self.seen, shift);
            self.highest = seq;
            self.seen[0] |= 1;
            return true;
        }
        let back = self.highest - seq;
        if back >= WINDOW {
            return false;
        }
        let (word, bit) = (usize::try_from(back / 64).unwrap_or(usize::MAX), back % 64);
        match self.seen.get_mut(word) {
            Some(w) if *w & (1 << bit) == 0 => {
                *w |= 1 << bit;
                true
            }
            _ => false,
        }
    }
}

/// Shifts the seen-bitmap `n` places toward older sequence numbers.
fn shift_window(seen: &mut [u64; 16], n: u64) {
    if n >= WINDOW {
        *seen = [0; 16];
        return;
    }
    let (words, bits) = (usize::try_from(n / 64).unwrap_or(16), n % 64);
    for i in (0..16usize).rev() {
        let src = i.checked_sub(words);
        let hi = src.and_then(|s| seen.get(s)).copied().unwrap_or(0);
        let lo = src.and_then(|s| s.checked_sub(1)).and_then(|s| seen.get(s)).copied().unwrap_or(0);
        let v = if bits == 0 { hi } else { (hi << bits) | (lo >> (64 - bits)) };
        if let Some(slot) = seen.get_mut(i) {
            *slot = v;
        }
    }
}

/// One shard of the relay sessions: the sessions of the accounts that hash
/// to it, each account's in the order they were opened, and all of them in
/// that order (every session lives as long, so the oldest expires first).
#[derive(Default)]
struct SessionShard {
    map: HashMap<[u8; 16], SessionEntry>,
    by_account: HashMap<AccountId, VecDeque<[u8; 16]>>,
    /// Ids in the order they were opened; ids already gone are skipped.
    order: VecDeque<[u8; 16]>,
}

impl SessionShard {
    /// Drops expired sessions.
    fn expire(&mut self, now: u64) {
        self.map.retain(|_, e| e.expires >= now);
        let map = &self.map;
        self.by_account.retain(|_, ids| {
            ids.retain(|id| map.contains_key(id));
            !ids.is_empty()
        });
        self.order.retain(|id| map.contains_key(id));
    }

    /// Removes session `id` (and its place in its account's list).
    fn remove(&mut self, id: &[u8; 16]) {
        if let Some(entry) = self.map.remove(id)
            && let Some(ids) = self.by_account.get_mut(&entry.account)
        {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_account.remove(&entry.account);
            }
        }
    }

    /// Adds session `id`: the account's oldest go beyond its limit, and
    /// the shard makes room under `cap`.
    fn insert(&mut self, id: [u8; 16], entry: SessionEntry, cap: usize) {
        let mine = self.by_account.entry(entry.account).or_default();
        while mine.len() >= MAX_SESSIONS_PER_ACCOUNT {
            if let Some(old) = mine.pop_front() {
                self.map.remove(&old);
            }
        }
        self.make_room(cap);
        self.by_account.entry(entry.account).or_default().push_back(id);
        self.order.push_back(id);
        self.map.insert(id, entry);
    }

    /// Makes room for one more session under `cap`: drops expired sessions
    /// from the oldest end, then, if still full, the oldest session. A full
    /// shard never refuses: whoever filled it only makes the oldest
    /// sessions end early (their clients open new ones), and the per-account
    /// and rate limits bound how fast that can be.
    fn make_room(&mut self, cap: usize) {
        while self.map.len() >= cap {
            let Some(oldest) = self.order.pop_front() else { break };
            self.remove(&oldest);
        }
        // Ids of sessions removed early (the per-account limit) stay in
        // `order` until they reach its front; compact before they pile up.
        if self.order.len() > self.map.len().saturating_mul(2).saturating_add(64) {
            let map = &self.map;
            self.order.retain(|id| map.contains_key(id));
        }
    }
}

/// Relay sessions: a key established by one identity-signed request, then
/// used to MAC deposits cheaply. Replays are refused with a sliding window
/// over sequence numbers, so a session costs constant memory.
///
/// Sessions are split into shards by account; the first byte of a session
/// id names its shard, so checking a request locks one shard and opening a
/// session never scans more than that account's own sessions.
pub struct Sessions {
    shards: Shards<SessionShard>,
    /// Most sessions one shard holds.
    per_shard: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::with_capacity(MAX_SESSIONS)
    }
}

impl Sessions {
    /// Sessions holding at most about `capacity` in all.
    fn with_capacity(capacity: usize) -> Self {
        let shards = Shards::new(MAX_SHARDS);
        Self { per_shard: (capacity / shards.count()).max(1), shards }
    }

    /// Opens a session for `account`, valid `ttl` seconds.
    pub fn create(
        &self,
        account: AccountId,
        now: u64,
        ttl: u64,
    ) -> Result<([u8; 16], zeroize::Zeroizing<[u8; 32]>), ApiError> {
        use rand_core::Rng;
        let mut rng = sealpost::os_rng();
        let index = self.shards.index_of(&account);
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        id[0] = u8::try_from(index).map_err(|_| crate::error::internal("session shard out of range"))?;
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut key[..]);
        let mut shard = self.shards.lock(index).ok_or_else(|| crate::error::internal("session lock poisoned"))?;
        let entry =
            SessionEntry { account, key: key.clone(), expires: now.saturating_add(ttl), highest: 0, seen: [0; 16] };
        shard.insert(id, entry, self.per_shard);
        Ok((id, key))
    }

    /// Checks a `SealpostSession` header; returns the session's account.
    pub fn verify(
        &self,
        header: &str,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: u64,
    ) -> Result<AccountId, ApiError> {
        let creds = SessionCredentials::parse(header)?;
        let unknown = || ApiError::new(ErrorCode::UnknownSession, "no such session; open a new one");
        if usize::from(creds.id[0]) >= self.shards.count() {
            return Err(unknown());
        }
        let mut shard = self
            .shards
            .lock(usize::from(creds.id[0]))
            .ok_or_else(|| crate::error::internal("session lock poisoned"))?;
        let entry = shard.map.get_mut(&creds.id).ok_or_else(unknown)?;
        if entry.expires < now {
            return Err(ApiError::new(ErrorCode::SessionExpired, "the session expired; open a new one"));
        }
        creds.verify(&entry.key, method, path_and_query, body)?;
        if !entry.accept(creds.seq) {
            return Err(ApiError::new(ErrorCode::ReplayedRequest, "this sequence number was already used"));
        }
        Ok(entry.account)
    }

    /// Checks a `SealpostSession` header against the sessions of a store
    /// several relays share ([`Store::shared`]); returns the session's
    /// account. Once the MAC is verified, `admit` applies the relay's own
    /// limits and names the shared buckets to charge with the sequence
    /// number. The key is kept in this relay's memory once read, but the
    /// sequence number is always recorded in the store, in one step, so a
    /// request replayed to another instance is refused there too.
    pub(crate) async fn verify_shared(
        &self,
        store: &dyn Store,
        header: &str,
        (method, path_and_query, body): (&str, &str, &[u8]),
        now: u64,
        admit: impl FnOnce(&AccountId) -> Result<Vec<Charge>, ApiError>,
    ) -> Result<AccountId, ApiError> {
        let creds = SessionCredentials::parse(header)?;
        let unknown = || ApiError::new(ErrorCode::UnknownSession, "no such session; open a new one");
        let expired = || ApiError::new(ErrorCode::SessionExpired, "the session expired; open a new one");
        let (account, key, expires) = match self.cached(&creds.id) {
            Some(held) => held,
            None => {
                let s = store.session(creds.id).await?.ok_or_else(unknown)?;
                self.remember(creds.id, &s)?;
                (s.account, s.key, s.expires)
            }
        };
        if expires < now {
            return Err(expired());
        }
        creds.verify(&key, method, path_and_query, body)?;
        if creds.seq == 0 {
            return Err(ApiError::new(ErrorCode::ReplayedRequest, "this sequence number was already used"));
        }
        let charges = admit(&account)?;
        match store.accept_seq(creds.id, creds.seq, now, charges).await? {
            SeqCheck::Accepted => Ok(account),
            SeqCheck::RateLimited(wait) => Err(ApiError::rate_limited(wait)),
            SeqCheck::Replayed => {
                Err(ApiError::new(ErrorCode::ReplayedRequest, "this sequence number was already used"))
            }
            SeqCheck::Expired => Err(expired()),
            SeqCheck::Unknown => {
                // Dropped by another instance (the account opened newer ones).
                self.forget(&creds.id);
                Err(unknown())
            }
        }
    }

    /// The account, key and expiry of session `id`, if held here.
    fn cached(&self, id: &[u8; 16]) -> Option<(AccountId, zeroize::Zeroizing<[u8; 32]>, u64)> {
        let shard = self.shards.lock(usize::from(id[0]))?;
        shard.map.get(id).map(|e| (e.account, e.key.clone(), e.expires))
    }

    /// Keeps a shared session read from the store (in the shard its id
    /// names, under the same caps as the sessions opened here).
    fn remember(&self, id: [u8; 16], session: &SharedSession) -> Result<(), ApiError> {
        if usize::from(id[0]) >= self.shards.count() {
            // An id naming no shard here was never opened here either; the
            // store's word is enough, and nothing is kept.
            return Ok(());
        }
        let mut shard =
            self.shards.lock(usize::from(id[0])).ok_or_else(|| crate::error::internal("session lock poisoned"))?;
        let entry = SessionEntry {
            account: session.account,
            key: session.key.clone(),
            expires: session.expires,
            highest: 0,
            seen: [0; 16],
        };
        shard.insert(id, entry, self.per_shard);
        Ok(())
    }

    /// Forgets session `id` here.
    fn forget(&self, id: &[u8; 16]) {
        if let Some(mut shard) = self.shards.lock(usize::from(id[0])) {
            shard.remove(id);
        }
    }

    /// Drops expired sessions, one shard at a time.
    pub fn purge(&self, now: u64) {
        self.shards.for_each(|shard| shard.expire(now));
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        let mut n = 0usize;
        self.shards.for_each(|s| n = n.saturating_add(s.map.len()));
        n
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether session `id` is held.
    #[cfg(test)]
    fn contains(&self, id: &[u8; 16]) -> bool {
        self.shards.lock(usize::from(id[0])).is_some_and(|s| s.map.contains_key(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn creds(account: u8, ts: u64, nonce: u8) -> Credentials {
        Credentials { account: [account; 32], ts, nonce: [nonce; 16], sig: [0; 64] }
    }

    #[test]
    fn the_nonce_sweep_forgets_only_nonces_outside_the_window() {
        let cache = NonceCache::new(100, 1000, 300, T0);
        cache.record(&creds(1, T0, 1), T0).unwrap();
        cache.record(&creds(1, T0 + 100, 2), T0 + 100).unwrap();
        cache.record(&creds(2, T0 + 200, 3), T0 + 200).unwrap();
        // At T0 + 300 all three are inside the window.
        cache.purge(T0 + 300);
        assert_eq!(cache.len(), 3);
        // At T0 + 301 the first left it; at T0 + 501 the third is the last.
        cache.purge(T0 + 301);
        assert_eq!(cache.len(), 2);
        // What is kept still refuses a replay.
        assert_eq!(cache.record(&creds(2, T0 + 200, 3), T0 + 301).map_err(|e| e.code), Err(ErrorCode::ReplayedRequest));
        cache.purge(T0 + 501);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_forgotten_nonce_may_come_again_and_others_stay() {
        let cache = NonceCache::new(100, 1000, 300, T0);
        cache.record(&creds(1, T0, 1), T0).unwrap();
        cache.record(&creds(1, T0, 2), T0).unwrap();
        cache.forget(&creds(1, T0, 1));
        assert_eq!(cache.len(), 1);
        cache.record(&creds(1, T0, 1), T0).unwrap();
        let again = cache.record(&creds(1, T0, 2), T0).map_err(|e| e.code);
        assert_eq!(again, Err(ErrorCode::ReplayedRequest), "the other is still remembered");
        cache.forget(&creds(9, T0, 1));
        assert_eq!(cache.len(), 2, "forgetting what was never seen changes nothing");
    }

    #[test]
    fn the_session_sweep_drops_expired_sessions_only() {
        let sessions = Sessions::default();
        let (short, _) = sessions.create([1; 32], T0, 10).unwrap();
        let (long, _) = sessions.create([1; 32], T0, 1000).unwrap();
        sessions.purge(T0 + 10);
        assert_eq!(sessions.len(), 2, "a session is valid up to its last second");
        sessions.purge(T0 + 11);
        assert_eq!(sessions.len(), 1);
        assert!(!sessions.contains(&short) && sessions.contains(&long));
    }

    #[test]
    fn an_account_keeps_its_newest_sessions_and_a_full_shard_drops_its_oldest() {
        let sessions = Sessions::default();
        let ids: Vec<_> = (0..10).map(|i| sessions.create([1; 32], T0 + i, 1000).unwrap().0).collect();
        assert_eq!(sessions.len(), MAX_SESSIONS_PER_ACCOUNT);
        assert!(!sessions.contains(&ids[0]) && !sessions.contains(&ids[1]) && sessions.contains(&ids[2]));
        assert!(ids.iter().all(|id| usize::from(id[0]) == sessions.shards.index_of(&[1u8; 32])));
        // Fill one shard (4 places) with accounts that hash to it.
        let sessions = Sessions::with_capacity(64 * 4);
        let shard = sessions.shards.index_of(&[2u8; 32]);
        let mut same: Vec<AccountId> = (0..=255u8)
            .flat_map(|a| {
                (0..=255u8).map(move |b| {
                    [a, b, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]
                })
            })
            .filter(|a| sessions.shards.index_of(a) == shard)
            .take(5)
            .collect();
        let last = same.pop().unwrap();
        let mut opened = Vec::new();
        for (i, a) in same.iter().enumerate() {
            opened.push(sessions.create(*a, T0 + u64::try_from(i).unwrap(), 10).unwrap().0);
        }
        // Full: a fifth session is opened (never refused) and the shard's
        // oldest goes, whoever's it was; the others stay, and so does the
        // account list of the one that lost its session (now empty, gone).
        let fifth = sessions.create(last, T0 + 4, 10).unwrap().0;
        assert!(!sessions.contains(&opened[0]));
        assert!(opened[1..].iter().chain([&fifth]).all(|id| sessions.contains(id)));
        assert_eq!(sessions.len(), 4);
        let held = sessions.shards.lock(shard).unwrap().by_account.len();
        assert_eq!(held, 4, "the account whose session went has no empty list left");
        // Other shards are untouched.
        let other = (0..=255u8).map(|a| [a; 32]).find(|a| sessions.shards.index_of(a) != shard).unwrap();
        let elsewhere = sessions.create(other, T0, 10).unwrap().0;
        assert!(opened[1..].iter().all(|id| sessions.contains(id)) && sessions.contains(&elsewhere));
        // An account's own sessions beyond its limit leave stale ids in the
        // order; they are compacted, and the order stays bounded.
        for i in 0..1000 {
            sessions.create(other, T0 + i, 10).unwrap();
        }
        let order = sessions.shards.lock(sessions.shards.index_of(&other)).unwrap().order.len();
        assert!(order <= 2 * MAX_SESSIONS_PER_ACCOUNT + 64 + 1, "{order}");
        // An id naming no shard is unknown, not a panic.
        let header = format!("SealpostSession id={}w,seq=1,mac={}", "_".repeat(21), "A".repeat(43));
        let err = sessions.verify(&header, "GET", "/", b"", T0).map(|_| ()).map_err(|e| e.code);
        assert_eq!(err, Err(ErrorCode::UnknownSession));
    }

    fn entry() -> SessionEntry {
        SessionEntry {
            account: [0; 32],
            key: zeroize::Zeroizing::new([1; 32]),
            expires: u64::MAX,
            highest: 0,
            seen: [0; 16],
        }
    }

    #[test]
    fn sequence_window_accepts_each_number_once_and_refuses_old_ones() {
        let mut e = entry();
        assert!(!e.accept(0));
        assert!(e.accept(5));
        assert!(e.accept(3));
        assert!(!e.accept(3));
        assert!(!e.accept(5));
        assert!(e.accept(1000));
        assert!(e.accept(4));
        assert!(!e.accept(4));
        assert!(e.accept(2000));
        assert!(!e.accept(2000 - 1024));
        assert!(e.accept(2000 - 1023));
        assert!(!e.accept(1000), "seen before the window moved");
        for s in 2001..2100 {
            assert!(e.accept(s));
        }
        for s in 2001..2100 {
            assert!(!e.accept(s));
        }
    }

    #[test]
    fn window_shift_moves_bits_across_words() {
        let mut w = [0u64; 16];
        w[0] = 1 | (1 << 63);
        shift_window(&mut w, 1);
        assert_eq!(w[0], 2);
        assert_eq!(w[1], 1);
        shift_window(&mut w, 64);
        assert_eq!(w[1], 2);
        assert_eq!(w[2], 1);
        shift_window(&mut w, 5000);
        assert_eq!(w, [0; 16]);
    }
}
