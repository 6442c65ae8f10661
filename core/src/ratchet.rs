//! The pairwise session: a Double Ratchet with per-direction epochs,
//! rotation by count and time, bounded out-of-order delivery and replay
//! refusal.
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
//! the header ([`Suite::seal`]), so even a session restored from an old
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

/// One of this party's ratchet keys.
#[derive(Clone)]
pub(crate) struct OwnKey {
    pub(crate) epoch: u32,
    pub(crate) secret: StaticSecret,
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
    pub(crate) ck: SymmetricKey,
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
    pub(crate) secret: SymmetricKey,
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
/// let alice = Account::new(&mut rng, now);
/// let mut bob = Account::new(&mut rng, now);
/// let otk = bob.generate_one_time_prekeys(&mut rng, 1)[0];
/// let bundle = PrekeyBundle::from_bytes(&bob.bundle(&policy)?.with_one_time_prekey(otk)?.to_bytes())?;
///
/// let mut to_bob = Session::initiate(&mut rng, &alice, &bundle, &policy, now)?;
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

/// One chain step: (message secret, next chain key).
pub(crate) fn chain_step(ck: &SymmetricKey, info: &[u8]) -> Result<(SymmetricKey, SymmetricKey)> {
    let mut out = Zeroizing::new([0u8; 64]);
    hkdf_expand_sha256(ck.as_bytes(), &[info], &mut out[..])?;
    let (mk, next) = out.split_at(32);
    Ok((
        SymmetricKey::from_bytes(mk.try_into().map_err(|_| Error::TooLarge)?),
        SymmetricKey::from_bytes(next.try_into().map_err(|_| Error::TooLarge)?),
    ))
}

/// The change a successful decryption makes, computed before it is applied.
enum Commit {
    /// Use and erase a kept key.
    Skipped { pos: usize },
    /// Advance an open chain, keeping the keys skipped on the way.
    Chain { pos: usize, next_ck: SymmetricKey, skipped: Vec<(u32, SymmetricKey)> },
    /// Open the chain of the next epoch; when the previous epoch was missed
    /// entirely, `missed` holds its kept keys (derived from the header's
    /// previous-epoch fields).
    NewEpoch {
        next_root: SymmetricKey,
        missed: Option<Vec<(u32, SymmetricKey)>>,
        next_ck: SymmetricKey,
        skipped: Vec<(u32, SymmetricKey)>,
    },
}

/// The keys of one chain walk.
struct Plan {
    secret: SymmetricKey,
    /// Keys skipped on the way, to store: (counter, secret).
    skipped: Vec<(u32, SymmetricKey)>,
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
        skipped.push((counter, secret));
        ck = next_ck;
        counter = counter.checked_add(1).ok_or(Error::OutsideWindow)?;
    }
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
        let epoch = self.next_send_epoch;
        let next_epoch = epoch.checked_add(1).ok_or(Error::SessionExpired)?;
        let secret = random_secret(rng);
        let public = DhPublic::from(&secret).to_bytes();
        let shared = dh(&secret, &self.peer_latest_key)?;
        let (ck, next_root) =
            epoch_step(&self.send_root, &shared, epoch, self.peer_latest_epoch, &public, &self.peer_latest_key)?;
        if let (Some(old), Some(old_key)) = (&self.sending, self.own_keys.last()) {
            self.prev_sent = PrevEpoch { ratchet_key: old_key.public, peer_epoch: old.peer_epoch, count: old.counter };
        }
        self.send_root = next_root;
        self.next_send_epoch = next_epoch;
        self.sending = Some(SendChain { epoch, peer_epoch: self.peer_latest_epoch, ck, counter: 0, started_at: now });
        self.own_keys.push(OwnKey { epoch, secret, public });
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
        SuiteKeys::derive(self.suite, &secret, &salt)?.seal_in_place(&aad, &mut out, start)?;
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
            return Ok((key.secret.clone(), Commit::Skipped { pos }));
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
        let (root, missed) = if missed_one {
            let prev = n.saturating_sub(1);
            if header.prev_ratchet_key == [0; 32] {
                return Err(Error::AuthenticationFailed);
            }
            let own = self.own_key(header.prev_peer_epoch).ok_or(Error::OutsideWindow)?;
            let shared = dh(&own.secret, &header.prev_ratchet_key)?;
            let (ck, root) = epoch_step(
                &self.recv_root,
                &shared,
                prev,
                header.prev_peer_epoch,
                &header.prev_ratchet_key,
                &own.public,
            )?;
            let kept = match header.prev_count.min(self.max_skip()) {
                0 => Vec::new(),
                count => {
                    let plan = plan_chain(&ck, 0, count.saturating_sub(1), self.max_skip())?;
                    let mut keys = plan.skipped;
                    keys.push((count.saturating_sub(1), plan.secret));
                    keys
                }
            };
            (root, Some(kept))
        } else {
            (self.recv_root.clone(), None)
        };
        let own = self.own_key(header.peer_epoch).ok_or(Error::OutsideWindow)?;
        let shared = dh(&own.secret, &header.ratchet_key)?;
        let (ck0, next_root) = epoch_step(&root, &shared, n, header.peer_epoch, &header.ratchet_key, &own.public)?;
        let plan = plan_chain(&ck0, 0, i, self.max_skip())?;
        Ok((plan.secret, Commit::NewEpoch { next_root, missed, next_ck: plan.next_ck, skipped: plan.skipped }))
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
                    chain.ck = next_ck;
                    chain.next = i.saturating_add(1);
                }
                self.store_skipped(n, header.ratchet_key, skipped);
            }
            Commit::NewEpoch { next_root, missed, next_ck, skipped } => {
                self.recv_root = next_root;
                self.next_recv_epoch = n.saturating_add(1);
                if let Some(kept) = missed {
                    let prev = n.saturating_sub(1);
                    let end = header.prev_count.min(self.max_skip());
                    self.store_skipped(prev, header.prev_ratchet_key, kept);
                    self.finish(FinishedChain { epoch: prev, floor: 0, end });
                }
                if n >= self.peer_latest_epoch || self.peer_latest_key == [0; 32] {
                    self.peer_latest_epoch = n;
                    self.peer_latest_key = header.ratchet_key;
                }
                self.finish_previous(n, header.prev_count)?;
                self.receiving.push(RecvChain {
                    epoch: n,
                    peer_key: header.ratchet_key,
                    ck: next_ck,
                    next: i.saturating_add(1),
                    floor: 0,
                });
                while self.receiving.len() > MAX_RECEIVING_CHAINS {
                    let old = self.receiving.remove(0);
                    self.finish(FinishedChain { epoch: old.epoch, floor: old.floor, end: old.next });
                }
                self.store_skipped(n, header.ratchet_key, skipped);
                self.pending_start = None;
            }
        }
        Ok(())
    }

    /// The peer announced that its epoch `n - 1` had `count` messages: keep
    /// the keys of those not yet seen and close that chain.
    fn finish_previous(&mut self, n: u32, count: u32) -> Result<()> {
        let Some(prev) = n.checked_sub(1) else { return Ok(()) };
        let Some(pos) = self.receiving.iter().position(|c| c.epoch == prev) else { return Ok(()) };
        let chain = self.receiving.remove(pos);
        let end = count.min(chain.next.saturating_add(self.max_skip()));
        if end > chain.next {
            // `end - 1` is the last key to keep; plan_chain also returns the
            // key at `to`, which is kept as well.
            let plan = plan_chain(&chain.ck, chain.next, end.saturating_sub(1), self.max_skip())?;
            let mut keys = plan.skipped;
            keys.push((end.saturating_sub(1), plan.secret));
            self.store_skipped(prev, chain.peer_key, keys);
        }
        self.finish(FinishedChain { epoch: prev, floor: chain.floor, end: end.max(chain.next) });
        Ok(())
    }

    fn finish(&mut self, chain: FinishedChain) {
        self.finished.push_back(chain);
        while self.finished.len() > MAX_FINISHED_CHAINS {
            self.finished.pop_front();
        }
    }

    fn store_skipped(&mut self, epoch: u32, peer_key: [u8; 32], keys: Vec<(u32, SymmetricKey)>) {
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
