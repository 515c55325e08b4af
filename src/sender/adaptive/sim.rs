//! [`Adaptive`] against simulated servers on a simulated clock: a discrete-event model of the
//! sender (pacing, the concurrency bound, the batch-wide pause on 429, retries) and of two
//! servers, one with a hidden rate limit and one with K workers. Deterministic, no sleeps.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::{Adaptive, Signal, START_RATE};

/// A server as the sandbox models it.
#[derive(Debug, Clone, Copy)]
enum Server {
    /// 429 (`Retry-After: 1`) beyond a token bucket of `limit` per second, bursts of `limit`
    /// (the sandbox's `--max-rps`); every answer after `latency`.
    Limit { limit: f64, latency: f64 },
    /// `workers` requests served at once, `service` seconds each, the rest queue in order
    /// (the sandbox's `--workers`).
    Workers { workers: usize, service: f64 },
}

const RETRY_AFTER: f64 = 1.0;

#[derive(Debug)]
struct Outcome {
    makespan: f64,
    posts: u64,
    throttled: u64,
    latencies: Vec<f64>,
    highest_rate: f64,
    first_rate: f64,
    final_rate: f64,
    found: f64,
}

impl Outcome {
    fn p50(&mut self) -> f64 {
        self.latencies.sort_by(f64::total_cmp);
        self.latencies[self.latencies.len() / 2]
    }
}

/// Times in µs so the event queue can order them exactly.
fn us(seconds: f64) -> u64 {
    (seconds * 1e6).round() as u64
}

fn simulate(server: Server, rows: u64, concurrency: usize, max_rate: f64) -> Outcome {
    let t0 = Instant::now();
    let at = |t: u64| t0 + Duration::from_micros(t);
    let mut limiter = Adaptive::new(max_rate, t0);
    let first_rate = limiter.rate();
    // (answer time, send time, throttled)
    let mut answers: BinaryHeap<Reverse<(u64, u64, bool)>> = BinaryHeap::new();
    let mut retries: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let (mut fresh, mut done, mut in_flight) = (rows, 0, 0);
    let (mut next_slot, mut paused_until, mut now) = (0u64, 0u64, 0u64);
    // The server: GCRA's theoretical arrival time, or when each worker is next free.
    let mut tat = 0.0f64;
    let mut free: BinaryHeap<Reverse<u64>> = match server {
        Server::Workers { workers, .. } => (0..workers).map(|_| Reverse(0)).collect(),
        Server::Limit { .. } => BinaryHeap::new(),
    };
    let mut outcome = Outcome {
        makespan: 0.0,
        posts: 0,
        throttled: 0,
        latencies: Vec::new(),
        highest_rate: first_rate,
        first_rate,
        final_rate: 0.0,
        found: 0.0,
    };
    while done < rows {
        let ready = if fresh > 0 {
            Some(now)
        } else {
            retries.peek().map(|Reverse(t)| *t)
        };
        let send = ready
            .filter(|_| in_flight < concurrency)
            .map(|ready| ready.max(next_slot).max(paused_until).max(now));
        let answer = answers.peek().map(|Reverse((t, _, _))| *t);
        if let Some(send) = send.filter(|s| answer.is_none_or(|a| *s < a)) {
            now = send;
            if fresh > 0 {
                fresh -= 1;
            } else {
                retries.pop();
            }
            in_flight += 1;
            outcome.posts += 1;
            next_slot = now + us(1.0 / limiter.rate());
            let arrival = now as f64 / 1e6;
            let (end, throttled) = match server {
                Server::Limit { limit, latency } => {
                    let interval = 1.0 / limit;
                    let start = tat.max(arrival);
                    let admitted = start - arrival <= interval * (limit - 1.0) + 1e-9;
                    if admitted {
                        tat = start + interval;
                    }
                    (now + us(latency), !admitted)
                }
                Server::Workers { service, .. } => {
                    let Reverse(worker_free) = free.pop().unwrap();
                    let end = worker_free.max(now) + us(service);
                    free.push(Reverse(end));
                    (end, false)
                }
            };
            answers.push(Reverse((end, now, throttled)));
        } else {
            let Reverse((end, sent, throttled)) = answers.pop().expect("an answer is due");
            now = end;
            in_flight -= 1;
            let signal = if throttled {
                outcome.throttled += 1;
                paused_until = paused_until.max(now + us(RETRY_AFTER));
                retries.push(Reverse(now + us(RETRY_AFTER)));
                Signal::Throttled
            } else {
                done += 1;
                outcome.latencies.push((end - sent) as f64 / 1e6);
                Signal::Answered
            };
            limiter.on_answer(at(sent), at(now), signal);
            outcome.highest_rate = outcome.highest_rate.max(limiter.rate());
        }
    }
    outcome.makespan = now as f64 / 1e6;
    outcome.final_rate = limiter.rate();
    outcome.found = limiter.found(at(now)).unwrap_or(limiter.rate());
    outcome
}

/// 15 × L rows against a hidden limit L: the benchmark, simulated.
fn against_limit(limit: f64, latency: f64, max_rate: f64) -> (f64, f64, Outcome) {
    let rows = (15.0 * limit) as u64;
    let outcome = simulate(Server::Limit { limit, latency }, rows, 64, max_rate);
    let efficiency = (rows as f64 / limit) / outcome.makespan;
    let throttled = outcome.throttled as f64 / outcome.posts as f64;
    (efficiency, throttled, outcome)
}

#[test]
fn finds_a_hidden_limit_quickly_and_rarely_hits_it() {
    let mut missed = Vec::new();
    for (limit, latency, max_rate) in [
        (20.0, 0.05, 100.0),
        (100.0, 0.05, 100.0),
        (100.0, 0.05, 1000.0),
        (500.0, 0.05, 1000.0),
        (100.0, 0.3, 100.0),
    ] {
        let (efficiency, throttled, outcome) = against_limit(limit, latency, max_rate);
        eprintln!("L={limit} latency={latency} max={max_rate}: efficiency {efficiency:.3}, throttled {throttled:.3}, final rate {:.1}, found {:.1}", outcome.final_rate, outcome.found);
        if efficiency < 0.85 || throttled > 0.05 {
            missed.push(format!("L={limit} latency={latency} max_rate={max_rate}: efficiency {efficiency:.3}, throttled {throttled:.3}"));
        }
        // The rate reported is the limit's, just under it, not the curve's probe above it.
        let expected = limit.min(max_rate);
        if !(0.8 * expected..=1.02 * expected).contains(&outcome.found) {
            missed.push(format!(
                "L={limit} max_rate={max_rate}: found {:.1}",
                outcome.found
            ));
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

#[test]
fn starts_at_ten_and_never_exceeds_max_rate() {
    let (_, throttled, outcome) = against_limit(10_000.0, 0.01, 100.0);
    assert_eq!(outcome.first_rate, START_RATE);
    assert_eq!(throttled, 0.0);
    assert!(outcome.highest_rate <= 100.0, "{}", outcome.highest_rate);
    assert_eq!(outcome.final_rate, 100.0);
}

#[test]
fn a_server_with_k_workers_is_kept_busy_without_a_queue() {
    let mut missed = Vec::new();
    for (workers, service) in [(16, 0.05), (8, 0.1)] {
        let capacity = workers as f64 / service;
        let rows = (15.0 * capacity) as u64;
        let mut outcome = simulate(
            Server::Workers { workers, service },
            rows,
            32,
            10.0 * capacity,
        );
        let throughput = rows as f64 / outcome.makespan;
        let inflation = outcome.p50() / service;
        eprintln!(
            "K={workers} service={service}: {:.2} of capacity, p50 {inflation:.2}x",
            throughput / capacity
        );
        if throughput < 0.8 * capacity || inflation >= 2.0 {
            missed.push(format!(
                "K={workers}: {:.2} of capacity, p50 {inflation:.2}x unloaded",
                throughput / capacity
            ));
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

#[test]
fn a_rising_share_of_failures_cuts_the_rate() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut limiter = Adaptive::new(100.0, t0);
    for ms in 0..300 {
        limiter.on_answer(at(ms), at(ms + 20), Signal::Answered);
    }
    let before = limiter.rate();
    assert!(before > START_RATE, "slow start raised the rate: {before}");
    for ms in 300..700 {
        let signal = if ms % 2 == 0 {
            Signal::Failed
        } else {
            Signal::Answered
        };
        limiter.on_answer(at(ms), at(ms + 20), signal);
    }
    assert!(limiter.cuts() >= 1);
    assert!(limiter.rate() < before, "{} !< {before}", limiter.rate());
}

#[test]
fn throttles_answering_one_burst_cut_the_rate_once() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut limiter = Adaptive::new(100.0, t0);
    for ms in 0..10 {
        limiter.on_answer(at(ms), at(ms + 50), Signal::Throttled);
    }
    assert_eq!(limiter.cuts(), 1);
    assert!(limiter.rate() < START_RATE * 0.75, "{}", limiter.rate());
}

#[test]
fn a_max_rate_below_one_a_second_is_kept() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut limiter = Adaptive::new(0.5, t0);
    assert_eq!(limiter.rate(), 0.5);
    for ms in 0..50 {
        limiter.on_answer(at(ms * 100), at(ms * 100 + 20), Signal::Answered);
        limiter.on_answer(at(ms * 100), at(ms * 100 + 20), Signal::Throttled);
        assert!(limiter.rate() <= 0.5 && limiter.rate() > 0.0);
    }
}
