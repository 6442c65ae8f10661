//! Prekey bundles: what the relay serves so that someone can start a
//! session with an account that is offline.
//!
//! A bundle is two independently signed parts, concatenated:
//!
//! 1. the **signed part**: identity, supported protocol versions, supported
//!    suites in order of preference, and the current signed prekey, followed
//!    by the identity's Ed25519 signature over all of it;
//! 2. **at most one one-time prekey**, with its own identity signature.
//!
//! So every field is covered by an identity signature, and a relay can hand
//! out each one-time prekey once by appending it to the stored signed part,
//! without holding any key. Decoding verifies every signature.

use alloc::vec::Vec;

use crate::codec::{Reader, put_bytes_u8, put_u32, put_u64};
use crate::context::SignatureContext;
use crate::error::{Error, Result};
use crate::identity::{IDENTITY_PUBLIC_LEN, IdentityKeyPair, IdentityPublic, check_x25519_public};

/// The bundle format version (first byte of the encoding).
pub(crate) const BUNDLE_FORMAT: u8 = 1;

/// The public part of a signed prekey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedPrekeyPublic {
    /// The prekey's id, chosen by its owner.
    pub id: u32,
    /// The X25519 public key.
    pub key: [u8; 32],
    /// When it was generated (Unix seconds).
    pub created_at: u64,
}

/// A one-time prekey with its identity signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneTimePrekey {
    /// The prekey's id, chosen by its owner.
    pub id: u32,
    /// The X25519 public key.
    pub key: [u8; 32],
    /// Ed25519 signature by the identity under
    /// [`SignatureContext::OneTimePrekey`] over `identity signing key || id || key`.
    pub signature: [u8; 64],
}

/// Length of an encoded [`OneTimePrekey`].
pub(crate) const ONE_TIME_PREKEY_LEN: usize = 4 + 32 + 64;

impl OneTimePrekey {
    pub(crate) fn signed_bytes(identity: &IdentityPublic, id: u32, key: &[u8; 32]) -> [u8; 68] {
        let mut msg = [0u8; 68];
        let (a, rest) = msg.split_at_mut(32);
        let (b, c) = rest.split_at_mut(4);
        a.copy_from_slice(identity.signing_key());
        b.copy_from_slice(&id.to_be_bytes());
        c.copy_from_slice(key);
        msg
    }

    pub(crate) fn sign(identity: &IdentityKeyPair, id: u32, key: [u8; 32]) -> Self {
        let signature =
            identity.sign(SignatureContext::OneTimePrekey, &Self::signed_bytes(identity.public(), id, &key));
        Self { id, key, signature }
    }

    /// Checks the key ([`Error::InvalidKey`] if of low order), then the
    /// signature against `identity`.
    pub fn verify(&self, identity: &IdentityPublic) -> Result<()> {
        check_x25519_public(&self.key)?;
        identity.verify(
            SignatureContext::OneTimePrekey,
            &Self::signed_bytes(identity, self.id, &self.key),
            &self.signature,
        )
    }

    /// The 100-byte encoding: id, key, signature.
    pub fn to_bytes(&self) -> [u8; ONE_TIME_PREKEY_LEN] {
        let mut out = [0u8; ONE_TIME_PREKEY_LEN];
        let (a, rest) = out.split_at_mut(4);
        let (b, c) = rest.split_at_mut(32);
        a.copy_from_slice(&self.id.to_be_bytes());
        b.copy_from_slice(&self.key);
        c.copy_from_slice(&self.signature);
        out
    }

    /// Parses the 100-byte encoding and refuses a low-order key with
    /// [`Error::InvalidKey`] (the signature is checked when the key is
    /// attached to a bundle, which knows the identity).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "one-time prekey");
        let otk = Self::read(&mut r)?;
        r.finish()?;
        check_x25519_public(&otk.key)?;
        Ok(otk)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self { id: r.u32()?, key: r.array()?, signature: r.array()? })
    }
}

/// A verified prekey bundle.
///
/// ```
/// use sealpost::{Account, PrekeyBundle, SessionPolicy};
/// let mut rng = sealpost::os_rng();
/// let mut account = Account::new(&mut rng, 1_700_000_000);
/// let otks = account.generate_one_time_prekeys(&mut rng, 1);
/// let bundle = account.bundle(&SessionPolicy::default())?.with_one_time_prekey(otks[0])?;
/// let parsed = PrekeyBundle::from_bytes(&bundle.to_bytes())?;
/// assert_eq!(parsed, bundle);
/// # Ok::<(), sealpost::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrekeyBundle {
    identity: IdentityPublic,
    versions: Vec<u8>,
    suites: Vec<u8>,
    signed_prekey: SignedPrekeyPublic,
    pq_prekey: Option<Vec<u8>>,
    signature: [u8; 64],
    one_time_prekey: Option<OneTimePrekey>,
}

use crate::consts::MAX_BUNDLE_LIST as MAX_LIST;

impl PrekeyBundle {
    pub(crate) fn sign(
        identity: &IdentityKeyPair,
        versions: Vec<u8>,
        suites: Vec<u8>,
        signed_prekey: SignedPrekeyPublic,
        pq_prekey: Option<Vec<u8>>,
    ) -> Result<Self> {
        let mut bundle = Self {
            identity: *identity.public(),
            versions,
            suites,
            signed_prekey,
            pq_prekey,
            signature: [0; 64],
            one_time_prekey: None,
        };
        bundle.check_lists()?;
        let body = bundle.signed_body()?;
        bundle.signature = identity.sign(SignatureContext::Bundle, &body);
        Ok(bundle)
    }

    /// The owner's identity.
    pub fn identity(&self) -> &IdentityPublic {
        &self.identity
    }

    /// Protocol versions the owner speaks.
    pub fn versions(&self) -> &[u8] {
        &self.versions
    }

    /// Suite ids the owner accepts, most preferred first.
    pub fn suites(&self) -> &[u8] {
        &self.suites
    }

    /// The signed prekey.
    pub fn signed_prekey(&self) -> &SignedPrekeyPublic {
        &self.signed_prekey
    }

    /// The ML-KEM-768 encapsulation key signed with the signed prekey
    /// (present exactly when the versions include the hybrid version 2).
    pub fn pq_prekey(&self) -> Option<&[u8]> {
        self.pq_prekey.as_deref()
    }

    /// The one-time prekey, if the relay had one left.
    pub fn one_time_prekey(&self) -> Option<&OneTimePrekey> {
        self.one_time_prekey.as_ref()
    }

    /// The same bundle with `otk` attached, after checking its signature.
    pub fn with_one_time_prekey(mut self, otk: OneTimePrekey) -> Result<Self> {
        otk.verify(&self.identity)?;
        self.one_time_prekey = Some(otk);
        Ok(self)
    }

    /// The same bundle without a one-time prekey.
    pub fn without_one_time_prekey(mut self) -> Self {
        self.one_time_prekey = None;
        self
    }

    fn check_lists(&self) -> Result<()> {
        let hybrid = self.versions.contains(&crate::policy::HYBRID_VERSION);
        if hybrid != self.pq_prekey.is_some()
            || self.pq_prekey.as_ref().is_some_and(|k| k.len() != crate::pq::PQ_PREKEY_LEN)
        {
            return Err(Error::Malformed("prekey bundle"));
        }
        for list in [&self.versions, &self.suites] {
            if list.is_empty() || list.len() > MAX_LIST {
                return Err(Error::Malformed("prekey bundle"));
            }
            for (i, v) in list.iter().enumerate() {
                if list.iter().skip(i.saturating_add(1)).any(|w| w == v) {
                    return Err(Error::Malformed("prekey bundle"));
                }
            }
        }
        Ok(())
    }

    /// The bytes the bundle signature covers (everything before it).
    fn signed_body(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + IDENTITY_PUBLIC_LEN + 2 + 2 * MAX_LIST + 45 + crate::pq::PQ_PREKEY_LEN);
        out.push(BUNDLE_FORMAT);
        out.extend_from_slice(&self.identity.to_bytes());
        put_bytes_u8(&mut out, &self.versions)?;
        put_bytes_u8(&mut out, &self.suites)?;
        put_u32(&mut out, self.signed_prekey.id);
        out.extend_from_slice(&self.signed_prekey.key);
        put_u64(&mut out, self.signed_prekey.created_at);
        match &self.pq_prekey {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                out.extend_from_slice(k);
            }
        }
        Ok(out)
    }

    /// The wire encoding: signed part, its signature, a presence byte and
    /// the one-time prekey if any.
    pub fn to_bytes(&self) -> Vec<u8> {
        // The lists were checked when the bundle was built or parsed, so the
        // encoding cannot fail.
        let mut out = self.signed_body().unwrap_or_default();
        out.extend_from_slice(&self.signature);
        match &self.one_time_prekey {
            None => out.push(0),
            Some(otk) => {
                out.push(1);
                out.extend_from_slice(&otk.to_bytes());
            }
        }
        out
    }

    /// Parses a bundle and checks, in this order: the structure
    /// ([`Error::Malformed`]), the identity (its keys, then its binding), the
    /// signed prekey, ML-KEM and one-time prekey keys ([`Error::InvalidKey`]
    /// for a low-order X25519 key or an ML-KEM key that fails the FIPS 203
    /// modulus check), the bundle signature and the one-time prekey
    /// signature ([`Error::InvalidSignature`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "prekey bundle");
        let format = r.u8()?;
        if format != BUNDLE_FORMAT {
            return Err(Error::UnsupportedVersion(format));
        }
        let identity = IdentityPublic::from_bytes(r.take(IDENTITY_PUBLIC_LEN)?)?;
        let versions = r.bytes_u8()?.to_vec();
        let suites = r.bytes_u8()?.to_vec();
        let signed_prekey = SignedPrekeyPublic { id: r.u32()?, key: r.array()?, created_at: r.u64()? };
        let pq_prekey = match r.u8()? {
            0 => None,
            1 => Some(r.take(crate::pq::PQ_PREKEY_LEN)?.to_vec()),
            _ => return Err(Error::Malformed("prekey bundle")),
        };
        let signature = r.array()?;
        let one_time_prekey = match r.u8()? {
            0 => None,
            1 => Some(OneTimePrekey::read(&mut r)?),
            _ => return Err(Error::Malformed("prekey bundle")),
        };
        r.finish()?;
        let bundle = Self { identity, versions, suites, signed_prekey, pq_prekey, signature, one_time_prekey };
        bundle.check_lists()?;
        check_x25519_public(&bundle.signed_prekey.key)?;
        if let Some(pq) = &bundle.pq_prekey {
            crate::pq::check_public(pq)?;
        }
        if let Some(otk) = &bundle.one_time_prekey {
            check_x25519_public(&otk.key)?;
        }
        identity.verify(SignatureContext::Bundle, &bundle.signed_body()?, &bundle.signature)?;
        if let Some(otk) = &bundle.one_time_prekey {
            otk.verify(&identity)?;
        }
        Ok(bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn signed(identity: &IdentityKeyPair, spk_key: [u8; 32], pq: Vec<u8>) -> Result<PrekeyBundle> {
        let spk = SignedPrekeyPublic { id: 1, key: spk_key, created_at: 0 };
        PrekeyBundle::sign(identity, alloc::vec![1, 2], alloc::vec![1], spk, Some(pq))
    }

    #[test]
    fn correctly_signed_bundle_with_a_bad_key_is_refused() {
        let mut rng = ChaCha20Rng::from_seed([11; 32]);
        let id = IdentityKeyPair::generate(&mut rng);
        let pq = crate::pq::PqSecret::generate(&mut rng).public();
        let good = signed(&id, [9; 32], pq.clone()).unwrap();
        assert_eq!(PrekeyBundle::from_bytes(&good.to_bytes()), Ok(good));
        // Every signature verifies; the keys themselves are refused.
        let low = signed(&id, [0; 32], pq.clone()).unwrap();
        assert_eq!(PrekeyBundle::from_bytes(&low.to_bytes()), Err(Error::InvalidKey));
        let mut bad_pq = pq;
        bad_pq[0] = 0xff;
        bad_pq[1] |= 0x0f; // first coefficient 0xfff >= 3329
        let out_of_range = signed(&id, [9; 32], bad_pq).unwrap();
        assert_eq!(PrekeyBundle::from_bytes(&out_of_range.to_bytes()), Err(Error::InvalidKey));
        let otk = OneTimePrekey::sign(&id, 2, [0; 32]);
        let mut wire = signed(&id, [9; 32], crate::pq::PqSecret::generate(&mut rng).public()).unwrap().to_bytes();
        wire.pop();
        wire.push(1);
        wire.extend_from_slice(&otk.to_bytes());
        assert_eq!(PrekeyBundle::from_bytes(&wire), Err(Error::InvalidKey));
    }
}
