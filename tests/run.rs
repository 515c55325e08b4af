//! `run`: sending against the in-process sandbox and wiremock, the ledger, re-runs, retries.

use creem_batch::sandbox::{Latency, SandboxConfig};

use crate::common::{TestEnv, FAST, KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_every_row_once_and_rerun_sends_nothing() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    env.send_campaign(25, FAST);
    let first = env.send(&["--quiet"]).await;
    first.assert_exit(0);
    let rows = env.ledger();
    assert_eq!(rows.len(), 25);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["row"], (i + 1).to_string(), "input order");
        assert_eq!(row["status"], "created");
        assert!(row["checkout_id"].starts_with("ch_"));
        assert_eq!(row["email"], format!("user{}@example.com", i + 1));
        assert_eq!(row["body_sha256"].len(), 64);
    }
    let stats = server.stats();
    assert_eq!(stats.created, 25);
    assert!(stats.created_per_request_id.values().all(|&n| n == 1));

    let again = env.send(&["--quiet"]).await;
    again.assert_exit(0);
    assert_eq!(
        server.stats().posts,
        25,
        "a finished campaign sends nothing"
    );
    again.has(&["25 already created"]);
}

/// The concurrency bound is used and never passed: the sandbox sees more than half of the 32
/// requests in flight at its peak (exactly 32 is usual, not certain on a loaded machine), never
/// more, and the ledger comes out whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_bound_is_used_and_never_passed() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        // Slow answers, so that requests overlap at the server.
        latency: Some(Latency::Uniform {
            min: std::time::Duration::from_millis(5),
            max: std::time::Duration::from_millis(20),
        }),
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    env.send_campaign(100, "  rate: unlimited\n  concurrency: 32\n");
    let out = env.send(&["--quiet", "--json"]).await;
    out.assert_exit(0);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["created"], 100);
    let stats = server.stats();
    assert!(
        (17..=32).contains(&stats.peak_posts_in_flight),
        "requests overlap, and the bound is never passed: {}",
        stats.peak_posts_in_flight
    );
    assert_eq!(stats.created, 100);
    assert!(stats.created_per_request_id.values().all(|&n| n == 1));
    let rows = env.ledger();
    assert_eq!(rows.len(), 100);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["row"], (i + 1).to_string(), "input order");
        assert_eq!(row["status"], "created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_at_the_server_are_the_dry_run_bodies() {
    let mock = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/checkouts"))
        .and(wiremock::matchers::header("x-api-key", KEY))
        // One checkout per row: its id from the request_id.
        .respond_with(crate::common::http::checkout_for_request)
        .expect(3)
        .mount(&mock)
        .await;
    let env = TestEnv::at(mock.uri());
    env.send_campaign(3, FAST);
    let dry = env.run(&["run", "--dry-run", "campaign.yaml"]);
    let expected: Vec<serde_json::Value> = dry
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["body"].clone())
        .collect();
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let mut received: Vec<serde_json::Value> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method == wiremock::http::Method::POST) // not the pre-flight's GETs
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    received.sort_by_key(|b| b["request_id"].as_str().unwrap().to_owned());
    let mut expected = expected;
    expected.sort_by_key(|b| b["request_id"].as_str().unwrap().to_owned());
    assert_eq!(received, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_rows_are_sent_again_on_rerun() {
    let failing = TestEnv::sandbox_with(SandboxConfig {
        reject_all: true,
        ..SandboxConfig::default()
    })
    .await;
    let env = failing;
    env.send_campaign(3, FAST);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(1);
    let rows = env.ledger();
    assert!(rows.iter().all(|r| r["status"] == "failed"));
    assert!(rows[0]["error"].contains("HTTP 400"), "{:?}", rows[0]);
    assert!(rows[0]["error"].contains("trace_id"), "{:?}", rows[0]);
    assert!(
        out.text().contains("creem-batch run campaign.yaml"),
        "resume command"
    );

    let healthy = TestEnv::start_sandbox(SandboxConfig::default()).await;
    let out = env.send_to(&healthy.base_url(), &["--quiet"]).await;
    out.assert_exit(0);
    assert_eq!(healthy.stats().created, 3);
    assert!(env.ledger().iter().all(|r| r["status"] == "created"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_dropped_connections_are_retried() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        fail_rate: 0.3,
        drop_rate: 0.2,
        seed: 7,
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    env.send_campaign(
        20,
        "  rate: unlimited\n  concurrency: 4\n  max_attempts: 10\n",
    );
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let stats = server.stats();
    assert_eq!(stats.created, 20);
    assert!(
        stats.failed + stats.dropped > 0,
        "faults happened: {stats:?}"
    );
    assert!(stats.created_per_request_id.values().all(|&n| n == 1));
    assert!(env.ledger().iter().any(|r| r["attempts"] != "1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_pauses_and_retries() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        max_rps: Some(4),
        retry_after: 1,
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    env.send_campaign(
        10,
        "  rate: unlimited\n  concurrency: 4\n  max_attempts: 10\n",
    );
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let stats = server.stats();
    assert_eq!(stats.created, 10);
    assert!(stats.throttled > 0, "{stats:?}");
    // Retry-After: 1 was honoured: the last POST came at least a second after the first.
    let times = &stats.post_times;
    assert!(
        times.last().unwrap().saturating_sub(times[0]) >= std::time::Duration::from_millis(900)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_key_stops_at_once_with_exit_3() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        key: Some("creem_test_the_right_one".into()),
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    env.send_campaign(50, "  rate: unlimited\n  concurrency: 2\n");
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(3);
    // The pre-flight's first lookup meets the refusal: nothing is sent, no ledger is begun.
    out.has(&[
        "API key was rejected during the pre-flight check",
        "nothing was sent",
    ]);
    assert_eq!(server.stats().posts, 0);
    assert!(!env.ledger_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systematic_bad_request_stops_after_ten() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        reject_all: true,
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    env.send_campaign(200, "  rate: unlimited\n  concurrency: 1\n");
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(3);
    out.has(&["first 10 rows all failed"]);
    let posts = server.stats().posts;
    assert!((10..=12).contains(&posts), "{posts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_holds_from_the_servers_view() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    // Four seconds of sending, so a scheduling hiccup on a busy machine averages out.
    env.send_campaign(81, "  rate: 20/s\n  burst: 1\n  concurrency: 8\n");
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let times = server.stats().post_times;
    assert_eq!(times.len(), 81);
    // The ceiling is the contract: never faster than the rate (a loaded machine may send
    // slower, which is not the limiter's doing, so no lower bound is asserted here; the
    // achieved rate is a benchmark figure, see benches/README.md).
    let span = (*times.last().unwrap() - times[0]).as_secs_f64();
    let achieved = 80.0 / span;
    assert!(achieved <= 22.0, "achieved {achieved}/s");
    // No one-second window holds more than rate + burst.
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|t| **t - *start < std::time::Duration::from_secs(1))
            .count();
        assert!(in_window <= 21, "{in_window} requests within one second");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_never_printed_or_written() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        reject_all: true,
        ..SandboxConfig::default()
    })
    .await;
    env.send_campaign(3, FAST);
    let out = env.send(&[]).await;
    out.lacks(KEY);
    for entry in walk(env.path()) {
        let content = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&content).contains("SECRETKEY123456"),
            "{} holds the key",
            entry.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_sends_a_canary_and_leaves_the_rest_pending() {
    let env = TestEnv::sandbox().await;
    let server = env.server();
    env.send_campaign(10, FAST);
    let out = env.send(&["--limit", "3", "--quiet"]).await;
    out.assert_exit(0);
    out.has(&["7 row(s) left pending by --limit"]);
    let rows = env.ledger();
    assert_eq!(rows.iter().filter(|r| r["status"] == "created").count(), 3);
    assert_eq!(rows.iter().filter(|r| r["status"] == "pending").count(), 7);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    assert_eq!(server.stats().created, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_key_refused_on_live_and_live_key_on_test() {
    let env = TestEnv::at("https://api.creem.io");
    env.send_campaign(2, FAST);
    let out = env.send(&["--live", "--yes"]).await;
    out.assert_exit(2);
    out.has(&["--live needs a live API key"]);
    let live = TestEnv::at("http://127.0.0.1:9").key(Some("creem_LIVEKEY"));
    live.send_campaign(2, FAST);
    let out = live.send(&[]).await;
    out.assert_exit(2);
    out.has(&["not a test key"]);
    out.lacks("LIVEKEY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_of_another_campaign_is_refused() {
    let env = TestEnv::sandbox().await;
    let yaml = env.send_campaign(2, FAST);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let renamed = std::fs::read_to_string(&yaml)
        .unwrap()
        .replace("campaign: test-run", "campaign: other");
    std::fs::write(&yaml, renamed).unwrap();
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(2);
    out.has(&["holds the ledger of campaign `test-run`"]);
    let out = env.send(&["--quiet", "--force"]).await;
    out.assert_exit(0);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_refuses_connections_stops_the_run() {
    // Bind and drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::at(format!("http://127.0.0.1:{port}"));
    env.send_campaign(
        100,
        "  rate: unlimited\n  concurrency: 4\n  max_attempts: 1\n",
    );
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(3);
    out.has(&["could not connect"]);
    let rows = env.ledger();
    assert_eq!(rows.len(), 100);
    assert!(rows.iter().filter(|r| r["status"] == "pending").count() >= 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_that_changes_nothing_leaves_the_file_alone() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::sandbox().await;
    env.send_campaign(5, FAST);
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let path = env.ledger_path();
    let before = std::fs::metadata(&path).unwrap();
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let after = std::fs::metadata(&path).unwrap();
    // Not rewritten (a rewrite renames a new file into place, with a new inode).
    assert_eq!(before.ino(), after.ino());
    assert_eq!(before.len(), after.len());
}

/// `rate: auto` is the default: throttled requests are counted, and the summary and `--json`
/// say what rate was found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_auto_is_the_default_and_says_what_it_found() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        throttle_rate: 0.3,
        retry_after: 0,
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    env.send_campaign(8, "  concurrency: 4\n  max_attempts: 10\n");
    let out = env.send(&["--json", "--max-rate", "50/s"]).await;
    out.assert_exit(0);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let stats = server.stats();
    // The sandbox also counts 429s the pre-flight lookups got; the run counts its sends'.
    let throttled = summary["throttled"].as_u64().unwrap();
    assert!(
        throttled > 0 && throttled <= stats.throttled,
        "{throttled} {stats:?}"
    );
    let found = summary["rate_found"].as_f64().expect("a rate was found");
    assert!(found > 0.0 && found <= 50.0, "{found}");
    out.has(&["rate auto: found", "request(s) throttled (429)"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_rate_finds_nothing_and_a_bad_max_rate_is_refused() {
    let env = TestEnv::sandbox().await;
    env.send_campaign(2, FAST);
    let out = env.send(&["--quiet", "--json"]).await;
    out.assert_exit(0);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["rate_found"], serde_json::Value::Null);
    assert_eq!(summary["throttled"], 0);
    let bad = env.send(&["--max-rate", "fast"]).await;
    bad.assert_exit(2);
    bad.has(&["--max-rate: `fast` is not a rate"]);
}
