//! Cross-origin access for pages in browsers (docs/RELAY.md section 2,
//! "Browsers"): the relay answers CORS preflights and marks its responses
//! readable for the origins in `cors_allowed_origins`, compared exactly
//! (scheme, host and port), and for no other. The list is empty by default.
//!
//! A page needs CORS for every API call: signed requests carry an
//! `Authorization` header and POST bodies are `application/json`, neither of
//! which a browser sends cross-origin without asking first. WebSocket
//! upgrades are not subject to CORS; [`Cors::allows_websocket`] applies the
//! same list to the `Origin` a browser sends with them.

use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, HOST, HeaderMap, HeaderValue,
    ORIGIN, VARY,
};
use hyper::{Method, StatusCode};

use crate::api::Resp;

/// The request headers a page may send: the signature and the JSON body's type.
const ALLOW_HEADERS: &str = "authorization, content-type";
/// The methods of the API.
const ALLOW_METHODS: &str = "GET, POST";
/// Response headers a page may read beyond the CORS-safelisted ones.
const EXPOSE_HEADERS: &str = "retry-after, allow";
/// Seconds a browser may cache a preflight answer.
const MAX_AGE: &str = "600";
/// What a preflight answer varies with.
const PREFLIGHT_VARY: &str = "origin, access-control-request-method, access-control-request-headers";

/// The origins whose pages may call the relay.
#[derive(Debug, Default)]
pub(crate) struct Cors {
    allowed: Vec<String>,
}

impl Cors {
    /// A policy allowing exactly `origins` (as checked by [`check_origin`]).
    pub(crate) fn new(origins: &[String]) -> Self {
        Self { allowed: origins.to_vec() }
    }

    /// Whether `origin` is one of the allowed origins.
    fn allows(&self, origin: &HeaderValue) -> bool {
        origin.to_str().is_ok_and(|text| self.allowed.iter().any(|a| a == text))
    }

    /// Whether `req` is a CORS preflight: `OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`.
    pub(crate) fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS && headers.contains_key(ORIGIN) && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight from an allowed origin (204 with the
    /// methods and headers the API uses), or `None` for any other origin:
    /// the request is then routed like any other and gets no CORS headers.
    pub(crate) fn preflight(&self, headers: &HeaderMap) -> Option<Resp> {
        let origin = headers.get(ORIGIN).filter(|o| self.allows(o))?.clone();
        let mut resp = Resp::new(crate::inflight::Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        h.insert(VARY, HeaderValue::from_static(PREFLIGHT_VARY));
        Some(resp)
    }

    /// Marks a response to a request from an allowed origin as readable by
    /// that origin. While any origin is allowed, every response varies
    /// with `Origin` (so that caches keep the answers apart).
    pub(crate) fn decorate(&self, origin: Option<HeaderValue>, resp: &mut Resp) {
        if self.allowed.is_empty() || resp.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
            return;
        }
        let h = resp.headers_mut();
        h.append(VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = origin.filter(|o| self.allows(o)) {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
        }
    }

    /// Whether a WebSocket upgrade may proceed: no `Origin` (not a browser),
    /// an allowed origin, or the relay's own origin (a page it serves: the
    /// origin's host and port are the request's `Host`).
    pub(crate) fn allows_websocket(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(ORIGIN) else { return true };
        if self.allows(origin) {
            return true;
        }
        let (Some(origin), Some(host)) = (origin.to_str().ok(), headers.get(HOST).and_then(|h| h.to_str().ok())) else {
            return false;
        };
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
    }
}

/// Checks that `origin` is written as browsers send it: `http://` or
/// `https://`, a host, an optional port, and nothing else (no path, no
/// trailing slash), so that an exact comparison can match.
pub(crate) fn check_origin(origin: &str) -> Result<(), &'static str> {
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("it must start with http:// or https://")?;
    // An IPv6 literal is bracketed; a port follows the last colon outside it.
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']').ok_or("an IPv6 address needs its closing bracket")?;
            if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
                return Err("the IPv6 address is malformed");
            }
            (None, after.strip_prefix(':').map(Some).unwrap_or(if after.is_empty() { None } else { Some("") }))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(authority), None),
        },
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err())
    {
        return Err("its port must be a number from 0 to 65535");
    }
    if let Some(host) = host
        && (host.is_empty()
            || !host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-')))
    {
        return Err("it must be scheme://host[:port] in lower case, without a path or a trailing slash");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_for_the_form_browsers_send() {
        for good in ["https://chat.example", "http://127.0.0.1:8080", "https://a-b.example:443", "http://[::1]:3000"] {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for bad in [
            "chat.example",
            "https://chat.example/",
            "https://chat.example/app",
            "https://Chat.example",
            "*",
            "https://",
            "http://x:",
            "http://x:99999",
            "ftp://x",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn websocket_origin_must_be_allowed_or_the_relays_own() {
        let cors = Cors::new(&["https://chat.example".to_owned()]);
        let headers = |origin: Option<&str>, host: &str| {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_str(host).unwrap());
            if let Some(o) = origin {
                h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        assert!(cors.allows_websocket(&headers(None, "relay.example")));
        assert!(cors.allows_websocket(&headers(Some("https://chat.example"), "relay.example")));
        assert!(cors.allows_websocket(&headers(Some("http://relay.example:8080"), "relay.example:8080")));
        assert!(!cors.allows_websocket(&headers(Some("https://evil.example"), "relay.example")));
        assert!(!cors.allows_websocket(&headers(Some("https://chat.example.evil"), "relay.example")));
        assert!(!cors.allows_websocket(&headers(Some("null"), "relay.example")));
    }
}
