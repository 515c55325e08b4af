//! The pre-flight as `run` does it (see [`crate::preflight`]): after the target and ledger
//! guards, before the ledger writer starts, every distinct product and discount code of the
//! rows that will be sent is looked up, through the run's rate limiter.

use std::io::Write;
use std::path::Path;

use futures::future::BoxFuture;

use crate::batch::{Batch, RowPlan};
use crate::campaign::{is_template, Campaign};
use crate::cli::RunArgs;
use crate::exit::Outcome;
use crate::ledger::Prior;
use crate::plan::{Planner, Verdict};
use crate::preflight::{self, Answer, Demand, HttpLookup, Lookup};
use crate::sender::Sender;
use crate::target::Target;

/// Looks up what the batch needs. `Ok(None)`: go on (warnings at most, or the pre-flight
/// itself failed). `Ok(Some(Aborted))`: the key was refused (exit 3). `Err`: a product or a
/// discount code would fail rows (exit 2); nothing was sent either way.
pub(super) async fn preflight(
    campaign: &Campaign,
    known: Known<'_>,
    target: &Target,
    sender: &Sender,
    args: &RunArgs,
) -> anyhow::Result<Option<Outcome>> {
    let demand = match constant_demand(campaign, &known, args) {
        Some(demand) => demand,
        None => demand(campaign, &campaign.output, args)?,
    };
    if demand.is_empty() {
        return Ok(None);
    }
    let lookup = Limited {
        inner: HttpLookup::new(&target.base_url, &target.key, campaign.send.timeout)?,
        sender,
    };
    let mut err = std::io::stderr().lock();
    let report = match preflight::check(&demand, &lookup, jiff::Timestamp::now()).await {
        Ok(report) => report,
        Err(refused) => {
            writeln!(err, "stopped: {refused}")?;
            return Ok(Some(Outcome::Aborted));
        }
    };
    // Silent when all is well: the summary is what a clean run prints.
    if !report.findings.is_empty() || report.capped.is_some() {
        preflight::print(&report, &target.describe(), &mut err)?;
    }
    if report.must_stop() {
        anyhow::bail!(
            "the pre-flight found a product or discount code that Creem would refuse; fix the campaign or the CSV, or check which mode (test or live) it was made in (nothing was sent)"
        );
    }
    Ok(None)
}

/// What the run already knows before the pre-flight: the rows in the CSV (the batch's first
/// pass) and the prior ledger.
pub(super) struct Known<'a> {
    pub rows: u64,
    pub prior: Option<&'a Prior>,
}

/// The demand without a pass over the CSV, when no template decides the product or the
/// discount code: every row sent carries the same two values, and the rows not yet created in
/// the ledger are the most that can be sent. A re-run of a finished campaign then looks up
/// nothing and reads the CSV no more times than before. `None`: a pass is needed.
fn constant_demand(campaign: &Campaign, known: &Known<'_>, args: &RunArgs) -> Option<Demand> {
    let checkout = &campaign.checkout;
    let product = &checkout.product_id.value;
    let code = checkout.discount_code.as_ref().map(|c| c.value.as_str());
    if is_template(product)
        || code.is_some_and(is_template)
        || super::run::reissue_kind(args).is_some()
        || args.recreate_changed
    {
        return None;
    }
    let created = match known.prior {
        None => 0,
        // Rows created with their input hash: the only rows a run never sends again.
        Some(prior) => prior.unchanged_rows()?.iter().filter(|&&h| h != 0).count() as u64,
    };
    let mut rows = known.rows.saturating_sub(created);
    if let Some(limit) = args.limit {
        rows = rows.min(limit);
    }
    let mut demand = Demand::default();
    demand.add_rows(product, code, rows);
    Some(demand)
}

/// How many rows that this run will send carry each product and discount code. A pass of its
/// own over the CSV, planned against the ledger as the run will plan it (rows already
/// created, held back by `--limit` or invalid do not count); only the counts are kept.
fn demand(campaign: &Campaign, output: &Path, args: &RunArgs) -> anyhow::Result<Demand> {
    let mut batch = Batch::open(campaign.clone())?;
    batch.without_body_hashes();
    let prior = Prior::open(output)?;
    let reissue = super::run::reissue_kind(args);
    if let Some(hashes) = prior.as_ref().and_then(Prior::unchanged_rows) {
        if reissue.is_none() {
            batch.skip_unchanged(hashes);
        }
    }
    let mut planner = Planner::new(prior, batch.total_rows(), args.limit, args.recreate_changed)
        .reissuing(reissue);
    let mut demand = Demand::default();
    while let Some(plan) = batch.next_row()? {
        if let RowPlan::Ready { row, mut request } = plan {
            if let Verdict::Send { .. } = planner.ready(row, &mut request)? {
                demand.add_body(&request.body);
            }
        }
    }
    Ok(demand)
}

/// [`HttpLookup`] that waits for the run's rate limiter before each request: the lookups
/// count against the same budget as the checkouts.
struct Limited<'a> {
    inner: HttpLookup,
    sender: &'a Sender,
}

impl Lookup for Limited<'_> {
    fn get<'a>(
        &'a self,
        path: &'a [&'a str],
        query: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            self.sender.wait_turn().await;
            self.inner.get(path, query).await
        })
    }
}
