//! The retry policy: how long a row waits before its next attempt, what a `Retry-After`
//! asks, and the breaker that stops a run whose rows all fail the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::answer::SendError;
use super::{Delivery, FailureKind};
use crate::sync::lock;

/// The longest wait between two attempts of one row, whatever the backoff says.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The longest pause a `Retry-After` can ask of the whole batch: longer asks are cut to this,
/// so a hostile or broken server cannot park a run for years.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);

/// Exponential backoff with jitter: 250 ms, 500 ms, 1 s, ... up to 30 s, each scaled by a
/// random factor in [0.5, 1] so rows that failed together do not retry together.
pub fn backoff(attempts: u32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    base.min(MAX_BACKOFF)
        .mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_PAUSE`]. Anything else
/// (negative, not a number, out of range) is treated as no header at all.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_nan() || seconds < 0.0 {
            return None;
        }
        Duration::try_from_secs_f64(seconds).unwrap_or(MAX_PAUSE)
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
    };
    Some(wait.min(MAX_PAUSE))
}

/// Shared flag set by the first 401/403 or by a run of identical permanent failures.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<BreakerState>,
    /// Set with `state.any_success`: after the first checkout, a created row changes nothing
    /// here, and the sending tasks need not take the lock for it.
    any_success: AtomicBool,
}

#[derive(Debug, Default)]
struct BreakerState {
    any_success: bool,
    same_error: u32,
    last_error: Option<SendError>,
    tripped: Option<String>,
}

/// Identical final failures (permanent, or retries run out), with nothing created yet,
/// before the run stops.
pub const SYSTEMATIC_FAILURES: u32 = 10;

impl Breaker {
    /// Records one row's end; returns why the run must stop, the first time it must.
    pub fn record(&self, delivery: &Delivery) -> Option<String> {
        let created = matches!(delivery, Delivery::Created { .. });
        if created && self.any_success.load(Ordering::Relaxed) {
            return None;
        }
        let mut state = lock(&self.state);
        if state.tripped.is_some() {
            return None;
        }
        let reason = match delivery {
            Delivery::Created { .. } => {
                state.any_success = true;
                self.any_success.store(true, Ordering::Relaxed);
                None
            }
            Delivery::Failed {
                kind: FailureKind::Auth,
                error,
                ..
            } => Some(key_rejected(&error.to_string())),
            Delivery::Failed {
                kind: FailureKind::Tls,
                error,
                ..
            } => Some(error.to_string()),
            // Retries that ran out count too: a host that refuses every connection must not
            // take 100,000 rows times the retry schedule to give up.
            Delivery::Failed {
                kind: FailureKind::Permanent | FailureKind::Exhausted,
                error,
                ..
            } if !state.any_success => {
                let key = error.kind_key();
                if state.last_error.as_ref() == Some(&key) {
                    state.same_error += 1;
                } else {
                    state.last_error = Some(key);
                    state.same_error = 1;
                }
                (state.same_error >= SYSTEMATIC_FAILURES).then(|| {
                    format!(
                        "the first {SYSTEMATIC_FAILURES} rows all failed with the same error, so the run stopped before sending the rest: {}",
                        delivery.error_text()
                    )
                })
            }
            _ => None,
        };
        if reason.is_some() {
            state.tripped.clone_from(&reason);
        }
        reason
    }

    pub fn tripped(&self) -> Option<String> {
        lock(&self.state).tripped.clone()
    }
}

/// Why a command stops when Creem refuses the key (401/403): every later request would too.
pub fn key_rejected(error: &str) -> String {
    format!(
        "the API key was rejected ({error}); nothing more was sent. Check CREEM_API_KEY: test keys (creem_test_...) work only on the test host, live keys only with --live"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender::Checkout;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        let wait = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28));
    }

    #[test]
    fn retry_after_is_capped_and_garbage_is_no_header() {
        for huge in ["1e20", "999999999", "inf", "1e400"] {
            assert_eq!(parse_retry_after(huge), Some(MAX_PAUSE), "{huge}");
        }
        let far = std::time::SystemTime::now() + Duration::from_secs(86_400 * 365);
        assert_eq!(
            parse_retry_after(&httpdate::fmt_http_date(far)),
            Some(MAX_PAUSE)
        );
        for garbage in ["soon", "", "-1", "NaN", "-inf", "1 2", "\u{0}"] {
            assert_eq!(parse_retry_after(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= FIRST_BACKOFF && backoff(1) >= FIRST_BACKOFF / 2);
        assert!(backoff(3) >= Duration::from_millis(500));
        assert!(backoff(40) <= MAX_BACKOFF);
    }

    fn failed(error: SendError, kind: FailureKind) -> Delivery {
        Delivery::Failed {
            error,
            attempts: 1,
            kind,
            ambiguous: false,
        }
    }

    fn bad_product(trace: &str) -> Delivery {
        failed(
            SendError::Http {
                status: 400,
                messages: "bad product".into(),
                trace_id: Some(trace.into()),
                location: None,
            },
            FailureKind::Permanent,
        )
    }

    fn created() -> Delivery {
        Delivery::Created {
            checkout: Checkout::default(),
            http_status: 200,
            attempts: 1,
            ambiguous: false,
        }
    }

    #[test]
    fn breaker_trips_on_ten_identical_failures_whatever_their_trace_id() {
        let breaker = Breaker::default();
        for i in 0..9 {
            assert_eq!(breaker.record(&bad_product(&i.to_string())), None);
        }
        let reason = breaker.record(&bad_product("x")).unwrap();
        assert!(reason.contains("first 10 rows"), "{reason}");
        assert!(
            reason.contains("HTTP 400 Bad Request: bad product"),
            "{reason}"
        );

        let refused = failed(
            SendError::Transport {
                what: "could not connect",
                detail: Some("Connection refused".into()),
            },
            FailureKind::Exhausted,
        );
        let breaker = Breaker::default();
        for _ in 0..9 {
            assert_eq!(breaker.record(&refused), None);
        }
        assert!(breaker.record(&refused).is_some());
    }

    #[test]
    fn breaker_after_a_success_trips_only_on_a_refused_key() {
        let breaker = Breaker::default();
        breaker.record(&created());
        for i in 0..20 {
            assert_eq!(breaker.record(&bad_product(&i.to_string())), None);
        }
        assert_eq!(breaker.record(&created()), None);
        let auth = failed(
            SendError::Http {
                status: 401,
                messages: String::new(),
                trace_id: None,
                location: None,
            },
            FailureKind::Auth,
        );
        assert!(breaker.record(&auth).is_some());
        assert!(breaker.tripped().is_some());
    }
}
