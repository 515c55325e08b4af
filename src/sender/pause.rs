//! The batch-wide pause a 429's `Retry-After` asks for: every new attempt waits it out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::sync::lock;

#[derive(Debug, Default)]
pub(super) struct Pause(Mutex<Option<Until>>);

#[derive(Debug, Clone, Copy)]
struct Until {
    at: Instant,
    /// The same moment on the wall clock, to show.
    shown: jiff::Timestamp,
}

impl Pause {
    /// Holds every new attempt until `wait` from now (a pause already longer stays); returns
    /// when this pause ends.
    pub(super) fn start(&self, wait: Duration) -> Instant {
        let at = Instant::now() + wait;
        let mut pause = lock(&self.0);
        if pause.is_none_or(|p| p.at < at) {
            let shown = jiff::Timestamp::now()
                .checked_add(wait)
                .unwrap_or(jiff::Timestamp::MAX);
            *pause = Some(Until { at, shown });
        }
        at
    }

    /// When the pause ends, while one lasts.
    pub(super) fn until(&self) -> Option<Instant> {
        let pause = (*lock(&self.0))?;
        (pause.at > Instant::now()).then_some(pause.at)
    }

    /// "paused until 14:05:09: the server asked to wait" (local time), while a pause lasts.
    pub(super) fn note(&self) -> Option<String> {
        let pause = (*lock(&self.0))?;
        (pause.at > Instant::now()).then(|| {
            let zone = jiff::tz::TimeZone::system();
            format!(
                "paused until {}: the server asked to wait",
                pause.shown.to_zoned(zone).strftime("%H:%M:%S")
            )
        })
    }

    /// Waits out the pause, if any (or until stopped).
    pub(super) async fn wait(&self, stop: &CancellationToken) {
        while let Some(until) = self.until() {
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}
