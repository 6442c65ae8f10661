//! The load benchmark's baseline: a minimal hyper server that stores each
//! POSTed body in SQLite (WAL, synchronous=FULL) with group commit and
//! answers 201 only after the commit. No parsing, no authentication, no
//! limits: the floor of what a durable deposit can cost on this machine.
//!
//! `cargo run --release -p sealpost-relay --example baseline -- 127.0.0.1:9090 DIR`

use std::convert::Infallible;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};

type Job = (Bytes, SyncSender<bool>);

fn open(dir: &str) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(format!("{dir}/baseline.sqlite3"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")?;
    Ok(conn)
}

fn writer(dir: String, rx: Receiver<Job>) {
    let conn = match open(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("baseline: opening the database: {e}");
            std::process::exit(1);
        }
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(j) = rx.try_recv() {
            batch.push(j);
            if batch.len() >= 512 {
                break;
            }
        }
        let ok = (|| -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO bodies (body) VALUES (?1)")?;
                for (body, _) in &batch {
                    stmt.execute([body.as_ref()])?;
                }
            }
            tx.commit()
        })()
        .is_ok();
        for (_, reply) in batch {
            let _ = reply.send(ok);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9090".into());
    let dir = args.next().unwrap_or_else(|| ".".into());
    let (tx, rx) = sync_channel::<Job>(4096);
    std::thread::spawn(move || writer(dir, rx));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("baseline listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let tx = tx.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let tx = tx.clone();
                async move {
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let (reply, answer) = sync_channel(1);
                    let stored = tx.send((body, reply)).is_ok()
                        && tokio::task::spawn_blocking(move || answer.recv().unwrap_or(false)).await.unwrap_or(false);
                    let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
                    if stored {
                        *resp.status_mut() = StatusCode::CREATED;
                    } else {
                        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
