//! Talking to an in-process sandbox over real HTTP (the sandbox's own tests).

use creem_batch::sandbox::{MerchantConfig, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::KEY;

/// A client that ignores proxy variables, so requests really reach 127.0.0.1.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("build client")
}

pub fn checkouts_url(sandbox: &Sandbox) -> String {
    format!("{}/v1/checkouts", sandbox.base_url())
}

/// A body with every documented field set.
pub fn full_body(request_id: &str) -> Value {
    json!({
        "product_id": "prod_6tW66i0oZM7w1qXReHJrwg",
        "request_id": request_id,
        "units": 5,
        "discount_code": "NEWUSER20",
        "success_url": "https://yourdomain.com/success",
        "customer": {"email": "hello@example.com"},
        "custom_fields": [{"type": "text", "key": "company", "label": "Company"}],
        "metadata": {"utm_source": "twitter", "visits": 3, "plan_type": "team_annual", "locale": "zh-CN"},
    })
}

/// POSTs `body` (raw text, so malformed JSON can be sent) with the test key.
pub async fn post_raw(sandbox: &Sandbox, body: impl Into<String>) -> reqwest::Response {
    client()
        .post(checkouts_url(sandbox))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(body.into())
        .send()
        .await
        .expect("sandbox answers")
}

pub async fn post(sandbox: &Sandbox, body: &Value) -> reqwest::Response {
    post_raw(sandbox, body.to_string()).await
}

/// An in-process sandbox on 127.0.0.1 port 0 with this merchant and default settings.
pub async fn start_sandbox(merchant: MerchantConfig) -> Sandbox {
    Sandbox::start_with(
        "127.0.0.1:0".parse().expect("loopback address"),
        SandboxConfig::default(),
        merchant,
    )
    .await
    .expect("sandbox starts")
}

/// POSTs `body` to `/v1/checkouts` with the test key: the status and the JSON answer.
pub async fn create(sandbox: &Sandbox, body: &Value) -> (StatusCode, Value) {
    let answer = post(sandbox, body).await;
    let status = answer.status();
    (status, answer.json().await.expect("answer is JSON"))
}

/// GETs `path` with the test key: the status and the JSON answer.
pub async fn get_json(sandbox: &Sandbox, path: &str) -> (StatusCode, Value) {
    let answer = client()
        .get(format!("{}{path}", sandbox.base_url()))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("sandbox answers");
    let status = answer.status();
    (status, answer.json().await.expect("answer is JSON"))
}

/// The `creem-signature` header a webhook receiver was sent, empty when there is none.
pub fn webhook_signature(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("creem-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub async fn get_checkout(sandbox: &Sandbox, checkout_id: &str) -> reqwest::Response {
    client()
        .get(checkouts_url(sandbox))
        .query(&[("checkout_id", checkout_id)])
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("sandbox answers")
}

/// Asserts `response` is `status` in Creem's error shape, exactly these five fields, and
/// returns its messages.
pub async fn assert_creem_error(response: reqwest::Response, status: u16) -> Vec<String> {
    assert_eq!(response.status().as_u16(), status);
    let reason = response.status().canonical_reason().unwrap().to_owned();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "error answers are JSON"
    );
    let body: Value = response.json().await.expect("error body is JSON");
    let object = body.as_object().expect("error body is an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["error", "message", "status", "timestamp", "trace_id"],
        "{body}"
    );
    assert_eq!(body["status"], status);
    assert_eq!(body["error"], reason);
    assert!(is_uuid_like(body["trace_id"].as_str().unwrap()), "{body}");
    let timestamp = body["timestamp"].as_u64().expect("timestamp is an integer");
    assert!(
        timestamp > 1_700_000_000_000,
        "timestamp is in ms since epoch: {timestamp}"
    );
    let messages = body["message"].as_array().expect("message is an array");
    assert!(!messages.is_empty(), "{body}");
    messages
        .iter()
        .map(|m| m.as_str().expect("messages are strings").to_owned())
        .collect()
}

fn is_uuid_like(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A wiremock answer to `POST /v1/checkouts`: one pending checkout a row, its id made from the
/// request's request_id (`ch_<request_id>`).
pub fn checkout_for_request(request: &wiremock::Request) -> wiremock::ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).expect("the body is JSON");
    let id = format!("ch_{}", body["request_id"].as_str().expect("a request_id"));
    wiremock::ResponseTemplate::new(200).set_body_json(json!({
        "id": id, "object": "checkout", "status": "pending",
        "checkout_url": format!("https://checkout.creem.io/{id}"), "mode": "test"
    }))
}
