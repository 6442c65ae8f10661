//! Long-term identity: an Ed25519 signing key and an X25519 key-agreement
//! key, bound together, and the safety number two people compare.

use alloc::string::String;
use core::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use x25519_dalek::{PublicKey as DhPublic, StaticSecret};
use zeroize::Zeroize;

use crate::context::{self, SignatureContext};
use crate::error::{Error, Result};

/// Length of an encoded [`IdentityPublic`].
pub const IDENTITY_PUBLIC_LEN: usize = 32 + 32 + 64;

/// The X25519 public keys (bit 255 cleared, little-endian u) of order
/// 1, 2, 4 or 8 on Curve25519 or its twist, and their non-canonical
/// encodings below 2^255: 0, 1, the two points of order 8, p - 1, p, p + 1.
/// X25519 with any clamped scalar (a multiple of 8) gives zero for exactly
/// these, so they are refused wherever a public key is parsed.
const LOW_ORDER_X25519: [[u8; 32]; 7] = [
    [0; 32],
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09,
        0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44,
        0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
];

/// Refuses, with [`Error::InvalidKey`], an X25519 public key of low order
/// (one that gives an all-zero shared secret with every private key).
/// Bit 255 is ignored, as X25519 ignores it.
pub(crate) fn check_x25519_public(key: &[u8; 32]) -> Result<()> {
    let mut masked = *key;
    if let Some(top) = masked.last_mut() {
        *top &= 0x7f;
    }
    if LOW_ORDER_X25519.contains(&masked) { Err(Error::InvalidKey) } else { Ok(()) }
}

/// Decodes an Ed25519 public key by the protocol's rule: the encoding must
/// be canonical (y below p, no sign bit on x = 0: re-encoding gives the same
/// bytes) and the point must not be of small order. Anything else is
/// [`Error::InvalidKey`].
pub(crate) fn ed25519_public(key: &[u8; 32]) -> Result<VerifyingKey> {
    let parsed = VerifyingKey::from_bytes(key).map_err(|_| Error::InvalidKey)?;
    if parsed.to_edwards().compress().to_bytes() != *key || parsed.is_weak() {
        return Err(Error::InvalidKey);
    }
    Ok(parsed)
}

/// The public half of an identity: the Ed25519 verifying key, the X25519
/// key, and the Ed25519 signature that binds the X25519 key to it.
///
/// Decoding checks that signature, so an `IdentityPublic` always holds a
/// pair that belongs together: nobody can pair someone else's signing key
/// with their own key-agreement key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityPublic {
    signing: [u8; 32],
    dh: [u8; 32],
    binding: [u8; 64],
}

impl IdentityPublic {
    /// The Ed25519 verifying key (also the account's id at the relay).
    pub fn signing_key(&self) -> &[u8; 32] {
        &self.signing
    }

    /// The X25519 identity key.
    pub fn dh_key(&self) -> &[u8; 32] {
        &self.dh
    }

    /// The 128-byte encoding: signing key, X25519 key, binding signature.
    pub fn to_bytes(&self) -> [u8; IDENTITY_PUBLIC_LEN] {
        let mut out = [0u8; IDENTITY_PUBLIC_LEN];
        let (a, rest) = out.split_at_mut(32);
        let (b, c) = rest.split_at_mut(32);
        a.copy_from_slice(&self.signing);
        b.copy_from_slice(&self.dh);
        c.copy_from_slice(&self.binding);
        out
    }

    /// Parses and verifies the 128-byte encoding: the Ed25519 key
    /// ([`Error::InvalidKey`] unless canonical and not of small order), the
    /// X25519 key ([`Error::InvalidKey`] if of low order), then the binding
    /// signature ([`Error::InvalidSignature`]), in that order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = crate::codec::Reader::new(bytes, "identity");
        let id = Self { signing: r.array()?, dh: r.array()?, binding: r.array()? };
        r.finish()?;
        ed25519_public(&id.signing)?;
        check_x25519_public(&id.dh)?;
        id.verify_binding()?;
        Ok(id)
    }

    /// Parses the 128-byte encoding without checking the binding signature,
    /// for data that is already authenticated (inside a pickle, which only
    /// ever holds identities that were verified when they arrived).
    pub(crate) fn from_trusted_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = crate::codec::Reader::new(bytes, "identity");
        let id = Self { signing: r.array()?, dh: r.array()?, binding: r.array()? };
        r.finish()?;
        Ok(id)
    }

    fn verify_binding(&self) -> Result<()> {
        self.verify(SignatureContext::IdentityBinding, &binding_message(&self.signing, &self.dh), &self.binding)
    }

    /// Verifies an Ed25519 signature by this identity under `context`
    /// (over `u8(len(label)) || label || msg`).
    pub fn verify(&self, context: SignatureContext, msg: &[u8], signature: &[u8; 64]) -> Result<()> {
        context::verify(&ed25519_public(&self.signing)?, context, msg, signature)
    }

    /// Plain Ed25519 verification, for the RFC 8032 known-answer tests only.
    #[cfg(test)]
    pub(crate) fn verify_raw(&self, msg: &[u8], signature: &[u8; 64]) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        ed25519_public(&self.signing)?.verify_strict(msg, &sig).map_err(|_| Error::InvalidSignature)
    }

    /// This identity's half of a safety number: 30 decimal digits.
    fn fingerprint_digits(&self) -> [u8; 30] {
        // 5200 iterations of SHA-512 make a targeted near-collision costly.
        let mut hash = Sha512::new()
            .chain_update(context::FINGERPRINT)
            .chain_update([0u8, 1])
            .chain_update(self.signing)
            .chain_update(self.dh)
            .finalize();
        for _ in 1..FINGERPRINT_ITERATIONS {
            hash = Sha512::new().chain_update(hash).chain_update(self.signing).chain_update(self.dh).finalize();
        }
        let mut digits = [0u8; 30];
        for (chunk, out) in hash.chunks_exact(5).zip(digits.chunks_exact_mut(5)) {
            let mut v = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) % 100_000;
            for d in out.iter_mut().rev() {
                *d = u8::try_from(v % 10).unwrap_or(0);
                v /= 10;
            }
        }
        digits
    }
}

const FINGERPRINT_ITERATIONS: usize = 5200;

impl fmt::Debug for IdentityPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityPublic(")?;
        for b in self.signing.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

#[cfg(all(test, feature = "std"))]
std::thread_local! {
    /// Diffie-Hellmans computed on this thread, so tests can count what a
    /// session start or a turn costs.
    pub(crate) static DH_COUNT: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// X25519 between a secret and a peer's public key. A result that is all
/// zero (the peer sent a low-order point) is refused with
/// [`Error::InvalidKey`], so a peer cannot force a known shared secret.
pub(crate) fn dh(secret: &StaticSecret, public: &[u8; 32]) -> Result<zeroize::Zeroizing<[u8; 32]>> {
    #[cfg(all(test, feature = "std"))]
    DH_COUNT.with(|c| c.set(c.get().saturating_add(1)));
    let shared = secret.diffie_hellman(&DhPublic::from(*public));
    if !shared.was_contributory() {
        return Err(Error::InvalidKey);
    }
    Ok(zeroize::Zeroizing::new(shared.to_bytes()))
}

/// Verifies an Ed25519 signature under `context` by the identity whose
/// signing key is `signing_key`, for callers that know only that key (a
/// relay authenticating requests). A key that breaks the Ed25519 rule of
/// [`IdentityPublic::from_bytes`] is [`Error::InvalidKey`].
///
/// ```
/// use sealpost::hazmat::{verify_signature, IdentityKeyPair};
/// use sealpost::{Error, SignatureContext::RelayRequest};
/// let id = IdentityKeyPair::generate(&mut sealpost::os_rng());
/// let sig = id.sign(RelayRequest, b"msg");
/// assert_eq!(verify_signature(id.public().signing_key(), RelayRequest, b"msg", &sig), Ok(()));
/// assert_eq!(verify_signature(id.public().signing_key(), RelayRequest, b"other", &sig), Err(Error::InvalidSignature));
/// ```
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub fn verify_signature(
    signing_key: &[u8; 32],
    context: SignatureContext,
    msg: &[u8],
    signature: &[u8; 64],
) -> Result<()> {
    context::verify(&ed25519_public(signing_key)?, context, msg, signature)
}

/// Verifies the signature of a request to a relay (made by
/// [`RelaySigner::sign`]) by the account whose identity signing key is
/// `account`. It checks only [`SignatureContext::RelayRequest`]
/// signatures: a bundle, reset or group signature over the same bytes does
/// not verify. A key that breaks the Ed25519 rule of
/// [`IdentityPublic::from_bytes`] is [`Error::InvalidKey`], a signature that
/// does not verify [`Error::InvalidSignature`].
///
/// ```
/// use sealpost::{Account, verify_relay_request};
/// let account = Account::new(&mut sealpost::os_rng(), 1_700_000_000);
/// let signer = account.relay_signer();
/// let sig = signer.sign(b"GET /v1/messages");
/// assert_eq!(verify_relay_request(signer.account(), b"GET /v1/messages", &sig), Ok(()));
/// assert_eq!(
///     verify_relay_request(signer.account(), b"GET /v1/other", &sig),
///     Err(sealpost::Error::InvalidSignature)
/// );
/// ```
pub fn verify_relay_request(account: &[u8; 32], msg: &[u8], signature: &[u8; 64]) -> Result<()> {
    verify_signature(account, SignatureContext::RelayRequest, msg, signature)
}

/// What the identity binding signs: the Ed25519 key, then the X25519 key.
fn binding_message(signing: &[u8; 32], dh: &[u8; 32]) -> [u8; 64] {
    let mut msg = [0u8; 64];
    let (s, d) = msg.split_at_mut(32);
    s.copy_from_slice(signing);
    d.copy_from_slice(dh);
    msg
}

/// The secret half of an identity. Zeroized on drop; `Debug` shows only the
/// public half.
#[derive(Clone)]
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub struct IdentityKeyPair {
    signing: SigningKey,
    dh: StaticSecret,
    public: IdentityPublic,
}

impl IdentityKeyPair {
    /// Generates a fresh identity.
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut dh = [0u8; 32];
        rng.fill_bytes(&mut dh);
        let pair = Self::from_secret_bytes(&seed, &dh);
        seed.zeroize();
        dh.zeroize();
        pair
    }

    /// Rebuilds an identity from its two 32-byte secrets (Ed25519 seed,
    /// X25519 scalar), as stored in a pickle.
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn from_secret_bytes(signing_seed: &[u8; 32], dh_secret: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(signing_seed);
        let dh = StaticSecret::from(*dh_secret);
        let signing_pub = signing.verifying_key().to_bytes();
        let dh_pub = DhPublic::from(&dh).to_bytes();
        let binding =
            context::sign(&signing, SignatureContext::IdentityBinding, &binding_message(&signing_pub, &dh_pub));
        Self { signing, dh, public: IdentityPublic { signing: signing_pub, dh: dh_pub, binding } }
    }

    /// The public half.
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn public(&self) -> &IdentityPublic {
        &self.public
    }

    /// Signs `msg` under `context` with the Ed25519 identity key (over
    /// `u8(len(label)) || label || msg`). The contexts are the protocol's
    /// closed set: there is no way to sign under any other.
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn sign(&self, context: SignatureContext, msg: &[u8]) -> [u8; 64] {
        context::sign(&self.signing, context, msg)
    }

    /// Plain Ed25519 signing, for the RFC 8032 known-answer tests only.
    #[cfg(test)]
    pub(crate) fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        ed25519_dalek::Signer::sign(&self.signing, msg).to_bytes()
    }

    pub(crate) fn dh_secret(&self) -> &StaticSecret {
        &self.dh
    }

    /// The two 32-byte secrets, for a pickle. Wrap them in zeroizing storage.
    pub(crate) fn secret_bytes(&self) -> ([u8; 32], [u8; 32]) {
        (self.signing.to_bytes(), self.dh.to_bytes())
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

/// The right to sign requests to a relay as one account, and nothing else:
/// every signature it makes is under [`SignatureContext::RelayRequest`], so
/// it cannot sign a bundle, a reset or a group message. An app hands it to
/// its relay client while the [`Account`](crate::Account) stays with the
/// protocol state. The key inside zeroizes on drop; `Debug` shows only the
/// account id.
///
/// ```
/// use sealpost::{Account, Error, SignatureContext, hazmat::verify_signature};
/// let account = Account::new(&mut sealpost::os_rng(), 1_700_000_000);
/// let signer = account.relay_signer();
/// let sig = signer.sign(b"GET /v1/messages");
/// assert_eq!(signer.account(), account.identity().signing_key());
/// verify_signature(signer.account(), SignatureContext::RelayRequest, b"GET /v1/messages", &sig).unwrap();
/// // The same bytes under any other context do not verify.
/// let other = SignatureContext::SessionReset;
/// assert_eq!(verify_signature(signer.account(), other, b"GET /v1/messages", &sig), Err(Error::InvalidSignature));
/// ```
#[derive(Clone)]
pub struct RelaySigner {
    signing: SigningKey,
    account: [u8; 32],
}

impl RelaySigner {
    pub(crate) fn new(identity: &IdentityKeyPair) -> Self {
        Self { signing: identity.signing.clone(), account: identity.public.signing }
    }

    /// The account id: the identity's Ed25519 public key.
    pub fn account(&self) -> &[u8; 32] {
        &self.account
    }

    /// Signs `msg` under [`SignatureContext::RelayRequest`].
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        context::sign(&self.signing, SignatureContext::RelayRequest, msg)
    }
}

impl fmt::Debug for RelaySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelaySigner").field("account", &self.account).finish_non_exhaustive()
    }
}

/// A safety number: 60 digits that two people compare (read aloud, or from
/// a QR code) to be sure no one sits between them.
///
/// Both sides compute the same number: each identity gives 30 digits and the
/// two halves are ordered, not assigned to "me" and "you".
///
/// ```
/// use sealpost::{Account, SafetyNumber};
/// let mut rng = sealpost::os_rng();
/// let alice = Account::new(&mut rng, 1_700_000_000);
/// let bob = Account::new(&mut rng, 1_700_000_000);
/// let a = SafetyNumber::new(alice.identity(), bob.identity());
/// let b = SafetyNumber::new(bob.identity(), alice.identity());
/// assert_eq!(a, b);
/// assert_eq!(a.to_string().len(), 60 + 11); // twelve groups of five
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafetyNumber([u8; 60]);

impl SafetyNumber {
    /// The safety number of two identities (order does not matter).
    pub fn new(a: &IdentityPublic, b: &IdentityPublic) -> Self {
        let (x, y) = (a.fingerprint_digits(), b.fingerprint_digits());
        let (first, second) = if (x, a.to_bytes()) <= (y, b.to_bytes()) { (x, y) } else { (y, x) };
        let mut all = [0u8; 60];
        let (l, r) = all.split_at_mut(30);
        l.copy_from_slice(&first);
        r.copy_from_slice(&second);
        Self(all)
    }

    /// The 60 digits without spaces.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0'.saturating_add(*d))).collect()
    }
}

impl fmt::Display for SafetyNumber {
    /// Twelve groups of five digits separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.0.chunks(5).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            for d in group {
                write!(f, "{d}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn binding_round_trips_and_rejects_swapped_keys() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let a = IdentityKeyPair::generate(&mut rng);
        let b = IdentityKeyPair::generate(&mut rng);
        let bytes = a.public().to_bytes();
        assert_eq!(IdentityPublic::from_bytes(&bytes), Ok(*a.public()));
        // Someone else's X25519 key under a's signing key: rejected.
        let mut forged = bytes;
        forged[32..64].copy_from_slice(b.public().dh_key());
        assert_eq!(IdentityPublic::from_bytes(&forged), Err(Error::InvalidSignature));
        assert!(IdentityPublic::from_bytes(&bytes[..127]).is_err());
    }

    #[test]
    fn safety_number_is_symmetric_and_key_dependent() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let a = IdentityKeyPair::generate(&mut rng);
        let b = IdentityKeyPair::generate(&mut rng);
        let c = IdentityKeyPair::generate(&mut rng);
        let ab = SafetyNumber::new(a.public(), b.public());
        assert_eq!(ab, SafetyNumber::new(b.public(), a.public()));
        assert_ne!(ab, SafetyNumber::new(a.public(), c.public()));
        assert_eq!(ab.digits().len(), 60);
        assert!(ab.digits().bytes().all(|d| d.is_ascii_digit()));
    }

    #[test]
    fn signatures_are_context_bound() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let a = IdentityKeyPair::generate(&mut rng);
        let sig = a.sign(SignatureContext::Bundle, b"message");
        assert_eq!(a.public().verify(SignatureContext::Bundle, b"message", &sig), Ok(()));
        assert_eq!(a.public().verify(SignatureContext::OneTimePrekey, b"message", &sig), Err(Error::InvalidSignature));
        assert_eq!(a.public().verify(SignatureContext::Bundle, b"messagf", &sig), Err(Error::InvalidSignature));
        // The old unprefixed rule: an empty context and the label moved into
        // the message made a valid bundle signature. It no longer verifies.
        let mut old = b"sealpost/v1/bundle".to_vec();
        old.extend_from_slice(b"message");
        let forged = a.sign_raw(&old);
        assert_eq!(a.public().verify(SignatureContext::Bundle, b"message", &forged), Err(Error::InvalidSignature));
    }

    /// An identity encoding with any two keys, its binding signed by `seed`.
    fn forged_identity(seed: &[u8; 32], signing: [u8; 32], dh: [u8; 32]) -> [u8; IDENTITY_PUBLIC_LEN] {
        let key = SigningKey::from_bytes(seed);
        let binding = context::sign(&key, SignatureContext::IdentityBinding, &binding_message(&signing, &dh));
        IdentityPublic { signing, dh, binding }.to_bytes()
    }

    #[test]
    fn low_order_x25519_identity_key_is_refused_at_parse() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let signing = key.verifying_key().to_bytes();
        for low in LOW_ORDER_X25519 {
            for top in [0u8, 0x80] {
                let mut dh = low;
                dh[31] |= top;
                // A correctly signed binding does not save a low-order key.
                let bytes = forged_identity(&[5; 32], signing, dh);
                assert_eq!(IdentityPublic::from_bytes(&bytes), Err(Error::InvalidKey));
                // The key check comes before the binding signature.
                let mut bad_sig = bytes;
                bad_sig[100] ^= 1;
                assert_eq!(IdentityPublic::from_bytes(&bad_sig), Err(Error::InvalidKey));
            }
        }
    }

    #[test]
    fn low_order_list_is_exactly_the_non_contributory_keys() {
        let secret = StaticSecret::from([0x42; 32]);
        for low in LOW_ORDER_X25519 {
            assert!(!secret.diffie_hellman(&DhPublic::from(low)).was_contributory());
            assert_eq!(check_x25519_public(&low), Err(Error::InvalidKey));
        }
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        for _ in 0..64 {
            let id = IdentityKeyPair::generate(&mut rng);
            assert_eq!(check_x25519_public(id.public().dh_key()), Ok(()));
        }
    }

    #[test]
    fn ed25519_rule_refuses_small_order_and_non_canonical_keys() {
        let dh = *IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([9; 32])).public().dh_key();
        // The neutral point (y = 1) and the point of order 2 (y = -1): small order.
        let mut minus_one = [0xff; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let mut one = [0; 32];
        one[0] = 1;
        for small in [one, minus_one] {
            assert_eq!(ed25519_public(&small).err(), Some(Error::InvalidKey));
            let bytes = forged_identity(&[6; 32], small, dh);
            assert_eq!(IdentityPublic::from_bytes(&bytes), Err(Error::InvalidKey));
        }
        // y + p for a small y that is a point of large order: accepted by the
        // point decoder, refused by the canonical rule.
        let mut found = 0;
        for y in 2u8..19 {
            let mut canonical = [0; 32];
            canonical[0] = y;
            let Ok(point) = VerifyingKey::from_bytes(&canonical) else { continue };
            if point.is_weak() {
                continue;
            }
            assert!(ed25519_public(&canonical).is_ok());
            let mut non_canonical = [0xff; 32];
            non_canonical[0] = 0xed + y;
            non_canonical[31] = 0x7f;
            assert!(VerifyingKey::from_bytes(&non_canonical).is_ok());
            assert_eq!(ed25519_public(&non_canonical).err(), Some(Error::InvalidKey));
            let bytes = forged_identity(&[6; 32], non_canonical, dh);
            assert_eq!(IdentityPublic::from_bytes(&bytes), Err(Error::InvalidKey));
            found += 1;
        }
        assert!(found > 0);
    }

    #[test]
    fn debug_hides_secrets() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let a = IdentityKeyPair::generate(&mut rng);
        let shown = alloc::format!("{a:?}");
        let (seed, dh) = a.secret_bytes();
        let hex_of = |b: &[u8]| b.iter().map(|x| alloc::format!("{x:02x}")).collect::<String>();
        assert!(!shown.contains(&hex_of(&seed[..4])));
        assert!(!shown.contains(&hex_of(&dh[..4])));
        assert!(!shown.contains(alloc::format!("{:?}", &seed[..4]).trim_end_matches(']')));
    }
}
