//! Issue 5, "survive the real world": `kill -9`, Ctrl-C and SIGTERM, edited campaigns, two
//! runs at once, foreign ledgers, `--limit`, formula cells and damaged ledgers, each against
//! the real binary and the in-process sandbox (or wiremock), counting at the server how many
//! checkouts each request_id got.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use creem_batch::sandbox::{Latency, Sandbox, SandboxConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::common::{signal, wait_until, Campaign, Run, TestEnv, FAST};

/// Requests in flight at once in the slow runs; the most rows a kill may leave unrecorded.
const CONCURRENCY: usize = 4;
/// Slow enough that a run is still going when the test acts, fast enough to finish soon.
const IN_FLIGHT: &str = "  rate: 100/s\n  burst: 1\n  concurrency: 4\n";

/// A sandbox that takes 5 to 20 ms to answer, so requests are really in flight.
async fn slow_sandbox() -> TestEnv {
    TestEnv::sandbox_with(SandboxConfig {
        latency: Some(Latency::Uniform {
            min: Duration::from_millis(5),
            max: Duration::from_millis(20),
        }),
        ..SandboxConfig::default()
    })
    .await
}

fn created_count(server: &Sandbox) -> u64 {
    server.stats().created
}

/// Asserts every row of the ledger is `created`, in input order, and every request_id was
/// created exactly `times` at the server.
#[track_caller]
fn assert_all_created_once(env: &TestEnv, rows: usize) {
    let ledger = env.ledger();
    assert_eq!(ledger.len(), rows);
    for (i, row) in ledger.iter().enumerate() {
        assert_eq!(row["row"], (i + 1).to_string(), "input order");
        assert_eq!(row["status"], "created", "{row:?}");
    }
    let per_id = env.server().stats().created_per_request_id;
    assert_eq!(per_id.len(), rows);
    assert!(per_id.values().all(|&n| n == 1), "{per_id:?}");
}

// ---------------------------------------------------------------------------------------
// kill -9

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_three_points_then_rerun_creates_each_row_once_but_the_in_flight() {
    const ROWS: usize = 150;
    let env = slow_sandbox().await;
    let server = env.server();
    env.send_campaign(ROWS, IN_FLIGHT);
    let mut unrecorded_at_kills: HashSet<String> = HashSet::new();
    // Early, middle, near the end; each kill hits a run that resumed the previous one.
    for kill_at in [10, 75, 135] {
        let mut child = env.spawn_send(&["--quiet"]);
        wait_until(&format!("{kill_at} checkouts exist"), || {
            created_count(server) >= kill_at
        })
        .await;
        child.kill().await.expect("kill -9");
        let at_server = server.stats().created_per_request_id;
        assert!(at_server.len() < ROWS, "killed before the end");

        let crashed = env.crashed_ledger();
        if let Some(tail) = &crashed.torn_tail {
            eprintln!("torn tail after kill at {kill_at}: {tail:?}");
        }
        let recorded = crashed.created();
        for id in &recorded {
            assert!(at_server.contains_key(id), "{id} recorded but not created");
        }
        let unrecorded: Vec<&String> = at_server
            .keys()
            .filter(|id| !recorded.contains(*id))
            .collect();
        assert!(
            unrecorded.len() <= CONCURRENCY,
            "kill at {kill_at}: {} rows created but not in the ledger (at most {CONCURRENCY} may be in flight): {unrecorded:?}",
            unrecorded.len()
        );
        unrecorded_at_kills.extend(unrecorded.into_iter().cloned());
    }

    let last = env.send(&["--quiet"]).await;
    last.assert_exit(0);
    let rows = env.ledger();
    assert_eq!(rows.len(), ROWS);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["row"], (i + 1).to_string(), "input order");
        assert_eq!(row["status"], "created", "{row:?}");
    }
    let per_id = server.stats().created_per_request_id;
    assert_eq!(per_id.len(), ROWS, "every request_id was created");
    let twice: HashSet<&String> = per_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(per_id.values().all(|&n| n <= 2), "{per_id:?}");
    for id in &unrecorded_at_kills {
        assert_eq!(
            per_id[id], 2,
            "{id} was unrecorded at a kill, so sent again"
        );
    }
    // Besides those, only a request the server finished just after the kill (in flight too).
    assert!(
        twice.len() <= 3 * CONCURRENCY,
        "{} duplicates after 3 kills: {twice:?}",
        twice.len()
    );
    // Each kill happened with the run under way, the lock is gone after the clean end.
    assert!(!env.path().join("out/results.csv.lock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_record_is_cut_off_and_the_run_goes_on() {
    let env = TestEnv::sandbox().await;
    env.send_campaign(10, FAST);
    let out = env.send(&["--quiet", "--limit", "5"]).await;
    out.assert_exit(0);
    // As a crash in the middle of a write leaves it: the last record (row 10, pending) cut.
    let path = env.ledger_path();
    let bytes = std::fs::read(&path).unwrap();
    let last_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    std::fs::write(&path, &bytes[..last_start + 30]).unwrap();
    let crashed = env.crashed_ledger();
    assert_eq!(crashed.rows.len(), 9);
    assert!(crashed.torn_tail.is_some());

    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    out.has(&["out/results.csv:11: removed an incomplete last record"]);
    assert_all_created_once(&env, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_last_record_without_a_final_newline_is_kept_not_resent() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    env.send_campaign(5, FAST);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    // As an editor may save it: the same records, no newline after the last one.
    let path = env.ledger_path();
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.pop(), Some(b'\n'));
    std::fs::write(&path, &bytes).unwrap();

    let dry = env.run(&["run", "--dry-run", "campaign.yaml"]);
    dry.assert_exit(0)
        .stderr_has(&["0 new", "5 already created"]);
    assert_eq!(dry.stdout, "");
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    out.has(&["5 already created"]);
    assert_eq!(server.stats().posts, 5, "the last row was not sent again");
    assert_all_created_once(&env, 5);
}

// ---------------------------------------------------------------------------------------
// Ctrl-C and SIGTERM

/// One SIGINT or SIGTERM mid-run: in-flight requests finish and are recorded, every other
/// row is `pending`, exit 130 with the resume command, and that command finishes the job.
async fn interrupted_once(sig: i32) {
    const ROWS: usize = 150;
    let env = slow_sandbox().await;
    let server = env.server();
    env.send_campaign(ROWS, IN_FLIGHT);
    let child = env.spawn_send(&["--quiet"]);
    wait_until("20 checkouts exist", || created_count(server) >= 20).await;
    signal(&child, sig);
    let out = Run::from_output(child.wait_with_output().await.unwrap());
    out.assert_exit(130);
    let stderr = out.stderr.clone();
    assert!(
        stderr.contains("interrupted: finishing the requests in flight"),
        "{stderr}"
    );

    let rows = env.ledger();
    assert_eq!(rows.len(), ROWS, "every input row is in the ledger");
    let mut created = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["row"], (i + 1).to_string(), "input order");
        match row["status"].as_str() {
            "created" => {
                created.insert(row["request_id"].clone());
            }
            "pending" => assert_eq!(row["checkout_id"], "", "{row:?}"),
            other => panic!("status {other}: {row:?}"),
        }
    }
    assert!(created.len() < ROWS, "stopped before the end");
    // Nothing created at the server is missing from the ledger: in-flight rows were awaited.
    let at_server = server.stats().created_per_request_id;
    assert_eq!(
        at_server.keys().cloned().collect::<HashSet<_>>(),
        created,
        "ledger and server agree"
    );

    // The printed resume command, run as printed, finishes the batch without duplicates.
    let resume = stderr
        .lines()
        .find_map(|l| {
            l.split_once("to send the rest: ")
                .map(|(_, c)| c.to_owned())
        })
        .unwrap_or_else(|| panic!("no resume command:\n{stderr}"));
    assert_eq!(
        resume,
        format!(
            "creem-batch run campaign.yaml --base-url {}",
            env.base_url()
        )
    );
    let mut words: Vec<&str> = resume.split_whitespace().skip(1).collect();
    words.push("--quiet");
    let again = env.run_async(&words).await;
    again.assert_exit(0);
    assert_all_created_once(&env, ROWS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_finishes_in_flight_writes_everything_and_says_how_to_resume() {
    interrupted_once(libc::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_handled_like_the_first_ctrl_c() {
    interrupted_once(libc::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once_and_the_ledger_still_parses() {
    // Answers take 2 s: after the first Ctrl-C, a clean stop would wait that long.
    let env = TestEnv::sandbox_with(SandboxConfig {
        latency: Some(Latency::Fixed(Duration::from_secs(2))),
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    env.send_campaign(40, "  rate: unlimited\n  concurrency: 2\n");
    let mut child = env.spawn_send(&["--quiet"]);
    wait_until("2 created and 2 more in flight", || {
        let stats = server.stats();
        stats.created >= 2 && stats.posts >= 4
    })
    .await;
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    signal(&child, libc::SIGINT);
    // Signals do not queue: wait until the first was handled before sending the second.
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).await.unwrap();
        assert!(
            n > 0,
            "stderr ended before the first SIGINT was handled:\n{seen}"
        );
        seen.push_str(&line);
        if line.contains("interrupted:") {
            break;
        }
    }
    signal(&child, libc::SIGINT);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .unwrap();
    let stats = server.stats();
    stderr.read_to_string(&mut seen).await.unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("quitting at once"), "{seen}");
    assert!(
        stats.posts > stats.created,
        "it did not wait for the requests in flight: {stats:?}"
    );
    let crashed = env.crashed_ledger();
    assert!(
        crashed.created().len() >= 2,
        "rows finished so far are kept"
    );
}

// ---------------------------------------------------------------------------------------
// Edited campaign

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_discount_code_is_reported_and_only_recreated_on_request() {
    const ROWS: usize = 12;
    let env = TestEnv::sandbox().await;
    let server = env.server();
    let yaml = env.send_campaign(ROWS, FAST);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let before = env.ledger();
    let edited = std::fs::read_to_string(&yaml)
        .unwrap()
        .replace("discount_code: SPRING", "discount_code: SUMMER");
    std::fs::write(&yaml, edited).unwrap();

    let dry = env.run(&["run", "--dry-run", "campaign.yaml"]);
    dry.assert_exit(0).stderr_has(&[
        "12 changed since created",
        "12 created row(s) have a different body now",
        "row 1: changed discount_code",
    ]);
    assert_eq!(dry.stdout, "", "nothing would be sent");

    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0).has(&[
        "12 created row(s) have a different body now",
        "row 3: changed discount_code",
        "(12 of them changed since)",
    ]);
    assert_eq!(server.stats().posts, ROWS as u64, "nothing sent");
    let kept = env.ledger();
    for (old, now) in before.iter().zip(&kept) {
        assert_eq!(old["checkout_id"], now["checkout_id"]);
        assert_eq!(old["body_sha256"], now["body_sha256"]);
    }

    let dry = env.run(&["run", "--dry-run", "--recreate-changed", "campaign.yaml"]);
    assert_eq!(dry.json_lines().len(), ROWS);
    assert!(dry
        .json_lines()
        .iter()
        .all(|l| l["body"]["discount_code"] == "SUMMER"));

    let out = env.send(&["--quiet", "--recreate-changed"]).await;
    out.assert_exit(0);
    let per_id = server.stats().created_per_request_id;
    assert_eq!(per_id.len(), ROWS);
    assert!(per_id.values().all(|&n| n == 2), "{per_id:?}");
    let recreated = env.ledger();
    for (old, now) in before.iter().zip(&recreated) {
        assert_eq!(now["status"], "created");
        assert_eq!(old["request_id"], now["request_id"]);
        assert!(now["checkout_id"].starts_with("ch_"));
        assert_ne!(old["checkout_id"], now["checkout_id"], "the new checkout");
        assert_ne!(old["body_sha256"], now["body_sha256"]);
        assert!(now["body"].contains("SUMMER"), "{now:?}");
        assert!(
            now["error"].contains(&format!("previous checkout {}", old["checkout_id"])),
            "{now:?}"
        );
    }
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    out.has(&["12 already created"]);
    assert!(!out.text().contains("changed"), "{}", out.text());
    assert_eq!(server.stats().posts, 2 * ROWS as u64);
}

/// A re-run recognises an unchanged row by its record's `input_hash` (a digest of the
/// campaign's templates and the row's cells) without rendering it; an edited cell is still
/// caught, by rendering that row and comparing bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_customer_row_is_reported_and_unchanged_rows_are_not_rendered_again() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    env.send_campaign(4, FAST);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let before = env.ledger();
    for record in &before {
        let hash = &record["input_hash"];
        assert!(
            hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{record:?}"
        );
    }

    // Row 2's name is edited; row 4's record is made to claim another body than its own.
    let csv_path = env.path().join("customers.csv");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    std::fs::write(&csv_path, csv.replace("User 2,", "Second User,")).unwrap();
    let path = env.ledger_path();
    let text_before = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text_before.replace(&before[3]["body_sha256"], &"0".repeat(64)),
    )
    .unwrap();

    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0).has(&[
        "1 created row(s) have a different body now",
        "row 2: changed metadata.name",
        "4 already created (1 of them changed since)",
    ]);
    // Row 4 was not rendered: its inputs are unchanged, so its record stands as it is.
    assert!(!out.text().contains("row 4"), "{}", out.text());
    assert_eq!(server.stats().posts, 4, "nothing sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_recreate_keeps_the_old_checkouts_of_rows_not_yet_recreated() {
    const ROWS: usize = 150;
    let env = slow_sandbox().await;
    let server = env.server();
    let yaml = env.send_campaign(ROWS, IN_FLIGHT);
    let out = env.send(&["--quiet", "--rate", "unlimited"]).await;
    out.assert_exit(0);
    let before = env.ledger();
    let edited = std::fs::read_to_string(&yaml)
        .unwrap()
        .replace("discount_code: SPRING", "discount_code: SUMMER");
    std::fs::write(&yaml, edited).unwrap();

    let child = env.spawn_send(&["--quiet", "--recreate-changed"]);
    wait_until("10 recreated", || created_count(server) >= ROWS as u64 + 10).await;
    signal(&child, libc::SIGINT);
    let out = Run::from_output(child.wait_with_output().await.unwrap());
    out.assert_exit(130);
    assert!(
        out.text().contains("--recreate-changed"),
        "the resume command recreates too\n{}",
        out.text()
    );
    let now = env.ledger();
    let mut recreated = 0;
    for (old, now) in before.iter().zip(&now) {
        assert_eq!(now["status"], "created", "never pending: {now:?}");
        if now["checkout_id"] != old["checkout_id"] {
            recreated += 1;
        } else {
            assert_eq!(
                now["body_sha256"], old["body_sha256"],
                "the old record, whole"
            );
        }
    }
    assert!((10..ROWS).contains(&recreated), "{recreated}");
    // A plain re-run still sees the rest as changed (not as new rows to send).
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let changed = format!("({} of them changed since)", ROWS - recreated);
    assert!(out.text().contains(&changed), "{changed}\n{}", out.text());
    assert_eq!(server.stats().created, (ROWS + recreated) as u64);
}

// ---------------------------------------------------------------------------------------
// Two runs at once

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_output_is_refused_and_a_dead_runs_lock_is_taken_over() {
    const ROWS: usize = 150;
    let env = slow_sandbox().await;
    let server = env.server();
    env.send_campaign(ROWS, IN_FLIGHT);
    let lock = env.path().join("out/results.csv.lock");

    let first = env.spawn_send(&["--quiet"]);
    wait_until("the first run sends", || created_count(server) >= 1).await;
    assert!(lock.exists());
    let second = env.send(&["--quiet"]).await;
    second.assert_exit(2);
    let expected = format!(
        "out/results.csv is in use by another creem-batch run (pid {})",
        first.id().unwrap()
    );
    assert!(
        second.text().contains(&expected),
        "{expected}\n{}",
        second.text()
    );
    second.has(&["nothing was sent"]);
    signal(&first, libc::SIGINT);
    let out = Run::from_output(first.wait_with_output().await.unwrap());
    out.assert_exit(130);
    assert!(!lock.exists(), "the lock file goes with the run");

    // A run killed with -9 leaves its lock file behind, but the OS released its lock.
    let mut killed = env.spawn_send(&["--quiet"]);
    let pid = killed.id().unwrap();
    let so_far = created_count(server);
    wait_until("the next run sends", || created_count(server) > so_far).await;
    killed.kill().await.unwrap();
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), pid.to_string());
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    assert!(!lock.exists());
    let rows = env.ledger();
    assert!(rows.iter().all(|r| r["status"] == "created"));
    let per_id = server.stats().created_per_request_id;
    assert_eq!(per_id.len(), ROWS);
    assert!(per_id.values().filter(|&&n| n > 1).count() <= CONCURRENCY);
}

// ---------------------------------------------------------------------------------------
// Foreign ledger and --limit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_pointing_at_another_campaigns_ledger_is_refused_unless_forced() {
    let first = TestEnv::sandbox().await;
    first.send_campaign(3, FAST);
    let out = first.send(&["--quiet"]).await;
    out.assert_exit(0);
    let theirs = first.ledger_path();
    let bytes = std::fs::read(&theirs).unwrap();

    let second = TestEnv::sandbox().await;
    let other = second.server();
    let yaml = second.send_campaign(2, FAST);
    let renamed = std::fs::read_to_string(&yaml)
        .unwrap()
        .replace("campaign: test-run", "campaign: autumn");
    std::fs::write(&yaml, renamed).unwrap();
    let out_flag = theirs.display().to_string();
    let out = second.send(&["--quiet", "--out", &out_flag]).await;
    out.assert_exit(2).has(&[
        "holds the ledger of campaign `test-run`, not `autumn`",
        "--force",
        "nothing was sent",
    ]);
    assert_eq!(std::fs::read(&theirs).unwrap(), bytes, "untouched");
    assert_eq!(other.stats().posts, 0);

    let out = second
        .send(&["--quiet", "--out", &out_flag, "--force"])
        .await;
    out.assert_exit(0);
    assert_eq!(other.stats().created, 2);
    out.has(&["no longer in the CSV"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_honours_limit_like_the_run() {
    let env = TestEnv::sandbox().await;
    env.send_campaign(10, FAST);
    let dry = |extra: &[&str]| {
        let mut args = vec!["run", "--dry-run", "campaign.yaml"];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let plan = dry(&["--limit", "3"]);
    plan.assert_exit(0).stderr_has(&[
        "10 new",
        "--limit 3: 3 row(s) would be sent now, 7 left pending",
    ]);
    assert_eq!(plan.sent_rows(), [1, 2, 3]);

    let out = env.send(&["--quiet", "--limit", "3"]).await;
    out.assert_exit(0);
    let created: Vec<String> = env
        .ledger()
        .iter()
        .filter(|r| r["status"] == "created")
        .map(|r| r["row"].clone())
        .collect();
    assert_eq!(created, ["1", "2", "3"], "the rows the dry run showed");

    let plan = dry(&["--limit", "3"]);
    plan.assert_exit(0)
        .stderr_has(&["3 already created", "7 to retry", "4 left pending"]);
    assert_eq!(plan.sent_rows(), [4, 5, 6]);
    assert_eq!(
        dry(&[]).sent_rows(),
        [4, 5, 6, 7, 8, 9, 10],
        "no --limit: all"
    );
}

// ---------------------------------------------------------------------------------------
// Formula cells

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formula_cells_are_neutralised_in_the_ledger_and_real_at_the_api() {
    let mock = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "id": "@ch_1", "status": "+pending", "mode": "test",
                "checkout_url": "=HYPERLINK(\"https://evil.example\",\"pay\")",
            })),
        )
        .mount(&mock)
        .await;
    let env = TestEnv::at(mock.uri());
    let name = "=HYPERLINK(\"https://evil.example\",\"click\")";
    let csv = format!(
        "email,name,order_id\n\
         a@example.com,\"{}\",=1+1\n\
         b@example.com,+33 6 12,-42\n\
         c@example.com,@SUM(A1),@home\n\
         d@example.com,'quoted,'=x\n",
        name.replace('"', "\"\"")
    );
    let yaml = Campaign::new()
        .name("test-run")
        .product("prod_TEST")
        .top("output: out/results.csv\nrequest_id: \"{{ order_id }}\"")
        .checkout("metadata:\n  name: \"{{ name }}\"")
        .send("  rate: unlimited\n")
        .build();
    env.campaign(&yaml, csv);
    let out = env.send(&["--quiet"]).await;
    // A formula is no http(s) link, and one id for every row is no checkout per row: the
    // rows are recorded without a link, and the run says so (exit 1).
    out.assert_exit(1);

    // The API got the real values.
    let received: HashMap<String, serde_json::Value> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method == wiremock::http::Method::POST) // not the pre-flight's GETs
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (body["request_id"].as_str().unwrap().to_owned(), body)
        })
        .collect();
    assert_eq!(received.len(), 4);
    assert_eq!(received["=1+1"]["metadata"]["name"], name);
    assert_eq!(received["-42"]["metadata"]["name"], "+33 6 12");
    assert_eq!(received["@home"]["metadata"]["name"], "@SUM(A1)");
    assert_eq!(received["'=x"]["metadata"]["name"], "'quoted");

    // The ledger got them defused, whatever their source.
    let rows = env.ledger();
    let ids: Vec<&str> = rows.iter().map(|r| r["request_id"].as_str()).collect();
    assert_eq!(ids, ["'=1+1", "'-42", "'@home", "''=x"]);
    for row in &rows {
        assert_eq!(row["checkout_id"], "'@ch_1");
        assert_eq!(row["checkout_url"], "", "not a usable link");
        assert!(row["error"].contains("not a usable checkout"), "{row:?}");
        for (column, cell) in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "{column} = {cell:?} would run as a formula"
            );
        }
    }
    assert!(
        rows[0]["body"].contains("\"request_id\":\"=1+1\""),
        "the exact body sent"
    );

    // Read back exactly: a re-run recognises every row and sends nothing.
    let before = std::fs::read(env.ledger_path()).unwrap();
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    out.has(&["4 already created"]);
    let posts = mock.received_requests().await.unwrap();
    let posts = posts
        .iter()
        .filter(|r| r.method == wiremock::http::Method::POST);
    assert_eq!(posts.count(), 4);
    assert_eq!(
        std::fs::read(env.ledger_path()).unwrap(),
        before,
        "same bytes"
    );
}

// ---------------------------------------------------------------------------------------
// Damaged ledgers

/// A finished 6-row campaign whose ledger is then damaged by `damage`; both `run` and
/// `run --dry-run` must refuse with exit 2 and an error naming the line, send nothing and
/// leave the file byte for byte as it was.
async fn refuses_damaged(damage: impl FnOnce(&str) -> String, expected: &[&str]) {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    env.send_campaign(6, FAST);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let path = env.ledger_path();
    let damaged = damage(&std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &damaged).unwrap();

    let out = env.send(&["--quiet"]).await;
    out.assert_exit(2);
    let dry = env.run(&["run", "--dry-run", "campaign.yaml"]);
    dry.assert_exit(2);
    for output in [&out, &dry] {
        for part in expected
            .iter()
            .chain(&["the output file was left as it is"])
        {
            output.has(&[part]);
        }
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        damaged,
        "unchanged"
    );
    assert_eq!(server.stats().posts, 6, "nothing sent");
}

fn replace_line(text: &str, number: usize, with: impl Fn(&str) -> String) -> String {
    text.split_inclusive('\n')
        .enumerate()
        .map(|(i, line)| {
            if i + 1 == number {
                let end = if line.ends_with('\n') { "\n" } else { "" };
                format!("{}{end}", with(line.trim_end_matches('\n')))
            } else {
                line.to_owned()
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_missing_columns_in_the_middle_is_named() {
    refuses_damaged(
        |t| {
            replace_line(t, 4, |l| {
                l.splitn(5, ',').take(4).collect::<Vec<_>>().join(",")
            })
        },
        &[&format!(
            "out/results.csv:4: 4 fields where the header has {}",
            creem_batch::ledger::COLUMNS.len()
        )],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_typed_status_in_the_middle_is_named() {
    refuses_damaged(
        |t| replace_line(t, 3, |l| l.replacen(",created,", ",sent,", 1)),
        &["out/results.csv:3: `status` is `sent`"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclosed_quote_before_the_last_line_is_not_taken_for_a_torn_tail() {
    // The quote closing line 6's body is gone and the file has no final newline: the last
    // "record" runs from line 6 to the end. Dropping it as torn would send rows 5 and 6 again.
    refuses_damaged(
        |t| {
            let t = t.strip_suffix('\n').unwrap();
            replace_line(t, 6, |l| {
                // The body's closing quote is the line's last (cells after it are plain).
                let mut l = l.to_owned();
                l.remove(l.rfind('"').unwrap());
                l
            })
        },
        &["out/results.csv:6:"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_without_a_required_column_is_named() {
    refuses_damaged(
        |t| t.replacen("body_sha256", "hash", 1),
        &["out/results.csv:1: this is not a creem-batch output: no `body_sha256` column"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_rearranged_in_a_spreadsheet_are_restored_with_a_backup() {
    let env = TestEnv::sandbox().await;
    env.send_campaign(5, FAST);
    let out = env.send(&["--quiet", "--limit", "3"]).await;
    out.assert_exit(0);
    let before = env.ledger();
    // Columns in reverse order, `email` deleted, a `notes` column added, CRLF line ends.
    let path = env.ledger_path();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let mut header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    header.reverse();
    header.retain(|h| h != "email");
    header.insert(0, "notes".to_owned());
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for row in &before {
        let cells: Vec<&str> = header
            .iter()
            .map(|h| {
                if h == "notes" {
                    "called them"
                } else {
                    row[h].as_str()
                }
            })
            .collect();
        writer.write_record(&cells).unwrap();
    }
    let edited = writer.into_inner().unwrap();
    std::fs::write(&path, &edited).unwrap();

    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    out.has(&["the original is kept as"]);
    let backups: Vec<_> = std::fs::read_dir(env.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bak"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read(&backups[0]).unwrap(), edited);
    let after = env.ledger();
    assert_eq!(after.len(), 5);
    for (old, now) in before.iter().zip(&after).take(3) {
        assert_eq!(old["checkout_id"], now["checkout_id"], "kept, not re-sent");
    }
    assert!(after.iter().all(|r| r["status"] == "created"));
    assert_all_created_once(&env, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_inserted_at_the_top_then_a_kill_do_not_resend_the_moved_rows() {
    let env = slow_sandbox().await;
    let server = env.server();
    env.send_campaign(5, IN_FLIGHT);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    // Two customers inserted above the others, many appended below: every old row moves.
    let csv_path = env.path().join("customers.csv");
    let old = std::fs::read_to_string(&csv_path).unwrap();
    let (header, old_rows) = old.split_once('\n').unwrap();
    let mut csv =
        format!("{header}\nnew1@example.com,New 1,1\nnew2@example.com,New 2,1\n{old_rows}");
    for i in 1..=100 {
        csv.push_str(&format!("later{i}@example.com,Later {i},1\n"));
    }
    std::fs::write(&csv_path, csv).unwrap();
    // Killed once the new rows 1 and 2 (reusing the old rows' numbers) are in the ledger.
    let mut child = env.spawn_send(&["--quiet"]);
    wait_until("the inserted rows and a few later ones exist", || {
        created_count(server) >= 5 + 2 + 10
    })
    .await;
    child.kill().await.unwrap();
    assert!(env.crashed_ledger().created().len() >= 7);

    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    assert!(
        !out.text().contains("no longer in the CSV"),
        "{}",
        out.text()
    );
    let rows = env.ledger();
    assert_eq!(rows.len(), 107);
    assert!(rows.iter().all(|r| r["status"] == "created"));
    let per_id = server.stats().created_per_request_id;
    assert_eq!(per_id.len(), 107);
    for row in &rows[2..7] {
        assert_eq!(
            per_id[&row["request_id"]], 1,
            "moved row sent again: {row:?}"
        );
    }
    assert!(per_id.values().filter(|&&n| n > 1).count() <= CONCURRENCY);
}
