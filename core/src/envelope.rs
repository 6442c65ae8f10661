//! The wire format of every message Sealpost sends.
//!
//! Every envelope starts with three bytes: protocol version, envelope type
//! and suite id. Integers are big-endian; variable-length fields carry an
//! explicit length; parsing is strict (no trailing bytes, no unknown
//! values) and never panics. The header (everything before the ciphertext
//! length) is authenticated as associated data. `docs/PROTOCOL.md` gives
//! the byte layouts.

use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::codec::{Reader, put_bytes_u8, put_bytes_u32, put_u32};
use crate::error::{Error, Result};
use crate::identity::{IDENTITY_PUBLIC_LEN, IdentityPublic, check_x25519_public};
use crate::policy::SUPPORTED_VERSIONS;
use crate::secret::SymmetricKey;
use crate::suite::Suite;

/// Length of the random per-message salt.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const SALT_LEN: usize = 16;
pub(crate) use crate::consts::{MAX_GROUP_ID_LEN, MAX_SUITE_LIST};
const PREKEY_FIXED_LEN: usize =
    3 + IDENTITY_PUBLIC_LEN + 1 + 4 + 5 + 32 + crate::pq::PQ_CIPHERTEXT_LEN + RATCHET_HEADER_LEN + 4;
const GROUP_FIXED_LEN: usize = 3 + 1 + 32 + 4 + SALT_LEN + 4 + 64;
const DISTRIBUTION_FIXED_LEN: usize = 3 + 1 + 32 + 4 + 32 + 64 + 64;

/// The envelope type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeType {
    /// 1: the first messages of a session, carrying what the responder needs.
    Prekey,
    /// 2: a message of an established pairwise session.
    Ratchet,
    /// 3: a group message, encrypted once under a sender chain and signed.
    Group,
    /// 4: a sender chain handed to a group member (sent inside a pairwise
    /// session, never in the clear).
    SenderKeyDistribution,
}

impl EnvelopeType {
    /// The wire byte.
    pub const fn id(self) -> u8 {
        match self {
            EnvelopeType::Prekey => 1,
            EnvelopeType::Ratchet => 2,
            EnvelopeType::Group => 3,
            EnvelopeType::SenderKeyDistribution => 4,
        }
    }

    /// Parses the wire byte.
    pub const fn from_id(id: u8) -> Result<Self> {
        match id {
            1 => Ok(EnvelopeType::Prekey),
            2 => Ok(EnvelopeType::Ratchet),
            3 => Ok(EnvelopeType::Group),
            4 => Ok(EnvelopeType::SenderKeyDistribution),
            _ => Err(Error::Malformed("envelope type")),
        }
    }
}

/// The ratchet fields of pairwise messages (`RATCHET_HEADER_LEN` = 100
/// bytes on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RatchetHeader {
    /// The sender's current ratchet public key.
    pub ratchet_key: [u8; 32],
    /// The sender's ratchet epoch (which ratchet key this is, counted from 0).
    pub epoch: u32,
    /// The receiver's epoch whose ratchet key the sender combined with.
    pub peer_epoch: u32,
    /// The message's position in the sender's chain for this epoch.
    pub counter: u32,
    /// How many messages the sender sent in its previous epoch.
    pub prev_count: u32,
    /// The sender's ratchet key of its previous epoch (zero if none), so a
    /// receiver that missed that whole epoch can still follow.
    pub prev_ratchet_key: [u8; 32],
    /// The receiver's epoch that the previous epoch combined with.
    pub prev_peer_epoch: u32,
    /// A random value drawn for this message and bound into its keys.
    pub salt: [u8; SALT_LEN],
}

/// Encoded length of a [`RatchetHeader`].
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const RATCHET_HEADER_LEN: usize = 32 + 4 * 4 + 32 + 4 + SALT_LEN;

impl RatchetHeader {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ratchet_key);
        put_u32(out, self.epoch);
        put_u32(out, self.peer_epoch);
        put_u32(out, self.counter);
        put_u32(out, self.prev_count);
        out.extend_from_slice(&self.prev_ratchet_key);
        put_u32(out, self.prev_peer_epoch);
        out.extend_from_slice(&self.salt);
    }

    /// Refuses a low-order ratchet key, or a low-order previous ratchet key
    /// other than all zeros (which means "none"), with [`Error::InvalidKey`].
    fn check_keys(&self) -> Result<()> {
        check_x25519_public(&self.ratchet_key)?;
        if self.prev_ratchet_key != [0; 32] {
            check_x25519_public(&self.prev_ratchet_key)?;
        }
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            ratchet_key: r.array()?,
            epoch: r.u32()?,
            peer_epoch: r.u32()?,
            counter: r.u32()?,
            prev_count: r.u32()?,
            prev_ratchet_key: r.array()?,
            prev_peer_epoch: r.u32()?,
            salt: r.array()?,
        })
    }
}

/// A message of an established pairwise session (type 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatchetMessage {
    /// Protocol version.
    pub version: u8,
    /// The session's suite.
    pub suite: Suite,
    /// Ratchet fields.
    pub header: RatchetHeader,
    /// Sealed padded plaintext, tag included.
    pub ciphertext: Vec<u8>,
}

impl RatchetMessage {
    /// The authenticated header bytes: everything before the ciphertext length.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + RATCHET_HEADER_LEN);
        out.extend_from_slice(&[self.version, EnvelopeType::Ratchet.id(), self.suite.id()]);
        self.header.write(&mut out);
        out
    }

    /// The wire encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = self.header_bytes();
        out.reserve(4usize.saturating_add(self.ciphertext.len()));
        put_bytes_u32(&mut out, &self.ciphertext)?;
        Ok(out)
    }

    fn read_body(version: u8, suite: Suite, r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self { version, suite, header: RatchetHeader::read(r)?, ciphertext: r.bytes_u32(usize::MAX)?.to_vec() })
    }
}

/// The first message(s) of a session (type 1): what the responder needs to
/// run the same key agreement, and the first ratchet message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrekeyMessage {
    /// Protocol version.
    pub version: u8,
    /// The negotiated suite.
    pub suite: Suite,
    /// The initiator's identity.
    pub identity: IdentityPublic,
    /// The initiator's suite list (ids, most preferred first), bound into
    /// the key derivation.
    pub initiator_suites: Vec<u8>,
    /// Which of the responder's signed prekeys was used.
    pub signed_prekey_id: u32,
    /// Which one-time prekey was used, if any.
    pub one_time_prekey_id: Option<u32>,
    /// The initiator's ephemeral X25519 key for the agreement.
    pub base_key: [u8; 32],
    /// The ML-KEM-768 ciphertext to the responder's PQ prekey: present
    /// exactly in version 2 (hybrid) messages.
    pub pq_ciphertext: Option<Vec<u8>>,
    /// Ratchet fields of the embedded message.
    pub header: RatchetHeader,
    /// Sealed padded plaintext, tag included.
    pub ciphertext: Vec<u8>,
}

impl PrekeyMessage {
    /// The authenticated header bytes: everything before the ciphertext length.
    pub fn header_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(PREKEY_FIXED_LEN.saturating_add(self.initiator_suites.len()));
        out.extend_from_slice(&[self.version, EnvelopeType::Prekey.id(), self.suite.id()]);
        out.extend_from_slice(&self.identity.to_bytes());
        check_suite_list(&self.initiator_suites)?;
        put_bytes_u8(&mut out, &self.initiator_suites)?;
        put_u32(&mut out, self.signed_prekey_id);
        match self.one_time_prekey_id {
            None => out.push(0),
            Some(id) => {
                out.push(1);
                put_u32(&mut out, id);
            }
        }
        out.extend_from_slice(&self.base_key);
        match (&self.pq_ciphertext, self.version >= crate::policy::HYBRID_VERSION) {
            (Some(ct), true) if ct.len() == crate::pq::PQ_CIPHERTEXT_LEN => out.extend_from_slice(ct),
            (None, false) => {}
            _ => return Err(Error::Malformed("prekey message")),
        }
        self.header.write(&mut out);
        Ok(out)
    }

    /// The wire encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = self.header_bytes()?;
        put_bytes_u32(&mut out, &self.ciphertext)?;
        Ok(out)
    }

    fn read_body(version: u8, suite: Suite, r: &mut Reader<'_>) -> Result<Self> {
        let identity = IdentityPublic::from_bytes(r.take(IDENTITY_PUBLIC_LEN)?)?;
        let initiator_suites = r.bytes_u8()?.to_vec();
        check_suite_list(&initiator_suites)?;
        let signed_prekey_id = r.u32()?;
        let one_time_prekey_id = match r.u8()? {
            0 => None,
            1 => Some(r.u32()?),
            _ => return Err(Error::Malformed("prekey message")),
        };
        Ok(Self {
            version,
            suite,
            identity,
            initiator_suites,
            signed_prekey_id,
            one_time_prekey_id,
            base_key: r.array()?,
            pq_ciphertext: if version >= crate::policy::HYBRID_VERSION {
                Some(r.take(crate::pq::PQ_CIPHERTEXT_LEN)?.to_vec())
            } else {
                None
            },
            header: RatchetHeader::read(r)?,
            ciphertext: r.bytes_u32(usize::MAX)?.to_vec(),
        })
    }
}

/// A group message (type 3): sealed once under the sender's chain and
/// signed by the sender's chain signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMessage {
    /// Protocol version.
    pub version: u8,
    /// The group's suite.
    pub suite: Suite,
    /// The group id (1 to 64 bytes).
    pub group_id: Vec<u8>,
    /// The sender chain's Ed25519 public key; identifies the chain.
    pub sender_key: [u8; 32],
    /// The message's position in the sender chain.
    pub iteration: u32,
    /// A random value drawn for this message and bound into its keys.
    pub salt: [u8; SALT_LEN],
    /// Sealed padded plaintext, tag included.
    pub ciphertext: Vec<u8>,
    /// Ed25519 signature by `sender_key` over every preceding byte.
    pub signature: [u8; 64],
}

impl GroupMessage {
    /// The authenticated header bytes: everything before the ciphertext length.
    pub fn header_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(GROUP_FIXED_LEN.saturating_add(self.group_id.len()));
        out.extend_from_slice(&[self.version, EnvelopeType::Group.id(), self.suite.id()]);
        check_group_id(&self.group_id)?;
        put_bytes_u8(&mut out, &self.group_id)?;
        out.extend_from_slice(&self.sender_key);
        put_u32(&mut out, self.iteration);
        out.extend_from_slice(&self.salt);
        Ok(out)
    }

    /// The bytes the signature covers: the header, the ciphertext length and
    /// the ciphertext.
    pub fn signed_bytes(&self) -> Result<Vec<u8>> {
        let mut out = self.header_bytes()?;
        put_bytes_u32(&mut out, &self.ciphertext)?;
        Ok(out)
    }

    /// The wire encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = self.signed_bytes()?;
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    fn read_body(version: u8, suite: Suite, r: &mut Reader<'_>) -> Result<Self> {
        let group_id = r.bytes_u8()?.to_vec();
        check_group_id(&group_id)?;
        Ok(Self {
            version,
            suite,
            group_id,
            sender_key: r.array()?,
            iteration: r.u32()?,
            salt: r.array()?,
            ciphertext: r.bytes_u32(usize::MAX)?.to_vec(),
            signature: r.array()?,
        })
    }
}

/// A suite list: 1 to [`MAX_SUITE_LIST`] ids, no duplicates.
fn check_suite_list(list: &[u8]) -> Result<()> {
    let dup = list.iter().enumerate().any(|(i, a)| list.iter().skip(i.saturating_add(1)).any(|b| a == b));
    if list.is_empty() || list.len() > MAX_SUITE_LIST || dup { Err(Error::Malformed("prekey message")) } else { Ok(()) }
}

fn check_group_id(id: &[u8]) -> Result<()> {
    if id.is_empty() || id.len() > MAX_GROUP_ID_LEN { Err(Error::Malformed("group id")) } else { Ok(()) }
}

/// A sender chain handed to one group member (type 4). It carries a secret
/// chain key, so it only ever travels inside a pairwise session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyDistribution {
    /// Protocol version.
    pub version: u8,
    /// The group's suite.
    pub suite: Suite,
    /// The group id (1 to 64 bytes).
    pub group_id: Vec<u8>,
    /// The sender chain's Ed25519 public key.
    pub sender_key: [u8; 32],
    /// The chain position `chain_key` belongs to.
    pub iteration: u32,
    /// The chain key at `iteration`.
    pub chain_key: SymmetricKey,
    /// Ed25519 signature by the owner's **identity** key over
    /// `vec8("sealpost/v1/sender-key-owner") || vec8(group_id) || sender_key`:
    /// only the owner can announce that this sender key is theirs.
    pub owner_signature: [u8; 64],
    /// Ed25519 signature by `sender_key` over
    /// `vec8("sealpost/v1/sender-key-distribution") || owner's identity signing key (32)`
    /// followed by every preceding byte of the encoding: nobody else can
    /// claim this sender key as theirs or change the chain position or key.
    pub chain_signature: [u8; 64],
}

impl SenderKeyDistribution {
    /// The wire encoding, in memory that is wiped on drop.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        // Sized up front: growing would leave an unwiped copy of the chain key.
        let mut out = Zeroizing::new(Vec::with_capacity(DISTRIBUTION_FIXED_LEN.saturating_add(self.group_id.len())));
        out.extend_from_slice(&[self.version, EnvelopeType::SenderKeyDistribution.id(), self.suite.id()]);
        check_group_id(&self.group_id)?;
        put_bytes_u8(&mut out, &self.group_id)?;
        out.extend_from_slice(&self.sender_key);
        put_u32(&mut out, self.iteration);
        out.extend_from_slice(self.chain_key.as_bytes());
        out.extend_from_slice(&self.owner_signature);
        out.extend_from_slice(&self.chain_signature);
        Ok(out)
    }

    /// The bytes `chain_signature` covers after its context and the owner's
    /// signing key: every byte of the encoding before `chain_signature`.
    pub(crate) fn chain_signed_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = self.to_bytes()?;
        let signed_len = out.len().saturating_sub(64);
        out.truncate(signed_len);
        Ok(out)
    }

    fn read_body(version: u8, suite: Suite, r: &mut Reader<'_>) -> Result<Self> {
        let group_id = r.bytes_u8()?.to_vec();
        check_group_id(&group_id)?;
        let sender_key = r.array()?;
        let iteration = r.u32()?;
        let chain_key = SymmetricKey::from_bytes(r.array()?);
        let owner_signature = r.array()?;
        let chain_signature = r.array()?;
        Ok(Self { version, suite, group_id, sender_key, iteration, chain_key, owner_signature, chain_signature })
    }
}

/// Any envelope, as parsed from the wire.
///
/// ```
/// use sealpost::{Envelope, RatchetHeader, RatchetMessage};
/// use sealpost::Suite;
/// let msg = RatchetMessage {
///     version: 1,
///     suite: Suite::Aes256Gcm,
///     header: RatchetHeader {
///         ratchet_key: [9; 32], epoch: 0, peer_epoch: 0, counter: 3,
///         prev_count: 0, prev_ratchet_key: [0; 32], prev_peer_epoch: 0, salt: [1; 16],
///     },
///     ciphertext: vec![0; 20],
/// };
/// let bytes = msg.to_bytes()?;
/// assert_eq!(Envelope::from_bytes(&bytes)?, Envelope::Ratchet(msg));
/// assert!(Envelope::from_bytes(&bytes[..bytes.len() - 1]).is_err());
/// # Ok::<(), sealpost::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// Type 1.
    Prekey(PrekeyMessage),
    /// Type 2.
    Ratchet(RatchetMessage),
    /// Type 3.
    Group(GroupMessage),
    /// Type 4.
    SenderKeyDistribution(SenderKeyDistribution),
}

impl Envelope {
    /// Parses an envelope of any type, strictly. A low-order X25519 key
    /// (base key, ratchet key, previous ratchet key unless all zero, or the
    /// sender identity's key) is [`Error::InvalidKey`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "envelope");
        let version = r.u8()?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(Error::UnsupportedVersion(version));
        }
        let kind = EnvelopeType::from_id(r.u8()?)?;
        let suite = Suite::from_id(r.u8()?)?;
        let env = match kind {
            EnvelopeType::Prekey => Envelope::Prekey(PrekeyMessage::read_body(version, suite, &mut r)?),
            EnvelopeType::Ratchet => Envelope::Ratchet(RatchetMessage::read_body(version, suite, &mut r)?),
            EnvelopeType::Group => Envelope::Group(GroupMessage::read_body(version, suite, &mut r)?),
            EnvelopeType::SenderKeyDistribution => {
                Envelope::SenderKeyDistribution(SenderKeyDistribution::read_body(version, suite, &mut r)?)
            }
        };
        if r.remaining() != 0 {
            return Err(Error::Malformed("envelope"));
        }
        r.finish()?;
        match &env {
            Envelope::Prekey(m) => {
                check_x25519_public(&m.base_key)?;
                m.header.check_keys()?;
            }
            Envelope::Ratchet(m) => m.header.check_keys()?,
            Envelope::Group(_) | Envelope::SenderKeyDistribution(_) => {}
        }
        Ok(env)
    }

    /// The wire encoding. (A sender-key distribution is encoded into memory
    /// that is not wiped; prefer [`SenderKeyDistribution::to_bytes`].)
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        match self {
            Envelope::Prekey(m) => m.to_bytes(),
            Envelope::Ratchet(m) => m.to_bytes(),
            Envelope::Group(m) => m.to_bytes(),
            Envelope::SenderKeyDistribution(m) => Ok(m.to_bytes()?.to_vec()),
        }
    }

    /// The envelope's type.
    pub fn kind(&self) -> EnvelopeType {
        match self {
            Envelope::Prekey(_) => EnvelopeType::Prekey,
            Envelope::Ratchet(_) => EnvelopeType::Ratchet,
            Envelope::Group(_) => EnvelopeType::Group,
            Envelope::SenderKeyDistribution(_) => EnvelopeType::SenderKeyDistribution,
        }
    }
}

/// Length-hiding padding applied to a plaintext before it is sealed.
///
/// Every sealed plaintext ends with a `0x80` byte followed by zero or more
/// `0x00` bytes (ISO/IEC 7816-4 padding), whatever the sender's policy; the
/// receiver strips it without knowing the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding {
    /// Only the one-byte marker: lengths are visible.
    None,
    /// Padmé: round up so that at most O(log log n) bits of the length
    /// leak, at most 12% overhead.
    #[default]
    Padme,
    /// Round up to a multiple of the given block size (0 or 1 means none).
    Block(u16),
}

impl Padding {
    /// The padded length for a plaintext of `len` bytes (marker included).
    pub fn padded_len(self, len: usize) -> usize {
        let min = len.saturating_add(1);
        match self {
            Padding::None => min,
            Padding::Block(b) if b <= 1 => min,
            Padding::Block(b) => min.div_ceil(usize::from(b)).saturating_mul(usize::from(b)),
            Padding::Padme => padme(min),
        }
    }

    /// Appends `plaintext`, the marker and the padding to `out`.
    pub fn pad_into(self, plaintext: &[u8], out: &mut Vec<u8>) {
        let total = self.padded_len(plaintext.len());
        out.reserve(total.saturating_add(crate::suite::CBC_TAG_LEN));
        let start = out.len();
        out.extend_from_slice(plaintext);
        out.push(0x80);
        out.resize(start.saturating_add(total), 0);
    }

    /// Appends the marker and padding, returning the buffer to seal.
    pub fn pad(self, plaintext: &[u8]) -> Zeroizing<Vec<u8>> {
        let total = self.padded_len(plaintext.len());
        let mut out = Zeroizing::new(Vec::with_capacity(total));
        out.extend_from_slice(plaintext);
        out.push(0x80);
        out.resize(total, 0);
        out
    }
}

/// Strips the padding of an opened plaintext.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub fn unpad(padded: &[u8]) -> Result<&[u8]> {
    let end = unpadded_len(padded)?;
    padded.get(..end).ok_or(Error::Malformed("padding"))
}

/// The length of the plaintext inside `padded` (before the `0x80` marker).
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub fn unpadded_len(padded: &[u8]) -> Result<usize> {
    let end = padded.iter().rposition(|b| *b != 0).ok_or(Error::Malformed("padding"))?;
    match padded.get(end) {
        Some(0x80) => Ok(end),
        _ => Err(Error::Malformed("padding")),
    }
}

/// Padmé (Nikitin et al., PETS 2019): keep the top `floor(log2 E) + 1` bits
/// of the length's exponent `E`, round the rest up.
fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::try_from(usize::BITS.saturating_sub(1).saturating_sub(len.leading_zeros())).unwrap_or(0);
    let s = usize::try_from(usize::BITS.saturating_sub(e.leading_zeros())).unwrap_or(0);
    let last_bits = e.saturating_sub(s);
    let mask = (1usize << last_bits).saturating_sub(1);
    len.saturating_add(mask) & !mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_matches_the_definition() {
        // Known values: lengths up to 7 are unchanged at this granularity.
        for l in 0..8 {
            assert_eq!(padme(l), l);
        }
        assert_eq!(padme(9), 10);
        assert_eq!(padme(100), 104);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(1025), 1088);
        for l in 1..5000usize {
            let p = padme(l);
            assert!(p >= l && p * 100 <= l * 112 + 100, "len {l} -> {p}");
        }
    }

    #[test]
    fn pad_round_trips_for_every_mode() {
        for mode in [Padding::None, Padding::Padme, Padding::Block(0), Padding::Block(64)] {
            for len in [0usize, 1, 15, 16, 63, 64, 65, 1000] {
                let pt: Vec<u8> = (0..len).map(|i| (i % 251) as u8 | 1).collect();
                let padded = mode.pad(&pt);
                assert_eq!(padded.len(), mode.padded_len(len));
                assert_eq!(unpad(&padded), Ok(&pt[..]));
            }
        }
        // A plaintext ending in zeros survives too.
        let padded = Padding::Block(32).pad(&[0, 0, 0]);
        assert_eq!(unpad(&padded), Ok(&[0u8, 0, 0][..]));
        assert_eq!(Padding::Block(64).pad(&[1; 10]).len(), 64);
    }

    #[test]
    fn bad_padding_is_an_error() {
        assert!(unpad(&[]).is_err());
        assert!(unpad(&[0, 0]).is_err());
        assert!(unpad(&[1, 2, 0x7f, 0]).is_err());
    }

    #[test]
    fn unknown_type_version_and_suite_are_typed() {
        assert_eq!(Envelope::from_bytes(&[9, 2, 1]), Err(Error::UnsupportedVersion(9)));
        assert_eq!(Envelope::from_bytes(&[1, 9, 1]), Err(Error::Malformed("envelope type")));
        assert_eq!(Envelope::from_bytes(&[1, 2, 77]), Err(Error::UnsupportedSuite(77)));
        assert_eq!(Envelope::from_bytes(&[1, 2, 1]), Err(Error::Malformed("envelope")));
        assert_eq!(Envelope::from_bytes(&[]), Err(Error::Malformed("envelope")));
    }
}
