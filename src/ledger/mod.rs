//! The output CSV, which is also the ledger that makes re-runs safe.
//!
//! - [`record`]: the columns and one row's record;
//! - [`prior`]: reading an existing ledger and looking rows up in it; [`index`]: the pass
//!   that indexes it; [`fast_index`]: the one fast path, for a re-run over a big ledger;
//! - [`append`]: appending records durably as answers arrive;
//! - [`rewrite`]: the atomic rewrite in input order at the end;
//! - [`lock`]: one run at a time per ledger;
//! - [`rescue`]: created checkouts a failed write left out, saved for the next run.
//!
//! Records are found by their byte offset in the file, which never leaves this module:
//! others hold a [`PriorRef`]. Every path given here is first resolved to the file it
//! names ([`real_path`]), so a symlinked ledger is locked and written through to its target.

mod append;
mod fast_index;
mod index;
mod lock;
mod prior;
mod record;
mod rescue;
mod rewrite;

use std::path::{Path, PathBuf};

pub use append::{Entry, EntrySender, FinishError, Unrecorded, Writer};
pub use lock::Lock;
pub use prior::Prior;
pub use record::{neutralise, now_rfc3339, reissued_request_id, Record, Status, COLUMNS};
pub use rescue::{rescued_warning, take_rescued};
pub use rewrite::{normalise, read_all, write_all};

/// A record's byte offset in its ledger file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span(u64);

impl Span {
    const NONE: Span = Span(u64::MAX);

    fn is_none(self) -> bool {
        self == Span::NONE
    }
}

/// A record of the existing ledger, as [`Prior`] found it: given back to the [`Writer`] to
/// keep or retire that record. What it holds is the ledger's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorRef(Span);

/// A problem with a ledger file. An existing ledger is never overwritten when reading it fails.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{}:{line}: {message}\n  the output file was left as it is; fix it or move it away (or use --out)", path.display())]
    Damaged {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: cannot {doing}: {source}", path.display())]
    Io {
        path: PathBuf,
        doing: &'static str,
        source: std::io::Error,
    },
    #[error("{} is {kind}, not a file: the output must be a regular file (nothing was sent)", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{} is in use by another creem-batch run (pid {holder}); wait for it to finish, or use another --out (nothing was sent)", path.display())]
    InUse { path: PathBuf, holder: String },
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
}

impl LedgerError {
    fn io<'p>(
        path: &'p Path,
        doing: &'static str,
    ) -> impl FnOnce(std::io::Error) -> LedgerError + 'p {
        move |source| LedgerError::Io {
            path: path.to_path_buf(),
            doing,
            source,
        }
    }

    fn damaged(path: &Path, line: u64, message: String) -> LedgerError {
        LedgerError::Damaged {
            path: path.to_path_buf(),
            line,
            message,
        }
    }
}

/// The file `path` names: symlinks followed (a dangling one to the file it would create).
/// Anything but a regular file, or nothing yet, is refused: a FIFO would hang the run and a
/// device swallow it.
fn real_path(path: &Path) -> Result<PathBuf, LedgerError> {
    let mut real = path.to_path_buf();
    // A chain of symlinks, some perhaps dangling: followed a bounded number of times.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&real) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&real).map_err(LedgerError::io(path, "read"))?;
                real = match real.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Ok(meta) => {
                let kind = meta.file_type();
                let refused = if kind.is_dir() {
                    "a directory"
                } else if let Some(special) = crate::platform::special_file(&kind) {
                    special
                } else {
                    return Ok(real);
                };
                return Err(LedgerError::NotAFile {
                    path: path.to_path_buf(),
                    kind: refused,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(real),
            Err(e) => return Err(LedgerError::io(path, "read")(e)),
        }
    }
    Err(LedgerError::NotAFile {
        path: path.to_path_buf(),
        kind: "a loop of symlinks",
    })
}

/// The header line of this version's layout.
fn header() -> csv::ByteRecord {
    csv::ByteRecord::from(COLUMNS.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_a_directory_or_a_device_is_refused_and_a_symlink_followed() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.csv");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        if status.is_ok_and(|s| s.success()) {
            let err = real_path(&fifo).unwrap_err().to_string();
            assert!(err.contains("is a FIFO, not a file"), "{err}");
        }
        let err = real_path(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory, not a file"), "{err}");
        #[cfg(unix)]
        {
            let err = real_path(Path::new("/dev/zero")).unwrap_err().to_string();
            assert!(err.contains("is a device, not a file"), "{err}");
        }

        let target = dir.path().join("real.csv");
        let link = dir.path().join("link.csv");
        crate::platform::symlink(Path::new("real.csv"), &link).unwrap();
        assert_eq!(real_path(&link).unwrap(), target, "dangling: its target");
        std::fs::write(&target, "x").unwrap();
        assert_eq!(real_path(&link).unwrap(), target);
    }
}

#[cfg(test)]
mod writer_tests;
