//! What the user sees while a batch runs: an indicatif bar on a terminal, a plain line every
//! few seconds otherwise (logs, CI), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts shared between the workers and the display.
#[derive(Debug, Default)]
pub struct Tally {
    pub done: AtomicU64,
    pub created: AtomicU64,
    pub failed: AtomicU64,
}

impl Tally {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Numbers the display reads besides the tally.
pub trait Live: Send + Sync {
    fn attempts(&self) -> u64;
    fn retrying(&self) -> u64;
    /// Set while the whole batch waits out a server's `Retry-After`.
    fn pause_note(&self) -> Option<String>;
    /// The rate `rate: auto` sends at; `None` for a fixed rate.
    fn rate_now(&self) -> Option<crate::sender::RateNow> {
        None
    }
}

impl Live for crate::sender::Sender {
    fn attempts(&self) -> u64 {
        self.counters.attempts.load(Ordering::Relaxed)
    }
    fn retrying(&self) -> u64 {
        self.counters.retrying.load(Ordering::Relaxed)
    }
    fn pause_note(&self) -> Option<String> {
        crate::sender::Sender::pause_note(self)
    }
    fn rate_now(&self) -> Option<crate::sender::RateNow> {
        crate::sender::Sender::rate_now(self)
    }
}

/// "rate auto 40/s" while `rate: auto` searches, "rate 96/s (settled)" once it has. The
/// current rate, which hovers around the limit; the summary says what the server gave.
pub fn rate_note(rate: crate::sender::RateNow) -> String {
    if rate.adapting {
        format!("rate auto {:.0}/s", rate.per_second)
    } else {
        format!("rate {:.0}/s (settled)", rate.per_second)
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

/// The words a command's progress line uses for what it does and how rows end.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    /// Shown before the plain periodic lines, e.g. "sending: 10/100 rows, ...".
    pub verb: &'static str,
    /// What [`Tally::created`] counts.
    pub ok: &'static str,
    /// What [`Tally::failed`] counts.
    pub failed: &'static str,
}

impl Labels {
    pub const SENDING: Labels = Labels {
        verb: "sending",
        ok: "created",
        failed: "failed",
    };
    pub const CHECKING: Labels = Labels {
        verb: "checking",
        ok: "fetched",
        failed: "failed",
    };
}

pub struct Progress {
    stop: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts showing progress over `total` rows (to be sent); `quiet` shows nothing.
    pub fn start(
        total: u64,
        quiet: bool,
        tally: Arc<Tally>,
        live: Arc<dyn Live>,
        labels: Labels,
    ) -> Progress {
        let stop = tokio_util::sync::CancellationToken::new();
        if quiet || total == 0 {
            return Progress {
                stop,
                task: None,
                bar: None,
            };
        }
        let started = Instant::now();
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} {msg} [{elapsed_precise}, ETA {eta}]",
                )
                .expect("valid template"),
            );
            bar
        });
        let every = if terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(5)
        };
        let (token, shown) = (stop.clone(), bar.clone());
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = token.cancelled() => break,
                }
                let done = tally.done.load(Ordering::Relaxed);
                let rate = per_second(live.attempts(), started.elapsed());
                let mut line = format!(
                    "{} {}, {} {}, {} retrying, {rate:.1} req/s",
                    tally.created.load(Ordering::Relaxed),
                    labels.ok,
                    tally.failed.load(Ordering::Relaxed),
                    labels.failed,
                    live.retrying(),
                );
                if let Some(rate) = live.rate_now() {
                    line.push_str(", ");
                    line.push_str(&rate_note(rate));
                }
                if let Some(note) = live.pause_note() {
                    line.push_str("; ");
                    line.push_str(&note);
                }
                match &shown {
                    Some(bar) => {
                        bar.set_position(done);
                        bar.set_message(line);
                    }
                    None => eprintln!(
                        "{}: {done}/{total} rows, {line}, {:.0}s",
                        labels.verb,
                        started.elapsed().as_secs_f64()
                    ),
                }
            }
        });
        Progress {
            stop,
            task: Some(task),
            bar,
        }
    }

    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender::RateNow;

    #[test]
    fn the_rate_says_auto_while_adapting_and_settled_after() {
        let rate = |adapting| RateNow {
            per_second: 41.6,
            adapting,
            found: Some(38.0),
        };
        assert_eq!(rate_note(rate(true)), "rate auto 42/s");
        assert_eq!(rate_note(rate(false)), "rate 42/s (settled)");
    }
}
