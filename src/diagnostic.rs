//! Errors that point into a file, printed like a compiler (hurl-style): the message, the
//! file:line:col, the offending line with a caret under it, and hints.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem at one place in a text file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    pub message: String,
    /// The text of `line`, to show under the location.
    pub source_line: Option<String>,
    /// How many characters the caret underlines.
    pub width: usize,
    pub help: Vec<String>,
}

impl Diagnostic {
    /// A problem with the whole file (unreadable, empty, ...).
    pub fn file(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            source_line: None,
            width: 1,
            help: Vec::new(),
        }
    }

    /// A problem at `line`:`column` of `source` (the file's text).
    pub fn at(
        file: &Path,
        source: &str,
        line: u32,
        column: u32,
        message: impl Into<String>,
    ) -> Diagnostic {
        let source_line = (line > 0)
            .then(|| source.lines().nth(line as usize - 1))
            .flatten()
            .map(str::to_owned);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            source_line,
            width: 1,
            help: Vec::new(),
        }
    }

    pub fn with_width(mut self, width: usize) -> Diagnostic {
        self.width = width.max(1);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }

    /// `file:line:col`, or just the file for whole-file problems.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        write!(f, "  --> {}", self.location())?;
        if let Some(text) = &self.source_line {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            let (shown, caret_at, width) = window(text, self.column, self.width);
            let caret_pad: String = shown
                .chars()
                .take(caret_at)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{pad} |\n{number} | {shown}\n{pad} | {caret_pad}{}",
                "^".repeat(width)
            )?;
        }
        for help in &self.help {
            write!(f, "\n  = {help}")?;
        }
        Ok(())
    }
}

/// Characters of a long line shown around the column (a minified line can be megabytes).
const SHOWN: usize = 100;
/// How many of them come before the column.
const BEFORE: usize = 40;

/// The part of `text` to show, where the caret starts in it, and the caret's width: the whole
/// line when short, else [`SHOWN`] characters around `column` with `…` where it was cut.
fn window(text: &str, column: u32, width: usize) -> (String, usize, usize) {
    let at = column.saturating_sub(1) as usize;
    let length = text.chars().count();
    if length <= SHOWN {
        return (text.to_owned(), at, width);
    }
    let start = at.saturating_sub(BEFORE).min(length.saturating_sub(SHOWN));
    let end = (start + SHOWN).min(length);
    let mut shown: String = if start > 0 {
        "…".into()
    } else {
        String::new()
    };
    shown.extend(text.chars().skip(start).take(end - start));
    if end < length {
        shown.push('…');
    }
    let caret_at = at.saturating_sub(start) + usize::from(start > 0);
    let width = width.min((end.saturating_sub(at)).max(1));
    (shown, caret_at, width)
}

/// Several diagnostics at once: `check` reports every problem, not just the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{diagnostic}")?;
        }
        let n = self.0.len();
        write!(f, "{n} problem{} found", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Diagnostics {}

impl std::error::Error for Diagnostic {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }
}

/// A YAML error on a line whose value is a bare template (`locale: {{ locale }}`): YAML reads
/// `{` as the start of a mapping, so the real fix is quotes, which the parser cannot say.
pub fn with_template_hint(diagnostic: Diagnostic) -> Diagnostic {
    let Some(line) = diagnostic.source_line.as_deref() else {
        return diagnostic;
    };
    let Some(start) = line.find("{{").or_else(|| line.find("{%")) else {
        return diagnostic;
    };
    let before = line[..start].trim_end();
    if !(before.ends_with(':') || before.ends_with('-')) {
        return diagnostic; // inside quotes or text: not this mistake
    }
    // The value ends where a YAML comment starts.
    let value = line[start..]
        .split(" #")
        .next()
        .unwrap_or_default()
        .trim_end();
    let quoted = if value.contains('"') {
        format!("'{}'", value.replace('\'', "''"))
    } else {
        format!("\"{value}\"")
    };
    let hint = format!(
        "a template must be quoted in YAML: {} {quoted}",
        before.trim_start()
    );
    diagnostic.with_help(hint)
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_column() {
        let d = Diagnostic::at(
            Path::new("c.yaml"),
            "a: 1\n  discount_cod: X\n",
            2,
            3,
            "bad",
        )
        .with_width(12)
        .with_help("did you mean `discount_code`?");
        assert_eq!(
            d.to_string(),
            "error: bad\n  --> c.yaml:2:3\n  |\n2 |   discount_cod: X\n  |   ^^^^^^^^^^^^\n  = did you mean `discount_code`?"
        );
    }

    #[test]
    fn a_long_line_is_shown_around_the_column_with_the_caret_under_it() {
        let mut line = "x".repeat(50_000);
        line.push_str("BAD");
        line.push_str(&"y".repeat(50_000));
        let d = Diagnostic::at(Path::new("c.yaml"), &line, 1, 50_001, "bad").with_width(3);
        let text = d.to_string();
        assert!(text.len() < 400, "{} bytes shown", text.len());
        let lines: Vec<&str> = text.lines().collect();
        let (shown, caret) = (lines[3], lines[4]);
        assert!(
            shown.starts_with("1 | …x") && shown.ends_with("y…"),
            "{shown}"
        );
        let caret_column = caret.chars().position(|c| c == '^').unwrap();
        let under: String = shown.chars().skip(caret_column).take(3).collect();
        assert_eq!(under, "BAD");
        assert_eq!(caret.matches('^').count(), 3);
        // Near either end, only one side is cut.
        let start = Diagnostic::at(Path::new("c.yaml"), &line, 1, 2, "bad").to_string();
        assert!(
            start.lines().nth(3).unwrap().starts_with("1 | xx"),
            "{start}"
        );
        let end = Diagnostic::at(Path::new("c.yaml"), &line, 1, 100_003, "bad").to_string();
        let end_lines: Vec<&str> = end.lines().collect();
        assert!(end_lines[3].ends_with('y') && end_lines[3].contains('…'));
        assert_eq!(
            end_lines[4].chars().position(|c| c == '^'),
            Some(end_lines[3].chars().count() - 1)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, failure_persistence: None, ..Default::default() })]
        #[test]
        fn any_line_column_and_width_is_shown_without_panic(
            line in "\\PC{0,300}", column in 0u32..400, width in 0usize..400,
        ) {
            let d = Diagnostic::at(Path::new("c.yaml"), &line, 1, column, "bad").with_width(width);
            let text = d.to_string();
            proptest::prop_assert!(text.lines().nth(3).is_none_or(|l| l.chars().count() <= SHOWN + 6));
        }
    }

    #[test]
    fn a_bare_template_gets_the_hint_to_quote_it() {
        let hint = |line: &str| {
            with_template_hint(Diagnostic::at(Path::new("c.yaml"), line, 1, 3, "bad")).help
        };
        assert_eq!(
            hint("  locale: {{ locale }}  # the language"),
            ["a template must be quoted in YAML: locale: \"{{ locale }}\""]
        );
        assert_eq!(
            hint("  a: {{ columns[\"Name\"] }} x"),
            ["a template must be quoted in YAML: a: '{{ columns[\"Name\"] }} x'"]
        );
        assert!(hint("  locale: \"{{ locale }\"").is_empty());
        assert!(hint("  product_id: {x: 1}").is_empty());
    }

    #[test]
    fn suggestions_only_when_close() {
        let keys = ["product_id", "discount_code", "locale"];
        assert_eq!(did_you_mean("discount_cod", &keys), Some("discount_code"));
        assert_eq!(did_you_mean("zzz", &keys), None);
    }
}
