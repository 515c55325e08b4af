//! Appending records as answers arrive.
//!
//! The rows that finish in one turn of the run's event loop are appended as whole records,
//! with one `write`, before anything else is awaited. So `kill -9` loses at most the rows in
//! flight, and never leaves half a record behind except for a torn tail, which the next run
//! cuts off. A failed write is undone (the file cut back to its last whole record), stops the
//! run at once through its cancellation token, and keeps the records in memory to be written
//! again at the end ([`Writer::finish`]).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;

use super::prior::Prior;
use super::record::{Record, Status};
use super::rewrite::{rewrite_in_order, Rewrite};
use super::{header, real_path, LedgerError, PriorRef, Span};

/// What the run tells the writer about each row.
#[derive(Debug)]
pub enum Entry {
    /// A new or updated record, appended now.
    Write(Box<Record>),
    /// The prior record stays as it is (a row created earlier).
    Keep { row: u64, prior: PriorRef },
    /// The prior record is replaced by a new one for the same request_id.
    Retire(PriorRef),
}

/// A created checkout whose record could not be written: the run must show it, or it is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecorded {
    pub request_id: String,
    pub checkout_id: String,
    pub checkout_url: String,
}

/// The ledger could not be finished; `unrecorded` lists the checkouts it does not hold.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct FinishError {
    pub error: LedgerError,
    pub unrecorded: Vec<Unrecorded>,
    /// The records the ledger could not take (saved for the next run).
    unwritten: Box<Unwritten>,
}

#[derive(Debug, Default)]
struct Unwritten {
    ledger: PathBuf,
    records: Vec<Record>,
}

impl FinishError {
    /// Prints the unrecorded checkouts to `err` as CSV, and saves their records to a rescue
    /// file in the temp folder (see [`super::rescue`]), which the next run adds to the
    /// ledger; returns its path if it could be written.
    pub fn print_unrecorded(&self, err: &mut impl Write) -> std::io::Result<Option<PathBuf>> {
        if self.unrecorded.is_empty() {
            return Ok(None);
        }
        let csv = self.unrecorded_csv().map_err(std::io::Error::other)?;
        writeln!(
            err,
            "{} created checkout(s) could not be written to the ledger; keep them:",
            self.unrecorded.len()
        )?;
        err.write_all(&csv)?;
        let Unwritten { ledger, records } = &*self.unwritten;
        match super::rescue::save(ledger, records) {
            Ok(Some(rescue)) => {
                writeln!(
                    err,
                    "(also saved to {}; the next run on {} adds them to it, once it can be written)",
                    rescue.display(),
                    ledger.display()
                )?;
                Ok(Some(rescue))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                writeln!(err, "(no rescue file either: {e})")?;
                Ok(None)
            }
        }
    }

    fn unrecorded_csv(&self) -> csv::Result<Vec<u8>> {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(["request_id", "checkout_id", "checkout_url"])?;
        for row in &self.unrecorded {
            // Server text and CSV cells: neutralised for a spreadsheet, escaped for a terminal.
            let cells = [&row.request_id, &row.checkout_id, &row.checkout_url]
                .map(|cell| super::record::shown_whole(&super::record::neutralise(cell)));
            out.write_record(cells)?;
        }
        out.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()).into())
    }
}

/// One policy for the writer's lock: a thread that panicked holding it left whole records
/// behind (every change is made before the state is updated), so the state is still sound.
fn locked(shared: &Mutex<Appender>) -> MutexGuard<'_, Appender> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Appends records as they come, and rewrites the file in input order at the end.
pub struct Writer {
    shared: Arc<Mutex<Appender>>,
}

/// A cloneable handle for giving entries to the ledger writer from any thread or task.
///
/// Records are written to the file before `send`/`send_all` returns: one `write` of whole
/// records, with no thread hand-off or timer in between. That is the durability rule (a
/// `kill -9` loses only rows still in flight).
#[derive(Clone)]
pub struct EntrySender {
    shared: Arc<Mutex<Appender>>,
}

impl EntrySender {
    pub fn send(&self, entry: Entry) {
        self.send_all([entry]);
    }

    /// Takes several entries at once: their records go to the file in one `write`.
    pub fn send_all(&self, entries: impl IntoIterator<Item = Entry>) {
        locked(&self.shared).take_all(entries);
    }
}

/// The writer's state behind its lock.
pub(super) struct Appender {
    pub(super) path: PathBuf,
    pub(super) real: PathBuf,
    pub(super) file: File,
    /// File length: where the next record goes.
    end: u64,
    pub(super) by_row: Vec<Span>,
    pub(super) prior_spans: Vec<Span>,
    pub(super) retired: Vec<Span>,
    /// The prior file is canonical (see [`Prior`]) with one record per row of this run.
    pub(super) prior_canonical: bool,
    pub(super) wrote: bool,
    /// The first write error, and the records not written since.
    failed: Option<std::io::Error>,
    unwritten: Vec<Record>,
    /// Cancelled on the first failed write, to stop sending at once.
    on_failure: Option<CancellationToken>,
    /// Test seam: writes fail once the file would grow past this length.
    fail_past: Option<u64>,
}

impl Appender {
    fn take_all(&mut self, entries: impl IntoIterator<Item = Entry>) {
        let mut records = Vec::new();
        for entry in entries {
            match entry {
                Entry::Write(record) => records.push(*record),
                Entry::Keep { row, prior } => set_span(&mut self.by_row, row, prior.0),
                Entry::Retire(prior) => self.retired.push(prior.0),
            }
        }
        if records.is_empty() {
            return;
        }
        if self.failed.is_some() {
            // Sent rows only: a pending or invalid row's record is made again by the next
            // run, and a run stopped early would otherwise hold every remaining row here.
            let sent = |r: &Record| matches!(r.status, Status::Created | Status::Failed);
            self.unwritten.extend(records.into_iter().filter(sent));
            return;
        }
        if let Err(e) = self.append(&records) {
            self.failed = Some(e);
            self.unwritten.extend(records);
            if let Some(token) = &self.on_failure {
                token.cancel();
            }
        }
    }

    /// Writes `records` with one `write`; on failure the file is cut back to what it was, so
    /// that the next run does not take a failed write for a torn record.
    fn append(&mut self, records: &[Record]) -> std::io::Result<()> {
        let mut out = csv::Writer::from_writer(Vec::with_capacity(1 << 14));
        let mut starts = Vec::with_capacity(records.len());
        for record in records {
            out.flush()?;
            starts.push(out.get_ref().len() as u64);
            record.write(&mut out)?;
        }
        let bytes = out.into_inner().map_err(|e| e.into_error())?;
        let result = match self.fail_past {
            Some(limit) if self.end + bytes.len() as u64 > limit => {
                let room = usize::try_from(limit.saturating_sub(self.end)).unwrap_or(0);
                let _ = self.file.write_all(&bytes[..room.min(bytes.len())]);
                Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
            }
            _ => self.file.write_all(&bytes),
        };
        if let Err(e) = result {
            let _ = self.file.set_len(self.end);
            let _ = self.file.seek(SeekFrom::Start(self.end));
            return Err(e);
        }
        for (record, start) in records.iter().zip(starts) {
            set_span(&mut self.by_row, record.row, Span(self.end + start));
        }
        self.end += bytes.len() as u64;
        self.wrote = true;
        Ok(())
    }
}

impl Writer {
    /// Opens `path` for appending (creating it and its folder if needed). A torn tail left by
    /// a crash is cut off first.
    pub fn start(
        path: &Path,
        prior: Option<&Prior>,
        total_rows: u64,
    ) -> Result<Writer, LedgerError> {
        let real = real_path(path)?;
        let io = |doing| LedgerError::io(path, doing);
        if let Some(dir) = real.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("create its folder"))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&real)
            .map_err(io("open for writing"))?;
        match prior {
            Some(prior) if prior.valid_len > 0 => {
                file.set_len(prior.valid_len).map_err(io("write"))?;
                if let Some(line) = prior.torn_line {
                    eprintln!(
                        "note: {}:{line}: removed an incomplete last record (a run was killed while writing it); that row counts as not recorded",
                        path.display()
                    );
                }
                if prior.missing_newline {
                    file.seek(SeekFrom::End(0)).map_err(io("write"))?;
                    file.write_all(b"\n").map_err(io("write"))?;
                }
            }
            _ => {
                file.set_len(0).map_err(io("write"))?;
                let mut out = csv::Writer::from_writer(&mut file);
                out.write_byte_record(&header())
                    .and_then(|()| out.flush().map_err(csv::Error::from))
                    .map_err(|e| io("write")(e.into()))?;
            }
        }
        let end = file.seek(SeekFrom::End(0)).map_err(io("write"))?;
        let rows = usize::try_from(total_rows).unwrap_or(0).saturating_add(1);
        let appender = Appender {
            path: path.to_path_buf(),
            real,
            file,
            end,
            by_row: vec![Span::NONE; rows],
            prior_spans: prior.map(|p| p.spans().collect()).unwrap_or_default(),
            retired: Vec::new(),
            prior_canonical: prior.is_some_and(|p| p.canonical && p.records == total_rows),
            wrote: false,
            failed: None,
            unwritten: Vec::new(),
            on_failure: None,
            fail_past: fail_past_from_env(),
        };
        Ok(Writer {
            shared: Arc::new(Mutex::new(appender)),
        })
    }

    /// Cancels `token` on the first failed write (disk full, I/O error, read-only file
    /// system), so the run sends nothing more while its records cannot be kept.
    pub fn cancel_on_failure(&self, token: CancellationToken) {
        locked(&self.shared).on_failure = Some(token);
    }

    /// The first write error, if a write failed.
    pub fn write_error(&self) -> Option<String> {
        locked(&self.shared).failed.as_ref().map(|e| e.to_string())
    }

    /// Test seam: writes fail with ENOSPC once the file would grow past `len` bytes.
    #[cfg(test)]
    pub(super) fn fail_past(&self, len: Option<u64>) {
        locked(&self.shared).fail_past = len;
    }

    /// Appends `records` now and syncs them to disk (records saved elsewhere, which may be
    /// deleted once this returns).
    pub(super) fn append_synced(&self, records: &[Record]) -> std::io::Result<()> {
        let mut appender = locked(&self.shared);
        appender.append(records)?;
        appender.file.sync_data()
    }

    /// A handle for sending entries from other threads or tasks.
    pub fn sender(&self) -> EntrySender {
        EntrySender {
            shared: Arc::clone(&self.shared),
        }
    }

    pub fn send(&self, entry: Entry) {
        self.sender().send(entry);
    }

    /// Writes again what could not be written during the run, then rewrites the file in
    /// input order. Every sender must be done by now. On failure, the error lists the created
    /// checkouts the file does not hold.
    pub fn finish(self) -> Result<(), FinishError> {
        let mut appender = locked(&self.shared);
        if let Some(first) = appender.failed.take() {
            let unwritten = std::mem::take(&mut appender.unwritten);
            if appender.append(&unwritten).is_err() {
                // The file holds whole records only (failed writes were cut back): it stays
                // the ledger as it is, and the next run resumes from it.
                return Err(FinishError {
                    error: LedgerError::io(&appender.path, "write")(first),
                    unrecorded: unrecorded(&unwritten),
                    unwritten: Box::new(Unwritten {
                        ledger: appender.path.clone(),
                        records: unwritten,
                    }),
                });
            }
        }
        let rewrite = Rewrite::take(&mut appender);
        drop(appender);
        rewrite_in_order(rewrite).map_err(|error| FinishError {
            error,
            unrecorded: Vec::new(),
            unwritten: Box::default(),
        })
    }
}

/// Test seam for the binary (debug builds only): `CREEM_BATCH_TEST_FAIL_PAST=N` makes ledger
/// writes fail with ENOSPC once the file would grow past N bytes, as a full disk does, so an
/// integration test can fill the disk without root. Release builds never read it.
#[cfg(debug_assertions)]
const FAIL_PAST_VAR: &str = "CREEM_BATCH_TEST_FAIL_PAST";

#[cfg(debug_assertions)]
fn fail_past_from_env() -> Option<u64> {
    std::env::var(FAIL_PAST_VAR).ok()?.trim().parse().ok()
}

#[cfg(not(debug_assertions))]
fn fail_past_from_env() -> Option<u64> {
    None
}

/// The created checkouts among `records`.
fn unrecorded(records: &[Record]) -> Vec<Unrecorded> {
    records
        .iter()
        .filter(|r| r.status == Status::Created)
        .map(|r| Unrecorded {
            request_id: r.request_id.clone(),
            checkout_id: r.checkout_id.clone(),
            checkout_url: r.checkout_url.clone(),
        })
        .collect()
}

fn set_span(by_row: &mut Vec<Span>, row: u64, span: Span) {
    let Ok(row) = usize::try_from(row) else {
        return;
    };
    if by_row.len() <= row {
        by_row.resize(row + 1, Span::NONE);
    }
    by_row[row] = span;
}
