//! Self-healing: when a session can no longer be decrypted because the two
//! sides' states diverged (a restored backup, a lost or rolled-back
//! database), the side that notices asks the other, over an authenticated
//! and rate-limited path, to start a fresh session.
//!
//! ```text
//! session reset (envelope type 6):
//!   version (1) || 0x06 || 0x00 || sender identity (128) || session id (32)
//!   || u64(timestamp) || nonce (16) || signature (64)
//! signature = Ed25519(sender identity, vec8("sealpost/v1/session-reset") || every preceding byte)
//! ```
//!
//! * Only the peer itself can ask: the request is signed by its identity
//!   key, and the receiver checks that identity against the session.
//! * Requests are fresh (timestamp within [`RESET_MAX_AGE`]) and each nonce
//!   counts once.
//! * Neither side can be made to loop: a [`Healer`] sends at most one
//!   request per peer and accepts at most one per peer per
//!   `min_interval` seconds (default [`RESET_MIN_INTERVAL`]), so a
//!   stream of forged envelopes that fail to decrypt cannot force endless
//!   new sessions.
//!
//! On an accepted request the app fetches the peer's bundle, starts a new
//! session ([`Session::initiate`](crate::Session::initiate)) and drops the
//! old one; [`HealEvent::Renewed`] is what the app shows the user.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::codec::{Reader, put_u64};
use crate::context::SignatureContext;
use crate::error::{Error, Result};
use crate::identity::{IDENTITY_PUBLIC_LEN, IdentityKeyPair, IdentityPublic};
use crate::policy::PROTOCOL_VERSION;

/// The envelope type byte of a session reset.
pub const SESSION_RESET_TYPE: u8 = 6;
use crate::consts::MAX_RESET_NONCES as MAX_NONCES;
pub use crate::consts::{RESET_MAX_AGE, RESET_MIN_INTERVAL};

/// Whether `bytes` is a session reset (by its type byte), so an app can
/// route it before trying [`Envelope::from_bytes`](crate::Envelope::from_bytes).
pub fn is_session_reset(bytes: &[u8]) -> bool {
    bytes.get(1) == Some(&SESSION_RESET_TYPE)
}

/// A verified request to renew a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionReset {
    /// Who asks.
    pub from: IdentityPublic,
    /// The id of the session that broke ([`Session::id`](crate::Session::id)),
    /// or zeros when the asker has no session left at all.
    pub session_id: [u8; 32],
    /// When it was made (Unix seconds).
    pub timestamp: u64,
    nonce: [u8; 16],
}

impl SessionReset {
    fn body(from: &IdentityPublic, session_id: &[u8; 32], timestamp: u64, nonce: &[u8; 16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + IDENTITY_PUBLIC_LEN + 32 + 8 + 16 + 64);
        out.extend_from_slice(&[PROTOCOL_VERSION, SESSION_RESET_TYPE, 0]);
        out.extend_from_slice(&from.to_bytes());
        out.extend_from_slice(session_id);
        put_u64(&mut out, timestamp);
        out.extend_from_slice(nonce);
        out
    }

    /// Parses and verifies a request (signature only; freshness, replay
    /// and rate are the [`Healer`]'s job).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "session reset");
        let version = r.u8()?;
        if version != PROTOCOL_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        if r.u8()? != SESSION_RESET_TYPE || r.u8()? != 0 {
            return Err(Error::Malformed("session reset"));
        }
        let from = IdentityPublic::from_bytes(r.take(IDENTITY_PUBLIC_LEN)?)?;
        let session_id = r.array()?;
        let timestamp = r.u64()?;
        let nonce = r.array()?;
        let signature = r.array()?;
        r.finish()?;
        from.verify(SignatureContext::SessionReset, &Self::body(&from, &session_id, timestamp, &nonce), &signature)?;
        Ok(Self { from, session_id, timestamp, nonce })
    }
}

/// What happened to a peer's session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealEvent {
    /// The session with this peer was renewed after its state diverged.
    Renewed {
        /// The peer.
        peer: IdentityPublic,
    },
}

/// Rate limits and replay memory for session resets, one per account.
/// Persist it with the app's other state if restarts should not reset the
/// limits.
#[derive(Clone, Debug)]
pub struct Healer {
    min_interval: u64,
    sent: BTreeMap<[u8; 32], u64>,
    accepted: BTreeMap<[u8; 32], u64>,
    nonces: VecDeque<[u8; 16]>,
}

impl Default for Healer {
    fn default() -> Self {
        Self::new(RESET_MIN_INTERVAL)
    }
}

/// Whether a decryption error means the two states diverged (rather than a
/// malformed, replayed or merely late message).
pub fn suggests_divergence(error: &Error) -> bool {
    matches!(error, Error::AuthenticationFailed | Error::OutsideWindow | Error::TooManySkipped | Error::UnknownPrekey)
}

impl Healer {
    /// A healer allowing one reset per peer per `min_interval` seconds.
    pub fn new(min_interval: u64) -> Self {
        Self { min_interval, sent: BTreeMap::new(), accepted: BTreeMap::new(), nonces: VecDeque::new() }
    }

    /// After decrypting a message from `peer` failed with `error`: a signed
    /// reset request to send back, or `None` if the error does not suggest
    /// divergence or a request went to this peer less than `min_interval`
    /// ago.
    pub fn on_decrypt_failure<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        identity: &IdentityKeyPair,
        peer: &IdentityPublic,
        session_id: Option<[u8; 32]>,
        error: &Error,
        now: u64,
    ) -> Option<Vec<u8>> {
        if !suggests_divergence(error) {
            return None;
        }
        if self.sent.get(peer.signing_key()).is_some_and(|at| now.saturating_sub(*at) < self.min_interval) {
            return None;
        }
        self.sent.insert(*peer.signing_key(), now);
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let mut out = SessionReset::body(identity.public(), &session_id.unwrap_or([0; 32]), now, &nonce);
        let signature = identity.sign(SignatureContext::SessionReset, &out);
        out.extend_from_slice(&signature);
        Some(out)
    }

    /// Checks a reset request received from `expected_peer` (the identity
    /// of the contact it came from): signature, freshness, replay and rate.
    /// On success the app renews the session and shows the event.
    pub fn accept(&mut self, bytes: &[u8], expected_peer: &IdentityPublic, now: u64) -> Result<HealEvent> {
        let reset = SessionReset::from_bytes(bytes)?;
        if &reset.from != expected_peer {
            return Err(Error::InvalidSignature);
        }
        if reset.timestamp.abs_diff(now) > RESET_MAX_AGE {
            return Err(Error::OutsideWindow);
        }
        if self.nonces.contains(&reset.nonce) {
            return Err(Error::Replay);
        }
        if self.accepted.get(reset.from.signing_key()).is_some_and(|at| now.saturating_sub(*at) < self.min_interval) {
            return Err(Error::RateLimited);
        }
        self.nonces.push_back(reset.nonce);
        while self.nonces.len() > MAX_NONCES {
            self.nonces.pop_front();
        }
        self.accepted.insert(*reset.from.signing_key(), now);
        Ok(HealEvent::Renewed { peer: reset.from })
    }
}
