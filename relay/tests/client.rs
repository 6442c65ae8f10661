//! The Rust client against a scripted relay on a loopback socket: what it
//! sends when the relay answers `session_expired` or `unknown_session` to
//! a deposit, checked request by request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sealpost_client::{Deposited, ErrorCode, RelayError, SessionOpened};
use sealpost_relay::client::Client;

/// What the scripted relay saw: method, path and `Authorization` scheme.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A relay that answers each request with the next scripted (status, body)
/// and records what came.
async fn scripted(answers: Vec<(u16, Vec<u8>)>) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (log, answers) = (Arc::clone(&log), Arc::clone(&answers));
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let scheme = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(' ').next())
                    .unwrap_or("")
                    .to_owned();
                log.lock().unwrap().push((req.method().to_string(), req.uri().path().to_owned(), scheme));
                let (status, body) = answers.lock().unwrap().pop_front().unwrap_or((599, b"script ended".to_vec()));
                let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
                *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                resp.headers_mut().insert("content-type", "application/json".parse().unwrap());
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (base, seen)
}

fn session(id: u8) -> (u16, Vec<u8>) {
    (201, SessionOpened::new([id; 16], &[id; 32], 3600).encode())
}

fn refusal(code: ErrorCode) -> (u16, Vec<u8>) {
    (code.status(), RelayError::new(code, "scripted").encode())
}

fn deposited(id: i64) -> (u16, Vec<u8>) {
    (201, Deposited { ids: vec![id] }.encode())
}

fn client(base: &str) -> Client {
    let account = sealpost::Account::new(&mut sealpost::os_rng(), 1_700_000_000);
    Client::new(base, account.relay_signer()).unwrap()
}

const OPEN: (&str, &str, &str) = ("POST", "/v1/sessions", "Sealpost");
const DEPOSIT: (&str, &str, &str) = ("POST", "/v1/messages", "SealpostSession");

fn seen_as(seen: &Seen) -> Vec<(String, String, String)> {
    seen.lock().unwrap().clone()
}

fn expect(steps: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    steps.iter().map(|(m, p, s)| ((*m).to_owned(), (*p).to_owned(), (*s).to_owned())).collect()
}

#[tokio::test]
async fn the_client_renews_its_relay_session_after_session_expired() {
    for code in [ErrorCode::SessionExpired, ErrorCode::UnknownSession] {
        let (base, seen) =
            scripted(vec![session(1), deposited(1), refusal(code), session(2), deposited(2), deposited(3)]).await;
        let c = client(&base);
        assert_eq!(c.deposit(&[[9; 32]], b"one").await.unwrap(), [1]);
        // Refused with `code`: a new session is opened and the deposit sent again.
        assert_eq!(c.deposit(&[[9; 32]], b"two").await.unwrap(), [2], "{code}");
        // The new session is kept for the next deposit.
        assert_eq!(c.deposit(&[[9; 32]], b"three").await.unwrap(), [3]);
        assert_eq!(seen_as(&seen), expect(&[OPEN, DEPOSIT, DEPOSIT, OPEN, DEPOSIT, DEPOSIT]), "{code}");
    }
}

#[tokio::test]
async fn the_client_renews_once_and_reports_a_second_refusal() {
    let (base, seen) =
        scripted(vec![session(1), refusal(ErrorCode::SessionExpired), session(2), refusal(ErrorCode::SessionExpired)])
            .await;
    let c = client(&base);
    let err = c.deposit(&[[9; 32]], b"x").await.unwrap_err();
    assert_eq!((err.code(), err.status()), (Some(ErrorCode::SessionExpired), Some(401)));
    assert_eq!(seen_as(&seen), expect(&[OPEN, DEPOSIT, OPEN, DEPOSIT]));
    // Other refusals are not retried.
    let (base, seen) = scripted(vec![session(1), refusal(ErrorCode::MailboxFull)]).await;
    let err = client(&base).deposit(&[[9; 32]], b"x").await.unwrap_err();
    assert_eq!((err.code(), err.status()), (Some(ErrorCode::MailboxFull), Some(507)));
    assert_eq!(seen_as(&seen), expect(&[OPEN, DEPOSIT]));
}

/// Transport failures keep their kind: a URL the client cannot speak, a
/// relay that cannot be reached, one that hangs up without answering, and
/// a push connection to something that is not a WebSocket server.
#[tokio::test]
async fn transport_failures_are_typed() {
    use sealpost_relay::client::{ClientError, TransportError};
    let signer = || sealpost::Account::new(&mut sealpost::os_rng(), 1_700_000_000).relay_signer();
    let kind = |e: ClientError| match e {
        ClientError::Transport(t) => t,
        other => panic!("not a transport failure: {other:?}"),
    };

    let Err(e) = Client::new("https://relay.example", signer()) else { panic!("https accepted") };
    assert!(matches!(*kind(e), TransportError::UnsupportedScheme));

    // Port 0 cannot be connected to.
    let client = Client::new("http://127.0.0.1:0", signer()).unwrap();
    let e = kind(client.fetch_bundle(&client.account()).await.unwrap_err());
    assert!(matches!(*e, TransportError::Http(_)), "{e:?}");

    // A server that closes every connection at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let client = Client::new(&base, signer()).unwrap();
    let e = kind(client.fetch_bundle(&client.account()).await.unwrap_err());
    assert!(matches!(*e, TransportError::Http(_)), "{e:?}");
    let Err(e) = client.connect_push().await else { panic!("a push connection to nothing") };
    let e = kind(e);
    assert!(matches!(*e, TransportError::WebSocket(_)), "{e:?}");
}
