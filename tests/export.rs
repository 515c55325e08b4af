//! `creem-batch export`: the links of created checkouts as a file an email tool imports,
//! joined with the customers file by row and request_id.

use std::collections::HashMap;
use std::path::Path;

use calamine::{open_workbook, Data, Reader, Xlsx};

use crate::common::{TestEnv, FAST, MINIMAL_YAML, OUTPUT};

/// Customers with the columns an email tool merges, accented names, and a formula-like cell.
const CUSTOMERS: &str = "email,name,seats,First Name,Company\n\
    ana@example.com,Ana,1,José,=HYPERLINK(\"http://x\")\n\
    bo@example.com,Bo,2,Zoë,Müller GmbH\n\
    cy@example.com,Cy,3,Cy,\"Acme, Inc\"\n";

/// A sandbox env whose campaign over [`CUSTOMERS`] was sent.
async fn sent(csv: &str, extra: &[&str]) -> TestEnv {
    let env = TestEnv::sandbox().await;
    env.send_campaign_csv(csv, FAST);
    env.send(extra).await;
    env
}

/// The ledger's checkout_url by email, for created rows.
fn links(env: &TestEnv) -> HashMap<String, String> {
    env.ledger()
        .into_iter()
        .filter(|r| r["status"] == "created")
        .map(|r| (r["email"].clone(), r["checkout_url"].clone()))
        .collect()
}

/// A CSV export: checks the BOM, returns the rows (header first).
#[track_caller]
fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = bytes
        .strip_prefix("\u{FEFF}".as_bytes())
        .expect("UTF-8 with a BOM, for Excel");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text);
    reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_owned).collect())
        .collect()
}

/// An xlsx export's first sheet, every cell as text (and checked to be a text cell).
#[track_caller]
fn read_xlsx(path: &Path) -> Vec<Vec<String>> {
    let mut workbook: Xlsx<_> = open_workbook(path).expect("an xlsx workbook");
    let sheet = workbook
        .worksheet_range_at(0)
        .expect("a sheet")
        .expect("readable");
    sheet
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::String(text) => text.clone(),
                    other => panic!("not a text cell: {other:?}"),
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_mailchimp_as_csv_with_a_bom_and_merge_fields() {
    let env = sent(CUSTOMERS, &["--quiet"]).await;
    let run = env
        .run_async(&[
            "export",
            "campaign.yaml",
            "--for",
            "mailchimp",
            "--columns",
            "First Name,Company",
        ])
        .await;
    run.assert_exit(0).stdout_has(&[
        "wrote 3 checkout links to out/results.mailchimp.csv",
        "(Email Address, First Name, Company, Checkout URL)",
    ]);
    let rows = read_csv(&env.path().join("out/results.mailchimp.csv"));
    let links = links(&env);
    assert_eq!(
        rows,
        [
            vec!["Email Address", "First Name", "Company", "Checkout URL"],
            // A formula-like cell gets the ledger's `'` guard.
            vec![
                "ana@example.com",
                "José",
                "'=HYPERLINK(\"http://x\")",
                &links["ana@example.com"],
            ],
            vec![
                "bo@example.com",
                "Zoë",
                "Müller GmbH",
                &links["bo@example.com"]
            ],
            vec![
                "cy@example.com",
                "Cy",
                "Acme, Inc",
                &links["cy@example.com"]
            ],
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_hubspot_as_xlsx_read_back_with_calamine() {
    let env = sent(CUSTOMERS, &["--quiet"]).await;
    let run = env
        .run_async(&[
            "export",
            "campaign.yaml",
            "--for",
            "hubspot",
            "--format",
            "xlsx",
            "--columns",
            "First Name,Company",
            "--out",
            "links.xlsx",
        ])
        .await;
    run.assert_exit(0)
        .stdout_has(&["wrote 3 checkout links to links.xlsx"]);
    let rows = read_xlsx(&env.path().join("links.xlsx"));
    let links = links(&env);
    assert_eq!(
        rows,
        [
            vec!["Email", "First Name", "Company Name", "Checkout URL"],
            // A text cell is never run as a formula: the value stays as written.
            vec![
                "ana@example.com",
                "José",
                "=HYPERLINK(\"http://x\")",
                &links["ana@example.com"],
            ],
            vec![
                "bo@example.com",
                "Zoë",
                "Müller GmbH",
                &links["bo@example.com"]
            ],
            vec![
                "cy@example.com",
                "Cy",
                "Acme, Inc",
                &links["cy@example.com"]
            ],
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_csv_and_xlsx_from_the_out_extension() {
    let env = sent(CUSTOMERS, &["--quiet"]).await;
    env.run_async(&["export", "campaign.yaml"])
        .await
        .assert_exit(0)
        .stdout_has(&["out/results.export.csv (email, checkout_url)"]);
    let rows = read_csv(&env.path().join("out/results.export.csv"));
    assert_eq!(rows[0], ["email", "checkout_url"]);
    assert_eq!(rows.len(), 4);

    env.run_async(&["export", "campaign.yaml", "--out", "plain.xlsx"])
        .await
        .assert_exit(0);
    let rows = read_xlsx(&env.path().join("plain.xlsx"));
    assert_eq!(rows[0], ["email", "checkout_url"]);
    assert_eq!(rows[1][1], links(&env)["ana@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_without_a_checkout_are_left_out_and_counted_by_reason() {
    // Row 2 is invalid; --limit 2 leaves rows 4 and 5 pending.
    let csv = "email,name,seats\nana@example.com,Ana,1\nbroken,Bo,1\ncy@example.com,Cy,1\n\
               di@example.com,Di,1\nel@example.com,El,1\n";
    let env = sent(csv, &["--quiet", "--limit", "2"]).await;
    let run = env.run_async(&["export", "campaign.yaml"]).await;
    run.assert_exit(0).stdout_has(&[
        "wrote 2 checkout links",
        "left out 3 rows with no link: 1 invalid, 2 pending (not sent yet)",
        "to create the missing links: creem-batch run campaign.yaml, then export again",
    ]);
    let rows = read_csv(&env.path().join("out/results.export.csv"));
    let emails: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(emails, ["ana@example.com", "cy@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_file_changed_since_the_run_is_warned_about() {
    let env = sent(CUSTOMERS, &["--quiet"]).await;
    // A new customer at the top: every other row moves down one.
    env.write(
        "customers.csv",
        CUSTOMERS.replacen("\n", "\nnew@example.com,New,1,New,Newco\n", 1),
    );
    let run = env
        .run_async(&["export", "campaign.yaml", "--columns", "First Name"])
        .await;
    run.assert_exit(0).stdout_has(&[
        "wrote 3 checkout links",
        "left out 1 row with no link: 1 not in the ledger (added or changed since the run)",
    ]);
    run.stderr_has(&[
        "warning: the customers file changed since the run",
        "3 row(s) moved",
    ]);
    // The links still go to the right customers: joined by request_id, not row number.
    let rows = read_csv(&env.path().join("out/results.export.csv"));
    let links = links(&env);
    for row in &rows[1..] {
        assert_eq!(row[2], links[&row[0]], "{row:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_ledger_alone_email_and_link() {
    let env = sent(CUSTOMERS, &["--quiet"]).await;
    let run = env
        .run_async(&["export", OUTPUT, "--for", "mailchimp", "--out", "m.csv"])
        .await;
    run.assert_exit(0)
        .stdout_has(&["wrote 3 checkout links to m.csv"]);
    let rows = read_csv(&env.path().join("m.csv"));
    assert_eq!(rows[0], ["Email Address", "Checkout URL"]);
    assert_eq!(rows[2], ["bo@example.com", &links(&env)["bo@example.com"]]);

    env.run_async(&["export", OUTPUT, "--columns", "Company"])
        .await
        .assert_exit(2)
        .stderr_has(&["--columns needs the campaign YAML"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_name_what_to_do() {
    let env = sent(CUSTOMERS, &["--quiet"]).await;
    env.run_async(&["export", "campaign.yaml", "--columns", "Firstname"])
        .await
        .assert_exit(2)
        .stderr_has(&["has no column `Firstname`", "did you mean `First Name`?"]);
    // Never written over its own inputs.
    let before = std::fs::read(env.ledger_path()).unwrap();
    env.run_async(&["export", "campaign.yaml", "--out", OUTPUT])
        .await
        .assert_exit(2)
        .stderr_has(&["is one of the export's own inputs"]);
    assert_eq!(std::fs::read(env.ledger_path()).unwrap(), before);
    env.run_async(&["export", "campaign.yaml", "--out", "customers.csv"])
        .await
        .assert_exit(2);
    assert_eq!(
        std::fs::read_to_string(env.path().join("customers.csv")).unwrap(),
        CUSTOMERS
    );
}

#[test]
fn before_any_run_says_to_run_first() {
    let env = TestEnv::new();
    env.send_campaign_csv(CUSTOMERS, FAST);
    env.run(&["export", "campaign.yaml"])
        .assert_exit(2)
        .stderr_has(&["out/results.csv does not exist", "run the campaign first"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customers_csv_given_instead_of_the_campaign_points_at_it() {
    let env = sent(CUSTOMERS, &["--quiet"]).await;
    env.write("customers.yaml", MINIMAL_YAML);
    env.run_async(&["export", "customers.csv"])
        .await
        .assert_exit(2)
        .stderr_has(&["did you mean `creem-batch export customers.yaml`?"]);
}
