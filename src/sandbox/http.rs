//! Routes and handlers. Nothing is logged per request, and no lock is held across an await.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::conn::DropSwitch;
use super::faults::Fault;
use super::state::{
    bump, json_headers, ok_json, PostInFlight, Shared, BODY_LIMIT, REJECT_ALL_MESSAGE,
};
use super::store::STATUSES;
use super::{lookup, page, validate};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/checkouts", post(create_checkout).get(get_checkout))
        .route("/sandbox/checkouts/{id}/status", post(set_status))
        .route("/sandbox/stats", get(stats))
        .route("/v1/products", get(lookup::product_lookup))
        .route("/v1/products/{id}", get(lookup::product_lookup))
        .route("/v1/discounts", get(lookup::discount))
        .route("/checkout/{id}", get(page::show))
        .route("/checkout/{id}/pay", post(page::pay))
        .route("/checkout/{id}/cancel", post(page::cancel))
        .route("/checkout/{id}/expire", post(page::expire))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            count_request,
        ))
        .with_state(shared)
}

async fn count_request(State(s): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    bump(&s.counters.requests);
    next.run(request).await
}

async fn create_checkout(State(s): State<Arc<Shared>>, request: Request) -> Response {
    bump(&s.counters.posts);
    let _in_flight = PostInFlight::start(&s.counters);
    let arrival_ns = s.record_post();
    let (parts, body) = request.into_parts();
    let fault = s.misbehave(arrival_ns, &parts.headers).await;
    let waited = (s.started.elapsed().as_micros() as u64).saturating_sub(arrival_ns / 1000);
    s.post_waits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(waited);
    let fault = match fault {
        Ok(fault) => fault,
        Err(refusal) => return s.refuse(refusal),
    };
    let cut = || {
        if let Some(ConnectInfo(switch)) = parts.extensions.get::<ConnectInfo<DropSwitch>>() {
            switch.trip();
        }
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    };
    if fault == Fault::Drop {
        bump(&s.counters.dropped);
        return cut();
    }
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => {
            return s.error(
                StatusCode::PAYLOAD_TOO_LARGE,
                [format!("request body larger than {BODY_LIMIT} bytes")],
            )
        }
    };
    if s.reject_all {
        return s.error(StatusCode::BAD_REQUEST, [REJECT_ALL_MESSAGE]);
    }
    let checkout = match validate::checkout_request(&body, s.merchant.reject_unknown_properties) {
        Ok(checkout) => checkout,
        Err(messages) => return s.error(StatusCode::BAD_REQUEST, messages),
    };
    if s.merchant.reject_unknown_products && s.merchant.product(&checkout.product_id).is_none() {
        return s.error(StatusCode::NOT_FOUND, ["Product not found"]);
    }
    // `misbehave` has checked that the key is there and not empty.
    let key = parts
        .headers
        .get("x-api-key")
        .and_then(|key| key.to_str().ok())
        .unwrap_or_default();
    let json = s.store.create(checkout, &s.base_url, key);
    bump(&s.counters.created);
    if fault == Fault::DropAfterCreate {
        bump(&s.counters.dropped_after_create);
        return cut();
    }
    ok_json(json)
}

async fn get_checkout(
    State(s): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    bump(&s.counters.gets);
    let arrival_ns = s.started.elapsed().as_nanos() as u64;
    if let Err(refusal) = s.misbehave(arrival_ns, &headers).await {
        return s.refuse(refusal);
    }
    let id = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "checkout_id")
            .map(|(_, id)| id.into_owned())
    });
    match id.filter(|id| !id.is_empty()) {
        None => s.error(StatusCode::BAD_REQUEST, ["checkout_id must be a string"]),
        Some(id) => match s.store.get(&id) {
            Some(json) => ok_json(json),
            None => s.error(StatusCode::NOT_FOUND, ["Checkout not found"]),
        },
    }
}

/// `POST /sandbox/checkouts/{id}/status` with `{"status": "completed"}`: plays the customer
/// (or time) moving a checkout on, for rehearsing `status`. No key needed.
async fn set_status(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let status = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("status")?.as_str().map(str::to_owned));
    let Some(status) = status.filter(|st| STATUSES.contains(&st.as_str())) else {
        return s.error(
            StatusCode::BAD_REQUEST,
            ["status must be one of the following values: pending, processing, completed, expired"],
        );
    };
    match s.store.set_status(&id, &status) {
        Some(json) => ok_json(json),
        None => s.error(StatusCode::NOT_FOUND, ["Checkout not found"]),
    }
}

async fn stats(State(s): State<Arc<Shared>>) -> Response {
    let c = &s.counters;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let body = json!({
        "requests": get(&c.requests),
        "posts": get(&c.posts),
        "gets": get(&c.gets),
        "created": get(&c.created),
        "throttled": get(&c.throttled),
        "failed": get(&c.failed),
        "rejected": get(&c.rejected),
        "dropped": get(&c.dropped),
        "dropped_after_create": get(&c.dropped_after_create),
        "lookups": get(&c.lookups),
        "webhooks": {
            "events": get(&s.webhooks.events),
            "delivered": get(&s.webhooks.delivered),
            "failed_attempts": get(&s.webhooks.failed_attempts),
            "given_up": get(&s.webhooks.given_up),
        },
        "peak_posts_in_flight": get(&c.peak_posts_in_flight),
        "duplicates": s.store.per_request_id(2),
        "post_rate": rate_summary(&s.post_times.lock().unwrap_or_else(|e| e.into_inner())),
        "post_wait_ms": median_ms(&s.post_waits.lock().unwrap_or_else(|e| e.into_inner())),
    });
    (StatusCode::OK, json_headers(), body.to_string()).into_response()
}

/// The median of the POSTs' waits (latency, and the queue for a worker), in ms.
fn median_ms(micros: &[u64]) -> serde_json::Value {
    let mut sorted = micros.to_vec();
    sorted.sort_unstable();
    match sorted.get(sorted.len() / 2) {
        Some(&median) => json!({"p50": median as f64 / 1000.0, "count": sorted.len()}),
        None => json!({"count": 0}),
    }
}

/// How evenly POSTs arrived, from the sandbox's own clock: the achieved rate between the
/// first and the last, and the most that arrived within any one second (a sliding window),
/// which is what a rate limiter promises to bound.
fn rate_summary(micros: &[u64]) -> serde_json::Value {
    let (Some(first), Some(last)) = (micros.first(), micros.last()) else {
        return json!({"count": 0});
    };
    let span = (last - first) as f64 / 1e6;
    let mut max_in_second = 0;
    let mut start = 0;
    for (end, t) in micros.iter().enumerate() {
        while t - micros[start] >= 1_000_000 {
            start += 1;
        }
        max_in_second = max_in_second.max(end - start + 1);
    }
    json!({
        "count": micros.len(),
        "first_to_last_seconds": span,
        "achieved_per_second": if span > 0.0 { (micros.len() - 1) as f64 / span } else { 0.0 },
        "max_in_any_second": max_in_second,
    })
}

/// Creem answers unknown routes the NestJS way: 404 "Cannot METHOD /path".
async fn not_found(State(s): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    s.error(
        StatusCode::NOT_FOUND,
        [format!("Cannot {method} {}", uri.path())],
    )
}

#[cfg(test)]
mod tests {
    use super::rate_summary;

    #[test]
    fn rate_summary_counts_the_busiest_second() {
        // 0.0 s, 0.5 s, 0.9 s, 1.2 s, 3.0 s: the busiest one-second window holds three.
        let summary = rate_summary(&[0, 500_000, 900_000, 1_200_000, 3_000_000]);
        assert_eq!(summary["max_in_any_second"], 3);
        assert_eq!(summary["count"], 5);
        assert_eq!(summary["achieved_per_second"], 4.0 / 3.0);
        assert_eq!(rate_summary(&[])["count"], 0);
    }
}
