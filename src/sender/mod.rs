//! Sending requests to Creem: one HTTP client, a rate limiter and a concurrency bound that
//! every attempt (retries included) goes through.
//!
//! Rate and concurrency are separate knobs (as in oha): the limiter decides when a request
//! may start, the semaphore how many may be in flight. A row waiting for its next attempt
//! holds neither, so a fresh row can use the slot meanwhile. A 429 pauses the whole sender,
//! not just the row that got it, because every other row would hit the same wall.

mod adaptive;
mod answer;
mod delivery;
mod pace;
mod pause;
mod retry;
mod transport;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use reqwest::header::{HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use answer::{api_error, Checkout, SendError, MAX_ANSWER};
pub use delivery::{Delivery, FailureKind, MAY_EXIST_TWICE};
pub use pace::RateNow;
pub use retry::{key_rejected, Breaker};

use crate::api_key::ApiKey;
use crate::campaign::SendSettings;
use crate::sync::lock;
use adaptive::Signal;
use answer::{classify, Answer, Parts, Purpose};
use pace::Pace;
use pause::Pause;
pub(crate) use transport::read_at_most;
use transport::{http_client, transport_error, Lost};

/// Named once: a header name given as text is checked and copied again for every request.
pub(crate) const API_KEY_HEADER: reqwest::header::HeaderName =
    reqwest::header::HeaderName::from_static("x-api-key");

/// How many recent checkout ids a run remembers to notice a server that answers every row
/// with the same one.
const RECENT_IDS: usize = 4096;

/// The shared sending machinery of one run (or one `status` pass).
pub struct Sender {
    http: reqwest::Client,
    in_flight: Semaphore,
    concurrency: usize,
    /// `<base>/v1/checkouts`, parsed once: both endpoints live there.
    checkouts_url: reqwest::Url,
    key: HeaderValue,
    pace: Pace,
    pause: Pause,
    max_attempts: u32,
    recent_ids: Mutex<RecentIds>,
    /// Set when no new attempt may start (Ctrl-C, auth rejected, systematic failure).
    pub stop: CancellationToken,
    pub counters: Counters,
}

/// Live numbers for the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    pub attempts: AtomicU64,
    pub retries: AtomicU64,
    pub retrying: AtomicU64,
    /// Answers 429.
    pub throttled: AtomicU64,
}

impl Sender {
    pub fn new(settings: &SendSettings, base_url: &str, key: &ApiKey) -> anyhow::Result<Sender> {
        let concurrency = settings.concurrency.max(1);
        let mut key = HeaderValue::from_str(key.expose()).map_err(|_| {
            anyhow::anyhow!("the API key contains characters a header cannot carry")
        })?;
        key.set_sensitive(true);
        Ok(Sender {
            http: http_client(settings, base_url, concurrency)?,
            in_flight: Semaphore::new(concurrency),
            concurrency,
            checkouts_url: reqwest::Url::parse(&format!(
                "{}/v1/checkouts",
                base_url.trim_end_matches('/')
            ))?,
            key,
            pace: Pace::new(settings),
            pause: Pause::default(),
            max_attempts: settings.max_attempts.max(1),
            recent_ids: Mutex::new(RecentIds::default()),
            stop: CancellationToken::new(),
            counters: Counters::default(),
        })
    }

    /// How many requests may be in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Creates one checkout, retrying what is worth retrying.
    pub async fn create(&self, body: bytes::Bytes) -> Delivery {
        let delivery = self
            .with_retries(Purpose::Create, || {
                self.http
                    .post(self.checkouts_url.clone())
                    .header(API_KEY_HEADER, self.key.clone())
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.clone())
            })
            .await;
        match delivery {
            Delivery::Created {
                checkout,
                attempts,
                ambiguous,
                http_status,
            } if lock(&self.recent_ids).seen_before(&checkout.id) => Delivery::Unusable {
                error: SendError::NotACheckout {
                    status: http_status,
                    why: format!(
                        "checkout id {} was already given to another row of this run",
                        checkout.id
                    ),
                },
                checkout_id: checkout.id,
                attempts,
                ambiguous,
            },
            other => other,
        }
    }

    /// Waits for the rate limiter's next slot, as a request does: the pre-flight's lookups
    /// count against the same budget.
    pub async fn wait_turn(&self) {
        tokio::select! {
            _ = self.pace.ready() => {}
            _ = self.stop.cancelled() => {}
        }
    }

    /// Fetches one checkout's current state.
    pub async fn fetch(&self, checkout_id: &str) -> Delivery {
        self.with_retries(Purpose::Fetch, || {
            self.http
                .get(self.checkouts_url.clone())
                .query(&[("checkout_id", checkout_id)])
                .header(API_KEY_HEADER, self.key.clone())
        })
        .await
    }

    /// The rate `rate: auto` sends at now; `None` for a fixed rate or none.
    pub fn rate_now(&self) -> Option<RateNow> {
        self.pace.now()
    }

    /// "paused until 14:05:09: the server asked to wait", while a pause lasts.
    pub fn pause_note(&self) -> Option<String> {
        self.pause.note()
    }

    async fn with_retries(
        &self,
        purpose: Purpose,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Delivery {
        let mut attempts = 0;
        let mut ambiguous = false;
        loop {
            self.pause.wait(&self.stop).await;
            let permit = tokio::select! {
                permit = self.in_flight.acquire() => permit,
                _ = self.stop.cancelled() => return Delivery::NotSent { attempts },
            };
            let Ok(permit) = permit else {
                return Delivery::NotSent { attempts };
            };
            tokio::select! {
                _ = self.pace.ready() => {}
                _ = self.stop.cancelled() => return Delivery::NotSent { attempts },
            }
            // A 429 seen while this row waited for its start pauses it too.
            self.pause.wait(&self.stop).await;
            if self.stop.is_cancelled() {
                return Delivery::NotSent { attempts };
            }
            attempts += 1;
            self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let answer = self.attempt(request(), purpose).await;
            self.pace.observe(sent, signal(&answer));
            if matches!(answer, Ok((429, _))) {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            }
            // Given back before any wait: a row waiting for its retry holds no slot.
            drop(permit);
            let (error, retry_after) = match answer {
                Ok((http_status, Answer::Checkout(checkout))) => {
                    return Delivery::Created {
                        checkout,
                        http_status,
                        attempts,
                        ambiguous,
                    }
                }
                Ok((_, Answer::Unusable { error, checkout_id })) => {
                    return Delivery::Unusable {
                        error,
                        checkout_id,
                        attempts,
                        ambiguous,
                    }
                }
                Ok((_, Answer::Refused { error, auth })) => {
                    let kind = if auth {
                        FailureKind::Auth
                    } else {
                        FailureKind::Permanent
                    };
                    return Delivery::Failed {
                        error,
                        attempts,
                        kind,
                        ambiguous,
                    };
                }
                Ok((_, Answer::Retry { error, retry_after })) => (error, retry_after),
                Err(Lost {
                    error, tls: true, ..
                }) => {
                    return Delivery::Failed {
                        error,
                        attempts,
                        kind: FailureKind::Tls,
                        ambiguous,
                    };
                }
                Err(Lost {
                    error,
                    ambiguous: this_one,
                    ..
                }) => {
                    ambiguous |= this_one;
                    (error, None)
                }
            };
            if attempts >= self.max_attempts {
                return Delivery::Failed {
                    error,
                    attempts,
                    kind: FailureKind::Exhausted,
                    ambiguous,
                };
            }
            let wait = match retry_after {
                Some(wait) => {
                    // Batch-wide: every other row would hit the same wall.
                    self.pace.hold(self.pause.start(wait));
                    wait
                }
                None => retry::backoff(attempts),
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

    /// One request and its answer, read up to [`MAX_ANSWER`] bytes.
    async fn attempt(
        &self,
        request: reqwest::RequestBuilder,
        purpose: Purpose,
    ) -> Result<(u16, Answer), Lost> {
        let mut response = request.send().await.map_err(|e| Lost {
            // A timeout or a connection lost after the request went out is ambiguous:
            // Creem may have created the checkout. A refused connection is not.
            ambiguous: e.is_timeout() || !e.is_connect(),
            tls: crate::http::tls_failure(&e).is_some(),
            error: transport_error(&e),
        })?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (retry_after, location) = (header(RETRY_AFTER), header(LOCATION));
        let body = read_at_most(&mut response, MAX_ANSWER)
            .await
            .map_err(|e| Lost {
                ambiguous: (200..300).contains(&status),
                tls: false,
                error: transport_error(&e),
            })?;
        let parts = Parts {
            status,
            retry_after: retry_after.as_deref(),
            location: location.as_deref(),
            body: body.as_deref(),
        };
        Ok((status, classify(parts, purpose)))
    }
}

/// What an attempt says about the load on the server.
fn signal(answer: &Result<(u16, Answer), Lost>) -> Signal {
    match answer {
        Ok((429, _)) => Signal::Throttled,
        Ok((_, Answer::Retry { .. })) | Err(_) => Signal::Failed,
        Ok(_) => Signal::Answered,
    }
}

/// The last few thousand checkout ids: a server that gives every row the same id is caught
/// without keeping a million ids.
#[derive(Default)]
struct RecentIds {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl RecentIds {
    fn seen_before(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return true;
        }
        if self.order.len() >= RECENT_IDS {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        false
    }
}

#[cfg(test)]
mod tests;
