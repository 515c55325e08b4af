use std::path::Path;
use std::time::Duration;

use super::raw::SECTIONS;
use super::*;

fn parse(yaml: &str) -> Result<Campaign, Diagnostics> {
    Campaign::parse(Path::new("dir/c.yaml"), yaml.to_owned())
}

const MINIMAL: &str = "campaign: spring\ncustomers: people.csv\ncheckout:\n  product_id: prod_1\n";

#[test]
fn defaults_and_relative_paths() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.customers, Path::new("dir/people.csv"));
    assert_eq!(c.output, Path::new("dir/spring.results.csv"));
    assert_eq!(c.key, vec!["email"]);
    assert_eq!(c.send, SendSettings::default());
}

#[test]
fn unknown_key_has_location_and_suggestion() {
    let err = parse(&format!("{MINIMAL}  discount_cod: X\n")).unwrap_err();
    let d = &err.0[0];
    assert_eq!((d.line, d.column), (5, 3), "{d}");
    assert_eq!(d.message, "unknown key `discount_cod` in checkout");
    assert!(d.help[0].contains("did you mean `discount_code`?"), "{d}");
}

#[test]
fn semantic_problems_are_all_reported() {
    let yaml = "campaign: bad name!\ncustomers: p.csv\ncheckout:\n  product_id: prod_1\n  units: 0\nsend:\n  rate: 10/hour\n  concurrency: 0\n";
    let err = parse(yaml).unwrap_err();
    let lines: Vec<u32> = err.0.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![1, 5, 7, 8], "{err}");
}

#[test]
fn schema_keys_match_the_parser_keys() {
    let schema = json_schema();
    let keys = |section: &serde_json::Value| {
        let mut keys: Vec<String> = section["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let definitions = &schema["definitions"];
    let sections = [
        ("top level", &schema),
        ("checkout", &definitions["Checkout"]),
        ("customer", &definitions["Customer"]),
        ("csv", &definitions["Csv"]),
        ("send", &definitions["Send"]),
    ];
    for (name, section) in sections {
        let (_, expected) = SECTIONS.iter().find(|(n, _)| *n == name).unwrap();
        let mut expected: Vec<String> = expected.iter().map(|k| k.to_string()).collect();
        expected.sort();
        assert_eq!(keys(section), expected, "{name}");
        assert_eq!(section["additionalProperties"], false, "{name}");
    }
}

#[test]
fn rates_and_durations() {
    assert_eq!(
        parse_rate("600/min").unwrap(),
        RateLimit::Fixed(Rate {
            count: 600,
            per: Duration::from_secs(60)
        })
    );
    assert_eq!(parse_rate("unlimited").unwrap(), RateLimit::Unlimited);
    assert_eq!(parse_rate(" auto ").unwrap(), RateLimit::Auto);
    assert!(parse_max_rate("auto").is_err());
    assert!(parse_rate("0/s").is_err());
    assert_eq!(
        parse_duration("1500ms").unwrap(),
        Duration::from_millis(1500)
    );
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert!(parse_duration("soon").is_err());
}

#[test]
fn locale_and_plan_type_collide_with_metadata_keys_of_the_same_name() {
    for name in ["locale", "plan_type"] {
        let yaml = format!(
            "campaign: c\ncustomers: x.csv\ncheckout:\n  product_id: prod_1\n  {name}: a\n  metadata:\n    {name}: b\n"
        );
        let err = parse(&yaml).unwrap_err().to_string();
        assert!(
            err.contains(&format!("`metadata.{name}` and `checkout.{name}` both set")),
            "{err}"
        );
        assert!(
            err.contains("c.yaml:7:"),
            "points at the metadata key: {err}"
        );
    }
}

#[test]
fn custom_fields_are_checked_before_any_row() {
    let field = |key: &str| format!("    - type: text\n      key: {key}\n      label: L\n");
    let yaml = |fields: &str| {
        format!("campaign: c\ncustomers: x.csv\ncheckout:\n  product_id: prod_1\n  custom_fields:\n{fields}")
    };
    let ok = parse(&yaml(&(field("a") + &field("b") + &field("c")))).unwrap();
    assert_eq!(ok.checkout.custom_fields.len(), 3);
    let cases = [
        (field("a") + &field("b") + &field("c") + &field("d"), "has 4 fields; Creem takes up to 3"),
        (field("a") + &field("a"), "custom field key `a` is used twice"),
        (field("has-dash"), "must be letters and digits only"),
        ("    - type: radio\n      key: a\n      label: L\n".to_owned(), "type `radio` is not"),
        ("    - type: text\n      key: a\n".to_owned(), "a custom field needs `label`"),
        (
            "    - type: text\n      key: a\n      label: L\n      checkbox:\n        label: x\n".to_owned(),
            "`checkbox:` settings on a text field",
        ),
        (
            "    - type: text\n      key: a\n      label: L\n      text:\n        min_length: 5\n        max_length: 2\n".to_owned(),
            "`text.min_length` 5 is above `text.max_length` 2",
        ),
    ];
    for (fields, expected) in cases {
        let err = parse(&yaml(&fields)).unwrap_err().to_string();
        assert!(err.contains(expected), "{fields}: {err}");
    }
}

#[test]
fn custom_price_is_an_integer_in_minor_units() {
    let yaml = |price: &str| {
        format!("campaign: c\ncustomers: x.csv\ncheckout:\n  product_id: prod_1\n  custom_price: {price}\n")
    };
    assert!(parse(&yaml("0")).is_ok());
    assert!(parse(&yaml("\"{{ price }}\"")).is_ok());
    let err = parse(&yaml("19.99")).unwrap_err().to_string();
    assert!(
        err.contains("`custom_price` must be an integer >= 0 in minor units"),
        "{err}"
    );
}

#[test]
fn durations_have_one_parser_that_never_panics() {
    let ok = [
        ("30s", 30_000),
        ("1500ms", 1500),
        ("2m", 120_000),
        ("1m30s", 90_000),
        ("1m 30s", 90_000),
        ("1.5s", 1500),
        ("45", 45_000),
        (" 20ms ", 20),
    ];
    for (text, ms) in ok {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
    assert_eq!(parse_span("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_span("500us"), Ok(Duration::from_micros(500)));
    for bad in [
        "",
        "abc",
        "-5s",
        "0s",
        "99999999999999999999s",
        "25h",
        "1e400s",
        "10x",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    let yaml = "campaign: c\ncustomers: x.csv\ncheckout:\n  product_id: p\nsend:\n  timeout: 99999999999999999999s\n";
    let err = parse(yaml).unwrap_err().to_string();
    assert!(err.contains("c.yaml:6:"), "{err}");
}

#[test]
fn numbers_are_echoed_as_typed_and_control_characters_escaped() {
    let yaml = "campaign: c\ncustomers: x.csv\ncheckout:\n  product_id: p\n  units: 99999999999999999999999  # seats\nsend:\n  burst: \"a\\0b\"\n";
    let err = parse(yaml).unwrap_err().to_string();
    assert!(err.contains("not `99999999999999999999999`"), "{err}");
    assert!(!err.contains("1e23"), "{err}");
    assert!(err.contains("not `a\\u{0}b`"), "{err}");
    assert!(!err.contains('\0'), "{err:?}");
}

#[test]
fn the_init_placeholder_is_named_with_its_line() {
    let yaml = "campaign: c\ncustomers: x.csv\ncheckout:\n  product_id: prod_REPLACE_ME\n";
    let campaign = parse(yaml).unwrap();
    let problem = campaign.placeholder_product().unwrap();
    assert_eq!(problem.line, 4);
    assert!(problem.message.contains("placeholder `prod_REPLACE_ME`"));
    assert!(parse(MINIMAL).unwrap().placeholder_product().is_none());
}
