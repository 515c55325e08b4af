//! One row rendered: every field, its checks, and the JSON body.

use super::body::{Body, CheckboxBody, CustomFieldBody, Customer, Metadata, TextBody};
use super::checks::{check_email, check_url};
use super::{sha256_hex, Integer, Rejection, Renderer, Request, MAX_BODY_BYTES};
use crate::campaign::{check_custom_field_key, check_custom_field_label};
use crate::escape::escape_control as esc;
use crate::template::TemplateId;

impl Renderer {
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
