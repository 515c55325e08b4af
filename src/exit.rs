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

/// A write to stdout that found the reader gone (`... | head -1`) counts as done: the
/// command goes on and its exit code still says what it found (as ripgrep does).
pub fn quiet_on_broken_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A writer that drops what it is given once its reader has gone (a broken pipe), so a
/// report cut short by `| head` still ends with the command's own exit code.
pub struct QuietPipe<W> {
    inner: W,
    closed: bool,
}

impl<W: std::io::Write> QuietPipe<W> {
    pub fn new(inner: W) -> QuietPipe<W> {
        QuietPipe {
            inner,
            closed: false,
        }
    }
}

impl<W: std::io::Write> std::io::Write for QuietPipe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        quiet_on_broken_pipe(self.inner.flush())
    }
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
    2
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Accepts `room` bytes, then reports a closed pipe.
    struct Pipe {
        got: Vec<u8>,
        room: usize,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.got.len() + buf.len() > self.room {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_quiet_and_other_errors_are_not() {
        let mut out = QuietPipe::new(Pipe {
            got: Vec::new(),
            room: 6,
        });
        writeln!(out, "first").unwrap();
        writeln!(out, "second").unwrap();
        writeln!(out, "third").unwrap();
        out.flush().unwrap();
        assert_eq!(out.inner.got, b"first\n");
        assert!(quiet_on_broken_pipe(Err(std::io::ErrorKind::BrokenPipe.into())).is_ok());
        assert!(quiet_on_broken_pipe(Err(std::io::ErrorKind::Other.into())).is_err());
    }
}
