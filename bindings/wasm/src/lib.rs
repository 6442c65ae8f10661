//! # sealpost-wasm
//!
//! Sealpost's protocol core and the relay's client protocol for
//! JavaScript (browsers, Node, bundlers), through wasm-bindgen: the same
//! objects, names and error codes as the uniffi binding
//! (`bindings/uniffi`), in JavaScript spelling (`camelCase` methods,
//! static constructors such as `Account.fromPickle`).
//!
//! - Bytes (identities, envelopes, prekeys, pickles, plaintexts) are
//!   `Uint8Array`s; 32-byte ids (accounts, sessions) are base64url strings,
//!   as the relay writes them; times and counts are numbers (checked: a
//!   number that is not an exact non-negative integer is refused).
//! - Every call that needs the time takes an optional `now` (Unix
//!   seconds); without it, `Date.now()` is read.
//! - Randomness is `crypto.getRandomValues` (getrandom's `wasm_js`
//!   backend); when it is missing a call fails with code `rng`.
//! - Every failure is thrown as a `SealpostError` (or, from the relay
//!   functions, a `RelayError`) with a stable `code`. Nothing here panics
//!   on any input, so no call ends in WebAssembly's opaque `unreachable`.
//! - There is no call that signs caller-chosen bytes.

use std::cell::{RefCell, RefMut};

use js_sys::Array;
use sealpost::{Envelope, EnvelopeType, IdentityPublic};
use wasm_bindgen::prelude::*;
use zeroize::Zeroize;

mod error;
mod js;
mod policy;
mod relay;
mod room;

pub use policy::{Suite, default_policy};
pub use relay::{
    RelayRequest, RelaySession, RelaySigner, ack_frame, parse_ack, parse_claim_handle, parse_deposit,
    parse_fetch_bundle, parse_lookup_handle, parse_open_session, parse_publish_bundle, parse_pull, parse_push_frame,
    parse_upload_prekeys, parse_verify_handle, ws_auth_query,
};
pub use room::{Healer, Room};

pub use error::{RelayError, SealpostError};

type Result<T, E = SealpostError> = std::result::Result<T, E>;

/// The generator behind every call that needs randomness. The probe turns
/// a missing `crypto.getRandomValues` into the `rng` error; the core's
/// generator would otherwise have to panic.
pub(crate) fn rng() -> Result<impl rand_core::CryptoRng> {
    getrandom::fill(&mut [0u8; 1]).map_err(|_| SealpostError::Core(sealpost::Error::Rng))?;
    Ok(sealpost::os_rng())
}

/// An object's state, for a call that changes it. JavaScript is single
/// threaded and the core calls no JavaScript, so it is never already
/// borrowed; if it were, the call fails instead of panicking.
pub(crate) fn borrow<T>(c: &RefCell<T>) -> Result<RefMut<'_, T>> {
    c.try_borrow_mut().map_err(|_| SealpostError::Internal)
}

pub(crate) fn identity(bytes: &[u8]) -> Result<IdentityPublic> {
    Ok(IdentityPublic::from_bytes(bytes)?)
}

/// Every code a `SealpostError` can carry: one per kind of core error (the
/// core's `Error::code`, shared with the uniffi binding), then
/// `invalid_argument` and `internal`.
#[wasm_bindgen(js_name = errorCodes, unchecked_return_type = "ErrorCode[]")]
pub fn error_codes() -> Array {
    js::array(error::all_codes().map(JsValue::from_str))
}

#[wasm_bindgen(typescript_custom_section)]
const ERROR_CODE_TS: &str = r#"
/**
 * The stable code of a {@link SealpostError}: one per kind of core error,
 * the same in every Sealpost binding, plus the bindings' own
 * `invalid_argument` and `internal`. {@link errorCodes} lists them.
 */
export type ErrorCode =
  | "malformed" | "unsupported_version" | "unsupported_suite" | "suite_not_allowed"
  | "no_common_suite" | "downgrade" | "authentication_failed" | "invalid_signature"
  | "invalid_key" | "replay" | "outside_window" | "too_many_skipped" | "session_expired"
  | "unknown_prekey" | "prekey_exhausted" | "stale_prekey" | "unknown_sender"
  | "redistribution_required" | "rate_limited" | "misdirected" | "weak_parameters"
  | "too_large" | "rng" | "invalid_argument" | "internal";

/** A new session accepted from its first message, with that message. */
export interface AcceptedSession {
  /** The responder's session. */
  session: Session;
  /** The first message's plaintext. */
  plaintext: Uint8Array;
}
"#;

// ---------------------------------------------------------------------------
// Pickle keys and safety numbers

/// The secret a pickle is sealed under: a 32-byte key (for example a
/// non-extractable secret kept by the app) or a passphrase.
#[wasm_bindgen]
pub struct PickleKey {
    inner: sealpost::PickleKey,
}

#[wasm_bindgen]
impl PickleKey {
    /// A 32-byte key (`invalid_argument` for another length). The copy
    /// passed in is wiped; wipe your own with `fill(0)`.
    #[wasm_bindgen(js_name = fromKey)]
    pub fn from_key(mut key: Vec<u8>) -> Result<PickleKey> {
        let bytes: Result<[u8; 32]> =
            key.as_slice().try_into().map_err(|_| SealpostError::InvalidArgument("a pickle key is 32 bytes"));
        key.zeroize();
        let mut bytes = bytes?;
        let inner = sealpost::PickleKey::Key(sealpost::SymmetricKey::from_bytes(bytes));
        bytes.zeroize();
        Ok(PickleKey { inner })
    }

    /// A passphrase, stretched with PBKDF2 (slow on purpose) whenever a
    /// pickle is sealed or opened. JavaScript strings cannot be wiped.
    #[wasm_bindgen(js_name = fromPassphrase)]
    pub fn from_passphrase(passphrase: String) -> PickleKey {
        let mut passphrase = passphrase;
        let inner = sealpost::PickleKey::passphrase(passphrase.as_bytes());
        passphrase.zeroize();
        PickleKey { inner }
    }
}

/// The number two people compare to rule out a man in the middle.
#[wasm_bindgen]
pub struct SafetyNumber {
    inner: sealpost::SafetyNumber,
}

#[wasm_bindgen]
impl SafetyNumber {
    /// The safety number of two identities (the same in either order).
    #[wasm_bindgen(constructor)]
    pub fn new(a: &[u8], b: &[u8]) -> Result<SafetyNumber> {
        Ok(SafetyNumber { inner: sealpost::SafetyNumber::new(&identity(a)?, &identity(b)?) })
    }

    /// The 60 digits.
    pub fn digits(&self) -> String {
        self.inner.digits()
    }

    /// Whether two safety numbers are the same.
    pub fn matches(&self, other: &SafetyNumber) -> bool {
        self.inner == other.inner
    }
}

// ---------------------------------------------------------------------------
// Accounts and bundles

/// A user's long-term identity and prekeys. Pickle it after every call
/// that changes it (accepting a session, prekey generation, rotation).
#[wasm_bindgen]
pub struct Account {
    inner: RefCell<sealpost::Account>,
}

#[wasm_bindgen]
impl Account {
    /// A fresh account (identity and signed prekey).
    #[wasm_bindgen(constructor)]
    pub fn new(now: Option<f64>) -> Result<Account> {
        let now = js::clock(now)?;
        Ok(Account { inner: RefCell::new(sealpost::Account::new(&mut rng()?, now)) })
    }

    /// Restores an account pickle sealed with the same key and associated data.
    #[wasm_bindgen(js_name = fromPickle)]
    pub fn from_pickle(pickle: &[u8], key: &PickleKey, associated_data: &[u8]) -> Result<Account> {
        let inner = sealpost::Account::from_pickle(pickle, &key.inner, associated_data)?;
        Ok(Account { inner: RefCell::new(inner) })
    }

    /// Seals the account under `key`, bound to `associatedData` (for
    /// example the storage key).
    pub fn pickle(&self, key: &PickleKey, associated_data: &[u8]) -> Result<Vec<u8>> {
        Ok(borrow(&self.inner)?.pickle(&mut rng()?, &key.inner, associated_data)?)
    }

    /// The capability that signs relay requests for this account (and
    /// nothing else).
    #[wasm_bindgen(js_name = relaySigner)]
    pub fn relay_signer(&self) -> Result<RelaySigner> {
        Ok(RelaySigner { inner: borrow(&self.inner)?.relay_signer() })
    }

    /// The public identity (128 bytes).
    pub fn identity(&self) -> Result<Vec<u8>> {
        Ok(borrow(&self.inner)?.identity().to_bytes().to_vec())
    }

    /// The signed bundle to publish (without a one-time prekey; the relay
    /// attaches one per fetch).
    pub fn bundle(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SessionPolicy")] policy: JsValue,
    ) -> Result<PrekeyBundle> {
        let policy = policy::from_js(&policy)?;
        Ok(PrekeyBundle { inner: borrow(&self.inner)?.bundle(&policy)? })
    }

    /// Makes up to `count` one-time prekeys and returns their signed public
    /// halves for upload.
    #[wasm_bindgen(js_name = generateOneTimePrekeys, unchecked_return_type = "Uint8Array[]")]
    pub fn generate_one_time_prekeys(&self, count: u32) -> Result<Array> {
        let count = usize::try_from(count).map_err(|_| SealpostError::InvalidArgument("count"))?;
        let keys = borrow(&self.inner)?.generate_one_time_prekeys(&mut rng()?, count);
        Ok(js::array(keys.iter().map(|k| js::bytes(&k.to_bytes()))))
    }

    /// How many one-time prekeys are unused.
    #[wasm_bindgen(js_name = oneTimePrekeyCount)]
    pub fn one_time_prekey_count(&self) -> Result<f64> {
        let n = u64::try_from(borrow(&self.inner)?.one_time_prekey_count()).map_err(|_| SealpostError::Internal)?;
        Ok(js::u64_to_f64(n))
    }

    /// Replaces the signed prekey (the old one is kept a while).
    #[wasm_bindgen(js_name = rotateSignedPrekey)]
    pub fn rotate_signed_prekey(&self, now: Option<f64>) -> Result<()> {
        let now = js::clock(now)?;
        borrow(&self.inner)?.rotate_signed_prekey(&mut rng()?, now);
        Ok(())
    }

    /// Rotates the signed prekey when due and forgets old ones; true when
    /// a new bundle should be published.
    pub fn maintain(&self, now: Option<f64>) -> Result<bool> {
        let now = js::clock(now)?;
        Ok(borrow(&self.inner)?.maintain(&mut rng()?, now))
    }

    /// Accepts a session from its first envelope (a prekey message).
    #[wasm_bindgen(unchecked_return_type = "AcceptedSession")]
    pub fn accept(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SessionPolicy")] policy: JsValue,
        envelope: &[u8],
        now: Option<f64>,
    ) -> Result<JsValue> {
        let now = js::clock(now)?;
        let policy = policy::from_js(&policy)?;
        let Envelope::Prekey(first) = Envelope::from_bytes(envelope)? else {
            return Err(sealpost::Error::Malformed("not a prekey message").into());
        };
        let (session, plaintext) = borrow(&self.inner)?.accept(&policy, now, &first)?;
        Ok(js::object(&[("session", Session::wrap(session).into()), ("plaintext", js::bytes(&plaintext))]))
    }
}

/// A peer's published bundle (immutable).
#[wasm_bindgen]
pub struct PrekeyBundle {
    inner: sealpost::PrekeyBundle,
}

#[wasm_bindgen]
impl PrekeyBundle {
    /// Decodes and verifies a bundle from the wire.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<PrekeyBundle> {
        Ok(PrekeyBundle { inner: sealpost::PrekeyBundle::from_bytes(bytes)? })
    }

    /// The wire form.
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    /// The owner's identity (128 bytes).
    pub fn identity(&self) -> Vec<u8> {
        self.inner.identity().to_bytes().to_vec()
    }

    /// This bundle with a one-time prekey attached (bytes from
    /// `Account.generateOneTimePrekeys`; its signature is checked).
    #[wasm_bindgen(js_name = withOneTimePrekey)]
    pub fn with_one_time_prekey(&self, one_time_prekey: &[u8]) -> Result<PrekeyBundle> {
        let otk = sealpost::OneTimePrekey::from_bytes(one_time_prekey)?;
        Ok(PrekeyBundle { inner: self.inner.clone().with_one_time_prekey(otk)? })
    }

    /// Whether a one-time prekey is attached.
    #[wasm_bindgen(js_name = hasOneTimePrekey)]
    pub fn has_one_time_prekey(&self) -> bool {
        self.inner.one_time_prekey().is_some()
    }
}

// ---------------------------------------------------------------------------
// Pairwise sessions

/// A pairwise session. Pickle it after every encrypt and decrypt.
#[wasm_bindgen]
pub struct Session {
    /// `None` once the session was handed to a [`Room`].
    inner: RefCell<Option<sealpost::Session>>,
}

impl Session {
    fn wrap(s: sealpost::Session) -> Self {
        Self { inner: RefCell::new(Some(s)) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut sealpost::Session) -> Result<T>) -> Result<T> {
        borrow(&self.inner)?
            .as_mut()
            .map_or(Err(SealpostError::InvalidArgument("the session was moved into a room")), f)
    }

    /// The core session, moved out (into a room).
    pub(crate) fn take(&self) -> Result<sealpost::Session> {
        borrow(&self.inner)?.take().ok_or(SealpostError::InvalidArgument("the session was moved into a room"))
    }
}

#[wasm_bindgen]
impl Session {
    /// Starts a session with the owner of `bundle` (who may be offline).
    pub fn initiate(
        account: &Account,
        bundle: &PrekeyBundle,
        #[wasm_bindgen(unchecked_param_type = "SessionPolicy")] policy: JsValue,
        now: Option<f64>,
    ) -> Result<Session> {
        let now = js::clock(now)?;
        let policy = policy::from_js(&policy)?;
        let mut account = borrow(&account.inner)?;
        Ok(Session::wrap(sealpost::Session::initiate(&mut rng()?, &mut account, &bundle.inner, &policy, now)?))
    }

    /// Restores a session pickle sealed with the same key and associated data.
    #[wasm_bindgen(js_name = fromPickle)]
    pub fn from_pickle(pickle: &[u8], key: &PickleKey, associated_data: &[u8]) -> Result<Session> {
        Ok(Session::wrap(sealpost::Session::from_pickle(pickle, &key.inner, associated_data)?))
    }

    /// Seals the session, bound to `associatedData` (name at least the
    /// peer's identity and the storage key).
    pub fn pickle(&self, key: &PickleKey, associated_data: &[u8]) -> Result<Vec<u8>> {
        let mut rng = rng()?;
        self.with(|s| Ok(s.pickle(&mut rng, &key.inner, associated_data)?))
    }

    /// Encrypts `plaintext` into an envelope for the peer.
    pub fn encrypt(&self, plaintext: &[u8], now: Option<f64>) -> Result<Vec<u8>> {
        let now = js::clock(now)?;
        let mut rng = rng()?;
        self.with(|s| Ok(s.encrypt(&mut rng, now, plaintext)?))
    }

    /// Decrypts an envelope from the peer.
    pub fn decrypt(&self, envelope: &[u8], now: Option<f64>) -> Result<Vec<u8>> {
        let now = js::clock(now)?;
        self.with(|s| Ok(s.decrypt(now, envelope)?))
    }

    /// The session id (base64url of 32 bytes), the same on both sides.
    pub fn id(&self) -> Result<String> {
        self.with(|s| Ok(js::id_string(&s.id())))
    }

    /// The peer's identity (128 bytes).
    #[wasm_bindgen(js_name = peerIdentity)]
    pub fn peer_identity(&self) -> Result<Vec<u8>> {
        self.with(|s| Ok(s.peer_identity().to_bytes().to_vec()))
    }

    /// The safety number of the two identities.
    #[wasm_bindgen(js_name = safetyNumber)]
    pub fn safety_number(&self) -> Result<SafetyNumber> {
        self.with(|s| Ok(SafetyNumber { inner: s.safety_number() }))
    }

    /// Whether the peer has not answered yet (messages are prekey messages).
    #[wasm_bindgen(js_name = isAwaitingReply)]
    pub fn is_awaiting_reply(&self) -> Result<bool> {
        self.with(|s| Ok(s.is_awaiting_reply()))
    }
}

/// What an envelope is, from its header alone.
#[wasm_bindgen]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// A session's first messages: give it to `Account.accept` if no
    /// session exists yet.
    Prekey = 0,
    /// A message of an established session.
    Ratchet = 1,
    /// A group message.
    Group = 2,
    /// A sender key (only ever inside a pairwise session).
    SenderKeyDistribution = 3,
}

/// The kind of an envelope (`malformed` if it is none).
#[wasm_bindgen(js_name = envelopeKind)]
pub fn envelope_kind(envelope: &[u8]) -> Result<EnvelopeKind> {
    Ok(match Envelope::from_bytes(envelope)?.kind() {
        EnvelopeType::Prekey => EnvelopeKind::Prekey,
        EnvelopeType::Ratchet => EnvelopeKind::Ratchet,
        EnvelopeType::Group => EnvelopeKind::Group,
        EnvelopeType::SenderKeyDistribution => EnvelopeKind::SenderKeyDistribution,
        _ => return Err(sealpost::Error::UnsupportedVersion(0).into()),
    })
}

/// Whether `bytes` is a session reset request (to hand to `Healer.accept`).
#[wasm_bindgen(js_name = isSessionReset)]
pub fn is_session_reset(bytes: &[u8]) -> bool {
    sealpost::is_session_reset(bytes)
}

/// Whether a decryption error's code means the two sides' states diverged
/// (`invalid_argument` for a string that is no code).
#[wasm_bindgen(js_name = suggestsDivergence)]
pub fn suggests_divergence(#[wasm_bindgen(unchecked_param_type = "ErrorCode")] code: &str) -> Result<bool> {
    Ok(room::code_to_core(code)?.is_some_and(|e| sealpost::suggests_divergence(&e)))
}
