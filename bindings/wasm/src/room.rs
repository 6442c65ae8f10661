//! Group chats ([`Room`]) and session resets ([`Healer`]).

use std::cell::RefCell;

use js_sys::Array;
use sealpost::{Envelope, Incoming as CoreIncoming};
use wasm_bindgen::prelude::*;

use crate::error::{self, INTERNAL, INVALID_ARGUMENT, SealpostError};
use crate::{Account, PickleKey, Result, Session, borrow, identity, js, policy, rng};

#[wasm_bindgen(typescript_custom_section)]
const ROOM_TS: &str = r#"
/** An envelope to send: to one member, or (`recipient` undefined) to all. */
export interface Outgoing {
  /** The member's identity (128 bytes), or undefined for a broadcast. */
  recipient?: Uint8Array;
  /** The envelope. */
  envelope: Uint8Array;
}

/** What a received room envelope was. */
export type Incoming =
  /** A message to everyone. */
  | { kind: "broadcast"; from: Uint8Array; text: Uint8Array }
  /** A message to this member only. */
  | { kind: "direct"; from: Uint8Array; text: Uint8Array }
  /** The sender's new group key (nothing to show). */
  | { kind: "key_update"; from: Uint8Array };

/** A room's first envelope from a new member, accepted. */
export interface RoomAccepted {
  /** What the envelope carried. */
  incoming: Incoming;
  /** This member's sender key, to send back. */
  outgoing: Outgoing;
}

/** What an accepted session reset asks of this side. */
export interface HealOutcome {
  /** The peer's identity (128 bytes). */
  peer: Uint8Array;
  /** Whether this side starts the new session (else the peer does). */
  renew: boolean;
  /** Whether both sides had asked at once. */
  crossed: boolean;
}
"#;

fn outgoing(o: sealpost::Outgoing) -> JsValue {
    let recipient = o.recipient.map_or(JsValue::UNDEFINED, |r| js::bytes(&r.to_bytes()));
    js::object(&[("recipient", recipient), ("envelope", js::bytes(&o.envelope))])
}

#[allow(unreachable_patterns)] // The core enum is non_exhaustive.
fn incoming(i: CoreIncoming) -> Result<JsValue> {
    Ok(match i {
        CoreIncoming::Broadcast { from, text } => js::object(&[
            ("kind", "broadcast".into()),
            ("from", js::bytes(&from.to_bytes())),
            ("text", js::bytes(&text)),
        ]),
        CoreIncoming::Direct { from, text } => {
            js::object(&[("kind", "direct".into()), ("from", js::bytes(&from.to_bytes())), ("text", js::bytes(&text))])
        }
        CoreIncoming::KeyUpdate { from } => {
            js::object(&[("kind", "key_update".into()), ("from", js::bytes(&from.to_bytes()))])
        }
        _ => return Err(SealpostError::Internal),
    })
}

/// A group chat: a sender-key group plus a pairwise session per member.
#[wasm_bindgen]
pub struct Room {
    inner: RefCell<sealpost::Room>,
}

#[wasm_bindgen]
impl Room {
    /// A new room `groupId` for `account`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        group_id: &[u8],
        account: &Account,
        #[wasm_bindgen(unchecked_param_type = "SessionPolicy")] policy: JsValue,
    ) -> Result<Room> {
        let policy = policy::from_js(&policy)?;
        let account = borrow(&account.inner)?;
        Ok(Room { inner: RefCell::new(sealpost::Room::new(&mut rng()?, group_id, &account, &policy)?) })
    }

    /// Adds the peer of `session` as a member; the session moves into the
    /// room (using `session` afterwards fails with `invalid_argument`).
    /// Returns this member's sender key for the new member.
    #[wasm_bindgen(js_name = addMember, unchecked_return_type = "Outgoing")]
    pub fn add_member(&self, session: &Session, now: Option<f64>) -> Result<JsValue> {
        let now = js::clock(now)?;
        let mut rng = rng()?;
        let mut room = borrow(&self.inner)?;
        Ok(outgoing(room.add_member(&mut rng, now, session.take()?)?))
    }

    /// Accepts a new member's first envelope (a prekey message).
    #[wasm_bindgen(unchecked_return_type = "RoomAccepted")]
    pub fn accept(
        &self,
        account: &Account,
        #[wasm_bindgen(unchecked_param_type = "SessionPolicy")] policy: JsValue,
        envelope: &[u8],
        now: Option<f64>,
    ) -> Result<JsValue> {
        let now = js::clock(now)?;
        let policy = policy::from_js(&policy)?;
        let Envelope::Prekey(first) = Envelope::from_bytes(envelope)? else {
            return Err(sealpost::Error::Malformed("not a prekey message").into());
        };
        let mut rng = rng()?;
        let mut room = borrow(&self.inner)?;
        let mut account = borrow(&account.inner)?;
        let (inc, out) = room.accept(&mut rng, now, &mut account, &policy, &first)?;
        Ok(js::object(&[("incoming", incoming(inc)?), ("outgoing", outgoing(out))]))
    }

    /// Removes `member` (an identity) and re-keys: send each envelope to
    /// its recipient.
    #[wasm_bindgen(js_name = removeMember, unchecked_return_type = "Outgoing[]")]
    pub fn remove_member(&self, account: &Account, member: &[u8], now: Option<f64>) -> Result<Array> {
        let now = js::clock(now)?;
        let member = identity(member)?;
        let mut rng = rng()?;
        let mut room = borrow(&self.inner)?;
        let account = borrow(&account.inner)?;
        Ok(js::array(room.remove_member(&mut rng, now, &account, &member)?.into_iter().map(outgoing)))
    }

    /// A message to every member (one envelope).
    #[wasm_bindgen(unchecked_return_type = "Outgoing")]
    pub fn broadcast(&self, text: &[u8]) -> Result<JsValue> {
        let mut rng = rng()?;
        Ok(outgoing(borrow(&self.inner)?.broadcast(&mut rng, text)?))
    }

    /// A message to one member (an identity) only.
    #[wasm_bindgen(unchecked_return_type = "Outgoing")]
    pub fn direct(&self, to: &[u8], text: &[u8], now: Option<f64>) -> Result<JsValue> {
        let now = js::clock(now)?;
        let to = identity(to)?;
        let mut rng = rng()?;
        Ok(outgoing(borrow(&self.inner)?.direct(&mut rng, now, &to, text)?))
    }

    /// Opens an envelope that `sender` (the identity the relay says sent
    /// it) delivered in this room.
    #[wasm_bindgen(unchecked_return_type = "Incoming")]
    pub fn receive(&self, sender: &[u8], envelope: &[u8], now: Option<f64>) -> Result<JsValue> {
        let now = js::clock(now)?;
        let sender = identity(sender)?;
        incoming(borrow(&self.inner)?.receive(now, sender.signing_key(), envelope)?)
    }

    /// The members' identities (not this account's own).
    #[wasm_bindgen(unchecked_return_type = "Uint8Array[]")]
    pub fn members(&self) -> Result<Array> {
        Ok(js::array(borrow(&self.inner)?.members().map(|m| js::bytes(&m.to_bytes()))))
    }

    /// Restores a room pickle of `account` sealed with the same key and
    /// associated data (`invalid_key` if it is another account's room).
    /// Call `redistribute` next: until its envelopes are sent, `broadcast`
    /// fails with `redistribution_required`.
    #[wasm_bindgen(js_name = fromPickle)]
    pub fn from_pickle(pickle: &[u8], key: &PickleKey, associated_data: &[u8], account: &Account) -> Result<Room> {
        let account = borrow(&account.inner)?;
        let room = sealpost::Room::from_pickle(&mut rng()?, pickle, &key.inner, associated_data, &account)?;
        Ok(Room { inner: RefCell::new(room) })
    }

    /// Seals the room (its group session and pairwise sessions) under
    /// `key`, bound to `associatedData` (for example the group id).
    pub fn pickle(&self, key: &PickleKey, associated_data: &[u8]) -> Result<Vec<u8>> {
        Ok(borrow(&self.inner)?.pickle(&mut rng()?, &key.inner, associated_data)?)
    }

    /// After `fromPickle`: this member's new sender key for every member
    /// (send each envelope to its recipient); empty when nothing is due.
    #[wasm_bindgen(unchecked_return_type = "Outgoing[]")]
    pub fn redistribute(&self, now: Option<f64>) -> Result<Array> {
        let now = js::clock(now)?;
        let mut rng = rng()?;
        Ok(js::array(borrow(&self.inner)?.redistribute(&mut rng, now)?.into_iter().map(outgoing)))
    }
}

/// The core error kind of a code; `None` for the bindings' own codes,
/// `invalid_argument` for a string that is no code.
pub(crate) fn code_to_core(code: &str) -> Result<Option<sealpost::Error>> {
    match code {
        INVALID_ARGUMENT | INTERNAL => Ok(None),
        other => error::core_error_of(other).map(Some).ok_or(SealpostError::InvalidArgument("not an error code")),
    }
}

fn session_id(id: Option<String>) -> Result<Option<[u8; 32]>> {
    id.map(|s| js::id32(&s).ok_or(SealpostError::InvalidArgument("a session id is 32 bytes of base64url"))).transpose()
}

/// Rate limits and replay memory for session resets, one per account.
#[wasm_bindgen]
pub struct Healer {
    inner: RefCell<sealpost::Healer>,
}

#[wasm_bindgen]
impl Healer {
    /// A healer allowing one reset per peer per `minInterval` seconds (the
    /// core's default without it).
    #[wasm_bindgen(constructor)]
    pub fn new(min_interval: Option<f64>) -> Result<Healer> {
        let inner = match min_interval {
            None => sealpost::Healer::default(),
            Some(s) => sealpost::Healer::new(
                js::non_negative_integer(s)
                    .ok_or(SealpostError::InvalidArgument("minInterval must be whole seconds"))?,
            ),
        };
        Ok(Healer { inner: RefCell::new(inner) })
    }

    /// Restores a healer pickle sealed with the same key and associated
    /// data: its replay and rate memory survive a restart.
    #[wasm_bindgen(js_name = fromPickle)]
    pub fn from_pickle(pickle: &[u8], key: &PickleKey, associated_data: &[u8]) -> Result<Healer> {
        Ok(Healer { inner: RefCell::new(sealpost::Healer::from_pickle(pickle, &key.inner, associated_data)?) })
    }

    /// Seals the healer's replay and rate memory under `key`, bound to
    /// `associatedData`; keep it with the account's pickle.
    pub fn pickle(&self, key: &PickleKey, associated_data: &[u8]) -> Result<Vec<u8>> {
        Ok(borrow(&self.inner)?.pickle(&mut rng()?, &key.inner, associated_data)?)
    }

    /// After decrypting a message from `peer` (an identity) failed with
    /// the error code `error`: a signed reset request to send back to
    /// `peer`, or `undefined` when the error does not mean diverged state
    /// or a request went out recently.
    #[wasm_bindgen(js_name = onDecryptFailure)]
    pub fn on_decrypt_failure(
        &self,
        account: &Account,
        peer: &[u8],
        session_id: Option<String>,
        #[wasm_bindgen(unchecked_param_type = "ErrorCode")] error: &str,
        now: Option<f64>,
    ) -> Result<Option<Vec<u8>>> {
        let now = js::clock(now)?;
        let peer = identity(peer)?;
        let session_id = self::session_id(session_id)?;
        let Some(error) = code_to_core(error)? else { return Ok(None) };
        let mut rng = rng()?;
        let mut healer = borrow(&self.inner)?;
        let account = borrow(&account.inner)?;
        Ok(healer.on_decrypt_failure(&mut rng, &account, &peer, session_id, &error, now))
    }

    /// Checks a reset request received from `expectedPeer` by `account`,
    /// whose current session with that peer has id `currentSession`
    /// (undefined if there is none). A request for another recipient or
    /// another session is `misdirected`.
    ///
    /// When the outcome's `renew` is true, start a new session with the
    /// peer from its bundle; when it is false, the peer renews and this
    /// side waits for its first message.
    #[wasm_bindgen(unchecked_return_type = "HealOutcome")]
    pub fn accept(
        &self,
        request: &[u8],
        account: &Account,
        expected_peer: &[u8],
        current_session: Option<String>,
        now: Option<f64>,
    ) -> Result<JsValue> {
        let now = js::clock(now)?;
        let peer = identity(expected_peer)?;
        let current = session_id(current_session)?;
        let own = *borrow(&account.inner)?.identity();
        let outcome = |peer: sealpost::IdentityPublic, renew: bool, crossed: bool| {
            js::object(&[("peer", js::bytes(&peer.to_bytes())), ("renew", renew.into()), ("crossed", crossed.into())])
        };
        match borrow(&self.inner)?.accept(request, &own, &peer, current, now)? {
            sealpost::HealEvent::Renewed { peer, crossed } => Ok(outcome(peer, true, crossed)),
            sealpost::HealEvent::PeerRenews { peer } => Ok(outcome(peer, false, true)),
            #[allow(unreachable_patterns)] // non_exhaustive
            _ => Err(SealpostError::Internal),
        }
    }
}
