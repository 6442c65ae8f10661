//! # sealpost-relay
//!
//! The reference relay of Sealpost: a hyper server that keeps prekey
//! bundles and mailboxes of sealed envelopes it cannot read, binds human
//! handles to identity keys, and pushes new envelopes over WebSockets.
//! [`client`] is a Rust client for its API.

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod handles;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod store;
pub mod ws;

pub use config::Config;
pub use server::Running;
