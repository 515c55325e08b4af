//! `status`: checkouts made by a real `run` against the in-process sandbox, some then moved on
//! with `set_checkout_status`, and `status` reading them back into the ledger.

use std::collections::HashMap;
use std::process::Output;

use creem_batch::sandbox::{Sandbox, SandboxConfig};

use crate::common::send::{campaign_with_csv, creem_batch, ledger, run, text, KEY};

type Row = HashMap<String, String>;

const FAST: &str = "  rate: unlimited\n  concurrency: 4\n";
const OUTPUT: &str = "out/results.csv";

async fn sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("sandbox starts")
}

fn segment(row: usize) -> &'static str {
    match row {
        1..=4 => "vip",
        5..=7 => "regular",
        _ => "trial",
    }
}

/// Ten customers in three segments, sent with a real `run`; then rows 1, 2 and 5 are paid,
/// row 3 expired and row 8 processing. Returns the ledger as `run` left it.
async fn sent_and_moved_on(server: &Sandbox) -> (tempfile::TempDir, Vec<Row>) {
    let mut csv = String::from("email,name,seats,segment\n");
    for i in 1..=10 {
        csv.push_str(&format!("user{i}@example.com,User {i},1,{}\n", segment(i)));
    }
    let (dir, _) = campaign_with_csv(&csv, FAST);
    let out = run(dir.path(), &server.base_url(), &["--quiet"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = ledger(dir.path());
    assert_eq!(rows.len(), 10);
    for (row, status) in [
        (1, "completed"),
        (2, "completed"),
        (5, "completed"),
        (3, "expired"),
        (8, "processing"),
    ] {
        assert!(server.set_checkout_status(&rows[row - 1]["checkout_id"], status));
    }
    (dir, rows)
}

/// The checkout_status each row should have after `status`.
fn expected_status(row: usize) -> &'static str {
    match row {
        1 | 2 | 5 => "completed",
        3 => "expired",
        8 => "processing",
        _ => "pending",
    }
}

async fn status(dir: &std::path::Path, server: &Sandbox, args: &[&str]) -> Output {
    let base = server.base_url();
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--base-url", &base]);
    creem_batch(dir, &all, KEY).await
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cells of the `--by` table line for `value`.
fn table_row(report: &str, value: &str) -> Vec<String> {
    report
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(value))
        .unwrap_or_else(|| panic!("no `{value}` line in\n{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_conversion_and_the_column_written_from_the_csv() {
    let server = sandbox(SandboxConfig::default()).await;
    let (dir, before) = sent_and_moved_on(&server).await;
    let gets = server.stats().gets;

    let out = status(dir.path(), &server, &[OUTPUT, "--rate", "unlimited", "-q"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = stdout(&out);
    assert!(
        report.contains("10 created checkouts: 5 pending, 1 processing, 3 completed, 1 expired"),
        "{report}"
    );
    assert!(
        report.contains("conversion: 30.0% (3 of 10 completed)"),
        "{report}"
    );
    assert_eq!(server.stats().gets - gets, 10, "one GET per created row");

    let after = ledger(dir.path());
    assert_eq!(after.len(), before.len());
    for (i, (old, new)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            new["checkout_status"],
            expected_status(i + 1),
            "row {}",
            i + 1
        );
        for (column, value) in old {
            if column != "checkout_status" {
                assert_eq!(&new[column], value, "row {} column {column}", i + 1);
            }
        }
    }

    // A ledger column works without the campaign.
    let out = status(
        dir.path(),
        &server,
        &[
            OUTPUT,
            "--rate",
            "unlimited",
            "-q",
            "--by",
            "checkout_status",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = stdout(&out);
    assert!(report.contains("by checkout_status:"), "{report}");
    assert_eq!(table_row(&report, "completed")[1], "3");
    assert_eq!(table_row(&report, "completed").last().unwrap(), "100.0%");
    assert_eq!(table_row(&report, "pending")[1], "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_yaml_breaks_down_by_a_customers_column_and_json() {
    let server = sandbox(SandboxConfig::default()).await;
    let (dir, _) = sent_and_moved_on(&server).await;

    let out = status(
        dir.path(),
        &server,
        &["campaign.yaml", "--by", "segment", "-q"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = stdout(&out);
    assert!(
        report.contains("conversion: 30.0% (3 of 10 completed)"),
        "{report}"
    );
    // segment, created, pending, processing, completed, expired, conversion
    assert_eq!(
        table_row(&report, "vip"),
        ["vip", "4", "1", "0", "2", "1", "50.0%"]
    );
    assert_eq!(
        table_row(&report, "regular"),
        ["regular", "3", "2", "0", "1", "0", "33.3%"]
    );
    assert_eq!(
        table_row(&report, "trial"),
        ["trial", "3", "2", "1", "0", "0", "0.0%"]
    );
    assert!(ledger(dir.path())
        .iter()
        .enumerate()
        .all(|(i, r)| r["checkout_status"] == expected_status(i + 1)));

    let out = status(
        dir.path(),
        &server,
        &["campaign.yaml", "--by", "segment", "--json", "-q"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e})\n{}", text(&out)));
    assert_eq!(json["command"], "status");
    assert_eq!(json["exit"], "ok");
    assert_eq!(json["rows"], 10);
    assert_eq!(json["created"], 10);
    assert_eq!(json["fetched"], 10);
    assert_eq!(json["failed_fetches"], 0);
    assert!(json["output"].as_str().unwrap().ends_with("results.csv"));
    assert!(json["elapsed_seconds"].as_f64().is_some());
    assert_eq!(
        json["counts"],
        serde_json::json!({"pending": 5, "processing": 1, "completed": 3, "expired": 1, "unknown": 0, "error": 0})
    );
    assert_eq!(json["conversion"], 0.3);
    assert_eq!(json["by"]["column"], "segment");
    assert_eq!(json["by"]["source"], "customers");
    let groups = json["by"]["groups"].as_array().unwrap();
    let vip = groups.iter().find(|g| g["value"] == "vip").unwrap();
    assert_eq!(vip["created"], 4);
    assert_eq!(vip["counts"]["completed"], 2);
    assert_eq!(vip["conversion"], 0.5);
    assert_eq!(groups.len(), 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("conversion: 30.0%"),
        "human summary on stderr: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_by_column_is_a_usage_error_before_any_request() {
    let server = sandbox(SandboxConfig::default()).await;
    let (dir, _) = sent_and_moved_on(&server).await;
    let out = status(dir.path(), &server, &["campaign.yaml", "--by", "segmnt"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let message = text(&out);
    for part in [
        "no column `segmnt`",
        "did you mean `segment`",
        "email, name, seats, segment",
        "checkout_status",
    ] {
        assert!(message.contains(part), "lacks {part:?}: {message}");
    }
    // Without the campaign, the customers' columns are not available.
    let out = status(dir.path(), &server, &[OUTPUT, "--by", "segment"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("give the campaign YAML"),
        "{}",
        text(&out)
    );
    assert_eq!(server.stats().gets, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_open_skips_completed_and_expired_rows() {
    let server = sandbox(SandboxConfig::default()).await;
    let (dir, _) = sent_and_moved_on(&server).await;
    let first = status(dir.path(), &server, &["campaign.yaml", "-q"]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(server.stats().gets, 10);

    let out = status(dir.path(), &server, &["campaign.yaml", "--only-open", "-q"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        server.stats().gets,
        10 + 6,
        "3 completed and 1 expired skipped"
    );
    assert!(
        stdout(&out).contains("conversion: 30.0% (3 of 10 completed)"),
        "skipped rows still count: {}",
        text(&out)
    );
    assert!(text(&out).contains("4 skipped"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_key_exits_3_and_leaves_the_ledger() {
    let server = sandbox(SandboxConfig {
        key: Some(KEY.to_owned()),
        ..SandboxConfig::default()
    })
    .await;
    let (dir, _) = sent_and_moved_on(&server).await;
    let before = std::fs::read(dir.path().join(OUTPUT)).unwrap();
    let base = server.base_url();
    let out = creem_batch(
        dir.path(),
        &[
            "status",
            "campaign.yaml",
            "--base-url",
            &base,
            "--concurrency",
            "1",
            "-q",
        ],
        "creem_test_WRONGKEY",
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("API key was rejected"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("WRONGKEY"));
    assert!(
        server.stats().gets <= 2,
        "stops at once: {:?}",
        server.stats().gets
    );
    assert_eq!(std::fs::read(dir.path().join(OUTPUT)).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_ids_are_kept_and_failed_fetches_counted() {
    let server = sandbox(SandboxConfig::default()).await;
    let (dir, before) = sent_and_moved_on(&server).await;
    let mock = wiremock::MockServer::start().await;
    use wiremock::matchers::{method, path, query_param};
    let answer = |id: &str, status: &str, order: serde_json::Value| {
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": id, "object": "checkout", "status": status, "mode": "test", "order": order
        }))
    };
    let (first, second) = (&before[0]["checkout_id"], &before[1]["checkout_id"]);
    wiremock::Mock::given(method("GET"))
        .and(path("/v1/checkouts"))
        .and(query_param("checkout_id", first.as_str()))
        .respond_with(answer(
            first,
            "completed",
            serde_json::json!({"id": "ord_FIRST", "object": "order"}),
        ))
        .mount(&mock)
        .await;
    wiremock::Mock::given(method("GET"))
        .and(path("/v1/checkouts"))
        .and(query_param("checkout_id", second.as_str()))
        .respond_with(answer(second, "completed", serde_json::json!("ord_SECOND")))
        .mount(&mock)
        .await;
    // Every other checkout is unknown to this host: 404.

    let out = creem_batch(
        dir.path(),
        &[
            "status",
            OUTPUT,
            "--base-url",
            &mock.uri(),
            "--rate",
            "unlimited",
            "-q",
            "--json",
        ],
        KEY,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["exit"], "some_fetches_failed");
    assert_eq!(json["fetched"], 2);
    assert_eq!(json["failed_fetches"], 8);
    assert_eq!(json["counts"]["completed"], 2);
    assert_eq!(json["counts"]["error"], 8);
    assert!(text(&out).contains("HTTP 404"), "{}", text(&out));

    let after = ledger(dir.path());
    assert_eq!(after[0]["order_id"], "ord_FIRST");
    assert_eq!(after[1]["order_id"], "ord_SECOND");
    assert_eq!(after[0]["checkout_status"], "completed");
    for row in &after[2..] {
        assert_eq!(
            row["checkout_status"], "pending",
            "a failed fetch keeps the old value"
        );
        assert_eq!(row["order_id"], "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fetch_failing_exits_2() {
    let server = sandbox(SandboxConfig::default()).await;
    let (dir, _) = sent_and_moved_on(&server).await;
    let before = std::fs::read(dir.path().join(OUTPUT)).unwrap();
    // `--sandbox` starts a new, empty sandbox: it knows none of these checkouts.
    let out = creem_batch(
        dir.path(),
        &["status", OUTPUT, "--sandbox", "--rate", "unlimited", "-q"],
        KEY,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no checkout could be fetched"),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).contains("10 error"), "{}", text(&out));
    assert_eq!(std::fs::read(dir.path().join(OUTPUT)).unwrap(), before);

    let out = creem_batch(dir.path(), &["status", "missing.csv"], KEY).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
}
