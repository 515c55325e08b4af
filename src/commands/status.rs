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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;

use super::shared::{apply_send_flags, is_campaign_file, runtime, shell_word, watch_signals};
use crate::campaign::{Campaign, SendSettings};
use crate::cli::{RunArgs, StatusArgs};
use crate::conversion::{is_final, Report, ERROR, UNKNOWN};
use crate::escape::escape_control;
use crate::exit::{quiet_on_broken_pipe, Outcome, QuietPipe};
use crate::grouping::{By, Customers};
use crate::ledger::{self, Record, Status};
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

/// What a fetch pass changed in the records.
struct Applied {
    /// By record: its fetch failed.
    failed: Vec<bool>,
    fetched: u64,
    not_checked: u64,
    changed: bool,
    /// Row and error of each failed fetch.
    errors: Vec<(u64, String)>,
}

/// Writes each fetched checkout's status (and order) into its record.
fn apply(records: &mut [Record], deliveries: Vec<(usize, Delivery)>) -> Applied {
    let mut applied = Applied {
        failed: vec![false; records.len()],
        fetched: 0,
        not_checked: 0,
        changed: false,
        errors: Vec::new(),
    };
    for (i, delivery) in deliveries {
        let record = &mut records[i];
        match &delivery {
            Delivery::Created { checkout, .. } => {
                applied.fetched += 1;
                if let Some(order_id) = checkout.order_id() {
                    let order_id = escape_control(&order_id).into_owned();
                    applied.changed |= record.order_id != order_id;
                    record.order_id = order_id;
                }
                let status = escape_control(&checkout.status).into_owned();
                if record.checkout_status != status {
                    // When the change was seen: `report` charts completions by it.
                    record.updated_at = ledger::now_rfc3339();
                    record.checkout_status = status;
                    applied.changed = true;
                }
            }
            Delivery::Failed { .. } | Delivery::Unusable { .. } => {
                applied.failed[i] = true;
                applied.errors.push((record.row, delivery.error_text()));
            }
            Delivery::NotSent { .. } => applied.not_checked += 1,
        }
    }
    applied
}

/// `run --reissue expired`'s first step: the open checkouts' statuses fetched into the ledger
/// (as a plain `status` would), so the rows that expired since are known. Stops the run when
/// the key is rejected, the pass was interrupted, or nothing could be fetched.
pub(super) async fn refresh(
    run: &RunArgs,
    output: PathBuf,
    settings: SendSettings,
) -> anyhow::Result<()> {
    let args = StatusArgs {
        target: output.clone(),
        by: None,
        all: false,
        offline: false,
        only_open: false,
        quiet: run.quiet,
        json: false,
        host: run.host.clone(),
        key: run.key.clone(),
        send: run.send.clone(),
    };
    let _lock = ledger::Lock::acquire(&output)?;
    ledger::take_rescued(&output)?; // checkouts an earlier run could not write
    let mut records = ledger::read_all(&output)?;
    let to_fetch: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.status == Status::Created
                && !r.checkout_id.is_empty()
                && !is_final(&r.checkout_status)
        })
        .map(|(i, _)| i)
        .collect();
    if to_fetch.is_empty() {
        return Ok(());
    }
    let pass = fetch(&args, &settings, &output, &records, &to_fetch).await?;
    if let Some(reason) = pass.abort {
        anyhow::bail!("refreshing the statuses before re-issuing: {reason}; nothing was sent");
    }
    if pass.interrupted {
        anyhow::bail!("interrupted while refreshing the statuses; nothing was sent");
    }
    let applied = apply(&mut records, pass.deliveries);
    if applied.fetched == 0 {
        anyhow::bail!(
            "no checkout status could be fetched from {} (first error: {}); nothing was sent (--no-refresh uses the ledger's)",
            pass.target,
            applied.errors.first().map_or("none", |(_, e)| e.as_str())
        );
    }
    if applied.changed {
        ledger::write_all(&output, &records)?;
    }
    let expired = records
        .iter()
        .filter(|r| r.status == Status::Created && r.checkout_status == "expired")
        .count();
    eprintln!(
        "refreshed {} of {} open checkout(s) from {}: {expired} expired in all",
        applied.fetched,
        to_fetch.len(),
        pass.target
    );
    Ok(())
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
