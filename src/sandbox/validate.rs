//! Checks a create-checkout body the way Creem does (class-validator style: every problem is
//! reported, one message each), so a client meets its validation errors here first.

use serde_json::{Map, Value};

/// The parts of a valid body that the checkout keeps.
pub(super) struct NewCheckout {
    pub product_id: String,
    pub units: u64,
    pub request_id: Option<String>,
    pub customer: Option<Value>,
    pub metadata: Option<Value>,
    pub success_url: Option<String>,
    pub discount_code: Option<String>,
    pub custom_fields: Option<Value>,
}

/// `strict`: Creem's `forbidNonWhitelisted`, every property outside `CreateCheckoutRequest`
/// is an error. Lenient, `locale` (sent by older campaigns) and unknown properties pass.
pub(super) fn checkout_request(body: &[u8], strict: bool) -> Result<NewCheckout, Vec<String>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| vec![format!("request body is not valid JSON: {err}")])?;
    let Value::Object(mut body) = value else {
        return Err(vec!["request body must be a JSON object".into()]);
    };
    let mut errors = Vec::new();

    let product_id = match take(&mut body, "product_id") {
        None => {
            errors.push("product_id should not be empty".into());
            None
        }
        Some(Value::String(id)) if id.is_empty() => {
            errors.push("product_id should not be empty".into());
            None
        }
        Some(Value::String(id)) if id.starts_with("prod_") => Some(id),
        Some(Value::String(_)) => {
            errors.push("product_id must start with \"prod_\"".into());
            None
        }
        Some(_) => {
            errors.push("product_id must be a string".into());
            None
        }
    };
    let units = match take(&mut body, "units") {
        None => 1,
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => match n.as_u64() {
            Some(units) if units >= 1 => units,
            _ => {
                errors.push("units must not be less than 1".into());
                1
            }
        },
        Some(_) => {
            errors.push("units must be an integer number".into());
            1
        }
    };
    let request_id = optional_string(&mut body, "request_id", &mut errors);
    let discount_code = optional_string(&mut body, "discount_code", &mut errors);
    optional_string(&mut body, "affiliate_code", &mut errors);
    if !strict {
        optional_string(&mut body, "locale", &mut errors);
    }
    match take(&mut body, "custom_price") {
        None => {}
        Some(Value::Number(n)) if n.is_u64() => {}
        Some(_) => errors.push("custom_price must be a positive integer".into()),
    }
    let customer = take(&mut body, "customer").filter(|c| check_customer(c, &mut errors));
    let metadata = take(&mut body, "metadata").filter(|m| check_metadata(m, &mut errors));
    let custom_fields = take(&mut body, "custom_fields")
        .or_else(|| take(&mut body, "custom_field"))
        .filter(|fields| check_custom_fields(fields, &mut errors));
    let success_url = match take(&mut body, "success_url") {
        None => None,
        Some(Value::String(url)) if is_web_url(&url) => Some(url),
        Some(_) => {
            errors.push("success_url must be a URL address".into());
            None
        }
    };
    if strict {
        for name in body.keys() {
            errors.push(format!("property {name} should not exist"));
        }
    }

    match product_id {
        Some(product_id) if errors.is_empty() => Ok(NewCheckout {
            product_id,
            units,
            request_id,
            customer,
            metadata,
            success_url,
            discount_code,
            custom_fields,
        }),
        _ => Err(errors),
    }
}

/// Like class-validator's `@IsOptional`, a JSON `null` counts as absent.
fn take(body: &mut Map<String, Value>, field: &str) -> Option<Value> {
    body.remove(field).filter(|v| !v.is_null())
}

fn optional_string(
    body: &mut Map<String, Value>,
    field: &str,
    errors: &mut Vec<String>,
) -> Option<String> {
    match take(body, field) {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(format!("{field} must be a string"));
            None
        }
    }
}

fn check_customer(customer: &Value, errors: &mut Vec<String>) -> bool {
    let Value::Object(customer) = customer else {
        errors.push("customer must be an object".into());
        return false;
    };
    let before = errors.len();
    let id = customer.get("id").filter(|v| !v.is_null());
    let email = customer.get("email").filter(|v| !v.is_null());
    match (id, email) {
        (Some(_), Some(_)) => {
            errors.push("customer may specify only one of id or email, not both".into())
        }
        (None, None) => errors.push("customer must specify either id or email".into()),
        (Some(Value::String(id)), None) if !id.is_empty() => {}
        (Some(_), None) => errors.push("customer.id must be a non-empty string".into()),
        (None, Some(Value::String(email))) if is_email(email) => {}
        (None, Some(_)) => errors.push("customer.email must be an email".into()),
    }
    errors.len() == before
}

fn check_metadata(metadata: &Value, errors: &mut Vec<String>) -> bool {
    let Value::Object(entries) = metadata else {
        errors.push("metadata must be an object".into());
        return false;
    };
    let before = errors.len();
    for (key, value) in entries {
        if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            errors.push(format!("metadata.{key} must be a string or a number"));
        }
    }
    errors.len() == before
}

fn check_custom_fields(fields: &Value, errors: &mut Vec<String>) -> bool {
    let Value::Array(fields) = fields else {
        errors.push("custom_fields must be an array".into());
        return false;
    };
    let before = errors.len();
    if fields.len() > 3 {
        // One clear message rather than one per field of a list that is refused anyway.
        errors.push("custom_fields must contain no more than 3 elements".into());
        return false;
    }
    for (i, field) in fields.iter().enumerate() {
        let Some(field) = field.as_object() else {
            errors.push("each value in custom_fields must be an object".into());
            continue;
        };
        let text = |name: &str| field.get(name).and_then(Value::as_str);
        if !matches!(text("type"), Some("text" | "checkbox")) {
            errors.push(format!(
                "custom_fields.{i}.type must be one of the following values: text, checkbox"
            ));
        }
        if text("key").is_none_or(str::is_empty) {
            errors.push(format!("custom_fields.{i}.key should not be empty"));
        }
        match text("label") {
            Some(label) if !label.is_empty() && label.chars().count() <= 50 => {}
            _ => errors.push(format!(
                "custom_fields.{i}.label must be shorter than or equal to 50 characters"
            )),
        }
    }
    errors.len() == before
}

fn is_web_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// Deliberately loose: one `@`, something before it, a dotted domain after it, no spaces.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
}
