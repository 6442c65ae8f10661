//! The `sealpost-relay` binary as an operator runs it: `--help`,
//! configuration from flags, environment and TOML, durability across a
//! kill -9, graceful shutdown on SIGTERM that finishes in-flight requests,
//! and TLS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sealpost::{Account, SessionPolicy};
use sealpost_relay::client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_sealpost-relay");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], envs: &[(&str, String)]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // Rate limits out of the way; every test sets its own data dir.
    cmd.env("SEALPOST_RATE_IP_BURST", "100000").env("SEALPOST_RATE_ACCOUNT_BURST", "100000");
    Proc(cmd.spawn().unwrap())
}

async fn wait_healthy(addr: SocketAddr) {
    for _ in 0..200 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            if buf.starts_with(b"HTTP/1.1 200") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("relay at {addr} did not become healthy");
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--listen",
        "--data-dir",
        "--max-envelope-bytes",
        "--max-mailbox-messages",
        "--max-recipients",
        "--retention-secs",
        "--purge-interval-secs",
        "--rate-account-per-sec",
        "--rate-account-burst",
        "--rate-ip-per-sec",
        "--rate-ip-burst",
        "--max-clock-skew-secs",
        "--max-one-time-prekeys",
        "--code-ttl-secs",
        "--code-max-attempts",
        "--code-cooldown-secs",
        "--code-webhook",
        "--tls-cert",
        "--tls-key",
        "--shutdown-grace-secs",
        "--log-format",
        "--ws-max-per-account",
        "--ws-idle-secs",
        "--trusted-proxies",
    ] {
        assert!(text.contains(flag), "--help does not mention {flag}");
    }
    assert!(text.contains("SEALPOST_LISTEN"), "environment variables are shown");
}

#[test]
fn bad_configuration_is_refused_with_a_message() {
    let out = Command::new(BIN).args(["--max-envelope-bytes", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_envelope_bytes"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nno_such_key = 3\n").unwrap();
    let out = Command::new(BIN).args(["--config", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_key"));
}

#[tokio::test]
async fn flags_override_environment_which_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (p_file, p_env, p_flag) = (free_port(), free_port(), free_port());
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        format!("listen = \"127.0.0.1:{p_file}\"\ndata_dir = \"{}\"\n", dir.path().join("data").display()),
    )
    .unwrap();
    let cfg = file.to_str().unwrap().to_owned();
    // The file alone.
    let p = spawn(&["--config", &cfg], &[]);
    wait_healthy(SocketAddr::from(([127, 0, 0, 1], p_file))).await;
    drop(p);
    // The environment wins over the file.
    let p = spawn(&["--config", &cfg], &[("SEALPOST_LISTEN", format!("127.0.0.1:{p_env}"))]);
    wait_healthy(SocketAddr::from(([127, 0, 0, 1], p_env))).await;
    drop(p);
    // A flag wins over both.
    let listen = format!("127.0.0.1:{p_flag}");
    let p = spawn(&["--config", &cfg, "--listen", &listen], &[("SEALPOST_LISTEN", format!("127.0.0.1:{p_env}"))]);
    wait_healthy(SocketAddr::from(([127, 0, 0, 1], p_flag))).await;
    drop(p);
    assert!(dir.path().join("data").join("sealpost.sqlite3").exists());
}

/// A deposit answered 201 is on disk: killing the process with SIGKILL
/// right after loses nothing.
#[tokio::test]
async fn acknowledged_deposits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listen = addr.to_string();
    let base = format!("http://{addr}");
    let mut proc = spawn(&["--listen", &listen, "--data-dir", &data], &[]);
    wait_healthy(addr).await;
    let mut rng = sealpost::os_rng();
    let alice = Account::new(&mut rng, common::NOW);
    let bob = Account::new(&mut rng, common::NOW);
    let ca = Client::new(&base, alice.relay_signer()).unwrap();
    let cb = Client::new(&base, bob.relay_signer()).unwrap();
    ca.publish_bundle(&alice.bundle(&SessionPolicy::default()).unwrap()).await.unwrap();
    cb.publish_bundle(&bob.bundle(&SessionPolicy::default()).unwrap()).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..50u32 {
        acked.extend(ca.deposit(&[cb.account()], &i.to_be_bytes()).await.unwrap());
    }
    proc.0.kill().unwrap(); // SIGKILL: no shutdown code runs
    proc.0.wait().unwrap();
    let _proc = spawn(&["--listen", &listen, "--data-dir", &data], &[]);
    wait_healthy(addr).await;
    let got = cb.pull(0, 1000).await.unwrap();
    let ids: Vec<i64> = got.iter().map(|m| m.id).collect();
    assert_eq!(ids, acked);
    assert_eq!(got[49].envelope, 49u32.to_be_bytes());
}

/// SIGTERM stops accepting, lets a request that is under way finish, and
/// exits cleanly.
#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen = addr.to_string();
    let base = format!("http://{addr}");
    let mut proc = spawn(&["--listen", &listen, "--data-dir", &data], &[]);
    wait_healthy(addr).await;
    let mut rng = sealpost::os_rng();
    let alice = Account::new(&mut rng, common::NOW);
    let ca = Client::new(&base, alice.relay_signer()).unwrap();
    ca.publish_bundle(&alice.bundle(&SessionPolicy::default()).unwrap()).await.unwrap();
    // A deposit to herself whose body is still being sent when SIGTERM comes.
    let body = serde_json::json!({
        "recipients": [sealpost_relay::client::account_id(alice.identity())],
        "envelope": "aW4gZmxpZ2h0",
    })
    .to_string();
    let auth = ca.sign("POST", "/v1/messages", body.as_bytes());
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: {auth}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = proc.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the old one finishes.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    s.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    let status = tokio::task::spawn_blocking(move || {
        let s = proc.0.wait().unwrap();
        std::mem::forget(proc);
        s
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
    // And the in-flight deposit was committed.
    let _p = spawn(&["--listen", &listen, "--data-dir", &data], &[]);
    wait_healthy(addr).await;
    let got = ca.pull(0, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope, b"in flight");
}

#[tokio::test]
async fn tls_serves_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let relay = common::start_with(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    let addr = relay.running.as_ref().unwrap().addr;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    for alpn in [b"http/1.1".to_vec(), b"h2".to_vec()] {
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.clone()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn.as_slice()));
        if alpn == b"http/1.1" {
            tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await.unwrap();
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await.unwrap();
            assert!(buf.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf));
        } else {
            let io = hyper_util::rt::TokioIo::new(tls);
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(conn);
            let req = hyper::Request::get("https://localhost/healthz")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.version(), hyper::Version::HTTP_2);
        }
    }
    // A client that does not trust the certificate cannot connect.
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    assert!(connector.connect(name, tcp).await.is_err());
}

fn proc_status(pid: u32, file: &str, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    text.lines().find(|l| l.starts_with(key)).unwrap().to_owned()
}

/// Issue 12 items 6, 7, 10: the relay raises its open-file limit to the
/// hard limit; idle push connections cost little memory (measured and
/// printed); and even at trace level the log holds no WebSocket frames.
#[tokio::test]
async fn fd_limit_raised_push_connections_are_small_and_frames_stay_out_of_logs() {
    use sealpost_relay::client::PushEvent;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = dir.path().join("relay.log");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -Sn 256; exec \"$0\" \"$@\"", BIN, "--listen", &addr.to_string(), "--data-dir", &data])
        .env("RUST_LOG", "trace")
        .env("SEALPOST_RATE_IP_BURST", "100000")
        .env("SEALPOST_RATE_ACCOUNT_BURST", "100000")
        .env("SEALPOST_WS_MAX_PER_ACCOUNT", "1000")
        .env("SEALPOST_MAX_CONNECTIONS_PER_ADDRESS", "1000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let proc = Proc(cmd.spawn().unwrap());
    let pid = proc.0.id();
    wait_healthy(addr).await;

    let limits = proc_status(pid, "limits", "Max open files");
    let nums: Vec<&str> = limits.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums[0], nums[1], "soft limit raised to the hard limit: {limits}");
    assert_ne!(nums[0], "256", "{limits}");

    let base = format!("http://{addr}");
    let mut rng = sealpost::os_rng();
    let alice = Account::new(&mut rng, common::NOW);
    let bob = Account::new(&mut rng, common::NOW);
    let ca = Client::new(&base, alice.relay_signer()).unwrap();
    let cb = Client::new(&base, bob.relay_signer()).unwrap();
    ca.publish_bundle(&alice.bundle(&SessionPolicy::default()).unwrap()).await.unwrap();
    cb.publish_bundle(&bob.bundle(&SessionPolicy::default()).unwrap()).await.unwrap();
    let mut push = cb.connect_push().await.unwrap();
    let secret = b"ciphertext-that-must-not-be-logged-0123456789".repeat(4);
    ca.deposit(&[cb.account()], &secret).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), push.next()).await.unwrap().unwrap().unwrap();
    let PushEvent::Message(m) = got else { panic!("{got:?}") };
    assert_eq!(m.envelope, secret);
    push.ack(&[m.id]).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), push.next()).await.unwrap();

    // Memory per idle push connection.
    let rss = || {
        let l = proc_status(pid, "status", "VmRSS:");
        l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    let mut conns = Vec::new();
    for _ in 0..20 {
        conns.push(cb.connect_push().await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss();
    const N: u64 = 300;
    for _ in 0..N {
        conns.push(cb.connect_push().await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_conn_kib = rss().saturating_sub(before) as f64 / N as f64;
    eprintln!("relay memory per idle push connection: {per_conn_kib:.1} KiB (VmRSS over {N} connections)");
    assert!(per_conn_kib < 48.0, "{per_conn_kib} KiB per idle connection");
    drop(conns);
    drop(proc);

    let text = std::fs::read_to_string(&log).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&secret);
    assert!(!text.contains(&b64[..40]), "the envelope's base64 is in the log");
    assert!(!text.contains("ciphertext-that-must-not"), "the envelope is in the log");
}
