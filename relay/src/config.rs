//! Configuration: command-line flags, environment variables and an
//! optional TOML file, in that order of precedence, over safe defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

/// The relay's settings after merging flags, environment and file.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Directory of the SQLite database.
    pub data_dir: PathBuf,
    /// Largest envelope accepted, in bytes (checked before buffering).
    pub max_envelope_bytes: usize,
    /// Most messages waiting in one mailbox; deposits beyond are refused.
    pub max_mailbox_messages: u64,
    /// Most recipients of one deposit.
    pub max_recipients: usize,
    /// Seconds an envelope is kept before it is purged.
    pub retention_secs: u64,
    /// Seconds between purges.
    pub purge_interval_secs: u64,
    /// Requests per second allowed per account (sustained).
    pub rate_account_per_sec: f64,
    /// Burst allowed per account.
    pub rate_account_burst: f64,
    /// Requests per second allowed per client address (sustained).
    pub rate_ip_per_sec: f64,
    /// Burst allowed per client address.
    pub rate_ip_burst: f64,
    /// Largest accepted difference between a request's timestamp and the clock.
    pub max_clock_skew_secs: u64,
    /// Most one-time prekeys held per account.
    pub max_one_time_prekeys: u64,
    /// Seconds a handle verification code is valid.
    pub code_ttl_secs: u64,
    /// Wrong codes allowed before a claim is locked (until its code expires).
    pub code_max_attempts: u32,
    /// Seconds before the same account may ask again for a code for the same handle.
    pub code_cooldown_secs: u64,
    /// Where verification codes go: standard output (`None`) or a webhook URL.
    pub code_webhook: Option<String>,
    /// TLS certificate chain (PEM); TLS is on when both paths are set.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Seconds to let in-flight requests finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
    /// Open WebSocket push connections allowed per account.
    pub ws_max_per_account: usize,
    /// Seconds a WebSocket may stay silent (no frame, not even a pong to
    /// the relay's pings) before the relay closes it.
    pub ws_idle_secs: u64,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed
    /// (for per-address rate limits); empty: the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Nonces of signed requests remembered per account; beyond, its oldest
    /// are forgotten and older timestamps of that account refused.
    pub max_nonces_per_account: usize,
    /// Nonces remembered in all; beyond, the accounts holding the most are
    /// trimmed first.
    pub max_nonces: usize,
    /// Seconds a client has to send a request's headers, and a new connection
    /// its first request (TLS handshake included).
    pub http_header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its headers arrived.
    pub http_body_timeout_secs: u64,
    /// Seconds a keep-alive connection may stay without a request in flight.
    pub http_idle_timeout_secs: u64,
    /// Most envelope bytes in one pull page or WebSocket batch (always at least
    /// one message).
    pub max_pull_bytes: usize,
    /// Seconds one WebSocket frame may take to be sent; a client that does not
    /// read for that long is disconnected.
    pub ws_send_timeout_secs: u64,
    /// Most envelope bytes read from the store per WebSocket batch.
    pub ws_batch_bytes: usize,
    /// Largest WebSocket message or frame a client may send (acks are small).
    pub ws_max_message_bytes: usize,
    /// Open TCP connections allowed in all; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Open TCP connections allowed per peer address (trusted proxies exempt).
    pub max_connections_per_address: usize,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("sealpost-data"),
            max_envelope_bytes: 256 * 1024,
            max_mailbox_messages: 10_000,
            max_recipients: 1000,
            retention_secs: 7 * 24 * 3600,
            purge_interval_secs: 3600,
            rate_account_per_sec: 20.0,
            rate_account_burst: 100.0,
            rate_ip_per_sec: 50.0,
            rate_ip_burst: 200.0,
            max_clock_skew_secs: 300,
            max_one_time_prekeys: 1000,
            code_ttl_secs: 600,
            code_max_attempts: 5,
            code_cooldown_secs: 60,
            code_webhook: None,
            tls_cert: None,
            tls_key: None,
            shutdown_grace_secs: 30,
            log_format: LogFormat::Text,
            ws_max_per_account: 8,
            ws_idle_secs: 90,
            trusted_proxies: Vec::new(),
            max_pull_bytes: 4 * 1024 * 1024,
            http_idle_timeout_secs: 60,
            http_body_timeout_secs: 30,
            http_header_timeout_secs: 10,
            max_nonces: 1_000_000,
            max_nonces_per_account: 1000,
            ws_send_timeout_secs: 10,
            ws_batch_bytes: 1024 * 1024,
            ws_max_message_bytes: 64 * 1024,
            max_connections: 10_000,
            max_connections_per_address: 64,
        }
    }
}

/// Sealpost relay: stores and forwards sealed envelopes it cannot read, and
/// serves prekey bundles so that people can start sessions with someone
/// who is offline.
///
/// Every setting can come from a flag, an environment variable (shown in
/// brackets) or the TOML file given with --config (keys as the flag names
/// with underscores), in that order of precedence.
#[derive(Parser, Debug, Default)]
#[command(name = "sealpost-relay", version, about, long_about)]
pub struct Cli {
    /// TOML file with settings (keys: listen, data_dir, max_envelope_bytes, ...).
    #[arg(long, env = "SEALPOST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SEALPOST_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database (WAL) [default: ./sealpost-data].
    #[arg(long, env = "SEALPOST_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Largest envelope accepted, in bytes; larger envelopes get 413 (a
    /// request whose Content-Length exceeds what such an envelope needs is
    /// refused before its body is read) [default: 262144].
    #[arg(long, env = "SEALPOST_MAX_ENVELOPE_BYTES", value_name = "BYTES")]
    pub max_envelope_bytes: Option<usize>,
    /// Most messages waiting in one mailbox; a deposit that would exceed it
    /// is refused whole with 507 [default: 10000].
    #[arg(long, env = "SEALPOST_MAX_MAILBOX_MESSAGES", value_name = "N")]
    pub max_mailbox_messages: Option<u64>,
    /// Most recipients of one deposit [default: 1000].
    #[arg(long, env = "SEALPOST_MAX_RECIPIENTS", value_name = "N")]
    pub max_recipients: Option<usize>,
    /// Seconds an envelope is kept before it is purged [default: 604800 = 7 days].
    #[arg(long, env = "SEALPOST_RETENTION_SECS", value_name = "SECS")]
    pub retention_secs: Option<u64>,
    /// Seconds between purges of expired envelopes [default: 3600].
    #[arg(long, env = "SEALPOST_PURGE_INTERVAL_SECS", value_name = "SECS")]
    pub purge_interval_secs: Option<u64>,
    /// Sustained requests per second per account; beyond: 429 with Retry-After [default: 20].
    #[arg(long, env = "SEALPOST_RATE_ACCOUNT_PER_SEC", value_name = "RATE")]
    pub rate_account_per_sec: Option<f64>,
    /// Burst of requests allowed per account [default: 100].
    #[arg(long, env = "SEALPOST_RATE_ACCOUNT_BURST", value_name = "N")]
    pub rate_account_burst: Option<f64>,
    /// Sustained requests per second per client address [default: 50].
    #[arg(long, env = "SEALPOST_RATE_IP_PER_SEC", value_name = "RATE")]
    pub rate_ip_per_sec: Option<f64>,
    /// Burst of requests allowed per client address [default: 200].
    #[arg(long, env = "SEALPOST_RATE_IP_BURST", value_name = "N")]
    pub rate_ip_burst: Option<f64>,
    /// Largest accepted clock difference of a signed request [default: 300].
    #[arg(long, env = "SEALPOST_MAX_CLOCK_SKEW_SECS", value_name = "SECS")]
    pub max_clock_skew_secs: Option<u64>,
    /// Most one-time prekeys held per account [default: 1000].
    #[arg(long, env = "SEALPOST_MAX_ONE_TIME_PREKEYS", value_name = "N")]
    pub max_one_time_prekeys: Option<u64>,
    /// Seconds a handle verification code stays valid [default: 600].
    #[arg(long, env = "SEALPOST_CODE_TTL_SECS", value_name = "SECS")]
    pub code_ttl_secs: Option<u64>,
    /// Wrong codes allowed before a handle claim is locked until its code
    /// expires; asking again does not reset the count [default: 5].
    #[arg(long, env = "SEALPOST_CODE_MAX_ATTEMPTS", value_name = "N")]
    pub code_max_attempts: Option<u32>,
    /// Seconds before an account may ask again for a code for the same
    /// handle (limits code floods to the handle's owner) [default: 60].
    #[arg(long, env = "SEALPOST_CODE_COOLDOWN_SECS", value_name = "SECS")]
    pub code_cooldown_secs: Option<u64>,
    /// Deliver verification codes by POSTing {"handle","code"} as JSON to
    /// this http:// URL (an SMS or e-mail gateway) instead of printing them
    /// on standard output.
    #[arg(long, env = "SEALPOST_CODE_WEBHOOK", value_name = "URL")]
    pub code_webhook: Option<String>,
    /// TLS certificate chain in PEM; with --tls-key, serve HTTPS (HTTP/1.1 and HTTP/2).
    #[arg(long, env = "SEALPOST_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key in PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SEALPOST_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C [default: 30].
    #[arg(long, env = "SEALPOST_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Log format [default: text]. The level comes from RUST_LOG (default info).
    #[arg(long, env = "SEALPOST_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Open WebSocket push connections allowed per account; more get 429 [default: 8].
    #[arg(long, env = "SEALPOST_WS_MAX_PER_ACCOUNT", value_name = "N")]
    pub ws_max_per_account: Option<usize>,
    /// Seconds a WebSocket may stay silent before it is closed; the relay
    /// pings every third of that [default: 90].
    #[arg(long, env = "SEALPOST_WS_IDLE_SECS", value_name = "SECS")]
    pub ws_idle_secs: Option<u64>,
    /// Reverse proxies whose X-Forwarded-For header names the client for
    /// per-address rate limits (comma-separated addresses) [default: none].
    #[arg(long, env = "SEALPOST_TRUSTED_PROXIES", value_name = "ADDRS", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<std::net::IpAddr>>,
    /// Nonces remembered per account; beyond, the account's oldest are
    /// forgotten and requests it signed earlier refused as stale [default: 1000].
    #[arg(long, env = "SEALPOST_MAX_NONCES_PER_ACCOUNT", value_name = "N")]
    pub max_nonces_per_account: Option<usize>,
    /// Nonces remembered in all; when full, the accounts holding the most
    /// are trimmed first (never a refusal for everyone) [default: 1000000].
    #[arg(long, env = "SEALPOST_MAX_NONCES", value_name = "N")]
    pub max_nonces: Option<usize>,
    /// Seconds a client has to send a request's headers (HTTP/1), and a new
    /// connection its first request, TLS handshake included [default: 10].
    #[arg(long, env = "SEALPOST_HTTP_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub http_header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's body once its headers
    /// arrived; slower bodies get 408 [default: 30].
    #[arg(long, env = "SEALPOST_HTTP_BODY_TIMEOUT_SECS", value_name = "SECS")]
    pub http_body_timeout_secs: Option<u64>,
    /// Seconds a keep-alive connection (HTTP/1 or HTTP/2) may stay without a
    /// request in flight before it is closed; HTTP/2 connections are also
    /// pinged after this long and closed when the ping is not answered
    /// within the header timeout [default: 60].
    #[arg(long, env = "SEALPOST_HTTP_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub http_idle_timeout_secs: Option<u64>,
    /// Most envelope bytes one pull page (or WebSocket batch) carries; a page
    /// always holds at least one message, however large [default: 4194304].
    #[arg(long, env = "SEALPOST_MAX_PULL_BYTES", value_name = "BYTES")]
    pub max_pull_bytes: Option<usize>,
    /// Seconds one WebSocket frame may wait for a client that does not read;
    /// then the connection is closed [default: 10].
    #[arg(long, env = "SEALPOST_WS_SEND_TIMEOUT_SECS", value_name = "SECS")]
    pub ws_send_timeout_secs: Option<u64>,
    /// Most envelope bytes read from the store for one WebSocket batch (at
    /// least one message) [default: 1048576].
    #[arg(long, env = "SEALPOST_WS_BATCH_BYTES", value_name = "BYTES")]
    pub ws_batch_bytes: Option<usize>,
    /// Largest WebSocket message (and frame) a client may send; larger ones
    /// close the connection [default: 65536].
    #[arg(long, env = "SEALPOST_WS_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub ws_max_message_bytes: Option<usize>,
    /// Open TCP connections allowed in all; more are closed as soon as they
    /// are accepted [default: 10000].
    #[arg(long, env = "SEALPOST_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open TCP connections allowed per peer address (trusted proxies are
    /// exempt); more are closed as soon as they are accepted [default: 64].
    #[arg(long, env = "SEALPOST_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
}

/// The TOML file's shape: every key optional, unknown keys refused.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    max_envelope_bytes: Option<usize>,
    max_mailbox_messages: Option<u64>,
    max_recipients: Option<usize>,
    retention_secs: Option<u64>,
    purge_interval_secs: Option<u64>,
    rate_account_per_sec: Option<f64>,
    rate_account_burst: Option<f64>,
    rate_ip_per_sec: Option<f64>,
    rate_ip_burst: Option<f64>,
    max_clock_skew_secs: Option<u64>,
    max_one_time_prekeys: Option<u64>,
    code_ttl_secs: Option<u64>,
    code_max_attempts: Option<u32>,
    code_cooldown_secs: Option<u64>,
    code_webhook: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    shutdown_grace_secs: Option<u64>,
    log_format: Option<LogFormat>,
    ws_max_per_account: Option<usize>,
    ws_idle_secs: Option<u64>,
    trusted_proxies: Option<Vec<std::net::IpAddr>>,
    max_nonces_per_account: Option<usize>,
    max_nonces: Option<usize>,
    http_header_timeout_secs: Option<u64>,
    http_body_timeout_secs: Option<u64>,
    http_idle_timeout_secs: Option<u64>,
    max_pull_bytes: Option<usize>,
    ws_send_timeout_secs: Option<u64>,
    ws_batch_bytes: Option<usize>,
    ws_max_message_bytes: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
}

impl Config {
    /// Merges flags/environment (`cli`) over the file (if any) over defaults,
    /// and checks the result.
    pub fn load(cli: Cli) -> Result<Self, String> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let d = Config::default();
        macro_rules! pick {
            ($f:ident) => {
                cli.$f.or(file.$f).unwrap_or(d.$f)
            };
        }
        let config = Config {
            listen: pick!(listen),
            data_dir: pick!(data_dir),
            max_envelope_bytes: pick!(max_envelope_bytes),
            max_mailbox_messages: pick!(max_mailbox_messages),
            max_recipients: pick!(max_recipients),
            retention_secs: pick!(retention_secs),
            purge_interval_secs: pick!(purge_interval_secs),
            rate_account_per_sec: pick!(rate_account_per_sec),
            rate_account_burst: pick!(rate_account_burst),
            rate_ip_per_sec: pick!(rate_ip_per_sec),
            rate_ip_burst: pick!(rate_ip_burst),
            max_clock_skew_secs: pick!(max_clock_skew_secs),
            max_one_time_prekeys: pick!(max_one_time_prekeys),
            code_ttl_secs: pick!(code_ttl_secs),
            code_max_attempts: pick!(code_max_attempts),
            code_cooldown_secs: pick!(code_cooldown_secs),
            code_webhook: cli.code_webhook.or(file.code_webhook),
            tls_cert: cli.tls_cert.or(file.tls_cert),
            tls_key: cli.tls_key.or(file.tls_key),
            shutdown_grace_secs: pick!(shutdown_grace_secs),
            log_format: pick!(log_format),
            ws_max_per_account: pick!(ws_max_per_account),
            ws_idle_secs: pick!(ws_idle_secs),
            trusted_proxies: cli.trusted_proxies.or(file.trusted_proxies).unwrap_or_default(),
            max_pull_bytes: pick!(max_pull_bytes),
            http_idle_timeout_secs: pick!(http_idle_timeout_secs),
            http_body_timeout_secs: pick!(http_body_timeout_secs),
            http_header_timeout_secs: pick!(http_header_timeout_secs),
            max_nonces: pick!(max_nonces),
            max_nonces_per_account: pick!(max_nonces_per_account),
            ws_send_timeout_secs: pick!(ws_send_timeout_secs),
            ws_batch_bytes: pick!(ws_batch_bytes),
            ws_max_message_bytes: pick!(ws_max_message_bytes),
            max_connections: pick!(max_connections),
            max_connections_per_address: pick!(max_connections_per_address),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.max_envelope_bytes == 0 || self.max_envelope_bytes > 64 * 1024 * 1024 {
            return Err("max_envelope_bytes must be between 1 and 67108864".into());
        }
        if self.max_mailbox_messages == 0 || self.max_recipients == 0 {
            return Err("max_mailbox_messages and max_recipients must be positive".into());
        }
        for (name, v) in [
            ("rate_account_per_sec", self.rate_account_per_sec),
            ("rate_account_burst", self.rate_account_burst),
            ("rate_ip_per_sec", self.rate_ip_per_sec),
            ("rate_ip_burst", self.rate_ip_burst),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number"));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("tls_cert and tls_key go together".into());
        }
        if let Some(url) = &self.code_webhook
            && !url.starts_with("http://")
        {
            return Err("code_webhook must be an http:// URL (put a TLS proxy in front for https)".into());
        }
        if self.ws_max_per_account == 0 || self.ws_idle_secs < 3 {
            return Err("ws_max_per_account must be positive and ws_idle_secs at least 3".into());
        }
        if self.http_header_timeout_secs == 0 || self.http_body_timeout_secs == 0 || self.http_idle_timeout_secs == 0 {
            return Err(
                "http_header_timeout_secs, http_body_timeout_secs and http_idle_timeout_secs must be positive".into()
            );
        }
        if self.max_nonces_per_account == 0 || self.max_nonces < 2 {
            return Err("max_nonces_per_account must be positive and max_nonces at least 2".into());
        }
        if self.ws_send_timeout_secs == 0 || self.ws_batch_bytes == 0 || self.ws_max_message_bytes < 1024 {
            return Err(
                "ws_send_timeout_secs and ws_batch_bytes must be positive, ws_max_message_bytes at least 1024".into()
            );
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            return Err("max_connections and max_connections_per_address must be positive".into());
        }
        if self.code_max_attempts == 0 || self.code_ttl_secs == 0 || self.purge_interval_secs == 0 {
            return Err("code_max_attempts, code_ttl_secs and purge_interval_secs must be positive".into());
        }
        Ok(())
    }
}
