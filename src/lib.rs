//! creem-batch as a library. The modules follow the flow of a batch:
//!
//! campaign (YAML) -> customers (CSV rows) -> render (request bodies, request_id)
//! -> sender (rate limit, concurrency, retries) -> ledger (the output CSV).
//!
//! `batch` ties the first three together for every command; `sandbox` is a local stand-in
//! for the Creem API; `signature` verifies what Creem sends back (redirects and webhooks).
//! `commands` holds one function per CLI command.

pub mod api_key;
pub mod batch;
pub mod campaign;
pub mod cli;
pub mod commands;
pub(crate) mod conversion;
pub(crate) mod customers;
pub(crate) mod diagnostic;
pub(crate) mod escape;
pub mod exit;
pub mod export;
pub(crate) mod grouping;
pub mod http;
pub mod ledger;
pub(crate) mod plan;
mod platform;
pub mod preflight;
pub(crate) mod progress;
pub(crate) mod render;
pub(crate) mod report;
pub mod sandbox;
pub(crate) mod sender;
pub mod signature;
pub(crate) mod sync;
pub(crate) mod target;
pub(crate) mod template;
pub(crate) mod waves;

/// The default request_id rule, for a backend that must derive the same ids.
pub use render::{default_request_id, default_request_id_of, is_email_column};
