//! One CSV row -> one request: the request_id, the exact JSON body, and its SHA-256.
//!
//! The body is serialised here once and those bytes are what is hashed, printed by
//! `--dry-run` and sent, so the three can never disagree.
//!
//! `compile` turns the campaign into a [`Renderer`] once; `row` renders each row into
//! the `body`; `request_id` holds the request_id rule and `checks` the value checks.

use sha2::{Digest, Sha256};

use crate::campaign::CustomFieldKind;
use crate::template::{RowValues, TemplateId, TemplateSet};

mod body;
mod checks;
mod compile;
mod request_id;
mod row;

pub use checks::check_email;
pub use request_id::{default_request_id, push_hex, sha256_hex};
use request_id::{feed_key_value, key_digest, KEY_SEPARATOR};

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
}

/// Why a row cannot be sent, with what is known of it for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub request_id: String,
    pub email: String,
    pub reason: String,
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
    key_columns: Vec<(usize, String)>,
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
                .map(|(i, column)| (column.as_str(), fields.get(*i).copied().unwrap_or_default())),
        )
    }

    /// A cheap 64-bit fingerprint of the normalised key, for finding duplicate keys: the same
    /// customer gives the same fingerprint, as with [`key_digest`](Self::key_digest).
    pub fn key_fingerprint(&self, fields: &[&str]) -> u64 {
        use std::hash::Hasher;
        let mut hasher = std::hash::DefaultHasher::new();
        for (i, column) in &self.key_columns {
            let value = fields.get(*i).copied().unwrap_or_default();
            hasher.write_u8(KEY_SEPARATOR);
            feed_key_value(column, value, |bytes| hasher.write(bytes));
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
            .filter(|(i, _)| fields.get(*i).is_none_or(|cell| cell.trim().is_empty()))
            .map(|(_, column)| column.as_str())
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
}
