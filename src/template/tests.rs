//! Tests of `template`.

use super::*;

fn headers() -> Vec<String> {
    vec!["email".into(), "first_name".into(), "seats".into()]
}

fn render(set: &TemplateSet, id: TemplateId, columns: &[&str]) -> Result<String, String> {
    set.row(RowValues {
        campaign: "spring",
        row: 7,
        columns,
    })
    .render(id)
}

#[test]
fn lookups_and_filters_render() {
    let mut set = TemplateSet::new(&headers());
    let fast = set
        .compile("hi {{ first_name }} of {{campaign}} #{{ row }}")
        .unwrap();
    let slow = set
        .compile("hi {{ first_name | string }} of {{campaign}} #{{ row }}")
        .unwrap();
    let columns = ["a@b.co", "Zoë", "3"];
    assert_eq!(render(&set, fast, &columns).unwrap(), "hi Zoë of spring #7");
    assert_eq!(render(&set, slow, &columns).unwrap(), "hi Zoë of spring #7");
}

/// A bare `{{ column }}` is read from the row without the engine: it must give what
/// minijinja gives for the same cell, whatever the cell holds.
#[test]
fn bare_columns_render_as_minijinja_does() {
    let mut set = TemplateSet::new(&headers());
    let bare = set.compile("{{ first_name }}\n").unwrap();
    let bare_spaced = set.compile("{{first_name   }}").unwrap();
    let engine = set.compile("{{ first_name | string }}").unwrap();
    let not_bare = set.compile("{{ first_name }}{{ seats }}").unwrap();
    assert!(set.compiled[bare.0].column.is_some());
    assert!(set.compiled[bare_spaced.0].column.is_some());
    assert!(set.compiled[engine.0].column.is_none());
    assert!(set.compiled[not_bare.0].column.is_none());
    let cells = [
        "",
        " spaced ",
        "<b>&amp;</b>",
        "{{ x }}",
        "Zoë\n\"q\"",
        "\u{0}\t",
    ];
    for cell in cells {
        let columns = ["a@b.co", cell, "3"];
        let expected = render(&set, engine, &columns).unwrap();
        assert_eq!(render(&set, bare, &columns).unwrap(), expected, "{cell:?}");
        assert_eq!(render(&set, bare_spaced, &columns).unwrap(), expected);
        assert_eq!(
            render(&set, not_bare, &columns).unwrap(),
            format!("{cell}3")
        );
    }
}

#[test]
fn missing_columns_are_reported_before_any_row() {
    let mut set = TemplateSet::new(&headers());
    let err = set.compile("{{ user_id }}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "names column `user_id`, which the CSV does not have"
    );
    let err = set.compile("{{ user_id | upper }}{{ plan }}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "names columns `plan`, `user_id`, which the CSV does not have"
    );
}

#[test]
fn syntax_errors_are_reported() {
    let mut set = TemplateSet::new(&headers());
    assert!(matches!(
        set.compile("{{ email "),
        Err(TemplateError::Syntax(_))
    ));
}

#[test]
fn constants_are_known() {
    let mut set = TemplateSet::new(&headers());
    let id = set.compile("SUMMER2025\n").unwrap();
    assert_eq!(set.constant(id), Some("SUMMER2025"));
    let id = set.compile("{{ email }}").unwrap();
    assert_eq!(set.constant(id), None);
}

#[test]
fn columns_reads_names_that_are_not_identifiers() {
    let headers: Vec<String> = vec!["E-Mail Address".into(), "seats".into()];
    let mut set = TemplateSet::new(&headers);
    let fast = set.compile("{{ columns['E-Mail Address'] }}").unwrap();
    let fast2 = set.compile("{{columns[\"E-Mail Address\"]}}").unwrap();
    let slow = set
        .compile("{{ columns['E-Mail Address'] | upper }}")
        .unwrap();
    assert!(set.constant(fast).is_none());
    let columns = ["a@b.co", "3"];
    assert_eq!(render(&set, fast, &columns).unwrap(), "a@b.co");
    assert_eq!(render(&set, fast2, &columns).unwrap(), "a@b.co");
    assert_eq!(render(&set, slow, &columns).unwrap(), "A@B.CO");
    let reference = column_reference("E-Mail Address", &headers).unwrap();
    assert_eq!(reference, "columns['E-Mail Address']");
    assert_eq!(column_reference("seats", &headers).unwrap(), "seats");
    let err = set.compile("{{ columns['Email'] }}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "names column `Email`, which the CSV does not have"
    );
}

#[test]
fn every_column_name_has_a_reference_that_renders_its_value() {
    let names = [
        "Customer's name",
        "say \"hi\"",
        "a}}b",
        "{{ x }}",
        "{% if %}",
        "back\\slash",
        "null",
        "true",
        "None",
        "row",
        "line\nbreak",
        "tab\there",
    ];
    let headers: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let values: Vec<String> = (0..names.len()).map(|i| format!("v{i}")).collect();
    let columns: Vec<&str> = values.iter().map(String::as_str).collect();
    let mut set = TemplateSet::new(&headers);
    for (i, name) in names.iter().enumerate() {
        let reference = column_reference(name, &headers).unwrap();
        let id = set
            .compile(&format!("{{{{ {reference} }}}}"))
            .unwrap_or_else(|e| panic!("{name:?} as {reference}: {e}"));
        assert_eq!(render(&set, id, &columns).unwrap(), values[i], "{name:?}");
    }
    let with_columns = vec!["columns".to_owned(), "a b".to_owned()];
    assert_eq!(column_reference("a b", &with_columns), None);
}

#[test]
fn jinja_filters_and_conditions_work() {
    let mut set = TemplateSet::new(&headers());
    let id = set
        .compile("{% if seats | int > 1 %}team{% else %}solo{% endif %}-{{ email | upper }}")
        .unwrap();
    assert_eq!(
        render(&set, id, &["a@b.co", "x", "3"]).unwrap(),
        "team-A@B.CO"
    );
}
