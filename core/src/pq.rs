//! The post-quantum half of the hybrid session start: ML-KEM-768 (FIPS
//! 203, the RustCrypto `ml-kem` crate).
//!
//! Each signed prekey comes with an ML-KEM-768 key pair generated from a
//! 64-byte seed; its 1184-byte encapsulation key is in the bundle's signed
//! part. The initiator encapsulates to it and sends the 1088-byte
//! ciphertext in its prekey messages; the shared secret joins the X25519
//! outputs in the root derivation (protocol version 2).

use ml_kem::kem::{Decapsulate, KeyExport};
use ml_kem::{DecapsulationKey, EncapsulationKey, MlKem768};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of an ML-KEM-768 encapsulation key.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const PQ_PREKEY_LEN: usize = 1184;
/// Length of an ML-KEM-768 ciphertext.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const PQ_CIPHERTEXT_LEN: usize = 1088;

/// An ML-KEM-768 decapsulation key: its 64-byte seed (d || z), which is
/// what pickles store, and the key expanded from it once (expansion costs
/// about as much as a decapsulation). Both are wiped on drop (`ml-kem`'s
/// `zeroize` feature wipes the expanded key).
#[derive(Clone)]
pub(crate) struct PqSecret {
    seed: Zeroizing<[u8; 64]>,
    key: DecapsulationKey<MlKem768>,
}

impl PqSecret {
    pub(crate) fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_seed(&seed)
    }

    pub(crate) fn from_seed(seed: &[u8; 64]) -> Self {
        let key = DecapsulationKey::<MlKem768>::from_seed((*seed).into());
        Self { seed: Zeroizing::new(*seed), key }
    }

    pub(crate) fn seed(&self) -> &[u8; 64] {
        &self.seed
    }

    /// The encapsulation key to publish.
    pub(crate) fn public(&self) -> alloc::vec::Vec<u8> {
        self.key.encapsulation_key().to_bytes().to_vec()
    }

    /// The shared secret of a ciphertext (implicit rejection: a wrong
    /// ciphertext gives an unrelated secret, and the session fails to open).
    pub(crate) fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let ct = ciphertext.try_into().map_err(|_| Error::Malformed("ML-KEM ciphertext"))?;
        let ss = Zeroizing::new(self.key.decapsulate(ct));
        Ok(Zeroizing::new((*ss).into()))
    }
}

/// Decodes an encapsulation key: [`Error::InvalidKey`] unless it is 1184
/// bytes whose 12-bit coefficients are all below q = 3329 (the FIPS 203
/// 7.2 modulus check).
fn encapsulation_key(public: &[u8]) -> Result<EncapsulationKey<MlKem768>> {
    let key = public.try_into().map_err(|_| Error::InvalidKey)?;
    EncapsulationKey::<MlKem768>::new(key).map_err(|_| Error::InvalidKey)
}

/// Refuses an encapsulation key that [`encapsulate`] would refuse, when a
/// bundle is parsed.
pub(crate) fn check_public(public: &[u8]) -> Result<()> {
    encapsulation_key(public).map(drop)
}

/// Encapsulation with caller-given randomness `m` (for known-answer tests).
#[cfg(feature = "hazmat")]
pub(crate) fn encapsulate_with(public: &[u8], m: &[u8; 32]) -> Result<(alloc::vec::Vec<u8>, Zeroizing<[u8; 32]>)> {
    let ek = encapsulation_key(public)?;
    let m = Zeroizing::new(ml_kem::B32::from(*m));
    let (ct, ss) = ek.encapsulate_deterministic(&m);
    let ss = Zeroizing::new(ss);
    Ok((ct.to_vec(), Zeroizing::new((*ss).into())))
}

/// Encapsulates to a published key with 32 bytes drawn from `rng`:
/// (ciphertext, shared secret).
pub(crate) fn encapsulate<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    public: &[u8],
) -> Result<(alloc::vec::Vec<u8>, Zeroizing<[u8; 32]>)> {
    let ek = encapsulation_key(public)?;
    // m determines the shared secret: drawn into, and wiped from, one buffer.
    let mut m = Zeroizing::new(ml_kem::B32::default());
    rng.fill_bytes(&mut m[..]);
    let (ct, ss) = ek.encapsulate_deterministic(&m);
    let ss = Zeroizing::new(ss);
    Ok((ct.to_vec(), Zeroizing::new((*ss).into())))
}
