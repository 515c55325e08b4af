//! `run --dry-run`: every row that would be sent, one JSON line each on stdout, and the plan
//! on stderr. Nothing is sent and no ledger is written.

use std::io::Write;

use crate::batch::{Batch, RowPlan};
use crate::cli::RunArgs;
use crate::exit::Outcome;
use crate::ledger::Prior;
use crate::plan::{Planner, Reissue, Verdict};

/// Prints one JSON line per row that would be sent, and the plan on stderr.
pub(super) fn dry_run(
    mut batch: Batch,
    prior: Option<Prior>,
    reissue: Option<Reissue>,
    args: &RunArgs,
) -> anyhow::Result<Outcome> {
    let mut planner = Planner::new(prior, batch.total_rows(), args.limit, args.recreate_changed)
        .reissuing(reissue);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut head = Vec::with_capacity(128);
    while let Some(row_plan) = batch.next_row()? {
        match row_plan {
            RowPlan::Ready { row, mut request } => {
                if !matches!(planner.ready(row, &mut request)?, Verdict::Send { .. }) {
                    continue;
                }
                // The body, the bulk of the line, goes straight to the output buffer.
                head.clear();
                head.extend_from_slice(b"{\"request_id\":");
                serde_json::to_writer(&mut head, &request.request_id)?;
                head.extend_from_slice(b",\"row\":");
                head.extend_from_slice(itoa::Buffer::new().format(row).as_bytes());
                head.extend_from_slice(b",\"body\":");
                out.write_all(&head)?;
                out.write_all(&request.body)?;
                out.write_all(b"}\n")?;
            }
            RowPlan::Invalid { row, rejection } => {
                planner.invalid(row, &rejection)?;
            }
            RowPlan::Unchanged { row } => {
                planner.unchanged(row)?;
            }
            RowPlan::Skipped { row, skip } => {
                planner.skipped(row, &skip)?;
            }
        }
    }
    out.flush()?;
    let plan = planner.plan;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "customers: {}: {}",
        batch.campaign.customers.display(),
        batch.file_format()
    )?;
    match plan.reissue {
        Some(kind) => writeln!(
            err,
            "plan: {} rows: {} to re-issue ({}), {} created and kept, {} left as they are, {} invalid",
            plan.rows,
            plan.reissued,
            kind.as_str(),
            plan.done,
            plan.held,
            plan.invalid
        )?,
        None => writeln!(
            err,
            "plan: {} rows: {} new, {} to retry, {} already created, {} changed since created, {} invalid{}",
            plan.rows, plan.new, plan.retry, plan.done, plan.changed, plan.invalid, plan.skipped_note()
        )?,
    }
    if plan.limited > 0 {
        writeln!(
            err,
            "--limit {}: {} row(s) would be sent now, {} left pending",
            args.limit.unwrap_or_default(),
            plan.chosen,
            plan.limited
        )?;
    }
    plan.print_problems(&mut err)?;
    Ok(if plan.invalid == 0 {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}
