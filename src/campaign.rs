//! The campaign file: one YAML document describing the whole batch.
//!
//! Parsing is strict on purpose: an unknown key is an error (a typo in `discount_code` must
//! never silently send checkouts without the discount), and every problem is reported with
//! file:line:col so the user can fix it before anything is sent.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diagnostic::{did_you_mean, escape_control, Diagnostic, Diagnostics};

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

/// The most custom fields Creem takes on one checkout.
pub const MAX_CUSTOM_FIELDS: usize = 3;

/// One of `checkout.custom_fields`, shaped like Creem's `CustomFieldRequestEntity`; its
/// strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomField {
    pub kind: CustomFieldKind,
    pub key: Located<String>,
    pub label: Located<String>,
    pub optional: Option<bool>,
    /// `text:` settings (only for a text field).
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    /// `checkbox.label`, the markdown beside the box (only for a checkbox).
    pub checkbox_label: Option<Located<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomFieldKind {
    Text,
    Checkbox,
}

impl CustomFieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomFieldKind::Text => "text",
            CustomFieldKind::Checkbox => "checkbox",
        }
    }
}

/// How fast and how hard to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendSettings {
    /// `None`: no ceiling (only the concurrency bound); for sandboxes and benchmarks.
    pub rate: Option<Rate>,
    pub burst: u32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub timeout: Duration,
}

impl Default for SendSettings {
    fn default() -> SendSettings {
        SendSettings {
            rate: Some(Rate {
                count: 10,
                per: Duration::from_secs(1),
            }),
            burst: 1,
            concurrency: 8,
            max_attempts: 5,
            timeout: Duration::from_secs(30),
        }
    }
}

/// `count` requests started per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.per.as_secs() == 60 { "min" } else { "s" };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Parses `10/s`, `10/sec`, `600/min`, `5` (per second), or `unlimited` (`Ok(None)`).
pub fn parse_rate(text: &str) -> Result<Option<Rate>, String> {
    let text = text.trim();
    if matches!(text, "unlimited" | "none" | "off") {
        return Ok(None);
    }
    let (count, unit) = text.split_once('/').unwrap_or((text, "s"));
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        other => return Err(format!("unknown rate unit `{other}` (use /s or /min)")),
    };
    match count.trim().parse::<u32>() {
        Ok(count) if count >= 1 => Ok(Some(Rate { count, per })),
        _ => Err(format!(
            "`{text}` is not a rate: use N/s or N/min with N >= 1, or `unlimited`"
        )),
    }
}

/// Parses a positive duration such as `30s`, `1500ms`, `2m` or `1m30s` (see [`parse_span`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_span(text)?;
    if duration.is_zero() {
        return Err(format!("`{}` must be a positive duration", text.trim()));
    }
    Ok(duration)
}

/// The longest duration accepted anywhere: beyond it, a value is a typo, not a wish.
const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);

/// The one duration parser (campaign `timeout`, `--timeout`, the sandbox's `--latency`): jiff's
/// friendly format (`1m30s`, `1500ms`, `20us`, `1.5s`, `2 min`), or a bare number of seconds.
/// Zero is allowed; more than a day is refused, so no size can overflow later.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bare_seconds = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let parsed = if bare_seconds {
        format!("{text}s").parse::<jiff::SignedDuration>()
    } else {
        text.parse::<jiff::SignedDuration>()
    };
    let parsed =
        parsed.map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 1500ms, 2m, 1m30s)"))?;
    let duration =
        Duration::try_from(parsed).map_err(|_| format!("`{text}` must not be negative"))?;
    if duration > LONGEST {
        return Err(format!("`{text}` is longer than a day (24h)"));
    }
    Ok(duration)
}

// ---- the file as written ------------------------------------------------------------------

/// Any YAML scalar, kept as the text a template would see (`units: 3` and `units: "3"` agree).
#[derive(Debug, Clone, PartialEq)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Scalar {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// One column name, or a list of column names.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Key")]
enum KeySpec {
    One(String),
    Many(Vec<String>),
}

type Text = Option<Located<Scalar>>;

// The doc comments below are the descriptions editors show (campaigns/campaign.schema.json,
// generated by `creem-batch schema`): one line each, in the user's terms.

/// A creem-batch campaign: one Creem checkout link per row of a customers CSV.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "creem-batch campaign")]
struct RawCampaign {
    /// Campaign name, 1 to 64 characters of A-Z a-z 0-9 _ -; part of every request_id.
    #[schemars(extend("pattern" = "^[A-Za-z0-9_-]{1,64}$"))]
    campaign: Located<Scalar>,
    /// The customers CSV (header row required), relative to this file.
    customers: Located<Scalar>,
    /// The results CSV (the ledger), relative to this file; default <campaign>.results.csv.
    #[serde(default)]
    output: Text,
    /// The column(s) that identify a customer; default [email].
    #[serde(default)]
    key: Option<Located<KeySpec>>,
    /// Template for each row's request_id; default <campaign>-<hash of the key columns>.
    #[serde(default)]
    request_id: Text,
    /// The checkout request sent for each row; every string is a template ({{ column }}).
    checkout: Located<RawCheckout>,
    /// How to read the customers CSV.
    #[serde(default)]
    csv: Option<RawCsv>,
    /// How fast and how hard to send (command-line flags override these).
    #[serde(default)]
    send: Option<RawSend>,
}

/// The checkout request sent for each row; every string is a template ({{ column }}).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Checkout")]
struct RawCheckout {
    /// The Creem product (prod_...), or a template such as "{{ product }}".
    #[schemars(required)]
    product_id: Option<Located<Scalar>>,
    /// Seats or quantity: an integer >= 1, or a template rendering to one.
    #[serde(default)]
    #[schemars(extend("minimum" = 1))]
    units: Text,
    /// A price for this checkout in minor units (cents), an integer >= 0, or a template.
    #[serde(default)]
    #[schemars(extend("minimum" = 0))]
    custom_price: Text,
    /// A Creem discount code applied at checkout.
    #[serde(default)]
    discount_code: Text,
    /// An affiliate code the sale is attributed to.
    #[serde(default)]
    affiliate_code: Text,
    /// The customer's language (e.g. en, fr), sent as metadata.locale: Creem's page follows the browser.
    #[serde(default)]
    locale: Text,
    /// A marker for your own system, sent as metadata.plan_type.
    #[serde(default)]
    plan_type: Text,
    /// Where Creem sends the customer after payment (http or https URL).
    #[serde(default)]
    success_url: Text,
    /// Who the checkout is for: email or a Creem customer id, not both.
    #[serde(default)]
    customer: Option<Located<RawCustomer>>,
    /// Up to 3 extra questions on the checkout page (Creem's custom_fields).
    #[serde(default)]
    #[schemars(extend("maxItems" = 3))]
    custom_fields: Option<Located<Vec<Located<RawCustomField>>>>,
    /// Extra string values stored on the checkout and sent back in webhooks.
    #[serde(default)]
    #[schemars(with = "Option<std::collections::BTreeMap<String, Scalar>>")]
    metadata: Option<IndexMap<String, Located<Scalar>>>,
}

/// Who the checkout is for: email or a Creem customer id, not both.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Customer")]
struct RawCustomer {
    /// The customer's email, e.g. "{{ email }}"; checked before sending.
    #[serde(default)]
    email: Text,
    /// An existing Creem customer id (cust_...), e.g. "{{ creem_customer_id }}".
    #[serde(default)]
    id: Text,
}

/// An extra question on the checkout page; key, label and checkbox.label are templates.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CustomField")]
struct RawCustomField {
    /// `text` or `checkbox`.
    #[serde(rename = "type")]
    #[schemars(required, extend("enum" = ["text", "checkbox"]))]
    kind: Option<Located<Scalar>>,
    /// Unique key of the field: letters and digits, up to 200 characters.
    #[schemars(required)]
    key: Option<Located<Scalar>>,
    /// The label shown to the customer, up to 50 characters.
    #[schemars(required)]
    label: Option<Located<Scalar>>,
    /// Whether the customer may leave it empty; default false.
    #[serde(default)]
    optional: Option<Located<bool>>,
    /// Settings of a text field.
    #[serde(default)]
    text: Option<Located<RawTextField>>,
    /// Settings of a checkbox.
    #[serde(default)]
    checkbox: Option<Located<RawCheckbox>>,
}

/// Settings of a text field.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TextField")]
struct RawTextField {
    /// The shortest answer accepted.
    #[serde(default)]
    #[schemars(extend("minimum" = 0))]
    min_length: Text,
    /// The longest answer accepted.
    #[serde(default)]
    #[schemars(extend("minimum" = 1))]
    max_length: Text,
}

/// Settings of a checkbox.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Checkbox")]
struct RawCheckbox {
    /// The markdown text beside the box, e.g. "I agree to the [terms](https://...)".
    #[serde(default)]
    label: Text,
}

/// How to read the customers CSV.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Csv")]
struct RawCsv {
    /// The field separator: , ; | or tab; default: detected from the header.
    #[serde(default)]
    #[schemars(extend("enum" = [",", ";", "|", "\t", "tab", "\\t", null]))]
    delimiter: Text,
    /// The text encoding (utf-8, utf-16le, utf-16be, windows-1252, latin1, ...); default:
    /// detected (byte-order mark, NUL bytes, else UTF-8 when valid, else windows-1252).
    #[serde(default)]
    encoding: Text,
    /// For a workbook (.xlsx, .xls, .ods): the sheet to read; default: the first.
    #[serde(default)]
    sheet: Text,
}

/// How fast and how hard to send (command-line flags override these).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Send")]
struct RawSend {
    /// Ceiling on requests started: N/s or N/min, or unlimited; default 10/s.
    #[serde(default)]
    #[schemars(extend("pattern" = "^([0-9]+(/(s|sec|second|m|min|minute))?|unlimited|none|off)$"))]
    rate: Text,
    /// How many requests may start back to back; default 1.
    #[serde(default)]
    #[schemars(extend("minimum" = 1))]
    burst: Text,
    /// Requests in flight at once; default 8.
    #[serde(default)]
    #[schemars(extend("minimum" = 1))]
    concurrency: Text,
    /// Attempts per row, first try included; default 5.
    #[serde(default)]
    #[schemars(extend("minimum" = 1))]
    max_attempts: Text,
    /// Per-request timeout, e.g. 30s, 1500ms, 2m or 1m30s; default 30s.
    #[serde(default)]
    #[schemars(extend("pattern" = "^ *[0-9.]+ *([a-zµ]+ *([0-9.]+ *[a-zµ]+ *)*)?$"))]
    timeout: Text,
}

/// The JSON Schema of the campaign file (draft-07, which every YAML editor understands),
/// generated from the types that parse it.
pub fn json_schema() -> serde_json::Value {
    schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawCampaign>()
        .to_value()
}

/// The keys each section accepts, for "did you mean" and the list of valid keys.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "top level",
        &[
            "campaign",
            "customers",
            "output",
            "key",
            "request_id",
            "checkout",
            "csv",
            "send",
        ],
    ),
    (
        "checkout",
        &[
            "product_id",
            "units",
            "custom_price",
            "discount_code",
            "affiliate_code",
            "locale",
            "plan_type",
            "success_url",
            "customer",
            "custom_fields",
            "metadata",
        ],
    ),
    ("customer", &["email", "id"]),
    (
        "custom_fields",
        &["type", "key", "label", "optional", "text", "checkbox"],
    ),
    ("text", &["min_length", "max_length"]),
    ("checkbox", &["label"]),
    ("csv", &["delimiter", "encoding", "sheet"]),
    (
        "send",
        &["rate", "burst", "concurrency", "max_attempts", "timeout"],
    ),
];

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
        let raw: RawCampaign = serde_saphyr::from_str(&source).map_err(|e| {
            let diagnostic = yaml_diagnostic(path, &source, &e);
            Diagnostics::from(crate::diagnostic::with_template_hint(diagnostic))
        })?;
        Builder {
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

/// Turns a YAML error into a diagnostic in the user's terms: unknown keys get "did you mean"
/// and the section's valid keys; parser jargon is reworded.
fn yaml_diagnostic(path: &Path, source: &str, err: &serde_saphyr::Error) -> Diagnostic {
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

/// Collects semantic problems while turning the raw file into a [`Campaign`].
struct Builder<'a> {
    path: &'a Path,
    source: &'a str,
    problems: Vec<Diagnostic>,
}

impl Builder<'_> {
    /// A value as the user typed it, for messages: YAML reads a plain `99999999999999999999999`
    /// as a float, which would be echoed as `1e23`. Control characters are escaped.
    fn typed(&self, value: &Located<String>) -> String {
        let line = (value.line as usize)
            .checked_sub(1)
            .and_then(|i| self.source.lines().nth(i));
        let rest: Option<String> = line.map(|l| {
            l.chars()
                .skip((value.column as usize).saturating_sub(1))
                .collect()
        });
        let plain = rest.as_deref().and_then(|rest| {
            let quoted_or_block = rest.starts_with(['"', '\'', '|', '>']);
            let text = rest.split(" #").next().unwrap_or_default().trim();
            (!quoted_or_block && !text.is_empty()).then_some(text)
        });
        escape_control(plain.unwrap_or(&value.value)).into_owned()
    }

    fn problem<T>(&mut self, at: &Located<T>, message: impl Into<String>) {
        self.problems.push(Diagnostic::at(
            self.path,
            self.source,
            at.line,
            at.column,
            message,
        ));
    }

    fn build(mut self, raw: RawCampaign, source: &str) -> Result<Campaign, Diagnostics> {
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let name = text(raw.campaign);
        if !valid_campaign_name(&name.value) {
            self.problem(
                &name,
                format!(
                    "campaign name `{}` must be 1 to 64 characters of A-Z a-z 0-9 _ -",
                    name.value
                ),
            );
        }
        let customers = text(raw.customers);
        if customers.value.trim().is_empty() {
            self.problem(&customers, "`customers` must name the customers CSV file");
        }
        let output = match raw.output.map(text) {
            Some(out) if out.value.trim().is_empty() => {
                self.problem(&out, "`output` must not be empty");
                PathBuf::new()
            }
            Some(out) => dir.join(&out.value),
            None => dir.join(format!("{}.results.csv", name.value)),
        };
        let mut key_at = None;
        let key = match raw.key {
            None => vec!["email".to_owned()],
            Some(at) => {
                key_at = Some(Located {
                    value: (),
                    line: at.line,
                    column: at.column,
                });
                let key = match &at.value {
                    KeySpec::One(one) => vec![one.clone()],
                    KeySpec::Many(many) => many.clone(),
                };
                if key.is_empty() || key.iter().any(|k| k.trim().is_empty()) {
                    self.problem(&at, "`key` must list one or more column names");
                }
                key
            }
        };
        let checkout = self.checkout(raw.checkout);
        let (csv_delimiter, csv_encoding, csv_sheet) = match raw.csv {
            None => (None, None, None),
            Some(csv) => {
                let delimiter = csv.delimiter.map(text).and_then(|d| self.delimiter(&d));
                let encoding = csv.encoding.map(text).and_then(|e| {
                    let found = crate::customers::encoding_for_label(&e.value);
                    if found.is_none() {
                        self.problem(
                            &e,
                            format!(
                                "csv encoding `{}` is not one this tool knows (utf-8, utf-16le, \
                                 utf-16be, windows-1252, latin1, iso-8859-15, ...)",
                                e.value
                            ),
                        );
                    }
                    found
                });
                let sheet = csv.sheet.map(text).map(|s| s.value);
                (delimiter, encoding, sheet)
            }
        };
        let send = self.send(raw.send);
        if !self.problems.is_empty() {
            return Err(Diagnostics(self.problems));
        }
        Ok(Campaign {
            path: self.path.to_path_buf(),
            source: source.to_owned(),
            name: name.value,
            customers: dir.join(customers.value),
            output,
            key,
            key_at,
            request_id: raw.request_id.map(text),
            checkout,
            csv_delimiter,
            csv_encoding,
            csv_sheet,
            send,
        })
    }

    fn checkout(&mut self, section: Located<RawCheckout>) -> Checkout {
        let at = Located {
            value: (),
            line: section.line,
            column: section.column,
        };
        let raw = section.value;
        let product_id = match raw.product_id.map(text) {
            Some(p) if !p.value.trim().is_empty() => p,
            Some(p) => {
                self.problem(&p, "`checkout.product_id` must not be empty");
                p
            }
            None => {
                self.problems.push(
                    Diagnostic::at(
                        self.path,
                        self.source,
                        at.line,
                        at.column,
                        "`checkout.product_id` is required",
                    )
                    .with_help("add `product_id: prod_...` to the `checkout:` section"),
                );
                Located {
                    value: String::new(),
                    line: at.line,
                    column: at.column,
                }
            }
        };
        let units = raw.units.map(text);
        if let Some(units) = &units {
            if !is_template(&units.value) {
                match units.value.trim().parse::<u64>() {
                    Ok(n) if n >= 1 => {}
                    _ => self.problem(
                        units,
                        format!(
                            "`units` must be an integer >= 1, not `{}`",
                            self.typed(units)
                        ),
                    ),
                }
            }
        }
        let custom_price = raw.custom_price.map(text);
        if let Some(price) = &custom_price {
            if !is_template(&price.value) && price.value.trim().parse::<u64>().is_err() {
                self.problem(
                    price,
                    format!(
                        "`custom_price` must be an integer >= 0 in minor units (cents), not `{}`",
                        self.typed(price)
                    ),
                );
            }
        }
        let custom_fields = self.custom_fields(raw.custom_fields);
        let (customer_email, customer_id) = match raw.customer {
            None => (None, None),
            Some(customer) => {
                let Located {
                    value,
                    line,
                    column,
                } = customer;
                let email = value.email.map(text);
                let id = value.id.map(text);
                if email.is_none() && id.is_none() {
                    let at = Located {
                        value: (),
                        line,
                        column,
                    };
                    self.problem(&at, "`checkout.customer` needs `email` or `id`");
                }
                (email, id)
            }
        };
        let metadata = raw
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, text(v)))
            .collect::<Vec<_>>();
        // These two are sent inside metadata, so a metadata key of the same name would collide.
        for (name, set) in [
            ("plan_type", raw.plan_type.is_some()),
            ("locale", raw.locale.is_some()),
        ] {
            if let Some((_, at)) = metadata.iter().find(|(k, _)| k == name).filter(|_| set) {
                let at = at.clone();
                self.problem(
                    &at,
                    format!(
                        "`metadata.{name}` and `checkout.{name}` both set: keep one \
                         (`checkout.{name}` is sent as `metadata.{name}`)"
                    ),
                );
            }
        }
        Checkout {
            product_id,
            units,
            custom_price,
            discount_code: raw.discount_code.map(text),
            affiliate_code: raw.affiliate_code.map(text),
            custom_fields,
            locale: raw.locale.map(text),
            plan_type: raw.plan_type.map(text),
            success_url: raw.success_url.map(text),
            customer_email,
            customer_id,
            metadata,
        }
    }

    fn custom_fields(
        &mut self,
        raw: Option<Located<Vec<Located<RawCustomField>>>>,
    ) -> Vec<CustomField> {
        let Some(list) = raw else {
            return Vec::new();
        };
        if list.value.len() > MAX_CUSTOM_FIELDS {
            let at = Located {
                value: (),
                line: list.line,
                column: list.column,
            };
            self.problem(
                &at,
                format!(
                    "`checkout.custom_fields` has {} fields; Creem takes up to {MAX_CUSTOM_FIELDS}",
                    list.value.len()
                ),
            );
        }
        let mut fields = Vec::new();
        for item in list.value {
            let at = Located {
                value: (),
                line: item.line,
                column: item.column,
            };
            let raw = item.value;
            let mut required = |value: Option<Located<Scalar>>, name: &str| match value {
                Some(v) => Some(text(v)),
                None => {
                    self.problem(&at, format!("a custom field needs `{name}`"));
                    None
                }
            };
            let (kind, key, label) = (
                required(raw.kind, "type"),
                required(raw.key, "key"),
                required(raw.label, "label"),
            );
            let kind = kind.and_then(|kind| match kind.value.trim() {
                "text" => Some(CustomFieldKind::Text),
                "checkbox" => Some(CustomFieldKind::Checkbox),
                other => {
                    self.problem(
                        &kind,
                        format!("custom field type `{other}` is not `text` or `checkbox`"),
                    );
                    None
                }
            });
            let mut field = CustomField {
                kind: kind.unwrap_or(CustomFieldKind::Text),
                key: key.clone().unwrap_or_else(|| located(&at, String::new())),
                label: label.clone().unwrap_or_else(|| located(&at, String::new())),
                optional: raw.optional.map(|o| o.value),
                min_length: None,
                max_length: None,
                checkbox_label: None,
            };
            if let Some(settings) = raw.text {
                if kind == Some(CustomFieldKind::Checkbox) {
                    self.problem(&settings, "`text:` settings on a checkbox field");
                }
                let at = at_of(&settings);
                field.min_length = self.length(settings.value.min_length, "text.min_length");
                field.max_length = self.length(settings.value.max_length, "text.max_length");
                if let (Some(min), Some(max)) = (field.min_length, field.max_length) {
                    if min > max {
                        self.problem(
                            &at,
                            format!("`text.min_length` {min} is above `text.max_length` {max}"),
                        );
                    }
                }
            }
            if let Some(settings) = raw.checkbox {
                if kind == Some(CustomFieldKind::Text) {
                    self.problem(&settings, "`checkbox:` settings on a text field");
                }
                field.checkbox_label = settings.value.label.map(text);
            }
            if let (Some(key), Some(label)) = (&key, &label) {
                if !is_template(&key.value) {
                    if let Err(e) = check_custom_field_key(key.value.trim()) {
                        self.problem(key, format!("custom field key `{}` {e}", key.value));
                    }
                }
                if !is_template(&label.value) {
                    if let Err(e) = check_custom_field_label(label.value.trim()) {
                        self.problem(label, format!("custom field label `{}` {e}", label.value));
                    }
                }
            }
            fields.push(field);
        }
        let constant_keys: Vec<&Located<String>> = fields
            .iter()
            .map(|f| &f.key)
            .filter(|k| !is_template(&k.value))
            .collect();
        for (i, key) in constant_keys.iter().enumerate() {
            if constant_keys[..i]
                .iter()
                .any(|k| k.value.trim() == key.value.trim())
            {
                let key = (*key).clone();
                self.problem(
                    &key,
                    format!("custom field key `{}` is used twice", key.value),
                );
            }
        }
        fields
    }

    fn length(&mut self, raw: Text, name: &str) -> Option<u64> {
        let value = raw.map(text)?;
        match value.value.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.problem(
                    &value,
                    format!("`{name}` must be an integer >= 0, not `{}`", value.value),
                );
                None
            }
        }
    }

    fn delimiter(&mut self, d: &Located<String>) -> Option<u8> {
        match d.value.as_str() {
            "," => Some(b','),
            ";" => Some(b';'),
            "|" => Some(b'|'),
            "\t" | "tab" | "\\t" => Some(b'\t'),
            other => {
                self.problem(
                    d,
                    format!("csv delimiter `{other}` is not one of , ; | tab"),
                );
                None
            }
        }
    }

    fn send(&mut self, raw: Option<RawSend>) -> SendSettings {
        let mut send = SendSettings::default();
        let Some(raw) = raw else { return send };
        if let Some(rate) = raw.rate.map(text) {
            match parse_rate(&rate.value) {
                Ok(r) => send.rate = r,
                Err(e) => self.problem(&rate, e),
            }
        }
        if let Some(v) = self.positive(raw.burst, "burst") {
            send.burst = v;
        }
        if let Some(v) = self.positive(raw.concurrency, "concurrency") {
            send.concurrency = v as usize;
        }
        if let Some(v) = self.positive(raw.max_attempts, "max_attempts") {
            send.max_attempts = v;
        }
        if let Some(timeout) = raw.timeout.map(text) {
            match parse_duration(&timeout.value) {
                Ok(d) => send.timeout = d,
                Err(e) => self.problem(&timeout, e),
            }
        }
        send
    }

    fn positive(&mut self, raw: Text, name: &str) -> Option<u32> {
        let value = raw.map(text)?;
        match value.value.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.problem(
                    &value,
                    format!(
                        "`send.{name}` must be an integer >= 1, not `{}`",
                        self.typed(&value)
                    ),
                );
                None
            }
        }
    }
}

/// True when a campaign value holds Jinja syntax, so it can only be checked once rendered.
pub fn is_template(value: &str) -> bool {
    value.contains("{{") || value.contains("{%")
}

/// Creem's rule for a custom field's key: letters and digits, up to 200 characters.
pub fn check_custom_field_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("is empty");
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("must be letters and digits only");
    }
    if key.len() > 200 {
        return Err("is longer than 200 characters");
    }
    Ok(())
}

/// Creem's rule for a custom field's label: up to 50 characters.
pub fn check_custom_field_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() {
        return Err("is empty");
    }
    if label.chars().count() > 50 {
        return Err("is longer than 50 characters");
    }
    Ok(())
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

fn text(s: Located<Scalar>) -> Located<String> {
    Located {
        value: s.value.0,
        line: s.line,
        column: s.column,
    }
}

fn valid_campaign_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Campaign, Diagnostics> {
        Campaign::parse(Path::new("dir/c.yaml"), yaml.to_owned())
    }

    const MINIMAL: &str =
        "campaign: spring\ncustomers: people.csv\ncheckout:\n  product_id: prod_1\n";

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
            Some(Rate {
                count: 600,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(parse_rate("unlimited").unwrap(), None);
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
}
