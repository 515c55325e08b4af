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
            RowPlan::Skipped { .. } => "skipped",
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
        RowPlan::Skipped { skip, .. } => Err(skip.reason.clone()),
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
