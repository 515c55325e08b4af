//! The sandbox as Creem: its checkout page (Pay, Cancel, Let it expire), the signed redirect and
//! webhook that Pay makes, its catalogue lookups, its optional strictness, and every answer
//! checked against the OpenAPI response schemas. Self-contained: the library's public sandbox
//! API, reqwest, and a webhook receiver on 127.0.0.1 port 0.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use creem_batch::sandbox::{MerchantConfig, Sandbox, Webhook, WEBHOOK_ATTEMPTS};
use creem_batch::signature::{
    parse_webhook_event, redirect_signature, verify_redirect, verify_webhook,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::common::http::{create, get_json, start_sandbox, webhook_signature};
use crate::common::KEY;

const SECRET: &str = "whsec_sandbox_test";

/// What a webhook receiver got: the signature header and the raw body.
type Delivery = (String, Bytes);

/// A receiver that answers 500 to its first `failures` deliveries, then 200.
async fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let seen = seen.clone();
            async move {
                let signature = webhook_signature(&headers);
                let _ = tx.send((signature, body));
                if seen.fetch_add(1, Ordering::SeqCst) < failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn merchant(webhook_url: Option<&str>) -> MerchantConfig {
    MerchantConfig {
        webhook: webhook_url.map(|url| Webhook {
            url: url.to_owned(),
            secret: SECRET.to_owned(),
        }),
        webhook_backoff: Duration::from_millis(5),
        ..MerchantConfig::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn body(request_id: &str) -> Value {
    json!({
        "product_id": "prod_6tW66i0oZM7w1qXReHJrwg",
        "units": 3,
        "request_id": request_id,
        "discount_code": "SPRING2026",
        "customer": {"email": "ana@example.com"},
        "metadata": {"campaign": "spring", "user_id": "u_1"},
        "custom_fields": [
            {"type": "text", "key": "company", "label": "Company <b>name</b>", "text": {"max_length": 80}},
            {"type": "checkbox", "key": "terms", "label": "I agree", "optional": true},
        ],
        "success_url": "https://shop.example/thanks",
    })
}

async fn click(sandbox: &Sandbox, checkout_id: &str, button: &str) -> reqwest::Response {
    client()
        .post(format!(
            "{}/checkout/{checkout_id}/{button}",
            sandbox.base_url()
        ))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_checkout_page_shows_the_checkout_without_scripts_or_outside_assets() {
    let sandbox = start_sandbox(merchant(None)).await;
    let (_, checkout) = create(&sandbox, &body("page-1")).await;
    let page = reqwest::get(checkout["checkout_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    for part in [
        "SANDBOX: no real payment",
        "prod_6tW66i0oZM7w1qXReHJrwg",
        "<dd id=\"units\">3</dd>",
        "ana@example.com",
        "SPRING2026",
        // The label is escaped, not markup.
        "Company &lt;b&gt;name&lt;&#x2f;b&gt;",
        "I agree (optional)",
        "id=\"pay\"",
        "action=\"/checkout/",
        "/cancel\"",
        "/expire\"",
    ] {
        assert!(html.contains(part), "page lacks {part:?}\n{html}");
    }
    for absent in ["<script", "src=", "href=\"http", "@import", "url("] {
        assert!(!html.contains(absent), "page has {absent:?}\n{html}");
    }
    let missing = reqwest::get(format!("{}/checkout/ch_nope", sandbox.base_url()))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn pay_completes_with_an_order_and_redirects_signed_with_the_creating_key() {
    let sandbox = start_sandbox(merchant(None)).await;
    let (_, checkout) = create(&sandbox, &body("pay-1")).await;
    let id = checkout["id"].as_str().unwrap();

    let paid = click(&sandbox, id, "pay").await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let location = paid.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://shop.example/thanks?checkout_id="),
        "{location}"
    );

    let verified = verify_redirect(&location, KEY).unwrap();
    assert!(verified.valid, "{location}");
    assert_eq!(
        verified.covered,
        [
            "checkout_id",
            "order_id",
            "customer_id",
            "product_id",
            "request_id"
        ]
    );
    assert_eq!(verified.request_id.as_deref(), Some("pay-1"));
    assert!(
        !verify_redirect(&location, "creem_test_OTHER")
            .unwrap()
            .valid
    );
    let tampered = location.replace("request_id=pay-1", "request_id=pay-2");
    assert!(!verify_redirect(&tampered, KEY).unwrap().valid);

    let (_, now) = get_json(&sandbox, &format!("/v1/checkouts?checkout_id={id}")).await;
    assert_eq!(now["status"], "completed");
    let order_id = now["order"]["id"].as_str().unwrap();
    assert!(
        location.contains(&format!("order_id={order_id}")),
        "{location}"
    );
    assert_eq!(now["order"]["status"], "paid");
    // 3 units of 29.00 EUR, 20% off with SPRING2026.
    assert_eq!(now["order"]["sub_total"], 8700);
    assert_eq!(now["order"]["amount"], 6960);

    // A second Pay changes nothing.
    assert_eq!(
        click(&sandbox, id, "pay").await.status(),
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn only_creems_parameters_are_signed_after_the_merchants_own() {
    let sandbox = start_sandbox(merchant(None)).await;
    let mut with_params = body("utm-1");
    with_params["success_url"] = json!("https://shop.example/thanks?utm_campaign=spring");
    let (_, checkout) = create(&sandbox, &with_params).await;
    let paid = click(&sandbox, checkout["id"].as_str().unwrap(), "pay").await;
    let location = url::Url::parse(paid.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs[0], ("utm_campaign".into(), "spring".into()));
    let signed: Vec<(&str, &str)> = pairs[1..pairs.len() - 1]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (name, signature) = &pairs[pairs.len() - 1];
    assert_eq!(name, "signature");
    assert_eq!(signature, &redirect_signature(&signed, KEY));
}

#[tokio::test]
async fn pay_sends_one_signed_checkout_completed_webhook() {
    let (url, mut deliveries) = receiver(0).await;
    let sandbox = start_sandbox(merchant(Some(&url))).await;
    let (_, checkout) = create(&sandbox, &body("hook-1")).await;
    let id = checkout["id"].as_str().unwrap();
    click(&sandbox, id, "pay").await;
    sandbox.webhooks_idle().await;

    let (signature, raw) = deliveries.recv().await.unwrap();
    assert!(verify_webhook(&raw, &signature, SECRET));
    assert!(!verify_webhook(&raw, &signature, "whsec_other"));
    let event = parse_webhook_event(&raw).unwrap();
    assert!(event.id.starts_with("evt_"));
    let completed = event.checkout_completed().unwrap();
    assert_eq!(completed.checkout_id, id);
    assert_eq!(completed.request_id.as_deref(), Some("hook-1"));
    assert_eq!(completed.metadata["user_id"], "u_1");
    assert_eq!(completed.customer_email.as_deref(), Some("ana@example.com"));
    assert!(completed.order_id.unwrap().starts_with("ord_"));
    assert_eq!(event.object["product"]["object"], "product");

    let stats = sandbox.stats();
    assert_eq!((stats.webhook_events, stats.webhooks_delivered), (1, 1));
    assert!(deliveries.try_recv().is_err(), "exactly one delivery");
    let (_, http_stats) = get_json(&sandbox, "/sandbox/stats").await;
    assert_eq!(http_stats["webhooks"]["delivered"], 1);
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_same_event_again_until_it_answers() {
    let (url, mut deliveries) = receiver(2).await;
    let sandbox = start_sandbox(merchant(Some(&url))).await;
    let (_, checkout) = create(&sandbox, &body("retry-1")).await;
    click(&sandbox, checkout["id"].as_str().unwrap(), "pay").await;
    sandbox.webhooks_idle().await;
    let bodies: Vec<Bytes> = (0..3).map(|_| deliveries.try_recv().unwrap().1).collect();
    assert!(deliveries.try_recv().is_err());
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "retries resend the same event"
    );
    let stats = sandbox.stats();
    assert_eq!(stats.webhook_failed_attempts, 2);
    assert_eq!(stats.webhooks_delivered, 1);
    assert_eq!(stats.webhooks_given_up, 0);
}

#[tokio::test]
async fn an_endpoint_that_never_answers_is_given_up_on() {
    let (url, mut deliveries) = receiver(usize::MAX).await;
    let sandbox = start_sandbox(merchant(Some(&url))).await;
    let (_, checkout) = create(&sandbox, &body("dead-1")).await;
    click(&sandbox, checkout["id"].as_str().unwrap(), "pay").await;
    sandbox.webhooks_idle().await;
    let stats = sandbox.stats();
    assert_eq!(stats.webhook_failed_attempts, u64::from(WEBHOOK_ATTEMPTS));
    assert_eq!((stats.webhooks_delivered, stats.webhooks_given_up), (0, 1));
    let mut received = 0;
    while deliveries.try_recv().is_ok() {
        received += 1;
    }
    assert_eq!(received, WEBHOOK_ATTEMPTS);
}

#[tokio::test]
async fn expire_marks_it_expired_and_sends_nothing_and_cancel_changes_nothing() {
    let (url, mut deliveries) = receiver(0).await;
    let sandbox = start_sandbox(merchant(Some(&url))).await;
    let (_, checkout) = create(&sandbox, &body("exp-1")).await;
    let id = checkout["id"].as_str().unwrap();

    let cancelled = click(&sandbox, id, "cancel").await;
    assert_eq!(cancelled.status(), 200);
    assert!(cancelled.text().await.unwrap().contains("nothing was paid"));
    let (_, now) = get_json(&sandbox, &format!("/v1/checkouts?checkout_id={id}")).await;
    assert_eq!(now["status"], "pending");

    let expired = click(&sandbox, id, "expire").await;
    assert_eq!(expired.status(), 200);
    let (_, now) = get_json(&sandbox, &format!("/v1/checkouts?checkout_id={id}")).await;
    assert_eq!(now["status"], "expired");
    assert!(now.get("order").is_none());
    assert_eq!(
        click(&sandbox, id, "pay").await.status(),
        StatusCode::CONFLICT
    );
    sandbox.webhooks_idle().await;
    assert_eq!(sandbox.stats().webhook_events, 0);
    assert!(deliveries.try_recv().is_err());
}

#[tokio::test]
async fn the_customer_comes_back_as_a_full_customer_entity_or_as_its_id() {
    let sandbox = start_sandbox(merchant(None)).await;
    let (_, checkout) = create(&sandbox, &body("cust-1")).await;
    let customer = &checkout["customer"];
    for field in [
        "id",
        "mode",
        "object",
        "email",
        "country",
        "created_at",
        "updated_at",
    ] {
        assert!(
            customer.get(field).is_some(),
            "customer lacks {field}: {customer}"
        );
    }
    assert_eq!(customer["email"], "ana@example.com");
    let mut by_id = body("cust-2");
    by_id["customer"] = json!({"id": "cust_existing"});
    let (_, checkout) = create(&sandbox, &by_id).await;
    assert_eq!(checkout["customer"], "cust_existing");
}
