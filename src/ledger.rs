//! The output CSV, which is also the ledger that makes re-runs safe.
//!
//! During a run, the rows that finish in one turn of the event loop are appended as whole
//! records, with one `write`, before anything else is awaited (no thread hand-off, no timer).
//! So `kill -9` loses at most the rows in flight, and never leaves half a record behind
//! except for a torn tail, which the next run cuts off. At the end the file is
//! rewritten in input order, atomically (temp file, fsync, rename); for a new ledger most of
//! that copy is made during the run (see [`ordered_copy`]). Rows are located by byte offset
//! rather than kept in memory, so a million-row ledger costs 8 bytes a row.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::platform::{is_same_file, ReadAt};

mod ordered_copy;

/// The columns, in order. SPEC's columns first; then ours.
pub const COLUMNS: [&str; 16] = [
    "request_id",
    "row",
    "email",
    "status",
    "checkout_id",
    "checkout_url",
    "http_status",
    "attempts",
    "error",
    "body_sha256",
    "updated_at",
    "checkout_status",
    "campaign",
    "order_id",
    "input_hash",
    "body",
];

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Created,
    Failed,
    Invalid,
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Failed => "failed",
            Status::Invalid => "invalid",
            Status::Pending => "pending",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "created" => Status::Created,
            "failed" => Status::Failed,
            "invalid" => Status::Invalid,
            "pending" => Status::Pending,
            _ => return None,
        })
    }
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub request_id: String,
    pub row: u64,
    pub email: String,
    pub status: Status,
    pub checkout_id: String,
    pub checkout_url: String,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: String,
    pub body_sha256: String,
    pub updated_at: String,
    pub checkout_status: String,
    pub campaign: String,
    pub order_id: String,
    /// A digest of everything the body is made from (the campaign's checkout settings, the
    /// CSV header, the row number and cells): while it matches, the body cannot have
    /// changed, so a re-run need not render the row again to know it is done.
    pub input_hash: String,
    /// The exact JSON body sent (or that would be sent), to show what changed on a re-run.
    pub body: String,
}

impl Record {
    /// A record with only the identifying fields set.
    pub fn new(campaign: &str, row: u64, request_id: &str, email: &str, status: Status) -> Record {
        Record {
            request_id: request_id.to_owned(),
            row,
            email: email.to_owned(),
            status,
            checkout_id: String::new(),
            checkout_url: String::new(),
            http_status: None,
            attempts: 0,
            error: String::new(),
            body_sha256: String::new(),
            updated_at: now_rfc3339(),
            checkout_status: String::new(),
            campaign: campaign.to_owned(),
            order_id: String::new(),
            input_hash: String::new(),
            body: String::new(),
        }
    }

    /// The value of one of [`COLUMNS`] as text (as read back, without the `'` that guards
    /// formulas in the file); `None` for a name that is not a ledger column.
    pub fn column(&self, name: &str) -> Option<Cow<'_, str>> {
        Some(match name {
            "request_id" => Cow::Borrowed(&self.request_id),
            "row" => Cow::Owned(self.row.to_string()),
            "email" => Cow::Borrowed(&self.email),
            "status" => Cow::Borrowed(self.status.as_str()),
            "checkout_id" => Cow::Borrowed(&self.checkout_id),
            "checkout_url" => Cow::Borrowed(&self.checkout_url),
            "http_status" => {
                Cow::Owned(self.http_status.map(|s| s.to_string()).unwrap_or_default())
            }
            "attempts" => Cow::Owned(self.attempts.to_string()),
            "error" => Cow::Borrowed(&self.error),
            "body_sha256" => Cow::Borrowed(&self.body_sha256),
            "updated_at" => Cow::Borrowed(&self.updated_at),
            "checkout_status" => Cow::Borrowed(&self.checkout_status),
            "campaign" => Cow::Borrowed(&self.campaign),
            "order_id" => Cow::Borrowed(&self.order_id),
            "input_hash" => Cow::Borrowed(&self.input_hash),
            "body" => Cow::Borrowed(&self.body),
            _ => return None,
        })
    }

    /// Appends this record as one CSV line to `buf`.
    fn write_to(&self, buf: &mut Vec<u8>) -> csv::Result<()> {
        let (mut row, mut http, mut attempts) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let error = one_line(&self.error);
        write_csv_line(
            buf,
            &[
                &neutralise(&self.request_id),
                row.format(self.row),
                &neutralise(&self.email),
                self.status.as_str(),
                &neutralise(&self.checkout_id),
                &neutralise(&self.checkout_url),
                self.http_status.map_or("", |s| http.format(s)),
                attempts.format(self.attempts),
                &neutralise(&error),
                &self.body_sha256,
                &self.updated_at,
                &neutralise(&self.checkout_status),
                &neutralise(&self.campaign),
                &neutralise(&self.order_id),
                &self.input_hash,
                &self.body,
            ],
        );
        Ok(())
    }

    fn from_fields(fields: &csv::StringRecord, map: &ColumnMap) -> Result<Record, String> {
        let get = |name: &str| map.get(fields, name);
        let status = get("status");
        Ok(Record {
            request_id: restore(get("request_id")),
            row: get("row")
                .parse()
                .map_err(|_| format!("`row` is `{}`, not a number", get("row")))?,
            email: restore(get("email")),
            status: Status::parse(status).ok_or_else(|| {
                format!("`status` is `{status}`, not created, failed, invalid or pending")
            })?,
            checkout_id: restore(get("checkout_id")),
            checkout_url: restore(get("checkout_url")),
            http_status: get("http_status").parse().ok(),
            attempts: get("attempts").parse().unwrap_or(0),
            error: restore(get("error")),
            body_sha256: get("body_sha256").to_owned(),
            updated_at: get("updated_at").to_owned(),
            checkout_status: restore(get("checkout_status")),
            campaign: restore(get("campaign")),
            order_id: restore(get("order_id")),
            input_hash: get("input_hash").to_owned(),
            body: get("body").to_owned(),
        })
    }
}

/// Appends `cells` as one CSV line, quoted only where needed, byte for byte as the csv
/// crate's writer does (`QuoteStyle::Necessary`: a cell with a comma, quote, CR or LF is
/// quoted and its quotes doubled). Written by hand because the ledger writes a line per row
/// on the sending thread, and `csv_core`'s writer goes byte by byte through the body cell,
/// the longest, full of quotes.
fn write_csv_line(out: &mut Vec<u8>, cells: &[&str]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let bytes = cell.as_bytes();
        let plain = memchr::memchr3(b',', b'"', b'\n', bytes).is_none()
            && memchr::memchr(b'\r', bytes).is_none();
        if plain {
            out.extend_from_slice(bytes);
            continue;
        }
        out.reserve(bytes.len() + 8);
        out.push(b'"');
        let mut rest = bytes;
        while let Some(at) = memchr::memchr(b'"', rest) {
            out.extend_from_slice(&rest[..=at]);
            out.push(b'"');
            rest = &rest[at + 1..];
        }
        out.extend_from_slice(rest);
        out.push(b'"');
    }
    out.push(b'\n');
}

/// Cells a spreadsheet would run as formulas get a leading `'` (OWASP CSV injection advice).
/// Applied to text that comes from the input or the API; the API always gets the real value.
/// A cell that already starts with `'` gets one more, so that [`restore`] gives back exactly
/// what was written (a request_id `'=x` must not come back as `=x`, or its row is sent again).
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Undoes [`neutralise`] when reading the ledger back.
fn restore(cell: &str) -> String {
    match cell.as_bytes() {
        [b'\'', b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'', ..] => cell[1..].to_owned(),
        _ => cell.to_owned(),
    }
}

/// Errors are one line so a record stays one line (a torn tail is then easy to find).
fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        Cow::Owned(text.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(text)
    }
}

/// The time now, to the millisecond, as `2026-11-25T09:30:00.123Z`.
pub fn now_rfc3339() -> String {
    thread_local! {
        /// The last millisecond formatted: a fast run stamps many records in the same one.
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let millisecond = jiff::Timestamp::now().as_millisecond();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != millisecond {
            let text = jiff::Timestamp::from_millisecond(millisecond)
                .map(|t| t.to_string())
                .unwrap_or_default();
            *last = (millisecond, text);
        }
        last.1.clone()
    })
}

/// Where each column is in a ledger file (older or hand-edited files may reorder them).
#[derive(Debug, Clone)]
struct ColumnMap {
    index: HashMap<String, usize>,
}

impl ColumnMap {
    /// This version's layout, [`COLUMNS`].
    fn standard() -> ColumnMap {
        ColumnMap {
            index: COLUMNS
                .iter()
                .enumerate()
                .map(|(i, c)| (c.to_string(), i))
                .collect(),
        }
    }

    fn get<'r>(&self, fields: &'r csv::StringRecord, name: &str) -> &'r str {
        self.index
            .get(name)
            .and_then(|&i| fields.get(i))
            .unwrap_or("")
    }
}

/// A record's place in the file: offset (40 bits) and length (24 bits) packed in a u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(u64);

impl Span {
    const NONE: Span = Span(u64::MAX);

    fn new(offset: u64, len: usize) -> Span {
        assert!(
            offset < 1 << 40 && len < 1 << 24,
            "ledger record out of range"
        );
        Span(offset << 24 | len as u64)
    }

    fn offset(self) -> u64 {
        self.0 >> 24
    }

    fn len(self) -> usize {
        (self.0 & ((1 << 24) - 1)) as usize
    }

    fn is_none(self) -> bool {
        self == Span::NONE
    }
}

/// A problem with an existing ledger file; it is never overwritten when this happens.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}\n  the output file was left as it is; fix it or move it away (or use --out)")]
pub struct LedgerError {
    pub path: PathBuf,
    pub line: u64,
    pub message: String,
}

/// An existing ledger, indexed by the row numbers its records carry.
pub struct Prior {
    file: File,
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
    pub valid_len: u64,
    pub records: u64,
    /// Exactly one record per row 1..=n, in order, under today's header: a run that changes
    /// nothing can leave such a file as it is.
    canonical: bool,
    /// The line where a torn last record (cut off by a crash mid-write) starts, if any.
    pub torn_line: Option<u64>,
    /// The last record is whole but the file does not end with a newline (saved by an
    /// editor): the writer adds one before appending.
    missing_newline: bool,
    /// The header is exactly [`COLUMNS`], so appended records match it.
    standard: bool,
    /// By row number: the `input_hash` of the row's `created` record (0 for none), when every
    /// record is found at its row (nothing displaced). See [`Prior::unchanged_rows`].
    unchanged: Option<Arc<Vec<u64>>>,
}

impl Prior {
    /// Reads the ledger at `path`, if it exists.
    pub fn open(path: &Path) -> anyhow::Result<Option<Prior>> {
        Prior::open_with(path, true)
    }

    /// `fast_index`: try [`index_lines`] first (off only to test it against the CSV parser).
    fn open_with(path: &Path, fast_index: bool) -> anyhow::Result<Option<Prior>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let fail = |line: u64, message: String| LedgerError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let file_len = file.metadata()?.len();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 18, file.try_clone()?));
        let header = reader
            .headers()
            .map_err(|e| fail(1, format!("cannot read the header: {e}")))?
            .clone();
        let index: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_owned(), i))
            .collect();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Ok(Some(Prior {
                file,
                columns: ColumnMap { index },
                by_row: Vec::new(),
                shadowed: Vec::new(),
                by_request_id: None,
                campaign: None,
                valid_len: 0,
                records: 0,
                canonical: false,
                torn_line: None,
                missing_newline: false,
                standard: true,
                unchanged: None,
            }));
        }
        for required in ["request_id", "row", "status", "body_sha256"] {
            if !index.contains_key(required) {
                return Err(fail(
                    1,
                    format!("this is not a creem-batch output: no `{required}` column"),
                )
                .into());
            }
        }
        let standard = header.iter().eq(COLUMNS);
        let columns = ColumnMap { index };
        let header_end = reader.position().byte();
        if standard && fast_index {
            if let Some(index) = index_lines(&file, header_end, file_len, &columns)? {
                return Ok(Some(Prior::indexed(file, columns, standard, index)));
            }
        }
        let mut index = LineIndex::new(header_end, file_len, standard);
        let mut fields = csv::StringRecord::new();
        loop {
            let start = reader.position().byte();
            match reader.read_record(&mut fields) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    return Err(fail(line, format!("cannot read this record: {e}")).into());
                }
            }
            let end = reader.position().byte();
            let line = fields.position().map_or(0, |p| p.line());
            if end == file_len && !ends_with_newline(&file, file_len)? {
                // No newline at the end: a record a crash cut short, or a whole record in a
                // file an editor saved without a final newline. Only the first is dropped:
                // dropping a whole `created` record would send its row again.
                let mut bytes = vec![0u8; (end - start) as usize];
                file.read_exact_at(&mut bytes, start)?;
                let quotes_closed = bytes.iter().filter(|&&b| b == b'"').count() % 2 == 0;
                if quotes_closed && is_whole(&fields, header.len(), &columns) {
                    index.missing_newline = true;
                } else if !bytes.contains(&b'\n') {
                    index.torn_line = Some(line); // its row was in flight: it counts as not recorded
                    break;
                } else if !quotes_closed {
                    return Err(fail(
                        line,
                        "a quoted cell that starts in this record is never closed (edited by hand?)"
                            .to_owned(),
                    )
                    .into());
                }
            }
            if fields.len() != header.len() {
                return Err(fail(
                    line,
                    format!(
                        "{} fields where the header has {} (edited by hand?)",
                        fields.len(),
                        header.len()
                    ),
                )
                .into());
            }
            // Only what the index needs is checked here; whole records are read on lookup.
            let row_text = columns.get(&fields, "row");
            let row: usize = row_text
                .parse()
                .map_err(|_| fail(line, format!("`row` is `{row_text}`, not a number")))?;
            let status = columns.get(&fields, "status");
            let Some(status) = Status::parse(status) else {
                return Err(fail(
                    line,
                    format!("`status` is `{status}`, not created, failed, invalid or pending"),
                )
                .into());
            };
            index.add(
                row,
                status,
                columns.get(&fields, "campaign"),
                columns.get(&fields, "input_hash").as_bytes(),
                Span::new(start, (end - start) as usize),
            );
        }
        Ok(Some(Prior::indexed(file, columns, standard, index)))
    }

    fn indexed(file: File, columns: ColumnMap, standard: bool, index: LineIndex) -> Prior {
        let displaced = !index.shadowed.is_empty();
        Prior {
            file,
            columns,
            by_row: index.by_row,
            shadowed: index.shadowed,
            by_request_id: None,
            campaign: index.campaign,
            valid_len: index.valid_len,
            records: index.records,
            canonical: index.canonical,
            torn_line: index.torn_line,
            missing_newline: index.missing_newline,
            standard,
            unchanged: index.unchanged.finish().filter(|_| !displaced),
        }
    }

    /// The `input_hash` of each row's `created` record, by row number (0: none), for
    /// [`Batch::skip_unchanged`](crate::batch::Batch::skip_unchanged). `None` when the row
    /// number alone does not find a row's record (a killed run displaced some).
    pub fn unchanged_rows(&self) -> Option<Arc<Vec<u64>>> {
        self.unchanged.clone()
    }

    /// Where the record at `row` is (a row [`unchanged_rows`](Self::unchanged_rows) vouched for).
    pub fn span_at(&self, row: u64) -> Option<Span> {
        self.by_row
            .get(row as usize)
            .copied()
            .filter(|s| !s.is_none())
    }

    /// False when the header is not this version's (columns reordered, added or removed in a
    /// spreadsheet): records appended during a run would not match it, see [`normalise`].
    pub fn standard_layout(&self) -> bool {
        self.standard
    }

    /// The prior record for this row's request_id: found at the same row number when the
    /// CSV is unchanged, else by request_id (the index for that is built on first need).
    pub fn lookup(&mut self, row: u64, request_id: &str) -> anyhow::Result<Option<(Record, Span)>> {
        if request_id.is_empty() {
            return Ok(None);
        }
        // The row-number shortcut holds only when no record was displaced: else a later
        // record of this request_id may sit elsewhere.
        if let Some(&span) = self
            .by_row
            .get(row as usize)
            .filter(|_| self.shadowed.is_empty())
        {
            if !span.is_none() {
                let record = self.read(span)?;
                if record.request_id == request_id {
                    return Ok(Some((record, span)));
                }
            }
        }
        if self.by_request_id.is_none() {
            // In file order, so the latest record of each request_id wins.
            let mut spans: Vec<Span> = self.spans().collect();
            spans.sort_unstable_by_key(|s| s.offset());
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
            Some(span) => Ok(Some((self.read(span)?, span))),
            None => Ok(None),
        }
    }

    fn read(&self, span: Span) -> anyhow::Result<Record> {
        read_record(&self.file, &self.columns, span)
    }

    /// Spans of every record: the last of each row number, then the displaced ones.
    fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        self.by_row
            .iter()
            .copied()
            .filter(|s| !s.is_none())
            .chain(self.shadowed.iter().copied())
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

/// The index [`Prior::open`] builds, as [`index_lines`] finds it.
struct LineIndex {
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

/// Column positions in this version's layout, for [`index_lines`].
const ROW: usize = 1;
const STATUS: usize = 3;
const CAMPAIGN: usize = 12;
const INPUT_HASH: usize = 14;

/// Indexes a ledger in this version's layout at memory speed, for the usual case where every
/// record is one line (bodies are JSON and errors are made one line, so only a hand edit or
/// a line break inside a customer's cell puts one in a record). The general CSV parser costs
/// seconds on a million-row ledger; this finds lines with `memchr` and splits only the few
/// cells the index needs. Returns `None` at anything unusual (a quoted cell not closed on its
/// line, so it spans lines; a cell it cannot read), and [`Prior::open`] then reads the file
/// with the CSV parser, which also words any error precisely.
fn index_lines(
    file: &File,
    start: u64,
    file_len: u64,
    columns: &ColumnMap,
) -> std::io::Result<Option<LineIndex>> {
    let mut index = LineIndex::new(start, file_len, true);
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0; // bytes in `buf`, which starts at file offset `at`
    let mut at = start;
    loop {
        let read = file.read_at(&mut buf[filled..], at + filled as u64)?;
        filled += read;
        let mut used = 0;
        while let Some(newline) = memchr::memchr(b'\n', &buf[used..filled]) {
            let line = &buf[used..used + newline];
            let Some(record) = split_line(line) else {
                return Ok(None);
            };
            if !index.add_line(&record, Span::new(at + used as u64, newline + 1)) {
                return Ok(None);
            }
            used += newline + 1;
        }
        if read == 0 {
            if used < filled {
                // The last record has no newline: whole (an editor saved it so) or torn.
                let tail = &buf[used..filled];
                let whole = split_line(tail).is_some()
                    && parse_line(tail)
                        .is_ok_and(|fields| is_whole(&fields, COLUMNS.len(), columns));
                if !whole {
                    index.torn_line = Some(index.records + 2);
                } else if !index.add_line(
                    &split_line(tail).expect("checked"),
                    Span::new(at + used as u64, tail.len()),
                ) {
                    return Ok(None);
                } else {
                    index.missing_newline = true;
                }
            }
            break;
        }
        buf.copy_within(used..filled, 0);
        at += used as u64;
        filled -= used;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0); // a line longer than the buffer
        }
        if at + filled as u64 > file_len {
            return Ok(None); // the file grew while being read
        }
    }
    Ok(Some(index))
}

impl LineIndex {
    /// An index of no records yet; `in_layout`: the header is this version's.
    fn new(start: u64, file_len: u64, in_layout: bool) -> LineIndex {
        LineIndex {
            file_len,
            by_row: Vec::new(),
            shadowed: Vec::new(),
            campaign: None,
            valid_len: start,
            records: 0,
            canonical: in_layout,
            torn_line: None,
            missing_newline: false,
            unchanged: UnchangedRows::default(),
        }
    }

    /// Adds the record at `span`, the file's next; its cells as text (`campaign` unquoted).
    fn add(&mut self, row: usize, status: Status, campaign: &str, input_hash: &[u8], span: Span) {
        if self.campaign.is_none() && !campaign.is_empty() {
            self.campaign = Some(restore(campaign));
        }
        if self.records == 0 {
            // Records are about the same length: room for the rest of the file at half this
            // one's, so the lists are not grown (and copied) twenty times over a big ledger.
            let rest = self.file_len.saturating_sub(span.offset());
            let rows = rest / (span.len() as u64 / 2).max(64) + 1;
            self.by_row.reserve(row + rows as usize + 1);
            self.unchanged.expected = row + rows as usize + 1;
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
        self.valid_len = span.offset() + span.len() as u64;
    }

    /// Adds one line's record from its raw cells; false when it is not what the fast path
    /// reads (the CSV parser then reads the file, and words the problem).
    fn add_line(&mut self, cells: &[&[u8]; INPUT_HASH + 1], span: Span) -> bool {
        let text = |cell| std::str::from_utf8(cell).ok();
        let (Some(row), Some(status)) = (
            text(cells[ROW]).and_then(|r| r.parse::<usize>().ok()),
            text(cells[STATUS]).and_then(Status::parse),
        ) else {
            return false;
        };
        // The campaign is taken from the first record that names one.
        let campaign = match self.campaign {
            Some(_) => Cow::Borrowed(""),
            None => match text(cells[CAMPAIGN]).map(unquote) {
                Some(name) => name,
                None => return false,
            },
        };
        self.add(row, status, &campaign, cells[INPUT_HASH], span);
        true
    }
}

/// A raw CSV cell's text: without its quotes, and `""` made `"` again, if it is quoted.
fn unquote(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        Some(inner) => Cow::Owned(inner.replace("\"\"", "\"")),
        None => Cow::Borrowed(cell),
    }
}

/// The raw cells up to `input_hash` of a one-line record in this version's layout (a quoted
/// cell keeps its quotes), after checking that the line holds exactly [`COLUMNS`] cells.
/// `None` when the line is not such a record, or is only part of one (a quoted cell that goes
/// on past the line has no closing quote in it).
fn split_line(line: &[u8]) -> Option<[&[u8]; INPUT_HASH + 1]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut cells: [&[u8]; INPUT_HASH + 1] = [&[]; INPUT_HASH + 1];
    let mut rest = line;
    for cell in cells.iter_mut() {
        let end = cell_end(rest)?;
        *cell = &rest[..end];
        rest = rest.get(end + 1..)?; // past the comma; a missing one means too few cells
    }
    // The last cell, `body`, is JSON with many escaped quotes, and only read when needed:
    // it is checked to be one whole cell by its quotes, not parsed.
    let one_cell = match rest {
        [b'"', inner @ .., b'"'] => count_quotes(inner).is_multiple_of(2),
        _ => memchr::memchr2(b',', b'"', rest).is_none(),
    };
    one_cell.then_some(cells)
}

/// Counts `"` bytes, in a way the compiler turns into vector instructions.
fn count_quotes(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|chunk| chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'"')) as usize)
        .sum()
}

/// Where the cell at the start of `text` ends (the index of its comma, or the length).
fn cell_end(text: &[u8]) -> Option<usize> {
    if text.first() != Some(&b'"') {
        return Some(memchr::memchr(b',', text).unwrap_or(text.len()));
    }
    let mut from = 1;
    loop {
        let quote = from + memchr::memchr(b'"', &text[from..])?;
        if text.get(quote + 1) == Some(&b'"') {
            from = quote + 2; // an escaped quote
            continue;
        }
        return match text.get(quote + 1) {
            None | Some(b',') => Some(quote + 1),
            Some(_) => None, // text after the closing quote: not ours
        };
    }
}

/// A last record with every field, valid values and (if any) a body that is whole JSON: a
/// record cut inside its last cell (`body`) fails the JSON test, one cut earlier the count.
fn is_whole(fields: &csv::StringRecord, header_len: usize, columns: &ColumnMap) -> bool {
    let body = columns.get(fields, "body");
    fields.len() == header_len
        && Record::from_fields(fields, columns).is_ok()
        && (body.is_empty() || serde_json::from_str::<serde_json::Value>(body).is_ok())
}

fn ends_with_newline(file: &File, len: u64) -> std::io::Result<bool> {
    if len == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] == b'\n')
}

fn read_record(file: &File, columns: &ColumnMap, span: Span) -> anyhow::Result<Record> {
    let mut bytes = vec![0u8; span.len()];
    file.read_exact_at(&mut bytes, span.offset())?;
    let fields = parse_line(&bytes)?;
    Record::from_fields(&fields, columns).map_err(|m| anyhow::anyhow!("ledger record: {m}"))
}

thread_local! {
    /// Building a CSV parser costs far more than parsing one record, and a re-run parses one
    /// record per row: so each thread builds one and reuses it.
    static LINE_PARSER: std::cell::RefCell<csv_core::Reader> =
        std::cell::RefCell::new(csv_core::Reader::new());
}

/// Parses one CSV record (a whole line of the ledger).
fn parse_line(input: &[u8]) -> anyhow::Result<csv::StringRecord> {
    LINE_PARSER.with(|parser| {
        let mut parser = parser.borrow_mut();
        parser.reset();
        let mut out = vec![0u8; input.len() + 1];
        let mut ends = vec![0usize; COLUMNS.len() + 8];
        let (mut read, mut written, mut fields) = (0, 0, 0);
        loop {
            let (result, nin, nout, nend) =
                parser.read_record(&input[read..], &mut out[written..], &mut ends[fields..]);
            read += nin;
            written += nout;
            fields += nend;
            match result {
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => break,
                csv_core::ReadRecordResult::InputEmpty if read >= input.len() => {
                    // No trailing newline: an empty read finishes the record.
                    let (result, _, nout, nend) =
                        parser.read_record(&[], &mut out[written..], &mut ends[fields..]);
                    written += nout;
                    fields += nend;
                    anyhow::ensure!(
                        matches!(result, csv_core::ReadRecordResult::Record),
                        "ledger record is incomplete"
                    );
                    break;
                }
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => out.resize(out.len() * 2, 0),
                csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
            }
        }
        let _ = written;
        let mut record = csv::StringRecord::with_capacity(written, fields);
        let mut start = 0;
        for &end in &ends[..fields] {
            let field = std::str::from_utf8(&out[start..end])
                .map_err(|_| anyhow::anyhow!("ledger record is not UTF-8"))?;
            record.push_field(field);
            start = end;
        }
        Ok(record)
    })
}

/// What the run tells the writer about each row.
#[derive(Debug)]
pub enum Entry {
    /// A new or updated record, appended now.
    Write(Box<Record>),
    /// The prior record stays as it is (a row created earlier).
    Keep { row: u64, span: Span },
    /// The prior record is replaced by a new one for the same request_id.
    Retire(Span),
}

/// Appends records as they come, and rewrites the file in input order at the end.
pub struct Writer {
    shared: Arc<Mutex<Appender>>,
    /// Builds the ordered copy during the run, when the ledger is new.
    copier: Option<ordered_copy::Copier>,
}

/// A cloneable handle for giving entries to the ledger writer from any thread or task.
///
/// Records are written to the file before `send`/`send_all` returns: one `write` of whole
/// records, with no thread hand-off or timer in between. That is both the durability rule
/// (a `kill -9` loses only rows still in flight) and cheaper than waking a writer thread.
#[derive(Clone)]
pub struct EntrySender {
    shared: Arc<Mutex<Appender>>,
}

impl EntrySender {
    pub fn send(&self, entry: Entry) {
        self.send_all([entry]);
    }

    /// Takes several entries at once: their records go to the file in one `write`. The run
    /// hands over every row that finished in the same turn of its event loop, so records are
    /// written as soon as before (nothing waits for a batch to fill) with fewer system calls.
    pub fn send_all(&self, entries: impl IntoIterator<Item = Entry>) {
        let mut appender = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if appender.error.is_none() {
            if let Err(e) = appender.take_all(entries) {
                appender.error = Some(e);
            }
        }
    }
}

/// The writer's state behind its lock.
struct Appender {
    state: WriterState,
    /// File length: where the next record goes.
    end: u64,
    /// Records waiting for the one `write` that ends `take_all`.
    pending: Vec<u8>,
    /// The first write error; reported by `finish`.
    error: Option<anyhow::Error>,
    /// Rows `1..=copied_rows` were taken by the ordered copy (see [`ordered_copy`]).
    copied_rows: usize,
    /// A row the ordered copy already took was written again (or a record retired): that
    /// copy is thrown away and the file rewritten whole at the end.
    copy_stale: bool,
}

impl Appender {
    fn take_all(&mut self, entries: impl IntoIterator<Item = Entry>) -> anyhow::Result<()> {
        self.pending.clear();
        for entry in entries {
            match entry {
                Entry::Write(record) => {
                    let start = self.pending.len();
                    record.write_to(&mut self.pending)?;
                    let len = self.pending.len() - start;
                    let span = Span::new(self.end + start as u64, len);
                    self.copy_stale |= record.row as usize <= self.copied_rows;
                    set_span(&mut self.state.by_row, record.row, span);
                }
                Entry::Keep { row, span } => {
                    self.copy_stale |= row as usize <= self.copied_rows;
                    set_span(&mut self.state.by_row, row, span);
                }
                Entry::Retire(span) => {
                    self.copy_stale = true;
                    self.state.retired.push(span);
                }
            }
        }
        if !self.pending.is_empty() {
            // One write of whole records: a kill can never leave part of one behind except at
            // the very end, which the next run cuts off.
            self.state.file.write_all(&self.pending)?;
            self.end += self.pending.len() as u64;
            self.state.wrote = true;
        }
        Ok(())
    }
}

struct WriterState {
    path: PathBuf,
    file: File,
    by_row: Vec<Span>,
    prior_spans: Vec<Span>,
    retired: Vec<Span>,
    /// The prior file is canonical (see [`Prior`]) with one record per row of this run.
    prior_canonical: bool,
    wrote: bool,
}

impl Writer {
    /// Opens `path` for appending (creating it and its folder if needed). A torn tail left by
    /// a crash is cut off first.
    pub fn start(path: &Path, prior: Option<&Prior>, total_rows: u64) -> anyhow::Result<Writer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create folder {}", dir.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open {} for writing", path.display()))?;
        match prior {
            Some(prior) if prior.valid_len > 0 => {
                file.set_len(prior.valid_len)?;
                if let Some(line) = prior.torn_line {
                    eprintln!(
                        "note: {}:{line}: removed an incomplete last record (a run was killed while writing it); that row counts as not recorded",
                        path.display()
                    );
                }
                if prior.missing_newline {
                    file.seek(SeekFrom::End(0))?;
                    file.write_all(b"\n")?;
                }
            }
            _ => {
                // Only a file with something in it is emptied: on ext4, truncating even an
                // empty file to zero marks it to have all its data written out when it is
                // closed, and this file is closed right after its ordered copy replaced it
                // (writing out 67 MB at the end of a 100,000-row run, for nothing).
                if file.metadata()?.len() > 0 {
                    file.set_len(0)?;
                }
                file.write_all(header_line().as_bytes())?;
            }
        }
        let end = file.seek(SeekFrom::End(0))?;
        let state = WriterState {
            path: path.to_path_buf(),
            file,
            by_row: vec![Span::NONE; total_rows as usize + 1],
            prior_spans: prior
                .map(|p| {
                    let mut spans = Vec::with_capacity(p.records as usize);
                    spans.extend(p.spans());
                    spans
                })
                .unwrap_or_default(),
            retired: Vec::new(),
            prior_canonical: prior.is_some_and(|p| p.canonical && p.records == total_rows),
            wrote: false,
        };
        let fresh = prior.is_none_or(|p| p.records == 0);
        // Its own handle, not a clone: a clone shares the writer's cursor, which Windows'
        // positional reads move.
        let reader = fresh.then(|| File::open(path)).transpose()?;
        let appender = Appender {
            state,
            end,
            pending: Vec::with_capacity(1 << 14),
            error: None,
            copied_rows: 0,
            copy_stale: false,
        };
        let shared = Arc::new(Mutex::new(appender));
        // Only a new ledger: an older one's records are kept, retired or backed up at the
        // end, which only the whole rewrite knows how to do. Without a thread, the same.
        let copier = match reader {
            Some(reader) => ordered_copy::Copier::start(Arc::clone(&shared), path, reader).ok(),
            None => None,
        };
        Ok(Writer { shared, copier })
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

    /// Syncs what was appended, then rewrites the file in input order. Every sender must be
    /// done (dropped or idle) by now.
    pub fn finish(self) -> anyhow::Result<()> {
        let copying = self.copier.is_some();
        // A copy that failed (a read or write error) is only a head start lost.
        let copy = self.copier.and_then(|copier| copier.finish().ok());
        let appender = Arc::try_unwrap(self.shared)
            .map_err(|_| anyhow::anyhow!("the ledger is still being written to"))?
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(error) = appender.error {
            if copying {
                let _ = std::fs::remove_file(temp_path(&appender.state.path)); // a partial copy
            }
            return Err(error.context("cannot write the output file"));
        }
        // The appended file is not synced first: the ordered copy is (before it replaces
        // it), and syncing a file about to be unlinked only writes it all to disk for nothing
        // (60 ms for 100,000 rows). Until the rename the appended file is what it was during
        // the run: flushed, as the one-second rule asks.
        let copy = copy.filter(|_| !appender.copy_stale);
        rewrite_in_order(appender.state, copy)
    }
}

fn header_line() -> String {
    let mut line = COLUMNS.join(",");
    line.push('\n');
    line
}

fn set_span(by_row: &mut Vec<Span>, row: u64, span: Span) {
    let row = row as usize;
    if by_row.len() <= row {
        by_row.resize(row + 1, Span::NONE);
    }
    by_row[row] = span;
}

/// Writes one record per input row, in order, to a temp file, then renames it over the ledger.
/// `copy` holds the first rows already, when the ordered copy was built during the run.
fn rewrite_in_order(
    state: WriterState,
    copy: Option<ordered_copy::OrderedCopy>,
) -> anyhow::Result<()> {
    let unchanged = !state.wrote
        && state.retired.is_empty()
        && state.prior_canonical
        && state.by_row[1..] == state.prior_spans[..];
    if unchanged {
        if copy.is_some() {
            let _ = std::fs::remove_file(temp_path(&state.path)); // the copy's, not needed
        }
        return Ok(()); // already one record per row, in order: nothing to rewrite
    }
    let WriterState {
        path,
        file,
        by_row,
        prior_spans,
        retired,
        ..
    } = state;
    let columns = ColumnMap::standard();
    // Records of an older run whose customer is no longer in the CSV would vanish: keep a copy.
    // Only request_ids that are not written again count (a record superseded by a later one
    // of the same request_id, left by a killed run, is not a loss).
    // A sorted list, not a set: 8 bytes a record instead of about 20 (a million-row send is
    // at its peak of memory here), and none at all when there was no older run.
    let mut kept: Vec<u64> = Vec::new();
    if !prior_spans.is_empty() {
        kept.extend(by_row.iter().chain(&retired).map(|s| s.0));
        kept.sort_unstable();
    }
    let mut dropped: std::collections::HashSet<String> = prior_spans
        .iter()
        .filter(|s| kept.binary_search(&s.0).is_err())
        .filter_map(|&s| read_record(&file, &columns, s).ok())
        .filter(|r| r.status == Status::Created)
        .map(|r| r.request_id)
        .collect();
    let (mut out, first_row) = match copy {
        Some(copy) => (copy.out, copy.next_row),
        None => (start_replacement(&path)?, 1),
    };
    let mut line = Vec::with_capacity(1 << 12);
    let mut records = SpanReader::new(&file);
    for (row, span) in by_row.iter().enumerate().skip(first_row) {
        if !span.is_none() {
            copy_record(&mut out, &mut records, row, *span, &mut dropped, &mut line)?;
        }
    }
    if !dropped.is_empty() {
        let backup = backup_path(&path);
        std::fs::copy(&path, &backup)?;
        eprintln!(
            "warning: {} created row(s) in {} are no longer in the CSV; the old file is kept as {}",
            dropped.len(),
            path.display(),
            backup.display()
        );
    }
    complete_replacement(out, &path)
}

/// Writes the record at `span` to an ordered copy as row `row`: copied as it is when it is
/// already one line that says that row, else parsed and written again. A record whose
/// request_id is in `dropped` is taken out of it (it is not lost after all).
fn copy_record(
    out: &mut BufWriter<File>,
    records: &mut SpanReader,
    row: usize,
    span: Span,
    dropped: &mut std::collections::HashSet<String>,
    line: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let bytes = records.get(span)?;
    // A span the CSV parser found in a file with `\r\n` line ends starts at the `\n`:
    // such records are written again, not copied.
    let one_line = !bytes.starts_with(b"\n") && !bytes.starts_with(b"\r");
    if dropped.is_empty()
        && one_line
        && row_cell(bytes) == Some(itoa::Buffer::new().format(row).as_bytes())
    {
        // Already as it should be: copied as it is, not parsed and written again.
        out.write_all(bytes)?;
        if !bytes.ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    let fields = parse_line(bytes)?;
    let mut record = Record::from_fields(&fields, &ColumnMap::standard())
        .map_err(|m| anyhow::anyhow!("ledger record: {m}"))?;
    record.row = row as u64;
    if !dropped.is_empty() {
        dropped.remove(&record.request_id);
    }
    line.clear();
    record.write_to(line)?;
    out.write_all(line)?;
    Ok(())
}

/// Reads records by their spans through a window of the file. The spans of a rewrite come
/// nearly in file order (rows finish roughly in the order they were sent), so one read of a
/// few MiB serves thousands of records, where a read per record would cost a system call each.
struct SpanReader<'f> {
    file: &'f File,
    /// Allocated once; `window[..filled]` holds the file from `start` on.
    window: Vec<u8>,
    filled: usize,
    start: u64,
}

impl<'f> SpanReader<'f> {
    const WINDOW: usize = 4 << 20;
    /// A window starts this far before the span that needed it: rows finish a little out of
    /// order, so the next rows' records are often just before this one's.
    const BEHIND: u64 = 256 << 10;

    fn new(file: &'f File) -> SpanReader<'f> {
        SpanReader {
            file,
            window: Vec::new(),
            filled: 0,
            start: 0,
        }
    }

    fn get(&mut self, span: Span) -> std::io::Result<&[u8]> {
        let (offset, len) = (span.offset(), span.len());
        let inside = offset >= self.start && offset + len as u64 <= self.start + self.filled as u64;
        if !inside {
            let start = offset.saturating_sub(Self::BEHIND);
            let size = Self::WINDOW.max((offset - start) as usize + len);
            if self.window.len() < size {
                self.window.resize(size, 0);
            }
            // Up to the end of the file, which may be short of a whole window (it may still
            // be growing: the ordered copy reads it while the run appends).
            let mut filled = 0;
            while filled < size {
                match self
                    .file
                    .read_at(&mut self.window[filled..size], start + filled as u64)?
                {
                    0 => break,
                    n => filled += n,
                }
            }
            (self.start, self.filled) = (start, filled);
            if start + (filled as u64) < offset + len as u64 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let at = (offset - self.start) as usize;
        Ok(&self.window[at..at + len])
    }
}

/// The raw `row` cell (the second) of a record in this version's layout.
fn row_cell(record: &[u8]) -> Option<&[u8]> {
    let rest = record.get(cell_end(record)? + 1..)?;
    Some(&rest[..cell_end(rest)?])
}

/// The temp file that replaces the ledger at `path`, with the header written: the first half
/// of an atomic replacement, so that readers see the old file or the new one, never a mix.
fn start_replacement(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let mut out = BufWriter::with_capacity(1 << 18, File::create(temp_path(path))?);
    out.write_all(header_line().as_bytes())?;
    Ok(out)
}

/// The second half: fsync of the temp file, rename over `path`, fsync of the folder.
fn complete_replacement(out: BufWriter<File>, path: &Path) -> anyhow::Result<()> {
    let out = out.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(temp_path(path), path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    path.with_extension("csv.tmp")
}

fn backup_path(path: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now().as_second();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{stamp}.bak"));
    path.with_file_name(name)
}

/// Reads a whole ledger (for `status` and `reconcile`, which rewrite every row anyway).
pub fn read_all(path: &Path) -> anyhow::Result<Vec<Record>> {
    let prior =
        Prior::open(path)?.ok_or_else(|| anyhow::anyhow!("{} does not exist", path.display()))?;
    if prior.shadowed.is_empty() {
        return prior.spans().map(|s| prior.read(s)).collect();
    }
    // A killed run left displaced records: keep the latest of each request_id (records
    // without one only where no later record took their row), ordered by row.
    let mut records = prior
        .spans()
        .map(|s| Ok((s, prior.read(s)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut latest: HashMap<&str, u64> = HashMap::new();
    for (span, record) in &records {
        let offset = latest.entry(&record.request_id).or_default();
        *offset = (*offset).max(span.offset());
    }
    let keep: Vec<bool> = records
        .iter()
        .map(|(span, r)| match r.request_id.as_str() {
            "" => !prior.shadowed.contains(span),
            id => latest[id] == span.offset(),
        })
        .collect();
    let mut keep = keep.into_iter();
    records.retain(|_| keep.next().unwrap_or(false));
    records.sort_by_key(|(span, r)| (r.row, span.offset()));
    Ok(records.into_iter().map(|(_, r)| r).collect())
}

/// Rewrites a ledger whose header is not this version's in the standard layout, keeping the
/// original beside it as a backup; returns the backup's path. A run appends records in the
/// standard layout, so without this a reordered or trimmed header would not match them.
pub fn normalise(path: &Path) -> anyhow::Result<PathBuf> {
    let records = read_all(path)?;
    let backup = backup_path(path);
    std::fs::copy(path, &backup)
        .with_context(|| format!("cannot back up {} as {}", path.display(), backup.display()))?;
    write_all(path, &records)?;
    Ok(backup)
}

/// Replaces the ledger at `path` with `records` (in the order given), atomically.
pub fn write_all(path: &Path, records: &[Record]) -> anyhow::Result<()> {
    let mut out = start_replacement(path)?;
    let mut line = Vec::new();
    for record in records {
        line.clear();
        record.write_to(&mut line)?;
        out.write_all(&line)?;
    }
    complete_replacement(out, path)
}

/// Holds an exclusive lock on `<output>.lock` for as long as it lives. The OS releases the
/// lock when the process dies, so a lock left by a crashed run never blocks the next one.
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    pub fn acquire(output: &Path) -> anyhow::Result<Lock> {
        let mut name = output.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let path = output.with_file_name(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
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
                .with_context(|| format!("cannot create lock file {}", path.display()))?;
            if !fs4::fs_std::FileExt::try_lock_exclusive(&file).unwrap_or(false) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                anyhow::bail!(
                    "{} is in use by another creem-batch run (pid {}); wait for it to finish, or use another --out (nothing was sent)",
                    output.display(),
                    holder.trim()
                );
            }
            // The run that held the lock deletes the file as it ends. If it did so between our
            // open and our lock, we hold a lock on a file no other run will see: start over
            // (a few times: a file system without stable inode numbers must not loop forever).
            if tries >= 5 || is_same_file(&file, &path) {
                break file;
            }
        };
        file.set_len(0)?;
        file.write_all(std::process::id().to_string().as_bytes())?;
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
    fn formulas_are_neutralised_and_restored() {
        for cell in ["=1+1", "+33", "-2", "@SUM(A1)", "'=x", "'plain"] {
            let written = neutralise(cell);
            assert_eq!(written, format!("'{cell}"));
            assert_eq!(restore(&written), cell);
        }
        assert_eq!(neutralise("ana@example.com"), "ana@example.com");
    }

    #[test]
    fn one_line_parses_like_the_csv_crate() {
        let line = b"a,\"b,\"\"q\"\"\",,\"x\ny\"\n";
        let parsed = parse_line(line).unwrap();
        assert_eq!(
            parsed.iter().collect::<Vec<_>>(),
            ["a", "b,\"q\"", "", "x\ny"]
        );
        let parsed = parse_line(b"1,2").unwrap();
        assert_eq!(parsed.iter().collect::<Vec<_>>(), ["1", "2"]);
    }

    /// What an index holds, to compare the two ways of building it.
    fn summary(prior: &Prior) -> String {
        format!(
            "{:?}",
            (
                &prior.by_row,
                &prior.shadowed,
                &prior.campaign,
                prior.valid_len,
                prior.records,
                prior.canonical,
                prior.torn_line,
                prior.missing_newline,
                &prior.unchanged,
            )
        )
    }

    #[test]
    fn the_line_index_agrees_with_the_csv_parser() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let record = |row, status, error: &str, hash: &str| {
            let mut r = Record::new("-spring, 2026", row, &format!("id-{row}"), "", status);
            r.error = error.to_owned();
            r.input_hash = hash.to_owned();
            r.body = r#"{"a":"x,\"y\"","b":1}"#.to_owned();
            let mut line = Vec::new();
            r.write_to(&mut line).unwrap();
            String::from_utf8(line).unwrap()
        };
        let ordered = [
            record(1, Status::Created, "", "00000000000000aa"),
            record(2, Status::Failed, "HTTP 500, \"boom\"", ""),
            record(3, Status::Created, "", "00000000000000cc"),
        ]
        .concat();
        let header = header_line();
        // (case, ledger text, read by the line index rather than the CSV parser)
        let cases = [
            ("in order", format!("{header}{ordered}"), true),
            (
                "out of order, one displaced",
                format!(
                    "{header}{}{}{}",
                    record(2, Status::Failed, "", ""),
                    record(1, Status::Created, "", "00000000000000aa"),
                    record(2, Status::Created, "", "00000000000000bb"),
                ),
                true,
            ),
            (
                "no final newline",
                format!("{header}{}", ordered.trim_end()),
                true,
            ),
            (
                "torn tail",
                format!("{header}{}", &ordered[..ordered.len() - 20]),
                true,
            ),
            (
                "windows newlines",
                format!("{header}{}", ordered.replace('\n', "\r\n")),
                true,
            ),
            (
                "a cell over two lines",
                format!(
                    "{header}{}{}",
                    record(1, Status::Created, "", "00000000000000aa"),
                    // A cell a spreadsheet gave a line break (errors are made one line).
                    record(2, Status::Failed, "", "").replacen("'-spring", "'-spring\nx", 1),
                ),
                false,
            ),
            ("header only", header.clone(), true),
        ];
        for (name, text, fast_path) in cases {
            std::fs::write(&path, &text).unwrap();
            let file = File::open(&path).unwrap();
            let columns = ColumnMap::standard();
            let lines = index_lines(&file, header.len() as u64, text.len() as u64, &columns);
            assert_eq!(lines.unwrap().is_some(), fast_path, "{name}");
            let fast = Prior::open_with(&path, true).unwrap().unwrap();
            let slow = Prior::open_with(&path, false).unwrap().unwrap();
            if name == "windows newlines" {
                // The CSV parser ends a record at its `\r` and starts the next at the `\n`;
                // the line index keeps `\r\n` with its record. Same records either way.
                let rows = |p: &Prior| {
                    p.spans()
                        .map(|span| p.read(span).unwrap().row)
                        .collect::<Vec<_>>()
                };
                assert_eq!(rows(&fast), rows(&slow), "{name}");
                assert_eq!(
                    (fast.records, &fast.campaign, &fast.unchanged),
                    (slow.records, &slow.campaign, &slow.unchanged)
                );
                continue;
            }
            assert_eq!(summary(&fast), summary(&slow), "{name}");
        }
        // The checks: an index of created rows' input hashes, the campaign read back.
        std::fs::write(&path, format!("{header}{ordered}")).unwrap();
        let prior = Prior::open(&path).unwrap().unwrap();
        assert_eq!(
            prior.unchanged_rows().unwrap().as_slice(),
            [0, 0xaa, 0, 0xcc]
        );
        assert_eq!(prior.campaign.as_deref(), Some("-spring, 2026"));
        assert!(prior.canonical);
    }

    #[test]
    fn a_rewrite_of_a_windows_ledger_read_by_the_csv_parser_keeps_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let line = |r: Record| {
            let mut bytes = Vec::new();
            r.write_to(&mut bytes).unwrap();
            String::from_utf8(bytes).unwrap().replace('\n', "\r\n")
        };
        let mut multi = Record::new("c", 2, "id-2", "", Status::Failed);
        multi.order_id = "two\nlines".to_owned(); // a cell over two lines: no line index
        let text = format!(
            "{}{}{}",
            header_line().replace('\n', "\r\n"),
            line(Record::new("c", 1, "id-1", "", Status::Created)),
            line(multi),
        );
        std::fs::write(&path, text).unwrap();
        let prior = Prior::open(&path).unwrap().unwrap();
        let writer = Writer::start(&path, Some(&prior), 3).unwrap();
        for row in [1, 2] {
            let span = prior.span_at(row).unwrap();
            writer.send(Entry::Keep { row, span });
        }
        let new = Record::new("c", 3, "id-3", "", Status::Created);
        writer.send(Entry::Write(Box::new(new)));
        writer.finish().unwrap();
        let rewritten = std::fs::read_to_string(&path).unwrap();
        assert!(
            !rewritten.contains("\n\n") && !rewritten.contains("\n\r\n"),
            "{rewritten}"
        );
        let ids: Vec<String> = read_all(&path)
            .unwrap()
            .into_iter()
            .map(|r| r.request_id)
            .collect();
        assert_eq!(ids, ["id-1", "id-2", "id-3"]);
    }

    #[test]
    fn an_output_of_blank_lines_is_emptied_before_records_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "\n".repeat(2000)).unwrap(); // longer than the header
        let prior = Prior::open(&path).unwrap();
        assert_eq!(prior.as_ref().map(|p| p.valid_len), Some(0));
        let writer = Writer::start(&path, prior.as_ref(), 1).unwrap();
        writer.send(Entry::Write(Box::new(Record::new(
            "c",
            1,
            "id-1",
            "",
            Status::Created,
        ))));
        // As a kill now would leave it: the header first, then the record.
        let during = std::fs::read_to_string(&path).unwrap();
        assert!(during.starts_with(&header_line()), "{during:?}");
        assert_eq!(during.lines().count(), 2, "{during:?}");
        writer.finish().unwrap();
        let ids: Vec<String> = read_all(&path)
            .unwrap()
            .into_iter()
            .map(|r| r.request_id)
            .collect();
        assert_eq!(ids, ["id-1"]);
    }

    fn created(row: u64) -> Entry {
        Entry::Write(Box::new(Record::new(
            "c",
            row,
            &format!("id-{row}"),
            "",
            Status::Created,
        )))
    }

    /// Every record in the file, as it is (`read_all` would hide a record written twice).
    fn rows_and_statuses(path: &Path) -> Vec<(u64, String, Status)> {
        csv::Reader::from_path(path)
            .unwrap()
            .records()
            .map(|fields| {
                let record = Record::from_fields(&fields.unwrap(), &ColumnMap::standard());
                let record = record.unwrap();
                (record.row, record.request_id, record.status)
            })
            .collect()
    }

    #[test]
    fn a_new_ledger_is_copied_in_order_as_rows_are_done_and_finished_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let writer = Writer::start(&path, None, 6).unwrap();
        let turn = || writer.copier.as_ref().expect("a new ledger").take_turn();
        let copied = || writer.shared.lock().unwrap().copied_rows;
        writer
            .sender()
            .send_all([created(2), created(1), created(3)]);
        turn();
        assert_eq!(copied(), 3, "rows 1 to 3 are done");
        writer.send(created(5));
        turn();
        assert_eq!(copied(), 3, "row 4 is not done yet");
        writer.sender().send_all([created(6), created(4)]);
        writer.finish().unwrap();
        let read = rows_and_statuses(&path);
        let expected: Vec<(u64, String, Status)> = (1..=6)
            .map(|row| (row, format!("id-{row}"), Status::Created))
            .collect();
        assert_eq!(read, expected);
        assert!(!temp_path(&path).exists(), "the copy became the ledger");
    }

    #[test]
    fn a_row_written_again_after_it_was_copied_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let writer = Writer::start(&path, None, 2).unwrap();
        let mut pending = Record::new("c", 1, "id-1", "", Status::Pending);
        pending.error = "first record".to_owned();
        writer.send(Entry::Write(Box::new(pending)));
        writer.copier.as_ref().unwrap().take_turn();
        assert_eq!(writer.shared.lock().unwrap().copied_rows, 1);
        // Row 1 again (the copy holds its first record), then row 2.
        writer.sender().send_all([created(1), created(2)]);
        writer.finish().unwrap();
        assert_eq!(
            rows_and_statuses(&path),
            [
                (1, "id-1".to_owned(), Status::Created),
                (2, "id-2".to_owned(), Status::Created)
            ]
        );
    }

    #[test]
    fn the_line_index_refuses_what_is_not_one_record_per_line() {
        let body = |cells: &str| format!("id,1,,created,,,,,,,,,c,,{cells}");
        for line in [
            body("0000000000000001,\"{}\""), // all 16 cells
            body("0000000000000001,{}"),     // an unquoted body
        ] {
            assert!(split_line(line.as_bytes()).is_some(), "{line}");
        }
        for line in [
            body("0000000000000001"),                // 15 cells
            body("0000000000000001,\"{}\",extra"),   // 17 cells
            body("0000000000000001,\"{\"\"a\"\":1"), // a body going on past the line
            body("0000000000000001,\"{}\"x"),        // text after a closing quote
            body("0000000000000001,{\"a\"}"),        // a quote in an unquoted body
        ] {
            assert!(split_line(line.as_bytes()).is_none(), "{line}");
        }
    }

    #[test]
    fn span_reader_serves_spans_in_any_order_and_across_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let data: Vec<u8> = (0..SpanReader::WINDOW * 2 + 100)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let mut reader = SpanReader::new(&file);
        let w = SpanReader::WINDOW as u64;
        for (offset, len) in [(0, 10), (w - 5, 10), (3, 4), (2 * w, 100), (w + 7, 1 << 20)] {
            let got = reader.get(Span::new(offset, len)).unwrap();
            assert_eq!(got, &data[offset as usize..offset as usize + len]);
        }
        assert!(
            reader.get(Span::new(2 * w + 50, 100)).is_err(),
            "past the end"
        );
    }

    #[test]
    fn span_reader_sees_what_was_appended_after_its_last_read() {
        // As the ordered copy reads the ledger while the run appends to it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, b"first record\n").unwrap();
        let file = File::open(&path).unwrap();
        let mut reader = SpanReader::new(&file);
        assert_eq!(reader.get(Span::new(0, 13)).unwrap(), b"first record\n");
        let mut appending = OpenOptions::new().append(true).open(&path).unwrap();
        appending.write_all(b"second record\n").unwrap();
        assert_eq!(reader.get(Span::new(13, 14)).unwrap(), b"second record\n");
        assert_eq!(
            reader.get(Span::new(6, 7)).unwrap(),
            b"record\n",
            "an earlier span"
        );
    }

    #[test]
    fn row_cell_is_the_second_cell() {
        assert_eq!(row_cell(b"id,12,a@b.c\n"), Some(&b"12"[..]));
        assert_eq!(row_cell(b"\"id,\"\"x\"\"\",3,\n"), Some(&b"3"[..]));
        assert_eq!(row_cell(b"id"), None);
    }

    #[test]
    fn lines_are_written_as_the_csv_crate_writes_them() {
        let cells = [
            "plain",
            "a,b",
            "say \"hi\"",
            "",
            "x\ny",
            " lead",
            "=1+1",
            "'q'",
            "carriage\rreturn",
            "\"",
            "\"\"",
            ",",
            "ünïcödé, 李伟",
            r#"{"product_id":"prod_1","metadata":{"note":"say \"hi\""}}"#,
            "ends with a quote\"",
        ];
        let mut ours = Vec::new();
        write_csv_line(&mut ours, &cells);
        let mut theirs = csv::Writer::from_writer(Vec::new());
        theirs.write_record(cells).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs.into_inner().unwrap()).unwrap()
        );
    }

    #[test]
    fn every_column_can_be_read_by_name() {
        let record = Record::new("c", 7, "c-1", "a@example.com", Status::Created);
        for name in COLUMNS {
            assert!(record.column(name).is_some(), "{name}");
        }
        assert_eq!(record.column("row").as_deref(), Some("7"));
        assert_eq!(record.column("status").as_deref(), Some("created"));
        assert_eq!(record.column("segment"), None);
    }

    #[test]
    fn read_all_keeps_displaced_customers_and_drops_superseded_records() {
        let record = |row, id: &str, status| Record::new("c", row, id, "", status);
        let mut bytes = header_line().into_bytes();
        for r in [
            record(1, "a", Status::Created),
            record(2, "b", Status::Failed),
            // A killed run after a customer was inserted at the top: `x` took row 1, and
            // `b` (now row 3) was sent again.
            record(1, "x", Status::Created),
            record(3, "b", Status::Created),
        ] {
            r.write_to(&mut bytes).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.csv");
        std::fs::write(&path, bytes).unwrap();
        let read: Vec<(u64, String, Status)> = read_all(&path)
            .unwrap()
            .into_iter()
            .map(|r| (r.row, r.request_id, r.status))
            .collect();
        assert_eq!(
            read,
            [
                (1, "a".to_owned(), Status::Created),
                (1, "x".to_owned(), Status::Created),
                (3, "b".to_owned(), Status::Created),
            ]
        );
        let mut prior = Prior::open(&path).unwrap().unwrap();
        assert_eq!(prior.lookup(3, "a").unwrap().unwrap().0.row, 1);
        assert_eq!(
            prior.lookup(2, "b").unwrap().unwrap().0.status,
            Status::Created
        );
    }

    #[test]
    fn spans_pack_offset_and_length() {
        let span = Span::new(123_456_789_012, 300);
        assert_eq!((span.offset(), span.len()), (123_456_789_012, 300));
    }
}
