//! A campaign opened for work: the customers CSV, the compiled templates, and a stream of
//! rows, each either ready to send or rejected with a reason. `check`, `run --dry-run` and
//! `run` all read rows through here, so they agree on every row.
//!
//! Duplicate keys are found without keeping every key in memory: a first pass over the CSV
//! puts each key's fingerprint in a fixed-size Bloom filter and notes the few fingerprints
//! seen twice (true duplicates, plus rare false positives); the second pass, the real one,
//! tracks only those. Memory stays flat from a thousand rows to millions, and the first pass
//! also gives the row count before anything is sent.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::campaign::Campaign;
use crate::customers::{CsvRow, CustomerCsv};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::render::{Rejection, Renderer, Request};

mod first_pass;
use first_pass::first_pass;

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowPlan {
    Ready {
        row: u64,
        request: Request,
    },
    Invalid {
        row: u64,
        rejection: Rejection,
    },
    /// Created before from exactly these inputs (see [`Batch::skip_unchanged`]): not rendered.
    Unchanged {
        row: u64,
    },
}

impl RowPlan {
    pub fn row(&self) -> u64 {
        match self {
            RowPlan::Ready { row, .. }
            | RowPlan::Invalid { row, .. }
            | RowPlan::Unchanged { row } => *row,
        }
    }

    /// The row's request_id, when it was worked out (not for an unchanged row).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            RowPlan::Ready { request, .. } => Some(&request.request_id),
            RowPlan::Invalid { rejection, .. } => Some(&rejection.request_id),
            RowPlan::Unchanged { .. } => None,
        }
    }
}

/// A campaign and its CSV, ready to be read row by row, in input order.
pub struct Batch {
    pub campaign: Campaign,
    csv: CustomerCsv,
    renderer: Renderer,
    total_rows: u64,
    /// Fingerprints the first pass saw more than once; only these are remembered row by row.
    repeated: HashSet<u64>,
    first_seen: HashMap<u64, u64>,
    key_names: String,
    unchanged: Option<Arc<Vec<u64>>>,
    record: CsvRow,
}

impl Batch {
    /// Opens the CSV, compiles the templates against its header and counts the rows.
    /// Anything wrong with the campaign or the CSV as a whole is reported here.
    pub fn open(campaign: Campaign) -> Result<Batch, Diagnostics> {
        let csv = CustomerCsv::open_with(&campaign.customers, &campaign.read_options())?;
        let renderer = Renderer::new(&campaign, csv.headers())?;
        let (total_rows, repeated) = first_pass(&campaign, &renderer)?;
        if total_rows == 0 {
            return Err(Diagnostic::file(
                &campaign.customers,
                "the file has a header but no customer rows",
            )
            .into());
        }
        Ok(Batch {
            key_names: campaign.key.join(", "),
            csv,
            renderer,
            repeated,
            first_seen: HashMap::new(),
            unchanged: None,
            campaign,
            total_rows,
            record: CsvRow::default(),
        })
    }

    /// Data rows in the CSV (known before the first row is read).
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Physical lines read so far, the header's included: more than rows + 1 when values
    /// span lines or blank lines are skipped.
    pub fn lines_read(&self) -> u64 {
        self.csv.lines_read()
    }

    /// How the customers file is read: "encoding UTF-8 (detected)", or its workbook sheet.
    pub fn file_format(&self) -> String {
        self.csv.describe()
    }

    /// Skips each body's SHA-256 and input_hash: a dry run with no ledger to compare against
    /// needs neither.
    pub fn without_body_hashes(&mut self) {
        self.renderer.set_hash_bodies(false);
    }

    /// Rows whose [`input_hash`](Renderer::input_hash) equals the one given for their row
    /// number (a created record's, from [`Prior::unchanged_rows`](crate::ledger::Prior::unchanged_rows))
    /// come out as [`RowPlan::Unchanged`] without being rendered: a re-run over a finished
    /// ledger then costs a hash per row instead of a rendering.
    pub fn skip_unchanged(&mut self, input_hashes: Arc<Vec<u64>>) {
        self.unchanged = Some(input_hashes);
    }

    /// The next row's plan; `Ok(None)` at the end. An error means the file itself failed.
    pub fn next_row(&mut self) -> Result<Option<RowPlan>, Diagnostic> {
        let mut record = std::mem::take(&mut self.record);
        if !self.csv.read(&mut record)? {
            return Ok(None);
        }
        let mut plan = self.plan(&record);
        if let RowPlan::Invalid { rejection, .. } = &mut plan {
            rejection.at = self.csv.locate(&record);
        }
        self.record = record;
        Ok(Some(plan))
    }

    /// Decides what becomes of one row: unusable records, empty keys, duplicates, unchanged
    /// rows, and otherwise the rendered request.
    fn plan(&mut self, record: &CsvRow) -> RowPlan {
        let row = record.row;
        let renderer = &self.renderer;
        let fields = match self
            .csv
            .swallowed_row(record)
            .map_or_else(|| self.csv.fields(record), Err)
        {
            Ok(fields) => fields,
            Err(problem) => {
                return RowPlan::Invalid {
                    row,
                    rejection: Rejection {
                        request_id: String::new(),
                        email: String::new(),
                        reason: problem.0,
                        at: String::new(),
                    },
                }
            }
        };
        let invalid = |request_id: String, reason: String| RowPlan::Invalid {
            row,
            rejection: Rejection {
                email: renderer.ledger_email(row, &fields),
                request_id,
                reason,
                at: String::new(),
            },
        };
        let empty = renderer.empty_key_columns(&fields);
        if !empty.is_empty() {
            let which = empty.join("`, `");
            return invalid(String::new(), format!("key column `{which}` is empty"));
        }
        let key_fp = renderer.key_fingerprint(&fields);
        if let Some(first) = seen_before(&self.repeated, &mut self.first_seen, key_fp, row) {
            let request_id = renderer.request_id(row, &fields).unwrap_or_default();
            return invalid(
                request_id,
                format!("duplicate of row {first} (same {})", self.key_names),
            );
        }
        let request_id = match renderer.request_id(row, &fields) {
            Ok(id) => id,
            Err(reason) => return invalid(String::new(), reason),
        };
        if renderer.has_request_id_template() {
            let fp = fingerprint_of_str(&request_id);
            if let Some(first) = seen_before(&self.repeated, &mut self.first_seen, fp, row) {
                return invalid(
                    request_id,
                    format!("duplicate of row {first} (same request_id)"),
                );
            }
        }
        // 0: no created record for this row (pending, failed, new): nothing to compare.
        let known = (self.unchanged.as_deref())
            .and_then(|hashes| hashes.get(row as usize).copied())
            .filter(|&hash| hash != 0);
        if known.is_some_and(|hash| hash == renderer.input_hash(row, &fields)) {
            return RowPlan::Unchanged { row };
        }
        match renderer.render(row, &fields, request_id) {
            Ok(request) => RowPlan::Ready { row, request },
            Err(rejection) => RowPlan::Invalid { row, rejection },
        }
    }
}

/// Returns the row that first had `fp`, if `fp` is one of the repeated fingerprints.
fn seen_before(
    repeated: &HashSet<u64>,
    first_seen: &mut HashMap<u64, u64>,
    fp: u64,
    row: u64,
) -> Option<u64> {
    if !repeated.contains(&fp) {
        return None;
    }
    match first_seen.entry(fp) {
        std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(row);
            None
        }
    }
}

pub(crate) fn fingerprint_of_str(text: &str) -> u64 {
    // Tagged so a request_id never collides with a key fingerprint by construction.
    let mut hasher = std::hash::DefaultHasher::new();
    ("request_id", text).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "email,segment\na@example.com,smb\nb@example.com,smb\nc@example.com,vip\n";

    fn open(dir: &std::path::Path, csv: &str, discount: &str) -> Batch {
        std::fs::write(dir.join("customers.csv"), csv).unwrap();
        let yaml = format!(
            "campaign: c\ncustomers: customers.csv\noutput: out.csv\ncheckout:\n  product_id: prod_1\n  discount_code: {discount}\n  customer:\n    email: \"{{{{ email }}}}\"\n  metadata:\n    segment: \"{{{{ segment }}}}\"\n"
        );
        let campaign = Campaign::parse(&dir.join("campaign.yaml"), yaml).unwrap();
        Batch::open(campaign).unwrap()
    }

    fn plans(mut batch: Batch) -> Vec<RowPlan> {
        std::iter::from_fn(|| batch.next_row().unwrap()).collect()
    }

    fn input_hashes(plans: &[RowPlan]) -> Vec<u64> {
        let mut hashes = vec![0];
        for plan in plans {
            match plan {
                RowPlan::Ready { request, .. } => hashes.push(request.input_hash),
                other => panic!("not rendered: {other:?}"),
            }
        }
        hashes
    }

    fn kinds(plans: &[RowPlan]) -> Vec<&'static str> {
        plans
            .iter()
            .map(|p| match p {
                RowPlan::Ready { .. } => "ready",
                RowPlan::Invalid { .. } => "invalid",
                RowPlan::Unchanged { .. } => "unchanged",
            })
            .collect()
    }

    #[test]
    fn rows_whose_inputs_match_their_record_are_not_rendered_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = plans(open(dir.path(), CSV, "SPRING"));
        let hashes = input_hashes(&first);
        assert!(hashes[1..].iter().all(|&h| h != 0));
        assert_ne!(hashes[1], hashes[2], "rows differ in email");

        // The same inputs: nothing is rendered. A row whose record had another hash is.
        let mut batch = open(dir.path(), CSV, "SPRING");
        let mut known = hashes.clone();
        known[2] ^= 1;
        batch.skip_unchanged(Arc::new(known));
        assert_eq!(kinds(&plans(batch)), ["unchanged", "ready", "unchanged"]);

        // A changed cell, or a changed template, is a changed input.
        let mut batch = open(dir.path(), &CSV.replace("vip", "smb"), "SPRING");
        batch.skip_unchanged(Arc::new(hashes.clone()));
        assert_eq!(kinds(&plans(batch)), ["unchanged", "unchanged", "ready"]);
        let mut batch = open(dir.path(), CSV, "SUMMER");
        batch.skip_unchanged(Arc::new(hashes.clone()));
        assert_eq!(kinds(&plans(batch)), ["ready", "ready", "ready"]);

        // A customer moved to another row is rendered (templates may use the row number).
        let moved = "email,segment\nb@example.com,smb\na@example.com,smb\nc@example.com,vip\n";
        let mut batch = open(dir.path(), moved, "SPRING");
        batch.skip_unchanged(Arc::new(hashes));
        assert_eq!(kinds(&plans(batch)), ["ready", "ready", "unchanged"]);
    }

    fn open_yaml(dir: &std::path::Path, csv: &str, checkout: &str) -> Batch {
        std::fs::write(dir.join("customers.csv"), csv).unwrap();
        let yaml = format!("campaign: c\ncustomers: customers.csv\ncheckout:\n{checkout}");
        Batch::open(Campaign::parse(&dir.join("campaign.yaml"), yaml).unwrap()).unwrap()
    }

    fn body_or_reason(plan: &RowPlan) -> Result<serde_json::Value, String> {
        match plan {
            RowPlan::Ready { request, .. } => Ok(serde_json::from_slice(&request.body).unwrap()),
            RowPlan::Invalid { rejection, .. } => Err(rejection.reason.clone()),
            RowPlan::Unchanged { .. } => Err("unchanged".into()),
        }
    }

    #[test]
    fn locale_and_plan_type_travel_as_metadata_and_new_fields_render_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "email,locale,price,aff,q\na@example.com,fr,1900,aff_1,Company\n\
                   b@example.com,en,12.5,aff_2,Company\nc@example.com,en,100,,bad key\n";
        let checkout = "  product_id: prod_1\n  locale: \"{{ locale }}\"\n  plan_type: team\n\
                        \x20 custom_price: \"{{ price }}\"\n  affiliate_code: \"{{ aff }}\"\n\
                        \x20 customer:\n    email: \"{{ email }}\"\n  custom_fields:\n\
                        \x20   - type: text\n      key: \"{{ q | replace(' ', '') }}\"\n      label: \"{{ q }}\"\n";
        let rows: Vec<_> = plans(open_yaml(dir.path(), csv, checkout))
            .iter()
            .map(body_or_reason)
            .collect();
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.get("locale"), None, "no top-level locale");
        assert_eq!(
            first["metadata"],
            serde_json::json!({"plan_type": "team", "locale": "fr"})
        );
        assert_eq!(first["custom_price"], 1900);
        assert_eq!(first["affiliate_code"], "aff_1");
        assert_eq!(
            first["custom_fields"],
            serde_json::json!([{"type": "text", "key": "Company", "label": "Company"}])
        );
        let second = rows[1].as_ref().unwrap_err();
        assert!(
            second.contains("custom_price `12.5` is not an integer >= 0"),
            "{second}"
        );
        let third = rows[2].as_ref().unwrap();
        assert_eq!(third.get("affiliate_code"), None, "empty: left out");
        assert_eq!(third["custom_fields"][0]["key"], "badkey");
    }

    #[test]
    fn a_custom_field_key_rendered_per_row_is_checked_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "email,k\na@example.com,ok1\nb@example.com,not ok\n";
        let checkout = "  product_id: prod_1\n  custom_fields:\n    - type: checkbox\n\
                        \x20     key: \"{{ k }}\"\n      label: L\n";
        let rows: Vec<_> = plans(open_yaml(dir.path(), csv, checkout))
            .iter()
            .map(body_or_reason)
            .collect();
        assert!(rows[0].is_ok());
        let reason = rows[1].as_ref().unwrap_err();
        assert_eq!(
            reason,
            "custom_fields[0].key `not ok` must be letters and digits only"
        );
    }

    #[test]
    fn an_unclosed_quote_that_swallows_a_row_makes_the_row_invalid() {
        let dir = tempfile::tempdir().unwrap();
        // Row 2's quote is never closed on its line: it runs to the quote on line 5 and takes
        // lines 5 and 6 with it. Row 1's address is a real multi-line value.
        let csv = "email,name,seats\na@example.com,\"Main St 1\nBerlin\",1\n\
                   b@example.com,\"Quoted start,1\nc@example.com,Cee,2\nd@example.com,\"Dee\",3\n";
        let checkout = "  product_id: prod_1\n  customer:\n    email: \"{{ email }}\"\n";
        let mut batch = open_yaml(dir.path(), csv, checkout);
        let rows: Vec<_> = std::iter::from_fn(|| batch.next_row().unwrap())
            .map(|plan| body_or_reason(&plan))
            .collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(
            rows[0].as_ref().unwrap()["customer"]["email"],
            "a@example.com"
        );
        let reason = rows[1].as_ref().unwrap_err();
        assert!(
            reason.starts_with("lines 4-6: a quote in column `name` is not closed")
                && reason.contains("takes in line 5"),
            "{reason}"
        );
        assert_eq!(batch.lines_read(), 6, "physical lines, header included");
    }

    #[test]
    fn a_body_over_the_limit_is_invalid_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(crate::render::MAX_BODY_BYTES);
        let csv = format!("email,note\na@example.com,short\nb@example.com,{long}\n");
        let checkout = "  product_id: prod_1\n  metadata:\n    note: \"{{ note }}\"\n";
        let rows: Vec<_> = plans(open_yaml(dir.path(), &csv, checkout))
            .iter()
            .map(body_or_reason)
            .collect();
        assert!(rows[0].is_ok());
        let reason = rows[1].as_ref().unwrap_err();
        assert!(reason.contains("more than the 64 KiB limit"), "{reason}");
    }

    #[test]
    fn control_characters_in_a_cell_are_escaped_in_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "email\na\u{0}b@example.com\nc\u{1b}[2J@example.com\n";
        let checkout = "  product_id: prod_1\n  customer:\n    email: \"{{ email }}\"\n";
        let rows: Vec<_> = plans(open_yaml(dir.path(), csv, checkout))
            .iter()
            .map(body_or_reason)
            .collect();
        let first = rows[0].as_ref().unwrap_err();
        assert!(first.starts_with("email `a\\u{0}b@example.com`"), "{first}");
        let second = rows[1].as_ref().unwrap_err();
        assert!(second.contains("c\\u{1b}[2J@"), "{second}");
        assert!(!rows
            .iter()
            .any(|r| r.as_ref().unwrap_err().contains(['\0', '\u{1b}'])));
    }

    #[test]
    fn utf16_without_a_byte_order_mark_is_read_as_utf16() {
        let dir = tempfile::tempdir().unwrap();
        let utf16: Vec<u8> = "email\tname\na@example.com\tJosé\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        std::fs::write(dir.path().join("customers.csv"), utf16).unwrap();
        let yaml = "campaign: c\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n  metadata:\n    name: \"{{ name }}\"\n";
        let campaign = Campaign::parse(&dir.path().join("c.yaml"), yaml.into()).unwrap();
        let batch = Batch::open(campaign).unwrap();
        assert_eq!(
            batch.file_format(),
            "encoding UTF-16LE (no byte-order mark; detected from its NUL bytes)"
        );
        let rows: Vec<_> = plans(batch).iter().map(body_or_reason).collect();
        assert_eq!(rows[0].as_ref().unwrap()["metadata"]["name"], "José");
    }

    #[test]
    fn rows_with_many_columns_render_every_cell() {
        let names: Vec<String> = (1..=40).map(|i| format!("c{i}")).collect();
        let cells: Vec<String> = (1..=40).map(|i| format!("v{i}")).collect();
        let csv = format!(
            "{},email\n{},ana@example.com\n",
            names.join(","),
            cells.join(",")
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("customers.csv"), csv).unwrap();
        let yaml = "campaign: c\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n  customer:\n    email: \"{{ email }}\"\n  metadata:\n    first: \"{{ c1 }}\"\n    last: \"{{ c40 }}\"\n";
        let campaign = Campaign::parse(&dir.path().join("campaign.yaml"), yaml.into()).unwrap();
        let plans = plans(Batch::open(campaign).unwrap());
        let RowPlan::Ready { request, .. } = &plans[0] else {
            panic!("{plans:?}")
        };
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["customer"]["email"], "ana@example.com");
        assert_eq!(
            body["metadata"],
            serde_json::json!({"first": "v1", "last": "v40"})
        );
    }
}

/// Every body the example campaigns produce is one Creem accepts: validated against
/// `CreateCheckoutRequest` from Creem's OpenAPI file with unknown properties forbidden.
#[cfg(test)]
mod creem_schema {
    use super::*;

    /// Creem's request schema, strict: no property outside the ones it lists. The SDK (npm
    /// `creem` 1.13.0) also has `custom_price` and `affiliate_code`, which the April 2026
    /// OpenAPI file lacks; they are added as the SDK types them.
    fn strict_request_schema() -> serde_json::Value {
        let text = include_str!("../tests/data/creem-openapi.json");
        let openapi: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut schemas = openapi["components"]["schemas"].clone();
        let request = &mut schemas["CreateCheckoutRequest"]["properties"];
        request["custom_price"] = serde_json::json!({"type": "integer", "minimum": 0});
        request["affiliate_code"] = serde_json::json!({"type": "string"});
        for name in [
            "CreateCheckoutRequest",
            "CustomerRequestEntity",
            "CustomFieldRequestEntity",
            "TextFieldConfig",
            "CheckboxFieldConfig",
        ] {
            schemas[name]["additionalProperties"] = false.into();
        }
        serde_json::json!({
            "$ref": "#/components/schemas/CreateCheckoutRequest",
            "components": {"schemas": schemas},
        })
    }

    #[test]
    fn every_example_body_is_a_create_checkout_request() {
        let validator = jsonschema::validator_for(&strict_request_schema()).unwrap();
        // The check itself: a top-level `locale` is refused.
        let refused = serde_json::json!({"product_id": "prod_1", "locale": "fr"});
        assert!(!validator.is_valid(&refused));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
        let mut campaigns = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            campaigns += 1;
            let mut batch = Batch::open(Campaign::load(&path).unwrap()).unwrap();
            let mut bodies = 0;
            while let Some(plan) = batch.next_row().unwrap() {
                if let RowPlan::Ready { request, .. } = plan {
                    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                    let errors: Vec<String> = validator
                        .iter_errors(&body)
                        .map(|e| e.to_string())
                        .collect();
                    assert!(errors.is_empty(), "{}: {body}: {errors:?}", path.display());
                    bodies += 1;
                }
            }
            assert!(bodies > 0, "{}", path.display());
        }
        assert!(campaigns >= 4, "{campaigns}");
    }
}

/// No input, however broken, makes the CSV reader or the campaign parser panic.
#[cfg(test)]
mod no_panic {
    use super::*;
    use proptest::prelude::*;

    /// Bytes that matter to a CSV reader, plus invalid UTF-8 and NUL.
    fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop::sample::select(vec![
            b'a', b'@', b'.', b',', b';', b'\t', b'"', b'\n', b'\r', b' ', 0, 0xC3, 0xFF, b'1',
        ]);
        prop::collection::vec(byte, 0..300)
    }

    /// YAML-ish text made of the campaign's own keys and syntax.
    fn campaign_text() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "campaign: c\n",
            "customers: x.csv\n",
            "checkout:\n",
            "  product_id: p\n",
            "  units: ",
            "99999999999999999999999",
            "1e400",
            "{{ seats }}",
            "\n",
            "  ",
            "send:\n",
            "  timeout: ",
            "99999999999999999999s",
            "  custom_fields:\n",
            "    - type: text\n",
            "      key: ",
            "      label: ",
            "\"",
            "'",
            "[",
            "]",
            "{",
            "}",
            ": ",
            "- ",
            "#",
            "&a ",
            "*a",
            "!!binary ",
            "\0",
            "ü",
            "  metadata:\n",
            "    locale: x\n",
            "  locale: y\n",
            "  custom_price: ",
            "-1",
        ]);
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn the_customers_reader_never_panics(header in csv_bytes(), body in csv_bytes()) {
            let dir = tempfile::tempdir().unwrap();
            let mut csv = b"email,name\n".to_vec();
            csv.extend(header);
            csv.extend(body);
            std::fs::write(dir.path().join("customers.csv"), &csv).unwrap();
            let yaml = "campaign: c\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n  customer:\n    email: \"{{ columns['email'] }}\"\n";
            let campaign = Campaign::parse(&dir.path().join("c.yaml"), yaml.into()).unwrap();
            if let Ok(mut batch) = Batch::open(campaign) {
                let mut rows = 0;
                while let Ok(Some(_)) = batch.next_row() {
                    rows += 1;
                }
                prop_assert!(rows <= batch.total_rows());
            }
        }

        #[test]
        fn the_campaign_parser_never_panics(text in campaign_text()) {
            let _ = Campaign::parse(std::path::Path::new("c.yaml"), text);
        }

        #[test]
        fn the_campaign_parser_never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = Campaign::parse(std::path::Path::new("c.yaml"), text);
        }
    }
}
