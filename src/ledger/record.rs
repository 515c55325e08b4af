//! The record format: the columns, one row's record, and how its cells are written and read
//! back (formula cells neutralised with `'`, outside text made safe for a terminal).

use std::borrow::Cow;
use std::collections::HashMap;

/// The columns, in order. SPEC's columns first; then ours.
pub const COLUMNS: [&str; 19] = [
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
    "target",
    "reissues",
    "previous_checkouts",
];

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Created,
    Failed,
    Invalid,
    Pending,
    /// Left out on purpose (`exclude:`, `where:`); the reason is in `error`. Never sent.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Failed => "failed",
            Status::Invalid => "invalid",
            Status::Pending => "pending",
            Status::Skipped => "skipped",
        }
    }

    pub(super) fn parse(text: &[u8]) -> Option<Status> {
        Some(match text {
            b"created" => Status::Created,
            b"failed" => Status::Failed,
            b"invalid" => Status::Invalid,
            b"pending" => Status::Pending,
            b"skipped" => Status::Skipped,
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
    /// Where the checkout lives: `sandbox`, `test:HOST` or `live:HOST` (see
    /// [`crate::target::Target::label`]). Empty in ledgers written before it existed.
    pub target: String,
    /// How many times `run --reissue` gave this row a new checkout (0: never). Its
    /// request_id is the campaign's, plus `-r<reissues>` when this is above 0.
    pub reissues: u32,
    /// The checkout ids this row had before, oldest first, separated by spaces.
    pub previous_checkouts: String,
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
            target: String::new(),
            reissues: 0,
            previous_checkouts: String::new(),
        }
    }

    /// The request_id the campaign's rule gives this row: this record's without the
    /// `-r<N>` suffix of its re-issue, if it was re-issued.
    pub fn base_request_id(&self) -> &str {
        if self.reissues == 0 {
            return &self.request_id;
        }
        self.request_id
            .strip_suffix(&format!("-r{}", self.reissues))
            .unwrap_or(&self.request_id)
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
            "target" => Cow::Borrowed(&self.target),
            "reissues" => Cow::Owned(self.reissues.to_string()),
            "previous_checkouts" => Cow::Borrowed(&self.previous_checkouts),
            _ => return None,
        })
    }

    /// The cells as written to the file, in [`COLUMNS`] order.
    pub(super) fn cells(&self) -> [Cow<'_, str>; 19] {
        [
            neutralise(&self.request_id),
            Cow::Owned(self.row.to_string()),
            neutralise(&self.email),
            Cow::Borrowed(self.status.as_str()),
            neutralise(&self.checkout_id),
            neutralise(&self.checkout_url),
            Cow::Owned(self.http_status.map(|s| s.to_string()).unwrap_or_default()),
            Cow::Owned(self.attempts.to_string()),
            // Errors are one line so a record stays one line (a torn tail is easy to find).
            neutralise_owned(one_line(&self.error)),
            Cow::Borrowed(&self.body_sha256),
            Cow::Borrowed(&self.updated_at),
            neutralise(&self.checkout_status),
            neutralise(&self.campaign),
            neutralise(&self.order_id),
            Cow::Borrowed(&self.input_hash),
            Cow::Borrowed(&self.body),
            neutralise(&self.target),
            Cow::Owned(self.reissues.to_string()),
            neutralise(&self.previous_checkouts),
        ]
    }

    /// Writes this record as one CSV record.
    pub(super) fn write<W: std::io::Write>(&self, out: &mut csv::Writer<W>) -> csv::Result<()> {
        out.write_record(self.cells().iter().map(|c| c.as_bytes()))
    }

    /// The record in `fields`, read under the header `map` found.
    pub(super) fn from_fields(fields: &csv::ByteRecord, map: &ColumnMap) -> Result<Record, String> {
        let get = |name: &str| String::from_utf8_lossy(map.get(fields, name));
        let row = get("row");
        let status = map.get(fields, "status");
        Ok(Record {
            request_id: restore(&get("request_id")),
            row: row
                .parse()
                .map_err(|_| format!("`row` is `{}`, not a number", shown(&row)))?,
            email: restore(&get("email")),
            status: Status::parse(status).ok_or_else(|| {
                format!(
                    "`status` is `{}`, not created, failed, invalid, pending or skipped",
                    shown(&String::from_utf8_lossy(status))
                )
            })?,
            checkout_id: restore(&get("checkout_id")),
            checkout_url: restore(&get("checkout_url")),
            http_status: get("http_status").parse().ok(),
            attempts: get("attempts").parse().unwrap_or(0),
            error: restore(&get("error")),
            body_sha256: get("body_sha256").into_owned(),
            updated_at: get("updated_at").into_owned(),
            checkout_status: restore(&get("checkout_status")),
            campaign: restore(&get("campaign")),
            order_id: restore(&get("order_id")),
            input_hash: get("input_hash").into_owned(),
            body: get("body").into_owned(),
            target: restore(&get("target")),
            // Ledgers written before re-issuing existed have neither column: never re-issued.
            reissues: get("reissues").parse().unwrap_or(0),
            previous_checkouts: restore(&get("previous_checkouts")),
        })
    }
}

/// The request_id of a row's `n`th re-issue: the campaign's request_id and `-r<n>`, so a
/// re-issue is as deterministic as the first send.
pub fn reissued_request_id(base: &str, n: u32) -> String {
    format!("{base}-r{n}")
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

fn neutralise_owned(cell: Cow<'_, str>) -> Cow<'_, str> {
    match cell {
        Cow::Borrowed(text) => neutralise(text),
        Cow::Owned(text) => Cow::Owned(neutralise(&text).into_owned()),
    }
}

/// Undoes [`neutralise`] when reading the ledger back.
pub(super) fn restore(cell: &str) -> String {
    match cell.as_bytes() {
        [b'\'', b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'', ..] => cell[1..].to_owned(),
        _ => cell.to_owned(),
    }
}

fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        Cow::Owned(text.replace(['\n', '\r'], " "))
    } else {
        Cow::Borrowed(text)
    }
}

/// Text read from a file, made safe to print: control characters escaped, and cut short.
pub(super) fn shown(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    let mut out = shown_whole(&cut);
    if text.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

/// Outside text made safe for a terminal: control characters escaped, nothing cut.
pub(super) fn shown_whole(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// The time now, to the millisecond, as `2026-11-25T09:30:00.123Z`.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Millisecond)
        .unwrap_or(now)
        .to_string()
}

/// Where each column is in a ledger file (older or hand-edited files may reorder them).
#[derive(Debug, Clone)]
pub(super) struct ColumnMap {
    index: HashMap<String, usize>,
}

impl ColumnMap {
    /// This version's layout, [`COLUMNS`].
    pub(super) fn standard() -> ColumnMap {
        ColumnMap::from_header(COLUMNS.iter().map(|c| c.as_bytes()))
    }

    pub(super) fn from_header<'h>(names: impl Iterator<Item = &'h [u8]>) -> ColumnMap {
        let mut index = HashMap::new();
        for (i, name) in names.enumerate() {
            index
                .entry(String::from_utf8_lossy(name).trim().to_owned())
                .or_insert(i);
        }
        ColumnMap { index }
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub(super) fn get<'r>(&self, fields: &'r csv::ByteRecord, name: &str) -> &'r [u8] {
        self.index
            .get(name)
            .and_then(|&i| fields.get(i))
            .unwrap_or(b"")
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
    fn a_record_written_is_read_back_the_same_and_on_one_line() {
        let mut record = Record::new("=c", 7, "'=x", "@a", Status::Failed);
        record.error = "line one\nline two, \"quoted\"".to_owned();
        record.body = r#"{"a":"x,\"y\""}"#.to_owned();
        record.http_status = Some(500);
        let mut out = csv::Writer::from_writer(Vec::new());
        record.write(&mut out).unwrap();
        let bytes = out.into_inner().unwrap();
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&bytes[..]);
        let fields = reader.byte_records().next().unwrap().unwrap();
        let back = Record::from_fields(&fields, &ColumnMap::standard()).unwrap();
        record.error = "line one line two, \"quoted\"".to_owned();
        assert_eq!(back, record);
    }

    #[test]
    fn text_shown_from_a_file_has_no_control_characters() {
        assert_eq!(shown("a\u{1b}[2Jb\u{7}"), "a\\u{1b}[2Jb\\u{7}");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 81);
    }
}
