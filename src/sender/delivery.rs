//! How one row's sending ended, and what the ledger's `error` column says of it.

use super::{Checkout, SendError};

/// What the `error` column says of a row whose earlier attempt may have created a checkout.
pub const MAY_EXIST_TWICE: &str = "an earlier attempt timed out or lost its connection after sending; Creem may hold a second checkout for this request_id";

/// How one row ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Creem answered 2xx with a usable checkout.
    Created {
        checkout: Checkout,
        http_status: u16,
        attempts: u32,
        /// An earlier attempt may have created a checkout too ([`MAY_EXIST_TWICE`]).
        ambiguous: bool,
    },
    /// Creem answered 2xx, but not with a checkout link to hand out. One may exist, so the
    /// row must not be sent again blindly.
    Unusable {
        error: SendError,
        checkout_id: String,
        attempts: u32,
        ambiguous: bool,
    },
    /// Gave up on this row.
    Failed {
        error: SendError,
        attempts: u32,
        kind: FailureKind,
        ambiguous: bool,
    },
    /// Never sent: the run stopped first.
    NotSent { attempts: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Creem refused this row (400, 404, 409, a 3xx...): sending it again would fail again.
    Permanent,
    /// The key was refused (401, 403): the whole run must stop.
    Auth,
    /// Retries ran out on 429, 5xx, timeouts or connection errors.
    Exhausted,
    /// The secure connection failed (an untrusted certificate...): the whole run must stop.
    Tls,
}

impl Delivery {
    /// The row's error as the ledger's `error` column and the summary show it.
    pub fn error_text(&self) -> String {
        let (mut text, ambiguous) = match self {
            Delivery::Created { ambiguous, .. } => (String::new(), *ambiguous),
            Delivery::Unusable {
                error, ambiguous, ..
            } => (
                format!("{error}; a checkout may exist, so this row is not sent again"),
                *ambiguous,
            ),
            Delivery::Failed {
                error,
                attempts,
                kind: FailureKind::Exhausted,
                ambiguous,
            } => (
                format!(
                    "gave up after {attempts} attempt{}: {error}",
                    if *attempts == 1 { "" } else { "s" }
                ),
                *ambiguous,
            ),
            Delivery::Failed {
                error, ambiguous, ..
            } => (error.to_string(), *ambiguous),
            Delivery::NotSent { .. } => (String::new(), false),
        };
        if ambiguous {
            if !text.is_empty() {
                text.push_str(" (");
                text.push_str(MAY_EXIST_TWICE);
                text.push(')');
            } else {
                text.push_str(MAY_EXIST_TWICE);
            }
        }
        text
    }

    /// Whether an attempt of this row may have created a checkout besides the one recorded.
    pub fn may_exist_twice(&self) -> bool {
        match self {
            Delivery::Created { ambiguous, .. }
            | Delivery::Unusable { ambiguous, .. }
            | Delivery::Failed { ambiguous, .. } => *ambiguous,
            Delivery::NotSent { .. } => false,
        }
    }
}
