//! `run`: send the batch, or with `--dry-run` print what would be sent.

use std::io::Write;

use crate::batch::{Batch, RowPlan};
use crate::campaign::Campaign;
use crate::cli::RunArgs;
use crate::exit::Outcome;

pub fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let campaign = Campaign::load(&args.campaign)?;
    let batch = Batch::open(campaign)?;
    if args.dry_run {
        return dry_run(batch);
    }
    anyhow::bail!("sending is not implemented yet")
}

/// Prints one JSON line per row that would be sent, and the plan on stderr.
fn dry_run(mut batch: Batch) -> anyhow::Result<Outcome> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut invalid = Vec::new();
    let mut invalid_count = 0u64;
    let mut ready = 0u64;
    while let Some(plan) = batch.next_row()? {
        match plan {
            RowPlan::Ready { row, request } => {
                ready += 1;
                out.write_all(b"{\"request_id\":")?;
                serde_json::to_writer(&mut out, &request.request_id)?;
                out.write_all(b",\"row\":")?;
                out.write_all(itoa::Buffer::new().format(row).as_bytes())?;
                out.write_all(b",\"body\":")?;
                out.write_all(&request.body)?;
                out.write_all(b"}\n")?;
            }
            RowPlan::Invalid { row, rejection } => {
                invalid_count += 1;
                if invalid.len() < 20 {
                    invalid.push((row, rejection.reason));
                }
            }
        }
    }
    out.flush()?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "plan: {} rows, {ready} to send, {invalid_count} invalid",
        batch.total_rows()
    )?;
    for (row, reason) in &invalid {
        writeln!(err, "  row {row}: {reason}")?;
    }
    if invalid_count > invalid.len() as u64 {
        writeln!(
            err,
            "  ... and {} more",
            invalid_count - invalid.len() as u64
        )?;
    }
    Ok(if invalid_count == 0 {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}
