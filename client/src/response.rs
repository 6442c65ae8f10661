//! Replies: what the relay answers on success, written by the relay with
//! `encode` and parsed by clients with [`parse_response`]. A reply with a
//! missing field is refused ([`Error::Malformed`]), never defaulted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use zeroize::Zeroizing;

use crate::auth::RelaySession;
use crate::error::{Error, RelayError};
use crate::json::{Fields, JsonError, Object, ObjectWriter, read_object};
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

/// Parses a reply's JSON: `read` takes the fields it needs (fields it does
/// not know are ignored, so that a newer relay can add some).
fn json<T>(
    what: &'static str,
    body: &[u8],
    read: impl FnOnce(&mut Object) -> Result<T, JsonError>,
) -> Result<T, Error> {
    read_object(body, Fields::Lenient, read).map_err(|_| Error::Malformed { what })
}

fn bytes(what: &'static str, s: &str) -> Result<Vec<u8>, Error> {
    B64.decode(s).map_err(|_| Error::Malformed { what })
}

fn fixed<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], Error> {
    bytes(what, s)?.try_into().map_err(|_| Error::Malformed { what })
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
        ObjectWriter::new().str("account", &encode_account(&self.account)).finish()
    }
}

impl Reply for BundlePublished {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let account = json("bundle published reply", body, |o| o.string("account"))?;
        Ok(Self { account: fixed("account", &account)? })
    }
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
        ObjectWriter::new().u64("one_time_prekeys", self.one_time_prekeys).finish()
    }
}

impl Reply for PrekeysStored {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        Ok(Self { one_time_prekeys: json("prekeys stored reply", body, |o| o.u64("one_time_prekeys"))? })
    }
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
        ObjectWriter::new()
            .str("bundle", &B64.encode(bundle))
            .u64("one_time_prekeys_left", one_time_prekeys_left)
            .finish()
    }

    /// [`Error::WrongAccount`] unless the bundle is `account`'s.
    pub fn check_account(&self, account: &[u8; 32]) -> Result<(), Error> {
        if self.bundle.identity().signing_key() == account { Ok(()) } else { Err(Error::WrongAccount) }
    }
}

impl Reply for BundleFetched {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let (bundle, one_time_prekeys_left) =
            json("bundle reply", body, |o| Ok((o.string("bundle")?, o.u64("one_time_prekeys_left")?)))?;
        let bundle = sealpost::PrekeyBundle::from_bytes(&bytes("bundle", &bundle)?)?;
        Ok(Self { bundle, one_time_prekeys_left })
    }
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
        let key = Zeroizing::new(B64.encode(&self.key[..]));
        // Room for the whole body at once: a buffer that grew would leave a
        // copy of the key behind in freed memory.
        ObjectWriter::with_capacity(128)
            .str("id", &B64.encode(self.id))
            .str("key", &key)
            .u64("expires_in", self.expires_in)
            .finish()
    }

    /// The session, to authorize deposits with.
    pub fn session(&self) -> RelaySession {
        RelaySession::new(self.id, *self.key)
    }
}

impl Reply for SessionOpened {
    const STATUS: u16 = 201;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let (id, wire_key, expires_in) = json("session reply", body, |o| {
            Ok((o.string("id")?, Zeroizing::new(o.string("key")?), o.u64("expires_in")?))
        })?;
        let key = Zeroizing::new(bytes("key", &wire_key)?);
        let key: [u8; 32] = key.as_slice().try_into().map_err(|_| Error::Malformed { what: "key" })?;
        Ok(Self { id: fixed("id", &id)?, key: Zeroizing::new(key), expires_in })
    }
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
        ObjectWriter::new().i64s("ids", &self.ids).finish()
    }
}

impl Reply for Deposited {
    const STATUS: u16 = 201;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        Ok(Self { ids: json("deposit reply", body, |o| o.i64s("ids"))? })
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

impl Delivered {
    /// Reads one message object (of a pull reply or a push frame, `what`).
    pub(crate) fn read(o: &mut Object, what: &'static str) -> Result<Delivered, Error> {
        let malformed = |_| Error::Malformed { what };
        let (id, sender, envelope, received_at) =
            (o.i64("id"), o.string("sender"), o.string("envelope"), o.u64("received_at"));
        Ok(Delivered {
            id: id.map_err(malformed)?,
            sender: fixed("sender", &sender.map_err(malformed)?)?,
            envelope: bytes("envelope", &envelope.map_err(malformed)?)?,
            received_at: received_at.map_err(malformed)?,
        })
    }
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
        let size: usize = messages.iter().map(|m| crate::push::message_len(m.envelope.len())).sum();
        let mut out = Vec::with_capacity(size.saturating_add(64));
        out.extend_from_slice(b"{\"messages\":[");
        for (i, m) in messages.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::push::write_message(&mut out, &m, false);
        }
        out.extend_from_slice(b"],\"next_after\":");
        crate::json::write_i64(&mut out, next);
        out.push(b'}');
        out
    }
}

impl Reply for MessagePage {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let (objects, next_after) = json("pull reply", body, |o| Ok((o.objects("messages")?, o.i64("next_after")?)))?;
        let messages =
            objects.into_iter().map(|mut m| Delivered::read(&mut m, "pull reply")).collect::<Result<_, _>>()?;
        Ok(Self { messages, next_after })
    }
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
        ObjectWriter::new().u64("deleted", self.deleted).finish()
    }
}

impl Reply for Acked {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        Ok(Self { deleted: json("ack reply", body, |o| o.u64("deleted"))? })
    }
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
        ObjectWriter::new().str("handle", &self.handle).u64("expires_in", self.expires_in).finish()
    }
}

impl Reply for HandleClaimed {
    const STATUS: u16 = 202;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let (handle, expires_in) =
            json("handle claim reply", body, |o| Ok((o.string("handle")?, o.u64("expires_in")?)))?;
        Ok(Self { handle, expires_in })
    }
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
        ObjectWriter::new().str("handle", &self.handle).str("account", &encode_account(&self.account)).finish()
    }
}

impl Reply for HandleBound {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let (handle, account) = json("handle verify reply", body, |o| Ok((o.string("handle")?, o.string("account")?)))?;
        Ok(Self { handle, account: fixed("account", &account)? })
    }
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
        ObjectWriter::new()
            .str("handle", handle)
            .str("account", &encode_account(account))
            .str("identity", &B64.encode(identity))
            .finish()
    }
}

impl Reply for HandleFound {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let (handle, account, identity) = json("handle lookup reply", body, |o| {
            Ok((o.string("handle")?, o.string("account")?, o.string("identity")?))
        })?;
        let account = fixed("account", &account)?;
        let identity = sealpost::IdentityPublic::from_bytes(&bytes("identity", &identity)?)?;
        if identity.signing_key() != &account {
            return Err(Error::WrongAccount);
        }
        Ok(Self { handle, account, identity })
    }
}
