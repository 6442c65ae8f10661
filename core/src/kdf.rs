//! Key derivation: HKDF-SHA-256 with the protocol's labels, and
//! PBKDF2-HMAC-SHA-256 for passphrases.
//!
//! Every HKDF use in Sealpost goes through [`hkdf_sha256`] with one of the
//! labels in [`label`], so that no two derivations can ever share an output.
//! `docs/PROTOCOL.md` lists the inputs of each.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::secret::SymmetricKey;

#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub use crate::context::label;

/// The default PBKDF2-HMAC-SHA-256 iteration count for passphrases
/// (OWASP's 2023 recommendation for this PRF).
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;

pub(crate) use crate::consts::MAX_PBKDF2_ITERATIONS;

/// Length of the random salt drawn for a passphrase.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub const PBKDF2_SALT_LEN: usize = 16;

/// HKDF-SHA-256 (RFC 5869): extract with `salt`, then expand with `info`
/// (the concatenation of the parts) into `out`.
///
/// `out` may be at most 255 × 32 bytes long.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    hk.expand_multi_info(info, out).map_err(|_| Error::TooLarge)
}

/// PBKDF2-HMAC-SHA-256 (RFC 8018) of `password` and `salt` into `out`.
/// This is the bare primitive; passphrase keys go through [`Pbkdf2Params`],
/// which enforces a random salt and the iteration minimum.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, out);
}

/// HKDF-Expand only, for a `prk` that is already a uniformly random
/// 32-byte key (a chain key): one step costs two HMAC calls instead of three.
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub fn hkdf_expand_sha256(prk: &[u8; 32], info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    let hk = Hkdf::<Sha256>::from_prk(prk).map_err(|_| Error::TooLarge)?;
    hk.expand_multi_info(info, out).map_err(|_| Error::TooLarge)
}

/// Parameters of a passphrase derivation: a random salt and an iteration
/// count, both stored next to whatever the key protects.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
pub struct Pbkdf2Params {
    salt: [u8; PBKDF2_SALT_LEN],
    iterations: u32,
}

impl Pbkdf2Params {
    /// Fresh parameters: a random salt and [`DEFAULT_PBKDF2_ITERATIONS`].
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut salt = [0u8; PBKDF2_SALT_LEN];
        rng.fill_bytes(&mut salt);
        Self { salt, iterations: DEFAULT_PBKDF2_ITERATIONS }
    }

    /// Parameters with a chosen salt and count; counts below
    /// [`DEFAULT_PBKDF2_ITERATIONS`] are refused with [`Error::WeakParameters`].
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub, dead_code))]
    pub fn new(salt: [u8; PBKDF2_SALT_LEN], iterations: u32) -> Result<Self> {
        if iterations < DEFAULT_PBKDF2_ITERATIONS {
            return Err(Error::WeakParameters);
        }
        Self::new_allowing_weak(salt, iterations)
    }

    /// Like [`Pbkdf2Params::new`] but accepts any count from 1 up. Only for
    /// callers that decided so explicitly (tests, constrained devices with
    /// another protection); the count is stored and checked on restore.
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn new_allowing_weak(salt: [u8; PBKDF2_SALT_LEN], iterations: u32) -> Result<Self> {
        if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
            return Err(Error::WeakParameters);
        }
        Ok(Self { salt, iterations })
    }

    /// The salt.
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn salt(&self) -> &[u8; PBKDF2_SALT_LEN] {
        &self.salt
    }

    /// The iteration count.
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Derives the 32-byte key for `passphrase`.
    #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
    pub fn derive(&self, passphrase: &[u8]) -> SymmetricKey {
        let mut out = [0u8; 32];
        pbkdf2_sha256(passphrase, &self.salt, self.iterations, &mut out);
        let key = SymmetricKey::from_bytes(out);
        out.zeroize();
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_counts_need_explicit_opt_in() {
        assert_eq!(Pbkdf2Params::new([0; 16], 1000), Err(Error::WeakParameters));
        assert!(Pbkdf2Params::new([0; 16], DEFAULT_PBKDF2_ITERATIONS).is_ok());
        assert!(Pbkdf2Params::new_allowing_weak([0; 16], 1000).is_ok());
        assert_eq!(Pbkdf2Params::new_allowing_weak([0; 16], 0), Err(Error::WeakParameters));
        assert_eq!(Pbkdf2Params::new([0; 16], MAX_PBKDF2_ITERATIONS + 1), Err(Error::WeakParameters));
    }

    #[test]
    fn salt_changes_the_key() {
        let a = Pbkdf2Params::new_allowing_weak([1; 16], 10).map(|p| p.derive(b"pw"));
        let b = Pbkdf2Params::new_allowing_weak([2; 16], 10).map(|p| p.derive(b"pw"));
        assert!(a.is_ok() && b.is_ok());
        assert!(a != b);
    }
}
