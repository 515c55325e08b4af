//! `checkout.completed` events, shaped and signed like Creem's, POSTed to `--webhook-url`.
//! A failed delivery is retried with a doubling pause, as Creem retries a failing endpoint, so
//! a receiver's idempotence (the same event id twice) can be rehearsed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Notify;

use super::catalog::stable_id;
use super::merchant::{MerchantConfig, Webhook, WEBHOOK_ATTEMPTS};
use super::shapes::now_ms;
use super::state::bump;
use crate::signature::{webhook_signature, CHECKOUT_COMPLETED, WEBHOOK_SIGNATURE_HEADER};

/// How long one delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(super) struct WebhookCounters {
    /// Events made (one per paid checkout).
    pub events: AtomicU64,
    /// Deliveries the endpoint answered with 2xx.
    pub delivered: AtomicU64,
    /// Attempts that failed (no connection, a timeout, or a non-2xx answer).
    pub failed_attempts: AtomicU64,
    /// Events given up on after every attempt failed.
    pub given_up: AtomicU64,
    /// Events still being delivered, and a wake-up for whoever waits until there are none.
    in_flight: AtomicU64,
    idle: Notify,
}

impl WebhookCounters {
    /// Returns once every event made so far is delivered or given up on.
    pub async fn idle(&self) {
        loop {
            // Registered before the check, so a delivery ending in between still wakes us.
            let woken = self.idle.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            woken.await;
        }
    }

    fn finish(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// The event for a paid checkout: the checkout as the API answers it, with its product
/// expanded to a `ProductEntity` when the catalogue knows it, as Creem's events carry it.
pub(super) fn completed_event(
    checkout: &Value,
    merchant: &MerchantConfig,
    base_url: &str,
) -> Value {
    let mut object = checkout.clone();
    if let Some(product) = checkout["product"]
        .as_str()
        .and_then(|id| merchant.product(id))
    {
        object["product"] = product.entity(base_url);
    }
    let checkout_id = checkout["id"].as_str().unwrap_or("");
    json!({
        "id": stable_id("evt_", checkout_id),
        "eventType": CHECKOUT_COMPLETED,
        "created_at": now_ms(),
        "object": object,
    })
}

/// Sends `event` in the background; the page answers at once, as Creem's does.
pub(super) fn deliver(
    client: reqwest::Client,
    hook: Webhook,
    backoff: Duration,
    event: &Value,
    counters: Arc<WebhookCounters>,
) {
    bump(&counters.events);
    counters.in_flight.fetch_add(1, Ordering::SeqCst);
    // Serialised once: the signature covers these exact bytes, and every retry resends them.
    let body = event.to_string();
    let signature = webhook_signature(body.as_bytes(), &hook.secret);
    tokio::spawn(async move {
        let mut pause = backoff;
        for attempt in 1..=WEBHOOK_ATTEMPTS {
            let sent = client
                .post(&hook.url)
                .timeout(DELIVERY_TIMEOUT)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(WEBHOOK_SIGNATURE_HEADER, &signature)
                .body(body.clone())
                .send()
                .await;
            if sent.is_ok_and(|answer| answer.status().is_success()) {
                bump(&counters.delivered);
                counters.finish();
                return;
            }
            bump(&counters.failed_attempts);
            if attempt < WEBHOOK_ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
        }
        bump(&counters.given_up);
        counters.finish();
    });
}
