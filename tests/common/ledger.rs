//! Reading a ledger back: strictly with the csv crate, whole or as a crash may leave it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// One ledger record: column name to cell.
pub type Row = HashMap<String, String>;

/// The ledger at `path`, one map per record; every record as many fields as the header.
#[track_caller]
pub fn read(path: &Path) -> Vec<Row> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&bytes)
}

#[track_caller]
fn parse(bytes: &[u8]) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().expect("a header").clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap_or_else(|e| panic!("a whole record does not parse: {e}"));
            assert_eq!(record.len(), headers.len(), "{record:?}");
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// A ledger as a crash may leave it: the whole records, and a torn last line apart.
pub struct CrashedLedger {
    pub rows: Vec<Row>,
    pub torn_tail: Option<String>,
}

impl CrashedLedger {
    #[track_caller]
    pub fn read(path: &Path) -> CrashedLedger {
        let bytes = std::fs::read(path).expect("ledger exists");
        let (whole, torn_tail) = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(last) if last + 1 < bytes.len() => (
                &bytes[..=last],
                Some(String::from_utf8_lossy(&bytes[last + 1..]).into_owned()),
            ),
            Some(_) => (&bytes[..], None),
            None => panic!("not even a header: {bytes:?}"),
        };
        CrashedLedger {
            rows: parse(whole),
            torn_tail,
        }
    }

    /// request_ids recorded as created.
    pub fn created(&self) -> HashSet<String> {
        self.rows
            .iter()
            .filter(|r| r["status"] == "created")
            .map(|r| r["request_id"].clone())
            .collect()
    }
}
