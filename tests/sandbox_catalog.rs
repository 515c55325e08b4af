//! The sandbox's catalogue (products and discount codes, looked up as Creem's entities), its
//! optional strictness, and the flags that set them.

use clap::Parser;
use creem_batch::cli::{Cli, Command};
use creem_batch::sandbox::MerchantConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::http::{client, create, get_json, start_sandbox};

fn body(request_id: &str) -> Value {
    json!({
        "product_id": "prod_6tW66i0oZM7w1qXReHJrwg",
        "units": 3,
        "request_id": request_id,
        "discount_code": "SPRING2026",
        "customer": {"email": "ana@example.com"},
        "metadata": {"campaign": "spring"},
        "custom_fields": [{"type": "text", "key": "company", "label": "Company"}],
        "success_url": "https://shop.example/thanks",
    })
}

#[tokio::test]
async fn the_catalogue_answers_products_and_discounts() {
    let sandbox = start_sandbox(MerchantConfig::default()).await;
    let (status, product) = get_json(&sandbox, "/v1/products/prod_3kF9aQz7LmN2pR8sTvWx1y").await;
    assert_eq!(
        (status, product["id"].as_str()),
        (StatusCode::OK, Some("prod_3kF9aQz7LmN2pR8sTvWx1y"))
    );
    let (status, same) = get_json(
        &sandbox,
        "/v1/products?product_id=prod_3kF9aQz7LmN2pR8sTvWx1y",
    )
    .await;
    assert_eq!((status, &same), (StatusCode::OK, &product));
    let (status, missing) = get_json(&sandbox, "/v1/products/prod_unknown").await;
    assert_eq!(
        (status, &missing["message"]),
        (StatusCode::NOT_FOUND, &json!(["Product not found"]))
    );

    let (status, discount) = get_json(&sandbox, "/v1/discounts?discount_code=WINBACK30").await;
    assert_eq!(
        (status, &discount["code"], &discount["status"]),
        (StatusCode::OK, &json!("WINBACK30"), &json!("active"))
    );
    let by_id = format!(
        "/v1/discounts?discount_id={}",
        discount["id"].as_str().unwrap()
    );
    assert_eq!(get_json(&sandbox, &by_id).await.1, discount);
    let (status, _) = get_json(&sandbox, "/v1/discounts?discount_code=NOPE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unauthorised = client()
        .get(format!(
            "{}/v1/products/prod_3kF9aQz7LmN2pR8sTvWx1y",
            sandbox.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sandbox.stats().lookups, 7);
}

#[tokio::test]
async fn strictness_is_on_by_default_like_creem_and_can_be_relaxed() {
    let mut loose = body("strict-1");
    loose["locale"] = json!("de-DE");
    loose["cancel_url"] = json!("https://shop.example/cancel");
    loose["product_id"] = json!("prod_adhoc");

    let lenient = start_sandbox(MerchantConfig {
        reject_unknown_properties: false,
        reject_unknown_products: false,
        ..MerchantConfig::default()
    })
    .await;
    assert_eq!(create(&lenient, &loose).await.0, StatusCode::OK);

    let strict = start_sandbox(MerchantConfig::default()).await;
    let (status, error) = create(&strict, &loose).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let messages = error["message"].as_array().unwrap();
    assert!(
        messages.contains(&json!("property locale should not exist")),
        "{error}"
    );
    assert!(
        messages.contains(&json!("property cancel_url should not exist")),
        "{error}"
    );

    let mut unknown_product = body("strict-2");
    unknown_product["product_id"] = json!("prod_adhoc");
    let (status, error) = create(&strict, &unknown_product).await;
    assert_eq!(
        (status, &error["message"]),
        (StatusCode::NOT_FOUND, &json!(["Product not found"]))
    );
    // Every field of CreateCheckoutRequest passes.
    let mut full = body("strict-3");
    full["affiliate_code"] = json!("partner-7");
    full["custom_price"] = json!(1500);
    assert_eq!(
        create(&strict, &full).await.0,
        StatusCode::OK,
        "{:?}",
        create(&strict, &full).await.1
    );
}

fn sandbox_flags(flags: &[&str]) -> Result<MerchantConfig, String> {
    let mut argv = vec!["creem-batch", "sandbox"];
    argv.extend_from_slice(flags);
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    let Command::Sandbox(args) = cli.command else {
        panic!("not the sandbox command");
    };
    MerchantConfig::try_from(&args).map_err(|e| e.to_string())
}

#[test]
fn merchant_flags_set_the_catalogue_webhook_and_strictness() {
    let merchant = sandbox_flags(&[
        "--webhook-url",
        "http://127.0.0.1:3000/webhook",
        "--webhook-secret",
        "whsec_1",
        "--product",
        "prod_a,price=1000",
        "--product",
        "prod_b",
        "--discount",
        "OLD,status=expired",
        "--lenient",
    ])
    .unwrap();
    assert_eq!(
        merchant.webhook.as_ref().unwrap().url,
        "http://127.0.0.1:3000/webhook"
    );
    assert!(
        !format!("{merchant:?}").contains("whsec_1"),
        "the secret stays out of Debug"
    );
    assert_eq!(merchant.products.len(), 2);
    assert_eq!(merchant.product("prod_a").unwrap().price, 1000);
    assert_eq!(merchant.discount("OLD").unwrap().status, "expired");
    assert!(!merchant.reject_unknown_properties && !merchant.reject_unknown_products);
    let half = sandbox_flags(&["--allow-unknown-products"]).unwrap();
    assert!(half.reject_unknown_properties && !half.reject_unknown_products);

    let default = sandbox_flags(&[]).unwrap();
    assert_eq!(default, MerchantConfig::default());
    assert!(default.reject_unknown_properties && default.reject_unknown_products);
    assert!(default.product("prod_6tW66i0oZM7w1qXReHJrwg").is_some());
    assert!(default.discount("SPRING2026").is_some());

    let error = sandbox_flags(&["--webhook-url", "http://127.0.0.1:1/w"]).unwrap_err();
    assert!(error.contains("--webhook-secret"), "{error}");
    let error = sandbox_flags(&["--discount", "X,status=gone"]).unwrap_err();
    assert!(error.contains("status must be one of"), "{error}");
}
