//! Asynchronous session start: an X3DH-style agreement from the
//! initiator's identity and ephemeral keys and the responder's identity,
//! signed prekey and (optional) one-time prekey.
//!
//! This file holds the session-start halves of two types whose other methods
//! live elsewhere: [`Session::initiate`](crate::Session::initiate) (the rest of
//! `Session` is in `ratchet.rs`) and [`Account::accept`](crate::Account::accept)
//! (the rest of `Account` is in `account.rs`).
//!
//! ```text
//! DH1 = X25519(IK_A, SPK_B)    DH2 = X25519(EK_A, IK_B)
//! DH3 = X25519(EK_A, SPK_B)    DH4 = X25519(EK_A, OPK_B)   (if a one-time prekey was used)
//! T   = SHA-256(transcript: version, suite, both identities, both suite
//!               lists, prekey ids and keys, EK_A)
//! root_AB || root_BA = HKDF-SHA-256(salt = 0^32, ikm = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4],
//!                                   info = "sealpost/v1/session-start" || T)
//! ```
//!
//! The initiator's first sending epoch (epoch 0) has a fresh ratchet key
//! `RK_0` like every other epoch, but its Diffie-Hellman input is DH3,
//! which both sides already hold, instead of X25519(RK_0, SPK_B): a start
//! costs each side four Diffie-Hellmans (three without a one-time prekey)
//! and the initiator two key generations (docs/PROTOCOL.md, 8.5). The base key
//! EK_A is not reused as a ratchet key: it is wiped when `initiate`
//! returns, so a later compromise of the initiator cannot re-derive the
//! session start (see docs/SECURITY.md).
//!
//! `T` is also the associated-data prefix of every message of the session,
//! so a changed suite list, suite or version gives different keys on the
//! two sides and the first message fails to open.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::Result;
use crate::identity::IdentityPublic;
use crate::kdf::{hkdf_sha256, label};
use crate::secret::SymmetricKey;
use crate::suite::Suite;

/// Everything the session start binds.
pub(crate) struct Transcript<'a> {
    pub(crate) version: u8,
    pub(crate) suite: Suite,
    pub(crate) initiator: &'a IdentityPublic,
    pub(crate) responder: &'a IdentityPublic,
    pub(crate) initiator_suites: &'a [u8],
    pub(crate) responder_suites: &'a [u8],
    pub(crate) signed_prekey_id: u32,
    pub(crate) signed_prekey: &'a [u8; 32],
    pub(crate) one_time_prekey: Option<(u32, &'a [u8; 32])>,
    pub(crate) base_key: &'a [u8; 32],
    /// Version 2: the ML-KEM encapsulation key and the ciphertext.
    pub(crate) pq: Option<(&'a [u8], &'a [u8])>,
}

impl Transcript<'_> {
    /// SHA-256 over the length-delimited fields, in the order above.
    pub(crate) fn hash(&self) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(crate::context::TRANSCRIPT);
        h.update([self.version, self.suite.id()]);
        h.update(self.initiator.to_bytes());
        h.update(self.responder.to_bytes());
        for list in [self.initiator_suites, self.responder_suites] {
            let n = u8::try_from(list.len()).map_err(|_| crate::Error::TooLarge)?;
            h.update([n]);
            h.update(list);
        }
        h.update(self.signed_prekey_id.to_be_bytes());
        h.update(self.signed_prekey);
        match self.one_time_prekey {
            None => h.update([0]),
            Some((id, key)) => {
                h.update([1]);
                h.update(id.to_be_bytes());
                h.update(key);
            }
        }
        h.update(self.base_key);
        if let Some((key, ct)) = self.pq {
            h.update(key);
            h.update(ct);
        }
        Ok(h.finalize().into())
    }
}

/// The two direction roots of a new session.
pub(crate) struct RootKeys {
    /// Root of the initiator → responder direction.
    pub(crate) initiator_to_responder: SymmetricKey,
    /// Root of the responder → initiator direction.
    pub(crate) responder_to_initiator: SymmetricKey,
}

/// Runs the key derivation over DH1..DH3 and, if a one-time prekey was
/// used, DH4.
pub(crate) fn derive_roots(
    dh1: &[u8; 32],
    dh2: &[u8; 32],
    dh3: &[u8; 32],
    dh4: Option<&[u8; 32]>,
    pq_secret: Option<&[u8; 32]>,
    transcript: &[u8; 32],
) -> Result<RootKeys> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(6 * 32));
    ikm.extend_from_slice(&[0xFF; 32]);
    for secret in [Some(dh1), Some(dh2), Some(dh3), dh4, pq_secret].into_iter().flatten() {
        ikm.extend_from_slice(&secret[..]);
    }
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf_sha256(&[0u8; 32], &ikm, &[label::SESSION_START, transcript], &mut okm[..])?;
    let (a, b) = okm.split_at(32);
    Ok(RootKeys {
        initiator_to_responder: SymmetricKey::from_bytes(a.try_into().map_err(|_| crate::Error::TooLarge)?),
        responder_to_initiator: SymmetricKey::from_bytes(b.try_into().map_err(|_| crate::Error::TooLarge)?),
    })
}

impl crate::ratchet::Session {
    /// Starts a session with the owner of `bundle`, who may be offline.
    ///
    /// Checks the bundle against `policy` (version, suite), runs the key
    /// agreement, and returns a session whose messages are prekey messages
    /// until the peer answers. Verify the bundle's identity (safety number)
    /// out of band to rule out a man in the middle at the relay.
    ///
    /// The account remembers the highest version each peer's bundles have
    /// offered: once a peer has published version 2, a bundle of that peer
    /// offering only version 1 is refused with
    /// [`Error::Downgrade`](crate::Error::Downgrade) (an old bundle served
    /// again), unless the app has called
    /// [`Account::allow_version_downgrade`](crate::Account::allow_version_downgrade).
    pub fn initiate<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        account: &mut crate::Account,
        bundle: &crate::PrekeyBundle,
        policy: &crate::SessionPolicy,
        now: u64,
    ) -> Result<Self> {
        use crate::identity::dh;
        use crate::ratchet::{NewSession, PendingStart, Role, Session};
        use x25519_dalek::PublicKey;

        policy.validate()?;
        let version = policy.choose_version(bundle.versions())?;
        // The best version this build could use with the bundle, against
        // the best one the peer's earlier bundles offered.
        let offered = crate::policy::SUPPORTED_VERSIONS
            .iter()
            .copied()
            .filter(|v| bundle.versions().contains(v))
            .max()
            .unwrap_or(0);
        if offered < account.peer_version(bundle.identity()) {
            return Err(crate::Error::Downgrade);
        }
        let initiator_suites = policy.suite_ids();
        let suite = policy.negotiate(&initiator_suites, bundle.suites())?;
        let spk = bundle.signed_prekey();
        if now.saturating_sub(spk.created_at) > crate::consts::MAX_SIGNED_PREKEY_AGE {
            return Err(crate::Error::StalePrekey);
        }
        let otk = bundle.one_time_prekey();
        let base = crate::account::random_secret(rng);
        let base_key = PublicKey::from(&base).to_bytes();
        // Version 2: encapsulate to the signed ML-KEM prekey. A bundle that
        // offers version 2 always carries one (its signature covers both).
        let pq = if version >= crate::policy::HYBRID_VERSION {
            let key = bundle.pq_prekey().ok_or(crate::Error::Downgrade)?;
            Some((key, crate::pq::encapsulate(rng, key)?))
        } else {
            None
        };

        let dh1 = dh(account.identity.dh_secret(), &spk.key)?;
        let dh2 = dh(&base, bundle.identity().dh_key())?;
        let dh3 = dh(&base, &spk.key)?;
        let dh4 = otk.map(|k| dh(&base, &k.key)).transpose()?;
        let transcript = Transcript {
            version,
            suite,
            initiator: account.identity(),
            responder: bundle.identity(),
            initiator_suites: &initiator_suites,
            responder_suites: bundle.suites(),
            signed_prekey_id: spk.id,
            signed_prekey: &spk.key,
            one_time_prekey: otk.map(|k| (k.id, &k.key)),
            base_key: &base_key,
            pq: pq.as_ref().map(|(key, (ct, _))| (*key, ct.as_slice())),
        }
        .hash()?;
        let pq_secret = pq.as_ref().map(|(_, (_, ss))| &**ss);
        let roots = derive_roots(&dh1, &dh2, &dh3, dh4.as_deref(), pq_secret, &transcript)?;
        let mut session = Session::new(NewSession {
            version,
            suite,
            role: Role::Initiator,
            local_identity: *account.identity(),
            peer_identity: *bundle.identity(),
            transcript,
            policy: policy.clone(),
            send_root: roots.initiator_to_responder,
            // The responder's key of epoch 0 is its signed prekey; it sends
            // from epoch 1, whose root is R_BA(0).
            recv_root: roots.responder_to_initiator,
            now,
        });
        session.next_recv_epoch = 1;
        session.peer_latest_epoch = 0;
        session.peer_latest_key = spk.key;
        // Epoch 0: a fresh ratchet key whose Diffie-Hellman input is DH3
        // (no fifth X25519; docs/PROTOCOL.md, 8.5).
        let ratchet = crate::account::random_secret(rng);
        let ratchet_public = PublicKey::from(&ratchet).to_bytes();
        session.begin_epoch(ratchet, ratchet_public, &dh3, now)?;
        session.pending_start = Some(PendingStart {
            initiator_suites,
            signed_prekey_id: spk.id,
            one_time_prekey_id: otk.map(|k| k.id),
            base_key,
            pq_ciphertext: pq.map(|(_, (ct, _))| ct),
        });
        account.note_peer_version(bundle.identity(), offered);
        Ok(session)
    }
}

impl crate::Account {
    /// Accepts a session from its first message and decrypts that message.
    ///
    /// Checks that the message's version and suite are what negotiation
    /// gives for the initiator's list and this account's list under
    /// `policy` ([`Error::Downgrade`](crate::Error::Downgrade) otherwise),
    /// runs the key agreement, and decrypts. Only when the message
    /// authenticates is the one-time prekey consumed and the base key
    /// remembered (with the signed prekey it used, for as long as that
    /// prekey is kept), so a forged message changes nothing and a replayed
    /// one is refused ([`Error::Replay`](crate::Error::Replay)). A signed
    /// prekey whose memory is full refuses starts without a one-time
    /// prekey ([`Error::PrekeyExhausted`](crate::Error::PrekeyExhausted)).
    pub fn accept(
        &mut self,
        policy: &crate::SessionPolicy,
        now: u64,
        message: &crate::envelope::PrekeyMessage,
    ) -> Result<(crate::ratchet::Session, Vec<u8>)> {
        use crate::Error;
        use crate::identity::dh;
        use crate::ratchet::{NewSession, OwnKey, Role, Session};

        policy.validate()?;
        if message.version < policy.min_version || !crate::policy::SUPPORTED_VERSIONS.contains(&message.version) {
            return Err(Error::UnsupportedVersion(message.version));
        }
        let responder_suites = policy.suite_ids();
        let expected = policy.negotiate(&message.initiator_suites, &responder_suites)?;
        if expected != message.suite {
            return Err(Error::Downgrade);
        }
        let spk_record = self.signed_prekey(message.signed_prekey_id)?;
        if spk_record.seen_base_keys.contains(&message.base_key) {
            return Err(Error::Replay);
        }
        if spk_record.exhausted() && message.one_time_prekey_id.is_none() {
            return Err(Error::PrekeyExhausted);
        }
        let (spk, spk_pub) = (spk_record.secret.clone(), spk_record.public.key);
        // The one-time prekey lookup before the (costlier) decapsulation.
        let otk = message
            .one_time_prekey_id
            .map(|id| self.one_time_prekey(id).map(|k| (id, k.secret.clone(), k.public)))
            .transpose()?;
        let pq = match (&message.pq_ciphertext, message.version >= crate::policy::HYBRID_VERSION) {
            (Some(ct), true) => Some((spk_record.pq_public.as_slice(), ct.as_slice(), spk_record.pq.decapsulate(ct)?)),
            (None, false) => None,
            _ => return Err(Error::Malformed("prekey message")),
        };

        let dh1 = dh(&spk, message.identity.dh_key())?;
        let dh2 = dh(self.identity.dh_secret(), &message.base_key)?;
        let dh3 = dh(&spk, &message.base_key)?;
        let dh4 = otk.as_ref().map(|(_, s, _)| dh(s, &message.base_key)).transpose()?;
        let transcript = Transcript {
            version: message.version,
            suite: message.suite,
            initiator: &message.identity,
            responder: self.identity(),
            initiator_suites: &message.initiator_suites,
            responder_suites: &responder_suites,
            signed_prekey_id: message.signed_prekey_id,
            signed_prekey: &spk_pub,
            one_time_prekey: otk.as_ref().map(|(id, _, k)| (*id, k)),
            base_key: &message.base_key,
            pq: pq.as_ref().map(|(key, ct, _)| (*key, *ct)),
        }
        .hash()?;
        let pq_secret = pq.as_ref().map(|(_, _, ss)| &**ss);
        let roots = derive_roots(&dh1, &dh2, &dh3, dh4.as_deref(), pq_secret, &transcript)?;
        let mut session = Session::new(NewSession {
            version: message.version,
            suite: message.suite,
            role: Role::Responder,
            local_identity: *self.identity(),
            peer_identity: message.identity,
            transcript,
            policy: policy.clone(),
            send_root: roots.responder_to_initiator,
            recv_root: roots.initiator_to_responder,
            now,
        });
        session.next_send_epoch = 1;
        session.own_keys.push(OwnKey { epoch: 0, secret: alloc::boxed::Box::new(spk), public: spk_pub });
        session.start_base_key = Some(message.base_key);
        // The initiator's epoch 0 takes DH3 as its Diffie-Hellman input;
        // kept only while the first message opens.
        session.start_dh3 = Some(dh3);
        let opened = session.decrypt_prekey(now, message);
        session.start_dh3 = None;
        let plaintext = opened?;

        // Authenticated: consume the one-time prekey, remember the base key.
        if let Some(id) = message.one_time_prekey_id {
            self.take_one_time_prekey(id)?;
        }
        self.remember_base_key(message.signed_prekey_id, message.base_key);
        Ok((session, plaintext))
    }
}
