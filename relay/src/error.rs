//! The relay's errors. [`Error`] is the crate's: why the relay could not
//! start, serve or stop (bad settings, files, TLS, storage, a code that
//! could not be delivered, a push connection that failed). A refused
//! request is a [`sealpost_client::RelayError`] whose [`ErrorCode`] fixes
//! the HTTP status and the machine code (declared once, in
//! `sealpost-client`, which clients parse them with), answered as
//! `{"error": {"code": "...", "message": "..."}}`.

use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};

pub(crate) use sealpost_client::{ErrorCode, RelayError as ApiError};

/// Why the relay could not start, serve or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid (the binary exits with status 2).
    #[error("{0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file or address.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded, or do not match.
    #[error("TLS: {what}: {fault}")]
    Tls {
        /// The file or files concerned.
        what: String,
        /// What was wrong with them.
        #[source]
        fault: TlsFault,
    },
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A verification code could not be delivered.
    #[error("code delivery: {0}")]
    CodeDelivery(#[source] CodeDeliveryFault),
    /// A push connection failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// A push client did not read a frame within `ws_send_timeout_secs`.
    #[error("websocket: send timed out: the client does not read")]
    PushTimeout,
    /// The relay's task ended abnormally (it panicked or was cancelled).
    #[error("relay task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why TLS files could not be used ([`Error::Tls`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFault {
    /// A file could not be read or is not PEM.
    #[error("{0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// The certificate file holds no certificate.
    #[error("it holds no PEM certificate")]
    NoCertificate,
    /// The private key does not belong to the certificate.
    #[error("the key does not fit the certificate: {0}")]
    KeyMismatch(#[source] rustls::Error),
    /// rustls refused the certificate, the key or the protocol versions.
    #[error("{0}")]
    Rustls(#[source] rustls::Error),
}

/// Why a verification code could not be delivered ([`Error::CodeDelivery`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodeDeliveryFault {
    /// The webhook request could not be built.
    #[error("building the webhook request: {0}")]
    Request(#[source] hyper::http::Error),
    /// The webhook did not answer within 10 seconds.
    #[error("the webhook timed out")]
    Timeout,
    /// The connection to the webhook failed.
    #[error("webhook: {0}")]
    Connection(#[source] hyper_util::client::legacy::Error),
    /// The webhook answered with a status other than 2xx.
    #[error("the webhook answered {0}")]
    Status(StatusCode),
}

impl Error {
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }

    /// Whether the settings were at fault (exit status 2).
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config(_))
    }
}

/// 500 (never for bad input). The detail is logged, not sent.
pub(crate) fn internal(detail: impl std::fmt::Display) -> ApiError {
    tracing::error!(%detail, "internal error");
    ApiError::new(ErrorCode::Internal, "internal error")
}

/// The HTTP status of a code.
pub(crate) fn status(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The JSON response of an error.
pub(crate) fn into_response(e: &ApiError) -> crate::api::Resp {
    let mut resp = Response::new(crate::inflight::Body::new(e.encode()));
    *resp.status_mut() = status(e.code);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
    resp
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::MailboxFull(who) => {
                ApiError::new(ErrorCode::MailboxFull, format!("the mailbox of {who} is full; nothing was stored"))
            }
            StoreError::UnknownAccount(who) => {
                ApiError::new(ErrorCode::UnknownAccount, format!("no account {who} has published a bundle"))
            }
            StoreError::RetryLater(secs) => ApiError::rate_limited(secs).with_retry_after(secs),
            StoreError::SenderQuota(held, quota) => ApiError::new(
                ErrorCode::SenderQuotaExceeded,
                format!(
                    "your envelopes not yet acknowledged take {held} of your {quota} bytes; nothing was stored \
                     (space comes back as recipients acknowledge, or envelopes expire)"
                ),
            ),
            StoreError::HandleTaken => ApiError::new(ErrorCode::HandleTaken, "the handle is bound to another account"),
            StoreError::Internal(detail) => internal(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn every_code_is_answered_with_its_status_and_parses_back() {
        for &code in ErrorCode::ALL {
            let sent = ApiError::new(code, "m");
            let resp = into_response(&sent);
            assert_eq!(resp.status().as_u16(), code.status(), "{code}");
            assert_eq!(resp.headers().get(CONTENT_TYPE).unwrap(), "application/json");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(ApiError::decode(code.status(), None, &body).unwrap(), sent);
        }
        let limited = into_response(&ApiError::rate_limited(0));
        assert_eq!(
            (limited.status().as_u16(), limited.headers().get(RETRY_AFTER).unwrap().to_str().unwrap()),
            (429, "1")
        );
    }
}
