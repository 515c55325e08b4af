//! Thin entry point: parse arguments, call the library, turn the outcome into an exit code.
//! Every exit code the tool can produce is decided in `creem_batch::exit`, so this file
//! stays free of policy.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = creem_batch::cli::Cli::parse();
    let code = match creem_batch::commands::dispatch(cli) {
        Ok(outcome) => outcome.code(),
        Err(err) => creem_batch::exit::report(&err),
    };
    std::process::ExitCode::from(code)
}
