//! Shared set-up: a relay on a real loopback socket with a temporary data
//! directory, clients for fresh accounts, and a code sink the tests read.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

use sealpost::{Account, SessionPolicy};
use sealpost_relay::MemorySink;
use sealpost_relay::client::Client;
use sealpost_relay::{Clock, Config, Running};

pub(crate) const NOW: u64 = 1_700_000_000;

pub(crate) struct TestRelay {
    pub(crate) running: Option<Running>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) codes: Arc<MemorySink>,
    pub(crate) base: String,
    /// The relay's clock: manual, started at the real time (clients sign
    /// with the real time, well within the accepted skew); tests advance
    /// it instead of sleeping.
    pub(crate) clock: Clock,
    /// The listening socket, kept open while the relay is stopped so a
    /// restart takes the same address with no moment it is free.
    listener: std::net::TcpListener,
}

/// The real Unix time.
pub(crate) fn real_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Generous rate and in-flight limits unless a test is about them.
pub(crate) fn config(dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        rate_account_per_sec: 10_000.0,
        rate_account_burst: 10_000.0,
        rate_ip_per_sec: 10_000.0,
        rate_ip_burst: 10_000.0,
        rate_ip_write_bytes_per_sec: 1e12,
        rate_ip_write_bytes_burst: 1e12,
        max_requests_in_flight_per_address: 10_000,
        max_pulls_in_flight_per_address: 10_000,
        ..Config::default()
    }
}

pub(crate) async fn start_with(edit: impl FnOnce(&mut Config)) -> TestRelay {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    edit(&mut cfg);
    let codes = Arc::new(MemorySink::default());
    let clock = Clock::manual(real_now());
    let listener = std::net::TcpListener::bind(cfg.listen).unwrap();
    let running =
        Running::start_on(listener.try_clone().unwrap(), cfg, Some(codes.clone()), clock.clone()).await.unwrap();
    let base = format!("http://{}", running.addr);
    TestRelay { running: Some(running), dir, codes, base, clock, listener }
}

pub(crate) async fn start() -> TestRelay {
    start_with(|_| {}).await
}

impl TestRelay {
    pub(crate) async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }

    /// Starts again on the same data directory, listening socket and clock.
    pub(crate) async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// [`TestRelay::restart`] with the settings changed by `edit`.
    pub(crate) async fn restart_with(&mut self, edit: impl FnOnce(&mut Config)) {
        self.stop().await;
        let mut cfg = config(self.dir.path());
        edit(&mut cfg);
        let listener = self.listener.try_clone().unwrap();
        let running = Running::start_on(listener, cfg, Some(self.codes.clone()), self.clock.clone()).await.unwrap();
        assert_eq!(self.base, format!("http://{}", running.addr));
        self.running = Some(running);
    }
}

/// A person: an account and a client acting for it.
pub(crate) struct User {
    pub(crate) account: Account,
    pub(crate) client: Client,
}

/// A new account that published its bundle and `otks` one-time prekeys.
pub(crate) async fn user(relay: &TestRelay, otks: usize) -> User {
    let mut rng = sealpost::os_rng();
    let mut account = Account::new(&mut rng, NOW);
    let client = Client::new(&relay.base, account.relay_signer()).unwrap();
    client.publish_bundle(&account.bundle(&SessionPolicy::default()).unwrap()).await.unwrap();
    if otks > 0 {
        let keys = account.generate_one_time_prekeys(&mut rng, otks);
        client.upload_prekeys(&keys).await.unwrap();
    }
    User { account, client }
}

/// An HTTP/2 connection to `addr` that has had `GET /healthz` answered 200:
/// its sender and the task driving the connection (which ends when the
/// relay closes it).
pub(crate) async fn h2_after_healthz(
    addr: std::net::SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{addr}/healthz"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(send.send_request(req).await.unwrap().status(), 200);
    (send, conn)
}

/// A database URL for a fresh schema of the test database, or `None`
/// (skipped) when there is none and the test command did not require one.
pub(crate) async fn fresh_postgres_schema() -> Option<String> {
    let Ok(url) = std::env::var("SEALPOST_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("SEALPOST_REQUIRE_POSTGRES").is_none(),
            "SEALPOST_REQUIRE_POSTGRES is set but SEALPOST_TEST_DATABASE_URL is not"
        );
        eprintln!("skipped: set SEALPOST_TEST_DATABASE_URL to run the PostgreSQL tests");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let mut name = [0u8; 8];
    rand_core::Rng::fill_bytes(&mut sealpost::os_rng(), &mut name);
    let schema: String = name.iter().map(|b| format!("{b:02x}")).collect();
    client.batch_execute(&format!("CREATE SCHEMA p_{schema}")).await.unwrap();
    Some(format!("{url}?options=-c%20search_path%3Dp_{schema}"))
}
