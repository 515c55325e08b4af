//! A CLI that teaches: examples at the end of every `--help`, the first step named at the
//! top, and the first mistakes (the CSV given to `run`, a bare template in YAML) answered
//! with what to type instead.

use crate::common::{TestEnv, COMMANDS, MINIMAL_YAML};

#[test]
fn every_help_ends_with_examples_that_use_the_command() {
    let env = TestEnv::new();
    for command in COMMANDS {
        let run = env.run(&[command, "--help"]);
        run.assert_exit(0);
        let (_, examples) = run
            .stdout
            .rsplit_once("Examples:\n")
            .unwrap_or_else(|| panic!("`{command} --help` has no examples\n{run}"));
        let lines: Vec<&str> = examples.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            (1..=3).contains(&lines.len()),
            "{command}: {} examples\n{examples}",
            lines.len()
        );
        for line in lines {
            assert!(
                line.contains(&format!("creem-batch {command}")),
                "{command}: example `{line}` does not use it"
            );
        }
    }
}

#[test]
fn top_level_help_says_where_to_start() {
    let run = TestEnv::new().run(&["--help"]);
    run.assert_exit(0)
        .stdout_has(&["Start with `creem-batch init CUSTOMERS.csv`", "export"]);
}

#[test]
fn the_customers_csv_given_to_run_or_check_points_at_init() {
    let env = TestEnv::new();
    env.write("list.csv", "email\nana@example.com\n");
    for command in ["run", "check"] {
        env.run(&[command, "list.csv"]).assert_exit(2).stderr_has(&[
            "list.csv is a CSV, the customers file",
            "did you mean `creem-batch init list.csv`?",
        ]);
    }
    env.run(&["run", "--dry-run", "book.xlsx"])
        .assert_exit(2)
        .stderr_has(&["book.xlsx is a workbook", "creem-batch init book.xlsx"]);
    // With the campaign already written beside it, the campaign is what was meant.
    env.write("list.yaml", MINIMAL_YAML);
    env.run(&["run", "list.csv"])
        .assert_exit(2)
        .stderr_has(&["did you mean `creem-batch run list.yaml`?"]);
    assert!(!env.path().join("spring.results.csv").exists());
}

#[test]
fn a_bare_template_in_yaml_gets_the_hint_to_quote_it() {
    let env = TestEnv::new();
    env.campaign(
        &MINIMAL_YAML.replace(
            "  product_id: prod_1\n",
            "  product_id: prod_1\n  locale: {{ locale }}\n",
        ),
        "email,locale\nana@example.com,fr\n",
    );
    env.check().assert_exit(2).stderr_has(&[
        "campaign.yaml:5:",
        "= a template must be quoted in YAML: locale: \"{{ locale }}\"",
    ]);
}
