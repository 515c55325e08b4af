//! Local stand-in for the Creem checkout API: `creem-batch sandbox`, `run --sandbox` and the
//! tests talk to it instead of the real test host, so a batch can be rehearsed offline, with
//! the failures it must survive on demand.
//!
//! Endpoints (the `/v1` ones need a non-empty `x-api-key`, or exactly the configured key):
//! - `POST /v1/checkouts`: validates the body like Creem (400 with Creem's error shape
//!   `{trace_id, status, error, message: [..], timestamp}`), then answers 200 with a checkout
//!   (`id` `ch_...`, `status` `pending`, `mode` `test`, `checkout_url`, echoed `request_id`...).
//!   Like Creem it does not de-duplicate: the same `request_id` twice makes two checkouts.
//! - `GET /v1/checkouts?checkout_id=ch_...`: the checkout with its current status, or 404.
//! - `POST /sandbox/checkouts/{id}/status` with `{"status": "completed"}` (or `pending`,
//!   `processing`, `expired`): moves a checkout on, as a customer paying would. No key.
//! - `GET /sandbox/stats`: counters as JSON (`requests`, `created`, `throttled`, ... and
//!   `duplicates`, the request_ids that were created more than once). No key.
//! - `GET /v1/products/{id}`, `GET /v1/products?product_id=`, `GET /v1/discounts?discount_code=`:
//!   the catalogue (`MerchantConfig`), as `ProductEntity` / `DiscountEntity`, or 404.
//! - `GET /checkout/{id}`: the page `checkout_url` points to, with Pay, Cancel and Let it
//!   expire. Pay completes the checkout, redirects to `success_url` signed with the key that
//!   created the checkout, and (with a webhook configured) POSTs a signed `checkout.completed`.
//!
//! Faults, all off by default and reproducible from `seed` for the same request order:
//! `fail_rate` answers 500, `throttle_rate` answers 429 with `Retry-After`, `max_rps` answers
//! 429 beyond a token bucket of N per second, `latency` delays answers (with `workers` K, at
//! most K at once: the rest queue, so latency grows with load), `drop_rate` closes the
//! connection without answering or creating anything, `drop_after_create_rate` creates the
//! checkout and then closes without answering (the case that tempts a client into duplicates),
//! and `reject_all` answers every POST with the same 400. The random rates share one draw per
//! request, so each is the share of all API requests that get that fault.

mod catalog;
mod config;
mod conn;
mod faults;
mod http;
mod lookup;
mod merchant;
mod page;
mod shapes;
mod state;
mod store;
mod validate;
mod webhook;

use std::collections::HashMap;
use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use catalog::{default_discounts, default_products, Discount, Product};
pub use config::{ConfigError, Latency, SandboxConfig};
pub use merchant::{MerchantConfig, Webhook, WEBHOOK_ATTEMPTS};

use conn::{DropSwitch, SandboxListener};
use state::Shared;

/// How long `shutdown` waits for requests in flight before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Threads the `sandbox` command answers from: half the cores. Its client always runs on the
/// same machine and needs cores too. Measured on two cores with oha as the client, one
/// thread answered as fast as two or faster: 24,000-25,400 requests/s against 23,500 at
/// concurrency 8, 26,500-28,100 against 27,200-27,800 at 32, 28,100-31,100 against
/// 27,000-27,600 at 64.
pub fn default_threads() -> usize {
    half_of(std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Half of `cores`, at least one.
pub fn half_of(cores: usize) -> usize {
    (cores / 2).max(1)
}

/// A running sandbox server. Dropping it stops the server without waiting.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// A snapshot of what the sandbox has seen since it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SandboxStats {
    /// Every HTTP request, whatever its path or answer.
    pub requests: u64,
    /// `POST /v1/checkouts` requests.
    pub posts: u64,
    /// `GET /v1/checkouts` requests.
    pub gets: u64,
    /// Checkouts created, including those whose answer was then dropped.
    pub created: u64,
    /// 429 answers (random throttling and the `max_rps` ceiling).
    pub throttled: u64,
    /// 500 answers.
    pub failed: u64,
    /// Other 4xx answers: auth, validation, unknown checkout or route.
    pub rejected: u64,
    /// Connections closed before anything was created.
    pub dropped: u64,
    /// Connections closed after the checkout was created.
    pub dropped_after_create: u64,
    /// The most checkout POSTs that were being handled at once.
    pub peak_posts_in_flight: u64,
    /// Checkouts created per `request_id` (checkouts without one are not counted here).
    pub created_per_request_id: HashMap<String, u64>,
    /// Arrival of every `POST /v1/checkouts` since the server started, in arrival order
    /// (microsecond resolution).
    pub post_times: Vec<Duration>,
    /// Product and discount lookups.
    pub lookups: u64,
    /// `checkout.completed` events made (one per paid checkout).
    pub webhook_events: u64,
    /// Webhook deliveries answered 2xx.
    pub webhooks_delivered: u64,
    /// Webhook delivery attempts that failed (each retry counts).
    pub webhook_failed_attempts: u64,
    /// Events given up on after every attempt failed.
    pub webhooks_given_up: u64,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port) and serves on the current tokio runtime, with
    /// the default merchant (the example campaigns' catalogue, no webhook, as strict as Creem).
    pub async fn start(addr: SocketAddr, config: SandboxConfig) -> io::Result<Sandbox> {
        Sandbox::start_with(addr, config, MerchantConfig::default()).await
    }

    /// Like `start`, playing the given merchant account.
    pub async fn start_with(
        addr: SocketAddr,
        config: SandboxConfig,
        merchant: MerchantConfig,
    ) -> io::Result<Sandbox> {
        let invalid = |err: ConfigError| io::Error::new(io::ErrorKind::InvalidInput, err);
        config.validate().map_err(invalid)?;
        merchant.validate().map_err(invalid)?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared =
            Shared::new(config, merchant, format!("http://{addr}")).map_err(io::Error::other)?;
        let shared = Arc::new(shared);
        let app = http::router(shared.clone()).into_make_service_with_connect_info::<DropSwitch>();
        let stop = CancellationToken::new();
        let server = axum::serve(SandboxListener(listener), app)
            .with_graceful_shutdown(stop.clone().cancelled_owned());
        let task = tokio::spawn(server.into_future());
        Ok(Sandbox {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, ready to use as an API base URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn stats(&self) -> SandboxStats {
        let c = &self.shared.counters;
        let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        let post_times = {
            let times = self
                .shared
                .post_times
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            times.iter().map(|&us| Duration::from_micros(us)).collect()
        };
        SandboxStats {
            requests: get(&c.requests),
            posts: get(&c.posts),
            gets: get(&c.gets),
            created: get(&c.created),
            throttled: get(&c.throttled),
            failed: get(&c.failed),
            rejected: get(&c.rejected),
            dropped: get(&c.dropped),
            dropped_after_create: get(&c.dropped_after_create),
            peak_posts_in_flight: get(&c.peak_posts_in_flight),
            created_per_request_id: self.shared.store.per_request_id(1),
            post_times,
            lookups: get(&c.lookups),
            webhook_events: get(&self.shared.webhooks.events),
            webhooks_delivered: get(&self.shared.webhooks.delivered),
            webhook_failed_attempts: get(&self.shared.webhooks.failed_attempts),
            webhooks_given_up: get(&self.shared.webhooks.given_up),
        }
    }

    /// Returns once every webhook event made so far has been delivered or given up on.
    pub async fn webhooks_idle(&self) {
        self.shared.webhooks.idle().await;
    }

    /// Same as the control endpoint; `false` if the checkout or the status is unknown.
    pub fn set_checkout_status(&self, checkout_id: &str, status: &str) -> bool {
        self.shared.store.set_status(checkout_id, status).is_some()
    }

    /// Stops accepting, lets requests in flight finish (up to a few seconds), then returns.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
