//! # sealpost-ffi
//!
//! Sealpost's protocol core as uniffi objects, from which Kotlin, Swift and
//! Python bindings are generated (library mode, no UDL). The wrapper is
//! thin: every call locks the object's state, converts arguments, calls the
//! core once and converts the result.
//!
//! - Objects live behind `Arc` and are `Send + Sync`; each keeps its core
//!   state in a `Mutex`, so calls on one object from several threads are
//!   serialized. A call that involves two objects (a room and an account)
//!   locks the room, session or healer first and the account last, so
//!   two calls can never wait on each other.
//! - Randomness comes from the operating system. Every call that needs the
//!   time takes an optional `now` (Unix seconds); without it, the system
//!   clock is read.
//! - Every failure is one [`SealpostError`] whose variant is a stable code.
//!   Nothing here panics on any input; uniffi turns an (unexpected) panic
//!   into an internal error rather than unwinding into the caller.
//! - There is no call that signs caller-chosen bytes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use sealpost::EnvelopeType;
use sealpost::Incoming as CoreIncoming;
use sealpost::{Envelope, IdentityPublic};
use zeroize::Zeroize;

mod error;
mod relay;

pub use error::{ErrorCode, SealpostError};
pub use relay::{
    AnswerStatus, FetchedBundle, HandleBound, HandleClaimed, HandleFound, MessagePage, MqttEnrolment, MqttProperty,
    OpenedSession, PushFrame, RelayDelivered, RelayError, RelayRequest, RelaySession, RelaySigner, ack_frame,
    mqtt_answer_status, parse_ack, parse_claim_handle, parse_deposit, parse_enrol_mqtt, parse_fetch_bundle,
    parse_lookup_handle, parse_open_session, parse_publish_bundle, parse_pull, parse_push_frame, parse_upload_prekeys,
    parse_verify_handle, ws_auth_query,
};

uniffi::setup_scaffolding!("sealpost");

type Result<T, E = SealpostError> = std::result::Result<T, E>;

fn clock(now: Option<u64>) -> Result<u64> {
    match now {
        Some(t) => Ok(t),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| SealpostError::InvalidArgument),
    }
}

/// A poisoned lock means the core panicked inside an earlier call (it
/// should not); the state may be half-updated, so it is not used again.
fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| SealpostError::Internal)
}

fn identity(bytes: &[u8]) -> Result<IdentityPublic> {
    Ok(IdentityPublic::from_bytes(bytes)?)
}

fn rng() -> impl rand_core::CryptoRng {
    sealpost::os_rng()
}

// ---------------------------------------------------------------------------
// Policy

/// A cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Suite {
    /// AES-256-GCM (id 1).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (id 2).
    ChaCha20Poly1305,
    /// XChaCha20-Poly1305 (id 3).
    XChaCha20Poly1305,
    /// AES-256-CBC with HMAC-SHA-256 (id 4), off by default.
    Aes256CbcHmacSha256,
    /// Twofish-256-CBC with HMAC-SHA-256 (id 5), off by default.
    Twofish256CbcHmacSha256,
}

impl From<Suite> for sealpost::Suite {
    fn from(s: Suite) -> Self {
        match s {
            Suite::Aes256Gcm => Self::Aes256Gcm,
            Suite::ChaCha20Poly1305 => Self::ChaCha20Poly1305,
            Suite::XChaCha20Poly1305 => Self::XChaCha20Poly1305,
            Suite::Aes256CbcHmacSha256 => Self::Aes256CbcHmacSha256,
            Suite::Twofish256CbcHmacSha256 => Self::Twofish256CbcHmacSha256,
        }
    }
}

impl TryFrom<sealpost::Suite> for Suite {
    type Error = SealpostError;
    fn try_from(s: sealpost::Suite) -> Result<Self> {
        [
            Suite::Aes256Gcm,
            Suite::ChaCha20Poly1305,
            Suite::XChaCha20Poly1305,
            Suite::Aes256CbcHmacSha256,
            Suite::Twofish256CbcHmacSha256,
        ]
        .into_iter()
        .find(|ours| sealpost::Suite::from(*ours) == s)
        .ok_or(SealpostError::UnsupportedSuite)
    }
}

/// Length-hiding padding of plaintexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Padding {
    /// Only the one-byte marker: lengths are visible.
    None,
    /// Padmé (the default): at most 12% overhead.
    Padme,
    /// Round up to a multiple of `size` bytes.
    Block {
        /// The block size.
        size: u16,
    },
}

/// What a party accepts and how its sessions behave. Get the core's
/// defaults from [`default_policy`] and change fields from there.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionPolicy {
    /// Allowed suites, most preferred first.
    pub suites: Vec<Suite>,
    /// The lowest protocol version accepted (2: hybrid post-quantum only).
    pub min_version: u8,
    /// A new ratchet key after this many messages in one chain.
    pub max_messages_per_chain: u32,
    /// A new ratchet key after this many seconds.
    pub rotate_after: u64,
    /// An idle session refuses to encrypt after this many seconds.
    pub expire_after: u64,
    /// How many message keys may be skipped within one chain.
    pub max_skip_per_chain: u32,
    /// How many skipped message keys are kept in total.
    pub max_skipped_total: u32,
    /// Padding of plaintexts before sealing.
    pub padding: Padding,
}

impl SessionPolicy {
    fn to_core(&self) -> sealpost::SessionPolicy {
        sealpost::SessionPolicy {
            suites: self.suites.iter().copied().map(Into::into).collect(),
            min_version: self.min_version,
            max_messages_per_chain: self.max_messages_per_chain,
            rotate_after: self.rotate_after,
            expire_after: self.expire_after,
            max_skip_per_chain: self.max_skip_per_chain,
            max_skipped_total: self.max_skipped_total,
            padding: match self.padding {
                Padding::None => sealpost::Padding::None,
                Padding::Padme => sealpost::Padding::Padme,
                Padding::Block { size } => sealpost::Padding::Block(size),
            },
        }
    }

    fn from_core(p: &sealpost::SessionPolicy) -> Result<Self> {
        Ok(Self {
            suites: p.suites.iter().copied().map(Suite::try_from).collect::<Result<_>>()?,
            min_version: p.min_version,
            max_messages_per_chain: p.max_messages_per_chain,
            rotate_after: p.rotate_after,
            expire_after: p.expire_after,
            max_skip_per_chain: p.max_skip_per_chain,
            max_skipped_total: p.max_skipped_total,
            padding: match p.padding {
                sealpost::Padding::None => Padding::None,
                sealpost::Padding::Padme => Padding::Padme,
                sealpost::Padding::Block(size) => Padding::Block { size },
            },
        })
    }
}

/// The core's default policy (the suite order depends on this CPU).
#[uniffi::export]
pub fn default_policy() -> Result<SessionPolicy> {
    SessionPolicy::from_core(&sealpost::SessionPolicy::default())
}

// ---------------------------------------------------------------------------
// Pickle keys and safety numbers

/// The secret a pickle is sealed under: a 32-byte key (keep it in the
/// Android Keystore or the iOS Keychain) or a passphrase.
#[derive(uniffi::Object)]
pub struct PickleKey {
    inner: sealpost::PickleKey,
}

#[uniffi::export]
impl PickleKey {
    /// A 32-byte key ([`SealpostError::InvalidArgument`] for another length).
    #[uniffi::constructor]
    pub fn from_key(mut key: Vec<u8>) -> Result<Arc<Self>> {
        let bytes: Result<[u8; 32]> = key.as_slice().try_into().map_err(|_| SealpostError::InvalidArgument);
        key.zeroize();
        let mut bytes = bytes?;
        let inner = sealpost::PickleKey::Key(sealpost::SymmetricKey::from_bytes(bytes));
        bytes.zeroize();
        Ok(Arc::new(Self { inner }))
    }

    /// A passphrase (stretched with PBKDF2 when sealing and opening).
    #[uniffi::constructor]
    pub fn from_passphrase(mut passphrase: String) -> Arc<Self> {
        let inner = sealpost::PickleKey::passphrase(passphrase.as_bytes());
        passphrase.zeroize();
        Arc::new(Self { inner })
    }
}

/// The number two people compare to rule out a man in the middle.
#[derive(uniffi::Object)]
pub struct SafetyNumber {
    inner: sealpost::SafetyNumber,
}

#[uniffi::export]
impl SafetyNumber {
    /// The safety number of two identities (the same in either order).
    #[uniffi::constructor]
    pub fn new(a: Vec<u8>, b: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self { inner: sealpost::SafetyNumber::new(&identity(&a)?, &identity(&b)?) }))
    }

    /// The 60 digits.
    pub fn digits(&self) -> String {
        self.inner.digits()
    }

    /// Whether two safety numbers are the same.
    pub fn matches(&self, other: Arc<SafetyNumber>) -> bool {
        self.inner == other.inner
    }
}

// ---------------------------------------------------------------------------
// Accounts and bundles

/// A user's long-term identity and prekeys. Pickle it after every call
/// that changes it (accepting a session, prekey generation, rotation).
#[derive(uniffi::Object)]
pub struct Account {
    inner: Mutex<sealpost::Account>,
}

/// A new session accepted from its first message, with that message.
#[derive(uniffi::Record)]
pub struct AcceptedSession {
    /// The responder's session.
    pub session: Arc<Session>,
    /// The first message's plaintext.
    pub plaintext: Vec<u8>,
}

#[uniffi::export]
impl Account {
    /// A fresh account (identity and signed prekey).
    #[uniffi::constructor(default(now = None))]
    pub fn new(now: Option<u64>) -> Result<Arc<Self>> {
        let now = clock(now)?;
        Ok(Arc::new(Self { inner: Mutex::new(sealpost::Account::new(&mut rng(), now)) }))
    }

    /// Restores an account pickle sealed with the same key and associated data.
    #[uniffi::constructor]
    pub fn from_pickle(pickle: Vec<u8>, key: Arc<PickleKey>, associated_data: Vec<u8>) -> Result<Arc<Self>> {
        let inner = sealpost::Account::from_pickle(&pickle, &key.inner, &associated_data)?;
        Ok(Arc::new(Self { inner: Mutex::new(inner) }))
    }

    /// Seals the account under `key`, bound to `associated_data` (for
    /// example the storage key).
    pub fn pickle(&self, key: Arc<PickleKey>, associated_data: Vec<u8>) -> Result<Vec<u8>> {
        Ok(lock(&self.inner)?.pickle(&mut rng(), &key.inner, &associated_data)?)
    }

    /// The capability that signs relay requests for this account (and
    /// nothing else); hand it to the relay client code.
    pub fn relay_signer(&self) -> Result<Arc<RelaySigner>> {
        Ok(Arc::new(RelaySigner { inner: lock(&self.inner)?.relay_signer() }))
    }

    /// The public identity (its bytes).
    pub fn identity(&self) -> Result<Vec<u8>> {
        Ok(lock(&self.inner)?.identity().to_bytes().to_vec())
    }

    /// The signed bundle to publish (without a one-time prekey; the relay
    /// attaches one per fetch).
    pub fn bundle(&self, policy: SessionPolicy) -> Result<Arc<PrekeyBundle>> {
        Ok(Arc::new(PrekeyBundle { inner: lock(&self.inner)?.bundle(&policy.to_core())? }))
    }

    /// Makes up to `count` one-time prekeys and returns their signed public
    /// halves (bytes) for upload.
    pub fn generate_one_time_prekeys(&self, count: u32) -> Result<Vec<Vec<u8>>> {
        let count = usize::try_from(count).map_err(|_| SealpostError::InvalidArgument)?;
        let keys = lock(&self.inner)?.generate_one_time_prekeys(&mut rng(), count);
        Ok(keys.iter().map(|k| k.to_bytes().to_vec()).collect())
    }

    /// How many one-time prekeys are unused.
    pub fn one_time_prekey_count(&self) -> Result<u64> {
        u64::try_from(lock(&self.inner)?.one_time_prekey_count()).map_err(|_| SealpostError::Internal)
    }

    /// Replaces the signed prekey (the old one is kept a while).
    #[uniffi::method(default(now = None))]
    pub fn rotate_signed_prekey(&self, now: Option<u64>) -> Result<()> {
        let now = clock(now)?;
        lock(&self.inner)?.rotate_signed_prekey(&mut rng(), now);
        Ok(())
    }

    /// Rotates the signed prekey when due and forgets old ones; true when
    /// a new bundle should be published.
    #[uniffi::method(default(now = None))]
    pub fn maintain(&self, now: Option<u64>) -> Result<bool> {
        let now = clock(now)?;
        Ok(lock(&self.inner)?.maintain(&mut rng(), now))
    }

    /// Accepts a session from its first envelope (a prekey message).
    #[uniffi::method(default(now = None))]
    pub fn accept(&self, policy: SessionPolicy, envelope: Vec<u8>, now: Option<u64>) -> Result<AcceptedSession> {
        let now = clock(now)?;
        let Envelope::Prekey(first) = Envelope::from_bytes(&envelope)? else {
            return Err(SealpostError::Malformed);
        };
        let (session, plaintext) = lock(&self.inner)?.accept(&policy.to_core(), now, &first)?;
        Ok(AcceptedSession { session: Arc::new(Session::wrap(session)), plaintext })
    }
}

/// A peer's published bundle (immutable).
#[derive(uniffi::Object)]
pub struct PrekeyBundle {
    inner: sealpost::PrekeyBundle,
}

#[uniffi::export]
impl PrekeyBundle {
    /// Decodes and verifies a bundle from the wire.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self { inner: sealpost::PrekeyBundle::from_bytes(&bytes)? }))
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    /// The owner's identity (its bytes).
    pub fn identity(&self) -> Vec<u8> {
        self.inner.identity().to_bytes().to_vec()
    }

    /// This bundle with a one-time prekey attached (bytes from
    /// [`Account::generate_one_time_prekeys`]; its signature is checked).
    pub fn with_one_time_prekey(&self, one_time_prekey: Vec<u8>) -> Result<Arc<PrekeyBundle>> {
        let otk = sealpost::OneTimePrekey::from_bytes(&one_time_prekey)?;
        Ok(Arc::new(Self { inner: self.inner.clone().with_one_time_prekey(otk)? }))
    }

    /// Whether a one-time prekey is attached.
    pub fn has_one_time_prekey(&self) -> bool {
        self.inner.one_time_prekey().is_some()
    }
}

// ---------------------------------------------------------------------------
// Pairwise sessions

/// A pairwise session. Pickle it after every encrypt and decrypt.
#[derive(uniffi::Object)]
pub struct Session {
    /// `None` once the session was handed to a [`Room`].
    inner: Mutex<Option<sealpost::Session>>,
}

impl Session {
    fn wrap(s: sealpost::Session) -> Self {
        Self { inner: Mutex::new(Some(s)) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut sealpost::Session) -> Result<T>) -> Result<T> {
        lock(&self.inner)?.as_mut().map_or(Err(SealpostError::InvalidArgument), f)
    }
}

#[uniffi::export]
impl Session {
    /// Starts a session with the owner of `bundle` (who may be offline).
    #[uniffi::constructor(default(now = None))]
    pub fn initiate(
        account: Arc<Account>,
        bundle: Arc<PrekeyBundle>,
        policy: SessionPolicy,
        now: Option<u64>,
    ) -> Result<Arc<Self>> {
        let now = clock(now)?;
        let mut account = lock(&account.inner)?;
        let s = sealpost::Session::initiate(&mut rng(), &mut account, &bundle.inner, &policy.to_core(), now)?;
        Ok(Arc::new(Self::wrap(s)))
    }

    /// Restores a session pickle sealed with the same key and associated data.
    #[uniffi::constructor]
    pub fn from_pickle(pickle: Vec<u8>, key: Arc<PickleKey>, associated_data: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self::wrap(sealpost::Session::from_pickle(&pickle, &key.inner, &associated_data)?)))
    }

    /// Seals the session, bound to `associated_data` (name at least the
    /// peer's identity and the storage key).
    pub fn pickle(&self, key: Arc<PickleKey>, associated_data: Vec<u8>) -> Result<Vec<u8>> {
        self.with(|s| Ok(s.pickle(&mut rng(), &key.inner, &associated_data)?))
    }

    /// Encrypts `plaintext` into an envelope for the peer.
    #[uniffi::method(default(now = None))]
    pub fn encrypt(&self, plaintext: Vec<u8>, now: Option<u64>) -> Result<Vec<u8>> {
        let now = clock(now)?;
        self.with(|s| Ok(s.encrypt(&mut rng(), now, &plaintext)?))
    }

    /// Decrypts an envelope from the peer.
    #[uniffi::method(default(now = None))]
    pub fn decrypt(&self, envelope: Vec<u8>, now: Option<u64>) -> Result<Vec<u8>> {
        let now = clock(now)?;
        self.with(|s| Ok(s.decrypt(now, &envelope)?))
    }

    /// The session id (32 bytes), the same on both sides.
    pub fn id(&self) -> Result<Vec<u8>> {
        self.with(|s| Ok(s.id().to_vec()))
    }

    /// The peer's identity (its bytes).
    pub fn peer_identity(&self) -> Result<Vec<u8>> {
        self.with(|s| Ok(s.peer_identity().to_bytes().to_vec()))
    }

    /// The safety number of the two identities.
    pub fn safety_number(&self) -> Result<Arc<SafetyNumber>> {
        self.with(|s| Ok(Arc::new(SafetyNumber { inner: s.safety_number() })))
    }

    /// Whether the peer has not answered yet (messages are prekey messages).
    pub fn is_awaiting_reply(&self) -> Result<bool> {
        self.with(|s| Ok(s.is_awaiting_reply()))
    }
}

/// What an envelope is, from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EnvelopeKind {
    /// A session's first messages: give it to [`Account::accept`] if no
    /// session exists yet.
    Prekey,
    /// A message of an established session.
    Ratchet,
    /// A group message.
    Group,
    /// A sender key (only ever inside a pairwise session).
    SenderKeyDistribution,
}

/// The kind of an envelope ([`SealpostError::Malformed`] if it is none).
#[uniffi::export]
pub fn envelope_kind(envelope: Vec<u8>) -> Result<EnvelopeKind> {
    Ok(match Envelope::from_bytes(&envelope)?.kind() {
        EnvelopeType::Prekey => EnvelopeKind::Prekey,
        EnvelopeType::Ratchet => EnvelopeKind::Ratchet,
        EnvelopeType::Group => EnvelopeKind::Group,
        EnvelopeType::SenderKeyDistribution => EnvelopeKind::SenderKeyDistribution,
        _ => return Err(SealpostError::UnsupportedVersion),
    })
}

// ---------------------------------------------------------------------------
// Rooms

/// An envelope to send: to one member, or (`recipient` empty) to all.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Outgoing {
    /// The member's identity, or `None` for a broadcast.
    pub recipient: Option<Vec<u8>>,
    /// The envelope.
    pub envelope: Vec<u8>,
}

impl From<sealpost::Outgoing> for Outgoing {
    fn from(o: sealpost::Outgoing) -> Self {
        Self { recipient: o.recipient.map(|r| r.to_bytes().to_vec()), envelope: o.envelope }
    }
}

/// What a received room envelope was.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Incoming {
    /// A message to everyone.
    Broadcast {
        /// The sender's identity.
        from: Vec<u8>,
        /// The text.
        text: Vec<u8>,
    },
    /// A message to this member only.
    Direct {
        /// The sender's identity.
        from: Vec<u8>,
        /// The text.
        text: Vec<u8>,
    },
    /// The sender's new group key (nothing to show).
    KeyUpdate {
        /// The sender's identity.
        from: Vec<u8>,
    },
}

impl TryFrom<CoreIncoming> for Incoming {
    type Error = SealpostError;
    #[allow(unreachable_patterns)] // The core enum is non_exhaustive.
    fn try_from(i: CoreIncoming) -> Result<Self> {
        Ok(match i {
            CoreIncoming::Broadcast { from, text } => Self::Broadcast { from: from.to_bytes().to_vec(), text },
            CoreIncoming::Direct { from, text } => Self::Direct { from: from.to_bytes().to_vec(), text },
            CoreIncoming::KeyUpdate { from } => Self::KeyUpdate { from: from.to_bytes().to_vec() },
            _ => return Err(SealpostError::Internal),
        })
    }
}

/// A room's first envelope from a new member, accepted.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoomAccepted {
    /// What the envelope carried.
    pub incoming: Incoming,
    /// This member's sender key, to send back.
    pub outgoing: Outgoing,
}

/// A group chat: a sender-key group plus a pairwise session per member.
#[derive(uniffi::Object)]
pub struct Room {
    inner: Mutex<sealpost::Room>,
}

#[uniffi::export]
impl Room {
    /// A new room `group_id` for `account`.
    #[uniffi::constructor]
    pub fn new(group_id: Vec<u8>, account: Arc<Account>, policy: SessionPolicy) -> Result<Arc<Self>> {
        let account = lock(&account.inner)?;
        let room = sealpost::Room::new(&mut rng(), &group_id, &account, &policy.to_core())?;
        Ok(Arc::new(Self { inner: Mutex::new(room) }))
    }

    /// Adds the peer of `session` as a member; the session moves into the
    /// room (using `session` afterwards fails with `InvalidArgument`).
    /// Returns this member's sender key for the new member.
    #[uniffi::method(default(now = None))]
    pub fn add_member(&self, session: Arc<Session>, now: Option<u64>) -> Result<Outgoing> {
        let now = clock(now)?;
        let mut room = lock(&self.inner)?;
        let s = lock(&session.inner)?.take().ok_or(SealpostError::InvalidArgument)?;
        Ok(room.add_member(&mut rng(), now, s)?.into())
    }

    /// Accepts a new member's first envelope (a prekey message).
    #[uniffi::method(default(now = None))]
    pub fn accept(
        &self,
        account: Arc<Account>,
        policy: SessionPolicy,
        envelope: Vec<u8>,
        now: Option<u64>,
    ) -> Result<RoomAccepted> {
        let now = clock(now)?;
        let Envelope::Prekey(first) = Envelope::from_bytes(&envelope)? else {
            return Err(SealpostError::Malformed);
        };
        let mut room = lock(&self.inner)?;
        let mut account = lock(&account.inner)?;
        let (incoming, outgoing) = room.accept(&mut rng(), now, &mut account, &policy.to_core(), &first)?;
        Ok(RoomAccepted { incoming: incoming.try_into()?, outgoing: outgoing.into() })
    }

    /// Removes `member` and re-keys: send each envelope to its recipient.
    #[uniffi::method(default(now = None))]
    pub fn remove_member(&self, account: Arc<Account>, member: Vec<u8>, now: Option<u64>) -> Result<Vec<Outgoing>> {
        let now = clock(now)?;
        let member = identity(&member)?;
        let mut room = lock(&self.inner)?;
        let account = lock(&account.inner)?;
        Ok(room.remove_member(&mut rng(), now, &account, &member)?.into_iter().map(Into::into).collect())
    }

    /// A message to every member (one envelope).
    pub fn broadcast(&self, text: Vec<u8>) -> Result<Outgoing> {
        Ok(lock(&self.inner)?.broadcast(&mut rng(), &text)?.into())
    }

    /// A message to one member only.
    #[uniffi::method(default(now = None))]
    pub fn direct(&self, to: Vec<u8>, text: Vec<u8>, now: Option<u64>) -> Result<Outgoing> {
        let now = clock(now)?;
        let to = identity(&to)?;
        Ok(lock(&self.inner)?.direct(&mut rng(), now, &to, &text)?.into())
    }

    /// Opens an envelope that `sender` (the identity the relay says sent
    /// it) delivered in this room.
    #[uniffi::method(default(now = None))]
    pub fn receive(&self, sender: Vec<u8>, envelope: Vec<u8>, now: Option<u64>) -> Result<Incoming> {
        let now = clock(now)?;
        let sender = identity(&sender)?;
        lock(&self.inner)?.receive(now, sender.signing_key(), &envelope)?.try_into()
    }

    /// The members' identities (not this account's own).
    pub fn members(&self) -> Result<Vec<Vec<u8>>> {
        Ok(lock(&self.inner)?.members().map(|m| m.to_bytes().to_vec()).collect())
    }

    /// Restores a room pickle of `account`, sealed with the same key and
    /// associated data. The restored room starts a new sender chain: call
    /// [`Room::redistribute`] and send what it returns before broadcasting.
    #[uniffi::constructor]
    pub fn from_pickle(
        pickle: Vec<u8>,
        key: Arc<PickleKey>,
        associated_data: Vec<u8>,
        account: Arc<Account>,
    ) -> Result<Arc<Self>> {
        let account = lock(&account.inner)?;
        let room = sealpost::Room::from_pickle(&mut rng(), &pickle, &key.inner, &associated_data, &account)?;
        Ok(Arc::new(Self { inner: Mutex::new(room) }))
    }

    /// Seals the room (group session and pairwise sessions) under `key`,
    /// bound to `associated_data` (for example the group id).
    pub fn pickle(&self, key: Arc<PickleKey>, associated_data: Vec<u8>) -> Result<Vec<u8>> {
        Ok(lock(&self.inner)?.pickle(&mut rng(), &key.inner, &associated_data)?)
    }

    /// After a restore: this member's new sender key for every member
    /// (send each envelope to its recipient); empty when nothing is due.
    #[uniffi::method(default(now = None))]
    pub fn redistribute(&self, now: Option<u64>) -> Result<Vec<Outgoing>> {
        let now = clock(now)?;
        Ok(lock(&self.inner)?.redistribute(&mut rng(), now)?.into_iter().map(Into::into).collect())
    }
}

// ---------------------------------------------------------------------------
// Session reset

/// Rate limits and replay memory for session resets, one per account.
#[derive(uniffi::Object)]
pub struct Healer {
    inner: Mutex<sealpost::Healer>,
}

#[uniffi::export]
impl Healer {
    /// A healer allowing one reset per peer per `min_interval` seconds
    /// (the core's default without it).
    #[uniffi::constructor(default(min_interval = None))]
    pub fn new(min_interval: Option<u64>) -> Arc<Self> {
        let inner = min_interval.map_or_else(sealpost::Healer::default, sealpost::Healer::new);
        Arc::new(Self { inner: Mutex::new(inner) })
    }

    /// Restores a healer pickle sealed with the same key and associated
    /// data: it still refuses every reset the pickled one had accepted.
    #[uniffi::constructor]
    pub fn from_pickle(pickle: Vec<u8>, key: Arc<PickleKey>, associated_data: Vec<u8>) -> Result<Arc<Self>> {
        let inner = sealpost::Healer::from_pickle(&pickle, &key.inner, &associated_data)?;
        Ok(Arc::new(Self { inner: Mutex::new(inner) }))
    }

    /// Seals the healer's replay and rate memory under `key`, bound to
    /// `associated_data`; keep it with the account's pickle.
    pub fn pickle(&self, key: Arc<PickleKey>, associated_data: Vec<u8>) -> Result<Vec<u8>> {
        Ok(lock(&self.inner)?.pickle(&mut rng(), &key.inner, &associated_data)?)
    }

    /// After decrypting a message from `peer` failed with `error`: a
    /// signed reset request to send back to `peer`, or `None` when the
    /// error does not mean diverged state or a request went out recently.
    #[uniffi::method(default(now = None))]
    pub fn on_decrypt_failure(
        &self,
        account: Arc<Account>,
        peer: Vec<u8>,
        session_id: Option<Vec<u8>>,
        error: ErrorCode,
        now: Option<u64>,
    ) -> Result<Option<Vec<u8>>> {
        let now = clock(now)?;
        let peer = identity(&peer)?;
        let session_id = session_id
            .map(|id| <[u8; 32]>::try_from(id.as_slice()).map_err(|_| SealpostError::InvalidArgument))
            .transpose()?;
        let Some(error) = error.to_core() else { return Ok(None) };
        let mut healer = lock(&self.inner)?;
        let account = lock(&account.inner)?;
        Ok(healer.on_decrypt_failure(&mut rng(), &account, &peer, session_id, &error, now))
    }

    /// Checks a reset request received from `expected_peer` by `account`,
    /// whose current session with that peer has id `current_session`
    /// (`None` if there is none). A request for another recipient or
    /// another session is `Misdirected`.
    ///
    /// When the outcome's `renew` is true, start a new session with the
    /// peer from its bundle; when it is false, the peer renews (both sides
    /// asked at once and its request lost the tie-break) and this side
    /// waits for its first message.
    #[uniffi::method(default(now = None))]
    pub fn accept(
        &self,
        request: Vec<u8>,
        account: Arc<Account>,
        expected_peer: Vec<u8>,
        current_session: Option<Vec<u8>>,
        now: Option<u64>,
    ) -> Result<HealOutcome> {
        let now = clock(now)?;
        let peer = identity(&expected_peer)?;
        let current = current_session
            .map(|id| <[u8; 32]>::try_from(id.as_slice()).map_err(|_| SealpostError::InvalidArgument))
            .transpose()?;
        let own = *lock(&account.inner)?.identity();
        match lock(&self.inner)?.accept(&request, &own, &peer, current, now)? {
            sealpost::HealEvent::Renewed { peer, crossed } => {
                Ok(HealOutcome { peer: peer.to_bytes().to_vec(), renew: true, crossed })
            }
            sealpost::HealEvent::PeerRenews { peer } => {
                Ok(HealOutcome { peer: peer.to_bytes().to_vec(), renew: false, crossed: true })
            }
            #[allow(unreachable_patterns)] // non_exhaustive
            _ => Err(SealpostError::Internal),
        }
    }
}

/// What an accepted session reset asks of this side.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct HealOutcome {
    /// The peer's identity (128-byte encoding).
    pub peer: Vec<u8>,
    /// Whether this side starts the new session (else the peer does).
    pub renew: bool,
    /// Whether both sides had asked at once.
    pub crossed: bool,
}

/// Whether `bytes` is a session reset request (to hand to [`Healer::accept`]).
#[uniffi::export]
pub fn is_session_reset(bytes: Vec<u8>) -> bool {
    sealpost::is_session_reset(&bytes)
}

/// Whether a decryption error means the two sides' states diverged.
#[uniffi::export]
pub fn suggests_divergence(error: ErrorCode) -> bool {
    error.to_core().is_some_and(|e| sealpost::suggests_divergence(&e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn objects_are_send_and_sync() {
        assert_send_sync::<Account>();
        assert_send_sync::<Session>();
        assert_send_sync::<PrekeyBundle>();
        assert_send_sync::<Room>();
        assert_send_sync::<Healer>();
        assert_send_sync::<PickleKey>();
        assert_send_sync::<SafetyNumber>();
    }

    #[test]
    fn policy_round_trips_through_the_record() {
        let core = sealpost::SessionPolicy::default();
        let ours = default_policy().unwrap();
        assert_eq!(ours.to_core(), core);
        assert_eq!(ours.min_version, 2);
    }

    #[test]
    fn a_session_handed_to_a_room_is_no_longer_usable() {
        let policy = default_policy().unwrap();
        let alice = Account::new(Some(T0)).unwrap();
        let bob = Account::new(Some(T0)).unwrap();
        let bundle = bob.bundle(policy.clone()).unwrap();
        let s = Session::initiate(alice.clone(), bundle, policy.clone(), Some(T0)).unwrap();
        let room = Room::new(b"r".to_vec(), alice, policy).unwrap();
        room.add_member(s.clone(), Some(T0)).unwrap();
        assert_eq!(s.encrypt(b"x".to_vec(), Some(T0)), Err(SealpostError::InvalidArgument));
        assert_eq!(room.add_member(s, Some(T0)), Err(SealpostError::InvalidArgument));
    }

    #[test]
    fn wrong_length_arguments_are_refused_not_panicking() {
        assert_eq!(PickleKey::from_key(vec![1; 31]).err(), Some(SealpostError::InvalidArgument));
        assert_eq!(SafetyNumber::new(vec![1; 3], vec![]).err(), Some(SealpostError::Malformed));
        assert_eq!(PrekeyBundle::from_bytes(vec![]).err(), Some(SealpostError::Malformed));
        assert_eq!(envelope_kind(vec![]).err(), Some(SealpostError::Malformed));
    }
}
