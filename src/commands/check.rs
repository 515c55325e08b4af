//! `check`: validate the campaign and every row; send nothing.

use std::io::Write;

use crate::batch::{Batch, RowPlan};
use crate::campaign::Campaign;
use crate::cli::CheckArgs;
use crate::exit::Outcome;

pub fn run(args: CheckArgs) -> anyhow::Result<Outcome> {
    let campaign = Campaign::load(&args.campaign)?;
    if let Some(placeholder) = campaign.placeholder_product() {
        return Err(crate::diagnostic::Diagnostics(vec![placeholder]).into());
    }
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
    writeln!(report, "{csv_name}: {}", batch.file_format())?;
    let (mut valid, mut invalid, mut skipped) = (0u64, 0u64, 0u64);
    let mut demand = crate::preflight::Demand::default();
    while let Some(plan) = batch.next_row()? {
        match plan {
            RowPlan::Ready { request, .. } => {
                valid += 1;
                demand.add_body(&request.body);
            }
            RowPlan::Unchanged { .. } => valid += 1,
            RowPlan::Skipped { .. } => skipped += 1,
            RowPlan::Invalid { row, rejection } => {
                invalid += 1;
                let at = match rejection.at.as_str() {
                    "" => format!("row {row}"),
                    at => at.to_owned(),
                };
                writeln!(report, "{csv_name}: {at}: {}", rejection.reason)?;
            }
        }
    }
    let total = valid + invalid + skipped;
    // Only when there are any, so a campaign without `exclude:`/`where:` reads as before.
    let skipped_note = match skipped {
        0 => String::new(),
        n => format!(", {n} skipped"),
    };
    // Physical lines next to rows when they differ: a quoted value spanning lines (or an
    // unclosed quote) or blank lines; the header is not a row.
    let lines = batch.lines_read().saturating_sub(1);
    let lines_note = if lines != total {
        format!(" ({lines} lines after the header)")
    } else {
        String::new()
    };
    writeln!(
        report,
        "{}: {total} rows, {valid} valid, {invalid} invalid{skipped_note}{lines_note}",
        args.campaign.display()
    )?;
    if args.online {
        let timeout = batch.campaign.send.timeout;
        let online =
            crate::preflight::check_online(&args.host, &args.key, &demand, timeout, &mut report)?;
        if let Some(outcome) = online {
            return Ok(outcome);
        }
    }
    drop(report);
    if args.json {
        let summary = serde_json::json!({
            "command": "check",
            "campaign": batch.campaign.name,
            "rows": total,
            "lines": lines,
            "valid": valid,
            "invalid": invalid,
            "skipped": skipped,
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
