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
//! ```
//! use sealpost::room::{Incoming, Room};
//! use sealpost::{Account, Envelope, PrekeyBundle, Session, SessionPolicy};
//! let mut rng = sealpost::os_rng();
//! let (policy, now) = (SessionPolicy::default(), 1_700_000_000);
//! let alice = Account::new(&mut rng, now);
//! let mut bob = Account::new(&mut rng, now);
//! let bundle = bob.bundle(&policy)?;
//!
//! // Alice opens the room and adds Bob over a new pairwise session.
//! let mut room_a = Room::new(&mut rng, b"lobby", alice.identity(), &policy)?;
//! let to_bob = Session::initiate(&mut rng, &alice, &bundle, &policy, now)?;
//! let out = room_a.add_member(&mut rng, now, to_bob)?; // carries Alice's sender key
//!
//! // Bob accepts the session and joins the room.
//! let Envelope::Prekey(first) = Envelope::from_bytes(&out.envelope)? else { unreachable!() };
//! let (to_alice, payload) = bob.accept(&policy, now, &first)?;
//! let mut room_b = Room::new(&mut rng, b"lobby", bob.identity(), &policy)?;
//! let _their_key = room_b.add_member(&mut rng, now, to_alice)?; // Bob's sender key, for Alice
//! room_b.handle_payload(alice.identity(), &payload)?; // Alice's sender key
//!
//! let hello = room_a.broadcast(&mut rng, b"hello everyone")?;
//! assert!(matches!(room_b.receive(now, alice.identity(), &hello.envelope)?,
//!     Incoming::Broadcast { text, .. } if text == b"hello everyone"));
//! # Ok::<(), sealpost::Error>(())
//! ```

use alloc::vec::Vec;

use crate::codec::{Reader, put_bytes_u8};
use crate::envelope::{Envelope, SenderKeyDistribution};
use crate::error::{Error, Result};
use crate::group::GroupSession;
use crate::identity::IdentityPublic;
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
#[derive(Debug)]
pub struct Room {
    group: GroupSession,
    sessions: Vec<(IdentityPublic, Session)>,
}

impl Room {
    /// Opens a room view with a fresh sender chain.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        group_id: &[u8],
        own_identity: &IdentityPublic,
        policy: &SessionPolicy,
    ) -> Result<Self> {
        Ok(Self { group: GroupSession::new(rng, group_id, own_identity, policy)?, sessions: Vec::new() })
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

    /// Adds a member reached through `session` and returns this member's
    /// sender key sealed for it.
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

    /// Removes a member: starts a new sender chain and returns it sealed for
    /// each remaining member. Every remaining member must do the same.
    pub fn remove_member<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: u64,
        member: &IdentityPublic,
    ) -> Result<Vec<Outgoing>> {
        self.sessions.retain(|(id, _)| id != member);
        let skd = self.group.remove_member(rng, member);
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
        let mut payload = zeroize::Zeroizing::new(Vec::with_capacity(body.len().saturating_add(66)));
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

    /// Opens an envelope that `from` sent to this room: a group message, or
    /// a pairwise message of the session with `from`.
    pub fn receive(&mut self, now: u64, from: &IdentityPublic, envelope: &[u8]) -> Result<Incoming> {
        match Envelope::from_bytes(envelope)? {
            Envelope::Group(m) => {
                let (sender, text) = self.group.decrypt_message(&m)?;
                Ok(Incoming::Broadcast { from: sender, text })
            }
            Envelope::Ratchet(m) => {
                let plaintext = self.session(from).ok_or(Error::UnknownSender)?.decrypt_ratchet(now, &m)?;
                self.handle_payload(from, &plaintext)
            }
            Envelope::Prekey(m) => {
                let plaintext = self.session(from).ok_or(Error::UnknownSender)?.decrypt_prekey(now, &m)?;
                self.handle_payload(from, &plaintext)
            }
            Envelope::SenderKeyDistribution(_) => Err(Error::Malformed("sender key outside a session")),
        }
    }

    /// Interprets the plaintext of a pairwise message from `from` (for the
    /// first message of a session, which [`crate::Account::accept`] opens).
    pub fn handle_payload(&mut self, from: &IdentityPublic, plaintext: &[u8]) -> Result<Incoming> {
        let mut r = Reader::new(plaintext, "room payload");
        let kind = r.u8()?;
        if r.bytes_u8()? != self.group.group_id() {
            return Err(Error::Malformed("group id"));
        }
        let body = r.take(r.remaining())?;
        match kind {
            KIND_DIRECT => Ok(Incoming::Direct { from: *from, text: body.to_vec() }),
            KIND_SENDER_KEY => match Envelope::from_bytes(body)? {
                Envelope::SenderKeyDistribution(skd) => {
                    self.group.process_distribution(from, &skd)?;
                    Ok(Incoming::KeyUpdate { from: *from })
                }
                _ => Err(Error::Malformed("room payload")),
            },
            _ => Err(Error::Malformed("room payload")),
        }
    }
}
