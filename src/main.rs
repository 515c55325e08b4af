//! Thin entry point: parse arguments, call the library, turn the outcome into an exit code.
//! Every exit code the tool can produce is decided in `creem_batch::exit`, so this file
//! stays free of policy.

use clap::Parser;

/// mimalloc instead of the system allocator: rows are allocated on the reading and rendering
/// threads and freed on the sending or printing one, and glibc's per-thread arenas pay for
/// that hand-off with locks, trims and `mprotect` calls (hundreds per 20,000 requests).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = creem_batch::cli::Cli::parse();
    let code = match creem_batch::commands::dispatch(cli) {
        Ok(outcome) => outcome.code(),
        Err(err) => creem_batch::exit::report(&err),
    };
    std::process::ExitCode::from(code)
}
