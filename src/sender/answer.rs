//! Reading one answer from Creem: the status, `Retry-After`, `Location` and at most
//! [`MAX_ANSWER`] bytes of body become a checkout or a typed [`SendError`]. The parsing is a
//! pure function of those parts ([`classify`]), so it is tested on any input without a server.

use std::time::Duration;

use serde::Deserialize;

use super::retry::parse_retry_after;
use crate::escape::escape_control;

/// The most of an answer that is read: a checkout is a few KB, and a server that sends more
/// must not fill the memory.
pub const MAX_ANSWER: usize = 1 << 20;

/// Why one attempt (or, once retries ran out, one row) failed. Fields hold text as the
/// server sent it; `Display` escapes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Creem answered with an error status.
    #[error("{}", http_text(*status, messages, trace_id.as_deref(), location.as_deref()))]
    Http {
        status: u16,
        /// Creem's `message` (its items joined by "; "), else its `error`, else a snippet of
        /// the body.
        messages: String,
        trace_id: Option<String>,
        /// A 3xx's `Location`: the base URL is probably wrong, and this says where to.
        location: Option<String>,
    },
    /// No answer: the request timed out, could not connect, or lost its connection.
    #[error("{what}{}", detail.as_deref().map(|d| format!(" ({})", escape_control(d))).unwrap_or_default())]
    Transport {
        what: &'static str,
        detail: Option<String>,
    },
    /// The secure connection failed; the message names the host, the reason and the remedy.
    #[error("{message}")]
    Tls { message: String },
    /// The answer is larger than [`MAX_ANSWER`].
    #[error("HTTP {status}: the answer is larger than {} MiB and was not read", MAX_ANSWER >> 20)]
    TooLarge { status: u16 },
    /// A 2xx that is not a checkout this tool can hand out.
    #[error("HTTP {status} but not a usable checkout: {}", escape_control(why))]
    NotACheckout { status: u16, why: String },
}

impl SendError {
    pub fn status(&self) -> Option<u16> {
        match self {
            SendError::Http { status, .. }
            | SendError::TooLarge { status }
            | SendError::NotACheckout { status, .. } => Some(*status),
            SendError::Transport { .. } | SendError::Tls { .. } => None,
        }
    }

    /// The same error without what differs from one request to the next (the trace_id):
    /// identical failures of many rows compare equal.
    pub fn kind_key(&self) -> SendError {
        match self {
            SendError::Http {
                status,
                messages,
                location,
                ..
            } => SendError::Http {
                status: *status,
                messages: messages.clone(),
                trace_id: None,
                location: location.clone(),
            },
            other => other.clone(),
        }
    }
}

fn http_text(
    status: u16,
    messages: &str,
    trace_id: Option<&str>,
    location: Option<&str>,
) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut text = format!("HTTP {status} {reason}").trim_end().to_owned();
    if !messages.is_empty() {
        text.push_str(": ");
        text.push_str(&escape_control(messages));
    }
    if (300..400).contains(&status) {
        match location {
            Some(to) => text.push_str(&format!(
                " to {} (is the base URL right?)",
                escape_control(to)
            )),
            None => text.push_str(" without a Location"),
        }
    }
    if let Some(trace) = trace_id {
        text.push_str(&format!(" (trace_id {})", escape_control(trace)));
    }
    text
}

/// The fields of Creem's checkout object this tool uses; the rest is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Checkout {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub checkout_url: String,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub order: Option<serde_json::Value>,
}

impl Checkout {
    /// The order's id once the checkout is paid: `order` is an expanded object with an `id`,
    /// or just the id.
    pub fn order_id(&self) -> Option<String> {
        crate::signature::id_of(self.order.as_ref())
    }
}

/// What the answer is for: a created checkout must carry a link to hand out; a fetched one
/// only its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Create,
    Fetch,
}

/// The parts of an answer [`classify`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    pub status: u16,
    pub retry_after: Option<&'a str>,
    pub location: Option<&'a str>,
    /// `None` when the body was larger than [`MAX_ANSWER`].
    pub body: Option<&'a [u8]>,
}

/// What one answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Checkout(Checkout),
    /// A 2xx that is not a usable checkout: one may exist, so the row is not sent again.
    Unusable {
        error: SendError,
        checkout_id: String,
    },
    /// Worth another attempt (429, 5xx, 408); `retry_after` as the server asked, capped.
    Retry {
        error: SendError,
        retry_after: Option<Duration>,
    },
    /// Final for this row (4xx); `auth` when the key was refused.
    Refused {
        error: SendError,
        auth: bool,
    },
}

/// Creem's error shape: `{"trace_id", "status", "error", "message": [..] | ".." | missing}`.
#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    trace_id: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

pub fn classify(parts: Parts<'_>, purpose: Purpose) -> Answer {
    let status = parts.status;
    let Some(body) = parts.body else {
        let error = SendError::TooLarge { status };
        return match status {
            200..=299 => Answer::Unusable {
                error,
                checkout_id: String::new(),
            },
            429 | 408 | 500..=599 => Answer::Retry {
                error,
                retry_after: parts.retry_after.and_then(parse_retry_after),
            },
            _ => Answer::Refused {
                auth: matches!(status, 401 | 403),
                error,
            },
        };
    };
    if (200..300).contains(&status) {
        return checkout_of(status, body, purpose);
    }
    let error = api_error(status, body, parts.location);
    let retry_after = parts.retry_after.and_then(parse_retry_after);
    match status {
        // A 429 pauses everyone; without a usable Retry-After, for a second.
        429 => Answer::Retry {
            error,
            retry_after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
        },
        408 | 500..=599 => Answer::Retry { error, retry_after },
        _ => Answer::Refused {
            auth: matches!(status, 401 | 403),
            error,
        },
    }
}

fn checkout_of(status: u16, body: &[u8], purpose: Purpose) -> Answer {
    let unusable = |why: String, checkout_id: String| Answer::Unusable {
        error: SendError::NotACheckout { status, why },
        checkout_id,
    };
    let checkout = match serde_json::from_slice::<Checkout>(body) {
        Ok(checkout) if !checkout.id.is_empty() => checkout,
        _ => return unusable(format!("not a checkout: {}", snippet(body)), String::new()),
    };
    if purpose == Purpose::Create {
        if checkout.checkout_url.is_empty() {
            return unusable("no checkout_url".into(), checkout.id);
        }
        if !is_web_link(&checkout.checkout_url) {
            return unusable(
                format!(
                    "checkout_url is not an http(s) link: {}",
                    snippet(checkout.checkout_url.as_bytes())
                ),
                checkout.id,
            );
        }
    }
    Answer::Checkout(checkout)
}

/// An absolute http(s) URL with a host: anything else (javascript:, data:, a path) is not a
/// link to send a customer.
fn is_web_link(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

pub fn api_error(status: u16, body: &[u8], location: Option<&str>) -> SendError {
    let text = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    let (messages, trace_id) = match serde_json::from_slice::<ApiError>(body) {
        Ok(api) => {
            let messages = match api.message {
                Some(serde_json::Value::Array(items)) => {
                    items.into_iter().map(text).collect::<Vec<_>>().join("; ")
                }
                Some(serde_json::Value::Null) | None => api.error.map(text).unwrap_or_default(),
                Some(other) => text(other),
            };
            (messages, api.trace_id.map(text))
        }
        Err(_) => (snippet(body), None),
    };
    SendError::Http {
        status,
        messages: truncate(messages),
        trace_id: trace_id.map(truncate),
        location: location.map(|l| truncate(l.to_owned())),
    }
}

/// At most 200 characters: a message is for a person, and a ledger cell should stay a cell.
fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(200) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn snippet(body: &[u8]) -> String {
    truncate(String::from_utf8_lossy(body).into_owned())
}

#[cfg(test)]
mod tests;
