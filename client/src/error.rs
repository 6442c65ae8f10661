//! Errors: [`RelayError`] is a refusal by the relay (what it answers and
//! what a client parses back); [`Error`] is everything parsing an answer
//! can give a client.

use crate::codes::ErrorCode;
use crate::json::{Fields, ObjectWriter, read_object};

/// A refusal by the relay: a code (which fixes the HTTP status), a
/// human-readable message and, for 429, the seconds to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayError {
    /// What went wrong.
    pub code: ErrorCode,
    /// A human-readable explanation (not for matching on).
    pub message: String,
    /// Seconds to wait before retrying (`Retry-After`, 429 only).
    pub retry_after: Option<u64>,
}

impl core::fmt::Display for RelayError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} {}: {}", self.code.status(), self.code, self.message)
    }
}

impl std::error::Error for RelayError {}

impl RelayError {
    /// A refusal with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }

    /// 429 `rate_limited`, retry after `secs` (at least 1).
    pub fn rate_limited(secs: u64) -> Self {
        Self { retry_after: Some(secs.max(1)), ..Self::new(ErrorCode::RateLimited, "too many requests") }
    }

    /// The same refusal with a `Retry-After` value.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The HTTP status ([`ErrorCode::status`]).
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body the relay answers with.
    pub fn encode(&self) -> Vec<u8> {
        let detail = ObjectWriter::new().str("code", self.code.as_str()).str("message", &self.message);
        ObjectWriter::new().object("error", detail).finish()
    }

    /// Parses an error answer: the status, the `Retry-After` header (if
    /// any) and the body. The code must be one of the relay's and match
    /// the status.
    pub fn decode(status: u16, retry_after: Option<&str>, body: &[u8]) -> Result<Self, Error> {
        let (code, message) = read_object(body, Fields::Strict, |o| {
            let mut detail = o.object("error")?;
            let parsed = (detail.string("code")?, detail.string("message")?);
            detail.finish()?;
            Ok(parsed)
        })
        .map_err(|_| Error::UnexpectedStatus { status })?;
        let code = ErrorCode::from_code(&code).ok_or(Error::UnknownErrorCode { status })?;
        if code.status() != status {
            return Err(Error::UnexpectedStatus { status });
        }
        let retry_after = match retry_after {
            None => None,
            Some(v) => Some(v.trim().parse().map_err(|_| Error::Malformed { what: "Retry-After" })?),
        };
        Ok(Self { code, message, retry_after })
    }
}

/// What parsing a relay's answer can give instead of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The relay refused the request.
    Relay(RelayError),
    /// The relay answered with an error code this client does not know
    /// (a newer relay), under this HTTP status.
    UnknownErrorCode {
        /// The HTTP status.
        status: u16,
    },
    /// The status is neither the reply's success status nor a well-formed
    /// error of the relay (a proxy in between, or not a Sealpost relay).
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The body is not what the protocol says: bad JSON, a missing or
    /// unknown field, bad base64, a wrong length. `what` names the part.
    Malformed {
        /// Which reply, field or value.
        what: &'static str,
    },
    /// A key or bundle in the reply does not verify (the core's error).
    Core(sealpost::Error),
    /// The relay served a bundle or identity of another account than the
    /// one asked for.
    WrongAccount,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Relay(e) => write!(f, "the relay refused: {e}"),
            Error::UnknownErrorCode { status } => write!(f, "the relay answered {status} with an unknown error code"),
            Error::UnexpectedStatus { status } => write!(f, "unexpected HTTP status {status}"),
            Error::Malformed { what } => write!(f, "malformed answer: {what}"),
            Error::Core(e) => write!(f, "the answer does not verify: {e}"),
            Error::WrongAccount => f.write_str("the relay answered for another account"),
        }
    }
}

impl std::error::Error for Error {}

impl From<RelayError> for Error {
    fn from(e: RelayError) -> Self {
        Error::Relay(e)
    }
}

impl From<sealpost::Error> for Error {
    fn from(e: sealpost::Error) -> Self {
        Error::Core(e)
    }
}

impl Error {
    /// The relay's error code, if the relay refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Relay(e) => Some(e.code),
            _ => None,
        }
    }
}
