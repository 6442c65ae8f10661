//! The relay's error codes: each with its HTTP status and its machine code
//! string, declared once here. The relay answers with them and clients
//! parse them back.

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $name:ident = ($code:literal, $status:literal),)*) => {
        /// Every way the relay refuses a request: the JSON body
        /// `{"error":{"code":...,"message":...}}` carries [`ErrorCode::as_str`]
        /// and the response has [`ErrorCode::status`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $name,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The machine-readable code string of the JSON body.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $code,)*
                }
            }

            /// The HTTP status the relay answers with.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$name => $status,)*
                }
            }

            /// The code named by a code string, if it is one of the relay's.
            pub fn from_code(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(ErrorCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// The body is not valid JSON, or has unknown or missing fields.
    BadJson = ("bad_json", 400),
    /// A field is not base64url without padding.
    BadBase64 = ("bad_base64", 400),
    /// An account id is not 32 bytes of base64url.
    BadAccount = ("bad_account", 400),
    /// The published bundle does not verify, or carries a one-time prekey.
    BadBundle = ("bad_bundle", 400),
    /// An uploaded one-time prekey is malformed or not signed by the caller.
    BadPrekeys = ("bad_prekeys", 400),
    /// The recipient list is empty, too long or repeats a recipient.
    BadRecipients = ("bad_recipients", 400),
    /// The envelope is empty.
    BadEnvelope = ("bad_envelope", 400),
    /// The query string of a pull is malformed.
    BadQuery = ("bad_query", 400),
    /// The acknowledged id list is empty or too long.
    BadIds = ("bad_ids", 400),
    /// The handle does not follow the handle syntax.
    BadHandle = ("bad_handle", 400),
    /// The verification code is not six digits.
    BadCode = ("bad_code", 400),
    /// `Content-Length` is not a number.
    BadContentLength = ("bad_content_length", 400),
    /// A POST body is not `application/json`.
    UnsupportedContentType = ("unsupported_content_type", 400),
    /// The request body could not be read.
    BadBody = ("bad_body", 400),
    /// `GET /v1/ws` without a WebSocket upgrade.
    NotWebsocket = ("not_websocket", 400),
    /// An MQTT request without its `method` or `path` user property, or
    /// with an unknown or repeated one.
    BadMqttRequest = ("bad_mqtt_request", 400),
    /// The route needs an `Authorization` header.
    MissingAuthorization = ("missing_authorization", 401),
    /// The `Authorization` header is malformed.
    BadAuthorization = ("bad_authorization", 401),
    /// The request's timestamp is outside the accepted window, or older
    /// than the relay's replay memory: sign it again.
    StaleRequest = ("stale_request", 401),
    /// The request signature does not verify.
    BadSignature = ("bad_signature", 401),
    /// The nonce (or session sequence number) was already used.
    ReplayedRequest = ("replayed_request", 401),
    /// The route needs an identity signature, not a session MAC.
    SignatureRequired = ("signature_required", 401),
    /// The relay session is unknown (for example after a restart): open a
    /// new one.
    UnknownSession = ("unknown_session", 401),
    /// The relay session expired: open a new one.
    SessionExpired = ("session_expired", 401),
    /// The session MAC does not verify.
    BadMac = ("bad_mac", 401),
    /// The caller has not published a bundle.
    NotRegistered = ("not_registered", 403),
    /// The published bundle's identity is not the caller's.
    NotYourBundle = ("not_your_bundle", 403),
    /// The verification code is wrong.
    WrongCode = ("wrong_code", 403),
    /// An MQTT request signed by an account other than the one whose
    /// mailbox it was published through.
    NotYourMailbox = ("not_your_mailbox", 403),
    /// A WebSocket upgrade from a browser page whose origin the relay does
    /// not allow (`cors_allowed_origins`, or the relay's own origin).
    OriginNotAllowed = ("origin_not_allowed", 403),
    /// No route with that path.
    NoSuchRoute = ("no_such_route", 404),
    /// No bundle was published for that account.
    UnknownAccount = ("unknown_account", 404),
    /// No account verified that handle.
    UnknownHandle = ("unknown_handle", 404),
    /// The handle was not claimed by the caller.
    NoClaim = ("no_claim", 404),
    /// `POST /v1/mqtt` on a relay without an MQTT bridge.
    MqttDisabled = ("mqtt_disabled", 404),
    /// The route exists but not with that method.
    MethodNotAllowed = ("method_not_allowed", 405),
    /// The request body came too slowly.
    RequestTimeout = ("request_timeout", 408),
    /// The handle is bound to another account.
    HandleTaken = ("handle_taken", 409),
    /// The verification code expired: claim again.
    CodeExpired = ("code_expired", 410),
    /// The body or the envelope is too large, or the deposit would store
    /// more bytes than one deposit may.
    TooLarge = ("too_large", 413),
    /// A WebSocket version other than 13: the answer names 13 in
    /// `Sec-WebSocket-Version`.
    UnsupportedWebsocketVersion = ("unsupported_websocket_version", 426),
    /// Too many requests: wait `Retry-After` seconds.
    RateLimited = ("rate_limited", 429),
    /// Too many wrong verification codes.
    TooManyAttempts = ("too_many_attempts", 429),
    /// Too many push connections for this account.
    TooManyConnections = ("too_many_connections", 429),
    /// The relay failed (never caused by the request's content).
    Internal = ("internal", 500),
    /// The verification code could not be delivered.
    CodeDeliveryFailed = ("code_delivery_failed", 502),
    /// The relay holds too many sessions right now.
    Busy = ("busy", 503),
    /// The MQTT broker did not take an enrolment (not connected, or it
    /// refused): try again later.
    BrokerUnavailable = ("broker_unavailable", 503),
    /// A recipient's mailbox is full; nothing was stored.
    MailboxFull = ("mailbox_full", 507),
    /// The sender's envelopes that recipients have not yet acknowledged
    /// take its whole storage quota; nothing was stored.
    SenderQuotaExceeded = ("sender_quota_exceeded", 507),
    /// The relay is low on disk space; nothing was stored. Pulls and
    /// acknowledgements still work.
    StorageFull = ("storage_full", 507),
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
