//! Creem's answer shapes built from what the store keeps: the `CustomerEntity`, the
//! `CustomField`s and the `OrderEntity` of a checkout. Ids are derived (from the email, from
//! the checkout id) so that nothing more needs storing per checkout.

use serde_json::{json, Value};

use super::catalog::stable_id;
use super::merchant::MerchantConfig;

pub(super) fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().max(0) as u64
}

pub(super) fn rfc3339(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

/// Creem answers `customer` as a full CustomerEntity when it was given an email, or as the id
/// it was given.
pub(super) fn customer_entity(customer: Option<&Value>, created_ms: u64) -> Option<Value> {
    let customer = customer?;
    if let Some(id) = customer.get("id").and_then(Value::as_str) {
        return Some(Value::from(id));
    }
    let email = customer.get("email")?.as_str()?;
    let at = rfc3339(created_ms);
    Some(json!({
        "id": stable_id("cust_", &email.to_lowercase()),
        "mode": "test",
        "object": "customer",
        "email": email,
        "country": "US",
        "created_at": at,
        "updated_at": at,
    }))
}

/// The request's `CustomFieldRequestEntity`s as the `CustomField`s a checkout answers with.
pub(super) fn custom_fields(requested: Option<&Value>) -> Option<Value> {
    let fields = requested?.as_array()?;
    let answered = fields
        .iter()
        .map(|f| {
            let mut field = json!({
                "type": f["type"],
                "key": f["key"],
                "label": f["label"],
                "optional": f.get("optional").and_then(Value::as_bool).unwrap_or(false),
            });
            if let Some(text) = f.get("text").and_then(Value::as_object) {
                let mut out = serde_json::Map::new();
                if let Some(max) = text.get("max_length").filter(|v| v.is_number()) {
                    out.insert("max_length".into(), max.clone());
                }
                if let Some(min) = text.get("min_length").filter(|v| v.is_number()) {
                    out.insert("minimum_length".into(), min.clone());
                }
                field["text"] = Value::Object(out);
            }
            if let Some(label) = f.pointer("/checkbox/label").and_then(Value::as_str) {
                field["checkbox"] = json!({ "label": label });
            }
            field
        })
        .collect();
    Some(Value::Array(answered))
}

/// The order a paid checkout carries (an `OrderEntity`), priced from the catalogue.
pub(super) fn order(
    merchant: &MerchantConfig,
    checkout: &Value,
    paid_at_ms: u64,
    discount: Option<&str>,
) -> Value {
    let id = checkout["id"].as_str().unwrap_or("");
    let product_id = checkout["product"].as_str().unwrap_or("");
    let units = checkout["units"].as_u64().unwrap_or(1);
    let product = merchant.product(product_id);
    let (price, currency) = product
        .as_deref()
        .map_or((2900, "EUR"), |p| (p.price, p.currency.as_str()));
    let sub_total = price.saturating_mul(units);
    let discount = discount.and_then(|code| merchant.discount(code));
    let discount = discount.as_deref();
    let discount_amount = discount.map_or(0, |d| sub_total / 100 * d.percentage.min(100));
    let amount = sub_total - discount_amount;
    let at = rfc3339(paid_at_ms);
    let mut order = json!({
        "id": order_id(id),
        "mode": "test",
        "object": "order",
        "product": product_id,
        "amount": amount,
        "sub_total": sub_total,
        "tax_amount": 0,
        "discount_amount": discount_amount,
        "amount_due": amount,
        "amount_paid": amount,
        "currency": currency,
        "status": "paid",
        "type": "onetime",
        "created_at": at,
        "updated_at": at,
    });
    if let Some(customer) = customer_id(checkout) {
        order["customer"] = Value::from(customer);
    }
    if let Some(d) = discount {
        order["discount"] = Value::from(stable_id("dis_", &d.code));
    }
    order
}

/// A checkout's order id: the checkout's own digits, so no second id needs storing.
pub(super) fn order_id(checkout_id: &str) -> String {
    format!(
        "ord_{}",
        checkout_id.strip_prefix("ch_").unwrap_or(checkout_id)
    )
}

/// `customer.id`, or `customer` when it is only the id.
pub(super) fn customer_id(checkout: &Value) -> Option<String> {
    let customer = &checkout["customer"];
    customer
        .as_str()
        .or_else(|| customer["id"].as_str())
        .map(str::to_owned)
}
