//! Every kind of sandbox answer validated against Creem's OpenAPI response schemas
//! (tests/data/creem-openapi.json): CheckoutEntity (created, completed with its order, and the
//! webhook's object), ProductEntity, DiscountEntity, and Creem's error shape.

use std::time::Duration;

use creem_batch::sandbox::{MerchantConfig, Sandbox, SandboxConfig};
use serde_json::{json, Value};

const KEY: &str = "creem_test_SCHEMA";

fn openapi() -> Value {
    let text = include_str!("data/creem-openapi.json");
    let mut doc: Value = serde_json::from_str(text).expect("the OpenAPI file is JSON");
    nullable_to_json_schema(&mut doc);
    doc
}

/// OpenAPI 3.0's `nullable: true` is not JSON Schema: it becomes "this, or null".
fn nullable_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                nullable_to_json_schema(child);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                let inner = Value::Object(std::mem::take(map));
                map.insert("anyOf".into(), json!([{"type": "null"}, inner]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

/// A validator for one component schema, resolving its `$ref`s inside the same document.
fn validator(doc: &Value, component: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    root["$ref"] = json!(format!("#/components/schemas/{component}"));
    jsonschema::validator_for(&root).expect("the component schema compiles")
}

/// Creem's error answers (the OpenAPI file has no schema for them).
fn error_shape() -> jsonschema::Validator {
    jsonschema::validator_for(&json!({
        "type": "object",
        "required": ["trace_id", "status", "error", "message", "timestamp"],
        "properties": {
            "trace_id": {"type": "string"},
            "status": {"type": "integer"},
            "error": {"type": "string"},
            "message": {"type": "array", "items": {"type": "string"}},
            "timestamp": {"type": "integer"},
        },
    }))
    .unwrap()
}

#[track_caller]
fn assert_valid(validator: &jsonschema::Validator, what: &str, instance: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} breaks its schema: {errors:#?}\n{instance:#}"
    );
}

#[tokio::test]
async fn every_sandbox_answer_matches_the_openapi_schemas() {
    let doc = openapi();
    let checkout_schema = validator(&doc, "CheckoutEntity");
    let product_schema = validator(&doc, "ProductEntity");
    let discount_schema = validator(&doc, "DiscountEntity");
    let error_schema = error_shape();

    // A webhook endpoint that accepts everything, to validate the event's object too.
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sandbox = Sandbox::start_with(
        "127.0.0.1:0".parse().unwrap(),
        SandboxConfig::default(),
        MerchantConfig {
            webhook: Some(creem_batch::sandbox::Webhook {
                url: hook,
                secret: "whsec_schema".into(),
            }),
            webhook_backoff: Duration::from_millis(5),
            ..MerchantConfig::default()
        },
    )
    .await
    .unwrap();
    let base = sandbox.base_url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let answer = http
                .get(path)
                .header("x-api-key", KEY)
                .send()
                .await
                .unwrap();
            answer.json::<Value>().await.unwrap()
        }
    };

    let bodies = [
        json!({"product_id": "prod_6tW66i0oZM7w1qXReHJrwg", "request_id": "s-1",
               "customer": {"email": "a@example.com"}, "metadata": {"k": "v", "n": 3},
               "custom_fields": [{"type": "text", "key": "company", "label": "Company", "text": {"max_length": 20, "min_length": 1}},
                                 {"type": "checkbox", "key": "tos", "label": "Terms", "checkbox": {"label": "I agree"}}],
               "success_url": "https://shop.example/ok", "discount_code": "SPRING2026", "units": 2}),
        json!({"product_id": "prod_3kF9aQz7LmN2pR8sTvWx1y", "customer": {"id": "cust_1"}}),
        json!({"product_id": "prod_9bC2dE4fG6hJ8kL0mN1pQ3"}),
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        let answer = http
            .post(format!("{base}/v1/checkouts"))
            .header("x-api-key", KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let created: Value = answer.json().await.unwrap();
        assert_valid(&checkout_schema, "a created checkout", &created);
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let paid = http
            .post(format!("{base}/checkout/{id}/pay"))
            .send()
            .await
            .unwrap();
        assert!(paid.status().is_redirection() || paid.status().is_success());
        let now = get(format!("{base}/v1/checkouts?checkout_id={id}")).await;
        assert_eq!(now["status"], "completed");
        assert_valid(&checkout_schema, "a completed checkout", &now);
    }
    sandbox.webhooks_idle().await;
    for _ in &ids {
        let event = events.try_recv().expect("one event per paid checkout");
        assert_valid(
            &checkout_schema,
            "a webhook event's object",
            &event["object"],
        );
    }

    for product in [
        "prod_3kF9aQz7LmN2pR8sTvWx1y",
        "prod_6tW66i0oZM7w1qXReHJrwg",
        "prod_9bC2dE4fG6hJ8kL0mN1pQ3",
    ] {
        let by_path = get(format!("{base}/v1/products/{product}")).await;
        assert_valid(&product_schema, "a product", &by_path);
        let by_query = get(format!("{base}/v1/products?product_id={product}")).await;
        assert_valid(&product_schema, "a product", &by_query);
    }
    for code in ["EDU50", "NGO40", "LAUNCH20", "SPRING2026", "WINBACK30"] {
        let discount = get(format!("{base}/v1/discounts?discount_code={code}")).await;
        assert_valid(&discount_schema, "a discount", &discount);
    }

    let errors = [
        get(format!("{base}/v1/products/prod_missing")).await,
        get(format!("{base}/v1/discounts?discount_code=MISSING")).await,
        get(format!("{base}/v1/checkouts?checkout_id=ch_missing")).await,
        http.post(format!("{base}/v1/checkouts"))
            .header("x-api-key", KEY)
            .json(&json!({"units": 0}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
        http.get(format!("{base}/v1/products/x"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    ];
    for error in &errors {
        assert_valid(&error_schema, "an error", error);
    }
}

#[test]
fn the_schema_check_catches_a_bad_answer() {
    // Without this the test above could pass by validating nothing.
    let doc = openapi();
    let checkout = validator(&doc, "CheckoutEntity");
    let bad_customer = json!({"id": "ch_1", "mode": "test", "object": "checkout",
        "status": "pending", "product": "prod_1", "customer": {"email": "a@example.com"}});
    assert!(
        !checkout.is_valid(&bad_customer),
        "customer must be an id or a CustomerEntity"
    );
    assert!(!checkout.is_valid(&json!({"id": "ch_1"})));
    let product = validator(&doc, "ProductEntity");
    assert!(!product.is_valid(&json!({"id": "prod_1", "default_success_url": 3})));
}
