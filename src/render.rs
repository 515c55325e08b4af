//! One CSV row -> one request: the request_id, the exact JSON body, and its SHA-256.
//!
//! The body is serialised here once and those bytes are what is hashed, printed by
//! `--dry-run` and sent, so the three can never disagree.

use sha2::{Digest, Sha256};

use crate::campaign::{
    check_custom_field_key, check_custom_field_label, Campaign, CustomFieldKind, Located,
};
use crate::diagnostic::{did_you_mean, escape_control as esc, Diagnostic, Diagnostics};
use crate::template::{RowValues, TemplateError, TemplateId, TemplateSet};

/// The byte that separates the campaign and key values in the default request_id's hash.
/// A unit separator cannot appear in a normal CSV value, so `a,b` + `c` never equals `a` + `b,c`.
const KEY_SEPARATOR: u8 = 0x1F;

/// Computes the default request_id: `<campaign>-<first 16 hex of SHA-256(campaign \x1F
/// value1 \x1F value2 ...)>`, each value trimmed, and an email column's value (see
/// [`is_email_column`]) also lowercased. Public so a merchant's backend (or a test) can derive
/// the same id; when the email column has another name but feeds `customer.email`, use
/// [`default_request_id_of`].
pub fn default_request_id(campaign: &str, key_values: &[(&str, &str)]) -> String {
    let values: Vec<(&str, bool)> = key_values
        .iter()
        .map(|&(column, value)| (value, is_email_column(column)))
        .collect();
    default_request_id_of(campaign, &values)
}

/// [`default_request_id`] over `(value, is_email)` pairs: `is_email` is true for the key column
/// that `customer.email` reads, or whose name is an email column's.
pub fn default_request_id_of(campaign: &str, key_values: &[(&str, bool)]) -> String {
    let digest = key_digest(campaign, key_values.iter().copied());
    let mut id = format!("{campaign}-");
    push_hex(&digest[..8], &mut id);
    id
}

/// True for a column name that holds the customer's email, whatever the export calls it:
/// lowercased and without spaces, `-` and `_`, it is `email` or `emailaddress` (`email`,
/// `Email`, `E-Mail`, `Email Address`, `email_address`).
pub fn is_email_column(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    folded == "email" || folded == "emailaddress"
}

/// Feeds a key value to a hasher the way the request_id rule says: trimmed, and lowercased
/// for an email (without allocating for the usual ASCII address).
fn feed_key_value(is_email: bool, value: &str, mut feed: impl FnMut(&[u8])) {
    let value = value.trim();
    if !is_email {
        feed(value.as_bytes());
    } else if value.is_ascii() {
        let mut buffer = [0u8; 64];
        for chunk in value.as_bytes().chunks(buffer.len()) {
            let lowered = &mut buffer[..chunk.len()];
            lowered.copy_from_slice(chunk);
            lowered.make_ascii_lowercase();
            feed(lowered);
        }
    } else {
        feed(value.to_lowercase().as_bytes());
    }
}

/// Appends `bytes` as lowercase hex.
pub fn push_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    push_hex(&Sha256::digest(bytes), &mut out);
    out
}

fn key_digest<'a>(campaign: &str, key_values: impl Iterator<Item = (&'a str, bool)>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(campaign.as_bytes());
    for (value, is_email) in key_values {
        hasher.update([KEY_SEPARATOR]);
        feed_key_value(is_email, value, |bytes| hasher.update(bytes));
    }
    hasher.finalize().into()
}

/// Bumped when the default request_id rule changes (2: any email column lowercased).
const REQUEST_ID_RULE: u32 = 2;

/// The largest body sent. Every field Creem takes is short (ids, codes, labels of at most 50
/// characters, a few metadata values), so a bigger body is a mistake such as a whole file in
/// one cell; refusing it before sending also keeps each ledger record small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A row ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub request_id: String,
    /// The customer's email for the ledger (empty when the customer is given by id).
    pub email: String,
    /// The exact JSON body.
    pub body: Vec<u8>,
    /// Lowercase hex SHA-256 of `body` (empty when the batch was opened without hashing,
    /// as a dry run with no ledger to compare against does).
    pub body_sha256: String,
    /// See [`Renderer::input_hash`] (0 when not hashing, like `body_sha256`).
    pub input_hash: u64,
    /// The id the earlier request_id rule gave this row, when it differs: that rule lowercased
    /// only a column named exactly `email`, so a ledger it wrote holds this id.
    pub previous_id: Option<String>,
}

/// Why a row cannot be sent, with what is known of it for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub request_id: String,
    pub email: String,
    pub reason: String,
    /// Where the row is in the file, "row 7, line 8 in the file" (set by the batch; empty
    /// when unknown).
    pub at: String,
}

/// An integer field (`units`, `custom_price`): fixed in the campaign, or rendered per row.
#[derive(Debug)]
enum Integer {
    Fixed(u64),
    Template(TemplateId),
}

/// One of `checkout.custom_fields`, compiled.
#[derive(Debug)]
struct CustomFieldTemplates {
    kind: CustomFieldKind,
    key: TemplateId,
    label: TemplateId,
    optional: Option<bool>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    checkbox_label: Option<TemplateId>,
}

/// Everything compiled from the campaign that turns a row into a request.
#[derive(Debug)]
pub struct Renderer {
    campaign: String,
    templates: TemplateSet,
    /// Each key column: its index, its name, and whether it holds the email (compared
    /// trimmed and lowercased).
    key_columns: Vec<(usize, String, bool)>,
    email_column: Option<usize>,
    request_id: Option<TemplateId>,
    product_id: TemplateId,
    units: Option<Integer>,
    custom_price: Option<Integer>,
    discount_code: Option<TemplateId>,
    affiliate_code: Option<TemplateId>,
    custom_fields: Vec<CustomFieldTemplates>,
    locale: Option<TemplateId>,
    success_url: Option<TemplateId>,
    customer_email: Option<TemplateId>,
    customer_id: Option<TemplateId>,
    plan_type: Option<TemplateId>,
    /// Each metadata entry: its key and its template, in campaign order.
    metadata: Vec<(String, TemplateId)>,
    hash_bodies: bool,
    success_url_is_constant: bool,
    /// SHA-256 fed with everything but the row that the body is made from.
    input_seed: Sha256,
}

impl Renderer {
    /// Compiles every template against the CSV's columns; a template naming a missing
    /// column, or a key column the CSV lacks, is reported here, before any row is read.
    pub fn new(campaign: &Campaign, headers: &[String]) -> Result<Renderer, Diagnostics> {
        let mut problems = Vec::new();
        let mut templates = TemplateSet::new(headers);
        let columns_help = format!("the CSV's columns: {}", headers.join(", "));
        let mut compile = |name: &str, at: &Located<String>| -> Option<TemplateId> {
            match templates.compile(&at.value) {
                Ok(id) => Some(id),
                Err(e) => {
                    let message = match &e {
                        TemplateError::MissingColumns { .. } => format!("template `{name}` {e}"),
                        TemplateError::Syntax(_) => format!("template `{name}`: {e}"),
                    };
                    let mut d = campaign.diagnostic_at(at, message);
                    if let TemplateError::MissingColumns { missing } = &e {
                        for column in missing {
                            if let Some(close) = similar_column(column, headers) {
                                d = d.with_help(format!("did you mean `{close}`?"));
                            }
                        }
                        d = d.with_help(columns_help.clone());
                    }
                    problems.push(d);
                    None
                }
            }
        };
        let c = &campaign.checkout;
        let request_id = campaign
            .request_id
            .as_ref()
            .and_then(|t| compile("request_id", t));
        let product_id = compile("checkout.product_id", &c.product_id);
        let mut integer = |name: &str, t: &Option<Located<String>>| {
            t.as_ref()
                .and_then(|t| match t.value.trim().parse::<u64>() {
                    Ok(n) => Some(Integer::Fixed(n)),
                    Err(_) => compile(name, t).map(Integer::Template),
                })
        };
        let units = integer("checkout.units", &c.units);
        let custom_price = integer("checkout.custom_price", &c.custom_price);
        let mut optional =
            |name: &str, t: &Option<Located<String>>| t.as_ref().and_then(|t| compile(name, t));
        let discount_code = optional("checkout.discount_code", &c.discount_code);
        let affiliate_code = optional("checkout.affiliate_code", &c.affiliate_code);
        let locale = optional("checkout.locale", &c.locale);
        let success_url = optional("checkout.success_url", &c.success_url);
        let customer_email = optional("checkout.customer.email", &c.customer_email);
        let customer_id = optional("checkout.customer.id", &c.customer_id);
        let plan_type = optional("checkout.plan_type", &c.plan_type);
        let mut custom_fields = Vec::new();
        for (i, field) in c.custom_fields.iter().enumerate() {
            let name = format!("checkout.custom_fields[{i}]");
            let key = compile(&format!("{name}.key"), &field.key);
            let label = compile(&format!("{name}.label"), &field.label);
            let checkbox_label = field
                .checkbox_label
                .as_ref()
                .and_then(|t| compile(&format!("{name}.checkbox.label"), t));
            if let (Some(key), Some(label)) = (key, label) {
                custom_fields.push(CustomFieldTemplates {
                    kind: field.kind,
                    key,
                    label,
                    optional: field.optional,
                    min_length: field.min_length,
                    max_length: field.max_length,
                    checkbox_label,
                });
            }
        }
        let metadata = c
            .metadata
            .iter()
            .filter_map(|(key, t)| {
                compile(&format!("checkout.metadata.{key}"), t).map(|id| (key.clone(), id))
            })
            .collect();
        // A constant success_url is checked here once, not on every row.
        let mut success_url_is_constant = false;
        if let (Some(id), Some(at)) = (success_url, &c.success_url) {
            if let Some(url) = templates.constant(id) {
                success_url_is_constant = true;
                if let Err(e) = check_url(url.trim()) {
                    problems.push(campaign.diagnostic_at(at, format!("success_url `{url}` {e}")));
                }
            }
        }
        let mut key_columns = Vec::new();
        let email_source = c
            .customer_email
            .as_ref()
            .and_then(|t| single_column(&t.value, headers));
        for column in &campaign.key {
            match headers.iter().position(|h| h == column) {
                Some(index) => {
                    let is_email = is_email_column(column) || email_source == Some(column.as_str());
                    key_columns.push((index, column.clone(), is_email));
                }
                None => {
                    let message = format!(
                        "key column `{column}` is not in {}",
                        campaign.customers.display()
                    );
                    let mut d = match &campaign.key_at {
                        Some(at) => campaign.diagnostic_at(at, message),
                        None => Diagnostic::file(&campaign.path, message).with_help(
                            "without `key:`, customers are identified by an `email` column; \
                             set `key:` to the columns that identify a customer",
                        ),
                    };
                    if let Some(close) = similar_column(column, headers) {
                        d = d.with_help(format!("did you mean `{close}`?"));
                    }
                    problems.push(d.with_help(columns_help.clone()));
                }
            }
        }
        if !problems.is_empty() {
            return Err(Diagnostics(problems));
        }
        Ok(Renderer {
            campaign: campaign.name.clone(),
            templates,
            key_columns,
            email_column: email_source
                .and_then(|name| headers.iter().position(|h| h == name))
                .or_else(|| headers.iter().position(|h| is_email_column(h))),
            request_id,
            product_id: product_id.ok_or_else(|| Diagnostics(Vec::new()))?,
            units,
            custom_price,
            discount_code,
            affiliate_code,
            custom_fields,
            locale,
            success_url,
            customer_email,
            customer_id,
            plan_type,
            metadata,
            hash_bodies: true,
            success_url_is_constant,
            input_seed: input_seed(campaign, headers),
        })
    }

    /// A 64-bit digest of everything this row's body is made from: this program's version,
    /// the campaign's name, key and templates, the CSV header, the row number and its cells.
    /// Rendering is a pure function of these, so an equal digest means an equal body, and
    /// a re-run can tell a row is unchanged without rendering it (never 0, which means none).
    pub fn input_hash(&self, row: u64, fields: &[&str]) -> u64 {
        let mut hasher = self.input_seed.clone();
        hasher.update(row.to_le_bytes());
        for field in fields {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        let digest = hasher.finalize();
        u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")).max(1)
    }

    /// The normalised key's digest: equal for the same customer, whatever the spacing or
    /// the case of the email. Its first 8 bytes are the default request_id's hash.
    pub fn key_digest(&self, fields: &[&str]) -> [u8; 32] {
        key_digest(
            &self.campaign,
            self.key_columns
                .iter()
                .map(|(i, _, is_email)| (fields.get(*i).copied().unwrap_or_default(), *is_email)),
        )
    }

    /// A cheap 64-bit fingerprint of the normalised key, for finding duplicate keys: the same
    /// customer gives the same fingerprint, as with [`key_digest`](Self::key_digest).
    pub fn key_fingerprint(&self, fields: &[&str]) -> u64 {
        use std::hash::Hasher;
        let mut hasher = std::hash::DefaultHasher::new();
        for (i, _, is_email) in &self.key_columns {
            let value = fields.get(*i).copied().unwrap_or_default();
            hasher.write_u8(KEY_SEPARATOR);
            feed_key_value(*is_email, value, |bytes| hasher.write(bytes));
        }
        hasher.finish()
    }

    /// Whether `render` computes each body's SHA-256 and input_hash (only needed for a ledger).
    pub fn set_hash_bodies(&mut self, hash: bool) {
        self.hash_bodies = hash;
    }

    /// The key columns that are empty in this row.
    pub fn empty_key_columns<'a>(&'a self, fields: &[&str]) -> Vec<&'a str> {
        self.key_columns
            .iter()
            .filter(|(i, _, _)| fields.get(*i).is_none_or(|cell| cell.trim().is_empty()))
            .map(|(_, column, _)| column.as_str())
            .collect()
    }

    /// True when request_ids come from a template (so they may collide even when keys don't).
    pub fn has_request_id_template(&self) -> bool {
        self.request_id.is_some()
    }

    /// The row's request_id: the template's rendering, or the default from the key's digest.
    pub fn request_id(&self, row: u64, fields: &[&str]) -> Result<String, String> {
        match self.request_id {
            None => {
                let key_digest = self.key_digest(fields);
                let mut id = String::with_capacity(self.campaign.len() + 17);
                id.push_str(&self.campaign);
                id.push('-');
                push_hex(&key_digest[..8], &mut id);
                Ok(id)
            }
            Some(template) => {
                let id = self
                    .templates
                    .row(self.values(row, fields))
                    .render(template)
                    .map_err(|e| format!("request_id: {e}"))?;
                let id = id.trim().to_owned();
                if id.is_empty() {
                    return Err("request_id renders empty".to_owned());
                }
                Ok(id)
            }
        }
    }

    /// The default request_id by the earlier rule (only a column named `email` lowercased),
    /// when it differs from today's: for reading a ledger that rule wrote.
    fn previous_id(&self, fields: &[&str]) -> Option<String> {
        let differs = self.request_id.is_none()
            && self.key_columns.iter().any(|(i, name, is_email)| {
                *is_email
                    && name != "email"
                    && fields
                        .get(*i)
                        .is_some_and(|v| v.trim() != v.trim().to_lowercase())
            });
        if !differs {
            return None;
        }
        let digest = key_digest(
            &self.campaign,
            self.key_columns
                .iter()
                .map(|(i, name, _)| (fields.get(*i).copied().unwrap_or_default(), name == "email")),
        );
        let mut id = format!("{}-", self.campaign);
        push_hex(&digest[..8], &mut id);
        Some(id)
    }

    /// " (column `x`)" naming the CSV columns a template reads, or nothing for constants.
    fn column_note(&self, id: Option<TemplateId>) -> String {
        let columns = id.map(|id| self.templates.columns(id)).unwrap_or_default();
        match columns.len() {
            0 => String::new(),
            1 => format!(" (column `{}`)", columns[0]),
            _ => format!(" (columns `{}`)", columns.join("`, `")),
        }
    }

    fn values<'v>(&'v self, row: u64, fields: &'v [&'v str]) -> RowValues<'v> {
        RowValues {
            campaign: &self.campaign,
            row,
            columns: fields,
        }
    }

    /// The customer's email as the ledger shows it, even for rows that cannot be sent.
    pub fn ledger_email(&self, row: u64, fields: &[&str]) -> String {
        if let Some(t) = self.customer_email {
            if let Ok(email) = self.templates.row(self.values(row, fields)).render(t) {
                return email.trim().to_owned();
            }
        }
        if self.customer_email.is_none() && self.customer_id.is_some() {
            return String::new();
        }
        self.email_column
            .and_then(|i| fields.get(i))
            .map(|cell| cell.trim().to_owned())
            .unwrap_or_default()
    }

    /// Renders and validates one row; every problem with it is listed in the rejection.
    pub fn render(
        &self,
        row: u64,
        fields: &[&str],
        request_id: String,
    ) -> Result<Request, Rejection> {
        let mut problems: Vec<String> = Vec::new();
        let mut renderer = self.templates.row(self.values(row, fields));
        // One field's value, trimmed; None when empty or when it failed (noted in `problems`).
        let mut field = |name: &dyn Fn() -> String, id: Option<TemplateId>| -> Option<String> {
            let id = id?;
            let mut text = String::new();
            match renderer.render_into(id, &mut text) {
                Ok(()) => {
                    let value = text.trim();
                    (!value.is_empty()).then(|| value.to_owned())
                }
                Err(e) => {
                    problems.push(format!("{}: {e}{}", name(), self.column_note(Some(id))));
                    None
                }
            }
        };
        let named = |name: &'static str| move || name.to_owned();
        let product_id = field(&named("product_id"), Some(self.product_id));
        let mut integer_text = |name: &'static str, integer: &Option<Integer>| match integer {
            Some(Integer::Template(t)) => field(&named(name), Some(*t)),
            _ => None,
        };
        let units_text = integer_text("units", &self.units);
        let custom_price_text = integer_text("custom_price", &self.custom_price);
        let discount_code = field(&named("discount_code"), self.discount_code);
        let affiliate_code = field(&named("affiliate_code"), self.affiliate_code);
        let mut custom_fields = Vec::with_capacity(self.custom_fields.len());
        for (i, f) in self.custom_fields.iter().enumerate() {
            let key = field(&|| format!("custom_fields[{i}].key"), Some(f.key));
            let label = field(&|| format!("custom_fields[{i}].label"), Some(f.label));
            let checkbox_label = field(
                &|| format!("custom_fields[{i}].checkbox.label"),
                f.checkbox_label,
            );
            custom_fields.push((f, key, label, checkbox_label));
        }
        let locale = field(&named("locale"), self.locale);
        let success_url = field(&named("success_url"), self.success_url);
        let email = field(&named("customer.email"), self.customer_email);
        let customer_id = field(&named("customer.id"), self.customer_id);
        let plan_type = field(&named("plan_type"), self.plan_type);
        let mut metadata: Vec<(&str, String)> = Vec::with_capacity(self.metadata.len() + 1);
        for (key, id) in &self.metadata {
            if let Some(value) = field(&|| format!("metadata.{key}"), Some(*id)) {
                metadata.push((key, value));
            }
        }
        // Creem has no such parameters; they travel as metadata, where a webhook returns them.
        if let Some(plan_type) = plan_type {
            metadata.push(("plan_type", plan_type));
        }
        if let Some(locale) = locale {
            metadata.push(("locale", locale));
        }
        if product_id.is_none() && problems.is_empty() {
            problems.push(format!(
                "product_id renders empty{}",
                self.column_note(Some(self.product_id))
            ));
        }
        let mut integer = |name: &str, integer: &Option<Integer>, text: Option<String>, least| {
            let (t, text) = match integer {
                None => return None,
                Some(Integer::Fixed(n)) => return Some(*n),
                Some(Integer::Template(t)) => (t, text?),
            };
            let least: u64 = least;
            match text.parse::<u64>() {
                Ok(n) if n >= least => Some(n),
                _ => {
                    problems.push(format!(
                        "{name} `{}` is not an integer >= {least}{}",
                        esc(&text),
                        self.column_note(Some(*t))
                    ));
                    None
                }
            }
        };
        let units = integer("units", &self.units, units_text, 1);
        let custom_price = integer("custom_price", &self.custom_price, custom_price_text, 0);
        let mut custom_field_bodies = Vec::with_capacity(custom_fields.len());
        for (i, (f, key, label, checkbox_label)) in custom_fields.iter().enumerate() {
            let (Some(key), Some(label)) = (key, label) else {
                problems.push(format!(
                    "custom_fields[{i}]: key and label must not be empty"
                ));
                continue;
            };
            if let Err(e) = check_custom_field_key(key) {
                problems.push(format!("custom_fields[{i}].key `{}` {e}", esc(key)));
            }
            if let Err(e) = check_custom_field_label(label) {
                problems.push(format!("custom_fields[{i}].label `{}` {e}", esc(label)));
            }
            if custom_fields[..i]
                .iter()
                .any(|other| other.1.as_ref() == Some(key))
            {
                problems.push(format!(
                    "custom_fields[{i}].key `{}` is used twice",
                    esc(key)
                ));
            }
            custom_field_bodies.push(CustomFieldBody {
                kind: f.kind.as_str(),
                key,
                label,
                optional: f.optional,
                text: (f.min_length.is_some() || f.max_length.is_some()).then_some(TextBody {
                    max_length: f.max_length,
                    min_length: f.min_length,
                }),
                checkbox: checkbox_label
                    .as_deref()
                    .map(|label| CheckboxBody { label }),
            });
        }
        if let Some(url) = success_url
            .as_deref()
            .filter(|_| !self.success_url_is_constant)
        {
            if let Err(e) = check_url(url) {
                problems.push(format!(
                    "success_url `{}` {e}{}",
                    esc(url),
                    self.column_note(self.success_url)
                ));
            }
        }
        let customer = match (&email, &customer_id) {
            (Some(_), Some(_)) => {
                problems.push("both customer email and customer id are set: give one".to_owned());
                None
            }
            (Some(email), None) => {
                if let Err(e) = check_email(email) {
                    problems.push(format!(
                        "email `{}` {e}{}",
                        esc(email),
                        self.column_note(self.customer_email)
                    ));
                }
                Some(Customer {
                    email: Some(email),
                    id: None,
                })
            }
            (None, Some(id)) => Some(Customer {
                email: None,
                id: Some(id),
            }),
            (None, None) if self.customer_email.is_some() || self.customer_id.is_some() => {
                problems.push(if self.customer_id.is_none() {
                    format!("email is empty{}", self.column_note(self.customer_email))
                } else {
                    "customer email and id are both empty".to_owned()
                });
                None
            }
            (None, None) => None,
        };
        let ledger_email = match (&email, &customer_id) {
            (Some(e), _) => e.clone(),
            (None, Some(_)) => String::new(),
            (None, None) => self
                .email_column
                .and_then(|i| fields.get(i))
                .map(|cell| cell.trim().to_owned())
                .unwrap_or_default(),
        };
        let reject = |problems: Vec<String>| Rejection {
            request_id: request_id.clone(),
            email: ledger_email.clone(),
            reason: problems.join("; "),
            at: String::new(),
        };
        if !problems.is_empty() {
            return Err(reject(problems));
        }
        let body = Body {
            product_id: product_id.as_deref().unwrap_or_default(),
            request_id: &request_id,
            units,
            custom_price,
            discount_code: discount_code.as_deref(),
            affiliate_code: affiliate_code.as_deref(),
            success_url: success_url.as_deref(),
            customer,
            custom_fields: &custom_field_bodies,
            metadata: Metadata(&metadata),
        };
        let bytes = match serde_json::to_vec(&body) {
            Ok(bytes) => bytes,
            Err(e) => return Err(reject(vec![format!("the body cannot be written: {e}")])),
        };
        if bytes.len() > MAX_BODY_BYTES {
            return Err(reject(vec![format!(
                "the request body is {} bytes, more than the {} KiB limit (a value far too long: \
                 check the row's cells)",
                bytes.len(),
                MAX_BODY_BYTES / 1024
            )]));
        }
        let body_sha256 = if self.hash_bodies {
            sha256_hex(&bytes)
        } else {
            String::new()
        };
        Ok(Request {
            input_hash: if self.hash_bodies {
                self.input_hash(row, fields)
            } else {
                0
            },
            previous_id: self.previous_id(fields),
            request_id,
            email: ledger_email,
            body: bytes,
            body_sha256,
        })
    }
}

/// The part of [`Renderer::input_hash`] that is the same for every row. Only values go in
/// (not their places in the file), so moving things around in the campaign file, or changing
/// the `send:` settings, keeps the digests; anything left out here could make a changed body
/// look unchanged, so when in doubt a value belongs in it.
fn input_seed(campaign: &Campaign, headers: &[String]) -> Sha256 {
    // Taken apart field by field, so that a field added to the checkout section cannot be
    // forgotten here: this stops compiling until it is added.
    let crate::campaign::Checkout {
        product_id,
        units,
        custom_price,
        discount_code,
        affiliate_code,
        custom_fields,
        locale,
        plan_type,
        success_url,
        customer_email,
        customer_id,
        metadata,
    } = &campaign.checkout;
    let value = |t: &Option<Located<String>>| t.as_ref().map(|t| t.value.clone());
    let description = format!(
        "{:?}",
        (
            env!("CARGO_PKG_VERSION"),
            // The request_id rule's edition: a ledger from an earlier rule is rendered again
            // (and matched by its earlier ids), not taken as unchanged.
            REQUEST_ID_RULE,
            &campaign.name,
            &campaign.key,
            campaign.request_id.as_ref().map(|t| &t.value),
            headers,
            (
                &product_id.value,
                value(units),
                value(discount_code),
                value(locale),
                value(plan_type),
                value(success_url),
                value(customer_email),
                value(customer_id),
                value(custom_price),
                value(affiliate_code),
                format!("{custom_fields:?}"),
                metadata
                    .iter()
                    .map(|(key, t)| (key, &t.value))
                    .collect::<Vec<_>>(),
            ),
        )
    );
    let mut hasher = Sha256::new();
    hasher.update((description.len() as u64).to_le_bytes());
    hasher.update(description.as_bytes());
    hasher
}

/// The one CSV column a template is made of, like `{{ Email }}`, `{{ columns['Email Address']
/// }}` or `{{ email | lower }}`; None for anything else.
fn single_column<'h>(template: &str, headers: &'h [String]) -> Option<&'h str> {
    let inner = template.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let expression = inner.split('|').next()?.trim();
    let name = match expression.strip_prefix("columns") {
        Some(index) if !headers.iter().any(|h| h == "columns") => {
            let quoted = index.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
            let quote = quoted.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            quoted.strip_prefix(quote)?.strip_suffix(quote)?
        }
        _ => expression,
    };
    headers.iter().find(|h| *h == name).map(String::as_str)
}

/// The CSV column a missing name was probably meant to be (a typo or a case difference).
fn similar_column<'h>(name: &str, headers: &'h [String]) -> Option<&'h str> {
    let lower = name.to_lowercase();
    if let Some(same) = headers.iter().find(|h| h.to_lowercase() == lower) {
        return Some(same);
    }
    let candidates: Vec<&str> = headers.iter().map(String::as_str).collect();
    did_you_mean(name, &candidates)
}

/// The request body, borrowing the row's rendered values; fields that are not set are left
/// out. Only fields of Creem's `CreateCheckoutRequest` belong here: Creem answers 400 to any
/// other top-level property.
#[derive(serde::Serialize)]
struct Body<'a> {
    product_id: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    units: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_price: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    affiliate_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    success_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<Customer<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    custom_fields: &'a [CustomFieldBody<'a>],
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    metadata: Metadata<'a>,
}

/// Creem's `CustomFieldRequestEntity`.
#[derive(serde::Serialize)]
struct CustomFieldBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    key: &'a str,
    label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    optional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<TextBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkbox: Option<CheckboxBody<'a>>,
}

#[derive(serde::Serialize)]
struct TextBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_length: Option<u64>,
}

#[derive(serde::Serialize)]
struct CheckboxBody<'a> {
    label: &'a str,
}

/// A customer is given by email or by id, never both.
#[derive(serde::Serialize)]
struct Customer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

/// Metadata entries as a JSON object, in campaign order.
struct Metadata<'a>(&'a [(&'a str, String)]);

impl Metadata<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl serde::Serialize for Metadata<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, value)))
    }
}

/// A practical email check (not RFC 5322): one `@`, a plausible local part and a dotted
/// domain, no spaces. It catches the typos a spreadsheet produces, not exotic addresses.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("has no @");
    };
    if domain.contains('@') {
        return Err("has more than one @");
    }
    if local.is_empty() || local.len() > 64 {
        return Err("has no name before the @");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("has a misplaced dot before the @");
    }
    if local.contains(['(', ')', '<', '>', '[', ']', '\\', ',', ';', ':', '"']) {
        return Err("has a character not allowed before the @");
    }
    if !domain.contains('.') {
        return Err("has no dot in the domain");
    }
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return Err("has a malformed domain");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err("has a character not allowed in the domain");
        }
        last = label;
    }
    if last.chars().nth(1).is_none() {
        return Err("has a malformed domain");
    }
    Ok(())
}

fn check_url(text: &str) -> Result<(), &'static str> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err("is not an http(s) URL"),
        Err(_) => Err("is not an absolute http(s) URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_request_id_normalises_email() {
        let a = default_request_id("spring", &[("email", " Ana@Example.COM ")]);
        let b = default_request_id("spring", &[("email", "ana@example.com")]);
        assert_eq!(a, b);
        // Independent: sha256("spring\x1Fana@example.com"), first 16 hex digits.
        let expected = hex::encode(&Sha256::digest(b"spring\x1Fana@example.com")[..8]);
        assert_eq!(a, format!("spring-{expected}"));
    }

    #[test]
    fn email_columns_are_known_whatever_the_export_calls_them() {
        for name in [
            "email",
            "Email",
            "E-Mail",
            "Email Address",
            "email_address",
            " EMAIL ",
        ] {
            assert!(is_email_column(name), "{name}");
        }
        for name in ["emails", "Contact", "Email Opt-In", "mail"] {
            assert!(!is_email_column(name), "{name}");
        }
        let headers: Vec<String> = ["Contact", "columns x"].map(String::from).to_vec();
        assert_eq!(single_column("{{ Contact }}", &headers), Some("Contact"));
        assert_eq!(
            single_column("{{ Contact | trim | lower }}", &headers),
            Some("Contact")
        );
        assert_eq!(
            single_column("{{ columns['Contact'] }}", &headers),
            Some("Contact")
        );
        assert_eq!(single_column("x{{ Contact }}", &headers), None);
        assert_eq!(single_column("{{ Other }}", &headers), None);
    }

    #[test]
    fn non_email_key_columns_keep_their_case() {
        let a = default_request_id("c", &[("user_id", "AB")]);
        let b = default_request_id("c", &[("user_id", "ab")]);
        assert_ne!(a, b);
    }

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@sub.example.org", "zoë@exämple.de"] {
            assert_eq!(check_email(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("ab.co", "has no @"),
            ("a@b", "has no dot in the domain"),
            ("a b@c.co", "contains spaces"),
            ("a@@b.co", "has more than one @"),
            ("@b.co", "has no name before the @"),
            ("a@b..co", "has a malformed domain"),
            ("a@b.c", "has a malformed domain"),
        ] {
            assert_eq!(check_email(bad), Err(why), "{bad}");
        }
    }
}
