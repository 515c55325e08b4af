//! Issue 17 §1-§4: customers files as spreadsheets and email tools write them (encodings,
//! workbooks, Google Sheets' trailing column, CRLF and blank lines) and one checkout per
//! customer whatever the email column is called.

use serde_json::json;

use crate::common::{expected_request_id, repo, Campaign, Run, TestEnv};

/// A campaign keyed on `Email Address` that sends the name as metadata.
fn yaml_for(customers: &str, csv_settings: &str) -> String {
    let mut campaign = Campaign::new()
        .top(&format!("key: Email Address{csv_settings}"))
        .customer(Some("email: \"{{ columns['Email Address'] }}\""))
        .checkout("metadata:\n  name: \"{{ columns['First Name'] }}\"")
        .build();
    campaign = campaign.replace(
        "customers: customers.csv",
        &format!("customers: {customers}"),
    );
    campaign
}

/// Writes `bytes` as `name` with [`yaml_for`], runs `check` and `run --dry-run`.
fn check_and_dry_run(name: &str, bytes: &[u8], csv_settings: &str) -> (Run, Run) {
    let env = TestEnv::new();
    env.write(name, bytes);
    env.yaml(&yaml_for(name, csv_settings));
    (env.check(), env.dry_run())
}

const TEXT: &str =
    "Email Address,First Name\r\nana@example.com,José\r\nzoe@example.fr,Zoë Lefèvre\r\n";

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    if bom {
        bytes.extend(if big_endian {
            [0xFE, 0xFF]
        } else {
            [0xFF, 0xFE]
        });
    }
    for unit in text.encode_utf16() {
        bytes.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    bytes
}

/// Every fixture reads the same two customers with their accents intact.
#[track_caller]
fn assert_reads_both(check: &Run, dry: &Run, encoding: &str) {
    check
        .assert_exit(0)
        .stdout_has(&[encoding, "campaign.yaml: 2 rows, 2 valid, 0 invalid"]);
    dry.assert_exit(0).stderr_has(&[encoding]);
    let bodies = dry.json_lines();
    assert_eq!(bodies.len(), 2, "{dry}");
    assert_eq!(bodies[0]["body"]["customer"]["email"], "ana@example.com");
    assert_eq!(bodies[0]["body"]["metadata"], json!({"name": "José"}));
    assert_eq!(
        bodies[1]["body"]["metadata"],
        json!({"name": "Zoë Lefèvre"})
    );
}

#[test]
fn windows_1252_is_detected_when_not_utf8() {
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(TEXT);
    let (check, dry) = check_and_dry_run("customers.csv", &bytes, "");
    assert_reads_both(
        &check,
        &dry,
        "encoding windows-1252 (detected: not valid UTF-8)",
    );
}

#[test]
fn utf16_with_a_byte_order_mark_tab_separated_like_excel_unicode_text() {
    let text = TEXT.replace(',', "\t");
    for (big_endian, name) in [(false, "UTF-16LE"), (true, "UTF-16BE")] {
        let bytes = utf16(&text, big_endian, true);
        let (check, dry) = check_and_dry_run("customers.txt", &bytes, "");
        assert_reads_both(
            &check,
            &dry,
            &format!("encoding {name} (from its byte-order mark)"),
        );
    }
}

#[test]
fn utf16_without_a_byte_order_mark_is_detected_from_its_nuls() {
    for (big_endian, name) in [(false, "UTF-16LE"), (true, "UTF-16BE")] {
        let bytes = utf16(TEXT, big_endian, false);
        let (check, dry) = check_and_dry_run("customers.csv", &bytes, "");
        let expected = format!("encoding {name} (no byte-order mark; detected from its NUL bytes)");
        assert_reads_both(&check, &dry, &expected);
    }
}

#[test]
fn utf8_with_and_without_a_byte_order_mark() {
    let (check, dry) = check_and_dry_run("customers.csv", TEXT.as_bytes(), "");
    assert_reads_both(&check, &dry, "encoding UTF-8 (detected)");
    let with_bom = format!("\u{feff}{TEXT}");
    let (check, dry) = check_and_dry_run("customers.csv", with_bom.as_bytes(), "");
    assert_reads_both(&check, &dry, "encoding UTF-8 (from its byte-order mark)");
}

#[test]
fn csv_encoding_in_the_campaign_overrides_the_detection() {
    // ISO-8859-15 has € at 0xA4 where Windows-1252 has ¤.
    let text = "Email Address,First Name\nana@example.com,Jos\u{e9} \u{20ac}\nzoe@example.fr,Zo\u{eb} Lef\u{e8}vre\n";
    let (bytes, _, _) = encoding_rs::ISO_8859_15.encode(text);
    let env = TestEnv::new();
    env.write("customers.csv", &bytes);
    env.yaml(&yaml_for(
        "customers.csv",
        "\ncsv:\n  encoding: iso-8859-15",
    ));
    let dry = env.dry_run();
    dry.assert_exit(0)
        .stderr_has(&["encoding ISO-8859-15 (set by csv.encoding)"]);
    assert_eq!(dry.json_lines()[0]["body"]["metadata"]["name"], "José €");
    // Unknown labels stop the campaign, located.
    env.yaml(&yaml_for("customers.csv", "\ncsv:\n  encoding: klingon"));
    env.check().assert_exit(2).stderr_has(&[
        "csv encoding `klingon` is not one this tool knows",
        "campaign.yaml:",
    ]);
}

#[test]
fn an_undecodable_file_is_one_file_level_message() {
    // UTF-16LE with a BOM, and a lone surrogate in row 2: one message, nothing sent.
    let mut bytes = utf16(
        "Email Address,First Name\nana@example.com,Ana\n",
        false,
        true,
    );
    bytes.extend([0x00, 0xDC]);
    bytes.extend(utf16("b@example.com,B\n", false, false));
    let (check, dry) = check_and_dry_run("customers.csv", &bytes, "");
    for run in [&check, &dry] {
        run.assert_exit(2)
            .stderr_has(&["the file is not valid UTF-16LE at byte", "customers.csv"]);
        assert_eq!(run.stderr.matches("not valid").count(), 1, "{run}");
    }
    // A workbook saved under a .csv name is named as such.
    let (check, _) = check_and_dry_run("customers.csv", b"PK\x03\x04\x14\0\0\0", "");
    check
        .assert_exit(2)
        .stderr_has(&["is a workbook or another binary file"]);
}

#[test]
fn a_google_sheets_export_with_an_empty_trailing_column_and_blank_rows() {
    let csv = "Email Address, First Name ,\r\nana@example.com,José,\r\n\r\nzoe@example.fr,Zoë Lefèvre,\r\n,,\r\n,,\r\n";
    let env = TestEnv::new();
    env.write("customers.csv", csv);
    // The header's ` First Name ` matches `First Name`.
    env.yaml(&yaml_for("customers.csv", ""));
    let (check, dry) = (env.check(), env.dry_run());
    assert_reads_both(&check, &dry, "encoding UTF-8 (detected)");
    // A value in the unnamed column is the row's problem, located by row and line.
    env.write(
        "customers.csv",
        csv.replace("zoe@example.fr,Zoë Lefèvre,", "zoe@example.fr,Zoë,x"),
    );
    env.check().assert_exit(1).stdout_has(&[
        "customers.csv: row 2, line 4 in the file: a value in column 3, past the header's 2 named columns",
    ]);
}

#[test]
fn messages_give_the_row_and_the_line_with_crlf_and_blank_lines() {
    let csv = "email,name\r\nbad,A\r\n\r\n\r\nana@example.com,\"two\r\nlines\"\r\nalso-bad,B\r\n";
    let env = TestEnv::new();
    env.campaign(crate::common::MINIMAL_YAML, csv);
    env.check().assert_exit(1).stdout_has(&[
        "customers.csv: row 1, line 2 in the file: email `bad` has no @",
        "customers.csv: row 3, line 7 in the file: email `also-bad` has no @",
    ]);
    env.dry_run().assert_exit(1).stderr_has(&[
        "  row 1, line 2 in the file: email `bad`",
        "  row 3, line 7 in the file: email `also-bad`",
    ]);
}

#[test]
fn the_same_email_in_other_capitals_is_one_customer_whatever_the_column_is_called() {
    let csv = "Email Address,First Name\nana@example.com,Ana\n  ANA@Example.COM ,Ana again\nbo@example.com,Bo\n";
    let env = TestEnv::new();
    env.write("customers.csv", csv);
    env.yaml(&yaml_for("customers.csv", ""));
    let dry = env.dry_run();
    dry.assert_exit(1)
        .stderr_has(&["  row 2, line 3 in the file: duplicate of row 1 (same Email Address)"]);
    assert_eq!(dry.sent_rows(), [1, 3]);
    assert_eq!(
        dry.json_lines()[0]["request_id"],
        expected_request_id("spring", &[("Email Address", "ana@example.com")])
    );
    // The library computes the same id, by the column's name or by saying it is the email.
    let lib = creem_batch::default_request_id("spring", &[("Email Address", " ANA@Example.COM ")]);
    assert_eq!(dry.json_lines()[0]["request_id"], lib);
    assert_eq!(
        lib,
        creem_batch::default_request_id_of("spring", &[("ana@example.com", true)])
    );
}

#[test]
fn a_key_column_that_feeds_customer_email_is_compared_ignoring_case() {
    // `Contact` is not an email column's name, but customer.email reads it.
    let yaml = Campaign::new()
        .top("key: Contact")
        .customer(Some("email: \"{{ Contact | trim }}\""))
        .build();
    let env = TestEnv::new();
    env.campaign(&yaml, "Contact\nana@example.com\nAna@Example.com\n");
    let dry = env.dry_run();
    dry.assert_exit(1)
        .stderr_has(&["duplicate of row 1 (same Contact)"]);
    assert_eq!(dry.sent_rows(), [1]);
}

/// A workbook made in the test: text, numbers, a date, a blank row, a second sheet.
fn workbook(path: &std::path::Path) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Export").unwrap();
    for (col, name) in ["Email Address", "First Name", "Zip", "Seats", "Since"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, col as u16, *name).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    sheet.write_string(1, 0, "ana@example.com").unwrap();
    sheet.write_string(1, 1, "José").unwrap();
    sheet.write_string(1, 2, "01234").unwrap();
    sheet.write_number(1, 3, 2.0).unwrap();
    let since = ExcelDateTime::from_ymd(2026, 3, 1).unwrap();
    sheet
        .write_datetime_with_format(1, 4, &since, &date)
        .unwrap();
    // Row 3 of the sheet is blank; row 4 is the next customer, with a broken email.
    sheet.write_string(3, 0, "not-an-email").unwrap();
    sheet.write_string(3, 1, "Zoë").unwrap();
    let second = book.add_worksheet();
    second.set_name("VIP").unwrap();
    second.write_string(0, 0, "Email Address").unwrap();
    second.write_string(0, 1, "First Name").unwrap();
    second.write_string(1, 0, "vip@example.com").unwrap();
    second.write_string(1, 1, "Søren").unwrap();
    book.save(path).unwrap();
}

#[test]
fn an_xlsx_workbook_reads_its_first_sheet_with_cells_as_shown() {
    let env = TestEnv::new();
    workbook(&env.path().join("list.xlsx"));
    let yaml = yaml_for("list.xlsx", "").replace(
        "    name: \"{{ columns['First Name'] }}\"",
        "    name: \"{{ columns['First Name'] }}\"\n    zip: \"{{ Zip }}\"\n    seats: \"{{ Seats }}\"\n    since: \"{{ Since }}\"",
    );
    env.yaml(&yaml);
    let check = env.check();
    check.assert_exit(1).stdout_has(&[
        "list.xlsx: workbook, sheet `Export`",
        "list.xlsx: row 2, row 4 in the sheet: email `not-an-email` has no @",
        "campaign.yaml: 2 rows, 1 valid, 1 invalid",
    ]);
    let dry = env.dry_run();
    assert_eq!(
        dry.line_for_row(1).expect("row 1")["body"]["metadata"],
        json!({"name": "José", "zip": "01234", "seats": "2", "since": "2026-03-01"})
    );
    // `csv.sheet` picks another sheet.
    env.yaml(&yaml_for("list.xlsx", "\ncsv:\n  sheet: VIP"));
    let dry = env.dry_run();
    dry.assert_exit(0).stderr_has(&["workbook, sheet `VIP`"]);
    assert_eq!(dry.json_lines()[0]["body"]["metadata"]["name"], "Søren");
    env.yaml(&yaml_for("list.xlsx", "\ncsv:\n  sheet: Nope"));
    env.check()
        .assert_exit(2)
        .stderr_has(&["the workbook has no sheet `Nope` (its sheets: Export, VIP)"]);
}

/// An OpenDocument spreadsheet (tests/data/list.ods, two customers, written by Python's
/// zipfile: nothing in this build writes .ods) reads like an .xlsx: text stays text, whole
/// numbers have no `.0`.
#[test]
fn an_ods_workbook_reads_like_an_xlsx() {
    let env = TestEnv::new();
    let ods = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/list.ods")).unwrap();
    env.write("list.ods", &ods);
    let yaml = yaml_for("list.ods", "").replace(
        "    name: \"{{ columns['First Name'] }}\"",
        "    name: \"{{ columns['First Name'] }}\"\n    zip: \"{{ Zip }}\"\n    seats: \"{{ Seats }}\"",
    );
    env.yaml(&yaml);
    env.check().assert_exit(0).stdout_has(&[
        "list.ods: workbook, sheet `Export`",
        "campaign.yaml: 2 rows, 2 valid, 0 invalid",
    ]);
    let dry = env.dry_run();
    assert_eq!(
        dry.line_for_row(1).expect("row 1")["body"]["metadata"],
        json!({"name": "José", "zip": "01234", "seats": "2"})
    );
    assert_eq!(
        dry.line_for_row(2).expect("row 2")["body"]["metadata"]["name"],
        "Zoë"
    );
}

#[test]
fn init_on_a_workbook_writes_a_campaign_that_checks() {
    let env = TestEnv::new();
    workbook(&env.path().join("list.xlsx"));
    let run = env.run(&["init", "list.xlsx", "--product", "prod_1"]);
    run.assert_exit(0)
        .stdout_has(&["customer email: column `Email Address`"]);
    let yaml = std::fs::read_to_string(env.path().join("list.yaml")).unwrap();
    assert!(yaml.contains("customers: list.xlsx"), "{yaml}");
    assert!(!yaml.contains("delimiter"), "{yaml}");
    env.run(&["check", "list.yaml"])
        .assert_exit(1)
        .stdout_has(&["2 rows, 1 valid, 1 invalid"]);
}

/// Every sample export of shared/samples, as `init` wires it, passes `check` (invalid rows are
/// the samples' own: a repeated customer in other capitals, an empty email).
#[test]
fn check_reads_every_sample_export() {
    let samples = [
        (
            "mailchimp_subscribed_members.csv",
            "UTF-8 (detected)",
            "14 rows, 13 valid, 1 invalid",
        ),
        (
            "hubspot-crm-exports-all-contacts-2026-03-01.csv",
            "UTF-8 (from its byte-order mark)",
            "14 rows, 12 valid, 2 invalid",
        ),
        (
            "shopify-customers-export.csv",
            "UTF-8 (detected)",
            "14 rows, 12 valid, 2 invalid",
        ),
        (
            "stripe-unified-customers.csv",
            "UTF-8 (detected)",
            "13 rows, 12 valid, 1 invalid",
        ),
        (
            "google-sheets-campaign-list.csv",
            "UTF-8 (detected)",
            "12 rows, 12 valid, 0 invalid",
        ),
        (
            "excel_customers_cp1252.csv",
            "windows-1252 (detected: not valid UTF-8)",
            "11 rows, 11 valid, 0 invalid",
        ),
        (
            "excel_unicode_text.txt",
            "UTF-16LE (from its byte-order mark)",
            "12 rows, 12 valid, 0 invalid",
        ),
        (
            "excel_de_semikolon.csv",
            "windows-1252 (detected: not valid UTF-8)",
            "11 rows, 11 valid, 0 invalid",
        ),
    ];
    for (file, encoding, counts) in samples {
        let env = TestEnv::new();
        env.write(
            file,
            std::fs::read(repo().join("tests/data").join(file)).unwrap(),
        );
        env.run(&["init", file, "--product", "prod_1"])
            .assert_exit(0);
        let yaml = format!("{}.yaml", file.rsplit_once('.').unwrap().0);
        let run = env.run(&["check", &yaml]);
        run.stdout_has(&[&format!("{file}: encoding {encoding}"), counts]);
        // No replacement character: every accent decoded.
        assert!(!run.text().contains('\u{fffd}'), "{file}\n{run}");
        let dry = env.run(&["run", "--dry-run", &yaml]);
        assert!(
            !dry.stdout.contains('\u{fffd}') && !dry.stdout.contains("Ã"),
            "{file}\n{dry}"
        );
    }
}

/// A ledger written when only a column named exactly `email` was lowercased still matches
/// its rows: a created row is kept under its old id (never made twice), and the plan says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_with_request_ids_of_the_earlier_rule_is_still_read() {
    let env = TestEnv::sandbox().await;
    let yaml = Campaign::sending(crate::common::FAST)
        .top("key: Email")
        .customer(Some("email: \"{{ Email }}\""))
        .build();
    env.campaign(
        &yaml,
        "Email,name,seats\nAna@Example.com,Ana,1\nbo@example.com,Bo,1\n",
    );
    env.send(&["--quiet"]).await.assert_exit(0);
    assert_eq!(env.server().stats().created, 2);

    // Turn row 1's id into the one the earlier rule gave it (the value not lowercased), and
    // forget the input hashes, as an earlier version's differ from this one's.
    let new_id = expected_request_id("test-run", &[("Email", "Ana@Example.com")]);
    let old_id = expected_request_id("test-run", &[("Key", "Ana@Example.com")]);
    assert_ne!(new_id, old_id);
    let mut reader = csv::Reader::from_path(env.ledger_path()).unwrap();
    let header = reader.headers().unwrap().clone();
    let hash_at = header.iter().position(|h| h == "input_hash").unwrap();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let record: Vec<String> = record
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, cell)| match i {
                _ if i == hash_at => String::new(),
                _ => cell.replace(&new_id, &old_id),
            })
            .collect();
        writer.write_record(&record).unwrap();
    }
    std::fs::write(env.ledger_path(), writer.into_inner().unwrap()).unwrap();

    let dry = env.run_async(&["run", "--dry-run", "campaign.yaml"]).await;
    dry.assert_exit(0).stderr_has(&[
        "0 new, 0 to retry, 2 already created",
        "1 row(s) are in the ledger under the request_id of the earlier rule",
        &format!("  row 1: {old_id} in the ledger, {new_id} now"),
    ]);
    env.send(&["--quiet"]).await.assert_exit(0);
    assert_eq!(env.server().stats().created, 2, "nothing made twice");
}
