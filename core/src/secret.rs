//! Types that hold secret bytes: zeroized on drop, compared in constant
//! time, and never printed.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 32-byte symmetric secret (a pickle key, a derived key, a chain key).
///
/// The bytes are wiped when the value is dropped, `Debug` prints nothing of
/// them, and equality is constant time.
///
/// ```
/// use sealpost::SymmetricKey;
/// let key = SymmetricKey::from_bytes([7; 32]);
/// assert_eq!(format!("{key:?}"), "SymmetricKey(<redacted>)");
/// assert!(key == SymmetricKey::from_bytes([7; 32]));
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey([u8; 32]);

impl SymmetricKey {
    /// Wraps 32 secret bytes. The caller should wipe its own copy.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh random key.
    pub fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Borrows the secret bytes, for handing them to a primitive.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl ConstantTimeEq for SymmetricKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for SymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SymmetricKey {}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality_distinguishes() {
        assert!(SymmetricKey::from_bytes([1; 32]) == SymmetricKey::from_bytes([1; 32]));
        let mut other = [1; 32];
        other[31] = 2;
        assert!(SymmetricKey::from_bytes([1; 32]) != SymmetricKey::from_bytes(other));
    }

    #[test]
    fn debug_is_redacted() {
        let key = SymmetricKey::from_bytes([0xAB; 32]);
        let shown = alloc::format!("{key:?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab,"));
        assert_eq!(shown, "SymmetricKey(<redacted>)");
    }
}
