//! `export`: the links of created checkouts, ready for an email tool's import.
//!
//! Given the campaign, the customers file is streamed and each row joined with its ledger
//! record by row number and request_id (the ledger is indexed by byte offset, not loaded), so
//! `--columns` can add the customer's own columns. Given only an output CSV, the ledger alone
//! gives the email and the link. Rows without a checkout are left out and counted by reason.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::bail;

use super::shared::{is_campaign_file, shell_word};
use crate::campaign::Campaign;
use crate::cli::ExportArgs;
use crate::customers::{CsvRow as CsvRecord, CustomerCsv};
use crate::escape::escape_control;
use crate::exit::Outcome;
use crate::export::{self, Format};
use crate::ledger::{self, Prior, Record, Status};
use crate::render::Renderer;

pub fn run(args: ExportArgs) -> anyhow::Result<Outcome> {
    let format = match (args.format, args.out.as_deref().and_then(Format::from_path)) {
        (Some(format), _) | (None, Some(format)) => format,
        (None, None) => Format::Csv,
    };
    let wanted = parse_columns(args.columns.as_deref())?;
    let (ledger_path, campaign) = if is_campaign_file(&args.target) {
        let campaign = Campaign::load(&args.target)?;
        let ledger = args
            .ledger
            .clone()
            .unwrap_or_else(|| campaign.output.clone());
        (ledger, Some(campaign))
    } else {
        if !wanted.is_empty() {
            bail!(
                "--columns needs the campaign YAML (its customers file has the columns): \
                 creem-batch export CAMPAIGN.yaml --columns ..."
            );
        }
        (args.target.clone(), None)
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_out(&ledger_path, args.tool, format),
    };
    refuse_own_inputs(&out, &ledger_path, campaign.as_ref())?;
    if let Some(warning) = crate::ledger::rescued_warning(&ledger_path, "this export") {
        eprintln!("{warning}");
    }

    let mut tally = Tally::default();
    let (header, written) = match &campaign {
        Some(campaign) => {
            let prior = Prior::open(&ledger_path)?.ok_or_else(|| no_ledger(&ledger_path))?;
            let join = Join::open(campaign, prior, &wanted)?;
            let header = export::header(args.tool, &join.column_names());
            let written = join.write(&out, format, &header, &mut tally)?;
            (header, written)
        }
        None => {
            if !ledger_path.exists() {
                return Err(no_ledger(&ledger_path));
            }
            let records = ledger::read_all(&ledger_path).map_err(|e| {
                let e = anyhow::Error::from(e);
                let campaign = ledger_path.with_extension("yaml");
                if campaign.is_file() {
                    e.context(format!(
                        "{} is not an output CSV; did you mean `creem-batch export {}`?",
                        ledger_path.display(),
                        shell_word(&campaign.display().to_string())
                    ))
                } else {
                    e
                }
            })?;
            let header = export::header(args.tool, &[]);
            let mut records = records.into_iter();
            let written = export::write(&out, format, &header, || {
                for record in records.by_ref() {
                    if let Some(row) = tally.take(&record, Vec::new) {
                        return Ok(Some(row));
                    }
                }
                Ok(None)
            })?;
            (header, written)
        }
    };
    report(&out, &header, written, &tally, &args.target)?;
    Ok(Outcome::Success)
}

/// `"First Name, Company"` as names (a name may not hold a comma; none are empty).
fn parse_columns(text: Option<&str>) -> anyhow::Result<Vec<String>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = text.split(',').map(|n| n.trim().to_owned()).collect();
    if names.iter().any(String::is_empty) {
        bail!(
            "--columns: an empty column name in `{}`",
            escape_control(text)
        );
    }
    Ok(names)
}

fn no_ledger(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} does not exist: nothing was sent yet (run the campaign first, or name the output \
         with --ledger FILE)",
        path.display()
    )
}

/// `<ledger stem>.export.csv` (or `.mailchimp.xlsx`, ...) beside the ledger.
fn default_out(ledger: &Path, tool: Option<export::Tool>, format: Format) -> PathBuf {
    let stem = ledger
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkouts".to_owned());
    let kind = match tool {
        None => "export",
        Some(export::Tool::Mailchimp) => "mailchimp",
        Some(export::Tool::Hubspot) => "hubspot",
    };
    ledger.with_file_name(format!("{stem}.{kind}.{}", format.extension()))
}

/// An export written over the ledger or the customers file would destroy the only record of
/// what was sent, or the user's list.
fn refuse_own_inputs(out: &Path, ledger: &Path, campaign: Option<&Campaign>) -> anyhow::Result<()> {
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let mut inputs = vec![ledger];
    if let Some(campaign) = campaign {
        inputs.push(&campaign.customers);
        inputs.push(&campaign.path);
    }
    if let Some(input) = inputs.into_iter().find(|input| same(out, input)) {
        bail!(
            "--out {} is one of the export's own inputs: choose another file",
            input.display()
        );
    }
    Ok(())
}

/// Rows left out, by reason, and rows found changed.
#[derive(Debug, Default)]
struct Tally {
    failed: u64,
    invalid: u64,
    pending: u64,
    /// Left out on purpose by `exclude:` or `where:`.
    skipped: u64,
    /// Created, but no link was recorded (an answer without a usable `checkout_url`).
    no_link: u64,
    /// Created for a customer given by id: the ledger has no email for it.
    no_email: u64,
    /// Rows whose customer the ledger does not know, where it holds another at that row.
    changed: u64,
    /// Rows found in the ledger under another row number (rows moved in the file).
    moved: u64,
    /// Ledger records after the customers file's last row.
    beyond_end: bool,
}

impl Tally {
    /// The export row for a ledger record (`extra` gives the chosen columns), or `None` with
    /// the reason counted.
    fn take(
        &mut self,
        record: &Record,
        extra: impl FnOnce() -> Vec<String>,
    ) -> Option<Vec<String>> {
        match record.status {
            Status::Failed => self.failed += 1,
            Status::Invalid => self.invalid += 1,
            Status::Pending => self.pending += 1,
            Status::Skipped => self.skipped += 1,
            Status::Created if record.checkout_url.trim().is_empty() => self.no_link += 1,
            Status::Created if record.email.trim().is_empty() => self.no_email += 1,
            Status::Created => {
                let mut row = vec![record.email.trim().to_owned()];
                row.extend(extra());
                row.push(record.checkout_url.clone());
                return Some(row);
            }
        }
        None
    }

    fn left_out(&self) -> u64 {
        self.failed
            + self.invalid
            + self.pending
            + self.skipped
            + self.no_link
            + self.no_email
            + self.changed
    }
}

/// The customers file and the ledger, read side by side.
struct Join {
    csv: CustomerCsv,
    renderer: Renderer,
    prior: Prior,
    /// Indexes of the `--columns` in the customers file, in the order asked.
    columns: Vec<usize>,
}

impl Join {
    fn open(campaign: &Campaign, prior: Prior, wanted: &[String]) -> anyhow::Result<Join> {
        let csv = CustomerCsv::open_with(&campaign.customers, &campaign.read_options())?;
        let renderer = Renderer::new(campaign, csv.headers())?;
        let columns = wanted
            .iter()
            .map(|name| find_column(csv.headers(), name, &campaign.customers))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Join {
            csv,
            renderer,
            prior,
            columns,
        })
    }

    fn column_names(&self) -> Vec<String> {
        let headers = self.csv.headers();
        self.columns.iter().map(|&i| headers[i].clone()).collect()
    }

    /// Streams the customers file; each row's ledger record is the one its request_id finds.
    fn write(
        mut self,
        out: &Path,
        format: Format,
        header: &[String],
        tally: &mut Tally,
    ) -> anyhow::Result<u64> {
        let mut record = CsvRecord::default();
        let mut last_row = 0;
        let written = export::write(out, format, header, || {
            while self.csv.read(&mut record)? {
                last_row = record.row;
                let Ok(fields) = self.csv.fields(&record) else {
                    tally.invalid += 1; // the run recorded it invalid too
                    continue;
                };
                let Ok(request_id) = self.renderer.request_id(record.row, &fields) else {
                    tally.invalid += 1;
                    continue;
                };
                let found = self.prior.lookup(record.row, &request_id)?;
                let Some((found, _)) = found else {
                    if self.prior.at_row(record.row).is_some() {
                        tally.changed += 1;
                    } else {
                        tally.pending += 1; // never reached by a run
                    }
                    continue;
                };
                if found.row != record.row {
                    tally.moved += 1;
                }
                let extra = || {
                    self.columns
                        .iter()
                        .map(|&i| {
                            fields
                                .get(i)
                                .map(|v| v.trim().to_owned())
                                .unwrap_or_default()
                        })
                        .collect()
                };
                if let Some(row) = tally.take(&found, extra) {
                    return Ok(Some(row));
                }
            }
            Ok(None)
        })?;
        tally.beyond_end = self.prior.at_row(last_row + 1).is_some();
        Ok(written)
    }
}

/// The index of column `name`: exact, else the one name equal ignoring case and spaces.
fn find_column(headers: &[String], name: &str, file: &Path) -> anyhow::Result<usize> {
    if let Some(i) = headers.iter().position(|h| h == name) {
        return Ok(i);
    }
    let loose = |s: &str| s.trim().to_lowercase();
    let close: Vec<usize> = (0..headers.len())
        .filter(|&i| loose(&headers[i]) == loose(name))
        .collect();
    if let [i] = close.as_slice() {
        return Ok(*i);
    }
    let names: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut message = format!(
        "--columns: {} has no column `{}`",
        file.display(),
        escape_control(name)
    );
    if let Some(close) = crate::diagnostic::did_you_mean(name, &names) {
        message.push_str(&format!(" (did you mean `{}`?)", escape_control(close)));
    }
    let list: Vec<String> = names
        .iter()
        .map(|n| escape_control(n).into_owned())
        .collect();
    message.push_str(&format!("\n  its columns: {}", list.join(", ")));
    bail!(message)
}

/// What was written, what was left out and why, on stdout; warnings on stderr.
fn report(
    out: &Path,
    header: &[String],
    written: u64,
    tally: &Tally,
    target: &Path,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let columns: Vec<String> = header
        .iter()
        .map(|h| escape_control(h).into_owned())
        .collect();
    writeln!(
        stdout,
        "wrote {} checkout link{} to {} ({})",
        written,
        if written == 1 { "" } else { "s" },
        out.display(),
        columns.join(", ")
    )?;
    if tally.left_out() > 0 {
        let reasons: Vec<String> = [
            (tally.failed, "failed"),
            (tally.invalid, "invalid"),
            (tally.pending, "pending (not sent yet)"),
            (tally.skipped, "skipped (exclude: or where:)"),
            (tally.no_link, "created without a checkout_url"),
            (tally.no_email, "without an email (customer given by id)"),
            (
                tally.changed,
                "not in the ledger (added or changed since the run)",
            ),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        writeln!(
            stdout,
            "left out {} row{} with no link: {}",
            tally.left_out(),
            if tally.left_out() == 1 { "" } else { "s" },
            reasons.join(", ")
        )?;
        if tally.failed + tally.pending + tally.changed > 0 {
            writeln!(
                stdout,
                "to create the missing links: creem-batch run {}, then export again",
                shell_word(&target.display().to_string())
            )?;
        }
    }
    stdout.flush()?;
    if tally.changed > 0 || tally.moved > 0 || tally.beyond_end {
        let mut parts = Vec::new();
        if tally.changed > 0 {
            parts.push(format!(
                "{} row(s) hold another customer than the ledger records at their row",
                tally.changed
            ));
        }
        if tally.moved > 0 {
            parts.push(format!(
                "{} row(s) moved (found in the ledger under another row number)",
                tally.moved
            ));
        }
        if tally.beyond_end {
            parts.push("the ledger has records after the file's last row".to_owned());
        }
        eprintln!(
            "warning: the customers file changed since the run: {}; only rows whose \
             request_id matches the ledger were exported",
            parts.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
