//! The HTTP API, version 1 (`docs/RELAY.md` describes it for clients).
//!
//! Every handler checks its input fully before touching storage: wrong
//! content types, bad JSON, unknown fields and bad base64 are 400; bodies
//! over the limit are 413 before they are read; failed authentication is
//! 401; a full mailbox is 507; rate limits are 429 with `Retry-After`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use sealpost_client::{
    AckBody, Acked, BundleFetched, BundlePublished, ClaimHandleBody, Credentials, Delivered, DepositBody, Deposited,
    HandleBound, HandleClaimed, HandleFound, MessagePage, PrekeysBody, PrekeysStored, PublishBundleBody, PullQuery,
    Reply, SESSION_SCHEME, SessionOpened, VerifyHandleBody, decode_account,
};
use serde::de::DeserializeOwned;

use crate::auth::{NonceCache, Sessions};
use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::handles::{CodeSink, code_hash, generate_code, normalize_handle};
use crate::hub::Hub;
use crate::inflight::{Body, InFlight};
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::store::{
    AccountId, Charge, DepositLimits, HandleCheck, HandleLimits, REFERENCE_BYTES, SharedSession, Stats, Store,
    stored_cost,
};

/// How long the public pages reuse one reading of the store's counts.
const STATS_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a relay session lasts.
pub(crate) const SESSION_TTL: u64 = 3600;

/// The response type of every route.
pub(crate) type Resp = Response<Body>;

/// Everything a request handler needs.
pub(crate) struct Relay {
    /// Settings.
    pub config: Config,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Nonces of recent signed requests.
    pub nonces: NonceCache,
    /// Relay sessions (MAC-authenticated deposits).
    pub sessions: Sessions,
    /// Per-account rate limit.
    pub account_limits: RateLimiter<AccountId>,
    /// Per-address rate limit.
    pub ip_limits: RateLimiter<IpAddr>,
    /// Bytes written to the store per address.
    pub write_limits: RateLimiter<IpAddr>,
    /// Requests and pulls in flight per address.
    pub in_flight: Arc<InFlight>,
    /// Connected WebSocket clients.
    pub hub: Hub,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// The last hour of the dashboard's samples.
    pub history: crate::status::History,
    /// The store's counts and when they were read ([`Relay::stats`]).
    stats: tokio::sync::Mutex<Option<(Instant, Stats)>>,
    /// Where handle verification codes go.
    pub codes: Arc<dyn CodeSink>,
    /// When the relay started.
    pub started: Instant,
    /// Which browser origins may call the relay.
    pub cors: crate::cors::Cors,
    /// The static directory, if one is served.
    pub files: Option<crate::files::StaticFiles>,
    /// The clock every time in seconds comes from.
    pub clock: crate::clock::Clock,
    /// Refuses writes that grow the store when the disk runs low.
    pub disk: crate::disk::DiskGuard,
    /// The MQTT bridge, when `mqtt_url` is set.
    pub mqtt: std::sync::OnceLock<Arc<crate::mqtt::Bridge>>,
}

impl Relay {
    /// Builds the relay state around an opened store.
    pub(crate) fn new(
        config: Config,
        store: Arc<dyn Store>,
        codes: Arc<dyn CodeSink>,
        files: Option<crate::files::StaticFiles>,
        clock: crate::clock::Clock,
    ) -> Self {
        Self {
            // The guard watches the data directory's disk, where SQLite
            // writes; PostgreSQL's disk is the database server's.
            disk: crate::disk::DiskGuard::new(
                config.data_dir.clone(),
                if store.shared() { 0 } else { config.min_free_disk_bytes },
            ),
            cors: crate::cors::Cors::new(&config.cors_allowed_origins),
            files,
            nonces: NonceCache::new(
                config.max_nonces_per_account,
                config.max_nonces,
                config.max_clock_skew_secs,
                clock.now(),
            ),
            account_limits: RateLimiter::new(config.rate_account_per_sec, config.rate_account_burst),
            ip_limits: RateLimiter::new(config.rate_ip_per_sec, config.rate_ip_burst),
            write_limits: RateLimiter::new(config.rate_ip_write_bytes_per_sec, config.rate_ip_write_bytes_burst),
            history: crate::status::History::new(config.status_sample_secs, clock.now()),
            stats: tokio::sync::Mutex::new(None),
            in_flight: InFlight::new(config.max_requests_in_flight_per_address, config.max_pulls_in_flight_per_address),
            config,
            store,
            sessions: Sessions::default(),
            hub: Hub::default(),
            metrics: Metrics::default(),
            codes,
            started: Instant::now(),
            clock,
            mqtt: std::sync::OnceLock::new(),
        }
    }

    /// The store's counts for the public pages (`/metrics`, `/`,
    /// `/status.json`): read at most once a second, one reading at a time,
    /// because counting is a scan of the tables (on PostgreSQL, of every
    /// row) and those pages need no authentication.
    pub(crate) async fn stats(&self) -> Result<Stats, ApiError> {
        let mut cached = self.stats.lock().await;
        if let Some((at, stats)) = *cached
            && at.elapsed() < STATS_FRESH
        {
            return Ok(stats);
        }
        let stats = self.store.stats().await?;
        *cached = Some((Instant::now(), stats));
        Ok(stats)
    }

    /// The store's counts read now (they also serve [`Relay::stats`]).
    pub(crate) async fn fresh_stats(&self) -> Result<Stats, ApiError> {
        let mut cached = self.stats.lock().await;
        let stats = self.store.stats().await?;
        *cached = Some((Instant::now(), stats));
        Ok(stats)
    }

    /// The largest request body accepted: a base64 envelope of the maximum
    /// size plus room for the recipient list.
    pub(crate) fn body_limit(&self) -> usize {
        body_limit(&self.config)
    }
}

/// [`Relay::body_limit`] from the settings alone (the MQTT bridge sizes
/// its packets by it before the relay exists).
pub(crate) fn body_limit(config: &Config) -> usize {
    config
        .max_envelope_bytes
        .div_ceil(3)
        .saturating_mul(4)
        .saturating_add(config.max_recipients.saturating_mul(48))
        .saturating_add(4096)
}

/// A request after routing and body reading.
pub(crate) struct Call {
    method: Method,
    path_and_query: String,
    body: Bytes,
    auth: Option<String>,
    /// The client's address.
    peer: IpAddr,
    /// Over MQTT, the account whose mailbox the request came through: the
    /// only one that may sign it.
    owner: Option<AccountId>,
}

impl Call {
    /// A request that came over MQTT (from the synthetic address `peer`).
    pub(crate) fn new(request: sealpost_client::MqttRequest, body: Bytes, peer: IpAddr, owner: AccountId) -> Self {
        let method = match request.method {
            sealpost_client::Method::Get => Method::GET,
            sealpost_client::Method::Post => Method::POST,
        };
        Call {
            method,
            path_and_query: request.path_and_query,
            body,
            auth: request.authorization,
            peer,
            owner: Some(owner),
        }
    }
}

/// Answers one request that came over MQTT, like [`handle`] does one over
/// HTTP: the same limits, routes, checks and handlers ([`answer`]). Only
/// the API's `/v1/` routes exist here, without the WebSocket.
pub(crate) async fn handle_mqtt(relay: &Arc<Relay>, call: Call) -> Resp {
    let start = Instant::now();
    let path = call.path_and_query.split_once('?').map_or(call.path_and_query.as_str(), |(p, _)| p).to_owned();
    let route = route_name(&call.method, &path);
    let peer = call.peer;
    let resp = match relay.in_flight.request(peer) {
        None => Err(in_flight_error("requests")),
        Some(_place) => {
            let checked = async {
                relay.ip_limits.check(&peer).map_err(ApiError::rate_limited)?;
                let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                if segs.first() != Some(&"v1") || segs.as_slice() == ["v1", "ws"] {
                    return Err(ApiError::new(ErrorCode::NoSuchRoute, format!("no route {path} over MQTT")));
                }
                check_method(&call.method, &path, &segs)?;
                // In HTTP's order: the disk, then the body's size.
                if grows_store(&call.method, &segs) {
                    relay.disk.check()?;
                }
                if call.body.len() > relay.body_limit() {
                    let limit = relay.body_limit();
                    return Err(ApiError::new(
                        ErrorCode::TooLarge,
                        format!("request bodies are limited to {limit} bytes"),
                    ));
                }
                answer(relay, call).await
            };
            checked.await
        }
    };
    let resp = resp.unwrap_or_else(|e| crate::error::into_response(&e));
    relay.metrics.record(route, resp.status().as_u16(), start.elapsed());
    resp
}

/// The methods of a route, or `no_such_route`; `method_not_allowed` for
/// another method.
fn allowed_methods(path: &str, segs: &[&str]) -> Result<&'static [Method], ApiError> {
    Ok(match segs {
        ["v1", "keys", "bundle"]
        | ["v1", "keys", "one-time"]
        | ["v1", "messages", "ack"]
        | ["v1", "sessions"]
        | ["v1", "mqtt"] => &[Method::POST],
        ["v1", "handles", "claim"] | ["v1", "handles", "verify"] => &[Method::POST],
        ["v1", "messages"] => &[Method::GET, Method::POST],
        ["v1", "keys", _] | ["v1", "handles", _] => &[Method::GET],
        [""] | ["healthz"] | ["metrics"] | ["status.json" | "status.css" | "status.js"] | ["v1", "ws"] => {
            &[Method::GET]
        }
        _ => return Err(ApiError::new(ErrorCode::NoSuchRoute, format!("no route {path}"))),
    })
}

/// [`allowed_methods`] for an MQTT request (no `Allow` header to give).
fn check_method(method: &Method, path: &str, segs: &[&str]) -> Result<(), ApiError> {
    if allowed_methods(path, segs)?.contains(method) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::MethodNotAllowed, format!("{method} {path}")))
    }
}

/// Whether a request writes something that grows the store (it waits for
/// free disk, before its body is read).
fn grows_store(method: &Method, segs: &[&str]) -> bool {
    method == Method::POST && matches!(segs, ["v1", "messages"] | ["v1", "keys", _] | ["v1", "handles", "claim"])
}

/// Answers one request. Never panics on input; every failure is a JSON error.
pub(crate) async fn handle(relay: Arc<Relay>, req: Request<Incoming>, peer: IpAddr) -> Resp {
    let start = Instant::now();
    let route = route_name(req.method(), req.uri().path());
    let origin = req.headers().get(hyper::header::ORIGIN).cloned();
    // The place is held until the client has taken the response.
    let mut resp = match relay.in_flight.request(peer) {
        None => crate::error::into_response(&in_flight_error("requests")),
        Some(place) => {
            let mut resp = match dispatch(&relay, req, peer).await {
                Ok(r) => r,
                Err(e) => crate::error::into_response(&e),
            };
            resp.body_mut().hold(place);
            resp
        }
    };
    relay.cors.decorate(origin, &mut resp);
    relay.metrics.record(route, resp.status().as_u16(), start.elapsed());
    resp
}

/// 429 for an address holding all its places of one kind: retry once one
/// of its responses has been read.
fn in_flight_error(what: &str) -> ApiError {
    ApiError {
        retry_after: Some(1),
        ..ApiError::new(ErrorCode::RateLimited, format!("too many {what} in flight from this address"))
    }
}

/// Takes `bytes` from the address's budget of bytes written to the store
/// (deposits, bundles, prekeys), in this relay's memory and, where
/// instances share the store, in its shared bucket: 429 when it is spent.
async fn charge_writes(relay: &Relay, peer: IpAddr, bytes: impl TryInto<u32>) -> Result<(), ApiError> {
    let cost = write_cost(bytes);
    relay.write_limits.take(&peer, cost).map_err(writes_spent)?;
    if relay.store.shared() {
        let charge = writes_charge(&relay.config, peer, cost);
        if let Err(retry) = relay.store.take_tokens(vec![charge]).await.inspect_err(|_| {
            relay.write_limits.give_back(&peer, cost);
        })? {
            relay.write_limits.give_back(&peer, cost);
            return Err(writes_spent(retry));
        }
    }
    Ok(())
}

/// 429 for an address whose budget of written bytes is spent.
fn writes_spent(retry: u64) -> ApiError {
    ApiError {
        retry_after: Some(retry),
        ..ApiError::new(ErrorCode::RateLimited, "this address has written too many bytes lately")
    }
}

/// Gives back the bytes [`charge_writes`] took for a write the store then
/// refused.
async fn refund_writes(relay: &Relay, peer: IpAddr, bytes: impl TryInto<u32>) {
    let cost = write_cost(bytes);
    relay.write_limits.give_back(&peer, cost);
    if relay.store.shared()
        && let Err(e) = relay.store.take_tokens(vec![writes_charge(&relay.config, peer, -cost)]).await
    {
        tracing::warn!(error = %e, "refunding a shared write budget");
    }
}

/// The kinds of shared rate-limit buckets (the first byte of a key).
const BUCKET_ADDRESS: u8 = b'i';
const BUCKET_ACCOUNT: u8 = b'a';
const BUCKET_WRITES: u8 = b'w';

/// The shared bucket of kind `kind` for `id`.
fn bucket_key(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len().saturating_add(1));
    key.push(kind);
    key.extend_from_slice(id);
    key
}

fn address_bytes(peer: IpAddr) -> Vec<u8> {
    match peer {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn writes_charge(config: &Config, peer: IpAddr, cost: f64) -> Charge {
    Charge {
        key: bucket_key(BUCKET_WRITES, &address_bytes(peer)),
        rate: config.rate_ip_write_bytes_per_sec,
        burst: config.rate_ip_write_bytes_burst,
        cost,
    }
}

/// This relay's own buckets for an authenticated request: its account's
/// and, for a deposit, the bytes it will store (`writes`, from its
/// address's budget). Returns what the shared buckets are to be charged
/// (nothing when the store is this relay's alone): one request of the
/// account and of the address, and the bytes. The caller gives the bytes
/// back if the request is then refused.
fn local_admit(relay: &Relay, peer: IpAddr, account: &AccountId, writes: Option<f64>) -> Result<Vec<Charge>, ApiError> {
    relay.account_limits.check(account).map_err(ApiError::rate_limited)?;
    if let Some(cost) = writes {
        relay.write_limits.take(&peer, cost).map_err(writes_spent)?;
    }
    if !relay.store.shared() {
        return Ok(Vec::new());
    }
    let c = &relay.config;
    let mut charges = vec![
        Charge {
            key: bucket_key(BUCKET_ACCOUNT, account),
            rate: c.rate_account_per_sec,
            burst: c.rate_account_burst,
            cost: 1.0,
        },
        Charge {
            key: bucket_key(BUCKET_ADDRESS, &address_bytes(peer)),
            rate: c.rate_ip_per_sec,
            burst: c.rate_ip_burst,
            cost: 1.0,
        },
    ];
    if let Some(cost) = writes {
        charges.push(writes_charge(c, peer, cost));
    }
    Ok(charges)
}

/// Bytes as tokens of the stored-bytes budget.
fn write_cost(bytes: impl TryInto<u32>) -> f64 {
    bytes.try_into().map_or(f64::from(u32::MAX), f64::from)
}

/// A low-cardinality route label for metrics.
fn route_name(method: &Method, path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        (_, [""] | ["status.json" | "status.css" | "status.js"]) => "status",
        (_, ["healthz"]) => "healthz",
        (_, ["metrics"]) => "metrics",
        (_, ["v1", "keys", "bundle"]) => "publish_bundle",
        (_, ["v1", "keys", "one-time"]) => "upload_prekeys",
        (_, ["v1", "keys", _]) => "fetch_bundle",
        (_, ["v1", "messages"]) => "messages",
        (_, ["v1", "messages", "ack"]) => "ack",
        (_, ["v1", "ws"]) => "websocket",
        (_, ["v1", "sessions"]) => "open_session",
        (_, ["v1", "handles", "claim"]) => "claim_handle",
        (_, ["v1", "handles", "verify"]) => "verify_handle",
        (_, ["v1", "handles", _]) => "lookup_handle",
        (_, ["v1", "mqtt"]) => "enrol_mqtt",
        (_, ["v1", ..]) => "unknown",
        ("GET" | "HEAD", _) => "static",
        _ => "unknown",
    }
}

async fn dispatch(relay: &Arc<Relay>, req: Request<Incoming>, peer: IpAddr) -> Result<Resp, ApiError> {
    relay.ip_limits.check(&peer).map_err(ApiError::rate_limited)?;
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segs: Vec<String> = path.trim_start_matches('/').split('/').map(str::to_owned).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();

    if crate::cors::Cors::is_preflight(&method, req.headers())
        && let Some(resp) = relay.cors.preflight(req.headers())
    {
        return Ok(resp);
    }
    // Unauthenticated routes.
    match (&method, segs.as_slice()) {
        (&Method::GET, ["status.json"]) => return crate::status::json(relay).await,
        (&Method::GET, [name @ ("" | "status.css" | "status.js")]) => {
            return crate::status::file(name).ok_or_else(|| crate::error::internal("no such status file"));
        }
        (&Method::GET, ["healthz"]) => return Ok(json_body(StatusCode::OK, b"{\"status\":\"ok\"}".to_vec())),
        (&Method::GET, ["metrics"]) => return metrics_page(relay).await,
        (&Method::GET, ["v1", "ws"]) => return crate::ws::upgrade(Arc::clone(relay), req, peer).await,
        _ => {}
    }
    // Static files live beside the API, never in its place.
    let api_path = matches!(
        segs.as_slice(),
        [""] | ["healthz"] | ["metrics"] | ["status.json" | "status.css" | "status.js"] | ["v1", ..]
    );
    if let Some(files) = &relay.files
        && !api_path
        && matches!(method, Method::GET | Method::HEAD)
    {
        // A file can be megabytes: it takes a pull place like a page.
        let place = relay.in_flight.pull(peer).ok_or_else(|| in_flight_error("pulls"))?;
        let mut resp = files.serve(&path).await?;
        resp.body_mut().hold(place);
        return Ok(resp);
    }
    let allowed = allowed_methods(&path, &segs)?;
    if !allowed.contains(&method) {
        let mut resp =
            crate::error::into_response(&ApiError::new(ErrorCode::MethodNotAllowed, format!("{method} {path}")));
        let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        resp.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_str(&allow).map_err(crate::error::internal)?);
        return Ok(resp);
    }

    // Writes that grow the store wait for free disk (before the body is read).
    if grows_store(&method, &segs) {
        relay.disk.check()?;
    }
    let call = read_call(relay, req, peer).await?;
    answer(relay, call).await
}

/// Authenticates and answers a request of an API route whatever transport
/// it came on (HTTP or MQTT): the one code path of every check.
async fn answer(relay: &Arc<Relay>, call: Call) -> Result<Resp, ApiError> {
    let (method, peer) = (call.method.clone(), call.peer);
    let path = call.path_and_query.split_once('?').map_or(call.path_and_query.as_str(), |(p, _)| p).to_owned();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let is_deposit = method == Method::POST && segs.as_slice() == ["v1", "messages"];
    // Every route but publishing one's bundle needs a registered account.
    let publishing = segs.as_slice() == ["v1", "keys", "bundle"];
    if publishing {
        // A bundle that does not verify is refused before its nonce is kept.
        PublishBundleBody::decode(&call.body)?;
    }
    // A deposit is checked before its authentication, which also charges
    // the bytes it will store.
    let deposit_body = if is_deposit { Some(parse_deposit_checked(&relay.config, &call.body)?) } else { None };
    let writes = deposit_body.as_ref().map(|(_, cost)| write_cost(*cost));
    // Over MQTT only the mailbox's owner signs: a signature by another
    // account is refused before it is checked (and a relay session of
    // another account after it).
    if let Some(owner) = call.owner
        && let Some(claimed) = call.auth.as_deref().and_then(|h| Credentials::parse(h).ok())
        && claimed.account != owner
    {
        return Err(not_your_mailbox());
    }
    let account = authenticate(relay, &call, is_deposit, !publishing, writes).await?;
    if call.owner.is_some_and(|owner| owner != account) {
        return Err(not_your_mailbox());
    }

    match (&method, segs.as_slice()) {
        (&Method::POST, ["v1", "keys", "bundle"]) => publish_bundle(relay, account, &call).await,
        (&Method::POST, ["v1", "sessions"]) => open_session(relay, account, &call).await,
        (&Method::POST, ["v1", "keys", "one-time"]) => upload_prekeys(relay, account, &call).await,
        (&Method::GET, ["v1", "keys", who]) => fetch_bundle(relay, who).await,
        (&Method::POST, ["v1", "messages"]) => match deposit_body {
            Some((body, cost)) => deposit(relay, account, &call, body, cost).await,
            None => Err(crate::error::internal("a deposit without its body")),
        },
        (&Method::GET, ["v1", "messages"]) => pull(relay, account, &call, peer).await,
        (&Method::POST, ["v1", "messages", "ack"]) => ack(relay, account, &call).await,
        (&Method::POST, ["v1", "handles", "claim"]) => claim_handle(relay, account, &call).await,
        (&Method::POST, ["v1", "handles", "verify"]) => verify_handle(relay, account, &call).await,
        (&Method::GET, ["v1", "handles", handle]) => lookup_handle(relay, handle).await,
        (&Method::POST, ["v1", "mqtt"]) => enrol_mqtt(relay, account, &call).await,
        _ => Err(ApiError::new(ErrorCode::NoSuchRoute, format!("no route {path}"))),
    }
}

/// Checks the content type and size, then reads the body.
async fn read_call(relay: &Relay, req: Request<Incoming>, peer: IpAddr) -> Result<Call, ApiError> {
    let limit = relay.body_limit();
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        let len: usize = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::new(ErrorCode::BadContentLength, "Content-Length is not a number"))?;
        if len > limit {
            return Err(ApiError::new(ErrorCode::TooLarge, format!("request bodies are limited to {limit} bytes")));
        }
    }
    let method = req.method().clone();
    if method == Method::POST {
        let ct = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(ErrorCode::UnsupportedContentType, "POST bodies must be application/json"));
        }
    }
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let auth = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let deadline = std::time::Duration::from_secs(relay.config.http_body_timeout_secs);
    let collected = tokio::time::timeout(deadline, Limited::new(req.into_body(), limit).collect())
        .await
        .map_err(|_| ApiError::new(ErrorCode::RequestTimeout, "the request body came too slowly"))?;
    let body = collected.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            ApiError::new(ErrorCode::TooLarge, format!("request bodies are limited to {limit} bytes"))
        } else {
            ApiError::new(ErrorCode::BadBody, "could not read the request body")
        }
    })?;
    Ok(Call { method, path_and_query, body: body.to_bytes(), auth, peer, owner: None })
}

/// Checks the request's signature (any route) or, where `allow_session`,
/// its session MAC; then (where `registered`) that the account published a
/// bundle, then the rate limits (with a deposit's bytes, `writes`), and
/// only then records the nonce or sequence number: a refused request
/// leaves nothing behind.
async fn authenticate(
    relay: &Relay,
    call: &Call,
    allow_session: bool,
    registered: bool,
    writes: Option<f64>,
) -> Result<AccountId, ApiError> {
    let header = call
        .auth
        .as_deref()
        .ok_or_else(|| ApiError::new(ErrorCode::MissingAuthorization, "this route needs a signed request"))?;
    if header.starts_with(SESSION_SCHEME) {
        if !allow_session {
            return Err(ApiError::new(ErrorCode::SignatureRequired, "this route needs an identity signature"));
        }
        // Sessions are only opened by registered accounts.
        let (method, now, peer) = (call.method.as_str(), relay.clock.now(), call.peer);
        if !relay.store.shared() {
            let account = relay.sessions.verify(header, method, &call.path_and_query, &call.body, now)?;
            local_admit(relay, peer, &account, writes)?;
            return Ok(account);
        }
        let charged = std::sync::atomic::AtomicBool::new(false);
        let admit = |account: &AccountId| {
            let charges = local_admit(relay, peer, account, writes)?;
            charged.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(charges)
        };
        let verified =
            relay.sessions.verify_shared(&*relay.store, header, (method, &call.path_and_query, &call.body), now, admit);
        let verified = verified.await;
        if verified.is_err()
            && charged.load(std::sync::atomic::Ordering::Relaxed)
            && let Some(cost) = writes
        {
            relay.write_limits.give_back(&peer, cost);
        }
        return verified;
    }
    let creds = Credentials::parse(header)?;
    let now = relay.clock.now();
    creds.verify(call.method.as_str(), &call.path_and_query, &call.body, now, relay.config.max_clock_skew_secs)?;
    admit(relay, &creds, registered, call.peer, now, writes).await?;
    Ok(creds.account)
}

/// After a verified signature: the registration check (where asked), the
/// rate limits (this relay's; the shared ones with the nonce), then the
/// nonce, in this relay's memory and where instances share the store.
pub(crate) async fn admit(
    relay: &Relay,
    creds: &Credentials,
    registered: bool,
    peer: IpAddr,
    now: u64,
    writes: Option<f64>,
) -> Result<(), ApiError> {
    if registered && !relay.store.is_known(creds.account).await? {
        return Err(ApiError::new(ErrorCode::NotRegistered, "publish a bundle first"));
    }
    let charges = local_admit(relay, peer, &creds.account, writes)?;
    let refused = |e: ApiError| {
        if let Some(cost) = writes {
            relay.write_limits.give_back(&peer, cost);
        }
        e
    };
    relay.nonces.record(creds, now).map_err(refused)?;
    // Relays sharing a database also refuse what another of them saw. A
    // request is accepted up to the skew after its time; the margin covers
    // the instances' clocks differing.
    let expires = creds.ts.saturating_add(relay.config.max_clock_skew_secs).saturating_add(NONCE_MARGIN_SECS);
    match relay.store.record_nonce(creds.account, creds.ts, creds.nonce, expires, charges).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(refused(ApiError::new(ErrorCode::ReplayedRequest, "this nonce was already used"))),
        // Refused by the shared buckets (or the store failed): nothing of
        // the request is kept, here either.
        Ok(Err(wait)) => {
            relay.nonces.forget(creds);
            Err(refused(ApiError::rate_limited(wait)))
        }
        Err(e) => {
            relay.nonces.forget(creds);
            Err(refused(e.into()))
        }
    }
}

/// How much longer than the accepted clock skew a shared nonce is kept.
const NONCE_MARGIN_SECS: u64 = 60;

async fn open_session(relay: &Relay, account: AccountId, call: &Call) -> Result<Resp, ApiError> {
    let _: serde_json::Map<String, serde_json::Value> = parse_json(&call.body)?;
    let now = relay.clock.now();
    let (id, key) = relay.sessions.create(account, now, SESSION_TTL)?;
    if relay.store.shared() {
        let session = SharedSession { account, key: key.clone(), expires: now.saturating_add(SESSION_TTL) };
        relay.store.open_session(id, session, crate::auth::MAX_SESSIONS_PER_ACCOUNT).await?;
    }
    Ok(reply::<SessionOpened>(SessionOpened::new(id, &key, SESSION_TTL).encode()))
}

/// Parses a JSON body strictly (unknown fields refused).
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::BadJson, format!("invalid JSON body: {e}")))
}

/// A JSON response.
fn json_body(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut resp = Response::new(Body::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A reply of type `T` (its status is the one clients expect).
fn reply<T: Reply>(body: Vec<u8>) -> Resp {
    json_body(StatusCode::from_u16(T::STATUS).unwrap_or(StatusCode::OK), body)
}

async fn publish_bundle(relay: &Arc<Relay>, account: AccountId, call: &Call) -> Result<Resp, ApiError> {
    let PublishBundleBody { bundle, bytes } = PublishBundleBody::decode(&call.body)?;
    if bundle.identity().signing_key() != &account {
        return Err(ApiError::new(ErrorCode::NotYourBundle, "the bundle's identity is not the caller"));
    }
    if bundle.one_time_prekey().is_some() {
        return Err(ApiError::new(ErrorCode::BadBundle, "publish the signed part only; upload one-time prekeys apart"));
    }
    let identity = bundle.identity().to_bytes().to_vec();
    charge_writes(relay, call.peer, identity.len().saturating_add(bytes.len())).await?;
    let now = relay.clock.now();
    relay.store.publish_bundle(account, identity, bytes, now).await?;
    Ok(reply::<BundlePublished>(BundlePublished { account }.encode()))
}

async fn upload_prekeys(relay: &Arc<Relay>, account: AccountId, call: &Call) -> Result<Resp, ApiError> {
    let mut parsed = PrekeysBody::decode(&call.body)?.prekeys;
    let (identity, held) = relay
        .store
        .identity(account)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownAccount, "publish a bundle first"))?;
    let max = relay.config.max_one_time_prekeys;
    // Only what can still be stored is verified: the rest would be dropped
    // anyway, so a full account costs no signature checks at all.
    let room = usize::try_from(max.saturating_sub(held)).unwrap_or(usize::MAX);
    parsed.truncate(room);
    if parsed.is_empty() {
        return Ok(reply::<PrekeysStored>(PrekeysStored { one_time_prekeys: held }.encode()));
    }
    charge_writes(relay, call.peer, parsed.iter().map(|(_, bytes)| bytes.len()).sum::<usize>()).await?;
    // Ed25519 verification is CPU work: off the async workers, so that an
    // upload never stalls other connections' requests.
    let keys = tokio::task::spawn_blocking(move || {
        let identity = sealpost::IdentityPublic::from_bytes(&identity).map_err(crate::error::internal)?;
        let mut keys = Vec::with_capacity(parsed.len());
        for (i, (otk, bytes)) in parsed.into_iter().enumerate() {
            otk.verify(&identity)
                .map_err(|_| ApiError::new(ErrorCode::BadPrekeys, format!("prekey {i} is not signed by the caller")))?;
            keys.push((otk.id, bytes));
        }
        Ok::<_, ApiError>(keys)
    })
    .await
    .map_err(crate::error::internal)??;
    let held = relay.store.add_one_time_prekeys(account, keys, max).await?;
    Ok(reply::<PrekeysStored>(PrekeysStored { one_time_prekeys: held }.encode()))
}

async fn fetch_bundle(relay: &Arc<Relay>, who: &str) -> Result<Resp, ApiError> {
    let target = decode_account("account", who)?;
    let claimed = relay
        .store
        .claim_bundle(target)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownAccount, "no bundle published for this account"))?;
    let mut bundle = claimed.bundle;
    // The stored signed part ends with the presence byte 0; attach the key.
    if let Some(otk) = claimed.one_time_prekey
        && bundle.last() == Some(&0)
    {
        bundle.pop();
        bundle.push(1);
        bundle.extend_from_slice(&otk);
    }
    Ok(reply::<BundleFetched>(BundleFetched::encode_raw(&bundle, claimed.remaining)))
}

/// Parses and checks a deposit body: recipients and envelope.
fn parse_deposit(config: &Config, body: &[u8]) -> Result<DepositBody, ApiError> {
    DepositBody::decode(body, config.max_recipients, config.max_envelope_bytes)
}

/// [`parse_deposit`], then the bytes it would store ([`stored_cost`]):
/// 413 beyond `max_deposit_bytes`.
fn parse_deposit_checked(config: &Config, body: &[u8]) -> Result<(DepositBody, u64), ApiError> {
    let parsed = parse_deposit(config, body)?;
    let cost = stored_cost(parsed.envelope.len(), parsed.recipients.len());
    if cost > config.max_deposit_bytes {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "the deposit would store {cost} bytes (the envelope once and {REFERENCE_BYTES} per recipient); \
                 one deposit may store {}",
                config.max_deposit_bytes
            ),
        ));
    }
    Ok((parsed, cost))
}

/// Stores a deposit whose bytes [`authenticate`] charged.
async fn deposit(
    relay: &Arc<Relay>,
    sender: AccountId,
    call: &Call,
    body: DepositBody,
    cost: u64,
) -> Result<Resp, ApiError> {
    let DepositBody { recipients, envelope } = body;
    let (now, size) = (relay.clock.now(), envelope.len());
    let limits =
        DepositLimits { mailbox: relay.config.max_mailbox_messages, sender_quota: relay.config.sender_quota_bytes };
    let notify = recipients.clone();
    // Recipients on MQTT get the envelope published: a copy only then.
    let pushed = relay.mqtt.get().map(|_| envelope.clone());
    let started = Instant::now();
    let ids = match relay.store.deposit(sender, recipients, envelope, now, limits).await {
        Ok(ids) => ids,
        Err(e) => {
            // Nothing was stored: the address gets its bytes back.
            refund_writes(relay, call.peer, cost).await;
            return Err(e.into());
        }
    };
    relay.metrics.deposited(ids.len(), size, started.elapsed());
    for r in &notify {
        relay.hub.notify(r);
    }
    if let (Some(bridge), Some(envelope)) = (relay.mqtt.get(), pushed) {
        let (bridge, relay) = (Arc::clone(bridge), Arc::clone(relay));
        let to = notify.iter().copied().zip(ids.iter().copied()).collect();
        tokio::spawn(async move { bridge.push(&relay, sender, to, envelope, now).await });
    }
    Ok(reply::<Deposited>(Deposited { ids }.encode()))
}

/// A page is the largest thing the relay builds, so a pull holds one of its
/// address's few pull places from before the read until the client has
/// taken the page.
async fn pull(relay: &Arc<Relay>, account: AccountId, call: &Call, peer: IpAddr) -> Result<Resp, ApiError> {
    let query = call.path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("");
    let PullQuery { after, limit } = PullQuery::decode(query)?;
    let place = relay.in_flight.pull(peer).ok_or_else(|| in_flight_error("pulls"))?;
    // The store read runs on a blocking thread and goes on if the client
    // gives up (an HTTP/2 reset drops this handler): the place stays taken
    // until the read is over, so cancelled pulls cannot pile up reads.
    let read = relay.store.pull(account, after, limit, relay.config.max_pull_bytes);
    let (messages, place) = tokio::spawn(async move { (read.await, place) }).await.map_err(crate::error::internal)?;
    let messages: Vec<Delivered> = messages?.into_iter().map(delivered).collect();
    relay.metrics.delivered(messages.len());
    let mut resp = reply::<MessagePage>(MessagePage::encode(messages, after));
    resp.body_mut().hold(place);
    Ok(resp)
}

/// A stored message as clients receive it (moved, not copied).
pub(crate) fn delivered(m: crate::store::StoredMessage) -> Delivered {
    Delivered { id: m.id, sender: m.sender, envelope: m.envelope, received_at: m.received_at }
}

async fn ack(relay: &Arc<Relay>, account: AccountId, call: &Call) -> Result<Resp, ApiError> {
    let ids = AckBody::decode(&call.body)?.ids;
    let deleted = relay.store.ack(account, ids).await?;
    Ok(reply::<Acked>(Acked { deleted }.encode()))
}

async fn claim_handle(relay: &Arc<Relay>, account: AccountId, call: &Call) -> Result<Resp, ApiError> {
    let handle = normalize_handle(&ClaimHandleBody::decode(&call.body)?.handle)?;
    let code = generate_code();
    let hash = code_hash(&handle, &account, &code);
    let now = relay.clock.now();
    relay.store.claim_handle(handle.clone(), account, hash, now, handle_limits(&relay.config)).await?;
    relay
        .codes
        .deliver(&handle, &code)
        .await
        .map_err(|e| ApiError::new(ErrorCode::CodeDeliveryFailed, e.to_string()))?;
    Ok(reply::<HandleClaimed>(HandleClaimed { handle, expires_in: relay.config.code_ttl_secs }.encode()))
}

fn not_your_mailbox() -> ApiError {
    ApiError::new(ErrorCode::NotYourMailbox, "requests over MQTT are signed by the mailbox's own account")
}

/// Enrols the caller's mailbox for MQTT (a new broker password each time).
async fn enrol_mqtt(relay: &Arc<Relay>, account: AccountId, call: &Call) -> Result<Resp, ApiError> {
    let _: serde_json::Map<String, serde_json::Value> = parse_json(&call.body)?;
    let bridge =
        relay.mqtt.get().ok_or_else(|| ApiError::new(ErrorCode::MqttDisabled, "this relay has no MQTT bridge"))?;
    let enrolled = bridge.enrol(relay, account).await?;
    Ok(reply::<sealpost_client::MqttEnrolled>(enrolled.encode()))
}

fn parse_verify(body: &[u8]) -> Result<(String, String), ApiError> {
    let req = VerifyHandleBody::decode(body)?;
    Ok((normalize_handle(&req.handle)?, req.code))
}

async fn verify_handle(relay: &Arc<Relay>, account: AccountId, call: &Call) -> Result<Resp, ApiError> {
    let (handle, code) = parse_verify(&call.body)?;
    let hash = code_hash(&handle, &account, &code);
    let now = relay.clock.now();
    match relay.store.verify_handle(handle.clone(), account, hash, now, handle_limits(&relay.config)).await? {
        HandleCheck::Bound => Ok(reply::<HandleBound>(HandleBound { handle, account }.encode())),
        HandleCheck::WrongCode(left) => {
            Err(ApiError::new(ErrorCode::WrongCode, format!("wrong code; {left} attempts left")))
        }
        HandleCheck::Expired => Err(ApiError::new(ErrorCode::CodeExpired, "the code expired; claim again")),
        HandleCheck::TooManyAttempts => Err(ApiError::new(
            ErrorCode::TooManyAttempts,
            "too many wrong codes; ask for a new code once this one has expired",
        )),
        HandleCheck::NoClaim => Err(ApiError::new(ErrorCode::NoClaim, "claim the handle first")),
        HandleCheck::Locked(secs) => Err(ApiError::rate_limited(secs).with_retry_after(secs)),
    }
}

/// The handle limits of the settings.
fn handle_limits(config: &Config) -> HandleLimits {
    HandleLimits {
        ttl: config.code_ttl_secs,
        cooldown: config.code_cooldown_secs,
        max_attempts: config.code_max_attempts,
        max_pending: config.handle_max_pending_claims,
        codes_per_hour: config.handle_codes_per_hour,
        wrong_per_hour: config.handle_wrong_codes_per_hour,
    }
}

async fn lookup_handle(relay: &Arc<Relay>, handle: &str) -> Result<Resp, ApiError> {
    let handle = normalize_handle(&percent_decode(handle)?)?;
    let h = handle.clone();
    let (account, identity) = relay
        .store
        .lookup_handle(h)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownHandle, "no account has verified this handle"))?;
    Ok(reply::<HandleFound>(HandleFound::encode_raw(&handle, &account, &identity)))
}

/// Decodes `%XX` escapes in a path segment (for `+` in phone numbers).
fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bad = || ApiError::new(ErrorCode::BadHandle, "bad percent-encoding");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i.saturating_add(1)..i.saturating_add(3)).ok_or_else(bad)?;
            let v = std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(bad)?;
            out.push(v);
            i = i.saturating_add(3);
        } else {
            out.push(b);
            i = i.saturating_add(1);
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

async fn metrics_page(relay: &Arc<Relay>) -> Result<Resp, ApiError> {
    let stats = relay.stats().await?;
    let mut text = relay.metrics.render(&stats, relay.hub.connections(), relay.started.elapsed().as_secs());
    if let Some(bridge) = relay.mqtt.get() {
        bridge.render_metrics(&mut text);
    }
    let mut resp = Response::new(Body::new(text));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    Ok(resp)
}

/// Runs a request body through the parsing and checks its route applies
/// before any storage access (JSON, base64, bundle and prekey decoding,
/// handle and code rules) — for fuzzing: nothing here may panic.
#[doc(hidden)]
pub fn check_body(route: &str, body: &[u8]) -> Result<(), ApiError> {
    match route {
        "publish_bundle" => PublishBundleBody::decode(body).map(drop),
        "upload_prekeys" => PrekeysBody::decode(body).map(drop),
        "deposit" => parse_deposit(&Config::default(), body).map(drop),
        "ack" => AckBody::decode(body).map(drop),
        "claim_handle" => ClaimHandleBody::decode(body).and_then(|r| normalize_handle(&r.handle)).map(drop),
        "verify_handle" => parse_verify(body).map(drop),
        "open_session" => parse_json::<serde_json::Map<String, serde_json::Value>>(body).map(drop),
        _ => Err(ApiError::new(ErrorCode::NoSuchRoute, route.to_owned())),
    }
}
