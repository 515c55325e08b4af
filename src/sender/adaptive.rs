//! `rate: auto`: a client-side rate that finds what the server takes.
//!
//! The algorithm is CUBIC (Ha, Rhee and Xu 2008; RFC 8312) applied to a request rate, as the
//! AWS SDKs' `adaptive` retry mode does it (botocore's `CubicCalculator`, β = 0.7, C = 0.4):
//! after a congestion signal the rate drops to β × the rate it had, then grows along
//! `C·(t−K)³ + W_max`, fast at first, flat near the rate that was too much, then probing
//! beyond it. Three departures from botocore, each from the TCP literature:
//! - slow start (RFC 5681 §3.1): from 10/s the rate doubles every window while answers stay
//!   clean, instead of sending unpaced until the first 429;
//! - fast convergence (RFC 8312 §4.6): a signal at a lower rate than the last lowers the
//!   plateau too, so an overshoot during slow start is forgotten quickly;
//! - congestion is also a window whose median latency rose well above the lowest window
//!   median seen (the delay signal of TCP Vegas and Netflix's Gradient limiters: a queue is
//!   forming at the server), or whose share of 5xx and timeouts rose.
//!
//! The type is pure: time comes in as arguments, so tests drive it on a simulated clock.

use std::time::{Duration, Instant};

/// Where `rate: auto` starts: safe against any API.
pub const START_RATE: f64 = 10.0;
/// botocore's β: the share of the rate kept after a congestion signal.
const BETA: f64 = 0.7;
/// botocore's C: how fast the curve climbs back, in (requests/s) per s³.
const C: f64 = 0.4;
/// The floor: a server that throttles everything still gets one request a second.
const MIN_RATE: f64 = 1.0;
/// A queue is an early signal, before anything fails: the cut is gentler, at most 0.9 (the
/// backoff ratio of Netflix's AIMD limit), deeper as the queue is longer, down to
/// `QUEUE_DEEPEST` (at β a queue stood; deeper, capacity was lost: benches/README.md).
const QUEUE_BETA: f64 = 0.9;
const QUEUE_DEEPEST: f64 = 0.6;
/// Windows a queue may stand after a cut before the next.
const STANDING_QUEUE: u32 = 8;
/// The shortest window judged; longer when the latency is (one window per round trip).
const MIN_WINDOW: Duration = Duration::from_millis(200);
/// "Well above the lowest seen": a queue of most of a service time is forming (and a busy
/// client machine's scheduling jitter is not mistaken for one).
const LATENCY_TOLERANCE: f64 = 1.75;
/// Jitter on a fast loopback is not a queue.
const LATENCY_SLACK: Duration = Duration::from_millis(10);

/// How one attempt ended, as far as the rate is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An answer that says nothing about load (2xx, 4xx other than 429).
    Answered,
    /// 429.
    Throttled,
    /// 5xx, 408, a timeout or a lost connection.
    Failed,
}

/// The adaptive rate of one run.
#[derive(Debug, Clone)]
pub struct Adaptive {
    rate: f64,
    max_rate: f64,
    floor: f64,
    slow_start: bool,
    /// The rate that was too much, the plateau of the curve, and the curve's origin.
    w_max: f64,
    last_w_max: f64,
    k: f64,
    epoch: Instant,
    /// Signals from requests sent before this moment belong to the last reduction.
    last_cut: Instant,
    window: Window,
    /// Lowest window median latency seen: the unloaded latency.
    base_latency: Option<Duration>,
    /// After a cut for a queue, until the queue is gone.
    draining: Option<Drain>,
    /// Answers (not 429s, not failures) per second over recent windows, smoothed.
    measured: Option<f64>,
    /// The same over the last window alone: at saturation, the server's capacity.
    last_window: Option<f64>,
    /// Long-run share of 5xx and timeouts, to notice it rising.
    failure_share: f64,
    cuts: u64,
    /// Since the first push-back: when, and the answers counted since.
    pushed_back: Option<(Instant, u64)>,
}

#[derive(Debug, Clone)]
struct Window {
    start: Instant,
    answers: u32,
    answered: u32,
    failed: u32,
    latencies: Vec<Duration>,
}

impl Window {
    fn new(start: Instant) -> Window {
        Window {
            start,
            answers: 0,
            answered: 0,
            failed: 0,
            latencies: Vec::new(),
        }
    }
}

impl Adaptive {
    pub fn new(max_rate: f64, now: Instant) -> Adaptive {
        // `max_rate: 30/min` is a valid ceiling below the usual floor.
        let max_rate = max_rate.max(1.0 / 3600.0);
        Adaptive {
            rate: START_RATE.min(max_rate),
            max_rate,
            floor: MIN_RATE.min(max_rate),
            slow_start: true,
            w_max: max_rate,
            last_w_max: 0.0,
            k: 0.0,
            epoch: now,
            last_cut: now,
            window: Window::new(now),
            base_latency: None,
            draining: None,
            measured: None,
            last_window: None,
            failure_share: 0.0,
            cuts: 0,
            pushed_back: None,
        }
    }

    /// Requests per second to send at now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// What the server was found to take: once it pushed back (a 429, a queue, a rising share
    /// of failures), the answers per second it gave since; `None` before any push-back.
    /// Neither the current rate (past the plateau the curve probes above the limit by design)
    /// nor one window (a token bucket lets a burst through) is the server's limit.
    pub fn found(&self, now: Instant) -> Option<f64> {
        let (since, answered) = self.pushed_back?;
        let seconds = now.saturating_duration_since(since).as_secs_f64();
        Some(if seconds >= 1.0 {
            answered as f64 / seconds
        } else {
            self.rate
        })
    }

    /// Still searching: in slow start, or climbing back after a reduction.
    pub fn adapting(&self, now: Instant) -> bool {
        self.slow_start || now.saturating_duration_since(self.epoch).as_secs_f64() < self.k
    }

    /// How many times the rate was cut.
    #[cfg(test)]
    pub fn cuts(&self) -> u64 {
        self.cuts
    }

    /// One attempt, sent at `sent`, ended at `now`.
    pub fn on_answer(&mut self, sent: Instant, now: Instant, signal: Signal) {
        // Answers to requests sent before the last cut carry the congestion it answered.
        let fresh = sent >= self.last_cut;
        match signal {
            Signal::Throttled if fresh => self.cut(now, BETA, self.measured),
            Signal::Failed if fresh => self.window.failed += 1,
            Signal::Answered => {
                self.window.answered += 1;
                if let Some((_, answered)) = &mut self.pushed_back {
                    *answered += 1;
                }
                if fresh {
                    self.window
                        .latencies
                        .push(now.saturating_duration_since(sent));
                }
            }
            _ => {}
        }
        if fresh {
            self.window.answers += 1;
        }
        if !self.slow_start {
            self.follow_curve(now);
        }
        if now.saturating_duration_since(self.window.start) >= self.window_length() {
            self.close_window(now);
        }
    }

    fn window_length(&self) -> Duration {
        self.base_latency.unwrap_or_default().max(MIN_WINDOW)
    }

    fn close_window(&mut self, now: Instant) {
        let window = std::mem::replace(&mut self.window, Window::new(now));
        let seconds = now.saturating_duration_since(window.start).as_secs_f64();
        if seconds > 0.0 {
            let rate = f64::from(window.answered) / seconds;
            self.measured = Some(self.measured.map_or(rate, |m| 0.5 * m + 0.5 * rate));
            self.last_window = Some(rate);
        }
        let median = median(window.latencies);
        // Below 1 when a queue is forming: unloaded / current latency, within [0.6, 0.9]
        // (Netflix Gradient2's gradient, its tolerance applied to decide, not to size).
        let mut gradient = 1.0;
        if let Some(median) = median {
            let base = *self.base_latency.get_or_insert(median);
            self.base_latency = Some(base.min(median));
            let queue = median > base.mul_f64(LATENCY_TOLERANCE) + LATENCY_SLACK;
            if !queue {
                self.draining = None;
            } else if self.draining.as_mut().is_none_or(|d| d.grows(median)) {
                gradient =
                    (base.as_secs_f64() / median.as_secs_f64()).clamp(QUEUE_DEEPEST, QUEUE_BETA);
            }
        }
        let share = if window.answers == 0 {
            0.0
        } else {
            f64::from(window.failed) / f64::from(window.answers)
        };
        let failing = window.failed >= 2 && share > 2.0 * self.failure_share + 0.05;
        self.failure_share = 0.9 * self.failure_share + 0.1 * share;
        if failing {
            self.cut(now, BETA, self.measured);
        } else if gradient < 1.0 {
            // A queue means the server is busy now: the last window shows its capacity.
            let busy = self
                .measured
                .zip(self.last_window)
                .map(|(m, last)| m.max(last));
            self.cut(now, gradient, busy);
            self.draining = median.map(Drain::new);
        } else if self.slow_start && self.rate_bound() {
            self.rate = (self.rate * 2.0).min(self.max_rate);
        }
    }

    /// Whether the rate, not the concurrency or the supply of rows, limits what is sent:
    /// raising a rate nobody reaches would only allow a burst later.
    fn rate_bound(&self) -> bool {
        self.measured.is_none_or(|m| m >= 0.4 * self.rate)
    }

    /// A congestion signal: keep β of the rate and restart the curve below the rate that
    /// was too much, or below what actually got through when less (botocore's measured rate).
    /// After a 429 that is the smoothed rate: one window can hold a burst the server's token
    /// bucket let through, which is not its rate.
    fn cut(&mut self, now: Instant, beta: f64, got_through: Option<f64>) {
        let reached = self.rate.min(got_through.unwrap_or(self.rate));
        self.pushed_back.get_or_insert((now, 0));
        let mut w_max = reached;
        if w_max < self.last_w_max {
            self.last_w_max = w_max;
            w_max *= (1.0 + BETA) / 2.0;
        } else {
            self.last_w_max = w_max;
        }
        self.rate = (reached * beta).max(self.floor);
        self.w_max = w_max.max(self.rate);
        self.k = ((self.w_max - self.rate) / C).cbrt();
        self.epoch = now;
        self.last_cut = now;
        self.slow_start = false;
        self.cuts += 1;
    }

    fn follow_curve(&mut self, now: Instant) {
        let t = now.saturating_duration_since(self.epoch).as_secs_f64();
        let curve = C * (t - self.k).powi(3) + self.w_max;
        // botocore's guard: never more than twice what actually went out.
        let reached = self
            .measured
            .map_or(f64::INFINITY, |m| (2.0 * m).max(START_RATE));
        self.rate = curve.min(reached).clamp(self.floor, self.max_rate);
    }
}

/// A queue draining after a cut. Requests sent just after the cut still queue behind the
/// backlog, so the latency first goes on rising; only a rise after it fell is news.
#[derive(Debug, Clone, Copy)]
struct Drain {
    last: Duration,
    /// The lowest median since it started falling.
    low: Option<Duration>,
    windows: u32,
}

impl Drain {
    fn new(median: Duration) -> Drain {
        Drain {
            last: median,
            low: None,
            windows: 0,
        }
    }

    /// Records a window's median; true when the queue grows again, or stands: when the
    /// client is held by its concurrency bound, a queue at the server drains only below the
    /// rate it serves.
    fn grows(&mut self, median: Duration) -> bool {
        if median < self.last {
            self.low = Some(self.low.map_or(median, |low| low.min(median)));
        }
        self.last = median;
        self.windows += 1;
        self.windows >= STANDING_QUEUE && self.low.is_none()
            || self.low.is_some_and(|low| median > low.mul_f64(1.25))
    }
}

fn median(mut latencies: Vec<Duration>) -> Option<Duration> {
    if latencies.is_empty() {
        return None;
    }
    let middle = latencies.len() / 2;
    Some(*latencies.select_nth_unstable(middle).1)
}

#[cfg(test)]
mod sim;
