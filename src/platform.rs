//! What differs between Unix and Windows, in one place: positional file reads, the file
//! identity check and the stop signals. Everything else in the crate is portable as written;
//! `.ci/portability.sh` fails on an OS-specific API used outside a `cfg`.

use std::fs::File;
use std::io;
use std::path::Path;

/// Reads at an offset without disturbing a sequential reader on the same file (the ledger
/// parses a file with a cloned handle while it reads records by offset).
pub(crate) trait ReadAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for File {
    #[cfg(unix)]
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }

    /// Windows' positional read moves the cursor, which a cloned handle shares: put it back.
    #[cfg(windows)]
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        use io::Seek;
        let mut file = self;
        let cursor = file.stream_position()?;
        let read = std::os::windows::fs::FileExt::seek_read(self, buf, offset);
        file.seek(io::SeekFrom::Start(cursor))?;
        read
    }
}

/// Whether `file` is still the file at `path` (not one deleted and created again meanwhile).
pub(crate) fn is_same_file(file: &File, path: &Path) -> bool {
    let handle = file.try_clone().and_then(same_file::Handle::from_file);
    match (handle, same_file::Handle::from_path(path)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What a file that is neither a regular file nor a directory is ("a FIFO", "a device"...):
/// an output that is one would hang the run or swallow the ledger. `None` for a regular file.
pub(crate) fn special_file(kind: &std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO");
        } else if kind.is_block_device() || kind.is_char_device() {
            return Some("a device");
        } else if kind.is_socket() {
            return Some("a socket");
        }
    }
    (!kind.is_file() && !kind.is_dir() && !kind.is_symlink()).then_some("not a regular file")
}

/// Whether two files have the same owner (Windows: always; its temp folder is per user).
pub(crate) fn same_owner(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.uid() == b.uid()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        true
    }
}

/// A symbolic link at `link` to `target` (tests of symlinked outputs).
#[cfg(test)]
pub(crate) fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, link);
    #[cfg(windows)]
    return std::os::windows::fs::symlink_file(target, link);
}

/// The requests to stop a run: Ctrl-C, and on Unix also SIGTERM (what `kill` and service
/// managers send). Windows has no SIGTERM; a closed console window ends the process at once.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl StopSignals {
    /// Installs the handlers now, so a signal that comes before the first `recv` is kept.
    /// Needs a Tokio runtime.
    pub(crate) fn install() -> anyhow::Result<StopSignals> {
        use anyhow::Context;
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).context("cannot watch for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?,
            })
        }
        #[cfg(windows)]
        {
            Ok(StopSignals {
                ctrl_c: tokio::signal::windows::ctrl_c().context("cannot watch for Ctrl-C")?,
            })
        }
    }

    /// Waits for the next stop request.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(windows)]
        self.ctrl_c.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_positional_read_leaves_a_sequential_reader_where_it_was() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        file.rewind().unwrap();
        let mut sequential = file.try_clone().unwrap();
        let mut first = [0u8; 3];
        sequential.read_exact(&mut first).unwrap();

        let mut at = [0u8; 4];
        file.read_exact_at(&mut at, 5).unwrap();
        assert_eq!(&at, b"5678");

        let mut rest = String::new();
        sequential.read_to_string(&mut rest).unwrap();
        assert_eq!((&first, rest.as_str()), (b"012", "3456789"));
    }

    #[test]
    fn read_exact_at_past_the_end_is_an_eof_error() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"abc").unwrap();
        let mut buf = [0u8; 2];
        let err = file.read_exact_at(&mut buf, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_file_is_the_same_as_its_path_until_the_path_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let file = File::create(&path).unwrap();
        assert!(is_same_file(&file, &path));

        std::fs::remove_file(&path).unwrap();
        assert!(!is_same_file(&file, &path), "no file at the path");
        // Keep the old file open so the new one cannot reuse its inode.
        let _new = File::create(&path).unwrap();
        assert!(!is_same_file(&file, &path), "another file at the path");
    }
}
