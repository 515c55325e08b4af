//! One CSV row -> one request: the request_id, the exact JSON body, and its SHA-256.
//!
//! The body is serialised here once and those bytes are what is hashed, printed by
//! `--dry-run` and sent, so the three can never disagree.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::campaign::{Campaign, Located};
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use crate::template::{RowValues, TemplateError, TemplateId, TemplateSet};

/// The byte that separates the campaign and key values in the default request_id's hash.
/// A unit separator cannot appear in a normal CSV value, so `a,b` + `c` never equals `a` + `b,c`.
const KEY_SEPARATOR: u8 = 0x1F;

/// Computes the default request_id: `<campaign>-<first 16 hex of SHA-256(campaign \x1F
/// value1 \x1F value2 ...)>`, values trimmed and a column named `email` lowercased.
/// Public so a merchant's backend (or a test) can derive the same id.
pub fn default_request_id(campaign: &str, key_values: &[(&str, &str)]) -> String {
    let digest = key_digest(campaign, key_values.iter().copied());
    format!("{campaign}-{}", hex::encode(&digest[..8]))
}

fn key_digest<'a>(
    campaign: &str,
    key_values: impl Iterator<Item = (&'a str, &'a str)>,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(campaign.as_bytes());
    for (column, value) in key_values {
        hasher.update([KEY_SEPARATOR]);
        let value = value.trim();
        if column == "email" {
            hasher.update(value.to_lowercase().as_bytes());
        } else {
            hasher.update(value.as_bytes());
        }
    }
    hasher.finalize().into()
}

/// A row ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub request_id: String,
    /// The customer's email for the ledger (empty when the customer is given by id).
    pub email: String,
    /// The exact JSON body.
    pub body: Vec<u8>,
    /// Lowercase hex SHA-256 of `body`.
    pub body_sha256: String,
}

/// Why a row cannot be sent, with what is known of it for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub request_id: String,
    pub email: String,
    pub reason: String,
}

#[derive(Debug)]
enum Units {
    Fixed(u64),
    Template(TemplateId),
}

/// Everything compiled from the campaign that turns a row into a request.
#[derive(Debug)]
pub struct Renderer {
    campaign: String,
    templates: TemplateSet,
    key_columns: Vec<(usize, String)>,
    email_column: Option<usize>,
    request_id: Option<TemplateId>,
    product_id: TemplateId,
    units: Option<Units>,
    discount_code: Option<TemplateId>,
    locale: Option<TemplateId>,
    success_url: Option<TemplateId>,
    customer_email: Option<TemplateId>,
    customer_id: Option<TemplateId>,
    plan_type: Option<TemplateId>,
    metadata: Vec<(String, TemplateId)>,
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
        let units = c
            .units
            .as_ref()
            .and_then(|u| match u.value.trim().parse::<u64>() {
                Ok(n) => Some(Units::Fixed(n)),
                Err(_) => compile("checkout.units", u).map(Units::Template),
            });
        let mut optional =
            |name: &str, t: &Option<Located<String>>| t.as_ref().and_then(|t| compile(name, t));
        let discount_code = optional("checkout.discount_code", &c.discount_code);
        let locale = optional("checkout.locale", &c.locale);
        let success_url = optional("checkout.success_url", &c.success_url);
        let customer_email = optional("checkout.customer.email", &c.customer_email);
        let customer_id = optional("checkout.customer.id", &c.customer_id);
        let plan_type = optional("checkout.plan_type", &c.plan_type);
        let metadata = c
            .metadata
            .iter()
            .filter_map(|(key, t)| {
                compile(&format!("checkout.metadata.{key}"), t).map(|id| (key.clone(), id))
            })
            .collect();
        let mut key_columns = Vec::new();
        for column in &campaign.key {
            match headers.iter().position(|h| h == column) {
                Some(index) => key_columns.push((index, column.clone())),
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
            email_column: headers.iter().position(|h| h == "email"),
            request_id,
            product_id: product_id.expect("no problems"),
            units,
            discount_code,
            locale,
            success_url,
            customer_email,
            customer_id,
            plan_type,
            metadata,
        })
    }

    /// The normalised key's digest: equal for the same customer, whatever the spacing or
    /// the case of the email. Its first 8 bytes are the default request_id's hash.
    pub fn key_digest(&self, fields: &[&str]) -> [u8; 32] {
        key_digest(
            &self.campaign,
            self.key_columns
                .iter()
                .map(|(i, column)| (column.as_str(), fields[*i])),
        )
    }

    /// The key columns that are empty in this row.
    pub fn empty_key_columns<'a>(&'a self, fields: &[&str]) -> Vec<&'a str> {
        self.key_columns
            .iter()
            .filter(|(i, _)| fields[*i].trim().is_empty())
            .map(|(_, column)| column.as_str())
            .collect()
    }

    /// True when request_ids come from a template (so they may collide even when keys don't).
    pub fn has_request_id_template(&self) -> bool {
        self.request_id.is_some()
    }

    /// The row's request_id: the template's rendering, or the default from `key_digest`.
    pub fn request_id(
        &self,
        row: u64,
        fields: &[&str],
        key_digest: &[u8; 32],
    ) -> Result<String, String> {
        match self.request_id {
            None => {
                let mut id = String::with_capacity(self.campaign.len() + 17);
                id.push_str(&self.campaign);
                id.push('-');
                id.push_str(&hex::encode(&key_digest[..8]));
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
            .map(|i| fields[i].trim().to_owned())
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
        let mut field = |name: &str, id: Option<TemplateId>, problems: &mut Vec<String>| {
            let id = id?;
            match renderer.render(id) {
                Ok(text) => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
                Err(e) => {
                    problems.push(format!("{name}: {e}{}", self.column_note(Some(id))));
                    None
                }
            }
        };
        let product_id = field("product_id", Some(self.product_id), &mut problems);
        if product_id.is_none() && problems.is_empty() {
            problems.push(format!(
                "product_id renders empty{}",
                self.column_note(Some(self.product_id))
            ));
        }
        let units = match &self.units {
            None => None,
            Some(Units::Fixed(n)) => Some(*n),
            Some(Units::Template(t)) => match field("units", Some(*t), &mut problems) {
                None => None,
                Some(text) => match text.parse::<u64>() {
                    Ok(n) if n >= 1 => Some(n),
                    _ => {
                        problems.push(format!(
                            "units `{text}` is not an integer >= 1{}",
                            self.column_note(Some(*t))
                        ));
                        None
                    }
                },
            },
        };
        let discount_code = field("discount_code", self.discount_code, &mut problems);
        let locale = field("locale", self.locale, &mut problems);
        let success_url = field("success_url", self.success_url, &mut problems);
        if let Some(url) = &success_url {
            if let Err(e) = check_url(url) {
                problems.push(format!(
                    "success_url `{url}` {e}{}",
                    self.column_note(self.success_url)
                ));
            }
        }
        let email = field("customer.email", self.customer_email, &mut problems);
        let customer_id = field("customer.id", self.customer_id, &mut problems);
        let customer = match (&email, &customer_id) {
            (Some(_), Some(_)) => {
                problems.push("both customer email and customer id are set: give one".to_owned());
                None
            }
            (Some(email), None) => {
                if let Err(e) = check_email(email) {
                    problems.push(format!(
                        "email `{email}` {e}{}",
                        self.column_note(self.customer_email)
                    ));
                }
                Some(Customer::Email(email))
            }
            (None, Some(id)) => Some(Customer::Id(id)),
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
        let plan_type = field("plan_type", self.plan_type, &mut problems);
        let mut metadata = Vec::with_capacity(self.metadata.len() + 1);
        for (key, id) in &self.metadata {
            if let Some(value) = field(&format!("metadata.{key}"), Some(*id), &mut problems) {
                metadata.push((key.as_str(), value));
            }
        }
        if let Some(plan_type) = plan_type {
            metadata.push(("plan_type", plan_type));
        }
        let ledger_email = match (&email, &customer_id) {
            (Some(e), _) => e.clone(),
            (None, Some(_)) => String::new(),
            (None, None) => self
                .email_column
                .map(|i| fields[i].trim().to_owned())
                .unwrap_or_default(),
        };
        if !problems.is_empty() {
            return Err(Rejection {
                request_id,
                email: ledger_email,
                reason: problems.join("; "),
            });
        }
        let body = Body {
            product_id: product_id.as_deref().unwrap_or_default(),
            request_id: &request_id,
            units,
            discount_code: discount_code.as_deref(),
            locale: locale.as_deref(),
            success_url: success_url.as_deref(),
            customer,
            metadata: Metadata(&metadata),
        };
        let body = serde_json::to_vec(&body).expect("strings and integers always serialise");
        let body_sha256 = hex::encode(Sha256::digest(&body));
        Ok(Request {
            request_id,
            email: ledger_email,
            body,
            body_sha256,
        })
    }
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

/// The request body, in the field order of Creem's documentation.
#[derive(Serialize)]
struct Body<'a> {
    product_id: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    units: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    success_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<Customer<'a>>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Customer<'a> {
    Email(&'a str),
    Id(&'a str),
}

/// Metadata entries in campaign order (a JSON object).
struct Metadata<'a>(&'a [(&'a str, String)]);

impl Metadata<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Metadata<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
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
    if local.chars().any(|c| "()<>[]\\,;:\"".contains(c)) {
        return Err("has a character not allowed before the @");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("has no dot in the domain");
    }
    for label in &labels {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return Err("has a malformed domain");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err("has a character not allowed in the domain");
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().count() < 2) {
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
