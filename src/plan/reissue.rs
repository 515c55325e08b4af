//! `run --reissue`: which rows get a new checkout, and the request_id they go under
//! (`<request_id>-r<N>`, N the row's re-issue count, kept in the ledger).

use super::{Planner, PriorRow, Verdict};
use crate::ledger::{reissued_request_id, PriorRef, Record, Status};
use crate::render::Request;

/// Which rows `run --reissue` gives a new checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reissue {
    /// Created rows whose checkout is `expired`.
    Expired,
    /// Rows that failed with a 4xx (other than 401, 403 and 429): refused as they were.
    FailedPermanently,
}

impl Reissue {
    pub fn as_str(self) -> &'static str {
        match self {
            Reissue::Expired => "expired",
            Reissue::FailedPermanently => "failed-permanently",
        }
    }

    fn wants(self, record: &Record) -> bool {
        match self {
            Reissue::Expired => {
                record.status == Status::Created && record.checkout_status == "expired"
            }
            Reissue::FailedPermanently => {
                record.status == Status::Failed
                    && record
                        .http_status
                        .is_some_and(|s| (400..500).contains(&s) && ![401, 403, 429].contains(&s))
            }
        }
    }
}

/// A row sent under a re-issued request_id: what its record carries forward.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reissued {
    /// The record's `reissues`.
    pub count: u32,
    /// The record's `previous_checkouts`.
    pub previous_checkouts: String,
}

impl Planner {
    /// `--reissue`: a new checkout for the rows `kind` names, under the next re-issued
    /// request_id; every other row stays as it is.
    pub(super) fn reissue(
        &mut self,
        kind: Reissue,
        request: &mut Request,
        found: Option<(Record, PriorRef)>,
    ) -> Verdict {
        let Some((p, record)) = found else {
            self.plan.held += 1;
            return Verdict::Hold { prior: None };
        };
        let prior = PriorRow {
            record,
            keepable: p.status != Status::Invalid,
        };
        if !kind.wants(&p) {
            if p.status == Status::Created {
                self.plan.done += 1;
            } else {
                self.plan.held += 1;
            }
            return match prior.keepable {
                true => Verdict::Keep(record),
                false => Verdict::Hold { prior: Some(prior) },
            };
        }
        if self.limit.is_some_and(|limit| self.plan.chosen >= limit) {
            self.plan.limited += 1;
            return Verdict::Hold { prior: Some(prior) };
        }
        let count = p.reissues + 1;
        let mut previous_checkouts = p.previous_checkouts.clone();
        if !p.checkout_id.is_empty() {
            if !previous_checkouts.is_empty() {
                previous_checkouts.push(' ');
            }
            previous_checkouts.push_str(&p.checkout_id);
        }
        reissue_request(request, count);
        self.plan.reissued += 1;
        self.plan.chosen += 1;
        let note = match kind {
            Reissue::Expired => format!("re-issued: checkout {} expired", p.checkout_id),
            Reissue::FailedPermanently => format!(
                "re-issued after HTTP {}",
                p.http_status.map(|s| s.to_string()).unwrap_or_default()
            ),
        };
        Verdict::Send {
            prior: Some(prior),
            note,
            reissued: Some(Reissued {
                count,
                previous_checkouts,
            }),
        }
    }
}

/// Puts `request` under its `n`th re-issued request_id, in the body too. The body's
/// `body_sha256` stays the campaign's (see GUIDE, re-issuing), so a later run still finds the
/// row unchanged. The body is serialized with `request_id` right after `product_id` (a JSON
/// string, which cannot hold an unescaped quote), so its first `"request_id":` is the field.
pub(super) fn reissue_request(request: &mut Request, n: u32) {
    let id = reissued_request_id(&request.request_id, n);
    let (Ok(old), Ok(new)) = (
        serde_json::to_string(&request.request_id),
        serde_json::to_string(&id),
    ) else {
        return;
    };
    let (old, new) = (
        format!("\"request_id\":{old}"),
        format!("\"request_id\":{new}"),
    );
    if let Some(at) = memchr::memmem::find(&request.body, old.as_bytes()) {
        request.body.splice(at..at + old.len(), new.bytes());
    }
    request.request_id = id;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reissue_kinds_choose_expired_or_refused_rows() {
        let mut expired = Record::new("c", 1, "c-1", "", Status::Created);
        expired.checkout_status = "expired".to_owned();
        let mut open = expired.clone();
        open.checkout_status = "pending".to_owned();
        let refused = |status: u16| {
            let mut r = Record::new("c", 2, "c-2", "", Status::Failed);
            r.http_status = Some(status);
            r
        };
        assert!(Reissue::Expired.wants(&expired));
        assert!(!Reissue::Expired.wants(&open));
        assert!(!Reissue::Expired.wants(&refused(400)));
        for (status, wanted) in [
            (400, true),
            (422, true),
            (401, false),
            (429, false),
            (500, false),
        ] {
            assert_eq!(
                Reissue::FailedPermanently.wants(&refused(status)),
                wanted,
                "{status}"
            );
        }
        assert!(!Reissue::FailedPermanently.wants(&expired));
    }

    #[test]
    fn a_reissued_request_changes_only_its_request_id() {
        let body = br#"{"product_id":"p\"request_id\":\"x","request_id":"spring-1","metadata":{"request_id":"spring-1"}}"#;
        let mut request = Request {
            request_id: "spring-1".to_owned(),
            email: String::new(),
            body: body.to_vec(),
            body_sha256: "abc".to_owned(),
            input_hash: 7,
            previous_id: None,
        };
        reissue_request(&mut request, 2);
        assert_eq!(request.request_id, "spring-1-r2");
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            r#"{"product_id":"p\"request_id\":\"x","request_id":"spring-1-r2","metadata":{"request_id":"spring-1"}}"#
        );
        assert_eq!(request.body_sha256, "abc", "the campaign's digest stays");
    }
}
