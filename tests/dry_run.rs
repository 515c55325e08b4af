//! `creem-batch run --dry-run`: the exact bodies that would be sent, one JSON line per row,
//! the plan on stderr, no network, no key, no output file.

use serde_json::{json, Value};

use crate::common::{expected_request_id, Campaign, Run, TestEnv, MINIMAL_YAML};

/// Writes `yaml` and `csv` into a fresh directory and dry-runs it.
fn dry(yaml: &str, csv: impl AsRef<[u8]>) -> Run {
    let env = TestEnv::new();
    env.campaign(yaml, csv);
    env.dry_run()
}

/// The body of the only line of a run that must have exactly one.
#[track_caller]
fn only_body(run: &Run) -> Value {
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1, "one line\n{run}");
    lines[0]["body"].clone()
}

/// The invalid-row reason the plan on stderr gives for `row`.
#[track_caller]
fn assert_invalid(run: &Run, row: u64, reason: &str) {
    run.stderr_has(&[
        &format!("  row {row}, line "),
        &format!(" in the file: {reason}"),
    ]);
    assert!(
        !run.sent_rows().contains(&row),
        "row {row} must not be sent\n{run}"
    );
}

const FULL_YAML: &str = r#"campaign: spring-sale-2026
customers: customers.csv
output: out/results.csv
checkout:
  product_id: prod_6tW66i0oZM7w1qXReHJrwg
  units: "{{ seats }}"
  discount_code: SPRING2026
  locale: "{{ locale }}"
  plan_type: team_annual
  success_url: https://shop.example.com/thanks?c={{ campaign }}
  customer:
    email: "{{ email }}"
  metadata:
    userId: "{{ user_id }}"
    referrer: "{{ referrer }}"
    source: landing_page
    campaign: "{{ campaign }}"
    row: "{{ row }}"
"#;

const FULL_CSV: &str = "email,seats,locale,user_id,referrer\n\
ana.garcia@example.com,3,es,u_1001,aff_003\n\
li.wei@example.cn,1,zh-CN,u_1002,\n";

// ---- the body -----------------------------------------------------------------------------

#[test]
fn full_campaign_body_field_by_field() {
    let run = dry(FULL_YAML, FULL_CSV);
    run.assert_exit(0);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{run}");
    let id = expected_request_id("spring-sale-2026", &[("email", "ana.garcia@example.com")]);
    let line = &lines[0];
    assert_eq!(line["request_id"], id);
    assert_eq!(line["row"], 1);
    let body = &line["body"];
    assert_eq!(body["product_id"], "prod_6tW66i0oZM7w1qXReHJrwg");
    assert_eq!(body["request_id"], id);
    assert!(body["units"].is_u64(), "units is a JSON integer: {body}");
    assert_eq!(body["units"], 3);
    assert_eq!(body["discount_code"], "SPRING2026");
    assert!(
        body.get("locale").is_none(),
        "Creem has no locale parameter"
    );
    assert_eq!(
        body["success_url"],
        "https://shop.example.com/thanks?c=spring-sale-2026"
    );
    assert_eq!(body["customer"], json!({"email": "ana.garcia@example.com"}));
    assert_eq!(
        body["metadata"],
        json!({
            "userId": "u_1001",
            "referrer": "aff_003",
            "source": "landing_page",
            "campaign": "spring-sale-2026",
            "row": "1",
            "plan_type": "team_annual",
            "locale": "es",
        })
    );
    assert!(
        body.get("plan_type").is_none(),
        "plan_type only in metadata"
    );
    // Nothing else is sent.
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "customer",
            "discount_code",
            "metadata",
            "product_id",
            "request_id",
            "success_url",
            "units"
        ]
    );
}

#[test]
fn empty_metadata_entries_are_left_out() {
    let run = dry(FULL_YAML, FULL_CSV);
    let second = run.line_for_row(2).expect("row 2 is sent");
    let metadata = second["body"]["metadata"].as_object().unwrap();
    assert!(!metadata.contains_key("referrer"), "{metadata:?}");
    assert_eq!(metadata["userId"], "u_1002");
    assert_eq!(metadata["locale"], "zh-CN");
    assert_eq!(second["body"]["units"], 1);
}

#[test]
fn optional_fields_rendering_empty_are_left_out() {
    let yaml = Campaign::new()
        .checkout("discount_code: \"{{ code }}\"\nlocale: \"{{ lang }}\"\nmetadata:\n  note: \"{{ code }}\"")
        .build();
    let run = dry(&yaml, "email,code,lang\nana@example.com,,\n");
    run.assert_exit(0);
    let body = only_body(&run);
    assert_eq!(
        body,
        json!({
            "product_id": "prod_1",
            "request_id": expected_request_id("spring", &[("email", "ana@example.com")]),
            "customer": {"email": "ana@example.com"},
        })
    );
}

#[test]
fn body_is_printed_in_documented_field_order() {
    let run = dry(FULL_YAML, FULL_CSV);
    let first = run.stdout.lines().next().unwrap();
    assert!(first.starts_with("{\"request_id\":\""), "{first}");
    let order = [
        "\"product_id\"",
        "\"request_id\"",
        "\"units\"",
        "\"discount_code\"",
        "\"success_url\"",
        "\"customer\"",
        "\"metadata\"",
    ];
    let body = &first[first.find("\"body\":").unwrap()..];
    let positions: Vec<usize> = order.iter().map(|k| body.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{body}");
}

#[test]
fn minimal_campaign_sends_no_units() {
    let run = dry(MINIMAL_YAML, "email\nana@example.com\n");
    let body = only_body(&run);
    assert!(body.get("units").is_none(), "{body}");
    assert!(body.get("metadata").is_none(), "{body}");
}

#[test]
fn fixed_units_are_an_integer() {
    let yaml = Campaign::new().checkout("units: 2").build();
    let body = only_body(&dry(&yaml, "email\nana@example.com\n"));
    assert_eq!(body["units"], json!(2));
    let yaml = Campaign::new().checkout("units: \"{{ seats }}\"").build();
    let body = only_body(&dry(&yaml, "email,seats\nana@example.com, 007 \n"));
    assert_eq!(body["units"], json!(7));
}

#[test]
fn customer_by_id() {
    let yaml = Campaign::new()
        .top("key: [customer_id]")
        .customer(Some("id: \"{{ customer_id }}\""))
        .build();
    let run = dry(&yaml, "customer_id,name\ncus_ABC,Ana\n");
    run.assert_exit(0);
    let body = only_body(&run);
    assert_eq!(body["customer"], json!({"id": "cus_ABC"}));
    assert_eq!(
        body["request_id"],
        expected_request_id("spring", &[("customer_id", "cus_ABC")])
    );
}

#[test]
fn jinja_expressions_render() {
    let yaml = Campaign::new()
        .checkout(
            "units: \"{{ seats | int + 1 }}\"\n\
             plan_type: \"{% if seats | int > 1 %}team{% else %}solo{% endif %}\"\n\
             metadata:\n  who: \"{{ name | upper }} #{{ row }}\"",
        )
        .build();
    let run = dry(&yaml, "email,name,seats\nana@example.com,Zoë,2\n");
    run.assert_exit(0);
    let body = only_body(&run);
    assert_eq!(body["units"], 3);
    assert_eq!(
        body["metadata"],
        json!({"who": "ZOË #1", "plan_type": "team"})
    );
}

// ---- request_id -----------------------------------------------------------------------------

#[test]
fn default_request_id_matches_an_independent_computation() {
    let emails = [
        "ana@example.com",
        "  Bo.Smith@Example.COM ",
        "ÉLODIE@exemple.fr",
        "李伟@例子.中国",
    ];
    let csv = format!("email\n{}\n", emails.join("\n"));
    let run = dry(MINIMAL_YAML, csv);
    run.assert_exit(0);
    let lines = run.json_lines();
    assert_eq!(lines.len(), emails.len(), "{run}");
    for (line, email) in lines.iter().zip(emails) {
        let expected = expected_request_id("spring", &[("email", email)]);
        assert_eq!(line["request_id"], expected, "{email}");
        assert_eq!(line["body"]["request_id"], expected, "{email}");
        assert_eq!(line["body"]["customer"]["email"], email.trim());
    }
    // A known value (from Python's hashlib), so the test helper cannot drift either.
    assert_eq!(lines[0]["request_id"], "spring-85bc4fae9be47226");
}

#[test]
fn default_request_id_is_stable_across_runs_and_folders() {
    let a = dry(MINIMAL_YAML, "email,name\nana@example.com,Ana\n");
    let b = dry(MINIMAL_YAML, "name,email\nAna B,ANA@example.com\n");
    assert_eq!(
        a.json_lines()[0]["request_id"],
        b.json_lines()[0]["request_id"]
    );
}

#[test]
fn multi_column_key() {
    let yaml = Campaign::new().top("key: [email, user_id]").build();
    let csv = "email,user_id\nana@example.com,U1\nANA@example.com,U2\nana@example.com, U1 \n";
    let run = dry(&yaml, csv);
    run.assert_exit(1);
    assert_eq!(run.sent_rows(), [1, 2]);
    for (row, user) in [(1, "U1"), (2, "U2")] {
        let line = run.line_for_row(row).unwrap();
        assert_eq!(
            line["request_id"],
            expected_request_id("spring", &[("email", "ana@example.com"), ("user_id", user)])
        );
    }
    assert_invalid(&run, 3, "duplicate of row 1 (same email, user_id)");
}

#[test]
fn non_email_key_columns_keep_their_case() {
    let yaml = Campaign::new().top("key: user_id").build();
    let run = dry(&yaml, "email,user_id\na@example.com,AB\nb@example.com,ab\n");
    run.assert_exit(0);
    assert_eq!(
        run.line_for_row(2).unwrap()["request_id"],
        expected_request_id("spring", &[("user_id", "ab")])
    );
}

#[test]
fn request_id_template_overrides_the_default() {
    let yaml = Campaign::new()
        .top("request_id: \"order-{{ order_id }}\"")
        .build();
    let csv = "email,order_id\nana@example.com,42\nbo@example.com,43\ncy@example.com,42\n";
    let run = dry(&yaml, csv);
    run.assert_exit(1);
    let first = run.line_for_row(1).unwrap();
    assert_eq!(first["request_id"], "order-42");
    assert_eq!(first["body"]["request_id"], "order-42");
    assert_eq!(run.line_for_row(2).unwrap()["request_id"], "order-43");
    assert_invalid(&run, 3, "duplicate of row 1 (same request_id)");
}

#[test]
fn request_id_template_rendering_empty_is_invalid() {
    let yaml = Campaign::new()
        .top("request_id: \"{{ order_id }}\"")
        .build();
    let run = dry(
        &yaml,
        "email,order_id\nana@example.com,\nbo@example.com,7\n",
    );
    run.assert_exit(1);
    assert_invalid(&run, 1, "request_id renders empty");
    assert_eq!(run.line_for_row(2).unwrap()["request_id"], "7");
}

// ---- CSV reading --------------------------------------------------------------------------

#[test]
fn utf8_bom_is_stripped_from_the_first_header() {
    let csv = "\u{feff}email,name\nana@example.com,Ana\n";
    let run = dry(MINIMAL_YAML, csv);
    run.assert_exit(0);
    let body = only_body(&run);
    assert_eq!(body["customer"]["email"], "ana@example.com");
    assert_eq!(
        body["request_id"],
        expected_request_id("spring", &[("email", "ana@example.com")])
    );
    // And with a detected delimiter other than a comma.
    let run = dry(MINIMAL_YAML, "\u{feff}email;name\nana@example.com;Ana\n");
    run.assert_exit(0);
}

#[test]
fn delimiters_are_detected_from_the_header() {
    let yaml = Campaign::new()
        .checkout("metadata:\n  name: \"{{ name }}\"\n  city: \"{{ city }}\"")
        .build();
    for d in [";", "\t", "|", ","] {
        // The data holds the other delimiters, unquoted where they are not the real one.
        let name = if d == "," { "\"Ana; B|C\"" } else { "Ana, B" };
        let csv = format!("email{d}name{d}city\nana@example.com{d}{name}{d}Zürich\n");
        let run = dry(&yaml, csv);
        run.assert_exit(0);
        let body = only_body(&run);
        let expected_name = if d == "," { "Ana; B|C" } else { "Ana, B" };
        assert_eq!(
            body["metadata"],
            json!({"name": expected_name, "city": "Zürich"}),
            "delimiter {d:?}"
        );
    }
}

#[test]
fn campaign_delimiter_setting_wins_over_detection() {
    // Detection sees one `;` and one `,` and prefers the comma; the campaign says `;`.
    let csv = "email;first,last\nana@example.com;Ana,García\n";
    dry(MINIMAL_YAML, csv)
        .assert_exit(2)
        .stderr_has(&["names column `email`, which the CSV does not have"]);
    let yaml = Campaign::new().top("csv:\n  delimiter: \";\"").build();
    let run = dry(&yaml, csv);
    run.assert_exit(0);
    assert_eq!(only_body(&run)["customer"]["email"], "ana@example.com");
    // `tab` is accepted by name.
    let yaml = Campaign::new().top("csv:\n  delimiter: tab").build();
    let run = dry(&yaml, "email\tnote\nana@example.com\ta,b;c|d\n");
    run.assert_exit(0);
}

#[test]
fn quoted_fields_with_commas_quotes_and_newlines() {
    let yaml = Campaign::new()
        .checkout("metadata:\n  note: \"{{ note }}\"")
        .build();
    let csv = "email,note\n\
               ana@example.com,\"Hello, \"\"friend\"\"\nsee you\"\n\
               \"bo@example.com\",plain\n";
    let run = dry(&yaml, csv);
    run.assert_exit(0);
    assert_eq!(
        run.line_for_row(1).unwrap()["body"]["metadata"]["note"],
        "Hello, \"friend\"\nsee you"
    );
    assert_eq!(
        run.line_for_row(2).unwrap()["body"]["customer"]["email"],
        "bo@example.com"
    );
}

#[test]
fn non_ascii_text_is_kept_exactly() {
    let yaml = Campaign::new()
        .checkout("metadata:\n  first: \"{{ first }}\"\n  last: \"{{ last }}\"")
        .build();
    let names = [
        ("伟", "李"),
        ("Ольга", "Иванова"),
        ("أحمد", "حسن"),
        ("Zoë 🙂", "Nguyễn"),
    ];
    let mut csv = String::from("email,first,last\n");
    for (i, (first, last)) in names.iter().enumerate() {
        csv.push_str(&format!("p{i}@example.com,{first},{last}\n"));
    }
    let run = dry(&yaml, csv);
    run.assert_exit(0);
    for (i, (first, last)) in names.iter().enumerate() {
        let line = run.line_for_row(i as u64 + 1).unwrap();
        assert_eq!(
            line["body"]["metadata"],
            json!({"first": first, "last": last})
        );
    }
    // Printed as UTF-8, not escaped.
    assert!(run.stdout.contains("Ольга"), "{run}");
}

#[test]
fn leading_zeros_are_kept() {
    let yaml = Campaign::new()
        .checkout("metadata:\n  zip: \"{{ zip }}\"\n  phone: \"{{ phone }}\"")
        .build();
    let run = dry(
        &yaml,
        "email,zip,phone\nana@example.com,01234,0044 20 7946 0000\n",
    );
    assert_eq!(
        only_body(&run)["metadata"],
        json!({"zip": "01234", "phone": "0044 20 7946 0000"})
    );
}

#[test]
fn wrong_field_count_row_is_invalid_and_the_batch_goes_on() {
    let run = dry(
        MINIMAL_YAML,
        "email,name\nana@example.com,Ana\nbo@example.com\ncy@example.com,Cy\n",
    );
    run.assert_exit(1);
    assert_eq!(run.sent_rows(), [1, 3]);
    assert_invalid(&run, 2, "the row has 1 field, the header has 2");
    run.stderr_has(&["  row 2, line 3 in the file: the row has 1 field"]);
}

#[test]
fn non_utf8_row_is_invalid_and_the_batch_goes_on() {
    let mut csv = b"email,name\nana@example.com,Ana\n".to_vec();
    csv.extend_from_slice(b"bo@example.com,\xFF\xFE\n");
    csv.extend_from_slice(b"cy@example.com,Cy\n");
    let yaml = Campaign::new().top("csv:\n  encoding: utf-8").build();
    let run = dry(&yaml, csv);
    run.assert_exit(1);
    assert_eq!(run.sent_rows(), [1, 3]);
    assert_invalid(
        &run,
        2,
        "column `name`: not valid UTF-8 at byte 1 (set `csv.encoding:` to the file's \
         encoding, such as windows-1252, or save it as UTF-8)",
    );
    run.stderr_has(&["  row 2, line 3 in the file: column `name`"]);
}

#[test]
fn blank_lines_and_blank_records_are_not_rows() {
    let run = dry(MINIMAL_YAML, "email\nana@example.com\n\n");
    run.assert_exit(0).stderr_has(&[
        "plan: 1 rows: 1 new, 0 to retry, 0 already created, 0 changed since created, 0 invalid",
    ]);
    // A spreadsheet's empty rows (`,,`) and lines of spaces, even between customers.
    let csv = "email,name\n,\nana@example.com,Ana\n  \n\nbo@example.com,Bo\n,,\n";
    let run = dry(MINIMAL_YAML, csv);
    run.assert_exit(0).stderr_has(&[
        "plan: 2 rows: 2 new, 0 to retry, 0 already created, 0 changed since created, 0 invalid",
    ]);
    assert_eq!(run.sent_rows(), [1, 2]);
}

// ---- row validation -----------------------------------------------------------------------

#[test]
fn empty_email() {
    // The default key is the email: an empty one cannot identify the customer.
    let run = dry(MINIMAL_YAML, "email,name\n,Ana\n  ,Bo\ncy@example.com,Cy\n");
    run.assert_exit(1);
    assert_invalid(&run, 1, "key column `email` is empty");
    assert_invalid(&run, 2, "key column `email` is empty");
    // With another key, the customer's email template is what is found empty.
    let yaml = Campaign::new().top("key: [user_id]").build();
    let run = dry(&yaml, "email,user_id\n,u1\n");
    run.assert_exit(1);
    assert_invalid(&run, 1, "email is empty (column `email`)");
}

#[test]
fn malformed_emails_are_invalid_with_the_reason() {
    let cases = [
        ("ana.example.com", "has no @"),
        ("ana@example", "has no dot in the domain"),
        ("ana smith@example.com", "contains spaces"),
        ("ana@@example.com", "has more than one @"),
        ("@example.com", "has no name before the @"),
        ("ana@example..com", "has a malformed domain"),
        ("ana@example.c", "has a malformed domain"),
        ("ana.@example.com", "has a misplaced dot before the @"),
        (
            "ana@exa_mple.com",
            "has a character not allowed in the domain",
        ),
    ];
    let mut csv = String::from("email\ngood@example.com\n");
    for (email, _) in cases {
        csv.push_str(email);
        csv.push('\n');
    }
    let run = dry(MINIMAL_YAML, csv);
    run.assert_exit(1);
    assert_eq!(run.sent_rows(), [1]);
    for (i, (email, why)) in cases.iter().enumerate() {
        assert_invalid(
            &run,
            i as u64 + 2,
            &format!("email `{email}` {why} (column `email`)"),
        );
    }
    run.stderr_has(&[&format!(
        "plan: {} rows: 1 new, 0 to retry, 0 already created, 0 changed since created, {} invalid",
        cases.len() + 1,
        cases.len()
    )]);
}

#[test]
fn units_template_must_render_an_integer_of_at_least_1() {
    let yaml = Campaign::new().checkout("units: \"{{ seats }}\"").build();
    let csv = "email,seats\nana@example.com,abc\nbo@example.com,0\ncy@example.com,2\ndi@example.com,-3\nei@example.com,\n";
    let run = dry(&yaml, csv);
    run.assert_exit(1);
    assert_eq!(run.sent_rows(), [3, 5]);
    assert_invalid(
        &run,
        1,
        "units `abc` is not an integer >= 1 (column `seats`)",
    );
    assert_invalid(&run, 2, "units `0` is not an integer >= 1 (column `seats`)");
    assert_invalid(
        &run,
        4,
        "units `-3` is not an integer >= 1 (column `seats`)",
    );
    // Empty units: like every optional field rendering empty, left out (Creem's default).
    assert!(run.line_for_row(5).unwrap()["body"].get("units").is_none());
}

#[test]
fn constants_and_bare_columns_are_trimmed_and_left_out_when_blank() {
    let yaml = Campaign::new()
        .checkout(
            "discount_code: \"  SPRING  \"\n\
             locale: \"{{ locale }}\"\n\
             metadata:\n  segment: \"{{ segment }}\"\n  blank: \"   \"\n  source: \" mail \"\n  \
             quote: ' say \"hi\"\\ '",
        )
        .build();
    let csv = "email,locale,segment\nana@example.com, fr ,  smb \nbo@example.com,   ,\n";
    let run = dry(&yaml, csv);
    run.assert_exit(0);
    let first = &run.line_for_row(1).unwrap()["body"];
    assert_eq!(first["discount_code"], "SPRING");
    assert_eq!(first["metadata"]["locale"], "fr");
    // Constants (trimmed, escaped once for every row) and the row's own values.
    let constants = json!({"source": "mail", "quote": "say \"hi\"\\"});
    let mut metadata = constants.clone();
    metadata["segment"] = json!("smb");
    metadata["locale"] = json!("fr");
    assert_eq!(first["metadata"], metadata);
    let second = &run.line_for_row(2).unwrap()["body"];
    assert_eq!(second["metadata"], constants);
}

#[test]
fn customer_id_and_email_both_rendered_is_invalid() {
    let yaml = Campaign::new()
        .customer(Some("email: \"{{ email }}\"\nid: \"{{ creem_id }}\""))
        .build();
    let csv = "email,creem_id\nana@example.com,cus_1\nbo@example.com,\n";
    let run = dry(&yaml, csv);
    run.assert_exit(1);
    assert_invalid(
        &run,
        1,
        "both customer email and customer id are set: give one",
    );
    assert_eq!(
        run.line_for_row(2).unwrap()["body"]["customer"],
        json!({"email": "bo@example.com"})
    );
}

#[test]
fn duplicate_keys_after_normalisation() {
    let csv = "email,name\n Ana@X.com,Ana\nbo@example.com,Bo\nana@x.com,Ana again\nANA@X.COM ,Ana thrice\n";
    let run = dry(MINIMAL_YAML, csv);
    run.assert_exit(1);
    assert_eq!(run.sent_rows(), [1, 2]);
    assert_invalid(&run, 3, "duplicate of row 1 (same email)");
    assert_invalid(&run, 4, "duplicate of row 1 (same email)");
    // The first one is sent, trimmed (not lowercased: that is only for the key).
    assert_eq!(
        run.line_for_row(1).unwrap()["body"]["customer"]["email"],
        "Ana@X.com"
    );
}

#[test]
fn success_url_must_be_absolute_http() {
    let yaml = Campaign::new()
        .checkout("success_url: \"{{ url }}\"")
        .build();
    let csv = "email,url\n\
               a@example.com,https://shop.example.com/ok?x=1\n\
               b@example.com,/thanks\n\
               c@example.com,ftp://shop.example.com/\n\
               d@example.com,www.example.com/thanks\n\
               e@example.com,http://localhost:8080/ok\n";
    let run = dry(&yaml, csv);
    run.assert_exit(1);
    assert_eq!(run.sent_rows(), [1, 5]);
    assert_invalid(
        &run,
        2,
        "success_url `/thanks` is not an absolute http(s) URL (column `url`)",
    );
    assert_invalid(
        &run,
        3,
        "success_url `ftp://shop.example.com/` is not an http(s) URL (column `url`)",
    );
    assert_invalid(
        &run,
        4,
        "success_url `www.example.com/thanks` is not an absolute http(s) URL",
    );
}

#[test]
fn every_problem_of_a_row_is_listed() {
    let yaml = Campaign::new()
        .checkout("units: \"{{ seats }}\"\nsuccess_url: \"{{ url }}\"")
        .build();
    let env = TestEnv::new();
    env.campaign(&yaml, "email,seats,url\nana@example,x,/ok\n");
    insta::assert_snapshot!(env.snapshot(&env.dry_run()));
}

#[test]
fn product_id_from_a_column() {
    let yaml = MINIMAL_YAML.replace("product_id: prod_1", "product_id: \"{{ product }}\"");
    let run = dry(
        &yaml,
        "email,product\nana@example.com,prod_A\nbo@example.com,\n",
    );
    run.assert_exit(1);
    assert_eq!(run.line_for_row(1).unwrap()["body"]["product_id"], "prod_A");
    assert_invalid(&run, 2, "product_id renders empty (column `product`)");
}

// ---- the plan, exit codes, side effects ---------------------------------------------------

#[test]
fn plan_summary_on_stderr() {
    // The plan on stderr, the lines of the rows to send on stdout.
    let env = TestEnv::new();
    env.campaign(
        MINIMAL_YAML,
        "email\nana@example.com\nbroken\nbo@example.com\n",
    );
    insta::assert_snapshot!(env.snapshot(&env.dry_run()));
}

#[test]
fn lines_have_request_id_row_and_body_only() {
    let run = dry(MINIMAL_YAML, "email\nana@example.com\n");
    let line = &run.json_lines()[0];
    let mut keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["body", "request_id", "row"]);
}

#[test]
fn works_without_an_api_key_and_writes_no_output() {
    // A TestEnv without a key gives runs no CREEM_API_KEY and no CREEM_API_BASE.
    let env = TestEnv::new();
    env.campaign(FULL_YAML, FULL_CSV);
    env.dry_run().assert_exit(0);
    assert!(!env.path().join("out").exists(), "no output folder");
    assert!(!env.path().join("out/results.csv").exists());

    let env = TestEnv::new();
    env.campaign(MINIMAL_YAML, "email\nana@example.com\n");
    env.dry_run().assert_exit(0);
    assert!(!env.path().join("spring.results.csv").exists());
    let names: Vec<_> = std::fs::read_dir(env.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "only the inputs: {names:?}");
}

#[test]
fn bad_campaign_exits_2_and_prints_no_lines() {
    let yaml = Campaign::new().checkout("discount_cod: X").build();
    let run = dry(&yaml, "email\nana@example.com\n");
    run.assert_exit(2).stderr_has(&[
        "unknown key `discount_cod` in checkout",
        "campaign.yaml:7:3",
    ]);
    assert_eq!(run.stdout, "");
    let run = dry(MINIMAL_YAML, "");
    run.assert_exit(2).stderr_has(&["the file is empty"]);
    assert_eq!(run.stdout, "");
}

#[test]
fn example_campaign_dry_run() {
    // A ledger left by someone trying the example must not change what this test sees.
    let scratch = TestEnv::new();
    let out = scratch.path().join("results.csv");
    let run = TestEnv::in_repo(&[
        "run",
        "--dry-run",
        "campaigns/spring-sale-2026.yaml",
        "--out",
        out.to_str().unwrap(),
    ]);
    run.assert_exit(0).stderr_has(&[
        "plan: 36 rows: 36 new, 0 to retry, 0 already created, 0 changed since created, 0 invalid",
    ]);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 36);
    let first = &lines[0]["body"];
    assert_eq!(first["request_id"], "spring-sale-2026-c54fdf29fbe5c8b1");
    assert_eq!(first["units"], 1);
    assert_eq!(first["metadata"]["locale"], "es");
    assert_eq!(first["affiliate_code"], "aff_003");
    assert_eq!(first["metadata"]["plan_type"], "team_annual");
    assert_eq!(first["metadata"]["userId"], "u_1001");
}

#[test]
fn many_chunks_come_out_in_input_order() {
    // Rows are rendered by several threads in chunks of 512; this spans eight chunks, with
    // an invalid row and a duplicate in different chunks.
    let env = TestEnv::new();
    let mut csv = String::from("email\n");
    for i in 1..=4000 {
        match i {
            1500 => csv.push_str("not-an-email\n"),
            3900 => csv.push_str("user7@example.com\n"),
            _ => csv.push_str(&format!("user{i}@example.com\n")),
        }
    }
    env.campaign(MINIMAL_YAML, csv);
    let run = env.dry_run();
    run.assert_exit(1);
    let expected: Vec<u64> = (1..=4000).filter(|r| ![1500, 3900].contains(r)).collect();
    assert_eq!(run.sent_rows(), expected);
    for line in run.json_lines() {
        let row = line["row"].as_u64().unwrap();
        assert_eq!(
            line["body"]["customer"]["email"],
            format!("user{row}@example.com")
        );
    }
    run.stderr_has(&["row 3900, line 3901 in the file: duplicate of row 7"]);
}

/// `run --dry-run ... | head` ends quietly: a reader that stops early is not an error.
#[test]
fn a_reader_that_stops_early_ends_the_dry_run_quietly() {
    use std::io::{BufRead, BufReader};
    let env = TestEnv::new();
    let csv: String = std::iter::once("email\n".to_owned())
        .chain((0..5000).map(|i| format!("user{i}@example.com\n")))
        .collect();
    env.campaign(MINIMAL_YAML, csv);
    let mut child = env
        .command(&["run", "--dry-run", "campaign.yaml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("{\"request_id\""), "{first}");
    // The rest of stdout is dropped unread, as `head -1` does.
    let out = Run::from_output(child.wait_with_output().unwrap());
    out.assert_exit(0);
    assert!(!out.stderr.contains("Broken pipe"), "{out}");
}
