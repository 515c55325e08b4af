//! A fetch pass: the checkouts of some records fetched under the rate limiter and
//! concurrency bound, and what came back written into the records. `status` runs one, and
//! `run --reissue expired` runs one first (see `run/refresh.rs`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::campaign::SendSettings;
use crate::cli::StatusArgs;
use crate::commands::shared::watch_signals;
use crate::escape::escape_control;
use crate::ledger::{self, Record};
use crate::progress::{Labels, Live, Progress, Tally};
use crate::sender::{key_rejected, Delivery, FailureKind, Sender};
use crate::sync::lock;
use crate::target;

/// What the fetch pass brought back.
#[derive(Default)]
pub(in crate::commands) struct Pass {
    pub(in crate::commands) deliveries: Vec<(usize, Delivery)>,
    pub(in crate::commands) abort: Option<String>,
    pub(in crate::commands) interrupted: bool,
    pub(in crate::commands) requests: u64,
    pub(in crate::commands) retries: u64,
    pub(in crate::commands) target: String,
}

/// What a fetch pass changed in the records.
pub(in crate::commands) struct Applied {
    /// By record: its fetch failed.
    pub(in crate::commands) failed: Vec<bool>,
    pub(in crate::commands) fetched: u64,
    pub(in crate::commands) not_checked: u64,
    pub(in crate::commands) changed: bool,
    /// Row and error of each failed fetch.
    pub(in crate::commands) errors: Vec<(u64, String)>,
}

/// Writes each fetched checkout's status (and order) into its record.
pub(in crate::commands) fn apply(
    records: &mut [Record],
    deliveries: Vec<(usize, Delivery)>,
) -> Applied {
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

/// The target the ledger's records name (see [`target::of_ledger`]).
pub(in crate::commands) fn ledger_target(records: &[Record]) -> Option<String> {
    let first = |cell: fn(&Record) -> &str| records.iter().map(cell).find(|c| !c.is_empty());
    target::of_ledger(first(|r| &r.target), first(|r| &r.checkout_url))
}

/// Fetches the checkouts of `records[rows]` under the rate limiter and concurrency bound.
pub(in crate::commands) async fn fetch(
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
