//! Every body the example campaigns produce is one Creem accepts: validated against
//! `CreateCheckoutRequest` from Creem's OpenAPI file with unknown properties forbidden.

use super::*;

/// Creem's request schema, strict: no property outside the ones it lists. The SDK (npm
/// `creem` 1.13.0) also has `custom_price` and `affiliate_code`, which the April 2026
/// OpenAPI file lacks; they are added as the SDK types them.
fn strict_request_schema() -> serde_json::Value {
    let text = include_str!("../../tests/data/creem-openapi.json");
    let openapi: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut schemas = openapi["components"]["schemas"].clone();
    let request = &mut schemas["CreateCheckoutRequest"]["properties"];
    request["custom_price"] = serde_json::json!({"type": "integer", "minimum": 0});
    request["affiliate_code"] = serde_json::json!({"type": "string"});
    for name in [
        "CreateCheckoutRequest",
        "CustomerRequestEntity",
        "CustomFieldRequestEntity",
        "TextFieldConfig",
        "CheckboxFieldConfig",
    ] {
        schemas[name]["additionalProperties"] = false.into();
    }
    serde_json::json!({
        "$ref": "#/components/schemas/CreateCheckoutRequest",
        "components": {"schemas": schemas},
    })
}

#[test]
fn every_example_body_is_a_create_checkout_request() {
    let validator = jsonschema::validator_for(&strict_request_schema()).unwrap();
    // The check itself: a top-level `locale` is refused.
    let refused = serde_json::json!({"product_id": "prod_1", "locale": "fr"});
    assert!(!validator.is_valid(&refused));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let mut campaigns = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        campaigns += 1;
        let mut batch = Batch::open(Campaign::load(&path).unwrap()).unwrap();
        let mut bodies = 0;
        while let Some(plan) = batch.next_row().unwrap() {
            if let RowPlan::Ready { request, .. } = plan {
                let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                let errors: Vec<String> = validator
                    .iter_errors(&body)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{}: {body}: {errors:?}", path.display());
                bodies += 1;
            }
        }
        assert!(bodies > 0, "{}", path.display());
    }
    assert!(campaigns >= 4, "{campaigns}");
}
