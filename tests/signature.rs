//! The `signature` library API: webhook signatures and event parsing, and redirect signing.
//! Expected HMACs come from outside the library (python3's hmac module, or the hmac crate
//! used directly).

use creem_batch::signature::{
    parse_webhook_event, redirect_signature, verify_redirect, verify_webhook, webhook_signature,
    CHECKOUT_COMPLETED,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "whsec_test_EXAMPLE";
const BODY: &[u8] = br#"{"id":"evt_5WHHcZPv7VS0YUsberIuOz","eventType":"checkout.completed","created_at":1728734325927,"object":{"id":"ch_4l0N34kxo16AhRKUHFUuXr"}}"#;
/// Recorded with:
/// python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test_EXAMPLE", open("body","rb").read(), hashlib.sha256).hexdigest())'
/// where `body` holds exactly `BODY`.
const BODY_SIG: &str = "5f750fda132d214e6dcd8fbbaea80ee5957fef15be6a729fffc50a0ef9100d59";

fn hmac_hex(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn webhook_known_vector() {
    assert_eq!(hmac_hex(BODY, SECRET), BODY_SIG);
    assert!(verify_webhook(BODY, BODY_SIG, SECRET));
    assert_eq!(webhook_signature(BODY, SECRET), BODY_SIG);
}

#[test]
fn webhook_header_whitespace_and_case_are_tolerated() {
    assert!(verify_webhook(BODY, &format!(" {BODY_SIG}\r\n"), SECRET));
    assert!(verify_webhook(BODY, &BODY_SIG.to_uppercase(), SECRET));
}

#[test]
fn webhook_tampered_body_is_rejected() {
    let tampered = String::from_utf8(BODY.to_vec())
        .unwrap()
        .replace("ch_4l0N", "ch_4l0M");
    assert!(!verify_webhook(tampered.as_bytes(), BODY_SIG, SECRET));
    // Even a whitespace change matters: the signature covers the raw bytes.
    let mut spaced = BODY.to_vec();
    spaced.push(b'\n');
    assert!(!verify_webhook(&spaced, BODY_SIG, SECRET));
}

#[test]
fn webhook_wrong_secret_is_rejected() {
    assert!(!verify_webhook(BODY, BODY_SIG, "whsec_test_OTHER"));
    assert!(!verify_webhook(BODY, BODY_SIG, ""));
}

#[test]
fn webhook_garbage_header_is_rejected() {
    for header in [
        "",
        "   ",
        "not-hex",
        &BODY_SIG[..63],
        &BODY_SIG[..62],
        &format!("{BODY_SIG}00"),
        &format!("sha256={BODY_SIG}"),
        &"z".repeat(64),
        "é".repeat(32).as_str(),
    ] {
        assert!(!verify_webhook(BODY, header, SECRET), "{header:?}");
    }
}

/// Modelled on the `checkout.completed` example in Creem's webhook docs.
const CHECKOUT_COMPLETED_EVENT: &str = r#"{
  "id": "evt_5WHHcZPv7VS0YUsberIuOz",
  "eventType": "checkout.completed",
  "created_at": 1728734325927,
  "object": {
    "id": "ch_4l0N34kxo16AhRKUHFUuXr",
    "object": "checkout",
    "request_id": "spring-sale-2026-7f3a9c",
    "order": {
      "id": "ord_4aDwWXjMLpes4Kj4XqNnUA",
      "customer": "cust_1OcIK1GEuVvXZwD19tjq2z",
      "product": "prod_d1AY2Sadk9YAvLI0pj97f",
      "amount": 1000,
      "currency": "EUR",
      "status": "paid",
      "type": "recurring",
      "created_at": "2024-10-12T11:58:33.097Z",
      "updated_at": "2024-10-12T11:58:33.097Z",
      "mode": "test"
    },
    "product": {
      "id": "prod_d1AY2Sadk9YAvLI0pj97f",
      "name": "Monthly",
      "price": 1000,
      "currency": "EUR",
      "image_url": null,
      "mode": "test"
    },
    "customer": {
      "id": "cust_1OcIK1GEuVvXZwD19tjq2z",
      "object": "customer",
      "email": "tester@example.com",
      "name": "Tester Test",
      "country": "NL",
      "mode": "test"
    },
    "subscription": {
      "id": "sub_6pC2lNB6joCRQIZ1aMrTpi",
      "object": "subscription",
      "status": "active",
      "canceled_at": null,
      "metadata": {"userId": "user_123"}
    },
    "custom_fields": [],
    "status": "completed",
    "metadata": {
      "userId": "user_123",
      "source": "landing_page",
      "campaign": "spring-sale-2026",
      "visitCount": 42
    },
    "some_future_field": {"nested": true},
    "mode": "test"
  }
}"#;

#[test]
fn parse_checkout_completed() {
    let event = parse_webhook_event(CHECKOUT_COMPLETED_EVENT.as_bytes()).unwrap();
    assert_eq!(event.id, "evt_5WHHcZPv7VS0YUsberIuOz");
    assert_eq!(event.event_type, CHECKOUT_COMPLETED);
    assert_eq!(event.created_at, Some(1_728_734_325_927));

    let c = event
        .checkout_completed()
        .expect("a checkout.completed event");
    assert_eq!(c.checkout_id, "ch_4l0N34kxo16AhRKUHFUuXr");
    assert_eq!(c.request_id.as_deref(), Some("spring-sale-2026-7f3a9c"));
    assert_eq!(c.order_id.as_deref(), Some("ord_4aDwWXjMLpes4Kj4XqNnUA"));
    assert_eq!(
        c.customer_id.as_deref(),
        Some("cust_1OcIK1GEuVvXZwD19tjq2z")
    );
    assert_eq!(c.customer_email.as_deref(), Some("tester@example.com"));
    assert_eq!(c.metadata["userId"], "user_123");
    assert_eq!(c.metadata["campaign"], "spring-sale-2026");
    assert_eq!(c.metadata["visitCount"], 42);
    assert_eq!(c.metadata.len(), 4);
}

#[test]
fn parse_minimal_checkout_completed() {
    let event = parse_webhook_event(
        br#"{"id":"evt_1","eventType":"checkout.completed","object":{"id":"ch_1"}}"#,
    )
    .unwrap();
    assert_eq!(event.created_at, None);
    let c = event.checkout_completed().unwrap();
    assert_eq!(c.checkout_id, "ch_1");
    assert_eq!(c.request_id, None);
    assert_eq!(c.order_id, None);
    assert_eq!(c.customer_email, None);
    assert!(c.metadata.is_empty());
}

#[test]
fn other_events_are_not_checkouts() {
    let event = parse_webhook_event(
        br#"{"id":"evt_2","eventType":"subscription.paid","created_at":1,"object":{"id":"sub_1","request_id":"x"}}"#,
    )
    .unwrap();
    assert_eq!(event.event_type, "subscription.paid");
    assert!(event.checkout_completed().is_none());
}

#[test]
fn malformed_events_are_errors() {
    assert!(parse_webhook_event(b"not json").is_err());
    assert!(parse_webhook_event(br#"{"eventType":"checkout.completed"}"#).is_err());
    assert!(parse_webhook_event(br#"{"id":"evt_1","type":"checkout.completed"}"#).is_err());
}

#[test]
fn redirect_signature_matches_spec_and_round_trips() {
    let params = [
        ("checkout_id", "ch_1QyIQDw9cbFWdA1ry5Qc6I"),
        ("order_id", "ord_4ucZ7Ts3r7EhSrl5yQE4G6"),
        ("customer_id", "cust_2KaCAtu6l3tpjIr8Nr9XOp"),
        ("subscription_id", "sub_ILWMTY6uBim4EB0uxK6WE"),
        ("product_id", "prod_6tW66i0oZM7w1qXReHJrwg"),
    ];
    let sig = redirect_signature(&params, "creem_test_EXAMPLEKEY");
    assert_eq!(
        sig,
        "5669161bda068ffb691845d1768fe6935deb510f2cb47b76b23167b33d68b0c2"
    );
    let url = format!(
        "https://yourdomain.com/success?checkout_id=ch_1QyIQDw9cbFWdA1ry5Qc6I&order_id=ord_4ucZ7Ts3r7EhSrl5yQE4G6&customer_id=cust_2KaCAtu6l3tpjIr8Nr9XOp&subscription_id=sub_ILWMTY6uBim4EB0uxK6WE&product_id=prod_6tW66i0oZM7w1qXReHJrwg&request_id=&signature={sig}"
    );
    let v = verify_redirect(&url, "creem_test_EXAMPLEKEY").unwrap();
    assert!(v.valid);
    assert_eq!(v.skipped, ["request_id"]);
    assert_eq!(v.checkout_id.as_deref(), Some("ch_1QyIQDw9cbFWdA1ry5Qc6I"));
}
