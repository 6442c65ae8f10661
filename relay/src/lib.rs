//! # sealpost-relay
//!
//! The reference relay of Sealpost: a hyper server that keeps prekey
//! bundles and mailboxes of sealed envelopes it cannot read, binds human
//! handles to identity keys, and pushes new envelopes over WebSockets.
//!
//! The library exposes what the binary, the tests and the benches need:
//! [`Config`] (with its command line, [`config::Cli`]), [`Running`] (a relay
//! in this process), [`serve_until`] and [`tls_acceptor`] (the binary's
//! loop), the code sinks, and [`client`], a Rust client of the API over
//! `sealpost-client`. The server's modules are private.

mod api;
mod auth;
pub mod client;
pub mod config;
mod error;
mod handles;
mod hub;
mod limits;
mod metrics;
mod server;
mod store;
mod ws;

pub use config::Config;
pub use handles::{CodeSink, MemorySink};
pub use server::{Running, serve_until, tls_acceptor};

/// The relay's input parsing, for the fuzz targets only.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::api::check_body;
    pub use crate::auth::{NonceCache, Sessions};
    pub use crate::handles::normalize_handle;
}
