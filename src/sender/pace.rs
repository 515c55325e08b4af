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
    Auto {
        /// Boxed: the adaptive state is many times the size of the other variants.
        state: Box<Mutex<Auto>>,
        /// One waiter at a time, in arrival order: the first in line sleeps until its start,
        /// the others wait for their turn without waking.
        turn: tokio::sync::Mutex<()>,
    },
}

pub(super) struct Auto {
    adaptive: Adaptive,
    /// The start given to the last request; the next is one interval (at the rate of then)
    /// later. Starts are given one at a time, never booked ahead: a start booked at the
    /// slow-start rate would keep that rate's spacing long after the rate rose.
    last: Option<Instant>,
    /// No start before this: a 429's `Retry-After` pause, batch-wide.
    held_until: Option<Instant>,
}

impl Auto {
    /// Gives a start at `now` and returns `None`, or returns when the next start is due. A
    /// start a little late keeps the schedule (timer overshoot is not lost rate); after an
    /// idle spell or a pause, the schedule starts again from now, with no burst.
    fn start_now(&mut self, now: Instant) -> Option<Instant> {
        if let Some(until) = self.held_until.filter(|until| *until > now) {
            return Some(until);
        }
        let interval = Duration::from_secs_f64(1.0 / self.adaptive.rate());
        let due = self.last.map_or(now, |last| last + interval);
        if due > now {
            return Some(due);
        }
        self.last = Some(if now - due < interval { due } else { now });
        None
    }
}

/// What the progress line and the summary say of the rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateNow {
    pub per_second: f64,
    /// `rate: auto` is still searching (slow start, or climbing back after a cut).
    pub adapting: bool,
    /// What the server was found to take, once it pushed back ([`Adaptive::found`]).
    pub found: Option<f64>,
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
                Pace::Auto {
                    state: Box::new(Mutex::new(Auto {
                        adaptive: Adaptive::new(settings.max_rate.per_second(), now),
                        last: None,
                        held_until: None,
                    })),
                    turn: tokio::sync::Mutex::new(()),
                }
            }
        }
    }

    /// Waits for this request's start. `rate: auto` spaces starts evenly at the current rate;
    /// after a pause the next start is now, not a burst of the starts the pause held back.
    pub(super) async fn ready(&self) {
        match self {
            Pace::Unlimited => {}
            Pace::Fixed(limiter) => limiter.until_ready().await,
            Pace::Auto { state, turn } => {
                let _turn = turn.lock().await;
                loop {
                    let due = lock(state).start_now(Instant::now());
                    match due {
                        Some(due) => tokio::time::sleep_until(due.into()).await,
                        None => break,
                    }
                }
            }
        }
    }

    /// Gives no start before `until` (a 429's pause). Without it, the waiters given starts
    /// during the pause would all go at its end, one burst into the server that just said no.
    pub(super) fn hold(&self, until: Instant) {
        if let Pace::Auto { state, .. } = self {
            let held = &mut lock(state).held_until;
            *held = Some(held.map_or(until, |held| held.max(until)));
        }
    }

    /// When `rate: auto` gives its next start again, while held.
    #[cfg(test)]
    pub(super) fn held_until(&self) -> Option<Instant> {
        match self {
            Pace::Auto { state, .. } => lock(state).held_until,
            _ => None,
        }
    }

    /// How the attempt started at `sent` ended.
    pub(super) fn observe(&self, sent: Instant, signal: Signal) {
        if let Pace::Auto { state, .. } = self {
            lock(state).adaptive.on_answer(sent, Instant::now(), signal);
        }
    }

    /// The adapted rate; `None` for a fixed rate or none.
    pub(super) fn now(&self) -> Option<RateNow> {
        let Pace::Auto { state, .. } = self else {
            return None;
        };
        let auto = lock(state);
        let now = Instant::now();
        Some(RateNow {
            per_second: auto.adaptive.rate(),
            adapting: auto.adaptive.adapting(now),
            found: auto.adaptive.found(now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(now: Instant) -> Auto {
        Auto {
            adaptive: Adaptive::new(100.0, now),
            last: None,
            held_until: None,
        }
    }

    #[test]
    fn starts_are_given_one_at_a_time_never_booked_ahead() {
        let t0 = Instant::now();
        let mut pace = auto(t0);
        let interval = Duration::from_millis(100); // the start rate, 10/s
        assert_eq!(pace.start_now(t0), None, "the first start is now");
        // Waiters asking before the next start is due all hear the same time: nothing is
        // booked for them, so a rate that rises meanwhile spaces them at the new rate.
        assert_eq!(pace.start_now(t0), Some(t0 + interval));
        assert_eq!(pace.start_now(t0 + interval / 2), Some(t0 + interval));
        // A start a little late keeps the schedule...
        assert_eq!(pace.start_now(t0 + interval + interval / 10), None);
        assert_eq!(
            pace.start_now(t0 + interval + interval / 10),
            Some(t0 + 2 * interval)
        );
        // ...and after an idle spell the schedule restarts from now, with no burst.
        let later = t0 + 10 * interval;
        assert_eq!(pace.start_now(later), None);
        assert_eq!(pace.start_now(later), Some(later + interval));
    }

    #[test]
    fn no_start_is_given_during_a_pause_and_after_it_they_are_spaced_again() {
        let t0 = Instant::now();
        let mut pace = auto(t0);
        let interval = Duration::from_millis(100);
        assert_eq!(pace.start_now(t0), None);
        let until = t0 + Duration::from_secs(1);
        pace.held_until = Some(until);
        // Waiters that wake during the pause are sent to its end...
        for waiting in [interval, 5 * interval, 9 * interval] {
            assert_eq!(pace.start_now(t0 + waiting), Some(until));
        }
        // ...where one goes, and the next only an interval later: no burst.
        assert_eq!(pace.start_now(until), None);
        assert_eq!(pace.start_now(until), Some(until + interval));
    }
}
