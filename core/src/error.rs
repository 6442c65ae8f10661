//! The one error type of the crate.

use core::fmt;

/// Everything that can go wrong in Sealpost's protocol core.
///
/// Each variant is something a caller can act on: drop the input, ask the
/// peer to re-establish the session, warn the user, or raise a policy. Input
/// from the network never panics; it ends in one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not follow the wire format (wrong length, bad field,
    /// trailing data). The string names the structure that failed to parse.
    Malformed(&'static str),
    /// The protocol or format version is not one this build understands.
    UnsupportedVersion(u8),
    /// The suite id is unknown to this build.
    UnsupportedSuite(u8),
    /// The suite is known but the local policy does not allow it.
    SuiteNotAllowed(u8),
    /// The two preference lists share no suite the policy allows.
    NoCommonSuite,
    /// The negotiated parameters differ from what the signed preference
    /// lists require: somebody changed them in transit.
    Downgrade,
    /// Decryption failed: the ciphertext, tag, nonce or associated data was
    /// altered, or the key is wrong. Deliberately carries no detail.
    AuthenticationFailed,
    /// A signature did not verify under the claimed key.
    InvalidSignature,
    /// A public key is not acceptable, refused when it is parsed: a
    /// low-order X25519 key (one that gives an all-zero shared secret), an
    /// Ed25519 key that is non-canonical or of small order, or an ML-KEM-768
    /// key that fails the FIPS 203 modulus check. Key checks come before
    /// signature checks, so a bad key is never reported as a bad signature.
    InvalidKey,
    /// This message was already decrypted once; a second delivery is a replay.
    Replay,
    /// The message lies outside the window of keys kept for late delivery.
    OutsideWindow,
    /// Too many messages were skipped to accept this one.
    TooManySkipped,
    /// The session has been idle longer than its policy allows.
    SessionExpired,
    /// The prekey the message refers to is unknown or was already used.
    UnknownPrekey,
    /// The signed prekey has accepted as many session starts as it can
    /// remember (`MAX_BASE_KEYS_PER_PREKEY`(crate::consts::MAX_BASE_KEYS_PER_PREKEY))
    /// and refuses more without a one-time prekey; the initiator needs the
    /// owner's newer bundle.
    PrekeyExhausted,
    /// The bundle's signed prekey is older than
    /// [`MAX_SIGNED_PREKEY_AGE`](crate::consts::MAX_SIGNED_PREKEY_AGE).
    StalePrekey,
    /// The sender is not a member of the group, or its sender key is not
    /// known (yet): its distribution may still be on the way.
    UnknownSender,
    /// A group session restored from a pickle has a new sender chain that
    /// must be sent to the other members before it seals anything.
    RedistributionRequired,
    /// The same request came again too soon (a rate limit).
    RateLimited,
    /// A session reset is addressed to another party, or names a session
    /// other than the receiver's current one (an old, delayed request): it
    /// must not end the session it would have ended.
    Misdirected,
    /// A parameter is below the safe minimum (for example too few PBKDF2
    /// iterations) and the caller did not opt in explicitly, or outside the
    /// supported set (an RSA modulus not exactly 2048 or 3072 bits).
    WeakParameters,
    /// A length exceeds what the format or the policy accepts.
    TooLarge,
    /// The random number generator failed.
    Rng,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "malformed {what}"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            Self::UnsupportedSuite(s) => write!(f, "unsupported cipher suite {s}"),
            Self::SuiteNotAllowed(s) => write!(f, "cipher suite {s} is not allowed by policy"),
            Self::NoCommonSuite => f.write_str("no cipher suite in common"),
            Self::Downgrade => f.write_str("downgrade detected: negotiated parameters were altered"),
            Self::AuthenticationFailed => f.write_str("authentication failed"),
            Self::InvalidSignature => f.write_str("invalid signature"),
            Self::InvalidKey => f.write_str("invalid public key"),
            Self::Replay => f.write_str("message already received (replay)"),
            Self::OutsideWindow => f.write_str("message outside the accepted window"),
            Self::TooManySkipped => f.write_str("too many skipped messages"),
            Self::SessionExpired => f.write_str("session expired"),
            Self::UnknownPrekey => f.write_str("unknown or already used prekey"),
            Self::PrekeyExhausted => f.write_str("the signed prekey accepts no more session starts"),
            Self::StalePrekey => f.write_str("the bundle's signed prekey is too old"),
            Self::UnknownSender => f.write_str("unknown sender or sender key"),
            Self::RedistributionRequired => f.write_str("send the new sender key to the group first"),
            Self::RateLimited => f.write_str("too soon to repeat this request"),
            Self::Misdirected => f.write_str("request addressed to another party or another session"),
            Self::WeakParameters => f.write_str("parameters below the safe minimum"),
            Self::TooLarge => f.write_str("input too large"),
            Self::Rng => f.write_str("random number generator failure"),
        }
    }
}

impl core::error::Error for Error {}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
