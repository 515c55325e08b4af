//! The ledger's parts together: records written, read back, looked up and rewritten.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::*;

fn record(row: u64, status: Status) -> Record {
    let mut r = Record::new("c", row, &format!("id-{row}"), "", status);
    if status == Status::Created {
        r.checkout_id = format!("ch_{row}");
        r.checkout_url = format!("https://pay.example/{row}");
    }
    r
}

fn created(row: u64) -> Entry {
    Entry::Write(Box::new(record(row, Status::Created)))
}

/// The records as the csv crate writes them, with the header.
fn ledger_text(records: &[Record]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_byte_record(&header()).unwrap();
    for r in records {
        r.write(&mut out).unwrap();
    }
    String::from_utf8(out.into_inner().unwrap()).unwrap()
}

/// Every record in the file, as it is (`read_all` would hide a record written twice).
fn rows_and_statuses(path: &Path) -> Vec<(u64, String, Status)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let columns = record::ColumnMap::standard();
    reader
        .byte_records()
        .map(|fields| {
            let r = Record::from_fields(&fields.unwrap(), &columns).unwrap();
            (r.row, r.request_id, r.status)
        })
        .collect()
}

fn ids(path: &Path) -> Vec<String> {
    read_all(path)
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect()
}

#[test]
fn a_new_ledger_is_appended_as_rows_finish_and_rewritten_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let writer = Writer::start(&path, None, 4).unwrap();
    writer.sender().send_all([created(3), created(1)]);
    // As a kill now would leave it: the header, then the two records as they came.
    assert_eq!(
        rows_and_statuses(&path),
        [
            (3, "id-3".to_owned(), Status::Created),
            (1, "id-1".to_owned(), Status::Created)
        ]
    );
    writer.sender().send_all([created(4), created(2)]);
    writer.finish().unwrap();
    let expected: Vec<(u64, String, Status)> = (1..=4)
        .map(|row| (row, format!("id-{row}"), Status::Created))
        .collect();
    assert_eq!(rows_and_statuses(&path), expected);
    assert!(!dir.path().join("out.csv.tmp").exists());
}

#[test]
fn the_index_finds_rows_hashes_and_the_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut one = record(1, Status::Created);
    one.input_hash = "00000000000000aa".to_owned();
    one.campaign = "-spring, 2026".to_owned();
    let mut three = record(3, Status::Created);
    three.input_hash = "00000000000000cc".to_owned();
    let text = ledger_text(&[one, record(2, Status::Failed), three]);
    std::fs::write(&path, &text).unwrap();
    let prior = Prior::open(&path).unwrap().unwrap();
    assert_eq!(
        prior.unchanged_rows().unwrap().as_slice(),
        [0, 0xaa, 0, 0xcc]
    );
    assert_eq!(prior.campaign.as_deref(), Some("-spring, 2026"));
    assert!(prior.canonical && prior.standard_layout());
    assert_eq!(prior.valid_len, text.len() as u64);
}

/// The fast path of a re-run (rows skipped by `input_hash`, their records kept by row) must
/// agree with the simple one (each row looked up by request_id, its record read).
#[test]
fn the_unchanged_rows_agree_with_looking_each_row_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let records: Vec<Record> = (1..=50)
        .map(|row| {
            let status = [Status::Created, Status::Failed, Status::Pending][row as usize % 3];
            let mut r = record(row, status);
            r.input_hash = format!("{:016x}", row * 7919);
            r
        })
        .collect();
    std::fs::write(&path, ledger_text(&records)).unwrap();
    let mut prior = Prior::open(&path).unwrap().unwrap();
    let hashes = prior.unchanged_rows().unwrap();
    for row in 1..=50u64 {
        let (found, at) = prior.lookup(row, &format!("id-{row}")).unwrap().unwrap();
        let simple = match found.status {
            Status::Created => u64::from_str_radix(&found.input_hash, 16).unwrap(),
            _ => 0,
        };
        let fast = hashes.get(row as usize).copied().unwrap_or(0);
        assert_eq!(fast, simple, "row {row}");
        assert_eq!(prior.at_row(row), Some(at), "row {row}");
    }
}

#[test]
fn a_torn_tail_is_cut_and_a_missing_final_newline_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut two = record(2, Status::Created);
    two.body = r#"{"product_id":"p"}"#.to_owned();
    let text = ledger_text(&[record(1, Status::Created), two]);
    std::fs::write(&path, &text[..text.len() - 8]).unwrap();
    let prior = Prior::open(&path).unwrap().unwrap();
    assert_eq!((prior.records, prior.torn_line), (1, Some(3)));

    std::fs::write(&path, text.trim_end()).unwrap();
    let prior = Prior::open(&path).unwrap().unwrap();
    assert_eq!((prior.records, prior.torn_line), (2, None));
    assert!(prior.missing_newline);
    let writer = Writer::start(&path, Some(&prior), 3).unwrap();
    writer.send(created(3));
    drop(writer);
    assert_eq!(
        rows_and_statuses(&path).len(),
        3,
        "appended on a line of its own"
    );
}

#[test]
fn a_ledger_saved_with_semicolons_is_read_and_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let text = ledger_text(&[record(1, Status::Created), record(2, Status::Failed)]);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut out = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    out.write_byte_record(reader.byte_headers().unwrap())
        .unwrap();
    for r in reader.byte_records() {
        out.write_byte_record(&r.unwrap()).unwrap();
    }
    std::fs::write(&path, out.into_inner().unwrap()).unwrap();
    let mut prior = Prior::open(&path).unwrap().unwrap();
    assert!(
        !prior.standard_layout(),
        "appended records would not match it"
    );
    assert_eq!(
        prior.lookup(2, "id-2").unwrap().unwrap().0.status,
        Status::Failed
    );
    let backup = normalise(&path).unwrap();
    assert!(backup.exists());
    assert_eq!(ids(&path), ["id-1", "id-2"]);
    assert!(Prior::open(&path).unwrap().unwrap().standard_layout());
}

#[test]
fn every_read_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let text = ledger_text(&[record(1, Status::Created)]);
    for damaged in [
        text.replacen(",created,", ",sent,", 1),
        text.replacen("body_sha256", "hash", 1),
        format!("{text}\"unclosed,1\n"),
        format!("{text}x,x,x\n"),
    ] {
        std::fs::write(&path, &damaged).unwrap();
        let err = Prior::open(&path).err().expect("refused").to_string();
        assert!(err.starts_with(&format!("{}:", path.display())), "{err}");
    }
    let err = read_all(&dir.path().join("none.csv"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("none.csv does not exist"), "{err}");
}

#[test]
fn a_windows_ledger_is_rewritten_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut multi = record(2, Status::Failed);
    multi.order_id = "two\nlines".to_owned();
    let text = ledger_text(&[record(1, Status::Created), multi]).replace('\n', "\r\n");
    std::fs::write(&path, text).unwrap();
    let prior = Prior::open(&path).unwrap().unwrap();
    let writer = Writer::start(&path, Some(&prior), 3).unwrap();
    for row in [1, 2] {
        let prior = prior.at_row(row).unwrap();
        writer.send(Entry::Keep { row, prior });
    }
    writer.send(created(3));
    writer.finish().unwrap();
    assert_eq!(ids(&path), ["id-1", "id-2", "id-3"]);
    assert_eq!(read_all(&path).unwrap()[1].order_id, "two\r\nlines");
}

#[test]
fn an_output_of_blank_lines_is_emptied_before_records_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    std::fs::write(&path, "\n".repeat(2000)).unwrap();
    let prior = Prior::open(&path).unwrap();
    assert_eq!(prior.as_ref().map(|p| p.valid_len), Some(0));
    let writer = Writer::start(&path, prior.as_ref(), 1).unwrap();
    writer.send(created(1));
    let during = std::fs::read_to_string(&path).unwrap();
    assert!(during.starts_with("request_id,row,"), "{during:?}");
    assert_eq!(during.lines().count(), 2, "{during:?}");
    writer.finish().unwrap();
    assert_eq!(ids(&path), ["id-1"]);
}

#[test]
fn read_all_keeps_displaced_customers_and_drops_superseded_records() {
    let r = |row, id: &str, status| Record::new("c", row, id, "", status);
    // A killed run after a customer was inserted at the top: `x` took row 1, and `b` (now
    // row 3) was sent again.
    let text = ledger_text(&[
        r(1, "a", Status::Created),
        r(2, "b", Status::Failed),
        r(1, "x", Status::Created),
        r(3, "b", Status::Created),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.csv");
    std::fs::write(&path, text).unwrap();
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
fn a_symlinked_ledger_is_written_through_and_stays_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.csv");
    let link = dir.path().join("link.csv");
    crate::platform::symlink(Path::new("real.csv"), &link).unwrap();
    let writer = Writer::start(&link, None, 2).unwrap();
    writer.sender().send_all([created(2), created(1)]);
    writer.finish().unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(ids(&target), ["id-1", "id-2"]);
    write_all(&link, &[record(1, Status::Failed)]).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(ids(&target), ["id-1"]);
}

#[test]
fn records_of_many_mebibytes_are_written_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut big = record(1, Status::Created);
    big.body = format!("{{\"note\":\"{}\"}}", "\"q\" ".repeat(17 << 18)); // 17 MiB, quotes doubled
    let writer = Writer::start(&path, None, 2).unwrap();
    writer.send(Entry::Write(Box::new(big.clone())));
    writer.send(created(2));
    writer.finish().unwrap();
    let mut prior = Prior::open(&path).unwrap().unwrap();
    assert_eq!(prior.lookup(1, "id-1").unwrap().unwrap().0.body, big.body);
    assert_eq!(prior.records, 2);
}

#[test]
fn a_failed_write_stops_the_run_at_once_and_is_retried_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let writer = Writer::start(&path, None, 4).unwrap();
    let stop = CancellationToken::new();
    writer.cancel_on_failure(stop.clone());
    writer.send(created(1));
    let good = std::fs::metadata(&path).unwrap().len();
    writer.fail_past(Some(good + 10)); // the disk fills up inside the next record
    writer.send(created(2));
    assert!(stop.is_cancelled(), "the run is told at once");
    assert!(writer.write_error().unwrap().contains("No space left"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        good,
        "the part written is cut off"
    );
    let prior = Prior::open(&path).unwrap().unwrap();
    assert_eq!(
        prior.torn_line, None,
        "not taken for a killed run's torn record"
    );
    writer.send(created(3)); // in memory
    writer.send(Entry::Write(Box::new(record(4, Status::Pending)))); // made again next run
    writer.fail_past(None); // room again
    writer.finish().unwrap();
    assert_eq!(ids(&path), ["id-1", "id-2", "id-3"]);
}

#[test]
fn records_that_still_cannot_be_written_are_handed_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let writer = Writer::start(&path, None, 3).unwrap();
    writer.send(created(1));
    writer.fail_past(Some(std::fs::metadata(&path).unwrap().len()));
    writer.sender().send_all([
        created(2),
        Entry::Write(Box::new(record(3, Status::Failed))),
    ]);
    let failed = writer.finish().unwrap_err();
    assert_eq!(
        failed.unrecorded,
        [Unrecorded {
            request_id: "id-2".to_owned(),
            checkout_id: "ch_2".to_owned(),
            checkout_url: "https://pay.example/2".to_owned(),
        }],
        "only created checkouts: the others are sent again safely"
    );
    assert!(
        failed.to_string().contains("out.csv: cannot write"),
        "{failed}"
    );
    let mut err = Vec::new();
    let rescue = failed.print_unrecorded(&mut err).unwrap().unwrap();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("id-2,ch_2,https://pay.example/2\n"), "{err}");
    assert_eq!(ids(&rescue), ["id-2"], "whole records of the created rows");
    assert_eq!(
        ids(&path),
        ["id-1"],
        "the file holds whole records, as it was"
    );
    // The next run adds them to the ledger (the disk has room again) and deletes the file.
    super::take_rescued(&path).unwrap();
    assert!(!rescue.exists());
    assert_eq!(ids(&path), ["id-1", "id-2"]);
}

/// The fast index and the CSV reader's agree wherever the fast one answers.
fn same_index_both_ways(text: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    std::fs::write(&path, text).unwrap();
    let summary = |fast| Prior::open_with(&path, fast).map(|p| p.map(|p| p.summary()));
    match (summary(true), summary(false)) {
        (Ok(fast), Ok(slow)) => assert_eq!(fast, slow, "{}", String::from_utf8_lossy(text)),
        (fast, slow) => assert_eq!(fast.is_ok(), slow.is_ok(), "{fast:?} {slow:?}"),
    }
    true
}

#[test]
fn the_fast_index_agrees_with_the_csv_reader() {
    let record = |row, status, error: &str, hash: &str| {
        let mut r = Record::new("-spring, 2026", row, &format!("id-{row}"), "", status);
        r.error = error.to_owned();
        r.input_hash = hash.to_owned();
        r.body = r#"{"a":"x,\"y\"","b":1}"#.to_owned();
        r
    };
    let ordered = ledger_text(&[
        record(1, Status::Created, "", "00000000000000aa"),
        record(2, Status::Failed, "HTTP 500, \"boom\"", ""),
        record(3, Status::Created, "", "00000000000000cc"),
    ]);
    let displaced = ledger_text(&[
        record(2, Status::Failed, "", ""),
        record(1, Status::Created, "", "00000000000000aa"),
        record(2, Status::Created, "", "00000000000000bb"),
    ]);
    let mut multi = record(2, Status::Failed, "", "");
    multi.campaign = "two\nlines".to_owned();
    // As this version writes them: the fast index reads these.
    let plain = |rows: &[u64]| {
        let records: Vec<Record> = rows
            .iter()
            .map(|&row| {
                let mut r = record(row, Status::Created, "", "00000000000000aa");
                r.campaign = "spring".to_owned();
                r
            })
            .collect();
        ledger_text(&records)
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    for text in [plain(&[1, 2, 3]), plain(&[2, 1, 2]), plain(&[])] {
        std::fs::write(&path, &text).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let start = text.find('\n').unwrap() as u64 + 1;
        let index = index::Index::new(text.len() as u64, start);
        assert!(
            fast_index::index_lines(&file, start, index).is_some(),
            "{text}"
        );
        same_index_both_ways(text.as_bytes());
    }
    for text in [
        ordered.clone(),
        displaced,
        ordered.trim_end().to_owned(),
        ordered[..ordered.len() - 20].to_owned(),
        ordered.replace('\n', "\r\n"),
        ledger_text(&[record(1, Status::Created, "", ""), multi]),
        ledger_text(&[]),
        ordered.replacen(",created,", ",sent,", 1),
    ] {
        same_index_both_ways(text.as_bytes());
    }
}

/// Reads `bytes` as a ledger every way a run does; only errors may come out, never a panic.
fn read_every_way(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    std::fs::write(&path, bytes).unwrap();
    let _ = read_all(&path);
    let Ok(Some(mut prior)) = Prior::open(&path) else {
        return;
    };
    for row in 0..4 {
        let _ = prior.lookup(row, "id-1");
    }
    if prior.standard_layout() {
        let keep = prior.at_row(1);
        if let Ok(writer) = Writer::start(&path, Some(&prior), 2) {
            if let Some(prior) = keep {
                writer.send(Entry::Keep { row: 1, prior });
            }
            writer.send(created(2));
            let _ = writer.finish();
        }
    } else {
        let _ = normalise(&path);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    #[test]
    fn any_bytes_read_as_a_ledger_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)
    ) {
        read_every_way(&bytes);
    }

    #[test]
    fn any_ledger_like_text_never_panics(
        with_header in proptest::prelude::any::<bool>(),
        text in "([a-z0-9\"',;\r\n]|created|failed|id-1|99999999999999999999|\\{\\}){0,120}"
    ) {
        let head = if with_header { format!("{}\n", COLUMNS.join(",")) } else { String::new() };
        let text = format!("{head}{text}");
        same_index_both_ways(text.as_bytes());
        read_every_way(text.as_bytes());
    }
}
