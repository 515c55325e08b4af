//! How a `run` ended, said once: the text on stderr, the JSON object on stdout (`--json`)
//! and the exit code all come from one [`RunSummary`].

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::shared::shell_word;
use crate::cli::RunArgs;
use crate::exit::{quiet_on_broken_pipe, Outcome};
use crate::plan::Plan;
use crate::sender::{Delivery, FailureKind, RateNow, MAY_EXIST_TWICE};

/// Rows listed by number (the rest are counted).
const EXAMPLES: usize = 10;
/// Distinct failure reasons kept; a run with more has no single cause worth naming.
const REASONS: usize = 50;
/// Failure reasons shown.
const TOP_REASONS: usize = 3;

/// How the rows this run sent (or meant to send) ended.
#[derive(Debug, Default)]
pub struct Ended {
    pub created: u64,
    pub failed: u64,
    /// Answered 2xx without a usable checkout; recorded, not sent again.
    pub unusable: u64,
    unusable_rows: Vec<u64>,
    /// Not sent because the run stopped (or never queued for it).
    pub not_sent: u64,
    /// Rows whose checkout may exist twice (an attempt timed out after sending).
    pub may_exist_twice: u64,
    reasons: Vec<Reason>,
}

#[derive(Debug)]
struct Reason {
    text: String,
    rows: u64,
    /// Sending the row again may succeed (timeouts, 5xx, 429); else it would fail the same.
    retry_helps: bool,
}

impl Ended {
    pub fn add(&mut self, row: u64, delivery: &Delivery) {
        if delivery.may_exist_twice() {
            self.may_exist_twice += 1;
        }
        match delivery {
            Delivery::Created { .. } => self.created += 1,
            Delivery::Unusable { .. } => {
                self.unusable += 1;
                if self.unusable_rows.len() < EXAMPLES {
                    self.unusable_rows.push(row);
                }
            }
            Delivery::Failed { error, kind, .. } => {
                self.failed += 1;
                let text = error.kind_key().to_string();
                if let Some(reason) = self.reasons.iter_mut().find(|r| r.text == text) {
                    reason.rows += 1;
                } else if self.reasons.len() < REASONS {
                    self.reasons.push(Reason {
                        text,
                        rows: 1,
                        retry_helps: *kind == FailureKind::Exhausted,
                    });
                }
            }
            Delivery::NotSent { .. } => self.not_sent += 1,
        }
    }

    /// Whether a re-run may send what failed: not when every failure was a refusal.
    fn retry_helps(&self) -> bool {
        self.reasons.is_empty() || self.reasons.iter().any(|r| r.retry_helps)
    }
}

pub struct RunSummary {
    pub campaign: String,
    pub output: PathBuf,
    pub plan: Plan,
    pub ended: Ended,
    pub requests: u64,
    pub retries: u64,
    /// Requests answered 429.
    pub throttled: u64,
    /// Where `rate: auto` ended; `None` for a fixed rate.
    pub rate: Option<RateNow>,
    /// The target as shown (credentials never in it).
    pub target: String,
    pub elapsed: Duration,
    /// Why the run stopped early (key rejected, systematic failure).
    pub abort: Option<String>,
    pub interrupted: bool,
}

impl RunSummary {
    /// `--json`'s `rate_found`: what the server was found to take, or, never pushed back, the
    /// rate reached.
    fn rate_found(&self) -> Option<f64> {
        self.rate.map(|rate| rate.found.unwrap_or(rate.per_second))
    }

    /// Rows left `pending`: not sent because the run stopped, held back by `--limit`, or
    /// never sent and left so by `--reissue`.
    pub fn pending(&self) -> u64 {
        self.ended.not_sent + self.plan.limited + self.plan.held
    }

    pub fn outcome(&self) -> Outcome {
        if self.abort.is_some() {
            Outcome::Aborted
        } else if self.interrupted {
            Outcome::Interrupted
        } else if self.ended.failed + self.ended.unusable + self.plan.invalid > 0 {
            Outcome::Partial
        } else {
            Outcome::Success
        }
    }

    /// Prints the summary (text on stderr, JSON on stdout with `--json`); gives the outcome.
    pub fn print(&self, args: &RunArgs) -> anyhow::Result<Outcome> {
        let mut err = std::io::stderr().lock();
        self.write_text(&mut err, args)?;
        if args.json {
            let mut out = std::io::stdout().lock();
            // A closed stdout (`--json | head -c1`) changes nothing about the run's exit.
            quiet_on_broken_pipe(writeln!(out, "{}", self.json()).and_then(|()| out.flush()))?;
        }
        Ok(self.outcome())
    }

    fn write_text(&self, err: &mut impl Write, args: &RunArgs) -> std::io::Result<()> {
        let (plan, ended) = (&self.plan, &self.ended);
        plan.print_problems(err)?;
        if let Some(kind) = plan.reissue {
            writeln!(
                err,
                "re-issue ({}): {} row(s) chosen, {} new checkout(s) created",
                kind.as_str(),
                plan.reissued,
                ended.created
            )?;
        }
        writeln!(
            err,
            "{} rows: {} created, {} failed, {} invalid, {} pending, {} already created{}{}",
            plan.rows,
            ended.created,
            ended.failed + ended.unusable,
            plan.invalid,
            self.pending(),
            plan.kept(),
            if plan.changed > 0 && !plan.recreate_changed {
                format!(" ({} of them changed since)", plan.changed)
            } else {
                String::new()
            },
            plan.skipped_note()
        )?;
        if ended.unusable > 0 {
            writeln!(
                err,
                "{} row(s) were answered without a usable checkout; one may exist, so they are recorded as created without a link and not sent again (see the `error` column): rows {}{}",
                ended.unusable,
                list(&ended.unusable_rows),
                if ended.unusable > ended.unusable_rows.len() as u64 { ", ..." } else { "" }
            )?;
        }
        if ended.may_exist_twice > 0 {
            writeln!(
                err,
                "{} row(s) may have a second checkout in Creem: {MAY_EXIST_TWICE} (see the `error` column of {})",
                ended.may_exist_twice,
                self.output.display()
            )?;
        }
        if !ended.reasons.is_empty() {
            let mut reasons: Vec<&Reason> = ended.reasons.iter().collect();
            reasons.sort_by_key(|r| std::cmp::Reverse(r.rows));
            writeln!(err, "why rows failed:")?;
            for reason in reasons.iter().take(TOP_REASONS) {
                writeln!(err, "  {} row(s): {}", reason.rows, reason.text)?;
            }
            if reasons.len() > TOP_REASONS {
                writeln!(
                    err,
                    "  ... and {} other reason(s)",
                    reasons.len() - TOP_REASONS
                )?;
            }
        }
        writeln!(
            err,
            "{} requests ({} retries) to {} in {:.1}s, {:.1} req/s; results in {}",
            self.requests,
            self.retries,
            self.target,
            self.elapsed.as_secs_f64(),
            crate::progress::per_second(self.requests, self.elapsed),
            self.output.display()
        )?;
        if let Some(rate) = self.rate {
            match rate.found {
                Some(found) => write!(err, "rate auto: found {found:.0}/s")?,
                None => write!(
                    err,
                    "rate auto: reached {:.0}/s, never pushed back by the server",
                    rate.per_second
                )?,
            }
            writeln!(err, "; {} request(s) throttled (429)", self.throttled)?;
        } else if self.throttled > 0 {
            writeln!(err, "{} request(s) throttled (429)", self.throttled)?;
        }
        if ended.failed > 0 || self.pending() > 0 {
            if self.interrupted {
                writeln!(
                    err,
                    "interrupted; to send the rest: {}",
                    resume_command(args)
                )?;
            } else if self.pending() == 0 && !ended.retry_helps() {
                writeln!(
                    err,
                    "a re-run will not help: Creem refused these rows as they are; fix the campaign or the rows first, then: {}",
                    resume_command(args)
                )?;
            } else if plan.limited > 0 && self.abort.is_none() {
                writeln!(
                    err,
                    "{} row(s) left pending by --limit; to send the rest: {}",
                    plan.limited,
                    resume_command(args)
                )?;
            } else {
                writeln!(err, "to send the rest: {}", resume_command(args))?;
            }
        }
        if let Some(reason) = &self.abort {
            writeln!(err, "stopped: {reason}")?;
        }
        Ok(())
    }

    fn json(&self) -> serde_json::Value {
        let mut reasons: Vec<&Reason> = self.ended.reasons.iter().collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.rows));
        serde_json::json!({
            "command": "run",
            "campaign": self.campaign,
            "output": self.output.display().to_string(),
            "rows": self.plan.rows,
            "created": self.ended.created,
            "failed": self.ended.failed + self.ended.unusable,
            "unusable": self.ended.unusable,
            "may_exist_twice": self.ended.may_exist_twice,
            "invalid": self.plan.invalid,
            "pending": self.pending(),
            "already_created": self.plan.kept(),
            "changed": self.plan.changed,
            "skipped": self.plan.skipped_total(),
            "reissued": self.plan.reissue.map(|_| self.ended.created),
            "requests": self.requests,
            "throttled": self.throttled,
            "rate_found": self.rate_found().map(|rate| (rate * 10.0).round() / 10.0),
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "failure_reasons": reasons.iter().map(|r| serde_json::json!({
                "reason": r.text, "rows": r.rows, "retry_helps": r.retry_helps,
            })).collect::<Vec<_>>(),
            "exit": match self.outcome() {
                Outcome::Aborted => "aborted",
                Outcome::Interrupted => "interrupted",
                Outcome::Partial => "some_rows_failed",
                Outcome::Success => "ok",
            },
        })
    }
}

fn list(rows: &[u64]) -> String {
    rows.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
    flag(
        "--base-url",
        args.host.base_url.as_deref().map(crate::target::redact_url),
    );
    flag(
        "--api-key-file",
        args.key
            .api_key_file
            .as_ref()
            .map(|p| p.display().to_string()),
    );
    flag("--rate", args.send.rate.clone());
    flag("--max-rate", args.send.max_rate.clone());
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

#[cfg(test)]
mod tests;
