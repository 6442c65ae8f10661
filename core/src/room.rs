//! A chat room with both kinds of message everyday chat offers: a
//! **broadcast** to everyone, sealed once under this member's sender chain
//! ([`GroupSession`]), and a **direct** message to one member, sealed
//! under the pairwise [`Session`] with that member (the `@name` message of
//! a chat room), which the others cannot read.
//!
//! The pairwise sessions also carry the room's sender-key distributions.
//! Inside a pairwise message, a room payload is
//!
//! ```text
//! u8(kind) || vec8(group id) || body
//! kind 1: direct message, body = the text
//! kind 2: sender-key distribution, body = its encoding (envelope type 4)
//! ```
//!
//! Who sent a message is never the caller's word: a broadcast is reported
//! as the member whose identity signed the sender key, a direct message or
//! a distribution as the peer that the pairwise session authenticated
//! ([`Session::peer_identity`]), on every path, the first message of a new
//! session ([`Room::accept`]) included.
//!
//! ```
//! use sealpost::{Incoming, Room};
//! use sealpost::{Account, Envelope, PrekeyBundle, Session, SessionPolicy};
//! let mut rng = sealpost::os_rng();
//! let (policy, now) = (SessionPolicy::default(), 1_700_000_000);
//! let mut alice = Account::new(&mut rng, now);
//! let mut bob = Account::new(&mut rng, now);
//! let bundle = bob.bundle(&policy)?;
//!
//! // Alice opens the room and adds Bob over a new pairwise session.
//! let mut room_a = Room::new(&mut rng, b"lobby", &alice, &policy)?;
//! let to_bob = Session::initiate(&mut rng, &mut alice, &bundle, &policy, now)?;
//! let out = room_a.add_member(&mut rng, now, to_bob)?; // carries Alice's sender key
//!
//! // Bob opens the room and accepts Alice's session: the room learns who
//! // she is from the session itself, and installs her sender key.
//! let Envelope::Prekey(first) = Envelope::from_bytes(&out.envelope)? else { unreachable!() };
//! let mut room_b = Room::new(&mut rng, b"lobby", &bob, &policy)?;
//! let (update, back) = room_b.accept(&mut rng, now, &mut bob, &policy, &first)?;
//! assert_eq!(update, Incoming::KeyUpdate { from: *alice.identity() });
//! // `back` carries Bob's sender key to Alice.
//! room_a.receive(now, bob.identity().signing_key(), &back.envelope)?;
//!
//! let hello = room_a.broadcast(&mut rng, b"hello everyone")?;
//! // The relay's sender field only picks a pairwise session; a broadcast
//! // names its sender by its signature.
//! assert_eq!(
//!     room_b.receive(now, alice.identity().signing_key(), &hello.envelope)?,
//!     Incoming::Broadcast { from: *alice.identity(), text: b"hello everyone".to_vec() }
//! );
//! # Ok::<(), sealpost::Error>(())
//! ```

use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::account::Account;
use crate::codec::{Reader, put_bytes_u8, put_bytes_u32};
use crate::consts::MAX_GROUP_MEMBERS;
use crate::envelope::{Envelope, PrekeyMessage, SenderKeyDistribution};
use crate::error::{Error, Result};
use crate::group::GroupSession;
use crate::identity::IdentityPublic;
use crate::pickle::{PickleKey, PickleKind, bound, open, put_len, read_len, seal, secret_buffer};
use crate::policy::SessionPolicy;
use crate::ratchet::Session;

const KIND_DIRECT: u8 = 1;
const KIND_SENDER_KEY: u8 = 2;

/// An envelope to hand to the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The one recipient, or `None` for every member (a group message).
    pub recipient: Option<IdentityPublic>,
    /// The envelope bytes.
    pub envelope: Vec<u8>,
}

/// What a received envelope turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// A message to everyone.
    Broadcast {
        /// Who sent it (from the signature and sender chain).
        from: IdentityPublic,
        /// The text.
        text: Vec<u8>,
    },
    /// A message to this member only.
    Direct {
        /// Who sent it (from the pairwise session).
        from: IdentityPublic,
        /// The text.
        text: Vec<u8>,
    },
    /// A member's new sender chain was installed.
    KeyUpdate {
        /// Whose chain.
        from: IdentityPublic,
    },
}

/// One member's view of a chat room: the group session and a pairwise
/// session with each other member.
#[derive(Clone, Debug)]
pub struct Room {
    group: GroupSession,
    sessions: Vec<(IdentityPublic, Session)>,
}

impl Room {
    /// Opens `account`'s view of a room, with a fresh sender chain that
    /// `account`'s identity signs.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        group_id: &[u8],
        account: &Account,
        policy: &SessionPolicy,
    ) -> Result<Self> {
        Ok(Self { group: GroupSession::new(rng, group_id, account, policy)?, sessions: Vec::new() })
    }

    /// The group session.
    pub fn group(&self) -> &GroupSession {
        &self.group
    }

    /// The pairwise session with `member`.
    pub fn session(&mut self, member: &IdentityPublic) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|(id, _)| id == member).map(|(_, s)| s)
    }

    /// The members, in the order they were added.
    pub fn members(&self) -> impl Iterator<Item = &IdentityPublic> {
        self.sessions.iter().map(|(id, _)| id)
    }

    /// Adds the member that `session` authenticates
    /// ([`Session::peer_identity`]) and returns this member's sender key
    /// sealed for it.
    pub fn add_member<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        session: Session,
    ) -> Result<Outgoing> {
        let id = *session.peer_identity();
        self.group.add_member(id)?;
        self.sessions.retain(|(other, _)| *other != id);
        self.sessions.push((id, session));
        let skd = self.group.distribution();
        self.send_sender_key(rng, now, &id, &skd)
    }

    /// Accepts the first message of a session that a member started for
    /// this room: opens it with `account` ([`Account::accept`]), adds the
    /// peer that the session authenticates as a member, and interprets the
    /// message as coming from that peer. Returns what it was and this
    /// member's sender key sealed for the new member.
    ///
    /// The room admits whoever started the session; look at `first.identity`
    /// before calling if the application decides who may join. If the
    /// message is not a valid room payload for this room, or carries a
    /// distribution that fails its checks, the error is returned and the
    /// room is unchanged (the account has still used up the prekey).
    pub fn accept<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        account: &mut Account,
        policy: &SessionPolicy,
        first: &PrekeyMessage,
    ) -> Result<(Incoming, Outgoing)> {
        let (session, plaintext) = account.accept(policy, now, first)?;
        let plaintext = Zeroizing::new(plaintext);
        let peer = *session.peer_identity();
        let payload = self.parse_payload(&plaintext)?;
        if let Payload::SenderKey(skd) = &payload {
            // Checked before anything changes; membership follows below.
            self.group.check_distribution(&peer, skd, false)?;
        }
        let back = self.add_member(rng, now, session)?;
        Ok((self.apply(&peer, payload)?, back))
    }

    /// Removes a member: starts a new sender chain, signed by `account`
    /// (whose room this is, else [`Error::InvalidKey`]), and returns it
    /// sealed for each remaining member. Every remaining member must do the
    /// same.
    pub fn remove_member<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        account: &Account,
        member: &IdentityPublic,
    ) -> Result<Vec<Outgoing>> {
        let skd = self.group.remove_member(rng, account, member)?;
        self.sessions.retain(|(id, _)| id != member);
        let ids: Vec<IdentityPublic> = self.sessions.iter().map(|(id, _)| *id).collect();
        ids.iter().map(|id| self.send_sender_key(rng, now, id, &skd)).collect()
    }

    fn send_sender_key<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        to: &IdentityPublic,
        skd: &SenderKeyDistribution,
    ) -> Result<Outgoing> {
        let body = skd.to_bytes()?;
        self.send_pairwise(rng, now, to, KIND_SENDER_KEY, &body)
    }

    fn send_pairwise<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        to: &IdentityPublic,
        kind: u8,
        body: &[u8],
    ) -> Result<Outgoing> {
        let mut payload = Zeroizing::new(Vec::with_capacity(body.len().saturating_add(66)));
        payload.push(kind);
        put_bytes_u8(&mut payload, self.group.group_id())?;
        payload.extend_from_slice(body);
        let session = self.session(to).ok_or(Error::UnknownSender)?;
        let envelope = session.encrypt(rng, now, &payload)?;
        Ok(Outgoing { recipient: Some(*to), envelope })
    }

    /// A message to everyone, sealed once.
    pub fn broadcast<R: rand_core::CryptoRng + ?Sized>(&mut self, rng: &mut R, text: &[u8]) -> Result<Outgoing> {
        Ok(Outgoing { recipient: None, envelope: self.group.encrypt(rng, text)? })
    }

    /// A message to one member only, over the pairwise session.
    pub fn direct<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        to: &IdentityPublic,
        text: &[u8],
    ) -> Result<Outgoing> {
        self.send_pairwise(rng, now, to, KIND_DIRECT, text)
    }

    /// Sends this member's current sender chain to every member if the
    /// group session must redistribute it (after [`Room::from_pickle`]),
    /// and records that it did; returns the envelopes, none when nothing
    /// was due. [`Room::broadcast`] fails with
    /// [`Error::RedistributionRequired`] until this was called.
    pub fn redistribute<R: rand_core::CryptoRng + ?Sized>(&mut self, rng: &mut R, now: u64) -> Result<Vec<Outgoing>> {
        if !self.group.must_redistribute() {
            return Ok(Vec::new());
        }
        let skd = self.group.distribution();
        let ids: Vec<IdentityPublic> = self.sessions.iter().map(|(id, _)| *id).collect();
        let out = ids.iter().map(|id| self.send_sender_key(rng, now, id, &skd)).collect::<Result<Vec<_>>>()?;
        self.group.mark_distributed();
        Ok(out)
    }

    /// Serializes and seals the room (its group session and every pairwise
    /// session, PROTOCOL.md 11.5), bound to `associated_data` (for example
    /// the group id and the storage key): the same bytes must be given to
    /// [`Room::from_pickle`].
    pub fn pickle<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        key: &PickleKey,
        associated_data: &[u8],
    ) -> Result<Vec<u8>> {
        let group = self.group.encode_pickle()?;
        let sessions = self.sessions.iter().map(|(_, s)| s.encode_pickle()).collect::<Result<Vec<_>>>()?;
        let len = sessions.iter().fold(bound(8, 1, group.len()), |n, s| bound(n, 1, s.len().saturating_add(4)));
        let mut out = secret_buffer(len);
        put_bytes_u32(&mut out, &group)?;
        put_len(&mut out, sessions.len())?;
        for s in &sessions {
            put_bytes_u32(&mut out, s)?;
        }
        seal(rng, PickleKind::Room, key, associated_data, &out.finish()?)
    }

    /// Opens and restores a room pickle of the member `own`, sealed with
    /// `associated_data` ([`Error::AuthenticationFailed`] if the key or the
    /// associated data differs, [`Error::InvalidKey`] if the pickle belongs
    /// to another identity).
    ///
    /// As with [`GroupSession::from_pickle`] and [`Session::from_pickle`],
    /// the pickle may be older than the real state: the group session
    /// starts a new sender chain, so call [`Room::redistribute`] and send
    /// what it returns before broadcasting, and each pairwise session starts
    /// a new epoch with its next message.
    pub fn from_pickle<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        pickle: &[u8],
        key: &PickleKey,
        associated_data: &[u8],
        own: &Account,
    ) -> Result<Self> {
        let plain = open(pickle, PickleKind::Room, key, associated_data)?;
        let mut r = Reader::new(&plain, "room pickle");
        let group = GroupSession::decode_pickle(rng, r.bytes_u32(usize::MAX)?, own)?;
        let n = read_len(&mut r, MAX_GROUP_MEMBERS)?;
        let mut sessions: Vec<(IdentityPublic, Session)> = Vec::with_capacity(n);
        for _ in 0..n {
            let session = Session::decode_pickle(r.bytes_u32(usize::MAX)?)?;
            let peer = *session.peer_identity();
            // Every session is this member's, with a distinct member.
            if session.local_identity != *own.identity() {
                return Err(Error::InvalidKey);
            }
            if !group.is_member(&peer) || sessions.iter().any(|(id, _)| *id == peer) {
                return Err(Error::Malformed("room pickle"));
            }
            sessions.push((peer, session));
        }
        r.finish()?;
        Ok(Self { group, sessions })
    }

    /// Opens an envelope that arrived for this room.
    ///
    /// `sender_hint` is what the transport says about the sender (the
    /// relay's `sender` field, an identity signing key). It only chooses
    /// which pairwise session a ratchet message (type 2) is tried against,
    /// and is never reported as the sender:
    ///
    /// * a group message (type 3) names the member whose signed sender key
    ///   it is under;
    /// * a ratchet message names the peer of the session that opened it
    ///   (`UnknownSender` if no member's signing key is `sender_hint`);
    /// * a later prekey message (type 1) of a session already in the room
    ///   goes to the session it [`Session::matches`], whatever the hint. A
    ///   prekey message of a new session is `UnknownSender` here: pass it
    ///   to [`Room::accept`].
    pub fn receive(&mut self, now: u64, sender_hint: &[u8; 32], envelope: &[u8]) -> Result<Incoming> {
        let (peer, plaintext) = match Envelope::from_bytes(envelope)? {
            Envelope::Group(m) => {
                let (sender, text) = self.group.decrypt_message(&m)?;
                return Ok(Incoming::Broadcast { from: sender, text });
            }
            Envelope::Ratchet(m) => {
                let (_, session) = self
                    .sessions
                    .iter_mut()
                    .find(|(id, _)| id.signing_key() == sender_hint)
                    .ok_or(Error::UnknownSender)?;
                let plaintext = Zeroizing::new(session.decrypt_ratchet(now, &m)?);
                (*session.peer_identity(), plaintext)
            }
            Envelope::Prekey(m) => {
                let (_, session) = self.sessions.iter_mut().find(|(_, s)| s.matches(&m)).ok_or(Error::UnknownSender)?;
                let plaintext = Zeroizing::new(session.decrypt_prekey(now, &m)?);
                (*session.peer_identity(), plaintext)
            }
            Envelope::SenderKeyDistribution(_) => return Err(Error::Malformed("sender key outside a session")),
        };
        let payload = self.parse_payload(&plaintext)?;
        self.apply(&peer, payload)
    }

    /// Parses the plaintext of a pairwise message as a room payload of this
    /// room (12.5).
    fn parse_payload(&self, plaintext: &[u8]) -> Result<Payload> {
        let mut r = Reader::new(plaintext, "room payload");
        let kind = r.u8()?;
        if r.bytes_u8()? != self.group.group_id() {
            return Err(Error::Malformed("group id"));
        }
        let body = r.take(r.remaining())?;
        match kind {
            KIND_DIRECT => Ok(Payload::Direct(body.to_vec())),
            KIND_SENDER_KEY => match Envelope::from_bytes(body)? {
                Envelope::SenderKeyDistribution(skd) => Ok(Payload::SenderKey(skd)),
                _ => Err(Error::Malformed("room payload")),
            },
            _ => Err(Error::Malformed("room payload")),
        }
    }

    /// Acts on a payload that the pairwise session with `peer` opened.
    fn apply(&mut self, peer: &IdentityPublic, payload: Payload) -> Result<Incoming> {
        match payload {
            Payload::Direct(text) => Ok(Incoming::Direct { from: *peer, text }),
            Payload::SenderKey(skd) => {
                self.group.process_distribution(peer, &skd)?;
                Ok(Incoming::KeyUpdate { from: *peer })
            }
        }
    }
}

/// A parsed room payload.
enum Payload {
    Direct(Vec<u8>),
    SenderKey(SenderKeyDistribution),
}
