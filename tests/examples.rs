//! The example campaigns in `campaigns/`: each passes `check` as shipped, and shows what it
//! is there to show in its request bodies.

use crate::common::{expected_request_id, repo, Run, TestEnv};

/// `check` on an example: exit 0, `rows` rows, all valid.
#[track_caller]
fn assert_example_passes(yaml: &str, rows: u64) {
    let run = TestEnv::in_repo(&["check", yaml]);
    run.assert_exit(0)
        .stdout_has(&[&format!("{yaml}: {rows} rows, {rows} valid, 0 invalid")]);
}

/// The dry-run lines of an example (no network, nothing written).
fn dry_run(yaml: &str) -> Run {
    let run = TestEnv::in_repo(&["run", "--dry-run", yaml]);
    run.assert_exit(0);
    run
}

#[test]
fn every_example_has_a_csv_and_passes_check() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("campaigns")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            seen += 1;
            let name = format!("campaigns/{}", path.file_name().unwrap().to_string_lossy());
            let run = TestEnv::in_repo(&["check", &name]);
            run.assert_exit(0).stdout_has(&[" 0 invalid"]);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("# yaml-language-server: $schema=campaign.schema.json\n"),
                "{name} points editors at the schema"
            );
        }
    }
    assert!(seen >= 4, "{seen} example campaigns");
}

#[test]
fn plain_one_product_campaign() {
    assert_example_passes("campaigns/spring-sale-2026.yaml", 36);
}

#[test]
fn per_row_products_and_seats() {
    assert_example_passes("campaigns/team-licenses-2026.yaml", 14);
    let run = dry_run("campaigns/team-licenses-2026.yaml");
    let lines = run.json_lines();
    let products: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|l| l["body"]["product_id"].as_str().unwrap())
        .collect();
    assert!(products.len() >= 3, "{products:?}");
    let first = &lines[0]["body"];
    assert_eq!(first["product_id"], "prod_6tW66i0oZM7w1qXReHJrwg");
    assert_eq!(first["units"], 12);
    assert_eq!(first["metadata"]["plan_type"], "team_annual");
    assert_eq!(lines[6]["body"]["metadata"]["company"], "华夏科技有限公司");
}

#[test]
fn customer_id_campaign() {
    assert_example_passes("campaigns/winback-existing-customers.yaml", 14);
    let run = dry_run("campaigns/winback-existing-customers.yaml");
    for line in run.json_lines() {
        let id = line["body"]["customer"]["id"].as_str().unwrap();
        assert!(id.starts_with("cust_"), "{line}");
        assert!(line["body"]["customer"].get("email").is_none(), "{line}");
        assert_eq!(
            line["request_id"],
            expected_request_id("winback-2026-q2", &[("creem_customer_id", id)])
        );
    }
}

#[test]
fn multi_locale_campaign_with_a_discount_per_segment() {
    assert_example_passes("campaigns/launch-multilocale.yaml", 15);
    let run = dry_run("campaigns/launch-multilocale.yaml");
    let lines = run.json_lines();
    let locales: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|l| l["body"]["metadata"]["locale"].as_str().unwrap())
        .collect();
    assert!(
        locales.len() >= 10 && locales.contains("zh-CN"),
        "{locales:?}"
    );
    for line in &lines {
        let body = &line["body"];
        let expected = match body["metadata"]["segment"].as_str().unwrap() {
            "student" => Some("EDU50"),
            "nonprofit" => Some("NGO40"),
            "smb" => Some("LAUNCH20"),
            _ => None,
        };
        assert_eq!(body["discount_code"].as_str(), expected, "{line}");
        let locale = body["metadata"]["locale"].as_str().unwrap().to_lowercase();
        assert_eq!(
            body["success_url"],
            format!("https://yourdomain.com/{locale}/welcome")
        );
    }
}
