//! `check`: validate the campaign and every row; send nothing.

use std::io::Write;

use crate::batch::{Batch, RowPlan};
use crate::campaign::Campaign;
use crate::cli::CheckArgs;
use crate::exit::Outcome;

pub fn run(args: CheckArgs) -> anyhow::Result<Outcome> {
    let campaign = Campaign::load(&args.campaign)?;
    let mut batch = Batch::open(campaign)?;
    batch.without_body_hashes();
    let csv_name = batch.campaign.customers.display().to_string();
    let stdout = std::io::stdout();
    let mut report: Box<dyn Write> = if args.json {
        Box::new(std::io::stderr().lock())
    } else {
        // `check | head -1` still exits with what was found.
        Box::new(crate::exit::QuietPipe::new(stdout.lock()))
    };
    let (mut valid, mut invalid) = (0u64, 0u64);
    while let Some(plan) = batch.next_row()? {
        match plan {
            RowPlan::Ready { .. } | RowPlan::Unchanged { .. } => valid += 1,
            RowPlan::Invalid { row, rejection } => {
                invalid += 1;
                writeln!(report, "{csv_name}: row {row}: {}", rejection.reason)?;
            }
        }
    }
    let total = valid + invalid;
    writeln!(
        report,
        "{}: {total} rows, {valid} valid, {invalid} invalid",
        args.campaign.display()
    )?;
    drop(report);
    if args.json {
        let summary = serde_json::json!({
            "command": "check",
            "campaign": batch.campaign.name,
            "rows": total,
            "valid": valid,
            "invalid": invalid,
            "exit": if invalid == 0 { "ok" } else { "invalid_rows" },
        });
        let mut out = crate::exit::QuietPipe::new(std::io::stdout().lock());
        writeln!(out, "{summary}")?;
        out.flush()?;
    }
    Ok(if invalid == 0 {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}
