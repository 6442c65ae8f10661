//! The PostgreSQL load benchmark's baseline: a minimal hyper server that
//! stores each POSTed body with one `INSERT` on a pooled connection
//! (deadpool-postgres, as many connections as the relay's default pool)
//! and answers 201 only after the commit, with the server's
//! `synchronous_commit` (on: flushed to the WAL) like the relay's
//! deposits. No parsing, no authentication, no limits, no delivery: the
//! floor of what a durable deposit into PostgreSQL costs on this machine.
//!
//! `cargo run --release -p sealpost-relay --example baseline_pg -- 127.0.0.1:9091 postgres://…`

use std::convert::Infallible;

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_postgres::NoTls;

/// The relay's default `database_pool_size`.
const POOL: usize = 16;

async fn store(pool: &Pool, body: &[u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = pool.get().await?;
    let insert = client.prepare_cached("INSERT INTO bodies (body) VALUES ($1)").await?;
    client.execute(&insert, &[&body]).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9091".into());
    let url = args.next().ok_or("usage: baseline_pg ADDR postgres://URL")?;
    let config: tokio_postgres::Config = url.parse()?;
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager).max_size(POOL).build()?;
    pool.get()
        .await?
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bodies (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body bytea NOT NULL);
             ALTER TABLE bodies ALTER COLUMN body SET STORAGE EXTERNAL;",
        )
        .await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("baseline_pg listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let pool = pool.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let pool = pool.clone();
                async move {
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    // Its own task, as the relay's store calls: a client
                    // that goes away cannot cancel a commit.
                    let stored = tokio::spawn(async move { store(&pool, &body).await.is_ok() }).await.unwrap_or(false);
                    let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
                    *resp.status_mut() = if stored { StatusCode::CREATED } else { StatusCode::INTERNAL_SERVER_ERROR };
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
