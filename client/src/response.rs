//! Replies: what the relay answers on success, written by the relay with
//! `encode` and parsed by clients with [`parse_response`]. A reply with a
//! missing field is refused ([`Error::Malformed`]), never defaulted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::RelaySession;
use crate::error::{Error, RelayError};
use crate::request::encode_account;

/// A reply the relay answers on success with [`Reply::STATUS`].
pub trait Reply: Sized {
    /// The HTTP status of this reply.
    const STATUS: u16;
    /// Parses the body of a success answer.
    fn decode(body: &[u8]) -> Result<Self, Error>;
}

/// Parses an answer: the reply `T` if `status` is its success status, the
/// relay's refusal ([`Error::Relay`]) if it is a well-formed error, and
/// otherwise a typed error. `retry_after` is the `Retry-After` header.
pub fn parse_response<T: Reply>(status: u16, retry_after: Option<&str>, body: &[u8]) -> Result<T, Error> {
    if status == T::STATUS {
        T::decode(body)
    } else if (400..600).contains(&status) {
        Err(Error::Relay(RelayError::decode(status, retry_after, body)?))
    } else {
        Err(Error::UnexpectedStatus { status })
    }
}

fn json<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|_| Error::Malformed { what })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn bytes(what: &'static str, s: &str) -> Result<Vec<u8>, Error> {
    B64.decode(s).map_err(|_| Error::Malformed { what })
}

fn fixed<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], Error> {
    bytes(what, s)?.try_into().map_err(|_| Error::Malformed { what })
}

#[derive(Serialize, Deserialize)]
struct AccountWire {
    account: String,
}

/// `POST /v1/keys/bundle`: the bundle was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePublished {
    /// The caller's account id.
    pub account: [u8; 32],
}

impl BundlePublished {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        to_json(&AccountWire { account: encode_account(&self.account) })
    }
}

impl Reply for BundlePublished {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: AccountWire = json("bundle published reply", body)?;
        Ok(Self { account: fixed("account", &w.account)? })
    }
}

#[derive(Serialize, Deserialize)]
struct PrekeysWire {
    one_time_prekeys: u64,
}

/// `POST /v1/keys/one-time`: how many one-time prekeys the relay holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrekeysStored {
    /// One-time prekeys held for the caller.
    pub one_time_prekeys: u64,
}

impl PrekeysStored {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        to_json(&PrekeysWire { one_time_prekeys: self.one_time_prekeys })
    }
}

impl Reply for PrekeysStored {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: PrekeysWire = json("prekeys stored reply", body)?;
        Ok(Self { one_time_prekeys: w.one_time_prekeys })
    }
}

#[derive(Serialize, Deserialize)]
struct BundleWire {
    bundle: String,
    one_time_prekeys_left: u64,
}

/// `GET /v1/keys/{account}`: a verified bundle. Check that it belongs to
/// the account asked for with [`BundleFetched::check_account`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFetched {
    /// The bundle (its signatures verified).
    pub bundle: sealpost::PrekeyBundle,
    /// One-time prekeys the relay still holds for that account.
    pub one_time_prekeys_left: u64,
}

impl BundleFetched {
    /// The JSON body, from the bundle's bytes (the relay does not parse
    /// what it serves).
    pub fn encode_raw(bundle: &[u8], one_time_prekeys_left: u64) -> Vec<u8> {
        to_json(&BundleWire { bundle: B64.encode(bundle), one_time_prekeys_left })
    }

    /// [`Error::WrongAccount`] unless the bundle is `account`'s.
    pub fn check_account(&self, account: &[u8; 32]) -> Result<(), Error> {
        if self.bundle.identity().signing_key() == account { Ok(()) } else { Err(Error::WrongAccount) }
    }
}

impl Reply for BundleFetched {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: BundleWire = json("bundle reply", body)?;
        let bundle = sealpost::PrekeyBundle::from_bytes(&bytes("bundle", &w.bundle)?)?;
        Ok(Self { bundle, one_time_prekeys_left: w.one_time_prekeys_left })
    }
}

#[derive(Serialize, Deserialize)]
struct SessionWire {
    id: String,
    key: String,
    expires_in: u64,
}

/// `POST /v1/sessions`: a relay session. The key zeroizes on drop and is
/// not shown by `Debug`.
pub struct SessionOpened {
    /// The session id.
    pub id: [u8; 16],
    key: Zeroizing<[u8; 32]>,
    /// Seconds the session lasts.
    pub expires_in: u64,
}

impl core::fmt::Debug for SessionOpened {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionOpened").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

impl SessionOpened {
    /// A reply (the relay's side).
    pub fn new(id: [u8; 16], key: &[u8; 32], expires_in: u64) -> Self {
        Self { id, key: Zeroizing::new(*key), expires_in }
    }

    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        let mut wire =
            SessionWire { id: B64.encode(self.id), key: B64.encode(&self.key[..]), expires_in: self.expires_in };
        let out = to_json(&wire);
        zeroize::Zeroize::zeroize(&mut wire.key);
        out
    }

    /// The session, to authorize deposits with.
    pub fn session(&self) -> RelaySession {
        RelaySession::new(self.id, *self.key)
    }
}

impl Reply for SessionOpened {
    const STATUS: u16 = 201;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let mut w: SessionWire = json("session reply", body)?;
        let key = Zeroizing::new(bytes("key", &w.key)?);
        let key: [u8; 32] = key.as_slice().try_into().map_err(|_| Error::Malformed { what: "key" })?;
        let opened = Self { id: fixed("id", &w.id)?, key: Zeroizing::new(key), expires_in: w.expires_in };
        zeroize::Zeroize::zeroize(&mut w.key);
        Ok(opened)
    }
}

#[derive(Serialize, Deserialize)]
struct IdsWire {
    ids: Vec<i64>,
}

/// `POST /v1/messages`: the stored message ids, one per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposited {
    /// Ids in the order of the recipients.
    pub ids: Vec<i64>,
}

impl Deposited {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        to_json(&IdsWire { ids: self.ids.clone() })
    }
}

impl Reply for Deposited {
    const STATUS: u16 = 201;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: IdsWire = json("deposit reply", body)?;
        Ok(Self { ids: w.ids })
    }
}

/// A message from the caller's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The relay's id (acknowledge it to delete the message).
    pub id: i64,
    /// The sender's account.
    pub sender: [u8; 32],
    /// The sealed envelope.
    pub envelope: Vec<u8>,
    /// When the relay stored it (Unix seconds).
    pub received_at: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct MessageWire {
    id: i64,
    sender: String,
    envelope: String,
    received_at: u64,
}

impl MessageWire {
    pub(crate) fn into_delivered(self) -> Result<Delivered, Error> {
        Ok(Delivered {
            id: self.id,
            sender: fixed("sender", &self.sender)?,
            envelope: bytes("envelope", &self.envelope)?,
            received_at: self.received_at,
        })
    }
}

#[derive(Deserialize)]
struct PageWire {
    messages: Vec<MessageWire>,
    next_after: i64,
}

/// `GET /v1/messages`: a page of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePage {
    /// The messages, oldest first.
    pub messages: Vec<Delivered>,
    /// Pass as `after` to read the next page.
    pub next_after: i64,
}

impl MessagePage {
    /// The JSON body `{"messages":[...],"next_after":n}` of messages with
    /// ids above `after`, written once into a buffer of the exact size and
    /// dropping each envelope once encoded: the peak is the raw page plus
    /// its encoding, not several copies.
    pub fn encode(messages: Vec<Delivered>, after: i64) -> Vec<u8> {
        let next = messages.last().map_or(after, |m| m.id);
        let size: usize = messages.iter().map(|m| crate::push::base64_len(m.envelope.len()).saturating_add(160)).sum();
        let mut out = Vec::with_capacity(size.saturating_add(64));
        out.extend_from_slice(b"{\"messages\":[");
        for (i, m) in messages.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::push::write_message(&mut out, &m, false);
        }
        out.extend_from_slice(format!("],\"next_after\":{next}}}").as_bytes());
        out
    }
}

impl Reply for MessagePage {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: PageWire = json("pull reply", body)?;
        let messages = w.messages.into_iter().map(MessageWire::into_delivered).collect::<Result<_, _>>()?;
        Ok(Self { messages, next_after: w.next_after })
    }
}

#[derive(Serialize, Deserialize)]
struct DeletedWire {
    deleted: u64,
}

/// `POST /v1/messages/ack`: how many messages were deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// Messages deleted (ids that were not in the mailbox are not counted).
    pub deleted: u64,
}

impl Acked {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        to_json(&DeletedWire { deleted: self.deleted })
    }
}

impl Reply for Acked {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: DeletedWire = json("ack reply", body)?;
        Ok(Self { deleted: w.deleted })
    }
}

#[derive(Serialize, Deserialize)]
struct ClaimedWire {
    handle: String,
    expires_in: u64,
}

/// `POST /v1/handles/claim`: a code was sent for the (normalized) handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleClaimed {
    /// The handle, normalized.
    pub handle: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

impl HandleClaimed {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        to_json(&ClaimedWire { handle: self.handle.clone(), expires_in: self.expires_in })
    }
}

impl Reply for HandleClaimed {
    const STATUS: u16 = 202;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: ClaimedWire = json("handle claim reply", body)?;
        Ok(Self { handle: w.handle, expires_in: w.expires_in })
    }
}

#[derive(Serialize, Deserialize)]
struct BoundWire {
    handle: String,
    account: String,
}

/// `POST /v1/handles/verify`: the handle is bound to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleBound {
    /// The handle, normalized.
    pub handle: String,
    /// The caller's account.
    pub account: [u8; 32],
}

impl HandleBound {
    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        to_json(&BoundWire { handle: self.handle.clone(), account: encode_account(&self.account) })
    }
}

impl Reply for HandleBound {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: BoundWire = json("handle verify reply", body)?;
        Ok(Self { handle: w.handle, account: fixed("account", &w.account)? })
    }
}

#[derive(Serialize, Deserialize)]
struct FoundWire {
    handle: String,
    account: String,
    identity: String,
}

/// `GET /v1/handles/{handle}`: the identity bound to a handle. Compare its
/// safety number out of band before trusting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleFound {
    /// The handle, normalized.
    pub handle: String,
    /// The account bound to it.
    pub account: [u8; 32],
    /// That account's identity (its binding signature verified, its
    /// signing key the account).
    pub identity: sealpost::IdentityPublic,
}

impl HandleFound {
    /// The JSON body, from the stored identity bytes.
    pub fn encode_raw(handle: &str, account: &[u8; 32], identity: &[u8]) -> Vec<u8> {
        to_json(&FoundWire {
            handle: handle.to_owned(),
            account: encode_account(account),
            identity: B64.encode(identity),
        })
    }
}

impl Reply for HandleFound {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let w: FoundWire = json("handle lookup reply", body)?;
        let account = fixed("account", &w.account)?;
        let identity = sealpost::IdentityPublic::from_bytes(&bytes("identity", &w.identity)?)?;
        if identity.signing_key() != &account {
            return Err(Error::WrongAccount);
        }
        Ok(Self { handle: w.handle, account, identity })
    }
}
