//! Exit codes and top-level error printing, in one place (as ripgrep does).
//!
//! 0: every row created or already done (or: all valid, for `check`)
//! 1: some rows failed or were invalid; the others were still handled
//! 2: bad campaign, CSV or usage: nothing was sent
//! 3: run aborted: authentication rejected, or the same permanent error kept repeating
//! 130: interrupted

use std::fmt;

/// What a command ended with when it did not hit an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Success,
    /// Some rows failed or were invalid (or, for `verify-redirect`, the signature is wrong).
    Partial,
    /// The run stopped on purpose before the end (authentication rejected, systematic error).
    Aborted,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Partial => 1,
            Outcome::Aborted => 3,
            Outcome::Interrupted => 130,
        }
    }
}

/// An error whose exit code is not the default 2.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// Stopped before finishing: the run is worth resuming, but something must be fixed first.
    #[error("{0}")]
    Aborted(String),
}

/// Prints `err` (with its causes) to stderr and returns the exit code for it.
pub fn report(err: &anyhow::Error) -> u8 {
    if is_broken_pipe(err) {
        // The reader of our output went away (`creem-batch run --dry-run ... | head`): that
        // is how such a pipe ends, not an error worth a message (as ripgrep does).
        return 0;
    }
    if let Some(diagnostics) = err.downcast_ref::<crate::diagnostic::Diagnostics>() {
        // Already formatted like a compiler error, with their own "error:" lines.
        eprintln!("{diagnostics}");
        return 2;
    }
    if let Some(diagnostic) = err.downcast_ref::<crate::diagnostic::Diagnostic>() {
        eprintln!("{diagnostic}");
        return 2;
    }
    eprintln!("creem-batch: {}", Chain(err));
    match err.downcast_ref::<Fatal>() {
        Some(Fatal::Aborted(_)) => 3,
        None => 2,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

struct Chain<'a>(&'a anyhow::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        for cause in self.0.chain().skip(1) {
            write!(f, "\n  caused by: {cause}")?;
        }
        Ok(())
    }
}
