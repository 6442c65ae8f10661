//! The one error type of the bindings, with a stable code per core error.

use sealpost::Error as Core;

/// Everything a Sealpost call can fail with. Each variant is a stable,
/// machine-readable code (the exception subclass in Kotlin, Swift and
/// Python); the message is for logs and may change. One variant per core
/// error kind, plus two of the bindings' own: [`SealpostError::InvalidArgument`]
/// and [`SealpostError::Internal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Error)]
#[uniffi(flat_error)]
pub enum SealpostError {
    /// The bytes do not follow the wire format: drop them.
    Malformed,
    /// A protocol or format version this build does not understand.
    UnsupportedVersion,
    /// A cipher suite id this build does not know.
    UnsupportedSuite,
    /// A known suite that the policy does not allow.
    SuiteNotAllowed,
    /// The two parties share no allowed suite.
    NoCommonSuite,
    /// The negotiated parameters were altered in transit.
    Downgrade,
    /// Decryption failed (altered message, wrong key, diverged state).
    AuthenticationFailed,
    /// A signature did not verify.
    InvalidSignature,
    /// A public key is not acceptable.
    InvalidKey,
    /// The message was already decrypted once.
    Replay,
    /// The message lies outside the window kept for late delivery.
    OutsideWindow,
    /// Too many messages were skipped to accept this one.
    TooManySkipped,
    /// The session was idle too long: start a new one.
    SessionExpired,
    /// The prekey the message names is unknown or already used.
    UnknownPrekey,
    /// The bundle's signed prekey is too old.
    StalePrekey,
    /// A session reset addressed to someone else, or naming another session.
    Misdirected,
    /// The signed prekey's replay memory is full: fetch a newer bundle.
    PrekeyExhausted,
    /// The sender is not a member, or its sender key is not known yet.
    UnknownSender,
    /// Send the group's new sender key to the members first.
    RedistributionRequired,
    /// The same request came again too soon.
    RateLimited,
    /// A parameter is below the safe minimum.
    WeakParameters,
    /// A length exceeds what the format or the policy accepts.
    TooLarge,
    /// The operating system's random number generator failed.
    Rng,
    /// An argument from the caller is unusable (a key of the wrong length,
    /// a session already handed to a room, a clock before 1970).
    InvalidArgument,
    /// An object's state is unusable after an earlier internal failure.
    Internal,
}

impl std::fmt::Display for SealpostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for SealpostError {}

impl SealpostError {
    /// The stable code as a string (`"replay"`, `"authentication_failed"`, …).
    pub fn code(self) -> &'static str {
        ErrorCode::from(self).as_str()
    }
}

/// The codes of [`SealpostError`] as a plain value, for passing a failure
/// back in (to [`crate::Healer::on_decrypt_failure`]) and for storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
#[allow(missing_docs)] // Each is the code of the same-named SealpostError.
pub enum ErrorCode {
    Malformed,
    UnsupportedVersion,
    UnsupportedSuite,
    SuiteNotAllowed,
    NoCommonSuite,
    Downgrade,
    AuthenticationFailed,
    InvalidSignature,
    InvalidKey,
    Replay,
    OutsideWindow,
    TooManySkipped,
    SessionExpired,
    UnknownPrekey,
    StalePrekey,
    Misdirected,
    PrekeyExhausted,
    UnknownSender,
    RedistributionRequired,
    RateLimited,
    WeakParameters,
    TooLarge,
    Rng,
    InvalidArgument,
    Internal,
}

impl ErrorCode {
    /// The stable string form: the core's [`sealpost::Error::code`] for the
    /// core's kinds (the one table of codes, shared with the JavaScript
    /// binding), and the bindings' own two codes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Internal => "internal",
            other => other.to_core().map_or("internal", |e| e.code()),
        }
    }

    /// The core error a code stands for, for the healer (which only acts on
    /// the kinds that suggest diverged state). The bindings' own codes have
    /// no core counterpart.
    pub(crate) fn to_core(self) -> Option<Core> {
        Some(match self {
            Self::Malformed => Core::Malformed("reported by the app"),
            Self::UnsupportedVersion => Core::UnsupportedVersion(0),
            Self::UnsupportedSuite => Core::UnsupportedSuite(0),
            Self::SuiteNotAllowed => Core::SuiteNotAllowed(0),
            Self::NoCommonSuite => Core::NoCommonSuite,
            Self::Downgrade => Core::Downgrade,
            Self::AuthenticationFailed => Core::AuthenticationFailed,
            Self::InvalidSignature => Core::InvalidSignature,
            Self::InvalidKey => Core::InvalidKey,
            Self::Replay => Core::Replay,
            Self::OutsideWindow => Core::OutsideWindow,
            Self::TooManySkipped => Core::TooManySkipped,
            Self::SessionExpired => Core::SessionExpired,
            Self::UnknownPrekey => Core::UnknownPrekey,
            Self::StalePrekey => Core::StalePrekey,
            Self::Misdirected => Core::Misdirected,
            Self::PrekeyExhausted => Core::PrekeyExhausted,
            Self::UnknownSender => Core::UnknownSender,
            Self::RedistributionRequired => Core::RedistributionRequired,
            Self::RateLimited => Core::RateLimited,
            Self::WeakParameters => Core::WeakParameters,
            Self::TooLarge => Core::TooLarge,
            Self::Rng => Core::Rng,
            Self::InvalidArgument | Self::Internal => return None,
        })
    }
}

impl From<SealpostError> for ErrorCode {
    fn from(e: SealpostError) -> Self {
        match e {
            SealpostError::Malformed => Self::Malformed,
            SealpostError::UnsupportedVersion => Self::UnsupportedVersion,
            SealpostError::UnsupportedSuite => Self::UnsupportedSuite,
            SealpostError::SuiteNotAllowed => Self::SuiteNotAllowed,
            SealpostError::NoCommonSuite => Self::NoCommonSuite,
            SealpostError::Downgrade => Self::Downgrade,
            SealpostError::AuthenticationFailed => Self::AuthenticationFailed,
            SealpostError::InvalidSignature => Self::InvalidSignature,
            SealpostError::InvalidKey => Self::InvalidKey,
            SealpostError::Replay => Self::Replay,
            SealpostError::OutsideWindow => Self::OutsideWindow,
            SealpostError::TooManySkipped => Self::TooManySkipped,
            SealpostError::SessionExpired => Self::SessionExpired,
            SealpostError::UnknownPrekey => Self::UnknownPrekey,
            SealpostError::StalePrekey => Self::StalePrekey,
            SealpostError::Misdirected => Self::Misdirected,
            SealpostError::PrekeyExhausted => Self::PrekeyExhausted,
            SealpostError::UnknownSender => Self::UnknownSender,
            SealpostError::RedistributionRequired => Self::RedistributionRequired,
            SealpostError::RateLimited => Self::RateLimited,
            SealpostError::WeakParameters => Self::WeakParameters,
            SealpostError::TooLarge => Self::TooLarge,
            SealpostError::Rng => Self::Rng,
            SealpostError::InvalidArgument => Self::InvalidArgument,
            SealpostError::Internal => Self::Internal,
        }
    }
}

impl From<ErrorCode> for SealpostError {
    fn from(c: ErrorCode) -> Self {
        match c {
            ErrorCode::Malformed => Self::Malformed,
            ErrorCode::UnsupportedVersion => Self::UnsupportedVersion,
            ErrorCode::UnsupportedSuite => Self::UnsupportedSuite,
            ErrorCode::SuiteNotAllowed => Self::SuiteNotAllowed,
            ErrorCode::NoCommonSuite => Self::NoCommonSuite,
            ErrorCode::Downgrade => Self::Downgrade,
            ErrorCode::AuthenticationFailed => Self::AuthenticationFailed,
            ErrorCode::InvalidSignature => Self::InvalidSignature,
            ErrorCode::InvalidKey => Self::InvalidKey,
            ErrorCode::Replay => Self::Replay,
            ErrorCode::OutsideWindow => Self::OutsideWindow,
            ErrorCode::TooManySkipped => Self::TooManySkipped,
            ErrorCode::SessionExpired => Self::SessionExpired,
            ErrorCode::UnknownPrekey => Self::UnknownPrekey,
            ErrorCode::StalePrekey => Self::StalePrekey,
            ErrorCode::Misdirected => Self::Misdirected,
            ErrorCode::PrekeyExhausted => Self::PrekeyExhausted,
            ErrorCode::UnknownSender => Self::UnknownSender,
            ErrorCode::RedistributionRequired => Self::RedistributionRequired,
            ErrorCode::RateLimited => Self::RateLimited,
            ErrorCode::WeakParameters => Self::WeakParameters,
            ErrorCode::TooLarge => Self::TooLarge,
            ErrorCode::Rng => Self::Rng,
            ErrorCode::InvalidArgument => Self::InvalidArgument,
            ErrorCode::Internal => Self::Internal,
        }
    }
}

impl From<Core> for SealpostError {
    fn from(e: Core) -> Self {
        map_core(e)
    }
}

/// The mapping. The core's `#[non_exhaustive]` forces a wildcard arm in
/// any crate but the core; it maps to `Internal`, and the test
/// `every_core_error_has_its_own_code` fails when the core declares a
/// variant that this mapping does not name.
#[allow(unreachable_patterns)]
fn map_core(e: Core) -> SealpostError {
    match e {
        Core::Malformed(_) => SealpostError::Malformed,
        Core::UnsupportedVersion(_) => SealpostError::UnsupportedVersion,
        Core::UnsupportedSuite(_) => SealpostError::UnsupportedSuite,
        Core::SuiteNotAllowed(_) => SealpostError::SuiteNotAllowed,
        Core::NoCommonSuite => SealpostError::NoCommonSuite,
        Core::Downgrade => SealpostError::Downgrade,
        Core::AuthenticationFailed => SealpostError::AuthenticationFailed,
        Core::InvalidSignature => SealpostError::InvalidSignature,
        Core::InvalidKey => SealpostError::InvalidKey,
        Core::Replay => SealpostError::Replay,
        Core::OutsideWindow => SealpostError::OutsideWindow,
        Core::TooManySkipped => SealpostError::TooManySkipped,
        Core::SessionExpired => SealpostError::SessionExpired,
        Core::UnknownPrekey => SealpostError::UnknownPrekey,
        Core::StalePrekey => SealpostError::StalePrekey,
        Core::Misdirected => SealpostError::Misdirected,
        Core::PrekeyExhausted => SealpostError::PrekeyExhausted,
        Core::UnknownSender => SealpostError::UnknownSender,
        Core::RedistributionRequired => SealpostError::RedistributionRequired,
        Core::RateLimited => SealpostError::RateLimited,
        Core::WeakParameters => SealpostError::WeakParameters,
        Core::TooLarge => SealpostError::TooLarge,
        Core::Rng => SealpostError::Rng,
        _ => SealpostError::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// One value of every core error variant. The core enum is
    /// `#[non_exhaustive]`, so no match outside the core can be exhaustive
    /// without a wildcard; instead the test counts the variants in the
    /// core's source and fails when this list (and so the mapping) lacks one.
    fn every_core_error() -> Vec<Core> {
        vec![
            Core::Malformed("x"),
            Core::UnsupportedVersion(9),
            Core::UnsupportedSuite(9),
            Core::SuiteNotAllowed(4),
            Core::NoCommonSuite,
            Core::Downgrade,
            Core::AuthenticationFailed,
            Core::InvalidSignature,
            Core::InvalidKey,
            Core::Replay,
            Core::OutsideWindow,
            Core::TooManySkipped,
            Core::SessionExpired,
            Core::UnknownPrekey,
            Core::StalePrekey,
            Core::Misdirected,
            Core::PrekeyExhausted,
            Core::UnknownSender,
            Core::RedistributionRequired,
            Core::RateLimited,
            Core::WeakParameters,
            Core::TooLarge,
            Core::Rng,
        ]
    }

    #[test]
    fn every_core_error_has_its_own_code() {
        let all = every_core_error();
        let codes: HashSet<&str> = all.iter().map(|e| SealpostError::from(*e).code()).collect();
        assert_eq!(codes.len(), all.len(), "two core errors share a code");
        for e in &all {
            let mapped = SealpostError::from(*e);
            assert_ne!(mapped, SealpostError::Internal, "{e:?} has no code of its own");
            assert_ne!(mapped, SealpostError::InvalidArgument, "{e:?} has no code of its own");
            // The code goes back to the same core kind (what the healer gets).
            let back = ErrorCode::from(mapped).to_core().map(SealpostError::from);
            assert_eq!(back, Some(mapped), "{e:?}");
        }
        // Every variant declared in the core is in the list above.
        let src = include_str!("../../../core/src/error.rs");
        let enum_body = src.split("pub enum Error {").nth(1).and_then(|s| s.split("\n}").next()).unwrap_or("");
        let variants = enum_body
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("///") && !l.is_empty() && !l.starts_with("#["))
            .count();
        assert_eq!(variants, all.len(), "core/src/error.rs has a variant missing from this list");
    }

    #[test]
    fn codes_round_trip_between_the_two_enums() {
        let codes = [
            ErrorCode::Malformed,
            ErrorCode::Replay,
            ErrorCode::AuthenticationFailed,
            ErrorCode::InvalidArgument,
            ErrorCode::Internal,
        ];
        for c in codes {
            assert_eq!(ErrorCode::from(SealpostError::from(c)), c);
        }
        assert_eq!(SealpostError::Replay.code(), "replay");
        // The class names (the variants) spell the same codes.
        for e in every_core_error() {
            let mapped = SealpostError::from(e);
            let mut snake = String::new();
            for (i, ch) in format!("{mapped:?}").chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(ch.to_ascii_lowercase());
            }
            assert_eq!(snake, e.code());
            assert_eq!(mapped.code(), e.code());
        }
        assert_eq!(SealpostError::AuthenticationFailed.to_string(), "authentication_failed");
    }
}
