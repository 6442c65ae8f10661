//! Persistence: accounts and sessions serialized into versioned pickles,
//! sealed with AES-256-GCM under a caller key or a passphrase.
//!
//! This file also holds the pickle methods of [`Account`] and [`Session`],
//! whose other methods live in `account.rs`, `handshake.rs` and `ratchet.rs`;
//! [`GroupSession`](crate::GroupSession)'s pickle code is in `group.rs` and
//! [`Healer`](crate::Healer)'s in `heal.rs`.
//!
//! ```text
//! pickle = format (1) || kind (1) || mode (1) || [salt (16) || iterations (4)]  (mode 2 only)
//!          || seal salt (16) || AES-256-GCM ciphertext || tag (16)
//! key || nonce = HKDF-SHA-256(salt = seal salt, ikm = K, info = "sealpost/v1/pickle" || kind)   (32 + 12 bytes)
//! K = the caller's 32-byte key (mode 1) or PBKDF2-HMAC-SHA-256(passphrase, salt, iterations) (mode 2)
//! associated data = every byte before the ciphertext || the caller's associated data
//! ```
//!
//! A fresh seal salt per pickle gives a fresh key and nonce each time. A
//! wrong key, a truncated pickle or any changed byte is an error, never a
//! panic. The plaintext layouts are in `docs/PROTOCOL.md`.
//!
//! The caller's associated data is not stored in the pickle; it names what
//! the pickle is for (for example the peer's identity and the storage row)
//! and must be given again, byte for byte, to restore it. Someone who can
//! write to the storage therefore cannot swap two peers' session pickles,
//! or put one account's pickle in another's place, without the restore
//! failing with [`Error::AuthenticationFailed`].
//!
//! ```
//! use sealpost::{Account, PickleKey, SymmetricKey};
//! let mut rng = sealpost::os_rng();
//! let account = Account::new(&mut rng, 1_700_000_000);
//! let key = PickleKey::Key(SymmetricKey::random(&mut rng));
//! let pickle = account.pickle(&mut rng, &key, b"account/alice")?;
//! let restored = Account::from_pickle(&pickle, &key, b"account/alice")?;
//! assert_eq!(restored.identity(), account.identity());
//! assert_eq!(Account::from_pickle(&pickle, &key, b"account/bob").err(), Some(sealpost::Error::AuthenticationFailed));
//! # Ok::<(), sealpost::Error>(())
//! ```

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use crate::sorted::SortedSet;
use alloc::vec::Vec;
use core::fmt;

use x25519_dalek::{PublicKey as DhPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::account::{Account, OneTimeSecret, SignedPrekey};
use crate::bundle::SignedPrekeyPublic;
use crate::codec::{Reader, Sink, put_bytes_u8, put_u32, put_u64};
use crate::consts::{
    MAX_BASE_KEYS_PER_PREKEY, MAX_FINISHED_CHAINS, MAX_OWN_RATCHET_KEYS, MAX_PEER_VERSIONS, MAX_RECEIVING_CHAINS,
    MAX_SIGNED_PREKEYS, MAX_SKIPPED_TOTAL_CAP,
};
use crate::envelope::Padding;
use crate::error::{Error, Result};
use crate::identity::{IDENTITY_PUBLIC_LEN, IdentityKeyPair, IdentityPublic};
use crate::kdf::{Pbkdf2Params, hkdf_sha256, label};
use crate::policy::SessionPolicy;
use crate::ratchet::{FinishedChain, OwnKey, PendingStart, PrevEpoch, RecvChain, Role, SendChain, Session, SkippedKey};
use crate::secret::SymmetricKey;
use crate::suite::{Suite, SuiteKeys};

/// The pickle format version. Version 2 binds the caller's associated
/// data; version 1 pickles are refused (`UnsupportedVersion(1)`).
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const PICKLE_FORMAT: u8 = 2;
const SEAL_SALT_LEN: usize = 16;
const MODE_KEY: u8 = 1;
const MODE_PASSPHRASE: u8 = 2;

/// What a pickle holds (the second byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub enum PickleKind {
    /// An [`Account`].
    Account,
    /// A pairwise [`Session`].
    Session,
    /// A group session.
    Group,
    /// A session-reset [`Healer`](crate::heal::Healer)'s replay and rate memory.
    Healer,
    /// A [`Room`](crate::room::Room): its group session and pairwise sessions.
    Room,
}

impl PickleKind {
    pub(crate) const fn id(self) -> u8 {
        match self {
            PickleKind::Account => 1,
            PickleKind::Session => 2,
            PickleKind::Group => 3,
            PickleKind::Healer => 4,
            PickleKind::Room => 5,
        }
    }
}

/// The secret a pickle is sealed under.
#[derive(Clone)]
pub enum PickleKey {
    /// A 32-byte key the app keeps (for example in the platform keystore).
    Key(SymmetricKey),
    /// A passphrase, stretched with PBKDF2-HMAC-SHA-256. Sealing draws a
    /// fresh salt and uses `DEFAULT_PBKDF2_ITERATIONS`(crate::kdf::DEFAULT_PBKDF2_ITERATIONS);
    /// opening uses the salt and count stored in the pickle.
    Passphrase(Zeroizing<Vec<u8>>),
}

impl PickleKey {
    /// A passphrase key.
    pub fn passphrase(passphrase: &[u8]) -> Self {
        PickleKey::Passphrase(Zeroizing::new(passphrase.to_vec()))
    }
}

impl fmt::Debug for PickleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickleKey::Key(_) => f.write_str("PickleKey::Key(<redacted>)"),
            PickleKey::Passphrase(_) => f.write_str("PickleKey::Passphrase(<redacted>)"),
        }
    }
}

/// Seals `plaintext` into a pickle of `kind`, bound to `associated_data`.
pub(crate) fn seal<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    kind: PickleKind,
    key: &PickleKey,
    associated_data: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plaintext.len().saturating_add(64));
    out.extend_from_slice(&[PICKLE_FORMAT, kind.id()]);
    let base = match key {
        PickleKey::Key(k) => {
            out.push(MODE_KEY);
            k.clone()
        }
        PickleKey::Passphrase(p) => {
            let params = Pbkdf2Params::generate(rng);
            out.push(MODE_PASSPHRASE);
            out.extend_from_slice(params.salt());
            put_u32(&mut out, params.iterations());
            params.derive(p)
        }
    };
    let mut salt = [0u8; SEAL_SALT_LEN];
    rng.fill_bytes(&mut salt);
    out.extend_from_slice(&salt);
    let keys = pickle_keys(&base, &salt, kind)?;
    let sealed = keys.seal(&aead_data(&out, associated_data), plaintext)?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The AEAD associated data: the pickle's header (self-delimiting: its
/// length follows from the mode byte) and then the caller's bytes.
fn aead_data(header: &[u8], associated_data: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len().saturating_add(associated_data.len()));
    aad.extend_from_slice(header);
    aad.extend_from_slice(associated_data);
    aad
}

fn pickle_keys(base: &SymmetricKey, salt: &[u8; SEAL_SALT_LEN], kind: PickleKind) -> Result<SuiteKeys> {
    let mut okm = Zeroizing::new([0u8; 44]);
    hkdf_sha256(salt, base.as_bytes(), &[label::PICKLE, &[kind.id()]], &mut okm[..])?;
    let (k, nonce) = okm.split_at(32);
    SuiteKeys::from_parts(Suite::Aes256Gcm, k.try_into().map_err(|_| Error::TooLarge)?, [0; 32], nonce)
}

/// Opens a pickle of `kind` sealed with `associated_data`; every failure is
/// a typed error (a different `associated_data` is `AuthenticationFailed`).
pub(crate) fn open(
    bytes: &[u8],
    kind: PickleKind,
    key: &PickleKey,
    associated_data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut r = Reader::new(bytes, "pickle");
    let format = r.u8()?;
    if format != PICKLE_FORMAT {
        return Err(Error::UnsupportedVersion(format));
    }
    if r.u8()? != kind.id() {
        return Err(Error::Malformed("pickle kind"));
    }
    let mode = r.u8()?;
    let base = match (mode, key) {
        (MODE_KEY, PickleKey::Key(k)) => k.clone(),
        (MODE_PASSPHRASE, PickleKey::Passphrase(p)) => {
            let salt = r.array()?;
            let iterations = r.u32()?;
            Pbkdf2Params::new_allowing_weak(salt, iterations).map_err(|_| Error::Malformed("pickle"))?.derive(p)
        }
        (MODE_KEY | MODE_PASSPHRASE, _) => return Err(Error::AuthenticationFailed),
        _ => return Err(Error::Malformed("pickle")),
    };
    let salt = r.array()?;
    let header_len = bytes.len().saturating_sub(r.remaining());
    let header = bytes.get(..header_len).ok_or(Error::Malformed("pickle"))?;
    let keys = pickle_keys(&base, &salt, kind)?;
    Ok(Zeroizing::new(keys.open(&aead_data(header, associated_data), r.take(r.remaining())?)?))
}

// ---------------------------------------------------------------------------
// Plaintext encodings

fn put_key(out: &mut SecretBuffer, key: &SymmetricKey) {
    out.extend_from_slice(key.as_bytes());
}

fn read_key(r: &mut Reader<'_>) -> Result<SymmetricKey> {
    let bytes = Zeroizing::new(r.array::<32>()?);
    Ok(SymmetricKey::from_bytes(*bytes))
}

fn read_secret(r: &mut Reader<'_>) -> Result<StaticSecret> {
    let bytes = Zeroizing::new(r.array::<32>()?);
    Ok(StaticSecret::from(*bytes))
}

/// Appends a count as a `u32` ([`Error::TooLarge`] above `u32::MAX`).
pub(crate) fn put_len(out: &mut SecretBuffer, n: usize) -> Result<()> {
    put_u32(out, u32::try_from(n).map_err(|_| Error::TooLarge)?);
    Ok(())
}

/// Reads a `u32` count, refusing counts above `max`.
pub(crate) fn read_len(r: &mut Reader<'_>, max: usize) -> Result<usize> {
    let n = usize::try_from(r.u32()?).map_err(|_| Error::Malformed("pickle"))?;
    if n > max { Err(Error::Malformed("pickle")) } else { Ok(n) }
}

fn put_opt_u32(out: &mut SecretBuffer, v: Option<u32>) {
    match v {
        None => out.push(0),
        Some(x) => {
            out.push(1);
            put_u32(out, x);
        }
    }
}

fn read_opt_u32(r: &mut Reader<'_>) -> Result<Option<u32>> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.u32()?)),
        _ => Err(Error::Malformed("pickle")),
    }
}

fn read_bool(r: &mut Reader<'_>) -> Result<bool> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::Malformed("pickle")),
    }
}

pub(crate) fn put_policy<S: Sink + ?Sized>(out: &mut S, p: &SessionPolicy) -> Result<()> {
    put_bytes_u8(out, &p.suite_ids())?;
    out.put(&[p.min_version]);
    put_u32(out, p.max_messages_per_chain);
    put_u64(out, p.rotate_after);
    put_u64(out, p.expire_after);
    put_u32(out, p.max_skip_per_chain);
    put_u32(out, p.max_skipped_total);
    match p.padding {
        Padding::None => out.put(&[0, 0, 0]),
        Padding::Padme => out.put(&[1, 0, 0]),
        Padding::Block(b) => {
            out.put(&[2]);
            out.put(&b.to_be_bytes());
        }
    }
    Ok(())
}

pub(crate) fn read_policy(r: &mut Reader<'_>) -> Result<SessionPolicy> {
    let suites = r.bytes_u8()?.iter().map(|id| Suite::from_id(*id)).collect::<Result<Vec<_>>>()?;
    let policy = SessionPolicy {
        suites,
        min_version: r.u8()?,
        max_messages_per_chain: r.u32()?,
        rotate_after: r.u64()?,
        expire_after: r.u64()?,
        max_skip_per_chain: r.u32()?,
        max_skipped_total: r.u32()?,
        padding: match (r.u8()?, u16::from_be_bytes(r.array()?)) {
            (0, _) => Padding::None,
            (1, _) => Padding::Padme,
            (2, b) => Padding::Block(b),
            _ => return Err(Error::Malformed("pickle")),
        },
    };
    policy.validate().map_err(|_| Error::Malformed("pickle"))?;
    Ok(policy)
}

/// A buffer for pickle plaintext, allocated once with room for `bound`
/// bytes: a `Vec` that grows frees its old allocation without wiping it,
/// so every encoder sizes its buffer up front.
pub(crate) fn secret_buffer(bound: usize) -> SecretBuffer {
    SecretBuffer { buf: Zeroizing::new(Vec::with_capacity(bound)), overflow: false }
}

/// Pickle plaintext under construction: a fixed allocation that never
/// grows, in every build. A write that does not fit is dropped and the
/// buffer remembers it, so [`SecretBuffer::finish`] fails instead of
/// letting the allocation move (and leave an unwiped copy behind). The
/// bytes are wiped when it is dropped.
pub(crate) struct SecretBuffer {
    buf: Zeroizing<Vec<u8>>,
    overflow: bool,
}

impl SecretBuffer {
    /// Appends one byte.
    pub(crate) fn push(&mut self, byte: u8) {
        self.put(&[byte]);
    }

    /// Appends `bytes`.
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.put(bytes);
    }

    /// The plaintext, or [`Error::TooLarge`] if a write did not fit (an
    /// encoder whose size bound is wrong).
    pub(crate) fn finish(self) -> Result<Zeroizing<Vec<u8>>> {
        if self.overflow { Err(Error::TooLarge) } else { Ok(self.buf) }
    }
}

impl Sink for SecretBuffer {
    fn put(&mut self, bytes: &[u8]) {
        let room = self.buf.capacity().saturating_sub(self.buf.len());
        if self.overflow || bytes.len() > room {
            self.overflow = true;
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }
}

/// `a + b * c`, saturating: the size bounds of the pickle encoders.
pub(crate) fn bound(a: usize, b: usize, c: usize) -> usize {
    a.saturating_add(b.saturating_mul(c))
}

impl Account {
    fn encode_pickle(&self) -> Result<Zeroizing<Vec<u8>>> {
        // Sized exactly up front: a growing Vec frees its old buffers
        // without wiping them, and these hold the identity secrets.
        const SIGNED_PREKEY: usize = 4 + 32 + 64 + 8 + 1 + 8 + 4;
        let base_keys = self.signed_prekeys.iter().map(|k| k.seen_base_keys.len()).fold(0usize, usize::saturating_add);
        let len = [
            64 + 4 + 4 + 4 + 4,
            self.signed_prekeys.len().saturating_mul(SIGNED_PREKEY),
            base_keys.saturating_mul(32),
            self.one_time.len().saturating_mul(4 + 32),
            self.peer_versions.len().saturating_mul(32 + 1),
        ]
        .into_iter()
        .fold(0usize, usize::saturating_add);
        let mut out = secret_buffer(len);
        let (seed, dh) = self.identity.secret_bytes();
        let (seed, dh) = (Zeroizing::new(seed), Zeroizing::new(dh));
        out.extend_from_slice(&seed[..]);
        out.extend_from_slice(&dh[..]);
        put_u32(&mut out, self.next_prekey_id);
        put_len(&mut out, self.signed_prekeys.len())?;
        for k in &self.signed_prekeys {
            put_u32(&mut out, k.public.id);
            out.extend_from_slice(k.secret.as_bytes());
            out.extend_from_slice(k.pq.seed());
            put_u64(&mut out, k.public.created_at);
            match k.retired_at {
                None => out.push(0),
                Some(at) => {
                    out.push(1);
                    put_u64(&mut out, at);
                }
            }
            put_len(&mut out, k.seen_base_keys.len())?;
            for b in k.seen_base_keys.iter() {
                out.extend_from_slice(b);
            }
        }
        put_len(&mut out, self.one_time.len())?;
        for k in &self.one_time {
            put_u32(&mut out, k.id);
            out.extend_from_slice(k.secret.as_bytes());
        }
        put_len(&mut out, self.peer_versions.len())?;
        for (peer, version) in &self.peer_versions {
            out.extend_from_slice(peer);
            out.push(*version);
        }
        out.finish()
    }

    fn decode_pickle(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "pickle");
        let seed = Zeroizing::new(r.array::<32>()?);
        let dh = Zeroizing::new(r.array::<32>()?);
        let identity = IdentityKeyPair::from_secret_bytes(&seed, &dh);
        let next_prekey_id = r.u32()?;
        let n = read_len(&mut r, MAX_SIGNED_PREKEYS)?;
        let mut signed_prekeys = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.u32()?;
            let secret = read_secret(&mut r)?;
            let pq = crate::pq::PqSecret::from_seed(&Zeroizing::new(r.array::<64>()?));
            let pq_public = pq.public();
            let created_at = r.u64()?;
            let retired_at = match r.u8()? {
                0 => None,
                1 => Some(r.u64()?),
                _ => return Err(Error::Malformed("pickle")),
            };
            let count = read_len(&mut r, MAX_BASE_KEYS_PER_PREKEY)?;
            let mut seen_base_keys = SortedSet::new();
            for _ in 0..count {
                // Strictly increasing: one encoding per state.
                let key: [u8; 32] = r.array()?;
                if !seen_base_keys.push_greatest(key) {
                    return Err(Error::Malformed("pickle"));
                }
            }
            let public = SignedPrekeyPublic { id, key: DhPublic::from(&secret).to_bytes(), created_at };
            signed_prekeys.push(SignedPrekey { public, secret, pq, pq_public, retired_at, seen_base_keys });
        }
        let n = read_len(&mut r, crate::account::MAX_ONE_TIME_PREKEYS)?;
        let mut one_time = Vec::with_capacity(n);
        for _ in 0..n {
            let (id, secret) = (r.u32()?, read_secret(&mut r)?);
            let public = DhPublic::from(&secret).to_bytes();
            one_time.push(OneTimeSecret { id, secret, public });
        }
        let n = read_len(&mut r, MAX_PEER_VERSIONS)?;
        let mut peer_versions = VecDeque::with_capacity(n);
        for _ in 0..n {
            peer_versions.push_back((r.array()?, r.u8()?));
        }
        r.finish()?;
        Ok(Self { identity, signed_prekeys, one_time, next_prekey_id, peer_versions })
    }

    /// Serializes and seals the account, bound to `associated_data` (for
    /// example the account's storage key): the same bytes must be given to
    /// [`Account::from_pickle`]. Empty is allowed.
    pub fn pickle<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        key: &PickleKey,
        associated_data: &[u8],
    ) -> Result<Vec<u8>> {
        seal(rng, PickleKind::Account, key, associated_data, &self.encode_pickle()?)
    }

    /// Opens and restores an account pickle sealed with `associated_data`
    /// ([`Error::AuthenticationFailed`] if the key or the associated data
    /// differs).
    pub fn from_pickle(pickle: &[u8], key: &PickleKey, associated_data: &[u8]) -> Result<Self> {
        Self::decode_pickle(&open(pickle, PickleKind::Account, key, associated_data)?)
    }
}

impl Session {
    pub(crate) fn encode_pickle(&self) -> Result<Zeroizing<Vec<u8>>> {
        // Everything but the skipped keys (72 bytes each) fits in 4 KiB:
        // identities 256, policy and pending start under 1.3 KiB, and at
        // most 4 own keys, 5 open and 16 closed chains (section 11.3).
        let len = bound(4096, self.skipped.len(), 72);
        let mut out = secret_buffer(len);
        out.extend_from_slice(&[self.version, self.suite.id(), matches!(self.role, Role::Responder).into()]);
        out.extend_from_slice(&self.local_identity.to_bytes());
        out.extend_from_slice(&self.peer_identity.to_bytes());
        out.extend_from_slice(&self.transcript);
        put_policy(&mut out, &self.policy)?;
        match &self.pending_start {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                put_bytes_u8(&mut out, &p.initiator_suites)?;
                put_u32(&mut out, p.signed_prekey_id);
                put_opt_u32(&mut out, p.one_time_prekey_id);
                out.extend_from_slice(&p.base_key);
                match &p.pq_ciphertext {
                    None => out.push(0),
                    Some(ct) => {
                        out.push(1);
                        out.extend_from_slice(ct);
                    }
                }
            }
        }
        match &self.start_base_key {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                out.extend_from_slice(k);
            }
        }
        put_key(&mut out, &self.send_root);
        put_u32(&mut out, self.next_send_epoch);
        match &self.sending {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_u32(&mut out, s.epoch);
                put_u32(&mut out, s.peer_epoch);
                put_key(&mut out, &s.ck);
                put_u32(&mut out, s.counter);
                put_u64(&mut out, s.started_at);
            }
        }
        put_u32(&mut out, self.prev_sent.count);
        out.extend_from_slice(&self.prev_sent.ratchet_key);
        put_u32(&mut out, self.prev_sent.peer_epoch);
        put_len(&mut out, self.own_keys.len())?;
        for k in &self.own_keys {
            put_u32(&mut out, k.epoch);
            out.extend_from_slice(k.secret.as_bytes());
        }
        put_u32(&mut out, self.peer_latest_epoch);
        out.extend_from_slice(&self.peer_latest_key);
        put_key(&mut out, &self.recv_root);
        put_u32(&mut out, self.next_recv_epoch);
        put_len(&mut out, self.receiving.len())?;
        for c in &self.receiving {
            put_u32(&mut out, c.epoch);
            out.extend_from_slice(&c.peer_key);
            put_key(&mut out, &c.ck);
            put_u32(&mut out, c.next);
            put_u32(&mut out, c.floor);
        }
        put_len(&mut out, self.finished.len())?;
        for c in &self.finished {
            put_u32(&mut out, c.epoch);
            put_u32(&mut out, c.floor);
            put_u32(&mut out, c.end);
        }
        put_len(&mut out, self.skipped.len())?;
        for k in &self.skipped {
            put_u32(&mut out, k.epoch);
            put_u32(&mut out, k.counter);
            out.extend_from_slice(&k.peer_key);
            put_key(&mut out, &k.secret);
        }
        put_u64(&mut out, self.last_activity);
        out.finish()
    }

    pub(crate) fn decode_pickle(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "pickle");
        let version = r.u8()?;
        let suite = Suite::from_id(r.u8()?)?;
        let role = if read_bool(&mut r)? { Role::Responder } else { Role::Initiator };
        // The pickle is authenticated; its identities were verified on arrival.
        let local_identity = IdentityPublic::from_trusted_bytes(r.take(IDENTITY_PUBLIC_LEN)?)?;
        let peer_identity = IdentityPublic::from_trusted_bytes(r.take(IDENTITY_PUBLIC_LEN)?)?;
        let transcript = r.array()?;
        let policy = read_policy(&mut r)?;
        let pending_start = if read_bool(&mut r)? {
            Some(PendingStart {
                initiator_suites: r.bytes_u8()?.to_vec(),
                signed_prekey_id: r.u32()?,
                one_time_prekey_id: read_opt_u32(&mut r)?,
                base_key: r.array()?,
                pq_ciphertext: if read_bool(&mut r)? {
                    Some(r.take(crate::pq::PQ_CIPHERTEXT_LEN)?.to_vec())
                } else {
                    None
                },
            })
        } else {
            None
        };
        let start_base_key = if read_bool(&mut r)? { Some(r.array()?) } else { None };
        let send_root = read_key(&mut r)?;
        let next_send_epoch = r.u32()?;
        let sending = if read_bool(&mut r)? {
            Some(SendChain {
                epoch: r.u32()?,
                peer_epoch: r.u32()?,
                ck: read_key(&mut r)?,
                counter: r.u32()?,
                started_at: r.u64()?,
            })
        } else {
            None
        };
        let prev_sent = PrevEpoch { count: r.u32()?, ratchet_key: r.array()?, peer_epoch: r.u32()? };
        let n = read_len(&mut r, MAX_OWN_RATCHET_KEYS)?;
        let mut own_keys = Vec::with_capacity(n);
        for _ in 0..n {
            let epoch = r.u32()?;
            let secret = read_secret(&mut r)?;
            let public = DhPublic::from(&secret).to_bytes();
            own_keys.push(OwnKey { epoch, secret: Box::new(secret), public });
        }
        let peer_latest_epoch = r.u32()?;
        let peer_latest_key = r.array()?;
        let recv_root = read_key(&mut r)?;
        let next_recv_epoch = r.u32()?;
        let n = read_len(&mut r, MAX_RECEIVING_CHAINS)?;
        let mut receiving = Vec::with_capacity(n);
        for _ in 0..n {
            receiving.push(RecvChain {
                epoch: r.u32()?,
                peer_key: r.array()?,
                ck: Box::new(read_key(&mut r)?),
                next: r.u32()?,
                floor: r.u32()?,
            });
        }
        let n = read_len(&mut r, MAX_FINISHED_CHAINS)?;
        let mut finished = VecDeque::with_capacity(n);
        for _ in 0..n {
            finished.push_back(FinishedChain { epoch: r.u32()?, floor: r.u32()?, end: r.u32()? });
        }
        let n = read_len(&mut r, usize::try_from(MAX_SKIPPED_TOTAL_CAP).unwrap_or(0))?;
        let mut skipped = VecDeque::with_capacity(n);
        for _ in 0..n {
            skipped.push_back(SkippedKey {
                epoch: r.u32()?,
                counter: r.u32()?,
                peer_key: r.array()?,
                secret: Box::new(read_key(&mut r)?),
            });
        }
        let last_activity = r.u64()?;
        r.finish()?;
        Ok(Session {
            version,
            suite,
            role,
            local_identity,
            peer_identity,
            transcript,
            policy,
            pending_start,
            start_base_key,
            send_root,
            next_send_epoch,
            sending,
            prev_sent,
            own_keys,
            peer_latest_epoch,
            peer_latest_key,
            recv_root,
            next_recv_epoch,
            receiving,
            finished,
            skipped,
            last_activity,
            restored: true,
            start_dh3: None,
            #[cfg(feature = "hazmat")]
            last_sent_keys: None,
        })
    }

    /// Serializes and seals the session, bound to `associated_data`: name
    /// what the pickle belongs to (at least the peer's identity, for example
    /// [`IdentityPublic::to_bytes`] of [`Session::peer_identity`], and the
    /// storage key), so that a pickle put in another peer's place does not
    /// restore. The same bytes must be given to [`Session::from_pickle`].
    pub fn pickle<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        key: &PickleKey,
        associated_data: &[u8],
    ) -> Result<Vec<u8>> {
        seal(rng, PickleKind::Session, key, associated_data, &self.encode_pickle()?)
    }

    /// Opens and restores a session pickle sealed with `associated_data`
    /// ([`Error::AuthenticationFailed`] if the key or the associated data
    /// differs).
    ///
    /// The pickle may be older than the session's real state (a backup, a
    /// rolled-back database). So that the restored session does not reuse
    /// chain positions its peer has already consumed, its next message
    /// starts a new sending epoch; the random per-message salt already
    /// guarantees that no key and nonce is ever used twice. If the lost part
    /// of the state had started an epoch that the peer already saw, the peer
    /// refuses the restored side's messages and the session must be started
    /// again.
    pub fn from_pickle(pickle: &[u8], key: &PickleKey, associated_data: &[u8]) -> Result<Self> {
        Self::decode_pickle(&open(pickle, PickleKind::Session, key, associated_data)?)
    }
}

/// Every state the public API can reach round-trips through its pickle:
/// random sequences of API calls on two accounts, their sessions and a
/// two-member group, with a pickle and restore of one of them at random
/// points; the restored object pickles to the same plaintext (the group's
/// own chain excepted: a restore replaces it) and the conversation goes on.
#[cfg(all(test, feature = "std"))]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod round_trip {
    use alloc::vec::Vec;

    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::{PickleKey, PickleKind, open, put_policy};
    use crate::envelope::Envelope;
    use crate::{Account, GroupSession, PrekeyBundle, Session, SessionPolicy, SymmetricKey};

    const T0: u64 = 1_700_000_000;
    const AD: &[u8] = b"round trip";

    #[derive(Clone, Debug)]
    enum Op {
        Rotate(bool),
        PublishOneTime(usize),
        Start { with_one_time: bool },
        Send { from_alice: bool, deliver: bool },
        DeliverQueued { to_alice: bool, index: usize },
        Wait(u64),
        GroupSend { from_alice: bool, deliver: bool },
        GroupRotate(bool),
        Pickle(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<bool>().prop_map(Op::Rotate),
            (0usize..4).prop_map(Op::PublishOneTime),
            any::<bool>().prop_map(|with_one_time| Op::Start { with_one_time }),
            (any::<bool>(), any::<bool>()).prop_map(|(from_alice, deliver)| Op::Send { from_alice, deliver }),
            (any::<bool>(), 0usize..8).prop_map(|(to_alice, index)| Op::DeliverQueued { to_alice, index }),
            (0u64..600).prop_map(Op::Wait),
            (any::<bool>(), any::<bool>()).prop_map(|(from_alice, deliver)| Op::GroupSend { from_alice, deliver }),
            any::<bool>().prop_map(Op::GroupRotate),
            (0u8..6).prop_map(Op::Pickle),
        ]
    }

    fn key() -> PickleKey {
        PickleKey::Key(SymmetricKey::from_bytes([9; 32]))
    }

    fn plain(kind: PickleKind, pickle: &[u8]) -> Vec<u8> {
        open(pickle, kind, &key(), AD).unwrap().to_vec()
    }

    /// A group plaintext with its own chain (signing seed, chain key,
    /// position) blanked out.
    fn group_plain(g: &GroupSession, pickle: &[u8]) -> Vec<u8> {
        let mut p = plain(PickleKind::Group, pickle);
        let mut policy = Vec::new();
        put_policy(&mut policy, &SessionPolicy::default()).unwrap();
        let at = 1 + g.group_id().len() + 1 + crate::identity::IDENTITY_PUBLIC_LEN + policy.len();
        p[at..at + 68].fill(0);
        p
    }

    /// Delivers a queued group message whose sender is now at chain
    /// generation `current`: a message of the current or the previous chain
    /// opens to its plaintext; an older chain was forgotten (a member keeps
    /// `MAX_GROUP_CHAINS_PER_MEMBER` chains per sender), which is
    /// `UnknownSender`. Anything else is reported.
    fn group_deliver(
        to: &mut GroupSession,
        (envelope, text, generation): (Vec<u8>, Vec<u8>, u32),
        current: u32,
    ) -> Result<(), alloc::string::String> {
        let got = to.decrypt(&envelope).map(|(_, pt)| pt);
        let kept = current - generation < crate::consts::MAX_GROUP_CHAINS_PER_MEMBER as u32;
        match (kept, got) {
            (true, Ok(pt)) if pt == text => Ok(()),
            (false, Err(crate::Error::UnknownSender)) => Ok(()),
            (kept, got) => Err(alloc::format!("generation {generation} of {current} (kept: {kept}): {got:?}")),
        }
    }

    struct World {
        rng: ChaCha20Rng,
        now: u64,
        policy: SessionPolicy,
        alice: Account,
        bob: Account,
        /// Alice's and Bob's sessions with each other, if started.
        sessions: Option<(Session, Session)>,
        /// Undelivered envelopes to Alice and to Bob, with their plaintexts.
        to_alice: Vec<(Vec<u8>, Vec<u8>)>,
        to_bob: Vec<(Vec<u8>, Vec<u8>)>,
        groups: (GroupSession, GroupSession),
        /// Undelivered group messages to Alice and to Bob: envelope,
        /// plaintext and the generation of the sender chain it was sealed
        /// under.
        group_to_alice: Vec<(Vec<u8>, Vec<u8>, u32)>,
        group_to_bob: Vec<(Vec<u8>, Vec<u8>, u32)>,
        /// How many times Alice's and Bob's own sender chains were replaced
        /// (a rotation, or a restore from a pickle).
        generations: (u32, u32),
        counter: u32,
    }

    impl World {
        fn new(seed: u64) -> Self {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let policy = SessionPolicy::default();
            let alice = Account::new(&mut rng, T0);
            let bob = Account::new(&mut rng, T0);
            let mut ga = GroupSession::new(&mut rng, b"g", &alice, &policy).unwrap();
            let mut gb = GroupSession::new(&mut rng, b"g", &bob, &policy).unwrap();
            ga.add_member(*bob.identity()).unwrap();
            gb.add_member(*alice.identity()).unwrap();
            ga.process_distribution(bob.identity(), &gb.distribution()).unwrap();
            gb.process_distribution(alice.identity(), &ga.distribution()).unwrap();
            Self {
                rng,
                now: T0,
                policy,
                alice,
                bob,
                sessions: None,
                to_alice: Vec::new(),
                to_bob: Vec::new(),
                groups: (ga, gb),
                group_to_alice: Vec::new(),
                group_to_bob: Vec::new(),
                generations: (0, 0),
                counter: 0,
            }
        }

        fn text(&mut self) -> Vec<u8> {
            self.counter += 1;
            self.counter.to_be_bytes().to_vec()
        }

        fn apply(&mut self, op: &Op) {
            let now = self.now;
            match *op {
                Op::Rotate(alice) => {
                    let account = if alice { &mut self.alice } else { &mut self.bob };
                    account.rotate_signed_prekey(&mut self.rng, now);
                }
                Op::PublishOneTime(n) => {
                    self.bob.generate_one_time_prekeys(&mut self.rng, n);
                }
                Op::Start { with_one_time } => {
                    let mut bundle = self.bob.bundle(&self.policy).unwrap();
                    if with_one_time {
                        let otk = self.bob.generate_one_time_prekeys(&mut self.rng, 1);
                        if let Some(otk) = otk.first() {
                            bundle = bundle.with_one_time_prekey(*otk).unwrap();
                        }
                    }
                    let bundle = PrekeyBundle::from_bytes(&bundle.to_bytes()).unwrap();
                    let mut a = Session::initiate(&mut self.rng, &mut self.alice, &bundle, &self.policy, now).unwrap();
                    let text = self.text();
                    let first = a.encrypt(&mut self.rng, now, &text).unwrap();
                    let Envelope::Prekey(m) = Envelope::from_bytes(&first).unwrap() else { panic!("prekey") };
                    let (b, got) = self.bob.accept(&self.policy, now, &m).unwrap();
                    assert_eq!(got, text);
                    self.sessions = Some((a, b));
                    self.to_alice.clear();
                    self.to_bob.clear();
                }
                Op::Send { from_alice, deliver } => {
                    let text = self.text();
                    let Some((a, b)) = self.sessions.as_mut() else { return };
                    let (from, to, queue) =
                        if from_alice { (a, b, &mut self.to_bob) } else { (b, a, &mut self.to_alice) };
                    let envelope = from.encrypt(&mut self.rng, now, &text).unwrap();
                    if deliver {
                        assert_eq!(to.decrypt(now, &envelope).unwrap(), text);
                    } else if queue.len() < 8 {
                        queue.push((envelope, text));
                    }
                }
                Op::DeliverQueued { to_alice, index } => {
                    let Some((a, b)) = self.sessions.as_mut() else { return };
                    let (to, queue) = if to_alice { (a, &mut self.to_alice) } else { (b, &mut self.to_bob) };
                    if index < queue.len() {
                        let (envelope, text) = queue.remove(index);
                        assert_eq!(to.decrypt(now, &envelope).unwrap(), text);
                    }
                }
                Op::Wait(s) => self.now += s,
                Op::GroupSend { from_alice, deliver } => {
                    let text = self.text();
                    let (ga, gb) = &mut self.groups;
                    let (from, to, queue, generation) = if from_alice {
                        (ga, gb, &mut self.group_to_bob, self.generations.0)
                    } else {
                        (gb, ga, &mut self.group_to_alice, self.generations.1)
                    };
                    let envelope = from.encrypt(&mut self.rng, &text).unwrap();
                    if deliver {
                        assert_eq!(to.decrypt(&envelope).unwrap().1, text);
                    } else if queue.len() < 8 {
                        queue.push((envelope, text, generation));
                    } else {
                        let queued = queue.remove(0);
                        group_deliver(to, queued, generation).unwrap();
                    }
                }
                Op::GroupRotate(alice) => {
                    let (ga, gb) = &mut self.groups;
                    if alice {
                        let skd = ga.rotate(&mut self.rng, &self.alice).unwrap();
                        gb.process_distribution(self.alice.identity(), &skd).unwrap();
                        self.generations.0 += 1;
                    } else {
                        let skd = gb.rotate(&mut self.rng, &self.bob).unwrap();
                        ga.process_distribution(self.bob.identity(), &skd).unwrap();
                        self.generations.1 += 1;
                    }
                }
                Op::Pickle(which) => self.round_trip(which),
            }
        }

        fn round_trip(&mut self, which: u8) {
            let rng = &mut self.rng;
            match which {
                0 | 1 => {
                    let account = if which == 0 { &mut self.alice } else { &mut self.bob };
                    let pickle = account.pickle(rng, &key(), AD).unwrap();
                    let restored = Account::from_pickle(&pickle, &key(), AD).unwrap();
                    let again = restored.pickle(rng, &key(), AD).unwrap();
                    assert_eq!(plain(PickleKind::Account, &pickle), plain(PickleKind::Account, &again));
                    *account = restored;
                }
                2 | 3 => {
                    let Some((a, b)) = self.sessions.as_mut() else { return };
                    let session = if which == 2 { a } else { b };
                    let pickle = session.pickle(rng, &key(), AD).unwrap();
                    let restored = Session::from_pickle(&pickle, &key(), AD).unwrap();
                    let again = restored.pickle(rng, &key(), AD).unwrap();
                    assert_eq!(plain(PickleKind::Session, &pickle), plain(PickleKind::Session, &again));
                    *session = restored;
                }
                _ => {
                    let (ga, gb) = &mut self.groups;
                    let (view, own, other, other_identity) = if which == 4 {
                        (ga, &self.alice, gb, self.alice.identity())
                    } else {
                        (gb, &self.bob, ga, self.bob.identity())
                    };
                    let pickle = view.pickle(rng, &key(), AD).unwrap();
                    let mut restored = GroupSession::from_pickle(rng, &pickle, &key(), AD, own).unwrap();
                    let again = restored.pickle(rng, &key(), AD).unwrap();
                    assert_eq!(group_plain(view, &pickle), group_plain(&restored, &again));
                    // The restored view's new chain goes to the other member.
                    other.process_distribution(other_identity, &restored.distribution()).unwrap();
                    restored.mark_distributed();
                    *view = restored;
                    if which == 4 {
                        self.generations.0 += 1;
                    } else {
                        self.generations.1 += 1;
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn every_reachable_state_round_trips(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..48)) {
            let mut world = World::new(seed);
            for op in ops.iter().chain(&[Op::Pickle(0), Op::Pickle(1), Op::Pickle(2), Op::Pickle(3), Op::Pickle(4), Op::Pickle(5)]) {
                world.apply(op);
            }
            // Whatever was still in flight opens after the final restores.
            let now = world.now;
            if let Some((a, b)) = world.sessions.as_mut() {
                for (envelope, text) in world.to_alice.drain(..) {
                    prop_assert_eq!(a.decrypt(now, &envelope).unwrap(), text);
                }
                for (envelope, text) in world.to_bob.drain(..) {
                    prop_assert_eq!(b.decrypt(now, &envelope).unwrap(), text);
                }
            }
            let (ga, gb) = &mut world.groups;
            let (gen_alice, gen_bob) = world.generations;
            for queued in world.group_to_alice.drain(..) {
                prop_assert_eq!(group_deliver(ga, queued, gen_bob), Ok(()));
            }
            for queued in world.group_to_bob.drain(..) {
                prop_assert_eq!(group_deliver(gb, queued, gen_alice), Ok(()));
            }
        }
    }

    /// The account plaintext of an account rotated past the old decoder's
    /// limit (1024 signed prekeys) still decodes.
    #[test]
    fn many_rotations_round_trip() {
        let mut world = World::new(1);
        for _ in 0..1100 {
            world.apply(&Op::Rotate(false));
        }
        world.round_trip(1);
        assert_eq!(world.bob.signed_prekeys.len(), crate::consts::MAX_SIGNED_PREKEYS);
    }
}
