//! The campaign file: one YAML document describing the whole batch.
//!
//! Parsing is strict on purpose: an unknown key is an error (a typo in `discount_code` must
//! never silently send checkouts without the discount), and every problem is reported with
//! file:line:col so the user can fix it before anything is sent.
//!
//! The modules follow the file's life: `raw` is the file as written (and its JSON Schema),
//! `yaml_error` words serde's errors for the user, `build` validates the raw file into a
//! [`Campaign`]; `send` and `custom_fields` hold the settings and rules of their sections.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diagnostic::{Diagnostic, Diagnostics};

mod build;
mod custom_fields;
mod raw;
mod send;
#[cfg(test)]
mod tests;
mod yaml_error;

pub use custom_fields::{
    check_custom_field_key, check_custom_field_label, CustomField, CustomFieldKind,
    MAX_CUSTOM_FIELDS,
};
pub use raw::json_schema;
pub use send::{
    parse_duration, parse_max_rate, parse_rate, parse_span, Rate, RateLimit, SendSettings,
};

/// A value with the place it came from in the campaign file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: u32,
    pub column: u32,
}

impl<T> From<Spanned<T>> for Located<T> {
    fn from(s: Spanned<T>) -> Located<T> {
        Located {
            value: s.value,
            line: s.referenced.line() as u32,
            column: s.referenced.column() as u32,
        }
    }
}

/// Read from the campaign file with its position (serde-saphyr's `Spanned`).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Located<T>, D::Error> {
        Spanned::<T>::deserialize(d).map(Located::from)
    }
}

/// In the JSON Schema a located value is just its value.
impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A campaign, validated: everything here is usable as is.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// The campaign file as the user named it (for messages and the resume command).
    pub path: PathBuf,
    /// The file's text, to point into it when a template fails later.
    pub source: String,
    pub name: String,
    pub customers: PathBuf,
    pub output: PathBuf,
    pub key: Vec<String>,
    /// Where `key:` is set, when it is (to point at it if the CSV lacks a key column).
    pub key_at: Option<Located<()>>,
    pub request_id: Option<Located<String>>,
    /// `exclude:`: earlier output CSVs whose paid customers this campaign skips.
    pub exclude: Vec<PathBuf>,
    /// `where:`: the condition a row must meet to be sent.
    pub where_: Option<Located<String>>,
    pub checkout: Checkout,
    pub csv_delimiter: Option<u8>,
    /// `csv.encoding`: overrides the detected text encoding.
    pub csv_encoding: Option<&'static encoding_rs::Encoding>,
    /// `csv.sheet`: the workbook sheet to read (default: the first).
    pub csv_sheet: Option<String>,
    pub send: SendSettings,
}

/// The `checkout:` section: templates for the request body.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub product_id: Located<String>,
    pub units: Option<Located<String>>,
    pub custom_price: Option<Located<String>>,
    pub discount_code: Option<Located<String>>,
    pub affiliate_code: Option<Located<String>>,
    /// Sent as `metadata.locale`: Creem has no locale parameter.
    pub locale: Option<Located<String>>,
    /// Sent as `metadata.plan_type`.
    pub plan_type: Option<Located<String>>,
    pub success_url: Option<Located<String>>,
    pub customer_email: Option<Located<String>>,
    pub customer_id: Option<Located<String>>,
    pub custom_fields: Vec<CustomField>,
    pub metadata: Vec<(String, Located<String>)>,
}

impl Campaign {
    /// How to read the customers file: the `csv:` settings.
    pub fn read_options(&self) -> crate::customers::ReadOptions {
        crate::customers::ReadOptions {
            delimiter: self.csv_delimiter,
            encoding: self.csv_encoding,
            sheet: self.csv_sheet.clone(),
        }
    }

    /// Reads and validates the campaign at `path`; every problem found is returned at once.
    pub fn load(path: &Path) -> Result<Campaign, Diagnostics> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot read the campaign file: {e}")))?;
        Campaign::parse(path, source)
    }

    /// Validates campaign text as if read from `path` (paths inside are relative to it).
    pub fn parse(path: &Path, source: String) -> Result<Campaign, Diagnostics> {
        let raw: raw::RawCampaign = serde_saphyr::from_str(&source).map_err(|e| {
            let diagnostic = yaml_error::yaml_diagnostic(path, &source, &e);
            Diagnostics::from(crate::diagnostic::with_template_hint(diagnostic))
        })?;
        build::Builder {
            path,
            source: &source,
            problems: Vec::new(),
        }
        .build(raw, &source)
    }

    /// Points at `line`:`column` of this campaign file.
    pub fn diagnostic_at<T>(&self, at: &Located<T>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.path, &self.source, at.line, at.column, message)
    }

    /// Every template of `checkout:` with its dotted name, in body order.
    pub fn templates(&self) -> Vec<(String, &Located<String>)> {
        let c = &self.checkout;
        let mut all = vec![("checkout.product_id".to_owned(), &c.product_id)];
        let optional = [
            ("checkout.units", &c.units),
            ("checkout.custom_price", &c.custom_price),
            ("checkout.discount_code", &c.discount_code),
            ("checkout.affiliate_code", &c.affiliate_code),
            ("checkout.locale", &c.locale),
            ("checkout.plan_type", &c.plan_type),
            ("checkout.success_url", &c.success_url),
            ("checkout.customer.email", &c.customer_email),
            ("checkout.customer.id", &c.customer_id),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                all.push((name.to_owned(), value));
            }
        }
        for (i, field) in c.custom_fields.iter().enumerate() {
            let name = format!("checkout.custom_fields[{i}]");
            all.push((format!("{name}.key"), &field.key));
            all.push((format!("{name}.label"), &field.label));
            if let Some(label) = &field.checkbox_label {
                all.push((format!("{name}.checkbox.label"), label));
            }
        }
        for (key, value) in &c.metadata {
            all.push((format!("checkout.metadata.{key}"), value));
        }
        all
    }

    /// The `prod_REPLACE_ME` placeholder `init` writes when it knows no product: fine for a
    /// dry run, an error for `check` (Creem would refuse every row).
    pub fn placeholder_product(&self) -> Option<Diagnostic> {
        let product = &self.checkout.product_id;
        product.value.contains("REPLACE_ME").then(|| {
            self.diagnostic_at(
                product,
                format!(
                    "`checkout.product_id` is still the placeholder `{}`",
                    product.value
                ),
            )
            .with_width(product.value.chars().count())
            .with_help("put your Creem product id here (prod_..., from the dashboard's Products)")
        })
    }
}

/// True when a campaign value holds Jinja syntax, so it can only be checked once rendered.
pub fn is_template(value: &str) -> bool {
    value.contains("{{") || value.contains("{%")
}

fn at_of<T>(value: &Located<T>) -> Located<()> {
    Located {
        value: (),
        line: value.line,
        column: value.column,
    }
}

fn located<T>(at: &Located<()>, value: T) -> Located<T> {
    Located {
        value,
        line: at.line,
        column: at.column,
    }
}
