//! Helpers shared by the integration tests: temp dirs, running the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The compiled `creem-batch` binary, built by cargo for the integration tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_creem-batch"))
}

/// Runs the binary with `args` in `dir`, without any inherited Creem variables.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("CREEM_API_KEY")
        .env_remove("CREEM_API_BASE")
        .output()
        .expect("run creem-batch")
}
pub mod sandbox;
