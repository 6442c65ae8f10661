//! # Sealpost
//!
//! The protocol core of Sealpost, an end-to-end encrypted messaging
//! toolkit: identities and prekey bundles, cipher suites with negotiation,
//! and the versioned wire format, with no I/O, no clock and no global
//! random number generator. Callers pass randomness (`rand_core`) and the
//! time (Unix seconds) in.
//!
//! The crate is `no_std` + `alloc`; the default `std` feature adds
//! [`os_rng`]. It contains no `unsafe` code. Every secret zeroizes on drop,
//! never shows in `Debug`, and is compared in constant time. Input from the
//! network never panics: it ends in a typed [`Error`].
//!
//! ```
//! use sealpost::{Account, PrekeyBundle, SafetyNumber, SessionPolicy};
//! let mut rng = sealpost::os_rng();
//! let now = 1_700_000_000;
//! let bob = Account::new(&mut rng, now);
//! let alice = Account::new(&mut rng, now);
//! // Bob publishes his bundle; Alice fetches and verifies it.
//! let wire = bob.bundle(&SessionPolicy::default())?.to_bytes();
//! let bundle = PrekeyBundle::from_bytes(&wire)?;
//! // Both can show the same safety number.
//! let sn = SafetyNumber::new(alice.identity(), bundle.identity());
//! assert_eq!(sn, SafetyNumber::new(bob.identity(), alice.identity()));
//! # Ok::<(), sealpost::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
// Untrusted lengths flow through this crate: every arithmetic step is
// checked or saturating.
#![warn(clippy::arithmetic_side_effects, clippy::as_conversions)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::arithmetic_side_effects, clippy::as_conversions)
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod account;
pub mod bundle;
mod codec;
pub mod consts;
mod context;
pub mod envelope;
pub mod error;
pub mod group;
mod handshake;
pub mod heal;
pub mod identity;
#[cfg(test)]
mod kat;
pub mod kdf;
#[cfg(feature = "rsa")]
pub mod legacy;
pub mod pickle;
pub mod policy;
pub mod pq;
pub mod ratchet;
pub mod room;
mod secret;
pub mod suite;
mod twofish;

pub use account::Account;
pub use bundle::{OneTimePrekey, PrekeyBundle, SignedPrekeyPublic};
pub use consts::{MAX_ONE_TIME_PREKEYS, SIGNED_PREKEY_KEEP_FOR, SIGNED_PREKEY_ROTATE_AFTER};
pub use context::SignatureContext;
pub use envelope::{Envelope, Padding};
pub use error::{Error, Result};
pub use group::GroupSession;
pub use heal::{HealEvent, Healer, PeerSessions};
pub use identity::{IdentityKeyPair, IdentityPublic, RelaySigner, SafetyNumber};
pub use pickle::PickleKey;
pub use policy::{PROTOCOL_VERSION, SessionPolicy, negotiate_suite};
pub use ratchet::{Role, Session};
pub use secret::SymmetricKey;
pub use suite::Suite;

/// The operating system's random number generator (feature `std`).
///
/// It panics only if the operating system cannot supply randomness at all,
/// which no caller could recover from.
#[cfg(feature = "std")]
pub fn os_rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// Low-level access for test vectors and conformance work (feature `hazmat`).
/// Applications never need it.
#[cfg(feature = "hazmat")]
pub mod hazmat {
    pub use crate::suite::SuiteKeys;

    /// The two 32-byte identity secrets (Ed25519 seed, X25519 scalar), for
    /// publishing test vectors. Never needed by an application.
    pub fn identity_secret_bytes(account: &crate::Account) -> ([u8; 32], [u8; 32]) {
        account.identity.secret_bytes()
    }

    /// The identity key pair of `account`, for signing test vectors under
    /// any context. Applications sign relay requests with
    /// [`Account::relay_signer`](crate::Account::relay_signer) and nothing else.
    pub fn identity_keys(account: &crate::Account) -> &crate::IdentityKeyPair {
        &account.identity
    }

    /// An account whose identity is `identity` (for example one rebuilt
    /// from a test vector's secrets), with a fresh signed prekey drawn from
    /// `rng` at `now`.
    pub fn account_from_identity<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        identity: crate::IdentityKeyPair,
        now: u64,
    ) -> crate::Account {
        crate::Account::with_identity(rng, identity, now)
    }

    /// A bundle as a peer that only speaks the classical version 1 (no
    /// ML-KEM prekey) would publish, for testing downgrade rules.
    pub fn classical_bundle(
        account: &crate::Account,
        policy: &crate::SessionPolicy,
    ) -> crate::Result<crate::PrekeyBundle> {
        let spk =
            account.signed_prekeys.iter().rev().find(|k| k.retired_at.is_none()).ok_or(crate::Error::UnknownPrekey)?;
        crate::PrekeyBundle::sign(
            &account.identity,
            alloc::vec![crate::policy::PROTOCOL_VERSION],
            policy.suite_ids(),
            spk.public,
            None,
        )
    }

    /// The ML-KEM-768 encapsulation key of a 64-byte seed (d || z).
    pub fn ml_kem_public(seed: &[u8; 64]) -> alloc::vec::Vec<u8> {
        crate::pq::PqSecret::from_seed(seed).public()
    }

    /// ML-KEM-768 encapsulation (FIPS 203) with caller-given randomness
    /// `m`: (ciphertext, shared secret). The key is checked as a bundle's is
    /// when parsed: [`Error::InvalidKey`](crate::Error::InvalidKey) unless it
    /// is 1184 bytes that pass the modulus check.
    pub fn ml_kem_encapsulate(public: &[u8], m: &[u8; 32]) -> crate::Result<(alloc::vec::Vec<u8>, [u8; 32])> {
        let (ct, ss) = crate::pq::encapsulate_with(public, m)?;
        Ok((ct, *ss))
    }

    /// X25519 (RFC 7748) of a scalar (clamped as the RFC says) and a
    /// u-coordinate (bit 255 ignored), with no check of the result: a
    /// low-order `public` gives all zeros. The protocol never uses this; it
    /// refuses such keys when it parses them ([`check_x25519_public`]).
    pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
        x25519_dalek::x25519(*secret, *public)
    }

    /// The protocol's rule for a received X25519 public key:
    /// [`Error::InvalidKey`](crate::Error::InvalidKey) for the low-order
    /// points (all-zero output with every scalar), else `Ok`.
    pub fn check_x25519_public(public: &[u8; 32]) -> crate::Result<()> {
        crate::identity::check_x25519_public(public)
    }

    /// ML-KEM-768 decapsulation with the key of a 64-byte seed.
    pub fn ml_kem_decapsulate(seed: &[u8; 64], ciphertext: &[u8]) -> crate::Result<[u8; 32]> {
        Ok(*crate::pq::PqSecret::from_seed(seed).decapsulate(ciphertext)?)
    }

    /// Seals an arbitrary plaintext as a pickle of `kind` with empty
    /// associated data (for fuzzing the pickle decoders past the
    /// authentication layer).
    pub fn seal_pickle<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        kind: crate::pickle::PickleKind,
        key: &crate::PickleKey,
        plaintext: &[u8],
    ) -> crate::Result<alloc::vec::Vec<u8>> {
        crate::pickle::seal(rng, kind, key, &[], plaintext)
    }

    /// Every 32-byte secret `session` holds right now (roots, chain keys,
    /// own ratchet secrets, kept message keys), for tests that look for
    /// them where they must not be (freed memory). Wiped on drop.
    pub fn session_secrets(session: &crate::Session) -> zeroize::Zeroizing<alloc::vec::Vec<[u8; 32]>> {
        session.secrets()
    }

    /// Every 32-byte secret `group` holds right now (its signing seed and
    /// chain key, the other members' chain keys and kept message keys).
    /// Wiped on drop.
    pub fn group_secrets(group: &crate::GroupSession) -> zeroize::Zeroizing<alloc::vec::Vec<[u8; 32]>> {
        group.secrets()
    }

    /// The suite keys with which `session` would open `envelope`, computed
    /// without changing the session. Lets tests show that no key and nonce
    /// is ever used twice.
    pub fn message_keys(session: &crate::Session, envelope: &[u8]) -> crate::Result<SuiteKeys> {
        match crate::Envelope::from_bytes(envelope)? {
            crate::Envelope::Ratchet(m) => session.message_keys(&m.header),
            crate::Envelope::Prekey(m) => session.message_keys(&m.header),
            _ => Err(crate::Error::Malformed("not a pairwise message")),
        }
    }
}
