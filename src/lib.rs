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
pub mod customers;
pub mod diagnostic;
pub mod exit;
pub mod json;
pub mod ledger;
mod platform;
pub mod progress;
pub mod render;
pub mod sandbox;
pub mod sender;
pub mod signature;
pub mod target;
pub mod template;
