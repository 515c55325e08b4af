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
pub use request_id::{
    default_request_id, default_request_id_of, is_email_column, push_hex, sha256_hex,
};
use request_id::{feed_key_value, key_digest, KEY_SEPARATOR};

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
    /// `where:`, the condition a row must meet to be sent.
    condition: Option<TemplateId>,
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

    /// Whether the row meets `where:` (always, without it). The rendered text is false when
    /// it is empty, `false`, `0` or `no` (any case), and true otherwise.
    pub fn condition(&self, row: u64, fields: &[&str]) -> Result<bool, String> {
        let Some(id) = self.condition else {
            return Ok(true);
        };
        let text = self
            .templates
            .row(self.values(row, fields))
            .render(id)
            .map_err(|e| format!("where: {e}"))?;
        let text = text.trim().to_ascii_lowercase();
        Ok(!matches!(text.as_str(), "" | "false" | "0" | "no"))
    }

    /// The default request_id this row's customer (by the same key) has in `campaign`.
    pub fn request_id_in(&self, campaign: &str, fields: &[&str]) -> String {
        let digest = key_digest(
            campaign,
            self.key_columns
                .iter()
                .map(|(i, _, is_email)| (fields.get(*i).copied().unwrap_or_default(), *is_email)),
        );
        let mut id = format!("{campaign}-");
        push_hex(&digest[..8], &mut id);
        id
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
