//! Issue 20 §2-§4 in `run`: one ledger holds one target's checkouts (run, status and
//! reconcile refuse another's), `run --sandbox` writes its own file, the pre-flight stops a
//! run before its first POST (or warns and goes on), and the sandbox is as strict as Creem.

use creem_batch::sandbox::{Discount, MerchantConfig};

use crate::common::{test_merchant, Campaign, TestEnv, CAMPAIGN_FILE, FAST, KEY, OUTPUT};

/// A sandbox ledger of 3 created rows at [`OUTPUT`].
async fn sandbox_ledger(env: &TestEnv) {
    env.send_campaign(3, FAST);
    env.send(&["--quiet"]).await.assert_exit(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_records_its_target_in_a_column() {
    let env = TestEnv::sandbox().await;
    sandbox_ledger(&env).await;
    let rows = env.ledger();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["target"] == "sandbox"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_to_another_target_is_refused_naming_both_and_sends_nothing() {
    let env = TestEnv::sandbox().await;
    sandbox_ledger(&env).await;
    let before = std::fs::read(env.ledger_path()).unwrap();
    // The test host is refused before any connection is made: no network here.
    let out = env.run_async(&["run", CAMPAIGN_FILE, "--quiet"]).await;
    out.assert_exit(2);
    out.has(&[
        "holds checkouts of the sandbox (sandbox), not of test host test-api.creem.io (test:test-api.creem.io)",
        "give --out a new file",
        "nothing was sent",
    ]);
    assert_eq!(std::fs::read(env.ledger_path()).unwrap(), before);
    assert_eq!(env.server().stats().posts, 3);
    let live = env
        .run_async_with_key(
            Some("creem_LIVEKEY"),
            &["run", CAMPAIGN_FILE, "--live", "--yes"],
        )
        .await;
    live.assert_exit(2);
    live.has(&["not of LIVE api.creem.io (live:api.creem.io)"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_reconcile_refuse_a_ledger_of_another_target() {
    let env = TestEnv::sandbox().await;
    sandbox_ledger(&env).await;
    let before = std::fs::read(env.ledger_path()).unwrap();
    let out = env.run_async(&["status", OUTPUT, "-q"]).await;
    out.assert_exit(2);
    out.has(&[
        "holds checkouts of the sandbox (sandbox), not of test host test-api.creem.io",
        "nothing was fetched",
    ]);

    let row = &env.ledger()[0];
    let event = serde_json::json!({
        "id": "evt_1", "eventType": "checkout.completed",
        "object": {"id": row["checkout_id"], "object": "checkout", "mode": "prod",
                   "request_id": row["request_id"], "status": "completed"},
    });
    std::fs::write(env.path().join("events.jsonl"), format!("{event}\n")).unwrap();
    let out = env
        .run_async(&["reconcile", OUTPUT, "--events", "events.jsonl"])
        .await;
    out.assert_exit(2);
    out.has(&[
        "events.jsonl:1 is a live event (mode `prod`)",
        "holds checkouts of the sandbox (sandbox)",
        "nothing was changed",
    ]);
    assert_eq!(std::fs::read(env.ledger_path()).unwrap(), before);
}

/// The ledger at `path` without its `target` column, as versions before it wrote it.
fn without_target_column(path: &std::path::Path) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().clone();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| &header[i] != "target")
        .collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(keep.iter().map(|&i| &header[i])).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        out.write_record(keep.iter().map(|&i| &record[i])).unwrap();
    }
    std::fs::write(path, out.into_inner().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_ledger_with_loopback_links_counts_as_the_sandboxs() {
    let env = TestEnv::sandbox().await;
    sandbox_ledger(&env).await;
    without_target_column(&env.ledger_path());
    assert!(env.ledger()[0]["checkout_url"].starts_with("http://127.0.0.1:"));

    let out = env.run_async(&["run", CAMPAIGN_FILE, "--quiet"]).await;
    out.assert_exit(2);
    out.has(&["holds checkouts of the sandbox (sandbox), not of test host"]);

    // Against a sandbox it is the same target: nothing to send again.
    let out = env.send(&[]).await;
    out.assert_exit(0);
    out.has(&["3 already created"]);
    assert_eq!(env.server().stats().posts, 3);
}

/// `run --sandbox` rehearses the user's own campaign: the in-process sandbox knows whatever
/// product and discount code it names (the pre-flight passes), and stays as strict as Creem
/// about the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sandbox_knows_the_campaigns_own_product_and_codes() {
    let env = TestEnv::new();
    let yaml = Campaign::new()
        .name("own")
        .product("prod_only_in_my_store")
        .checkout("discount_code: MY-OWN-CODE")
        .build();
    env.campaign(&yaml, crate::common::campaign::customers(2));
    let out = env
        .run_async(&["run", CAMPAIGN_FILE, "--sandbox", "--quiet"])
        .await;
    out.assert_exit(0);
    out.has(&["2 created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sandbox_writes_its_own_file_beside_the_real_one() {
    let env = TestEnv::new();
    // The in-process sandbox knows the example campaigns' catalogue.
    let yaml = Campaign::new()
        .name("rehearsal")
        .product("prod_6tW66i0oZM7w1qXReHJrwg")
        .top(&format!("output: {OUTPUT}"))
        .checkout("discount_code: SPRING2026")
        .build();
    env.campaign(&yaml, crate::common::campaign::customers(3));
    let out = env
        .run_async(&["run", CAMPAIGN_FILE, "--sandbox", "--quiet"])
        .await;
    out.assert_exit(0);
    let sandbox_file = env.path().join("out/results.sandbox.csv");
    assert!(sandbox_file.exists(), "{out}");
    assert!(
        !env.ledger_path().exists(),
        "the real output path stays free"
    );
    let rows = crate::common::ledger::read(&sandbox_file);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["target"] == "sandbox"));

    // `status CAMPAIGN --sandbox` reads that file (a new sandbox knows none of its checkouts).
    let out = env
        .run_async(&["status", CAMPAIGN_FILE, "--sandbox", "-q"])
        .await;
    out.has(&["no checkout could be fetched"]);
}

/// `run --sandbox --reissue expired` does not ask a fresh sandbox (which knows none of the
/// checkouts) which expired: the ledger's statuses decide, as with `--no-refresh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sandbox_reissues_from_the_ledgers_statuses() {
    let env = TestEnv::new();
    let yaml = Campaign::new()
        .name("rehearsal")
        .top(&format!("output: {OUTPUT}"))
        .build();
    env.campaign(&yaml, crate::common::campaign::customers(3));
    let args = ["run", CAMPAIGN_FILE, "--sandbox", "--quiet"];
    env.run_async(&args).await.assert_exit(0);
    // The rehearsal's second link expired (as `status` would have recorded it).
    let file = env.path().join("out/results.sandbox.csv");
    let mut reader = csv::Reader::from_path(&file).unwrap();
    let header = reader.headers().unwrap().clone();
    let column = header.iter().position(|h| h == "checkout_status").unwrap();
    let mut records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut second: Vec<String> = records[1].iter().map(str::to_owned).collect();
    second[column] = "expired".into();
    records[1] = csv::StringRecord::from(second);
    let mut writer = csv::Writer::from_path(&file).unwrap();
    writer.write_record(&header).unwrap();
    for record in &records {
        writer.write_record(record).unwrap();
    }
    writer.flush().unwrap();
    let before = crate::common::ledger::read(&file);

    let out = env
        .run_async(&["run", CAMPAIGN_FILE, "--sandbox", "--reissue", "expired"])
        .await;
    out.assert_exit(0);
    out.stderr_has(&[
        "the ledger's statuses decide (as with --no-refresh)",
        "re-issue (expired): 1 row(s) chosen, 1 new checkout(s) created",
    ]);
    let after = crate::common::ledger::read(&file);
    assert_eq!(
        after[1]["request_id"],
        format!("{}-r1", before[1]["request_id"])
    );
    assert_eq!(after[1]["previous_checkouts"], before[1]["checkout_id"]);
    assert_eq!((&after[0], &after[2]), (&before[0], &before[2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_product_stops_the_run_before_any_post() {
    let env = TestEnv::sandbox().await;
    let yaml = Campaign::sending(FAST).product("prod_typo").build();
    env.campaign(&yaml, crate::common::campaign::customers(3));
    let out = env.send(&[]).await;
    out.assert_exit(2);
    out.has(&[
        "stop: product `prod_typo`: Creem does not know this product (HTTP 404 Not Found: Product not found",
        "(3 rows)",
        "nothing was sent",
    ]);
    let stats = env.server().stats();
    assert_eq!(stats.posts, 0);
    assert!(stats.lookups >= 1);
    assert!(!env.ledger_path().exists(), "no ledger is begun");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_discount_stops_the_run_before_any_post() {
    let mut merchant = test_merchant();
    merchant.discounts = vec!["SPRING,expires=2024-12-31T23:59:59Z"
        .parse::<Discount>()
        .unwrap()];
    let env = TestEnv::sandbox_merchant(merchant).await;
    env.send_campaign(2, FAST);
    let out = env.send(&[]).await;
    out.assert_exit(2);
    out.has(&[
        "stop: discount code `SPRING`: it expired on 2024-12-31T23:59:59Z (expiry_date) (2 rows)",
    ]);
    assert_eq!(env.server().stats().posts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_already_created_are_not_looked_up_again() {
    let env = TestEnv::sandbox().await;
    sandbox_ledger(&env).await;
    let lookups = env.server().stats().lookups;
    assert_eq!(lookups, 2, "one product and one discount code");
    env.send(&["--quiet"]).await.assert_exit(0);
    assert_eq!(
        env.server().stats().lookups,
        lookups,
        "nothing to send: nothing to check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_preflight_warns_and_the_run_goes_on() {
    use wiremock::matchers::{method, path};
    let mock = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .mount(&mock)
        .await;
    wiremock::Mock::given(method("POST"))
        .and(path("/v1/checkouts"))
        .respond_with(crate::common::http::checkout_for_request)
        .expect(2)
        .mount(&mock)
        .await;
    let env = TestEnv::at(mock.uri());
    env.send_campaign(2, "  rate: unlimited\n  max_attempts: 1\n");
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    out.has(&["warning: pre-flight: could not finish (product `prod_TEST`: HTTP 503"]);
    assert_eq!(env.ledger().len(), 2);
}

#[tokio::test]
async fn the_default_sandbox_is_as_strict_as_creem() {
    let sandbox = TestEnv::start_sandbox(Default::default()).await;
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        client
            .post(format!("{}/v1/checkouts", sandbox.base_url()))
            .header("x-api-key", KEY)
            .json(&body)
            .send()
    };
    let answer = post(serde_json::json!({"product_id": "prod_1", "locale": "de-DE"}))
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        error["message"],
        serde_json::json!(["property locale should not exist"])
    );
    let answer = post(serde_json::json!({"product_id": "prod_unknown"}))
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["message"], serde_json::json!(["Product not found"]));
    assert!(MerchantConfig::default().reject_unknown_properties);
}
