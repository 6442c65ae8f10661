//! Configuration: command-line flags, environment variables and an
//! optional TOML file, in that order of precedence, over safe defaults.
//!
//! Every setting is declared once, in the `settings!` list below: its
//! type, default, help text and flag value name. From that list come the
//! [`Config`] struct and its `Default`, the command line ([`Cli`]: flag
//! `--max-envelope-bytes`), the environment variable
//! (`SEALPOST_MAX_ENVELOPE_BYTES`), the TOML key (`max_envelope_bytes`) and
//! the merge in [`Config::load`]. A flag and an environment variable are
//! parsed by the same code (the `Setting` trait).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Error;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A setting's value as written in a flag or an environment variable.
pub(crate) trait Setting: Sized {
    /// Parses the text of a flag or an environment variable.
    fn parse_setting(text: &str) -> Result<Self, Error>;
}

macro_rules! from_str_settings {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn parse_setting(text: &str) -> Result<Self, Error> {
                text.trim().parse::<$t>().map_err(|e| Error::Config(e.to_string()))
            }
        }
    )*};
}
from_str_settings!(SocketAddr, PathBuf, usize, u64, u32, f64, String, std::net::IpAddr);

impl Setting for LogFormat {
    fn parse_setting(text: &str) -> Result<Self, Error> {
        match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Error::Config(format!("{other:?} is neither text nor json"))),
        }
    }
}

/// A PostgreSQL connection URL (`postgres://user:password@host:port/db`).
/// Its `Debug` form hides everything between the scheme and the host, so
/// a logged configuration never shows a password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    /// Shows the hosts, ports and database name the driver would use, as
    /// it parses the URL (so a password in the user part or in a
    /// `?password=` parameter is never shown), or only that the URL does
    /// not parse.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Ok(config) = self.0.parse::<tokio_postgres::Config>() else {
            return f.write_str("DatabaseUrl(<not a PostgreSQL URL>)");
        };
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
            .map(|(host, port)| match host {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            })
            .collect();
        write!(f, "DatabaseUrl(\"postgres://…@{}/{}\")", hosts.join(","), config.get_dbname().unwrap_or(""))
    }
}

impl Setting for DatabaseUrl {
    fn parse_setting(text: &str) -> Result<Self, Error> {
        Ok(DatabaseUrl(text.trim().to_owned()))
    }
}

/// The broker of the MQTT bridge: `mqtt://host:port` (plain TCP) or
/// `mqtts://host:port` (TLS); the port defaults to 1883 and 8883.
/// Credentials are separate settings, so the URL holds no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttUrl {
    /// The broker's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Whether to connect with TLS.
    pub tls: bool,
}

impl MqttUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let bad = || Error::Config(format!("mqtt_url {text:?} is not mqtt://host:port or mqtts://host:port"));
        let (tls, rest) = match text.split_once("://") {
            Some(("mqtt", rest)) => (false, rest),
            Some(("mqtts", rest)) => (true, rest),
            _ => return Err(bad()),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
            return Err(bad());
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') && !host.is_empty() => {
                (host, port.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Self { host: host.to_owned(), port, tls })
    }
}

impl Setting for MqttUrl {
    fn parse_setting(text: &str) -> Result<Self, Error> {
        MqttUrl::parse(text)
    }
}

impl<'de> Deserialize<'de> for MqttUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        MqttUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An optional setting: any text sets it.
impl<T: Setting> Setting for Option<T> {
    fn parse_setting(text: &str) -> Result<Self, Error> {
        T::parse_setting(text).map(Some)
    }
}

/// A list: comma-separated; empty text is the empty list.
impl<T: Setting> Setting for Vec<T> {
    fn parse_setting(text: &str) -> Result<Self, Error> {
        text.split(',').filter(|s| !s.trim().is_empty()).map(T::parse_setting).collect()
    }
}

/// The environment variable of a setting: `SEALPOST_` and its name in capitals.
pub fn env_name(setting: &str) -> String {
    format!("SEALPOST_{}", setting.to_ascii_uppercase())
}

/// A flag's `--help` line: the setting's doc text and its variable.
fn help_text(doc: &[&str], setting: &str) -> String {
    let text = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    format!("{text} [env: {}]", env_name(setting))
}

/// Declares every setting once; see the module documentation.
macro_rules! settings {
    ($($(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr, $value_name:literal;)+) => {
        /// The relay's settings after merging flags, environment and file.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Config {
            $($(#[doc = $doc])+ pub $name: $ty,)+
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $($name: $default,)+ }
            }
        }

        /// Sealpost relay: stores and forwards sealed envelopes it cannot
        /// read, and serves prekey bundles so that people can start
        /// sessions with someone who is offline.
        ///
        /// Every setting can come from a flag, an environment variable
        /// (shown in brackets) or the TOML file given with --config (keys as
        /// the flag names with underscores), in that order of precedence.
        #[derive(clap::Parser, Debug, Default)]
        #[command(name = "sealpost-relay", version, about, long_about)]
        pub struct Cli {
            /// TOML file with settings (keys: listen, data_dir,
            /// max_envelope_bytes, ...) [env: SEALPOST_CONFIG].
            #[arg(long, value_name = "FILE")]
            pub config: Option<PathBuf>,
            $(
                #[doc = concat!("The flag of [`Config::", stringify!($name), "`].")]
                #[arg(long, value_name = $value_name, help = help_text(&[$($doc),+], stringify!($name)))]
                pub $name: Option<String>,
            )+
        }

        /// The TOML file's shape: every key optional, unknown keys refused.
        #[derive(Deserialize, Debug, Default)]
        #[serde(deny_unknown_fields)]
        struct FileConfig {
            $($name: Option<$ty>,)+
        }

        /// The names of every setting, in declaration order.
        pub const SETTINGS: &[&str] = &[$(stringify!($name)),+];

        /// The most `max_recipients` may be: a deposit's body and its reply (one
/// id per recipient) stay far below the 65,536 values the API's JSON
/// reader accepts in one document.
const MAX_RECIPIENTS: usize = 10_000;

impl Config {
            /// Merges flags (`cli`) over the environment (`env` looks a
            /// variable up; the binary passes the process environment) over
            /// the TOML file (named by `--config` or `SEALPOST_CONFIG`) over
            /// the defaults, and checks the result.
            pub fn load(cli: Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
                let config = Self::merge(cli, env)?;
                config.check()?;
                Ok(config)
            }

            /// [`Config::load`] without the final check.
            fn merge(cli: Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
                let path = match cli.config {
                    Some(p) => Some(p),
                    None => env("SEALPOST_CONFIG").map(PathBuf::from),
                };
                let file = match &path {
                    Some(path) => {
                        let text = std::fs::read_to_string(path)
                            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                        toml::from_str::<FileConfig>(&text)
                            .map_err(|e| Error::Config(format!("parsing {}: {e}", path.display())))?
                    }
                    None => FileConfig::default(),
                };
                Ok(Config {
                    $($name: pick(stringify!($name), cli.$name, env, file.$name, || $default)?,)+
                })
            }

            /// A setting's value, shown with `Debug` (for the loader's tests).
            #[cfg(test)]
            fn show(&self, name: &str) -> Option<String> {
                match name {
                    $(stringify!($name) => Some(format!("{:?}", self.$name)),)+
                    _ => None,
                }
            }
        }
    };
}

/// One setting's value: the flag, else the environment variable, else the
/// file's key, else the default.
fn pick<T: Setting>(
    name: &str,
    flag: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<T>,
    default: impl FnOnce() -> T,
) -> Result<T, Error> {
    let bad = |source: &str, why: Error| Error::Config(format!("{source}: invalid value: {why}"));
    if let Some(text) = flag {
        return T::parse_setting(&text).map_err(|why| bad(&format!("--{}", name.replace('_', "-")), why));
    }
    let var = env_name(name);
    if let Some(text) = env(&var) {
        return T::parse_setting(&text).map_err(|why| bad(&var, why));
    }
    Ok(file.unwrap_or_else(default))
}

settings! {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)), "ADDR:PORT";
    /// Directory for the SQLite database (WAL) [default: ./sealpost-data].
    data_dir: PathBuf = PathBuf::from("sealpost-data"), "DIR";
    /// Keep everything in PostgreSQL at this postgres:// URL instead of SQLite in data_dir, so that several
    /// relay processes can share it (plain TCP: use a loopback address, a Unix socket or a private network)
    /// [default: none, SQLite].
    database_url: Option<DatabaseUrl> = None, "URL";
    /// Most connections to PostgreSQL each relay process keeps open [default: 16].
    database_pool_size: usize = 16, "N";
    /// Largest envelope accepted, in bytes; larger envelopes get 413 (a request whose Content-Length
    /// exceeds what such an envelope needs is refused before its body is read) [default: 262144].
    max_envelope_bytes: usize = 256 * 1024, "BYTES";
    /// Most messages waiting in one mailbox; a deposit that would exceed it is refused whole with 507
    /// [default: 10000].
    max_mailbox_messages: u64 = 10_000, "N";
    /// Most recipients of one deposit [default: 1000].
    max_recipients: usize = 1000, "N";
    /// Most bytes one deposit may add to the store: the envelope once plus 64 per recipient reference;
    /// more get 413 [default: 1048576].
    max_deposit_bytes: u64 = 1024 * 1024, "BYTES";
    /// Most bytes (counted as for max_deposit_bytes) of one sender's envelopes that recipients have not yet
    /// acknowledged; a deposit beyond gets 507 until they pull and acknowledge, or the envelopes expire
    /// [default: 67108864].
    sender_quota_bytes: u64 = 64 * 1024 * 1024, "BYTES";
    /// Free bytes the data directory's file system must keep; below, deposits and uploads get 507 while
    /// pulls and acknowledgements (which free space) go on [default: 268435456].
    min_free_disk_bytes: u64 = 256 * 1024 * 1024, "BYTES";
    /// Seconds an envelope is kept before it is purged [default: 604800 = 7 days].
    retention_secs: u64 = 7 * 24 * 3600, "SECS";
    /// Seconds between purges of expired envelopes [default: 3600].
    purge_interval_secs: u64 = 3600, "SECS";
    /// Sustained requests per second per account; beyond: 429 with Retry-After [default: 20].
    rate_account_per_sec: f64 = 20.0, "RATE";
    /// Burst of requests allowed per account [default: 100].
    rate_account_burst: f64 = 100.0, "N";
    /// Sustained requests per second per client address [default: 50].
    rate_ip_per_sec: f64 = 50.0, "RATE";
    /// Burst of requests allowed per client address [default: 200].
    rate_ip_burst: f64 = 200.0, "N";
    /// Bytes per second one client address may add to the store (deposits as they are counted against
    /// the sender quota, bundles, one-time prekeys); beyond the burst, 429 [default: 32768].
    rate_ip_write_bytes_per_sec: f64 = 32768.0, "RATE";
    /// Bytes one client address may add to the store at once [default: 67108864].
    rate_ip_write_bytes_burst: f64 = 67_108_864.0, "BYTES";
    /// Largest accepted clock difference of a signed request [default: 300].
    max_clock_skew_secs: u64 = 300, "SECS";
    /// Most one-time prekeys held per account [default: 1000].
    max_one_time_prekeys: u64 = 1000, "N";
    /// Seconds a handle verification code stays valid [default: 600].
    code_ttl_secs: u64 = 600, "SECS";
    /// Wrong codes allowed before a handle claim is locked until its code expires; asking again does not
    /// reset the count [default: 5].
    code_max_attempts: u32 = 5, "N";
    /// Seconds before an account may ask again for a code for the same handle (limits code floods to the
    /// handle's owner) [default: 60].
    code_cooldown_secs: u64 = 60, "SECS";
    /// Accounts that may hold an unexpired claim on one handle at once; a further account's claim gets
    /// 429 until one expires (accounts are free, so per-account limits alone do not bound a handle)
    /// [default: 3].
    handle_max_pending_claims: u32 = 3, "N";
    /// Codes delivered for one handle per hour, across all accounts (bounds SMS pumping) [default: 6].
    handle_codes_per_hour: u32 = 6, "N";
    /// Wrong codes accepted for one handle per hour, across all accounts; after that every verification
    /// of the handle gets 429 until the hour is over [default: 10].
    handle_wrong_codes_per_hour: u32 = 10, "N";
    /// Deliver verification codes by POSTing {"handle","code"} as JSON to this http:// URL (an SMS or
    /// e-mail gateway) instead of printing them on standard output.
    code_webhook: Option<String> = None, "URL";
    /// TLS certificate chain in PEM; with --tls-key, serve HTTPS (HTTP/1.1 and HTTP/2).
    tls_cert: Option<PathBuf> = None, "FILE";
    /// TLS private key in PEM (PKCS#8, PKCS#1 or SEC1).
    tls_key: Option<PathBuf> = None, "FILE";
    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C [default: 30].
    shutdown_grace_secs: u64 = 30, "SECS";
    /// Seconds between the samples of the status page's charts (one hour of them is kept) [default: 10].
    status_sample_secs: u64 = 10, "SECS";
    /// Log format [default: text]. The level comes from RUST_LOG (default info).
    log_format: LogFormat = LogFormat::Text, "text|json";
    /// Open WebSocket push connections allowed per account; more get 429 [default: 8].
    ws_max_per_account: usize = 8, "N";
    /// Seconds a WebSocket may stay silent before it is closed; the relay pings every third of that
    /// [default: 90].
    ws_idle_secs: u64 = 90, "SECS";
    /// Reverse proxies whose X-Forwarded-For header names the client for per-address rate limits (comma-
    /// separated addresses) [default: none].
    trusted_proxies: Vec<std::net::IpAddr> = Vec::new(), "ADDRS";
    /// Nonces remembered per account; beyond, the account's oldest are forgotten and requests it signed
    /// earlier refused as stale [default: 1000].
    max_nonces_per_account: usize = 1000, "N";
    /// Nonces remembered in all; when full, the accounts holding the most are trimmed first (never a
    /// refusal for everyone) [default: 1000000].
    max_nonces: usize = 1_000_000, "N";
    /// Seconds a client has to send a request's headers (HTTP/1), and a new connection its first request,
    /// TLS handshake included [default: 10].
    http_header_timeout_secs: u64 = 10, "SECS";
    /// Seconds a client has to send a request's body once its headers arrived; slower bodies get 408
    /// [default: 30].
    http_body_timeout_secs: u64 = 30, "SECS";
    /// Seconds a keep-alive connection (HTTP/1 or HTTP/2) may stay without a request in flight before it is
    /// closed; HTTP/2 connections are also pinged after this long and closed when the ping is not answered
    /// within the header timeout [default: 60].
    http_idle_timeout_secs: u64 = 60, "SECS";
    /// Most envelope bytes one pull page (or WebSocket batch) carries; a page always holds at least one
    /// message, however large [default: 4194304].
    max_pull_bytes: usize = 4 * 1024 * 1024, "BYTES";
    /// Seconds the relay waits for a client that does not read to make room for pushed frames (up to 16 KiB and one
    /// frame are buffered); then the connection is closed
    /// [default: 10].
    ws_send_timeout_secs: u64 = 10, "SECS";
    /// Most envelope bytes read from the store for one WebSocket batch (at least one message) [default:
    /// 1048576].
    ws_batch_bytes: usize = 1024 * 1024, "BYTES";
    /// Largest WebSocket message (and frame) a client may send; larger ones close the connection [default:
    /// 65536].
    ws_max_message_bytes: usize = 64 * 1024, "BYTES";
    /// Open TCP connections allowed in all; more are closed as soon as they are accepted [default: 10000].
    max_connections: usize = 10_000, "N";
    /// Open TCP connections allowed per peer address (trusted proxies are exempt); more are closed as soon
    /// as they are accepted [default: 64].
    max_connections_per_address: usize = 64, "N";
    /// Requests one client address may have in flight, from admission until the client has read the
    /// response; more get 429 (bounds the memory one address pins) [default: 32].
    max_requests_in_flight_per_address: usize = 32, "N";
    /// Pulls (and WebSocket batches) one client address may have in flight, from the store read until the
    /// client has read the page; more pulls get 429, more batches carry one message each [default: 4].
    max_pulls_in_flight_per_address: usize = 4, "N";
    /// Origins whose pages may call the relay from a browser (CORS), as `scheme://host[:port]`, comma-
    /// separated, compared exactly; pages on other origins get no CORS headers and their WebSocket upgrades
    /// are refused [default: none].
    cors_allowed_origins: Vec<String> = Vec::new(), "ORIGINS";
    /// Serve the files of this directory (GET and HEAD) under every path the API does not use, for example
    /// a browser chat page [default: off].
    static_dir: Option<PathBuf> = None, "DIR";
    /// Bridge the API to an MQTT 5 broker at this mqtt:// or mqtts:// URL (host and port only; see
    /// docs/RELAY.md section 14) [default: none, no MQTT].
    mqtt_url: Option<MqttUrl> = None, "URL";
    /// The relay's username on the broker; it needs the broker's dynamic-security commands and the topic
    /// prefix [default: none].
    mqtt_username: Option<String> = None, "NAME";
    /// A file holding the relay's broker password (one line) [default: none].
    mqtt_password_file: Option<PathBuf> = None, "FILE";
    /// PEM file of the CA that signed the broker's certificate, for mqtts:// [default: the system's roots].
    mqtt_ca_file: Option<PathBuf> = None, "FILE";
    /// The relay's MQTT client id; give each instance its own (the broker keeps a session per id)
    /// [default: sealpost-relay].
    mqtt_client_id: String = "sealpost-relay".to_owned(), "ID";
    /// The first level of every topic the relay uses [default: sealpost].
    mqtt_topic_prefix: String = "sealpost".to_owned(), "PREFIX";
}

impl Config {
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.max_envelope_bytes == 0 || self.max_envelope_bytes > 64 * 1024 * 1024 {
            return Err(Error::Config("max_envelope_bytes must be between 1 and 67108864".into()));
        }
        if self.max_mailbox_messages == 0 || self.max_recipients == 0 {
            return Err(Error::Config("max_mailbox_messages and max_recipients must be positive".into()));
        }
        // The deposit's body and its reply (one id per recipient) must stay
        // within what the API's JSON reader holds in one document.
        if self.max_recipients > MAX_RECIPIENTS {
            return Err(Error::Config(format!("max_recipients must be at most {MAX_RECIPIENTS}")));
        }
        if self.max_requests_in_flight_per_address == 0 || self.max_pulls_in_flight_per_address == 0 {
            return Err(Error::Config(
                "max_requests_in_flight_per_address and max_pulls_in_flight_per_address must be positive".into(),
            ));
        }
        if self.max_deposit_bytes == 0 || self.sender_quota_bytes == 0 {
            return Err(Error::Config("max_deposit_bytes and sender_quota_bytes must be positive".into()));
        }
        for (name, v) in [
            ("rate_account_per_sec", self.rate_account_per_sec),
            ("rate_account_burst", self.rate_account_burst),
            ("rate_ip_per_sec", self.rate_ip_per_sec),
            ("rate_ip_burst", self.rate_ip_burst),
            ("rate_ip_write_bytes_per_sec", self.rate_ip_write_bytes_per_sec),
            ("rate_ip_write_bytes_burst", self.rate_ip_write_bytes_burst),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Config(format!("{name} must be a positive number")));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Config("tls_cert and tls_key go together".into()));
        }
        if let Some(DatabaseUrl(url)) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(Error::Config("database_url must be a postgres:// URL".into()));
        }
        if self.database_pool_size == 0 {
            return Err(Error::Config("database_pool_size must be positive".into()));
        }
        if !(1..=3600).contains(&self.status_sample_secs) {
            return Err(Error::Config("status_sample_secs must be between 1 and 3600".into()));
        }
        let prefix = &self.mqtt_topic_prefix;
        if prefix.is_empty()
            || prefix.starts_with(['/', '$'])
            || prefix.ends_with('/')
            || prefix.contains(['+', '#', '\0'])
        {
            return Err(Error::Config(
                "mqtt_topic_prefix must be a topic without wildcards, not starting with $ or / nor ending with /"
                    .into(),
            ));
        }
        if self.mqtt_client_id.is_empty() || self.mqtt_client_id.len() > 128 {
            return Err(Error::Config("mqtt_client_id must be 1 to 128 characters".into()));
        }
        if self.mqtt_url.is_some() && self.database_url.is_some() && self.mqtt_client_id == "sealpost-relay" {
            return Err(Error::Config(
                "with database_url, give each instance its own mqtt_client_id (the broker keeps one session per id)"
                    .into(),
            ));
        }
        if self.mqtt_password_file.is_some() && self.mqtt_username.is_none() {
            return Err(Error::Config("mqtt_password_file needs mqtt_username".into()));
        }
        if let Some(url) = &self.code_webhook
            && !url.starts_with("http://")
        {
            return Err(Error::Config(
                "code_webhook must be an http:// URL (put a TLS proxy in front for https)".into(),
            ));
        }
        if self.handle_max_pending_claims == 0
            || self.handle_codes_per_hour == 0
            || self.handle_wrong_codes_per_hour == 0
        {
            return Err(Error::Config(
                "handle_max_pending_claims, handle_codes_per_hour and handle_wrong_codes_per_hour must be positive"
                    .into(),
            ));
        }
        if self.ws_max_per_account == 0 || self.ws_idle_secs < 3 {
            return Err(Error::Config("ws_max_per_account must be positive and ws_idle_secs at least 3".into()));
        }
        if self.http_header_timeout_secs == 0 || self.http_body_timeout_secs == 0 || self.http_idle_timeout_secs == 0 {
            return Err(Error::Config(
                "http_header_timeout_secs, http_body_timeout_secs and http_idle_timeout_secs must be positive".into(),
            ));
        }
        if self.max_nonces_per_account == 0 || self.max_nonces < 2 {
            return Err(Error::Config("max_nonces_per_account must be positive and max_nonces at least 2".into()));
        }
        if self.ws_send_timeout_secs == 0 || self.ws_batch_bytes == 0 || self.ws_max_message_bytes < 1024 {
            return Err(Error::Config(
                "ws_send_timeout_secs and ws_batch_bytes must be positive, ws_max_message_bytes at least 1024".into(),
            ));
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            return Err(Error::Config("max_connections and max_connections_per_address must be positive".into()));
        }
        for origin in &self.cors_allowed_origins {
            crate::cors::check_origin(origin)
                .map_err(|why| Error::Config(format!("cors_allowed_origins: {origin:?}: {why}")))?;
        }
        if self.code_max_attempts == 0 || self.code_ttl_secs == 0 || self.purge_interval_secs == 0 {
            return Err(Error::Config(
                "code_max_attempts, code_ttl_secs and purge_interval_secs must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// For every setting: a flag's text, an environment variable's text and
    /// a TOML value, all different from each other and from the default.
    const SAMPLES: &[(&str, &str, &str, &str)] = &[
        ("listen", "127.0.0.1:1", "127.0.0.1:2", r#""127.0.0.1:3""#),
        ("data_dir", "/flag", "/env", r#""/file""#),
        ("database_url", "postgres://flag/db", "postgres://env/db", r#""postgres://file/db""#),
        ("database_pool_size", "17", "18", r#"19"#),
        ("max_envelope_bytes", "262145", "262146", r#"262147"#),
        ("max_mailbox_messages", "10001", "10002", r#"10003"#),
        ("max_recipients", "1001", "1002", r#"1003"#),
        ("max_deposit_bytes", "1048577", "1048578", r#"1048579"#),
        ("sender_quota_bytes", "67108865", "67108866", r#"67108867"#),
        ("min_free_disk_bytes", "268435457", "268435458", r#"268435459"#),
        ("retention_secs", "604801", "604802", r#"604803"#),
        ("purge_interval_secs", "3601", "3602", r#"3603"#),
        ("rate_account_per_sec", "21.0", "22.0", r#"23.0"#),
        ("rate_account_burst", "101.0", "102.0", r#"103.0"#),
        ("rate_ip_per_sec", "51.0", "52.0", r#"53.0"#),
        ("rate_ip_burst", "201.0", "202.0", r#"203.0"#),
        ("rate_ip_write_bytes_per_sec", "32769.0", "32770.0", r#"32771.0"#),
        ("rate_ip_write_bytes_burst", "67108865.0", "67108866.0", r#"67108867.0"#),
        ("max_clock_skew_secs", "301", "302", r#"303"#),
        ("max_one_time_prekeys", "1001", "1002", r#"1003"#),
        ("code_ttl_secs", "601", "602", r#"603"#),
        ("code_max_attempts", "6", "7", r#"8"#),
        ("code_cooldown_secs", "61", "62", r#"63"#),
        ("handle_max_pending_claims", "4", "5", r#"6"#),
        ("handle_codes_per_hour", "7", "8", r#"9"#),
        ("handle_wrong_codes_per_hour", "11", "12", r#"13"#),
        ("code_webhook", "http://flag.example/", "http://env.example/", r#""http://file.example/""#),
        ("tls_cert", "/flag.pem", "/env.pem", r#""/file.pem""#),
        ("tls_key", "/flag.pem", "/env.pem", r#""/file.pem""#),
        ("shutdown_grace_secs", "31", "32", r#"33"#),
        ("status_sample_secs", "11", "12", r#"13"#),
        ("log_format", "json", "text", r#""json""#),
        ("ws_max_per_account", "9", "10", r#"11"#),
        ("ws_idle_secs", "91", "92", r#"93"#),
        ("trusted_proxies", "10.0.0.1,10.0.0.2", "10.0.0.3", r#"["10.0.0.4", "10.0.0.5"]"#),
        ("max_nonces_per_account", "1001", "1002", r#"1003"#),
        ("max_nonces", "1000001", "1000002", r#"1000003"#),
        ("http_header_timeout_secs", "11", "12", r#"13"#),
        ("http_body_timeout_secs", "31", "32", r#"33"#),
        ("http_idle_timeout_secs", "61", "62", r#"63"#),
        ("max_pull_bytes", "4194305", "4194306", r#"4194307"#),
        ("ws_send_timeout_secs", "11", "12", r#"13"#),
        ("ws_batch_bytes", "1048577", "1048578", r#"1048579"#),
        ("ws_max_message_bytes", "65537", "65538", r#"65539"#),
        ("max_connections", "10001", "10002", r#"10003"#),
        ("max_connections_per_address", "65", "66", r#"67"#),
        ("max_requests_in_flight_per_address", "33", "34", r#"35"#),
        ("max_pulls_in_flight_per_address", "5", "6", r#"7"#),
        (
            "cors_allowed_origins",
            "https://flag.example",
            "https://env.example,http://env.example:8080",
            r#"["https://file.example"]"#,
        ),
        ("static_dir", "/flag.pem", "/env.pem", r#""/file.pem""#),
        ("mqtt_url", "mqtt://flag.example:1", "mqtts://env.example:2", r#""mqtt://file.example:3""#),
        ("mqtt_username", "flag", "env", r#""file""#),
        ("mqtt_password_file", "/flag.pw", "/env.pw", r#""/file.pw""#),
        ("mqtt_ca_file", "/flag.pem", "/env.pem", r#""/file.pem""#),
        ("mqtt_client_id", "flag", "env", r#""file""#),
        ("mqtt_topic_prefix", "flag", "env", r#""file""#),
    ];

    #[test]
    fn mqtt_urls_parse_with_their_default_ports_and_bad_ones_are_refused() {
        let url = |host: &str, port, tls| MqttUrl { host: host.to_owned(), port, tls };
        assert_eq!(MqttUrl::parse("mqtt://127.0.0.1:1884").unwrap(), url("127.0.0.1", 1884, false));
        assert_eq!(MqttUrl::parse("mqtt://broker").unwrap(), url("broker", 1883, false));
        assert_eq!(MqttUrl::parse("mqtts://broker/").unwrap(), url("broker", 8883, true));
        assert_eq!(MqttUrl::parse("mqtt://[::1]:9").unwrap(), url("::1", 9, false));
        for bad in ["http://x", "mqtt://", "mqtt://u:p@host", "mqtt://h:0", "mqtt://h:x", "mqtt://h/topic", "h:1"] {
            assert!(MqttUrl::parse(bad).is_err(), "{bad}");
        }
        for prefix in ["", "a/", "/a", "a/+", "a/#", "$SYS"] {
            let c = Config { mqtt_topic_prefix: prefix.to_owned(), ..Config::default() };
            assert!(c.check().is_err(), "{prefix:?}");
        }
    }

    #[test]
    fn recipients_per_deposit_are_bounded_by_what_the_json_reader_holds() {
        for (n, ok) in [(0, false), (1, true), (1000, true), (MAX_RECIPIENTS, true), (MAX_RECIPIENTS + 1, false)] {
            let c = Config { max_recipients: n, ..Config::default() };
            assert_eq!(c.check().is_ok(), ok, "{n}");
        }
    }

    #[test]
    fn a_database_url_never_shows_its_password() {
        let url = DatabaseUrl("postgres://relay:s3cret-Pa55@db.internal:5432/sealpost".into());
        let shown = format!("{url:?} {:?}", Config { database_url: Some(url.clone()), ..Config::default() });
        assert!(!shown.contains("s3cret") && !shown.contains("relay:"), "{shown}");
        assert!(shown.contains("db.internal:5432/sealpost"), "{shown}");
        let query =
            DatabaseUrl("postgresql://db.internal/sealpost?user=relay&password=s3cret-Pa55&sslmode=disable".into());
        let shown = format!("{query:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("relay"), "{shown}");
        assert!(shown.contains("db.internal:5432/sealpost"), "{shown}");
        let odd = DatabaseUrl("postgres://relay:s3cret?@x@db.internal/sealpost?password=s3cret".into());
        assert!(!format!("{odd:?}").contains("s3cret"), "{odd:?}");
        let bad = Config { database_url: Some(DatabaseUrl("mysql://x".into())), ..Config::default() };
        assert!(bad.check().unwrap_err().to_string().contains("postgres://"));
    }

    /// The value of `name` loaded from the given sources (the others unset).
    fn loaded(name: &str, flag: Option<&str>, env: Option<&str>, file: Option<&str>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["sealpost-relay".to_owned()];
        if let Some(value) = file {
            let path = dir.path().join("relay.toml");
            std::fs::write(&path, format!("{name} = {value}\n")).unwrap();
            args.extend(["--config".to_owned(), path.to_str().unwrap().to_owned()]);
        }
        if let Some(value) = flag {
            args.push(format!("--{}={value}", name.replace('_', "-")));
        }
        let cli = Cli::try_parse_from(&args).unwrap();
        let var = env_name(name);
        let lookup = |k: &str| if k == var { env.map(str::to_owned) } else { None };
        Config::merge(cli, &lookup).unwrap_or_else(|e| panic!("{name}: {e}")).show(name).unwrap()
    }

    #[test]
    fn every_setting_takes_the_flag_over_the_environment_over_the_file_over_the_default() {
        let sampled: Vec<&str> = SAMPLES.iter().map(|s| s.0).collect();
        assert_eq!(sampled, SETTINGS, "every setting has samples, in declaration order");
        let defaults = Config::default();
        for &(name, flag, env, file) in SAMPLES {
            let all = loaded(name, Some(flag), Some(env), Some(file));
            let env_and_file = loaded(name, None, Some(env), Some(file));
            let file_only = loaded(name, None, None, Some(file));
            let none = loaded(name, None, None, None);
            assert_eq!(all, loaded(name, Some(flag), None, None), "{name}: the flag wins");
            assert_eq!(env_and_file, loaded(name, None, Some(env), None), "{name}: the environment beats the file");
            assert_ne!(all, env_and_file, "{name}: samples differ");
            assert_ne!(env_and_file, file_only, "{name}: samples differ");
            assert_ne!(file_only, none, "{name}: the file beats the default");
            assert_ne!(all, none, "{name}: samples differ from the default");
            assert_eq!(none, defaults.show(name).unwrap(), "{name}: the default");
        }
    }

    #[test]
    fn bad_values_name_their_source() {
        let cli = Cli::try_parse_from(["sealpost-relay", "--max-recipients", "many"]).unwrap();
        let err = Config::load(cli, &|_| None).unwrap_err();
        assert!(err.is_config() && err.to_string().starts_with("--max-recipients: invalid value"), "{err}");
        let env = |k: &str| (k == "SEALPOST_LOG_FORMAT").then(|| "yaml".to_owned());
        let err = Config::load(Cli::default(), &env).unwrap_err();
        assert_eq!(err.to_string(), "SEALPOST_LOG_FORMAT: invalid value: \"yaml\" is neither text nor json");
        let env = |k: &str| (k == "SEALPOST_CORS_ALLOWED_ORIGINS").then(|| "https://chat.example/".to_owned());
        let err = Config::load(Cli::default(), &env).unwrap_err();
        assert!(err.to_string().starts_with("cors_allowed_origins: \"https://chat.example/\""), "{err}");
        let err = Config::load(Cli::default(), &|k| (k == "SEALPOST_CONFIG").then(|| "/nonexistent/relay.toml".into()))
            .unwrap_err();
        assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("/nonexistent/relay.toml"), "{err}");
    }
}
