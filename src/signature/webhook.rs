//! Webhook signatures and the `checkout.completed` event.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use sha2::Sha256;

use super::digest_matches_hex;

/// The HTTP header that carries a webhook's signature.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "creem-signature";

/// Checks a webhook's `creem-signature` header: hex HMAC-SHA256 of the raw body, keyed with
/// the webhook secret.
///
/// Takes the raw bytes, not parsed JSON: re-serialising would change whitespace or key order
/// and break the signature. The comparison is constant time for the same reason as redirects.
pub fn verify_webhook(raw_body: &[u8], signature_header: &str, secret: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(raw_body);
    let expected: [u8; 32] = mac.finalize().into_bytes().into();
    digest_matches_hex(&expected, signature_header)
}

/// The signature a webhook body should carry (lowercase hex). For tests and local rehearsals.
pub fn webhook_signature(raw_body: &[u8], secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any size");
    mac.update(raw_body);
    hex::encode(mac.finalize().into_bytes())
}

/// The event type of a paid checkout.
pub const CHECKOUT_COMPLETED: &str = "checkout.completed";

/// The envelope every Creem webhook shares. Unknown fields are ignored so that Creem adding
/// fields never breaks reconciliation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WebhookEvent {
    /// `evt_...`; the same event can be delivered more than once (Creem retries), so this is
    /// the key to de-duplicate on.
    pub id: String,
    /// e.g. `checkout.completed`, `subscription.paid`.
    #[serde(rename = "eventType")]
    pub event_type: String,
    /// Milliseconds since the Unix epoch, as Creem sends it. Tolerates a numeric string;
    /// anything else (or nothing) is `None` rather than a reason to drop the event.
    #[serde(default, deserialize_with = "lenient_millis")]
    pub created_at: Option<i64>,
    /// The event's payload (a checkout for `checkout.completed`).
    #[serde(default)]
    pub object: serde_json::Value,
}

/// What a `checkout.completed` event says, reduced to what a merchant needs to match it to
/// one of its rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckoutCompleted {
    /// `object.id` (`ch_...`).
    pub checkout_id: String,
    /// `object.request_id`: the id this tool sent when creating the checkout.
    pub request_id: Option<String>,
    /// `object.order.id` (or `object.order` when Creem sends only the id).
    pub order_id: Option<String>,
    /// `object.customer.id` (or `object.customer` when Creem sends only the id).
    pub customer_id: Option<String>,
    /// `object.customer.email`, when the customer is expanded.
    pub customer_email: Option<String>,
    /// `object.metadata`, as sent. Values are usually strings but Creem allows any JSON.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Parses a webhook body into its envelope. Call [`verify_webhook`] first: parsing says
/// nothing about who sent it.
pub fn parse_webhook_event(raw_body: &[u8]) -> Result<WebhookEvent, serde_json::Error> {
    serde_json::from_slice(raw_body)
}

impl WebhookEvent {
    /// The checkout details if this is a `checkout.completed` event whose object has an id;
    /// `None` for any other event. Missing optional fields are `None` or empty.
    pub fn checkout_completed(&self) -> Option<CheckoutCompleted> {
        if self.event_type != CHECKOUT_COMPLETED {
            return None;
        }
        let obj = self.object.as_object()?;
        let checkout_id = non_empty_str(obj.get("id"))?;
        Some(CheckoutCompleted {
            checkout_id,
            request_id: non_empty_str(obj.get("request_id")),
            order_id: id_of(obj.get("order")),
            customer_id: id_of(obj.get("customer")),
            customer_email: obj
                .get("customer")
                .and_then(|c| non_empty_str(c.get("email"))),
            metadata: obj
                .get("metadata")
                .and_then(|m| m.as_object())
                .cloned()
                .unwrap_or_default(),
        })
    }
}

fn non_empty_str(v: Option<&serde_json::Value>) -> Option<String> {
    v.and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Creem expands related objects in some answers and sends bare ids in others.
pub(crate) fn id_of(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(_) => non_empty_str(v),
        serde_json::Value::Object(o) => non_empty_str(o.get("id")),
        _ => None,
    }
}

fn lenient_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_roundtrip() {
        let body = br#"{"id":"evt_1","eventType":"checkout.completed","object":{}}"#;
        let sig = webhook_signature(body, "whsec_x");
        assert!(verify_webhook(body, &sig, "whsec_x"));
        assert!(verify_webhook(
            body,
            &format!("  {}\n", sig.to_uppercase()),
            "whsec_x"
        ));
        assert!(!verify_webhook(body, &sig, "whsec_y"));
        assert!(!verify_webhook(b"{}", &sig, "whsec_x"));
        assert!(!verify_webhook(body, "", "whsec_x"));
        assert!(!verify_webhook(body, &sig[..63], "whsec_x"));
    }

    #[test]
    fn checkout_completed_tolerates_bare_ids_and_missing_fields() {
        let ev = parse_webhook_event(
            br#"{"id":"evt_1","eventType":"checkout.completed","created_at":"17","object":{"id":"ch_1","order":"ord_1","customer":"cust_1","metadata":null}}"#,
        )
        .unwrap();
        assert_eq!(ev.created_at, Some(17));
        let c = ev.checkout_completed().unwrap();
        assert_eq!(c.checkout_id, "ch_1");
        assert_eq!(c.order_id.as_deref(), Some("ord_1"));
        assert_eq!(c.customer_id.as_deref(), Some("cust_1"));
        assert_eq!(c.customer_email, None);
        assert_eq!(c.request_id, None);
        assert!(c.metadata.is_empty());

        let other =
            parse_webhook_event(br#"{"id":"evt_2","eventType":"subscription.paid"}"#).unwrap();
        assert_eq!(other.created_at, None);
        assert!(other.checkout_completed().is_none());
    }
}
