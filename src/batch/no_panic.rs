//! No input, however broken, makes the CSV reader or the campaign parser panic.

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
