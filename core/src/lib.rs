//! # Sealpost
//!
//! The protocol core of Sealpost, an end-to-end encrypted messaging
//! toolkit: identities and prekey bundles, cipher suites with negotiation,
//! and the versioned wire format, with no I/O, no clock and no global
//! random number generator. Callers pass randomness (`rand_core`) and the
//! time (Unix seconds) in.
//!
//! The crate is `no_std` + `alloc`; the default `std` feature adds
//! [`os_rng`], `ring` takes AES-GCM and ChaCha20-Poly1305 from `ring` on
//! native targets, and `precomputed-tables` keeps curve25519-dalek's
//! basepoint tables (faster key generation and signatures, about 60 KiB
//! of data; the npm package and microcontroller builds leave it out). It contains no `unsafe` code. Every secret zeroizes on drop,
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
mod bundle;
mod codec;
mod consts;
mod context;
mod envelope;
mod error;
mod group;
mod handshake;
#[cfg(feature = "hazmat")]
pub mod hazmat;
mod heal;
mod identity;
#[cfg(test)]
mod kat;
mod kdf;
mod pickle;
mod policy;
mod pq;
mod ratchet;
mod room;
#[cfg(feature = "rsa")]
mod rsa;
mod secret;
mod sorted;
mod suite;
mod twofish;

// Every public type has one path: here at the root. Conformance-only access
// (raw derivations, caller-chosen keys and nonces, identity secrets) is in
// `hazmat` behind its feature.
#[cfg(feature = "rsa")]
pub use self::rsa::{RsaPrivateKey, RsaPublicKey};
pub use account::Account;
pub use bundle::{OneTimePrekey, PrekeyBundle, SignedPrekeyPublic};
pub use consts::{
    MAX_GROUP_ID_LEN, MAX_GROUP_MEMBERS, MAX_ONE_TIME_PREKEYS, MAX_SIGNED_PREKEY_AGE, MAX_SKIP_PER_CHAIN_CAP,
    MAX_SKIPPED_TOTAL_CAP, PREVIOUS_SESSION_LIFETIME, RESET_MAX_AGE, RESET_MIN_INTERVAL, SIGNED_PREKEY_KEEP_FOR,
    SIGNED_PREKEY_ROTATE_AFTER,
};
pub use context::SignatureContext;
pub use envelope::{
    Envelope, EnvelopeType, GroupMessage, Padding, PrekeyMessage, RatchetHeader, RatchetMessage, SenderKeyDistribution,
};
pub use error::{Error, Result};
pub use group::GroupSession;
pub use heal::{HealEvent, Healer, PeerSessions, is_session_reset, suggests_divergence};
pub use identity::{IDENTITY_PUBLIC_LEN, IdentityPublic, RelaySigner, SafetyNumber, verify_relay_request};
pub use pickle::PickleKey;
pub use policy::{PROTOCOL_VERSION, SessionPolicy, negotiate_suite};
pub use ratchet::{Role, Session};
pub use room::{Incoming, Outgoing, Room};
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
