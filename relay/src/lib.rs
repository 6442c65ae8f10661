//! # sealpost-relay
//!
//! The reference relay of Sealpost: a hyper server that keeps prekey
//! bundles and mailboxes of sealed envelopes it cannot read, binds human
//! handles to identity keys, and pushes new envelopes over WebSockets.
//!
//! The library exposes what the binary, the tests and the benches need:
//! [`Config`] (with its command line, [`config::Cli`], and the list of
//! settings), [`Running`] (a relay in this process) and the [`Clock`] it
//! can be given, [`serve_until`] and [`tls_acceptor`] (the binary's loop),
//! the code sinks, the crate's [`Error`], and [`client`], a Rust client of
//! the API over `sealpost-client`. The server's modules are private.

mod api;
mod auth;
pub mod client;
mod clock;
pub mod config;
mod cors;
mod disk;
mod error;
mod files;
mod handles;
mod hub;
mod inflight;
mod limits;
mod metrics;
mod mqtt;
mod server;
mod shards;
mod status;
mod store;
mod ws;

pub use clock::Clock;
pub use config::Config;
pub use error::{CodeDeliveryFault, Error, TlsFault};
pub use handles::{CodeSink, DeliverFuture, MemorySink};
pub use server::{Running, serve_until, tls_acceptor};

#[doc(hidden)]
pub mod testing;

/// The relay's input parsing, for the fuzz targets only.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::api::check_body;
    pub use crate::auth::{NonceCache, Sessions};
    pub use crate::handles::normalize_handle;
}
