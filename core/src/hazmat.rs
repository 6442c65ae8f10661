//! Low-level access for test vectors and conformance work (feature
//! `hazmat`). Applications never need it: everything here either takes keys,
//! nonces or randomness from the caller (so misuse can reuse a nonce or
//! weaken a key) or exposes secrets and internal encodings.

use alloc::vec::Vec;

use crate::{Account, Error, Result};

pub use crate::consts::{
    MAX_BASE_KEYS_PER_PREKEY, MAX_FINISHED_CHAINS, MAX_GROUP_CHAINS_PER_MEMBER, MAX_HEAL_PEERS, MAX_OWN_RATCHET_KEYS,
    MAX_PEER_VERSIONS, MAX_RECEIVING_CHAINS, MAX_RESET_NONCES, MAX_SIGNED_PREKEYS,
};
pub use crate::consts::{MAX_PBKDF2_ITERATIONS, MAX_SUITE_LIST};
pub use crate::envelope::{RATCHET_HEADER_LEN, SALT_LEN, unpad, unpadded_len};
pub use crate::heal::{SESSION_RESET_LEN, SESSION_RESET_TYPE, SessionReset};
pub use crate::identity::{IdentityKeyPair, verify_signature};
pub use crate::kdf::{
    DEFAULT_PBKDF2_ITERATIONS, PBKDF2_SALT_LEN, Pbkdf2Params, hkdf_expand_sha256, hkdf_sha256, label, pbkdf2_sha256,
};
pub use crate::pickle::{PICKLE_FORMAT, PickleKind};
pub use crate::policy::{HYBRID_VERSION, SUPPORTED_VERSIONS};
pub use crate::pq::{PQ_CIPHERTEXT_LEN, PQ_PREKEY_LEN};
#[cfg(feature = "rsa")]
pub use crate::rsa::{OAEP_LABEL, PSS_CONTEXT, RSA_MESSAGE_VERSION, RSA_WRAPPED_TYPE};
pub use crate::suite::SuiteKeys;

/// An account whose identity is `identity` (for example one rebuilt with
/// [`IdentityKeyPair::from_secret_bytes`] from a test vector), with a fresh
/// signed prekey drawn from `rng` at `now`.
pub fn account_from_identity<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    identity: IdentityKeyPair,
    now: u64,
) -> Account {
    Account::with_identity(rng, identity, now)
}

/// The identity key pair of `account`, for signing test vectors under any
/// context. Applications sign relay requests with
/// [`Account::relay_signer`] and nothing else.
pub fn identity_keys(account: &Account) -> &IdentityKeyPair {
    &account.identity
}

/// Seals `plaintext` under `suite` with the message keys derived from
/// `secret` and `salt` (the protocol's per-message derivation).
pub fn suite_seal(
    suite: crate::Suite,
    secret: &crate::SymmetricKey,
    salt: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    suite.seal(secret, salt, aad, plaintext)
}

/// Opens what [`suite_seal`] sealed.
pub fn suite_open(
    suite: crate::Suite,
    secret: &crate::SymmetricKey,
    salt: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>> {
    suite.open(secret, salt, aad, ciphertext)
}

/// The two 32-byte identity secrets (Ed25519 seed, X25519 scalar), for
/// publishing test vectors. Never needed by an application.
pub fn identity_secret_bytes(account: &Account) -> ([u8; 32], [u8; 32]) {
    account.identity.secret_bytes()
}

/// A bundle as a peer that only speaks the classical version 1 (no
/// ML-KEM prekey) would publish, for testing downgrade rules.
pub fn classical_bundle(account: &Account, policy: &crate::SessionPolicy) -> Result<crate::PrekeyBundle> {
    let spk = account.signed_prekeys.iter().rev().find(|k| k.retired_at.is_none()).ok_or(Error::UnknownPrekey)?;
    crate::PrekeyBundle::sign(
        &account.identity,
        alloc::vec![crate::policy::PROTOCOL_VERSION],
        policy.suite_ids(),
        spk.public,
        None,
    )
}

/// The ML-KEM-768 encapsulation key of a 64-byte seed (d || z).
pub fn ml_kem_public(seed: &[u8; 64]) -> Vec<u8> {
    crate::pq::PqSecret::from_seed(seed).public()
}

/// ML-KEM-768 encapsulation (FIPS 203) with caller-given randomness
/// `m`: (ciphertext, shared secret). The key is checked as a bundle's is
/// when parsed: [`Error::InvalidKey`] unless it
/// is 1184 bytes that pass the modulus check.
pub fn ml_kem_encapsulate(public: &[u8], m: &[u8; 32]) -> Result<(Vec<u8>, [u8; 32])> {
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
/// [`Error::InvalidKey`] for the low-order
/// points (all-zero output with every scalar), else `Ok`.
pub fn check_x25519_public(public: &[u8; 32]) -> Result<()> {
    crate::identity::check_x25519_public(public)
}

/// ML-KEM-768 decapsulation with the key of a 64-byte seed.
pub fn ml_kem_decapsulate(seed: &[u8; 64], ciphertext: &[u8]) -> Result<[u8; 32]> {
    Ok(*crate::pq::PqSecret::from_seed(seed).decapsulate(ciphertext)?)
}

/// Seals an arbitrary plaintext as a pickle of `kind` with empty
/// associated data (for fuzzing the pickle decoders past the
/// authentication layer).
pub fn seal_pickle<R: rand_core::CryptoRng + ?Sized>(
    rng: &mut R,
    kind: PickleKind,
    key: &crate::PickleKey,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    crate::pickle::seal(rng, kind, key, &[], plaintext)
}

/// The message secret (32 bytes, from the chain), then the encryption key
/// (32) and the nonce of the last message `session` sent (`None` before its first message, and after a restore). Lets tests
/// show that no key and nonce pair is ever used twice, even by a sender
/// rolled back to an old pickle. Wiped on drop.
pub fn last_sent_keys(session: &crate::Session) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    session.last_sent_keys.clone()
}

/// Every 32-byte secret `session` holds right now (roots, chain keys,
/// own ratchet secrets, kept message keys), for tests that look for
/// them where they must not be (freed memory). Wiped on drop.
pub fn session_secrets(session: &crate::Session) -> zeroize::Zeroizing<Vec<[u8; 32]>> {
    session.secrets()
}

/// Every 32-byte secret `group` holds right now (its signing seed and
/// chain key, the other members' chain keys and kept message keys).
/// Wiped on drop.
pub fn group_secrets(group: &crate::GroupSession) -> zeroize::Zeroizing<Vec<[u8; 32]>> {
    group.secrets()
}

/// The suite keys with which `session` would open `envelope`, computed
/// without changing the session. Lets tests show that no key and nonce
/// is ever used twice.
pub fn message_keys(session: &crate::Session, envelope: &[u8]) -> Result<SuiteKeys> {
    match crate::Envelope::from_bytes(envelope)? {
        crate::Envelope::Ratchet(m) => session.message_keys(&m.header),
        crate::Envelope::Prekey(m) => session.message_keys(&m.header),
        _ => Err(Error::Malformed("not a pairwise message")),
    }
}
