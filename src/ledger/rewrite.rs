//! The atomic rewrite: one record per input row, in order, written to a temp file that is
//! synced and renamed over the ledger, so a reader sees the old file or the new one. The
//! records are streamed from the appended file by offset, never held all at once.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::append::Appender;
use super::prior::{read_at, Prior};
use super::record::{restore, ColumnMap, Record, Status};
use super::{header, real_path, LedgerError, Span};

/// What the rewrite at the end of a run needs from the writer.
pub(super) struct Rewrite {
    path: PathBuf,
    real: PathBuf,
    file: Result<File, std::io::Error>,
    by_row: Vec<Span>,
    prior_spans: Vec<Span>,
    retired: Vec<Span>,
    prior_canonical: bool,
    wrote: bool,
}

impl Rewrite {
    pub(super) fn take(appender: &mut Appender) -> Rewrite {
        Rewrite {
            path: appender.path.clone(),
            real: appender.real.clone(),
            file: appender.file.try_clone(),
            by_row: std::mem::take(&mut appender.by_row),
            prior_spans: std::mem::take(&mut appender.prior_spans),
            retired: std::mem::take(&mut appender.retired),
            prior_canonical: appender.prior_canonical,
            wrote: appender.wrote,
        }
    }
}

/// Writes one record per input row, in order, to a temp file, then renames it over the ledger.
pub(super) fn rewrite_in_order(rewrite: Rewrite) -> Result<(), LedgerError> {
    let Rewrite {
        path,
        real,
        file,
        by_row,
        prior_spans,
        retired,
        prior_canonical,
        wrote,
    } = rewrite;
    let unchanged = !wrote
        && retired.is_empty()
        && prior_canonical
        && by_row.get(1..) == Some(&prior_spans[..]);
    if unchanged {
        return Ok(()); // already one record per row, in order: nothing to rewrite
    }
    let io = |doing| LedgerError::io(&path, doing);
    let file = file.map_err(io("read"))?;
    let mut records = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file);
    let columns = ColumnMap::standard();
    // Records of an older run whose customer is no longer in the CSV would vanish: keep a copy.
    // Only request_ids that are not written again count (a record superseded by a later one
    // of the same request_id, left by a killed run, is not a loss). A sorted list, not a set:
    // 8 bytes a record, and none at all when there was no older run.
    let mut kept: Vec<Span> = Vec::new();
    if !prior_spans.is_empty() {
        kept.extend(by_row.iter().chain(&retired));
        kept.sort_unstable();
    }
    let mut dropped = HashSet::new();
    for &span in prior_spans
        .iter()
        .filter(|s| kept.binary_search(s).is_err())
    {
        let fields = read_at(&mut records, span, &path)?;
        if let Ok(record) = Record::from_fields(&fields, &columns) {
            if record.status == Status::Created {
                dropped.insert(record.request_id);
            }
        }
    }
    let mut out = start_replacement(&path, &real)?;
    let mut fields = csv::ByteRecord::new();
    for (row, &span) in by_row.iter().enumerate().skip(1) {
        if span.is_none() {
            continue;
        }
        let read = read_at(&mut records, span, &path)?;
        let row_text = row.to_string();
        // A record kept from an older run under another row number gets this row's.
        let record = if read.get(1) == Some(row_text.as_bytes()) {
            &read
        } else {
            fields.clear();
            for (i, cell) in read.iter().enumerate() {
                fields.push_field(if i == 1 { row_text.as_bytes() } else { cell });
            }
            &fields
        };
        if !dropped.is_empty() {
            let id = String::from_utf8_lossy(record.get(0).unwrap_or_default());
            dropped.remove(&restore(&id));
        }
        out.write_byte_record(record)
            .map_err(|e| io("write")(e.into()))?;
    }
    if !dropped.is_empty() {
        let backup = backup_path(&real);
        std::fs::copy(&real, &backup).map_err(io("back up"))?;
        eprintln!(
            "warning: {} created row(s) in {} are no longer in the CSV; the old file is kept as {}",
            dropped.len(),
            path.display(),
            backup.display()
        );
    }
    complete_replacement(out, &path, &real)
}

type Replacement = csv::Writer<BufWriter<File>>;

/// The temp file that replaces the ledger, with the header written: the first half of an
/// atomic replacement.
fn start_replacement(path: &Path, real: &Path) -> Result<Replacement, LedgerError> {
    let file = File::create(temp_path(real)).map_err(LedgerError::io(path, "write"))?;
    let mut out = csv::Writer::from_writer(BufWriter::with_capacity(1 << 18, file));
    out.write_byte_record(&header())
        .map_err(|e| LedgerError::io(path, "write")(e.into()))?;
    Ok(out)
}

/// The second half: fsync of the temp file, rename over the ledger, fsync of the folder. The
/// rename replaces the file a symlink points at, so the symlink stays.
fn complete_replacement(out: Replacement, path: &Path, real: &Path) -> Result<(), LedgerError> {
    let io = |doing| LedgerError::io(path, doing);
    let out = out
        .into_inner()
        .map_err(|e| io("write")(std::io::Error::other(e.to_string())))?;
    let file = out.into_inner().map_err(|e| io("write")(e.into_error()))?;
    file.sync_all().map_err(io("write"))?;
    drop(file);
    std::fs::rename(temp_path(real), real).map_err(io("replace"))?;
    if let Some(dir) = real.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn temp_path(real: &Path) -> PathBuf {
    let mut name = real.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    real.with_file_name(name)
}

fn backup_path(real: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now().as_second();
    let mut name = real.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{stamp}.bak"));
    real.with_file_name(name)
}

/// Reads a whole ledger (for `status` and `reconcile`, which rewrite every row anyway).
pub fn read_all(path: &Path) -> Result<Vec<Record>, LedgerError> {
    let mut prior = Prior::open(path)?.ok_or_else(|| LedgerError::Missing {
        path: path.to_path_buf(),
    })?;
    let spans: Vec<Span> = prior.spans().collect();
    if !prior.has_shadowed() {
        return spans.into_iter().map(|s| prior.read(s)).collect();
    }
    // A killed run left displaced records: keep the latest of each request_id (records
    // without one only where no later record took their row), ordered by row.
    let mut records = Vec::with_capacity(spans.len());
    for span in spans {
        records.push((span, prior.read(span)?));
    }
    let mut latest: std::collections::HashMap<&str, Span> = std::collections::HashMap::new();
    for (span, record) in &records {
        let offset = latest.entry(&record.request_id).or_insert(*span);
        *offset = (*offset).max(*span);
    }
    let keep: Vec<bool> = records
        .iter()
        .map(|(span, r)| match r.request_id.as_str() {
            "" => !prior.is_shadowed(*span),
            id => latest.get(id) == Some(span),
        })
        .collect();
    let mut keep = keep.into_iter();
    records.retain(|_| keep.next().unwrap_or(false));
    records.sort_by_key(|(span, r)| (r.row, *span));
    Ok(records.into_iter().map(|(_, r)| r).collect())
}

/// Rewrites a ledger that is not in this version's layout (columns reordered, added or
/// removed, another delimiter) in the standard one, keeping the original beside it as a
/// backup; returns the backup's path. A run appends standard records, which must match.
pub fn normalise(path: &Path) -> Result<PathBuf, LedgerError> {
    let records = read_all(path)?;
    let real = real_path(path)?;
    let backup = backup_path(&real);
    std::fs::copy(&real, &backup).map_err(LedgerError::io(path, "back up"))?;
    write_all(path, &records)?;
    Ok(backup)
}

/// Replaces the ledger at `path` with `records` (in the order given), atomically.
pub fn write_all(path: &Path, records: &[Record]) -> Result<(), LedgerError> {
    let real = real_path(path)?;
    let mut out = start_replacement(path, &real)?;
    for record in records {
        record
            .write(&mut out)
            .map_err(|e| LedgerError::io(path, "write")(e.into()))?;
    }
    complete_replacement(out, path, &real)
}
