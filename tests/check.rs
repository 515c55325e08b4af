//! `creem-batch check`: every problem of a campaign and its CSV, with where it is, and the
//! exit code (0 all valid, 1 some rows invalid, 2 campaign or CSV unusable).

use crate::common::{Campaign, Run, TestEnv, MINIMAL_YAML};

const CSV: &str = "email,name\nana@example.com,Ana\nbo@example.com,Bo\n";

/// Writes `yaml` with [`CSV`] and runs `check`.
fn check_yaml(yaml: &str) -> Run {
    let env = TestEnv::new();
    env.campaign(yaml, CSV);
    env.check()
}

/// Writes [`MINIMAL_YAML`] with `csv` and runs `check`.
fn check_csv(csv: impl AsRef<[u8]>) -> Run {
    let env = TestEnv::new();
    env.campaign(MINIMAL_YAML, csv);
    env.check()
}

/// Writes `yaml` with [`CSV`], runs `check`, and gives the whole output for a snapshot.
fn check_yaml_snapshot(yaml: &str) -> String {
    let env = TestEnv::new();
    env.campaign(yaml, CSV);
    env.snapshot(&env.check())
}

/// Writes [`MINIMAL_YAML`] with `csv`, runs `check`, and gives the whole output.
fn check_csv_snapshot(csv: impl AsRef<[u8]>) -> String {
    let env = TestEnv::new();
    env.campaign(MINIMAL_YAML, csv);
    env.snapshot(&env.check())
}

/// A campaign error: exit 2, nothing on stdout, the message and location on stderr.
#[track_caller]
fn assert_campaign_error(run: &Run, parts: &[&str]) {
    run.assert_exit(2).stderr_has(parts);
    assert_eq!(run.stdout, "", "nothing on stdout\n{run}");
}

// ---- all good -------------------------------------------------------------------------------

#[test]
fn valid_campaign_exits_0_with_counts() {
    let run = check_yaml(MINIMAL_YAML);
    run.assert_exit(0)
        .stdout_has(&["campaign.yaml: 2 rows, 2 valid, 0 invalid"]);
    assert_eq!(run.stderr, "", "{run}");
}

#[test]
fn json_summary_goes_to_stdout() {
    let env = TestEnv::new();
    env.campaign(MINIMAL_YAML, "email\nana@example.com\nnot-an-email\n");
    let run = env.run(&["check", "--json", "campaign.yaml"]);
    run.assert_exit(1)
        .stderr_has(&["row 2, line 3 in the file: email `not-an-email` has no @"]);
    let summary: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("JSON");
    assert_eq!(summary["command"], "check");
    assert_eq!(summary["campaign"], "spring");
    assert_eq!(summary["rows"], 2);
    assert_eq!(summary["valid"], 1);
    assert_eq!(summary["invalid"], 1);
}

#[test]
fn the_example_campaign_passes() {
    let run = TestEnv::in_repo(&["check", "campaigns/spring-sale-2026.yaml"]);
    run.assert_exit(0)
        .stdout_has(&["campaigns/spring-sale-2026.yaml: 36 rows, 36 valid, 0 invalid"]);
}

// ---- campaign file: keys ----------------------------------------------------------------------

#[test]
fn unknown_top_level_key_is_located_with_suggestion() {
    let yaml = Campaign::new().top("outptu: out.csv").build();
    insta::assert_snapshot!(check_yaml_snapshot(&yaml));
}

#[test]
fn unknown_checkout_key_suggests_discount_code() {
    let yaml = Campaign::new().checkout("discount_cod: SPRING").build();
    insta::assert_snapshot!(check_yaml_snapshot(&yaml));
}

#[test]
fn unknown_keys_in_customer_and_send_sections() {
    let yaml = Campaign::new()
        .customer(Some("emial: \"{{ email }}\""))
        .build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "unknown key `emial` in customer",
            "campaign.yaml:6:5",
            "did you mean `email`?",
            "valid keys: email, id",
        ],
    );
    let yaml = Campaign::new().top("send:\n  rat: 5/s").build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "unknown key `rat` in send",
            "campaign.yaml:4:3",
            "did you mean `rate`?",
            "valid keys: rate, max_rate, burst, concurrency, max_attempts, timeout",
        ],
    );
}

#[test]
fn missing_product_id_points_into_checkout() {
    let yaml = "campaign: spring\ncustomers: customers.csv\ncheckout:\n  units: 1\n";
    assert_campaign_error(
        &check_yaml(yaml),
        &[
            "error: `checkout.product_id` is required",
            "--> campaign.yaml:4:3",
            "add `product_id: prod_...`",
        ],
    );
}

#[test]
fn empty_product_id_is_an_error() {
    let yaml = "campaign: spring\ncustomers: customers.csv\ncheckout:\n  product_id: \"\"\n";
    assert_campaign_error(
        &check_yaml(yaml),
        &[
            "`checkout.product_id` must not be empty",
            "campaign.yaml:4:15",
        ],
    );
}

#[test]
fn missing_top_level_key_is_named() {
    let yaml = "campaign: spring\ncheckout:\n  product_id: prod_1\n";
    assert_campaign_error(
        &check_yaml(yaml),
        &[
            "the required key `customers` is missing at top level",
            "--> campaign.yaml",
        ],
    );
}

#[test]
fn duplicate_yaml_key_is_located() {
    let yaml = "campaign: spring\ncampaign: autumn\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n";
    let run = check_yaml(yaml);
    assert_campaign_error(
        &run,
        &["the key `campaign` appears twice", "campaign.yaml:2:1"],
    );
    assert!(!run.stderr.contains("DuplicateKeyPolicy"), "{run}");
}

// ---- campaign file: values ------------------------------------------------------------------

#[test]
fn bad_campaign_names_are_rejected() {
    for name in ["spring sale", "été-2026", "a/b", &"x".repeat(65)] {
        let yaml = Campaign::new().name(&format!("\"{name}\"")).build();
        assert_campaign_error(
            &check_yaml(&yaml),
            &[
                &format!("campaign name `{name}` must be 1 to 64 characters of A-Z a-z 0-9 _ -"),
                "--> campaign.yaml:1:11",
            ],
        );
    }
    let ok = Campaign::new().name(&"x".repeat(64)).build();
    check_yaml(&ok).assert_exit(0);
}

#[test]
fn units_zero_is_located() {
    let yaml = Campaign::new().checkout("units: 0").build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "error: `units` must be an integer >= 1, not `0`",
            "--> campaign.yaml:7:10",
            "7 |   units: 0",
            "  |          ^",
        ],
    );
    for bad in ["-1", "1.5", "many"] {
        let yaml = Campaign::new().checkout(&format!("units: {bad}")).build();
        assert_campaign_error(
            &check_yaml(&yaml),
            &[&format!("not `{bad}`"), "campaign.yaml:7:10"],
        );
    }
}

#[test]
fn bad_rate_and_send_values_are_located() {
    let yaml = Campaign::new()
        .top("send:\n  rate: 10/hour\n  concurrency: 0\n  timeout: soon")
        .build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "unknown rate unit `hour` (use /s or /min)",
            "campaign.yaml:4:9",
            "`send.concurrency` must be an integer >= 1, not `0`",
            "campaign.yaml:5:16",
            "`soon` is not a duration",
            "campaign.yaml:6:12",
            "3 problems found",
        ],
    );
    let yaml = Campaign::new().top("send:\n  rate: fast").build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "`fast` is not a rate: use N/s or N/min",
            "campaign.yaml:4:9",
        ],
    );
}

#[test]
fn every_campaign_problem_is_reported_at_once() {
    let yaml = "campaign: bad name\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n  units: 0\nsend:\n  rate: 0/s\n";
    insta::assert_snapshot!(check_yaml_snapshot(yaml));
}

#[test]
fn yaml_syntax_errors_are_located() {
    let yaml = "campaign: spring\ncustomers: customers.csv\ncheckout:\n  product_id: \"prod_1\n";
    assert_campaign_error(
        &check_yaml(yaml),
        &["error: unclosed quote", "--> campaign.yaml:4:15"],
    );
    let yaml = "campaign: spring\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n   units: [1\n";
    assert_campaign_error(
        &check_yaml(yaml),
        &["error: mapping values are not allowed", "campaign.yaml:5:"],
    );
}

#[test]
fn campaign_that_is_not_a_mapping() {
    assert_campaign_error(
        &check_yaml("- spring\n- autumn\n"),
        &["expected `key: value` lines here", "campaign.yaml:1:1"],
    );
    let yaml = Campaign::new().top("key: {email: 1}").build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "`key` must be a column name or a list of column names",
            "campaign.yaml:3:6",
        ],
    );
}

#[test]
fn empty_campaign_file() {
    for text in ["", "# nothing yet\n\n"] {
        assert_campaign_error(
            &check_yaml(text),
            &["the campaign file is empty", "--> campaign.yaml"],
        );
    }
}

#[test]
fn unreadable_campaign_file() {
    let env = TestEnv::new();
    let run = env.run(&["check", "nowhere.yaml"]);
    assert_campaign_error(&run, &["cannot read the campaign file", "--> nowhere.yaml"]);
    std::fs::create_dir(env.path().join("folder.yaml")).unwrap();
    let run = env.run(&["check", "folder.yaml"]);
    assert_campaign_error(&run, &["cannot read the campaign file", "folder.yaml"]);
}

#[test]
fn bad_csv_delimiter_setting() {
    let yaml = Campaign::new().top("csv:\n  delimiter: \":\"").build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "csv delimiter `:` is not one of , ; | tab",
            "campaign.yaml:4:14",
        ],
    );
}

// ---- templates against the CSV --------------------------------------------------------------

#[test]
fn template_naming_a_missing_column() {
    let yaml = Campaign::new()
        .checkout("metadata:\n  userId: \"{{ user_id }}\"")
        .build();
    insta::assert_snapshot!(check_yaml_snapshot(&yaml));
}

#[test]
fn missing_columns_in_jinja_and_several_fields() {
    let yaml = Campaign::new()
        .checkout("units: \"{{ seats | int }}\"\nlocale: \"{{ Name }}\"")
        .build();
    insta::assert_snapshot!(check_yaml_snapshot(&yaml));
}

#[test]
fn template_syntax_error_is_located() {
    let yaml = Campaign::new()
        .checkout("discount_code: \"{{ code\"")
        .build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "template `checkout.discount_code`: template syntax error",
            "campaign.yaml:7:18",
        ],
    );
}

#[test]
fn key_column_missing_from_the_csv() {
    let yaml = Campaign::new().top("key: [email, user_id]").build();
    assert_campaign_error(
        &check_yaml(&yaml),
        &[
            "error: key column `user_id` is not in customers.csv",
            "--> campaign.yaml:3:6",
            "the CSV's columns: email, name",
        ],
    );
}

#[test]
fn default_key_needs_an_email_column() {
    let env = TestEnv::new();
    let yaml = Campaign::new().customer(Some("id: \"{{ id }}\"")).build();
    env.campaign(&yaml, "id,name\ncus_1,Ana\n");
    assert_campaign_error(
        &env.check(),
        &[
            "key column `email` is not in customers.csv",
            "set `key:` to the columns that identify a customer",
            "the CSV's columns: id, name",
        ],
    );
}

// ---- the CSV as a whole ---------------------------------------------------------------------

#[test]
fn customers_csv_missing() {
    let env = TestEnv::new();
    env.yaml(MINIMAL_YAML);
    assert_campaign_error(
        &env.check(),
        &["cannot open the customers file", "--> customers.csv"],
    );
}

#[test]
fn customers_path_is_relative_to_the_campaign() {
    let env = TestEnv::new();
    env.write("campaigns/customers.csv", CSV);
    env.write("campaigns/campaign.yaml", MINIMAL_YAML);
    let run = env.run(&["check", "campaigns/campaign.yaml"]);
    run.assert_exit(0).stdout_has(&["2 rows, 2 valid"]);
}

#[test]
fn empty_csv() {
    for bytes in [&b""[..], b"\n\n", b"\xEF\xBB\xBF", b"  \n \n"] {
        assert_campaign_error(
            &check_csv(bytes),
            &[
                "the file is empty: a header row naming the columns is required",
                "customers.csv",
            ],
        );
    }
}

#[test]
fn csv_with_a_header_and_no_rows() {
    for text in ["email,name\n", "email,name\n\n\n"] {
        assert_campaign_error(
            &check_csv(text),
            &[
                "the file has a header but no customer rows",
                "customers.csv",
            ],
        );
    }
}

#[test]
fn duplicate_header_column() {
    assert_campaign_error(
        &check_csv("email,name, email\nana@example.com,Ana,x\n"),
        &[
            "header, column 3: ` email` appears twice (also column 1)",
            "customers.csv",
        ],
    );
}

#[test]
fn header_column_without_a_name() {
    assert_campaign_error(
        &check_csv("email,,name\nana@example.com,x,Ana\n"),
        &["header, column 2: the column has no name"],
    );
}

/// MINIMAL_YAML read as UTF-8 whatever the bytes: a bad byte is then the row's problem.
fn utf8_yaml() -> String {
    Campaign::new().top("csv:\n  encoding: utf-8").build()
}

#[test]
fn header_not_utf8() {
    let env = TestEnv::new();
    env.campaign(&utf8_yaml(), &b"email,n\xE9m\nana@example.com,x\n"[..]);
    assert_campaign_error(&env.check(), &["header, column 2: not valid UTF-8"]);
}

#[test]
fn wrong_delimiter_setting_is_explained() {
    let yaml = Campaign::new().top("csv:\n  delimiter: \"|\"").build();
    let env = TestEnv::new();
    env.campaign(&yaml, "email;name\nana@example.com;Ana\n");
    assert_campaign_error(
        &env.check(),
        &["split on the campaign's csv.delimiter `|`, but it contains `;`"],
    );
}

// ---- rows -------------------------------------------------------------------------------------

#[test]
fn invalid_rows_exit_1_and_are_all_listed() {
    let csv = "email,name\nana@example.com,Ana\nbroken,Bo\n,Cy\nana@example.com,Ana again\n";
    insta::assert_snapshot!(check_csv_snapshot(csv));
}

#[test]
fn wrong_field_count_names_the_row_and_goes_on() {
    let csv = "email,name\nana@example.com,Ana\nbo@example.com\ncy@example.com,Cy,extra\ndi@example.com,Di\n";
    insta::assert_snapshot!(check_csv_snapshot(csv));
}

#[test]
fn non_utf8_row_names_row_and_column_and_goes_on() {
    let mut csv = b"email,name\nana@example.com,Ana\nbo@example.com,B\xFFo\n".to_vec();
    csv.extend_from_slice(b"cy@example.com,Cy\n");
    let env = TestEnv::new();
    env.campaign(&utf8_yaml(), csv);
    insta::assert_snapshot!(env.snapshot(&env.check()));
}

#[test]
fn trailing_blank_lines_and_crlf_are_not_rows() {
    for csv in [
        "email,name\nana@example.com,Ana\n\n",
        "email,name\nana@example.com,Ana\n\n\n\n",
        "email,name\r\nana@example.com,Ana\r\n\r\n",
        "email,name\nana@example.com,Ana",
        "email,name\nana@example.com,Ana\n   \n\t\n",
        "email,name\nana@example.com,Ana\n,\n , \n",
    ] {
        let run = check_csv(csv);
        run.assert_exit(0)
            .stdout_has(&["1 rows, 1 valid, 0 invalid"]);
    }
}

#[test]
fn row_numbers_count_data_rows_not_lines() {
    // Row 1's quoted note spans lines 2 and 3, so row 3 is on line 5.
    let csv = "email,note\nana@example.com,\"two\nlines\"\nbo@example.com,x\ncy@example.com\n";
    let run = check_csv(csv);
    run.assert_exit(1)
        .stdout_has(&["row 3, line 5 in the file: the row has 1 field, the header has 2"]);
}
