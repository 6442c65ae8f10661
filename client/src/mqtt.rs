//! The relay's API over MQTT 5 (docs/RELAY.md, section 14): the same signed
//! requests and JSON bodies as over HTTP, framed in MQTT properties.
//!
//! A request is a PUBLISH to the mailbox's request topic whose payload is
//! the HTTP body and whose user properties carry the method, the path and
//! query and the `Authorization` value; its response topic (inside the
//! mailbox's own response prefix) and correlation data bring the answer
//! back, a PUBLISH whose payload is the HTTP answer's body and whose user
//! properties carry its status and `Retry-After`. New envelopes arrive on
//! the mailbox topic as the WebSocket's `message` frames ([`crate::PushFrame`]).

use zeroize::Zeroizing;

use crate::codes::ErrorCode;
use crate::error::{Error, RelayError};
use crate::json::{Fields, ObjectWriter, read_object};
use crate::request::{Method, Request};
use crate::response::{Reply, parse_response};

/// User property of a request: the HTTP method (`GET` or `POST`).
pub const METHOD_PROPERTY: &str = "method";
/// User property of a request: the path and query, exactly as signed.
pub const PATH_PROPERTY: &str = "path";
/// User property of a request: the `Authorization` value.
pub const AUTHORIZATION_PROPERTY: &str = "authorization";
/// User property of a response: the HTTP status, decimal.
pub const STATUS_PROPERTY: &str = "status";
/// User property of a response: the `Retry-After` seconds, when the relay
/// asks the client to wait.
pub const RETRY_AFTER_PROPERTY: &str = "retry-after";
/// The content type of every payload that has a body.
pub const CONTENT_TYPE: &str = "application/json";
/// Longest accepted correlation data, in bytes.
pub const MAX_CORRELATION_BYTES: usize = 64;

/// The topics of one mailbox under a relay's topic prefix. Its id is
/// random, drawn by the relay when the account enrols: a topic does not
/// reveal whose mailbox it is, and the broker lets only that mailbox's
/// MQTT client use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTopics {
    /// Where the relay publishes new envelopes (QoS 1); subscribe to it.
    pub mailbox: String,
    /// Where the client publishes its requests.
    pub requests: String,
    /// The prefix of the response topics the client may use and
    /// subscribe to (`<prefix>/a/<id>/`, subscribe with `#` after it).
    pub responses: String,
}

impl MqttTopics {
    /// The topics of mailbox `id` under `prefix` (both without slashes at
    /// the ends).
    pub fn new(prefix: &str, id: &str) -> Self {
        Self {
            mailbox: format!("{prefix}/m/{id}"),
            requests: format!("{prefix}/r/{id}"),
            responses: format!("{prefix}/a/{id}/"),
        }
    }

    /// A response topic of this mailbox, `tag` being any name the client
    /// picks (one per connection, say).
    pub fn response_topic(&self, tag: &str) -> String {
        format!("{}{tag}", self.responses)
    }

    /// The subscription filter that covers every response topic.
    pub fn response_filter(&self) -> String {
        format!("{}#", self.responses)
    }
}

/// The mailbox id named by a request topic of `prefix`, if it is one:
/// `<prefix>/r/<id>` with an id of letters, digits, `-` and `_`.
pub fn request_topic_id<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    let id = topic.strip_prefix(prefix)?.strip_prefix("/r/")?;
    valid_id(id).then_some(id)
}

/// Whether `response_topic` is one of mailbox `id`'s response topics under
/// `prefix`: `<prefix>/a/<id>/<tag>` with a non-empty tag and no wildcard.
/// The relay answers nowhere else.
pub fn is_response_topic(prefix: &str, id: &str, response_topic: &str) -> bool {
    let tag = response_topic.strip_prefix(prefix).and_then(|t| t.strip_prefix("/a/")).and_then(|t| t.strip_prefix(id));
    match tag.and_then(|t| t.strip_prefix('/')) {
        Some(tag) => !tag.is_empty() && !tag.contains(['+', '#', '\0']),
        None => false,
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The user properties of `request` signed with `authorization` (the
/// value [`Request::authorize`] gave). Publish them with the body as the
/// payload, [`CONTENT_TYPE`] on POST, a response topic and correlation data.
pub fn request_properties(request: &Request, authorization: &str) -> Vec<(String, String)> {
    vec![
        (METHOD_PROPERTY.to_owned(), request.method().as_str().to_owned()),
        (PATH_PROPERTY.to_owned(), request.path_and_query().to_owned()),
        (AUTHORIZATION_PROPERTY.to_owned(), authorization.to_owned()),
    ]
}

/// A request as the relay reads it from the user properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttRequest {
    /// The method.
    pub method: Method,
    /// The path and query, as signed.
    pub path_and_query: String,
    /// The `Authorization` value, if the request has one.
    pub authorization: Option<String>,
}

impl MqttRequest {
    /// Reads the request's user properties: `method` and `path` exactly
    /// once each, `authorization` at most once, nothing else
    /// (`bad_mqtt_request` otherwise).
    pub fn from_properties(properties: &[(String, String)]) -> Result<Self, RelayError> {
        let (mut method, mut path, mut authorization) = (None, None, None);
        for (name, value) in properties {
            let slot = match name.as_str() {
                METHOD_PROPERTY => &mut method,
                PATH_PROPERTY => &mut path,
                AUTHORIZATION_PROPERTY => &mut authorization,
                other => return Err(bad(format!("unknown user property {other:?}"))),
            };
            if slot.replace(value.clone()).is_some() {
                return Err(bad(format!("user property {name:?} appears twice")));
            }
        }
        let method = match method.as_deref() {
            Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            Some(other) => return Err(bad(format!("method {other:?} is neither GET nor POST"))),
            None => return Err(bad("the user property \"method\" is missing".to_owned())),
        };
        let path_and_query = path.ok_or_else(|| bad("the user property \"path\" is missing".to_owned()))?;
        if !path_and_query.starts_with('/') {
            return Err(bad("the path must start with /".to_owned()));
        }
        Ok(Self { method, path_and_query, authorization })
    }
}

fn bad(message: String) -> RelayError {
    RelayError::new(ErrorCode::BadMqttRequest, message)
}

/// The user properties of an answer with `status` (and `Retry-After`).
pub fn response_properties(status: u16, retry_after: Option<u64>) -> Vec<(String, String)> {
    let mut properties = vec![(STATUS_PROPERTY.to_owned(), status.to_string())];
    if let Some(secs) = retry_after {
        properties.push((RETRY_AFTER_PROPERTY.to_owned(), secs.to_string()));
    }
    properties
}

/// The status and `Retry-After` value of an answer received over MQTT,
/// from its user properties: what [`parse_response`] takes besides the
/// body (for a caller that parses answers of either transport alike).
pub fn mqtt_status(properties: &[(String, String)]) -> Result<(u16, Option<&str>), Error> {
    let find = |name: &str| properties.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let status = find(STATUS_PROPERTY)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(Error::Malformed { what: "status user property" })?;
    Ok((status, find(RETRY_AFTER_PROPERTY)))
}

/// Parses an answer received over MQTT, like [`parse_response`]: its
/// user properties give the status and `Retry-After` ([`mqtt_status`]).
pub fn parse_mqtt_response<T: Reply>(properties: &[(String, String)], payload: &[u8]) -> Result<T, Error> {
    let (status, retry_after) = mqtt_status(properties)?;
    parse_response(status, retry_after, payload)
}

impl Request {
    /// `POST /v1/mqtt`: enrol the caller's mailbox for MQTT. The answer
    /// ([`MqttEnrolled`]) names its topics and broker credentials; asking
    /// again gives a new password and keeps the topics.
    pub fn enrol_mqtt() -> Self {
        Request::custom(Method::Post, "/v1/mqtt", b"{}".to_vec())
    }
}

/// `POST /v1/mqtt`: the mailbox's MQTT client on the broker.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttEnrolled {
    /// The broker username.
    pub username: String,
    password: Zeroizing<String>,
    /// The client id the broker accepts for this username (a persistent
    /// session keeps QoS 1 envelopes while the device is away).
    pub client_id: String,
    /// The mailbox's topics.
    pub topics: MqttTopics,
}

impl core::fmt::Debug for MqttEnrolled {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MqttEnrolled")
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl MqttEnrolled {
    /// A reply (the relay's side).
    pub fn new(username: String, password: String, client_id: String, topics: MqttTopics) -> Self {
        Self { username, password: Zeroizing::new(password), client_id, topics }
    }

    /// The broker password (a secret: connect with it, keep it like a key).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The JSON body.
    pub fn encode(&self) -> Vec<u8> {
        // The writer's buffer holds the password while it grows: reserve
        // enough up front that it is never reallocated (which would leave
        // a copy behind), and hand the result over as is.
        let t = &self.topics;
        let fields =
            [self.username.as_str(), self.password.as_str(), &self.client_id, &t.mailbox, &t.requests, &t.responses];
        // At most six bytes per byte escaped, plus the keys and punctuation.
        let size = fields.iter().map(|s| s.len().saturating_mul(6)).fold(128, usize::saturating_add);
        ObjectWriter::with_capacity(size)
            .str("username", &self.username)
            .str("password", &self.password)
            .str("client_id", &self.client_id)
            .str("mailbox", &self.topics.mailbox)
            .str("requests", &self.topics.requests)
            .str("responses", &self.topics.responses)
            .finish()
    }
}

impl Reply for MqttEnrolled {
    const STATUS: u16 = 200;
    fn decode(body: &[u8]) -> Result<Self, Error> {
        let enrolled = read_object(body, Fields::Strict, |o| {
            Ok(Self {
                username: o.string("username")?,
                password: Zeroizing::new(o.string("password")?),
                client_id: o.string("client_id")?,
                topics: MqttTopics {
                    mailbox: o.string("mailbox")?,
                    requests: o.string("requests")?,
                    responses: o.string("responses")?,
                },
            })
        });
        enrolled.map_err(|_| Error::Malformed { what: "mqtt reply" })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn request_properties_round_trip() {
        let request = Request::pull(5, 10);
        let parsed = MqttRequest::from_properties(&request_properties(&request, "Sealpost key=x")).unwrap();
        assert_eq!(parsed.method, Method::Get);
        assert_eq!(parsed.path_and_query, request.path_and_query());
        assert_eq!(parsed.authorization.as_deref(), Some("Sealpost key=x"));
    }

    #[test]
    fn bad_request_properties_are_refused() {
        let cases: &[&[(&str, &str)]] = &[
            &[("path", "/v1/messages")],
            &[("method", "GET")],
            &[("method", "PUT"), ("path", "/v1/messages")],
            &[("method", "GET"), ("path", "v1/messages")],
            &[("method", "GET"), ("path", "/a"), ("path", "/b")],
            &[("method", "GET"), ("path", "/a"), ("x", "y")],
        ];
        for case in cases {
            let e = MqttRequest::from_properties(&props(case)).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadMqttRequest, "{case:?}");
        }
    }

    #[test]
    fn topics_and_their_checks() {
        let t = MqttTopics::new("sealpost", "abc_9");
        assert_eq!(t.mailbox, "sealpost/m/abc_9");
        assert_eq!(request_topic_id("sealpost", &t.requests), Some("abc_9"));
        assert_eq!(request_topic_id("sealpost", "sealpost/r/a/b"), None);
        assert_eq!(request_topic_id("sealpost", "sealpost/r/"), None);
        assert_eq!(request_topic_id("sealpost", "other/r/abc"), None);
        assert!(is_response_topic("sealpost", "abc_9", &t.response_topic("phone")));
        assert!(!is_response_topic("sealpost", "abc_9", &t.responses));
        assert!(!is_response_topic("sealpost", "abc_9", "sealpost/a/abc_90/x"));
        assert!(!is_response_topic("sealpost", "abc_9", "sealpost/a/abc_9/+"));
        assert!(!is_response_topic("sealpost", "abc_9", "sealpost/m/abc_9"));
    }

    #[test]
    fn responses_parse_with_their_status() {
        let deposited: crate::Deposited =
            parse_mqtt_response(&response_properties(201, None), br#"{"ids":[3]}"#).unwrap();
        assert_eq!(deposited.ids, vec![3]);
        let e = RelayError::rate_limited(7);
        let parsed = parse_mqtt_response::<crate::Deposited>(&response_properties(429, Some(7)), &e.encode());
        match parsed {
            Err(Error::Relay(r)) => {
                assert_eq!(r.code, ErrorCode::RateLimited);
                assert_eq!(r.retry_after, Some(7));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_mqtt_response::<crate::Deposited>(&[], b"{}"), Err(Error::Malformed { .. })));
    }

    #[test]
    fn enrolment_round_trips_and_hides_the_password() {
        let e = MqttEnrolled::new("sp-a".into(), "secret-pw".into(), "sp-a".into(), MqttTopics::new("p", "a"));
        let back = MqttEnrolled::decode(&e.encode()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.password(), "secret-pw");
        assert!(!format!("{back:?}").contains("secret-pw"));
    }
}
