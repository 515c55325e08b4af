//! `report CAMPAIGN.yaml [--by COLUMN] [--out FILE]`: one self-contained HTML page of the
//! ledger as it stands (outcomes, checkout statuses, conversion per group, completions over
//! time, failure reasons). No API call: run `status` (or `reconcile`) first for fresh statuses.
//!
//! Exit 0 when the page was written; 2 when the campaign, the ledger or the customers CSV
//! cannot be read, `--by` names no column, or the page cannot be written.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::shared::is_campaign_file;
use crate::campaign::Campaign;
use crate::cli::ReportArgs;
use crate::exit::Outcome;
use crate::grouping::{By, Customers};
use crate::ledger;
use crate::report::ReportData;

pub fn run(args: ReportArgs) -> anyhow::Result<Outcome> {
    let (output, name, customers) = if is_campaign_file(&args.target) {
        let campaign = Campaign::load(&args.target)?;
        let customers = Customers {
            path: campaign.customers,
            delimiter: campaign.csv_delimiter,
        };
        (campaign.output, Some(campaign.name), Some(customers))
    } else {
        (args.target.clone(), None, None)
    };
    let by = args
        .by
        .as_deref()
        .map(|name| By::resolve(name, customers.as_ref()))
        .transpose()?;
    if let Some(warning) = ledger::rescued_warning(&output, "this report") {
        eprintln!("{warning}");
    }
    let records = ledger::read_all(&output)?;
    let name = name
        .or_else(|| records.first().map(|r| r.campaign.clone()))
        .unwrap_or_default();
    let column = by.as_ref().map(|b| b.column().to_owned());
    let groups = by.map(|b| b.groups(&records)).transpose()?;
    let by = column.as_deref().zip(groups);
    let data = ReportData::build(&name, &output.display().to_string(), &records, by);
    let page = data.render().context("rendering the report")?;
    let out = args.out.unwrap_or_else(|| default_out(&output));
    std::fs::write(&out, page).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} ({} rows, {} created, {} completed, conversion {})",
        out.display(),
        data.rows,
        data.created,
        data.completed,
        data.conversion
    );
    Ok(Outcome::Success)
}

/// `out/results.csv` -> `out/results.report.html`.
fn default_out(output: &Path) -> PathBuf {
    let stem = output.file_stem().unwrap_or_default().to_string_lossy();
    output.with_file_name(format!("{stem}.report.html"))
}
