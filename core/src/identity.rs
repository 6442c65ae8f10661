//! Long-term identity: an Ed25519 signing key and an X25519 key-agreement
//! key, bound together, and the safety number two people compare.

use alloc::string::String;
use core::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};
use x25519_dalek::{PublicKey as DhPublic, StaticSecret};
use zeroize::Zeroize;

use crate::error::{Error, Result};

/// Length of an encoded [`IdentityPublic`].
pub const IDENTITY_PUBLIC_LEN: usize = 32 + 32 + 64;

const BINDING_CONTEXT: &[u8] = b"sealpost/v1/identity-binding";

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

    /// Parses and verifies the 128-byte encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = crate::codec::Reader::new(bytes, "identity");
        let id = Self { signing: r.array()?, dh: r.array()?, binding: r.array()? };
        r.finish()?;
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
        let mut msg = [0u8; BINDING_CONTEXT.len() + 64];
        let (ctx, keys) = msg.split_at_mut(BINDING_CONTEXT.len());
        ctx.copy_from_slice(BINDING_CONTEXT);
        let (s, d) = keys.split_at_mut(32);
        s.copy_from_slice(&self.signing);
        d.copy_from_slice(&self.dh);
        verify(&self.signing, &msg, &self.binding)
    }

    /// Verifies an Ed25519 signature by this identity over `context || msg`.
    pub fn verify(&self, context: &[u8], msg: &[u8], signature: &[u8; 64]) -> Result<()> {
        let key = VerifyingKey::from_bytes(&self.signing).map_err(|_| Error::InvalidKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        let mut prehash = alloc::vec::Vec::with_capacity(context.len().saturating_add(msg.len()));
        prehash.extend_from_slice(context);
        prehash.extend_from_slice(msg);
        key.verify_strict(&prehash, &sig).map_err(|_| Error::InvalidSignature)
    }

    /// This identity's half of a safety number: 30 decimal digits.
    fn fingerprint_digits(&self) -> [u8; 30] {
        // 5200 iterations of SHA-512 make a targeted near-collision costly.
        let mut hash = Sha512::new()
            .chain_update(b"sealpost/v1/fingerprint")
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

/// X25519 between a secret and a peer's public key. A result that is all
/// zero (the peer sent a low-order point) is refused with
/// [`Error::InvalidKey`], so a peer cannot force a known shared secret.
pub(crate) fn dh(secret: &StaticSecret, public: &[u8; 32]) -> Result<zeroize::Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(&DhPublic::from(*public));
    if !shared.was_contributory() {
        return Err(Error::InvalidKey);
    }
    Ok(zeroize::Zeroizing::new(shared.to_bytes()))
}

/// Verifies an Ed25519 signature over `context || msg` by the identity whose
/// signing key is `signing_key`, for callers that know only that key (a
/// relay authenticating requests).
///
/// ```
/// use sealpost::identity::{verify_signature, IdentityKeyPair};
/// let id = IdentityKeyPair::generate(&mut sealpost::os_rng());
/// let sig = id.sign(b"ctx", b"msg");
/// assert!(verify_signature(id.public().signing_key(), b"ctx", b"msg", &sig).is_ok());
/// assert!(verify_signature(id.public().signing_key(), b"ctx", b"other", &sig).is_err());
/// ```
pub fn verify_signature(signing_key: &[u8; 32], context: &[u8], msg: &[u8], signature: &[u8; 64]) -> Result<()> {
    let mut prehash = alloc::vec::Vec::with_capacity(context.len().saturating_add(msg.len()));
    prehash.extend_from_slice(context);
    prehash.extend_from_slice(msg);
    verify(signing_key, &prehash, signature)
}

fn verify(key: &[u8; 32], msg: &[u8], signature: &[u8; 64]) -> Result<()> {
    let key = VerifyingKey::from_bytes(key).map_err(|_| Error::InvalidKey)?;
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(msg, &sig).map_err(|_| Error::InvalidSignature)
}

/// The secret half of an identity. Zeroized on drop; `Debug` shows only the
/// public half.
#[derive(Clone)]
pub struct IdentityKeyPair {
    signing: SigningKey,
    dh: StaticSecret,
    public: IdentityPublic,
}

impl IdentityKeyPair {
    /// Generates a fresh identity.
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
    pub fn from_secret_bytes(signing_seed: &[u8; 32], dh_secret: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(signing_seed);
        let dh = StaticSecret::from(*dh_secret);
        let signing_pub = signing.verifying_key().to_bytes();
        let dh_pub = DhPublic::from(&dh).to_bytes();
        let mut msg = [0u8; BINDING_CONTEXT.len() + 64];
        let (ctx, keys) = msg.split_at_mut(BINDING_CONTEXT.len());
        ctx.copy_from_slice(BINDING_CONTEXT);
        let (s, d) = keys.split_at_mut(32);
        s.copy_from_slice(&signing_pub);
        d.copy_from_slice(&dh_pub);
        let binding = signing.sign(&msg).to_bytes();
        Self { signing, dh, public: IdentityPublic { signing: signing_pub, dh: dh_pub, binding } }
    }

    /// The public half.
    pub fn public(&self) -> &IdentityPublic {
        &self.public
    }

    /// Signs `context || msg` with the Ed25519 identity key. Every signature
    /// in Sealpost uses a distinct context string.
    pub fn sign(&self, context: &[u8], msg: &[u8]) -> [u8; 64] {
        let mut prehash = alloc::vec::Vec::with_capacity(context.len().saturating_add(msg.len()));
        prehash.extend_from_slice(context);
        prehash.extend_from_slice(msg);
        self.signing.sign(&prehash).to_bytes()
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

/// A safety number: 60 digits that two people compare (read aloud, or from
/// a QR code) to be sure no one sits between them.
///
/// Both sides compute the same number: each identity gives 30 digits and the
/// two halves are ordered, not assigned to "me" and "you".
///
/// ```
/// use sealpost::{IdentityKeyPair, SafetyNumber};
/// let mut rng = sealpost::os_rng();
/// let alice = IdentityKeyPair::generate(&mut rng);
/// let bob = IdentityKeyPair::generate(&mut rng);
/// let a = SafetyNumber::new(alice.public(), bob.public());
/// let b = SafetyNumber::new(bob.public(), alice.public());
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
        let sig = a.sign(b"ctx-a", b"message");
        assert_eq!(a.public().verify(b"ctx-a", b"message", &sig), Ok(()));
        assert_eq!(a.public().verify(b"ctx-b", b"message", &sig), Err(Error::InvalidSignature));
        assert_eq!(a.public().verify(b"ctx-a", b"messagf", &sig), Err(Error::InvalidSignature));
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
