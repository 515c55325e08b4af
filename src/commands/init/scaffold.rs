//! The campaign text `init` writes: every key commented on its line, the comments lined up.

use std::fmt::Write as _;
use std::path::Path;

use super::columns::{is_personal, Columns};
use super::{shell_word, SchemaRef, COMMENT_COLUMN, PRODUCT_PLACEHOLDER};
use crate::escape::escape_control;
use crate::template::{column_reference, is_identifier};

/// Everything the campaign text is made from.
pub(super) struct Scaffold<'a> {
    pub(super) name: &'a str,
    pub(super) csv_file: &'a str,
    pub(super) yaml_file: &'a Path,
    pub(super) headers: &'a [String],
    pub(super) columns: &'a Columns,
    pub(super) product: Option<&'a str>,
    pub(super) delimiter: u8,
    pub(super) workbook: bool,
    pub(super) schema: &'a SchemaRef,
}

impl Scaffold<'_> {
    pub(super) fn write(&self) -> String {
        let mut y = Yaml::default();
        let headers = self.headers;
        let c = self.columns;
        let template = |i: usize| {
            // Only columns a template can name are wired (`usable` in `Columns::guess`).
            let reference = column_reference(&headers[i], headers).unwrap_or_default();
            format!("{{{{ {reference} }}}}")
        };
        y.raw(&format!(
            "# yaml-language-server: $schema={}",
            self.schema.reference
        ));
        if !self.schema.found {
            y.raw("# (for editor checks, write the schema beside this file: creem-batch schema > campaign.schema.json)");
        }
        y.raw(&format!(
            "# A campaign for {}, written by `creem-batch init`: one Creem checkout link per row.",
            self.csv_file
        ));
        y.raw("# Every string under checkout: is a template: \"{{ column }}\" is the row's value in that");
        y.raw("# CSV column, {{ campaign }} the campaign name, {{ row }} the data row number.");
        let yaml_name = self.yaml_file.file_name().unwrap_or_default();
        y.raw(&format!(
            "# Next: creem-batch check {}",
            shell_word(&yaml_name.to_string_lossy())
        ));
        y.blank();
        y.line(
            &format!("campaign: {}", self.name),
            "name, 1-64 of A-Z a-z 0-9 _ -; part of every request_id",
        );
        y.line(
            &format!("customers: {}", yaml_string(self.csv_file)),
            "the customers CSV, relative to this file",
        );
        y.line(
            &format!(
                "# output: {}",
                yaml_string(&format!("{}.results.csv", self.name))
            ),
            "the results CSV (the ledger); this is the default",
        );
        let key = &headers[c.key()];
        let key_note = if c.email.is_some() {
            "identifies a customer: one checkout per email address".to_owned()
        } else if c.customer_id.is_some() {
            "identifies a customer: request_ids derive from it".to_owned()
        } else {
            "TODO: the column(s) that identify a customer (first column for now)".to_owned()
        };
        y.line(&format!("key: [{}]", yaml_string(key)), &key_note);
        y.line(
            "# request_id: \"order-{{ order_id }}\"",
            "per-row id; default <campaign>-<hash of the key>",
        );
        y.blank();

        y.raw("checkout:");
        match (self.product, c.product) {
            (Some(product), _) => y.line(
                &format!("  product_id: {}", yaml_string(product)),
                "the Creem product sold (prod_...)",
            ),
            (None, Some(i)) => y.line(
                &format!("  product_id: {}", yaml_string(&template(i))),
                &format!(
                    "the Creem product (prod_...), per row from `{}`",
                    headers[i]
                ),
            ),
            (None, None) => y.line(
                &format!("  product_id: {PRODUCT_PLACEHOLDER}"),
                "TODO: your Creem product id (prod_...), or a template like \"{{ product }}\"",
            ),
        }
        match c.units {
            Some(i) => y.line(
                &format!("  units: {}", yaml_string(&template(i))),
                &format!("seats per checkout (integer >= 1), from `{}`", headers[i]),
            ),
            None => y.line(
                "  units: 1",
                "seats per checkout: an integer >= 1, or a template",
            ),
        }
        match c.discount {
            Some(i) => y.line(
                &format!("  discount_code: {}", yaml_string(&template(i))),
                &format!(
                    "a Creem discount code, from `{}` (empty: none)",
                    escape_control(&headers[i])
                ),
            ),
            None => y.line(
                "  # discount_code: SPRING2026",
                "a Creem discount code applied at checkout",
            ),
        }
        match c.locale {
            Some(i) => y.line(
                &format!("  locale: {}", yaml_string(&template(i))),
                &format!(
                    "checkout page language (en, fr, zh-CN...), from `{}`",
                    headers[i]
                ),
            ),
            None => y.line(
                "  # locale: en",
                "checkout page language: en, fr, es, zh-CN...",
            ),
        }
        y.line(
            "  # plan_type: team_annual",
            "a marker for your own system, sent as metadata.plan_type",
        );
        y.line(
            "  # success_url: https://yourdomain.com/success",
            "where Creem sends the customer after payment",
        );
        match (c.email, c.customer_id) {
            (Some(i), _) => {
                y.line(
                    "  customer:",
                    "who the checkout is for: email or id, not both",
                );
                y.line(
                    &format!("    email: {}", yaml_string(&template(i))),
                    &format!(
                        "the customer's email, from `{}`; checked before sending",
                        headers[i]
                    ),
                );
            }
            (None, Some(i)) => {
                y.line(
                    "  customer:",
                    "who the checkout is for: email or id, not both",
                );
                y.line(
                    &format!("    id: {}", yaml_string(&template(i))),
                    &format!(
                        "an existing Creem customer (cust_...), from `{}`",
                        headers[i]
                    ),
                );
            }
            (None, None) => {
                y.raw(&format!(
                    "  # TODO: no email column found in {}: name the one that holds emails below and",
                    self.csv_file
                ));
                y.raw("  # remove the #s (or use id: \"{{ creem_customer_id }}\" for existing Creem customers).");
                y.line(
                    "  # customer:",
                    "who the checkout is for: email or id, not both",
                );
                y.line(
                    "  #   email: \"{{ email }}\"",
                    "the customer's email column",
                );
            }
        }
        self.metadata(&mut y);
        y.blank();

        if self.workbook {
            // A workbook has no delimiter; `csv.sheet:` picks a sheet (the first by default).
        } else if self.delimiter == b',' {
            y.line("# csv:", "how to read the customers CSV");
            y.line(
                "#   delimiter: \";\"",
                ", ; | or tab; default: detected from the header",
            );
        } else {
            let delimiter = match self.delimiter {
                b'\t' => "tab".to_owned(),
                d => yaml_string(&(d as char).to_string()),
            };
            y.line("csv:", "how to read the customers CSV");
            y.line(
                &format!("  delimiter: {delimiter}"),
                ", ; | or tab; found in the header (detected anyway)",
            );
        }
        y.blank();

        y.line(
            "send:",
            "how fast and how hard to send; `run` flags override these",
        );
        y.line(
            "  rate: auto",
            "adapts to what Creem takes; or a fixed N/s or N/min",
        );
        y.line("  max_rate: 100/s", "the most `rate: auto` may reach");
        y.line("  burst: 1", "how many requests may start back to back");
        y.line("  concurrency: 8", "requests in flight at once");
        y.line("  max_attempts: 5", "attempts per row, first try included");
        y.line("  timeout: 30s", "per request");
        y.text
    }

    /// `metadata:` with the campaign name and the id columns; every other column not wired
    /// elsewhere as a commented-out line to opt into (personal data stays home by default).
    fn metadata(&self, y: &mut Yaml) {
        let headers = self.headers;
        let c = self.columns;
        let wired = c.wired();
        // `campaign` first, so that no column's key can clash with it once uncommented.
        let mut keys: Vec<String> = vec!["campaign".to_owned()];
        let mut ids = Vec::new();
        let mut others = Vec::new();
        let mut unusable = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            if wired.contains(&i) {
                continue;
            }
            let Some(reference) = column_reference(header, headers) else {
                unusable.push(escape_control(header).into_owned());
                continue;
            };
            let mut key = metadata_key(header);
            if key.is_empty() || keys.contains(&key) || key == "plan_type" || key == "locale" {
                key = format!("column_{}", i + 1);
            }
            keys.push(key.clone());
            let entry = (key, format!("{{{{ {reference} }}}}"), header.as_str());
            if c.ids.contains(&i) {
                ids.push(entry);
            } else {
                others.push(entry);
            }
        }
        y.line(
            "  metadata:",
            "strings stored on the checkout, back in webhooks",
        );
        y.line("    campaign: \"{{ campaign }}\"", "the campaign name");
        for (key, value, header) in ids {
            let code = format!("    {}: {}", yaml_string(&key), yaml_string(&value));
            y.line(
                &code,
                &format!(
                    "column `{}`: an id, to find the customer again",
                    escape_control(header)
                ),
            );
        }
        if !others.is_empty() {
            y.raw("    # The other columns are not sent: Creem keeps metadata and returns it in webhooks,");
            y.raw("    # so send only what you need. Remove the # of a line to send that column.");
        }
        for (key, value, header) in others {
            let code = format!("    # {}: {}", yaml_string(&key), yaml_string(&value));
            let note = if is_personal(header) {
                format!("column `{}` (personal data)", escape_control(header))
            } else {
                format!("column `{}`", escape_control(header))
            };
            y.line(&code, &note);
        }
        if !unusable.is_empty() {
            // Only a CSV with its own `columns` column hides the others from templates.
            y.raw(&format!(
                "    # Not usable in a template, because the CSV has a column named `columns` \
                 (rename it to use them): {}",
                unusable.join(", ")
            ));
        }
    }
}

/// A metadata key for a column: the name in snake_case ASCII (`First Name` -> `first_name`).
pub(super) fn metadata_key(header: &str) -> String {
    if is_identifier(header) {
        return header.to_owned();
    }
    let mut key = String::new();
    for c in header.chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_lowercase());
        } else if !key.ends_with('_') && !key.is_empty() {
            key.push('_');
        }
    }
    let key = key.trim_end_matches('_');
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        format!("c_{key}")
    } else {
        key.to_owned()
    }
}

/// The campaign text being written, with comments lined up.
#[derive(Default)]
struct Yaml {
    text: String,
}

impl Yaml {
    fn raw(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    /// `code`, then `# comment` at [`COMMENT_COLUMN`] (or two spaces after a long line).
    fn line(&mut self, code: &str, comment: &str) {
        let width = code.chars().count();
        let pad = if width + 2 <= COMMENT_COLUMN {
            COMMENT_COLUMN - width
        } else {
            2
        };
        // A column name could hold a line break; a comment must stay on its line.
        let comment = comment.replace(|c: char| c.is_control(), " ");
        let _ = writeln!(self.text, "{code}{:pad$}# {comment}", "");
    }
}

/// `text` as a YAML scalar: plain when that is unambiguous, else double-quoted.
pub(super) fn yaml_string(text: &str) -> String {
    let plain = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(text).expect("a string serialises")
    }
}
