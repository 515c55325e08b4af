//! Reading an existing ledger: an index of where each row's record is, built in one pass
//! with the csv crate, and lookups by row number or request_id.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{restore, shown, ColumnMap, Record, Status, COLUMNS};
use super::{real_path, LedgerError, PriorRef, Span};

/// How far a row number may run ahead of the records before it. A ledger's rows are about
/// its records' count; a wild number (a hand edit, a broken file) must not size the index.
const MAX_ROW_GAP: usize = 1 << 22;

/// An existing ledger, indexed by the row numbers its records carry.
pub struct Prior {
    path: PathBuf,
    /// Reads single records by offset, for lookups.
    reader: csv::Reader<File>,
    columns: ColumnMap,
    by_row: Vec<Span>,
    /// Records a later record with the same row number displaced from `by_row`: an older
    /// record of the same request_id, or another customer's when rows moved in the CSV (a
    /// customer inserted at the top) and a killed run appended records under reused numbers.
    /// Still found by request_id, so a moved customer's checkout is never forgotten.
    shadowed: Vec<Span>,
    by_request_id: Option<HashMap<String, Span>>,
    /// The campaign named in the file, if it has any record.
    pub campaign: Option<String>,
    /// Bytes of whole records; anything after is a torn tail from a crash.
    pub(super) valid_len: u64,
    pub(super) records: u64,
    /// Exactly one record per row 1..=n, in order, under today's header: a run that changes
    /// nothing can leave such a file as it is.
    pub(super) canonical: bool,
    /// The line where a torn last record (cut off by a crash mid-write) starts, if any.
    pub(super) torn_line: Option<u64>,
    /// The last record is whole but the file does not end with a newline (saved by an
    /// editor): the writer adds one before appending.
    pub(super) missing_newline: bool,
    /// The header is exactly [`COLUMNS`], comma-separated, so appended records match it.
    standard: bool,
    /// By row number: the `input_hash` of the row's `created` record (0 for none), when every
    /// record is found at its row (nothing displaced). See [`Prior::unchanged_rows`].
    unchanged: Option<Arc<Vec<u64>>>,
}

impl Prior {
    /// Reads the ledger at `path`, if it exists.
    pub fn open(path: &Path) -> Result<Option<Prior>, LedgerError> {
        Prior::open_with(path, true)
    }

    /// `fast`: try [`fast_index`](super::fast_index) first (off only to test it).
    pub(super) fn open_with(path: &Path, fast: bool) -> Result<Option<Prior>, LedgerError> {
        let real = real_path(path)?;
        let file = match File::open(&real) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LedgerError::io(path, "read")(e)),
        };
        let io = |doing| LedgerError::io(path, doing);
        let file_len = file.metadata().map_err(io("read"))?.len();
        let delimiter = sniff_delimiter(&file).map_err(io("read"))?;
        let builder = || {
            let mut builder = csv::ReaderBuilder::new();
            builder
                .has_headers(true)
                .flexible(true)
                .delimiter(delimiter);
            builder
        };
        let mut reader = builder().from_reader(BufReader::with_capacity(
            1 << 18,
            file.try_clone().map_err(io("read"))?,
        ));
        let header = reader
            .byte_headers()
            .map_err(|e| LedgerError::damaged(path, 1, format!("cannot read the header: {e}")))?
            .clone();
        let columns = ColumnMap::from_header(header.iter());
        let mut index = Index::new(file_len, 0);
        let blank = header.iter().all(|name| name.is_empty());
        if !blank {
            for required in ["request_id", "row", "status", "body_sha256"] {
                if !columns.has(required) {
                    let message =
                        format!("this is not a creem-batch output: no `{required}` column");
                    return Err(LedgerError::damaged(path, 1, message));
                }
            }
            index.valid_len = reader.position().byte();
            index.canonical = true;
            let plain = delimiter == b',' && header.iter().eq(COLUMNS.map(str::as_bytes));
            let fast = (fast && plain).then(|| {
                super::fast_index::index_lines(
                    &file,
                    index.valid_len,
                    Index::new(file_len, index.valid_len),
                )
            });
            match fast.flatten() {
                Some(fast) => index = fast,
                None => index.read(&mut reader, &file, &header, &columns, path)?,
            }
        }
        let standard = delimiter == b',' && header.iter().eq(COLUMNS.map(str::as_bytes));
        let displaced = !index.shadowed.is_empty();
        Ok(Some(Prior {
            path: path.to_path_buf(),
            reader: builder().from_reader(file),
            columns,
            by_row: index.by_row,
            shadowed: index.shadowed,
            by_request_id: None,
            campaign: index.campaign,
            valid_len: index.valid_len,
            records: index.records,
            canonical: index.canonical && standard,
            torn_line: index.torn_line,
            missing_newline: index.missing_newline,
            standard: standard || blank,
            unchanged: index.unchanged.finish().filter(|_| !displaced),
        }))
    }

    /// The `input_hash` of each row's `created` record, by row number (0: none), for
    /// [`Batch::skip_unchanged`](crate::batch::Batch::skip_unchanged). `None` when the row
    /// number alone does not find a row's record (a killed run displaced some).
    pub fn unchanged_rows(&self) -> Option<Arc<Vec<u64>>> {
        self.unchanged.clone()
    }

    /// The record at `row` (a row [`unchanged_rows`](Self::unchanged_rows) vouched for).
    pub fn at_row(&self, row: u64) -> Option<PriorRef> {
        let span = *self.by_row.get(usize::try_from(row).ok()?)?;
        (!span.is_none()).then_some(PriorRef(span))
    }

    /// False when the file is not in this version's layout (columns reordered, added or
    /// removed, or another delimiter, in a spreadsheet): records appended during a run would
    /// not match it, see [`normalise`](super::normalise).
    pub fn standard_layout(&self) -> bool {
        self.standard
    }

    /// The prior record for this row's request_id: found at the same row number when the
    /// CSV is unchanged, else by request_id (the index for that is built on first need).
    pub fn lookup(
        &mut self,
        row: u64,
        request_id: &str,
    ) -> Result<Option<(Record, PriorRef)>, LedgerError> {
        if request_id.is_empty() {
            return Ok(None);
        }
        // The row-number shortcut holds only when no record was displaced: else a later
        // record of this request_id may sit elsewhere.
        if let Some(found) = self.at_row(row).filter(|_| self.shadowed.is_empty()) {
            let record = self.read(found.0)?;
            if record.request_id == request_id {
                return Ok(Some((record, found)));
            }
        }
        if self.by_request_id.is_none() {
            // In file order, so the latest record of each request_id wins.
            let mut spans: Vec<Span> = self.spans().collect();
            spans.sort_unstable();
            let mut index = HashMap::new();
            for span in spans {
                index.insert(self.read(span)?.request_id, span);
            }
            self.by_request_id = Some(index);
        }
        let span = self
            .by_request_id
            .as_ref()
            .and_then(|m| m.get(request_id).copied());
        match span {
            Some(span) => Ok(Some((self.read(span)?, PriorRef(span)))),
            None => Ok(None),
        }
    }

    /// The record at `span`.
    pub(super) fn read(&mut self, span: Span) -> Result<Record, LedgerError> {
        let fields = read_at(&mut self.reader, span, &self.path)?;
        Record::from_fields(&fields, &self.columns)
            .map_err(|message| LedgerError::damaged(&self.path, 0, message))
    }

    /// Spans of every record: the last of each row number, then the displaced ones.
    pub(super) fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        self.by_row
            .iter()
            .copied()
            .filter(|s| !s.is_none())
            .chain(self.shadowed.iter().copied())
    }

    pub(super) fn is_shadowed(&self, span: Span) -> bool {
        self.shadowed.contains(&span)
    }

    pub(super) fn has_shadowed(&self) -> bool {
        !self.shadowed.is_empty()
    }

    /// Everything the index holds, to compare two ways of building it.
    #[cfg(test)]
    pub(super) fn summary(&self) -> String {
        format!(
            "{:?}",
            (
                &self.by_row,
                &self.shadowed,
                &self.campaign,
                self.valid_len,
                self.records,
                self.canonical,
                self.torn_line,
                self.missing_newline,
                self.standard,
                &self.unchanged,
            )
        )
    }
}

/// The fields of the record at `span`, read by `reader` (whose header was read already).
pub(super) fn read_at<R: Read + std::io::Seek>(
    reader: &mut csv::Reader<R>,
    span: Span,
    path: &Path,
) -> Result<csv::ByteRecord, LedgerError> {
    let mut at = csv::Position::new();
    at.set_byte(span.0);
    let fail = |message: String| LedgerError::damaged(path, 0, message);
    reader
        .seek(at)
        .map_err(|e| fail(format!("cannot read the record at byte {}: {e}", span.0)))?;
    let mut fields = csv::ByteRecord::new();
    match reader.read_byte_record(&mut fields) {
        Ok(true) => Ok(fields),
        Ok(false) => Err(fail(format!("no record at byte {}", span.0))),
        Err(e) => Err(fail(format!(
            "cannot read the record at byte {}: {e}",
            span.0
        ))),
    }
}

/// The ledger's delimiter: a comma, unless a spreadsheet saved it with `;` or tabs.
fn sniff_delimiter(file: &File) -> std::io::Result<u8> {
    let mut start = vec![0u8; 1 << 16];
    let mut filled = 0;
    while filled < start.len() {
        match file.read_at(&mut start[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    let line = start[..filled].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let has = |b: u8| line.contains(&b);
    Ok(match (has(b','), has(b';'), has(b'\t')) {
        (false, true, _) => b';',
        (false, false, true) => b'\t',
        _ => b',',
    })
}

/// The index [`Prior::open`] builds in its one pass.
pub(super) struct Index {
    file_len: u64,
    by_row: Vec<Span>,
    shadowed: Vec<Span>,
    campaign: Option<String>,
    valid_len: u64,
    records: u64,
    canonical: bool,
    torn_line: Option<u64>,
    missing_newline: bool,
    unchanged: UnchangedRows,
}

impl Index {
    /// No records yet; the first would start at `start`.
    pub(super) fn new(file_len: u64, start: u64) -> Index {
        Index {
            file_len,
            by_row: Vec::new(),
            shadowed: Vec::new(),
            campaign: None,
            valid_len: start,
            records: 0,
            canonical: start > 0,
            torn_line: None,
            missing_newline: false,
            unchanged: UnchangedRows::default(),
        }
    }

    /// Reads every record after the header.
    fn read(
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
struct UnchangedRows {
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

    fn finish(self) -> Option<Arc<Vec<u64>>> {
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
