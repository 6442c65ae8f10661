//! Failures as JavaScript errors: [`SealpostError`] becomes a `SealpostError`
//! (its `code` is the core's [`sealpost::Error::code`], the table every
//! binding shares, or one of the bindings' own two codes) and
//! [`RelayError`] a `RelayError` (a refusal carries the relay's code
//! from `sealpost_client::ErrorCode`). The classes are defined in
//! `js/errors.js`, which the package exports for `instanceof`.

use sealpost_client as sc;
use wasm_bindgen::prelude::*;

/// The bindings' code for an unusable argument (the same as uniffi's).
pub(crate) const INVALID_ARGUMENT: &str = "invalid_argument";
/// The bindings' code for an object whose state became unusable.
pub(crate) const INTERNAL: &str = "internal";

#[wasm_bindgen(raw_module = "./errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = sealpostError)]
    fn sealpost_error(code: &str, message: &str) -> JsValue;
    #[wasm_bindgen(js_name = relayError)]
    fn relay_error(kind: &str, code: &str, message: &str, status: Option<u16>, retry_after: Option<f64>) -> JsValue;
}

/// One value of every kind of core error, in the core's order. The native
/// test `every_core_error_kind_is_listed` fails when the core declares a
/// kind that this list lacks.
pub(crate) const EVERY_CORE_ERROR: [sealpost::Error; 23] = {
    use sealpost::Error as E;
    [
        E::Malformed("reported by the app"),
        E::UnsupportedVersion(0),
        E::UnsupportedSuite(0),
        E::SuiteNotAllowed(0),
        E::NoCommonSuite,
        E::Downgrade,
        E::AuthenticationFailed,
        E::InvalidSignature,
        E::InvalidKey,
        E::Replay,
        E::OutsideWindow,
        E::TooManySkipped,
        E::SessionExpired,
        E::UnknownPrekey,
        E::PrekeyExhausted,
        E::StalePrekey,
        E::UnknownSender,
        E::RedistributionRequired,
        E::RateLimited,
        E::Misdirected,
        E::WeakParameters,
        E::TooLarge,
        E::Rng,
    ]
};

/// The core error kind a code names (`None` for the bindings' own codes
/// and for strings that are no code).
pub(crate) fn core_error_of(code: &str) -> Option<sealpost::Error> {
    EVERY_CORE_ERROR.iter().copied().find(|e| e.code() == code)
}

/// Every code a `SealpostError` can carry, in a stable order: each kind of
/// core error through [`SealpostError::code`] (what a thrown error
/// carries), then the bindings' own two.
pub(crate) fn all_codes() -> impl Iterator<Item = &'static str> {
    let core = EVERY_CORE_ERROR.iter().map(|e| SealpostError::Core(*e));
    core.chain([SealpostError::InvalidArgument(""), SealpostError::Internal]).map(|f| f.code())
}

/// A failed call of the protocol API, thrown into JavaScript as a
/// `SealpostError` whose `code` is [`SealpostError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealpostError {
    /// The core refused.
    Core(sealpost::Error),
    /// An argument from the caller is unusable; the text says which.
    InvalidArgument(&'static str),
    /// An object's state is unusable (it is borrowed by a call in
    /// progress, which single-threaded JavaScript cannot normally cause).
    Internal,
}

impl SealpostError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SealpostError::Core(e) => e.code(),
            SealpostError::InvalidArgument(_) => INVALID_ARGUMENT,
            SealpostError::Internal => INTERNAL,
        }
    }

    /// The human-readable message (not for matching on).
    pub fn message(&self) -> String {
        match self {
            SealpostError::Core(e) => e.to_string(),
            SealpostError::InvalidArgument(what) => format!("invalid argument: {what}"),
            SealpostError::Internal => "object state unusable".to_owned(),
        }
    }
}

impl From<sealpost::Error> for SealpostError {
    fn from(e: sealpost::Error) -> Self {
        SealpostError::Core(e)
    }
}

impl From<SealpostError> for JsValue {
    fn from(f: SealpostError) -> Self {
        sealpost_error(f.code(), &f.message())
    }
}

/// A failed relay call, thrown into JavaScript as a `RelayError` with the
/// kind and code of [`RelayError::kind_and_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayError {
    /// From parsing the relay's answer.
    Client(sc::Error),
    /// An argument from the caller is unusable.
    InvalidArgument(&'static str),
    /// A number in the answer that JavaScript cannot represent exactly.
    Unrepresentable(&'static str),
    /// A protocol failure (the randomness for a nonce, a borrowed object).
    Core(SealpostError),
}

impl RelayError {
    /// `(kind, code)`: the kind of failure and the code to match on (the
    /// relay's for a refusal, the core's for an answer that does not
    /// verify, else the kind).
    pub fn kind_and_code(&self) -> (&'static str, &'static str) {
        match self {
            RelayError::Client(sc::Error::Relay(r)) => ("refused", r.code.as_str()),
            RelayError::Client(sc::Error::UnknownErrorCode { .. }) => ("unknown_error_code", "unknown_error_code"),
            RelayError::Client(sc::Error::UnexpectedStatus { .. }) => ("unexpected_status", "unexpected_status"),
            RelayError::Client(sc::Error::Core(e)) => ("core", e.code()),
            RelayError::Client(sc::Error::WrongAccount) => ("wrong_account", "wrong_account"),
            RelayError::Client(_) | RelayError::Unrepresentable(_) => ("malformed", "malformed"),
            RelayError::InvalidArgument(_) | RelayError::Core(SealpostError::InvalidArgument(_)) => {
                ("invalid_argument", INVALID_ARGUMENT)
            }
            RelayError::Core(f) => ("core", f.code()),
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            RelayError::Client(sc::Error::Relay(r)) => Some(r.code.status()),
            RelayError::Client(sc::Error::UnknownErrorCode { status })
            | RelayError::Client(sc::Error::UnexpectedStatus { status }) => Some(*status),
            _ => None,
        }
    }

    fn message(&self) -> String {
        match self {
            RelayError::Client(sc::Error::Relay(r)) => format!("{} {}: {}", r.code.status(), r.code, r.message),
            RelayError::Client(e) => e.to_string(),
            RelayError::InvalidArgument(what) => format!("invalid argument: {what}"),
            RelayError::Unrepresentable(what) => format!("malformed answer: {what} is not a safe integer"),
            RelayError::Core(f) => f.message(),
        }
    }
}

impl From<sc::Error> for RelayError {
    fn from(e: sc::Error) -> Self {
        RelayError::Client(e)
    }
}

impl From<SealpostError> for RelayError {
    fn from(f: SealpostError) -> Self {
        RelayError::Core(f)
    }
}

impl From<RelayError> for JsValue {
    fn from(f: RelayError) -> Self {
        let (kind, code) = f.kind_and_code();
        let retry_after = match &f {
            RelayError::Client(sc::Error::Relay(r)) => r.retry_after.map(crate::js::u64_to_f64),
            _ => None,
        };
        relay_error(kind, code, &f.message(), f.status(), retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_core_error_kind_is_listed() {
        // The core's enum is non_exhaustive, so no match here can prove
        // the list complete; count the variants in the core's source.
        let src = include_str!("../../../core/src/error.rs");
        let body = src.split("pub enum Error {").nth(1).and_then(|s| s.split("\n}").next()).unwrap_or("");
        let declared = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("///") && !l.is_empty() && !l.starts_with("#["))
            .count();
        assert_eq!(declared, EVERY_CORE_ERROR.len(), "core/src/error.rs has a kind missing from EVERY_CORE_ERROR");
    }

    #[test]
    fn every_kind_has_its_own_code_and_codes_name_their_kind() {
        let codes: Vec<&str> = all_codes().collect();
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), codes.len(), "two kinds share a code");
        assert_eq!(codes.len(), 25);
        for e in EVERY_CORE_ERROR {
            assert_eq!(SealpostError::from(e).code(), e.code());
            assert_eq!(core_error_of(e.code()).map(|k| k.code()), Some(e.code()));
        }
        assert_eq!(core_error_of(INVALID_ARGUMENT), None);
        assert_eq!(core_error_of("no such code"), None);
        assert_eq!(SealpostError::InvalidArgument("x").code(), "invalid_argument");
    }

    #[test]
    fn relay_refusals_carry_the_relay_code_and_status() {
        let refused = RelayError::Client(sc::Error::Relay(sc::RelayError::rate_limited(7)));
        assert_eq!(refused.kind_and_code(), ("refused", "rate_limited"));
        assert_eq!(refused.status(), Some(429));
        let core = RelayError::Client(sc::Error::Core(sealpost::Error::InvalidSignature));
        assert_eq!(core.kind_and_code(), ("core", "invalid_signature"));
        let arg = RelayError::Core(SealpostError::InvalidArgument("nonce"));
        assert_eq!(arg.kind_and_code(), ("invalid_argument", "invalid_argument"));
    }
}
