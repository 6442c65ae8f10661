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
    identity: &sealpost::IdentityKeyPair,
    method: &str,
    path_and_query: &str,
    ts: u64,
    nonce: &[u8; 16],
    body: &[u8],
) -> String {
    let sig = identity.sign(REQUEST_CONTEXT, &signed_bytes(method, path_and_query, ts, nonce, body));
    format!(
        "{SCHEME} key={},ts={ts},nonce={},sig={}",
        B64.encode(identity.public().signing_key()),
        B64.encode(nonce),
        B64.encode(sig)
    )
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

    /// Checks time, signature and nonce (in that order; the nonce is only
    /// recorded for a request whose signature verified).
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: u64,
        max_skew: u64,
        nonces: &NonceCache,
    ) -> Result<(), ApiError> {
        if self.ts.abs_diff(now) > max_skew {
            return Err(ApiError::unauthorized("stale_request", "timestamp outside the accepted window"));
        }
        let msg = signed_bytes(method, path_and_query, self.ts, &self.nonce, body);
        sealpost::identity::verify_signature(&self.account, REQUEST_CONTEXT, &msg, &self.sig)
            .map_err(|_| ApiError::unauthorized("bad_signature", "the request signature does not verify"))?;
        if !nonces.insert(&self.account, &self.nonce, now.saturating_add(max_skew.saturating_mul(2))) {
            return Err(ApiError::unauthorized("replayed_request", "this nonce was already used"));
        }
        Ok(())
    }
}

/// Nonces seen recently, per account, until they expire. Bounded: when
/// full, requests are refused rather than the window silently shortened.
#[derive(Default)]
pub struct NonceCache {
    seen: Mutex<HashMap<[u8; 48], u64>>,
}

/// Most nonces remembered at once.
const MAX_NONCES: usize = 2_000_000;

impl NonceCache {
    /// Records a nonce; false if it was already there (or the cache is full).
    pub fn insert(&self, account: &AccountId, nonce: &[u8; 16], expires: u64) -> bool {
        let mut key = [0u8; 48];
        key[..32].copy_from_slice(account);
        key[32..].copy_from_slice(nonce);
        let Ok(mut seen) = self.seen.lock() else { return false };
        if seen.len() >= MAX_NONCES {
            return false;
        }
        seen.insert(key, expires).is_none()
    }

    /// Forgets expired nonces.
    pub fn purge(&self, now: u64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, exp| *exp >= now);
        }
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
