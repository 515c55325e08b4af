//! `run`: send the batch, or with `--dry-run` print what would be sent.
//!
//! Rows flow from a reader thread (CSV -> rendered request -> decision against the existing
//! ledger) through a bounded channel to the async senders, and every row's end goes to the
//! ledger writer. Nothing here holds more than a channel's worth of rows.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;

use super::shared::{apply_send_flags, shell_word, watch_signals};
use crate::batch::{Batch, RowPlan};
use crate::campaign::Campaign;
use crate::cli::RunArgs;
use crate::exit::Outcome;
use crate::ledger::{self, Entry, Prior, Record, Span, Status};
use crate::progress::{Labels, Live, Progress, Tally};
use crate::render::Request;
use crate::sender::{Breaker, Delivery, Sender};
use crate::target::{self, Target};

pub fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let mut campaign = Campaign::load(&args.campaign)?;
    apply_send_flags(&mut campaign.send, &args.send)?;
    if let Some(out) = &args.out {
        campaign.output = out.clone();
    }
    let batch = Batch::open(campaign)?;
    if args.dry_run {
        return dry_run(batch, &args);
    }
    super::shared::runtime()?.block_on(send(batch, args))
}

/// What the existing ledger says about a row that is ready to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// No record of it, or the last attempt failed or never happened.
    Send { retry: bool },
    /// Created before with the same body.
    Done,
    /// Created before with a different body.
    Changed,
}

fn decide(prior: Option<&Record>, request: &Request) -> Decision {
    match prior {
        Some(p) if p.status == Status::Created => {
            if p.body_sha256 == request.body_sha256 {
                Decision::Done
            } else {
                Decision::Changed
            }
        }
        Some(p) => Decision::Send {
            retry: p.status != Status::Invalid,
        },
        None => Decision::Send { retry: false },
    }
}

/// Counts for the plan (dry run) and the summary (run).
#[derive(Debug, Default)]
struct Plan {
    rows: u64,
    new: u64,
    retry: u64,
    done: u64,
    changed: u64,
    invalid: u64,
    invalid_examples: Vec<(u64, String)>,
    changed_examples: Vec<(u64, String)>,
    /// Rows that would be sent but are held back by `--limit` (dry run).
    limited: u64,
}

const EXAMPLES: usize = 10;

impl Plan {
    fn invalid(&mut self, row: u64, reason: &str) {
        self.invalid += 1;
        if self.invalid_examples.len() < EXAMPLES {
            self.invalid_examples.push((row, reason.to_owned()));
        }
    }

    fn changed(&mut self, row: u64, prior: &Record, request: &Request) {
        self.changed += 1;
        if self.changed_examples.len() < EXAMPLES {
            let fields = changed_fields(&prior.body, &request.body);
            self.changed_examples.push((row, fields));
        }
    }

    fn print_problems(&self, err: &mut impl Write) -> std::io::Result<()> {
        if self.changed > 0 {
            writeln!(
                err,
                "{} created row(s) have a different body now (not re-sent; --recreate-changed makes new checkouts):",
                self.changed
            )?;
            for (row, fields) in &self.changed_examples {
                writeln!(err, "  row {row}: {fields}")?;
            }
        }
        if self.invalid > 0 {
            writeln!(err, "{} invalid row(s):", self.invalid)?;
            for (row, reason) in &self.invalid_examples {
                writeln!(err, "  row {row}: {reason}")?;
            }
            if self.invalid > self.invalid_examples.len() as u64 {
                writeln!(
                    err,
                    "  ... and {} more",
                    self.invalid - self.invalid_examples.len() as u64
                )?;
            }
        }
        Ok(())
    }
}

/// Names the body fields that differ, e.g. "discount_code, metadata.segment".
fn changed_fields(before: &str, after: &[u8]) -> String {
    let before: serde_json::Value = serde_json::from_str(before).unwrap_or_default();
    let after: serde_json::Value = serde_json::from_slice(after).unwrap_or_default();
    let mut names = Vec::new();
    diff_objects("", &before, &after, &mut names);
    if names.is_empty() {
        "body changed".to_owned()
    } else {
        format!("changed {}", names.join(", "))
    }
}

fn diff_objects(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    let empty = serde_json::Map::new();
    let a_map = a.as_object().unwrap_or(&empty);
    let b_map = b.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = a_map.keys().chain(b_map.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (x, y) = (a_map.get(key), b_map.get(key));
        if x == y {
            continue;
        }
        let name = format!("{prefix}{key}");
        match (x, y) {
            (Some(x), Some(y)) if x.is_object() && y.is_object() && key == "metadata" => {
                diff_objects(&format!("{name}."), x, y, out)
            }
            _ => out.push(name),
        }
    }
}

/// Prints one JSON line per row that would be sent, and the plan on stderr.
fn dry_run(mut batch: Batch, args: &RunArgs) -> anyhow::Result<Outcome> {
    let mut prior = Prior::open(&batch.campaign.output)?;
    if prior.is_none() {
        batch.without_body_hashes();
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut plan = Plan {
        rows: batch.total_rows(),
        ..Plan::default()
    };
    let mut line = Vec::with_capacity(1024);
    let mut to_send = 0u64;
    while let Some(row_plan) = batch.next_row()? {
        match row_plan {
            RowPlan::Ready { row, request } => {
                let prior_record = match prior.as_mut() {
                    Some(p) => p.lookup(row, &request.request_id)?.map(|(r, _)| r),
                    None => None,
                };
                match decide(prior_record.as_ref(), &request) {
                    Decision::Done => {
                        plan.done += 1;
                        continue;
                    }
                    Decision::Changed => {
                        plan.changed(row, prior_record.as_ref().expect("created"), &request);
                        if !args.recreate_changed {
                            continue;
                        }
                    }
                    Decision::Send { retry: true } => plan.retry += 1,
                    Decision::Send { retry: false } => plan.new += 1,
                }
                // The same cut as a real run: the first N rows that would be sent.
                if args.limit.is_some_and(|limit| to_send >= limit) {
                    plan.limited += 1;
                    continue;
                }
                to_send += 1;
                line.clear();
                line.extend_from_slice(b"{\"request_id\":");
                crate::json::push_str(&mut line, &request.request_id);
                line.extend_from_slice(b",\"row\":");
                line.extend_from_slice(itoa::Buffer::new().format(row).as_bytes());
                line.extend_from_slice(b",\"body\":");
                line.extend_from_slice(&request.body);
                line.extend_from_slice(b"}\n");
                out.write_all(&line)?;
            }
            RowPlan::Invalid { row, rejection } => plan.invalid(row, &rejection.reason),
        }
    }
    out.flush()?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "plan: {} rows: {} new, {} to retry, {} already created, {} changed since created, {} invalid",
        plan.rows, plan.new, plan.retry, plan.done, plan.changed, plan.invalid
    )?;
    if plan.limited > 0 {
        writeln!(
            err,
            "--limit {}: {to_send} row(s) would be sent now, {} left pending",
            args.limit.unwrap_or_default(),
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

/// One row on its way to Creem.
struct Job {
    row: u64,
    request: Request,
    note: String,
    /// The row's record in the existing ledger. Retired only once the row really was sent:
    /// a row stopped before sending keeps it (a `created` row queued by --recreate-changed
    /// must not lose its checkout id because of a Ctrl-C).
    prior: Option<Span>,
}

/// What the reader thread decided, for the summary.
#[derive(Default)]
struct Produced {
    plan: Plan,
    limited: u64,
}

async fn send(batch: Batch, args: RunArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let campaign = batch.campaign.clone();
    let output = campaign.output.clone();
    let target = target::resolve(&args.host, &args.key).await?;
    let _lock = ledger::Lock::acquire(&output)?;
    let mut prior = Prior::open(&output)?;
    if prior.as_ref().is_some_and(|p| !p.standard_layout()) {
        let backup = ledger::normalise(&output)?;
        eprintln!(
            "note: the columns of {} were changed (in a spreadsheet?); it was rewritten with the standard columns, the original is kept as {}",
            output.display(),
            backup.display()
        );
        prior = Prior::open(&output)?;
    }
    if let Some(other) = prior.as_ref().and_then(|p| p.campaign.clone()) {
        if other != campaign.name && !args.force {
            anyhow::bail!(
                "{} holds the ledger of campaign `{other}`, not `{}`; use another --out, or --force to mix them (nothing was sent)",
                output.display(),
                campaign.name
            );
        }
    }
    if target.live {
        confirm_live(&campaign, batch.total_rows(), &target, args.yes)?;
    }
    let writer = ledger::Writer::start(&output, prior.as_ref(), batch.total_rows())?;
    let sender = Arc::new(Sender::new(&campaign.send, &target.base_url, &target.key)?);
    let interrupted = Arc::new(AtomicBool::new(false));
    watch_signals(sender.stop.clone(), interrupted.clone())?;

    // Jobs travel in small batches: one hand-off (and at most one thread wake-up) per batch.
    let (jobs_tx, jobs_rx) =
        tokio::sync::mpsc::channel::<Vec<Job>>(campaign.send.concurrency.div_ceil(JOB_BATCH) + 2);
    let entries = writer.sender();
    let stop = sender.stop.clone();
    let limit = args.limit;
    let recreate = args.recreate_changed;
    let campaign_name = campaign.name.clone();
    let tally = Arc::new(Tally::default());
    let total_rows = batch.total_rows();
    let reader_tally = tally.clone();
    let reader = std::thread::Builder::new()
        .name("rows".into())
        .spawn(move || {
            produce(
                batch,
                prior,
                jobs_tx,
                entries,
                stop,
                limit,
                recreate,
                reader_tally,
            )
        })
        .context("cannot start the row reader")?;

    let progress = Progress::start(
        total_rows,
        args.quiet,
        tally.clone(),
        sender.clone() as Arc<dyn Live>,
        Labels::SENDING,
    );
    let breaker = Breaker::default();
    let entries = writer.sender();
    let abort_reason = std::sync::Mutex::new(None::<String>);
    let pending = AtomicU64::new(0);
    tokio_stream_from(jobs_rx)
        .flat_map(futures::stream::iter)
        .for_each_concurrent(campaign.send.concurrency * 2, |job| {
            let sender = &sender;
            let entries = &entries;
            let breaker = &breaker;
            let tally = &tally;
            let abort_reason = &abort_reason;
            let pending = &pending;
            let campaign_name = &campaign_name;
            async move {
                let delivery = sender.create(job.request.body.clone()).await;
                if let Some(reason) = breaker.record(&delivery) {
                    sender.stop.cancel();
                    *abort_reason.lock().expect("not poisoned") = Some(reason);
                }
                match &delivery {
                    Delivery::Created { .. } => Tally::add(&tally.created),
                    Delivery::Failed { .. } => Tally::add(&tally.failed),
                    Delivery::NotSent { .. } => {
                        pending.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Tally::add(&tally.done);
                let (row, prior) = (job.row, job.prior);
                match (&delivery, prior) {
                    (Delivery::NotSent { .. }, Some(span)) => {
                        entries.send(Entry::Keep { row, span });
                    }
                    _ => {
                        let record = record_of(campaign_name, job, delivery);
                        entries.send(Entry::Write(Box::new(record)));
                        if let Some(span) = prior {
                            entries.send(Entry::Retire(span));
                        }
                    }
                }
            }
        })
        .await;
    progress.finish().await;
    let produced = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the row reader panicked"))??;
    drop(entries);
    writer.finish()?;
    let target_name = target.describe();
    if let Some(sandbox) = target.sandbox {
        sandbox.shutdown().await;
    }

    let elapsed = started.elapsed();
    let created = tally.created.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    let not_sent = pending.load(Ordering::Relaxed) + produced.limited;
    let attempts = sender.counters.attempts.load(Ordering::Relaxed);
    let plan = &produced.plan;
    let mut err = std::io::stderr().lock();
    plan.print_problems(&mut err)?;
    writeln!(
        err,
        "{} rows: {created} created, {failed} failed, {} invalid, {not_sent} pending, {} already created{}",
        plan.rows,
        plan.invalid,
        plan.done,
        if plan.changed > 0 && !recreate {
            format!(" ({} of them changed since)", plan.changed)
        } else {
            String::new()
        }
    )?;
    writeln!(
        err,
        "{attempts} requests ({} retries) to {} in {:.1}s, {:.1} req/s; results in {}",
        sender.counters.retries.load(Ordering::Relaxed),
        target_name,
        elapsed.as_secs_f64(),
        crate::sender::per_second(attempts, elapsed),
        output.display()
    )?;
    let abort = abort_reason.lock().expect("not poisoned").take();
    let was_interrupted = interrupted.load(Ordering::Relaxed);
    if failed > 0 || not_sent > 0 {
        let why = if was_interrupted {
            "interrupted; ".to_owned()
        } else if produced.limited > 0 && abort.is_none() {
            format!("{} row(s) left pending by --limit; ", produced.limited)
        } else {
            String::new()
        };
        writeln!(err, "{why}to send the rest: {}", resume_command(&args))?;
    }
    if args.json {
        let summary = serde_json::json!({
            "command": "run",
            "campaign": campaign.name,
            "output": output.display().to_string(),
            "rows": plan.rows,
            "created": created,
            "failed": failed,
            "invalid": plan.invalid,
            "pending": not_sent,
            "already_created": plan.done,
            "changed": plan.changed,
            "requests": attempts,
            "elapsed_seconds": elapsed.as_secs_f64(),
            "exit": if abort.is_some() { "aborted" } else if was_interrupted { "interrupted" } else if failed + plan.invalid > 0 { "some_rows_failed" } else { "ok" },
        });
        println!("{summary}");
    }
    if let Some(reason) = abort {
        writeln!(err, "stopped: {reason}")?;
        return Ok(Outcome::Aborted);
    }
    if was_interrupted {
        return Ok(Outcome::Interrupted);
    }
    Ok(if failed + plan.invalid > 0 {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}

/// The command that picks up where this run stopped: the same campaign, output, host, key
/// source and send settings (not `--limit`: the rest is what is left to send).
fn resume_command(args: &RunArgs) -> String {
    let mut command = format!(
        "creem-batch run {}",
        shell_word(&args.campaign.display().to_string())
    );
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            command.push_str(&format!(" {name} {}", shell_word(&value)));
        }
    };
    flag("--out", args.out.as_ref().map(|p| p.display().to_string()));
    flag("--base-url", args.host.base_url.clone());
    flag(
        "--api-key-file",
        args.key
            .api_key_file
            .as_ref()
            .map(|p| p.display().to_string()),
    );
    flag("--rate", args.send.rate.clone());
    flag("--burst", args.send.burst.map(|n| n.to_string()));
    flag(
        "--concurrency",
        args.send.concurrency.map(|n| n.to_string()),
    );
    flag(
        "--max-attempts",
        args.send.max_attempts.map(|n| n.to_string()),
    );
    flag("--timeout", args.send.timeout.clone());
    for (set, name) in [
        (args.host.sandbox, "--sandbox"),
        (args.host.live, "--live"),
        (args.force, "--force"),
        (args.recreate_changed, "--recreate-changed"),
    ] {
        if set {
            command.push(' ');
            command.push_str(name);
        }
    }
    command
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Reads every row, decides against the prior ledger, and queues what must be sent.
#[allow(clippy::too_many_arguments)]
fn produce(
    mut batch: Batch,
    mut prior: Option<Prior>,
    jobs: tokio::sync::mpsc::Sender<Vec<Job>>,
    entries: ledger::EntrySender,
    stop: tokio_util::sync::CancellationToken,
    limit: Option<u64>,
    recreate: bool,
    tally: Arc<Tally>,
) -> anyhow::Result<Produced> {
    let campaign = batch.campaign.name.clone();
    let mut produced = Produced::default();
    produced.plan.rows = batch.total_rows();
    let mut queued = 0u64;
    let mut ready = Vec::with_capacity(JOB_BATCH);
    let write = |record: Record| {
        entries.send(Entry::Write(Box::new(record)));
    };
    while let Some(row_plan) = batch.next_row()? {
        let row = row_plan.row();
        if !matches!(row_plan, RowPlan::Ready { .. }) {
            Tally::add(&tally.done);
        }
        let found = match prior.as_mut() {
            Some(p) => p.lookup(row, row_plan.request_id())?,
            None => None,
        };
        match row_plan {
            RowPlan::Invalid { rejection, .. } => {
                produced.plan.invalid(row, &rejection.reason);
                match found {
                    // Never drop a created checkout from the ledger because its row broke.
                    Some((p, span)) if p.status == Status::Created => {
                        entries.send(Entry::Keep { row, span });
                    }
                    _ => {
                        let mut record = Record::new(
                            &campaign,
                            row,
                            &rejection.request_id,
                            &rejection.email,
                            Status::Invalid,
                        );
                        record.error = rejection.reason;
                        write(record);
                    }
                }
            }
            RowPlan::Ready { request, .. } => {
                let prior_record = found.as_ref().map(|(r, _)| r);
                let decision = decide(prior_record, &request);
                let mut note = String::new();
                match decision {
                    Decision::Done => {
                        Tally::add(&tally.done);
                        produced.plan.done += 1;
                        let span = found.expect("done implies a record").1;
                        entries.send(Entry::Keep { row, span });
                        continue;
                    }
                    Decision::Changed => {
                        let (p, span) = found.as_ref().expect("changed implies a record");
                        produced.plan.changed(row, p, &request);
                        if !recreate {
                            Tally::add(&tally.done);
                            produced.plan.done += 1;
                            entries.send(Entry::Keep { row, span: *span });
                            continue;
                        }
                        note = format!(
                            "recreated: the body changed; previous checkout {}",
                            p.checkout_id
                        );
                    }
                    Decision::Send { retry: true } => produced.plan.retry += 1,
                    Decision::Send { retry: false } => produced.plan.new += 1,
                }
                let over_limit = limit.is_some_and(|l| queued >= l);
                if over_limit || stop.is_cancelled() {
                    if over_limit {
                        produced.limited += 1;
                    }
                    match found {
                        Some((p, span)) if p.status != Status::Invalid => {
                            entries.send(Entry::Keep { row, span });
                        }
                        _ => {
                            let mut record = Record::new(
                                &campaign,
                                row,
                                &request.request_id,
                                &request.email,
                                Status::Pending,
                            );
                            record.body_sha256 = request.body_sha256;
                            write(record);
                        }
                    }
                    Tally::add(&tally.done);
                    continue;
                }
                queued += 1;
                let prior = found.map(|(_, span)| span);
                let job = Job {
                    row,
                    request,
                    note,
                    prior,
                };
                ready.push(job);
                if ready.len() >= JOB_BATCH {
                    let full = std::mem::replace(&mut ready, Vec::with_capacity(JOB_BATCH));
                    if jobs.blocking_send(full).is_err() {
                        anyhow::bail!("the senders stopped unexpectedly");
                    }
                }
            }
        }
    }
    if !ready.is_empty() && jobs.blocking_send(ready).is_err() {
        anyhow::bail!("the senders stopped unexpectedly");
    }
    Ok(produced)
}

/// Rows handed to the senders at a time.
const JOB_BATCH: usize = 16;

fn record_of(campaign: &str, job: Job, delivery: Delivery) -> Record {
    let request = job.request;
    let mut record = Record::new(
        campaign,
        job.row,
        &request.request_id,
        &request.email,
        Status::Pending,
    );
    record.body_sha256 = request.body_sha256;
    record.body = String::from_utf8(request.body).unwrap_or_default();
    match delivery {
        Delivery::Created {
            checkout,
            http_status,
            attempts,
            note,
        } => {
            record.status = Status::Created;
            record.checkout_id = checkout.id;
            record.checkout_url = checkout.checkout_url;
            record.checkout_status = checkout.status;
            record.http_status = Some(http_status);
            record.attempts = attempts;
            record.error = [job.note, note]
                .into_iter()
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
        }
        Delivery::Failed {
            http_status,
            error,
            attempts,
            ..
        } => {
            record.status = Status::Failed;
            record.http_status = http_status;
            record.attempts = attempts;
            record.error = error;
        }
        Delivery::NotSent { attempts } => record.attempts = attempts,
    }
    record
}

/// `--live` on a terminal asks before sending real checkouts, unless `--yes`.
fn confirm_live(campaign: &Campaign, rows: u64, target: &Target, yes: bool) -> anyhow::Result<()> {
    if yes || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(());
    }
    eprint!(
        "About to create up to {rows} LIVE checkouts for campaign `{}` (product {}) on {}.\nType yes to go on: ",
        campaign.name,
        campaign.checkout.product_id.value,
        target.describe()
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        anyhow::bail!("not confirmed; nothing was sent");
    }
    Ok(())
}
