//! What a page in a browser needs from the relay, over real loopback
//! sockets: CORS preflights and headers for the allowed origins only, the
//! WebSocket upgrade from an allowed origin or the relay's own, and a
//! static directory with the right content types that never leaves its
//! directory nor shadows the API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{start_with, user};
use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAGE: &str = "https://chat.example";

/// Sends `request` (a whole HTTP/1.1 request) as is, without any
/// client-side path normalization, and returns the whole answer.
async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

fn header<'a>(r: &'a sealpost_relay::client::RawResponse, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

fn preflight_headers(origin: &str) -> Vec<(&'static str, String)> {
    vec![
        ("origin", origin.to_owned()),
        ("access-control-request-method", "POST".to_owned()),
        ("access-control-request-headers", "authorization, content-type".to_owned()),
    ]
}

#[tokio::test]
async fn preflights_are_answered_for_allowed_origins_only() {
    let relay = start_with(|c| c.cors_allowed_origins = vec![PAGE.to_owned(), "http://127.0.0.1:5173".into()]).await;
    let alice = user(&relay, 0).await;
    for origin in [PAGE, "http://127.0.0.1:5173"] {
        let r =
            alice.client.raw(Method::OPTIONS, "/v1/messages", &preflight_headers(origin), vec![], false).await.unwrap();
        assert_eq!(r.status, 204, "{origin}");
        assert_eq!(header(&r, "access-control-allow-origin"), Some(origin));
        assert_eq!(header(&r, "access-control-allow-methods"), Some("GET, POST"));
        assert_eq!(header(&r, "access-control-allow-headers"), Some("authorization, content-type"));
        assert_eq!(header(&r, "access-control-max-age"), Some("600"));
        assert!(header(&r, "vary").unwrap().contains("origin"));
        assert_eq!(header(&r, "access-control-allow-credentials"), None, "no cookies are involved");
    }
    // Other origins, near misses included, get no CORS header at all: the
    // preflight is routed like any OPTIONS request (405 here).
    for origin in
        ["https://evil.example", "https://chat.example:443", "http://chat.example", "https://chat.example.evil", "null"]
    {
        let r =
            alice.client.raw(Method::OPTIONS, "/v1/messages", &preflight_headers(origin), vec![], false).await.unwrap();
        assert_eq!(r.status, 405, "{origin}");
        assert_eq!(r.json()["error"]["code"], "method_not_allowed");
        assert!(r.headers.keys().all(|k| !k.as_str().starts_with("access-control-")), "{origin}: {:?}", r.headers);
        assert!(header(&r, "vary").unwrap().contains("origin"), "answers vary with Origin while CORS is on");
    }
}

#[tokio::test]
async fn real_responses_carry_cors_headers_for_allowed_origins() {
    let relay = start_with(|c| {
        c.cors_allowed_origins = vec![PAGE.to_owned()];
        c.rate_account_per_sec = 0.01;
        c.rate_account_burst = 3.0;
    })
    .await;
    let alice = user(&relay, 0).await; // one request of the burst
    let from = |o: &str| vec![("origin", o.to_owned())];
    // A signed pull from the page: readable.
    let r = alice.client.raw(Method::GET, "/v1/messages?after=0&limit=5", &from(PAGE), vec![], true).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PAGE));
    assert_eq!(header(&r, "vary"), Some("origin"));
    // An error answer too, with Retry-After exposed to the page.
    let _ = alice.client.raw(Method::GET, "/v1/messages?after=0&limit=5", &from(PAGE), vec![], true).await.unwrap();
    let r = alice.client.raw(Method::GET, "/v1/messages?after=0&limit=5", &from(PAGE), vec![], true).await.unwrap();
    assert_eq!((r.status.as_u16(), r.json()["error"]["code"].as_str()), (429, Some("rate_limited")));
    assert_eq!(header(&r, "access-control-allow-origin"), Some(PAGE));
    assert_eq!(header(&r, "access-control-expose-headers"), Some("retry-after, allow"));
    assert_eq!(header(&r, "retry-after"), Some("100"));
    // Another origin: the same answer, without CORS headers.
    let r = alice.client.raw(Method::GET, "/healthz", &from("https://evil.example"), vec![], false).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert_eq!(header(&r, "vary"), Some("origin"));
}

#[tokio::test]
async fn by_default_no_origin_is_allowed() {
    let relay = start_with(|_| {}).await;
    let alice = user(&relay, 0).await;
    let r = alice.client.raw(Method::OPTIONS, "/v1/messages", &preflight_headers(PAGE), vec![], false).await.unwrap();
    assert_eq!(r.status, 405);
    let r = alice.client.raw(Method::GET, "/healthz", &[("origin", PAGE.to_owned())], vec![], false).await.unwrap();
    assert!(r.headers.keys().all(|k| !k.as_str().starts_with("access-control-")));
    assert_eq!(header(&r, "vary"), None);
}

/// A signed WebSocket upgrade sent by hand with an `Origin` header, as a
/// browser sends it (`auth` in the query: browsers cannot set headers).
async fn upgrade_from(
    relay: &common::TestRelay,
    account: &sealpost::Account,
    origin: Option<&str>,
    host: &str,
) -> String {
    use sealpost_client::Request;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let nonce: [u8; 16] = rand_nonce();
    let auth = Request::websocket().authorize(&account.relay_signer(), ts, &nonce);
    let auth: String = auth
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let origin = origin.map(|o| format!("origin: {o}\r\n")).unwrap_or_default();
    let req = format!(
        "GET /v1/ws?auth={auth} HTTP/1.1\r\nhost: {host}\r\n{origin}upgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    );
    let addr = relay.running.as_ref().unwrap().addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn rand_nonce() -> [u8; 16] {
    use rand_core::Rng;
    let mut n = [0u8; 16];
    sealpost::os_rng().fill_bytes(&mut n);
    n
}

#[tokio::test]
async fn websocket_upgrades_from_a_page_need_an_allowed_or_the_relays_own_origin() {
    let relay = start_with(|c| c.cors_allowed_origins = vec![PAGE.to_owned()]).await;
    let bob = user(&relay, 0).await;
    let own = relay.running.as_ref().unwrap().addr.to_string();
    let r = upgrade_from(&relay, &bob.account, Some(PAGE), &own).await;
    assert!(r.starts_with("HTTP/1.1 101"), "an allowed origin: {r}");
    let r = upgrade_from(&relay, &bob.account, Some(&format!("http://{own}")), &own).await;
    assert!(r.starts_with("HTTP/1.1 101"), "the relay's own origin: {r}");
    let r = upgrade_from(&relay, &bob.account, None, &own).await;
    assert!(r.starts_with("HTTP/1.1 101"), "not a browser: {r}");
    let r = upgrade_from(&relay, &bob.account, Some("https://evil.example"), &own).await;
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    assert!(r.contains("\"origin_not_allowed\""), "{r}");
    assert!(!r.to_ascii_lowercase().contains("access-control-allow-origin"), "{r}");
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir_all(root.join("chat")).unwrap();
    for (name, body) in [
        ("index.html", "<!doctype html><title>chat</title>"),
        ("app.js", "export const x = 1;"),
        ("app.mjs", "export const y = 2;"),
        ("style.css", "body{}"),
        ("data.json", "{}"),
        ("logo.svg", "<svg/>"),
        ("logo.png", "\u{89}PNG"),
        ("chat/index.html", "<p>room</p>"),
        (".hidden", "secret"),
    ] {
        std::fs::write(root.join(name), body).unwrap();
    }
    std::fs::write(root.join("sealpost_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "must not be served").unwrap();
    dir
}

#[tokio::test]
async fn a_static_directory_is_served_with_content_types_and_never_escapes() {
    let files = site();
    let root = files.path().join("site");
    let relay = start_with(|c| c.static_dir = Some(root.clone())).await;
    let alice = user(&relay, 0).await;
    for (path, ct, body) in [
        ("/index.html", "text/html; charset=utf-8", &b"<!doctype html><title>chat</title>"[..]),
        ("/chat/", "text/html; charset=utf-8", b"<p>room</p>"),
        ("/app.js", "text/javascript; charset=utf-8", b"export const x = 1;"),
        ("/app.mjs", "text/javascript; charset=utf-8", b"export const y = 2;"),
        ("/sealpost_bg.wasm", "application/wasm", b"\0asm\x01\0\0\0"),
        ("/style.css", "text/css; charset=utf-8", b"body{}"),
        ("/data.json", "application/json", b"{}"),
        ("/logo.svg", "image/svg+xml", b"<svg/>"),
        ("/logo.png", "image/png", "\u{89}PNG".as_bytes()),
    ] {
        let r = alice.client.raw(Method::GET, path, &[], vec![], false).await.unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(header(&r, "content-type"), Some(ct), "{path}");
        assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(&r.body[..], body, "{path}");
    }
    let r = alice.client.raw(Method::HEAD, "/app.js", &[], vec![], false).await.unwrap();
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 0));
    assert_eq!(header(&r, "content-length"), Some("19"));
    // Missing files, hidden files and every way out of the directory: 404 JSON.
    let addr = relay.running.as_ref().unwrap().addr;
    for path in [
        "/missing.html",
        "/.hidden",
        "/../outside.txt",
        "/chat/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/%2E%2E%2Foutside.txt",
        "/chat%2f..%2f..%2foutside.txt",
        "/..%5coutside.txt",
        "/chat/%2e%2e/%2e%2e/outside.txt",
        "//outside.txt",
    ] {
        let answer = raw_http(addr, &format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
        assert!(answer.contains("application/json") && answer.contains("\"no_such_route\""), "{path}: {answer}");
        assert!(!answer.contains("must not be served") && !answer.contains("secret"), "{path}: {answer}");
    }
    // A symbolic link out of the directory is not followed out of it.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(files.path().join("outside.txt"), root.join("link.txt")).unwrap();
        let r = alice.client.raw(Method::GET, "/link.txt", &[], vec![], false).await.unwrap();
        assert_eq!(r.status, 404);
    }
    // The API keeps its routes: /, /healthz, /metrics and /v1/... are never files.
    for name in ["healthz", "metrics", "v1"] {
        std::fs::write(root.join(name), "shadow").unwrap();
    }
    let r = alice.client.raw(Method::GET, "/healthz", &[], vec![], false).await.unwrap();
    assert_eq!(&r.body[..], b"{\"status\":\"ok\"}");
    let r = alice.client.raw(Method::GET, "/metrics", &[], vec![], false).await.unwrap();
    assert!(header(&r, "content-type").unwrap().starts_with("text/plain"));
    let r = alice.client.raw(Method::GET, "/", &[], vec![], false).await.unwrap();
    assert!(String::from_utf8_lossy(&r.body).contains("Sealpost relay"), "/ is the status page");
    let r = alice.client.raw(Method::GET, "/v1/nothing", &[], vec![], false).await.unwrap();
    assert_eq!((r.status.as_u16(), r.json()["error"]["code"].as_str()), (404, Some("no_such_route")));
    // Only GET and HEAD read files.
    let r = alice.client.raw(Method::POST, "/index.html", &[], vec![], false).await.unwrap();
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn without_a_static_directory_no_file_is_served() {
    let files = site();
    let relay = start_with(|_| {}).await;
    let _ = files;
    let alice = user(&relay, 0).await;
    let r = alice.client.raw(Method::GET, "/index.html", &[], vec![], false).await.unwrap();
    assert_eq!((r.status.as_u16(), r.json()["error"]["code"].as_str()), (404, Some("no_such_route")));
}
