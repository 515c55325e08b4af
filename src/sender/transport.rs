//! The HTTP side of an attempt: the client, a bounded read of the answer, and transport
//! errors named without the URL's query or any header.

use std::time::Duration;

use super::SendError;
use crate::campaign::SendSettings;

/// An attempt that got no (whole) answer.
pub(super) struct Lost {
    pub(super) error: SendError,
    /// The request may have reached Creem.
    pub(super) ambiguous: bool,
    /// The secure connection failed: no retry can help, and no other row can do better.
    pub(super) tls: bool,
}

/// The body, or `None` when it is longer than `limit` (then only `limit` bytes were read).
pub(crate) async fn read_at_most(
    response: &mut reqwest::Response,
    limit: usize,
) -> reqwest::Result<Option<Vec<u8>>> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The run's HTTP client, which keeps up to `connections` connections open.
pub(super) fn http_client(
    settings: &SendSettings,
    base_url: &str,
    connections: usize,
) -> anyhow::Result<reqwest::Client> {
    Ok(crate::http::client_builder(base_url)?
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        // Creem answers; it does not redirect. A 3xx is reported with its Location.
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Names the failure without echoing the URL's query or any header.
pub(super) fn transport_error(e: &reqwest::Error) -> SendError {
    if let Some(message) = crate::http::tls_failure(e) {
        return SendError::Tls { message };
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "connection lost while reading the answer"
    } else {
        "connection lost"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = None;
    while let Some(s) = source {
        detail = Some(s.to_string());
        source = s.source();
    }
    SendError::Transport { what, detail }
}
