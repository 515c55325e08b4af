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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answer(status: u16, body: &[u8]) -> Answer {
        classify(
            Parts {
                status,
                retry_after: None,
                location: None,
                body: Some(body),
            },
            Purpose::Create,
        )
    }

    fn refused(status: u16, body: &[u8]) -> String {
        match answer(status, body) {
            Answer::Refused { error, .. } => error.to_string(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn api_errors_in_every_shape() {
        assert_eq!(
            refused(
                400,
                br#"{"trace_id":"t1","status":400,"error":"Bad Request","message":["a","b"]}"#
            ),
            "HTTP 400 Bad Request: a; b (trace_id t1)"
        );
        assert_eq!(
            refused(400, br#"{"message":"just one"}"#),
            "HTTP 400 Bad Request: just one"
        );
        assert_eq!(
            refused(400, br#"{"error":"Bad Request"}"#),
            "HTTP 400 Bad Request: Bad Request"
        );
        assert_eq!(refused(400, b"oops"), "HTTP 400 Bad Request: oops");
        assert_eq!(refused(400, b""), "HTTP 400 Bad Request");
    }

    #[test]
    fn the_error_is_typed_and_its_trace_id_is_a_field() {
        let Answer::Refused { error, auth } = answer(401, br#"{"trace_id":"t9","message":"no"}"#)
        else {
            panic!("not refused")
        };
        assert!(auth);
        assert_eq!(
            error,
            SendError::Http {
                status: 401,
                messages: "no".into(),
                trace_id: Some("t9".into()),
                location: None
            }
        );
        let other = SendError::Http {
            status: 401,
            messages: "no".into(),
            trace_id: Some("t10".into()),
            location: None,
        };
        assert_eq!(error.kind_key(), other.kind_key());
    }

    #[test]
    fn a_redirect_names_its_location_or_says_it_has_none() {
        let with = classify(
            Parts {
                status: 301,
                retry_after: None,
                location: Some("https://api.creem.io/v1/checkouts"),
                body: Some(b""),
            },
            Purpose::Create,
        );
        let Answer::Refused { error, .. } = with else {
            panic!("not refused")
        };
        assert_eq!(
            error.to_string(),
            "HTTP 301 Moved Permanently to https://api.creem.io/v1/checkouts (is the base URL right?)"
        );
        assert_eq!(refused(302, b""), "HTTP 302 Found without a Location");
    }

    #[test]
    fn server_text_is_escaped_when_shown() {
        assert_eq!(
            refused(400, b"{\"message\":\"x\\u001b[2J\\ny\"}"),
            r"HTTP 400 Bad Request: x\u{1b}[2J\u{a}y"
        );
    }

    #[test]
    fn a_200_without_a_usable_link_is_not_a_checkout() {
        let unusable = |body: &[u8]| match answer(200, body) {
            Answer::Unusable { error, checkout_id } => (error.to_string(), checkout_id),
            other => panic!("usable: {other:?}"),
        };
        assert_eq!(
            unusable(br#"{"id":"ch_1"}"#),
            (
                "HTTP 200 but not a usable checkout: no checkout_url".into(),
                "ch_1".into()
            )
        );
        assert!(
            unusable(br#"{"id":"ch_1","checkout_url":"javascript:alert(1)"}"#)
                .0
                .contains("not an http(s) link: javascript:alert(1)")
        );
        assert_eq!(unusable(b"[]").1, "");
        assert!(matches!(
            answer(
                200,
                br#"{"id":"ch_1","checkout_url":"https://creem.io/c/1"}"#
            ),
            Answer::Checkout(_)
        ));
        // A fetched checkout needs no link.
        assert!(matches!(
            classify(
                Parts {
                    status: 200,
                    retry_after: None,
                    location: None,
                    body: Some(br#"{"id":"ch_1"}"#)
                },
                Purpose::Fetch
            ),
            Answer::Checkout(_)
        ));
    }

    #[test]
    fn an_answer_too_large_fails_the_attempt() {
        let parts = |status| Parts {
            status,
            retry_after: None,
            location: None,
            body: None,
        };
        assert!(matches!(
            classify(parts(200), Purpose::Create),
            Answer::Unusable {
                error: SendError::TooLarge { status: 200 },
                ..
            }
        ));
        assert!(matches!(
            classify(parts(503), Purpose::Create),
            Answer::Retry {
                error: SendError::TooLarge { status: 503 },
                ..
            }
        ));
        assert_eq!(
            SendError::TooLarge { status: 200 }.to_string(),
            "HTTP 200: the answer is larger than 1 MiB and was not read"
        );
    }

    #[test]
    fn a_429_without_a_usable_retry_after_waits_a_second() {
        let parts = |retry_after| Parts {
            status: 429,
            retry_after,
            location: None,
            body: Some(b""),
        };
        for garbage in [None, Some("soon"), Some("-5"), Some("NaN")] {
            assert!(matches!(
                classify(parts(garbage), Purpose::Create),
                Answer::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(1)
            ));
        }
    }

    proptest! {
        #[test]
        fn any_answer_is_classified_without_panic(
            status in 0u16..1000,
            retry_after in proptest::option::of(".*"),
            location in proptest::option::of(".*"),
            body in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            json in proptest::option::of("\\{\"(id|checkout_url|message|trace_id|error)\":(\"[^\"]*\"|[0-9e.-]+|null|\\[\\]|\\{\\})\\}"),
        ) {
            let body = json.map(String::into_bytes).or(body);
            for purpose in [Purpose::Create, Purpose::Fetch] {
                let answer = classify(
                    Parts {
                        status,
                        retry_after: retry_after.as_deref(),
                        location: location.as_deref(),
                        body: body.as_deref(),
                    },
                    purpose,
                );
                if let Answer::Retry { retry_after: Some(wait), .. } = &answer {
                    prop_assert!(*wait <= super::super::retry::MAX_PAUSE);
                }
                let shown = match &answer {
                    Answer::Checkout(_) => String::new(),
                    Answer::Unusable { error, .. } | Answer::Retry { error, .. } | Answer::Refused { error, .. } => error.to_string(),
                };
                prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
            }
        }
    }
}
