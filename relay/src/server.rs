//! Listening: plain TCP or TLS (rustls), HTTP/1.1 and HTTP/2, graceful
//! shutdown, and the periodic purge.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::{Relay, handle};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, TlsFault};
use crate::handles::{CodeSink, StdoutSink, WebhookSink};
use crate::store::{PgStore, SqliteStore, Store, Wake};

/// Builds the TLS acceptor from PEM files (ALPN: h2, http/1.1).
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls = |what: String| move |fault: TlsFault| Error::Tls { what, fault };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls(cert.display().to_string())(e.into()))?;
    if certs.is_empty() {
        return Err(tls(cert.display().to_string())(TlsFault::NoCertificate));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| tls(key.display().to_string())(e.into()))?;
    let both = || format!("certificate {} with key {}", cert.display(), key.display());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(both())(TlsFault::Rustls(e)))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            tls(both())(match e {
                rustls::Error::InconsistentKeys(_) => TlsFault::KeyMismatch(e),
                other => TlsFault::Rustls(other),
            })
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Builds the relay state from a configuration: opens the store and
/// chooses the code sink.
pub(crate) async fn build(config: Config, codes: Option<Arc<dyn CodeSink>>, clock: Clock) -> Result<Arc<Relay>, Error> {
    config.check()?;
    let files = config.static_dir.as_deref().map(crate::files::StaticFiles::open).transpose()?;
    let store: Arc<dyn Store> = match &config.database_url {
        Some(url) => Arc::new(PgStore::connect(&url.0, config.database_pool_size).await?),
        None => Arc::new(SqliteStore::open(&config.data_dir)?),
    };
    let codes: Arc<dyn CodeSink> = match (codes, &config.code_webhook) {
        (Some(c), _) => c,
        (None, Some(url)) => Arc::new(WebhookSink::new(url)?),
        (None, None) => Arc::new(StdoutSink),
    };
    let bridge = config.mqtt_url.as_ref().map(|url| crate::mqtt::Bridge::new(&config, url)).transpose()?;
    let relay = Arc::new(Relay::new(config, store, codes, files, clock));
    if let Some(bridge) = bridge {
        let _ = relay.mqtt.set(bridge);
    }
    // Deposits through other instances wake this one's push connections.
    let weak = Arc::downgrade(&relay);
    relay.store.watch(Arc::new(move |wake| {
        if let Some(relay) = weak.upgrade() {
            match wake {
                Wake::Account(account) => relay.hub.notify(&account),
                Wake::All => relay.hub.notify_all(),
            }
        }
    }));
    Ok(relay)
}

/// Builds the relay from `config` and serves `listener` until `shutdown`
/// resolves (the binary's loop; [`Running`] does the same in a task).
pub async fn serve_until(
    config: Config,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    serve(build(config, None, Clock::system()).await?, listener, tls, shutdown).await
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (up to the grace period) and closes the store after
/// its last commit.
pub(crate) async fn serve(
    relay: Arc<Relay>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let graceful = GracefulShutdown::new();
    let builder = http_builder(&relay.config);
    let (header_timeout, idle_timeout) = (
        Duration::from_secs(relay.config.http_header_timeout_secs),
        Duration::from_secs(relay.config.http_idle_timeout_secs),
    );
    let purge = tokio::spawn(purge_loop(Arc::clone(&relay)));
    let sampler = tokio::spawn(crate::status::sample_loop(Arc::clone(&relay)));
    let mqtt = crate::mqtt::Bridge::start(&relay);
    let limiter =
        crate::limits::ConnectionLimiter::new(relay.config.max_connections, relay.config.max_connections_per_address);
    // Accept failures (e.g. out of file descriptors) and refused connections
    // are logged at most every ten seconds, with a count.
    let (mut failed, mut refused) = (LogEvery::new(), LogEvery::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    if let Some(n) = failed.tick() {
                        tracing::warn!(error = %e, failures = n, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let exempt = relay.config.trusted_proxies.contains(&peer.ip());
        let Some(slot) = limiter.admit(peer.ip(), exempt) else {
            if let Some(n) = refused.tick() {
                tracing::warn!(%peer, refused = n, open = limiter.open(), "connection limit reached; closing new connections");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let relay = Arc::clone(&relay);
        let activity = Arc::new(Activity::new());
        let seen = Arc::clone(&activity);
        // Held by the connection and by a WebSocket it is upgraded to.
        let slot = Arc::new(slot);
        let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(Arc::clone(&slot));
            let relay = Arc::clone(&relay);
            let busy = seen.begin();
            async move {
                let client = client_address(&relay.config.trusted_proxies, peer.ip(), req.headers());
                let resp = handle(relay, req, client).await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let watch = idle_watch(activity, header_timeout, idle_timeout);
        match &tls {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    tokio::select! {
                        ended = conn => if let Err(e) = ended {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        },
                        () = watch => tracing::debug!(%peer, "idle connection closed"),
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                    tokio::select! {
                        ended = watcher.watch(conn) => if let Err(e) = ended {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        },
                        () = watch => tracing::debug!(%peer, "idle connection closed"),
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let grace = Duration::from_secs(relay.config.shutdown_grace_secs);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("grace period over; closing remaining connections");
    }
    purge.abort();
    sampler.abort();
    if let Some(task) = mqtt {
        task.abort();
    }
    if let Err(e) = relay.store.close().await {
        tracing::error!(error = %e, "closing the store");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Buffer bounds of one connection (docs/RELAY.md section 7, Budget): an
/// HTTP/1 connection buffers at most this much of a request (headers
/// included) and of a response.
const HTTP1_BUFFER: usize = 64 * 1024;
/// HTTP/2: unread request body per stream and per connection, response
/// bytes buffered per stream, and the largest header block.
const H2_STREAM_WINDOW: u32 = 256 * 1024;
const H2_CONNECTION_WINDOW: u32 = 512 * 1024;
const H2_SEND_BUFFER: usize = 64 * 1024;
const H2_HEADER_LIST: u32 = 16 * 1024;

/// The HTTP/1 and HTTP/2 connection settings: a timer (without one hyper
/// silently ignores its timeouts), the header-read timeout, HTTP/2
/// keep-alive pings, and small buffers.
fn http_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let header = Duration::from_secs(config.http_header_timeout_secs);
    let idle = Duration::from_secs(config.http_idle_timeout_secs);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header).keep_alive(true).max_buf_size(HTTP1_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(idle)
        .keep_alive_timeout(header)
        // No more streams than the address may have requests in flight.
        .max_concurrent_streams(u32::try_from(config.max_requests_in_flight_per_address.min(100)).unwrap_or(100))
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_send_buf_size(H2_SEND_BUFFER)
        .max_header_list_size(H2_HEADER_LIST);
    builder
}

/// Rate-limits a repeated log line: `tick` counts an event and says how
/// many happened since the last line when a line is due.
struct LogEvery {
    last: Option<tokio::time::Instant>,
    count: u64,
}

impl LogEvery {
    fn new() -> Self {
        Self { last: None, count: 0 }
    }

    fn tick(&mut self) -> Option<u64> {
        self.count = self.count.saturating_add(1);
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// What a connection is doing, for [`idle_watch`].
struct Activity {
    born: tokio::time::Instant,
    /// Requests being answered.
    busy: std::sync::atomic::AtomicUsize,
    /// Milliseconds after `born` when the last request ended (or `u64::MAX`
    /// while none has come yet).
    last: std::sync::atomic::AtomicU64,
}

/// Marks a request in flight; dropping it marks its end.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self {
            born: tokio::time::Instant::now(),
            busy: std::sync::atomic::AtomicUsize::new(0),
            last: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(Arc::clone(self))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let since = u64::try_from(self.0.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.0.last.store(since, std::sync::atomic::Ordering::SeqCst);
        self.0.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Resolves when the connection should be closed: no first request within
/// `first` of connecting (this also bounds hyper's HTTP/1-or-2 detection,
/// which has no timeout of its own), or no request in flight for `idle`.
async fn idle_watch(activity: Arc<Activity>, first: Duration, idle: Duration) {
    use std::sync::atomic::Ordering;
    loop {
        let last = activity.last.load(Ordering::SeqCst);
        let deadline =
            if last == u64::MAX { activity.born + first } else { activity.born + Duration::from_millis(last) + idle };
        tokio::time::sleep_until(deadline).await;
        let busy = activity.busy.load(Ordering::SeqCst) > 0;
        let unchanged = activity.last.load(Ordering::SeqCst) == last;
        if busy {
            // A request is being answered (its body has its own deadline).
            tokio::time::sleep(first.min(idle)).await;
        } else if unchanged {
            return;
        }
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy,
/// in which case the right-most `X-Forwarded-For` entry that is not itself
/// a trusted proxy (entries further left could be forged by the client).
pub(crate) fn client_address(
    trusted: &[std::net::IpAddr],
    peer: std::net::IpAddr,
    headers: &hyper::HeaderMap,
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded.into_iter().rev().find(|a| !trusted.contains(a)).unwrap_or(peer)
}

/// Seconds between sweeps of nonces, relay sessions and idle rate-limit
/// buckets (they expire within minutes).
const SWEEP_SECS: u64 = 30;

async fn purge_loop(relay: Arc<Relay>) {
    let clock = relay.clock.clone();
    // Deadlines follow each other from the start, however late a run was.
    let start = clock.now();
    let purge = async {
        let mut next = start;
        loop {
            clock.sleep_until(next).await;
            let before = clock.now().saturating_sub(relay.config.retention_secs);
            match relay.store.purge(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "expired envelopes purged"),
                Err(e) => tracing::warn!(error = %e, "purge failed"),
            }
            let interval = relay.config.purge_interval_secs;
            next = next.saturating_add(interval);
            if next <= clock.now() {
                next = clock.now().saturating_add(interval);
            }
        }
    };
    let sweep = async {
        let mut next = start.saturating_add(SWEEP_SECS);
        loop {
            clock.sleep_until(next).await;
            sweep_memory(&relay);
            if let Err(e) = relay.store.sweep_shared(clock.now()).await {
                tracing::warn!(error = %e, "sweeping shared nonces, sessions and buckets");
            }
            next = next.saturating_add(SWEEP_SECS).max(clock.now().saturating_add(1));
        }
    };
    tokio::join!(purge, sweep);
}

/// Forgets what has expired in memory: nonces, relay sessions, full buckets.
fn sweep_memory(relay: &Relay) {
    let now = relay.clock.now();
    relay.nonces.purge(now);
    relay.sessions.purge(now);
    relay.ip_limits.purge();
    relay.write_limits.purge();
    relay.account_limits.purge();
}

/// A relay running in the background (for tests and embedding).
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    relay: Arc<Relay>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Running {
    /// Starts a relay on `config.listen` (port 0 picks a free port, which
    /// [`Running::addr`] then names: bound here, never bound and dropped).
    pub async fn start(config: Config, codes: Option<Arc<dyn CodeSink>>) -> Result<Self, Error> {
        Self::start_with_clock(config, codes, Clock::system()).await
    }

    /// [`Running::start`] on the given clock (tests pass a
    /// [`Clock::manual`] and advance it instead of sleeping).
    pub async fn start_with_clock(
        config: Config,
        codes: Option<Arc<dyn CodeSink>>,
        clock: Clock,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::io(format!("listening on {}", config.listen), e))?;
        Self::serve_listener(listener, config, codes, clock).await
    }

    /// [`Running::start_with_clock`] on a socket the caller already
    /// listens on (`config.listen` is not used). A caller that keeps a
    /// [`std::net::TcpListener::try_clone`] of it can stop the relay and
    /// start it again on the same address with no moment in which the
    /// port is free for another process to take.
    pub async fn start_on(
        listener: std::net::TcpListener,
        config: Config,
        codes: Option<Arc<dyn CodeSink>>,
        clock: Clock,
    ) -> Result<Self, Error> {
        listener.set_nonblocking(true).map_err(|e| Error::io("making the listener non-blocking", e))?;
        let listener = TcpListener::from_std(listener).map_err(|e| Error::io("adopting the listener", e))?;
        Self::serve_listener(listener, config, codes, clock).await
    }

    async fn serve_listener(
        listener: TcpListener,
        config: Config,
        codes: Option<Arc<dyn CodeSink>>,
        clock: Clock,
    ) -> Result<Self, Error> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
            _ => None,
        };
        let addr = listener.local_addr().map_err(|e| Error::io("reading the bound address", e))?;
        let relay = build(config, codes, clock).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(Arc::clone(&relay), listener, tls, async move {
            let _ = stopped.await;
        }));
        Ok(Self { addr, relay, stop: Some(stop), task })
    }

    /// Open WebSocket push connections.
    pub fn push_connections(&self) -> usize {
        self.relay.hub.connections()
    }

    /// Nonces of signed requests the relay remembers.
    pub fn remembered_nonces(&self) -> usize {
        self.relay.nonces.len()
    }

    /// Stops gracefully and waits until the store is closed.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}
