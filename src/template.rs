//! Campaign templates, compiled once for the whole batch.
//!
//! Every string under `checkout:` is a Jinja template rendered by minijinja with strict
//! undefined behaviour. Text without any Jinja syntax is known as a constant at compile time,
//! so callers can check it once instead of on every row.
//!
//! A column whose name is not an identifier (`e-mail`, `Email Address`) is read as
//! `{{ columns["e-mail"] }}`: `columns` maps every column name to the row's value.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, Value};
use minijinja::{Environment, UndefinedBehavior};

/// Names a template may use besides the CSV columns.
pub const CAMPAIGN_VAR: &str = "campaign";
pub const ROW_VAR: &str = "row";
/// Every column by name, for names that are not identifiers: `{{ columns["e-mail"] }}`.
/// A CSV column literally named `columns` takes precedence.
pub const COLUMNS_VAR: &str = "columns";

/// Jinja globals that are not CSV columns and so must not be reported as missing ones.
const JINJA_GLOBALS: &[&str] = &["range", "dict", "namespace", "debug", "loop", "self"];

/// Identifies a compiled template inside a [`TemplateSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateId(usize);

/// One compiled template: its name in the environment; its text when it has no Jinja syntax
/// at all (the same for every row); the column it is when it is exactly `{{ column }}`.
#[derive(Debug)]
struct Compiled {
    name: String,
    constant: Option<String>,
    column: Option<usize>,
}

/// A template problem found before anything is sent.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template syntax error: {0}")]
    Syntax(String),
    #[error("names {}, which the CSV does not have", missing_list(.missing))]
    MissingColumns { missing: Vec<String> },
}

fn missing_list(missing: &[String]) -> String {
    let quoted: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
    if quoted.len() == 1 {
        format!("column {}", quoted[0])
    } else {
        format!("columns {}", quoted.join(", "))
    }
}

/// The values a template can see for one row.
#[derive(Clone, Copy)]
pub struct RowValues<'a> {
    pub campaign: &'a str,
    pub row: u64,
    pub columns: &'a [&'a str],
}

/// All templates of one campaign, sharing one minijinja environment.
pub struct TemplateSet {
    env: Environment<'static>,
    headers: Arc<[String]>,
    compiled: Vec<Compiled>,
}

impl fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateSet")
            .field("templates", &self.compiled.len())
            .finish()
    }
}

impl TemplateSet {
    pub fn new(headers: &[String]) -> TemplateSet {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        TemplateSet {
            env,
            headers: headers.iter().cloned().collect(),
            compiled: Vec::new(),
        }
    }

    /// Compiles `source` and checks every variable it names exists.
    pub fn compile(&mut self, source: &str) -> Result<TemplateId, TemplateError> {
        let name = format!("t{}", self.compiled.len());
        self.env
            .add_template_owned(name.clone(), source.to_owned())
            .map_err(|e| TemplateError::Syntax(syntax_message(&e)))?;
        let template = self
            .env
            .get_template(&name)
            .map_err(|e| TemplateError::Syntax(syntax_message(&e)))?;
        let mut missing: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|name| !self.is_known(name))
            .collect();
        missing.extend(self.missing_in_columns_lookups(source));
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(TemplateError::MissingColumns { missing });
        }
        // minijinja drops one trailing newline by default; the constant must agree.
        let plain = !["{{", "{%", "{#"].iter().any(|open| source.contains(open));
        let constant = plain.then(|| source.strip_suffix('\n').unwrap_or(source).to_owned());
        let column = self.bare_column(source);
        self.compiled.push(Compiled {
            name,
            constant,
            column,
        });
        Ok(TemplateId(self.compiled.len() - 1))
    }

    /// The column a template such as `{{ email }}` names and does nothing else with. Its
    /// rendering is that cell as it is (what minijinja renders for a string), so it is taken
    /// from the row without starting the engine: most templates of a campaign are like this,
    /// and for them the engine's set-up costs more than everything else a row needs.
    fn bare_column(&self, source: &str) -> Option<usize> {
        let source = source.strip_suffix('\n').unwrap_or(source);
        let inner = source.strip_prefix("{{")?.strip_suffix("}}")?;
        let name = inner.trim();
        let plain = is_identifier(name) && name != CAMPAIGN_VAR && name != ROW_VAR;
        plain
            .then(|| self.headers.iter().position(|h| h == name))
            .flatten()
    }

    /// Names in `columns["name"]` lookups that the CSV lacks: minijinja sees only `columns`,
    /// and strict mode would otherwise fail on every row instead of once here.
    fn missing_in_columns_lookups(&self, source: &str) -> Vec<String> {
        let mut missing = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let end = after.find("}}").unwrap_or(after.len());
            if let Some(name) = self.columns_lookup(after[..end].trim()) {
                if !self.headers.iter().any(|h| h == name) {
                    missing.push(name.to_owned());
                }
            }
            rest = &after[end..];
        }
        missing
    }

    fn is_known(&self, name: &str) -> bool {
        name == CAMPAIGN_VAR
            || name == ROW_VAR
            || name == COLUMNS_VAR
            || JINJA_GLOBALS.contains(&name)
            || self.headers.iter().any(|h| h == name)
    }

    /// The column name in `columns["name"]` or `columns['name']` (a name without quotes or
    /// backslashes), unless the CSV has a column named `columns` itself.
    fn columns_lookup<'t>(&self, inner: &'t str) -> Option<&'t str> {
        if self.headers.iter().any(|h| h == COLUMNS_VAR) {
            return None;
        }
        let index = inner.strip_prefix(COLUMNS_VAR)?.trim_start();
        let quoted = index.strip_prefix('[')?.strip_suffix(']')?.trim();
        let quote = quoted.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let name = quoted.strip_prefix(quote)?.strip_suffix(quote)?;
        (!name.contains(['"', '\'', '\\'])).then_some(name)
    }

    /// The CSV columns a template reads, to name them in row problems.
    pub fn columns(&self, id: TemplateId) -> Vec<String> {
        let Ok(template) = self.env.get_template(&self.compiled[id.0].name) else {
            return Vec::new();
        };
        let mut names: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|n| self.headers.contains(n))
            .collect();
        names.sort();
        names
    }

    /// The text of a template without Jinja syntax, the same for every row.
    pub fn constant(&self, id: TemplateId) -> Option<&str> {
        self.compiled[id.0].constant.as_deref()
    }

    /// Starts rendering one row: the minijinja context is built at most once per row, and
    /// only when a template needs it.
    pub fn row<'s, 'v>(&'s self, values: RowValues<'v>) -> RowRenderer<'s, 'v> {
        RowRenderer {
            set: self,
            values,
            context: None,
        }
    }
}

/// How a template reads column `name` of a CSV with `headers`: `email`, or
/// `columns['e-mail']` for a name that is not an identifier, that `campaign`/`row` shadow or
/// that Jinja reads as a literal (`true`, `none`); quotes, backslashes and control characters
/// are escaped (`columns["Customer's name"]`). `None` only for a CSV with its own `columns`
/// column, which hides the others' map.
pub fn column_reference(name: &str, headers: &[String]) -> Option<String> {
    const JINJA_WORDS: &[&str] = &[
        "true", "True", "false", "False", "none", "None", "loop", "self",
    ];
    let shadowed = name == CAMPAIGN_VAR || name == ROW_VAR || JINJA_WORDS.contains(&name);
    if is_identifier(name) && !shadowed {
        return Some(name.to_owned());
    }
    if headers.iter().any(|h| h == COLUMNS_VAR) {
        return None;
    }
    if !name.contains(['\'', '"', '\\']) && !name.contains(|c: char| c.is_control()) {
        return Some(format!("{COLUMNS_VAR}['{name}']"));
    }
    let mut reference = format!("{COLUMNS_VAR}[\"");
    for c in name.chars() {
        match c {
            '"' => reference.push_str("\\\""),
            '\\' => reference.push_str("\\\\"),
            c if c.is_control() => reference.push_str(&format!("\\u{:04x}", c as u32)),
            c => reference.push(c),
        }
    }
    reference.push_str("\"]");
    Some(reference)
}

/// True for a plain Jinja name: ASCII letters, digits and `_`, not starting with a digit.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn syntax_message(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => detail.to_string(),
        None => format!("{}", err.kind()),
    }
}

/// Renders the templates of one row.
pub struct RowRenderer<'s, 'v> {
    set: &'s TemplateSet,
    values: RowValues<'v>,
    context: Option<Value>,
}

impl RowRenderer<'_, '_> {
    /// Appends the rendering of `id` to `out`.
    pub fn render_into(&mut self, id: TemplateId, out: &mut String) -> Result<(), String> {
        let compiled = &self.set.compiled[id.0];
        if let Some(text) = &compiled.constant {
            out.push_str(text);
            return Ok(());
        }
        if let Some(cell) = compiled.column.and_then(|i| self.values.columns.get(i)) {
            out.push_str(cell);
            return Ok(());
        }
        let context = self
            .context
            .get_or_insert_with(|| context_value(&self.set.headers, self.values))
            .clone();
        let template = self
            .set
            .env
            .get_template(&compiled.name)
            .map_err(|e| e.to_string())?;
        let text = template.render(context).map_err(|e| {
            let detail = e.detail().map(|d| d.to_string());
            detail.unwrap_or_else(|| e.kind().to_string())
        })?;
        out.push_str(&text);
        Ok(())
    }

    pub fn render(&mut self, id: TemplateId) -> Result<String, String> {
        let mut out = String::new();
        self.render_into(id, &mut out)?;
        Ok(out)
    }
}

fn context_value(headers: &Arc<[String]>, values: RowValues<'_>) -> Value {
    Value::from_object(RowContext {
        headers: Arc::clone(headers),
        values: values.columns.iter().map(|v| (*v).to_owned()).collect(),
        campaign: values.campaign.to_owned(),
        row: values.row,
    })
}

/// One row as a minijinja object, so no map is built for templates that read two columns.
#[derive(Debug)]
struct RowContext {
    headers: Arc<[String]>,
    values: Vec<String>,
    campaign: String,
    row: u64,
}

impl Object for RowContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match key {
            CAMPAIGN_VAR => Some(Value::from(self.campaign.clone())),
            ROW_VAR => Some(Value::from(self.row)),
            _ => match self.headers.iter().position(|h| h == key) {
                Some(index) => Some(Value::from(self.values[index].clone())),
                None if key == COLUMNS_VAR => {
                    let columns: std::collections::BTreeMap<String, String> = self
                        .headers
                        .iter()
                        .cloned()
                        .zip(self.values.iter().cloned())
                        .collect();
                    Some(Value::from_object(columns))
                }
                None => None,
            },
        }
    }
}

#[cfg(test)]
mod tests;
