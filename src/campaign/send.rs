//! The `send:` section: how fast and how hard to send, and the rate and duration parsers
//! the command-line flags share with it.

use std::time::Duration;

/// How fast and how hard to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendSettings {
    /// `None`: no ceiling (only the concurrency bound); for sandboxes and benchmarks.
    pub rate: Option<Rate>,
    pub burst: u32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub timeout: Duration,
}

impl Default for SendSettings {
    fn default() -> SendSettings {
        SendSettings {
            rate: Some(Rate {
                count: 10,
                per: Duration::from_secs(1),
            }),
            burst: 1,
            concurrency: 8,
            max_attempts: 5,
            timeout: Duration::from_secs(30),
        }
    }
}

/// `count` requests started per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.per.as_secs() == 60 { "min" } else { "s" };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Parses `10/s`, `10/sec`, `600/min`, `5` (per second), or `unlimited` (`Ok(None)`).
pub fn parse_rate(text: &str) -> Result<Option<Rate>, String> {
    let text = text.trim();
    if matches!(text, "unlimited" | "none" | "off") {
        return Ok(None);
    }
    let (count, unit) = text.split_once('/').unwrap_or((text, "s"));
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        other => return Err(format!("unknown rate unit `{other}` (use /s or /min)")),
    };
    match count.trim().parse::<u32>() {
        Ok(count) if count >= 1 => Ok(Some(Rate { count, per })),
        _ => Err(format!(
            "`{text}` is not a rate: use N/s or N/min with N >= 1, or `unlimited`"
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
