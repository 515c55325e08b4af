//! Tests of `export`.

use super::*;

#[test]
fn columns_parse_and_are_found_loosely() {
    assert_eq!(
        parse_columns(Some("First Name, Company")).unwrap(),
        ["First Name", "Company"]
    );
    assert!(parse_columns(Some("a,,b")).is_err());
    let headers: Vec<String> = ["email", "First Name"].map(String::from).to_vec();
    assert_eq!(
        find_column(&headers, "first name", Path::new("c.csv")).unwrap(),
        1
    );
    let err = find_column(&headers, "First Nam", Path::new("c.csv")).unwrap_err();
    assert!(
        err.to_string().contains("did you mean `First Name`"),
        "{err}"
    );
}

#[test]
fn default_file_names_sit_beside_the_ledger() {
    let ledger = Path::new("out/spring.results.csv");
    assert_eq!(
        default_out(ledger, None, Format::Csv),
        Path::new("out/spring.results.export.csv")
    );
    assert_eq!(
        default_out(ledger, Some(export::Tool::Mailchimp), Format::Xlsx),
        Path::new("out/spring.results.mailchimp.xlsx")
    );
}
