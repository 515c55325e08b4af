//! Pre-flight: before the first checkout is created, look up every distinct product and
//! discount code the batch uses, so that a typo or a dead code stops the run with one clear
//! message instead of failing (or worse, silently selling at full price) row by row.
//!
//! What is checked comes in as a [`Demand`] (how many rows carry each value); the lookups go
//! through a [`Lookup`], so that a run can route them through its own rate limiter; what comes
//! out is a [`Report`] of findings: stops (nothing may be sent) and warnings.

use std::collections::HashMap;

use futures::future::BoxFuture;
use indexmap::IndexMap;
use serde::Deserialize;

use crate::api_key::ApiKey;
use crate::sender::{read_at_most, API_KEY_HEADER, MAX_ANSWER};

mod lookups;

/// At most this many distinct products, and as many discount codes, are looked up: one
/// request each. A template that gives every row its own product would otherwise turn the
/// pre-flight into a second batch. The values carried by the most rows go first.
pub const MAX_LOOKUPS: usize = 50;

/// Distinct values counted beyond this are not tracked (memory stays bounded on any input).
const MAX_TRACKED: usize = 10_000;

/// How many rows carry each product, each discount code, and each (code, product) pair.
#[derive(Debug, Default, Clone)]
pub struct Demand {
    products: IndexMap<String, u64>,
    discounts: IndexMap<String, u64>,
    pairs: HashMap<(String, String), u64>,
    untracked_rows: u64,
}

impl Demand {
    /// Counts one row that will be sent with this product and (optional) discount code.
    pub fn add(&mut self, product_id: &str, discount_code: Option<&str>) {
        self.add_rows(product_id, discount_code, 1);
    }

    /// Counts `rows` rows that will be sent with this product and (optional) discount code.
    pub fn add_rows(&mut self, product_id: &str, discount_code: Option<&str>, rows: u64) {
        if rows == 0 {
            return;
        }
        let mut tracked = count(&mut self.products, product_id, rows);
        if let Some(code) = discount_code.filter(|c| !c.is_empty()) {
            tracked &= count(&mut self.discounts, code, rows);
            let pair = (code.to_owned(), product_id.to_owned());
            if let Some(n) = self.pairs.get_mut(&pair) {
                *n += rows;
            } else if self.pairs.len() < MAX_TRACKED {
                self.pairs.insert(pair, rows);
            }
        }
        if !tracked {
            self.untracked_rows += rows;
        }
    }

    /// Counts one row from its rendered request body. A body without a `product_id` counts
    /// nothing: the row is refused before sending anyway.
    pub fn add_body(&mut self, body: &[u8]) {
        #[derive(Deserialize)]
        struct Fields<'a> {
            #[serde(borrow, default)]
            product_id: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            discount_code: Option<std::borrow::Cow<'a, str>>,
        }
        if let Ok(Fields {
            product_id: Some(product),
            discount_code,
        }) = serde_json::from_slice::<Fields>(body)
        {
            self.add(&product, discount_code.as_deref());
        }
    }

    /// True when no row carries anything to look up.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }
}

fn count(map: &mut IndexMap<String, u64>, value: &str, rows: u64) -> bool {
    if let Some(n) = map.get_mut(value) {
        *n += rows;
        true
    } else if map.len() < MAX_TRACKED {
        map.insert(value.to_owned(), rows);
        true
    } else {
        false
    }
}

/// One answer to a lookup: the HTTP status and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends one GET to Creem: `path` segments under the base URL (each percent-encoded by the
/// implementation) and query pairs. `Err` is a transport failure (timeout, connection), in
/// words. Implemented over HTTP by [`HttpLookup`]; a run may wrap it in its rate limiter.
pub trait Lookup: Sync {
    fn get<'a>(
        &'a self,
        path: &'a [&'a str],
        query: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Answer, String>>;
}

/// [`Lookup`] over HTTP with the API key, through the client of [`crate::http`].
pub struct HttpLookup {
    client: reqwest::Client,
    base: reqwest::Url,
    key: reqwest::header::HeaderValue,
}

impl HttpLookup {
    pub fn new(base_url: &str, key: &ApiKey, timeout: std::time::Duration) -> anyhow::Result<Self> {
        let client = crate::http::client_builder(base_url)?
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut key = reqwest::header::HeaderValue::from_str(key.expose()).map_err(|_| {
            anyhow::anyhow!("the API key contains characters a header cannot carry")
        })?;
        key.set_sensitive(true);
        Ok(HttpLookup {
            client,
            base: reqwest::Url::parse(base_url)?,
            key,
        })
    }
}

impl Lookup for HttpLookup {
    fn get<'a>(
        &'a self,
        path: &'a [&'a str],
        query: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let mut url = self.base.clone();
            url.path_segments_mut()
                .map_err(|_| "the base URL cannot carry a path".to_owned())?
                .pop_if_empty()
                .extend(path);
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            let mut response = self
                .client
                .get(url)
                .header(API_KEY_HEADER, self.key.clone())
                .send()
                .await
                .map_err(|e| describe(&e))?;
            let status = response.status().as_u16();
            let body = read_at_most(&mut response, MAX_ANSWER)
                .await
                .map_err(|e| describe(&e))?
                .ok_or_else(|| "the answer is larger than 1 MiB".to_owned())?;
            Ok(Answer { status, body })
        })
    }
}

fn describe(e: &reqwest::Error) -> String {
    if let Some(tls) = crate::http::tls_failure(e) {
        tls
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "connection lost".to_owned()
    }
}

/// Whether a finding stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Nothing may be sent (exit 2).
    Stop,
    /// Worth knowing; the run goes on.
    Warning,
}

/// One thing the pre-flight found, already in words: `what` names the value, `reason` says
/// what is wrong, `rows` how many rows it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub what: String,
    pub reason: String,
    pub rows: u64,
}

impl std::fmt::Display for Finding {
    /// Values come from the CSV and reasons from the server: control characters are escaped
    /// so that neither can rewrite the terminal.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = if self.rows == 1 { "row" } else { "rows" };
        let text = format!("{}: {} ({} {rows})", self.what, self.reason, self.rows);
        for c in text.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// What the pre-flight found, and how much of the demand it covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Products and discount codes looked up.
    pub products_checked: usize,
    pub discounts_checked: usize,
    /// Set when not every distinct value was looked up (the cap, untracked values, or the
    /// pre-flight stopped early): says what was left unchecked.
    pub capped: Option<String>,
}

impl Report {
    /// True when a finding forbids sending.
    pub fn must_stop(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Stop)
    }
}

/// Creem refused the key (401/403): the caller exits 3, as a run does.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the API key was rejected during the pre-flight check (HTTP {status}); nothing was sent. Check CREEM_API_KEY: test keys (creem_test_...) work only on the test host, live keys only with --live")]
pub struct AuthRejected {
    pub status: u16,
}

/// Looks up what `demand` needs through `lookup`; `now` decides which discounts have expired.
pub async fn check(
    demand: &Demand,
    lookup: &dyn Lookup,
    now: jiff::Timestamp,
) -> Result<Report, AuthRejected> {
    lookups::run(demand, lookup, now).await
}

/// Prints `report` for people, one finding per line, prefixed `stop:` or `warning:`.
pub fn print(report: &Report, target: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "pre-flight against {target}: {} product(s) and {} discount code(s) looked up",
        report.products_checked, report.discounts_checked
    )?;
    for finding in &report.findings {
        let label = match finding.severity {
            Severity::Stop => "stop",
            Severity::Warning => "warning",
        };
        writeln!(out, "{label}: {finding}")?;
    }
    if let Some(capped) = &report.capped {
        writeln!(out, "note: {capped}")?;
    }
    Ok(())
}

/// The pre-flight as a command runs it: looks up `demand` through `lookup`, prints the
/// findings to `out` (naming `target`), and says what the command must do next.
/// `Ok(None)`: go on (warnings at most). `Ok(Some(Aborted))`: the key was refused (exit 3,
/// as a run). `Err`: a finding forbids sending (exit 2, nothing sent).
pub async fn gate(
    demand: &Demand,
    lookup: &dyn Lookup,
    target: &str,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<Option<crate::exit::Outcome>> {
    let report = match check(demand, lookup, jiff::Timestamp::now()).await {
        Ok(report) => report,
        Err(refused) => {
            writeln!(out, "stopped: {refused}")?;
            return Ok(Some(crate::exit::Outcome::Aborted));
        }
    };
    print(&report, target, out)?;
    let stops = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Stop)
        .count();
    if stops > 0 {
        anyhow::bail!(
            "the pre-flight found {stops} problem(s) that would stop a run; fix the campaign or the CSV (nothing was sent)"
        );
    }
    Ok(None)
}

/// `check --online`: resolves the host and key as a run does, then runs [`gate`] over HTTP.
pub fn check_online(
    host: &crate::cli::HostArgs,
    key: &crate::cli::KeyArgs,
    demand: &Demand,
    timeout: std::time::Duration,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<Option<crate::exit::Outcome>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let target = crate::target::resolve(host, key).await?;
        let lookup = HttpLookup::new(&target.base_url, &target.key, timeout)?;
        let outcome = gate(demand, &lookup, &target.describe(), out).await;
        if let Some(sandbox) = target.sandbox {
            sandbox.shutdown().await;
        }
        outcome
    })
}
