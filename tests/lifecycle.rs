//! After day one, end to end against the in-process sandbox: a campaign is sent, three links
//! expire and five customers pay; `run --reissue expired` gives the three a new checkout
//! (once: a re-run does not do it again), the row keeps its old checkout ids, and the next
//! wave skips those who paid.

use crate::common::{Campaign, Row, TestEnv, FAST, OUTPUT};

const EXPIRED: [usize; 3] = [2, 4, 6];
const PAID: [usize; 5] = [1, 3, 5, 7, 9];

/// Ten customers, the odd rows and row 10 opted out of marketing; sent; rows 2, 4, 6 expired
/// and 1, 3, 5, 7, 9 paid in the sandbox; then `status`. Returns the ledger after `status`.
async fn day_one(env: &TestEnv) -> Vec<Row> {
    let mut csv = String::from("email,name,seats,accepts_email_marketing\n");
    for i in 1..=10 {
        let accepts = if i % 2 == 0 && i != 10 { "yes" } else { "no" };
        csv.push_str(&format!("user{i}@example.com,User {i},1,{accepts}\n"));
    }
    env.campaign(&Campaign::sending(FAST).build(), csv);
    env.send(&["--quiet"]).await.assert_exit(0);
    let rows = env.ledger();
    let moves: Vec<(usize, &str)> = EXPIRED
        .iter()
        .map(|&row| (row, "expired"))
        .chain(PAID.iter().map(|&row| (row, "completed")))
        .collect();
    env.move_checkouts_and_refresh(&rows, &moves).await;
    env.ledger()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_links_are_reissued_once_and_keep_their_history() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    let before = day_one(&env).await;
    let created = server.stats().created;

    let out = env.send(&["--reissue", "expired", "--quiet"]).await;
    out.assert_exit(0);
    out.stderr_has(&["re-issue (expired): 3 row(s) chosen, 3 new checkout(s) created"]);
    assert_eq!(
        server.stats().created,
        created + 3,
        "exactly three new checkouts"
    );
    let after = env.ledger();
    assert_eq!(after.len(), 10);
    for (i, (old, new)) in before.iter().zip(&after).enumerate() {
        let row = i + 1;
        if EXPIRED.contains(&row) {
            assert_eq!(new["request_id"], format!("{}-r1", old["request_id"]));
            assert_eq!(new["reissues"], "1");
            assert_eq!(new["previous_checkouts"], old["checkout_id"]);
            assert_ne!(new["checkout_id"], old["checkout_id"]);
            assert_eq!(new["status"], "created");
            assert_eq!(new["checkout_status"], "pending");
            let body: serde_json::Value = serde_json::from_str(&new["body"]).unwrap();
            assert_eq!(body["request_id"], new["request_id"].as_str());
        } else {
            assert_eq!(new, old, "row {row} is left as it was");
        }
    }

    // A re-run by accident: the new checkouts are pending, so nothing is re-issued again.
    let out = env.send(&["--reissue", "expired", "--quiet"]).await;
    out.assert_exit(0);
    out.stderr_has(&["re-issue (expired): 0 row(s) chosen"]);
    assert_eq!(server.stats().created, created + 3);
    // Nor does a plain run send anything, or see a change.
    let posts = server.stats().posts;
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    out.lacks("changed since");
    assert_eq!(server.stats().posts, posts);

    // The re-issued link expires too: the second re-issue is `-r2`, with both old ids.
    let second = env.ledger();
    assert!(server.set_checkout_status(&second[1]["checkout_id"], "expired"));
    env.send(&["--reissue", "expired", "--quiet"])
        .await
        .assert_exit(0);
    let third = env.ledger();
    assert_eq!(
        third[1]["request_id"],
        format!("{}-r2", before[1]["request_id"])
    );
    assert_eq!(
        third[1]["previous_checkouts"],
        format!("{} {}", before[1]["checkout_id"], second[1]["checkout_id"])
    );
    assert_eq!(server.stats().created, created + 4);

    // The report counts re-issued rows from the ledger.
    env.run(&["report", "campaign.yaml", "--out", "r.html"])
        .assert_exit(0);
    let page = std::fs::read_to_string(env.path().join("r.html")).unwrap();
    assert!(page.contains(r#"data-n="reissued">3<"#), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_refresh_uses_the_ledger_and_a_dry_run_shows_the_plan() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    sent_without_status(&env).await;
    // The ledger still says pending everywhere: nothing to re-issue without a refresh.
    let gets = server.stats().gets;
    let out = env
        .send(&["--reissue", "expired", "--no-refresh", "--quiet"])
        .await;
    out.assert_exit(0);
    assert_eq!(server.stats().gets, gets, "--no-refresh fetches nothing");
    out.stderr_has(&["re-issue (expired): 0 row(s) chosen"]);

    env.command_at_server(&["status", "campaign.yaml", "-q"])
        .await
        .assert_exit(0);
    let out = env.run(&["run", "campaign.yaml", "--dry-run", "--reissue", "expired"]);
    out.assert_exit(0);
    out.stderr_has(&[
        "plan: 10 rows: 3 to re-issue (expired), 7 created and kept, 0 left as they are, 0 invalid",
    ]);
    assert_eq!(out.stdout.lines().count(), 3);
    assert!(out.stdout.contains("-r1\""), "{}", out.stdout);
}

async fn sent_without_status(env: &TestEnv) {
    env.send_campaign(10, FAST);
    env.send(&["--quiet"]).await.assert_exit(0);
    let rows = env.ledger();
    for row in EXPIRED {
        assert!(env
            .server()
            .set_checkout_status(&rows[row - 1]["checkout_id"], "expired"));
    }
    assert_eq!(env.ledger_path(), env.path().join(OUTPUT));
}

/// The reminder wave: the same customers, a new name, one `exclude:` line and a `where:`.
fn reminder_wave() -> String {
    Campaign::new()
        .name("reminder")
        .product("prod_TEST")
        .top("output: out/reminder.csv")
        .top("exclude: out/results.csv")
        .top("where: \"{{ accepts_email_marketing == 'yes' }}\"")
        .send(FAST)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_wave_skips_those_who_paid_and_those_opted_out() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    day_one(&env).await;
    env.yaml(&reminder_wave());

    let plan = env.run(&["run", "campaign.yaml", "--dry-run"]);
    plan.assert_exit(0);
    plan.stderr_has(&[
        "plan: 10 rows: 4 new, 0 to retry, 0 already created, 0 changed since created, 0 invalid, \
         6 skipped: 5 excluded (paid in test-run), 1 where: {{ accepts_email_marketing == 'yes' }} is false",
    ]);
    assert_eq!(
        plan.stdout.lines().count(),
        4,
        "only the rows to send are printed"
    );

    let created = server.stats().created;
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    out.stderr_has(&["6 skipped"]);
    assert_eq!(server.stats().created, created + 4);
    let rows = crate::common::ledger::read(&env.path().join("out/reminder.csv"));
    assert_eq!(rows.len(), 10);
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        let (status, error) = if PAID.contains(&n) {
            ("skipped", "excluded (paid in test-run)")
        } else if n == 10 {
            (
                "skipped",
                "where: {{ accepts_email_marketing == 'yes' }} is false",
            )
        } else {
            ("created", "")
        };
        assert_eq!(
            (row["status"].as_str(), row["error"].as_str()),
            (status, error),
            "row {n}"
        );
        assert_eq!(
            row["checkout_id"].is_empty(),
            status == "skipped",
            "row {n}"
        );
    }

    // Neither kind is a problem for `check`, and a re-run sends nothing more.
    let check = env.run(&["check", "campaign.yaml"]);
    check.assert_exit(0);
    check.has(&["10 rows, 4 valid, 0 invalid, 6 skipped"]);
    let posts = server.stats().posts;
    env.send(&["--quiet"]).await.assert_exit(0);
    assert_eq!(server.stats().posts, posts);

    // The report counts them as skipped.
    let report = env.run(&["report", "campaign.yaml", "--out", "reminder.html"]);
    report.assert_exit(0);
    let page = std::fs::read_to_string(env.path().join("reminder.html")).unwrap();
    assert!(page.contains(r#"data-n="outcome:skipped">6<"#), "{page}");
}

#[test]
fn a_missing_earlier_output_stops_the_wave_before_anything_is_sent() {
    let env = TestEnv::new();
    env.campaign(
        &reminder_wave(),
        "email,accepts_email_marketing\na@example.com,yes\n",
    );
    let out = env.run(&["check", "campaign.yaml"]);
    out.assert_exit(2);
    out.has(&["out/results.csv", "cannot read this earlier output"]);
}

/// Creem refused one row (400); after the fix, `--reissue failed-permanently` sends that row
/// alone, under `<request_id>-r1`, and leaves the created rows as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_creem_refused_are_reissued_under_a_new_request_id() {
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let mock = MockServer::start().await;
    let refuse = Mock::given(method("POST"))
        .and(path("/v1/checkouts"))
        .and(body_string_contains("user2@example.com"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "statusCode": 400, "message": ["discount_code is not valid"], "error": "Bad Request"
        })))
        .named("refused");
    let create = || {
        Mock::given(method("POST"))
            .and(path("/v1/checkouts"))
            .respond_with(crate::common::http::checkout_for_request)
    };
    mock.register(refuse).await;
    mock.register(create()).await;
    let env = TestEnv::at(mock.uri());
    env.send_campaign(3, FAST);
    env.send(&["--quiet"]).await.assert_exit(1);
    let before = env.ledger();
    assert_eq!(before[1]["status"], "failed");
    assert_eq!(before[1]["http_status"], "400");

    // The fix is made at Creem's end: the row is accepted now.
    mock.reset().await;
    mock.register(create()).await;
    let out = env
        .send(&["--reissue", "failed-permanently", "--quiet"])
        .await;
    out.assert_exit(0);
    out.stderr_has(&["re-issue (failed-permanently): 1 row(s) chosen, 1 new checkout(s) created"]);
    let posts: Vec<serde_json::Value> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posts.len(), 1, "only the refused row is sent");
    let after = env.ledger();
    let (old, new) = (&before[1], &after[1]);
    assert_eq!(new["request_id"], format!("{}-r1", old["request_id"]));
    assert_eq!(posts[0]["request_id"], new["request_id"].as_str());
    assert_eq!(new["status"], "created");
    assert_eq!(new["reissues"], "1");
    assert_eq!(
        new["previous_checkouts"], "",
        "the refused row had no checkout"
    );
    assert!(
        new["error"].contains("re-issued after HTTP 400"),
        "{}",
        new["error"]
    );
    assert_eq!((&after[0], &after[2]), (&before[0], &before[2]));
}
