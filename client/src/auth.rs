//! Signed requests and relay sessions (docs/RELAY.md section 4).
//!
//! Every request that publishes keys, fetches a bundle, reads, deposits to
//! or deletes from a mailbox, or claims a handle carries
//!
//! ```text
//! Authorization: Sealpost key=<account>,ts=<unix seconds>,nonce=<16 bytes>,sig=<64 bytes>
//! ```
//!
//! (base64url without padding), where `sig` is the account's Ed25519
//! identity signature under the relay-request context over
//! [`signed_bytes`]. Deposits may instead carry
//! `SealpostSession id=<16 bytes>,seq=<n>,mac=<32 bytes>` under a relay
//! session ([`session_mac`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codes::ErrorCode;
use crate::error::RelayError;

/// The scheme of identity-signed requests.
pub const SCHEME: &str = "Sealpost";
/// The scheme of relay-session requests.
pub const SESSION_SCHEME: &str = "SealpostSession";
/// The MAC context of session requests.
const SESSION_CONTEXT: &[u8] = b"sealpost/v1/relay-session";

fn hex_sha256(body: &[u8]) -> String {
    // Nibble by nibble: `write!` with `{:02x}` cost a microsecond per body
    // in the relay's profile.
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(body).iter() {
        hex.extend([b >> 4, b & 0x0f].into_iter().filter_map(|n| char::from_digit(u32::from(n), 16)));
    }
    hex
}

/// The bytes a request signature covers (the core prefixes the context):
/// `METHOD "\n" path-and-query "\n" ts "\n" base64url(nonce) "\n" hex(SHA-256(body))`.
pub fn signed_bytes(method: &str, path_and_query: &str, ts: u64, nonce: &[u8; 16], body: &[u8]) -> Vec<u8> {
    format!("{method}\n{path_and_query}\n{ts}\n{}\n{}", B64.encode(nonce), hex_sha256(body)).into_bytes()
}

/// The `Authorization` value of a request signed at `ts` with `nonce`.
pub(crate) fn authorization(
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

/// The WebSocket URL path for clients that cannot set headers on the
/// upgrade (browsers): `/v1/ws?auth=<authorization, percent-encoded>`,
/// where `authorization` signs `GET /v1/ws` with an empty body
/// ([`Request::websocket`](crate::Request::websocket)).
pub fn ws_auth_query(authorization: &str) -> String {
    let mut out = String::from("/v1/ws?auth=");
    for b in authorization.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn bad(msg: &str) -> RelayError {
    RelayError::new(ErrorCode::BadAuthorization, msg)
}

/// Decodes base64url (no padding) into exactly `N` bytes.
fn decode_fixed<const N: usize>(s: &str) -> Option<[u8; N]> {
    B64.decode(s).ok()?.try_into().ok()
}

/// Splits `Scheme k=v,k=v` into the values of `names`, each exactly once.
fn parameters<'a, const N: usize>(
    header: &'a str,
    scheme: &str,
    names: [&str; N],
    expected: &str,
) -> Result<[&'a str; N], RelayError> {
    let rest = header.strip_prefix(scheme).and_then(|r| r.strip_prefix(' ')).ok_or_else(|| bad(expected))?;
    let mut values: [Option<&str>; N] = [None; N];
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or_else(|| bad("malformed authorization parameter"))?;
        let slot = names
            .iter()
            .position(|n| *n == k)
            .and_then(|i| values.get_mut(i))
            .ok_or_else(|| bad("unknown authorization parameter"))?;
        if slot.replace(v).is_some() {
            return Err(bad("repeated authorization parameter"));
        }
    }
    let mut out = [""; N];
    for (o, v) in out.iter_mut().zip(values) {
        *o = v.ok_or_else(|| bad("missing authorization parameter"))?;
    }
    Ok(out)
}

/// A parsed `Sealpost` `Authorization` value (the relay's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The claimed account (identity signing key).
    pub account: [u8; 32],
    /// The request time (Unix seconds).
    pub ts: u64,
    /// The request nonce.
    pub nonce: [u8; 16],
    /// The signature.
    pub sig: [u8; 64],
}

impl Credentials {
    /// Parses the header value; `bad_authorization` if it is malformed.
    pub fn parse(header: &str) -> Result<Self, RelayError> {
        let [key, ts, nonce, sig] = parameters(
            header,
            SCHEME,
            ["key", "ts", "nonce", "sig"],
            "expected: Authorization: Sealpost key=...,ts=...,nonce=...,sig=...",
        )?;
        Ok(Self {
            account: decode_fixed(key).ok_or_else(|| bad("key must be 32 bytes of base64url"))?,
            ts: ts.parse().map_err(|_| bad("ts must be Unix seconds"))?,
            nonce: decode_fixed(nonce).ok_or_else(|| bad("nonce must be 16 bytes of base64url"))?,
            sig: decode_fixed(sig).ok_or_else(|| bad("sig must be 64 bytes of base64url"))?,
        })
    }

    /// Checks the timestamp against `now` (`stale_request` beyond
    /// `max_skew` seconds) and the signature through the core
    /// (`bad_signature`). Replays are the caller's to refuse: it keeps the
    /// nonces.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: u64,
        max_skew: u64,
    ) -> Result<(), RelayError> {
        if self.ts.abs_diff(now) > max_skew {
            return Err(RelayError::new(ErrorCode::StaleRequest, "timestamp outside the accepted window"));
        }
        let msg = signed_bytes(method, path_and_query, self.ts, &self.nonce, body);
        sealpost::verify_relay_request(&self.account, &msg, &self.sig)
            .map_err(|_| RelayError::new(ErrorCode::BadSignature, "the request signature does not verify"))
    }
}

/// The MAC of a session request:
/// `HMAC-SHA-256(key, "sealpost/v1/relay-session" "\n" METHOD "\n" path "\n" seq "\n" hex(SHA-256(body)))`.
pub fn session_mac(key: &[u8; 32], method: &str, path_and_query: &str, seq: u64, body: &[u8]) -> [u8; 32] {
    // HMAC pads a key shorter than the block with zeros; padding it here
    // gives the same MAC with a constructor that cannot fail.
    let mut padded = Zeroizing::new([0u8; 64]);
    padded.iter_mut().zip(key).for_each(|(p, k)| *p = *k);
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new(&(*padded).into());
    mac.update(SESSION_CONTEXT);
    mac.update(format!("\n{method}\n{path_and_query}\n{seq}\n{}", hex_sha256(body)).as_bytes());
    mac.finalize().into_bytes().into()
}

/// A parsed `SealpostSession` `Authorization` value (the relay's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    /// The session id.
    pub id: [u8; 16],
    /// The request's sequence number.
    pub seq: u64,
    /// The MAC.
    pub mac: [u8; 32],
}

impl SessionCredentials {
    /// Parses the header value; `bad_authorization` if it is malformed.
    pub fn parse(header: &str) -> Result<Self, RelayError> {
        let [id, seq, mac] = parameters(
            header,
            SESSION_SCHEME,
            ["id", "seq", "mac"],
            "expected: Authorization: SealpostSession id=...,seq=...,mac=...",
        )?;
        Ok(Self {
            id: decode_fixed(id).ok_or_else(|| bad("id must be 16 bytes of base64url"))?,
            seq: seq.parse().map_err(|_| bad("seq must be a number"))?,
            mac: decode_fixed(mac).ok_or_else(|| bad("mac must be 32 bytes of base64url"))?,
        })
    }

    /// Checks the MAC under the session's key in constant time (`bad_mac`).
    /// Replays are the caller's to refuse: it keeps the sequence window.
    pub fn verify(&self, key: &[u8; 32], method: &str, path_and_query: &str, body: &[u8]) -> Result<(), RelayError> {
        let expected = session_mac(key, method, path_and_query, self.seq, body);
        if bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &self.mac[..])) {
            Ok(())
        } else {
            Err(RelayError::new(ErrorCode::BadMac, "the request MAC does not verify"))
        }
    }
}

/// A relay session on the client's side: the id and key the relay handed
/// out ([`SessionOpened`](crate::SessionOpened)) and the last sequence
/// number used. The key zeroizes on drop and is not shown by `Debug`.
pub struct RelaySession {
    id: [u8; 16],
    key: Zeroizing<[u8; 32]>,
    seq: u64,
}

impl core::fmt::Debug for RelaySession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RelaySession").field("seq", &self.seq).finish_non_exhaustive()
    }
}

impl RelaySession {
    /// A session from the id and key the relay answered.
    pub fn new(id: [u8; 16], key: [u8; 32]) -> Self {
        Self { id, key: Zeroizing::new(key), seq: 0 }
    }

    /// The `Authorization` value for the next request under this session
    /// (each call uses the next sequence number).
    pub(crate) fn authorize(&mut self, method: &str, path_and_query: &str, body: &[u8]) -> String {
        self.seq = self.seq.saturating_add(1);
        let mac = session_mac(&self.key, method, path_and_query, self.seq, body);
        format!("{SESSION_SCHEME} id={},seq={},mac={}", B64.encode(self.id), self.seq, B64.encode(mac))
    }
}
