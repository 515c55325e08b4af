//! Counting checkouts by status and the conversion rate, for `status` and `reconcile`, so both
//! print (and put in JSON) the same numbers the same way.
//!
//! Only `created` rows count: the others have no checkout. Conversion is completed / created.

use std::collections::BTreeMap;
use std::io::Write;

use indexmap::IndexMap;
use serde_json::{json, Value};

use crate::ledger::{Record, Status};

/// Creem's checkout statuses, in the order a checkout moves through them. Always shown, even
/// at 0, so scripts can rely on them.
pub const CHECKOUT_STATUSES: [&str; 4] = ["pending", "processing", "completed", "expired"];
/// A created row whose status is not known (never fetched, or no checkout_id).
pub const UNKNOWN: &str = "unknown";
/// A created row whose fetch failed this time.
pub const ERROR: &str = "error";

/// True for the statuses a checkout never leaves.
pub fn is_final(checkout_status: &str) -> bool {
    matches!(checkout_status, "completed" | "expired")
}

/// Created checkouts counted by status.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCounts {
    pub created: u64,
    /// Creem's four statuses first, then `unknown`, `error` and any status Creem may add, in
    /// the order they were first seen (unknown values are data, not errors).
    pub by_status: IndexMap<String, u64>,
}

impl Default for StatusCounts {
    fn default() -> StatusCounts {
        StatusCounts {
            created: 0,
            by_status: CHECKOUT_STATUSES
                .iter()
                .map(|s| (s.to_string(), 0))
                .collect(),
        }
    }
}

impl StatusCounts {
    /// Counts one created checkout; an empty status counts as `unknown`.
    pub fn add(&mut self, status: &str) {
        let label = if status.trim().is_empty() {
            UNKNOWN
        } else {
            status.trim()
        };
        self.created += 1;
        *self.by_status.entry(label.to_owned()).or_default() += 1;
    }

    pub fn get(&self, status: &str) -> u64 {
        self.by_status.get(status).copied().unwrap_or(0)
    }

    /// completed / created; `None` when nothing was created.
    pub fn conversion(&self) -> Option<f64> {
        (self.created > 0).then(|| self.get("completed") as f64 / self.created as f64)
    }

    /// "2 pending, 0 processing, 2 completed, 1 expired" (+ unknown, error, ... when present).
    pub fn describe(&self) -> String {
        self.by_status
            .iter()
            .filter(|(status, n)| **n > 0 || CHECKOUT_STATUSES.contains(&status.as_str()))
            .map(|(status, n)| format!("{n} {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The counts as a JSON object: every status of [`CHECKOUT_STATUSES`], `unknown` and
    /// `error` always present, others when seen.
    pub fn counts_json(&self) -> Value {
        let mut counts = serde_json::Map::new();
        for status in CHECKOUT_STATUSES.iter().chain(&[UNKNOWN, ERROR]) {
            counts.insert(status.to_string(), json!(self.get(status)));
        }
        for (status, n) in &self.by_status {
            counts.entry(status.clone()).or_insert(json!(n));
        }
        Value::Object(counts)
    }
}

/// "40.0%", or "n/a" when nothing was created.
pub fn format_rate(rate: Option<f64>) -> String {
    match rate {
        Some(rate) => format!("{:.1}%", rate * 100.0),
        None => "n/a".to_owned(),
    }
}

/// Counts overall and, optionally, per value of one column.
#[derive(Debug, Default)]
pub struct Report {
    pub overall: StatusCounts,
    /// The column broken down by, and the counts per value (sorted by value).
    pub by: Option<(String, BTreeMap<String, StatusCounts>)>,
}

impl Report {
    /// A report broken down by `column` (`None`: overall only).
    pub fn new(column: Option<&str>) -> Report {
        Report {
            overall: StatusCounts::default(),
            by: column.map(|c| (c.to_owned(), BTreeMap::new())),
        }
    }

    /// Counts one created checkout with `status`, in the group `group` (ignored without `by`).
    pub fn add(&mut self, group: &str, status: &str) {
        self.overall.add(status);
        if let Some((_, groups)) = &mut self.by {
            groups.entry(group.to_owned()).or_default().add(status);
        }
    }

    /// The report of a ledger as it stands: each created row by its `checkout_status`.
    pub fn of_ledger(records: &[Record]) -> Report {
        let mut report = Report::new(None);
        for record in records.iter().filter(|r| r.status == Status::Created) {
            report.add("", &record.checkout_status);
        }
        report
    }

    /// The human summary: counts, conversion, and the breakdown as a table.
    pub fn write_human(&self, out: &mut impl Write) -> std::io::Result<()> {
        let all = &self.overall;
        writeln!(
            out,
            "{} created checkout{}: {}",
            all.created,
            if all.created == 1 { "" } else { "s" },
            all.describe()
        )?;
        writeln!(
            out,
            "conversion: {} ({} of {} completed)",
            format_rate(all.conversion()),
            all.get("completed"),
            all.created
        )?;
        let Some((column, groups)) = &self.by else {
            return Ok(());
        };
        // Every status seen anywhere gets a column, in the overall order.
        let statuses: Vec<&str> = all
            .by_status
            .iter()
            .filter(|(status, n)| **n > 0 || CHECKOUT_STATUSES.contains(&status.as_str()))
            .map(|(status, _)| status.as_str())
            .collect();
        let mut header: Vec<String> = vec![column.clone(), "created".to_owned()];
        header.extend(statuses.iter().map(|s| s.to_string()));
        header.push("conversion".to_owned());
        let mut rows = vec![header];
        for (value, counts) in groups {
            let mut row = vec![
                if value.is_empty() {
                    "(empty)".to_owned()
                } else {
                    value.clone()
                },
                counts.created.to_string(),
            ];
            row.extend(statuses.iter().map(|s| counts.get(s).to_string()));
            row.push(format_rate(counts.conversion()));
            rows.push(row);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        writeln!(out, "by {column}:")?;
        for row in &rows {
            let mut line = String::from(" ");
            for (i, cell) in row.iter().enumerate() {
                line.push(' ');
                let pad = widths[i] - cell.chars().count();
                if i == 0 {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }

    /// `counts`, `created`, `conversion` and `by` for a command's JSON summary.
    pub fn json_fields(&self, source: Option<&str>) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("created".into(), json!(self.overall.created));
        fields.insert("counts".into(), self.overall.counts_json());
        fields.insert("conversion".into(), json!(self.overall.conversion()));
        let by = match &self.by {
            Some((column, groups)) => json!({
                "column": column,
                "source": source,
                "groups": groups.iter().map(|(value, counts)| json!({
                    "value": value,
                    "created": counts.created,
                    "counts": counts.counts_json(),
                    "conversion": counts.conversion(),
                })).collect::<Vec<_>>(),
            }),
            None => Value::Null,
        };
        fields.insert("by".into(), by);
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_conversion_and_table() {
        let mut report = Report::new(Some("segment"));
        for (group, status) in [
            ("vip", "completed"),
            ("vip", "pending"),
            ("", "expired"),
            ("regular", "completed"),
            ("regular", ""),
        ] {
            report.add(group, status);
        }
        assert_eq!(report.overall.created, 5);
        assert_eq!(report.overall.conversion(), Some(0.4));
        assert_eq!(
            report.overall.describe(),
            "1 pending, 0 processing, 2 completed, 1 expired, 1 unknown"
        );
        let mut out = Vec::new();
        report.write_human(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("conversion: 40.0% (2 of 5 completed)"),
            "{text}"
        );
        assert!(text.contains("by segment:"), "{text}");
        let vip = text
            .lines()
            .find(|l| l.trim_start().starts_with("vip"))
            .unwrap();
        assert!(vip.ends_with("50.0%"), "{vip}");
        assert!(text.contains("(empty)"), "{text}");
        let json = report.json_fields(Some("customers"));
        assert_eq!(json["counts"]["error"], 0);
        assert_eq!(json["counts"]["unknown"], 1);
        assert_eq!(json["by"]["groups"][0]["value"], "");
    }

    #[test]
    fn nothing_created_has_no_rate() {
        let report = Report::new(None);
        assert_eq!(report.overall.conversion(), None);
        assert_eq!(format_rate(None), "n/a");
    }
}
