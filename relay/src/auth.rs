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
//! identity signature (context `"sealpost/v1/relay-request"`) over
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

/// The signature context of relay requests.
pub const REQUEST_CONTEXT: &[u8] = b"sealpost/v1/relay-request";
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
