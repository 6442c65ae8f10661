//! Signed requests.
//!
//! Every request that publishes keys, fetches a bundle, reads, deposits to
//! or deletes from a mailbox, or claims a handle carries
//!
//! ```text
//! Authorization: Sealpost key=<account>,ts=<unix seconds>,nonce=<16 bytes>,sig=<64 bytes>
//! ```
//!
//! (base64url without padding), where `sig` is the account's Ed25519
//! identity signature (context [`REQUEST_CONTEXT`]: the signed bytes start
//! with `u8(25) || "sealpost/v1/relay-request"`) over
//!
//! ```text
//! METHOD "\n" path-and-query "\n" ts "\n" nonce "\n" hex(SHA-256(body))
//! ```
//!
//! The relay refuses a timestamp further than the allowed skew from its
//! clock and a nonce it has already seen from that account within the
//! window, with 401.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::store::AccountId;

/// The signature context of relay requests (`"sealpost/v1/relay-request"`,
/// length-prefixed as every Sealpost signature context is).
pub const REQUEST_CONTEXT: sealpost::SignatureContext = sealpost::SignatureContext::RelayRequest;
/// The authorization scheme name.
pub const SCHEME: &str = "Sealpost";

/// The bytes a request signature covers (after the context).
pub fn signed_bytes(method: &str, path_and_query: &str, ts: u64, nonce: &[u8; 16], body: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("{method}\n{path_and_query}\n{ts}\n{}\n{hex}", B64.encode(nonce)).into_bytes()
}

/// Builds the `Authorization` header value for a request (client side).
pub fn authorization(
    signer: &sealpost::RelaySigner,
    method: &str,
    path_and_query: &str,
    ts: u64,
    nonce: &[u8; 16],
    body: &[u8],
) -> String {
    let sig = signer.sign(&signed_bytes(method, path_and_query, ts, nonce, body));
    format!("{SCHEME} key={},ts={ts},nonce={},sig={}", B64.encode(signer.account()), B64.encode(nonce), B64.encode(sig))
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The claimed account.
    pub account: AccountId,
    /// The request time.
    pub ts: u64,
    /// The request nonce.
    pub nonce: [u8; 16],
    /// The signature.
    pub sig: [u8; 64],
}

fn bad(msg: &str) -> ApiError {
    ApiError::unauthorized("bad_authorization", msg)
}

/// Decodes base64url (no padding) into exactly `N` bytes.
pub fn decode_fixed<const N: usize>(s: &str) -> Option<[u8; N]> {
    B64.decode(s).ok()?.try_into().ok()
}

impl Credentials {
    /// Parses the header value.
    pub fn parse(header: &str) -> Result<Self, ApiError> {
        let rest = header
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| bad("expected: Authorization: Sealpost key=...,ts=...,nonce=...,sig=..."))?;
        let (mut key, mut ts, mut nonce, mut sig) = (None, None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=').ok_or_else(|| bad("malformed authorization parameter"))?;
            let slot = match k {
                "key" => &mut key,
                "ts" => &mut ts,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                _ => return Err(bad("unknown authorization parameter")),
            };
            if slot.replace(v).is_some() {
                return Err(bad("repeated authorization parameter"));
            }
        }
        let (Some(key), Some(ts), Some(nonce), Some(sig)) = (key, ts, nonce, sig) else {
            return Err(bad("missing authorization parameter"));
        };
        Ok(Self {
            account: decode_fixed(key).ok_or_else(|| bad("key must be 32 bytes of base64url"))?,
            ts: ts.parse().map_err(|_| bad("ts must be Unix seconds"))?,
            nonce: decode_fixed(nonce).ok_or_else(|| bad("nonce must be 16 bytes of base64url"))?,
            sig: decode_fixed(sig).ok_or_else(|| bad("sig must be 64 bytes of base64url"))?,
        })
    }

    /// Checks the timestamp against the clock and the signature. The nonce
    /// is not recorded here: the caller checks the cheap things (is the
    /// account registered, is it within its rate limit) first and then
    /// calls [`NonceCache::record`], so refused requests cost no memory.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: u64,
        max_skew: u64,
    ) -> Result<(), ApiError> {
        if self.ts.abs_diff(now) > max_skew {
            return Err(ApiError::unauthorized("stale_request", "timestamp outside the accepted window"));
        }
        let msg = signed_bytes(method, path_and_query, self.ts, &self.nonce, body);
        sealpost::verify_relay_request(&self.account, &msg, &self.sig)
            .map_err(|_| ApiError::unauthorized("bad_signature", "the request signature does not verify"))?;
        Ok(())
    }
}

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
pub struct NonceCache {
    state: Mutex<NonceState>,
    per_account: usize,
    total: usize,
    window: u64,
    not_before: u64,
}

impl NonceCache {
    /// A cache keeping `per_account` nonces per account and `total` in all,
    /// for timestamps up to `window` seconds from the clock, refusing
    /// requests signed before `not_before` (the start of the process).
    pub fn new(per_account: usize, total: usize, window: u64, not_before: u64) -> Self {
        Self {
            state: Mutex::new(NonceState { accounts: HashMap::new(), entries: 0, floor: 0 }),
            per_account: per_account.max(1),
            total: total.max(2),
            window,
            not_before,
        }
    }

    /// Records the nonce of a verified request: refused if the same
    /// request was seen (`replayed_request`) or if it was signed before the
    /// relay started or before nonces of its account had to be forgotten
    /// (`stale_request`, sign it again).
    pub fn record(&self, creds: &Credentials, now: u64) -> Result<(), ApiError> {
        let stale = |why: &str| ApiError::unauthorized("stale_request", format!("{why}; sign the request again"));
        if creds.ts < self.not_before {
            return Err(stale("the request was signed before the relay started"));
        }
        let mut state = self.state.lock().map_err(|_| ApiError::internal("nonce lock poisoned"))?;
        if creds.ts <= state.floor {
            return Err(stale("the request is older than the relay's replay memory"));
        }
        let mine = state.accounts.entry(creds.account).or_default();
        if creds.ts <= mine.floor {
            return Err(stale("the request is older than this account's replay memory"));
        }
        if mine.seen.iter().any(|(ts, n)| *ts == creds.ts && n == &creds.nonce) {
            return Err(ApiError::unauthorized("replayed_request", "this nonce was already used"));
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
    /// refused as stale anyway).
    pub fn purge(&self, now: u64) {
        if let Ok(mut state) = self.state.lock() {
            Self::expire(&mut state, now, self.window);
        }
    }

    /// How many nonces are remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.entries).unwrap_or(0)
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The authorization scheme of relay sessions.
pub const SESSION_SCHEME: &str = "SealpostSession";
/// The MAC context of session requests.
pub const SESSION_CONTEXT: &[u8] = b"sealpost/v1/relay-session";
/// How far behind the highest sequence number a request may arrive
/// (requests travel over parallel connections).
const WINDOW: u64 = 1024;
/// Most sessions held; most per account (the oldest goes first).
const MAX_SESSIONS: usize = 1_000_000;
const MAX_SESSIONS_PER_ACCOUNT: usize = 8;

/// The MAC of a session request:
/// `HMAC-SHA-256(key, "sealpost/v1/relay-session" || "\n" || signed_bytes)` where the
/// signed bytes are those of [`signed_bytes`] with the sequence number in
/// place of timestamp and nonce: `METHOD \n path \n seq \n hex(SHA-256(body))`.
pub fn session_mac(key: &[u8; 32], method: &str, path_and_query: &str, seq: u64, body: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(SESSION_CONTEXT);
    mac.update(format!("\n{method}\n{path_and_query}\n{seq}\n{hex}").as_bytes());
    mac.finalize().into_bytes().into()
}

// HMAC accepts keys of any length, so building it cannot fail.
#[allow(clippy::panic)]
fn unreachable_hmac() -> hmac::Hmac<Sha256> {
    panic!("HMAC-SHA-256 takes keys of any length")
}

/// The `Authorization` value of a session request (client side).
pub fn session_authorization(id: &[u8; 16], key: &[u8; 32], method: &str, path: &str, seq: u64, body: &[u8]) -> String {
    format!(
        "{SESSION_SCHEME} id={},seq={seq},mac={}",
        B64.encode(id),
        B64.encode(session_mac(key, method, path, seq, body))
    )
}

struct SessionEntry {
    account: AccountId,
    key: zeroize::Zeroizing<[u8; 32]>,
    expires: u64,
    created: u64,
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

/// Relay sessions: a key established by one identity-signed request, then
/// used to MAC deposits cheaply. Replays are refused with a sliding window
/// over sequence numbers, so a session costs constant memory.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 16], SessionEntry>>,
}

impl Sessions {
    /// Opens a session for `account`, valid `ttl` seconds.
    pub fn create(
        &self,
        account: AccountId,
        now: u64,
        ttl: u64,
    ) -> Result<([u8; 16], zeroize::Zeroizing<[u8; 32]>), ApiError> {
        use rand_core::Rng;
        let mut rng = sealpost::os_rng();
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut key[..]);
        let mut map = self.map.lock().map_err(|_| ApiError::internal("session lock poisoned"))?;
        let mut mine: Vec<([u8; 16], u64)> =
            map.iter().filter(|(_, e)| e.account == account).map(|(k, e)| (*k, e.created)).collect();
        if mine.len() >= MAX_SESSIONS_PER_ACCOUNT {
            mine.sort_by_key(|(_, c)| *c);
            for (old, _) in mine.iter().take(mine.len().saturating_sub(MAX_SESSIONS_PER_ACCOUNT - 1)) {
                map.remove(old);
            }
        }
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, e| e.expires >= now);
            if map.len() >= MAX_SESSIONS {
                return Err(ApiError::new(hyper::StatusCode::SERVICE_UNAVAILABLE, "busy", "too many sessions"));
            }
        }
        map.insert(
            id,
            SessionEntry {
                account,
                key: key.clone(),
                expires: now.saturating_add(ttl),
                created: now,
                highest: 0,
                seen: [0; 16],
            },
        );
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
        let rest = header
            .strip_prefix(SESSION_SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| bad("expected: Authorization: SealpostSession id=...,seq=...,mac=..."))?;
        let (mut id, mut seq, mut mac) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=').ok_or_else(|| bad("malformed authorization parameter"))?;
            let slot = match k {
                "id" => &mut id,
                "seq" => &mut seq,
                "mac" => &mut mac,
                _ => return Err(bad("unknown authorization parameter")),
            };
            if slot.replace(v).is_some() {
                return Err(bad("repeated authorization parameter"));
            }
        }
        let (Some(id), Some(seq), Some(mac)) = (id, seq, mac) else {
            return Err(bad("missing authorization parameter"));
        };
        let id: [u8; 16] = decode_fixed(id).ok_or_else(|| bad("id must be 16 bytes of base64url"))?;
        let seq: u64 = seq.parse().map_err(|_| bad("seq must be a number"))?;
        let mac: [u8; 32] = decode_fixed(mac).ok_or_else(|| bad("mac must be 32 bytes of base64url"))?;
        let mut map = self.map.lock().map_err(|_| ApiError::internal("session lock poisoned"))?;
        let entry = map
            .get_mut(&id)
            .ok_or_else(|| ApiError::unauthorized("unknown_session", "no such session; open a new one"))?;
        if entry.expires < now {
            return Err(ApiError::unauthorized("session_expired", "the session expired; open a new one"));
        }
        let expected = session_mac(&entry.key, method, path_and_query, seq, body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..])) {
            return Err(ApiError::unauthorized("bad_mac", "the request MAC does not verify"));
        }
        if !entry.accept(seq) {
            return Err(ApiError::unauthorized("replayed_request", "this sequence number was already used"));
        }
        Ok(entry.account)
    }

    /// Drops expired sessions.
    pub fn purge(&self, now: u64) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, e| e.expires >= now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> SessionEntry {
        SessionEntry {
            account: [0; 32],
            key: zeroize::Zeroizing::new([1; 32]),
            expires: u64::MAX,
            created: 0,
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
