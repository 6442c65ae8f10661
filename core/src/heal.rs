//! Self-healing: when a session can no longer be decrypted because the two
//! sides' states diverged (a restored backup, a lost or rolled-back
//! database), the side that notices asks the other, over an authenticated
//! and rate-limited path, to start a fresh session.
//!
//! ```text
//! session reset (envelope type 6, 379 bytes):
//!   version (1) || 0x06 || 0x00 || sender identity (128) || recipient identity (128)
//!   || session id (32) || u64(timestamp) || nonce (16) || signature (64)
//! signature = Ed25519(sender identity, vec8("sealpost/v1/session-reset") || every preceding byte)
//! ```
//!
//! * Only the peer itself can ask: the request is signed by its identity
//!   key, and the receiver checks that identity against the contact.
//! * A request is for one recipient and one session: the receiver refuses
//!   one addressed to another identity, or naming a session other than its
//!   current one ([`Error::Misdirected`]), so a relay cannot fan a request
//!   out to the asker's other contacts and a delayed request cannot end a
//!   newer session.
//! * Requests are fresh (timestamp within [`RESET_MAX_AGE`]) and each counts
//!   once, also across restarts ([`Healer::pickle`]); the replay memory is
//!   bounded (`MAX_RESET_NONCES`) without ever reopening a replay.
//! * Neither side can be made to loop: a [`Healer`] sends at most one
//!   request per peer and accepts at most one per peer per
//!   `min_interval` seconds (default [`RESET_MIN_INTERVAL`]).
//! * When both sides ask at once, exactly one of them renews: the request
//!   whose `nonce || sender identity` sorts lower wins
//!   ([`HealEvent::Renewed`] with `crossed`, or [`HealEvent::PeerRenews`]).
//!
//! On [`HealEvent::Renewed`] the app fetches the peer's bundle, starts a new
//! session ([`Session::initiate`]) and installs it in the peer's
//! [`PeerSessions`], which keeps the replaced session for late messages.

use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::account::Account;
use crate::codec::{Reader, put_u32, put_u64};
use crate::consts::{MAX_HEAL_PEERS, MAX_RESET_NONCES, PREVIOUS_SESSION_LIFETIME};
use crate::context::SignatureContext;
use crate::error::{Error, Result};
use crate::identity::{IDENTITY_PUBLIC_LEN, IdentityPublic};
use crate::pickle::{PickleKey, PickleKind, open, seal};
use crate::policy::PROTOCOL_VERSION;
use crate::ratchet::Session;
use crate::sorted::{SortedMap, SortedSet};

/// The envelope type byte of a session reset.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const SESSION_RESET_TYPE: u8 = 6;
/// The length of a session reset envelope.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const SESSION_RESET_LEN: usize = 3 + 2 * IDENTITY_PUBLIC_LEN + 32 + 8 + 16 + 64;
pub(crate) use crate::consts::{RESET_MAX_AGE, RESET_MIN_INTERVAL};

/// Whether `bytes` is a session reset (by its type byte), so an app can
/// route it before trying [`Envelope::from_bytes`](crate::Envelope::from_bytes).
pub fn is_session_reset(bytes: &[u8]) -> bool {
    bytes.get(1) == Some(&SESSION_RESET_TYPE)
}

/// A verified request to renew a session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub struct SessionReset {
    /// Who asks.
    pub from: IdentityPublic,
    /// Whom it is for.
    pub to: IdentityPublic,
    /// The id of the session that broke ([`Session::id`]), or zeros when
    /// the asker has no session left at all.
    pub session_id: [u8; 32],
    /// When it was made (Unix seconds).
    pub timestamp: u64,
    /// Random; counts once, and orders crossing requests.
    pub nonce: [u8; 16],
}

impl SessionReset {
    fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SESSION_RESET_LEN);
        out.extend_from_slice(&[PROTOCOL_VERSION, SESSION_RESET_TYPE, 0]);
        out.extend_from_slice(&self.from.to_bytes());
        out.extend_from_slice(&self.to.to_bytes());
        out.extend_from_slice(&self.session_id);
        put_u64(&mut out, self.timestamp);
        out.extend_from_slice(&self.nonce);
        out
    }

    /// Parses and verifies a request (signature only; recipient, session,
    /// freshness, replay and rate are the [`Healer`]'s job).
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
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
        let to = IdentityPublic::from_bytes(r.take(IDENTITY_PUBLIC_LEN)?)?;
        let session_id = r.array()?;
        let timestamp = r.u64()?;
        let nonce = r.array()?;
        let signature = r.array()?;
        r.finish()?;
        let reset = Self { from, to, session_id, timestamp, nonce };
        reset.from.verify(SignatureContext::SessionReset, &reset.body(), &signature)?;
        Ok(reset)
    }

    /// The key that orders two crossing requests: `nonce || sender identity`.
    fn order_key(nonce: &[u8; 16], from: &IdentityPublic) -> Vec<u8> {
        let mut k = nonce.to_vec();
        k.extend_from_slice(&from.to_bytes());
        k
    }
}

/// What an accepted session reset asks of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealEvent {
    /// Renew the session with this peer: start a new one from its bundle
    /// and install it ([`PeerSessions::install`]); show the user that the
    /// session was renewed.
    Renewed {
        /// The peer.
        peer: IdentityPublic,
        /// Both sides asked at once and the peer's request won (section 12B
        /// of the protocol): this side renews, the peer waits.
        crossed: bool,
    },
    /// Both sides asked at once and this side's request won: the peer
    /// starts the new session, this side must not start one. Its prekey
    /// message arrives like any session start.
    PeerRenews {
        /// The peer.
        peer: IdentityPublic,
    },
}

/// Rate limits, crossing state and replay memory for session resets, one
/// per account. Persist it ([`Healer::pickle`]) with the app's other state
/// so that a restart reopens neither the replay window nor the limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Healer {
    min_interval: u64,
    /// Every reset not newer than this is refused (the newest timestamp that
    /// left the replay memory).
    horizon: u64,
    /// Peer signing key → (when we last asked it, that request's nonce).
    sent: SortedMap<[u8; 32], (u64, [u8; 16])>,
    /// Peer signing key → when we last accepted its request.
    accepted: SortedMap<[u8; 32], u64>,
    /// (timestamp, nonce) of accepted requests still within the window.
    seen: SortedSet<(u64, [u8; 16])>,
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

/// Removes the oldest entries (by time) of `map` beyond `cap`.
fn cap_by_age<V, F: Fn(&V) -> u64>(map: &mut SortedMap<[u8; 32], V>, cap: usize, time: F) {
    while map.len() > cap {
        let oldest = map.iter().min_by_key(|(_, v)| time(v)).map(|(k, _)| *k);
        match oldest {
            Some(k) => {
                map.remove(&k);
            }
            None => break,
        }
    }
}

impl Healer {
    /// A healer allowing one reset per peer per `min_interval` seconds.
    pub fn new(min_interval: u64) -> Self {
        Self { min_interval, horizon: 0, sent: SortedMap::new(), accepted: SortedMap::new(), seen: SortedSet::new() }
    }

    /// How many accepted requests the replay memory holds (at most
    /// `MAX_RESET_NONCES`).
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Drops what can no longer matter at `now`, and enforces the caps.
    fn prune(&mut self, now: u64) {
        while let Some(&(ts, nonce)) = self.seen.first() {
            let stale = now.saturating_sub(ts) > RESET_MAX_AGE;
            if !stale && self.seen.len() <= MAX_RESET_NONCES {
                break;
            }
            self.seen.remove(&(ts, nonce));
            self.horizon = self.horizon.max(ts);
        }
        let keep_sent = self.min_interval.max(RESET_MAX_AGE);
        self.sent.retain(|_, (at, _)| now.saturating_sub(*at) < keep_sent);
        cap_by_age(&mut self.sent, MAX_HEAL_PEERS, |(at, _)| *at);
        let keep_accepted = self.min_interval;
        self.accepted.retain(|_, at| now.saturating_sub(*at) < keep_accepted);
        cap_by_age(&mut self.accepted, MAX_HEAL_PEERS, |at| *at);
    }

    /// After decrypting a message from `peer` failed with `error`: a signed
    /// reset request to send back, or `None` if the error does not suggest
    /// divergence or a request went to this peer less than `min_interval`
    /// ago. `session_id` is the session that failed
    /// ([`PeerSessions::current_id`]), `None` if there is none.
    pub fn on_decrypt_failure<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        account: &Account,
        peer: &IdentityPublic,
        session_id: Option<[u8; 32]>,
        error: &Error,
        now: u64,
    ) -> Option<Vec<u8>> {
        if !suggests_divergence(error) {
            return None;
        }
        self.prune(now);
        if self.sent.get(peer.signing_key()).is_some_and(|(at, _)| now.saturating_sub(*at) < self.min_interval) {
            return None;
        }
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        self.sent.insert(*peer.signing_key(), (now, nonce));
        cap_by_age(&mut self.sent, MAX_HEAL_PEERS, |(at, _)| *at);
        let reset = SessionReset {
            from: *account.identity(),
            to: *peer,
            session_id: session_id.unwrap_or([0; 32]),
            timestamp: now,
            nonce,
        };
        let mut out = reset.body();
        let signature = account.identity.sign(SignatureContext::SessionReset, &out);
        out.extend_from_slice(&signature);
        Some(out)
    }

    /// Checks a reset request received from `expected_peer` (the contact it
    /// came from) by `own` (this account's identity), whose current session
    /// with that peer is `current_session` ([`PeerSessions::current_id`]).
    ///
    /// In this order: the signature (parse errors, `InvalidSignature`);
    /// the sender is `expected_peer` (`InvalidSignature`); the recipient is
    /// `own` (`Misdirected`); freshness (`OutsideWindow`); not seen before
    /// and newer than the horizon (`Replay`); the named session is zero or
    /// `current_session` (`Misdirected`); rate (`RateLimited`). A refused
    /// request is not recorded. On success the app follows the event.
    pub fn accept(
        &mut self,
        bytes: &[u8],
        own: &IdentityPublic,
        expected_peer: &IdentityPublic,
        current_session: Option<[u8; 32]>,
        now: u64,
    ) -> Result<HealEvent> {
        let reset = SessionReset::from_bytes(bytes)?;
        if &reset.from != expected_peer {
            return Err(Error::InvalidSignature);
        }
        if &reset.to != own {
            return Err(Error::Misdirected);
        }
        if reset.timestamp.abs_diff(now) > RESET_MAX_AGE {
            return Err(Error::OutsideWindow);
        }
        self.prune(now);
        if reset.timestamp <= self.horizon || self.seen.contains(&(reset.timestamp, reset.nonce)) {
            return Err(Error::Replay);
        }
        if reset.session_id != [0; 32] && current_session != Some(reset.session_id) {
            return Err(Error::Misdirected);
        }
        let peer_key = *reset.from.signing_key();
        if self.accepted.get(&peer_key).is_some_and(|at| now.saturating_sub(*at) < self.min_interval) {
            return Err(Error::RateLimited);
        }
        self.seen.insert((reset.timestamp, reset.nonce));
        self.accepted.insert(peer_key, now);
        self.prune(now);
        let crossing = self.sent.get(&peer_key).filter(|(at, _)| at.abs_diff(now) <= RESET_MAX_AGE);
        Ok(match crossing {
            None => HealEvent::Renewed { peer: reset.from, crossed: false },
            Some((_, ours)) => {
                let theirs = SessionReset::order_key(&reset.nonce, &reset.from);
                if theirs < SessionReset::order_key(ours, own) {
                    HealEvent::Renewed { peer: reset.from, crossed: true }
                } else {
                    HealEvent::PeerRenews { peer: reset.from }
                }
            }
        })
    }

    fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        put_u64(&mut out, self.min_interval);
        put_u64(&mut out, self.horizon);
        put_u32(&mut out, u32::try_from(self.sent.len()).map_err(|_| Error::TooLarge)?);
        for (peer, (at, nonce)) in self.sent.iter() {
            out.extend_from_slice(peer);
            put_u64(&mut out, *at);
            out.extend_from_slice(nonce);
        }
        put_u32(&mut out, u32::try_from(self.accepted.len()).map_err(|_| Error::TooLarge)?);
        for (peer, at) in self.accepted.iter() {
            out.extend_from_slice(peer);
            put_u64(&mut out, *at);
        }
        put_u32(&mut out, u32::try_from(self.seen.len()).map_err(|_| Error::TooLarge)?);
        for (ts, nonce) in self.seen.iter() {
            put_u64(&mut out, *ts);
            out.extend_from_slice(nonce);
        }
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        fn count(r: &mut Reader<'_>, max: usize) -> Result<usize> {
            let n = usize::try_from(r.u32()?).map_err(|_| Error::Malformed("healer pickle"))?;
            if n > max { Err(Error::Malformed("healer pickle")) } else { Ok(n) }
        }
        let mut r = Reader::new(bytes, "healer pickle");
        let mut h = Self::new(r.u64()?);
        h.horizon = r.u64()?;
        for _ in 0..count(&mut r, MAX_HEAL_PEERS)? {
            let peer = r.array()?;
            let at = r.u64()?;
            // Strictly increasing keys: one encoding per state.
            if !h.sent.push_greatest(peer, (at, r.array()?)) {
                return Err(Error::Malformed("healer pickle"));
            }
        }
        for _ in 0..count(&mut r, MAX_HEAL_PEERS)? {
            let peer = r.array()?;
            if !h.accepted.push_greatest(peer, r.u64()?) {
                return Err(Error::Malformed("healer pickle"));
            }
        }
        for _ in 0..count(&mut r, MAX_RESET_NONCES)? {
            let ts = r.u64()?;
            if !h.seen.push_greatest((ts, r.array()?)) {
                return Err(Error::Malformed("healer pickle"));
            }
        }
        r.finish()?;
        Ok(h)
    }

    /// Serializes and seals the healer (pickle kind 4), binding
    /// `associated_data` (for example the account's id): the pickle opens
    /// only with the same bytes.
    pub fn pickle<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        key: &PickleKey,
        associated_data: &[u8],
    ) -> Result<Vec<u8>> {
        seal(rng, PickleKind::Healer, key, associated_data, &self.encode()?)
    }

    /// Opens and restores a healer pickle sealed with the same
    /// `associated_data`. A restored healer refuses every request the
    /// pickled one had accepted or had put behind its horizon; a pickle
    /// older than the real state (a backup) cannot know of later ones.
    pub fn from_pickle(pickle: &[u8], key: &PickleKey, associated_data: &[u8]) -> Result<Self> {
        let plain: Zeroizing<Vec<u8>> = open(pickle, PickleKind::Healer, key, associated_data)?;
        Self::decode(&plain)
    }
}

/// The sessions an app keeps with one peer: the current one, and for
/// [`PREVIOUS_SESSION_LIFETIME`] after a renewal the one it replaced, so
/// that messages the peer sent before the renewal still open.
///
/// Ratchet messages carry no session id and the relay's `sender` field
/// names only the peer, so this is the rule of section 12B of the protocol:
/// an envelope from the peer is tried against the current session, then
/// the previous one; if both refuse it, the error is the current session's
/// (the one to give [`Healer::on_decrypt_failure`], with
/// [`current_id`](Self::current_id)), except that `Replay` from the previous
/// session is reported as `Replay`.
#[derive(Debug, Default)]
pub struct PeerSessions {
    current: Option<Session>,
    previous: Option<(Session, u64)>,
}

impl PeerSessions {
    /// No session yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `session` current (a new session this side started, or one
    /// the peer started, from [`Account::accept`](crate::Account::accept));
    /// the current one becomes the previous one, and an older previous
    /// session is dropped. A session with another peer is refused
    /// (`Misdirected`) and nothing changes.
    pub fn install(&mut self, session: Session, now: u64) -> Result<()> {
        if let Some(current) = &self.current
            && current.peer_identity() != session.peer_identity()
        {
            return Err(Error::Misdirected);
        }
        if let Some(old) = self.current.replace(session) {
            self.previous = Some((old, now));
        }
        Ok(())
    }

    /// The current session: the one to encrypt with.
    pub fn current(&mut self) -> Option<&mut Session> {
        self.current.as_mut()
    }

    /// The id of the current session ([`Session::id`]), for
    /// [`Healer::on_decrypt_failure`] and [`Healer::accept`].
    pub fn current_id(&self) -> Option<[u8; 32]> {
        self.current.as_ref().map(Session::id)
    }

    /// Whether a previous session is still kept at `now`.
    pub fn has_previous(&self, now: u64) -> bool {
        self.previous.as_ref().is_some_and(|(_, at)| now.saturating_sub(*at) <= PREVIOUS_SESSION_LIFETIME)
    }

    /// Decrypts an envelope from the peer by the rule above. With no
    /// session at all the error is `UnknownPrekey` (which
    /// [`suggests_divergence`]). A previous session older than
    /// [`PREVIOUS_SESSION_LIFETIME`] is dropped first.
    pub fn decrypt(&mut self, now: u64, envelope: &[u8]) -> Result<Vec<u8>> {
        if !self.has_previous(now) {
            self.previous = None;
        }
        let current = self.current.as_mut().ok_or(Error::UnknownPrekey)?;
        let error = match current.decrypt(now, envelope) {
            Ok(plaintext) => return Ok(plaintext),
            Err(e) => e,
        };
        match self.previous.as_mut().map(|(s, _)| s.decrypt(now, envelope)) {
            Some(Ok(plaintext)) => Ok(plaintext),
            Some(Err(Error::Replay)) => Err(Error::Replay),
            _ => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A pickle lists each map in increasing key order, once: the same
    /// entries out of order or twice are refused (one encoding per state).
    #[test]
    fn decoding_refuses_entries_out_of_order_or_twice() {
        let mut h = Healer::new(60);
        h.sent.insert([1; 32], (5, [7; 16]));
        h.sent.insert([2; 32], (6, [8; 16]));
        h.seen.insert((5, [1; 16]));
        h.seen.insert((6, [2; 16]));
        let bytes = h.encode().unwrap();
        assert_eq!(Healer::decode(&bytes).unwrap(), h);
        // sent: after min_interval, horizon and the count; 56 bytes each.
        let (a, b) = (20..76, 76..132);
        let mut swapped = bytes.clone();
        swapped[a.clone()].copy_from_slice(&bytes[b.clone()]);
        swapped[b.clone()].copy_from_slice(&bytes[a.clone()]);
        assert_eq!(Healer::decode(&swapped), Err(Error::Malformed("healer pickle")));
        let mut twice = bytes.clone();
        twice[b].copy_from_slice(&bytes[a]);
        assert_eq!(Healer::decode(&twice), Err(Error::Malformed("healer pickle")));
        // seen: the last two 24-byte entries.
        let n = bytes.len();
        let mut swapped = bytes.clone();
        swapped[n - 48..n - 24].copy_from_slice(&bytes[n - 24..]);
        swapped[n - 24..].copy_from_slice(&bytes[n - 48..n - 24]);
        assert_eq!(Healer::decode(&swapped), Err(Error::Malformed("healer pickle")));
    }

    /// The per-peer maps hold at most `MAX_HEAL_PEERS` entries; the oldest go.
    #[test]
    fn per_peer_maps_are_capped_oldest_first() {
        let mut h = Healer::new(1_000_000);
        let n = MAX_HEAL_PEERS + 3;
        for i in 0..n {
            let mut peer = [0u8; 32];
            peer[..8].copy_from_slice(&(i as u64).to_be_bytes());
            h.accepted.insert(peer, 10 + i as u64);
            h.sent.insert(peer, (10 + i as u64, [0; 16]));
        }
        h.prune(10 + n as u64);
        assert_eq!(h.accepted.len(), MAX_HEAL_PEERS);
        assert_eq!(h.sent.len(), MAX_HEAL_PEERS);
        assert_eq!(h.accepted.values().min(), Some(&13));
        assert_eq!(h.sent.values().map(|(at, _)| *at).min(), Some(13));
        // Entries that no longer limit anything leave the maps.
        h.prune(10 + n as u64 + 1_000_000);
        assert_eq!((h.accepted.len(), h.sent.len()), (0, 0));
    }
}
