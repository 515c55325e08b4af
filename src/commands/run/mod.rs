//! `run`: send the batch, or with `--dry-run` print what would be sent.
//!
//! A send is [`prepare`] (target, lock, prior ledger, guards, confirmation), [`execute`] and
//! a [`RunSummary`]. In `execute`, rows are read and rendered on the calling thread as the
//! stream of jobs asks for them, go through the sender (rate limiter, concurrency bound,
//! retries) a bounded number at a time, and every row's end goes to the ledger writer.
//! Nothing here holds more than the stream's window of rows.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use futures::StreamExt;

mod dry_run;
mod jobs;
mod refresh;

use dry_run::dry_run;
use jobs::{record_of, Job, Rows};

use super::run_summary::{Ended, RunSummary};
use super::shared::{apply_send_flags, watch_signals};
use crate::batch::Batch;
use crate::campaign::Campaign;
use crate::cli::{ReissueRows, RunArgs};
use crate::escape::escape_control;
use crate::exit::Outcome;
use crate::ledger::{self, Entry, Prior};
use crate::plan::{Planner, Reissue};
use crate::progress::{Labels, Live, Progress, Tally};
use crate::sender::{Breaker, Delivery, Sender};
use crate::sync::lock;
use crate::target::{self, Target};

pub fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let mut campaign = Campaign::load(&args.campaign)?;
    apply_send_flags(&mut campaign.send, &args.send)?;
    if let Some(out) = &args.out {
        campaign.output = out.clone();
    } else if args.host.sandbox {
        // A rehearsal never occupies the real output path: see `target::sandbox_output`.
        campaign.output = target::sandbox_output(&campaign.output);
    }
    let reissue = reissue_kind(&args);
    let mut refresh = reissue == Some(Reissue::Expired) && !args.no_refresh && !args.dry_run;
    if refresh && args.host.sandbox {
        // A fresh sandbox knows no earlier checkout: asking it would find none of them.
        eprintln!("note: --sandbox starts a fresh sandbox that knows no earlier checkout; the ledger's statuses decide (as with --no-refresh)");
        refresh = false;
    }
    if refresh && campaign.output.exists() {
        // Which checkouts expired is Creem's to say: ask before choosing the rows.
        let (output, send) = (campaign.output.clone(), campaign.send.clone());
        super::shared::runtime()?.block_on(refresh::refresh(&args, output, send))?;
    }
    // A run reads the ledger under its lock, so that no other run changes it meanwhile. An
    // output that does not exist yet is locked later, as it is created (not here, where a
    // bad CSV must still leave no trace).
    let lock = if !args.dry_run && campaign.output.exists() {
        Some(ledger::Lock::acquire(&campaign.output)?)
    } else {
        None
    };
    let output = campaign.output.clone();
    let mut batch = Batch::open(campaign)?; // the campaign's and the CSV's problems come first
    if lock.is_some() {
        ledger::take_rescued(&output)?; // checkouts an earlier run could not write
    }
    let prior = Prior::open(&output)?;
    match prior.as_ref().and_then(Prior::unchanged_rows) {
        // A re-issue looks at every row's record, unchanged or not.
        Some(_) if args.reissue.is_some() => {}
        Some(input_hashes) => batch.skip_unchanged(input_hashes),
        None if prior.is_none() && args.dry_run => batch.without_body_hashes(),
        None => {}
    }
    if args.dry_run {
        if let Some(warning) = ledger::rescued_warning(&output, "this dry run") {
            eprintln!("{warning}");
        }
        return dry_run(batch, prior, reissue, &args);
    }
    super::shared::runtime()?.block_on(async {
        let prepared = prepare(batch, prior, lock, &args).await?;
        let Prepared {
            batch,
            prior,
            target,
            sender,
            ..
        } = &prepared;
        let known = super::run_preflight::Known {
            rows: batch.total_rows(),
            prior: prior.as_ref(),
        };
        if let Some(outcome) =
            super::run_preflight::preflight(&batch.campaign, known, target, sender, &args).await?
        {
            return Ok(outcome);
        }
        let summary = execute(prepared, reissue, &args).await?;
        summary.print(&args)
    })
}

/// What `--reissue` asks for, in the planner's terms.
pub(super) fn reissue_kind(args: &RunArgs) -> Option<Reissue> {
    args.reissue.map(|rows| match rows {
        ReissueRows::Expired => Reissue::Expired,
        ReissueRows::FailedPermanently => Reissue::FailedPermanently,
    })
}

/// Everything settled before the first request: where to send, and the ledger, locked.
struct Prepared {
    batch: Batch,
    prior: Option<Prior>,
    target: Target,
    /// Made here so that the pre-flight's lookups wait on the same rate limiter.
    sender: Arc<Sender>,
    _lock: ledger::Lock,
    started: Instant,
}

/// Resolves the target, takes the lock, reads the prior ledger under it and applies the
/// guards (another target's or campaign's ledger, a live send to confirm). Nothing is sent here.
async fn prepare(
    batch: Batch,
    prior: Option<Prior>,
    lock: Option<ledger::Lock>,
    args: &RunArgs,
) -> anyhow::Result<Prepared> {
    let started = Instant::now();
    let campaign = &batch.campaign;
    let output = &campaign.output;
    let target = target::resolve(&args.host, &args.key).await?;
    let (lock, mut prior) = match lock {
        Some(lock) => (lock, prior),
        // Read before the lock was taken: read again under it.
        None => {
            let lock = ledger::Lock::acquire(output)?;
            ledger::take_rescued(output)?;
            (lock, Prior::open(output)?)
        }
    };
    // Before anything rewrites the file: it may belong to another target.
    target::refuse_mixed(
        output,
        prior.as_ref().and_then(Prior::target).as_deref(),
        &target.label(),
        "give --out a new file for this target; nothing was sent",
    )?;
    if prior.as_ref().is_some_and(|p| !p.standard_layout()) {
        let backup = ledger::normalise(output)?;
        eprintln!(
            "note: the columns of {} were changed (in a spreadsheet?); it was rewritten with the standard columns, the original is kept as {}",
            output.display(),
            backup.display()
        );
        prior = Prior::open(output)?;
    }
    if let Some(other) = prior.as_ref().and_then(|p| p.campaign.clone()) {
        if other != campaign.name && !args.force {
            anyhow::bail!(
                "{} holds the ledger of campaign `{}`, not `{}`; use another --out, or --force to mix them (nothing was sent)",
                output.display(),
                escape_control(&other),
                campaign.name
            );
        }
    }
    if target.live {
        confirm_live(campaign, batch.total_rows(), &target, args.yes)?;
    }
    let sender = Arc::new(Sender::new(&campaign.send, &target.base_url, &target.key)?);
    Ok(Prepared {
        batch,
        prior,
        target,
        sender,
        _lock: lock,
        started,
    })
}

/// Rows that may wait (for a retry, a rate slot or a free slot) on top of those in flight:
/// a row sleeping before its retry must not keep a fresh row from the slot it gave back.
const WAITING_ROOM: usize = 1024;

/// At most this many finished rows are written together.
const FINISHED_AT_ONCE: usize = 256;

/// Sends every row that must be sent and writes how each ended.
async fn execute(
    prepared: Prepared,
    reissue: Option<Reissue>,
    args: &RunArgs,
) -> anyhow::Result<RunSummary> {
    let Prepared {
        batch,
        prior,
        target,
        sender,
        _lock,
        started,
    } = prepared;
    let campaign = batch.campaign.clone();
    let total_rows = batch.total_rows();
    let label = target.label();
    let writer = ledger::Writer::start(&campaign.output, prior.as_ref(), total_rows)?;
    // A failed ledger write stops new requests at once, as a refused key does.
    writer.cancel_on_failure(sender.stop.clone());
    let interrupted = Arc::new(AtomicBool::new(false));
    watch_signals(sender.stop.clone(), interrupted.clone())?;
    let tally = Arc::new(Tally::default());
    let progress = Progress::start(
        total_rows,
        args.quiet,
        tally.clone(),
        sender.clone() as Arc<dyn Live>,
        Labels::SENDING,
    );
    let mut rows = Rows {
        batch,
        planner: Planner::new(prior, total_rows, args.limit, args.recreate_changed)
            .reissuing(reissue),
        entries: writer.sender(),
        stop: sender.stop.clone(),
        tally: tally.clone(),
        campaign: campaign.name.clone(),
        target: label.clone(),
        not_queued: 0,
        error: None,
    };
    let delivering = Delivering {
        sender: &sender,
        entries: writer.sender(),
        breaker: Breaker::default(),
        tally: &tally,
        ended: Mutex::new(Ended::default()),
        campaign: &campaign.name,
        target: &label,
    };
    let jobs = futures::stream::poll_fn(|_| Poll::Ready(rows.next_job()));
    jobs.map(|job| delivering.send_one(job))
        .buffer_unordered(sender.concurrency() + WAITING_ROOM)
        // Every row that finished in the same turn of the event loop, at once: their
        // records reach the file with one `write`, before anything else is awaited.
        .ready_chunks(FINISHED_AT_ONCE)
        .for_each(|finished| {
            delivering
                .entries
                .send_all(finished.into_iter().flatten().flatten());
            futures::future::ready(())
        })
        .await;
    progress.finish().await;
    let mut abort = delivering.breaker.tripped();
    let mut ended = delivering
        .ended
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ended.not_sent += rows.not_queued;
    if let Some(error) = rows.error {
        return Err(error);
    }
    // The writer finishes once nothing can hand it an entry any more.
    drop((delivering.entries, rows.entries));
    // Stopped by a failed write even if writing again at the end works: rows were left unsent.
    if let Some(error) = writer.write_error().filter(|_| abort.is_none()) {
        abort = Some(format!(
            "{}: cannot write: {error}; sending stopped at once",
            campaign.output.display()
        ));
    }
    if let Err(failed) = writer.finish() {
        // Checkouts exist that the ledger does not hold: list them, and say the run aborted.
        failed.print_unrecorded(&mut std::io::stderr().lock())?;
        abort = Some(format!("{failed} (checkouts were created)"));
    }
    let target_name = target.describe();
    if let Some(sandbox) = target.sandbox {
        sandbox.shutdown().await;
    }
    Ok(RunSummary {
        campaign: campaign.name,
        output: campaign.output,
        plan: rows.planner.plan,
        ended,
        requests: sender.counters.attempts.load(Ordering::Relaxed),
        retries: sender.counters.retries.load(Ordering::Relaxed),
        throttled: sender.counters.throttled.load(Ordering::Relaxed),
        rate: sender.rate_now(),
        target: target_name,
        elapsed: started.elapsed(),
        abort,
        interrupted: interrupted.load(Ordering::Relaxed),
    })
}

/// What the sending tasks share: the ledger, the breaker and how rows ended.
struct Delivering<'a> {
    sender: &'a Sender,
    entries: ledger::EntrySender,
    breaker: Breaker,
    tally: &'a Tally,
    ended: Mutex<Ended>,
    campaign: &'a str,
    target: &'a str,
}

impl Delivering<'_> {
    /// Sends one row; returns its ledger entries (its record, and the older record it retires).
    async fn send_one(&self, mut job: Job) -> [Option<Entry>; 2] {
        let body = bytes::Bytes::from(std::mem::take(&mut job.request.body));
        let delivery = self.sender.create(body.clone()).await;
        job.request.body = Vec::from(body);
        if self.breaker.record(&delivery).is_some() {
            self.sender.stop.cancel();
        }
        match &delivery {
            Delivery::Created { .. } => Tally::add(&self.tally.created),
            Delivery::Failed { .. } | Delivery::Unusable { .. } => Tally::add(&self.tally.failed),
            Delivery::NotSent { .. } => {}
        }
        Tally::add(&self.tally.done);
        lock(&self.ended).add(job.row, &delivery);
        let (row, prior) = (job.row, job.prior);
        match (&delivery, prior) {
            (Delivery::NotSent { .. }, Some(prior)) => [Some(Entry::Keep { row, prior }), None],
            _ => {
                let mut record = record_of(self.campaign, job, delivery);
                record.target = self.target.to_owned();
                [
                    Some(Entry::Write(Box::new(record))),
                    prior.map(Entry::Retire),
                ]
            }
        }
    }
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
