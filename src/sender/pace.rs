//! When the next request may start: at a fixed rate (governor, as before `rate: auto`), at
//! the adapted rate of `rate: auto` ([`Adaptive`]), or as soon as a slot is free.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::adaptive::{Adaptive, Signal};
use crate::campaign::{RateLimit, SendSettings};
use crate::sync::lock;

pub(super) enum Pace {
    Unlimited,
    Fixed(DefaultDirectRateLimiter),
    Auto(Mutex<Auto>),
}

pub(super) struct Auto {
    adaptive: Adaptive,
    /// The start given to the last request; the next is one interval later.
    next: Instant,
}

/// What the progress line and the summary say of the rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateNow {
    pub per_second: f64,
    /// `rate: auto` is still searching (slow start, or climbing back after a cut).
    pub adapting: bool,
}

impl Pace {
    pub(super) fn new(settings: &SendSettings) -> Pace {
        match settings.rate {
            RateLimit::Unlimited => Pace::Unlimited,
            RateLimit::Fixed(rate) => {
                let limiter = rate.per.checked_div(rate.count).and_then(|period| {
                    let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
                    Some(RateLimiter::direct(
                        Quota::with_period(period)?.allow_burst(burst),
                    ))
                });
                limiter.map_or(Pace::Unlimited, Pace::Fixed)
            }
            RateLimit::Auto => {
                let now = Instant::now();
                Pace::Auto(Mutex::new(Auto {
                    adaptive: Adaptive::new(settings.max_rate.per_second(), now),
                    next: now,
                }))
            }
        }
    }

    /// Waits for this request's start. `rate: auto` spaces starts evenly at the current rate;
    /// after a pause the next start is now, not a burst of the starts the pause held back.
    pub(super) async fn ready(&self) {
        match self {
            Pace::Unlimited => {}
            Pace::Fixed(limiter) => limiter.until_ready().await,
            Pace::Auto(auto) => {
                let start = {
                    let mut auto = lock(auto);
                    let start = auto.next.max(Instant::now());
                    let interval = Duration::from_secs_f64(1.0 / auto.adaptive.rate());
                    auto.next = start + interval;
                    start
                };
                tokio::time::sleep_until(start.into()).await;
            }
        }
    }

    /// How the attempt started at `sent` ended.
    pub(super) fn observe(&self, sent: Instant, signal: Signal) {
        if let Pace::Auto(auto) = self {
            lock(auto).adaptive.on_answer(sent, Instant::now(), signal);
        }
    }

    /// The adapted rate; `None` for a fixed rate or none.
    pub(super) fn now(&self) -> Option<RateNow> {
        let Pace::Auto(auto) = self else { return None };
        let auto = lock(auto);
        Some(RateNow {
            per_second: auto.adaptive.rate(),
            adapting: auto.adaptive.adapting(Instant::now()),
        })
    }
}
