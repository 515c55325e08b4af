//! `status`: checkouts made by a real `run` against the in-process sandbox, some then moved on
//! with `set_checkout_status`, and `status` reading them back into the ledger.

use creem_batch::sandbox::SandboxConfig;

use crate::common::{Campaign, Row, Run, TestEnv, FAST, KEY, OUTPUT};

fn segment(row: usize) -> &'static str {
    match row {
        1..=4 => "vip",
        5..=7 => "regular",
        _ => "trial",
    }
}

/// Ten customers in three segments, sent with a real `run`; then rows 1, 2 and 5 are paid,
/// row 3 expired and row 8 processing. Returns the ledger as `run` left it.
async fn sent_and_moved_on(env: &TestEnv) -> Vec<Row> {
    let mut csv = String::from("email,name,seats,segment\n");
    for i in 1..=10 {
        csv.push_str(&format!("user{i}@example.com,User {i},1,{}\n", segment(i)));
    }
    env.send_campaign_csv(&csv, FAST);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let rows = env.ledger();
    assert_eq!(rows.len(), 10);
    for (row, status) in [
        (1, "completed"),
        (2, "completed"),
        (5, "completed"),
        (3, "expired"),
        (8, "processing"),
    ] {
        assert!(env
            .server()
            .set_checkout_status(&rows[row - 1]["checkout_id"], status));
    }
    rows
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

/// `creem-batch status ARGS --base-url <sandbox>`.
async fn status(env: &TestEnv, args: &[&str]) -> Run {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    env.command_at_server(&all).await
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
    let env = TestEnv::sandbox().await;
    let server = env.server();
    let before = sent_and_moved_on(&env).await;
    let gets = server.stats().gets;

    let out = status(&env, &[OUTPUT, "--rate", "unlimited", "-q"]).await;
    out.assert_exit(0);
    let report = out.stdout.clone();
    assert!(
        report.contains("10 created checkouts: 5 pending, 1 processing, 3 completed, 1 expired"),
        "{report}"
    );
    assert!(
        report.contains("conversion: 30.0% (3 of 10 completed)"),
        "{report}"
    );
    assert_eq!(server.stats().gets - gets, 10, "one GET per created row");

    let after = env.ledger();
    assert_eq!(after.len(), before.len());
    for (i, (old, new)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            new["checkout_status"],
            expected_status(i + 1),
            "row {}",
            i + 1
        );
        for (column, value) in old {
            // A completed checkout now carries its order, which status fills in; a row whose
            // status changed records when that was seen.
            if !["checkout_status", "order_id", "updated_at"].contains(&column.as_str()) {
                assert_eq!(&new[column], value, "row {} column {column}", i + 1);
            }
        }
    }

    // A ledger column works without the campaign.
    let out = status(
        &env,
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
    out.assert_exit(0);
    let report = out.stdout.clone();
    assert!(report.contains("by checkout_status:"), "{report}");
    assert_eq!(table_row(&report, "completed")[1], "3");
    assert_eq!(table_row(&report, "completed").last().unwrap(), "100.0%");
    assert_eq!(table_row(&report, "pending")[1], "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_yaml_breaks_down_by_a_customers_column_and_json() {
    let env = TestEnv::sandbox().await;
    sent_and_moved_on(&env).await;

    let out = status(&env, &["campaign.yaml", "--by", "segment", "-q"]).await;
    out.assert_exit(0);
    let report = out.stdout.clone();
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
    assert!(env
        .ledger()
        .iter()
        .enumerate()
        .all(|(i, r)| r["checkout_status"] == expected_status(i + 1)));

    let out = status(&env, &["campaign.yaml", "--by", "segment", "--json", "-q"]).await;
    out.assert_exit(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e})\n{}", out.text()));
    assert_eq!(json["command"], "status");
    assert_eq!(json["exit"], "ok");
    assert_eq!(json["rows"], 10);
    assert_eq!(json["created"], 10);
    assert_eq!(
        json["fetched"], 6,
        "completed and expired rows are not fetched again"
    );
    assert_eq!(json["skipped"], 4);
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
    // The human summary goes to stderr.
    out.stderr_has(&["conversion: 30.0%"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_by_column_is_a_usage_error_before_any_request() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    sent_and_moved_on(&env).await;
    let out = status(&env, &["campaign.yaml", "--by", "segmnt"]).await;
    out.assert_exit(2);
    let message = out.text();
    for part in [
        "no column `segmnt`",
        "did you mean `segment`",
        "email, name, seats, segment",
        "checkout_status",
    ] {
        assert!(message.contains(part), "lacks {part:?}: {message}");
    }
    // Without the campaign, the customers' columns are not available.
    let out = status(&env, &[OUTPUT, "--by", "segment"]).await;
    out.assert_exit(2);
    out.has(&["give the campaign YAML"]);
    assert_eq!(server.stats().gets, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_and_expired_rows_are_fetched_only_with_all() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    sent_and_moved_on(&env).await;
    let first = status(&env, &["campaign.yaml", "-q"]).await;
    first.assert_exit(0);
    assert_eq!(server.stats().gets, 10);

    let out = status(&env, &["campaign.yaml", "-q"]).await;
    out.assert_exit(0);
    assert_eq!(
        server.stats().gets,
        10 + 6,
        "3 completed and 1 expired skipped"
    );
    assert!(
        out.stdout.contains("conversion: 30.0% (3 of 10 completed)"),
        "skipped rows still count: {}",
        out.text()
    );
    out.has(&["4 skipped"]);

    // The old flag still works (it is the default now); --all fetches every row.
    status(&env, &["campaign.yaml", "--only-open", "-q"])
        .await
        .assert_exit(0);
    assert_eq!(server.stats().gets, 10 + 6 + 6);
    status(&env, &["campaign.yaml", "--all", "-q"])
        .await
        .assert_exit(0);
    assert_eq!(server.stats().gets, 10 + 6 + 6 + 10);
}

/// Ten customers in three segments whose discount a template `if` chooses, and whose segment
/// goes to `metadata.segment`; sent, then moved on as in [`sent_and_moved_on`].
async fn sent_with_chosen_discounts(env: &TestEnv) {
    let mut csv = String::from("email,name,seats,segment\n");
    for i in 1..=10 {
        csv.push_str(&format!("user{i}@example.com,User {i},1,{}\n", segment(i)));
    }
    let yaml = Campaign::new()
        .name("test-run")
        .top(&format!("output: {OUTPUT}"))
        .checkout("discount_code: \"{% if segment == 'vip' %}EDU50{% else %}LAUNCH20{% endif %}\"")
        .checkout("metadata:\n  segment: \"{{ segment }}\"")
        .send(FAST)
        .build();
    env.campaign(&yaml, csv);
    env.send(&["--quiet"]).await.assert_exit(0);
    let rows = env.ledger();
    for (row, status) in [
        (1, "completed"),
        (2, "completed"),
        (5, "completed"),
        (3, "expired"),
    ] {
        assert!(env
            .server()
            .set_checkout_status(&rows[row - 1]["checkout_id"], status));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_counts_the_ledger_as_it_is_by_rendered_fields() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    sent_with_chosen_discounts(&env).await;
    let before = std::fs::read(env.ledger_path()).unwrap();

    // Without the network: the statuses `run` recorded, all pending; no key needed.
    let out = env
        .run_async_with_key(
            None,
            &["status", OUTPUT, "--offline", "--by", "discount_code"],
        )
        .await;
    out.assert_exit(0);
    assert_eq!(server.stats().gets, 0);
    assert_eq!(std::fs::read(env.ledger_path()).unwrap(), before);
    // discount_code, created, pending, processing, completed, expired, conversion
    assert_eq!(
        table_row(&out.stdout, "EDU50"),
        ["EDU50", "4", "4", "0", "0", "0", "0.0%"]
    );
    assert_eq!(table_row(&out.stdout, "LAUNCH20")[1], "6");
    out.has(&["offline, nothing fetched"]);

    status(&env, &[OUTPUT, "-q"]).await.assert_exit(0);
    let gets = server.stats().gets;
    let out = status(&env, &[OUTPUT, "--offline", "--by", "metadata.segment"]).await;
    out.assert_exit(0);
    assert_eq!(server.stats().gets, gets);
    assert!(
        out.stdout.contains("by metadata.segment:"),
        "{}",
        out.text()
    );
    assert_eq!(
        table_row(&out.stdout, "vip"),
        ["vip", "4", "1", "0", "2", "1", "50.0%"]
    );
    assert_eq!(
        table_row(&out.stdout, "regular"),
        ["regular", "3", "2", "0", "1", "0", "33.3%"]
    );

    // --offline and --all contradict each other.
    status(&env, &[OUTPUT, "--offline", "--all"])
        .await
        .assert_exit(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_key_exits_3_and_leaves_the_ledger() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        key: Some(KEY.to_owned()),
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    sent_and_moved_on(&env).await;
    let before = std::fs::read(env.ledger_path()).unwrap();
    let base = env.base_url();
    let out = env
        .run_async_with_key(
            Some("creem_test_WRONGKEY"),
            &[
                "status",
                "campaign.yaml",
                "--base-url",
                &base,
                "--concurrency",
                "1",
                "-q",
            ],
        )
        .await;
    out.assert_exit(3);
    out.has(&["API key was rejected"]);
    out.lacks("WRONGKEY");
    assert!(
        server.stats().gets <= 2,
        "stops at once: {:?}",
        server.stats().gets
    );
    assert_eq!(std::fs::read(env.ledger_path()).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_ids_are_kept_and_failed_fetches_counted() {
    let env = TestEnv::sandbox().await;
    let before = sent_and_moved_on(&env).await;
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

    let out = env
        .run_async(&[
            "status",
            OUTPUT,
            "--base-url",
            &mock.uri(),
            "--rate",
            "unlimited",
            "-q",
            "--json",
        ])
        .await;
    out.assert_exit(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["exit"], "some_fetches_failed");
    assert_eq!(json["fetched"], 2);
    assert_eq!(json["failed_fetches"], 8);
    assert_eq!(json["counts"]["completed"], 2);
    assert_eq!(json["counts"]["error"], 8);
    out.has(&["HTTP 404"]);

    let after = env.ledger();
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
    let env = TestEnv::sandbox().await;
    sent_and_moved_on(&env).await;
    let before = std::fs::read(env.ledger_path()).unwrap();
    // `--sandbox` starts a new, empty sandbox: it knows none of these checkouts.
    let out = env
        .run_async(&["status", OUTPUT, "--sandbox", "--rate", "unlimited", "-q"])
        .await;
    out.assert_exit(2);
    out.has(&["no checkout could be fetched"]);
    assert!(out.stdout.contains("10 error"), "{}", out.text());
    assert_eq!(std::fs::read(env.ledger_path()).unwrap(), before);

    let out = env.run_async(&["status", "missing.csv"]).await;
    out.assert_exit(2);
    out.has(&["does not exist"]);
}
