//! An account: the identity, the signed prekey and the one-time prekeys.
//!
//! [`Account`]'s methods live in three files, one per concern: this one
//! (creation, prekeys, rotation, bundles), `handshake.rs` (accepting a first
//! message: [`Account::accept`]) and `pickle.rs` ([`Account::pickle`] and
//! [`Account::from_pickle`]).

use alloc::collections::VecDeque;

use crate::sorted::SortedSet;
use alloc::vec::Vec;
use core::fmt;

use x25519_dalek::{PublicKey as DhPublic, StaticSecret};

use crate::bundle::{OneTimePrekey, PrekeyBundle, SignedPrekeyPublic};
// Re-exported for the pickle decoder, which names them through this module.
use crate::consts::{MAX_BASE_KEYS_PER_PREKEY, MAX_PEER_VERSIONS, MAX_SIGNED_PREKEYS};
pub(crate) use crate::consts::{MAX_ONE_TIME_PREKEYS, SIGNED_PREKEY_KEEP_FOR, SIGNED_PREKEY_ROTATE_AFTER};
use crate::error::{Error, Result};
use crate::identity::{IdentityKeyPair, IdentityPublic};
use crate::policy::{SUPPORTED_VERSIONS, SessionPolicy};

/// A signed prekey with its secret. Zeroized on drop (by the X25519 type).
#[derive(Clone)]
pub(crate) struct SignedPrekey {
    pub(crate) public: SignedPrekeyPublic,
    pub(crate) secret: StaticSecret,
    /// The ML-KEM-768 prekey published with it (protocol version 2).
    pub(crate) pq: crate::pq::PqSecret,
    /// Its encapsulation key (kept to avoid recomputing it).
    pub(crate) pq_public: Vec<u8>,
    /// When it stopped being the current one; `None` while current.
    pub(crate) retired_at: Option<u64>,
    /// The initiator base keys of the session starts it accepted (at most
    /// `MAX_BASE_KEYS_PER_PREKEY`): a replayed first message is refused
    /// for as long as the prekey is kept.
    pub(crate) seen_base_keys: SortedSet<[u8; 32]>,
}

impl SignedPrekey {
    /// Whether its replay memory is full.
    pub(crate) fn exhausted(&self) -> bool {
        self.seen_base_keys.len() >= MAX_BASE_KEYS_PER_PREKEY
    }
}

#[derive(Clone)]
pub(crate) struct OneTimeSecret {
    pub(crate) id: u32,
    pub(crate) secret: StaticSecret,
    /// Its public key (kept so accepting a session needs no extra scalar multiplication).
    pub(crate) public: [u8; 32],
}

/// Someone's long-term keys: the identity, the signed prekey (rotated by
/// policy) and a pool of one-time prekeys.
///
/// ```
/// use sealpost::{Account, SessionPolicy};
/// let mut rng = sealpost::os_rng();
/// let now = 1_700_000_000;
/// let mut alice = Account::new(&mut rng, now);
/// let one_time = alice.generate_one_time_prekeys(&mut rng, 10);
/// assert_eq!(one_time.len(), 10);
/// let bundle = alice.bundle(&SessionPolicy::default())?;
/// assert_eq!(bundle.identity(), alice.identity());
/// # Ok::<(), sealpost::Error>(())
/// ```
#[derive(Clone)]
pub struct Account {
    pub(crate) identity: IdentityKeyPair,
    pub(crate) signed_prekeys: Vec<SignedPrekey>,
    pub(crate) one_time: Vec<OneTimeSecret>,
    pub(crate) next_prekey_id: u32,
    /// Per peer (Ed25519 identity key), the highest protocol version this
    /// build supports that the peer's bundles have offered; least recently
    /// used first, at most [`MAX_PEER_VERSIONS`].
    pub(crate) peer_versions: VecDeque<([u8; 32], u8)>,
}

impl Account {
    /// A new account with a fresh identity and signed prekey.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(rng: &mut R, now: u64) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        Self::with_identity(rng, identity, now)
    }

    /// An account around an existing identity, with a fresh signed prekey.
    pub(crate) fn with_identity<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        identity: IdentityKeyPair,
        now: u64,
    ) -> Self {
        let mut account = Self {
            identity,
            signed_prekeys: Vec::new(),
            one_time: Vec::new(),
            next_prekey_id: 1,
            peer_versions: VecDeque::new(),
        };
        account.rotate_signed_prekey(rng, now);
        account
    }

    /// The public identity.
    pub fn identity(&self) -> &IdentityPublic {
        self.identity.public()
    }

    /// A signer for requests to a relay as this account (it can sign
    /// nothing else).
    pub fn relay_signer(&self) -> crate::identity::RelaySigner {
        crate::identity::RelaySigner::new(&self.identity)
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_prekey_id;
        self.next_prekey_id = self.next_prekey_id.checked_add(1).unwrap_or(1);
        id
    }

    /// Replaces the signed prekey with a fresh one. The old one is kept for
    /// [`SIGNED_PREKEY_KEEP_FOR`] seconds, then dropped by
    /// [`Account::maintain`]; at most
    /// `MAX_SIGNED_PREKEYS`(crate::consts::MAX_SIGNED_PREKEYS) are kept,
    /// so rotating more often than that within the keep period drops the
    /// oldest retired ones early (with their replay memory: first messages
    /// made with them are then refused as `UnknownPrekey`).
    pub fn rotate_signed_prekey<R: rand_core::CryptoRng + ?Sized>(&mut self, rng: &mut R, now: u64) {
        for old in self.signed_prekeys.iter_mut().filter(|k| k.retired_at.is_none()) {
            old.retired_at = Some(now);
        }
        let secret = random_secret(rng);
        let pq = crate::pq::PqSecret::generate(rng);
        let pq_public = pq.public();
        let id = self.take_id();
        let public = SignedPrekeyPublic { id, key: DhPublic::from(&secret).to_bytes(), created_at: now };
        self.signed_prekeys.push(SignedPrekey {
            public,
            secret,
            pq,
            pq_public,
            retired_at: None,
            seen_base_keys: SortedSet::new(),
        });
        // Creation order, the current one last: evict from the front.
        let excess = self.signed_prekeys.len().saturating_sub(MAX_SIGNED_PREKEYS);
        self.signed_prekeys.drain(..excess);
    }

    /// Rotates the signed prekey when it is older than
    /// [`SIGNED_PREKEY_ROTATE_AFTER`] or its replay memory is full
    /// ([`Error::PrekeyExhausted`]), and forgets retired ones older than
    /// [`SIGNED_PREKEY_KEEP_FOR`]. Returns whether a new bundle should be
    /// published.
    pub fn maintain<R: rand_core::CryptoRng + ?Sized>(&mut self, rng: &mut R, now: u64) -> bool {
        self.signed_prekeys.retain(|k| k.retired_at.is_none_or(|at| now.saturating_sub(at) < SIGNED_PREKEY_KEEP_FOR));
        let due = self
            .current_signed_prekey()
            .is_none_or(|k| k.exhausted() || now.saturating_sub(k.public.created_at) >= SIGNED_PREKEY_ROTATE_AFTER);
        if due {
            self.rotate_signed_prekey(rng, now);
        }
        due
    }

    fn current_signed_prekey(&self) -> Option<&SignedPrekey> {
        self.signed_prekeys.iter().rev().find(|k| k.retired_at.is_none())
    }

    /// Makes `count` new one-time prekeys (up to [`MAX_ONE_TIME_PREKEYS`]
    /// held in all) and returns their signed public halves for upload.
    pub fn generate_one_time_prekeys<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        count: usize,
    ) -> Vec<OneTimePrekey> {
        let room = MAX_ONE_TIME_PREKEYS.saturating_sub(self.one_time.len());
        (0..count.min(room))
            .map(|_| {
                let secret = random_secret(rng);
                let id = self.take_id();
                let key = DhPublic::from(&secret).to_bytes();
                let public = OneTimePrekey::sign(&self.identity, id, key);
                self.one_time.push(OneTimeSecret { id, secret, public: key });
                public
            })
            .collect()
    }

    /// How many one-time prekeys are still unused.
    pub fn one_time_prekey_count(&self) -> usize {
        self.one_time.len()
    }

    /// The signed part of this account's bundle, advertising the suites and
    /// versions `policy` allows. The relay attaches one one-time prekey per
    /// fetch. Fails if the policy is invalid ([`SessionPolicy::validate`]).
    pub fn bundle(&self, policy: &SessionPolicy) -> Result<PrekeyBundle> {
        policy.validate()?;
        let versions: Vec<u8> = SUPPORTED_VERSIONS.iter().copied().filter(|v| *v >= policy.min_version).collect();
        let current = self.current_signed_prekey().ok_or(Error::UnknownPrekey)?;
        let pq = versions.contains(&crate::policy::HYBRID_VERSION).then(|| current.pq_public.clone());
        PrekeyBundle::sign(&self.identity, versions, policy.suite_ids(), current.public, pq)
    }

    pub(crate) fn signed_prekey(&self, id: u32) -> Result<&SignedPrekey> {
        self.signed_prekeys.iter().find(|k| k.public.id == id).ok_or(Error::UnknownPrekey)
    }

    #[cfg(test)]
    pub(crate) fn signed_prekey_secret(&self, id: u32) -> Result<&StaticSecret> {
        self.signed_prekey(id).map(|k| &k.secret)
    }

    pub(crate) fn one_time_prekey(&self, id: u32) -> Result<&OneTimeSecret> {
        self.one_time.iter().find(|k| k.id == id).ok_or(Error::UnknownPrekey)
    }

    /// Remembers an accepted base key with the signed prekey it used, if
    /// there is room (a start with a one-time prekey is accepted when the
    /// memory is full: its spent one-time prekey refuses a replay).
    pub(crate) fn remember_base_key(&mut self, signed_prekey_id: u32, key: [u8; 32]) {
        if let Some(k) = self.signed_prekeys.iter_mut().find(|k| k.public.id == signed_prekey_id)
            && !k.exhausted()
        {
            k.seen_base_keys.insert(key);
        }
    }

    /// The highest version remembered for `peer`'s bundles (0 if none).
    pub(crate) fn peer_version(&self, peer: &IdentityPublic) -> u8 {
        self.peer_versions.iter().find(|(k, _)| k == peer.signing_key()).map_or(0, |(_, v)| *v)
    }

    /// Records that `peer`'s bundle offered `version` (keeps the highest),
    /// making it the most recently used entry.
    pub(crate) fn note_peer_version(&mut self, peer: &IdentityPublic, version: u8) {
        let key = *peer.signing_key();
        let old = self.peer_versions.iter().position(|(k, _)| *k == key).and_then(|i| self.peer_versions.remove(i));
        let highest = old.map_or(version, |(_, v)| v.max(version));
        self.peer_versions.push_back((key, highest));
        while self.peer_versions.len() > MAX_PEER_VERSIONS {
            self.peer_versions.pop_front();
        }
    }

    /// Forgets the highest bundle version seen for `peer`, so that the next
    /// [`Session::initiate`](crate::Session::initiate) with it accepts a
    /// bundle offering only an older version (for example after the peer
    /// went back to an old client). Call it only on the user's explicit
    /// decision: otherwise such a bundle is refused with
    /// [`Error::Downgrade`]. Returns whether anything was remembered.
    pub fn allow_version_downgrade(&mut self, peer: &IdentityPublic) -> bool {
        let before = self.peer_versions.len();
        self.peer_versions.retain(|(k, _)| k != peer.signing_key());
        self.peer_versions.len() != before
    }

    /// Removes and returns a one-time prekey secret: it can serve one
    /// session start only.
    pub(crate) fn take_one_time_prekey(&mut self, id: u32) -> Result<StaticSecret> {
        let pos = self.one_time.iter().position(|k| k.id == id).ok_or(Error::UnknownPrekey)?;
        Ok(self.one_time.swap_remove(pos).secret)
    }
}

pub(crate) fn random_secret<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> StaticSecret {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let secret = StaticSecret::from(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    secret
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("identity", self.identity.public())
            .field("signed_prekeys", &self.signed_prekeys.len())
            .field("one_time_prekeys", &self.one_time.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn one_time_prekeys_are_single_use() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let mut a = Account::new(&mut rng, 100);
        let otks = a.generate_one_time_prekeys(&mut rng, 3);
        assert_eq!(a.one_time_prekey_count(), 3);
        for otk in &otks {
            assert_eq!(otk.verify(a.identity()), Ok(()));
        }
        let id = otks[1].id;
        assert!(a.take_one_time_prekey(id).is_ok());
        assert_eq!(a.take_one_time_prekey(id).err(), Some(Error::UnknownPrekey));
        assert_eq!(a.one_time_prekey_count(), 2);
    }

    #[test]
    fn pool_is_bounded() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let mut a = Account::new(&mut rng, 100);
        assert_eq!(a.generate_one_time_prekeys(&mut rng, MAX_ONE_TIME_PREKEYS + 5).len(), MAX_ONE_TIME_PREKEYS);
        assert!(a.generate_one_time_prekeys(&mut rng, 1).is_empty());
    }

    #[test]
    fn signed_prekey_rotates_and_old_ones_expire() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let mut a = Account::new(&mut rng, 0);
        let first = a.bundle(&SessionPolicy::default()).unwrap().signed_prekey().id;
        assert!(!a.maintain(&mut rng, SIGNED_PREKEY_ROTATE_AFTER - 1));
        assert!(a.maintain(&mut rng, SIGNED_PREKEY_ROTATE_AFTER));
        let second = a.bundle(&SessionPolicy::default()).unwrap().signed_prekey().id;
        assert_ne!(first, second);
        // The retired key still answers late first messages...
        assert!(a.signed_prekey_secret(first).is_ok());
        // ...until it has been retired for the keep period.
        a.maintain(&mut rng, SIGNED_PREKEY_ROTATE_AFTER + SIGNED_PREKEY_KEEP_FOR);
        assert_eq!(a.signed_prekey_secret(first).err(), Some(Error::UnknownPrekey));
        assert!(a.signed_prekey_secret(second).is_ok());
    }
}
