//! The `send:` section: how fast and how hard to send, and the rate and duration parsers
//! the command-line flags share with it.

use std::time::Duration;

/// How fast and how hard to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendSettings {
    pub rate: RateLimit,
    /// The ceiling of `rate: auto`.
    pub max_rate: Rate,
    /// Requests a fixed rate lets start back to back.
    pub burst: u32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub timeout: Duration,
}

impl Default for SendSettings {
    fn default() -> SendSettings {
        SendSettings {
            rate: RateLimit::Auto,
            max_rate: Rate {
                count: 100,
                per: Duration::from_secs(1),
            },
            burst: 1,
            concurrency: 8,
            max_attempts: 5,
            timeout: Duration::from_secs(30),
        }
    }
}

/// How the start of requests is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// Adapts to what the server takes, from 10/s up to `max_rate` (see `sender::adaptive`).
    Auto,
    /// Exactly this ceiling.
    Fixed(Rate),
    /// No ceiling, only the concurrency bound; for sandboxes and benchmarks.
    Unlimited,
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateLimit::Auto => f.write_str("auto"),
            RateLimit::Fixed(rate) => rate.fmt(f),
            RateLimit::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// `count` requests started per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub fn per_second(self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64()
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.per.as_secs() == 60 { "min" } else { "s" };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Parses `auto`, `10/s`, `10/sec`, `600/min`, `5` (per second), or `unlimited`.
pub fn parse_rate(text: &str) -> Result<RateLimit, String> {
    let text = text.trim();
    match text {
        "auto" => Ok(RateLimit::Auto),
        "unlimited" | "none" | "off" => Ok(RateLimit::Unlimited),
        _ => parse_fixed_rate(text).map(RateLimit::Fixed),
    }
}

/// Parses `max_rate`: a rate such as `100/s` or `6000/min`.
pub fn parse_max_rate(text: &str) -> Result<Rate, String> {
    parse_fixed_rate(text.trim())
}

fn parse_fixed_rate(text: &str) -> Result<Rate, String> {
    let (count, unit) = text.split_once('/').unwrap_or((text, "s"));
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        other => return Err(format!("unknown rate unit `{other}` (use /s or /min)")),
    };
    match count.trim().parse::<u32>() {
        Ok(count) if count >= 1 => Ok(Rate { count, per }),
        _ => Err(format!(
            "`{text}` is not a rate: use N/s or N/min with N >= 1, `auto` or `unlimited`"
        )),
    }
}

/// Parses a positive duration such as `30s`, `1500ms`, `2m` or `1m30s` (see [`parse_span`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_span(text)?;
    if duration.is_zero() {
        return Err(format!("`{}` must be a positive duration", text.trim()));
    }
    Ok(duration)
}

/// The longest duration accepted anywhere: beyond it, a value is a typo, not a wish.
const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);

/// The one duration parser (campaign `timeout`, `--timeout`, the sandbox's `--latency`): jiff's
/// friendly format (`1m30s`, `1500ms`, `20us`, `1.5s`, `2 min`), or a bare number of seconds.
/// Zero is allowed; more than a day is refused, so no size can overflow later.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bare_seconds = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let parsed = if bare_seconds {
        format!("{text}s").parse::<jiff::SignedDuration>()
    } else {
        text.parse::<jiff::SignedDuration>()
    };
    let parsed =
        parsed.map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 1500ms, 2m, 1m30s)"))?;
    let duration =
        Duration::try_from(parsed).map_err(|_| format!("`{text}` must not be negative"))?;
    if duration > LONGEST {
        return Err(format!("`{text}` is longer than a day (24h)"));
    }
    Ok(duration)
}
