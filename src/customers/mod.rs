//! The customers file, read as a stream: one record in memory at a time, whatever the size.
//!
//! A text file is decoded to UTF-8 as it streams ([`decode`]: BOM, UTF-16, Windows-1252); a
//! workbook is read with calamine ([`workbook`]). Values stay text (a postcode `01234` keeps
//! its zero); the header decides the column names (trimmed for matching; empty unnamed columns
//! at its end, as Google Sheets writes, are ignored); the delimiter is detected from the header
//! unless the campaign sets it. A UTF-8 file's records are read as bytes so one badly encoded
//! row becomes an invalid row instead of stopping the batch. Blank lines, and records whose
//! fields are all blank, are skipped and not counted as rows.

mod decode;
mod header;
mod workbook;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

pub use decode::{for_label as encoding_for_label, TextEncoding};
pub use workbook::is_workbook;

use crate::diagnostic::Diagnostic;
use header::{delimiter_name, detect_delimiter, header_ends_with_crlf, named_columns, DELIMITERS};

/// How the campaign says to read the customers file (all optional: detected otherwise).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub delimiter: Option<u8>,
    pub encoding: Option<&'static encoding_rs::Encoding>,
    pub sheet: Option<String>,
}

/// Where the records come from.
enum Source {
    Text(csv::Reader<Box<dyn BufRead + Send>>),
    Sheet {
        sheet: workbook::Sheet,
        cells: Vec<String>,
    },
}

/// An open customers file, positioned after its header.
pub struct CustomerCsv {
    path: PathBuf,
    source: Source,
    /// Column names trimmed, as templates and `key:` name them.
    headers: Vec<String>,
    /// Column names as the file writes them, for messages.
    raw_headers: Vec<String>,
    delimiter: u8,
    /// The header ends in CRLF: the reader then stops before each record's `\n`, not after.
    crlf: bool,
    encoding: Option<TextEncoding>,
    rows_read: u64,
    last_line: u64,
}

/// One data row of the customers file and where it was in the file.
#[derive(Debug, Default)]
pub struct CsvRow {
    /// 1-based data row (the header is row 0), as templates see it.
    pub row: u64,
    /// 1-based line where the record starts (differs from `row + 1` after multi-line fields
    /// or blank lines); in a workbook, the sheet's row number.
    pub line: u64,
    /// 1-based line where the record ends (after `line` when a quoted value spans lines).
    pub end_line: u64,
    pub fields: csv::ByteRecord,
}

/// A record that cannot be used as it is; the row becomes `invalid`, the batch goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem(pub String);

impl CustomerCsv {
    /// Opens `path` with only a delimiter setting (encoding detected, first sheet).
    pub fn open(path: &Path, delimiter: Option<u8>) -> Result<CustomerCsv, Diagnostic> {
        let options = ReadOptions {
            delimiter,
            ..ReadOptions::default()
        };
        CustomerCsv::open_with(path, &options)
    }

    /// Opens `path`, reads the header and checks it is usable.
    pub fn open_with(path: &Path, options: &ReadOptions) -> Result<CustomerCsv, Diagnostic> {
        if is_workbook(path) {
            return CustomerCsv::open_workbook(path, options);
        }
        let file = File::open(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot open the customers file: {e}")))?;
        let mut buffered = BufReader::with_capacity(READ_BUFFER, file);
        let start = buffered
            .fill_buf()
            .map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?;
        let encoding = decode::detect(start, options.encoding).map_err(|problem| {
            Diagnostic::file(path, problem)
                .with_help("or set `csv.encoding:` in the campaign to the file's encoding")
        })?;
        let mut text: Box<dyn BufRead + Send> = if encoding.encoding == encoding_rs::UTF_8 {
            Box::new(buffered)
        } else {
            let decoded = decode::DecodeReader::new(buffered, encoding.encoding);
            Box::new(BufReader::with_capacity(READ_BUFFER, decoded))
        };
        let delimiter_set = options.delimiter;
        let delimiter = match delimiter_set {
            Some(d) => d,
            None => detect_delimiter(&mut text).map_err(|e| read_error(path, 1, &e))?,
        };
        let crlf = text
            .fill_buf()
            .map(header_ends_with_crlf)
            .map_err(|e| read_error(path, 0, &e))?;
        let mut reader = reader_settings(delimiter)
            .has_headers(true)
            .from_reader(text);
        let header = reader
            .byte_headers()
            .map_err(|e| read_error(path, 0, &e))?
            .clone();
        if header.len() <= 1 && is_blank(&header) {
            return Err(Diagnostic::file(
                path,
                "the file is empty: a header row naming the columns is required",
            ));
        }
        // A delimiter set in the campaign that does not split the header is a wrong setting.
        if let (Some(set), 1) = (delimiter_set, header.len()) {
            let found = DELIMITERS
                .into_iter()
                .find(|d| *d != set && header[0].contains(d));
            if let Some(other) = found {
                return Err(Diagnostic::file(
                    path,
                    format!(
                        "the header is one column when split on the campaign's csv.delimiter \
                         {}, but it contains {}",
                        delimiter_name(set),
                        delimiter_name(other)
                    ),
                )
                .with_help("fix `csv.delimiter`, or remove it to detect the delimiter"));
            }
        }
        let mut raw = Vec::with_capacity(header.len());
        for (i, name) in header.iter().enumerate() {
            let name = std::str::from_utf8(name).map_err(|_| {
                Diagnostic::file(
                    path,
                    format!(
                        "header, column {}: not valid UTF-8 (set `csv.encoding:` to the file's \
                         encoding, or save it as UTF-8)",
                        i + 1
                    ),
                )
            })?;
            raw.push(name.to_owned());
        }
        let (headers, raw_headers) = named_columns(path, raw)?;
        Ok(CustomerCsv {
            path: path.to_path_buf(),
            source: Source::Text(reader),
            headers,
            raw_headers,
            delimiter,
            crlf,
            encoding: Some(encoding),
            rows_read: 0,
            last_line: 1,
        })
    }

    fn open_workbook(path: &Path, options: &ReadOptions) -> Result<CustomerCsv, Diagnostic> {
        let mut sheet = workbook::Sheet::open(path, options.sheet.as_deref())
            .map_err(|problem| Diagnostic::file(path, problem))?;
        let mut cells = Vec::new();
        let mut header_row = 0;
        while let Some(number) = sheet.next_row(&mut cells) {
            header_row = number;
            if !cells.is_empty() {
                break;
            }
        }
        if cells.is_empty() {
            return Err(Diagnostic::file(
                path,
                format!(
                    "sheet `{}` is empty: a header row naming the columns is required",
                    crate::escape::escape_control(&sheet.name)
                ),
            ));
        }
        let (headers, raw_headers) = named_columns(path, std::mem::take(&mut cells))?;
        Ok(CustomerCsv {
            path: path.to_path_buf(),
            source: Source::Sheet { sheet, cells },
            headers,
            raw_headers,
            delimiter: b',',
            crlf: false,
            encoding: None,
            rows_read: 0,
            last_line: header_row,
        })
    }

    /// How the file is read, for `check` and the plan: its encoding, or its sheet.
    pub fn describe(&self) -> String {
        match (&self.source, &self.encoding) {
            (Source::Sheet { sheet, .. }, _) => format!(
                "workbook, sheet `{}`",
                crate::escape::escape_control(&sheet.name)
            ),
            (Source::Text(_), Some(encoding)) => format!("encoding {encoding}"),
            (Source::Text(_), None) => String::new(),
        }
    }

    /// Where a record is, for messages: "row 7, line 8 in the file" (a marketer counts from
    /// the spreadsheet's row numbers, a developer from the data rows).
    pub fn locate(&self, record: &CsvRow) -> String {
        match self.source {
            Source::Sheet { .. } => format!("row {}, row {} in the sheet", record.row, record.line),
            Source::Text(_) => format!("row {}, line {} in the file", record.row, record.line),
        }
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Reads the next record into `record`; `Ok(false)` at the end. An error here is about
    /// the file as a whole (I/O), not one row.
    /// Blank records (a line of spaces, or only delimiters such as `,,,` from a spreadsheet)
    /// are skipped like empty lines: they are not customers, and not rows.
    pub fn read(&mut self, record: &mut CsvRow) -> Result<bool, Diagnostic> {
        let reader = match &mut self.source {
            Source::Text(reader) => reader,
            Source::Sheet { sheet, cells } => {
                while let Some(number) = sheet.next_row(cells) {
                    if cells.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    // Short rows are the sheet's trailing empty cells: pad them.
                    record.fields.clear();
                    for i in 0..cells.len().max(self.headers.len()) {
                        record
                            .fields
                            .push_field(cells.get(i).map_or(&b""[..], |c| c.as_bytes()));
                    }
                    self.rows_read += 1;
                    record.row = self.rows_read;
                    (record.line, record.end_line, self.last_line) = (number, number, number);
                    return Ok(true);
                }
                return Ok(false);
            }
        };
        let mut result = reader.read_byte_record(&mut record.fields);
        while matches!(result, Ok(true)) && is_blank(&record.fields) {
            result = reader.read_byte_record(&mut record.fields);
        }
        match result {
            Ok(true) => {
                self.rows_read += 1;
                record.row = self.rows_read;
                // The reader's position at a record's start comes before the blank lines
                // (and a CRLF's `\n`) it skips, so lines are counted back from its end: just
                // past the `\n` in an LF file, on the record's last line in a CRLF file or
                // at the end of the file.
                let after = reader.position().line();
                let past_newline = !self.crlf && !reader.is_done();
                record.end_line = after.saturating_sub(u64::from(past_newline)).max(1);
                let inner_newlines = record
                    .fields
                    .iter()
                    .map(|f| memchr::memchr_iter(b'\n', f).count() as u64)
                    .sum::<u64>();
                record.line = record.end_line.saturating_sub(inner_newlines).max(1);
                self.last_line = record.end_line;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => Err(read_error(&self.path, self.rows_read + 1, &e)),
        }
    }

    /// Physical lines read so far, the header's included (blank lines between rows too).
    pub fn lines_read(&self) -> u64 {
        self.last_line
    }

    /// The record's fields as text, one per header column, or why the row is unusable.
    pub fn fields<'r>(&self, record: &'r CsvRow) -> Result<Vec<&'r str>, RecordProblem> {
        let mut fields = Vec::with_capacity(self.headers.len());
        self.fields_into(record, &mut fields)?;
        Ok(fields)
    }

    /// When a quoted value spans line breaks and one of its lines looks like a whole row (as
    /// many delimiters as the header, or an email where the `email` column is), the quote was
    /// most likely left open and swallowed the next customers: why the row is unusable.
    /// A real multi-line value (an address) has no such line.
    pub fn swallowed_row(&self, record: &CsvRow) -> Option<RecordProblem> {
        if record.end_line <= record.line || matches!(self.source, Source::Sheet { .. }) {
            return None;
        }
        let email_at = self
            .headers
            .iter()
            .position(|h| crate::render::is_email_column(h));
        let mut line = record.line;
        for (i, field) in record.fields.iter().enumerate() {
            for (n, text) in field.split(|&b| b == b'\n').enumerate() {
                if n == 0 {
                    continue;
                }
                line += 1;
                let cells: Vec<&[u8]> = text.split(|&b| b == self.delimiter).collect();
                let looks_like_email = |cell: &&[u8]| {
                    std::str::from_utf8(cell)
                        .is_ok_and(|c| crate::render::check_email(c.trim()).is_ok())
                };
                let whole_row = (self.headers.len() > 1 && cells.len() >= self.headers.len())
                    || email_at
                        .and_then(|at| cells.get(at))
                        .is_some_and(looks_like_email);
                if whole_row {
                    return Some(RecordProblem(format!(
                        "lines {}-{}: a quote in column `{}` is not closed on its line and takes in \
                         line {line}, which looks like a row of its own (close the quote, or \
                         write a quote inside a value as \"\")",
                        record.line,
                        record.end_line,
                        crate::escape::escape_control(&self.headers[i.min(self.headers.len().saturating_sub(1))]),
                    )));
                }
            }
        }
        None
    }

    /// Like [`fields`](Self::fields), reusing `out`'s allocation.
    pub fn fields_into<'r>(
        &self,
        record: &'r CsvRow,
        out: &mut Vec<&'r str>,
    ) -> Result<(), RecordProblem> {
        out.clear();
        let width = self.headers.len();
        let count = record.fields.len();
        // Cells past the named columns are the header's unnamed trailing columns: blank is
        // fine (Google Sheets writes them), a value there belongs to no column.
        let extra = record
            .fields
            .iter()
            .skip(width)
            .position(|f| !is_blank_field(f));
        if count < width || extra.is_some() {
            return Err(RecordProblem(match extra {
                Some(at) => format!(
                    "a value in column {}, past the header's {width} named columns",
                    width + at + 1
                ),
                None => format!(
                    "the row has {count} field{}, the header has {width}",
                    if count == 1 { "" } else { "s" },
                ),
            }));
        }
        for (i, bytes) in record.fields.iter().take(width).enumerate() {
            match std::str::from_utf8(bytes) {
                Ok(text) => out.push(text),
                Err(e) => {
                    return Err(RecordProblem(format!(
                        "column `{}`: not valid UTF-8 at byte {} (set `csv.encoding:` to the \
                         file's encoding, such as windows-1252, or save it as UTF-8)",
                        crate::escape::escape_control(&self.raw_headers[i]),
                        e.valid_up_to() + 1
                    )))
                }
            }
        }
        Ok(())
    }
}

/// A file-level read error: a decoding problem is named as such, anything else as I/O.
fn read_error(path: &Path, row: u64, e: &dyn std::fmt::Display) -> Diagnostic {
    let text = e.to_string();
    if text.contains("is not valid") {
        // From the decoder: already a whole sentence about the file.
        let start = text.find("the file is not valid").unwrap_or(0);
        return Diagnostic::file(path, text[start..].to_owned());
    }
    if row == 0 {
        Diagnostic::file(path, format!("cannot read the header: {text}"))
    } else {
        Diagnostic::file(path, format!("cannot read row {row}: {text}"))
    }
}

fn is_blank_field(field: &[u8]) -> bool {
    field.iter().all(u8::is_ascii_whitespace)
}

const READ_BUFFER: usize = 256 * 1024;

/// How every reader of a customers CSV parses it (rows may have a wrong number of fields:
/// such a row becomes invalid, it does not stop the batch).
fn reader_settings(delimiter: u8) -> csv::ReaderBuilder {
    let mut settings = csv::ReaderBuilder::new();
    settings.delimiter(delimiter).flexible(true);
    settings
}

/// True when every field of `record` is empty or whitespace: not a customer, and not a row.
pub fn is_blank(record: &csv::ByteRecord) -> bool {
    record
        .iter()
        .all(|field| field.iter().all(u8::is_ascii_whitespace))
}
