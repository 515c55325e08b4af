//! The customers CSV, read as a stream: one record in memory at a time, whatever the size.
//!
//! Values stay text (a postcode `01234` keeps its zero); the header decides the column names;
//! the delimiter is detected from the header unless the campaign sets it. Records are read as
//! bytes so one badly encoded row becomes an invalid row instead of stopping the batch.
//! Blank lines, and records whose fields are all blank, are skipped and not counted as rows.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;

/// Delimiters we recognise, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// An open customers CSV, positioned after its header.
pub struct CustomerCsv {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    headers: Vec<String>,
    delimiter: u8,
    rows_read: u64,
    last_line: u64,
}

/// One data row of the customers CSV and where it was in the file.
#[derive(Debug, Default)]
pub struct CsvRow {
    /// 1-based data row (the header is row 0), as templates see it.
    pub row: u64,
    /// 1-based line where the record starts (differs from `row + 1` after multi-line fields).
    pub line: u64,
    /// 1-based line where the record ends (after `line` when a quoted value spans lines).
    pub end_line: u64,
    pub fields: csv::ByteRecord,
}

/// A record that cannot be used as it is; the row becomes `invalid`, the batch goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem(pub String);

impl CustomerCsv {
    /// Opens `path`, reads the header and checks it is usable.
    pub fn open(path: &Path, delimiter: Option<u8>) -> Result<CustomerCsv, Diagnostic> {
        let file = File::open(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot open the customers CSV: {e}")))?;
        let mut buffered = BufReader::with_capacity(READ_BUFFER, file);
        if let Some(problem) = encoding_problem(&mut buffered)
            .map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?
        {
            return Err(Diagnostic::file(path, problem)
                .with_help("save the file as UTF-8 (in Excel: Save As > CSV UTF-8)"));
        }
        let delimiter_set = delimiter;
        let delimiter = match delimiter_set {
            Some(d) => d,
            None => detect_delimiter(&mut buffered)
                .map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?,
        };
        let mut reader = reader_settings(delimiter)
            .has_headers(true)
            .from_reader(buffered);
        let header = reader
            .byte_headers()
            .map_err(|e| Diagnostic::file(path, format!("cannot read the header: {e}")))?
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
        let mut headers = Vec::with_capacity(header.len());
        for (i, name) in header.iter().enumerate() {
            let name = std::str::from_utf8(name).map_err(|_| {
                Diagnostic::file(
                    path,
                    format!(
                        "header, column {}: not valid UTF-8 (save the file as UTF-8)",
                        i + 1
                    ),
                )
            })?;
            let name = name.trim().to_owned();
            if name.is_empty() {
                return Err(Diagnostic::file(
                    path,
                    format!("header, column {}: the column has no name", i + 1),
                ));
            }
            if headers.contains(&name) {
                return Err(Diagnostic::file(
                    path,
                    format!(
                        "header, column {}: `{}` appears twice",
                        i + 1,
                        crate::diagnostic::escape_control(&name)
                    ),
                ));
            }
            headers.push(name);
        }
        Ok(CustomerCsv {
            path: path.to_path_buf(),
            reader,
            headers,
            delimiter,
            rows_read: 0,
            last_line: 1,
        })
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
        let mut result = self.reader.read_byte_record(&mut record.fields);
        while matches!(result, Ok(true)) && is_blank(&record.fields) {
            result = self.reader.read_byte_record(&mut record.fields);
        }
        match result {
            Ok(true) => {
                self.rows_read += 1;
                record.row = self.rows_read;
                record.line = record.fields.position().map_or(0, |p| p.line());
                // The reader stands just after the record's line end, on the next line.
                record.end_line = self
                    .reader
                    .position()
                    .line()
                    .saturating_sub(1)
                    .max(record.line);
                self.last_line = record.end_line;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => Err(Diagnostic::file(
                &self.path,
                format!("cannot read row {}: {e}", self.rows_read + 1),
            )),
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
        if record.end_line <= record.line {
            return None;
        }
        let email_at = self.headers.iter().position(|h| h == "email");
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
                        crate::diagnostic::escape_control(&self.headers[i.min(self.headers.len().saturating_sub(1))]),
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
        if record.fields.len() != self.headers.len() {
            return Err(RecordProblem(format!(
                "line {} has {} field{}, the header has {}",
                record.line,
                record.fields.len(),
                if record.fields.len() == 1 { "" } else { "s" },
                self.headers.len()
            )));
        }
        for (i, bytes) in record.fields.iter().enumerate() {
            match std::str::from_utf8(bytes) {
                Ok(text) => out.push(text),
                Err(e) => {
                    return Err(RecordProblem(format!(
                        "line {}, column `{}`: not valid UTF-8 at byte {} (save the file as UTF-8)",
                        record.line,
                        crate::diagnostic::escape_control(&self.headers[i]),
                        e.valid_up_to() + 1
                    )))
                }
            }
        }
        Ok(())
    }
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

/// How a delimiter is named in messages.
fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".to_owned(),
        other => format!("`{}`", other as char),
    }
}

/// Why the start of the file is not text this reader can take: NUL bytes mean UTF-16 (or
/// UTF-32), whose every other byte is NUL for Latin letters; read as bytes it would be
/// "ASCII with NULs", and every row would fail.
fn encoding_problem(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let start = reader.fill_buf()?;
    let start = &start[..start.len().min(4096)];
    let bom = match start {
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] => "with",
        _ if start.contains(&0) && start.iter().filter(|&&b| b == 0).count() * 4 >= start.len() => {
            "without"
        }
        _ => return Ok(None),
    };
    Ok(Some(format!(
        "the file looks like UTF-16 text {bom} a byte-order mark (it has NUL bytes), \
         not UTF-8"
    )))
}

/// Picks the delimiter that appears most often in the header line, outside quotes.
fn detect_delimiter(reader: &mut impl BufRead) -> io::Result<u8> {
    let buffer = reader.fill_buf()?;
    let buffer = buffer.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buffer);
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &byte in buffer {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = DELIMITERS.iter().position(|&d| d == byte) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..DELIMITERS.len())
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .expect("non-empty");
    Ok(if counts[best] == 0 {
        b','
    } else {
        DELIMITERS[best]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_delimiter_of_the_header_only() {
        let detect = |text: &str| detect_delimiter(&mut text.as_bytes()).unwrap();
        assert_eq!(detect("email;name\na,b;c;d;e\n"), b';');
        assert_eq!(detect("\u{feff}email\tname\n"), b'\t');
        assert_eq!(detect("\"a;b\",c\n"), b',');
        assert_eq!(detect("email|name|x\n"), b'|');
        assert_eq!(detect("email\n"), b',');
    }
}
