//! What every request shares: the faults, the store, the counters, and Creem's error shape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::config::SandboxConfig;
use super::faults::{splitmix64, Ceiling, Fault, Faults};
use super::merchant::MerchantConfig;
use super::store::Store;
use super::webhook::WebhookCounters;

/// Larger bodies are refused with 413; a real checkout body is well under 10 KiB.
pub(super) const BODY_LIMIT: usize = 1 << 20;

pub(super) const REJECT_ALL_MESSAGE: &str = "product_id must be a valid product";

#[derive(Default)]
pub(super) struct Counters {
    pub requests: AtomicU64,
    pub posts: AtomicU64,
    pub gets: AtomicU64,
    pub created: AtomicU64,
    pub throttled: AtomicU64,
    pub failed: AtomicU64,
    pub rejected: AtomicU64,
    pub dropped: AtomicU64,
    pub dropped_after_create: AtomicU64,
    /// Product and discount lookups.
    pub lookups: AtomicU64,
    /// Checkout POSTs being handled right now, and the most there ever were at once: what a
    /// client's concurrency bound looks like from the server.
    pub posts_in_flight: AtomicU64,
    pub peak_posts_in_flight: AtomicU64,
}

/// Counts one checkout POST as in flight until it is dropped (whichever way the handler ends).
pub(super) struct PostInFlight<'a>(&'a Counters);

impl<'a> PostInFlight<'a> {
    pub fn start(counters: &'a Counters) -> PostInFlight<'a> {
        let now = counters.posts_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters
            .peak_posts_in_flight
            .fetch_max(now, Ordering::SeqCst);
        PostInFlight(counters)
    }
}

impl Drop for PostInFlight<'_> {
    fn drop(&mut self) {
        self.0.posts_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(super) struct Shared {
    pub base_url: String,
    key: Option<String>,
    pub reject_all: bool,
    retry_after: HeaderValue,
    faults: Faults,
    ceiling: Option<Ceiling>,
    /// `workers`: a request holds one while its latency runs.
    workers: Option<tokio::sync::Semaphore>,
    pub store: Store,
    pub counters: Counters,
    pub merchant: Arc<MerchantConfig>,
    pub templates: minijinja::Environment<'static>,
    pub webhook_client: reqwest::Client,
    pub webhooks: Arc<WebhookCounters>,
    pub started: Instant,
    /// Arrival of every checkout POST in µs since `started`, in arrival order.
    pub post_times: Mutex<Vec<u64>>,
    /// How long each checkout POST waited for its answer's latency (and a worker), in µs.
    pub post_waits: Mutex<Vec<u64>>,
    trace_salt: u64,
    traces: AtomicU64,
}

impl Shared {
    pub fn new(
        config: SandboxConfig,
        merchant: MerchantConfig,
        base_url: String,
    ) -> Result<Self, reqwest::Error> {
        let salt: u64 = rand::random();
        let merchant = Arc::new(merchant);
        Ok(Shared {
            merchant: merchant.clone(),
            templates: super::page::templates(),
            webhook_client: webhook_client(&merchant)?,
            webhooks: Arc::default(),
            base_url,
            reject_all: config.reject_all,
            retry_after: HeaderValue::from(config.retry_after),
            faults: Faults::new(&config),
            ceiling: config.max_rps.map(Ceiling::new),
            workers: config
                .workers
                .map(|k| tokio::sync::Semaphore::new(k as usize)),
            key: config.key,
            store: Store::new(salt, merchant),
            counters: Counters::default(),
            started: Instant::now(),
            post_times: Mutex::new(Vec::new()),
            post_waits: Mutex::new(Vec::new()),
            trace_salt: splitmix64(salt),
            traces: AtomicU64::new(0),
        })
    }

    /// Returns the arrival time in ns since start, for the rate ceiling.
    pub(super) fn record_post(&self) -> u64 {
        let mut times = self.post_times.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = self.started.elapsed();
        times.push(elapsed.as_micros() as u64);
        elapsed.as_nanos() as u64
    }

    pub(super) fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let given = headers.get("x-api-key").map(HeaderValue::as_bytes);
        let problem = match (given, &self.key) {
            (None, _) => "missing x-api-key header",
            (Some(b""), _) => "empty x-api-key header",
            (Some(given), Some(key)) if given != key.as_bytes() => "invalid API key",
            _ => return Ok(()),
        };
        Err(Refusal::Unauthorized(problem))
    }

    /// Latency, auth, the rate ceiling and the random 429/500 apply to every API request; the
    /// caller handles the drops, which only make sense for POST.
    pub(super) async fn misbehave(
        &self,
        arrival_ns: u64,
        headers: &HeaderMap,
    ) -> Result<Fault, Refusal> {
        let admitted = self.ceiling.as_ref().is_none_or(|c| c.admit(arrival_ns));
        let draw = self.faults.draw();
        if let Some(delay) = draw.delay {
            // With workers, the latency is service time: a request waits for a free worker.
            let _worker = match &self.workers {
                Some(workers) => workers.acquire().await.ok(),
                None => None,
            };
            tokio::time::sleep(delay).await;
        }
        self.authorize(headers)?;
        match draw.fault {
            _ if !admitted => Err(Refusal::Throttled("rate limit exceeded")),
            Fault::Throttle => Err(Refusal::Throttled("too many requests")),
            Fault::Fail => Err(Refusal::Failed),
            fault => Ok(fault),
        }
    }

    pub(super) fn refuse(&self, refusal: Refusal) -> Response {
        match refusal {
            Refusal::Unauthorized(problem) => self.error(StatusCode::UNAUTHORIZED, [problem]),
            Refusal::Throttled(message) => self.too_many_requests(message),
            Refusal::Failed => {
                bump(&self.counters.failed);
                self.error(StatusCode::INTERNAL_SERVER_ERROR, ["internal server error"])
            }
        }
    }

    pub(super) fn too_many_requests(&self, message: &str) -> Response {
        bump(&self.counters.throttled);
        let mut response = self.error(StatusCode::TOO_MANY_REQUESTS, [message]);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, self.retry_after.clone());
        response
    }

    /// Creem's error shape: `{trace_id, status, error, message: [..], timestamp}`.
    pub(super) fn error<M: ToString>(
        &self,
        status: StatusCode,
        messages: impl IntoIterator<Item = M>,
    ) -> Response {
        if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
            bump(&self.counters.rejected);
        }
        let messages: Vec<String> = messages.into_iter().map(|m| m.to_string()).collect();
        let body = json!({
            "trace_id": self.trace_id(),
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
            "message": messages,
            "timestamp": SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        });
        (status, json_headers(), body.to_string()).into_response()
    }

    pub(super) fn trace_id(&self) -> String {
        let n = self.traces.fetch_add(1, Ordering::Relaxed);
        let a = splitmix64(self.trace_salt ^ n);
        let b = splitmix64(a);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }
}

/// A receiver on this machine is reached directly, whatever `HTTP_PROXY` says: a rehearsal's
/// endpoint is usually local, and a proxy would not reach it.
fn webhook_client(merchant: &MerchantConfig) -> Result<reqwest::Client, reqwest::Error> {
    let local = merchant.webhook.as_ref().is_some_and(|hook| {
        url::Url::parse(&hook.url).is_ok_and(|url| match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        })
    });
    let builder = reqwest::Client::builder();
    if local { builder.no_proxy() } else { builder }.build()
}

/// Why an API request is answered before its body is looked at.
pub(super) enum Refusal {
    Unauthorized(&'static str),
    Throttled(&'static str),
    Failed,
}

pub(super) fn json_headers() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )]
}

pub(super) fn ok_json(json: Bytes) -> Response {
    (StatusCode::OK, json_headers(), json).into_response()
}
