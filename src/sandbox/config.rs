//! What a sandbox run simulates. Checked once at start so a typo in a fault flag fails loudly
//! instead of silently rehearsing something else.

use std::str::FromStr;
use std::time::Duration;

use crate::cli::SandboxArgs;

/// Faults and auth for one sandbox. `Default` is a well-behaved API that accepts any key.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// Accept only this exact `x-api-key`; `None` accepts any non-empty key.
    pub key: Option<String>,
    /// The same seed and the same request order give the same faults.
    pub seed: u64,
    /// Share of API requests answered 500.
    pub fail_rate: f64,
    /// Share of API requests answered 429 with `Retry-After`.
    pub throttle_rate: f64,
    /// Seconds sent in `Retry-After` on every 429.
    pub retry_after: u64,
    /// Request-rate ceiling (token bucket: bursts of up to N, N per second sustained).
    pub max_rps: Option<u32>,
    /// Delay added before every API answer.
    pub latency: Option<Latency>,
    /// At most this many API requests are served (their latency) at once; the rest queue.
    pub workers: Option<u32>,
    /// Share of POSTs whose connection is closed before anything is created.
    pub drop_rate: f64,
    /// Share of POSTs whose checkout is created, then the connection closed unanswered.
    pub drop_after_create_rate: f64,
    /// Every POST gets the same 400, as when a campaign names a product that does not exist.
    pub reject_all: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            key: None,
            seed: 1,
            fail_rate: 0.0,
            throttle_rate: 0.0,
            retry_after: 1,
            max_rps: None,
            latency: None,
            workers: None,
            drop_rate: 0.0,
            drop_after_create_rate: 0.0,
            reject_all: false,
        }
    }
}

/// A sandbox setting that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub(super) fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(message.into())
    }
}

impl SandboxConfig {
    /// The random faults share one draw per request, so their rates must fit in 100% together;
    /// that way `--fail-rate 0.1` means one request in ten, whatever else is switched on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rates = [
            ("fail rate", self.fail_rate),
            ("throttle rate", self.throttle_rate),
            ("drop rate", self.drop_rate),
            ("drop-after-create rate", self.drop_after_create_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError(format!(
                    "{name} must be between 0 and 1, got {rate}"
                )));
            }
        }
        let total: f64 = rates.iter().map(|(_, rate)| rate).sum();
        if total > 1.0 + 1e-9 {
            return Err(ConfigError(format!(
                "fail, throttle, drop and drop-after-create rates add up to {total}, more than 1"
            )));
        }
        if self.workers == Some(0) {
            return Err(ConfigError("workers must be at least 1".into()));
        }
        if self.workers.is_some() && self.latency.is_none() {
            return Err(ConfigError(
                "workers need a latency: each worker takes that long per request".into(),
            ));
        }
        if self.max_rps == Some(0) {
            return Err(ConfigError("max rps must be at least 1".into()));
        }
        if self.key.as_deref() == Some("") {
            return Err(ConfigError("the sandbox key must not be empty".into()));
        }
        Ok(())
    }
}

impl TryFrom<&SandboxArgs> for SandboxConfig {
    type Error = ConfigError;

    fn try_from(args: &SandboxArgs) -> Result<Self, Self::Error> {
        let latency = args
            .latency
            .as_deref()
            .map(str::parse::<Latency>)
            .transpose()?;
        let config = SandboxConfig {
            key: args.key.clone(),
            seed: args.seed,
            fail_rate: args.fail_rate,
            throttle_rate: args.throttle_rate,
            retry_after: args.retry_after,
            max_rps: args.max_rps,
            latency,
            workers: args.workers,
            drop_rate: args.drop_rate,
            drop_after_create_rate: args.drop_after_create_rate,
            reject_all: args.reject_all,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Added delay: the same for every answer, or drawn uniformly from a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    Fixed(Duration),
    Uniform { min: Duration, max: Duration },
}

impl Latency {
    /// `unit` is a draw in [0, 1), so the delay follows the seed like every other fault.
    pub(super) fn sample(self, unit: f64) -> Duration {
        match self {
            Latency::Fixed(delay) => delay,
            Latency::Uniform { min, max } => min + (max - min).mul_f64(unit),
        }
    }
}

/// `20ms`, `1.5s`, `500us`, or a range `5ms..50ms`.
impl FromStr for Latency {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| ConfigError(format!("invalid latency {text:?}: {why}"));
        match text.split_once("..") {
            None => parse_duration(text)
                .map(Latency::Fixed)
                .map_err(|why| bad(&why)),
            Some((min, max)) => {
                let min = parse_duration(min).map_err(|why| bad(&why))?;
                let max = parse_duration(max).map_err(|why| bad(&why))?;
                if min > max {
                    return Err(bad("the range ends before it starts"));
                }
                Ok(Latency::Uniform { min, max })
            }
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim().bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("add a unit: us, ms or s (e.g. 20ms)".to_string());
    }
    crate::campaign::parse_span(text)
}
