//! A campaign opened for work: the customers CSV, the compiled templates, and a stream of
//! rows, each either ready to send or rejected with a reason. `check`, `run --dry-run` and
//! `run` all read rows through here, so they agree on every row.
//!
//! Duplicate keys are found without keeping every key in memory: a first pass over the CSV
//! puts each key's fingerprint in a fixed-size Bloom filter and notes the few fingerprints
//! seen twice (true duplicates, plus rare false positives); the second pass, the real one,
//! tracks only those. Memory stays flat from a thousand rows to millions, and the first pass
//! also gives the row count before anything is sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::campaign::Campaign;
use crate::customers::{CsvRow, CustomerCsv};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::render::{Rejection, Renderer, Request};
use crate::waves::Exclusions;

#[cfg(test)]
mod creem_schema;
mod duplicates;
mod first_pass;
#[cfg(test)]
mod no_panic;
#[cfg(test)]
mod tests;

pub(crate) use duplicates::fingerprint_of_str;
use duplicates::seen_before;
use first_pass::first_pass;

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowPlan {
    Ready {
        row: u64,
        request: Request,
    },
    Invalid {
        row: u64,
        rejection: Rejection,
    },
    /// Created before from exactly these inputs (see [`Batch::skip_unchanged`]): not rendered.
    Unchanged {
        row: u64,
    },
    /// Left out on purpose: its customer paid in an `exclude:`d wave, or `where:` is false.
    /// Not rendered; `skip` says which row it is and why.
    Skipped {
        row: u64,
        skip: Rejection,
    },
}

impl RowPlan {
    pub fn row(&self) -> u64 {
        match self {
            RowPlan::Ready { row, .. }
            | RowPlan::Invalid { row, .. }
            | RowPlan::Skipped { row, .. }
            | RowPlan::Unchanged { row } => *row,
        }
    }

    /// The row's request_id, when it was worked out (not for an unchanged row).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            RowPlan::Ready { request, .. } => Some(&request.request_id),
            RowPlan::Invalid { rejection, .. } => Some(&rejection.request_id),
            RowPlan::Skipped { skip, .. } => Some(&skip.request_id),
            RowPlan::Unchanged { .. } => None,
        }
    }
}

/// A campaign and its CSV, ready to be read row by row, in input order.
pub struct Batch {
    pub campaign: Campaign,
    csv: CustomerCsv,
    renderer: Renderer,
    total_rows: u64,
    /// Fingerprints the first pass saw more than once; only these are remembered row by row.
    repeated: HashSet<u64>,
    first_seen: HashMap<u64, u64>,
    key_names: String,
    unchanged: Option<Arc<Vec<u64>>>,
    exclusions: Exclusions,
    record: CsvRow,
}

impl Batch {
    /// Opens the CSV, compiles the templates against its header and counts the rows.
    /// Anything wrong with the campaign or the CSV as a whole is reported here.
    pub fn open(campaign: Campaign) -> Result<Batch, Diagnostics> {
        let csv = CustomerCsv::open_with(&campaign.customers, &campaign.read_options())?;
        let renderer = Renderer::new(&campaign, csv.headers())?;
        let exclusions = Exclusions::load(&campaign.exclude)?;
        let (total_rows, repeated) = first_pass(&campaign, &renderer)?;
        if total_rows == 0 {
            return Err(Diagnostic::file(
                &campaign.customers,
                "the file has a header but no customer rows",
            )
            .into());
        }
        Ok(Batch {
            key_names: campaign.key.join(", "),
            csv,
            renderer,
            repeated,
            first_seen: HashMap::new(),
            unchanged: None,
            exclusions,
            campaign,
            total_rows,
            record: CsvRow::default(),
        })
    }

    /// Data rows in the CSV (known before the first row is read).
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Physical lines read so far, the header's included: more than rows + 1 when values
    /// span lines or blank lines are skipped.
    pub fn lines_read(&self) -> u64 {
        self.csv.lines_read()
    }

    /// How the customers file is read: "encoding UTF-8 (detected)", or its workbook sheet.
    pub fn file_format(&self) -> String {
        self.csv.describe()
    }

    /// Skips each body's SHA-256 and input_hash: a dry run with no ledger to compare against
    /// needs neither.
    pub fn without_body_hashes(&mut self) {
        self.renderer.set_hash_bodies(false);
    }

    /// Rows whose [`input_hash`](Renderer::input_hash) equals the one given for their row
    /// number (a created record's, from [`Prior::unchanged_rows`](crate::ledger::Prior::unchanged_rows))
    /// come out as [`RowPlan::Unchanged`] without being rendered: a re-run over a finished
    /// ledger then costs a hash per row instead of a rendering.
    pub fn skip_unchanged(&mut self, input_hashes: Arc<Vec<u64>>) {
        self.unchanged = Some(input_hashes);
    }

    /// The next row's plan; `Ok(None)` at the end. An error means the file itself failed.
    pub fn next_row(&mut self) -> Result<Option<RowPlan>, Diagnostic> {
        let mut record = std::mem::take(&mut self.record);
        if !self.csv.read(&mut record)? {
            return Ok(None);
        }
        let mut plan = self.plan(&record);
        if let RowPlan::Invalid { rejection, .. } = &mut plan {
            rejection.at = self.csv.locate(&record);
        }
        self.record = record;
        Ok(Some(plan))
    }

    /// Decides what becomes of one row: unusable records, empty keys, duplicates, unchanged
    /// rows, and otherwise the rendered request.
    fn plan(&mut self, record: &CsvRow) -> RowPlan {
        let row = record.row;
        let renderer = &self.renderer;
        let fields = match self
            .csv
            .swallowed_row(record)
            .map_or_else(|| self.csv.fields(record), Err)
        {
            Ok(fields) => fields,
            Err(problem) => {
                return RowPlan::Invalid {
                    row,
                    rejection: Rejection {
                        request_id: String::new(),
                        email: String::new(),
                        reason: problem.0,
                        at: String::new(),
                    },
                }
            }
        };
        let invalid = |request_id: String, reason: String| RowPlan::Invalid {
            row,
            rejection: Rejection {
                email: renderer.ledger_email(row, &fields),
                request_id,
                reason,
                at: String::new(),
            },
        };
        let empty = renderer.empty_key_columns(&fields);
        if !empty.is_empty() {
            let which = empty.join("`, `");
            return invalid(String::new(), format!("key column `{which}` is empty"));
        }
        let key_fp = renderer.key_fingerprint(&fields);
        if let Some(first) = seen_before(&self.repeated, &mut self.first_seen, key_fp, row) {
            let request_id = renderer.request_id(row, &fields).unwrap_or_default();
            return invalid(
                request_id,
                format!("duplicate of row {first} (same {})", self.key_names),
            );
        }
        let request_id = match renderer.request_id(row, &fields) {
            Ok(id) => id,
            Err(reason) => return invalid(String::new(), reason),
        };
        if renderer.has_request_id_template() {
            let fp = fingerprint_of_str(&request_id);
            if let Some(first) = seen_before(&self.repeated, &mut self.first_seen, fp, row) {
                return invalid(
                    request_id,
                    format!("duplicate of row {first} (same request_id)"),
                );
            }
        }
        if let Some(skip) = self.skipped(row, &fields) {
            return match skip {
                Ok(reason) => RowPlan::Skipped {
                    row,
                    skip: Rejection {
                        email: renderer.ledger_email(row, &fields),
                        request_id,
                        reason,
                        at: String::new(),
                    },
                },
                Err(reason) => invalid(request_id, reason),
            };
        }
        // 0: no created record for this row (pending, failed, new): nothing to compare.
        let known = (self.unchanged.as_deref())
            .and_then(|hashes| hashes.get(row as usize).copied())
            .filter(|&hash| hash != 0);
        if known.is_some_and(|hash| hash == renderer.input_hash(row, &fields)) {
            return RowPlan::Unchanged { row };
        }
        match renderer.render(row, &fields, request_id) {
            Ok(request) => RowPlan::Ready { row, request },
            Err(rejection) => RowPlan::Invalid { row, rejection },
        }
    }

    /// Why the row is left out (`exclude:`, `where:`), if it is; `Err` when `where:` cannot
    /// be worked out for it (the row is then invalid).
    fn skipped(&self, row: u64, fields: &[&str]) -> Option<Result<String, String>> {
        if !self.exclusions.is_empty() {
            let email = self.renderer.ledger_email(row, fields);
            if let Some(campaign) = self.exclusions.paid_in(&self.renderer, fields, &email) {
                return Some(Ok(format!("excluded (paid in {campaign})")));
            }
        }
        match self.renderer.condition(row, fields) {
            Ok(true) => None,
            Ok(false) => {
                let condition = self.campaign.where_.as_ref().map_or("", |w| w.value.trim());
                Some(Ok(format!("where: {condition} is false")))
            }
            Err(reason) => Some(Err(reason)),
        }
    }
}
