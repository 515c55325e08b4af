//! The sender against wiremock on 127.0.0.1.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wiremock::matchers::{body_string, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;

fn settings(concurrency: usize, max_attempts: u32) -> SendSettings {
    SendSettings {
        rate: crate::campaign::RateLimit::Unlimited,
        concurrency,
        max_attempts,
        ..SendSettings::default()
    }
}

async fn sender(server: &MockServer, concurrency: usize, max_attempts: u32) -> Sender {
    Sender::new(
        &settings(concurrency, max_attempts),
        &server.uri(),
        &ApiKey::new("creem_test_sender"),
    )
    .unwrap()
}

fn checkout(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "id": id, "status": "pending", "checkout_url": format!("https://creem.io/c/{id}")
    }))
}

#[tokio::test]
async fn a_checkout_is_created_and_sent_with_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkouts"))
        .and(wiremock::matchers::header("x-api-key", "creem_test_sender"))
        .respond_with(checkout("ch_1"))
        .expect(1)
        .mount(&server)
        .await;
    let delivery = sender(&server, 4, 3).await.create("{}".into()).await;
    let Delivery::Created {
        checkout,
        attempts,
        ambiguous,
        ..
    } = delivery
    else {
        panic!("not created: {delivery:?}");
    };
    assert_eq!(
        (checkout.id.as_str(), attempts, ambiguous),
        ("ch_1", 1, false)
    );
}

#[tokio::test]
async fn a_5xx_is_retried_and_the_last_error_is_typed_with_the_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string(r#"{"message":"busy","trace_id":"t"}"#),
        )
        .expect(2)
        .mount(&server)
        .await;
    let delivery = sender(&server, 1, 2).await.create("{}".into()).await;
    let Delivery::Failed {
        error,
        kind,
        attempts,
        ..
    } = &delivery
    else {
        panic!("not failed: {delivery:?}");
    };
    assert_eq!(
        (*kind, *attempts, error.status()),
        (FailureKind::Exhausted, 2, Some(503))
    );
    assert_eq!(
        delivery.error_text(),
        "gave up after 2 attempts: HTTP 503 Service Unavailable: busy (trace_id t)"
    );
}

#[tokio::test]
async fn one_attempt_is_said_in_the_singular() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let delivery = sender(&server, 1, 1).await.create("{}".into()).await;
    assert_eq!(
        delivery.error_text(),
        "gave up after 1 attempt: HTTP 500 Internal Server Error"
    );
}

/// Answers 429 with an absurd `Retry-After` and stops the run as it does, so the test does
/// not wait out the pause.
struct HugeRetryAfter(CancellationToken);

impl Respond for HugeRetryAfter {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.cancel();
        ResponseTemplate::new(429).insert_header("retry-after", "1e20")
    }
}

#[tokio::test]
async fn an_absurd_retry_after_is_capped_and_shown_not_a_panic() {
    let server = MockServer::start().await;
    let sender = sender(&server, 1, 5).await;
    Mock::given(method("POST"))
        .respond_with(HugeRetryAfter(sender.stop.clone()))
        .mount(&server)
        .await;
    let delivery = sender.create("{}".into()).await;
    assert_eq!(delivery, Delivery::NotSent { attempts: 1 });
    let note = sender.pause_note().expect("a pause is on");
    assert!(
        note.starts_with("paused until ") && note.ends_with(": the server asked to wait"),
        "{note}"
    );
    let left = sender.pause.until().expect("a pause is on") - Instant::now();
    assert!(
        left <= retry::MAX_PAUSE && left > Duration::from_secs(500),
        "{left:?}"
    );
}

/// A 429's pause holds `rate: auto`'s schedule as long: no start is given during it.
#[tokio::test]
async fn a_429_holds_the_adaptive_rate_for_its_pause() {
    let server = MockServer::start().await;
    let settings = SendSettings {
        rate: crate::campaign::RateLimit::Auto,
        ..settings(1, 5)
    };
    let sender = Sender::new(&settings, &server.uri(), &ApiKey::new("creem_test_sender")).unwrap();
    Mock::given(method("POST"))
        .respond_with(HugeRetryAfter(sender.stop.clone()))
        .mount(&server)
        .await;
    assert_eq!(sender.pace.held_until(), None);
    sender.create("{}".into()).await;
    let paused = sender.pause.until().expect("a pause is on");
    assert_eq!(sender.pace.held_until(), Some(paused));
}

#[tokio::test]
async fn an_answer_over_the_limit_fails_the_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b' '; MAX_ANSWER + 1]))
        .mount(&server)
        .await;
    let delivery = sender(&server, 1, 3).await.create("{}".into()).await;
    assert!(
        matches!(
            &delivery,
            Delivery::Unusable {
                error: SendError::TooLarge { status: 200 },
                attempts: 1,
                ..
            }
        ),
        "{delivery:?}"
    );
}

#[tokio::test]
async fn the_same_checkout_id_for_two_rows_is_not_a_second_good_link() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(checkout("ch_same"))
        .mount(&server)
        .await;
    let sender = sender(&server, 2, 1).await;
    assert!(matches!(
        sender.create("{}".into()).await,
        Delivery::Created { .. }
    ));
    let second = sender.create("{}".into()).await;
    let Delivery::Unusable { checkout_id, .. } = &second else {
        panic!("counted as created: {second:?}");
    };
    assert_eq!(checkout_id, "ch_same");
    assert!(
        second.error_text().contains("already given to another row"),
        "{}",
        second.error_text()
    );
}

#[tokio::test]
async fn a_redirect_is_final_and_names_where_it_points() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(308)
                .insert_header("location", "https://api.creem.io/v1/checkouts"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let delivery = sender(&server, 1, 5).await.create("{}".into()).await;
    assert!(matches!(
        delivery,
        Delivery::Failed {
            kind: FailureKind::Permanent,
            ..
        }
    ));
    assert!(
        delivery
            .error_text()
            .contains("to https://api.creem.io/v1/checkouts"),
        "{}",
        delivery.error_text()
    );
}

#[tokio::test]
async fn a_row_waiting_for_its_retry_leaves_its_slot_to_another_row() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string("retried"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string("fresh"))
        .respond_with(checkout("ch_fresh"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(checkout("ch_retried"))
        .mount(&server)
        .await;
    // One slot: the second row can only go while the first waits for its retry.
    let sender = sender(&server, 1, 2).await;
    let first = sender.create("retried".into());
    let second = async {
        // Starts once the first row holds the slot.
        tokio::task::yield_now().await;
        sender.create("fresh".into()).await
    };
    let (first, _) = tokio::join!(first, second);
    assert!(
        matches!(first, Delivery::Created { attempts: 2, .. }),
        "{first:?}"
    );
    let order: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(order, ["retried", "fresh", "retried"]);
}

#[tokio::test]
async fn a_stopped_sender_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(checkout("ch_1"))
        .expect(0)
        .mount(&server)
        .await;
    let sender = sender(&server, 1, 1).await;
    sender.stop.cancel();
    assert_eq!(
        sender.create("{}".into()).await,
        Delivery::NotSent { attempts: 0 }
    );
}

#[test]
fn recent_ids_forget_the_oldest() {
    let mut ids = RecentIds::default();
    assert!(!ids.seen_before("a"));
    assert!(ids.seen_before("a"));
    for i in 0..RECENT_IDS {
        ids.seen_before(&i.to_string());
    }
    assert!(!ids.seen_before("a"), "forgotten after {RECENT_IDS} others");
    assert!(ids.order.len() <= RECENT_IDS);
}

#[test]
fn order_id_from_an_object_or_a_string() {
    let checkout = |order: serde_json::Value| Checkout {
        order: Some(order),
        ..Checkout::default()
    };
    assert_eq!(
        checkout(serde_json::json!({"id": "ord_1", "amount": 5})).order_id(),
        Some("ord_1".to_owned())
    );
    assert_eq!(
        checkout(serde_json::json!("ord_2")).order_id(),
        Some("ord_2".to_owned())
    );
    assert_eq!(checkout(serde_json::Value::Null).order_id(), None);
}

#[tokio::test]
async fn rate_auto_counts_a_429_and_sends_slower_after_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(checkout("ch_1"))
        .mount(&server)
        .await;
    let settings = SendSettings {
        rate: crate::campaign::RateLimit::Auto,
        ..settings(1, 3)
    };
    let sender = Sender::new(&settings, &server.uri(), &ApiKey::new("creem_test_sender")).unwrap();
    let start = sender.rate_now().expect("auto has a rate");
    assert_eq!(start.per_second, 10.0);
    assert!(start.adapting);
    let delivery = sender.create("{}".into()).await;
    assert!(
        matches!(delivery, Delivery::Created { attempts: 2, .. }),
        "{delivery:?}"
    );
    assert_eq!(sender.counters.throttled.load(Ordering::Relaxed), 1);
    let after = sender.rate_now().unwrap().per_second;
    assert!(after < 10.0, "{after}");
}

#[tokio::test]
async fn a_fixed_rate_reports_no_adapted_rate() {
    let server = MockServer::start().await;
    let settings = SendSettings {
        rate: crate::campaign::RateLimit::Fixed(crate::campaign::Rate {
            count: 10,
            per: Duration::from_secs(1),
        }),
        ..settings(1, 1)
    };
    let sender = Sender::new(&settings, &server.uri(), &ApiKey::new("creem_test_sender")).unwrap();
    assert_eq!(sender.rate_now(), None);
}
