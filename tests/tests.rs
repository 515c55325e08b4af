//! The one integration test binary (ripgrep-style): each module tests one command or stage
//! through the real binary or the library's public API.

mod common;

mod check;
mod completions;
mod dry_run;
mod examples;
mod export;
mod files;
mod hostile;
mod hosts_and_keys;
mod init;
mod lifecycle;
mod output;
mod platform;
mod preflight;
mod reconcile;
mod redirect_rules;
mod report;
mod resilience;
mod run;
mod sandbox;
mod schema;
mod signature;
mod status;
mod targets;
mod teaching;
mod tls;
mod verify_redirect;

// Issue 21: the sandbox's checkout page, redirects, webhooks and catalogue.
mod browser;
mod journey;
mod sandbox_api;
mod sandbox_catalog;
mod sandbox_schema;
