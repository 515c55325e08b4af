//! The one integration test binary (ripgrep-style): each module tests one command or stage
//! through the real binary or the library's public API.

mod common;

mod check;
mod dry_run;
mod examples;
mod init;
mod output;
mod platform;
mod reconcile;
mod resilience;
mod run;
mod sandbox;
mod schema;
mod signature;
mod status;
mod verify_redirect;
