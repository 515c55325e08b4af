//! `status`: fetch the current status of every created checkout that can still change (not
//! completed or expired; all of them with `--all`, none with `--offline`) into the ledger, and
//! report counts and the conversion rate (overall and, with `--by`, per value of one column of
//! the customers CSV, the ledger or the rendered body).
//!
//! The fetches go through the same [`Sender`] as `run` (rate limiter, concurrency bound,
//! retries), with the campaign's `send:` settings when given the YAML, the defaults otherwise,
//! and the `--rate/--concurrency/...` flags on top. The ledger is locked for the whole pass and
//! rewritten once at the end, atomically; only `checkout_status` and `order_id` change.
//!
//! Exit codes:
//! - 0: the ledger was read and the checkouts fetched. A fetch that fails (404, retries run
//!   out, ...) is counted under `error` and keeps the row's previous `checkout_status`; it does
//!   not change the exit code as long as at least one fetch succeeded.
//! - 2: the ledger (or the campaign, or the customers CSV for `--by`) could not be read, `--by`
//!   names no column, or every fetch failed: then the API could not be read at all (wrong host,
//!   checkouts made on another host or by another sandbox), and the counts would only say so.
//! - 3: Creem rejected the key (401/403); the pass stops at once, like `run`.
//! - 130: interrupted; what was fetched so far is written.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use super::shared::{apply_send_flags, is_campaign_file, runtime, shell_word};
use crate::campaign::{Campaign, SendSettings};
use crate::cli::StatusArgs;
use crate::conversion::{is_final, Report, ERROR, UNKNOWN};
use crate::exit::{quiet_on_broken_pipe, Outcome, QuietPipe};
use crate::grouping::{By, Customers};
use crate::ledger::{self, Record, Status};
use crate::target;

pub(super) mod fetch;

use fetch::{apply, fetch, Applied, Pass};

/// Failed fetches listed in the summary (the rest are counted).
const EXAMPLES: usize = 10;

pub fn run(args: StatusArgs) -> anyhow::Result<Outcome> {
    let (output, mut settings, customers) = if is_campaign_file(&args.target) {
        let campaign = Campaign::load(&args.target)?;
        let customers = Customers {
            path: campaign.customers,
            delimiter: campaign.csv_delimiter,
        };
        // `--sandbox` reads the rehearsal's own file, as `run --sandbox` wrote it.
        let output = if args.host.sandbox {
            target::sandbox_output(&campaign.output)
        } else {
            campaign.output
        };
        (output, campaign.send, Some(customers))
    } else {
        (args.target.clone(), SendSettings::default(), None)
    };
    apply_send_flags(&mut settings, &args.send)?;
    let by = match &args.by {
        Some(name) => Some(By::resolve(name, customers.as_ref())?),
        None => None,
    };
    runtime()?.block_on(status(args, output, settings, by))
}

async fn status(
    args: StatusArgs,
    output: PathBuf,
    settings: SendSettings,
    by: Option<By>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let _lock = ledger::Lock::acquire(&output)?;
    ledger::take_rescued(&output)?; // checkouts an earlier run could not write
    let mut records = ledger::read_all(&output)?;
    let column = by.as_ref().map(|b| b.column().to_owned());
    let source = by.as_ref().map(By::source);
    let groups = by.map(|b| b.groups(&records)).transpose()?;

    let created_with_id = |r: &Record| r.status == Status::Created && !r.checkout_id.is_empty();
    let to_fetch: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            created_with_id(r) && !args.offline && (args.all || !is_final(&r.checkout_status))
        })
        .map(|(i, _)| i)
        .collect();
    let skipped = if args.offline {
        0
    } else {
        records.iter().filter(|r| created_with_id(r)).count() - to_fetch.len()
    };
    let pass = if to_fetch.is_empty() {
        Pass::default() // nothing to ask: no key needed
    } else {
        fetch(&args, &settings, &output, &records, &to_fetch).await?
    };

    let Applied {
        failed,
        fetched,
        not_checked,
        changed,
        mut errors,
    } = apply(&mut records, pass.deliveries);
    errors.sort_by_key(|(row, _)| *row);
    if changed {
        ledger::write_all(&output, &records)?;
    }

    let mut report = Report::new(column.as_deref());
    for (i, record) in records.iter().enumerate() {
        if record.status != Status::Created {
            continue;
        }
        let status = if failed[i] {
            ERROR
        } else if record.checkout_id.is_empty() {
            UNKNOWN
        } else {
            &record.checkout_status
        };
        let group = groups.as_ref().map_or("", |g| g[i].as_str());
        report.add(group, status);
    }

    let all_failed = !to_fetch.is_empty() && fetched == 0 && errors.len() == to_fetch.len();
    let exit = if pass.abort.is_some() {
        "aborted"
    } else if pass.interrupted {
        "interrupted"
    } else if all_failed {
        "all_fetches_failed"
    } else if !errors.is_empty() {
        "some_fetches_failed"
    } else {
        "ok"
    };
    let elapsed = started.elapsed();
    {
        // With --json, stdout is the JSON object alone and the human summary goes to stderr.
        let mut human: Box<dyn Write> = if args.json {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(QuietPipe::new(std::io::stdout().lock()))
        };
        report.write_human(&mut human)?;
        human.flush()?;
    }
    let mut err = std::io::stderr().lock();
    if !errors.is_empty() {
        writeln!(err, "{} fetch(es) failed:", errors.len())?;
        for (row, error) in errors.iter().take(EXAMPLES) {
            writeln!(err, "  row {row}: {error}")?;
        }
        if errors.len() > EXAMPLES {
            writeln!(err, "  ... and {} more", errors.len() - EXAMPLES)?;
        }
    }
    let mut line = if args.offline {
        format!(
            "{} rows, {} created: offline, nothing fetched",
            records.len(),
            report.overall.created
        )
    } else {
        format!(
            "{} rows, {} created: {fetched} fetched, {} failed",
            records.len(),
            report.overall.created,
            errors.len()
        )
    };
    if skipped > 0 {
        line.push_str(&format!(", {skipped} skipped as completed or expired"));
    }
    if not_checked > 0 {
        line.push_str(&format!(", {not_checked} not checked"));
    }
    if pass.requests > 0 {
        line.push_str(&format!(
            "; {} requests ({} retries) to {} in {:.1}s",
            pass.requests,
            pass.retries,
            pass.target,
            elapsed.as_secs_f64()
        ));
    }
    writeln!(
        err,
        "{line}; {} {}",
        if changed { "updated" } else { "unchanged:" },
        output.display()
    )?;
    if args.json {
        let mut summary = serde_json::Map::new();
        summary.insert("command".into(), "status".into());
        summary.insert("output".into(), output.display().to_string().into());
        summary.insert("rows".into(), records.len().into());
        summary.extend(report.json_fields(source));
        summary.insert("fetched".into(), fetched.into());
        summary.insert("failed_fetches".into(), errors.len().into());
        summary.insert("skipped".into(), skipped.into());
        summary.insert("not_checked".into(), not_checked.into());
        summary.insert("requests".into(), pass.requests.into());
        summary.insert("elapsed_seconds".into(), elapsed.as_secs_f64().into());
        summary.insert("exit".into(), exit.into());
        let mut out = std::io::stdout().lock();
        // A closed stdout (`--json | head -c1`) changes nothing about the exit.
        quiet_on_broken_pipe(
            writeln!(out, "{}", serde_json::Value::Object(summary)).and_then(|()| out.flush()),
        )?;
    }
    if let Some(reason) = pass.abort {
        writeln!(err, "stopped: {reason}")?;
        return Ok(Outcome::Aborted);
    }
    if pass.interrupted {
        writeln!(
            err,
            "interrupted; to check the rest: creem-batch status {}",
            shell_word(&args.target.display().to_string())
        )?;
        return Ok(Outcome::Interrupted);
    }
    if all_failed {
        anyhow::bail!(
            "no checkout could be fetched from {} (first error: {}); are these checkouts from this host and mode?",
            pass.target,
            errors[0].1
        );
    }
    Ok(Outcome::Success)
}
