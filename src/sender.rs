//! Sending requests to Creem: one shared HTTP client, a rate limiter and a concurrency bound
//! that every attempt (retries included) goes through, and the retry policy.
//!
//! Rate and concurrency are separate knobs (as in oha): the limiter decides when a request
//! may start, the semaphore how many may be in flight. A 429 pauses the whole sender, not
//! just the row that got it, because every other row would hit the same wall.
//!
//! Without a rate limit, one thread cannot keep a fast server busy: it spends as long on a
//! request as the server does. So the sender has a lane per sending thread (as oha has a
//! runtime per core): each lane has its own HTTP client and its share of the concurrency
//! bound, and the rate limiter, the pause and the stop are shared by all. A server on the same
//! machine needs cores of its own, so then only half the cores send.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::api_key::ApiKey;
use crate::campaign::SendSettings;

/// Named once: a header name given as text is checked and copied again for every request.
const API_KEY_HEADER: reqwest::header::HeaderName =
    reqwest::header::HeaderName::from_static("x-api-key");

/// The longest wait between two attempts of one row, whatever the backoff says.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The shared sending machinery of one run (or one `status` pass).
pub struct Sender {
    lanes: Vec<Lane>,
    /// `<base>/v1/checkouts`, parsed once: both endpoints live there, and a URL given as text
    /// would be parsed again for every request.
    checkouts_url: reqwest::Url,
    key: HeaderValue,
    limiter: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
    max_attempts: u32,
    /// Set when no new attempt may start (Ctrl-C, auth rejected, systematic failure).
    pub stop: CancellationToken,
    pub counters: Counters,
}

/// What one sending thread owns. A client's pooled connections belong to the runtime that
/// opened them, and a permit given back on one thread must not have to wake another, so
/// neither is shared between threads; the lanes' permits add up to the run's concurrency.
struct Lane {
    http: reqwest::Client,
    in_flight: Semaphore,
    /// Its share of the concurrency bound (the semaphore's permits).
    concurrency: usize,
}

/// The most threads a run sends from (and so the most lanes of a [`Sender`]).
const MAX_SENDING_THREADS: usize = 4;

/// The fewest requests in flight a lane of its own is worth: with fewer, each thread handles
/// few answers per wake-up. Measured on two cores in alternating runs: at concurrency 8 and
/// 16, two threads used 13% and 25% more CPU per request than one, for a rate within the
/// noise (±7%); at 32 the rate was higher in 5 runs of 7.
const MIN_PER_THREAD: usize = 16;

/// A rate above this is left to several threads; one thread sends about 20,000 requests/s
/// on loopback, so a rate below it never waits for the sender.
const ONE_THREAD_RATE: f64 = 5_000.0;

/// How many threads should send with these settings: one per core when the rate is unlimited
/// (or very high), with at least [`MIN_PER_THREAD`] requests in flight each; else one. A
/// server on this machine (the sandbox, a local mock) needs cores of its own, so then half
/// the cores are used: on two cores, one sending thread beside a one-thread sandbox sent
/// 24,000 requests/s at concurrency 32, two threads 19,000 (CPU per request 41 and 53 µs).
pub fn sending_threads(settings: &SendSettings, server_is_local: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads_for(settings, server_is_local, cores)
}

fn threads_for(settings: &SendSettings, server_is_local: bool, cores: usize) -> usize {
    let fast = settings
        .rate
        .is_none_or(|rate| f64::from(rate.count) / rate.per.as_secs_f64() > ONE_THREAD_RATE);
    if !fast {
        return 1;
    }
    let cores = if server_is_local {
        crate::sandbox::half_of(cores)
    } else {
        cores
    };
    cores
        .min(MAX_SENDING_THREADS)
        .min(settings.concurrency / MIN_PER_THREAD)
        .max(1)
}

/// Live numbers for the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    pub attempts: AtomicU64,
    pub retries: AtomicU64,
    pub retrying: AtomicU64,
}

/// How one row ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Creem answered 200 with a checkout.
    Created {
        checkout: Checkout,
        http_status: u16,
        attempts: u32,
        /// Set when an earlier attempt may have created a checkout too (timeout after sending).
        note: String,
    },
    /// Gave up on this row.
    Failed {
        http_status: Option<u16>,
        error: String,
        attempts: u32,
        kind: FailureKind,
    },
    /// Never sent: the run stopped first.
    NotSent { attempts: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Creem refused this row (400, 404, 409, ...): sending it again would fail again.
    Permanent,
    /// The key was refused (401, 403): the whole run must stop.
    Auth,
    /// Retries ran out on 429, 5xx, timeouts or connection errors.
    Exhausted,
    /// The secure connection failed (an untrusted certificate...): the whole run must stop.
    Tls,
}

/// The fields of Creem's checkout object this tool uses; the rest is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Checkout {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub checkout_url: String,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub order: Option<serde_json::Value>,
}

impl Checkout {
    /// The order's id once the checkout is paid: `order` is an expanded object with an `id`,
    /// or just the id.
    pub fn order_id(&self) -> Option<String> {
        crate::signature::id_of(self.order.as_ref())
    }
}

enum Attempt {
    Done(Delivery),
    Retry {
        http_status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
        ambiguous: bool,
    },
}

impl Sender {
    /// A sender with `threads` lanes (see [`sending_threads`]); lane `i` is for thread `i`.
    pub fn new(
        settings: &SendSettings,
        base_url: &str,
        key: &ApiKey,
        threads: usize,
    ) -> anyhow::Result<Sender> {
        let concurrency = settings.concurrency.max(1);
        let threads = threads.clamp(1, concurrency);
        let lanes = (0..threads)
            .map(|i| {
                // The concurrency shared out: 10 over 4 lanes is 3, 3, 2, 2.
                let share = concurrency / threads + usize::from(i < concurrency % threads);
                Ok(Lane {
                    http: http_client(settings, base_url, share)?,
                    in_flight: Semaphore::new(share),
                    concurrency: share,
                })
            })
            .collect::<anyhow::Result<Vec<Lane>>>()?;
        let mut key = HeaderValue::from_str(key.expose()).map_err(|_| {
            anyhow::anyhow!("the API key contains characters a header cannot carry")
        })?;
        key.set_sensitive(true);
        let limiter = settings.rate.map(|rate| {
            let period = rate.per / rate.count;
            let burst = NonZeroU32::new(settings.burst.max(1)).expect("at least 1");
            RateLimiter::direct(
                Quota::with_period(period)
                    .expect("a positive period")
                    .allow_burst(burst),
            )
        });
        Ok(Sender {
            lanes,
            checkouts_url: reqwest::Url::parse(&format!(
                "{}/v1/checkouts",
                base_url.trim_end_matches('/')
            ))?,
            key,
            limiter,
            paused_until: Mutex::new(None),
            max_attempts: settings.max_attempts.max(1),
            stop: CancellationToken::new(),
            counters: Counters::default(),
        })
    }

    /// How many lanes (sending threads) this sender has.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// How many requests `lane` may have in flight.
    pub fn lane_concurrency(&self, lane: usize) -> usize {
        self.lanes[lane].concurrency
    }

    /// Creates one checkout from the thread of `lane`, retrying what is worth retrying.
    pub async fn create(&self, lane: usize, body: Vec<u8>) -> Delivery {
        let body = bytes::Bytes::from(body);
        let lane = &self.lanes[lane];
        self.with_retries(lane, || {
            lane.http
                .post(self.checkouts_url.clone())
                .header(API_KEY_HEADER, self.key.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.clone())
        })
        .await
    }

    /// Fetches one checkout's current state, from the thread of `lane`.
    pub async fn fetch(&self, lane: usize, checkout_id: &str) -> Delivery {
        let lane = &self.lanes[lane];
        self.with_retries(lane, || {
            lane.http
                .get(self.checkouts_url.clone())
                .query(&[("checkout_id", checkout_id)])
                .header(API_KEY_HEADER, self.key.clone())
        })
        .await
    }

    async fn with_retries(
        &self,
        lane: &Lane,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Delivery {
        let mut attempts = 0;
        let mut note = String::new();
        loop {
            self.wait_for_pause().await;
            let permit = tokio::select! {
                permit = lane.in_flight.acquire() => permit.expect("never closed"),
                _ = self.stop.cancelled() => return Delivery::NotSent { attempts },
            };
            if let Some(limiter) = &self.limiter {
                tokio::select! {
                    _ = wait_for_slot(limiter) => {}
                    _ = self.stop.cancelled() => return Delivery::NotSent { attempts },
                }
            }
            if self.stop.is_cancelled() {
                return Delivery::NotSent { attempts };
            }
            attempts += 1;
            self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            let outcome = classify(request().send().await, attempts).await;
            drop(permit);
            match outcome {
                Attempt::Done(Delivery::Created {
                    checkout,
                    http_status,
                    ..
                }) => {
                    return Delivery::Created {
                        checkout,
                        http_status,
                        attempts,
                        note,
                    }
                }
                Attempt::Done(delivery) => return delivery,
                Attempt::Retry {
                    http_status,
                    error,
                    retry_after,
                    ambiguous,
                } => {
                    if ambiguous && note.is_empty() {
                        note = "an earlier attempt timed out or lost its connection after sending; Creem may hold a second checkout for this request_id".to_owned();
                    }
                    if attempts >= self.max_attempts {
                        let error = if note.is_empty() {
                            format!("gave up after {attempts} attempts: {error}")
                        } else {
                            format!("gave up after {attempts} attempts: {error} ({note})")
                        };
                        return Delivery::Failed {
                            http_status,
                            error,
                            attempts,
                            kind: FailureKind::Exhausted,
                        };
                    }
                    let wait = match retry_after {
                        Some(wait) => {
                            self.pause_all(wait);
                            wait
                        }
                        None => backoff(attempts),
                    };
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    self.counters.retrying.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.cancelled() => {}
                    }
                    self.counters.retrying.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Holds every new attempt until `wait` from now (a 429 applies to the whole batch).
    fn pause_all(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().expect("not poisoned");
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    async fn wait_for_pause(&self) {
        loop {
            let until = *self.paused_until.lock().expect("not poisoned");
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.into()) => {}
                        _ = self.stop.cancelled() => return,
                    }
                }
                _ => return,
            }
        }
    }
}

/// The HTTP client of one lane, which keeps up to `connections` connections open.
fn http_client(
    settings: &SendSettings,
    base_url: &str,
    connections: usize,
) -> anyhow::Result<reqwest::Client> {
    Ok(crate::http::client_builder(base_url)?
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        // Creem answers; it does not redirect. Not following saves work on every request.
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Waits until the rate limiter lets one request start.
///
/// governor's own `until_ready` sleeps the whole wait on a timer thread; each wake-up then
/// lands a fraction of a millisecond late, and with `burst: 1` that lateness is never made
/// up, so a batch paced at 50/s achieved about 49/s. Here the coarse part of the wait is
/// slept and the last two milliseconds are spent yielding to other tasks while re-checking,
/// so a request starts within microseconds of its slot. The limiter still decides every
/// start, so the rate + burst ceiling holds exactly as before.
async fn wait_for_slot(limiter: &DefaultDirectRateLimiter) {
    use governor::clock::Clock;
    const SPIN: Duration = Duration::from_millis(2);
    loop {
        match limiter.check() {
            Ok(()) => return,
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                if wait > SPIN {
                    tokio::time::sleep(wait - SPIN).await;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

/// Exponential backoff with jitter: 250 ms, 500 ms, 1 s, ... up to 30 s, each scaled by a
/// random factor in [0.5, 1] so rows that failed together do not retry together.
fn backoff(attempts: u32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    base.min(MAX_BACKOFF)
        .mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

async fn classify(result: reqwest::Result<reqwest::Response>, attempts: u32) -> Attempt {
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            if let Some(error) = crate::http::tls_failure(&e) {
                return Attempt::Done(Delivery::Failed {
                    http_status: None,
                    error,
                    attempts,
                    kind: FailureKind::Tls,
                });
            }
            // A timeout or a connection lost after the request went out is ambiguous: Creem
            // may have created the checkout. A refused connection is not.
            let ambiguous = e.is_timeout() || !e.is_connect();
            return Attempt::Retry {
                http_status: None,
                error: describe_transport_error(&e),
                retry_after: None,
                ambiguous,
            };
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => {
            return Attempt::Retry {
                http_status: Some(status.as_u16()),
                error: describe_transport_error(&e),
                retry_after: None,
                ambiguous: status.is_success(),
            }
        }
    };
    let code = status.as_u16();
    if status.is_success() {
        return match serde_json::from_slice::<Checkout>(&body) {
            Ok(checkout) if !checkout.id.is_empty() => Attempt::Done(Delivery::Created {
                checkout,
                http_status: code,
                attempts,
                note: String::new(),
            }),
            _ => Attempt::Done(Delivery::Failed {
                http_status: Some(code),
                error: format!(
                    "HTTP {code} but the answer is not a checkout (a checkout may exist): {}",
                    snippet(&body)
                ),
                attempts,
                kind: FailureKind::Permanent,
            }),
        };
    }
    let error = describe_api_error(status, &body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Attempt::Retry {
            http_status: Some(code),
            error,
            retry_after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
            ambiguous: false,
        };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Attempt::Retry {
            http_status: Some(code),
            error,
            retry_after,
            ambiguous: false,
        };
    }
    let kind = if matches!(code, 401 | 403) {
        FailureKind::Auth
    } else {
        FailureKind::Permanent
    };
    Attempt::Done(Delivery::Failed {
        http_status: Some(code),
        error,
        attempts,
        kind,
    })
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds >= 0.0 && seconds.is_finite()).then(|| Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Creem's error shape: `{"trace_id", "status", "error", "message": [..] | ".." | missing}`.
#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

/// "HTTP 400 Bad Request: product not found (trace_id abc)" from whatever Creem answered.
pub fn describe_api_error(status: StatusCode, body: &[u8]) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    let mut text = format!("HTTP {} {reason}", status.as_u16());
    match serde_json::from_slice::<ApiError>(body) {
        Ok(api) => {
            let messages = match api.message {
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|m| {
                        m.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| m.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => api.error.unwrap_or_default(),
            };
            if !messages.is_empty() {
                text.push_str(": ");
                text.push_str(&messages);
            }
            if let Some(trace) = api.trace_id {
                text.push_str(&format!(" (trace_id {trace})"));
            }
        }
        Err(_) if !body.is_empty() => {
            text.push_str(": ");
            text.push_str(&snippet(body));
        }
        Err(_) => {}
    }
    text
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(200).collect();
    text.replace(['\n', '\r'], " ")
}

/// Names the failure without echoing the URL's query or any header.
fn describe_transport_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "connection lost while reading the answer"
    } else {
        "connection lost"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_owned()
    } else {
        format!("{what} ({detail})")
    }
}

/// Shared flag set by the first 401/403 or by a run of identical permanent failures.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<BreakerState>,
    /// Set with `state.any_success`: after the first checkout, a created row changes nothing
    /// here, and the sending threads need not take the lock for it.
    any_success: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct BreakerState {
    any_success: bool,
    same_error: u32,
    last_error: String,
    tripped: Option<String>,
}

/// Identical final failures (permanent, or retries run out), with nothing created yet,
/// before the run stops.
pub const SYSTEMATIC_FAILURES: u32 = 10;

impl Breaker {
    /// Records one row's end; returns why the run must stop, the first time it must.
    pub fn record(&self, delivery: &Delivery) -> Option<String> {
        let created = matches!(delivery, Delivery::Created { .. });
        if created && self.any_success.load(Ordering::Relaxed) {
            return None;
        }
        let mut state = self.state.lock().expect("not poisoned");
        if state.tripped.is_some() {
            return None;
        }
        let reason = match delivery {
            Delivery::Created { .. } => {
                state.any_success = true;
                self.any_success.store(true, Ordering::Relaxed);
                None
            }
            Delivery::Failed {
                kind: FailureKind::Auth,
                error,
                ..
            } => Some(key_rejected(error)),
            Delivery::Failed {
                kind: FailureKind::Tls,
                error,
                ..
            } => Some(error.clone()),
            // Retries that ran out count too: a host that refuses every connection must not
            // take 100,000 rows times the retry schedule to give up.
            Delivery::Failed {
                kind: FailureKind::Permanent | FailureKind::Exhausted,
                error,
                ..
            } if !state.any_success => {
                let key = strip_trace(error);
                if key == state.last_error {
                    state.same_error += 1;
                } else {
                    state.last_error = key;
                    state.same_error = 1;
                }
                (state.same_error >= SYSTEMATIC_FAILURES).then(|| {
                    format!(
                        "the first {SYSTEMATIC_FAILURES} rows all failed with the same error, so the run stopped before sending the rest: {error}"
                    )
                })
            }
            _ => None,
        };
        if reason.is_some() {
            state.tripped.clone_from(&reason);
        }
        reason
    }

    pub fn tripped(&self) -> Option<String> {
        self.state.lock().expect("not poisoned").tripped.clone()
    }
}

/// Why a command stops when Creem refuses the key (401/403): every later request would too.
pub fn key_rejected(error: &str) -> String {
    format!(
        "the API key was rejected ({error}); nothing more was sent. Check CREEM_API_KEY: test keys (creem_test_...) work only on the test host, live keys only with --live"
    )
}

/// The same error with a different trace_id is the same error.
fn strip_trace(error: &str) -> String {
    match error.find(" (trace_id ") {
        Some(i) => error[..i].to_owned(),
        None => error.to_owned(),
    }
}

/// Elapsed-time helper shared by the progress display and the summary.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

pub type SharedSender = Arc<Sender>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::Rate;

    fn settings(rate: Option<u32>, concurrency: usize) -> SendSettings {
        SendSettings {
            rate: rate.map(|count| Rate {
                count,
                per: Duration::from_secs(1),
            }),
            concurrency,
            ..SendSettings::default()
        }
    }

    #[test]
    fn several_threads_send_only_without_a_low_rate_limit() {
        let remote = |settings: &SendSettings| threads_for(settings, false, 8);
        assert_eq!(remote(&settings(None, 64)), MAX_SENDING_THREADS);
        assert_eq!(remote(&settings(Some(100_000), 64)), MAX_SENDING_THREADS);
        assert_eq!(remote(&settings(None, 32)), 2, "16 in flight each");
        assert_eq!(remote(&settings(Some(50), 64)), 1);
        assert_eq!(remote(&settings(Some(5_000), 64)), 1);
        assert_eq!(remote(&settings(None, 31)), 1, "16 in flight each");
        assert_eq!(remote(&settings(None, 1)), 1);
        assert_eq!(
            threads_for(&settings(None, 64), false, 2),
            2,
            "one per core"
        );
    }

    #[test]
    fn a_server_on_this_machine_is_left_half_the_cores() {
        assert_eq!(threads_for(&settings(None, 64), true, 8), 4);
        assert_eq!(threads_for(&settings(None, 64), true, 4), 2);
        assert_eq!(threads_for(&settings(None, 64), true, 2), 1);
        assert_eq!(threads_for(&settings(None, 64), true, 1), 1);
    }

    #[test]
    fn lanes_share_out_the_concurrency_bound() {
        let key = ApiKey::new("creem_test_lanes");
        let url = "http://127.0.0.1:9";
        let shares = |concurrency, threads| {
            let sender = Sender::new(&settings(None, concurrency), url, &key, threads).unwrap();
            (0..sender.lanes())
                .map(|lane| sender.lane_concurrency(lane))
                .collect::<Vec<_>>()
        };
        assert_eq!(shares(10, 4), [3, 3, 2, 2]);
        assert_eq!(shares(8, 2), [4, 4]);
        assert_eq!(shares(3, 4), [1, 1, 1], "no lane without a request to send");
        assert_eq!(shares(5, 1), [5]);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        let wait = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn api_errors_in_every_shape() {
        let bad = StatusCode::BAD_REQUEST;
        assert_eq!(
            describe_api_error(
                bad,
                br#"{"trace_id":"t1","status":400,"error":"Bad Request","message":["a","b"]}"#
            ),
            "HTTP 400 Bad Request: a; b (trace_id t1)"
        );
        assert_eq!(
            describe_api_error(bad, br#"{"message":"just one"}"#),
            "HTTP 400 Bad Request: just one"
        );
        assert_eq!(
            describe_api_error(bad, br#"{"error":"Bad Request"}"#),
            "HTTP 400 Bad Request: Bad Request"
        );
        assert_eq!(
            describe_api_error(bad, b"oops"),
            "HTTP 400 Bad Request: oops"
        );
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
        assert_eq!(Checkout::default().order_id(), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= FIRST_BACKOFF && backoff(1) >= FIRST_BACKOFF / 2);
        assert!(backoff(3) >= Duration::from_millis(500));
        assert!(backoff(40) <= MAX_BACKOFF);
    }

    #[test]
    fn breaker_trips_on_ten_identical_permanent_failures_only_before_success() {
        let failed = |trace: &str| Delivery::Failed {
            http_status: Some(400),
            error: format!("HTTP 400 Bad Request: bad product (trace_id {trace})"),
            attempts: 1,
            kind: FailureKind::Permanent,
        };
        let breaker = Breaker::default();
        for i in 0..9 {
            assert_eq!(breaker.record(&failed(&i.to_string())), None);
        }
        assert!(breaker
            .record(&failed("x"))
            .unwrap()
            .contains("first 10 rows"));

        let refused = Delivery::Failed {
            http_status: None,
            error: "gave up after 5 attempts: could not connect (Connection refused)".into(),
            attempts: 5,
            kind: FailureKind::Exhausted,
        };
        let breaker = Breaker::default();
        for _ in 0..9 {
            assert_eq!(breaker.record(&refused), None);
        }
        assert!(breaker.record(&refused).is_some());

        let breaker = Breaker::default();
        breaker.record(&Delivery::Created {
            checkout: Checkout::default(),
            http_status: 200,
            attempts: 1,
            note: String::new(),
        });
        for i in 0..20 {
            assert_eq!(breaker.record(&failed(&i.to_string())), None);
        }
        // More successes (no lock taken for them now), then a refused key: still a stop.
        let created = Delivery::Created {
            checkout: Checkout::default(),
            http_status: 200,
            attempts: 1,
            note: String::new(),
        };
        assert_eq!(breaker.record(&created), None);
        let auth = Delivery::Failed {
            http_status: Some(401),
            error: "HTTP 401 Unauthorized".into(),
            attempts: 1,
            kind: FailureKind::Auth,
        };
        assert!(breaker.record(&auth).is_some());
        assert!(breaker.tripped().is_some());
    }
}
