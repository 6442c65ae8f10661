//! `sealpost-relay`: run the relay. `--help` explains every setting.

use clap::Parser;
use sealpost_relay::config::{Cli, Config, LogFormat};
use sealpost_relay::{Error, serve_until, tls_acceptor};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let config = match Config::load(Cli::parse(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sealpost-relay: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // tungstenite logs whole frames (ciphertext) at trace and debug level:
    // never let them into the log, whatever RUST_LOG says.
    let filter = ["tungstenite=info", "tokio_tungstenite=info"]
        .into_iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, EnvFilter::add_directive);
    match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sealpost-relay: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sealpost-relay: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Error> {
    // Each connection costs a file descriptor: take all the kernel allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            let needed = u64::try_from(config.max_connections).unwrap_or(u64::MAX).saturating_add(64);
            if n < needed {
                tracing::warn!(
                    open_files = n,
                    max_connections = config.max_connections,
                    "open-file limit below max_connections"
                );
            } else {
                tracing::info!(open_files = n, "open-file limit");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io(format!("listening on {}", config.listen), e))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The bound address (port 0 in the settings picks a free port).
    let address = listener.local_addr().map_err(|e| Error::io("reading the bound address", e))?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "sealpost relay listening on {scheme}://{address}");
    serve_until(config, listener, tls, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
