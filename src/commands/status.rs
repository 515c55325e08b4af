//! `status`: fetch every created checkout's current status into the ledger, and report counts
//! and the conversion rate (overall and, with `--by`, per value of one column).
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

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;

use super::shared::{apply_send_flags, is_campaign_file, runtime, shell_word, watch_signals};
use crate::campaign::{Campaign, SendSettings};
use crate::cli::StatusArgs;
use crate::conversion::{is_final, Report, ERROR, UNKNOWN};
use crate::customers::CustomerCsv;
use crate::escape::escape_control;
use crate::exit::{quiet_on_broken_pipe, Outcome, QuietPipe};
use crate::ledger::{self, Record, Status, COLUMNS};
use crate::progress::{Labels, Live, Progress, Tally};
use crate::sender::{key_rejected, Delivery, FailureKind, Sender};
use crate::sync::lock;
use crate::target;

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

/// The campaign's customers CSV, when the command was given the campaign.
struct Customers {
    path: PathBuf,
    delimiter: Option<u8>,
}

/// The column `--by` names.
enum By {
    /// A ledger column.
    Ledger(String),
    /// A column of the customers CSV (joined to the ledger on `row`), still to be read.
    Customers {
        name: String,
        csv: Box<CustomerCsv>,
        index: usize,
    },
}

impl By {
    /// Finds the column: the customers CSV's first (it is the user's own data), then the
    /// ledger's. An unknown name is a usage error that lists what exists.
    fn resolve(name: &str, customers: Option<&Customers>) -> anyhow::Result<By> {
        let mut available = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        if let Some(customers) = customers {
            let csv = CustomerCsv::open(&customers.path, customers.delimiter)?;
            if let Some(index) = csv.headers().iter().position(|h| h == name) {
                return Ok(By::Customers {
                    name: name.to_owned(),
                    csv: Box::new(csv),
                    index,
                });
            }
            available.push(format!(
                "customers CSV ({}): {}",
                customers.path.display(),
                csv.headers().join(", ")
            ));
            candidates.extend(csv.headers().iter().cloned());
        }
        if COLUMNS.contains(&name) {
            return Ok(By::Ledger(name.to_owned()));
        }
        available.push(format!("ledger: {}", COLUMNS.join(", ")));
        candidates.extend(COLUMNS.iter().map(|c| c.to_string()));
        let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let mut message = format!("--by: there is no column `{name}`");
        if let Some(close) = crate::diagnostic::did_you_mean(name, &candidates) {
            message.push_str(&format!(" (did you mean `{close}`?)"));
        }
        message.push_str(";\n  available columns:\n    ");
        message.push_str(&available.join("\n    "));
        if customers.is_none() {
            message.push_str(
                "\n  give the campaign YAML instead of the output CSV to use the customers CSV's columns",
            );
        }
        anyhow::bail!(message)
    }

    fn column(&self) -> &str {
        match self {
            By::Ledger(name) | By::Customers { name, .. } => name,
        }
    }

    fn source(&self) -> &'static str {
        match self {
            By::Ledger(_) => "ledger",
            By::Customers { .. } => "customers",
        }
    }

    /// The group of every record (empty for rows without a value), computed once. For a
    /// customers CSV column, the CSV is streamed and only the values of created rows kept.
    fn groups(self, records: &[Record]) -> anyhow::Result<Vec<String>> {
        match self {
            By::Ledger(name) => Ok(records
                .iter()
                .map(|r| r.column(&name).unwrap_or_default().into_owned())
                .collect()),
            By::Customers { mut csv, index, .. } => {
                // `read_all` returns records in row order, so a row is found by binary search.
                let wanted = |row: u64| {
                    records
                        .binary_search_by_key(&row, |r| r.row)
                        .is_ok_and(|i| records[i].status == Status::Created)
                };
                let mut values: HashMap<u64, String> = HashMap::new();
                let mut record = crate::customers::CsvRow::default();
                while csv.read(&mut record)? {
                    if wanted(record.row) {
                        let value = record
                            .fields
                            .get(index)
                            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
                            .unwrap_or_default();
                        values.insert(record.row, value);
                    }
                }
                Ok(records
                    .iter()
                    .map(|r| values.remove(&r.row).unwrap_or_default())
                    .collect())
            }
        }
    }
}

/// What the fetch pass brought back.
#[derive(Default)]
struct Pass {
    deliveries: Vec<(usize, Delivery)>,
    abort: Option<String>,
    interrupted: bool,
    requests: u64,
    retries: u64,
    target: String,
}

async fn status(
    args: StatusArgs,
    output: PathBuf,
    settings: SendSettings,
    by: Option<By>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let _lock = ledger::Lock::acquire(&output)?;
    let mut records = ledger::read_all(&output)?;
    let column = by.as_ref().map(|b| b.column().to_owned());
    let source = by.as_ref().map(By::source);
    let groups = by.map(|b| b.groups(&records)).transpose()?;

    let created_with_id = |r: &Record| r.status == Status::Created && !r.checkout_id.is_empty();
    let to_fetch: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| created_with_id(r) && !(args.only_open && is_final(&r.checkout_status)))
        .map(|(i, _)| i)
        .collect();
    let skipped = records.iter().filter(|r| created_with_id(r)).count() - to_fetch.len();
    let pass = if to_fetch.is_empty() {
        Pass::default() // nothing to ask: no key needed
    } else {
        fetch(&args, &settings, &output, &records, &to_fetch).await?
    };

    let mut failed = vec![false; records.len()];
    let (mut fetched, mut not_checked, mut changed) = (0u64, 0u64, false);
    let mut errors: Vec<(u64, String)> = Vec::new();
    for (i, delivery) in pass.deliveries {
        let record = &mut records[i];
        match &delivery {
            Delivery::Created { checkout, .. } => {
                fetched += 1;
                if let Some(order_id) = checkout.order_id() {
                    let order_id = escape_control(&order_id).into_owned();
                    changed |= record.order_id != order_id;
                    record.order_id = order_id;
                }
                let status = escape_control(&checkout.status).into_owned();
                changed |= record.checkout_status != status;
                record.checkout_status = status;
            }
            Delivery::Failed { .. } | Delivery::Unusable { .. } => {
                failed[i] = true;
                errors.push((record.row, delivery.error_text()));
            }
            Delivery::NotSent { .. } => not_checked += 1,
        }
    }
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
    let mut line = format!(
        "{} rows, {} created: {fetched} fetched, {} failed",
        records.len(),
        report.overall.created,
        errors.len()
    );
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
            "interrupted; to check the rest: creem-batch status {} --only-open",
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

/// The target the ledger's records name (see [`target::of_ledger`]).
pub(super) fn ledger_target(records: &[Record]) -> Option<String> {
    let first = |cell: fn(&Record) -> &str| records.iter().map(cell).find(|c| !c.is_empty());
    target::of_ledger(first(|r| &r.target), first(|r| &r.checkout_url))
}

/// Fetches the checkouts of `records[rows]` under the rate limiter and concurrency bound.
async fn fetch(
    args: &StatusArgs,
    settings: &SendSettings,
    output: &Path,
    records: &[Record],
    rows: &[usize],
) -> anyhow::Result<Pass> {
    let target = target::resolve(&args.host, &args.key).await?;
    target::refuse_mixed(
        output,
        ledger_target(records).as_deref(),
        &target.label(),
        "check it against the target that wrote it (--sandbox, the test host, or --live); nothing was fetched",
    )?;
    let sender = Arc::new(Sender::new(settings, &target.base_url, &target.key)?);
    let interrupted = Arc::new(AtomicBool::new(false));
    watch_signals(sender.stop.clone(), interrupted.clone())?;
    let tally = Arc::new(Tally::default());
    let progress = Progress::start(
        rows.len() as u64,
        args.quiet,
        tally.clone(),
        sender.clone() as Arc<dyn Live>,
        Labels::CHECKING,
    );
    let abort = Mutex::new(None::<String>);
    let deliveries: Vec<(usize, Delivery)> = futures::stream::iter(rows.iter().copied())
        .map(|i| {
            let (sender, tally, abort) = (&sender, &tally, &abort);
            async move {
                let delivery = sender.fetch(&records[i].checkout_id).await;
                match &delivery {
                    Delivery::Created { .. } => Tally::add(&tally.created),
                    Delivery::Failed { kind, error, .. } => {
                        Tally::add(&tally.failed);
                        if matches!(kind, FailureKind::Auth | FailureKind::Tls) {
                            // Every other fetch would be refused the same way.
                            lock(abort).get_or_insert_with(|| match kind {
                                FailureKind::Auth => key_rejected(&error.to_string()),
                                _ => error.to_string(),
                            });
                            sender.stop.cancel();
                        }
                    }
                    Delivery::Unusable { .. } => Tally::add(&tally.failed),
                    Delivery::NotSent { .. } => {}
                }
                Tally::add(&tally.done);
                (i, delivery)
            }
        })
        .buffer_unordered(settings.concurrency * 2)
        .collect()
        .await;
    progress.finish().await;
    let pass = Pass {
        deliveries,
        abort: abort
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        interrupted: interrupted.load(Ordering::Relaxed),
        requests: sender.counters.attempts.load(Ordering::Relaxed),
        retries: sender.counters.retries.load(Ordering::Relaxed),
        target: target.describe(),
    };
    if let Some(sandbox) = target.sandbox {
        sandbox.shutdown().await;
    }
    Ok(pass)
}
