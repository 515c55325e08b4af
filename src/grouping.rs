//! What `--by` groups rows by, for `status` and `report`: a column of the customers CSV, a
//! ledger column, or a field of the rendered body (`discount_code`, `metadata.segment`), read
//! back from the ledger's `body` column so a value chosen by a template `if` can be grouped.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::customers::{CsvRow, CustomerCsv};
use crate::ledger::{Record, Status, COLUMNS};

/// The top-level fields of a checkout body (the OpenAPI `CreateCheckoutRequestEntity`) that
/// `--by` may name, alone or with a `.`-path below them.
const BODY_FIELDS: [&str; 8] = [
    "product_id",
    "request_id",
    "units",
    "discount_code",
    "customer",
    "custom_fields",
    "success_url",
    "metadata",
];

/// The campaign's customers CSV, when the command was given the campaign.
pub(crate) struct Customers {
    pub(crate) path: PathBuf,
    pub(crate) delimiter: Option<u8>,
}

/// The column `--by` names.
pub(crate) enum By {
    /// A ledger column.
    Ledger(String),
    /// A column of the customers CSV (joined to the ledger on `row`), still to be read.
    Customers {
        name: String,
        csv: Box<CustomerCsv>,
        index: usize,
    },
    /// A field of the body sent, as a `.`-separated path (`metadata.segment`).
    Body(String),
}

impl By {
    /// Finds the column: the customers CSV's first (it is the user's own data), then the
    /// ledger's, then the body's. An unknown name is a usage error that lists what exists.
    pub(crate) fn resolve(name: &str, customers: Option<&Customers>) -> anyhow::Result<By> {
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
        let top = name.split('.').next().unwrap_or_default();
        if BODY_FIELDS.contains(&top) && name.split('.').all(|part| !part.is_empty()) {
            return Ok(By::Body(name.to_owned()));
        }
        available.push(format!("ledger: {}", COLUMNS.join(", ")));
        available.push(format!(
            "rendered body: {} (and paths below them, e.g. metadata.segment)",
            BODY_FIELDS.join(", ")
        ));
        candidates.extend(COLUMNS.iter().map(|c| c.to_string()));
        candidates.extend(BODY_FIELDS.iter().map(|c| c.to_string()));
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

    pub(crate) fn column(&self) -> &str {
        match self {
            By::Ledger(name) | By::Customers { name, .. } | By::Body(name) => name,
        }
    }

    pub(crate) fn source(&self) -> &'static str {
        match self {
            By::Ledger(_) => "ledger",
            By::Customers { .. } => "customers",
            By::Body(_) => "body",
        }
    }

    /// The group of every record (empty for rows without a value), computed once. For a
    /// customers CSV column, the CSV is streamed and only the values of the records' rows kept.
    pub(crate) fn groups(self, records: &[Record]) -> anyhow::Result<Vec<String>> {
        match self {
            By::Ledger(name) => Ok(records
                .iter()
                .map(|r| r.column(&name).unwrap_or_default().into_owned())
                .collect()),
            By::Body(path) => Ok(records.iter().map(|r| body_field(&r.body, &path)).collect()),
            By::Customers { mut csv, index, .. } => {
                // `read_all` returns records in row order, so a row is found by binary search.
                let wanted = |row: u64| {
                    records
                        .binary_search_by_key(&row, |r| r.row)
                        .is_ok_and(|i| records[i].status != Status::Invalid)
                };
                let mut values: HashMap<u64, String> = HashMap::new();
                let mut record = CsvRow::default();
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
                    .map(|r| values.get(&r.row).cloned().unwrap_or_default())
                    .collect())
            }
        }
    }
}

/// The value at `path` in the JSON `body`, as text: strings as they are, other values as
/// JSON; empty when the body is not JSON or has no such field.
pub(crate) fn body_field(body: &str, path: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(body) else {
        return String::new();
    };
    for part in path.split('.') {
        match value.get_mut(part) {
            Some(inner) => value = inner.take(),
            None => return String::new(),
        }
    }
    match value {
        serde_json::Value::String(text) => crate::escape::escape_control(&text).into_owned(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_paths_give_text_or_nothing() {
        let body = r#"{"discount_code":"VIP20","metadata":{"segment":"vip","n":3},"units":2}"#;
        assert_eq!(body_field(body, "discount_code"), "VIP20");
        assert_eq!(body_field(body, "metadata.segment"), "vip");
        assert_eq!(body_field(body, "metadata.n"), "3");
        assert_eq!(body_field(body, "units"), "2");
        assert_eq!(body_field(body, "metadata.missing"), "");
        assert_eq!(body_field("not json", "units"), "");
        assert_eq!(
            body_field(r#"{"metadata":{"s":"a\u001bb"}}"#, "metadata.s"),
            "a\\u{1b}b"
        );
    }

    #[test]
    fn body_fields_resolve_without_the_campaign() {
        assert!(matches!(
            By::resolve("metadata.segment", None),
            Ok(By::Body(path)) if path == "metadata.segment"
        ));
        assert!(matches!(
            By::resolve("discount_code", None),
            Ok(By::Body(_))
        ));
        assert!(matches!(By::resolve("status", None), Ok(By::Ledger(_))));
        let message = By::resolve("metadata.", None).err().unwrap().to_string();
        assert!(message.contains("rendered body"), "{message}");
    }
}
