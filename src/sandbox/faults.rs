//! Fault decisions. Each request gets a sequence number; its faults are a pure function of
//! (seed, number), so concurrent requests never contend on a shared RNG and a rehearsal with
//! the same seed and request order misbehaves the same way every time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::{Latency, SandboxConfig};

/// What to do with one API request, decided on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    Throttle,
    Fail,
    Drop,
    DropAfterCreate,
}

pub(super) struct Draw {
    pub fault: Fault,
    pub delay: Option<Duration>,
}

pub(super) struct Faults {
    seed: u64,
    /// Upper edges of each fault's slice of [0, 1): one draw picks at most one fault, so every
    /// rate is the share of all requests that get that fault.
    edges: [(f64, Fault); 4],
    latency: Option<Latency>,
    next: AtomicU64,
}

impl Faults {
    pub fn new(config: &SandboxConfig) -> Self {
        let mut edge = 0.0;
        let mut slice = |rate: f64, fault| {
            edge += rate;
            (edge, fault)
        };
        Faults {
            seed: config.seed,
            edges: [
                slice(config.throttle_rate, Fault::Throttle),
                slice(config.fail_rate, Fault::Fail),
                slice(config.drop_rate, Fault::Drop),
                slice(config.drop_after_create_rate, Fault::DropAfterCreate),
            ],
            latency: config.latency,
            next: AtomicU64::new(0),
        }
    }

    pub fn draw(&self) -> Draw {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let pick = unit(self.seed, n, 0);
        let fault = self
            .edges
            .iter()
            .find(|(edge, _)| pick < *edge)
            .map_or(Fault::None, |(_, fault)| *fault);
        let delay = self.latency.map(|l| l.sample(unit(self.seed, n, 1)));
        Draw { fault, delay }
    }
}

/// A uniform draw in [0, 1) for request `n`, independent per `stream`.
fn unit(seed: u64, n: u64, stream: u64) -> f64 {
    let bits = splitmix64(seed ^ splitmix64(n.wrapping_mul(2).wrapping_add(stream)));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// SplitMix64's finaliser: a fixed, well-mixed hash. Written out rather than taken from `rand`
/// because rand does not promise the same stream across versions, and a seed should mean the
/// same rehearsal in every build.
pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `max_rps` ceiling as GCRA (a token bucket in one atomic): bursts of up to N requests,
/// then one every 1/N s. A client that paces itself at N/s never sees a 429, even with jitter.
pub(super) struct Ceiling {
    interval_ns: u64,
    tolerance_ns: u64,
    /// Theoretical arrival time of the next request, in ns since the sandbox started.
    tat_ns: AtomicU64,
}

impl Ceiling {
    pub fn new(max_rps: u32) -> Self {
        let interval_ns = 1_000_000_000 / u64::from(max_rps.max(1));
        Ceiling {
            interval_ns,
            tolerance_ns: interval_ns * u64::from(max_rps.max(1) - 1),
            tat_ns: AtomicU64::new(0),
        }
    }

    pub fn admit(&self, now_ns: u64) -> bool {
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ns);
            if start - now_ns > self.tolerance_ns {
                return false;
            }
            match self.tat_ns.compare_exchange_weak(
                tat,
                start + self.interval_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(current) => tat = current,
            }
        }
    }
}
