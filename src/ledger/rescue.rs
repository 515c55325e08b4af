//! Created checkouts a run could not write to its ledger (disk full, I/O error, a read-only
//! file system): saved in the temp folder, another disk than a full one with luck, and added
//! to the ledger by the next run on it, so that the resume does not create them again.
//!
//! The rescue file is named after the ledger's canonical path, so the next run finds it
//! whatever path it is given; it holds whole ledger records under the ledger's header.

use std::fs::OpenOptions;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::append::Writer;
use super::prior::Prior;
use super::record::{Record, Status};
use super::rewrite::read_all;
use super::{header, real_path, LedgerError};

/// Where the checkouts the ledger at `ledger` could not hold are saved.
pub(super) fn rescue_path(ledger: &Path) -> Result<PathBuf, LedgerError> {
    let real = real_path(ledger)?;
    // The folder canonical (it exists: the ledger was written in it), the name as it is.
    let dir = real.parent().filter(|d| !d.as_os_str().is_empty());
    let canonical = match dir.map(std::fs::canonicalize) {
        Some(Ok(dir)) => dir.join(real.file_name().unwrap_or_default()),
        _ => real.clone(),
    };
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let stem: String = real
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(40)
        .collect();
    Ok(std::env::temp_dir().join(format!("creem-batch-rescue-{stem}-{hash}.csv")))
}

/// Saves the created checkouts among `records` for the ledger at `ledger` (added to any saved
/// earlier); returns the rescue file's path, or `None` when there was nothing to save.
pub(super) fn save(ledger: &Path, records: &[Record]) -> Result<Option<PathBuf>, LedgerError> {
    let created: Vec<&Record> = records
        .iter()
        .filter(|r| r.status == Status::Created)
        .collect();
    if created.is_empty() {
        return Ok(None);
    }
    let path = rescue_path(ledger)?;
    let io = |doing| LedgerError::io(&path, doing);
    let earlier = if trusted(&path, ledger) {
        read_all(&path)?
    } else {
        Vec::new()
    };
    // A new file (create_new: nothing another user left in the shared temp folder is written
    // through), renamed over the name once whole.
    let mut temp_name = path.clone().into_os_string();
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = PathBuf::from(temp_name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(io("write"))?;
    let mut out = csv::Writer::from_writer(BufWriter::new(&file));
    let written = (|| -> csv::Result<()> {
        out.write_byte_record(&header())?;
        for record in earlier.iter().chain(created.iter().copied()) {
            record.write(&mut out)?;
        }
        out.flush()?;
        drop(out);
        file.sync_all()?;
        Ok(())
    })();
    let done = written
        .map_err(std::io::Error::from)
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&temp);
        return Err(io("write")(e));
    }
    Ok(Some(path))
}

/// Adds the checkouts a run on this ledger could not write (see [`save`]) to the ledger, then
/// deletes the rescue file. Call it holding the ledger's lock, before reading the ledger.
pub fn take_rescued(ledger: &Path) -> Result<(), LedgerError> {
    let path = rescue_path(ledger)?;
    if !path.exists() {
        return Ok(());
    }
    if !trusted(&path, ledger) {
        eprintln!(
            "warning: {} is not a regular file of the ledger's owner; it was left alone",
            path.display()
        );
        return Ok(());
    }
    let records = read_all(&path)?;
    let prior = Prior::open(ledger)?;
    let writer = Writer::start(ledger, prior.as_ref(), 0)?;
    writer
        .append_synced(&records)
        .map_err(LedgerError::io(ledger, "write"))?;
    drop(writer);
    std::fs::remove_file(&path).map_err(LedgerError::io(&path, "remove"))?;
    eprintln!(
        "note: {} checkout(s) created by an earlier run that could not write them were added to {} from {}",
        records.len(),
        ledger.display(),
        path.display()
    );
    Ok(())
}

/// For the commands that only read the ledger (a dry run, `export`, `report`): a warning when
/// checkouts an earlier run could not write wait in a rescue file, which they do not see.
/// `what` names the reader: "this dry run", "this export".
pub fn rescued_warning(ledger: &Path, what: &str) -> Option<String> {
    let path = rescue_path(ledger).ok()?;
    if !path.exists() || !trusted(&path, ledger) {
        return None;
    }
    let count = read_all(&path).map_or(0, |records| records.len());
    Some(format!(
        "warning: {count} checkout(s) created by an earlier run are not in {} yet (saved in {}), \
         so {what} does not see them; `creem-batch status` or the next `run` adds them",
        ledger.display(),
        path.display()
    ))
}

/// A rescue file is taken only when it is a regular file (not a symlink) owned by whoever owns
/// the ledger's folder: the temp folder is shared with other users.
fn trusted(rescue: &Path, ledger: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(rescue) else {
        return false;
    };
    let folder = real_path(ledger)
        .ok()
        .and_then(|real| real.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let Ok(owner) = std::fs::metadata(folder) else {
        return false;
    };
    meta.is_file() && crate::platform::same_owner(&meta, &owner)
}
