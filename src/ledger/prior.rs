//! Reading an existing ledger: an index of where each row's record is, built in one pass
//! with the csv crate, and lookups by row number or request_id.

use crate::platform::ReadAt;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::index::Index;
use super::record::{ColumnMap, Record, COLUMNS};
use super::{real_path, LedgerError, PriorRef, Span};

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
    /// The target the file records (see [`Prior::target`]).
    target: Option<String>,
    first_url: Option<String>,
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
            target: index.target,
            first_url: index.first_url,
            valid_len: index.valid_len,
            records: index.records,
            canonical: index.canonical && standard,
            torn_line: index.torn_line,
            missing_newline: index.missing_newline,
            standard: standard || blank,
            unchanged: index.unchanged.finish().filter(|_| !displaced),
        }))
    }

    /// The target whose checkouts the file holds: its `target` column, else (a ledger from
    /// before that column) `sandbox` when its checkout links point to this machine.
    pub fn target(&self) -> Option<String> {
        crate::target::of_ledger(self.target.as_deref(), self.first_url.as_deref())
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

    /// The prior record for this row's request_id (the campaign's; a re-issued record, whose
    /// request_id has a `-r<N>` suffix, is found by it too): found at the same row number when
    /// the CSV is unchanged, else by request_id (the index for that is built on first need).
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
            if record.base_request_id() == request_id {
                return Ok(Some((record, found)));
            }
        }
        if self.by_request_id.is_none() {
            // In file order, so the latest record of each request_id wins.
            let mut spans: Vec<Span> = self.spans().collect();
            spans.sort_unstable();
            let mut index = HashMap::new();
            for span in spans {
                let record = self.read(span)?;
                if record.reissues > 0 {
                    index.insert(record.base_request_id().to_owned(), span);
                }
                index.insert(record.request_id, span);
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
