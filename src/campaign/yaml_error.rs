//! YAML errors in the user's terms.

use std::path::Path;

use super::raw::SECTIONS;
use crate::diagnostic::{did_you_mean, Diagnostic};

/// Turns a YAML error into a diagnostic in the user's terms: unknown keys get "did you mean"
/// and the section's valid keys; parser jargon is reworded.
pub(super) fn yaml_diagnostic(path: &Path, source: &str, err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error;
    let (line, column) = err
        .location()
        .map(|l| (l.line() as u32, l.column() as u32))
        .unwrap_or((0, 0));
    let at = |message: String| Diagnostic::at(path, source, line, column, message);
    let mut inner = err;
    while let Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    match inner {
        _ if is_blank_yaml(source) => {
            Diagnostic::file(path, "the campaign file is empty").with_help(REQUIRED_KEYS_HELP)
        }
        Error::SerdeUnknownField {
            field, expected, ..
        } => {
            let section = SECTIONS
                .iter()
                .find(|(_, keys)| *keys == expected.as_slice());
            let Some((name, keys)) = section else {
                return at(bare_message(err));
            };
            let mut diagnostic =
                at(format!("unknown key `{field}` in {name}")).with_width(field.chars().count());
            if let Some(close) = did_you_mean(field, keys) {
                diagnostic = diagnostic.with_help(format!("did you mean `{close}`?"));
            }
            diagnostic.with_help(format!("valid keys: {}", keys.join(", ")))
        }
        // Only the top level has keys without a default; the location serde-saphyr gives is
        // wherever the mapping ended, which says nothing useful.
        Error::SerdeMissingField { field, .. } => Diagnostic::file(
            path,
            format!("the required key `{field}` is missing at top level"),
        )
        .with_help(REQUIRED_KEYS_HELP),
        Error::DuplicateMappingKey { key, .. } => at(match key {
            Some(key) => format!("the key `{key}` appears twice in the same section"),
            None => "a key appears twice in the same section".to_owned(),
        }),
        Error::Budget { breach, .. } => Diagnostic::file(path, budget_message(breach)),
        Error::MultipleDocuments { .. } => {
            at("the campaign file must hold one YAML document: remove the `---` line".to_owned())
        }
        Error::Unexpected { expected, .. } if expected.contains("mapping") => {
            at("expected `key: value` lines here (a mapping)".to_owned())
        }
        _ => {
            let message = bare_message(err);
            if message.contains("untagged enum KeySpec") {
                at("`key` must be a column name or a list of column names".to_owned())
            } else {
                at(message)
            }
        }
    }
}

/// A YAML safety limit in plain words: which limit, and its value. The limits are
/// serde-saphyr's defaults, far above any real campaign; they stop hostile files (alias bombs,
/// gigabytes of text) before they use up memory.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let limits = serde_saphyr::Budget::default();
    let mib = |bytes: usize| bytes / (1024 * 1024);
    let what = match breach {
        B::ScalarBytes { .. } => format!(
            "its values hold more than {} MiB of text",
            mib(limits.max_total_scalar_bytes)
        ),
        B::InputBytes { .. } => match limits.max_reader_input_bytes {
            Some(max) => format!("it is larger than {} MiB", mib(max)),
            None => "it is too large".to_owned(),
        },
        B::Depth { .. } => format!("it nests deeper than {} levels", limits.max_depth),
        B::Nodes { .. } => format!("it holds more than {} values", limits.max_nodes),
        B::Events { .. } => format!("it holds more than {} YAML events", limits.max_events),
        B::Aliases { .. } | B::AliasAnchorRatio { .. } => {
            format!(
                "it uses aliases (`*name`) more than {} times, or far more often than its anchors",
                limits.max_aliases
            )
        }
        B::Anchors { .. } => format!("it defines more than {} anchors", limits.max_anchors),
        B::Documents { .. } => format!("it holds more than {} documents", limits.max_documents),
        B::MergeKeys { .. } => format!(
            "it uses more than {} merge keys (`<<`)",
            limits.max_merge_keys
        ),
        _ => "it goes past one of the YAML parser's safety limits".to_owned(),
    };
    format!("the campaign file is too big to be a campaign: {what} (a limit against hostile files)")
}

const REQUIRED_KEYS_HELP: &str =
    "a campaign needs at least `campaign`, `customers` and `checkout:` with `product_id`";

/// True when `source` holds no YAML content (only blank lines and comments).
fn is_blank_yaml(source: &str) -> bool {
    source
        .lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#') || line == "---")
}

/// serde-saphyr's message without its own location or snippet (we print our own).
fn bare_message(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.trim_start_matches("error: ");
    // Drop a leading "line N column M: ", which our own location line repeats.
    let first = match first.split_once(": ") {
        Some((prefix, rest)) if prefix.starts_with("line ") && prefix.contains(" column ") => rest,
        _ => first,
    };
    // ... and a trailing " at line N, column M".
    match first.rfind(" at line ") {
        Some(i) if first[i..].contains(", column ") => first[..i].to_owned(),
        _ => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_breach_is_named_in_plain_words_with_its_limit() {
        // 65 MiB of values: past the 64 MiB of scalar text serde-saphyr allows.
        let source = format!("a: {}\nb: {}\n", "x".repeat(33 << 20), "y".repeat(33 << 20));
        let err = serde_saphyr::from_str::<serde_json::Value>(&source).unwrap_err();
        let path = Path::new("big.yaml");
        let text = yaml_diagnostic(path, &source, &err).to_string();
        assert!(
            !text.contains("ScalarBytes"),
            "{}",
            &text[..text.len().min(300)]
        );
        assert!(
            text.contains("big.yaml"),
            "{}",
            &text[..text.len().min(300)]
        );
        assert!(
            text.contains("its values hold more than 64 MiB of text"),
            "{}",
            &text[..text.len().min(300)]
        );
    }
}
