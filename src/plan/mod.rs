//! What to do with each row, decided once for `run --dry-run` and `run`: compared with the
//! existing ledger (new, to retry, already created, changed since) and cut by `--limit`.
//! Both commands go through [`Planner`], so the dry run's plan is the run's plan.

use std::io::Write;

use crate::ledger::{LedgerError, Prior, PriorRef, Record, Status};
use crate::render::{Rejection, Request};

mod reissue;
use reissue::reissue_request;
pub use reissue::{Reissue, Reissued};

/// Counts for the plan (dry run) and the summary (run).
#[derive(Debug, Default)]
pub struct Plan {
    pub rows: u64,
    pub new: u64,
    pub retry: u64,
    /// Created before with the same body.
    pub done: u64,
    /// Created before with a different body.
    pub changed: u64,
    pub invalid: u64,
    /// Would be sent, but held back by `--limit`.
    pub limited: u64,
    /// Rows chosen to be sent.
    pub chosen: u64,
    /// With `--reissue`: rows that get a new checkout (counted in `chosen` too).
    pub reissued: u64,
    /// With `--reissue`: rows never sent, left pending (a re-issue sends nothing new).
    pub held: u64,
    pub reissue: Option<Reissue>,
    /// Rows left out by `exclude:` or `where:`, by reason.
    pub skipped: std::collections::BTreeMap<String, u64>,
    pub recreate_changed: bool,
    /// Rows found in the ledger under the id the earlier request_id rule gave them (see
    /// [`Request::previous_id`]).
    pub id_changed: u64,
    id_changed_examples: Vec<(u64, String)>,
    /// Where each listed invalid row is ("row 2, line 3 in the file"), and why.
    invalid_examples: Vec<(String, String)>,
    changed_examples: Vec<(u64, String)>,
}

const EXAMPLES: usize = 10;

impl Plan {
    /// Created rows that stay as they are (changed ones too, unless recreated).
    pub fn kept(&self) -> u64 {
        self.done
            + if self.recreate_changed {
                0
            } else {
                self.changed
            }
    }

    /// Rows left out by `exclude:` or `where:`.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// ", 5 skipped: 5 excluded (paid in spring)" for the plan line; empty when none.
    pub fn skipped_note(&self) -> String {
        if self.skipped.is_empty() {
            return String::new();
        }
        let reasons: Vec<String> = self
            .skipped
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        format!(", {} skipped: {}", self.skipped_total(), reasons.join(", "))
    }

    /// Lists changed and invalid rows (the first few of each) on `err`.
    pub fn print_problems(&self, err: &mut impl Write) -> std::io::Result<()> {
        if self.id_changed > 0 {
            writeln!(
                err,
                "{} row(s) are in the ledger under the request_id of the earlier rule (which \
                 lowercased only a column named `email`; now any email column is): created ones \
                 are kept under their old id, not sent again:",
                self.id_changed
            )?;
            for (row, ids) in &self.id_changed_examples {
                writeln!(err, "  row {row}: {ids}")?;
            }
        }
        if self.changed > 0 {
            let what = if self.recreate_changed {
                "new checkouts are made for them (--recreate-changed)"
            } else {
                "not re-sent; --recreate-changed makes new checkouts"
            };
            writeln!(
                err,
                "{} created row(s) have a different body now ({what}):",
                self.changed
            )?;
            for (row, fields) in &self.changed_examples {
                writeln!(err, "  row {row}: {fields}")?;
            }
        }
        if self.invalid > 0 {
            writeln!(err, "{} invalid row(s):", self.invalid)?;
            for (at, reason) in &self.invalid_examples {
                writeln!(err, "  {at}: {reason}")?;
            }
            let unlisted = self.invalid - self.invalid_examples.len() as u64;
            if unlisted > 0 {
                writeln!(err, "  ... and {unlisted} more")?;
            }
        }
        Ok(())
    }
}

/// A row's record in the existing ledger.
#[derive(Debug, Clone, Copy)]
pub struct PriorRow {
    pub record: PriorRef,
    /// Worth keeping when the row is not sent now (it is not an `invalid` record, which the
    /// row, valid today, should replace with `pending`).
    pub keepable: bool,
}

/// What to do with a row that is ready to send.
#[derive(Debug)]
pub enum Verdict {
    /// Created before; its record stays.
    Keep(PriorRef),
    /// Send it now. `note` goes into the ledger's `error` column once it is created.
    Send {
        prior: Option<PriorRow>,
        note: String,
        /// Set when the row goes under a re-issued request_id.
        reissued: Option<Reissued>,
    },
    /// Would be sent, but `--limit` holds it back.
    Hold { prior: Option<PriorRow> },
}

/// Decides row by row, in input order, and counts as it goes.
pub struct Planner {
    prior: Option<Prior>,
    limit: Option<u64>,
    pub plan: Plan,
}

impl Planner {
    pub fn new(prior: Option<Prior>, rows: u64, limit: Option<u64>, recreate: bool) -> Planner {
        Planner {
            prior,
            limit,
            plan: Plan {
                rows,
                recreate_changed: recreate,
                ..Plan::default()
            },
        }
    }

    /// A planner for `run --reissue`: only the rows `kind` names are sent.
    pub fn reissuing(mut self, kind: Option<Reissue>) -> Planner {
        self.plan.reissue = kind;
        self
    }

    fn lookup(
        &mut self,
        row: u64,
        request_id: &str,
    ) -> Result<Option<(Record, PriorRef)>, LedgerError> {
        match self.prior.as_mut() {
            Some(prior) => prior.lookup(row, request_id),
            None => Ok(None),
        }
    }

    /// The verdict for a row ready to send. A row re-issued before goes (if at all) under
    /// its re-issued request_id, which `request` then carries.
    pub fn ready(&mut self, row: u64, request: &mut Request) -> Result<Verdict, LedgerError> {
        let mut found = self.lookup(row, &request.request_id)?;
        if let (None, Some(previous)) = (&found, &request.previous_id) {
            found = self.lookup(row, previous)?;
            if found.is_some() {
                self.plan.id_changed += 1;
                if self.plan.id_changed_examples.len() < EXAMPLES {
                    let ids = format!("{previous} in the ledger, {} now", request.request_id);
                    self.plan.id_changed_examples.push((row, ids));
                }
            }
            // The same customer's checkout, made under its earlier id: kept, never made twice.
            if let Some((p, record)) = &found {
                if p.status == Status::Created && self.plan.reissue.is_none() {
                    self.plan.done += 1;
                    return Ok(Verdict::Keep(*record));
                }
            }
        }
        if let Some(kind) = self.plan.reissue {
            return Ok(self.reissue(kind, request, found));
        }
        let mut note = String::new();
        let mut reissued = None;
        if let Some((p, _)) = found.as_ref().filter(|(p, _)| p.reissues > 0) {
            // A re-issued row that did not get its checkout keeps its re-issued request_id.
            reissue_request(request, p.reissues);
            reissued = Some(Reissued {
                count: p.reissues,
                previous_checkouts: p.previous_checkouts.clone(),
            });
        }
        match &found {
            Some((p, record)) if p.status == Status::Created => {
                if p.body_sha256 == request.body_sha256 {
                    self.plan.done += 1;
                    return Ok(Verdict::Keep(*record));
                }
                self.plan.changed += 1;
                if self.plan.changed_examples.len() < EXAMPLES {
                    let fields = changed_fields(&p.body, &request.body);
                    self.plan.changed_examples.push((row, fields));
                }
                if !self.plan.recreate_changed {
                    return Ok(Verdict::Keep(*record));
                }
                note = format!(
                    "recreated: the body changed; previous checkout {}",
                    p.checkout_id
                );
            }
            Some((p, _)) if p.status != Status::Invalid => self.plan.retry += 1,
            _ => self.plan.new += 1,
        }
        let prior = found.map(|(p, record)| PriorRow {
            record,
            keepable: p.status != Status::Invalid,
        });
        if self.limit.is_some_and(|limit| self.plan.chosen >= limit) {
            self.plan.limited += 1;
            return Ok(Verdict::Hold { prior });
        }
        self.plan.chosen += 1;
        Ok(Verdict::Send {
            prior,
            note,
            reissued,
        })
    }

    /// A row [`Batch::skip_unchanged`](crate::batch::Batch::skip_unchanged) found created
    /// from the same inputs: done, and its record stays.
    pub fn unchanged(&mut self, row: u64) -> anyhow::Result<PriorRef> {
        let record = self.prior.as_ref().and_then(|p| p.at_row(row));
        let record =
            record.ok_or_else(|| anyhow::anyhow!("row {row} has no record in the ledger"))?;
        self.plan.done += 1;
        Ok(record)
    }

    /// Counts a row left out by `exclude:` or `where:`; returns its created record (a row
    /// created before it was left out keeps its checkout).
    pub fn skipped(&mut self, row: u64, skip: &Rejection) -> Result<Option<PriorRef>, LedgerError> {
        // "excluded (paid in a)" and "where: ... is false" group as they read.
        *self.plan.skipped.entry(skip.reason.clone()).or_default() += 1;
        Ok(match self.lookup(row, &skip.request_id)? {
            Some((p, record)) if p.status == Status::Created => Some(record),
            _ => None,
        })
    }

    /// Counts an invalid row; returns its created record, which must never be dropped
    /// from the ledger because the row broke since.
    pub fn invalid(
        &mut self,
        row: u64,
        rejection: &Rejection,
    ) -> Result<Option<PriorRef>, LedgerError> {
        self.plan.invalid += 1;
        if self.plan.invalid_examples.len() < EXAMPLES {
            let at = match rejection.at.as_str() {
                "" => format!("row {row}"),
                at => at.to_owned(),
            };
            self.plan
                .invalid_examples
                .push((at, rejection.reason.clone()));
        }
        Ok(match self.lookup(row, &rejection.request_id)? {
            Some((p, record)) if p.status == Status::Created => Some(record),
            _ => None,
        })
    }
}

/// Names the body fields that differ, e.g. "changed discount_code, metadata.segment".
fn changed_fields(before: &str, after: &[u8]) -> String {
    let before: serde_json::Value = serde_json::from_str(before).unwrap_or_default();
    let after: serde_json::Value = serde_json::from_slice(after).unwrap_or_default();
    let mut names = Vec::new();
    diff_objects("", &before, &after, &mut names);
    if names.is_empty() {
        "body changed".to_owned()
    } else {
        format!("changed {}", names.join(", "))
    }
}

fn diff_objects(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    let empty = serde_json::Map::new();
    let a_map = a.as_object().unwrap_or(&empty);
    let b_map = b.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = a_map.keys().chain(b_map.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (x, y) = (a_map.get(key), b_map.get(key));
        if x == y {
            continue;
        }
        let name = format!("{prefix}{key}");
        match (x, y) {
            (Some(x), Some(y)) if x.is_object() && y.is_object() && key == "metadata" => {
                diff_objects(&format!("{name}."), x, y, out)
            }
            _ => out.push(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_names_top_level_and_metadata_keys() {
        let before =
            r#"{"product_id":"p","discount_code":"A","metadata":{"segment":"smb","x":"1"}}"#;
        let after = br#"{"product_id":"p","discount_code":"B","metadata":{"segment":"vip","x":"1"},"locale":"fr"}"#;
        assert_eq!(
            changed_fields(before, after),
            "changed discount_code, locale, metadata.segment"
        );
        assert_eq!(changed_fields("{}", b"{}"), "body changed");
    }
}
