//! The numbers of `report`'s HTML page, read from a ledger, and the page itself, rendered by
//! the minijinja template `report.html` (auto-escaped; charts are inline SVG, so the page
//! needs no network and no script).
//!
//! Everything counted comes from the ledger alone: row outcomes from `status`, checkout
//! statuses from `checkout_status` (as the last `status` or `reconcile` left it), completions
//! over time from the `updated_at` of completed rows (set when `status` saw the change, or to
//! the webhook event's time by `reconcile`), failure reasons from `error`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::conversion::{format_rate, Report, CHECKOUT_STATUSES};
use crate::escape::escape_control;
use crate::ledger::{Record, Status};

const TEMPLATE: &str = include_str!("report.html");

/// Row outcomes, always shown (even at 0) in this order.
const OUTCOMES: [&str; 5] = ["created", "failed", "invalid", "skipped", "pending"];
/// Failure reasons listed one by one; the rest are summed in one line.
const REASONS: usize = 12;
/// A failure reason is cut to this many characters (errors can quote a whole answer).
const REASON_CHARS: usize = 140;

/// One bar of a chart: a label, its count, and its length relative to the longest bar (0-100).
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) count: u64,
    pub(crate) length: f64,
}

/// One group's line of the conversion table.
#[derive(Debug, Serialize)]
pub(crate) struct Group {
    pub(crate) value: String,
    pub(crate) created: u64,
    pub(crate) completed: u64,
    pub(crate) expired: u64,
    pub(crate) open: u64,
    pub(crate) conversion: String,
    /// completed / created as 0-100, for the bar.
    pub(crate) length: f64,
}

/// Everything the page shows.
#[derive(Debug, Serialize)]
pub(crate) struct ReportData {
    pub(crate) campaign: String,
    pub(crate) ledger: String,
    pub(crate) generated_at: String,
    pub(crate) rows: u64,
    pub(crate) outcomes: Vec<Bar>,
    pub(crate) checkouts: Vec<Bar>,
    pub(crate) created: u64,
    pub(crate) completed: u64,
    pub(crate) conversion: String,
    /// Rows given a new checkout by `run --reissue` at least once.
    pub(crate) reissued: u64,
    pub(crate) by: Option<String>,
    pub(crate) groups: Vec<Group>,
    /// "day" or "hour": completions are bucketed by hour when they all fall on one day.
    pub(crate) completions_unit: &'static str,
    pub(crate) completions: Vec<Bar>,
    /// Completed rows whose `updated_at` is not a time (hand-edited ledgers).
    pub(crate) completions_untimed: u64,
    pub(crate) failures: Vec<Bar>,
}

impl ReportData {
    /// The numbers of `records`; `groups` gives each record's group for `by`.
    pub(crate) fn build(
        campaign: &str,
        ledger: &str,
        records: &[Record],
        by: Option<(&str, Vec<String>)>,
    ) -> ReportData {
        let mut outcomes: BTreeMap<&str, u64> = OUTCOMES.iter().map(|o| (*o, 0)).collect();
        for record in records {
            *outcomes.entry(record.status.as_str()).or_default() += 1;
        }
        let outcomes = bars(OUTCOMES.iter().map(|o| (o.to_string(), outcomes[o])));

        let (column, groups) = match by {
            Some((column, groups)) => (Some(column), groups),
            None => (None, Vec::new()),
        };
        let mut report = Report::new(column);
        for (i, record) in records.iter().enumerate() {
            if record.status == Status::Created {
                report.add(
                    groups.get(i).map_or("", String::as_str),
                    &record.checkout_status,
                );
            }
        }
        let all = &report.overall;
        let checkouts = bars(
            all.by_status
                .iter()
                .filter(|(status, n)| **n > 0 || CHECKOUT_STATUSES.contains(&status.as_str()))
                // `processing` is a moment between pending and completed: shown only when seen.
                .filter(|(status, n)| status.as_str() != "processing" || **n > 0)
                .map(|(status, n)| (status.clone(), *n)),
        );
        let groups = report
            .by
            .as_ref()
            .map(|(_, groups)| {
                groups
                    .iter()
                    .map(|(value, counts)| Group {
                        value: if value.is_empty() {
                            "(empty)".to_owned()
                        } else {
                            value.clone()
                        },
                        created: counts.created,
                        completed: counts.get("completed"),
                        expired: counts.get("expired"),
                        open: counts.created - counts.get("completed") - counts.get("expired"),
                        conversion: format_rate(counts.conversion()),
                        length: counts.conversion().unwrap_or(0.0) * 100.0,
                    })
                    .collect()
            })
            .unwrap_or_default();

        let (completions_unit, completions, completions_untimed) = completions(records);
        ReportData {
            campaign: escape_control(campaign).into_owned(),
            ledger: escape_control(ledger).into_owned(),
            generated_at: crate::ledger::now_rfc3339(),
            rows: records.len() as u64,
            outcomes,
            checkouts,
            created: all.created,
            completed: all.get("completed"),
            conversion: format_rate(all.conversion()),
            reissued: records.iter().filter(|r| r.reissues > 0).count() as u64,
            by: column.map(str::to_owned),
            groups,
            completions_unit,
            completions,
            completions_untimed,
            failures: failures(records),
        }
    }

    /// The page.
    pub(crate) fn render(&self) -> Result<String, minijinja::Error> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // The `.html` name turns on HTML auto-escaping of every value.
        env.add_template("report.html", TEMPLATE)?;
        env.get_template("report.html")?
            .render(minijinja::value::Serde(self))
    }
}

/// Bars for `(label, count)` pairs, lengths relative to the largest count.
fn bars(items: impl Iterator<Item = (String, u64)>) -> Vec<Bar> {
    let items: Vec<(String, u64)> = items.collect();
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    items
        .into_iter()
        .map(|(label, count)| Bar {
            label,
            count,
            length: (count as f64 / max * 100.0 * 10.0).round() / 10.0,
        })
        .collect()
}

/// Completed rows by day (or by hour when they all fall on one day), and how many had no
/// readable time.
fn completions(records: &[Record]) -> (&'static str, Vec<Bar>, u64) {
    let mut untimed = 0;
    let mut times = Vec::new();
    for record in records {
        if record.status != Status::Created || record.checkout_status != "completed" {
            continue;
        }
        match record.updated_at.parse::<jiff::Timestamp>() {
            Ok(at) => times.push(at.to_string()),
            Err(_) => untimed += 1,
        }
    }
    let days: BTreeMap<&str, u64> = times.iter().fold(BTreeMap::new(), |mut days, t| {
        *days.entry(&t[..10.min(t.len())]).or_default() += 1;
        days
    });
    if days.len() > 1 {
        let bars = bars(days.into_iter().map(|(d, n)| (d.to_owned(), n)));
        return ("day", bars, untimed);
    }
    let mut hours: BTreeMap<String, u64> = BTreeMap::new();
    for t in &times {
        let hour = t.get(..13).unwrap_or(t);
        *hours
            .entry(format!("{}:00", hour.replace('T', " ")))
            .or_default() += 1;
    }
    ("hour", bars(hours.into_iter()), untimed)
}

/// Failed and invalid rows by their error, most frequent first; past [`REASONS`], summed.
fn failures(records: &[Record]) -> Vec<Bar> {
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for record in records {
        if !matches!(record.status, Status::Failed | Status::Invalid) {
            continue;
        }
        let mut reason: String = escape_control(record.error.trim())
            .chars()
            .take(REASON_CHARS)
            .collect();
        if reason.is_empty() {
            reason = "(no error recorded)".to_owned();
        }
        *reasons
            .entry(format!("{}: {reason}", record.status.as_str()))
            .or_default() += 1;
    }
    let mut reasons: Vec<(String, u64)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if reasons.len() > REASONS {
        let rest: u64 = reasons[REASONS - 1..].iter().map(|(_, n)| n).sum();
        let others = reasons.len() - (REASONS - 1);
        reasons.truncate(REASONS - 1);
        reasons.push((format!("{others} other reasons"), rest));
    }
    bars(reasons.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(row: u64, status: Status, checkout: &str, error: &str, at: &str) -> Record {
        let mut r = Record::new("spring", row, &format!("spring-{row}"), "a@x", status);
        r.checkout_status = checkout.to_owned();
        r.error = error.to_owned();
        r.updated_at = at.to_owned();
        r
    }

    #[test]
    fn counts_every_section_and_escapes_outside_text() {
        let records = vec![
            record(1, Status::Created, "completed", "", "2026-03-01T10:00:00Z"),
            record(2, Status::Created, "completed", "", "2026-03-03T09:00:00Z"),
            record(3, Status::Created, "expired", "", "2026-03-01T10:00:00Z"),
            record(4, Status::Created, "pending", "", "x"),
            record(5, Status::Failed, "", "HTTP 400: <b>bad</b>", ""),
            record(6, Status::Failed, "", "HTTP 400: <b>bad</b>", ""),
            record(7, Status::Invalid, "", "email: not an address", ""),
        ];
        let groups = ["vip", "vip", "regular", "", "vip", "vip", "x"]
            .map(str::to_owned)
            .to_vec();
        let data = ReportData::build("spring", "out.csv", &records, Some(("segment", groups)));
        let count =
            |bars: &[Bar], label: &str| bars.iter().find(|b| b.label == label).map(|b| b.count);
        assert_eq!(count(&data.outcomes, "created"), Some(4));
        assert_eq!(count(&data.outcomes, "failed"), Some(2));
        assert_eq!(count(&data.outcomes, "skipped"), Some(0));
        assert_eq!(count(&data.checkouts, "completed"), Some(2));
        assert_eq!(count(&data.checkouts, "processing"), None);
        assert_eq!(data.conversion, "50.0%");
        assert_eq!(data.reissued, 0);
        assert_eq!(data.completions_unit, "day");
        assert_eq!(count(&data.completions, "2026-03-03"), Some(1));
        assert_eq!(data.failures[0].label, "failed: HTTP 400: <b>bad</b>");
        assert_eq!(data.failures[0].count, 2);
        let vip = data.groups.iter().find(|g| g.value == "vip").unwrap();
        assert_eq!((vip.created, vip.completed, vip.open), (2, 2, 0));
        let page = data.render().unwrap();
        assert!(page.contains("&lt;b&gt;bad&lt;&#x2f;b&gt;"), "{page}");
        assert!(!page.contains("<b>bad"), "{page}");
        assert!(!page.contains("<script"), "{page}");
    }

    #[test]
    fn one_day_of_completions_is_shown_by_hour() {
        let records = vec![
            record(1, Status::Created, "completed", "", "2026-03-01T10:05:00Z"),
            record(2, Status::Created, "completed", "", "2026-03-01T10:59:00Z"),
            record(3, Status::Created, "completed", "", "2026-03-01T12:00:00Z"),
        ];
        let (unit, bars, untimed) = completions(&records);
        assert_eq!((unit, untimed), ("hour", 0));
        assert_eq!(bars[0].label, "2026-03-01 10:00");
        assert_eq!((bars[0].count, bars[0].length), (2, 100.0));
        assert_eq!((bars[1].count, bars[1].length), (1, 50.0));
    }

    #[test]
    fn many_reasons_end_in_one_summed_line() {
        let records: Vec<Record> = (1..=20)
            .map(|i| record(i, Status::Failed, "", &format!("reason {i:02}"), ""))
            .collect();
        let reasons = failures(&records);
        assert_eq!(reasons.len(), REASONS);
        assert_eq!(reasons[REASONS - 1].label, "9 other reasons");
        assert_eq!(reasons[REASONS - 1].count, 9);
    }
}
