//! The pairwise session: a Double Ratchet with per-direction epochs,
//! rotation by count and time, bounded out-of-order delivery and replay
//! refusal.
//!
//! [`Session`]'s methods live in three files, one per concern: this one
//! (sending, receiving, epochs, state queries), `handshake.rs` (starting a
//! session: [`Session::initiate`]) and `pickle.rs` ([`Session::pickle`] and
//! [`Session::from_pickle`]).
//!
//! # Epochs
//!
//! Each direction (initiator → responder and back) has its own root chain.
//! A sender's ratchet keys are numbered by *epoch*. Epoch `n` of a
//! direction starts from the root `R(n)` and a fresh Diffie-Hellman output
//! between the sender's new ratchet key and the newest ratchet key it has
//! seen from the peer (epoch `m`, named in the header); one HKDF call gives
//! both the epoch's first chain key and the next root:
//!
//! ```text
//! CK(n, 0) || R(n+1) = HKDF(salt = R(n), ikm = X25519(own_n, peer_m),
//!                           info = "sealpost/v1/ratchet-step" || n || m || own_n pub || peer_m pub)
//! ```
//!
//! The initiator's epoch 0 is the one exception: its `ikm` is DH3 of the
//! session start, which both sides already computed, so the first epoch
//! costs no X25519 of its own (docs/PROTOCOL.md, 8.5). Its ratchet key is
//! still fresh (not the base key), so the base key is wiped at the start.
//!
//! Every root absorbs every Diffie-Hellman output of its direction, as in
//! the Double Ratchet: once both sides have used fresh ratchet keys after a
//! compromise, the roots are out of the attacker's reach for good
//! (post-compromise security), and an attacker who once copied the state
//! can no longer inject epochs of its own.
//!
//! Because a direction's roots do not depend on the other direction, a
//! sender can start a new epoch on its own — after `max_messages_per_chain`
//! messages or `rotate_after` seconds — even when the peer never answers.
//! A sender also starts a new epoch whenever it has seen a newer peer
//! ratchet key (the conversation turned). Each header also carries the
//! previous epoch's ratchet key and peer epoch, so a receiver that missed
//! every message of one epoch can still derive the next root.
//!
//! # Messages
//!
//! Each chain step gives a message secret and the next chain key
//! (`HKDF-Expand(CK, "sealpost/v1/chain-step", 64)`). The suite's key and
//! nonce come from that secret and a fresh random 16-byte salt carried in
//! the header (`Suite::seal`), so even a session restored from an old
//! pickle, which reuses chain positions, never reuses a key and nonce.
//!
//! The associated data of every message is the session's transcript hash
//! followed by the envelope's header bytes.
//!
//! # Failure leaves no trace
//!
//! Decryption computes every derived key on the side and changes the
//! session only after the message authenticated. A forged, tampered or
//! replayed envelope leaves the session exactly as it was.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use x25519_dalek::{PublicKey as DhPublic, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::account::random_secret;
use crate::consts::{
    MAX_FINISHED_CHAINS, MAX_OWN_RATCHET_KEYS, MAX_RECEIVING_CHAINS, MAX_SKIP_PER_CHAIN_CAP, MAX_SKIPPED_TOTAL_CAP,
};
use crate::envelope::{Envelope, PrekeyMessage, RatchetHeader, RatchetMessage, SALT_LEN, unpadded_len};
use crate::error::{Error, Result};
use crate::identity::{IdentityPublic, SafetyNumber, dh};
use crate::kdf::{hkdf_expand_sha256, hkdf_sha256, label};
use crate::policy::SessionPolicy;
use crate::secret::SymmetricKey;
use crate::suite::{Suite, SuiteKeys};

/// Which side of the session start this party was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Started the session from the peer's bundle.
    Initiator,
    /// Accepted the session from a prekey message.
    Responder,
}

/// What the initiator repeats in every message until the responder answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingStart {
    pub(crate) initiator_suites: Vec<u8>,
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
    pub(crate) base_key: [u8; 32],
    pub(crate) pq_ciphertext: Option<Vec<u8>>,
}

// Secrets kept in growing or shrinking collections (own ratchet keys,
// open chains, skipped keys) live in a `Box` each: when a `Vec` or
// `VecDeque` grows it frees its old buffer without wiping it, and removing
// an element leaves its bytes behind in the buffer. Boxed, the collections
// only ever hold (and leave behind) pointers; each secret is wiped in its
// own allocation when it is dropped.

/// One of this party's ratchet keys.
#[derive(Clone)]
pub(crate) struct OwnKey {
    pub(crate) epoch: u32,
    pub(crate) secret: Box<StaticSecret>,
    pub(crate) public: [u8; 32],
}

/// The current sending chain.
#[derive(Clone)]
pub(crate) struct SendChain {
    pub(crate) epoch: u32,
    pub(crate) peer_epoch: u32,
    pub(crate) ck: SymmetricKey,
    pub(crate) counter: u32,
    pub(crate) started_at: u64,
}

/// What a header says about the sender's previous epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PrevEpoch {
    pub(crate) ratchet_key: [u8; 32],
    pub(crate) peer_epoch: u32,
    pub(crate) count: u32,
}

/// A receiving chain whose end is not yet known.
#[derive(Clone)]
pub(crate) struct RecvChain {
    pub(crate) epoch: u32,
    pub(crate) peer_key: [u8; 32],
    pub(crate) ck: Box<SymmetricKey>,
    pub(crate) next: u32,
    /// Counters below this were evicted from the skipped store.
    pub(crate) floor: u32,
}

/// A receiving chain that is closed: every key was used, stored or lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FinishedChain {
    pub(crate) epoch: u32,
    /// Counters below this were evicted from the skipped store.
    pub(crate) floor: u32,
    /// Counters from here on were never seen and their keys are not kept.
    pub(crate) end: u32,
}

/// A message key kept for a message that has not arrived yet.
#[derive(Clone)]
pub(crate) struct SkippedKey {
    pub(crate) epoch: u32,
    pub(crate) counter: u32,
    pub(crate) peer_key: [u8; 32],
    pub(crate) secret: Box<SymmetricKey>,
}

/// A pairwise end-to-end encrypted session.
///
/// Made by [`Session::initiate`] (from the peer's prekey bundle) or by
/// [`Account::accept`](crate::Account::accept) (from the first message).
/// Persist it with [`Session::pickle`]. Every secret inside zeroizes on drop
/// and `Debug` prints none of them.
///
/// ```
/// use sealpost::{Account, Envelope, PrekeyBundle, Session, SessionPolicy};
/// let mut rng = sealpost::os_rng();
/// let policy = SessionPolicy::default();
/// let now = 1_700_000_000;
/// let mut alice = Account::new(&mut rng, now);
/// let mut bob = Account::new(&mut rng, now);
/// let otk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
/// let bundle = PrekeyBundle::from_bytes(&bob.bundle(&policy)?.with_one_time_prekey(otk)?.to_bytes())?;
///
/// let mut to_bob = Session::initiate(&mut rng, &mut alice, &bundle, &policy, now)?;
/// let first = to_bob.encrypt(&mut rng, now, b"hello Bob")?;
///
/// let Envelope::Prekey(msg) = Envelope::from_bytes(&first)? else { unreachable!() };
/// let (mut to_alice, plaintext) = bob.accept(&policy, now, &msg)?;
/// assert_eq!(plaintext, b"hello Bob");
///
/// let reply = to_alice.encrypt(&mut rng, now + 1, b"hi Alice")?;
/// assert_eq!(to_bob.decrypt(now + 1, &reply)?, b"hi Alice");
/// assert_eq!(to_bob.safety_number(), to_alice.safety_number());
/// # Ok::<(), sealpost::Error>(())
/// ```
#[derive(Clone)]
pub struct Session {
    pub(crate) version: u8,
    pub(crate) suite: Suite,
    pub(crate) role: Role,
    pub(crate) local_identity: IdentityPublic,
    pub(crate) peer_identity: IdentityPublic,
    pub(crate) transcript: [u8; 32],
    pub(crate) policy: SessionPolicy,
    pub(crate) pending_start: Option<PendingStart>,
    /// The initiator's base key (responder side), to match later prekey messages.
    pub(crate) start_base_key: Option<[u8; 32]>,
    pub(crate) send_root: SymmetricKey,
    pub(crate) next_send_epoch: u32,
    pub(crate) sending: Option<SendChain>,
    /// The previous sending epoch, announced in every header.
    pub(crate) prev_sent: PrevEpoch,
    pub(crate) own_keys: Vec<OwnKey>,
    pub(crate) peer_latest_epoch: u32,
    pub(crate) peer_latest_key: [u8; 32],
    pub(crate) recv_root: SymmetricKey,
    pub(crate) next_recv_epoch: u32,
    pub(crate) receiving: Vec<RecvChain>,
    pub(crate) finished: VecDeque<FinishedChain>,
    pub(crate) skipped: VecDeque<SkippedKey>,
    pub(crate) last_activity: u64,
    /// Set when restored from a pickle: the next message starts a new
    /// sending epoch (see [`Session::from_pickle`]).
    pub(crate) restored: bool,
    /// Responder, only while [`Account::accept`](crate::Account::accept)
    /// opens the first message: DH3 = X25519(SPK_B, EK_A) of the session
    /// start, the Diffie-Hellman input of the initiator's epoch 0 (see the
    /// module documentation). Never pickled; wiped on drop.
    pub(crate) start_dh3: Option<Zeroizing<[u8; 32]>>,
    /// The message secret, encryption key and nonce of the last message sent (feature
    /// `hazmat` only, for tests that show no pair is used twice). Wiped on
    /// drop; never pickled.
    #[cfg(feature = "hazmat")]
    pub(crate) last_sent_keys: Option<Zeroizing<Vec<u8>>>,
}

/// Parameters to build a fresh session from a completed session start.
pub(crate) struct NewSession {
    pub(crate) version: u8,
    pub(crate) suite: Suite,
    pub(crate) role: Role,
    pub(crate) local_identity: IdentityPublic,
    pub(crate) peer_identity: IdentityPublic,
    pub(crate) transcript: [u8; 32],
    pub(crate) policy: SessionPolicy,
    pub(crate) send_root: SymmetricKey,
    pub(crate) recv_root: SymmetricKey,
    pub(crate) now: u64,
}

/// The first chain key of epoch `n` and the root of epoch `n + 1` (see the
/// module documentation).
pub(crate) fn epoch_step(
    root: &SymmetricKey,
    shared: &[u8; 32],
    epoch: u32,
    peer_epoch: u32,
    sender_key: &[u8; 32],
    receiver_key: &[u8; 32],
) -> Result<(SymmetricKey, SymmetricKey)> {
    let mut out = Zeroizing::new([0u8; 64]);
    hkdf_sha256(
        root.as_bytes(),
        shared,
        &[label::RATCHET_STEP, &epoch.to_be_bytes(), &peer_epoch.to_be_bytes(), sender_key, receiver_key],
        &mut out[..],
    )?;
    let (ck, next) = out.split_at(32);
    Ok((
        SymmetricKey::from_bytes(ck.try_into().map_err(|_| Error::TooLarge)?),
        SymmetricKey::from_bytes(next.try_into().map_err(|_| Error::TooLarge)?),
    ))
}

#[cfg(all(test, feature = "std"))]
std::thread_local! {
    /// Chain steps taken on this thread, so tests can count what a
    /// decryption derived.
    static CHAIN_STEPS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// One chain step: (message secret, next chain key).
pub(crate) fn chain_step(ck: &SymmetricKey, info: &[u8]) -> Result<(SymmetricKey, SymmetricKey)> {
    #[cfg(all(test, feature = "std"))]
    CHAIN_STEPS.with(|c| c.set(c.get() + 1));
    let mut out = Zeroizing::new([0u8; 64]);
    hkdf_expand_sha256(ck.as_bytes(), &[info], &mut out[..])?;
    let (mk, next) = out.split_at(32);
    Ok((
        SymmetricKey::from_bytes(mk.try_into().map_err(|_| Error::TooLarge)?),
        SymmetricKey::from_bytes(next.try_into().map_err(|_| Error::TooLarge)?),
    ))
}

/// Message secrets to keep for late messages: (counter, secret).
type KeptKeys = Vec<(u32, Box<SymmetricKey>)>;

/// The change a successful decryption makes, computed before it is applied.
enum Commit {
    /// Use and erase a kept key.
    Skipped { pos: usize },
    /// Advance an open chain, keeping the keys skipped on the way.
    Chain { pos: usize, next_ck: SymmetricKey, skipped: KeptKeys },
    /// Open the chain of the next epoch. When the previous epoch was
    /// missed entirely, `missed` is its first chain key (derived from the
    /// header's previous-epoch fields); its kept keys are derived only once
    /// the message authenticated, since opening it does not need them.
    NewEpoch { next_root: SymmetricKey, missed: Option<SymmetricKey>, next_ck: SymmetricKey, skipped: KeptKeys },
}

/// The keys of one chain walk.
struct Plan {
    secret: SymmetricKey,
    /// Keys skipped on the way, to store.
    skipped: KeptKeys,
    next_ck: SymmetricKey,
}

/// Steps `ck` (at position `from`) forward to position `to`, collecting the
/// skipped keys; refuses gaps beyond `max_skip`.
fn plan_chain(ck: &SymmetricKey, from: u32, to: u32, max_skip: u32) -> Result<Plan> {
    let gap = to.checked_sub(from).ok_or(Error::OutsideWindow)?;
    if gap > max_skip {
        return Err(Error::TooManySkipped);
    }
    let mut skipped = Vec::with_capacity(usize::try_from(gap).unwrap_or(0));
    let mut ck = ck.clone();
    let mut counter = from;
    loop {
        let (secret, next_ck) = chain_step(&ck, label::CHAIN_STEP)?;
        if counter == to {
            return Ok(Plan { secret, skipped, next_ck });
        }
        skipped.push((counter, Box::new(secret)));
        ck = next_ck;
        counter = counter.checked_add(1).ok_or(Error::OutsideWindow)?;
    }
}

/// The message secrets of counters `from .. end` of a chain whose key at
/// `from` is `ck` (none if `end <= from`): what a chain being closed keeps.
fn keys_until(ck: &SymmetricKey, from: u32, end: u32, max_skip: u32) -> Result<KeptKeys> {
    let Some(last) = end.checked_sub(1).filter(|last| *last >= from) else { return Ok(Vec::new()) };
    let plan = plan_chain(ck, from, last, max_skip)?;
    let mut keys = plan.skipped;
    keys.push((last, Box::new(plan.secret)));
    Ok(keys)
}

impl Session {
    pub(crate) fn new(p: NewSession) -> Self {
        Self {
            version: p.version,
            suite: p.suite,
            role: p.role,
            local_identity: p.local_identity,
            peer_identity: p.peer_identity,
            transcript: p.transcript,
            policy: p.policy,
            pending_start: None,
            start_base_key: None,
            send_root: p.send_root,
            next_send_epoch: 0,
            sending: None,
            prev_sent: PrevEpoch::default(),
            own_keys: Vec::new(),
            peer_latest_epoch: 0,
            peer_latest_key: [0; 32],
            recv_root: p.recv_root,
            next_recv_epoch: 0,
            receiving: Vec::new(),
            finished: VecDeque::new(),
            skipped: VecDeque::new(),
            last_activity: p.now,
            restored: false,
            start_dh3: None,
            #[cfg(feature = "hazmat")]
            last_sent_keys: None,
        }
    }

    /// The protocol version in use.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The negotiated suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Whether this party started the session.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's identity, as bound into the session start.
    pub fn peer_identity(&self) -> &IdentityPublic {
        &self.peer_identity
    }

    /// The safety number of this session's two identities.
    pub fn safety_number(&self) -> SafetyNumber {
        SafetyNumber::new(&self.local_identity, &self.peer_identity)
    }

    /// A 32-byte identifier of the session (its transcript hash), the same
    /// on both sides.
    pub fn id(&self) -> [u8; 32] {
        self.transcript
    }

    /// Whether the initiator is still waiting for the responder's first
    /// answer (and so still sends prekey messages).
    pub fn is_awaiting_reply(&self) -> bool {
        self.pending_start.is_some()
    }

    /// Whether a prekey message belongs to this session (a later message of
    /// the same session start). An app that receives a prekey message tries
    /// its existing sessions with the sender first.
    pub fn matches(&self, message: &PrekeyMessage) -> bool {
        self.role == Role::Responder
            && message.identity == self.peer_identity
            && self.receiving_base_key().is_some_and(|k| k == message.base_key)
    }

    /// Every secret held, in no particular order (feature `hazmat`).
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
    pub(crate) fn secrets(&self) -> Zeroizing<Vec<[u8; 32]>> {
        let n = 2usize
            .saturating_add(self.own_keys.len())
            .saturating_add(self.receiving.len())
            .saturating_add(self.skipped.len())
            .saturating_add(1);
        let mut out = Zeroizing::new(Vec::with_capacity(n));
        out.push(*self.send_root.as_bytes());
        out.push(*self.recv_root.as_bytes());
        out.extend(self.sending.iter().map(|s| *s.ck.as_bytes()));
        out.extend(self.own_keys.iter().map(|k| k.secret.to_bytes()));
        out.extend(self.receiving.iter().map(|c| *c.ck.as_bytes()));
        out.extend(self.skipped.iter().map(|k| *k.secret.as_bytes()));
        out
    }

    fn receiving_base_key(&self) -> Option<[u8; 32]> {
        self.start_base_key
    }

    /// The current sending epoch and message counter (for diagnostics and
    /// tests): `(epoch, messages sent in it)`.
    pub fn sending_position(&self) -> Option<(u32, u32)> {
        self.sending.as_ref().map(|s| (s.epoch, s.counter))
    }

    /// How many message keys are kept for late messages.
    pub fn skipped_key_count(&self) -> usize {
        self.skipped.len()
    }

    fn own_key(&self, epoch: u32) -> Option<&OwnKey> {
        self.own_keys.iter().find(|k| k.epoch == epoch)
    }

    /// Starts a new sending epoch against the newest peer key.
    fn rotate<R: rand_core::CryptoRng + ?Sized>(&mut self, rng: &mut R, now: u64) -> Result<()> {
        let secret = random_secret(rng);
        let public = DhPublic::from(&secret).to_bytes();
        let shared = dh(&secret, &self.peer_latest_key)?;
        self.begin_epoch(secret, public, &shared, now)
    }

    /// Starts the next sending epoch with the ratchet key pair (`secret`,
    /// `public`) and the epoch's Diffie-Hellman input `shared`: its output
    /// with the newest peer key for every epoch [`Session::rotate`] starts,
    /// and DH3 of the session start for the initiator's epoch 0
    /// ([`Session::initiate`]).
    pub(crate) fn begin_epoch(
        &mut self,
        secret: StaticSecret,
        public: [u8; 32],
        shared: &[u8; 32],
        now: u64,
    ) -> Result<()> {
        let epoch = self.next_send_epoch;
        let next_epoch = epoch.checked_add(1).ok_or(Error::SessionExpired)?;
        let (ck, next_root) =
            epoch_step(&self.send_root, shared, epoch, self.peer_latest_epoch, &public, &self.peer_latest_key)?;
        if let (Some(old), Some(old_key)) = (&self.sending, self.own_keys.last()) {
            self.prev_sent = PrevEpoch { ratchet_key: old_key.public, peer_epoch: old.peer_epoch, count: old.counter };
        }
        self.send_root = next_root;
        self.next_send_epoch = next_epoch;
        self.sending = Some(SendChain { epoch, peer_epoch: self.peer_latest_epoch, ck, counter: 0, started_at: now });
        self.own_keys.push(OwnKey { epoch, secret: Box::new(secret), public });
        while self.own_keys.len() > MAX_OWN_RATCHET_KEYS {
            self.own_keys.remove(0);
        }
        self.restored = false;
        Ok(())
    }

    fn needs_rotation(&self, now: u64) -> bool {
        match &self.sending {
            _ if self.restored => true,
            None => true,
            Some(s) => {
                s.peer_epoch != self.peer_latest_epoch
                    || s.counter >= self.policy.max_messages_per_chain
                    || now.saturating_sub(s.started_at) >= self.policy.rotate_after
            }
        }
    }

    /// Encrypts `plaintext` into an envelope (a prekey message until the
    /// peer has answered, a ratchet message after).
    ///
    /// Fails with [`Error::SessionExpired`] when the session has been idle
    /// longer than the policy's `expire_after`: start a new one.
    pub fn encrypt<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        if now.saturating_sub(self.last_activity) > self.policy.expire_after {
            return Err(Error::SessionExpired);
        }
        if self.needs_rotation(now) {
            self.rotate(rng, now)?;
        }
        let prev = self.prev_sent;
        let chain = self.sending.as_mut().ok_or(Error::SessionExpired)?;
        let (secret, next_ck) = chain_step(&chain.ck, label::CHAIN_STEP)?;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let ratchet_key = self.own_keys.last().map(|k| k.public).ok_or(Error::SessionExpired)?;
        let header = RatchetHeader {
            ratchet_key,
            epoch: chain.epoch,
            peer_epoch: chain.peer_epoch,
            counter: chain.counter,
            prev_count: prev.count,
            prev_ratchet_key: prev.ratchet_key,
            prev_peer_epoch: prev.peer_epoch,
            salt,
        };
        let next_counter = chain.counter.checked_add(1).ok_or(Error::SessionExpired)?;
        // The envelope is built in one buffer: header, length, then the
        // padded plaintext, sealed in place (no plaintext copy is left).
        let mut out = match &self.pending_start {
            Some(start) => PrekeyMessage {
                version: self.version,
                suite: self.suite,
                identity: self.local_identity,
                initiator_suites: start.initiator_suites.clone(),
                signed_prekey_id: start.signed_prekey_id,
                one_time_prekey_id: start.one_time_prekey_id,
                base_key: start.base_key,
                pq_ciphertext: start.pq_ciphertext.clone(),
                header,
                ciphertext: Vec::new(),
            }
            .header_bytes()?,
            None => RatchetMessage { version: self.version, suite: self.suite, header, ciphertext: Vec::new() }
                .header_bytes(),
        };
        let aad = self.aad(&out);
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let start = out.len();
        self.policy.padding.pad_into(plaintext, &mut out);
        let keys = SuiteKeys::derive(self.suite, &secret, &salt)?;
        keys.seal_in_place(&aad, &mut out, start)?;
        #[cfg(feature = "hazmat")]
        {
            self.last_sent_keys = Some(Zeroizing::new([secret.as_bytes(), &keys.enc_key()[..], keys.nonce()].concat()));
        }
        let ct_len = u32::try_from(out.len().saturating_sub(start)).map_err(|_| Error::TooLarge)?;
        out.get_mut(len_at..start).ok_or(Error::TooLarge)?.copy_from_slice(&ct_len.to_be_bytes());
        let bytes = out;
        if let Some(chain) = self.sending.as_mut() {
            chain.ck = next_ck;
            chain.counter = next_counter;
        }
        self.last_activity = now;
        Ok(bytes)
    }

    fn aad(&self, header_bytes: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(32usize.saturating_add(header_bytes.len()));
        aad.extend_from_slice(&self.transcript);
        aad.extend_from_slice(header_bytes);
        aad
    }

    /// Decrypts an envelope of this session (a ratchet message, or a later
    /// prekey message of the same session start).
    ///
    /// Errors are typed: [`Error::Replay`] for a second delivery,
    /// [`Error::OutsideWindow`] for a message whose key is no longer kept,
    /// [`Error::TooManySkipped`] for a gap beyond the policy,
    /// [`Error::AuthenticationFailed`] for anything altered. On any error
    /// the session is unchanged.
    pub fn decrypt(&mut self, now: u64, envelope: &[u8]) -> Result<Vec<u8>> {
        match Envelope::from_bytes(envelope)? {
            Envelope::Ratchet(m) => {
                self.check_suite(m.version, m.suite)?;
                let aad = self.aad(&m.header_bytes());
                self.open(now, &m.header, &aad, m.ciphertext)
            }
            Envelope::Prekey(m) => {
                if !self.matches(&m) {
                    return Err(Error::UnknownPrekey);
                }
                self.check_suite(m.version, m.suite)?;
                let aad = self.aad(&m.header_bytes()?);
                self.open(now, &m.header, &aad, m.ciphertext)
            }
            _ => Err(Error::Malformed("not a pairwise message")),
        }
    }

    /// Decrypts a parsed ratchet message.
    pub fn decrypt_ratchet(&mut self, now: u64, message: &RatchetMessage) -> Result<Vec<u8>> {
        self.check_suite(message.version, message.suite)?;
        let aad = self.aad(&message.header_bytes());
        self.open(now, &message.header, &aad, message.ciphertext.clone())
    }

    /// Decrypts a parsed prekey message that belongs to this session.
    pub fn decrypt_prekey(&mut self, now: u64, message: &PrekeyMessage) -> Result<Vec<u8>> {
        if !self.matches(message) {
            return Err(Error::UnknownPrekey);
        }
        self.check_suite(message.version, message.suite)?;
        let aad = self.aad(&message.header_bytes()?);
        self.open(now, &message.header, &aad, message.ciphertext.clone())
    }

    fn check_suite(&self, version: u8, suite: Suite) -> Result<()> {
        if version != self.version {
            return Err(Error::Downgrade);
        }
        if suite != self.suite {
            return Err(Error::Downgrade);
        }
        Ok(())
    }

    fn max_skip(&self) -> u32 {
        self.policy.max_skip_per_chain.min(MAX_SKIP_PER_CHAIN_CAP)
    }

    fn max_skipped_total(&self) -> usize {
        usize::try_from(self.policy.max_skipped_total.min(MAX_SKIPPED_TOTAL_CAP)).unwrap_or(usize::MAX)
    }

    /// Opens `buf` (ciphertext) in place and strips the padding.
    fn seal_open(
        &self,
        secret: &SymmetricKey,
        header: &RatchetHeader,
        aad: &[u8],
        mut buf: Vec<u8>,
    ) -> Result<Vec<u8>> {
        SuiteKeys::derive(self.suite, secret, &header.salt)?.open_in_place(aad, &mut buf)?;
        match unpadded_len(&buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) => {
                buf.zeroize();
                Err(e)
            }
        }
    }

    /// The receive path; see the module documentation.
    pub(crate) fn open(&mut self, now: u64, header: &RatchetHeader, aad: &[u8], ct: Vec<u8>) -> Result<Vec<u8>> {
        let (secret, commit) = self.locate(header)?;
        let plaintext = self.seal_open(&secret, header, aad, ct)?;
        self.apply(header, commit)?;
        self.received(now);
        Ok(plaintext)
    }

    /// The suite keys that would open a message with this header, without
    /// changing the session (for conformance tests; feature `hazmat`).
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
    pub(crate) fn message_keys(&self, header: &RatchetHeader) -> Result<SuiteKeys> {
        let (secret, _) = self.locate(header)?;
        SuiteKeys::derive(self.suite, &secret, &header.salt)
    }

    /// Finds or derives the message secret for `header` without changing
    /// anything; returns it with the change to make once it authenticated.
    fn locate(&self, header: &RatchetHeader) -> Result<(SymmetricKey, Commit)> {
        let (n, i) = (header.epoch, header.counter);

        // 1. A key kept for a late message.
        if let Some(pos) = self.skipped.iter().position(|k| k.epoch == n && k.counter == i) {
            let key = self.skipped.get(pos).ok_or(Error::OutsideWindow)?;
            if key.peer_key != header.ratchet_key {
                return Err(Error::AuthenticationFailed);
            }
            return Ok((SymmetricKey::clone(&key.secret), Commit::Skipped { pos }));
        }

        // 2. An open receiving chain.
        if let Some(pos) = self.receiving.iter().position(|c| c.epoch == n) {
            let chain = self.receiving.get(pos).ok_or(Error::OutsideWindow)?;
            if chain.peer_key != header.ratchet_key {
                return Err(Error::AuthenticationFailed);
            }
            if i < chain.next {
                return Err(if i >= chain.floor { Error::Replay } else { Error::OutsideWindow });
            }
            let plan = plan_chain(&chain.ck, chain.next, i, self.max_skip())?;
            return Ok((plan.secret, Commit::Chain { pos, next_ck: plan.next_ck, skipped: plan.skipped }));
        }

        // 3. The next epoch, or the one after it when a whole epoch was missed.
        let missed_one = n == self.next_recv_epoch.saturating_add(1) && n > self.next_recv_epoch;
        if n != self.next_recv_epoch && !missed_one {
            return Err(if n > self.next_recv_epoch {
                Error::TooManySkipped
            } else {
                match self.finished.iter().find(|c| c.epoch == n) {
                    Some(c) if i >= c.floor && i < c.end => Error::Replay,
                    _ => Error::OutsideWindow,
                }
            });
        }
        // The cheap checks before any Diffie-Hellman or chain step.
        if missed_one && header.prev_ratchet_key == [0; 32] {
            return Err(Error::AuthenticationFailed);
        }
        let prev_own =
            if missed_one { Some(self.own_key(header.prev_peer_epoch).ok_or(Error::OutsideWindow)?) } else { None };
        let own = self.own_key(header.peer_epoch).ok_or(Error::OutsideWindow)?;
        if i > self.max_skip() {
            return Err(Error::TooManySkipped);
        }
        let (root, missed) = match prev_own {
            Some(prev_own) => {
                // Only the missed epoch's root is needed to open this
                // message: its chain key is kept for `apply`, which derives
                // the epoch's kept keys once the message authenticated.
                let shared = self.epoch_input(n.saturating_sub(1), &prev_own.secret, &header.prev_ratchet_key)?;
                let (ck, root) = epoch_step(
                    &self.recv_root,
                    &shared,
                    n.saturating_sub(1),
                    header.prev_peer_epoch,
                    &header.prev_ratchet_key,
                    &prev_own.public,
                )?;
                (root, Some(ck))
            }
            None => (self.recv_root.clone(), None),
        };
        let shared = self.epoch_input(n, &own.secret, &header.ratchet_key)?;
        let (ck0, next_root) = epoch_step(&root, &shared, n, header.peer_epoch, &header.ratchet_key, &own.public)?;
        let plan = plan_chain(&ck0, 0, i, self.max_skip())?;
        Ok((plan.secret, Commit::NewEpoch { next_root, missed, next_ck: plan.next_ck, skipped: plan.skipped }))
    }

    /// The Diffie-Hellman input of the peer's epoch `epoch`, whose ratchet
    /// key is `peer_key` and was combined with our `own` key. The
    /// initiator's epoch 0 takes DH3 of the session start instead, which
    /// only the responder's [`Account::accept`](crate::Account::accept)
    /// derives (it opens that epoch, or skips it, in the first message).
    fn epoch_input(&self, epoch: u32, own: &StaticSecret, peer_key: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
        if epoch == 0 && self.role == Role::Responder {
            return self.start_dh3.clone().ok_or(Error::OutsideWindow);
        }
        dh(own, peer_key)
    }

    /// Applies what [`Session::locate`] planned, after authentication.
    fn apply(&mut self, header: &RatchetHeader, commit: Commit) -> Result<()> {
        let (n, i) = (header.epoch, header.counter);
        match commit {
            Commit::Skipped { pos } => {
                self.skipped.remove(pos);
            }
            Commit::Chain { pos, next_ck, skipped } => {
                if let Some(chain) = self.receiving.get_mut(pos) {
                    *chain.ck = next_ck;
                    chain.next = i.saturating_add(1);
                }
                self.store_skipped(n, header.ratchet_key, skipped);
            }
            Commit::NewEpoch { next_root, missed, next_ck, skipped } => {
                // Everything that can fail first, so that the state
                // changes all at once or not at all.
                let max_skip = self.max_skip();
                let missed = match (n.checked_sub(1), missed) {
                    (Some(prev), Some(ck)) => {
                        let end = header.prev_count.min(max_skip);
                        Some((prev, end, keys_until(&ck, 0, end, max_skip)?))
                    }
                    _ => None,
                };
                let closing = self.close_previous(n, header.prev_count)?;

                self.recv_root = next_root;
                self.next_recv_epoch = n.saturating_add(1);
                if let Some((prev, end, kept)) = missed {
                    // The record first, so that evictions below raise its floor.
                    self.finish(FinishedChain { epoch: prev, floor: 0, end });
                    self.store_skipped(prev, header.prev_ratchet_key, kept);
                }
                if n >= self.peer_latest_epoch || self.peer_latest_key == [0; 32] {
                    self.peer_latest_epoch = n;
                    self.peer_latest_key = header.ratchet_key;
                }
                if let Some((pos, end, kept)) = closing {
                    let chain = self.receiving.remove(pos);
                    self.finish(FinishedChain { epoch: chain.epoch, floor: chain.floor, end });
                    self.store_skipped(chain.epoch, chain.peer_key, kept);
                }
                self.receiving.push(RecvChain {
                    epoch: n,
                    peer_key: header.ratchet_key,
                    ck: Box::new(next_ck),
                    next: i.saturating_add(1),
                    floor: 0,
                });
                while self.receiving.len() > MAX_RECEIVING_CHAINS {
                    let old = self.receiving.remove(0);
                    self.finish(FinishedChain { epoch: old.epoch, floor: old.floor, end: old.next });
                }
                self.store_skipped(n, header.ratchet_key, skipped);
                self.pending_start = None;
                // The peer has seen our epoch `peer_epoch`, and its later
                // epochs combine with that one or newer: older ratchet
                // secrets (the responder's signed-prekey copy among them)
                // can open nothing any more.
                self.own_keys.retain(|k| k.epoch >= header.peer_epoch);
            }
        }
        Ok(())
    }

    /// When a new chain of epoch `n` opens and the chain of epoch `n - 1`
    /// is still open, the peer announced (`count`) how long that one was:
    /// its position, where it ends, and the keys to keep of its messages
    /// not yet seen (at most `max_skip_per_chain`).
    fn close_previous(&self, n: u32, count: u32) -> Result<Option<(usize, u32, KeptKeys)>> {
        let Some(prev) = n.checked_sub(1) else { return Ok(None) };
        let Some(pos) = self.receiving.iter().position(|c| c.epoch == prev) else { return Ok(None) };
        let chain = self.receiving.get(pos).ok_or(Error::OutsideWindow)?;
        let end = count.min(chain.next.saturating_add(self.max_skip())).max(chain.next);
        Ok(Some((pos, end, keys_until(&chain.ck, chain.next, end, self.max_skip())?)))
    }

    fn finish(&mut self, chain: FinishedChain) {
        self.finished.push_back(chain);
        while self.finished.len() > MAX_FINISHED_CHAINS {
            self.finished.pop_front();
        }
    }

    fn store_skipped(&mut self, epoch: u32, peer_key: [u8; 32], keys: KeptKeys) {
        for (counter, secret) in keys {
            self.skipped.push_back(SkippedKey { epoch, counter, peer_key, secret });
        }
        let max = self.max_skipped_total();
        while self.skipped.len() > max {
            if let Some(old) = self.skipped.pop_front() {
                let floor = old.counter.saturating_add(1);
                if let Some(c) = self.receiving.iter_mut().find(|c| c.epoch == old.epoch) {
                    c.floor = c.floor.max(floor);
                }
                if let Some(c) = self.finished.iter_mut().find(|c| c.epoch == old.epoch) {
                    c.floor = c.floor.max(floor);
                }
            }
        }
    }

    fn received(&mut self, now: u64) {
        self.last_activity = self.last_activity.max(now);
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .field("suite", &self.suite)
            .field("role", &self.role)
            .field("peer", &self.peer_identity)
            .field("sending", &self.sending_position())
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "std"))]
#[allow(clippy::indexing_slicing, clippy::panic)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::pickle::{PickleKind, open};
    use crate::{Account, PickleKey, PrekeyBundle};

    const NOW: u64 = 1_700_000_000;

    struct Pair {
        rng: ChaCha20Rng,
        bob_account: Account,
        alice: Session,
        bob: Session,
    }

    /// Alice starts a session with Bob, who accepts her first message.
    fn started(policy: &SessionPolicy) -> Pair {
        let mut rng = ChaCha20Rng::from_seed([21; 32]);
        let mut alice_account = Account::new(&mut rng, NOW);
        let mut bob_account = Account::new(&mut rng, NOW);
        let otk = bob_account.generate_one_time_prekeys(&mut rng, 1)[0];
        let wire = bob_account.bundle(policy).unwrap().with_one_time_prekey(otk).unwrap().to_bytes();
        let bundle = PrekeyBundle::from_bytes(&wire).unwrap();
        let mut alice = Session::initiate(&mut rng, &mut alice_account, &bundle, policy, NOW).unwrap();
        let first = alice.encrypt(&mut rng, NOW, b"m0").unwrap();
        let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { panic!("not a prekey message") };
        let (bob, plaintext) = bob_account.accept(policy, NOW, &m).unwrap();
        assert_eq!(plaintext, b"m0");
        Pair { rng, bob_account, alice, bob }
    }

    /// The session's pickle plaintext: its whole state, deterministically.
    fn state(rng: &mut ChaCha20Rng, session: &Session) -> Vec<u8> {
        let key = PickleKey::Key(SymmetricKey::from_bytes([3; 32]));
        open(&session.pickle(rng, &key, b"").unwrap(), PickleKind::Session, &key, b"").unwrap().to_vec()
    }

    fn public_key(rng: &mut ChaCha20Rng) -> [u8; 32] {
        DhPublic::from(&random_secret(rng)).to_bytes()
    }

    fn steps() -> u64 {
        CHAIN_STEPS.with(core::cell::Cell::get)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn dhs() -> u64 {
        crate::identity::DH_COUNT.with(core::cell::Cell::get)
    }

    #[test]
    fn a_session_start_costs_four_diffie_hellmans_on_each_side_and_a_turn_one() {
        for policy in [SessionPolicy::default(), SessionPolicy { min_version: 1, ..SessionPolicy::default() }] {
            let mut rng = ChaCha20Rng::from_seed([22; 32]);
            let mut alice_account = Account::new(&mut rng, NOW);
            let mut bob_account = Account::new(&mut rng, NOW);
            let otk = bob_account.generate_one_time_prekeys(&mut rng, 1)[0];
            let signed = if policy.min_version < 2 {
                let spk = bob_account.signed_prekeys[0].public;
                let versions = alloc::vec![crate::policy::PROTOCOL_VERSION];
                PrekeyBundle::sign(&bob_account.identity, versions, policy.suite_ids(), spk, None)
            } else {
                bob_account.bundle(&policy)
            };
            let bundle = signed.unwrap().with_one_time_prekey(otk).unwrap();

            let start = dhs();
            let mut alice = Session::initiate(&mut rng, &mut alice_account, &bundle, &policy, NOW).unwrap();
            let first = alice.encrypt(&mut rng, NOW, b"m0").unwrap();
            assert_eq!(dhs() - start, 4, "initiator: DH1 to DH4, and its epoch 0 takes DH3");
            let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { panic!("not a prekey message") };
            let start = dhs();
            let (mut bob, plaintext) = bob_account.accept(&policy, NOW, &m).unwrap();
            assert_eq!(plaintext, b"m0");
            assert_eq!(dhs() - start, 4, "responder: DH1 to DH4, and the initiator's epoch 0 opens with DH3");
            assert!(bob.start_dh3.is_none(), "DH3 is not kept after the start");

            // A turn: the sender's new ratchet key against the peer's, and
            // the receiver's key against the new one.
            let start = dhs();
            let reply = bob.encrypt(&mut rng, NOW, b"r1").unwrap();
            assert_eq!(dhs() - start, 1);
            assert_eq!(alice.decrypt(NOW, &reply).unwrap(), b"r1");
            assert_eq!(dhs() - start, 2);
        }
    }

    #[test]
    fn an_initiator_restored_before_its_first_message_starts_epoch_1_and_the_responder_derives_epoch_0_from_dh3() {
        let policy = SessionPolicy::default();
        let mut rng = ChaCha20Rng::from_seed([23; 32]);
        let mut alice_account = Account::new(&mut rng, NOW);
        let mut bob_account = Account::new(&mut rng, NOW);
        let bundle = bob_account.bundle(&policy).unwrap();
        let alice = Session::initiate(&mut rng, &mut alice_account, &bundle, &policy, NOW).unwrap();
        let key = PickleKey::Key(SymmetricKey::from_bytes([4; 32]));
        let mut alice = Session::from_pickle(&alice.pickle(&mut rng, &key, b"").unwrap(), &key, b"").unwrap();
        let first = alice.encrypt(&mut rng, NOW, b"m0").unwrap();
        assert_eq!(alice.sending_position(), Some((1, 1)), "the restored initiator sends in epoch 1");
        let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { panic!("not a prekey message") };
        assert_eq!((m.header.epoch, m.header.prev_count), (1, 0), "epoch 0 announced empty");
        // Bob derives the missed epoch 0 from DH3 and opens epoch 1.
        let (mut bob, plaintext) = bob_account.accept(&policy, NOW, &m).unwrap();
        assert_eq!(plaintext, b"m0");
        let reply = bob.encrypt(&mut rng, NOW, b"r1").unwrap();
        assert_eq!(alice.decrypt(NOW, &reply).unwrap(), b"r1");
    }

    #[test]
    fn a_forged_missed_epoch_message_derives_no_kept_keys_and_changes_nothing() {
        let policy = SessionPolicy::default();
        let Pair { mut rng, mut bob, .. } = started(&policy);
        // Bob answers, so he holds his ratchet key of epoch 1 as well.
        bob.encrypt(&mut rng, NOW, b"r1").unwrap();
        assert_eq!((bob.next_recv_epoch, bob.own_keys.len()), (1, 2));

        // A forger claims Alice's epoch 1 went by unseen with 900 messages
        // and sends message 7 of her epoch 2.
        let header = RatchetHeader {
            ratchet_key: public_key(&mut rng),
            epoch: 2,
            peer_epoch: 1,
            counter: 7,
            prev_count: 900,
            prev_ratchet_key: public_key(&mut rng),
            prev_peer_epoch: 1,
            salt: [9; SALT_LEN],
        };
        let forged =
            RatchetMessage { version: bob.version, suite: bob.suite, header, ciphertext: alloc::vec![0x5A; 48] }
                .to_bytes()
                .unwrap();
        let before = state(&mut rng, &bob);
        let start = steps();
        assert_eq!(bob.decrypt(NOW, &forged), Err(Error::AuthenticationFailed));
        // Only the walk to counter 7 of epoch 2 (8 steps), none of the 900
        // kept keys of the claimed missed epoch.
        assert_eq!(steps() - start, 8);
        assert_eq!(state(&mut rng, &bob), before);
    }

    #[test]
    fn the_responders_signed_prekey_copy_is_dropped_once_the_peer_has_turned() {
        let policy = SessionPolicy::default();
        let Pair { mut rng, bob_account, mut alice, mut bob } = started(&policy);
        let spk = *bob_account.signed_prekeys[0].secret.as_bytes();
        let reply = bob.encrypt(&mut rng, NOW, b"r1").unwrap();
        // Alice's second message is still of her epoch 0 (combined with the
        // signed prekey): Bob must keep it until Alice has turned.
        let late = alice.encrypt(&mut rng, NOW, b"m1").unwrap();
        assert_eq!(alice.decrypt(NOW, &reply).unwrap(), b"r1");
        let turned = alice.encrypt(&mut rng, NOW, b"m2").unwrap();
        assert!(contains(&state(&mut rng, &bob), &spk), "the control: Bob holds the prekey copy before the turn");

        assert_eq!(bob.decrypt(NOW, &turned).unwrap(), b"m2");
        assert!(!contains(&state(&mut rng, &bob), &spk), "the signed-prekey secret outlived the turn");
        assert_eq!(bob.own_keys.iter().map(|k| k.epoch).collect::<Vec<_>>(), [1]);
        // A message of the epoch combined with it still opens: its chain was
        // derived when it opened.
        assert_eq!(bob.decrypt(NOW, &late).unwrap(), b"m1");
    }

    #[test]
    fn a_missed_epoch_keeps_its_record_floor_and_the_older_open_chain() {
        let policy = SessionPolicy { max_messages_per_chain: 10, max_skipped_total: 4, ..SessionPolicy::default() };
        let Pair { mut rng, mut alice, mut bob, .. } = started(&policy);
        // Alice's epoch 0 has m0 (delivered) and 9 more; her epoch 1 (10
        // messages) is lost entirely; epoch 2's first message arrives.
        let epoch0: Vec<_> = (1..10).map(|_| alice.encrypt(&mut rng, NOW, b"e0").unwrap()).collect();
        let epoch1: Vec<_> = (0..10).map(|_| alice.encrypt(&mut rng, NOW, b"e1").unwrap()).collect();
        let first_of_2 = alice.encrypt(&mut rng, NOW, b"e2").unwrap();
        assert_eq!(alice.sending_position(), Some((2, 1)));

        assert_eq!(bob.decrypt(NOW, &first_of_2).unwrap(), b"e2");
        // Epoch 1's ten keys were kept, then the six oldest evicted (total
        // bound 4): its closed-chain record's floor is 6.
        assert_eq!(bob.skipped_key_count(), 4);
        assert_eq!(bob.finished.iter().map(|c| (c.epoch, c.floor, c.end)).collect::<Vec<_>>(), [(1, 6, 10)]);
        assert_eq!(bob.decrypt(NOW, &epoch1[2]), Err(Error::OutsideWindow));
        assert_eq!(bob.decrypt(NOW, &epoch1[7]).unwrap(), b"e1");
        assert_eq!(bob.decrypt(NOW, &epoch1[7]), Err(Error::Replay));
        // Epoch 0's chain stays open (its end was announced only in epoch
        // 1's headers): a later message of it still opens.
        assert_eq!(bob.receiving.iter().map(|c| c.epoch).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(bob.decrypt(NOW, &epoch0[8]).unwrap(), b"e0");
    }
}
