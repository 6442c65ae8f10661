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

impl Error {
    /// The stable, machine-readable code of this kind of error: snake_case,
    /// one per variant, without the variant's data (`"malformed"`,
    /// `"authentication_failed"`, `"replay"`, …). Every binding reports
    /// failures under these codes (the Kotlin, Swift and Python exception
    /// classes are named after them, JavaScript errors carry them as
    /// `code`), so apps can match on them in any language. A code never
    /// changes once released; the [`Display`](fmt::Display) text may.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::UnsupportedSuite(_) => "unsupported_suite",
            Self::SuiteNotAllowed(_) => "suite_not_allowed",
            Self::NoCommonSuite => "no_common_suite",
            Self::Downgrade => "downgrade",
            Self::AuthenticationFailed => "authentication_failed",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidKey => "invalid_key",
            Self::Replay => "replay",
            Self::OutsideWindow => "outside_window",
            Self::TooManySkipped => "too_many_skipped",
            Self::SessionExpired => "session_expired",
            Self::UnknownPrekey => "unknown_prekey",
            Self::PrekeyExhausted => "prekey_exhausted",
            Self::StalePrekey => "stale_prekey",
            Self::UnknownSender => "unknown_sender",
            Self::RedistributionRequired => "redistribution_required",
            Self::RateLimited => "rate_limited",
            Self::Misdirected => "misdirected",
            Self::WeakParameters => "weak_parameters",
            Self::TooLarge => "too_large",
            Self::Rng => "rng",
        }
    }
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

#[cfg(test)]
mod tests {
    use super::Error;

    /// One value of every variant; the exhaustive match makes this list
    /// fail to compile when a variant is added without being listed.
    fn every_kind() -> [Error; 23] {
        let all = [
            Error::Malformed("x"),
            Error::UnsupportedVersion(9),
            Error::UnsupportedSuite(9),
            Error::SuiteNotAllowed(4),
            Error::NoCommonSuite,
            Error::Downgrade,
            Error::AuthenticationFailed,
            Error::InvalidSignature,
            Error::InvalidKey,
            Error::Replay,
            Error::OutsideWindow,
            Error::TooManySkipped,
            Error::SessionExpired,
            Error::UnknownPrekey,
            Error::PrekeyExhausted,
            Error::StalePrekey,
            Error::UnknownSender,
            Error::RedistributionRequired,
            Error::RateLimited,
            Error::Misdirected,
            Error::WeakParameters,
            Error::TooLarge,
            Error::Rng,
        ];
        for e in &all {
            match e {
                Error::Malformed(_)
                | Error::UnsupportedVersion(_)
                | Error::UnsupportedSuite(_)
                | Error::SuiteNotAllowed(_)
                | Error::NoCommonSuite
                | Error::Downgrade
                | Error::AuthenticationFailed
                | Error::InvalidSignature
                | Error::InvalidKey
                | Error::Replay
                | Error::OutsideWindow
                | Error::TooManySkipped
                | Error::SessionExpired
                | Error::UnknownPrekey
                | Error::PrekeyExhausted
                | Error::StalePrekey
                | Error::UnknownSender
                | Error::RedistributionRequired
                | Error::RateLimited
                | Error::Misdirected
                | Error::WeakParameters
                | Error::TooLarge
                | Error::Rng => {}
            }
        }
        all
    }

    #[test]
    fn every_kind_has_its_own_snake_case_code_independent_of_its_data() {
        let all = every_kind();
        let mut codes: alloc::vec::Vec<&str> = all.iter().map(Error::code).collect();
        for c in &codes {
            assert!(!c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{c}");
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "two kinds share a code");
        assert_eq!(Error::Malformed("a").code(), Error::Malformed("b").code());
        assert_eq!(Error::UnsupportedSuite(1).code(), "unsupported_suite");
    }
}
