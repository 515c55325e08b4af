//! `checkout.custom_fields`: the validated field, Creem's rules for keys and labels, and
//! their checks while building the campaign.

use super::build::Builder;
use super::raw::{text, RawCustomField, Scalar, Text};
use super::{at_of, is_template, located, Located};

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

impl Builder<'_> {
    pub(super) fn custom_fields(
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
