//! Every domain-separation string of the protocol core, in one place: the
//! Ed25519 signature contexts, the HKDF labels and the few hash and RSA
//! labels.
//!
//! Signatures: the set of contexts is closed ([`SignatureContext`]); no
//! caller can sign under a context of its own, and none is empty. Ed25519
//! signs `u8(len(context)) || context || message`, so a signature under
//! one context can never be read as one under another context followed by
//! a different message.
//!
//! No string here is a prefix of another (a test checks every one of them),
//! so `label || data` is also unambiguous for the KDF labels, which keep
//! their plain concatenation.

use alloc::vec::Vec;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

macro_rules! signature_contexts {
    ($($(#[$doc:meta])* $name:ident => $label:literal,)*) => {
        /// What an Ed25519 signature in Sealpost is for. The set is closed:
        /// every signature the protocol makes or checks uses one of these,
        /// and Ed25519 signs `u8(len(label)) || label || message`
        /// (`docs/PROTOCOL.md` 2.1).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum SignatureContext {
            $($(#[$doc])* $name,)*
        }

        impl SignatureContext {
            /// Every context, in declaration order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Self] = &[$(Self::$name,)*];

            /// The context's ASCII label (at most 255 bytes, never empty).
            pub const fn label(self) -> &'static [u8] {
                match self {
                    $(Self::$name => $label,)*
                }
            }
        }
    };
}

signature_contexts! {
    /// An identity's Ed25519 key binding its X25519 key (identity key).
    IdentityBinding => b"sealpost/v1/identity-binding",
    /// The signed part of a prekey bundle (identity key).
    Bundle => b"sealpost/v1/bundle",
    /// A one-time prekey (identity key).
    OneTimePrekey => b"sealpost/v1/one-time-prekey",
    /// A session reset request (identity key).
    SessionReset => b"sealpost/v1/session-reset",
    /// "This sender key is mine", in a sender-key distribution (identity key).
    SenderKeyOwner => b"sealpost/v1/sender-key-owner",
    /// A whole sender-key distribution and its owner (sender key).
    SenderKeyDistribution => b"sealpost/v1/sender-key-distribution",
    /// A group message (sender key).
    GroupMessage => b"sealpost/v1/group-message",
    /// A request to a relay (identity key).
    RelayRequest => b"sealpost/v1/relay-request",
}

impl SignatureContext {
    /// The bytes Ed25519 signs: `u8(len(label)) || label || msg`. Wiped on
    /// drop, since some signed messages hold a chain key.
    fn message(self, msg: &[u8]) -> Zeroizing<Vec<u8>> {
        let label = self.label();
        let mut out = Zeroizing::new(Vec::with_capacity(label.len().saturating_add(1).saturating_add(msg.len())));
        // Every label is a short literal (a test checks len < 256).
        out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(label);
        out.extend_from_slice(msg);
        out
    }
}

/// Ed25519 signature under `context` (identity and sender keys alike).
pub(crate) fn sign(key: &SigningKey, context: SignatureContext, msg: &[u8]) -> [u8; 64] {
    key.sign(&context.message(msg)).to_bytes()
}

/// Checks an Ed25519 signature under `context` (strict verification: no
/// small-order key or R, canonical S).
pub(crate) fn verify(key: &VerifyingKey, context: SignatureContext, msg: &[u8], signature: &[u8; 64]) -> Result<()> {
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(&context.message(msg), &sig).map_err(|_| Error::InvalidSignature)
}

macro_rules! kdf_labels {
    ($($(#[$doc:meta])* $name:ident => $label:literal,)*) => {
        /// The HKDF `info` labels. Each is a distinct ASCII string beginning
        /// with `sealpost/v1/`; context bytes follow the label in the `info`
        /// input.
        #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))]
        pub mod label {
            $($(#[$doc])* #[cfg_attr(not(feature = "hazmat"), allow(unreachable_pub))] pub const $name: &[u8] = $label;)*
            /// Every label.
            #[cfg(test)]
            pub(crate) const ALL: &[&[u8]] = &[$($name,)*];
        }
    };
}

kdf_labels! {
    /// Per-message suite keys: key, nonce / IV and MAC key (suite id follows).
    SUITE_KEYS => b"sealpost/v1/suite-keys",
    /// Session start: root material from the X3DH-style agreement.
    SESSION_START => b"sealpost/v1/session-start",
    /// A ratchet step: an epoch's first chain key and the next root, from
    /// the root and a Diffie-Hellman output.
    RATCHET_STEP => b"sealpost/v1/ratchet-step",
    /// One step of a pairwise chain: message secret and next chain key.
    CHAIN_STEP => b"sealpost/v1/chain-step",
    /// One step of a group sender chain: message secret and next chain key.
    GROUP_CHAIN_STEP => b"sealpost/v1/group-chain-step",
    /// A pickle's sealing key, from the caller's key or passphrase key.
    PICKLE => b"sealpost/v1/pickle",
}

/// The first input of the session-start transcript hash (SHA-256).
pub(crate) const TRANSCRIPT: &[u8] = b"sealpost/v1/transcript";
/// The first input of a safety-number fingerprint (SHA-512).
pub(crate) const FINGERPRINT: &[u8] = b"sealpost/v1/fingerprint";
/// The RSA-OAEP label of legacy key wrapping.
#[cfg(feature = "rsa")]
pub(crate) const RSA_WRAP: &[u8] = b"sealpost/v1/rsa-wrap";
/// What RSA-PSS signs first in the legacy format. RSA keys sign nothing
/// else, so this one needs no length prefix.
#[cfg(feature = "rsa")]
pub(crate) const RSA_PSS: &[u8] = b"sealpost/v1/rsa-pss";

/// Every string of this module: the signature contexts, the KDF labels and
/// the hash and RSA labels.
#[cfg(test)]
pub(crate) fn all() -> Vec<&'static [u8]> {
    let mut all: Vec<&'static [u8]> = SignatureContext::ALL.iter().map(|c| c.label()).collect();
    all.extend_from_slice(label::ALL);
    all.extend_from_slice(&[TRANSCRIPT, FINGERPRINT]);
    #[cfg(feature = "rsa")]
    all.extend_from_slice(&[RSA_WRAP, RSA_PSS]);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_string_is_a_prefix_of_another() {
        let all = all();
        // 8 signature contexts, 6 KDF labels, 2 hash labels (+ 2 RSA).
        assert!(all.len() >= 16);
        for (i, a) in all.iter().enumerate() {
            assert!(!a.is_empty() && a.len() < 256);
            assert!(a.starts_with(b"sealpost/v1/"));
            for (j, b) in all.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{:?} is a prefix of {:?}", a, b);
                }
            }
        }
    }

    #[test]
    fn every_context_is_listed_once() {
        // `label` and ALL come from one list; no two variants share a label.
        for (i, a) in SignatureContext::ALL.iter().enumerate() {
            for b in SignatureContext::ALL.iter().skip(i + 1) {
                assert_ne!(a.label(), b.label());
            }
        }
        assert_eq!(SignatureContext::ALL.len(), 8);
    }

    #[test]
    fn signed_message_is_length_prefixed() {
        let m = SignatureContext::Bundle.message(b"body");
        assert_eq!(m[0], 18);
        assert_eq!(&m[1..19], b"sealpost/v1/bundle");
        assert_eq!(&m[19..], b"body");
    }

    #[test]
    fn signature_is_bound_to_its_context() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key();
        for a in SignatureContext::ALL {
            let sig = sign(&key, *a, b"msg");
            for b in SignatureContext::ALL {
                let want = if a == b { Ok(()) } else { Err(Error::InvalidSignature) };
                assert_eq!(verify(&public, *b, b"msg", &sig), want);
            }
        }
        // The old rule (plain `context || msg`) is not what verifies.
        let old = key.sign(b"sealpost/v1/bundlemsg").to_bytes();
        assert_eq!(verify(&public, SignatureContext::Bundle, b"msg", &old), Err(Error::InvalidSignature));
    }
}
