//! The built-in Creem sandbox, over real HTTP on 127.0.0.1:0.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use clap::Parser;
use creem_batch::cli::{Cli, Command as CliCommand, SandboxArgs};
use creem_batch::sandbox::{Latency, SandboxConfig};
use futures::future::join_all;
use serde_json::{json, Value};

use crate::common::http::*;
use crate::common::{repo, TestEnv, KEY};

fn config() -> SandboxConfig {
    SandboxConfig::default()
}

#[tokio::test]
async fn creates_a_checkout_shaped_like_creems() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let body = full_body("spring-1");
    let response = post(&sandbox, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let checkout: Value = response.json().await.unwrap();

    let id = checkout["id"].as_str().unwrap();
    assert!(id.starts_with("ch_") && id.len() > 10, "{id}");
    assert!(id[3..].bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    assert_eq!(checkout["object"], "checkout");
    assert_eq!(checkout["mode"], "test");
    assert_eq!(checkout["status"], "pending");
    assert_eq!(checkout["product"], body["product_id"]);
    assert_eq!(checkout["units"], 5);
    assert_eq!(checkout["request_id"], "spring-1");
    assert_eq!(checkout["metadata"], body["metadata"]);
    // Creem answers with the whole CustomerEntity; the email is the one sent.
    assert_eq!(checkout["customer"]["email"], body["customer"]["email"]);
    assert_eq!(checkout["success_url"], body["success_url"]);
    let url = checkout["checkout_url"].as_str().unwrap();
    assert!(url.starts_with("http") && url.contains(id), "{url}");

    let stats = sandbox.stats();
    assert_eq!(
        (stats.requests, stats.posts, stats.created),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.created_per_request_id["spring-1"], 1);
    assert_eq!(stats.post_times.len(), 1);

    let page = client().get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(id));
}

#[tokio::test]
async fn a_minimal_body_gets_one_unit_and_no_request_id() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let response = post(&sandbox, &json!({"product_id": "prod_1"})).await;
    assert_eq!(response.status(), 200);
    let checkout: Value = response.json().await.unwrap();
    assert_eq!(checkout["units"], 1);
    assert!(checkout.get("request_id").is_none());
    assert!(sandbox.stats().created_per_request_id.is_empty());
    assert_eq!(sandbox.stats().created, 1);
}

#[tokio::test]
async fn the_same_request_id_twice_makes_two_checkouts_like_creem() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let first: Value = post(&sandbox, &full_body("again"))
        .await
        .json()
        .await
        .unwrap();
    let second: Value = post(&sandbox, &full_body("again"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(first["id"], second["id"]);
    let stats = sandbox.stats();
    assert_eq!(stats.created, 2);
    assert_eq!(stats.created_per_request_id["again"], 2);

    let (_, inspect) = crate::common::http::get_json(&sandbox, "/sandbox/stats").await;
    assert_eq!(inspect["created"], 2);
    assert_eq!(inspect["requests"], 3);
    assert_eq!(inspect["duplicates"], json!({"again": 2}));
}

#[tokio::test]
async fn get_returns_the_checkout_with_its_current_status() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let created: Value = post(&sandbox, &full_body("status-1"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();

    let fetched = get_checkout(&sandbox, id).await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.json::<Value>().await.unwrap(), created);

    let control = client()
        .post(format!(
            "{}/sandbox/checkouts/{id}/status",
            sandbox.base_url()
        ))
        .json(&json!({"status": "completed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(control.status(), 200);
    assert_eq!(
        control.json::<Value>().await.unwrap()["status"],
        "completed"
    );
    let fetched: Value = get_checkout(&sandbox, id).await.json().await.unwrap();
    assert_eq!(fetched["status"], "completed");
    assert_eq!(fetched["request_id"], "status-1");

    assert!(sandbox.set_checkout_status(id, "expired"));
    let fetched: Value = get_checkout(&sandbox, id).await.json().await.unwrap();
    assert_eq!(fetched["status"], "expired");

    assert!(
        !sandbox.set_checkout_status(id, "paid"),
        "not a Creem status"
    );
    assert!(!sandbox.set_checkout_status("ch_unknown", "completed"));
}

#[tokio::test]
async fn unknown_checkouts_and_bad_lookups_answer_in_creems_error_shape() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let created: Value = post(&sandbox, &json!({"product_id": "prod_1"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    // Same length and alphabet as a real id, one digit changed.
    let mut forged = id.to_owned();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);

    for unknown in [forged.as_str(), "ch_nope", "prod_1", ""] {
        let response = get_checkout(&sandbox, unknown).await;
        let expected = if unknown.is_empty() { 400 } else { 404 };
        assert_creem_error(response, expected).await;
    }
    let no_parameter = client()
        .get(checkouts_url(&sandbox))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let messages = assert_creem_error(no_parameter, 400).await;
    assert!(messages[0].contains("checkout_id"), "{messages:?}");

    let control = |id: &str, body: Value| {
        client()
            .post(format!(
                "{}/sandbox/checkouts/{id}/status",
                sandbox.base_url()
            ))
            .json(&body)
            .send()
    };
    assert_creem_error(
        control(&forged, json!({"status": "completed"}))
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_creem_error(control(id, json!({"status": "paid"})).await.unwrap(), 400).await;

    let elsewhere = client()
        .get(format!("{}/v1/nowhere", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    let messages = assert_creem_error(elsewhere, 404).await;
    assert_eq!(messages, ["Cannot GET /v1/nowhere"]);
    let wrong_method = client()
        .delete(checkouts_url(&sandbox))
        .send()
        .await
        .unwrap();
    assert_creem_error(wrong_method, 404).await;
}

#[tokio::test]
async fn any_non_empty_key_is_accepted_by_default() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let url = checkouts_url(&sandbox);
    let body = json!({"product_id": "prod_1"});

    let missing = client().post(&url).json(&body).send().await.unwrap();
    let messages = assert_creem_error(missing, 401).await;
    assert!(messages[0].contains("x-api-key"), "{messages:?}");
    let empty = client()
        .post(&url)
        .header("x-api-key", "")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_creem_error(empty, 401).await;
    let any = client()
        .post(&url)
        .header("x-api-key", "whatever")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(any.status(), 200);

    let get_without_key = client()
        .get(&url)
        .query(&[("checkout_id", "ch_x")])
        .send()
        .await
        .unwrap();
    assert_creem_error(get_without_key, 401).await;
    assert_eq!(sandbox.stats().created, 1);
}

#[tokio::test]
async fn with_a_key_set_only_that_key_is_accepted() {
    let sandbox = TestEnv::start_sandbox(SandboxConfig {
        key: Some(KEY.into()),
        ..config()
    })
    .await;
    let url = checkouts_url(&sandbox);
    let body = json!({"product_id": "prod_1"});
    for wrong in ["creem_test_other", "", &KEY[..KEY.len() - 1]] {
        let response = client()
            .post(&url)
            .header("x-api-key", wrong)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_creem_error(response, 401).await;
    }
    assert_eq!(post(&sandbox, &body).await.status(), 200);
    let stats = sandbox.stats();
    assert_eq!((stats.created, stats.rejected), (1, 3));
}

#[tokio::test]
async fn every_validation_error_is_a_400_in_creems_shape() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let with = |field: &str, value: Value| {
        let mut body = json!({"product_id": "prod_1"});
        body[field] = value;
        body.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("{\"product_id\": ".into(), "not valid JSON"),
        ("[1, 2]".into(), "must be a JSON object"),
        ("\"prod_1\"".into(), "must be a JSON object"),
        ("{}".into(), "product_id should not be empty"),
        (
            json!({"product_id": ""}).to_string(),
            "product_id should not be empty",
        ),
        (
            json!({"product_id": 42}).to_string(),
            "product_id must be a string",
        ),
        (
            json!({"product_id": "abc"}).to_string(),
            "product_id must start with \"prod_\"",
        ),
        (with("units", json!(0)), "units must not be less than 1"),
        (with("units", json!(-3)), "units must not be less than 1"),
        (with("units", json!(1.5)), "units must be an integer number"),
        (with("units", json!("2")), "units must be an integer number"),
        (
            with("customer", json!("a@b.co")),
            "customer must be an object",
        ),
        (
            with("customer", json!({})),
            "customer must specify either id or email",
        ),
        (
            with("customer", json!({"id": "cust_1", "email": "a@b.co"})),
            "customer may specify only one of id or email, not both",
        ),
        (
            with("customer", json!({"email": "not-an-email"})),
            "customer.email must be an email",
        ),
        (
            with("customer", json!({"email": 7})),
            "customer.email must be an email",
        ),
        (
            with("customer", json!({"id": ""})),
            "customer.id must be a non-empty string",
        ),
        (with("metadata", json!(["a"])), "metadata must be an object"),
        (
            with("metadata", json!({"nested": {"a": 1}})),
            "metadata.nested must be a string or a number",
        ),
        (
            with("custom_fields", json!({})),
            "custom_fields must be an array",
        ),
        (
            with("custom_fields", json!([{}, {}, {}, {}])),
            "custom_fields must contain no more than 3 elements",
        ),
        (
            with("custom_fields", json!([1])),
            "each value in custom_fields must be an object",
        ),
        (
            with("success_url", json!("ftp://example.com")),
            "success_url must be a URL address",
        ),
        (
            with("success_url", json!("example.com/ok")),
            "success_url must be a URL address",
        ),
        (
            with("success_url", json!(true)),
            "success_url must be a URL address",
        ),
        (with("request_id", json!(5)), "request_id must be a string"),
        (
            with("discount_code", json!(true)),
            "discount_code must be a string",
        ),
        (
            with("locale", json!("en")),
            "property locale should not exist",
        ),
    ];
    for (body, expected) in &cases {
        let messages = assert_creem_error(post_raw(&sandbox, body.clone()).await, 400).await;
        assert_eq!(messages.len(), 1, "body {body}: {messages:?}");
        assert!(messages[0].contains(expected), "body {body}: {messages:?}");
    }

    let several = json!({"units": 0, "customer": {}, "locale": 1});
    let messages = assert_creem_error(post(&sandbox, &several).await, 400).await;
    assert_eq!(messages.len(), 4, "every problem is reported: {messages:?}");

    let stats = sandbox.stats();
    assert_eq!(stats.created, 0);
    assert_eq!(stats.rejected, cases.len() as u64 + 1);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let padding = "x".repeat(2 << 20);
    let body = json!({"product_id": "prod_1", "metadata": {"padding": padding}});
    assert_creem_error(post(&sandbox, &body).await, 413).await;
    assert_eq!(sandbox.stats().created, 0);
}

#[tokio::test]
async fn optional_fields_may_be_null_and_metadata_may_hold_numbers() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let body = json!({
        "product_id": "prod_1", "units": null, "customer": null, "request_id": null,
        "metadata": {"count": 42, "ratio": 0.5, "vip": true, "name": "x"},
    });
    let response = post(&sandbox, &body).await;
    assert_eq!(response.status(), 200);
    let checkout: Value = response.json().await.unwrap();
    assert_eq!(checkout["metadata"], body["metadata"]);
}

#[tokio::test]
async fn fail_rate_one_answers_every_api_request_500() {
    let sandbox = TestEnv::start_sandbox(SandboxConfig {
        fail_rate: 1.0,
        ..config()
    })
    .await;
    let messages = assert_creem_error(post(&sandbox, &full_body("f")).await, 500).await;
    assert!(!messages[0].is_empty());
    assert_creem_error(get_checkout(&sandbox, "ch_x").await, 500).await;
    let stats = sandbox.stats();
    assert_eq!((stats.created, stats.failed), (0, 2));
}

#[tokio::test]
async fn throttle_rate_one_answers_429_with_retry_after() {
    let sandbox = TestEnv::start_sandbox(SandboxConfig {
        throttle_rate: 1.0,
        retry_after: 7,
        ..config()
    })
    .await;
    let response = post(&sandbox, &full_body("t")).await;
    assert_eq!(response.headers()["retry-after"], "7");
    assert_creem_error(response, 429).await;
    let stats = sandbox.stats();
    assert_eq!((stats.created, stats.throttled), (0, 1));
}

#[tokio::test]
async fn max_rps_answers_429_beyond_the_ceiling() {
    const MAX_RPS: u32 = 10;
    let sandbox = TestEnv::start_sandbox(SandboxConfig {
        max_rps: Some(MAX_RPS),
        ..config()
    })
    .await;
    // Far more than the ceiling at once: the bucket lets MAX_RPS through, then only what it
    // refills while the burst lasts (a few ms here; it would take seconds to refill them all).
    let total = 4 * MAX_RPS as usize;
    let body = json!({"product_id": "prod_1"});
    let answers = join_all((0..total).map(|_| post(&sandbox, &body))).await;
    let mut created = 0;
    let mut throttled = 0;
    for response in answers {
        match response.status().as_u16() {
            200 => created += 1,
            429 => {
                assert_eq!(response.headers()["retry-after"], "1");
                assert_creem_error(response, 429).await;
                throttled += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(created >= MAX_RPS as usize, "{created} created");
    assert!(throttled > 0, "nothing throttled, {created} created");
    assert_eq!(created + throttled, total);
    let stats = sandbox.stats();
    assert_eq!(stats.created as usize, created);
    assert_eq!(stats.throttled as usize, throttled);
    assert_eq!(stats.post_times.len(), total);
    assert!(
        stats.post_times.windows(2).all(|w| w[0] <= w[1]),
        "in arrival order"
    );
}

#[tokio::test]
async fn drop_rate_one_closes_the_connection_without_an_answer_or_a_checkout() {
    let sandbox = TestEnv::start_sandbox(SandboxConfig {
        drop_rate: 1.0,
        ..config()
    })
    .await;
    let result = client()
        .post(checkouts_url(&sandbox))
        .header("x-api-key", KEY)
        .json(&full_body("d"))
        .send()
        .await;
    let err = result.expect_err("no HTTP answer");
    assert!(err.status().is_none(), "{err:?}");
    assert!(
        err.is_request() || err.is_connect(),
        "a transport error: {err:?}"
    );
    let stats = sandbox.stats();
    assert_eq!((stats.posts, stats.created, stats.dropped), (1, 0, 1));
}

#[tokio::test]
async fn drop_after_create_makes_the_checkout_but_never_answers() {
    let sandbox = TestEnv::start_sandbox(SandboxConfig {
        drop_after_create_rate: 1.0,
        ..config()
    })
    .await;
    let client = client();
    for _ in 0..2 {
        let result = client
            .post(checkouts_url(&sandbox))
            .header("x-api-key", KEY)
            .json(&full_body("ambiguous"))
            .send()
            .await;
        let err = result.expect_err("no HTTP answer");
        assert!(err.status().is_none(), "{err:?}");
    }
    let stats = sandbox.stats();
    assert_eq!((stats.created, stats.dropped_after_create), (2, 2));
    assert_eq!(stats.created_per_request_id["ambiguous"], 2);
}

#[tokio::test]
async fn reject_all_answers_every_post_with_the_same_400() {
    let sandbox = TestEnv::start_sandbox(SandboxConfig {
        reject_all: true,
        ..config()
    })
    .await;
    for body in [full_body("r1"), json!({"product_id": "prod_other"})] {
        let messages = assert_creem_error(post(&sandbox, &body).await, 400).await;
        assert_eq!(messages, ["product_id must be a valid product"]);
    }
    assert_eq!(sandbox.stats().created, 0);
}

#[tokio::test]
async fn latency_still_answers() {
    for latency in ["2ms", "1ms..3ms"] {
        let sandbox = TestEnv::start_sandbox(SandboxConfig {
            latency: Some(latency.parse().unwrap()),
            ..config()
        })
        .await;
        assert_eq!(post(&sandbox, &full_body("l")).await.status(), 200);
        sandbox.shutdown().await;
    }
}

#[tokio::test]
async fn workers_serve_k_at_once_and_the_rest_wait_in_line() {
    // One worker, 20 ms each: five POSTs sent together are served one after another, so the
    // five take at least 100 ms in all, and each waits at least its own 20 ms (lower bounds
    // the worker's sleeps guarantee however the requests arrive; not a timing measurement).
    let sandbox = TestEnv::start_sandbox(SandboxConfig {
        latency: Some(Latency::Fixed(Duration::from_millis(20))),
        workers: Some(1),
        ..config()
    })
    .await;
    let body = full_body("w");
    let started = std::time::Instant::now();
    let answers = join_all((0..5).map(|_| post(&sandbox, &body))).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(answers.iter().all(|a| a.status() == 200));
    let (_, stats) = crate::common::http::get_json(&sandbox, "/sandbox/stats").await;
    assert_eq!(stats["post_wait_ms"]["count"], 5);
    let p50 = stats["post_wait_ms"]["p50"].as_f64().unwrap();
    assert!(p50 >= 20.0, "{stats}");
    sandbox.shutdown().await;
}

#[test]
fn workers_need_a_latency_and_at_least_one() {
    let no_latency = SandboxConfig {
        workers: Some(4),
        ..config()
    };
    assert!(no_latency
        .validate()
        .unwrap_err()
        .to_string()
        .contains("latency"));
    let none = SandboxConfig {
        workers: Some(0),
        latency: Some(Latency::Fixed(Duration::from_millis(1))),
        ..config()
    };
    assert!(none.validate().is_err());
}

/// What one sequential client sees for `n` requests: a status code, or "drop".
async fn outcomes(config: SandboxConfig, n: usize) -> Vec<String> {
    let sandbox = TestEnv::start_sandbox(config).await;
    let client = client();
    let mut seen = Vec::new();
    for i in 0..n {
        let result = client
            .post(checkouts_url(&sandbox))
            .header("x-api-key", KEY)
            .json(&full_body(&format!("det-{i}")))
            .send()
            .await;
        seen.push(match result {
            Ok(response) => response.status().as_str().to_owned(),
            Err(_) => "drop".to_owned(),
        });
    }
    sandbox.shutdown().await;
    seen
}

#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let faulty = |seed| SandboxConfig {
        seed,
        fail_rate: 0.25,
        throttle_rate: 0.25,
        drop_rate: 0.1,
        drop_after_create_rate: 0.1,
        ..config()
    };
    let first = outcomes(faulty(42), 40).await;
    let again = outcomes(faulty(42), 40).await;
    let other = outcomes(faulty(43), 40).await;
    assert_eq!(first, again);
    assert_ne!(first, other);
    for kind in ["200", "429", "500", "drop"] {
        assert!(first.iter().any(|o| o == kind), "no {kind} in {first:?}");
    }
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sandbox = TestEnv::start_sandbox(config()).await;
    let url = checkouts_url(&sandbox);
    sandbox.shutdown().await;
    let result = client()
        .post(url)
        .header("x-api-key", KEY)
        .body("{}")
        .send()
        .await;
    assert!(result.is_err(), "nothing listens any more");
}

fn sandbox_args(flags: &[&str]) -> SandboxArgs {
    let argv = ["creem-batch", "sandbox"].iter().chain(flags);
    match Cli::try_parse_from(argv).expect("flags parse").command {
        CliCommand::Sandbox(args) => args,
        other => panic!("parsed {other:?}"),
    }
}

#[test]
fn flags_become_a_config() {
    let args = sandbox_args(&[
        "--key",
        "k",
        "--seed",
        "9",
        "--fail-rate",
        "0.1",
        "--throttle-rate",
        "0.2",
        "--retry-after",
        "3",
        "--max-rps",
        "50",
        "--latency",
        "5ms..50ms",
        "--drop-rate",
        "0.05",
        "--drop-after-create-rate",
        "0.05",
        "--reject-all",
        "--workers",
        "4",
    ]);
    let config = SandboxConfig::try_from(&args).unwrap();
    assert_eq!(
        config,
        SandboxConfig {
            key: Some("k".into()),
            seed: 9,
            fail_rate: 0.1,
            throttle_rate: 0.2,
            retry_after: 3,
            max_rps: Some(50),
            latency: Some(Latency::Uniform {
                min: Duration::from_millis(5),
                max: Duration::from_millis(50)
            }),
            workers: Some(4),
            drop_rate: 0.05,
            drop_after_create_rate: 0.05,
            reject_all: true,
        }
    );
    assert_eq!(
        SandboxConfig::try_from(&sandbox_args(&[])).unwrap(),
        SandboxConfig::default()
    );
}

#[test]
fn bad_fault_settings_are_refused() {
    for flags in [
        &["--fail-rate", "1.5"][..],
        &["--drop-rate=-0.1"],
        &["--fail-rate", "0.6", "--throttle-rate", "0.6"],
        &["--max-rps", "0"],
        &["--key", ""],
        &["--latency", "20"],
        &["--latency", "20 parsecs"],
        &["--latency", "50ms..5ms"],
    ] {
        let result = SandboxConfig::try_from(&sandbox_args(flags));
        assert!(result.is_err(), "{flags:?} accepted");
    }
}

#[test]
fn latency_parses_fixed_values_and_ranges() {
    let ms = Duration::from_millis;
    assert_eq!("20ms".parse::<Latency>().unwrap(), Latency::Fixed(ms(20)));
    assert_eq!("1.5s".parse::<Latency>().unwrap(), Latency::Fixed(ms(1500)));
    assert_eq!(
        "250us".parse::<Latency>().unwrap(),
        Latency::Fixed(Duration::from_micros(250))
    );
    assert_eq!(
        "5ms..50ms".parse::<Latency>().unwrap(),
        Latency::Uniform {
            min: ms(5),
            max: ms(50)
        }
    );
}

#[tokio::test]
async fn start_refuses_an_invalid_config() {
    let config = SandboxConfig {
        fail_rate: 2.0,
        ..config()
    };
    let err = creem_batch::sandbox::Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// Starts `creem-batch sandbox` on a free port with `flags`; returns it (stderr piped) once
/// it says where it listens, and that address.
fn sandbox_command(flags: &[&str]) -> (std::process::Child, String) {
    let mut all = vec!["sandbox", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(flags);
    let mut child = TestEnv::new()
        .command(&all)
        // The temp dir goes with this statement; the sandbox writes nothing anyway.
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start creem-batch sandbox");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base_url = line
        .trim()
        .strip_prefix("creem sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, base_url)
}

/// `--threads N` is how many threads answer, half the cores without it: the runtime's
/// workers, the only threads beside the main one. (Counted, not told apart by name: a worker
/// names itself once it first runs, which on a busy machine may be after the line is printed.)
#[cfg(target_os = "linux")]
#[test]
fn the_command_answers_from_the_threads_it_is_given() {
    let threads_of = |flags: &[&str]| {
        let (mut child, _) = sandbox_command(flags);
        let threads = std::fs::read_dir(format!("/proc/{}/task", child.id()))
            .unwrap()
            .count();
        child.kill().unwrap();
        child.wait().unwrap();
        threads - 1
    };
    assert_eq!(threads_of(&["--threads", "3"]), 3);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(threads_of(&[]), (cores / 2).max(1));
}

#[test]
fn threads_are_at_least_one() {
    let argv = ["creem-batch", "sandbox", "--threads", "0"];
    let err = Cli::try_parse_from(argv).expect_err("0 threads refused");
    assert!(err.to_string().contains("--threads"), "{err}");
}

#[tokio::test]
async fn the_command_serves_until_sigterm() {
    let (child, base_url) = sandbox_command(&[]);
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
    assert!(
        !base_url.ends_with(":0"),
        "the real port is printed: {base_url}"
    );

    let response = client()
        .post(format!("{base_url}/v1/checkouts"))
        .header("x-api-key", KEY)
        // The command's default catalogue: the example campaigns' products.
        .json(&json!({"product_id": "prod_6tW66i0oZM7w1qXReHJrwg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // SAFETY: plain kill(2) on the child we spawned.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(stderr.contains("1 checkouts created"), "{stderr}");
}

#[test]
fn the_command_refuses_a_public_address_without_public() {
    let run = TestEnv::new().run(&["sandbox", "--listen", "0.0.0.0:0"]);
    run.assert_exit(2)
        .stderr_has(&["not a loopback address", "--public"]);
    assert_eq!(run.stdout, "", "{run}");
}
