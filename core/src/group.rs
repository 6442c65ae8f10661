//! Group messaging with sender keys.
//!
//! Each member owns a **sender chain**: an Ed25519 signing key and a chain
//! key. It hands the chain (the [`SenderKeyDistribution`]: the signing
//! public key, the position and the chain key there) to every other member
//! over their pairwise session. The distribution carries two signatures:
//! the owner's **identity** key vouches for the sender key (so nobody who
//! knows only the owner's public identity can announce a sender key in its
//! name), and the sender key signs the whole distribution together with
//! the owner's identity (so nobody can claim another member's sender key
//! as its own, or change the chain it hands out). A group message is
//! sealed once under the next key of the sender's chain and signed with the
//! sender's signing key; every member opens it with its copy of that chain
//! and checks the signature.
//!
//! ```text
//! secret_i || CK_{i+1} = HKDF-Expand(PRK = CK_i, info = "sealpost/v1/group-chain-step", L = 64)
//! ciphertext = suite.seal(secret_i, salt, aad = header bytes, padded plaintext)
//! signature  = Ed25519(signing key, vec8("sealpost/v1/group-message") || signed bytes)
//! ```
//!
//! * A member added later receives the chain at its current position and so
//!   cannot read anything sent before (the chain only runs forward).
//! * When a member is removed, every remaining member starts a new chain
//!   (fresh signing key, fresh chain key) and distributes it to the others
//!   only: the removed member cannot read anything sent afterwards.
//! * A member knows the others' chain keys but not their signing keys, so
//!   it cannot forge a message in another member's name.
//! * Replays and reordering follow the pairwise rules: each key is used
//!   once; late keys are kept within bounds.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use crate::account::Account;
use crate::codec::{Reader, put_bytes_u8, put_u32};
use crate::consts::{MAX_GROUP_CHAINS_PER_MEMBER, MAX_GROUP_MEMBERS, MAX_SKIP_PER_CHAIN_CAP, MAX_SKIPPED_TOTAL_CAP};
use crate::context::{self, SignatureContext};
use crate::envelope::{Envelope, GroupMessage, MAX_GROUP_ID_LEN, SALT_LEN, SenderKeyDistribution, unpad};
use crate::error::{Error, Result};
use crate::identity::{IDENTITY_PUBLIC_LEN, IdentityKeyPair, IdentityPublic, ed25519_public};
use crate::kdf::label;
use crate::pickle::{PickleKey, PickleKind, open, put_policy, read_policy, seal};
use crate::policy::{PROTOCOL_VERSION, SessionPolicy};
use crate::ratchet::chain_step;
use crate::secret::SymmetricKey;
use crate::suite::Suite;

/// What the owner's identity key signs under
/// [`SignatureContext::SenderKeyOwner`]:
/// `vec8(group_id) || sender_key`.
fn owner_message(group_id: &[u8], sender_key: &[u8; 32]) -> Result<Vec<u8>> {
    let mut m = Vec::with_capacity(group_id.len().saturating_add(33));
    put_bytes_u8(&mut m, group_id)?;
    m.extend_from_slice(sender_key);
    Ok(m)
}

/// What the sender key signs under
/// [`SignatureContext::SenderKeyDistribution`]: the owner's identity
/// signing key, then every byte of the distribution before the chain
/// signature. It holds the chain key, so it is wiped on drop.
fn distribution_message(owner: &IdentityPublic, skd: &SenderKeyDistribution) -> Result<Zeroizing<Vec<u8>>> {
    let body = skd.chain_signed_bytes()?;
    let mut m = Zeroizing::new(Vec::with_capacity(body.len().saturating_add(32)));
    m.extend_from_slice(owner.signing_key());
    m.extend_from_slice(&body);
    Ok(m)
}

/// This member's own sender chain.
#[derive(Clone)]
struct OwnChain {
    signing: SigningKey,
    ck: SymmetricKey,
    iteration: u32,
    /// The identity signature over this chain's sender key
    /// ([`SignatureContext::SenderKeyOwner`]).
    owner_signature: [u8; 64],
}

/// Another member's sender chain, as far as this member has followed it.
///
/// Its secrets are boxed: the chains and their skipped keys sit in
/// collections that grow and shrink, and a growing `Vec`/`VecDeque` frees
/// its old buffer without wiping it (a removed element's bytes stay behind
/// too). Boxed, the collections hold only pointers and each secret is
/// wiped in its own allocation when dropped.
#[derive(Clone)]
struct PeerChain {
    sender_key: [u8; 32],
    ck: Box<SymmetricKey>,
    next: u32,
    /// Iterations below this were evicted or predate the distribution.
    floor: u32,
    skipped: VecDeque<(u32, Box<SymmetricKey>)>,
}

#[derive(Clone)]
struct Member {
    identity: IdentityPublic,
    /// Newest last; at most [`MAX_GROUP_CHAINS_PER_MEMBER`].
    chains: Vec<PeerChain>,
}

/// One member's view of a group: its own sender chain and the chains of
/// the others.
///
/// ```
/// use sealpost::{Account, GroupSession, SessionPolicy};
/// let mut rng = sealpost::os_rng();
/// let policy = SessionPolicy::default();
/// let alice = Account::new(&mut rng, 1_700_000_000);
/// let bob = Account::new(&mut rng, 1_700_000_000);
/// // Each identity signs its own sender key.
/// let mut a = GroupSession::new(&mut rng, b"book club", &alice, &policy)?;
/// let mut b = GroupSession::new(&mut rng, b"book club", &bob, &policy)?;
/// a.add_member(*bob.identity())?;
/// b.add_member(*alice.identity())?;
/// // Each hands its chain to the other over their pairwise session.
/// b.process_distribution(alice.identity(), &a.distribution())?;
/// a.process_distribution(bob.identity(), &b.distribution())?;
/// let sealed = a.encrypt(&mut rng, b"chapter 3 tonight")?;
/// let (from, text) = b.decrypt(&sealed)?;
/// assert_eq!((from, text.as_slice()), (*alice.identity(), &b"chapter 3 tonight"[..]));
/// # Ok::<(), sealpost::Error>(())
/// ```
#[derive(Clone)]
pub struct GroupSession {
    group_id: Vec<u8>,
    suite: Suite,
    own_identity: IdentityPublic,
    policy: SessionPolicy,
    own: OwnChain,
    members: Vec<Member>,
    /// Restored from a pickle: a new chain waits to be distributed.
    redistribute: bool,
}

/// A fresh sender chain of `own` in `group_id`, its sender key signed by
/// `own`'s identity key.
fn new_chain<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    own: &IdentityKeyPair,
    group_id: &[u8],
) -> Result<OwnChain> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut seed[..]);
    let signing = SigningKey::from_bytes(&seed);
    let owner_signature =
        own.sign(SignatureContext::SenderKeyOwner, &owner_message(group_id, &signing.verifying_key().to_bytes())?);
    Ok(OwnChain { signing, ck: SymmetricKey::random(rng), iteration: 0, owner_signature })
}

impl GroupSession {
    /// A new group view of the member `own`, with a fresh sender chain
    /// whose sender key `own`'s identity key signs. The group's suite is
    /// the policy's first choice; every member must use the same.
    pub fn new<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        group_id: &[u8],
        own: &Account,
        policy: &SessionPolicy,
    ) -> Result<Self> {
        let own = &own.identity;
        policy.validate()?;
        if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_LEN {
            return Err(Error::Malformed("group id"));
        }
        let suite = *policy.suites.first().ok_or(Error::NoCommonSuite)?;
        Ok(Self {
            group_id: group_id.to_vec(),
            suite,
            own_identity: *own.public(),
            policy: policy.clone(),
            own: new_chain(rng, own, group_id)?,
            members: Vec::new(),
            redistribute: false,
        })
    }

    /// The group id.
    pub fn group_id(&self) -> &[u8] {
        &self.group_id
    }

    /// The group's suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The other members, in the order they were added.
    pub fn members(&self) -> impl Iterator<Item = &IdentityPublic> {
        self.members.iter().map(|m| &m.identity)
    }

    /// Whether `identity` is a member (other than this one).
    pub fn is_member(&self, identity: &IdentityPublic) -> bool {
        self.members.iter().any(|m| &m.identity == identity)
    }

    /// This member's sender chain at its current position, to hand to
    /// another member over their pairwise session.
    pub fn distribution(&self) -> SenderKeyDistribution {
        let mut skd = SenderKeyDistribution {
            version: PROTOCOL_VERSION,
            suite: self.suite,
            group_id: self.group_id.clone(),
            sender_key: self.own.signing.verifying_key().to_bytes(),
            iteration: self.own.iteration,
            chain_key: self.own.ck.clone(),
            owner_signature: self.own.owner_signature,
            chain_signature: [0; 64],
        };
        // The group id was checked at creation, so the message always encodes.
        if let Ok(m) = distribution_message(&self.own_identity, &skd) {
            skd.chain_signature = context::sign(&self.own.signing, SignatureContext::SenderKeyDistribution, &m);
        }
        skd
    }

    /// Whether this session was restored from a pickle and has started a
    /// new sender chain that the other members do not have yet: send them
    /// [`GroupSession::distribution`], then call
    /// [`GroupSession::mark_distributed`].
    pub fn must_redistribute(&self) -> bool {
        self.redistribute
    }

    /// Records that the current chain was sent to every member.
    pub fn mark_distributed(&mut self) {
        self.redistribute = false;
    }

    /// Adds a member: its distributions are accepted from now on. Send it
    /// [`GroupSession::distribution`] so it can read what this member sends
    /// from now on (and nothing before).
    pub fn add_member(&mut self, identity: IdentityPublic) -> Result<()> {
        if identity == self.own_identity || self.is_member(&identity) {
            return Ok(());
        }
        if self.members.len() >= MAX_GROUP_MEMBERS {
            return Err(Error::TooLarge);
        }
        self.members.push(Member { identity, chains: Vec::new() });
        Ok(())
    }

    /// Removes `member` and starts a new sender chain, signed by `own`
    /// (this session's identity, else [`Error::InvalidKey`] and nothing
    /// changes). Send the returned distribution to every remaining member;
    /// every other remaining member must do the same, so that the removed
    /// member can read nothing sent afterwards.
    pub fn remove_member<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        own: &Account,
        member: &IdentityPublic,
    ) -> Result<SenderKeyDistribution> {
        let chain = self.new_own_chain(rng, &own.identity)?;
        self.members.retain(|m| &m.identity != member);
        self.own = chain;
        Ok(self.distribution())
    }

    /// Starts a new sender chain (fresh signing key and chain key), its
    /// sender key signed by `own` (this session's identity, else
    /// [`Error::InvalidKey`] and nothing changes), and returns its
    /// distribution.
    pub fn rotate<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        own: &Account,
    ) -> Result<SenderKeyDistribution> {
        self.own = self.new_own_chain(rng, &own.identity)?;
        Ok(self.distribution())
    }

    fn new_own_chain<R: rand_core::CryptoRng + ?Sized>(&self, rng: &mut R, own: &IdentityKeyPair) -> Result<OwnChain> {
        if own.public() != &self.own_identity {
            return Err(Error::InvalidKey);
        }
        new_chain(rng, own, &self.group_id)
    }

    /// Takes the chain of the member `from`, received over the pairwise
    /// session with `from`. It is accepted only if `from`'s identity key
    /// signed its sender key and the sender key signed the distribution for
    /// `from` (PROTOCOL.md 12.4 gives the checks and their order). A newer
    /// chain of the same member is added alongside the previous one, so
    /// late messages still open.
    pub fn process_distribution(&mut self, from: &IdentityPublic, skd: &SenderKeyDistribution) -> Result<()> {
        self.check_distribution(from, skd, true)?;
        let member = self.members.iter_mut().find(|m| &m.identity == from).ok_or(Error::UnknownSender)?;
        if let Some(existing) = member.chains.iter().find(|c| c.sender_key == skd.sender_key) {
            // The same chain again: only accept it if it is not behind.
            if skd.iteration <= existing.next {
                return Ok(());
            }
            member.chains.retain(|c| c.sender_key != skd.sender_key);
        }
        member.chains.push(PeerChain {
            sender_key: skd.sender_key,
            ck: Box::new(skd.chain_key.clone()),
            next: skd.iteration,
            floor: skd.iteration,
            skipped: VecDeque::new(),
        });
        while member.chains.len() > MAX_GROUP_CHAINS_PER_MEMBER {
            member.chains.remove(0);
        }
        Ok(())
    }

    /// Every check [`GroupSession::process_distribution`] makes, in the
    /// order of PROTOCOL.md 12.4, without changing anything. The membership
    /// of `from` is checked only if `member_required`.
    pub(crate) fn check_distribution(
        &self,
        from: &IdentityPublic,
        skd: &SenderKeyDistribution,
        member_required: bool,
    ) -> Result<()> {
        if skd.group_id != self.group_id {
            return Err(Error::Malformed("group id"));
        }
        if skd.version != PROTOCOL_VERSION || skd.suite != self.suite {
            return Err(Error::Downgrade);
        }
        if member_required && !self.is_member(from) {
            return Err(Error::UnknownSender);
        }
        let key = ed25519_public(&skd.sender_key)?;
        // The member's identity vouches for the sender key...
        from.verify(
            SignatureContext::SenderKeyOwner,
            &owner_message(&self.group_id, &skd.sender_key)?,
            &skd.owner_signature,
        )?;
        // ...and the sender key for the member and the chain it hands out.
        context::verify(
            &key,
            SignatureContext::SenderKeyDistribution,
            &distribution_message(from, skd)?,
            &skd.chain_signature,
        )?;
        // A sender key belongs to one member only.
        if self.members.iter().any(|m| &m.identity != from && m.chains.iter().any(|c| c.sender_key == skd.sender_key)) {
            return Err(Error::InvalidKey);
        }
        Ok(())
    }

    /// Seals `plaintext` once for the whole group.
    ///
    /// Fails with [`Error::RedistributionRequired`] after a restore until
    /// the new chain was handed out ([`GroupSession::must_redistribute`]).
    pub fn encrypt<R: rand_core::CryptoRng + ?Sized>(&mut self, rng: &mut R, plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.redistribute {
            return Err(Error::RedistributionRequired);
        }
        let next_iteration = self.own.iteration.checked_add(1).ok_or(Error::SessionExpired)?;
        let (secret, next_ck) = chain_step(&self.own.ck, label::GROUP_CHAIN_STEP)?;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut msg = GroupMessage {
            version: PROTOCOL_VERSION,
            suite: self.suite,
            group_id: self.group_id.clone(),
            sender_key: self.own.signing.verifying_key().to_bytes(),
            iteration: self.own.iteration,
            salt,
            ciphertext: Vec::new(),
            signature: [0; 64],
        };
        let padded = self.policy.padding.pad(plaintext);
        msg.ciphertext = self.suite.seal(&secret, &salt, &msg.header_bytes()?, &padded)?;
        msg.signature = sign_group(&self.own.signing, &msg.signed_bytes()?);
        self.own.ck = next_ck;
        self.own.iteration = next_iteration;
        msg.to_bytes()
    }

    /// Opens a group message: checks the sender's signature, then decrypts.
    /// Returns the sender's identity and the plaintext. On any error the
    /// session is unchanged.
    pub fn decrypt(&mut self, envelope: &[u8]) -> Result<(IdentityPublic, Vec<u8>)> {
        match Envelope::from_bytes(envelope)? {
            Envelope::Group(m) => self.decrypt_message(&m),
            _ => Err(Error::Malformed("not a group message")),
        }
    }

    /// Opens a parsed group message.
    ///
    /// The checks run in the order of PROTOCOL.md 12.3, so when several
    /// fail, the first one's error is returned: group id
    /// (`Malformed("group id")`), version, suite (`Downgrade`), sender key
    /// (`UnknownSender`), signature (`InvalidSignature`), position
    /// (`Replay`, `OutsideWindow`, `TooManySkipped`), then the ciphertext.
    pub fn decrypt_message(&mut self, msg: &GroupMessage) -> Result<(IdentityPublic, Vec<u8>)> {
        if msg.group_id != self.group_id {
            return Err(Error::Malformed("group id"));
        }
        if msg.version != PROTOCOL_VERSION || msg.suite != self.suite {
            return Err(Error::Downgrade);
        }
        let max_skip = self.policy.max_skip_per_chain.min(MAX_SKIP_PER_CHAIN_CAP);
        let max_kept = usize::try_from(self.policy.max_skipped_total.min(MAX_SKIPPED_TOTAL_CAP)).unwrap_or(usize::MAX);
        let (mi, ci) = self
            .members
            .iter()
            .enumerate()
            .find_map(|(mi, m)| m.chains.iter().position(|c| c.sender_key == msg.sender_key).map(|ci| (mi, ci)))
            .ok_or(Error::UnknownSender)?;
        let member = self.members.get(mi).ok_or(Error::UnknownSender)?;
        let chain = member.chains.get(ci).ok_or(Error::UnknownSender)?;

        // The signature first: a member holding the chain key cannot forge.
        let key = ed25519_public(&chain.sender_key)?;
        context::verify(&key, SignatureContext::GroupMessage, &msg.signed_bytes()?, &msg.signature)?;

        let i = msg.iteration;
        let (secret, advance) = if let Some(pos) = chain.skipped.iter().position(|(n, _)| *n == i) {
            (
                chain.skipped.get(pos).map(|(_, k)| SymmetricKey::clone(k)).ok_or(Error::OutsideWindow)?,
                Advance::Skipped(pos),
            )
        } else if i < chain.next {
            return Err(if i >= chain.floor { Error::Replay } else { Error::OutsideWindow });
        } else {
            let gap = i.saturating_sub(chain.next);
            if gap > max_skip {
                return Err(Error::TooManySkipped);
            }
            let mut ck = SymmetricKey::clone(&chain.ck);
            let mut skipped = Vec::with_capacity(usize::try_from(gap).unwrap_or(0));
            let mut n = chain.next;
            loop {
                let (secret, next_ck) = chain_step(&ck, label::GROUP_CHAIN_STEP)?;
                ck = next_ck;
                if n == i {
                    break (secret, Advance::Forward { ck, skipped });
                }
                skipped.push((n, Box::new(secret)));
                n = n.checked_add(1).ok_or(Error::OutsideWindow)?;
            }
        };
        let padded = Zeroizing::new(self.suite.open(&secret, &msg.salt, &msg.header_bytes()?, &msg.ciphertext)?);
        let plaintext = unpad(&padded)?.to_vec();

        let identity = member.identity;
        let chain = self.members.get_mut(mi).and_then(|m| m.chains.get_mut(ci)).ok_or(Error::UnknownSender)?;
        match advance {
            Advance::Skipped(pos) => {
                chain.skipped.remove(pos);
            }
            Advance::Forward { ck, skipped } => {
                *chain.ck = ck;
                chain.next = i.saturating_add(1);
                chain.skipped.extend(skipped);
                while chain.skipped.len() > max_kept {
                    if let Some((n, _)) = chain.skipped.pop_front() {
                        chain.floor = chain.floor.max(n.saturating_add(1));
                    }
                }
            }
        }
        Ok((identity, plaintext))
    }

    /// Every secret held, in no particular order (feature `hazmat`).
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
    pub(crate) fn secrets(&self) -> Zeroizing<Vec<[u8; 32]>> {
        let chains = self.members.iter().flat_map(|m| m.chains.iter());
        let n = chains.clone().fold(2usize, |n, c| n.saturating_add(1).saturating_add(c.skipped.len()));
        let mut out = Zeroizing::new(Vec::with_capacity(n));
        out.push(self.own.signing.to_bytes());
        out.push(*self.own.ck.as_bytes());
        for c in chains {
            out.push(*c.ck.as_bytes());
            out.extend(c.skipped.iter().map(|(_, k)| *k.as_bytes()));
        }
        out
    }

    /// Serializes and seals the group session, bound to `associated_data`
    /// (for example the group id and the storage key): the same bytes must
    /// be given to [`GroupSession::from_pickle`].
    pub fn pickle<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        key: &PickleKey,
        associated_data: &[u8],
    ) -> Result<Vec<u8>> {
        seal(rng, PickleKind::Group, key, associated_data, &self.encode_pickle()?)
    }

    /// The plaintext of this session's pickle (PROTOCOL.md 12.6), in memory
    /// that is wiped when dropped.
    pub(crate) fn encode_pickle(&self) -> Result<Zeroizing<Vec<u8>>> {
        use crate::pickle::{bound, secret_buffer};
        // Fixed part (group id, identity, policy, own chain) under 1 KiB;
        // per member 129 bytes, per chain 76, per skipped key 36.
        let len = self.members.iter().fold(bound(1024, self.members.len(), 129), |n, m| {
            m.chains.iter().fold(bound(n, m.chains.len(), 76), |n, c| bound(n, c.skipped.len(), 36))
        });
        let mut out = secret_buffer(len);
        put_bytes_u8(&mut out, &self.group_id)?;
        out.push(self.suite.id());
        out.extend_from_slice(&self.own_identity.to_bytes());
        put_policy(&mut out, &self.policy)?;
        out.extend_from_slice(&self.own.signing.to_bytes());
        out.extend_from_slice(self.own.ck.as_bytes());
        put_u32(&mut out, self.own.iteration);
        put_u32(&mut out, u32::try_from(self.members.len()).map_err(|_| Error::TooLarge)?);
        for m in &self.members {
            out.extend_from_slice(&m.identity.to_bytes());
            out.push(u8::try_from(m.chains.len()).map_err(|_| Error::TooLarge)?);
            for c in &m.chains {
                out.extend_from_slice(&c.sender_key);
                out.extend_from_slice(c.ck.as_bytes());
                put_u32(&mut out, c.next);
                put_u32(&mut out, c.floor);
                put_u32(&mut out, u32::try_from(c.skipped.len()).map_err(|_| Error::TooLarge)?);
                for (n, k) in &c.skipped {
                    put_u32(&mut out, *n);
                    out.extend_from_slice(k.as_bytes());
                }
            }
        }
        out.finish()
    }

    /// Opens and restores a group session pickle of the member `own`, sealed
    /// with `associated_data` ([`Error::AuthenticationFailed`] if the key or
    /// the associated data differs, [`Error::InvalidKey`] if the pickle
    /// belongs to another identity).
    ///
    /// The pickle may be older than the real state, so the restored
    /// session starts a new sender chain at once (its old chain's positions
    /// may already have been used), signed by `own`:
    /// [`GroupSession::must_redistribute`] is then true until the new chain
    /// has been sent to every member.
    pub fn from_pickle<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        pickle: &[u8],
        key: &PickleKey,
        associated_data: &[u8],
        own: &Account,
    ) -> Result<Self> {
        Self::decode_pickle(rng, &open(pickle, PickleKind::Group, key, associated_data)?, own)
    }

    /// Restores a group session from its pickle plaintext (PROTOCOL.md
    /// 12.6) as [`GroupSession::from_pickle`] does.
    pub(crate) fn decode_pickle<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        plain: &[u8],
        own: &Account,
    ) -> Result<Self> {
        let own = &own.identity;
        let mut r = Reader::new(plain, "pickle");
        let group_id = r.bytes_u8()?.to_vec();
        if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_LEN {
            return Err(Error::Malformed("pickle"));
        }
        let suite = Suite::from_id(r.u8()?)?;
        // The pickle is authenticated; its identities were verified on arrival.
        let own_identity = IdentityPublic::from_trusted_bytes(r.take(IDENTITY_PUBLIC_LEN)?)?;
        let policy = read_policy(&mut r)?;
        // The old chain is read past and dropped (wiped): a new one replaces it.
        let seed = Zeroizing::new(r.array::<32>()?);
        let old = (SigningKey::from_bytes(&seed), SymmetricKey::from_bytes(r.array()?), r.u32()?);
        let n = usize::try_from(r.u32()?).map_err(|_| Error::Malformed("pickle"))?;
        if n > MAX_GROUP_MEMBERS {
            return Err(Error::Malformed("pickle"));
        }
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let identity = IdentityPublic::from_trusted_bytes(r.take(IDENTITY_PUBLIC_LEN)?)?;
            let nc = usize::from(r.u8()?);
            if nc > MAX_GROUP_CHAINS_PER_MEMBER {
                return Err(Error::Malformed("pickle"));
            }
            let mut chains = Vec::with_capacity(nc);
            for _ in 0..nc {
                let sender_key = r.array()?;
                let ck = Box::new(SymmetricKey::from_bytes(r.array()?));
                let next = r.u32()?;
                let floor = r.u32()?;
                let ns = usize::try_from(r.u32()?).map_err(|_| Error::Malformed("pickle"))?;
                if ns > usize::try_from(MAX_SKIPPED_TOTAL_CAP).unwrap_or(0) {
                    return Err(Error::Malformed("pickle"));
                }
                let mut skipped = VecDeque::with_capacity(ns);
                for _ in 0..ns {
                    skipped.push_back((r.u32()?, Box::new(SymmetricKey::from_bytes(r.array()?))));
                }
                chains.push(PeerChain { sender_key, ck, next, floor, skipped });
            }
            members.push(Member { identity, chains });
        }
        r.finish()?;
        drop(old);
        if own.public() != &own_identity {
            return Err(Error::InvalidKey);
        }
        let chain = new_chain(rng, own, &group_id)?;
        Ok(Self { group_id, suite, own_identity, policy, own: chain, members, redistribute: true })
    }
}

enum Advance {
    Skipped(usize),
    Forward { ck: SymmetricKey, skipped: Vec<(u32, Box<SymmetricKey>)> },
}

fn sign_group(key: &SigningKey, signed_bytes: &[u8]) -> [u8; 64] {
    context::sign(key, SignatureContext::GroupMessage, signed_bytes)
}

impl fmt::Debug for GroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSession")
            .field("group_id_len", &self.group_id.len())
            .field("suite", &self.suite)
            .field("members", &self.members.len())
            .field("iteration", &self.own.iteration)
            .finish_non_exhaustive()
    }
}
