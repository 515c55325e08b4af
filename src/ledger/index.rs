//! The index of a prior ledger, built in one pass with the csv crate (or by the fast path,
//! [`super::fast_index`]): where each row's record is, what the torn tail is, and each
//! created row's `input_hash`.

use crate::platform::ReadAt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use super::record::{restore, shown, ColumnMap, Record, Status};
use super::{LedgerError, Span};

/// How far a row number may run ahead of the records before it. A ledger's rows are about
/// its records' count; a wild number (a hand edit, a broken file) must not size the index.
const MAX_ROW_GAP: usize = 1 << 22;

/// The index [`Prior::open`] builds in its one pass.
pub(super) struct Index {
    pub(super) file_len: u64,
    pub(super) by_row: Vec<Span>,
    pub(super) shadowed: Vec<Span>,
    pub(super) campaign: Option<String>,
    /// The first `target` cell that is not empty, and the first `checkout_url` (older
    /// ledgers have no target: a loopback link tells the sandbox's).
    pub(super) target: Option<String>,
    pub(super) first_url: Option<String>,
    pub(super) valid_len: u64,
    pub(super) records: u64,
    pub(super) canonical: bool,
    pub(super) torn_line: Option<u64>,
    pub(super) missing_newline: bool,
    pub(super) unchanged: UnchangedRows,
}

impl Index {
    /// No records yet; the first would start at `start`.
    pub(super) fn new(file_len: u64, start: u64) -> Index {
        Index {
            file_len,
            by_row: Vec::new(),
            shadowed: Vec::new(),
            campaign: None,
            target: None,
            first_url: None,
            valid_len: start,
            records: 0,
            canonical: start > 0,
            torn_line: None,
            missing_newline: false,
            unchanged: UnchangedRows::default(),
        }
    }

    /// Reads every record after the header.
    pub(super) fn read(
        &mut self,
        reader: &mut csv::Reader<BufReader<File>>,
        file: &File,
        header: &csv::ByteRecord,
        columns: &ColumnMap,
        path: &Path,
    ) -> Result<(), LedgerError> {
        let fail = |line: u64, message: String| LedgerError::damaged(path, line, message);
        let mut fields = csv::ByteRecord::new();
        loop {
            let start = reader.position().byte();
            match reader.read_byte_record(&mut fields) {
                Ok(false) => return Ok(()),
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    return Err(fail(line, format!("cannot read this record: {e}")));
                }
            }
            let end = reader.position().byte();
            let line = fields.position().map_or(0, |p| p.line());
            if end == self.file_len
                && !ends_with_newline(file, end).map_err(LedgerError::io(path, "read"))?
            {
                // No newline at the end: a record a crash cut short, or a whole record in a
                // file an editor saved without a final newline. Only the first is dropped:
                // dropping a whole `created` record would send its row again.
                let mut bytes = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
                file.read_exact_at(&mut bytes, start)
                    .map_err(LedgerError::io(path, "read"))?;
                let quotes_closed = bytes.iter().filter(|&&b| b == b'"').count() % 2 == 0;
                if quotes_closed && is_whole(&fields, header.len(), columns) {
                    self.missing_newline = true;
                } else if !bytes.contains(&b'\n') {
                    self.torn_line = Some(line); // its row was in flight: it counts as not recorded
                    return Ok(());
                } else if !quotes_closed {
                    let message = "a quoted cell that starts in this record is never closed (edited by hand?)";
                    return Err(fail(line, message.to_owned()));
                }
            }
            if fields.len() != header.len() {
                let message = format!(
                    "{} fields where the header has {} (edited by hand?)",
                    fields.len(),
                    header.len()
                );
                return Err(fail(line, message));
            }
            // Only what the index needs is checked here; whole records are read on lookup.
            let row_text = String::from_utf8_lossy(columns.get(&fields, "row"));
            let row: usize = row_text.parse().map_err(|_| {
                fail(
                    line,
                    format!("`row` is `{}`, not a number", shown(&row_text)),
                )
            })?;
            if row > self.by_row.len() + MAX_ROW_GAP {
                let message =
                    format!("`row` is {row}, far past the records before it (edited by hand?)");
                return Err(fail(line, message));
            }
            let status = columns.get(&fields, "status");
            let Some(status) = Status::parse(status) else {
                let status = String::from_utf8_lossy(status);
                let message = format!(
                    "`status` is `{}`, not created, failed, invalid or pending",
                    shown(&status)
                );
                return Err(fail(line, message));
            };
            let campaign = String::from_utf8_lossy(columns.get(&fields, "campaign"));
            self.note_target(
                columns.get(&fields, "target"),
                columns.get(&fields, "checkout_url"),
            );
            let added = self.add(
                row,
                status,
                &campaign,
                columns.get(&fields, "input_hash"),
                Span(start),
                end,
            );
            if added.is_none() {
                let message =
                    format!("`row` is {row}, far past the records before it (edited by hand?)");
                return Err(fail(line, message));
            }
        }
    }

    /// Keeps the first target and the first checkout link seen.
    pub(super) fn note_target(&mut self, target: &[u8], checkout_url: &[u8]) {
        if self.target.is_none() && !target.is_empty() {
            self.target = Some(restore(&String::from_utf8_lossy(target)));
        }
        if self.first_url.is_none() && !checkout_url.is_empty() {
            self.first_url = Some(restore(&String::from_utf8_lossy(checkout_url)));
        }
    }

    /// Adds the record at `span`, the file's next, which ends at `end`.
    /// `None` (and nothing added) for a row number far past the rows so far.
    pub(super) fn add(
        &mut self,
        row: usize,
        status: Status,
        campaign: &str,
        input_hash: &[u8],
        span: Span,
        end: u64,
    ) -> Option<()> {
        if row > self.by_row.len() + MAX_ROW_GAP {
            return None;
        }
        if self.campaign.is_none() && !campaign.is_empty() {
            self.campaign = Some(restore(campaign));
        }
        if self.records == 0 {
            // Records are about the same length: room for the rest of the file at half this
            // one's, so the lists are not grown (and copied) many times over a big ledger.
            let rest = self.file_len.saturating_sub(span.0);
            let rows = rest / ((end - span.0) / 2).max(64) + 1;
            let rows = usize::try_from(rows).unwrap_or(0).min(MAX_ROW_GAP);
            self.by_row.reserve(row + rows + 1);
            self.unchanged.expected = row + rows + 1;
        }
        let hash = match status {
            Status::Created => parse_input_hash(input_hash),
            _ => 0,
        };
        self.unchanged.set(row, hash);
        self.canonical &= row as u64 == self.records + 1;
        if self.by_row.len() <= row {
            self.by_row.resize(row + 1, Span::NONE);
        }
        if !self.by_row[row].is_none() {
            self.shadowed.push(self.by_row[row]);
        }
        self.by_row[row] = span;
        self.records += 1;
        self.valid_len = end;
        Some(())
    }
}

/// `input_hash` by row number, filled while a ledger is indexed; allocated only once a
/// created record has one (older ledgers have none).
#[derive(Default)]
pub(super) struct UnchangedRows {
    hashes: Vec<u64>,
    /// Rows the ledger probably has: the room taken when the list is first needed.
    expected: usize,
}

impl UnchangedRows {
    fn set(&mut self, row: usize, hash: u64) {
        if hash == 0 && self.hashes.len() <= row {
            return;
        }
        if self.hashes.len() <= row {
            if self.hashes.capacity() == 0 {
                self.hashes.reserve(self.expected.max(row + 1));
            }
            self.hashes.resize(row + 1, 0);
        }
        self.hashes[row] = hash;
    }

    pub(super) fn finish(self) -> Option<Arc<Vec<u64>>> {
        (!self.hashes.is_empty()).then(|| Arc::new(self.hashes))
    }
}

/// The 16 hex digits of an `input_hash` cell; 0 for an empty or malformed one.
fn parse_input_hash(cell: &[u8]) -> u64 {
    if cell.len() != 16 {
        return 0;
    }
    std::str::from_utf8(cell)
        .ok()
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(0)
}

/// A last record with every field, valid values and (if any) a body that is whole JSON: a
/// record cut inside its last cell (`body`) fails the JSON test, one cut earlier the count.
fn is_whole(fields: &csv::ByteRecord, header_len: usize, columns: &ColumnMap) -> bool {
    let body = columns.get(fields, "body");
    fields.len() == header_len
        && Record::from_fields(fields, columns).is_ok()
        && (body.is_empty() || serde_json::from_slice::<serde_json::Value>(body).is_ok())
}

fn ends_with_newline(file: &File, len: u64) -> std::io::Result<bool> {
    if len == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] == b'\n')
}
