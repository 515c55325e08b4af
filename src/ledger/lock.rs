//! One run at a time per ledger: an exclusive lock on `<ledger>.lock` beside the file the
//! output path names (symlinks followed, so two paths to one ledger share one lock).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{real_path, LedgerError};
use crate::platform::is_same_file;

/// Holds the lock for as long as it lives. The OS releases the lock when the process dies,
/// so a lock left by a crashed run never blocks the next one.
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    pub fn acquire(output: &Path) -> Result<Lock, LedgerError> {
        let real = real_path(output)?;
        let mut name = real.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let path = real.with_file_name(name);
        let io = |doing| LedgerError::io(&path, doing);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("create its folder"))?;
        }
        let mut tries = 0;
        let mut file = loop {
            tries += 1;
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io("create the lock file"))?;
            if !fs4::fs_std::FileExt::try_lock_exclusive(&file).unwrap_or(false) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(LedgerError::InUse {
                    path: output.to_path_buf(),
                    holder: super::record::shown(holder.trim()),
                });
            }
            // The run that held the lock deletes the file as it ends. If it did so between our
            // open and our lock, we hold a lock on a file no other run will see: start over
            // (a few times: a file system without stable inode numbers must not loop forever).
            if tries >= 5 || is_same_file(&file, &path) {
                break file;
            }
        };
        file.set_len(0).map_err(io("write"))?;
        file.write_all(std::process::id().to_string().as_bytes())
            .map_err(io("write"))?;
        Ok(Lock { _file: file, path })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_to_a_locked_ledger_finds_it_locked() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("results.csv");
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("link.csv");
        crate::platform::symlink(&real, &link).unwrap();
        let held = Lock::acquire(&real).unwrap();
        let err = Lock::acquire(&link).err().expect("refused").to_string();
        assert!(
            err.contains("link.csv is in use by another creem-batch run"),
            "{err}"
        );
        drop(held);
        assert!(Lock::acquire(&link).is_ok());
    }
}
