//! # sealpost-client
//!
//! The relay's client protocol without any I/O: everything a client needs
//! to talk to a Sealpost relay that is not HTTP or WebSocket itself. An app
//! (or a binding) builds a [`Request`], signs it with [`Request::authorize`]
//! (or [`Request::authorize_session`] for deposits under a relay session),
//! sends it with its own platform's HTTP stack, and hands the answer's
//! status, `Retry-After` header and body to [`parse_response`], which gives
//! a typed reply or a typed [`Error`] (the relay's refusals as
//! [`RelayError`] with an [`ErrorCode`]).
//!
//! The relay (`sealpost-relay`) uses the same crate for the other side:
//! [`Credentials`] and [`SessionCredentials`] parse and check the
//! `Authorization` header, the `decode` functions of the request types
//! check bodies, [`ErrorCode`] gives every refusal its status and code, and
//! the replies' `encode` functions write the JSON a client parses. There is
//! one implementation of each.
//!
//! Time and randomness come from the caller: a request is signed at a
//! timestamp (Unix seconds) with a 16-byte nonce that the caller draws from
//! its operating system's generator.
//!
//! ```
//! use sealpost::Account;
//! use sealpost_client::{Deposited, Request, parse_response};
//! let account = Account::new(&mut sealpost::os_rng(), 1_700_000_000);
//! let signer = account.relay_signer();
//! let request = Request::deposit(&[[7; 32]], b"sealed envelope");
//! let authorization = request.authorize(&signer, 1_700_000_000, &[1; 16]);
//! assert!(authorization.starts_with("Sealpost key="));
//! // ... POST request.body() to request.path_and_query() with that header ...
//! let reply: Deposited = parse_response(201, None, br#"{"ids":[41]}"#).unwrap();
//! assert_eq!(reply.ids, vec![41]);
//! ```

mod auth;
mod codes;
mod error;
mod json;
pub mod mqtt;
mod push;
mod request;
mod response;

pub use auth::{
    Credentials, RelaySession, SCHEME, SESSION_SCHEME, SessionCredentials, session_mac, signed_bytes, ws_auth_query,
};
pub use codes::ErrorCode;
pub use error::{Error, RelayError};
pub use mqtt::{
    MqttEnrolled, MqttRequest, MqttTopics, is_response_topic, mqtt_status, parse_mqtt_response, request_properties,
    request_topic_id, response_properties,
};
pub use push::{PushFrame, ack_frame, acked_frame, decode_ack_frame, error_frame, message_frame, write_message};
pub use request::{
    AckBody, ClaimHandleBody, DepositBody, Method, PrekeysBody, PublishBundleBody, PullQuery, Request,
    VerifyHandleBody, decode_account, encode_account,
};
pub use response::{
    Acked, BundleFetched, BundlePublished, Delivered, Deposited, HandleBound, HandleClaimed, HandleFound, MessagePage,
    PrekeysStored, Reply, SessionOpened, parse_response,
};
