//! The stream of jobs: the batch's rows read and decided one at a time as the sender asks,
//! the rows not sent now written to the ledger as they pass, and the record each job ends as.

use std::sync::Arc;

use crate::batch::{Batch, RowPlan};
use crate::escape::escape_control;
use crate::ledger::{self, Entry, PriorRef, Record, Status};
use crate::plan::{Planner, Reissued, Verdict};
use crate::progress::Tally;
use crate::render::Request;
use crate::sender::Delivery;

/// One row on its way to Creem.
pub(super) struct Job {
    pub(super) row: u64,
    pub(super) request: Request,
    pub(super) note: String,
    /// The row's record in the existing ledger. Retired only once the row really was sent:
    /// a row stopped before sending keeps it (a `created` row queued by --recreate-changed
    /// must not lose its checkout id because of a Ctrl-C).
    pub(super) prior: Option<PriorRef>,
    pub(super) reissued: Option<Reissued>,
}

/// The rows of the batch, read and decided one at a time as the stream of jobs asks; every
/// row that is not sent now gets its ledger entry here (kept, invalid, or pending).
pub(super) struct Rows {
    pub(super) batch: Batch,
    pub(super) planner: Planner,
    pub(super) entries: ledger::EntrySender,
    pub(super) stop: tokio_util::sync::CancellationToken,
    pub(super) tally: Arc<Tally>,
    pub(super) campaign: String,
    pub(super) target: String,
    /// Rows that would have been sent, but the run was stopping.
    pub(super) not_queued: u64,
    /// Why reading stopped early, if it did.
    pub(super) error: Option<anyhow::Error>,
}

impl Rows {
    /// The next row to send; `None` at the end or on an error (kept in `error`).
    pub(super) fn next_job(&mut self) -> Option<Job> {
        match self.next() {
            Ok(job) => job,
            Err(e) => {
                self.stop.cancel();
                self.error = Some(e);
                None
            }
        }
    }

    fn next(&mut self) -> anyhow::Result<Option<Job>> {
        while let Some(row_plan) = self.batch.next_row()? {
            let (row, mut request) = match row_plan {
                RowPlan::Ready { row, request } => (row, request),
                RowPlan::Invalid { row, rejection } => {
                    Tally::add(&self.tally.done);
                    let entry = match self.planner.invalid(row, &rejection)? {
                        Some(prior) => Entry::Keep { row, prior },
                        None => {
                            let mut record = Record::new(
                                &self.campaign,
                                row,
                                &rejection.request_id,
                                &rejection.email,
                                Status::Invalid,
                            );
                            record.error = rejection.reason;
                            record.target = self.target.clone();
                            Entry::Write(Box::new(record))
                        }
                    };
                    self.entries.send(entry);
                    continue;
                }
                RowPlan::Skipped { row, skip } => {
                    Tally::add(&self.tally.done);
                    let entry = match self.planner.skipped(row, &skip)? {
                        Some(prior) => Entry::Keep { row, prior },
                        None => {
                            let mut record = Record::new(
                                &self.campaign,
                                row,
                                &skip.request_id,
                                &skip.email,
                                Status::Skipped,
                            );
                            record.error = skip.reason;
                            Entry::Write(Box::new(record))
                        }
                    };
                    self.entries.send(entry);
                    continue;
                }
                RowPlan::Unchanged { row } => {
                    let prior = self.planner.unchanged(row)?;
                    Tally::add(&self.tally.done);
                    self.entries.send(Entry::Keep { row, prior });
                    continue;
                }
            };
            let prior = match self.planner.ready(row, &mut request)? {
                Verdict::Keep(prior) => {
                    Tally::add(&self.tally.done);
                    self.entries.send(Entry::Keep { row, prior });
                    continue;
                }
                Verdict::Send {
                    prior,
                    note,
                    reissued,
                } if !self.stop.is_cancelled() => {
                    return Ok(Some(Job {
                        row,
                        request,
                        note,
                        prior: prior.map(|p| p.record),
                        reissued,
                    }));
                }
                Verdict::Send { prior, .. } => {
                    self.not_queued += 1;
                    prior
                }
                Verdict::Hold { prior } => prior,
            };
            // Not sent now: held back by --limit, or the run is stopping.
            Tally::add(&self.tally.done);
            let entry = match prior {
                Some(p) if p.keepable => Entry::Keep {
                    row,
                    prior: p.record,
                },
                _ => {
                    let mut record = Record::new(
                        &self.campaign,
                        row,
                        &request.request_id,
                        &request.email,
                        Status::Pending,
                    );
                    record.body_sha256 = request.body_sha256;
                    record.input_hash = input_hash_cell(request.input_hash);
                    record.target = self.target.clone();
                    Entry::Write(Box::new(record))
                }
            };
            self.entries.send(entry);
        }
        Ok(None)
    }
}

pub(super) fn record_of(campaign: &str, job: Job, delivery: Delivery) -> Record {
    let error = delivery.error_text();
    let request = job.request;
    let mut record = Record::new(campaign, job.row, "", "", Status::Pending);
    if let Some(reissued) = job.reissued {
        record.reissues = reissued.count;
        record.previous_checkouts = reissued.previous_checkouts;
    }
    record.request_id = request.request_id; // moved, not copied
    record.email = request.email;
    record.body_sha256 = request.body_sha256;
    record.input_hash = input_hash_cell(request.input_hash);
    record.body = String::from_utf8(request.body).unwrap_or_default();
    let outside = |text: String| escape_control(&text).into_owned();
    match delivery {
        Delivery::Created {
            checkout,
            http_status,
            attempts,
            ..
        } => {
            record.status = Status::Created;
            record.checkout_id = outside(checkout.id);
            record.checkout_url = outside(checkout.checkout_url);
            record.checkout_status = outside(checkout.status);
            record.http_status = Some(http_status);
            record.attempts = attempts;
            record.error = [job.note, error]
                .into_iter()
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
        }
        // `created` with no link: the checkout may exist, so a re-run must not send it again,
        // and the `error` column says why there is no link.
        Delivery::Unusable {
            error: cause,
            checkout_id,
            attempts,
            ..
        } => {
            record.status = Status::Created;
            record.checkout_id = outside(checkout_id);
            record.http_status = cause.status();
            record.attempts = attempts;
            record.error = error;
        }
        Delivery::Failed {
            error: cause,
            attempts,
            ..
        } => {
            record.status = Status::Failed;
            record.http_status = cause.status();
            record.attempts = attempts;
            record.error = error;
        }
        Delivery::NotSent { attempts } => record.attempts = attempts,
    }
    record
}

/// The ledger's `input_hash` cell: 16 hex digits, or empty when there is none.
fn input_hash_cell(hash: u64) -> String {
    if hash == 0 {
        String::new()
    } else {
        format!("{hash:016x}")
    }
}
