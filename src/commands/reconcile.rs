//! `reconcile OUTPUT.csv --events FILE`: mark rows completed from saved webhook events, with
//! no API call.
//!
//! The events file holds one webhook body per line, as a merchant's endpoint saved them after
//! checking their `creem-signature` (see [`crate::signature::verify_webhook`]): nothing here
//! can check a signature any more, so the events are taken as verified. Blank lines are
//! skipped. For each `checkout.completed` event whose `object.request_id` is in the ledger, the
//! row gets `checkout_status=completed` and the event's order id. Unknown request_ids are
//! counted and listed (the first few), not errors: the endpoint sees every checkout of the
//! store, not only this campaign's. The same request_id completed again later in the file is a
//! duplicate (Creem retries deliveries); events of other types are counted by type.
//!
//! The ledger is locked and rewritten once, atomically, only if something changed, so running
//! it twice on the same file changes nothing the second time.
//!
//! One ledger, one target: an event whose `object.mode` contradicts the target the ledger
//! records (a `prod` event for a test or sandbox ledger, a `test` one for a live ledger)
//! stops the command before anything is changed.
//!
//! Exit codes: 0 when every line was read; 1 when some lines were unreadable (each is reported
//! with its line number and skipped; the others were still applied, so the ledger is updated);
//! 2 when the ledger or the events file cannot be read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};

use anyhow::Context;

use crate::cli::ReconcileArgs;
use crate::conversion::Report;
use crate::exit::Outcome;
use crate::ledger::{self, Status};
use crate::signature::{parse_webhook_event, CHECKOUT_COMPLETED};

/// How many unknown request_ids, unreadable lines, ... are listed; the rest are counted.
const EXAMPLES: usize = 10;

/// What the events said.
#[derive(Debug, Default)]
struct Counts {
    events: u64,
    completed: u64,
    marked: u64,
    already: u64,
    duplicates: u64,
    unknown: u64,
    unknown_examples: Vec<String>,
    no_request_id: u64,
    other_types: BTreeMap<String, u64>,
    unreadable: u64,
    /// Rows the ledger does not mark `created` although Creem completed a checkout for them.
    not_created: Vec<u64>,
    /// Rows whose event names another checkout than the ledger's `checkout_id`.
    other_checkout: Vec<u64>,
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<Outcome> {
    let output = &args.output;
    let _lock = ledger::Lock::acquire(output)?;
    ledger::take_rescued(output)?; // checkouts an earlier run could not write
    let mut records = ledger::read_all(output)?;
    let file = File::open(&args.events)
        .with_context(|| format!("cannot read the events file {}", args.events.display()))?;
    let index: HashMap<String, usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.request_id.is_empty())
        .map(|(i, r)| (r.request_id.clone(), i))
        .collect();

    let ledger_target = super::status::fetch::ledger_target(&records);
    let events_name = args.events.display().to_string();
    let mut err = std::io::stderr().lock();
    let mut counts = Counts::default();
    let mut seen: HashSet<usize> = HashSet::new();
    let mut changed = false;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {events_name}"))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut unreadable = |why: String| -> std::io::Result<()> {
            counts.unreadable += 1;
            if counts.unreadable <= EXAMPLES as u64 {
                writeln!(err, "{events_name}:{number}: skipped: {why}")?;
            }
            Ok(())
        };
        let event = match parse_webhook_event(&line) {
            Ok(event) => event,
            Err(e) => {
                unreadable(format!("not a webhook event ({e})"))?;
                continue;
            }
        };
        if let Some(target) = &ledger_target {
            refuse_other_mode(output, target, &event.object, &events_name, number)?;
        }
        if event.event_type != CHECKOUT_COMPLETED {
            counts.events += 1;
            *counts.other_types.entry(event.event_type).or_default() += 1;
            continue;
        }
        let Some(completed) = event.checkout_completed() else {
            unreadable(format!(
                "{CHECKOUT_COMPLETED} event {} has no object.id",
                event.id
            ))?;
            continue;
        };
        counts.events += 1;
        counts.completed += 1;
        let Some(request_id) = completed.request_id else {
            counts.no_request_id += 1;
            continue;
        };
        let Some(&i) = index.get(&request_id) else {
            counts.unknown += 1;
            if counts.unknown_examples.len() < EXAMPLES
                && !counts.unknown_examples.contains(&request_id)
            {
                counts.unknown_examples.push(request_id);
            }
            continue;
        };
        if !seen.insert(i) {
            counts.duplicates += 1;
            continue;
        }
        let record = &mut records[i];
        if record.checkout_status == "completed" {
            counts.already += 1;
        } else {
            counts.marked += 1;
            record.checkout_status = "completed".to_owned();
            // The event's time is when the customer paid: `report` charts completions by it.
            if let Some(at) = event
                .created_at
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            {
                record.updated_at = at.to_string();
            }
            changed = true;
        }
        if let Some(order_id) = completed.order_id {
            if record.order_id != order_id {
                record.order_id = order_id;
                changed = true;
            }
        }
        if record.status != Status::Created {
            counts.not_created.push(record.row);
        } else if record.checkout_id != completed.checkout_id {
            counts.other_checkout.push(record.row);
        }
    }
    if changed {
        ledger::write_all(output, &records)?;
    }
    drop(err);

    let mut out = std::io::stdout().lock();
    print_counts(&mut out, &counts, &events_name)?;
    Report::of_ledger(&records).write_human(&mut out)?;
    writeln!(
        out,
        "{} {}",
        if changed { "updated" } else { "unchanged:" },
        output.display()
    )?;
    out.flush()?;
    drop(out);
    let mut err = std::io::stderr().lock();
    if !counts.not_created.is_empty() {
        writeln!(
            err,
            "warning: {} paid checkout(s) belong to rows the ledger does not mark created (rows {}): Creem made a checkout the ledger did not record, and `run` would send these rows again",
            counts.not_created.len(),
            list(&counts.not_created)
        )?;
    }
    if !counts.other_checkout.is_empty() {
        writeln!(
            err,
            "note: {} event(s) name another checkout than the ledger's checkout_id for their request_id (rows {}): marked completed all the same",
            counts.other_checkout.len(),
            list(&counts.other_checkout)
        )?;
    }
    if counts.unreadable > 0 {
        writeln!(
            err,
            "{} unreadable line(s) in {events_name} were skipped",
            counts.unreadable
        )?;
        return Ok(Outcome::Partial);
    }
    Ok(Outcome::Success)
}

/// Refuses an event from another mode than the ledger's target (see the module's docs).
fn refuse_other_mode(
    ledger: &std::path::Path,
    target: &str,
    object: &serde_json::Value,
    events: &str,
    line: u64,
) -> anyhow::Result<()> {
    let Some(mode) = object.get("mode").and_then(|m| m.as_str()) else {
        return Ok(());
    };
    let live_ledger = target.starts_with("live:");
    let live_event = mode == "prod";
    if live_ledger != live_event && matches!(mode, "prod" | "test" | "sandbox") {
        anyhow::bail!(
            "{events}:{line} is a {} event (mode `{mode}`), but {} holds checkouts of {}: one output file holds one target's checkouts; reconcile it with the events of that target (nothing was changed)",
            if live_event { "live" } else { "test-mode" },
            ledger.display(),
            crate::target::describe_label(&crate::escape::escape_control(target)),
        );
    }
    Ok(())
}

fn print_counts(out: &mut impl Write, c: &Counts, events: &str) -> std::io::Result<()> {
    let unreadable = if c.unreadable > 0 {
        format!(" ({} unreadable line(s) skipped)", c.unreadable)
    } else {
        String::new()
    };
    writeln!(out, "events: {} read from {events}{unreadable}", c.events)?;
    writeln!(
        out,
        "{CHECKOUT_COMPLETED}: {} (marked completed: {}, already completed: {}, duplicates: {}, unknown request_id: {}, no request_id: {})",
        c.completed, c.marked, c.already, c.duplicates, c.unknown, c.no_request_id
    )?;
    let others: u64 = c.other_types.values().sum();
    if others > 0 {
        let types: Vec<String> = c
            .other_types
            .iter()
            .map(|(t, n)| format!("{t}: {n}"))
            .collect();
        writeln!(out, "other event types: {others} ({})", types.join(", "))?;
    }
    if c.unknown > 0 {
        writeln!(
            out,
            "unknown request_ids{}: {}",
            if c.unknown_examples.len() >= EXAMPLES {
                " (the first 10)"
            } else {
                ""
            },
            c.unknown_examples.join(", ")
        )?;
    }
    Ok(())
}

/// "3, 7, 12" or "3, 7, ... (25 in all)".
fn list(rows: &[u64]) -> String {
    let shown: Vec<String> = rows.iter().take(EXAMPLES).map(u64::to_string).collect();
    if rows.len() > EXAMPLES {
        format!("{}, ... ({} in all)", shown.join(", "), rows.len())
    } else {
        shown.join(", ")
    }
}
