//! `creem-batch init CUSTOMERS.csv`: a commented campaign beside the CSV, wired to its
//! columns, that passes `check` as written.

use std::path::Path;

use crate::common::{expected_request_id, Run, TestEnv};

/// Writes `csv` as `file` and runs `init file args...`; returns the run and the campaign
/// text (empty when none was written).
fn init_in(env: &TestEnv, file: &str, csv: &str, args: &[&str]) -> (Run, String) {
    env.write(file, csv);
    let mut all = vec!["init", file];
    all.extend_from_slice(args);
    let run = env.run(&all);
    let yaml = Path::new(file).with_extension("yaml");
    let text = std::fs::read_to_string(env.path().join(yaml)).unwrap_or_default();
    (run, text)
}

/// `check` on the written campaign: exit 0, every row valid. A campaign still holding the
/// product placeholder is refused; once a product is filled in, it passes.
#[track_caller]
fn assert_checks(env: &TestEnv, yaml: &str, rows: u64) {
    let text = std::fs::read_to_string(env.path().join(yaml)).unwrap();
    let mut yaml = yaml.to_owned();
    if text.contains("prod_REPLACE_ME") {
        env.run(&["check", &yaml])
            .assert_exit(2)
            .stderr_has(&["is still the placeholder `prod_REPLACE_ME`"]);
        yaml = format!("{yaml}.filled.yaml");
        std::fs::write(
            env.path().join(&yaml),
            text.replace("prod_REPLACE_ME", "prod_1"),
        )
        .unwrap();
    }
    let run = env.run(&["check", &yaml]);
    run.assert_exit(0)
        .stdout_has(&[&format!("{rows} rows, {rows} valid, 0 invalid")]);
}

/// The dry-run body of data row 1 (other rows may be invalid: a sample repeats a customer).
fn first_body(env: &TestEnv, yaml: &str) -> serde_json::Value {
    let run = env.run(&["run", "--dry-run", yaml]);
    assert!([0, 1].contains(&run.exit), "{run}");
    run.line_for_row(1).expect("row 1 is sent")
}

#[test]
fn email_column_named_email() {
    let env = TestEnv::new();
    let csv = "email,first_name,plan\nana@example.com,Ana,pro\nbo@example.com,Bo,team\n";
    let (run, yaml) = init_in(&env, "customers.csv", csv, &[]);
    // What init says, and the file it writes, whole.
    insta::assert_snapshot!(format!("{}--- customers.yaml\n{yaml}", env.snapshot(&run)));
    assert_checks(&env, "customers.yaml", 2);
    let line = first_body(&env, "customers.yaml");
    assert_eq!(line["body"]["customer"]["email"], "ana@example.com");
    // Personal data stays home until the user opts in: only the campaign is metadata.
    assert_eq!(
        line["body"]["metadata"],
        serde_json::json!({"campaign": "customers"})
    );
    assert_eq!(
        line["request_id"],
        expected_request_id("customers", &[("email", "ana@example.com")])
    );
}

#[test]
fn every_seed_field_is_explained_on_its_line() {
    let env = TestEnv::new();
    let (run, yaml) = init_in(&env, "c.csv", "email\nana@example.com\n", &[]);
    run.assert_exit(0);
    assert!(
        yaml.starts_with("# yaml-language-server: $schema="),
        "{yaml}"
    );
    for field in [
        "campaign:",
        "customers:",
        "output:",
        "key:",
        "request_id:",
        "product_id:",
        "units:",
        "discount_code:",
        "locale:",
        "plan_type:",
        "success_url:",
        "customer:",
        "email:",
        "metadata:",
        "csv:",
        "delimiter:",
        "send:",
        "rate:",
        "burst:",
        "concurrency:",
        "max_attempts:",
        "timeout:",
    ] {
        let code = |l: &str| {
            l.trim_start()
                .trim_start_matches('#')
                .trim_start()
                .to_owned()
        };
        let line = yaml
            .lines()
            .find(|l| code(l).starts_with(field))
            .unwrap_or_else(|| panic!("no `{field}` line\n{yaml}"));
        let code = code(line);
        assert!(code.contains("  # "), "`{field}` has no comment: {line}");
    }
}

#[test]
fn email_column_named_capital_email() {
    let env = TestEnv::new();
    let csv = "Name,Email,Seats\nAna,Ana@Example.com,2\nBo,bo@example.com,1\n";
    let (run, yaml) = init_in(&env, "people.csv", csv, &[]);
    run.assert_exit(0)
        .stdout_has(&["customer email: column `Email`", "units: column `Seats`"]);
    assert!(yaml.contains("    email: \"{{ Email }}\""), "{yaml}");
    assert!(yaml.contains("key: [Email]"), "{yaml}");
    assert!(yaml.contains("  units: \"{{ Seats }}\""), "{yaml}");
    assert!(yaml.contains("    # Name: \"{{ Name }}\""), "{yaml}");
    assert!(
        !yaml.contains("Seats }}\"\n    "),
        "seats not in metadata\n{yaml}"
    );
    assert_checks(&env, "people.yaml", 2);
    let line = first_body(&env, "people.yaml");
    assert_eq!(line["body"]["customer"]["email"], "Ana@Example.com");
    assert_eq!(line["body"]["units"], 2);
    // Keyed on `Email`: an email column whatever its name, so lowercased.
    assert_eq!(
        line["request_id"],
        expected_request_id("people", &[("email", "ana@example.com")])
    );
}

#[test]
fn email_column_named_e_mail() {
    let env = TestEnv::new();
    let csv = "e-mail,First Name\nana@example.com,Ana\nbo@example.com,Bo\n";
    let (run, yaml) = init_in(&env, "list.csv", csv, &[]);
    run.assert_exit(0)
        .stdout_has(&["customer email: column `e-mail`"]);
    assert!(
        yaml.contains("    email: \"{{ columns['e-mail'] }}\""),
        "{yaml}"
    );
    assert!(yaml.contains("key: [e-mail]"), "{yaml}");
    assert!(
        yaml.contains("    # first_name: \"{{ columns['First Name'] }}\""),
        "{yaml}"
    );
    assert_checks(&env, "list.yaml", 2);
    let line = first_body(&env, "list.yaml");
    assert_eq!(line["body"]["customer"]["email"], "ana@example.com");
    assert!(line["body"]["metadata"].get("first_name").is_none());
}

#[test]
fn email_column_named_mail() {
    let env = TestEnv::new();
    let csv = "id,mail\n1,ana@example.com\n2,bo@example.com\n";
    let (run, yaml) = init_in(&env, "m.csv", csv, &[]);
    run.assert_exit(0);
    assert!(yaml.contains("    email: \"{{ mail }}\""), "{yaml}");
    assert!(yaml.contains("key: [mail]"), "{yaml}");
    assert!(yaml.contains("    id: \"{{ id }}\""), "metadata id\n{yaml}");
    assert_checks(&env, "m.yaml", 2);
}

#[test]
fn semicolon_csv_with_email_address_header() {
    let env = TestEnv::new();
    let csv =
        "Vorname;E-Mail Address;Sprache\nJürgen;juergen@example.de;de\nZoë;zoe@example.nl;nl\n";
    let (run, yaml) = init_in(&env, "kunden.csv", csv, &[]);
    run.assert_exit(0)
        .stdout_has(&["customer email: column `E-Mail Address`"]);
    assert!(yaml.contains("  delimiter: \";\""), "{yaml}");
    assert!(
        yaml.contains("    email: \"{{ columns['E-Mail Address'] }}\""),
        "{yaml}"
    );
    assert!(yaml.contains("key: [\"E-Mail Address\"]"), "{yaml}");
    assert_checks(&env, "kunden.yaml", 2);
    let line = first_body(&env, "kunden.yaml");
    assert_eq!(line["body"]["customer"]["email"], "juergen@example.de");
    assert!(yaml.contains("    # Vorname: \"{{ Vorname }}\""), "{yaml}");
    assert!(line["body"]["metadata"].get("Vorname").is_none());
}

#[test]
fn email_column_found_by_its_values() {
    let env = TestEnv::new();
    let csv = "name,contact\nAna,ana@example.com\nBo,bo@example.com\n";
    let (run, yaml) = init_in(&env, "c.csv", csv, &[]);
    run.assert_exit(0)
        .stdout_has(&["customer email: column `contact`"]);
    assert!(yaml.contains("    email: \"{{ contact }}\""), "{yaml}");
    assert_checks(&env, "c.yaml", 2);
}

#[test]
fn no_email_column_leaves_customer_commented_out() {
    let env = TestEnv::new();
    let csv = "name,city\nAna,Paris\nBo,Lyon\n";
    let (run, yaml) = init_in(&env, "c.csv", csv, &[]);
    run.assert_exit(0).stdout_has(&["no email column found"]);
    assert!(yaml.contains("  # customer:"), "{yaml}");
    assert!(yaml.contains("  #   email: \"{{ email }}\""), "{yaml}");
    assert!(yaml.contains("no email column found in c.csv"), "{yaml}");
    assert!(yaml.contains("key: [name]"), "{yaml}");
    assert_checks(&env, "c.yaml", 2);
    let line = first_body(&env, "c.yaml");
    assert!(line["body"].get("customer").is_none(), "{line}");
}

#[test]
fn creem_customer_ids_are_used_when_there_is_no_email() {
    let env = TestEnv::new();
    let csv = "creem_customer_id,name\ncust_1abc,Ana\ncust_2def,Bo\n";
    let (run, yaml) = init_in(&env, "c.csv", csv, &[]);
    run.assert_exit(0)
        .stdout_has(&["customer id: column `creem_customer_id`"]);
    assert!(
        yaml.contains("    id: \"{{ creem_customer_id }}\""),
        "{yaml}"
    );
    assert!(yaml.contains("key: [creem_customer_id]"), "{yaml}");
    assert_checks(&env, "c.yaml", 2);
    let line = first_body(&env, "c.yaml");
    assert_eq!(line["body"]["customer"]["id"], "cust_1abc");
}

#[test]
fn product_and_campaign_flags() {
    let env = TestEnv::new();
    let (run, yaml) = init_in(
        &env,
        "c.csv",
        "email\nana@example.com\n",
        &[
            "--product",
            "prod_6tW66i0oZM7w1qXReHJrwg",
            "--campaign",
            "may_2026",
        ],
    );
    run.assert_exit(0);
    assert!(
        yaml.contains("  product_id: prod_6tW66i0oZM7w1qXReHJrwg "),
        "{yaml}"
    );
    assert!(yaml.contains("campaign: may_2026 "), "{yaml}");
    let line = first_body(&env, "c.yaml");
    assert_eq!(line["body"]["product_id"], "prod_6tW66i0oZM7w1qXReHJrwg");
    assert!(line["request_id"]
        .as_str()
        .unwrap()
        .starts_with("may_2026-"));

    let (run, _) = init_in(
        &env,
        "d.csv",
        "email\nana@example.com\n",
        &["--campaign", "may 2026!"],
    );
    run.assert_exit(2).stderr_has(&["--campaign `may 2026!`"]);
    assert!(!env.path().join("d.yaml").exists());
}

#[test]
fn without_product_a_placeholder_and_a_reminder() {
    let env = TestEnv::new();
    let (run, yaml) = init_in(&env, "c.csv", "email\nana@example.com\n", &[]);
    run.assert_exit(0)
        .stdout_has(&["prod_REPLACE_ME", "--product"]);
    assert!(yaml.contains("  product_id: prod_REPLACE_ME"), "{yaml}");
}

#[test]
fn product_column_is_wired_when_it_holds_product_ids() {
    let env = TestEnv::new();
    let csv = "email,product,seats\nana@example.com,prod_A1,3\nbo@example.com,prod_B2,1\n";
    let (run, yaml) = init_in(&env, "c.csv", csv, &[]);
    run.assert_exit(0)
        .stdout_has(&["product_id: column `product`"]);
    assert!(yaml.contains("  product_id: \"{{ product }}\""), "{yaml}");
    let line = first_body(&env, "c.yaml");
    assert_eq!(line["body"]["product_id"], "prod_A1");
    assert_eq!(line["body"]["units"], 3);
}

#[test]
fn campaign_name_comes_from_the_file_name_made_safe() {
    let env = TestEnv::new();
    let (run, yaml) = init_in(
        &env,
        "Spring Sale (EU).csv",
        "email\nana@example.com\n",
        &[],
    );
    run.assert_exit(0)
        .stdout_has(&["next: creem-batch check 'Spring Sale (EU).yaml'"]);
    assert!(yaml.contains("campaign: Spring-Sale-EU "), "{yaml}");
    assert!(
        yaml.contains("customers: \"Spring Sale (EU).csv\""),
        "{yaml}"
    );
    assert_checks(&env, "Spring Sale (EU).yaml", 1);
}

#[test]
fn refuses_to_overwrite_without_force() {
    let env = TestEnv::new();
    let csv = "email\nana@example.com\n";
    init_in(&env, "c.csv", csv, &[]).0.assert_exit(0);
    let yaml = env.path().join("c.yaml");
    std::fs::write(&yaml, "# my edits\n").unwrap();

    let (run, text) = init_in(&env, "c.csv", csv, &[]);
    run.assert_exit(2)
        .stderr_has(&["c.yaml already exists", "--force"]);
    assert_eq!(text, "# my edits\n", "the file is left alone");

    let (run, text) = init_in(&env, "c.csv", csv, &["--force"]);
    run.assert_exit(0);
    assert!(text.starts_with("# yaml-language-server:"), "{text}");
    assert_checks(&env, "c.yaml", 1);
}

#[test]
fn writes_beside_the_csv_and_points_at_the_nearest_schema() {
    let env = TestEnv::new();
    let root = env.path();
    std::fs::create_dir_all(root.join("campaigns")).unwrap();
    std::fs::write(root.join("campaigns/campaign.schema.json"), "{}").unwrap();
    std::fs::create_dir_all(root.join("data/may")).unwrap();
    std::fs::write(root.join("data/may/list.csv"), "email\nana@example.com\n").unwrap();
    let run = env.run(&["init", "data/may/list.csv"]);
    run.assert_exit(0)
        .stdout_has(&["next: creem-batch check data/may/list.yaml"]);
    let yaml = std::fs::read_to_string(root.join("data/may/list.yaml")).unwrap();
    assert!(
        yaml.starts_with("# yaml-language-server: $schema=../../campaigns/campaign.schema.json\n"),
        "{yaml}"
    );
    assert!(yaml.contains("customers: list.csv "), "{yaml}");
    assert_checks(&env, "data/may/list.yaml", 1);
}

#[test]
fn without_a_schema_file_the_bare_name_and_how_to_write_it() {
    let env = TestEnv::new();
    let (run, yaml) = init_in(&env, "c.csv", "email\nana@example.com\n", &[]);
    run.assert_exit(0)
        .stdout_has(&["creem-batch schema > campaign.schema.json"]);
    assert!(
        yaml.starts_with("# yaml-language-server: $schema=campaign.schema.json\n"),
        "{yaml}"
    );
}

#[test]
fn an_unreadable_csv_is_a_usage_error() {
    let env = TestEnv::new();
    let run = env.run(&["init", "missing.csv"]);
    run.assert_exit(2)
        .stderr_has(&["missing.csv", "cannot open"]);
}

/// A sample export from `tests/data/` (copied from real-looking exports).
fn sample(name: &str) -> String {
    let path = crate::common::repo().join("tests/data").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The header of a CSV (BOM and quotes removed).
fn header_of(csv: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{FEFF}').as_bytes());
    reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect()
}

/// The campaign with every commented-out metadata line switched on (what a user opting in to
/// every column does).
fn opt_in_to_everything(yaml: &str) -> String {
    yaml.lines()
        .map(|line| match line.strip_prefix("    # ") {
            Some(rest) if rest.contains(": \"{{") => format!("    {rest}"),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn mailchimp_export_sends_no_personal_data_by_default() {
    let env = TestEnv::new();
    let csv = sample("mailchimp_subscribed_members.csv");
    let (run, yaml) = init_in(&env, "members.csv", &csv, &["--product", "prod_1"]);
    run.assert_exit(0).stdout_has(&[
        "customer email: column `Email Address`",
        "metadata: `LEID`, `EUID` (ids)",
        "20 other columns commented out under metadata: not sent unless you opt in",
    ]);
    for line in [
        "    # Address: \"{{ Address }}\"",
        "    # OPTIN_IP: \"{{ OPTIN_IP }}\"",
        "    # phone_number: \"{{ columns['Phone Number'] }}\"",
    ] {
        let found = yaml.lines().find(|l| l.starts_with(line));
        let found = found.unwrap_or_else(|| panic!("no `{line}`\n{yaml}"));
        assert!(found.ends_with("(personal data)"), "{found}");
    }
    let line = first_body(&env, "members.yaml");
    assert_eq!(
        line["body"]["metadata"],
        serde_json::json!({"campaign": "members", "LEID": "100000", "EUID": "a1b2c3d0"})
    );
    assert_eq!(line["body"]["customer"]["email"], "ana.garcia@example.com");
}

#[test]
fn every_column_of_the_sample_exports_is_wired_or_named() {
    for file in [
        "mailchimp_subscribed_members.csv",
        "stripe-unified-customers.csv",
        "hubspot-crm-exports-all-contacts-2026-03-01.csv",
        "shopify-customers-export.csv",
    ] {
        let env = TestEnv::new();
        let csv = sample(file);
        let (run, yaml) = init_in(&env, file, &csv, &["--product", "prod_1"]);
        run.assert_exit(0);
        for column in header_of(&csv) {
            assert!(
                yaml.contains(&format!("`{column}`")),
                "{file}: column `{column}` is not mentioned\n{yaml}"
            );
        }
        // Opting in to every column still gives a valid campaign that sends them all.
        let all = opt_in_to_everything(&yaml);
        let campaign = std::path::Path::new(file).with_extension("yaml");
        env.write(campaign.to_str().unwrap(), &all);
        let run = env.run(&["run", "--dry-run", campaign.to_str().unwrap()]);
        let body = &run.json_lines()[0]["body"];
        let sent = body["metadata"].as_object().map_or(0, |m| m.len());
        assert!(sent >= header_of(&csv).len() / 2, "{file}: {body}\n{run}");
    }
}

#[test]
fn stripe_coupon_is_the_discount_code_and_ids_are_metadata() {
    let env = TestEnv::new();
    let csv = sample("stripe-unified-customers.csv");
    let (run, yaml) = init_in(&env, "stripe.csv", &csv, &["--product", "prod_1"]);
    run.assert_exit(0)
        .stdout_has(&["discount_code: column `Coupon`"]);
    assert!(yaml.contains("  discount_code: \"{{ Coupon }}\""), "{yaml}");
    assert!(yaml.contains("\n    id: \"{{ id }}\""), "{yaml}");
    assert!(
        yaml.contains("\n    # business_vat_id: \"{{ columns['Business Vat ID'] }}\""),
        "a tax id is personal data\n{yaml}"
    );
}

#[test]
fn a_discount_column_is_wired_to_discount_code() {
    let env = TestEnv::new();
    let csv = "email,name,seats,discount,locale\nana@example.com,Ana,1,VIP30,es\n\
               bo@example.com,Bo,5,,de\n";
    let (run, yaml) = init_in(&env, "list.csv", csv, &["--product", "prod_1"]);
    run.assert_exit(0);
    assert!(
        yaml.contains("  discount_code: \"{{ discount }}\""),
        "{yaml}"
    );
    assert_checks(&env, "list.yaml", 2);
    let run = env.run(&["run", "--dry-run", "list.yaml"]);
    let lines = run.json_lines();
    assert_eq!(lines[0]["body"]["discount_code"], "VIP30");
    assert_eq!(lines[0]["body"]["units"], 1);
    // Top-level or in metadata, whichever revision of the body this is.
    let body = &lines[0]["body"];
    let locale = body
        .get("locale")
        .or_else(|| body["metadata"].get("locale"));
    assert_eq!(locale, Some(&serde_json::json!("es")), "{body}");
    // An empty code sends none.
    assert!(
        lines[1]["body"].get("discount_code").is_none(),
        "{}",
        lines[1]
    );
}

#[test]
fn every_column_name_works_quotes_braces_and_null() {
    let env = TestEnv::new();
    let names = [
        "Customer's name",
        "say \"hi\"",
        "{{ x }}",
        "a}}b",
        "null",
        "true",
        "yes",
        "back\\slash",
    ];
    let header: Vec<String> = names
        .iter()
        .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
        .collect();
    let values: Vec<String> = (0..names.len()).map(|i| format!("v{i}")).collect();
    let csv = format!(
        "email,{}\nana@example.com,{}\n",
        header.join(","),
        values.join(",")
    );
    let (run, yaml) = init_in(&env, "odd.csv", &csv, &[]);
    run.assert_exit(0);
    for name in names {
        assert!(
            yaml.contains(&format!("# column `{name}`")),
            "`{name}` is not named in the file\n{yaml}"
        );
    }
    assert_checks(&env, "odd.yaml", 1);
    // Switched on, each line sends its own column's value.
    env.write("odd.yaml", opt_in_to_everything(&yaml));
    let line = first_body(&env, "odd.yaml");
    let metadata = line["body"]["metadata"].as_object().unwrap();
    let mut sent: Vec<&str> = metadata
        .iter()
        .filter(|(k, _)| *k != "campaign")
        .map(|(_, v)| v.as_str().unwrap())
        .collect();
    sent.sort();
    assert_eq!(sent, values, "{metadata:?}");
}
