//! `schema`, `completions` and plain output: what editors, shells and scripts see of
//! creem-batch (`--version` is in `platform.rs`).

use std::path::Path;

use serde_json::Value;

use crate::common::{repo, TestEnv, MINIMAL_YAML};

fn schema() -> Value {
    let run = TestEnv::in_repo(&["schema"]);
    run.assert_exit(0);
    serde_json::from_str(&run.stdout).expect("the schema is JSON")
}

#[test]
fn committed_schema_is_fresh() {
    let run = TestEnv::in_repo(&["schema"]);
    run.assert_exit(0);
    let committed = std::fs::read_to_string(repo().join("campaigns/campaign.schema.json"))
        .expect("campaigns/campaign.schema.json is committed");
    assert!(
        committed == run.stdout,
        "campaigns/campaign.schema.json is stale: run \
         `cargo run -- schema > campaigns/campaign.schema.json` and commit it"
    );
}

#[test]
fn schema_describes_the_campaign_file() {
    let schema = schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["campaign", "customers", "checkout"]);
    let checkout = &schema["definitions"]["Checkout"];
    for field in [
        "product_id",
        "units",
        "discount_code",
        "locale",
        "plan_type",
        "success_url",
        "customer",
        "metadata",
    ] {
        let description = checkout["properties"][field]["description"].as_str();
        let description = description.unwrap_or_else(|| panic!("{field} has no description"));
        assert!(!description.contains('\n'), "one line: {description}");
    }
    assert_eq!(checkout["required"], serde_json::json!(["product_id"]));
}

#[test]
fn schema_disallows_unknown_keys_in_every_section() {
    let schema = schema();
    assert_eq!(schema["additionalProperties"], false);
    let definitions = schema["definitions"].as_object().unwrap();
    for name in ["Checkout", "Customer", "Csv", "Send"] {
        assert_eq!(
            definitions[name]["additionalProperties"], false,
            "{name} allows unknown keys"
        );
    }
}

/// The keys of `value` that `schema` does not allow (its `additionalProperties: false`),
/// as dotted paths: a small validator for the one rule this schema must carry.
fn unknown_keys(root: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = resolve(root, schema);
    let Some(object) = value.as_object() else {
        return;
    };
    // Follow anyOf/allOf to the object schema (skipping `null`).
    if schema.get("properties").is_none() {
        for key in ["anyOf", "allOf"] {
            for sub in schema[key].as_array().into_iter().flatten() {
                if sub["type"] != "null" {
                    unknown_keys(root, sub, value, path, out);
                }
            }
        }
        return;
    }
    for (key, item) in object {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match schema["properties"].get(key) {
            Some(sub) => unknown_keys(root, sub, item, &here, out),
            None if schema["additionalProperties"] == false => out.push(here),
            None => {}
        }
    }
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/definitions/");
            &root["definitions"][name]
        }
        None => schema,
    }
}

fn yaml_value(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).expect("YAML")
}

#[test]
fn schema_rejects_unknown_keys_and_accepts_the_examples() {
    let schema = schema();
    let mut sample: Value = yaml_value(&repo().join("campaigns/spring-sale-2026.yaml"));
    sample["checkout"]["discount_cod"] = "SPRING".into();
    sample["send"]["ratee"] = "10/s".into();
    sample["outptu"] = "x.csv".into();
    sample["checkout"]["customer"]["mail"] = "x".into();
    let mut found = Vec::new();
    unknown_keys(&schema, &schema, &sample, "", &mut found);
    found.sort();
    assert_eq!(
        found,
        [
            "checkout.customer.mail",
            "checkout.discount_cod",
            "outptu",
            "send.ratee"
        ]
    );

    for entry in std::fs::read_dir(repo().join("campaigns")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let mut found = Vec::new();
            unknown_keys(&schema, &schema, &yaml_value(&path), "", &mut found);
            assert!(found.is_empty(), "{}: {found:?}", path.display());
        }
    }
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = TestEnv::in_repo(&["completions", shell]);
        run.assert_exit(0);
        assert!(run.stdout.len() > 200, "{shell}: too short\n{run}");
        for word in ["creem-batch", "run", "check", "init", "--dry-run"] {
            assert!(run.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let run = TestEnv::in_repo(&["completions", "tcsh"]);
    run.assert_exit(2).stderr_has(&["bash", "zsh", "fish"]);
}

#[test]
fn no_escape_codes_when_not_a_terminal() {
    let env = TestEnv::new();
    env.campaign(
        &MINIMAL_YAML.replace("product_id", "product_idd"),
        "email\nana@example.com\n",
    );
    let runs = [
        env.run(&["check", "campaign.yaml"]),
        env.run(&["--help"]),
        env.run(&["run", "--bogus"]),
    ];
    for run in runs {
        assert!(!run.stdout.is_empty() || !run.stderr.is_empty());
        assert!(
            !run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'),
            "escape codes in output\n{run}"
        );
    }
}
