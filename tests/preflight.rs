//! The pre-flight: every distinct product and discount code looked up once, against a
//! wiremock stand-in of Creem's read endpoints; and `check --online` through the binary.
//! Self-contained: its own small helpers.

use std::path::Path;

use creem_batch::api_key::ApiKey;
use creem_batch::preflight::{check, Demand, HttpLookup, Report, Severity, MAX_LOOKUPS};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "creem_test_PREFLIGHT";

fn now() -> jiff::Timestamp {
    "2026-04-01T12:00:00Z".parse().unwrap()
}

fn product(id: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "mode": "test", "object": "product", "name": "Pro",
        "price": 1000, "currency": "USD", "billing_type": "onetime", "status": "active"})
}

fn discount(code: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut d = serde_json::json!({"id": format!("dis_{code}"), "mode": "test",
        "object": "discount", "status": "active", "name": code, "code": code,
        "type": "percentage", "percentage": 20});
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

fn not_found(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(serde_json::json!({
        "trace_id": "t-1", "status": 404, "error": "Not Found", "message": [message]}))
}

async fn known_product(server: &MockServer, id: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/products/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(product(id)))
        .expect(times)
        .mount(server)
        .await;
}

async fn known_discount(server: &MockServer, code: &str, extra: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path("/v1/discounts"))
        .and(query_param("discount_code", code))
        .respond_with(ResponseTemplate::new(200).set_body_json(discount(code, extra)))
        .expect(1)
        .mount(server)
        .await;
}

async fn preflight(server: &MockServer, demand: &Demand) -> Report {
    let lookup = HttpLookup::new(
        &server.uri(),
        &ApiKey::new(KEY),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    check(demand, &lookup, now()).await.unwrap()
}

fn rows(pairs: &[(&str, Option<&str>, u64)]) -> Demand {
    let mut demand = Demand::default();
    for (product, code, n) in pairs {
        for _ in 0..*n {
            demand.add(product, *code);
        }
    }
    demand
}

fn stops(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Stop)
        .map(|f| f.to_string())
        .collect()
}

fn warnings(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .map(|f| f.to_string())
        .collect()
}

#[tokio::test]
async fn each_distinct_value_is_looked_up_once_with_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/products/prod_a"))
        .and(wiremock::matchers::header("x-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(product("prod_a")))
        .expect(1)
        .mount(&server)
        .await;
    known_discount(&server, "SPRING", serde_json::json!({})).await;
    let report = preflight(&server, &rows(&[("prod_a", Some("SPRING"), 40)])).await;
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!((report.products_checked, report.discounts_checked), (1, 1));
    assert_eq!(report.capped, None);
    assert!(!report.must_stop());
}

#[tokio::test]
async fn an_unknown_product_stops_naming_the_value_and_the_rows() {
    let server = MockServer::start().await;
    known_product(&server, "prod_a", 1).await;
    Mock::given(method("GET"))
        .and(path("/v1/products/prod_typo"))
        .respond_with(not_found("Product not found"))
        .expect(1)
        .mount(&server)
        .await;
    let report = preflight(
        &server,
        &rows(&[("prod_a", None, 5), ("prod_typo", None, 3)]),
    )
    .await;
    assert!(report.must_stop());
    let stops = stops(&report);
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert!(stops[0].starts_with("product `prod_typo`: Creem does not know this product"));
    assert!(stops[0].contains("Product not found"), "{}", stops[0]);
    assert!(stops[0].ends_with("(3 rows)"), "{}", stops[0]);
}

/// A host without `/v1/products/{id}` answers 404 "Cannot GET" for every product: the query
/// form is used instead, and from then on only it.
#[tokio::test]
async fn the_query_route_is_used_where_the_path_route_does_not_exist() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/products/prod_a"))
        .respond_with(not_found("Cannot GET /v1/products/prod_a"))
        .expect(1)
        .mount(&server)
        .await;
    for id in ["prod_a", "prod_b"] {
        Mock::given(method("GET"))
            .and(path("/v1/products"))
            .and(query_param("product_id", id))
            .respond_with(ResponseTemplate::new(200).set_body_json(product(id)))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/products"))
        .and(query_param("product_id", "prod_gone"))
        .respond_with(not_found("Product not found"))
        .expect(1)
        .mount(&server)
        .await;
    let demand = rows(&[
        ("prod_a", None, 3),
        ("prod_b", None, 2),
        ("prod_gone", None, 1),
    ]);
    let report = preflight(&server, &demand).await;
    assert_eq!(stops(&report).len(), 1, "{:?}", report.findings);
    assert!(stops(&report)[0].contains("prod_gone"));
    assert_eq!(report.products_checked, 3);
}

#[tokio::test]
async fn unusable_discounts_stop_and_a_short_supply_warns() {
    let server = MockServer::start().await;
    known_product(&server, "prod_a", 1).await;
    known_product(&server, "prod_b", 1).await;
    Mock::given(method("GET"))
        .and(path("/v1/discounts"))
        .and(query_param("discount_code", "NOPE"))
        .respond_with(not_found("Discount not found"))
        .expect(1)
        .mount(&server)
        .await;
    known_discount(&server, "DRAFT", serde_json::json!({"status": "draft"})).await;
    known_discount(
        &server,
        "OLD",
        serde_json::json!({"expiry_date": "2026-03-31T23:59:59Z"}),
    )
    .await;
    known_discount(
        &server,
        "ONLYA",
        serde_json::json!({"applies_to_products": ["prod_a"]}),
    )
    .await;
    known_discount(
        &server,
        "FEW",
        serde_json::json!({"max_redemptions": 10, "redeem_count": 8,
            "expiry_date": "2026-12-31T23:59:59Z"}),
    )
    .await;
    let demand = rows(&[
        ("prod_a", Some("NOPE"), 6),
        ("prod_a", Some("DRAFT"), 5),
        ("prod_a", Some("OLD"), 4),
        ("prod_a", Some("ONLYA"), 2),
        ("prod_b", Some("ONLYA"), 1),
        ("prod_b", Some("FEW"), 3),
    ]);
    let report = preflight(&server, &demand).await;
    assert_eq!(
        stops(&report),
        [
            "discount code `NOPE`: Creem does not know this discount code (HTTP 404 Not Found: Discount not found (trace_id t-1)) (6 rows)",
            "discount code `DRAFT`: its status is `draft`, not `active`: Creem would refuse it (5 rows)",
            "discount code `OLD`: it expired on 2026-03-31T23:59:59Z (expiry_date) (4 rows)",
            "discount code `ONLYA` with product `prod_b`: it does not apply to product `prod_b` (applies_to_products: prod_a) (1 row)",
        ]
    );
    assert_eq!(
        warnings(&report),
        ["discount code `FEW`: only 2 redemption(s) left (max_redemptions 10, redeem_count 8), fewer than the rows carrying it: later customers may be refused the discount (3 rows)"]
    );
    assert_eq!(report.discounts_checked, 5);
}

#[tokio::test]
async fn a_failing_preflight_warns_and_lets_the_run_go_on() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/products/prod_a"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    // Nothing else is asked once the host is failing.
    Mock::given(method("GET"))
        .and(path("/v1/discounts"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let report = preflight(&server, &rows(&[("prod_a", Some("X"), 4)])).await;
    assert!(!report.must_stop());
    let warnings = warnings(&report);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("pre-flight: could not finish (product `prod_a`: HTTP 503"),
        "{}",
        warnings[0]
    );
    assert!(report.capped.is_some());
}

#[tokio::test]
async fn a_refused_key_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let lookup = HttpLookup::new(
        &server.uri(),
        &ApiKey::new(KEY),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let err = check(&rows(&[("prod_a", None, 1)]), &lookup, now())
        .await
        .unwrap_err();
    assert_eq!(err.status, 401);
    assert!(!err.to_string().contains("PREFLIGHT"));
}

#[tokio::test]
async fn lookups_are_capped_and_the_cap_is_said() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("^/v1/products/prod_[0-9]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(product("prod_x")))
        .expect(MAX_LOOKUPS as u64)
        .mount(&server)
        .await;
    let mut demand = Demand::default();
    for i in 0..MAX_LOOKUPS + 7 {
        // prod_0 is carried by the most rows: it must be among those looked up.
        let n = if i == MAX_LOOKUPS + 6 { 9 } else { 1 };
        for _ in 0..n {
            demand.add(&format!("prod_{i}"), None);
        }
    }
    let report = preflight(&server, &demand).await;
    assert_eq!(report.products_checked, MAX_LOOKUPS);
    let capped = report.capped.expect("says it was capped");
    assert!(
        capped.starts_with("7 product(s) and 0 discount code(s) were not looked up"),
        "{capped}"
    );
    assert!(capped.contains("7 row(s) carry them"), "{capped}");
    let asked: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert!(asked.contains(&format!("/v1/products/prod_{}", MAX_LOOKUPS + 6)));
}

#[test]
fn demand_reads_rendered_bodies() {
    let mut demand = Demand::default();
    demand.add_body(br#"{"product_id":"prod_a","discount_code":"X","request_id":"r1"}"#);
    demand.add_body(br#"{"product_id":"prod_a","request_id":"r2"}"#);
    demand.add_body(b"not json");
    assert!(!demand.is_empty());
    assert!(Demand::default().is_empty());
}

// --- `check --online` through the binary ---

fn write_campaign(dir: &Path, checkout_extra: &str) {
    std::fs::write(
        dir.join("campaign.yaml"),
        format!("campaign: pre\ncustomers: customers.csv\ncheckout:\n  product_id: \"{{{{ product }}}}\"\n{checkout_extra}  customer:\n    email: \"{{{{ email }}}}\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("customers.csv"),
        "email,product\na@example.com,prod_a\nb@example.com,prod_a\nc@example.com,prod_typo\n",
    )
    .unwrap();
}

async fn check_online(dir: &Path, base_url: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_creem-batch"))
        .args(["check", "campaign.yaml", "--online", "--base-url", base_url])
        .current_dir(dir)
        .env("CREEM_API_KEY", KEY)
        .env_remove("CREEM_API_BASE")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_stops_on_an_unknown_product_and_sends_no_checkout() {
    let server = MockServer::start().await;
    known_product(&server, "prod_a", 1).await;
    Mock::given(method("GET"))
        .and(path("/v1/products/prod_typo"))
        .respond_with(not_found("Product not found"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path(), "");
    let (code, stdout, stderr) = check_online(dir.path(), &server.uri()).await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.contains("3 rows, 3 valid, 0 invalid"), "{stdout}");
    assert!(
        stdout.contains("stop: product `prod_typo`: Creem does not know this product"),
        "{stdout}"
    );
    assert!(stdout.contains("(1 row)"), "{stdout}");
    assert!(
        stderr.contains("the pre-flight found 1 problem(s)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_passes_with_known_values_and_exits_3_on_a_refused_key() {
    let server = MockServer::start().await;
    known_product(&server, "prod_a", 1).await;
    known_product(&server, "prod_typo", 1).await;
    let dir = tempfile::tempdir().unwrap();
    write_campaign(dir.path(), "");
    let (code, stdout, stderr) = check_online(dir.path(), &format!("{}/v1", server.uri())).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("2 product(s) and 0 discount code(s) looked up"),
        "{stdout}"
    );

    let refusing = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&refusing)
        .await;
    let (code, stdout, stderr) = check_online(dir.path(), &refusing.uri()).await;
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(stdout.contains("the API key was rejected"), "{stdout}");
    assert!(!format!("{stdout}{stderr}").contains("PREFLIGHT"));
}

/// An answer over 1 MiB is not read whole: the pre-flight says so and goes on, unchecked.
#[tokio::test]
async fn an_oversized_answer_is_not_read_and_the_run_goes_on_unchecked() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/products/prod_a"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(2 << 20)))
        .mount(&server)
        .await;
    let report = preflight(&server, &rows(&[("prod_a", None, 4)])).await;
    assert!(!report.must_stop());
    let warnings = warnings(&report);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .contains("could not finish (product `prod_a`: the answer is larger than 1 MiB)"),
        "{}",
        warnings[0]
    );
}
